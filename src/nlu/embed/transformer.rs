//! The transformer embedder: a BERT-family sentence encoder
//! (sentence-transformers layout) run with candle on the CPU — BERT
//! (`"model_type": "bert"`, e.g. all-MiniLM-L6-v2) or XLM-RoBERTa
//! (`"model_type": "xlm-roberta"`, e.g. multilingual-e5-small as
//! `frontdesk model import` writes it).
//!
//! It computes what sentence-transformers computes for such a model: the
//! text, after the model's default prompt if it has one (e5's `"query: "`,
//! from `config_sentence_transformers.json`), tokenized with the model's
//! special tokens around it, truncated to the model's `max_seq_length`
//! (`sentence_bert_config.json`) and never beyond [`MAX_TOKENS`] tokens,
//! the last hidden states averaged over the attention mask, the mean
//! L2-normalised.
//!
//! An encode takes milliseconds: the bot's channels call the engine from
//! blocking threads (`spawn_blocking`), never from the async workers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{self, BertModel};
use candle_transformers::models::xlm_roberta::{self, XLMRobertaModel};
use tokenizers::Tokenizer;

use super::files::{self, WEIGHTS};
use super::static_model::values_f32;
use super::{EmbedError, Embedder, normalize_l2};

/// Tokens of a text beyond this many are cut, whatever the model allows
/// (all-MiniLM-L6-v2's `max_seq_length`; customer messages are far
/// shorter, and the encode time grows with the length).
pub const MAX_TOKENS: usize = 256;

/// Texts encoded together in [`Embedder::embed_batch`].
const BATCH: usize = 32;

/// The sentence-transformers file with the model's prompts.
pub(crate) const PROMPTS: &str = "config_sentence_transformers.json";

/// The sentence-transformers file with the model's `max_seq_length`.
pub(crate) const SENTENCE_CONFIG: &str = "sentence_bert_config.json";

/// The network, by `model_type`.
enum Encoder {
    Bert(BertModel),
    XlmRoberta(XLMRobertaModel),
}

/// A loaded transformer sentence encoder.
pub struct TransformerEmbedder {
    encoder: Encoder,
    tokenizer: Tokenizer,
    /// `bert` or `xlm-roberta`.
    model_type: &'static str,
    hidden: usize,
    layers: usize,
    /// The id that pads a batch's shorter sequences.
    pad: u32,
    /// Put before every text (e5: `"query: "`).
    prompt: String,
    /// Tokens kept of a text, special tokens included.
    max_tokens: usize,
    dir: PathBuf,
    /// candle's CPU kernels use their own threads per call; one encode at a
    /// time keeps a busy bot from oversubscribing the cores.
    serial: Mutex<()>,
}

fn model_error(e: candle_core::Error) -> EmbedError {
    EmbedError::Model(format!("the transformer failed: {e}"))
}

/// The model's default prompt (sentence-transformers' `prompts` and
/// `default_prompt_name`), or the empty string.
fn default_prompt(dir: &Path) -> Result<String, EmbedError> {
    let Some((path, v)) = files::optional_json(dir, PROMPTS)? else {
        return Ok(String::new());
    };
    let Some(name) = v.get("default_prompt_name").filter(|n| !n.is_null()) else {
        return Ok(String::new());
    };
    let fail = |message: String| EmbedError::Format {
        path: path.clone(),
        message,
    };
    let name = name
        .as_str()
        .ok_or_else(|| fail("\"default_prompt_name\" must be a string".into()))?;
    match v["prompts"][name].as_str() {
        Some(prompt) if prompt.len() <= 1024 => Ok(prompt.to_string()),
        Some(_) => Err(fail(format!(
            "the prompt {name:?} is longer than 1024 bytes"
        ))),
        None => Err(fail(format!(
            "\"default_prompt_name\" is {name:?}, but \"prompts\" has no such string"
        ))),
    }
}

/// The model's `max_seq_length`, if it says.
fn max_seq_length(dir: &Path) -> Result<Option<usize>, EmbedError> {
    let Some((path, v)) = files::optional_json(dir, SENTENCE_CONFIG)? else {
        return Ok(None);
    };
    match v.get("max_seq_length") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(n) => match n.as_u64() {
            Some(n) if n >= 2 => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
            _ => Err(EmbedError::Format {
                path,
                message: format!(
                    "\"max_seq_length\" must be a whole number of at least 2, found {n}"
                ),
            }),
        },
    }
}

/// Every floating-point tensor of a safetensors file, as an `f32` tensor:
/// F16 and BF16 are widened once here (in one pass, without candle's
/// intermediate copies: the load of a 250,000-token vocabulary takes less
/// memory). Other types (checkpoints keep e.g. an I64 `position_ids`
/// buffer) are left out; a weight the model needs and misses is an error
/// when the model is built.
fn f32_tensors(path: &Path, bytes: &[u8]) -> Result<HashMap<String, Tensor>, EmbedError> {
    let fail = |message: String| EmbedError::Format {
        path: path.to_path_buf(),
        message,
    };
    let file = safetensors::SafeTensors::deserialize(bytes).map_err(|e| {
        fail(format!(
            "not a safetensors file (truncated or damaged?): {e}"
        ))
    })?;
    let mut tensors = HashMap::new();
    for (name, view) in file.tensors() {
        let Some(values) = values_f32(view.dtype(), view.data()) else {
            continue;
        };
        let tensor = Tensor::from_vec(values, view.shape(), &Device::Cpu)
            .map_err(|e| fail(format!("`{name}`: {e}")))?;
        tensors.insert(name, tensor);
    }
    Ok(tensors)
}

impl TransformerEmbedder {
    /// Loads `dir`: `config.json` (a BERT or XLM-RoBERTa config; its
    /// `model_type` decides), `tokenizer.json`, `model.safetensors`, and
    /// the optional sentence-transformers files (prompts, length). Errors
    /// name the file.
    pub fn load(dir: &Path) -> Result<TransformerEmbedder, EmbedError> {
        let (config_path, config_json) = files::config(dir)?;
        let model_type = config_json["model_type"].as_str().unwrap_or("bert");
        let not_config = |kind: &str, e: serde_json::Error| EmbedError::Format {
            path: config_path.clone(),
            message: format!("not a {kind} configuration: {e}"),
        };
        enum Config {
            Bert(bert::Config),
            XlmRoberta(xlm_roberta::Config),
        }
        let config = match model_type {
            "xlm-roberta" | "roberta" => Config::XlmRoberta(
                serde_json::from_value(config_json.clone())
                    .map_err(|e| not_config("XLM-RoBERTa", e))?,
            ),
            _ => Config::Bert(
                serde_json::from_value(config_json.clone()).map_err(|e| not_config("BERT", e))?,
            ),
        };
        let (hidden, layers, positions, pad) = match &config {
            Config::Bert(c) => (
                c.hidden_size,
                c.num_hidden_layers,
                c.max_position_embeddings,
                config_json["pad_token_id"].as_u64().unwrap_or(0),
            ),
            // XLM-R's positions start after the padding id.
            Config::XlmRoberta(c) => (
                c.hidden_size,
                c.num_hidden_layers,
                c.max_position_embeddings
                    .saturating_sub(c.pad_token_id as usize + 1),
                u64::from(c.pad_token_id),
            ),
        };
        let (tokenizer, _) = files::tokenizer(dir)?;
        let prompt = default_prompt(dir)?;
        let max_tokens = max_seq_length(dir)?
            .unwrap_or(MAX_TOKENS)
            .min(MAX_TOKENS)
            .min(positions)
            .max(2);
        let (path, bytes) = files::read(dir, WEIGHTS)?;
        let tensors = f32_tensors(&path, &bytes)?;
        drop(bytes);
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        let misfit = |e: candle_core::Error| EmbedError::Format {
            path: path.clone(),
            message: format!("the weights do not fit config.json: {e}"),
        };
        let (encoder, model_type) = match &config {
            Config::Bert(c) => (
                Encoder::Bert(BertModel::load(vb, c).map_err(misfit)?),
                "bert",
            ),
            Config::XlmRoberta(c) => (
                Encoder::XlmRoberta(XLMRobertaModel::new(c, vb).map_err(misfit)?),
                "xlm-roberta",
            ),
        };
        Ok(TransformerEmbedder {
            encoder,
            tokenizer,
            model_type,
            hidden,
            layers,
            pad: u32::try_from(pad).unwrap_or(0),
            prompt,
            max_tokens,
            dir: dir.to_path_buf(),
            serial: Mutex::new(()),
        })
    }

    /// The tokenizer (for `frontdesk model distill`).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The prompt put before every text (empty for most models).
    pub fn prompt(&self) -> &str {
        &self.prompt
    }

    /// The token ids a text is encoded with: the prompt, the text, the
    /// special tokens, truncated.
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        let encoding = if self.prompt.is_empty() {
            self.tokenizer.encode_fast(text, true)
        } else {
            self.tokenizer
                .encode_fast(format!("{}{text}", self.prompt), true)
        }
        .map_err(files::tokenize_error)?;
        let mut ids = encoding.get_ids().to_vec();
        if ids.len() > self.max_tokens {
            // Keep the opening special token … and the closing one.
            let last = ids[ids.len() - 1];
            ids.truncate(self.max_tokens - 1);
            ids.push(last);
        }
        Ok(ids)
    }

    /// Mean-pooled, unnormalised last hidden states for sequences of token
    /// ids (with their special tokens), one vector per sequence.
    pub fn pool(&self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let _one = self.serial.lock().unwrap_or_else(|p| p.into_inner());
        let width = sequences.iter().map(Vec::len).max().unwrap_or(0);
        if width == 0 {
            return Ok(vec![vec![0.0; self.hidden]; sequences.len()]);
        }
        let n = sequences.len();
        let mut ids = vec![self.pad; n * width];
        let mut mask = vec![0_f32; n * width];
        for (i, s) in sequences.iter().enumerate() {
            ids[i * width..i * width + s.len()].copy_from_slice(s);
            mask[i * width..i * width + s.len()].fill(1.0);
        }
        let device = Device::Cpu;
        let ids = Tensor::from_vec(ids, (n, width), &device).map_err(model_error)?;
        let types = ids.zeros_like().map_err(model_error)?;
        let mask = Tensor::from_vec(mask, (n, width), &device).map_err(model_error)?;
        let hidden = match &self.encoder {
            Encoder::Bert(m) => m.forward(&ids, &types, Some(&mask)),
            Encoder::XlmRoberta(m) => m.forward(&ids, &mask, &types, None, None, None),
        }
        .map_err(model_error)?;
        // Σ hidden · mask / Σ mask over the positions.
        let summed = hidden
            .broadcast_mul(&mask.unsqueeze(2).map_err(model_error)?)
            .and_then(|h| h.sum(1))
            .map_err(model_error)?;
        let counts = mask.sum_keepdim(1).map_err(model_error)?;
        let mean = summed.broadcast_div(&counts).map_err(model_error)?;
        mean.to_vec2::<f32>().map_err(model_error)
    }

    fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let sequences = texts
            .iter()
            .map(|t| self.token_ids(t))
            .collect::<Result<Vec<_>, _>>()?;
        let mut vectors = self.pool(&sequences)?;
        for v in &mut vectors {
            normalize_l2(v);
        }
        Ok(vectors)
    }
}

impl Embedder for TransformerEmbedder {
    fn dim(&self) -> usize {
        self.hidden
    }

    fn embed(&self, text: &str) -> Vec<f32> {
        self.embed_batch(&[text]).pop().unwrap_or_default()
    }

    fn embed_batch(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        let mut out = Vec::with_capacity(texts.len());
        // Similar lengths together: less padding per batch.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            match self.encode(&batch) {
                Ok(vs) => {
                    for (&i, v) in chunk.iter().zip(vs) {
                        vectors[i] = Some(v);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "texts not embedded"),
            }
        }
        for v in vectors {
            out.push(v.unwrap_or_else(|| vec![0.0; self.dim()]));
        }
        out
    }

    fn describe(&self) -> String {
        format!(
            "transformer ({}, {} layers, {} dimensions{}) from {}",
            self.model_type,
            self.layers,
            self.hidden,
            if self.prompt.is_empty() {
                String::new()
            } else {
                format!(", prompt {:?}", self.prompt)
            },
            self.dir.display()
        )
    }
}

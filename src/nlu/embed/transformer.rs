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
//! The forward pass is the `encoder` module's (the word embeddings read
//! from the mapped weights file, no padding). An encode takes milliseconds:
//! the bot's channels call the engine from blocking threads
//! (`spawn_blocking`), never from the async workers.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tokenizers::Tokenizer;

use super::encoder::{Architecture, Encoder, EncoderConfig};
use super::files::{self, WEIGHTS};
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

/// A loaded transformer sentence encoder.
pub struct TransformerEmbedder {
    encoder: Encoder,
    tokenizer: Tokenizer,
    /// `bert` or `xlm-roberta`.
    model_type: &'static str,
    hidden: usize,
    layers: usize,
    /// Put before every text (e5: `"query: "`).
    prompt: String,
    /// Tokens kept of a text, special tokens included.
    max_tokens: usize,
    dir: PathBuf,
    /// candle's CPU kernels use their own threads per call; one encode at a
    /// time keeps a busy bot from oversubscribing the cores.
    serial: Mutex<()>,
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

impl TransformerEmbedder {
    /// Loads `dir`: `config.json` (a BERT or XLM-RoBERTa config; its
    /// `model_type` decides), `tokenizer.json`, `model.safetensors`, and
    /// the optional sentence-transformers files (prompts, length). Errors
    /// name the file.
    pub fn load(dir: &Path) -> Result<TransformerEmbedder, EmbedError> {
        let (config_path, config_json) = files::config(dir)?;
        let (architecture, model_type, kind) =
            match config_json["model_type"].as_str().unwrap_or("bert") {
                t @ ("xlm-roberta" | "roberta") => (Architecture::XlmRoberta, t, "XLM-RoBERTa"),
                t => (Architecture::Bert, t, "BERT"),
            };
        let config: EncoderConfig =
            serde_json::from_value(config_json.clone()).map_err(|e| EmbedError::Format {
                path: config_path.clone(),
                message: format!("not a {kind} configuration: {e}"),
            })?;
        let prompt = default_prompt(dir)?;
        let max_seq_length = max_seq_length(dir)?;
        let weights = files::file(dir, WEIGHTS)?;
        // The tokenizer (a multilingual one has 250,000 pieces to index)
        // is built on another core while the weights load.
        let (tokenizer, encoder) = std::thread::scope(|scope| {
            let tokenizer = scope.spawn(|| files::tokenizer(dir));
            let encoder = Encoder::load(&weights, &config, architecture, model_type, &config_path);
            let tokenizer = tokenizer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (tokenizer, encoder)
        });
        let (tokenizer, _) = tokenizer?;
        let encoder = encoder?;
        let max_tokens = max_seq_length
            .unwrap_or(MAX_TOKENS)
            .min(MAX_TOKENS)
            .min(encoder.max_tokens())
            .max(2);
        Ok(TransformerEmbedder {
            encoder,
            tokenizer,
            model_type: match architecture {
                Architecture::Bert => "bert",
                Architecture::XlmRoberta => "xlm-roberta",
            },
            hidden: config.hidden_size,
            layers: config.num_hidden_layers,
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
        self.encoder.pool(sequences)
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
        // No padding (the encoder takes each sequence at its length): a
        // batch only lets the dense layers multiply more tokens at once.
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            match self.encode(batch) {
                Ok(vs) => out.extend(vs),
                Err(e) => {
                    tracing::warn!(error = %e, "texts not embedded");
                    out.extend(batch.iter().map(|_| vec![0.0; self.dim()]));
                }
            }
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

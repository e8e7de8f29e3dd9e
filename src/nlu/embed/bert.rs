//! The transformer embedder: a BERT sentence encoder (sentence-transformers
//! layout, e.g. all-MiniLM-L6-v2) run with candle on the CPU.
//!
//! It computes what sentence-transformers computes for such a model: the
//! text tokenized with `[CLS]` and `[SEP]`, truncated to
//! [`MAX_TOKENS`] tokens, the last hidden states averaged over the
//! attention mask, the mean L2-normalised.
//!
//! An encode takes milliseconds: the bot's channels call the engine from
//! blocking threads (`spawn_blocking`), never from the async workers.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::Tokenizer;

use super::files::{self, WEIGHTS};
use super::{EmbedError, Embedder, normalize_l2};

/// Tokens of a text beyond this many are cut (all-MiniLM-L6-v2's
/// `max_seq_length`).
pub const MAX_TOKENS: usize = 256;

/// Texts encoded together in [`Embedder::embed_batch`].
const BATCH: usize = 32;

/// A loaded BERT sentence encoder.
pub struct BertEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    config: Config,
    dir: PathBuf,
    /// candle's CPU kernels use their own threads per call; one encode at a
    /// time keeps a busy bot from oversubscribing the cores.
    serial: Mutex<()>,
}

fn model_error(e: candle_core::Error) -> EmbedError {
    EmbedError::Model(format!("the transformer failed: {e}"))
}

impl BertEmbedder {
    /// Loads `dir`: `config.json` (a BERT config), `tokenizer.json`,
    /// `model.safetensors`. Errors name the file.
    pub fn load(dir: &Path) -> Result<BertEmbedder, EmbedError> {
        let (config_path, config_json) = files::config(dir)?;
        let config: Config =
            serde_json::from_value(config_json).map_err(|e| EmbedError::Format {
                path: config_path,
                message: format!("not a BERT configuration: {e}"),
            })?;
        let (tokenizer, _) = files::tokenizer(dir)?;
        let (path, bytes) = files::read(dir, WEIGHTS)?;
        safetensors::SafeTensors::deserialize(&bytes).map_err(|e| EmbedError::Format {
            path: path.clone(),
            message: format!("not a safetensors file (truncated or damaged?): {e}"),
        })?;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu).map_err(
            |e| EmbedError::Format {
                path: path.clone(),
                message: e.to_string(),
            },
        )?;
        let model = BertModel::load(vb, &config).map_err(|e| EmbedError::Format {
            path,
            message: format!("the weights do not fit config.json: {e}"),
        })?;
        Ok(BertEmbedder {
            model,
            tokenizer,
            config,
            dir: dir.to_path_buf(),
            serial: Mutex::new(()),
        })
    }

    /// The tokenizer (for `frontdesk model distill`).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Mean-pooled, unnormalised last hidden states for sequences of token
    /// ids (with their special tokens), one vector per sequence.
    pub fn pool(&self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let _one = self.serial.lock().unwrap_or_else(|p| p.into_inner());
        let width = sequences.iter().map(Vec::len).max().unwrap_or(0);
        if width == 0 {
            return Ok(vec![vec![0.0; self.config.hidden_size]; sequences.len()]);
        }
        let n = sequences.len();
        let mut ids = vec![0_u32; n * width];
        let mut mask = vec![0_f32; n * width];
        for (i, s) in sequences.iter().enumerate() {
            ids[i * width..i * width + s.len()].copy_from_slice(s);
            mask[i * width..i * width + s.len()].fill(1.0);
        }
        let device = Device::Cpu;
        let ids = Tensor::from_vec(ids, (n, width), &device).map_err(model_error)?;
        let types = ids.zeros_like().map_err(model_error)?;
        let mask = Tensor::from_vec(mask, (n, width), &device).map_err(model_error)?;
        let hidden = self
            .model
            .forward(&ids, &types, Some(&mask))
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
        let mut sequences = Vec::with_capacity(texts.len());
        for text in texts {
            let encoding = self
                .tokenizer
                .encode_fast(*text, true)
                .map_err(files::tokenize_error)?;
            let mut ids = encoding.get_ids().to_vec();
            if ids.len() > MAX_TOKENS {
                // Keep [CLS] … and the final [SEP].
                let last = ids[ids.len() - 1];
                ids.truncate(MAX_TOKENS - 1);
                ids.push(last);
            }
            sequences.push(ids);
        }
        let mut vectors = self.pool(&sequences)?;
        for v in &mut vectors {
            normalize_l2(v);
        }
        Ok(vectors)
    }
}

impl Embedder for BertEmbedder {
    fn dim(&self) -> usize {
        self.config.hidden_size
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
            "transformer ({} layers, {} dimensions) from {}",
            self.config.num_hidden_layers,
            self.config.hidden_size,
            self.dir.display()
        )
    }
}

//! The static embedder: a model2vec-format model (a token-embedding matrix
//! and a tokenizer), mean-pooled and L2-normalised.
//!
//! It computes what model2vec's `StaticModel.encode` computes: the text is
//! tokenized without special tokens, unknown tokens are dropped, at most
//! [`MAX_TOKENS`] tokens are kept, and their rows are averaged. A text
//! without known tokens gets the zero vector.

use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use tokenizers::Tokenizer;

use super::files::{self, TOKENIZER, WEIGHTS};
use super::wordpiece::WordPiece;
use super::{EmbedError, Embedder, add_rows, normalize_l2};

/// Tokens of a text beyond this many are ignored (model2vec's default
/// `max_length`).
pub const MAX_TOKENS: usize = 512;

/// The name of the matrix in `model.safetensors`.
pub const EMBEDDINGS: &str = "embeddings";

/// A loaded static model.
pub struct StaticEmbedder {
    tokenizer: Tokenizer,
    /// The same tokenizer without the `tokenizers` crate's overhead, when
    /// it is a BERT WordPiece pipeline (it is for distilled models).
    fast: Option<WordPiece>,
    unk: Option<u32>,
    /// `rows × dim`, row-major.
    matrix: Vec<f32>,
    rows: usize,
    dim: usize,
    dir: PathBuf,
}

impl std::fmt::Debug for StaticEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Reads the `name` tensor of a safetensors file as a row-major `f32`
/// matrix `(rows, cols)`. F32, F16 and BF16 are accepted.
pub(crate) fn read_matrix(
    path: &Path,
    bytes: &[u8],
    name: &str,
) -> Result<(Vec<f32>, usize, usize), EmbedError> {
    let fail = |message: String| EmbedError::Format {
        path: path.to_path_buf(),
        message,
    };
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| {
        fail(format!(
            "not a safetensors file (truncated or damaged?): {e}"
        ))
    })?;
    let view = tensors.tensor(name).map_err(|_| {
        let mut names: Vec<String> = tensors.names().into_iter().map(str::to_string).collect();
        names.sort();
        names.truncate(5);
        fail(format!(
            "no `{name}` tensor (found: {}); a static model needs the model2vec layout",
            names.join(", ")
        ))
    })?;
    let &[rows, cols] = view.shape() else {
        return Err(fail(format!(
            "`{name}` must be a matrix, found shape {:?}",
            view.shape()
        )));
    };
    let Some(values) = values_f32(view.dtype(), view.data()) else {
        return Err(fail(format!(
            "`{name}` has type {:?}; supported: F32, F16, BF16 (quantized models are not)",
            view.dtype()
        )));
    };
    if values.len() != rows * cols {
        return Err(fail(format!("`{name}` holds fewer values than its shape")));
    }
    Ok((values, rows, cols))
}

/// The little-endian values `data` of a tensor of type `dtype` as `f32`
/// (`None` for a type other than F32, F16, BF16).
pub(crate) fn values_f32(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
            .collect(),
        _ => return None,
    })
}

/// IEEE half precision to single.
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: renormalise.
            let shift = f.leading_zeros() - 21;
            sign | ((127 - 15 - shift + 1) << 23) | (((f << shift) & 0x3ff) << 13)
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

impl StaticEmbedder {
    /// Loads `dir` (model2vec layout). A missing, truncated or malformed
    /// file is an error naming it.
    pub fn load(dir: &Path) -> Result<StaticEmbedder, EmbedError> {
        let (config_path, config) = files::config(dir)?;
        if let Some(t) = config.get("model_type").and_then(|t| t.as_str())
            && t != "model2vec"
        {
            return Err(EmbedError::Format {
                path: config_path,
                message: format!("\"model_type\" is \"{t}\", not a model2vec static model"),
            });
        }
        let (tokenizer, unk) = files::tokenizer(dir)?;
        let fast = files::read(dir, TOKENIZER)
            .ok()
            .and_then(|(_, bytes)| serde_json::from_slice(&bytes).ok())
            .and_then(|json| WordPiece::from_json(&json));
        let (path, bytes) = files::read(dir, WEIGHTS)?;
        let (matrix, rows, dim) = read_matrix(&path, &bytes, EMBEDDINGS)?;
        if let Ok(tensors) = SafeTensors::deserialize(&bytes)
            && tensors.names().contains(&"mapping")
        {
            return Err(EmbedError::Format {
                path,
                message: "vocabulary-quantized model2vec models (`mapping`) are not supported"
                    .into(),
            });
        }
        let vocab = tokenizer.get_vocab_size(true);
        if vocab > rows {
            return Err(EmbedError::Format {
                path,
                message: format!(
                    "`{EMBEDDINGS}` has {rows} rows but the tokenizer has {vocab} tokens: the files belong to different models"
                ),
            });
        }
        if dim == 0 {
            return Err(EmbedError::Format {
                path,
                message: format!("`{EMBEDDINGS}` has no columns"),
            });
        }
        Ok(StaticEmbedder {
            tokenizer,
            fast,
            unk,
            matrix,
            rows,
            dim,
            dir: dir.to_path_buf(),
        })
    }

    /// The token ids model2vec averages for `text`.
    fn token_ids(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        if let Some(fast) = &self.fast
            && fast.ids(text, &mut ids)
        {
            ids.retain(|&id| Some(id) != self.unk);
            ids.truncate(MAX_TOKENS);
            return ids;
        }
        self.slow_token_ids(text)
    }

    /// [`StaticEmbedder::token_ids`] through the `tokenizers` crate.
    fn slow_token_ids(&self, text: &str) -> Vec<u32> {
        match self.tokenizer.encode_fast(text, false) {
            Ok(encoding) => encoding
                .get_ids()
                .iter()
                .copied()
                .filter(|&id| Some(id) != self.unk)
                .take(MAX_TOKENS)
                .collect(),
            Err(e) => {
                tracing::debug!(error = %files::tokenize_error(e), "text not embedded");
                Vec::new()
            }
        }
    }
}

impl Embedder for StaticEmbedder {
    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&self, text: &str) -> Vec<f32> {
        let mut sum = vec![0.0_f32; self.dim];
        add_rows(&mut sum, &self.matrix, &self.token_ids(text));
        // The mean's direction is the sum's.
        normalize_l2(&mut sum);
        sum
    }

    fn describe(&self) -> String {
        format!(
            "static {}×{} from {}",
            self.rows,
            self.dim,
            self.dir.display()
        )
    }

    fn token_vectors(&self) -> Option<&[f32]> {
        Some(&self.matrix)
    }

    fn pooled_tokens(&self, text: &str, ids: &mut Vec<u32>) {
        // Ids beyond the matrix are left to the caller, which skips them
        // as `embed` does.
        *ids = self.token_ids(text);
    }
}

/// Writes a model2vec-format directory: `config.json`, `tokenizer.json`
/// (copied from `tokenizer_json`) and `model.safetensors` with the
/// `embeddings` matrix (`rows × dim`, F32).
pub fn save(
    dir: &Path,
    matrix: &[f32],
    rows: usize,
    dim: usize,
    tokenizer_json: &[u8],
    config: &serde_json::Value,
) -> Result<(), EmbedError> {
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|source| EmbedError::Write { path, source })
    };
    std::fs::create_dir_all(dir).map_err(|source| EmbedError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let data: Vec<u8> = matrix.iter().flat_map(|x| x.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(Dtype::F32, vec![rows, dim], &data)
        .map_err(|e| EmbedError::Model(format!("cannot build the embeddings tensor: {e}")))?;
    let bytes = safetensors::serialize([(EMBEDDINGS, view)], None)
        .map_err(|e| EmbedError::Model(format!("cannot serialize the embeddings: {e}")))?;
    write(WEIGHTS, &bytes)?;
    write(files::TOKENIZER, tokenizer_json)?;
    let config = serde_json::to_vec_pretty(config)
        .map_err(|e| EmbedError::Model(format!("cannot write config.json: {e}")))?;
    write(files::CONFIG, &config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision() {
        for (h, f) in [
            (0x3c00_u16, 1.0_f32),
            (0xc000, -2.0),
            (0x3555, 0.333_251_95),
            (0x0001, 5.960_464_5e-8),
            (0x0000, 0.0),
            (0x7bff, 65504.0),
        ] {
            assert_eq!(f16_to_f32(h), f, "{h:#x}");
        }
    }
}

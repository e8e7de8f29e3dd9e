//! `frontdesk model distill`: a static (model2vec-style) model made from a
//! BERT sentence transformer, offline.
//!
//! As model2vec's `distill` does: every token of the vocabulary is run
//! through the transformer on its own (`[CLS] token [SEP]`) and its output
//! mean-pooled; the matrix is optionally reduced by PCA and each row
//! weighted by its token's estimated frequency (Zipf's law over the
//! vocabulary order, SIF weighting `a / (a + p)`), so frequent,
//! uninformative tokens count less in a sentence's mean.

use std::path::Path;
use std::time::Instant;

use super::files::{self, TOKENIZER};
use super::static_model;
use super::transformer::TransformerEmbedder;
use super::{EmbedError, Embedder};

/// Distillation settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DistillSettings {
    /// Keep this many principal components (`None` or at least the model's
    /// width: no PCA).
    pub pca_dims: Option<usize>,
    /// The SIF coefficient `a` of the Zipf weighting (`None`: no weighting).
    pub sif_coefficient: Option<f32>,
    /// Tokens run through the transformer together.
    pub batch: usize,
}

impl Default for DistillSettings {
    /// model2vec's defaults: 256 components, `a = 1e-4`.
    fn default() -> Self {
        DistillSettings {
            pca_dims: Some(256),
            sif_coefficient: Some(1e-4),
            batch: 512,
        }
    }
}

/// What [`distill`] made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Distilled {
    /// Tokens (rows).
    pub tokens: usize,
    /// Dimensions (columns).
    pub dim: usize,
    /// Seconds spent.
    pub seconds: f64,
}

/// Makes a static model in `out` from the transformer in `from`.
pub fn distill(
    from: &Path,
    out: &Path,
    settings: DistillSettings,
) -> Result<Distilled, EmbedError> {
    let started = Instant::now();
    let teacher = TransformerEmbedder::load(from)?;
    let (_, tokenizer_json) = files::read(from, TOKENIZER)?;
    let tokenizer = teacher.tokenizer();
    let tokens = tokenizer.get_vocab_size(true);
    // The special tokens around a text: encode the empty text with them.
    let frame = tokenizer
        .encode_fast("", true)
        .map_err(files::tokenize_error)?
        .get_ids()
        .to_vec();
    let wrap = |id: u32| -> Vec<u32> {
        match frame.split_last() {
            Some((last, first)) => first
                .iter()
                .copied()
                .chain([id, *last])
                .collect::<Vec<u32>>(),
            None => vec![id],
        }
    };
    let width = teacher.dim();
    let mut matrix = Vec::with_capacity(tokens * width);
    let batch = settings.batch.max(1);
    for start in (0..tokens).step_by(batch) {
        let end = (start + batch).min(tokens);
        let sequences: Vec<Vec<u32>> = (start..end).map(|id| wrap(id as u32)).collect();
        for v in teacher.pool(&sequences)? {
            matrix.extend(v);
        }
        tracing::info!(
            done = end,
            of = tokens,
            "distilling: tokens through the transformer"
        );
    }

    let mut dim = width;
    if let Some(k) = settings.pca_dims.filter(|&k| k > 0 && k < width) {
        matrix = pca(&matrix, tokens, width, k);
        dim = k;
    }
    if let Some(a) = settings.sif_coefficient {
        zipf_weigh(&mut matrix, tokens, dim, a);
    }

    let config = serde_json::json!({
        "model_type": "model2vec",
        "architectures": ["StaticModel"],
        "tokenizer_name": from.display().to_string(),
        "apply_pca": settings.pca_dims.filter(|&k| k < width),
        "apply_zipf": settings.sif_coefficient.is_some(),
        "sif_coefficient": settings.sif_coefficient,
        "hidden_dim": dim,
        "seq_length": 1_000_000,
        "normalize": true,
        "distilled_by": "frontdesk model distill",
    });
    static_model::save(out, &matrix, tokens, dim, &tokenizer_json, &config)?;
    Ok(Distilled {
        tokens,
        dim,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Row `i` scaled by `a / (a + p_i)`, `p_i ∝ 1 / (i + 2)` (model2vec's
/// Zipf estimate from the vocabulary order).
pub fn zipf_weigh(matrix: &mut [f32], rows: usize, dim: usize, a: f32) {
    let total: f64 = (0..rows).map(|i| 1.0 / (i as f64 + 2.0)).sum();
    for (i, row) in matrix.chunks_exact_mut(dim).enumerate().take(rows) {
        let p = (1.0 / (i as f64 + 2.0)) / total;
        let w = (f64::from(a) / (f64::from(a) + p)) as f32;
        for x in row {
            *x *= w;
        }
    }
}

/// The rows of `matrix` (`rows × dim`), centred and projected on their `k`
/// principal components (largest variance first).
pub fn pca(matrix: &[f32], rows: usize, dim: usize, k: usize) -> Vec<f32> {
    let mut mean = vec![0.0_f64; dim];
    for row in matrix.chunks_exact(dim) {
        for (m, &x) in mean.iter_mut().zip(row) {
            *m += f64::from(x);
        }
    }
    for m in &mut mean {
        *m /= rows.max(1) as f64;
    }
    let mut cov = vec![0.0_f64; dim * dim];
    let mut centred = vec![0.0_f64; dim];
    for row in matrix.chunks_exact(dim) {
        for ((c, &x), m) in centred.iter_mut().zip(row).zip(&mean) {
            *c = f64::from(x) - m;
        }
        for i in 0..dim {
            let ci = centred[i];
            let line = &mut cov[i * dim..(i + 1) * dim];
            for (j, c) in line.iter_mut().enumerate().skip(i) {
                *c += ci * centred[j];
            }
        }
    }
    for i in 0..dim {
        for j in 0..i {
            cov[i * dim + j] = cov[j * dim + i];
        }
    }
    let (values, vectors) = symmetric_eigen(cov, dim);
    let mut order: Vec<usize> = (0..dim).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let components: Vec<usize> = order.into_iter().take(k).collect();
    let mut out = Vec::with_capacity(rows * k);
    for row in matrix.chunks_exact(dim) {
        for (c, &x) in centred.iter_mut().zip(row) {
            *c = f64::from(x);
        }
        for (c, m) in centred.iter_mut().zip(&mean) {
            *c -= m;
        }
        for &comp in &components {
            // Column `comp` of the eigenvector matrix.
            let dot: f64 = (0..dim).map(|i| centred[i] * vectors[i * dim + comp]).sum();
            out.push(dot as f32);
        }
    }
    out
}

/// Eigenvalues and eigenvectors (the columns of the returned row-major
/// matrix) of a symmetric `n × n` matrix, by cyclic Jacobi rotations.
pub fn symmetric_eigen(mut a: Vec<f64>, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0_f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let scale: f64 = a.iter().map(|x| x * x).sum::<f64>().max(f64::MIN_POSITIVE);
    for _sweep in 0..50 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum();
        if off <= 1e-22 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let sign = if theta >= 0.0 { 1.0 } else { -1.0 };
                let t = sign / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let values = (0..n).map(|i| a[i * n + i]).collect();
    (values, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigen_of_a_known_matrix() {
        // [[2, 1], [1, 2]]: eigenvalues 3 and 1, vectors (1, 1) and (1, -1).
        let (values, vectors) = symmetric_eigen(vec![2.0, 1.0, 1.0, 2.0], 2);
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        assert!((sorted[0] - 1.0).abs() < 1e-9 && (sorted[1] - 3.0).abs() < 1e-9);
        let big = if values[0] > values[1] { 0 } else { 1 };
        let (x, y) = (vectors[big], vectors[2 + big]);
        assert!((x.abs() - y.abs()).abs() < 1e-9 && x * y > 0.0, "{x} {y}");
    }

    #[test]
    fn pca_keeps_the_direction_of_largest_variance() {
        // Points on the line y = 2x with a little noise along (2, -1).
        let mut m = Vec::new();
        for i in 0..50 {
            let t = i as f32 - 25.0;
            let noise = if i % 2 == 0 { 0.1 } else { -0.1 };
            m.extend([t + 2.0 * noise, 2.0 * t - noise, 5.0]);
        }
        let p = pca(&m, 50, 3, 1);
        assert_eq!(p.len(), 50);
        // The first component is the position along the line: |t|·√5.
        for (i, x) in p.iter().enumerate() {
            let t = i as f32 - 25.0 + 0.5;
            assert!((x.abs() - t.abs() * 5f32.sqrt()).abs() < 0.5, "{i}: {x}");
        }
    }

    #[test]
    fn zipf_weighs_frequent_tokens_down() {
        let mut m = vec![1.0_f32; 4 * 2];
        zipf_weigh(&mut m, 4, 2, 1e-1);
        assert!(m[0] < m[2] && m[2] < m[4] && m[4] < m[6]);
        assert_eq!(m[0], m[1]);
    }
}

//! A linear classifier trained at load: one-vs-rest L2-regularised,
//! L2-loss (squared hinge) support vector machines over the matcher's sparse
//! TF-IDF vectors, solved in the dual by coordinate descent (Hsieh et al.
//! 2008, the liblinear solver that scikit-learn's `LinearSVC` uses), with a
//! bias term regularised like a weight (liblinear's `-B 1`).
//!
//! The weights are kept feature-major (one row of class weights per
//! feature), so scoring a query costs one row per query feature, whatever
//! the number of training examples.

/// `(feature id, weight)`, sorted by id, no duplicates.
pub(crate) type Sparse = Vec<(u32, f32)>;

/// Marks a feature without a row in [`LinearModel::row_of`].
const NO_ROW: u32 = u32::MAX;

/// Training settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SvmSettings {
    /// The SVM's C: larger fits the training data harder.
    pub c: f32,
    /// Stop when the projected gradient's spread is below this (liblinear's 0.1).
    pub eps: f32,
    /// At most this many passes over the data per class.
    pub max_epochs: usize,
}

impl Default for SvmSettings {
    fn default() -> Self {
        SvmSettings {
            c: 1.0,
            eps: 0.1,
            max_epochs: 50,
        }
    }
}

/// One-vs-rest linear SVMs, `score_c(x) = w_c · x + b_c`, followed by fixed
/// linear columns given at training (the matcher's centroids), so that one
/// pass over the query's features yields both.
#[derive(Debug, Clone, Default)]
pub(crate) struct LinearModel {
    /// Trained classes, then fixed columns: the width of a row.
    columns: usize,
    /// Feature id → row of [`Self::weights`], or [`NO_ROW`].
    row_of: Vec<u32>,
    /// Rows of `columns` weights.
    weights: Vec<f32>,
    /// One bias per column (0 for the fixed columns).
    bias: Vec<f32>,
}

impl LinearModel {
    /// Trains one SVM per class on `docs` (labels in `0..classes`), over
    /// features `0..features`, on up to `threads` threads; the `fixed`
    /// vectors become the columns after the classes. A model without
    /// documents says -1 ("not me") for every class.
    pub(crate) fn train(
        docs: &[Sparse],
        labels: &[usize],
        classes: usize,
        fixed: &[Sparse],
        features: usize,
        settings: SvmSettings,
        threads: usize,
    ) -> LinearModel {
        let columns = classes + fixed.len();
        if classes == 0 || docs.is_empty() {
            let mut trained = vec![(Vec::new(), -1.0); classes];
            trained.extend(fixed.iter().map(|v| (dense(v, features), 0.0)));
            return Self::from_columns(&trained, columns, features);
        }
        let threads = threads.clamp(1, classes);
        // Per class: (dense weights, bias).
        let mut trained: Vec<(Vec<f32>, f32)> = vec![(Vec::new(), 0.0); classes];
        let per_thread = classes.div_ceil(threads);
        std::thread::scope(|scope| {
            for (chunk_no, chunk) in trained.chunks_mut(per_thread).enumerate() {
                scope.spawn(move || {
                    let mut w = vec![0.0_f32; features];
                    let mut alpha = vec![0.0_f32; docs.len()];
                    for (k, slot) in chunk.iter_mut().enumerate() {
                        let class = chunk_no * per_thread + k;
                        let b = train_one(docs, labels, class, settings, &mut w, &mut alpha);
                        *slot = (w.clone(), b);
                    }
                });
            }
        });

        trained.extend(fixed.iter().map(|v| (dense(v, features), 0.0)));
        Self::from_columns(&trained, columns, features)
    }

    /// Feature-major rows for the features any column uses.
    fn from_columns(columns: &[(Vec<f32>, f32)], width: usize, features: usize) -> LinearModel {
        let mut row_of = vec![NO_ROW; features];
        let mut weights = Vec::new();
        let mut rows = 0_u32;
        let weight = |w: &Vec<f32>, f: usize| w.get(f).copied().unwrap_or(0.0);
        for (f, slot) in row_of.iter_mut().enumerate() {
            if columns.iter().any(|(w, _)| weight(w, f) != 0.0) {
                *slot = rows;
                rows += 1;
                weights.extend(columns.iter().map(|(w, _)| weight(w, f)));
            }
        }
        LinearModel {
            columns: width,
            row_of,
            weights,
            bias: columns.iter().map(|(_, b)| *b).collect(),
        }
    }

    /// Every column's value for `x` (decision values of the classes, then
    /// the fixed columns' dot products), into `out`.
    pub(crate) fn scores(&self, x: &Sparse, out: &mut Vec<f32>) {
        out.clear();
        out.extend_from_slice(&self.bias);
        for &(f, v) in x {
            let Some(&row) = self.row_of.get(f as usize) else {
                continue;
            };
            if row == NO_ROW {
                continue;
            }
            let start = row as usize * self.columns;
            if let Some(weights) = self.weights.get(start..start + self.columns) {
                for (o, w) in out.iter_mut().zip(weights) {
                    *o += v * w;
                }
            }
        }
    }
}

/// A sparse vector as a dense one of `features` entries.
fn dense(v: &Sparse, features: usize) -> Vec<f32> {
    let mut d = vec![0.0; features];
    for &(f, x) in v {
        if let Some(slot) = d.get_mut(f as usize) {
            *slot = x;
        }
    }
    d
}

/// Dual coordinate descent for one class against the rest; leaves the weights
/// in `w` and returns the bias. `w` and `alpha` are scratch, reset here.
fn train_one(
    docs: &[Sparse],
    labels: &[usize],
    class: usize,
    settings: SvmSettings,
    w: &mut [f32],
    alpha: &mut [f32],
) -> f32 {
    w.fill(0.0);
    alpha.fill(0.0);
    let mut b = 0.0_f32;
    // L2 loss: the diagonal term 1/(2C), no upper bound on alpha.
    let diag = 0.5 / settings.c;
    let qd: Vec<f32> = docs
        .iter()
        .map(|x| x.iter().map(|&(_, v)| v * v).sum::<f32>() + 1.0 + diag)
        .collect();
    let mut order: Vec<usize> = (0..docs.len()).collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64 ^ class as u64;
    for _ in 0..settings.max_epochs {
        // A fresh random order each pass (seeded: builds are reproducible).
        for i in (1..order.len()).rev() {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            order.swap(i, (seed >> 33) as usize % (i + 1));
        }
        let (mut pg_max, mut pg_min) = (f32::NEG_INFINITY, f32::INFINITY);
        for &i in &order {
            let x = &docs[i];
            let y = if labels[i] == class { 1.0 } else { -1.0 };
            let dot: f32 = x.iter().map(|&(f, v)| w[f as usize] * v).sum::<f32>() + b;
            let g = y * dot - 1.0 + diag * alpha[i];
            let pg = if alpha[i] == 0.0 { g.min(0.0) } else { g };
            pg_max = pg_max.max(pg);
            pg_min = pg_min.min(pg);
            if pg.abs() > 1e-12 {
                let old = alpha[i];
                alpha[i] = (old - g / qd[i]).max(0.0);
                let d = (alpha[i] - old) * y;
                if d != 0.0 {
                    for &(f, v) in x {
                        w[f as usize] += d * v;
                    }
                    b += d;
                }
            }
        }
        if pg_max - pg_min < settings.eps {
            break;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_three_classes() {
        // Class k has feature k; feature 3 is shared noise.
        let docs: Vec<Sparse> = (0..30)
            .map(|i| vec![((i % 3) as u32, 1.0), (3, 0.5)])
            .collect();
        let labels: Vec<usize> = (0..30).map(|i| i % 3).collect();
        let m = LinearModel::train(&docs, &labels, 3, &[], 4, SvmSettings::default(), 2);
        let mut out = Vec::new();
        for k in 0..3_u32 {
            m.scores(&vec![(k, 1.0)], &mut out);
            let best = (0..3).max_by(|&a, &b| out[a].total_cmp(&out[b])).unwrap();
            assert_eq!(best, k as usize, "{out:?}");
            assert!(
                out[k as usize] > 0.5,
                "a training point is on its side: {out:?}"
            );
        }
        // Nothing known: every class says "not me".
        m.scores(&vec![(9, 1.0)], &mut out);
        assert!(out.iter().all(|&s| s < 0.0), "{out:?}");
    }

    #[test]
    fn empty_input_gives_a_model_that_rejects() {
        let m = LinearModel::train(&[], &[], 2, &[], 0, SvmSettings::default(), 1);
        let mut out = Vec::new();
        m.scores(&vec![(0, 1.0)], &mut out);
        assert_eq!(out, vec![-1.0, -1.0]);
    }

    #[test]
    fn same_model_whatever_the_threads() {
        let docs: Vec<Sparse> = (0..40)
            .map(|i| vec![((i % 4) as u32, 1.0), (4 + (i % 7) as u32, 0.3)])
            .collect();
        let labels: Vec<usize> = (0..40).map(|i| i % 4).collect();
        let a = LinearModel::train(&docs, &labels, 4, &[], 11, SvmSettings::default(), 1);
        let b = LinearModel::train(&docs, &labels, 4, &[], 11, SvmSettings::default(), 3);
        assert_eq!(a.weights, b.weights);
        assert_eq!(a.bias, b.bias);
    }

    #[test]
    fn fixed_columns_are_dot_products() {
        let docs: Vec<Sparse> = vec![vec![(0, 1.0)], vec![(1, 1.0)]];
        let fixed = vec![vec![(0, 0.5), (2, 2.0)]];
        let m = LinearModel::train(&docs, &[0, 1], 2, &fixed, 3, SvmSettings::default(), 1);
        let mut out = Vec::new();
        m.scores(&vec![(0, 1.0), (2, 1.0)], &mut out);
        assert_eq!(out.len(), 3);
        assert!((out[2] - 2.5).abs() < 1e-6, "{out:?}");
    }
}

//! A linear classifier trained at load: one-vs-rest L2-regularised,
//! L2-loss (squared hinge) support vector machines over the matcher's sparse
//! TF-IDF vectors, solved in the dual by coordinate descent (Hsieh et al.
//! 2008, the liblinear solver that scikit-learn's `LinearSVC` uses), with a
//! bias term regularised like a weight (liblinear's `-B 1`) and liblinear's
//! shrinking (examples that stay at a bound leave the passes until the last
//! check), so that later passes walk mostly the support vectors.
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
    /// Hinge loss (L1-loss SVM: `alpha <= C`) instead of squared hinge.
    pub l1_loss: bool,
}

impl Default for SvmSettings {
    fn default() -> Self {
        SvmSettings {
            c: 1.0,
            eps: 0.1,
            max_epochs: 50,
            l1_loss: false,
        }
    }
}

/// One-vs-rest linear SVMs, `score_c(x) = w_c · x + b_c`, followed by fixed
/// linear columns given at training (the matcher's centroids), so that one
/// pass over the query's features yields both.
///
/// The trained weights are dense rows by feature (a quarter of them are
/// non-zero on banking77, dense enough that a vectorised row beats a sparse
/// one), stored as 16-bit integers with one scale a row: half the memory a
/// query reads, for a relative error below 2^-15 of the row's largest weight
/// (same accuracy on every benchmark). The fixed columns are sparse rows (a
/// fourteenth non-zero there).
#[derive(Debug, Clone, Default)]
pub(crate) struct LinearModel {
    /// Trained classes: the width of a dense row.
    classes: usize,
    /// Trained classes, then fixed columns: the number of scores.
    columns: usize,
    /// Feature id → row, or [`NO_ROW`]: dense row `r` is
    /// `dense[r * classes..(r + 1) * classes]` times `scale[r]`, sparse row `r` the entries
    /// `starts[r]..starts[r + 1]` of [`Self::cols`] and [`Self::values`].
    row_of: Vec<u32>,
    dense: Vec<i16>,
    scale: Vec<f32>,
    starts: Vec<u32>,
    /// Fixed column (from 0) of each non-zero fixed weight, and the weight.
    cols: Vec<u32>,
    values: Vec<f32>,
    /// One bias per column (0 for the fixed columns).
    bias: Vec<f32>,
}

impl LinearModel {
    /// Trains one SVM per class on `docs` (labels in `0..classes`), over
    /// features `0..features`, on up to `threads` threads; the `fixed`
    /// vectors become the columns after the classes. A model without
    /// documents says -1 ("not me") for every class.
    pub(crate) fn train(
        docs: &Docs,
        labels: &[usize],
        classes: usize,
        fixed: &[Sparse],
        features: usize,
        settings: SvmSettings,
        threads: usize,
    ) -> LinearModel {
        if classes == 0 || docs.is_empty() {
            let trained = vec![(Vec::new(), -1.0); classes];
            return Self::from_columns(&trained, fixed, features);
        }
        let threads = threads.clamp(1, classes);
        let rows = Rows::new(docs, settings);
        // Per class: (dense weights, bias).
        let mut trained: Vec<(Vec<f32>, f32)> = vec![(Vec::new(), 0.0); classes];
        let per_thread = classes.div_ceil(threads);
        std::thread::scope(|scope| {
            for (chunk_no, chunk) in trained.chunks_mut(per_thread).enumerate() {
                let rows = &rows;
                scope.spawn(move || {
                    let mut alpha = vec![0.0_f32; docs.len()];
                    let mut order = Vec::with_capacity(docs.len());
                    for (k, slot) in chunk.iter_mut().enumerate() {
                        let class = chunk_no * per_thread + k;
                        let mut w = vec![0.0_f32; features];
                        let b = train_one(
                            rows, labels, class, settings, &mut w, &mut alpha, &mut order,
                        );
                        *slot = (w, b);
                    }
                });
            }
        });
        Self::from_columns(&trained, fixed, features)
    }

    /// Feature-major rows: dense for the trained columns, sparse for the
    /// fixed ones, for the features any column uses.
    fn from_columns(trained: &[(Vec<f32>, f32)], fixed: &[Sparse], features: usize) -> LinearModel {
        let classes = trained.len();
        // Fixed weights by feature: (feature, column, weight), sorted.
        let mut by_feature: Vec<(u32, u32, f32)> = fixed
            .iter()
            .enumerate()
            .flat_map(|(c, v)| {
                v.iter()
                    .filter(|&&(f, x)| x != 0.0 && (f as usize) < features)
                    .map(move |&(f, x)| (f, c as u32, x))
            })
            .collect();
        by_feature.sort_unstable_by_key(|&(f, c, _)| (f, c));
        let mut row_of = vec![NO_ROW; features];
        let mut dense = Vec::new();
        let mut scale = Vec::new();
        let mut starts = vec![0_u32];
        let mut cols = Vec::new();
        let mut values = Vec::new();
        let mut next_fixed = by_feature.iter().peekable();
        let weight = |w: &Vec<f32>, f: usize| w.get(f).copied().unwrap_or(0.0);
        for (f, slot) in row_of.iter_mut().enumerate() {
            let from = cols.len();
            while let Some(&&(g, c, x)) = next_fixed.peek() {
                if g as usize != f {
                    break;
                }
                cols.push(c);
                values.push(x);
                next_fixed.next();
            }
            let trained_used = trained.iter().any(|(w, _)| weight(w, f) != 0.0);
            if trained_used || cols.len() > from {
                *slot = (starts.len() - 1) as u32;
                starts.push(cols.len() as u32);
                let largest = trained
                    .iter()
                    .map(|(w, _)| weight(w, f).abs())
                    .fold(0.0_f32, f32::max);
                let step = if largest > 0.0 {
                    largest / 32767.0
                } else {
                    1.0
                };
                scale.push(step);
                dense.extend(
                    trained.iter().map(|(w, _)| {
                        (weight(w, f) / step).round().clamp(-32767.0, 32767.0) as i16
                    }),
                );
            }
        }
        let mut bias: Vec<f32> = trained.iter().map(|(_, b)| *b).collect();
        bias.resize(classes + fixed.len(), 0.0);
        LinearModel {
            classes,
            columns: classes + fixed.len(),
            row_of,
            dense,
            scale,
            starts,
            cols,
            values,
            bias,
        }
    }

    /// Every column's value for `x` (decision values of the classes, then
    /// the fixed columns' dot products), into `out`.
    pub(crate) fn scores(&self, x: &Sparse, out: &mut Vec<f32>) {
        out.clear();
        out.extend_from_slice(&self.bias);
        out.resize(self.columns, 0.0);
        let (trained, fixed) = out.split_at_mut(self.classes.min(self.columns));
        for &(f, v) in x {
            let Some(&row) = self.row_of.get(f as usize) else {
                continue;
            };
            if row == NO_ROW {
                continue;
            }
            let row = row as usize;
            let start = row * self.classes;
            if let (Some(weights), Some(&step)) = (
                self.dense.get(start..start + self.classes),
                self.scale.get(row),
            ) {
                let v = v * step;
                for (o, &w) in trained.iter_mut().zip(weights) {
                    *o += v * f32::from(w);
                }
            }
            let (Some(&from), Some(&to)) = (self.starts.get(row), self.starts.get(row + 1)) else {
                continue;
            };
            let range = from as usize..to as usize;
            let (Some(cols), Some(values)) = (self.cols.get(range.clone()), self.values.get(range))
            else {
                continue;
            };
            for (&c, &w) in cols.iter().zip(values) {
                if let Some(o) = fixed.get_mut(c as usize) {
                    *o += v * w;
                }
            }
        }
    }

    /// Bytes the model holds.
    pub(crate) fn heap_bytes(&self) -> usize {
        2 * self.dense.len()
            + 4 * (self.row_of.len()
                + self.scale.len()
                + self.starts.len()
                + self.cols.len()
                + self.values.len()
                + self.bias.len())
    }
}

/// Sparse documents in one contiguous array: no allocation per document,
/// and a training pass, which reads them in a random order, can prefetch the
/// next few.
#[derive(Debug, Clone)]
pub(crate) struct Docs {
    /// Document `i` is `entries[starts[i]..starts[i + 1]]`.
    starts: Vec<usize>,
    entries: Vec<(u32, f32)>,
}

impl Default for Docs {
    fn default() -> Self {
        Docs {
            starts: vec![0],
            entries: Vec::new(),
        }
    }
}

impl From<&[Sparse]> for Docs {
    fn from(docs: &[Sparse]) -> Self {
        let mut all = Docs::default();
        for x in docs {
            all.push(x);
        }
        all
    }
}

impl Docs {
    /// Appends a document (`(feature id, weight)`, sorted by id).
    pub(crate) fn push(&mut self, x: &[(u32, f32)]) {
        self.entries.extend_from_slice(x);
        self.starts.push(self.entries.len());
    }

    /// The number of documents.
    pub(crate) fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// No documents.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Document `i` (empty beyond the last).
    pub(crate) fn get(&self, i: usize) -> &[(u32, f32)] {
        match (self.starts.get(i), self.starts.get(i + 1)) {
            (Some(&from), Some(&to)) => self.entries.get(from..to).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// The documents in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[(u32, f32)]> {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// The training documents with each one's diagonal term.
struct Rows<'d> {
    docs: &'d Docs,
    /// `x·x + 1 + diag` of each document: the coordinate's curvature.
    qd: Vec<f32>,
    /// The L2 loss's diagonal term (0 for the L1 loss).
    diag: f32,
    /// The bound on each `alpha` (infinite for the L2 loss).
    upper: f32,
}

/// Documents prefetched ahead of the one a pass is at.
const PREFETCH_AHEAD: usize = 3;

impl<'d> Rows<'d> {
    fn new(docs: &'d Docs, settings: SvmSettings) -> Rows<'d> {
        // L2 loss: the diagonal term 1/(2C), no upper bound on alpha; L1
        // loss: no diagonal term, alpha at most C.
        let (diag, upper) = if settings.l1_loss {
            (0.0, settings.c)
        } else {
            (0.5 / settings.c, f32::INFINITY)
        };
        let qd = docs
            .iter()
            .map(|x| x.iter().map(|&(_, v)| v * v).sum::<f32>() + 1.0 + diag)
            .collect();
        Rows {
            docs,
            qd,
            diag,
            upper,
        }
    }

    /// Document `i`.
    fn doc(&self, i: usize) -> &'d [(u32, f32)] {
        self.docs.get(i)
    }

    /// Asks the processor to bring document `i` into the cache.
    fn prefetch(&self, i: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let doc = self.doc(i);
            // 8 entries of 8 bytes: one cache line.
            for line in doc.chunks(8) {
                // SAFETY: a prefetch is a hint that never faults; the pointer
                // is into a live slice anyway.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast::<i8>()) };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = i;
    }
}

/// Dual coordinate descent for one class against the rest; leaves the weights
/// in `w` and returns the bias. `w`, `alpha` and `order` are scratch, reset
/// here.
fn train_one(
    rows: &Rows,
    labels: &[usize],
    class: usize,
    settings: SvmSettings,
    w: &mut [f32],
    alpha: &mut [f32],
    order: &mut Vec<usize>,
) -> f32 {
    let n = rows.qd.len();
    w.fill(0.0);
    alpha.fill(0.0);
    let mut b = 0.0_f32;
    let (diag, upper, qd) = (rows.diag, rows.upper, &rows.qd);
    order.clear();
    order.extend(0..n);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64 ^ class as u64;
    // Shrinking (liblinear): an example at a bound whose gradient points
    // outwards beyond the last pass's spread leaves the active set, so later
    // passes walk mostly the support vectors; all of them are checked again
    // before stopping.
    let mut active = n;
    let (mut pg_max_old, mut pg_min_old) = (f32::INFINITY, f32::NEG_INFINITY);
    for _ in 0..settings.max_epochs {
        // A fresh random order each pass (seeded: builds are reproducible).
        for i in (1..active).rev() {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            order.swap(i, (seed >> 33) as usize % (i + 1));
        }
        for &i in order.iter().take(PREFETCH_AHEAD.min(active)) {
            rows.prefetch(i);
        }
        let (mut pg_max, mut pg_min) = (f32::NEG_INFINITY, f32::INFINITY);
        let mut s = 0;
        while s < active {
            // The document PREFETCH_AHEAD places on, unless shrinking
            // swaps another one there (then it is only a wasted hint).
            if let Some(&ahead) = order
                .get(s + PREFETCH_AHEAD)
                .filter(|_| s + PREFETCH_AHEAD < active)
            {
                rows.prefetch(ahead);
            }
            let i = order[s];
            let x = rows.doc(i);
            let y = if labels[i] == class { 1.0 } else { -1.0 };
            let dot = dot(w, x) + b;
            let g = y * dot - 1.0 + diag * alpha[i];
            let pg = if alpha[i] == 0.0 {
                if g > pg_max_old {
                    active -= 1;
                    order.swap(s, active);
                    continue;
                }
                g.min(0.0)
            } else if alpha[i] >= upper {
                if g < pg_min_old {
                    active -= 1;
                    order.swap(s, active);
                    continue;
                }
                g.max(0.0)
            } else {
                g
            };
            s += 1;
            pg_max = pg_max.max(pg);
            pg_min = pg_min.min(pg);
            if pg.abs() > 1e-12 {
                let old = alpha[i];
                alpha[i] = (old - g / qd[i]).clamp(0.0, upper);
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
            if active == n {
                break;
            }
            // Converged on the active set: check every example again.
            active = n;
            pg_max_old = f32::INFINITY;
            pg_min_old = f32::NEG_INFINITY;
            continue;
        }
        pg_max_old = if pg_max <= 0.0 { f32::INFINITY } else { pg_max };
        pg_min_old = if pg_min >= 0.0 {
            f32::NEG_INFINITY
        } else {
            pg_min
        };
    }
    b
}

/// `w · x` in four independent sums (the additions of one sum wait on each
/// other; four keep the processor busy).
fn dot(w: &[f32], x: &[(u32, f32)]) -> f32 {
    let weight = |f: u32| w.get(f as usize).copied().unwrap_or(0.0);
    let mut sums = [0.0_f32; 4];
    let chunks = x.chunks_exact(4);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (sum, &(f, v)) in sums.iter_mut().zip(chunk) {
            *sum += weight(f) * v;
        }
    }
    let mut total = (sums[0] + sums[1]) + (sums[2] + sums[3]);
    for &(f, v) in rest {
        total += weight(f) * v;
    }
    total
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
        let m = LinearModel::train(
            &Docs::from(docs.as_slice()),
            &labels,
            3,
            &[],
            4,
            SvmSettings::default(),
            2,
        );
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
    fn dot_products_of_any_length() {
        let w: Vec<f32> = (0..16).map(|i| i as f32 * 0.5).collect();
        for len in 0..10_u32 {
            let x: Sparse = (0..len).map(|f| (f, 1.0 + f as f32)).collect();
            let want: f32 = x.iter().map(|&(f, v)| w[f as usize] * v).sum();
            assert!((dot(&w, &x) - want).abs() < 1e-4, "length {len}");
        }
        // A feature beyond the weights weighs nothing.
        assert_eq!(dot(&w, &[(3, 2.0), (99, 5.0)]), 3.0);
    }

    #[test]
    fn empty_input_gives_a_model_that_rejects() {
        let m = LinearModel::train(&Docs::default(), &[], 2, &[], 0, SvmSettings::default(), 1);
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
        let a = LinearModel::train(
            &Docs::from(docs.as_slice()),
            &labels,
            4,
            &[],
            11,
            SvmSettings::default(),
            1,
        );
        let b = LinearModel::train(
            &Docs::from(docs.as_slice()),
            &labels,
            4,
            &[],
            11,
            SvmSettings::default(),
            3,
        );
        assert_eq!(a.dense, b.dense);
        assert_eq!(a.values, b.values);
        assert_eq!(a.cols, b.cols);
        assert_eq!(a.bias, b.bias);
    }

    #[test]
    fn fixed_columns_are_dot_products() {
        let docs: Vec<Sparse> = vec![vec![(0, 1.0)], vec![(1, 1.0)]];
        let fixed = vec![vec![(0, 0.5), (2, 2.0)]];
        let m = LinearModel::train(
            &Docs::from(docs.as_slice()),
            &[0, 1],
            2,
            &fixed,
            3,
            SvmSettings::default(),
            1,
        );
        let mut out = Vec::new();
        m.scores(&vec![(0, 1.0), (2, 1.0)], &mut out);
        assert_eq!(out.len(), 3);
        assert!((out[2] - 2.5).abs() < 1e-6, "{out:?}");
    }
}

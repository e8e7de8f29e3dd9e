//! A linear classifier trained at load: one-vs-rest L2-regularised,
//! L2-loss (squared hinge) support vector machines over the matcher's sparse
//! TF-IDF vectors, solved in the dual by coordinate descent (Hsieh et al.
//! 2008, the liblinear solver that scikit-learn's `LinearSVC` uses), with a
//! bias term regularised like a weight (liblinear's `-B 1`) and liblinear's
//! shrinking (examples that stay at a bound leave the passes until the last
//! check), so that later passes walk mostly the support vectors. Eight
//! classes are solved in lockstep ([`train_block`]): their weights for a
//! feature share one row, so a visit reads an example and its rows once for
//! all eight. The solver sees features whose columns are proportional (such
//! as the n-grams of a rare word) as one, for the same solution
//! ([`Compact`]). A training can start from another's dual solution
//! ([`Duals`]: the calibration round's for the final build), its documents
//! can be laid out before that start is known ([`Problem`]), and its blocks
//! of classes go to whichever thread is free; the model does not depend on
//! the threads.
//!
//! The weights are kept feature-major (one row of column weights per
//! feature), so scoring a query costs one row per query feature, whatever
//! the number of training examples.

/// `(feature id, weight)`: training vectors are sorted by id without
/// duplicates; a query vector (see [`LinearModel::scores`]) may be in any
/// order.
pub(crate) type Sparse = Vec<(u32, f32)>;

/// How many features ahead [`LinearModel::scores`] asks for a row.
const ROW_PREFETCH_AHEAD: usize = 4;

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
/// Weights are kept as one dense row per feature: the trained columns, then
/// the fixed columns from the row's first non-zero one to its last (a
/// character n-gram has no weight in the embedding centroids, an embedding
/// dimension none in the lexical ones, a rare feature is in few centroids).
/// They are stored as 16-bit integers with two scales a row (one for each
/// part): half the memory a query reads of `f32` rows, for a relative error
/// below 2^-15 of the part's largest weight (same accuracy on every
/// benchmark). Dense rows beat sparse ones here even for the centroids (a
/// fourteenth non-zero on banking77): a row is a few cache lines read in
/// order and summed eight lanes at a time, where a sparse row scatters into
/// the output one weight at a time.
#[derive(Debug, Clone, Default)]
pub(crate) struct LinearModel {
    /// Trained classes.
    classes: usize,
    /// Trained classes, then fixed columns: the number of scores.
    columns: usize,
    /// Feature id → its row ([`Row::NONE`] for a feature no column uses).
    rows: Vec<Row>,
    /// The rows' weights, one after the other.
    dense: Vec<i16>,
    /// One bias per column (0 for the fixed columns).
    bias: Vec<f32>,
}

/// Where a feature's weights are in [`LinearModel::dense`]: the trained
/// columns' weights at `start..start + classes` times `step`, then fixed
/// columns `fixed_from..fixed_from + fixed_len` times `fixed_step`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Row {
    start: u32,
    fixed_from: u32,
    fixed_len: u32,
    step: f32,
    fixed_step: f32,
}

impl Row {
    /// No row: the feature has no weight in any column.
    const NONE: Row = Row {
        start: u32::MAX,
        fixed_from: 0,
        fixed_len: 0,
        step: 0.0,
        fixed_step: 0.0,
    };
}

/// The step that maps a part of a row onto `i16` (1 for an all-zero part).
fn quantum(weights: impl Iterator<Item = f32>) -> f32 {
    let largest = weights.map(f32::abs).fold(0.0_f32, f32::max);
    if largest > 0.0 {
        largest / 32767.0
    } else {
        1.0
    }
}

/// `weight / step`, rounded to the nearest `i16`.
fn quantize(weight: f32, step: f32) -> i16 {
    (weight / step).round().clamp(-32767.0, 32767.0) as i16
}

/// A training whose documents are ready for the solver (features merged,
/// see [`Compact`]): all of it but the starting point. Preparing it does not
/// depend on a warm start, so it can run while the start is computed.
pub(crate) struct Problem {
    /// The documents in the solver's layout (`None`: no documents or no
    /// classes, every class says "not me").
    training: Option<Training>,
    labels: Vec<usize>,
    classes: usize,
    fixed: Vec<Sparse>,
    features: usize,
    settings: SvmSettings,
}

impl Problem {
    /// One SVM per class on `docs` (labels in `0..classes`), over features
    /// `0..features`; the `fixed` vectors become the columns after the
    /// classes (see [`LinearModel::train`]).
    pub(crate) fn new(
        docs: &Docs,
        labels: Vec<usize>,
        classes: usize,
        fixed: Vec<Sparse>,
        features: usize,
        settings: SvmSettings,
    ) -> Problem {
        Self::with_merge(docs, labels, classes, fixed, features, settings, true)
    }

    /// [`Self::new`], `merge`: features with proportional columns merged
    /// for the solver; otherwise only renumbered.
    fn with_merge(
        docs: &Docs,
        labels: Vec<usize>,
        classes: usize,
        fixed: Vec<Sparse>,
        features: usize,
        settings: SvmSettings,
        merge: bool,
    ) -> Problem {
        let training = (classes > 0 && !docs.is_empty()).then(|| {
            let training = Training::new(docs, features, settings, merge);
            tracing::debug!(
                features,
                merged_features = training.compact.features,
                entries = docs.entries.len(),
                merged_entries = training.solver.entries(),
                "svm features merged"
            );
            training
        });
        Problem {
            training,
            labels,
            classes,
            fixed,
            features,
            settings,
        }
    }

    /// Solves the problem on up to `threads` threads from `start` (see
    /// [`Duals`]): the model, and the solution to start another training
    /// of mostly the same documents from.
    pub(crate) fn solve(self, threads: usize, start: &Duals) -> (LinearModel, Duals) {
        let Problem {
            training,
            labels,
            classes,
            fixed,
            features,
            settings,
        } = self;
        let Some(training) = training else {
            let trained = vec![(Vec::new(), -1.0); classes];
            let duals = Duals {
                classes: vec![Vec::new(); classes],
                visits: 0,
            };
            return (LinearModel::from_columns(&trained, &fixed, features), duals);
        };
        // Per block of classes: per class (dense weights, bias, non-zero
        // alphas, visits).
        let n = training.qd.len();
        let blocks = classes.div_ceil(BLOCK);
        let solve = |block: usize, scratch: &mut BlockScratch| {
            let first = block * BLOCK;
            let lanes = (classes - first).min(BLOCK);
            scratch.alpha.clear();
            scratch.alpha.resize(n, [0.0; BLOCK]);
            for k in 0..lanes {
                for &(i, a) in start.of(first + k) {
                    if let Some(slot) = scratch.alpha.get_mut(i as usize)
                        && a.is_finite()
                        && a > 0.0
                    {
                        slot[k] = a.min(training.upper);
                    }
                }
            }
            let job = BlockJob {
                training: &training,
                labels: &labels,
                first,
                lanes,
                settings,
            };
            let (b, visits) = train_block(job, scratch);
            (0..lanes)
                .map(|k| {
                    let w: Vec<f32> = scratch.w.iter().map(|row| row[k]).collect();
                    let alphas: Vec<(u32, f32)> = scratch
                        .alpha
                        .iter()
                        .enumerate()
                        .filter(|&(_, a)| a[k] != 0.0)
                        .map(|(i, a)| (i as u32, a[k]))
                        .collect();
                    (training.compact.expand(&w), b[k], alphas, visits[k])
                })
                .collect::<Vec<_>>()
        };
        let scratch = || BlockScratch {
            alpha: Vec::with_capacity(n),
            w: Vec::new(),
            order: Vec::with_capacity(n),
        };
        let solved: Vec<_> = for_each_class(blocks, threads, scratch, solve)
            .into_iter()
            .flatten()
            .collect();
        // The merged documents are not needed for the rows: free them first.
        drop(training);
        let mut trained = Vec::with_capacity(classes);
        let mut duals = Duals {
            classes: Vec::with_capacity(classes),
            visits: 0,
        };
        for (w, b, alphas, visits) in solved {
            trained.push((w, b));
            duals.classes.push(alphas);
            duals.visits += visits;
        }
        (LinearModel::from_columns(&trained, &fixed, features), duals)
    }
}

impl LinearModel {
    /// Trains one SVM per class on `docs` (labels in `0..classes`), over
    /// features `0..features`, on up to `threads` threads; the `fixed`
    /// vectors become the columns after the classes. A model without
    /// documents says -1 ("not me") for every class.
    ///
    /// `start` gives each class's solver its first point (see [`Duals`]);
    /// the solution is returned with the model, to start another training
    /// of mostly the same documents from. ([`Problem`] is the same in two
    /// steps.)
    #[cfg(test)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn train(
        docs: &Docs,
        labels: &[usize],
        classes: usize,
        fixed: &[Sparse],
        features: usize,
        settings: SvmSettings,
        threads: usize,
        start: &Duals,
    ) -> (LinearModel, Duals) {
        Problem::new(
            docs,
            labels.to_vec(),
            classes,
            fixed.to_vec(),
            features,
            settings,
        )
        .solve(threads, start)
    }

    /// Feature-major rows over the trained and the fixed columns, for the
    /// features any column uses.
    fn from_columns(trained: &[(Vec<f32>, f32)], fixed: &[Sparse], features: usize) -> LinearModel {
        let classes = trained.len();
        let columns = classes + fixed.len();
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
        let mut rows = vec![Row::NONE; features];
        let mut dense = Vec::new();
        let mut next_fixed = by_feature.iter().peekable();
        let mut fixed_row: Vec<(u32, f32)> = Vec::new();
        let weight = |w: &Vec<f32>, f: usize| w.get(f).copied().unwrap_or(0.0);
        // Feature f's trained weights, gathered once from the columns.
        let mut column: Vec<f32> = Vec::with_capacity(classes);
        for (f, slot) in rows.iter_mut().enumerate() {
            column.clear();
            column.extend(trained.iter().map(|(w, _)| weight(w, f)));
            fixed_row.clear();
            while let Some(&&(g, c, x)) = next_fixed.peek() {
                if g as usize != f {
                    break;
                }
                fixed_row.push((c, x));
                next_fixed.next();
            }
            let trained_used = column.iter().any(|&x| x != 0.0);
            if !trained_used && fixed_row.is_empty() {
                continue;
            }
            let (fixed_from, fixed_to) = match (fixed_row.first(), fixed_row.last()) {
                (Some(&(first, _)), Some(&(last, _))) => (first, last + 1),
                _ => (0, 0),
            };
            let step = quantum(column.iter().copied());
            let fixed_step = quantum(fixed_row.iter().map(|&(_, x)| x));
            *slot = Row {
                start: u32::try_from(dense.len()).unwrap_or(u32::MAX),
                fixed_from,
                fixed_len: fixed_to - fixed_from,
                step,
                fixed_step,
            };
            dense.extend(column.iter().map(|&x| quantize(x, step)));
            let from = dense.len();
            dense.resize(from + (fixed_to - fixed_from) as usize, 0);
            for &(c, x) in &fixed_row {
                dense[from + (c - fixed_from) as usize] = quantize(x, fixed_step);
            }
        }
        let mut bias: Vec<f32> = trained.iter().map(|(_, b)| *b).collect();
        bias.resize(columns, 0.0);
        LinearModel {
            classes,
            columns,
            rows,
            dense,
            bias,
        }
    }

    /// The weights of feature `f`'s row (trained part, then fixed part) and
    /// the row, if it has one.
    #[inline(always)]
    fn row(&self, f: u32) -> Option<(&[i16], Row)> {
        let row = *self.rows.get(f as usize)?;
        let start = row.start as usize;
        let len = self.classes + row.fixed_len as usize;
        Some((self.dense.get(start..start + len)?, row))
    }

    /// Every column's value for `x` (decision values of the classes, then
    /// the fixed columns' dot products), into `out`. `x` may be in any order
    /// and repeat a feature (its values add up).
    pub(crate) fn scores(&self, x: &Sparse, out: &mut Vec<f32>) {
        out.clear();
        out.extend_from_slice(&self.bias);
        out.resize(self.columns, 0.0);
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                unsafe { self.accumulate_avx2(x, out) };
                return;
            }
        }
        self.accumulate(x, out);
    }

    /// [`Self::accumulate`] compiled for AVX2: the compiler converts and
    /// sums eight weights at a time instead of four. Each lane computes the
    /// same two roundings (a product, then a sum) at any vector width, so
    /// both give the same bits.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn accumulate_avx2(&self, x: &Sparse, out: &mut [f32]) {
        self.accumulate(x, out);
    }

    /// Adds each query feature's row, times its value, to `out` (one score
    /// per column, starting from the biases).
    #[inline(always)]
    fn accumulate(&self, x: &Sparse, out: &mut [f32]) {
        let classes = self.classes.min(self.columns);
        if out.len() != self.columns {
            return;
        }
        let (out_trained, out_fixed) = out.split_at_mut(classes);
        for (i, &(f, v)) in x.iter().enumerate() {
            // Rows are scattered over megabytes: ask for a later feature's
            // row now, so that it is in cache by the time it is summed.
            if let Some(&(ahead, _)) = x.get(i + ROW_PREFETCH_AHEAD) {
                self.prefetch_row(ahead);
            }
            let Some((weights, row)) = self.row(f) else {
                continue;
            };
            let (trained, fixed) = weights.split_at(classes.min(weights.len()));
            let v_trained = v * row.step;
            for (o, &w) in out_trained.iter_mut().zip(trained) {
                *o += v_trained * f32::from(w);
            }
            let Some(out_fixed) = out_fixed.get_mut(row.fixed_from as usize..) else {
                continue;
            };
            let v_fixed = v * row.fixed_step;
            for (o, &w) in out_fixed.iter_mut().zip(fixed) {
                *o += v_fixed * f32::from(w);
            }
        }
    }

    /// Appends a row that is the sum of the rows of `parts` (feature,
    /// factor), each times its factor, and returns its id (after every
    /// feature's): a query that would add those rows with those factors,
    /// times one common value, can add this one row instead. The sum is
    /// taken over the rows as stored and stored with its own two steps, so
    /// it differs from the parts' sum by at most one step of rounding.
    /// `None` when no part has a row (or the model is full).
    pub(crate) fn push_combined_row(&mut self, parts: &[(u32, f32)]) -> Option<u32> {
        let classes = self.classes.min(self.columns);
        let mut trained = vec![0.0_f32; classes];
        let (mut fixed_from, mut fixed_to) = (u32::MAX, 0_u32);
        let mut any = false;
        for &(f, _) in parts {
            if let Some((_, row)) = self.row(f) {
                any = true;
                if row.fixed_len > 0 {
                    fixed_from = fixed_from.min(row.fixed_from);
                    fixed_to = fixed_to.max(row.fixed_from + row.fixed_len);
                }
            }
        }
        if !any {
            return None;
        }
        let (fixed_from, fixed_len) = if fixed_to > fixed_from {
            (fixed_from, fixed_to - fixed_from)
        } else {
            (0, 0)
        };
        let mut fixed = vec![0.0_f32; fixed_len as usize];
        for &(f, factor) in parts {
            let Some((weights, row)) = self.row(f) else {
                continue;
            };
            let (w_trained, w_fixed) = weights.split_at(classes.min(weights.len()));
            for (t, &w) in trained.iter_mut().zip(w_trained) {
                *t += factor * row.step * f32::from(w);
            }
            let offset = (row.fixed_from.saturating_sub(fixed_from)) as usize;
            for (t, &w) in fixed.iter_mut().skip(offset).zip(w_fixed) {
                *t += factor * row.fixed_step * f32::from(w);
            }
        }
        self.push_row(&trained, fixed_from, &fixed)
    }

    /// Appends a row of `trained` weights (one per class) and `fixed` ones
    /// (fixed columns from `fixed_from`), each part with its own step, and
    /// returns its id. `None` when the ids or weights would overflow.
    fn push_row(&mut self, trained: &[f32], fixed_from: u32, fixed: &[f32]) -> Option<u32> {
        let id = u32::try_from(self.rows.len()).ok()?;
        let start = u32::try_from(self.dense.len()).ok()?;
        let fixed_len = u32::try_from(fixed.len()).ok()?;
        let step = quantum(trained.iter().copied());
        let fixed_step = quantum(fixed.iter().copied());
        self.dense
            .extend(trained.iter().map(|&w| quantize(w, step)));
        self.dense
            .extend(fixed.iter().map(|&w| quantize(w, fixed_step)));
        self.rows.push(Row {
            start,
            fixed_from: if fixed_len > 0 { fixed_from } else { 0 },
            fixed_len,
            step,
            fixed_step,
        });
        Some(id)
    }

    /// Appends one row per vector of `vectors` (`n × dim`, row-major): the
    /// sum of the rows of features `first..first + dim`, each times the
    /// vector's value for that feature. A query whose features
    /// `first..first + dim` would be `c × (v_1 + … + v_k)` can add the rows
    /// of `v_1 … v_k` with the value `c` instead: `k` rows instead of
    /// `dim` (the static semantic tier: a message's embedding is the
    /// normalised sum of its tokens' vectors). Each row is stored with its
    /// own two steps, like [`Self::push_combined_row`]'s.
    ///
    /// Returns the id of the first row (vector `i`'s row is that plus `i`);
    /// `None`, and nothing appended, when no feature of the range has a
    /// row, or when the rows would hold more than [`MAX_PROJECTED_WEIGHTS`]
    /// weights or overflow the ids.
    pub(crate) fn push_projected_rows(
        &mut self,
        first: u32,
        dim: usize,
        vectors: &[f32],
    ) -> Option<u32> {
        self.push_projected_rows_within(first, dim, vectors, MAX_PROJECTED_WEIGHTS)
    }

    /// [`Self::push_projected_rows`] with at most `max_weights` weights.
    fn push_projected_rows_within(
        &mut self,
        first: u32,
        dim: usize,
        vectors: &[f32],
        max_weights: usize,
    ) -> Option<u32> {
        if dim == 0 {
            return None;
        }
        let classes = self.classes.min(self.columns);
        // The features of the range that have a row, and the fixed columns
        // any of them reaches.
        let mut present: Vec<(usize, &[i16], Row)> = Vec::new();
        let (mut fixed_from, mut fixed_to) = (u32::MAX, 0_u32);
        for j in 0..dim {
            let Some((weights, row)) = u32::try_from(j)
                .ok()
                .and_then(|j| first.checked_add(j))
                .and_then(|f| self.row(f))
            else {
                continue;
            };
            if row.fixed_len > 0 {
                fixed_from = fixed_from.min(row.fixed_from);
                fixed_to = fixed_to.max(row.fixed_from + row.fixed_len);
            }
            present.push((j, weights, row));
        }
        if present.is_empty() {
            return None;
        }
        let fixed_from = fixed_from.min(fixed_to);
        let fixed_len = (fixed_to - fixed_from) as usize;
        let width = classes + fixed_len;
        let n = vectors.len() / dim;
        if n.checked_mul(width)? > max_weights
            || self.rows.len().checked_add(n)? > u32::MAX as usize
            || self.dense.len().checked_add(n * width)? > u32::MAX as usize
        {
            return None;
        }
        // The rows as `f32`, `width` apart: `(feature in the range, row)`.
        let mut table = vec![0.0_f32; present.len() * width];
        let mut features = Vec::with_capacity(present.len());
        for ((j, weights, row), out) in present.iter().zip(table.chunks_exact_mut(width)) {
            features.push(*j);
            let (trained, fixed) = weights.split_at(classes.min(weights.len()));
            for (o, &w) in out.iter_mut().zip(trained) {
                *o = row.step * f32::from(w);
            }
            if row.fixed_len > 0 {
                let offset = classes + (row.fixed_from - fixed_from) as usize;
                for (o, &w) in out.iter_mut().skip(offset).zip(fixed) {
                    *o = row.fixed_step * f32::from(w);
                }
            }
        }
        let id = u32::try_from(self.rows.len()).ok()?;
        self.rows.reserve(n);
        self.dense.reserve(n * width);
        let mut sum = vec![0.0_f32; width];
        for vector in vectors.chunks_exact(dim) {
            project(vector, &features, &table, &mut sum);
            let (trained, fixed) = sum.split_at(classes);
            self.push_row(trained, fixed_from, fixed)?;
        }
        Some(id)
    }

    /// Hints the CPU to load the row of feature `f` into cache.
    #[inline(always)]
    fn prefetch_row(&self, f: u32) {
        if let Some((weights, _)) = self.row(f) {
            prefetch(weights);
        }
    }

    /// Bytes the model holds.
    pub(crate) fn heap_bytes(&self) -> usize {
        2 * self.dense.len() + std::mem::size_of::<Row>() * self.rows.len() + 4 * self.bias.len()
    }
}

/// The most weights [`LinearModel::push_projected_rows`] adds (64 Mi, 128 MiB
/// as 16-bit integers): beyond, a query adds the embedding's rows one by one.
pub(crate) const MAX_PROJECTED_WEIGHTS: usize = 64 << 20;

/// `sum = Σ vector[features[i]] × table[i]` (`table` holds `features.len()`
/// rows of `sum.len()` weights), eight lanes at a time where the processor
/// has AVX2 (the same two roundings per lane: the same bits).
fn project(vector: &[f32], features: &[usize], table: &[f32], sum: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { project_avx2(vector, features, table, sum) };
            return;
        }
    }
    project_portable(vector, features, table, sum);
}

/// [`project`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn project_avx2(vector: &[f32], features: &[usize], table: &[f32], sum: &mut [f32]) {
    project_portable(vector, features, table, sum);
}

#[inline(always)]
fn project_portable(vector: &[f32], features: &[usize], table: &[f32], sum: &mut [f32]) {
    sum.fill(0.0);
    let width = sum.len();
    if width == 0 {
        return;
    }
    for (&j, row) in features.iter().zip(table.chunks_exact(width)) {
        let x = vector.get(j).copied().unwrap_or(0.0);
        if x != 0.0 {
            for (s, &w) in sum.iter_mut().zip(row) {
                *s += x * w;
            }
        }
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
    #[inline]
    pub(crate) fn get(&self, i: usize) -> &[(u32, f32)] {
        match self.starts.get(i..i + 2) {
            Some(&[from, to]) => self.entries.get(from..to).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// The documents in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[(u32, f32)]> {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// The dual solution of a training: per class, the documents with a
/// non-zero `alpha`, `(document, alpha)` by increasing document. Any
/// non-negative alphas (at most C for the hinge loss) are a valid start
/// for the solver: another training of mostly the same documents, started
/// from a solution mapped onto its documents (the others at 0), needs fewer
/// passes to reach the same tolerance. The default starts every class at 0.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Duals {
    classes: Vec<Vec<(u32, f32)>>,
    /// Documents the solver visited to reach this solution (0 for a start).
    visits: u64,
}

impl Duals {
    /// A start from each class's `(document, alpha)` pairs.
    pub(crate) fn from_classes(classes: Vec<Vec<(u32, f32)>>) -> Duals {
        Duals { classes, visits: 0 }
    }

    /// Documents the solver visited to reach this solution, over all
    /// classes: the work of the training.
    pub(crate) fn visits(&self) -> u64 {
        self.visits
    }

    /// Class `class`'s pairs (none beyond the last class).
    pub(crate) fn of(&self, class: usize) -> &[(u32, f32)] {
        self.classes.get(class).map_or(&[], Vec::as_slice)
    }
}

/// One solver thread's buffers for [`train_block`].
struct BlockScratch {
    /// The block's dual variables, one row per document.
    alpha: Vec<Lanes>,
    /// The block's weights, one row per (merged) feature.
    w: Vec<Lanes>,
    /// The order of a pass.
    order: Vec<u32>,
}

/// `solve(class, scratch)` for every class in `0..classes`, results in class
/// order, on up to `threads` threads (this one included) that each take the
/// next class when they finish one, so that a thread on a busy core holds
/// back nobody; one thread: no thread is started. Each thread makes its own
/// buffers with `scratch`. Classes are solved independently, so the results
/// do not depend on the threads.
fn for_each_class<S, T: Send>(
    classes: usize,
    threads: usize,
    scratch: impl Fn() -> S + Sync,
    solve: impl Fn(usize, &mut S) -> T + Sync,
) -> Vec<T> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = threads.clamp(1, classes.max(1));
    if threads == 1 {
        let mut buffers = scratch();
        return (0..classes).map(|c| solve(c, &mut buffers)).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut buffers = scratch();
        let mut done = Vec::new();
        loop {
            let class = next.fetch_add(1, Ordering::Relaxed);
            if class >= classes {
                return done;
            }
            done.push((class, solve(class, &mut buffers)));
        }
    };
    let mut results: Vec<Option<T>> = (0..classes).map(|_| None).collect();
    std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mine = work();
        let theirs = others.into_iter().flat_map(|h| {
            h.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        for (class, result) in mine.into_iter().chain(theirs) {
            results[class] = Some(result);
        }
    });
    results.into_iter().flatten().collect()
}

/// The training documents over fewer features, for the same solution.
///
/// The dual problem sees the documents only through their dot products,
/// and features whose columns (their values over the documents) are
/// proportional add the same term to each of them: features `f` with
/// columns `c_f u` contribute `(sum of c_f²) u_i u_j` to `x_i · x_j`, which
/// one feature with the column `sqrt(sum of c_f²) u` contributes too. So the
/// solver runs over one feature per group of proportional columns (the
/// same dual solution up to float rounding, fewer features to read and
/// update per visit), and each feature's weight is its group's times
/// `c_f / sqrt(sum of c_f²)`. Two cases are merged: features only one
/// document has (any values: a column with one entry is proportional to
/// any other in that document; most rare words' character n-grams), and
/// features in the same documents with the same ratios between their values
/// (bit for bit: the n-grams of a word that only appears in some examples,
/// "refu", "efun", "fund", have the same column). Merged features are
/// numbered by decreasing document frequency, so that the weights most
/// visits read share a few cache lines.
struct Compact {
    /// The documents over the merged features (every id below `features`).
    docs: Docs,
    /// The number of merged features.
    features: usize,
    /// Per original feature: its merged feature (`u32::MAX` for a feature
    /// no document has) and its weight's factor of that feature's.
    parts: Vec<(u32, f32)>,
}

/// What [`Compact::new`] learns of a feature's column in one pass over the
/// documents.
#[derive(Clone, Copy)]
struct ColumnSummary {
    /// Documents that have the feature.
    docs: u32,
    /// The first of them, and the feature's value there.
    first_doc: u32,
    first_value: f32,
    /// A hash of the documents and of each value's ratio to the first.
    hash: u64,
    /// Every value is finite and not 0 (a column that can be merged).
    mergeable: bool,
}

impl ColumnSummary {
    const NONE: ColumnSummary = ColumnSummary {
        docs: 0,
        first_doc: 0,
        first_value: 0.0,
        hash: 0xcbf2_9ce4_8422_2325,
        mergeable: true,
    };

    /// The ratio of `value` to the column's first, bit for bit.
    fn ratio(&self, value: f32) -> u32 {
        (value / self.first_value).to_bits()
    }

    /// Adds document `doc`'s value.
    fn add(&mut self, doc: u32, value: f32) {
        if self.docs == 0 {
            self.first_doc = doc;
            self.first_value = value;
        }
        let ratio = if self.docs == 0 { 0 } else { self.ratio(value) };
        self.docs += 1;
        self.mergeable &= value.is_finite() && value != 0.0;
        for word in [u64::from(doc), u64::from(ratio)] {
            self.hash = (self.hash ^ word)
                .wrapping_mul(0x0000_0100_0000_01b3)
                .rotate_left(23);
        }
    }
}

/// The group a column joins, before the groups' numbering.
struct Column {
    /// The first feature of the group: the others' values are multiples of its.
    first: u32,
    /// The documents that have it.
    docs: u32,
    /// The sum of the squares of the members' factors.
    sumsq: f32,
}

impl Compact {
    /// The merged problem of `docs` over features `0..features` (features
    /// beyond are ignored, as the solver ignores them); `merge` false only
    /// renumbers. Two passes over the documents, no copy of them by feature.
    fn new(docs: &Docs, features: usize, merge: bool) -> Compact {
        let mut summary = vec![ColumnSummary::NONE; features];
        for (i, x) in docs.iter().enumerate() {
            for &(f, v) in x {
                if let Some(column) = summary.get_mut(f as usize) {
                    column.add(i as u32, v);
                }
            }
        }
        // Groups by shape: one per document for the features only it has,
        // one per (hash, documents, first document) for the others.
        let mut groups: Vec<Column> = Vec::new();
        let mut group_of = vec![u32::MAX; features];
        let mut single_of_doc = vec![u32::MAX; docs.len()];
        let mut by_shape: std::collections::HashMap<(u64, u32, u32), u32> =
            std::collections::HashMap::new();
        let new_group = |groups: &mut Vec<Column>, f: usize| {
            groups.push(Column {
                first: f as u32,
                docs: summary[f].docs,
                sumsq: 0.0,
            });
            groups.len() as u32 - 1
        };
        for f in 0..features {
            let column = summary[f];
            group_of[f] = match column.docs {
                0 => continue,
                _ if !merge || !column.mergeable => new_group(&mut groups, f),
                1 => match single_of_doc[column.first_doc as usize] {
                    u32::MAX => {
                        let g = new_group(&mut groups, f);
                        single_of_doc[column.first_doc as usize] = g;
                        g
                    }
                    g => g,
                },
                docs => match by_shape.entry((column.hash, docs, column.first_doc)) {
                    std::collections::hash_map::Entry::Occupied(g) => *g.get(),
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        *slot.insert(new_group(&mut groups, f))
                    }
                },
            };
        }
        drop(by_shape);
        // Check every merged column of two or more documents against its
        // group's first, value by value (a hash is not proof): a column
        // with a document the first lacks, or another ratio, leaves.
        let mut leaves: Vec<usize> = Vec::new();
        for (i, x) in docs.iter().enumerate() {
            for &(f, v) in x {
                let Some(&g) = group_of.get(f as usize).filter(|&&g| g != u32::MAX) else {
                    continue;
                };
                let first = groups[g as usize].first;
                let column = &summary[f as usize];
                if first == f || column.docs < 2 {
                    continue;
                }
                let theirs = &summary[first as usize];
                let same = x
                    .binary_search_by_key(&first, |&(h, _)| h)
                    .ok()
                    .is_some_and(|k| {
                        (i as u32 == column.first_doc) || theirs.ratio(x[k].1) == column.ratio(v)
                    });
                if !same {
                    leaves.push(f as usize);
                }
            }
        }
        leaves.sort_unstable();
        leaves.dedup();
        for f in leaves {
            group_of[f] = new_group(&mut groups, f);
        }
        // Each feature's factor against its group's first.
        let mut factor = vec![0.0_f32; features];
        for f in 0..features {
            if let Some(group) = groups.get_mut(group_of[f] as usize) {
                let c = if group.first as usize == f {
                    1.0
                } else {
                    summary[f].first_value / summary[group.first as usize].first_value
                };
                factor[f] = c;
                group.sumsq += c * c;
            }
        }
        // Numbered by decreasing document frequency.
        let mut order: Vec<u32> = (0..groups.len() as u32).collect();
        order.sort_by_key(|&g| {
            (
                std::cmp::Reverse(groups[g as usize].docs),
                groups[g as usize].first,
            )
        });
        let mut id_of = vec![0_u32; groups.len()];
        for (id, &g) in order.iter().enumerate() {
            id_of[g as usize] = id as u32;
        }
        let parts = (0..features)
            .map(|f| match groups.get(group_of[f] as usize) {
                Some(group) => (id_of[group_of[f] as usize], factor[f] / group.sumsq.sqrt()),
                None => (u32::MAX, 0.0),
            })
            .collect();
        // The documents over the merged features: each group's first
        // stands for it, times the square root of its sum of squares.
        let mut merged = Docs {
            starts: Vec::with_capacity(docs.len() + 1),
            entries: Vec::with_capacity(groups.iter().map(|g| g.docs as usize).sum()),
        };
        merged.starts.push(0);
        let mut row: Vec<(u32, f32)> = Vec::new();
        for x in docs.iter() {
            row.clear();
            for &(f, v) in x {
                if let Some(group) =
                    groups.get(group_of.get(f as usize).copied().unwrap_or(u32::MAX) as usize)
                    && group.first == f
                {
                    row.push((id_of[group_of[f as usize] as usize], group.sumsq.sqrt() * v));
                }
            }
            row.sort_unstable_by_key(|&(id, _)| id);
            merged.push(&row);
        }
        Compact {
            docs: merged,
            features: groups.len(),
            parts,
        }
    }

    /// The weights of the original features from the merged ones'.
    fn expand(&self, merged: &[f32]) -> Vec<f32> {
        self.parts
            .iter()
            .map(|&(id, c)| merged.get(id as usize).map_or(0.0, |&w| c * w))
            .collect()
    }
}

/// The training documents with each one's diagonal term.
struct Training {
    compact: Compact,
    /// The merged documents as the solver reads them (see [`SolverDocs`]).
    solver: SolverDocs,
    /// `x·x + 1 + diag` of each document: the coordinate's curvature.
    qd: Vec<f32>,
    /// The L2 loss's diagonal term (0 for the L1 loss).
    diag: f32,
    /// The bound on each `alpha` (infinite for the L2 loss).
    upper: f32,
}

/// Documents prefetched ahead of the one a pass is at.
const DOC_PREFETCH_AHEAD: usize = 3;

impl Training {
    fn new(docs: &Docs, features: usize, settings: SvmSettings, merge: bool) -> Training {
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
        let mut compact = Compact::new(docs, features, merge);
        // The solver takes the merged documents, in its own layout.
        let narrow = compact.features <= usize::from(u16::MAX) + 1;
        let solver = SolverDocs::new(std::mem::take(&mut compact.docs), narrow);
        Training {
            compact,
            solver,
            qd,
            diag,
            upper,
        }
    }

    /// Asks the processor to bring document `i` into the cache, with its
    /// label and its variables from `labels` and `alpha`.
    #[inline(always)]
    fn prefetch<I: SolverId>(&self, ids: &[I], i: usize, labels: &[usize], alpha: &[Lanes]) {
        let (from, to) = self.solver.span(i);
        prefetch(ids.get(from..to).unwrap_or(&[]));
        prefetch(self.solver.values.get(from..to).unwrap_or(&[]));
        prefetch(self.qd.get(i..=i).unwrap_or(&[]));
        prefetch(alpha.get(i..=i).unwrap_or(&[]));
        prefetch(labels.get(i..=i).unwrap_or(&[]));
    }

    /// Document `i`: its feature ids in `ids` (the solver's id array) and
    /// their values.
    #[inline(always)]
    fn doc<'a, I: SolverId>(&'a self, ids: &'a [I], i: usize) -> (&'a [I], &'a [f32]) {
        let (from, to) = self.solver.span(i);
        (
            ids.get(from..to).unwrap_or(&[]),
            self.solver.values.get(from..to).unwrap_or(&[]),
        )
    }
}

/// A merged feature id as the solver stores it: `u16` when every id fits
/// (a quarter less memory to stream per visit than `u32`, for the same
/// arithmetic), `u32` otherwise.
trait SolverId: Copy + Send + Sync {
    /// The id as an index into the weights.
    fn index(self) -> usize;
}

impl SolverId for u16 {
    #[inline(always)]
    fn index(self) -> usize {
        self as usize
    }
}

impl SolverId for u32 {
    #[inline(always)]
    fn index(self) -> usize {
        self as usize
    }
}

/// The solver's feature ids, in the narrowest type that holds them.
enum SolverIds {
    Narrow(Vec<u16>),
    Wide(Vec<u32>),
}

/// The training documents as the solver streams them every pass: ids and
/// values in separate arrays (no padding between a `u16` id and its value).
struct SolverDocs {
    /// Document `i` is entries `starts[i]..starts[i + 1]`.
    starts: Vec<usize>,
    ids: SolverIds,
    values: Vec<f32>,
}

impl SolverDocs {
    /// `docs` in the solver's layout, the ids as `u16` if `narrow` (every
    /// id must fit then).
    fn new(docs: Docs, narrow: bool) -> SolverDocs {
        let values = docs.entries.iter().map(|&(_, v)| v).collect();
        let ids = if narrow {
            SolverIds::Narrow(docs.entries.iter().map(|&(f, _)| f as u16).collect())
        } else {
            SolverIds::Wide(docs.entries.iter().map(|&(f, _)| f).collect())
        };
        SolverDocs {
            starts: docs.starts,
            ids,
            values,
        }
    }

    /// The entries of document `i` (empty beyond the last).
    #[inline(always)]
    fn span(&self, i: usize) -> (usize, usize) {
        match self.starts.get(i..i + 2) {
            Some(&[from, to]) => (from, to),
            _ => (0, 0),
        }
    }

    /// The number of entries.
    fn entries(&self) -> usize {
        self.values.len()
    }
}

/// Asks the processor to bring every cache line of `items` into the cache
/// (nothing on processors without a hint instruction here).
#[inline(always)]
fn prefetch<T>(items: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let per_line = (64 / std::mem::size_of::<T>().max(1)).max(1);
        for line in items.chunks(per_line) {
            // SAFETY: a prefetch is a hint that never faults and changes no
            // state; the pointer is into a live slice anyway.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast::<i8>()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = items;
}

/// Classes trained together by [`train_block`]: their weights for a
/// feature sit side by side in one 32-byte row.
const BLOCK: usize = 8;

/// One value per class of a block.
type Lanes = [f32; BLOCK];

/// Dual coordinate descent for the classes `first..first + lanes` (at most
/// [`BLOCK`]), each against the rest, in lockstep: a pass visits the
/// documents once in a random order, and each visit reads the document and
/// its features' weight rows once for all the block's classes and updates
/// each class's variable as the one-class solver would (Hsieh et al. 2008).
/// A class stops (its variables and weights frozen) once the spread of its
/// projected gradients over a whole pass is below the tolerance; the block
/// stops when all have. Starts from `scratch.alpha` (one row per document,
/// within the bounds; 0 beyond `lanes`) and leaves the solution there, the
/// weights in `scratch.w` (one row per feature); returns the biases and
/// each class's documents visited. `scratch.w` and `scratch.order` are
/// reset here.
fn train_block(job: BlockJob<'_>, scratch: &mut BlockScratch) -> (Lanes, [u64; BLOCK]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx") {
        // SAFETY: the processor has AVX, checked just above.
        return unsafe { train_block_avx(job, scratch) };
    }
    train_block_ids(job, scratch)
}

/// What [`train_block`] solves: the classes `first..first + lanes` against
/// the rest, over `training`'s documents labelled `labels`.
#[derive(Clone, Copy)]
struct BlockJob<'a> {
    training: &'a Training,
    labels: &'a [usize],
    first: usize,
    lanes: usize,
    settings: SvmSettings,
}

/// [`train_block_with`] over the solver's ids, whichever their type.
#[inline(always)]
fn train_block_ids(job: BlockJob<'_>, scratch: &mut BlockScratch) -> (Lanes, [u64; BLOCK]) {
    match &job.training.solver.ids {
        SolverIds::Narrow(ids) => train_block_with(job, ids, scratch),
        SolverIds::Wide(ids) => train_block_with(job, ids, scratch),
    }
}

/// [`train_block`] compiled for AVX: the lanes in one register. The same
/// operations in the same order (no fused multiply-add), so the same bits.
///
/// # Safety
///
/// The processor supports AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn train_block_avx(job: BlockJob<'_>, scratch: &mut BlockScratch) -> (Lanes, [u64; BLOCK]) {
    train_block_ids(job, scratch)
}

/// [`train_block`] over the documents' ids `ids`.
#[inline(always)]
fn train_block_with<I: SolverId>(
    job: BlockJob<'_>,
    ids: &[I],
    scratch: &mut BlockScratch,
) -> (Lanes, [u64; BLOCK]) {
    let BlockJob {
        training,
        labels,
        first,
        lanes,
        settings,
    } = job;
    let BlockScratch { alpha, w, order } = scratch;
    let n = training.qd.len();
    let features = training.compact.features;
    // Every feature id of the documents indexes `w` (see `Compact::docs`):
    // the loops below read and write it unchecked.
    assert!(alpha.len() == n && labels.len() >= n && lanes <= BLOCK);
    assert_eq!(ids.len(), training.solver.entries(), "the solver's ids");
    w.clear();
    w.resize(features, [0.0; BLOCK]);
    // +1 for the block's own class, -1 for the rest.
    let y_of = |i: usize| -> Lanes {
        let mut y = [-1.0; BLOCK];
        if let Some(k) = labels[i].checked_sub(first).filter(|&k| k < BLOCK) {
            y[k] = 1.0;
        }
        y
    };
    let mut b = [0.0_f32; BLOCK];
    // The weights of the starting point: w = sum of alpha_i y_i x_i.
    for (i, a) in alpha.iter().enumerate() {
        if a.iter().any(|&x| x != 0.0) {
            let y = y_of(i);
            let d: Lanes = std::array::from_fn(|k| a[k] * y[k]);
            // SAFETY: the ids are below `w.len()`, asserted above.
            unsafe { add_rows(w, training.doc(ids, i), &d) };
            for k in 0..BLOCK {
                b[k] += d[k];
            }
        }
    }
    let (diag, upper, qd) = (training.diag, training.upper, &training.qd);
    order.clear();
    order.extend(0..n as u32);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64 ^ first as u64;
    let mut live: [bool; BLOCK] = std::array::from_fn(|k| k < lanes);
    let mut visits = [0_u64; BLOCK];
    // Shrinking (liblinear), for the block: a document at a bound whose
    // gradient points outwards beyond the last pass's spread, for every
    // class still training, leaves the active set, so later passes walk
    // mostly the support vectors; all of them are checked again before a
    // class stops.
    let mut active = n;
    let (mut pg_max_old, mut pg_min_old) = ([f32::INFINITY; BLOCK], [f32::NEG_INFINITY; BLOCK]);
    for _ in 0..settings.max_epochs {
        // A fresh random order each pass (seeded: builds are reproducible).
        for i in (1..active).rev() {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            // In 32 bits (the same number: both are below 2^32), a
            // quicker division than in 64.
            order.swap(i, ((seed >> 33) as u32 % (i as u32 + 1)) as usize);
        }
        for (k, v) in visits.iter_mut().enumerate() {
            if live[k] {
                *v += active as u64;
            }
        }
        for &i in order.iter().take(DOC_PREFETCH_AHEAD.min(active)) {
            training.prefetch(ids, i as usize, labels, alpha);
        }
        let (mut pg_max, mut pg_min) = ([f32::NEG_INFINITY; BLOCK], [f32::INFINITY; BLOCK]);
        let mut s = 0;
        while s < active {
            // The document DOC_PREFETCH_AHEAD places on, unless shrinking
            // swaps another one there (then it is only a wasted hint).
            if let Some(&ahead) = order
                .get(s + DOC_PREFETCH_AHEAD)
                .filter(|_| s + DOC_PREFETCH_AHEAD < active)
            {
                training.prefetch(ids, ahead as usize, labels, alpha);
            }
            let i = order[s] as usize;
            let x = training.doc(ids, i);
            // SAFETY: the ids are below `w.len()`, asserted above.
            let dot = unsafe { dot_rows(w, x) };
            let y = y_of(i);
            let a = &mut alpha[i];
            let mut g = [0.0_f32; BLOCK];
            let mut shrink = true;
            for k in 0..BLOCK {
                g[k] = y[k] * (dot[k] + b[k]) - 1.0 + diag * a[k];
                let outward = (a[k] == 0.0 && g[k] > pg_max_old[k])
                    || (a[k] >= upper && g[k] < pg_min_old[k]);
                shrink &= outward || !live[k];
            }
            if shrink {
                active -= 1;
                order.swap(s, active);
                continue;
            }
            s += 1;
            let mut d = [0.0_f32; BLOCK];
            let mut changed = false;
            for k in 0..BLOCK {
                let pg = if a[k] == 0.0 {
                    g[k].min(0.0)
                } else if a[k] >= upper {
                    g[k].max(0.0)
                } else {
                    g[k]
                };
                if live[k] {
                    pg_max[k] = pg_max[k].max(pg);
                    pg_min[k] = pg_min[k].min(pg);
                    if pg.abs() > 1e-12 {
                        let old = a[k];
                        a[k] = (old - g[k] / qd[i]).clamp(0.0, upper);
                        d[k] = (a[k] - old) * y[k];
                        changed |= d[k] != 0.0;
                    }
                }
            }
            if changed {
                // SAFETY: the ids are below `w.len()`, asserted above.
                unsafe { add_rows(w, x, &d) };
                for k in 0..BLOCK {
                    b[k] += d[k];
                }
            }
        }
        let converged: [bool; BLOCK] =
            std::array::from_fn(|k| !live[k] || pg_max[k] - pg_min[k] < settings.eps);
        if active == n {
            // A whole pass: the classes within the tolerance are done.
            for k in 0..BLOCK {
                live[k] &= !converged[k];
            }
            if !live.contains(&true) {
                break;
            }
        } else if !converged.contains(&false) {
            // Converged on the active set: check every document again.
            active = n;
            pg_max_old = [f32::INFINITY; BLOCK];
            pg_min_old = [f32::NEG_INFINITY; BLOCK];
            continue;
        }
        for k in 0..BLOCK {
            pg_max_old[k] = if pg_max[k] <= 0.0 {
                f32::INFINITY
            } else {
                pg_max[k]
            };
            pg_min_old[k] = if pg_min[k] >= 0.0 {
                f32::NEG_INFINITY
            } else {
                pg_min[k]
            };
        }
    }
    (b, visits)
}

/// `w[f] += d x_f` for each feature `f` of `x` (as (ids, values)).
///
/// # Safety
///
/// Every feature id of `x` is below `w.len()`.
#[inline(always)]
unsafe fn add_rows<I: SolverId>(w: &mut [Lanes], (ids, values): (&[I], &[f32]), d: &Lanes) {
    for (&f, &v) in ids.iter().zip(values) {
        debug_assert!(f.index() < w.len());
        // SAFETY: in bounds, as the caller guarantees.
        let row = unsafe { w.get_unchecked_mut(f.index()) };
        for k in 0..BLOCK {
            row[k] += d[k] * v;
        }
    }
}

/// `w · x` for each lane, `x` as (ids, values), in two interleaved sums
/// per lane (the additions of one sum wait on each other).
///
/// # Safety
///
/// Every feature id of `x` is below `w.len()`.
#[inline(always)]
unsafe fn dot_rows<I: SolverId>(w: &[Lanes], (ids, values): (&[I], &[f32])) -> Lanes {
    let row = |f: I| {
        debug_assert!(f.index() < w.len());
        // SAFETY: in bounds, as the caller guarantees.
        unsafe { w.get_unchecked(f.index()) }
    };
    let len = ids.len().min(values.len());
    let (ids, values) = (&ids[..len], &values[..len]);
    let mut sums = [[0.0_f32; BLOCK]; 2];
    let id_pairs = ids.chunks_exact(2);
    let value_pairs = values.chunks_exact(2);
    let (id_rest, value_rest) = (id_pairs.remainder(), value_pairs.remainder());
    for (fs, vs) in id_pairs.zip(value_pairs) {
        for ((sum, &f), &v) in sums.iter_mut().zip(fs).zip(vs) {
            let r = row(f);
            for k in 0..BLOCK {
                sum[k] += r[k] * v;
            }
        }
    }
    let mut total: Lanes = std::array::from_fn(|k| sums[0][k] + sums[1][k]);
    for (&f, &v) in id_rest.iter().zip(value_rest) {
        let r = row(f);
        for k in 0..BLOCK {
            total[k] += r[k] * v;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_combined_row_scores_like_its_parts() {
        let docs: Vec<Sparse> = (0..40_u32)
            .map(|i| vec![(i % 5, 1.0), (5 + i % 4, 0.5), (9, 0.25)])
            .collect();
        let labels: Vec<usize> = (0..40).map(|i| i % 5).collect();
        // Fixed columns with different spans per feature.
        let fixed: Vec<Sparse> = vec![vec![(0, 0.5), (6, 0.25)], vec![(7, 0.75)], vec![(9, 0.1)]];
        let (mut m, _) = LinearModel::train(
            &Docs::from(docs.as_slice()),
            &labels,
            5,
            &fixed,
            11,
            SvmSettings::default(),
            1,
            &Duals::default(),
        );
        let features = m.rows.len() as u32;
        // Feature 10 has no row; 6 and 7 have fixed spans that do not touch.
        let parts = [(0, 0.7), (6, 1.3), (7, 0.4), (9, 2.0), (10, 5.0)];
        let id = m.push_combined_row(&parts).expect("a row");
        assert_eq!(id, features);
        let (mut combined, mut separate) = (Vec::new(), Vec::new());
        for value in [1.0, 0.37, -2.5] {
            m.scores(&vec![(id, value)], &mut combined);
            let query: Sparse = parts.iter().map(|&(f, x)| (f, x * value)).collect();
            m.scores(&query, &mut separate);
            assert_eq!(combined.len(), separate.len());
            for (a, b) in combined.iter().zip(&separate) {
                assert!(
                    (a - b).abs() < 1e-3 * value.abs(),
                    "{combined:?} {separate:?}"
                );
            }
            // Not a copy of the biases: the row has weight.
            assert!(
                combined
                    .iter()
                    .zip(&m.bias)
                    .any(|(a, b)| (a - b).abs() > 1e-3)
            );
        }
        assert_eq!(m.push_combined_row(&[(10, 1.0)]), None);
        assert_eq!(m.push_combined_row(&[]), None);
        assert_eq!(m.push_combined_row(&[(u32::MAX, 1.0)]), None);
    }

    #[test]
    fn projected_rows_score_like_the_features() {
        // Features 0..6 lexical, 6..10 an "embedding" of dimension 4.
        let docs: Vec<Sparse> = (0..30_u32)
            .map(|i| {
                vec![
                    (i % 3, 1.0),
                    (3 + i % 3, 0.5),
                    (6 + i % 4, 0.3),
                    (7 + i % 3, -0.2),
                ]
            })
            .collect();
        let labels: Vec<usize> = (0..30).map(|i| i % 3).collect();
        // A fixed column on two embedding features, one on a lexical one.
        let fixed: Vec<Sparse> = vec![vec![(1, 0.5)], vec![(7, 0.25), (9, -0.5)]];
        let (mut m, _) = LinearModel::train(
            &Docs::from(docs.as_slice()),
            &labels,
            3,
            &fixed,
            10,
            SvmSettings::default(),
            1,
            &Duals::default(),
        );
        // Three token vectors; the second has zeros.
        let vectors = [
            0.5, -1.0, 0.25, 2.0, 0.0, 0.75, 0.0, -0.5, 1.5, 1.0, -2.0, 0.1,
        ];
        let features = m.rows.len() as u32;
        let first = m.push_projected_rows(6, 4, &vectors).expect("rows");
        assert_eq!(first, features);
        assert_eq!(m.rows.len(), features as usize + 3);
        let (mut projected, mut separate) = (Vec::new(), Vec::new());
        for (tokens, value) in [(vec![0_u32], 1.0), (vec![1, 2, 2], 0.4), (vec![2, 0], -3.0)] {
            let query: Sparse = tokens.iter().map(|&t| (first + t, value)).collect();
            m.scores(&query, &mut projected);
            let mut sum = [0.0_f32; 4];
            for &t in &tokens {
                for (s, x) in sum.iter_mut().zip(&vectors[t as usize * 4..][..4]) {
                    *s += x;
                }
            }
            let query: Sparse = (0..4).map(|j| (6 + j as u32, value * sum[j])).collect();
            m.scores(&query, &mut separate);
            assert_eq!(projected.len(), 5);
            for (a, b) in projected.iter().zip(&separate) {
                assert!((a - b).abs() < 1e-3, "{projected:?} {separate:?}");
            }
            // The fixed column on the embedding features is reached.
            assert!((separate[4] - m.bias[4]).abs() > 1e-3, "{separate:?}");
        }
        // Nothing to project: no dimension, no row in the range.
        assert_eq!(m.push_projected_rows(6, 0, &vectors), None);
        assert_eq!(m.push_projected_rows(20, 4, &vectors), None);
        assert_eq!(m.push_projected_rows(u32::MAX - 1, 4, &vectors), None);
        // Too many weights (3 rows of 3 classes and 1 fixed column): none
        // appended.
        let (rows, weights) = (m.rows.len(), m.dense.len());
        assert_eq!(m.push_projected_rows_within(6, 4, &vectors, 11), None);
        assert_eq!((m.rows.len(), m.dense.len()), (rows, weights));
        assert!(m.push_projected_rows_within(6, 4, &vectors, 12).is_some());
    }

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
            &Duals::default(),
        )
        .0;
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

    /// Sixty documents of four classes over 80 features.
    fn four_classes() -> (Docs, Vec<usize>) {
        let docs: Docs = (0..60_u32)
            .map(|i| {
                let mut x = vec![
                    (i % 7, 1.0),
                    (7 + i % 5, 0.5 + (i % 3) as f32),
                    (20 + i, 0.3),
                ];
                x.sort_by_key(|e| e.0);
                x
            })
            .collect::<Vec<Sparse>>()
            .as_slice()
            .into();
        (docs, (0..60).map(|i| i % 4).collect())
    }

    /// The solution of a block run, bit for bit: weights, alphas, biases,
    /// visits.
    type Solution = (Vec<Lanes>, Vec<Lanes>, Lanes, [u64; BLOCK]);

    /// A run of the block solver on a job and fresh buffers.
    type BlockRun<'a> = &'a dyn Fn(BlockJob<'_>, &mut BlockScratch) -> (Lanes, [u64; BLOCK]);

    /// Runs `how` on classes `first..first + lanes`, every class checked to
    /// have trained and no lane beyond `lanes`.
    fn solve_block(
        training: &Training,
        labels: &[usize],
        first: usize,
        lanes: usize,
        how: BlockRun<'_>,
    ) -> Solution {
        let job = BlockJob {
            training,
            labels,
            first,
            lanes,
            settings: SvmSettings::default(),
        };
        let mut scratch = BlockScratch {
            alpha: vec![[0.0; BLOCK]; training.qd.len()],
            w: Vec::new(),
            order: Vec::new(),
        };
        let (b, visits) = how(job, &mut scratch);
        assert!(visits[..lanes].iter().all(|&v| v > 0));
        assert!(visits[lanes..].iter().all(|&v| v == 0));
        (scratch.w, scratch.alpha, b, visits)
    }

    #[test]
    fn narrow_and_wide_ids_and_any_instruction_set_train_the_same() {
        let (docs, labels) = four_classes();
        let mut training = Training::new(&docs, 80, SvmSettings::default(), true);
        let SolverIds::Narrow(narrow_ids) = &training.solver.ids else {
            panic!("80 features fit in u16");
        };
        let narrow_ids = narrow_ids.clone();
        let plain = solve_block(&training, &labels, 0, 4, &|job, scratch| {
            train_block_with(job, &narrow_ids, scratch)
        });
        assert!(plain.0.iter().any(|row| row.iter().any(|&x| x != 0.0)));
        // The dispatching entry point (AVX where the processor has it).
        let dispatched = solve_block(&training, &labels, 0, 4, &train_block);
        assert_eq!(dispatched, plain);
        let compact = Compact::new(&docs, 80, true);
        training.solver = SolverDocs::new(compact.docs, false);
        let SolverIds::Wide(wide_ids) = &training.solver.ids else {
            panic!("asked for u32 ids");
        };
        let wide_ids = wide_ids.clone();
        let wide = solve_block(&training, &labels, 0, 4, &|job, scratch| {
            train_block_with(job, &wide_ids, scratch)
        });
        assert_eq!(wide, plain);
        let dispatched = solve_block(&training, &labels, 0, 4, &train_block);
        assert_eq!(dispatched, plain);
    }

    #[test]
    fn a_class_trains_to_the_same_decisions_alone_or_in_a_block() {
        let (docs, labels) = four_classes();
        let settings = SvmSettings {
            eps: 0.01,
            ..SvmSettings::default()
        };
        let training = Training::new(&docs, 80, settings, true);
        let decisions = |solution: &Solution, k: usize| -> Vec<f32> {
            docs.iter()
                .map(|x| {
                    let merged = training
                        .compact
                        .expand(&solution.0.iter().map(|row| row[k]).collect::<Vec<f32>>());
                    x.iter().map(|&(f, v)| merged[f as usize] * v).sum::<f32>() + solution.2[k]
                })
                .collect()
        };
        let tight = |job: BlockJob<'_>, scratch: &mut BlockScratch| {
            train_block(BlockJob { settings, ..job }, scratch)
        };
        let together = solve_block(&training, &labels, 0, 4, &tight);
        for class in 0..4 {
            let alone = solve_block(&training, &labels, class, 1, &tight);
            let (a, b) = (decisions(&together, class), decisions(&alone, 0));
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert!(
                    (x - y).abs() < 0.05,
                    "class {class}, document {i}: {x} vs {y}"
                );
            }
            // A trained class: its documents score above the others.
            let mean = |own: bool| {
                let picked: Vec<f32> = (0..60)
                    .filter(|&i| (labels[i] == class) == own)
                    .map(|i| a[i])
                    .collect();
                picked.iter().sum::<f32>() / picked.len() as f32
            };
            assert!(
                mean(true) > mean(false),
                "class {class}: {} vs {}",
                mean(true),
                mean(false)
            );
        }
    }

    #[test]
    fn row_dot_products_and_updates_of_any_length() {
        let w: Vec<Lanes> = (0..16)
            .map(|i| std::array::from_fn(|k| i as f32 * 0.5 - k as f32))
            .collect();
        let d: Lanes = std::array::from_fn(|k| k as f32 * 0.25 - 1.0);
        for len in 0..10_u32 {
            let x: Sparse = (0..len).map(|f| (f, 1.0 + f as f32)).collect();
            let ids: Vec<u16> = x.iter().map(|&(f, _)| f as u16).collect();
            let wide: Vec<u32> = x.iter().map(|&(f, _)| f).collect();
            let values: Vec<f32> = x.iter().map(|&(_, v)| v).collect();
            // SAFETY: every id is below 16.
            let (narrow_dot, wide_dot) = unsafe {
                (
                    dot_rows(&w, (&ids, &values)),
                    dot_rows(&w, (&wide, &values)),
                )
            };
            assert_eq!(narrow_dot, wide_dot, "length {len}");
            for k in 0..BLOCK {
                let want: f32 = x.iter().map(|&(f, v)| w[f as usize][k] * v).sum();
                assert!(
                    (narrow_dot[k] - want).abs() < 1e-3,
                    "length {len}, lane {k}"
                );
            }
            let mut added = w.clone();
            // SAFETY: as above.
            unsafe { add_rows(&mut added, (&ids, &values), &d) };
            for (f, (a, b)) in added.iter().zip(&w).enumerate() {
                let v = x.get(f).map_or(0.0, |e| e.1);
                for k in 0..BLOCK {
                    assert_eq!(a[k], b[k] + d[k] * v, "length {len}, feature {f}, lane {k}");
                }
            }
        }
    }

    #[test]
    fn empty_input_gives_a_model_that_rejects() {
        let (m, duals) = LinearModel::train(
            &Docs::default(),
            &[],
            2,
            &[],
            0,
            SvmSettings::default(),
            1,
            &Duals::default(),
        );
        assert!(duals.of(0).is_empty() && duals.of(1).is_empty());
        let mut out = Vec::new();
        m.scores(&vec![(0, 1.0)], &mut out);
        assert_eq!(out, vec![-1.0, -1.0]);
    }

    /// `n` documents of `classes` overlapping classes: feature `i % classes`
    /// marks the class, the others (up to `classes + 18`) are noise shared
    /// between classes.
    fn fixture(n: usize, classes: usize) -> (Docs, Vec<usize>) {
        let docs: Vec<Sparse> = (0..n)
            .map(|i| {
                let mut x = vec![
                    ((i % classes) as u32, 1.0),
                    ((classes + i % 7) as u32, 0.3),
                    ((classes + 7 + (i * 13) % 11) as u32, 0.6),
                ];
                if i % 5 == 0 {
                    // A few near-copies of another class's marker.
                    x.push((((i + 1) % classes) as u32, 0.7));
                }
                x.sort_unstable_by_key(|&(f, _)| f);
                x.dedup_by_key(|&mut (f, _)| f);
                x
            })
            .collect();
        let labels = (0..n).map(|i| i % classes).collect();
        (Docs::from(docs.as_slice()), labels)
    }

    #[test]
    fn same_model_whatever_the_threads() {
        let (docs, labels) = fixture(120, 9);
        let train = |threads| {
            LinearModel::train(
                &docs,
                &labels,
                9,
                &[],
                27,
                SvmSettings::default(),
                threads,
                &Duals::default(),
            )
        };
        let (a, a_duals) = train(1);
        // Fewer, as many and more threads than classes: every class solved
        // once, wherever it ran, to the same bits.
        for threads in [2, 3, 9, 40] {
            let (b, b_duals) = train(threads);
            assert_eq!(a.dense, b.dense, "{threads} threads");
            assert_eq!(a.rows, b.rows, "{threads} threads");
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a.bias), bits(&b.bias), "{threads} threads");
            assert_eq!(a_duals, b_duals, "{threads} threads");
        }
        assert!((0..9).all(|c| !a_duals.of(c).is_empty()), "support vectors");
    }

    #[test]
    fn classes_run_in_order_on_any_number_of_threads() {
        for threads in [1, 2, 5, 64] {
            let squares = for_each_class(
                17,
                threads,
                || vec![0_u8; 3],
                |c, scratch: &mut Vec<u8>| {
                    // Each thread's own buffers.
                    assert_eq!(scratch.len(), 3);
                    scratch.push(1);
                    scratch.pop();
                    c * c
                },
            );
            assert_eq!(squares, (0..17).map(|c| c * c).collect::<Vec<_>>());
        }
        assert!(for_each_class(0, 4, || (), |c, _| c).is_empty());
    }

    /// Decision values of every class for every document.
    fn decisions(m: &LinearModel, docs: &Docs) -> Vec<Vec<f32>> {
        docs.iter()
            .map(|x| {
                let mut out = Vec::new();
                m.scores(&x.to_vec(), &mut out);
                out
            })
            .collect()
    }

    #[test]
    fn a_warm_start_reaches_the_same_model_in_fewer_visits() {
        let (docs, labels) = fixture(300, 6);
        let settings = SvmSettings {
            eps: 0.001,
            ..SvmSettings::default()
        };
        let train = |docs: &Docs, labels: &[usize], start: &Duals| {
            LinearModel::train(docs, labels, 6, &[], 24, settings, 1, start)
        };
        let (cold, cold_duals) = train(&docs, &labels, &Duals::default());
        // A solution from four fifths of the documents, for classes 1..6
        // only (class 0 held out), mapped onto the full set.
        let kept: Vec<usize> = (0..300).filter(|i| i % 5 != 0 && labels[*i] != 0).collect();
        let mut part = Docs::default();
        for &i in &kept {
            part.push(docs.get(i));
        }
        let part_labels: Vec<usize> = kept.iter().map(|&i| labels[i]).collect();
        let (_, part_duals) = train(&part, &part_labels, &Duals::default());
        let start = Duals::from_classes(
            (0..6)
                .map(|c| {
                    if c == 0 {
                        return Vec::new();
                    }
                    part_duals
                        .of(c)
                        .iter()
                        .map(|&(k, a)| (kept[k as usize] as u32, a))
                        .collect()
                })
                .collect(),
        );
        let (warm, warm_duals) = train(&docs, &labels, &start);
        assert!(
            warm_duals.visits() < cold_duals.visits(),
            "{} visits warm, {} cold",
            warm_duals.visits(),
            cold_duals.visits()
        );
        // The same optimum to the solver's tolerance: the same decisions,
        // and the same support.
        for (a, b) in decisions(&cold, &docs).iter().zip(decisions(&warm, &docs)) {
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 0.02, "{a:?} vs {b:?}");
                assert_eq!(x.total_cmp(&0.0), y.total_cmp(&0.0), "{a:?} vs {b:?}");
            }
        }
        for c in 0..6 {
            let support = |d: &Duals| d.of(c).iter().filter(|p| p.1 > 1e-3).count();
            assert!(support(&cold_duals).abs_diff(support(&warm_duals)) <= 2);
        }
        // Started from its own solution, the solver stays there.
        let (again, again_duals) = train(&docs, &labels, &cold_duals);
        for (a, b) in decisions(&cold, &docs).iter().zip(decisions(&again, &docs)) {
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-3, "{a:?} vs {b:?}");
            }
        }
        assert_eq!(again_duals.of(3).len(), cold_duals.of(3).len());
        assert!(again_duals.visits() < warm_duals.visits());
    }

    #[test]
    fn a_start_beyond_the_documents_or_classes_is_ignored() {
        let (docs, labels) = fixture(40, 3);
        let cold = LinearModel::train(
            &docs,
            &labels,
            3,
            &[],
            21,
            SvmSettings::default(),
            1,
            &Duals::default(),
        );
        // Documents past the last, negative and infinite alphas, a class
        // the training does not have: nothing to start from.
        let hostile = Duals::from_classes(vec![
            vec![(40, 1.0), (1000, 2.0)],
            vec![(u32::MAX, 5.0)],
            Vec::new(),
            vec![(0, 1.0)],
        ]);
        let (from_hostile, _) = LinearModel::train(
            &docs,
            &labels,
            3,
            &[],
            21,
            SvmSettings::default(),
            1,
            &hostile,
        );
        assert_eq!(cold.0.dense, from_hostile.dense);
        assert_eq!(cold.0.bias, from_hostile.bias);
        let clamped = Duals::from_classes(vec![vec![(0, -3.0), (1, f32::INFINITY)]]);
        let (m, duals) = LinearModel::train(
            &docs,
            &labels,
            3,
            &[],
            21,
            SvmSettings {
                l1_loss: true,
                ..SvmSettings::default()
            },
            1,
            &clamped,
        );
        assert!(m.bias.iter().all(|b| b.is_finite()));
        for c in 0..3 {
            assert!(duals.of(c).iter().all(|&(_, a)| (0.0..=1.0).contains(&a)));
        }
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        // 13 classes and 5 fixed columns: widths that are not multiples of
        // the vector lanes, so the loops' remainders are exercised too.
        let docs: Vec<Sparse> = (0..60_u32)
            .map(|i| vec![(i % 13, 1.0), (13 + i % 7, 0.37), (20 + i % 3, 0.11)])
            .collect();
        let labels: Vec<usize> = (0..60).map(|i| i % 13).collect();
        let fixed: Vec<Sparse> = (0..5_u32)
            .map(|c| vec![(c, 0.5), (13 + c, 0.25), (20, 0.125 * c as f32)])
            .collect();
        let m = LinearModel::train(
            &Docs::from(docs.as_slice()),
            &labels,
            13,
            &fixed,
            23,
            SvmSettings::default(),
            1,
            &Duals::default(),
        )
        .0;
        let query: Sparse = vec![(1, 0.3), (5, 0.6), (14, 0.2), (20, 0.7), (22, 0.1)];
        let mut dispatched = Vec::new();
        m.scores(&query, &mut dispatched);
        let mut portable = m.bias.clone();
        m.accumulate(&query, &mut portable);
        assert_eq!(dispatched.len(), 18);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&dispatched), bits(&portable));
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            let mut wide = m.bias.clone();
            // SAFETY: AVX2 is supported, checked just above.
            unsafe { m.accumulate_avx2(&query, &mut wide) };
            assert_eq!(bits(&wide), bits(&portable));
        }
        // The fixed columns are the dot products, up to the 16-bit steps.
        for (c, column) in fixed.iter().enumerate() {
            let exact: f32 = column
                .iter()
                .map(|&(f, w)| w * query.iter().find(|q| q.0 == f).map_or(0.0, |q| q.1))
                .sum();
            assert!((portable[13 + c] - exact).abs() < 1e-4, "{c}: {portable:?}");
        }
    }

    /// Documents with columns to merge: `classes` marker features, then
    /// per document a "word" of three features only it has, then a word
    /// of four features (two of them at twice the others' values) that the
    /// documents of one class share, then shared noise, a zero and a feature
    /// beyond `features` (43).
    fn mergeable(n: usize, classes: usize) -> (Docs, Vec<usize>) {
        let mut docs = Docs::default();
        for i in 0..n {
            let class = i % classes;
            let mut x = vec![(class as u32, 1.0)];
            let word = (10 + 4 * class) as u32;
            let strength = 0.2 + (i % 3) as f32 * 0.1;
            x.extend([
                (word, strength),
                (word + 1, strength),
                (word + 2, 2.0 * strength),
                (word + 3, 2.0 * strength),
            ]);
            x.push(((40 + i % 3) as u32, 0.3));
            if i % 4 == 0 {
                x.push((9, 0.0));
            }
            let own = (100 + 3 * i) as u32;
            x.extend([
                (own, 0.5),
                (own + 1, 0.25),
                (own + 2, 0.125 + i as f32 * 0.01),
            ]);
            x.sort_unstable_by_key(|&(f, _)| f);
            docs.push(&x);
        }
        let labels = (0..n).map(|i| i % classes).collect();
        (docs, labels)
    }

    #[test]
    fn merged_columns_keep_every_dot_product_and_weight() {
        let (docs, _) = mergeable(30, 5);
        let features = 100 + 3 * 30;
        let compact = Compact::new(&docs, features, true);
        let plain = Compact::new(&docs, features, false);
        // Per document 3 of its own merge into 1, per class 4 into 1.
        assert_eq!(plain.features, 5 + 4 * 5 + 3 + 1 + 3 * 30);
        assert_eq!(compact.features, 5 + 5 + 3 + 1 + 30);
        assert!(
            compact
                .docs
                .iter()
                .flatten()
                .all(|&(f, _)| (f as usize) < compact.features)
        );
        assert!(
            compact
                .docs
                .iter()
                .all(|x| x.windows(2).all(|p| p[0].0 < p[1].0))
        );
        // The most frequent features come first.
        let df = |c: &Compact, f: u32| c.docs.iter().filter(|x| x.iter().any(|e| e.0 == f)).count();
        assert!((1..compact.features as u32).all(|f| df(&compact, f - 1) >= df(&compact, f)));
        let dot = |a: &[(u32, f32)], b: &[(u32, f32)]| -> f32 {
            a.iter()
                .filter(|e| (e.0 as usize) < features)
                .map(|&(f, v)| b.iter().find(|e| e.0 == f).map_or(0.0, |e| v * e.1))
                .sum()
        };
        for i in 0..docs.len() {
            for j in 0..docs.len() {
                let want = dot(docs.get(i), docs.get(j));
                let got = dot(compact.docs.get(i), compact.docs.get(j));
                assert!((want - got).abs() < 1e-5, "{i}·{j}: {want} vs {got}");
            }
        }
        // Any combination of the documents: the same weights back.
        let alpha: Vec<f32> = (0..docs.len())
            .map(|i| (i % 7) as f32 * 0.3 - 0.8)
            .collect();
        let combine = |d: &Docs, len: usize| {
            let mut w = vec![0.0_f32; len];
            for (x, a) in d.iter().zip(&alpha) {
                for &(f, v) in x {
                    if let Some(slot) = w.get_mut(f as usize) {
                        *slot += a * v;
                    }
                }
            }
            w
        };
        let want = combine(&docs, features);
        for c in [&compact, &plain] {
            let got = c.expand(&combine(&c.docs, c.features));
            assert_eq!(got.len(), features);
            for (f, (a, b)) in want.iter().zip(&got).enumerate() {
                assert!((a - b).abs() < 1e-5, "feature {f}: {a} vs {b}");
            }
        }
        // Nothing to merge in no documents.
        let empty = Compact::new(&Docs::default(), 4, true);
        assert_eq!((empty.features, empty.docs.len()), (0, 0));
        assert_eq!(empty.expand(&[]), vec![0.0; 4]);
    }

    #[test]
    fn merged_training_gives_the_same_model() {
        let (docs, labels) = mergeable(200, 5);
        let features = 100 + 3 * 200;
        let settings = SvmSettings {
            eps: 0.001,
            ..SvmSettings::default()
        };
        let train = |merge| {
            Problem::with_merge(
                &docs,
                labels.clone(),
                5,
                Vec::new(),
                features,
                settings,
                merge,
            )
            .solve(2, &Duals::default())
        };
        let ((plain, plain_duals), (merged, merged_duals)) = (train(false), train(true));
        for (a, b) in decisions(&plain, &docs)
            .iter()
            .zip(decisions(&merged, &docs))
        {
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-3, "{a:?} vs {b:?}");
            }
        }
        for c in 0..5 {
            let (p, m) = (plain_duals.of(c), merged_duals.of(c));
            assert_eq!(p.len(), m.len(), "class {c}");
            for (x, y) in p.iter().zip(m) {
                assert_eq!(x.0, y.0);
                assert!((x.1 - y.1).abs() < 1e-3, "class {c}: {x:?} vs {y:?}");
            }
        }
        // Every feature keeps its own weights, each document's own ones too.
        let (mut got, mut want) = (Vec::new(), Vec::new());
        for f in 0..features as u32 {
            merged.scores(&vec![(f, 1.0)], &mut got);
            plain.scores(&vec![(f, 1.0)], &mut want);
            for (x, y) in got.iter().zip(&want) {
                assert!((x - y).abs() < 1e-3, "feature {f}: {got:?} vs {want:?}");
            }
        }
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
            &Duals::default(),
        )
        .0;
        let mut out = Vec::new();
        m.scores(&vec![(0, 1.0), (2, 1.0)], &mut out);
        assert_eq!(out.len(), 3);
        assert!((out[2] - 2.5).abs() < 1e-6, "{out:?}");
    }
}

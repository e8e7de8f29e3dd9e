//! Listening: the questions the bot could not answer, grouped by similarity,
//! and the draft intent file made from the groups
//! (`frontdesk report unanswered --toml`).
//!
//! Each question is analysed as the matcher analyses a message
//! ([`normalize`], tokens, the Snowball stem of each word in the
//! conversation's language, stop words left out), weighted by TF-IDF over all
//! the questions of the report and normalised. Identical analyses are merged
//! first; then, most frequent first, each one joins the group whose centroid
//! is most similar (cosine) if that is at least [`SIMILARITY`], else it
//! starts a group of its own. Groups come out most frequent first.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde::Serialize;

use crate::nlu::stem::{Stemmers, is_stop_word};
use crate::nlu::{normalize, tokens};

/// Cosine similarity to a group's centroid at or above which a question joins it.
pub const SIMILARITY: f64 = 0.3;
/// Examples kept per group in the report.
pub const EXAMPLES_SHOWN: usize = 3;
/// Examples per language kept for the draft intent file.
pub const DRAFT_EXAMPLES: usize = 15;

/// One question the bot could not answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// What the customer wrote.
    pub text: String,
    /// The language of the conversation.
    pub language: String,
}

/// Similar unanswered questions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// How many questions.
    pub count: u64,
    /// The group's most characteristic (stemmed) words, strongest first.
    pub terms: Vec<String>,
    /// A few of its questions, most frequent first (distinct).
    pub examples: Vec<String>,
    /// Questions per language.
    pub languages: BTreeMap<String, u64>,
    /// Distinct questions per language, most frequent first (for the draft).
    #[serde(skip)]
    pub by_language: BTreeMap<String, Vec<String>>,
}

/// A sparse vector: term index → weight.
type Vector = Vec<(usize, f64)>;

fn dot(a: &Vector, b: &HashMap<usize, f64>) -> f64 {
    a.iter()
        .map(|(t, w)| w * b.get(t).copied().unwrap_or(0.0))
        .sum()
}

/// The analysed words of a question: stems of the content words, else of all
/// words, else the whole normalised text (emoji only, say) as one term.
fn analyse(stemmers: &Stemmers, q: &Question) -> Vec<String> {
    let normalized = normalize(&q.text);
    let words: Vec<&str> = tokens(&normalized).collect();
    let stem = |w: &&str| stemmers.stem(&q.language, w).into_owned();
    let content: Vec<String> = words
        .iter()
        .filter(|w| !is_stop_word(&q.language, w))
        .map(stem)
        .collect();
    if !content.is_empty() {
        return content;
    }
    let all: Vec<String> = words.iter().map(stem).collect();
    if !all.is_empty() {
        return all;
    }
    vec![format!("={}", q.text.trim())]
}

/// Group the questions by similarity; most frequent group first.
pub fn group(questions: &[Question]) -> Vec<Group> {
    if questions.is_empty() {
        return Vec::new();
    }
    let stemmers = Stemmers::new();
    // Merge identical analyses, keeping first-seen order.
    let mut index: HashMap<Vec<String>, usize> = HashMap::new();
    let mut uniques: Vec<(Vec<String>, Vec<usize>)> = Vec::new();
    for (i, q) in questions.iter().enumerate() {
        let mut terms = analyse(&stemmers, q);
        terms.sort();
        match index.get(&terms) {
            Some(&u) => uniques[u].1.push(i),
            None => {
                index.insert(terms.clone(), uniques.len());
                uniques.push((terms, vec![i]));
            }
        }
    }
    // Term ids and document frequencies (over questions).
    let mut term_id: HashMap<String, usize> = HashMap::new();
    let mut df: Vec<f64> = Vec::new();
    for (terms, members) in &uniques {
        let mut seen: Vec<usize> = Vec::new();
        for t in terms {
            let next = term_id.len();
            let id = *term_id.entry(t.clone()).or_insert(next);
            if id == df.len() {
                df.push(0.0);
            }
            if !seen.contains(&id) {
                seen.push(id);
                df[id] += members.len() as f64;
            }
        }
    }
    let n = questions.len() as f64;
    let vectors: Vec<Vector> = uniques
        .iter()
        .map(|(terms, _)| {
            let mut tf: BTreeMap<usize, f64> = BTreeMap::new();
            for t in terms {
                *tf.entry(term_id[t]).or_insert(0.0) += 1.0;
            }
            let mut v: Vector = tf
                .into_iter()
                .map(|(t, f)| (t, f * (((1.0 + n) / (1.0 + df[t])).ln() + 1.0)))
                .collect();
            let norm = v.iter().map(|(_, w)| w * w).sum::<f64>().sqrt();
            for (_, w) in &mut v {
                *w /= norm;
            }
            v
        })
        .collect();
    // Most frequent first; ties in first-seen order.
    let mut order: Vec<usize> = (0..uniques.len()).collect();
    order.sort_by_key(|&u| (std::cmp::Reverse(uniques[u].1.len()), uniques[u].1[0]));
    struct Cluster {
        centroid: HashMap<usize, f64>,
        norm: f64,
        members: Vec<usize>,
    }
    let mut clusters: Vec<Cluster> = Vec::new();
    for u in order {
        let v = &vectors[u];
        let best = clusters
            .iter()
            .enumerate()
            .map(|(c, cl)| (c, dot(v, &cl.centroid) / cl.norm))
            .fold(None, |best: Option<(usize, f64)>, (c, s)| match best {
                Some((_, b)) if b >= s => best,
                _ => Some((c, s)),
            });
        let weight = uniques[u].1.len() as f64;
        let c = match best {
            Some((c, s)) if s >= SIMILARITY => c,
            _ => {
                clusters.push(Cluster {
                    centroid: HashMap::new(),
                    norm: 1.0,
                    members: Vec::new(),
                });
                clusters.len() - 1
            }
        };
        let cl = &mut clusters[c];
        for (t, w) in v {
            *cl.centroid.entry(*t).or_insert(0.0) += w * weight;
        }
        cl.norm = cl.centroid.values().map(|w| w * w).sum::<f64>().sqrt();
        cl.members.push(u);
    }
    let names: BTreeMap<usize, &String> = term_id.iter().map(|(k, v)| (*v, k)).collect();
    let mut groups: Vec<(usize, Group)> = clusters
        .into_iter()
        .map(|cl| {
            let mut terms: Vec<(usize, f64)> = cl.centroid.into_iter().collect();
            terms.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            // Distinct texts by frequency (then first seen), per language too.
            let mut texts: HashMap<(String, String), (u64, usize)> = HashMap::new();
            let mut count = 0;
            let mut first = usize::MAX;
            let mut languages = BTreeMap::new();
            for u in &cl.members {
                for &i in &uniques[*u].1 {
                    let q = &questions[i];
                    count += 1;
                    first = first.min(i);
                    *languages.entry(q.language.clone()).or_insert(0) += 1;
                    let e = texts
                        .entry((q.language.clone(), q.text.trim().to_string()))
                        .or_insert((0, i));
                    e.0 += 1;
                }
            }
            let mut ranked: Vec<((String, String), (u64, usize))> = texts.into_iter().collect();
            ranked.sort_by_key(|(_, (n, i))| (std::cmp::Reverse(*n), *i));
            let mut examples: Vec<String> = Vec::new();
            let mut by_language: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for ((lang, text), _) in ranked {
                if examples.len() < EXAMPLES_SHOWN && !examples.contains(&text) {
                    examples.push(text.clone());
                }
                let list = by_language.entry(lang).or_default();
                if list.len() < DRAFT_EXAMPLES {
                    list.push(text);
                }
            }
            let group = Group {
                count,
                terms: terms
                    .iter()
                    .take(3)
                    .filter_map(|(t, _)| names.get(t).map(|s| s.to_string()))
                    .filter(|s| !s.starts_with('='))
                    .collect(),
                examples,
                languages,
                by_language,
            };
            (first, group)
        })
        .collect();
    groups.sort_by_key(|(first, g)| (std::cmp::Reverse(g.count), *first));
    groups.into_iter().map(|(_, g)| g).collect()
}

/// A TOML basic string.
fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The draft id of group number `n` (1-based): `draft_<n>_<terms>`.
fn draft_id(n: usize, group: &Group) -> String {
    let mut id = format!("draft_{n}");
    for t in &group.terms {
        let t: String = t.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        if !t.is_empty() {
            id.push('_');
            id.push_str(&t);
        }
    }
    id
}

/// The groups as a draft intent file that `frontdesk check` accepts. Each
/// draft intent escalates and has no answer yet, so that, dropped into the
/// intents directory unchanged, it hands the question to a person as today;
/// the comments say how to finish it.
pub fn draft_intents(groups: &[Group], heading: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Draft intents from the questions the bot could not answer ({heading})."
    );
    out.push_str(
        "# Generated by `frontdesk report unanswered --toml`. Every draft escalates and has no\n\
         # answer yet: dropped into the intents directory as it is, it hands the question to a\n\
         # person, as now. To let the bot answer, give it a real id, tidy the examples, write\n\
         # answer.<lang> for each language, and remove `escalate = true`.\n",
    );
    if groups.is_empty() {
        out.push_str("# No unanswered questions in this period: nothing to draft.\n");
        return out;
    }
    for (i, g) in groups.iter().enumerate() {
        let _ = writeln!(
            out,
            "\n# {} question(s){}",
            g.count,
            if g.terms.is_empty() {
                String::new()
            } else {
                format!(" about: {}", g.terms.join(", "))
            }
        );
        out.push_str("[[intent]]\n");
        let _ = writeln!(out, "id = {}", quoted(&draft_id(i + 1, g)));
        out.push_str("escalate = true\n");
        for (lang, texts) in &g.by_language {
            let list: Vec<String> = texts.iter().map(|t| quoted(t)).collect();
            let _ = writeln!(out, "examples.{lang} = [{}]", list.join(", "));
        }
        for lang in g.by_language.keys() {
            let _ = writeln!(out, "# answer.{lang} = \"…\"");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str, language: &str) -> Question {
        Question {
            text: text.into(),
            language: language.into(),
        }
    }

    #[test]
    fn similar_questions_group_and_the_biggest_comes_first() {
        let questions = vec![
            q("Do you offer gift wrapping?", "en"),
            q("Can I buy a voucher for a friend?", "en"),
            q("is gift wrapping available", "en"),
            q("Do you offer gift wrapping?", "en"),
            q("gift wrap my order please", "en"),
            q("¿Hacéis envoltorio de regalo?", "es"),
            q("envoltorio de regalo", "es"),
            q("🤔", "en"),
        ];
        let groups = group(&questions);
        assert_eq!(groups[0].count, 4, "{groups:#?}");
        assert_eq!(groups[0].examples[0], "Do you offer gift wrapping?");
        assert!(groups[0].terms.contains(&"gift".to_string()), "{groups:#?}");
        assert_eq!(groups[1].count, 2, "{groups:#?}");
        assert_eq!(groups[1].languages.get("es"), Some(&2));
        let total: u64 = groups.iter().map(|g| g.count).sum();
        assert_eq!(total, questions.len() as u64);
        assert!(groups.iter().any(|g| g.examples == vec!["🤔".to_string()]));
    }

    #[test]
    fn draft_strings_are_escaped() {
        assert_eq!(quoted("say \"hi\"\\\n"), "\"say \\\"hi\\\"\\\\\\n\"");
        let g = Group {
            count: 1,
            terms: vec!["señal".into(), "wrap".into()],
            examples: vec![],
            languages: BTreeMap::new(),
            by_language: BTreeMap::new(),
        };
        assert_eq!(draft_id(3, &g), "draft_3_seal_wrap");
    }
}

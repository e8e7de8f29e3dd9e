//! Intents: the TOML schema a shop owner writes, loading a directory of
//! intent files, and validating them into an [`IntentSet`].
//!
//! Every problem is reported with the file, the line and the key it concerns,
//! and all problems of a set are collected before failing, so that the owner
//! can fix them in one pass. Warnings (missing translations, the same example
//! under two intents) never stop the bot; errors always do.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use crate::nlu::{Example, TrainingIntent};

/// Largest intent file we read; anything bigger is almost certainly not an intent file.
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// The special parts an intent can play in the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// "Hello": answered without asking whether it helped.
    Greeting,
    /// "Thanks", "bye": the customer is satisfied; ends the conversation.
    Thanks,
    /// "I want to talk to a person": always escalates.
    Human,
}

impl Role {
    /// The word used in intent files.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Greeting => "greeting",
            Role::Thanks => "thanks",
            Role::Human => "human",
        }
    }
}

/// A button offered under an answer, leading to another intent.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentButton {
    /// The intent the button leads to.
    pub goto: String,
    /// The label per language.
    pub label: BTreeMap<String, String>,
}

/// One validated intent.
#[derive(Debug, Clone)]
pub struct Intent {
    /// Unique id, as written in the file.
    pub id: String,
    /// The special part it plays, if any.
    pub role: Option<Role>,
    /// Hand the conversation to a person after answering.
    pub escalate: bool,
    /// Example phrases per language.
    pub examples: BTreeMap<String, Vec<String>>,
    /// Regex patterns that make the intent certain (case-insensitive).
    pub patterns: Vec<Regex>,
    /// Answer text per language.
    pub answer: BTreeMap<String, String>,
    /// Follow-up buttons shown under the answer.
    pub buttons: Vec<IntentButton>,
    /// Where the intent was defined, for messages.
    pub source: SourceLocation,
}

impl Intent {
    /// The answer in `language`, else in `fallback`, else any answer at all.
    pub fn answer_in(&self, language: &str, fallback: &str) -> Option<&str> {
        self.answer
            .get(language)
            .or_else(|| self.answer.get(fallback))
            .or_else(|| self.answer.values().next())
            .map(String::as_str)
    }
}

/// A file and line, printed as `file:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLocation {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One problem found in the intent files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where it is.
    pub location: SourceLocation,
    /// The key it concerns (`intent.examples.es`, `id`, …).
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.location, self.message)
        } else {
            write!(f, "{}: key `{}`: {}", self.location, self.key, self.message)
        }
    }
}

/// Why an intent set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum IntentsError {
    /// The directory could not be read.
    #[error(
        "cannot read the intents directory {path}: {source} (pass --intents DIR or set `intents` in frontdesk.toml)"
    )]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The directory holds no `.toml` file.
    #[error(
        "no intent files (*.toml) in {0}: write at least one, see README.md \"Writing intents\""
    )]
    Empty(PathBuf),
    /// One or more files are invalid.
    #[error("{} error(s) in the intent files:\n{}", .0.len(), render_problems(.0))]
    Invalid(Vec<Problem>),
}

fn render_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The validated intents of a shop, ready for the matcher and the engine.
#[derive(Debug, Clone)]
pub struct IntentSet {
    intents: Vec<Intent>,
    by_id: HashMap<String, usize>,
    /// Non-fatal findings.
    pub warnings: Vec<Problem>,
}

impl IntentSet {
    /// All intents, in file order (files sorted by name).
    pub fn intents(&self) -> &[Intent] {
        &self.intents
    }

    /// The intent with this id.
    pub fn get(&self, id: &str) -> Option<&Intent> {
        self.by_id.get(id).map(|&i| &self.intents[i])
    }

    /// The first intent playing `role`.
    pub fn with_role(&self, role: Role) -> Option<&Intent> {
        self.intents.iter().find(|i| i.role == Some(role))
    }

    /// Number of intents.
    pub fn len(&self) -> usize {
        self.intents.len()
    }

    /// True when there are no intents.
    pub fn is_empty(&self) -> bool {
        self.intents.is_empty()
    }

    /// Example counts per language over all intents.
    pub fn examples_per_language(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for intent in &self.intents {
            for (lang, examples) in &intent.examples {
                *counts.entry(lang.clone()).or_insert(0) += examples.len();
            }
        }
        counts
    }

    /// The matcher's training data.
    pub fn training_data(&self) -> Vec<TrainingIntent> {
        self.intents
            .iter()
            .map(|intent| TrainingIntent {
                id: intent.id.clone(),
                examples: intent
                    .examples
                    .iter()
                    .flat_map(|(lang, texts)| {
                        texts.iter().map(move |t| Example {
                            language: lang.clone(),
                            text: t.clone(),
                        })
                    })
                    .collect(),
                patterns: intent.patterns.clone(),
            })
            .collect()
    }

    /// Load every `*.toml` file of `dir` and validate the whole set.
    ///
    /// `languages` are the languages the shop speaks: an intent missing one of
    /// them gets a warning.
    pub fn load_dir(dir: &Path, languages: &[String]) -> Result<IntentSet, IntentsError> {
        let entries = std::fs::read_dir(dir).map_err(|source| IntentsError::Directory {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(IntentsError::Empty(dir.to_path_buf()));
        }
        let mut sources = Vec::with_capacity(files.len());
        let mut problems = Vec::new();
        for file in files {
            match read_text(&file) {
                Ok(text) => sources.push((file, text)),
                Err(message) => problems.push(Problem {
                    location: SourceLocation { file, line: 1 },
                    key: String::new(),
                    message,
                }),
            }
        }
        match Self::from_sources(&sources, languages) {
            Ok(set) if problems.is_empty() => Ok(set),
            Ok(_) => Err(IntentsError::Invalid(problems)),
            Err(IntentsError::Invalid(more)) => {
                problems.extend(more);
                Err(IntentsError::Invalid(problems))
            }
            Err(other) => Err(other),
        }
    }

    /// Validate a set given as (file name, file text) pairs.
    pub fn from_sources(
        sources: &[(PathBuf, String)],
        languages: &[String],
    ) -> Result<IntentSet, IntentsError> {
        let mut problems = Vec::new();
        let mut raw: Vec<(usize, RawIntent)> = Vec::new();
        for (index, (file, text)) in sources.iter().enumerate() {
            match toml::from_str::<RawFile>(text) {
                Ok(parsed) => raw.extend(parsed.intent.into_iter().map(|i| (index, i))),
                Err(e) => {
                    let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
                    problems.push(Problem {
                        location: SourceLocation {
                            file: file.clone(),
                            line,
                        },
                        key: key_from_toml_error(text, e.span()),
                        message: first_line(e.message()),
                    });
                }
            }
        }

        let at = |index: usize, span: Range<usize>| SourceLocation {
            file: sources[index].0.clone(),
            line: line_of(&sources[index].1, span.start),
        };

        // Ids: present, well-formed, unique.
        let mut first_seen: HashMap<String, SourceLocation> = HashMap::new();
        for (index, intent) in &raw {
            let id = intent.id.get_ref();
            let loc = at(*index, intent.id.span());
            if id.trim().is_empty() {
                problems.push(Problem {
                    location: loc,
                    key: "id".into(),
                    message: "the intent id is empty: give it a short name like \"opening_hours\""
                        .into(),
                });
                continue;
            }
            if !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                problems.push(Problem {
                    location: loc.clone(),
                    key: "id".into(),
                    message: format!(
                        "intent id \"{id}\" may only use letters a-z, digits, `_` and `-`"
                    ),
                });
            }
            if let Some(prev) = first_seen.get(id) {
                problems.push(Problem {
                    location: loc,
                    key: "id".into(),
                    message: format!("duplicate intent id \"{id}\": already defined at {prev}"),
                });
            } else {
                first_seen.insert(id.clone(), loc);
            }
        }

        let mut intents = Vec::with_capacity(raw.len());
        let mut role_owner: HashMap<Role, String> = HashMap::new();
        for (index, rawi) in &raw {
            let id = rawi.id.get_ref().clone();
            let loc = at(*index, rawi.id.span());
            let mut examples = BTreeMap::new();
            for (lang, list) in &rawi.examples {
                check_language(&mut problems, &at(*index, list.span()), "examples", lang);
                let texts: Vec<String> = list
                    .get_ref()
                    .iter()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                if texts.len() != list.get_ref().len() {
                    problems.push(Problem {
                        location: at(*index, list.span()),
                        key: format!("examples.{lang}"),
                        message: format!("intent \"{id}\" has an empty example: remove it"),
                    });
                }
                if !texts.is_empty() {
                    examples.insert(lang.clone(), texts);
                }
            }
            let mut answer = BTreeMap::new();
            for (lang, text) in &rawi.answer {
                check_language(&mut problems, &at(*index, text.span()), "answer", lang);
                if text.get_ref().trim().is_empty() {
                    problems.push(Problem {
                        location: at(*index, text.span()),
                        key: format!("answer.{lang}"),
                        message: format!(
                            "intent \"{id}\" has an empty answer: write one, or remove the key"
                        ),
                    });
                } else {
                    answer.insert(lang.clone(), text.get_ref().trim().to_string());
                }
            }
            let mut patterns = Vec::new();
            for pattern in &rawi.patterns {
                let source = pattern.get_ref();
                if source.trim().is_empty() {
                    problems.push(Problem {
                        location: at(*index, pattern.span()),
                        key: "patterns".into(),
                        message: format!("intent \"{id}\" has an empty pattern: remove it"),
                    });
                    continue;
                }
                match regex::RegexBuilder::new(source)
                    .case_insensitive(true)
                    .size_limit(1 << 20)
                    .build()
                {
                    Ok(re) => patterns.push(re),
                    Err(e) => problems.push(Problem {
                        location: at(*index, pattern.span()),
                        key: "patterns".into(),
                        message: format!(
                            "intent \"{id}\": invalid regular expression {source:?}: {}",
                            e.to_string().lines().last().unwrap_or("invalid")
                        ),
                    }),
                }
            }
            if examples.is_empty() && patterns.is_empty() {
                problems.push(Problem {
                    location: loc.clone(),
                    key: "examples".into(),
                    message: format!(
                        "intent \"{id}\" has no examples and no patterns, so it can never match: add examples.en = [\"…\"]"
                    ),
                });
            }
            if answer.is_empty() && !rawi.escalate && rawi.role != Some(Role::Human) {
                problems.push(Problem {
                    location: loc.clone(),
                    key: "answer".into(),
                    message: format!(
                        "intent \"{id}\" has no answer: add answer.en = \"…\" (only escalating intents may go without)"
                    ),
                });
            }
            if let Some(role) = rawi.role {
                if let Some(other) = role_owner.get(&role) {
                    problems.push(Problem {
                        location: loc.clone(),
                        key: "role".into(),
                        message: format!(
                            "role \"{}\" is already played by intent \"{other}\": only one intent may have it",
                            role.as_str()
                        ),
                    });
                } else {
                    role_owner.insert(role, id.clone());
                }
            }
            let mut buttons = Vec::new();
            for button in &rawi.buttons {
                let goto = button.goto.get_ref();
                if !first_seen.contains_key(goto) {
                    problems.push(Problem {
                        location: at(*index, button.goto.span()),
                        key: "buttons.goto".into(),
                        message: format!(
                            "intent \"{id}\" has a button to \"{goto}\", which is not an intent id"
                        ),
                    });
                }
                let label: BTreeMap<String, String> = button
                    .label
                    .iter()
                    .map(|(k, v)| (k.clone(), v.trim().to_string()))
                    .filter(|(_, v)| !v.is_empty())
                    .collect();
                if label.is_empty() {
                    problems.push(Problem {
                        location: at(*index, button.goto.span()),
                        key: "buttons.label".into(),
                        message: format!(
                            "intent \"{id}\": the button to \"{goto}\" has no label: add label.en = \"…\""
                        ),
                    });
                }
                buttons.push(IntentButton {
                    goto: goto.clone(),
                    label,
                });
            }
            intents.push(Intent {
                id,
                role: rawi.role,
                escalate: rawi.escalate,
                examples,
                patterns,
                answer,
                buttons,
                source: loc,
            });
        }

        if !problems.is_empty() {
            return Err(IntentsError::Invalid(problems));
        }
        if intents.is_empty() {
            return Err(IntentsError::Invalid(vec![Problem {
                location: SourceLocation {
                    file: sources
                        .first()
                        .map(|s| s.0.clone())
                        .unwrap_or_else(|| PathBuf::from("<none>")),
                    line: 1,
                },
                key: "intent".into(),
                message: "no [[intent]] blocks found: the bot needs at least one intent".into(),
            }]));
        }
        let warnings = collect_warnings(&intents, languages);
        let by_id = intents
            .iter()
            .enumerate()
            .map(|(i, intent)| (intent.id.clone(), i))
            .collect();
        Ok(IntentSet {
            intents,
            by_id,
            warnings,
        })
    }
}

fn collect_warnings(intents: &[Intent], languages: &[String]) -> Vec<Problem> {
    let mut warnings = Vec::new();
    for intent in intents {
        for lang in languages {
            if !intent.examples.contains_key(lang) && !intent.patterns.is_empty() {
                continue;
            }
            if !intent.examples.contains_key(lang) {
                warnings.push(Problem {
                    location: intent.source.clone(),
                    key: format!("examples.{lang}"),
                    message: format!(
                        "intent \"{}\" has no examples in \"{lang}\": customers writing {lang} will rarely reach it",
                        intent.id
                    ),
                });
            }
            if !intent.answer.is_empty() && !intent.answer.contains_key(lang) {
                warnings.push(Problem {
                    location: intent.source.clone(),
                    key: format!("answer.{lang}"),
                    message: format!(
                        "intent \"{}\" has no answer in \"{lang}\": those customers get the default language",
                        intent.id
                    ),
                });
            }
        }
    }
    let mut seen: HashMap<String, &str> = HashMap::new();
    for intent in intents {
        for (lang, texts) in &intent.examples {
            for text in texts {
                let key = crate::nlu::normalize(text);
                if key.is_empty() {
                    continue;
                }
                match seen.get(&key) {
                    Some(other) if *other != intent.id => warnings.push(Problem {
                        location: intent.source.clone(),
                        key: format!("examples.{lang}"),
                        message: format!(
                            "the example {text:?} of \"{}\" is also an example of \"{other}\": the matcher cannot tell them apart on it",
                            intent.id
                        ),
                    }),
                    Some(_) => {}
                    None => {
                        seen.insert(key, &intent.id);
                    }
                }
            }
        }
    }
    warnings
}

fn check_language(problems: &mut Vec<Problem>, loc: &SourceLocation, key: &str, lang: &str) {
    if !is_language_code(lang) {
        problems.push(Problem {
            location: loc.clone(),
            key: format!("{key}.{lang}"),
            message: format!(
                "\"{lang}\" is not a language code: use two-letter ISO 639-1 codes such as en, es, it"
            ),
        });
    }
}

/// True for a plausible ISO 639-1 code (two or three lowercase ASCII letters).
pub fn is_language_code(code: &str) -> bool {
    (2..=3).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_lowercase())
}

fn read_text(file: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(file).map_err(|e| format!("cannot read the file: {e}"))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "the file is {} bytes; intent files may be at most {MAX_FILE_BYTES} bytes",
            meta.len()
        ));
    }
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read the file: {e}"))?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "the file is not UTF-8 text (bad byte at offset {}): save it as UTF-8",
            e.utf8_error().valid_up_to()
        )
    })
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).trim().to_string()
}

/// The key nearest to a TOML error: the dotted key at the start of its line, if any.
pub(crate) fn key_from_toml_error(text: &str, span: Option<Range<usize>>) -> String {
    let Some(span) = span else {
        return String::new();
    };
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_end = text[start..]
        .find('\n')
        .map(|i| start + i)
        .unwrap_or(text.len());
    let line = text[line_start..line_end].trim();
    if let Some(header) = line.strip_prefix('[') {
        return header
            .trim_matches(|c| c == '[' || c == ']')
            .trim()
            .to_string();
    }
    // The span of an unknown-field error covers the key itself.
    let spanned = text[start..span.end.min(text.len()).max(start)].trim();
    if !spanned.is_empty()
        && spanned
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        return spanned.to_string();
    }
    match line.split_once('=') {
        Some((key, _)) => key.trim().to_string(),
        None => String::new(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    intent: Vec<RawIntent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntent {
    id: Spanned<String>,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    escalate: bool,
    #[serde(default)]
    examples: BTreeMap<String, Spanned<Vec<String>>>,
    #[serde(default)]
    patterns: Vec<Spanned<String>>,
    #[serde(default)]
    answer: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    buttons: Vec<RawButton>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawButton {
    goto: Spanned<String>,
    #[serde(default)]
    label: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn langs() -> Vec<String> {
        vec!["en".into(), "es".into()]
    }

    fn load(files: &[(&str, &str)]) -> Result<IntentSet, IntentsError> {
        let sources: Vec<(PathBuf, String)> = files
            .iter()
            .map(|(n, t)| (PathBuf::from(n), t.to_string()))
            .collect();
        IntentSet::from_sources(&sources, &langs())
    }

    fn problems(result: Result<IntentSet, IntentsError>) -> Vec<Problem> {
        match result {
            Err(IntentsError::Invalid(p)) => p,
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("expected errors"),
        }
    }

    const GOOD: &str = r#"
[[intent]]
id = "hours"
examples.en = ["when are you open", "opening hours"]
examples.es = ["a qué hora abren"]
answer.en = "9 to 5"
answer.es = "de 9 a 5"

[[intent.buttons]]
goto = "person"
label.en = "Talk to a person"

[[intent]]
id = "person"
role = "human"
escalate = true
examples.en = ["talk to a human"]
"#;

    #[test]
    fn loads_a_good_set() {
        let set = load(&[("a.toml", GOOD)]).expect("valid");
        assert_eq!(set.len(), 2);
        assert_eq!(
            set.get("hours").unwrap().answer_in("es", "en"),
            Some("de 9 a 5")
        );
        assert_eq!(
            set.get("hours").unwrap().answer_in("it", "en"),
            Some("9 to 5")
        );
        assert_eq!(set.with_role(Role::Human).unwrap().id, "person");
        assert_eq!(set.get("hours").unwrap().source.line, 3);
        // person has no Spanish examples → a warning, not an error.
        assert!(set.warnings.iter().any(|w| w.key == "examples.es"));
    }

    #[test]
    fn invalid_toml_names_file_and_line() {
        let p = problems(load(&[(
            "bad.toml",
            "[[intent]]\nid = \"x\"\nexamples.en = [\"a\"\n",
        )]));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].location.file, PathBuf::from("bad.toml"));
        assert!(p[0].location.line >= 3, "{:?}", p[0]);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text =
            "[[intent]]\nid = \"x\"\nexamples.en = [\"a\"]\nanswer.en = \"b\"\nanwser.en = \"c\"\n";
        let p = problems(load(&[("k.toml", text)]));
        assert_eq!(p[0].location.line, 5, "{:?}", p[0]);
        assert_eq!(p[0].key, "anwser", "{:?}", p[0]);
        assert!(p[0].message.contains("unknown field"), "{}", p[0].message);
    }

    #[test]
    fn duplicate_ids_across_files() {
        let a = "[[intent]]\nid = \"x\"\nexamples.en = [\"a\"]\nanswer.en = \"b\"\n";
        let b = "\n\n[[intent]]\nid = \"x\"\nexamples.en = [\"c\"]\nanswer.en = \"d\"\n";
        let p = problems(load(&[("a.toml", a), ("b.toml", b)]));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].location.file, PathBuf::from("b.toml"));
        assert_eq!(p[0].location.line, 4);
        assert_eq!(p[0].key, "id");
        assert!(p[0].message.contains("a.toml:2"), "{}", p[0].message);
    }

    #[test]
    fn invalid_regex_missing_goto_empty_intent() {
        let text = r#"[[intent]]
id = "x"
patterns = ['(unclosed']
examples.en = ["a"]
answer.en = "b"

[[intent.buttons]]
goto = "nowhere"
label.en = "Go"

[[intent]]
id = "empty"
answer.en = "nothing"
"#;
        let p = problems(load(&[("r.toml", text)]));
        let keys: Vec<(&str, usize)> = p
            .iter()
            .map(|p| (p.key.as_str(), p.location.line))
            .collect();
        assert!(keys.contains(&("patterns", 3)), "{keys:?}");
        assert!(keys.contains(&("buttons.goto", 8)), "{keys:?}");
        assert!(keys.contains(&("examples", 12)), "{keys:?}");
    }

    #[test]
    fn duplicate_roles_and_bad_language_and_empty_strings() {
        let text = r#"[[intent]]
id = "a"
role = "greeting"
examples.en = ["hi", "  "]
examples.English = ["hello"]
answer.en = ""

[[intent]]
id = "b"
role = "greeting"
examples.en = ["hey"]
answer.en = "hey"
"#;
        let p = problems(load(&[("d.toml", text)]));
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"role"), "{keys:?}");
        assert!(keys.contains(&"examples.English"), "{keys:?}");
        assert!(keys.contains(&"examples.en"), "{keys:?}");
        assert!(keys.contains(&"answer.en"), "{keys:?}");
    }

    #[test]
    fn bad_role_value_and_wrong_types() {
        let p = problems(load(&[(
            "t.toml",
            "[[intent]]\nid = \"a\"\nrole = \"boss\"\nexamples.en = [\"x\"]\n",
        )]));
        assert_eq!(p[0].location.line, 3, "{:?}", p[0]);
        let p = problems(load(&[("t.toml", "[[intent]]\nid = 5\n")]));
        assert_eq!(p[0].location.line, 2, "{:?}", p[0]);
        let p = problems(load(&[("t.toml", "intent = \"nope\"\n")]));
        assert_eq!(p[0].location.line, 1);
    }

    #[test]
    fn duplicate_example_across_intents_warns() {
        let text = r#"[[intent]]
id = "a"
examples.en = ["Where is my order?"]
answer.en = "a"

[[intent]]
id = "b"
examples.en = ["where is my ORDER"]
answer.en = "b"
"#;
        let set = load(&[("w.toml", text)]).expect("warnings only");
        assert!(
            set.warnings
                .iter()
                .any(|w| w.message.contains("also an example of \"a\"")),
            "{:?}",
            set.warnings
        );
    }

    #[test]
    fn empty_and_hostile_files() {
        assert!(load(&[("e.toml", "")]).is_err());
        assert!(load(&[("e.toml", "\u{0}\u{1}binary")]).is_err());
        let huge = format!(
            "[[intent]]\nid = \"a\"\nexamples.en = [\"{}\"]\nanswer.en = \"b\"\n",
            "x".repeat(200_000)
        );
        assert!(load(&[("h.toml", &huge)]).is_ok());
    }

    #[test]
    fn load_dir_reports_missing_and_empty_dirs() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            IntentSet::load_dir(dir.path(), &langs()),
            Err(IntentsError::Empty(_))
        ));
        assert!(matches!(
            IntentSet::load_dir(&dir.path().join("missing"), &langs()),
            Err(IntentsError::Directory { .. })
        ));
        std::fs::write(dir.path().join("bin.toml"), [0xff, 0xfe, 0x00]).unwrap();
        let p = problems(IntentSet::load_dir(dir.path(), &langs()));
        assert!(p[0].message.contains("UTF-8"));
    }
}

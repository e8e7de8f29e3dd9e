//! Property tests of the matcher and the text pipeline before it: any string
//! in gives a valid result out. No panic; scores finite and in `(0, 1]`;
//! at most five candidates, best first, each a known intent once; the
//! verdict agrees with the ranking and the thresholds; the same input gives
//! the same output, also from a second matcher built from the same intents.
//!
//! The inputs are arbitrary strings and hostile ones: control characters
//! and NUL, right-to-left and mixed scripts with bidi controls, emoji with
//! ZWJ sequences, skin tones, flags and tags, stacks of combining marks,
//! the code points next to the surrogate range and the noncharacters,
//! bytes that are not UTF-8 (decoded lossily, as the channels do), very
//! long single tokens, and real examples of the demo shop with all of that
//! mixed in. Inputs of a megabyte are checked one by one at the end.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use regex::Regex;

use frontdesk::intents::IntentSet;
use frontdesk::nlu::{
    Classification, Example, Matcher, MatcherConfig, Stemmers, TrainingIntent, Verdict, detect,
    normalize, tokens,
};

fn languages() -> Vec<String> {
    ["en", "es", "it"].map(String::from).to_vec()
}

fn demo_training() -> Vec<TrainingIntent> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("intents");
    IntentSet::load_dir(&dir, &languages())
        .expect("the demo intents load")
        .training_data()
}

/// The demo shop's matcher, built once.
fn demo() -> &'static Matcher {
    static M: OnceLock<Matcher> = OnceLock::new();
    M.get_or_init(|| Matcher::build(demo_training(), MatcherConfig::default()))
}

/// The same intents built a second time: must answer exactly alike.
fn demo_again() -> &'static Matcher {
    static M: OnceLock<Matcher> = OnceLock::new();
    M.get_or_init(|| Matcher::build(demo_training(), MatcherConfig::default()))
}

/// A small set with the odd corners: regex patterns (one on an emoji, one
/// that matches almost anything), an intent with only patterns, one whose
/// examples normalise to nothing, an example in a language without a
/// stemmer, duplicate ids, and thresholds at the edges.
fn odd() -> &'static Matcher {
    static M: OnceLock<Matcher> = OnceLock::new();
    M.get_or_init(|| {
        let ex = |language: &str, text: &str| Example {
            language: language.into(),
            text: text.into(),
        };
        let intents = vec![
            TrainingIntent {
                id: "love".into(),
                examples: vec![ex("en", "I love it"), ex("es", "me encanta")],
                patterns: vec![Regex::new("❤").unwrap()],
            },
            TrainingIntent {
                id: "digits".into(),
                examples: vec![],
                patterns: vec![Regex::new(r"(?i)\d{3,}").unwrap()],
            },
            TrainingIntent {
                id: "anything_with_a".into(),
                examples: vec![ex("de", "Wo ist meine Bestellung?")],
                patterns: vec![Regex::new(r"(?i)a").unwrap()],
            },
            TrainingIntent {
                id: "only_punctuation".into(),
                examples: vec![ex("en", "?!…"), ex("en", "👍")],
                patterns: vec![],
            },
            TrainingIntent {
                id: "love".into(),
                examples: vec![ex("it", "lo adoro")],
                patterns: vec![],
            },
        ];
        let config = MatcherConfig {
            answer_threshold: 0.0,
            suggest_threshold: 0.0,
            ambiguity_margin: 1.0,
        };
        Matcher::build(intents, config)
    })
}

/// Every invariant of one classification of `text`, and that classifying
/// it again gives the same.
fn check(m: &Matcher, text: &str, hint: Option<&str>) -> Result<Classification, TestCaseError> {
    let c = check_once(m, text, hint)?;
    prop_assert_eq!(&m.classify(text, hint), &c);
    Ok(c)
}

/// Every invariant of one classification of `text`.
fn check_once(
    m: &Matcher,
    text: &str,
    hint: Option<&str>,
) -> Result<Classification, TestCaseError> {
    let c = m.classify(text, hint);
    let known: HashSet<&str> = m.intent_ids().collect();
    prop_assert!(c.ranked.len() <= 5, "at most five candidates: {:?}", c);
    let mut seen = HashSet::new();
    for cand in &c.ranked {
        prop_assert!(
            cand.score.is_finite() && cand.score > 0.0 && cand.score <= 1.0,
            "score out of (0, 1]: {:?}",
            cand
        );
        prop_assert!(
            known.contains(cand.intent.as_str()),
            "unknown id {:?}",
            cand
        );
        prop_assert!(seen.insert(cand.intent.as_str()), "listed twice: {:?}", c);
    }
    prop_assert!(
        c.ranked.windows(2).all(|w| w[0].score >= w[1].score),
        "best first: {:?}",
        c
    );
    let config = m.config();
    let top = c.ranked.first();
    match &c.verdict {
        Verdict::Answer(id) => {
            prop_assert_eq!(Some(id), top.map(|t| &t.intent));
            prop_assert!(top.is_some_and(|t| t.score >= config.answer_threshold));
        }
        Verdict::Ambiguous(ids) => {
            prop_assert!((1..=3).contains(&ids.len()), "{:?}", c);
            prop_assert_eq!(Some(&ids[0]), top.map(|t| &t.intent));
            let unique: HashSet<&String> = ids.iter().collect();
            prop_assert_eq!(unique.len(), ids.len());
            for id in ids {
                prop_assert!(c.ranked.iter().any(|r| &r.intent == id), "{:?}", c);
            }
            let t = top.map_or(0.0, |t| t.score);
            prop_assert!(
                t >= config.suggest_threshold.min(config.answer_threshold),
                "offered below the thresholds: {:?}",
                c
            );
        }
        Verdict::Unknown => {
            if let Some(t) = top {
                prop_assert!(
                    t.score < config.suggest_threshold.min(config.answer_threshold),
                    "unknown although the best scores {}: {:?}",
                    t.score,
                    c
                );
            }
        }
    }
    if let Some(lang) = &c.evidence_language {
        prop_assert!(!lang.is_empty());
        prop_assert!(top.is_some());
    }
    Ok(c)
}

/// Checks `text` on both matchers, with every kind of hint.
fn check_all(text: &str) -> Result<(), TestCaseError> {
    for hint in [
        None,
        Some("en"),
        Some("es"),
        Some("it"),
        Some("xx"),
        Some(""),
    ] {
        let c = check(demo(), text, hint)?;
        prop_assert_eq!(
            &demo_again().classify(text, hint),
            &c,
            "rebuilt matcher differs"
        );
        check(odd(), text, hint)?;
    }
    Ok(())
}

/// Characters that break naive text handling, by kind (each kind as likely).
fn hostile_char() -> impl Strategy<Value = char> {
    use proptest::char::range;
    prop_oneof![
        range('\u{0}', '\u{1F}'),          // C0 controls, NUL
        range('\u{7F}', '\u{9F}'),         // DEL, C1 controls
        range('\u{0590}', '\u{08FF}'),     // Hebrew, Arabic, Syriac, Thaana…
        range('\u{FB1D}', '\u{FDFF}'),     // Hebrew and Arabic presentation forms
        range('\u{200B}', '\u{200F}'),     // zero-width, ZWJ, LRM, RLM
        range('\u{202A}', '\u{202E}'),     // bidi embeddings and overrides
        range('\u{2066}', '\u{2069}'),     // bidi isolates
        range('\u{1F300}', '\u{1FAFF}'),   // emoji
        range('\u{1F1E6}', '\u{1F1FF}'),   // regional indicators (flags)
        range('\u{1F3FB}', '\u{1F3FF}'),   // skin tones
        range('\u{FE00}', '\u{FE0F}'),     // variation selectors
        range('\u{E0000}', '\u{E007F}'),   // tags
        range('\u{0300}', '\u{036F}'),     // combining diacritics
        range('\u{0900}', '\u{097F}'),     // Devanagari (marks that stay)
        range('\u{D7F0}', '\u{D7FF}'),     // just below the surrogates
        range('\u{E000}', '\u{E0FF}'),     // just above: private use
        range('\u{FFF0}', '\u{FFFF}'),     // specials, U+FFFD, noncharacters
        range('\u{10FFF0}', '\u{10FFFF}'), // the last code points
        range('\u{2000}', '\u{200A}'),     // Unicode spaces
        range('\u{3000}', '\u{30FF}'),     // CJK punctuation, kana
        range('\u{4E00}', '\u{4FFF}'),     // CJK ideographs
        range('\u{0400}', '\u{04FF}'),     // Cyrillic
        range('\u{00C0}', '\u{017F}'),     // accented Latin, ß, ø, ł…
        range('\u{FF01}', '\u{FF5E}'),     // full-width ASCII
        range('\u{FB00}', '\u{FB06}'),     // ligatures
        range(' ', '~'),                   // ASCII
        Just('İ'),
        Just('ς'),
        Just('\u{0345}'), // combining Greek ypogegrammeni: changes under case folding
    ]
}

/// Strings of hostile characters.
fn hostile_string() -> impl Strategy<Value = String> {
    proptest::collection::vec(hostile_char(), 0..80).prop_map(|v| v.into_iter().collect())
}

/// Characters that normalisation drops without splitting a word.
fn invisible_char() -> impl Strategy<Value = char> {
    prop_oneof![
        Just('\u{00AD}'),
        proptest::char::range('\u{200B}', '\u{200D}'),
        Just('\u{2060}'),
        Just('\u{FEFF}'),
        proptest::char::range('\u{FE00}', '\u{FE0F}'),
        proptest::char::range('\u{E0020}', '\u{E007F}'),
    ]
}

/// The texts of the demo shop's examples.
fn demo_examples() -> Vec<String> {
    demo_training()
        .into_iter()
        .flat_map(|i| i.examples.into_iter().map(|e| e.text))
        .collect()
}

/// A demo example with hostile characters put in at random places.
fn spoiled_example() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(demo_examples()),
        proptest::collection::vec((any::<proptest::sample::Index>(), hostile_char()), 0..6),
    )
        .prop_map(|(text, inserts)| {
            let mut chars: Vec<char> = text.chars().collect();
            for (at, c) in inserts {
                let at = at.index(chars.len() + 1);
                chars.insert(at, c);
            }
            chars.into_iter().collect()
        })
}

/// One long token: a character repeated, maybe with a combining mark after each.
fn long_token() -> impl Strategy<Value = String> {
    (hostile_char(), 1_000_usize..20_000, any::<bool>()).prop_map(|(c, n, marks)| {
        let unit = if marks {
            format!("{c}\u{0301}")
        } else {
            c.to_string()
        };
        unit.repeat(n)
    })
}

/// `cases` cases from a fixed seed (the same inputs on every run, so a
/// failure reproduces; `PROPTEST_RNG_SEED` picks another seed), and no
/// regression file written into the source tree: a failure found is added
/// to `regressions` below instead.
fn config(cases: u32) -> ProptestConfig {
    let default = ProptestConfig::default();
    let rng_seed = if std::env::var_os("PROPTEST_RNG_SEED").is_some() {
        default.rng_seed
    } else {
        RngSeed::Fixed(0x5EED_F00D)
    };
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed,
        ..default
    }
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn any_string_gives_a_valid_result(text in any::<String>()) {
        check_all(&text)?;
    }

    #[test]
    fn hostile_strings_give_a_valid_result(text in hostile_string()) {
        check_all(&text)?;
    }

    #[test]
    fn spoiled_examples_give_a_valid_result(text in spoiled_example()) {
        check_all(&text)?;
    }

    #[test]
    fn bytes_that_are_not_utf8_give_a_valid_result(
        bytes in proptest::collection::vec(any::<u8>(), 0..300)
    ) {
        check_all(&String::from_utf8_lossy(&bytes))?;
    }

    /// Invisible characters inside words (zero-width, soft hyphen,
    /// variation selectors, BOM, tags) and upper case change nothing.
    #[test]
    fn invisible_characters_and_case_change_nothing(
        (text, inserts) in (
            proptest::sample::select(demo_examples()),
            proptest::collection::vec((any::<proptest::sample::Index>(), invisible_char()), 1..6),
        )
    ) {
        let mut chars: Vec<char> = text.chars().collect();
        for (at, c) in inserts {
            let at = at.index(chars.len() + 1);
            chars.insert(at, c);
        }
        let spoiled: String = chars.into_iter().collect();
        prop_assert_eq!(normalize(&spoiled), normalize(&text));
        let clean = check(demo(), &text, None)?;
        let c = check(demo(), &spoiled, None)?;
        prop_assert_eq!(&c.ranked, &clean.ranked, "{:?} vs {:?}", spoiled, text);
        prop_assert_eq!(&c.verdict, &clean.verdict);
        let upper = check(demo(), &text.to_uppercase(), None)?;
        prop_assert_eq!(&upper.ranked, &clean.ranked, "{:?}", text.to_uppercase());
    }
}

proptest! {
    #![proptest_config(config(16))]

    #[test]
    fn long_single_tokens_give_a_valid_result(text in long_token()) {
        check(demo(), &text, None)?;
        check(odd(), &text, Some("es"))?;
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// What the matcher compares: single spaces between tokens, nothing at
    /// the ends, no separators left in, and normalising twice changes nothing.
    #[test]
    fn normalize_is_clean_and_idempotent(text in prop_oneof![any::<String>(), hostile_string(), spoiled_example()]) {
        check_normalize(&text)?;
    }

    /// Stemming never panics, and an ASCII word gives an ASCII stem.
    #[test]
    fn stems_are_safe(text in prop_oneof![any::<String>(), hostile_string(), spoiled_example()]) {
        let stemmers = stemmers();
        for word in tokens(&normalize(&text)) {
            for lang in ["en", "es", "it", "de", "es-MX", ""] {
                let stem = stemmers.stem(lang, word);
                if word.is_ascii() {
                    prop_assert!(stem.is_ascii(), "{} {:?} → {:?}", lang, word, stem);
                }
            }
        }
    }

    /// Language detection answers one of the allowed languages, or nothing.
    #[test]
    fn detection_picks_an_allowed_language(text in prop_oneof![any::<String>(), hostile_string(), spoiled_example()]) {
        let allowed = languages();
        if let Some(lang) = detect(&text, &allowed) {
            prop_assert!(allowed.contains(&lang), "{:?}", lang);
        }
        prop_assert_eq!(detect(&text, &allowed), detect(&text, &allowed));
        prop_assert_eq!(detect(&text, &[]), None);
    }
}

/// What the matcher compares: single spaces between tokens, nothing at the
/// ends, no separators left in, nothing with another lower case, and
/// normalising twice changes nothing.
fn check_normalize(text: &str) -> Result<(), TestCaseError> {
    let n = normalize(text);
    prop_assert!(
        !n.starts_with(' ') && !n.ends_with(' ') && !n.contains("  "),
        "{:?}",
        n
    );
    prop_assert!(
        n.chars().all(|c| c == ' '
            || !(c.is_whitespace() || c.is_control() || c.is_ascii_punctuation())),
        "separators left in {:?}",
        n
    );
    prop_assert!(
        n.chars().all(|c| c.to_lowercase().eq([c])),
        "a letter with a lower case left in {:?}",
        n
    );
    prop_assert_eq!(normalize(&n), n.clone(), "not idempotent on {:?}", text);
    prop_assert!(tokens(&n).all(|t| !t.is_empty() && !t.contains(' ')));
    Ok(())
}

/// Inputs that the property runs found, or that are known to be tricky:
/// checked on every run, whatever the seed.
#[test]
fn regressions() {
    for text in [
        "🅐",       // upper case with no lower case (found by the run)
        "\u{345}", // a mark whose case folding is a letter
        "A\u{345}\u{301}",
        "İstanbul ǅ ς Σ ẞ",
        "\u{FDFA}",           // one character, NFKC gives eighteen
        "\u{2F800}\u{1D400}", // compatibility ideograph, mathematical bold A
        "e\u{301}\u{302}\u{303}\u{304}\u{305}\u{306}",
        "\u{0}\u{0}open\u{0}",
        "\u{202E}nepo uoy era nehW",
        "🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}",
        "👩\u{200D}👩\u{200D}👧",
        "\u{D7FF}\u{E000}\u{FFFF}\u{10FFFF}",
    ] {
        let run = || -> Result<(), TestCaseError> {
            check_normalize(text)?;
            check_all(text)
        };
        if let Err(e) = run() {
            panic!("{e} on {text:?}");
        }
    }
}

fn stemmers() -> &'static Stemmers {
    static S: OnceLock<Stemmers> = OnceLock::new();
    S.get_or_init(Stemmers::new)
}

/// Inputs of a megabyte each: a sentence repeated, one token, one emoji ZWJ
/// sequence repeated, one letter under a megabyte of combining marks, NULs,
/// whitespace, right-to-left text, and the bytes of all of them mixed.
#[test]
fn megabyte_inputs_give_a_valid_result() {
    const MB: usize = 1 << 20;
    let fill = |unit: &str| unit.repeat(MB / unit.len() + 1);
    let inputs = [
        fill("¿Dónde está mi pedido? Where is my order? "),
        "a".repeat(MB),
        fill("👩\u{200D}👩\u{200D}👧\u{200D}👦🏽"),
        format!("e{}", "\u{0301}".repeat(MB / 2)),
        "\u{0}".repeat(MB),
        fill(" \t\r\n\u{3000}\u{00A0}"),
        fill("مرحبا، أين طلبي؟ \u{202B}שלום\u{202C} "),
        fill("\u{10FFFF}\u{FFFD}\u{D7FF}\u{E000}"),
    ];
    for text in &inputs {
        assert!(text.len() >= MB / 2);
        let run = || -> Result<(), TestCaseError> {
            check_once(demo(), text, None)?;
            check_once(odd(), text, Some("en"))?;
            Ok(())
        };
        if let Err(e) = run() {
            panic!(
                "{e} (input starts {:?})",
                text.chars().take(20).collect::<String>()
            );
        }
    }
}

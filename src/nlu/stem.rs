//! Stemming and stop words for the languages the matcher knows well.
//!
//! English, Spanish and Italian use the Snowball stemmers from
//! `rust-stemmers`; every other language is left as it is (identity).
//!
//! Words are stemmed *after* accent folding (see [`normalize`](super::normalize::normalize)). That
//! way a customer who types `devolucion` and an example that says `devolución`
//! get the same stem. The Snowball rules mostly work on folded words; the one
//! loss measured on a Spanish word list is the `-ción` suffix, which the
//! stemmer only removes with its accent, so [`Stemmers::stem`] puts that accent
//! back before stemming Spanish and folds the stem again afterwards.
//!
//! Stop words are the most common function words of each language. The
//! matcher keeps them at full weight (its tuning can down-weight them; on the
//! shared benchmarks full weight measured best).

use std::borrow::Cow;
use std::fmt;

use rust_stemmers::{Algorithm, Stemmer};

/// Words longer than this many bytes are returned unstemmed: they are not
/// natural-language words (URLs, codes, pasted garbage) and stemming them
/// would only cost time.
const MAX_STEM_LEN: usize = 64;

/// Prebuilt Snowball stemmers for English, Spanish and Italian.
///
/// Build it once and share it; it is cheap to use and `Send + Sync`.
pub struct Stemmers {
    english: Stemmer,
    spanish: Stemmer,
    italian: Stemmer,
}

/// A language the stemmers and stop-word lists know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    En,
    Es,
    It,
}

/// Maps an ISO 639-1 code (any case, optionally with a region such as
/// `es-MX` or `pt_BR`) to the language we stem, if we stem it.
fn known(lang: &str) -> Option<Known> {
    let primary = lang.split(['-', '_']).next().unwrap_or(lang).trim();
    if primary.eq_ignore_ascii_case("en") {
        Some(Known::En)
    } else if primary.eq_ignore_ascii_case("es") {
        Some(Known::Es)
    } else if primary.eq_ignore_ascii_case("it") {
        Some(Known::It)
    } else {
        None
    }
}

impl Stemmers {
    /// Builds the stemmers.
    pub fn new() -> Self {
        Stemmers {
            english: Stemmer::create(Algorithm::English),
            spanish: Stemmer::create(Algorithm::Spanish),
            italian: Stemmer::create(Algorithm::Italian),
        }
    }

    /// Whether `lang` (ISO 639-1, e.g. `"es"` or `"es-MX"`) has a real
    /// stemmer; for other languages [`Stemmers::stem`] is the identity.
    pub fn supports(&self, lang: &str) -> bool {
        known(lang).is_some()
    }

    /// Stems one normalised (lower-cased, accent-folded) word in language
    /// `lang`. Unknown languages, very long words and words that are not
    /// ASCII after folding (other scripts: nothing for these stemmers to do)
    /// are returned unchanged. The result is accent-folded as well.
    ///
    /// The ASCII rule also keeps the stemmers away from multi-byte input:
    /// `rust-stemmers` 1.2 can panic on some (a known Snowball bug, seen with
    /// its Greek stemmer).
    pub fn stem<'a>(&self, lang: &str, word: &'a str) -> Cow<'a, str> {
        if word.len() > MAX_STEM_LEN || word.is_empty() || !word.is_ascii() {
            return Cow::Borrowed(word);
        }
        match known(lang) {
            None => Cow::Borrowed(word),
            Some(Known::En) => self.english.stem(word),
            Some(Known::It) => fold_owned(self.italian.stem(word)),
            Some(Known::Es) => match word.strip_suffix("cion") {
                // `-ción` is only recognised with its accent: restore it.
                Some(base) => {
                    let accented = format!("{base}ción");
                    let stem = self.spanish.stem(&accented).into_owned();
                    Cow::Owned(fold_str(&stem))
                }
                None => fold_owned(self.spanish.stem(word)),
            },
        }
    }
}

impl Default for Stemmers {
    fn default() -> Self {
        Stemmers::new()
    }
}

impl fmt::Debug for Stemmers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Stemmers { en, es, it }")
    }
}

/// Folds the accented vowels that Snowball's Spanish/Italian rules can leave
/// (or put) in a stem. The input is already folded, so this is rarely needed.
fn fold_owned(stem: Cow<'_, str>) -> Cow<'_, str> {
    if stem.is_ascii() {
        stem
    } else {
        Cow::Owned(fold_str(&stem))
    }
}

fn fold_str(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'á' | 'à' => 'a',
            'é' | 'è' => 'e',
            'í' | 'ì' => 'i',
            'ó' | 'ò' => 'o',
            'ú' | 'ù' | 'ü' => 'u',
            other => other,
        })
        .collect()
}

/// Whether `word` (normalised: lower-case, accent-folded) is a stop word of
/// `lang` (ISO 639-1). Languages without a list have no stop words.
pub fn is_stop_word(lang: &str, word: &str) -> bool {
    let list: &[&str] = match known(lang) {
        Some(Known::En) => STOP_EN,
        Some(Known::Es) => STOP_ES,
        Some(Known::It) => STOP_IT,
        None => return false,
    };
    list.binary_search(&word).is_ok()
}

// The lists are accent-folded and sorted (a test checks), for binary search.
// Question words (what, when, where, how, qué, cuándo, dónde, quando, dove …)
// are deliberately *not* stop words: they tell "when do you open" from "where
// are you" from "how much is it".

const STOP_EN: &[&str] = &[
    "a", "about", "am", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "could",
    "d", "did", "do", "does", "for", "from", "had", "has", "have", "i", "if", "in", "is", "it",
    "its", "ll", "m", "me", "my", "of", "on", "or", "our", "please", "re", "s", "so", "t", "that",
    "the", "their", "them", "there", "they", "this", "to", "us", "ve", "was", "we", "were", "will",
    "with", "would", "you", "your",
];

const STOP_ES: &[&str] = &[
    "a", "al", "como", "con", "de", "del", "e", "el", "en", "es", "esta", "este", "esto", "fue",
    "ha", "hay", "la", "las", "le", "les", "lo", "los", "me", "mi", "mis", "muy", "nos", "o",
    "para", "pero", "por", "que", "se", "ser", "si", "son", "su", "sus", "te", "tu", "tus", "u",
    "un", "una", "unas", "uno", "unos", "usted", "ustedes", "y", "ya", "yo",
];

const STOP_IT: &[&str] = &[
    "a", "ad", "al", "alla", "alle", "allo", "c", "che", "ci", "col", "con", "d", "da", "dal",
    "dalla", "degli", "dei", "del", "della", "delle", "dello", "di", "e", "ed", "gli", "ha", "ho",
    "i", "il", "in", "l", "la", "le", "lo", "mi", "mia", "mio", "ne", "nel", "nella", "o", "per",
    "si", "sono", "su", "sul", "sulla", "ti", "tu", "un", "una", "uno", "vi", "voi", "vostro",
];

#[cfg(test)]
mod tests {
    use super::super::normalize::normalize;
    use super::*;

    fn stem_text(st: &Stemmers, lang: &str, text: &str) -> Vec<String> {
        normalize(text)
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(|w| st.stem(lang, w).into_owned())
            .collect()
    }

    #[test]
    fn stop_lists_are_sorted_folded_and_sized() {
        for list in [STOP_EN, STOP_ES, STOP_IT] {
            assert!(
                list.windows(2).all(|w| w[0] < w[1]),
                "sorted, no duplicates: {list:?}"
            );
            assert!((30..=60).contains(&list.len()));
            for w in list {
                assert_eq!(normalize(w), *w, "stop word {w:?} is normalised");
            }
        }
    }

    #[test]
    fn english_inflections_conflate() {
        let st = Stemmers::new();
        assert_eq!(st.stem("en", "opening"), st.stem("en", "open"));
        assert_eq!(st.stem("en", "returns"), st.stem("en", "returned"));
        assert_eq!(st.stem("en", "shipping"), "ship");
        assert_eq!(st.stem("EN-us", "hours"), "hour");
    }

    #[test]
    fn english_word_families_conflate() {
        let st = Stemmers::new();
        let groups: &[&[&str]] = &[
            &["delivery", "deliveries"],
            &["cancel", "cancelled", "cancelling", "cancels"],
            &["refund", "refunds", "refunded", "refunding"],
            &["payment", "payments"],
            &["arrive", "arrived", "arriving", "arrives"],
            &["charge", "charged", "charges", "charging"],
        ];
        for group in groups {
            let stems: Vec<_> = group.iter().map(|w| st.stem("en", w)).collect();
            assert!(
                stems.windows(2).all(|p| p[0] == p[1]),
                "{group:?} → {stems:?}"
            );
        }
    }

    #[test]
    fn spanish_and_italian_verb_forms_conflate() {
        let st = Stemmers::new();
        let groups: &[(&str, &[&str])] = &[
            ("es", &["cancelar", "cancelado", "cancelada", "cancelo"]),
            ("es", &["pagar", "pagado", "pagada"]),
            ("it", &["spedire", "spedito", "spedita", "spediti"]),
            ("it", &["pagare", "pagato", "pagata"]),
            ("it", &["annullare", "annullato", "annullata"]),
        ];
        for (lang, group) in groups {
            let stems: Vec<_> = group
                .iter()
                .map(|w| st.stem(lang, &normalize(w)).into_owned())
                .collect();
            assert!(
                stems.windows(2).all(|p| p[0] == p[1]),
                "{lang} {group:?} → {stems:?}"
            );
        }
    }

    #[test]
    fn region_codes_pick_the_language() {
        let st = Stemmers::new();
        for (region, lang) in [
            ("es-MX", "es"),
            ("es_AR", "es"),
            ("IT-ch", "it"),
            ("en-GB", "en"),
        ] {
            assert!(st.supports(region), "{region}");
            assert_eq!(
                st.stem(region, "pedidos"),
                st.stem(lang, "pedidos"),
                "{region}"
            );
            assert_eq!(
                st.stem(region, "spedizioni"),
                st.stem(lang, "spedizioni"),
                "{region}"
            );
        }
        assert!(!st.supports("esp"));
        assert!(!st.supports("-es"));
    }

    #[test]
    fn stems_expect_normalised_words() {
        // The matcher stems the output of `normalize`: lower case, folded.
        // Anything else that is not ASCII is left alone, never mangled.
        let st = Stemmers::new();
        assert_eq!(st.stem("es", "envío"), "envío");
        assert_eq!(st.stem("es", &normalize("envíos")), st.stem("es", "envio"));
        assert_eq!(st.stem("it", "città"), "città");
        assert_eq!(st.stem("it", &normalize("CITTÀ")), st.stem("it", "citta"));
    }

    #[test]
    fn spanish_folded_words_still_stem() {
        let st = Stemmers::new();
        // With and without accents, singular and plural, land on one stem.
        let groups: &[&[&str]] = &[
            &["envío", "envio", "envíos", "envios"],
            &["devolución", "devolucion", "devoluciones"],
            &["sábado", "sabado", "sábados"],
            &["horario", "horarios"],
            &["información", "informacion"],
            &["cancelación", "cancelacion", "cancelar"],
            &["pedido", "pedidos"],
            &["abierto", "abiertos"],
        ];
        for group in groups {
            let stems: Vec<_> = group
                .iter()
                .map(|w| st.stem("es", &normalize(w)).into_owned())
                .collect();
            assert!(
                stems.windows(2).all(|p| p[0] == p[1]),
                "{group:?} → {stems:?}"
            );
        }
        assert_eq!(st.stem("es", "devolucion"), "devolu");
        assert!(st.stem("es", "atencion").is_ascii());
    }

    #[test]
    fn italian_folded_words_still_stem() {
        let st = Stemmers::new();
        let groups: &[&[&str]] = &[
            &["spedizione", "spedizioni"],
            &["aperto", "aperti", "aperta"],
            &["orario", "orari"],
            &["città", "citta"],
            &["possibilità", "possibilita"],
            &["perché", "perche"],
            &["consegna", "consegne"],
        ];
        for group in groups {
            let stems: Vec<_> = group
                .iter()
                .map(|w| st.stem("it", &normalize(w)).into_owned())
                .collect();
            assert!(
                stems.windows(2).all(|p| p[0] == p[1]),
                "{group:?} → {stems:?}"
            );
        }
    }

    #[test]
    fn unknown_languages_are_identity() {
        let st = Stemmers::new();
        assert!(matches!(
            st.stem("fr", "livraisons"),
            Cow::Borrowed("livraisons")
        ));
        assert!(matches!(st.stem("", "running"), Cow::Borrowed("running")));
        assert!(!st.supports("de"));
        assert!(st.supports("it-CH"));
        assert_eq!(stem_text(&st, "zz", "¿Dónde está?"), ["donde", "esta"]);
    }

    #[test]
    fn stop_words() {
        assert!(is_stop_word("en", "the"));
        assert!(!is_stop_word("en", "when"));
        assert!(is_stop_word("es", "los"));
        assert!(!is_stop_word("es", "donde"));
        assert!(is_stop_word("it", "della"));
        assert!(!is_stop_word("it", "quando"));
        assert!(!is_stop_word("fr", "le"));
    }

    #[test]
    fn odd_words_do_not_panic() {
        let st = Stemmers::new();
        let long = "x".repeat(10_000);
        for lang in ["en", "es", "it", "de"] {
            for w in [
                "",
                "a",
                "ción",
                "cion",
                "ñ",
                "мир",
                "世界",
                "\u{0}",
                "ǅ",
                long.as_str(),
            ] {
                let _ = st.stem(lang, w);
            }
        }
        assert_eq!(st.stem("en", &long).len(), long.len());
    }

    #[test]
    fn fuzz_stemmers() {
        // Random words over ASCII letters, digits and the suffixes the
        // stemmers look for, plus the restored "-ción": no panic, ASCII out.
        let st = Stemmers::new();
        let pieces = [
            "a", "e", "i", "o", "u", "y", "b", "c", "d", "l", "m", "n", "r", "s", "t", "z", "1",
            "cion", "mente", "ando", "iendo", "ing", "ed", "ies", "ness", "zione", "ità", "ción",
        ];
        let mut state: u64 = 7;
        for _ in 0..20_000 {
            let mut word = String::new();
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            for k in 0..(state >> 60) {
                let r = (state >> (k * 4 % 56)) as usize;
                word.push_str(pieces[r % pieces.len()]);
            }
            for lang in ["en", "es", "it"] {
                let stem = st.stem(lang, &word);
                if word.is_ascii() {
                    assert!(stem.is_ascii(), "{lang} {word:?} → {stem:?}");
                } else {
                    assert_eq!(stem, word, "non-ASCII words are not stemmed");
                }
            }
        }
    }

    #[test]
    fn send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Stemmers>();
    }
}

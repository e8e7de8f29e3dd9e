//! Language detection for customer messages, restricted to the languages the
//! bot speaks.
//!
//! Two sources of evidence are combined:
//! - `whatlang` (trigram statistics), restricted to the allowed languages;
//!   good on sentences, weak on the two- to five-word questions customers
//!   type ("What time do you open?" comes out as Spanish, unreliably);
//! - a vote of very common function words and greetings ("the", "where",
//!   "qué", "hola", "gracias", "che", "ciao", "grazie" …) plus a few
//!   orthographic cues (`¿`, `¡`, `ñ`, …), which is what short messages have.
//!
//! [`detect`] answers only when the combined evidence is clear; otherwise it
//! returns `None` and the caller keeps whatever language it already had.

use whatlang::{Detector, Lang};

use super::normalize::{normalize, tokens};

/// ISO 639-1 codes and the `whatlang` languages they stand for.
const CODES: &[(&str, Lang)] = &[
    ("af", Lang::Afr),
    ("ak", Lang::Aka),
    ("am", Lang::Amh),
    ("ar", Lang::Ara),
    ("az", Lang::Aze),
    ("be", Lang::Bel),
    ("bg", Lang::Bul),
    ("bn", Lang::Ben),
    ("ca", Lang::Cat),
    ("cs", Lang::Ces),
    ("cy", Lang::Cym),
    ("da", Lang::Dan),
    ("de", Lang::Deu),
    ("el", Lang::Ell),
    ("en", Lang::Eng),
    ("eo", Lang::Epo),
    ("es", Lang::Spa),
    ("et", Lang::Est),
    ("fa", Lang::Pes),
    ("fi", Lang::Fin),
    ("fr", Lang::Fra),
    ("gu", Lang::Guj),
    ("he", Lang::Heb),
    ("hi", Lang::Hin),
    ("hr", Lang::Hrv),
    ("hu", Lang::Hun),
    ("hy", Lang::Hye),
    ("id", Lang::Ind),
    ("it", Lang::Ita),
    ("ja", Lang::Jpn),
    ("jv", Lang::Jav),
    ("ka", Lang::Kat),
    ("km", Lang::Khm),
    ("kn", Lang::Kan),
    ("ko", Lang::Kor),
    ("la", Lang::Lat),
    ("lt", Lang::Lit),
    ("lv", Lang::Lav),
    ("mk", Lang::Mkd),
    ("ml", Lang::Mal),
    ("mr", Lang::Mar),
    ("my", Lang::Mya),
    ("nb", Lang::Nob),
    ("ne", Lang::Nep),
    ("nl", Lang::Nld),
    ("no", Lang::Nob),
    ("or", Lang::Ori),
    ("pa", Lang::Pan),
    ("pl", Lang::Pol),
    ("pt", Lang::Por),
    ("ro", Lang::Ron),
    ("ru", Lang::Rus),
    ("si", Lang::Sin),
    ("sk", Lang::Slk),
    ("sl", Lang::Slv),
    ("sn", Lang::Sna),
    ("sr", Lang::Srp),
    ("sv", Lang::Swe),
    ("ta", Lang::Tam),
    ("te", Lang::Tel),
    ("th", Lang::Tha),
    ("tk", Lang::Tuk),
    ("tl", Lang::Tgl),
    ("tr", Lang::Tur),
    ("uk", Lang::Ukr),
    ("ur", Lang::Urd),
    ("uz", Lang::Uzb),
    ("vi", Lang::Vie),
    ("yi", Lang::Yid),
    ("zh", Lang::Cmn),
    ("zu", Lang::Zul),
];

/// Function words and greetings per language (normalised: lower-case, no
/// accents). A word listed for several languages counts for each, so shared
/// words cancel out. Words that are common in several of these languages
/// ("no", "a", "la", "de", "en", "un", "mi", "con" …) are left out.
const CUES: &[(&str, &[&str])] = &[
    (
        "en",
        &[
            "am", "and", "are", "can", "does", "don", "from", "get", "have", "hello", "hey", "hi",
            "how", "is", "it", "much", "my", "of", "please", "thank", "thanks", "the", "there",
            "this", "to", "want", "was", "what", "when", "where", "which", "why", "will", "with",
            "would", "you", "your",
        ],
    ),
    (
        "es",
        &[
            "buenas", "buenos", "como", "cual", "cuales", "cuando", "cuanto", "cuantos", "del",
            "donde", "el", "es", "esta", "estan", "estoy", "gracias", "hasta", "hay", "hola",
            "las", "los", "muy", "necesito", "para", "por", "porque", "puedo", "que", "quiero",
            "quisiera", "tambien", "tengo", "tiene", "tienen", "usted", "ustedes", "y",
        ],
    ),
    (
        "it",
        &[
            "avete",
            "buonasera",
            "buongiorno",
            "che",
            "chi",
            "ciao",
            "come",
            "cosa",
            "degli",
            "del",
            "della",
            "delle",
            "dello",
            "di",
            "dove",
            "e",
            "gli",
            "grazie",
            "ho",
            "il",
            "ma",
            "mio",
            "nella",
            "non",
            "per",
            "perche",
            "posso",
            "qual",
            "quale",
            "quando",
            "quanto",
            "salve",
            "sei",
            "siete",
            "sono",
            "vorrei",
            "vostro",
        ],
    ),
    (
        "fr",
        &[
            "avec", "avez", "bonjour", "ce", "combien", "comment", "dans", "des", "du", "est",
            "et", "je", "les", "ma", "merci", "mes", "mon", "nous", "ou", "pas", "pour",
            "pourquoi", "quand", "que", "quel", "quelle", "qui", "salut", "suis", "votre", "vous",
        ],
    ),
    (
        "de",
        &[
            "bitte", "danke", "das", "der", "die", "ein", "eine", "fur", "guten", "haben", "hallo",
            "ich", "ist", "kann", "mein", "meine", "mit", "nicht", "sie", "sind", "und", "wann",
            "warum", "was", "welche", "wie", "wir", "wo",
        ],
    ),
    (
        "pt",
        &[
            "como", "da", "das", "do", "dos", "e", "gostaria", "meu", "minha", "nao", "o",
            "obrigada", "obrigado", "ola", "onde", "os", "para", "por", "posso", "qual", "quando",
            "quanto", "que", "quero", "sim", "tem", "voce", "voces",
        ],
    ),
    (
        "nl",
        &[
            "bedankt", "een", "en", "graag", "hallo", "heb", "het", "hoe", "ik", "is", "je",
            "mijn", "niet", "van", "waar", "waarom", "wanneer", "wat", "welke", "wij",
        ],
    ),
];

/// Bonus for the language `whatlang` calls reliable.
const RELIABLE_BONUS: f64 = 3.0;
/// The winner needs at least this much evidence …
const MIN_EVIDENCE: f64 = 1.0;
/// … and this much more than the runner-up.
const MIN_LEAD: f64 = 0.5;

/// Maps an ISO 639-1 code (any case; a region suffix such as `pt-BR` is
/// ignored) to the `whatlang` language, if `whatlang` knows it.
fn to_whatlang(code: &str) -> Option<Lang> {
    let primary = code.split(['-', '_']).next().unwrap_or(code).trim();
    CODES
        .iter()
        .find(|(iso, _)| iso.eq_ignore_ascii_case(primary))
        .map(|&(_, lang)| lang)
}

/// Primary subtag of an allowed code, lower-cased (`"pt-BR"` → `"pt"`).
fn primary(code: &str) -> String {
    code.split(['-', '_'])
        .next()
        .unwrap_or(code)
        .trim()
        .to_ascii_lowercase()
}

/// Detects the language of `text` among the `allowed` ISO 639-1 codes.
///
/// Returns one of the `allowed` strings (as given) when the evidence is clear:
/// `whatlang` restricted to the allowed languages says it is reliable, and/or
/// function words and orthographic cues of that language dominate. Returns
/// `None` for empty text, text without letters (digits, emoji), words shared
/// by every language ("ok"), or when the evidence is split. Codes `whatlang`
/// does not know still take part in the function-word vote if they have cue
/// words; codes with neither are ignored.
pub fn detect(text: &str, allowed: &[String]) -> Option<String> {
    if allowed.is_empty() {
        return None;
    }
    let normalized = normalize(text);
    if !normalized.chars().any(char::is_alphabetic) {
        return None;
    }

    // One evidence slot per allowed entry (duplicates share the first slot).
    let keys: Vec<String> = allowed.iter().map(|c| primary(c)).collect();
    let mut evidence = vec![0.0_f64; allowed.len()];
    let slot = |code: &str| keys.iter().position(|k| k == code);

    // Function-word vote.
    for token in tokens(&normalized) {
        for (code, words) in CUES {
            if words.binary_search(&token).is_ok()
                && let Some(i) = slot(code)
            {
                evidence[i] += 1.0;
            }
        }
    }

    // Orthographic cues, on the raw text.
    let add = |code: &str, amount: f64, evidence: &mut [f64]| {
        if let Some(i) = slot(code) {
            evidence[i] += amount;
        }
    };
    if text.contains(['¿', '¡']) {
        add("es", 2.0, &mut evidence);
    }
    if text.contains(['ñ', 'Ñ']) {
        add("es", 1.0, &mut evidence);
    }
    if text.contains(['ã', 'õ', 'Ã', 'Õ']) {
        add("pt", 1.0, &mut evidence);
    }
    if text.contains(['ß', 'ä', 'ö', 'Ä', 'Ö']) {
        add("de", 1.0, &mut evidence);
    }

    // whatlang, restricted to the allowed languages it knows.
    let mut langs: Vec<Lang> = allowed.iter().filter_map(|c| to_whatlang(c)).collect();
    langs.sort_by_key(|l| l.code());
    langs.dedup();
    if langs.len() >= 2
        && let Some(info) = Detector::with_allowlist(langs).detect(text)
    {
        let code = CODES
            .iter()
            .find(|(_, l)| *l == info.lang())
            .map(|&(iso, _)| iso);
        // "no" and "nb" both map to Bokmål; credit whichever was allowed.
        let i = match code {
            Some("nb") => slot("nb").or_else(|| slot("no")),
            Some(c) => slot(c),
            None => None,
        };
        if let Some(i) = i {
            evidence[i] += if info.is_reliable() {
                RELIABLE_BONUS
            } else {
                info.confidence().clamp(0.0, 1.0)
            };
        }
    }

    // Decide: the best slot must lead clearly.
    let mut best: Option<usize> = None;
    for (i, &score) in evidence.iter().enumerate() {
        if best.is_none_or(|b| score > evidence[b]) {
            best = Some(i);
        }
    }
    let best = best?;
    let top = evidence[best];
    let second = evidence
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != best && keys[i] != keys[best])
        .map(|(_, &s)| s)
        .fold(0.0_f64, f64::max);
    if top >= MIN_EVIDENCE && top - second >= MIN_LEAD {
        allowed.get(best).cloned()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eei() -> Vec<String> {
        vec!["en".into(), "es".into(), "it".into()]
    }

    fn d(text: &str) -> Option<String> {
        detect(text, &eei())
    }

    #[test]
    fn cue_lists_are_sorted_and_normalised() {
        for (code, words) in CUES {
            assert!(
                words.windows(2).all(|w| w[0] < w[1]),
                "{code} sorted: {words:?}"
            );
            for w in *words {
                assert_eq!(normalize(w), *w);
            }
        }
    }

    #[test]
    fn codes_are_unique_and_sorted() {
        assert!(CODES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(to_whatlang("EN"), Some(Lang::Eng));
        assert_eq!(to_whatlang("pt-BR"), Some(Lang::Por));
        assert_eq!(to_whatlang("xx"), None);
    }

    #[test]
    fn short_spanish() {
        assert_eq!(d("¿A qué hora abren?").as_deref(), Some("es"));
        assert_eq!(d("a que hora abren").as_deref(), Some("es"));
        assert_eq!(d("hola").as_deref(), Some("es"));
        assert_eq!(d("gracias").as_deref(), Some("es"));
        assert_eq!(d("Quiero devolver un pedido").as_deref(), Some("es"));
        assert_eq!(d("¿Cuánto cuesta el envío?").as_deref(), Some("es"));
        assert_eq!(d("¿Dónde están?").as_deref(), Some("es"));
    }

    #[test]
    fn short_italian() {
        assert_eq!(d("ciao").as_deref(), Some("it"));
        assert_eq!(d("grazie").as_deref(), Some("it"));
        assert_eq!(d("vorrei restituire un ordine").as_deref(), Some("it"));
        assert_eq!(d("Dove siete?").as_deref(), Some("it"));
        assert_eq!(d("Quando siete aperti?").as_deref(), Some("it"));
        assert_eq!(d("A che ora aprite?").as_deref(), Some("it"));
        assert_eq!(d("Qual è l'orario di apertura?").as_deref(), Some("it"));
    }

    #[test]
    fn short_english() {
        assert_eq!(d("hello").as_deref(), Some("en"));
        assert_eq!(d("thanks").as_deref(), Some("en"));
        assert_eq!(d("What time do you open?").as_deref(), Some("en"));
        assert_eq!(d("where is my order").as_deref(), Some("en"));
        assert_eq!(d("how much is shipping").as_deref(), Some("en"));
    }

    #[test]
    fn long_sentences() {
        assert_eq!(
            d("I would like to return the shoes I bought last week because they are too small")
                .as_deref(),
            Some("en")
        );
        assert_eq!(
            d("Me gustaría devolver los zapatos que compré la semana pasada porque son demasiado pequeños")
                .as_deref(),
            Some("es")
        );
        assert_eq!(
            d("Vorrei restituire le scarpe che ho comprato la settimana scorsa perché sono troppo piccole")
                .as_deref(),
            Some("it")
        );
    }

    #[test]
    fn undecided() {
        assert_eq!(d(""), None);
        assert_eq!(d("   "), None);
        assert_eq!(d("ok"), None);
        assert_eq!(d("1234"), None);
        assert_eq!(d("12:30 !!"), None);
        assert_eq!(d("👍"), None);
        assert_eq!(d("zzzz qqqq"), None);
    }

    #[test]
    fn only_allowed_languages_are_returned() {
        let en_es = vec!["en".to_string(), "es".to_string()];
        assert_eq!(detect("grazie mille", &en_es), None);
        assert_eq!(detect("hola", &[]), None);
        assert_eq!(detect("hola", &["xx".to_string(), "qq".to_string()]), None);
        let odd = vec!["EN".to_string(), "es-MX".to_string()];
        assert_eq!(detect("¿Dónde están?", &odd).as_deref(), Some("es-MX"));
        assert_eq!(detect("where are you", &odd).as_deref(), Some("EN"));
    }

    #[test]
    fn other_languages() {
        let many: Vec<String> = ["en", "es", "it", "fr", "de", "pt", "nl"]
            .map(String::from)
            .into();
        assert_eq!(
            detect("Bonjour, où est ma commande ?", &many).as_deref(),
            Some("fr")
        );
        assert_eq!(
            detect("Wann haben Sie geöffnet?", &many).as_deref(),
            Some("de")
        );
        assert_eq!(
            detect("Olá, onde está o meu pedido?", &many).as_deref(),
            Some("pt")
        );
        assert_eq!(
            detect("Waar is mijn bestelling?", &many).as_deref(),
            Some("nl")
        );
        assert_eq!(
            detect("What time do you open?", &many).as_deref(),
            Some("en")
        );
    }

    #[test]
    fn no_panic_on_noise() {
        let langs = eei();
        for s in [
            "\u{0}\u{1}\u{2}",
            "¿¡",
            "ñ",
            "\u{10FFFF}",
            "a\u{301}\u{301}\u{301}",
        ] {
            let _ = detect(s, &langs);
        }
        let big = "hola que tal ".repeat(10_000);
        assert_eq!(detect(&big, &langs).as_deref(), Some("es"));
    }
}

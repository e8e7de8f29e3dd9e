//! Text normalisation for matching: Unicode compatibility normalisation,
//! case folding, accent folding, punctuation/symbol removal and tokenisation.
//!
//! Everything the matcher compares goes through [`normalize`] first, so a
//! customer who types `¿CUÁNTO cuesta el envío?!` and an example written as
//! `cuanto cuesta el envio` end up with the same tokens.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Normalises `text` for matching.
///
/// Steps, in order:
/// 1. Unicode NFKC (full-width letters, ligatures, superscripts … become plain).
/// 2. Lower-casing plus case folding of the few letters whose lower case is not
///    their fold: `ß`/`ẞ` → `ss`, final sigma `ς` → `σ`.
/// 3. Accent folding: canonical decomposition, removal of the combining
///    diacritics (U+0300–U+036F and the other "combining diacritical marks"
///    blocks), recomposition; `æ`, `œ`, `ø`, `ł`, `đ`, `ı` are folded too.
///    Marks that are vowel signs of other scripts (Devanagari, Thai, …) stay.
/// 4. Every character that is not a letter, digit or remaining mark becomes a
///    space: punctuation, symbols, emoji, apostrophes, `¿`, `¡`, control
///    characters. Invisible format characters (soft hyphen, zero-width joiners,
///    variation selectors, BOM, bidirectional marks and controls that
///    keyboards and copied text put inside words) are removed without
///    splitting the word.
/// 5. Whitespace runs collapse to one ASCII space; the result is trimmed.
///
/// Letters of every script are kept (Cyrillic, Greek, CJK, …). Never panics.
pub fn normalize(text: &str) -> String {
    if text.is_ascii() {
        normalize_ascii(text)
    } else {
        normalize_unicode(text)
    }
}

/// [`normalize`] for ASCII text, where the Unicode steps are the identity.
fn normalize_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c.to_ascii_lowercase());
        } else {
            pending_space = true;
        }
    }
    out
}

/// [`normalize`] for any text.
fn normalize_unicode(text: &str) -> String {
    // Steps 1 and 2.
    let mut lowered = String::with_capacity(text.len());
    for c in text.nfkc() {
        for l in c.to_lowercase() {
            match l {
                'ß' => lowered.push_str("ss"),
                'ς' => lowered.push('σ'),
                'æ' => lowered.push_str("ae"),
                'œ' => lowered.push_str("oe"),
                'ø' => lowered.push('o'),
                'ł' => lowered.push('l'),
                'đ' => lowered.push('d'),
                'ı' => lowered.push('i'),
                other => lowered.push(other),
            }
        }
    }

    // Steps 3 to 5.
    let mut out = String::with_capacity(lowered.len());
    let mut pending_space = false;
    for c in lowered.nfd().filter(|&c| !is_diacritic(c)).nfc() {
        if is_invisible(c) {
            continue;
        }
        if is_word_char(c) {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        } else {
            pending_space = true;
        }
    }
    out
}

/// Splits normalised text into tokens (words and numbers).
///
/// Meant for the output of [`normalize`], where tokens are separated by single
/// spaces; any other whitespace also separates tokens, so it is safe on any
/// string.
pub fn tokens(normalized: &str) -> impl Iterator<Item = &str> {
    normalized.split_whitespace()
}

/// Combining diacritical marks that accent folding removes.
fn is_diacritic(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}' // Combining Diacritical Marks
        | '\u{1AB0}'..='\u{1AFF}' // Combining Diacritical Marks Extended
        | '\u{1DC0}'..='\u{1DFF}' // Combining Diacritical Marks Supplement
        | '\u{20D0}'..='\u{20FF}' // Combining Diacritical Marks for Symbols
        | '\u{FE20}'..='\u{FE2F}' // Combining Half Marks
    )
}

/// Format characters that are dropped without becoming a word break.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' // soft hyphen
        | '\u{200B}'..='\u{200D}' // zero-width space, non-joiner, joiner
        | '\u{200E}' | '\u{200F}' | '\u{061C}' // left-to-right, right-to-left, Arabic letter marks
        | '\u{202A}'..='\u{202E}' // bidirectional embeddings, overrides and their end
        | '\u{2066}'..='\u{2069}' // bidirectional isolates and their end
        | '\u{2060}' // word joiner
        | '\u{FEFF}' // byte-order mark / zero-width no-break space
        | '\u{FE00}'..='\u{FE0F}' // variation selectors
        | '\u{E0000}'..='\u{E007F}' // tag characters
        | '\u{E0100}'..='\u{E01EF}' // variation selectors supplement
    )
}

/// Letters, digits and (non-diacritic) combining marks belong to words.
/// The modifier letter apostrophe is a letter to Unicode but an apostrophe to
/// people, so it separates words like `'` does.
fn is_word_char(c: char) -> bool {
    if matches!(c, '\u{02BC}' | '\u{02B9}' | '\u{02BB}' | '\u{02BD}') {
        return false;
    }
    c.is_alphanumeric() || is_combining_mark(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<String> {
        tokens(&normalize(text)).map(str::to_owned).collect()
    }

    #[test]
    fn folds_accents_and_case() {
        assert_eq!(
            normalize("¿CUÁNTO cuesta el ENVÍO?"),
            "cuanto cuesta el envio"
        );
        assert_eq!(
            normalize("Qual è l'orario di apertura?"),
            "qual e l orario di apertura"
        );
        assert_eq!(
            normalize("Ça coûte combien ? Überweisung"),
            "ca coute combien uberweisung"
        );
        assert_eq!(normalize("Straße STRASSE"), "strasse strasse");
        assert_eq!(normalize("ñandú PIÑA"), "nandu pina");
        assert_eq!(normalize("Œuvre Ærø Łódź"), "oeuvre aero lodz");
    }

    #[test]
    fn decomposed_and_precomposed_agree() {
        assert_eq!(normalize("cafe\u{0301}"), normalize("café"));
        assert_eq!(normalize("cafe\u{0301}"), "cafe");
    }

    #[test]
    fn compatibility_forms() {
        assert_eq!(normalize("ＨＥＬＬＯ　ｗｏｒｌｄ"), "hello world");
        assert_eq!(normalize("ﬁle ①"), "file 1");
    }

    #[test]
    fn punctuation_and_symbols_become_spaces() {
        assert_eq!(normalize("¡Hola!¿Qué tal?"), "hola que tal");
        assert_eq!(
            normalize("price: $5.99 (incl. VAT) — ok?"),
            "price 5 99 incl vat ok"
        );
        assert_eq!(normalize("a/b\\c_d-e+f=g"), "a b c d e f g");
        assert_eq!(
            normalize("«quote» “double” ‘single’"),
            "quote double single"
        );
    }

    #[test]
    fn apostrophes_split() {
        assert_eq!(toks("qual è l'orario"), ["qual", "e", "l", "orario"]);
        assert_eq!(toks("dell’ordine"), ["dell", "ordine"]);
        assert_eq!(toks("what\u{02BC}s"), ["what", "s"]);
        assert_eq!(toks("don't"), ["don", "t"]);
    }

    #[test]
    fn emoji_become_spaces() {
        assert_eq!(normalize("thanks👍🏽!!"), "thanks");
        assert_eq!(normalize("I ❤️ it 👨‍👩‍👧"), "i it");
        assert_eq!(normalize("🙂"), "");
        // Keycap sequence: the digit stays, the decoration goes.
        assert_eq!(normalize("1\u{FE0F}\u{20E3} option"), "1 option");
    }

    #[test]
    fn digits_are_tokens() {
        assert_eq!(toks("order #12345, 2x"), ["order", "12345", "2x"]);
        assert_eq!(toks("9:00–18:00"), ["9", "00", "18", "00"]);
    }

    #[test]
    fn other_scripts_stay_letters() {
        assert_eq!(normalize("Привет, МИР!"), "привет мир");
        assert_eq!(normalize("ΟΔΟΣ οδός"), "οδοσ οδοσ");
        assert_eq!(normalize("我想退货。谢谢！"), "我想退货 谢谢");
        assert_eq!(normalize("こんにちは、ガイド"), "こんにちは ガイド");
        assert_eq!(normalize("नमस्ते दुनिया"), "नमस्ते दुनिया");
        assert_eq!(toks("hello мир 世界"), ["hello", "мир", "世界"]);
    }

    #[test]
    fn spanish_and_italian_capitals_fold_like_small_letters() {
        assert_eq!(
            normalize("¿QUÉ PASA CON MI PEDIDO?"),
            normalize("que pasa con mi pedido")
        );
        assert_eq!(
            normalize("PERCHÉ È ARRIVATO ROTTO?"),
            "perche e arrivato rotto"
        );
        assert_eq!(normalize("ÀÈÌÒÙ àèìòù ÁÉÍÓÚÜÑ"), "aeiou aeiou aeiouun");
        assert_eq!(normalize("DEVOLUCIÓN"), normalize("devolución"));
    }

    #[test]
    fn right_to_left_scripts_stay_letters() {
        // Arabic comma and question mark are punctuation.
        assert_eq!(normalize("مرحبا، أين طلبي؟"), "مرحبا أين طلبي");
        assert_eq!(normalize("שלום, עולם!"), "שלום עולם");
        // Bidi controls never end up inside a token.
        let n = normalize("\u{202B}hola\u{202C} \u{200F}mundo\u{2067}!\u{2069}");
        assert_eq!(n, "hola mundo");
        // Mixed directions in one message keep their order.
        assert_eq!(
            toks("order 123 طلب ٣ please"),
            ["order", "123", "طلب", "٣", "please"]
        );
    }

    #[test]
    fn mixed_scripts_in_one_word_stay_one_token() {
        assert_eq!(toks("zdravoмир"), ["zdravoмир"]);
        assert_eq!(toks("iPhone版 ok"), ["iphone版", "ok"]);
        assert_eq!(toks("Ｐｅｄｉｄｏ１２"), ["pedido12"]);
    }

    #[test]
    fn more_emoji_sequences_become_spaces() {
        // Flags (regional indicators), tag sequences, skin tones, hearts.
        assert_eq!(normalize("hola🇪🇸amigo"), "hola amigo");
        assert_eq!(
            normalize("go🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}home"),
            "go home"
        );
        assert_eq!(normalize("ok👋🏿bye"), "ok bye");
        assert_eq!(normalize("❤\u{FE0F}\u{200D}🔥"), "");
        assert_eq!(normalize("grazie🙏🏻🙏🏻"), "grazie");
    }

    #[test]
    fn unicode_spaces_separate_words() {
        assert_eq!(
            normalize("a\u{00A0}b\u{2009}c\u{202F}d\u{3000}e\u{2028}f\u{0085}g"),
            "a b c d e f g"
        );
    }

    #[test]
    fn invisible_characters_do_not_split_words() {
        assert_eq!(normalize("ship\u{00AD}ping"), "shipping");
        assert_eq!(normalize("\u{FEFF}hello\u{200B}"), "hello");
        // Bidirectional marks and controls, as right-to-left keyboards and
        // copied text leave them inside and around words.
        assert_eq!(normalize("env\u{200F}ío\u{200E}"), "envio");
        assert_eq!(normalize("\u{202B}reem\u{202C}bolso"), "reembolso");
        assert_eq!(normalize("pe\u{2067}di\u{2069}do \u{061C}x"), "pedido x");
        assert_eq!(normalize("\u{202E}\u{2066}\u{200F}"), "");
        // Letters around them still split at real separators.
        assert_eq!(normalize("a\u{200F} b"), "a b");
    }

    #[test]
    fn whitespace_and_controls() {
        assert_eq!(normalize(""), "");
        assert_eq!(normalize("   \t\n\r  "), "");
        assert_eq!(normalize("?!… ¿¡"), "");
        assert_eq!(normalize("  a \t\n b\u{0}c\u{7}d  "), "a b c d");
        assert_eq!(tokens("").count(), 0);
        assert_eq!(tokens("   ").count(), 0);
    }

    #[test]
    fn output_is_stable() {
        for s in [
            "¿CUÁNTO cuesta?",
            "Straße",
            "ΟΔΟΣ",
            "l'orario",
            "1\u{FE0F}\u{20E3}",
        ] {
            let once = normalize(s);
            assert_eq!(normalize(&once), once, "normalize is idempotent on {s:?}");
        }
    }

    #[test]
    fn large_input() {
        let unit = "¿Dónde está mi pedido? Where is MY order 123! ";
        let big: String = unit.repeat(100 * 1024 / unit.len() + 1);
        assert!(big.len() >= 100 * 1024);
        let n = normalize(&big);
        assert!(n.starts_with("donde esta mi pedido where is my order 123 donde"));
        assert!(!n.ends_with(' '));
        assert_eq!(tokens(&n).count() % 9, 0);

        let one_word = "a".repeat(100 * 1024);
        assert_eq!(normalize(&one_word), one_word);
    }

    #[test]
    fn ascii_fast_path_agrees() {
        // Every ASCII character alone and in context, and some sentences.
        for b in 0_u8..128 {
            let c = char::from(b);
            for s in [c.to_string(), format!("a{c}b"), format!(" {c}{c} x")] {
                assert_eq!(normalize_ascii(&s), normalize_unicode(&s), "{s:?}");
            }
        }
        for s in [
            "What's your ADDRESS?!",
            "  order #123-45 ",
            "a\tb\r\nc",
            "",
            "   ",
        ] {
            assert_eq!(normalize_ascii(s), normalize_unicode(s), "{s:?}");
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        let mut s = String::new();
        for c in [
            '\u{0}',
            '\u{301}',
            '\u{FFFF}',
            '\u{10FFFF}',
            '\u{D7FF}',
            'İ',
            'ǅ',
            '\u{E0001}',
        ] {
            s.push(c);
            let n = normalize(&s);
            assert!(!n.starts_with(' ') && !n.ends_with(' '));
            assert!(!n.contains("  "));
        }
        assert_eq!(normalize("İstanbul"), "istanbul");
    }
}

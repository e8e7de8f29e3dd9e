//! A fast tokenizer for BERT WordPiece models (the static embedder's hot
//! path).
//!
//! The `tokenizers` crate builds a full `Encoding` (offsets, masks, type ids,
//! alignment tables) for every text; for a static model only the token ids
//! matter, and building the rest costs more than the embedding itself. When a
//! model's `tokenizer.json` is exactly the BERT pipeline (a `BertNormalizer`,
//! the `BertPreTokenizer` and a `WordPiece` model), [`WordPiece`] computes
//! the same ids directly: clean the text, space out CJK characters, strip
//! accents, lower-case, split on whitespace and punctuation, and take the
//! greedy longest-match-first sub-words of each word. Any other pipeline, and
//! any text that holds one of the tokenizer's added tokens (`[CLS]`, …),
//! goes through the `tokenizers` crate as before. A test checks both paths
//! give the same ids.

use super::super::matcher::{FeatureMap, key_hash};

use unicode_categories::UnicodeCategories;
use unicode_normalization::UnicodeNormalization;

/// The pieces are looked up by the matcher's 64-bit key of their text
/// ([`key_hash`]: its length, then eight bytes at a time, folded in with
/// MurmurHash3's 64-bit finaliser). Looking up a `u64` instead of a
/// `String` saves the standard library's SipHash and a pointer chase to
/// compare the key, about half of the tokenizer's time. Two of the
/// vocabulary's pieces never share a key (checked at load); a piece outside
/// the vocabulary takes a vocabulary piece's key with a probability of
/// about 2^-64 per piece in the vocabulary (10^-15 a lookup for BERT's
/// 30,522), and would then count as that piece.
fn piece_key(piece: &str) -> u64 {
    key_hash(piece)
}

/// [`piece_key`] of a piece → its id.
type Vocab = FeatureMap<u32>;

/// The BERT pipeline of one `tokenizer.json`, ready to tokenize.
#[derive(Debug)]
pub(crate) struct WordPiece {
    clean_text: bool,
    handle_chinese_chars: bool,
    strip_accents: bool,
    lowercase: bool,
    /// [`piece_key`] of a token → its id (the `WordPiece` model's vocabulary).
    vocab: Vocab,
    /// The id a word without a sub-word split gets.
    unk: Option<u32>,
    /// The prefix of a word's non-initial pieces (`##`).
    prefix: String,
    /// Words longer than this many characters are one unknown token.
    max_chars: usize,
    /// The contents of the added tokens: a text that holds one is left to
    /// the `tokenizers` crate, which splits them out first.
    added: Vec<String>,
}

impl WordPiece {
    /// The fast path for a parsed `tokenizer.json`, or `None` when its
    /// pipeline is not exactly BERT's (then the `tokenizers` crate is used).
    pub(crate) fn from_json(json: &serde_json::Value) -> Option<WordPiece> {
        let normalizer = json.get("normalizer")?;
        if normalizer.get("type")?.as_str()? != "BertNormalizer" {
            return None;
        }
        let flag = |name: &str, default: bool| match normalizer.get(name) {
            None | Some(serde_json::Value::Null) => Some(default),
            Some(v) => v.as_bool(),
        };
        let lowercase = flag("lowercase", true)?;
        let clean_text = flag("clean_text", true)?;
        let handle_chinese_chars = flag("handle_chinese_chars", true)?;
        let strip_accents = flag("strip_accents", lowercase)?;
        if json.get("pre_tokenizer")?.get("type")?.as_str()? != "BertPreTokenizer" {
            return None;
        }
        let model = json.get("model")?;
        if model.get("type")?.as_str()? != "WordPiece" {
            return None;
        }
        let pieces = model.get("vocab")?.as_object()?;
        let mut vocab = Vocab::default();
        for (piece, id) in pieces {
            let id = u32::try_from(id.as_u64()?).ok()?;
            if vocab.insert(piece_key(piece), id).is_some() {
                // Two pieces with one key (never seen): the slow path.
                return None;
            }
        }
        let unk_token = model.get("unk_token")?.as_str()?;
        let prefix = model
            .get("continuing_subword_prefix")
            .and_then(|p| p.as_str())
            .unwrap_or("##")
            .to_string();
        let max_chars = model
            .get("max_input_chars_per_word")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(100);
        let added = match json.get("added_tokens") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(tokens) => tokens
                .as_array()?
                .iter()
                .map(|t| Some(t.get("content")?.as_str()?.to_string()))
                .collect::<Option<Vec<String>>>()?,
        };
        Some(WordPiece {
            clean_text,
            handle_chinese_chars,
            strip_accents,
            lowercase,
            unk: vocab.get(&piece_key(unk_token)).copied(),
            vocab,
            prefix,
            max_chars: usize::try_from(max_chars).unwrap_or(usize::MAX),
            added,
        })
    }

    /// Appends the ids of `text` to `ids` (as `tokenizers` would encode it
    /// without special tokens). `false` when the text holds an added token:
    /// the caller then uses the `tokenizers` crate, and `ids` is unchanged.
    pub(crate) fn ids(&self, text: &str, ids: &mut Vec<u32>) -> bool {
        if self
            .added
            .iter()
            .any(|token| !token.is_empty() && text.contains(token.as_str()))
        {
            return false;
        }
        let normalized = self.normalize(text);
        let mut piece = String::new();
        for word in normalized.split(char::is_whitespace) {
            let mut start = 0;
            for (at, c) in word.char_indices() {
                if is_bert_punctuation(c) {
                    self.word(&word[start..at], ids, &mut piece);
                    self.word(&word[at..at + c.len_utf8()], ids, &mut piece);
                    start = at + c.len_utf8();
                }
            }
            self.word(&word[start..], ids, &mut piece);
        }
        true
    }

    /// BERT's normalizer: the same steps in the same order as the
    /// `tokenizers` crate's `BertNormalizer`.
    fn normalize(&self, text: &str) -> String {
        if text.is_ascii() {
            // The common case, without Unicode tables: no accents to strip,
            // no CJK, ASCII case mapping.
            let mut out = String::with_capacity(text.len());
            for b in text.bytes() {
                let c = char::from(b);
                let c = if self.clean_text {
                    if b == 0 || is_control(c) {
                        continue;
                    }
                    if is_whitespace(c) { ' ' } else { c }
                } else {
                    c
                };
                out.push(if self.lowercase {
                    c.to_ascii_lowercase()
                } else {
                    c
                });
            }
            return out;
        }
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            let c = if self.clean_text {
                if c == '\0' || c == '\u{fffd}' || is_control(c) {
                    continue;
                }
                if is_whitespace(c) { ' ' } else { c }
            } else {
                c
            };
            if self.handle_chinese_chars && is_chinese_char(c) {
                out.push(' ');
                out.push(c);
                out.push(' ');
            } else {
                out.push(c);
            }
        }
        if self.strip_accents {
            out = out.nfd().filter(|c| !c.is_mark_nonspacing()).collect();
        }
        if self.lowercase {
            out = out.chars().flat_map(char::to_lowercase).collect();
        }
        out
    }

    /// The WordPiece ids of one word (greedy longest match first; a word
    /// with no split, or too long, is the unknown token).
    fn word(&self, word: &str, ids: &mut Vec<u32>, piece: &mut String) {
        if word.is_empty() {
            return;
        }
        if let Some(&id) = self.vocab.get(&piece_key(word)) {
            ids.push(id);
            return;
        }
        let unknown = |ids: &mut Vec<u32>| ids.extend(self.unk);
        if word.chars().count() > self.max_chars {
            unknown(ids);
            return;
        }
        let first = ids.len();
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            let mut found = None;
            while start < end {
                piece.clear();
                if start > 0 {
                    piece.push_str(&self.prefix);
                }
                piece.push_str(&word[start..end]);
                if let Some(&id) = self.vocab.get(&piece_key(piece)) {
                    found = Some(id);
                    break;
                }
                end -= word[start..end]
                    .chars()
                    .next_back()
                    .map_or(1, char::len_utf8);
            }
            match found {
                Some(id) => ids.push(id),
                None => {
                    ids.truncate(first);
                    unknown(ids);
                    return;
                }
            }
            start = end;
        }
    }
}

/// Whitespace as BERT's normalizer sees it.
fn is_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

/// Control characters as BERT's normalizer sees them (tab and newlines are
/// whitespace instead).
fn is_control(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r');
    }
    c.is_other()
}

/// The CJK Unified Ideographs blocks, which BERT splits into one token each.
fn is_chinese_char(c: char) -> bool {
    matches!(
        u32::from(c),
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B920..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

/// Punctuation as BERT's pre-tokenizer sees it: each is a word of its own.
fn is_bert_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || (!c.is_ascii() && c.is_punctuation())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> WordPiece {
        let json = serde_json::json!({
            "added_tokens": [{"id": 0, "content": "[UNK]"}, {"id": 1, "content": "[CLS]"}],
            "normalizer": {"type": "BertNormalizer", "clean_text": true,
                "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "model": {"type": "WordPiece", "unk_token": "[UNK]",
                "continuing_subword_prefix": "##", "max_input_chars_per_word": 10,
                "vocab": {"[UNK]": 0, "[CLS]": 1, "where": 2, "is": 3, "my": 4,
                    "card": 5, "##s": 6, "?": 7, "cafe": 8, "un": 9, "##known": 10,
                    "中": 11, "!": 12}}
        });
        WordPiece::from_json(&json).expect("a BERT pipeline")
    }

    fn ids(wp: &WordPiece, text: &str) -> Option<Vec<u32>> {
        let mut ids = Vec::new();
        wp.ids(text, &mut ids).then_some(ids)
    }

    #[test]
    fn words_sub_words_and_punctuation() {
        let wp = tiny();
        assert_eq!(ids(&wp, "Where is my CARDS?"), Some(vec![2, 3, 4, 5, 6, 7]));
        assert_eq!(ids(&wp, "unknown!!"), Some(vec![9, 10, 12, 12]));
    }

    #[test]
    fn accents_control_chars_and_cjk() {
        let wp = tiny();
        assert_eq!(ids(&wp, "Café\u{0}\u{200b}"), Some(vec![8]));
        assert_eq!(ids(&wp, "my中card"), Some(vec![4, 11, 5]));
        assert_eq!(ids(&wp, " \t\n "), Some(vec![]));
    }

    #[test]
    fn unknown_and_too_long_words_are_one_unknown_token() {
        let wp = tiny();
        // "cardz": "card" then no "##z": the whole word is unknown.
        assert_eq!(ids(&wp, "cardz is"), Some(vec![0, 3]));
        assert_eq!(ids(&wp, "cardssssssssss"), Some(vec![0]));
    }

    #[test]
    fn added_tokens_go_to_the_slow_path() {
        assert_eq!(ids(&tiny(), "[CLS] where"), None);
    }

    #[test]
    fn other_pipelines_are_not_taken() {
        let json = serde_json::json!({
            "normalizer": {"type": "NFKC"},
            "pre_tokenizer": {"type": "Metaspace"},
            "model": {"type": "Unigram", "vocab": []}
        });
        assert!(WordPiece::from_json(&json).is_none());
        assert!(WordPiece::from_json(&serde_json::json!({})).is_none());
    }

    /// Texts that stress the normalizer and the splitter.
    const HOSTILE: &[&str] = &[
        "",
        "   ",
        "Where is my ORDER?!",
        "where's my parcel... shipping, please",
        "Ça coûte combien? ¿Dónde está mi pedido? Perché è così?",
        "İstanbul ǅemal ß ﬁ Ω",
        "emoji 📦🚚👍🏽 👨‍👩‍👧 flags 🇪🇸",
        "中文字符 and 日本語 and 한국어",
        "zero\u{200b}width\u{feff} soft\u{ad}hyphen",
        "tab\tnew\nline\r\ncr \u{0}nul \u{fffd}replacement \u{1}ctrl",
        "combining e\u{301} a\u{308}\u{323} ̀leading",
        "RTL مرحبا שלום mixed 123",
        "[PAD] [UNK] [CLS] [SEP] [MASK] [unk] [ CLS ]",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "shopping shipped refunds ordering cards",
        "«quotes» “curly” ‘single’ — dash – en … ellipsis",
        "math ∑ ≤ ≥ ± currency € £ ¥ $ 100%",
        "\u{2028}line sep\u{2029}para sep\u{a0}nbsp\u{3000}ideographic",
    ];

    /// Both paths of a tokenizer directory agree on `texts`.
    fn agree(dir: &std::path::Path, texts: &[String]) {
        let (tokenizer, _) = super::super::files::tokenizer(dir).expect("tokenizer");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("tokenizer.json")).unwrap()).unwrap();
        let fast = WordPiece::from_json(&json).expect("a BERT pipeline");
        let mut checked = 0;
        for text in texts {
            let slow = tokenizer.encode_fast(text.as_str(), false).unwrap();
            if let Some(ids) = ids(&fast, text) {
                assert_eq!(ids, slow.get_ids(), "{text:?}");
                checked += 1;
            }
        }
        // Only texts that hold an added token ([CLS], …) take the slow path.
        let expected = texts
            .iter()
            .filter(|t| {
                !fast
                    .added
                    .iter()
                    .any(|a| !a.is_empty() && t.contains(a.as_str()))
            })
            .count();
        assert_eq!(checked, expected, "texts that took the fast path");
        assert!(checked > 0);
    }

    fn hostile() -> Vec<String> {
        let mut texts: Vec<String> = HOSTILE.iter().map(|t| t.to_string()).collect();
        // Every pair, so that the pieces meet at every boundary.
        for a in HOSTILE {
            for b in HOSTILE.iter().take(8) {
                texts.push(format!("{a}{b}"));
            }
        }
        texts
    }

    #[test]
    fn the_fast_path_agrees_with_the_tokenizers_crate() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/semantic/tiny-static");
        agree(&dir, &hostile());
    }

    /// The real all-MiniLM-L6-v2 tokenizer, when `FRONTDESK_TEST_MODEL`
    /// names it, on the hostile texts and on every text of the shared
    /// intent data sets found beside the repository.
    #[test]
    fn the_fast_path_agrees_on_a_real_vocabulary() {
        let Some(dir) = std::env::var_os("FRONTDESK_TEST_MODEL") else {
            eprintln!("skipped: FRONTDESK_TEST_MODEL is not set");
            return;
        };
        let mut texts = hostile();
        let shared =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/intents-bench");
        for set in ["banking77", "hwu64", "es-fbtod", "it-xsid"] {
            if let Ok(rows) = crate::eval::read_rows(&shared.join(set).join("test.csv")) {
                texts.extend(rows.into_iter().map(|row| row.text));
            }
        }
        agree(std::path::Path::new(&dir), &texts);
    }
}

//! SentencePiece's `precompiled_charsmap`, built from a per-code-point
//! normalisation map, for the `Precompiled` normaliser of a
//! `tokenizer.json` (the `tokenizers` crate reads it with
//! `spm_precompiled`).
//!
//! The format: a `u32` byte length of the trie, the trie as `u32` units (a
//! darts-clone double array over the UTF-8 bytes of the keys), then the
//! replacement strings, each ended by a NUL. A key's value is the offset of
//! its replacement. A unit holds a label (bits 0–7, bit 31 set on a value
//! unit), "has a value" (bit 8), and the XOR offset from the unit's own
//! position to its children's base (bits 10–30; bit 9 shifts it by 8). The
//! child labelled `c` of a node whose base is `b` sits at `b ^ c`; its value
//! unit at `b`.

use std::collections::{BTreeMap, HashMap};

/// A node of the byte trie before it is laid out.
#[derive(Default)]
struct Node {
    children: BTreeMap<u8, Node>,
    value: Option<u32>,
}

/// The largest XOR offset a unit holds without the shift.
const MAX_OFFSET: usize = (1 << 21) - 1;

/// The charsmap that maps each `(from, to)` of `map` (code points, each
/// once) and leaves every other code point as it is. `None` if the map is
/// too large for the format (millions of entries).
pub(crate) fn build(map: &[(char, String)]) -> Option<Vec<u8>> {
    // The replacement strings, each once, NUL-terminated.
    let mut normalized: Vec<u8> = Vec::new();
    let mut offsets: HashMap<&str, u32> = HashMap::new();
    let mut root = Node::default();
    for (from, to) in map {
        let offset = match offsets.get(to.as_str()) {
            Some(&o) => o,
            None => {
                let o = u32::try_from(normalized.len())
                    .ok()
                    .filter(|&o| o < 1 << 31)?;
                normalized.extend_from_slice(to.as_bytes());
                normalized.push(0);
                offsets.insert(to, o);
                o
            }
        };
        let mut utf8 = [0_u8; 4];
        let mut node = &mut root;
        for &b in from.encode_utf8(&mut utf8).as_bytes() {
            node = node.children.entry(b).or_default();
        }
        node.value = Some(offset);
    }

    let mut units: Vec<u32> = vec![0];
    let mut used: Vec<bool> = vec![true];
    let mut bases: Vec<bool> = vec![false];
    // Breadth first: (node, its position).
    let mut queue: std::collections::VecDeque<(&Node, usize)> = [(&root, 0)].into();
    let mut search_from = 1;
    while let Some((node, at)) = queue.pop_front() {
        if node.children.is_empty() && node.value.is_none() {
            continue;
        }
        // The slots this node needs relative to its base: 0 for its value,
        // each child's label.
        let slots: Vec<usize> = node
            .value
            .map(|_| 0)
            .into_iter()
            .chain(node.children.keys().map(|&c| usize::from(c)))
            .collect();
        let mut base = search_from;
        loop {
            let free = |p: usize| p >= used.len() || !used[p];
            if (base >= bases.len() || !bases[base]) && slots.iter().all(|&s| free(base ^ s)) {
                break;
            }
            base += 1;
        }
        while search_from < used.len() && used[search_from] {
            search_from += 1;
        }
        let offset = at ^ base;
        if offset > MAX_OFFSET {
            return None;
        }
        // Grow to the whole 256-unit block of the base, so that a lookup
        // with any byte stays inside the array.
        let end = (base | 0xff) + 1;
        if units.len() < end {
            units.resize(end, 0);
            used.resize(end, false);
            bases.resize(end, false);
        }
        bases[base] = true;
        units[at] |= (offset as u32) << 10;
        if let Some(v) = node.value {
            units[at] |= 1 << 8;
            units[base] = (1 << 31) | v;
            used[base] = true;
        }
        for (&c, child) in &node.children {
            let p = base ^ usize::from(c);
            units[p] = u32::from(c);
            used[p] = true;
            queue.push_back((child, p));
        }
    }

    // At least the root's block (the empty map: every lookup misses).
    let len = units.len().max(256).next_multiple_of(256);
    units.resize(len, 0);
    let trie_bytes = u32::try_from(units.len() * 4).ok()?;
    let mut out = Vec::with_capacity(4 + units.len() * 4 + normalized.len());
    out.extend_from_slice(&trie_bytes.to_le_bytes());
    for u in &units {
        out.extend_from_slice(&u.to_le_bytes());
    }
    out.extend_from_slice(&normalized);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::normalizers::Precompiled;

    fn map(pairs: &[(char, &str)]) -> Vec<(char, String)> {
        pairs.iter().map(|(c, s)| (*c, s.to_string())).collect()
    }

    #[test]
    fn every_key_maps_to_its_replacement_and_nothing_else_changes() {
        let pairs = [
            ('\u{1}', ""),
            ('\t', " "),
            ('\u{a0}', " "),
            ('Ａ', "A"),
            ('ﬁ', "fi"),
            ('№', "No"),
            ('\u{200b}', " "),
            ('\u{1d400}', "A"),
            ('㍿', "株式会社"),
        ];
        // Many keys sharing lead bytes, as NFKC's map has.
        let extra: Vec<(char, String)> = (0xff01..0xff5e)
            .filter_map(char::from_u32)
            .map(|c| (c, char::from_u32(c as u32 - 0xfee0).unwrap().to_string()))
            .collect();
        let mut all = map(&pairs);
        all.extend(extra);
        all.sort();
        let bytes = build(&all).unwrap();
        let p = Precompiled::from(&bytes).unwrap();
        for (from, to) in &all {
            assert_eq!(
                p.transform(&from.to_string()),
                Some(to.as_str()),
                "{from:?}"
            );
        }
        for other in ['a', 'é', 'ａ', '\u{10ffff}', '\u{ff5e}', '😊'] {
            if all.iter().all(|(k, _)| *k != other) {
                assert_eq!(p.transform(&other.to_string()), None, "{other:?}");
            }
        }
        assert_eq!(p.normalize_string("Ａb\tﬁ\u{1}x😊"), "Ab fix😊".to_string());
    }

    #[test]
    fn an_empty_map_changes_nothing() {
        let p = Precompiled::from(&build(&[]).unwrap()).unwrap();
        assert_eq!(p.normalize_string("héllo wörld"), "héllo wörld");
    }

    #[test]
    fn every_byte_after_any_prefix_stays_inside_the_array() {
        // Hostile text: lookups with every byte value must not run off the
        // trie (spm_precompiled indexes without bounds checks).
        let all = map(&[('Ａ', "A"), ('\u{1}', ""), ('\u{10fffd}', "x")]);
        let p = Precompiled::from(&build(&all).unwrap()).unwrap();
        for c in (0..0x11_0000).step_by(97).filter_map(char::from_u32) {
            let _ = p.transform(&c.to_string());
        }
        let _ = p.normalize_string("\u{10fffd}\u{10fffe}\u{fffd}\u{ff21}\u{ff22}");
    }
}

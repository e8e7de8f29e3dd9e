//! Helpers shared by the integration tests (each test crate that needs them
//! declares `mod common;`).

use std::path::Path;

/// Whether any file under `dir` (recursively) holds `needle` anywhere in its
/// bytes: what a raw look at the store's files would find.
pub fn dir_contains(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let path = entry.unwrap().path();
        if path.is_dir() {
            dir_contains(&path, needle)
        } else {
            std::fs::read(&path)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
        }
    })
}

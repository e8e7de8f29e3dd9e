//! Encryption keys of the store and the sealing of records with them.
//!
//! sled is log-structured: a deleted or overwritten value stays in its files
//! until sled happens to rewrite that part of the log. So customer text is
//! never written to sled in the clear. Each customer's records are sealed
//! (ChaCha20-Poly1305) with a random key of their own, and each outbox entry
//! with a random key of its own. Forgetting a customer destroys their key;
//! delivering a message destroys its key; what is left in old log segments is
//! then unreadable.
//!
//! The keys cannot live in sled (a destroyed key would stay in its log just
//! like the text), so they live in small files beside it, [`KeyFile`], that
//! are rewritten whole (to a temporary file, synced, renamed over the old one)
//! whenever a key is added or destroyed. Key bytes are never logged.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};

use super::StoreError;

/// Length of a key.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
/// The start of a customer-sealed value: magic, then the key's record id.
pub const CUSTOMER_MAGIC: &[u8; 4] = b"\0fc1";
/// The start of an outbox-sealed value: magic, then the nonce.
pub const OUTBOX_MAGIC: &[u8; 4] = b"\0fo1";
/// Length of a record id (hex of 16 random bytes).
pub const RID_LEN: usize = 32;

/// A secret key. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; KEY_LEN]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

impl SecretKey {
    /// A fresh random key.
    pub fn random() -> Result<SecretKey, StoreError> {
        let mut bytes = [0u8; KEY_LEN];
        fill_random(&mut bytes)?;
        Ok(SecretKey(bytes))
    }

    fn hex(&self) -> String {
        hex(&self.0)
    }

    fn from_hex(s: &str) -> Option<SecretKey> {
        let bytes = unhex(s)?;
        Some(SecretKey(bytes.try_into().ok()?))
    }
}

/// Random bytes from the operating system.
pub fn fill_random(buf: &mut [u8]) -> Result<(), StoreError> {
    getrandom::getrandom(buf).map_err(|e| StoreError::Database {
        path: "<keys>".into(),
        message: format!("no random numbers from the operating system: {e}"),
    })
}

/// A fresh random record id (32 hex digits).
pub fn random_rid() -> Result<String, StoreError> {
    let mut bytes = [0u8; RID_LEN / 2];
    fill_random(&mut bytes)?;
    Ok(hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Encrypt `plain` with `key`; the record's sled key is authenticated with it,
/// so a sealed value cannot be moved to another record. Returns nonce ‖ ciphertext.
pub fn encrypt(key: &SecretKey, record: &[u8], plain: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key.0));
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: record,
            },
        )
        .map_err(|_| StoreError::Corrupt {
            key: String::from_utf8_lossy(record).into_owned(),
            message: "cannot encrypt the record".into(),
        })?;
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Decrypt nonce ‖ ciphertext made by [`encrypt`] for the same record.
pub fn decrypt(key: &SecretKey, record: &[u8], sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
    let corrupt = |message: &str| StoreError::Corrupt {
        key: String::from_utf8_lossy(record).into_owned(),
        message: message.into(),
    };
    if sealed.len() < NONCE_LEN {
        return Err(corrupt("sealed record too short"));
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key.0));
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: body,
                aad: record,
            },
        )
        .map_err(|_| corrupt("the record does not decrypt with its key (damaged or moved)"))
}

/// How a stored value is written.
#[derive(Debug, PartialEq, Eq)]
pub enum Envelope<'a> {
    /// Plain JSON (records of forgotten customers, stores from before sealing).
    Plain(&'a [u8]),
    /// Sealed with the key of the customer whose record id is given.
    Customer {
        /// The record id of the key.
        rid: &'a str,
        /// Nonce ‖ ciphertext.
        sealed: &'a [u8],
    },
    /// Sealed with the outbox entry's own key.
    Outbox(&'a [u8]),
}

impl<'a> Envelope<'a> {
    /// Tell how `value` is written.
    pub fn of(value: &'a [u8]) -> Envelope<'a> {
        if let Some(rest) = value.strip_prefix(CUSTOMER_MAGIC)
            && rest.len() >= RID_LEN
            && let Ok(rid) = std::str::from_utf8(&rest[..RID_LEN])
        {
            return Envelope::Customer {
                rid,
                sealed: &rest[RID_LEN..],
            };
        }
        if let Some(rest) = value.strip_prefix(OUTBOX_MAGIC) {
            return Envelope::Outbox(rest);
        }
        Envelope::Plain(value)
    }
}

/// Seal `plain` for the customer with record id `rid`.
pub fn seal_customer(
    rid: &str,
    key: &SecretKey,
    record: &[u8],
    plain: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(4 + RID_LEN + NONCE_LEN + plain.len() + 16);
    out.extend_from_slice(CUSTOMER_MAGIC);
    out.extend_from_slice(rid.as_bytes());
    out.extend_from_slice(&encrypt(key, record, plain)?);
    Ok(out)
}

/// Seal `plain` with an outbox entry's key.
pub fn seal_outbox(key: &SecretKey, record: &[u8], plain: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(4 + NONCE_LEN + plain.len() + 16);
    out.extend_from_slice(OUTBOX_MAGIC);
    out.extend_from_slice(&encrypt(key, record, plain)?);
    Ok(out)
}

/// One key in a [`KeyFile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    /// Whose key (a customer's `channel:id`); empty for outbox keys.
    pub owner: String,
    /// The key.
    pub key: SecretKey,
}

#[derive(Serialize, Deserialize)]
struct FileEntry {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    owner: String,
    key: String,
}

#[derive(Serialize, Deserialize)]
struct FileBody {
    version: u32,
    keys: BTreeMap<String, FileEntry>,
}

/// Keys by name, kept in a file rewritten whole on every change (or only in
/// memory, for temporary stores).
#[derive(Debug)]
pub struct KeyFile {
    path: Option<PathBuf>,
    entries: BTreeMap<String, KeyEntry>,
}

impl KeyFile {
    /// Keys that live only in memory.
    pub fn in_memory() -> KeyFile {
        KeyFile {
            path: None,
            entries: BTreeMap::new(),
        }
    }

    /// Load the file at `path` (absent: no keys yet).
    pub fn load(path: &Path) -> Result<KeyFile, StoreError> {
        let error = |message: String| StoreError::Corrupt {
            key: path.display().to_string(),
            message,
        };
        let mut entries = BTreeMap::new();
        match std::fs::read(path) {
            Ok(bytes) => {
                let body: FileBody = serde_json::from_slice(&bytes)
                    .map_err(|e| error(format!("unreadable key file: {e}")))?;
                if body.version != 1 {
                    return Err(error(format!(
                        "key file version {} is newer than this frontdesk",
                        body.version
                    )));
                }
                for (name, e) in body.keys {
                    let key = SecretKey::from_hex(&e.key)
                        .ok_or_else(|| error(format!("key {name} is not 64 hex digits")))?;
                    entries.insert(
                        name,
                        KeyEntry {
                            owner: e.owner,
                            key,
                        },
                    );
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(error(format!("cannot read the key file: {e}"))),
        }
        Ok(KeyFile {
            path: Some(path.to_path_buf()),
            entries,
        })
    }

    /// Forget unsaved changes: read the file again (for a save that failed).
    pub fn reload(&mut self) -> Result<(), StoreError> {
        if let Some(path) = self.path.clone() {
            *self = KeyFile::load(&path)?;
        }
        Ok(())
    }

    /// The key named `name`.
    pub fn get(&self, name: &str) -> Option<&KeyEntry> {
        self.entries.get(name)
    }

    /// Every key, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &KeyEntry)> {
        self.entries.iter()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Add (or replace) a key; [`KeyFile::save`] makes it durable.
    pub fn insert(&mut self, name: String, entry: KeyEntry) {
        self.entries.insert(name, entry);
    }

    /// Drop a key; [`KeyFile::save`] destroys it on disk.
    pub fn remove(&mut self, name: &str) -> Option<KeyEntry> {
        self.entries.remove(name)
    }

    /// Write the keys durably: a temporary file, synced, renamed over the old
    /// one, the directory synced. The old file's bytes are no longer reachable
    /// through the file system's names.
    pub fn save(&self) -> Result<(), StoreError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let error = |message: String| StoreError::Database {
            path: path.display().to_string(),
            message,
        };
        let body = FileBody {
            version: 1,
            keys: self
                .entries
                .iter()
                .map(|(name, e)| {
                    (
                        name.clone(),
                        FileEntry {
                            owner: e.owner.clone(),
                            key: e.key.hex(),
                        },
                    )
                })
                .collect(),
        };
        let bytes = serde_json::to_vec(&body).map_err(|e| error(e.to_string()))?;
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)?;
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| error(format!("cannot write the key file: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_record() {
        let key = SecretKey::random().unwrap();
        let other = SecretKey::random().unwrap();
        let rid = random_rid().unwrap();
        let sealed = seal_customer(&rid, &key, b"conversation/1", b"{\"a\":1}").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"{\"a\":1}"));
        let Envelope::Customer { rid: got, sealed } = Envelope::of(&sealed) else {
            panic!("not a customer envelope");
        };
        assert_eq!(got, rid);
        assert_eq!(
            decrypt(&key, b"conversation/1", sealed).unwrap(),
            b"{\"a\":1}"
        );
        assert!(decrypt(&other, b"conversation/1", sealed).is_err());
        assert!(decrypt(&key, b"conversation/2", sealed).is_err());
        assert_eq!(Envelope::of(b"{}"), Envelope::Plain(b"{}"));
    }

    #[test]
    fn key_file_round_trips_and_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        let mut keys = KeyFile::load(&path).unwrap();
        assert!(keys.is_empty());
        let a = SecretKey::random().unwrap();
        keys.insert(
            "a".into(),
            KeyEntry {
                owner: "console:a".into(),
                key: a.clone(),
            },
        );
        keys.insert(
            "b".into(),
            KeyEntry {
                owner: String::new(),
                key: SecretKey::random().unwrap(),
            },
        );
        keys.save().unwrap();
        let loaded = KeyFile::load(&path).unwrap();
        assert_eq!(loaded.get("a").unwrap().key, a);
        assert_eq!(loaded.get("a").unwrap().owner, "console:a");
        let mut loaded = loaded;
        loaded.remove("a");
        loaded.save().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(&a.hex()));
        assert!(!String::from_utf8_lossy(&bytes).contains("console:a"));
        assert!(format!("{a:?}").find(&a.hex()).is_none());
    }

    #[test]
    fn damaged_key_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, b"{nope").unwrap();
        assert!(matches!(
            KeyFile::load(&path),
            Err(StoreError::Corrupt { .. })
        ));
        std::fs::write(&path, br#"{"version":1,"keys":{"a":{"key":"zz"}}}"#).unwrap();
        assert!(KeyFile::load(&path).is_err());
    }
}

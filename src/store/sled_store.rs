//! The sled implementation of [`Store`]: one tree, typed key prefixes, JSON
//! values, every [`Change`] one atomic batch followed by a flush.
//!
//! Values that hold customer text are sealed (see [`super::keys`]): customer,
//! conversation, ticket and rating records with their customer's key, under
//! record keys that never contain the customer's id (`customer/<record id>`);
//! outbox and failed entries with a key of their own, destroyed once the entry
//! is delivered. The keys live in `customer-keys.json` and `outbox-keys.json`
//! beside sled's files. Records of forgotten customers are plain JSON. A store
//! written before sealing is sealed when it is opened.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::keys::{self, Envelope, KeyEntry, KeyFile, SecretKey};
use super::{Change, Counters, CustomerRecords, Store, StoreError};
use crate::model::{
    Action, Conversation, Customer, CustomerKey, Outgoing, Rating, Ticket, TicketStatus,
};

const CUSTOMER: &str = "customer/";
const CONVERSATION: &str = "conversation/";
const TICKET: &str = "ticket/";
const RATING: &str = "rating/";
const OUTBOX: &str = "outbox/";
const HANDLED: &str = "handled/";
const META: &str = "meta/";
const FAILED: &str = "failed/";
const COUNTERS: &str = "counters";
/// The index of unresolved tickets: `open/<number>` → nothing.
const OPEN: &str = "open/";
/// Set once the open-ticket index was built (stores from before it have none).
const OPEN_INDEX_BUILT: &str = "meta/store/open-index-v1";
/// The prefixes of records sealed with their customer's key.
const OWNED: [&str; 4] = [CUSTOMER, CONVERSATION, TICKET, RATING];
/// The file of customer keys, beside sled's files.
pub const CUSTOMER_KEYS_FILE: &str = "customer-keys.json";
/// The file of outbox keys, beside sled's files.
pub const OUTBOX_KEYS_FILE: &str = "outbox-keys.json";

/// The keys, with the index from customer to record id.
struct Keys {
    /// Record id → the customer's key.
    customers: KeyFile,
    /// `channel:id` → record id.
    by_owner: HashMap<String, String>,
    /// Outbox id → the entry's key.
    outbox: KeyFile,
}

impl Keys {
    fn new(customers: KeyFile, outbox: KeyFile) -> Keys {
        let by_owner = customers
            .iter()
            .map(|(rid, e)| (e.owner.clone(), rid.clone()))
            .collect();
        Keys {
            customers,
            by_owner,
            outbox,
        }
    }

    /// Save keys added for a commit before its records are written; should
    /// that fail, the keys not on disk are dropped from memory too, so that
    /// no record is ever sealed with a key that was not saved.
    fn save_new(&mut self, customers: bool, outbox: bool) -> Result<(), StoreError> {
        let saved = (if customers {
            self.customers.save()
        } else {
            Ok(())
        })
        .and_then(|()| if outbox { self.outbox.save() } else { Ok(()) });
        if let Err(e) = saved {
            self.customers.reload()?;
            self.outbox.reload()?;
            self.by_owner = self
                .customers
                .iter()
                .map(|(rid, e)| (e.owner.clone(), rid.clone()))
                .collect();
            return Err(e);
        }
        Ok(())
    }

    fn rid(&self, owner: &CustomerKey) -> Option<&String> {
        self.by_owner.get(&owner.to_string())
    }

    /// The record id of `owner`, with a new key if they have none yet.
    fn ensure(&mut self, owner: &CustomerKey) -> Result<(String, bool), StoreError> {
        if let Some(rid) = self.rid(owner) {
            return Ok((rid.clone(), false));
        }
        let rid = self.add(owner)?;
        Ok((rid, true))
    }

    fn add(&mut self, owner: &CustomerKey) -> Result<String, StoreError> {
        let rid = keys::random_rid()?;
        self.customers.insert(
            rid.clone(),
            KeyEntry {
                owner: owner.to_string(),
                key: SecretKey::random()?,
            },
        );
        self.by_owner.insert(owner.to_string(), rid.clone());
        Ok(rid)
    }

    fn destroy(&mut self, rid: &str) {
        if let Some(e) = self.customers.remove(rid)
            && self.by_owner.get(&e.owner).is_some_and(|r| r == rid)
        {
            self.by_owner.remove(&e.owner);
        }
    }

    fn seal_owned(
        &self,
        owner: &CustomerKey,
        record: &str,
        plain: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        if owner.is_forgotten() {
            return Ok(plain.to_vec());
        }
        let rid = self.rid(owner).ok_or_else(|| StoreError::Corrupt {
            key: record.to_string(),
            message: "no key for the record's customer".into(),
        })?;
        let entry = self
            .customers
            .get(rid)
            .expect("by_owner points at existing keys");
        keys::seal_customer(rid, &entry.key, record.as_bytes(), plain)
    }

    /// The plain bytes of a stored value; `None`: sealed with a destroyed key.
    fn open(&self, record: &str, value: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match Envelope::of(value) {
            Envelope::Plain(plain) => Ok(Some(plain.to_vec())),
            Envelope::Customer { rid, sealed } => match self.customers.get(rid) {
                Some(e) => keys::decrypt(&e.key, record.as_bytes(), sealed).map(Some),
                None => Ok(None),
            },
            Envelope::Outbox(sealed) => {
                let id = outbox_id(record)?;
                match self.outbox.get(&id.to_string()) {
                    Some(e) => keys::decrypt(&e.key, record.as_bytes(), sealed).map(Some),
                    None => Ok(None),
                }
            }
        }
    }

    fn seal_outbox(&self, id: u64, record: &str, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let entry = self
            .outbox
            .get(&id.to_string())
            .ok_or_else(|| StoreError::Corrupt {
                key: record.to_string(),
                message: "no key for the outbox entry".into(),
            })?;
        keys::seal_outbox(&entry.key, record.as_bytes(), plain)
    }

    fn add_outbox(&mut self, id: u64) -> Result<(), StoreError> {
        self.outbox.insert(
            id.to_string(),
            KeyEntry {
                owner: String::new(),
                key: SecretKey::random()?,
            },
        );
        Ok(())
    }
}

/// The number at the end of an outbox or failed record key.
fn outbox_id(record: &str) -> Result<u64, StoreError> {
    record
        .rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| StoreError::Corrupt {
            key: record.to_string(),
            message: "outbox key without a number".into(),
        })
}

/// The customer a record belongs to, read from its plain JSON.
#[derive(serde::Deserialize)]
struct OwnedBy {
    #[serde(alias = "key")]
    customer: CustomerKey,
}

/// The embedded store, in a directory of its own.
pub struct SledStore {
    db: sled::Db,
    path: String,
    keys: Mutex<Keys>,
}

/// How long [`SledStore::open`] waits for a locked directory to be freed.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// How often it tries again meanwhile.
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

impl SledStore {
    /// Open (or create) the store in `dir`. A directory locked by another
    /// store is waited for up to two seconds (a store this process dropped
    /// may still hold it that long), then refused as [`StoreError::Locked`].
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        let path = dir.display().to_string();
        if let Err(e) = std::fs::create_dir_all(dir) {
            return Err(StoreError::Database {
                path,
                message: format!("cannot create the directory: {e}"),
            });
        }
        let try_open = || {
            sled::Config::new().path(dir).open().map_err(|e| {
                let message = e.to_string();
                if message.contains("lock") || message.contains("WouldBlock") {
                    StoreError::Locked { path: path.clone() }
                } else {
                    StoreError::Database {
                        path: path.clone(),
                        message,
                    }
                }
            })
        };
        // sled's background flusher can hold the directory's lock for a
        // moment after a store of this process is dropped: a lock still
        // held after LOCK_WAIT belongs to someone else.
        let waited_from = std::time::Instant::now();
        let db = loop {
            match try_open() {
                Err(StoreError::Locked { .. }) if waited_from.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(LOCK_RETRY);
                }
                other => break other?,
            }
        };
        // Loaded only once sled holds the directory's lock.
        let keys = Keys::new(
            KeyFile::load(&dir.join(CUSTOMER_KEYS_FILE))?,
            KeyFile::load(&dir.join(OUTBOX_KEYS_FILE))?,
        );
        let store = SledStore {
            db,
            path,
            keys: Mutex::new(keys),
        };
        store.seal_and_collect()?;
        store.build_open_index()?;
        Ok(store)
    }

    /// A store that lives in memory and disappears when dropped (for tests).
    pub fn temporary() -> Result<SledStore, StoreError> {
        let db = sled::Config::new()
            .temporary(true)
            .open()
            .map_err(|e| StoreError::Database {
                path: "<temporary>".into(),
                message: e.to_string(),
            })?;
        Ok(SledStore {
            db,
            path: "<temporary>".into(),
            keys: Mutex::new(Keys::new(KeyFile::in_memory(), KeyFile::in_memory())),
        })
    }

    fn keys(&self) -> MutexGuard<'_, Keys> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// At open: seal what a store from before sealing kept in the clear, and
    /// destroy keys no record uses any more (a commit interrupted between
    /// writing its keys and its records, or between deleting records and
    /// their key). Records without their key are never written that way: the
    /// key files were lost or replaced, and the store refuses to open.
    fn seal_and_collect(&self) -> Result<(), StoreError> {
        let mut keys = self.keys();
        let mut keyless = 0usize;
        let mut batch = sled::Batch::default();
        let mut used: BTreeSet<String> = BTreeSet::new();
        let mut sealed_any = false;
        let mut added_keys = false;
        for prefix in OWNED {
            for item in self.db.scan_prefix(prefix) {
                let (key, value) = item.map_err(|e| self.db_error(e))?;
                let record = String::from_utf8_lossy(&key).into_owned();
                match Envelope::of(&value) {
                    Envelope::Customer { rid, .. } => {
                        if keys.customers.get(rid).is_some() {
                            used.insert(rid.to_string());
                        } else {
                            keyless += 1;
                        }
                    }
                    Envelope::Plain(plain) => {
                        let owner: OwnedBy = decode(&record, plain)?;
                        if owner.customer.is_forgotten() {
                            continue;
                        }
                        let (rid, added) = keys.ensure(&owner.customer)?;
                        added_keys |= added;
                        used.insert(rid.clone());
                        let target = if prefix == CUSTOMER {
                            batch.remove(key.as_ref());
                            format!("{CUSTOMER}{rid}")
                        } else {
                            record.clone()
                        };
                        batch.insert(
                            target.as_bytes(),
                            keys.seal_owned(&owner.customer, &target, plain)?,
                        );
                        sealed_any = true;
                    }
                    Envelope::Outbox(_) => {
                        return Err(StoreError::Corrupt {
                            key: record,
                            message: "an outbox value in a customer record".into(),
                        });
                    }
                }
            }
        }
        let mut live_outbox: BTreeSet<String> = BTreeSet::new();
        for prefix in [OUTBOX, FAILED] {
            for item in self.db.scan_prefix(prefix) {
                let (key, value) = item.map_err(|e| self.db_error(e))?;
                let record = String::from_utf8_lossy(&key).into_owned();
                let id = outbox_id(&record)?;
                match Envelope::of(&value) {
                    Envelope::Plain(plain) => {
                        keys.add_outbox(id)?;
                        added_keys = true;
                        batch.insert(key.as_ref(), keys.seal_outbox(id, &record, plain)?);
                        sealed_any = true;
                        live_outbox.insert(id.to_string());
                    }
                    _ if keys.outbox.get(&id.to_string()).is_some() => {
                        live_outbox.insert(id.to_string());
                    }
                    _ => keyless += 1,
                }
            }
        }
        if keyless > 0 {
            return Err(StoreError::MissingKeys {
                path: self.path.clone(),
                count: keyless,
                files: format!("{CUSTOMER_KEYS_FILE}, {OUTBOX_KEYS_FILE}"),
            });
        }
        if added_keys {
            keys.customers.save()?;
            keys.outbox.save()?;
        }
        self.db.apply_batch(batch).map_err(|e| self.db_error(e))?;
        self.db.flush().map_err(|e| self.db_error(e))?;
        if sealed_any {
            tracing::info!(
                "sealed the customer records of a store written before encryption; \
                 sled may keep the old plain values in its log until it rewrites those segments"
            );
        }
        let unused: Vec<String> = keys
            .customers
            .iter()
            .filter(|(rid, _)| !used.contains(*rid))
            .map(|(rid, _)| rid.clone())
            .collect();
        let stale_outbox: Vec<String> = keys
            .outbox
            .iter()
            .filter(|(id, _)| !live_outbox.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        if !unused.is_empty() {
            for rid in &unused {
                keys.destroy(rid);
            }
            keys.customers.save()?;
        }
        if !stale_outbox.is_empty() {
            for id in &stale_outbox {
                keys.outbox.remove(id);
            }
            keys.outbox.save()?;
        }
        Ok(())
    }

    /// Index the unresolved tickets of a store written before the index existed.
    fn build_open_index(&self) -> Result<(), StoreError> {
        if self
            .db
            .contains_key(OPEN_INDEX_BUILT)
            .map_err(|e| self.db_error(e))?
        {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for t in self.scan::<Ticket>(TICKET)? {
            if t.status != TicketStatus::Resolved {
                batch.insert(numbered(OPEN, t.number).as_bytes(), &[][..]);
            }
        }
        batch.insert(OPEN_INDEX_BUILT, &[][..]);
        self.db.apply_batch(batch).map_err(|e| self.db_error(e))?;
        self.db.flush().map_err(|e| self.db_error(e))?;
        Ok(())
    }

    fn db_error(&self, e: sled::Error) -> StoreError {
        StoreError::Database {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let Some(bytes) = self.db.get(key).map_err(|e| self.db_error(e))? else {
            return Ok(None);
        };
        match self.keys().open(key, &bytes)? {
            Some(plain) => decode(key, &plain).map(Some),
            None => Ok(None),
        }
    }

    /// Every readable record under `prefix` (records of forgotten customers are skipped).
    fn scan<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<T>, StoreError> {
        Ok(self
            .scan_keyed(prefix, None)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// The records under `prefix` sealed for the customer with record id `rid`.
    fn owned_by<T: DeserializeOwned>(&self, prefix: &str, rid: &str) -> Result<Vec<T>, StoreError> {
        Ok(self
            .scan_keyed(prefix, Some(rid))?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// Records under `prefix` with their keys; with `rid`, only those sealed for that customer.
    fn scan_keyed<T: DeserializeOwned>(
        &self,
        prefix: &str,
        rid: Option<&str>,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let keys = self.keys();
        let mut out = Vec::new();
        for item in self.db.scan_prefix(prefix) {
            let (key, value) = item.map_err(|e| self.db_error(e))?;
            if let Some(rid) = rid
                && !matches!(Envelope::of(&value), Envelope::Customer { rid: r, .. } if r == rid)
            {
                continue;
            }
            let record = String::from_utf8_lossy(&key).into_owned();
            if let Some(plain) = keys.open(&record, &value)? {
                let value = decode(&record, &plain)?;
                out.push((record, value));
            }
        }
        Ok(out)
    }
}

/// An action the platform refused for good, kept with the reason.
#[derive(serde::Serialize, serde::Deserialize)]
struct FailedRecord {
    outgoing: Outgoing,
    reason: String,
    /// When it was set aside (absent on records from before retention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failed_at: Option<jiff::Timestamp>,
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        message: e.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Our records are plain data: serialising them cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Zero-padded so that keys sort numerically.
fn numbered(prefix: &str, n: u64) -> String {
    format!("{prefix}{n:020}")
}

/// Whether an outbox action is addressed to or about the customer (by their tickets).
fn concerns(action: &Action, customer: &CustomerKey, tickets: &[u64]) -> bool {
    match action {
        Action::ToCustomer { customer: c, .. } => c == customer,
        Action::PingStaff { ticket, .. } | Action::UpdatePing { ticket, .. } => {
            tickets.contains(ticket)
        }
        Action::ToStaff { ticket, text, .. } => {
            ticket.is_some_and(|t| tickets.contains(&t)) || text.contains(&customer.to_string())
        }
    }
}

impl Store for SledStore {
    fn customer(&self, key: &CustomerKey) -> Result<Option<Customer>, StoreError> {
        let Some(rid) = self.keys().rid(key).cloned() else {
            return Ok(None);
        };
        self.get(&format!("{CUSTOMER}{rid}"))
    }

    fn conversation(&self, id: u64) -> Result<Option<Conversation>, StoreError> {
        self.get(&numbered(CONVERSATION, id))
    }

    fn ticket(&self, number: u64) -> Result<Option<Ticket>, StoreError> {
        self.get(&numbered(TICKET, number))
    }

    fn tickets(&self) -> Result<Vec<Ticket>, StoreError> {
        self.scan(TICKET)
    }

    fn open_tickets(&self) -> Result<Vec<Ticket>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix(OPEN) {
            let (key, _) = item.map_err(|e| self.db_error(e))?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let Ok(number) = key[OPEN.len()..].parse::<u64>() else {
                continue;
            };
            if let Some(t) = self.ticket(number)?
                && t.status != TicketStatus::Resolved
            {
                out.push(t);
            }
        }
        Ok(out)
    }

    fn rating(&self, conversation: u64) -> Result<Option<Rating>, StoreError> {
        self.get(&numbered(RATING, conversation))
    }

    fn conversations(&self) -> Result<Vec<Conversation>, StoreError> {
        self.scan(CONVERSATION)
    }

    fn ratings(&self) -> Result<Vec<Rating>, StoreError> {
        self.scan(RATING)
    }

    fn customer_records(&self, key: &CustomerKey) -> Result<CustomerRecords, StoreError> {
        let Some(rid) = self.keys().rid(key).cloned() else {
            return Ok(CustomerRecords::default());
        };
        Ok(CustomerRecords {
            customer: self.customer(key)?,
            conversations: self.owned_by(CONVERSATION, &rid)?,
            tickets: self.owned_by(TICKET, &rid)?,
            ratings: self.owned_by(RATING, &rid)?,
        })
    }

    fn customers(&self) -> Result<Vec<Customer>, StoreError> {
        self.scan(CUSTOMER)
    }

    fn counters(&self) -> Result<Counters, StoreError> {
        Ok(self.get(COUNTERS)?.unwrap_or_default())
    }

    fn was_handled(&self, event_id: &str) -> Result<bool, StoreError> {
        self.db
            .contains_key(format!("{HANDLED}{event_id}"))
            .map_err(|e| self.db_error(e))
    }

    fn commit(&self, change: Change) -> Result<Vec<Outgoing>, StoreError> {
        let mut keys = self.keys();
        let forgotten: BTreeSet<String> = change
            .forget
            .iter()
            .map(|f| f.customer.to_string())
            .collect();
        let keep = |owner: &CustomerKey, record: &str| {
            let kept = !forgotten.contains(&owner.to_string());
            if !kept {
                tracing::warn!(
                    record,
                    "a record of a customer being forgotten was not written"
                );
            }
            kept
        };

        // Keys first: a key on disk without records is collected at the next open.
        let mut customer_keys_changed = false;
        let mut rekeyed: Vec<(String, String)> = Vec::new();
        for owner in &change.rekey {
            if forgotten.contains(&owner.to_string()) {
                continue;
            }
            if let Some(old) = keys.rid(owner).cloned() {
                let new = keys.add(owner)?;
                rekeyed.push((old, new));
                customer_keys_changed = true;
            }
        }
        let owners = change
            .customers
            .iter()
            .map(|c| &c.key)
            .chain(change.conversations.iter().map(|c| &c.customer))
            .chain(change.tickets.iter().map(|t| &t.customer))
            .chain(change.ratings.iter().map(|r| &r.customer));
        for owner in owners {
            if !owner.is_forgotten() && !forgotten.contains(&owner.to_string()) {
                customer_keys_changed |= keys.ensure(owner)?.1;
            }
        }
        let mut outgoing = Vec::with_capacity(change.actions.len());
        for action in change.actions {
            // generate_id is monotonic across restarts.
            let id = self.db.generate_id().map_err(|e| self.db_error(e))?;
            keys.add_outbox(id)?;
            outgoing.push(Outgoing { id, action });
        }
        keys.save_new(customer_keys_changed, !outgoing.is_empty())?;

        let mut batch = sled::Batch::default();
        let mut written: BTreeSet<String> = BTreeSet::new();
        for c in &change.customers {
            if !keep(&c.key, CUSTOMER) {
                continue;
            }
            let Some(rid) = keys.rid(&c.key).cloned() else {
                continue;
            };
            let record = format!("{CUSTOMER}{rid}");
            batch.insert(
                record.as_bytes(),
                keys.seal_owned(&c.key, &record, &encode(c))?,
            );
            written.insert(record);
        }
        for c in &change.conversations {
            let record = numbered(CONVERSATION, c.id);
            if keep(&c.customer, &record) {
                batch.insert(
                    record.as_bytes(),
                    keys.seal_owned(&c.customer, &record, &encode(c))?,
                );
                written.insert(record);
            }
        }
        for t in &change.tickets {
            let record = numbered(TICKET, t.number);
            if !keep(&t.customer, &record) {
                continue;
            }
            batch.insert(
                record.as_bytes(),
                keys.seal_owned(&t.customer, &record, &encode(t))?,
            );
            written.insert(record);
            let open = numbered(OPEN, t.number);
            if t.status == TicketStatus::Resolved {
                batch.remove(open.as_bytes());
            } else {
                batch.insert(open.as_bytes(), &[][..]);
            }
        }
        for r in &change.ratings {
            let record = numbered(RATING, r.conversation);
            if keep(&r.customer, &record) {
                batch.insert(
                    record.as_bytes(),
                    keys.seal_owned(&r.customer, &record, &encode(r))?,
                );
                written.insert(record);
            }
        }
        let new_outbox: BTreeSet<u64> = outgoing.iter().map(|o| o.id).collect();
        for o in &outgoing {
            let record = numbered(OUTBOX, o.id);
            batch.insert(
                record.as_bytes(),
                keys.seal_outbox(o.id, &record, &encode(&o.action))?,
            );
        }
        if let Some(event) = &change.handled {
            batch.insert(format!("{HANDLED}{event}").as_bytes(), &[][..]);
        }
        batch.insert(COUNTERS, encode(&change.counters));

        // Forgotten customers: every record still sealed with their key goes,
        // with what the outbox holds for or about them. Rekeyed customers:
        // everything sealed with the old key is sealed with the new one. One
        // pass over the records for all of them.
        let mut destroyed_rids: Vec<String> = Vec::new();
        let mut dropped_outbox = Vec::new();
        for f in &change.forget {
            if let Some(rid) = keys.rid(&f.customer).cloned() {
                destroyed_rids.push(rid);
            }
        }
        let rekey_map: HashMap<&str, &str> = rekeyed
            .iter()
            .map(|(old, new)| (old.as_str(), new.as_str()))
            .collect();
        if !destroyed_rids.is_empty() || !rekey_map.is_empty() {
            for prefix in OWNED {
                for item in self.db.scan_prefix(prefix) {
                    let (key, value) = item.map_err(|e| self.db_error(e))?;
                    let Envelope::Customer { rid, .. } = Envelope::of(&value) else {
                        continue;
                    };
                    let record = String::from_utf8_lossy(&key).into_owned();
                    if destroyed_rids.iter().any(|r| r == rid) {
                        if !written.contains(&record) {
                            batch.remove(key.as_ref());
                        }
                        continue;
                    }
                    let Some(new) = rekey_map.get(rid).copied() else {
                        continue;
                    };
                    let Some(plain) = keys.open(&record, &value)? else {
                        continue;
                    };
                    let target = if prefix == CUSTOMER {
                        batch.remove(key.as_ref());
                        format!("{CUSTOMER}{new}")
                    } else {
                        record
                    };
                    if !written.contains(&target) {
                        let new_key = &keys
                            .customers
                            .get(new)
                            .expect("the new key was just added")
                            .key;
                        batch.insert(
                            target.as_bytes(),
                            keys::seal_customer(new, new_key, target.as_bytes(), &plain)?,
                        );
                    }
                }
            }
        }
        if let Some(before) = change.expire_failed_before {
            for item in self.db.scan_prefix(FAILED) {
                let (key, value) = item.map_err(|e| self.db_error(e))?;
                let record = String::from_utf8_lossy(&key).into_owned();
                let Some(plain) = keys.open(&record, &value)? else {
                    continue;
                };
                let failed: FailedRecord = decode(&record, &plain)?;
                if failed.failed_at.is_some_and(|at| at < before) {
                    batch.remove(key.as_ref());
                    dropped_outbox.push(failed.outgoing.id);
                }
            }
        }
        if !change.forget.is_empty() {
            for prefix in [OUTBOX, FAILED] {
                for item in self.db.scan_prefix(prefix) {
                    let (key, value) = item.map_err(|e| self.db_error(e))?;
                    let record = String::from_utf8_lossy(&key).into_owned();
                    let id = outbox_id(&record)?;
                    if new_outbox.contains(&id) {
                        continue;
                    }
                    let Some(plain) = keys.open(&record, &value)? else {
                        continue;
                    };
                    let action: Action = if prefix == OUTBOX {
                        decode(&record, &plain)?
                    } else {
                        decode::<FailedRecord>(&record, &plain)?.outgoing.action
                    };
                    if change
                        .forget
                        .iter()
                        .any(|f| concerns(&action, &f.customer, &f.tickets))
                    {
                        batch.remove(key.as_ref());
                        dropped_outbox.push(id);
                    }
                }
            }
        }
        destroyed_rids.extend(rekeyed.iter().map(|(old, _)| old.clone()));

        self.db.apply_batch(batch).map_err(|e| self.db_error(e))?;
        self.db.flush().map_err(|e| self.db_error(e))?;

        // Then the keys go: what the log still holds of them is unreadable.
        if !destroyed_rids.is_empty() {
            for rid in &destroyed_rids {
                keys.destroy(rid);
            }
            // A rekeyed customer's index points at their new key again.
            for (_, new) in &rekeyed {
                if let Some(owner) = keys.customers.get(new).map(|e| e.owner.clone()) {
                    keys.by_owner.insert(owner, new.clone());
                }
            }
            keys.customers.save()?;
        }
        if !dropped_outbox.is_empty() {
            for id in &dropped_outbox {
                keys.outbox.remove(&id.to_string());
            }
            keys.outbox.save()?;
        }
        Ok(outgoing)
    }

    fn pending(&self) -> Result<Vec<Outgoing>, StoreError> {
        let mut out = Vec::new();
        for (record, action) in self.scan_keyed::<Action>(OUTBOX, None)? {
            out.push(Outgoing {
                id: outbox_id(&record)?,
                action,
            });
        }
        Ok(out)
    }

    fn acknowledge(&self, outbox_id: u64) -> Result<(), StoreError> {
        self.db
            .remove(numbered(OUTBOX, outbox_id))
            .map_err(|e| self.db_error(e))?;
        self.db.flush().map_err(|e| self.db_error(e))?;
        // Delivered: its key goes, so the copy in the log is unreadable.
        let mut keys = self.keys();
        if keys.outbox.remove(&outbox_id.to_string()).is_some() {
            keys.outbox.save()?;
        }
        Ok(())
    }

    fn fail(&self, outbox_id: u64, reason: &str) -> Result<(), StoreError> {
        let key = numbered(OUTBOX, outbox_id);
        let Some(action) = self.get::<Action>(&key)? else {
            return Ok(());
        };
        let record = FailedRecord {
            outgoing: Outgoing {
                id: outbox_id,
                action,
            },
            reason: reason.to_string(),
            failed_at: Some(jiff::Timestamp::now()),
        };
        let failed = numbered(FAILED, outbox_id);
        let sealed = self
            .keys()
            .seal_outbox(outbox_id, &failed, &encode(&record))?;
        let mut batch = sled::Batch::default();
        batch.remove(key.as_bytes());
        batch.insert(failed.as_bytes(), sealed);
        self.db.apply_batch(batch).map_err(|e| self.db_error(e))?;
        self.db.flush().map_err(|e| self.db_error(e))?;
        Ok(())
    }

    fn failed(&self) -> Result<Vec<(Outgoing, String)>, StoreError> {
        Ok(self
            .scan::<FailedRecord>(FAILED)?
            .into_iter()
            .map(|r| (r.outgoing, r.reason))
            .collect())
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
            .get(format!("{META}{key}"))
            .map_err(|e| self.db_error(e))?
            .map(|v| v.to_vec()))
    }

    fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.db
            .insert(format!("{META}{key}"), value)
            .map_err(|e| self.db_error(e))?;
        self.db.flush().map_err(|e| self.db_error(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, Channel};

    fn action(text: &str) -> Action {
        Action::ToStaff {
            channel: Channel::Console,
            ticket: None,
            text: text.into(),
        }
    }

    #[test]
    fn commit_assigns_increasing_outbox_ids_and_acknowledges() {
        let store = SledStore::temporary().unwrap();
        let out = store
            .commit(Change {
                actions: vec![action("a"), action("b")],
                handled: Some("ev1".into()),
                counters: Counters {
                    last_conversation: 1,
                    last_ticket: 2,
                    ..Counters::default()
                },
                ..Change::default()
            })
            .unwrap();
        assert_eq!(out.len(), 2);
        assert!(out[0].id < out[1].id);
        assert!(store.was_handled("ev1").unwrap());
        assert!(!store.was_handled("ev2").unwrap());
        assert_eq!(store.counters().unwrap().last_ticket, 2);
        assert_eq!(store.pending().unwrap(), out);
        store.acknowledge(out[0].id).unwrap();
        assert_eq!(store.pending().unwrap(), vec![out[1].clone()]);
        store.fail(out[1].id, "blocked by the user").unwrap();
        assert!(store.pending().unwrap().is_empty());
        let failed = store.failed().unwrap();
        assert_eq!(
            failed,
            vec![(out[1].clone(), "blocked by the user".to_string())]
        );
    }

    fn ticket(number: u64, status: TicketStatus) -> Ticket {
        let at: jiff::Timestamp = "2026-01-05T10:00:00Z".parse().unwrap();
        Ticket {
            number,
            conversation: number,
            customer: CustomerKey::new(Channel::Console, "c"),
            customer_name: "C".into(),
            language: "en".into(),
            reason: crate::model::EscalationReason::UnknownQuestion,
            excerpt: Vec::new(),
            status,
            assignee: None,
            assignee_id: None,
            intent: None,
            targets: None,
            resolution_note: None,
            created_at: at,
            first_response_at: None,
            resolved_at: None,
            events: Vec::new(),
        }
    }

    #[test]
    fn open_tickets_come_from_an_index_kept_with_each_commit() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            let commit = |tickets: Vec<Ticket>| {
                store
                    .commit(Change {
                        tickets,
                        ..Change::default()
                    })
                    .unwrap()
            };
            commit(vec![
                ticket(1, TicketStatus::Open),
                ticket(2, TicketStatus::Claimed),
                ticket(3, TicketStatus::Resolved),
            ]);
            commit(vec![ticket(1, TicketStatus::Resolved)]);
            let open: Vec<u64> = store
                .open_tickets()
                .unwrap()
                .iter()
                .map(|t| t.number)
                .collect();
            assert_eq!(open, vec![2]);
            // A store from before the index: no index entries, no marker.
            store.db.remove(numbered(OPEN, 2)).unwrap();
            store.db.remove(OPEN_INDEX_BUILT).unwrap();
            store.db.flush().unwrap();
            assert!(store.open_tickets().unwrap().is_empty());
        }
        let store = SledStore::open(dir.path()).unwrap();
        let open: Vec<u64> = store
            .open_tickets()
            .unwrap()
            .iter()
            .map(|t| t.number)
            .collect();
        assert_eq!(open, vec![2], "the index is rebuilt at open");
    }

    #[test]
    fn survives_reopen_and_second_open_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store.set_meta("offset", b"42").unwrap();
            store
                .commit(Change {
                    actions: vec![action("pending")],
                    ..Change::default()
                })
                .unwrap();
            assert!(matches!(
                SledStore::open(dir.path()),
                Err(StoreError::Locked { .. })
            ));
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.meta("offset").unwrap().as_deref(), Some(&b"42"[..]));
        assert_eq!(store.pending().unwrap().len(), 1);
    }

    #[test]
    fn corrupt_records_are_reported_not_panicked() {
        let store = SledStore::temporary().unwrap();
        store
            .db
            .insert("ticket/00000000000000000001", &b"{nope"[..])
            .unwrap();
        assert!(matches!(store.ticket(1), Err(StoreError::Corrupt { .. })));
        assert!(store.tickets().is_err());
    }

    fn customer(id: &str) -> Customer {
        let at: jiff::Timestamp = "2026-01-05T10:00:00Z".parse().unwrap();
        Customer {
            key: CustomerKey::new(Channel::Telegram, id),
            name: "Legacy Lucinda".into(),
            address: id.into(),
            language: Some("en".into()),
            state: crate::model::DialogueState::Idle,
            conversation: None,
            first_seen: at,
            last_seen: at,
        }
    }

    #[test]
    fn a_store_written_before_sealing_opens_and_is_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = ticket(1, TicketStatus::Open);
        t.customer = CustomerKey::new(Channel::Telegram, "777");
        {
            // What frontdesk wrote before sealing: plain JSON, the id in the key.
            let db = sled::open(dir.path()).unwrap();
            db.insert("customer/telegram:777", encode(&customer("777")))
                .unwrap();
            db.insert(numbered(TICKET, 1), encode(&t)).unwrap();
            db.insert(numbered(OUTBOX, 5), encode(&action("pending ping")))
                .unwrap();
            db.flush().unwrap();
        }
        {
            let store = SledStore::open(dir.path()).unwrap();
            let key = CustomerKey::new(Channel::Telegram, "777");
            assert_eq!(
                store.customer(&key).unwrap().unwrap().name,
                "Legacy Lucinda"
            );
            assert_eq!(store.ticket(1).unwrap().unwrap(), t);
            assert_eq!(store.open_tickets().unwrap().len(), 1);
            assert_eq!(store.pending().unwrap()[0].id, 5);
            assert!(store.db.get("customer/telegram:777").unwrap().is_none());
            for (k, v) in store.db.iter().map(Result::unwrap) {
                let k = String::from_utf8_lossy(&k).into_owned();
                if k.starts_with(TICKET) || k.starts_with(CUSTOMER) || k.starts_with(OUTBOX) {
                    assert!(
                        !matches!(Envelope::of(&v), Envelope::Plain(_)),
                        "{k} is still plain"
                    );
                }
            }
            // Forgotten like any other customer.
            store
                .commit(Change {
                    forget: vec![super::super::Forget {
                        customer: key.clone(),
                        tickets: vec![1],
                    }],
                    tickets: vec![t.anonymized()],
                    ..Change::default()
                })
                .unwrap();
            assert!(store.customer_records(&key).unwrap().is_empty());
            assert!(store.ticket(1).unwrap().unwrap().customer.is_forgotten());
        }
        // (sled's own files may still hold the plain values written before
        // sealing, until sled rewrites those log segments: see the README.)
        let key_file = std::fs::read(dir.path().join(CUSTOMER_KEYS_FILE)).unwrap();
        assert!(
            !key_file.windows(12).any(|w| w == b"telegram:777"),
            "the id left the key file"
        );
    }

    #[test]
    fn unused_keys_are_destroyed_and_lost_key_files_refuse_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let key = CustomerKey::new(Channel::Telegram, "888");
        {
            let store = SledStore::open(dir.path()).unwrap();
            store
                .commit(Change {
                    customers: vec![customer("888")],
                    actions: vec![action("to staff")],
                    ..Change::default()
                })
                .unwrap();
            // A key without records (a commit that crashed after writing its keys).
            let mut keys = store.keys();
            keys.add(&CustomerKey::new(Channel::Telegram, "999"))
                .unwrap();
            keys.customers.save().unwrap();
        }
        {
            let store = SledStore::open(dir.path()).unwrap();
            assert_eq!(
                store.customer(&key).unwrap().unwrap().name,
                "Legacy Lucinda"
            );
            let keys = store.keys();
            assert_eq!(
                keys.customers.iter().count(),
                1,
                "the unused key is destroyed"
            );
            assert!(
                keys.rid(&CustomerKey::new(Channel::Telegram, "999"))
                    .is_none()
            );
        }
        // The key files lost (a backup of the database alone): a clear error, nothing touched.
        let keys_file = dir.path().join(CUSTOMER_KEYS_FILE);
        let outbox_file = dir.path().join(OUTBOX_KEYS_FILE);
        let saved = (
            std::fs::read(&keys_file).unwrap(),
            std::fs::read(&outbox_file).unwrap(),
        );
        std::fs::remove_file(&keys_file).unwrap();
        std::fs::remove_file(&outbox_file).unwrap();
        match SledStore::open(dir.path()) {
            Err(e @ StoreError::MissingKeys { count: 2, .. }) => {
                assert!(e.to_string().contains("customer-keys.json"), "{e}");
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("opened without its keys"),
        }
        std::fs::write(&keys_file, &saved.0).unwrap();
        std::fs::write(&outbox_file, &saved.1).unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(
            store.customer(&key).unwrap().unwrap().name,
            "Legacy Lucinda"
        );
        assert_eq!(store.pending().unwrap().len(), 1);
    }

    #[test]
    fn sled_keeps_removed_values_in_its_files_which_is_why_text_is_sealed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            db.insert("k", &b"Removed-Value-Rhubarb-93"[..]).unwrap();
            db.flush().unwrap();
            db.remove("k").unwrap();
            db.flush().unwrap();
            assert!(db.get("k").unwrap().is_none());
        }
        let on_disk = std::fs::read(dir.path().join("db")).unwrap();
        assert!(
            on_disk
                .windows(24)
                .any(|w| w == b"Removed-Value-Rhubarb-93"),
            "sled 0.34 keeps the removed value in its log"
        );
    }

    #[test]
    fn a_key_file_that_cannot_be_written_fails_the_commit_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the temporary key file goes: writing it fails, even as root.
        let blocker = dir.path().join("customer-keys.tmp");
        let new_customer = || Change {
            customers: vec![customer("321")],
            actions: vec![action("hello")],
            ..Change::default()
        };
        {
            let store = SledStore::open(dir.path()).unwrap();
            std::fs::create_dir(&blocker).unwrap();
            assert!(matches!(
                store.commit(new_customer()),
                Err(StoreError::Database { .. })
            ));
            assert!(store.pending().unwrap().is_empty(), "nothing was written");
            std::fs::remove_dir(&blocker).unwrap();
            store.commit(new_customer()).unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        let key = CustomerKey::new(Channel::Telegram, "321");
        assert_eq!(
            store.customer(&key).unwrap().unwrap().name,
            "Legacy Lucinda"
        );
        assert_eq!(store.pending().unwrap().len(), 1);
    }
}

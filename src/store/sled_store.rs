//! The sled implementation of [`Store`]: one tree, typed key prefixes, JSON
//! values, every [`Change`] one atomic batch followed by a flush.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Change, Counters, Store, StoreError};
use crate::model::{Conversation, Customer, CustomerKey, Outgoing, Rating, Ticket, TicketStatus};

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

/// The embedded store, in a directory of its own.
pub struct SledStore {
    db: sled::Db,
    path: String,
}

impl SledStore {
    /// Open (or create) the store in `dir`.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        let path = dir.display().to_string();
        if let Err(e) = std::fs::create_dir_all(dir) {
            return Err(StoreError::Database {
                path,
                message: format!("cannot create the directory: {e}"),
            });
        }
        let db = sled::Config::new().path(dir).open().map_err(|e| {
            let message = e.to_string();
            if message.contains("lock") || message.contains("WouldBlock") {
                StoreError::Locked { path: path.clone() }
            } else {
                StoreError::Database {
                    path: path.clone(),
                    message,
                }
            }
        })?;
        let store = SledStore { db, path };
        store.build_open_index()?;
        Ok(store)
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
        })
    }

    fn db_error(&self, e: sled::Error) -> StoreError {
        StoreError::Database {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        match self.db.get(key).map_err(|e| self.db_error(e))? {
            None => Ok(None),
            Some(bytes) => decode(key, &bytes).map(Some),
        }
    }

    fn scan<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix(prefix) {
            let (key, value) = item.map_err(|e| self.db_error(e))?;
            out.push(decode(&String::from_utf8_lossy(&key), &value)?);
        }
        Ok(out)
    }
}

/// An action the platform refused for good, kept with the reason.
#[derive(serde::Serialize, serde::Deserialize)]
struct FailedRecord {
    outgoing: Outgoing,
    reason: String,
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

fn customer_key(key: &CustomerKey) -> String {
    format!("{CUSTOMER}{}:{}", key.channel, key.id)
}

/// Zero-padded so that keys sort numerically.
fn numbered(prefix: &str, n: u64) -> String {
    format!("{prefix}{n:020}")
}

impl Store for SledStore {
    fn customer(&self, key: &CustomerKey) -> Result<Option<Customer>, StoreError> {
        self.get(&customer_key(key))
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
        let mut batch = sled::Batch::default();
        for c in &change.customers {
            batch.insert(customer_key(&c.key).as_bytes(), encode(c));
        }
        for c in &change.conversations {
            batch.insert(numbered(CONVERSATION, c.id).as_bytes(), encode(c));
        }
        for t in &change.tickets {
            batch.insert(numbered(TICKET, t.number).as_bytes(), encode(t));
            let open = numbered(OPEN, t.number);
            if t.status == TicketStatus::Resolved {
                batch.remove(open.as_bytes());
            } else {
                batch.insert(open.as_bytes(), &[][..]);
            }
        }
        for r in &change.ratings {
            batch.insert(numbered(RATING, r.conversation).as_bytes(), encode(r));
        }
        let mut outgoing = Vec::with_capacity(change.actions.len());
        for action in change.actions {
            // generate_id is monotonic across restarts.
            let id = self.db.generate_id().map_err(|e| self.db_error(e))?;
            batch.insert(numbered(OUTBOX, id).as_bytes(), encode(&action));
            outgoing.push(Outgoing { id, action });
        }
        if let Some(event) = &change.handled {
            batch.insert(format!("{HANDLED}{event}").as_bytes(), &[][..]);
        }
        batch.insert(COUNTERS, encode(&change.counters));
        self.db.apply_batch(batch).map_err(|e| self.db_error(e))?;
        self.db.flush().map_err(|e| self.db_error(e))?;
        Ok(outgoing)
    }

    fn pending(&self) -> Result<Vec<Outgoing>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix(OUTBOX) {
            let (key, value) = item.map_err(|e| self.db_error(e))?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let id = key[OUTBOX.len()..]
                .parse()
                .map_err(|_| StoreError::Corrupt {
                    key: key.clone(),
                    message: "outbox key without a number".into(),
                })?;
            out.push(Outgoing {
                id,
                action: decode(&key, &value)?,
            });
        }
        Ok(out)
    }

    fn acknowledge(&self, outbox_id: u64) -> Result<(), StoreError> {
        self.db
            .remove(numbered(OUTBOX, outbox_id))
            .map_err(|e| self.db_error(e))?;
        self.db.flush().map_err(|e| self.db_error(e))?;
        Ok(())
    }

    fn fail(&self, outbox_id: u64, reason: &str) -> Result<(), StoreError> {
        let key = numbered(OUTBOX, outbox_id);
        let Some(value) = self.db.get(&key).map_err(|e| self.db_error(e))? else {
            return Ok(());
        };
        let action: crate::model::Action = decode(&key, &value)?;
        let record = FailedRecord {
            outgoing: Outgoing {
                id: outbox_id,
                action,
            },
            reason: reason.to_string(),
        };
        let mut batch = sled::Batch::default();
        batch.remove(key.as_bytes());
        batch.insert(numbered(FAILED, outbox_id).as_bytes(), encode(&record));
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
}

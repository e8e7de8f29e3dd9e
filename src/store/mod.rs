//! Persistence: the [`Store`] trait the engine and channels write through,
//! and its embedded default, [`SledStore`].
//!
//! A [`Change`] carries everything one inbound event changed (customers,
//! conversations, tickets, ratings, the handled event id and the outbound
//! actions) and is written atomically, so that after a crash either all of an
//! event's effects are on disk, with its replies waiting in the outbox, or
//! none are and the event is handled again.
//!
//! Customer text is sealed with a key per customer and every outbox entry
//! with a key of its own (see [`keys`]): a [`Change`] that forgets a customer
//! destroys their key, so that what the log-structured database still holds of
//! them on disk is unreadable.

pub mod keys;
mod sled_store;

pub use sled_store::SledStore;

use serde::{Deserialize, Serialize};

use crate::model::{Action, Conversation, Customer, CustomerKey, Outgoing, Rating, Ticket};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory is held by another process.
    #[error(
        "the data directory {path} is in use by another frontdesk process: stop it first, or pass another --data DIR"
    )]
    Locked {
        /// The directory.
        path: String,
    },
    /// The database failed.
    #[error("database error in {path}: {message}")]
    Database {
        /// The directory.
        path: String,
        /// What the database said.
        message: String,
    },
    /// Records are encrypted with keys the key files do not hold: the key
    /// files were lost, or are older than the database.
    #[error(
        "{count} record(s) in {path} are encrypted with keys missing from its key files ({files}): they were lost or are older than the database. Restore the key files that belong with this database (back up the data directory as a whole); nothing was changed"
    )]
    MissingKeys {
        /// The directory.
        path: String,
        /// How many records.
        count: usize,
        /// The key files.
        files: String,
    },
    /// A stored record could not be read back.
    #[error("corrupt record {key} in the store: {message}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// Sequence counters, written with each change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    /// The last conversation id handed out.
    pub last_conversation: u64,
    /// The last ticket number handed out.
    pub last_ticket: u64,
    /// When the retention period was last applied (see `[privacy]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy_swept_at: Option<jiff::Timestamp>,
}

/// A customer to forget in a [`Change`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forget {
    /// Who.
    pub customer: CustomerKey,
    /// Their tickets (outbox entries about them are dropped too).
    pub tickets: Vec<u64>,
}

/// Everything stored about one customer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CustomerRecords {
    /// The customer record.
    pub customer: Option<Customer>,
    /// Their conversations, by id.
    pub conversations: Vec<Conversation>,
    /// Their tickets, by number.
    pub tickets: Vec<Ticket>,
    /// Their ratings, by conversation.
    pub ratings: Vec<Rating>,
}

impl CustomerRecords {
    /// True when nothing is stored about the customer.
    pub fn is_empty(&self) -> bool {
        self.customer.is_none()
            && self.conversations.is_empty()
            && self.tickets.is_empty()
            && self.ratings.is_empty()
    }
}

/// Everything one event changed, written in one atomic step.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// Customers to write.
    pub customers: Vec<Customer>,
    /// Conversations to write.
    pub conversations: Vec<Conversation>,
    /// Tickets to write.
    pub tickets: Vec<Ticket>,
    /// Ratings to add (or, for a conversation already rated, to replace).
    pub ratings: Vec<Rating>,
    /// Actions to put in the outbox.
    pub actions: Vec<Action>,
    /// The inbound event id now handled (for exactly-once handling).
    pub handled: Option<String>,
    /// The counters after the change.
    pub counters: Counters,
    /// Customers to forget: their key is destroyed and every record still
    /// sealed with it (customer, ratings, anything not rewritten in this
    /// change) is deleted, with the outbox entries to or about them. Write
    /// the anonymised tickets and conversations to keep in the same change.
    pub forget: Vec<Forget>,
    /// Customers whose records are sealed again with a new key and the old key
    /// destroyed: what was deleted from their records (by the retention
    /// period) becomes unreadable in the database's old log segments too.
    pub rekey: Vec<CustomerKey>,
    /// Drop the actions set aside as undeliverable before this instant (the
    /// retention period: they hold conversation text too).
    pub expire_failed_before: Option<jiff::Timestamp>,
}

impl Change {
    /// True when the change writes nothing (no records, no actions, no event id).
    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
            && self.conversations.is_empty()
            && self.tickets.is_empty()
            && self.ratings.is_empty()
            && self.actions.is_empty()
            && self.handled.is_none()
            && self.forget.is_empty()
            && self.rekey.is_empty()
            && self.expire_failed_before.is_none()
    }
}

/// What frontdesk persists. Implementations must make [`Store::commit`] atomic.
pub trait Store: Send + Sync {
    /// A customer.
    fn customer(&self, key: &CustomerKey) -> Result<Option<Customer>, StoreError>;
    /// A conversation.
    fn conversation(&self, id: u64) -> Result<Option<Conversation>, StoreError>;
    /// A ticket by number.
    fn ticket(&self, number: u64) -> Result<Option<Ticket>, StoreError>;
    /// All tickets, by number.
    fn tickets(&self) -> Result<Vec<Ticket>, StoreError>;
    /// The tickets not resolved, by number: what the timer scans. Stores
    /// should keep an index; this default reads every ticket.
    fn open_tickets(&self) -> Result<Vec<Ticket>, StoreError> {
        let mut tickets = self.tickets()?;
        tickets.retain(|t| t.status != crate::model::TicketStatus::Resolved);
        Ok(tickets)
    }
    /// All conversations, by id.
    fn conversations(&self) -> Result<Vec<Conversation>, StoreError>;
    /// All ratings, by conversation.
    fn ratings(&self) -> Result<Vec<Rating>, StoreError>;
    /// The rating of one conversation. This default reads every rating.
    fn rating(&self, conversation: u64) -> Result<Option<Rating>, StoreError> {
        Ok(self
            .ratings()?
            .into_iter()
            .find(|r| r.conversation == conversation))
    }
    /// Everything stored about one customer. This default reads every record.
    fn customer_records(&self, key: &CustomerKey) -> Result<CustomerRecords, StoreError> {
        Ok(CustomerRecords {
            customer: self.customer(key)?,
            conversations: self
                .conversations()?
                .into_iter()
                .filter(|c| &c.customer == key)
                .collect(),
            tickets: self
                .tickets()?
                .into_iter()
                .filter(|t| &t.customer == key)
                .collect(),
            ratings: self
                .ratings()?
                .into_iter()
                .filter(|r| &r.customer == key)
                .collect(),
        })
    }
    /// All customers.
    fn customers(&self) -> Result<Vec<Customer>, StoreError>;
    /// The counters.
    fn counters(&self) -> Result<Counters, StoreError>;
    /// Whether an inbound event id was already handled.
    fn was_handled(&self, event_id: &str) -> Result<bool, StoreError>;
    /// Write a change atomically and durably; returns its actions with their outbox ids.
    fn commit(&self, change: Change) -> Result<Vec<Outgoing>, StoreError>;
    /// Actions not yet acknowledged, oldest first.
    fn pending(&self) -> Result<Vec<Outgoing>, StoreError>;
    /// The platform accepted this action: remove it from the outbox.
    fn acknowledge(&self, outbox_id: u64) -> Result<(), StoreError>;
    /// The platform refused this action for good (the customer blocked the bot,
    /// the chat is gone): move it from the outbox to the failed list, with why.
    fn fail(&self, outbox_id: u64, reason: &str) -> Result<(), StoreError>;
    /// Actions that could not be delivered, with the reason, oldest first.
    fn failed(&self) -> Result<Vec<(Outgoing, String)>, StoreError>;
    /// A channel's own small state (update offsets, message ids of pings).
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Set a channel's own small state.
    fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
}

//! The adapter's own small state, kept in the store's meta records:
//!
//! - `telegram/offset` = `<bot id>:<next update id>`: where polling resumes
//!   (bound to the bot, so that a new token does not start from another
//!   bot's offset);
//! - `telegram/ping/<ticket>` = `<chat id>:<message id>`: the ticket's ping;
//! - `telegram/msg/<chat id>:<message id>` = `<ticket>`: every message posted
//!   about a ticket in the staff group, for replies to it;
//! - `telegram/payload/<key>` = a button payload longer than Telegram's 64 bytes.

use crate::store::{Store, StoreError};

use super::translate::Lookup;

const OFFSET: &str = "telegram/offset";

fn text(store: &dyn Store, key: &str) -> Result<Option<String>, StoreError> {
    Ok(store
        .meta(key)?
        .map(|v| String::from_utf8_lossy(&v).into_owned()))
}

/// Run a store call off the async threads (the store writes to disk).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// The next update id to ask for, if one was stored for this bot.
pub fn offset(store: &dyn Store, bot: u64) -> Result<Option<i64>, StoreError> {
    let Some(value) = text(store, OFFSET)? else {
        return Ok(None);
    };
    Ok(value
        .split_once(':')
        .filter(|(b, _)| b.parse() == Ok(bot))
        .and_then(|(_, o)| o.parse().ok()))
}

/// Store the next update id to ask for.
pub fn set_offset(store: &dyn Store, bot: u64, offset: i64) -> Result<(), StoreError> {
    store.set_meta(OFFSET, format!("{bot}:{offset}").as_bytes())
}

/// The message id of a ticket's ping in `chat`.
pub fn ping_of(store: &dyn Store, chat: i64, ticket: u64) -> Result<Option<i32>, StoreError> {
    Ok(
        text(store, &format!("telegram/ping/{ticket}"))?.and_then(|v| {
            let (c, m) = v.split_once(':')?;
            (c.parse() == Ok(chat)).then(|| m.parse().ok()).flatten()
        }),
    )
}

/// Remember a ticket's ping.
pub fn remember_ping(
    store: &dyn Store,
    chat: i64,
    ticket: u64,
    message: i32,
) -> Result<(), StoreError> {
    store.set_meta(
        &format!("telegram/ping/{ticket}"),
        format!("{chat}:{message}").as_bytes(),
    )
}

/// Remember that messages in `chat` belong to `ticket`.
pub fn remember_messages(
    store: &dyn Store,
    chat: i64,
    messages: &[i32],
    ticket: u64,
) -> Result<(), StoreError> {
    for m in messages {
        store.set_meta(
            &format!("telegram/msg/{chat}:{m}"),
            ticket.to_string().as_bytes(),
        )?;
    }
    Ok(())
}

/// Remember long button payloads under their keys.
pub fn remember_payloads(
    store: &dyn Store,
    payloads: &[(String, String)],
) -> Result<(), StoreError> {
    for (key, payload) in payloads {
        store.set_meta(&format!("telegram/payload/{key}"), payload.as_bytes())?;
    }
    Ok(())
}

/// [`Lookup`] over the store.
pub struct StoreLookup<'a>(pub &'a dyn Store);

impl Lookup for StoreLookup<'_> {
    fn ticket_of_message(&self, chat: i64, message: i32) -> Option<u64> {
        match text(self.0, &format!("telegram/msg/{chat}:{message}")) {
            Ok(v) => v.and_then(|v| v.parse().ok()),
            Err(e) => {
                tracing::warn!(error = %e, "telegram: cannot read which ticket a message belongs to");
                None
            }
        }
    }

    fn long_payload(&self, key: &str) -> Option<String> {
        match text(self.0, &format!("telegram/payload/{key}")) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "telegram: cannot read a button payload");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    #[test]
    fn offsets_belong_to_their_bot() {
        let store = SledStore::temporary().unwrap();
        assert_eq!(offset(&store, 1).unwrap(), None);
        set_offset(&store, 1, 500).unwrap();
        assert_eq!(offset(&store, 1).unwrap(), Some(500));
        assert_eq!(
            offset(&store, 2).unwrap(),
            None,
            "another bot starts afresh"
        );
    }

    #[test]
    fn pings_and_messages_map_to_tickets() {
        let store = SledStore::temporary().unwrap();
        remember_ping(&store, -100, 3, 77).unwrap();
        remember_messages(&store, -100, &[77, 78], 3).unwrap();
        assert_eq!(ping_of(&store, -100, 3).unwrap(), Some(77));
        assert_eq!(
            ping_of(&store, -200, 3).unwrap(),
            None,
            "another staff chat"
        );
        let lookup = StoreLookup(&store);
        assert_eq!(lookup.ticket_of_message(-100, 78), Some(3));
        assert_eq!(lookup.ticket_of_message(-100, 79), None);
        remember_payloads(&store, &[("ab".into(), "intent:x".into())]).unwrap();
        assert_eq!(lookup.long_payload("ab").as_deref(), Some("intent:x"));
    }
}

//! Carrying the engine's actions out on Telegram: the [`Deliverer`] the
//! shared outbox worker drives.
//!
//! - `ToCustomer` → `sendMessage` to the customer's chat, with an inline keyboard;
//! - `PingStaff` → `sendMessage` in the staff group with [Claim] [Resolve]; the
//!   ping's message id is remembered for its ticket;
//! - `UpdatePing` → `editMessageText` of that message (a new ping when it is
//!   gone or unknown);
//! - `ToStaff` → `sendMessage` in the staff group, as a reply to the ticket's
//!   ping when it concerns one.
//!
//! Every message posted about a ticket is remembered (message id → ticket),
//! so that staff can reply to any of them. Errors map to the outbox's retry
//! rules: network, 5xx and 429 (with `retry_after`) are retried; a refusal
//! (blocked by the user, chat not found, bad request) is permanent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

use super::Pacing;
use super::api::{Api, ApiError};
use super::state;
use super::translate::{edit_request, send_requests};
use crate::channels::runtime::{Deliverer, DeliveryError};
use crate::model::{Action, Button, Channel, CustomerKey};
use crate::store::Store;

/// The longest the worker waits for a chat's pacing before deferring the message.
const MAX_PACING_WAIT: Duration = Duration::from_secs(2);
/// When a deferred message is tried again.
const PACING_RETRY: Duration = Duration::from_secs(10);

/// What the adapter reads of a sent message.
#[derive(Debug, Deserialize)]
struct Sent {
    message_id: i32,
}

/// Delivers Telegram actions.
pub struct TelegramDeliverer {
    api: Api,
    store: Arc<dyn Store>,
    staff_chat: i64,
    pacing: Arc<Pacing>,
    /// Parts already sent of a split text whose later part failed, by the
    /// action's fingerprint: a retry sends only the rest.
    progress: Mutex<HashMap<u64, Vec<i32>>>,
}

impl TelegramDeliverer {
    /// A deliverer posting staff messages to `staff_chat`.
    pub fn new(api: Api, store: Arc<dyn Store>, staff_chat: i64, pacing: Arc<Pacing>) -> Self {
        TelegramDeliverer {
            api,
            store,
            staff_chat,
            pacing,
            progress: Mutex::new(HashMap::new()),
        }
    }

    /// Send a text (split if long) with buttons under it; returns the message ids.
    async fn send(
        &self,
        chat: i64,
        text: &str,
        buttons: &[Button],
        reply_to: Option<i32>,
    ) -> Result<Vec<i32>, DeliveryError> {
        let (requests, long) = send_requests(chat, text, buttons, reply_to);
        if !long.is_empty() {
            let store = self.store.clone();
            state::blocking(move || state::remember_payloads(store.as_ref(), &long))
                .await
                .map_err(|e| DeliveryError::Retry {
                    after: None,
                    reason: e.to_string(),
                })?;
        }
        let fingerprint = fingerprint(chat, text);
        let mut sent = self
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&fingerprint)
            .unwrap_or_default();
        for request in requests.iter().skip(sent.len()) {
            let result = match self.paced(chat).await {
                Ok(()) => self
                    .api
                    .call::<_, Sent>(request)
                    .await
                    .map_err(delivery_error),
                Err(e) => Err(e),
            };
            match result {
                Ok(message) => sent.push(message.message_id),
                Err(e) => {
                    if !sent.is_empty() {
                        self.progress
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(fingerprint, sent);
                    }
                    return Err(e);
                }
            }
        }
        Ok(sent)
    }

    /// Wait for Telegram's limits for `chat`, or defer the message (a retry
    /// for this recipient only) when the chat's window is full.
    async fn paced(&self, chat: i64) -> Result<(), DeliveryError> {
        if self.pacing.within(chat, MAX_PACING_WAIT).await {
            return Ok(());
        }
        Err(DeliveryError::Retry {
            after: Some(PACING_RETRY),
            reason: format!(
                "pacing: chat {chat} is at Telegram's limit; the message waits its turn"
            ),
        })
    }

    async fn ping_of(&self, ticket: u64) -> Option<i32> {
        let store = self.store.clone();
        let chat = self.staff_chat;
        match state::blocking(move || state::ping_of(store.as_ref(), chat, ticket)).await {
            Ok(ping) => ping,
            Err(e) => {
                tracing::warn!(ticket, error = %e, "telegram: cannot read the ping's message id");
                None
            }
        }
    }

    /// Remember messages about `ticket` (and, with `ping`, the last one as its ping).
    /// A failure is logged, not returned: the message is out, and sending it
    /// again would only repeat it.
    async fn remember(&self, ticket: u64, messages: Vec<i32>, ping: bool) {
        let store = self.store.clone();
        let chat = self.staff_chat;
        let result = state::blocking(move || {
            state::remember_messages(store.as_ref(), chat, &messages, ticket)?;
            if ping && let Some(last) = messages.last() {
                state::remember_ping(store.as_ref(), chat, ticket, *last)?;
            }
            Ok(())
        })
        .await;
        if let Err(e) = result {
            tracing::error!(ticket, error = %e, "telegram: cannot remember the ticket's message ids");
        }
    }

    async fn new_ping(
        &self,
        ticket: u64,
        text: &str,
        buttons: &[Button],
    ) -> Result<(), DeliveryError> {
        let ids = self.send(self.staff_chat, text, buttons, None).await?;
        self.remember(ticket, ids, true).await;
        Ok(())
    }

    async fn update_ping(
        &self,
        ticket: u64,
        text: &str,
        buttons: &[Button],
    ) -> Result<(), DeliveryError> {
        let Some(message) = self.ping_of(ticket).await else {
            tracing::debug!(
                ticket,
                "telegram: no ping known for the ticket; posting a new one"
            );
            return self.new_ping(ticket, text, buttons).await;
        };
        let (request, long) = edit_request(self.staff_chat, message, text, buttons);
        if !long.is_empty() {
            let store = self.store.clone();
            state::blocking(move || state::remember_payloads(store.as_ref(), &long))
                .await
                .map_err(|e| DeliveryError::Retry {
                    after: None,
                    reason: e.to_string(),
                })?;
        }
        self.paced(self.staff_chat).await?;
        match self.api.call::<_, serde_json::Value>(&request).await {
            Ok(_) => Ok(()),
            Err(e) if e.says("message is not modified") => Ok(()),
            Err(e) if e.says("message to edit not found") || e.says("message can't be edited") => {
                tracing::info!(ticket, error = %e, "telegram: the ping cannot be edited; posting a new one");
                self.new_ping(ticket, text, buttons).await
            }
            Err(e) => Err(delivery_error(e)),
        }
    }
}

impl Deliverer for TelegramDeliverer {
    fn channel(&self) -> Channel {
        Channel::Telegram
    }

    async fn deliver(&self, action: &Action) -> Result<(), DeliveryError> {
        match action {
            Action::ToCustomer {
                customer,
                address,
                text,
                buttons,
            } => {
                let chat = customer_chat(customer, address)?;
                self.send(chat, text, buttons, None).await.map(|_| ())
            }
            Action::PingStaff {
                ticket,
                text,
                buttons,
                ..
            } => self.new_ping(*ticket, text, buttons).await,
            Action::UpdatePing {
                ticket,
                text,
                buttons,
                ..
            } => self.update_ping(*ticket, text, buttons).await,
            Action::ToStaff { ticket, text, .. } => {
                let reply_to = match ticket {
                    Some(n) => self.ping_of(*n).await,
                    None => None,
                };
                let ids = self.send(self.staff_chat, text, &[], reply_to).await?;
                if let Some(n) = ticket {
                    self.remember(*n, ids, false).await;
                }
                Ok(())
            }
        }
    }
}

/// The chat a customer's messages go to: the address, else the user id.
fn customer_chat(customer: &CustomerKey, address: &str) -> Result<i64, DeliveryError> {
    let raw = if address.trim().is_empty() {
        customer.id.as_str()
    } else {
        address.trim()
    };
    raw.parse().map_err(|_| {
        DeliveryError::Permanent(format!(
            "\"{raw}\" is not a Telegram chat id (customer {customer})"
        ))
    })
}

/// Map a Bot API error to the outbox's rules.
pub fn delivery_error(e: ApiError) -> DeliveryError {
    if e.is_transient() {
        return DeliveryError::Retry {
            after: e.retry_after(),
            reason: e.to_string(),
        };
    }
    if e.is_unauthorized() {
        // The token must be fixed; the messages wait for it.
        return DeliveryError::Retry {
            after: None,
            reason: format!("{e} (the bot token was refused)"),
        };
    }
    if let ApiError::Refused {
        migrate_to_chat_id: Some(new),
        ..
    } = &e
    {
        return DeliveryError::Permanent(format!(
            "{e}: the group is now the supergroup {new}; set FRONTDESK_TELEGRAM_STAFF_CHAT={new}"
        ));
    }
    DeliveryError::Permanent(e.to_string())
}

fn fingerprint(chat: i64, text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in chat.to_le_bytes().iter().chain(text.as_bytes()) {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn refused(status: u16, description: &str, retry_after: Option<u64>) -> ApiError {
        ApiError::Refused {
            method: "sendMessage".into(),
            status,
            description: description.into(),
            retry_after,
            migrate_to_chat_id: None,
        }
    }

    #[test]
    fn errors_map_to_retry_or_permanent() {
        assert_eq!(
            delivery_error(refused(429, "Too Many Requests: retry after 1", Some(1))),
            DeliveryError::Retry {
                after: Some(Duration::from_secs(1)),
                reason: "sendMessage: HTTP 429: Too Many Requests: retry after 1".into()
            }
        );
        assert!(matches!(
            delivery_error(refused(500, "Internal Server Error", None)),
            DeliveryError::Retry { after: None, .. }
        ));
        assert!(matches!(
            delivery_error(ApiError::Network {
                method: "sendMessage".into(),
                message: "connection refused".into()
            }),
            DeliveryError::Retry { .. }
        ));
        assert!(matches!(
            delivery_error(refused(403, "Forbidden: bot was blocked by the user", None)),
            DeliveryError::Permanent(_)
        ));
        assert!(matches!(
            delivery_error(refused(400, "Bad Request: chat not found", None)),
            DeliveryError::Permanent(_)
        ));
        let DeliveryError::Permanent(why) = delivery_error(ApiError::Refused {
            method: "sendMessage".into(),
            status: 400,
            description: "Bad Request: group chat was upgraded to a supergroup chat".into(),
            retry_after: None,
            migrate_to_chat_id: Some(-10_077),
        }) else {
            panic!("migration is permanent");
        };
        assert!(
            why.contains("FRONTDESK_TELEGRAM_STAFF_CHAT=-10077"),
            "{why}"
        );
    }

    #[test]
    fn customer_chats_come_from_the_address_or_the_user_id() {
        let key = CustomerKey::new(Channel::Telegram, "42");
        assert_eq!(customer_chat(&key, "").unwrap(), 42);
        assert_eq!(customer_chat(&key, "43").unwrap(), 43);
        assert!(matches!(
            customer_chat(&CustomerKey::new(Channel::Telegram, "x"), ""),
            Err(DeliveryError::Permanent(_))
        ));
    }
}

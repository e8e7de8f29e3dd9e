//! Engine actions → Discord REST calls: the request bodies as pure functions
//! (tested against the JSON Discord expects), and [`DiscordDeliverer`], which
//! carries one action out and tells the outbox whether to retry.
//!
//! - `ToCustomer` → messages in the customer's DM or support channel (there
//!   prefixed with a mention of the customer, the only mention allowed),
//!   buttons as action rows under the last part.
//! - `PingStaff` → a message in the staff channel with \[Claim\] \[Resolve\],
//!   and a public thread started from it; both ids are kept in meta.
//! - `UpdatePing` → the ping edited (text and buttons).
//! - `ToStaff` → the ticket's thread, else the staff channel (as a reply to
//!   the ticket's ping when there is one).
//!
//! Texts over [`MESSAGE_LIMIT`] characters are split on character boundaries
//! (at a line break or space when there is one); a retried action does not
//! send again the parts already accepted. No message pings anyone but the
//! customer it is for (`@everyone` in a relayed text stays plain text).
//!
//! Failures: HTTP 429, 5xx, 401 and network errors are retried by the outbox;
//! 400, 403 and 404 are permanent. Against discord.com serenity's own rate
//! limiter waits out 429s by Discord's headers before they get here. With
//! another API URL that limiter is off (serenity uses a proxy only then), so a
//! 429 reaches the deliverer, and the outbox waits what Discord asked for
//! ([`retry_after`]). Serenity's error type keeps only the status and
//! Discord's error code and message of a failed call, not the headers nor the
//! body's `retry_after`, so the deliverer sends its calls itself ([`Rest`]):
//! serenity's routes, request bodies and rate limiter, its own reading of the
//! answer.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serenity::all::{
    AutoArchiveDuration, ButtonStyle, ChannelId, CreateActionRow, CreateAllowedMentions,
    CreateButton, CreateInteractionResponse, CreateInteractionResponseMessage, CreateMessage,
    CreateThread, EditMessage, GuildChannel, Message, MessageId, PrivateChannel, UserId,
};
use serenity::http::{Http, LightMethod, Request, Route};

use crate::channels::runtime::{Deliverer, DeliveryError};
use crate::model::{Action, Button, Channel, CustomerKey};
use crate::store::{Store, StoreError};

use super::inbound::Ack;
use super::{DiscordError, Settings, keys, meta_id, meta_set};

/// Discord's limit on a message's text, in characters.
pub const MESSAGE_LIMIT: usize = 2000;
/// Discord's limit on a button's `custom_id`.
pub const CUSTOM_ID_LIMIT: usize = 100;
/// Discord's limit on a button's label.
pub const LABEL_LIMIT: usize = 80;
/// Buttons per action row, and action rows per message.
pub const ROW_LIMIT: usize = 5;
/// Discord's limit on a thread name.
pub const THREAD_NAME_LIMIT: usize = 100;
/// Prefix of a shortened `custom_id` (its payload is in meta).
const SHORT_PREFIX: &str = "fd#";

/// Discord's error code for "a thread has already been created for this message".
const THREAD_EXISTS: i64 = 160004;
/// The shortest wait after a 429, whatever it asks (0 would hammer a server
/// that keeps refusing).
pub const MIN_RETRY_AFTER: Duration = Duration::from_millis(100);
/// The longest wait after a 429: a larger `retry_after` is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// Error bodies larger than this are not read for Discord's code and message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Split `text` into parts of at most `limit` characters, preferring a line
/// break, then a space, in the second half of each part; never inside a
/// character. An empty text is one empty part.
pub fn split_text(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(1);
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some((hard, _)) = rest.char_indices().nth(limit) {
        let window = &rest[..hard];
        let half = window.char_indices().nth(limit / 2).map_or(0, |(i, _)| i);
        let soft = window
            .rfind('\n')
            .filter(|i| *i >= half)
            .or_else(|| window.rfind(' ').filter(|i| *i >= half));
        match soft {
            Some(cut) => {
                parts.push(rest[..cut].to_string());
                rest = &rest[cut + 1..];
            }
            None => {
                parts.push(window.to_string());
                rest = &rest[hard..];
            }
        }
    }
    parts.push(rest.to_string());
    parts
}

/// At most `max` characters, with "…" when cut.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((cut, _)) if text.chars().count() > max => format!("{}…", &text[..cut]),
        _ => text.to_string(),
    }
}

/// The `custom_id` of a button: its payload, or for a payload longer than
/// Discord allows, a short stand-in whose payload is kept in meta.
pub fn custom_id(payload: &str) -> String {
    if payload.len() <= CUSTOM_ID_LIMIT && !is_short_id(payload) {
        return payload.to_string();
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    payload.hash(&mut hasher);
    format!("{SHORT_PREFIX}{:016x}", hasher.finish())
}

/// Whether a `custom_id` is a stand-in made by [`custom_id`].
pub fn is_short_id(custom_id: &str) -> bool {
    custom_id.starts_with(SHORT_PREFIX)
}

/// Buttons as action rows: five to a row, at most five rows (more are left out).
pub fn action_rows(buttons: &[Button]) -> Vec<CreateActionRow> {
    if buttons.len() > ROW_LIMIT * ROW_LIMIT {
        tracing::warn!(
            buttons = buttons.len(),
            "Discord: more buttons than a message can hold; the last ones are left out"
        );
    }
    buttons
        .chunks(ROW_LIMIT)
        .take(ROW_LIMIT)
        .map(|row| {
            CreateActionRow::Buttons(
                row.iter()
                    .map(|b| {
                        let label = if b.label.trim().is_empty() {
                            &b.payload
                        } else {
                            &b.label
                        };
                        let style = if b.payload.starts_with("resolve:") {
                            ButtonStyle::Success
                        } else {
                            ButtonStyle::Primary
                        };
                        CreateButton::new(custom_id(&b.payload))
                            .label(clip(label, LABEL_LIMIT))
                            .style(style)
                    })
                    .collect(),
            )
        })
        .collect()
}

/// Allowed mentions: nobody, or just this user.
fn mentions(user: Option<u64>) -> CreateAllowedMentions {
    match user {
        Some(id) => CreateAllowedMentions::new()
            .users([UserId::new(id)])
            .empty_roles(),
        None => CreateAllowedMentions::new().empty_users().empty_roles(),
    }
}

/// The messages that carry a text (and buttons) to a customer; `mention`:
/// the customer, in a public support channel.
pub fn customer_messages(
    text: &str,
    buttons: &[Button],
    mention: Option<u64>,
) -> Vec<CreateMessage> {
    let text = match mention {
        Some(id) => format!("<@{id}> {text}"),
        None => text.to_string(),
    };
    let parts = split_text(&text, MESSAGE_LIMIT);
    let last = parts.len() - 1;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let m = CreateMessage::new()
                .content(part)
                .allowed_mentions(mentions(if i == 0 { mention } else { None }));
            if i == last && !buttons.is_empty() {
                m.components(action_rows(buttons))
            } else {
                m
            }
        })
        .collect()
}

/// The messages that carry a text to staff; the first replies to `reply_to` (channel, message).
pub fn staff_messages(text: &str, reply_to: Option<(u64, u64)>) -> Vec<CreateMessage> {
    split_text(text, MESSAGE_LIMIT)
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let m = CreateMessage::new()
                .content(part)
                .allowed_mentions(mentions(None));
            match reply_to {
                Some((channel, message)) if i == 0 => {
                    m.reference_message((ChannelId::new(channel), MessageId::new(message)))
                }
                _ => m,
            }
        })
        .collect()
}

/// A ticket's ping: one message (the text clipped to fit) with its buttons.
pub fn ping_message(text: &str, buttons: &[Button]) -> CreateMessage {
    let m = CreateMessage::new()
        .content(clip(text, MESSAGE_LIMIT))
        .allowed_mentions(mentions(None));
    if buttons.is_empty() {
        m
    } else {
        m.components(action_rows(buttons))
    }
}

/// The edit of a ping: new text, new buttons (none: the buttons go).
pub fn ping_edit(text: &str, buttons: &[Button]) -> EditMessage {
    EditMessage::new()
        .content(clip(text, MESSAGE_LIMIT))
        .allowed_mentions(mentions(None))
        .components(action_rows(buttons))
}

/// The thread of a ticket, named after the first line of its ping.
pub fn ticket_thread(ticket: u64, ping_text: &str) -> CreateThread<'static> {
    let first = ping_text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches('🔔')
        .trim();
    let name = if first.contains(&format!("#{ticket}")) {
        first.to_string()
    } else {
        format!("Ticket #{ticket}")
    };
    CreateThread::new(clip(&name, THREAD_NAME_LIMIT))
        .auto_archive_duration(AutoArchiveDuration::OneWeek)
}

/// The response that acknowledges a button press.
pub fn ack_response(ack: &Ack) -> CreateInteractionResponse {
    match ack {
        Ack::RemoveButtons => CreateInteractionResponse::UpdateMessage(
            CreateInteractionResponseMessage::new().components(Vec::new()),
        ),
        Ack::Defer => CreateInteractionResponse::Acknowledge,
        Ack::Ephemeral(text) => CreateInteractionResponse::Message(
            CreateInteractionResponseMessage::new()
                .content(text.clone())
                .ephemeral(true)
                .allowed_mentions(mentions(None)),
        ),
    }
}

/// How long a refused call asks to wait before trying again: the JSON
/// body's `retry_after` (seconds, with fractions, as Discord sends on a 429),
/// else the `Retry-After` header (seconds), else `X-RateLimit-Reset-After`
/// (seconds, with fractions). A value that is not a finite, non-negative
/// number is skipped; the wait is kept within [`MIN_RETRY_AFTER`] and
/// [`MAX_RETRY_AFTER`]. None when nothing says.
pub fn retry_after(
    body: &[u8],
    retry_after_header: Option<&str>,
    reset_after_header: Option<&str>,
) -> Option<Duration> {
    let from_body = (body.len() <= ERROR_BODY_LIMIT)
        .then(|| serde_json::from_slice::<serde_json::Value>(body).ok())
        .flatten()
        .and_then(|v| v.get("retry_after").and_then(serde_json::Value::as_f64));
    let header = |h: Option<&str>| h.and_then(|v| v.trim().parse::<f64>().ok());
    [
        from_body,
        header(retry_after_header),
        header(reset_after_header),
    ]
    .into_iter()
    .flatten()
    .find(|secs| secs.is_finite() && *secs >= 0.0)
    .map(|secs| {
        Duration::try_from_secs_f64(secs)
            .unwrap_or(MAX_RETRY_AFTER)
            .clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER)
    })
}

/// A refusal from Discord, as the deliverer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status.
    pub status: u16,
    /// The request's method.
    pub method: String,
    /// Discord's JSON error code (0 when there is none).
    pub code: i64,
    /// Discord's error message (clipped), or what the body was instead.
    pub message: String,
    /// The wait asked for ([`retry_after`]).
    pub retry_after: Option<Duration>,
}

impl Refusal {
    /// Read an error answer: status, headers and body.
    pub fn read(
        status: u16,
        method: &str,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
    ) -> Refusal {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let json = (body.len() <= ERROR_BODY_LIMIT)
            .then(|| serde_json::from_slice::<serde_json::Value>(body).ok())
            .flatten();
        let code = json
            .as_ref()
            .and_then(|v| v.get("code"))
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        let message = match json
            .as_ref()
            .and_then(|v| v.get("message"))
            .and_then(serde_json::Value::as_str)
        {
            Some(m) => clip(m, 200),
            None if body.is_empty() => "no body".to_string(),
            None => format!("a body of {} bytes that is not Discord's JSON", body.len()),
        };
        Refusal {
            status,
            method: method.to_string(),
            code,
            message,
            retry_after: retry_after(
                body,
                header("retry-after"),
                header("x-ratelimit-reset-after"),
            ),
        }
    }
}

/// Why a REST call of the deliverer failed.
#[derive(Debug)]
pub enum CallError {
    /// Discord answered with an error status.
    Refused(Refusal),
    /// No answer (network), a request that could not be built, or an answer
    /// that did not parse.
    Other(serenity::Error),
}

impl CallError {
    /// The HTTP status, when Discord answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Refused(r) => Some(r.status),
            CallError::Other(e) => super::status(e),
        }
    }

    /// For logs: status and Discord's message, never the URL.
    pub fn describe(&self) -> String {
        match self {
            CallError::Refused(r) => format!(
                "HTTP {} {} (Discord code {}: {})",
                r.status, r.method, r.code, r.message
            ),
            CallError::Other(e) => super::describe(e),
        }
    }
}

impl From<serenity::Error> for CallError {
    fn from(e: serenity::Error) -> Self {
        CallError::Other(e)
    }
}

/// Whether a failed call may succeed later, and when to try again.
pub fn classify(e: &CallError) -> DeliveryError {
    let reason = e.describe();
    match e {
        CallError::Refused(r) => match r.status {
            // 401: a revoked or replaced token; kept until it is fixed.
            401 | 408 | 429 | 500..=599 => DeliveryError::Retry {
                after: r.retry_after,
                reason,
            },
            _ => DeliveryError::Permanent(reason),
        },
        // The request may have been carried out (the answer did not parse):
        // retrying could send it twice.
        CallError::Other(serenity::Error::Json(_) | serenity::Error::Model(_)) => {
            DeliveryError::Permanent(reason)
        }
        CallError::Other(_) => DeliveryError::Retry {
            after: None,
            reason,
        },
    }
}

/// The deliverer's REST calls: serenity's routes, request bodies and (against
/// discord.com) its rate limiter; the answer read here, so that a refusal
/// keeps its status, Discord's code and message, and the wait it asks for.
pub struct Rest {
    http: Arc<Http>,
    /// The client for calls when serenity's rate limiter is off (another API URL).
    direct: reqwest::Client,
}

impl Rest {
    /// Calls through `http`'s token, proxy and rate limiter.
    pub fn new(http: Arc<Http>) -> Result<Rest, DiscordError> {
        let direct = reqwest::Client::builder()
            .use_rustls_tls()
            .build()
            .map_err(|e| DiscordError::Client(e.to_string()))?;
        Ok(Rest { http, direct })
    }

    /// One call with a JSON body; the answer's JSON as `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: LightMethod,
        route: Route<'_>,
        body: &impl Serialize,
    ) -> Result<T, CallError> {
        let body = serde_json::to_vec(body).map_err(serenity::Error::from)?;
        let request = Request::new(route, method).body(Some(body));
        let method_name = method.reqwest_method().to_string();
        let response = match &self.http.ratelimiter {
            Some(limiter) => limiter.perform(request).await?,
            None => {
                let built = request
                    .build(&self.direct, self.http.token(), self.http.proxy.as_deref())?
                    .build()
                    .map_err(serenity::Error::from)?;
                self.direct
                    .execute(built)
                    .await
                    .map_err(serenity::Error::from)?
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(serenity::Error::from)?;
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| CallError::Other(e.into()))
        } else {
            Err(CallError::Refused(Refusal::read(
                status.as_u16(),
                &method_name,
                &headers,
                &bytes,
            )))
        }
    }

    /// `POST /channels/{channel}/messages`.
    pub async fn send_message(
        &self,
        channel: ChannelId,
        message: &CreateMessage,
    ) -> Result<Message, CallError> {
        self.call(
            LightMethod::Post,
            Route::ChannelMessages {
                channel_id: channel,
            },
            message,
        )
        .await
    }

    /// `PATCH /channels/{channel}/messages/{message}`.
    pub async fn edit_message(
        &self,
        channel: ChannelId,
        message: MessageId,
        edit: &EditMessage,
    ) -> Result<Message, CallError> {
        self.call(
            LightMethod::Patch,
            Route::ChannelMessage {
                channel_id: channel,
                message_id: message,
            },
            edit,
        )
        .await
    }

    /// `POST /channels/{channel}/messages/{message}/threads`.
    pub async fn create_thread_from_message(
        &self,
        channel: ChannelId,
        message: MessageId,
        thread: &CreateThread<'_>,
    ) -> Result<GuildChannel, CallError> {
        self.call(
            LightMethod::Post,
            Route::ChannelMessageThreads {
                channel_id: channel,
                message_id: message,
            },
            thread,
        )
        .await
    }

    /// `POST /users/@me/channels`: the DM channel with a user.
    pub async fn create_dm_channel(&self, user: UserId) -> Result<PrivateChannel, CallError> {
        self.call(
            LightMethod::Post,
            Route::UserMeDmChannels,
            &serde_json::json!({ "recipient_id": user }),
        )
        .await
    }
}

fn store_failed(e: StoreError) -> DeliveryError {
    DeliveryError::Retry {
        after: None,
        reason: format!("store: {e}"),
    }
}

/// Carries out the engine's Discord actions over serenity's REST client.
pub struct DiscordDeliverer {
    rest: Rest,
    store: Arc<dyn Store>,
    settings: Arc<Settings>,
    /// Parts of split texts already accepted, by action fingerprint.
    progress: Mutex<HashMap<u64, usize>>,
    /// DM channels opened, by user.
    dms: Mutex<HashMap<u64, u64>>,
}

impl DiscordDeliverer {
    /// A deliverer over serenity's REST client (its token, API URL and rate
    /// limiter) and the store (for the adapter's meta records).
    pub fn new(
        http: Arc<Http>,
        store: Arc<dyn Store>,
        settings: Arc<Settings>,
    ) -> Result<Self, DiscordError> {
        Ok(DiscordDeliverer {
            rest: Rest::new(http)?,
            store,
            settings,
            progress: Mutex::new(HashMap::new()),
            dms: Mutex::new(HashMap::new()),
        })
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, HashMap<u64, usize>> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Send `messages` in order, skipping those a previous attempt got accepted.
    async fn send_all(
        &self,
        key: u64,
        channel: ChannelId,
        messages: Vec<CreateMessage>,
    ) -> Result<(), CallError> {
        let done = self.progress().get(&key).copied().unwrap_or(0);
        for (i, m) in messages.into_iter().enumerate().skip(done) {
            self.rest.send_message(channel, &m).await?;
            self.progress().insert(key, i + 1);
        }
        self.progress().remove(&key);
        Ok(())
    }

    /// The outbox's verdict on a failed send; a permanent one forgets the progress.
    fn failed(&self, key: u64, e: &CallError) -> DeliveryError {
        let verdict = classify(e);
        if matches!(verdict, DeliveryError::Permanent(_)) {
            self.progress().remove(&key);
        }
        verdict
    }

    async fn dm_channel(&self, user: u64) -> Result<u64, DeliveryError> {
        if let Some(c) = self
            .dms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&user)
        {
            return Ok(*c);
        }
        let channel = self
            .rest
            .create_dm_channel(UserId::new(user))
            .await
            .map_err(|e| classify(&e))?;
        let id = channel.id.get();
        self.dms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user, id);
        Ok(id)
    }

    /// Keep the payloads of buttons too long for a `custom_id`.
    async fn remember_payloads(&self, buttons: &[Button]) -> Result<(), DeliveryError> {
        let long: Vec<(String, String)> = buttons
            .iter()
            .map(|b| (custom_id(&b.payload), b.payload.clone()))
            .filter(|(id, payload)| id != payload)
            .map(|(id, payload)| (keys::payload(&id), payload))
            .collect();
        if long.is_empty() {
            return Ok(());
        }
        meta_set(&self.store, long).await.map_err(store_failed)
    }

    async fn to_customer(
        &self,
        key: u64,
        customer: &CustomerKey,
        address: &str,
        text: &str,
        buttons: &[Button],
    ) -> Result<(), DeliveryError> {
        let user: u64 = customer.id.parse().map_err(|_| {
            DeliveryError::Permanent(format!("\"{}\" is not a Discord user id", customer.id))
        })?;
        let channel = match address.parse::<u64>() {
            Ok(c) if c > 0 => c,
            _ => self.dm_channel(user).await?,
        };
        let mention = self
            .settings
            .support_channels
            .contains(&channel)
            .then_some(user);
        self.remember_payloads(buttons).await?;
        self.send_all(
            key,
            ChannelId::new(channel),
            customer_messages(text, buttons, mention),
        )
        .await
        .map_err(|e| self.failed(key, &e))
    }

    async fn ping(&self, ticket: u64, text: &str, buttons: &[Button]) -> Result<(), DeliveryError> {
        let staff = ChannelId::new(self.settings.staff_channel);
        self.remember_payloads(buttons).await?;
        let ping = match meta_id(&self.store, keys::ping(ticket))
            .await
            .map_err(store_failed)?
        {
            Some(id) => id,
            None => {
                let m = self
                    .rest
                    .send_message(staff, &ping_message(text, buttons))
                    .await
                    .map_err(|e| classify(&e))?;
                let id = m.id.get();
                meta_set(&self.store, vec![(keys::ping(ticket), id.to_string())])
                    .await
                    .map_err(store_failed)?;
                id
            }
        };
        if meta_id(&self.store, keys::thread(ticket))
            .await
            .map_err(store_failed)?
            .is_some()
        {
            return Ok(());
        }
        let thread = match self
            .rest
            .create_thread_from_message(staff, MessageId::new(ping), &ticket_thread(ticket, text))
            .await
        {
            Ok(thread) => thread.id.get(),
            Err(CallError::Refused(r)) if r.code == THREAD_EXISTS => {
                // A thread started from a message has the message's id.
                ping
            }
            Err(e) => {
                return match classify(&e) {
                    DeliveryError::Permanent(reason) => {
                        tracing::error!(
                            ticket, %reason,
                            "Discord: could not open the ticket's thread (does the bot have Create Public Threads in the staff channel?); its messages go to the staff channel"
                        );
                        Ok(())
                    }
                    retry => Err(retry),
                };
            }
        };
        meta_set(
            &self.store,
            vec![
                (keys::thread(ticket), thread.to_string()),
                (keys::thread_ticket(thread), ticket.to_string()),
            ],
        )
        .await
        .map_err(store_failed)
    }

    async fn update_ping(
        &self,
        ticket: u64,
        text: &str,
        buttons: &[Button],
    ) -> Result<(), DeliveryError> {
        let staff = ChannelId::new(self.settings.staff_channel);
        self.remember_payloads(buttons).await?;
        if let Some(id) = meta_id(&self.store, keys::ping(ticket))
            .await
            .map_err(store_failed)?
        {
            match self
                .rest
                .edit_message(staff, MessageId::new(id), &ping_edit(text, buttons))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if e.status() == Some(404) => {
                    tracing::warn!(
                        ticket,
                        "Discord: the ticket's ping is gone; posting it again"
                    );
                }
                Err(e) => return Err(classify(&e)),
            }
        }
        let m = self
            .rest
            .send_message(staff, &ping_message(text, buttons))
            .await
            .map_err(|e| classify(&e))?;
        meta_set(
            &self.store,
            vec![(keys::ping(ticket), m.id.get().to_string())],
        )
        .await
        .map_err(store_failed)
    }

    async fn to_staff(
        &self,
        key: u64,
        ticket: Option<u64>,
        text: &str,
    ) -> Result<(), DeliveryError> {
        let staff = self.settings.staff_channel;
        if let Some(t) = ticket
            && let Some(thread) = meta_id(&self.store, keys::thread(t))
                .await
                .map_err(store_failed)?
        {
            match self
                .send_all(key, ChannelId::new(thread), staff_messages(text, None))
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) if matches!(e.status(), Some(403 | 404)) => {
                    tracing::warn!(
                        ticket = t, error = %e.describe(),
                        "Discord: cannot post in the ticket's thread; posting in the staff channel"
                    );
                    self.progress().remove(&key);
                }
                Err(e) => return Err(self.failed(key, &e)),
            }
        }
        let reply_to = match ticket {
            Some(t) => meta_id(&self.store, keys::ping(t))
                .await
                .map_err(store_failed)?
                .map(|ping| (staff, ping)),
            None => None,
        };
        self.send_all(key, ChannelId::new(staff), staff_messages(text, reply_to))
            .await
            .map_err(|e| self.failed(key, &e))
    }
}

/// Identifies an action across retries (for the progress of split texts).
fn fingerprint(action: &Action) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(action)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

impl Deliverer for DiscordDeliverer {
    fn channel(&self) -> Channel {
        Channel::Discord
    }

    async fn deliver(&self, action: &Action) -> Result<(), DeliveryError> {
        match action {
            Action::ToCustomer {
                customer,
                address,
                text,
                buttons,
            } => {
                self.to_customer(fingerprint(action), customer, address, text, buttons)
                    .await
            }
            Action::PingStaff {
                ticket,
                text,
                buttons,
                ..
            } => self.ping(*ticket, text, buttons).await,
            Action::UpdatePing {
                ticket,
                text,
                buttons,
                ..
            } => self.update_ping(*ticket, text, buttons).await,
            Action::ToStaff { ticket, text, .. } => {
                self.to_staff(fingerprint(action), *ticket, text).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn body(m: &impl serde::Serialize) -> Value {
        serde_json::to_value(m).unwrap()
    }

    #[test]
    fn split_keeps_every_character_and_the_limit() {
        assert_eq!(split_text("hello", 2000), vec!["hello"]);
        assert_eq!(split_text("", 2000), vec![""]);
        let long = "ñ".repeat(4500);
        let parts = split_text(&long, 2000);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.chars().count() <= 2000));
        assert_eq!(parts.concat(), long);
        // Prefers a line break or a space in the second half.
        let text = format!("{}\n{}", "a".repeat(1500), "b".repeat(1000));
        assert_eq!(
            split_text(&text, 2000),
            vec!["a".repeat(1500), "b".repeat(1000)]
        );
        let words = "word ".repeat(1000);
        let parts = split_text(words.trim_end(), 2000);
        assert!(
            parts
                .iter()
                .all(|p| p.chars().count() <= 2000 && !p.starts_with(' '))
        );
        assert_eq!(parts.join(" "), words.trim_end());
        // Emoji (4 bytes each) are never cut.
        let emoji = "😀".repeat(2001);
        let parts = split_text(&emoji, 2000);
        assert_eq!(parts, vec!["😀".repeat(2000), "😀".to_string()]);
    }

    #[test]
    fn customer_message_with_buttons_is_discords_json() {
        let buttons = vec![
            Button::new("Yes", "yes"),
            Button::new("No, talk to a person", "no"),
        ];
        let messages = customer_messages("Did that answer your question?", &buttons, None);
        assert_eq!(messages.len(), 1);
        let b = body(&messages[0]);
        assert_eq!(b["content"], "Did that answer your question?");
        assert_eq!(
            b["components"],
            json!([{
                "type": 1,
                "components": [
                    {"type": 2, "style": 1, "label": "Yes", "custom_id": "yes", "disabled": false},
                    {"type": 2, "style": 1, "label": "No, talk to a person", "custom_id": "no", "disabled": false}
                ]
            }])
        );
        assert_eq!(
            b["allowed_mentions"],
            json!({"parse": [], "users": [], "roles": []})
        );
    }

    #[test]
    fn support_channel_answers_mention_only_the_customer() {
        let messages = customer_messages("We ship in 2 days.", &[], Some(523456789012345678));
        let b = body(&messages[0]);
        assert_eq!(b["content"], "<@523456789012345678> We ship in 2 days.");
        assert_eq!(
            b["allowed_mentions"],
            json!({"parse": [], "users": ["523456789012345678"], "roles": []})
        );
        assert!(b.get("components").is_none());
    }

    #[test]
    fn long_text_is_split_with_buttons_on_the_last_part() {
        let text = "x".repeat(4100);
        let messages = customer_messages(&text, &[Button::new("1", "rate:1")], None);
        assert_eq!(messages.len(), 3);
        assert!(body(&messages[0]).get("components").is_none());
        assert!(body(&messages[2])["components"].is_array());
    }

    #[test]
    fn many_buttons_make_rows_of_five() {
        let buttons: Vec<Button> = (0..=10)
            .map(|n| Button::new(n.to_string(), format!("rate:{n}")))
            .collect();
        let rows = body(&action_rows(&buttons));
        let sizes: Vec<usize> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["components"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, vec![5, 5, 1]);
    }

    #[test]
    fn long_payloads_and_labels_fit_discords_limits() {
        let payload = format!("intent:{}", "x".repeat(120));
        let id = custom_id(&payload);
        assert!(is_short_id(&id) && id.len() <= CUSTOM_ID_LIMIT);
        assert_eq!(custom_id(&payload), id, "stable");
        assert_eq!(custom_id("intent:hours"), "intent:hours");
        let rows = body(&action_rows(&[Button::new("L".repeat(100), payload)]));
        let button = &rows[0]["components"][0];
        assert_eq!(button["custom_id"], id);
        assert_eq!(
            button["label"].as_str().unwrap().chars().count(),
            LABEL_LIMIT
        );
    }

    #[test]
    fn ping_edit_and_thread() {
        let text = "🔔 Ticket #3 — asked for a person\nCustomer: María";
        let buttons = vec![
            Button::new("Claim", "claim:3"),
            Button::new("Resolve", "resolve:3"),
        ];
        let b = body(&ping_message(text, &buttons));
        assert_eq!(b["content"], text);
        assert_eq!(b["components"][0]["components"][1]["style"], 3);
        assert_eq!(b["allowed_mentions"]["parse"], json!([]));
        let e = body(&ping_edit("resolved", &[]));
        assert_eq!(e["content"], "resolved");
        assert_eq!(
            e["components"],
            json!([]),
            "a resolved ticket's ping loses its buttons"
        );
        let t = body(&ticket_thread(3, text));
        assert_eq!(t["name"], "Ticket #3 — asked for a person");
        assert_eq!(t["auto_archive_duration"], 10080);
        assert_eq!(body(&ticket_thread(4, ""))["name"], "Ticket #4");
        assert!(
            body(&ping_message(&"y".repeat(3000), &[]))["content"]
                .as_str()
                .unwrap()
                .chars()
                .count()
                <= MESSAGE_LIMIT
        );
    }

    #[test]
    fn staff_relay_replies_to_the_ping_when_there_is_no_thread() {
        let b = body(&staff_messages("#1 María: hi @everyone", Some((200, 77)))[0]);
        assert_eq!(b["content"], "#1 María: hi @everyone");
        assert_eq!(b["message_reference"]["message_id"], "77");
        assert_eq!(b["allowed_mentions"]["parse"], json!([]));
    }

    #[test]
    fn acknowledgements() {
        assert_eq!(
            body(&ack_response(&Ack::RemoveButtons)),
            json!({"type": 7, "data": {"components": [], "attachments": []}})
        );
        assert_eq!(
            body(&ack_response(&Ack::Defer)),
            json!({"type": 6, "data": null})
        );
        let e = body(&ack_response(&Ack::Ephemeral("no".into())));
        assert_eq!(e["type"], 4);
        assert_eq!(e["data"]["flags"], 64);
    }

    #[test]
    fn retry_after_prefers_the_body_then_the_headers_and_keeps_within_bounds() {
        let ms = Duration::from_millis;
        let limited =
            br#"{"message": "You are being rate limited.", "retry_after": 2.5, "global": false}"#;
        assert_eq!(
            retry_after(limited, Some("3"), Some("2.500")),
            Some(ms(2500))
        );
        assert_eq!(retry_after(b"", Some("7"), Some("6.2")), Some(ms(7000)));
        assert_eq!(retry_after(b"<html>", None, Some("1.25")), Some(ms(1250)));
        assert_eq!(retry_after(b"{}", None, None), None);
        // Hostile or broken values are skipped, not obeyed.
        for body in [
            &br#"{"retry_after": -3}"#[..],
            br#"{"retry_after": "soon"}"#,
            br#"{"retry_after": null}"#,
            b"not json",
        ] {
            assert_eq!(retry_after(body, Some(" 4 "), None), Some(ms(4000)));
            assert_eq!(retry_after(body, Some("NaN"), Some("-1")), None);
        }
        assert_eq!(retry_after(b"", Some("inf"), Some("9")), Some(ms(9000)));
        // Too long is cut to the bound, zero waits a little.
        let huge = br#"{"retry_after": 1e300}"#;
        assert_eq!(retry_after(huge, None, None), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after(b"", Some("99999999"), None),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            retry_after(br#"{"retry_after": 0}"#, None, None),
            Some(MIN_RETRY_AFTER)
        );
        // A huge body is not parsed.
        let mut big = br#"{"retry_after": 2, "pad": ""#.to_vec();
        big.extend(std::iter::repeat_n(b'x', 100_000));
        big.extend(br#""}"#);
        assert_eq!(retry_after(&big, Some("5"), None), Some(ms(5000)));
    }

    #[test]
    fn a_refusal_keeps_status_code_message_and_wait() {
        use reqwest::header::{HeaderMap, HeaderValue};
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("1"));
        headers.insert("x-ratelimit-reset-after", HeaderValue::from_static("0.750"));
        let r = Refusal::read(
            429,
            "POST",
            &headers,
            br#"{"message": "You are being rate limited.", "retry_after": 0.75, "global": false}"#,
        );
        assert_eq!(r.code, 0);
        assert_eq!(r.retry_after, Some(Duration::from_millis(750)));
        let verdict = classify(&CallError::Refused(r));
        assert_eq!(
            verdict,
            DeliveryError::Retry {
                after: Some(Duration::from_millis(750)),
                reason: "HTTP 429 POST (Discord code 0: You are being rate limited.)".into()
            }
        );
        let r = Refusal::read(
            400,
            "POST",
            &HeaderMap::new(),
            br#"{"message": "A thread has already been created for this message", "code": 160004}"#,
        );
        assert_eq!(r.code, THREAD_EXISTS);
        assert!(matches!(
            classify(&CallError::Refused(r)),
            DeliveryError::Permanent(_)
        ));
        // A proxy's HTML page: neither echoed nor trusted.
        let html = format!("<html>{}</html>", "x".repeat(5000));
        let r = Refusal::read(502, "PATCH", &HeaderMap::new(), html.as_bytes());
        assert_eq!(r.message, "a body of 5013 bytes that is not Discord's JSON");
        assert!(matches!(
            classify(&CallError::Refused(r)),
            DeliveryError::Retry { after: None, .. }
        ));
        let long = format!(r#"{{"message": "{}", "code": 50035}}"#, "m".repeat(1000));
        let r = Refusal::read(400, "POST", &HeaderMap::new(), long.as_bytes());
        assert_eq!(r.message.chars().count(), 200);
    }

    #[test]
    fn clip_counts_characters() {
        assert_eq!(clip("héllo", 10), "héllo");
        assert_eq!(clip("héllo", 3), "hé…");
        assert_eq!(clip("héllo", 5), "héllo");
    }
}

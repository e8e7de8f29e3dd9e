//! The Telegram channel: customers write to the bot in private chats, staff
//! work in one group. It owns everything Telegram-specific between the Bot
//! API and the engine:
//!
//! - [`run`]: starts up (`getMe` for the bot's @username, `deleteWebhook` when a
//!   webhook is set), then long-polls `getUpdates` itself so that it controls
//!   the offset: each update is handled by the engine under the event id
//!   `tg:<bot id>:<update id>` (its effects and that id are one atomic write),
//!   and only then is the next offset stored. A crash between the two makes
//!   Telegram send the update again, and the engine skips it. Polling errors
//!   are retried with the adapter's own backoff; the shutdown signal stops
//!   polling, lets the update in hand finish and stops the outbox worker.
//! - [`translate`]: updates → engine events and actions → Bot API requests,
//!   as pure functions.
//! - [`TelegramDeliverer`]: the outbox worker's hands on Telegram.
//! - [`Pacing`]: Telegram's limits, kept by waiting.
//! - The Bot API client ([`Api`]): teloxide's payloads and types, sent through
//!   teloxide's HTTP client; no request URL and no token ever reaches a log
//!   line or an error.

mod api;
mod deliver;
mod state;
pub mod translate;

pub use api::{Api, ApiError};
pub use deliver::{TelegramDeliverer, delivery_error};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use teloxide::payloads::{DeleteWebhook, GetMe, GetUpdates, GetWebhookInfo};
use teloxide::types::AllowedUpdate;
use tokio::task::JoinHandle;

use crate::channels::runtime::{Dispatcher, RateLimiter, Shutdown, run_outbox};
use crate::config::{Secret, TelegramConfig};
use crate::engine::EngineError;
use crate::model::Channel;
use crate::store::{Store, StoreError};

/// Telegram's own Bot API server.
pub const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// What the Telegram channel needs to run.
#[derive(Debug, Clone)]
pub struct TelegramSettings {
    /// The bot token (never shown).
    pub token: Secret,
    /// The staff group's chat id.
    pub staff_chat: i64,
    /// Users who act as staff in private chats too.
    pub staff_ids: Vec<u64>,
    /// The Bot API server's base URL.
    pub api_url: String,
    /// How long one `getUpdates` long poll waits for updates.
    pub poll_timeout: Duration,
    /// Time limit of one Bot API call (a long poll gets its poll time on top).
    pub request_timeout: Duration,
    /// First wait after a failed poll; it doubles with each failure in a row…
    pub retry_min: Duration,
    /// …up to this.
    pub retry_max: Duration,
}

impl TelegramSettings {
    /// Settings from the `[telegram]` configuration (with its environment
    /// overrides applied), with production timings.
    pub fn from_config(config: &TelegramConfig) -> Result<TelegramSettings, TelegramError> {
        if config.token.is_empty() {
            return Err(TelegramError::Misconfigured(
                "no bot token: set FRONTDESK_TELEGRAM_TOKEN to the token @BotFather gave you"
                    .into(),
            ));
        }
        let token = config.token.expose().trim();
        let well_formed = token.split_once(':').is_some_and(|(id, secret)| {
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && !secret.is_empty()
        }) && !token.contains(char::is_whitespace);
        if !well_formed {
            return Err(TelegramError::Misconfigured(
                "FRONTDESK_TELEGRAM_TOKEN does not look like a bot token (digits, a colon, then the secret, as @BotFather gives it)".into(),
            ));
        }
        let Some(staff_chat) = config.staff_chat else {
            return Err(TelegramError::Misconfigured(
                "no staff group: set FRONTDESK_TELEGRAM_STAFF_CHAT (or staff_chat in [telegram]) to the staff group's chat id, e.g. -1001234567890; README.md says how to find it".into(),
            ));
        };
        let api_url = config
            .api_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .unwrap_or(DEFAULT_API_URL)
            .to_string();
        Ok(TelegramSettings {
            token: Secret::new(token),
            staff_chat,
            staff_ids: config.staff_ids.clone(),
            api_url,
            poll_timeout: Duration::from_secs(25),
            request_timeout: Duration::from_secs(30),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        })
    }

    /// The wait after `failures` failed attempts in a row.
    fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.retry_min.saturating_mul(factor).min(self.retry_max)
    }
}

/// Why the Telegram channel stopped.
#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    /// The settings are incomplete or wrong.
    #[error("{0}")]
    Misconfigured(String),
    /// The Bot API refused the token.
    #[error(
        "the Bot API refused the bot token ({0}): check FRONTDESK_TELEGRAM_TOKEN (the token @BotFather gave you)"
    )]
    Unauthorized(ApiError),
    /// The engine failed on an update; the update was not confirmed and comes again at the next start.
    #[error("{0} (the update will be handled again at the next start)")]
    Engine(#[from] EngineError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Telegram's limits, kept by waiting: at most 30 messages a second overall;
/// to one group at most 20 a minute; to one private chat at most 10 in any
/// 10 seconds (Telegram asks for about one a second and tolerates short
/// bursts, and one customer event makes up to three messages). The
/// deliverer waits at most a moment for a chat and otherwise defers the
/// message, so a full staff-group window does not hold up customers' replies.
pub struct Pacing {
    overall: RateLimiter,
    groups: RateLimiter,
    private: RateLimiter,
}

impl Pacing {
    /// Telegram's limits.
    pub fn telegram() -> Pacing {
        Pacing {
            overall: RateLimiter::new(30, usize::MAX, Duration::from_secs(1)),
            groups: RateLimiter::new(u32::MAX, 20, Duration::from_secs(60)),
            private: RateLimiter::new(u32::MAX, 10, Duration::from_secs(10)),
        }
    }

    /// Wait until a message to `chat` (groups have negative ids) is within the limits.
    pub async fn wait(&self, chat: i64) {
        let key = chat.to_string();
        if chat < 0 {
            self.groups.wait(&key).await;
        } else {
            self.private.wait(&key).await;
        }
        self.overall.wait("all").await;
    }

    /// Wait for the overall limit only (edits of keyboards).
    pub async fn wait_overall(&self) {
        self.overall.wait("all").await;
    }

    /// Like [`Pacing::wait`], but give up after `max`: true when the message
    /// may go now. (The outbox worker is one queue: a chat at its limit is
    /// retried later rather than holding every other chat up.)
    pub async fn within(&self, chat: i64, max: Duration) -> bool {
        // Cancelling a wait records nothing: the limiter counts a send only when it lets it go.
        tokio::time::timeout(max, self.wait(chat)).await.is_ok()
    }
}

/// What the adapter reads of `getMe`.
#[derive(Debug, Clone, Deserialize)]
struct Me {
    id: u64,
    #[serde(default)]
    username: Option<String>,
}

/// What the adapter reads of `getWebhookInfo`.
#[derive(Debug, Deserialize)]
struct WebhookInfo {
    #[serde(default)]
    url: String,
}

/// Run the Telegram channel until `shutdown`: poll updates into the engine
/// through `dispatcher`, and deliver the engine's Telegram actions from the
/// outbox.
pub async fn run(
    settings: TelegramSettings,
    dispatcher: Dispatcher,
    shutdown: Shutdown,
) -> Result<(), TelegramError> {
    let api = Api::new(
        settings.token.expose(),
        &settings.api_url,
        settings.request_timeout,
    )
    .map_err(TelegramError::Misconfigured)?;
    let mut stop = shutdown.clone();
    let Some(me) = retrying(&settings, &mut stop, "getMe", || async {
        api.call::<_, Me>(&GetMe::new()).await
    })
    .await?
    else {
        return Ok(());
    };
    let username = me.username.clone().unwrap_or_default();
    tracing::info!(bot = %username, staff_chat = settings.staff_chat, "telegram: connected");
    let Some(webhook) = retrying(&settings, &mut stop, "getWebhookInfo", || async {
        api.call::<_, WebhookInfo>(&GetWebhookInfo::new()).await
    })
    .await?
    else {
        return Ok(());
    };
    if !webhook.url.is_empty() {
        tracing::info!("telegram: a webhook is set; deleting it to use long polling");
        if retrying(&settings, &mut stop, "deleteWebhook", || async {
            api.call::<_, Value>(&DeleteWebhook::new()).await
        })
        .await?
        .is_none()
        {
            return Ok(());
        }
    }

    let store = dispatcher.store();
    let pacing = Arc::new(Pacing::telegram());
    let (stop_worker, worker_shutdown) = Shutdown::new();
    let worker = tokio::spawn(run_outbox(
        TelegramDeliverer::new(
            api.clone(),
            store.clone(),
            settings.staff_chat,
            pacing.clone(),
        ),
        store.clone(),
        dispatcher.waker(Channel::Telegram),
        worker_shutdown,
    ));
    let poller = Poller {
        api,
        settings: Arc::new(settings),
        dispatcher,
        store,
        pacing,
        me: Me {
            username: Some(username),
            ..me
        },
    };
    let polled = poller.run(shutdown, &worker).await;
    stop_worker.trigger();
    let delivered = worker
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    tracing::info!("telegram: stopped");
    polled?;
    Ok(delivered?)
}

/// Call `f` until it succeeds, backing off on errors; None at shutdown.
async fn retrying<T, F, Fut>(
    settings: &TelegramSettings,
    shutdown: &mut Shutdown,
    what: &str,
    mut f: F,
) -> Result<Option<T>, TelegramError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let mut failures = 0;
    loop {
        let result = tokio::select! {
            r = f() => r,
            _ = shutdown.wait() => return Ok(None),
        };
        match result {
            Ok(v) => return Ok(Some(v)),
            Err(e) if e.is_unauthorized() => return Err(TelegramError::Unauthorized(e)),
            Err(e) => {
                failures += 1;
                let wait = settings.backoff(failures);
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "telegram: {what} failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.wait() => return Ok(None),
                }
            }
        }
    }
}

struct Poller {
    api: Api,
    settings: Arc<TelegramSettings>,
    dispatcher: Dispatcher,
    store: Arc<dyn Store>,
    pacing: Arc<Pacing>,
    me: Me,
}

impl Poller {
    async fn run(
        &self,
        mut shutdown: Shutdown,
        worker: &JoinHandle<Result<(), StoreError>>,
    ) -> Result<(), TelegramError> {
        let store = self.store.clone();
        let bot = self.me.id;
        let mut offset = state::blocking(move || state::offset(store.as_ref(), bot)).await?;
        let mut failures: u32 = 0;
        loop {
            if shutdown.is_triggered() || worker.is_finished() {
                return Ok(());
            }
            let request = GetUpdates {
                offset: offset.and_then(|o| i32::try_from(o).ok()),
                limit: Some(100),
                timeout: Some(self.settings.poll_timeout.as_secs() as u32),
                allowed_updates: Some(vec![
                    AllowedUpdate::Message,
                    AllowedUpdate::EditedMessage,
                    AllowedUpdate::CallbackQuery,
                ]),
            };
            let limit = self.settings.poll_timeout + self.settings.request_timeout;
            let polled = tokio::select! {
                r = self.api.call_with_timeout::<_, Vec<Value>>(&request, limit) => r,
                _ = shutdown.wait() => return Ok(()),
            };
            let updates = match polled {
                Ok(updates) => {
                    failures = 0;
                    updates
                }
                Err(e) if e.is_unauthorized() => return Err(TelegramError::Unauthorized(e)),
                Err(e) => {
                    if e.status() == Some(409) && e.says("webhook") {
                        tracing::info!("telegram: a webhook was set meanwhile; deleting it");
                        if let Err(e) = self.api.call::<_, Value>(&DeleteWebhook::new()).await {
                            tracing::warn!(error = %e, "telegram: deleteWebhook failed");
                        }
                    } else if e.status() == Some(409) {
                        tracing::error!(error = %e, "telegram: another program polls updates with this bot token; stop it (only one frontdesk per bot)");
                    }
                    failures += 1;
                    let wait = self.settings.backoff(failures);
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "telegram: getUpdates failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.wait() => return Ok(()),
                    }
                    continue;
                }
            };
            let mut updates: Vec<(u64, Value)> = updates
                .into_iter()
                .filter_map(|raw| match translate::update_id(&raw) {
                    Some(id) => Some((id, raw)),
                    None => {
                        tracing::warn!("telegram: an update without update_id; skipped");
                        None
                    }
                })
                .collect();
            updates.sort_by_key(|(id, _)| *id);
            for (id, raw) in updates {
                if offset.is_some_and(|o| (id as i64) < o) {
                    continue; // confirmed before: the server sent it again
                }
                self.handle(id, raw).await?;
                let next = id as i64 + 1;
                let store = self.store.clone();
                state::blocking(move || state::set_offset(store.as_ref(), bot, next)).await?;
                offset = Some(next);
                if shutdown.is_triggered() {
                    // The update in hand is done; the rest come again at the next start.
                    return Ok(());
                }
            }
        }
    }

    /// Handle one update: the engine event, then the callback answer, the
    /// keyboard removal and a notice (best effort: the event is committed).
    async fn handle(&self, id: u64, raw: Value) -> Result<(), TelegramError> {
        let store = self.store.clone();
        let settings = self.settings.clone();
        let username = self.me.username.clone().unwrap_or_default();
        let translated = tokio::task::spawn_blocking(move || {
            let ctx = translate::Context {
                staff_chat: settings.staff_chat,
                staff_ids: &settings.staff_ids,
                bot_username: &username,
            };
            translate::translate(&raw, &ctx, &state::StoreLookup(store.as_ref()))
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        if let Some(ignored) = &translated.ignored {
            if ignored.notable {
                tracing::info!(update = id, "telegram: ignored {}", ignored.why);
            } else {
                tracing::debug!(update = id, "telegram: ignored {}", ignored.why);
            }
        }
        if let Some(inbound) = translated.inbound {
            let event = format!("tg:{}:{id}", self.me.id);
            let out = self.dispatcher.handle(Some(event), inbound).await?;
            tracing::debug!(update = id, actions = out.len(), "telegram: update handled");
        }
        if let Some(callback) = &translated.answer_callback {
            self.best_effort(
                "answerCallbackQuery",
                self.api
                    .call::<_, Value>(&translate::answer_request(callback)),
            )
            .await;
        }
        if let Some((chat, message)) = translated.clear_keyboard {
            self.pacing.wait_overall().await;
            let request = translate::clear_keyboard_request(chat, message);
            self.best_effort(
                "editMessageReplyMarkup",
                self.api.call::<_, Value>(&request),
            )
            .await;
        }
        if let Some(notice) = &translated.notice {
            // Best effort, and polling must not wait out the group's window.
            if self
                .pacing
                .within(notice.chat, Duration::from_secs(2))
                .await
            {
                let request = translate::notice_request(notice);
                self.best_effort("sendMessage", self.api.call::<_, Value>(&request))
                    .await;
            } else {
                tracing::info!(
                    "telegram: the staff group is at Telegram's limit; a notice was skipped"
                );
            }
        }
        Ok(())
    }

    async fn best_effort(&self, what: &str, call: impl Future<Output = Result<Value, ApiError>>) {
        if let Err(e) = call.await {
            if e.says("message is not modified") || e.says("query is too old") {
                tracing::debug!(error = %e, "telegram: {what} not needed");
            } else {
                tracing::warn!(error = %e, "telegram: {what} failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(token: &str, staff_chat: Option<i64>) -> TelegramConfig {
        TelegramConfig {
            token: Secret::new(token),
            staff_chat,
            api_url: None,
            staff_ids: vec![7],
        }
    }

    #[test]
    fn settings_need_a_token_and_a_staff_group() {
        let s = TelegramSettings::from_config(&config("123:abc", Some(-100))).unwrap();
        assert_eq!(s.api_url, DEFAULT_API_URL);
        assert_eq!(s.staff_ids, vec![7]);
        let e = TelegramSettings::from_config(&config("123:abc", None)).unwrap_err();
        assert!(
            e.to_string().contains("FRONTDESK_TELEGRAM_STAFF_CHAT"),
            "{e}"
        );
        let e = TelegramSettings::from_config(&config("not a token", Some(-100))).unwrap_err();
        assert!(e.to_string().contains("FRONTDESK_TELEGRAM_TOKEN"), "{e}");
        assert!(!e.to_string().contains("not a token"), "{e}");
        let shown = format!("{s:?}");
        assert!(!shown.contains("abc"), "{shown}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_group_at_its_limit_is_deferred_not_waited_for() {
        let pacing = Pacing::telegram();
        let start = tokio::time::Instant::now();
        for _ in 0..20 {
            assert!(pacing.within(-100, Duration::from_secs(2)).await);
        }
        assert!(!pacing.within(-100, Duration::from_secs(2)).await);
        assert!(start.elapsed() < Duration::from_secs(5));
        // Other chats are not held up.
        assert!(pacing.within(42, Duration::from_secs(2)).await);
        // A minute later the group has room again.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(pacing.within(-100, Duration::from_secs(2)).await);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let mut s = TelegramSettings::from_config(&config("1:a", Some(-1))).unwrap();
        s.retry_min = Duration::from_millis(100);
        s.retry_max = Duration::from_millis(500);
        assert_eq!(s.backoff(1), Duration::from_millis(100));
        assert_eq!(s.backoff(2), Duration::from_millis(200));
        assert_eq!(s.backoff(3), Duration::from_millis(400));
        assert_eq!(s.backoff(30), Duration::from_millis(500));
    }
}

//! The Discord channel: customers in DMs and support channels, staff in one
//! staff channel with a thread per ticket, through serenity's gateway client
//! and REST API.
//!
//! This module owns the Discord side of frontdesk and nothing else:
//!
//! - [`run`]: connects (REST check of the token and the staff channel, then the
//!   gateway with only the intents listed in [`INTENTS`]), feeds gateway events
//!   to the engine through the [`Dispatcher`], delivers the engine's Discord
//!   actions from the persistent outbox with [`DiscordDeliverer`], and stops on
//!   the [`Shutdown`] signal.
//! - [`inbound`]: gateway event → engine event, as pure functions.
//! - [`outbound`]: engine action → REST request bodies (pure), and the deliverer.
//!
//! No serenity type reaches the engine. Events are handled once (event ids
//! `dc:msg:<message id>` and `dc:int:<interaction id>` in the store) and in
//! the order Discord created them: serenity runs every event handler in its
//! own task, so events pass through a short re-ordering queue keyed by their
//! snowflake id before they reach the engine.
//!
//! The adapter keeps its own small state in the store's meta records: the
//! ping message and thread of each ticket (and the ticket of each thread), and
//! the payloads of buttons too long for a Discord `custom_id`.

pub mod inbound;
pub mod outbound;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serenity::all::{
    ChannelId, Client, ClientBuilder, Command, CommandInteraction, ComponentInteraction, Context,
    CreateCommand, CreateMessage, EventHandler, GatewayIntents, HttpBuilder, Interaction, Message,
    MessageId, Ready,
};
use serenity::gateway::GatewayError;
use serenity::http::Http;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::config::DiscordConfig;
use crate::store::{Store, StoreError};

use super::runtime::{Dispatcher, Shutdown, run_outbox};
pub use inbound::{Ack, Decision, Place};
pub use outbound::DiscordDeliverer;

/// The gateway intents frontdesk asks for, and nothing more:
/// `GUILD_MESSAGES` (messages in the support channels, the staff channel and
/// the ticket threads), `DIRECT_MESSAGES` (customers' DMs) and the privileged
/// `MESSAGE_CONTENT` (without it Discord sends guild messages with empty text).
/// Button presses (interactions) need no intent.
pub const INTENTS: GatewayIntents = GatewayIntents::GUILD_MESSAGES
    .union(GatewayIntents::DIRECT_MESSAGES)
    .union(GatewayIntents::MESSAGE_CONTENT);

/// How long an event waits in the re-ordering queue for events Discord
/// created before it (serenity may run the handlers of a burst out of order).
pub const REORDER_WINDOW: Duration = Duration::from_millis(30);

/// How long shutdown waits for serenity's shard runner to close the gateway.
const SHARD_STOP_WAIT: Duration = Duration::from_secs(8);

/// Why the Discord channel cannot run.
#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    /// The configuration is incomplete or wrong.
    #[error("{0}")]
    Config(String),
    /// Discord refused the token.
    #[error(
        "Discord refused the bot token (HTTP 401): set FRONTDESK_DISCORD_TOKEN to the token from the developer portal's Bot page (Reset Token), not the application's client secret"
    )]
    Unauthorized,
    /// The staff channel is missing or hidden from the bot.
    #[error(
        "the staff channel {channel} cannot be used: {reason}. Check FRONTDESK_DISCORD_STAFF_CHANNEL (right-click the channel → Copy Channel ID, with Developer Mode on) and give the bot View Channel there"
    )]
    StaffChannel {
        /// The configured id.
        channel: u64,
        /// What Discord said.
        reason: String,
    },
    /// A REST call at startup got an error answer that neither says the
    /// token is wrong nor may pass by waiting (a 404 from a wrong API base
    /// URL, a 400).
    #[error(
        "Discord's API{where_} answered the startup check with an error: {reason}. Check the API base URL (api_url in [discord]; leave it unset for discord.com) and the bot's setup"
    )]
    Refused {
        /// " at `<url>`" when another base URL is configured.
        where_: String,
        /// What Discord (or the server at that URL) said.
        reason: String,
    },
    /// A REST call at startup failed.
    #[error("cannot reach Discord's API{where_}: {reason}")]
    Unreachable {
        /// " at `<url>`" when another base URL is configured.
        where_: String,
        /// What failed.
        reason: String,
    },
    /// The gateway refused the privileged message-content intent.
    #[error(
        "Discord refused the gateway intents: enable MESSAGE CONTENT INTENT in the developer portal (your application → Bot → Privileged Gateway Intents) and restart"
    )]
    DisallowedIntents,
    /// The gateway connection failed for good.
    #[error("the Discord gateway stopped: {0}")]
    Gateway(String),
    /// The HTTP client for the REST calls cannot be set up.
    #[error("cannot set up the HTTP client for Discord: {0}")]
    Client(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The Discord channel's settings, checked from [`DiscordConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The staff channel's id.
    pub staff_channel: u64,
    /// Channels where the bot answers customers publicly.
    pub support_channels: Vec<u64>,
    /// Members with this role act as staff.
    pub staff_role: Option<u64>,
    /// These users act as staff.
    pub staff_ids: Vec<u64>,
}

impl Settings {
    /// Check a configuration: the staff channel is required and must not be a support channel.
    pub fn from_config(config: &DiscordConfig) -> Result<Settings, DiscordError> {
        let staff_channel = config.staff_channel.filter(|c| *c > 0).ok_or_else(|| {
            DiscordError::Config(
                "no staff channel: set FRONTDESK_DISCORD_STAFF_CHANNEL (or staff_channel in [discord]) to the id of the channel where staff get the ticket pings".into(),
            )
        })?;
        if config.support_channels.contains(&staff_channel) {
            return Err(DiscordError::Config(format!(
                "channel {staff_channel} is both the staff channel and a support channel: customers must not see the staff channel"
            )));
        }
        Ok(Settings {
            staff_channel,
            support_channels: config
                .support_channels
                .iter()
                .copied()
                .filter(|c| *c > 0)
                .collect(),
            staff_role: config.staff_role.filter(|r| *r > 0),
            staff_ids: config.staff_ids.clone(),
        })
    }

    /// True when staff are restricted to a role or a list of users; otherwise
    /// everyone who can write in the staff channel acts as staff.
    pub fn restricted(&self) -> bool {
        self.staff_role.is_some() || !self.staff_ids.is_empty()
    }

    /// Whether `user` (with these roles in the guild, when known) is staff.
    /// Unrestricted: true (the staff channel's permissions decide).
    pub fn is_staff(&self, user: u64, roles: &[u64]) -> bool {
        if !self.restricted() || self.staff_ids.contains(&user) {
            return true;
        }
        self.staff_role.is_some_and(|r| roles.contains(&r))
    }
}

/// The base URL serenity's proxy setting expects (`http://host:port`): trailing
/// `/`, `/api` and `/api/v10` are dropped.
pub fn proxy_base(api_url: &str) -> String {
    let mut base = api_url.trim().trim_end_matches('/');
    for suffix in ["/api/v10", "/api"] {
        if let Some(stripped) = base.strip_suffix(suffix) {
            base = stripped;
            break;
        }
    }
    base.to_string()
}

/// Serenity's REST client for the configuration. With `api_url` the requests
/// go there and serenity's own rate limiter is off (serenity uses a proxy only
/// then); without, serenity paces requests by Discord's rate-limit headers.
/// No message mentions anyone unless it says so.
pub fn http_client(config: &DiscordConfig) -> Http {
    let mut builder = HttpBuilder::new(config.token.expose()).default_allowed_mentions(
        serenity::all::CreateAllowedMentions::new()
            .empty_users()
            .empty_roles(),
    );
    if let Some(url) = config.api_url.as_deref().filter(|u| !u.trim().is_empty()) {
        builder = builder.proxy(proxy_base(url)).ratelimiter_disabled(true);
    }
    builder.build()
}

/// Meta keys of the adapter's own state.
pub mod keys {
    /// The ping message id of a ticket.
    pub fn ping(ticket: u64) -> String {
        format!("discord:ping:{ticket}")
    }
    /// The thread id of a ticket.
    pub fn thread(ticket: u64) -> String {
        format!("discord:thread:{ticket}")
    }
    /// The ticket of a thread.
    pub fn thread_ticket(thread: u64) -> String {
        format!("discord:thread-ticket:{thread}")
    }
    /// The payload behind a shortened button `custom_id`.
    pub fn payload(custom_id: &str) -> String {
        format!("discord:payload:{custom_id}")
    }
}

/// Read one meta record as text, off the async threads.
pub(crate) async fn meta_get(
    store: &Arc<dyn Store>,
    key: String,
) -> Result<Option<String>, StoreError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.meta(&key))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        .map(|v| v.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

/// Write meta records, off the async threads.
pub(crate) async fn meta_set(
    store: &Arc<dyn Store>,
    pairs: Vec<(String, String)>,
) -> Result<(), StoreError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        pairs
            .iter()
            .try_for_each(|(k, v)| store.set_meta(k, v.as_bytes()))
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// A numeric meta record.
pub(crate) async fn meta_id(
    store: &Arc<dyn Store>,
    key: String,
) -> Result<Option<u64>, StoreError> {
    Ok(meta_get(store, key).await?.and_then(|v| v.parse().ok()))
}

/// Run the Discord channel until `shutdown`: connect, handle events, deliver
/// actions. While Discord cannot be reached at start it keeps trying, with
/// backoff, and logs each attempt (like serenity's reconnects later). Returns
/// Ok after a graceful stop, Err when Discord refuses the configuration or
/// the gateway stops for good.
pub async fn run(
    config: DiscordConfig,
    dispatcher: Dispatcher,
    mut shutdown: Shutdown,
) -> Result<(), DiscordError> {
    let settings = Arc::new(Settings::from_config(&config)?);
    let where_ = config
        .api_url
        .as_deref()
        .map(|u| format!(" at {}", proxy_base(u)))
        .unwrap_or_default();
    let http = http_client(&config);
    if !check_until_ok(&http, settings.staff_channel, &where_, &mut shutdown).await? {
        return Ok(());
    }
    if !settings.restricted() {
        tracing::warn!(
            "Discord: neither staff_role nor staff_ids is set: everyone who can write in the staff channel acts as staff"
        );
    }

    let store = dispatcher.store();
    let (queue_tx, queue_rx) = mpsc::unbounded_channel();
    let handler = Handler {
        settings: settings.clone(),
        store: store.clone(),
        queue: queue_tx,
    };
    let mut client: Client = ClientBuilder::new_with_http(http, INTENTS)
        .event_handler(handler)
        .await
        .map_err(|e| DiscordError::Gateway(describe(&e)))?;
    let http = client.http.clone();
    let shard_manager = client.shard_manager.clone();

    let deliverer = DiscordDeliverer::new(http.clone(), store.clone(), settings.clone())?;
    let outbox = tokio::spawn(run_outbox(
        deliverer,
        store.clone(),
        dispatcher.waker(crate::model::Channel::Discord),
        shutdown.clone(),
    ));
    let (stop_sequencer, sequencer_stop) = oneshot::channel();
    let sequencer = tokio::spawn(sequence(
        queue_rx,
        dispatcher.clone(),
        http.clone(),
        sequencer_stop,
    ));
    let mut gateway = tokio::spawn(async move { client.start().await });

    let result = tokio::select! {
        ended = &mut gateway => match ended {
            Ok(Ok(())) => Err(DiscordError::Gateway("the connection ended".into())),
            Ok(Err(serenity::Error::Gateway(GatewayError::DisallowedGatewayIntents))) => {
                Err(DiscordError::DisallowedIntents)
            }
            Ok(Err(serenity::Error::Gateway(GatewayError::InvalidAuthentication))) => {
                Err(DiscordError::Unauthorized)
            }
            Ok(Err(e)) => Err(DiscordError::Gateway(describe(&e))),
            Err(e) => Err(DiscordError::Gateway(e.to_string())),
        },
        _ = shutdown.wait() => Ok(()),
    };
    if result.is_ok() {
        tracing::info!("Discord: closing the gateway connection");
        if shard_manager.shards_instantiated().await.is_empty() {
            gateway.abort();
        } else {
            shard_manager.shutdown_all().await;
            if tokio::time::timeout(SHARD_STOP_WAIT, &mut gateway)
                .await
                .is_err()
            {
                tracing::warn!("Discord: the gateway did not close in time");
                gateway.abort();
            }
        }
    } else {
        // The shard runner has stopped already (that is how the error got here);
        // the shard queuer ends when the manager is dropped below.
        gateway.abort();
    }
    // The gateway is closed: the sequencer hands what it holds to the engine,
    // then stops; the outbox worker stops between deliveries at the shutdown
    // signal (what is left stays in the outbox for the next start).
    if result.is_err() {
        sequencer.abort();
        outbox.abort();
    } else {
        let _ = stop_sequencer.send(());
        let _ = sequencer.await;
        if let Ok(Err(e)) = outbox.await {
            return Err(e.into());
        }
    }
    tracing::info!("Discord: stopped");
    result
}

/// The startup checks, tried again with backoff (1 s, 2 s … a minute) while
/// Discord cannot be reached or answers with an error that may pass (408,
/// 429, 5xx), saying so in the log each time; a refusal (a wrong token, a
/// staff channel the bot cannot see, another 4xx) stops at once. Ok(false)
/// when shutdown came first.
async fn check_until_ok(
    http: &Http,
    staff_channel: u64,
    where_: &str,
    shutdown: &mut Shutdown,
) -> Result<bool, DiscordError> {
    let mut attempt = 0;
    loop {
        let checked = tokio::select! {
            checked = check(http, staff_channel, where_.to_string()) => checked,
            _ = shutdown.wait() => return Ok(false),
        };
        match checked {
            Ok(()) => return Ok(true),
            Err(Failed {
                error,
                passing: true,
            }) => {
                let wait = super::runtime::backoff(attempt);
                attempt += 1;
                tracing::warn!(
                    error = %error, attempt, retry_in_s = wait.as_secs(),
                    "Discord: cannot connect yet; trying again"
                );
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.wait() => return Ok(false),
                }
            }
            Err(Failed { error, .. }) => return Err(error),
        }
    }
}

/// A failed startup check, and whether it may pass by itself.
struct Failed {
    error: DiscordError,
    passing: bool,
}

/// Whether a failed call may succeed later without a change on our side:
/// no answer at all, or 408, 429, 5xx.
fn may_pass(e: &serenity::Error) -> bool {
    match status(e) {
        None => !matches!(e, serenity::Error::Json(_) | serenity::Error::Model(_)),
        Some(code) => matches!(code, 408 | 429 | 500..=599),
    }
}

/// Startup checks: the token is accepted and the staff channel is visible.
async fn check(http: &Http, staff_channel: u64, where_: String) -> Result<(), Failed> {
    let unreachable = |e: &serenity::Error, where_: &str| {
        let (where_, reason) = (where_.to_string(), describe(e));
        let passing = may_pass(e);
        let error = if status(e).is_some() && !passing {
            // An answer, and not one that waiting fixes.
            DiscordError::Refused { where_, reason }
        } else {
            DiscordError::Unreachable { where_, reason }
        };
        Failed { error, passing }
    };
    let me = http
        .get_current_user()
        .await
        .map_err(|e| match status(&e) {
            Some(401) => Failed {
                error: DiscordError::Unauthorized,
                passing: false,
            },
            _ => unreachable(&e, &where_),
        })?;
    tracing::info!(bot = %me.name, id = me.id.get(), "Discord: token accepted");
    http.get_channel(ChannelId::new(staff_channel))
        .await
        .map(|_| ())
        .map_err(|e| match status(&e) {
            Some(403 | 404) => Failed {
                error: DiscordError::StaffChannel {
                    channel: staff_channel,
                    reason: describe(&e),
                },
                passing: false,
            },
            _ => unreachable(&e, &where_),
        })
}

/// The HTTP status of a failed REST call, if it got that far.
pub fn status(e: &serenity::Error) -> Option<u16> {
    match e {
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) => {
            Some(r.status_code.as_u16())
        }
        _ => None,
    }
}

/// A failed call described for logs and errors: status and Discord's message,
/// never the URL (an interaction URL holds the interaction's token).
pub fn describe(e: &serenity::Error) -> String {
    match e {
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) => format!(
            "HTTP {} {} (Discord code {}: {})",
            r.status_code.as_u16(),
            r.method,
            r.error.code,
            r.error.message
        ),
        serenity::Error::Http(serenity::http::HttpError::Request(r)) => {
            let kind = if r.is_timeout() {
                "timed out"
            } else if r.is_connect() {
                "connection failed"
            } else {
                "request failed"
            };
            format!("network error: {kind}")
        }
        other => other.to_string(),
    }
}

/// One event on its way to the re-ordering queue.
struct Queued {
    /// The event's snowflake id (Discord's creation order).
    id: u64,
    decision: Decision,
}

/// Serenity's event handler: translates, acknowledges button presses at once,
/// and queues the rest for the engine.
struct Handler {
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    queue: mpsc::UnboundedSender<Queued>,
}

impl Handler {
    /// The ticket of a thread, for guild channels that are neither the staff
    /// channel nor a support channel.
    async fn place(&self, channel: u64, in_guild: bool) -> Place {
        let ticket = if inbound::needs_thread_lookup(&self.settings, channel, in_guild) {
            match meta_id(&self.store, keys::thread_ticket(channel)).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "Discord: cannot read the ticket of a thread");
                    None
                }
            }
        } else {
            None
        };
        inbound::place(&self.settings, channel, in_guild, ticket)
    }

    fn enqueue(&self, id: u64, decision: Decision) {
        if let Decision::Ignore(why) = decision {
            tracing::debug!(id, why, "Discord: event ignored");
            return;
        }
        if self.queue.send(Queued { id, decision }).is_err() {
            tracing::warn!(id, "Discord: event arrived while stopping; not handled");
        }
    }

    async fn component(&self, ctx: &Context, press: ComponentInteraction) {
        let place = self
            .place(press.channel_id.get(), press.guild_id.is_some())
            .await;
        let mut payload = press.data.custom_id.clone();
        if outbound::is_short_id(&payload) {
            match meta_get(&self.store, keys::payload(&payload)).await {
                Ok(Some(full)) => payload = full,
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "Discord: cannot read a button payload"),
            }
        }
        let (ack, decision) = inbound::interaction(&press, &self.settings, place, payload);
        if let Err(e) = press
            .create_response(&ctx.http, outbound::ack_response(&ack))
            .await
        {
            // Already acknowledged (a replayed event) or too late: the press is still handled.
            tracing::warn!(error = %describe(&e), "Discord: could not acknowledge a button press");
        }
        self.enqueue(press.id.get(), decision);
    }

    async fn command(&self, ctx: &Context, cmd: CommandInteraction) {
        let place = self
            .place(cmd.channel_id.get(), cmd.guild_id.is_some())
            .await;
        let (ack, decision) = inbound::command(&cmd, place);
        if let Err(e) = cmd
            .create_response(&ctx.http, outbound::ack_response(&ack))
            .await
        {
            tracing::warn!(error = %describe(&e), "Discord: could not acknowledge a slash command");
        }
        self.enqueue(cmd.id.get(), decision);
    }
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        tracing::info!(
            bot = %ready.user.name,
            guilds = ready.guilds.len(),
            "Discord: connected to the gateway"
        );
        // /forget in Discord's command list (creating it again only updates it).
        let forget = CreateCommand::new(inbound::FORGET_COMMAND)
            .description(inbound::FORGET_DESCRIPTION)
            .dm_permission(true);
        if let Err(e) = Command::create_global_command(&ctx.http, forget).await {
            tracing::warn!(
                error = %describe(&e),
                "Discord: could not register the /forget slash command (typing /forget still works)"
            );
        }
    }

    async fn message(&self, _ctx: Context, message: Message) {
        if message.author.bot {
            // Our own messages come back too; no store lookup for them.
            return;
        }
        let place = self
            .place(message.channel_id.get(), message.guild_id.is_some())
            .await;
        let decision = inbound::message(&message, &self.settings, place);
        if place == Place::Support
            && message.content.is_empty()
            && matches!(&decision, Decision::Engine { .. })
            && inbound::attachment_summary(&message).is_none()
        {
            tracing::warn!(
                "Discord: a support-channel message arrived without text: is MESSAGE CONTENT INTENT enabled in the developer portal?"
            );
        }
        self.enqueue(message.id.get(), decision);
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        match interaction {
            Interaction::Component(press) => self.component(&ctx, press).await,
            Interaction::Command(cmd) => self.command(&ctx, cmd).await,
            other => tracing::debug!(
                kind = ?other.kind(),
                "Discord: interaction of another kind ignored"
            ),
        }
    }
}

/// Events held back for a moment so that they reach the engine in the order
/// Discord created them (by snowflake id), whatever order serenity's handler
/// tasks deliver them in.
pub struct Reorder<T> {
    window: Duration,
    /// (snowflake, arrival) → (due, item)
    waiting: BTreeMap<(u64, u64), (Instant, T)>,
    arrivals: u64,
}

impl<T> Reorder<T> {
    /// Each item waits `window` after it arrived for items created before it.
    pub fn new(window: Duration) -> Reorder<T> {
        Reorder {
            window,
            waiting: BTreeMap::new(),
            arrivals: 0,
        }
    }

    /// An item with snowflake `id`, arrived at `now`.
    pub fn push(&mut self, id: u64, now: Instant, item: T) {
        self.arrivals += 1;
        self.waiting
            .insert((id, self.arrivals), (now + self.window, item));
    }

    /// When the earliest-created item is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.waiting.first_key_value().map(|(_, (due, _))| *due)
    }

    /// The earliest-created item, if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        if self.next_due()? > now {
            return None;
        }
        self.waiting.pop_first().map(|(_, (_, item))| item)
    }

    /// Everything, earliest-created first, due or not.
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(|| self.waiting.pop_first().map(|(_, (_, item))| item))
    }
}

/// Hand queued events to the engine in snowflake order, each after
/// [`REORDER_WINDOW`]; once `stop` fires (the gateway is closed), hand over
/// what is queued at once and stop.
async fn sequence(
    mut rx: mpsc::UnboundedReceiver<Queued>,
    dispatcher: Dispatcher,
    http: Arc<Http>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut held = Reorder::new(REORDER_WINDOW);
    loop {
        let due = held.next_due();
        tokio::select! {
            biased;
            _ = &mut stop => break,
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                while let Some(decision) = held.pop_due(Instant::now()) {
                    process(&dispatcher, &http, decision).await;
                }
            }
            item = rx.recv() => match item {
                Some(q) => held.push(q.id, Instant::now(), q.decision),
                None => break,
            },
        }
    }
    rx.close();
    while let Ok(q) = rx.try_recv() {
        held.push(q.id, Instant::now(), q.decision);
    }
    for decision in held.drain() {
        process(&dispatcher, &http, decision).await;
    }
}

async fn process(dispatcher: &Dispatcher, http: &Http, decision: Decision) {
    match decision {
        Decision::Engine { event_id, inbound } => {
            if let Err(e) = dispatcher.handle(Some(event_id.clone()), inbound).await {
                tracing::error!(event = %event_id, error = %e, "Discord: the engine failed on an event; it was not handled");
            }
        }
        Decision::Notice {
            channel,
            reply_to,
            text,
        } => {
            let message = CreateMessage::new()
                .content(text)
                .reference_message((ChannelId::new(channel), MessageId::new(reply_to)));
            if let Err(e) = ChannelId::new(channel).send_message(http, message).await {
                tracing::warn!(channel, error = %describe(&e), "Discord: could not post a notice");
            }
        }
        Decision::Ignore(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DiscordConfig {
        DiscordConfig {
            token: crate::config::Secret::new("t"),
            staff_channel: Some(200),
            support_channels: vec![100],
            ..DiscordConfig::default()
        }
    }

    #[test]
    fn settings_need_a_staff_channel_apart_from_support_channels() {
        let s = Settings::from_config(&config()).unwrap();
        assert_eq!(s.staff_channel, 200);
        assert!(!s.restricted());
        let mut c = config();
        c.staff_channel = None;
        assert!(
            Settings::from_config(&c)
                .unwrap_err()
                .to_string()
                .contains("FRONTDESK_DISCORD_STAFF_CHANNEL")
        );
        c.staff_channel = Some(100);
        assert!(Settings::from_config(&c).is_err());
    }

    #[test]
    fn staff_by_role_or_id() {
        let mut c = config();
        c.staff_role = Some(7);
        c.staff_ids = vec![42];
        let s = Settings::from_config(&c).unwrap();
        assert!(s.restricted());
        assert!(s.is_staff(42, &[]));
        assert!(s.is_staff(1, &[3, 7]));
        assert!(!s.is_staff(1, &[3]));
        let open = Settings::from_config(&config()).unwrap();
        assert!(open.is_staff(1, &[]));
    }

    #[test]
    fn proxy_base_drops_api_suffixes() {
        assert_eq!(
            proxy_base("http://127.0.0.1:8080/"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            proxy_base("http://127.0.0.1:8080/api/v10"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(proxy_base("http://h/api/"), "http://h");
    }

    #[test]
    fn reorder_hands_items_over_in_creation_order() {
        let t0 = Instant::now();
        let w = Duration::from_millis(30);
        let mut r = Reorder::new(w);
        // Serenity delivered the later message first.
        r.push(20, t0, "second");
        r.push(10, t0 + Duration::from_millis(5), "first");
        assert_eq!(
            r.pop_due(t0 + w),
            None,
            "waits for the earlier one's window"
        );
        assert_eq!(r.next_due(), Some(t0 + Duration::from_millis(35)));
        assert_eq!(r.pop_due(t0 + Duration::from_millis(35)), Some("first"));
        assert_eq!(r.pop_due(t0 + Duration::from_millis(35)), Some("second"));
        assert_eq!(r.pop_due(t0 + Duration::from_secs(1)), None);
        // A replay of the same id keeps both (the engine drops the duplicate).
        r.push(30, t0, "a");
        r.push(30, t0, "b");
        r.push(25, t0, "c");
        assert_eq!(r.drain().collect::<Vec<_>>(), vec!["c", "a", "b"]);
        assert_eq!(r.next_due(), None);
    }

    #[test]
    fn intents_are_the_three_needed() {
        assert_eq!(
            INTENTS.bits(),
            (1 << 9) | (1 << 12) | (1 << 15),
            "GUILD_MESSAGES | DIRECT_MESSAGES | MESSAGE_CONTENT"
        );
    }
}

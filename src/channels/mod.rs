//! Channel adapters: they turn platform input into engine events and carry
//! the engine's actions out on the platform: the console, and the shared
//! runtime (dispatcher, outbox workers, pacing, shutdown) for the platforms.
//!
//! [`serve`] starts every configured platform channel in one process over one
//! engine and store, with the timer ticker (`[tickets] timer_interval`), and
//! returns when all of them have stopped. A channel that stops with an error
//! does not stop the others: they keep serving their customers (Discord does
//! not keep gateway events for a bot that is away, so stopping it would lose
//! what its customers write meanwhile).

pub mod console;
pub mod discord;
pub mod runtime;
pub mod telegram;

use tokio::task::JoinSet;

use crate::config::Config;
use runtime::{Dispatcher, Shutdown};

/// Why the platform channels could not run.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// No platform is configured.
    #[error(
        "no channel is configured: set FRONTDESK_TELEGRAM_TOKEN and FRONTDESK_TELEGRAM_STAFF_CHAT (Telegram) and/or FRONTDESK_DISCORD_TOKEN and FRONTDESK_DISCORD_STAFF_CHANNEL (Discord), or the [telegram] / [discord] sections of frontdesk.toml; see README.md. To talk to the bot without a platform, use `frontdesk chat`."
    )]
    NoChannel,
    /// A channel's configuration is incomplete or wrong.
    #[error("{channel}: {message}")]
    Misconfigured {
        /// Which channel.
        channel: &'static str,
        /// What is missing and how to set it.
        message: String,
    },
    /// A channel stopped with an error.
    #[error("{channel} stopped: {message}")]
    Failed {
        /// Which channel.
        channel: &'static str,
        /// Why.
        message: String,
    },
}

/// Run every configured platform channel until `shutdown`. A channel that
/// stops with an error is logged at once, and the others keep serving; the
/// first error is returned once every channel has stopped.
pub async fn serve(
    config: &Config,
    dispatcher: Dispatcher,
    shutdown: Shutdown,
) -> Result<(), ChannelError> {
    let _ = (&dispatcher, &shutdown);
    let mut tasks: JoinSet<Result<(), ChannelError>> = JoinSet::new();
    if config.telegram.enabled() {
        let settings = telegram::TelegramSettings::from_config(&config.telegram).map_err(|e| {
            ChannelError::Misconfigured {
                channel: "telegram",
                message: e.to_string(),
            }
        })?;
        let (dispatcher, shutdown) = (dispatcher.clone(), shutdown.clone());
        tasks.spawn(async move {
            telegram::run(settings, dispatcher, shutdown)
                .await
                .map_err(|e| ChannelError::Failed {
                    channel: "telegram",
                    message: e.to_string(),
                })
        });
    }
    if config.discord.enabled() {
        discord::Settings::from_config(&config.discord).map_err(|e| {
            ChannelError::Misconfigured {
                channel: "discord",
                message: e.to_string(),
            }
        })?;
        let discord_config = config.discord.clone();
        let (dispatcher, shutdown) = (dispatcher.clone(), shutdown.clone());
        tasks.spawn(async move {
            discord::run(discord_config, dispatcher, shutdown)
                .await
                .map_err(|e| ChannelError::Failed {
                    channel: "discord",
                    message: e.to_string(),
                })
        });
    }
    if tasks.is_empty() {
        return Err(ChannelError::NoChannel);
    }
    let ticker = tokio::spawn(runtime::run_ticker(
        dispatcher.clone(),
        config.tickets.timer_interval(),
        shutdown.clone(),
    ));
    let result = join_all(tasks).await;
    ticker.abort();
    result
}

/// Wait for every channel task; the first error is returned after the rest
/// stopped. An error while other channels still run is logged then (they keep
/// running); the last channel's error is only returned (the caller prints it),
/// so that it is not shown twice.
async fn join_all(mut tasks: JoinSet<Result<(), ChannelError>>) -> Result<(), ChannelError> {
    let mut first_error = None;
    while let Some(result) = tasks.join_next().await {
        let result = result.unwrap_or_else(|e| {
            Err(ChannelError::Failed {
                channel: "channel task",
                message: e.to_string(),
            })
        });
        if let Err(e) = result {
            if !tasks.is_empty() {
                tracing::error!(
                    error = %e,
                    running = tasks.len(),
                    "a channel stopped; the other channels keep serving"
                );
            }
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

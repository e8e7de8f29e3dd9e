//! frontdesk: a customer-service bot for Telegram, Discord and the console.
//!
//! A shop writes its common questions and answers as TOML intents; frontdesk
//! answers them at once in the customer's language, hands everything else to
//! a person with a ticket whose resolution is recorded, and asks for a rating
//! at the end. The crate is a pure core with thin adapters around it:
//!
//! ```text
//!  console / telegram / discord ──▶ Inbound ──▶ engine ──▶ Outgoing ──▶ channel
//!        (channels)                              │   │        (outbox)
//!                                          nlu::Matcher  store::Store (sled)
//!                                          (intents)     customers, conversations,
//!                                                        tickets, ratings, outbox
//! ```
//!
//! - [`intents`]: the TOML schema, loading and validation with file:line errors.
//! - [`nlu`]: normalisation, stemming, language detection, the [`nlu::Matcher`]
//!   and the calibration of its thresholds at load.
//! - [`engine`]: the dialogue state machine; takes events and the time, returns actions.
//! - [`store`]: the [`store::Store`] trait and its sled implementation, which
//!   seals customer text with a key per customer ([`store::keys`]) so that
//!   forgetting a customer destroys what the database's log still holds.
//! - [`channels`]: the adapters; today the console.
//! - [`report`]: figures for the owner.
//! - [`eval`]: measuring the matcher on labelled data (`frontdesk eval`).
//! - [`hours`]: business hours and the calendar arithmetic of ticket clocks.
//! - [`sla`]: response-time targets, each ticket's clock, the reminder schedule.
//! - [`reload`]: hot reload of the intents while the bot runs.
//! - [`config`]: the configuration file, frontdesk.toml.
//! - [`cli`]: the command line.
//!
//! Dependencies point inwards: channels know the engine's event and action
//! types; the engine knows the store trait and the matcher; nothing inside
//! knows a platform.

pub mod channels;
pub mod cli;
pub mod config;
pub mod engine;
pub mod eval;
pub mod hours;
pub mod intents;
pub mod model;
pub mod nlu;
pub mod reload;
pub mod report;
pub mod sla;
pub mod store;

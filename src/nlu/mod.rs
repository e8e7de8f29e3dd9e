//! Natural-language understanding: from a customer's message to ranked
//! intents.
//!
//! - [`normalize`](mod@normalize): Unicode, case and accent folding, tokens.
//! - [`stem`](mod@stem): Snowball stemmers (en/es/it) and stop words.
//! - [`lang`](mod@lang): language detection restricted to the bot's languages.
//! - [`matcher`]: the TF-IDF intent matcher ([`Matcher`]).
//! - [`calibrate`]: its thresholds, chosen at load from the examples
//!   ([`MatcherSettings`] are the configuration's overrides).
//! - [`embed`]: the optional semantic tier (sentence embeddings, feature `semantic`).
//!
//! ```
//! use frontdesk::nlu::{Example, Matcher, MatcherConfig, TrainingIntent, Verdict};
//!
//! let hours = TrainingIntent {
//!     id: "opening_hours".into(),
//!     examples: vec![
//!         Example { language: "en".into(), text: "What time do you open?".into() },
//!         Example { language: "es".into(), text: "¿A qué hora abren?".into() },
//!     ],
//!     patterns: vec![],
//! };
//! let matcher = Matcher::build(vec![hours], MatcherConfig::default());
//! let result = matcher.classify("what time do you open", None);
//! assert_eq!(result.verdict, Verdict::Answer("opening_hours".into()));
//! ```

pub mod calibrate;
pub mod embed;
pub mod lang;
mod linear;
pub mod matcher;
pub mod normalize;
pub mod stem;

#[cfg(test)]
mod fixtures;

pub use calibrate::{Calibration, MatcherSettings, ThresholdSource};
pub use lang::detect;
pub use matcher::{
    Candidate, Classification, ConfigError, Example, Matcher, MatcherConfig, TrainingIntent,
    Verdict,
};
pub use normalize::{normalize, tokens};
pub use stem::Stemmers;

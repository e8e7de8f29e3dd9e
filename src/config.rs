//! `frontdesk.toml`: the typed, defaulted and validated configuration, and the
//! environment variables that override it.
//!
//! Every key has a default, so no file is needed for the console. Unknown
//! keys, wrong types and impossible values are errors naming the file, the
//! line and the key. Precedence: command-line flags, then environment
//! variables, then the file, then the defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::hours::{BusinessHours, HoursConfig};
use crate::intents::{is_language_code, key_from_toml_error, line_of};
use crate::model::Channel;
use crate::model::SurveyKind;
use crate::nlu::MatcherSettings;
use crate::sla::{Policy, REASON_KEYS, TargetOverride, Targets};

/// The configuration file looked for in the working directory when none is given.
pub const DEFAULT_CONFIG_FILE: &str = "frontdesk.toml";

/// Environment variable: the configuration file.
pub const ENV_CONFIG: &str = "FRONTDESK_CONFIG";
/// Environment variable: the data directory.
pub const ENV_DATA: &str = "FRONTDESK_DATA";
/// Environment variable: the intents directory.
pub const ENV_INTENTS: &str = "FRONTDESK_INTENTS";
/// Environment variable: the Telegram bot token.
pub const ENV_TELEGRAM_TOKEN: &str = "FRONTDESK_TELEGRAM_TOKEN";
/// Environment variable: the Telegram staff group's chat id.
pub const ENV_TELEGRAM_STAFF_CHAT: &str = "FRONTDESK_TELEGRAM_STAFF_CHAT";
/// Environment variable: another Bot API server's base URL.
pub const ENV_TELEGRAM_API_URL: &str = "FRONTDESK_TELEGRAM_API_URL";
/// Environment variable: the Discord bot token.
pub const ENV_DISCORD_TOKEN: &str = "FRONTDESK_DISCORD_TOKEN";
/// Environment variable: the Discord staff channel id.
pub const ENV_DISCORD_STAFF_CHANNEL: &str = "FRONTDESK_DISCORD_STAFF_CHANNEL";
/// Environment variable: comma-separated Discord support channel ids.
pub const ENV_DISCORD_SUPPORT_CHANNELS: &str = "FRONTDESK_DISCORD_SUPPORT_CHANNELS";
/// Environment variable: another base URL for Discord's REST API and gateway discovery.
pub const ENV_DISCORD_API_URL: &str = "FRONTDESK_DISCORD_API_URL";

/// A secret (a token): never printed, not even by `{:?}`.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// A secret holding `value`.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no secret is set.
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_empty() {
            "Secret(<empty>)"
        } else {
            "Secret(<redacted>)"
        })
    }
}

/// `[telegram]`: customers in private chats, staff in one group.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TelegramConfig {
    /// The bot token from @BotFather (better: `FRONTDESK_TELEGRAM_TOKEN`).
    pub token: Secret,
    /// The staff group's chat id (a negative number for groups).
    pub staff_chat: Option<i64>,
    /// Another Bot API server, e.g. a self-hosted telegram-bot-api (default: Telegram's).
    pub api_url: Option<String>,
    /// User ids that act as staff besides the staff group's members.
    pub staff_ids: Vec<u64>,
}

impl TelegramConfig {
    /// True when a token is set: the channel is to run.
    pub fn enabled(&self) -> bool {
        !self.token.is_empty()
    }
}

/// `[discord]`: customers in DMs and support channels, staff in one channel.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DiscordConfig {
    /// The bot token from the developer portal (better: `FRONTDESK_DISCORD_TOKEN`).
    pub token: Secret,
    /// The staff channel's id.
    pub staff_channel: Option<u64>,
    /// Channels where the bot answers customers publicly.
    pub support_channels: Vec<u64>,
    /// Another base URL for the REST API and gateway discovery (tests).
    pub api_url: Option<String>,
    /// The role whose members act as staff.
    pub staff_role: Option<u64>,
    /// User ids that act as staff.
    pub staff_ids: Vec<u64>,
}

impl DiscordConfig {
    /// True when a token is set: the channel is to run.
    pub fn enabled(&self) -> bool {
        !self.token.is_empty()
    }
}

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An environment variable holds an unusable value.
    #[error("environment variable {name}: {message}")]
    Env {
        /// The variable.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The file is invalid.
    #[error("{path}:{line}: key `{key}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The key concerned.
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory of intent files (default `intents`).
    pub intents: PathBuf,
    /// How often `run` and `chat` look for changed intent files (default
    /// `"2s"`; `"off"`: never). See [`Config::intents_reload`].
    pub intents_reload: String,
    /// Directory of the embedded database (default `frontdesk-data`).
    pub data: PathBuf,
    /// The language used when nothing better is known (default `en`).
    pub default_language: String,
    /// The languages the shop speaks (default en, es, it).
    pub languages: Vec<String>,
    /// Matcher thresholds: overrides of the calibrated ones.
    #[serde(deserialize_with = "matcher_section")]
    pub matcher: MatcherSettings,
    /// `[matcher] model`: a sentence-embedding model directory for the
    /// semantic tier (feature `semantic`), if any.
    #[serde(skip)]
    pub matcher_model: Option<PathBuf>,
    /// `[matcher] wait_for_model`: `true`, the bot starts answering only
    /// once the semantic tier is built; `false`, it answers at once with the
    /// lexical matcher while the tier builds in the background. Not set:
    /// `run` and a typed `chat` answer at once, a piped `chat` waits (the
    /// same input then always gets the same answers).
    #[serde(skip)]
    pub matcher_wait_for_model: Option<bool>,
    /// The satisfaction question.
    pub survey: SurveyConfig,
    /// Ticket settings: targets, reminders, managers.
    pub tickets: TicketsConfig,
    /// Business hours (none: always open).
    pub hours: HoursConfig,
    /// What is kept of customers' data, and for how long.
    pub privacy: PrivacyConfig,
    /// Overrides of the bot's own sentences, per language: `[messages.es] did_it_help = "…"`.
    pub messages: BTreeMap<String, BTreeMap<String, String>>,
    /// The Telegram channel.
    pub telegram: TelegramConfig,
    /// The Discord channel.
    pub discord: DiscordConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            intents: PathBuf::from("intents"),
            intents_reload: "2s".into(),
            data: PathBuf::from("frontdesk-data"),
            default_language: "en".into(),
            languages: vec!["en".into(), "es".into(), "it".into()],
            matcher: MatcherSettings::default(),
            matcher_model: None,
            matcher_wait_for_model: None,
            survey: SurveyConfig::default(),
            tickets: TicketsConfig::default(),
            hours: HoursConfig::default(),
            privacy: PrivacyConfig::default(),
            messages: BTreeMap::new(),
            telegram: TelegramConfig::default(),
            discord: DiscordConfig::default(),
        }
    }
}

/// `[privacy]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Conversation text older than this many days is deleted (0, the default: kept).
    pub retention_days: u32,
}

/// The longest retention period accepted, in days (a hundred years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

impl PrivacyConfig {
    /// The retention period, if one is set.
    pub fn retention(&self) -> Option<jiff::SignedDuration> {
        (self.retention_days > 0)
            .then(|| jiff::SignedDuration::from_hours(i64::from(self.retention_days) * 24))
    }
}

/// The `[matcher]` table: [`MatcherSettings`]' keys, and `model` (read
/// into [`Config::matcher_model`] by [`Config::from_toml`]).
fn matcher_section<'de, D>(deserializer: D) -> Result<MatcherSettings, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    let mut table = toml::Table::deserialize(deserializer)?;
    if let Some(model) = table.remove("model")
        && !model.is_str()
    {
        return Err(D::Error::custom(
            "`model` must be a directory path in quotes, e.g. model = \"models/minilm-static\"",
        ));
    }
    if let Some(wait) = table.remove("wait_for_model")
        && !wait.is_bool()
    {
        return Err(D::Error::custom(
            "`wait_for_model` must be true or false (without quotes)",
        ));
    }
    MatcherSettings::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
        // The error of a re-read table has no position: name the key.
        let key = table.keys().find(|k| {
            let one: toml::Table = table
                .iter()
                .filter(|(other, _)| other == k)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            MatcherSettings::deserialize(toml::Value::Table(one)).is_err()
        });
        match key {
            Some(key) => D::Error::custom(format!("`{key}`: {e}")),
            None => D::Error::custom(e),
        }
    })
}

/// Only `[matcher] model` of a configuration file.
#[derive(Debug, Default, Deserialize)]
struct ModelKey {
    #[serde(default)]
    matcher: ModelOnly,
}

/// See [`ModelKey`].
#[derive(Debug, Default, Deserialize)]
struct ModelOnly {
    model: Option<PathBuf>,
    wait_for_model: Option<bool>,
}

/// `[survey]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SurveyConfig {
    /// `csat` (1–5, the default) or `nps` (0–10).
    pub kind: SurveyKind,
    /// Where promoters are invited to recommend the shop (an http(s) link), if anywhere.
    pub review_link: Option<String>,
}

/// `[tickets.targets.<reason or intent>]`: tighter (or looser) targets.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TargetConfig {
    /// The first-response target for these tickets.
    pub first_response_target: Option<String>,
    /// The resolution target for these tickets.
    pub resolution_target: Option<String>,
}

/// `[tickets.managers]`: who is mentioned when a ticket misses its first-response target.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ManagersConfig {
    /// Telegram usernames, with the @: `["@shop_owner"]`.
    pub telegram: Vec<String>,
    /// Discord user ids (mentioned as `<@id>`).
    pub discord: Vec<u64>,
    /// Names shown on the console.
    pub console: Vec<String>,
}

impl ManagersConfig {
    /// The mentions to write in `channel`'s staff chat.
    pub fn mentions(&self, channel: Channel) -> Vec<String> {
        match channel {
            Channel::Telegram => self.telegram.clone(),
            Channel::Discord => self.discord.iter().map(|id| format!("<@{id}>")).collect(),
            Channel::Console => self.console.clone(),
        }
    }
}

/// `[tickets]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TicketsConfig {
    /// The first-response target, e.g. "1h", "30m" (default 1h); told to customers.
    pub first_response_target: String,
    /// The resolution target (default 24h).
    pub resolution_target: String,
    /// Per escalation reason or escalating intent id: other targets.
    pub targets: BTreeMap<String, TargetConfig>,
    /// A claimed ticket with no staff reply this long: its assignee is reminded ("off": never).
    pub claimed_idle_reminder: String,
    /// … this long: it is offered to the other staff ("off": never).
    pub claimed_offer_after: String,
    /// Days a ticket waits for the customer's answer before it is closed (0: never).
    pub close_waiting_after_days: u32,
    /// Who is mentioned when a first-response target is missed.
    pub managers: ManagersConfig,
    /// How often the platform runtime checks the timers (default 30s).
    pub timer_interval: String,
}

impl Default for TicketsConfig {
    fn default() -> Self {
        TicketsConfig {
            first_response_target: "1h".into(),
            resolution_target: "24h".into(),
            targets: BTreeMap::new(),
            claimed_idle_reminder: "2h".into(),
            claimed_offer_after: "4h".into(),
            close_waiting_after_days: 3,
            managers: ManagersConfig::default(),
            timer_interval: "30s".into(),
        }
    }
}

/// "off"/"never" → None, else a duration.
fn parse_optional_duration(text: &str) -> Result<Option<Duration>, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("off") || t.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    parse_duration(t)
        .map(Some)
        .map_err(|m| format!("{m}, or \"off\""))
}

/// The longest `intents_reload` interval accepted.
const MAX_RELOAD_INTERVAL: Duration = Duration::from_secs(3600);

/// `intents_reload`: a duration from one second to an hour, or `"off"`.
fn parse_reload_interval(text: &str) -> Result<Option<Duration>, String> {
    let interval = parse_optional_duration(text)?;
    match interval {
        Some(d) if d > MAX_RELOAD_INTERVAL => Err(format!(
            "\"{text}\" is longer than an hour: changed intents would wait that long; write \"2s\", or \"off\" to never reload"
        )),
        _ => Ok(interval),
    }
}

impl TicketsConfig {
    /// The first-response target as a duration (validated at load).
    pub fn first_response(&self) -> Duration {
        parse_duration(&self.first_response_target).unwrap_or(Duration::from_secs(3600))
    }

    /// The configured targets (validated at load).
    pub fn targets(&self) -> Targets {
        let overrides = self
            .targets
            .iter()
            .map(|(key, t)| {
                let d = |v: &Option<String>| v.as_deref().and_then(|v| parse_duration(v).ok());
                (
                    key.clone(),
                    TargetOverride {
                        first_response: d(&t.first_response_target),
                        resolution: d(&t.resolution_target),
                    },
                )
            })
            .collect();
        Targets {
            first_response: self.first_response(),
            resolution: parse_duration(&self.resolution_target)
                .unwrap_or(Duration::from_secs(24 * 3600)),
            overrides,
        }
    }

    /// The reminder timers (validated at load).
    pub fn policy(&self) -> Policy {
        Policy {
            claimed_idle: parse_optional_duration(&self.claimed_idle_reminder).unwrap_or_default(),
            claimed_offer: parse_optional_duration(&self.claimed_offer_after).unwrap_or_default(),
            close_waiting_after: (self.close_waiting_after_days > 0)
                .then(|| Duration::from_secs(u64::from(self.close_waiting_after_days) * 86_400)),
        }
    }

    /// How often the runtime fires the timer tick (validated at load).
    pub fn timer_interval(&self) -> Duration {
        parse_duration(&self.timer_interval).unwrap_or(Duration::from_secs(30))
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let key = |k: &str| format!("tickets.{k}");
        let first = parse_duration(&self.first_response_target)
            .map_err(|m| (key("first_response_target"), m))?;
        let resolution =
            parse_duration(&self.resolution_target).map_err(|m| (key("resolution_target"), m))?;
        if resolution < first {
            return Err((
                key("resolution_target"),
                format!(
                    "\"{}\" is shorter than first_response_target \"{}\": a ticket cannot be resolved before it is answered",
                    self.resolution_target, self.first_response_target
                ),
            ));
        }
        for (name, t) in &self.targets {
            let valid_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid_name {
                return Err((
                    key(&format!("targets.{name}")),
                    format!(
                        "\"{name}\" is neither an escalation reason ({}) nor an intent id",
                        REASON_KEYS.map(|(k, _)| k).join(", ")
                    ),
                ));
            }
            for (field, value) in [
                ("first_response_target", &t.first_response_target),
                ("resolution_target", &t.resolution_target),
            ] {
                if let Some(v) = value {
                    parse_duration(v).map_err(|m| (key(&format!("targets.{name}.{field}")), m))?;
                }
            }
        }
        let idle = parse_optional_duration(&self.claimed_idle_reminder)
            .map_err(|m| (key("claimed_idle_reminder"), m))?;
        let offer = parse_optional_duration(&self.claimed_offer_after)
            .map_err(|m| (key("claimed_offer_after"), m))?;
        if let (Some(idle), Some(offer)) = (idle, offer)
            && offer <= idle
        {
            return Err((
                key("claimed_offer_after"),
                format!(
                    "\"{}\" must be longer than claimed_idle_reminder \"{}\": the assignee is reminded first, then the ticket is offered to others",
                    self.claimed_offer_after, self.claimed_idle_reminder
                ),
            ));
        }
        if self.close_waiting_after_days > 365 {
            return Err((
                key("close_waiting_after_days"),
                format!(
                    "{} days is more than a year: use at most 365, or 0 to never close",
                    self.close_waiting_after_days
                ),
            ));
        }
        for m in &self.managers.telegram {
            let name = m.strip_prefix('@').unwrap_or("");
            let ok = (5..=32).contains(&name.len())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err((
                    key("managers.telegram"),
                    format!(
                        "\"{m}\" is not a Telegram username: write it with the @, e.g. \"@shop_owner\""
                    ),
                ));
            }
        }
        if self.managers.console.iter().any(|m| m.trim().is_empty()) {
            return Err((
                key("managers.console"),
                "an empty name: give each manager a name".into(),
            ));
        }
        let interval =
            parse_duration(&self.timer_interval).map_err(|m| (key("timer_interval"), m))?;
        if interval > Duration::from_secs(600) {
            return Err((
                key("timer_interval"),
                format!(
                    "\"{}\" is too long for timely reminders: use at most \"10m\"",
                    self.timer_interval
                ),
            ));
        }
        Ok(())
    }
}

impl Config {
    /// Load the configuration: `path` if given (it must exist), else
    /// `$FRONTDESK_CONFIG`, else `frontdesk.toml` if present, else defaults;
    /// then apply environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let env_path = std::env::var_os(ENV_CONFIG).map(PathBuf::from);
        let explicit = path.map(Path::to_path_buf).or(env_path);
        let mut config = match explicit {
            Some(p) => Config::from_file(&p)?,
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                Config::from_file(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => Config::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        Ok(config)
    }

    /// Read and validate one file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// Parse and validate configuration text; `path` is used in messages.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |e: toml::de::Error| ConfigError::Invalid {
            path: path.to_path_buf(),
            line: e.span().map(|s| line_of(text, s.start)).unwrap_or(1),
            key: key_from_toml_error(text, e.span()),
            message: e.message().lines().next().unwrap_or("invalid").to_string(),
        };
        let mut config: Config = toml::from_str(text).map_err(invalid)?;
        // `[matcher] model` is read apart: the thresholds are `MatcherSettings`.
        let model = toml::from_str::<ModelKey>(text).map_err(invalid)?.matcher;
        config.matcher_model = model.model;
        config.matcher_wait_for_model = model.wait_for_model;
        config
            .validate()
            .map_err(|(key, message)| ConfigError::Invalid {
                path: path.to_path_buf(),
                line: line_of_key(text, &key),
                key,
                message,
            })?;
        Ok(config)
    }

    /// Apply environment overrides, read through `var`. A malformed value is an error naming the variable.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let bad = |name: &str, message: String| ConfigError::Env {
            name: name.to_string(),
            message,
        };
        if let Some(token) = get(ENV_TELEGRAM_TOKEN) {
            self.telegram.token = Secret::new(token.trim());
        }
        if let Some(chat) = get(ENV_TELEGRAM_STAFF_CHAT) {
            self.telegram.staff_chat = Some(chat.trim().parse().map_err(|_| {
                bad(
                    ENV_TELEGRAM_STAFF_CHAT,
                    "must be the staff group's numeric chat id, e.g. -1001234567890".into(),
                )
            })?);
        }
        if let Some(url) = get(ENV_TELEGRAM_API_URL) {
            self.telegram.api_url = Some(url.trim().to_string());
        }
        if let Some(token) = get(ENV_DISCORD_TOKEN) {
            self.discord.token = Secret::new(token.trim());
        }
        if let Some(channel) = get(ENV_DISCORD_STAFF_CHANNEL) {
            self.discord.staff_channel = Some(channel.trim().parse().map_err(|_| {
                bad(
                    ENV_DISCORD_STAFF_CHANNEL,
                    "must be the staff channel's numeric id".into(),
                )
            })?);
        }
        if let Some(list) = get(ENV_DISCORD_SUPPORT_CHANNELS) {
            self.discord.support_channels = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse().map_err(|_| {
                        bad(
                            ENV_DISCORD_SUPPORT_CHANNELS,
                            format!(
                                "\"{s}\" is not a channel id: give comma-separated numeric ids"
                            ),
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(url) = get(ENV_DISCORD_API_URL) {
            self.discord.api_url = Some(url.trim().to_string());
        }
        self.apply_paths_env(&var);
        Ok(())
    }

    fn apply_paths_env(&mut self, var: &impl Fn(&str) -> Option<String>) {
        if let Some(data) = var(ENV_DATA).filter(|v| !v.trim().is_empty()) {
            self.data = PathBuf::from(data);
        }
        if let Some(intents) = var(ENV_INTENTS).filter(|v| !v.trim().is_empty()) {
            self.intents = PathBuf::from(intents);
        }
    }

    /// How often the running bot looks for changed intent files, `None`
    /// when hot reload is off (validated at load).
    pub fn intents_reload(&self) -> Option<Duration> {
        parse_reload_interval(&self.intents_reload).unwrap_or(Some(Duration::from_secs(2)))
    }

    /// The business-hours calendar of `[hours]`; errors are (key, message).
    pub fn business_hours(&self) -> Result<BusinessHours, (String, String)> {
        self.hours.build().map_err(|(key, message)| {
            let key = if key == "hours" {
                key
            } else {
                format!("hours.{key}")
            };
            (key, message)
        })
    }

    /// Check values that the types alone do not; returns (key, message).
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.languages.is_empty() {
            return Err((
                "languages".into(),
                "at least one language is needed, e.g. languages = [\"en\"]".into(),
            ));
        }
        for lang in &self.languages {
            if !is_language_code(lang) {
                return Err((
                    "languages".into(),
                    format!(
                        "\"{lang}\" is not a language code: use ISO 639-1 codes such as en, es, it"
                    ),
                ));
            }
        }
        if !self.languages.contains(&self.default_language) {
            return Err((
                "default_language".into(),
                format!(
                    "\"{}\" is not among languages {:?}: add it there or pick one of them",
                    self.default_language, self.languages
                ),
            ));
        }
        parse_reload_interval(&self.intents_reload).map_err(|m| ("intents_reload".into(), m))?;
        if let Err(e) = self.matcher.validate() {
            let key = match &e {
                crate::nlu::ConfigError::OutOfRange { name, .. } => (*name).to_string(),
                crate::nlu::ConfigError::ScaleOutOfRange { .. } => "semantic_scale".to_string(),
                _ => "suggest_threshold".to_string(),
            };
            return Err((key, e.to_string()));
        }
        self.tickets.validate()?;
        self.business_hours()?;
        if self.privacy.retention_days > MAX_RETENTION_DAYS {
            return Err((
                "retention_days".into(),
                format!(
                    "{} days is more than {MAX_RETENTION_DAYS}: use 0 to keep conversation text, or a number of days such as 365",
                    self.privacy.retention_days
                ),
            ));
        }
        if let Some(link) = &self.survey.review_link {
            let l = link.trim();
            let ok = (l.starts_with("https://") || l.starts_with("http://"))
                && l.len() > "https://".len()
                && !l.contains(char::is_whitespace);
            if !ok {
                return Err((
                    "survey.review_link".into(),
                    format!(
                        "\"{link}\" is not a link: write the full address, e.g. \"https://g.page/r/your-shop/review\""
                    ),
                ));
            }
        }
        for (lang, overrides) in &self.messages {
            if !is_language_code(lang) {
                return Err((
                    format!("messages.{lang}"),
                    format!("\"{lang}\" is not a language code"),
                ));
            }
            for key in overrides.keys() {
                if !crate::engine::Messages::is_field(key) {
                    return Err((
                        key.clone(),
                        format!(
                            "unknown message \"{key}\" in [messages.{lang}]; known: {}",
                            crate::engine::Messages::field_names().join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The line of `key` ("tickets.targets.complaint.resolution_target"): inside
/// the most specific table header the key lies under, else the first line
/// mentioning its last part as a key, else 1.
fn line_of_key(text: &str, key: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let parts: Vec<&str> = key.split('.').collect();
    let is_key_line = |l: &str, k: &str| {
        let l = l.trim_start();
        l.starts_with(k) && l[k.len()..].trim_start().starts_with(['=', '.'])
    };
    for cut in (1..=parts.len()).rev() {
        let table = parts[..cut].join(".");
        let Some(header) = lines.iter().position(|l| {
            let l = l.trim();
            l.strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
                .is_some_and(|t| t.trim() == table)
        }) else {
            continue;
        };
        let Some(first) = parts[cut..].first() else {
            return header + 1;
        };
        let found = lines[header + 1..]
            .iter()
            .take_while(|l| !l.trim_start().starts_with('['))
            .position(|l| is_key_line(l, first));
        return found.map_or(header + 1, |i| header + 2 + i);
    }
    let last = key.rsplit('.').next().unwrap_or(key);
    lines
        .iter()
        .position(|l| is_key_line(l, last))
        .map(|i| i + 1)
        .unwrap_or(1)
}

/// Parse "90s", "30m", "1h", "1h30m", "2d" into a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let usage = || {
        format!(
            "\"{text}\" is not a duration: write a number with a unit, e.g. \"30m\", \"1h\", \"1h30m\", \"2d\""
        )
    };
    let text_trim = text.trim();
    if text_trim.is_empty() {
        return Err(usage());
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text_trim.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        if c == ' ' {
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(usage()),
        };
        let n: u64 = number.parse().map_err(|_| usage())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(usage)?;
        number.clear();
    }
    if !number.is_empty() || total == 0 {
        return Err(usage());
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("frontdesk.toml"))
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn the_example_config_at_the_root_is_valid() {
        let text = include_str!("../frontdesk.toml");
        let config = parse(text).expect("frontdesk.toml must stay valid");
        assert_eq!(config.default_language, "en");
    }

    #[test]
    fn intents_reload_defaults_to_two_seconds_and_is_validated() {
        let two = Some(Duration::from_secs(2));
        assert_eq!(Config::default().intents_reload(), two);
        assert_eq!(
            parse("intents_reload = \"10s\"\n")
                .unwrap()
                .intents_reload(),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse("intents_reload = \"off\"\n")
                .unwrap()
                .intents_reload(),
            None
        );
        assert_eq!(
            parse("intents_reload = \" Never \"\n")
                .unwrap()
                .intents_reload(),
            None
        );
        for (text, says) in [
            ("intents_reload = \"0s\"", "not a duration"),
            ("intents_reload = \"2h\"", "longer than an hour"),
            ("intents_reload = \"soon\"", "not a duration"),
            ("intents_reload = \"\"", "not a duration"),
            ("intents_reload = \"500ms\"", "not a duration"),
            (
                "intents_reload = \"99999999999999999999d\"",
                "not a duration",
            ),
        ] {
            let err = parse(&format!("languages = [\"en\"]\n{text}\n")).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { line: 2, key, .. } if key == "intents_reload"),
                "{text}: {err}"
            );
            assert!(err.to_string().contains(says), "{text}: {err}");
        }
        assert!(parse("intents_reload = 2\n").is_err());
    }

    #[test]
    fn privacy_retention_is_off_by_default_and_validated() {
        assert_eq!(Config::default().privacy.retention(), None);
        let config = parse("[privacy]\nretention_days = 30\n").unwrap();
        assert_eq!(
            config.privacy.retention(),
            Some(jiff::SignedDuration::from_hours(30 * 24))
        );
        let err = parse("[privacy]\nretention_days = 99999\n").unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { line: 2, key, .. } if key == "retention_days"),
            "{err}"
        );
        assert!(parse("[privacy]\nretention_days = -1\n").is_err());
        assert!(parse("[privacy]\nretention = 30\n").is_err());
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let err = parse("default_language = \"en\"\n\n[survey]\nkindd = \"nps\"\n").unwrap_err();
        match err {
            ConfigError::Invalid { line, key, .. } => {
                assert_eq!(line, 4);
                assert_eq!(key, "kindd");
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let err = parse("languages = [\"en\"]\ndefault_language = \"es\"\n").unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { line: 2, key, .. } if key == "default_language"),
            "{err}"
        );
        let err = parse("[matcher]\nanswer_threshold = 1.5\n").unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { line: 2, .. }),
            "{err}"
        );
        let err = parse("[tickets]\nfirst_response_target = \"soon\"\n").unwrap_err();
        assert!(err.to_string().contains("not a duration"), "{err}");
        let err = parse("[messages.es]\nhello_there = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("unknown message"), "{err}");
        let err = parse("[survey]\nkind = \"stars\"\n").unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { line: 2, .. }),
            "{err}"
        );
        assert!(parse("languages = []\n").is_err());
        assert!(parse("languages = \"en\"\n").is_err());
    }

    /// `[matcher] name = good` reads as `value`; missing is `None`; a value
    /// of the wrong type and each of `bad_values` are refused on line 2,
    /// naming the key.
    fn check_matcher_weight(
        name: &str,
        good: &str,
        value: f32,
        wrong_type: &str,
        bad_values: [&str; 3],
        get: fn(&Config) -> Option<f32>,
    ) {
        let config = parse(&format!("[matcher]\n{name} = {good}\n")).unwrap();
        assert_eq!(get(&config), Some(value), "{name}");
        assert_eq!(get(&parse("").unwrap()), None, "{name}");
        let err = parse(&format!("[matcher]\n{name} = {wrong_type}\n")).unwrap_err();
        assert!(err.to_string().contains(name), "{err}");
        for bad in bad_values {
            let err = parse(&format!("[matcher]\n{name} = {bad}\n")).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { line: 2, key, .. } if key == name),
                "{name} {bad}: {err}"
            );
        }
    }

    #[test]
    fn matcher_semantic_weights_are_read_and_checked() {
        check_matcher_weight(
            "semantic_scale",
            "1.5",
            1.5,
            "\"x\"",
            ["-1", "11", "nan"],
            |c| c.matcher.semantic_scale,
        );
        check_matcher_weight(
            "semantic_ensemble",
            "0.3",
            0.3,
            "\"x\"",
            ["-1", "1.5", "nan"],
            |c| c.matcher.semantic_ensemble,
        );
        check_matcher_weight(
            "semantic_nearest",
            "0",
            0.0,
            "true",
            ["-0.1", "2", "inf"],
            |c| c.matcher.semantic_nearest,
        );
    }

    #[test]
    fn matcher_model_is_read_beside_the_thresholds() {
        let config =
            parse("[matcher]\nanswer_threshold = 0.6\nmodel = \"models/minilm-static\"\n").unwrap();
        assert_eq!(config.matcher.answer_threshold, Some(0.6));
        assert_eq!(
            config.matcher_model.as_deref(),
            Some(Path::new("models/minilm-static"))
        );
        let config = parse("[matcher]\nanswer_threshold = 0.6\n").unwrap();
        assert_eq!(config.matcher_model, None);
        assert_eq!(parse("").unwrap().matcher_model, None);
        let err = parse("[matcher]\nmodel = 3\n").unwrap_err();
        assert!(err.to_string().contains("directory path"), "{err}");
        let err = parse("[matcher]\nmodle = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("modle"), "{err}");
    }

    #[test]
    fn wait_for_model_is_a_bool_beside_the_model() {
        assert_eq!(parse("").unwrap().matcher_wait_for_model, None);
        let config = parse("[matcher]\nmodel = \"m\"\nwait_for_model = true\n").unwrap();
        assert_eq!(config.matcher_wait_for_model, Some(true));
        assert_eq!(config.matcher_model.as_deref(), Some(Path::new("m")));
        let config = parse("[matcher]\nwait_for_model = false\n").unwrap();
        assert_eq!(config.matcher_wait_for_model, Some(false));
        for bad in ["\"yes\"", "1", "[]", "\"\""] {
            let err = parse(&format!("[matcher]\nwait_for_model = {bad}\n")).unwrap_err();
            assert!(err.to_string().contains("true or false"), "{bad}: {err}");
        }
    }

    #[test]
    fn matcher_thresholds_are_overrides_of_the_calibrated_ones() {
        let config = parse("").unwrap();
        assert_eq!(config.matcher.answer_threshold, None);
        assert_eq!(config.matcher.suggest_threshold, None);
        assert!(config.matcher.calibrate);
        let config = parse("[matcher]\nsuggest_threshold = 0.4\ncalibrate = false\n").unwrap();
        assert_eq!(config.matcher.suggest_threshold, Some(0.4));
        assert_eq!(config.matcher.answer_threshold, None);
        assert!(!config.matcher.calibrate);
        // Without calibration the missing one is the default, kept above
        // the given one.
        let fixed = parse("[matcher]\nsuggest_threshold = 0.7\ncalibrate = false\n")
            .unwrap()
            .matcher
            .fixed();
        assert_eq!(
            (fixed.suggest_threshold, fixed.answer_threshold),
            (0.7, 0.7)
        );
        // Only given values are compared with each other.
        assert!(parse("[matcher]\nsuggest_threshold = 0.9\n").is_ok());
        for (text, line, words) in [
            (
                "[matcher]\nanswer_threshold = 0.3\nsuggest_threshold = 0.4\n",
                3,
                "must not be above",
            ),
            (
                "[matcher]\nsuggest_threshold = -0.1\n",
                2,
                "between 0 and 1",
            ),
            ("[matcher]\nambiguity_margin = 2\n", 2, "between 0 and 1"),
            // Type errors point at the table and name the key.
            (
                "[matcher]\ncalibrate = \"yes\"\n",
                1,
                "`calibrate`: invalid type",
            ),
            (
                "[matcher]\nanswer_threshold = \"high\"\n",
                1,
                "`answer_threshold`: invalid type",
            ),
            ("[matcher]\ncalibrated = true\n", 1, "calibrated"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { line: l, .. } if *l == line),
                "{text}: {err}"
            );
            assert!(err.to_string().contains(words), "{text}: {err}");
        }
    }

    #[test]
    fn targets_reminders_hours_and_review_link() {
        let config = parse(
            "[tickets]\nresolution_target = \"8h\"\nclaimed_idle_reminder = \"off\"\nclose_waiting_after_days = 0\n\
             [tickets.targets.complaint]\nfirst_response_target = \"15m\"\n\
             [tickets.managers]\ntelegram = [\"@shop_owner\"]\ndiscord = [42]\n\
             [hours]\ntimezone = \"Europe/Rome\"\nmonday = \"9:00-13:00, 14:00-18:00\"\nholidays = [\"2026-12-25\"]\n\
             [survey]\nreview_link = \"https://example.com/review\"\n",
        )
        .unwrap();
        let targets = config.tickets.targets();
        assert_eq!(targets.resolution, Duration::from_secs(8 * 3600));
        assert_eq!(
            targets.overrides["complaint"].first_response,
            Some(Duration::from_secs(900))
        );
        let policy = config.tickets.policy();
        assert_eq!(policy.claimed_idle, None);
        assert_eq!(policy.close_waiting_after, None);
        assert_eq!(policy.claimed_offer, Some(Duration::from_secs(4 * 3600)));
        assert_eq!(
            config.tickets.managers.mentions(Channel::Discord),
            vec!["<@42>".to_string()]
        );
        assert!(config.business_hours().unwrap().has_schedule());
        assert_eq!(Config::default().tickets.policy(), Policy::default());
        assert_eq!(Config::default().tickets.targets(), Targets::default());
    }

    #[test]
    fn bad_timer_and_hours_values_name_file_line_and_key() {
        let cases: &[(&str, usize, &str, &str)] = &[
            (
                "[tickets]\nresolution_target = \"tomorrow\"\n",
                2,
                "tickets.resolution_target",
                "not a duration",
            ),
            (
                "[tickets]\nfirst_response_target = \"2h\"\nresolution_target = \"1h\"\n",
                3,
                "tickets.resolution_target",
                "shorter",
            ),
            (
                "[tickets]\nclaimed_idle_reminder = \"5h\"\n",
                1,
                "tickets.claimed_offer_after",
                "longer than",
            ),
            (
                "[tickets]\nclaimed_idle_reminder = \"soonish\"\n",
                2,
                "tickets.claimed_idle_reminder",
                "\"off\"",
            ),
            (
                "[tickets]\nclose_waiting_after_days = 1000\n",
                2,
                "tickets.close_waiting_after_days",
                "at most 365",
            ),
            (
                "[tickets]\ntimer_interval = \"1h\"\n",
                2,
                "tickets.timer_interval",
                "at most",
            ),
            (
                "[tickets]\n\n[tickets.targets.complaint]\nresolution_target = \"1 day\"\n",
                4,
                "tickets.targets.complaint.resolution_target",
                "not a duration",
            ),
            (
                "[tickets.targets.\"bad name\"]\nfirst_response_target = \"1h\"\n",
                1,
                "tickets.targets.bad name",
                "escalation reason",
            ),
            (
                "[tickets.managers]\ntelegram = [\"boss\"]\n",
                2,
                "tickets.managers.telegram",
                "@shop_owner",
            ),
            (
                "[hours]\ntimezone = \"Europe/Atlantis\"\n",
                2,
                "hours.timezone",
                "IANA",
            ),
            (
                "[hours]\nmonday = \"25:00-9:00\"\n",
                2,
                "hours.monday",
                "not opening hours",
            ),
            (
                "[hours]\ntuesday = \"18:00-9:00\"\n",
                2,
                "hours.tuesday",
                "ends before it starts",
            ),
            (
                "[hours]\nfriday = \"9:00-14:00, 13:00-17:00\"\n",
                2,
                "hours.friday",
                "overlaps",
            ),
            (
                "[hours]\nmonday = \"9:00-17:00\"\nholidays = [\"25/12/2026\"]\n",
                3,
                "hours.holidays",
                "YYYY-MM-DD",
            ),
            (
                "[hours]\nsunday = \"closed\"\n",
                1,
                "hours",
                "every day is closed",
            ),
            (
                "[survey]\nreview_link = \"our website\"\n",
                2,
                "survey.review_link",
                "not a link",
            ),
        ];
        for (text, want_line, want_key, want_message) in cases {
            match parse(text) {
                Err(ConfigError::Invalid {
                    line, key, message, ..
                }) => {
                    assert_eq!(
                        (line, key.as_str()),
                        (*want_line, *want_key),
                        "{text}: {message}"
                    );
                    assert!(message.contains(want_message), "{text}: {message}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn env_overrides_file() {
        let mut config =
            parse("data = \"from-file\"\n[telegram]\ntoken = \"file-token\"\n").unwrap();
        config
            .apply_env(|k| (k == ENV_DATA).then(|| "from-env".to_string()))
            .unwrap();
        assert_eq!(config.data, PathBuf::from("from-env"));
        config
            .apply_env(|k| (k == ENV_DATA).then(|| "  ".to_string()))
            .unwrap();
        assert_eq!(config.data, PathBuf::from("from-env"));
        assert_eq!(config.telegram.token.expose(), "file-token");
        config
            .apply_env(|k| match k {
                ENV_TELEGRAM_TOKEN => Some("123:env-token".into()),
                ENV_TELEGRAM_STAFF_CHAT => Some("-10042".into()),
                ENV_DISCORD_SUPPORT_CHANNELS => Some("1, 2,3".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.telegram.token.expose(), "123:env-token");
        assert_eq!(config.telegram.staff_chat, Some(-10_042));
        assert_eq!(config.discord.support_channels, vec![1, 2, 3]);
        let err = config
            .apply_env(|k| (k == ENV_TELEGRAM_STAFF_CHAT).then(|| "staff".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains(ENV_TELEGRAM_STAFF_CHAT), "{err}");
        let err = config
            .apply_env(|k| (k == ENV_DISCORD_SUPPORT_CHANNELS).then(|| "1,x".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("\"x\""), "{err}");
    }

    #[test]
    fn tokens_never_show_in_debug_output() {
        let config = parse("[telegram]\ntoken = \"123456:SECRET\"\n").unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert_eq!(parse_duration("45 m").unwrap(), Duration::from_secs(2700));
        for bad in ["", "h", "10", "0m", "1x", "99999999999999999999d", "-1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}

//! The period and channel a report covers: `--since`, `--until` and
//! `--channel`, parsed with errors that say what is expected.
//!
//! A date (`2026-11-01`) is a day in the shop's time zone (`hours.timezone`):
//! `--since` starts at its first instant, `--until` includes the whole day.
//! A timestamp with an offset (`2026-11-01T09:30:00Z`, `…+01:00`) is that
//! instant; one without (`2026-11-01T09:30`, `2026-11-01 09:30:00`) is read
//! in the shop's time zone. The period is `since` inclusive to `until`
//! exclusive.

use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::model::Channel;

/// Why the period or channel given to a report is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    /// A value of `--since` / `--until` that is neither a date nor a timestamp.
    #[error(
        "{flag} {value:?} is not a date or a timestamp: expected a date like 2026-11-01, or a timestamp like 2026-11-01T09:30:00Z (2026-11-01T09:30 is read in the shop's time zone)"
    )]
    BadValue {
        /// `--since` or `--until`.
        flag: &'static str,
        /// What was given.
        value: String,
    },
    /// `--since` not before `--until`.
    #[error(
        "--since {since} is not before --until {until}: the period would be empty (a date in --until counts as the whole day)"
    )]
    Backwards {
        /// The start, as given.
        since: String,
        /// The end, as given.
        until: String,
    },
    /// An unknown channel name.
    #[error("{0}")]
    Channel(String),
}

/// Which records a report covers. A conversation belongs to the period in
/// which it started, a ticket to the one in which it opened, a rating to the
/// one in which it was given; the channel is the customer's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Filter {
    /// From this instant on (inclusive).
    pub since: Option<Timestamp>,
    /// Before this instant (exclusive).
    pub until: Option<Timestamp>,
    /// Only customers on this channel.
    pub channel: Option<Channel>,
}

impl Filter {
    /// A filter from the command-line values: dates and timestamps as the
    /// module documentation describes, read in `tz` when they carry no offset.
    pub fn parse(
        since: Option<&str>,
        until: Option<&str>,
        channel: Option<&str>,
        tz: &TimeZone,
    ) -> Result<Filter, PeriodError> {
        let since_at = since
            .map(|v| parse_bound("--since", v, tz, false))
            .transpose()?;
        let until_at = until
            .map(|v| parse_bound("--until", v, tz, true))
            .transpose()?;
        if let (Some(s), Some(u)) = (since_at, until_at)
            && s >= u
        {
            return Err(PeriodError::Backwards {
                since: since.unwrap_or_default().trim().to_string(),
                until: until.unwrap_or_default().trim().to_string(),
            });
        }
        let channel = channel
            .map(|c| {
                Channel::from_str(&c.trim().to_ascii_lowercase()).map_err(PeriodError::Channel)
            })
            .transpose()?;
        Ok(Filter {
            since: since_at,
            until: until_at,
            channel,
        })
    }

    /// Whether a record made at `at` by a customer on `channel` is covered.
    pub fn covers(&self, at: Timestamp, channel: Channel) -> bool {
        self.since.is_none_or(|s| at >= s)
            && self.until.is_none_or(|u| at < u)
            && self.channel.is_none_or(|c| c == channel)
    }
}

/// One bound: a date (its start; for `until`, the start of the next day) or a timestamp.
fn parse_bound(
    flag: &'static str,
    value: &str,
    tz: &TimeZone,
    until: bool,
) -> Result<Timestamp, PeriodError> {
    let bad = || PeriodError::BadValue {
        flag,
        value: value.to_string(),
    };
    let v = value.trim();
    let is_date = v.len() == 10
        && v.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if is_date {
        let date = Date::from_str(v).map_err(|_| bad())?;
        let day = if until {
            date.tomorrow().map_err(|_| bad())?
        } else {
            date
        };
        return day
            .to_zoned_datetime(tz.clone())
            .map(|z| z.timestamp())
            .map_err(|_| bad());
    }
    if let Ok(t) = Timestamp::from_str(v) {
        return Ok(t);
    }
    let civil = DateTime::from_str(&v.replacen(' ', "T", 1)).map_err(|_| bad())?;
    civil
        .to_zoned_datetime(tz.clone())
        .map(|z| z.timestamp())
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn dates_are_whole_days_in_the_shop_time_zone() {
        let madrid = TimeZone::get("Europe/Madrid").unwrap();
        let f = Filter::parse(Some("2026-11-01"), Some("2026-11-30"), None, &madrid).unwrap();
        assert_eq!(f.since, Some(ts("2026-10-31T23:00:00Z")));
        assert_eq!(f.until, Some(ts("2026-11-30T23:00:00Z")));
        let f =
            Filter::parse(Some("2026-11-01"), Some("2026-11-01"), None, &TimeZone::UTC).unwrap();
        assert!(f.covers(ts("2026-11-01T23:59:59Z"), Channel::Console));
        assert!(!f.covers(ts("2026-11-02T00:00:00Z"), Channel::Console));
        assert!(!f.covers(ts("2026-10-31T23:59:59Z"), Channel::Console));
    }

    #[test]
    fn timestamps_with_and_without_offset() {
        let madrid = TimeZone::get("Europe/Madrid").unwrap();
        let f = Filter::parse(
            Some("2026-11-01T09:30:00Z"),
            Some("2026-11-02 10:00"),
            Some("telegram"),
            &madrid,
        )
        .unwrap();
        assert_eq!(f.since, Some(ts("2026-11-01T09:30:00Z")));
        assert_eq!(f.until, Some(ts("2026-11-02T09:00:00Z")));
        assert_eq!(f.channel, Some(Channel::Telegram));
        assert!(!f.covers(ts("2026-11-01T10:00:00Z"), Channel::Discord));
        assert!(f.covers(ts("2026-11-01T10:00:00Z"), Channel::Telegram));
    }

    #[test]
    fn bad_values_say_what_is_expected() {
        let tz = TimeZone::UTC;
        for bad in ["2026-13-01", "01/11/2026", "yesterday", "", "2026-11-31"] {
            let e = Filter::parse(Some(bad), None, None, &tz).unwrap_err();
            assert!(
                matches!(
                    e,
                    PeriodError::BadValue {
                        flag: "--since",
                        ..
                    }
                ),
                "{bad}: {e}"
            );
            assert!(e.to_string().contains("2026-11-01"), "{e}");
        }
        let e = Filter::parse(None, Some("soon"), None, &tz).unwrap_err();
        assert!(e.to_string().starts_with("--until \"soon\""), "{e}");
        let e = Filter::parse(Some("2026-11-02"), Some("2026-11-01"), None, &tz).unwrap_err();
        assert!(matches!(e, PeriodError::Backwards { .. }), "{e}");
        let e = Filter::parse(
            Some("2026-11-01T10:00:00Z"),
            Some("2026-11-01T10:00:00Z"),
            None,
            &tz,
        )
        .unwrap_err();
        assert!(matches!(e, PeriodError::Backwards { .. }), "{e}");
        let f = Filter::parse(None, None, Some("Discord"), &tz).unwrap();
        assert_eq!(f.channel, Some(Channel::Discord));
        let e = Filter::parse(None, None, Some("irc"), &tz).unwrap_err();
        assert!(
            e.to_string().contains("console, telegram or discord"),
            "{e}"
        );
    }
}

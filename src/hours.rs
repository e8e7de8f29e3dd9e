//! Business hours: a weekly schedule, holidays and a time zone, and the
//! calendar arithmetic the ticket clocks need: is the shop open now, when does
//! it open next, what time is "one business hour from now", how many business
//! seconds lie between two instants. Daylight-saving changes are handled by
//! doing all arithmetic on instants and converting each day's opening times in
//! the shop's time zone.
//!
//! Without a configured schedule the shop is always open and business time is
//! wall-clock time.

use std::collections::BTreeSet;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

/// How far ahead the calendar looks for opening hours (two years).
const HORIZON_DAYS: i32 = 731;

/// `[hours]` of frontdesk.toml as written.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HoursConfig {
    /// IANA time zone, e.g. "Europe/Madrid" (default UTC).
    pub timezone: Option<String>,
    /// Opening hours per weekday: "9:00-18:00", "9:00-13:00, 15:00-19:00", "" = closed.
    pub monday: Option<String>,
    /// Tuesday.
    pub tuesday: Option<String>,
    /// Wednesday.
    pub wednesday: Option<String>,
    /// Thursday.
    pub thursday: Option<String>,
    /// Friday.
    pub friday: Option<String>,
    /// Saturday.
    pub saturday: Option<String>,
    /// Sunday.
    pub sunday: Option<String>,
    /// Closed days, "YYYY-MM-DD".
    pub holidays: Vec<String>,
}

impl HoursConfig {
    /// True when no weekday is given: the shop is always open.
    pub fn is_unset(&self) -> bool {
        self.days().iter().all(|(_, d)| d.is_none())
    }

    fn days(&self) -> [(Weekday, &Option<String>); 7] {
        [
            (Weekday::Monday, &self.monday),
            (Weekday::Tuesday, &self.tuesday),
            (Weekday::Wednesday, &self.wednesday),
            (Weekday::Thursday, &self.thursday),
            (Weekday::Friday, &self.friday),
            (Weekday::Saturday, &self.saturday),
            (Weekday::Sunday, &self.sunday),
        ]
    }

    /// Validate and build the calendar. Errors are (key, message).
    pub fn build(&self) -> Result<BusinessHours, (String, String)> {
        let tz = match &self.timezone {
            None => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|_| {
                (
                    "timezone".to_string(),
                    format!(
                        "\"{name}\" is not a known time zone: use an IANA name such as \"Europe/Madrid\" or \"America/New_York\""
                    ),
                )
            })?,
        };
        if self.is_unset() {
            return Ok(BusinessHours::always_open(tz));
        }
        let mut week: [Vec<(Time, Time)>; 7] = Default::default();
        for (day, spec) in self.days() {
            let key = format!("{day:?}").to_lowercase();
            let Some(spec) = spec else { continue };
            let ranges = parse_ranges(spec).map_err(|m| (key.clone(), m))?;
            week[day.to_monday_zero_offset() as usize] = ranges;
        }
        if week.iter().all(Vec::is_empty) {
            return Err((
                "hours".into(),
                "every day is closed: give at least one day opening hours, or remove [hours] to be always open".into(),
            ));
        }
        let mut holidays = BTreeSet::new();
        for h in &self.holidays {
            let date: Date = h.trim().parse().map_err(|_| {
                (
                    "holidays".to_string(),
                    format!("\"{h}\" is not a date: write holidays as \"YYYY-MM-DD\""),
                )
            })?;
            holidays.insert(date);
        }
        Ok(BusinessHours {
            tz,
            week: Some(week),
            holidays,
        })
    }
}

/// "9:00-18:00, 20:00-22:00" → ranges; "" or "closed" → none.
fn parse_ranges(spec: &str) -> Result<Vec<(Time, Time)>, String> {
    let spec = spec.trim();
    if spec.is_empty() || spec.eq_ignore_ascii_case("closed") {
        return Ok(Vec::new());
    }
    let usage = || {
        format!(
            "\"{spec}\" is not opening hours: write \"9:00-18:00\", several ranges separated by commas, or \"closed\""
        )
    };
    let mut ranges: Vec<(Time, Time)> = Vec::new();
    for part in spec.split(',') {
        let (a, b) = part.split_once('-').ok_or_else(usage)?;
        let start = parse_time(a).ok_or_else(usage)?;
        let end = parse_time(b).ok_or_else(usage)?;
        if end <= start {
            return Err(format!(
                "\"{}\" ends before it starts (ranges past midnight are not supported: split them over two days)",
                part.trim()
            ));
        }
        if ranges.iter().any(|(s, e)| start < *e && *s < end) {
            return Err(format!(
                "\"{}\" overlaps another range of the same day",
                part.trim()
            ));
        }
        ranges.push((start, end));
    }
    ranges.sort();
    Ok(ranges)
}

/// How "24:00" is kept: the last instant of the day.
const END_OF_DAY: Time = Time::MAX;

/// "9:00", "09:30", "24:00" (end of day).
fn parse_time(text: &str) -> Option<Time> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m) = (h.trim(), m.trim());
    if h.is_empty() || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    if h == 24 && m == 0 {
        return Some(END_OF_DAY);
    }
    Time::new(h, m, 0, 0).ok()
}

/// The shop's calendar.
#[derive(Debug, Clone, PartialEq)]
pub struct BusinessHours {
    tz: TimeZone,
    /// Ranges per weekday, Monday first; None = always open.
    week: Option<[Vec<(Time, Time)>; 7]>,
    holidays: BTreeSet<Date>,
}

impl Default for BusinessHours {
    fn default() -> Self {
        BusinessHours::always_open(TimeZone::UTC)
    }
}

impl BusinessHours {
    /// Open around the clock.
    pub fn always_open(tz: TimeZone) -> BusinessHours {
        BusinessHours {
            tz,
            week: None,
            holidays: BTreeSet::new(),
        }
    }

    /// True when the shop keeps opening hours (not around the clock).
    pub fn has_schedule(&self) -> bool {
        self.week.is_some()
    }

    /// The shop's time zone.
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The open intervals of one local date, as instants.
    fn intervals(&self, date: Date) -> Vec<(Timestamp, Timestamp)> {
        let Some(week) = &self.week else {
            return Vec::new();
        };
        if self.holidays.contains(&date) {
            return Vec::new();
        }
        week[date.weekday().to_monday_zero_offset() as usize]
            .iter()
            .filter_map(|(s, e)| {
                let start = date
                    .to_datetime(*s)
                    .to_zoned_datetime(self.tz.clone())
                    .ok()?;
                // "24:00" is kept as the last instant of the day; it means the
                // start of the next one.
                let end = if *e == END_OF_DAY {
                    date.tomorrow()
                        .ok()?
                        .to_zoned_datetime(self.tz.clone())
                        .ok()?
                } else {
                    date.to_datetime(*e)
                        .to_zoned_datetime(self.tz.clone())
                        .ok()?
                };
                (start.timestamp() < end.timestamp()).then(|| (start.timestamp(), end.timestamp()))
            })
            .collect()
    }

    /// Open intervals that end after `from`, in order, up to the horizon.
    fn intervals_from(&self, from: Timestamp) -> impl Iterator<Item = (Timestamp, Timestamp)> + '_ {
        let first = from.to_zoned_datetime(self.tz.clone()).date();
        // Start a day early: an interval of yesterday's date cannot reach today
        // (ranges end by midnight), but DST shifts make the guard cheap insurance.
        (-1..HORIZON_DAYS)
            .filter_map(move |offset| {
                first
                    .checked_add(SignedDuration::from_hours(24 * offset as i64))
                    .ok()
            })
            .flat_map(move |date| self.intervals(date))
            .filter(move |(_, end)| *end > from)
    }

    /// Whether the shop is open at `t`.
    pub fn is_open(&self, t: Timestamp) -> bool {
        if self.week.is_none() {
            return true;
        }
        self.intervals_from(t)
            .next()
            .is_some_and(|(start, _)| start <= t)
    }

    /// `t` if open, else the next opening instant (None if never within the horizon).
    pub fn next_open(&self, t: Timestamp) -> Option<Timestamp> {
        if self.week.is_none() {
            return Some(t);
        }
        self.intervals_from(t).next().map(|(start, _)| start.max(t))
    }

    /// The instant `business` of open time after `start`.
    pub fn add(&self, start: Timestamp, business: SignedDuration) -> Timestamp {
        if self.week.is_none() || business <= SignedDuration::ZERO {
            return start.checked_add(business).unwrap_or(start);
        }
        let mut left = business;
        for (open, close) in self.intervals_from(start) {
            let from = open.max(start);
            let span = close.duration_since(from);
            if left <= span {
                return from.checked_add(left).unwrap_or(from);
            }
            left -= span;
        }
        // No opening within the horizon: fall back to wall-clock time.
        start.checked_add(business).unwrap_or(start)
    }

    /// Open time between `from` and `to` (zero if `to` is before `from`).
    pub fn between(&self, from: Timestamp, to: Timestamp) -> SignedDuration {
        if to <= from {
            return SignedDuration::ZERO;
        }
        if self.week.is_none() {
            return to.duration_since(from);
        }
        let mut total = SignedDuration::ZERO;
        for (open, close) in self.intervals_from(from) {
            if open >= to {
                break;
            }
            total += close.min(to).duration_since(open.max(from));
        }
        total
    }

    /// `t` in the shop's time zone, for messages: "Monday 9:00".
    pub fn local(&self, t: Timestamp) -> jiff::ZonedDateTime {
        t.to_zoned_datetime(self.tz.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> BusinessHours {
        HoursConfig {
            timezone: Some("Europe/Madrid".into()),
            monday: Some("9:00-18:00".into()),
            tuesday: Some("9:00-18:00".into()),
            wednesday: Some("9:00-18:00".into()),
            thursday: Some("9:00-18:00".into()),
            friday: Some("9:00-18:00".into()),
            saturday: Some("10:00-14:00".into()),
            sunday: Some("closed".into()),
            holidays: vec!["2026-12-25".into()],
        }
        .build()
        .unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn open_and_closed() {
        let h = shop();
        // Monday 2026-01-05, Madrid is UTC+1 in winter.
        assert!(h.is_open(ts("2026-01-05T08:00:00Z"))); // 9:00 local
        assert!(!h.is_open(ts("2026-01-05T07:59:59Z")));
        assert!(!h.is_open(ts("2026-01-05T17:00:00Z"))); // 18:00 local: closed
        assert!(!h.is_open(ts("2026-01-11T10:00:00Z"))); // Sunday
        assert!(!h.is_open(ts("2026-12-25T10:00:00Z"))); // holiday (a Friday)
    }

    #[test]
    fn next_open_skips_the_weekend() {
        let h = shop();
        // Saturday 2026-01-10 15:00 local → Monday 9:00 local.
        let t = h.next_open(ts("2026-01-10T14:00:00Z")).unwrap();
        assert_eq!(t, ts("2026-01-12T08:00:00Z"));
        assert_eq!(h.local(t).strftime("%A %H:%M").to_string(), "Monday 09:00");
    }

    #[test]
    fn business_time_runs_only_while_open() {
        let h = shop();
        // Friday 17:00 local + 2 business hours = 1 h Friday + 1 h Saturday (10:00–11:00).
        let friday_17 = ts("2026-01-09T16:00:00Z");
        assert_eq!(
            h.add(friday_17, SignedDuration::from_hours(2)),
            ts("2026-01-10T10:00:00Z")
        );
        // + 6 h: 1 h Fri, 4 h Sat, 1 h Monday → Monday 10:00 local.
        assert_eq!(
            h.add(friday_17, SignedDuration::from_hours(6)),
            ts("2026-01-12T09:00:00Z")
        );
        assert_eq!(
            h.between(friday_17, ts("2026-01-12T09:00:00Z")),
            SignedDuration::from_hours(6)
        );
        assert_eq!(
            h.between(ts("2026-01-12T09:00:00Z"), friday_17),
            SignedDuration::ZERO
        );
    }

    #[test]
    fn daylight_saving_changes() {
        let h = shop();
        // Spring forward: Sunday 2026-03-29; Monday 30 opens at 9:00 CEST = 07:00 UTC.
        assert_eq!(
            h.next_open(ts("2026-03-29T12:00:00Z")).unwrap(),
            ts("2026-03-30T07:00:00Z")
        );
        // Friday 27 March 17:00 CET (16:00Z) + 2 h → Saturday 28 11:00 CET (10:00Z).
        assert_eq!(
            h.add(ts("2026-03-27T16:00:00Z"), SignedDuration::from_hours(2)),
            ts("2026-03-28T10:00:00Z")
        );
        // Fall back: Sunday 2026-10-25; Monday 26 opens at 9:00 CET = 08:00 UTC.
        assert_eq!(
            h.next_open(ts("2026-10-24T13:00:00Z")).unwrap(),
            ts("2026-10-26T08:00:00Z")
        );
        // Across the change, a business day still has nine hours.
        assert_eq!(
            h.between(ts("2026-10-23T00:00:00Z"), ts("2026-10-24T00:00:00Z")),
            SignedDuration::from_hours(9)
        );
    }

    #[test]
    fn always_open_without_a_schedule() {
        let h = HoursConfig::default().build().unwrap();
        assert!(!h.has_schedule());
        let t = ts("2026-01-11T03:00:00Z");
        assert!(h.is_open(t));
        assert_eq!(
            h.add(t, SignedDuration::from_hours(1)),
            ts("2026-01-11T04:00:00Z")
        );
        assert_eq!(
            h.between(t, ts("2026-01-11T04:30:00Z")),
            SignedDuration::from_mins(90)
        );
    }

    #[test]
    fn bad_configuration_says_what_to_write() {
        let bad = |c: HoursConfig| c.build().unwrap_err();
        let (key, msg) = bad(HoursConfig {
            timezone: Some("Mars/Olympus".into()),
            ..HoursConfig::default()
        });
        assert_eq!(key, "timezone");
        assert!(msg.contains("IANA"));
        let (key, _) = bad(HoursConfig {
            monday: Some("9-18".into()),
            ..HoursConfig::default()
        });
        assert_eq!(key, "monday");
        let (_, msg) = bad(HoursConfig {
            friday: Some("18:00-9:00".into()),
            ..HoursConfig::default()
        });
        assert!(msg.contains("ends before it starts"));
        let (_, msg) = bad(HoursConfig {
            friday: Some("9:00-13:00, 12:00-15:00".into()),
            ..HoursConfig::default()
        });
        assert!(msg.contains("overlaps"));
        let (key, _) = bad(HoursConfig {
            monday: Some("closed".into()),
            ..HoursConfig::default()
        });
        assert_eq!(key, "hours");
        let (key, _) = bad(HoursConfig {
            monday: Some("9:00-17:00".into()),
            holidays: vec!["Christmas".into()],
            ..HoursConfig::default()
        });
        assert_eq!(key, "holidays");
        assert!(parse_ranges("9:00-13:00, 15:00-24:00").is_ok());
        assert!(parse_ranges("25:00-26:00").is_err());
        assert!(parse_ranges("25:00-9:00").is_err());
        assert!(parse_ranges("9:5-10:00").is_err());
        assert!(parse_ranges("+9:00-10:00").is_err());
    }

    #[test]
    fn open_until_midnight_counts_the_whole_day() {
        let h = HoursConfig {
            monday: Some("0:00-24:00".into()),
            ..HoursConfig::default()
        }
        .build()
        .unwrap();
        assert_eq!(
            h.between(ts("2026-01-05T00:00:00Z"), ts("2026-01-06T00:00:00Z")),
            SignedDuration::from_hours(24)
        );
        assert!(h.is_open(ts("2026-01-05T23:59:59Z")));
        assert!(!h.is_open(ts("2026-01-06T00:00:00Z")));
    }
}

//! The report as text for a terminal (aligned tables, bar charts for the
//! rating distributions) and as CSV for spreadsheets.
//!
//! The CSV layout is "long": a header `section,figure,item,value` and one row
//! per figure. `item` says which one when a figure has several (a reason, a
//! score, a customer, a group number) and is empty otherwise; values are
//! plain numbers (seconds, percentages 0–100, counts) or text. Empty values
//! mean "no data" (no ratings, no tickets).

use std::fmt::Write as _;

use super::{Attainment, Report, ScoreCount, channel_name, human_seconds};
use crate::model::Channel;
use crate::report::Filter;

/// Longest bar of a distribution chart, in characters.
const BAR_WIDTH: usize = 30;
/// Complaining customers listed in the text report (all are in JSON and CSV).
const COMPLAINERS_SHOWN: usize = 10;
/// Detractor comments listed in the text report, the most recent (all are in JSON and CSV).
const COMMENTS_SHOWN: usize = 10;
/// Unanswered groups listed in the text report (all are in JSON and CSV).
const GROUPS_SHOWN: usize = 15;

/// "2026-11-01 00:00 CET to 2026-12-01 00:00 CET, telegram" and the like, in the shop's time zone.
pub fn describe_filter(f: &Filter, tz: &jiff::tz::TimeZone) -> String {
    let at = |t: jiff::Timestamp| {
        t.to_zoned_datetime(tz.clone())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string()
    };
    let period = match (f.since, f.until) {
        (None, None) => "all time".to_string(),
        (Some(s), None) => format!("from {}", at(s)),
        (None, Some(u)) => format!("before {}", at(u)),
        (Some(s), Some(u)) => format!("{} to {}", at(s), at(u)),
    };
    format!("{period}, {}", channel_name(f.channel))
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "—".to_string(), |v| format!("{v}{unit}"))
}

fn dur(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), human_seconds)
}

fn with_pct(n: u64, pct: Option<f64>) -> String {
    match pct {
        Some(p) => format!("{n} ({p} %)"),
        None => n.to_string(),
    }
}

/// Rows of (label, value), the labels padded to one width.
fn table(out: &mut String, rows: &[(String, String)]) {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<width$}  {v}");
    }
}

/// A bar chart: one line per score, the bar scaled to the largest count.
fn bars(out: &mut String, dist: &[ScoreCount]) {
    let total: u64 = dist.iter().map(|d| d.count).sum();
    let top = dist.iter().map(|d| d.count).max().unwrap_or(0).max(1);
    let count_width = top.to_string().len();
    for d in dist.iter().rev() {
        let len = (d.count as usize * BAR_WIDTH).div_ceil(top as usize);
        let pct = if total > 0 {
            format!("{:>3.0} %", d.count as f64 * 100.0 / total as f64)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "    {:>2} {:<BAR_WIDTH$} {:>count_width$}  {pct}",
            d.score,
            "█".repeat(len),
            d.count
        );
    }
}

fn sla_row(name: &str, a: &Attainment) -> (String, String) {
    (
        name.to_string(),
        format!(
            "{} met, {} missed, {} running{}",
            a.met,
            a.missed,
            a.running,
            a.percent_met
                .map(|p| format!(" → {p} % met"))
                .unwrap_or_default()
        ),
    )
}

fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() > max {
        let cut: String = flat.chars().take(max - 1).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

impl Report {
    /// The report as text for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Report: {}\n",
            describe_filter(&self.filter, &self.time_zone)
        );
        out.push_str("Volume\n");
        let mut rows = vec![
            ("Conversations".to_string(), self.conversations.to_string()),
            ("Customer messages".into(), self.messages.to_string()),
            (
                "  not understood".into(),
                self.unanswered_messages.to_string(),
            ),
            (
                "Answered by the bot".into(),
                with_pct(
                    self.answered_by_bot,
                    super::percent(self.answered_by_bot, self.conversations),
                ),
            ),
            (
                "Resolved by the bot".into(),
                with_pct(self.resolved_by_bot, self.bot_resolution_percent),
            ),
            (
                "Escalated to a person".into(),
                with_pct(self.escalated, self.escalation_percent),
            ),
        ];
        for r in &self.escalations_by_reason {
            rows.push((
                format!(
                    "  {}",
                    crate::sla::REASON_KEYS
                        .iter()
                        .find(|(k, _)| *k == r.reason)
                        .map_or(r.reason.as_str(), |(_, reason)| reason.describe())
                ),
                with_pct(r.tickets, r.percent_of_conversations),
            ));
        }
        table(&mut out, &rows);

        out.push_str("\nSpeed (business time)\n");
        table(
            &mut out,
            &[
                (
                    "Tickets".into(),
                    format!(
                        "{} ({} open, {} resolved)",
                        self.tickets, self.tickets_open, self.tickets_resolved
                    ),
                ),
                (
                    "First response".into(),
                    format!(
                        "median {}, 90 % within {}",
                        dur(self.median_first_response_seconds),
                        dur(self.p90_first_response_seconds)
                    ),
                ),
                (
                    "Resolution".into(),
                    format!(
                        "median {}, 90 % within {}",
                        dur(self.median_resolution_seconds),
                        dur(self.p90_resolution_seconds)
                    ),
                ),
                sla_row("First-response target", &self.first_response_sla),
                sla_row("Resolution target", &self.resolution_sla),
            ],
        );

        out.push_str("\nSatisfaction\n");
        table(
            &mut out,
            &[
                ("Ratings".into(), self.ratings.to_string()),
                (
                    "CSAT average (1–5)".into(),
                    format!(
                        "{} from {} rating(s)",
                        opt(self.csat_average, ""),
                        self.csat_ratings
                    ),
                ),
                (
                    "NPS (−100 to 100)".into(),
                    format!("{} from {} rating(s)", opt(self.nps, ""), self.nps_ratings),
                ),
                (
                    "  promoters / passives / detractors".into(),
                    format!(
                        "{} / {} / {}",
                        self.promoters, self.passives, self.detractors
                    ),
                ),
            ],
        );
        if self.csat_ratings > 0 {
            out.push_str("  CSAT scores\n");
            bars(&mut out, &self.csat_distribution);
        }
        if self.nps_ratings > 0 {
            out.push_str("  NPS scores\n");
            bars(&mut out, &self.nps_distribution);
        }
        if !self.detractor_comments.is_empty() {
            let n = self.detractor_comments.len();
            let _ = writeln!(
                out,
                "  What detractors said ({n}{})",
                if n > COMMENTS_SHOWN {
                    format!(", the latest {COMMENTS_SHOWN}; --json or --csv lists them all")
                } else {
                    String::new()
                }
            );
            for c in &self.detractor_comments[n.saturating_sub(COMMENTS_SHOWN)..] {
                let (_, max) = c.kind.range();
                let _ = writeln!(
                    out,
                    "    {}  {}/{max}  {} ({}): {}",
                    c.at.strftime("%Y-%m-%d"),
                    c.score,
                    one_line(&c.name, 30),
                    c.customer,
                    one_line(&c.comment, 120)
                );
            }
        }

        out.push_str("\nPeople\n");
        if self.top_recommenders.is_empty() {
            out.push_str("  Top recommenders: none yet\n");
        } else {
            out.push_str("  Top recommenders (promoter ratings / ratings, average)\n");
            let rows: Vec<(String, String)> = self
                .top_recommenders
                .iter()
                .map(|r| {
                    (
                        format!("  {} ({})", one_line(&r.name, 30), r.customer),
                        format!(
                            "{} / {}, {} %",
                            r.promoter_ratings, r.ratings, r.average_percent
                        ),
                    )
                })
                .collect();
            table(&mut out, &rows);
        }
        if self.complaints.is_empty() {
            out.push_str("  Open or repeated complaints: none\n");
        } else {
            let _ = writeln!(
                out,
                "  Open or repeated complaints ({}; open / all, detractor ratings, tickets)",
                self.complaints.len()
            );
            let rows: Vec<(String, String)> = self
                .complaints
                .iter()
                .take(COMPLAINERS_SHOWN)
                .map(|c| {
                    let tickets: Vec<String> = c.tickets.iter().map(|n| format!("#{n}")).collect();
                    (
                        format!("  {} ({})", one_line(&c.name, 30), c.customer),
                        format!(
                            "{} / {}, {} detractor, {}",
                            c.open_complaints,
                            c.complaints,
                            c.detractor_ratings,
                            if tickets.is_empty() {
                                "no tickets".to_string()
                            } else {
                                tickets.join(" ")
                            }
                        ),
                    )
                })
                .collect();
            table(&mut out, &rows);
            if self.complaints.len() > COMPLAINERS_SHOWN {
                let _ = writeln!(
                    out,
                    "    … and {} more (--json or --csv lists them all)",
                    self.complaints.len() - COMPLAINERS_SHOWN
                );
            }
        }
        out.push('\n');
        out.push_str(&self.unanswered_text());
        out.trim_end().to_string()
    }

    /// The listening section alone, as text (`frontdesk report unanswered`).
    pub fn unanswered_text(&self) -> String {
        let mut out = String::new();
        let total: u64 = self.unanswered.iter().map(|g| g.count).sum();
        if total == 0 {
            out.push_str("Questions the bot could not answer: none\n");
            return out;
        }
        let _ = writeln!(
            out,
            "Questions the bot could not answer: {total} in {} group(s), most frequent first",
            self.unanswered.len()
        );
        let width = self
            .unanswered
            .first()
            .map_or(1, |g| g.count.to_string().len());
        for g in self.unanswered.iter().take(GROUPS_SHOWN) {
            let examples: Vec<String> = g
                .examples
                .iter()
                .map(|e| format!("\"{}\"", one_line(e, 60)))
                .collect();
            let langs: Vec<String> = g.languages.keys().cloned().collect();
            let _ = writeln!(
                out,
                "  {:>width$}  [{}] {}",
                g.count,
                langs.join(" "),
                examples.join(", ")
            );
        }
        if self.unanswered.len() > GROUPS_SHOWN {
            let _ = writeln!(
                out,
                "  … and {} smaller group(s) (--json, --csv or --toml list them all)",
                self.unanswered.len() - GROUPS_SHOWN
            );
        }
        out.push_str("  (`frontdesk report unanswered --toml` drafts intents from them)\n");
        out
    }

    /// The report as CSV (`section,figure,item,value`; see the module documentation).
    pub fn to_csv(&self) -> String {
        let mut w = Csv::default();
        let f = &self.filter;
        let ts = |t: Option<jiff::Timestamp>| t.map(|t| t.to_string()).unwrap_or_default();
        w.row("period", "since", "", &ts(f.since));
        w.row("period", "until", "", &ts(f.until));
        w.row(
            "period",
            "channel",
            "",
            f.channel.map_or("all", Channel::as_str),
        );
        let n = |v: u64| v.to_string();
        let o = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        w.row("volume", "conversations", "", &n(self.conversations));
        w.row("volume", "messages", "", &n(self.messages));
        w.row(
            "volume",
            "unanswered_messages",
            "",
            &n(self.unanswered_messages),
        );
        w.row("volume", "answered_by_bot", "", &n(self.answered_by_bot));
        w.row("volume", "resolved_by_bot", "", &n(self.resolved_by_bot));
        w.row(
            "volume",
            "bot_resolution_percent",
            "",
            &o(self.bot_resolution_percent),
        );
        w.row("volume", "escalated", "", &n(self.escalated));
        w.row(
            "volume",
            "escalation_percent",
            "",
            &o(self.escalation_percent),
        );
        for r in &self.escalations_by_reason {
            w.row("volume", "escalations", &r.reason, &n(r.tickets));
            w.row(
                "volume",
                "escalation_percent",
                &r.reason,
                &o(r.percent_of_conversations),
            );
        }
        w.row("speed", "tickets", "", &n(self.tickets));
        w.row("speed", "tickets_open", "", &n(self.tickets_open));
        w.row("speed", "tickets_resolved", "", &n(self.tickets_resolved));
        w.row(
            "speed",
            "first_response_seconds",
            "median",
            &o(self.median_first_response_seconds),
        );
        w.row(
            "speed",
            "first_response_seconds",
            "p90",
            &o(self.p90_first_response_seconds),
        );
        w.row(
            "speed",
            "resolution_seconds",
            "median",
            &o(self.median_resolution_seconds),
        );
        w.row(
            "speed",
            "resolution_seconds",
            "p90",
            &o(self.p90_resolution_seconds),
        );
        for (name, a) in [
            ("first_response_sla", &self.first_response_sla),
            ("resolution_sla", &self.resolution_sla),
        ] {
            w.row("speed", name, "met", &n(a.met));
            w.row("speed", name, "missed", &n(a.missed));
            w.row("speed", name, "running", &n(a.running));
            w.row("speed", name, "percent_met", &o(a.percent_met));
        }
        w.row("satisfaction", "ratings", "", &n(self.ratings));
        w.row("satisfaction", "csat_ratings", "", &n(self.csat_ratings));
        w.row("satisfaction", "csat_average", "", &o(self.csat_average));
        for d in &self.csat_distribution {
            w.row(
                "satisfaction",
                "csat_score",
                &d.score.to_string(),
                &n(d.count),
            );
        }
        w.row("satisfaction", "nps_ratings", "", &n(self.nps_ratings));
        w.row("satisfaction", "nps", "", &o(self.nps));
        w.row("satisfaction", "promoters", "", &n(self.promoters));
        w.row("satisfaction", "passives", "", &n(self.passives));
        w.row("satisfaction", "detractors", "", &n(self.detractors));
        for d in &self.nps_distribution {
            w.row(
                "satisfaction",
                "nps_score",
                &d.score.to_string(),
                &n(d.count),
            );
        }
        for c in &self.detractor_comments {
            let item = c.conversation.to_string();
            w.row("satisfaction", "detractor_at", &item, &c.at.to_string());
            w.row("satisfaction", "detractor_customer", &item, &c.customer);
            let kind = match c.kind {
                crate::model::SurveyKind::Csat => "csat",
                crate::model::SurveyKind::Nps => "nps",
            };
            w.row("satisfaction", "detractor_kind", &item, kind);
            w.row(
                "satisfaction",
                "detractor_score",
                &item,
                &c.score.to_string(),
            );
            w.row("satisfaction", "detractor_comment", &item, &c.comment);
        }
        for r in &self.top_recommenders {
            w.row("people", "recommender_name", &r.customer, &r.name);
            w.row("people", "recommender_ratings", &r.customer, &n(r.ratings));
            w.row(
                "people",
                "recommender_promoter_ratings",
                &r.customer,
                &n(r.promoter_ratings),
            );
            w.row(
                "people",
                "recommender_average_percent",
                &r.customer,
                &r.average_percent.to_string(),
            );
        }
        for c in &self.complaints {
            w.row("people", "complainer_name", &c.customer, &c.name);
            w.row("people", "complaints", &c.customer, &n(c.complaints));
            w.row(
                "people",
                "open_complaints",
                &c.customer,
                &n(c.open_complaints),
            );
            w.row(
                "people",
                "detractor_ratings",
                &c.customer,
                &n(c.detractor_ratings),
            );
        }
        w.push_unanswered(&self.unanswered);
        w.out
    }

    /// The listening section alone, as CSV (`frontdesk report unanswered --csv`).
    pub fn unanswered_csv(&self) -> String {
        let mut w = Csv::default();
        w.push_unanswered(&self.unanswered);
        w.out
    }
}

/// A CSV writer: RFC 4180 quoting, `\n` line ends.
struct Csv {
    out: String,
}

impl Default for Csv {
    fn default() -> Self {
        Csv {
            out: "section,figure,item,value\n".into(),
        }
    }
}

impl Csv {
    /// Writes one field. Text that a spreadsheet would run as a formula
    /// (it starts with `=`, `+`, `-`, `@`, a tab or a carriage return, and
    /// is not a number) gets a leading `'`, which spreadsheets show as text:
    /// customers write the unanswered questions and the detractor comments,
    /// and `=HYPERLINK(…)` must not become a live link in the owner's sheet
    /// (OWASP's advice on CSV injection).
    fn field(&mut self, v: &str) {
        let guarded;
        let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) && v.parse::<f64>().is_err() {
            guarded = format!("'{v}");
            guarded.as_str()
        } else {
            v
        };
        if v.contains([',', '"', '\n', '\r']) {
            self.out.push('"');
            self.out.push_str(&v.replace('"', "\"\""));
            self.out.push('"');
        } else {
            self.out.push_str(v);
        }
    }

    fn row(&mut self, section: &str, figure: &str, item: &str, value: &str) {
        self.field(section);
        self.out.push(',');
        self.field(figure);
        self.out.push(',');
        self.field(item);
        self.out.push(',');
        self.field(value);
        self.out.push('\n');
    }

    fn push_unanswered(&mut self, groups: &[super::Group]) {
        for (i, g) in groups.iter().enumerate() {
            let item = (i + 1).to_string();
            self.row("listening", "group_count", &item, &g.count.to_string());
            self.row("listening", "group_terms", &item, &g.terms.join(" "));
            for e in &g.examples {
                self.row("listening", "group_example", &item, e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_is_shown_in_the_shop_time_zone() {
        let madrid = jiff::tz::TimeZone::get("Europe/Madrid").unwrap();
        let f = Filter::parse(
            Some("2026-11-01"),
            Some("2026-11-30"),
            Some("discord"),
            &madrid,
        )
        .unwrap();
        assert_eq!(
            describe_filter(&f, &madrid),
            "2026-11-01 00:00 CET to 2026-12-01 00:00 CET, discord"
        );
        assert_eq!(
            describe_filter(&Filter::default(), &madrid),
            "all time, all channels"
        );
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        let mut w = Csv::default();
        w.row("a", "b", "", "say \"hi\", then\nleave");
        assert_eq!(
            w.out,
            "section,figure,item,value\na,b,,\"say \"\"hi\"\", then\nleave\"\n"
        );
    }

    #[test]
    fn csv_formulas_are_written_as_text() {
        let mut w = Csv::default();
        for v in [
            "=HYPERLINK(\"http://x\",\"y\")",
            "+1+2",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "\r=1",
            "-12.5",
            "+3",
            "plain = text",
        ] {
            w.row("s", "f", "", v);
        }
        let values: Vec<&str> = w.out.lines().skip(1).collect();
        assert_eq!(
            values,
            [
                "s,f,,\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"",
                "s,f,,'+1+2",
                "s,f,,'-2+3",
                "s,f,,'@SUM(A1)",
                "s,f,,'\tx",
                "s,f,,\"'\r=1\"",
                "s,f,,-12.5",
                "s,f,,+3",
                "s,f,,plain = text",
            ]
        );
    }

    #[test]
    fn bars_scale_to_the_largest_count() {
        let mut out = String::new();
        bars(
            &mut out,
            &[
                ScoreCount { score: 1, count: 1 },
                ScoreCount {
                    score: 2,
                    count: 30,
                },
            ],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains(&"█".repeat(BAR_WIDTH)), "{out}");
        assert!(lines[0].trim_start().starts_with("2 "), "{out}");
        assert_eq!(lines[1].matches('█').count(), 1, "{out}");
    }
}

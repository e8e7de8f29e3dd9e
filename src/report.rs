//! Figures for the owner: volume, escalations, ticket times and satisfaction,
//! computed from the store; and the ticket list with status histories.

use jiff::Timestamp;
use serde::Serialize;

use crate::model::{NpsClass, SurveyKind, Ticket, TicketEventKind, TicketStatus};
use crate::store::{Store, StoreError};

/// The summary report (`frontdesk report`). Key names are a public interface.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Conversations held.
    pub conversations: u64,
    /// Conversations in which the bot answered and no person was needed.
    pub answered_by_bot: u64,
    /// Conversations handed to a person (a ticket was opened).
    pub escalated: u64,
    /// Customer messages received.
    pub messages: u64,
    /// Customer messages the bot could not match.
    pub unanswered_messages: u64,
    /// Tickets not yet resolved (open or claimed).
    pub tickets_open: u64,
    /// Tickets resolved.
    pub tickets_resolved: u64,
    /// Median seconds from a ticket's opening to the first staff reply.
    pub median_first_response_seconds: Option<f64>,
    /// Median seconds from a ticket's opening to its resolution.
    pub median_resolution_seconds: Option<f64>,
    /// Ratings received.
    pub ratings: u64,
    /// Average CSAT score (1–5), if any CSAT rating.
    pub csat_average: Option<f64>,
    /// CSAT ratings received.
    pub csat_ratings: u64,
    /// Net promoter score, promoters minus detractors in % of NPS ratings.
    pub nps: Option<f64>,
    /// NPS ratings of 9–10.
    pub promoters: u64,
    /// NPS ratings of 7–8.
    pub passives: u64,
    /// NPS ratings of 0–6.
    pub detractors: u64,
}

impl Report {
    /// Compute the report from everything in the store.
    pub fn compute(store: &dyn Store) -> Result<Report, StoreError> {
        let conversations = store.conversations()?;
        let tickets = store.tickets()?;
        let ratings = store.ratings()?;

        let escalated = conversations.iter().filter(|c| c.ticket.is_some()).count() as u64;
        let answered_by_bot = conversations
            .iter()
            .filter(|c| c.ticket.is_none() && c.bot_answers > 0)
            .count() as u64;
        let first_responses: Vec<f64> = tickets
            .iter()
            .filter_map(|t| {
                t.first_response_at
                    .map(|at| seconds_between(t.created_at, at))
            })
            .collect();
        let resolutions: Vec<f64> = tickets
            .iter()
            .filter(|t| t.status == TicketStatus::Resolved)
            .filter_map(|t| t.resolved_at.map(|at| seconds_between(t.created_at, at)))
            .collect();
        let csat: Vec<f64> = ratings
            .iter()
            .filter(|r| r.kind == SurveyKind::Csat)
            .map(|r| f64::from(r.score))
            .collect();
        let nps_classes: Vec<NpsClass> = ratings.iter().filter_map(|r| r.nps_class()).collect();
        let count = |class: NpsClass| nps_classes.iter().filter(|&&c| c == class).count() as u64;
        let (promoters, passives, detractors) = (
            count(NpsClass::Promoter),
            count(NpsClass::Passive),
            count(NpsClass::Detractor),
        );
        let nps = (!nps_classes.is_empty()).then(|| {
            round1((promoters as f64 - detractors as f64) * 100.0 / nps_classes.len() as f64)
        });
        Ok(Report {
            conversations: conversations.len() as u64,
            answered_by_bot,
            escalated,
            messages: conversations.iter().map(|c| u64::from(c.messages)).sum(),
            unanswered_messages: conversations.iter().map(|c| u64::from(c.unanswered)).sum(),
            tickets_open: tickets
                .iter()
                .filter(|t| t.status != TicketStatus::Resolved)
                .count() as u64,
            tickets_resolved: tickets
                .iter()
                .filter(|t| t.status == TicketStatus::Resolved)
                .count() as u64,
            median_first_response_seconds: median(first_responses),
            median_resolution_seconds: median(resolutions),
            ratings: ratings.len() as u64,
            csat_average: (!csat.is_empty())
                .then(|| round2(csat.iter().sum::<f64>() / csat.len() as f64)),
            csat_ratings: csat.len() as u64,
            nps,
            promoters,
            passives,
            detractors,
        })
    }

    /// The report as aligned text for a terminal.
    pub fn to_text(&self) -> String {
        let opt = |v: Option<f64>, unit: &str| match v {
            Some(v) => format!("{v}{unit}"),
            None => "—".into(),
        };
        let dur = |v: Option<f64>| match v {
            Some(s) => human_seconds(s),
            None => "—".into(),
        };
        let pct = |part: u64, whole: u64| {
            if whole == 0 {
                String::new()
            } else {
                format!(" ({:.0} %)", part as f64 * 100.0 / whole as f64)
            }
        };
        let rows = [
            ("Conversations", self.conversations.to_string()),
            (
                "  answered by the bot",
                format!(
                    "{}{}",
                    self.answered_by_bot,
                    pct(self.answered_by_bot, self.conversations)
                ),
            ),
            (
                "  escalated to a person",
                format!(
                    "{}{}",
                    self.escalated,
                    pct(self.escalated, self.conversations)
                ),
            ),
            ("Customer messages", self.messages.to_string()),
            ("  not understood", self.unanswered_messages.to_string()),
            ("Tickets open", self.tickets_open.to_string()),
            ("Tickets resolved", self.tickets_resolved.to_string()),
            (
                "Median first response",
                dur(self.median_first_response_seconds),
            ),
            ("Median resolution", dur(self.median_resolution_seconds)),
            ("Ratings", self.ratings.to_string()),
            (
                "CSAT average (1–5)",
                format!(
                    "{} from {} rating(s)",
                    opt(self.csat_average, ""),
                    self.csat_ratings
                ),
            ),
            ("NPS", opt(self.nps, "")),
            (
                "  promoters / passives / detractors",
                format!(
                    "{} / {} / {}",
                    self.promoters, self.passives, self.detractors
                ),
            ),
        ];
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        rows.iter()
            .map(|(k, v)| format!("{k:<width$}  {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Tickets with their status histories, as text.
pub fn tickets_text(tickets: &[Ticket]) -> String {
    if tickets.is_empty() {
        return "No tickets yet.".into();
    }
    let mut out = Vec::new();
    for t in tickets {
        let customer = if t.customer.is_forgotten() {
            format!("forgotten customer ({})", t.customer.channel)
        } else {
            format!("{} ({})", t.customer_name, t.customer)
        };
        out.push(format!(
            "#{} {} · {customer} · {} · {}{}",
            t.number,
            t.status.as_str(),
            t.language,
            t.reason.describe(),
            t.assignee
                .as_deref()
                .map(|a| format!(" · {a}"))
                .unwrap_or_default()
        ));
        for e in &t.events {
            let what = match &e.kind {
                TicketEventKind::Opened { reason } => format!("opened ({})", reason.describe()),
                TicketEventKind::Claimed => "claimed".into(),
                TicketEventKind::Replied => "replied".into(),
                TicketEventKind::CustomerMessage => "customer wrote".into(),
                TicketEventKind::Resolved { note } if note.is_empty() => "resolved".into(),
                TicketEventKind::Resolved { note } => format!("resolved: {note}"),
                TicketEventKind::Reopened => "reopened".into(),
                TicketEventKind::Reminder { reminder } => {
                    format!("reminder ({})", reminder.as_str())
                }
                TicketEventKind::ClosedNoReply => "closed (no answer from the customer)".into(),
                TicketEventKind::Forgotten => "closed: the customer asked to be forgotten".into(),
            };
            out.push(format!(
                "    {}  {:<10} {what}",
                e.at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                e.by
            ));
        }
    }
    out.join("\n")
}

fn seconds_between(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_millisecond() - from.as_millisecond()).max(0) as f64 / 1000.0
}

/// The median, or None for no values.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn human_seconds(s: f64) -> String {
    let s = s.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0]), Some(3.0));
        assert_eq!(median(vec![5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_seconds(42.0), "42 s");
        assert_eq!(human_seconds(125.0), "2 min 5 s");
        assert_eq!(human_seconds(3700.0), "1 h 1 min");
    }

    #[test]
    fn empty_store_reports_zeroes_and_nulls() {
        let store = crate::store::SledStore::temporary().unwrap();
        let r = Report::compute(&store).unwrap();
        assert_eq!(r.conversations, 0);
        assert_eq!(r.csat_average, None);
        assert_eq!(r.nps, None);
        let json = serde_json::to_value(&r).unwrap();
        for key in [
            "conversations",
            "answered_by_bot",
            "escalated",
            "tickets_open",
            "tickets_resolved",
            "median_first_response_seconds",
            "median_resolution_seconds",
            "ratings",
            "csat_average",
            "nps",
            "promoters",
            "passives",
            "detractors",
        ] {
            assert!(json.get(key).is_some(), "missing key {key}");
        }
        assert!(r.to_text().contains("Conversations"));
    }
}

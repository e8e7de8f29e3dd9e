//! Figures for the owner, computed from the store: volume, speed (with the
//! SLA attainment of each target), satisfaction, people and the questions
//! the bot could not answer; and the ticket list with status histories.
//!
//! [`Report::compute_with`] takes a [`Filter`] (period, channel) and the
//! shop's targets and business hours, so that response times and "met" /
//! "missed" agree with the reminders ([`crate::sla::ticket_clock`]).
//! [`Report::to_text`] renders for a terminal, [`Report::to_csv`] for
//! spreadsheets, `serde_json` for scripts.

mod listening;
mod period;
mod render;

pub use listening::{Group, Question, SIMILARITY, draft_intents};
pub use period::{Filter, PeriodError};

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;

use crate::hours::BusinessHours;
use crate::model::{
    Channel, CustomerKey, EscalationReason, NpsClass, ResolvedBy, Speaker, SurveyKind, Ticket,
    TicketEventKind, TicketStatus,
};
use crate::sla::{self, Mark, REASON_KEYS, Targets};
use crate::store::{Store, StoreError};

/// Customers listed as top recommenders.
pub const TOP_RECOMMENDERS: usize = 10;

/// What a report is computed with.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The period and channel covered.
    pub filter: Filter,
    /// The configured response-time targets (for tickets from before targets were stored).
    pub targets: Targets,
    /// The business hours: response times count open time only.
    pub hours: BusinessHours,
    /// The time of the report: targets not reached by now and past due are missed.
    pub now: Timestamp,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            filter: Filter::default(),
            targets: Targets::default(),
            hours: BusinessHours::default(),
            now: Timestamp::now(),
        }
    }
}

/// Escalations for one reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasonCount {
    /// The reason, as in the configuration (`unknown_question`, …).
    pub reason: String,
    /// Tickets opened for it.
    pub tickets: u64,
    /// Those tickets in % of the conversations.
    pub percent_of_conversations: Option<f64>,
}

/// Where one target stands over the tickets of the period.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Attainment {
    /// Reached in time.
    pub met: u64,
    /// Reached late, or not reached and past due.
    pub missed: u64,
    /// Not reached yet and not due yet (not counted in the percentage).
    pub running: u64,
    /// met in % of met + missed.
    pub percent_met: Option<f64>,
}

/// How many ratings gave one score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScoreCount {
    /// The score.
    pub score: u8,
    /// Ratings with it.
    pub count: u64,
}

/// A detractor's answer to "what went wrong?".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetractorComment {
    /// When the rating was given.
    pub at: Timestamp,
    /// Who (`channel:id`).
    pub customer: String,
    /// Their name.
    pub name: String,
    /// `csat` or `nps`.
    pub kind: SurveyKind,
    /// The score.
    pub score: u8,
    /// The conversation rated.
    pub conversation: u64,
    /// Its ticket, if any.
    pub ticket: Option<u64>,
    /// What they wrote.
    pub comment: String,
}

/// A customer who rates high and often.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommender {
    /// Who (`channel:id`).
    pub customer: String,
    /// Their name.
    pub name: String,
    /// Ratings given.
    pub ratings: u64,
    /// Of which promoter ratings (CSAT 5, NPS 9–10).
    pub promoter_ratings: u64,
    /// Average position on the scale, 0–100 (CSAT 1 = 0, 5 = 100; NPS = score × 10).
    pub average_percent: f64,
}

/// A customer with open or repeated complaints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Complainer {
    /// Who (`channel:id`).
    pub customer: String,
    /// Their name.
    pub name: String,
    /// Complaints: tickets opened by an escalating intent, plus detractor ratings.
    pub complaints: u64,
    /// Complaint tickets not resolved yet.
    pub open_complaints: u64,
    /// Detractor ratings given (CSAT 1–2, NPS 0–6).
    pub detractor_ratings: u64,
    /// The numbers of the complaint tickets.
    pub tickets: Vec<u64>,
}

/// The report (`frontdesk report`). Key names are a public interface: the
/// keys of the first version are kept, new ones are added.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// What the report covers.
    pub filter: Filter,
    /// The shop's time zone, in which the text shows the period.
    #[serde(skip)]
    pub time_zone: jiff::tz::TimeZone,
    /// Conversations held.
    pub conversations: u64,
    /// Conversations in which the bot answered and no person was needed.
    pub answered_by_bot: u64,
    /// Conversations the bot resolved without a person (the customer said it helped, or thanked it).
    pub resolved_by_bot: u64,
    /// resolved_by_bot in % of the conversations.
    pub bot_resolution_percent: Option<f64>,
    /// Conversations handed to a person (a ticket was opened).
    pub escalated: u64,
    /// escalated in % of the conversations.
    pub escalation_percent: Option<f64>,
    /// Tickets by the reason they were opened for, in configuration order.
    pub escalations_by_reason: Vec<ReasonCount>,
    /// Customer messages received.
    pub messages: u64,
    /// Customer messages the bot could not match.
    pub unanswered_messages: u64,
    /// Tickets opened.
    pub tickets: u64,
    /// Tickets not yet resolved (open or claimed).
    pub tickets_open: u64,
    /// Tickets resolved.
    pub tickets_resolved: u64,
    /// Median business seconds from a ticket's opening to the first staff reply
    /// (or to its resolution, when it was resolved without one).
    pub median_first_response_seconds: Option<f64>,
    /// 90th percentile of the same.
    pub p90_first_response_seconds: Option<f64>,
    /// Median business seconds from a ticket's opening to its resolution.
    pub median_resolution_seconds: Option<f64>,
    /// 90th percentile of the same.
    pub p90_resolution_seconds: Option<f64>,
    /// The first-response target over the period's tickets.
    pub first_response_sla: Attainment,
    /// The resolution target over the period's tickets.
    pub resolution_sla: Attainment,
    /// Ratings received.
    pub ratings: u64,
    /// Average CSAT score (1–5), if any CSAT rating.
    pub csat_average: Option<f64>,
    /// CSAT ratings received.
    pub csat_ratings: u64,
    /// CSAT ratings per score, 1 to 5.
    pub csat_distribution: Vec<ScoreCount>,
    /// Net promoter score, promoters minus detractors in % of NPS ratings.
    pub nps: Option<f64>,
    /// NPS ratings received.
    pub nps_ratings: u64,
    /// NPS ratings of 9–10.
    pub promoters: u64,
    /// NPS ratings of 7–8.
    pub passives: u64,
    /// NPS ratings of 0–6.
    pub detractors: u64,
    /// NPS ratings per score, 0 to 10.
    pub nps_distribution: Vec<ScoreCount>,
    /// What detractors said went wrong, oldest first.
    pub detractor_comments: Vec<DetractorComment>,
    /// Customers with promoter ratings: most promoter ratings, then most ratings, then highest average.
    pub top_recommenders: Vec<Recommender>,
    /// Customers with an open complaint or more than one: most open, then most complaints.
    pub complaints: Vec<Complainer>,
    /// The questions the bot could not answer, grouped by similarity, biggest group first.
    pub unanswered: Vec<Group>,
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The period or channel is unusable.
    #[error(transparent)]
    Period(#[from] PeriodError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| round1(part as f64 * 100.0 / whole as f64))
}

impl Report {
    /// The report over everything in the store, with the default targets and
    /// around-the-clock hours.
    pub fn compute(store: &dyn Store) -> Result<Report, StoreError> {
        Report::compute_with(store, &ReportOptions::default())
    }

    /// The report over what `options.filter` covers.
    pub fn compute_with(store: &dyn Store, options: &ReportOptions) -> Result<Report, StoreError> {
        let f = &options.filter;
        let names: BTreeMap<CustomerKey, String> = store
            .customers()?
            .into_iter()
            .map(|c| (c.key, c.name))
            .collect();
        let name_of = |key: &CustomerKey| names.get(key).cloned().unwrap_or_else(|| key.id.clone());
        let conversations: Vec<_> = store
            .conversations()?
            .into_iter()
            .filter(|c| f.covers(c.started_at, c.customer.channel))
            .collect();
        let tickets: Vec<Ticket> = store
            .tickets()?
            .into_iter()
            .filter(|t| f.covers(t.created_at, t.customer.channel))
            .collect();
        let ratings: Vec<_> = store
            .ratings()?
            .into_iter()
            .filter(|r| f.covers(r.at, r.customer.channel))
            .collect();

        // Volume.
        let total = conversations.len() as u64;
        let escalated = conversations.iter().filter(|c| c.ticket.is_some()).count() as u64;
        let answered_by_bot = conversations
            .iter()
            .filter(|c| c.ticket.is_none() && c.bot_answers > 0)
            .count() as u64;
        let resolved_by_bot = conversations
            .iter()
            .filter(|c| c.ticket.is_none() && c.resolved_by == Some(ResolvedBy::Bot))
            .count() as u64;
        let escalations_by_reason = REASON_KEYS
            .iter()
            .map(|(key, reason)| {
                let n = tickets.iter().filter(|t| t.reason == *reason).count() as u64;
                ReasonCount {
                    reason: key.to_string(),
                    tickets: n,
                    percent_of_conversations: percent(n, total),
                }
            })
            .collect();

        // Speed, in business time, as the reminders count it.
        let hours = &options.hours;
        // To the millisecond, as the first version reported.
        let secs = |from: Timestamp, to: Timestamp| {
            (hours.between(from, to).as_secs_f64() * 1000.0).round() / 1000.0
        };
        let first_responses: Vec<f64> = tickets
            .iter()
            .filter_map(|t| sla::first_response_instant(t).map(|at| secs(t.created_at, at)))
            .collect();
        let resolutions: Vec<f64> = tickets
            .iter()
            .filter_map(|t| sla::resolution_instant(t).map(|at| secs(t.created_at, at)))
            .collect();
        let mut first_response_sla = Attainment::default();
        let mut resolution_sla = Attainment::default();
        for t in &tickets {
            let clock = sla::ticket_clock(t, &options.targets, hours, options.now);
            for (mark, into) in [
                (clock.first_response, &mut first_response_sla),
                (clock.resolution, &mut resolution_sla),
            ] {
                match mark {
                    Mark::Met { .. } => into.met += 1,
                    Mark::Missed { .. } => into.missed += 1,
                    Mark::Running { .. } => into.running += 1,
                }
            }
        }
        for a in [&mut first_response_sla, &mut resolution_sla] {
            a.percent_met = percent(a.met, a.met + a.missed);
        }

        // Satisfaction.
        let csat: Vec<u8> = ratings
            .iter()
            .filter(|r| r.kind == SurveyKind::Csat)
            .map(|r| r.score)
            .collect();
        let nps_scores: Vec<u8> = ratings
            .iter()
            .filter(|r| r.kind == SurveyKind::Nps)
            .map(|r| r.score)
            .collect();
        let distribution = |scores: &[u8], kind: SurveyKind| {
            let (min, max) = kind.range();
            (min..=max)
                .map(|score| ScoreCount {
                    score,
                    count: scores.iter().filter(|&&s| s == score).count() as u64,
                })
                .collect::<Vec<_>>()
        };
        let count = |class: NpsClass| {
            nps_scores
                .iter()
                .filter(|&&s| NpsClass::of(s) == class)
                .count() as u64
        };
        let (promoters, passives, detractors) = (
            count(NpsClass::Promoter),
            count(NpsClass::Passive),
            count(NpsClass::Detractor),
        );
        let nps = (!nps_scores.is_empty()).then(|| {
            round1((promoters as f64 - detractors as f64) * 100.0 / nps_scores.len() as f64)
        });
        let mut detractor_comments: Vec<DetractorComment> = ratings
            .iter()
            .filter(|r| r.is_detractor())
            .filter_map(|r| {
                let comment = r.comment.as_ref()?;
                Some(DetractorComment {
                    at: r.at,
                    customer: r.customer.to_string(),
                    name: name_of(&r.customer),
                    kind: r.kind,
                    score: r.score,
                    conversation: r.conversation,
                    ticket: r.ticket,
                    comment: comment.clone(),
                })
            })
            .collect();
        detractor_comments.sort_by_key(|c| (c.at, c.conversation));

        // People.
        #[derive(Default)]
        struct Person {
            ratings: u64,
            promoter: u64,
            position: f64,
            complaint_tickets: Vec<u64>,
            open: u64,
            detractor: u64,
        }
        let mut people: BTreeMap<CustomerKey, Person> = BTreeMap::new();
        for r in &ratings {
            let p = people.entry(r.customer.clone()).or_default();
            let (min, max) = r.kind.range();
            p.ratings += 1;
            p.promoter += u64::from(r.is_promoter());
            p.detractor += u64::from(r.is_detractor());
            // In percent of the scale: whole numbers for CSAT and NPS, so the
            // average is one exact division.
            p.position += f64::from(r.score.saturating_sub(min)) * 100.0 / f64::from(max - min);
        }
        for t in tickets
            .iter()
            .filter(|t| t.reason == EscalationReason::EscalateIntent)
        {
            let p = people.entry(t.customer.clone()).or_default();
            p.complaint_tickets.push(t.number);
            p.open += u64::from(t.status != TicketStatus::Resolved);
        }
        let mut top_recommenders: Vec<Recommender> = people
            .iter()
            .filter(|(_, p)| p.promoter > 0)
            .map(|(key, p)| Recommender {
                customer: key.to_string(),
                name: name_of(key),
                ratings: p.ratings,
                promoter_ratings: p.promoter,
                average_percent: round1(p.position / p.ratings as f64),
            })
            .collect();
        top_recommenders.sort_by(|a, b| {
            b.promoter_ratings
                .cmp(&a.promoter_ratings)
                .then(b.ratings.cmp(&a.ratings))
                .then(b.average_percent.total_cmp(&a.average_percent))
                .then(a.customer.cmp(&b.customer))
        });
        top_recommenders.truncate(TOP_RECOMMENDERS);
        let mut complaints: Vec<Complainer> = people
            .iter()
            .map(|(key, p)| Complainer {
                customer: key.to_string(),
                name: name_of(key),
                complaints: p.complaint_tickets.len() as u64 + p.detractor,
                open_complaints: p.open,
                detractor_ratings: p.detractor,
                tickets: p.complaint_tickets.clone(),
            })
            .filter(|c| c.open_complaints > 0 || c.complaints >= 2)
            .collect();
        complaints.sort_by(|a, b| {
            b.open_complaints
                .cmp(&a.open_complaints)
                .then(b.complaints.cmp(&a.complaints))
                .then(a.customer.cmp(&b.customer))
        });

        // Listening.
        let questions: Vec<Question> = conversations
            .iter()
            .flat_map(|c| {
                c.transcript
                    .iter()
                    .filter(|l| l.speaker == Speaker::Customer && l.unanswered)
                    .map(|l| Question {
                        text: l.text.clone(),
                        language: c.language.clone(),
                    })
            })
            .collect();

        Ok(Report {
            filter: f.clone(),
            time_zone: hours.time_zone().clone(),
            conversations: total,
            answered_by_bot,
            resolved_by_bot,
            bot_resolution_percent: percent(resolved_by_bot, total),
            escalated,
            escalation_percent: percent(escalated, total),
            escalations_by_reason,
            messages: conversations.iter().map(|c| u64::from(c.messages)).sum(),
            unanswered_messages: conversations.iter().map(|c| u64::from(c.unanswered)).sum(),
            tickets: tickets.len() as u64,
            tickets_open: tickets
                .iter()
                .filter(|t| t.status != TicketStatus::Resolved)
                .count() as u64,
            tickets_resolved: tickets
                .iter()
                .filter(|t| t.status == TicketStatus::Resolved)
                .count() as u64,
            median_first_response_seconds: median(first_responses.clone()),
            p90_first_response_seconds: percentile(first_responses, 90),
            median_resolution_seconds: median(resolutions.clone()),
            p90_resolution_seconds: percentile(resolutions, 90),
            first_response_sla,
            resolution_sla,
            ratings: ratings.len() as u64,
            csat_average: (!csat.is_empty()).then(|| {
                round2(csat.iter().map(|&s| f64::from(s)).sum::<f64>() / csat.len() as f64)
            }),
            csat_ratings: csat.len() as u64,
            csat_distribution: distribution(&csat, SurveyKind::Csat),
            nps,
            nps_ratings: nps_scores.len() as u64,
            promoters,
            passives,
            detractors,
            nps_distribution: distribution(&nps_scores, SurveyKind::Nps),
            detractor_comments,
            top_recommenders,
            complaints,
            unanswered: listening::group(&questions),
        })
    }

    /// The unanswered questions as a draft intent file (`report unanswered --toml`).
    pub fn draft_intents(&self) -> String {
        draft_intents(
            &self.unanswered,
            &render::describe_filter(&self.filter, &self.time_zone),
        )
    }
}

/// The channel of a filter, for headings.
fn channel_name(c: Option<Channel>) -> &'static str {
    c.map_or("all channels", Channel::as_str)
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

/// The `p`th percentile by the nearest-rank method (the smallest value with
/// at least p % of the values at or below it), or None for no values.
pub fn percentile(mut values: Vec<f64>, p: u32) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = (u64::from(p.min(100)) * values.len() as u64)
        .div_ceil(100)
        .max(1);
    Some(values[rank as usize - 1])
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

//! Response-time targets (SLA), the clock every ticket carries, and the
//! schedule of timer reminders.
//!
//! A ticket is held to two targets, fixed when it opens: a first staff
//! response and a resolution, both counted in business time (see
//! [`crate::hours`]; without business hours, wall-clock time). The targets
//! come from `[tickets]` of the configuration, optionally tightened per
//! escalation reason or per escalating intent (`[tickets.targets.complaint]`).
//!
//! Everything here is a pure function of a ticket, the settings and `now`:
//! [`ticket_clock`] tells for each target whether it was met, missed or is
//! still running (reports use it), and [`due`] tells which reminders the
//! engine's timer tick must send now. A reminder sent is recorded on the
//! ticket as a [`TicketEventKind::Reminder`] event, which is how [`due`]
//! knows not to send it again.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::hours::BusinessHours;
use crate::model::{
    EscalationReason, ReminderKind, Ticket, TicketEventKind, TicketStatus, TicketTargets,
};

/// The escalation reasons by their configuration names.
pub const REASON_KEYS: [(&str, EscalationReason); 5] = [
    ("unknown_question", EscalationReason::UnknownQuestion),
    ("not_helped", EscalationReason::NotHelped),
    ("asked_for_person", EscalationReason::AskedForPerson),
    ("escalate_intent", EscalationReason::EscalateIntent),
    ("non_text", EscalationReason::NonText),
];

/// The configuration name of an escalation reason.
pub fn reason_key(reason: EscalationReason) -> &'static str {
    REASON_KEYS
        .iter()
        .find(|(_, r)| *r == reason)
        .map(|(k, _)| *k)
        .unwrap_or("unknown_question")
}

/// A per-reason or per-intent override of the targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TargetOverride {
    /// The first-response target, if overridden.
    pub first_response: Option<Duration>,
    /// The resolution target, if overridden.
    pub resolution: Option<Duration>,
}

/// The configured targets: defaults and overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// Default first-response target.
    pub first_response: Duration,
    /// Default resolution target.
    pub resolution: Duration,
    /// Overrides by escalating intent id or by reason name; an intent's wins over its reason's.
    pub overrides: BTreeMap<String, TargetOverride>,
}

impl Default for Targets {
    fn default() -> Self {
        Targets {
            first_response: Duration::from_secs(3600),
            resolution: Duration::from_secs(24 * 3600),
            overrides: BTreeMap::new(),
        }
    }
}

impl Targets {
    /// The targets of a ticket opened for `reason` (by `intent`, if an intent escalated).
    pub fn for_ticket(&self, reason: EscalationReason, intent: Option<&str>) -> TicketTargets {
        let by_intent = intent.and_then(|i| self.overrides.get(i));
        let by_reason = self.overrides.get(reason_key(reason));
        let pick = |f: fn(&TargetOverride) -> Option<Duration>, default: Duration| {
            by_intent
                .and_then(f)
                .or_else(|| by_reason.and_then(f))
                .unwrap_or(default)
        };
        TicketTargets {
            first_response_secs: pick(|o| o.first_response, self.first_response).as_secs(),
            resolution_secs: pick(|o| o.resolution, self.resolution).as_secs(),
        }
    }

    /// A ticket's own targets, or (for tickets from before targets) the configured ones.
    pub fn of(&self, ticket: &Ticket) -> TicketTargets {
        ticket
            .targets
            .unwrap_or_else(|| self.for_ticket(ticket.reason, ticket.intent.as_deref()))
    }
}

/// Where one target stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Mark {
    /// Not reached yet, and not late yet.
    Running {
        /// When it falls due.
        due: Timestamp,
    },
    /// Reached in time.
    Met {
        /// When.
        at: Timestamp,
        /// Business time it took.
        took: SignedDuration,
    },
    /// Late: reached after `due`, or (`at` = None) not reached and past due.
    Missed {
        /// When it fell due.
        due: Timestamp,
        /// When it was reached, if it was.
        at: Option<Timestamp>,
    },
}

impl Mark {
    /// "running", "met" or "missed".
    pub fn as_str(&self) -> &'static str {
        match self {
            Mark::Running { .. } => "running",
            Mark::Met { .. } => "met",
            Mark::Missed { .. } => "missed",
        }
    }
}

/// A ticket's clock: its targets and where each stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Clock {
    /// The targets it is held to.
    pub targets: TicketTargets,
    /// The first staff response.
    pub first_response: Mark,
    /// The resolution.
    pub resolution: Mark,
}

/// When the ticket got its first response: the first staff reply, else (a
/// ticket resolved without a reply) the resolution notice.
pub fn first_response_instant(ticket: &Ticket) -> Option<Timestamp> {
    ticket
        .first_response_at
        .or_else(|| resolution_instant(ticket))
}

/// When the ticket was resolved. A ticket the bot closed because the customer
/// never answered counts as resolved by the staff reply they left unanswered.
pub fn resolution_instant(ticket: &Ticket) -> Option<Timestamp> {
    if ticket.status != TicketStatus::Resolved {
        return None;
    }
    let closed_by_bot = ticket
        .events
        .last()
        .is_some_and(|e| e.kind == TicketEventKind::ClosedNoReply);
    if closed_by_bot
        && let Some(reply) = ticket
            .events
            .iter()
            .rev()
            .find(|e| e.kind == TicketEventKind::Replied)
    {
        return Some(reply.at);
    }
    ticket.resolved_at
}

fn mark(
    hours: &BusinessHours,
    start: Timestamp,
    target_secs: u64,
    reached: Option<Timestamp>,
    now: Timestamp,
) -> Mark {
    let due = hours.add(start, SignedDuration::from_secs(target_secs as i64));
    match reached {
        Some(at) if at <= due => Mark::Met {
            at,
            took: hours.between(start, at),
        },
        Some(at) => Mark::Missed { due, at: Some(at) },
        None if now >= due => Mark::Missed { due, at: None },
        None => Mark::Running { due },
    }
}

/// The clock of `ticket` at `now`: each target met, missed or still running,
/// counted in business time.
pub fn ticket_clock(
    ticket: &Ticket,
    targets: &Targets,
    hours: &BusinessHours,
    now: Timestamp,
) -> Clock {
    let t = targets.of(ticket);
    Clock {
        targets: t,
        first_response: mark(
            hours,
            ticket.created_at,
            t.first_response_secs,
            first_response_instant(ticket),
            now,
        ),
        resolution: mark(
            hours,
            ticket.created_at,
            t.resolution_secs,
            resolution_instant(ticket),
            now,
        ),
    }
}

/// Whose move it is in an unresolved ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// Staff's: the customer has been waiting for a reply since then.
    Staff {
        /// Since when.
        since: Timestamp,
    },
    /// The customer's: staff replied then and the customer has not written since.
    Customer {
        /// Since when.
        since: Timestamp,
    },
}

/// Whose move it is (None for a resolved ticket).
pub fn waiting_on(ticket: &Ticket) -> Option<Waiting> {
    if ticket.status == TicketStatus::Resolved {
        return None;
    }
    let mut state = Waiting::Staff {
        since: ticket.created_at,
    };
    for e in &ticket.events {
        state = match (&e.kind, state) {
            (TicketEventKind::Opened { .. } | TicketEventKind::Reopened, _) => {
                Waiting::Staff { since: e.at }
            }
            (TicketEventKind::Replied, _) => Waiting::Customer { since: e.at },
            (TicketEventKind::CustomerMessage, Waiting::Customer { .. }) => {
                Waiting::Staff { since: e.at }
            }
            // A claim restarts the assignee's clock.
            (TicketEventKind::Claimed, Waiting::Staff { .. }) => Waiting::Staff { since: e.at },
            (_, s) => s,
        };
    }
    Some(state)
}

/// Whether a reminder of `kind` was recorded at or after `since`.
pub fn sent_since(ticket: &Ticket, kind: ReminderKind, since: Timestamp) -> bool {
    ticket.events.iter().any(|e| {
        e.at >= since
            && matches!(e.kind, TicketEventKind::Reminder { reminder } if reminder == kind)
    })
}

/// Whether the ticket is offered to other staff now (its assignee did not reply in time).
pub fn is_offered(ticket: &Ticket) -> bool {
    ticket.status == TicketStatus::Claimed
        && matches!(waiting_on(ticket), Some(Waiting::Staff { since })
            if sent_since(ticket, ReminderKind::OfferedToOthers, since))
}

/// The timer settings of the reminders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// A claimed ticket with no staff reply for this long (business time): remind its assignee.
    pub claimed_idle: Option<Duration>,
    /// … and for this long: offer it to the other staff.
    pub claimed_offer: Option<Duration>,
    /// A ticket waiting for the customer's answer this long (wall-clock) is closed.
    pub close_waiting_after: Option<Duration>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            claimed_idle: Some(Duration::from_secs(2 * 3600)),
            claimed_offer: Some(Duration::from_secs(4 * 3600)),
            close_waiting_after: Some(Duration::from_secs(3 * 86_400)),
        }
    }
}

/// Something the timer must do for a ticket now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Send (and record) this reminder.
    Reminder(ReminderKind),
    /// Close the ticket: the customer did not answer.
    CloseNoReply,
}

fn secs(d: Duration) -> SignedDuration {
    SignedDuration::from_secs(d.as_secs().min(i64::MAX as u64) as i64)
}

/// What is due for `ticket` at `now`, each at most once. When the timer was
/// not running for a while and several steps of one ladder fell due, only
/// the latest is sent (a late "half the target" ping is noise).
pub fn due(
    ticket: &Ticket,
    targets: TicketTargets,
    hours: &BusinessHours,
    policy: &Policy,
    now: Timestamp,
) -> Vec<Due> {
    let mut out = Vec::new();
    let Some(waiting) = waiting_on(ticket) else {
        return out;
    };
    let created = ticket.created_at;
    if ticket.first_response_at.is_none() {
        let target = SignedDuration::from_secs(targets.first_response_secs as i64);
        let missed_at = hours.add(created, target);
        let half_at = hours.add(created, target / 2);
        let sent = |k| sent_since(ticket, k, created);
        if ticket.status == TicketStatus::Open {
            if now >= missed_at {
                if !sent(ReminderKind::FirstResponseMissed) {
                    out.push(Due::Reminder(ReminderKind::FirstResponseMissed));
                }
            } else if now >= half_at && !sent(ReminderKind::FirstResponseHalf) {
                out.push(Due::Reminder(ReminderKind::FirstResponseHalf));
            }
        }
        if now >= missed_at && !sent(ReminderKind::CustomerStillOnIt) {
            out.push(Due::Reminder(ReminderKind::CustomerStillOnIt));
        }
    }
    match waiting {
        Waiting::Staff { since } => {
            // Idle reminders once someone took the ticket (or answered it before).
            let taken =
                ticket.status == TicketStatus::Claimed || ticket.first_response_at.is_some();
            if !taken {
                return out;
            }
            let offer_due = ticket.status == TicketStatus::Claimed
                && policy
                    .claimed_offer
                    .is_some_and(|d| now >= hours.add(since, secs(d)));
            if offer_due {
                if !sent_since(ticket, ReminderKind::OfferedToOthers, since) {
                    out.push(Due::Reminder(ReminderKind::OfferedToOthers));
                }
            } else if policy
                .claimed_idle
                .is_some_and(|d| now >= hours.add(since, secs(d)))
                && !sent_since(ticket, ReminderKind::ClaimedIdle, since)
            {
                out.push(Due::Reminder(ReminderKind::ClaimedIdle));
            }
        }
        Waiting::Customer { since } => {
            if policy
                .close_waiting_after
                .is_some_and(|d| now >= since.checked_add(secs(d)).unwrap_or(since))
            {
                out.push(Due::CloseNoReply);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hours::HoursConfig;
    use crate::model::{Channel, CustomerKey, TicketEvent};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn ticket(created: &str) -> Ticket {
        Ticket {
            number: 1,
            conversation: 1,
            customer: CustomerKey::new(Channel::Console, "c"),
            customer_name: "C".into(),
            language: "en".into(),
            reason: EscalationReason::EscalateIntent,
            excerpt: Vec::new(),
            status: TicketStatus::Open,
            assignee: None,
            assignee_id: None,
            intent: Some("complaint".into()),
            targets: None,
            resolution_note: None,
            created_at: ts(created),
            first_response_at: None,
            resolved_at: None,
            events: vec![TicketEvent {
                at: ts(created),
                by: "bot".into(),
                kind: TicketEventKind::Opened {
                    reason: EscalationReason::EscalateIntent,
                },
            }],
        }
    }

    fn event(t: &mut Ticket, at: &str, kind: TicketEventKind) {
        t.events.push(TicketEvent {
            at: ts(at),
            by: "x".into(),
            kind,
        });
    }

    #[test]
    fn targets_per_intent_then_reason_then_default() {
        let mut targets = Targets::default();
        targets.overrides.insert(
            "escalate_intent".into(),
            TargetOverride {
                first_response: Some(Duration::from_secs(1800)),
                resolution: None,
            },
        );
        targets.overrides.insert(
            "complaint".into(),
            TargetOverride {
                first_response: Some(Duration::from_secs(900)),
                resolution: Some(Duration::from_secs(4 * 3600)),
            },
        );
        let t = targets.for_ticket(EscalationReason::EscalateIntent, Some("complaint"));
        assert_eq!((t.first_response_secs, t.resolution_secs), (900, 4 * 3600));
        let t = targets.for_ticket(EscalationReason::EscalateIntent, Some("damaged_item"));
        assert_eq!(
            (t.first_response_secs, t.resolution_secs),
            (1800, 24 * 3600)
        );
        let t = targets.for_ticket(EscalationReason::UnknownQuestion, None);
        assert_eq!(
            (t.first_response_secs, t.resolution_secs),
            (3600, 24 * 3600)
        );
    }

    #[test]
    fn clock_met_missed_running_in_business_hours() {
        let hours = HoursConfig {
            timezone: Some("Europe/Madrid".into()),
            monday: Some("9:00-18:00".into()),
            tuesday: Some("9:00-18:00".into()),
            wednesday: Some("9:00-18:00".into()),
            thursday: Some("9:00-18:00".into()),
            friday: Some("9:00-18:00".into()),
            ..HoursConfig::default()
        }
        .build()
        .unwrap();
        let targets = Targets::default();
        // Opened Friday 17:30 Madrid (16:30Z): the hour runs out Monday 9:30.
        let mut t = ticket("2026-01-09T16:30:00Z");
        let c = ticket_clock(&t, &targets, &hours, ts("2026-01-10T12:00:00Z"));
        assert_eq!(
            c.first_response,
            Mark::Running {
                due: ts("2026-01-12T08:30:00Z")
            }
        );
        let c = ticket_clock(&t, &targets, &hours, ts("2026-01-12T08:30:00Z"));
        assert_eq!(c.first_response.as_str(), "missed");
        // Answered Monday 9:10: met, having taken 40 business minutes.
        t.first_response_at = Some(ts("2026-01-12T08:10:00Z"));
        let c = ticket_clock(&t, &targets, &hours, ts("2026-01-12T10:00:00Z"));
        assert_eq!(
            c.first_response,
            Mark::Met {
                at: ts("2026-01-12T08:10:00Z"),
                took: SignedDuration::from_mins(40)
            }
        );
        assert_eq!(c.resolution.as_str(), "running");
        // 24 business hours: Fri 0.5 h + Mon 9 h + Tue 9 h + Wed 5.5 h → Wednesday 14:30.
        assert_eq!(
            c.resolution,
            Mark::Running {
                due: ts("2026-01-14T13:30:00Z")
            }
        );
    }

    #[test]
    fn a_ticket_closed_for_no_answer_counts_as_resolved_by_the_reply() {
        let mut t = ticket("2026-01-05T10:00:00Z");
        event(&mut t, "2026-01-05T10:20:00Z", TicketEventKind::Replied);
        t.first_response_at = Some(ts("2026-01-05T10:20:00Z"));
        assert_eq!(
            waiting_on(&t),
            Some(Waiting::Customer {
                since: ts("2026-01-05T10:20:00Z")
            })
        );
        event(
            &mut t,
            "2026-01-08T10:20:00Z",
            TicketEventKind::ClosedNoReply,
        );
        t.status = TicketStatus::Resolved;
        t.resolved_at = Some(ts("2026-01-08T10:20:00Z"));
        assert_eq!(resolution_instant(&t), Some(ts("2026-01-05T10:20:00Z")));
        let c = ticket_clock(
            &t,
            &Targets::default(),
            &BusinessHours::default(),
            ts("2026-01-09T00:00:00Z"),
        );
        assert_eq!(c.resolution.as_str(), "met");
    }

    #[test]
    fn reminder_ladder_goes_out_once_each() {
        let hours = BusinessHours::default();
        let policy = Policy::default();
        let mut t = ticket("2026-01-05T10:00:00Z");
        let targets = Targets::default().of(&t);
        let at = |s| due(&t, targets, &hours, &policy, ts(s));
        assert!(at("2026-01-05T10:29:59Z").is_empty());
        assert_eq!(
            at("2026-01-05T10:30:00Z"),
            vec![Due::Reminder(ReminderKind::FirstResponseHalf)]
        );
        event(
            &mut t,
            "2026-01-05T10:30:00Z",
            TicketEventKind::Reminder {
                reminder: ReminderKind::FirstResponseHalf,
            },
        );
        let at = |s| due(&t, targets, &hours, &policy, ts(s));
        assert!(at("2026-01-05T10:45:00Z").is_empty());
        assert_eq!(
            at("2026-01-05T11:00:00Z"),
            vec![
                Due::Reminder(ReminderKind::FirstResponseMissed),
                Due::Reminder(ReminderKind::CustomerStillOnIt)
            ]
        );
        // Claimed without a reply: the assignee is reminded, then it is offered.
        event(&mut t, "2026-01-05T11:05:00Z", TicketEventKind::Claimed);
        t.status = TicketStatus::Claimed;
        for k in [
            ReminderKind::FirstResponseMissed,
            ReminderKind::CustomerStillOnIt,
        ] {
            event(
                &mut t,
                "2026-01-05T11:00:00Z",
                TicketEventKind::Reminder { reminder: k },
            );
        }
        let at = |s| due(&t, targets, &hours, &policy, ts(s));
        assert!(at("2026-01-05T13:04:00Z").is_empty());
        assert_eq!(
            at("2026-01-05T13:05:00Z"),
            vec![Due::Reminder(ReminderKind::ClaimedIdle)]
        );
        assert_eq!(
            at("2026-01-05T15:05:00Z"),
            vec![Due::Reminder(ReminderKind::OfferedToOthers)]
        );
        // A reply hands the move to the customer; three days later it closes.
        event(&mut t, "2026-01-05T15:10:00Z", TicketEventKind::Replied);
        t.first_response_at = Some(ts("2026-01-05T15:10:00Z"));
        let at = |s| due(&t, targets, &hours, &policy, ts(s));
        assert!(at("2026-01-08T15:09:59Z").is_empty());
        assert_eq!(at("2026-01-08T15:10:00Z"), vec![Due::CloseNoReply]);
        // The customer writes again: staff's move, the idle clock restarts from there.
        event(
            &mut t,
            "2026-01-06T09:00:00Z",
            TicketEventKind::CustomerMessage,
        );
        let at = |s| due(&t, targets, &hours, &policy, ts(s));
        assert_eq!(
            at("2026-01-06T11:00:00Z"),
            vec![Due::Reminder(ReminderKind::ClaimedIdle)]
        );
    }
}

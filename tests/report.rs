//! The report on a generated history: a seeded, deterministic generator
//! writes a few thousand conversations, tickets and ratings through the
//! `Store` trait (records shaped as the engine writes them), keeping its own
//! record of what it did; every figure of the report is then checked against
//! figures computed here, independently of `frontdesk::report`, `sla` and
//! `hours` (the business-time arithmetic below is its own). Also: the engine
//! records the questions it could not answer, and the draft intent file made
//! from them loads.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use frontdesk::config::Config;
use frontdesk::engine::{CustomerInfo, Engine, EngineSettings, Inbound, Knowledge, StaffMember};
use frontdesk::hours::{BusinessHours, HoursConfig};
use frontdesk::intents::IntentSet;
use frontdesk::model::{
    Channel, Conversation, Customer, CustomerKey, DialogueState, EscalationReason, Line, Rating,
    ResolvedBy, Speaker, SurveyKind, Ticket, TicketEvent, TicketEventKind, TicketStatus,
    TicketTargets,
};
use frontdesk::report::{Filter, Report, ReportOptions};
use frontdesk::sla::Targets;
use frontdesk::store::{Change, Counters, SledStore, Store};
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

// ----- a seeded generator ------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64) as i64
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut r = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if r < *w {
                return i;
            }
            r -= w;
        }
        weights.len() - 1
    }
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn plus(t: Timestamp, secs: i64) -> Timestamp {
    t.checked_add(SignedDuration::from_secs(secs)).unwrap()
}

// ----- business time, independently: Monday to Friday 9:00–18:00 UTC -----

fn open_interval(day: Date) -> Option<(Timestamp, Timestamp)> {
    if matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday) {
        return None;
    }
    let midnight = day.to_zoned_datetime(TimeZone::UTC).unwrap().timestamp();
    Some((plus(midnight, 9 * 3600), plus(midnight, 18 * 3600)))
}

fn day_of(t: Timestamp) -> Date {
    t.to_zoned_datetime(TimeZone::UTC).date()
}

fn business_secs(from: Timestamp, to: Timestamp) -> i64 {
    let mut total = 0;
    let mut day = day_of(from);
    while day <= day_of(to) {
        if let Some((open, close)) = open_interval(day) {
            let a = open.max(from);
            let b = close.min(to);
            if b > a {
                total += b.duration_since(a).as_secs();
            }
        }
        day = day.tomorrow().unwrap();
    }
    total
}

/// The instant at which `secs` of business time after `start` have passed (the earliest).
fn business_due(start: Timestamp, secs: i64) -> Timestamp {
    let mut left = secs;
    let mut day = day_of(start);
    loop {
        if let Some((open, close)) = open_interval(day)
            && close > start
        {
            let from = open.max(start);
            let span = close.duration_since(from).as_secs();
            if left <= span {
                return plus(from, left);
            }
            left -= span;
        }
        day = day.tomorrow().unwrap();
    }
}

fn shop_hours() -> BusinessHours {
    let day = Some("9:00-18:00".to_string());
    HoursConfig {
        timezone: Some("UTC".into()),
        monday: day.clone(),
        tuesday: day.clone(),
        wednesday: day.clone(),
        thursday: day.clone(),
        friday: day,
        ..HoursConfig::default()
    }
    .build()
    .unwrap()
}

// ----- what the generator did ---------------------------------------------

/// Unanswered questions by topic; every text of a topic should land in one group.
const TOPICS: &[(&str, &[&str])] = &[
    (
        "gift_wrap",
        &[
            "Do you offer gift wrapping?",
            "Can you gift wrap my order?",
            "is gift wrapping available",
            "gift wrap please",
            "¿Hacéis envoltorio de regalo?",
            "¿Se puede hacer envoltorio de regalo?",
        ],
    ),
    (
        "loyalty",
        &[
            "Do you have a loyalty points program?",
            "how do loyalty points work",
            "loyalty card points",
            "¿Tenéis programa de fidelidad?",
            "¿Cómo funciona el programa de fidelidad?",
        ],
    ),
    (
        "pets",
        &[
            "Can I bring my dog into the shop?",
            "are dogs allowed in the shop",
            "dog friendly shop?",
        ],
    ),
    (
        "wholesale",
        &[
            "Do you sell at wholesale prices?",
            "wholesale prices for resellers",
            "I am a reseller, wholesale price list?",
        ],
    ),
    (
        "engraving",
        &[
            "Can you engrave a name on the watch?",
            "do you do engraving on watches",
            "engrave my ring",
        ],
    ),
    (
        "split_order",
        &[
            "Can I split my order into two deliveries?",
            "split my order in two shipments",
        ],
    ),
    ("noise_1", &["asdfgh"]),
    ("noise_2", &["🤔"]),
];

struct TConv {
    channel: Channel,
    started: Timestamp,
    messages: u64,
    unanswered: u64,
    answered_by_bot: bool,
    resolved_by_bot: bool,
    escalated: bool,
    /// The unanswered question: (topic, text).
    question: Option<(&'static str, &'static str)>,
}

struct TTicket {
    number: u64,
    channel: Channel,
    customer: CustomerKey,
    created: Timestamp,
    reason: EscalationReason,
    resolved: bool,
    first_response: Option<Timestamp>,
    resolution: Option<Timestamp>,
    targets: (i64, i64),
}

struct TRating {
    conversation: u64,
    channel: Channel,
    customer: CustomerKey,
    at: Timestamp,
    kind: SurveyKind,
    score: u8,
    comment: Option<String>,
}

#[derive(Default)]
struct History {
    conversations: Vec<TConv>,
    tickets: Vec<TTicket>,
    ratings: Vec<TRating>,
}

const CHANNELS: [Channel; 3] = [Channel::Telegram, Channel::Discord, Channel::Console];
const CUSTOMERS: u64 = 300;
const CONVERSATIONS: u64 = 3000;

fn line(at: Timestamp, speaker: Speaker, text: &str) -> Line {
    Line {
        at,
        speaker,
        text: text.into(),
        intent: None,
        unanswered: false,
    }
}

/// Write a history into `store` the way the engine would, and remember it.
fn generate(store: &dyn Store, seed: u64) -> History {
    let mut rng = Rng(seed);
    let mut h = History::default();
    let start = ts("2026-11-02T00:00:00Z");
    let span = 28 * 86_400;
    let nps_from = ts("2026-11-20T00:00:00Z");
    let mut change = Change::default();
    let mut customers: BTreeMap<CustomerKey, Customer> = BTreeMap::new();
    let mut starts: Vec<i64> = (0..CONVERSATIONS).map(|_| rng.range(0, span)).collect();
    starts.sort();
    let mut ticket_no = 0;
    for (i, offset) in starts.into_iter().enumerate() {
        let id = i as u64 + 1;
        // Skewed: low customer numbers come back often.
        let c = {
            let x = rng.below(1000) as f64 / 1000.0;
            (x * x * CUSTOMERS as f64) as u64
        };
        let channel = CHANNELS[(c % 3) as usize];
        let key = CustomerKey::new(channel, format!("c{c}"));
        let started = plus(start, offset);
        customers.entry(key.clone()).or_insert_with(|| Customer {
            key: key.clone(),
            name: format!("Customer {c}"),
            address: String::new(),
            language: Some("en".into()),
            state: DialogueState::Idle,
            conversation: None,
            first_seen: started,
            last_seen: started,
        });
        // 0 yes, 1 thanks, 2 left after an answer, 3 greeting only, 4 unknown,
        // 5 unknown after "did you mean", 6 not helped, 7 person, 8 complaint, 9 photo
        let kind = rng.weighted(&[22, 8, 8, 4, 16, 4, 10, 8, 12, 8]);
        let mut transcript = vec![line(started, Speaker::Customer, "hello")];
        let mut tc = TConv {
            channel,
            started,
            messages: 1,
            unanswered: 0,
            answered_by_bot: false,
            resolved_by_bot: false,
            escalated: false,
            question: None,
        };
        let mut bot_answers = 0u32;
        let mut language = "en".to_string();
        let reason = match kind {
            0..=2 => {
                bot_answers = 1 + rng.below(2) as u32;
                tc.messages += u64::from(bot_answers);
                None
            }
            3 => None,
            4 | 5 => {
                let (topic, texts) = TOPICS[rng.weighted(&[30, 20, 12, 10, 8, 6, 2, 2])];
                let text = texts[rng.below(texts.len() as u64) as usize];
                if text.starts_with('¿') {
                    language = "es".into();
                }
                tc.question = Some((topic, text));
                tc.unanswered = 1;
                tc.messages += 1;
                let mut q = line(plus(started, 30), Speaker::Customer, text);
                q.unanswered = true;
                transcript.push(q);
                if kind == 5 {
                    transcript.push(line(plus(started, 31), Speaker::Bot, "Did you mean …?"));
                    transcript.push(line(
                        plus(started, 40),
                        Speaker::Customer,
                        "[Something else]",
                    ));
                }
                Some(EscalationReason::UnknownQuestion)
            }
            6 => {
                bot_answers = 1;
                tc.messages += 2;
                Some(EscalationReason::NotHelped)
            }
            7 => {
                tc.messages += 1;
                Some(EscalationReason::AskedForPerson)
            }
            8 => {
                tc.messages += 1;
                Some(EscalationReason::EscalateIntent)
            }
            _ => {
                tc.messages += 1;
                Some(EscalationReason::NonText)
            }
        };
        let mut conversation = Conversation {
            id,
            customer: key.clone(),
            started_at: started,
            ended_at: None,
            messages: tc.messages as u32,
            bot_answers,
            unanswered: tc.unanswered as u32,
            ticket: None,
            resolved_by: None,
            rating_asked: false,
            transcript,
            language,
        };
        let mut resolved_at = None;
        match reason {
            None => {
                if kind <= 1 {
                    let at = plus(started, 120);
                    conversation.resolved_by = Some(ResolvedBy::Bot);
                    conversation.ended_at = Some(at);
                    resolved_at = Some(at);
                    tc.resolved_by_bot = true;
                }
                tc.answered_by_bot = bot_answers > 0;
            }
            Some(reason) => {
                ticket_no += 1;
                tc.escalated = true;
                conversation.ticket = Some(ticket_no);
                let created = plus(started, 60);
                let complaint = reason == EscalationReason::EscalateIntent;
                // Complaints are held to tighter targets; a few tickets predate stored targets.
                let stored = if complaint {
                    Some((900, 4 * 3600))
                } else if rng.chance(10) {
                    None
                } else {
                    Some((3600, 24 * 3600))
                };
                let targets = stored.unwrap_or((3600, 24 * 3600));
                let mut t = Ticket {
                    number: ticket_no,
                    conversation: id,
                    customer: key.clone(),
                    customer_name: format!("Customer {c}"),
                    language: conversation.language.clone(),
                    reason,
                    excerpt: Vec::new(),
                    status: TicketStatus::Open,
                    assignee: None,
                    assignee_id: None,
                    intent: complaint.then(|| "complaint".to_string()),
                    targets: stored.map(|(f, r)| TicketTargets {
                        first_response_secs: f as u64,
                        resolution_secs: r as u64,
                    }),
                    resolution_note: None,
                    created_at: created,
                    first_response_at: None,
                    resolved_at: None,
                    events: vec![TicketEvent {
                        at: created,
                        by: "bot".into(),
                        kind: TicketEventKind::Opened { reason },
                    }],
                };
                let event = |t: &mut Ticket, at, kind| {
                    t.events.push(TicketEvent {
                        at,
                        by: "Sam".into(),
                        kind,
                    })
                };
                let claim = plus(created, rng.range(30, 4 * 3600));
                let reply = plus(claim, rng.range(0, 3 * 3600));
                let resolve = plus(reply, rng.range(600, 3 * 86_400));
                let fate = rng.weighted(&[15, 10, 10, 45, 10, 10]);
                let (mut first, mut resolution) = (None, None);
                if fate >= 1 {
                    t.status = TicketStatus::Claimed;
                    t.assignee = Some("Sam".into());
                    event(&mut t, claim, TicketEventKind::Claimed);
                }
                if matches!(fate, 2 | 3 | 5) {
                    t.first_response_at = Some(reply);
                    event(&mut t, reply, TicketEventKind::Replied);
                    first = Some(reply);
                }
                match fate {
                    3 => {
                        resolution = Some(resolve);
                        t.resolved_at = Some(resolve);
                        event(
                            &mut t,
                            resolve,
                            TicketEventKind::Resolved {
                                note: "done".into(),
                            },
                        );
                    }
                    4 => {
                        // Resolved without a reply: the resolution is the first response.
                        first = Some(resolve);
                        resolution = Some(resolve);
                        t.resolved_at = Some(resolve);
                        event(
                            &mut t,
                            resolve,
                            TicketEventKind::Resolved {
                                note: "sorted".into(),
                            },
                        );
                    }
                    5 => {
                        // The customer never answered: closed three days later,
                        // counted as resolved by the reply.
                        let closed = plus(reply, 3 * 86_400);
                        resolution = Some(reply);
                        t.resolved_at = Some(closed);
                        t.events.push(TicketEvent {
                            at: closed,
                            by: "bot".into(),
                            kind: TicketEventKind::ClosedNoReply,
                        });
                    }
                    _ => {}
                }
                if resolution.is_some() {
                    t.status = TicketStatus::Resolved;
                    conversation.resolved_by = Some(ResolvedBy::Staff);
                    conversation.ended_at = t.resolved_at;
                    resolved_at = t.resolved_at;
                }
                h.tickets.push(TTicket {
                    number: ticket_no,
                    channel,
                    customer: key.clone(),
                    created,
                    reason,
                    resolved: resolution.is_some(),
                    first_response: first,
                    resolution,
                    targets,
                });
                change.tickets.push(t);
            }
        }
        if let Some(at) = resolved_at
            && rng.chance(60)
        {
            let at = plus(at, 60);
            conversation.rating_asked = true;
            let (kind, score) = if at >= nps_from {
                (
                    SurveyKind::Nps,
                    rng.weighted(&[3, 2, 2, 3, 3, 4, 6, 10, 14, 22, 31]) as u8,
                )
            } else {
                (
                    SurveyKind::Csat,
                    1 + rng.weighted(&[10, 10, 15, 30, 35]) as u8,
                )
            };
            let detractor = match kind {
                SurveyKind::Csat => score <= 2,
                SurveyKind::Nps => score <= 6,
            };
            let comment =
                (detractor && rng.chance(60)).then(|| format!("It took too long, \"{id}\", sorry"));
            change.ratings.push(Rating {
                conversation: id,
                ticket: conversation.ticket,
                customer: key.clone(),
                kind,
                score,
                at,
                comment: comment.clone(),
            });
            h.ratings.push(TRating {
                conversation: id,
                channel,
                customer: key.clone(),
                at,
                kind,
                score,
                comment,
            });
        }
        change.conversations.push(conversation);
        h.conversations.push(tc);
        if change.conversations.len() == 500 {
            let mut full = std::mem::take(&mut change);
            full.counters = Counters {
                last_conversation: id,
                last_ticket: ticket_no,
                privacy_swept_at: None,
            };
            store.commit(full).unwrap();
        }
    }
    change.customers = customers.into_values().collect();
    change.counters = Counters {
        last_conversation: CONVERSATIONS,
        last_ticket: ticket_no,
        privacy_swept_at: None,
    };
    store.commit(change).unwrap();
    h
}

// ----- the figures, computed here ----------------------------------------

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn pct(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| round1(part as f64 * 100.0 / whole as f64))
}

fn median(mut v: Vec<i64>) -> Option<f64> {
    v.sort();
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2] as f64),
        _ => Some((v[n / 2 - 1] + v[n / 2]) as f64 / 2.0),
    }
}

fn p90(mut v: Vec<i64>) -> Option<f64> {
    v.sort();
    if v.is_empty() {
        return None;
    }
    // Nearest rank: the smallest value with at least 90 % at or below it.
    let rank = (9 * v.len()).div_ceil(10);
    Some(v[rank - 1] as f64)
}

fn check(
    report: &Report,
    h: &History,
    covers: &dyn Fn(Timestamp, Channel) -> bool,
    now: Timestamp,
) {
    let convs: Vec<&TConv> = h
        .conversations
        .iter()
        .filter(|c| covers(c.started, c.channel))
        .collect();
    let tickets: Vec<&TTicket> = h
        .tickets
        .iter()
        .filter(|t| covers(t.created, t.channel))
        .collect();
    let ratings: Vec<&TRating> = h
        .ratings
        .iter()
        .filter(|r| covers(r.at, r.channel))
        .collect();
    assert!(convs.len() > 100 && tickets.len() > 50 && ratings.len() > 30);
    let n = convs.len();
    let count = |f: &dyn Fn(&TConv) -> bool| convs.iter().filter(|c| f(c)).count();

    // Volume.
    assert_eq!(report.conversations, n as u64);
    assert_eq!(
        report.messages,
        convs.iter().map(|c| c.messages).sum::<u64>()
    );
    assert_eq!(
        report.unanswered_messages,
        convs.iter().map(|c| c.unanswered).sum::<u64>()
    );
    assert_eq!(report.answered_by_bot, count(&|c| c.answered_by_bot) as u64);
    let by_bot = count(&|c| c.resolved_by_bot);
    assert_eq!(report.resolved_by_bot, by_bot as u64);
    assert_eq!(report.bot_resolution_percent, pct(by_bot, n));
    let escalated = count(&|c| c.escalated);
    assert_eq!(report.escalated, escalated as u64);
    assert_eq!(report.escalation_percent, pct(escalated, n));
    let reasons = [
        ("unknown_question", EscalationReason::UnknownQuestion),
        ("not_helped", EscalationReason::NotHelped),
        ("asked_for_person", EscalationReason::AskedForPerson),
        ("escalate_intent", EscalationReason::EscalateIntent),
        ("non_text", EscalationReason::NonText),
    ];
    assert_eq!(report.escalations_by_reason.len(), reasons.len());
    for ((key, reason), got) in reasons.iter().zip(&report.escalations_by_reason) {
        let k = tickets.iter().filter(|t| t.reason == *reason).count();
        assert_eq!(got.reason, *key);
        assert_eq!(got.tickets, k as u64, "{key}");
        assert_eq!(got.percent_of_conversations, pct(k, n), "{key}");
    }

    // Speed, in business time.
    assert_eq!(report.tickets, tickets.len() as u64);
    let resolved = tickets.iter().filter(|t| t.resolved).count();
    assert_eq!(report.tickets_resolved, resolved as u64);
    assert_eq!(report.tickets_open, (tickets.len() - resolved) as u64);
    let firsts: Vec<i64> = tickets
        .iter()
        .filter_map(|t| t.first_response.map(|at| business_secs(t.created, at)))
        .collect();
    let resolutions: Vec<i64> = tickets
        .iter()
        .filter_map(|t| t.resolution.map(|at| business_secs(t.created, at)))
        .collect();
    assert_eq!(report.median_first_response_seconds, median(firsts.clone()));
    assert_eq!(report.p90_first_response_seconds, p90(firsts));
    assert_eq!(
        report.median_resolution_seconds,
        median(resolutions.clone())
    );
    assert_eq!(report.p90_resolution_seconds, p90(resolutions));
    for (which, got) in [(0, report.first_response_sla), (1, report.resolution_sla)] {
        let (mut met, mut missed, mut running) = (0, 0, 0);
        for t in &tickets {
            let (target, reached) = if which == 0 {
                (t.targets.0, t.first_response)
            } else {
                (t.targets.1, t.resolution)
            };
            let due = business_due(t.created, target);
            match reached {
                Some(at) if at <= due => met += 1,
                Some(_) => missed += 1,
                None if now >= due => missed += 1,
                None => running += 1,
            }
        }
        assert_eq!(
            (got.met, got.missed, got.running),
            (met, missed, running),
            "target {which}"
        );
        assert_eq!(got.percent_met, pct(met as usize, (met + missed) as usize));
    }

    // Satisfaction.
    assert_eq!(report.ratings, ratings.len() as u64);
    let csat: Vec<u8> = ratings
        .iter()
        .filter(|r| r.kind == SurveyKind::Csat)
        .map(|r| r.score)
        .collect();
    assert_eq!(report.csat_ratings, csat.len() as u64);
    let sum: u64 = csat.iter().map(|&s| u64::from(s)).sum();
    assert_eq!(
        report.csat_average,
        (!csat.is_empty()).then(|| (sum as f64 / csat.len() as f64 * 100.0).round() / 100.0)
    );
    let dist = |scores: &[u8], lo: u8, hi: u8| -> Vec<(u8, u64)> {
        (lo..=hi)
            .map(|s| (s, scores.iter().filter(|&&x| x == s).count() as u64))
            .collect()
    };
    let got: Vec<(u8, u64)> = report
        .csat_distribution
        .iter()
        .map(|d| (d.score, d.count))
        .collect();
    assert_eq!(got, dist(&csat, 1, 5));
    let nps: Vec<u8> = ratings
        .iter()
        .filter(|r| r.kind == SurveyKind::Nps)
        .map(|r| r.score)
        .collect();
    assert_eq!(report.nps_ratings, nps.len() as u64);
    let promoters = nps.iter().filter(|&&s| s >= 9).count();
    let passives = nps.iter().filter(|&&s| s == 7 || s == 8).count();
    let detractors = nps.iter().filter(|&&s| s <= 6).count();
    assert_eq!(
        (report.promoters, report.passives, report.detractors),
        (promoters as u64, passives as u64, detractors as u64)
    );
    assert_eq!(
        report.nps,
        (!nps.is_empty())
            .then(|| round1((promoters as f64 - detractors as f64) * 100.0 / nps.len() as f64))
    );
    let got: Vec<(u8, u64)> = report
        .nps_distribution
        .iter()
        .map(|d| (d.score, d.count))
        .collect();
    assert_eq!(got, dist(&nps, 0, 10));
    let is_detractor = |r: &TRating| match r.kind {
        SurveyKind::Csat => r.score <= 2,
        SurveyKind::Nps => r.score <= 6,
    };
    let is_promoter = |r: &TRating| match r.kind {
        SurveyKind::Csat => r.score == 5,
        SurveyKind::Nps => r.score >= 9,
    };
    let mut comments: Vec<(Timestamp, u64, String)> = ratings
        .iter()
        .filter(|r| is_detractor(r))
        .filter_map(|r| r.comment.clone().map(|c| (r.at, r.conversation, c)))
        .collect();
    comments.sort();
    let got: Vec<(Timestamp, u64, String)> = report
        .detractor_comments
        .iter()
        .map(|c| (c.at, c.conversation, c.comment.clone()))
        .collect();
    assert!(!comments.is_empty());
    assert_eq!(got, comments);

    // People. Positions on the scale in twentieths: CSAT (s-1)·5, NPS s·2.
    #[derive(Default)]
    struct P {
        ratings: u64,
        promoter: u64,
        twentieths: u64,
        complaint_tickets: Vec<u64>,
        open: u64,
        detractor: u64,
    }
    let mut people: BTreeMap<String, P> = BTreeMap::new();
    for r in &ratings {
        let p = people.entry(r.customer.to_string()).or_default();
        p.ratings += 1;
        p.promoter += u64::from(is_promoter(r));
        p.detractor += u64::from(is_detractor(r));
        p.twentieths += match r.kind {
            SurveyKind::Csat => u64::from(r.score - 1) * 5,
            SurveyKind::Nps => u64::from(r.score) * 2,
        };
    }
    for t in tickets
        .iter()
        .filter(|t| t.reason == EscalationReason::EscalateIntent)
    {
        let p = people.entry(t.customer.to_string()).or_default();
        p.complaint_tickets.push(t.number);
        p.open += u64::from(!t.resolved);
    }
    let mut top: Vec<(u64, u64, f64, String)> = people
        .iter()
        .filter(|(_, p)| p.promoter > 0)
        .map(|(k, p)| {
            let avg = round1(p.twentieths as f64 * 5.0 / p.ratings as f64);
            (p.promoter, p.ratings, avg, k.clone())
        })
        .collect();
    top.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(b.1.cmp(&a.1))
            .then(b.2.total_cmp(&a.2))
            .then(a.3.cmp(&b.3))
    });
    top.truncate(10);
    let got: Vec<(u64, u64, f64, String)> = report
        .top_recommenders
        .iter()
        .map(|r| {
            (
                r.promoter_ratings,
                r.ratings,
                r.average_percent,
                r.customer.clone(),
            )
        })
        .collect();
    assert_eq!(got, top);
    let mut complainers: Vec<(u64, u64, u64, String, Vec<u64>)> = people
        .iter()
        .map(|(k, p)| {
            let all = p.complaint_tickets.len() as u64 + p.detractor;
            (
                p.open,
                all,
                p.detractor,
                k.clone(),
                p.complaint_tickets.clone(),
            )
        })
        .filter(|c| c.0 > 0 || c.1 >= 2)
        .collect();
    complainers.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.3.cmp(&b.3)));
    let got: Vec<(u64, u64, u64, String, Vec<u64>)> = report
        .complaints
        .iter()
        .map(|c| {
            (
                c.open_complaints,
                c.complaints,
                c.detractor_ratings,
                c.customer.clone(),
                c.tickets.clone(),
            )
        })
        .collect();
    assert!(!complainers.is_empty());
    assert_eq!(got, complainers);
    for c in &report.complaints {
        let id = c.customer.split(':').nth(1).unwrap();
        assert_eq!(c.name, format!("Customer {}", &id[1..]));
    }

    // Listening: one group per topic, each pure, with the topic's count.
    // Words do not cross languages: a topic asked in English and in Spanish is two groups.
    let lang = |text: &str| if text.starts_with('¿') { "es" } else { "en" };
    let mut per_topic: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for c in &convs {
        if let Some((topic, text)) = c.question {
            *per_topic.entry((topic, lang(text))).or_default() += 1;
        }
    }
    let topic_of = |text: &str| {
        TOPICS
            .iter()
            .find(|(_, texts)| texts.contains(&text))
            .map(|(t, _)| *t)
            .unwrap_or_else(|| panic!("{text:?} is not a generated question"))
    };
    // Each group holds one topic; each topic, in each language, is in one group
    // (English and Spanish of a topic may share one when they share words).
    let mut seen: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for g in &report.unanswered {
        let texts: Vec<&String> = g.by_language.values().flatten().collect();
        let topic = topic_of(texts[0]);
        assert!(
            texts.iter().all(|t| topic_of(t) == topic),
            "a group mixes topics: {g:?}"
        );
        for (language, n) in &g.languages {
            let language = if language == "es" { "es" } else { "en" };
            assert!(
                seen.insert((topic, language), *n).is_none(),
                "topic {topic} in {language} split over groups: {:?}",
                report.unanswered
            );
        }
    }
    assert_eq!(seen, per_topic);
    let counts: Vec<u64> = report.unanswered.iter().map(|g| g.count).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
}

fn options(filter: Filter, now: Timestamp) -> ReportOptions {
    ReportOptions {
        filter,
        targets: Targets::default(),
        hours: shop_hours(),
        now,
    }
}

#[test]
fn every_figure_matches_an_independent_computation() {
    let store = SledStore::temporary().unwrap();
    let h = generate(&store, 20261102);
    assert_eq!(store.conversations().unwrap().len(), CONVERSATIONS as usize);
    // Monday 9:30, just after the history: the weekend's tickets are still running.
    let now = ts("2026-11-30T09:30:00Z");
    let utc = TimeZone::UTC;

    let all = Report::compute_with(&store, &options(Filter::default(), now)).unwrap();
    check(&all, &h, &|_, _| true, now);
    assert!(all.first_response_sla.running > 0 && all.resolution_sla.running > 0);

    let week = Filter::parse(Some("2026-11-09"), Some("2026-11-15"), None, &utc).unwrap();
    let r = Report::compute_with(&store, &options(week, now)).unwrap();
    let (from, to) = (ts("2026-11-09T00:00:00Z"), ts("2026-11-16T00:00:00Z"));
    check(&r, &h, &|at, _| at >= from && at < to, now);
    assert!(r.conversations < all.conversations);

    let telegram = Filter::parse(None, None, Some("telegram"), &utc).unwrap();
    let r = Report::compute_with(&store, &options(telegram, now)).unwrap();
    check(&r, &h, &|_, c| c == Channel::Telegram, now);

    let late_discord =
        Filter::parse(Some("2026-11-18T12:00:00Z"), None, Some("discord"), &utc).unwrap();
    let r = Report::compute_with(&store, &options(late_discord, now)).unwrap();
    let from = ts("2026-11-18T12:00:00Z");
    check(&r, &h, &|at, c| at >= from && c == Channel::Discord, now);

    // The renderings carry the same figures.
    let json = serde_json::to_value(&all).unwrap();
    assert_eq!(json["conversations"], CONVERSATIONS);
    assert_eq!(
        json["escalations_by_reason"][0]["reason"],
        "unknown_question"
    );
    let csv = all.to_csv();
    assert!(csv.starts_with("section,figure,item,value\n"));
    assert!(csv.contains(&format!("volume,conversations,,{CONVERSATIONS}\n")));
    assert!(csv.contains(&format!(
        "speed,first_response_sla,met,{}\n",
        all.first_response_sla.met
    )));
    // A comment with a comma and quotes is one quoted field.
    let c = &all.detractor_comments[0];
    assert!(csv.contains(&format!(
        "satisfaction,detractor_comment,{},\"It took too long, \"\"{}\"\", sorry\"\n",
        c.conversation, c.conversation
    )));
    let text = all.to_text();
    for heading in [
        "Volume",
        "Speed",
        "Satisfaction",
        "People",
        "Questions the bot could not answer",
    ] {
        assert!(text.contains(heading), "{text}");
    }
    assert!(text.contains('█'), "{text}");
    assert!(text.contains(&all.unanswered[0].examples[0]), "{text}");
    let last = all.detractor_comments.last().unwrap();
    assert!(text.contains(&last.comment), "{text}");
    assert!(!text.contains(&all.detractor_comments[0].comment), "{text}");
}

#[test]
fn the_draft_of_the_generated_questions_loads_as_intents() {
    let store = SledStore::temporary().unwrap();
    generate(&store, 7);
    let report = Report::compute_with(
        &store,
        &options(Filter::default(), ts("2026-12-03T12:00:00Z")),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("draft.toml"), report.draft_intents()).unwrap();
    let languages = vec!["en".to_string(), "es".to_string()];
    let set = IntentSet::load_dir(dir.path(), &languages).unwrap();
    assert_eq!(set.len(), report.unanswered.len());
    let gift = set
        .intents()
        .iter()
        .find(|i| i.id.contains("gift"))
        .expect("a gift-wrap draft");
    assert!(gift.escalate);
    assert!(gift.examples["en"].contains(&"Do you offer gift wrapping?".to_string()));
    assert!(set.intents().iter().any(|i| {
        i.examples
            .get("es")
            .is_some_and(|e| e.contains(&"¿Hacéis envoltorio de regalo?".to_string()))
    }));
}

// ----- the engine records what it could not answer -------------------------

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_engine_marks_unanswered_questions_and_their_draft_joins_the_demo_intents() {
    let config = Config::default();
    let intents = IntentSet::load_dir(&repo().join("intents"), &config.languages).unwrap();
    let knowledge = Knowledge::build(intents, config.matcher);
    let store: Arc<dyn Store> = Arc::new(SledStore::temporary().unwrap());
    let engine = Engine::new(
        store.clone(),
        knowledge,
        EngineSettings::from_config(&config),
    );
    let mut now = ts("2026-11-02T10:00:00Z");
    let customer = |id: &str| CustomerInfo {
        key: CustomerKey::new(Channel::Telegram, id),
        name: format!("Name {id}"),
        address: String::new(),
        language_hint: Some("en".into()),
    };
    let staff = StaffMember {
        channel: Channel::Telegram,
        id: "s1".into(),
        name: "Sam".into(),
    };
    let mut send = |inbound: Inbound| {
        now = plus(now, 60);
        engine.handle(None, inbound, now).unwrap()
    };
    let say = |id: &str, text: &str| Inbound::Message {
        customer: customer(id),
        text: text.into(),
        attachment: None,
    };
    // An unknown question, straight away.
    send(say("a", "Do you have a loyalty program?"));
    send(Inbound::StaffText {
        staff: staff.clone(),
        text: "/resolve 1 Not yet".into(),
        ticket: None,
    });
    // "Did you mean …?" then [Something else]: the question is what they typed.
    let out = send(say("b", "Do you offer gift wrapping?"));
    let else_payload = out
        .iter()
        .find_map(|o| match &o.action {
            frontdesk::model::Action::ToCustomer { buttons, .. } => {
                buttons.last().map(|b| b.payload.clone())
            }
            _ => None,
        })
        .expect("did you mean, with buttons");
    send(Inbound::Button {
        customer: customer("b"),
        payload: else_payload,
    });
    // An answered question is not listed.
    send(say("c", "What time do you open?"));

    let report = Report::compute(store.as_ref()).unwrap();
    assert_eq!(report.unanswered_messages, 2);
    let mut examples: Vec<String> = report
        .unanswered
        .iter()
        .flat_map(|g| g.examples.clone())
        .collect();
    examples.sort();
    assert_eq!(
        examples,
        vec![
            "Do you have a loyalty program?".to_string(),
            "Do you offer gift wrapping?".to_string()
        ]
    );
    let marked: Vec<String> = store
        .conversations()
        .unwrap()
        .iter()
        .flat_map(|c| c.transcript.clone())
        .filter(|l| l.unanswered)
        .map(|l| l.text)
        .collect();
    assert_eq!(marked.len(), 2, "{marked:?}");

    // The draft goes next to the demo intents and the whole set still loads.
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo().join("intents")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.path().join("zz-draft.toml"), report.draft_intents()).unwrap();
    let set = IntentSet::load_dir(dir.path(), &config.languages).unwrap();
    let demo = IntentSet::load_dir(&repo().join("intents"), &config.languages).unwrap();
    assert_eq!(set.len(), demo.len() + 2);
}

#[test]
fn a_transcript_line_from_before_the_flag_reads_as_answered() {
    let old = r#"{"at":"2026-01-05T10:00:00Z","speaker":"customer","text":"hi"}"#;
    let line: Line = serde_json::from_str(old).unwrap();
    assert!(!line.unanswered);
    let json = serde_json::to_string(&line).unwrap();
    assert!(!json.contains("unanswered"), "{json}");
}

//! The records frontdesk keeps: customers, conversations, tickets with their
//! status history, ratings, and the outbound actions waiting in the outbox.
//!
//! They are plain data, serialisable, and free of any platform type; the
//! engine creates and changes them, the store persists them, reports read them.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The platforms frontdesk talks on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// The terminal (`frontdesk chat`).
    Console,
    /// Telegram.
    Telegram,
    /// Discord.
    Discord,
}

impl Channel {
    /// Lowercase name, as used in keys, reports and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Console => "console",
            Channel::Telegram => "telegram",
            Channel::Discord => "discord",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "console" => Ok(Channel::Console),
            "telegram" => Ok(Channel::Telegram),
            "discord" => Ok(Channel::Discord),
            other => Err(format!(
                "unknown channel \"{other}\": use console, telegram or discord"
            )),
        }
    }
}

/// Identifies a customer: the channel plus the platform's user id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CustomerKey {
    /// Where the customer writes from.
    pub channel: Channel,
    /// The platform's id of the user (opaque to the engine).
    pub id: String,
}

impl CustomerKey {
    /// A key for `id` on `channel`.
    pub fn new(channel: Channel, id: impl Into<String>) -> Self {
        CustomerKey {
            channel,
            id: id.into(),
        }
    }
}

impl CustomerKey {
    /// The id that stands in for a customer who asked to be forgotten: their
    /// tickets and conversations keep their channel, counts and times, not who.
    pub const FORGOTTEN_ID: &'static str = "forgotten";

    /// The stand-in for a forgotten customer of `channel`.
    pub fn forgotten(channel: Channel) -> Self {
        CustomerKey::new(channel, Self::FORGOTTEN_ID)
    }

    /// Whether this is the stand-in for a forgotten customer.
    pub fn is_forgotten(&self) -> bool {
        self.id == Self::FORGOTTEN_ID
    }
}

impl FromStr for CustomerKey {
    type Err = String;
    /// `CHANNEL:ID`, as printed by `frontdesk tickets` and `export`: `telegram:12345`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let Some((channel, id)) = s.split_once(':') else {
            return Err(format!(
                "\"{s}\" is not a customer id: write CHANNEL:ID as `frontdesk tickets` shows it, e.g. telegram:12345, discord:298765432109876543 or console:customer"
            ));
        };
        let channel: Channel = channel.trim().parse()?;
        let id = id.trim();
        if id.is_empty() {
            return Err(format!(
                "\"{s}\" has no id after the channel: write CHANNEL:ID, e.g. telegram:12345"
            ));
        }
        if id == Self::FORGOTTEN_ID {
            return Err(format!(
                "\"{s}\" stands for customers already forgotten, not for a customer"
            ));
        }
        Ok(CustomerKey::new(channel, id))
    }
}

impl fmt::Display for CustomerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.channel, self.id)
    }
}

/// Where the customer is in the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DialogueState {
    /// Nothing pending.
    #[default]
    Idle,
    /// The bot answered `intent` and asked "Did that answer your question?".
    AwaitingFeedback {
        /// The intent answered.
        intent: String,
    },
    /// The bot asked "Did you mean …?" with these intents.
    AwaitingChoice {
        /// The offered intents.
        options: Vec<String>,
        /// What the customer wrote.
        question: String,
    },
    /// A ticket is open: messages go to staff.
    InTicket {
        /// The ticket number.
        ticket: u64,
    },
    /// The bot asked for a rating of this conversation.
    AwaitingRating {
        /// The conversation rated.
        conversation: u64,
    },
    /// A detractor was asked (once) what went wrong; the next text is the comment.
    AwaitingComment {
        /// The conversation whose rating the comment belongs to.
        conversation: u64,
    },
}

/// A customer as the store keeps them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// The key.
    pub key: CustomerKey,
    /// Display name, as the platform gives it.
    pub name: String,
    /// Opaque address the channel replies to (a chat id); empty means the user id.
    #[serde(default)]
    pub address: String,
    /// The language last used with this customer.
    pub language: Option<String>,
    /// Dialogue state.
    #[serde(default)]
    pub state: DialogueState,
    /// The open conversation, if any.
    pub conversation: Option<u64>,
    /// First contact.
    pub first_seen: Timestamp,
    /// Last message.
    pub last_seen: Timestamp,
}

/// Who said a line of a transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    /// The customer.
    Customer,
    /// The bot.
    Bot,
    /// A member of staff.
    Staff,
}

/// One line of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// When.
    pub at: Timestamp,
    /// Who.
    pub speaker: Speaker,
    /// What (capped in length; see the engine).
    pub text: String,
    /// For customer lines: the intent the bot matched, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// For customer lines: a question the bot could not answer (it went to a
    /// person as an unknown question). Reports group these. Absent (false) in
    /// stores written before it was recorded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unanswered: bool,
}

/// How a conversation was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResolvedBy {
    /// The customer confirmed a bot answer helped.
    Bot,
    /// Staff resolved its ticket.
    Staff,
}

/// A conversation: from a customer's first message to its resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// Sequential id.
    pub id: u64,
    /// Whose.
    pub customer: CustomerKey,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended (resolved or abandoned).
    pub ended_at: Option<Timestamp>,
    /// Customer messages received.
    pub messages: u32,
    /// Answers the bot gave from intents.
    pub bot_answers: u32,
    /// Customer messages the bot could not match.
    pub unanswered: u32,
    /// The ticket opened in it, if any.
    pub ticket: Option<u64>,
    /// How it was resolved.
    pub resolved_by: Option<ResolvedBy>,
    /// The rating question was sent.
    pub rating_asked: bool,
    /// The transcript (most recent lines; see the engine's cap).
    pub transcript: Vec<Line>,
    /// The language it was held in.
    pub language: String,
}

impl Conversation {
    /// What is kept of a conversation once its customer is forgotten: the
    /// channel, the counts and the times; no transcript, no identity.
    pub fn anonymized(&self) -> Conversation {
        Conversation {
            customer: CustomerKey::forgotten(self.customer.channel),
            transcript: Vec::new(),
            ..self.clone()
        }
    }
}

/// Why a ticket was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationReason {
    /// The bot did not understand the question.
    UnknownQuestion,
    /// The customer said the answer did not help.
    NotHelped,
    /// The customer asked for a person.
    AskedForPerson,
    /// The matched intent always escalates (e.g. a complaint).
    EscalateIntent,
    /// The customer sent something the bot cannot read (a photo, a file).
    NonText,
}

impl EscalationReason {
    /// Short human description.
    pub fn describe(self) -> &'static str {
        match self {
            EscalationReason::UnknownQuestion => "unknown question",
            EscalationReason::NotHelped => "answer did not help",
            EscalationReason::AskedForPerson => "asked for a person",
            EscalationReason::EscalateIntent => "escalating intent",
            EscalationReason::NonText => "non-text message",
        }
    }
}

/// Where a ticket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TicketStatus {
    /// Waiting for staff.
    Open,
    /// A member of staff took it.
    Claimed,
    /// Done.
    Resolved,
}

impl TicketStatus {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Open => "open",
            TicketStatus::Claimed => "claimed",
            TicketStatus::Resolved => "resolved",
        }
    }
}

/// What happened to a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TicketEventKind {
    /// Opened for a reason.
    Opened {
        /// Why.
        reason: EscalationReason,
    },
    /// Claimed by the actor.
    Claimed,
    /// Staff replied to the customer.
    Replied,
    /// The customer wrote while it was open.
    CustomerMessage,
    /// Resolved with a note.
    Resolved {
        /// The resolution note.
        note: String,
    },
    /// Reopened.
    Reopened,
    /// A timer reminder or notice went out (recorded so it goes out once).
    Reminder {
        /// Which one.
        reminder: ReminderKind,
    },
    /// Closed by the bot: the customer did not answer staff's last reply in time.
    ClosedNoReply,
    /// The customer asked to be forgotten: their text and identity were deleted
    /// (an open ticket is closed with this event).
    Forgotten,
}

/// The timer-driven reminders and notices of a ticket, each sent at most once
/// per waiting period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReminderKind {
    /// Unclaimed, half of the first-response target gone: staff chat re-pinged.
    FirstResponseHalf,
    /// Unclaimed, first-response target missed: staff chat re-pinged, managers mentioned.
    FirstResponseMissed,
    /// First-response target missed: the customer was told "still on it".
    CustomerStillOnIt,
    /// Claimed, no staff reply for a while: the assignee was reminded.
    ClaimedIdle,
    /// Claimed, no staff reply for longer: offered to the rest of the staff.
    OfferedToOthers,
}

impl ReminderKind {
    /// Snake-case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ReminderKind::FirstResponseHalf => "first_response_half",
            ReminderKind::FirstResponseMissed => "first_response_missed",
            ReminderKind::CustomerStillOnIt => "customer_still_on_it",
            ReminderKind::ClaimedIdle => "claimed_idle",
            ReminderKind::OfferedToOthers => "offered_to_others",
        }
    }
}

/// The response-time targets a ticket is held to, fixed when it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketTargets {
    /// First staff reply within this many (business) seconds.
    pub first_response_secs: u64,
    /// Resolution within this many (business) seconds.
    pub resolution_secs: u64,
}

/// One timestamped change of a ticket, with who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketEvent {
    /// When.
    pub at: Timestamp,
    /// Who: a staff name, "customer" or "bot".
    pub by: String,
    /// What.
    #[serde(flatten)]
    pub kind: TicketEventKind,
}

/// An escalation to a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    /// Sequential human number (#1, #2, …).
    pub number: u64,
    /// The conversation it belongs to.
    pub conversation: u64,
    /// The customer.
    pub customer: CustomerKey,
    /// The customer's display name.
    pub customer_name: String,
    /// The customer's language.
    pub language: String,
    /// Why it was opened.
    pub reason: EscalationReason,
    /// The recent transcript at opening.
    pub excerpt: Vec<Line>,
    /// Current status.
    pub status: TicketStatus,
    /// Who claimed it.
    pub assignee: Option<String>,
    /// The platform id of who claimed it (for mentions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee_id: Option<String>,
    /// The intent that escalated, for tickets opened by an escalating intent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// The targets it is held to (absent on tickets from before targets existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<TicketTargets>,
    /// The last resolution note.
    pub resolution_note: Option<String>,
    /// Opened at.
    pub created_at: Timestamp,
    /// First staff reply to the customer.
    pub first_response_at: Option<Timestamp>,
    /// Last resolution.
    pub resolved_at: Option<Timestamp>,
    /// Every change, oldest first.
    pub events: Vec<TicketEvent>,
}

impl Ticket {
    /// What is kept of a ticket once its customer is forgotten: number,
    /// status, reason, targets, times, who on the staff did what; no excerpt,
    /// no notes, no name or id of the customer.
    pub fn anonymized(&self) -> Ticket {
        let events = self
            .events
            .iter()
            .map(|e| TicketEvent {
                kind: match &e.kind {
                    TicketEventKind::Resolved { .. } => TicketEventKind::Resolved {
                        note: String::new(),
                    },
                    other => other.clone(),
                },
                ..e.clone()
            })
            .collect();
        Ticket {
            customer: CustomerKey::forgotten(self.customer.channel),
            customer_name: String::new(),
            excerpt: Vec::new(),
            resolution_note: None,
            events,
            ..self.clone()
        }
    }
}

/// The rating scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SurveyKind {
    /// Customer satisfaction, 1–5.
    #[default]
    Csat,
    /// Net promoter score question, 0–10.
    Nps,
}

impl SurveyKind {
    /// Lowest and highest score.
    pub fn range(self) -> (u8, u8) {
        match self {
            SurveyKind::Csat => (1, 5),
            SurveyKind::Nps => (0, 10),
        }
    }
}

/// NPS classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NpsClass {
    /// 9–10.
    Promoter,
    /// 7–8.
    Passive,
    /// 0–6.
    Detractor,
}

impl NpsClass {
    /// Classify an NPS score.
    pub fn of(score: u8) -> NpsClass {
        match score {
            9.. => NpsClass::Promoter,
            7 | 8 => NpsClass::Passive,
            _ => NpsClass::Detractor,
        }
    }
}

/// A satisfaction rating of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    /// The conversation rated.
    pub conversation: u64,
    /// Its ticket, if it had one.
    pub ticket: Option<u64>,
    /// Who rated.
    pub customer: CustomerKey,
    /// The scale.
    pub kind: SurveyKind,
    /// The score.
    pub score: u8,
    /// When.
    pub at: Timestamp,
    /// What went wrong, in the customer's words (detractors are asked once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl Rating {
    /// A detractor: CSAT 1–2 or NPS 0–6.
    pub fn is_detractor(&self) -> bool {
        match self.kind {
            SurveyKind::Csat => self.score <= 2,
            SurveyKind::Nps => NpsClass::of(self.score) == NpsClass::Detractor,
        }
    }

    /// A promoter: CSAT 5 or NPS 9–10.
    pub fn is_promoter(&self) -> bool {
        match self.kind {
            SurveyKind::Csat => self.score >= 5,
            SurveyKind::Nps => NpsClass::of(self.score) == NpsClass::Promoter,
        }
    }

    /// The NPS class, for NPS ratings.
    pub fn nps_class(&self) -> Option<NpsClass> {
        (self.kind == SurveyKind::Nps).then(|| NpsClass::of(self.score))
    }
}

/// A button under a message: a label to show and a payload that comes back when pressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// What the person sees.
    pub label: String,
    /// What the engine gets back when it is pressed (opaque to channels).
    pub payload: String,
}

impl Button {
    /// A button.
    pub fn new(label: impl Into<String>, payload: impl Into<String>) -> Self {
        Button {
            label: label.into(),
            payload: payload.into(),
        }
    }
}

/// Something the engine wants said on a platform. Channels carry it out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// A message to a customer.
    ToCustomer {
        /// The customer.
        customer: CustomerKey,
        /// The channel's address for the reply (a chat id); empty: the user id.
        address: String,
        /// The text.
        text: String,
        /// Buttons under it.
        buttons: Vec<Button>,
    },
    /// A new ticket's ping in the staff chat of `channel`, with \[Claim\] \[Resolve\].
    PingStaff {
        /// Which staff chat.
        channel: Channel,
        /// The ticket.
        ticket: u64,
        /// The ping text.
        text: String,
        /// Its buttons.
        buttons: Vec<Button>,
    },
    /// Replace the text and buttons of a ticket's ping (its status changed).
    UpdatePing {
        /// Which staff chat.
        channel: Channel,
        /// The ticket.
        ticket: u64,
        /// The new text.
        text: String,
        /// The new buttons.
        buttons: Vec<Button>,
    },
    /// A message in the staff chat: a relayed customer message (under the
    /// ticket's ping or in its thread) or an answer to a staff command.
    ToStaff {
        /// Which staff chat.
        channel: Channel,
        /// The ticket it concerns, if any (reply to its ping / post in its thread).
        ticket: Option<u64>,
        /// The text.
        text: String,
    },
}

impl Action {
    /// The channel that must carry the action out.
    pub fn channel(&self) -> Channel {
        match self {
            Action::ToCustomer { customer, .. } => customer.channel,
            Action::PingStaff { channel, .. }
            | Action::UpdatePing { channel, .. }
            | Action::ToStaff { channel, .. } => *channel,
        }
    }
}

/// An action with its outbox id: acknowledge the id once the platform accepted it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outgoing {
    /// Outbox id (increasing).
    pub id: u64,
    /// What to do.
    pub action: Action,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nps_classes() {
        assert_eq!(NpsClass::of(0), NpsClass::Detractor);
        assert_eq!(NpsClass::of(6), NpsClass::Detractor);
        assert_eq!(NpsClass::of(7), NpsClass::Passive);
        assert_eq!(NpsClass::of(8), NpsClass::Passive);
        assert_eq!(NpsClass::of(9), NpsClass::Promoter);
        assert_eq!(NpsClass::of(10), NpsClass::Promoter);
    }

    #[test]
    fn channel_round_trip() {
        for c in [Channel::Console, Channel::Telegram, Channel::Discord] {
            assert_eq!(c.as_str().parse::<Channel>(), Ok(c));
        }
        assert!("irc".parse::<Channel>().is_err());
    }

    #[test]
    fn state_serialises_tagged() {
        let s = DialogueState::InTicket { ticket: 3 };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"state":"in_ticket","ticket":3}"#);
        assert_eq!(serde_json::from_str::<DialogueState>(&json).unwrap(), s);
    }
}

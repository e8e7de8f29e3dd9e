//! The dialogue engine: a platform-agnostic, deterministic state machine.
//!
//! It takes an [`Inbound`] event plus the current time, reads and writes the
//! [`Store`], and returns the [`Outgoing`] actions that channels must carry
//! out. It never calls a platform. All of an event's effects, the handled
//! event id and the outgoing actions are committed in one atomic write, so a
//! crash loses nothing and repeats nothing: channels deliver from the outbox
//! and acknowledge what the platform accepted.
//!
//! The conversation (see design.md): a confident match is answered with
//! "Did that answer your question?" \[Yes\] \[No, talk to a person\]; a close call
//! asks "Did you mean …?"; no match, \[No\], a request for a person or an
//! escalating intent opens a ticket and pings staff; while a ticket is open the
//! customer and staff talk through the bot; a resolution is followed, once,
//! by the rating question; a detractor is asked (once) what went wrong, a
//! promoter is thanked and, if configured, invited to leave a review.
//!
//! Timers: [`Inbound::Tick`] carries no data but the time. It scans the open
//! tickets and sends what [`crate::sla::due`] says is due (re-pings in the
//! staff chat, the managers' mention, the customer's one "still on it", the
//! assignee's reminder, the offer to others, the close of a ticket whose
//! customer never answered), recording each as a ticket event in the same
//! atomic write, so a restart neither repeats nor loses one.

mod messages;
pub mod staff;

pub use messages::{Messages, fill};
pub use staff::StaffCommand;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use jiff::{SignedDuration, Timestamp};

use crate::config::{Config, ManagersConfig};
use crate::hours::BusinessHours;
use crate::intents::{Intent, IntentSet, Role};
use crate::model::{
    Action, Button, Channel, Conversation, Customer, CustomerKey, DialogueState, EscalationReason,
    Line, Outgoing, Rating, ReminderKind, ResolvedBy, Speaker, SurveyKind, Ticket, TicketEvent,
    TicketEventKind, TicketStatus,
};
use crate::nlu::{Matcher, MatcherSettings, Verdict};
use crate::sla::{self, Due, Policy, Targets};
use crate::store::{Change, Counters, CustomerRecords, Forget, Store, StoreError};

/// Longest text kept of one message (characters); longer ones are cut with a marker.
pub const MAX_STORED_CHARS: usize = 4000;
/// Longest text the matcher looks at (characters).
pub const MAX_MATCHED_CHARS: usize = 1000;
/// Transcript lines kept per conversation (oldest dropped first).
pub const MAX_TRANSCRIPT_LINES: usize = 200;
/// A conversation with no message for this long (and no open ticket) is over;
/// the customer's next message starts a new one.
pub const CONVERSATION_IDLE: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);
/// Transcript lines shown in a staff ping.
pub const PING_EXCERPT_LINES: usize = 6;
/// A ticket the bot closed for want of an answer reopens when its customer
/// writes within this long; later, a message starts a new conversation.
pub const REOPEN_WINDOW: SignedDuration = SignedDuration::from_hours(30 * 24);

/// Button payloads the engine understands from customers.
mod payload {
    pub const YES: &str = "yes";
    pub const NO: &str = "no";
    pub const PERSON: &str = "person";
    pub const ELSE: &str = "else";
    pub const INTENT: &str = "intent:";
    pub const RATE: &str = "rate:";
    pub const FORGET_YES: &str = "forget:yes";
    pub const FORGET_NO: &str = "forget:no";
}

/// The retention period is applied at most this often (and at the first tick).
pub const RETENTION_SWEEP_EVERY: SignedDuration = SignedDuration::from_hours(1);

/// A customer as a channel describes them with each event.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerInfo {
    /// Who.
    pub key: CustomerKey,
    /// Display name.
    pub name: String,
    /// Where replies go (a chat id); empty: the user id.
    pub address: String,
    /// The platform's language hint (e.g. Telegram's `language_code`, Discord's `locale`).
    pub language_hint: Option<String>,
}

/// A member of staff acting on a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct StaffMember {
    /// Where they act.
    pub channel: Channel,
    /// Platform user id.
    pub id: String,
    /// Display name (shown to customers).
    pub name: String,
}

/// What happened, as a channel reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// The customer opened the chat (Telegram's /start).
    Start {
        /// Who.
        customer: CustomerInfo,
    },
    /// The customer wrote (or sent something that is not text).
    Message {
        /// Who.
        customer: CustomerInfo,
        /// The text (caption for media; may be empty).
        text: String,
        /// A short description of anything that is not text ("photo", "sticker", "file report.pdf").
        attachment: Option<String>,
    },
    /// The customer pressed a button.
    Button {
        /// Who.
        customer: CustomerInfo,
        /// The button's payload.
        payload: String,
    },
    /// Staff wrote: a command, or (with `ticket`) a reply in a ticket's context
    /// (Telegram reply-to a ping, a Discord ticket thread).
    StaffText {
        /// Who.
        staff: StaffMember,
        /// The text.
        text: String,
        /// The ticket the text was written in the context of.
        ticket: Option<u64>,
    },
    /// Staff pressed \[Claim\] or \[Resolve\].
    StaffButton {
        /// Who.
        staff: StaffMember,
        /// The payload.
        payload: String,
    },
    /// Time passed: send the reminders and notices that fell due, and apply
    /// the retention period. Channels fire it periodically; it carries nothing
    /// but the time given to [`Engine::handle`].
    Tick,
    /// The customer asked to be forgotten (`/forget`, typed or as a Discord
    /// slash command): without `confirmed` they are asked first; confirmed,
    /// their conversations, ratings and personal data are deleted, their
    /// tickets keep only counts and times, open ones are closed and staff told.
    /// A typed `/forget` or `/forget yes` in a [`Inbound::Message`] does the same.
    Forget {
        /// Who.
        customer: CustomerInfo,
        /// The customer confirmed (pressed the button, typed `/forget yes`).
        confirmed: bool,
    },
    /// Staff forget a customer (`frontdesk forget --customer ID`): as a
    /// confirmed [`Inbound::Forget`], without a message to the customer.
    ForgetByStaff {
        /// Who is forgotten.
        customer: CustomerKey,
        /// Who asked (recorded on closed tickets).
        staff: String,
    },
}

/// Why the engine failed. Nothing was written when it fails.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The engine's settings, derived from the configuration.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// The shop's languages.
    pub languages: Vec<String>,
    /// The fallback language.
    pub default_language: String,
    /// CSAT or NPS.
    pub survey: SurveyKind,
    /// Response-time targets.
    pub targets: Targets,
    /// The shop's business hours (targets count only open time).
    pub hours: BusinessHours,
    /// Reminder timers.
    pub policy: Policy,
    /// Who is mentioned when a first-response target is missed.
    pub managers: ManagersConfig,
    /// Where promoters are invited to leave a review.
    pub review_link: Option<String>,
    /// The bot's sentences per language.
    pub messages: BTreeMap<String, Messages>,
    /// Conversation text older than this is deleted (`[privacy] retention_days`); none: kept.
    pub retention: Option<SignedDuration>,
}

impl EngineSettings {
    /// Settings from a validated configuration.
    pub fn from_config(config: &Config) -> EngineSettings {
        let base = Messages::with_overrides(
            &config.default_language,
            &Messages::english(),
            config.messages.get(&config.default_language),
        );
        let messages = config
            .languages
            .iter()
            .map(|lang| {
                (
                    lang.clone(),
                    Messages::with_overrides(lang, &base, config.messages.get(lang)),
                )
            })
            .collect();
        EngineSettings {
            languages: config.languages.clone(),
            default_language: config.default_language.clone(),
            survey: config.survey.kind,
            targets: config.tickets.targets(),
            // Validated at load; a configuration built in code falls back to always open.
            hours: config.business_hours().unwrap_or_default(),
            policy: config.tickets.policy(),
            managers: config.tickets.managers.clone(),
            review_link: config
                .survey
                .review_link
                .as_ref()
                .map(|l| l.trim().to_string()),
            messages,
            retention: config.privacy.retention(),
        }
    }

    fn messages(&self, language: &str) -> &Messages {
        self.messages
            .get(language)
            .or_else(|| self.messages.get(&self.default_language))
            .or_else(|| self.messages.values().next())
            .expect("settings always hold the default language's messages")
    }
}

/// The intents and the matcher built from them; swapped whole on reload.
pub struct Knowledge {
    /// The intents.
    pub intents: IntentSet,
    /// The matcher built from them.
    pub matcher: Matcher,
}

impl Knowledge {
    /// Build the (lexical) matcher for an intent set, its thresholds
    /// calibrated as `matcher` says (a `MatcherConfig` gives fixed ones).
    pub fn build(intents: IntentSet, matcher: impl Into<MatcherSettings>) -> Knowledge {
        let (matcher, _) = crate::nlu::calibrate::build(intents.training_data(), &matcher.into());
        Knowledge { intents, matcher }
    }
}

/// The dialogue engine. Cheap to share behind an `Arc`; events are handled one
/// at a time.
pub struct Engine {
    store: Arc<dyn Store>,
    knowledge: RwLock<Arc<Knowledge>>,
    settings: EngineSettings,
    serial: Mutex<()>,
}

impl Engine {
    /// An engine over a store, with intents and settings.
    pub fn new(store: Arc<dyn Store>, knowledge: Knowledge, settings: EngineSettings) -> Engine {
        Engine {
            store,
            knowledge: RwLock::new(Arc::new(knowledge)),
            settings,
            serial: Mutex::new(()),
        }
    }

    /// The store the engine writes to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The settings.
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Swap in a new set of intents (hot reload); conversations continue.
    pub fn replace_knowledge(&self, knowledge: Knowledge) {
        let mut guard = self.knowledge.write().unwrap_or_else(|e| e.into_inner());
        *guard = Arc::new(knowledge);
    }

    /// The current intents and matcher.
    pub fn knowledge(&self) -> Arc<Knowledge> {
        self.knowledge
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Handle one event at time `now`. `event_id`, when given, makes handling
    /// idempotent: an id already handled returns no actions and changes nothing.
    pub fn handle(
        &self,
        event_id: Option<&str>,
        inbound: Inbound,
        now: Timestamp,
    ) -> Result<Vec<Outgoing>, EngineError> {
        let _serial = self.serial.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = event_id
            && self.store.was_handled(id)?
        {
            tracing::debug!(event = id, "event already handled; skipped");
            return Ok(Vec::new());
        }
        let knowledge = self.knowledge();
        let is_tick = inbound == Inbound::Tick;
        let mut turn = Turn {
            tx: Tx::new(self.store.as_ref())?,
            knowledge: &knowledge,
            settings: &self.settings,
            now,
        };
        match inbound {
            Inbound::Start { customer } => turn.start(&customer)?,
            Inbound::Message {
                customer,
                text,
                attachment,
            } => turn.customer_message(&customer, &text, attachment.as_deref())?,
            Inbound::Button { customer, payload } => turn.customer_button(&customer, &payload)?,
            Inbound::StaffText {
                staff,
                text,
                ticket,
            } => turn.staff_text(&staff, &text, ticket)?,
            Inbound::StaffButton { staff, payload } => match staff::parse_button(&payload) {
                Some(command) => turn.staff_command(&staff, command, None)?,
                None => turn.tell_staff(
                    staff.channel,
                    None,
                    format!("Unknown button \"{}\".", clip(&payload, 60)),
                ),
            },
            Inbound::Tick => turn.tick()?,
            Inbound::Forget {
                customer,
                confirmed,
            } => turn.customer_forget(&customer, confirmed)?,
            Inbound::ForgetByStaff { customer, staff } => {
                let records = turn.tx.store.customer_records(&customer)?;
                if !records.is_empty() {
                    turn.forget(&customer, records, &staff)?;
                }
            }
        }
        let mut change = turn.tx.into_change();
        if is_tick && change.is_empty() && change.counters == self.store.counters()? {
            // Nothing fell due: no write at all.
            return Ok(Vec::new());
        }
        change.handled = event_id.map(str::to_string);
        Ok(self.store.commit(change)?)
    }
}

/// What forgetting a customer deleted, for the message to them.
struct Forgotten {
    conversations: usize,
    ratings: usize,
    tickets: usize,
}

/// `/forget` → `Some(false)`, `/forget yes` → `Some(true)` (also `/forget@bot`).
fn forget_command(text: &str) -> Option<bool> {
    let mut words = text.split_whitespace();
    let first = words.next()?.to_lowercase();
    let word = first.split('@').next().unwrap_or_default();
    if word != "/forget" {
        return None;
    }
    let rest: Vec<String> = words.map(str::to_lowercase).collect();
    Some(matches!(
        rest.as_slice(),
        [w] if ["yes", "y", "sí", "si", "sì", "confirm"].contains(&w.as_str())
    ))
}

/// The pending writes of one event, read-through to the store.
struct Tx<'a> {
    store: &'a dyn Store,
    customers: BTreeMap<CustomerKey, Customer>,
    conversations: BTreeMap<u64, Conversation>,
    tickets: BTreeMap<u64, Ticket>,
    ratings: Vec<Rating>,
    actions: Vec<Action>,
    counters: Counters,
    forget: Vec<Forget>,
    rekey: Vec<CustomerKey>,
    expire_failed_before: Option<Timestamp>,
}

impl<'a> Tx<'a> {
    fn new(store: &'a dyn Store) -> Result<Self, StoreError> {
        Ok(Tx {
            store,
            customers: BTreeMap::new(),
            conversations: BTreeMap::new(),
            tickets: BTreeMap::new(),
            ratings: Vec::new(),
            actions: Vec::new(),
            counters: store.counters()?,
            forget: Vec::new(),
            rekey: Vec::new(),
            expire_failed_before: None,
        })
    }

    fn customer(&self, key: &CustomerKey) -> Result<Option<Customer>, StoreError> {
        match self.customers.get(key) {
            Some(c) => Ok(Some(c.clone())),
            None => self.store.customer(key),
        }
    }

    fn conversation(&self, id: u64) -> Result<Option<Conversation>, StoreError> {
        match self.conversations.get(&id) {
            Some(c) => Ok(Some(c.clone())),
            None => self.store.conversation(id),
        }
    }

    fn ticket(&self, number: u64) -> Result<Option<Ticket>, StoreError> {
        match self.tickets.get(&number) {
            Some(t) => Ok(Some(t.clone())),
            None => self.store.ticket(number),
        }
    }

    fn put_customer(&mut self, c: Customer) {
        self.customers.insert(c.key.clone(), c);
    }

    fn put_conversation(&mut self, c: Conversation) {
        self.conversations.insert(c.id, c);
    }

    fn put_ticket(&mut self, t: Ticket) {
        self.tickets.insert(t.number, t);
    }

    fn into_change(self) -> Change {
        Change {
            customers: self.customers.into_values().collect(),
            conversations: self.conversations.into_values().collect(),
            tickets: self.tickets.into_values().collect(),
            ratings: self.ratings,
            actions: self.actions,
            handled: None,
            counters: self.counters,
            forget: self.forget,
            rekey: self.rekey,
            expire_failed_before: self.expire_failed_before,
        }
    }
}

/// Handling of one event.
struct Turn<'a> {
    tx: Tx<'a>,
    knowledge: &'a Knowledge,
    settings: &'a EngineSettings,
    now: Timestamp,
}

/// The customer and the conversation an event belongs to.
struct Session {
    customer: Customer,
    conversation: Conversation,
    language: String,
}

impl<'a> Turn<'a> {
    fn msgs(&self, language: &str) -> &'a Messages {
        self.settings.messages(language)
    }

    /// Load or create the customer, refresh what the channel tells about them.
    fn load_customer(&mut self, info: &CustomerInfo) -> Result<Customer, StoreError> {
        let mut customer = match self.tx.customer(&info.key)? {
            Some(c) => c,
            None => Customer {
                key: info.key.clone(),
                name: String::new(),
                address: String::new(),
                language: None,
                state: DialogueState::Idle,
                conversation: None,
                first_seen: self.now,
                last_seen: self.now,
            },
        };
        if !info.name.trim().is_empty() {
            customer.name = clip(info.name.trim(), 100);
        }
        if customer.name.is_empty() {
            customer.name = info.key.id.clone();
        }
        if !info.address.is_empty() {
            customer.address = info.address.clone();
        }
        customer.last_seen = self.now;
        Ok(customer)
    }

    /// The customer's open conversation, or a new one.
    fn open_conversation(
        &mut self,
        customer: &mut Customer,
        language: &str,
    ) -> Result<Conversation, StoreError> {
        if let Some(id) = customer.conversation
            && let Some(mut c) = self.tx.conversation(id)?
            && c.ended_at.is_none()
        {
            let last = c.transcript.last().map(|l| l.at).unwrap_or(c.started_at);
            let idle = self.now.duration_since(last);
            let waiting_for_staff = matches!(customer.state, DialogueState::InTicket { .. });
            if waiting_for_staff || idle < CONVERSATION_IDLE {
                return Ok(c);
            }
            // Abandoned: it ended with its last message; this is a new one.
            c.ended_at = Some(last);
            self.tx.put_conversation(c);
            customer.state = DialogueState::Idle;
        }
        self.tx.counters.last_conversation += 1;
        let id = self.tx.counters.last_conversation;
        customer.conversation = Some(id);
        Ok(Conversation {
            id,
            customer: customer.key.clone(),
            started_at: self.now,
            ended_at: None,
            messages: 0,
            bot_answers: 0,
            unanswered: 0,
            ticket: None,
            resolved_by: None,
            rating_asked: false,
            transcript: Vec::new(),
            language: language.to_string(),
        })
    }

    fn session(&mut self, info: &CustomerInfo, language: String) -> Result<Session, StoreError> {
        let mut customer = self.load_customer(info)?;
        customer.language = Some(language.clone());
        let mut conversation = self.open_conversation(&mut customer, &language)?;
        conversation.language = language.clone();
        Ok(Session {
            customer,
            conversation,
            language,
        })
    }

    fn save(&mut self, s: Session) {
        self.tx.put_conversation(s.conversation);
        self.tx.put_customer(s.customer);
    }

    fn is_language(&self, lang: &str) -> bool {
        self.settings.languages.iter().any(|l| l == lang)
    }

    /// The platform hint, if it names one of the shop's languages.
    fn hinted_language(&self, hint: Option<&str>) -> Option<String> {
        let primary = hint?
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        self.is_language(&primary).then_some(primary)
    }

    fn language_without_text(&self, info: &CustomerInfo, known: Option<&str>) -> String {
        self.hinted_language(info.language_hint.as_deref())
            .or_else(|| known.filter(|l| self.is_language(l)).map(str::to_string))
            .unwrap_or_else(|| self.settings.default_language.clone())
    }

    fn say(&mut self, s: &mut Session, text: String, buttons: Vec<Button>) {
        push_line(&mut s.conversation, self.now, Speaker::Bot, &text, None);
        self.tx.actions.push(Action::ToCustomer {
            customer: s.customer.key.clone(),
            address: s.customer.address.clone(),
            text,
            buttons,
        });
    }

    fn tell_staff(&mut self, channel: Channel, ticket: Option<u64>, text: String) {
        self.tx.actions.push(Action::ToStaff {
            channel,
            ticket,
            text,
        });
    }

    // ----- customer side -------------------------------------------------

    fn start(&mut self, info: &CustomerInfo) -> Result<(), EngineError> {
        let known = self.tx.customer(&info.key)?.and_then(|c| c.language);
        let language = self.language_without_text(info, known.as_deref());
        let mut s = self.session(info, language)?;
        if let DialogueState::InTicket { ticket } = s.customer.state
            && self
                .tx
                .ticket(ticket)?
                .is_some_and(|t| t.status != TicketStatus::Resolved)
        {
            let text = fill(
                &self.msgs(&s.language).ticket_waiting,
                &[("ticket", &ticket.to_string())],
            );
            self.say(&mut s, text, Vec::new());
            self.save(s);
            return Ok(());
        }
        match self.knowledge.intents.with_role(Role::Greeting) {
            Some(greeting) => {
                let greeting = greeting.clone();
                self.answer_intent(&mut s, &greeting)?;
            }
            None => {
                let text = self.msgs(&s.language).empty.clone();
                self.say(&mut s, text, Vec::new());
            }
        }
        self.save(s);
        Ok(())
    }

    fn customer_message(
        &mut self,
        info: &CustomerInfo,
        raw_text: &str,
        attachment: Option<&str>,
    ) -> Result<(), EngineError> {
        let text = clean_text(raw_text);
        if attachment.is_none()
            && let Some(confirmed) = forget_command(&text)
        {
            return self.customer_forget(info, confirmed);
        }
        let existing = self.tx.customer(&info.key)?;
        let known_language = existing.as_ref().and_then(|c| c.language.clone());
        let state = existing.map(|c| c.state).unwrap_or_default();

        // The language: the platform's hint, else detection, else what we knew.
        let hinted = self.hinted_language(info.language_hint.as_deref());
        let detected = match &hinted {
            Some(_) => None,
            None => crate::nlu::detect(&clip(&text, MAX_MATCHED_CHARS), &self.settings.languages),
        };
        let matching_language = hinted
            .clone()
            .or(detected.clone())
            .or_else(|| known_language.clone().filter(|l| self.is_language(l)));
        let classification = if text.is_empty() {
            None
        } else {
            Some(self.knowledge.matcher.classify(
                &clip(&text, MAX_MATCHED_CHARS),
                matching_language.as_deref(),
            ))
        };
        let evidence = classification
            .as_ref()
            .filter(|c| !matches!(c.verdict, Verdict::Unknown))
            .and_then(|c| c.evidence_language.clone())
            .filter(|l| self.is_language(l));
        let language = matching_language
            .or(evidence)
            .unwrap_or_else(|| self.settings.default_language.clone());

        // A pending rating question: a rating ends it; anything else starts anew.
        if let DialogueState::AwaitingRating { conversation } = state {
            let (min, max) = self.settings.survey.range();
            match parse_rating(&text) {
                Some(score) if (min..=max).contains(&score) => {
                    let s = self.session_for_rating(info, &language, conversation)?;
                    self.record_rating(s, conversation, score);
                    return Ok(());
                }
                Some(_) => {
                    let mut s = self.session_for_rating(info, &language, conversation)?;
                    push_line(
                        &mut s.conversation,
                        self.now,
                        Speaker::Customer,
                        &text,
                        None,
                    );
                    s.conversation.messages += 1;
                    self.ask_rating_again(&mut s);
                    self.save(s);
                    return Ok(());
                }
                // Nothing to read (an empty line, only control characters):
                // not an answer, and not a reason to drop the question.
                None if text.is_empty() && attachment.is_none() => {
                    let mut s = self.session_for_rating(info, &language, conversation)?;
                    let reply = self.msgs(&s.language).empty.clone();
                    self.say(&mut s, reply, Vec::new());
                    self.save(s);
                    return Ok(());
                }
                None => {
                    let mut customer = self.load_customer(info)?;
                    customer.state = DialogueState::Idle;
                    self.tx.put_customer(customer);
                }
            }
        }

        // A detractor was asked what went wrong: what they write is the answer.
        if let DialogueState::AwaitingComment { conversation } = state {
            let comment = match attachment {
                Some(what) if text.is_empty() => format!("[{}]", clip(what, 100)),
                Some(what) => format!("[{}] {text}", clip(what, 100)),
                None => text.clone(),
            };
            if !comment.is_empty() {
                return self.record_comment(info, &language, conversation, &comment);
            }
        }

        // A ticket the bot closed for want of an answer reopens when the customer writes again.
        let mut reopened_now = false;
        if let DialogueState::InTicket { ticket } = state
            && (!text.is_empty() || attachment.is_some())
            && !staff::looks_like_command(&text)
            && let Some(t) = self.tx.ticket(ticket)?
            && t.status == TicketStatus::Resolved
            && t.events
                .last()
                .is_some_and(|e| e.kind == TicketEventKind::ClosedNoReply)
            && t.resolved_at
                .is_some_and(|at| self.now.duration_since(at) < REOPEN_WINDOW)
        {
            self.reopen_by_customer(info, t, &language)?;
            reopened_now = true;
        }

        let mut s = self.session(info, language)?;
        let shown = match attachment {
            Some(what) if text.is_empty() => format!("[{}]", clip(what, 100)),
            Some(what) => format!("[{}] {text}", clip(what, 100)),
            None => text.clone(),
        };
        let intent_hint = classification.as_ref().and_then(|c| match &c.verdict {
            Verdict::Answer(id) => Some(id.clone()),
            _ => None,
        });
        if !shown.is_empty() {
            push_line(
                &mut s.conversation,
                self.now,
                Speaker::Customer,
                &shown,
                intent_hint,
            );
            s.conversation.messages += 1;
        }

        // An open ticket: everything goes to staff.
        if let DialogueState::InTicket { ticket } = s.customer.state.clone()
            && let Some(t) = self.tx.ticket(ticket)?
            && t.status != TicketStatus::Resolved
        {
            if staff::looks_like_command(&text) {
                let reply = self.msgs(&s.language).staff_only.clone();
                self.say(&mut s, reply, Vec::new());
            } else if !shown.is_empty() {
                self.relay_to_staff(&mut s, t, &shown, !reopened_now);
            }
            self.save(s);
            return Ok(());
        }
        if matches!(s.customer.state, DialogueState::InTicket { .. }) {
            s.customer.state = DialogueState::Idle;
        }

        if staff::looks_like_command(&text) {
            let reply = self.msgs(&s.language).staff_only.clone();
            self.say(&mut s, reply, Vec::new());
            self.save(s);
            return Ok(());
        }

        if attachment.is_some() {
            let reply = self.msgs(&s.language).non_text.clone();
            self.say(&mut s, reply, Vec::new());
            self.escalate(&mut s, EscalationReason::NonText)?;
            self.save(s);
            return Ok(());
        }

        if text.is_empty() {
            let reply = self.msgs(&s.language).empty.clone();
            self.say(&mut s, reply, Vec::new());
            self.save(s);
            return Ok(());
        }

        // Typed answers to the feedback question.
        if let DialogueState::AwaitingFeedback { .. } = s.customer.state {
            match typed_yes_no(&text, self.msgs(&s.language)) {
                Some(true) => {
                    self.resolve_by_bot(&mut s);
                    self.save(s);
                    return Ok(());
                }
                Some(false) => {
                    self.escalate(&mut s, EscalationReason::NotHelped)?;
                    self.save(s);
                    return Ok(());
                }
                None => {}
            }
        }
        s.customer.state = DialogueState::Idle;

        let verdict = classification
            .map(|c| c.verdict)
            .unwrap_or(Verdict::Unknown);
        match verdict {
            Verdict::Answer(id) => match self.knowledge.intents.get(&id) {
                Some(intent) => {
                    let intent = intent.clone();
                    self.answer_intent(&mut s, &intent)?;
                }
                None => self.unknown(&mut s, false)?,
            },
            Verdict::Ambiguous(options) => self.did_you_mean(&mut s, options, &text),
            Verdict::Unknown => self.unknown(&mut s, false)?,
        }
        self.save(s);
        Ok(())
    }

    fn session_for_rating(
        &mut self,
        info: &CustomerInfo,
        language: &str,
        conversation: u64,
    ) -> Result<Session, StoreError> {
        let mut customer = self.load_customer(info)?;
        customer.language = Some(language.to_string());
        let conversation = match self.tx.conversation(conversation)? {
            Some(c) => c,
            None => self.open_conversation(&mut customer, language)?,
        };
        Ok(Session {
            customer,
            conversation,
            language: language.to_string(),
        })
    }

    fn customer_button(&mut self, info: &CustomerInfo, payload: &str) -> Result<(), EngineError> {
        match payload {
            payload::FORGET_YES => return self.customer_forget(info, true),
            payload::FORGET_NO => {
                let known = self.tx.customer(&info.key)?;
                let language = self.language_without_text(
                    info,
                    known.as_ref().and_then(|c| c.language.as_deref()),
                );
                let text = self.msgs(&language).forget_kept.clone();
                self.tx.actions.push(Action::ToCustomer {
                    customer: info.key.clone(),
                    address: known
                        .map(|c| c.address)
                        .filter(|a| !a.is_empty())
                        .unwrap_or_else(|| info.address.clone()),
                    text,
                    buttons: Vec::new(),
                });
                return Ok(());
            }
            _ => {}
        }
        let existing = self.tx.customer(&info.key)?;
        let known = existing.as_ref().and_then(|c| c.language.clone());
        let state = existing.map(|c| c.state).unwrap_or_default();
        let language = self.language_without_text(info, known.as_deref());

        if let Some(score) = payload.strip_prefix(payload::RATE) {
            let (min, max) = self.settings.survey.range();
            if let (DialogueState::AwaitingRating { conversation }, Ok(score)) =
                (&state, score.parse::<u8>())
                && (min..=max).contains(&score)
            {
                let s = self.session_for_rating(info, &language, *conversation)?;
                self.record_rating(s, *conversation, score);
                return Ok(());
            }
            return self.stale_button(info, language);
        }

        // A button while a ticket is open: staff are handling it.
        if let DialogueState::InTicket { ticket } = state
            && let Some(t) = self.tx.ticket(ticket)?
            && t.status != TicketStatus::Resolved
        {
            let mut s = self.session(info, language)?;
            let text = fill(
                &self.msgs(&s.language).ticket_waiting,
                &[("ticket", &ticket.to_string())],
            );
            self.say(&mut s, text, Vec::new());
            self.save(s);
            return Ok(());
        }

        let applies = match payload {
            payload::YES | payload::NO => matches!(state, DialogueState::AwaitingFeedback { .. }),
            payload::ELSE => matches!(state, DialogueState::AwaitingChoice { .. }),
            payload::PERSON => true,
            other => other
                .strip_prefix(payload::INTENT)
                .is_some_and(|id| self.knowledge.intents.get(id).is_some()),
        };
        if !applies {
            return self.stale_button(info, language);
        }
        let mut s = self.session(info, language)?;
        if matches!(
            s.customer.state,
            DialogueState::AwaitingRating { .. } | DialogueState::AwaitingComment { .. }
        ) {
            // Pressing anything else skips the rating (or the comment).
            s.customer.state = DialogueState::Idle;
        }
        let pressed = {
            let m = self.msgs(&s.language);
            match payload {
                payload::YES => m.yes.clone(),
                payload::NO => m.no_person.clone(),
                payload::PERSON => m.talk_to_person.clone(),
                payload::ELSE => m.something_else.clone(),
                other => {
                    let id = other.strip_prefix(payload::INTENT).unwrap_or(other);
                    let default = &self.settings.default_language;
                    self.knowledge
                        .intents
                        .get(id)
                        .map(|i| intent_title(i, &s.language, default))
                        .unwrap_or_else(|| id.to_string())
                }
            }
        };
        push_line(
            &mut s.conversation,
            self.now,
            Speaker::Customer,
            &format!("[{}]", clip(&pressed, 100)),
            None,
        );
        match payload {
            payload::YES => {
                if matches!(s.customer.state, DialogueState::AwaitingFeedback { .. }) {
                    self.resolve_by_bot(&mut s);
                } else {
                    self.stale(&mut s);
                }
            }
            payload::NO => {
                if matches!(s.customer.state, DialogueState::AwaitingFeedback { .. }) {
                    self.escalate(&mut s, EscalationReason::NotHelped)?;
                } else {
                    self.stale(&mut s);
                }
            }
            payload::PERSON => self.escalate(&mut s, EscalationReason::AskedForPerson)?,
            payload::ELSE => {
                if let DialogueState::AwaitingChoice { .. } = &s.customer.state {
                    self.unknown(&mut s, true)?;
                } else {
                    self.stale(&mut s);
                }
            }
            other => match other
                .strip_prefix(payload::INTENT)
                .and_then(|id| self.knowledge.intents.get(id))
            {
                Some(intent) => {
                    let intent = intent.clone();
                    s.customer.state = DialogueState::Idle;
                    self.answer_intent(&mut s, &intent)?;
                }
                None => self.stale(&mut s),
            },
        }
        self.save(s);
        Ok(())
    }

    /// A button that no longer applies: say so, without opening a conversation for it.
    fn stale_button(&mut self, info: &CustomerInfo, language: String) -> Result<(), EngineError> {
        let mut customer = self.load_customer(info)?;
        let open = match customer.conversation {
            Some(id) => self.tx.conversation(id)?.filter(|c| c.ended_at.is_none()),
            None => None,
        };
        match open {
            Some(conversation) => {
                let mut s = Session {
                    customer,
                    conversation,
                    language,
                };
                self.stale(&mut s);
                self.save(s);
            }
            None => {
                let text = self.msgs(&language).stale_button.clone();
                customer.language = Some(language);
                self.tx.actions.push(Action::ToCustomer {
                    customer: customer.key.clone(),
                    address: customer.address.clone(),
                    text,
                    buttons: Vec::new(),
                });
                self.tx.put_customer(customer);
            }
        }
        Ok(())
    }

    fn stale(&mut self, s: &mut Session) {
        let text = self.msgs(&s.language).stale_button.clone();
        self.say(s, text, Vec::new());
    }

    fn answer_intent(&mut self, s: &mut Session, intent: &Intent) -> Result<(), EngineError> {
        let default = self.settings.default_language.clone();
        let answer = intent.answer_in(&s.language, &default).map(str::to_string);
        let buttons: Vec<Button> = intent
            .buttons
            .iter()
            .map(|b| {
                let label = b
                    .label
                    .get(&s.language)
                    .or_else(|| b.label.get(&default))
                    .or_else(|| b.label.values().next())
                    .cloned()
                    .unwrap_or_else(|| b.goto.clone());
                Button::new(label, format!("{}{}", payload::INTENT, b.goto))
            })
            .collect();
        if let Some(last) = s
            .conversation
            .transcript
            .iter_mut()
            .rev()
            .find(|l| l.speaker == Speaker::Customer)
        {
            last.intent = Some(intent.id.clone());
        }

        if intent.role == Some(Role::Human) {
            if let Some(answer) = answer {
                self.say(s, answer, Vec::new());
            }
            return self.escalate(s, EscalationReason::AskedForPerson);
        }
        if intent.escalate {
            if let Some(answer) = answer {
                self.say(s, answer, Vec::new());
            }
            return self.escalate_for(s, EscalationReason::EscalateIntent, Some(&intent.id));
        }
        let Some(answer) = answer else {
            return self.unknown(s, false);
        };
        match intent.role {
            Some(Role::Greeting) => {
                self.say(s, answer, buttons);
                s.customer.state = DialogueState::Idle;
            }
            Some(Role::Thanks) => {
                self.say(s, answer, buttons);
                let helped = s.conversation.bot_answers > 0
                    && s.conversation.ticket.is_none()
                    && s.conversation.resolved_by.is_none();
                if helped {
                    self.close_conversation(s, ResolvedBy::Bot);
                    self.ask_rating(s);
                } else {
                    s.customer.state = DialogueState::Idle;
                }
            }
            Some(Role::Human) => unreachable!("handled above"),
            None => {
                s.conversation.bot_answers += 1;
                self.say(s, answer, buttons);
                let m = self.msgs(&s.language);
                let question = m.did_it_help.clone();
                let feedback = vec![
                    Button::new(m.yes.clone(), payload::YES),
                    Button::new(m.no_person.clone(), payload::NO),
                ];
                self.say(s, question, feedback);
                s.customer.state = DialogueState::AwaitingFeedback {
                    intent: intent.id.clone(),
                };
            }
        }
        Ok(())
    }

    fn did_you_mean(&mut self, s: &mut Session, options: Vec<String>, question: &str) {
        let default = self.settings.default_language.clone();
        let mut buttons = Vec::new();
        let mut kept = Vec::new();
        for id in options.iter().take(3) {
            if let Some(intent) = self.knowledge.intents.get(id) {
                buttons.push(Button::new(
                    intent_title(intent, &s.language, &default),
                    format!("{}{}", payload::INTENT, id),
                ));
                kept.push(id.clone());
            }
        }
        let m = self.msgs(&s.language);
        buttons.push(Button::new(m.something_else.clone(), payload::ELSE));
        let text = m.did_you_mean.clone();
        self.say(s, text, buttons);
        s.customer.state = DialogueState::AwaitingChoice {
            options: kept,
            question: clip(question, MAX_STORED_CHARS),
        };
    }

    /// The bot cannot answer: count it, mark the question, hand it to a person.
    /// `after_choice`: the customer pressed [Something else] under "Did you
    /// mean …?", so the question is the line before that press.
    fn unknown(&mut self, s: &mut Session, after_choice: bool) -> Result<(), EngineError> {
        s.conversation.unanswered += 1;
        mark_unanswered(&mut s.conversation, after_choice);
        self.escalate(s, EscalationReason::UnknownQuestion)
    }

    fn resolve_by_bot(&mut self, s: &mut Session) {
        let text = self.msgs(&s.language).glad_to_help.clone();
        self.say(s, text, Vec::new());
        self.close_conversation(s, ResolvedBy::Bot);
        self.ask_rating(s);
    }

    fn close_conversation(&mut self, s: &mut Session, by: ResolvedBy) {
        s.conversation.resolved_by = Some(by);
        s.conversation.ended_at = Some(self.now);
        s.customer.conversation = None;
        s.customer.state = DialogueState::Idle;
    }

    /// Ask the rating question unless this conversation was already asked.
    fn ask_rating(&mut self, s: &mut Session) {
        if s.conversation.rating_asked {
            return;
        }
        s.conversation.rating_asked = true;
        let (min, max) = self.settings.survey.range();
        let m = self.msgs(&s.language);
        let template = match self.settings.survey {
            SurveyKind::Csat => &m.rate_csat,
            SurveyKind::Nps => &m.rate_nps,
        };
        let text = fill(
            template,
            &[("min", &min.to_string()), ("max", &max.to_string())],
        );
        let buttons = (min..=max)
            .map(|n| Button::new(n.to_string(), format!("{}{n}", payload::RATE)))
            .collect();
        self.say(s, text, buttons);
        s.customer.state = DialogueState::AwaitingRating {
            conversation: s.conversation.id,
        };
    }

    fn ask_rating_again(&mut self, s: &mut Session) {
        let (min, max) = self.settings.survey.range();
        let text = fill(
            &self.msgs(&s.language).rate_out_of_range,
            &[("min", &min.to_string()), ("max", &max.to_string())],
        );
        let buttons = (min..=max)
            .map(|n| Button::new(n.to_string(), format!("{}{n}", payload::RATE)))
            .collect();
        self.say(s, text, buttons);
    }

    /// Store the rating of `conversation`, thank the customer, end the session.
    fn record_rating(&mut self, mut s: Session, conversation: u64, score: u8) {
        push_line(
            &mut s.conversation,
            self.now,
            Speaker::Customer,
            &score.to_string(),
            None,
        );
        self.tx.ratings.push(Rating {
            conversation,
            ticket: s.conversation.ticket,
            customer: s.customer.key.clone(),
            kind: self.settings.survey,
            score,
            at: self.now,
            comment: None,
        });
        s.customer.state = DialogueState::Idle;
        if s.customer.conversation == Some(conversation) {
            s.customer.conversation = None;
        }
        let rating = self.tx.ratings.last().cloned();
        let m = self.msgs(&s.language);
        let text = match &rating {
            Some(r) if r.is_detractor() => {
                let (_, max) = self.settings.survey.range();
                let ticket = r
                    .ticket
                    .map(|n| format!(" · ticket #{n}"))
                    .unwrap_or_else(|| " · no ticket (answered by the bot)".to_string());
                self.tell_staff(
                    s.customer.key.channel,
                    r.ticket,
                    format!(
                        "⚠️ Detractor: {} ({}) rated {score}/{max}{ticket}. They were asked what went wrong.",
                        s.customer.name, s.customer.key
                    ),
                );
                s.customer.state = DialogueState::AwaitingComment { conversation };
                m.rate_detractor.clone()
            }
            Some(r) if r.is_promoter() => match &self.settings.review_link {
                Some(link) => fill(&m.rate_promoter_review, &[("link", link)]),
                None => m.rate_promoter.clone(),
            },
            _ => m.rate_thanks.clone(),
        };
        self.say(&mut s, text, Vec::new());
        self.save(s);
    }

    /// The detractor's answer to "what went wrong?": stored with the rating, passed to staff.
    fn record_comment(
        &mut self,
        info: &CustomerInfo,
        language: &str,
        conversation: u64,
        comment: &str,
    ) -> Result<(), EngineError> {
        let mut s = self.session_for_rating(info, language, conversation)?;
        push_line(
            &mut s.conversation,
            self.now,
            Speaker::Customer,
            comment,
            None,
        );
        s.conversation.messages += 1;
        let comment = clip(comment, MAX_STORED_CHARS);
        let pending = self
            .tx
            .ratings
            .iter()
            .rposition(|r| r.conversation == conversation);
        let rating = match pending {
            Some(i) => Some(self.tx.ratings.remove(i)),
            None => self.tx.store.rating(conversation)?,
        };
        if let Some(mut rating) = rating {
            let (_, max) = rating.kind.range();
            self.tell_staff(
                s.customer.key.channel,
                rating.ticket,
                format!(
                    "💬 {} on their {}/{max} rating{}: {comment}",
                    s.customer.name,
                    rating.score,
                    rating
                        .ticket
                        .map(|n| format!(" (ticket #{n})"))
                        .unwrap_or_default()
                ),
            );
            rating.comment = Some(comment);
            self.tx.ratings.push(rating);
        }
        s.customer.state = DialogueState::Idle;
        if s.customer.conversation == Some(conversation) {
            s.customer.conversation = None;
        }
        let text = self.msgs(&s.language).comment_thanks.clone();
        self.say(&mut s, text, Vec::new());
        self.save(s);
        Ok(())
    }

    fn relay_to_staff(&mut self, s: &mut Session, mut ticket: Ticket, text: &str, ack: bool) {
        ticket.events.push(TicketEvent {
            at: self.now,
            by: "customer".into(),
            kind: TicketEventKind::CustomerMessage,
        });
        let channel = ticket.customer.channel;
        let number = ticket.number;
        let unclaimed = ticket.status == TicketStatus::Open;
        self.tx.put_ticket(ticket);
        self.tell_staff(
            channel,
            Some(number),
            format!(
                "#{number} {}: {}",
                s.customer.name,
                clip(text, MAX_STORED_CHARS)
            ),
        );
        if unclaimed && ack {
            let ack = fill(
                &self.msgs(&s.language).ticket_waiting,
                &[("ticket", &number.to_string())],
            );
            self.say(s, ack, Vec::new());
        }
    }

    /// Open a ticket, tell the customer when to expect an answer, ping staff.
    fn escalate(&mut self, s: &mut Session, reason: EscalationReason) -> Result<(), EngineError> {
        self.escalate_for(s, reason, None)
    }

    /// When the customer can expect an answer to a ticket opened now.
    fn opening_notice(&self, language: &str, number: u64, target_secs: u64) -> String {
        let m = self.msgs(language);
        let hours = &self.settings.hours;
        let ticket = number.to_string();
        let local_now = hours.local(self.now);
        if !hours.is_open(self.now)
            && let Some(opens) = hours.next_open(self.now)
        {
            let when = m.when(&local_now, &hours.local(opens));
            return fill(
                &m.ticket_opened_closed,
                &[("ticket", &ticket), ("when", &when)],
            );
        }
        let target = SignedDuration::from_secs(target_secs as i64);
        let due = hours.add(self.now, target);
        if self.now.checked_add(target).is_ok_and(|plain| plain == due) {
            let eta = m.duration(target_secs);
            fill(&m.ticket_opened, &[("ticket", &ticket), ("eta", &eta)])
        } else {
            // The answer time runs past closing: say by when.
            let when = m.when(&local_now, &hours.local(due));
            fill(&m.ticket_opened_by, &[("ticket", &ticket), ("when", &when)])
        }
    }

    /// [`Turn::escalate`] for a ticket opened by an escalating intent (its targets may differ).
    fn escalate_for(
        &mut self,
        s: &mut Session,
        reason: EscalationReason,
        intent: Option<&str>,
    ) -> Result<(), EngineError> {
        if let DialogueState::InTicket { ticket } = s.customer.state
            && let Some(t) = self.tx.ticket(ticket)?
            && t.status != TicketStatus::Resolved
        {
            let text = fill(
                &self.msgs(&s.language).ticket_waiting,
                &[("ticket", &ticket.to_string())],
            );
            self.say(s, text, Vec::new());
            return Ok(());
        }
        self.tx.counters.last_ticket += 1;
        let number = self.tx.counters.last_ticket;
        // What staff need to see: the latest lines before the hand-off.
        let excerpt: Vec<Line> = s
            .conversation
            .transcript
            .iter()
            .rev()
            .take(PING_EXCERPT_LINES)
            .rev()
            .map(|l| Line {
                text: clip(&l.text, if l.speaker == Speaker::Bot { 120 } else { 500 }),
                ..l.clone()
            })
            .collect();
        let targets = self.settings.targets.for_ticket(reason, intent);
        let text = self.opening_notice(&s.language, number, targets.first_response_secs);
        self.say(s, text, Vec::new());
        let ticket = Ticket {
            number,
            conversation: s.conversation.id,
            customer: s.customer.key.clone(),
            customer_name: s.customer.name.clone(),
            language: s.language.clone(),
            reason,
            excerpt,
            status: TicketStatus::Open,
            assignee: None,
            assignee_id: None,
            intent: intent.map(str::to_string),
            targets: Some(targets),
            resolution_note: None,
            created_at: self.now,
            first_response_at: None,
            resolved_at: None,
            events: vec![TicketEvent {
                at: self.now,
                by: "bot".into(),
                kind: TicketEventKind::Opened { reason },
            }],
        };
        s.conversation.ticket = Some(number);
        s.customer.state = DialogueState::InTicket { ticket: number };
        self.tx.actions.push(Action::PingStaff {
            channel: ticket.customer.channel,
            ticket: number,
            text: ping_text(&ticket),
            buttons: ping_buttons(&ticket),
        });
        self.tx.put_ticket(ticket);
        Ok(())
    }

    /// Reopen a ticket the bot closed for want of an answer: the customer wrote again.
    fn reopen_by_customer(
        &mut self,
        info: &CustomerInfo,
        mut ticket: Ticket,
        language: &str,
    ) -> Result<(), EngineError> {
        let number = ticket.number;
        let mut customer = self.load_customer(info)?;
        if let Some(mut c) = self.tx.conversation(ticket.conversation)? {
            c.ended_at = None;
            c.resolved_by = None;
            customer.conversation = Some(c.id);
            self.tx.put_conversation(c);
        }
        customer.state = DialogueState::InTicket { ticket: number };
        ticket.status = if ticket.assignee.is_some() {
            TicketStatus::Claimed
        } else {
            TicketStatus::Open
        };
        ticket.events.push(TicketEvent {
            at: self.now,
            by: "customer".into(),
            kind: TicketEventKind::Reopened,
        });
        let channel = ticket.customer.channel;
        self.tx.actions.push(Action::UpdatePing {
            channel,
            ticket: number,
            text: ping_text(&ticket),
            buttons: ping_buttons(&ticket),
        });
        self.tell_staff(
            channel,
            Some(number),
            format!(
                "Ticket #{number} reopened: {} wrote again after it was closed for want of an answer.",
                customer.name
            ),
        );
        self.tx.put_ticket(ticket);
        self.tx.put_customer(customer);
        let text = fill(
            &self.msgs(language).ticket_reopened,
            &[("ticket", &number.to_string())],
        );
        self.tx.actions.push(Action::ToCustomer {
            customer: info.key.clone(),
            address: self
                .tx
                .customer(&info.key)?
                .map(|c| c.address)
                .unwrap_or_default(),
            text: text.clone(),
            buttons: Vec::new(),
        });
        if let Some(id) = self.tx.customer(&info.key)?.and_then(|c| c.conversation)
            && let Some(mut c) = self.tx.conversation(id)?
        {
            push_line(&mut c, self.now, Speaker::Bot, &text, None);
            self.tx.put_conversation(c);
        }
        Ok(())
    }

    // ----- the customer's data -------------------------------------------

    /// `/forget`: ask first; confirmed, forget and say what was deleted. The
    /// exchange is not kept in any transcript.
    fn customer_forget(&mut self, info: &CustomerInfo, confirmed: bool) -> Result<(), EngineError> {
        let known = self.tx.customer(&info.key)?;
        let language =
            self.language_without_text(info, known.as_ref().and_then(|c| c.language.as_deref()));
        let address = known
            .as_ref()
            .map(|c| c.address.clone())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| info.address.clone());
        let m = self.msgs(&language);
        let records = self.tx.store.customer_records(&info.key)?;
        let (text, buttons) = if records.is_empty() && known.is_none() {
            (m.forget_nothing.clone(), Vec::new())
        } else if !confirmed {
            (
                m.forget_confirm.clone(),
                vec![
                    Button::new(m.forget_yes.clone(), payload::FORGET_YES),
                    Button::new(m.forget_no.clone(), payload::FORGET_NO),
                ],
            )
        } else {
            let done = self.forget(&info.key, records, "customer")?;
            let text = fill(
                &m.forget_done,
                &[
                    ("conversations", &done.conversations.to_string()),
                    ("ratings", &done.ratings.to_string()),
                    ("tickets", &done.tickets.to_string()),
                ],
            );
            (text, Vec::new())
        };
        self.tx.actions.push(Action::ToCustomer {
            customer: info.key.clone(),
            address,
            text,
            buttons,
        });
        Ok(())
    }

    /// Forget a customer: tickets and conversations are kept anonymised (open
    /// tickets closed, staff told), the rest goes with the customer's key.
    fn forget(
        &mut self,
        key: &CustomerKey,
        records: CustomerRecords,
        by: &str,
    ) -> Result<Forgotten, EngineError> {
        let mut tickets = Vec::new();
        for t in &records.tickets {
            let t = self.tx.ticket(t.number)?.unwrap_or_else(|| t.clone());
            let number = t.number;
            let channel = t.customer.channel;
            let mut anon = t.anonymized();
            if t.status != TicketStatus::Resolved {
                anon.status = TicketStatus::Resolved;
                anon.resolved_at = Some(self.now);
                anon.events.push(TicketEvent {
                    at: self.now,
                    by: by.to_string(),
                    kind: TicketEventKind::Forgotten,
                });
                self.tell_staff(
                    channel,
                    Some(number),
                    format!(
                        "Ticket #{number} closed: the customer asked to be forgotten. Their messages and details were deleted; the ticket keeps only its times."
                    ),
                );
                // Its ping in the staff chat loses the name and the messages
                // too. (Pings of past tickets are left alone: editing them all
                // would post a new ping wherever the old one is gone.)
                self.tx.actions.push(Action::UpdatePing {
                    channel,
                    ticket: number,
                    text: ping_text(&anon),
                    buttons: ping_buttons(&anon),
                });
            }
            self.tx.put_ticket(anon);
            tickets.push(number);
        }
        for c in &records.conversations {
            let c = self.tx.conversation(c.id)?.unwrap_or_else(|| c.clone());
            let mut anon = c.anonymized();
            anon.ended_at.get_or_insert(self.now);
            self.tx.put_conversation(anon);
        }
        self.tx.ratings.retain(|r| &r.customer != key);
        self.tx.customers.remove(key);
        tracing::info!(
            tickets = tickets.len(),
            conversations = records.conversations.len(),
            "a customer was forgotten"
        );
        let done = Forgotten {
            conversations: records.conversations.len(),
            ratings: records.ratings.len(),
            tickets: tickets.len(),
        };
        self.tx.forget.push(Forget {
            customer: key.clone(),
            tickets,
        });
        Ok(done)
    }

    /// Delete conversation text older than the retention period: transcript
    /// lines, ticket excerpts and notes, rating comments, a pending "did you
    /// mean" question, messages set aside as undeliverable. The customers
    /// concerned get a new key, so that the old text in the database's log is
    /// unreadable too.
    fn apply_retention(&mut self) -> Result<(), EngineError> {
        let Some(period) = self.settings.retention else {
            return Ok(());
        };
        if let Some(last) = self.tx.counters.privacy_swept_at
            && self.now.duration_since(last) < RETENTION_SWEEP_EVERY
            && last <= self.now
        {
            return Ok(());
        }
        self.tx.counters.privacy_swept_at = Some(self.now);
        let Ok(cutoff) = self.now.checked_sub(period) else {
            return Ok(());
        };
        let mut touched: std::collections::BTreeSet<CustomerKey> = Default::default();
        for c in self.tx.store.conversations()? {
            let mut c = self.tx.conversation(c.id)?.unwrap_or(c);
            let before = c.transcript.len();
            c.transcript.retain(|l| l.at >= cutoff);
            if c.transcript.len() != before {
                touched.insert(c.customer.clone());
                self.tx.put_conversation(c);
            }
        }
        for t in self.tx.store.tickets()? {
            let mut t = self.tx.ticket(t.number)?.unwrap_or(t);
            let before = t.clone();
            t.excerpt.retain(|l| l.at >= cutoff);
            if t.resolved_at.is_some_and(|at| at < cutoff) {
                t.resolution_note = None;
            }
            for e in &mut t.events {
                if e.at < cutoff
                    && let TicketEventKind::Resolved { note } = &mut e.kind
                {
                    note.clear();
                }
            }
            if t != before {
                touched.insert(t.customer.clone());
                self.tx.put_ticket(t);
            }
        }
        for mut r in self.tx.store.ratings()? {
            if r.at < cutoff && r.comment.is_some() {
                r.comment = None;
                touched.insert(r.customer.clone());
                self.tx.ratings.push(r);
            }
        }
        for c in self.tx.store.customers()? {
            let mut c = self.tx.customer(&c.key)?.unwrap_or(c);
            if c.last_seen < cutoff && matches!(c.state, DialogueState::AwaitingChoice { .. }) {
                c.state = DialogueState::Idle;
                touched.insert(c.key.clone());
                self.tx.put_customer(c);
            }
        }
        touched.retain(|k| !k.is_forgotten());
        if !touched.is_empty() {
            tracing::info!(
                customers = touched.len(),
                "retention: old conversation text deleted"
            );
        }
        self.tx.rekey.extend(touched);
        self.tx.expire_failed_before = Some(cutoff);
        Ok(())
    }

    // ----- timers --------------------------------------------------------

    /// Send what fell due on every open ticket; apply the retention period.
    fn tick(&mut self) -> Result<(), EngineError> {
        self.apply_retention()?;
        for ticket in self.tx.store.open_tickets()? {
            // The pending version, should this event have changed it already.
            let ticket = self.tx.ticket(ticket.number)?.unwrap_or(ticket);
            let targets = self.settings.targets.of(&ticket);
            let due = sla::due(
                &ticket,
                targets,
                &self.settings.hours,
                &self.settings.policy,
                self.now,
            );
            if due.is_empty() {
                continue;
            }
            let mut ticket = ticket;
            for d in due {
                match d {
                    Due::Reminder(kind) => self.remind(&mut ticket, kind)?,
                    Due::CloseNoReply => self.close_no_reply(&mut ticket)?,
                }
            }
            self.tx.put_ticket(ticket);
        }
        Ok(())
    }

    /// Mentions of the assignee: Discord's `<@id>`; else the name.
    fn assignee_mention(ticket: &Ticket) -> String {
        match (ticket.customer.channel, ticket.assignee_id.as_deref()) {
            (Channel::Discord, Some(id)) if id.bytes().all(|b| b.is_ascii_digit()) => {
                format!("<@{id}>")
            }
            _ => ticket
                .assignee
                .clone()
                .unwrap_or_else(|| "whoever has it".into()),
        }
    }

    /// A message of the bot to the ticket's customer, kept in their conversation.
    fn say_to_ticket_customer(
        &mut self,
        ticket: &Ticket,
        text: impl Fn(&Messages) -> String,
    ) -> Result<Option<Customer>, EngineError> {
        let Some(customer) = self.tx.customer(&ticket.customer)? else {
            return Ok(None);
        };
        let language = customer
            .language
            .clone()
            .filter(|l| self.is_language(l))
            .unwrap_or_else(|| ticket.language.clone());
        let text = text(self.msgs(&language));
        if let Some(mut c) = self.tx.conversation(ticket.conversation)? {
            push_line(&mut c, self.now, Speaker::Bot, &text, None);
            self.tx.put_conversation(c);
        }
        self.tx.actions.push(Action::ToCustomer {
            customer: customer.key.clone(),
            address: customer.address.clone(),
            text,
            buttons: Vec::new(),
        });
        Ok(Some(customer))
    }

    fn remind(&mut self, ticket: &mut Ticket, kind: ReminderKind) -> Result<(), EngineError> {
        ticket.events.push(TicketEvent {
            at: self.now,
            by: "bot".into(),
            kind: TicketEventKind::Reminder { reminder: kind },
        });
        let number = ticket.number;
        let channel = ticket.customer.channel;
        let english = Messages::english();
        let targets = self.settings.targets.of(ticket);
        let target = english.duration(targets.first_response_secs);
        // Whole minutes waited (business time), not rounded up.
        let waited = english.duration(
            (self
                .settings
                .hours
                .between(ticket.created_at, self.now)
                .as_secs()
                .max(60) as u64
                / 60)
                * 60,
        );
        let idle_for = |d: Option<std::time::Duration>| {
            english.duration(d.map(|d| d.as_secs()).unwrap_or(0).max(60))
        };
        let who = &ticket.customer_name;
        let staff_text = match kind {
            ReminderKind::FirstResponseHalf => Some(format!(
                "⏳ Ticket #{number} is still waiting to be claimed: {who} has waited {waited} of the {target} first-response target. `claim {number}`"
            )),
            ReminderKind::FirstResponseMissed => {
                let managers = self.settings.managers.mentions(channel);
                let call = if managers.is_empty() {
                    format!("Please claim it now: `claim {number}`")
                } else {
                    format!(
                        "{}: please take a look (`claim {number}`)",
                        managers.join(" ")
                    )
                };
                Some(format!(
                    "🚨 Ticket #{number} missed its first-response target of {target}: nobody has answered {who} yet. {call}"
                ))
            }
            ReminderKind::CustomerStillOnIt => {
                let n = number.to_string();
                self.say_to_ticket_customer(ticket, |m| fill(&m.still_on_it, &[("ticket", &n)]))?;
                None
            }
            ReminderKind::ClaimedIdle => {
                let idle = idle_for(self.settings.policy.claimed_idle);
                Some(if ticket.status == TicketStatus::Claimed {
                    format!(
                        "⏳ Ticket #{number}: {}, {who} has been waiting {idle} for your reply. `reply {number} …`",
                        Self::assignee_mention(ticket)
                    )
                } else {
                    format!(
                        "⏳ Ticket #{number}: {who} has been waiting {idle} for a reply. `claim {number}`"
                    )
                })
            }
            ReminderKind::OfferedToOthers => {
                let idle = idle_for(self.settings.policy.claimed_offer);
                self.tx.actions.push(Action::UpdatePing {
                    channel,
                    ticket: number,
                    text: ping_text(ticket),
                    buttons: ping_buttons(ticket),
                });
                Some(format!(
                    "🔄 Ticket #{number} has had no reply from {} for {idle}: anyone can take it over with `claim {number}`.",
                    ticket.assignee.as_deref().unwrap_or("its assignee")
                ))
            }
        };
        if let Some(text) = staff_text {
            self.tell_staff(channel, Some(number), text);
        }
        Ok(())
    }

    /// The customer never answered staff's last reply: close with a notice; writing again reopens.
    fn close_no_reply(&mut self, ticket: &mut Ticket) -> Result<(), EngineError> {
        let number = ticket.number;
        ticket.status = TicketStatus::Resolved;
        ticket.resolved_at = Some(self.now);
        ticket.events.push(TicketEvent {
            at: self.now,
            by: "bot".into(),
            kind: TicketEventKind::ClosedNoReply,
        });
        let n = number.to_string();
        if let Some(mut customer) = self.say_to_ticket_customer(ticket, |m| {
            fill(&m.ticket_closed_no_reply, &[("ticket", &n)])
        })? {
            // The customer stays with the ticket, so that writing again reopens it.
            if customer.conversation == Some(ticket.conversation) {
                customer.conversation = None;
            }
            self.tx.put_customer(customer);
        }
        if let Some(mut c) = self.tx.conversation(ticket.conversation)?
            && c.ended_at.is_none()
        {
            c.ended_at = Some(self.now);
            c.resolved_by = Some(ResolvedBy::Staff);
            self.tx.put_conversation(c);
        }
        let days = self
            .settings
            .policy
            .close_waiting_after
            .map(|d| d.as_secs() / 86_400)
            .unwrap_or(0);
        let channel = ticket.customer.channel;
        self.tx.actions.push(Action::UpdatePing {
            channel,
            ticket: number,
            text: ping_text(ticket),
            buttons: ping_buttons(ticket),
        });
        self.tell_staff(
            channel,
            Some(number),
            format!(
                "Ticket #{number} closed: {} did not answer the last reply for {days} day(s). It reopens if they write again.",
                ticket.customer_name
            ),
        );
        Ok(())
    }

    // ----- staff side ----------------------------------------------------

    fn staff_text(
        &mut self,
        staff: &StaffMember,
        text: &str,
        context: Option<u64>,
    ) -> Result<(), EngineError> {
        let text = clean_text(text);
        match staff::parse(&text) {
            Ok(command) => self.staff_command(staff, command, context),
            Err(staff::ParseError::Usage(usage)) => {
                self.tell_staff(staff.channel, context, usage);
                Ok(())
            }
            Err(staff::ParseError::NotACommand) => match context {
                Some(ticket) if !text.is_empty() => {
                    self.staff_command(staff, StaffCommand::Reply(ticket, text), context)
                }
                _ => {
                    self.tell_staff(
                        staff.channel,
                        context,
                        format!("Not a command.\n{}", staff::HELP),
                    );
                    Ok(())
                }
            },
        }
    }

    fn staff_command(
        &mut self,
        staff: &StaffMember,
        command: StaffCommand,
        context: Option<u64>,
    ) -> Result<(), EngineError> {
        let number = match &command {
            StaffCommand::Tickets => return self.list_tickets(staff, context),
            StaffCommand::Help => {
                self.tell_staff(staff.channel, context, staff::HELP.to_string());
                return Ok(());
            }
            StaffCommand::Claim(n)
            | StaffCommand::Reply(n, _)
            | StaffCommand::Resolve(n, _)
            | StaffCommand::Reopen(n) => *n,
        };
        let Some(mut ticket) = self.tx.ticket(number)? else {
            self.tell_staff(
                staff.channel,
                context,
                format!("There is no ticket #{number}. `tickets` lists the open ones."),
            );
            return Ok(());
        };
        let Some(mut customer) = self.tx.customer(&ticket.customer)? else {
            let why = if ticket.customer.is_forgotten() {
                "its customer asked to be forgotten, so it cannot be answered or reopened"
            } else {
                "its customer is not in the store any more"
            };
            self.tell_staff(staff.channel, context, format!("Ticket #{number}: {why}."));
            return Ok(());
        };
        let language = customer
            .language
            .clone()
            .filter(|l| self.is_language(l))
            .unwrap_or_else(|| ticket.language.clone());
        let m = self.msgs(&language);
        let mut conversation = self.tx.conversation(ticket.conversation)?;
        let before_status = ticket.status;
        let before_assignee = ticket.assignee.clone();
        let before = (
            before_status,
            before_assignee.as_deref(),
            sla::is_offered(&ticket),
        );
        let mut to_customer: Vec<(String, Vec<Button>)> = Vec::new();
        let mut staff_note: Option<String> = None;

        match command {
            StaffCommand::Claim(_) => {
                if ticket.status == TicketStatus::Resolved {
                    staff_note = Some(format!(
                        "Ticket #{number} is resolved; `reopen {number}` first."
                    ));
                } else if ticket.assignee.as_deref() == Some(staff.name.as_str())
                    && ticket.status == TicketStatus::Claimed
                {
                    staff_note = Some(format!("Ticket #{number} is already yours."));
                } else {
                    let previous = ticket.assignee.replace(staff.name.clone());
                    ticket.assignee_id = Some(staff.id.clone());
                    ticket.status = TicketStatus::Claimed;
                    ticket.events.push(TicketEvent {
                        at: self.now,
                        by: staff.name.clone(),
                        kind: TicketEventKind::Claimed,
                    });
                    staff_note = Some(match previous {
                        Some(p) if p != staff.name => {
                            format!("Ticket #{number} claimed by {} (was {p}).", staff.name)
                        }
                        _ => format!("Ticket #{number} claimed by {}.", staff.name),
                    });
                    to_customer.push((
                        fill(
                            &m.ticket_claimed,
                            &[("staff", &staff.name), ("ticket", &number.to_string())],
                        ),
                        Vec::new(),
                    ));
                }
            }
            StaffCommand::Reply(_, text) => {
                if ticket.status == TicketStatus::Resolved {
                    staff_note = Some(format!(
                        "Ticket #{number} is resolved; `reopen {number}` first, then reply."
                    ));
                } else {
                    if ticket.status == TicketStatus::Open {
                        ticket.status = TicketStatus::Claimed;
                        ticket.assignee = Some(staff.name.clone());
                        ticket.assignee_id = Some(staff.id.clone());
                        ticket.events.push(TicketEvent {
                            at: self.now,
                            by: staff.name.clone(),
                            kind: TicketEventKind::Claimed,
                        });
                    }
                    ticket.first_response_at.get_or_insert(self.now);
                    ticket.events.push(TicketEvent {
                        at: self.now,
                        by: staff.name.clone(),
                        kind: TicketEventKind::Replied,
                    });
                    let text = clip(&text, MAX_STORED_CHARS);
                    if let Some(c) = conversation.as_mut() {
                        push_line(c, self.now, Speaker::Staff, &text, None);
                    }
                    to_customer.push((
                        fill(&m.staff_reply, &[("staff", &staff.name), ("text", &text)]),
                        Vec::new(),
                    ));
                }
            }
            StaffCommand::Resolve(_, note) => {
                if ticket.status == TicketStatus::Resolved {
                    staff_note = Some(format!(
                        "Ticket #{number} is already resolved{}.",
                        ticket
                            .assignee
                            .as_deref()
                            .map(|a| format!(" ({a})"))
                            .unwrap_or_default()
                    ));
                } else {
                    let note = clip(note.trim(), MAX_STORED_CHARS);
                    ticket.status = TicketStatus::Resolved;
                    if ticket.assignee.is_none() {
                        ticket.assignee = Some(staff.name.clone());
                        ticket.assignee_id = Some(staff.id.clone());
                    }
                    ticket.resolved_at = Some(self.now);
                    ticket.resolution_note = (!note.is_empty()).then(|| note.clone());
                    ticket.events.push(TicketEvent {
                        at: self.now,
                        by: staff.name.clone(),
                        kind: TicketEventKind::Resolved { note: note.clone() },
                    });
                    staff_note = Some(format!("Ticket #{number} resolved by {}.", staff.name));
                    let notice = if note.is_empty() {
                        fill(&m.ticket_resolved, &[("ticket", &number.to_string())])
                    } else {
                        fill(
                            &m.ticket_resolved_note,
                            &[("ticket", &number.to_string()), ("note", &note)],
                        )
                    };
                    to_customer.push((notice, Vec::new()));
                }
            }
            StaffCommand::Reopen(_) => {
                if ticket.status != TicketStatus::Resolved {
                    staff_note = Some(format!(
                        "Ticket #{number} is not resolved (it is {}).",
                        ticket.status.as_str()
                    ));
                } else {
                    ticket.status = TicketStatus::Open;
                    ticket.events.push(TicketEvent {
                        at: self.now,
                        by: staff.name.clone(),
                        kind: TicketEventKind::Reopened,
                    });
                    staff_note = Some(format!("Ticket #{number} reopened by {}.", staff.name));
                    to_customer.push((
                        fill(&m.ticket_reopened, &[("ticket", &number.to_string())]),
                        Vec::new(),
                    ));
                }
            }
            StaffCommand::Tickets | StaffCommand::Help => unreachable!("handled above"),
        }

        let ping_changed = (
            ticket.status,
            ticket.assignee.as_deref(),
            sla::is_offered(&ticket),
        ) != before;
        if !to_customer.is_empty() {
            // Move the customer's dialogue along with the ticket.
            let mut session = conversation.map(|conversation| Session {
                customer: customer.clone(),
                conversation,
                language: language.clone(),
            });
            for (text, buttons) in to_customer {
                match session.as_mut() {
                    Some(s) => self.say(s, text, buttons),
                    None => self.tx.actions.push(Action::ToCustomer {
                        customer: customer.key.clone(),
                        address: customer.address.clone(),
                        text,
                        buttons,
                    }),
                }
            }
            match ticket.status {
                TicketStatus::Resolved => {
                    // A customer whose dialogue is with another open ticket
                    // (reopened meanwhile) stays with that one.
                    let busy_elsewhere = match customer.state {
                        DialogueState::InTicket { ticket: other } if other != number => self
                            .tx
                            .ticket(other)?
                            .is_some_and(|t| t.status != TicketStatus::Resolved),
                        _ => false,
                    };
                    match session.as_mut() {
                        Some(s) if busy_elsewhere => {
                            s.conversation.resolved_by = Some(ResolvedBy::Staff);
                            s.conversation.ended_at = Some(self.now);
                        }
                        Some(s) => {
                            self.close_conversation(s, ResolvedBy::Staff);
                            self.ask_rating(s);
                        }
                        None if busy_elsewhere => {}
                        None => customer.state = DialogueState::Idle,
                    }
                }
                TicketStatus::Open | TicketStatus::Claimed => {
                    if let Some(s) = session.as_mut() {
                        if s.conversation.ended_at.is_some() {
                            // Reopened: the conversation goes on.
                            s.conversation.ended_at = None;
                            s.conversation.resolved_by = None;
                        }
                        s.customer.conversation = Some(s.conversation.id);
                        s.customer.state = DialogueState::InTicket { ticket: number };
                    } else {
                        customer.state = DialogueState::InTicket { ticket: number };
                    }
                }
            }
            match session {
                Some(s) => self.save(s),
                None => self.tx.put_customer(customer),
            }
            if ping_changed {
                self.tx.actions.push(Action::UpdatePing {
                    channel: ticket.customer.channel,
                    ticket: number,
                    text: ping_text(&ticket),
                    buttons: ping_buttons(&ticket),
                });
            }
            self.tx.put_ticket(ticket);
        }
        if let Some(note) = staff_note {
            self.tell_staff(staff.channel, context.or(Some(number)), note);
        }
        Ok(())
    }

    fn list_tickets(
        &mut self,
        staff: &StaffMember,
        context: Option<u64>,
    ) -> Result<(), EngineError> {
        let mut open: Vec<Ticket> = self
            .tx
            .store
            .tickets()?
            .into_iter()
            .filter(|t| t.status != TicketStatus::Resolved)
            .collect();
        open.sort_by_key(|t| (t.created_at, t.number));
        let text = if open.is_empty() {
            "No open tickets.".to_string()
        } else {
            let mut lines = vec![format!("Open tickets ({}), oldest first:", open.len())];
            for t in &open {
                let waited = self.now.duration_since(t.created_at).as_secs().max(0) as u64;
                lines.push(format!(
                    "#{} {} · {} ({}, {}) · {} · waiting {}{}",
                    t.number,
                    t.status.as_str(),
                    t.customer_name,
                    t.customer.channel,
                    t.language,
                    t.reason.describe(),
                    Messages::english().duration(waited.max(60)),
                    t.assignee
                        .as_deref()
                        .map(|a| format!(" · {a}"))
                        .unwrap_or_default()
                ));
            }
            lines.join("\n")
        };
        self.tell_staff(staff.channel, context, text);
        Ok(())
    }
}

/// The text of a ticket's staff ping: number, reason, customer, status, recent lines.
pub fn ping_text(ticket: &Ticket) -> String {
    let status = match ticket.status {
        TicketStatus::Open => "open — waiting for someone to claim it".to_string(),
        TicketStatus::Claimed if sla::is_offered(ticket) => format!(
            "claimed by {}, no reply for a while — anyone can take it over",
            ticket.assignee.as_deref().unwrap_or("someone")
        ),
        TicketStatus::Claimed => format!(
            "claimed by {}",
            ticket.assignee.as_deref().unwrap_or("someone")
        ),
        TicketStatus::Resolved
            if ticket
                .events
                .last()
                .is_some_and(|e| e.kind == TicketEventKind::ClosedNoReply) =>
        {
            "closed: no answer from the customer (reopens if they write)".to_string()
        }
        TicketStatus::Resolved => match &ticket.resolution_note {
            Some(note) => format!(
                "resolved by {}: {note}",
                ticket.assignee.as_deref().unwrap_or("staff")
            ),
            None => format!(
                "resolved by {}",
                ticket.assignee.as_deref().unwrap_or("staff")
            ),
        },
    };
    let customer = if ticket.customer.is_forgotten() {
        "forgotten at their request".to_string()
    } else {
        format!("{} ({})", ticket.customer_name, ticket.customer)
    };
    let mut text = format!(
        "🔔 Ticket #{} — {}\nCustomer: {customer} · language: {}\nStatus: {status}",
        ticket.number,
        ticket.reason.describe(),
        ticket.language,
    );
    if !ticket.excerpt.is_empty() {
        text.push_str("\nRecent messages:");
        for line in &ticket.excerpt {
            let who = match line.speaker {
                Speaker::Customer => "customer",
                Speaker::Bot => "bot",
                Speaker::Staff => "staff",
            };
            text.push_str(&format!("\n  {who}: {}", line.text.replace('\n', " ")));
        }
    }
    text
}

/// The buttons of a ticket's ping for its status.
pub fn ping_buttons(ticket: &Ticket) -> Vec<Button> {
    let n = ticket.number;
    match ticket.status {
        TicketStatus::Open => vec![
            Button::new("Claim", format!("claim:{n}")),
            Button::new("Resolve", format!("resolve:{n}")),
        ],
        TicketStatus::Claimed if sla::is_offered(ticket) => vec![
            Button::new("Claim", format!("claim:{n}")),
            Button::new("Resolve", format!("resolve:{n}")),
        ],
        TicketStatus::Claimed => vec![Button::new("Resolve", format!("resolve:{n}"))],
        TicketStatus::Resolved => Vec::new(),
    }
}

fn intent_title(intent: &Intent, language: &str, default: &str) -> String {
    intent
        .examples
        .get(language)
        .or_else(|| intent.examples.get(default))
        .or_else(|| intent.examples.values().next())
        .and_then(|e| e.first())
        .cloned()
        .unwrap_or_else(|| intent.id.replace('_', " "))
}

fn push_line(
    conversation: &mut Conversation,
    at: Timestamp,
    speaker: Speaker,
    text: &str,
    intent: Option<String>,
) {
    conversation.transcript.push(Line {
        at,
        speaker,
        text: clip(text, MAX_STORED_CHARS),
        intent,
        unanswered: false,
    });
    let excess = conversation
        .transcript
        .len()
        .saturating_sub(MAX_TRANSCRIPT_LINES);
    if excess > 0 {
        conversation.transcript.drain(..excess);
    }
}

/// Mark the question the bot could not answer: the customer's last typed
/// line, or, after [Something else], the question that led to "Did you mean
/// …?" (the line before the button press).
fn mark_unanswered(conversation: &mut Conversation, after_choice: bool) {
    if let Some(line) = conversation
        .transcript
        .iter_mut()
        .rev()
        .filter(|l| l.speaker == Speaker::Customer)
        .nth(usize::from(after_choice))
    {
        line.unanswered = true;
    }
}

/// Control characters out (but newlines and tabs), whitespace trimmed.
fn clean_text(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect::<String>()
        .trim()
        .to_string()
}

/// At most `max` characters, with a marker when cut. Clipping a text that
/// was clipped before counts the characters cut then too, so the marker
/// always tells how much of the original is missing.
pub fn clip(text: &str, max: usize) -> String {
    let (body, cut_before) = split_clip_marker(text);
    match body.char_indices().nth(max) {
        None => text.to_string(),
        Some((cut, _)) => format!(
            "{}… [{} more characters]",
            &body[..cut],
            body[cut..].chars().count() + cut_before
        ),
    }
}

/// A text and the count of its earlier clip marker (0 when it has none).
fn split_clip_marker(text: &str) -> (&str, usize) {
    let marked = text
        .strip_suffix(" more characters]")
        .and_then(|rest| rest.rsplit_once("… ["))
        .and_then(|(body, n)| Some((body, n.parse::<usize>().ok()?)));
    marked.unwrap_or((text, 0))
}

/// A rating typed as text: "4", " 4 ", "4/5", "4 stars", "⭐4". None when the text is not just a number.
fn parse_rating(text: &str) -> Option<u8> {
    let t = text
        .trim()
        .trim_matches(|c: char| matches!(c, '⭐' | '★' | '🌟' | '\u{fe0f}') || c.is_whitespace());
    let t = t.split('/').next().unwrap_or(t).trim();
    let t = t
        .strip_suffix("stars")
        .or_else(|| t.strip_suffix("star"))
        .or_else(|| t.strip_suffix("estrellas"))
        .or_else(|| t.strip_suffix("stelle"))
        .unwrap_or(t)
        .trim();
    if t.is_empty() {
        // Only stars: as many stars, as many points.
        let stars = text
            .chars()
            .filter(|c| !c.is_whitespace() && !matches!(c, '\u{fe0f}'))
            .try_fold(0u16, |n, c| matches!(c, '⭐' | '★' | '🌟').then_some(n + 1))?;
        return (1..=10).contains(&stars).then_some(stars as u8);
    }
    if t.len() > 3 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<u16>().ok().map(|n| n.min(255) as u8)
}

/// "yes"/"no" typed instead of pressed.
fn typed_yes_no(text: &str, m: &Messages) -> Option<bool> {
    let t = crate::nlu::normalize(text);
    let yes_words = [
        "yes", "y", "yeah", "yep", "si", "sip", "certo", "claro", "vale",
    ];
    let no_words = ["no", "n", "nope", "nah"];
    if t == crate::nlu::normalize(&m.yes) || yes_words.contains(&t.as_str()) {
        return Some(true);
    }
    if t == crate::nlu::normalize(&m.no_person) || no_words.contains(&t.as_str()) {
        return Some(false);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forget_is_recognised_typed_and_confirmed_only_by_yes() {
        assert_eq!(forget_command("/forget"), Some(false));
        assert_eq!(forget_command("  /FORGET  "), Some(false));
        assert_eq!(forget_command("/forget@shopbot"), Some(false));
        assert_eq!(forget_command("/forget yes"), Some(true));
        assert_eq!(forget_command("/forget Sí"), Some(true));
        assert_eq!(forget_command("/forget@shopbot yes"), Some(true));
        assert_eq!(forget_command("/forget yes please"), Some(false));
        assert_eq!(forget_command("/forget no"), Some(false));
        assert_eq!(forget_command("/forgetful"), None);
        assert_eq!(forget_command("please forget me"), None);
        assert_eq!(forget_command(""), None);
    }

    #[test]
    fn clip_marks_what_it_cut() {
        assert_eq!(clip("hello", 10), "hello");
        assert_eq!(clip("hello", 5), "hello");
        assert_eq!(clip("héllo wörld", 5), "héllo… [6 more characters]");
    }

    #[test]
    fn ratings_typed_as_text() {
        assert_eq!(parse_rating("4"), Some(4));
        assert_eq!(parse_rating(" 5/5 "), Some(5));
        assert_eq!(parse_rating("3 stars"), Some(3));
        assert_eq!(parse_rating("11"), Some(11));
        assert_eq!(parse_rating("999"), Some(255));
        assert_eq!(parse_rating("where is my order"), None);
        assert_eq!(parse_rating(""), None);
        assert_eq!(parse_rating("12345678901234567890"), None);
        assert_eq!(parse_rating("-1"), None);
        assert_eq!(parse_rating("⭐⭐⭐⭐⭐"), Some(5));
        assert_eq!(parse_rating("⭐️⭐️⭐️"), Some(3));
        assert_eq!(parse_rating("★ ★"), Some(2));
        assert_eq!(parse_rating("⭐4"), Some(4));
        assert_eq!(parse_rating(&"⭐".repeat(11)), None);
        assert_eq!(parse_rating("⭐ great"), None);
    }

    #[test]
    fn clipping_twice_counts_the_original() {
        let once = clip(&"a".repeat(10_000), 4000);
        assert!(once.ends_with("… [6000 more characters]"));
        let twice = clip(&once, 500);
        assert_eq!(
            twice,
            format!("{}… [9500 more characters]", "a".repeat(500))
        );
        assert_eq!(clip(&once, 5000), once);
        assert_eq!(clip("short", 10), "short");
    }

    #[test]
    fn clean_text_drops_control_characters() {
        assert_eq!(clean_text("\u{0}hi\u{7}\n there \u{1b}"), "hi\n there");
        assert_eq!(clean_text("   \t "), "");
    }
}

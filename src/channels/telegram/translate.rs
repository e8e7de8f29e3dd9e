//! Translation between Telegram and the engine, both ways, as pure functions.
//!
//! Inbound: a raw update (as `getUpdates` returns it) becomes at most one
//! engine event plus what the adapter must do on Telegram besides (answer the
//! callback query, take the keyboard off a pressed message, tell staff that
//! only text is relayed). Updates are read with teloxide's types; one that
//! teloxide cannot read is still read from the raw JSON when it is a
//! customer's private message, so that nothing a customer sends is dropped.
//!
//! Outbound: texts are split below Telegram's 4096-character limit on
//! character boundaries, buttons become inline keyboards whose callback data
//! fits Telegram's 64 bytes (longer payloads are replaced by a short key the
//! adapter remembers), and requests are teloxide payloads.

use serde::Deserialize;
use serde_json::Value;
use teloxide::payloads::{
    AnswerCallbackQuery, EditMessageReplyMarkup, EditMessageText, SendMessage,
};
use teloxide::types::{
    CallbackQuery, CallbackQueryId, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MediaKind,
    Message, MessageId, MessageKind, ReplyMarkup, ReplyParameters, Update, UpdateKind, User,
};

use crate::engine::staff::looks_like_command;
use crate::engine::{CustomerInfo, Inbound, StaffMember};
use crate::model::{Button, Channel, CustomerKey};

/// Longest message text Telegram accepts, in UTF-16 code units (Telegram counts those).
pub const MAX_TEXT_UTF16: usize = 4096;
/// Longest callback data Telegram accepts, in bytes.
pub const MAX_CALLBACK_DATA: usize = 64;
/// Callback data that starts with this is a key for a payload too long for Telegram.
pub const LONG_PAYLOAD_PREFIX: &str = "~";
/// What staff are told when they reply to a ticket with something that is not text.
pub const ONLY_TEXT_NOTICE: &str = "Only text is relayed to the customer: please write your reply as text (as a reply to the ticket's message).";

/// What the adapter knows about its own setup when it translates.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The staff group's chat id.
    pub staff_chat: i64,
    /// Users who act as staff in private chats too.
    pub staff_ids: &'a [u64],
    /// The bot's @username (without the @), for `/command@botname`.
    pub bot_username: &'a str,
}

/// Look-ups in the adapter's own state (kept in the store's meta records).
pub trait Lookup {
    /// The ticket a message in `chat` belongs to (a ping, or a message posted under it).
    fn ticket_of_message(&self, chat: i64, message: i32) -> Option<u64>;
    /// The payload a long-payload key stands for.
    fn long_payload(&self, key: &str) -> Option<String>;
}

/// A message the adapter sends directly (not an engine action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The chat.
    pub chat: i64,
    /// The message it answers.
    pub reply_to: i32,
    /// The text.
    pub text: String,
}

/// Why an update is not an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// What it was, for the log.
    pub why: String,
    /// Worth an info line (not just debug): it may show a setup problem.
    pub notable: bool,
}

/// What one update means.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Translated {
    /// The engine event, if any.
    pub inbound: Option<Inbound>,
    /// A callback query to answer (every one is answered).
    pub answer_callback: Option<String>,
    /// A customer's pressed message (chat, message id) whose keyboard is to go.
    pub clear_keyboard: Option<(i64, i32)>,
    /// A message to send directly.
    pub notice: Option<Notice>,
    /// Why nothing happened, when nothing did.
    pub ignored: Option<Ignored>,
}

impl Translated {
    fn event(inbound: Inbound) -> Translated {
        Translated {
            inbound: Some(inbound),
            ..Translated::default()
        }
    }

    fn ignore(why: impl Into<String>) -> Translated {
        Translated {
            ignored: Some(Ignored {
                why: why.into(),
                notable: false,
            }),
            ..Translated::default()
        }
    }

    fn notable(why: impl Into<String>) -> Translated {
        Translated {
            ignored: Some(Ignored {
                why: why.into(),
                notable: true,
            }),
            ..Translated::default()
        }
    }
}

/// The update id of a raw update.
pub fn update_id(raw: &Value) -> Option<u64> {
    raw.get("update_id").and_then(Value::as_u64)
}

/// Translate one raw update.
pub fn translate(raw: &Value, ctx: &Context<'_>, lookup: &dyn Lookup) -> Translated {
    // From text, not from the `Value`: teloxide's `UpdateKind` reads its key as
    // a borrowed string, which a `Value` cannot lend.
    match serde_json::from_str::<Update>(&raw.to_string()) {
        Ok(Update {
            kind: UpdateKind::Error(_),
            ..
        })
        | Err(_) => fallback(raw, ctx),
        Ok(update) => match update.kind {
            UpdateKind::Message(m) => message(&m, ctx, lookup),
            UpdateKind::CallbackQuery(q) => callback(q, ctx, lookup),
            UpdateKind::EditedMessage(_) => {
                Translated::ignore("an edited message (edits are not answered again)")
            }
            UpdateKind::ChannelPost(_) | UpdateKind::EditedChannelPost(_) => {
                Translated::ignore("a channel post")
            }
            _ => Translated::ignore("an update of a kind frontdesk does not use"),
        },
    }
}

/// A customer as the engine sees them: key = user id, address = chat id.
fn customer(user: &UserFields, chat: i64) -> CustomerInfo {
    let mut name = user.full_name();
    if let Some(username) = user.username.as_deref().filter(|u| !u.is_empty()) {
        if name.is_empty() {
            name = format!("@{username}");
        } else {
            name = format!("{name} (@{username})");
        }
    }
    CustomerInfo {
        key: CustomerKey::new(Channel::Telegram, user.id.to_string()),
        name,
        address: chat.to_string(),
        language_hint: user.language_code.clone().filter(|l| !l.is_empty()),
    }
}

/// A member of staff: id and a display name.
fn staff(user: &UserFields) -> StaffMember {
    let full = user.full_name();
    let name = if !full.is_empty() {
        full
    } else if let Some(u) = user.username.as_deref().filter(|u| !u.is_empty()) {
        format!("@{u}")
    } else {
        user.id.to_string()
    };
    StaffMember {
        channel: Channel::Telegram,
        id: user.id.to_string(),
        name,
    }
}

/// The user fields the adapter uses, from teloxide's `User` or from raw JSON.
#[derive(Debug, Clone, Deserialize)]
struct UserFields {
    id: u64,
    #[serde(default)]
    is_bot: bool,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    language_code: Option<String>,
}

impl UserFields {
    fn full_name(&self) -> String {
        let mut name = self.first_name.trim().to_string();
        if let Some(last) = self
            .last_name
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            if !name.is_empty() {
                name.push(' ');
            }
            name.push_str(last);
        }
        name
    }
}

impl From<&User> for UserFields {
    fn from(u: &User) -> Self {
        UserFields {
            id: u.id.0,
            is_bot: u.is_bot,
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            username: u.username.clone(),
            language_code: u.language_code.clone(),
        }
    }
}

/// `/start`, `/start@bot`, `/start payload`.
fn is_start(text: &str) -> bool {
    let word = text.split_whitespace().next().unwrap_or("");
    let word = word.split('@').next().unwrap_or(word);
    word.eq_ignore_ascii_case("/start")
}

/// The `@botname` a `/command@botname` is addressed to.
fn command_target(text: &str) -> Option<&str> {
    let word = text.split_whitespace().next()?;
    word.strip_prefix('/')?.split_once('@').map(|(_, bot)| bot)
}

/// A short description of a message that is not text ("photo", "file invoice.pdf"), if it is content.
fn attachment(m: &Message) -> Option<String> {
    match &m.kind {
        MessageKind::Common(c) => Some(match &c.media_kind {
            MediaKind::Text(_) => return None,
            MediaKind::Migration(_) => return None,
            MediaKind::Animation(_) => "animation".into(),
            MediaKind::Audio(_) => "audio".into(),
            MediaKind::Contact(_) => "contact".into(),
            MediaKind::Document(d) => match d.document.file_name.as_deref() {
                Some(name) if !name.trim().is_empty() => format!("file {}", name.trim()),
                _ => "file".into(),
            },
            MediaKind::PaidMedia(_) => "paid media".into(),
            MediaKind::Game(_) => "game".into(),
            MediaKind::Venue(_) => "venue".into(),
            MediaKind::Location(_) => "location".into(),
            MediaKind::Photo(_) => "photo".into(),
            MediaKind::Poll(_) => "poll".into(),
            MediaKind::Checklist(_) => "checklist".into(),
            MediaKind::Sticker(s) => match s.sticker.emoji.as_deref() {
                Some(e) if !e.is_empty() => format!("sticker {e}"),
                _ => "sticker".into(),
            },
            MediaKind::Story(_) => "story".into(),
            MediaKind::Video(_) => "video".into(),
            MediaKind::VideoNote(_) => "video note".into(),
            MediaKind::Voice(_) => "voice message".into(),
        }),
        MessageKind::Dice(_) => Some("dice".into()),
        // Content teloxide does not know (a newer Bot API kind): still the
        // customer's message.
        MessageKind::Empty {} => Some("message".into()),
        _ => None,
    }
}

fn message(m: &Message, ctx: &Context<'_>, lookup: &dyn Lookup) -> Translated {
    let chat = m.chat.id.0;
    let Some(from) = m.from.as_ref() else {
        return Translated::ignore("a message without a sender (anonymous admin or channel)");
    };
    let from = UserFields::from(from);
    if from.is_bot {
        return Translated::ignore("a message from a bot");
    }
    if chat == ctx.staff_chat {
        return staff_group_message(m, &from, ctx, lookup);
    }
    if !m.chat.is_private() {
        let title = m.chat.title().unwrap_or("");
        return Translated::notable(format!(
            "a message in the group \"{title}\" (chat id {chat}), which is not the staff group (chat id {})",
            ctx.staff_chat
        ));
    }
    let customer = customer(&from, chat);
    if let Some(text) = m.text() {
        if is_start(text) {
            return Translated::event(Inbound::Start { customer });
        }
        if looks_like_command(text) && ctx.staff_ids.contains(&from.id) {
            return Translated::event(Inbound::StaffText {
                staff: staff(&from),
                text: text.to_string(),
                ticket: None,
            });
        }
        return Translated::event(Inbound::Message {
            customer,
            text: text.to_string(),
            attachment: None,
        });
    }
    match attachment(m) {
        Some(what) => Translated::event(Inbound::Message {
            customer,
            text: m.caption().unwrap_or_default().to_string(),
            attachment: Some(what),
        }),
        None => Translated::ignore("a service message in a private chat"),
    }
}

fn staff_group_message(
    m: &Message,
    from: &UserFields,
    ctx: &Context<'_>,
    lookup: &dyn Lookup,
) -> Translated {
    let chat = m.chat.id.0;
    let text = m.text().or_else(|| m.caption()).unwrap_or("").trim();
    let ticket = m
        .reply_to_message()
        .and_then(|r| lookup.ticket_of_message(chat, r.id.0));
    if let Some(target) = command_target(text)
        && !target.eq_ignore_ascii_case(ctx.bot_username)
    {
        return Translated::ignore(format!("a command for another bot (@{target})"));
    }
    if looks_like_command(text) {
        return Translated::event(Inbound::StaffText {
            staff: staff(from),
            text: text.to_string(),
            ticket,
        });
    }
    match ticket {
        Some(n) if !text.is_empty() && !text.starts_with('/') => {
            Translated::event(Inbound::StaffText {
                staff: staff(from),
                text: text.to_string(),
                ticket: Some(n),
            })
        }
        Some(n) if text.is_empty() => Translated {
            notice: Some(Notice {
                chat,
                reply_to: m.id.0,
                text: ONLY_TEXT_NOTICE.to_string(),
            }),
            ..Translated::ignore(format!("a reply to ticket #{n} that is not text"))
        },
        Some(_) => Translated::ignore("an unknown command in reply to a ticket"),
        None => Translated::ignore("chatter in the staff group"),
    }
}

fn callback(q: CallbackQuery, ctx: &Context<'_>, lookup: &dyn Lookup) -> Translated {
    let answer = Some(q.id.0.clone());
    let with_answer = |t: Translated| Translated {
        answer_callback: answer.clone(),
        ..t
    };
    let from = UserFields::from(&q.from);
    let Some(data) = q.data.as_deref() else {
        return with_answer(Translated::ignore("a button press without data"));
    };
    let payload = match data.strip_prefix(LONG_PAYLOAD_PREFIX) {
        Some(key) => match lookup.long_payload(key) {
            Some(p) => p,
            None => {
                return with_answer(Translated::ignore(format!(
                    "a button with an unknown long-payload key {key}"
                )));
            }
        },
        None => data.to_string(),
    };
    let Some(message) = q.message.as_ref() else {
        return with_answer(Translated::ignore(
            "a button press without its message (inline mode)",
        ));
    };
    let chat = message.chat();
    if from.is_bot {
        return with_answer(Translated::ignore("a button pressed by a bot"));
    }
    if chat.id.0 == ctx.staff_chat {
        return with_answer(Translated::event(Inbound::StaffButton {
            staff: staff(&from),
            payload,
        }));
    }
    if !chat.is_private() {
        return with_answer(Translated::ignore(format!(
            "a button pressed in chat {}, which is neither private nor the staff group",
            chat.id.0
        )));
    }
    Translated {
        clear_keyboard: Some((chat.id.0, message.id().0)),
        ..with_answer(Translated::event(Inbound::Button {
            customer: customer(&from, chat.id.0),
            payload,
        }))
    }
}

/// An update teloxide could not read: a customer's private message is still
/// read from the raw JSON (never dropped); a button press is still answered.
fn fallback(raw: &Value, ctx: &Context<'_>) -> Translated {
    let user = |v: &Value| serde_json::from_value::<UserFields>(v.clone()).ok();
    if let Some(m) = raw.get("message") {
        let chat = m.pointer("/chat/id").and_then(Value::as_i64);
        let private = m.pointer("/chat/type").and_then(Value::as_str) == Some("private");
        if let (Some(chat), true, Some(from)) = (chat, private, m.get("from").and_then(user))
            && !from.is_bot
            && chat != ctx.staff_chat
        {
            let customer = customer(&from, chat);
            return Translated::event(match m.get("text").and_then(Value::as_str) {
                Some(text) if is_start(text) => Inbound::Start { customer },
                Some(text) => Inbound::Message {
                    customer,
                    text: text.to_string(),
                    attachment: None,
                },
                None => Inbound::Message {
                    customer,
                    text: m
                        .get("caption")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    attachment: Some("message".into()),
                },
            });
        }
    }
    let answer_callback = raw
        .pointer("/callback_query/id")
        .and_then(Value::as_str)
        .map(str::to_string);
    Translated {
        answer_callback,
        ..Translated::notable("an update frontdesk cannot read")
    }
}

// ----- outbound ----------------------------------------------------------

/// Split `text` into parts of at most `max_units` UTF-16 code units, on
/// character boundaries, preferring a line break, then a space, in the second
/// half of a part. A blank text becomes "…" (Telegram refuses empty messages).
pub fn split_text(text: &str, max_units: usize) -> Vec<String> {
    let max_units = max_units.max(2);
    let text = text.trim_end();
    if text.trim().is_empty() {
        return vec!["…".to_string()];
    }
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut units = 0;
        let mut end = rest.len();
        let mut newline = None;
        let mut space = None;
        for (i, c) in rest.char_indices() {
            if units + c.len_utf16() > max_units {
                end = i;
                break;
            }
            units += c.len_utf16();
            let after = i + c.len_utf8();
            if units * 2 > max_units {
                if c == '\n' {
                    newline = Some(after);
                } else if c.is_whitespace() {
                    space = Some(after);
                }
            }
        }
        let cut = if end == rest.len() {
            end
        } else {
            newline.or(space).unwrap_or(end)
        };
        let (part, tail) = rest.split_at(cut);
        let part = part.trim_end();
        if !part.is_empty() {
            parts.push(part.to_string());
        }
        rest = tail.trim_start_matches(['\n', ' ']);
    }
    parts
}

/// Callback data for a payload: itself when it fits in 64 bytes, else a short
/// key (returned with the payload, for the adapter to remember).
pub fn callback_data(payload: &str) -> (String, Option<(String, String)>) {
    if !payload.is_empty()
        && payload.len() <= MAX_CALLBACK_DATA
        && !payload.starts_with(LONG_PAYLOAD_PREFIX)
    {
        return (payload.to_string(), None);
    }
    let key = format!("{:016x}", fnv1a(payload.as_bytes()));
    (
        format!("{LONG_PAYLOAD_PREFIX}{key}"),
        Some((key, payload.to_string())),
    )
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// How many buttons go in each row: short labels (rating numbers) in balanced
/// rows of up to 6, up to three short buttons side by side, else one a row.
pub fn rows(buttons: &[Button]) -> Vec<usize> {
    let n = buttons.len();
    if n == 0 {
        return Vec::new();
    }
    let chars: Vec<usize> = buttons.iter().map(|b| b.label.chars().count()).collect();
    if chars.iter().all(|c| *c <= 3) {
        let row_count = n.div_ceil(6);
        let per_row = n.div_ceil(row_count);
        let mut out = Vec::new();
        let mut left = n;
        while left > 0 {
            let take = per_row.min(left);
            out.push(take);
            left -= take;
        }
        return out;
    }
    if n <= 3 && chars.iter().sum::<usize>() <= 24 {
        return vec![n];
    }
    vec![1; n]
}

/// The inline keyboard for `buttons`, and the long payloads to remember (key, payload).
pub fn keyboard(buttons: &[Button]) -> (Option<InlineKeyboardMarkup>, Vec<(String, String)>) {
    if buttons.is_empty() {
        return (None, Vec::new());
    }
    let mut long = Vec::new();
    let mut all = buttons.iter().map(|b| {
        let (data, remember) = callback_data(&b.payload);
        if let Some(r) = remember {
            long.push(r);
        }
        let label = if b.label.trim().is_empty() {
            "…".to_string()
        } else {
            b.label.clone()
        };
        InlineKeyboardButton::callback(label, data)
    });
    let mut markup: Vec<Vec<InlineKeyboardButton>> = Vec::new();
    for count in rows(buttons) {
        markup.push(all.by_ref().take(count).collect());
    }
    drop(all);
    (Some(InlineKeyboardMarkup::new(markup)), long)
}

/// The `sendMessage` requests for a text with buttons: split parts, the
/// keyboard under the last part, the first part a reply to `reply_to`.
/// Also returns the long payloads to remember.
pub fn send_requests(
    chat: i64,
    text: &str,
    buttons: &[Button],
    reply_to: Option<i32>,
) -> (Vec<SendMessage>, Vec<(String, String)>) {
    let (markup, long) = keyboard(buttons);
    let parts = split_text(text, MAX_TEXT_UTF16);
    let last = parts.len() - 1;
    let requests = parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let mut request = SendMessage::new(ChatId(chat), part);
            if i == 0
                && let Some(id) = reply_to
            {
                request.reply_parameters =
                    Some(ReplyParameters::new(MessageId(id)).allow_sending_without_reply());
            }
            if i == last {
                request.reply_markup = markup.clone().map(ReplyMarkup::InlineKeyboard);
            }
            request
        })
        .collect();
    (requests, long)
}

/// The `editMessageText` request that updates a ping (text cut to Telegram's limit).
pub fn edit_request(
    chat: i64,
    message: i32,
    text: &str,
    buttons: &[Button],
) -> (EditMessageText, Vec<(String, String)>) {
    let (markup, long) = keyboard(buttons);
    let mut parts = split_text(text, MAX_TEXT_UTF16 - 1);
    let mut first = parts.remove(0);
    if !parts.is_empty() {
        first.push('…');
    }
    let mut request = EditMessageText::new(ChatId(chat), MessageId(message), first);
    // No markup removes the keyboard; an empty one does the same explicitly.
    request.reply_markup =
        Some(markup.unwrap_or_else(|| InlineKeyboardMarkup::new(Vec::<Vec<_>>::new())));
    (request, long)
}

/// The `editMessageReplyMarkup` request that takes the keyboard off a message.
pub fn clear_keyboard_request(chat: i64, message: i32) -> EditMessageReplyMarkup {
    EditMessageReplyMarkup::new(ChatId(chat), MessageId(message))
}

/// The `answerCallbackQuery` request for a press.
pub fn answer_request(id: &str) -> AnswerCallbackQuery {
    AnswerCallbackQuery::new(CallbackQueryId(id.to_string()))
}

/// The `sendMessage` request for a notice.
pub fn notice_request(notice: &Notice) -> SendMessage {
    let mut request = SendMessage::new(ChatId(notice.chat), notice.text.clone());
    request.reply_parameters =
        Some(ReplyParameters::new(MessageId(notice.reply_to)).allow_sending_without_reply());
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const STAFF_CHAT: i64 = -1_001_234_567_890;

    struct Map {
        tickets: HashMap<(i64, i32), u64>,
        payloads: HashMap<String, String>,
    }

    impl Lookup for Map {
        fn ticket_of_message(&self, chat: i64, message: i32) -> Option<u64> {
            self.tickets.get(&(chat, message)).copied()
        }
        fn long_payload(&self, key: &str) -> Option<String> {
            self.payloads.get(key).cloned()
        }
    }

    fn lookup() -> Map {
        Map {
            tickets: HashMap::from([((STAFF_CHAT, 77), 3)]),
            payloads: HashMap::from([(
                "00000000000000ab".to_string(),
                "intent:a_very_long_intent_id".to_string(),
            )]),
        }
    }

    fn ctx() -> Context<'static> {
        Context {
            staff_chat: STAFF_CHAT,
            staff_ids: &[555_000_111],
            bot_username: "shopbot",
        }
    }

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/tests/telegram_fixtures/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn run(name: &str) -> Translated {
        translate(&fixture(name), &ctx(), &lookup())
    }

    fn lucia(language: Option<&str>) -> CustomerInfo {
        CustomerInfo {
            key: CustomerKey::new(Channel::Telegram, "111222333"),
            name: "Lucía Gómez (@lucia_g)".into(),
            address: "111222333".into(),
            language_hint: language.map(str::to_string),
        }
    }

    #[test]
    fn every_update_fixture_is_read_by_teloxide_not_the_fallback() {
        let dir = format!("{}/tests/telegram_fixtures", env!("CARGO_MANIFEST_DIR"));
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let Some(stem) = name
                .strip_suffix(".json")
                .filter(|n| !n.starts_with("out_"))
            else {
                continue;
            };
            let update: Update = serde_json::from_str(&fixture(stem).to_string()).unwrap();
            assert!(!matches!(update.kind, UpdateKind::Error(_)), "{name}");
            seen += 1;
        }
        assert!(seen >= 10, "{seen} fixtures");
    }

    #[test]
    fn private_text_is_a_customer_message_with_the_language_hint() {
        let t = run("private_text_es");
        assert_eq!(
            t.inbound,
            Some(Inbound::Message {
                customer: lucia(Some("es")),
                text: "¿A qué hora abren?".into(),
                attachment: None,
            })
        );
        assert_eq!(t.answer_callback, None);
        assert_eq!(update_id(&fixture("private_text_es")), Some(815_000_001));
    }

    #[test]
    fn start_is_the_greeting_event() {
        assert_eq!(
            run("private_start").inbound,
            Some(Inbound::Start {
                customer: lucia(Some("es"))
            })
        );
    }

    #[test]
    fn a_customer_press_is_a_button_answered_and_cleared() {
        let t = run("callback_query");
        assert_eq!(
            t.inbound,
            Some(Inbound::Button {
                customer: lucia(Some("es")),
                payload: "no".into(),
            })
        );
        assert_eq!(t.answer_callback.as_deref(), Some("4382bfdwdsb323b2d9"));
        assert_eq!(t.clear_keyboard, Some((111_222_333, 13)));
    }

    #[test]
    fn a_long_payload_key_is_looked_up() {
        let mut raw = fixture("callback_query");
        raw["callback_query"]["data"] = Value::from("~00000000000000ab");
        let t = translate(&raw, &ctx(), &lookup());
        assert!(
            matches!(&t.inbound, Some(Inbound::Button { payload, .. }) if payload == "intent:a_very_long_intent_id"),
            "{t:?}"
        );
        raw["callback_query"]["data"] = Value::from("~ffffffffffffffff");
        let t = translate(&raw, &ctx(), &lookup());
        assert_eq!(t.inbound, None);
        assert!(t.answer_callback.is_some(), "answered even when unknown");
    }

    #[test]
    fn a_staff_press_in_the_group_is_a_staff_button() {
        let t = run("callback_staff_claim");
        assert_eq!(
            t.inbound,
            Some(Inbound::StaffButton {
                staff: StaffMember {
                    channel: Channel::Telegram,
                    id: "555000222".into(),
                    name: "Marco Rossi".into(),
                },
                payload: "claim:3".into(),
            })
        );
        assert!(t.answer_callback.is_some());
        assert_eq!(t.clear_keyboard, None, "the engine updates the ping itself");
    }

    #[test]
    fn media_become_attachments_with_the_caption_as_text() {
        let t = run("private_photo_caption");
        assert_eq!(
            t.inbound,
            Some(Inbound::Message {
                customer: lucia(Some("es")),
                text: "Llegó así".into(),
                attachment: Some("photo".into()),
            })
        );
        let t = run("private_sticker");
        assert!(
            matches!(&t.inbound, Some(Inbound::Message { text, attachment: Some(a), .. }) if text.is_empty() && a == "sticker 😀"),
            "{t:?}"
        );
        let t = run("private_voice");
        assert!(
            matches!(&t.inbound, Some(Inbound::Message { attachment: Some(a), .. }) if a == "voice message"),
            "{t:?}"
        );
        let t = run("private_document");
        assert!(
            matches!(&t.inbound, Some(Inbound::Message { attachment: Some(a), .. }) if a == "file factura.pdf"),
            "{t:?}"
        );
    }

    #[test]
    fn a_staff_reply_to_a_ping_goes_to_its_ticket() {
        let t = run("staff_reply_to_ping");
        assert_eq!(
            t.inbound,
            Some(Inbound::StaffText {
                staff: StaffMember {
                    channel: Channel::Telegram,
                    id: "555000222".into(),
                    name: "Marco Rossi".into(),
                },
                text: "Hola Lucía, ¿cuál es tu número de pedido?".into(),
                ticket: Some(3),
            })
        );
    }

    #[test]
    fn staff_commands_with_the_bot_name_are_staff_text() {
        let t = run("staff_claim_command");
        assert!(
            matches!(&t.inbound, Some(Inbound::StaffText { text, ticket: None, .. }) if text == "/claim@shopbot 3"),
            "{t:?}"
        );
        let mut raw = fixture("staff_claim_command");
        raw["message"]["text"] = Value::from("/claim@otherbot 3");
        let t = translate(&raw, &ctx(), &lookup());
        assert_eq!(t.inbound, None, "a command for another bot is not ours");
    }

    #[test]
    fn group_chatter_and_other_kinds_are_ignored() {
        for name in ["staff_chatter", "edited_message", "channel_post"] {
            let t = run(name);
            assert_eq!(t.inbound, None, "{name}");
            assert!(t.ignored.is_some(), "{name}");
        }
        let t = run("other_group");
        assert!(t.ignored.as_ref().is_some_and(|i| i.notable), "{t:?}");
    }

    #[test]
    fn a_media_reply_to_a_ping_tells_staff_to_write_text() {
        let mut raw = fixture("staff_reply_to_ping");
        let m = raw["message"].as_object_mut().unwrap();
        m.remove("text");
        m.insert(
            "sticker".into(),
            fixture("private_sticker")["message"]["sticker"].clone(),
        );
        let t = translate(&raw, &ctx(), &lookup());
        assert_eq!(t.inbound, None);
        assert_eq!(t.notice.as_ref().map(|n| n.reply_to), Some(90));
    }

    #[test]
    fn forget_in_private_goes_to_the_engine_as_typed() {
        // The engine recognises /forget and /forget yes (see Inbound::Forget).
        for typed in ["/forget", "/forget yes", "/forget@shopbot"] {
            let mut raw = fixture("private_text_es");
            raw["message"]["text"] = Value::from(typed);
            let t = translate(&raw, &ctx(), &lookup());
            assert_eq!(
                t.inbound,
                Some(Inbound::Message {
                    customer: lucia(Some("es")),
                    text: typed.into(),
                    attachment: None,
                }),
                "{typed}"
            );
        }
    }

    #[test]
    fn commands_in_private_are_staff_only_for_staff_ids() {
        let mut raw = fixture("private_text_es");
        raw["message"]["text"] = Value::from("/resolve 3 listo");
        let t = translate(&raw, &ctx(), &lookup());
        assert!(
            matches!(&t.inbound, Some(Inbound::Message { text, .. }) if text == "/resolve 3 listo"),
            "a customer's command goes to the engine as a message, which refuses it: {t:?}"
        );
        raw["message"]["from"]["id"] = Value::from(555_000_111u64);
        raw["message"]["chat"]["id"] = Value::from(555_000_111u64);
        let t = translate(&raw, &ctx(), &lookup());
        assert!(
            matches!(&t.inbound, Some(Inbound::StaffText { ticket: None, .. })),
            "{t:?}"
        );
    }

    #[test]
    fn an_unreadable_private_message_is_still_a_message() {
        let raw = serde_json::json!({
            "update_id": 9,
            "message": {
                "message_id": 5,
                "from": {"id": 111222333, "is_bot": false, "first_name": "Lucía", "language_code": "es"},
                "chat": {"id": 111222333, "type": "private", "first_name": "Lucía"},
                "date": 1718000000,
                "hologram": {"file_id": "x"}
            }
        });
        let t = translate(&raw, &ctx(), &lookup());
        assert!(
            matches!(
                &t.inbound,
                Some(Inbound::Message {
                    attachment: Some(_),
                    ..
                })
            ),
            "{t:?}"
        );
    }

    #[test]
    fn split_keeps_characters_whole_and_prefers_line_breaks() {
        assert_eq!(split_text("hola", 4096), vec!["hola"]);
        assert_eq!(split_text("  ", 4096), vec!["…"]);
        let text = "ab cd\nef gh";
        assert_eq!(split_text(text, 8), vec!["ab cd", "ef gh"]);
        // Emoji are two UTF-16 units: never cut in half.
        let emoji = "😀".repeat(5);
        let parts = split_text(&emoji, 4);
        assert_eq!(parts, vec!["😀😀", "😀😀", "😀"]);
        let long = "ñ".repeat(5000);
        let parts = split_text(&long, MAX_TEXT_UTF16);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].chars().count(), 4096);
        assert_eq!(parts.concat(), long);
    }

    #[test]
    fn callback_data_fits_in_64_bytes() {
        assert_eq!(callback_data("rate:5"), ("rate:5".to_string(), None));
        let long = format!("intent:{}", "é".repeat(40));
        let (data, remember) = callback_data(&long);
        assert!(data.len() <= MAX_CALLBACK_DATA, "{data}");
        assert_eq!(remember.map(|(_, p)| p), Some(long));
        assert!(callback_data("").1.is_some());
    }

    fn to_json(request: &impl serde::Serialize) -> Value {
        serde_json::to_value(request).unwrap()
    }

    #[test]
    fn rating_keyboard_matches_the_fixture() {
        let buttons: Vec<Button> = (1..=5)
            .map(|n| Button::new(n.to_string(), format!("rate:{n}")))
            .collect();
        let (requests, long) =
            send_requests(111_222_333, "¿Qué tan satisfecho estás?", &buttons, None);
        assert!(long.is_empty());
        assert_eq!(requests.len(), 1);
        assert_eq!(to_json(&requests[0]), fixture("out_rating_keyboard"));
    }

    #[test]
    fn yes_no_buttons_are_one_a_row_and_staff_buttons_side_by_side() {
        let yes_no = [
            Button::new("Sí", "yes"),
            Button::new("No, hablar con una persona", "no"),
        ];
        assert_eq!(rows(&yes_no), vec![1, 1]);
        let staff = [
            Button::new("Claim", "claim:3"),
            Button::new("Resolve", "resolve:3"),
        ];
        assert_eq!(rows(&staff), vec![2]);
        let nps: Vec<Button> = (0..=10)
            .map(|n| Button::new(n.to_string(), format!("rate:{n}")))
            .collect();
        assert_eq!(rows(&nps), vec![6, 5]);
    }

    #[test]
    fn a_staff_message_about_a_ticket_replies_to_its_ping() {
        let (requests, _) = send_requests(STAFF_CHAT, "#3 Lucía: hola", &[], Some(77));
        assert_eq!(to_json(&requests[0]), fixture("out_staff_reply"));
    }

    #[test]
    fn a_long_text_is_sent_in_parts_with_the_keyboard_last() {
        let text = "x".repeat(5000);
        let (requests, _) = send_requests(1, &text, &[Button::new("Sí", "yes")], Some(9));
        assert_eq!(requests.len(), 2);
        assert!(requests[0].reply_markup.is_none());
        assert!(requests[0].reply_parameters.is_some());
        assert!(requests[1].reply_markup.is_some());
        assert!(requests[1].reply_parameters.is_none());
    }

    #[test]
    fn ping_edits_replace_text_and_keyboard() {
        let (edit, _) = edit_request(
            STAFF_CHAT,
            77,
            "🔔 Ticket #3\nStatus: claimed by Marco",
            &[Button::new("Resolve", "resolve:3")],
        );
        let json = to_json(&edit);
        assert_eq!(json["message_id"], 77);
        assert_eq!(json["chat_id"], STAFF_CHAT);
        assert_eq!(
            json["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
            "resolve:3"
        );
        let (edit, _) = edit_request(STAFF_CHAT, 77, "resolved", &[]);
        assert_eq!(
            to_json(&edit)["reply_markup"]["inline_keyboard"],
            serde_json::json!([])
        );
        let clear = to_json(&clear_keyboard_request(5, 6));
        assert_eq!(clear, serde_json::json!({"chat_id": 5, "message_id": 6}));
    }
}

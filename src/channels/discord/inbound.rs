//! Gateway events → engine events, as pure functions over serenity's models.
//!
//! Where a message was written decides who wrote it ([`Place`]): a DM or a
//! support channel is a customer; the staff channel and a ticket's thread are
//! staff (checked against the configured role / user ids). Bots, webhooks and
//! system messages are ignored. Anything that is not text (attachments,
//! stickers, embeds, polls, forwards) is described in `attachment` so the
//! engine never drops it silently.
//!
//! Decisions taken here (see the README's Discord section):
//! - In the staff channel only text starting with `!` or `/` is a command;
//!   other chatter among staff is left alone. A command from someone who is
//!   not staff gets a short notice ("only staff …") and goes nowhere else.
//! - In a ticket thread everything staff write goes to the customer (commands
//!   work too); a non-staff message there gets a notice and is not relayed.
//! - In a support channel, messages from staff (when staff are restricted to a
//!   role or ids) are staff talking in public and are left alone.
//! - Customer buttons are acknowledged by removing them from the message
//!   (they cannot be pressed twice); staff buttons by a deferred update (the
//!   engine's UpdatePing edits the ping).

use serenity::all::{
    CommandInteraction, ComponentInteraction, Member, Message, MessageType, PartialMember, User,
};

use crate::engine::{CustomerInfo, Inbound, StaffMember};
use crate::model::{Channel, CustomerKey};

use super::Settings;

/// Told to someone who is not staff and typed a command in the staff channel.
pub const NOT_STAFF_COMMAND: &str =
    "Only staff can use frontdesk's commands here (ask an admin for the staff role).";
/// Told to someone who is not staff and wrote in a ticket thread.
pub const NOT_STAFF_THREAD: &str =
    "Only staff can answer in ticket threads: this message was not passed on to the customer.";
/// Told to staff who sent only an attachment in a ticket thread.
pub const ATTACHMENT_NOT_RELAYED: &str = "Attachments are not passed on to the customer: write the reply as text (a link to the file works).";
/// Told (privately) to someone pressing a staff button who is not staff.
pub const NOT_STAFF_BUTTON: &str = "Only staff can use these buttons.";
/// Told (privately) to someone pressing another customer's buttons in a support channel.
pub const NOT_YOUR_BUTTONS: &str = "These buttons belong to someone else's conversation: write your own question here, or send me a direct message.";

/// The slash command a customer deletes their data with (registered at connect).
pub const FORGET_COMMAND: &str = "forget";
/// How Discord describes [`FORGET_COMMAND`] in its command list.
pub const FORGET_DESCRIPTION: &str =
    "Delete your conversations, ratings and name from this shop's support bot (asks first)";
/// The private acknowledgement of `/forget`; the engine's question follows as a message.
pub const FORGET_ACK: &str = "Let me check what we keep about you…";
/// Told privately when `/forget` is used outside a DM or support channel.
pub const FORGET_ELSEWHERE: &str =
    "Use /forget in a direct message with me or in a support channel.";

/// The language part of a Discord locale (`es-ES` → `es`), lower-case.
fn locale_language(locale: &str) -> String {
    locale
        .trim()
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// [`FORGET_ACK`] in the user's Discord language (Spanish, Italian, else
/// English): the ack comes from the adapter before the engine, which
/// speaks the customer's language from then on.
pub fn forget_ack(locale: &str) -> &'static str {
    match locale_language(locale).as_str() {
        "es" => "Déjame ver qué guardamos sobre ti…",
        "it" => "Vediamo cosa conserviamo su di te…",
        _ => FORGET_ACK,
    }
}

/// [`FORGET_ELSEWHERE`] in the user's Discord language (Spanish, Italian,
/// else English).
pub fn forget_elsewhere(locale: &str) -> &'static str {
    match locale_language(locale).as_str() {
        "es" => "Usa /forget en un mensaje directo conmigo o en un canal de soporte.",
        "it" => "Usa /forget in un messaggio diretto con me o in un canale di assistenza.",
        _ => FORGET_ELSEWHERE,
    }
}

/// Where an event happened, as far as frontdesk is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A direct message with the bot.
    Direct,
    /// One of the configured support channels.
    Support,
    /// The staff channel.
    Staff,
    /// The thread of this ticket (in the staff channel).
    Ticket(u64),
    /// Anywhere else: not frontdesk's business.
    Elsewhere,
}

/// What the adapter does with an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Hand it to the engine under this event id.
    Engine {
        /// `dc:msg:<message id>` or `dc:int:<interaction id>`.
        event_id: String,
        /// The engine event.
        inbound: Inbound,
    },
    /// Answer with a short notice in the channel, as a reply (not through the engine).
    Notice {
        /// The channel.
        channel: u64,
        /// The message replied to.
        reply_to: u64,
        /// What to say.
        text: String,
    },
    /// Nothing to do; why, for the debug log.
    Ignore(&'static str),
}

/// How a button press is acknowledged (Discord wants an answer within 3 s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// Update the pressed message: its buttons are removed.
    RemoveButtons,
    /// Acknowledge without changing anything now (deferred update).
    Defer,
    /// Answer privately to the presser only.
    Ephemeral(String),
}

/// Whether [`place`] needs to know the ticket of this channel (a guild
/// channel that is neither the staff channel nor a support channel may be a
/// ticket thread).
pub fn needs_thread_lookup(settings: &Settings, channel: u64, in_guild: bool) -> bool {
    in_guild && channel != settings.staff_channel && !settings.support_channels.contains(&channel)
}

/// Where `channel` is; `thread_ticket` is the ticket whose thread it is, if any.
pub fn place(
    settings: &Settings,
    channel: u64,
    in_guild: bool,
    thread_ticket: Option<u64>,
) -> Place {
    if !in_guild {
        Place::Direct
    } else if channel == settings.staff_channel {
        Place::Staff
    } else if settings.support_channels.contains(&channel) {
        Place::Support
    } else if let Some(ticket) = thread_ticket {
        Place::Ticket(ticket)
    } else {
        Place::Elsewhere
    }
}

/// The event id of a message.
pub fn message_event_id(id: u64) -> String {
    format!("dc:msg:{id}")
}

/// The event id of an interaction.
pub fn interaction_event_id(id: u64) -> String {
    format!("dc:int:{id}")
}

/// A MESSAGE_CREATE, translated.
pub fn message(msg: &Message, settings: &Settings, place: Place) -> Decision {
    if msg.author.bot || msg.author.system || msg.webhook_id.is_some() {
        return Decision::Ignore("a bot, a webhook or Discord itself wrote it");
    }
    if !matches!(msg.kind, MessageType::Regular | MessageType::InlineReply) {
        return Decision::Ignore("a system message");
    }
    let roles = partial_roles(msg.member.as_deref());
    let user = msg.author.id.get();
    let text = msg.content.trim().to_string();
    match place {
        Place::Direct | Place::Support => {
            if place == Place::Support && settings.restricted() && settings.is_staff(user, &roles) {
                return Decision::Ignore("staff writing in a support channel");
            }
            let name = msg
                .member
                .as_deref()
                .and_then(|m| m.nick.clone())
                .unwrap_or_else(|| display_name(&msg.author));
            Decision::Engine {
                event_id: message_event_id(msg.id.get()),
                inbound: Inbound::Message {
                    customer: CustomerInfo {
                        key: CustomerKey::new(Channel::Discord, user.to_string()),
                        name,
                        address: msg.channel_id.get().to_string(),
                        // A message carries no user locale; the text decides.
                        language_hint: None,
                    },
                    text: forwarded_text(msg).unwrap_or(text),
                    attachment: attachment_summary(msg),
                },
            }
        }
        Place::Staff => {
            if !(text.starts_with('!') || text.starts_with('/')) {
                return Decision::Ignore("staff chatting in the staff channel");
            }
            if !settings.is_staff(user, &roles) {
                return notice(msg, NOT_STAFF_COMMAND);
            }
            Decision::Engine {
                event_id: message_event_id(msg.id.get()),
                inbound: Inbound::StaffText {
                    staff: staff_member(
                        &msg.author,
                        msg.member.as_deref().and_then(|m| m.nick.clone()),
                    ),
                    text,
                    ticket: None,
                },
            }
        }
        Place::Ticket(ticket) => {
            if !settings.is_staff(user, &roles) {
                return notice(msg, NOT_STAFF_THREAD);
            }
            if text.is_empty() {
                return if attachment_summary(msg).is_some() {
                    notice(msg, ATTACHMENT_NOT_RELAYED)
                } else {
                    Decision::Ignore("an empty staff message")
                };
            }
            Decision::Engine {
                event_id: message_event_id(msg.id.get()),
                inbound: Inbound::StaffText {
                    staff: staff_member(
                        &msg.author,
                        msg.member.as_deref().and_then(|m| m.nick.clone()),
                    ),
                    text,
                    ticket: Some(ticket),
                },
            }
        }
        Place::Elsewhere => Decision::Ignore("not a frontdesk channel"),
    }
}

/// An INTERACTION_CREATE for a message component, translated: how to
/// acknowledge it, and what to do. `payload` is the button's payload (its
/// `custom_id`, or the long payload stored behind a shortened one).
pub fn interaction(
    press: &ComponentInteraction,
    settings: &Settings,
    place: Place,
    payload: String,
) -> (Ack, Decision) {
    let user = &press.user;
    if user.bot {
        return (Ack::Defer, Decision::Ignore("a bot pressed a button"));
    }
    let event_id = interaction_event_id(press.id.get());
    let roles = member_roles(press.member.as_ref());
    match place {
        Place::Direct | Place::Support => {
            if place == Place::Support
                && let Some(owner) = leading_mention(&press.message.content)
                && owner != user.id.get()
            {
                return (
                    Ack::Ephemeral(NOT_YOUR_BUTTONS.into()),
                    Decision::Ignore("another customer's buttons"),
                );
            }
            let name = press
                .member
                .as_ref()
                .and_then(|m| m.nick.clone())
                .unwrap_or_else(|| display_name(user));
            let locale = press.locale.trim();
            (
                Ack::RemoveButtons,
                Decision::Engine {
                    event_id,
                    inbound: Inbound::Button {
                        customer: CustomerInfo {
                            key: CustomerKey::new(Channel::Discord, user.id.get().to_string()),
                            name,
                            address: press.channel_id.get().to_string(),
                            language_hint: (!locale.is_empty()).then(|| locale.to_string()),
                        },
                        payload,
                    },
                },
            )
        }
        Place::Staff | Place::Ticket(_) => {
            if !settings.is_staff(user.id.get(), &roles) {
                return (
                    Ack::Ephemeral(NOT_STAFF_BUTTON.into()),
                    Decision::Ignore("not staff"),
                );
            }
            (
                Ack::Defer,
                Decision::Engine {
                    event_id,
                    inbound: Inbound::StaffButton {
                        staff: staff_member(
                            user,
                            press.member.as_ref().and_then(|m| m.nick.clone()),
                        ),
                        payload,
                    },
                },
            )
        }
        Place::Elsewhere => (Ack::Defer, Decision::Ignore("not a frontdesk channel")),
    }
}

/// An INTERACTION_CREATE for a slash command, translated: `/forget` from a
/// customer becomes [`Inbound::Forget`] (not yet confirmed: the engine asks).
pub fn command(cmd: &CommandInteraction, place: Place) -> (Ack, Decision) {
    let user = &cmd.user;
    if user.bot {
        return (Ack::Defer, Decision::Ignore("a bot used a command"));
    }
    if cmd.data.name != FORGET_COMMAND {
        return (
            Ack::Ephemeral(format!("I don't know the command /{}.", cmd.data.name)),
            Decision::Ignore("an unknown slash command"),
        );
    }
    match place {
        Place::Direct | Place::Support => {
            let name = cmd
                .member
                .as_ref()
                .and_then(|m| m.nick.clone())
                .unwrap_or_else(|| display_name(user));
            let locale = cmd.locale.trim();
            (
                Ack::Ephemeral(forget_ack(locale).into()),
                Decision::Engine {
                    event_id: interaction_event_id(cmd.id.get()),
                    inbound: Inbound::Forget {
                        customer: CustomerInfo {
                            key: CustomerKey::new(Channel::Discord, user.id.get().to_string()),
                            name,
                            address: cmd.channel_id.get().to_string(),
                            language_hint: (!locale.is_empty()).then(|| locale.to_string()),
                        },
                        confirmed: false,
                    },
                },
            )
        }
        _ => (
            Ack::Ephemeral(forget_elsewhere(&cmd.locale).into()),
            Decision::Ignore("/forget outside a customer channel"),
        ),
    }
}

/// A short description of everything in a message that is not its text:
/// "photo", "file invoice.pdf", "sticker Wave", "embed", "poll",
/// "forwarded message"; None for plain text.
pub fn attachment_summary(msg: &Message) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for a in &msg.attachments {
        let kind = a.content_type.as_deref().unwrap_or_default();
        parts.push(if a.duration_secs.is_some() {
            "voice message".to_string()
        } else if kind.starts_with("image/") {
            "photo".to_string()
        } else if kind.starts_with("video/") {
            format!("video {}", a.filename)
        } else if kind.starts_with("audio/") {
            format!("audio {}", a.filename)
        } else {
            format!("file {}", a.filename)
        });
    }
    for s in &msg.sticker_items {
        parts.push(format!("sticker {}", s.name));
    }
    if msg.poll.is_some() {
        parts.push("poll".into());
    }
    if !msg.message_snapshots.is_empty() {
        parts.push("forwarded message".into());
    }
    // Link previews come with text; an embed alone is content of its own.
    if msg.content.trim().is_empty() && !msg.embeds.is_empty() {
        parts.push(match msg.embeds[0].title.as_deref() {
            Some(title) if !title.trim().is_empty() => format!("embed \"{}\"", title.trim()),
            _ => "embed".into(),
        });
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The text of a forwarded message, when the message itself has none.
fn forwarded_text(msg: &Message) -> Option<String> {
    if !msg.content.trim().is_empty() {
        return None;
    }
    msg.message_snapshots
        .iter()
        .map(|s| s.content.trim())
        .find(|t| !t.is_empty())
        .map(str::to_string)
}

fn notice(msg: &Message, text: &str) -> Decision {
    Decision::Notice {
        channel: msg.channel_id.get(),
        reply_to: msg.id.get(),
        text: text.to_string(),
    }
}

fn staff_member(user: &User, nick: Option<String>) -> StaffMember {
    StaffMember {
        channel: Channel::Discord,
        id: user.id.get().to_string(),
        name: nick
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| display_name(user)),
    }
}

fn display_name(user: &User) -> String {
    user.global_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| user.name.clone())
}

fn partial_roles(member: Option<&PartialMember>) -> Vec<u64> {
    member
        .map(|m| m.roles.iter().map(|r| r.get()).collect())
        .unwrap_or_default()
}

fn member_roles(member: Option<&Member>) -> Vec<u64> {
    member
        .map(|m| m.roles.iter().map(|r| r.get()).collect())
        .unwrap_or_default()
}

/// The user a bot message starts by mentioning (`<@123> …` or `<@!123> …`).
pub fn leading_mention(content: &str) -> Option<u64> {
    let rest = content.trim_start().strip_prefix("<@")?;
    let rest = rest.strip_prefix('!').unwrap_or(rest);
    let end = rest.find('>')?;
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serenity::all::Interaction;

    const STAFF_ROLE: u64 = 1180000000000000300;
    const SUPPORT: u64 = 1180000000000000100;
    const STAFF: u64 = 1180000000000000200;
    const THREAD: u64 = 1350051000000000001;

    fn settings(restricted: bool) -> Settings {
        Settings {
            staff_channel: STAFF,
            support_channels: vec![SUPPORT],
            staff_role: restricted.then_some(STAFF_ROLE),
            staff_ids: Vec::new(),
        }
    }

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/discord_fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn msg(name: &str) -> Message {
        serde_json::from_str(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn press(name: &str) -> ComponentInteraction {
        match serde_json::from_str::<Interaction>(&fixture(name)) {
            Ok(Interaction::Component(c)) => c,
            Ok(other) => panic!("{name}: not a component interaction: {:?}", other.kind()),
            Err(e) => panic!("{name}: {e}"),
        }
    }

    fn placed(s: &Settings, m: &Message, ticket: Option<u64>) -> Place {
        place(s, m.channel_id.get(), m.guild_id.is_some(), ticket)
    }

    #[test]
    fn dm_is_a_customer_message_answered_in_the_dm() {
        let s = settings(true);
        let m = msg("message_create_dm.json");
        assert_eq!(placed(&s, &m, None), Place::Direct);
        assert_eq!(
            message(&m, &s, Place::Direct),
            Decision::Engine {
                event_id: "dc:msg:1350047323398684722".into(),
                inbound: Inbound::Message {
                    customer: CustomerInfo {
                        key: CustomerKey::new(Channel::Discord, "412345678901234567"),
                        name: "María G.".into(),
                        address: "1239001122334455667".into(),
                        language_hint: None,
                    },
                    text: "What time do you open on Saturday?".into(),
                    attachment: None,
                },
            }
        );
    }

    #[test]
    fn support_channel_message_is_a_customer_with_the_nick() {
        let s = settings(true);
        let m = msg("message_create_support.json");
        assert!(!needs_thread_lookup(&s, m.channel_id.get(), true));
        assert_eq!(placed(&s, &m, None), Place::Support);
        let Decision::Engine { event_id, inbound } = message(&m, &s, Place::Support) else {
            panic!("not for the engine");
        };
        assert_eq!(event_id, "dc:msg:1350048367343665223");
        assert_eq!(
            inbound,
            Inbound::Message {
                customer: CustomerInfo {
                    key: CustomerKey::new(Channel::Discord, "523456789012345678"),
                    name: "Giulia".into(),
                    address: SUPPORT.to_string(),
                    language_hint: None,
                },
                text: "Quanto costa la spedizione in Italia?".into(),
                attachment: None,
            }
        );
    }

    #[test]
    fn non_text_is_described_never_dropped() {
        let s = settings(true);
        let photo = msg("message_create_dm_photo.json");
        let Decision::Engine {
            inbound: Inbound::Message {
                text, attachment, ..
            },
            ..
        } = message(&photo, &s, Place::Direct)
        else {
            panic!("dropped");
        };
        assert_eq!(text, "");
        assert_eq!(attachment.as_deref(), Some("photo, file invoice-2291.pdf"));
        let sticker = msg("message_create_support_sticker.json");
        let Decision::Engine {
            inbound: Inbound::Message { attachment, .. },
            ..
        } = message(&sticker, &s, Place::Support)
        else {
            panic!("dropped");
        };
        assert_eq!(attachment.as_deref(), Some("sticker Wave"));
    }

    #[test]
    fn bots_webhooks_and_system_messages_are_ignored() {
        let s = settings(true);
        let mut m = msg("message_create_dm.json");
        m.author.bot = true;
        assert!(matches!(
            message(&m, &s, Place::Direct),
            Decision::Ignore(_)
        ));
        let mut m = msg("message_create_support.json");
        m.kind = MessageType::PinsAdd;
        assert!(matches!(
            message(&m, &s, Place::Support),
            Decision::Ignore(_)
        ));
        let m = msg("message_create_support.json");
        assert!(matches!(
            message(&m, &s, Place::Elsewhere),
            Decision::Ignore(_)
        ));
    }

    #[test]
    fn staff_command_in_the_staff_channel() {
        let s = settings(true);
        let m = msg("message_create_staff_command.json");
        assert_eq!(placed(&s, &m, None), Place::Staff);
        assert_eq!(
            message(&m, &s, Place::Staff),
            Decision::Engine {
                event_id: "dc:msg:1350051964235956314".into(),
                inbound: Inbound::StaffText {
                    staff: StaffMember {
                        channel: Channel::Discord,
                        id: "298765432109876543".into(),
                        name: "Ana (support)".into(),
                    },
                    text: "!resolve 1 Refund sent".into(),
                    ticket: None,
                },
            }
        );
        // Chatter is left alone; someone without the role is refused.
        let mut chat = m.clone();
        chat.content = "coffee anyone?".into();
        assert!(matches!(
            message(&chat, &s, Place::Staff),
            Decision::Ignore(_)
        ));
        let mut outsider = m.clone();
        outsider.member.as_mut().unwrap().roles.clear();
        assert_eq!(
            message(&outsider, &s, Place::Staff),
            Decision::Notice {
                channel: STAFF,
                reply_to: 1350051964235956314,
                text: NOT_STAFF_COMMAND.into(),
            }
        );
        // Without a role or ids configured, the channel's permissions decide.
        assert!(matches!(
            message(&outsider, &settings(false), Place::Staff),
            Decision::Engine { .. }
        ));
    }

    #[test]
    fn staff_text_in_a_ticket_thread_carries_the_ticket() {
        let s = settings(true);
        let m = msg("message_create_thread.json");
        assert!(needs_thread_lookup(&s, THREAD, true));
        assert_eq!(placed(&s, &m, Some(1)), Place::Ticket(1));
        assert_eq!(placed(&s, &m, None), Place::Elsewhere);
        let Decision::Engine { inbound, .. } = message(&m, &s, Place::Ticket(1)) else {
            panic!("not for the engine");
        };
        assert_eq!(
            inbound,
            Inbound::StaffText {
                staff: StaffMember {
                    channel: Channel::Discord,
                    id: "298765432109876543".into(),
                    name: "Ana (support)".into(),
                },
                text: "Hi María! Which order is it?".into(),
                ticket: Some(1),
            }
        );
        let mut outsider = m.clone();
        outsider.member.as_mut().unwrap().roles.clear();
        assert!(matches!(
            message(&outsider, &s, Place::Ticket(1)),
            Decision::Notice { text, .. } if text == NOT_STAFF_THREAD
        ));
    }

    #[test]
    fn staff_in_a_support_channel_are_left_alone() {
        let s = settings(true);
        let mut m = msg("message_create_support.json");
        m.member.as_mut().unwrap().roles.push(STAFF_ROLE.into());
        assert!(matches!(
            message(&m, &s, Place::Support),
            Decision::Ignore(_)
        ));
    }

    #[test]
    fn customer_commands_in_a_dm_go_to_the_engine_as_customer_text() {
        let s = settings(true);
        let mut m = msg("message_create_dm.json");
        m.content = "!claim 1".into();
        assert!(matches!(
            message(&m, &s, Place::Direct),
            Decision::Engine { inbound: Inbound::Message { text, .. }, .. } if text == "!claim 1"
        ));
    }

    #[test]
    fn customer_button_with_locale_removes_the_buttons() {
        let s = settings(true);
        let p = press("interaction_create_button_dm.json");
        let where_ = place(&s, p.channel_id.get(), p.guild_id.is_some(), None);
        assert_eq!(where_, Place::Direct);
        let (ack, decision) = interaction(&p, &s, where_, p.data.custom_id.clone());
        assert_eq!(ack, Ack::RemoveButtons);
        assert_eq!(
            decision,
            Decision::Engine {
                event_id: "dc:int:1350048000000000001".into(),
                inbound: Inbound::Button {
                    customer: CustomerInfo {
                        key: CustomerKey::new(Channel::Discord, "412345678901234567"),
                        name: "María G.".into(),
                        address: "1239001122334455667".into(),
                        language_hint: Some("es-ES".into()),
                    },
                    payload: "no".into(),
                },
            }
        );
    }

    #[test]
    fn the_forget_acks_speak_the_users_discord_language() {
        assert_eq!(forget_ack("es-ES"), "Déjame ver qué guardamos sobre ti…");
        assert_eq!(forget_ack("es-419"), forget_ack("ES"));
        assert!(forget_ack("it").starts_with("Vediamo"));
        assert!(forget_elsewhere("it").contains("canale di assistenza"));
        assert!(forget_elsewhere(" es_ES ").contains("canal de soporte"));
        for other in ["", "en-US", "en-GB", "de", "zh-CN", "-", "\u{0}es", "ésé"] {
            assert_eq!(forget_ack(other), FORGET_ACK, "{other:?}");
            assert_eq!(forget_elsewhere(other), FORGET_ELSEWHERE, "{other:?}");
        }
    }

    #[test]
    fn staff_button_is_deferred_and_checked() {
        let s = settings(true);
        let p = press("interaction_create_button_staff.json");
        let where_ = place(&s, p.channel_id.get(), p.guild_id.is_some(), None);
        assert_eq!(where_, Place::Staff);
        let (ack, decision) = interaction(&p, &s, where_, p.data.custom_id.clone());
        assert_eq!(ack, Ack::Defer);
        assert_eq!(
            decision,
            Decision::Engine {
                event_id: "dc:int:1350051200000000002".into(),
                inbound: Inbound::StaffButton {
                    staff: StaffMember {
                        channel: Channel::Discord,
                        id: "298765432109876543".into(),
                        name: "Ana (support)".into(),
                    },
                    payload: "claim:1".into(),
                },
            }
        );
        let mut outsider = p.clone();
        outsider.member.as_mut().unwrap().roles.clear();
        let (ack, decision) = interaction(&outsider, &s, where_, "claim:1".into());
        assert_eq!(ack, Ack::Ephemeral(NOT_STAFF_BUTTON.into()));
        assert!(matches!(decision, Decision::Ignore(_)));
    }

    #[test]
    fn someone_elses_buttons_in_a_support_channel() {
        let s = settings(true);
        let mut p = press("interaction_create_button_dm.json");
        p.message.content = "<@999> Did that answer your question?".into();
        let (ack, decision) = interaction(&p, &s, Place::Support, "yes".into());
        assert_eq!(ack, Ack::Ephemeral(NOT_YOUR_BUTTONS.into()));
        assert!(matches!(decision, Decision::Ignore(_)));
        p.message.content = "<@412345678901234567> Did that answer your question?".into();
        let (ack, _) = interaction(&p, &s, Place::Support, "yes".into());
        assert_eq!(ack, Ack::RemoveButtons);
    }

    #[test]
    fn mentions_at_the_start() {
        assert_eq!(leading_mention("<@123> hi"), Some(123));
        assert_eq!(leading_mention("<@!123> hi"), Some(123));
        assert_eq!(leading_mention("hi <@123>"), None);
        assert_eq!(leading_mention("<@&5> role"), None);
    }
}

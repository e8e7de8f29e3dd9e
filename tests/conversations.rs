//! Conversation scripts: every `tests/conversations/*.conv` file is a
//! conversation with the demo intents, run against the real engine and a sled
//! store in a temporary directory, with time controlled by the script.
//!
//! Script lines (blank lines and `#` comments are ignored):
//!
//! - `config: <toml line>`: a line of frontdesk.toml (before the first step).
//! - `customer: <text>` / `customer(<id>): <text>`: the customer writes (`\n` and `\xNN` escapes allowed).
//! - `attach: <what>`: the customer sends a photo/file described by `what`.
//! - `start:`: the customer opens the chat (/start); `hint: <lang>` sets the platform's language hint.
//! - `press: <label>`: the customer presses the button with that label (from the last buttons shown).
//! - `press-payload: <payload>`: the customer presses a button with a raw payload (stale or forged buttons).
//! - `staff: <text>`: staff type a command; `staff-in(<ticket>): <text>`: staff write in a ticket's context.
//! - `staff-press: <payload>`: staff press a ping button (`claim:1`).
//! - `staff-as(<name>): <text>`: another member of staff (id `staff-<name>`) types a command.
//! - `advance: <duration>`: time passes (`30m`, `2h`); every step also advances one second.
//! - `tick:`: the timer fires (reminders that fell due go out).
//! - `wait: <duration>`: time passes, then the timer fires (`advance` + `tick`).
//! - `at: <instant>`: the clock jumps to an RFC 3339 instant (forward only),
//!   e.g. `at: 2026-01-10T17:00:00Z`. Scripts start on Monday 2026-01-05 10:00 UTC.
//! - `restart:`: the engine is dropped and rebuilt on the same data directory.
//! - `repeat-event: <id>`: the next step carries this event id (a second time, it must do nothing).
//!
//! Expectations follow a step and are checked against what that step produced:
//!
//! - `> bot: <substring>`: the next message to the customer contains it. Every
//!   customer message must be expected, in order: an unexpected one fails.
//! - `> buttons: A | B`: that message's buttons, exactly.
//! - `> staff: <substring>`: some staff-side output (ping, update, note) contains it.
//! - `> ping: #N`: a new staff ping for ticket N was sent.
//! - `> no staff`: nothing staff-side.
//! - `> nothing`: no output at all.
//! - `> check: ticket N <field> = <json>`: a field of ticket N as stored (`status`, `assignee`, …).
//! - `> check: report <key> = <json>`: a key of `frontdesk report --json`.
//! - `> check: customer <field> = <json>`: a field of the (default) customer's record.
//! - `> check: clock N first_response|resolution = <json>`: where a target of
//!   ticket N stands now (`"running"`, `"met"`, `"missed"`).
//! - `> check: rating <conversation> <field> = <json>`: a field of a stored rating.
//! - `> check: customer exists = true|false`: whether the (default) customer is stored.
//! - `> check: disk contains <text> = true|false`: whether any file in the data
//!   directory holds `<text>` anywhere in its bytes (what a forget must leave behind).
//! - `> check: conversation N <field> = <json>`: a field of a stored conversation
//!   (`transcript` is the number of lines).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use frontdesk::config::{Config, parse_duration};
use frontdesk::engine::{CustomerInfo, Engine, EngineSettings, Inbound, Knowledge, StaffMember};
use frontdesk::intents::IntentSet;
use frontdesk::model::{Action, Button, Channel, CustomerKey, Outgoing};
use frontdesk::report::Report;
use frontdesk::sla::ticket_clock;
use frontdesk::store::{SledStore, Store};
use jiff::Timestamp;

struct Runner {
    name: String,
    data: tempfile::TempDir,
    config: Config,
    engine: Option<Engine>,
    now: Timestamp,
    hint: Option<String>,
    event_id: Option<String>,
    last_buttons: Vec<Button>,
    outputs: Vec<Outgoing>,
    cursor: usize,
    line_no: usize,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                let byte = u32::from_str_radix(&hex, 16).expect("\\xNN escape");
                out.push(char::from_u32(byte).expect("valid char"));
            }
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Generated inputs: `{repeat:N:text}` expands to text repeated N times.
fn expand(text: &str) -> String {
    let mut out = unescape(text);
    while let Some(start) = out.find("{repeat:") {
        let end = start + out[start..].find('}').expect("closing brace");
        let spec = &out[start + 8..end];
        let (n, piece) = spec.split_once(':').expect("{repeat:N:text}");
        let n: usize = n.parse().expect("repeat count");
        out = format!("{}{}{}", &out[..start], piece.repeat(n), &out[end + 1..]);
    }
    out
}

/// The thresholds the bot calibrates for the demo intents under `config`:
/// measured once (deterministic, and the same for every script, which do not
/// change `[matcher]`), then given to each script's matcher as fixed ones.
fn thresholds(config: &Config) -> frontdesk::nlu::MatcherConfig {
    static CALIBRATED: std::sync::OnceLock<frontdesk::nlu::MatcherConfig> =
        std::sync::OnceLock::new();
    *CALIBRATED.get_or_init(|| {
        let intents = IntentSet::load_dir(&repo().join("intents"), &config.languages).unwrap();
        let c = frontdesk::nlu::calibrate::calibrate(
            &intents.training_data(),
            &config.matcher,
            &frontdesk::nlu::Matcher::build,
        );
        eprintln!("calibrated thresholds: {}", c.describe());
        c.config
    })
}

impl Runner {
    fn fail(&self, message: impl AsRef<str>) -> ! {
        let shown: Vec<String> = self.outputs.iter().map(|o| describe(&o.action)).collect();
        panic!(
            "{}:{}: {}\n--- output of the step ---\n{}",
            self.name,
            self.line_no,
            message.as_ref(),
            shown.join("\n")
        );
    }

    fn engine(&mut self) -> &Engine {
        if self.engine.is_none() {
            let intents =
                IntentSet::load_dir(&repo().join("intents"), &self.config.languages).unwrap();
            let knowledge = Knowledge::build(intents, thresholds(&self.config));
            let store: Arc<dyn Store> = Arc::new(SledStore::open(self.data.path()).unwrap());
            self.engine = Some(Engine::new(
                store,
                knowledge,
                EngineSettings::from_config(&self.config),
            ));
        }
        self.engine.as_ref().unwrap()
    }

    fn customer(&self, id: &str) -> CustomerInfo {
        CustomerInfo {
            key: CustomerKey::new(Channel::Console, id),
            name: format!("Customer {id}"),
            address: String::new(),
            language_hint: self.hint.clone(),
        }
    }

    fn staff() -> StaffMember {
        StaffMember {
            channel: Channel::Console,
            id: "staff-1".into(),
            name: "Ana".into(),
        }
    }

    fn staff_named(name: &str) -> StaffMember {
        StaffMember {
            channel: Channel::Console,
            id: format!("staff-{name}"),
            name: name.into(),
        }
    }

    fn step(&mut self, inbound: Inbound) {
        self.check_all_customer_messages_expected();
        self.now = self
            .now
            .checked_add(jiff::SignedDuration::from_secs(1))
            .unwrap();
        let id = self.event_id.take();
        let now = self.now;
        let out = self.engine().handle(id.as_deref(), inbound, now).unwrap();
        for o in &out {
            self.engine().store().acknowledge(o.id).unwrap();
            if let Action::ToCustomer { buttons, .. } = &o.action
                && !buttons.is_empty()
            {
                self.last_buttons = buttons.clone();
            }
        }
        self.outputs = out;
        self.cursor = 0;
    }

    fn check_all_customer_messages_expected(&self) {
        if let Some(extra) = self.outputs[self.cursor.min(self.outputs.len())..]
            .iter()
            .find(|o| matches!(o.action, Action::ToCustomer { .. }))
        {
            self.fail(format!(
                "a message to the customer was not expected: {}",
                describe(&extra.action)
            ));
        }
    }

    fn expect(&mut self, what: &str) {
        let (kind, arg) = what.split_once(':').unwrap_or((what, ""));
        let arg = arg.trim();
        match kind.trim() {
            "bot" => {
                let arg = unescape(arg);
                let next = self.outputs[self.cursor..]
                    .iter()
                    .position(|o| matches!(o.action, Action::ToCustomer { .. }));
                let Some(pos) = next else {
                    self.fail(format!("expected a customer message containing {arg:?}"));
                };
                let index = self.cursor + pos;
                let Action::ToCustomer { text, .. } = &self.outputs[index].action else {
                    unreachable!()
                };
                if !text.contains(&arg) {
                    self.fail(format!(
                        "the next customer message does not contain {arg:?}: {text:?}"
                    ));
                }
                self.cursor = index + 1;
            }
            "buttons" => {
                let wanted: Vec<String> = if arg.is_empty() {
                    Vec::new()
                } else {
                    arg.split('|').map(|s| s.trim().to_string()).collect()
                };
                let last = self.outputs[..self.cursor]
                    .iter()
                    .rev()
                    .find_map(|o| match &o.action {
                        Action::ToCustomer { buttons, .. } => Some(buttons),
                        _ => None,
                    });
                let Some(buttons) = last else {
                    self.fail("`> buttons` must follow a `> bot` expectation");
                };
                let labels: Vec<String> = buttons.iter().map(|b| b.label.clone()).collect();
                if labels != wanted {
                    self.fail(format!("buttons {labels:?}, expected {wanted:?}"));
                }
            }
            "staff" => {
                let arg = unescape(arg);
                let found = self.outputs.iter().any(|o| match &o.action {
                    Action::ToStaff { text, .. }
                    | Action::PingStaff { text, .. }
                    | Action::UpdatePing { text, .. } => text.contains(&arg),
                    Action::ToCustomer { .. } => false,
                });
                if !found {
                    self.fail(format!("no staff-side output contains {arg:?}"));
                }
            }
            "ping" => {
                let n: u64 = arg.trim_start_matches('#').parse().expect("ping: #N");
                if !self
                    .outputs
                    .iter()
                    .any(|o| matches!(o.action, Action::PingStaff { ticket, .. } if ticket == n))
                {
                    self.fail(format!("no staff ping for ticket #{n}"));
                }
            }
            "no staff" => {
                if let Some(o) = self
                    .outputs
                    .iter()
                    .find(|o| !matches!(o.action, Action::ToCustomer { .. }))
                {
                    self.fail(format!("unexpected staff output: {}", describe(&o.action)));
                }
            }
            "nothing" => {
                if !self.outputs.is_empty() {
                    self.fail("expected no output");
                }
            }
            "check" => self.check(arg),
            other => self.fail(format!("unknown expectation `{other}`")),
        }
    }

    fn check(&mut self, spec: &str) {
        let (lhs, rhs) = spec.split_once('=').expect("check: … = value");
        let expected: serde_json::Value = serde_json::from_str(rhs.trim())
            .unwrap_or_else(|_| serde_json::Value::String(rhs.trim().to_string()));
        let words: Vec<&str> = lhs.split_whitespace().collect();
        let store = self.engine().store().clone();
        let actual = match words.as_slice() {
            ["ticket", n, field] => {
                let ticket = store.ticket(n.parse().unwrap()).unwrap();
                let Some(ticket) = ticket else {
                    self.fail(format!("no ticket #{n}"));
                };
                let value = serde_json::to_value(ticket).unwrap();
                match *field {
                    "events" => serde_json::Value::from(
                        value["events"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|e| e["kind"].as_str().unwrap().to_string())
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                    f => value[f].clone(),
                }
            }
            ["clock", n, which] => {
                let Some(ticket) = store.ticket(n.parse().unwrap()).unwrap() else {
                    self.fail(format!("no ticket #{n}"));
                };
                let now = self.now;
                let settings = self.engine().settings();
                let clock = ticket_clock(&ticket, &settings.targets, &settings.hours, now);
                let mark = match *which {
                    "first_response" => clock.first_response,
                    "resolution" => clock.resolution,
                    other => self.fail(format!("unknown clock `{other}`")),
                };
                serde_json::Value::from(mark.as_str())
            }
            ["rating", conversation, field] => {
                let rating = store.rating(conversation.parse().unwrap()).unwrap();
                let Some(rating) = rating else {
                    self.fail(format!("no rating of conversation {conversation}"));
                };
                serde_json::to_value(rating).unwrap()[*field].clone()
            }
            ["report", key] => {
                let report =
                    serde_json::to_value(Report::compute(store.as_ref()).unwrap()).unwrap();
                report[*key].clone()
            }
            ["customer", "exists"] => serde_json::Value::Bool(
                store
                    .customer(&CustomerKey::new(Channel::Console, "c1"))
                    .unwrap()
                    .is_some(),
            ),
            ["disk", "contains", words @ ..] if !words.is_empty() => {
                let needle = words.join(" ");
                serde_json::Value::Bool(common::dir_contains(self.data.path(), needle.as_bytes()))
            }
            ["conversation", n, field] => {
                let Some(c) = store.conversation(n.parse().unwrap()).unwrap() else {
                    self.fail(format!("no conversation {n}"));
                };
                match *field {
                    "transcript" => serde_json::Value::from(c.transcript.len()),
                    f => serde_json::to_value(c).unwrap()[f].clone(),
                }
            }
            ["customer", field] => {
                let customer = store
                    .customer(&CustomerKey::new(Channel::Console, "c1"))
                    .unwrap()
                    .expect("customer c1");
                let value = serde_json::to_value(customer).unwrap();
                match *field {
                    "state" => value["state"]["state"].clone(),
                    f => value[f].clone(),
                }
            }
            _ => self.fail(format!("unknown check `{lhs}`")),
        };
        if actual != expected {
            self.fail(format!("check {lhs}: got {actual}, expected {expected}"));
        }
    }

    fn run(mut self, script: &str) {
        let mut config_text = String::new();
        let mut configured = false;
        for (i, raw) in script.lines().enumerate() {
            self.line_no = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(expectation) = line.strip_prefix('>') {
                self.expect(expectation.trim());
                continue;
            }
            let (command, arg) = line.split_once(':').unwrap_or((line, ""));
            let arg = arg.trim();
            if command == "config" {
                assert!(
                    !configured,
                    "{}:{}: config after the first step",
                    self.name,
                    i + 1
                );
                config_text.push_str(arg);
                config_text.push('\n');
                continue;
            }
            if !configured {
                self.config = Config::from_toml(&config_text, Path::new("script")).unwrap();
                configured = true;
            }
            let (command, who) = match command.split_once('(') {
                Some((c, rest)) => (c, Some(rest.trim_end_matches(')'))),
                None => (command, None),
            };
            let customer = self.customer(who.unwrap_or("c1"));
            match command {
                "customer" => self.step(Inbound::Message {
                    customer,
                    text: expand(arg),
                    attachment: None,
                }),
                "attach" => self.step(Inbound::Message {
                    customer,
                    text: String::new(),
                    attachment: Some(arg.to_string()),
                }),
                "start" => self.step(Inbound::Start { customer }),
                "hint" => self.hint = (!arg.is_empty()).then(|| arg.to_string()),
                "press" => {
                    let Some(button) = self.last_buttons.iter().find(|b| b.label == arg).cloned()
                    else {
                        self.fail(format!(
                            "no button {arg:?} among {:?}",
                            self.last_buttons
                                .iter()
                                .map(|b| &b.label)
                                .collect::<Vec<_>>()
                        ));
                    };
                    self.step(Inbound::Button {
                        customer,
                        payload: button.payload,
                    })
                }
                "press-payload" => self.step(Inbound::Button {
                    customer,
                    payload: arg.to_string(),
                }),
                "staff" => self.step(Inbound::StaffText {
                    staff: Self::staff(),
                    text: expand(arg),
                    ticket: None,
                }),
                "staff-in" => self.step(Inbound::StaffText {
                    staff: Self::staff(),
                    text: expand(arg),
                    ticket: who.map(|n| n.parse().expect("staff-in(N)")),
                }),
                "staff-as" => self.step(Inbound::StaffText {
                    staff: Self::staff_named(who.expect("staff-as(<name>)")),
                    text: expand(arg),
                    ticket: None,
                }),
                "tick" => self.step(Inbound::Tick),
                "wait" => {
                    let d = parse_duration(arg).expect("wait: duration");
                    self.now = self
                        .now
                        .checked_add(jiff::SignedDuration::from_secs(d.as_secs() as i64))
                        .unwrap();
                    self.step(Inbound::Tick);
                }
                "at" => {
                    let at: Timestamp = line["at:".len()..]
                        .trim()
                        .parse()
                        .unwrap_or_else(|e| self.fail(format!("at: not an instant: {e}")));
                    if at < self.now {
                        self.fail("at: the clock only moves forward");
                    }
                    self.now = at;
                }
                "staff-press" => self.step(Inbound::StaffButton {
                    staff: Self::staff(),
                    payload: arg.to_string(),
                }),
                "advance" => {
                    let d = parse_duration(arg).expect("advance: duration");
                    self.now = self
                        .now
                        .checked_add(jiff::SignedDuration::from_secs(d.as_secs() as i64))
                        .unwrap();
                }
                "restart" => {
                    self.check_all_customer_messages_expected();
                    self.outputs.clear();
                    self.engine = None;
                }
                "repeat-event" => self.event_id = Some(arg.to_string()),
                other => self.fail(format!("unknown step `{other}`")),
            }
        }
        self.check_all_customer_messages_expected();
    }
}

fn describe(action: &Action) -> String {
    match action {
        Action::ToCustomer { text, buttons, .. } => {
            let labels: Vec<&str> = buttons.iter().map(|b| b.label.as_str()).collect();
            format!("bot: {text:?} {labels:?}")
        }
        Action::PingStaff { ticket, .. } => format!("ping #{ticket}"),
        Action::UpdatePing { ticket, text, .. } => {
            format!(
                "ping #{ticket} updated: {}",
                text.lines().nth(2).unwrap_or("")
            )
        }
        Action::ToStaff { text, .. } => format!("staff: {text:?}"),
    }
}

#[test]
fn conversation_scripts() {
    let dir = repo().join("tests/conversations");
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "conv"))
        .collect();
    scripts.sort();
    assert!(
        scripts.len() >= 5,
        "conversation scripts missing in {dir:?}"
    );
    let mut failed = Vec::new();
    for path in scripts {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let script = std::fs::read_to_string(&path).unwrap();
        let runner = Runner {
            name: name.clone(),
            data: tempfile::tempdir().unwrap(),
            config: Config::default(),
            engine: None,
            now: "2026-01-05T10:00:00Z".parse().unwrap(),
            hint: None,
            event_id: None,
            last_buttons: Vec::new(),
            outputs: Vec::new(),
            cursor: 0,
            line_no: 0,
        };
        // Run every script even when one fails, then name all that failed.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner.run(&script))) {
            Ok(()) => eprintln!("conversation {name}: ok"),
            Err(_) => failed.push(name),
        }
    }
    assert!(
        failed.is_empty(),
        "failing conversation scripts: {failed:?}"
    );
}

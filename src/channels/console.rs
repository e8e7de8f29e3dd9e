//! The console channel (`frontdesk chat`): you are the customer, and with a
//! leading `!` you are staff.
//!
//! Every line typed is a customer message; `!tickets`, `!claim 1`,
//! `!reply 1 text`, `!resolve 1 note`, `!reopen 1` are staff commands. Buttons
//! are printed numbered and pressed by typing the number or the label. Staff
//! pings and notes are printed marked `[staff]`. When standard input is not a
//! terminal it reads line by line, echoes each line and exits at end of input,
//! so a conversation can be scripted. Actions are printed from the outbox and
//! acknowledged, so a reply committed just before a crash is printed at the
//! next start.
//!
//! Timers: the engine's timer tick is fired at start and before each line, so
//! reminders that fell due are printed first. `/wait 2h` lets time pass in
//! the console (its clock runs ahead of the real one from then on) and fires
//! the tick: a way to watch a ticket's reminders by hand.

use std::io::{BufRead, Write};

use jiff::{SignedDuration, Timestamp};

use crate::engine::{CustomerInfo, Engine, EngineError, Inbound, StaffMember};
use crate::model::{Action, Button, Channel, CustomerKey, Outgoing};
use crate::nlu::normalize;
use crate::store::StoreError;

/// Longest input line read; the rest of a longer line is read as the same message but cut.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Why the console stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Reading input or writing output failed.
    #[error("console input/output failed: {0}")]
    Io(#[from] std::io::Error),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who is at the keyboard.
#[derive(Debug, Clone)]
pub struct ConsoleIdentity {
    /// The customer's id and name.
    pub customer_id: String,
    /// The customer's display name.
    pub customer_name: String,
    /// The staff member's name for `!` commands.
    pub staff_name: String,
}

impl Default for ConsoleIdentity {
    fn default() -> Self {
        ConsoleIdentity {
            customer_id: "customer".into(),
            customer_name: "Console customer".into(),
            staff_name: "Staff".into(),
        }
    }
}

const HELP: &str = "You are the customer: type a question, e.g. \"When are you open?\" or \"¿A qué hora abren?\".
Buttons are numbered: type the number or the label.
Staff commands start with !: !tickets, !claim N, !reply N text, !resolve N note, !reopen N.
/start greets, /attach WHAT sends a pretend photo or file, /wait 2h lets two hours pass (reminders fall due),
/forget deletes what the shop holds about you (it asks first), /help shows this, /quit or Ctrl-D leaves.";

/// The console session.
pub struct Console<'e> {
    engine: &'e Engine,
    identity: ConsoleIdentity,
    interactive: bool,
    /// The buttons of the latest customer-side output, in the order printed.
    buttons: Vec<Button>,
    /// How far `/wait` moved the console's clock ahead of the real one.
    offset: SignedDuration,
}

impl<'e> Console<'e> {
    /// A console over an engine. `interactive`: a person types (prompt, no echo).
    pub fn new(engine: &'e Engine, identity: ConsoleIdentity, interactive: bool) -> Self {
        Console {
            engine,
            identity,
            interactive,
            buttons: Vec::new(),
            offset: SignedDuration::ZERO,
        }
    }

    fn customer(&self) -> CustomerInfo {
        CustomerInfo {
            key: CustomerKey::new(Channel::Console, self.identity.customer_id.clone()),
            name: self.identity.customer_name.clone(),
            address: String::new(),
            language_hint: None,
        }
    }

    fn staff(&self) -> StaffMember {
        StaffMember {
            channel: Channel::Console,
            id: "console-staff".into(),
            name: self.identity.staff_name.clone(),
        }
    }

    /// Read lines until end of input or /quit; `now` gives the time of each line.
    pub fn run(
        &mut self,
        input: &mut dyn BufRead,
        output: &mut dyn Write,
        now: &dyn Fn() -> Timestamp,
    ) -> Result<(), ConsoleError> {
        if self.interactive {
            writeln!(
                output,
                "frontdesk console — {}",
                HELP.lines().next().unwrap_or("")
            )?;
            writeln!(output, "Type /help for more, /quit to leave.\n")?;
        }
        // Anything committed but never shown (a crash between the two) comes first.
        let pending: Vec<Outgoing> = self
            .engine
            .store()
            .pending()?
            .into_iter()
            .filter(|o| o.action.channel() == Channel::Console)
            .collect();
        if !pending.is_empty() {
            writeln!(
                output,
                "(delivering {} message(s) from before the restart)",
                pending.len()
            )?;
            self.deliver(pending, output)?;
        }
        let at = now().checked_add(self.offset).unwrap_or(now());
        let due = self.engine.handle(None, Inbound::Tick, at)?;
        self.deliver(due, output)?;
        let mut line = Vec::new();
        loop {
            if self.interactive {
                write!(output, "you> ")?;
                output.flush()?;
            }
            line.clear();
            let read = read_line_capped(input, &mut line)?;
            if read == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\n', '\r']);
            if !self.interactive && !text.trim().is_empty() {
                writeln!(output, "> {}", crate::engine::clip(text, 200))?;
            }
            // What fell due since the last line comes first.
            let due = self.engine.handle(
                None,
                Inbound::Tick,
                now().checked_add(self.offset).unwrap_or(now()),
            )?;
            self.deliver(due, output)?;
            let at = now().checked_add(self.offset).unwrap_or(now());
            match self.step(text, at)? {
                Step::Quit => break,
                Step::Help => writeln!(output, "{HELP}")?,
                Step::Nothing => {}
                Step::Waited(by) => {
                    self.offset += by;
                    let at = now().checked_add(self.offset).unwrap_or(now());
                    let local = self.engine.settings().hours.local(at);
                    writeln!(
                        output,
                        "(time passes: {}; it is now {} in the shop's time zone)",
                        crate::engine::Messages::english().duration(by.as_secs().max(0) as u64),
                        local.strftime("%A %Y-%m-%d %H:%M")
                    )?;
                    let due = self.engine.handle(None, Inbound::Tick, at)?;
                    self.deliver(due, output)?;
                }
                Step::Usage(text) => writeln!(output, "{text}")?,
                Step::Actions(out) => self.deliver(out, output)?,
            }
        }
        if self.interactive {
            writeln!(output, "bye")?;
        }
        Ok(())
    }

    fn step(&mut self, line: &str, now: Timestamp) -> Result<Step, ConsoleError> {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return Ok(Step::Nothing);
        }
        let inbound = match trimmed {
            "/quit" | "/exit" => return Ok(Step::Quit),
            "/help" => return Ok(Step::Help),
            _ if trimmed == "/wait" || trimmed.starts_with("/wait ") => {
                let arg = trimmed["/wait".len()..].trim();
                return Ok(match crate::config::parse_duration(arg) {
                    Ok(d) => Step::Waited(SignedDuration::from_secs(
                        d.as_secs().min(366 * 86_400) as i64
                    )),
                    Err(message) => Step::Usage(format!("usage: /wait DURATION — {message}")),
                });
            }
            "/start" => Inbound::Start {
                customer: self.customer(),
            },
            _ if trimmed.starts_with("/attach") => Inbound::Message {
                customer: self.customer(),
                text: String::new(),
                attachment: Some(
                    Some(trimmed["/attach".len()..].trim())
                        .filter(|w| !w.is_empty())
                        .unwrap_or("photo")
                        .to_string(),
                ),
            },
            _ if trimmed.starts_with('!') => Inbound::StaffText {
                staff: self.staff(),
                text: trimmed.to_string(),
                ticket: None,
            },
            _ => match self.pressed(trimmed) {
                Some(button) => Inbound::Button {
                    customer: self.customer(),
                    payload: button.payload,
                },
                None => Inbound::Message {
                    customer: self.customer(),
                    text: line.to_string(),
                    attachment: None,
                },
            },
        };
        Ok(Step::Actions(self.engine.handle(None, inbound, now)?))
    }

    /// A button picked by label (first) or by its number.
    fn pressed(&self, text: &str) -> Option<Button> {
        let wanted = normalize(text);
        if let Some(b) = self
            .buttons
            .iter()
            .find(|b| !wanted.is_empty() && normalize(&b.label) == wanted)
        {
            return Some(b.clone());
        }
        let n: usize = text.trim().parse().ok()?;
        self.buttons.get(n.checked_sub(1)?).cloned()
    }

    fn deliver(&mut self, out: Vec<Outgoing>, output: &mut dyn Write) -> Result<(), ConsoleError> {
        let mut fresh_buttons: Vec<Button> = Vec::new();
        let mut any_customer_buttons = false;
        for o in out {
            match &o.action {
                Action::ToCustomer { text, buttons, .. } => {
                    writeln!(output, "{}", indent("bot> ", text))?;
                    if !buttons.is_empty() {
                        any_customer_buttons = true;
                        let first = fresh_buttons.len();
                        fresh_buttons.extend(buttons.iter().cloned());
                        let shown: Vec<String> = buttons
                            .iter()
                            .enumerate()
                            .map(|(i, b)| format!("[{}] {}", first + i + 1, b.label))
                            .collect();
                        writeln!(output, "     {}", shown.join("  "))?;
                    }
                }
                Action::UpdatePing { ticket, text, .. } => {
                    // The full ping was printed when it was sent; show what changed.
                    let status = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Status: "))
                        .unwrap_or("updated");
                    writeln!(output, "[staff] ticket #{ticket} is now {status}")?;
                }
                Action::PingStaff { text, buttons, .. } => {
                    writeln!(output, "{}", indent("[staff] ", text))?;
                    if !buttons.is_empty() {
                        let hints: Vec<String> = buttons
                            .iter()
                            .map(|b| format!("!{}", b.payload.replace(':', " ")))
                            .collect();
                        writeln!(output, "        buttons: {}", hints.join("  "))?;
                    }
                }
                Action::ToStaff { text, .. } => {
                    writeln!(output, "{}", indent("[staff] ", text))?;
                }
            }
            self.engine.store().acknowledge(o.id)?;
        }
        if any_customer_buttons {
            self.buttons = fresh_buttons;
        }
        output.flush()?;
        Ok(())
    }
}

enum Step {
    Quit,
    Help,
    Nothing,
    Waited(SignedDuration),
    Usage(String),
    Actions(Vec<Outgoing>),
}

/// Prefix the first line, indent the rest to match.
fn indent(head: &str, text: &str) -> String {
    let pad = " ".repeat(head.chars().count());
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(&pad);
        } else {
            out.push_str(head);
        }
        out.push_str(line);
    }
    if out.is_empty() {
        out.push_str(head);
    }
    out
}

/// Read one line, keeping at most [`MAX_LINE_BYTES`] of it; returns bytes consumed (0 at end).
fn read_line_capped(input: &mut dyn BufRead, line: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut consumed = 0;
    loop {
        let buf = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(consumed);
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let room = MAX_LINE_BYTES.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let n = chunk.len();
        input.consume(n);
        consumed += n;
        if done {
            return Ok(consumed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indent_lines() {
        assert_eq!(indent("bot> ", "a\nb"), "bot> a\n     b");
        assert_eq!(indent("bot> ", ""), "bot> ");
    }

    #[test]
    fn long_lines_are_capped_not_lost() {
        let mut data = vec![b'x'; MAX_LINE_BYTES + 10];
        data.push(b'\n');
        data.extend_from_slice(b"next\n");
        let mut input = std::io::Cursor::new(data);
        let mut line = Vec::new();
        let n = read_line_capped(&mut input, &mut line).unwrap();
        assert_eq!(n, MAX_LINE_BYTES + 11);
        assert_eq!(line.len(), MAX_LINE_BYTES);
        line.clear();
        read_line_capped(&mut input, &mut line).unwrap();
        assert_eq!(line, b"next\n");
    }
}

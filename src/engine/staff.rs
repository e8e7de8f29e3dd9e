//! Staff commands: the same words on every platform (`tickets`, `claim N`,
//! `reply N text`, `resolve N note`, `reopen N`, `help`), parsed from text with
//! an optional `!` or `/` prefix and an optional `@botname` suffix, and from the
//! payloads of the \[Claim\] / \[Resolve\] buttons.

/// A parsed staff command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffCommand {
    /// List open tickets, oldest first.
    Tickets,
    /// Take a ticket.
    Claim(u64),
    /// Send text to the ticket's customer.
    Reply(u64, String),
    /// Resolve with an optional note.
    Resolve(u64, String),
    /// Reopen a resolved ticket.
    Reopen(u64),
    /// Show the commands.
    Help,
}

/// Why staff input is not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not a command word at all (plain text).
    NotACommand,
    /// A command word with wrong arguments; the message says how to use it.
    Usage(String),
}

/// The command words, for recognising them in customer messages.
pub const COMMAND_WORDS: [&str; 6] = ["tickets", "claim", "reply", "resolve", "reopen", "help"];

/// One line of help per command.
pub const HELP: &str = "Staff commands:\n  tickets — open tickets, oldest first\n  claim N — take ticket N\n  reply N text — send text to the customer of ticket N\n  resolve N note — resolve ticket N (the note is shown to the customer)\n  reopen N — reopen ticket N";

/// Split off the command word: strips `!` or `/` and a `@botname` suffix, lowercases.
fn command_word(text: &str) -> Option<(String, &str)> {
    let text = text.trim_start();
    let text = text.strip_prefix(['!', '/']).unwrap_or(text);
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    let (word, rest) = text.split_at(end);
    let word = word.split('@').next().unwrap_or(word).to_lowercase();
    if word.is_empty() {
        return None;
    }
    Some((word, rest))
}

/// Whether a customer's message looks like a staff command (`!claim 3`, `/tickets`).
pub fn looks_like_command(text: &str) -> bool {
    let t = text.trim_start();
    (t.starts_with('!') || t.starts_with('/'))
        && command_word(t).is_some_and(|(w, _)| COMMAND_WORDS.contains(&w.as_str()))
}

fn ticket_number(arg: Option<&str>) -> Option<u64> {
    let arg = arg?.trim();
    let arg = arg.strip_prefix('#').unwrap_or(arg);
    arg.parse().ok().filter(|n| *n > 0)
}

/// Parse staff text into a command.
pub fn parse(text: &str) -> Result<StaffCommand, ParseError> {
    let Some((word, rest)) = command_word(text) else {
        return Err(ParseError::NotACommand);
    };
    let rest = rest.trim();
    let (first, tail) = match rest.find(char::is_whitespace) {
        Some(i) => (Some(&rest[..i]), rest[i..].trim()),
        None if rest.is_empty() => (None, ""),
        None => (Some(rest), ""),
    };
    let need_number = |usage: &str| {
        ticket_number(first).ok_or_else(|| ParseError::Usage(format!("usage: {usage}")))
    };
    match word.as_str() {
        "tickets" => Ok(StaffCommand::Tickets),
        "help" => Ok(StaffCommand::Help),
        "claim" => Ok(StaffCommand::Claim(need_number("claim N")?)),
        "reopen" => Ok(StaffCommand::Reopen(need_number("reopen N")?)),
        "resolve" => Ok(StaffCommand::Resolve(
            need_number("resolve N note")?,
            tail.to_string(),
        )),
        "reply" => {
            let n = need_number("reply N text")?;
            if tail.is_empty() {
                return Err(ParseError::Usage(
                    "usage: reply N text — the text is missing".into(),
                ));
            }
            Ok(StaffCommand::Reply(n, tail.to_string()))
        }
        _ => Err(ParseError::NotACommand),
    }
}

/// Parse a staff button payload (`claim:3`, `resolve:3`).
pub fn parse_button(payload: &str) -> Option<StaffCommand> {
    let (action, number) = payload.split_once(':')?;
    let n = number.parse().ok().filter(|n| *n > 0)?;
    match action {
        "claim" => Some(StaffCommand::Claim(n)),
        "resolve" => Some(StaffCommand::Resolve(n, String::new())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command_with_prefixes_and_bot_names() {
        assert_eq!(parse("!tickets"), Ok(StaffCommand::Tickets));
        assert_eq!(parse("/tickets@shop_bot"), Ok(StaffCommand::Tickets));
        assert_eq!(parse("claim 3"), Ok(StaffCommand::Claim(3)));
        assert_eq!(parse("!claim #3"), Ok(StaffCommand::Claim(3)));
        assert_eq!(parse("/CLAIM@bot 3"), Ok(StaffCommand::Claim(3)));
        assert_eq!(
            parse("!reply 1 Hello,  there!"),
            Ok(StaffCommand::Reply(1, "Hello,  there!".into()))
        );
        assert_eq!(
            parse("!resolve 1 Refund sent"),
            Ok(StaffCommand::Resolve(1, "Refund sent".into()))
        );
        assert_eq!(
            parse("!resolve 2"),
            Ok(StaffCommand::Resolve(2, String::new()))
        );
        assert_eq!(parse("!reopen 1"), Ok(StaffCommand::Reopen(1)));
        assert_eq!(parse("!help"), Ok(StaffCommand::Help));
    }

    #[test]
    fn bad_arguments_say_how_to_use() {
        for bad in [
            "!claim",
            "!claim x",
            "!claim 0",
            "!claim -1",
            "!reply 1",
            "!reply",
            "!reopen 99999999999999999999999",
        ] {
            assert!(matches!(parse(bad), Err(ParseError::Usage(_))), "{bad}");
        }
        for not in ["", "!", "/", "hello", "!dance 3", "   "] {
            assert_eq!(parse(not), Err(ParseError::NotACommand), "{not:?}");
        }
    }

    #[test]
    fn customer_text_that_looks_like_a_command() {
        assert!(looks_like_command("/claim 1"));
        assert!(looks_like_command("!tickets"));
        assert!(!looks_like_command("claim my refund"));
        assert!(!looks_like_command("/start"));
        assert!(!looks_like_command("!!!"));
    }

    #[test]
    fn buttons() {
        assert_eq!(parse_button("claim:4"), Some(StaffCommand::Claim(4)));
        assert_eq!(
            parse_button("resolve:4"),
            Some(StaffCommand::Resolve(4, String::new()))
        );
        assert_eq!(parse_button("claim:x"), None);
        assert_eq!(parse_button("yes"), None);
    }
}

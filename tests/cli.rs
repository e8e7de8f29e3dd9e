//! The `frontdesk` binary as a user runs it: the README's conversation piped
//! into `frontdesk chat`, restarts between processes, `report` and `tickets`,
//! `check` on good and broken intents, bad configuration, a busy data directory.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn frontdesk(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
    cmd.args(args)
        .current_dir(repo())
        .env_remove("FRONTDESK_CONFIG")
        .env_remove("FRONTDESK_DATA")
        .env_remove("FRONTDESK_INTENTS")
        .env_remove("RUST_LOG");
    cmd
}

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = frontdesk(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the frontdesk binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn report(data: &Path) -> serde_json::Value {
    let out = run(&["report", "--json", "--data", data.to_str().unwrap()], "");
    assert!(out.status.success(), "report failed: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("report --json prints one JSON object")
}

#[test]
fn the_readme_conversation_piped_from_a_file() {
    let data = tempfile::tempdir().unwrap();
    let script = "¿A qué hora abren?\n\
                  I want to talk to a person\n\
                  !claim 1\n\
                  !reply 1 Hi, I'm Sam. How can I help?\n\
                  !resolve 1 Refund sent\n\
                  5\n";
    let out = run(&["chat", "--data", data.path().to_str().unwrap()], script);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{}", stdout, text(&out.stderr));
    assert!(
        stdout.contains("bot> Abrimos de lunes a viernes"),
        "{stdout}"
    );
    assert!(stdout.contains("ticket #1"), "{stdout}");
    assert!(stdout.contains("[staff] 🔔 Ticket #1"), "{stdout}");
    assert!(
        stdout.contains("bot> Staff: Hi, I'm Sam. How can I help?"),
        "{stdout}"
    );
    assert!(
        stdout.contains("has been resolved: Refund sent"),
        "{stdout}"
    );
    assert!(stdout.contains("How satisfied are you"), "{stdout}");
    assert!(stdout.contains("Thank you for your rating!"), "{stdout}");

    let r = report(data.path());
    assert_eq!(r["tickets_resolved"], 1, "{r}");
    assert_eq!(r["tickets_open"], 0, "{r}");
    assert_eq!(r["escalated"], 1, "{r}");
    assert_eq!(r["ratings"], 1, "{r}");
    assert_eq!(r["csat_average"], 5.0, "{r}");
    for key in [
        "conversations",
        "answered_by_bot",
        "median_first_response_seconds",
        "median_resolution_seconds",
        "nps",
        "promoters",
        "passives",
        "detractors",
    ] {
        assert!(r.get(key).is_some(), "report lacks {key}: {r}");
    }
}

#[test]
fn a_ticket_survives_a_restart_of_the_process() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path().to_str().unwrap();
    let first = run(&["chat", "--data", d], "I want to talk to a person\n");
    assert!(first.status.success());
    assert!(text(&first.stdout).contains("Ticket #1"));

    let tickets = run(&["tickets", "--data", d], "");
    assert!(
        text(&tickets.stdout).contains("#1 open"),
        "{}",
        text(&tickets.stdout)
    );

    let second = run(
        &["chat", "--data", d, "--staff-name", "Sam"],
        "!tickets\n!claim 1\n!reply 1 Back after the restart\n!resolve 1 done\n4\n",
    );
    let stdout = text(&second.stdout);
    assert!(stdout.contains("#1 open"), "{stdout}");
    assert!(
        stdout.contains("bot> Sam: Back after the restart"),
        "{stdout}"
    );
    assert!(stdout.contains("Thank you for your rating!"), "{stdout}");

    let r = report(data.path());
    assert_eq!(r["tickets_resolved"], 1);
    assert_eq!(r["csat_average"], 4.0);

    let json = run(&["tickets", "--json", "--data", d], "");
    let tickets: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let events: Vec<&str> = tickets[0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["opened", "claimed", "replied", "resolved"]);
    assert_eq!(tickets[0]["assignee"], "Sam");
    assert_eq!(tickets[0]["resolution_note"], "done");
}

#[test]
fn hostile_console_input_is_answered_and_nothing_crashes() {
    let data = tempfile::tempdir().unwrap();
    let mut input = Vec::new();
    input.extend_from_slice(b"\n   \n");
    input.extend_from_slice(&vec![b'x'; 100_000]);
    input.push(b'\n');
    input.extend_from_slice(&[0xff, 0xfe, 0x00, 0x01, b'\n']);
    input.extend_from_slice("🙂🙂🙂\n!claim 42\n!resolve\n/attach photo\n".as_bytes());
    let mut child = frontdesk(&["chat", "--data", data.path().to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("There is no ticket #42"), "{stdout}");
    assert!(stdout.contains("usage: resolve N note"), "{stdout}");
    assert!(
        stdout.contains("ticket #1"),
        "the long message is escalated: {stdout}"
    );
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_summarises_the_demo_intents() {
    let out = run(&["check"], "");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("intents"), "{stdout}");
    for lang in ["en:", "es:", "it:"] {
        assert!(stdout.contains(lang), "{stdout}");
    }
    assert!(stdout.contains("human=talk_to_person"), "{stdout}");
}

#[test]
fn broken_intents_are_refused_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("shop.toml"),
        "[[intent]]\nid = \"hours\"\nexamples.en = [\"when are you open\"]\nanswer.en = \"9-5\"\nanwser.es = \"9-5\"\n",
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    let check = run(&["check", "--intents", d], "");
    let stderr = text(&check.stderr);
    assert!(!check.status.success());
    assert!(stderr.contains("shop.toml:5"), "{stderr}");
    assert!(stderr.contains("anwser"), "{stderr}");

    let data = tempfile::tempdir().unwrap();
    let chat = run(
        &[
            "chat",
            "--intents",
            d,
            "--data",
            data.path().to_str().unwrap(),
        ],
        "hello\n",
    );
    let stderr = text(&chat.stderr);
    assert!(!chat.status.success());
    assert!(stderr.contains("shop.toml:5"), "{stderr}");
    assert!(stderr.contains("does not start"), "{stderr}");
    assert!(
        text(&chat.stdout).is_empty(),
        "nothing answered with a broken set"
    );

    let missing = run(&["check", "--intents", "/nonexistent/intents"], "");
    assert!(!missing.status.success());
    let stderr = text(&missing.stderr);
    assert!(
        stderr.contains("cannot read the intents directory"),
        "{stderr}"
    );
    // The cause is said once, not once per layer of the error.
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn a_reader_that_goes_away_is_not_an_error() {
    // `frontdesk report | head -1`: the reader closes the pipe before the
    // report is written. That is the reader's choice, not a failure.
    let data = tempfile::tempdir().unwrap();
    let mut child = frontdesk(&["report", "--data", data.path().to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the frontdesk binary runs");
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}

#[test]
fn bad_configuration_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("frontdesk.toml");
    std::fs::write(&config, "[survey]\nkind = \"stars\"\n").unwrap();
    let out = run(&["check", "--config", config.to_str().unwrap()], "");
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("frontdesk.toml:2"), "{stderr}");
    assert!(stderr.contains("kind"), "{stderr}");

    let out = run(&["check", "--config", "/nonexistent/frontdesk.toml"], "");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("cannot read the config file"));
}

#[test]
fn help_lists_every_command() {
    let out = run(&["--help"], "");
    let stdout = text(&out.stdout);
    assert!(out.status.success());
    for command in ["chat", "check", "report", "tickets", "forget", "export"] {
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(command)),
            "--help lacks {command}: {stdout}"
        );
    }
    let bad = run(&["chat", "--no-such-flag"], "");
    assert!(!bad.status.success());
}

#[test]
fn a_data_directory_in_use_is_reported_not_corrupted() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path().to_str().unwrap();
    let mut chat = frontdesk(&["chat", "--data", d])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = chat.stdin.take().unwrap();
    stdin.write_all(b"hello\n").unwrap();
    stdin.flush().unwrap();
    // Once the first process has answered, it holds the store.
    let mut reader = std::io::BufReader::new(chat.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("bot>") {
        line.clear();
        let n = std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
        assert!(n > 0, "the chat ended before answering");
    }
    let out = run(&["report", "--data", d], "");
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("in use by another frontdesk process"),
        "{stderr}"
    );
    drop(stdin);
    assert!(chat.wait().unwrap().success());
}

#[test]
fn console_wait_lets_reminders_fall_due() {
    let data = tempfile::tempdir().unwrap();
    let script = "I want to talk to a person\n\
                  /wait 31m\n\
                  /wait 30m\n\
                  /wait soon\n\
                  !claim 1\n";
    let out = run(&["chat", "--data", data.path().to_str().unwrap()], script);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{}", stdout, text(&out.stderr));
    assert!(
        stdout.contains("usually within 1 hour"),
        "the customer is told when to expect an answer: {stdout}"
    );
    assert!(stdout.contains("(time passes: 31 minutes;"), "{stdout}");
    let half = stdout
        .find("[staff] ⏳ Ticket #1 is still waiting to be claimed")
        .expect("half-target re-ping");
    let missed = stdout
        .find("[staff] 🚨 Ticket #1 missed its first-response target")
        .expect("missed-target re-ping");
    let still = stdout
        .find("bot> Sorry for the wait")
        .expect("the customer hears \"still on it\"");
    assert!(half < missed && missed <= still, "{stdout}");
    assert_eq!(stdout.matches("Sorry for the wait").count(), 1, "{stdout}");
    assert!(stdout.contains("usage: /wait DURATION"), "{stdout}");
    assert!(stdout.contains("looking at your request #1"), "{stdout}");
}

fn report_with(data: &Path, args: &[&str]) -> Output {
    let mut all = vec!["report", "--data", data.to_str().unwrap()];
    all.extend_from_slice(args);
    run(&all, "")
}

#[test]
fn report_flags_period_channel_formats_and_the_draft_intents() {
    let data = tempfile::tempdir().unwrap();
    let script = "Do you have a loyalty program?\n\
                  !resolve 1 Not yet\n\
                  5\n\
                  Do you offer gift wrapping?\n\
                  Something else\n\
                  !reply 2 We do not, sorry\n\
                  !resolve 2 No gift wrap\n\
                  1\n\
                  Too slow, and no wrapping\n\
                  What time do you open?\n\
                  yes\n\
                  4\n";
    let out = run(&["chat", "--data", data.path().to_str().unwrap()], script);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let r = report(data.path());
    assert_eq!(r["conversations"], 3, "{r}");
    assert_eq!(r["unanswered_messages"], 2, "{r}");
    assert_eq!(r["resolved_by_bot"], 1, "{r}");
    assert_eq!(r["escalations_by_reason"][0]["tickets"], 2, "{r}");
    assert_eq!(r["csat_distribution"][0]["count"], 1, "{r}");
    assert_eq!(
        r["detractor_comments"][0]["comment"], "Too slow, and no wrapping",
        "{r}"
    );
    assert_eq!(
        r["top_recommenders"][0]["customer"], "console:customer",
        "{r}"
    );
    assert_eq!(r["first_response_sla"]["met"], 2, "{r}");
    assert_eq!(r["unanswered"].as_array().unwrap().len(), 2, "{r}");

    // The period and the channel.
    let count = |args: &[&str]| {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = report_with(data.path(), &all);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        r["conversations"].as_u64().unwrap()
    };
    assert_eq!(count(&["--since", "2000-01-01"]), 3);
    assert_eq!(
        count(&["--since", "2000-01-01T00:00:00Z", "--until", "2999-12-31"]),
        3
    );
    assert_eq!(count(&["--since", "2999-01-01"]), 0);
    assert_eq!(count(&["--until", "2000-01-01 12:00"]), 0);
    assert_eq!(count(&["--channel", "console"]), 3);
    assert_eq!(count(&["--channel", "telegram"]), 0);

    // Text and CSV.
    let out = report_with(data.path(), &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success());
    for want in [
        "Conversations",
        "Resolved by the bot    1 (33.3 %)",
        "First-response target",
        "█",
        "Too slow, and no wrapping",
        "\"Do you offer gift wrapping?\"",
    ] {
        assert!(stdout.contains(want), "{want:?} in:\n{stdout}");
    }
    let out = report_with(data.path(), &["--csv"]);
    let csv = text(&out.stdout);
    assert!(csv.starts_with("section,figure,item,value\n"), "{csv}");
    assert!(csv.contains("volume,conversations,,3\n"), "{csv}");
    assert!(csv.contains(",\"Too slow, and no wrapping\"\n"), "{csv}");
    let out = report_with(data.path(), &["unanswered", "--csv"]);
    assert!(text(&out.stdout).contains("listening,group_count,1,1\n"));

    // The draft intent file passes `frontdesk check`.
    let out = report_with(data.path(), &["unanswered", "--toml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let draft = text(&out.stdout);
    assert!(
        draft.contains("\"Do you have a loyalty program?\""),
        "{draft}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("draft.toml"), &draft).unwrap();
    let out = run(&["check", "--intents", dir.path().to_str().unwrap()], "");
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("2 intents"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn report_refuses_bad_flags_with_what_is_expected() {
    let data = tempfile::tempdir().unwrap();
    let refused = |args: &[&str], want: &str| {
        let out = report_with(data.path(), args);
        assert!(!out.status.success(), "{args:?} was accepted");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed a report");
    };
    refused(
        &["--since", "2026-13-01"],
        "expected a date like 2026-11-01",
    );
    refused(
        &["--until", "01/11/2026"],
        "--until \"01/11/2026\" is not a date",
    );
    refused(&["--since", "last week"], "2026-11-01T09:30:00Z");
    refused(
        &["--since", "2026-11-02", "--until", "2026-11-01"],
        "is not before --until",
    );
    refused(&["--channel", "irc"], "use console, telegram or discord");
    refused(&["--json", "--csv"], "cannot be used with");
    refused(&["unanswered", "--toml", "--json"], "cannot be used with");
    refused(&["--toml"], "frontdesk report unanswered --toml");
    refused(&["--since"], "a value is required");
}

#[test]
fn report_on_an_empty_store() {
    let data = tempfile::tempdir().unwrap();
    let empty = data.path().join("never-used");
    let out = report_with(&empty, &["--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["conversations"], 0);
    assert_eq!(r["csat_average"], serde_json::Value::Null);
    assert_eq!(r["p90_first_response_seconds"], serde_json::Value::Null);
    assert_eq!(
        r["first_response_sla"]["percent_met"],
        serde_json::Value::Null
    );
    assert_eq!(r["unanswered"], serde_json::json!([]));
    let out = report_with(&empty, &[]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("Questions the bot could not answer: none"));
    let out = report_with(&empty, &["--csv"]);
    assert!(text(&out.stdout).contains("speed,first_response_seconds,median,\n"));
    let out = report_with(&empty, &["unanswered", "--toml"]);
    assert!(text(&out.stdout).contains("nothing to draft"));
}

#[test]
fn export_and_forget_a_customer_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path().to_str().unwrap();
    let chat = |id: &str, name: &str, script: &str| {
        let out = run(
            &[
                "chat",
                "--data",
                d,
                "--customer-id",
                id,
                "--customer-name",
                name,
            ],
            script,
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    chat(
        "4410098765",
        "Ottoline Brackwater",
        "I want to talk to a person\nmy code is Gooseberry-Tunnel-88\n",
    );
    chat(
        "5510012121",
        "Kept Customer",
        "When are you open?\nyes\n5\n",
    );

    let out = run(
        &["export", "--data", d, "--customer", "console:4410098765"],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let export: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        export["customer"]["name"], "Ottoline Brackwater",
        "{export}"
    );
    assert_eq!(export["tickets"][0]["number"], 1, "{export}");
    assert!(
        export.to_string().contains("Gooseberry-Tunnel-88"),
        "{export}"
    );
    assert_eq!(export["ratings"], serde_json::json!([]), "{export}");
    let tickets = text(&run(&["tickets", "--data", d], "").stdout);
    assert!(tickets.contains("(console:4410098765)"), "{tickets}");

    let out = run(
        &["forget", "--data", d, "--customer", "console:4410098765"],
        "",
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("deleted 1 conversation(s), 0 rating(s)"),
        "{stdout}"
    );
    assert!(stdout.contains("Closed the open ticket(s) #1"), "{stdout}");
    for gone in ["Gooseberry-Tunnel-88", "Ottoline Brackwater", "4410098765"] {
        assert!(
            !common::dir_contains(data.path(), gone.as_bytes()),
            "{gone} is still on disk"
        );
    }
    // Now unknown: export and forget say so, and nothing changes.
    for command in ["export", "forget"] {
        let out = run(
            &[command, "--data", d, "--customer", "console:4410098765"],
            "",
        );
        assert_eq!(out.status.code(), Some(1), "{command}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("there is no customer console:4410098765"),
            "{stderr}"
        );
    }
    let tickets = text(&run(&["tickets", "--data", d], "").stdout);
    assert!(
        tickets.contains("#1 resolved · forgotten customer (console)"),
        "{tickets}"
    );
    assert!(
        tickets.contains("closed: the customer asked to be forgotten"),
        "{tickets}"
    );
    let r = report(data.path());
    assert_eq!(r["ratings"], 1, "the other customer's rating stays: {r}");
    let out = run(
        &["export", "--data", d, "--customer", "console:5510012121"],
        "",
    );
    assert!(text(&out.stdout).contains("Kept Customer"));
}

#[test]
fn forget_and_export_refuse_bad_ids_and_empty_stores() {
    let data = tempfile::tempdir().unwrap();
    let missing = data.path().join("never-created");
    let m = missing.to_str().unwrap();
    for command in ["export", "forget"] {
        for bad in ["12345", "irc:12345", "telegram:", "telegram:forgotten"] {
            let out = run(&[command, "--data", m, "--customer", bad], "");
            assert_eq!(out.status.code(), Some(2), "{command} {bad}");
            let stderr = text(&out.stderr);
            assert!(
                stderr.contains("CHANNEL:ID")
                    || stderr.contains("unknown channel")
                    || stderr.contains("already forgotten"),
                "{command} {bad}: {stderr}"
            );
        }
        let out = run(&[command, "--data", m, "--customer", "telegram:12345"], "");
        assert_eq!(out.status.code(), Some(1), "{command}");
        assert!(
            text(&out.stderr).contains("there is no customer telegram:12345"),
            "{}",
            text(&out.stderr)
        );
        assert!(!missing.exists(), "{command} created the data directory");
    }
    // An existing store without that customer.
    let d = data.path().join("store");
    let d = d.to_str().unwrap();
    run(&["chat", "--data", d], "When are you open?\n");
    let out = run(&["forget", "--data", d, "--customer", "telegram:12345"], "");
    assert_eq!(out.status.code(), Some(1));
    let out = run(
        &["export", "--data", d, "--customer", "console:customer"],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn forget_typed_in_the_console_asks_then_leaves_nothing_on_disk() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path().to_str().unwrap();
    let args = [
        "chat",
        "--data",
        d,
        "--customer-id",
        "6620031313",
        "--customer-name",
        "Philippa Quillfeather",
    ];
    let out = run(
        &args,
        "I want to talk to a person\nmy code is Persimmon-Ladder-51\n/forget\n",
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Delete everything?"), "{stdout}");
    assert!(
        stdout.contains("[1] Yes, delete everything  [2] No, keep it"),
        "{stdout}"
    );
    // A new process: the question's buttons are gone, the typed form works.
    let out = run(&args, "/forget yes\n");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("Done: I deleted 1 conversation(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[staff] Ticket #1 closed: the customer asked to be forgotten"),
        "{stdout}"
    );
    for gone in ["Persimmon-Ladder-51", "Philippa Quillfeather", "6620031313"] {
        assert!(
            !common::dir_contains(data.path(), gone.as_bytes()),
            "{gone} is still on disk"
        );
    }
    let r = report(data.path());
    assert_eq!(r["escalated"], 1, "the ticket is still counted: {r}");
}

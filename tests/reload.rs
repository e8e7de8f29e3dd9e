//! Hot reload as a shop owner sees it: `frontdesk chat` keeps running while
//! an intent file is edited; the next question gets the new answer. A broken
//! edit is reported with its file and line, and the bot keeps answering with
//! the last set that loaded; fixing the file loads it again.
//!
//! Nothing here is timed: each step waits for its outcome (a line on the
//! bot's output or log) with a generous upper bound.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// How long any one step may take before the test gives up.
const PATIENCE: Duration = Duration::from_secs(120);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Lines of one of the child's outputs, as they come, and all seen so far.
struct Lines {
    rx: Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    fn new(from: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a line (after those already consumed) that satisfies `want`.
    fn wait_for(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "waited {PATIENCE:?} for {what}; got:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }
}

struct Bot {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Lines,
    log: Lines,
}

impl Bot {
    fn start(config: &Path, data: &Path) -> Bot {
        let mut child = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
            .args(["-v", "chat", "--config"])
            .arg(config)
            .arg("--data")
            .arg(data)
            .current_dir(repo())
            .env_remove("FRONTDESK_CONFIG")
            .env_remove("FRONTDESK_DATA")
            .env_remove("FRONTDESK_INTENTS")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the frontdesk binary runs");
        let stdin = child.stdin.take();
        let out = Lines::new(child.stdout.take().unwrap());
        let log = Lines::new(child.stderr.take().unwrap());
        Bot {
            child,
            stdin,
            out,
            log,
        }
    }

    /// Types a line and waits for the bot's line containing `expect`.
    fn ask(&mut self, line: &str, expect: &str) -> String {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        self.out
            .wait_for(&format!("an answer with {expect:?}"), |l| {
                l.starts_with("bot> ") && l.contains(expect)
            })
    }

    /// Ends the input and waits for the process.
    fn finish(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "chat failed: {}",
            self.log.seen.join("\n")
        );
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        // A failed assertion must not leave the process behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `text` to `path` as an editor's save would (a new file moved over
/// the old one), so the bot never sees it half written.
fn save(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn an_edited_intent_is_answered_without_a_restart_and_a_broken_edit_keeps_the_last_good_set() {
    let tmp = tempfile::tempdir().unwrap();
    let intents = tmp.path().join("intents");
    std::fs::create_dir(&intents).unwrap();
    for entry in std::fs::read_dir(repo().join("intents")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "toml") {
            std::fs::copy(&path, intents.join(path.file_name().unwrap())).unwrap();
        }
    }
    let config = tmp.path().join("frontdesk.toml");
    std::fs::write(
        &config,
        format!(
            "intents = {:?}\nintents_reload = \"1s\"\n",
            intents.to_str().unwrap()
        ),
    )
    .unwrap();
    let hours = intents.join("hours.toml");
    let original = std::fs::read_to_string(&hours).unwrap();
    let old_answer = "We are open Monday to Friday 9:00–18:00";
    let new_answer = "We are open every day 8:00–20:00";
    assert!(original.contains(old_answer));

    let mut bot = Bot::start(&config, &tmp.path().join("data"));
    bot.ask("When are you open?", old_answer);

    // The owner changes the answer: the next question gets the new one.
    let edited = original.replace(old_answer, new_answer);
    save(&hours, &edited);
    let reloaded = bot.log.wait_for("the reload", |l| l.contains("reloaded "));
    assert!(reloaded.contains("reloaded 26 intents from "), "{reloaded}");
    assert!(reloaded.contains(intents.to_str().unwrap()), "{reloaded}");
    bot.ask("What are your opening hours?", new_answer);

    // A broken save (an unterminated string): reported with file and line,
    // and the last good set is still answering.
    let (line, _) = edited
        .lines()
        .enumerate()
        .find(|(_, l)| l.starts_with("answer.en = \"We are open every day"))
        .unwrap();
    let broken = edited.replace(
        "answer.en = \"We are open every day 8:00–20:00",
        "answer.en = \"We are open every day 8:00–20:00\n  oops",
    );
    save(&hours, &broken);
    let error = bot
        .log
        .wait_for("the reload error", |l| l.contains("not reloaded"));
    assert!(
        error.contains("still answering with the 26 intents loaded before"),
        "{error}"
    );
    // The loader's error (file:line) follows on the next line(s).
    let located = bot
        .log
        .wait_for("the file:line of the error", |l| l.contains("hours.toml:"));
    assert!(
        located.contains(&format!("hours.toml:{}", line + 1))
            || located.contains(&format!("hours.toml:{}", line + 2)),
        "line {}: {located}",
        line + 1
    );
    bot.ask("Are you open on Saturday?", new_answer);

    // Fixed: loaded again.
    save(&hours, &edited);
    bot.log.wait_for("the reload after the fix", |l| {
        l.contains("reloaded 26 intents")
    });

    // A duplicate intent id in a new file: refused the same way.
    let duplicate = intents.join("more.toml");
    save(
        &duplicate,
        "[[intent]]\nid = \"opening_hours\"\nexamples.en = [\"when do you open\"]\nanswer.en = \"Never.\"\n",
    );
    let error = bot.log.wait_for("the duplicate id error", |l| {
        l.contains("duplicate intent id")
    });
    assert!(error.contains("more.toml:2"), "{error}");
    bot.ask("When are you open?", new_answer);

    // The new file removed: loaded again.
    std::fs::remove_file(&duplicate).unwrap();
    bot.log.wait_for("the reload after the removal", |l| {
        l.contains("reloaded 26 intents")
    });
    bot.ask("When are you open?", new_answer);

    // And the old answer back.
    save(&hours, &original);
    bot.log
        .wait_for("the last reload", |l| l.contains("reloaded 26 intents"));
    bot.ask("What time do you open?", old_answer);
    bot.finish();
}

/// With a sentence model configured and `wait_for_model = false`, the bot
/// answers at once on the lexical matcher and swaps in the semantic tier
/// when its build is done; a piped `chat` without the key waits for it.
#[cfg(feature = "semantic")]
#[test]
fn with_a_model_the_bot_answers_at_once_and_builds_the_semantic_tier_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let model = repo().join("tests/data/semantic/tiny-static");
    let config = tmp.path().join("frontdesk.toml");
    let write_config = |wait: &str| {
        std::fs::write(
            &config,
            format!(
                "intents_reload = \"1s\"\n[matcher]\nmodel = {:?}\n{wait}",
                model.to_str().unwrap()
            ),
        )
        .unwrap();
    };
    write_config("wait_for_model = false\n");
    let mut bot = Bot::start(&config, &tmp.path().join("data"));
    bot.log
        .wait_for("the model loaded", |l| l.contains("semantic tier on"));
    bot.log.wait_for("the lexical start", |l| {
        l.contains("answering with the lexical matcher until the semantic tier is built")
    });
    bot.ask("When are you open?", "Monday to Friday");
    let built = bot.log.wait_for("the semantic tier's build", |l| {
        l.contains("the semantic tier is built")
    });
    assert!(built.contains("26 intents"), "{built}");
    bot.ask("What are your opening hours?", "Monday to Friday");
    bot.finish();

    // One run of the binary: `-v`, `args`, `--config`; no input:
    // (success, stdout, stderr).
    let data = tmp.path().join("data2");
    let chat = ["chat", "--data", data.to_str().unwrap()];
    let frontdesk = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
            .arg("-v")
            .args(args)
            .arg("--config")
            .arg(&config)
            .current_dir(repo())
            .env_remove("FRONTDESK_CONFIG")
            .env_remove("FRONTDESK_DATA")
            .env_remove("FRONTDESK_INTENTS")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    };

    // Piped, without the key: the tier is built before the first answer.
    write_config("");
    let (ok, _, log) = frontdesk(&chat);
    assert!(ok, "{log}");
    assert!(log.contains("semantic tier on"), "{log}");
    assert!(!log.contains("until the semantic tier is built"), "{log}");
    assert!(!log.contains("the semantic tier is built"), "{log}");

    // `check` says what happens at start, and how long the tier takes.
    let (ok, default, log) = frontdesk(&["check"]);
    assert!(ok, "{log}");
    assert!(
        default.contains("at start: `frontdesk run` answers with the lexical matcher for about"),
        "{default}"
    );
    write_config("wait_for_model = true\n");
    let (ok, waiting, log) = frontdesk(&["check"]);
    assert!(ok, "{log}");
    assert!(
        waiting.contains("at start: the bot answers once the semantic tier is built"),
        "{waiting}"
    );

    // A wrong value is a config error naming the key.
    write_config("wait_for_model = \"no\"\n");
    let (ok, _, err) = frontdesk(&chat);
    assert!(!ok);
    assert!(err.contains("wait_for_model"), "{err}");
}

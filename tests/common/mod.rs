//! Helpers shared by the integration tests (each test crate that needs them
//! declares `mod common;`): raw-disk scans, and `frontdesk run` / `frontdesk
//! report` as a user runs them.

#![allow(dead_code)]

use std::path::Path;

/// Whether any file under `dir` (recursively) holds `needle` anywhere in its
/// bytes: what a raw look at the store's files would find.
pub fn dir_contains(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let path = entry.unwrap().path();
        if path.is_dir() {
            dir_contains(&path, needle)
        } else {
            std::fs::read(&path)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
        }
    })
}

/// A `frontdesk run` process started by a test, killed if the test fails
/// before it stopped it.
pub struct Served {
    child: Option<std::process::Child>,
    /// Where its stderr (the log) goes.
    pub log: std::path::PathBuf,
}

impl Served {
    /// Start `frontdesk -vv run --data <data>` in `dir` (no frontdesk.toml
    /// there), with the demo intents and only the platform variables in
    /// `env` (every other FRONTDESK_TELEGRAM_* / FRONTDESK_DISCORD_* is removed).
    pub fn start(dir: &Path, data: &Path, env: &[(&str, String)]) -> Served {
        let log = dir.join("stderr.log");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"));
        cmd.current_dir(dir)
            .env_remove("RUST_LOG")
            .env_remove("FRONTDESK_CONFIG")
            .env_remove("FRONTDESK_DATA")
            .env(
                "FRONTDESK_INTENTS",
                Path::new(env!("CARGO_MANIFEST_DIR")).join("intents"),
            );
        for (key, _) in std::env::vars() {
            if key.starts_with("FRONTDESK_TELEGRAM_") || key.starts_with("FRONTDESK_DISCORD_") {
                cmd.env_remove(key);
            }
        }
        for (key, value) in env {
            cmd.env(key, value);
        }
        let child = cmd
            .args(["-vv", "run", "--data"])
            .arg(data)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the frontdesk binary runs");
        Served {
            child: Some(child),
            log,
        }
    }

    /// The log so far, without the terminal colours.
    pub fn log(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// Stop it with SIGTERM and wait (bounded) for a successful exit; returns the log.
    pub fn stop(self) -> String {
        let (code, log) = self.terminate();
        assert_eq!(code, Some(0), "log:\n{log}");
        log
    }

    /// Stop it with SIGTERM and wait (bounded) for it to exit; returns the
    /// exit code and the log.
    pub fn terminate(self) -> (Option<i32>, String) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        self.wait_exit()
    }

    /// Wait (bounded) for it to exit by itself; returns the exit code and the log.
    pub fn wait_exit(mut self) -> (Option<i32>, String) {
        let mut child = self.child.take().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let exit = loop {
            if let Some(exit) = child.try_wait().unwrap() {
                break exit;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("frontdesk run did not stop; log:\n{}", self.log());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        (exit.code(), self.log())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `frontdesk report --json --data <data> <args>`, parsed.
pub fn report_json(data: &Path, args: &[&str]) -> serde_json::Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .current_dir(data.parent().unwrap_or(data))
        .env_remove("FRONTDESK_CONFIG")
        .env_remove("FRONTDESK_DATA")
        .args(["report", "--json", "--data"])
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("report --json prints one JSON object")
}

/// `text` without ANSI escape sequences (`ESC [ … letter`).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

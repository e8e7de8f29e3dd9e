//! `frontdesk eval` and `frontdesk match` as a user runs them: the demo
//! intents against their labelled paraphrases (a regression floor for the
//! matcher), training from CSV rows, and bad CSV input.

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn frontdesk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(args)
        .current_dir(repo())
        .env_remove("FRONTDESK_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("the frontdesk binary runs")
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("--json prints one JSON object")
}

fn num(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is a number in {v}"))
}

/// The demo's paraphrases (not among the examples) stay at or above the
/// accuracy measured with stop words at full weight and C = 2 (closed-set
/// 89.4 %, in-scope 80.8 % at the fixed defaults, no wrong answer;
/// out-of-scope recall 93.3 %: two of the 30 out-of-scope questions are
/// offered as "did you mean", none answered), and at the calibrated
/// operating point at or above what calibration gave (unknown threshold
/// 0.307: in-scope 80.8 %, out-of-scope recall 93.3 %, 57.4 % answered
/// outright, none wrong). The calibrated in-scope bar was 81 % until the
/// SVMs were solved eight classes at a time: the same problem to the same
/// tolerance along another path moved the unknown threshold from 0.298 to
/// 0.307 and one of the 312 in-scope rows to "unknown" (a tolerance ten
/// times tighter gives 80.4 %: 81.4 % was the old path's rounding, not a
/// better model); the closed-set and out-of-scope figures did not move.
#[test]
fn demo_paraphrases_stay_at_their_accuracy() {
    let v = json(&frontdesk(&[
        "eval",
        "--intents",
        "intents",
        "--test",
        "tests/data/demo-paraphrases.csv",
        "--timed-queries",
        "1",
        "--json",
    ]));
    for key in [
        "in_scope_accuracy",
        "closed_set_accuracy",
        "oos_recall",
        "oos_precision",
        "threshold",
        "build_seconds",
        "queries_per_second",
        "p50_micros",
        "p99_micros",
        "answer_threshold",
        "calibration_seconds",
    ] {
        assert!(v[key].is_number(), "{key} missing in {v}");
    }
    assert_eq!(v["threshold_source"], "calibrated", "{v}");
    assert!(num(&v, "calibration_seconds") <= num(&v, "build_seconds"));
    assert!(num(&v, "answer_threshold") >= num(&v, "threshold"), "{v}");
    assert!(num(&v, "closed_set_accuracy") >= 0.89, "{v}");
    assert!(num(&v, "in_scope_accuracy") >= 0.805, "{v}");
    assert!(num(&v, "oos_recall") >= 0.93, "{v}");
    assert!(num(&v["bot"], "answered_right") >= 0.55, "{v}");
    assert!(num(&v["bot"], "answered_wrong") <= 0.01, "{v}");
    assert_eq!(num(&v["bot"], "oos_answered"), 0.0, "{v}");
    // The same matcher at the fixed defaults, in the same run.
    let d = &v["at_defaults"];
    assert_eq!(num(d, "threshold"), 0.3, "{v}");
    assert!(num(d, "in_scope_accuracy") >= 0.80, "{v}");
    assert!(num(d, "oos_recall") >= 0.93, "{v}");
}

#[test]
fn trains_from_rows_and_chooses_the_threshold_on_dev() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.to_str().unwrap().to_string()
    };
    let mut train = String::from("text,intent\n");
    for (intent, words) in [
        (
            "hours",
            [
                "when do you open",
                "opening hours",
                "what time do you close",
                "are you open on sunday",
            ],
        ),
        (
            "refund",
            [
                "i want my money back",
                "refund please",
                "how do i get a refund",
                "return for a refund",
            ],
        ),
        (
            "shipping",
            [
                "how long is delivery",
                "shipping time",
                "when will it arrive",
                "delivery takes how long",
            ],
        ),
    ] {
        for w in words {
            train.push_str(&format!("{w},{intent}\n"));
        }
    }
    train.push_str("tell me a joke,oos\n");
    let train = write("train.csv", &train);
    let dev = write(
        "dev.csv",
        "text,intent\nopening hours today,hours\nrefund my order,refund\nplay some music,oos\n",
    );
    let test = write(
        "test.csv",
        "text,intent\nwhat are your opening hours,hours\n\"a refund, please\",refund\ndelivery time,shipping\nsing a song,oos\n",
    );
    let v = json(&frontdesk(&[
        "eval",
        "--train",
        &train,
        "--dev",
        &dev,
        "--test",
        &test,
        "--holdout-splits",
        "2",
        "--timed-queries",
        "10",
        "--json",
    ]));
    assert_eq!(v["intents"], 3, "the oos row is not an intent: {v}");
    assert_eq!(v["threshold_source"], "dev");
    assert_eq!(v["language"], "en");
    assert!(num(&v, "closed_set_accuracy") == 1.0, "{v}");
    assert_eq!(v["holdout"]["splits"], 2);

    // The text report says the same in words.
    let out = frontdesk(&[
        "eval",
        "--train",
        &train,
        "--test",
        &test,
        "--holdout-splits",
        "0",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("closed-set accuracy  100.0 %"), "{text}");
    assert!(text.contains("queries/s"), "{text}");
    // Three intents of four examples: too few held-out samples to calibrate.
    assert!(
        text.contains("threshold            0.300 (defaults)"),
        "{text}"
    );
    assert!(text.contains("calibration needs at least 10"), "{text}");
    // This test file has an oos row: its recall is a figure.
    assert!(
        text.lines()
            .any(|l| l.starts_with("  oos recall ") && l.ends_with(" %")),
        "{text}"
    );

    // Without oos rows, no out-of-scope figure (precision would read 0 %).
    let in_scope_only = write(
        "in-scope.csv",
        "text,intent\nwhat are your opening hours,hours\nsomething else entirely,refund\n",
    );
    let out = frontdesk(&[
        "eval",
        "--train",
        &train,
        "--test",
        &in_scope_only,
        "--holdout-splits",
        "0",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("  oos precision        — (the test file has no oos rows)"),
        "{text}"
    );
    assert!(!text.contains("oos precision        0.0 %"), "{text}");
}

#[test]
fn bad_csv_is_an_error_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "text,intent\nfine,x\nno comma here\n").unwrap();
    let bad = bad.to_str().unwrap();
    let out = frontdesk(&["eval", "--train", bad, "--test", bad]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{bad}:3:")), "{err}");

    let only_oos = dir.path().join("oos.csv");
    std::fs::write(&only_oos, "text,intent\nhello,oos\n").unwrap();
    let only_oos = only_oos.to_str().unwrap();
    let out = frontdesk(&["eval", "--train", only_oos, "--test", only_oos]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no in-scope training rows"));

    // Neither --train nor --intents: a usage error.
    let out = frontdesk(&["eval", "--test", bad]);
    assert_eq!(out.status.code(), Some(2));

    // The semantic tier's weights out of range: a usage error naming the flag.
    for (flag, value) in [
        ("--semantic-scale", "-1"),
        ("--semantic-scale", "11"),
        ("--semantic-scale", "nan"),
        ("--ensemble-weight", "1.5"),
        ("--ensemble-weight", "-0.5"),
        ("--ensemble-weight", "x"),
        ("--ensemble-weight", ""),
        ("--nearest-weight", "2"),
        ("--nearest-weight", "-0.1"),
        ("--nearest-weight", "inf"),
    ] {
        let out = frontdesk(&["eval", "--train", bad, "--test", bad, flag, value]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag), "{flag} {value}: {err}");
    }
}

#[test]
fn match_explains_what_the_bot_would_do() {
    let out = frontdesk(&["match", "¿A qué hora abren?"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("answer with `opening_hours`"), "{text}");
    assert!(text.contains("matched in: es"), "{text}");
    let out = frontdesk(&["match", "purple elephant banana"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("unknown"));
}

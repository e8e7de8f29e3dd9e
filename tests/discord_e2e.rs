//! End-to-end tests of the Discord channel: the real serenity client and the
//! real engine against the fake Discord of `tests/discord_fake/` on
//! 127.0.0.1 (REST plus a plain-JSON gateway), in-process and through the
//! real `frontdesk run` binary.
//!
//! Waits are bounded; nothing asserts on speed.

mod common;
mod discord_fake;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;

use discord_fake::*;
use frontdesk::channels::discord::{self, inbound};
use frontdesk::channels::runtime::{Dispatcher, Shutdown};
use frontdesk::config::{Config, DiscordConfig, Secret};
use frontdesk::engine::{Engine, EngineSettings};
use frontdesk::report::Report;
use frontdesk::store::{SledStore, Store};

// ----- the channel under test ------------------------------------------------

fn intents_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("intents")
}

fn discord_config(fake: &Fake) -> DiscordConfig {
    DiscordConfig {
        token: Secret::new(TOKEN),
        staff_channel: Some(STAFF),
        support_channels: vec![SUPPORT],
        api_url: Some(fake.api_url.clone()),
        staff_role: Some(STAFF_ROLE),
        staff_ids: Vec::new(),
    }
}

/// The id of the last successful post to `channel` whose text contains `needle`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whole_flow_through_the_real_serenity_client() {
    let fake = Fake::start().await;
    let data = tempfile::tempdir().unwrap();
    let config = Config::default();
    let knowledge = frontdesk::cli::load_knowledge(&config, &intents_dir()).unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(data.path()).unwrap());
    let engine = Arc::new(Engine::new(
        store.clone(),
        knowledge,
        EngineSettings::from_config(&config),
    ));
    let (trigger, shutdown) = Shutdown::new();
    let channel = tokio::spawn(discord::run(
        discord_config(&fake),
        Dispatcher::new(engine),
        shutdown,
    ));

    // Connect: only the three intents, plain JSON, API v10.
    let identify = fake
        .wait_for("IDENTIFY", |s| s.identify.first().cloned())
        .await;
    assert_eq!(
        identify["intents"], 37376,
        "GUILD_MESSAGES | DIRECT_MESSAGES | MESSAGE_CONTENT"
    );
    assert!(identify["token"].as_str().unwrap().ends_with(TOKEN));
    let gateway_path = fake.state.lock().unwrap().gateway_paths[0].clone();
    assert_eq!(
        gateway_path, "/?v=10",
        "no compression or encoding asked for"
    );

    let mut ids = Ids(1350000000000000000);

    // 1. A question in a DM is answered, with "Did that answer your question?".
    let first = dm_message(ids.next(), customer(), "When are you open?");
    fake.dispatch("MESSAGE_CREATE", first.clone());
    let did_it_help = fake
        .wait_for("the answer and its buttons", |s| {
            s.posts(DM)
                .iter()
                .any(|c| c.custom_ids() == ["yes", "no"])
                .then(|| posted(s, DM, "answer your question"))
                .flatten()
        })
        .await;
    let answers = {
        let s = fake.state.lock().unwrap();
        let answers = s.posts(DM).len();
        assert!(answers >= 2, "an answer, then the question");
        assert!(
            s.posts(DM)[0].content().contains("Monday"),
            "{:?}",
            s.posts(DM)[0]
        );
        answers
    };
    // The gateway replays the same message, and the bot's own message comes back:
    // neither is answered.
    fake.dispatch("MESSAGE_CREATE", first);
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_message(ids.next(), bot_user(), "Did that answer your question?"),
    );

    // 2. [No, talk to a person] → the buttons go, a ticket, a ping with a thread.
    let press = ids.next();
    fake.dispatch(
        "INTERACTION_CREATE",
        dm_press(press, fake.message(did_it_help), "no"),
    );
    let ack = fake
        .wait_for("the press acknowledged", |s| {
            s.calls
                .iter()
                .find(|c| c.path.starts_with(&format!("/interactions/{press}/")))
                .cloned()
        })
        .await;
    assert_eq!(ack.body["type"], 7, "UPDATE_MESSAGE");
    assert_eq!(ack.body["data"]["components"], json!([]), "buttons removed");
    let ping = fake
        .wait_for("the ping", |s| posted(s, STAFF, "Ticket #1"))
        .await;
    {
        let s = fake.state.lock().unwrap();
        let call = s
            .posts(STAFF)
            .into_iter()
            .find(|c| c.content().contains("Ticket #1"))
            .unwrap();
        assert_eq!(call.custom_ids(), ["claim:1", "resolve:1"]);
        assert_eq!(call.body["allowed_mentions"]["parse"], json!([]));
    }
    let thread = fake
        .wait_for("the ticket's thread", |s| {
            s.calls
                .iter()
                .find(|c| {
                    c.path == format!("/channels/{STAFF}/messages/{ping}/threads")
                        && c.status == 200
                })
                .cloned()
        })
        .await;
    assert!(
        thread.body["name"]
            .as_str()
            .unwrap()
            .starts_with("Ticket #1")
    );
    let thread_id = ping; // a thread started from a message has its id
    fake.wait_for("the customer told about the ticket", |s| {
        posted(s, DM, "ticket #1")
    })
    .await;

    // 3. Someone without the staff role tries a command: refused, nothing else.
    let refused = ids.next();
    fake.dispatch(
        "MESSAGE_CREATE",
        guild_message(
            refused,
            STAFF,
            user(OUTSIDER, "lurker", "Lurker"),
            &[],
            None,
            "!claim 1",
        ),
    );
    let notice = fake
        .wait_for("the refusal", |s| {
            s.posts(STAFF)
                .into_iter()
                .find(|c| c.content() == inbound::NOT_STAFF_COMMAND)
                .cloned()
        })
        .await;
    assert_eq!(
        notice.body["message_reference"]["message_id"],
        refused.to_string()
    );

    // 4. Ana presses [Claim]: deferred, the ping edited, the customer told, the thread told.
    let claim = ids.next();
    fake.dispatch(
        "INTERACTION_CREATE",
        staff_press(
            claim,
            fake.message(ping),
            "claim:1",
            ana(),
            &[STAFF_ROLE],
            "Ana",
        ),
    );
    let edit = fake
        .wait_for("the ping edited", |s| {
            s.calls
                .iter()
                .find(|c| {
                    c.method == "PATCH" && c.path == format!("/channels/{STAFF}/messages/{ping}")
                })
                .cloned()
        })
        .await;
    assert!(
        edit.content().contains("claimed by Ana"),
        "{}",
        edit.content()
    );
    assert_eq!(edit.custom_ids(), ["resolve:1"]);
    fake.wait_for("the claim told", |s| {
        let acked = s
            .calls
            .iter()
            .any(|c| c.path.starts_with(&format!("/interactions/{claim}/")) && c.body["type"] == 6);
        (acked
            && posted(s, DM, "Ana").is_some()
            && posted(s, thread_id, "claimed by Ana").is_some())
        .then_some(())
    })
    .await;

    // `!tickets` in the staff channel answers there.
    fake.dispatch(
        "MESSAGE_CREATE",
        guild_message(
            ids.next(),
            STAFF,
            ana(),
            &[STAFF_ROLE],
            Some("Ana"),
            "!tickets",
        ),
    );
    fake.wait_for("the ticket list", |s| posted(s, STAFF, "Open tickets (1)"))
        .await;

    // 5. Relay both ways: customer → thread, thread → customer.
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_message(ids.next(), customer(), "It is order 1234"),
    );
    fake.wait_for("the customer's message in the thread", |s| {
        posted(s, thread_id, "#1 María G.: It is order 1234")
    })
    .await;
    fake.dispatch(
        "MESSAGE_CREATE",
        guild_message(
            ids.next(),
            thread_id,
            ana(),
            &[STAFF_ROLE],
            Some("Ana"),
            "Found it, the refund is on its way.",
        ),
    );
    fake.wait_for("the staff reply at the customer", |s| {
        posted(s, DM, "Ana: Found it, the refund is on its way.")
    })
    .await;

    // 6. Resolve from the staff channel with a note too long for one message
    //    (2 parts); Discord rate-limits the second part once. The retry sends
    //    only what is missing, then the rating question, in order.
    let note = format!("Refund sent: {}", "0123456789".repeat(250));
    let resolved = format!("Your request #1 has been resolved: {note}");
    fake.fail_after(
        1,
        "POST",
        &format!("/channels/{DM}/messages"),
        429,
        json!({"message": "You are being rate limited.", "retry_after": 0.5, "global": false}),
    );
    fake.dispatch(
        "MESSAGE_CREATE",
        guild_message(
            ids.next(),
            STAFF,
            ana(),
            &[STAFF_ROLE],
            Some("Ana"),
            &format!("!resolve 1 {note}"),
        ),
    );
    let rating = fake
        .wait_for("the resolution and the rating question", |s| {
            posted(s, DM, "has been resolved")?;
            posted(s, DM, "How satisfied")
        })
        .await;
    {
        let s = fake.state.lock().unwrap();
        let limited = s.with_status(429);
        assert_eq!(limited.len(), 1, "one 429");
        let posts = s.posts(DM);
        let i = posts
            .iter()
            .position(|c| c.content().starts_with("Your request #1 has been resolved"))
            .unwrap();
        assert_eq!(posts[i].content().chars().count(), 2000);
        assert_eq!(
            limited[0].content(),
            posts[i + 1].content(),
            "the second part was limited"
        );
        assert_eq!(
            format!("{}{}", posts[i].content(), posts[i + 1].content()),
            resolved
        );
        assert_eq!(
            count(&s, DM, "has been resolved"),
            1,
            "the first part was not sent again"
        );
        assert_eq!(
            count(&s, DM, &"0123456789".repeat(20)),
            2,
            "each part exactly once"
        );
        assert!(
            posts[i + 2].content().contains("How satisfied"),
            "the order is kept"
        );
        assert_eq!(
            posts[i + 2].custom_ids(),
            ["rate:1", "rate:2", "rate:3", "rate:4", "rate:5"]
        );
    }
    fake.wait_for("the ping shows the resolution", |s| {
        s.calls
            .iter()
            .rev()
            .find(|c| c.method == "PATCH" && c.content().contains("resolved by Ana"))
            .filter(|c| c.body["components"] == json!([]))
            .map(|_| ())
    })
    .await;

    // 7. The customer rates: stored and counted.
    fake.dispatch(
        "INTERACTION_CREATE",
        dm_press(ids.next(), fake.message(rating), "rate:5"),
    );
    fake.wait_for("the thanks", |s| posted(s, DM, "Thank you for your rating"))
        .await;
    let report = Report::compute(store.as_ref()).unwrap();
    assert_eq!(report.ratings, 1);
    assert_eq!(report.csat_average, Some(5.0));
    assert_eq!(report.tickets_resolved, 1);
    assert_eq!(report.escalated, 1);

    {
        let s = fake.state.lock().unwrap();
        assert_eq!(
            count(&s, DM, "Monday"),
            1,
            "the replayed message and the bot's own were not answered"
        );
        assert!(s.posts(DM).len() > answers);
        assert!(
            s.with_status(404).is_empty(),
            "unexpected calls: {:?}",
            s.with_status(404)
        );
    }

    // 8. Graceful stop.
    trigger.trigger();
    let stopped = tokio::time::timeout(WAIT, channel)
        .await
        .expect("the channel stops after shutdown");
    stopped.unwrap().unwrap();
}

/// The real binary carries the whole flow against the fake Discord: a DM
/// answered from an intent, an escalation (ping with [Claim] [Resolve] and a
/// thread), the claim by a button, relays both ways, a rate-limited send
/// retried after the wait Discord asked for, the resolution and the rating;
/// then SIGTERM, and `frontdesk report` reads the rating from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frontdesk_run_carries_the_whole_flow_and_the_report_counts_it() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served = common::Served::start(dir.path(), &data, &fake.env());
    fake.wait_for("IDENTIFY", |s| s.identify.first().cloned())
        .await;
    let mut ids = Ids(1350000000000000000);

    // 1. A question in a DM: answered from the intent, with [Yes] [No].
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_message(ids.next(), customer(), "When are you open?"),
    );
    let did_it_help = fake
        .wait_for("the answer and its buttons", |s| {
            posted(s, DM, "Monday")?;
            s.posts(DM)
                .into_iter()
                .rev()
                .find(|c| c.custom_ids() == ["yes", "no"])
                .and_then(|c| c.id)
        })
        .await;

    // 2. [No, talk to a person]: a ping with [Claim] [Resolve] and a thread.
    fake.dispatch(
        "INTERACTION_CREATE",
        dm_press(ids.next(), fake.message(did_it_help), "no"),
    );
    let ping = fake
        .wait_for("the ping", |s| posted(s, STAFF, "Ticket #1"))
        .await;
    assert_eq!(
        fake.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .find(|c| c.id == Some(ping))
            .unwrap()
            .custom_ids(),
        ["claim:1", "resolve:1"]
    );
    fake.wait_for("the ticket's thread", |s| {
        s.calls
            .iter()
            .any(|c| {
                c.path == format!("/channels/{STAFF}/messages/{ping}/threads") && c.status == 200
            })
            .then_some(())
    })
    .await;
    let thread = ping; // a thread started from a message has its id
    fake.wait_for("the customer told about the ticket", |s| {
        posted(s, DM, "ticket #1")
    })
    .await;

    // 3. Ana presses [Claim] (no staff role configured: the staff channel's
    //    members are staff).
    fake.dispatch(
        "INTERACTION_CREATE",
        staff_press(ids.next(), fake.message(ping), "claim:1", ana(), &[], "Ana"),
    );
    fake.wait_for("the claim", |s| {
        let edited = s.calls.iter().any(|c| {
            c.method == "PATCH"
                && c.path == format!("/channels/{STAFF}/messages/{ping}")
                && c.content().contains("claimed by Ana")
        });
        (edited && posted(s, DM, "Ana").is_some()).then_some(())
    })
    .await;

    // 4. Relay: the customer's message into the thread; Ana's reply in the
    //    thread to the customer. Discord rate-limits that reply once, asking
    //    for 2.5 s: the outbox waits that long (not its own 1 s), then sends
    //    it once.
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_message(ids.next(), customer(), "It is order 1234"),
    );
    fake.wait_for("the customer's message in the thread", |s| {
        posted(s, thread, "#1 María G.: It is order 1234")
    })
    .await;
    fake.fail_after(
        0,
        "POST",
        &format!("/channels/{DM}/messages"),
        429,
        json!({"message": "You are being rate limited.", "retry_after": 2.5, "global": false}),
    );
    fake.dispatch(
        "MESSAGE_CREATE",
        guild_message(
            ids.next(),
            thread,
            ana(),
            &[],
            Some("Ana"),
            "Found it, the refund is on its way.",
        ),
    );
    fake.wait_for("the staff reply at the customer", |s| {
        posted(s, DM, "Ana: Found it, the refund is on its way.")
    })
    .await;
    {
        let s = fake.state.lock().unwrap();
        let limited = s.with_status(429);
        assert_eq!(limited.len(), 1);
        assert!(limited[0].content().contains("Found it"));
        assert_eq!(count(&s, DM, "Found it"), 1, "sent once after the 429");
    }
    let log = served.log();
    assert!(
        log.contains("retry_in_ms=2500"),
        "the outbox waits what Discord asked for:\n{log}"
    );

    // 5. Resolved from the thread; the customer is asked for a rating and gives it.
    fake.dispatch(
        "MESSAGE_CREATE",
        guild_message(
            ids.next(),
            thread,
            ana(),
            &[],
            Some("Ana"),
            "!resolve 1 Refund sent",
        ),
    );
    let rating = fake
        .wait_for("the resolution and the rating question", |s| {
            posted(s, DM, "has been resolved")?;
            posted(s, DM, "How satisfied")
        })
        .await;
    fake.dispatch(
        "INTERACTION_CREATE",
        dm_press(ids.next(), fake.message(rating), "rate:5"),
    );
    fake.wait_for("the thanks", |s| posted(s, DM, "Thank you for your rating"))
        .await;

    // 6. A customer in the support channel is answered there, mentioned.
    fake.dispatch(
        "MESSAGE_CREATE",
        guild_message(
            ids.next(),
            SUPPORT,
            customer(),
            &[],
            None,
            "When are you open?",
        ),
    );
    let answer = fake
        .wait_for("the answer in the support channel", |s| {
            s.posts(SUPPORT).first().map(|c| (*c).clone())
        })
        .await;
    assert!(
        answer.content().starts_with(&format!("<@{CUSTOMER}> ")),
        "{}",
        answer.content()
    );
    {
        let s = fake.state.lock().unwrap();
        assert!(s.with_status(404).is_empty(), "{:?}", s.with_status(404));
    }

    // 7. SIGTERM: a clean stop, no token in the log; the rating is in the store.
    let log = tokio::task::spawn_blocking(move || served.stop())
        .await
        .unwrap();
    assert!(
        log.contains("Discord: connected"),
        "-vv logs the channel:\n{log}"
    );
    assert!(!log.contains(TOKEN), "the token leaked into the log");
    assert!(
        !log.contains("SeCrEt"),
        "part of the token leaked into the log"
    );
    for args in [&[][..], &["--channel", "discord"][..]] {
        let report = common::report_json(&data, args);
        assert_eq!(report["ratings"], 1, "{report}");
        assert_eq!(report["csat_average"], 5.0, "{report}");
        assert_eq!(report["tickets_resolved"], 1, "{report}");
        assert_eq!(report["tickets_open"], 0, "{report}");
    }
    let telegram = common::report_json(&data, &["--channel", "telegram"]);
    assert_eq!(telegram["ratings"], 0, "{telegram}");
}

/// `frontdesk run` with Discord alone and a refused token: it exits at once
/// with the reason, said once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frontdesk_run_with_a_refused_token_says_why_once() {
    let fake = Fake::start().await;
    fake.fail_after(
        0,
        "GET",
        "/users/@me",
        401,
        json!({"message": "401: Unauthorized", "code": 0}),
    );
    let dir = tempfile::tempdir().unwrap();
    let served = common::Served::start(dir.path(), &dir.path().join("data"), &fake.env());
    let (code, log) = tokio::task::spawn_blocking(move || served.wait_exit())
        .await
        .unwrap();
    assert_eq!(code, Some(1), "{log}");
    assert_eq!(
        log.matches("Discord refused the bot token").count(),
        1,
        "{log}"
    );
    assert!(
        log.contains("error: discord stopped: Discord refused"),
        "{log}"
    );
    assert!(!log.contains("SeCrEt"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_channel_or_intent_stops_with_what_to_do() {
    let data = tempfile::tempdir().unwrap();
    let config = Config::default();
    let knowledge = || frontdesk::cli::load_knowledge(&config, &intents_dir()).unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(data.path()).unwrap());
    let engine = Arc::new(Engine::new(
        store,
        knowledge(),
        EngineSettings::from_config(&config),
    ));

    // The channel's error when the fake answers `path`'s first call with
    // `status` and `body`.
    let refused_at_start = async |path: &str, status: u16, body: serde_json::Value| {
        let fake = Fake::start().await;
        fake.fail_after(0, "GET", path, status, body);
        let (_trigger, shutdown) = Shutdown::new();
        let run = discord::run(
            discord_config(&fake),
            Dispatcher::new(engine.clone()),
            shutdown,
        );
        tokio::time::timeout(WAIT, run).await.unwrap().unwrap_err()
    };

    // A wrong token: the first REST call answers 401.
    let error = refused_at_start(
        "/users/@me",
        401,
        json!({"message": "401: Unauthorized", "code": 0}),
    )
    .await;
    assert!(
        matches!(error, discord::DiscordError::Unauthorized),
        "{error}"
    );
    assert!(error.to_string().contains("FRONTDESK_DISCORD_TOKEN"));
    assert!(!error.to_string().contains(TOKEN));

    // A staff channel the bot cannot see.
    let error = refused_at_start(
        &format!("/channels/{STAFF}"),
        404,
        json!({"message": "Unknown Channel", "code": 10003}),
    )
    .await;
    assert!(
        matches!(error, discord::DiscordError::StaffChannel { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("Unknown Channel"), "{error}");

    // A server that answers but is not Discord's API (a wrong base URL):
    // 404 on the first call. Said as an answer, not as "cannot reach".
    let error = refused_at_start(
        "/users/@me",
        404,
        json!({"message": "404: Not Found", "code": 0}),
    )
    .await;
    assert!(
        matches!(error, discord::DiscordError::Refused { .. }),
        "{error}"
    );
    let said = error.to_string();
    assert!(
        said.contains("HTTP 404") && said.contains("api_url"),
        "{said}"
    );
    assert!(
        !said.contains("cannot reach") && !said.contains(TOKEN),
        "{said}"
    );

    // MESSAGE CONTENT not enabled in the portal: the gateway closes with 4014.
    let fake = Fake::start().await;
    fake.state.lock().unwrap().refuse_intents = true;
    let (_trigger, shutdown) = Shutdown::new();
    let run = discord::run(discord_config(&fake), Dispatcher::new(engine), shutdown);
    let error = tokio::time::timeout(WAIT, run).await.unwrap().unwrap_err();
    assert!(
        matches!(error, discord::DiscordError::DisallowedIntents),
        "{error}"
    );
    assert!(error.to_string().contains("MESSAGE CONTENT INTENT"));
}

/// Discord unreachable or failing at start (a dropped connection, then a 502,
/// on the first call): the channel keeps trying and connects once it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_unreachable_at_start_is_tried_again_until_it_answers() {
    let data = tempfile::tempdir().unwrap();
    let config = Config::default();
    let knowledge = frontdesk::cli::load_knowledge(&config, &intents_dir()).unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(data.path()).unwrap());
    let engine = Arc::new(Engine::new(
        store,
        knowledge,
        EngineSettings::from_config(&config),
    ));
    let fake = Fake::start().await;
    fake.state.lock().unwrap().hang_up = 1;
    fake.fail_after(
        0,
        "GET",
        "/users/@me",
        502,
        json!({"message": "Bad Gateway", "code": 0}),
    );
    let (trigger, shutdown) = Shutdown::new();
    let channel = tokio::spawn(discord::run(
        discord_config(&fake),
        Dispatcher::new(engine),
        shutdown,
    ));
    fake.wait_for("IDENTIFY after the failed attempts", |s| {
        s.identify.first().cloned()
    })
    .await;
    {
        let s = fake.state.lock().unwrap();
        let me: Vec<u16> = s
            .calls
            .iter()
            .filter(|c| c.path == "/users/@me")
            .map(|c| c.status)
            .collect();
        assert_eq!(me, [0, 502, 200], "dropped, refused, then accepted");
    }
    trigger.trigger();
    tokio::time::timeout(WAIT, channel)
        .await
        .expect("the channel stops after shutdown")
        .unwrap()
        .unwrap();

    // Shutdown while it waits to try again: a clean stop.
    let fake = Fake::start().await;
    fake.state.lock().unwrap().hang_up = usize::MAX;
    let data = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(data.path()).unwrap());
    let engine = Arc::new(Engine::new(
        store,
        frontdesk::cli::load_knowledge(&config, &intents_dir()).unwrap(),
        EngineSettings::from_config(&config),
    ));
    let (trigger, shutdown) = Shutdown::new();
    let channel = tokio::spawn(discord::run(
        discord_config(&fake),
        Dispatcher::new(engine),
        shutdown,
    ));
    fake.wait_for("a first attempt", |s| s.calls.first().cloned())
        .await;
    trigger.trigger();
    tokio::time::timeout(WAIT, channel)
        .await
        .expect("the channel stops while it waits to try again")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forget_slash_command_is_registered_and_asks_before_deleting() {
    let fake = Fake::start().await;
    let data = tempfile::tempdir().unwrap();
    let config = Config::default();
    let knowledge = frontdesk::cli::load_knowledge(&config, &intents_dir()).unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(data.path()).unwrap());
    let engine = Arc::new(Engine::new(
        store.clone(),
        knowledge,
        EngineSettings::from_config(&config),
    ));
    let (trigger, shutdown) = Shutdown::new();
    let channel = tokio::spawn(discord::run(
        discord_config(&fake),
        Dispatcher::new(engine),
        shutdown,
    ));

    // At connect, /forget goes into Discord's command list, usable in DMs.
    let registered = fake
        .wait_for("the /forget command registered", |s| {
            s.calls
                .iter()
                .find(|c| c.method == "POST" && c.path == format!("/applications/{BOT}/commands"))
                .cloned()
        })
        .await;
    assert_eq!(registered.body["name"], "forget");
    assert_eq!(registered.body["dm_permission"], true);
    assert!(
        registered.body["description"]
            .as_str()
            .unwrap()
            .contains("asks first")
    );

    let mut ids = Ids(1360000000000000000);
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_message(ids.next(), customer(), "When are you open?"),
    );
    fake.wait_for("the answer", |s| posted(s, DM, "Monday"))
        .await;

    // The slash command: acknowledged privately at once, then the question.
    let command = ids.next();
    fake.dispatch("INTERACTION_CREATE", dm_command(command, "forget"));
    let ack = fake
        .wait_for("the command acknowledged", |s| {
            s.calls
                .iter()
                .find(|c| c.path.starts_with(&format!("/interactions/{command}/")))
                .cloned()
        })
        .await;
    assert_eq!(ack.body["type"], 4, "CHANNEL_MESSAGE_WITH_SOURCE");
    assert_eq!(ack.body["data"]["flags"], 64, "ephemeral");
    // In the customer's Discord language (the command says es-ES).
    assert_eq!(ack.body["data"]["content"], inbound::forget_ack("es-ES"));
    assert_ne!(inbound::forget_ack("es-ES"), inbound::FORGET_ACK);
    let question = fake
        .wait_for("the confirmation question", |s| {
            s.posts(DM)
                .iter()
                .find(|c| c.custom_ids() == ["forget:yes", "forget:no"])
                .and_then(|c| c.id)
        })
        .await;
    {
        let s = fake.state.lock().unwrap();
        let call = s
            .posts(DM)
            .into_iter()
            .find(|c| c.id == Some(question))
            .unwrap();
        // The command carries the Discord locale: the question is in Spanish.
        assert!(call.content().contains("Esto borra"), "{:?}", call.body);
    }
    let key = frontdesk::model::CustomerKey::new(
        frontdesk::model::Channel::Discord,
        CUSTOMER.to_string(),
    );
    assert!(
        store.customer(&key).unwrap().is_some(),
        "nothing deleted yet"
    );

    // [Sí, borrar todo] deletes (this press carries the locale en-US).
    fake.dispatch(
        "INTERACTION_CREATE",
        dm_press(ids.next(), fake.message(question), "forget:yes"),
    );
    fake.wait_for("the deletion confirmed", |s| {
        posted(s, DM, "Done: I deleted 1 conversation(s)")
    })
    .await;
    assert!(store.customer(&key).unwrap().is_none());
    assert!(store.customer_records(&key).unwrap().is_empty());
    {
        let s = fake.state.lock().unwrap();
        assert!(s.with_status(404).is_empty(), "{:?}", s.with_status(404));
    }

    // A command it does not know is answered privately, not passed on.
    let unknown = ids.next();
    fake.dispatch("INTERACTION_CREATE", dm_command(unknown, "dance"));
    let ack = fake
        .wait_for("the unknown command acknowledged", |s| {
            s.calls
                .iter()
                .find(|c| c.path.starts_with(&format!("/interactions/{unknown}/")))
                .cloned()
        })
        .await;
    assert!(
        ack.body["data"]["content"]
            .as_str()
            .unwrap()
            .contains("/dance")
    );

    trigger.trigger();
    tokio::time::timeout(WAIT, channel)
        .await
        .expect("the channel stops after shutdown")
        .unwrap()
        .unwrap();
}

//! End-to-end tests of the Telegram channel against a fake Bot API server on
//! 127.0.0.1 (`tests/telegram_fake/`): the real adapter and engine in-process
//! on a temporary data directory with the demo intents, and once the real
//! `frontdesk run` binary.
//!
//! Failures are the fake's: it answers chosen calls with HTTP 500, 502 (an
//! HTML body) or 429 with `retry_after: 1`. A restart stops the channel,
//! makes the fake forget which updates were confirmed and wipes the stored
//! offset (a crash between handling and confirming), then starts a new
//! channel on the same directory. Every wait is bounded.

mod telegram_fake;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use frontdesk::channels::runtime::{Dispatcher, Shutdown, ShutdownTrigger};
use frontdesk::channels::telegram::{self, TelegramError, TelegramSettings};
use frontdesk::config::{Config, Secret, TelegramConfig};
use frontdesk::engine::{Engine, EngineSettings};
use frontdesk::report::Report;
use frontdesk::store::{SledStore, Store};
use serde_json::Value;
use telegram_fake::{
    BOT_USERNAME, FakeTelegram, Fault, STAFF_CHAT, TOKEN, User, callback_data, id_of,
};
use tokio::task::JoinHandle;

const LUCIA: User = User {
    id: 111_222_333,
    first_name: "Lucía",
    last_name: Some("Gómez"),
    username: Some("lucia_g"),
    language_code: Some("es"),
};
const MARCO: User = User {
    id: 555_000_222,
    first_name: "Marco",
    last_name: Some("Rossi"),
    username: Some("marco_r"),
    language_code: Some("it"),
};
/// Listed in `staff_ids`: staff in a private chat too.
const ANNA: User = User {
    id: 555_000_111,
    first_name: "Anna",
    last_name: None,
    username: None,
    language_code: Some("en"),
};
/// A user whose chat the Bot API does not find (the fake refuses chat ids below 1000).
const GHOST: User = User {
    id: 42,
    first_name: "Ghost",
    last_name: None,
    username: None,
    language_code: Some("en"),
};
const TOM: User = User {
    id: 333_444_555,
    first_name: "Tom",
    last_name: None,
    username: Some("tom"),
    language_code: Some("en"),
};

fn settings(fake: &FakeTelegram) -> TelegramSettings {
    let mut s = TelegramSettings::from_config(&TelegramConfig {
        token: Secret::new(TOKEN),
        staff_chat: Some(STAFF_CHAT),
        api_url: Some(fake.url.clone()),
        staff_ids: vec![ANNA.id as u64],
    })
    .unwrap();
    s.poll_timeout = Duration::from_secs(1);
    s.request_timeout = Duration::from_secs(5);
    s.retry_min = Duration::from_millis(50);
    s.retry_max = Duration::from_millis(400);
    s
}

/// The channel running in-process over an engine on `dir`.
struct Running {
    trigger: ShutdownTrigger,
    task: JoinHandle<Result<(), TelegramError>>,
    store: Arc<dyn Store>,
}

async fn start(dir: &Path, fake: &FakeTelegram) -> Running {
    start_with(dir, settings(fake)).await
}

async fn start_with(dir: &Path, settings: TelegramSettings) -> Running {
    let config = Config::default();
    let intents = Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
    let knowledge = frontdesk::cli::load_knowledge(&config, &intents).unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).unwrap());
    let engine = Arc::new(Engine::new(
        store.clone(),
        knowledge,
        EngineSettings::from_config(&config),
    ));
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(telegram::run(settings, Dispatcher::new(engine), shutdown));
    Running {
        trigger,
        task,
        store,
    }
}

impl Running {
    /// Ask the channel to stop; it must stop cleanly and soon.
    async fn stop(self) -> Arc<dyn Store> {
        self.trigger.trigger();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("the channel stops after the shutdown signal")
            .expect("the channel task does not panic")
            .expect("the channel stops without an error");
        self.store
    }
}

/// The latest bot message to `chat` containing `needle`, waited for.
async fn message(fake: &FakeTelegram, chat: i64, needle: &str) -> Value {
    fake.wait_message(chat, needle).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spanish_customer_is_answered_escalated_helped_and_rates() {
    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bot = start(dir.path(), &fake).await;
    let lucia = LUCIA.id;

    // A question in Spanish: answered in Spanish, with the feedback keyboard.
    fake.text(&LUCIA, "¿A qué hora abren?");
    message(&fake, lucia, "Abrimos de lunes a viernes").await;
    let question = message(&fake, lucia, "¿Eso responde a tu pregunta?").await;
    assert_eq!(callback_data(&question), vec!["yes", "no"]);
    assert!(
        !fake.webhook_set(),
        "the webhook was deleted before polling"
    );

    // [No]: the press is answered, its keyboard removed, a ticket opened and staff pinged.
    fake.press(&LUCIA, lucia, id_of(&question), "no");
    message(&fake, lucia, "(ticket #1)").await;
    let ping = message(&fake, STAFF_CHAT, "🔔 Ticket #1").await;
    let ping_id = id_of(&ping);
    assert!(
        ping["text"]
            .as_str()
            .unwrap()
            .contains("Lucía Gómez (@lucia_g)"),
        "{ping}"
    );
    assert!(
        ping["text"].as_str().unwrap().contains("language: es"),
        "{ping}"
    );
    assert_eq!(callback_data(&ping), vec!["claim:1", "resolve:1"]);
    fake.wait_for("the keyboard of the pressed message removed", |f| {
        f.find(lucia, "¿Eso responde")
            .is_some_and(|m| callback_data(&m).is_empty())
    })
    .await;

    // [Claim] in the staff group: the ping shows who, the customer is told.
    fake.press(&MARCO, STAFF_CHAT, ping_id, "claim:1");
    message(&fake, lucia, "Marco Rossi de nuestro equipo").await;
    fake.wait_for("the ping says claimed", |f| {
        f.find(STAFF_CHAT, "🔔 Ticket #1").is_some_and(|m| {
            m["text"]
                .as_str()
                .unwrap()
                .contains("claimed by Marco Rossi")
        })
    })
    .await;
    let note = message(&fake, STAFF_CHAT, "Ticket #1 claimed by Marco Rossi").await;
    assert_eq!(
        id_of(&note["reply_to_message"]),
        ping_id,
        "notes go under the ping"
    );
    assert_eq!(
        callback_data(&fake.find(STAFF_CHAT, "🔔 Ticket #1").unwrap()),
        vec!["resolve:1"]
    );

    // The customer writes: posted under the ping. Staff reply to that post: relayed.
    fake.text(&LUCIA, "Es el pedido 1234");
    let relayed = message(&fake, STAFF_CHAT, "Es el pedido 1234").await;
    assert_eq!(id_of(&relayed["reply_to_message"]), ping_id);
    fake.staff_text(
        &MARCO,
        "Gracias, lo reviso ahora mismo",
        Some(id_of(&relayed)),
    );
    message(&fake, lucia, "Marco Rossi: Gracias, lo reviso ahora mismo").await;

    // /resolve with the bot's name: resolved, rating keyboard in one row.
    fake.staff_text(
        &MARCO,
        &format!("/resolve@{BOT_USERNAME} 1 Reembolso enviado"),
        None,
    );
    message(&fake, lucia, "Reembolso enviado").await;
    let rating = message(&fake, lucia, "¿Qué tan satisfecho").await;
    assert_eq!(
        rating["reply_markup"]["inline_keyboard"][0]
            .as_array()
            .unwrap()
            .len(),
        5,
        "the five ratings side by side: {rating}"
    );
    fake.wait_for("the ping says resolved, without buttons", |f| {
        f.find(STAFF_CHAT, "🔔 Ticket #1").is_some_and(|m| {
            m["text"]
                .as_str()
                .unwrap()
                .contains("resolved by Marco Rossi")
                && callback_data(&m).is_empty()
        })
    })
    .await;

    // The rating is stored.
    fake.press(&LUCIA, lucia, id_of(&rating), "rate:5");
    message(&fake, lucia, "¡Gracias por tu valoración!").await;
    let store = bot.stop().await;
    let report = Report::compute(store.as_ref()).unwrap();
    assert_eq!(report.tickets_resolved, 1);
    assert_eq!(report.ratings, 1);
    assert_eq!(report.csat_average, Some(5.0));

    // Every press was answered; nothing was sent twice; no token in any body.
    assert_eq!(fake.ok_calls("answerCallbackQuery").len(), 3);
    for needle in [
        "Abrimos",
        "(ticket #1)",
        "Marco Rossi de nuestro",
        "¡Gracias por tu valoración!",
    ] {
        assert_eq!(fake.count(lucia, needle), 1, "{needle}");
    }
    assert_eq!(fake.count(STAFF_CHAT, "🔔 Ticket #1"), 1);
    for call in fake.calls() {
        assert!(!call.body.to_string().contains("AAHdqTcv"), "{call:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_commands_and_chatter_are_each_handled_right() {
    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bot = start(dir.path(), &fake).await;
    let tom = TOM.id;

    // /start greets in the customer's language.
    fake.text(&TOM, "/start");
    message(&fake, tom, "I'm the Demo Shop assistant").await;

    // A photo: "I can only read text", a ticket, a ping showing the caption.
    fake.photo(&TOM, Some("It arrived like this"));
    message(&fake, tom, "I can only read text here").await;
    message(&fake, tom, "(ticket #1)").await;
    let ping = message(&fake, STAFF_CHAT, "🔔 Ticket #1").await;
    assert!(
        ping["text"]
            .as_str()
            .unwrap()
            .contains("[photo] It arrived like this"),
        "{ping}"
    );

    // A customer's staff command is refused politely; the ticket is untouched.
    fake.text(&TOM, "/resolve 1 done");
    message(&fake, tom, "only for our staff").await;

    // An edited message is not answered again; group chatter and another bot's
    // commands are not answered either.
    fake.edit(&TOM, 1, "changed my mind");
    fake.staff_text(&MARCO, "Who takes lunch first?", None);
    fake.staff_text(&MARCO, "/claim@otherbot 1", None);
    // A staff_ids member's command in a private chat acts; answers go to the staff group.
    let last = fake.text(&ANNA, "/tickets");
    message(&fake, STAFF_CHAT, "Open tickets (1)").await;
    fake.wait_confirmed(last).await;

    // A sticker as a reply to the ping: staff are told to write text instead.
    let photo_reply = fake.staff_sticker(&MARCO, id_of(&ping));
    message(&fake, STAFF_CHAT, "Only text is relayed").await;
    fake.wait_confirmed(photo_reply).await;

    // A reply the Bot API refuses for good goes to the failed list and holds nothing up.
    let ghost = fake.text(&GHOST, "Hello");
    fake.wait_for("a refused send", |f| {
        f.calls()
            .iter()
            .any(|c| c.method == "sendMessage" && c.status == 400)
    })
    .await;
    fake.wait_confirmed(ghost).await;
    fake.text(&TOM, "Hello");
    message(&fake, STAFF_CHAT, "Tom (@tom): Hello").await;

    let store = bot.stop().await;
    let failed = store.failed().unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].1.contains("chat not found"), "{failed:?}");
    let tickets = store.tickets().unwrap();
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].status, frontdesk::model::TicketStatus::Open);
    assert_eq!(fake.count(tom, "changed my mind"), 0);
    assert!(
        !fake
            .texts(STAFF_CHAT)
            .iter()
            .any(|t| t.contains("Not a command")),
        "chatter is not answered: {:?}",
        fake.texts(STAFF_CHAT)
    );
    assert_eq!(fake.count(STAFF_CHAT, "claimed by"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sends_are_retried_and_delivered_exactly_once() {
    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Polling fails first (500, then a 502 HTML page): the adapter backs off and recovers.
    fake.fail_next("getUpdates", Fault::Internal);
    fake.fail_next("getUpdates", Fault::BadGateway);
    // The first send fails with 500, its retry with 429 retry_after 1.
    fake.fail_next("sendMessage", Fault::Internal);
    fake.fail_next("sendMessage", Fault::TooMany(1));
    let bot = start(dir.path(), &fake).await;
    let lucia = LUCIA.id;

    fake.text(&LUCIA, "¿A qué hora abren?");
    message(&fake, lucia, "¿Eso responde a tu pregunta?").await;
    let statuses: Vec<u16> = fake
        .calls()
        .iter()
        .filter(|c| c.method == "sendMessage")
        .map(|c| c.status)
        .collect();
    assert_eq!(&statuses[..3], &[500, 429, 200], "{statuses:?}");
    let polls: Vec<u16> = fake
        .calls()
        .iter()
        .filter(|c| c.method == "getUpdates")
        .map(|c| c.status)
        .take(3)
        .collect();
    assert_eq!(polls, vec![500, 502, 200]);

    // Delivered exactly once, in order.
    assert_eq!(fake.count(lucia, "Abrimos de lunes a viernes"), 1);
    assert_eq!(fake.count(lucia, "¿Eso responde"), 1);
    let texts = fake.texts(lucia);
    assert!(texts[0].starts_with("Abrimos"), "{texts:?}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_loses_nothing_and_repeats_nothing() {
    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let lucia = LUCIA.id;

    // First run: answered, [No] → ticket and ping.
    let bot = start(dir.path(), &fake).await;
    fake.text(&LUCIA, "¿A qué hora abren?");
    let question = message(&fake, lucia, "¿Eso responde a tu pregunta?").await;
    fake.press(&LUCIA, lucia, id_of(&question), "no");
    let ping = message(&fake, STAFF_CHAT, "🔔 Ticket #1").await;
    // Telegram then refuses sends for a while: the customer's next message is
    // handled, but its relay to staff and the acknowledgement stay in the outbox.
    fake.break_method("sendMessage", Fault::Internal);
    let pending = fake.text(&LUCIA, "¿Hay novedades?");
    fake.wait_confirmed(pending).await;
    fake.wait_for("a failed send of the relay", |f| {
        f.calls()
            .iter()
            .any(|c| c.method == "sendMessage" && c.status == 500)
    })
    .await;
    let store = bot.stop().await;
    assert!(
        !store.pending().unwrap().is_empty(),
        "undelivered actions are kept"
    );

    // While it is down: staff claim the ticket, the customer writes again.
    fake.press(&MARCO, STAFF_CHAT, id_of(&ping), "claim:1");
    fake.text(&LUCIA, "Sigo esperando");
    // A crash before the offset was confirmed: Telegram sends every update again.
    store.set_meta("telegram/offset", b"").unwrap();
    drop(store);
    fake.unconfirm_all();
    fake.repair("sendMessage");

    // Second run on the same directory.
    let bot = start(dir.path(), &fake).await;
    message(&fake, STAFF_CHAT, "¿Hay novedades?").await;
    message(&fake, STAFF_CHAT, "Sigo esperando").await;
    message(&fake, lucia, "Marco Rossi de nuestro equipo").await;
    message(&fake, STAFF_CHAT, "Ticket #1 claimed by Marco Rossi").await;
    let store = bot.stop().await;
    assert!(store.pending().unwrap().is_empty(), "{:?}", store.pending());

    // Nothing twice.
    for needle in [
        "Abrimos de lunes",
        "¿Eso responde",
        "(ticket #1)",
        "Añadido a tu solicitud #1",
        "Marco Rossi de nuestro equipo",
    ] {
        assert_eq!(
            fake.count(lucia, needle),
            1,
            "{needle}: {:?}",
            fake.texts(lucia)
        );
    }
    for needle in [
        "🔔 Ticket #1",
        "¿Hay novedades?",
        "Sigo esperando",
        "claimed by Marco Rossi.",
    ] {
        assert_eq!(
            fake.count(STAFF_CHAT, needle),
            1,
            "{needle}: {:?}",
            fake.texts(STAFF_CHAT)
        );
    }
    // The updates did come again (the [No] press was answered in both runs),
    // and the engine skipped what it had handled.
    let answered = |id: &str| {
        fake.ok_calls("answerCallbackQuery")
            .iter()
            .filter(|b| b["callback_query_id"] == id)
            .count()
    };
    assert_eq!(answered("cbq-1"), 2);
    assert_eq!(answered("cbq-2"), 1);
    let tickets = store.tickets().unwrap();
    assert_eq!(tickets.len(), 1);
    let customer_messages = tickets[0]
        .events
        .iter()
        .filter(|e| matches!(e.kind, frontdesk::model::TicketEventKind::CustomerMessage))
        .count();
    assert_eq!(customer_messages, 2, "each customer message recorded once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_stops_the_channel_with_a_clear_error_without_the_token() {
    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let wrong = "4242424242:AAHwrongwrongwrongwrongwrongwrongwro";
    let mut s = settings(&fake);
    s.token = Secret::new(wrong);
    let bot = start_with(dir.path(), s).await;
    let error = tokio::time::timeout(Duration::from_secs(10), bot.task)
        .await
        .expect("a refused token stops the channel")
        .unwrap()
        .expect_err("a refused token is an error");
    let shown = format!("{error} {error:?}");
    assert!(shown.contains("FRONTDESK_TELEGRAM_TOKEN"), "{shown}");
    assert!(!shown.contains("AAHwrong"), "{shown}");
}

#[test]
fn the_binary_runs_the_flow_stops_on_sigterm_and_reports() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("stderr.log");
    let fake = runtime.block_on(FakeTelegram::start());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .env_remove("FRONTDESK_CONFIG")
        .env_remove("FRONTDESK_DATA")
        .env_remove("FRONTDESK_INTENTS")
        .env_remove("FRONTDESK_DISCORD_TOKEN")
        .env("FRONTDESK_TELEGRAM_TOKEN", TOKEN)
        .env("FRONTDESK_TELEGRAM_STAFF_CHAT", STAFF_CHAT.to_string())
        .env("FRONTDESK_TELEGRAM_API_URL", &fake.url)
        .args(["-vv", "run", "--data"])
        .arg(&data)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Kill the child if an assertion fails before it is stopped.
    struct Reaper(Option<std::process::Child>);
    impl Drop for Reaper {
        fn drop(&mut self) {
            if let Some(mut c) = self.0.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let mut reaper = Reaper(Some(child));

    runtime.block_on(async {
        let lucia = LUCIA.id;
        fake.text(&LUCIA, "¿A qué hora abren?");
        let question = message(&fake, lucia, "¿Eso responde a tu pregunta?").await;
        fake.press(&LUCIA, lucia, id_of(&question), "no");
        let ping = message(&fake, STAFF_CHAT, "🔔 Ticket #1").await;
        fake.press(&MARCO, STAFF_CHAT, id_of(&ping), "claim:1");
        message(&fake, lucia, "Marco Rossi de nuestro equipo").await;
        fake.text(&LUCIA, "Es el pedido 1234");
        message(&fake, STAFF_CHAT, "Es el pedido 1234").await;
        fake.staff_text(&MARCO, "Ya está en camino", Some(id_of(&ping)));
        message(&fake, lucia, "Marco Rossi: Ya está en camino").await;
        fake.staff_text(&MARCO, "/resolve 1 Enviado", None);
        let rating = message(&fake, lucia, "¿Qué tan satisfecho").await;
        let last = fake.press(&LUCIA, lucia, id_of(&rating), "rate:4");
        message(&fake, lucia, "¡Gracias por tu valoración!").await;
        fake.wait_confirmed(last).await;
    });

    child = reaper.0.take().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("frontdesk run did not stop after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(exit.code(), Some(0), "stderr:\n{stderr}");
    assert!(stderr.contains("telegram: connected"), "-vv logs: {stderr}");
    let secret = TOKEN.split_once(':').unwrap().1;
    assert!(
        !stderr.contains(secret),
        "the token leaked into the log:\n{stderr}"
    );

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("FRONTDESK_CONFIG")
        .env_remove("FRONTDESK_DATA")
        .args(["report", "--json", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["tickets_resolved"], 1, "{report}");
    assert_eq!(report["tickets_open"], 0, "{report}");
    assert_eq!(report["ratings"], 1, "{report}");
    assert_eq!(report["csat_average"], 4.0, "{report}");
    drop(fake);
}

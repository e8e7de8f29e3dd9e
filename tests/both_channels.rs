//! One `frontdesk run` serving Telegram and Discord at once, over one engine
//! and one store: the fake Telegram Bot API (`tests/telegram_fake/`) and the
//! fake Discord (`tests/discord_fake/`) on 127.0.0.1, a customer on each
//! answered from an intent and rating the help, then `frontdesk report`
//! counting both channels, together and one by one.
//!
//! Waits are bounded; nothing asserts on speed.

mod common;
mod discord_fake;
mod telegram_fake;

use discord_fake::{DM, Fake, Ids, customer, dm_message, dm_press, posted};
use telegram_fake::{FakeTelegram, User, id_of};

const LUCIA: User = User {
    id: 111_222_333,
    first_name: "Lucía",
    last_name: Some("Gómez"),
    username: Some("lucia_g"),
    language_code: Some("es"),
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_serves_telegram_and_discord_and_the_report_counts_both() {
    let discord = Fake::start().await;
    let telegram = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served =
        common::Served::start(dir.path(), &data, &[telegram.env(), discord.env()].concat());
    discord
        .wait_for("IDENTIFY", |s| s.identify.first().cloned())
        .await;
    let mut ids = Ids(1370000000000000000);

    // Both customers ask at once.
    telegram.text(&LUCIA, "¿A qué hora abren?");
    discord.dispatch(
        "MESSAGE_CREATE",
        dm_message(ids.next(), customer(), "When are you open?"),
    );

    // Telegram: answered in Spanish, [Sí] → the rating question → 4.
    let question = telegram
        .wait_message(LUCIA.id, "¿Eso responde a tu pregunta?")
        .await;
    telegram.press(&LUCIA, LUCIA.id, id_of(&question), "yes");
    let rating = telegram.wait_message(LUCIA.id, "¿Qué tan satisfecho").await;

    // Discord: answered in English, [Yes] → the rating question → 5.
    let did_it_help = discord
        .wait_for("the Discord answer and its buttons", |s| {
            posted(s, DM, "Monday")?;
            s.posts(DM)
                .into_iter()
                .rev()
                .find(|c| c.custom_ids() == ["yes", "no"])
                .and_then(|c| c.id)
        })
        .await;
    discord.dispatch(
        "INTERACTION_CREATE",
        dm_press(ids.next(), discord.message(did_it_help), "yes"),
    );
    let discord_rating = discord
        .wait_for("the Discord rating question", |s| {
            posted(s, DM, "How satisfied")
        })
        .await;

    let last = telegram.press(&LUCIA, LUCIA.id, id_of(&rating), "rate:4");
    discord.dispatch(
        "INTERACTION_CREATE",
        dm_press(ids.next(), discord.message(discord_rating), "rate:5"),
    );
    telegram
        .wait_message(LUCIA.id, "¡Gracias por tu valoración!")
        .await;
    telegram.wait_confirmed(last).await;
    discord
        .wait_for("the Discord thanks", |s| {
            posted(s, DM, "Thank you for your rating")
        })
        .await;
    assert_eq!(
        telegram.count(telegram_fake::STAFF_CHAT, ""),
        0,
        "nothing for Telegram's staff"
    );
    assert!(
        discord
            .state
            .lock()
            .unwrap()
            .posts(discord_fake::STAFF)
            .is_empty(),
        "nothing for Discord's staff"
    );

    let log = tokio::task::spawn_blocking(move || served.stop())
        .await
        .unwrap();
    assert!(log.contains("telegram: connected"), "{log}");
    assert!(log.contains("Discord: connected"), "{log}");

    // One store: both customers in the report, and each channel on its own.
    let all = common::report_json(&data, &[]);
    assert_eq!(all["conversations"], 2, "{all}");
    assert_eq!(all["answered_by_bot"], 2, "{all}");
    assert_eq!(all["ratings"], 2, "{all}");
    assert_eq!(all["csat_average"], 4.5, "{all}");
    for (channel, score) in [("telegram", 4.0), ("discord", 5.0)] {
        let one = common::report_json(&data, &["--channel", channel]);
        assert_eq!(one["conversations"], 1, "{channel}: {one}");
        assert_eq!(one["ratings"], 1, "{channel}: {one}");
        assert_eq!(one["csat_average"], score, "{channel}: {one}");
    }
}

/// Discord refuses its token while Telegram works: the error is logged when
/// it happens, Telegram keeps serving, and the exit after SIGTERM says why
/// (once more, as the process's result).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_that_fails_does_not_stop_the_other() {
    let discord = Fake::start().await;
    discord.fail_after(
        0,
        "GET",
        "/users/@me",
        401,
        serde_json::json!({"message": "401: Unauthorized", "code": 0}),
    );
    let telegram = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served =
        common::Served::start(dir.path(), &data, &[telegram.env(), discord.env()].concat());
    let refused = "Discord refused the bot token";
    telegram
        .wait_for("the Discord failure logged", |_| {
            served.log().contains(refused)
        })
        .await;
    telegram.text(&LUCIA, "¿A qué hora abren?");
    telegram
        .wait_message(LUCIA.id, "¿Eso responde a tu pregunta?")
        .await;
    let log = served.log();
    assert_eq!(log.matches(refused).count(), 1, "{log}");
    assert!(log.contains("the other channels keep serving"), "{log}");

    let (code, log) = tokio::task::spawn_blocking(move || served.terminate())
        .await
        .unwrap();
    assert_ne!(code, Some(0), "the run failed in part: {log}");
    assert_eq!(log.matches(refused).count(), 2, "{log}");
    assert!(
        log.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("error: discord stopped: Discord refused the bot token"),
        "{log}"
    );
}

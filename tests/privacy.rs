//! Customer data rights against the real sled store on disk: after `/forget`
//! and after the retention period, nothing of the customer can be read from
//! any byte of any file in the data directory (their text and name are not
//! there in the clear, and the key that sealed them is gone from the key
//! files), while another customer's text is still there for the store.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use frontdesk::config::Config;
use frontdesk::engine::{CustomerInfo, Engine, EngineSettings, Inbound, Knowledge, StaffMember};
use frontdesk::intents::IntentSet;
use frontdesk::model::{Action, Channel, CustomerKey, Speaker, TicketStatus};
use frontdesk::report::Report;
use frontdesk::store::{SledStore, Store};
use jiff::{SignedDuration, Timestamp};

const FORGOTTEN_ID: &str = "7340012345";
const FORGOTTEN_NAME: &str = "Zebulon Quaxmire";
const KEPT_ID: &str = "5151009988";
const KEPT_NAME: &str = "Bertha Kumquat";

fn repo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn engine(dir: &Path, config: &Config) -> Engine {
    let intents = IntentSet::load_dir(&repo().join("intents"), &config.languages).unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).unwrap());
    Engine::new(
        store,
        Knowledge::build(intents, config.matcher),
        EngineSettings::from_config(config),
    )
}

fn customer(id: &str, name: &str) -> CustomerInfo {
    CustomerInfo {
        key: CustomerKey::new(Channel::Telegram, id),
        name: name.into(),
        address: id.into(),
        language_hint: Some("en".into()),
    }
}

fn staff() -> StaffMember {
    StaffMember {
        channel: Channel::Telegram,
        id: "900".into(),
        name: "Ana".into(),
    }
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.insert(path.display().to_string(), std::fs::read(&path).unwrap());
        }
    }
    out
}

/// The files that hold `needle` anywhere in their bytes.
fn holding(dir: &Path, needle: &str) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .map(|(name, _)| name)
        .collect()
}

/// The customer key file: record id → (owner, key hex).
fn customer_keys(dir: &Path) -> BTreeMap<String, (String, String)> {
    let text = std::fs::read_to_string(dir.join("customer-keys.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["keys"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(rid, e)| {
            (
                rid.clone(),
                (
                    e["owner"].as_str().unwrap_or_default().to_string(),
                    e["key"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

/// What a channel does: deliver and acknowledge the outbox.
fn deliver(engine: &Engine) -> Vec<Action> {
    let store = engine.store();
    let pending = store.pending().unwrap();
    for o in &pending {
        store.acknowledge(o.id).unwrap();
    }
    pending.into_iter().map(|o| o.action).collect()
}

fn say(engine: &Engine, who: &CustomerInfo, text: &str, now: Timestamp) -> Vec<Action> {
    engine
        .handle(
            None,
            Inbound::Message {
                customer: who.clone(),
                text: text.into(),
                attachment: None,
            },
            now,
        )
        .unwrap()
        .into_iter()
        .map(|o| o.action)
        .collect()
}

fn to_customer(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ToCustomer { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn forget_leaves_nothing_of_the_customer_readable_on_disk() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let config = Config::default();
    let mut now: Timestamp = "2026-01-05T10:00:00Z".parse().unwrap();
    let forgotten = customer(FORGOTTEN_ID, FORGOTTEN_NAME);
    let kept = customer(KEPT_ID, KEPT_NAME);
    let forgotten_rid;
    let forgotten_key;
    {
        let engine = engine(dir, &config);
        let step = |by: &CustomerInfo, text: &str, now: &mut Timestamp| {
            *now = now.checked_add(SignedDuration::from_secs(60)).unwrap();
            say(&engine, by, text, *now)
        };
        // The customer to forget: an answered question with a rating, then a
        // ticket with their own words, a staff reply and a still-pending message.
        step(&forgotten, "When are you open?", &mut now);
        step(&forgotten, "yes", &mut now);
        step(&forgotten, "2", &mut now);
        step(
            &forgotten,
            "the Xylophone-Marmalade parcel was rude",
            &mut now,
        );
        step(&forgotten, "I want to talk to a person", &mut now);
        step(
            &forgotten,
            "my order Quince-Lantern-4711 never came",
            &mut now,
        );
        deliver(&engine);
        engine
            .handle(
                None,
                Inbound::StaffText {
                    staff: staff(),
                    text: "/reply 1 Periwinkle-Reply-Note for you".into(),
                    ticket: None,
                },
                now,
            )
            .unwrap();
        // The other customer, who stays.
        step(&kept, "I want to talk to a person", &mut now);
        step(&kept, "my order Apricot-Harbour-2024 is late", &mut now);
        deliver(&engine);
        // This one is still in the outbox when the customer is forgotten.
        step(&forgotten, "one more thing: Walrus-Pending-Text", &mut now);

        let before = customer_keys(dir);
        let (rid, (_, key)) = before
            .iter()
            .find(|(_, (owner, _))| owner == &format!("telegram:{FORGOTTEN_ID}"))
            .expect("the customer has a key");
        forgotten_rid = rid.clone();
        forgotten_key = key.clone();

        // A stray /forget only asks.
        let asked = to_customer(&step(&forgotten, "/forget", &mut now));
        assert_eq!(asked.len(), 1);
        assert!(asked[0].contains("Delete everything?"), "{asked:?}");
        assert!(engine.store().customer(&forgotten.key).unwrap().is_some());
        let confirmed = engine
            .handle(
                None,
                Inbound::Button {
                    customer: forgotten.clone(),
                    payload: "forget:yes".into(),
                },
                now,
            )
            .unwrap();
        let actions: Vec<Action> = confirmed.into_iter().map(|o| o.action).collect();
        let done = to_customer(&actions);
        assert_eq!(done.len(), 1, "{actions:?}");
        assert!(
            done[0].contains("deleted 2 conversation(s), 1 rating(s)"),
            "{done:?}"
        );
        assert!(
            actions.iter().any(
                |a| matches!(a, Action::ToStaff { ticket: Some(1), text, .. }
                if text.contains("asked to be forgotten"))
            ),
            "staff are told: {actions:?}"
        );
        // The outbox entry still pending for them went with them.
        let pending = engine.store().pending().unwrap();
        assert!(
            pending
                .iter()
                .all(|o| !format!("{:?}", o.action).contains("Walrus")),
            "{pending:?}"
        );
        deliver(&engine);
    }

    // Closed: sled's files and the key files are all that is left.
    for secret in [
        "Xylophone-Marmalade",
        "Quince-Lantern-4711",
        "Periwinkle-Reply-Note",
        "Walrus-Pending-Text",
        FORGOTTEN_NAME,
        FORGOTTEN_ID,
        forgotten_key.as_str(),
    ] {
        assert_eq!(
            holding(dir, secret),
            Vec::<String>::new(),
            "{secret:?} is still on disk"
        );
    }
    // Their key is gone; what is left sealed with it can no longer be opened.
    assert!(!customer_keys(dir).contains_key(&forgotten_rid));
    // The scan does read sled's files: record keys are plain there, and so is
    // the other customer's key record in the key file.
    assert!(!holding(dir, "counters").is_empty());
    assert!(!holding(dir, KEPT_ID).is_empty());
    assert!(holding(dir, "Apricot-Harbour-2024").is_empty(), "sealed");

    // Reopened: the other customer is all there, the forgotten one is not.
    let store = SledStore::open(dir).unwrap();
    assert!(store.customer(&forgotten.key).unwrap().is_none());
    let kept_records = store.customer_records(&kept.key).unwrap();
    assert_eq!(kept_records.customer.unwrap().name, KEPT_NAME);
    assert!(
        kept_records.conversations[0]
            .transcript
            .iter()
            .any(|l| l.speaker == Speaker::Customer && l.text.contains("Apricot-Harbour-2024"))
    );
    assert!(store.customer_records(&forgotten.key).unwrap().is_empty());
    assert!(store.ratings().unwrap().is_empty());
    // Their ticket keeps its number, reason, times and staff events, not who or what.
    let ticket = store.ticket(1).unwrap().unwrap();
    assert_eq!(ticket.status, TicketStatus::Resolved);
    assert!(ticket.customer.is_forgotten());
    assert!(ticket.customer_name.is_empty() && ticket.excerpt.is_empty());
    assert!(ticket.first_response_at.is_some());
    assert_eq!(store.ticket(2).unwrap().unwrap().customer, kept.key);
    let report = Report::compute(&store).unwrap();
    let report = serde_json::to_value(report).unwrap();
    assert_eq!(report["escalated"], 2, "{report}");
    assert_eq!(report["conversations"], 3, "{report}");
    let all = serde_json::to_string(&store.conversations().unwrap()).unwrap();
    assert!(!all.contains("Quince") && !all.contains(FORGOTTEN_ID));
}

#[test]
fn forget_without_confirmation_and_of_nobody_deletes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let engine = engine(data.path(), &Config::default());
    let now: Timestamp = "2026-01-05T10:00:00Z".parse().unwrap();
    let stranger = customer("111", "Nobody");
    let said = to_customer(&say(&engine, &stranger, "/forget yes", now));
    assert_eq!(said, vec!["We have nothing stored about you.".to_string()]);
    assert!(engine.store().customer(&stranger.key).unwrap().is_none());

    say(&engine, &stranger, "When are you open?", now);
    let asked = say(&engine, &stranger, "/FORGET", now);
    assert!(to_customer(&asked)[0].contains("Delete everything?"));
    let kept = engine
        .handle(
            None,
            Inbound::Button {
                customer: stranger.clone(),
                payload: "forget:no".into(),
            },
            now,
        )
        .unwrap();
    assert_eq!(
        to_customer(&kept.into_iter().map(|o| o.action).collect::<Vec<_>>()),
        vec!["OK, nothing was deleted.".to_string()]
    );
    let records = engine.store().customer_records(&stranger.key).unwrap();
    assert_eq!(records.conversations.len(), 1);
    assert!(
        records.conversations[0]
            .transcript
            .iter()
            .all(|l| !l.text.contains("forget")),
        "the exchange about forgetting is not kept"
    );
}

#[test]
fn retention_deletes_old_text_on_the_tick_and_its_key() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let config = Config::from_toml("[privacy]\nretention_days = 30\n", Path::new("t")).unwrap();
    let start: Timestamp = "2026-01-05T10:00:00Z".parse().unwrap();
    let later = start
        .checked_add(SignedDuration::from_hours(31 * 24))
        .unwrap();
    let who = customer(KEPT_ID, KEPT_NAME);
    let old_rid;
    let old_key;
    {
        let engine = engine(dir, &config);
        say(&engine, &who, "I want to talk to a person", start);
        say(&engine, &who, "the code is Old-Mango-Secret-31", start);
        engine
            .handle(
                None,
                Inbound::StaffText {
                    staff: staff(),
                    text: "/resolve 1 Old-Resolution-Fig".into(),
                    ticket: None,
                },
                start,
            )
            .unwrap();
        deliver(&engine);
        let keys = customer_keys(dir);
        let (rid, (_, key)) = keys.iter().next().unwrap();
        (old_rid, old_key) = (rid.clone(), key.clone());
        // Nothing is old yet.
        engine.handle(None, Inbound::Tick, start).unwrap();
        assert!(customer_keys(dir).contains_key(&old_rid));
        say(&engine, &who, "new words New-Papaya-Text-12", later);
        deliver(&engine);
        // Thirty-one days on: the old text goes, the new stays.
        engine.handle(None, Inbound::Tick, later).unwrap();
        deliver(&engine);
        assert_eq!(
            engine.store().counters().unwrap().privacy_swept_at,
            Some(later)
        );
        // Within the hour the period is not applied again: nothing to write
        // (ten minutes on), and only the ticket's reminder (59 minutes on).
        let soon = later.checked_add(SignedDuration::from_mins(10)).unwrap();
        assert!(engine.handle(None, Inbound::Tick, soon).unwrap().is_empty());
        let soon = later.checked_add(SignedDuration::from_mins(59)).unwrap();
        engine.handle(None, Inbound::Tick, soon).unwrap();
        assert_eq!(
            engine.store().counters().unwrap().privacy_swept_at,
            Some(later)
        );
        let hour = later.checked_add(SignedDuration::from_mins(61)).unwrap();
        engine.handle(None, Inbound::Tick, hour).unwrap();
        assert_eq!(
            engine.store().counters().unwrap().privacy_swept_at,
            Some(hour)
        );
        deliver(&engine);
        deliver(&engine);
        let records = engine.store().customer_records(&who.key).unwrap();
        let all = serde_json::to_string(&records).unwrap();
        assert!(!all.contains("Old-Mango-Secret-31"), "{all}");
        assert!(!all.contains("Old-Resolution-Fig"), "{all}");
        assert!(all.contains("New-Papaya-Text-12"), "{all}");
        assert_eq!(records.customer.unwrap().name, KEPT_NAME);
        // The old ticket is kept (without its note); the new question opened another.
        assert_eq!(records.tickets.len(), 2);
        assert_eq!(records.tickets[0].resolution_note, None);
        assert!(records.tickets[0].resolved_at.is_some());
    }
    let keys = customer_keys(dir);
    assert!(!keys.contains_key(&old_rid), "the old key is destroyed");
    assert_eq!(keys.len(), 1, "the customer has a new key");
    for gone in [
        "Old-Mango-Secret-31",
        "Old-Resolution-Fig",
        old_key.as_str(),
    ] {
        assert!(holding(dir, gone).is_empty(), "{gone:?} is still on disk");
    }
    let store = SledStore::open(dir).unwrap();
    let records = store.customer_records(&who.key).unwrap();
    assert!(
        serde_json::to_string(&records)
            .unwrap()
            .contains("New-Papaya-Text-12")
    );
}

#[test]
fn retention_expires_messages_set_aside_as_undeliverable() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let config = Config::from_toml("[privacy]\nretention_days = 30\n", Path::new("t")).unwrap();
    let engine = engine(dir, &config);
    let who = customer(KEPT_ID, KEPT_NAME);
    // Failed entries are stamped with the real time.
    let now = Timestamp::now();
    say(
        &engine,
        &who,
        "I want to talk to a person Refused-Message-Lychee-7",
        now,
    );
    let refused = engine.store().pending().unwrap();
    assert!(!refused.is_empty());
    for o in &refused {
        engine.store().fail(o.id, "blocked by the user").unwrap();
    }
    assert_eq!(engine.store().failed().unwrap().len(), refused.len());
    let next = now.checked_add(SignedDuration::from_hours(24)).unwrap();
    engine.handle(None, Inbound::Tick, next).unwrap();
    assert_eq!(
        engine.store().failed().unwrap().len(),
        refused.len(),
        "not old yet"
    );
    let much_later = next
        .checked_add(SignedDuration::from_hours(31 * 24))
        .unwrap();
    engine.handle(None, Inbound::Tick, much_later).unwrap();
    assert!(engine.store().failed().unwrap().is_empty(), "expired");
    let outbox_keys = std::fs::read_to_string(dir.join("outbox-keys.json")).unwrap();
    for o in &refused {
        assert!(
            !outbox_keys.contains(&format!("\"{}\"", o.id)),
            "{outbox_keys}"
        );
    }
    drop(engine);
    assert!(holding(dir, "Refused-Message-Lychee-7").is_empty());
}

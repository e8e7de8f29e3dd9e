//! End-to-end tests of the Discord channel: the real serenity client and the
//! real engine against a fake Discord on 127.0.0.1.
//!
//! The fake has two halves. REST is a small hand-written HTTP/1.1 server
//! (request line, headers, Content-Length body, keep-alive) that serves what
//! serenity and the adapter call — gateway discovery, `/users/@me`, channels,
//! messages, threads, DM channels, interaction callbacks — records every call,
//! and can fail the next call to a path once (a 429). The gateway is a plain
//! JSON WebSocket (tokio-tungstenite, no compression: serenity connects to the
//! discovered URL with `?v=10` only): HELLO, IDENTIFY → READY, heartbeat →
//! ACK, then the MESSAGE_CREATE / INTERACTION_CREATE events a test scripts.
//!
//! Waits are bounded; nothing asserts on speed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use serenity::futures::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

use frontdesk::channels::discord::{self, inbound};
use frontdesk::channels::runtime::{Dispatcher, Shutdown};
use frontdesk::config::{Config, DiscordConfig, Secret};
use frontdesk::engine::{Engine, EngineSettings};
use frontdesk::report::Report;
use frontdesk::store::{SledStore, Store};

const GUILD: u64 = 1180000000000000001;
const BOT: u64 = 1190000000000000002;
const SUPPORT: u64 = 1180000000000000100;
const STAFF: u64 = 1180000000000000200;
const STAFF_ROLE: u64 = 1180000000000000300;
const CUSTOMER: u64 = 412345678901234567;
const DM: u64 = 1239001122334455667;
const ANA: u64 = 298765432109876543;
const OUTSIDER: u64 = 377777777777777777;
const TOKEN: &str = "MTE5MDAwMDAwMDAwMDAwMDAwMg.Gx7fAk.fake-SeCrEt-token-42";
const WAIT: Duration = Duration::from_secs(20);

// ----- the fake Discord ------------------------------------------------------

/// One REST call as the fake saw it.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    path: String,
    status: u16,
    body: Value,
    /// The id of what the call created or changed.
    id: Option<u64>,
}

impl Call {
    fn content(&self) -> &str {
        self.body["content"].as_str().unwrap_or_default()
    }

    fn custom_ids(&self) -> Vec<String> {
        self.body["components"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
            .filter_map(|b| b["custom_id"].as_str().map(str::to_string))
            .collect()
    }
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    /// (method, path, calls to let through first, status, body): then one call fails.
    failures: Vec<(String, String, usize, u16, Value)>,
    /// Messages the fake created, by id (what Discord would return for them).
    messages: HashMap<u64, Value>,
    identify: Vec<Value>,
    gateway_paths: Vec<String>,
    heartbeats: usize,
    next_id: u64,
    /// Close the gateway with 4014 (disallowed intents) after IDENTIFY, as
    /// Discord does when MESSAGE CONTENT is not enabled in the portal.
    refuse_intents: bool,
}

impl State {
    /// Successful message posts to a channel.
    fn posts(&self, channel: u64) -> Vec<&Call> {
        let path = format!("/channels/{channel}/messages");
        self.calls
            .iter()
            .filter(|c| c.method == "POST" && c.path == path && c.status == 200)
            .collect()
    }

    fn with_status(&self, status: u16) -> Vec<&Call> {
        self.calls.iter().filter(|c| c.status == status).collect()
    }
}

struct Fake {
    api_url: String,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    events: mpsc::UnboundedSender<(String, Value)>,
}

impl Fake {
    async fn start() -> Fake {
        let rest = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gateway = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api_url = format!("http://{}", rest.local_addr().unwrap());
        let ws_url = format!("ws://{}", gateway.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            next_id: 1400000000000000000,
            ..State::default()
        }));
        let changed = Arc::new(Notify::new());
        let (events, events_rx) = mpsc::unbounded_channel();
        tokio::spawn(serve_rest(
            rest,
            state.clone(),
            changed.clone(),
            ws_url.clone(),
        ));
        tokio::spawn(serve_gateway(
            gateway,
            state.clone(),
            changed.clone(),
            Arc::new(tokio::sync::Mutex::new(events_rx)),
            ws_url,
        ));
        Fake {
            api_url,
            state,
            changed,
            events,
        }
    }

    /// Push a gateway event (after READY).
    fn dispatch(&self, kind: &str, d: Value) {
        self.events.send((kind.to_string(), d)).unwrap();
    }

    /// After `skip` successful `method` calls to `path`, one fails with `status` and `body`.
    fn fail_after(&self, skip: usize, method: &str, path: &str, status: u16, body: Value) {
        self.state
            .lock()
            .unwrap()
            .failures
            .push((method.into(), path.into(), skip, status, body));
    }

    fn message(&self, id: u64) -> Value {
        self.state.lock().unwrap().messages[&id].clone()
    }

    /// Wait (bounded) until `f` finds something in the fake's state.
    async fn wait_for<T>(&self, what: &str, f: impl Fn(&State) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            let notified = self.changed.notified();
            if let Some(v) = f(&self.state.lock().unwrap()) {
                return v;
            }
            if Instant::now() >= deadline {
                let state = self.state.lock().unwrap();
                let calls: Vec<String> = state
                    .calls
                    .iter()
                    .map(|c| format!("{} {} {} {}", c.status, c.method, c.path, c.body))
                    .collect();
                panic!("timed out waiting for {what}; calls:\n{}", calls.join("\n"));
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }
}

fn bot_user() -> Value {
    json!({
        "id": BOT.to_string(), "username": "Frontdesk", "global_name": null,
        "discriminator": "4821", "avatar": null, "bot": true, "verified": true,
        "mfa_enabled": false, "flags": 0, "public_flags": 0, "email": null,
        "locale": "en-US", "premium_type": 0
    })
}

fn user(id: u64, username: &str, global_name: &str) -> Value {
    json!({
        "id": id.to_string(), "username": username, "global_name": global_name,
        "discriminator": "0", "avatar": null, "public_flags": 0,
        "primary_guild": null, "clan": null, "collectibles": null,
        "avatar_decoration_data": null
    })
}

fn text_channel(id: &str) -> Value {
    json!({
        "id": id, "type": 0, "guild_id": GUILD.to_string(), "name": "staff",
        "position": 4, "permission_overwrites": [], "parent_id": null, "nsfw": false,
        "topic": null, "last_message_id": null, "rate_limit_per_user": 0, "flags": 0
    })
}

fn message_json(id: u64, channel: &str, body: &Value) -> Value {
    json!({
        "id": id.to_string(), "channel_id": channel, "type": 0,
        "content": body["content"].as_str().unwrap_or_default(),
        "author": bot_user(), "timestamp": "2025-03-14T10:00:00.000000+00:00",
        "edited_timestamp": null, "tts": false, "mention_everyone": false,
        "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
        "pinned": false, "flags": 0,
        "components": body.get("components").cloned().unwrap_or(json!([]))
    })
}

/// Answer one REST request: (status, extra headers, body).
fn route(
    state: &mut State,
    ws_url: &str,
    method: &str,
    target: &str,
    body: &Value,
) -> (u16, Vec<(&'static str, String)>, Value) {
    let path = target.split('?').next().unwrap_or_default();
    let path = path.strip_prefix("/api/v10").unwrap_or(path).to_string();
    let failure = state
        .failures
        .iter_mut()
        .position(|(m, p, ..)| m == method && *p == path);
    let failure = failure.filter(|i| {
        let skip = &mut state.failures[*i].2;
        let now = *skip == 0;
        *skip = skip.saturating_sub(1);
        now
    });
    let (status, headers, response) = if let Some(i) = failure {
        let (_, _, _, status, response) = state.failures.remove(i);
        let headers = vec![
            ("retry-after", "1".to_string()),
            ("x-ratelimit-scope", "user".to_string()),
        ];
        (status, headers, response)
    } else {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let ok = |v: Value| (200, Vec::new(), v);
        match (method, segments.as_slice()) {
            ("GET", ["gateway"]) => ok(json!({ "url": ws_url })),
            ("GET", ["gateway", "bot"]) => ok(json!({
                "url": ws_url, "shards": 1,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
            })),
            ("GET", ["users", "@me"]) => ok(bot_user()),
            ("GET", ["channels", id]) => ok(text_channel(id)),
            ("POST", ["users", "@me", "channels"]) => ok(json!({
                "id": DM.to_string(), "type": 1, "last_message_id": null, "flags": 0,
                "recipients": [user(CUSTOMER, "maria.g", "María G.")]
            })),
            ("POST", ["channels", channel, "messages"]) => {
                state.next_id += 1;
                let m = message_json(state.next_id, channel, body);
                state.messages.insert(state.next_id, m.clone());
                ok(m)
            }
            ("PATCH", ["channels", channel, "messages", id]) => {
                let id: u64 = id.parse().unwrap_or_default();
                let m = message_json(id, channel, body);
                state.messages.insert(id, m.clone());
                ok(m)
            }
            ("POST", ["channels", channel, "messages", id, "threads"]) => ok(json!({
                "id": id, "type": 11, "guild_id": GUILD.to_string(), "parent_id": channel,
                "owner_id": BOT.to_string(), "name": body["name"], "last_message_id": null,
                "rate_limit_per_user": 0, "message_count": 0, "member_count": 1,
                "total_message_sent": 0, "flags": 0,
                "thread_metadata": {
                    "archived": false, "auto_archive_duration": 10080, "locked": false,
                    "archive_timestamp": "2025-03-14T10:00:00.000000+00:00",
                    "create_timestamp": "2025-03-14T10:00:00.000000+00:00"
                },
                "member": {"user_id": BOT.to_string(), "join_timestamp": "2025-03-14T10:00:00.000000+00:00", "flags": 1, "id": id}
            })),
            ("POST", ["interactions", _, _, "callback"]) => (204, Vec::new(), Value::Null),
            ("POST", ["applications", app, "commands"]) => ok(json!({
                "id": "1190000000000000777", "application_id": app, "version": "1",
                "type": 1, "name": body["name"], "description": body["description"],
                "default_member_permissions": null, "dm_permission": true, "nsfw": false
            })),
            _ => (
                404,
                Vec::new(),
                json!({"message": "404: Not Found", "code": 0}),
            ),
        }
    };
    state.calls.push(Call {
        method: method.to_string(),
        path,
        status,
        body: body.clone(),
        id: response["id"].as_str().and_then(|id| id.parse().ok()),
    });
    (status, headers, response)
}

async fn serve_rest(
    listener: TcpListener,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    ws_url: String,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(rest_connection(
            stream,
            state.clone(),
            changed.clone(),
            ws_url.clone(),
        ));
    }
}

/// One keep-alive HTTP/1.1 connection.
async fn rest_connection(
    stream: TcpStream,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    ws_url: String,
) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut words = request_line.split_whitespace();
        let (Some(method), Some(target)) = (words.next(), words.next()) else {
            return;
        };
        let (method, target) = (method.to_string(), target.to_string());
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (status, headers, response) = {
            let mut state = state.lock().unwrap();
            route(&mut state, &ws_url, &method, &target, &body)
        };
        changed.notify_waiters();
        let payload = if status == 204 {
            String::new()
        } else {
            response.to_string()
        };
        let reason = match status {
            200 => "OK",
            204 => "No Content",
            404 => "Not Found",
            429 => "Too Many Requests",
            _ => "Error",
        };
        let mut head = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            payload.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let stream = reader.get_mut();
        if stream.write_all(head.as_bytes()).await.is_err()
            || stream.write_all(payload.as_bytes()).await.is_err()
        {
            return;
        }
    }
}

type Events = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Value)>>>;

async fn serve_gateway(
    listener: TcpListener,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    events: Events,
    ws_url: String,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(gateway_session(
            stream,
            state.clone(),
            changed.clone(),
            events.clone(),
            ws_url.clone(),
        ));
    }
}

/// One gateway connection: HELLO, IDENTIFY → READY, heartbeats, then events.
async fn gateway_session(
    stream: TcpStream,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    events: Events,
    ws_url: String,
) {
    let seen = state.clone();
    // Records the URL serenity connects to (the handshake's error type is tungstenite's, not ours).
    #[allow(clippy::result_large_err)]
    let record_path = move |req: &Request, resp: Response| {
        seen.lock()
            .unwrap()
            .gateway_paths
            .push(req.uri().to_string());
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, record_path).await else {
        return;
    };
    let hello = json!({"op": 10, "s": null, "t": null, "d": {"heartbeat_interval": 1000, "_trace": ["fake"]}});
    if ws.send(Ws::Text(hello.to_string())).await.is_err() {
        return;
    }
    // One session at a time takes the scripted events.
    let mut events = events.lock().await;
    let mut seq = 0u64;
    let mut identified = false;
    loop {
        tokio::select! {
            incoming = ws.next() => {
                let text = match incoming {
                    Some(Ok(Ws::Text(text))) => text,
                    Some(Ok(Ws::Ping(_) | Ws::Pong(_) | Ws::Binary(_) | Ws::Frame(_))) => continue,
                    Some(Ok(Ws::Close(_))) => {
                        // Answer the close like Discord does (tungstenite queued the reply).
                        let _ = ws.flush().await;
                        return;
                    }
                    Some(Err(_)) | None => return,
                };
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let reply = match v["op"].as_u64() {
                    Some(2) => {
                        let refuse = {
                            let mut state = state.lock().unwrap();
                            state.identify.push(v["d"].clone());
                            state.refuse_intents
                        };
                        if refuse {
                            let frame = tokio_tungstenite::tungstenite::protocol::CloseFrame {
                                code: 4014.into(),
                                reason: "Disallowed intent(s).".into(),
                            };
                            let _ = ws.close(Some(frame)).await;
                            changed.notify_waiters();
                            return;
                        }
                        identified = true;
                        seq += 1;
                        Some(json!({"op": 0, "t": "READY", "s": seq, "d": {
                            "v": 10, "user": bot_user(), "user_settings": {},
                            "guilds": [{"id": GUILD.to_string(), "unavailable": true}],
                            "session_type": "normal", "session_id": "fake-session-1",
                            "resume_gateway_url": ws_url, "relationships": [],
                            "private_channels": [], "presences": [], "guild_join_requests": [],
                            "geo_ordered_rtc_regions": ["rotterdam"], "shard": [0, 1],
                            "application": {"id": BOT.to_string(), "flags": 565248},
                            "auth": {}, "_trace": ["fake"]
                        }}))
                    }
                    Some(1) => {
                        state.lock().unwrap().heartbeats += 1;
                        Some(json!({"op": 11, "s": null, "t": null, "d": null}))
                    }
                    Some(6) => {
                        identified = true;
                        seq += 1;
                        Some(json!({"op": 0, "t": "RESUMED", "s": seq, "d": {"_trace": ["fake"]}}))
                    }
                    _ => None,
                };
                changed.notify_waiters();
                if let Some(reply) = reply
                    && ws.send(Ws::Text(reply.to_string())).await.is_err()
                {
                    return;
                }
            }
            event = events.recv(), if identified => {
                let Some((kind, d)) = event else { return };
                seq += 1;
                let frame = json!({"op": 0, "t": kind, "s": seq, "d": d});
                if ws.send(Ws::Text(frame.to_string())).await.is_err() {
                    return;
                }
            }
        }
    }
}

// ----- scripted gateway events -------------------------------------------------

/// Snowflakes in creation order.
struct Ids(u64);

impl Ids {
    fn next(&mut self) -> u64 {
        self.0 += 1000;
        self.0
    }
}

fn dm_message(id: u64, author: Value, content: &str) -> Value {
    json!({
        "type": 0, "tts": false, "timestamp": "2025-03-14T09:26:53.411000+00:00",
        "pinned": false, "nonce": id.to_string(), "mentions": [], "mention_roles": [],
        "mention_everyone": false, "id": id.to_string(), "flags": 0, "embeds": [],
        "edited_timestamp": null, "content": content, "components": [],
        "channel_type": 1, "channel_id": DM.to_string(), "author": author, "attachments": []
    })
}

fn guild_message(
    id: u64,
    channel: u64,
    author: Value,
    roles: &[u64],
    nick: Option<&str>,
    content: &str,
) -> Value {
    let roles: Vec<String> = roles.iter().map(u64::to_string).collect();
    json!({
        "type": 0, "tts": false, "timestamp": "2025-03-14T09:45:20.004000+00:00",
        "pinned": false, "nonce": id.to_string(), "mentions": [], "mention_roles": [],
        "mention_everyone": false,
        "member": {
            "roles": roles, "premium_since": null, "pending": false, "nick": nick,
            "mute": false, "joined_at": "2023-06-20T08:00:00.000000+00:00", "flags": 0,
            "deaf": false, "communication_disabled_until": null, "banner": null, "avatar": null
        },
        "id": id.to_string(), "flags": 0, "embeds": [], "edited_timestamp": null,
        "content": content, "components": [], "channel_type": 0,
        "channel_id": channel.to_string(), "author": author, "attachments": [],
        "guild_id": GUILD.to_string()
    })
}

fn customer() -> Value {
    user(CUSTOMER, "maria.g", "María G.")
}

fn ana() -> Value {
    user(ANA, "ana.support", "Ana Staff")
}

/// A customer's button press in the DM.
fn dm_press(id: u64, message: Value, custom_id: &str) -> Value {
    json!({
        "version": 1, "type": 3, "token": format!("interaction-token-{id}"),
        "message": message, "locale": "en-US", "id": id.to_string(),
        "entitlements": [], "entitlement_sku_ids": [],
        "data": {"custom_id": custom_id, "component_type": 2},
        "context": 1, "channel_id": DM.to_string(),
        "channel": {"type": 1, "id": DM.to_string(), "flags": 0, "last_message_id": null,
                    "recipients": [customer()]},
        "authorizing_integration_owners": {"0": "0"},
        "attachment_size_limit": 10485760, "app_permissions": "1125899906842623",
        "application_id": BOT.to_string(), "user": customer()
    })
}

/// A customer's slash command in their DM.
fn dm_command(id: u64, name: &str) -> Value {
    json!({
        "version": 1, "type": 2, "token": format!("interaction-token-{id}"),
        "locale": "es-ES", "id": id.to_string(),
        "entitlements": [], "entitlement_sku_ids": [],
        "data": {"id": "1190000000000000777", "name": name, "type": 1},
        "context": 1, "channel_id": DM.to_string(),
        "channel": {"type": 1, "id": DM.to_string(), "flags": 0, "last_message_id": null,
                    "recipients": [customer()]},
        "authorizing_integration_owners": {"0": "0"},
        "attachment_size_limit": 10485760, "app_permissions": "1125899906842623",
        "application_id": BOT.to_string(), "user": customer()
    })
}

/// A staff member's button press in the staff channel.
fn staff_press(
    id: u64,
    message: Value,
    custom_id: &str,
    who: Value,
    roles: &[u64],
    nick: &str,
) -> Value {
    let roles: Vec<String> = roles.iter().map(u64::to_string).collect();
    json!({
        "version": 1, "type": 3, "token": format!("interaction-token-{id}"),
        "message": message,
        "member": {
            "user": who, "roles": roles, "premium_since": null,
            "permissions": "2248473465835073", "pending": false, "nick": nick,
            "mute": false, "joined_at": "2023-06-20T08:00:00.000000+00:00", "flags": 0,
            "deaf": false, "communication_disabled_until": null, "banner": null, "avatar": null
        },
        "locale": "en-GB", "id": id.to_string(), "guild_locale": "en-US",
        "guild_id": GUILD.to_string(),
        "guild": {"locale": "en-US", "id": GUILD.to_string(), "features": []},
        "entitlements": [], "entitlement_sku_ids": [],
        "data": {"custom_id": custom_id, "component_type": 2},
        "context": 0, "channel_id": STAFF.to_string(),
        "channel": {"type": 0, "id": STAFF.to_string(), "guild_id": GUILD.to_string(),
                    "name": "staff", "position": 4, "flags": 0, "parent_id": null,
                    "permissions": "2248473465835073", "nsfw": false, "topic": null,
                    "last_message_id": null, "rate_limit_per_user": 0},
        "authorizing_integration_owners": {"0": GUILD.to_string()},
        "attachment_size_limit": 10485760, "app_permissions": "2248473465835073",
        "application_id": BOT.to_string()
    })
}

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
fn posted(state: &State, channel: u64, needle: &str) -> Option<u64> {
    state
        .posts(channel)
        .into_iter()
        .rev()
        .find(|c| c.content().contains(needle))
        .and_then(|c| c.id)
}

fn count(state: &State, channel: u64, needle: &str) -> usize {
    state
        .posts(channel)
        .iter()
        .filter(|c| c.content().contains(needle))
        .count()
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frontdesk_run_serves_discord_stops_on_sigterm_and_never_logs_the_token() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let stderr_path = dir.path().join("stderr.log");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["-vv", "run"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env_remove("FRONTDESK_CONFIG")
        .env_remove("FRONTDESK_TELEGRAM_TOKEN")
        .env("FRONTDESK_DISCORD_TOKEN", TOKEN)
        .env("FRONTDESK_DISCORD_STAFF_CHANNEL", STAFF.to_string())
        .env("FRONTDESK_DISCORD_SUPPORT_CHANNELS", SUPPORT.to_string())
        .env("FRONTDESK_DISCORD_API_URL", &fake.api_url)
        .env("FRONTDESK_DATA", dir.path().join("data"))
        .env("FRONTDESK_INTENTS", intents_dir())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();

    fake.wait_for("IDENTIFY", |s| s.identify.first().cloned())
        .await;
    // A customer in the support channel: answered there, mentioning them.
    fake.dispatch(
        "MESSAGE_CREATE",
        guild_message(
            1350000000000001000,
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

    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!(
                "frontdesk run did not stop on SIGTERM; stderr:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let log = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(status.success(), "exit {status:?}; stderr:\n{log}");
    assert!(log.contains("Discord"), "-vv logs the channel:\n{log}");
    assert!(!log.contains(TOKEN), "the token leaked into the log");
    assert!(
        !log.contains("SeCrEt"),
        "part of the token leaked into the log"
    );
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

    // A wrong token: the first REST call answers 401.
    let fake = Fake::start().await;
    fake.fail_after(
        0,
        "GET",
        "/users/@me",
        401,
        json!({"message": "401: Unauthorized", "code": 0}),
    );
    let (_trigger, shutdown) = Shutdown::new();
    let run = discord::run(
        discord_config(&fake),
        Dispatcher::new(engine.clone()),
        shutdown,
    );
    let error = tokio::time::timeout(WAIT, run).await.unwrap().unwrap_err();
    assert!(
        matches!(error, discord::DiscordError::Unauthorized),
        "{error}"
    );
    assert!(error.to_string().contains("FRONTDESK_DISCORD_TOKEN"));
    assert!(!error.to_string().contains(TOKEN));

    // A staff channel the bot cannot see.
    let fake = Fake::start().await;
    fake.fail_after(
        0,
        "GET",
        &format!("/channels/{STAFF}"),
        404,
        json!({"message": "Unknown Channel", "code": 10003}),
    );
    let (_trigger, shutdown) = Shutdown::new();
    let run = discord::run(
        discord_config(&fake),
        Dispatcher::new(engine.clone()),
        shutdown,
    );
    let error = tokio::time::timeout(WAIT, run).await.unwrap().unwrap_err();
    assert!(
        matches!(error, discord::DiscordError::StaffChannel { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("Unknown Channel"), "{error}");

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
    assert_eq!(ack.body["data"]["content"], inbound::FORGET_ACK);
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

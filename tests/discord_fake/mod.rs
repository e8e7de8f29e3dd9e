//! A fake Discord for the end-to-end tests, on 127.0.0.1.
//!
//! It has two halves. REST is a small hand-written HTTP/1.1 server (request
//! line, headers, Content-Length body, keep-alive) that serves what serenity
//! and the adapter call — gateway discovery, `/users/@me`, channels, messages,
//! threads, DM channels, interaction callbacks, command registration —
//! records every call, and can fail the next call to a path once (a 429 gets
//! Discord's headers, `Retry-After` and `X-RateLimit-Reset-After`, from the
//! body's `retry_after`). The gateway is a plain JSON WebSocket
//! (tokio-tungstenite, no compression: serenity connects to the discovered URL
//! with `?v=10` only): HELLO, IDENTIFY → READY, heartbeat → ACK, then the
//! MESSAGE_CREATE / INTERACTION_CREATE events a test scripts.
//!
//! Waits are bounded; nothing asserts on speed.

#![allow(dead_code)]

use std::collections::HashMap;
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

/// The guild (server).
pub const GUILD: u64 = 1180000000000000001;
pub const BOT: u64 = 1190000000000000002;
pub const SUPPORT: u64 = 1180000000000000100;
pub const STAFF: u64 = 1180000000000000200;
pub const STAFF_ROLE: u64 = 1180000000000000300;
pub const CUSTOMER: u64 = 412345678901234567;
pub const DM: u64 = 1239001122334455667;
pub const ANA: u64 = 298765432109876543;
pub const OUTSIDER: u64 = 377777777777777777;
pub const TOKEN: &str = "MTE5MDAwMDAwMDAwMDAwMDAwMg.Gx7fAk.fake-SeCrEt-token-42";
pub const WAIT: Duration = Duration::from_secs(20);

// ----- the fake Discord ------------------------------------------------------

/// One REST call as the fake saw it.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub body: Value,
    /// The id of what the call created or changed.
    pub id: Option<u64>,
}

impl Call {
    pub fn content(&self) -> &str {
        self.body["content"].as_str().unwrap_or_default()
    }

    pub fn custom_ids(&self) -> Vec<String> {
        self.body["components"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
            .filter_map(|b| b["custom_id"].as_str().map(str::to_string))
            .collect()
    }
}

/// Everything the fake saw and holds.
#[derive(Default)]
pub struct State {
    pub calls: Vec<Call>,
    /// (method, path, calls to let through first, status, body): then one call fails.
    pub failures: Vec<(String, String, usize, u16, Value)>,
    /// Messages the fake created, by id (what Discord would return for them).
    pub messages: HashMap<u64, Value>,
    pub identify: Vec<Value>,
    pub gateway_paths: Vec<String>,
    pub heartbeats: usize,
    pub next_id: u64,
    /// REST requests still to be dropped unanswered (the connection closed
    /// after the request was read): a network error for the client.
    pub hang_up: usize,
    /// Close the gateway with 4014 (disallowed intents) after IDENTIFY, as
    /// Discord does when MESSAGE CONTENT is not enabled in the portal.
    pub refuse_intents: bool,
}

impl State {
    /// Successful message posts to a channel.
    pub fn posts(&self, channel: u64) -> Vec<&Call> {
        let path = format!("/channels/{channel}/messages");
        self.calls
            .iter()
            .filter(|c| c.method == "POST" && c.path == path && c.status == 200)
            .collect()
    }

    pub fn with_status(&self, status: u16) -> Vec<&Call> {
        self.calls.iter().filter(|c| c.status == status).collect()
    }
}

/// The fake Discord: its REST base URL, what it saw, and the events to send.
pub struct Fake {
    pub api_url: String,
    pub state: Arc<Mutex<State>>,
    pub changed: Arc<Notify>,
    pub events: mpsc::UnboundedSender<(String, Value)>,
}

impl Fake {
    /// The environment that points `frontdesk run` at this fake: the token,
    /// the staff and support channels, and the API URL.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("FRONTDESK_DISCORD_TOKEN", TOKEN.to_string()),
            ("FRONTDESK_DISCORD_STAFF_CHANNEL", STAFF.to_string()),
            ("FRONTDESK_DISCORD_SUPPORT_CHANNELS", SUPPORT.to_string()),
            ("FRONTDESK_DISCORD_API_URL", self.api_url.clone()),
        ]
    }

    pub async fn start() -> Fake {
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
    pub fn dispatch(&self, kind: &str, d: Value) {
        self.events.send((kind.to_string(), d)).unwrap();
    }

    /// After `skip` successful `method` calls to `path`, one fails with `status` and `body`.
    pub fn fail_after(&self, skip: usize, method: &str, path: &str, status: u16, body: Value) {
        self.state
            .lock()
            .unwrap()
            .failures
            .push((method.into(), path.into(), skip, status, body));
    }

    pub fn message(&self, id: u64) -> Value {
        self.state.lock().unwrap().messages[&id].clone()
    }

    /// Wait (bounded) until `f` finds something in the fake's state.
    pub async fn wait_for<T>(&self, what: &str, f: impl Fn(&State) -> Option<T>) -> T {
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

pub fn bot_user() -> Value {
    json!({
        "id": BOT.to_string(), "username": "Frontdesk", "global_name": null,
        "discriminator": "4821", "avatar": null, "bot": true, "verified": true,
        "mfa_enabled": false, "flags": 0, "public_flags": 0, "email": null,
        "locale": "en-US", "premium_type": 0
    })
}

pub fn user(id: u64, username: &str, global_name: &str) -> Value {
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
        // Discord's headers on a 429: Retry-After in whole seconds (rounded
        // up), X-RateLimit-Reset-After with the fraction.
        let headers = match response["retry_after"].as_f64() {
            Some(secs) if status == 429 => vec![
                ("retry-after", format!("{}", secs.ceil() as u64)),
                ("x-ratelimit-reset-after", format!("{secs:.3}")),
                ("x-ratelimit-scope", "user".to_string()),
            ],
            _ => Vec::new(),
        };
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
        {
            let mut state = state.lock().unwrap();
            if state.hang_up > 0 {
                state.hang_up -= 1;
                let path = target.split('?').next().unwrap_or_default();
                state.calls.push(Call {
                    method,
                    path: path.strip_prefix("/api/v10").unwrap_or(path).to_string(),
                    status: 0,
                    body,
                    id: None,
                });
                drop(state);
                changed.notify_waiters();
                return;
            }
        }
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
pub struct Ids(pub u64);

impl Ids {
    pub fn next(&mut self) -> u64 {
        self.0 += 1000;
        self.0
    }
}

pub fn dm_message(id: u64, author: Value, content: &str) -> Value {
    json!({
        "type": 0, "tts": false, "timestamp": "2025-03-14T09:26:53.411000+00:00",
        "pinned": false, "nonce": id.to_string(), "mentions": [], "mention_roles": [],
        "mention_everyone": false, "id": id.to_string(), "flags": 0, "embeds": [],
        "edited_timestamp": null, "content": content, "components": [],
        "channel_type": 1, "channel_id": DM.to_string(), "author": author, "attachments": []
    })
}

pub fn guild_message(
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

pub fn customer() -> Value {
    user(CUSTOMER, "maria.g", "María G.")
}

pub fn ana() -> Value {
    user(ANA, "ana.support", "Ana Staff")
}

/// A customer's button press in the DM.
pub fn dm_press(id: u64, message: Value, custom_id: &str) -> Value {
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
pub fn dm_command(id: u64, name: &str) -> Value {
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
pub fn staff_press(
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

pub fn posted(state: &State, channel: u64, needle: &str) -> Option<u64> {
    state
        .posts(channel)
        .into_iter()
        .rev()
        .find(|c| c.content().contains(needle))
        .and_then(|c| c.id)
}

pub fn count(state: &State, channel: u64, needle: &str) -> usize {
    state
        .posts(channel)
        .iter()
        .filter(|c| c.content().contains(needle))
        .count()
}

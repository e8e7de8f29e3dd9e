//! A fake Telegram Bot API server for the end-to-end tests: a small HTTP/1.1
//! server (keep-alive, Content-Length bodies) on 127.0.0.1 that speaks enough
//! of the Bot API — getMe, getWebhookInfo, deleteWebhook, getUpdates (offsets
//! confirm, a long poll waits for updates), sendMessage, editMessageText,
//! editMessageReplyMarkup, answerCallbackQuery — keeps the chats' messages,
//! records every call, and fails calls on demand (HTTP 500, 502 with an HTML
//! body, 429 with `retry_after`).

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The bot's user id.
pub const BOT_ID: u64 = 4_242_424_242;
/// The bot's @username.
pub const BOT_USERNAME: &str = "shopbot";
/// The staff group.
pub const STAFF_CHAT: i64 = -1_001_234_567_890;
/// A token that looks real (the secret half is 35 characters).
pub const TOKEN: &str = "4242424242:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0";
/// How long a long poll is held at most, whatever the client asks.
const MAX_HOLD: Duration = Duration::from_secs(3);

/// A Telegram user.
#[derive(Debug, Clone)]
pub struct User {
    /// User id (also their private chat's id).
    pub id: i64,
    /// First name.
    pub first_name: &'static str,
    /// Last name.
    pub last_name: Option<&'static str>,
    /// @username.
    pub username: Option<&'static str>,
    /// Language code.
    pub language_code: Option<&'static str>,
}

impl User {
    /// The user as the Bot API shows them.
    pub fn json(&self) -> Value {
        let mut v = json!({"id": self.id, "is_bot": false, "first_name": self.first_name});
        if let Some(l) = self.last_name {
            v["last_name"] = json!(l);
        }
        if let Some(u) = self.username {
            v["username"] = json!(u);
        }
        if let Some(c) = self.language_code {
            v["language_code"] = json!(c);
        }
        v
    }

    fn private_chat(&self) -> Value {
        let mut v = json!({"id": self.id, "type": "private", "first_name": self.first_name});
        if let Some(u) = self.username {
            v["username"] = json!(u);
        }
        v
    }
}

/// A way to fail a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500 with a Bot API error body.
    Internal,
    /// HTTP 502 with an HTML body (a proxy in front of the Bot API).
    BadGateway,
    /// HTTP 429 with `retry_after`.
    TooMany(u64),
}

/// One recorded call.
#[derive(Debug, Clone)]
pub struct Call {
    /// The method, as in the path.
    pub method: String,
    /// The JSON body.
    pub body: Value,
    /// The HTTP status answered.
    pub status: u16,
}

#[derive(Default)]
struct State {
    /// Every update ever queued, oldest first.
    updates: Vec<Value>,
    /// Updates below this id are confirmed (gone).
    confirmed: u64,
    next_update: u64,
    calls: Vec<Call>,
    /// Messages by (chat, id), as they are now.
    messages: HashMap<(i64, i64), Value>,
    next_message: HashMap<i64, i64>,
    /// Faults for the next calls of a method, in order.
    faults: Vec<(String, Fault)>,
    /// Methods that fail until cleared.
    broken: HashMap<String, Fault>,
    webhook: String,
    next_callback: u64,
    clock: i64,
}

impl State {
    fn message_id(&mut self, chat: i64) -> i64 {
        let next = self.next_message.entry(chat).or_insert(100);
        *next += 1;
        *next
    }

    fn now(&mut self) -> i64 {
        self.clock += 1;
        1_718_000_000 + self.clock
    }

    fn push_update(&mut self, kind: &str, value: Value) -> u64 {
        let id = self.next_update;
        self.next_update += 1;
        let mut update = json!({"update_id": id});
        update[kind] = value;
        self.updates.push(update);
        id
    }

    fn chat_json(&self, chat: i64) -> Value {
        if chat == STAFF_CHAT {
            json!({"id": chat, "title": "Shop staff", "type": "supergroup"})
        } else if chat < 0 {
            json!({"id": chat, "title": "Some group", "type": "group"})
        } else {
            json!({"id": chat, "type": "private", "first_name": "Customer"})
        }
    }

    /// A stored message without its own reply (Telegram nests one level).
    fn shallow(&self, chat: i64, id: i64) -> Option<Value> {
        let mut m = self.messages.get(&(chat, id))?.clone();
        if let Some(o) = m.as_object_mut() {
            o.remove("reply_to_message");
        }
        Some(m)
    }
}

/// The fake server.
pub struct FakeTelegram {
    /// Its base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    state: Arc<Mutex<State>>,
    server: JoinHandle<()>,
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn ok(result: Value) -> (u16, String) {
    (200, json!({"ok": true, "result": result}).to_string())
}

fn error(code: u16, description: &str) -> (u16, String) {
    (
        code,
        json!({"ok": false, "error_code": code, "description": description}).to_string(),
    )
}

impl FakeTelegram {
    /// The environment that points `frontdesk run` at this fake: the token,
    /// the staff chat and the API URL.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("FRONTDESK_TELEGRAM_TOKEN", TOKEN.to_string()),
            ("FRONTDESK_TELEGRAM_STAFF_CHAT", STAFF_CHAT.to_string()),
            ("FRONTDESK_TELEGRAM_API_URL", self.url.clone()),
        ]
    }

    /// Start on 127.0.0.1 with a free port; a webhook is set at first (the
    /// adapter must delete it before polling).
    pub async fn start() -> FakeTelegram {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            next_update: 700_000_001,
            webhook: "https://example.invalid/hook".into(),
            ..State::default()
        }));
        let s = state.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(connection(stream, s.clone()));
            }
        });
        FakeTelegram { url, state, server }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// A customer writes `text` in their private chat; returns the update id.
    pub fn text(&self, user: &User, text: &str) -> u64 {
        self.with(|s| {
            let chat = user.id;
            let id = s.message_id(chat);
            let mut m = json!({
                "message_id": id, "from": user.json(), "chat": user.private_chat(),
                "date": s.now(), "text": text
            });
            if text.starts_with('/') {
                let len = text
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .encode_utf16()
                    .count();
                m["entities"] = json!([{"offset": 0, "length": len, "type": "bot_command"}]);
            }
            s.messages.insert((chat, id), m.clone());
            s.push_update("message", m)
        })
    }

    /// A customer sends a photo with a caption.
    pub fn photo(&self, user: &User, caption: Option<&str>) -> u64 {
        self.with(|s| {
            let chat = user.id;
            let id = s.message_id(chat);
            let mut m = json!({
                "message_id": id, "from": user.json(), "chat": user.private_chat(), "date": s.now(),
                "photo": [
                    {"file_id": "AgACAgQAAxkBAAIBHm_small", "file_unique_id": "AQADs", "file_size": 1312, "width": 90, "height": 67},
                    {"file_id": "AgACAgQAAxkBAAIBHm_large", "file_unique_id": "AQADl", "file_size": 60123, "width": 1280, "height": 960}
                ]
            });
            if let Some(c) = caption {
                m["caption"] = json!(c);
            }
            s.messages.insert((chat, id), m.clone());
            s.push_update("message", m)
        })
    }

    /// A customer edits an earlier message (the adapter ignores edits).
    pub fn edit(&self, user: &User, message: i64, text: &str) -> u64 {
        self.with(|s| {
            let m = json!({
                "message_id": message, "from": user.json(), "chat": user.private_chat(),
                "date": s.now(), "edit_date": s.now(), "text": text
            });
            s.push_update("edited_message", m)
        })
    }

    /// Someone writes in the staff group, optionally as a reply to a message there.
    pub fn staff_text(&self, user: &User, text: &str, reply_to: Option<i64>) -> u64 {
        self.with(|s| {
            let id = s.message_id(STAFF_CHAT);
            let mut m = json!({
                "message_id": id, "from": user.json(), "chat": s.chat_json(STAFF_CHAT),
                "date": s.now(), "text": text
            });
            if let Some(r) = reply_to {
                m["reply_to_message"] =
                    s.shallow(STAFF_CHAT, r).expect("replied-to message exists");
            }
            if text.starts_with('/') {
                let len = text
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .encode_utf16()
                    .count();
                m["entities"] = json!([{"offset": 0, "length": len, "type": "bot_command"}]);
            }
            s.messages.insert((STAFF_CHAT, id), m.clone());
            s.push_update("message", m)
        })
    }

    /// Someone sends a sticker in the staff group as a reply to a message there.
    pub fn staff_sticker(&self, user: &User, reply_to: i64) -> u64 {
        self.with(|s| {
            let id = s.message_id(STAFF_CHAT);
            let m = json!({
                "message_id": id, "from": user.json(), "chat": s.chat_json(STAFF_CHAT),
                "date": s.now(),
                "reply_to_message": s.shallow(STAFF_CHAT, reply_to).expect("replied-to message exists"),
                "sticker": {
                    "width": 512, "height": 512, "emoji": "👍", "is_animated": false, "is_video": false,
                    "type": "regular", "file_id": "CAACAgIAAxkBAAIBH2Zz", "file_unique_id": "AgADst", "file_size": 24538
                }
            });
            s.messages.insert((STAFF_CHAT, id), m.clone());
            s.push_update("message", m)
        })
    }

    /// `user` presses the button with `data` under message `message` of `chat`.
    pub fn press(&self, user: &User, chat: i64, message: i64, data: &str) -> u64 {
        self.with(|s| {
            s.next_callback += 1;
            let q = json!({
                "id": format!("cbq-{}", s.next_callback),
                "from": user.json(),
                "message": s.shallow(chat, message).expect("pressed message exists"),
                "chat_instance": "-538822123456789",
                "data": data,
            });
            s.push_update("callback_query", q)
        })
    }

    /// Fail the next call of `method` with `fault` (faults queue up in order).
    pub fn fail_next(&self, method: &str, fault: Fault) {
        self.with(|s| s.faults.push((method.to_string(), fault)));
    }

    /// Fail every call of `method` until [`FakeTelegram::repair`].
    pub fn break_method(&self, method: &str, fault: Fault) {
        self.with(|s| s.broken.insert(method.to_string(), fault));
    }

    /// Stop failing `method`.
    pub fn repair(&self, method: &str) {
        self.with(|s| s.broken.remove(method));
    }

    /// Forget confirmations: every update is sent again (Telegram did not hear the offset).
    pub fn unconfirm_all(&self) {
        self.with(|s| s.confirmed = 0);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.with(|s| s.calls.clone())
    }

    /// Successful calls of `method`.
    pub fn ok_calls(&self, method: &str) -> Vec<Value> {
        self.with(|s| {
            s.calls
                .iter()
                .filter(|c| c.method == method && c.status == 200)
                .map(|c| c.body.clone())
                .collect()
        })
    }

    /// The messages the bot sent to `chat` (accepted ones), oldest first, as they are now.
    pub fn bot_messages(&self, chat: i64) -> Vec<Value> {
        self.with(|s| {
            let mut v: Vec<Value> = s
                .messages
                .iter()
                .filter(|((c, _), m)| *c == chat && m["from"]["id"] == json!(BOT_ID))
                .map(|(_, m)| m.clone())
                .collect();
            v.sort_by_key(|m| m["message_id"].as_i64());
            v
        })
    }

    /// The texts the bot sent to `chat`, oldest first.
    pub fn texts(&self, chat: i64) -> Vec<String> {
        self.bot_messages(chat)
            .iter()
            .map(|m| m["text"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// The latest bot message in `chat` whose text contains `needle`.
    pub fn find(&self, chat: i64, needle: &str) -> Option<Value> {
        self.bot_messages(chat)
            .into_iter()
            .rev()
            .find(|m| m["text"].as_str().is_some_and(|t| t.contains(needle)))
    }

    /// How many accepted messages to `chat` contain `needle`.
    pub fn count(&self, chat: i64, needle: &str) -> usize {
        self.texts(chat)
            .iter()
            .filter(|t| t.contains(needle))
            .count()
    }

    /// Whether the webhook is still set.
    pub fn webhook_set(&self) -> bool {
        self.with(|s| !s.webhook.is_empty())
    }

    /// The lowest update id not confirmed yet.
    pub fn confirmed(&self) -> u64 {
        self.with(|s| s.confirmed)
    }

    /// Wait (bounded) until `check` holds; panics with `what` and the texts seen.
    pub async fn wait_for(&self, what: &str, mut check: impl FnMut(&FakeTelegram) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if check(self) {
                return;
            }
            if Instant::now() > deadline {
                let calls: Vec<String> = self
                    .calls()
                    .iter()
                    .filter(|c| c.method != "getUpdates")
                    .map(|c| format!("{} {} {}", c.status, c.method, c.body))
                    .collect();
                panic!(
                    "timed out waiting for: {what}\ncalls:\n{}",
                    calls.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Wait until a bot message in `chat` contains `needle`; returns it.
    pub async fn wait_message(&self, chat: i64, needle: &str) -> Value {
        self.wait_for(&format!("a message in {chat} containing {needle:?}"), |f| {
            f.find(chat, needle).is_some()
        })
        .await;
        self.find(chat, needle).unwrap()
    }

    /// Wait until the adapter has confirmed (polled past) update `id`.
    pub async fn wait_confirmed(&self, id: u64) {
        self.wait_for(&format!("update {id} confirmed"), |f| f.confirmed() > id)
            .await;
    }
}

/// The callback data of every button under a message.
pub fn callback_data(message: &Value) -> Vec<String> {
    message["reply_markup"]["inline_keyboard"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .flat_map(|r| r.as_array().cloned().unwrap_or_default())
                .filter_map(|b| b["callback_data"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A message's id.
pub fn id_of(message: &Value) -> i64 {
    message["message_id"].as_i64().expect("message_id")
}

async fn connection(stream: TcpStream, state: Arc<Mutex<State>>) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        match reader.read_line(&mut request_line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        let mut length = 0usize;
        let mut close = false;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.parse().unwrap_or(0),
                    "connection" => close = value.eq_ignore_ascii_case("close"),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let (status, content_type, text) = route(&state, &path, &body).await;
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            404 => "Not Found",
            409 => "Conflict",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            502 => "Bad Gateway",
            _ => "Status",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{}\r\n",
            text.len(),
            if close { "connection: close\r\n" } else { "" }
        );
        // One write: a head and a body in two segments meet Nagle's algorithm
        // and delayed ACKs (40 ms a call).
        let response = [head.as_bytes(), text.as_bytes()].concat();
        if write.write_all(&response).await.is_err() || write.flush().await.is_err() {
            return;
        }
        if close {
            return;
        }
    }
}

async fn route(state: &Arc<Mutex<State>>, path: &str, body: &[u8]) -> (u16, &'static str, String) {
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).unwrap_or(json!({}))
    };
    let Some(rest) = path.strip_prefix("/bot") else {
        let (s, t) = error(404, "Not Found");
        return (s, "application/json", t);
    };
    let Some((token, method)) = rest.split_once('/') else {
        let (s, t) = error(404, "Not Found");
        return (s, "application/json", t);
    };
    let method = method.to_string();
    let record = |status: u16| {
        state.lock().unwrap().calls.push(Call {
            method: method.clone(),
            body: body.clone(),
            status,
        });
    };
    if token != TOKEN {
        record(401);
        let (s, t) = error(401, "Unauthorized");
        return (s, "application/json", t);
    }
    let fault = {
        let mut s = state.lock().unwrap();
        match s.faults.iter().position(|(m, _)| *m == method) {
            Some(i) => Some(s.faults.remove(i).1),
            None => s.broken.get(&method).copied(),
        }
    };
    if let Some(fault) = fault {
        let (status, content_type, text) = match fault {
            Fault::Internal => {
                let (s, t) = error(500, "Internal Server Error");
                (s, "application/json", t)
            }
            Fault::BadGateway => (
                502,
                "text/html",
                "<html><body><h1>502 Bad Gateway</h1></body></html>".to_string(),
            ),
            Fault::TooMany(secs) => (
                429,
                "application/json",
                json!({
                    "ok": false, "error_code": 429,
                    "description": format!("Too Many Requests: retry after {secs}"),
                    "parameters": {"retry_after": secs}
                })
                .to_string(),
            ),
        };
        record(status);
        return (status, content_type, text);
    }
    if method == "getUpdates" {
        let (status, text) = get_updates(state, &body).await;
        record(status);
        return (status, "application/json", text);
    }
    let (status, text) = {
        let mut s = state.lock().unwrap();
        call(&mut s, &method, &body)
    };
    record(status);
    (status, "application/json", text)
}

async fn get_updates(state: &Arc<Mutex<State>>, body: &Value) -> (u16, String) {
    let offset = body["offset"].as_u64();
    let hold = Duration::from_secs(body["timeout"].as_u64().unwrap_or(0)).min(MAX_HOLD);
    let deadline = Instant::now() + hold;
    {
        let mut s = state.lock().unwrap();
        if !s.webhook.is_empty() {
            return error(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            );
        }
        // The offset confirms once, when the call arrives (a poll still held
        // after its client went away must not confirm again later).
        if let Some(o) = offset {
            s.confirmed = s.confirmed.max(o);
        }
    }
    loop {
        {
            let s = state.lock().unwrap();
            let from = offset.unwrap_or(0).max(s.confirmed);
            let limit = body["limit"].as_u64().unwrap_or(100) as usize;
            let ready: Vec<Value> = s
                .updates
                .iter()
                .filter(|u| u["update_id"].as_u64().unwrap_or(0) >= from)
                .take(limit)
                .cloned()
                .collect();
            if !ready.is_empty() || Instant::now() >= deadline {
                return ok(Value::Array(ready));
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn call(s: &mut State, method: &str, body: &Value) -> (u16, String) {
    match method {
        "getMe" => ok(json!({
            "id": BOT_ID, "is_bot": true, "first_name": "Shop", "username": BOT_USERNAME,
            "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "has_main_web_app": false
        })),
        "getWebhookInfo" => ok(json!({
            "url": s.webhook, "has_custom_certificate": false, "pending_update_count": 0
        })),
        "deleteWebhook" => {
            s.webhook.clear();
            ok(json!(true))
        }
        "sendMessage" => {
            let Some(chat) = body["chat_id"].as_i64() else {
                return error(400, "Bad Request: chat_id is empty");
            };
            let text = body["text"].as_str().unwrap_or("");
            if text.trim().is_empty() {
                return error(400, "Bad Request: message text is empty");
            }
            if text.encode_utf16().count() > 4096 {
                return error(400, "Bad Request: message is too long");
            }
            if chat > 0 && chat < 1000 {
                return error(400, "Bad Request: chat not found");
            }
            for data in callback_data(body) {
                if data.is_empty() || data.len() > 64 {
                    return error(400, "Bad Request: BUTTON_DATA_INVALID");
                }
            }
            let id = s.message_id(chat);
            let mut m = json!({
                "message_id": id,
                "from": {"id": BOT_ID, "is_bot": true, "first_name": "Shop", "username": BOT_USERNAME},
                "chat": s.chat_json(chat),
                "date": s.now(),
                "text": text,
            });
            if body["reply_markup"].is_object() {
                m["reply_markup"] = body["reply_markup"].clone();
            }
            if let Some(r) = body["reply_parameters"]["message_id"].as_i64()
                && let Some(replied) = s.shallow(chat, r)
            {
                m["reply_to_message"] = replied;
            }
            s.messages.insert((chat, id), m.clone());
            ok(m)
        }
        "editMessageText" | "editMessageReplyMarkup" => {
            let (Some(chat), Some(id)) = (body["chat_id"].as_i64(), body["message_id"].as_i64())
            else {
                return error(400, "Bad Request: message identifier is not specified");
            };
            let Some(current) = s.messages.get(&(chat, id)).cloned() else {
                return error(400, "Bad Request: message to edit not found");
            };
            let mut next = current.clone();
            if method == "editMessageText" {
                next["text"] = body["text"].clone();
            }
            let markup = &body["reply_markup"];
            let empty = markup["inline_keyboard"]
                .as_array()
                .is_none_or(|rows| rows.is_empty());
            match next.as_object_mut() {
                Some(o) if empty => {
                    o.remove("reply_markup");
                }
                Some(o) => {
                    o.insert("reply_markup".into(), markup.clone());
                }
                None => {}
            }
            if next == current {
                return error(
                    400,
                    "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
                );
            }
            s.messages.insert((chat, id), next.clone());
            ok(next)
        }
        "answerCallbackQuery" => ok(json!(true)),
        _ => error(404, "Not Found: method not found"),
    }
}

//! The Bot API client: teloxide's payload types (`GetUpdates`, `SendMessage`,
//! …) sent through the HTTP client of a teloxide [`Bot`], with the response
//! handled here rather than by teloxide's request layer.
//!
//! Why not `bot.send_message(..).await`: teloxide's request layer sleeps 10 s
//! after any HTTP 5xx before it even reads the body, does not expose the HTTP
//! status, and insists on parsing every reply into its full `Message` type (a
//! server that adds a field teloxide does not know would turn a message that
//! *was* sent into an error, and the outbox would send it twice). Here the
//! status and the Bot API's `error_code`, `description` and `retry_after` are
//! kept, results are parsed into only what the adapter needs, and every error
//! is free of the token: request URLs are never shown and the token is
//! scrubbed from any text that leaves this module.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use teloxide::Bot;
use teloxide::requests::Payload;

/// A failed Bot API call. Its text never contains the bot token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The request did not get an HTTP response (connection refused, reset, timed out).
    #[error("{method}: network error: {message}")]
    Network {
        /// The Bot API method.
        method: String,
        /// What happened (no URL, no token).
        message: String,
    },
    /// The Bot API answered `ok: false` or with an HTTP error status.
    #[error("{method}: HTTP {status}: {description}")]
    Refused {
        /// The Bot API method.
        method: String,
        /// The Bot API's `error_code`, else the HTTP status.
        status: u16,
        /// The Bot API's `description` (or a short excerpt of the body).
        description: String,
        /// `parameters.retry_after`, seconds (with HTTP 429).
        retry_after: Option<u64>,
        /// `parameters.migrate_to_chat_id` (the group became a supergroup).
        migrate_to_chat_id: Option<i64>,
    },
    /// A successful answer that could not be read.
    #[error("{method}: unreadable response (HTTP {status}): {message}")]
    BadResponse {
        /// The Bot API method.
        method: String,
        /// The HTTP status.
        status: u16,
        /// What could not be read.
        message: String,
    },
}

impl ApiError {
    /// The HTTP / Bot API status, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Network { .. } => None,
            ApiError::Refused { status, .. } | ApiError::BadResponse { status, .. } => {
                Some(*status)
            }
        }
    }

    /// True when the same call may succeed later: network errors, HTTP 5xx, 429.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Network { .. } => true,
            ApiError::Refused { status, .. } => *status == 429 || *status >= 500,
            ApiError::BadResponse { status, .. } => *status >= 500,
        }
    }

    /// The wait the Bot API asked for (HTTP 429 `retry_after`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Refused {
                retry_after: Some(secs),
                ..
            } => Some(Duration::from_secs(*secs)),
            _ => None,
        }
    }

    /// True when the token was refused (401, or 404 for a malformed token).
    pub fn is_unauthorized(&self) -> bool {
        matches!(
            self,
            ApiError::Refused {
                status: 401 | 404,
                ..
            }
        )
    }

    /// True when the description contains `needle` (case-insensitive).
    pub fn says(&self, needle: &str) -> bool {
        match self {
            ApiError::Refused { description, .. } => {
                description.to_lowercase().contains(&needle.to_lowercase())
            }
            _ => false,
        }
    }
}

/// The Bot API envelope: `{"ok": …, "result": …, "error_code": …, "description": …, "parameters": …}`.
#[derive(serde::Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    result: Option<serde_json::Value>,
    #[serde(default)]
    error_code: Option<u16>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Parameters>,
}

#[derive(serde::Deserialize)]
struct Parameters {
    #[serde(default)]
    retry_after: Option<u64>,
    #[serde(default)]
    migrate_to_chat_id: Option<i64>,
}

/// A Bot API client over a teloxide [`Bot`] (its token, base URL and HTTP client).
#[derive(Clone)]
pub struct Api {
    bot: Bot,
    timeout: Duration,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Api {
    /// A client for `token` on the Bot API server at `api_url`; `timeout`
    /// bounds each call (long polls get their poll time on top).
    pub fn new(token: &str, api_url: &str, timeout: Duration) -> Result<Api, String> {
        let url = api_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "the Bot API URL \"{}\" must start with http:// or https://",
                scrub(url, token)
            ));
        }
        let bot =
            with_parsed_url(url, |parsed| Bot::new(token).set_api_url(parsed)).map_err(|e| {
                format!(
                    "the Bot API URL \"{}\" is invalid: {}",
                    scrub(url, token),
                    scrub(&e, token)
                )
            })?;
        Ok(Api { bot, timeout })
    }

    /// The token, to scrub it from texts.
    pub fn token(&self) -> &str {
        self.bot.token()
    }

    /// Call a Bot API method with teloxide's `payload`, reading the result as `R`.
    pub async fn call<P, R>(&self, payload: &P) -> Result<R, ApiError>
    where
        P: Payload + Serialize,
        R: DeserializeOwned,
    {
        self.call_with_timeout(payload, self.timeout).await
    }

    /// [`Api::call`] with its own time limit (long polls).
    pub async fn call_with_timeout<P, R>(
        &self,
        payload: &P,
        timeout: Duration,
    ) -> Result<R, ApiError>
    where
        P: Payload + Serialize,
        R: DeserializeOwned,
    {
        let method = method_name(P::NAME);
        let token = self.bot.token();
        let body = serde_json::to_vec(payload).map_err(|e| ApiError::BadResponse {
            method: method.clone(),
            status: 0,
            message: format!("cannot encode the request: {e}"),
        })?;
        let mut url = self.bot.api_url();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            segments.push(&format!("bot{token}"));
            segments.push(&method);
        }
        let network = |e: &dyn std::error::Error| ApiError::Network {
            method: method.clone(),
            message: scrub(&error_chain(e), token),
        };
        let response = self
            .bot
            .client()
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| network(&e.without_url()))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| network(&e.without_url()))?;
        read_response(&method, status, &bytes, token)
    }
}

/// Read a Bot API answer: the result as `R`, or the error it describes.
pub fn read_response<R: DeserializeOwned>(
    method: &str,
    status: u16,
    body: &[u8],
    token: &str,
) -> Result<R, ApiError> {
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(e) => {
            let excerpt: String = String::from_utf8_lossy(body).chars().take(200).collect();
            let excerpt = scrub(excerpt.trim(), token);
            return Err(if (200..300).contains(&status) {
                ApiError::BadResponse {
                    method: method.to_string(),
                    status,
                    message: format!("{e}: {excerpt}"),
                }
            } else {
                ApiError::Refused {
                    method: method.to_string(),
                    status,
                    description: if excerpt.is_empty() {
                        "(no description)".into()
                    } else {
                        excerpt
                    },
                    retry_after: None,
                    migrate_to_chat_id: None,
                }
            });
        }
    };
    if envelope.ok && (200..300).contains(&status) {
        let result = envelope.result.unwrap_or(serde_json::Value::Bool(true));
        return serde_json::from_value(result).map_err(|e| ApiError::BadResponse {
            method: method.to_string(),
            status,
            message: scrub(&e.to_string(), token),
        });
    }
    let parameters = envelope.parameters;
    let retry_after = parameters.as_ref().and_then(|p| p.retry_after);
    Err(ApiError::Refused {
        method: method.to_string(),
        status: envelope
            .error_code
            .filter(|c| *c >= 400)
            .unwrap_or(if status >= 400 { status } else { 400 }),
        description: scrub(
            envelope
                .description
                .as_deref()
                .unwrap_or("(no description)"),
            token,
        ),
        retry_after,
        migrate_to_chat_id: parameters.and_then(|p| p.migrate_to_chat_id),
    })
}

/// teloxide names payloads `SendMessage`; the Bot API documents `sendMessage`.
fn method_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// An error and its sources, joined with ": ".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s = s.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = source.and_then(|x| x.source());
    }
    text
}

/// `text` with every occurrence of the token (and of its secret half) replaced.
pub fn scrub(text: &str, token: &str) -> String {
    let mut out = text.to_string();
    if token.len() >= 4 {
        out = out.replace(token, "<token>");
    }
    if let Some((_, secret)) = token.split_once(':')
        && secret.len() >= 4
    {
        out = out.replace(secret, "<token>");
    }
    out
}

/// Parse `text` as the URL type `make` takes (reqwest's `Url`, which this
/// crate does not name) and build with it.
fn with_parsed_url<T, F>(text: &str, make: F) -> Result<Bot, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
    F: FnOnce(T) -> Bot,
{
    let parsed = text.parse::<T>().map_err(|e| e.to_string())?;
    Ok(make(parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "123456789:AAHfakeFAKEfake_fake-fakeFAKEfake12";

    #[test]
    fn method_names_are_camel_case() {
        assert_eq!(method_name("SendMessage"), "sendMessage");
        assert_eq!(method_name("GetUpdates"), "getUpdates");
    }

    #[test]
    fn reads_results_and_errors() {
        let ok: serde_json::Value =
            read_response("getMe", 200, br#"{"ok":true,"result":{"id":1}}"#, TOKEN).unwrap();
        assert_eq!(ok["id"], 1);
        let e = read_response::<serde_json::Value>(
            "sendMessage",
            429,
            br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}"#,
            TOKEN,
        )
        .unwrap_err();
        assert!(e.is_transient());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        let e = read_response::<serde_json::Value>(
            "sendMessage",
            403,
            br#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
            TOKEN,
        )
        .unwrap_err();
        assert!(!e.is_transient());
        assert!(e.says("blocked"));
        let e = read_response::<serde_json::Value>(
            "sendMessage",
            502,
            b"<html>Bad Gateway</html>",
            TOKEN,
        )
        .unwrap_err();
        assert!(e.is_transient(), "{e}");
        let e = read_response::<serde_json::Value>(
            "getMe",
            401,
            br#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
            TOKEN,
        )
        .unwrap_err();
        assert!(e.is_unauthorized());
    }

    #[test]
    fn the_token_is_scrubbed() {
        let text = format!("error for url (http://x/bot{TOKEN}/getMe)");
        let clean = scrub(&text, TOKEN);
        assert!(!clean.contains("AAHfake"), "{clean}");
        let e = read_response::<serde_json::Value>(
            "getMe",
            500,
            format!("oops {TOKEN}").as_bytes(),
            TOKEN,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("AAHfake"), "{e}");
    }

    #[tokio::test]
    async fn network_errors_do_not_show_the_url_or_token() {
        // A port nobody listens on: bind, note the port, close.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let api = Api::new(
            TOKEN,
            &format!("http://127.0.0.1:{port}"),
            Duration::from_secs(5),
        )
        .unwrap();
        let e = api
            .call::<_, serde_json::Value>(&teloxide::payloads::GetMe::new())
            .await
            .unwrap_err();
        assert!(matches!(e, ApiError::Network { .. }), "{e}");
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("AAHfake"), "{shown}");
        assert!(!shown.contains("/bot"), "{shown}");
    }

    #[test]
    fn bad_urls_are_refused_without_the_token() {
        let e = Api::new(TOKEN, "ftp://example.org", Duration::from_secs(1)).unwrap_err();
        assert!(e.contains("http://"), "{e}");
        let e = Api::new(
            TOKEN,
            &format!("http://[::1/{TOKEN}"),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(!e.contains("AAHfake"), "{e}");
    }
}

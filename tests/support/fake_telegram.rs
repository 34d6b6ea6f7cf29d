//! A fake Telegram Bot API over real HTTP (axum on 127.0.0.1, random port),
//! validating `sendMessage` the way Telegram's server does: the token, the
//! chat, HTML parse mode (allowed tags only, balanced, entities), 4096
//! characters after parsing and 32,768 raw bytes. It answers 429 (with
//! `parameters.retry_after` and a `Retry-After` header), 5xx, 403, 401 and any
//! 400 on demand, enforces the 429 penalty it gave (noting every request that
//! arrives inside one), and records every accepted message.
//!
//! `sendPhoto` is accepted the way Telegram takes an upload: multipart form
//! data with the chat, the photo as a file part (named `photo`, or another
//! part that `photo = "attach://<name>"` points to, as teloxide sends it),
//! an optional caption checked with the same HTML rules and at most 1024
//! characters after entity parsing, and an image that must decode as a PNG
//! (`png` crate). The same scripted failures and 429 penalties apply.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The token the fake accepts.
pub const TOKEN: &str = "7123456789:AAF-test_SECRET-token0123456789abcdef";
/// A channel the bot may post to.
pub const CHANNEL: &str = "@cstowatch_test";
/// A second chat, by numeric id.
pub const GROUP: &str = "-1001234567890";

/// A failure the fake answers with instead of accepting.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Not a failure: handle the request normally (to script "ok, then fail").
    Pass,
    /// 429 with this `retry_after`, and a penalty window that long.
    TooManyRequests { retry_after: u32 },
    /// 5xx with this status.
    ServerError(u16),
    /// 403 "Forbidden: bot is not a member of the channel chat".
    Forbidden,
    /// 401 "Unauthorized".
    Unauthorized,
    /// 400 with this description.
    BadRequest(String),
}

/// A message the fake accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub chat: String,
    /// The `text` field as sent.
    pub text: String,
    pub parse_mode: Option<String>,
    /// The text a reader sees (tags removed, entities decoded).
    pub visible: String,
    /// `href`s of the links, decoded.
    pub links: Vec<String>,
    pub link_preview_disabled: bool,
    pub message_id: i64,
    pub at: Instant,
    /// For `sendPhoto`: the uploaded image (`text` is then its caption).
    pub photo: Option<Photo>,
}

/// An image uploaded with `sendPhoto`, decoded.
#[derive(Debug, Clone)]
pub struct Photo {
    pub width: u32,
    pub height: u32,
    /// The file as uploaded.
    pub png: Vec<u8>,
    /// Pixels as RGB triples, row by row (converted from whatever PNG colour type came).
    pub rgb: Vec<u8>,
}

/// Telegram's limit on a caption, in characters after entity parsing.
pub const CAPTION_LIMIT: usize = 1024;

/// One request the fake understood, before the chat's checks.
struct Outbound {
    chat: String,
    text: String,
    parse_mode: Option<String>,
    link_preview_disabled: bool,
    /// `sendPhoto`'s upload, not yet checked.
    upload: Option<Vec<u8>>,
}

/// Every `sendMessage` request, whatever the answer.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// The URL path, as requested.
    pub path: String,
    pub chat: String,
    pub status: u16,
    pub at: Instant,
    /// It came while a 429 penalty the fake gave this chat was still running.
    pub inside_penalty: bool,
}

#[derive(Default)]
struct FakeState {
    next_message_id: i64,
    chats: HashMap<String, i64>,
    forbidden: HashSet<String>,
    scripted: VecDeque<Failure>,
    always: Option<Failure>,
    penalties: HashMap<String, Instant>,
    accepted: Vec<Accepted>,
    requests: Vec<RequestRecord>,
}

/// The running fake; the server stops when this is dropped.
pub struct FakeTelegram {
    /// Base URL to give as `[telegram] api_url`.
    pub url: String,
    state: Arc<Mutex<FakeState>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeTelegram {
    /// Starts the fake with [`CHANNEL`] and [`GROUP`] as known chats.
    pub async fn start() -> FakeTelegram {
        let mut state = FakeState {
            next_message_id: 1,
            ..FakeState::default()
        };
        state.chats.insert(CHANNEL.to_string(), -1_001_000_000_001);
        state.chats.insert(GROUP.to_string(), -1_001_234_567_890);
        let state = Arc::new(Mutex::new(state));
        let app = Router::new()
            .route("/{*path}", axum::routing::post(handle))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeTelegram { url, state, server }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap()
    }

    /// Answers the next requests with these, in order.
    pub fn fail_next(&self, failures: impl IntoIterator<Item = Failure>) {
        self.state().scripted.extend(failures);
    }

    /// Answers every request with this until cleared with `None`.
    pub fn fail_always(&self, failure: Option<Failure>) {
        self.state().always = failure;
    }

    /// The bot is no longer allowed to post to `chat` (403).
    pub fn forbid(&self, chat: &str) {
        self.state().forbidden.insert(chat.to_string());
    }

    pub fn accepted(&self) -> Vec<Accepted> {
        self.state().accepted.clone()
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state().requests.clone()
    }

    /// Requests that came inside a 429 penalty window.
    pub fn penalty_violations(&self) -> usize {
        self.state().requests.iter().filter(|r| r.inside_penalty).count()
    }
}

fn error(status: StatusCode, description: &str, retry_after: Option<u32>) -> Response {
    let mut body = json!({"ok": false, "error_code": status.as_u16(), "description": description});
    let mut headers = HeaderMap::new();
    if let Some(seconds) = retry_after {
        body["parameters"] = json!({"retry_after": seconds});
        headers.insert("retry-after", HeaderValue::from(seconds));
    }
    (status, headers, axum::Json(body)).into_response()
}

fn failure_response(failure: &Failure) -> Option<(StatusCode, String, Option<u32>)> {
    Some(match failure {
        Failure::Pass => return None,
        Failure::TooManyRequests { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too Many Requests: retry after {retry_after}"),
            Some(*retry_after),
        ),
        Failure::ServerError(code) => (
            StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "Internal Server Error".to_string(),
            None,
        ),
        Failure::Forbidden => (
            StatusCode::FORBIDDEN,
            "Forbidden: bot is not a member of the channel chat".to_string(),
            None,
        ),
        Failure::Unauthorized => (StatusCode::UNAUTHORIZED, "Unauthorized".to_string(), None),
        Failure::BadRequest(d) => (StatusCode::BAD_REQUEST, d.clone(), None),
    })
}

async fn handle(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = Instant::now();
    // Any prefix is allowed before `/bot<token>/<method>` (self-hosted servers live under a path).
    let mut segments = path.rsplit('/');
    let (Some(method), Some(token_part)) = (segments.next(), segments.next()) else {
        return error(StatusCode::NOT_FOUND, "Not Found", None);
    };
    if token_part.strip_prefix("bot") != Some(TOKEN) {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized", None);
    }
    // Telegram ignores the case of method names; teloxide sends `SendMessage`.
    let outbound = if method.eq_ignore_ascii_case("sendmessage") {
        message_request(&body)
    } else if method.eq_ignore_ascii_case("sendphoto") {
        photo_request(headers, body).await
    } else {
        return error(StatusCode::NOT_FOUND, "Not Found: method not found", None);
    };
    let Outbound {
        chat,
        text,
        parse_mode,
        link_preview_disabled,
        upload,
    } = match outbound {
        Ok(outbound) => outbound,
        Err(description) => return error(StatusCode::BAD_REQUEST, &description, None),
    };
    let mut s = state.lock().unwrap();
    let penalty = s.penalties.get(&chat).copied().filter(|until| *until > now);
    let mut record = RequestRecord {
        path: path.clone(),
        chat: chat.clone(),
        status: 200,
        at: now,
        inside_penalty: penalty.is_some(),
    };
    let answer = 'answer: {
        if let Some(until) = penalty {
            let left = until.duration_since(now).as_secs_f64().ceil() as u32;
            break 'answer Err((
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too Many Requests: retry after {left}"),
                Some(left.max(1)),
            ));
        }
        let scripted = s.scripted.pop_front().or_else(|| s.always.clone());
        if let Some(failure) = scripted.as_ref().and_then(failure_response) {
            break 'answer Err(failure);
        }
        let Some(chat_numeric) = s.chats.get(&chat).copied() else {
            break 'answer Err((
                StatusCode::BAD_REQUEST,
                "Bad Request: chat not found".into(),
                None,
            ));
        };
        if s.forbidden.contains(&chat) {
            break 'answer Err((
                StatusCode::FORBIDDEN,
                "Forbidden: bot is not a member of the channel chat".into(),
                None,
            ));
        }
        let checked = match &upload {
            None => validate(&text, parse_mode.as_deref()).map(|checked| (checked, None)),
            Some(upload) => validate_caption(&text, parse_mode.as_deref())
                .and_then(|checked| Ok((checked, Some(decode_png(upload)?)))),
        };
        match checked {
            Err(description) => Err((StatusCode::BAD_REQUEST, description, None)),
            Ok(((visible, links), photo)) => Ok((chat_numeric, text, parse_mode, visible, links, photo)),
        }
    };
    match answer {
        Err((status, description, retry_after)) => {
            if let Some(seconds) = retry_after {
                let until = now + Duration::from_secs(u64::from(seconds));
                s.penalties.insert(chat.clone(), until);
            }
            record.status = status.as_u16();
            s.requests.push(record);
            error(status, &description, retry_after)
        }
        Ok((chat_numeric, text, parse_mode, visible, links, photo)) => {
            let message_id = s.next_message_id;
            s.next_message_id += 1;
            s.requests.push(record);
            s.accepted.push(Accepted {
                chat: chat.clone(),
                text,
                parse_mode,
                visible: visible.clone(),
                links,
                link_preview_disabled,
                message_id,
                at: now,
                photo,
            });
            let chat_json = json!({"id": chat_numeric, "type": "channel", "title": "Test channel"});
            let date = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            axum::Json(json!({"ok": true, "result": {
                "message_id": message_id,
                "sender_chat": chat_json,
                "chat": chat_json,
                "date": date,
                "text": visible,
            }}))
            .into_response()
        }
    }
}

/// A `sendMessage` JSON body.
fn message_request(body: &[u8]) -> Result<Outbound, String> {
    let request: Value = serde_json::from_slice(body).map_err(|_| "Bad Request: invalid JSON".to_string())?;
    let chat = match &request["chat_id"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err("Bad Request: chat_id is empty".into()),
    };
    Ok(Outbound {
        chat,
        text: request["text"].as_str().unwrap_or_default().to_string(),
        parse_mode: request["parse_mode"].as_str().map(str::to_string),
        link_preview_disabled: request["link_preview_options"]["is_disabled"] == Value::Bool(true),
        upload: None,
    })
}

/// A `sendPhoto` multipart body: text fields, and the photo as a file part
/// named `photo` or named by `photo = "attach://<name>"`.
async fn photo_request(headers: HeaderMap, body: Bytes) -> Result<Outbound, String> {
    use axum::extract::{FromRequest, Multipart};
    let mut request = axum::extract::Request::new(axum::body::Body::from(body));
    *request.headers_mut() = headers;
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| format!("Bad Request: not multipart form data ({e})"))?;
    let mut fields: HashMap<String, Vec<u8>> = HashMap::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| format!("Bad Request: broken multipart body ({e})"))?
    {
        let name = field.name().unwrap_or_default().to_string();
        let data = field
            .bytes()
            .await
            .map_err(|e| format!("Bad Request: broken multipart body ({e})"))?;
        fields.insert(name, data.to_vec());
    }
    let text = |name: &str| fields.get(name).map(|v| String::from_utf8_lossy(v).into_owned());
    let chat = text("chat_id")
        .filter(|c| !c.is_empty())
        .ok_or("Bad Request: chat_id is empty")?;
    let photo_field = fields
        .get("photo")
        .ok_or("Bad Request: there is no photo in the request")?;
    let upload = match std::str::from_utf8(photo_field)
        .ok()
        .and_then(|v| v.strip_prefix("attach://"))
    {
        Some(part) => fields
            .get(part)
            .ok_or_else(|| format!("Bad Request: file attach://{part} not found in the request"))?
            .clone(),
        None => photo_field.clone(),
    };
    Ok(Outbound {
        chat,
        text: text("caption").unwrap_or_default(),
        parse_mode: text("parse_mode"),
        link_preview_disabled: false,
        upload: Some(upload),
    })
}

/// Telegram's checks on a caption: the parse mode's rules and at most
/// [`CAPTION_LIMIT`] characters after entity parsing; empty is allowed.
pub fn validate_caption(caption: &str, parse_mode: Option<&str>) -> Result<(String, Vec<String>), String> {
    let (visible, links) = match parse_mode {
        None => (caption.to_string(), Vec::new()),
        Some(mode) if mode.eq_ignore_ascii_case("html") => parse_html(caption)?,
        Some(other) => return Err(format!("Bad Request: unsupported parse_mode {other:?}")),
    };
    if visible.chars().count() > CAPTION_LIMIT {
        return Err("Bad Request: message caption is too long".into());
    }
    Ok((visible, links))
}

/// The upload decoded as a PNG, as Telegram refuses an image it cannot process.
fn decode_png(upload: &[u8]) -> Result<Photo, String> {
    let refused = |e: png::DecodingError| format!("Bad Request: IMAGE_PROCESS_FAILED ({e})");
    let mut decoder = png::Decoder::new(std::io::Cursor::new(upload));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(refused)?;
    let mut pixels = vec![
        0;
        reader
            .output_buffer_size()
            .ok_or("Bad Request: PHOTO_INVALID_DIMENSIONS")?
    ];
    let frame = reader.next_frame(&mut pixels).map_err(refused)?;
    let pixels = &pixels[..frame.buffer_size()];
    let rgb = match frame.color_type {
        png::ColorType::Rgb => pixels.to_vec(),
        png::ColorType::Rgba => pixels.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect(),
        png::ColorType::Grayscale => pixels.iter().flat_map(|&g| [g, g, g]).collect(),
        png::ColorType::GrayscaleAlpha => pixels.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0]]).collect(),
        png::ColorType::Indexed => {
            return Err("Bad Request: IMAGE_PROCESS_FAILED (palette not expanded)".into());
        }
    };
    Ok(Photo {
        width: frame.width,
        height: frame.height,
        png: upload.to_vec(),
        rgb,
    })
}

/// Telegram's checks on a message text: byte limit, parse mode, emptiness,
/// character limit. Returns the visible text and the links' hrefs.
pub fn validate(text: &str, parse_mode: Option<&str>) -> Result<(String, Vec<String>), String> {
    if text.len() > 32_768 {
        return Err("Bad Request: text is too long".into());
    }
    let (visible, links) = match parse_mode {
        None => (text.to_string(), Vec::new()),
        Some(mode) if mode.eq_ignore_ascii_case("html") => parse_html(text)?,
        Some(other) => return Err(format!("Bad Request: unsupported parse_mode {other:?}")),
    };
    if visible.trim().is_empty() {
        return Err("Bad Request: message text is empty".into());
    }
    if visible.chars().count() > 4096 {
        return Err("Bad Request: message is too long".into());
    }
    Ok((visible, links))
}

const ALLOWED_TAGS: &[&str] = &[
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "tg-spoiler",
    "span",
    "a",
    "tg-emoji",
    "tg-time",
    "code",
    "pre",
    "blockquote",
];

fn cant_parse(detail: String) -> String {
    format!("Bad Request: can't parse entities: {detail}")
}

/// Parses Telegram HTML like the Bot API: allowed tags only, properly
/// nested, `&lt; &gt; &amp; &quot;` and numeric entities decoded (other named
/// entities stay literal).
pub fn parse_html(text: &str) -> Result<(String, Vec<String>), String> {
    let bytes = text.as_bytes();
    let mut visible = String::new();
    let mut links = Vec::new();
    let mut open: Vec<(String, usize)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' => {
                let Some(end) = text[i..].find('>').map(|e| i + e) else {
                    return Err(cant_parse(format!("Unclosed start tag at byte offset {i}")));
                };
                let inner = &text[i + 1..end];
                if let Some(name) = inner.strip_prefix('/') {
                    let name = name.trim().to_ascii_lowercase();
                    match open.pop() {
                        Some((top, _)) if top == name => {}
                        Some((top, _)) => {
                            return Err(cant_parse(format!(
                                "Can't find end tag corresponding to start tag \"{top}\" (found \"</{name}>\" at byte offset {i})"
                            )));
                        }
                        None => {
                            return Err(cant_parse(format!(
                                "Unmatched end tag at byte offset {i}, expected \"</>\", found \"</{name}>\""
                            )));
                        }
                    }
                } else {
                    let name_end = inner
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                        .unwrap_or(inner.len());
                    let name = inner[..name_end].to_ascii_lowercase();
                    if !ALLOWED_TAGS.contains(&name.as_str()) {
                        return Err(cant_parse(format!(
                            "Unsupported start tag \"{name}\" at byte offset {i}"
                        )));
                    }
                    let attributes = parse_attributes(&inner[name_end..])
                        .map_err(|d| cant_parse(format!("{d} at byte offset {i}")))?;
                    match name.as_str() {
                        "a" => {
                            let href = attributes.get("href").cloned().unwrap_or_default();
                            links.push(href);
                        }
                        "span" if attributes.get("class").map(String::as_str) != Some("tg-spoiler") => {
                            return Err(cant_parse(format!(
                                "Tag \"span\" must have class \"tg-spoiler\" at byte offset {i}"
                            )));
                        }
                        _ => {}
                    }
                    open.push((name, i));
                }
                i = end + 1;
            }
            b'&' => {
                let rest = &text[i..];
                let entity_end = rest[1..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'));
                let decoded = entity_end
                    .filter(|&e| rest.as_bytes()[1 + e] == b';')
                    .and_then(|e| decode_entity(&rest[1..1 + e]).map(|c| (c, e + 2)));
                match decoded {
                    Some((c, len)) => {
                        visible.push(c);
                        i += len;
                    }
                    None => {
                        visible.push('&');
                        i += 1;
                    }
                }
            }
            _ => {
                let c = text[i..].chars().next().unwrap_or('\u{FFFD}');
                visible.push(c);
                i += c.len_utf8();
            }
        }
    }
    if let Some((name, offset)) = open.pop() {
        return Err(cant_parse(format!(
            "Can't find end tag corresponding to start tag \"{name}\" at byte offset {offset}"
        )));
    }
    Ok((visible, links))
}

fn decode_entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// `name="value"` pairs (quoted with `"` or `'`, or bare), values decoded.
fn parse_attributes(mut rest: &str) -> Result<HashMap<String, String>, String> {
    let mut attributes = HashMap::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(attributes);
        }
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        if name_end == 0 {
            return Err(format!("Expected an attribute name, found {:?}", &rest[..1]));
        }
        let name = rest[..name_end].to_ascii_lowercase();
        rest = rest[name_end..].trim_start();
        let Some(after_eq) = rest.strip_prefix('=') else {
            attributes.insert(name, String::new());
            continue;
        };
        rest = after_eq.trim_start();
        let (raw, remaining) = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let Some(close) = rest[1..].find(q) else {
                    return Err("Unclosed attribute value".into());
                };
                (&rest[1..1 + close], &rest[close + 2..])
            }
            _ => {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        let (value, _) = parse_html(raw).map_err(|_| "Bad attribute value".to_string())?;
        attributes.insert(name, value);
        rest = remaining;
    }
}

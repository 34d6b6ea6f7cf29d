//! Sending one message to one Telegram chat through teloxide, and sorting
//! the Bot API's answer into what the outbox must do about it.
//!
//! The client is a plain `Bot` pointed at `[telegram] api_url`, deliberately
//! without teloxide's `Throttle`: Throttle retries 429 forever and would hide
//! it, while the outbox must know about every failure to keep items pending
//! and to wait before talking to the chat again. The outbox paces and
//! retries itself.
//!
//! Every error text leaving this module has the token scrubbed from it.

use std::time::Duration;

use teloxide::payloads::{SendMessageSetters, SendPhotoSetters};
use teloxide::prelude::Requester;
use teloxide::types::{InputFile, LinkPreviewOptions, ParseMode, Recipient};
use teloxide::{ApiError, Bot, RequestError};

use crate::config::{ChatId, TelegramConfig, Token};

/// A Bot API client for one bot. Holds the token: never `Debug`-print it.
pub struct TelegramClient {
    bot: Bot,
    token: Token,
    link_preview: bool,
}

/// How a message Telegram did not accept failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// 429: nothing more to this chat before this much time has passed.
    RetryAfter(Duration),
    /// 401: the token is wrong or revoked.
    TokenRejected,
    /// 400 "can't parse entities": our HTML was refused (a bug on our side).
    CantParseEntities(String),
    /// 403, chat not found, migrated chat: the operator must act.
    ChatUnavailable(String),
    /// Another 4xx about this message.
    Rejected(String),
    /// 5xx, timeouts, network trouble, garbled answers: try again later.
    Transient(String),
}

impl SendError {
    /// The outcome label of `cstowatch_deliveries_total`.
    pub fn metric_outcome(&self) -> &'static str {
        match self {
            SendError::RetryAfter(_) => "429",
            SendError::TokenRejected => "401",
            SendError::CantParseEntities(_) => "400",
            SendError::ChatUnavailable(_) => "403",
            SendError::Rejected(_) => "4xx",
            SendError::Transient(_) => "transient",
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::RetryAfter(d) => write!(f, "flood control: retry after {} s", d.as_secs()),
            SendError::TokenRejected => f.write_str("the Telegram token was rejected"),
            SendError::CantParseEntities(e) => write!(f, "Telegram could not parse the message: {e}"),
            SendError::ChatUnavailable(e) => write!(f, "the chat is unavailable: {e}"),
            SendError::Rejected(e) => write!(f, "Telegram refused the message: {e}"),
            SendError::Transient(e) => write!(f, "Telegram is unreachable or failing: {e}"),
        }
    }
}

/// What one request sends: a text message, or a photo with its caption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outgoing<'a> {
    /// `sendMessage` with this text.
    Text(&'a str),
    /// `sendPhoto` with this PNG and caption.
    Photo { png: &'a [u8], caption: &'a str },
}

impl Outgoing<'_> {
    /// The text Telegram parses: the message, or the photo's caption.
    pub fn text(&self) -> &str {
        match self {
            Outgoing::Text(text) => text,
            Outgoing::Photo { caption, .. } => caption,
        }
    }
}

/// Whether a message goes as HTML or as plain text (the fallback after a parse error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextMode {
    Html,
    Plain,
}

impl TelegramClient {
    pub fn new(config: &TelegramConfig, token: Token) -> anyhow::Result<TelegramClient> {
        use anyhow::Context;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10).min(config.timeout))
            .timeout(config.timeout)
            .build()
            .context("cannot build the HTTP client for Telegram")?;
        let bot = Bot::with_client(token.expose(), http).set_api_url(config.api_url.clone());
        Ok(TelegramClient {
            bot,
            token,
            link_preview: config.link_preview,
        })
    }

    /// Sends `outgoing` to `chat`, its text (or caption) replaced by `text`
    /// (the plain-text fallback); the message id Telegram gave it on success.
    pub async fn send_outgoing(
        &self,
        chat: &ChatId,
        outgoing: Outgoing<'_>,
        text: &str,
        mode: TextMode,
    ) -> Result<i64, SendError> {
        match outgoing {
            Outgoing::Text(_) => self.send(chat, text, mode).await,
            Outgoing::Photo { png, .. } => self.send_photo(chat, png, text, mode).await,
        }
    }

    /// Sends a PNG with `caption` to `chat` (`sendPhoto`, uploaded as multipart).
    pub async fn send_photo(
        &self,
        chat: &ChatId,
        png: &[u8],
        caption: &str,
        mode: TextMode,
    ) -> Result<i64, SendError> {
        let photo = InputFile::memory(png.to_vec()).file_name("chart.png");
        let mut request = self.bot.send_photo(recipient(chat), photo);
        if !caption.is_empty() {
            request = request.caption(caption);
        }
        if mode == TextMode::Html {
            request = request.parse_mode(ParseMode::Html);
        }
        match request.await {
            Ok(message) => Ok(i64::from(message.id.0)),
            Err(e) => Err(self.classify(e)),
        }
    }

    /// Sends `text` to `chat`; the message id Telegram gave it on success.
    pub async fn send(&self, chat: &ChatId, text: &str, mode: TextMode) -> Result<i64, SendError> {
        let mut request = self.bot.send_message(recipient(chat), text);
        if mode == TextMode::Html {
            request = request.parse_mode(ParseMode::Html);
        }
        if !self.link_preview {
            request = request.link_preview_options(LinkPreviewOptions {
                is_disabled: true,
                url: None,
                prefer_small_media: false,
                prefer_large_media: false,
                show_above_text: false,
            });
        }
        match request.await {
            Ok(message) => Ok(i64::from(message.id.0)),
            Err(e) => Err(self.classify(e)),
        }
    }

    /// `text` with the token removed, cut to a length `status` can show (a
    /// proxy's HTML error page can arrive as the "description").
    pub fn redact(&self, text: &str) -> String {
        const MAX_ERROR_CHARS: usize = 500;
        let clean = redact(text, &self.token);
        match clean.char_indices().nth(MAX_ERROR_CHARS) {
            Some((cut, _)) => format!("{}…", &clean[..cut]),
            None => clean,
        }
    }

    fn classify(&self, e: RequestError) -> SendError {
        match e {
            RequestError::RetryAfter(secs) => SendError::RetryAfter(secs.duration()),
            RequestError::Api(ApiError::InvalidToken) => SendError::TokenRejected,
            RequestError::Api(ApiError::CantParseEntities(text)) => {
                SendError::CantParseEntities(self.redact(&text))
            }
            RequestError::Api(api) => classify_api_text(&self.redact(&api.to_string()), &api),
            RequestError::MigrateToChatId(id) => SendError::ChatUnavailable(format!(
                "the group became a supergroup with id {id}; set that id as the chat in the config"
            )),
            other => SendError::Transient(self.redact(&other.to_string())),
        }
    }
}

/// Sorts Telegram's error descriptions. teloxide knows many by exact text and
/// the rest arrive as `Unknown`; the HTTP status is not kept, so the prefix
/// Telegram puts on every description ("Forbidden: ", "Bad Request: ") decides.
fn classify_api_text(text: &str, api: &ApiError) -> SendError {
    let description = match api {
        ApiError::Unknown(d) => d.as_str(),
        _ => text,
    };
    let chat_gone = matches!(
        api,
        ApiError::ChatNotFound
            | ApiError::BotBlocked
            | ApiError::BotKicked
            | ApiError::BotKickedFromSupergroup
            | ApiError::BotKickedFromChannel
            | ApiError::UserDeactivated
            | ApiError::CantInitiateConversation
            | ApiError::CantTalkWithBots
            | ApiError::NotEnoughRightsToPostMessages
    );
    if chat_gone || description.starts_with("Forbidden") || description.contains("chat not found") {
        SendError::ChatUnavailable(text.to_string())
    } else if description.starts_with("Unauthorized") {
        SendError::TokenRejected
    } else if description.starts_with("Bad Request") || !matches!(api, ApiError::Unknown(_)) {
        SendError::Rejected(text.to_string())
    } else {
        SendError::Transient(text.to_string())
    }
}

/// The config's chat as teloxide names it.
fn recipient(chat: &ChatId) -> Recipient {
    match chat {
        ChatId::Id(id) => Recipient::Id(teloxide::types::ChatId(*id)),
        ChatId::Username(name) => Recipient::ChannelUsername(name.clone()),
    }
}

/// Removes the token from `text`, wherever it appears (URLs in reqwest
/// errors carry `/bot<TOKEN>/`).
pub fn redact(text: &str, token: &Token) -> String {
    let secret = token.expose();
    if secret.is_empty() {
        return text.to_string();
    }
    let mut out = text.replace(secret, "<redacted>");
    // A percent-encoded copy (a token's ':' may be escaped in a URL).
    let encoded = secret.replace(':', "%3A");
    if encoded != secret {
        out = out.replace(&encoded, "<redacted>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_plain_and_url_encoded_token() {
        let token = Token::new("123456:ABC-def_ghi");
        let text = "error sending request for url (http://x/bot123456:ABC-def_ghi/SendMessage) \
                    and bot123456%3AABC-def_ghi";
        let clean = redact(text, &token);
        assert!(!clean.contains("ABC-def_ghi"), "{clean}");
        assert!(clean.contains("/bot<redacted>/SendMessage"), "{clean}");
    }

    #[test]
    fn forbidden_and_bad_request_are_told_apart() {
        let forbidden = ApiError::Unknown("Forbidden: bot is not a member of the channel chat".into());
        assert!(matches!(
            classify_api_text(&forbidden.to_string(), &forbidden),
            SendError::ChatUnavailable(_)
        ));
        let bad = ApiError::Unknown("Bad Request: message is too long".into());
        assert!(matches!(
            classify_api_text(&bad.to_string(), &bad),
            SendError::Rejected(_)
        ));
        let server = ApiError::Unknown("Internal Server Error".into());
        assert!(matches!(
            classify_api_text(&server.to_string(), &server),
            SendError::Transient(_)
        ));
        assert!(matches!(
            classify_api_text("", &ApiError::ChatNotFound),
            SendError::ChatUnavailable(_)
        ));
    }
}

//! Typed configuration: `config/cstowatch.toml` parsed once into values that
//! cannot be wrong (URLs are `Url`, intervals are `Duration`, times of day are
//! checked), with relative paths resolved against the config file's directory.
//!
//! Every problem is reported as `file:line: key: message` (see [`Problem`]),
//! which is what `cstowatch check` prints and what makes `run` exit 2.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;
use url::Url;

use crate::problem::{Problem, Problems, line_of_offset};

/// Where the config lives when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "config/cstowatch.toml";
/// Where state lives when the config does not say (relative to the working directory).
pub const DEFAULT_STATE_PATH: &str = "state/cstowatch.db";
/// Environment variable holding the bot token.
pub const TOKEN_ENV: &str = "CSTOWATCH_TELEGRAM_TOKEN";
/// Name of the systemd credential (`LoadCredential=`) holding the bot token.
pub const TOKEN_CREDENTIAL: &str = "telegram-token";

/// The whole configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    pub poll: PollConfig,
    pub feeds: Vec<FeedConfig>,
    pub telegram: TelegramConfig,
    pub digest: DigestConfig,
    pub state: StateConfig,
    /// The optional monitoring listener (`[http]`).
    pub http: HttpConfig,
    /// When the operator is told about a failing or silent feed.
    pub alerts: AlertsConfig,
    /// The weekly trend chart.
    pub report: ReportConfig,
    /// The keyword rules file (default: `rules.toml` beside the config).
    pub rules_path: PathBuf,
}

/// When a feed's trouble is worth telling the operator about (`[alerts]`).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertsConfig {
    /// A feed failing continuously for longer than this is reported (default 6 h).
    pub failing_after: Duration,
    /// The least silence (no new item) ever reported; a feed's own usual gap
    /// between new items can only make it longer (default 48 h; see `alerts`).
    pub silent_after: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            failing_after: Duration::from_secs(6 * 3600),
            silent_after: Duration::from_secs(48 * 3600),
        }
    }
}

/// Defaults for polling every feed; a feed may override the interval.
#[derive(Debug, Clone)]
pub struct PollConfig {
    /// How often a feed is polled.
    pub interval: Duration,
    /// Upper bound on any delay: backoff, Retry-After, TTL and Cache-Control
    /// hints are all clamped to it, so no hint silences a feed for long.
    pub max_interval: Duration,
    /// Whole-request timeout for a feed or article page.
    pub timeout: Duration,
    /// Cap on a response body, enforced while streaming (after decompression).
    pub max_body_bytes: u64,
    /// Cap on redirects followed.
    pub max_redirects: usize,
    /// How many feeds are fetched at once.
    pub concurrency: usize,
    /// How many article pages are fetched at once (and never two per host).
    pub article_concurrency: usize,
    /// The User-Agent header.
    pub user_agent: String,
    /// On a feed's first successful poll, items older than this are recorded
    /// as seen but never posted.
    pub backfill: Duration,
    /// An item whose own text is shorter than this many characters is an
    /// excerpt: its article page is fetched when the feed has a selector.
    pub full_text_below: usize,
}

/// One configured feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedConfig {
    pub name: String,
    pub url: Url,
    pub interval: Option<Duration>,
    /// CSS selectors for the article body, tried in order, compiled once
    /// here; empty = no page fetch.
    pub article_selector: Vec<ArticleSelector>,
    pub enabled: bool,
}

/// One article-body selector: as written (for logs) and compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArticleSelector {
    pub text: String,
    pub compiled: scraper::Selector,
}

impl FeedConfig {
    /// The interval this feed is polled at.
    pub fn interval(&self, poll: &PollConfig) -> Duration {
        self.interval.unwrap_or(poll.interval)
    }
}

/// Where digests go.
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    /// Base URL of the Bot API, without a trailing slash.
    pub api_url: Url,
    /// Every destination chat; `chat = ...` is the first, `[[telegram.chats]]` the rest.
    pub chats: Vec<ChatConfig>,
    /// The operator's own chat, for alerts about feeds and destinations
    /// (`admin_chat`); no digests go there.
    pub admin_chat: Option<ChatId>,
    /// File holding the bot token (instead of the environment variable).
    pub token_file: Option<PathBuf>,
    /// Show link previews under messages.
    pub link_preview: bool,
    /// Timeout for one Bot API request.
    pub timeout: Duration,
}

/// One destination chat and which items it takes.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatConfig {
    pub chat: ChatId,
    /// Only items carrying at least one of these tags; empty = every relevant item.
    pub tags: Vec<String>,
}

/// A Telegram chat as the config names it, checked once: an `@channel`
/// username or a numeric chat id. Shown (and stored in the outbox) as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChatId {
    /// `@channel`, kept with its `@`.
    Username(String),
    Id(i64),
}

impl ChatId {
    /// Parses `@name` (at least 4 letters, digits or `_`) or a number.
    pub fn parse(text: &str) -> Option<ChatId> {
        if let Some(name) = text.strip_prefix('@') {
            let valid = name.len() >= 4 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            return valid.then(|| ChatId::Username(text.to_string()));
        }
        text.parse().ok().map(ChatId::Id)
    }
}

impl fmt::Display for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatId::Username(name) => f.write_str(name),
            ChatId::Id(id) => write!(f, "{id}"),
        }
    }
}

/// When digests go out.
#[derive(Debug, Clone)]
pub struct DigestConfig {
    pub timezone: jiff::tz::TimeZone,
    /// The IANA name the time zone was given by.
    pub timezone_name: String,
    pub schedule: Schedule,
    /// Items carrying any of these tags are posted at once, as single messages.
    pub alert_tags: Vec<String>,
    /// A one-line lede (the first sentence of the feed's summary) under each
    /// story's headline; `lede = false` turns it off.
    pub lede: bool,
}

/// Digest schedule: fixed times of day, or a fixed period.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    At(Vec<jiff::civil::Time>),
    Every(Duration),
}

/// The weekly trend chart (`[report]`): whether the service posts it, and
/// when, in the digest's time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportConfig {
    /// Post the chart once a week (off unless the config turns it on: a
    /// channel's readers should not get images nobody asked for).
    pub weekly: bool,
    /// The slot: this weekday at this time (default Monday 09:00). The chart
    /// covers the seven whole days before the slot's day.
    pub weekday: jiff::civil::Weekday,
    pub time: jiff::civil::Time,
}

impl Default for ReportConfig {
    fn default() -> ReportConfig {
        ReportConfig {
            weekly: false,
            weekday: jiff::civil::Weekday::Monday,
            time: jiff::civil::time(9, 0, 0, 0),
        }
    }
}

/// The embedded database.
#[derive(Debug, Clone)]
pub struct StateConfig {
    pub path: PathBuf,
    /// Items older than this are pruned (their dedup keys are kept longer).
    pub retention: Duration,
}

/// The monitoring listener: `GET /metrics` and `GET /healthz`. Off unless
/// `[http] listen` names an address; any address is taken as written, but one
/// that is not loopback is warned about (by `check` and at start), since the
/// metrics name every feed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpConfig {
    pub listen: Option<SocketAddr>,
    /// The line `listen` was written on, for the warning.
    pub listen_line: Option<usize>,
}

impl HttpConfig {
    /// A warning when the listener would be reachable from other machines.
    pub fn exposure_warning(&self, config_path: &Path) -> Option<Problem> {
        let addr = self.listen.filter(|a| !a.ip().is_loopback())?;
        Some(Problem::warning(
            config_path,
            self.listen_line,
            Some("http.listen".into()),
            format!(
                "the metrics and health listener on {addr} is reachable from other machines, not only \
                 this one; use 127.0.0.1:{} unless a firewall or a scraper elsewhere needs it",
                addr.port()
            ),
        ))
    }
}

/// The bot token; its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(token: impl Into<String>) -> Self {
        Token(token.into())
    }
    /// The secret itself; only for handing to the Bot API client and for redaction.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

// ---------------------------------------------------------------------------
// The file as written.

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    rules: Option<Spanned<String>>,
    #[serde(default)]
    poll: RawPoll,
    #[serde(default)]
    feeds: Vec<RawFeed>,
    #[serde(default)]
    telegram: RawTelegram,
    #[serde(default)]
    digest: RawDigest,
    #[serde(default)]
    state: RawState,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    alerts: RawAlerts,
    #[serde(default)]
    report: RawReport,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    failing_after: Option<Dur>,
    silent_after: Option<Dur>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPoll {
    interval: Option<Dur>,
    max_interval: Option<Dur>,
    timeout: Option<Dur>,
    max_body_bytes: Option<Spanned<u64>>,
    max_redirects: Option<Spanned<u32>>,
    concurrency: Option<Spanned<u32>>,
    article_concurrency: Option<Spanned<u32>>,
    user_agent: Option<String>,
    backfill: Option<Dur>,
    full_text_below: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    name: Spanned<String>,
    url: Spanned<Url>,
    interval: Option<Dur>,
    #[serde(default)]
    article_selector: Option<Spanned<OneOrMany>>,
    #[serde(default = "yes")]
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTelegram {
    api_url: Option<Url>,
    chat: Option<Spanned<ChatValue>>,
    #[serde(default)]
    chats: Vec<RawChat>,
    admin_chat: Option<Spanned<ChatValue>>,
    token_file: Option<PathBuf>,
    /// Refused on purpose: the token must not live in the config.
    token: Option<Spanned<String>>,
    link_preview: Option<bool>,
    timeout: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChat {
    chat: Spanned<ChatValue>,
    #[serde(default)]
    tags: Vec<String>,
}

/// A chat written as `"@channel"`, `"-100123"` or `-100123`.
#[derive(Deserialize)]
#[serde(untagged)]
enum ChatValue {
    Number(i64),
    Text(String),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDigest {
    timezone: Option<Spanned<String>>,
    at: Option<Spanned<Vec<String>>>,
    every: Option<Dur>,
    #[serde(default)]
    alert_tags: Vec<String>,
    lede: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReport {
    weekly: Option<bool>,
    /// `"Mon 09:00"`: a weekday and a time of day.
    at: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawState {
    path: Option<PathBuf>,
    retention: Option<Dur>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: Option<Spanned<String>>,
}

/// A duration written like `"90s"`, `"15m"`, `"6h"`, `"180d"`.
#[derive(Debug, Clone, Copy)]
struct Dur(Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map(Dur).map_err(serde::de::Error::custom)
    }
}

/// Parses `"90s"`, `"15m"`, `"6h"`, `"2d"`, `"1h 30m"`, `"500ms"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("invalid duration {text:?} ({e}); write it like \"90s\", \"15m\" or \"6h\""))?;
    if d.is_zero() {
        return Err(format!("duration {text:?} must be more than zero"));
    }
    Ok(d)
}

// ---------------------------------------------------------------------------
// Loading.

impl Config {
    /// Reads, parses and validates the config file. Errors are every problem found.
    pub fn load(path: &Path) -> Result<Config, Problems> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Problems(vec![Problem::error(
                path,
                None,
                None,
                format!("cannot read the config file: {e}"),
            )])
        })?;
        Config::from_toml(&text, path)
    }

    /// Parses and validates config text that was read from `path`.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, Problems> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| Problems(vec![Problem::from_toml_error(path, text, &e)]))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut problems = Vec::new();
        let at_line = |span: std::ops::Range<usize>| Some(line_of_offset(text, span.start));

        let poll = build_poll(raw.poll, path, text, &mut problems);

        let mut feeds = Vec::new();
        let mut names = HashSet::new();
        for (i, f) in raw.feeds.into_iter().enumerate() {
            // Line numbers are counted only for a problem: counting them for
            // every feed made loading 10,000 feeds quadratic.
            let name_span = f.name.span();
            let name = f.name.into_inner().trim().to_string();
            if name.is_empty() {
                problems.push(Problem::error(
                    path,
                    at_line(name_span.clone()),
                    Some(format!("feeds[{i}].name")),
                    "a feed needs a non-empty name",
                ));
            } else if !names.insert(name.clone()) {
                problems.push(Problem::error(
                    path,
                    at_line(name_span.clone()),
                    Some(format!("feeds[{i}].name")),
                    format!("feed name {name:?} is used twice; give each feed its own name"),
                ));
            }
            let url_span = f.url.span();
            let url = f.url.into_inner();
            if !matches!(url.scheme(), "http" | "https") {
                problems.push(Problem::error(
                    path,
                    at_line(url_span),
                    Some(format!("feeds[{i}].url")),
                    format!("feed URL {url} must be http or https"),
                ));
            }
            let (sel_span, selectors) = match f.article_selector {
                None => (0..0, Vec::new()),
                Some(s) => (
                    s.span(),
                    match s.into_inner() {
                        OneOrMany::One(s) => vec![s],
                        OneOrMany::Many(v) => v,
                    },
                ),
            };
            let mut article_selector = Vec::new();
            for s in selectors {
                match scraper::Selector::parse(&s) {
                    Ok(compiled) => article_selector.push(ArticleSelector { text: s, compiled }),
                    Err(e) => problems.push(Problem::error(
                        path,
                        at_line(sel_span.clone()),
                        Some(format!("feeds[{i}].article_selector")),
                        format!("invalid CSS selector {s:?}: {e}"),
                    )),
                }
            }
            feeds.push(FeedConfig {
                name,
                url,
                interval: f.interval.map(|d| d.0),
                article_selector,
                enabled: f.enabled,
            });
        }

        let telegram = build_telegram(raw.telegram, path, &dir, text, &mut problems);
        let digest = build_digest(raw.digest, path, text, &mut problems);
        let http = build_http(raw.http, path, text, &mut problems);
        let report = build_report(raw.report, path, text, &mut problems);

        let state = StateConfig {
            path: raw
                .state
                .path
                .map(|p| dir.join(p))
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_PATH)),
            retention: raw
                .state
                .retention
                .map(|d| d.0)
                .unwrap_or(Duration::from_secs(180 * 86_400)),
        };
        let defaults = AlertsConfig::default();
        let alerts = AlertsConfig {
            failing_after: raw.alerts.failing_after.map_or(defaults.failing_after, |d| d.0),
            silent_after: raw.alerts.silent_after.map_or(defaults.silent_after, |d| d.0),
        };
        let rules_path = match raw.rules {
            Some(r) => dir.join(r.into_inner()),
            None => dir.join("rules.toml"),
        };

        if problems.iter().any(Problem::is_error) {
            return Err(Problems(problems));
        }
        Ok(Config {
            path: path.to_path_buf(),
            poll,
            feeds,
            telegram,
            digest,
            state,
            http,
            alerts,
            report,
            rules_path,
        })
    }

    /// The enabled feeds.
    pub fn enabled_feeds(&self) -> impl Iterator<Item = &FeedConfig> {
        self.feeds.iter().filter(|f| f.enabled)
    }

    /// The bot token: `$CSTOWATCH_TELEGRAM_TOKEN`, else `token_file`, else the
    /// systemd credential `telegram-token`; `None` means "print to stdout".
    pub fn telegram_token(&self) -> anyhow::Result<Option<Token>> {
        use anyhow::Context;
        if let Ok(t) = std::env::var(TOKEN_ENV) {
            let t = t.trim();
            if !t.is_empty() {
                return Ok(Some(Token::new(t)));
            }
        }
        let file = match (
            &self.telegram.token_file,
            std::env::var_os("CREDENTIALS_DIRECTORY"),
        ) {
            (Some(f), _) => Some(f.clone()),
            (None, Some(dir)) => Some(Path::new(&dir).join(TOKEN_CREDENTIAL)).filter(|p| p.exists()),
            (None, None) => None,
        };
        let Some(file) = file else { return Ok(None) };
        let t = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read the Telegram token file {}", file.display()))?;
        let t = t.trim();
        if t.is_empty() {
            anyhow::bail!("the Telegram token file {} is empty", file.display());
        }
        Ok(Some(Token::new(t)))
    }
}

fn build_poll(raw: RawPoll, path: &Path, text: &str, problems: &mut Vec<Problem>) -> PollConfig {
    let mut positive = |v: Option<Spanned<u32>>, key: &str, default: u32| -> u32 {
        match v {
            Some(v) if *v.get_ref() == 0 => {
                problems.push(Problem::error(
                    path,
                    Some(line_of_offset(text, v.span().start)),
                    Some(format!("poll.{key}")),
                    "must be at least 1",
                ));
                default
            }
            Some(v) => v.into_inner(),
            None => default,
        }
    };
    let concurrency = positive(raw.concurrency, "concurrency", 4) as usize;
    let article_concurrency = positive(raw.article_concurrency, "article_concurrency", 4) as usize;
    let max_redirects = raw.max_redirects.map(Spanned::into_inner).unwrap_or(5) as usize;
    let max_body_bytes = match raw.max_body_bytes {
        Some(v) if *v.get_ref() < 1024 => {
            problems.push(Problem::error(
                path,
                Some(line_of_offset(text, v.span().start)),
                Some("poll.max_body_bytes".into()),
                "must be at least 1024 bytes",
            ));
            16 << 20
        }
        Some(v) => v.into_inner(),
        None => 16 << 20,
    };
    let interval = raw.interval.map(|d| d.0).unwrap_or(Duration::from_secs(15 * 60));
    PollConfig {
        interval,
        max_interval: raw
            .max_interval
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(6 * 3600))
            .max(interval),
        timeout: raw.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30)),
        max_body_bytes,
        max_redirects,
        concurrency,
        article_concurrency,
        user_agent: raw.user_agent.unwrap_or_else(default_user_agent),
        backfill: raw
            .backfill
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(48 * 3600)),
        full_text_below: raw.full_text_below.unwrap_or(600),
    }
}

/// `cstowatch/0.1.0 (+https://github.com/cstowatch/cstowatch)`: names the product honestly.
pub fn default_user_agent() -> String {
    format!(
        "cstowatch/{} (feed reader; +https://github.com/cstowatch/cstowatch)",
        env!("CARGO_PKG_VERSION")
    )
}

fn build_telegram(
    raw: RawTelegram,
    path: &Path,
    dir: &Path,
    text: &str,
    problems: &mut Vec<Problem>,
) -> TelegramConfig {
    if let Some(t) = &raw.token {
        problems.push(Problem::error(
            path,
            Some(line_of_offset(text, t.span().start)),
            Some("telegram.token".into()),
            format!(
                "the bot token does not belong in the config file; set {TOKEN_ENV} or token_file = \"...\""
            ),
        ));
    }
    let default_api = Url::parse("https://api.telegram.org").expect("constant URL parses");
    let mut api_url = raw.api_url.unwrap_or(default_api);
    // A trailing slash would make teloxide build `//bot<token>/...` (GOTCHAS.md).
    let trimmed = api_url.path().trim_end_matches('/').to_string();
    api_url.set_path(&trimmed);
    let chat_id = |value: Spanned<ChatValue>, key: String, problems: &mut Vec<Problem>| {
        let line = Some(line_of_offset(text, value.span().start));
        let chat = match value.into_inner() {
            ChatValue::Number(n) => Ok(ChatId::Id(n)),
            ChatValue::Text(s) => ChatId::parse(s.trim()).ok_or(s),
        };
        chat.map_err(|chat| {
            problems.push(Problem::error(
                path,
                line,
                Some(key),
                format!("chat {chat:?} is neither an @channel username nor a numeric chat id"),
            ))
        })
        .ok()
    };
    let mut chats = Vec::new();
    if let Some(chat) = raw
        .chat
        .and_then(|c| chat_id(c, "telegram.chat".into(), problems))
    {
        chats.push(ChatConfig {
            chat,
            tags: Vec::new(),
        });
    }
    for (i, c) in raw.chats.into_iter().enumerate() {
        if let Some(chat) = chat_id(c.chat, format!("telegram.chats[{i}].chat"), problems) {
            chats.push(ChatConfig { chat, tags: c.tags });
        }
    }
    let admin_chat = raw
        .admin_chat
        .and_then(|c| chat_id(c, "telegram.admin_chat".into(), problems));
    TelegramConfig {
        api_url,
        chats,
        admin_chat,
        token_file: raw.token_file.map(|p| dir.join(p)),
        link_preview: raw.link_preview.unwrap_or(false),
        timeout: raw.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30)),
    }
}

fn build_http(raw: RawHttp, path: &Path, text: &str, problems: &mut Vec<Problem>) -> HttpConfig {
    let Some(listen) = raw.listen else {
        return HttpConfig::default();
    };
    let line = Some(line_of_offset(text, listen.span().start));
    let written = listen.into_inner();
    // An IP literal only: a host name would be resolved to who knows which
    // interface, and the listener must bind exactly where it was told.
    match written.trim().parse::<SocketAddr>() {
        Ok(addr) => HttpConfig {
            listen: Some(addr),
            listen_line: line,
        },
        Err(_) => {
            problems.push(Problem::error(
                path,
                line,
                Some("http.listen".into()),
                format!(
                    "invalid listen address {written:?}; write an IP address and a port, \
                     like \"127.0.0.1:9184\" or \"[::1]:9184\""
                ),
            ));
            HttpConfig::default()
        }
    }
}

fn build_digest(raw: RawDigest, path: &Path, text: &str, problems: &mut Vec<Problem>) -> DigestConfig {
    let (timezone_name, timezone) = match raw.timezone {
        Some(tz) => {
            let line = Some(line_of_offset(text, tz.span().start));
            let name = tz.into_inner();
            match jiff::tz::TimeZone::get(&name) {
                Ok(zone) => (name, zone),
                Err(e) => {
                    problems.push(Problem::error(
                        path,
                        line,
                        Some("digest.timezone".into()),
                        format!(
                            "unknown time zone {name:?} ({e}); use an IANA name such as \"Asia/Yerevan\""
                        ),
                    ));
                    (name, jiff::tz::TimeZone::UTC)
                }
            }
        }
        None => {
            let name = "Asia/Yerevan".to_string();
            // The bundled tz database always has it; fall back to the fixed offset just in case.
            let zone = jiff::tz::TimeZone::get(&name)
                .unwrap_or_else(|_| jiff::tz::TimeZone::fixed(jiff::tz::offset(4)));
            (name, zone)
        }
    };
    let schedule = match (raw.at, raw.every) {
        (Some(at), Some(_)) => {
            problems.push(Problem::error(
                path,
                Some(line_of_offset(text, at.span().start)),
                Some("digest.at".into()),
                "set either `at` (times of day) or `every` (a period), not both",
            ));
            Schedule::Every(Duration::from_secs(6 * 3600))
        }
        (Some(at), None) => {
            let line = Some(line_of_offset(text, at.span().start));
            let mut times = Vec::new();
            for t in at.into_inner() {
                match jiff::civil::Time::strptime("%H:%M", t.trim()) {
                    Ok(time) => times.push(time),
                    Err(_) => problems.push(Problem::error(
                        path,
                        line,
                        Some("digest.at".into()),
                        format!("invalid time of day {t:?}; write it as \"HH:MM\", e.g. \"09:00\""),
                    )),
                }
            }
            if times.is_empty() {
                problems.push(Problem::error(
                    path,
                    line,
                    Some("digest.at".into()),
                    "give at least one time of day",
                ));
            }
            times.sort();
            times.dedup();
            Schedule::At(times)
        }
        (None, Some(every)) => Schedule::Every(every.0),
        (None, None) => Schedule::At(vec![
            jiff::civil::time(9, 0, 0, 0),
            jiff::civil::time(21, 0, 0, 0),
        ]),
    };
    DigestConfig {
        timezone,
        timezone_name,
        schedule,
        alert_tags: raw.alert_tags,
        lede: raw.lede.unwrap_or(true),
    }
}

fn build_report(raw: RawReport, path: &Path, text: &str, problems: &mut Vec<Problem>) -> ReportConfig {
    let mut report = ReportConfig {
        weekly: raw.weekly.unwrap_or(false),
        ..ReportConfig::default()
    };
    if let Some(at) = raw.at {
        let line = Some(line_of_offset(text, at.span().start));
        match parse_weekly_slot(at.get_ref()) {
            Ok((weekday, time)) => {
                report.weekday = weekday;
                report.time = time;
            }
            Err(message) => problems.push(Problem::error(path, line, Some("report.at".into()), message)),
        }
    }
    report
}

/// Parses `"Mon 09:00"` (a weekday in English, short or long, any case, then
/// `HH:MM`).
pub fn parse_weekly_slot(text: &str) -> Result<(jiff::civil::Weekday, jiff::civil::Time), String> {
    use jiff::civil::Weekday;
    let usage = || format!("invalid weekly slot {text:?}; write a weekday and a time, e.g. \"Mon 09:00\"");
    let mut parts = text.split_whitespace();
    let (Some(day), Some(time), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(usage());
    };
    let day = day.to_ascii_lowercase();
    let weekday = [
        ("mon", Weekday::Monday),
        ("tue", Weekday::Tuesday),
        ("wed", Weekday::Wednesday),
        ("thu", Weekday::Thursday),
        ("fri", Weekday::Friday),
        ("sat", Weekday::Saturday),
        ("sun", Weekday::Sunday),
    ]
    .into_iter()
    .find(|(short, weekday)| day == *short || day == format!("{weekday:?}").to_ascii_lowercase())
    .map(|(_, weekday)| weekday)
    .ok_or_else(usage)?;
    let time = jiff::civil::Time::strptime("%H:%M", time).map_err(|_| usage())?;
    Ok((weekday, time))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, Problems> {
        Config::from_toml(text, Path::new("/etc/cstowatch/cstowatch.toml"))
    }

    #[test]
    fn minimal_config_gets_defaults_and_resolves_paths() {
        let c = load(
            "[[feeds]]\nname = \"A\"\nurl = \"https://a.example/feed/\"\n[state]\npath = \"../state/x.db\"\n",
        )
        .unwrap();
        assert_eq!(c.feeds.len(), 1);
        assert_eq!(c.poll.interval, Duration::from_secs(900));
        assert_eq!(c.state.path, PathBuf::from("/etc/cstowatch/../state/x.db"));
        assert_eq!(c.rules_path, PathBuf::from("/etc/cstowatch/rules.toml"));
        assert_eq!(c.digest.timezone_name, "Asia/Yerevan");
        assert_eq!(c.telegram.api_url.as_str(), "https://api.telegram.org/");
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let err = load("[poll]\ninterval = \"5m\"\nintervall = \"5m\"\n").unwrap_err();
        let p = &err.0[0];
        assert_eq!(p.line, Some(3));
        assert!(p.message.contains("intervall"), "{p}");
    }

    #[test]
    fn bad_duration_is_located() {
        let err = load("[[feeds]]\nname = \"A\"\nurl = \"https://a/\"\ninterval = \"soon\"\n").unwrap_err();
        assert_eq!(err.0[0].line, Some(4));
        assert!(err.0[0].to_string().contains("feeds.interval"), "{}", err.0[0]);
    }

    #[test]
    fn semantic_problems_are_all_reported() {
        let err = load(concat!(
            "[[feeds]]\nname = \"A\"\nurl = \"https://a/\"\narticle_selector = \"div[\"\n",
            "[[feeds]]\nname = \"A\"\nurl = \"ftp://b/\"\n",
            "[digest]\ntimezone = \"Mars/Olympus\"\n",
        ))
        .unwrap_err();
        let lines: Vec<_> = err.0.iter().map(|p| p.line.unwrap()).collect();
        assert_eq!(lines, vec![4, 6, 7, 9], "{err}");
    }

    #[test]
    fn token_in_config_is_refused() {
        let err = load("[telegram]\ntoken = \"123:abc\"\n").unwrap_err();
        assert!(err.to_string().contains("telegram.token"));
        assert!(!err.to_string().contains("123:abc"));
    }

    #[test]
    fn api_url_trailing_slash_is_stripped() {
        let c = load("[telegram]\napi_url = \"http://127.0.0.1:9/tg/\"\nchat = -1001\n").unwrap();
        assert_eq!(c.telegram.api_url.path(), "/tg");
        assert_eq!(c.telegram.chats[0].chat, ChatId::Id(-1001));
        assert_eq!(c.telegram.chats[0].chat.to_string(), "-1001");
    }

    #[test]
    fn http_listener_is_off_by_default_and_takes_an_address() {
        assert_eq!(load("").unwrap().http.listen, None);
        let c = load("[http]\nlisten = \"127.0.0.1:9184\"\n").unwrap();
        assert_eq!(c.http.listen, Some("127.0.0.1:9184".parse().unwrap()));
        assert!(c.http.exposure_warning(&c.path).is_none());
        let c = load("[http]\nlisten = \"[::1]:9184\"\n").unwrap();
        assert!(c.http.exposure_warning(&c.path).is_none());
    }

    #[test]
    fn http_listener_on_a_public_address_is_warned_about() {
        let c = load("\n[http]\nlisten = \"0.0.0.0:9184\"\n").unwrap();
        let warning = c.http.exposure_warning(&c.path).unwrap();
        assert!(!warning.is_error());
        assert_eq!(warning.line, Some(3));
        assert!(warning.to_string().contains("http.listen"), "{warning}");
    }

    #[test]
    fn bad_listen_address_names_line_and_key() {
        for bad in ["localhost:9184", "127.0.0.1", "127.0.0.1:99999", ""] {
            let err = load(&format!("[http]\nlisten = {bad:?}\n")).unwrap_err();
            assert_eq!(err.0[0].line, Some(2), "{bad}: {err}");
            assert!(err.0[0].to_string().contains("http.listen"), "{err}");
        }
        let err = load("[http]\nport = 9184\n").unwrap_err();
        assert_eq!(err.0[0].line, Some(2), "{err}");
    }

    #[test]
    fn admin_chat_and_alert_periods_are_read_and_default() {
        let c = load("[telegram]\nadmin_chat = \"@ops_room\"\n[alerts]\nfailing_after = \"2s\"\n").unwrap();
        assert_eq!(c.telegram.admin_chat, Some(ChatId::Username("@ops_room".into())));
        assert_eq!(c.alerts.failing_after, Duration::from_secs(2));
        assert_eq!(c.alerts.silent_after, Duration::from_secs(48 * 3600));
        let c = load("[telegram]\nadmin_chat = -100777\n").unwrap();
        assert_eq!(c.telegram.admin_chat, Some(ChatId::Id(-100777)));
        assert_eq!(c.alerts, AlertsConfig::default());
        assert_eq!(load("").unwrap().telegram.admin_chat, None);
    }

    #[test]
    fn a_bad_admin_chat_or_alert_period_is_located() {
        let err = load("[telegram]\nchat = \"@channel_x\"\nadmin_chat = \"ops\"\n").unwrap_err();
        assert_eq!(err.0[0].line, Some(3), "{err}");
        assert!(err.to_string().contains("telegram.admin_chat"), "{err}");
        let err = load("[alerts]\nsilent_after = \"forever\"\n").unwrap_err();
        assert_eq!(err.0[0].line, Some(2), "{err}");
        assert!(err.to_string().contains("silent_after"), "{err}");
    }

    #[test]
    fn the_weekly_report_is_off_by_default_and_its_slot_is_checked() {
        let c = load("").unwrap();
        assert_eq!(c.report, ReportConfig::default());
        assert!(!c.report.weekly);
        let c = load("[report]\nweekly = true\nat = \"friday 18:30\"\n").unwrap();
        assert!(c.report.weekly);
        assert_eq!(c.report.weekday, jiff::civil::Weekday::Friday);
        assert_eq!(c.report.time, jiff::civil::time(18, 30, 0, 0));
        let err = load("[digest]\nevery = \"6h\"\n[report]\nweekly = true\nat = \"Mo 9am\"\n").unwrap_err();
        assert_eq!(err.0[0].line, Some(5), "{err}");
        assert!(err.0[0].to_string().contains("report.at"), "{err}");
        assert!(err.0[0].to_string().contains("Mon 09:00"), "{err}");
    }

    #[test]
    fn short_durations_work() {
        assert_eq!(parse_duration("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("0s").is_err());
    }
}

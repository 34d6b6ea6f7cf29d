//! Getting bytes over HTTP: the first stage of the pipeline.
//!
//! One [`HttpClient`] (reqwest over rustls) serves every feed and article
//! page with the same limits: an honest User-Agent, a whole-request timeout,
//! a redirect cap, and a body cap enforced *while streaming, after
//! decompression* — a 200 MB body or a gzip bomb is abandoned as soon as it
//! passes the cap, never held in memory. Feeds use conditional GET
//! (ETag / Last-Modified), and every response's caching hints are kept for
//! [`schedule::next_poll_delay`].
//!
//! Submodules: [`charset`] turns any encoding into UTF-8 for the parser;
//! [`schedule`] decides when a feed is polled next.

pub mod charset;
pub mod schedule;
#[cfg(test)]
pub(crate) mod testing;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{StatusCode, redirect};
use url::Url;

use crate::config::PollConfig;

/// What is sent as `Accept` for feeds: feed types first, anything last (some
/// servers label RSS `text/html`).
const FEED_ACCEPT: &str = "application/rss+xml, application/atom+xml, application/feed+json, \
     application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5";
/// What is sent as `Accept` for article pages.
const PAGE_ACCEPT: &str = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5";

/// The cache validators a server gave for a feed, sent back on the next poll.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// How long the server asked us to wait, from `Retry-After` and `Cache-Control: max-age`.
/// Hints only: [`schedule::next_poll_delay`] clamps them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CacheHints {
    pub retry_after: Option<Duration>,
    pub max_age: Option<Duration>,
}

/// The outcome of a feed request that did not fail.
#[derive(Debug)]
pub enum FeedResponse {
    /// 304: the feed is unchanged since the validators we sent; nothing to parse.
    NotModified {
        hints: CacheHints,
    },
    Fetched(Fetched),
}

/// A successful (2xx) response with its whole body, within the cap.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The body, decompressed.
    pub body: Bytes,
    pub content_type: Option<String>,
    /// The URL after redirects; relative links in the body resolve against it.
    pub final_url: Url,
    /// Validators to store and send next time (empty when the server gave none).
    pub validators: Validators,
    pub hints: CacheHints,
    pub status: u16,
}

/// The kind (see [`FetchError::kind`]) of a host that could not be reached.
pub const NETWORK_ERROR_KIND: &str = "network";

/// Why a request failed. Each variant is one thing an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("timed out")]
    Timeout,
    #[error("HTTP status {code}{}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
    #[error("body larger than the {limit}-byte cap")]
    TooLarge { limit: u64 },
    #[error("too many redirects (a redirect loop?)")]
    TooManyRedirects,
    /// The host could not be reached: DNS, connect refused/timeout, reset.
    #[error("network error: {0}")]
    Network(String),
    /// The connection broke or the compression was corrupt mid-body.
    #[error("error reading the body: {0}")]
    Body(String),
    /// Anything else reqwest refused (a URL it cannot request, a bad header).
    #[error("request error: {0}")]
    Request(String),
}

impl FetchError {
    /// A short stable label for logs and `status`: `timeout`, `http-503`,
    /// `too-large`, `redirect-loop`, `network`, `body`, `request`.
    pub fn kind(&self) -> Cow<'static, str> {
        match self {
            FetchError::Timeout => "timeout".into(),
            FetchError::Status { code, .. } => format!("http-{code}").into(),
            FetchError::TooLarge { .. } => "too-large".into(),
            FetchError::TooManyRedirects => "redirect-loop".into(),
            FetchError::Network(_) => NETWORK_ERROR_KIND.into(),
            FetchError::Body(_) => "body".into(),
            FetchError::Request(_) => "request".into(),
        }
    }

    /// True when the host was unreachable: if every feed fails this way at
    /// once, the network (not each feed) is down.
    pub fn is_network(&self) -> bool {
        matches!(self, FetchError::Network(_))
    }

    /// The server's `Retry-After`, when it sent one with a 429/503.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The HTTP client every fetch goes through. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: reqwest::Client,
    max_body_bytes: u64,
    /// One lock per host for article pages, so that however many polls run
    /// at once (two feeds of one site), a site sees one page request at a time.
    page_hosts: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl HttpClient {
    /// Builds the client from the poll settings.
    pub fn new(poll: &PollConfig) -> anyhow::Result<HttpClient> {
        let client = reqwest::Client::builder()
            .user_agent(poll.user_agent.as_str())
            .timeout(poll.timeout)
            .connect_timeout(poll.timeout.min(Duration::from_secs(10)))
            .redirect(redirect::Policy::limited(poll.max_redirects))
            .gzip(true)
            .brotli(true)
            .deflate(true)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {}", error_chain(&e)))?;
        Ok(HttpClient {
            inner: Arc::new(Inner {
                client,
                max_body_bytes: poll.max_body_bytes,
                page_hosts: std::sync::Mutex::default(),
            }),
        })
    }

    /// The body cap in bytes.
    pub fn max_body_bytes(&self) -> u64 {
        self.inner.max_body_bytes
    }

    /// Fetches a feed with a conditional GET. A 304 returns
    /// [`FeedResponse::NotModified`]; any other non-2xx status is an error.
    pub async fn fetch_feed(&self, url: &Url, validators: &Validators) -> Result<FeedResponse, FetchError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(FEED_ACCEPT));
        // A validator that is not a valid header value is skipped, not fatal:
        // the poll just becomes unconditional.
        if let Some(v) = validators
            .etag
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.insert(header::IF_NONE_MATCH, v);
        }
        if let Some(v) = validators
            .last_modified
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.insert(header::IF_MODIFIED_SINCE, v);
        }
        let response = self.send(url, headers).await?;
        if response.status() == StatusCode::NOT_MODIFIED {
            return Ok(FeedResponse::NotModified {
                hints: cache_hints(response.headers(), response.status()),
            });
        }
        self.read(response).await.map(FeedResponse::Fetched)
    }

    /// Fetches an article page under the same limits (no conditional GET),
    /// waiting while another page of the same host is being fetched.
    pub async fn fetch_page(&self, url: &Url) -> Result<Fetched, FetchError> {
        let host_lock = self.page_host_lock(url);
        let _one_per_host = host_lock.lock().await;
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(PAGE_ACCEPT));
        let fetched = match self.send(url, headers).await {
            Ok(response) => self.read(response).await,
            Err(e) => Err(e),
        };
        // An answered page (or a failure within its timeout) is a step of the
        // poll: a feed with many article pages is slow, not stuck.
        crate::monitor::liveness().poll.progress();
        fetched
    }

    fn page_host_lock(&self, url: &Url) -> Arc<tokio::sync::Mutex<()>> {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        // A poisoned map only means another task panicked mid-insert; the map is still usable.
        let mut hosts = self.inner.page_hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts.entry(host).or_default().clone()
    }

    async fn send(&self, url: &Url, headers: HeaderMap) -> Result<reqwest::Response, FetchError> {
        self.inner
            .client
            .get(url.clone())
            .headers(headers)
            .send()
            .await
            .map_err(map_reqwest_error)
    }

    /// Checks the status and reads the body chunk by chunk, stopping as soon
    /// as the decompressed size passes the cap.
    async fn read(&self, mut response: reqwest::Response) -> Result<Fetched, FetchError> {
        let status = response.status();
        let hints = cache_hints(response.headers(), status);
        if !status.is_success() {
            return Err(FetchError::Status {
                code: status.as_u16(),
                retry_after: hints.retry_after,
            });
        }
        let limit = self.inner.max_body_bytes;
        // reqwest drops Content-Length when it decompresses, so this only
        // short-cuts honest uncompressed bodies; the loop below is the guard.
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(FetchError::TooLarge { limit });
        }
        let headers = response.headers();
        let header_text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let content_type = header_text(header::CONTENT_TYPE);
        let validators = Validators {
            etag: header_text(header::ETAG),
            last_modified: header_text(header::LAST_MODIFIED),
        };
        let final_url = response.url().clone();
        // Sized once from Content-Length (within the cap), so a 35 KB feed is
        // not copied over and over as its chunks arrive.
        let expected = response.content_length().unwrap_or(0).min(limit);
        let mut body = BytesMut::with_capacity(usize::try_from(expected).unwrap_or(0));
        while let Some(chunk) = response.chunk().await.map_err(map_reqwest_error)? {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(FetchError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            body: body.freeze(),
            content_type,
            final_url,
            validators,
            hints,
            status: status.as_u16(),
        })
    }
}

/// `Retry-After` (on 429 and 503, where it means "come back later") and `max-age`.
fn cache_hints(headers: &HeaderMap, status: StatusCode) -> CacheHints {
    let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let retry_after = matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    )
    .then(|| text(header::RETRY_AFTER))
    .flatten()
    .and_then(|v| schedule::parse_retry_after(v, SystemTime::now()));
    let max_age = text(header::CACHE_CONTROL).and_then(schedule::parse_max_age);
    CacheHints { retry_after, max_age }
}

fn map_reqwest_error(e: reqwest::Error) -> FetchError {
    // Callers log the feed, and URLs may carry secrets.
    let e = e.without_url();
    if e.is_redirect() {
        FetchError::TooManyRedirects
    } else if e.is_connect() {
        FetchError::Network(error_chain(&e))
    } else if e.is_timeout() {
        FetchError::Timeout
    } else if e.is_body() || e.is_decode() {
        FetchError::Body(error_chain(&e))
    } else if e.is_request() && is_connection_failure(&e) {
        FetchError::Network(error_chain(&e))
    } else {
        FetchError::Request(error_chain(&e))
    }
}

/// A reset or refused connection surfaces as a request error wrapping an io::Error.
fn is_connection_failure(e: &reqwest::Error) -> bool {
    use std::error::Error as _;
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(
                io.kind(),
                ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected | BrokenPipe
            );
        }
        source = s.source();
    }
    false
}

/// The error and its causes on one line; reqwest's own Display omits the
/// causes. It prints the URL when the error still carries one: strip it
/// first ([`reqwest::Error::without_url`], as [`map_reqwest_error`] does).
fn error_chain(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests;

//! A fixture HTTP server on 127.0.0.1 for the integration tests: serves feeds
//! and article pages with real conditional GET, plus the misbehaviours a feed
//! host can show (error statuses, slow answers, redirect loops, endless
//! bodies), and logs every request so tests can assert what was asked.
//!
//! It runs on its own thread with its own runtime, so plain `#[test]`s can
//! spawn the real `cstowatch` binary against it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::cli::hours_ago;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What the server answers on one path.
#[derive(Clone, Debug)]
pub enum Route {
    /// A body with a content type; answers 304 to a matching If-None-Match or If-Modified-Since.
    Doc {
        body: Vec<u8>,
        content_type: String,
        etag: Option<String>,
        last_modified: Option<String>,
    },
    /// An error status, optionally with Retry-After.
    Status { code: u16, retry_after: Option<String> },
    /// A redirect to another path on this server.
    Redirect(String),
    /// Answers after this long (longer than the client's timeout).
    Slow(Duration),
    /// A 200 body of this many bytes, streamed in 64 KiB chunks and never held whole.
    Endless(u64),
    /// A 200 body sent as is with exactly these headers (a captured feed
    /// with its own `Content-Type`, or a gzip body with `Content-Encoding`).
    Raw {
        body: Vec<u8>,
        headers: Vec<(String, String)>,
    },
}

impl Route {
    /// An RSS/Atom document served with validators.
    pub fn feed(body: impl Into<Vec<u8>>, etag: &str) -> Route {
        Route::Doc {
            body: body.into(),
            content_type: "application/rss+xml; charset=utf-8".into(),
            etag: Some(etag.into()),
            last_modified: Some("Mon, 23 Nov 2026 08:00:00 GMT".into()),
        }
    }

    /// An HTML page.
    pub fn page(body: impl Into<Vec<u8>>) -> Route {
        Route::Doc {
            body: body.into(),
            content_type: "text/html; charset=utf-8".into(),
            etag: None,
            last_modified: None,
        }
    }
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    pub user_agent: Option<String>,
    pub status: u16,
}

#[derive(Default)]
struct Shared {
    routes: Mutex<HashMap<String, Route>>,
    log: Mutex<Vec<Seen>>,
}

/// The running server; stops when dropped.
pub struct FeedServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// An RSS 2.0 document of `(slug, title)` items, each linking to `/a/<slug>`
/// on `server` and published an hour ago.
pub fn rss(server: &FeedServer, items: &[(&str, &str)]) -> String {
    let mut s = String::from("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>T</title>");
    for (slug, title) in items {
        s.push_str(&format!(
            "<item><title>{title}</title><link>{}</link><guid>{slug}</guid><pubDate>{}</pubDate></item>",
            server.url(&format!("/a/{slug}")),
            hours_ago(1)
        ));
    }
    s.push_str("</channel></rss>");
    s
}

impl FeedServer {
    pub fn start() -> FeedServer {
        let shared = Arc::new(Shared::default());
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let state = Arc::clone(&shared);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new().fallback(handle).with_state(state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stop.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
        FeedServer {
            addr,
            shared,
            _shutdown: shutdown,
        }
    }

    /// The absolute URL of a path on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sets (or replaces) what a path answers.
    pub fn set(&self, path: &str, route: Route) {
        self.shared.routes.lock().unwrap().insert(path.to_string(), route);
    }

    /// Every request to `path` so far, in order.
    pub fn requests(&self, path: &str) -> Vec<Seen> {
        self.shared
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }

    /// Every request so far.
    pub fn all_requests(&self) -> Vec<Seen> {
        self.shared.log.lock().unwrap().clone()
    }
}

fn header_string(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let route = shared.routes.lock().unwrap().get(&path).cloned();
    let headers = req.headers();
    let if_none_match = header_string(headers, header::IF_NONE_MATCH);
    let if_modified_since = header_string(headers, header::IF_MODIFIED_SINCE);
    let response = match route {
        None => StatusCode::NOT_FOUND.into_response(),
        Some(Route::Doc {
            body,
            content_type,
            etag,
            last_modified,
        }) => {
            let fresh_etag = etag.is_some() && if_none_match == etag;
            let fresh_date =
                if_none_match.is_none() && last_modified.is_some() && if_modified_since == last_modified;
            let mut r = if fresh_etag || fresh_date {
                StatusCode::NOT_MODIFIED.into_response()
            } else {
                ([(header::CONTENT_TYPE, content_type)], body).into_response()
            };
            if let Some(e) = etag {
                r.headers_mut()
                    .insert(header::ETAG, HeaderValue::from_str(&e).unwrap());
            }
            if let Some(lm) = last_modified {
                r.headers_mut()
                    .insert(header::LAST_MODIFIED, HeaderValue::from_str(&lm).unwrap());
            }
            r
        }
        Some(Route::Status { code, retry_after }) => {
            let mut r = (StatusCode::from_u16(code).unwrap(), "error").into_response();
            if let Some(ra) = retry_after {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_str(&ra).unwrap());
            }
            r
        }
        Some(Route::Redirect(to)) => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
        Some(Route::Slow(d)) => {
            tokio::time::sleep(d).await;
            (
                [(header::CONTENT_TYPE, "application/rss+xml")],
                "<rss version=\"2.0\"><channel></channel></rss>",
            )
                .into_response()
        }
        Some(Route::Raw { body, headers }) => {
            let mut r = body.into_response();
            r.headers_mut().remove(header::CONTENT_TYPE);
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) = (
                    header::HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(&value),
                ) {
                    r.headers_mut().append(name, value);
                }
            }
            r
        }
        Some(Route::Endless(total)) => {
            let chunk = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
            let n = total.div_ceil(chunk.len() as u64);
            let stream =
                futures_util::stream::iter((0..n).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
            (
                [(header::CONTENT_TYPE, "application/rss+xml")],
                Body::from_stream(stream),
            )
                .into_response()
        }
    };
    shared.log.lock().unwrap().push(Seen {
        path,
        if_none_match,
        if_modified_since,
        user_agent: header_string(req.headers(), header::USER_AGENT),
        status: response.status().as_u16(),
    });
    response
}

//! HTTP client tests against a real axum server on 127.0.0.1.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;

use super::testing::{TestServer, poll_config};
use super::*;

const FEED: &str = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title></channel></rss>";

fn client() -> HttpClient {
    HttpClient::new(&poll_config()).expect("client builds")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip in memory");
    enc.finish().expect("gzip in memory")
}

#[derive(Default)]
struct Seen {
    requests: Vec<HeaderMap>,
}

async fn conditional(State(seen): State<Arc<Mutex<Seen>>>, headers: HeaderMap) -> Response {
    let not_modified = headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == "\"v1\"");
    seen.lock().unwrap().requests.push(headers);
    if not_modified {
        return (StatusCode::NOT_MODIFIED, [(header::CACHE_CONTROL, "max-age=300")]).into_response();
    }
    (
        [
            (header::ETAG, "\"v1\""),
            (header::LAST_MODIFIED, "Mon, 23 Nov 2026 08:00:00 GMT"),
            (header::CACHE_CONTROL, "public, max-age=600"),
            (header::CONTENT_TYPE, "application/rss+xml; charset=utf-8"),
        ],
        FEED,
    )
        .into_response()
}

#[tokio::test]
async fn conditional_get_sends_validators_and_gets_304() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let server = TestServer::start(
        Router::new()
            .route("/feed", get(conditional))
            .with_state(seen.clone()),
    )
    .await;
    let client = client();

    let first = client
        .fetch_feed(&server.url("/feed"), &Validators::default())
        .await
        .unwrap();
    let FeedResponse::Fetched(fetched) = first else {
        panic!("first poll must fetch")
    };
    assert_eq!(&fetched.body[..], FEED.as_bytes());
    assert_eq!(fetched.status, 200);
    assert_eq!(
        fetched.validators,
        Validators {
            etag: Some("\"v1\"".into()),
            last_modified: Some("Mon, 23 Nov 2026 08:00:00 GMT".into()),
        }
    );
    assert_eq!(fetched.hints.max_age, Some(Duration::from_secs(600)));
    assert_eq!(
        fetched.content_type.as_deref(),
        Some("application/rss+xml; charset=utf-8")
    );

    let second = client
        .fetch_feed(&server.url("/feed"), &fetched.validators)
        .await
        .unwrap();
    let FeedResponse::NotModified { hints } = second else {
        panic!("second poll must be 304")
    };
    assert_eq!(hints.max_age, Some(Duration::from_secs(300)));

    let seen = seen.lock().unwrap();
    assert_eq!(seen.requests.len(), 2);
    let (r1, r2) = (&seen.requests[0], &seen.requests[1]);
    assert!(r1.get(header::IF_NONE_MATCH).is_none());
    assert_eq!(r2.get(header::IF_NONE_MATCH).unwrap(), "\"v1\"");
    assert_eq!(
        r2.get(header::IF_MODIFIED_SINCE).unwrap(),
        "Mon, 23 Nov 2026 08:00:00 GMT"
    );
    let ua = r1.get(header::USER_AGENT).unwrap().to_str().unwrap();
    assert!(ua.starts_with("cstowatch/"), "{ua}");
    let accept_encoding = r1.get(header::ACCEPT_ENCODING).unwrap().to_str().unwrap();
    assert!(
        accept_encoding.contains("gzip") && accept_encoding.contains("br"),
        "{accept_encoding}"
    );
}

#[tokio::test]
async fn gzip_brotli_and_deflate_bodies_are_decompressed() {
    let payload = FEED.repeat(50);
    let gz = gzip(payload.as_bytes());
    let mut br = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
        w.write_all(payload.as_bytes()).unwrap();
    }
    let mut deflate = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    deflate.write_all(payload.as_bytes()).unwrap();
    let deflate = deflate.finish().unwrap();
    let encoded = |encoding: &'static str, body: Vec<u8>| {
        move || async move { ([(header::CONTENT_ENCODING, encoding)], body) }
    };
    let server = TestServer::start(
        Router::new()
            .route("/gz", get(encoded("gzip", gz)))
            .route("/br", get(encoded("br", br)))
            .route("/deflate", get(encoded("deflate", deflate))),
    )
    .await;
    let client = client();
    for path in ["/gz", "/br", "/deflate"] {
        let fetched = client.fetch_page(&server.url(path)).await.unwrap();
        assert_eq!(&fetched.body[..], payload.as_bytes(), "{path}");
    }
}

/// 200 MB produced lazily in 64 KiB chunks; `produced` counts what the server
/// actually generated, proving the client stopped reading near the cap.
#[tokio::test]
async fn streaming_cap_abandons_a_200mb_body() {
    const CHUNK: usize = 64 * 1024;
    const TOTAL_CHUNKS: usize = 200 * 1024 * 1024 / CHUNK;
    let produced = Arc::new(AtomicU64::new(0));
    let counter = produced.clone();
    let handler = move || {
        let counter = counter.clone();
        async move {
            let chunks = futures_util::stream::iter(0..TOTAL_CHUNKS).map(move |_| {
                counter.fetch_add(CHUNK as u64, Ordering::Relaxed);
                Ok::<_, std::io::Error>(Bytes::from_static(&[b'x'; CHUNK]))
            });
            Body::from_stream(chunks)
        }
    };
    let server = TestServer::start(Router::new().route("/huge", get(handler))).await;
    let err = client()
        .fetch_feed(&server.url("/huge"), &Validators::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::TooLarge { limit } if limit == 1 << 20),
        "{err:?}"
    );
    assert_eq!(err.kind(), "too-large");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let produced = produced.load(Ordering::Relaxed);
    assert!(
        produced < 32 << 20,
        "server produced {produced} bytes: the client kept reading"
    );
}

#[tokio::test]
async fn gzip_bomb_is_stopped_at_the_cap_after_decompression() {
    let bomb = gzip(&vec![0u8; 24 << 20]);
    assert!(
        bomb.len() < 1 << 20,
        "the compressed bomb itself fits under the cap"
    );
    let server = TestServer::start(Router::new().route(
        "/bomb",
        get(move || async move { ([(header::CONTENT_ENCODING, "gzip")], bomb) }),
    ))
    .await;
    let err = client()
        .fetch_feed(&server.url("/bomb"), &Validators::default())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err:?}");
}

#[tokio::test]
async fn honest_content_length_over_the_cap_is_refused_at_once() {
    let server = TestServer::start(Router::new().route("/big", get(|| async { vec![b'x'; 2 << 20] }))).await;
    let err = client().fetch_page(&server.url("/big")).await.unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err:?}");
}

#[tokio::test]
async fn redirects_are_followed_up_to_the_cap_and_a_loop_is_its_own_error() {
    let redirect = |to: &'static str| move || async move { (StatusCode::FOUND, [(header::LOCATION, to)]) };
    let server = TestServer::start(
        Router::new()
            .route("/a", get(redirect("/b")))
            .route("/b", get(redirect("/a")))
            .route("/old", get(redirect("/new")))
            .route("/new", get(|| async { FEED })),
    )
    .await;
    let client = client();
    let FeedResponse::Fetched(moved) = client
        .fetch_feed(&server.url("/old"), &Validators::default())
        .await
        .unwrap()
    else {
        panic!("redirect target must be fetched")
    };
    assert_eq!(moved.final_url, server.url("/new"));
    let err = client
        .fetch_feed(&server.url("/a"), &Validators::default())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::TooManyRedirects), "{err:?}");
    assert_eq!(err.kind(), "redirect-loop");
    assert!(!err.is_network());
}

#[tokio::test]
async fn slow_headers_and_slow_body_both_time_out() {
    let slow_headers = || async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        FEED
    };
    let slow_body = || async {
        let stalled =
            futures_util::stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(b"<rss")) }).chain(
                futures_util::stream::once(async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok(Bytes::from_static(b"/>"))
                }),
            );
        Body::from_stream(stalled)
    };
    let server = TestServer::start(
        Router::new()
            .route("/slow-headers", get(slow_headers))
            .route("/slow-body", get(slow_body)),
    )
    .await;
    let mut poll = poll_config();
    poll.timeout = Duration::from_millis(300);
    let client = HttpClient::new(&poll).unwrap();
    let started = std::time::Instant::now();
    let none = Validators::default();
    let (slow_headers_url, slow_body_url) = (server.url("/slow-headers"), server.url("/slow-body"));
    let (a, b) = tokio::join!(
        client.fetch_feed(&slow_headers_url, &none),
        client.fetch_feed(&slow_body_url, &none),
    );
    assert!(matches!(a, Err(FetchError::Timeout)), "{a:?}");
    assert!(matches!(b, Err(FetchError::Timeout)), "{b:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn error_statuses_carry_retry_after() {
    let server = TestServer::start(
        Router::new()
            .route(
                "/503",
                get(|| async { (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "120")]) }),
            )
            .route(
                "/429",
                get(|| async {
                    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(600);
                    let date =
                        jiff::fmt::rfc2822::to_string(&later.to_zoned(jiff::tz::TimeZone::UTC)).unwrap();
                    (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, date)])
                }),
            )
            .route(
                "/404",
                get(|| async { (StatusCode::NOT_FOUND, [(header::RETRY_AFTER, "5")]) }),
            ),
    )
    .await;
    let client = client();
    let none = Validators::default();
    let urls = [server.url("/503"), server.url("/429"), server.url("/404")];
    let fetch = |i: usize| client.fetch_feed(&urls[i], &none);

    let e503 = fetch(0).await.unwrap_err();
    assert!(matches!(e503, FetchError::Status { code: 503, .. }), "{e503:?}");
    assert_eq!(e503.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(e503.kind(), "http-503");

    let e429 = fetch(1).await.unwrap_err();
    let wait = e429.retry_after().expect("429 names a date");
    assert!(
        (Duration::from_secs(590)..=Duration::from_secs(601)).contains(&wait),
        "{wait:?}"
    );

    let e404 = fetch(2).await.unwrap_err();
    assert_eq!(e404.kind(), "http-404");
    assert_eq!(
        e404.retry_after(),
        None,
        "Retry-After only means something on 429/503"
    );
}

#[tokio::test]
async fn unreachable_host_is_a_network_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = Url::parse(&format!("http://{addr}/feed")).unwrap();
    let err = client()
        .fetch_feed(&url, &Validators::default())
        .await
        .unwrap_err();
    assert!(err.is_network(), "{err:?}");
    assert_eq!(err.kind(), "network");
    assert!(
        !err.to_string().contains("/feed"),
        "errors leave URLs to the caller: {err}"
    );
}

#[tokio::test]
async fn html_page_is_fetched_as_is_for_the_parser_to_judge() {
    let server = TestServer::start(Router::new().route(
        "/feed",
        get(|| async {
            (
                [(header::CONTENT_TYPE, "text/html")],
                "<!DOCTYPE html><html></html>",
            )
        }),
    ))
    .await;
    let FeedResponse::Fetched(f) = client()
        .fetch_feed(&server.url("/feed"), &Validators::default())
        .await
        .unwrap()
    else {
        panic!("a 200 is fetched")
    };
    assert_eq!(f.content_type.as_deref(), Some("text/html"));
}

#[tokio::test]
async fn a_refused_connection_is_a_network_error_that_names_the_cause_but_not_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = Url::parse(&format!("http://{addr}/feed?key=s3cr3t")).unwrap();
    let e = client()
        .fetch_feed(&url, &Validators::default())
        .await
        .expect_err("nothing listens there");
    assert!(e.is_network(), "{e:?}");
    let message = e.to_string();
    assert!(message.contains("Connection refused"), "{message}");
    assert!(
        !message.contains("s3cr3t") && !message.contains(&addr.to_string()),
        "{message}"
    );
}

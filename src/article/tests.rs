//! Article extraction tests over `tests/fixtures/pages/`, and full-text
//! filling against a real axum server.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use url::Url;

use super::*;
use crate::fetch::testing::{TestServer, poll_config};

/// Fails naming the first of `absent` that leaked into the extracted text.
#[track_caller]
fn assert_absent(text: &str, absent: &[&str]) {
    for a in absent {
        assert!(!text.contains(a), "{a:?} leaked into the article text");
    }
}

fn page(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pages")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn extractor(selectors: &[&str]) -> ArticleExtractor {
    let selectors: Vec<String> = selectors.iter().map(|s| s.to_string()).collect();
    ArticleExtractor::new(&selectors).unwrap()
}

#[test]
fn massispost_second_selector_matches_and_sidebar_is_left_out() {
    let found = extractor(&[".td-post-content", ".entry-content"])
        .extract(&page("massispost_article.html"))
        .unwrap();
    assert_eq!(found.matched, ".entry-content");
    assert!(
        found.text.starts_with("Established in 1992"),
        "{}",
        &found.text[..80]
    );
    assert_absent(
        &found.text,
        &[
            "Recent Posts",
            "Gavin Newsom",
            "Share this",
            "tracking",
            "Copyright",
            "Home",
        ],
    );
}

#[test]
fn evn_report_jnews_body_without_related_posts_and_tags() {
    let found = extractor(&[".jeg_post_content .content-inner", ".entry-content"])
        .extract(&page("evnreport_article.html"))
        .unwrap();
    assert_eq!(found.matched, ".jeg_post_content .content-inner");
    assert!(found.text.starts_with("In the midst of the 2020 Artsakh War"));
    assert!(found.text.contains("geography is inescapable"));
    assert_absent(
        &found.text,
        &[
            "Related Posts",
            "Unrelated Story",
            "Tags:",
            "Nagorno-Karabakh",
            "Anahid",
            "Share on",
        ],
    );
}

#[test]
fn jamestown_entry_content() {
    let found = extractor(&[".entry-content"])
        .extract(&page("jamestown_article.html"))
        .unwrap();
    assert_eq!(found.matched, ".entry-content");
    assert!(
        found
            .text
            .starts_with("Publication: Eurasia Daily Monitor Volume: 15 Issue: 137")
    );
    assert!(found.text.contains("(Interfax, September 22)"));
    assert!(!found.text.contains("Subscribe to our newsletter"));
}

#[test]
fn no_selector_match_falls_back_to_the_largest_block() {
    let found = extractor(&[".entry-content", "article .post-body"])
        .extract(&page("no_selector_match.html"))
        .unwrap();
    assert_eq!(found.matched, LARGEST_BLOCK);
    assert!(
        found.text.starts_with("On December 29 of 2016"),
        "{}",
        &found.text[..80]
    );
    assert!(found.text.contains("“deep concern”"));
    assert_absent(
        &found.text,
        &["Reader one", "Most read", "CSTO Does Not Exist?", "tracking"],
    );
    // No selectors at all: straight to the fallback.
    assert_eq!(
        extractor(&[]).extract(&page("no_selector_match.html")).unwrap(),
        found
    );
}

#[test]
fn a_match_without_text_tries_the_next_selector() {
    let html = "<div class='a'> <img src=x> </div><div class='b'><p>Body text.</p></div>";
    let found = extractor(&[".a", ".b"]).extract(html).unwrap();
    assert_eq!(found.matched, ".b");
    assert_eq!(found.text, "Body text.");
}

#[test]
fn empty_page_gives_nothing_and_bad_selectors_are_refused() {
    assert_eq!(
        extractor(&[".x"]).extract("<html><body><script>x</script></body></html>"),
        None
    );
    let err = ArticleExtractor::new(&["div[".to_string()]).unwrap_err();
    assert!(err.contains("div["), "{err}");
}

#[test]
fn pages_in_other_charsets_are_decoded() {
    let (bytes, _, _) = encoding_rs::WINDOWS_1251
        .encode("<html><head><meta charset=\"windows-1251\"></head><body><p>ОДКБ</p></body></html>");
    assert!(decode_html(&bytes, Some("text/html")).contains("<p>ОДКБ</p>"));
    let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode("<p>Ереван</p>");
    assert_eq!(
        decode_html(&bytes, Some("text/html; charset=cp1251")),
        "<p>Ереван</p>"
    );
    assert_eq!(
        decode_html("<p>Ереван</p>".as_bytes(), Some("text/html; charset=cp1251")),
        "<p>Ереван</p>"
    );
}

fn item(url: Option<Url>, summary: &str, content: &str) -> Item {
    Item {
        feed: "Test".into(),
        guid: None,
        url,
        title: "t".into(),
        summary: summary.into(),
        content: content.into(),
        published: jiff::Timestamp::UNIX_EPOCH,
        updated: None,
        dated: true,
        categories: Vec::new(),
    }
}

#[test]
fn excerpts_with_a_link_need_full_text() {
    let url = Some(Url::parse("https://massispost.com/2023/11/x/").unwrap());
    assert!(needs_full_text(&item(url.clone(), "short [...]", ""), 600));
    assert!(!needs_full_text(
        &item(url.clone(), "short", &"long ".repeat(200)),
        600
    ));
    assert!(
        !needs_full_text(&item(None, "short", ""), 600),
        "no link, nothing to fetch"
    );
    assert!(
        needs_full_text(&item(url, &"é".repeat(599), ""), 600),
        "counts characters, not bytes"
    );
}

/// Counts requests in flight, overall and per Host header.
#[derive(Default)]
struct Load {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    per_host: Mutex<HashMap<String, (usize, usize)>>,
    requests: AtomicUsize,
}

async fn article_page(
    State(load): State<Arc<Load>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split(':').next())
        .unwrap_or_default()
        .to_string();
    load.requests.fetch_add(1, Ordering::SeqCst);
    let now = load.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    load.max_in_flight.fetch_max(now, Ordering::SeqCst);
    {
        let mut per_host = load.per_host.lock().unwrap();
        let entry = per_host.entry(host.clone()).or_default();
        entry.0 += 1;
        entry.1 = entry.1.max(entry.0);
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    load.per_host.lock().unwrap().entry(host).or_default().0 -= 1;
    load.in_flight.fetch_sub(1, Ordering::SeqCst);
    match name.as_str() {
        "missing" => StatusCode::NOT_FOUND.into_response(),
        "nomatch" => (
            [(header::CONTENT_TYPE, "text/html")],
            page("no_selector_match.html"),
        )
            .into_response(),
        _ => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            page("massispost_article.html"),
        )
            .into_response(),
    }
}

#[tokio::test]
async fn fill_full_text_fetches_excerpts_one_per_host_and_survives_failures() {
    let load = Arc::new(Load::default());
    let server = TestServer::start(
        Router::new()
            .route("/article/{name}", get(article_page))
            .with_state(load.clone()),
    )
    .await;
    let on = |host: &str, name: &str| {
        Some(Url::parse(&format!("http://{host}:{}/article/{name}", server.addr.port())).unwrap())
    };
    let full = "A full text that is long enough already. ".repeat(20);
    let mut items = vec![
        item(on("127.0.0.1", "a"), "CSTO’s Delayed Moves […]", ""),
        item(on("127.0.0.1", "b"), "Excerpt […]", ""),
        item(on("127.0.0.1", "missing"), "Gone […]", ""),
        item(on("localhost", "nomatch"), "Other host […]", ""),
        item(on("localhost", "c"), "Other host again […]", ""),
        item(on("127.0.0.1", "full"), "", &full),
        item(None, "No link", ""),
    ];
    let before = items.clone();
    let client = HttpClient::new(&poll_config()).unwrap();
    let extractor = extractor(&[".entry-content"]);
    fill_full_text(&client, &extractor, &mut items, 600, 4).await;

    assert!(items[0].content.starts_with("Established in 1992"));
    assert!(items[1].content.starts_with("Established in 1992"));
    assert_eq!(items[2], before[2], "a 404 leaves the item as it was");
    assert!(
        items[3].content.starts_with("On December 29 of 2016"),
        "largest-block fallback"
    );
    assert!(items[4].content.starts_with("Established in 1992"));
    assert_eq!(items[5], before[5], "full text already there: not fetched");
    assert_eq!(items[6], before[6]);
    for (after, before) in items.iter().zip(&before) {
        assert_eq!(after.summary, before.summary, "summaries are never touched");
    }

    assert_eq!(load.requests.load(Ordering::SeqCst), 5);
    let per_host = load.per_host.lock().unwrap();
    assert_eq!(per_host.len(), 2, "{:?}", per_host.keys().collect::<Vec<_>>());
    for (host, (_, max)) in per_host.iter() {
        assert_eq!(*max, 1, "{host} saw {max} requests at once");
    }
    assert!(load.max_in_flight.load(Ordering::SeqCst) <= 2);
}

#[tokio::test]
async fn fill_full_text_respects_the_concurrency_bound() {
    let load = Arc::new(Load::default());
    let server = TestServer::start(
        Router::new()
            .route("/article/{name}", get(article_page))
            .with_state(load.clone()),
    )
    .await;
    let port = server.addr.port();
    // Five hosts, all loopback: 127.0.0.1 .. 127.0.0.5 reach a server bound to 127.0.0.1 only
    // on some systems, so use distinct host names for the same address instead.
    let hosts = ["127.0.0.1", "localhost"];
    let mut items: Vec<Item> = (0..6)
        .map(|i| {
            let url = Url::parse(&format!("http://{}:{port}/article/p{i}", hosts[i % 2])).unwrap();
            item(Some(url), "excerpt", "")
        })
        .collect();
    let client = HttpClient::new(&poll_config()).unwrap();
    fill_full_text(&client, &extractor(&[".entry-content"]), &mut items, 600, 1).await;
    assert_eq!(
        load.max_in_flight.load(Ordering::SeqCst),
        1,
        "concurrency 1 means one at a time"
    );
    assert!(items.iter().all(|i| i.content.starts_with("Established in 1992")));
}

/// The pipeline runs polls in spawned tasks: the future must be `Send`.
#[test]
fn fill_full_text_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let client = HttpClient::new(&poll_config()).unwrap();
    let extractor = extractor(&[]);
    let mut items: Vec<Item> = Vec::new();
    let future = fill_full_text(&client, &extractor, &mut items, 600, 2);
    assert_send(&future);
}

#[tokio::test]
async fn concurrent_fills_share_the_per_host_limit() {
    let load = Arc::new(Load::default());
    let server = TestServer::start(
        Router::new()
            .route("/article/{name}", get(article_page))
            .with_state(load.clone()),
    )
    .await;
    let port = server.addr.port();
    let batch = |prefix: &str| -> Vec<Item> {
        (0..3)
            .map(|i| {
                let url = Url::parse(&format!("http://127.0.0.1:{port}/article/{prefix}{i}")).unwrap();
                item(Some(url), "excerpt", "")
            })
            .collect()
    };
    let (mut site_wide, mut program) = (batch("site"), batch("program"));
    let client = HttpClient::new(&poll_config()).unwrap();
    let extractor = extractor(&[".entry-content"]);
    let clone_of_client = client.clone();
    tokio::join!(
        fill_full_text(&client, &extractor, &mut site_wide, 600, 4),
        fill_full_text(&clone_of_client, &extractor, &mut program, 600, 4),
    );
    assert_eq!(load.requests.load(Ordering::SeqCst), 6);
    assert_eq!(
        load.max_in_flight.load(Ordering::SeqCst),
        1,
        "two feeds of one site, one request at a time"
    );
}

//! `cstowatch review` on the real binary: after a poll, the item whose
//! conflict evidence is one background paragraph (a near miss) is listed
//! with its reasons and link; the clearly relevant and the clearly
//! off-topic items are not; `--json` gives one object per line; `--since`
//! leaves out items first seen before it.

mod support;

use support::cli::{Install, hours_ago};
use support::feed_server::{FeedServer, Route};

/// (slug, title, summary, body) of the fixture feed's items.
const ITEMS: &[(&str, &str, &str, &str)] = &[
    (
        "roundup",
        "Yerevan weekly roundup: tram fares and a new library",
        "The city council approved higher tram fares.",
        "<p>The city council approved higher tram fares on Tuesday.</p>\
         <p>A new library opened in the Kentron district.</p>\
         <p>Armenia and Azerbaijan held another round of border delimitation talks.</p>",
    ),
    (
        "shelling",
        "Azerbaijani troops fire on Armenian positions in Tavush",
        "Yerevan reports overnight fire on the border.",
        "<p>The defence ministry in Yerevan said Azerbaijani forces opened fire overnight near the border village.</p>",
    ),
    (
        "jazz",
        "Jazz festival opens in Yerevan",
        "Musicians from ten countries.",
        "<p>Musicians from ten countries play for a week.</p>",
    ),
];

fn feed(server: &FeedServer) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\"?><rss version=\"2.0\" \
         xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"><channel><title>News</title>",
    );
    for (slug, title, summary, body) in ITEMS {
        s.push_str(&format!(
            "<item><title>{title}</title><link>{}</link><guid>{slug}</guid><pubDate>{}</pubDate>\
             <description>{summary}</description>\
             <content:encoded><![CDATA[{body}]]></content:encoded></item>",
            server.url(&format!("/a/{slug}")),
            hours_ago(2)
        ));
    }
    s.push_str("</channel></rss>");
    s
}

fn polled() -> (FeedServer, Install) {
    let server = FeedServer::start();
    server.set("/feed", Route::feed(feed(&server), "\"v1\""));
    let install = Install::new(&format!(
        "[poll]\ntimeout = \"5s\"\n[[feeds]]\nname = \"News\"\nurl = \"{}\"\n\
         [state]\npath = \"../state/cstowatch.db\"\n",
        server.url("/feed")
    ));
    install.run(&["run", "--once", "--dry-run"]).expect_code(0);
    assert_eq!(install.count("SELECT count(*) FROM items"), 3);
    (server, install)
}

#[test]
fn a_near_miss_is_listed_with_its_reasons_and_link() {
    let (server, install) = polled();
    let run = install.run(&["review"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(out.contains("1 near miss(es) of 3 item(s)"), "{out}");
    assert!(out.contains("below  armenia-azerbaijan"), "{out}");
    assert!(out.contains("Yerevan weekly roundup"), "{out}");
    assert!(out.contains(&server.url("/a/roundup")), "{out}");
    // Its largest contribution, with the terms behind it.
    assert!(out.contains("body") && out.contains("Azerbaijan"), "{out}");
    assert!(
        !out.contains("Jazz") && !out.contains("fire on Armenian"),
        "{out}"
    );
}

#[test]
fn json_gives_one_object_per_near_miss() {
    let (_server, install) = polled();
    let run = install.run(&["review", "--json"]);
    run.expect_code(0);
    let lines: Vec<serde_json::Value> = run
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let miss = &lines[0];
    assert_eq!(miss["tag"], "armenia-azerbaijan");
    assert_eq!(miss["relevant"], false);
    assert!(miss["score"].as_f64().unwrap() < miss["threshold"].as_f64().unwrap());
    assert!(!miss["reasons"].as_array().unwrap().is_empty());
}

#[test]
fn since_leaves_out_items_first_seen_earlier() {
    let (_server, install) = polled();
    let conn = rusqlite::Connection::open(install.db_path()).expect("state opens");
    let ten_days_ago = jiff::Timestamp::now().as_second() - 10 * 86_400;
    conn.execute("UPDATE items SET first_seen_at = ?1", [ten_days_ago])
        .expect("backdated");
    let run = install.run(&["review", "--since", "7d"]);
    run.expect_code(0);
    assert!(
        run.stdout().contains("0 near miss(es) of 0 item(s)"),
        "{}",
        run.stdout()
    );
    let run = install.run(&["review", "--since", "30d"]);
    assert!(
        run.stdout().contains("1 near miss(es) of 3 item(s)"),
        "{}",
        run.stdout()
    );
    install.run(&["review", "--since", "soon"]).expect_code(2);
}

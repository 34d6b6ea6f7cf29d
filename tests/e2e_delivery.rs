//! Delivery end to end on the real binary: fixture feeds → `run --once` →
//! `digest` → the fake Bot API over real HTTP, checking what a subscriber
//! would see: the relevant items, once, with working links; nothing again
//! after a restart; the token never printed.

mod support;

use support::cli::{Install, hours_ago};
use support::fake_telegram::{CHANNEL, Failure, FakeTelegram, TOKEN};
use support::feed_server::{FeedServer, Route};

const RELEVANT: &[&str] = &[
    "CSTO Foreign Ministers Meet in Minsk Without Armenia",
    "Azerbaijani Forces Open Fire on Armenian Positions Near Tavush Border",
    "Pashinyan and Aliyev Agree to Resume Border Delimitation Talks",
];
const IRRELEVANT: &[&str] = &[
    "Armenian Assembly Hosts Annual Gala in Los Angeles",
    "Yerevan Opens a New Metro Station After Ten Years",
];

fn feed(server: &FeedServer) -> String {
    let mut s = String::from("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>News</title>");
    for (i, title) in RELEVANT.iter().chain(IRRELEVANT).enumerate() {
        s.push_str(&format!(
            "<item><title>{title}</title><link>{}</link><guid>id-{i}</guid><pubDate>{}</pubDate>\
             <description>{title}.</description></item>",
            server.url(&format!("/a/{i}?utm_source=rss")),
            hours_ago(5 - i as i64)
        ));
    }
    s.push_str("</channel></rss>");
    s
}

fn install(server: &FeedServer, fake: &FakeTelegram) -> Install {
    let config = format!(
        "[poll]\ntimeout = \"5s\"\n[[feeds]]\nname = \"News\"\nurl = \"{}\"\n\
         [telegram]\napi_url = \"{}\"\nchat = \"{CHANNEL}\"\n\
         [digest]\nat = [\"09:00\"]\n[state]\npath = \"../state/cstowatch.db\"\n",
        server.url("/feed"),
        fake.url
    );
    let mut install = Install::new(&config);
    install
        .env
        .push(("CSTOWATCH_TELEGRAM_TOKEN".into(), TOKEN.into()));
    install
}

fn assert_no_token(run: &support::cli::Run) {
    for text in [run.stdout(), run.stderr()] {
        assert!(!text.contains(TOKEN), "the token leaked:\n{text}");
        assert!(
            !text.contains("AAF-test_SECRET"),
            "part of the token leaked:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn relevant_items_reach_the_channel_once_and_a_restart_sends_nothing() {
    let server = FeedServer::start();
    server.set("/feed", Route::feed(feed(&server), "\"v1\""));
    let fake = FakeTelegram::start().await;
    let install = install(&server, &fake);

    // A dry run polls and stores, and sends nothing.
    let run = install.run(&["run", "--once", "--dry-run"]);
    run.expect_code(0);
    assert_no_token(&run);
    assert_eq!(fake.requests().len(), 0);

    let status = install.run(&["status"]);
    status.expect_code(0);
    let line = status
        .stdout()
        .lines()
        .find(|l| l.contains(CHANNEL))
        .map(str::to_string);
    let line = line.unwrap_or_else(|| panic!("no destination line:\n{}", status.stdout()));
    assert!(line.split_whitespace().nth(1) == Some("3"), "3 pending: {line}");

    // A destination that never had a digest gets one at once.
    let run = install.run(&["run", "--once"]);
    run.expect_code(0);
    assert_no_token(&run);
    let accepted = fake.accepted();
    assert!(!accepted.is_empty());
    let visible: String = accepted
        .iter()
        .map(|m| m.visible.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for title in RELEVANT {
        assert_eq!(visible.matches(title).count(), 1, "{title} once in:\n{visible}");
    }
    for title in IRRELEVANT {
        assert!(!visible.contains(title), "off-topic {title} posted:\n{visible}");
    }
    let links: Vec<&String> = accepted.iter().flat_map(|m| &m.links).collect();
    assert_eq!(links.len(), RELEVANT.len(), "{links:?}");
    assert!(
        links.iter().all(|l| l.starts_with(&server.url("/a/"))),
        "{links:?}"
    );
    assert!(
        accepted
            .iter()
            .all(|m| m.chat == CHANNEL && m.parse_mode.as_deref() == Some("HTML"))
    );
    assert!(accepted.iter().all(|m| m.link_preview_disabled));

    // A restart: polling again and forcing a digest sends nothing new.
    install.run(&["run", "--once"]).expect_code(0);
    install.run(&["digest"]).expect_code(0);
    assert_eq!(fake.accepted().len(), accepted.len());
    let status = install.run(&["status"]).stdout();
    let line = status.lines().find(|l| l.contains(CHANNEL)).unwrap();
    assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    assert_eq!(line.split_whitespace().nth(2), Some("3"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_token_digests_print_to_stdout_and_count_for_the_console_only() {
    let server = FeedServer::start();
    server.set("/feed", Route::feed(feed(&server), "\"v1\""));
    let fake = FakeTelegram::start().await;
    let mut install = install(&server, &fake);
    install.env.clear();

    let run = install.run(&["run", "--once"]);
    run.expect_code(0);
    assert!(run.stderr().contains("no Telegram token"), "{}", run.stderr());
    let out = run.stdout();
    for title in RELEVANT {
        assert!(out.contains(title), "{title} not printed:\n{out}");
    }
    assert!(!out.contains(IRRELEVANT[0]));
    assert_eq!(fake.requests().len(), 0);
    // Delivered to the console: a digest now prints nothing again.
    let again = install.run(&["digest"]);
    again.expect_code(0);
    assert!(!again.stdout().contains(RELEVANT[0]), "{}", again.stdout());

    // Configuring the token later still delivers everything to Telegram.
    install
        .env
        .push(("CSTOWATCH_TELEGRAM_TOKEN".into(), TOKEN.into()));
    install.run(&["digest"]).expect_code(0);
    let visible: String = fake.accepted().iter().map(|m| m.visible.clone()).collect();
    for title in RELEVANT {
        assert_eq!(visible.matches(title).count(), 1, "{title}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_token_exits_1_without_printing_it_and_keeps_items_pending() {
    let server = FeedServer::start();
    server.set("/feed", Route::feed(feed(&server), "\"v1\""));
    let fake = FakeTelegram::start().await;
    let install = install(&server, &fake);
    install.run(&["run", "--once", "--dry-run"]).expect_code(0);
    fake.fail_always(Some(Failure::Unauthorized));
    let run = install.run(&["digest"]);
    run.expect_code(1);
    assert!(
        run.stderr().contains("the Telegram token was rejected"),
        "{}",
        run.stderr()
    );
    assert_no_token(&run);

    fake.fail_always(None);
    install.run(&["digest"]).expect_code(0);
    assert_eq!(
        fake.accepted().iter().map(|m| m.links.len()).sum::<usize>(),
        RELEVANT.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_prints_and_records_nothing() {
    let server = FeedServer::start();
    server.set("/feed", Route::feed(feed(&server), "\"v1\""));
    let fake = FakeTelegram::start().await;
    let install = install(&server, &fake);
    install.run(&["run", "--once", "--dry-run"]).expect_code(0);
    let run = install.run(&["digest", "--dry-run"]);
    run.expect_code(0);
    assert!(run.stdout().contains(RELEVANT[0]), "{}", run.stdout());
    assert_eq!(fake.requests().len(), 0);
    assert_eq!(install.count("SELECT count(*) FROM deliveries"), 0);
    install.run(&["digest"]).expect_code(0);
    assert_eq!(
        fake.accepted().iter().map(|m| m.links.len()).sum::<usize>(),
        RELEVANT.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bot_removed_from_the_channel_keeps_items_pending_and_status_says_why() {
    let server = FeedServer::start();
    server.set("/feed", Route::feed(feed(&server), "\"v1\""));
    let fake = FakeTelegram::start().await;
    let install = install(&server, &fake);
    install.run(&["run", "--once", "--dry-run"]).expect_code(0);
    fake.forbid(CHANNEL);
    let run = install.run(&["digest"]);
    run.expect_code(1);
    assert!(run.stderr().contains("Forbidden"), "{}", run.stderr());
    assert_no_token(&run);
    let status = install.run(&["status"]).stdout();
    let line = status
        .lines()
        .find(|l| l.contains(CHANNEL))
        .unwrap_or_else(|| panic!("{status}"));
    assert_eq!(line.split_whitespace().nth(1), Some("3"), "{line}");
    assert!(line.contains("Forbidden"), "{line}");
    assert_eq!(install.count("SELECT count(*) FROM deliveries"), 0);
}

//! Operator alerts on the real binary: `cstowatch run` with periods of
//! seconds, feeds on the fixture server, and an admin chat on the fake Bot
//! API. A feed that fails for a while and comes back gives exactly one
//! "failing" and one "recovered" message; a feed that stops publishing gives
//! one "silent" message (and one "recovered" when it publishes again); a
//! destination answering 403 gives one "refused" message. Without an admin
//! chat the same lines go to the log, once, and to `status`.

mod support;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use support::cli::Install;
use support::fake_telegram::{Accepted, CHANNEL, FakeTelegram, GROUP, TOKEN};
use support::feed_server::{FeedServer, Route};

/// An RSS feed of `(guid, title, published)` items.
fn rss(server: &FeedServer, items: &[(&str, &str, Timestamp)]) -> String {
    let mut s = String::from("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>T</title>");
    for (guid, title, published) in items {
        s.push_str(&format!(
            "<item><title>{title}</title><link>{}</link><guid>{guid}</guid><pubDate>{}</pubDate>\
             <description>{title}.</description></item>",
            server.url(&format!("/a/{guid}")),
            published.strftime("%a, %d %b %Y %H:%M:%S +0000")
        ));
    }
    s.push_str("</channel></rss>");
    s
}

fn seconds_ago(s: i64) -> Timestamp {
    Timestamp::now() - SignedDuration::from_secs(s)
}

/// A config polling every second, with these `[telegram]` and `[alerts]` lines.
fn config(server: &FeedServer, telegram: &str, alerts: &str) -> String {
    format!(
        "[poll]\ninterval = \"1s\"\nmax_interval = \"1s\"\ntimeout = \"2s\"\n\
         [[feeds]]\nname = \"News\"\nurl = \"{}\"\n\
         [telegram]\n{telegram}\n[alerts]\n{alerts}\n\
         [digest]\nevery = \"2s\"\n[state]\npath = \"../state/cstowatch.db\"\n",
        server.url("/feed")
    )
}

fn with_token(config: &str) -> Install {
    let mut install = Install::new(config);
    install
        .env
        .push(("CSTOWATCH_TELEGRAM_TOKEN".into(), TOKEN.into()));
    install
}

/// `cstowatch run`, its log in a file of the install; killed when dropped.
struct Service {
    child: Child,
    log: std::path::PathBuf,
}

impl Service {
    fn start(install: &Install) -> Service {
        let log = install.dir.path().join("service.log");
        let child = install
            .command(&["run"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Service { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Messages the admin chat received.
fn admin_messages(fake: &FakeTelegram) -> Vec<Accepted> {
    fake.accepted().into_iter().filter(|m| m.chat == GROUP).collect()
}

fn count(messages: &[Accepted], word: &str) -> usize {
    messages.iter().filter(|m| m.visible.contains(word)).count()
}

/// Waits up to `limit` for `done`, checking every 100 ms.
async fn wait_until(limit: Duration, what: &str, service: &Service, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {limit:?}; log:\n{}",
            service.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits up to `limit` for a message to the admin chat containing `word`.
async fn wait_for_admin_message(fake: &FakeTelegram, service: &Service, word: &str, limit: Duration) {
    let what = format!("an admin message with {word:?}");
    wait_until(limit, &what, service, || count(&admin_messages(fake), word) > 0).await;
}

/// What a broken feed host answers.
fn unavailable() -> Route {
    Route::Status {
        code: 503,
        retry_after: None,
    }
}

fn assert_no_token(messages: &[Accepted], log: &str) {
    for text in messages.iter().map(|m| m.text.as_str()).chain([log]) {
        assert!(!text.contains(TOKEN), "the token leaked:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_feed_failing_for_a_while_gives_one_failing_and_one_recovered_message() {
    let server = FeedServer::start();
    let feed = rss(
        &server,
        &[("1", "Yerevan opens a new metro station", seconds_ago(30))],
    );
    server.set("/feed", Route::feed(feed.clone(), "\"v1\""));
    let fake = FakeTelegram::start().await;
    let install = with_token(&config(
        &server,
        &format!("api_url = \"{}\"\nadmin_chat = \"{GROUP}\"", fake.url),
        "failing_after = \"3s\"\nsilent_after = \"1h\"",
    ));
    let service = Service::start(&install);
    wait_until(Duration::from_secs(10), "first poll", &service, || {
        service.log().contains(" polled ")
    })
    .await;

    server.set("/feed", unavailable());
    wait_for_admin_message(&fake, &service, "failing:", Duration::from_secs(15)).await;
    let status = install.run(&["status"]);
    status.expect_code(0);
    assert!(
        status.stdout().contains("alert: failing: feed \"News\""),
        "{}",
        status.stdout()
    );

    server.set("/feed", Route::feed(feed, "\"v1\""));
    wait_for_admin_message(&fake, &service, "recovered:", Duration::from_secs(10)).await;
    // A few more cycles: nothing more is said.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let messages = admin_messages(&fake);
    assert_eq!(count(&messages, "failing:"), 1, "{messages:#?}");
    assert_eq!(count(&messages, "recovered:"), 1, "{messages:#?}");
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let failing = &messages[0].visible;
    assert!(
        failing.contains("\"News\"") && failing.contains("HTTP status 503"),
        "names the feed and its last error: {failing}"
    );
    assert!(
        messages[1].visible.contains("polls successfully again"),
        "{}",
        messages[1].visible
    );
    assert_eq!(messages[0].parse_mode.as_deref(), Some("HTML"));
    assert_no_token(&messages, &service.log());
    let status = install.run(&["status"]).stdout();
    assert!(!status.contains("alert:"), "recovered: no alert left\n{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_feed_that_stops_publishing_gives_one_silent_message() {
    let server = FeedServer::start();
    // Five items a second apart: the feed's usual gap is a second, so three
    // seconds of silence would do; the floor (silent_after) makes it four.
    let items: Vec<(String, Timestamp)> = (1..=5).map(|i| (i.to_string(), seconds_ago(6 - i))).collect();
    let listed: Vec<(&str, &str, Timestamp)> = items
        .iter()
        .map(|(guid, at)| (guid.as_str(), "Gyumri hosts a chess festival", *at))
        .collect();
    server.set("/feed", Route::feed(rss(&server, &listed), "\"v1\""));
    let fake = FakeTelegram::start().await;
    let install = with_token(&config(
        &server,
        &format!("api_url = \"{}\"\nadmin_chat = \"{GROUP}\"", fake.url),
        "failing_after = \"1h\"\nsilent_after = \"4s\"",
    ));
    let service = Service::start(&install);
    let started = Instant::now();
    wait_for_admin_message(&fake, &service, "silent:", Duration::from_secs(15)).await;
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "not before silent_after: {:?}",
        started.elapsed()
    );
    let message = admin_messages(&fake)[0].visible.clone();
    assert!(
        message.contains("\"News\"") && message.contains("no new item for"),
        "{message}"
    );

    // It publishes again.
    let mut listed = listed.clone();
    listed.push(("6", "Gyumri chess festival ends", Timestamp::now()));
    server.set("/feed", Route::feed(rss(&server, &listed), "\"v2\""));
    wait_for_admin_message(&fake, &service, "recovered:", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let messages = admin_messages(&fake);
    assert_eq!(count(&messages, "silent:"), 1, "{messages:#?}");
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(
        messages[1].visible.contains("has new items again"),
        "{messages:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_destination_refusing_messages_gives_one_admin_message() {
    let server = FeedServer::start();
    let feed = rss(
        &server,
        &[(
            "1",
            "CSTO foreign ministers meet in Minsk without Armenia",
            seconds_ago(60),
        )],
    );
    server.set("/feed", Route::feed(feed, "\"v1\""));
    let fake = FakeTelegram::start().await;
    fake.forbid(CHANNEL);
    let install = with_token(&config(
        &server,
        &format!(
            "api_url = \"{}\"\nchat = \"{CHANNEL}\"\nadmin_chat = \"{GROUP}\"",
            fake.url
        ),
        "",
    ));
    let service = Service::start(&install);
    wait_for_admin_message(&fake, &service, "refused:", Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let messages = admin_messages(&fake);
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let text = &messages[0].visible;
    assert!(
        text.contains(&format!("\"telegram:{CHANNEL}\"")) && text.contains("Forbidden"),
        "names the destination and Telegram's answer: {text}"
    );
    assert!(
        fake.accepted().iter().all(|m| m.chat != CHANNEL),
        "nothing reached the channel"
    );
    assert_no_token(&messages, &service.log());
    let status = install.run(&["status"]).stdout();
    assert!(
        status.contains(&format!("alert: refused: destination \"telegram:{CHANNEL}\"")),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn run_once_from_cron_tells_the_admin_chat_in_the_same_run() {
    let server = FeedServer::start();
    server.set("/feed", unavailable());
    let fake = FakeTelegram::start().await;
    let install = with_token(&config(
        &server,
        &format!("api_url = \"{}\"\nadmin_chat = \"{GROUP}\"", fake.url),
        "failing_after = \"1s\"",
    ));
    install.run(&["run", "--once"]).expect_code(0);
    assert!(
        admin_messages(&fake).is_empty(),
        "one failure is not a streak yet"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let run = install.run(&["run", "--once"]);
    run.expect_code(0);
    let messages = admin_messages(&fake);
    assert_eq!(count(&messages, "failing:"), 1, "{messages:#?}\n{}", run.stderr());
    install.run(&["run", "--once"]).expect_code(0);
    assert_eq!(admin_messages(&fake).len(), 1, "not again the same day");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_admin_chat_alerts_go_to_the_log_once_and_to_status() {
    let server = FeedServer::start();
    server.set("/feed", unavailable());
    // No token: nothing can be sent; the log and `status` are where the operator looks.
    let install = Install::new(&config(&server, "", "failing_after = \"2s\""));
    let service = Service::start(&install);
    let alert = "operator alert: failing: feed \"News\"";
    wait_until(Duration::from_secs(15), "the failing line", &service, || {
        service.log().contains(alert)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = service.log();
    assert_eq!(log.matches(alert).count(), 1, "once, not every cycle:\n{log}");
    let line = log.lines().find(|l| l.contains(alert)).unwrap();
    assert!(line.contains("WARN"), "{line}");
    let status = install.run(&["status"]).stdout();
    assert!(status.contains("alert: failing: feed \"News\""), "{status}");
    // The feed table above keeps its columns.
    let row = status.lines().find(|l| l.starts_with("News")).unwrap();
    assert_eq!(row.split_whitespace().nth(1), Some("http-503"), "{row}");
}

#[test]
fn check_locates_a_bad_admin_chat_and_alert_period() {
    let install = Install::new(
        "[telegram]\nchat = \"@cstowatch_test\"\nadmin_chat = \"ops\"\n[alerts]\nfailing_after = \"soon\"\n",
    );
    let check = install.run(&["check"]);
    check.expect_code(2);
    let out = check.stdout();
    assert!(out.contains("cstowatch.toml:5"), "{out}");
    let install = Install::new("[telegram]\nchat = \"@cstowatch_test\"\nadmin_chat = \"ops\"\n");
    let check = install.run(&["check"]);
    check.expect_code(2);
    let out = check.stdout();
    assert!(
        out.contains("cstowatch.toml:3") && out.contains("telegram.admin_chat"),
        "{out}"
    );
    let install = Install::new("[telegram]\nadmin_chat = -100777\n[alerts]\nsilent_after = \"3d\"\n");
    install.run(&["check"]).expect_code(0);
    // Allowed, but the operator is told who will read the alerts.
    let install = Install::new("[telegram]\nchat = \"@cstowatch_test\"\nadmin_chat = \"@cstowatch_test\"\n");
    let check = install.run(&["check"]);
    check.expect_code(0);
    assert!(
        check.stdout().contains("warning") && check.stdout().contains("telegram.admin_chat"),
        "{}",
        check.stdout()
    );
}

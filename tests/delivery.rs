//! Delivery through the library API against the fake Bot API over real HTTP,
//! with a real SQLite file: exactly once, restarts, outages, flood control,
//! hostile titles, splitting at Telegram's limits, token safety, 403s, dry
//! runs, alerts and the schedule.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cstowatch::config::{Config, Token};
use cstowatch::deliver::outbox::Pacing;
use cstowatch::deliver::{
    Deliverer, DeliveryError, DeliveryReport, DestinationStatus, Mode, destination_status,
};
use cstowatch::store::StoreHandle;
use cstowatch::store::notices::{NewNotice, NoticeKind};
use jiff::Timestamp;
use support::fake_telegram::{self, CHANNEL, Failure, FakeTelegram, GROUP, TOKEN};
use tempfile::TempDir;

/// A temp dir with a config and a state database.
struct Env {
    /// Kept so the directory lives as long as the test.
    _dir: TempDir,
    config: Config,
    /// The store as the service reaches it.
    store: StoreHandle,
    /// The test's own connection to the same file, to plant and inspect rows.
    db: Mutex<rusqlite::Connection>,
}

impl Env {
    fn new(telegram_section: &str, digest_section: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cstowatch.toml");
        let text = format!(
            "[state]\npath = \"state/cstowatch.db\"\n[telegram]\n{telegram_section}\n[digest]\n{digest_section}\n"
        );
        std::fs::write(&path, &text).unwrap();
        let config = Config::load(&path).unwrap();
        let store = StoreHandle::open(&config.state.path).unwrap();
        let db = Mutex::new(rusqlite::Connection::open(&config.state.path).unwrap());
        Env {
            _dir: dir,
            config,
            store,
            db,
        }
    }

    /// What `cstowatch status` shows of the destinations.
    async fn status(&self) -> Vec<DestinationStatus> {
        let config = self.config.clone();
        self.store
            .call(move |s| destination_status(s, &config))
            .await
            .unwrap()
    }

    /// One channel at the fake, digests at 09:00 and 21:00 in Yerevan.
    fn for_fake(fake: &FakeTelegram) -> Env {
        Env::new(
            &format!("api_url = \"{}\"\nchat = \"{CHANNEL}\"", fake.url),
            "timezone = \"Asia/Yerevan\"\nat = [\"09:00\", \"21:00\"]",
        )
    }

    fn add(&self, title: &str, published: Timestamp, tags: &[&str]) -> i64 {
        let n = self.count("SELECT count(*) FROM items");
        self.add_with_url(
            title,
            &format!("https://news.example/2026/11/item-{n}/"),
            published,
            tags,
        )
    }

    fn add_with_url(&self, title: &str, url: &str, published: Timestamp, tags: &[&str]) -> i64 {
        let db = self.db.lock().unwrap();
        db.execute(
            "INSERT INTO items (feed, title, url, published_at, first_seen_at, status, tags, relevant)
                 VALUES ('MassisPost', ?1, ?2, ?3, ?3, 'pending', ?4, 1)",
            rusqlite::params![
                title,
                url,
                published.as_second(),
                serde_json::to_string(tags).unwrap()
            ],
        )
        .unwrap();
        db.last_insert_rowid()
    }

    fn count(&self, sql: &str) -> i64 {
        self.db.lock().unwrap().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    fn deliverer(&self) -> Deliverer {
        self.deliverer_with(Some(Token::new(TOKEN)), fast_pacing())
    }

    /// A fresh deliverer (as after a restart) sending everything pending at `NOW`.
    async fn deliver_now(&self) -> DeliveryReport {
        self.deliverer()
            .deliver(&self.store, at(NOW), Mode::Force, false)
            .await
            .unwrap()
    }

    fn deliverer_with(&self, token: Option<Token>, pacing: Pacing) -> Deliverer {
        Deliverer::new(&self.config, token)
            .unwrap()
            .with_pacing(pacing)
            .with_output(Box::new(std::io::sink()))
    }

    async fn pending(&self, destination: &str) -> usize {
        let destination = destination.to_string();
        self.store
            .read(move |s| s.pending_items(&destination, &[]))
            .await
            .unwrap()
            .len()
    }
}

/// Telegram's rules, but quick: tests send many messages.
fn fast_pacing() -> Pacing {
    Pacing {
        min_gap: Duration::from_millis(10),
        per_minute: 10_000,
        ..Pacing::default()
    }
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const NOW: &str = "2026-11-23T05:00:00Z";
const DEST: &str = "telegram:@cstowatch_test";

/// Captures what the deliverer prints.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Links across all accepted messages, in the order sent.
fn links_sent(fake: &FakeTelegram) -> Vec<String> {
    fake.accepted().into_iter().flat_map(|m| m.links).collect()
}

fn item_url(n: usize) -> String {
    format!("https://news.example/2026/11/item-{n}/")
}

#[tokio::test]
async fn every_item_once_and_a_restart_sends_nothing_again() {
    let fake = FakeTelegram::start().await;
    let env = Env::for_fake(&fake);
    env.add(
        "CSTO drills in Tajikistan",
        at("2026-11-22T18:00:00Z"),
        &["csto", "tajikistan"],
    );
    env.add(
        "Border talks resume",
        at("2026-11-22T19:00:00Z"),
        &["armenia-azerbaijan", "border"],
    );
    env.add(
        "Pashinyan skips CSTO summit",
        at("2026-11-22T20:00:00Z"),
        &["csto", "armenia-azerbaijan", "pashinyan"],
    );

    let report = env.deliver_now().await;
    assert_eq!(report.items_delivered(), 3);
    assert_eq!(report.errors().count(), 0);
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 1);
    let message = &accepted[0];
    assert_eq!(message.parse_mode.as_deref(), Some("HTML"));
    assert!(message.link_preview_disabled);
    assert_eq!(links_sent(&fake), vec![item_url(0), item_url(2), item_url(1)]);
    assert!(
        message.visible.contains("#armenia_azerbaijan #pashinyan"),
        "{}",
        message.visible
    );
    assert_eq!(
        message.visible.matches("Pashinyan skips").count(),
        1,
        "an item with both tags shows once"
    );

    // The message id is recorded per item.
    let recorded = env.count(&format!(
        "SELECT count(*) FROM deliveries WHERE destination = '{DEST}' AND message_id = {}",
        message.message_id
    ));
    assert_eq!(recorded, 3);

    // A new process (new Deliverer, reopened database) sends nothing again.
    let reopened = Env {
        store: StoreHandle::open(&env.config.state.path).unwrap(),
        db: Mutex::new(rusqlite::Connection::open(&env.config.state.path).unwrap()),
        config: env.config.clone(),
        _dir: tempfile::tempdir().unwrap(),
    };
    let report = reopened
        .deliverer()
        .deliver(&reopened.store, at(NOW), Mode::Force, false)
        .await
        .unwrap();
    assert_eq!(report.messages_sent(), 0);
    assert_eq!(fake.requests().len(), 1, "not a single request more");

    // A new item goes out alone.
    reopened.add(
        "CSTO secretary visits Yerevan",
        at("2026-11-23T04:00:00Z"),
        &["csto"],
    );
    reopened
        .deliverer()
        .deliver(&reopened.store, at("2026-11-23T06:00:00Z"), Mode::Force, false)
        .await
        .unwrap();
    assert_eq!(links_sent(&fake).len(), 4);
    assert_eq!(fake.accepted()[1].links, vec![item_url(3)]);
}

#[tokio::test]
async fn nothing_pending_sends_nothing() {
    let fake = FakeTelegram::start().await;
    let env = Env::for_fake(&fake);
    let report = env.deliver_now().await;
    assert_eq!(report.messages_sent(), 0);
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn an_outage_mid_digest_then_recovery_delivers_everything_once_in_order() {
    let fake = FakeTelegram::start().await;
    let env = Env::for_fake(&fake);
    let start = at("2026-11-22T10:00:00Z");
    for i in 0..70 {
        let title = format!("Переговоры Армении и Азербайджана о делимитации границы, раунд {i} — Հայաստան");
        env.add(
            &title,
            start + Duration::from_secs(60 * i),
            &["armenia-azerbaijan", "border"],
        );
    }
    // The first message is accepted, the second meets a 502 (teloxide waits 10 s on it).
    fake.fail_next([Failure::Pass, Failure::ServerError(502)]);
    let deliverer = env.deliverer();
    let report = deliverer
        .deliver(&env.store, at(NOW), Mode::Force, false)
        .await
        .unwrap();
    let first = fake.accepted();
    assert_eq!(first.len(), 1);
    let delivered = first[0].links.len();
    assert!(delivered > 0 && delivered < 70);
    assert_eq!(report.items_delivered(), delivered);
    assert_eq!(env.pending(DEST).await, 70 - delivered);
    let (_, error) = report.errors().next().expect("the outage is reported");
    assert!(error.contains("Internal Server Error"), "{error}");
    let status = env.status().await;
    assert!(status[0].last_error.is_some());
    assert_eq!(status[0].pending, 70 - delivered);

    // A scheduled cycle right after backs off instead of hammering the API.
    let report = deliverer
        .deliver(&env.store, at("2026-11-23T05:00:05Z"), Mode::Scheduled, false)
        .await
        .unwrap();
    assert!(report.destinations[0].deferred_until.is_some());
    assert_eq!(fake.requests().len(), 2);

    // Recovery: the rest, in the original order, nothing twice.
    deliverer
        .deliver(&env.store, at("2026-11-23T05:10:00Z"), Mode::Force, false)
        .await
        .unwrap();
    let expected: Vec<String> = (0..70).map(item_url).collect();
    assert_eq!(links_sent(&fake), expected);
    assert_eq!(env.pending(DEST).await, 0);
    let status = env.status().await;
    assert_eq!(status[0].last_error, None, "success clears the error");
    assert_eq!(status[0].delivered, 70);
}

#[tokio::test]
async fn a_429_storm_delivers_everything_without_a_request_inside_a_penalty() {
    let fake = FakeTelegram::start().await;
    let env = Env::for_fake(&fake);
    let start = at("2026-11-22T10:00:00Z");
    for i in 0..70 {
        let title = format!(
            "ОДКБ: учения «Взаимодействие-2026», этап {i}: миротворческие силы отрабатывают \
             совместные действия на полигонах Таджикистана и Казахстана, Կոլեկտիվ անվտանգություն 🛡️"
        );
        env.add(&title, start + Duration::from_secs(60 * i), &["csto"]);
    }
    let storm = [
        Failure::TooManyRequests { retry_after: 1 },
        Failure::TooManyRequests { retry_after: 1 },
        Failure::Pass,
        Failure::TooManyRequests { retry_after: 2 },
        Failure::Pass,
        Failure::TooManyRequests { retry_after: 1 },
    ];
    fake.fail_next(storm);
    let report = env.deliver_now().await;
    assert_eq!(report.errors().count(), 0, "{report:?}");
    assert_eq!(report.items_delivered(), 70);
    assert_eq!(links_sent(&fake), (0..70).map(item_url).collect::<Vec<_>>());
    assert_eq!(fake.penalty_violations(), 0, "{:?}", fake.requests());
    let too_many = fake.requests().iter().filter(|r| r.status == 429).count();
    assert_eq!(too_many, 4);
}

#[tokio::test]
async fn a_long_flood_penalty_ends_the_cycle_and_is_still_honoured_next_cycle() {
    let fake = FakeTelegram::start().await;
    let env = Env::for_fake(&fake);
    env.add("CSTO council meets", at("2026-11-22T18:00:00Z"), &["csto"]);
    fake.fail_next([Failure::TooManyRequests { retry_after: 3600 }]);
    let deliverer = env.deliverer();
    let report = deliverer
        .deliver(&env.store, at(NOW), Mode::Force, false)
        .await
        .unwrap();
    let (_, error) = report.errors().next().unwrap();
    assert!(error.contains("retry after 3600"), "{error}");
    assert_eq!(env.pending(DEST).await, 1);
    // Even a forced cycle sends nothing while the penalty runs.
    let report = deliverer
        .deliver(&env.store, at(NOW), Mode::Force, false)
        .await
        .unwrap();
    assert!(report.errors().next().is_some());
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(fake.penalty_violations(), 0);
}

#[tokio::test]
async fn hostile_titles_are_all_accepted_and_shown_verbatim() {
    let fake = FakeTelegram::start().await;
    let env = Env::for_fake(&fake);
    let titles = [
        "<script>& \"x\"",
        "</a>",
        "<b>unclosed",
        "Tom & Jerry &amp; &lt;co&gt; &#60; &unknown;",
        "Ереван и Баку 🇦🇲🇦🇿 — «мир»",
        "Հայաստան-Ադրբեջան սահման 😀",
        "quote \" and 'apostrophe' > less <",
    ];
    let start = at("2026-11-22T10:00:00Z");
    for (i, title) in titles.iter().enumerate() {
        env.add(
            title,
            start + Duration::from_secs(60 * i as u64),
            &["armenia-azerbaijan"],
        );
    }
    let hostile_url = "https://news.example/a?q=\"><b>x</b>&y=1";
    env.add_with_url(
        "hostile link",
        hostile_url,
        start + Duration::from_secs(3600),
        &["csto", "<i>"],
    );
    let report = env.deliver_now().await;
    assert_eq!(report.errors().count(), 0, "{report:?}");
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 1);
    for title in titles {
        assert!(
            accepted[0].visible.contains(title),
            "{title:?} missing from {}",
            accepted[0].visible
        );
    }
    let expected_href = url::Url::parse(hostile_url).unwrap().to_string();
    assert!(
        accepted[0].links.contains(&expected_href),
        "{:?}",
        accepted[0].links
    );
    assert!(accepted[0].visible.contains("#i"), "a tag becomes a safe hashtag");
}

#[tokio::test]
async fn seventy_items_split_into_valid_messages_with_none_lost() {
    let fake = FakeTelegram::start().await;
    let env = Env::for_fake(&fake);
    let start = at("2026-11-22T10:00:00Z");
    for i in 0..70 {
        let tags: &[&str] = if i % 2 == 0 {
            &["csto", "russia", "collective-security"]
        } else {
            &["armenia-azerbaijan", "nagorno-karabakh", "border"]
        };
        let title = format!(
            "{i}: Совет коллективной безопасности ОДКБ обсудил ситуацию на армяно-азербайджанской границе \
             Հավաքական անվտանգության պայմանագրի կազմակերպություն 🇦🇲"
        );
        env.add(&title, start + Duration::from_secs(60 * i), tags);
    }
    let report = env.deliver_now().await;
    assert_eq!(report.errors().count(), 0);
    let accepted = fake.accepted();
    assert!(accepted.len() >= 4, "{} messages", accepted.len());
    let n = accepted.len();
    for (i, m) in accepted.iter().enumerate() {
        assert!(m.visible.chars().count() <= 4096);
        assert!(m.text.len() <= 32_768);
        assert!(m.visible.contains(&format!(" · {}/{n}", i + 1)), "{}", m.visible);
    }
    let mut links = links_sent(&fake);
    assert_eq!(links.len(), 70);
    links.sort();
    links.dedup();
    assert_eq!(links.len(), 70, "no item twice");
    assert_eq!(env.pending(DEST).await, 0);
    // CSTO group first, chronological inside it.
    let sent = links_sent(&fake);
    let expected: Vec<String> = (0..70)
        .step_by(2)
        .chain((1..70).step_by(2))
        .map(item_url)
        .collect();
    assert_eq!(sent, expected);
}

/// Adds items whose one-message digest is `target` characters as Telegram
/// counts them, tuning the last title through dry runs.
async fn digest_of_exactly(env: &Env, target: usize) {
    let start = at("2026-11-22T10:00:00Z");
    let pieces = ["Ереван ", "Երևան ", "😀", "ОДКБ ", "🇦🇲 ", "Ջ"];
    let mut ids = Vec::new();
    for i in 0..6 {
        let title: String = pieces
            .iter()
            .cycle()
            .skip(i)
            .take(120)
            .copied()
            .collect::<String>();
        let title: String = title.chars().take(450).collect();
        ids.push(env.add(
            &title,
            start + Duration::from_secs(60 * i as u64),
            &["csto", "russia"],
        ));
    }
    let measure = || async {
        let out = Captured::default();
        let deliverer = Deliverer::new(&env.config, Some(Token::new(TOKEN)))
            .unwrap()
            .with_output(Box::new(out.clone()));
        deliverer
            .deliver(&env.store, at(NOW), Mode::Force, true)
            .await
            .unwrap();
        let text = out.text();
        let messages: Vec<&str> = text.split("--- dry run: ").skip(1).collect();
        assert_eq!(messages.len(), 1, "tuning needs one message");
        let html = messages[0].split_once(" ---\n").unwrap().1.trim_end_matches('\n');
        fake_telegram::parse_html(html).unwrap().0.chars().count()
    };
    let length = measure().await;
    assert!(length < target, "{length}");
    // Spread the padding over the titles, keeping each under the title cap.
    let mut missing = target - length;
    for id in ids.iter().rev() {
        let db = env.db.lock().unwrap();
        let title: String = db
            .query_row("SELECT title FROM items WHERE id = ?1", [id], |r| r.get(0))
            .unwrap();
        let room = 950usize.saturating_sub(title.chars().count()).min(missing);
        let padding: String = "Ջ😀Ж".chars().cycle().take(room).collect();
        db.execute(
            "UPDATE items SET title = title || ?1 WHERE id = ?2",
            rusqlite::params![padding, id],
        )
        .unwrap();
        missing -= room;
    }
    assert_eq!(missing, 0);
    assert_eq!(measure().await, target);
}

#[tokio::test]
async fn a_digest_of_exactly_4096_characters_is_one_message() {
    let fake = FakeTelegram::start().await;
    let env = Env::for_fake(&fake);
    digest_of_exactly(&env, 4096).await;
    let report = env.deliver_now().await;
    assert_eq!(report.errors().count(), 0, "{report:?}");
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].visible.chars().count(), 4096);
    assert!(
        accepted[0].text.len() > 4096,
        "multi-byte text: bytes are not the limit"
    );
}

#[tokio::test]
async fn one_character_more_splits_into_two_valid_messages() {
    let fake = FakeTelegram::start().await;
    let env = Env::for_fake(&fake);
    digest_of_exactly(&env, 4096).await;
    {
        let db = env.db.lock().unwrap();
        db.execute(
            "UPDATE items SET title = title || 'Ա' WHERE id = (SELECT max(id) FROM items)",
            [],
        )
        .unwrap();
    }
    let report = env.deliver_now().await;
    assert_eq!(report.errors().count(), 0, "{report:?}");
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 2);
    assert_eq!(links_sent(&fake).len(), 6);
    assert!(accepted.iter().all(|m| m.visible.chars().count() <= 4096));
}

#[tokio::test]
async fn the_fake_refuses_what_telegram_refuses() {
    let too_long: String = "Ջ".repeat(4097);
    assert_eq!(
        fake_telegram::validate(&"Ջ".repeat(4096), Some("HTML"))
            .unwrap()
            .0
            .chars()
            .count(),
        4096
    );
    assert!(
        fake_telegram::validate(&too_long, Some("HTML"))
            .unwrap_err()
            .contains("too long")
    );
    let e = fake_telegram::validate("<p>x</p>", Some("HTML")).unwrap_err();
    assert!(
        e.starts_with("Bad Request: can't parse entities: Unsupported start tag \"p\""),
        "{e}"
    );
    assert!(fake_telegram::validate("<b>x", Some("HTML")).is_err());
    assert!(fake_telegram::validate("<b><i>x</b></i>", Some("HTML")).is_err());
    assert!(fake_telegram::validate("<a href=\"x\"y\">z</a>", Some("HTML")).is_err());
    let (visible, links) = fake_telegram::validate(
        "<a href=\"h?a=1&amp;b=&quot;\">&lt;&#65;&#x42;&nbsp;</a>",
        Some("HTML"),
    )
    .unwrap();
    assert_eq!(visible, "<AB&nbsp;");
    assert_eq!(links, vec!["h?a=1&b=\"".to_string()]);
    assert!(
        fake_telegram::validate(&"a".repeat(32_769), None)
            .unwrap_err()
            .contains("text is too long")
    );
}

#[tokio::test]
async fn a_rejected_token_stops_with_token_rejected_and_never_shows_it() {
    let fake = FakeTelegram::start().await;
    let env = Env::for_fake(&fake);
    env.add("CSTO drills", at("2026-11-22T18:00:00Z"), &["csto"]);
    let wrong = "5555555555:AAwrong-SECRET_value";
    let deliverer = env.deliverer_with(Some(Token::new(wrong)), fast_pacing());
    assert!(!format!("{deliverer:?}").contains(wrong));
    let error = deliverer
        .deliver(&env.store, at(NOW), Mode::Force, false)
        .await
        .unwrap_err();
    assert!(matches!(error, DeliveryError::TokenRejected));
    assert_eq!(error.to_string(), "the Telegram token was rejected");
    assert_eq!(env.pending(DEST).await, 1);
    let status = env.status().await;
    let recorded = status[0].last_error.clone().unwrap();
    assert!(
        recorded.contains("token was rejected") && !recorded.contains(wrong),
        "{recorded}"
    );
}

#[tokio::test]
async fn a_network_error_keeps_items_and_never_shows_the_token() {
    // A port nobody listens on: the connection is refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let env = Env::new(
        &format!("api_url = \"http://127.0.0.1:{port}/tg/\"\nchat = \"{CHANNEL}\""),
        "every = \"6h\"",
    );
    env.add("CSTO drills", at("2026-11-22T18:00:00Z"), &["csto"]);
    let report = env.deliver_now().await;
    let (_, error) = report.errors().next().expect("the failure is reported");
    assert!(!error.contains(TOKEN) && !error.contains("SECRET"), "{error}");
    assert!(error.contains("unreachable"), "{error}");
    let status = env.status().await;
    let recorded = status[0].last_error.clone().unwrap();
    assert!(
        !recorded.contains(TOKEN) && !recorded.contains("SECRET"),
        "{recorded}"
    );
    assert_eq!(status[0].pending, 1);
}

#[tokio::test]
async fn a_403_is_loud_keeps_items_pending_and_deletes_nothing() {
    let fake = FakeTelegram::start().await;
    let env = Env::for_fake(&fake);
    env.add("CSTO drills", at("2026-11-22T18:00:00Z"), &["csto"]);
    env.add(
        "Border incident",
        at("2026-11-22T19:00:00Z"),
        &["armenia-azerbaijan"],
    );
    fake.forbid(CHANNEL);
    let report = env.deliver_now().await;
    let (destination, error) = report.errors().next().unwrap();
    assert_eq!(destination, DEST);
    assert!(error.contains("Forbidden: bot is not a member"), "{error}");
    assert_eq!(env.pending(DEST).await, 2);
    assert_eq!(env.count("SELECT count(*) FROM items"), 2);
    assert_eq!(env.count("SELECT count(*) FROM destinations"), 1);
    let status = env.status().await;
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].pending, 2);
    assert!(status[0].last_error.as_deref().unwrap().contains("Forbidden"));
}

#[tokio::test]
async fn an_unparsable_message_is_resent_once_as_plain_text() {
    let fake = FakeTelegram::start().await;
    let env = Env::for_fake(&fake);
    env.add("CSTO <drills> & more", at("2026-11-22T18:00:00Z"), &["csto"]);
    fake.fail_next([Failure::BadRequest(
        "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0".into(),
    )]);
    let report = env.deliver_now().await;
    assert_eq!(report.errors().count(), 0);
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].parse_mode, None);
    assert!(
        accepted[0].text.contains("CSTO <drills> & more"),
        "{}",
        accepted[0].text
    );
    assert_eq!(env.pending(DEST).await, 0);
}

#[tokio::test]
async fn a_dry_run_prints_and_records_nothing() {
    let fake = FakeTelegram::start().await;
    let env = Env::for_fake(&fake);
    env.add("CSTO drills", at("2026-11-22T18:00:00Z"), &["csto"]);
    let out = Captured::default();
    let deliverer = Deliverer::new(&env.config, Some(Token::new(TOKEN)))
        .unwrap()
        .with_output(Box::new(out.clone()));
    let report = deliverer
        .deliver(&env.store, at(NOW), Mode::Force, true)
        .await
        .unwrap();
    assert_eq!(report.messages_sent(), 1);
    assert_eq!(
        report.destinations[0].items_pending, 1,
        "still owed after a dry run"
    );
    let printed = out.text();
    assert!(
        printed.starts_with(&format!("--- dry run: {DEST} · digest ---\n🗞 <b>Digest</b>")),
        "{printed}"
    );
    assert!(printed.contains(">CSTO drills</a>"), "{printed}");
    assert!(fake.requests().is_empty());
    assert_eq!(env.count("SELECT count(*) FROM deliveries"), 0);
    assert_eq!(env.count("SELECT count(*) FROM destinations"), 0);
}

#[tokio::test]
async fn without_a_token_the_console_gets_it_and_telegram_still_does_later() {
    let fake = FakeTelegram::start().await;
    let env = Env::for_fake(&fake);
    env.add("CSTO drills", at("2026-11-22T18:00:00Z"), &["csto"]);
    let out = Captured::default();
    let console = Deliverer::new(&env.config, None)
        .unwrap()
        .with_output(Box::new(out.clone()));
    assert_eq!(console.destination_ids(), vec!["console"]);
    console
        .deliver(&env.store, at(NOW), Mode::Force, false)
        .await
        .unwrap();
    assert!(
        out.text().starts_with("--- console · digest ---\n"),
        "{}",
        out.text()
    );
    assert_eq!(env.pending("console").await, 0);
    assert_eq!(env.pending(DEST).await, 1);
    // Printing again sends nothing new to the console.
    console
        .deliver(&env.store, at(NOW), Mode::Force, false)
        .await
        .unwrap();
    assert_eq!(out.text().matches("--- console").count(), 1);

    env.deliverer()
        .deliver(&env.store, at(NOW), Mode::Force, false)
        .await
        .unwrap();
    assert_eq!(fake.accepted().len(), 1);
    let status = env.status().await;
    let ids: Vec<_> = status
        .iter()
        .map(|s| (s.destination.as_str(), s.pending, s.delivered))
        .collect();
    assert_eq!(ids, vec![(DEST, 0, 1), ("console", 0, 1)]);
}

#[tokio::test]
async fn scheduled_digests_wait_for_their_slot_and_alerts_do_not() {
    let fake = FakeTelegram::start().await;
    let env = Env::new(
        &format!("api_url = \"{}\"\nchat = \"{CHANNEL}\"", fake.url),
        "timezone = \"Asia/Yerevan\"\nat = [\"09:00\", \"21:00\"]\nalert_tags = [\"clash\"]",
    );
    env.add("CSTO drills", at("2026-11-22T18:00:00Z"), &["csto"]);
    env.add(
        "Shooting on the border",
        at("2026-11-23T05:30:00Z"),
        &["armenia-azerbaijan", "clash"],
    );
    let deliverer = env.deliverer();
    // 10:00 in Yerevan, first run: the alert goes now, and so does a first
    // digest (the destination never had one); the next digest waits for 21:00.
    let ten = at("2026-11-23T06:00:00Z");
    let report = deliverer
        .deliver(&env.store, ten, Mode::Scheduled, false)
        .await
        .unwrap();
    assert!(report.destinations[0].digest_due);
    assert_eq!(report.destinations[0].alerts_sent, 1);
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 2);
    assert!(
        accepted[0].visible.starts_with("🚨 Alert · Armenia–Azerbaijan"),
        "{}",
        accepted[0].visible
    );
    assert!(accepted[1].visible.contains("CSTO drills"));
    assert!(
        !accepted[1].visible.contains("Shooting"),
        "an alert is not repeated in the digest"
    );
    // The first digest's period runs from its oldest item.
    assert!(
        accepted[1]
            .visible
            .contains("22 Nov 22:00 – 23 Nov 10:00 (Asia/Yerevan)"),
        "{}",
        accepted[1].visible
    );
    let next = deliverer.next_digest_at(&env.store, ten).await;
    assert_eq!(next, at("2026-11-23T17:00:00Z"));

    env.add("CSTO council meets", at("2026-11-23T10:00:00Z"), &["csto"]);
    let report = deliverer
        .deliver(&env.store, at("2026-11-23T16:59:00Z"), Mode::Scheduled, false)
        .await
        .unwrap();
    assert_eq!(report.messages_sent(), 0, "not due before the slot");
    let report = deliverer
        .deliver(&env.store, next, Mode::Scheduled, false)
        .await
        .unwrap();
    assert!(report.destinations[0].digest_due);
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 3);
    assert!(accepted[2].visible.contains("CSTO council meets"));
    assert!(!accepted[2].visible.contains("CSTO drills"));
    let after = deliverer.next_digest_at(&env.store, next).await;
    assert_eq!(after, at("2026-11-24T05:00:00Z"));
}

#[tokio::test]
async fn each_chat_gets_what_its_tag_filter_asks_for() {
    let fake = FakeTelegram::start().await;
    let env = Env::new(
        &format!(
            "api_url = \"{}\"\nchat = \"{CHANNEL}\"\n[[telegram.chats]]\nchat = {GROUP}\ntags = [\"csto\"]",
            fake.url
        ),
        "every = \"6h\"",
    );
    env.add("CSTO drills", at("2026-11-22T18:00:00Z"), &["csto"]);
    env.add(
        "Border incident",
        at("2026-11-22T19:00:00Z"),
        &["armenia-azerbaijan"],
    );
    env.deliverer()
        .deliver(&env.store, at(NOW), Mode::Force, false)
        .await
        .unwrap();
    let accepted = fake.accepted();
    let to_group: Vec<_> = accepted.iter().filter(|m| m.chat == GROUP).collect();
    let to_channel: Vec<_> = accepted.iter().filter(|m| m.chat == CHANNEL).collect();
    assert_eq!(to_channel[0].links.len(), 2);
    assert_eq!(to_group.len(), 1);
    assert_eq!(to_group[0].links, vec![item_url(0)]);
}

#[tokio::test]
async fn default_pacing_keeps_a_second_between_messages_to_a_chat() {
    let fake = FakeTelegram::start().await;
    let env = Env::new(
        &format!("api_url = \"{}\"\nchat = \"{CHANNEL}\"", fake.url),
        "every = \"6h\"\nalert_tags = [\"clash\"]",
    );
    for i in 0..3 {
        env.add(
            &format!("Clash {i}"),
            at("2026-11-22T18:00:00Z"),
            &["armenia-azerbaijan", "clash"],
        );
    }
    let deliverer = env.deliverer_with(Some(Token::new(TOKEN)), Pacing::default());
    deliverer
        .deliver(&env.store, at(NOW), Mode::Scheduled, false)
        .await
        .unwrap();
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 3);
    for pair in accepted.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= Duration::from_millis(990), "{gap:?}");
    }
}

#[tokio::test]
async fn a_digest_of_the_seed_articles_as_sent() {
    let fake = FakeTelegram::start().await;
    // A Bot API under a path, written with a trailing slash (GOTCHAS.md).
    let env = Env::new(
        &format!("api_url = \"{}/tg/\"\nchat = \"{CHANNEL}\"", fake.url),
        "timezone = \"Asia/Yerevan\"\nat = [\"09:00\", \"21:00\"]",
    );
    let seeds: [(&str, &str, &str, &str, &[&str]); 6] = [
        (
            "Union of Informed Citizens",
            "CSTO Does Not Exist?",
            "https://uic.am/en/csto-does-not-exist/",
            "2026-11-22T17:40:00Z",
            &["csto", "armenia-azerbaijan", "tavush", "border"],
        ),
        (
            "EVN Report",
            "CSTO Failing At Its One Job",
            "https://evnreport.com/politics/csto-failing-at-its-one-job/",
            "2026-11-22T19:05:00Z",
            &["csto", "armenia-azerbaijan", "collective-security"],
        ),
        (
            "commonspace.eu",
            "Opinion: \"Member states are pulling the CSTO in different directions\"",
            "https://www.commonspace.eu/opinion/member-states-are-pulling-csto-different-directions",
            "2026-11-22T21:30:00Z",
            &["csto", "summit", "yerevan"],
        ),
        (
            "MassisPost",
            "CSTO’s Delayed Moves",
            "https://massispost.com/2026/11/cstos-delayed-moves/",
            "2026-11-23T01:15:00Z",
            &["csto", "pashinyan"],
        ),
        (
            "Jamestown Foundation",
            "How Credible Is the CSTO Secretary General’s Warning Against Azerbaijan?",
            "https://jamestown.org/program/how-credible-is-the-csto-secretary-generals-warning-against-azerbaijan/",
            "2026-11-23T03:50:00Z",
            &["csto", "armenia-azerbaijan", "khachaturov"],
        ),
        (
            "MassisPost",
            "PM Niko Pashinyan: If Border Delimitation Process is Stopped, War Will Break Out",
            "https://massispost.com/2026/11/pm-pashinyan-if-border-delimitation-process-is-stopped-war-will-break-out/",
            "2026-11-23T04:20:00Z",
            &["armenia-azerbaijan", "pashinyan", "delimitation"],
        ),
    ];
    for (feed, title, url, published, tags) in seeds {
        let id = env.add_with_url(title, url, at(published), tags);
        env.db
            .lock()
            .unwrap()
            .execute(
                "UPDATE items SET feed = ?1 WHERE id = ?2",
                rusqlite::params![feed, id],
            )
            .unwrap();
    }
    {
        // The previous digest went out at 21:00 Yerevan time.
        env.store
            .call(|s| s.set_last_digest_at(DEST, at("2026-11-22T17:00:00Z")))
            .await
            .unwrap();
    }
    let report = env
        .deliverer()
        .deliver(&env.store, at(NOW), Mode::Scheduled, false)
        .await
        .unwrap();
    assert!(report.destinations[0].digest_due, "09:00 Yerevan is a slot");
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 1);
    assert!(
        fake.requests()[0].path.starts_with("tg/bot"),
        "{}",
        fake.requests()[0].path
    );
    let expected = "🗞 Digest · 22 Nov 21:00 – 23 Nov 09:00 (Asia/Yerevan)

CSTO

• CSTO Does Not Exist?
Union of Informed Citizens · 22 Nov 21:40 · #armenia_azerbaijan #tavush #border

• CSTO Failing At Its One Job
EVN Report · 22 Nov 23:05 · #armenia_azerbaijan #collective_security

• Opinion: \"Member states are pulling the CSTO in different directions\"
commonspace.eu · 23 Nov 01:30 · #summit #yerevan

• CSTO’s Delayed Moves
MassisPost · 23 Nov 05:15 · #pashinyan

• How Credible Is the CSTO Secretary General’s Warning Against Azerbaijan?
Jamestown Foundation · 23 Nov 07:50 · #armenia_azerbaijan #khachaturov

Armenia–Azerbaijan

• PM Niko Pashinyan: If Border Delimitation Process is Stopped, War Will Break Out
MassisPost · 23 Nov 08:20 · #pashinyan #delimitation";
    assert_eq!(accepted[0].visible, expected);
    assert_eq!(accepted[0].links.len(), 6);
}

#[tokio::test]
async fn an_unknown_chat_is_reported_and_items_stay_pending() {
    let fake = FakeTelegram::start().await;
    let env = Env::new(
        &format!("api_url = \"{}\"\nchat = \"@no_such_channel\"", fake.url),
        "every = \"6h\"",
    );
    env.add("CSTO drills", at("2026-11-22T18:00:00Z"), &["csto"]);
    let report = env.deliver_now().await;
    let (destination, error) = report.errors().next().unwrap();
    assert_eq!(destination, "telegram:@no_such_channel");
    assert!(error.contains("chat not found"), "{error}");
    assert_eq!(env.pending("telegram:@no_such_channel").await, 1);
    let status = env.status().await;
    assert!(
        status[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("chat not found")
    );
}

/// Queues a notice for `destination` through the store, as a producer does.
async fn queue_notice(env: &Env, destination: &str, key: &str, html: &str, photo: Option<Vec<u8>>) -> bool {
    let notice = NewNotice {
        destination: destination.to_string(),
        kind: if photo.is_some() {
            NoticeKind::WeeklyReport
        } else {
            NoticeKind::OperatorAlert
        },
        key: key.to_string(),
        html: html.to_string(),
        photo,
    };
    env.store
        .call(move |s| s.queue_notice(&notice, at(NOW)))
        .await
        .unwrap()
}

#[tokio::test]
async fn notices_go_first_exactly_once_and_survive_a_refusal() {
    let fake = FakeTelegram::start().await;
    let env = Env::for_fake(&fake);
    env.add("CSTO drills", at("2026-11-22T18:00:00Z"), &["csto"]);
    assert!(queue_notice(&env, DEST, "failing:A:2026-11-23", "⚠️ <b>A</b> is failing", None).await);
    assert!(
        !queue_notice(&env, DEST, "failing:A:2026-11-23", "⚠️ <b>A</b> is failing", None).await,
        "the same key is queued once"
    );

    // Refused: the notice stays owed, like the items.
    fake.forbid(CHANNEL);
    let report = env.deliver_now().await;
    assert_eq!(report.destinations[0].notices_pending, 1);
    assert_eq!(report.destinations[0].notices_sent, 0);
    assert!(fake.accepted().is_empty());

    // Accepted by a fresh deliverer: the notice first, then the digest.
    let fake = FakeTelegram::start().await;
    let env = Env {
        config: {
            let mut config = env.config.clone();
            config.telegram.api_url = fake.url.parse().unwrap();
            config
        },
        ..env
    };
    let report = env.deliver_now().await;
    assert_eq!(report.destinations[0].notices_sent, 1);
    assert_eq!(report.destinations[0].notices_pending, 0);
    assert_eq!(report.messages_sent(), 2);
    assert!(
        report.to_string().contains("1 notice(s) sent, 0 owed"),
        "{report}"
    );
    let accepted = fake.accepted();
    assert_eq!(accepted[0].visible, "⚠️ A is failing");
    assert!(
        accepted[1].visible.starts_with("🗞 Digest"),
        "{}",
        accepted[1].visible
    );
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM notices WHERE sent_at IS NOT NULL AND message_id = {}",
            accepted[0].message_id
        )),
        1
    );

    // Sent once: a new cycle sends nothing, and queueing it again does nothing.
    assert!(!queue_notice(&env, DEST, "failing:A:2026-11-23", "again", None).await);
    assert_eq!(env.deliver_now().await.messages_sent(), 0);
    assert_eq!(fake.accepted().len(), 2);
}

#[tokio::test]
async fn a_photo_notice_shows_its_caption_and_size_on_the_console() {
    let fake = FakeTelegram::start().await;
    let env = Env::for_fake(&fake);
    // A PNG's signature and IHDR chunk are all the console reads.
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend_from_slice(&1280u32.to_be_bytes());
    png.extend_from_slice(&720u32.to_be_bytes());
    png.resize(3000, 0);
    queue_notice(&env, "console", "report:2026-W48", "📈 <b>Week 48</b>", Some(png)).await;
    let out = Captured::default();
    let console = Deliverer::new(&env.config, None)
        .unwrap()
        .with_output(Box::new(out.clone()));
    let dry = console
        .deliver(&env.store, at(NOW), Mode::Force, true)
        .await
        .unwrap();
    assert_eq!(dry.destinations[0].notices_sent, 1);
    assert_eq!(
        dry.destinations[0].notices_pending, 1,
        "a dry run records nothing"
    );
    console
        .deliver(&env.store, at(NOW), Mode::Force, false)
        .await
        .unwrap();
    assert_eq!(
        out.text(),
        "--- dry run: console · weekly-report ---\n[photo: 1280×720 PNG, 3 KB]\n📈 <b>Week 48</b>\n\n\
         --- console · weekly-report ---\n[photo: 1280×720 PNG, 3 KB]\n📈 <b>Week 48</b>\n\n"
    );
    let again = console
        .deliver(&env.store, at(NOW), Mode::Force, false)
        .await
        .unwrap();
    assert_eq!(again.messages_sent(), 0);
}

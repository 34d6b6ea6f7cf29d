//! Crash safety on the real binary: `cstowatch run` against the fixture feed
//! server and the fake Bot API, killed with SIGKILL at seeded random moments
//! (mid-poll, around a send, anywhere else) and restarted each time, while its
//! feeds keep gaining items. A relay in front of the fake holds Telegram's
//! answers back in some lives, so kills also land after Telegram accepted a
//! message and before the service heard of it.
//!
//! At the end every relevant item the feeds served must have reached the
//! channel, each once inside a message (as one entry per story), and every copy beyond the first
//! must be accounted for: the database records which accepted message
//! delivered each item, and a message it did not record must be the last one
//! of a killed life — at most one per kill.
//!
//! The seed is printed; `CRASH_SEED=<n> cargo test --test crash` replays the
//! same kill plan (the timing of the service itself still varies).

mod support;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::response::IntoResponse;
use std::time::{Duration, Instant};

use support::cli::Install;
use support::fake_telegram::{self, Accepted, CHANNEL, FakeTelegram};
use support::feed_server::{FeedServer, Route};

const DEFAULT_SEED: u64 = 0x00C5_70DE_AD11_4E5D;
const KILLS: usize = 24;
const FEEDS: [&str; 2] = ["alpha", "beta"];
/// How often the feeds gain an item.
const NEW_ITEM_EVERY: Duration = Duration::from_millis(150);

/// SplitMix64: small, deterministic, good enough to scatter kill moments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What item `n` is about, which decides its title and its digest group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Shown in the "CSTO" group, which comes first.
    Csto,
    /// Shown in the "Armenia–Azerbaijan" group.
    ArmeniaAzerbaijan,
    /// Off topic: never delivered.
    Irrelevant,
}

fn kind(n: usize) -> Kind {
    if n % 5 == 4 {
        Kind::Irrelevant
    } else if n.is_multiple_of(3) {
        Kind::Csto
    } else {
        Kind::ArmeniaAzerbaijan
    }
}

/// Titles the shipped rules tag (checked with `cstowatch tag`): the CSTO one
/// only `csto`, the clash only `armenia-azerbaijan`, the weather nothing.
fn title(n: usize) -> String {
    // Every fourth item is long, so digests also get split into several
    // messages and kills land between the parts of one digest.
    let tail = if n % 4 == 3 {
        " — the delegations met again in the afternoon and agreed to continue the talks next week".repeat(9)
    } else {
        String::new()
    };
    let head = match kind(n) {
        Kind::Csto => format!("CSTO summit opens in Minsk without Armenia, session {n}"),
        Kind::ArmeniaAzerbaijan => format!("Azerbaijani forces fire on Armenian positions near Tegh {n}"),
        Kind::Irrelevant => format!("Weather in Paris stays mild, report {n}"),
    };
    head + &tail
}

/// The feeds' items so far, and which feed each went to.
struct Feeds {
    server: FeedServer,
    /// Publication dates run from here, one second per item, so item order is date order.
    base: jiff::Timestamp,
    added: Mutex<usize>,
}

impl Feeds {
    /// Feeds on a fresh server, already holding `backlog` items dated
    /// from forty minutes ago.
    fn with_backlog(backlog: usize) -> Feeds {
        let feeds = Feeds {
            server: FeedServer::start(),
            base: jiff::Timestamp::now() - jiff::SignedDuration::from_mins(40),
            added: Mutex::new(0),
        };
        for _ in 0..backlog {
            feeds.add_one();
        }
        feeds
    }

    fn feed_of(n: usize) -> &'static str {
        FEEDS[n % FEEDS.len()]
    }

    fn link(&self, n: usize) -> String {
        self.server.url(&format!("/{}/item/n{n}", Self::feed_of(n)))
    }

    /// The item number behind a delivered link, if it is one of ours.
    fn number_of(&self, link: &str) -> Option<usize> {
        let rest = link.strip_prefix(&self.server.url("/"))?;
        let (_, number) = rest.rsplit_once("/item/n")?;
        number.parse().ok()
    }

    /// Serves every feed with all of its items so far, newest first, under a new ETag.
    fn publish(&self, count: usize) {
        for feed in FEEDS {
            let mut rss =
                String::from("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>T</title>");
            for n in (0..count).rev().filter(|&n| Self::feed_of(n) == feed) {
                let published = self.base + jiff::SignedDuration::from_secs(n as i64);
                rss.push_str(&format!(
                    "<item><title>{}</title><link>{}</link><guid isPermaLink=\"false\">{feed}-{n}</guid>\
                     <pubDate>{}</pubDate></item>",
                    title(n),
                    self.link(n),
                    published.strftime("%a, %d %b %Y %H:%M:%S +0000")
                ));
            }
            rss.push_str("</channel></rss>");
            self.server.set(
                &format!("/{feed}/feed"),
                Route::feed(rss, &format!("\"{count}\"")),
            );
        }
    }

    /// Adds the next item to its feed.
    fn add_one(&self) {
        let mut added = self.added.lock().unwrap();
        *added += 1;
        self.publish(*added);
    }

    fn added(&self) -> usize {
        *self.added.lock().unwrap()
    }

    fn feed_requests(&self) -> usize {
        self.server.all_requests().len()
    }
}

/// A relay between the binary and the fake Bot API that holds each answer
/// back for a while after the fake has accepted the message: a slow network
/// on the way back. It widens the window in which a kill leaves a message
/// accepted by Telegram but not recorded, so the duplicate path really runs.
struct SlowReplies {
    url: String,
    state: Arc<RelayState>,
}

struct RelayState {
    upstream: String,
    client: reqwest::Client,
    /// Milliseconds each answer is held back; the test changes it per life.
    delay_ms: AtomicU64,
    /// Requests received and not yet answered by the fake.
    forwarding: AtomicU64,
}

impl SlowReplies {
    async fn start(upstream: &str) -> SlowReplies {
        let state = Arc::new(RelayState {
            upstream: upstream.to_string(),
            client: reqwest::Client::new(),
            delay_ms: AtomicU64::new(0),
            forwarding: AtomicU64::new(0),
        });
        let app = axum::Router::new().fallback(relay).with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        SlowReplies { url, state }
    }

    fn hold_answers(&self, delay_ms: u64) {
        self.state.delay_ms.store(delay_ms, Ordering::Relaxed);
    }

    /// Whether a request from a killed life might still reach the fake.
    fn idle(&self) -> bool {
        self.state.forwarding.load(Ordering::SeqCst) == 0
    }
}

async fn relay(
    axum::extract::State(state): axum::extract::State<Arc<RelayState>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let answer = {
        // A guard, not a decrement after the await: when the sender is
        // killed mid-request, the server drops this handler at that await,
        // and a count left behind would read as a request still in flight.
        let _forwarding = Forwarding::new(&state.forwarding);
        forward(&state, request).await
    };
    match answer {
        Ok((status, body)) => {
            tokio::time::sleep(Duration::from_millis(state.delay_ms.load(Ordering::Relaxed))).await;
            (status, [("content-type", "application/json")], body).into_response()
        }
        // The sender died mid-request, or the fake is gone.
        Err(e) => (axum::http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// Counts a request as being forwarded for as long as it lives.
struct Forwarding<'a>(&'a AtomicU64);

impl<'a> Forwarding<'a> {
    fn new(count: &'a AtomicU64) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Forwarding(count)
    }
}

impl Drop for Forwarding<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn forward(
    state: &RelayState,
    request: axum::extract::Request,
) -> anyhow::Result<(axum::http::StatusCode, axum::body::Bytes)> {
    let path = request.uri().path().to_string();
    let content_type = request.headers().get("content-type").cloned();
    let body = axum::body::to_bytes(request.into_body(), 1 << 20).await?;
    let mut upstream = state.client.post(format!("{}{path}", state.upstream)).body(body);
    if let Some(ct) = content_type {
        upstream = upstream.header("content-type", ct);
    }
    let answer = upstream.send().await?;
    let status = axum::http::StatusCode::from_u16(answer.status().as_u16())?;
    Ok((status, answer.bytes().await?))
}

/// An install of the service with [`config`] and the fake Telegram's token.
fn install_with_token(feeds: &Feeds, telegram_url: &str, polled: &[&str]) -> Install {
    let mut install = Install::new(&config(feeds, telegram_url, polled));
    install
        .env
        .push(("CSTOWATCH_TELEGRAM_TOKEN".into(), fake_telegram::TOKEN.into()));
    install
}

/// The service's configuration, polling the feeds named in `polled`.
fn config(feeds: &Feeds, api_url: &str, polled: &[&str]) -> String {
    let mut c = format!(
        "[poll]\ninterval = \"1s\"\ntimeout = \"2s\"\n\
         [digest]\nevery = \"1s\"\n\
         [telegram]\napi_url = \"{api_url}\"\nchat = \"{CHANNEL}\"\n\
         [state]\npath = \"../state/cstowatch.db\"\n"
    );
    for feed in polled {
        c.push_str(&format!(
            "[[feeds]]\nname = \"{feed}\"\nurl = \"{}\"\n",
            feeds.server.url(&format!("/{feed}/feed"))
        ));
    }
    c
}

/// One life of the service; killed when dropped, so a failing test leaves no process behind.
struct Life {
    child: Child,
    log: std::path::PathBuf,
}

impl Life {
    fn start(install: &Install, number: usize) -> Life {
        let log = install.dir.path().join(format!("run-{number:02}.log"));
        let stderr = File::create(&log).unwrap();
        let child = install
            .command(&["run"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap();
        Life { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL; panics if the process had already ended on its own.
    fn kill_nine(mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("the service exited on its own ({status}); log:\n{}", self.log());
        }
        self.child.kill().unwrap(); // SIGKILL on Unix
        self.child.wait().unwrap();
    }

    /// SIGTERM, then asserts a clean exit (code 0) within 10 s.
    async fn terminate(&mut self) {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let child = &mut self.child;
        let stopped = wait_until(Duration::from_secs(10), || child.try_wait().unwrap().is_some()).await;
        assert!(stopped, "no exit within 10 s of SIGTERM; log:\n{}", self.log());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}; log:\n{}", self.log());
    }
}

impl Drop for Life {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (polling, never longer than `limit`) until `done` holds; returns whether it did.
async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    done()
}

/// Where a kill was aimed.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// Anywhere: a random delay after the start.
    Anytime,
    /// Just after the fake accepted a message: inside or near the window
    /// before the delivery is committed.
    AfterSend,
    /// Just after a feed answered: while the poll is parsed, tagged and stored.
    DuringPoll,
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_moments_loses_nothing_and_repeats_at_most_one_message_per_kill() {
    let started = Instant::now();
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(DEFAULT_SEED);
    println!("crash test seed: {seed} (replay with CRASH_SEED={seed})");
    let mut rng = Rng(seed);

    let fake = FakeTelegram::start().await;
    let slow = SlowReplies::start(&fake.url).await;
    // A backlog to begin with: the first digests are split into several parts.
    let feeds = Arc::new(Feeds::with_backlog(40));
    let install = install_with_token(&feeds, &slow.url, &FEEDS);

    // The feeds keep gaining items for as long as the kills go on.
    let adding = Arc::new(AtomicBool::new(true));
    let adder = {
        let feeds = Arc::clone(&feeds);
        let adding = Arc::clone(&adding);
        std::thread::spawn(move || {
            while adding.load(Ordering::Relaxed) {
                std::thread::sleep(NEW_ITEM_EVERY);
                feeds.add_one();
            }
        })
    };

    // Index in the fake's log of the first message each life could send.
    let mut first_message_of_life: HashSet<usize> = HashSet::new();
    let mut moments: std::collections::BTreeMap<String, usize> = Default::default();
    for kill in 0..KILLS {
        // Half the lives hear Telegram's answers late.
        let reply_delay = if rng.below(2) == 0 { 0 } else { 50 + rng.below(250) };
        slow.hold_answers(reply_delay);
        // Whatever the killed life had already handed over has reached the fake.
        assert!(wait_until(Duration::from_secs(5), || slow.idle()).await);
        first_message_of_life.insert(fake.accepted().len());
        let life = Life::start(&install, kill);
        let moment = match rng.below(3) {
            0 => Moment::Anytime,
            1 => Moment::AfterSend,
            _ => Moment::DuringPoll,
        };
        // Whether the awaited send or poll came before the kill (else it is an `Anytime` kill).
        let mut aimed = true;
        match moment {
            Moment::Anytime => {
                tokio::time::sleep(Duration::from_millis(rng.below(1500))).await;
            }
            Moment::AfterSend => {
                let before = fake.accepted().len();
                aimed = wait_until(Duration::from_secs(4), || fake.accepted().len() > before).await;
                // Inside the held-back answer, or just after it (around the commit).
                let after = rng.below((reply_delay + 4) * 1000);
                tokio::time::sleep(Duration::from_micros(after)).await;
            }
            Moment::DuringPoll => {
                let before = feeds.feed_requests();
                aimed = wait_until(Duration::from_secs(4), || feeds.feed_requests() > before).await;
                tokio::time::sleep(Duration::from_micros(rng.below(30_000))).await;
            }
        }
        let label = if aimed {
            format!("{moment:?}")
        } else {
            format!("{moment:?} (missed)")
        };
        *moments.entry(label).or_default() += 1;
        life.kill_nine();
    }
    adding.store(false, Ordering::Relaxed);
    adder.join().unwrap();
    let served = feeds.added();
    let expected: HashSet<usize> = (0..served).filter(|&n| kind(n) != Kind::Irrelevant).collect();

    // A last life, left alone until the channel has everything, then stopped cleanly.
    slow.hold_answers(0);
    assert!(wait_until(Duration::from_secs(5), || slow.idle()).await);
    first_message_of_life.insert(fake.accepted().len());
    let mut last = Life::start(&install, KILLS);
    let delivered_all = |accepted: &[Accepted]| {
        let seen: HashSet<usize> = accepted
            .iter()
            .flat_map(|m| m.links.iter().filter_map(|l| feeds.number_of(l)))
            .collect();
        expected.is_subset(&seen)
    };
    let complete = wait_until(Duration::from_secs(20), || delivered_all(&fake.accepted())).await;
    let final_log = last.log();
    last.terminate().await;

    // Every life's log: no panic, ever.
    for life in 0..=KILLS {
        let log = std::fs::read_to_string(install.dir.path().join(format!("run-{life:02}.log"))).unwrap();
        assert!(!log.contains("panicked"), "life {life} panicked:\n{log}");
    }

    let messages: Vec<Accepted> = fake
        .accepted()
        .into_iter()
        .filter(|m| m.chat == CHANNEL)
        .collect();
    let mut first_seen: HashSet<usize> = HashSet::new();
    let mut occurrences: HashMap<usize, usize> = HashMap::new();
    // Parts of split digests: their first line ends in "· k/n".
    let split_parts = messages
        .iter()
        .filter(|m| {
            let header = m.visible.lines().next().unwrap_or_default();
            header
                .rsplit(" · ")
                .next()
                .and_then(|part| part.split_once('/'))
                .is_some_and(|(k, n)| k.parse::<u32>().is_ok() && n.parse::<u32>().is_ok())
        })
        .count();
    let largest = messages
        .iter()
        .map(|m| m.visible.chars().count())
        .max()
        .unwrap_or(0);
    // The lives' messages: life k sent messages[starts[k]..starts[k + 1]].
    let mut starts: Vec<usize> = first_message_of_life.iter().copied().collect();
    starts.sort_unstable();
    starts.push(messages.len());
    // Which accepted message the database recorded each item's delivery with.
    let recorded_in: HashMap<usize, i64> = {
        let conn = rusqlite::Connection::open(install.db_path()).unwrap();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT i.url, d.message_id FROM deliveries d JOIN items i ON i.id = d.item_id \
                 WHERE d.destination = 'telegram:{CHANNEL}'"
            ))
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .unwrap()
            .map(Result::unwrap);
        let mut recorded = HashMap::new();
        for (url, message_id) in rows {
            let n = feeds
                .number_of(&url)
                .unwrap_or_else(|| panic!("delivered {url:?} is no feed item"));
            assert!(
                recorded.insert(n, message_id).is_none(),
                "item {n} recorded twice"
            );
        }
        recorded
    };
    let numbers_of = |m: &Accepted| -> Vec<usize> {
        m.links
            .iter()
            .map(|l| {
                feeds
                    .number_of(l)
                    .unwrap_or_else(|| panic!("message {} links to {l:?}, not a feed item", m.message_id))
            })
            .collect()
    };
    let history = || {
        starts
            .windows(2)
            .enumerate()
            .map(|(life, b)| {
                let sent: Vec<String> = (b[0]..b[1])
                    .map(|i| format!("#{} {:?}", messages[i].message_id, numbers_of(&messages[i])))
                    .collect();
                format!("life {life}: {}", sent.join(" "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    // Messages Telegram accepted whose delivery was never recorded: each must be
    // the last message of a killed life (the kill came between Telegram's answer
    // and the commit), so there is at most one per kill.
    let mut unrecorded_messages = 0;
    let mut unrecorded_items = 0;
    for (life, bounds) in starts.windows(2).enumerate() {
        let killed = life < KILLS;
        for (index, message) in messages.iter().enumerate().take(bounds[1]).skip(bounds[0]) {
            let numbers = numbers_of(message);
            // No item twice in one message. (Their order is the digest's: one entry
            // per story, the headline first, the other outlets after it, so the
            // links are no longer in date order; `digest`'s tests check it.)
            let mut distinct = numbers.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(
                distinct.len(),
                numbers.len(),
                "message {index} carries an item twice: {numbers:?}\n{}",
                message.visible
            );
            let recorded = numbers
                .iter()
                .filter(|n| recorded_in.get(n) == Some(&message.message_id))
                .count();
            assert!(
                recorded == 0 || recorded == numbers.len(),
                "message #{} is recorded for only some of its items; by life:\n{}",
                message.message_id,
                history()
            );
            if recorded == 0 {
                assert!(
                    killed && index + 1 == bounds[1],
                    "message #{} (life {life}) went out again later but is not the last message of a \
                     killed life; by life:\n{}\nthat life's log:\n{}",
                    message.message_id,
                    history(),
                    std::fs::read_to_string(install.dir.path().join(format!("run-{life:02}.log")))
                        .unwrap_or_default()
                );
                unrecorded_messages += 1;
                unrecorded_items += numbers.len();
            }
            for &n in &numbers {
                assert_ne!(kind(n), Kind::Irrelevant, "off-topic item {n} delivered");
                *occurrences.entry(n).or_default() += 1;
            }
            first_seen.extend(numbers);
        }
    }

    let lost: Vec<usize> = {
        let mut l: Vec<usize> = expected.difference(&first_seen).copied().collect();
        l.sort_unstable();
        l
    };
    let duplicate_items = occurrences.values().filter(|&&c| c > 1).count();
    let extra_copies: usize = occurrences.values().map(|c| c - 1).sum();
    // Every copy beyond the first is accounted for by an unrecorded message.
    assert_eq!(extra_copies, unrecorded_items, "by life:\n{}", history());
    println!(
        "crash test: {KILLS} kills ({moments:?}), {served} items served ({} relevant), {} messages \
         ({split_parts} parts of split digests, largest {largest} characters), {unrecorded_messages} \
         accepted but unrecorded (resent after the restart): {duplicate_items} item(s) repeated, \
         {extra_copies} extra copies; {} lost; {:.1?}",
        expected.len(),
        messages.len(),
        lost.len(),
        started.elapsed()
    );
    assert!(
        complete && lost.is_empty(),
        "lost items {lost:?}; last life's log:\n{final_log}"
    );
    assert!(unrecorded_messages <= KILLS);
    // The database agrees: nothing relevant is still owed to the channel.
    assert_eq!(
        install.count(&format!(
            "SELECT count(*) FROM items i WHERE i.relevant = 1 AND NOT EXISTS \
             (SELECT 1 FROM deliveries d WHERE d.item_id = i.id AND d.destination = 'telegram:{CHANNEL}')"
        )),
        0,
        "the channel has everything but the database still owes items; last life's log:\n{}",
        last.log()
    );
    assert_eq!(
        install.count("SELECT count(*) FROM items WHERE relevant = 1") as usize,
        expected.len()
    );
}

/// SIGTERM while Telegram's answer to a send is on its way: the service waits
/// for it and records the delivery, so the next start does not post it again.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_send_records_the_message_instead_of_posting_it_twice() {
    let fake = FakeTelegram::start().await;
    let slow = SlowReplies::start(&fake.url).await;
    slow.hold_answers(1500);
    // Only the first feed is polled; of the seven items it holds 0, 2, 4
    // and 6, and 4 is off-topic, so three relevant items arrive in one poll
    // and the first digest carries them all. With both feeds polled, the
    // first digest goes out as soon as either has been read and could hold
    // one feed's items only (it did, once, in CI).
    let feeds = Feeds::with_backlog(7);
    let install = install_with_token(&feeds, &slow.url, &FEEDS[..1]);

    let mut life = Life::start(&install, 0);
    let sent = wait_until(Duration::from_secs(20), || !fake.accepted().is_empty()).await;
    assert!(sent, "nothing sent; log:\n{}", life.log());
    // Telegram has the message; the service has not heard back yet.
    life.terminate().await;
    let delivered = |install: &Install| {
        install.count(&format!(
            "SELECT count(*) FROM deliveries WHERE destination = 'telegram:{CHANNEL}'"
        ))
    };
    let carried = fake.accepted()[0].links.len() as i64;
    assert_eq!(carried, 3, "the three items in one message");
    assert_eq!(delivered(&install), carried, "log:\n{}", life.log());

    // A new process owes nothing: the channel does not get the message again.
    slow.hold_answers(0);
    install.run(&["digest"]).expect_code(0);
    assert_eq!(fake.accepted().len(), 1);
}

//! Crash safety on the real binary: `cstowatch run` against the fixture feed
//! server and the fake Bot API, killed with SIGKILL at seeded random moments
//! (mid-poll, right after Telegram accepted a message, anywhere else) and
//! restarted each time, while its feeds keep gaining items. At the end every
//! relevant item the feeds served must have reached the channel, and the only
//! repeats allowed are one message per kill: the one Telegram accepted just
//! before the kill, whose delivery the database never recorded.
//!
//! The seed is printed; `CRASH_SEED=<n> cargo test --test crash` replays a run.

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
    match kind(n) {
        Kind::Csto => format!("CSTO summit opens in Minsk without Armenia, session {n}"),
        Kind::ArmeniaAzerbaijan => format!("Azerbaijani forces fire on Armenian positions near Tegh {n}"),
        Kind::Irrelevant => format!("Weather in Paris stays mild, report {n}"),
    }
}

/// The feeds' items so far, and which feed each went to.
struct Feeds {
    server: FeedServer,
    /// Publication dates run from here, one second per item, so item order is date order.
    base: jiff::Timestamp,
    added: Mutex<usize>,
}

impl Feeds {
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
    state.forwarding.fetch_add(1, Ordering::SeqCst);
    let answer = forward(&state, request).await;
    state.forwarding.fetch_sub(1, Ordering::SeqCst);
    match answer {
        Ok((status, body)) => {
            tokio::time::sleep(Duration::from_millis(state.delay_ms.load(Ordering::Relaxed))).await;
            (status, [("content-type", "application/json")], body).into_response()
        }
        // The sender died mid-request, or the fake is gone.
        Err(e) => (axum::http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
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

fn config(feeds: &Feeds, api_url: &str) -> String {
    let mut c = format!(
        "[poll]\ninterval = \"1s\"\ntimeout = \"2s\"\n\
         [digest]\nevery = \"1s\"\n\
         [telegram]\napi_url = \"{api_url}\"\nchat = \"{CHANNEL}\"\n\
         [state]\npath = \"../state/cstowatch.db\"\n"
    );
    for feed in FEEDS {
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
    let feeds = Arc::new(Feeds {
        server: FeedServer::start(),
        base: jiff::Timestamp::now() - jiff::SignedDuration::from_mins(40),
        added: Mutex::new(0),
    });
    for _ in 0..6 {
        feeds.add_one();
    }
    let mut install = Install::new(&config(&feeds, &slow.url));
    install
        .env
        .push(("CSTOWATCH_TELEGRAM_TOKEN".into(), fake_telegram::TOKEN.into()));

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
    let mut repeating_messages = 0;
    let mut previous: Vec<usize> = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        let numbers: Vec<usize> = message
            .links
            .iter()
            .map(|l| {
                feeds
                    .number_of(l)
                    .unwrap_or_else(|| panic!("message {index} links to {l:?}, not a feed item"))
            })
            .collect();
        // Order inside the message: groups in their fixed order, items by date within a group.
        let order: Vec<(Kind, usize)> = numbers.iter().map(|&n| (kind(n), n)).collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "message {index} is out of order: {order:?}\n{}",
            message.visible
        );
        for &n in &numbers {
            assert_ne!(kind(n), Kind::Irrelevant, "off-topic item {n} delivered");
            *occurrences.entry(n).or_default() += 1;
        }
        let repeated: Vec<usize> = numbers
            .iter()
            .copied()
            .filter(|n| first_seen.contains(n))
            .collect();
        if !repeated.is_empty() {
            repeating_messages += 1;
            // Only a restart resends: a life never repeats what it sent itself.
            assert!(
                first_message_of_life.contains(&index),
                "message {index} repeats {repeated:?} but is not the first message of a life"
            );
            // A repeat is only ever the message just before, whose delivery the kill kept from being recorded.
            assert!(
                repeated.iter().all(|n| previous.contains(n)),
                "message {index} repeats {repeated:?}, not all from the message before it ({previous:?})"
            );
        }
        first_seen.extend(numbers.iter().copied());
        previous = numbers;
    }

    let lost: Vec<usize> = {
        let mut l: Vec<usize> = expected.difference(&first_seen).copied().collect();
        l.sort_unstable();
        l
    };
    let duplicate_items = occurrences.values().filter(|&&c| c > 1).count();
    let extra_copies: usize = occurrences.values().map(|c| c - 1).sum();
    println!(
        "crash test: {KILLS} kills ({moments:?}), {served} items served ({} relevant), {} messages, \
         {repeating_messages} repeated message(s) carrying {duplicate_items} item(s) ({extra_copies} extra \
         copies), {} lost, {:.1?}",
        expected.len(),
        messages.len(),
        lost.len(),
        started.elapsed()
    );
    assert!(
        complete && lost.is_empty(),
        "lost items {lost:?}; last life's log:\n{final_log}"
    );
    assert!(
        repeating_messages <= KILLS,
        "{repeating_messages} messages repeated items, more than the {KILLS} kills"
    );
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
    let feeds = Feeds {
        server: FeedServer::start(),
        base: jiff::Timestamp::now() - jiff::SignedDuration::from_mins(40),
        added: Mutex::new(0),
    };
    for _ in 0..3 {
        feeds.add_one();
    }
    let mut install = Install::new(&config(&feeds, &slow.url));
    install
        .env
        .push(("CSTOWATCH_TELEGRAM_TOKEN".into(), fake_telegram::TOKEN.into()));

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

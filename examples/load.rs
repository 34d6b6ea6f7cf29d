//! The load benchmark: how `cstowatch` scales with the number of feeds.
//!
//! For each feed count N it serves N generated WordPress feeds (20 items,
//! about 34 KB each, ETag / 304) from a local axum server on 127.0.0.1, writes
//! a config naming them, and runs the real release binary against it:
//!
//! 1. `run --once` on an empty database (every item new);
//! 2. `run --once` again with a fraction of the feeds changed (two new items
//!    each), the rest answering 304;
//! 3. `run --once` with no feed changed (all 304), the baseline for 4;
//! 4. an outage: `run --once` with every feed refusing connections;
//! 5. `check` and `status` on that config and database;
//! 6. the service (`run`) on a fresh database: time from spawn to the first
//!    feed request, then SIGTERM mid-round and the time to exit;
//! 7. the service for one round with every feed due, all answering 304, and
//!    then all refusing connections: CPU over the life of each, and the
//!    time SIGTERM takes.
//!
//! For every child it prints wall time, CPU time (user + system) and peak RSS
//! from `wait4`, and for cycle 1 the bytes written against the database size.
//!
//! ```text
//! cargo build --release --bins --examples
//! target/release/examples/load [--feeds 1000,10000] [--changed 0.1] [--binary PATH] [--concurrency N] [--cycles-only]
//! ```
//!
//! Every loop is bounded and every address is 127.0.0.1.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Items per feed, as WordPress serves them by default on busy sites.
const ITEMS_PER_FEED: u64 = 20;
/// New items a changed feed gains per round.
const NEW_ITEMS_PER_CHANGE: u64 = 2;
/// Hours between two items of one feed: twenty items span five days, so
/// about eight are inside the default 48-hour backfill window.
const HOURS_BETWEEN_ITEMS: i64 = 6;
/// How many distinct article bodies the generator draws from.
const BODY_POOL: usize = 97;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut feed_counts = vec![1_000usize, 10_000];
    let mut changed = 0.1f64;
    let mut binary = default_binary();
    let mut concurrency = None;
    let mut cycles_only = false;
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--feeds" => {
                feed_counts = value
                    .split(',')
                    .map(|n| n.trim().parse().expect("--feeds takes numbers like 1000,10000"))
                    .collect()
            }
            "--changed" => changed = value.parse().expect("--changed takes a fraction like 0.1"),
            "--binary" => binary = PathBuf::from(value),
            "--concurrency" => {
                concurrency = Some(value.parse::<usize>().expect("--concurrency takes a number"))
            }
            // Only the three `run --once` cycles: quick to compare two builds.
            "--cycles-only" => {
                cycles_only = true;
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}; see the doc comment of examples/load.rs"),
        }
        i += 2;
    }
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --release --bins --examples` first",
        binary.display()
    );
    let sample = Shared::new(1);
    println!(
        "binary {} · {} cores · changed fraction {changed} · a feed is {} bytes",
        binary.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        feed_body(&sample, 0, 0).len()
    );
    for n in feed_counts {
        bench(&binary, n, changed, concurrency, cycles_only);
    }
}

fn default_binary() -> PathBuf {
    // target/release/examples/load -> target/release/cstowatch
    let exe = std::env::current_exe().expect("the harness knows where it is");
    exe.parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("cstowatch"))
        .unwrap_or_else(|| PathBuf::from("target/release/cstowatch"))
}

/// One feed count: every measurement above, printed as it is taken.
fn bench(binary: &Path, feeds: usize, changed: f64, concurrency: Option<usize>, cycles_only: bool) {
    println!("\n== {feeds} feeds ==");
    let server = FeedServer::start(feeds);
    // On the real disk, not tmpfs: fsyncs and write amplification are part of the cost.
    std::fs::create_dir_all("target/load").expect("create target/load");
    let dir = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in("target/load")
        .expect("temp dir");
    let base = format!("http://{}", server.addr);
    let dead = format!("http://{}", dead_address());
    let write_config = |name: &str, base: &str, state: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, config_text(feeds, base, state, concurrency)).expect("write config");
        path
    };
    let live = write_config("live.toml", &base, "state.db");
    let down = write_config("down.toml", &dead, "state.db");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rules.toml"),
        dir.path().join("rules.toml"),
    )
    .expect("copy the shipped rules");
    let db = dir.path().join("state.db");

    let cycle1 = measure(binary, &live, &["run", "--once"]);
    let db_bytes = file_size(&db) + file_size(&db.with_extension("db-wal"));
    println!(
        "{}  writes {:.0} MB for a {:.1} MB database ({:.1}x)",
        cycle1.line("cycle 1 (all new)", feeds),
        cycle1.written as f64 / 1e6,
        db_bytes as f64 / 1e6,
        cycle1.written as f64 / db_bytes.max(1) as f64
    );
    let requests_before = server.requests();
    server.next_round(changed);
    let cycle2 = measure(binary, &live, &["run", "--once"]);
    println!(
        "{}  ({} requests)",
        cycle2.line(&format!("cycle 2 ({:.0} % 304)", (1.0 - changed) * 100.0), feeds),
        server.requests() - requests_before
    );
    server.next_round(0.0);
    let all_304 = measure(binary, &live, &["run", "--once"]);
    println!("{}", all_304.line("cycle 3 (all 304)", feeds));
    if cycles_only {
        return;
    }
    // Snapshots for the service runs below, due again at once.
    snapshot(&db, &dir.path().join("healthy.db"));
    let outage = measure(binary, &down, &["run", "--once"]);
    println!("{}", outage.line("outage (all refused)", feeds));
    println!(
        "  outage CPU / all-304 CPU = {:.2}",
        outage.cpu.as_secs_f64() / all_304.cpu.as_secs_f64().max(1e-9)
    );
    snapshot(&db, &dir.path().join("down.db"));
    println!("{}", measure(binary, &live, &["check"]).line("check", feeds));
    println!("{}", measure(binary, &live, &["status"]).line("status", feeds));

    // The service on a fresh database: start-up to the first poll, then
    // SIGTERM in the middle of its first (all new) round.
    let fresh = write_config("fresh.toml", &base, "fresh.db");
    let (first_poll, service) = service_round(binary, &fresh, &server, Duration::from_secs(1));
    println!(
        "service, fresh state: first poll {:.3} s after spawn; SIGTERM exit {:.2} s",
        first_poll.as_secs_f64(),
        service.wall.as_secs_f64(),
    );
    // One round of the service with every feed due: all 304, then all refused.
    // The start jitter spreads a round over at most 5 s.
    let healthy = write_config("healthy.toml", &base, "healthy.db");
    let (first_poll, round_304) = service_round(binary, &healthy, &server, Duration::from_secs(8));
    println!(
        "service, a round of 304s: first poll {:.3} s after spawn; CPU {:.2} s over its life; SIGTERM exit {:.2} s; peak RSS {:.1} MB",
        first_poll.as_secs_f64(),
        round_304.cpu.as_secs_f64(),
        round_304.wall.as_secs_f64(),
        round_304.peak_rss as f64 / 1e6
    );
    let outage_config = write_config("outage.toml", &dead, "down.db");
    let (_, round_down) = service_round(binary, &outage_config, &server, Duration::from_secs(8));
    println!(
        "service, a round in an outage: CPU {:.2} s over its life ({:.2}x the 304 round); SIGTERM exit {:.2} s; peak RSS {:.1} MB",
        round_down.cpu.as_secs_f64(),
        round_down.cpu.as_secs_f64() / round_304.cpu.as_secs_f64().max(1e-9),
        round_down.wall.as_secs_f64(),
        round_down.peak_rss as f64 / 1e6
    );
}

/// Runs the service for `life` after its first request reached the server
/// (or after spawning, when it polls a dead address), then SIGTERMs it.
/// Returns the time to the first request and what the stop cost.
/// Runs the service for `life` from its spawn, then SIGTERM; returns when
/// the server saw its first request (`life` if none came: an outage) and
/// what the child cost. Every round lives the same time, so their CPU
/// compares (an outage round used to live 10 s longer, waiting for a
/// request that could not come).
fn service_round(binary: &Path, config: &Path, server: &FeedServer, life: Duration) -> (Duration, Usage) {
    let before = server.requests();
    let started = Instant::now();
    let mut child = spawn(binary, config, &["run"]);
    let deadline = started + life;
    while server.requests() == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let first_request = started.elapsed();
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    (first_request, stop(&mut child))
}

/// Copies a database (and its WAL) aside, with every feed due at once.
fn snapshot(db: &Path, to: &Path) {
    std::fs::copy(db, to).expect("copy the database");
    let wal = db.with_extension("db-wal");
    if wal.exists() {
        std::fs::copy(&wal, to.with_extension("db-wal")).expect("copy the WAL");
    }
    let conn = rusqlite::Connection::open(to).expect("open the snapshot");
    conn.execute("UPDATE feeds SET next_poll_at = NULL", [])
        .expect("make every feed due");
}

/// What `wait4` says a child cost.
struct Usage {
    wall: Duration,
    cpu: Duration,
    peak_rss: u64,
    /// Bytes the child caused to be written to storage (`ru_oublock`).
    written: u64,
    code: i32,
}

impl Usage {
    fn line(&self, what: &str, feeds: usize) -> String {
        let mut s = format!(
            "{what:<22} wall {:>7.3} s  cpu {:>7.3} s  ({:>6.1} µs cpu/feed)  peak RSS {:>6.1} MB",
            self.wall.as_secs_f64(),
            self.cpu.as_secs_f64(),
            self.cpu.as_secs_f64() * 1e6 / feeds as f64,
            self.peak_rss as f64 / 1e6
        );
        if self.code != 0 {
            let _ = write!(s, "  EXIT {}", self.code);
        }
        s
    }
}

fn spawn(binary: &Path, config: &Path, args: &[&str]) -> std::process::Child {
    Command::new(binary)
        .arg("--config")
        .arg(config)
        .arg("-q")
        .args(args)
        .env_remove("CSTOWATCH_TELEGRAM_TOKEN")
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn cstowatch")
}

fn measure(binary: &Path, config: &Path, args: &[&str]) -> Usage {
    let started = Instant::now();
    let child = spawn(binary, config, args);
    wait(child, started)
}

/// SIGTERM, then how long the child took to exit (and what it cost over its life).
fn stop(child: &mut std::process::Child) -> Usage {
    let started = Instant::now();
    // SAFETY: kill(2) on our own child's pid, which it still holds (not reaped yet).
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let pid = child.id();
    wait_pid(pid, started)
}

fn wait(child: std::process::Child, started: Instant) -> Usage {
    let pid = child.id();
    // wait4 reaps it; the handle must not try again.
    std::mem::forget(child);
    wait_pid(pid, started)
}

fn wait_pid(pid: u32, started: Instant) -> Usage {
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; both pointers are valid for the call.
    let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid as libc::pid_t, "wait4 failed");
    let wall = started.elapsed();
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Usage {
        wall,
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
        // Linux reports kilobytes.
        peak_rss: usage.ru_maxrss as u64 * 1024,
        written: usage.ru_oublock as u64 * 512,
        code: if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        },
    }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// An address where nothing listens: connections are refused at once.
fn dead_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    addr
}

/// A config for `feeds` feeds at `base`; `poll.concurrency` is the default unless given.
fn config_text(feeds: usize, base: &str, state: &str, concurrency: Option<usize>) -> String {
    let mut s = format!(
        "[poll]\ninterval = \"15m\"\n{}\n[state]\npath = \"{state}\"\n\n[digest]\nevery = \"6h\"\n",
        concurrency.map_or(String::new(), |n| format!("concurrency = {n}\n"))
    );
    for i in 0..feeds {
        let _ = write!(
            s,
            "\n[[feeds]]\nname = \"Feed {i:05}\"\nurl = \"{base}/feeds/{i}/\"\n"
        );
    }
    s
}

// ---------------------------------------------------------------------------
// The feed server.

struct Shared {
    feeds: usize,
    /// The round the feeds are in; a feed's version is how many rounds changed it.
    versions: Vec<AtomicU32>,
    requests: AtomicU64,
    bodies: Vec<String>,
    now: i64,
}

impl Shared {
    fn new(feeds: usize) -> Shared {
        Shared {
            feeds,
            versions: (0..feeds).map(|_| AtomicU32::new(0)).collect(),
            requests: AtomicU64::new(0),
            bodies: (0..BODY_POOL).map(article_body).collect(),
            now: jiff::Timestamp::now().as_second(),
        }
    }
}

struct FeedServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl FeedServer {
    fn start(feeds: usize) -> FeedServer {
        let shared = Arc::new(Shared::new(feeds));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let state = Arc::clone(&shared);
        std::thread::spawn(move || {
            // One thread: the server's CPU competes with the binary's on this machine.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("address"))
                    .expect("send");
                let app = axum::Router::new()
                    .route("/feeds/{id}/", axum::routing::get(feed))
                    .with_state(state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stop.await;
                    })
                    .await
                    .expect("serve");
            });
        });
        FeedServer {
            addr: addr_rx.recv().expect("server address"),
            shared,
            _shutdown: shutdown,
        }
    }

    fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Moves to a new round in which `fraction` of the feeds (spread evenly) gain items.
    fn next_round(&self, fraction: f64) {
        let every = if fraction > 0.0 {
            (1.0 / fraction).round() as usize
        } else {
            usize::MAX
        };
        for (i, v) in self.shared.versions.iter().enumerate() {
            if every != usize::MAX && i % every == 0 {
                v.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

async fn feed(
    UrlPath(id): UrlPath<usize>,
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    if id >= shared.feeds {
        return StatusCode::NOT_FOUND.into_response();
    }
    let version = shared.versions[id].load(Ordering::SeqCst);
    let etag = format!("\"{id}-{version}\"");
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                "application/rss+xml; charset=UTF-8".to_string(),
            ),
            (header::ETAG, etag),
        ],
        feed_body(&shared, id, version),
    )
        .into_response()
}

/// A WordPress RSS 2.0 feed as WordPress writes it: `content:encoded` with the
/// full article, an excerpt, categories, comment links and a `?p=` guid.
fn feed_body(shared: &Shared, feed: usize, version: u32) -> String {
    let newest = ITEMS_PER_FEED - 1 + u64::from(version) * NEW_ITEMS_PER_CHANGE;
    let mut s = String::with_capacity(36_000);
    let _ = write!(
        s,
        r#"<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"
	xmlns:content="http://purl.org/rss/1.0/modules/content/"
	xmlns:wfw="http://wellformedweb.org/CommentAPI/"
	xmlns:dc="http://purl.org/dc/elements/1.1/"
	xmlns:atom="http://www.w3.org/2005/Atom"
	xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"
	xmlns:slash="http://purl.org/rss/1.0/modules/slash/"
	>
<channel>
	<title>Regional Observer {feed}</title>
	<atom:link href="https://site{feed}.example/feed/" rel="self" type="application/rss+xml" />
	<link>https://site{feed}.example</link>
	<description>News and analysis from the region</description>
	<lastBuildDate>{}</lastBuildDate>
	<language>en-US</language>
	<sy:updatePeriod>hourly</sy:updatePeriod>
	<sy:updateFrequency>1</sy:updateFrequency>
	<generator>https://wordpress.org/?v=6.4.2</generator>
"#,
        rfc2822(shared.now)
    );
    for n in (newest + 1 - ITEMS_PER_FEED..=newest).rev() {
        let published = shared.now - (newest - n) as i64 * HOURS_BETWEEN_ITEMS * 3600;
        let body = &shared.bodies[(feed * 31 + n as usize) % BODY_POOL];
        let title = title(feed, n);
        let slug = title.to_lowercase().replace(' ', "-");
        let excerpt: String = body
            .split("</p>")
            .next()
            .unwrap_or("")
            .trim_start_matches("<p>")
            .chars()
            .take(200)
            .collect();
        let _ = write!(
            s,
            r#"	<item>
		<title>{title}</title>
		<link>https://site{feed}.example/2026/11/{slug}/</link>
		<comments>https://site{feed}.example/2026/11/{slug}/#respond</comments>
		<dc:creator><![CDATA[Staff Reporter]]></dc:creator>
		<pubDate>{}</pubDate>
		<category><![CDATA[News]]></category>
		<category><![CDATA[Region]]></category>
		<category><![CDATA[Politics]]></category>
		<guid isPermaLink="false">https://site{feed}.example/?p={n}</guid>
		<description><![CDATA[<p>{excerpt} [&#8230;]</p>
<p>The post <a href="https://site{feed}.example/2026/11/{slug}/">{title}</a> appeared first on <a href="https://site{feed}.example">Regional Observer</a>.</p>
]]></description>
		<content:encoded><![CDATA[{body}]]></content:encoded>
		<wfw:commentRss>https://site{feed}.example/2026/11/{slug}/feed/</wfw:commentRss>
		<slash:comments>0</slash:comments>
	</item>
"#,
            rfc2822(published)
        );
    }
    s.push_str("</channel>\n</rss>\n");
    s
}

fn rfc2822(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| jiff::fmt::rfc2822::to_string(&t.to_zoned(jiff::tz::TimeZone::UTC)).unwrap_or_default())
        .unwrap_or_default()
}

const WORDS: &[&str] = &[
    "government",
    "minister",
    "officials",
    "regional",
    "meeting",
    "parliament",
    "economic",
    "agreement",
    "security",
    "cooperation",
    "delegation",
    "statement",
    "infrastructure",
    "elections",
    "reform",
    "budget",
    "energy",
    "transport",
    "negotiations",
    "border",
    "summit",
    "capital",
    "investment",
    "opposition",
    "president",
    "council",
    "trade",
    "exports",
    "railway",
    "pipeline",
    "villages",
    "residents",
    "analysts",
    "according",
    "sources",
    "week",
    "talks",
    "draft",
    "process",
    "region",
];

/// A headline unique to (feed, item): dedup must not merge different articles.
fn title(feed: usize, n: u64) -> String {
    let mut h = (feed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ n.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let mut words = Vec::new();
    for _ in 0..4 {
        h = h.rotate_left(17).wrapping_mul(0x94D0_49BB_1331_11EB);
        words.push(WORDS[(h % WORDS.len() as u64) as usize]);
    }
    let mut t = format!("{} {feed} {n}", words.join(" "));
    if let Some(first) = t.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    t
}

/// About 1.3 KB of article HTML; one in ten is about the topics cstowatch watches.
fn article_body(seed: usize) -> String {
    let mut h = seed as u64 + 1;
    let mut next = || {
        h = h
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (h >> 33) as usize
    };
    let mut s = String::new();
    for p in 0..3 {
        s.push_str("<p>");
        if seed.is_multiple_of(10) && p == 1 {
            s.push_str(
                "Armenia and Azerbaijan continued border delimitation talks, while Yerevan again \
                 criticised the CSTO, the Moscow-led military alliance, for its inaction. ",
            );
        }
        for w in 0..18 {
            let word = WORDS[next() % WORDS.len()];
            if w == 0 {
                let mut c = word.chars();
                if let Some(f) = c.next() {
                    s.extend(f.to_uppercase());
                    s.push_str(c.as_str());
                }
            } else {
                s.push_str(word);
            }
            s.push(if w % 12 == 11 { '.' } else { ' ' });
            if w % 12 == 11 {
                s.push(' ');
            }
        }
        s.push_str("</p>\n");
    }
    s
}

//! Monitoring on the real binary: `[http] listen` serves /metrics (read here
//! with a Prometheus text-format parser, as a scraper reads it) and
//! /healthz; a stalled worker turns /healthz to 503 and stops the systemd
//! watchdog pings (a fake `NOTIFY_SOCKET`); a bad address is a config error;
//! no listener exists unless configured.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value};
use support::cli::Install;
use support::fake_telegram::{CHANNEL, Failure as TelegramFailure, FakeTelegram, TOKEN};
use support::feed_server::{FeedServer, Route, rss};
use support::service::Service;

/// One feed `a`, polled every second; `extra` is appended (an `[http]` section).
fn config(server: &FeedServer, extra: &str) -> String {
    format!(
        "[poll]\ninterval = \"1s\"\ntimeout = \"2s\"\n[digest]\nevery = \"1h\"\n\
         [[feeds]]\nname = \"a\"\nurl = \"{}\"\n[state]\npath = \"../state/cstowatch.db\"\n{extra}",
        server.url("/a/feed")
    )
}

const LISTEN_ANY_LOOPBACK_PORT: &str = "[http]\nlisten = \"127.0.0.1:0\"\n";

/// The address the service says it listens on.
fn listening_address(service: &mut Service) -> SocketAddr {
    let line = service.wait_for("listening on http://", Duration::from_secs(20));
    let rest = &line[line.find("http://").unwrap() + "http://".len()..];
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

/// A plain HTTP/1.1 GET: the status code and the body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding: chunked"),
        "{head}"
    );
    (status, body.to_string())
}

/// /metrics, parsed.
fn scrape(addr: SocketAddr) -> Scrape {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// The value of the sample `metric` whose labels include every one of `labels`.
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
            Value::Summary(_) => f64::NAN,
        })
}

/// Scrapes until `check` passes, up to `limit`; returns the passing scrape.
fn scrape_until(addr: SocketAddr, limit: Duration, what: &str, check: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + limit;
    loop {
        let s = scrape(addr);
        if check(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within {limit:?}; last scrape:\n{s:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn metrics_count_polls_items_and_bytes_across_two_polls() {
    let server = FeedServer::start();
    server.set(
        "/a/feed",
        Route::feed(
            rss(&server, &[("1", "CSTO summit opens in Minsk without Armenia")]),
            "\"1\"",
        ),
    );
    let install = Install::new(&config(&server, LISTEN_ANY_LOOPBACK_PORT));
    let mut service = Service::start(&install);
    let addr = listening_address(&mut service);
    assert!(addr.ip().is_loopback());
    assert!(!service_listening_sockets(&service).is_empty());

    let feed = [("feed", "a")];
    let ok = [("feed", "a"), ("outcome", "200")];
    let first = scrape_until(addr, Duration::from_secs(20), "a first poll", |s| {
        value(s, "cstowatch_polls_total", &ok) == Some(1.0)
    });
    assert_eq!(value(&first, "cstowatch_items_seen_total", &feed), Some(1.0));
    assert_eq!(value(&first, "cstowatch_items_relevant_total", &feed), Some(1.0));
    let bytes_first = value(&first, "cstowatch_fetched_bytes_total", &feed).unwrap();
    assert!(bytes_first > 100.0, "{bytes_first}");
    let last_success = value(&first, "cstowatch_feed_last_success_timestamp_seconds", &feed).unwrap();
    assert!(last_success > jiff::Timestamp::now().as_second() as f64 - 60.0);
    assert!(value(&first, "cstowatch_poll_duration_seconds", &[]).unwrap() >= 1.0);
    assert!(value(&first, "cstowatch_tagging_duration_seconds", &[]).unwrap() >= 1.0);
    assert!(value(&first, "process_resident_memory_bytes", &[]).unwrap() > 1e6);
    assert_eq!(
        value(&first, "cstowatch_worker_stalled", &[("worker", "store")]),
        Some(0.0)
    );

    // Unchanged, the feed answers 304: counted as such, nothing new.
    let not_modified = [("feed", "a"), ("outcome", "304")];
    let unchanged = scrape_until(addr, Duration::from_secs(20), "a 304 poll", |s| {
        value(s, "cstowatch_polls_total", &not_modified) >= Some(1.0)
    });
    assert_eq!(value(&unchanged, "cstowatch_items_seen_total", &feed), Some(1.0));
    assert_eq!(
        value(&unchanged, "cstowatch_fetched_bytes_total", &feed),
        Some(bytes_first)
    );

    // The feed changes: the next poll fetches it again, with a second item.
    server.set(
        "/a/feed",
        Route::feed(
            rss(
                &server,
                &[
                    ("1", "CSTO summit opens in Minsk without Armenia"),
                    ("2", "Azerbaijani troops fire on Armenian border posts in Syunik"),
                ],
            ),
            "\"2\"",
        ),
    );
    let second = scrape_until(addr, Duration::from_secs(20), "a second fetched poll", |s| {
        value(s, "cstowatch_polls_total", &ok) == Some(2.0)
    });
    assert_eq!(value(&second, "cstowatch_items_seen_total", &feed), Some(2.0));
    assert_eq!(value(&second, "cstowatch_items_relevant_total", &feed), Some(2.0));
    let bytes_second = value(&second, "cstowatch_fetched_bytes_total", &feed).unwrap();
    assert!(
        bytes_second > 2.0 * bytes_first,
        "{bytes_first} then {bytes_second}"
    );

    // Without a token, items go to the console: the delivery cycle that
    // followed the new items counted them as pending there.
    scrape_until(
        addr,
        Duration::from_secs(20),
        "pending items on the console",
        |s| value(s, "cstowatch_pending_items", &[("destination", "console")]) == Some(2.0),
    );

    let (status, body) = get(addr, "/healthz");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    service.signal("TERM");
    assert_eq!(service.wait_exit(Duration::from_secs(10)).0, 0);
}

/// Bot API requests are counted by destination and outcome as they happen:
/// a 429 (the outbox waits and retries), then the accepted message.
#[test]
fn deliveries_are_counted_by_destination_and_outcome() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let telegram = runtime.block_on(FakeTelegram::start());
    telegram.fail_next([TelegramFailure::TooManyRequests { retry_after: 1 }]);
    let server = FeedServer::start();
    server.set(
        "/a/feed",
        Route::feed(
            rss(&server, &[("1", "CSTO summit opens in Minsk without Armenia")]),
            "\"1\"",
        ),
    );
    // Items tagged csto go out at once, as alerts, whatever the digest schedule.
    let config = config(&server, LISTEN_ANY_LOOPBACK_PORT).replace(
        "[digest]\nevery = \"1h\"\n",
        &format!(
            "[digest]\nevery = \"1h\"\nalert_tags = [\"csto\"]\n\
             [telegram]\napi_url = \"{}\"\nchat = \"{CHANNEL}\"\n",
            telegram.url
        ),
    );
    let mut install = Install::new(&config);
    install
        .env
        .push(("CSTOWATCH_TELEGRAM_TOKEN".into(), TOKEN.into()));
    let mut service = Service::start(&install);
    let addr = listening_address(&mut service);
    let chat = format!("telegram:{CHANNEL}");
    let destination = [("destination", chat.as_str())];
    let counted = scrape_until(addr, Duration::from_secs(30), "the alert delivered", |s| {
        value(s, "cstowatch_delivered_items_total", &destination) == Some(1.0)
    });
    let outcome = |o: &str| {
        value(
            &counted,
            "cstowatch_deliveries_total",
            &[("destination", chat.as_str()), ("outcome", o)],
        )
    };
    assert_eq!(outcome("429"), Some(1.0), "{counted:#?}");
    assert_eq!(outcome("ok"), Some(1.0), "{counted:#?}");
    assert_eq!(
        value(&counted, "cstowatch_pending_items", &destination),
        Some(0.0)
    );
    assert_eq!(telegram.accepted().len(), 1);
    let (_, text) = get(addr, "/metrics");
    assert!(!text.contains(TOKEN), "the token is in /metrics");
    service.signal("TERM");
    assert_eq!(service.wait_exit(Duration::from_secs(10)).0, 0);
    assert!(
        !service.seen.iter().any(|l| l.contains(TOKEN)),
        "the token is in the log"
    );
}

/// A fake systemd notify socket: the datagrams the service sends.
struct NotifySocket {
    socket: UnixDatagram,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        NotifySocket {
            socket,
            _dir: dir,
            path,
        }
    }

    /// Every message that arrives within `within`.
    fn messages(&self, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut messages = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        messages
    }

    /// Waits for a message containing `needle`, up to `limit`.
    fn wait_for(&self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self
                .messages(Duration::from_millis(100))
                .iter()
                .any(|m| m.contains(needle))
            {
                return;
            }
        }
        panic!("no {needle:?} on the notify socket within {limit:?}");
    }
}

fn pings(messages: &[String]) -> usize {
    messages.iter().filter(|m| m.contains("WATCHDOG=1")).count()
}

/// The honest stall: another process holds the state database's write lock
/// (`BEGIN EXCLUSIVE`), so the store's thread really blocks inside SQLite
/// (its busy timeout is 10 s) on the next poll's write. With `poll.timeout`
/// 2 s, the store is expected to finish any job within 2 s.
#[test]
fn a_stalled_store_turns_healthz_503_and_stops_the_watchdog_pings() {
    let server = FeedServer::start();
    server.set(
        "/a/feed",
        Route::feed(
            rss(&server, &[("1", "CSTO summit opens in Minsk without Armenia")]),
            "\"1\"",
        ),
    );
    let notify = NotifySocket::bind();
    let mut install = Install::new(&config(&server, LISTEN_ANY_LOOPBACK_PORT));
    install
        .env
        .push(("NOTIFY_SOCKET".into(), notify.path.to_string_lossy().into_owned()));
    // A ping every half second.
    install.env.push(("WATCHDOG_USEC".into(), "1000000".into()));
    let mut service = Service::start(&install);
    let addr = listening_address(&mut service);
    notify.wait_for("READY=1", Duration::from_secs(20));
    service.wait_for("feed=a", Duration::from_secs(20));

    // Healthy: pings arrive, /healthz is 200.
    assert!(pings(&notify.messages(Duration::from_millis(1600))) >= 2);
    assert_eq!(get(addr, "/healthz").0, 200);

    // Another process takes the write lock and keeps it.
    let lock = rusqlite::Connection::open(install.db_path()).unwrap();
    lock.busy_timeout(Duration::from_secs(10)).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let locked_at = Instant::now();

    let deadline = locked_at + Duration::from_secs(8);
    let body = loop {
        let (status, body) = get(addr, "/healthz");
        if status == 503 {
            break body;
        }
        assert!(Instant::now() < deadline, "/healthz still {status} {body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "stalled", "{body}");
    let stalled: Vec<&str> = health["stalled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["worker"].as_str().unwrap())
        .collect();
    assert!(stalled.contains(&"store"), "{body}");
    assert!(
        health["reason"].as_str().unwrap().contains("no progress"),
        "{body}"
    );
    // Whatever was sent before the check saw the stall, then silence.
    let _ = notify.messages(Duration::from_millis(600));
    let silent = notify.messages(Duration::from_millis(1500));
    assert!(
        locked_at.elapsed() < Duration::from_secs(10),
        "the lock outlived the store's busy timeout: the test ran too slowly to judge"
    );
    assert_eq!(pings(&silent), 0, "pings while stalled: {silent:?}");
    let scraped = scrape(addr);
    assert_eq!(
        value(&scraped, "cstowatch_worker_stalled", &[("worker", "store")]),
        Some(1.0)
    );

    // The lock is released: the write goes through, health and pings come back.
    lock.execute_batch("ROLLBACK").unwrap();
    notify.wait_for("WATCHDOG=1", Duration::from_secs(10));
    assert_eq!(get(addr, "/healthz").0, 200);
    service.wait_for("making progress again", Duration::from_secs(5));
    service.signal("TERM");
    assert_eq!(service.wait_exit(Duration::from_secs(10)).0, 0);
    assert!(
        service
            .seen
            .iter()
            .any(|l| l.contains("not pinging the systemd watchdog")),
        "the stall was not logged:\n{}",
        service.seen.join("\n")
    );
}

#[test]
fn a_bad_listen_address_is_a_config_error_with_file_and_line() {
    let server = FeedServer::start();
    let install = Install::new(&config(&server, "[http]\nlisten = \"localhost:http\"\n"));
    for command in [&["check"][..], &["run", "--once"]] {
        let run = install.run(command);
        run.expect_code(2);
        let said = format!("{}{}", run.stdout(), run.stderr());
        assert!(said.contains("cstowatch.toml:12"), "{command:?}: {said}");
        assert!(said.contains("http.listen"), "{command:?}: {said}");
    }
    // Every address is allowed when written, but a public one is warned about.
    install.write_config(&config(&server, "[http]\nlisten = \"0.0.0.0:9184\"\n"));
    let run = install.run(&["check"]);
    run.expect_code(0);
    assert!(run.stdout().contains("warning"), "{}", run.stdout());
    assert!(run.stdout().contains("http.listen"), "{}", run.stdout());
}

#[test]
fn no_listener_exists_unless_configured() {
    let server = FeedServer::start();
    server.set(
        "/a/feed",
        Route::feed(rss(&server, &[("1", "CSTO summit opens in Minsk")]), "\"1\""),
    );
    let install = Install::new(&config(&server, ""));
    let mut service = Service::start(&install);
    service.wait_for("feed=a", Duration::from_secs(20));
    assert_eq!(
        service_listening_sockets(&service),
        Vec::<u64>::new(),
        "a listening socket without [http] listen"
    );
    service.signal("TERM");
    assert_eq!(service.wait_exit(Duration::from_secs(10)).0, 0);
    assert!(!service.seen.iter().any(|l| l.contains("listening on")));
}

/// The inodes of the TCP sockets the service's process is listening on,
/// from /proc: its open sockets matched against the kernel's listen table.
fn service_listening_sockets(service: &Service) -> Vec<u64> {
    let pid = service.child.id();
    let mut open = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten() {
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let target = target.to_string_lossy().into_owned();
            if let Some(inode) = target.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']')) {
                open.push(inode.parse::<u64>().unwrap());
            }
        }
    }
    let mut listening = Vec::new();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // Field 3 is the state (0A = LISTEN), field 9 the inode.
            if fields.get(3) == Some(&"0A")
                && let Some(inode) = fields.get(9).and_then(|i| i.parse::<u64>().ok())
                && open.contains(&inode)
            {
                listening.push(inode);
            }
        }
    }
    listening
}

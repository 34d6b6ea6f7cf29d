//! The long-running service on the real binary: SIGTERM stops it cleanly and
//! quickly, SIGHUP swaps config and rules live and keeps the old ones when the
//! new files are broken.

mod support;

use std::time::{Duration, Instant};

use support::cli::Install;
use support::feed_server::{FeedServer, Route, rss};
use support::service::Service;

fn config(server: &FeedServer, feeds: &[&str]) -> String {
    let mut c = String::from("[poll]\ninterval = \"1s\"\ntimeout = \"2s\"\n[digest]\nevery = \"1h\"\n");
    for f in feeds {
        c.push_str(&format!(
            "[[feeds]]\nname = \"{f}\"\nurl = \"{}\"\n",
            server.url(&format!("/{f}/feed"))
        ));
    }
    c.push_str("[state]\npath = \"../state/cstowatch.db\"\n");
    c
}

#[test]
fn sigterm_exits_zero_within_ten_seconds_and_keeps_everything() {
    let server = FeedServer::start();
    server.set(
        "/a/feed",
        Route::feed(
            rss(&server, &[("1", "CSTO summit opens in Minsk without Armenia")]),
            "\"1\"",
        ),
    );
    // A feed that hangs: its poll is in flight when SIGTERM arrives.
    server.set("/slow/feed", Route::Slow(Duration::from_secs(60)));
    let install =
        Install::new(&config(&server, &["a", "slow"]).replace("timeout = \"2s\"", "timeout = \"60s\""));
    let mut service = Service::start(&install);
    service.wait_for("feed=a", Duration::from_secs(20));
    service.signal("TERM");
    let (code, took) = service.wait_exit(Duration::from_secs(10));
    assert_eq!(code, 0, "log:\n{}", service.seen.join("\n"));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(install.count("SELECT count(*) FROM items"), 1);
    // The database is whole: a new process opens it and sees the item.
    install.run(&["status"]).expect_code(0);
}

#[test]
fn sighup_reloads_config_and_rules_and_keeps_the_old_on_a_broken_file() {
    let server = FeedServer::start();
    server.set(
        "/a/feed",
        Route::feed(
            rss(&server, &[("1", "CSTO summit opens in Minsk without Armenia")]),
            "\"1\"",
        ),
    );
    server.set(
        "/b/feed",
        Route::feed(
            rss(
                &server,
                &[("2", "Azerbaijani troops fire on Armenian border posts in Syunik")],
            ),
            "\"2\"",
        ),
    );
    let install = Install::new(&config(&server, &["a"]));
    let mut service = Service::start(&install);
    service.wait_for("feed=a", Duration::from_secs(20));

    // A broken rules file: the reload is refused, the service goes on polling with the old rules.
    let rules_path = install.dir.path().join("config/rules.toml");
    let good_rules = std::fs::read_to_string(&rules_path).unwrap();
    std::fs::write(&rules_path, "this is = not [valid toml\n").unwrap();
    service.signal("HUP");
    let line = service.wait_for("reload failed", Duration::from_secs(10));
    assert!(line.contains("keeping the old"), "{line}");
    service.wait_for("rules.toml:1", Duration::from_secs(5));
    service.wait_for("feed=a", Duration::from_secs(10));

    // Good files again, with a second feed: it is polled at once.
    std::fs::write(&rules_path, &good_rules).unwrap();
    install.write_config(&config(&server, &["a", "b"]));
    service.signal("HUP");
    service.wait_for("reloaded", Duration::from_secs(10));
    service.wait_for("feed=b", Duration::from_secs(20));
    assert!(!server.requests("/b/feed").is_empty());

    service.signal("TERM");
    let (code, _) = service.wait_exit(Duration::from_secs(10));
    assert_eq!(code, 0);
    assert_eq!(install.count("SELECT count(*) FROM items"), 2);
    assert_eq!(install.count("SELECT count(*) FROM items WHERE relevant = 1"), 2);
}

/// An address on 127.0.0.1 where nothing listens: connections are refused.
fn refusing_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/feed")
}

/// Every feed refusing connections is the network being down, not each
/// feed's fault: the failures are recorded, they do not count against the
/// feeds (no backoff). One
/// feed refusing while another answers is that feed's failure.
#[test]
fn the_network_being_down_is_not_held_against_the_feeds() {
    let (dead_a, dead_b) = (refusing_url(), refusing_url());
    let down = format!(
        "[poll]\ninterval = \"1s\"\ntimeout = \"2s\"\n[digest]\nevery = \"1h\"\n\
         [[feeds]]\nname = \"a\"\nurl = \"{dead_a}\"\n[[feeds]]\nname = \"b\"\nurl = \"{dead_b}\"\n\
         [state]\npath = \"../state/cstowatch.db\"\n"
    );
    let install = Install::new(&down);
    let mut service = Service::start(&install);
    service.wait_for("treating it as the network being down", Duration::from_secs(20));
    // A few more rounds of both feeds failing.
    for _ in 0..4 {
        service.wait_for("poll failed", Duration::from_secs(20));
    }
    service.signal("TERM");
    assert_eq!(service.wait_exit(Duration::from_secs(10)).0, 0);
    assert_eq!(
        install.count("SELECT count(*) FROM feeds WHERE last_status = 'network'"),
        2,
        "both failures are recorded"
    );
    // Only the very first failure can count: before it nothing was known of
    // the other feed. Every later one found all feeds unreachable.
    assert!(
        install.count("SELECT sum(consecutive_failures) FROM feeds") <= 1,
        "failures counted against the feeds while the network was down"
    );

    // One feed answers: the other's refusals are its own, and count.
    let server = FeedServer::start();
    server.set(
        "/a/feed",
        Route::feed(rss(&server, &[("1", "CSTO summit opens in Minsk")]), "\"1\""),
    );
    install.write_config(&down.replace(&dead_a, &server.url("/a/feed")));
    let mut service = Service::start(&install);
    service.wait_for("feed=a", Duration::from_secs(20));
    let deadline = Instant::now() + Duration::from_secs(20);
    while install.count("SELECT consecutive_failures FROM feeds WHERE name = 'b'") == 0 {
        assert!(Instant::now() < deadline, "b's failure never counted");
        std::thread::sleep(Duration::from_millis(50));
    }
    service.signal("TERM");
    assert_eq!(service.wait_exit(Duration::from_secs(10)).0, 0);
}

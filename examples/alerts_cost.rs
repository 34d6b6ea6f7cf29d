//! What one evaluation of the operator alerts costs the store's thread at
//! scale: a state database of N feeds with M items each (4 KB of text
//! each, as articles are stored), a tenth of the
//! feeds failing for seven hours, one `alerts::raise` (every feed's health, every item's
//! arrival, the silence models, the reconciliation) timed against reading
//! every feed's state (what `status` reads anyway), medians of 7 runs.
//!
//! ```text
//! cargo run --release --example alerts_cost -- [--feeds 10000] [--items 20]
//! ```

use std::time::{Duration, Instant};

use cstowatch::config::Config;
use cstowatch::dedup::DedupKeys;
use cstowatch::item::Item;
use cstowatch::store::Store;
use cstowatch::store::feeds::FeedFailure;
use cstowatch::store::items::{ItemTags, NewItem, PollSuccess};
use jiff::{SignedDuration, Timestamp};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| -> anyhow::Result<usize> {
        match args.iter().position(|a| a == name) {
            Some(i) => Ok(args.get(i + 1).map(|v| v.parse()).transpose()?.unwrap_or(default)),
            None => Ok(default),
        }
    };
    let (feeds, items) = (arg("--feeds", 10_000)?, arg("--items", 20)?);
    let dir = tempfile::tempdir()?;
    let mut store = Store::open(&dir.path().join("state.db"))?;
    let now = Timestamp::now();
    let mut config = String::from("[telegram]\nadmin_chat = \"@ops_room\"\n");
    let body = "The delegations met in Minsk to discuss the treaty. ".repeat(80);
    let started = Instant::now();
    for f in 0..feeds {
        let name = format!("feed-{f}");
        let url = format!("https://site{f}.example/feed/");
        config.push_str(&format!("[[feeds]]\nname = \"{name}\"\nurl = \"{url}\"\n"));
        let new_items = (0..items)
            .map(|i| {
                let item = Item {
                    feed: name.clone(),
                    guid: Some(format!("{f}-{i}")),
                    url: Some(url::Url::parse(&format!("https://site{f}.example/{i}/"))?),
                    title: format!("Item {i} of feed {f}"),
                    summary: String::new(),
                    // Articles are stored with their text: a few KB, as on the real feeds.
                    content: body.clone(),
                    published: now - SignedDuration::from_hours(6 * (items - i) as i64),
                    dated: true,
                    updated: None,
                    categories: Vec::new(),
                };
                let keys = DedupKeys::of(&item);
                Ok(NewItem {
                    item,
                    keys,
                    tags: ItemTags::default(),
                    names: Vec::new(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        store.record_poll_success(PollSuccess {
            name: &name,
            url: &url,
            at: now,
            status: "200",
            etag: None,
            last_modified: None,
            items: new_items,
            backfill: Duration::from_secs(48 * 3600),
            next_poll_at: now,
            warning: None,
        })?;
        // A tenth of the feeds has failed for seven hours: the first
        // evaluation tells of them, the later ones find nothing new.
        if f % 10 == 0 {
            for at in [now - SignedDuration::from_hours(7), now] {
                store.record_feed_failure(&FeedFailure {
                    name: &name,
                    url: &url,
                    at,
                    kind: "http-503",
                    message: "HTTP status 503",
                    network_down: false,
                    next_poll_at: now,
                })?;
            }
        }
    }
    println!(
        "{feeds} feeds x {items} items written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let config =
        Config::from_toml(&config, &dir.path().join("cstowatch.toml")).map_err(|p| anyhow::anyhow!("{p}"))?;

    let median = |f: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<Duration> {
        let mut times = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            f()?;
            times.push(t.elapsed());
        }
        times.sort();
        Ok(times[3])
    };
    let feed_states = median(&mut || {
        store.feed_states()?;
        Ok(())
    })?;
    let mut told = 0;
    let evaluation = median(&mut || {
        told +=
            cstowatch::alerts::raise(&store, &config, Some("telegram:@ops_room"), Timestamp::now())?.len();
        Ok(())
    })?;
    println!(
        "feed_states: {:.1} ms; alerts::raise: {:.1} ms ({:.1}x); {told} line(s) told over the 7 runs",
        feed_states.as_secs_f64() * 1e3,
        evaluation.as_secs_f64() * 1e3,
        evaluation.as_secs_f64() / feed_states.as_secs_f64()
    );
    Ok(())
}

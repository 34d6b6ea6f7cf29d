//! Story grouping cost: `story::group` over 10,000 pending items, tagged
//! beforehand with the shipped rules (tagging is not measured here; see
//! `benches/tagger.rs`).
//!
//! The items are the repository's labelled texts (the story set, the
//! tagger's dev corpus, challenge and real-style sets: about 600 distinct
//! titles and leads in English, Russian and Armenian) cycled to 10,000,
//! each copy published a little later than the last. Two spreads:
//! - over 7 days: a backlog after a week without delivery; a story window
//!   (48 h) holds about 2,900 of them;
//! - within 48 hours: the worst case, every item in every other's window.
//!
//! And the grouping step as a delivery cycle runs it (`story::assign`:
//! read the ungrouped items from a real SQLite file, re-tag their title and
//! lead, group, write the story ids), beside the rest of the cycle those
//! 10,000 items cost: the pipeline tagging them, storing them, and the
//! digest of them rendered (a dry run to a sink). All 10,000 are marked
//! relevant, so every one is grouped and rendered.
//!
//! Run: `cargo bench --bench story` (short samples: the machine is shared).

use std::hash::{Hash, Hasher};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use cstowatch::config::Config;
use cstowatch::dedup::DedupKeys;
use cstowatch::deliver::{Deliverer, Mode};
use cstowatch::item::Item;
use cstowatch::pipeline::tag_new_item;
use cstowatch::store::StoreHandle;
use cstowatch::store::items::{NewItem, PollSuccess};
use cstowatch::story::assign::group_pending;
use cstowatch::story::{GroupingOptions, Story, StoryItem, group};
use cstowatch::tag::{Document, Rules};
use jiff::{SignedDuration, Timestamp};

const PENDING: usize = 10_000;

#[path = "support/labelled_texts.rs"]
mod labelled_texts;
use labelled_texts::Text;

fn texts() -> Vec<Text> {
    labelled_texts::read(&[
        "stories/clusters.jsonl",
        "corpus/dev.jsonl",
        "tagger/challenge.jsonl",
        "tagger/realstyle.jsonl",
    ])
}

fn bench_grouping(c: &mut Criterion) {
    let rules = Rules::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rules.toml"))
        .expect("the shipped rules")
        .0;
    let texts = texts();
    let start = Timestamp::from_second(1_772_500_000).expect("a valid time");
    let options = GroupingOptions::default();
    let mut group_bench = c.benchmark_group("story_grouping");
    group_bench
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    for (name, spread) in [
        ("10k_items_over_7_days", SignedDuration::from_hours(7 * 24)),
        ("10k_items_within_48h", SignedDuration::from_hours(47)),
    ] {
        let step = spread / PENDING as i32;
        let taggings: Vec<_> = texts
            .iter()
            .map(|t| {
                rules.tag(&Document {
                    title: &t.title,
                    summary: &t.summary,
                    content: &t.content,
                })
            })
            .collect();
        let items: Vec<StoryItem> = (0..PENDING)
            .map(|i| {
                let t = &texts[i % texts.len()];
                StoryItem::new(&t.title, &t.summary, &t.content, "feed", start + step * i as i32)
                    .with_tagging(&taggings[i % texts.len()])
            })
            .collect();
        let stories = group(&items, &options);
        println!(
            "{name}: {} items, {} stories, fingerprint {:016x}",
            items.len(),
            stories.len(),
            fingerprint(&stories)
        );
        group_bench.bench_function(name, |b| b.iter(|| group(black_box(&items), &options)));
    }
    group_bench.finish();
}

/// 10,000 items as the pipeline hands them to the store: the labelled texts
/// cycled, each with its own link (so dedup keeps them all), three feeds,
/// published over the last 7 days.
fn pending_items(texts: &[Text], now: Timestamp) -> Vec<Item> {
    let step = SignedDuration::from_hours(7 * 24) / PENDING as i32;
    (0..PENDING)
        .map(|i| {
            let t = &texts[i % texts.len()];
            Item {
                feed: format!("feed {}", i % 3),
                guid: Some(format!("item-{i}")),
                url: url::Url::parse(&format!("https://news{}.example/2026/{i}/", i % 3)).ok(),
                title: t.title.clone(),
                summary: t.summary.clone(),
                content: t.content.clone(),
                published: now - step * (PENDING - i) as i32,
                updated: None,
                dated: true,
                categories: Vec::new(),
            }
        })
        .collect()
}

fn store_all(store: &StoreHandle, rt: &tokio::runtime::Runtime, items: Vec<NewItem>, now: Timestamp) {
    rt.block_on(store.call(move |s| {
        s.record_poll_success(PollSuccess {
            name: "bench",
            url: "https://news.example/feed",
            at: now,
            status: "200",
            etag: None,
            last_modified: None,
            items,
            backfill: Duration::from_secs(30 * 86_400),
            next_poll_at: now,
            warning: None,
        })
    }))
    .expect("stored");
}

fn bench_cycle(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = Arc::new(
        Rules::load(&root.join("config/rules.toml"))
            .expect("the shipped rules")
            .0,
    );
    let texts = texts();
    let now = Timestamp::now();
    let items = pending_items(&texts, now);
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let tagged = || -> Vec<NewItem> {
        items
            .iter()
            .map(|item| {
                let keys = DedupKeys {
                    guid: item.guid.clone(),
                    url: item.url.as_ref().map(|u| u.to_string()),
                    title: None,
                    text: None,
                };
                let mut new = tag_new_item(&rules, item.clone(), keys);
                new.tags.relevant = true;
                new
            })
            .collect()
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let prepared = dir.path().join("prepared.db");
    {
        let store = StoreHandle::open(&prepared).expect("a database");
        store_all(&store, &rt, tagged(), now);
    }
    // The same items as stored before names were kept with them (schema
    // 5): grouping tags every one again.
    let prepared_without_names = dir.path().join("prepared_without_names.db");
    std::fs::copy(&prepared, &prepared_without_names).expect("a copy");
    rusqlite::Connection::open(&prepared_without_names)
        .and_then(|c| c.execute("DELETE FROM item_names", []))
        .expect("names forgotten");
    let copy_of = |from: &Path, name: &str| {
        let path = dir.path().join(name);
        std::fs::copy(from, &path).expect("a copy");
        StoreHandle::open(&path).expect("the copy opens")
    };
    let grouped = copy_of(&prepared, "grouped.db");
    let regrouped = copy_of(&prepared_without_names, "regrouped.db");
    for (store, file, how) in [
        (&grouped, "grouped.db", "names stored"),
        (&regrouped, "regrouped.db", "tagged again"),
    ] {
        let report = rt
            .block_on(group_pending(
                store,
                Arc::clone(&rules),
                GroupingOptions::default(),
            ))
            .expect("grouped");
        println!(
            "group step ({how}): {} items into {} stories, {} pairs of items together",
            report.grouped,
            report.new_stories,
            pairs_together(&dir.path().join(file))
        );
    }
    let config = Config::from_toml("", &dir.path().join("cstowatch.toml")).expect("a config");
    let deliverer = Deliverer::new(&config, None)
        .expect("a deliverer")
        .with_output(Box::new(std::io::sink()));

    let mut bench = c.benchmark_group("cycle_of_10k_pending");
    bench
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15));
    bench.bench_function("pipeline_tags_them", |b| b.iter(|| black_box(tagged())));
    let mut n = 0;
    bench.bench_function("store_writes_them", |b| {
        b.iter_batched(
            || {
                n += 1;
                (
                    StoreHandle::open(&dir.path().join(format!("write{n}.db"))).expect("a database"),
                    tagged(),
                )
            },
            |(store, items)| store_all(&store, &rt, items, now),
            BatchSize::PerIteration,
        )
    });
    for (name, from) in [
        ("group_step", &prepared),
        ("group_step_tagging_again", &prepared_without_names),
    ] {
        let mut n = 0;
        bench.bench_function(name, |b| {
            b.iter_batched(
                || {
                    n += 1;
                    copy_of(from, &format!("{name}{n}.db"))
                },
                |store| {
                    rt.block_on(group_pending(
                        &store,
                        Arc::clone(&rules),
                        GroupingOptions::default(),
                    ))
                    .expect("grouped")
                },
                BatchSize::PerIteration,
            )
        });
    }
    bench.bench_function("digest_renders_them", |b| {
        b.iter(|| {
            rt.block_on(deliverer.deliver(&grouped, Timestamp::now(), Mode::Force, true))
                .expect("rendered")
        })
    });
    bench.finish();
}

/// A hash of the stories (each one's headline and other items, in order):
/// equal across two builds when they group the same items alike.
fn fingerprint(stories: &[Story]) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    for story in stories {
        story.items().collect::<Vec<_>>().hash(&mut hasher);
    }
    hasher.finish()
}

/// How many pairs of items the grouping stored in a database puts in one
/// story: equal counts (and story counts) from two ways of grouping the
/// same items are a cheap sign that they agree.
fn pairs_together(database: &Path) -> i64 {
    rusqlite::Connection::open(database)
        .and_then(|c| {
            c.query_row(
                "SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM
                     (SELECT count(*) AS n FROM story_items GROUP BY story_id)",
                [],
                |r| r.get(0),
            )
        })
        .expect("counted")
}

criterion_group!(benches, bench_grouping, bench_cycle);
criterion_main!(benches);

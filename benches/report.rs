//! The weekly report's cost: rendering one chart to PNG, and counting a
//! fortnight's items into stories (tagging for names, `story::group`,
//! bucketing by day), the two steps between the store and the queued notice.
//!
//! Items are the repository's labelled texts (as `benches/story.rs` uses
//! them) cycled to 1,000 relevant items spread over 16 days (the two weeks
//! and the 48 h lead-in): about 60 a day, a busy news fortnight.
//!
//! Run: `cargo bench --bench report` (short samples: the machine is shared).

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use cstowatch::report::{Week, WeeklyReport, chart, stories};
use cstowatch::store::items::{ItemTags, StoredItem};
use cstowatch::tag::{Document, Rules};
use jiff::SignedDuration;

const ITEMS: usize = 1_000;

#[path = "support/labelled_texts.rs"]
mod labelled_texts;
use labelled_texts::Text;

fn texts() -> Vec<Text> {
    labelled_texts::read(&[
        "stories/clusters.jsonl",
        "corpus/dev.jsonl",
        "tagger/realstyle.jsonl",
    ])
}

fn bench_report(c: &mut Criterion) {
    let rules = Rules::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rules.toml"))
        .expect("the shipped rules")
        .0;
    let zone = jiff::tz::TimeZone::get("Asia/Yerevan").expect("the bundled tz database");
    let week = Week::before(jiff::civil::date(2026, 11, 30), &zone, "Asia/Yerevan").expect("a week");
    let start = week.previous_start() - SignedDuration::from_hours(48);
    let step = SignedDuration::from_hours(16 * 24) / ITEMS as i32;
    let texts = texts();
    let relevant: Vec<(&Text, Vec<String>)> = texts
        .iter()
        .filter_map(|t| {
            let tagging = rules.tag(&Document {
                title: &t.title,
                summary: &t.summary,
                content: &t.content,
            });
            tagging
                .relevant
                .then(|| (t, tagging.tags.iter().map(|s| s.to_string()).collect()))
        })
        .collect();
    let items: Vec<StoredItem> = (0..ITEMS)
        .map(|i| {
            let (t, tags) = &relevant[i % relevant.len()];
            StoredItem {
                id: i as i64,
                feed: "feed".into(),
                url: None,
                title: t.title.clone(),
                summary: t.summary.clone(),
                content: t.content.clone(),
                published: start + step * i as i32,
                tags: ItemTags {
                    tags: tags.clone(),
                    score: 1.0,
                    relevant: true,
                },
            }
        })
        .collect();
    let report = WeeklyReport::from_stories(week.clone(), &stories(&items, &rules));
    println!(
        "{} items, {} stories this week, top tags {:?}",
        items.len(),
        report.stories_this_week,
        &report.top_tags[..report.top_tags.len().min(3)]
    );
    let mut group = c.benchmark_group("weekly_report");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("render_png_1280x720", |b| {
        b.iter(|| chart::render_png(black_box(&report)).expect("a chart"))
    });
    group.bench_function("count_stories_1000_items", |b| {
        b.iter(|| WeeklyReport::from_stories(week.clone(), &stories(black_box(&items), &rules)))
    });
    group.finish();
}

criterion_group!(benches, bench_report);
criterion_main!(benches);

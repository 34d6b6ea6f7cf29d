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
//! Run: `cargo bench --bench story` (short samples: the machine is shared).

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use cstowatch::story::{GroupingOptions, StoryItem, group};
use cstowatch::tag::{Document, Rules};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

const PENDING: usize = 10_000;

#[derive(Deserialize)]
struct Text {
    title: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    content: String,
}

fn texts() -> Vec<Text> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let files = [
        "stories/clusters.jsonl",
        "corpus/dev.jsonl",
        "tagger/challenge.jsonl",
        "tagger/realstyle.jsonl",
    ];
    files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(root.join(f)).expect("a labelled set");
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str::<Text>(l).expect("a JSON line"))
                .collect::<Vec<_>>()
        })
        .collect()
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
        println!("{name}: {} items, {} stories", items.len(), stories.len());
        group_bench.bench_function(name, |b| b.iter(|| group(black_box(&items), &options)));
    }
    group_bench.finish();
}

criterion_group!(benches, bench_grouping);
criterion_main!(benches);

//! Quality of story grouping on the labelled set
//! (`tests/fixtures/stories/clusters.jsonl`, see the README beside it):
//! pairwise precision and recall of the rule the service uses must reach
//! 0.98 and 0.85. Each item is tagged with the shipped rules
//! (`config/rules.toml`), as in the pipeline, so the names grouping reads
//! are the tagger's real hits.
//!
//! Pairwise: every pair of items grouped together is a true positive when
//! the labels put them in one story, a false positive (two events merged)
//! otherwise; every labelled pair left apart is a false negative.
//!
//! Run with `-- --nocapture` to see the figures, the alternatives measured
//! beside the chosen rule, and every pair the chosen rule gets wrong.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cstowatch::story::{GroupingOptions, Linkage, Similarity, Story, StoryItem, group};
use cstowatch::tag::{Document, Rules};
use jiff::Timestamp;
use serde::Deserialize;

const MIN_PRECISION: f64 = 0.98;
const MIN_RECALL: f64 = 0.85;

#[derive(Deserialize)]
struct Labelled {
    id: String,
    story: String,
    feed: String,
    published: Timestamp,
    title: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    content: String,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn labelled() -> Vec<Labelled> {
    let path = repo().join("tests/fixtures/stories/clusters.jsonl");
    let text = std::fs::read_to_string(&path).expect("the labelled story set");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), n + 1)))
        .collect()
}

fn rules() -> Rules {
    match Rules::load(&repo().join("config/rules.toml")) {
        Ok((rules, _)) => rules,
        Err(problems) => panic!("the shipped rules do not compile:\n{problems}"),
    }
}

fn story_items<'a>(set: &'a [Labelled], rules: &'a Rules) -> Vec<StoryItem<'a>> {
    set.iter()
        .map(|l| {
            let tagging = rules.tag(&Document {
                title: &l.title,
                summary: &l.summary,
                content: &l.content,
            });
            StoryItem::new(&l.title, &l.summary, &l.content, &l.feed, l.published).with_tagging(&tagging)
        })
        .collect()
}

#[derive(Debug, Default, Clone, Copy)]
struct PairCounts {
    true_positive: usize,
    false_positive: usize,
    false_negative: usize,
}

impl PairCounts {
    fn precision(&self) -> f64 {
        let grouped = self.true_positive + self.false_positive;
        if grouped == 0 {
            1.0
        } else {
            self.true_positive as f64 / grouped as f64
        }
    }

    fn recall(&self) -> f64 {
        let labelled = self.true_positive + self.false_negative;
        if labelled == 0 {
            1.0
        } else {
            self.true_positive as f64 / labelled as f64
        }
    }
}

/// A grouping's pairwise counts, and the pairs it got wrong.
struct Scored {
    counts: PairCounts,
    /// Pairs of different stories grouped together.
    merged: Vec<(usize, usize)>,
    /// Pairs of one story left apart.
    split: Vec<(usize, usize)>,
}

fn score(set: &[Labelled], stories: &[Story]) -> Scored {
    let mut story_of = vec![usize::MAX; set.len()];
    for (s, story) in stories.iter().enumerate() {
        for i in story.items() {
            assert_eq!(story_of[i], usize::MAX, "item {} is in two stories", set[i].id);
            story_of[i] = s;
        }
    }
    assert!(
        story_of.iter().all(|&s| s != usize::MAX),
        "an item is in no story"
    );
    let mut counts = PairCounts::default();
    let (mut merged, mut split) = (Vec::new(), Vec::new());
    for a in 0..set.len() {
        for b in a + 1..set.len() {
            let same_label = set[a].story == set[b].story;
            let same_story = story_of[a] == story_of[b];
            match (same_label, same_story) {
                (true, true) => counts.true_positive += 1,
                (false, true) => {
                    counts.false_positive += 1;
                    merged.push((a, b));
                }
                (true, false) => {
                    counts.false_negative += 1;
                    split.push((a, b));
                }
                (false, false) => {}
            }
        }
    }
    Scored {
        counts,
        merged,
        split,
    }
}

fn describe(l: &Labelled) -> String {
    format!("{} [{}] {:?}", l.id, l.feed, l.title)
}

#[test]
fn grouping_meets_pairwise_precision_and_recall_on_the_labelled_set() {
    let set = labelled();
    let rules = rules();
    let items = story_items(&set, &rules);
    let labels: HashMap<&str, usize> = set.iter().fold(HashMap::new(), |mut m, l| {
        *m.entry(l.story.as_str()).or_default() += 1;
        m
    });
    println!(
        "labelled set: {} items, {} stories ({} with two or more items)",
        set.len(),
        labels.len(),
        labels.values().filter(|&&n| n > 1).count()
    );

    let chosen = GroupingOptions::default();
    let stories = group(&items, &chosen);
    let Scored {
        counts,
        merged,
        split,
    } = score(&set, &stories);
    println!(
        "chosen rule {chosen:?}\n  {} stories; pairs: {} right, {} merged wrongly, {} split wrongly; \
         precision {:.3}, recall {:.3}",
        stories.len(),
        counts.true_positive,
        counts.false_positive,
        counts.false_negative,
        counts.precision(),
        counts.recall()
    );
    for (a, b) in &merged {
        println!("  MERGED {}\n     and {}", describe(&set[*a]), describe(&set[*b]));
    }
    for (a, b) in &split {
        println!("  SPLIT  {}\n     and {}", describe(&set[*a]), describe(&set[*b]));
    }

    println!("alternatives (precision / recall by threshold):");
    let mut line = "  cross-language threshold (same-language rule as chosen):".to_string();
    for cross in [None, Some(0.2), Some(0.3), Some(0.4), Some(0.5), Some(0.6)] {
        let options = GroupingOptions {
            cross_language: cross,
            ..chosen
        };
        let c = score(&set, &group(&items, &options)).counts;
        line += &format!(" {cross:?}: {:.3}/{:.3}", c.precision(), c.recall());
    }
    println!("{line}");
    for (similarity, linkage, names) in [
        (Similarity::TfIdfCosine, Linkage::Average, true),
        (Similarity::TfIdfCosine, Linkage::Average, false),
        (Similarity::TfIdfCosine, Linkage::Single, true),
        (Similarity::Jaccard, Linkage::Average, true),
        (Similarity::Jaccard, Linkage::Single, true),
    ] {
        let mut line = format!("  {similarity:?} {linkage:?} shared-name={names}:");
        for threshold in [0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5] {
            let options = GroupingOptions {
                similarity,
                linkage,
                threshold,
                require_shared_name: names,
                ..chosen
            };
            let c = score(&set, &group(&items, &options)).counts;
            line += &format!(" {threshold}: {:.3}/{:.3}", c.precision(), c.recall());
        }
        println!("{line}");
    }

    assert!(
        counts.precision() >= MIN_PRECISION && counts.recall() >= MIN_RECALL,
        "precision {:.3} (needs {MIN_PRECISION}), recall {:.3} (needs {MIN_RECALL})",
        counts.precision(),
        counts.recall()
    );
}

#[test]
fn the_labelled_set_is_as_the_readme_says() {
    let set = labelled();
    let mut sizes: HashMap<&str, usize> = HashMap::new();
    for l in &set {
        *sizes.entry(l.story.as_str()).or_default() += 1;
    }
    assert!(set.len() >= 120, "{} items", set.len());
    assert!(sizes.values().filter(|&&n| n > 1).count() >= 40);
    let ids: std::collections::HashSet<&str> = set.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids.len(), set.len(), "ids are unique");
    assert!(Path::new(&repo().join("tests/fixtures/stories/README.md")).exists());
}

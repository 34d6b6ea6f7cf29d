//! The grouping step of a delivery cycle: puts every relevant item not yet
//! in a story into one, and stores the decision, before any digest is
//! rendered.
//!
//! Items are placed among the stories they may join: the grouped items
//! published within the story window before the earliest new one
//! (delivered or not). Only the new items are judged ([`place`], the rule
//! of [`group`] applied to each new item against the stored stories); the
//! grouped items keep their stories instead of being grouped again, which
//! cost a delivery cycle of 10,000 feeds 0.2 s to place 75 items among
//! 3,363 (BENCHMARKS.md). A new item that lands with grouped items joins
//! their story (the one most of them are in), and otherwise starts a story.
//! [`decide_by_regrouping`] keeps the old way, and a test checks both
//! decide alike, step by step, on the labelled story set. Stored story ids
//! never change, so a restart or a retried digest renders the same
//! stories, and an item on an event already posted joins that story: the
//! digest then says "more on".
//!
//! The names grouping compares are the tagger's hits in the title and lead,
//! stored with each item when the pipeline tagged it (migration 6). An item
//! stored before that, or re-tagged since, has none stored and is tagged
//! again here, on those few words only (the body past the lead is never
//! read), with the rules in force.
//!
//! Only items that no destination has received are grouped: an item
//! delivered before grouping existed (or while it failed) keeps no story.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;

use super::{GroupingOptions, StoryItem, group, place};
use crate::store::stories::{GroupingRow, StoryAssignment};
use crate::store::{StoreError, StoreHandle};
use crate::tag::{Document, Rules};

/// What one grouping step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupingReport {
    /// Items given a story.
    pub grouped: usize,
    /// Of those, items that joined a story that already existed.
    pub joined: usize,
    /// Stories created.
    pub new_stories: usize,
    /// Grouped items read as the stories new ones may join.
    pub context: usize,
}

impl std::fmt::Display for GroupingReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "grouping: {} item(s) grouped, {} new stor(ies), {} joined an earlier story",
            self.grouped, self.new_stories, self.joined
        )
    }
}

/// Why the grouping step failed (the digest still goes out: its items are
/// then shown one per entry).
#[derive(Debug, thiserror::Error)]
pub enum GroupingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("story grouping stopped unexpectedly: {0}")]
    Task(String),
}

/// Groups every relevant item not yet in a story and stores the result:
/// reads on the store's thread, groups on the blocking pool (10,000 items
/// take a fraction of a second, see BENCHMARKS.md), writes in one
/// transaction.
pub async fn group_pending(
    store: &StoreHandle,
    rules: Arc<Rules>,
    options: GroupingOptions,
) -> Result<GroupingReport, GroupingError> {
    let window = options.window;
    let (ungrouped, context) = store
        .read(move |s| {
            let ungrouped = s.ungrouped_items()?;
            let Some(earliest) = ungrouped.iter().map(|r| r.published).min() else {
                return Ok((ungrouped, Vec::new()));
            };
            let since = earliest.checked_sub(window).unwrap_or(Timestamp::MIN);
            Ok((ungrouped, s.grouped_items_since(since)?))
        })
        .await?;
    if ungrouped.is_empty() {
        return Ok(GroupingReport::default());
    }
    let context_len = context.len();
    let assignments = tokio::task::spawn_blocking(move || decide(&ungrouped, &context, &rules, &options))
        .await
        .map_err(|e| GroupingError::Task(e.to_string()))?;
    let mut report = GroupingReport {
        context: context_len,
        ..GroupingReport::default()
    };
    for a in &assignments {
        report.grouped += a.items.len();
        if a.story.is_some() {
            report.joined += a.items.len();
        }
    }
    report.new_stories = store.call(move |s| s.assign_stories(&assignments)).await?;
    Ok(report)
}

/// The grouping step as a delivery cycle runs it, just before rendering: a
/// failure is logged and delivery goes on, its items shown one per entry
/// (a digest late for want of grouping helps no reader).
pub async fn group_before_delivery(store: &StoreHandle, rules: Arc<Rules>) {
    let started = std::time::Instant::now();
    match group_pending(store, rules, GroupingOptions::default()).await {
        Ok(report) if report.grouped > 0 => {
            let duration_ms = started.elapsed().as_millis() as u64;
            tracing::info!(duration_ms, context = report.context, "{report}")
        }
        Ok(_) => {}
        Err(e) => tracing::error!("story grouping failed, items go out one per digest entry: {e}"),
    }
}

/// The grouping decisions for `ungrouped` items, given the grouped items
/// (`context`) whose stories they may join: each new item is placed into
/// the stored stories (or a new one) by [`super::place`], the stored items
/// keeping their stories. Pure: the same rows give the same decisions.
pub fn decide(
    ungrouped: &[GroupingRow],
    context: &[GroupingRow],
    rules: &Rules,
    options: &GroupingOptions,
) -> Vec<StoryAssignment> {
    let rows: Vec<&GroupingRow> = context.iter().chain(ungrouped).collect();
    let taggings = taggings(&rows, rules);
    let items = story_items(&rows, &taggings);
    let stored: Vec<Option<i64>> = rows.iter().map(|r| r.story_id).collect();
    assignments(&rows, place(&items, &stored, options))
}

/// [`decide`] by grouping every row again ([`group`]) and keeping the
/// stories that hold new items: what the step did before it placed only
/// the new items, kept to check that both decide alike.
pub fn decide_by_regrouping(
    ungrouped: &[GroupingRow],
    context: &[GroupingRow],
    rules: &Rules,
    options: &GroupingOptions,
) -> Vec<StoryAssignment> {
    let rows: Vec<&GroupingRow> = context.iter().chain(ungrouped).collect();
    let taggings = taggings(&rows, rules);
    let items = story_items(&rows, &taggings);
    assignments(&rows, group(&items, options))
}

/// Only items stored without their names are tagged again.
fn taggings<'r>(rows: &[&GroupingRow], rules: &'r Rules) -> Vec<Option<crate::tag::Tagging<'r>>> {
    rows.iter()
        .map(|r| {
            r.names.is_none().then(|| {
                rules.tag(&Document {
                    title: &r.title,
                    summary: &r.summary,
                    content: &r.lead_content,
                })
            })
        })
        .collect()
}

fn story_items<'a>(
    rows: &[&'a GroupingRow],
    taggings: &'a [Option<crate::tag::Tagging<'a>>],
) -> Vec<StoryItem<'a>> {
    rows.iter()
        .zip(taggings)
        .map(|(r, tagging)| {
            let item = StoryItem::new(&r.title, &r.summary, &r.lead_content, &r.feed, r.published);
            match tagging {
                Some(tagging) => item.with_tagging(tagging),
                None => StoryItem {
                    names: r.names.iter().flatten().map(String::as_str).collect(),
                    ..item
                },
            }
        })
        .collect()
}

/// What to store for each story that holds new items: the stored story
/// most of its items are in (or a new one), its new items, its headline.
fn assignments(rows: &[&GroupingRow], stories: Vec<super::Story>) -> Vec<StoryAssignment> {
    let mut assignments = Vec::new();
    for story in stories {
        let members: Vec<usize> = story.items().collect();
        let new: Vec<i64> = members
            .iter()
            .filter(|&&i| rows[i].story_id.is_none())
            .map(|&i| rows[i].id)
            .collect();
        if new.is_empty() {
            continue;
        }
        // The existing story most of the grouped members are in; ties go to
        // the older story (the lower id).
        let mut votes: HashMap<i64, usize> = HashMap::new();
        for &i in &members {
            if let Some(s) = rows[i].story_id {
                *votes.entry(s).or_default() += 1;
            }
        }
        let target = votes
            .into_iter()
            .max_by(|(sa, va), (sb, vb)| va.cmp(vb).then(sb.cmp(sa)))
            .map(|(s, _)| s);
        // The headline must be an item of the story it heads: the clearest
        // one that is new or already in the target story.
        let headline = members
            .iter()
            .find(|&&i| rows[i].story_id.is_none() || rows[i].story_id == target)
            .map(|&i| rows[i].id)
            .unwrap_or(new[0]);
        assignments.push(StoryAssignment {
            story: target,
            items: new,
            headline,
        });
    }
    assignments
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn rules() -> Rules {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rules.toml");
        Rules::load(&path).expect("the shipped rules").0
    }

    fn row(id: i64, feed: &str, title: &str, summary: &str, hour: i64, story: Option<i64>) -> GroupingRow {
        GroupingRow {
            id,
            feed: feed.into(),
            title: title.into(),
            summary: summary.into(),
            lead_content: String::new(),
            published: Timestamp::from_second(1_790_000_000 + hour * 3600).unwrap(),
            story_id: story,
            names: None,
        }
    }

    #[test]
    fn a_new_report_joins_the_story_of_its_event_and_another_event_starts_one() {
        let rules = rules();
        let context = vec![
            row(
                1,
                "MassisPost",
                "Azerbaijani troops fire on Armenian posts near Sotk",
                "The Armenian Defence Ministry said Azerbaijani units opened fire on positions near Sotk in Gegharkunik overnight.",
                0,
                Some(10),
            ),
            row(
                2,
                "EVN Report",
                "Ministers of the CSTO meet in Minsk without Armenia",
                "Foreign ministers of the CSTO gathered in Minsk; Armenia did not send a delegation.",
                1,
                Some(11),
            ),
        ];
        let ungrouped = vec![
            row(
                3,
                "Jamestown",
                "Shooting near Sotk: Azerbaijani troops fire on Armenian positions",
                "Azerbaijani troops fired on Armenian positions near Sotk overnight, the Defence Ministry in Yerevan said.",
                3,
                None,
            ),
            row(
                4,
                "Asbarez",
                "Armenian parliament debates the 2027 budget",
                "Deputies in Yerevan began the first reading of next year's budget.",
                4,
                None,
            ),
        ];
        let decided = decide(&ungrouped, &context, &rules, &GroupingOptions::default());
        assert_eq!(decided.len(), 2, "{decided:?}");
        let joined = decided.iter().find(|a| a.items == vec![3]).unwrap();
        assert_eq!(joined.story, Some(10));
        assert!([1, 3].contains(&joined.headline));
        let fresh = decided.iter().find(|a| a.items == vec![4]).unwrap();
        assert_eq!((fresh.story, fresh.headline), (None, 4));
    }

    #[test]
    fn names_stored_with_the_items_decide_as_tagging_them_again_does() {
        let rules = rules();
        let mut rows = vec![
            row(
                1,
                "A",
                "Azerbaijani troops fire on Armenian posts near Sotk",
                "",
                0,
                Some(10),
            ),
            row(
                2,
                "B",
                "Shooting near Sotk: Azerbaijani troops fire on Armenian posts",
                "",
                2,
                None,
            ),
            row(3, "C", "Pashinyan and Aliyev meet in Abu Dhabi", "", 3, None),
            row(
                4,
                "D",
                "Лукашенко уверен, что Армения вернется в ОДКБ",
                "",
                4,
                None,
            ),
        ];
        let tagging_again = decide(&rows[1..], &rows[..1], &rules, &GroupingOptions::default());
        for r in &mut rows {
            let tagging = rules.tag(&Document {
                title: &r.title,
                summary: &r.summary,
                content: &r.lead_content,
            });
            let names = crate::story::names_in_title_and_lead(&tagging, &r.summary, &r.lead_content);
            r.names = Some(names.map(str::to_owned).collect());
        }
        assert!(
            rows.iter()
                .all(|r| r.names.as_ref().is_some_and(|n| !n.is_empty()))
        );
        let stored = decide(&rows[1..], &rows[..1], &rules, &GroupingOptions::default());
        assert_eq!(stored, tagging_again);
        assert_eq!(stored.len(), 3, "{stored:?}");
    }

    /// The labelled story set (`tests/fixtures/stories/`) as stored rows,
    /// in order of publication; 1,500 characters of body stand in for an
    /// empty summary, as the store reads them.
    fn labelled_rows() -> Vec<GroupingRow> {
        #[derive(serde::Deserialize)]
        struct Labelled {
            feed: String,
            published: Timestamp,
            title: String,
            #[serde(default)]
            summary: String,
            #[serde(default)]
            content: String,
        }
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stories/clusters.jsonl");
        let text = std::fs::read_to_string(&path).expect("the labelled story set");
        let mut rows: Vec<GroupingRow> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str::<Labelled>(l).expect("a labelled item"))
            .enumerate()
            .map(|(n, l)| GroupingRow {
                id: n as i64 + 1,
                feed: l.feed,
                title: l.title,
                lead_content: if l.summary.trim().is_empty() {
                    l.content.chars().take(1500).collect()
                } else {
                    String::new()
                },
                summary: l.summary,
                published: l.published,
                story_id: None,
                names: None,
            })
            .collect();
        rows.sort_by_key(|r| (r.published, r.id));
        rows
    }

    /// Runs grouping steps over `arrivals` (batches of item indexes), as
    /// delivery cycles would, storing each step's regrouped decision; at
    /// every step, placing only the new items must decide the same.
    /// Returns how many steps and how many items were placed.
    fn placing_matches_regrouping(rows: &mut [GroupingRow], arrivals: &[Vec<usize>]) -> (usize, usize) {
        let rules = rules();
        let options = GroupingOptions::default();
        let mut next_story = 1;
        let mut placed = 0;
        for batch in arrivals {
            let ungrouped: Vec<GroupingRow> = batch.iter().map(|&i| rows[i].clone()).collect();
            let earliest = ungrouped.iter().map(|r| r.published).min().unwrap();
            let since = earliest.checked_sub(options.window).unwrap();
            let mut context: Vec<GroupingRow> = rows
                .iter()
                .filter(|r| r.story_id.is_some() && r.published >= since)
                .cloned()
                .collect();
            context.sort_by_key(|r| (r.published, r.id));
            let regrouped = decide_by_regrouping(&ungrouped, &context, &rules, &options);
            let placed_only = decide(&ungrouped, &context, &rules, &options);
            assert_eq!(placed_only, regrouped, "items {batch:?}");
            for a in regrouped {
                let story = a.story.unwrap_or_else(|| {
                    next_story += 1;
                    next_story
                });
                for id in a.items {
                    rows.iter_mut().find(|r| r.id == id).unwrap().story_id = Some(story);
                    placed += 1;
                }
            }
        }
        (arrivals.len(), placed)
    }

    #[test]
    fn placing_new_items_decides_as_regrouping_them_all_on_the_labelled_set() {
        let rows = labelled_rows();
        let n = rows.len();
        for batch in [1, 4, 12, 40] {
            // Items arrive in order of publication, `batch` per delivery cycle.
            let arrivals: Vec<Vec<usize>> = (0..n)
                .collect::<Vec<_>>()
                .chunks(batch)
                .map(<[usize]>::to_vec)
                .collect();
            let (steps, placed) = placing_matches_regrouping(&mut rows.clone(), &arrivals);
            assert_eq!(placed, n, "every item placed, {steps} steps of {batch}");
        }
        // Feeds polled in turn: each cycle brings every item published in
        // the last six hours, whatever its feed, a late one included.
        let mut arrivals: Vec<Vec<usize>> = Vec::new();
        let mut cycle_end = rows[0].published;
        let mut batch = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            while r.published >= cycle_end {
                if !batch.is_empty() {
                    arrivals.push(std::mem::take(&mut batch));
                }
                cycle_end = cycle_end
                    .checked_add(jiff::SignedDuration::from_hours(6))
                    .unwrap();
            }
            batch.push(i);
        }
        arrivals.push(batch);
        let (_, placed) = placing_matches_regrouping(&mut rows.clone(), &arrivals);
        assert_eq!(placed, n);
    }

    #[test]
    fn nothing_to_group_decides_nothing() {
        let context = vec![row(1, "A", "CSTO summit in Minsk", "", 0, Some(1))];
        assert!(decide(&[], &context, &rules(), &GroupingOptions::default()).is_empty());
    }

    #[tokio::test]
    async fn the_step_stores_stories_and_a_rerun_changes_nothing() {
        let store = StoreHandle::open_in_memory().unwrap();
        let rules = Arc::new(rules());
        store
            .call(|s| {
                for (title, hour) in [
                    ("Azerbaijani troops fire on Armenian posts near Sotk", 0),
                    ("Shooting near Sotk: Azerbaijani troops fire on Armenian posts", 2),
                    ("Armenian parliament debates the 2027 budget", 3),
                ] {
                    s.conn()
                        .execute(
                            "INSERT INTO items (feed, title, published_at, first_seen_at, status, relevant)
                             VALUES ('A', ?1, ?2, ?2, 'pending', 1)",
                            rusqlite::params![title, 1_790_000_000 + hour * 3600],
                        )
                        .unwrap();
                }
                Ok(())
            })
            .await
            .unwrap();
        let report = group_pending(&store, Arc::clone(&rules), GroupingOptions::default())
            .await
            .unwrap();
        assert_eq!((report.grouped, report.new_stories, report.joined), (3, 2, 0));
        let again = group_pending(&store, rules, GroupingOptions::default())
            .await
            .unwrap();
        assert_eq!(again, GroupingReport::default());
        let stories: Vec<Option<i64>> = store
            .read(|s| {
                let mut stmt = s
                    .conn()
                    .prepare("SELECT si.story_id FROM items i LEFT JOIN story_items si ON si.item_id = i.id ORDER BY i.id")
                    .unwrap();
                let ids = stmt.query_map([], |r| r.get(0)).unwrap();
                Ok(ids.map(Result::unwrap).collect())
            })
            .await
            .unwrap();
        assert_eq!(stories[0], stories[1]);
        assert_ne!(stories[0], stories[2]);
    }
}

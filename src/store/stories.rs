//! Stories in the database: what the grouping step reads (relevant items
//! not yet in a story, and the grouped items they may join), writing its
//! decisions back, and what a digest needs to say "more on" about a story
//! a destination has already seen.
//!
//! A story is a row in `stories`; `story_items` says which story each
//! grouped item is in. Grouping writes only items that are still ungrouped,
//! so a story id, once stored, never changes: restarts and retries render
//! the same stories.

use std::collections::HashMap;

use jiff::Timestamp;
use rusqlite::params;

use super::{Result, Store, from_unix, to_unix};

/// How many characters of the body grouping reads for an item without a
/// summary: its lead is the first 40 words (see `story::LEAD_WORDS`), which
/// fit in this with room to spare, and the rest of a long article is never
/// read.
const LEAD_CHARS: i64 = 1500;

/// An item as grouping reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupingRow {
    pub id: i64,
    pub feed: String,
    pub title: String,
    pub summary: String,
    /// The start of the body, only when the summary is empty (the lead then
    /// comes from it); empty otherwise.
    pub lead_content: String,
    pub published: Timestamp,
    /// The story it is already in; `None` for items to group.
    pub story_id: Option<i64>,
    /// The names the tagger found in its title and lead when it was
    /// stored; `None` for an item stored before they were kept (or
    /// re-tagged since), which grouping tags again.
    pub names: Option<Vec<String>>,
}

/// One grouping decision: these ungrouped items go into `story` (an
/// existing one), or into a new story when `story` is `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoryAssignment {
    pub story: Option<i64>,
    pub items: Vec<i64>,
    /// The story's clearest headline as grouping judged it this time; it
    /// replaces the stored one only while nothing of the story is delivered.
    pub headline: i64,
}

/// An item of a story that a destination has already received: what a
/// "more on" entry names.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveredHeadline {
    pub item_id: i64,
    pub title: String,
    pub url: Option<String>,
}

impl Store {
    /// Relevant, postable items in no story yet and delivered nowhere (an
    /// item delivered before grouping existed keeps no story), oldest first.
    pub fn ungrouped_items(&self) -> Result<Vec<GroupingRow>> {
        self.grouping_rows(
            "FROM items i
             WHERE i.relevant = 1 AND i.status = 'pending'
               AND NOT EXISTS (SELECT 1 FROM story_items si WHERE si.item_id = i.id)
               AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.item_id = i.id)
             ORDER BY i.published_at, i.id",
            "NULL",
            params![LEAD_CHARS],
        )
    }

    /// Grouped relevant items published at or after `since` (delivered or
    /// not): the stories a newly grouped item may join.
    pub fn grouped_items_since(&self, since: Timestamp) -> Result<Vec<GroupingRow>> {
        self.grouping_rows(
            "FROM items i JOIN story_items si ON si.item_id = i.id
             WHERE i.relevant = 1 AND i.status = 'pending' AND i.published_at >= ?2
             ORDER BY i.published_at, i.id",
            "si.story_id",
            params![LEAD_CHARS, to_unix(since)],
        )
    }

    /// The columns grouping reads, `story` being the story id's expression.
    /// Only columns stored before `content` are read (and the body's start
    /// only when there is no summary), so a long article's overflow pages
    /// are not walked; `published_at` comes from the `items_relevant` index.
    fn grouping_rows(
        &self,
        from: &str,
        story: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<GroupingRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT i.id, i.feed, i.title, i.summary,
                    CASE WHEN trim(i.summary) = '' THEN substr(i.content, 1, ?1) ELSE '' END,
                    i.published_at, {story},
                    (SELECT n.names FROM item_names n WHERE n.item_id = i.id)
             {from}"
        ))?;
        let rows = stmt.query_map(params, |r| {
            Ok((
                GroupingRow {
                    id: r.get(0)?,
                    feed: r.get(1)?,
                    title: r.get(2)?,
                    summary: r.get(3)?,
                    lead_content: r.get(4)?,
                    published: from_unix(r.get(5)?),
                    story_id: r.get(6)?,
                    names: None,
                },
                r.get::<_, Option<String>>(7)?,
            ))
        })?;
        let mut grouping = Vec::new();
        for row in rows {
            let (mut row, names) = row?;
            // Names that do not read (written by hand?) are found again
            // by tagging, as for an item stored without them.
            row.names = names.and_then(|n| serde_json::from_str(&n).ok());
            grouping.push(row);
        }
        Ok(grouping)
    }

    /// Writes grouping decisions in one transaction. An item that got a
    /// story meanwhile keeps it.
    /// Returns how many new stories were created.
    pub fn assign_stories(&mut self, assignments: &[StoryAssignment]) -> Result<usize> {
        let tx = self.conn.transaction()?;
        let mut created = 0;
        {
            let mut new_story = tx.prepare_cached("INSERT INTO stories (headline_item_id) VALUES (?1)")?;
            let mut headline = tx.prepare_cached(
                "UPDATE stories SET headline_item_id = ?2
                 WHERE id = ?1 AND NOT EXISTS (
                     SELECT 1 FROM story_items si JOIN deliveries d ON d.item_id = si.item_id
                     WHERE si.story_id = ?1)",
            )?;
            let mut join = tx.prepare_cached(
                "INSERT INTO story_items (item_id, story_id) VALUES (?1, ?2) ON CONFLICT (item_id) DO NOTHING",
            )?;
            for assignment in assignments {
                let story = match assignment.story {
                    Some(story) => {
                        headline.execute(params![story, assignment.headline])?;
                        story
                    }
                    None => {
                        new_story.execute(params![assignment.headline])?;
                        created += 1;
                        tx.last_insert_rowid()
                    }
                };
                for item in &assignment.items {
                    join.execute(params![item, story])?;
                }
            }
        }
        tx.commit()?;
        Ok(created)
    }

    /// For each of `stories` that `destination` has already received an
    /// item of: the item a "more on" entry names — the story's stored
    /// headline when the destination got it, else the earliest item it got.
    pub fn delivered_headlines(
        &self,
        destination: &str,
        stories: &[i64],
    ) -> Result<HashMap<i64, DeliveredHeadline>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT i.id, i.title, i.url
             FROM story_items si
             JOIN items i ON i.id = si.item_id
             JOIN deliveries d ON d.item_id = si.item_id AND d.destination = ?1
             LEFT JOIN stories s ON s.id = si.story_id
             WHERE si.story_id = ?2
             ORDER BY i.id = s.headline_item_id DESC, i.published_at, i.id
             LIMIT 1",
        )?;
        let mut found = HashMap::new();
        for &story in stories {
            let mut rows = stmt.query(params![destination, story])?;
            if let Some(r) = rows.next()? {
                found.insert(
                    story,
                    DeliveredHeadline {
                        item_id: r.get(0)?,
                        title: r.get(1)?,
                        url: r.get(2)?,
                    },
                );
            }
        }
        Ok(found)
    }
}

/// Deletes the stories none of whose items is left (retention pruned them).
pub(super) const DELETE_EMPTY_STORIES: &str =
    "DELETE FROM stories WHERE NOT EXISTS (SELECT 1 FROM story_items si WHERE si.story_id = stories.id)";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::outbox::DeliveryKind;

    fn add_item(store: &Store, title: &str, summary: &str, content: &str, published: i64) -> i64 {
        store
            .conn()
            .execute(
                "INSERT INTO items (feed, title, summary, content, url, published_at, first_seen_at,
                                    status, tags, relevant)
                 VALUES ('Feed', ?1, ?2, ?3, 'https://e.example/a', ?4, ?4, 'pending', '[\"csto\"]', 1)",
                params![title, summary, content, published],
            )
            .unwrap();
        store.conn().last_insert_rowid()
    }

    #[test]
    fn grouping_is_stored_once_and_the_headline_freezes_on_delivery() {
        let mut store = Store::open_in_memory().unwrap();
        let a = add_item(&store, "a", "", &"word ".repeat(1000), 100);
        let b = add_item(&store, "b", "lead of b", "body of b", 200);
        let ungrouped = store.ungrouped_items().unwrap();
        assert_eq!(ungrouped.iter().map(|r| r.id).collect::<Vec<_>>(), vec![a, b]);
        assert_eq!(ungrouped[0].lead_content.chars().count(), LEAD_CHARS as usize);
        assert_eq!(ungrouped[1].lead_content, "", "a summary is the lead");

        let created = store
            .assign_stories(&[StoryAssignment {
                story: None,
                items: vec![a, b],
                headline: a,
            }])
            .unwrap();
        assert_eq!(created, 1);
        assert!(store.ungrouped_items().unwrap().is_empty());
        let grouped = store
            .grouped_items_since(Timestamp::from_second(150).unwrap())
            .unwrap();
        assert_eq!(grouped.len(), 1);
        let story = grouped[0].story_id.unwrap();

        // Not delivered yet: the headline may still change.
        store
            .assign_stories(&[StoryAssignment {
                story: Some(story),
                items: vec![],
                headline: b,
            }])
            .unwrap();
        let at = Timestamp::from_second(300).unwrap();
        store
            .record_delivery("console", &[b], Some(1), DeliveryKind::Digest, at)
            .unwrap();
        // Delivered: the headline readers saw stays.
        store
            .assign_stories(&[StoryAssignment {
                story: Some(story),
                items: vec![],
                headline: a,
            }])
            .unwrap();
        let seen = store.delivered_headlines("console", &[story, 999]).unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[&story].item_id, b);
        assert!(
            store
                .delivered_headlines("telegram:@x", &[story])
                .unwrap()
                .is_empty()
        );

        // An item keeps the story it has.
        store
            .assign_stories(&[StoryAssignment {
                story: None,
                items: vec![a],
                headline: a,
            }])
            .unwrap();
        let again = store.grouped_items_since(Timestamp::UNIX_EPOCH).unwrap();
        assert!(again.iter().all(|r| r.story_id == Some(story)));
        assert_eq!(
            store.conn().execute(DELETE_EMPTY_STORIES, []).unwrap(),
            1,
            "the story created for nothing"
        );
    }

    #[test]
    fn grouping_reads_the_names_stored_with_an_item_until_it_is_re_tagged() {
        use crate::store::items::{ItemTags, NewItem, PollSuccess};
        let mut store = Store::open_in_memory().unwrap();
        let at = Timestamp::from_second(1_790_000_000).unwrap();
        let item = crate::item::Item {
            feed: "Feed".into(),
            guid: Some("1".into()),
            url: None,
            title: "CSTO ministers meet in Minsk".into(),
            summary: String::new(),
            content: String::new(),
            published: at,
            dated: true,
            updated: None,
            categories: Vec::new(),
        };
        let tags = ItemTags {
            tags: vec!["csto".into()],
            score: 2.0,
            relevant: true,
        };
        store
            .record_poll_success(PollSuccess {
                name: "Feed",
                url: "https://e.example/feed",
                at,
                status: "200",
                etag: None,
                last_modified: None,
                items: vec![NewItem {
                    keys: crate::dedup::DedupKeys::of(&item),
                    item,
                    tags: tags.clone(),
                    names: vec!["CSTO".into(), "Minsk".into()],
                }],
                backfill: std::time::Duration::from_secs(86_400),
                next_poll_at: at,
                warning: None,
            })
            .unwrap();
        let stored = add_item(&store, "stored before names were kept", "", "", 100);

        let rows = store.ungrouped_items().unwrap();
        let names = |id: i64| rows.iter().find(|r| r.id == id).unwrap().names.clone();
        let polled = rows.iter().find(|r| r.id != stored).unwrap().id;
        assert_eq!(names(polled), Some(vec!["CSTO".to_string(), "Minsk".to_string()]));
        assert_eq!(names(stored), None, "no row: grouping tags it again");

        store.update_tags(&[(polled, tags)]).unwrap();
        let rows = store.ungrouped_items().unwrap();
        assert_eq!(
            rows.iter().find(|r| r.id == polled).unwrap().names,
            None,
            "names found under the old rules are forgotten"
        );
    }

    #[test]
    fn retention_takes_an_items_story_with_it_once_the_story_is_empty() {
        let mut store = Store::open_in_memory().unwrap();
        let old = add_item(&store, "old", "", "", 100);
        let kept = add_item(&store, "kept", "", "", 100);
        store
            .conn()
            .execute(
                "UPDATE items SET first_seen_at = 10_000_000 WHERE id = ?1",
                [kept],
            )
            .unwrap();
        store
            .assign_stories(&[
                StoryAssignment {
                    story: None,
                    items: vec![old],
                    headline: old,
                },
                StoryAssignment {
                    story: None,
                    items: vec![kept],
                    headline: kept,
                },
            ])
            .unwrap();
        let now = Timestamp::from_second(10_000_000).unwrap();
        assert_eq!(
            store.prune(now, std::time::Duration::from_secs(86_400)).unwrap(),
            1
        );
        let left = |sql: &str| -> i64 { store.conn().query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(
            left("SELECT count(*) FROM story_items"),
            1,
            "the pruned item's row went with it"
        );
        assert_eq!(
            left("SELECT count(*) FROM stories"),
            1,
            "and its story, now empty"
        );
    }
}

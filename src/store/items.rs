//! Items and their dedup keys: writing one successful poll (new items, their
//! keys and tags, the feed's validators and health) in one transaction, the
//! lookups dedup needs, re-tagging, retention, and the counts `status` shows.

use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, params};

use super::feeds::ensure_feed;
use super::keys::{claim_keys, known};
use super::{Result, Store, from_unix, to_unix};
use crate::dedup::DedupKeys;
use crate::item::Item;

/// Dedup keys outlive their items by this much after retention prunes them.
pub const KEY_RETENTION_FACTOR: u32 = 2;

/// The tagger's verdict, as stored with an item.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemTags {
    /// Primary tags first.
    pub tags: Vec<String>,
    pub score: f64,
    pub relevant: bool,
}

/// An item the pipeline found new, ready to store.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub item: Item,
    pub keys: DedupKeys,
    pub tags: ItemTags,
    /// The names the tagger found in the title and lead
    /// (`story::names_in_title_and_lead`), kept for story grouping.
    pub names: Vec<String>,
}

/// One successful poll: the feed's new validators and the items not seen before.
#[derive(Debug, Clone)]
pub struct PollSuccess<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub at: Timestamp,
    /// `200` or `304`.
    pub status: &'a str,
    pub etag: Option<&'a str>,
    pub last_modified: Option<&'a str>,
    pub items: Vec<NewItem>,
    /// On the feed's first successful poll, items published before `at - backfill`
    /// are recorded as seen but never posted.
    pub backfill: Duration,
    pub next_poll_at: Timestamp,
    /// What was wrong with a document that was read all the same (a 200
    /// records it, `None` clearing the last one; a 304 leaves it as it was).
    pub warning: Option<&'a str>,
}

/// What a poll added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollSummary {
    /// Items stored as new (pending or backfill).
    pub new: usize,
    /// Of those, recorded as backfill (seen, never posted).
    pub backfilled: usize,
    /// Of those, relevant and pending delivery.
    pub relevant: usize,
    /// Items dropped because another item (earlier, or in this same poll) had one of their keys.
    pub duplicates: usize,
}

/// A stored item, as `retag` and delivery read it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredItem {
    pub id: i64,
    pub feed: String,
    pub url: Option<String>,
    pub title: String,
    pub summary: String,
    pub content: String,
    pub published: Timestamp,
    pub tags: ItemTags,
}

/// Counts for `status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ItemCounts {
    pub total: u64,
    pub relevant: u64,
    pub backfill: u64,
}

impl Store {
    /// Whether an item with any of these keys was seen before.
    pub fn is_known(&self, keys: &DedupKeys, now: Timestamp) -> Result<bool> {
        Ok(known(&self.conn, &self.claimed_keys, keys, now)?)
    }

    /// Writes one successful poll in one transaction: feed validators and
    /// health, and every item whose keys are still unseen (keys are checked
    /// again here, so two feeds polled at once cannot both store one article).
    /// Written in a savepoint, so it can join a group commit.
    pub fn record_poll_success(&mut self, poll: PollSuccess<'_>) -> Result<PollSummary> {
        let mark = self.claimed_keys.mark();
        let written = self.write_poll_success(poll);
        if written.is_err() {
            self.claimed_keys.take_back_to(mark);
        }
        written
    }

    fn write_poll_success(&mut self, poll: PollSuccess<'_>) -> Result<PollSummary> {
        let claimed = &mut self.claimed_keys;
        let tx = self.conn.savepoint()?;
        ensure_feed(&tx, poll.name, poll.url)?;
        // Alone, the write lock is taken by the write above: no other
        // process can store keys from here to the commit.
        if !self.batch_open {
            claimed.check_other_writers(&tx)?;
        }
        let first_success: Option<i64> = tx
            .prepare_cached("SELECT first_success_at FROM feeds WHERE name = ?1")?
            .query_row([poll.name], |r| r.get(0))?;
        let cutoff = first_success.is_none().then(|| {
            poll.at
                .checked_sub(poll.backfill)
                .unwrap_or(Timestamp::UNIX_EPOCH)
        });
        let mut summary = PollSummary::default();
        let mut arrivals = Vec::new();
        for new in &poll.items {
            if !claim_keys(&tx, claimed, &new.keys, poll.at)? {
                summary.duplicates += 1;
                continue;
            }
            // An undated entry on a first poll may be years old: never post it as new.
            let backfill = cutoff.is_some_and(|c| !new.item.dated || new.item.published < c);
            insert_item(&tx, new, poll.at, backfill)?;
            arrivals.push(super::alerts::arrival_of(
                to_unix(new.item.published),
                to_unix(poll.at),
                new.item.dated,
            ));
            summary.new += 1;
            if backfill {
                summary.backfilled += 1;
            } else if new.tags.relevant {
                summary.relevant += 1;
            }
        }
        tx.prepare_cached(
            "UPDATE feeds SET url = ?2, etag = ?3, last_modified = ?4,
                 first_success_at = coalesce(first_success_at, ?5), last_success_at = ?5,
                 last_attempt_at = ?5, last_status = ?6, consecutive_failures = 0, failing_since = NULL,
                 next_poll_at = ?7, items_seen = items_seen + ?8,
                 last_warning = CASE WHEN ?6 = '200' THEN ?9 ELSE last_warning END
             WHERE name = ?1",
        )?
        .execute(params![
            poll.name,
            poll.url,
            poll.etag,
            poll.last_modified,
            to_unix(poll.at),
            poll.status,
            to_unix(poll.next_poll_at),
            summary.new as i64,
            poll.warning
        ])?;
        if !arrivals.is_empty() {
            super::alerts::record_arrivals(&tx, poll.name, arrivals, poll.at)?;
        }
        // In a group commit the keys are written when it commits, with the
        // other polls' keys; alone, now.
        if !self.batch_open {
            claimed.write(&tx)?;
        }
        tx.commit()?;
        Ok(summary)
    }

    /// Items that no destination has received yet: the ones a rules change can still affect.
    pub fn undelivered_items(&self) -> Result<Vec<StoredItem>> {
        self.stored_items(
            "WHERE status = 'pending' AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.item_id = items.id)
             ORDER BY published_at, id",
            [],
        )
    }

    /// Items first seen at or after `since` that could be posted (not
    /// backfill), delivered or not: what `review` judges against the rules.
    pub fn items_seen_since(&self, since: Timestamp) -> Result<Vec<StoredItem>> {
        self.stored_items(
            "WHERE status = 'pending' AND first_seen_at >= ?1 ORDER BY first_seen_at, id",
            [to_unix(since)],
        )
    }

    /// Relevant items published in `[from, to)`, posted or not, backfill
    /// included: the news of a period as the weekly report counts it.
    pub fn relevant_items_published_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<StoredItem>> {
        self.stored_items(
            "WHERE relevant = 1 AND published_at >= ?1 AND published_at < ?2 ORDER BY published_at, id",
            [to_unix(from), to_unix(to)],
        )
    }

    fn stored_items(&self, filter: &str, params: impl rusqlite::Params) -> Result<Vec<StoredItem>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT id, feed, url, title, summary, content, published_at, tags, score, relevant FROM items {filter}"
        ))?;
        let rows = stmt.query_map(params, |r| {
            Ok((
                StoredItem {
                    id: r.get(0)?,
                    feed: r.get(1)?,
                    url: r.get(2)?,
                    title: r.get(3)?,
                    summary: r.get(4)?,
                    content: r.get(5)?,
                    published: from_unix(r.get(6)?),
                    tags: ItemTags {
                        tags: Vec::new(),
                        score: r.get(8)?,
                        relevant: r.get(9)?,
                    },
                },
                r.get::<_, String>(7)?,
            ))
        })?;
        let mut items = Vec::new();
        for row in rows {
            let (mut item, tags) = row?;
            item.tags.tags = serde_json::from_str(&tags)?;
            items.push(item);
        }
        Ok(items)
    }

    /// Replaces the tags of the given items in one transaction.
    pub fn update_tags(&mut self, updates: &[(i64, ItemTags)]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt =
                tx.prepare("UPDATE items SET tags = ?2, score = ?3, relevant = ?4 WHERE id = ?1")?;
            for (id, t) in updates {
                stmt.execute(params![id, serde_json::to_string(&t.tags)?, t.score, t.relevant])?;
            }
            // The names were found under the old rules: grouping tags these
            // items again instead (see `store::stories`).
            let mut names = tx.prepare("DELETE FROM item_names WHERE item_id = ?1")?;
            for (id, _) in updates {
                names.execute([id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes items first seen before `now - retention` (their deliveries go
    /// with them, and stories left empty) and dedup keys older than twice that. Returns items deleted.
    pub fn prune(&mut self, now: Timestamp, retention: Duration) -> Result<usize> {
        let item_cutoff = to_unix(now) - retention.as_secs() as i64;
        let key_cutoff = to_unix(now) - (retention * KEY_RETENTION_FACTOR).as_secs() as i64;
        let tx = self.conn.transaction()?;
        let deleted = tx.execute("DELETE FROM items WHERE first_seen_at < ?1", [item_cutoff])?;
        tx.execute(super::stories::DELETE_EMPTY_STORIES, [])?;
        // A key is first seen with its item (and taken over, with a new
        // time, by a later item): past the key cutoff, its item is gone.
        tx.execute("DELETE FROM seen_hashes WHERE first_seen_at < ?1", [key_cutoff])?;
        tx.commit()?;
        Ok(deleted)
    }

    /// How many items are stored, relevant, and backfilled.
    pub fn item_counts(&self) -> Result<ItemCounts> {
        Ok(self.conn.query_row(
            "SELECT count(*), coalesce(sum(status = 'backfill'), 0),
                    (SELECT count(*) FROM items WHERE relevant = 1 AND status = 'pending')
             FROM items INDEXED BY items_first_seen",
            [],
            |r| {
                Ok(ItemCounts {
                    total: r.get::<_, i64>(0)? as u64,
                    backfill: r.get::<_, i64>(1)? as u64,
                    relevant: r.get::<_, i64>(2)? as u64,
                })
            },
        )?)
    }
}

impl Store {
    /// Per feed, how many stored items had no readable date (their first-seen
    /// time stands in for it), for `status`.
    pub fn undated_counts(&self) -> Result<std::collections::HashMap<String, u64>> {
        let mut stmt = self
            .conn
            .prepare("SELECT feed, count(*) FROM items WHERE undated GROUP BY feed")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

fn insert_item(tx: &Connection, new: &NewItem, now: Timestamp, backfill: bool) -> Result<()> {
    let item = &new.item;
    tx.prepare_cached(
        "INSERT INTO items (feed, guid, url, canonical_url, title_key, title, summary, content, categories,
             published_at, updated_at, first_seen_at, status, tags, score, relevant, undated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?
    .execute(params![
        item.feed,
        item.guid,
        item.url.as_ref().map(|u| u.as_str()),
        new.keys.url,
        new.keys.title,
        item.title,
        item.summary,
        item.content,
        serde_json::to_string(&item.categories)?,
        to_unix(item.published),
        item.updated.map(to_unix),
        to_unix(now),
        if backfill { "backfill" } else { "pending" },
        serde_json::to_string(&new.tags.tags)?,
        new.tags.score,
        new.tags.relevant,
        !item.dated,
    ])?;
    let id = tx.last_insert_rowid();
    // Only relevant items are grouped; one that `retag` makes relevant has
    // no row and is tagged again by grouping.
    if new.tags.relevant {
        tx.prepare_cached("INSERT INTO item_names (item_id, names) VALUES (?1, ?2)")?
            .execute(params![id, serde_json::to_string(&new.names)?])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use url::Url;

    fn item(feed: &str, guid: Option<&str>, url: &str, title: &str, published: Timestamp) -> NewItem {
        let item = Item {
            feed: feed.into(),
            guid: guid.map(Into::into),
            url: Some(Url::parse(url).unwrap()),
            title: title.into(),
            summary: String::new(),
            content: String::new(),
            published,
            updated: None,
            dated: true,
            categories: vec![],
        };
        let keys = DedupKeys::of(&item);
        NewItem {
            item,
            keys,
            tags: ItemTags {
                tags: vec!["csto".into()],
                score: 2.0,
                relevant: true,
            },
            names: vec!["CSTO".into()],
        }
    }

    fn poll<'a>(name: &'a str, at: Timestamp, items: Vec<NewItem>) -> PollSuccess<'a> {
        PollSuccess {
            name,
            url: "https://example.com/feed",
            at,
            status: "200",
            etag: Some("\"v1\""),
            last_modified: None,
            items,
            backfill: Duration::from_secs(48 * 3600),
            next_poll_at: at,
            warning: None,
        }
    }

    #[test]
    fn duplicates_by_guid_url_and_title_are_dropped() {
        let mut s = Store::open_in_memory().unwrap();
        let now: Timestamp = "2024-03-01T12:00:00Z".parse().unwrap();
        let a = item(
            "A",
            Some("1"),
            "https://a.com/x/",
            "CSTO summit opens in Minsk today",
            now,
        );
        let sum = s.record_poll_success(poll("A", now, vec![a.clone()])).unwrap();
        assert_eq!((sum.new, sum.duplicates), (1, 0));
        let same_guid = item(
            "A",
            Some("1"),
            "https://a.com/other",
            "Edited title about something else",
            now,
        );
        let same_url = item(
            "B",
            Some("9"),
            "http://www.a.com/x?utm_source=t",
            "Another headline entirely here",
            now,
        );
        let same_title = item(
            "C",
            None,
            "https://c.com/y",
            "CSTO Summit Opens in Minsk — Today",
            now,
        );
        let fresh = item(
            "C",
            None,
            "https://c.com/z",
            "Armenia freezes CSTO participation again",
            now,
        );
        let sum = s
            .record_poll_success(poll("B", now, vec![same_guid, same_url, same_title, fresh]))
            .unwrap();
        assert_eq!((sum.new, sum.duplicates), (1, 3));
        assert_eq!(s.item_counts().unwrap().total, 2);
    }

    #[test]
    fn a_duplicate_leaves_none_of_its_keys_behind_and_a_stale_title_is_taken_over() {
        let mut s = Store::open_in_memory().unwrap();
        let then: Timestamp = "2024-03-10T00:00:00Z".parse().unwrap();
        let later = then
            .checked_add(jiff::SignedDuration::from_hours(24 * 40))
            .unwrap();
        let first = item(
            "A",
            Some("1"),
            "https://a.com/1",
            "A headline of some considerable length here",
            then,
        );
        s.record_poll_success(poll("A", then, vec![first])).unwrap();
        // Known by its URL: its new GUID and title must not become known.
        let dup = item(
            "B",
            Some("9"),
            "https://a.com/1",
            "Another headline entirely about something else",
            later,
        );
        let sum = s
            .record_poll_success(poll("B", later, vec![dup.clone()]))
            .unwrap();
        assert_eq!((sum.new, sum.duplicates), (0, 1));
        let guid_only = DedupKeys {
            guid: dup.keys.guid.clone(),
            ..DedupKeys::default()
        };
        let title_only = DedupKeys {
            title: dup.keys.title.clone(),
            ..DedupKeys::default()
        };
        assert!(dup.keys.guid.is_some() && dup.keys.title.is_some());
        assert!(!s.is_known(&guid_only, later).unwrap());
        assert!(!s.is_known(&title_only, later).unwrap());
        // The same headline 40 days on is a new item, and its title key
        // counts from now.
        let again = item(
            "C",
            Some("2"),
            "https://a.com/2",
            "A headline of some considerable length here",
            later,
        );
        let sum = s
            .record_poll_success(poll("C", later, vec![again.clone()]))
            .unwrap();
        assert_eq!((sum.new, sum.duplicates), (1, 0));
        assert!(again.keys.title.is_some());
        let title_again = DedupKeys {
            title: again.keys.title.clone(),
            ..DedupKeys::default()
        };
        let a_day_later = later.checked_add(jiff::SignedDuration::from_hours(24)).unwrap();
        assert!(s.is_known(&title_again, a_day_later).unwrap());
    }

    #[test]
    fn first_poll_backfills_old_items_only_once() {
        let mut s = Store::open_in_memory().unwrap();
        let now: Timestamp = "2024-03-10T00:00:00Z".parse().unwrap();
        let old = now.checked_sub(jiff::SignedDuration::from_hours(72)).unwrap();
        let sum = s
            .record_poll_success(poll(
                "A",
                now,
                vec![
                    item("A", Some("1"), "https://a.com/1", "t1", old),
                    item("A", Some("2"), "https://a.com/2", "t2", now),
                ],
            ))
            .unwrap();
        assert_eq!((sum.new, sum.backfilled, sum.relevant), (2, 1, 1));
        let sum = s
            .record_poll_success(poll(
                "A",
                now,
                vec![item("A", Some("3"), "https://a.com/3", "t3", old)],
            ))
            .unwrap();
        assert_eq!(
            (sum.new, sum.backfilled, sum.relevant),
            (1, 0, 1),
            "only the first poll backfills"
        );
        assert_eq!(s.feed_state("A").unwrap().unwrap().items_seen, 3);
    }

    #[test]
    fn pruned_items_keep_their_keys() {
        let mut s = Store::open_in_memory().unwrap();
        let then: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let later: Timestamp = "2024-08-01T00:00:00Z".parse().unwrap();
        let a = item("A", Some("1"), "https://a.com/1", "t1", then);
        s.record_poll_success(poll("A", then, vec![a.clone()])).unwrap();
        assert_eq!(s.prune(later, Duration::from_secs(180 * 86_400)).unwrap(), 1);
        assert!(s.is_known(&a.keys, later).unwrap());
    }

    fn stored_keys(s: &Store) -> i64 {
        s.conn()
            .query_row("SELECT count(*) FROM seen_hashes", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn keys_claimed_in_a_group_commit_count_at_once_and_a_failed_poll_takes_its_own_back() {
        let mut s = Store::open_in_memory().unwrap();
        // A real failure half-way through a poll's write: SQLite refuses one item.
        s.conn()
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON items WHEN NEW.title LIKE 'Refused%'
                 BEGIN SELECT RAISE(ABORT, 'refused'); END",
            )
            .unwrap();
        let now: Timestamp = "2024-03-01T12:00:00Z".parse().unwrap();
        s.begin_batch().unwrap();
        let a = item(
            "A",
            Some("1"),
            "https://a.com/1",
            "The first headline of this batch",
            now,
        );
        s.record_poll_success(poll("A", now, vec![a.clone()])).unwrap();
        // Claimed, not yet written: known all the same, to lookups and to
        // the next poll of the batch.
        assert_eq!(stored_keys(&s), 0);
        assert!(s.is_known(&a.keys, now).unwrap());
        let same_url = item(
            "B",
            Some("9"),
            "https://a.com/1",
            "Another headline entirely",
            now,
        );
        let sum = s.record_poll_success(poll("B", now, vec![same_url])).unwrap();
        assert_eq!((sum.new, sum.duplicates), (0, 1));
        // A poll whose write fails half-way leaves no claim behind.
        let c = item(
            "C",
            Some("2"),
            "https://c.com/2",
            "A third headline, stored first",
            now,
        );
        let refused = item("C", Some("3"), "https://c.com/3", "Refused by the database", now);
        assert!(
            s.record_poll_success(poll("C", now, vec![c.clone(), refused]))
                .is_err()
        );
        assert!(!s.is_known(&c.keys, now).unwrap());
        s.commit_batch().unwrap();
        assert_eq!(stored_keys(&s), 3, "A's GUID, URL and title keys");
        assert!(s.is_known(&a.keys, now).unwrap());
        let sum = s.record_poll_success(poll("C", now, vec![c.clone()])).unwrap();
        assert_eq!(sum.new, 1);
        assert_eq!(
            stored_keys(&s),
            6,
            "a poll outside a batch writes its keys itself"
        );
    }

    #[test]
    fn with_the_filter_built_dedup_is_as_exact_and_another_writer_drops_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut s = Store::open(&path).unwrap();
        s.claimed_keys.filter_after(10);
        let now: Timestamp = "2024-03-01T12:00:00Z".parse().unwrap();
        let nth = |feed: &str, i: usize| {
            item(
                feed,
                Some(&format!("{i}")),
                &format!("https://{feed}.example/{i}"),
                &format!("Headline number {i} from feed {feed}, long enough"),
                now,
            )
        };
        let first: Vec<NewItem> = (0..40).map(|i| nth("a", i)).collect();
        s.begin_batch().unwrap();
        let sum = s.record_poll_success(poll("a", now, first.clone())).unwrap();
        s.commit_batch().unwrap();
        assert_eq!(sum.new, 40);
        assert!(s.claimed_keys.has_filter());
        // Seen again, each by one key only: all duplicates, through the filter.
        let again: Vec<NewItem> = (0..40)
            .map(|i| {
                let mut copy = nth("b", 100 + i);
                copy.keys.url = first[i].keys.url.clone();
                copy
            })
            .collect();
        let sum = s.record_poll_success(poll("b", now, again)).unwrap();
        assert_eq!((sum.new, sum.duplicates), (0, 40));
        // Another process stores an item; this one must not take it for new.
        let other = item(
            "c",
            Some("x"),
            "https://c.example/x",
            "Stored by another process, meanwhile",
            now,
        );
        {
            let mut elsewhere = Store::open(&path).unwrap();
            let sum = elsewhere
                .record_poll_success(poll("c", now, vec![other.clone()]))
                .unwrap();
            assert_eq!(sum.new, 1);
        }
        s.begin_batch().unwrap();
        let sum = s.record_poll_success(poll("d", now, vec![other])).unwrap();
        s.commit_batch().unwrap();
        assert_eq!((sum.new, sum.duplicates), (0, 1));
        assert!(
            !s.claimed_keys.has_filter(),
            "dropped once another writer was seen"
        );
    }

    #[test]
    fn a_group_commit_that_fails_forgets_its_claims() {
        let mut s = Store::open_in_memory().unwrap();
        let now: Timestamp = "2024-03-01T12:00:00Z".parse().unwrap();
        let a = item(
            "A",
            Some("1"),
            "https://a.com/1",
            "A headline that is stored first",
            now,
        );
        s.record_poll_success(poll("A", now, vec![a.clone()])).unwrap();
        // The batch's key write fails at commit: a key with A's URL hash
        // written behind the claims' back (as only a bug could) collides.
        s.begin_batch().unwrap();
        let b = item(
            "B",
            Some("2"),
            "https://b.com/2",
            "A second headline, never stored",
            now,
        );
        s.record_poll_success(poll("B", now, vec![b.clone()])).unwrap();
        let b_url = super::super::keys::key_hash("url", b.keys.url.as_deref().unwrap());
        s.conn()
            .execute(
                "INSERT INTO seen_hashes (hash, first_seen_at) VALUES (?1, 0)",
                [b_url],
            )
            .unwrap();
        assert!(s.commit_batch().is_err());
        assert_eq!(stored_keys(&s), 3, "only A's keys");
        assert!(!s.is_known(&b.keys, now).unwrap());
        assert_eq!(s.item_counts().unwrap().total, 1);
        let sum = s.record_poll_success(poll("B", now, vec![b])).unwrap();
        assert_eq!(sum.new, 1);
    }

    #[test]
    fn keys_past_twice_the_retention_are_forgotten() {
        let mut s = Store::open_in_memory().unwrap();
        let then: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let much_later: Timestamp = "2025-06-01T00:00:00Z".parse().unwrap();
        let a = item("A", Some("1"), "https://a.com/1", "t1", then);
        s.record_poll_success(poll("A", then, vec![a.clone()])).unwrap();
        assert_eq!(s.prune(much_later, Duration::from_secs(180 * 86_400)).unwrap(), 1);
        assert!(!s.is_known(&a.keys, much_later).unwrap());
    }

    #[test]
    fn text_keys_of_an_older_database_are_carried_over_as_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let now: Timestamp = "2024-03-10T00:00:00Z".parse().unwrap();
        let a = item(
            "A",
            Some("1"),
            "https://a.com/1",
            "Armenia and the CSTO: a long story",
            now,
        );
        let old = super::super::schema::HASHED_KEYS_VERSION - 1;
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            for sql in &super::super::schema::MIGRATIONS[..old as usize] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", old).unwrap();
            for (kind, key) in a.keys.pairs() {
                conn.execute(
                    "INSERT INTO seen_keys (kind, key, item_id, first_seen_at) VALUES (?1, ?2, 1, ?3)",
                    params![kind, key, to_unix(now)],
                )
                .unwrap();
            }
        }
        let s = Store::open(&path).unwrap();
        assert!(s.is_known(&a.keys, now).unwrap());
        let title_only = DedupKeys {
            title: a.keys.title.clone(),
            ..DedupKeys::default()
        };
        assert!(s.is_known(&title_only, now).unwrap());
        let tables: i64 = s
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'seen_keys'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0);
    }

    #[test]
    fn failures_count_unless_the_network_is_down() {
        let mut s = Store::open_in_memory().unwrap();
        let now = Timestamp::now();
        let mut f = super::super::feeds::FeedFailure {
            name: "A",
            url: "https://a/",
            at: now,
            kind: "timeout",
            message: "timed out",
            network_down: false,
            next_poll_at: now,
        };
        assert_eq!(s.record_feed_failure(&f).unwrap(), 1);
        assert_eq!(s.record_feed_failure(&f).unwrap(), 2);
        f.network_down = true;
        assert_eq!(s.record_feed_failure(&f).unwrap(), 2);
        let st = s.feed_state("A").unwrap().unwrap();
        assert_eq!(st.last_error.as_deref(), Some("timed out"));
        s.record_poll_success(poll("A", now, vec![])).unwrap();
        assert_eq!(s.feed_state("A").unwrap().unwrap().consecutive_failures, 0);
    }
}

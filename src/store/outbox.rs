//! The outbox's queries: which items are still owed to a destination, and the
//! records written once a destination has accepted a message.
//!
//! "Delivered" is only ever written by [`Store::record_delivery`], one
//! transaction per accepted message, so a crash loses at most the knowledge
//! that the last message went out (it is then sent again), never an item.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};

use super::{Result, Store, from_unix, to_unix};

/// An item owed to a destination, with what a digest shows of it.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingItem {
    pub id: i64,
    /// The source (feed) name.
    pub feed: String,
    pub title: String,
    pub url: Option<String>,
    pub published_at: Timestamp,
    /// Tags, primary tags first.
    pub tags: Vec<String>,
    /// The feed's summary (never the article page's text): the lede comes from it.
    pub summary: String,
    /// The story the item is in; `None` until the grouping step has run on it.
    pub story_id: Option<i64>,
    /// Whether grouping judged it its story's clearest headline.
    pub story_headline: bool,
}

/// A destination's row in `destinations`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DestinationRow {
    /// `console` or `telegram:<chat>`.
    pub id: String,
    /// End of the period the last digest covered.
    pub last_digest_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
}

/// What a delivery row says the message was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryKind {
    Digest,
    Alert,
}

impl DeliveryKind {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryKind::Digest => "digest",
            DeliveryKind::Alert => "alert",
        }
    }
}

impl Store {
    /// The destination's row, if it has ever been used.
    pub fn destination(&self, id: &str) -> Result<Option<DestinationRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, last_digest_at, last_success_at, last_error, last_error_at
                 FROM destinations WHERE id = ?1",
                [id],
                destination_from_row,
            )
            .optional()?)
    }

    /// Every destination that has a row, by id.
    pub fn destinations(&self) -> Result<Vec<DestinationRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, last_digest_at, last_success_at, last_error, last_error_at
             FROM destinations ORDER BY id",
        )?;
        let rows = stmt.query_map([], destination_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The destination's row, created when missing. A new destination has
    /// no `last_digest_at`: it has never had a digest, so one is due at once.
    pub fn ensure_destination(&self, id: &str) -> Result<DestinationRow> {
        self.conn.execute(
            "INSERT INTO destinations (id) VALUES (?1) ON CONFLICT (id) DO NOTHING",
            params![id],
        )?;
        Ok(self.destination(id)?.unwrap_or_else(|| DestinationRow {
            id: id.to_string(),
            ..DestinationRow::default()
        }))
    }

    /// Relevant, non-backfill items without a delivery to `destination`,
    /// oldest first; when `tag_filter` is not empty, only items carrying one
    /// of those tags.
    pub fn pending_items(&self, destination: &str, tag_filter: &[String]) -> Result<Vec<PendingItem>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT i.id, i.feed, i.title, i.url, i.published_at, i.tags, i.summary, si.story_id,
                    coalesce(s.headline_item_id = i.id, 0)
             FROM items i
             LEFT JOIN story_items si ON si.item_id = i.id
             LEFT JOIN stories s ON s.id = si.story_id
             WHERE i.relevant = 1 AND i.status = 'pending'
               AND NOT EXISTS (SELECT 1 FROM deliveries d
                               WHERE d.item_id = i.id AND d.destination = ?1)
             ORDER BY i.published_at, i.id",
        )?;
        let rows = stmt.query_map([destination], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, Option<i64>>(7)?,
                r.get::<_, bool>(8)?,
            ))
        })?;
        let mut items = Vec::new();
        for row in rows {
            let (id, feed, title, url, published_at, tags, summary, story_id, story_headline) = row?;
            let tags: Vec<String> = serde_json::from_str(&tags).unwrap_or_else(|e| {
                // A damaged tag list must not hide the item: it is still relevant.
                tracing::warn!(
                    item = id,
                    "item has unreadable tags ({e}); delivering it untagged"
                );
                Vec::new()
            });
            if !tag_filter.is_empty() && !tags.iter().any(|t| tag_filter.contains(t)) {
                continue;
            }
            items.push(PendingItem {
                id,
                feed,
                title,
                url,
                published_at: from_unix(published_at),
                tags,
                summary,
                story_id,
                story_headline,
            });
        }
        Ok(items)
    }

    /// Records that `destination` accepted the message carrying `item_ids`:
    /// one transaction for the whole message, also clearing the
    /// destination's last error. It commits with `synchronous = FULL` (the
    /// WAL is fsynced): the record is on disk before the next message to
    /// that chat is sent, even across a power cut (see `handle`).
    pub fn record_delivery(
        &mut self,
        destination: &str,
        item_ids: &[i64],
        message_id: Option<i64>,
        kind: DeliveryKind,
        at: Timestamp,
    ) -> Result<()> {
        self.durably(|store| {
            store.record_delivery_in_transaction(destination, item_ids, message_id, kind, at)
        })
    }

    /// Runs `record` with `synchronous = FULL`, so the transaction it commits
    /// is fsynced to the WAL before it returns: what every record of a
    /// destination accepting a message needs (see `handle`).
    pub(super) fn durably(&mut self, record: impl FnOnce(&mut Store) -> Result<()>) -> Result<()> {
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        let recorded = record(self);
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        recorded
    }

    fn record_delivery_in_transaction(
        &mut self,
        destination: &str,
        item_ids: &[i64],
        message_id: Option<i64>,
        kind: DeliveryKind,
        at: Timestamp,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO deliveries (item_id, destination, message_id, delivered_at, kind)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (item_id, destination) DO NOTHING",
            )?;
            for id in item_ids {
                insert.execute(params![id, destination, message_id, to_unix(at), kind.as_str()])?;
            }
            record_destination_success(&tx, destination, at)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Remembers why the last attempt to reach `destination` failed (`status` shows it).
    pub fn record_destination_error(&self, destination: &str, error: &str, at: Timestamp) -> Result<()> {
        self.conn.execute(
            "INSERT INTO destinations (id, last_error, last_error_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET last_error = ?2, last_error_at = ?3",
            params![destination, error, to_unix(at)],
        )?;
        Ok(())
    }

    /// Marks the digest period of `destination` as ending at `at`.
    pub fn set_last_digest_at(&self, destination: &str, at: Timestamp) -> Result<()> {
        self.conn.execute(
            "INSERT INTO destinations (id, last_digest_at) VALUES (?1, ?2)
             ON CONFLICT (id) DO UPDATE SET last_digest_at = ?2",
            params![destination, to_unix(at)],
        )?;
        Ok(())
    }

    /// How many items were delivered to `destination`.
    pub fn delivered_count(&self, destination: &str) -> Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM deliveries WHERE destination = ?1",
            [destination],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }
}

/// Notes, inside the transaction recording an accepted message, that
/// `destination` accepted it: its last success, and its last error cleared.
pub(super) fn record_destination_success(
    tx: &rusqlite::Transaction<'_>,
    destination: &str,
    at: Timestamp,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO destinations (id, last_success_at) VALUES (?1, ?2)
         ON CONFLICT (id) DO UPDATE SET last_success_at = ?2, last_error = NULL,
                                        last_error_at = NULL",
        params![destination, to_unix(at)],
    )?;
    Ok(())
}

fn destination_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DestinationRow> {
    Ok(DestinationRow {
        id: r.get(0)?,
        last_digest_at: r.get::<_, Option<i64>>(1)?.map(from_unix),
        last_success_at: r.get::<_, Option<i64>>(2)?.map(from_unix),
        last_error: r.get(3)?,
        last_error_at: r.get::<_, Option<i64>>(4)?.map(from_unix),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_item(store: &Store, title: &str, published: i64, tags: &str, relevant: bool, status: &str) -> i64 {
        store
            .conn()
            .execute(
                "INSERT INTO items (feed, title, url, published_at, first_seen_at, status, tags, relevant)
                 VALUES ('Feed', ?1, 'https://e.example/a', ?2, ?2, ?3, ?4, ?5)",
                params![title, published, status, tags, relevant],
            )
            .unwrap();
        store.conn().last_insert_rowid()
    }

    #[test]
    fn pending_respects_relevance_status_filter_and_deliveries() {
        let mut store = Store::open_in_memory().unwrap();
        let a = add_item(&store, "a", 20, r#"["csto","border"]"#, true, "pending");
        let b = add_item(&store, "b", 10, r#"["armenia-azerbaijan"]"#, true, "pending");
        add_item(&store, "off topic", 5, r#"["border"]"#, false, "pending");
        add_item(&store, "old", 1, r#"["csto"]"#, true, "backfill");

        let all = store.pending_items("console", &[]).unwrap();
        assert_eq!(
            all.iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![b, a],
            "oldest first"
        );
        let csto = store.pending_items("console", &["csto".to_string()]).unwrap();
        assert_eq!(csto.iter().map(|i| i.id).collect::<Vec<_>>(), vec![a]);

        let at = Timestamp::from_second(100).unwrap();
        store
            .record_delivery("console", &[b], Some(7), DeliveryKind::Digest, at)
            .unwrap();
        let left = store.pending_items("console", &[]).unwrap();
        assert_eq!(left.iter().map(|i| i.id).collect::<Vec<_>>(), vec![a]);
        // Another destination still owes both.
        assert_eq!(store.pending_items("telegram:@x", &[]).unwrap().len(), 2);
        assert_eq!(store.delivered_count("console").unwrap(), 1);
        let row = store.destination("console").unwrap().unwrap();
        assert_eq!(row.last_success_at, Some(at));
    }

    #[test]
    fn error_is_recorded_and_cleared_by_success() {
        let mut store = Store::open_in_memory().unwrap();
        let id = add_item(&store, "a", 20, r#"["csto"]"#, true, "pending");
        let t = Timestamp::from_second(50).unwrap();
        store.ensure_destination("telegram:@x").unwrap();
        store.set_last_digest_at("telegram:@x", t).unwrap();
        store
            .record_destination_error("telegram:@x", "Forbidden: bot was kicked", t)
            .unwrap();
        let row = store.destination("telegram:@x").unwrap().unwrap();
        assert_eq!(row.last_error.as_deref(), Some("Forbidden: bot was kicked"));
        assert_eq!(row.last_digest_at, Some(t));
        store
            .record_delivery("telegram:@x", &[id], Some(1), DeliveryKind::Alert, t)
            .unwrap();
        let row = store.destination("telegram:@x").unwrap().unwrap();
        assert_eq!(row.last_error, None);
        assert_eq!(row.last_digest_at, Some(t), "ensure does not reset the period");
    }
}

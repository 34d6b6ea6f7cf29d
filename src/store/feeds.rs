//! Per-feed state: conditional-GET validators, health (last success, last
//! error, consecutive failures) and when the feed may next be polled.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, Row, params};

use super::{Result, Store, from_unix, to_unix};

/// What the database knows about one feed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedState {
    pub name: String,
    pub url: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// `None` until the feed's first successful poll (the backfill decision).
    pub first_success_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub last_attempt_at: Option<Timestamp>,
    /// `200`, `304`, or the kind of the last error.
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    pub consecutive_failures: u32,
    pub next_poll_at: Option<Timestamp>,
    pub items_seen: u64,
    /// What was wrong but readable in the feed's latest document (a
    /// recovered ill-formed document, a charset it lied about).
    pub last_warning: Option<String>,
}

/// A failed poll, as recorded.
#[derive(Debug, Clone)]
pub struct FeedFailure<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub at: Timestamp,
    /// Short machine kind: `timeout`, `http-503`, `too-large`, `malformed` ...
    pub kind: &'a str,
    /// The message shown by `status` and logged.
    pub message: &'a str,
    /// The whole network was down, not this feed: record the error but do not
    /// count it against the feed (no backoff).
    pub network_down: bool,
    pub next_poll_at: Timestamp,
}

const COLUMNS: &str = "name, url, etag, last_modified, first_success_at, last_success_at, last_attempt_at, \
     last_status, last_error, last_error_at, consecutive_failures, next_poll_at, items_seen, last_warning";

fn from_row(r: &Row<'_>) -> rusqlite::Result<FeedState> {
    let ts =
        |i: usize| -> rusqlite::Result<Option<Timestamp>> { Ok(r.get::<_, Option<i64>>(i)?.map(from_unix)) };
    Ok(FeedState {
        name: r.get(0)?,
        url: r.get(1)?,
        etag: r.get(2)?,
        last_modified: r.get(3)?,
        first_success_at: ts(4)?,
        last_success_at: ts(5)?,
        last_attempt_at: ts(6)?,
        last_status: r.get(7)?,
        last_error: r.get(8)?,
        last_error_at: ts(9)?,
        consecutive_failures: r.get(10)?,
        next_poll_at: ts(11)?,
        items_seen: r.get::<_, i64>(12)?.max(0) as u64,
        last_warning: r.get(13)?,
    })
}

impl Store {
    /// The state of one feed, if it was ever polled.
    pub fn feed_state(&self, name: &str) -> Result<Option<FeedState>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM feeds WHERE name = ?1"),
                [name],
                from_row,
            )
            .optional()?)
    }

    /// Every feed the database knows, by name.
    pub fn feed_states(&self) -> Result<Vec<FeedState>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM feeds ORDER BY name"))?;
        let rows = stmt.query_map([], from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records a failed poll; returns the feed's consecutive failures after it.
    ///
    /// One statement (an upsert returning the count), so it needs no
    /// savepoint to be all-or-nothing and can join a group commit as it is:
    /// in an outage every feed's poll ends here, and the savepoint, the
    /// separate insert and the read back were most of its cost.
    pub fn record_feed_failure(&mut self, f: &FeedFailure<'_>) -> Result<u32> {
        let failures = self
            .conn
            .prepare_cached(
                "INSERT INTO feeds (name, url, last_attempt_at, last_status, last_error, last_error_at,
                     consecutive_failures, next_poll_at, failing_since)
                 VALUES (?1, ?7, ?2, ?3, ?4, ?2, ?5, ?6, CASE WHEN ?5 = 1 THEN ?2 END)
                 ON CONFLICT (name) DO UPDATE SET
                     last_attempt_at = ?2, last_status = ?3, last_error = ?4, last_error_at = ?2,
                     consecutive_failures = consecutive_failures + ?5, next_poll_at = ?6, url = ?7,
                     failing_since = CASE WHEN ?5 = 1 THEN coalesce(failing_since, ?2) ELSE failing_since END
                 RETURNING consecutive_failures",
            )?
            .query_row(
                params![
                    f.name,
                    to_unix(f.at),
                    f.kind,
                    f.message,
                    if f.network_down { 0 } else { 1 },
                    to_unix(f.next_poll_at),
                    f.url
                ],
                |r| r.get(0),
            )?;
        Ok(failures)
    }
}

/// Creates the feed's row if it is new.
pub(super) fn ensure_feed(conn: &rusqlite::Connection, name: &str, url: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO feeds (name, url) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING")?
        .execute(params![name, url])?;
    Ok(())
}

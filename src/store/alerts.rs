//! What operator alerts (`crate::alerts`) read and write: each feed's
//! failure streak and item arrival history, each destination's refusals,
//! and what the operator has already been told (`operator_alerts`), written
//! in the same transaction as the notice that tells them.

use std::collections::HashMap;

use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};

use super::notices::NewNotice;
use super::{Result, Store, from_unix, to_unix};

/// A feed's health, as alerts judge it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedFacts {
    pub name: String,
    /// When the current streak of (counted) failures began; `None` after a success.
    pub failing_since: Option<Timestamp>,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub first_success_at: Option<Timestamp>,
    pub consecutive_failures: u32,
}

/// When a feed's items appeared, for its silence model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Arrivals {
    /// Ascending: an item's publication date when it is dated and not after
    /// we first saw it (so the archive found on a first poll counts at its
    /// real pace, and our own downtime does not look like the feed's), else
    /// when we first saw it.
    pub times: Vec<Timestamp>,
    /// When we last saw a new item from the feed.
    pub last_first_seen: Option<Timestamp>,
}

/// A destination's refusals, as alerts judge them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DestinationFacts {
    pub id: String,
    /// When the current run of refusals (403, chat not found) began.
    pub refused_since: Option<Timestamp>,
    /// The latest refusal.
    pub refused_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
}

/// What the operator was last told about one condition of one feed or destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertState {
    /// A feed name, or a destination id.
    pub subject: String,
    /// `failing`, `silent` or `refused`.
    pub condition: String,
    /// The condition holds, as far as the operator was told.
    pub active: bool,
    /// When the condition the operator was told about began.
    pub since: Timestamp,
    /// Day (`YYYY-MM-DD`, digest time zone) of the last alert about it.
    pub raised_on: Option<String>,
    /// Day of the last recovery message.
    pub recovered_on: Option<String>,
}

fn ts(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<Timestamp>> {
    Ok(r.get::<_, Option<i64>>(i)?.map(from_unix))
}

impl Store {
    /// Every feed's health, by name.
    pub fn feed_facts(&self) -> Result<Vec<FeedFacts>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT name, failing_since, last_error, last_error_at, last_success_at, first_success_at,
                    consecutive_failures
             FROM feeds",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(FeedFacts {
                name: r.get(0)?,
                failing_since: ts(r, 1)?,
                last_error: r.get(2)?,
                last_error_at: ts(r, 3)?,
                last_success_at: ts(r, 4)?,
                first_success_at: ts(r, 5)?,
                consecutive_failures: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every feed's item arrivals (see [`Arrivals`]): the history kept for
    /// each feed (see [`add_arrivals`]), one row per feed however many items
    /// are stored.
    pub fn feed_arrivals(&self) -> Result<HashMap<String, Arrivals>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT feed, times, last_item_seen_at FROM feed_arrivals")?;
        let mut rows = stmt.query([])?;
        let mut by_feed = HashMap::new();
        while let Some(r) = rows.next()? {
            let times = decode_arrivals(r.get_ref(1)?.as_blob_or_null().map_err(rusqlite::Error::from)?);
            let last_first_seen = ts(r, 2)?;
            if times.is_empty() && last_first_seen.is_none() {
                continue;
            }
            by_feed.insert(
                r.get(0)?,
                Arrivals {
                    times,
                    last_first_seen,
                },
            );
        }
        Ok(by_feed)
    }

    /// Every destination's refusals.
    pub fn destination_facts(&self) -> Result<Vec<DestinationFacts>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, refused_since, refused_at, last_error, last_error_at, last_success_at FROM destinations",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(DestinationFacts {
                id: r.get(0)?,
                refused_since: ts(r, 1)?,
                refused_at: ts(r, 2)?,
                last_error: r.get(3)?,
                last_error_at: ts(r, 4)?,
                last_success_at: ts(r, 5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records that `destination` refused a message at `at` (403, chat not
    /// found), after [`Store::record_destination_error`] recorded the error
    /// itself. A refusal after a success begins a new run of refusals.
    pub fn record_destination_refused(&self, destination: &str, at: Timestamp) -> Result<()> {
        self.conn.execute(
            "UPDATE destinations SET
                 refused_since = CASE WHEN refused_since IS NULL OR refused_at IS NULL
                                        OR coalesce(last_success_at, 0) > refused_at
                                      THEN ?2 ELSE refused_since END,
                 refused_at = ?2
             WHERE id = ?1",
            params![destination, to_unix(at)],
        )?;
        Ok(())
    }

    /// What the operator has been told, per subject and condition.
    pub fn alert_states(&self) -> Result<Vec<AlertState>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT subject, condition, active, since, raised_on, recovered_on FROM operator_alerts",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(AlertState {
                subject: r.get(0)?,
                condition: r.get(1)?,
                active: r.get(2)?,
                since: from_unix(r.get(3)?),
                raised_on: r.get(4)?,
                recovered_on: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Writes the changed alert states and queues the notice that tells the
    /// operator about them, in one transaction: a crash leaves both or
    /// neither, so nothing is announced twice or silently marked as told.
    pub fn record_alerts(
        &self,
        states: &[AlertState],
        notice: Option<&NewNotice>,
        at: Timestamp,
    ) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO operator_alerts (subject, condition, active, since, raised_on, recovered_on)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (subject, condition) DO UPDATE SET active = ?3, since = ?4,
                     raised_on = ?5, recovered_on = ?6",
            )?;
            for s in states {
                upsert.execute(params![
                    s.subject,
                    s.condition,
                    s.active,
                    to_unix(s.since),
                    s.raised_on,
                    s.recovered_on
                ])?;
            }
        }
        if let Some(notice) = notice {
            self.queue_notice(notice, at)?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// When an item counts as having arrived (see [`Arrivals::times`]).
pub(super) fn arrival_of(published: i64, first_seen: i64, dated: bool) -> i64 {
    if dated && published < first_seen {
        published
    } else {
        first_seen
    }
}

/// Adds the arrival times (unix seconds) of items a poll at `at` stored to
/// a feed's kept history, as stored in `feed_arrivals.times`, and returns
/// the new value. Only what the silence model can still use is kept
/// ([`SilenceModel::retain_learnable`]: a feed's last 28 days, at least its
/// last eight arrivals), so the history stays a few hundred bytes for most
/// feeds and `status` reads one row per feed, not every stored item. The
/// model is learned as of a feed's latest successful poll, never earlier
/// than `at`, so what is dropped here could never have counted.
///
/// [`SilenceModel::retain_learnable`]: crate::alerts::silence::SilenceModel::retain_learnable
fn add_arrivals(stored: Option<&[u8]>, new: impl IntoIterator<Item = i64>, at: Timestamp) -> Vec<u8> {
    let mut times = decode_arrivals(stored);
    times.extend(new.into_iter().map(from_unix));
    times.sort_unstable();
    times.dedup();
    crate::alerts::silence::SilenceModel::retain_learnable(&mut times, at);
    encode_arrivals(&times)
}

/// Adds the arrivals of the items a poll at `at` stored to the feed's kept
/// history (see [`add_arrivals`]), in the poll's transaction.
pub(super) fn record_arrivals(
    tx: &rusqlite::Connection,
    feed: &str,
    new: impl IntoIterator<Item = i64>,
    at: Timestamp,
) -> rusqlite::Result<()> {
    let stored: Option<Vec<u8>> = tx
        .prepare_cached("SELECT times FROM feed_arrivals WHERE feed = ?1")?
        .query_row([feed], |r| r.get(0))
        .optional()?;
    let times = add_arrivals(stored.as_deref(), new, at);
    tx.prepare_cached(
        "INSERT INTO feed_arrivals (feed, times, last_item_seen_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (feed) DO UPDATE SET times = excluded.times, last_item_seen_at = excluded.last_item_seen_at",
    )?
    .execute(params![feed, times, to_unix(at)])?;
    Ok(())
}

/// Ascending distinct times, as 8-byte little-endian unix seconds.
fn encode_arrivals(times: &[Timestamp]) -> Vec<u8> {
    times.iter().flat_map(|t| to_unix(*t).to_le_bytes()).collect()
}

/// The stored history back to times; a damaged tail (not a whole 8 bytes)
/// is ignored rather than failing every alert evaluation.
fn decode_arrivals(blob: Option<&[u8]>) -> Vec<Timestamp> {
    blob.unwrap_or_default()
        .chunks_exact(8)
        .map(|b| from_unix(i64::from_le_bytes(b.try_into().unwrap_or_default())))
        .collect()
}

/// Part of the migration that keeps arrivals with each feed: works out
/// every feed's history from its stored items, as the pipeline would have
/// kept it poll by poll.
pub(super) fn fill_feed_arrivals(tx: &rusqlite::Connection) -> rusqlite::Result<()> {
    // Per feed: its items' arrival times and the latest first-seen time.
    let mut by_feed: HashMap<String, (Vec<i64>, i64)> = HashMap::new();
    {
        let mut read = tx.prepare(
            "SELECT feed, published_at, first_seen_at, undated FROM items INDEXED BY items_arrivals",
        )?;
        let mut rows = read.query([])?;
        while let Some(r) = rows.next()? {
            let feed = r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
            let (published, first_seen, undated): (i64, i64, bool) = (r.get(1)?, r.get(2)?, r.get(3)?);
            let (times, last_seen) = match by_feed.get_mut(feed) {
                Some(entry) => entry,
                None => by_feed.entry(feed.to_string()).or_insert((Vec::new(), i64::MIN)),
            };
            times.push(arrival_of(published, first_seen, !undated));
            *last_seen = (*last_seen).max(first_seen);
        }
    }
    for (feed, (times, last_seen)) in by_feed {
        record_arrivals(tx, &feed, times, from_unix(last_seen))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::feeds::FeedFailure;
    use crate::store::items::PollSuccess;
    use crate::store::notices::NoticeKind;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn failure(name: &str, t: i64, network_down: bool) -> FeedFailure<'_> {
        FeedFailure {
            name,
            url: "https://a.example/feed",
            at: at(t),
            kind: "http-503",
            message: "the server answered 503",
            network_down,
            next_poll_at: at(t),
        }
    }

    fn success(name: &str, t: i64) -> PollSuccess<'_> {
        PollSuccess {
            name,
            url: "https://a.example/feed",
            at: at(t),
            status: "304",
            etag: None,
            last_modified: None,
            items: Vec::new(),
            backfill: std::time::Duration::from_secs(3600),
            next_poll_at: at(t),
            warning: None,
        }
    }

    #[test]
    fn a_failure_streak_starts_at_its_first_counted_failure_and_ends_with_a_success() {
        let mut s = Store::open_in_memory().unwrap();
        s.record_feed_failure(&failure("A", 100, true)).unwrap();
        assert_eq!(s.feed_facts().unwrap()[0].failing_since, None, "network down");
        s.record_feed_failure(&failure("A", 200, false)).unwrap();
        s.record_feed_failure(&failure("A", 300, false)).unwrap();
        let facts = &s.feed_facts().unwrap()[0];
        assert_eq!(facts.failing_since, Some(at(200)));
        assert_eq!(facts.last_error_at, Some(at(300)));
        s.record_poll_success(success("A", 400)).unwrap();
        let facts = &s.feed_facts().unwrap()[0];
        assert_eq!((facts.failing_since, facts.consecutive_failures), (None, 0));
        s.record_feed_failure(&failure("A", 500, false)).unwrap();
        assert_eq!(s.feed_facts().unwrap()[0].failing_since, Some(at(500)));
    }

    #[test]
    fn a_feed_already_failing_at_upgrade_counts_from_its_last_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            for sql in &super::super::schema::MIGRATIONS[..3] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 3).unwrap();
            conn.execute_batch(
                "INSERT INTO feeds (name, url, last_error, last_error_at, consecutive_failures)
                 VALUES ('Down', 'https://a/', 'HTTP status 503', 500, 4);
                 INSERT INTO feeds (name, url, last_success_at) VALUES ('Up', 'https://b/', 600);",
            )
            .unwrap();
        }
        let s = Store::open(&path).unwrap();
        let facts: HashMap<String, FeedFacts> = s
            .feed_facts()
            .unwrap()
            .into_iter()
            .map(|f| (f.name.clone(), f))
            .collect();
        assert_eq!(facts["Down"].failing_since, Some(at(500)));
        assert_eq!(facts["Up"].failing_since, None);
    }

    fn new_item(feed: &str, n: u32, published: i64, dated: bool) -> crate::store::items::NewItem {
        let item = crate::item::Item {
            feed: feed.into(),
            guid: Some(format!("{feed}-{n}")),
            url: Some(url::Url::parse(&format!("https://a.example/{feed}/{n}")).unwrap()),
            title: format!("Item {n} of {feed}"),
            summary: String::new(),
            content: String::new(),
            published: at(published),
            updated: None,
            dated,
            categories: vec![],
        };
        let keys = crate::dedup::DedupKeys::of(&item);
        crate::store::items::NewItem {
            item,
            keys,
            tags: Default::default(),
            names: vec![],
        }
    }

    fn poll_with<'a>(name: &'a str, t: i64, items: Vec<crate::store::items::NewItem>) -> PollSuccess<'a> {
        PollSuccess {
            status: "200",
            items,
            ..success(name, t)
        }
    }

    #[test]
    fn arrivals_use_dates_not_after_first_seen() {
        let mut s = Store::open_in_memory().unwrap();
        s.record_poll_success(poll_with(
            "A",
            100,
            vec![new_item("A", 1, 50, true), new_item("A", 2, 500, true)],
        ))
        .unwrap();
        s.record_poll_success(poll_with("A", 300, vec![new_item("A", 3, 10, false)]))
            .unwrap();
        // A 304, and a poll whose only entry is already stored, add nothing.
        s.record_poll_success(success("A", 400)).unwrap();
        s.record_poll_success(poll_with("A", 450, vec![new_item("A", 3, 10, false)]))
            .unwrap();
        s.record_poll_success(poll_with("B", 80, vec![new_item("B", 1, 70, true)]))
            .unwrap();
        s.record_poll_success(success("C", 90)).unwrap();
        let arrivals = s.feed_arrivals().unwrap();
        assert_eq!(arrivals["A"].times, vec![at(50), at(100), at(300)]);
        assert_eq!(arrivals["A"].last_first_seen, Some(at(300)));
        assert_eq!(arrivals["B"].times, vec![at(70)]);
        assert_eq!(arrivals["B"].last_first_seen, Some(at(80)));
        assert!(
            !arrivals.contains_key("C"),
            "a feed with no items has no arrivals"
        );
    }

    #[test]
    fn a_feeds_kept_history_is_its_last_four_weeks_and_at_least_eight_items() {
        const DAY: i64 = 86_400;
        let mut s = Store::open_in_memory().unwrap();
        let start = 1_000 * DAY;
        // A busy feed: one item a day for 60 days; a slow one: one a month for a year.
        for day in 0..60 {
            let t = start + day * DAY;
            s.record_poll_success(poll_with(
                "busy",
                t,
                vec![new_item("busy", day as u32, t - 60, true)],
            ))
            .unwrap();
        }
        for month in 0..12 {
            let t = start + month * 30 * DAY;
            s.record_poll_success(poll_with(
                "slow",
                t,
                vec![new_item("slow", month as u32, t, true)],
            ))
            .unwrap();
        }
        let arrivals = s.feed_arrivals().unwrap();
        let busy = &arrivals["busy"].times;
        let last_poll = start + 59 * DAY;
        assert!(busy.iter().all(|t| *t >= at(last_poll - 28 * DAY)), "{busy:?}");
        assert_eq!(busy.len(), 28);
        let slow = &arrivals["slow"].times;
        assert_eq!(slow.len(), crate::alerts::silence::MIN_ARRIVALS);
        assert_eq!(slow.last(), Some(&at(start + 11 * 30 * DAY)));
    }

    #[test]
    fn upgrading_works_out_each_feeds_arrivals_from_its_stored_items() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            let before = super::super::schema::FEED_ARRIVALS_VERSION - 1;
            for sql in &super::super::schema::MIGRATIONS[..before as usize] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", before).unwrap();
            conn.execute_batch("INSERT INTO feeds (name, url) VALUES ('A', 'https://a/'), ('B', 'https://b/'), ('C', 'https://c/')")
                .unwrap();
            for (feed, published, first_seen, undated) in [
                ("A", 50, 100, false),
                ("A", 500, 100, false),
                ("A", 10, 300, true),
                ("B", 70, 80, false),
            ] {
                conn.execute(
                    "INSERT INTO items (feed, title, published_at, first_seen_at, status, undated)
                     VALUES (?1, 't', ?2, ?3, 'pending', ?4)",
                    params![feed, published, first_seen, undated],
                )
                .unwrap();
            }
        }
        let s = Store::open(&path).unwrap();
        let arrivals = s.feed_arrivals().unwrap();
        assert_eq!(arrivals["A"].times, vec![at(50), at(100), at(300)]);
        assert_eq!(arrivals["A"].last_first_seen, Some(at(300)));
        assert_eq!(arrivals["B"].times, vec![at(70)]);
        assert_eq!(arrivals["B"].last_first_seen, Some(at(80)));
        assert!(!arrivals.contains_key("C"));
        assert_eq!(s.undated_counts().unwrap(), HashMap::from([("A".to_string(), 1)]));
        let index: Option<String> = s
            .conn()
            .query_row(
                "SELECT name FROM sqlite_master WHERE name = 'items_arrivals'",
                [],
                |r| r.get(0),
            )
            .optional()
            .unwrap();
        assert_eq!(index, None, "the old index is dropped");
    }

    #[test]
    fn a_refusal_run_restarts_after_a_success() {
        let mut s = Store::open_in_memory().unwrap();
        let d = "telegram:@chan_x";
        s.record_destination_error(d, "the chat is unavailable: Forbidden", at(100))
            .unwrap();
        s.record_destination_refused(d, at(100)).unwrap();
        s.record_destination_error(d, "the chat is unavailable: Forbidden", at(200))
            .unwrap();
        s.record_destination_refused(d, at(200)).unwrap();
        let f = &s.destination_facts().unwrap()[0];
        assert_eq!((f.refused_since, f.refused_at), (Some(at(100)), Some(at(200))));
        s.record_delivery(
            d,
            &[],
            Some(1),
            crate::store::outbox::DeliveryKind::Digest,
            at(300),
        )
        .unwrap();
        s.record_destination_error(d, "the chat is unavailable: Forbidden", at(400))
            .unwrap();
        s.record_destination_refused(d, at(400)).unwrap();
        let f = &s.destination_facts().unwrap()[0];
        assert_eq!(f.refused_since, Some(at(400)));
    }

    #[test]
    fn states_and_their_notice_are_written_together() {
        let s = Store::open_in_memory().unwrap();
        let state = AlertState {
            subject: "A".into(),
            condition: "failing".into(),
            active: true,
            since: at(100),
            raised_on: Some("2026-11-30".into()),
            recovered_on: None,
        };
        let notice = NewNotice {
            destination: "telegram:@ops_room".into(),
            kind: NoticeKind::OperatorAlert,
            key: "alerts:1".into(),
            html: "failing: A".into(),
            photo: None,
        };
        s.record_alerts(std::slice::from_ref(&state), Some(&notice), at(200))
            .unwrap();
        assert_eq!(s.alert_states().unwrap(), vec![state.clone()]);
        assert_eq!(s.pending_notice_count("telegram:@ops_room").unwrap(), 1);
        let cleared = AlertState {
            active: false,
            recovered_on: Some("2026-11-30".into()),
            ..state
        };
        s.record_alerts(std::slice::from_ref(&cleared), None, at(300))
            .unwrap();
        assert_eq!(s.alert_states().unwrap(), vec![cleared]);
    }
}

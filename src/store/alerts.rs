//! What operator alerts (`crate::alerts`) read and write: each feed's
//! failure streak and item arrival history, each destination's refusals,
//! and what the operator has already been told (`operator_alerts`), written
//! in the same transaction as the notice that tells them.

use std::collections::HashMap;

use jiff::Timestamp;
use rusqlite::params;

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

    /// Every feed's item arrivals (see [`Arrivals`]), from every stored item.
    pub fn feed_arrivals(&self) -> Result<HashMap<String, Arrivals>> {
        // One pass over the covering index `items_arrivals` (never the
        // items' text), each feed's times sorted here.
        let mut stmt = self.conn.prepare_cached(
            "SELECT feed,
                    CASE WHEN undated = 0 AND published_at < first_seen_at THEN published_at
                         ELSE first_seen_at END,
                    first_seen_at
             FROM items INDEXED BY items_arrivals ORDER BY feed",
        )?;
        let mut rows = stmt.query([])?;
        let mut by_feed: HashMap<String, Arrivals> = HashMap::new();
        while let Some(r) = rows.next()? {
            // Borrowed: a name is copied once per feed, not once per item.
            let feed = r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
            let (arrival, first_seen) = (from_unix(r.get(1)?), from_unix(r.get(2)?));
            let arrivals = match by_feed.get_mut(feed) {
                Some(a) => a,
                None => by_feed.entry(feed.to_string()).or_default(),
            };
            arrivals.times.push(arrival);
            arrivals.last_first_seen = arrivals.last_first_seen.max(Some(first_seen));
        }
        for arrivals in by_feed.values_mut() {
            arrivals.times.sort_unstable();
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

    #[test]
    fn arrivals_use_dates_not_after_first_seen() {
        let s = Store::open_in_memory().unwrap();
        for (feed, published, first_seen, undated) in [
            ("A", 50, 100, false),
            ("A", 500, 100, false),
            ("A", 10, 300, true),
            ("B", 70, 80, false),
        ] {
            s.conn()
                .execute(
                    "INSERT INTO items (feed, title, published_at, first_seen_at, status, undated)
                     VALUES (?1, 't', ?2, ?3, 'pending', ?4)",
                    params![feed, published, first_seen, undated],
                )
                .unwrap();
        }
        let arrivals = s.feed_arrivals().unwrap();
        assert_eq!(arrivals["A"].times, vec![at(50), at(100), at(300)]);
        assert_eq!(arrivals["A"].last_first_seen, Some(at(300)));
        assert_eq!(arrivals["B"].times, vec![at(70)]);
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

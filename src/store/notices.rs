//! Notices: messages that carry no items — operator alerts, the weekly
//! report's chart — queued per destination and delivered by the same outbox
//! as digests (`deliver`), with the same promise: queued once, marked sent
//! only after the destination accepted it, sent again after a crash in the
//! window between the two and never otherwise.
//!
//! A notice is queued under a `key` its producer chooses (`report:2026-W48`,
//! `failing:MassisPost:2026-11-30`): queueing the same key for the same
//! destination again does nothing, so producers can simply ask every cycle.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};

use super::{Result, Store, from_unix, to_unix};

/// What a notice is, for the log, the console and `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// A message to the operator's admin chat (a feed failing, silent, recovered …).
    OperatorAlert,
    /// The weekly trend chart.
    WeeklyReport,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::OperatorAlert => "operator-alert",
            NoticeKind::WeeklyReport => "weekly-report",
        }
    }

    fn parse(text: &str) -> Option<NoticeKind> {
        match text {
            "operator-alert" => Some(NoticeKind::OperatorAlert),
            "weekly-report" => Some(NoticeKind::WeeklyReport),
            _ => None,
        }
    }
}

/// A notice to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotice {
    /// `console` or `telegram:<chat>`.
    pub destination: String,
    pub kind: NoticeKind,
    /// Queueing is idempotent per `(destination, key)`.
    pub key: String,
    /// Telegram HTML: the message, or the photo's caption.
    pub html: String,
    /// A PNG to send with `sendPhoto`, `html` being its caption.
    pub photo: Option<Vec<u8>>,
}

/// A queued notice not yet accepted by its destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub id: i64,
    pub destination: String,
    pub kind: NoticeKind,
    pub key: String,
    pub html: String,
    pub photo: Option<Vec<u8>>,
    pub created_at: Timestamp,
}

impl Store {
    /// Queues `notice` unless one with its key is already queued (or sent) for
    /// its destination; whether it was queued now.
    pub fn queue_notice(&self, notice: &NewNotice, at: Timestamp) -> Result<bool> {
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO notices (destination, kind, key, html, photo, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (destination, key) DO NOTHING",
            )?
            .execute(params![
                notice.destination,
                notice.kind.as_str(),
                notice.key,
                notice.html,
                notice.photo,
                to_unix(at)
            ])?;
        Ok(inserted == 1)
    }

    /// Whether a notice with `key` was ever queued for `destination` (sent or not).
    pub fn notice_exists(&self, destination: &str, key: &str) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM notices WHERE destination = ?1 AND key = ?2")?
            .query_row(params![destination, key], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Notices owed to `destination`, oldest first. A row whose kind this
    /// build does not know (written by a newer one) is left alone.
    pub fn pending_notices(&self, destination: &str) -> Result<Vec<Notice>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, destination, kind, key, html, photo, created_at
             FROM notices WHERE destination = ?1 AND sent_at IS NULL ORDER BY id",
        )?;
        let rows = stmt.query_map([destination], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<Vec<u8>>>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })?;
        let mut notices = Vec::new();
        for row in rows {
            let (id, destination, kind, key, html, photo, created_at) = row?;
            let Some(kind) = NoticeKind::parse(&kind) else {
                tracing::warn!(
                    notice = id,
                    kind,
                    "skipping a notice of a kind this build does not know"
                );
                continue;
            };
            notices.push(Notice {
                id,
                destination,
                kind,
                key,
                html,
                photo,
                created_at: from_unix(created_at),
            });
        }
        Ok(notices)
    }

    /// How many notices `destination` still owes.
    pub fn pending_notice_count(&self, destination: &str) -> Result<u64> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM notices WHERE destination = ?1 AND sent_at IS NULL")?
            .query_row([destination], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// Records that the notice's destination accepted it. Committed with
    /// `synchronous = FULL`, like [`Store::record_delivery`] and for the same
    /// reason: on disk before the next message to that chat is sent.
    pub fn record_notice_sent(&mut self, id: i64, message_id: Option<i64>, at: Timestamp) -> Result<()> {
        self.durably(|store| store.record_notice_sent_in_transaction(id, message_id, at))
    }

    fn record_notice_sent_in_transaction(
        &mut self,
        id: i64,
        message_id: Option<i64>,
        at: Timestamp,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        let destination: Option<String> = tx
            .query_row(
                "UPDATE notices SET sent_at = ?2, message_id = ?3
                 WHERE id = ?1 AND sent_at IS NULL RETURNING destination",
                params![id, to_unix(at), message_id],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(destination) = destination {
            super::outbox::record_destination_success(&tx, &destination, at)?;
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(destination: &str, key: &str, photo: Option<Vec<u8>>) -> NewNotice {
        NewNotice {
            destination: destination.into(),
            kind: if photo.is_some() {
                NoticeKind::WeeklyReport
            } else {
                NoticeKind::OperatorAlert
            },
            key: key.into(),
            html: format!("<b>{key}</b>"),
            photo,
        }
    }

    #[test]
    fn queueing_is_idempotent_per_destination_and_key() {
        let store = Store::open_in_memory().unwrap();
        let t = Timestamp::from_second(1_000).unwrap();
        assert!(
            store
                .queue_notice(&notice("telegram:@admin", "failing:A:2026-11-30", None), t)
                .unwrap()
        );
        assert!(
            !store
                .queue_notice(&notice("telegram:@admin", "failing:A:2026-11-30", None), t)
                .unwrap()
        );
        assert!(
            store
                .queue_notice(&notice("console", "failing:A:2026-11-30", None), t)
                .unwrap()
        );
        assert!(
            store
                .notice_exists("telegram:@admin", "failing:A:2026-11-30")
                .unwrap()
        );
        assert!(
            !store
                .notice_exists("telegram:@admin", "failing:B:2026-11-30")
                .unwrap()
        );
        assert_eq!(store.pending_notice_count("telegram:@admin").unwrap(), 1);
    }

    #[test]
    fn a_sent_notice_is_not_pending_and_not_queued_again() {
        let mut store = Store::open_in_memory().unwrap();
        let t = Timestamp::from_second(1_000).unwrap();
        let png = vec![0x89, b'P', b'N', b'G'];
        store
            .queue_notice(&notice("console", "report:2026-W48", Some(png.clone())), t)
            .unwrap();
        store
            .queue_notice(&notice("console", "failing:A:2026-11-30", None), t)
            .unwrap();
        let pending = store.pending_notices("console").unwrap();
        assert_eq!(
            pending.iter().map(|n| n.key.as_str()).collect::<Vec<_>>(),
            vec!["report:2026-W48", "failing:A:2026-11-30"],
            "oldest first"
        );
        assert_eq!(pending[0].photo.as_deref(), Some(&png[..]));
        assert_eq!(pending[0].kind, NoticeKind::WeeklyReport);

        store.record_notice_sent(pending[0].id, Some(41), t).unwrap();
        // A second record (a retry after a lost answer) changes nothing.
        store.record_notice_sent(pending[0].id, Some(42), t).unwrap();
        let left = store.pending_notices("console").unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].key, "failing:A:2026-11-30");
        assert!(
            !store
                .queue_notice(&notice("console", "report:2026-W48", None), t)
                .unwrap()
        );
        let row = store.destination("console").unwrap().unwrap();
        assert_eq!(row.last_success_at, Some(t));
    }
}

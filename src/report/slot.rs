//! When the weekly report is due: one slot a week (a weekday and a time of
//! day, `[report] at`) in the digest's time zone, correct across DST changes
//! through jiff, as the digest's own slots are (`digest::schedule`).
//!
//! The service asks for the latest slot at or before now and queues that
//! week's report under a key naming the week; queueing is idempotent per key,
//! so a slot passed while the service was down is caught up once after the
//! restart, and never twice.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::config::ReportConfig;

/// The slot on `date`, when `date` is the slot's weekday. A time skipped by
/// a DST jump is taken after the gap, a repeated one at its first
/// occurrence (jiff's "compatible" rule, as for digests).
fn slot_on(report: &ReportConfig, zone: &TimeZone, date: Date) -> Option<Timestamp> {
    if date.weekday() != report.weekday {
        return None;
    }
    date.to_datetime(report.time)
        .to_zoned(zone.clone())
        .ok()
        .map(|zoned| zoned.timestamp())
}

/// The latest weekly slot at or before `now` (within the last eight days,
/// which always hold one).
pub fn latest_slot(report: &ReportConfig, zone: &TimeZone, now: Timestamp) -> Option<Timestamp> {
    let mut day = now.to_zoned(zone.clone()).date();
    for _ in 0..9 {
        if let Some(slot) = slot_on(report, zone, day).filter(|slot| *slot <= now) {
            return Some(slot);
        }
        day = day.yesterday().ok()?;
    }
    None
}

/// The first weekly slot strictly after `now`.
pub fn next_slot(report: &ReportConfig, zone: &TimeZone, now: Timestamp) -> Option<Timestamp> {
    let mut day = now.to_zoned(zone.clone()).date();
    for _ in 0..9 {
        if let Some(slot) = slot_on(report, zone, day).filter(|slot| *slot > now) {
            return Some(slot);
        }
        day = day.tomorrow().ok()?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{Weekday, time};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn monday_nine() -> ReportConfig {
        ReportConfig {
            weekly: true,
            weekday: Weekday::Monday,
            time: time(9, 0, 0, 0),
        }
    }

    #[test]
    fn the_latest_and_next_slot_are_in_the_zone() {
        let yerevan = TimeZone::get("Asia/Yerevan").unwrap();
        // Monday 30 Nov 2026, 09:00 in Yerevan (UTC+4) is 05:00 UTC.
        let slot = ts("2026-11-30T05:00:00Z");
        assert_eq!(
            latest_slot(&monday_nine(), &yerevan, slot),
            Some(slot),
            "at the slot"
        );
        assert_eq!(
            latest_slot(&monday_nine(), &yerevan, ts("2026-11-30T04:59:59Z")),
            Some(ts("2026-11-23T05:00:00Z")),
            "a second before it: last week's"
        );
        assert_eq!(
            latest_slot(&monday_nine(), &yerevan, ts("2026-12-03T12:00:00Z")),
            Some(slot),
            "later in the week: this Monday's (caught up after a restart)"
        );
        assert_eq!(
            next_slot(&monday_nine(), &yerevan, slot),
            Some(ts("2026-12-07T05:00:00Z"))
        );
        assert_eq!(
            next_slot(&monday_nine(), &yerevan, ts("2026-11-30T04:00:00Z")),
            Some(slot)
        );
    }

    #[test]
    fn the_slot_follows_the_wall_clock_across_dst() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        // 09:00 CET on Monday 23 March, 09:00 CEST on Monday 30 March 2026.
        let before = next_slot(&monday_nine(), &berlin, ts("2026-03-22T00:00:00Z")).unwrap();
        assert_eq!(before, ts("2026-03-23T08:00:00Z"));
        assert_eq!(
            next_slot(&monday_nine(), &berlin, before),
            Some(ts("2026-03-30T07:00:00Z"))
        );
    }
}

//! When a digest is due: fixed times of day in an IANA time zone (correct
//! across DST changes, through jiff), or a fixed period.
//!
//! A destination remembers the end of the period its last digest covered
//! (`destinations.last_digest_at`). A digest is due once the first slot after
//! that moment has passed. A destination that never had a digest gets one at
//! once (`run --once` on a new install shows what it caught; the backfill
//! window keeps it short); a service that was down over several slots posts
//! one digest, not several.

use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::config::Schedule;

/// The first digest slot strictly after `after`.
///
/// For times of day, a time that does not exist on a day (skipped by a DST
/// jump) is taken as the same wall-clock distance after the jump (jiff's
/// "compatible" rule: 02:30 becomes 03:30); a time that happens twice (the
/// clock set back) is taken at its first occurrence only, so it never yields
/// two digests.
pub fn next_slot_after(schedule: &Schedule, zone: &TimeZone, after: Timestamp) -> Timestamp {
    match schedule {
        Schedule::Every(period) => add_duration(after, *period),
        Schedule::At(times) => {
            let start = after.to_zoned(zone.clone()).date();
            let mut best: Option<Timestamp> = None;
            let mut day = start;
            // Two days ahead always holds a slot; a third covers any DST oddity.
            for _ in 0..3 {
                for time in times {
                    let Ok(zoned) = day.to_datetime(*time).to_zoned(zone.clone()) else {
                        continue;
                    };
                    let slot = zoned.timestamp();
                    if slot > after && best.is_none_or(|b| slot < b) {
                        best = Some(slot);
                    }
                }
                match day.tomorrow() {
                    Ok(next) => day = next,
                    Err(_) => break,
                }
            }
            // No times (config validation forbids it) or the end of time: once a day.
            best.unwrap_or_else(|| add_duration(after, Duration::from_secs(86_400)))
        }
    }
}

/// Whether a digest is due at `now` for a period that began at `last_digest_at`.
pub fn is_due(schedule: &Schedule, zone: &TimeZone, last_digest_at: Timestamp, now: Timestamp) -> bool {
    next_slot_after(schedule, zone, last_digest_at) <= now
}

fn add_duration(t: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::time;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap()
    }

    #[test]
    fn next_time_of_day_in_zone() {
        let yerevan = TimeZone::get("Asia/Yerevan").unwrap();
        let at = Schedule::At(vec![time(9, 0, 0, 0), time(21, 0, 0, 0)]);
        // 10:00 in Yerevan (UTC+4) -> 21:00 Yerevan = 17:00 UTC the same day.
        assert_eq!(
            next_slot_after(&at, &yerevan, ts("2026-11-23T06:00:00Z")),
            ts("2026-11-23T17:00:00Z")
        );
        // Exactly at a slot: the next one, never the same.
        assert_eq!(
            next_slot_after(&at, &yerevan, ts("2026-11-23T17:00:00Z")),
            ts("2026-11-24T05:00:00Z")
        );
    }

    #[test]
    fn a_daily_time_follows_the_wall_clock_across_spring_forward() {
        let at = Schedule::At(vec![time(9, 0, 0, 0)]);
        let first = next_slot_after(&at, &berlin(), ts("2026-03-28T00:00:00Z"));
        assert_eq!(first, ts("2026-03-28T08:00:00Z"), "09:00 CET");
        let second = next_slot_after(&at, &berlin(), first);
        assert_eq!(second, ts("2026-03-29T07:00:00Z"), "09:00 CEST, 23 hours later");
    }

    #[test]
    fn a_time_skipped_by_dst_moves_after_the_gap() {
        // 2026-03-29 02:00 CET jumps to 03:00 CEST: 02:30 does not exist that day.
        let at = Schedule::At(vec![time(2, 30, 0, 0)]);
        let slot = next_slot_after(&at, &berlin(), ts("2026-03-28T12:00:00Z"));
        assert_eq!(slot, ts("2026-03-29T01:30:00Z"), "03:30 CEST");
    }

    #[test]
    fn a_time_repeated_by_dst_fires_once() {
        // 2026-10-25 03:00 CEST goes back to 02:00 CET: 02:30 happens twice.
        let at = Schedule::At(vec![time(2, 30, 0, 0)]);
        let first = next_slot_after(&at, &berlin(), ts("2026-10-24T12:00:00Z"));
        assert_eq!(first, ts("2026-10-25T00:30:00Z"), "the first 02:30 (CEST)");
        let next = next_slot_after(&at, &berlin(), first);
        assert_eq!(
            next,
            ts("2026-10-26T01:30:00Z"),
            "not the second 02:30, but tomorrow's"
        );
    }

    #[test]
    fn every_is_a_fixed_period_and_due_after_it() {
        let every = Schedule::Every(Duration::from_secs(6 * 3600));
        let last = ts("2026-11-23T00:00:00Z");
        assert_eq!(
            next_slot_after(&every, &TimeZone::UTC, last),
            ts("2026-11-23T06:00:00Z")
        );
        assert!(!is_due(&every, &TimeZone::UTC, last, ts("2026-11-23T05:59:59Z")));
        assert!(is_due(&every, &TimeZone::UTC, last, ts("2026-11-23T06:00:00Z")));
    }

    #[test]
    fn slots_missed_while_down_make_one_digest_due() {
        let at = Schedule::At(vec![time(9, 0, 0, 0), time(21, 0, 0, 0)]);
        let last = ts("2026-11-20T05:00:00Z");
        let now = ts("2026-11-23T06:00:00Z");
        assert!(is_due(&at, &TimeZone::UTC, last, now));
        // After that digest (period ends now) the next is the next slot, not a catch-up.
        assert_eq!(
            next_slot_after(&at, &TimeZone::UTC, now),
            ts("2026-11-23T09:00:00Z")
        );
    }
}

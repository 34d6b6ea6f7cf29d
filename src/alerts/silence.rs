//! How long a feed may go without a new item before its silence is news:
//! learned from the feed's own history, so a site that posts hourly is
//! noticed within a day or two of its feed going stale, and a monthly
//! bulletin is not reported every other day.
//!
//! The rule, in one sentence: a feed is silent when it has had no new item
//! for longer than [`FACTOR`] times its usual gap — the [`QUANTILE`] of the
//! gaps between its items over the last [`HISTORY`] (at least its last
//! [`MIN_ARRIVALS`] items, however old) — and never before the configured
//! floor (`alerts.silent_after`).
//!
//! Why a high quantile and not the longest gap: the longest gap is often the
//! very breakage this looks for (a feed stuck for a week). Learning it would
//! make the next breakage take twice as long to notice; the 95th percentile
//! shrugs off a few such outliers while still covering nights and quiet
//! days. Why a factor of three: a feed's gaps are bursty, and three of its
//! long-ish gaps in a row without anything is rare for a live feed.

use std::time::Duration;

use jiff::Timestamp;

/// How far back a feed's gaps are learned from.
pub const HISTORY: Duration = Duration::from_secs(28 * 86_400);
/// Feeds that post less often than this many items in [`HISTORY`] are
/// learned from their last this-many items, however old.
pub const MIN_ARRIVALS: usize = 8;
/// With fewer gaps than this, a feed's rhythm is unknown: only the floor applies.
pub const MIN_GAPS: usize = 3;
/// Which gap counts as "usual": the 95th percentile (nearest rank).
pub const QUANTILE: f64 = 0.95;
/// How many usual gaps of silence make an alert.
pub const FACTOR: u32 = 3;

/// A feed's learned rhythm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilenceModel {
    /// The [`QUANTILE`] of its gaps; `None` with fewer than [`MIN_GAPS`].
    pub usual_gap: Option<Duration>,
    /// How many gaps it was learned from.
    pub gaps: usize,
}

impl SilenceModel {
    /// Learns from `arrivals` (ascending; items that appeared in the same
    /// second count once) as of `now`.
    pub fn learn(arrivals: &[Timestamp], now: Timestamp) -> SilenceModel {
        let mut distinct: Vec<Timestamp> = arrivals.iter().copied().filter(|t| *t <= now).collect();
        distinct.dedup();
        let cutoff = history_start(now);
        let recent = distinct.partition_point(|t| *t < cutoff);
        let start = recent.min(distinct.len().saturating_sub(MIN_ARRIVALS));
        let mut gaps: Vec<Duration> = distinct[start..]
            .windows(2)
            .filter_map(|w| w[1].duration_since(w[0]).try_into().ok())
            .collect();
        if gaps.len() < MIN_GAPS {
            return SilenceModel {
                usual_gap: None,
                gaps: gaps.len(),
            };
        }
        gaps.sort_unstable();
        let rank = ((QUANTILE * gaps.len() as f64).ceil() as usize).clamp(1, gaps.len());
        SilenceModel {
            usual_gap: Some(gaps[rank - 1]),
            gaps: gaps.len(),
        }
    }

    /// Drops from `arrivals` (ascending, distinct) what no later learning
    /// can use: [`SilenceModel::learn`] as of any time at or after `now`
    /// gives the same model from what is kept as from all of them. Kept:
    /// every arrival within [`HISTORY`] of `now`, and at least the last
    /// [`MIN_ARRIVALS`]. This is what bounds a feed's stored history (see
    /// `store::alerts`), so the model never reads every item ever stored.
    pub fn retain_learnable(arrivals: &mut Vec<Timestamp>, now: Timestamp) {
        let cutoff = history_start(now);
        let recent = arrivals.partition_point(|t| *t < cutoff);
        let start = recent.min(arrivals.len().saturating_sub(MIN_ARRIVALS));
        arrivals.drain(..start);
    }

    /// How long a silence must last to be reported: [`FACTOR`] usual gaps,
    /// never less than `floor`.
    pub fn threshold(&self, floor: Duration) -> Duration {
        self.usual_gap
            .map_or(floor, |gap| gap.saturating_mul(FACTOR).max(floor))
    }
}

/// The earliest arrival [`HISTORY`] covers as of `now`.
fn history_start(now: Timestamp) -> Timestamp {
    now.checked_sub(jiff::SignedDuration::try_from(HISTORY).unwrap_or(jiff::SignedDuration::ZERO))
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3600;
    const DAY: Duration = Duration::from_secs(86_400);

    fn now() -> Timestamp {
        "2026-11-30T12:00:00Z".parse().unwrap()
    }

    /// Arrivals every `step` seconds, the last one `step` before now.
    fn every(step: i64, count: i64) -> Vec<Timestamp> {
        (1..=count)
            .rev()
            .map(|i| now() - jiff::SignedDuration::from_secs(i * step))
            .collect()
    }

    #[test]
    fn without_history_only_the_floor_applies() {
        let model = SilenceModel::learn(&[], now());
        assert_eq!(model.usual_gap, None);
        assert_eq!(model.threshold(2 * DAY), 2 * DAY);
        let few = SilenceModel::learn(&every(HOUR, 3), now());
        assert_eq!((few.usual_gap, few.gaps), (None, 2));
    }

    #[test]
    fn an_hourly_feed_is_held_to_the_floor_and_a_daily_one_to_three_days() {
        let hourly = SilenceModel::learn(&every(HOUR, 200), now());
        assert_eq!(hourly.usual_gap, Some(Duration::from_secs(3600)));
        assert_eq!(hourly.threshold(2 * DAY), 2 * DAY);
        assert_eq!(
            hourly.threshold(Duration::from_secs(60)),
            Duration::from_secs(3 * 3600)
        );
        let daily = SilenceModel::learn(&every(24 * HOUR, 60), now());
        assert_eq!(daily.threshold(2 * DAY), 3 * DAY);
    }

    #[test]
    fn a_week_long_outage_does_not_teach_the_model_to_wait_weeks() {
        let mut arrivals = every(HOUR, 100);
        let before_outage = arrivals[0] - jiff::SignedDuration::from_hours(7 * 24);
        arrivals.insert(0, before_outage);
        let model = SilenceModel::learn(&arrivals, now());
        assert_eq!(model.usual_gap, Some(Duration::from_secs(3600)));
    }

    #[test]
    fn nights_and_quiet_days_are_the_usual_gap() {
        // Ten items a day an hour apart from 08:00, nothing overnight (14 h), for four weeks.
        let mut arrivals = Vec::new();
        for day in (1..=27).rev() {
            for hour in 8..18 {
                arrivals.push(now() - jiff::SignedDuration::from_hours(day * 24 + 12 - hour));
            }
        }
        let model = SilenceModel::learn(&arrivals, now());
        assert_eq!(model.usual_gap, Some(Duration::from_secs(15 * 3600)));
        assert_eq!(model.threshold(DAY), Duration::from_secs(45 * 3600));
    }

    #[test]
    fn a_monthly_feed_is_learned_from_its_last_items_however_old() {
        let model = SilenceModel::learn(&every(30 * 24 * HOUR, 10), now());
        assert_eq!(model.gaps, MIN_ARRIVALS - 1);
        assert_eq!(model.threshold(2 * DAY), 90 * DAY);
    }

    #[test]
    fn items_of_one_second_count_once_and_future_ones_not_at_all() {
        let t = every(60, 4);
        let arrivals = vec![
            t[0],
            t[0],
            t[1],
            t[1],
            t[2],
            t[3],
            now() + jiff::SignedDuration::from_hours(1),
        ];
        let model = SilenceModel::learn(&arrivals, now());
        assert_eq!((model.gaps, model.usual_gap), (3, Some(Duration::from_secs(60))));
    }

    #[test]
    fn what_is_retained_learns_the_same_model_later() {
        // Feeds of every pace, some with a month-old archive, judged as of
        // the time of the write and at later times.
        let paces = [
            (600, 400),
            (3 * HOUR, 300),
            (DAY.as_secs() as i64, 60),
            (9 * DAY.as_secs() as i64, 12),
        ];
        for (step, count) in paces {
            for extra in [0, 1, 5] {
                let mut all = every(step, count);
                all.extend(every(step * 7 + 13, extra));
                all.sort_unstable();
                all.dedup();
                let mut kept = all.clone();
                SilenceModel::retain_learnable(&mut kept, now());
                assert!(kept.len() >= MIN_ARRIVALS.min(all.len()));
                for later in [0, HOUR, 5 * DAY.as_secs() as i64, 40 * DAY.as_secs() as i64] {
                    let at = now() + jiff::SignedDuration::from_secs(later);
                    assert_eq!(
                        SilenceModel::learn(&kept, at),
                        SilenceModel::learn(&all, at),
                        "step {step}, count {count}, extra {extra}, {later} s later"
                    );
                }
            }
        }
    }
}

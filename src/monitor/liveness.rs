//! Is every worker of the service making progress? One answer, shared by
//! `GET /healthz` and the systemd watchdog ping, so the two can never
//! disagree.
//!
//! Each worker has a [`Heartbeat`]: the poll loop (all feed workers
//! together), the delivery loop, and the store's thread. A worker is
//! **busy** while it holds a [`Unit`] of work, and makes **progress** when a
//! unit ends or when it reports a step inside one (an HTTP response, a
//! message sent). It is **stalled** when it is busy and has made no progress
//! for longer than its expected period.
//!
//! Being idle is never a stall: a worker waiting for its next poll time or
//! its next digest holds no unit, so a service with nothing due is healthy
//! however long it waits. A wait that is part of the work but is known to be
//! long and harmless (Telegram's pacing and flood control) is declared with
//! [`Heartbeat::idle_until`], so the clock starts when the wait ends.
//!
//! Why "busy for too long" and not "no beat for too long": the second needs
//! every idle worker to wake up just to say it is alive, and says nothing a
//! timer would not; the first costs two relaxed atomic stores per unit and
//! catches exactly what the watchdog is for: a worker stuck in its work
//! (a lock never released, a write that never returns, a runtime blocked).
//!
//! The poll loop is many tasks; its heartbeat counts units, and progress by
//! any of them is progress of the loop: ten thousand feeds queueing for four
//! poll slots are not stalled while the slots keep finishing polls.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Config;

/// The zero of every heartbeat's clock.
static CLOCK_START: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Time since [`CLOCK_START`], in milliseconds: fits an atomic.
fn millis_at(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(*CLOCK_START).as_millis()).unwrap_or(u64::MAX)
}

/// Extra time teloxide takes on any 5xx answer before returning it (GOTCHAS.md).
const TELOXIDE_5XX_PAUSE: Duration = Duration::from_secs(10);

/// One worker's progress.
#[derive(Debug)]
pub struct Heartbeat {
    name: &'static str,
    /// Units of work in progress (the poll loop runs many at once).
    busy: AtomicUsize,
    /// When it last made progress, or became busy after being idle.
    last_progress_ms: AtomicU64,
    /// How long it may go without progress while busy; `u64::MAX` until configured.
    period_ms: AtomicU64,
}

/// A worker that has been busy without progress for longer than its period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stall {
    pub worker: &'static str,
    /// How long it has gone without progress.
    pub no_progress_for_s: f64,
    /// How long it may, from the config.
    pub expected_within_s: f64,
}

/// Every stall on one line, for a log line or /healthz's `reason`.
pub fn describe(stalls: &[Stall]) -> String {
    stalls
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl std::fmt::Display for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the {} worker has made no progress for {:.1} s (expected within {:.1} s)",
            self.worker, self.no_progress_for_s, self.expected_within_s
        )
    }
}

impl Heartbeat {
    /// A heartbeat that never reports a stall until [`Heartbeat::set_period`].
    pub const fn new(name: &'static str) -> Heartbeat {
        Heartbeat {
            name,
            busy: AtomicUsize::new(0),
            last_progress_ms: AtomicU64::new(0),
            period_ms: AtomicU64::new(u64::MAX),
        }
    }

    /// The worker's name, as /healthz shows it.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Sets how long the worker may be busy without progress.
    pub fn set_period(&self, period: Duration) {
        let ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
        self.period_ms.store(ms.max(1), Ordering::Relaxed);
    }

    /// Marks the worker busy until the returned unit is dropped (finished,
    /// cancelled or unwound alike: a unit never outlives its work).
    pub fn unit(&self) -> Unit<'_> {
        if self.busy.fetch_add(1, Ordering::Relaxed) == 0 {
            // Idle until now: the clock starts with this unit.
            self.progress();
        }
        Unit(self)
    }

    /// Reports a step of progress inside a unit.
    pub fn progress(&self) {
        self.last_progress_ms
            .fetch_max(millis_at(Instant::now()), Ordering::Relaxed);
    }

    /// Declares a wait inside a unit that ends at `until` and is not a stall
    /// (pacing, flood control): the clock starts again when it ends.
    pub fn idle_until(&self, until: Instant) {
        self.last_progress_ms
            .fetch_max(millis_at(until.max(Instant::now())), Ordering::Relaxed);
    }

    /// The stall at `now`, if the worker is busy and overdue.
    pub fn stall_at(&self, now: Instant) -> Option<Stall> {
        if self.busy.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let period = self.period_ms.load(Ordering::Relaxed);
        let quiet = millis_at(now).saturating_sub(self.last_progress_ms.load(Ordering::Relaxed));
        (quiet > period).then(|| Stall {
            worker: self.name,
            no_progress_for_s: quiet as f64 / 1000.0,
            expected_within_s: period as f64 / 1000.0,
        })
    }
}

/// A unit of work in progress; ending it (dropping it) is progress.
#[must_use = "the worker is busy only while the unit is held"]
pub struct Unit<'a>(&'a Heartbeat);

impl Drop for Unit<'_> {
    fn drop(&mut self) {
        self.0.progress();
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The service's workers.
#[derive(Debug)]
pub struct Liveness {
    /// Every feed worker: a unit per poll, progress per HTTP response.
    pub poll: Heartbeat,
    /// The delivery loop: a unit per cycle, progress per message.
    pub delivery: Heartbeat,
    /// The state database's thread: a unit per piece of work (or batch).
    pub store: Heartbeat,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness::new()
    }
}

impl Liveness {
    pub const fn new() -> Liveness {
        Liveness {
            poll: Heartbeat::new("poll"),
            delivery: Heartbeat::new("delivery"),
            store: Heartbeat::new("store"),
        }
    }

    /// Sets each worker's expected period from the config (see [`Periods`]).
    pub fn configure(&self, config: &Config) {
        let periods = Periods::from_config(config);
        self.poll.set_period(periods.poll);
        self.delivery.set_period(periods.delivery);
        self.store.set_period(periods.store);
    }

    /// Every stalled worker at `now`; empty when all are healthy.
    pub fn stalls_at(&self, now: Instant) -> Vec<Stall> {
        [&self.poll, &self.delivery, &self.store]
            .into_iter()
            .filter_map(|h| h.stall_at(now))
            .collect()
    }

    /// Every stalled worker now.
    pub fn stalls(&self) -> Vec<Stall> {
        self.stalls_at(Instant::now())
    }
}

/// How long each worker may be busy without progress, derived from the
/// timeouts that bound its work.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Periods {
    pub poll: Duration,
    pub delivery: Duration,
    pub store: Duration,
}

impl Periods {
    /// - **store**: one piece of work (a batch of poll results is at most
    ///   a second of writes and one commit) takes milliseconds; the
    ///   service's unit of patience for any single wait is `poll.timeout`,
    ///   and a store job taking longer than a whole HTTP request may is
    ///   stuck (a lock another process never releases, a dead disk).
    /// - **poll**: between two steps, one HTTP request (`poll.timeout`;
    ///   doubled, for connect and a loaded machine), then parsing and
    ///   tagging, then one store write.
    /// - **delivery**: between two messages, one Bot API request
    ///   (`telegram.timeout`, plus the pause teloxide takes on a 5xx) and
    ///   the two store calls around it. Pacing and flood waits are idle.
    pub fn from_config(config: &Config) -> Periods {
        let store = config.poll.timeout;
        Periods {
            store,
            poll: config.poll.timeout * 2 + store,
            delivery: config.telegram.timeout + TELOXIDE_5XX_PAUSE + store * 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(period_ms: u64) -> Heartbeat {
        let h = Heartbeat::new("test");
        h.set_period(Duration::from_millis(period_ms));
        h
    }

    #[test]
    fn an_idle_worker_is_never_stalled() {
        let h = beat(10);
        let far = Instant::now() + Duration::from_secs(3600);
        assert_eq!(h.stall_at(far), None);
        drop(h.unit());
        assert_eq!(h.stall_at(far), None, "a finished unit leaves it idle");
    }

    #[test]
    fn a_busy_worker_stalls_after_its_period_and_progress_resets_it() {
        let h = beat(1000);
        let unit = h.unit();
        let now = Instant::now();
        assert_eq!(h.stall_at(now + Duration::from_millis(500)), None);
        let stall = h.stall_at(now + Duration::from_millis(2500)).unwrap();
        assert_eq!(stall.worker, "test");
        assert!(stall.no_progress_for_s >= 2.4, "{stall}");
        assert_eq!(stall.expected_within_s, 1.0);
        h.idle_until(now + Duration::from_secs(10));
        assert_eq!(
            h.stall_at(now + Duration::from_millis(10_500)),
            None,
            "a declared wait is not a stall"
        );
        assert!(h.stall_at(now + Duration::from_millis(11_500)).is_some());
        drop(unit);
        assert_eq!(h.stall_at(now + Duration::from_secs(60)), None);
    }

    #[test]
    fn a_group_progresses_while_any_unit_finishes() {
        let h = beat(1000);
        let stuck = h.unit();
        let now = Instant::now();
        // Another unit joining does not hide the stuck one...
        let other = h.unit();
        assert!(h.stall_at(now + Duration::from_secs(5)).is_some());
        // ...but one finishing is progress of the loop.
        drop(other);
        assert_eq!(h.stall_at(Instant::now() + Duration::from_millis(500)), None);
        drop(stuck);
    }

    #[test]
    fn periods_follow_the_timeouts() {
        let path = std::path::Path::new("/etc/cstowatch/cstowatch.toml");
        let defaults = Periods::from_config(&Config::from_toml("", path).unwrap());
        assert_eq!(
            defaults,
            Periods {
                store: Duration::from_secs(30),
                poll: Duration::from_secs(90),
                delivery: Duration::from_secs(100),
            }
        );
        let short = "[poll]\ntimeout = \"2s\"\n[telegram]\ntimeout = \"5s\"\n";
        let short = Periods::from_config(&Config::from_toml(short, path).unwrap());
        assert_eq!(short.store, Duration::from_secs(2));
        assert_eq!(short.poll, Duration::from_secs(6));
        assert_eq!(short.delivery, Duration::from_secs(19));
    }

    #[test]
    fn an_unconfigured_heartbeat_never_stalls() {
        let h = Heartbeat::new("test");
        let _unit = h.unit();
        assert_eq!(h.stall_at(Instant::now() + Duration::from_secs(86_400)), None);
    }
}

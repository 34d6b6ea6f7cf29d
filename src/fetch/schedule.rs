//! When to poll a feed next: exponential backoff for a failing feed, and the
//! server's own hints (Retry-After, Cache-Control max-age, RSS `<ttl>`) for a
//! healthy one — every delay clamped to the configured maximum, so no hint
//! and no run of failures can silence a feed for long, let alone for good.

use std::time::{Duration, SystemTime};

use super::CacheHints;

/// Backoff doubles per consecutive failure up to this exponent (2^16 × base
/// is far past any sane maximum, so the clamp always decides first).
const MAX_BACKOFF_EXPONENT: u32 = 16;

/// The delay before the next poll of a feed.
///
/// - Healthy (`consecutive_failures == 0`): `base`, lengthened (never
///   shortened) by `Retry-After`, `max-age` or the feed's `ttl`.
/// - Failing: `base × 2^failures`, lengthened by `Retry-After`.
///
/// Always at most `max`, and never zero.
pub fn next_poll_delay(
    base: Duration,
    max: Duration,
    consecutive_failures: u32,
    hints: CacheHints,
    ttl: Option<Duration>,
) -> Duration {
    let base = base.max(Duration::from_secs(1));
    let max = max.max(Duration::from_secs(1));
    let wanted = if consecutive_failures == 0 {
        [hints.retry_after, hints.max_age, ttl]
            .into_iter()
            .flatten()
            .fold(base, Duration::max)
    } else {
        let factor = 1u32 << consecutive_failures.min(MAX_BACKOFF_EXPONENT);
        let backoff = base.checked_mul(factor).unwrap_or(max);
        hints.retry_after.map_or(backoff, |r| backoff.max(r))
    };
    wanted.min(max)
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
/// A date in the past means "now" (zero).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let now = jiff::Timestamp::try_from(now).ok()?;
    let seconds = when.as_second().saturating_sub(now.as_second());
    Some(Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))
}

/// Parses `max-age` out of a `Cache-Control` value; `no-cache`/`no-store`
/// give no hint (they say nothing about how often to poll).
pub fn parse_max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|directive| {
        let (name, value) = directive.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| value.trim().trim_matches('"').parse::<u64>().ok())
            .flatten()
            .map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn hints(retry_after: Option<u64>, max_age: Option<u64>) -> CacheHints {
        CacheHints {
            retry_after: retry_after.map(Duration::from_secs),
            max_age: max_age.map(Duration::from_secs),
        }
    }

    #[test]
    fn healthy_feed_polls_at_base() {
        let d = next_poll_delay(15 * MIN, 6 * 60 * MIN, 0, CacheHints::default(), None);
        assert_eq!(d, 15 * MIN);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let max = 6 * 60 * MIN;
        let delays: Vec<_> = (1..=6)
            .map(|n| next_poll_delay(15 * MIN, max, n, CacheHints::default(), None))
            .collect();
        assert_eq!(delays, vec![30 * MIN, 60 * MIN, 120 * MIN, 240 * MIN, max, max]);
        // A feed failing for a very long time is still polled, at the cap.
        assert_eq!(
            next_poll_delay(15 * MIN, max, u32::MAX, CacheHints::default(), None),
            max
        );
    }

    #[test]
    fn ttl_of_twelve_hours_is_clamped_to_max() {
        let d = next_poll_delay(15 * MIN, 60 * MIN, 0, CacheHints::default(), Some(720 * MIN));
        assert_eq!(d, 60 * MIN);
    }

    #[test]
    fn hints_lengthen_but_never_shorten() {
        let max = 6 * 60 * MIN;
        assert_eq!(
            next_poll_delay(15 * MIN, max, 0, hints(None, Some(1800)), None),
            30 * MIN
        );
        assert_eq!(
            next_poll_delay(15 * MIN, max, 0, hints(None, Some(10)), None),
            15 * MIN
        );
        assert_eq!(
            next_poll_delay(15 * MIN, max, 0, CacheHints::default(), Some(MIN)),
            15 * MIN
        );
    }

    #[test]
    fn retry_after_on_failure_wins_over_shorter_backoff_but_is_clamped() {
        let max = 2 * 60 * MIN;
        assert_eq!(
            next_poll_delay(15 * MIN, max, 1, hints(Some(3600), None), None),
            60 * MIN
        );
        assert_eq!(
            next_poll_delay(15 * MIN, max, 1, hints(Some(86_400), None), None),
            max
        );
    }

    #[test]
    fn never_zero() {
        let d = next_poll_delay(Duration::ZERO, Duration::ZERO, 0, CacheHints::default(), None);
        assert!(d > Duration::ZERO);
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00 UTC
        assert_eq!(parse_retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn max_age_parsing() {
        assert_eq!(
            parse_max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            parse_max_age("Max-Age=\"30\", must-revalidate"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_max_age("no-cache"), None);
        assert_eq!(parse_max_age("s-maxage=5"), None);
    }
}

//! Alerts to the operator: a feed failing for longer than
//! `alerts.failing_after`, a feed silent for much longer than usual (see
//! [`silence`]), a destination refusing messages (403, chat not found), and
//! the recovery of each. Evaluated once per poll cycle from what the store
//! knows, so `status` (another process) judges exactly as the service does.
//!
//! Where they go: with a token and `[telegram] admin_chat`, as one notice
//! per evaluation (all that changed, one line each) queued for the admin
//! chat and sent by the deliverer through the outbox; otherwise each line
//! goes to the log at warn level. Either way `status` lists what holds now.
//!
//! How often: the operator hears about a condition when it begins, then at
//! most once a day (in the digest time zone) while it lasts, and once when
//! it ends — a recovery only for a condition they were told about. What they
//! were told is kept in `operator_alerts`, written in the same transaction
//! as the notice.

pub mod silence;

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::config::Config;
use crate::deliver::telegram_id;
use crate::digest::Fragment;
use crate::digest::truncate;
use crate::store::alerts::{AlertState, Arrivals, DestinationFacts, FeedFacts};
use crate::store::notices::{NewNotice, NoticeKind};
use crate::store::{Store, StoreError, StoreHandle};
use silence::SilenceModel;

/// The most lines one admin message lists; the rest are counted (`status` has them all).
const MAX_LINES: usize = 15;
/// The longest line in an admin message, in characters (error texts can be long).
const MAX_LINE_CHARS: usize = 240;

/// What can be wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Condition {
    /// A feed's every poll has failed for longer than `failing_after`.
    Failing,
    /// A feed has had no new item for much longer than usual.
    Silent,
    /// A destination refuses messages (403, chat not found).
    Refused,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Failing => "failing",
            Condition::Silent => "silent",
            Condition::Refused => "refused",
        }
    }
}

/// What one evaluation found about one condition of one feed or destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// A feed name, or a destination id (`telegram:<chat>`).
    pub subject: String,
    pub condition: Condition,
    pub verdict: Verdict,
}

/// Whether a condition holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// It holds, and long enough to tell the operator: since then, and why.
    Holds { since: Timestamp, detail: String },
    /// It does not hold. `current`: when a run of it began that is still too
    /// short to tell (a feed failing for a minute; a feed's latest item).
    /// An alert the operator was given has ended when its start differs.
    Clear { current: Option<Timestamp> },
    /// Cannot be told now (the silence of a feed that fails).
    Unknown,
}

/// One line the operator is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub subject: String,
    pub condition: Condition,
    /// `failing: …`, `still failing: …`, `recovered: …`: one line, plain text.
    pub line: String,
}

/// Judges every condition of every enabled feed and configured destination,
/// each as of its own latest poll or send.
pub fn evaluate(store: &Store, config: &Config) -> Result<Vec<Observation>, StoreError> {
    let facts: HashMap<String, FeedFacts> = store
        .feed_facts()?
        .into_iter()
        .map(|f| (f.name.clone(), f))
        .collect();
    let arrivals = store.feed_arrivals()?;
    let zone = &config.digest.timezone;
    let mut observations = Vec::new();
    for feed in config.enabled_feeds() {
        let Some(facts) = facts.get(&feed.name) else {
            continue;
        };
        let empty = Arrivals::default();
        let arrivals = arrivals.get(&feed.name).unwrap_or(&empty);
        observations.push(Observation {
            subject: feed.name.clone(),
            condition: Condition::Failing,
            verdict: failing(facts, config.alerts.failing_after, zone),
        });
        observations.push(Observation {
            subject: feed.name.clone(),
            condition: Condition::Silent,
            verdict: silent(facts, arrivals, config.alerts.silent_after, zone),
        });
    }
    let destinations: HashMap<String, DestinationFacts> = store
        .destination_facts()?
        .into_iter()
        .map(|d| (d.id.clone(), d))
        .collect();
    let mut ids: Vec<String> = config
        .telegram
        .chats
        .iter()
        .map(|c| telegram_id(&c.chat))
        .collect();
    if let Some(admin) = config.telegram.admin_chat.as_ref().map(telegram_id)
        && !ids.contains(&admin)
    {
        ids.push(admin);
    }
    for id in ids {
        let verdict = destinations
            .get(&id)
            .map_or(Verdict::Clear { current: None }, |d| refused(d, zone));
        observations.push(Observation {
            subject: id,
            condition: Condition::Refused,
            verdict,
        });
    }
    Ok(observations)
}

/// A feed fails when every poll since `failing_since` failed, measured to
/// its latest failure (not to now: after the service was stopped for a day,
/// the first poll decides, not the clock).
fn failing(facts: &FeedFacts, failing_after: Duration, zone: &TimeZone) -> Verdict {
    let Some(since) = facts.failing_since else {
        return if facts.consecutive_failures == 0 {
            Verdict::Clear { current: None }
        } else {
            Verdict::Unknown
        };
    };
    let latest = facts.last_error_at.unwrap_or(since).max(since);
    let failing_for = duration_between(since, latest);
    if failing_for <= failing_after {
        return Verdict::Clear { current: Some(since) };
    }
    let last_ok = match facts.last_success_at {
        Some(t) => format!("last success {}", local_time(t, zone)),
        None => "never polled successfully".to_string(),
    };
    Verdict::Holds {
        since,
        detail: format!(
            "every poll has failed for {} (since {}; {last_ok}); last error: {}",
            human_duration(failing_for),
            local_time(since, zone),
            facts.last_error.as_deref().unwrap_or("unknown")
        ),
    }
}

/// A feed is silent when, as of its latest successful poll (so our own
/// downtime never counts), it has had no new item for longer than its
/// silence model allows. A feed whose last poll failed is judged by
/// [`failing`] instead.
fn silent(facts: &FeedFacts, arrivals: &Arrivals, floor: Duration, zone: &TimeZone) -> Verdict {
    if facts.failing_since.is_some() || facts.consecutive_failures > 0 {
        return Verdict::Unknown;
    }
    let (Some(last_ok), Some(last_new)) = (
        facts.last_success_at,
        arrivals.last_first_seen.or(facts.first_success_at),
    ) else {
        return Verdict::Unknown;
    };
    let model = SilenceModel::learn(&arrivals.times, last_ok);
    let threshold = model.threshold(floor);
    let silent_for = duration_between(last_new, last_ok);
    if silent_for <= threshold {
        return Verdict::Clear {
            current: Some(last_new),
        };
    }
    let usual = match model.usual_gap {
        Some(gap) => format!(
            "it usually has one at least every {} ({} gaps learned)",
            human_duration(gap),
            model.gaps
        ),
        None => "its usual pace is not known yet".to_string(),
    };
    Verdict::Holds {
        since: last_new,
        detail: format!(
            "no new item for {} (since {}); {usual}, so silence beyond {} is news. \
             Check that its URL still gives the site's latest articles",
            human_duration(silent_for),
            local_time(last_new, zone),
            human_duration(threshold)
        ),
    }
}

/// A destination is refusing while its latest error is a refusal; it has
/// recovered once it accepted a message after that.
fn refused(d: &DestinationFacts, zone: &TimeZone) -> Verdict {
    match (d.refused_at, d.refused_since) {
        (Some(at), Some(since)) if d.last_error_at == Some(at) => Verdict::Holds {
            since,
            detail: format!(
                "refuses messages since {}: {}; its items stay pending until the bot may post there again",
                local_time(since, zone),
                d.last_error.as_deref().unwrap_or("unknown error")
            ),
        },
        (Some(at), _) if d.last_success_at.is_some_and(|ok| ok > at) => Verdict::Clear { current: None },
        (None, _) => Verdict::Clear { current: None },
        _ => Verdict::Unknown,
    }
}

/// Compares what holds with what the operator was told: the lines to tell
/// them now, and the states to record for that.
pub fn reconcile(
    observations: &[Observation],
    told: &[AlertState],
    today: &str,
    now: Timestamp,
) -> (Vec<Announcement>, Vec<AlertState>) {
    let told: HashMap<(&str, &str), &AlertState> = told
        .iter()
        .map(|s| ((s.subject.as_str(), s.condition.as_str()), s))
        .collect();
    let mut announcements = Vec::new();
    let mut states = Vec::new();
    for o in observations {
        let before = told.get(&(o.subject.as_str(), o.condition.as_str())).copied();
        let noun = match o.condition {
            Condition::Refused => "destination",
            _ => "feed",
        };
        match &o.verdict {
            Verdict::Holds { since, detail } => {
                let same_run = before.is_some_and(|b| b.active && b.since == *since);
                let told_today = before.is_some_and(|b| b.raised_on.as_deref() == Some(today));
                if same_run && told_today {
                    continue;
                }
                let mut state = before.cloned().unwrap_or_else(|| AlertState {
                    subject: o.subject.clone(),
                    condition: o.condition.as_str().to_string(),
                    active: true,
                    since: *since,
                    raised_on: None,
                    recovered_on: None,
                });
                state.active = true;
                state.since = *since;
                if !told_today {
                    let still = if same_run { "still " } else { "" };
                    announcements.push(Announcement {
                        subject: o.subject.clone(),
                        condition: o.condition,
                        line: format!(
                            "{still}{}: {noun} {:?} — {detail}",
                            o.condition.as_str(),
                            o.subject
                        ),
                    });
                    state.raised_on = Some(today.to_string());
                }
                states.push(state);
            }
            Verdict::Clear { current } => {
                let Some(before) = before.filter(|b| b.active && *current != Some(b.since)) else {
                    continue;
                };
                let mut state = before.clone();
                state.active = false;
                if state.recovered_on.as_deref() != Some(today) {
                    let lasted = human_duration(duration_between(before.since, now));
                    let how = match o.condition {
                        Condition::Failing => format!("polls successfully again after failing for {lasted}"),
                        Condition::Silent => format!("has new items again after {lasted} of silence"),
                        Condition::Refused => format!("accepts messages again after {lasted}"),
                    };
                    announcements.push(Announcement {
                        subject: o.subject.clone(),
                        condition: o.condition,
                        line: format!("recovered: {noun} {:?} {how}", o.subject),
                    });
                    state.recovered_on = Some(today.to_string());
                }
                states.push(state);
            }
            Verdict::Unknown => {}
        }
    }
    (announcements, states)
}

/// The admin message for `lines`: one paragraph per line, the condition
/// word in bold, escaped; at most [`MAX_LINES`], the rest counted.
pub fn render(lines: &[&str]) -> String {
    let mut message = Fragment::new();
    message.bold("cstowatch").text(": operator alert");
    for line in lines.iter().take(MAX_LINES) {
        let line = truncate(line, MAX_LINE_CHARS);
        let (word, rest) = line.split_once(':').unwrap_or((&line, ""));
        message.text("\n\n").bold(word).text(":").text(rest);
    }
    if lines.len() > MAX_LINES {
        message.text(&format!(
            "\n\n… and {} more: run `cstowatch status`",
            lines.len() - MAX_LINES
        ));
    }
    message.into_html()
}

/// One evaluation: judges every condition, tells the operator what changed
/// (a notice for `admin`, when given, in the same transaction as the
/// record of having told them) and returns the lines told.
pub fn raise(
    store: &Store,
    config: &Config,
    admin: Option<&str>,
    now: Timestamp,
) -> Result<Vec<Announcement>, StoreError> {
    let observations = evaluate(store, config)?;
    let told = store.alert_states()?;
    let today = now
        .to_zoned(config.digest.timezone.clone())
        .strftime("%Y-%m-%d")
        .to_string();
    let (announcements, states) = reconcile(&observations, &told, &today, now);
    // The admin chat is not told that it refuses messages: that line goes to the log only.
    let lines: Vec<&str> = announcements
        .iter()
        .filter(|a| Some(a.subject.as_str()) != admin)
        .map(|a| a.line.as_str())
        .collect();
    let notice = match admin {
        Some(destination) if !lines.is_empty() => Some(NewNotice {
            destination: destination.to_string(),
            kind: NoticeKind::OperatorAlert,
            key: format!("alerts:{}", now.as_millisecond()),
            html: render(&lines),
            photo: None,
        }),
        _ => None,
    };
    if !states.is_empty() || notice.is_some() {
        store.record_alerts(&states, notice.as_ref(), now)?;
    }
    Ok(announcements)
}

/// [`raise`] on the store's thread, logging each line: at warn when the
/// log is where the operator hears it, at info when it was queued for the
/// admin chat. Whether a notice was queued (the deliverer should run).
pub async fn check(store: &StoreHandle, config: &std::sync::Arc<Config>, admin: Option<&str>) -> bool {
    let (config, owned_admin) = (std::sync::Arc::clone(config), admin.map(str::to_string));
    let raised = store
        .call(move |s| raise(s, &config, owned_admin.as_deref(), Timestamp::now()))
        .await;
    match raised {
        Ok(announcements) => {
            let mut queued = false;
            for a in &announcements {
                match admin {
                    Some(admin) if a.subject != admin => {
                        queued = true;
                        tracing::info!(
                            condition = a.condition.as_str(),
                            "operator alert for {admin}: {}",
                            a.line
                        )
                    }
                    _ => tracing::warn!(condition = a.condition.as_str(), "operator alert: {}", a.line),
                }
            }
            queued
        }
        Err(e) => {
            tracing::error!("cannot evaluate operator alerts: {e}");
            false
        }
    }
}

/// What `status` lists under its tables: every condition that holds now, one line each.
pub fn current(store: &Store, config: &Config) -> Result<Vec<String>, StoreError> {
    Ok(evaluate(store, config)?
        .into_iter()
        .filter_map(|o| match o.verdict {
            Verdict::Holds { detail, .. } => Some(format!(
                "{}: {} {:?} — {detail}",
                o.condition.as_str(),
                if o.condition == Condition::Refused {
                    "destination"
                } else {
                    "feed"
                },
                o.subject
            )),
            _ => None,
        })
        .collect())
}

/// What `check` warns about: an admin chat that is also a digest chat
/// works (it gets both), but its subscribers will read the operator alerts.
pub fn config_warnings(config: &Config) -> Vec<crate::problem::Problem> {
    let Some(admin) = &config.telegram.admin_chat else {
        return Vec::new();
    };
    if !config.telegram.chats.iter().any(|c| c.chat == *admin) {
        return Vec::new();
    }
    vec![crate::problem::Problem::warning(
        &config.path,
        None,
        Some("telegram.admin_chat".into()),
        format!(
            "{admin} is also a digest chat: its readers will see the operator alerts; \
             give the operator a chat of their own"
        ),
    )]
}

fn duration_between(from: Timestamp, to: Timestamp) -> Duration {
    to.duration_since(from).try_into().unwrap_or(Duration::ZERO)
}

/// `3d 4h`, `6h 12m`, `4m 10s`, `3s`: two units at most.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (big, small, big_unit, small_unit) = match s {
        s if s >= 86_400 => (s / 86_400, s % 86_400 / 3600, "d", "h"),
        s if s >= 3600 => (s / 3600, s % 3600 / 60, "h", "m"),
        s if s >= 60 => (s / 60, s % 60, "m", "s"),
        s => return format!("{s}s"),
    };
    if small == 0 {
        format!("{big}{big_unit}")
    } else {
        format!("{big}{big_unit} {small}{small_unit}")
    }
}

fn local_time(t: Timestamp, zone: &TimeZone) -> String {
    t.to_zoned(zone.clone()).strftime("%Y-%m-%d %H:%M %Z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn holds(since: i64) -> Verdict {
        Verdict::Holds {
            since: at(since),
            detail: "x".into(),
        }
    }

    fn observe(condition: Condition, verdict: Verdict) -> Vec<Observation> {
        vec![Observation {
            subject: "A".into(),
            condition,
            verdict,
        }]
    }

    /// Runs `verdicts` one evaluation after another (day given with each),
    /// carrying the recorded state; returns every line told.
    fn play(condition: Condition, steps: &[(&str, Verdict)]) -> Vec<String> {
        let mut told: Vec<AlertState> = Vec::new();
        let mut lines = Vec::new();
        for (i, (day, verdict)) in steps.iter().enumerate() {
            let (said, states) = reconcile(
                &observe(condition, verdict.clone()),
                &told,
                day,
                at(i as i64 * 10),
            );
            lines.extend(said.into_iter().map(|a| a.line));
            for s in states {
                told.retain(|t| !(t.subject == s.subject && t.condition == s.condition));
                told.push(s);
            }
        }
        lines
    }

    #[test]
    fn one_alert_and_one_recovery_per_run_however_many_evaluations() {
        let lines = play(
            Condition::Failing,
            &[
                ("d1", Verdict::Clear { current: Some(at(0)) }),
                ("d1", holds(0)),
                ("d1", holds(0)),
                ("d1", holds(0)),
                ("d1", Verdict::Clear { current: None }),
                ("d1", Verdict::Clear { current: None }),
            ],
        );
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(lines[0].starts_with("failing: feed \"A\""), "{lines:#?}");
        assert!(
            lines[1].starts_with("recovered: feed \"A\" polls successfully again"),
            "{lines:#?}"
        );
    }

    #[test]
    fn a_lasting_condition_is_repeated_once_a_day() {
        let lines = play(
            Condition::Silent,
            &[
                ("d1", holds(0)),
                ("d1", holds(0)),
                ("d2", holds(0)),
                ("d2", holds(0)),
            ],
        );
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(lines[1].starts_with("still silent:"), "{lines:#?}");
    }

    #[test]
    fn a_flapping_feed_is_told_at_most_once_a_day_per_condition() {
        let lines = play(
            Condition::Failing,
            &[
                ("d1", holds(0)),
                ("d1", Verdict::Clear { current: None }),
                ("d1", holds(100)),
                ("d1", Verdict::Clear { current: None }),
                ("d2", holds(200)),
            ],
        );
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(lines[2].starts_with("failing:"), "{lines:#?}");
    }

    #[test]
    fn no_recovery_without_an_alert_and_none_while_unknown() {
        let lines = play(
            Condition::Silent,
            &[
                ("d1", Verdict::Clear { current: Some(at(0)) }),
                ("d1", Verdict::Clear { current: Some(at(5)) }),
            ],
        );
        assert!(lines.is_empty(), "{lines:#?}");
        let lines = play(
            Condition::Silent,
            &[
                ("d1", holds(0)),
                ("d1", Verdict::Unknown),
                // Still the same latest item: the silence has not ended.
                ("d1", Verdict::Clear { current: Some(at(0)) }),
                (
                    "d1",
                    Verdict::Clear {
                        current: Some(at(30)),
                    },
                ),
            ],
        );
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(lines[1].contains("has new items again"), "{lines:#?}");
    }

    #[test]
    fn the_admin_message_is_escaped_and_bounded() {
        let hostile = "failing: feed \"<b>&\" — last error: <script>";
        let many: Vec<&str> = std::iter::repeat_n(hostile, 40).collect();
        let html = render(&many);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("<b>failing</b>:"), "{html}");
        assert!(html.contains("and 25 more"), "{html}");
        assert!(crate::digest::to_plain_text(&html).chars().count() < 4096);
    }

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        assert_eq!(human_duration(Duration::from_secs(3)), "3s");
        assert_eq!(human_duration(Duration::from_secs(250)), "4m 10s");
        assert_eq!(human_duration(Duration::from_secs(6 * 3600 + 12 * 60)), "6h 12m");
        assert_eq!(human_duration(Duration::from_secs(2 * 86_400)), "2d");
    }
}

//! The weekly report: a chart of relevant **stories** (not raw items) per
//! day for each primary tag over seven days, the week before as a faint
//! line, and a caption with the week's top secondary tags as hashtags.
//!
//! - [`Week`] is the period: seven whole days in the digest's time zone,
//!   and the seven before them for comparison.
//! - [`stories`] is the one place the report decides what a story is.
//! - [`WeeklyReport`] holds the counts; `chart` draws them, [`WeeklyReport::caption`]
//!   writes the caption.
//! - [`queue_due`] is what the service and `run --once` call: once the
//!   weekly slot (`[report]`, `slot`) has passed, it queues the week's
//!   report as a notice for every item destination under the key
//!   `report:<ISO week>`, so the outbox sends it exactly once per week and
//!   destination, retried like any message, across restarts.

pub mod chart;
pub mod slot;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::Context;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::config::{Config, DigestConfig};
use crate::digest::{Fragment, PRIMARY_GROUPS, hashtag};
use crate::store::StoreHandle;
use crate::store::items::StoredItem;
use crate::store::notices::{NewNotice, NoticeKind};
use crate::story::{GroupingOptions, StoryItem, group};
use crate::tag::{Document, Rules};

/// Telegram's limit on a photo caption, in characters after entity parsing.
pub const CAPTION_LIMIT: usize = 1024;
/// At most this many secondary tags are named in the caption.
const TOP_TAGS: usize = 12;

/// The seven whole days a report covers, oldest first, in a time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Week {
    pub days: [Date; 7],
    pub zone: TimeZone,
    /// The IANA name of the zone, for the chart's axis.
    pub zone_name: String,
    /// Where each day of the week before and of this week starts (15
    /// boundaries: 7 days before, 7 days, and the end).
    boundaries: [Timestamp; 15],
}

impl Week {
    /// The seven days before `day` (the day of the weekly slot, or today for
    /// `report --week`): a report on Monday covers Monday to Sunday of the
    /// week before.
    pub fn before(day: Date, zone: &TimeZone, zone_name: &str) -> anyhow::Result<Week> {
        let first = day
            .checked_sub(jiff::Span::new().days(14))
            .context("the report's week is out of range")?;
        let mut boundaries = [Timestamp::UNIX_EPOCH; 15];
        let mut date = first;
        for boundary in &mut boundaries {
            *boundary = date
                .to_zoned(zone.clone())
                .with_context(|| format!("{date} does not start in {zone_name}"))?
                .timestamp();
            date = date.tomorrow().context("the report's week is out of range")?;
        }
        let mut days = [first; 7];
        for (i, d) in days.iter_mut().enumerate() {
            *d = first
                .checked_add(jiff::Span::new().days(7 + i as i64))
                .context("the report's week is out of range")?;
        }
        Ok(Week {
            days,
            zone: zone.clone(),
            zone_name: zone_name.to_string(),
            boundaries,
        })
    }

    /// The week reported at `now`'s weekly slot, or before `now`'s day on demand.
    pub fn before_time(now: Timestamp, digest: &DigestConfig) -> anyhow::Result<Week> {
        let day = now.to_zoned(digest.timezone.clone()).date();
        Week::before(day, &digest.timezone, &digest.timezone_name)
    }

    /// Where the week before begins.
    pub fn previous_start(&self) -> Timestamp {
        self.boundaries[0]
    }

    /// Where this week begins.
    pub fn start(&self) -> Timestamp {
        self.boundaries[7]
    }

    /// Where this week ends (exclusive).
    pub fn end(&self) -> Timestamp {
        self.boundaries[14]
    }

    /// The day of `t` counted from the week before's first day (0–6 the
    /// week before, 7–13 this week); `None` outside both.
    fn day_index(&self, t: Timestamp) -> Option<usize> {
        if t < self.boundaries[0] || t >= self.boundaries[14] {
            return None;
        }
        Some(self.boundaries.partition_point(|b| *b <= t) - 1)
    }

    /// The notice key: `report:2026-W48`, the ISO week of the last day
    /// reported (for a Monday slot, exactly the week shown).
    pub fn key(&self) -> String {
        let iso = self.days[6].iso_week_date();
        format!("report:{:04}-W{:02}", iso.year(), iso.week())
    }

    /// `23–29 Nov 2026`, or `30 Nov – 6 Dec 2026` across months.
    pub fn title(&self) -> String {
        let (first, last) = (self.days[0], self.days[6]);
        if first.year() != last.year() {
            format!("{} – {}", first.strftime("%-d %b %Y"), last.strftime("%-d %b %Y"))
        } else if first.month() != last.month() {
            format!("{} – {}", first.strftime("%-d %b"), last.strftime("%-d %b %Y"))
        } else {
            format!("{}–{}", first.day(), last.strftime("%-d %b %Y"))
        }
    }
}

/// One story as the report counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct CountedStory {
    /// When its first item was published: the day it counts on.
    pub first_published: Timestamp,
    /// The union of its items' tags.
    pub tags: BTreeSet<String>,
}

/// The stories among `items` (relevant items), grouped by `story::group`
/// with its default rule (the 48-hour window). The one place the report
/// decides what a story is: once items carry a stored story id, count by
/// that id here instead and nothing else changes.
pub fn stories(items: &[StoredItem], rules: &Rules) -> Vec<CountedStory> {
    let taggings: Vec<_> = items
        .iter()
        .map(|item| {
            rules.tag(&Document {
                title: &item.title,
                summary: &item.summary,
                content: &item.content,
            })
        })
        .collect();
    let story_items: Vec<StoryItem> = items
        .iter()
        .zip(&taggings)
        .map(|(item, tagging)| {
            StoryItem::new(
                &item.title,
                &item.summary,
                &item.content,
                &item.feed,
                item.published,
            )
            .with_tagging(tagging)
        })
        .collect();
    group(&story_items, &GroupingOptions::default())
        .into_iter()
        .map(|story| {
            let members: Vec<&StoredItem> = story.items().map(|i| &items[i]).collect();
            CountedStory {
                first_published: members
                    .iter()
                    .map(|item| item.published)
                    .min()
                    .unwrap_or(Timestamp::UNIX_EPOCH),
                tags: members
                    .iter()
                    .flat_map(|item| item.tags.tags.iter().cloned())
                    .collect(),
            }
        })
        .collect()
}

/// One primary tag's stories per day.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub tag: &'static str,
    /// As the digest heads its group ("CSTO").
    pub label: &'static str,
    pub this_week: [u32; 7],
    pub previous_week: [u32; 7],
}

/// What the chart and the caption show.
#[derive(Debug, Clone, PartialEq)]
pub struct WeeklyReport {
    pub week: Week,
    /// One per primary tag, in `PRIMARY_GROUPS` order.
    pub series: Vec<Series>,
    /// This week's secondary tags by the number of stories carrying them,
    /// most first (ties by name).
    pub top_tags: Vec<(String, u32)>,
    /// Stories this week (a story with both primary tags counts once here,
    /// and in both series).
    pub stories_this_week: u32,
}

impl WeeklyReport {
    /// Whether neither week had a single story.
    pub fn is_empty(&self) -> bool {
        self.series
            .iter()
            .all(|s| s.this_week.iter().chain(&s.previous_week).all(|&n| n == 0))
    }

    /// Counts `stories` into the days of `week`; stories outside it are ignored.
    pub fn from_stories(week: Week, stories: &[CountedStory]) -> WeeklyReport {
        let mut series: Vec<Series> = PRIMARY_GROUPS
            .iter()
            .map(|&(tag, label)| Series {
                tag,
                label,
                this_week: [0; 7],
                previous_week: [0; 7],
            })
            .collect();
        let mut secondary: BTreeMap<&str, u32> = BTreeMap::new();
        let mut stories_this_week = 0;
        for story in stories {
            let Some(day) = week.day_index(story.first_published) else {
                continue;
            };
            for s in &mut series {
                if story.tags.contains(s.tag) {
                    match day {
                        0..7 => s.previous_week[day] += 1,
                        _ => s.this_week[day - 7] += 1,
                    }
                }
            }
            if day >= 7 {
                stories_this_week += 1;
                for tag in &story.tags {
                    if !PRIMARY_GROUPS.iter().any(|(primary, _)| primary == tag) {
                        *secondary.entry(tag.as_str()).or_default() += 1;
                    }
                }
            }
        }
        let mut top_tags: Vec<(String, u32)> = secondary
            .into_iter()
            .map(|(tag, n)| (tag.to_string(), n))
            .collect();
        top_tags.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        WeeklyReport {
            week,
            series,
            top_tags,
            stories_this_week,
        }
    }

    /// The photo's caption, Telegram HTML, escaped, at most
    /// [`CAPTION_LIMIT`] characters after entity parsing whatever the tags:
    /// hashtags are added only while they fit.
    pub fn caption(&self) -> String {
        let mut caption = Fragment::new();
        caption
            .text("📈 ")
            .bold(&format!("Week of {}", self.week.title()))
            .text(&format!(
                "\n{} relevant stories; per day in the chart ({}), the week before faint.",
                self.stories_this_week, self.week.zone_name
            ));
        for s in &self.series {
            let this: u32 = s.this_week.iter().sum();
            let before: u32 = s.previous_week.iter().sum();
            caption.text(&format!("\n{}: {this} (week before: {before})", s.label));
        }
        let tags: Vec<String> = self
            .top_tags
            .iter()
            .take(TOP_TAGS)
            .filter_map(|(tag, n)| Some(format!("{} {n}", hashtag(tag)?)))
            .collect();
        if !tags.is_empty() {
            let head = "\nTop tags: ";
            let mut line = Fragment::new();
            for tag in &tags {
                let sep = if line.chars() == 0 { head } else { " · " };
                let mut next = line.clone();
                next.text(sep).text(tag);
                if caption.chars() + next.chars() > CAPTION_LIMIT {
                    break;
                }
                line = next;
            }
            caption.append(&line);
        }
        caption.into_html()
    }
}

/// Builds the report for `week` from the store: relevant items of both
/// weeks, and of the 48 hours before them so a story that began earlier is
/// not counted again as new.
pub async fn build(store: &StoreHandle, rules: Arc<Rules>, week: Week) -> anyhow::Result<WeeklyReport> {
    let lead_in = GroupingOptions::default().window;
    let from = week
        .previous_start()
        .checked_sub(lead_in)
        .unwrap_or(Timestamp::MIN);
    let to = week.end();
    let items = store
        .call(move |s| s.relevant_items_published_between(from, to))
        .await
        .context("cannot read the week's items")?;
    // Grouping a fortnight of items is CPU work: off the async threads.
    tokio::task::spawn_blocking(move || WeeklyReport::from_stories(week, &stories(&items, &rules)))
        .await
        .context("the weekly report's counting stopped")
}

/// Renders the report's PNG off the async threads.
pub async fn render(report: WeeklyReport) -> anyhow::Result<(WeeklyReport, Vec<u8>)> {
    tokio::task::spawn_blocking(move || {
        let png = chart::render_png(&report)?;
        Ok((report, png))
    })
    .await
    .context("the weekly chart's rendering stopped")?
}

/// Queues `report` with its chart for each of `destinations` under `key`
/// (idempotent per destination and key); the destinations it was queued for now.
pub async fn queue(
    store: &StoreHandle,
    destinations: Vec<String>,
    key: String,
    caption: String,
    png: Vec<u8>,
    now: Timestamp,
) -> anyhow::Result<Vec<String>> {
    store
        .call(move |s| {
            let mut queued = Vec::new();
            for destination in destinations {
                let notice = NewNotice {
                    destination,
                    kind: NoticeKind::WeeklyReport,
                    key: key.clone(),
                    html: caption.clone(),
                    photo: Some(png.clone()),
                };
                if s.queue_notice(&notice, now)? {
                    queued.push(notice.destination);
                }
            }
            Ok(queued)
        })
        .await
        .context("cannot queue the weekly report")
}

/// When the weekly report is on and its latest slot has passed, queues
/// that week's report for every destination in `destinations` that does
/// not have it yet; the key when something was queued. Cheap when there is
/// nothing to do (one lookup per destination), so callers ask every cycle.
pub async fn queue_due(
    store: &StoreHandle,
    rules: Arc<Rules>,
    config: &Config,
    destinations: Vec<String>,
    now: Timestamp,
) -> anyhow::Result<Option<String>> {
    if !config.report.weekly {
        return Ok(None);
    }
    let zone = &config.digest.timezone;
    let Some(slot) = slot::latest_slot(&config.report, zone, now) else {
        return Ok(None);
    };
    let week = Week::before_time(slot, &config.digest)?;
    let key = week.key();
    let missing = {
        let key = key.clone();
        store
            .call(move |s| {
                let mut missing = Vec::new();
                for d in destinations {
                    if !s.notice_exists(&d, &key)? {
                        missing.push(d);
                    }
                }
                Ok(missing)
            })
            .await
            .context("cannot look up the weekly report's notices")?
    };
    if missing.is_empty() {
        return Ok(None);
    }
    let report = build(store, rules, week).await?;
    if report.is_empty() {
        // Nothing in either week (a new install, a state pruned to nothing):
        // a chart of two flat lines at zero tells readers nothing. The slot
        // passes; the next one is judged afresh.
        tracing::info!(
            key,
            "weekly report skipped: no stories in this week or the one before"
        );
        return Ok(None);
    }
    let (report, png) = render(report).await?;
    let queued = queue(store, missing, key.clone(), report.caption(), png, now).await?;
    tracing::info!(
        key,
        destinations = ?queued,
        stories = report.stories_this_week,
        "weekly report queued"
    );
    Ok(Some(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yerevan() -> TimeZone {
        TimeZone::get("Asia/Yerevan").unwrap()
    }

    fn week() -> Week {
        // Reported on Monday 30 Nov 2026: Monday 23 to Sunday 29 November.
        Week::before(jiff::civil::date(2026, 11, 30), &yerevan(), "Asia/Yerevan").unwrap()
    }

    fn story(at: &str, tags: &[&str]) -> CountedStory {
        CountedStory {
            first_published: at.parse().unwrap(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn a_week_is_seven_whole_days_in_the_zone() {
        let w = week();
        assert_eq!(w.days[0], jiff::civil::date(2026, 11, 23));
        assert_eq!(w.days[6], jiff::civil::date(2026, 11, 29));
        assert_eq!(
            w.start(),
            "2026-11-22T20:00:00Z".parse().unwrap(),
            "midnight in Yerevan"
        );
        assert_eq!(w.previous_start(), "2026-11-15T20:00:00Z".parse().unwrap());
        assert_eq!(w.key(), "report:2026-W48");
        assert_eq!(w.title(), "23–29 Nov 2026");
        let across = Week::before(jiff::civil::date(2026, 12, 3), &yerevan(), "Asia/Yerevan").unwrap();
        assert_eq!(across.title(), "26 Nov – 2 Dec 2026");
    }

    #[test]
    fn stories_are_counted_per_day_per_primary_tag_in_the_zone() {
        let stories = [
            // 23 Nov 01:00 in Yerevan, though still 22 Nov in UTC.
            story("2026-11-22T21:00:00Z", &["csto", "border"]),
            story("2026-11-23T10:00:00Z", &["csto", "armenia-azerbaijan", "border"]),
            story("2026-11-29T19:59:59Z", &["armenia-azerbaijan", "pashinyan"]),
            // The week before, and outside both weeks.
            story("2026-11-20T10:00:00Z", &["armenia-azerbaijan", "border"]),
            story("2026-11-29T20:00:00Z", &["csto"]),
            story("2026-11-01T10:00:00Z", &["csto"]),
        ];
        let report = WeeklyReport::from_stories(week(), &stories);
        assert_eq!(report.series[0].tag, "csto");
        assert_eq!(report.series[0].this_week, [2, 0, 0, 0, 0, 0, 0]);
        assert_eq!(report.series[0].previous_week, [0; 7]);
        assert_eq!(report.series[1].this_week, [1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(report.series[1].previous_week, [0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(report.stories_this_week, 3);
        assert_eq!(
            report.top_tags,
            vec![("border".to_string(), 2), ("pashinyan".to_string(), 1)],
            "this week's stories only, most first"
        );
        let caption = report.caption();
        assert!(caption.contains("#border 2 · #pashinyan 1"), "{caption}");
        assert!(caption.contains("CSTO: 2 (week before: 0)"), "{caption}");
        assert!(caption.contains("<b>Week of 23–29 Nov 2026</b>"), "{caption}");
        assert!(!report.is_empty());
    }

    #[test]
    fn only_a_fortnight_without_stories_is_empty() {
        assert!(WeeklyReport::from_stories(week(), &[]).is_empty());
        let outside = [story("2026-11-01T10:00:00Z", &["csto"])];
        assert!(WeeklyReport::from_stories(week(), &outside).is_empty());
        let only_before = [story("2026-11-20T10:00:00Z", &["armenia-azerbaijan"])];
        assert!(
            !WeeklyReport::from_stories(week(), &only_before).is_empty(),
            "a quiet week after a busy one is worth a chart"
        );
    }

    #[test]
    fn the_caption_never_exceeds_telegrams_limit_and_stays_escaped() {
        let tags: Vec<String> = (0..400)
            .map(|i| format!("a-very-long-secondary-tag-name-<&\"{i:03}\"-that-goes-on"))
            .collect();
        let stories: Vec<CountedStory> = (0..400)
            .map(|i| {
                let mut tags: Vec<&str> = tags[i..].iter().map(String::as_str).collect();
                tags.push("csto");
                story("2026-11-24T10:00:00Z", &tags)
            })
            .collect();
        let report = WeeklyReport::from_stories(week(), &stories);
        assert_eq!(report.top_tags.len(), 400);
        let caption = report.caption();
        let visible = crate::digest::to_plain_text(&caption);
        assert!(
            visible.chars().count() <= CAPTION_LIMIT,
            "{} characters",
            visible.chars().count()
        );
        assert!(caption.contains("Top tags: #a_very_long"), "{caption}");
        assert!(!caption.contains('"') && !caption.contains("<&"), "{caption}");
    }

    #[test]
    fn a_long_week_title_and_many_tags_still_fit() {
        // The hashtags are cut at their own limit; whatever that is, the
        // caption stops adding them before the limit, never after.
        let many: Vec<CountedStory> = (0..50)
            .map(|i| {
                story(
                    "2026-11-25T10:00:00Z",
                    &["armenia-azerbaijan", &"x".repeat(i + 60)],
                )
            })
            .collect();
        let report = WeeklyReport::from_stories(week(), &many);
        let visible = crate::digest::to_plain_text(&report.caption());
        assert!(visible.chars().count() <= CAPTION_LIMIT);
        assert_eq!(report.series[1].this_week[2], 50);
    }

    #[test]
    fn the_chart_is_a_png_of_the_promised_size() {
        let stories = [
            story("2026-11-24T10:00:00Z", &["csto"]),
            story("2026-11-25T10:00:00Z", &["armenia-azerbaijan"]),
        ];
        let report = WeeklyReport::from_stories(week(), &stories);
        let png = chart::render_png(&report).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let decoder = png::Decoder::new(std::io::Cursor::new(&png));
        let reader = decoder.read_info().unwrap();
        assert_eq!(
            (reader.info().width, reader.info().height),
            (chart::WIDTH, chart::HEIGHT)
        );
    }
}

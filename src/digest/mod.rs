//! Digests and alerts as Telegram messages: pending items as one entry per
//! story, grouped by primary tag, rendered in Telegram's HTML parse mode,
//! and split into messages that Telegram accepts — only ever between
//! entries (a story is one unit).
//!
//! Layout of a digest message:
//!
//! ```text
//! 🗞 <b>Digest</b> · 22 Nov 21:00 – 23 Nov 09:00 (Asia/Yerevan) · 1/2
//!
//! <b>Armenia–Azerbaijan</b>
//!
//! • <a href="https://…">Azerbaijani troops fire on posts near Sotk</a>
//! <i>The ministry said the shooting lasted twenty minutes.</i>
//! MassisPost · 23 Nov 08:15 · #border
//! also: <a href="https://…">EVN Report</a> · <a href="https://…">Jamestown</a>
//!
//! • more on: CSTO ministers meet in Minsk without Armenia
//! new: <a href="https://…">Asbarez</a> · 23 Nov 10:40 · #csto
//! ```
//!
//! A story carries the union of its items' tags and appears once, in the
//! first of its groups (CSTO before Armenia–Azerbaijan), with the other
//! primary tag among its hashtags. The stories come from the grouping step
//! (`story::assign`), which has stored a story id with every item.

mod html;
pub mod lede;
pub mod schedule;

use std::collections::HashMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;

pub use html::{Fragment, to_plain_text};

use crate::store::outbox::PendingItem;
use crate::store::stories::DeliveredHeadline;

/// The primary tags, in the order their groups appear, with their headings.
pub const PRIMARY_GROUPS: &[(&str, &str)] = &[("csto", "CSTO"), ("armenia-azerbaijan", "Armenia–Azerbaijan")];

/// Heading for a relevant item that carries no known primary tag (it is still
/// delivered: nothing relevant is dropped because of a tag naming change).
const OTHER_GROUP: &str = "Other";

/// Titles longer than this are shortened with "…": a message must hold any item.
pub const MAX_TITLE_CHARS: usize = 1000;
const MAX_SOURCE_CHARS: usize = 100;
/// Hashtags shown per item: the rules list topical tags before countries, so
/// the first few say the most; a long article can carry a dozen.
const MAX_HASHTAGS: usize = 6;
const MAX_HASHTAG_CHARS: usize = 40;
/// A link longer than this (escaped) is left off; the title is still shown.
const MAX_HREF_BYTES: usize = 4000;

/// What Telegram accepts in one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Characters as Telegram counts them (code points after entity parsing).
    pub max_chars: usize,
    /// Bytes of the raw `text` field.
    pub max_bytes: usize,
}

impl Limits {
    /// The Bot API's limits for `sendMessage`.
    pub const TELEGRAM: Limits = Limits {
        max_chars: 4096,
        max_bytes: 32_768,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::TELEGRAM
    }
}

/// One message to send and the items it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Telegram HTML.
    pub html: String,
    /// Length as Telegram counts it.
    pub chars: usize,
    /// The items this message delivers, in the order shown.
    pub item_ids: Vec<i64>,
}

/// How times are shown and what period the digest covers.
#[derive(Debug, Clone)]
pub struct DigestContext<'a> {
    pub zone: &'a TimeZone,
    /// The IANA name, shown in the header.
    pub zone_name: &'a str,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    /// Whether each entry shows a one-line lede (`digest.lede`).
    pub lede: bool,
}

/// Renders `items` (oldest first) as digest messages within `limits`: one
/// entry per story. `earlier` holds, for each story the destination has
/// already received part of, the item it saw: such a story's items come as
/// one "more on" entry naming it. Returns no message when there are no items.
pub fn render_digest(
    items: &[PendingItem],
    earlier: &HashMap<i64, DeliveredHeadline>,
    ctx: &DigestContext<'_>,
    limits: Limits,
) -> Vec<Message> {
    if items.is_empty() {
        return Vec::new();
    }
    let grouped = group(stories(items, earlier));
    let header_base = header(ctx, None);
    // The " · k/n" part numbers only appear when there are several messages;
    // room for them is reserved only then, so a lone message may use every
    // character Telegram allows.
    let mut reserve = 0;
    let bodies = loop {
        let fits = |body: &Fragment| {
            header_base.chars() + reserve + body.chars() <= limits.max_chars
                && header_base.bytes() + reserve + 1 + body.bytes() <= limits.max_bytes
        };
        let bodies = split(&grouped, ctx, &fits);
        let needed = part_suffix_chars(bodies.len());
        if needed <= reserve {
            break bodies;
        }
        reserve = needed;
    };

    let total = bodies.len();
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, (body, item_ids))| {
            let mut message = header(ctx, (total > 1).then_some((i + 1, total)));
            message.append(&body);
            Message {
                chars: message.chars(),
                html: message.into_html(),
                item_ids,
            }
        })
        .collect()
}

/// The entries packed greedily into message bodies that satisfy `fits`,
/// breaking only between entries (a story is one unit); each body starts
/// with a group heading.
fn split(
    grouped: &[Group<'_>],
    ctx: &DigestContext<'_>,
    fits: &dyn Fn(&Fragment) -> bool,
) -> Vec<(Fragment, Vec<i64>)> {
    let mut bodies: Vec<(Fragment, Vec<i64>)> = Vec::new();
    let mut body = Fragment::new();
    let mut ids = Vec::new();
    for (label, entries) in grouped {
        for (position, entry) in entries.iter().enumerate() {
            let heading = |continued: bool| {
                let mut h = Fragment::new();
                h.text("\n\n").bold(label);
                if continued {
                    h.text(" (continued)");
                }
                h.text("\n\n");
                h
            };
            let starts_group = position == 0;
            let mut piece = if starts_group { heading(false) } else { separator() };
            piece.append(&render_entry(entry, ctx.zone, &Trim::full(ctx.lede)));
            let mut candidate = body.clone();
            candidate.append(&piece);
            if !ids.is_empty() && !fits(&candidate) {
                bodies.push((std::mem::take(&mut body), std::mem::take(&mut ids)));
                candidate = heading(!starts_group);
                candidate.append(&render_entry(entry, ctx.zone, &Trim::full(ctx.lede)));
            }
            if !fits(&candidate) {
                // Alone in a message and still too long: shorten it until it fits.
                candidate = shortened_to_fit(entry, ctx.zone, ctx.lede, &heading(!starts_group), fits);
            }
            body = candidate;
            ids.extend(entry.item_ids());
        }
    }
    bodies.push((body, ids));
    bodies
}

fn separator() -> Fragment {
    let mut f = Fragment::new();
    f.text("\n\n");
    f
}

/// Characters " · k/n" takes at most, for `total` messages (0 for one message).
fn part_suffix_chars(total: usize) -> usize {
    if total <= 1 {
        return 0;
    }
    let digits = total.to_string().len();
    " · ".chars().count() + 2 * digits + 1
}

/// Renders one item as an alert: a message of its own, sent at once (an
/// alert is never grouped: it is urgent, and its story's other reports come
/// later as "more on" in the digest).
pub fn render_alert(item: &PendingItem, zone: &TimeZone, lede: bool, limits: Limits) -> Message {
    let entry = Entry::new(vec![item], None);
    let mut head = Fragment::new();
    head.text("🚨 ")
        .bold(&format!("Alert · {}", entry.label))
        .text("\n\n");
    let mut message = head.clone();
    message.append(&render_entry(&entry, zone, &Trim::full(lede)));
    let fits = |f: &Fragment| f.chars() <= limits.max_chars && f.bytes() <= limits.max_bytes;
    if !fits(&message) {
        message = shortened_to_fit(&entry, zone, lede, &head, &fits);
    }
    Message {
        chars: message.chars(),
        html: message.into_html(),
        item_ids: vec![item.id],
    }
}

/// One digest entry: a story, or the new reports of a story the
/// destination has seen ("more on").
#[derive(Debug)]
struct Entry<'a> {
    /// A new story: its headline item first, then the others in order of
    /// publication. "More on": the new items in order of publication.
    items: Vec<&'a PendingItem>,
    /// What the destination already saw of the story, for "more on".
    more_on: Option<&'a DeliveredHeadline>,
    /// The union of the items' tags, primary tags first.
    tags: Vec<&'a str>,
    /// The group the entry is listed under, once.
    label: &'static str,
    /// The primary tag that put it there (not repeated among its hashtags).
    shown_tag: Option<&'static str>,
}

impl<'a> Entry<'a> {
    fn new(items: Vec<&'a PendingItem>, more_on: Option<&'a DeliveredHeadline>) -> Entry<'a> {
        let mut tags: Vec<&str> = Vec::new();
        for tag in items.iter().flat_map(|i| &i.tags) {
            if !tags.contains(&tag.as_str()) {
                tags.push(tag);
            }
        }
        // Stable: the primary tags first, the others in the order the items gave them.
        tags.sort_by_key(|t| !PRIMARY_GROUPS.iter().any(|(p, _)| p == t));
        let (label, shown_tag) = group_of(&tags);
        Entry {
            items,
            more_on,
            tags,
            label,
            shown_tag,
        }
    }

    fn item_ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.items.iter().map(|i| i.id)
    }

    /// When the story broke, as far as this entry shows it.
    fn first_published(&self) -> Timestamp {
        self.items
            .iter()
            .map(|i| i.published_at)
            .min()
            .unwrap_or(Timestamp::MIN)
    }

    /// The lede: the first sentence of the headline item's summary, or of
    /// the next item's that has one.
    fn lede(&self) -> Option<String> {
        let title = match self.more_on {
            Some(earlier) => &earlier.title,
            None => &self.items.first()?.title,
        };
        self.items.iter().find_map(|i| lede::lede(&i.summary, title))
    }
}

/// Pending items as entries, one per story. A story's headline is the item
/// grouping judged clearest (the one most like the other reports: it says
/// what they have in common, see `story`), or, when that item is not among
/// these, the first to report it. Items the grouping step has not seen are
/// entries of their own.
fn stories<'a>(items: &'a [PendingItem], earlier: &'a HashMap<i64, DeliveredHeadline>) -> Vec<Entry<'a>> {
    let mut by_story: Vec<(Option<i64>, Vec<&PendingItem>)> = Vec::new();
    let mut slot: HashMap<i64, usize> = HashMap::new();
    for item in items {
        match item.story_id {
            Some(story) => match slot.get(&story) {
                Some(&i) => by_story[i].1.push(item),
                None => {
                    slot.insert(story, by_story.len());
                    by_story.push((Some(story), vec![item]));
                }
            },
            None => by_story.push((None, vec![item])),
        }
    }
    by_story
        .into_iter()
        .map(|(story, mut members)| {
            // Stable: items published at the same second keep their stored order.
            members.sort_by_key(|i| i.published_at);
            let more_on = story.and_then(|s| earlier.get(&s));
            if more_on.is_none()
                && let Some(h) = members.iter().position(|i| i.story_headline)
            {
                let headline = members.remove(h);
                members.insert(0, headline);
            }
            Entry::new(members, more_on)
        })
        .collect()
}

/// A group heading and its entries.
type Group<'a> = (&'static str, Vec<Entry<'a>>);

/// Entries by group, in [`PRIMARY_GROUPS`] order then "Other", each group
/// in order of when its stories broke.
fn group(entries: Vec<Entry<'_>>) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = PRIMARY_GROUPS
        .iter()
        .map(|(_, label)| (*label, Vec::new()))
        .chain(std::iter::once((OTHER_GROUP, Vec::new())))
        .collect();
    for entry in entries {
        if let Some(g) = groups.iter_mut().find(|(l, _)| *l == entry.label) {
            g.1.push(entry);
        }
    }
    for (_, members) in &mut groups {
        members.sort_by_key(|e| e.first_published());
    }
    groups.retain(|(_, members)| !members.is_empty());
    groups
}

/// The group heading of a tag list and the primary tag that put it there:
/// the first group, in digest order, whose tag it carries (so an item with
/// both primary tags lands in the same group whatever order its tags are in).
fn group_of(tags: &[&str]) -> (&'static str, Option<&'static str>) {
    PRIMARY_GROUPS
        .iter()
        .find(|(tag, _)| tags.contains(tag))
        .map(|(tag, label)| (*label, Some(*tag)))
        .unwrap_or((OTHER_GROUP, None))
}

fn header(ctx: &DigestContext<'_>, part: Option<(usize, usize)>) -> Fragment {
    let mut h = Fragment::new();
    h.text("🗞 ").bold("Digest").text(&format!(
        " · {} – {} ({})",
        short_time(ctx.period_start, ctx.zone),
        short_time(ctx.period_end, ctx.zone),
        ctx.zone_name
    ));
    if let Some((n, total)) = part {
        h.text(&format!(" · {n}/{total}"));
    }
    h
}

fn short_time(t: Timestamp, zone: &TimeZone) -> String {
    t.to_zoned(zone.clone()).strftime("%-d %b %H:%M").to_string()
}

/// How much of an entry to show: all of it, or less when it alone does not
/// fit in a message.
#[derive(Debug, Clone, Copy)]
struct Trim {
    max_title: usize,
    lede: bool,
    /// Outlet links shown after the headline; the rest are counted ("+3 more").
    max_links: usize,
}

impl Trim {
    fn full(lede: bool) -> Trim {
        Trim {
            max_title: MAX_TITLE_CHARS,
            lede,
            max_links: usize::MAX,
        }
    }
}

/// One entry:
///
/// ```text
/// • <a href="…">Headline</a>
/// Lede: the first sentence of the best summary.
/// MassisPost · 23 Nov 08:15 · #border
/// also: <a href="…">EVN Report</a> · <a href="…">Jamestown</a>
/// ```
///
/// or, for a story the destination has seen:
///
/// ```text
/// • more on: Headline it saw
/// Lede of the new reports.
/// new: <a href="…">Asbarez</a> · 24 Nov 10:00 · #border
/// ```
fn render_entry(entry: &Entry<'_>, zone: &TimeZone, trim: &Trim) -> Fragment {
    let mut f = Fragment::new();
    let outlets = outlet_labels(&entry.items);
    let links: Vec<(&PendingItem, &str)>;
    match entry.more_on {
        Some(earlier) => {
            f.text("• more on: ")
                .text(&shown_title(&earlier.title, trim.max_title));
            lede_line(&mut f, entry, trim);
            f.text("\nnew: ");
            links = entry
                .items
                .iter()
                .copied()
                .zip(outlets.iter().map(String::as_str))
                .collect();
            outlet_links(&mut f, &links, trim.max_links);
            if let Some(latest) = entry.items.iter().map(|i| i.published_at).max() {
                f.text(" · ").text(&short_time(latest, zone));
            }
            hashtags(&mut f, entry);
        }
        None => {
            let Some(headline) = entry.items.first() else {
                return f;
            };
            let title = shown_title(&headline.title, trim.max_title);
            f.text("• ");
            match linkable(headline.url.as_deref()) {
                Some(href) => f.link(&href, &title),
                None => f.text(&title),
            };
            lede_line(&mut f, entry, trim);
            f.text("\n")
                .text(&outlets[0])
                .text(" · ")
                .text(&short_time(headline.published_at, zone));
            hashtags(&mut f, entry);
            links = entry.items[1..]
                .iter()
                .copied()
                .zip(outlets[1..].iter().map(String::as_str))
                .collect();
            if !links.is_empty() {
                f.text("\nalso: ");
                outlet_links(&mut f, &links, trim.max_links);
            }
        }
    }
    f
}

fn shown_title(title: &str, max: usize) -> String {
    let title = truncate(title.trim(), max);
    if title.is_empty() {
        "(untitled)".to_string()
    } else {
        title
    }
}

fn lede_line(f: &mut Fragment, entry: &Entry<'_>, trim: &Trim) {
    if trim.lede
        && let Some(lede) = entry.lede()
    {
        f.text("\n").italic(&lede);
    }
}

fn hashtags(f: &mut Fragment, entry: &Entry<'_>) {
    let tags: Vec<String> = entry
        .tags
        .iter()
        .filter(|t| Some(**t) != entry.shown_tag)
        .filter_map(|t| hashtag(t))
        .take(MAX_HASHTAGS)
        .collect();
    if !tags.is_empty() {
        f.text(" · ").text(&tags.join(" "));
    }
}

/// "EVN Report · Jamestown", each a link to its item; past `max` links, "+N more".
fn outlet_links(f: &mut Fragment, links: &[(&PendingItem, &str)], max: usize) {
    for (n, (item, label)) in links.iter().take(max).enumerate() {
        if n > 0 {
            f.text(" · ");
        }
        match linkable(item.url.as_deref()) {
            Some(href) => f.link(&href, label),
            None => f.text(label),
        };
    }
    if links.len() > max {
        if max > 0 {
            f.text(" · ");
        }
        f.text(&format!("+{} more", links.len() - max));
    }
}

/// Each item's outlet as shown: its feed's name, numbered from the second
/// report of one outlet in the entry ("MassisPost (2)").
fn outlet_labels(items: &[&PendingItem]) -> Vec<String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    items
        .iter()
        .map(|item| {
            let name = truncate(&item.feed, MAX_SOURCE_CHARS);
            let n = seen.entry(item.feed.as_str()).or_default();
            *n += 1;
            if *n == 1 { name } else { format!("{name} ({n})") }
        })
        .collect()
}

/// The entry shortened until `head` + entry satisfies `fits`; never dropped.
/// In order: a shorter headline (down to 40 characters), then no lede,
/// then fewer outlet links (the rest counted), then a shorter headline still.
fn shortened_to_fit(
    entry: &Entry<'_>,
    zone: &TimeZone,
    lede: bool,
    head: &Fragment,
    fits: &dyn Fn(&Fragment) -> bool,
) -> Fragment {
    const SHORT_TITLE: usize = 40;
    let with = |trim: Trim| {
        let mut f = head.clone();
        f.append(&render_entry(entry, zone, &trim));
        f
    };
    let links = entry.items.len();
    let full = Trim::full(lede);
    // Each step: the largest value of one setting that fits, from `low` to `high`.
    let largest = |low: usize, high: usize, trim: &dyn Fn(usize) -> Trim| {
        let (mut low, mut high) = (low, high);
        while low < high {
            let mid = (low + high).div_ceil(2);
            if fits(&with(trim(mid))) {
                low = mid;
            } else {
                high = mid - 1;
            }
        }
        low
    };
    let short = Trim {
        max_title: SHORT_TITLE,
        ..full
    };
    if fits(&with(short)) {
        let max_title = largest(SHORT_TITLE, MAX_TITLE_CHARS, &|m| Trim { max_title: m, ..full });
        return with(Trim { max_title, ..full });
    }
    let no_lede = Trim { lede: false, ..short };
    if fits(&with(no_lede)) {
        return with(no_lede);
    }
    let max_links = largest(0, links, &|n| Trim {
        max_links: n,
        ..no_lede
    });
    let max_title = largest(1, SHORT_TITLE, &|m| Trim {
        max_title: m,
        max_links,
        ..no_lede
    });
    with(Trim {
        max_title,
        max_links,
        ..no_lede
    })
}

/// `text` cut to `max` characters, ending in "…" when cut: the one
/// truncation helper for text shown to people (digests, `status`).
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// The URL to link, when it is an http(s) URL of sane length.
fn linkable(url: Option<&str>) -> Option<String> {
    let parsed = url::Url::parse(url?.trim()).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    let href = parsed.to_string();
    (html::escaped_len(&href) <= MAX_HREF_BYTES).then_some(href)
}

/// A tag as a hashtag Telegram makes tappable: letters, digits and `_` only
/// (`armenia-azerbaijan` → `#armenia_azerbaijan`); `None` when nothing is left.
pub fn hashtag(tag: &str) -> Option<String> {
    let mut name = String::new();
    for c in tag.trim().chars() {
        if c.is_alphanumeric() {
            name.extend(c.to_lowercase());
        } else if !name.ends_with('_') && !name.is_empty() {
            name.push('_');
        }
    }
    let name = name.trim_end_matches('_');
    if name.is_empty() {
        return None;
    }
    let name = truncate_plain(name, MAX_HASHTAG_CHARS);
    // An all-digit hashtag is not a hashtag to Telegram.
    if name.chars().all(|c| c.is_ascii_digit()) {
        return Some(format!("#_{name}"));
    }
    Some(format!("#{name}"))
}

fn truncate_plain(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => text[..i].trim_end_matches('_'),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn item(id: i64, title: &str, published: &str, tags: &[&str]) -> PendingItem {
        PendingItem {
            id,
            feed: "MassisPost".into(),
            title: title.into(),
            url: Some(format!("https://massispost.com/2026/11/item-{id}/")),
            published_at: ts(published),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            summary: String::new(),
            story_id: None,
            story_headline: false,
        }
    }

    fn ctx(zone: &TimeZone) -> DigestContext<'_> {
        DigestContext {
            zone,
            zone_name: "Asia/Yerevan",
            period_start: ts("2026-11-22T17:00:00Z"),
            period_end: ts("2026-11-23T05:00:00Z"),
            lede: true,
        }
    }

    #[test]
    fn groups_by_first_primary_tag_chronologically() {
        let zone = TimeZone::get("Asia/Yerevan").unwrap();
        let items = vec![
            item(
                1,
                "Border shooting",
                "2026-11-22T18:00:00Z",
                &["armenia-azerbaijan", "border"],
            ),
            item(
                2,
                "CSTO summit",
                "2026-11-22T20:00:00Z",
                &["csto", "armenia-azerbaijan"],
            ),
            item(3, "CSTO drills", "2026-11-22T19:00:00Z", &["csto"]),
        ];
        let messages = render_digest(&items, &HashMap::new(), &ctx(&zone), Limits::TELEGRAM);
        assert_eq!(messages.len(), 1);
        let m = &messages[0];
        assert_eq!(m.item_ids, vec![3, 2, 1]);
        let expected = "🗞 <b>Digest</b> · 22 Nov 21:00 – 23 Nov 09:00 (Asia/Yerevan)\n\n\
            <b>CSTO</b>\n\n\
            • <a href=\"https://massispost.com/2026/11/item-3/\">CSTO drills</a>\n\
            MassisPost · 22 Nov 23:00\n\n\
            • <a href=\"https://massispost.com/2026/11/item-2/\">CSTO summit</a>\n\
            MassisPost · 23 Nov 00:00 · #armenia_azerbaijan\n\n\
            <b>Armenia–Azerbaijan</b>\n\n\
            • <a href=\"https://massispost.com/2026/11/item-1/\">Border shooting</a>\n\
            MassisPost · 22 Nov 22:00 · #border";
        assert_eq!(m.html, expected);
        assert_eq!(m.chars, to_plain_text(&m.html).chars().count());
    }

    #[test]
    fn nothing_pending_renders_nothing() {
        let zone = TimeZone::UTC;
        assert!(render_digest(&[], &HashMap::new(), &ctx(&zone), Limits::TELEGRAM).is_empty());
    }

    #[test]
    fn splits_only_between_items_within_limits_and_numbers_parts() {
        let zone = TimeZone::UTC;
        let items: Vec<_> = (0..70)
            .map(|i| {
                let tags: &[&str] = if i % 3 == 0 {
                    &["csto", "russia"]
                } else {
                    &["armenia-azerbaijan"]
                };
                let title = format!("Ереван и Баку обсудили границу, раунд {i} — Երևան 🇦🇲 & <b>");
                item(i, &title, "2026-11-22T18:00:00Z", tags)
            })
            .collect();
        let limits = Limits {
            max_chars: 1000,
            max_bytes: 4000,
        };
        let messages = render_digest(&items, &HashMap::new(), &ctx(&zone), limits);
        assert!(messages.len() > 3, "{}", messages.len());
        let mut all: Vec<i64> = messages.iter().flat_map(|m| m.item_ids.clone()).collect();
        assert_eq!(all.len(), 70);
        all.sort();
        assert_eq!(all, (0..70).collect::<Vec<_>>());
        for (i, m) in messages.iter().enumerate() {
            assert!(m.chars <= limits.max_chars && m.html.len() <= limits.max_bytes);
            assert_eq!(m.chars, to_plain_text(&m.html).chars().count());
            assert!(
                m.html.contains(&format!(" · {}/{}", i + 1, messages.len())),
                "{}",
                m.html
            );
            // Every message names the group its first item belongs to.
            assert!(
                m.html.split("\n\n").nth(1).unwrap().starts_with("<b>"),
                "{}",
                m.html
            );
        }
        assert!(messages[1].html.contains("(continued)"));
    }

    #[test]
    fn a_huge_title_is_shortened_not_dropped() {
        let zone = TimeZone::UTC;
        let items = vec![
            item(1, "short", "2026-11-22T18:00:00Z", &["csto"]),
            item(2, &"Ա".repeat(20_000), "2026-11-22T19:00:00Z", &["csto"]),
        ];
        let messages = render_digest(&items, &HashMap::new(), &ctx(&zone), Limits::TELEGRAM);
        let ids: Vec<i64> = messages.iter().flat_map(|m| m.item_ids.clone()).collect();
        assert_eq!(ids, vec![1, 2]);
        assert!(messages.iter().all(|m| m.chars <= 4096));
        assert!(messages.iter().any(|m| m.html.contains("Ա…")));

        let tiny = Limits {
            max_chars: 300,
            max_bytes: 2000,
        };
        let messages = render_digest(&items, &HashMap::new(), &ctx(&zone), tiny);
        assert_eq!(
            messages
                .iter()
                .flat_map(|m| m.item_ids.clone())
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
        for m in &messages {
            assert!(
                m.chars <= 300 && m.html.len() <= 2000,
                "{} {}",
                m.chars,
                m.html.len()
            );
        }
        let alert = render_alert(&items[1], &zone, true, tiny);
        assert!(alert.chars <= 300 && alert.html.contains("…"));
    }

    #[test]
    fn hostile_text_and_odd_urls() {
        let zone = TimeZone::UTC;
        let mut evil = item(
            1,
            "<script>& \"x\" </a>",
            "2026-11-22T18:00:00Z",
            &["csto", "Nagorno-Karabakh!", "2020"],
        );
        evil.url = Some("https://e.example/a?q=\"><b>&x=1".into());
        let mut no_link = item(2, "javascript link", "2026-11-22T18:00:00Z", &["csto"]);
        no_link.url = Some("javascript:alert(1)".into());
        let messages = render_digest(&[evil, no_link], &HashMap::new(), &ctx(&zone), Limits::TELEGRAM);
        let html = &messages[0].html;
        assert!(
            html.contains("&lt;script&gt;&amp; &quot;x&quot; &lt;/a&gt;"),
            "{html}"
        );
        assert!(!html.contains("\"><b>"), "{html}");
        assert!(html.contains("#nagorno_karabakh #_2020"), "{html}");
        assert!(html.contains("• javascript link\n"), "{html}");
    }

    #[test]
    fn hashtags_are_tappable() {
        assert_eq!(
            hashtag("armenia-azerbaijan").as_deref(),
            Some("#armenia_azerbaijan")
        );
        assert_eq!(hashtag("Пашинян").as_deref(), Some("#пашинян"));
        assert_eq!(hashtag("--"), None);
        assert_eq!(hashtag("a  b").as_deref(), Some("#a_b"));
    }

    #[test]
    fn alert_is_one_item_with_its_group() {
        let zone = TimeZone::get("Asia/Yerevan").unwrap();
        let a = render_alert(
            &item(
                9,
                "Clash at the border",
                "2026-11-23T04:00:00Z",
                &["armenia-azerbaijan", "border"],
            ),
            &zone,
            true,
            Limits::TELEGRAM,
        );
        assert_eq!(a.item_ids, vec![9]);
        assert!(
            a.html
                .starts_with("🚨 <b>Alert · Armenia–Azerbaijan</b>\n\n• <a href="),
            "{}",
            a.html
        );
        assert!(
            a.html.ends_with("MassisPost · 23 Nov 08:00 · #border"),
            "{}",
            a.html
        );
    }

    fn story_item(id: i64, feed: &str, published: &str, story: i64, tags: &[&str]) -> PendingItem {
        let mut i = item(id, &format!("Report {id}"), published, tags);
        i.feed = feed.into();
        i.url = Some(format!(
            "https://{}.example/{id}",
            feed.to_lowercase().replace(' ', "-")
        ));
        i.story_id = Some(story);
        i
    }

    #[test]
    fn a_story_is_one_entry_with_its_headline_lede_and_also_links() {
        let zone = TimeZone::UTC;
        let mut first = story_item(
            1,
            "MassisPost",
            "2026-11-22T18:00:00Z",
            7,
            &["armenia-azerbaijan", "border"],
        );
        first.summary = "Short.".into();
        let mut clearest = story_item(
            2,
            "EVN Report",
            "2026-11-22T19:00:00Z",
            7,
            &["armenia-azerbaijan", "sotk"],
        );
        clearest.title = "Troops fire on posts near Sotk".into();
        clearest.summary = "Shots & <b>shells</b> hit \"posts\" near Sotk overnight. More later.".into();
        clearest.story_headline = true;
        let third = story_item(3, "Jamestown", "2026-11-22T20:00:00Z", 7, &["csto", "border"]);
        let other = story_item(4, "Asbarez", "2026-11-22T18:30:00Z", 8, &["armenia-azerbaijan"]);
        let messages = render_digest(
            &[first, other, clearest, third],
            &HashMap::new(),
            &ctx(&zone),
            Limits::TELEGRAM,
        );
        assert_eq!(messages.len(), 1);
        let m = &messages[0];
        // The story carries the union of its tags, so it is listed under CSTO, once.
        let expected = "🗞 <b>Digest</b> · 22 Nov 17:00 – 23 Nov 05:00 (Asia/Yerevan)\n\n\
            <b>CSTO</b>\n\n\
            • <a href=\"https://evn-report.example/2\">Troops fire on posts near Sotk</a>\n\
            <i>Shots &amp; &lt;b&gt;shells&lt;/b&gt; hit &quot;posts&quot; near Sotk overnight.</i>\n\
            EVN Report · 22 Nov 19:00 · #armenia_azerbaijan #sotk #border\n\
            also: <a href=\"https://massispost.example/1\">MassisPost</a> · \
            <a href=\"https://jamestown.example/3\">Jamestown</a>\n\n\
            <b>Armenia–Azerbaijan</b>\n\n\
            • <a href=\"https://asbarez.example/4\">Report 4</a>\n\
            Asbarez · 22 Nov 18:30";
        assert_eq!(m.html, expected);
        assert_eq!(m.item_ids, vec![2, 1, 3, 4]);
        assert_eq!(m.chars, to_plain_text(&m.html).chars().count());

        let mut no_lede = ctx(&zone);
        no_lede.lede = false;
        let items = [story_item(5, "A", "2026-11-22T18:00:00Z", 9, &["csto"])];
        let mut with_summary = items[0].clone();
        with_summary.summary = "Something happened. Then more.".into();
        let off = render_digest(
            &[with_summary.clone()],
            &HashMap::new(),
            &no_lede,
            Limits::TELEGRAM,
        );
        assert!(!off[0].html.contains("<i>"), "{}", off[0].html);
        let on = render_digest(&[with_summary], &HashMap::new(), &ctx(&zone), Limits::TELEGRAM);
        assert!(
            on[0].html.contains("<i>Something happened.</i>"),
            "{}",
            on[0].html
        );
    }

    #[test]
    fn a_story_seen_before_comes_as_more_on_with_the_new_links() {
        let zone = TimeZone::UTC;
        let mut new_report = story_item(5, "Asbarez", "2026-11-23T01:00:00Z", 7, &["armenia-azerbaijan"]);
        new_report.story_headline = true;
        let second = story_item(
            6,
            "Asbarez",
            "2026-11-23T02:00:00Z",
            7,
            &["armenia-azerbaijan", "border"],
        );
        let earlier = HashMap::from([(
            7,
            DeliveredHeadline {
                item_id: 2,
                title: "Troops fire on posts near Sotk".into(),
                url: Some("https://evn-report.example/2".into()),
            },
        )]);
        let messages = render_digest(&[new_report, second], &earlier, &ctx(&zone), Limits::TELEGRAM);
        let m = &messages[0];
        assert!(
            m.html.ends_with(
                "• more on: Troops fire on posts near Sotk\n\
                 new: <a href=\"https://asbarez.example/5\">Asbarez</a> · \
                 <a href=\"https://asbarez.example/6\">Asbarez (2)</a> · 23 Nov 02:00 · #border"
            ),
            "{}",
            m.html
        );
        assert_eq!(m.item_ids, vec![5, 6]);
    }

    #[test]
    fn splitting_never_cuts_a_story() {
        let zone = TimeZone::UTC;
        let mut items = Vec::new();
        for story in 0..30 {
            for k in 0..3 {
                let id = story * 3 + k;
                let mut i = story_item(
                    id,
                    &format!("Outlet {k}"),
                    "2026-11-22T18:00:00Z",
                    story,
                    &["csto"],
                );
                i.title = format!("Ереван & Баку, раунд {story} — Երևան 🇦🇲 <{k}>");
                i.summary = format!("The talks went on for hours in round {story}. Nothing more.");
                items.push(i);
            }
        }
        let limits = Limits {
            max_chars: 700,
            max_bytes: 3000,
        };
        let messages = render_digest(&items, &HashMap::new(), &ctx(&zone), limits);
        assert!(messages.len() > 3, "{}", messages.len());
        let mut all = Vec::new();
        for m in &messages {
            assert!(m.chars <= limits.max_chars && m.html.len() <= limits.max_bytes);
            assert_eq!(m.chars, to_plain_text(&m.html).chars().count());
            for story in 0..30 {
                let in_message = m.item_ids.iter().filter(|&&id| id / 3 == story).count();
                assert!(
                    in_message == 0 || in_message == 3,
                    "story {story} cut: {:?}",
                    m.item_ids
                );
            }
            all.extend(m.item_ids.clone());
        }
        all.sort();
        assert_eq!(all, (0..90).collect::<Vec<_>>());
    }

    #[test]
    fn a_story_too_big_for_a_message_loses_links_not_items() {
        let zone = TimeZone::UTC;
        let items: Vec<PendingItem> = (0..60)
            .map(|id| {
                let mut i = story_item(id, "Feed", "2026-11-22T18:00:00Z", 1, &["csto"]);
                i.url = Some(format!("https://e.example/{}/{id}", "x".repeat(300)));
                i.summary = "A lede that will be dropped when room runs out.".into();
                i
            })
            .collect();
        let limits = Limits {
            max_chars: 400,
            max_bytes: 4000,
        };
        let messages = render_digest(&items, &HashMap::new(), &ctx(&zone), limits);
        assert_eq!(messages.len(), 1);
        let m = &messages[0];
        assert!(
            m.chars <= 400 && m.html.len() <= 4000,
            "{} {}",
            m.chars,
            m.html.len()
        );
        assert_eq!(m.item_ids.len(), 60, "every item is delivered with its story");
        assert!(m.html.contains(" more"), "{}", m.html);
    }
}

//! Digests and alerts as Telegram messages: pending items grouped by primary
//! tag, rendered in Telegram's HTML parse mode, and split into messages that
//! Telegram accepts — only ever between items.
//!
//! Layout of a digest message:
//!
//! ```text
//! 🗞 <b>Digest</b> · 22 Nov 21:00 – 23 Nov 09:00 (Asia/Yerevan) · 1/2
//!
//! <b>CSTO</b>
//!
//! • <a href="https://…">Title</a>
//! MassisPost · 23 Nov 08:15 · #armenia_azerbaijan #border
//! ```
//!
//! An item carrying both primary tags appears once, in the first of its
//! groups (CSTO), with the other one among its hashtags.

mod html;
pub mod schedule;

use jiff::Timestamp;
use jiff::tz::TimeZone;

pub use html::{Fragment, to_plain_text};

use crate::store::outbox::PendingItem;

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
}

/// Renders `items` (oldest first) as digest messages within `limits`.
/// Returns no message when there are no items.
pub fn render_digest(items: &[PendingItem], ctx: &DigestContext<'_>, limits: Limits) -> Vec<Message> {
    if items.is_empty() {
        return Vec::new();
    }
    let grouped = group(items);
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
        let bodies = split(&grouped, ctx.zone, &fits);
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

/// The item pieces packed greedily into message bodies that satisfy `fits`,
/// breaking only between items; each body starts with a group heading.
fn split(
    grouped: &[Group<'_>],
    zone: &TimeZone,
    fits: &dyn Fn(&Fragment) -> bool,
) -> Vec<(Fragment, Vec<i64>)> {
    let mut bodies: Vec<(Fragment, Vec<i64>)> = Vec::new();
    let mut body = Fragment::new();
    let mut ids = Vec::new();
    for (label, group_items) in grouped {
        for (position, (item, shown_tag)) in group_items.iter().enumerate() {
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
            piece.append(&render_item(item, shown_tag, zone));
            let mut candidate = body.clone();
            candidate.append(&piece);
            if !ids.is_empty() && !fits(&candidate) {
                bodies.push((std::mem::take(&mut body), std::mem::take(&mut ids)));
                candidate = heading(!starts_group);
                candidate.append(&render_item(item, shown_tag, zone));
            }
            if !fits(&candidate) {
                // Alone in a message and still too long: shorten the title until it fits.
                candidate = shortened_to_fit(item, shown_tag, zone, &heading(!starts_group), fits);
            }
            body = candidate;
            ids.push(item.id);
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

/// Renders one item as an alert: a message of its own, sent at once.
pub fn render_alert(item: &PendingItem, zone: &TimeZone, limits: Limits) -> Message {
    let (label, shown_tag) = group_of(item);
    let mut head = Fragment::new();
    head.text("🚨 ").bold(&format!("Alert · {label}")).text("\n\n");
    let mut message = head.clone();
    message.append(&render_item(item, &shown_tag, zone));
    if message.chars() > limits.max_chars || message.bytes() > limits.max_bytes {
        message = shortened_to_fit(item, &shown_tag, zone, &head, &|f: &Fragment| {
            f.chars() <= limits.max_chars && f.bytes() <= limits.max_bytes
        });
    }
    Message {
        chars: message.chars(),
        html: message.into_html(),
        item_ids: vec![item.id],
    }
}

/// A group heading and its items, each with the primary tag that put it there.
type Group<'a> = (&'static str, Vec<(&'a PendingItem, Option<&'static str>)>);

/// Items by group, in [`PRIMARY_GROUPS`] order then "Other"; each item with
/// the primary tag its group stands for (not repeated among its hashtags).
fn group(items: &[PendingItem]) -> Vec<Group<'_>> {
    let mut groups: Vec<(&'static str, Vec<_>)> = PRIMARY_GROUPS
        .iter()
        .map(|(_, label)| (*label, Vec::new()))
        .chain(std::iter::once((OTHER_GROUP, Vec::new())))
        .collect();
    for item in items {
        let (label, tag) = group_of(item);
        if let Some(g) = groups.iter_mut().find(|(l, _)| *l == label) {
            g.1.push((item, tag));
        }
    }
    for (_, members) in &mut groups {
        // Stable: items published at the same second keep their stored order.
        members.sort_by_key(|(item, _)| item.published_at);
    }
    groups.retain(|(_, members)| !members.is_empty());
    groups
}

/// The group heading of an item and the primary tag that put it there: the
/// first group, in digest order, whose tag the item carries (so an item with
/// both primary tags lands in the same group whatever order its tags are in).
fn group_of(item: &PendingItem) -> (&'static str, Option<&'static str>) {
    PRIMARY_GROUPS
        .iter()
        .find(|(tag, _)| item.tags.iter().any(|t| t == tag))
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

fn render_item(item: &PendingItem, shown_tag: &Option<&str>, zone: &TimeZone) -> Fragment {
    render_item_with_title(item, shown_tag, zone, MAX_TITLE_CHARS)
}

/// The item with its title cut to at most `max_title` characters (with "…").
fn render_item_with_title(
    item: &PendingItem,
    shown_tag: &Option<&str>,
    zone: &TimeZone,
    max_title: usize,
) -> Fragment {
    let title = truncate(item.title.trim(), max_title);
    let title = if title.is_empty() {
        "(untitled)".to_string()
    } else {
        title
    };
    let mut f = Fragment::new();
    f.text("• ");
    match linkable(item.url.as_deref()) {
        Some(href) => f.link(&href, &title),
        None => f.text(&title),
    };
    f.text("\n")
        .text(&truncate(&item.feed, MAX_SOURCE_CHARS))
        .text(" · ")
        .text(&short_time(item.published_at, zone));
    let hashtags: Vec<String> = item
        .tags
        .iter()
        .filter(|t| Some(t.as_str()) != *shown_tag)
        .filter_map(|t| hashtag(t))
        .take(MAX_HASHTAGS)
        .collect();
    if !hashtags.is_empty() {
        f.text(" · ").text(&hashtags.join(" "));
    }
    f
}

/// The longest title that makes `head` + item satisfy `fits`; the title is
/// shortened, the item never dropped.
fn shortened_to_fit(
    item: &PendingItem,
    shown_tag: &Option<&str>,
    zone: &TimeZone,
    head: &Fragment,
    fits: &dyn Fn(&Fragment) -> bool,
) -> Fragment {
    let with_title = |max: usize| {
        let mut f = head.clone();
        f.append(&render_item_with_title(item, shown_tag, zone, max));
        f
    };
    let (mut low, mut high) = (1, MAX_TITLE_CHARS);
    while low < high {
        let mid = (low + high).div_ceil(2);
        if fits(&with_title(mid)) {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    with_title(low)
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
        }
    }

    fn ctx(zone: &TimeZone) -> DigestContext<'_> {
        DigestContext {
            zone,
            zone_name: "Asia/Yerevan",
            period_start: ts("2026-11-22T17:00:00Z"),
            period_end: ts("2026-11-23T05:00:00Z"),
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
        let messages = render_digest(&items, &ctx(&zone), Limits::TELEGRAM);
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
        assert!(render_digest(&[], &ctx(&zone), Limits::TELEGRAM).is_empty());
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
        let messages = render_digest(&items, &ctx(&zone), limits);
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
        let messages = render_digest(&items, &ctx(&zone), Limits::TELEGRAM);
        let ids: Vec<i64> = messages.iter().flat_map(|m| m.item_ids.clone()).collect();
        assert_eq!(ids, vec![1, 2]);
        assert!(messages.iter().all(|m| m.chars <= 4096));
        assert!(messages.iter().any(|m| m.html.contains("Ա…")));

        let tiny = Limits {
            max_chars: 300,
            max_bytes: 2000,
        };
        let messages = render_digest(&items, &ctx(&zone), tiny);
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
        let alert = render_alert(&items[1], &zone, tiny);
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
        let messages = render_digest(&[evil, no_link], &ctx(&zone), Limits::TELEGRAM);
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
}

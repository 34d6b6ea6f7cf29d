//! A second look at the entries, for the fields feed-rs does not read:
//! `dc:title`, `dc:description`, `xhtml:body`, `itunes:summary`, `a10:link`
//! (.NET), `dcterms:created`/`issued`/`modified`, Atom 0.3's `created`.
//! feedparser reads them all; feed-rs skips them, and an entry then loses its
//! title, its text or its date.
//!
//! The scan runs only when some entry came out of feed-rs without a title,
//! text, link or date, and only on the document feed-rs has just read
//! (well-formed, possibly repaired), so it can be simple: one pass over the
//! tags, collecting each entry's direct children by local name. Its entries
//! are matched with feed-rs's by position, and only when both found as many.

use super::repair::{Tag, find, read_tag};

/// One entry's raw fallback fields, decoded from XML but not yet from HTML.
#[derive(Debug, Default)]
pub struct RawEntry {
    pub titles: Vec<String>,
    pub texts: Vec<String>,
    pub dates: Vec<String>,
    pub links: Vec<String>,
}

/// Local names of fields that carry an entry's text.
const TEXT_NAMES: &[&str] = &[
    "description",
    "summary",
    "body",
    "fullitem",
    "encoded",
    "content",
    "abstract",
    "subtitle",
];
/// Local names of fields that carry an entry's date.
const DATE_NAMES: &[&str] = &[
    "date",
    "created",
    "issued",
    "modified",
    "published",
    "updated",
    "pubDate",
    "lastmod",
];

/// Which fields to collect: only what some entry lacks, so a large feed
/// whose entries lack only a date does not have its texts copied again.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub titles: bool,
    pub texts: bool,
    pub dates: bool,
    pub links: bool,
}

/// Every `<item>` / `<entry>` of the document, in order.
pub fn scan_entries(xml: &[u8], wanted: Wanted) -> Vec<RawEntry> {
    let mut entries = Vec::new();
    let mut depth = 0usize;
    // (depth of the current entry element, the child being captured: name and where its content starts)
    let mut entry_depth: Option<usize> = None;
    let mut child: Option<(String, usize)> = None;
    // A Media RSS `<media:group>` directly under the entry: its children
    // (`media:description`, `media:title`) count as the entry's own.
    let mut in_group = false;
    let mut i = 0;
    while i < xml.len() {
        let rest = &xml[i..];
        if rest[0] != b'<' {
            i += rest.iter().position(|b| *b == b'<').unwrap_or(rest.len());
            continue;
        }
        if let Some(skip) = skip_markup(rest) {
            i += skip;
            continue;
        }
        let Some(tag) = read_tag(rest) else {
            i += 1;
            continue;
        };
        let at = i;
        i += tag.len;
        if tag.closing {
            depth = depth.saturating_sub(1);
            let child_depth = entry_depth.map(|d| d + 1 + usize::from(in_group));
            if let Some((name, start)) = &child
                && Some(depth) == child_depth
            {
                if let Some(entry) = entries.last_mut() {
                    record(entry, name, &xml[*start..at], wanted);
                }
                child = None;
            }
            if in_group && Some(depth) == entry_depth.map(|d| d + 1) {
                in_group = false;
            }
            if Some(depth) == entry_depth {
                entry_depth = None;
                in_group = false;
            }
            continue;
        }
        let local = local_name(&tag.name);
        if entry_depth.is_none() && (local == "item" || local == "entry") {
            entries.push(RawEntry::default());
            entry_depth = Some(depth);
        } else if !in_group
            && entry_depth.map(|d| d + 1) == Some(depth)
            && local == "group"
            && !tag.self_closing
        {
            in_group = true;
        } else if entry_depth.map(|d| d + 1 + usize::from(in_group)) == Some(depth) {
            if let Some(entry) = entries.last_mut()
                && wanted.links
            {
                record_attributes(entry, &tag);
            }
            if !tag.self_closing {
                child = Some((tag.name.clone(), i));
            }
        }
        if !tag.self_closing {
            depth += 1;
        }
    }
    entries
}

/// Comments, CDATA, processing instructions, DOCTYPE: their length, so
/// their content is never taken for tags.
fn skip_markup(rest: &[u8]) -> Option<usize> {
    let until = |end: &[u8]| find(rest, end).map_or(rest.len(), |e| e + end.len());
    if rest.starts_with(b"<!--") {
        Some(until(b"-->"))
    } else if rest.starts_with(b"<![CDATA[") {
        Some(until(b"]]>"))
    } else if rest.starts_with(b"<?") {
        Some(until(b"?>"))
    } else if rest.starts_with(b"<!") {
        Some(until(b">"))
    } else {
        None
    }
}

fn local_name(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, local)| local)
}

/// A link given as an attribute (`<a10:link href="..."/>`).
fn record_attributes(entry: &mut RawEntry, tag: &Tag) {
    if local_name(&tag.name) == "link"
        && let Some((_, href)) = tag.attrs.iter().find(|(n, _)| n == "href")
        && !href.trim().is_empty()
    {
        entry.links.push(decode_xml(href.trim().as_bytes()));
    }
}

fn record(entry: &mut RawEntry, name: &str, inner: &[u8], wanted: Wanted) {
    let local = local_name(name);
    let list = if local == "title" {
        wanted.titles.then_some(&mut entry.titles)
    } else if TEXT_NAMES.contains(&local) {
        wanted.texts.then_some(&mut entry.texts)
    } else if DATE_NAMES.contains(&local) {
        wanted.dates.then_some(&mut entry.dates)
    } else if local == "link" {
        wanted.links.then_some(&mut entry.links)
    } else {
        None
    };
    let Some(list) = list else { return };
    let value = decode_xml(inner);
    if !value.trim().is_empty() {
        list.push(value.trim().to_string());
    }
}

/// XML character data to text: CDATA sections as they are, entity and
/// character references decoded elsewhere. Markup inside (inline XHTML) is
/// left for the HTML-to-text step.
fn decode_xml(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix(b"<![CDATA[") {
            let end = find(after, b"]]>").unwrap_or(after.len());
            out.push_str(&String::from_utf8_lossy(&after[..end]));
            rest = &after[(end + 3).min(after.len())..];
            continue;
        }
        let next = find(rest, b"<![CDATA[").unwrap_or(rest.len());
        out.push_str(&unescape(&String::from_utf8_lossy(&rest[..next])));
        rest = &rest[next..];
    }
    out
}

fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        // `;` is ASCII, so its byte position is a char boundary.
        let Some(semi) = rest.bytes().take(12).position(|b| b == b';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let name = &rest[1..semi];
        let decoded = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => name
                .strip_prefix("#x")
                .or_else(|| name.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| name.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn any_input_is_scanned_without_panicking(doc in "(<item>|</item>|<dc:title>|</dc:title>|&#?[a-z0-9]{0,14};?|<!\\[CDATA\\[|\\]\\]>|—|é|[a-z <>/=\"'&;]){0,60}") {
            let _ = scan_entries(doc.as_bytes(), Wanted { titles: true, texts: true, dates: true, links: true });
            let _ = unescape(&doc);
            let _ = super::super::repair::repair(doc.as_bytes());
            let _ = super::super::dates::parse_date(&doc);
        }
    }

    #[test]
    fn fields_feed_rs_skips_are_collected_per_entry() {
        let xml = br#"<rss><channel><title>c</title>
            <item><dc:title>Only a dc title</dc:title><dcterms:created>2004-01-05</dcterms:created>
              <xhtml:body><p>Some <b>text</b> &amp; more</p></xhtml:body></item>
            <item><a10:link href="http://a/1"/><description><![CDATA[<p>x</p>]]></description></item>
        </channel></rss>"#;
        let all = Wanted {
            titles: true,
            texts: true,
            dates: true,
            links: true,
        };
        let entries = scan_entries(xml, all);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].titles, ["Only a dc title"]);
        assert_eq!(entries[0].dates, ["2004-01-05"]);
        assert_eq!(entries[0].texts, ["<p>Some <b>text</b> & more</p>"]);
        assert_eq!(entries[1].links, ["http://a/1"]);
        assert_eq!(entries[1].texts, ["<p>x</p>"]);
    }

    #[test]
    fn a_media_group_s_children_count_as_the_entry_s_and_nothing_else_does() {
        let xml = br#"<feed><entry><title>A</title>
              <media:group><media:credit>Someone</media:credit>
                <media:description type="plain">What the video shows</media:description></media:group>
              <author><name>Not a title</name></author>
            </entry><entry><title>B</title><media:group/><summary>Own text</summary></entry></feed>"#;
        let texts = Wanted {
            titles: false,
            texts: true,
            dates: false,
            links: false,
        };
        let entries = scan_entries(xml, texts);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].texts, ["What the video shows"]);
        assert_eq!(entries[1].texts, ["Own text"]);
    }
}

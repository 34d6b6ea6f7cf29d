//! Feed bytes → items: the parse stage.
//!
//! feed-rs does the format work (RSS 0.9x/1.0/2.0, Atom, JSON Feed); this
//! module prepares its input and normalises its output into [`Item`]s:
//!
//! - the body goes through [`to_utf8_xml`] first (lying charsets), and a
//!   `<rss>` root without a version feed-rs 3.0 knows is patched to `2.0`
//!   (it fails with `NoFeedRoot` otherwise);
//! - feed-rs invents ids for entries without one (a hash of link + title, or a
//!   random UUID on every parse): our id generator returns an empty string
//!   instead, so an invented id is recognisable and never becomes a `guid`;
//! - titles, summaries and content become plain text, links become absolute.

use std::time::Duration;

use feed_rs::model::{Entry, Link};
use jiff::Timestamp;
use url::Url;

use crate::fetch::charset::decode_feed;
use crate::item::Item;

mod dates;
mod repair;
mod scan;
use crate::text::{html_to_text, one_line, title_text};
use repair::find;

/// What a feed holds, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFeed {
    pub title: Option<String>,
    pub items: Vec<Item>,
    /// RSS `<ttl>`: a hint for the poll interval (the scheduler clamps it).
    pub ttl: Option<Duration>,
    /// What was wrong but readable (a repaired document, a charset the feed
    /// lied about): shown by `status` and logged, never a failure.
    pub warnings: Vec<String>,
    /// Texts still in HTML (see [`parse_feed_deferred`]); `None` once every
    /// item's text is plain.
    deferred: Option<Deferred>,
}

/// The HTML of the entries whose plain text is not made yet, and what
/// making it may need: the document, for a text only the scan finds.
#[derive(Debug, Clone, PartialEq)]
struct Deferred {
    /// Per item, its summary and content HTML when deferred.
    texts: Vec<Option<DeferredText>>,
    doc: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
struct DeferredText {
    summary: Option<String>,
    content: Option<String>,
}

impl ParsedFeed {
    /// Makes the plain text of every deferred item `keep` says is wanted,
    /// exactly as [`parse_feed`] would have; the others stay without text
    /// (the caller drops them: they are already known).
    pub fn finish_texts(&mut self, keep: impl Fn(usize) -> bool) {
        let Some(deferred) = self.deferred.take() else {
            return;
        };
        let mut still_empty = Vec::new();
        for (index, (item, text)) in self.items.iter_mut().zip(deferred.texts).enumerate() {
            let Some(text) = text else { continue };
            if !keep(index) {
                continue;
            }
            item.summary = text
                .summary
                .map(|html| drop_wordpress_footer(html_to_text(&html)))
                .unwrap_or_default();
            item.content = text.content.map(|html| html_to_text(&html)).unwrap_or_default();
            if item.summary.is_empty() && item.content.is_empty() {
                still_empty.push(index);
            }
        }
        if !still_empty.is_empty() {
            fill_texts_from_scan(&mut self.items, &still_empty, &deferred.doc);
        }
    }
}

/// Why a body is not a usable feed.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("the body is empty")]
    Empty,
    #[error("not a feed: {0}")]
    NotAFeed(String),
    #[error("malformed feed: {0}")]
    Malformed(String),
    #[error("truncated feed: the document ends before its closing </{0}>")]
    Truncated(String),
}

impl ParseError {
    /// A short stable label for logs and `status`.
    pub fn kind(&self) -> &'static str {
        match self {
            ParseError::Empty => "empty",
            ParseError::NotAFeed(_) => "not-a-feed",
            ParseError::Malformed(_) => "malformed",
            ParseError::Truncated(_) => "truncated",
        }
    }
}

/// Longest title made up from a summary when the entry has no title.
const MADE_UP_TITLE_CHARS: usize = 120;

/// Parses a feed body into items. `now` stands in for a missing publication date.
///
/// feed-rs reads the document first. When it refuses it (ill-formed XML, a
/// field type it does not know, a cut-off download), the document is
/// repaired ([`repair`]) and read again; what that recovers is kept, with a
/// warning in [`ParsedFeed::warnings`].
pub fn parse_feed(
    body: &[u8],
    content_type: Option<&str>,
    feed_url: &Url,
    feed_name: &str,
    now: Timestamp,
) -> Result<ParsedFeed, ParseError> {
    let mut parsed = parse_feed_deferred(body, content_type, feed_url, feed_name, now)?;
    parsed.finish_texts(|_| true);
    Ok(parsed)
}

/// [`parse_feed`], leaving the summary and content of entries that have a
/// GUID and a title as HTML until [`ParsedFeed::finish_texts`]: their dedup
/// keys do not depend on their text, so a poll can drop the ones it already
/// has before paying for turning their HTML into text (most of a changed
/// feed's entries were seen on the poll before).
pub fn parse_feed_deferred(
    body: &[u8],
    content_type: Option<&str>,
    feed_url: &Url,
    feed_name: &str,
    now: Timestamp,
) -> Result<ParsedFeed, ParseError> {
    let decoded = decode_feed(body, content_type);
    let mut warnings: Vec<String> = decoded.warning.into_iter().collect();
    let utf8 = decoded.text;
    let start = utf8.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else {
        return Err(ParseError::Empty);
    };
    let text = &utf8[start..];
    if looks_like_html(text) {
        return Err(ParseError::NotAFeed(format!(
            "the server sent an HTML page{}",
            content_type.map(|c| format!(" ({c})")).unwrap_or_default()
        )));
    }
    let is_xml = text.first() == Some(&b'<');
    let patched = if is_xml { patch_for_feed_rs(text) } else { None };
    let input: &[u8] = patched.as_deref().unwrap_or(text);
    let root = if is_xml { root_element(input) } else { None };

    // quick-xml stops quietly at the end of input or fails with a generic
    // error, so a cut-off download is recognised by its missing closing tag.
    let truncated = root
        .as_ref()
        .filter(|root| !has_closing_tag(input, &root.qualified_name))
        .map(|root| root.qualified_name.clone());
    let first_try = match &truncated {
        Some(_) => None,
        None => Some(read_with_feed_rs(input, feed_url)),
    };
    let mut repaired_doc: Option<Vec<u8>> = None;
    let feed = match first_try {
        Some(Ok(feed)) => feed,
        Some(Err(feed_rs::parser::ParseFeedError::ParseError(
            feed_rs::parser::ParseErrorKind::NoFeedRoot,
        ))) if !is_xml || root.as_ref().is_none_or(|r| !is_feed_root(&r.name)) => {
            return Err(ParseError::NotAFeed(match &root {
                Some(root) => format!(
                    "the document's root element <{}> is not RSS, Atom or RDF",
                    root.name
                ),
                None => "neither XML nor JSON Feed".to_string(),
            }));
        }
        Some(Err(e)) if !is_xml => match loosen_json_feed(input) {
            Some(loose) => match read_with_feed_rs(&loose, feed_url) {
                Ok(feed) => feed,
                Err(_) => return Err(ParseError::Malformed(e.to_string())),
            },
            None => return Err(ParseError::Malformed(e.to_string())),
        },
        refused => {
            let why = match refused {
                Some(Err(e)) => ParseError::Malformed(e.to_string()),
                _ => ParseError::Truncated(truncated.clone().unwrap_or_default()),
            };
            let repaired = repair::repair(input);
            let repatched = patch_for_feed_rs(&repaired.xml);
            let fixed = repatched.as_deref().unwrap_or(&repaired.xml);
            match read_with_feed_rs(fixed, feed_url) {
                Ok(feed) if !(repaired.truncated && feed.entries.is_empty()) => {
                    repaired_doc = Some(repatched.unwrap_or(repaired.xml));
                    warnings.push(format!(
                        "recovered {} entries from {} ({why})",
                        feed.entries.len(),
                        if repaired.truncated {
                            "a truncated document"
                        } else {
                            "an ill-formed document"
                        },
                    ));
                    feed
                }
                _ => return Err(why),
            }
        }
    };

    let (mut items, texts): (Vec<Item>, Vec<Option<DeferredText>>) = feed
        .entries
        .into_iter()
        .map(|entry| normalise_entry(entry, feed_url, feed_name, now))
        .unzip();
    let doc = repaired_doc.as_deref().unwrap_or(input);
    if is_xml {
        fill_from_scan(&mut items, &texts, doc, feed_url);
    }
    let deferred = texts.iter().any(Option::is_some).then(|| Deferred {
        texts,
        doc: if is_xml { doc.to_vec() } else { Vec::new() },
    });
    Ok(ParsedFeed {
        deferred,
        title: feed
            .title
            .map(|t| title_text(&t.content))
            .filter(|t| !t.is_empty()),
        items,
        ttl: feed
            .ttl
            .map(|minutes| Duration::from_secs(u64::from(minutes) * 60)),
        warnings,
    })
}

/// A JSON Feed feed-rs refused, reshaped into what it reads: any
/// `version` naming JSON Feed 1.x (`http:`, "1.0", "1.1") becomes the
/// canonical URL, and fields written as one string where the spec has a
/// list (`tags`) become lists. `None` when it is not a JSON object.
fn loosen_json_feed(input: &[u8]) -> Option<Vec<u8>> {
    use serde_json::Value;
    let mut doc: Value = serde_json::from_slice(input).ok()?;
    let object = doc.as_object_mut()?;
    object.insert(
        "version".into(),
        Value::String("https://jsonfeed.org/version/1.1".into()),
    );
    if let Some(items) = object.get_mut("items").and_then(Value::as_array_mut) {
        items.retain(Value::is_object);
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(Value::String(tags)) = item.get("tags") {
                let list = tags
                    .split(',')
                    .map(|t| Value::String(t.trim().to_string()))
                    .filter(|t| t.as_str().is_some_and(|t| !t.is_empty()))
                    .collect();
                item.insert("tags".into(), Value::Array(list));
            }
            // An id must be a string; numbers are common.
            if let Some(id @ Value::Number(_)) = item.get("id") {
                let id = id.to_string();
                item.insert("id".into(), Value::String(id));
            }
        }
    }
    serde_json::to_vec(&doc).ok()
}

/// Fills what feed-rs left empty (title, text, link, date) from the fields
/// it does not read (see [`scan`]); only when some entry needs it.
/// An entry whose text is deferred is not counted as wanting one: if its
/// HTML turns out to hold no text, [`fill_texts_from_scan`] looks then.
fn fill_from_scan(items: &mut [Item], deferred: &[Option<DeferredText>], doc: &[u8], feed_url: &Url) {
    let wants_text = |(item, deferred): (&Item, &Option<DeferredText>)| {
        deferred.is_none() && item.summary.is_empty() && item.content.is_empty()
    };
    let wanted = scan::Wanted {
        titles: items.iter().any(|i| i.title.is_empty()),
        texts: items.iter().zip(deferred).any(wants_text),
        dates: items.iter().any(|i| !i.dated),
        links: items.iter().any(|i| i.url.is_none()),
    };
    if !(wanted.titles || wanted.texts || wanted.dates || wanted.links) {
        return;
    }
    let raw = scan::scan_entries(doc, wanted);
    if raw.len() != items.len() {
        return;
    }
    for ((item, raw), deferred) in items.iter_mut().zip(raw).zip(deferred) {
        if deferred.is_none()
            && item.summary.is_empty()
            && item.content.is_empty()
            && let Some(text) = raw.texts.iter().map(|t| html_to_text(t)).find(|t| !t.is_empty())
        {
            item.summary = drop_wordpress_footer(text);
        }
        if item.url.is_none() {
            item.url = raw
                .links
                .iter()
                .filter_map(|l| feed_url.join(l.trim()).ok())
                .find(|u| matches!(u.scheme(), "http" | "https"));
        }
        if !item.dated
            && let Some(date) = raw.dates.iter().find_map(|d| dates::parse_date(d))
        {
            item.published = date;
            item.dated = true;
        }
        if item.title.is_empty() {
            item.title = raw
                .titles
                .iter()
                .map(|t| title_text(t))
                .find(|t| !t.is_empty())
                .unwrap_or_else(|| made_up_title(&item.summary));
        }
    }
}

/// The text step of [`fill_from_scan`] for deferred entries whose HTML
/// held no text (`indices`), once their text is made.
fn fill_texts_from_scan(items: &mut [Item], indices: &[usize], doc: &[u8]) {
    if doc.is_empty() {
        return;
    }
    let wanted = scan::Wanted {
        titles: false,
        texts: true,
        dates: false,
        links: false,
    };
    let raw = scan::scan_entries(doc, wanted);
    if raw.len() != items.len() {
        return;
    }
    for &index in indices {
        if let Some(text) = raw[index]
            .texts
            .iter()
            .map(|t| html_to_text(t))
            .find(|t| !t.is_empty())
        {
            items[index].summary = drop_wordpress_footer(text);
        }
    }
}

/// Root element names a feed can have (feed-rs reads these).
fn is_feed_root(name: &str) -> bool {
    matches!(
        name,
        "rss" | "RDF" | "feed" | "entry" | "RSS" | "rdf" | "channel" | "CHANNEL"
    )
}

fn read_with_feed_rs(
    input: &[u8],
    feed_url: &Url,
) -> Result<feed_rs::model::Feed, feed_rs::parser::ParseFeedError> {
    feed_rs::parser::Builder::new()
        .base_uri(Some(feed_url.as_str()))
        .id_generator(|_links, _title, _uri| String::new())
        .timestamp_parser(|text| {
            let t = dates::parse_date(text)?;
            chrono::DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().try_into().ok()?)
        })
        .build()
        .parse(input)
}

/// One entry as an [`Item`]. Every entry is kept, even one with no title or
/// text (a link or GUID alone still tells a reader something happened).
/// One entry as an item; its text deferred (returned as HTML, the item's
/// summary and content left empty) when it has a GUID and a title, so its
/// dedup keys do not need the text.
fn normalise_entry(
    entry: Entry,
    feed_url: &Url,
    feed_name: &str,
    now: Timestamp,
) -> (Item, Option<DeferredText>) {
    let guid = Some(entry.id.trim().to_string()).filter(|id| !id.is_empty());
    let updated = entry
        .updated
        .and_then(|t| to_timestamp((t.timestamp(), t.timestamp_subsec_nanos())));
    let published = entry
        .published
        .and_then(|t| to_timestamp((t.timestamp(), t.timestamp_subsec_nanos())))
        .or(updated);
    let dated = published.is_some();
    let published = published.unwrap_or(now);
    let url = article_link(&entry.links, feed_url).or_else(|| permalink_guid(guid.as_deref()));
    // Video and podcast feeds (YouTube, Media RSS, iTunes) carry the text in
    // their media description when there is no summary.
    let media_text = entry.media.iter().find_map(|m| m.description.as_ref());
    let summary_html = entry.summary.as_ref().or(media_text).map(|t| t.content.clone());
    let content_html = entry
        .content
        .filter(|c| {
            let mime = &c.content_type;
            mime.ty() == "text"
                || mime.subty() == "xhtml"
                || mime.subty() == "html"
                || mime.suffix().is_some()
        })
        .and_then(|c| c.body);
    let mut title = entry.title.map(|t| title_text(&t.content)).unwrap_or_default();
    let (summary, content, deferred) = if guid.is_some() && !title.is_empty() {
        let html = DeferredText {
            summary: summary_html,
            content: content_html,
        };
        (String::new(), String::new(), Some(html))
    } else {
        let summary = summary_html
            .map(|html| drop_wordpress_footer(html_to_text(&html)))
            .unwrap_or_default();
        let content = content_html.map(|html| html_to_text(&html)).unwrap_or_default();
        (summary, content, None)
    };
    if title.is_empty() {
        title = made_up_title(if summary.is_empty() { &content } else { &summary });
    }
    let mut categories: Vec<String> = Vec::new();
    for category in entry.categories {
        let label = title_text(&category.term);
        if !label.is_empty() && !categories.contains(&label) {
            categories.push(label);
        }
    }
    let item = Item {
        feed: feed_name.to_string(),
        guid,
        url,
        title,
        summary,
        content,
        published,
        dated,
        updated,
        categories,
    };
    (item, deferred)
}

/// The article's own link: the first one that is not a comments link or
/// another relation (WordPress adds `#respond` and comment-feed links), made
/// absolute against the feed URL.
fn article_link(links: &[Link], feed_url: &Url) -> Option<Url> {
    let is_article = |l: &&Link| l.target.is_none() && l.rel.as_deref().is_none_or(|r| r == "alternate");
    links
        .iter()
        .find(is_article)
        .or_else(|| links.first())
        .and_then(|l| feed_url.join(l.href.trim()).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
}

/// An RSS guid that is itself an absolute web URL serves as the link when
/// the item has none (`isPermaLink` defaults to true).
fn permalink_guid(guid: Option<&str>) -> Option<Url> {
    Url::parse(guid?)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.query().is_none())
}

/// WordPress ends every excerpt with "The post X appeared first on Site.":
/// boilerplate that names the site, not the story, so it must not be tagged.
fn drop_wordpress_footer(text: String) -> String {
    match text.rsplit_once('\n') {
        Some((body, last)) if last.starts_with("The post ") && last.contains(" appeared first on ") => {
            body.trim_end().to_string()
        }
        _ => text,
    }
}

fn made_up_title(text: &str) -> String {
    let line = one_line(text);
    if line.chars().count() <= MADE_UP_TITLE_CHARS {
        return line;
    }
    let cut: String = line.chars().take(MADE_UP_TITLE_CHARS).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("{cut}…")
}

/// feed-rs hands out chrono times; going through seconds and nanoseconds
/// keeps chrono out of our own dependencies.
fn to_timestamp((seconds, nanos): (i64, u32)) -> Option<Timestamp> {
    Timestamp::new(seconds, i32::try_from(nanos).ok()?).ok()
}

fn looks_like_html(text: &[u8]) -> bool {
    let head: Vec<u8> = text.iter().take(256).map(u8::to_ascii_lowercase).collect();
    let mut rest: &[u8] = &head;
    // Skip comments before the first tag; they are common at the top of pages.
    while rest.starts_with(b"<!--") {
        match rest.windows(3).position(|w| w == b"-->") {
            Some(end) => rest = rest[end + 3..].trim_ascii_start(),
            None => break,
        }
    }
    rest.starts_with(b"<!doctype html") || rest.starts_with(b"<html") || rest.starts_with(b"<head")
}

/// The root element's names: `qualified_name` as written (`rdf:RDF`),
/// `name` without the prefix (`RDF`).
#[derive(Debug)]
struct Root {
    name: String,
    qualified_name: String,
    /// Byte range of the start tag's attributes.
    attrs: std::ops::Range<usize>,
}

/// Finds the root element, skipping the prolog, comments, processing
/// instructions and a DOCTYPE (including an internal subset).
fn root_element(xml: &[u8]) -> Option<Root> {
    let mut at = 0;
    loop {
        at += xml[at..].iter().position(|b| !b.is_ascii_whitespace())?;
        let rest = &xml[at..];
        if rest.starts_with(b"<?") {
            at += find(rest, b"?>")? + 2;
        } else if rest.starts_with(b"<!--") {
            at += find(rest, b"-->")? + 3;
        } else if rest.starts_with(b"<!") {
            let bracket = rest.iter().position(|b| *b == b'[');
            let close = rest.iter().position(|b| *b == b'>')?;
            at += match bracket {
                Some(open) if open < close => find(rest, b"]>").or_else(|| find(rest, b"] >"))? + 2,
                _ => close + 1,
            };
        } else if rest.starts_with(b"<") {
            let name_len = rest[1..]
                .iter()
                .position(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/')?;
            let qualified_name = std::str::from_utf8(&rest[1..1 + name_len]).ok()?.to_string();
            let tag_end = rest.iter().position(|b| *b == b'>')?;
            let name = qualified_name
                .rsplit_once(':')
                .map_or(qualified_name.as_str(), |(_, local)| local)
                .to_string();
            return Some(Root {
                name,
                qualified_name,
                attrs: at + 1 + name_len..at + tag_end,
            });
        } else {
            return None;
        }
    }
}

/// Whether the root's closing tag `</name>` is present. Not "at the very
/// end": some servers append a comment or stray bytes after it, which the
/// XML reader ignores and so should we.
fn has_closing_tag(xml: &[u8], qualified_name: &str) -> bool {
    let mut needle = Vec::with_capacity(qualified_name.len() + 2);
    needle.extend_from_slice(b"</");
    needle.extend_from_slice(qualified_name.as_bytes());
    let Some(at) = xml.windows(needle.len()).rposition(|w| w == needle.as_slice()) else {
        return false;
    };
    xml[at + needle.len()..].trim_ascii_start().starts_with(b">")
}

/// The RSS 0.90 namespace; feed-rs knows only RSS 1.0's, and 0.90 has the same shape.
const RSS_090_NAMESPACE: &[u8] = b"http://my.netscape.com/rdf/simple/0.9/";
const RSS_10_NAMESPACE: &[u8] = b"http://purl.org/rss/1.0/";

/// The Atom 0.3 namespace: the same shape as Atom 1.0 for what we read,
/// but feed-rs only knows 1.0's, so 0.3 documents read as empty.
const ATOM_03_NAMESPACE: &[u8] = b"http://purl.org/atom/ns#";
const ATOM_10_NAMESPACE: &[u8] = b"http://www.w3.org/2005/Atom";

/// Rewrites what feed-rs 3.0 would refuse or misread: an `<rss>` version it
/// does not know, a default namespace on `<rss>` (feed-rs then sees no RSS
/// element at all), and the RSS 0.90 and Atom 0.3 namespaces. `None` when
/// nothing needs changing.
fn patch_for_feed_rs(xml: &[u8]) -> Option<Vec<u8>> {
    let mut doc: Option<Vec<u8>> = None;
    for patch in [
        patch_bare_rdf_root,
        patch_rss_090,
        patch_atom_03,
        patch_rss_default_namespace,
        patch_rss_without_channel,
        patch_prefixed_rss,
        patch_rdf_items_without_link,
        patch_rss_version,
    ] {
        if let Some(patched) = patch(doc.as_deref().unwrap_or(xml)) {
            doc = Some(patched);
        }
    }
    doc
}

/// The other spelling of the Netscape RSS 0.90 namespace.
const RSS_090_CHANNEL_NAMESPACE: &[u8] = b"http://channel.netscape.com/rdf/simple/0.9/";

fn patch_rss_090(xml: &[u8]) -> Option<Vec<u8>> {
    let root = root_element(xml)?;
    if root.name != "RDF" {
        return None;
    }
    let mut doc: Option<Vec<u8>> = None;
    for namespace in [RSS_090_NAMESPACE, RSS_090_CHANNEL_NAMESPACE] {
        let current = doc.as_deref().unwrap_or(xml);
        if find(current, namespace).is_some() {
            doc = Some(replace_all(current, namespace, RSS_10_NAMESPACE));
        }
    }
    doc
}

/// A bare `<rdf>` root (no prefix, no namespace) is RSS 1.0's `<rdf:RDF>`.
fn patch_bare_rdf_root(xml: &[u8]) -> Option<Vec<u8>> {
    let root = root_element(xml)?;
    if root.qualified_name != "rdf" {
        return None;
    }
    let start = root.attrs.start - "<rdf".len();
    let mut patched = Vec::with_capacity(xml.len() + 128);
    patched.extend_from_slice(&xml[..start]);
    patched.extend_from_slice(
        b"<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" xmlns=\"http://purl.org/rss/1.0/\"",
    );
    let rest = &xml[root.attrs.start..];
    patched.extend_from_slice(&replace_all(rest, b"</rdf>", b"</rdf:RDF>"));
    Some(patched)
}

/// Atom 0.3 → 1.0: the namespace, `issued`/`modified` → `published`/`updated`,
/// and its MIME-typed text constructs (`type="text/plain"`) → 1.0's names.
fn patch_atom_03(xml: &[u8]) -> Option<Vec<u8>> {
    let root = root_element(xml)?;
    if root.name != "feed" || find(&xml[root.attrs.clone()], ATOM_03_NAMESPACE).is_none() {
        return None;
    }
    let mut doc = replace_all(xml, ATOM_03_NAMESPACE, ATOM_10_NAMESPACE);
    for (from, to) in [
        (&b"<issued>"[..], &b"<published>"[..]),
        (b"</issued>", b"</published>"),
        (b"<modified>", b"<updated>"),
        (b"</modified>", b"</updated>"),
        (b"type=\"text/plain\"", b"type=\"text\""),
        (b"type=\"application/xhtml+xml\"", b"type=\"xhtml\""),
    ] {
        if find(&doc, from).is_some() {
            doc = replace_all(&doc, from, to);
        }
    }
    Some(doc)
}

/// Wraps the items of an `<rss>` that has no `<channel>` in one (feed-rs
/// reads items only inside a channel).
fn patch_rss_without_channel(xml: &[u8]) -> Option<Vec<u8>> {
    let root = root_element(xml)?;
    if root.qualified_name != "rss"
        || find(xml, b"<channel").is_some()
        || xml[..root.attrs.end].ends_with(b"/")
    {
        return None;
    }
    let close = xml.windows(6).rposition(|w| w == b"</rss>").unwrap_or(xml.len());
    let open_end = root.attrs.end + 1;
    let mut patched = Vec::with_capacity(xml.len() + 24);
    patched.extend_from_slice(&xml[..open_end]);
    patched.extend_from_slice(b"<channel>");
    patched.extend_from_slice(&xml[open_end..close]);
    patched.extend_from_slice(b"</channel>");
    patched.extend_from_slice(&xml[close..]);
    Some(patched)
}

/// `<r:rss xmlns:r="http://backend.userland.com/rss2">`: RSS 2.0 written
/// with a prefix on every element; the prefix is dropped.
fn patch_prefixed_rss(xml: &[u8]) -> Option<Vec<u8>> {
    let root = root_element(xml)?;
    let (prefix, local) = root.qualified_name.split_once(':')?;
    if local != "rss" {
        return None;
    }
    let open = format!("<{prefix}:");
    let close = format!("</{prefix}:");
    let doc = replace_all(xml, close.as_bytes(), b"</");
    Some(replace_all(&doc, open.as_bytes(), b"<"))
}

/// feed-rs drops an RSS 1.0 `<item>` without a `<link>`; its `rdf:about`
/// (the item's URI) is given as the link, or `about:blank` when it has none
/// (not a web link, so the item is stored without one).
fn patch_rdf_items_without_link(xml: &[u8]) -> Option<Vec<u8>> {
    let root = root_element(xml)?;
    if root.name != "RDF" {
        return None;
    }
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = find(&xml[from..], b"<item") {
        let start = from + found;
        from = start + 5;
        if !xml
            .get(from)
            .is_some_and(|b| b.is_ascii_whitespace() || *b == b'>')
        {
            continue;
        }
        let Some(tag_end) = xml[start..]
            .iter()
            .position(|b| *b == b'>')
            .map(|e| start + e + 1)
        else {
            break;
        };
        let body_end = find(&xml[tag_end..], b"</item>").map_or(xml.len(), |e| tag_end + e);
        if find(&xml[tag_end..body_end], b"<link").is_some() || xml[..tag_end].ends_with(b"/>") {
            continue;
        }
        let tag = std::str::from_utf8(&xml[start + 5..tag_end - 1]).unwrap_or("");
        let about = attr_value(tag, "rdf:about")
            .map(|(_, v)| v)
            .filter(|v| !v.trim().is_empty())
            .unwrap_or("about:blank");
        let out = out.get_or_insert_with(|| Vec::with_capacity(xml.len() + 256));
        out.extend_from_slice(&xml[copied..tag_end]);
        out.extend_from_slice(b"<link>");
        out.extend_from_slice(about.as_bytes());
        out.extend_from_slice(b"</link>");
        copied = tag_end;
    }
    let mut out = out?;
    out.extend_from_slice(&xml[copied..]);
    Some(out)
}

/// Drops `xmlns="..."` from an `<rss>` root (UserLand's `rss2` namespace and
/// the like): RSS 2.0 has no namespace, and feed-rs ignores namespaced elements.
fn patch_rss_default_namespace(xml: &[u8]) -> Option<Vec<u8>> {
    let root = root_element(xml)?;
    if root.qualified_name != "rss" {
        return None;
    }
    let attrs = std::str::from_utf8(&xml[root.attrs.clone()]).ok()?;
    let (range, _) = attr_value(attrs, "xmlns")?;
    let mut patched = Vec::with_capacity(xml.len());
    patched.extend_from_slice(&xml[..root.attrs.start + range.start]);
    patched.extend_from_slice(&xml[root.attrs.start + range.end..]);
    Some(patched)
}

fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = find(rest, from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// RSS versions feed-rs 3.0 recognises on the root element.
const KNOWN_RSS_VERSIONS: [&str; 4] = ["2.0", "0.91", "0.92", ""];

/// Rewrites `<rss>` / `<rss version="2.0.1">` (or any version feed-rs does not
/// know) to `version="2.0"`. `None` when nothing needs changing.
fn patch_rss_version(xml: &[u8]) -> Option<Vec<u8>> {
    let root = root_element(xml)?;
    if root.qualified_name != "rss" {
        return None;
    }
    let attrs = std::str::from_utf8(&xml[root.attrs.clone()]).ok()?;
    let version = attr_value(attrs, "version");
    if let Some((_, value)) = &version
        && KNOWN_RSS_VERSIONS.contains(&value.trim())
    {
        return None;
    }
    let mut patched = Vec::with_capacity(xml.len() + 16);
    match version {
        Some((range, _)) => {
            let start = root.attrs.start + range.start;
            let end = root.attrs.start + range.end;
            patched.extend_from_slice(&xml[..start]);
            patched.extend_from_slice(b"version=\"2.0\"");
            patched.extend_from_slice(&xml[end..]);
        }
        None => {
            patched.extend_from_slice(&xml[..root.attrs.start]);
            patched.extend_from_slice(b" version=\"2.0\"");
            patched.extend_from_slice(&xml[root.attrs.start..]);
        }
    }
    Some(patched)
}

/// Finds `name="value"` among a start tag's attributes: the attribute's byte
/// range (name to closing quote) and the value.
fn attr_value<'a>(attrs: &'a str, name: &str) -> Option<(std::ops::Range<usize>, &'a str)> {
    let mut search_from = 0;
    while let Some(found) = attrs[search_from..].find(name) {
        let start = search_from + found;
        search_from = start + name.len();
        let preceded_by_space = start == 0 || attrs[..start].ends_with(|c: char| c.is_ascii_whitespace());
        let after = attrs[search_from..].trim_start();
        let Some(after) = after.strip_prefix('=').map(str::trim_start) else {
            continue;
        };
        if !preceded_by_space {
            continue;
        }
        let Some(quote) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            continue;
        };
        let value_start = attrs.len() - after.len() + 1;
        let value_len = attrs[value_start..].find(quote)?;
        return Some((
            start..value_start + value_len + 1,
            &attrs[value_start..value_start + value_len],
        ));
    }
    None
}

#[cfg(test)]
mod tests;

//! Repair of ill-formed feed XML, run only when feed-rs refuses a document.
//!
//! A forgiving tokenizer of our own re-serialises the document as
//! well-formed XML, the way feedparser's loose parser and miniflux's
//! sanitiser read it: a stray `&` or `<` in text becomes `&amp;`/`&lt;`,
//! attributes are re-quoted (single-quoted or bare values), end tags that
//! close nothing are dropped and unclosed elements are closed where their
//! parent ends, control characters are removed, ALL-CAPS element names
//! (CDF-era `<CHANNEL>`) are lower-cased, and `type` attributes of text
//! fields that feed-rs does not know are mapped onto text/html/xhtml. A
//! document cut short (a truncated download) is cut after its last complete
//! entry and closed, so every complete entry is kept and no half entry is.
//!
//! Why not an error-tolerant parser crate (xml5ever): the repair runs only on
//! the few documents feed-rs refuses, needs no tree, and must keep the
//! no-DTD rule — a DOCTYPE (and so any entity definition) is dropped here,
//! never expanded. The pass is linear in the input and allocates its output
//! once.

/// What the repair pass produced.
#[derive(Debug)]
pub struct Repaired {
    pub xml: Vec<u8>,
    /// The document ended before its root closed (a cut download).
    pub truncated: bool,
}

/// Element names that are one feed entry.
const ENTRY_NAMES: &[&str] = &["item", "entry"];

/// Elements that hold entries.
const CONTAINER_NAMES: &[&str] = &["channel", "feed", "RDF", "rss"];

/// Elements whose `type` attribute feed-rs reads as a text-construct type.
const TEXT_CONSTRUCTS: &[&str] = &[
    "title",
    "subtitle",
    "summary",
    "content",
    "rights",
    "tagline",
    "info",
    "copyright",
];

/// Re-serialises `xml` (UTF-8) as well-formed XML.
pub fn repair(xml: &[u8]) -> Repaired {
    let mut out: Vec<u8> = Vec::with_capacity(xml.len() + 1024);
    let mut stack: Vec<String> = Vec::new();
    // Where the output may be cut if the document turns out truncated: after
    // the last complete entry, with the elements open at that point.
    let mut last_entry_end: Option<(usize, Vec<String>)> = None;
    let mut i = 0;
    while i < xml.len() {
        let rest = &xml[i..];
        if rest[0] != b'<' {
            let end = rest.iter().position(|b| *b == b'<').unwrap_or(rest.len());
            if !stack.is_empty() {
                push_text(&mut out, &rest[..end]);
            }
            i += end;
            continue;
        }
        if rest.starts_with(b"<!--") {
            let end = find(rest, b"-->").map_or(rest.len(), |e| e + 3);
            i += end;
            continue;
        }
        if rest.starts_with(b"<![CDATA[") {
            let (body, used) = match find(rest, b"]]>") {
                Some(e) => (&rest[9..e], e + 3),
                None => (&rest[9..], rest.len()),
            };
            if !stack.is_empty() {
                out.extend_from_slice(b"<![CDATA[");
                out.extend_from_slice(&strip_controls(body));
                out.extend_from_slice(b"]]>");
            }
            i += used;
            continue;
        }
        if rest.starts_with(b"<?") {
            let end = find(rest, b"?>").map_or(rest.len(), |e| e + 2);
            // Only the XML declaration is kept, and only at the very start.
            if out.is_empty() && rest.starts_with(b"<?xml ") {
                out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
            }
            i += end;
            continue;
        }
        if rest.starts_with(b"<!") {
            // DOCTYPE (with any internal subset): dropped, never expanded.
            let bracket = rest.iter().position(|b| *b == b'[');
            let close = rest.iter().position(|b| *b == b'>').unwrap_or(rest.len() - 1);
            let end = match bracket {
                Some(open) if open < close => find(rest, b"]>")
                    .or_else(|| find(rest, b"] >"))
                    .map_or(rest.len(), |e| e + 2),
                _ => close + 1,
            };
            i += end.min(rest.len());
            continue;
        }
        let Some(tag) = read_tag(rest) else {
            // A `<` that starts no tag is text.
            if !stack.is_empty() {
                out.extend_from_slice(b"&lt;");
            }
            i += 1;
            continue;
        };
        i += tag.len;
        if tag.closing {
            let Some(depth) = stack.iter().rposition(|open| *open == tag.name) else {
                continue; // closes nothing: dropped
            };
            while stack.len() > depth {
                let name = stack.pop().unwrap_or_default();
                close_tag(&mut out, &name);
                if ENTRY_NAMES.contains(&local_name(&name)) {
                    last_entry_end = Some((out.len(), stack.clone()));
                }
            }
            if stack.is_empty() {
                break; // the root is closed: what follows is not part of the document
            }
            continue;
        }
        if stack.is_empty() && !out.iter().all(u8::is_ascii_whitespace) && !out.starts_with(b"<?xml") {
            break; // a second root
        }
        // An entry belongs to its channel or feed: whatever is still open
        // above that (an unclosed `<itunes:category>`) closes first, or the
        // entries would be read as that element's children and lost.
        if ENTRY_NAMES.contains(&local_name(&tag.name))
            && let Some(container) = stack
                .iter()
                .rposition(|open| CONTAINER_NAMES.contains(&local_name(open)))
        {
            while stack.len() > container + 1 {
                let name = stack.pop().unwrap_or_default();
                close_tag(&mut out, &name);
            }
        }
        open_tag(&mut out, &tag);
        if !tag.self_closing {
            stack.push(tag.name);
        }
    }
    let truncated = !stack.is_empty();
    if truncated {
        if let Some((cut, open)) = last_entry_end {
            out.truncate(cut);
            stack = open;
        }
        while let Some(name) = stack.pop() {
            close_tag(&mut out, &name);
        }
    }
    Repaired { xml: out, truncated }
}

/// One start or end tag, as the forgiving tokenizer read it.
#[derive(Debug)]
pub(super) struct Tag {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub closing: bool,
    pub self_closing: bool,
    /// Bytes of input the tag takes, `<` to `>`.
    pub len: usize,
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-' | b'.') || b >= 0x80
}

/// Reads `<name attr=...>`, `</name>` or `<name/>` at the start of `rest`.
pub(super) fn read_tag(rest: &[u8]) -> Option<Tag> {
    let mut i = 1;
    let closing = rest.get(1) == Some(&b'/');
    if closing {
        i += 1;
    }
    let start = i;
    if !rest
        .get(i)
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_' || *b >= 0x80)
    {
        return None;
    }
    while rest.get(i).is_some_and(|b| is_name_byte(*b)) {
        i += 1;
    }
    let mut name = String::from_utf8_lossy(&rest[start..i]).into_owned();
    if name.bytes().any(|b| b.is_ascii_uppercase()) && !name.bytes().any(|b| b.is_ascii_lowercase()) {
        name.make_ascii_lowercase();
    }
    let mut attrs: Vec<(String, String)> = Vec::new();
    let mut self_closing = false;
    loop {
        while rest.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        match rest.get(i) {
            None => return None,
            Some(b'>') => {
                i += 1;
                break;
            }
            Some(b'/') if rest.get(i + 1) == Some(&b'>') => {
                self_closing = true;
                i += 2;
                break;
            }
            Some(b'<') => break, // an unclosed tag: end it here
            Some(b) if is_name_byte(*b) => {
                let name_start = i;
                while rest.get(i).is_some_and(|b| is_name_byte(*b)) {
                    i += 1;
                }
                let mut attr = String::from_utf8_lossy(&rest[name_start..i]).into_owned();
                if !attr.bytes().any(|b| b.is_ascii_lowercase()) {
                    attr.make_ascii_lowercase();
                }
                while rest.get(i).is_some_and(u8::is_ascii_whitespace) {
                    i += 1;
                }
                let mut value = String::new();
                if rest.get(i) == Some(&b'=') {
                    i += 1;
                    while rest.get(i).is_some_and(u8::is_ascii_whitespace) {
                        i += 1;
                    }
                    match rest.get(i) {
                        Some(q @ (b'"' | b'\'')) => {
                            let q = *q;
                            let end = rest[i + 1..].iter().position(|b| *b == q)?;
                            value = String::from_utf8_lossy(&rest[i + 1..i + 1 + end]).into_owned();
                            i += end + 2;
                        }
                        _ => {
                            let start = i;
                            while rest
                                .get(i)
                                .is_some_and(|b| !b.is_ascii_whitespace() && *b != b'>' && *b != b'<')
                            {
                                i += 1;
                            }
                            value = String::from_utf8_lossy(&rest[start..i]).into_owned();
                        }
                    }
                }
                if !attrs.iter().any(|(n, _)| *n == attr) {
                    attrs.push((attr, value));
                }
            }
            Some(_) => i += 1, // stray byte inside a tag
        }
    }
    Some(Tag {
        name,
        attrs,
        closing,
        self_closing,
        len: i,
    })
}

fn local_name(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, local)| local)
}

/// The `type` of a text field, as feed-rs knows types; `None` drops it.
fn text_type(element: &str, value: &str) -> Option<String> {
    let v = value.trim().to_ascii_lowercase();
    let known = match v.as_str() {
        "" => return None,
        "text" | "text/plain" => "text",
        "html" | "text/html" | "escaped" => "html",
        "xhtml" | "application/xhtml+xml" => "xhtml",
        // feed-rs reads other MIME types in <content> (inline or base64).
        _ if local_name(element) == "content" && v.contains('/') => return Some(value.to_string()),
        _ => return None,
    };
    Some(known.to_string())
}

fn open_tag(out: &mut Vec<u8>, tag: &Tag) {
    out.push(b'<');
    out.extend_from_slice(tag.name.as_bytes());
    let is_text_construct = TEXT_CONSTRUCTS.contains(&local_name(&tag.name));
    // Atom content with `src` must be empty and typed by MIME type; feed-rs
    // refuses anything else. A `src` beside a body is dropped (the body is
    // the text we want); an empty one keeps `src` with a MIME type only.
    let has_src = tag.attrs.iter().any(|(n, _)| n == "src");
    let drop_src = has_src && !tag.self_closing;
    for (name, value) in &tag.attrs {
        if drop_src && name == "src" {
            continue;
        }
        if has_src && !drop_src && name == "type" && !value.contains('/') {
            continue;
        }
        let value = if is_text_construct && name == "type" {
            match text_type(&tag.name, value) {
                Some(v) => v,
                None => continue,
            }
        } else {
            value.clone()
        };
        out.push(b' ');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"=\"");
        push_text(out, value.as_bytes());
        out.push(b'"');
    }
    if tag.self_closing {
        out.push(b'/');
    }
    out.push(b'>');
}

fn close_tag(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b"</");
    out.extend_from_slice(name.as_bytes());
    out.push(b'>');
}

/// The five XML entities; any other named reference is escaped, so it is
/// kept as written (HTML text decodes it later) instead of failing the parse.
const XML_ENTITIES: &[&[u8]] = &[b"amp", b"lt", b"gt", b"quot", b"apos"];

/// Writes text (or an attribute value) escaped for XML: `<`, `"` and stray
/// `&` are escaped, valid character references kept, control characters dropped.
fn push_text(out: &mut Vec<u8>, text: &[u8]) {
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        match b {
            b'<' => out.extend_from_slice(b"&lt;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            b'&' => {
                let reference = entity_len(&text[i..]);
                match reference {
                    Some(len) => {
                        out.extend_from_slice(&text[i..i + len]);
                        i += len;
                        continue;
                    }
                    None => out.extend_from_slice(b"&amp;"),
                }
            }
            0x00..=0x08 | 0x0B | 0x0C | 0x0E..=0x1F => {}
            _ => out.push(b),
        }
        i += 1;
    }
}

/// The length of a valid XML reference at the start of `text` (`&amp;`,
/// `&#38;`, `&#x26;`), or `None` when this `&` is a stray one.
fn entity_len(text: &[u8]) -> Option<usize> {
    let end = text.iter().take(12).position(|b| *b == b';')?;
    let body = &text[1..end];
    let ok = match body {
        [b'#', b'x' | b'X', hex @ ..] => !hex.is_empty() && hex.iter().all(u8::is_ascii_hexdigit),
        [b'#', dec @ ..] => !dec.is_empty() && dec.iter().all(u8::is_ascii_digit),
        name => XML_ENTITIES.contains(&name),
    };
    ok.then_some(end + 1)
}

fn strip_controls(text: &[u8]) -> Vec<u8> {
    text.iter()
        .copied()
        .filter(|b| !matches!(b, 0x00..=0x08 | 0x0B | 0x0C | 0x0E..=0x1F))
        .collect()
}

/// Where `needle` first starts in `haystack`.
pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(xml: &str) -> String {
        String::from_utf8(repair(xml.as_bytes()).xml).unwrap()
    }

    #[test]
    fn stray_ampersands_and_brackets_are_escaped_references_kept() {
        assert_eq!(
            fixed("<rss><t>AT&T &amp; a < b &#38; &nbsp;</t></rss>"),
            "<rss><t>AT&amp;T &amp; a &lt; b &#38; &amp;nbsp;</t></rss>"
        );
    }

    #[test]
    fn attributes_are_requoted_and_unclosed_elements_closed() {
        assert_eq!(
            fixed("<feed><link href='http://a/?x=1&y=2' rel=alternate><p>open</feed>"),
            "<feed><link href=\"http://a/?x=1&amp;y=2\" rel=\"alternate\"><p>open</p></link></feed>"
        );
    }

    #[test]
    fn a_truncated_document_keeps_its_complete_entries_only() {
        let r = repair(b"<rss><channel><item><title>one</title></item><item><title>tw");
        assert!(r.truncated);
        assert_eq!(
            String::from_utf8(r.xml).unwrap(),
            "<rss><channel><item><title>one</title></item></channel></rss>"
        );
    }

    #[test]
    fn an_unclosed_element_before_the_entries_is_closed_at_the_first_entry() {
        assert_eq!(
            fixed("<rss><channel><itunes:category text='A'><item><title>t</title></item></channel></rss>"),
            "<rss><channel><itunes:category text=\"A\"></itunes:category><item><title>t</title></item></channel></rss>"
        );
    }

    #[test]
    fn doctype_is_dropped_and_caps_names_lowered() {
        assert_eq!(
            fixed("<!DOCTYPE x [<!ENTITY a \"b\">]><CHANNEL><TITLE>t &a;</TITLE></CHANNEL>"),
            "<channel><title>t &amp;a;</title></channel>"
        );
    }

    #[test]
    fn unknown_text_types_are_mapped() {
        assert_eq!(
            fixed(
                "<feed><title type=\"\">a</title><summary type='application/xhtml+xml'>b</summary><content type=\"application/octet-stream\">c</content></feed>"
            ),
            "<feed><title>a</title><summary type=\"xhtml\">b</summary><content type=\"application/octet-stream\">c</content></feed>"
        );
    }
}

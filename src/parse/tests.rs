//! Parser tests over the fixtures in `tests/fixtures/feeds/`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/feeds")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn now() -> Timestamp {
    "2026-11-23T10:00:00Z".parse().unwrap()
}

fn parse_as(name: &str, feed_url: &str, content_type: Option<&str>) -> Result<ParsedFeed, ParseError> {
    parse_feed(
        &fixture(name),
        content_type,
        &Url::parse(feed_url).unwrap(),
        "Test",
        now(),
    )
}

fn parse(name: &str) -> ParsedFeed {
    parse_as(name, "https://massispost.com/feed/", None).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

#[test]
fn wordpress_excerpt_only() {
    let feed = parse("wordpress_excerpt_only.xml");
    assert_eq!(feed.title.as_deref(), Some("Massis Post"));
    assert_eq!(feed.items.len(), 3);
    let first = &feed.items[0];
    assert_eq!(first.feed, "Test");
    assert_eq!(first.title, "CSTO’s Delayed Moves");
    assert_eq!(first.guid.as_deref(), Some("https://massispost.com/?p=123001"));
    // The article link, not the #respond comments link or the comment feed.
    assert_eq!(
        first.url.as_ref().unwrap().as_str(),
        "https://massispost.com/2023/11/cstos-delayed-moves/"
    );
    assert!(
        first.summary.starts_with("Established in 1992"),
        "{}",
        first.summary
    );
    assert!(
        first.summary.ends_with("[…]"),
        "the WordPress footer is dropped: {}",
        first.summary
    );
    assert!(!first.summary.contains("appeared first on"));
    assert!(first.content.is_empty());
    assert_eq!(first.published, ts("2023-11-23T09:12:00Z"));
    assert_eq!(first.categories, vec!["Commentary", "Armenia"]);
    assert!(feed.items[1].summary.starts_with("YEREVAN — Armenia will not"));
}

#[test]
fn wordpress_content_encoded_is_plain_text_without_scripts() {
    let feed = parse_as(
        "wordpress_content_encoded.xml",
        "https://evnreport.com/feed/",
        None,
    )
    .unwrap();
    assert_eq!(feed.ttl, Some(Duration::from_secs(720 * 60)));
    let item = &feed.items[0];
    assert!(
        item.content
            .starts_with("Illustration by Armine Shahbazyan.\nIn the midst of the 2020 Artsakh War")
    );
    assert!(
        item.content
            .contains("Collective Security Treaty Organization is part of a larger project")
    );
    assert!(!item.content.contains('<'), "tags stripped");
    assert!(!item.content.contains("tracking"), "script text dropped");
    assert!(item.content.chars().count() > 5000);
    assert_eq!(item.categories, vec!["Politics", "CSTO"], "duplicates dropped");
}

#[test]
fn atom_prefers_the_alternate_link_and_decodes_html_titles() {
    let feed = parse_as("atom.xml", "https://jamestown.org/feed/atom/", None).unwrap();
    assert_eq!(feed.items.len(), 2);
    let first = &feed.items[0];
    assert_eq!(
        first.title,
        "How Credible Is the CSTO Secretary General’s Warning Against Azerbaijan?"
    );
    assert_eq!(
        first.url.as_ref().unwrap().as_str(),
        "https://jamestown.org/program/how-credible/"
    );
    assert_eq!(first.guid.as_deref(), Some("https://jamestown.org/?p=98765"));
    assert_eq!(first.published, ts("2018-09-27T14:30:00Z"));
    assert_eq!(first.updated, Some(ts("2018-09-28T08:00:00Z")));
    assert!(
        first
            .summary
            .starts_with("Publication: Eurasia Daily Monitor Volume: 15 Issue: 137")
    );
    assert!(first.content.contains("(Interfax, September 22)"));
    assert_eq!(first.categories, vec!["Eurasia Daily Monitor", "Armenia"]);

    let second = &feed.items[1];
    assert_eq!(
        second.published,
        ts("2018-09-26T08:00:00Z"),
        "updated stands in for published"
    );
    assert_eq!(second.summary, "Short summary.");
    assert_eq!(
        second.url.as_ref().unwrap().as_str(),
        "https://jamestown.org/program/updated-only/"
    );
}

#[test]
fn json_feed() {
    let feed = parse_as(
        "json_feed.json",
        "https://www.commonspace.eu/feed.json",
        Some("application/feed+json"),
    )
    .unwrap();
    assert_eq!(feed.title.as_deref(), Some("Commonspace"));
    let first = &feed.items[0];
    assert_eq!(first.guid.as_deref(), Some("cs-2016-10-23"));
    assert_eq!(
        first.title,
        "Opinion: \"Member states are pulling the CSTO in different directions\""
    );
    assert!(
        first
            .content
            .contains("A summit of the Collective Security Treaty Organisation")
    );
    assert_eq!(
        first.summary,
        "Sos Avetisyan assesses the results of the CSTO summit in Yerevan."
    );
    assert_eq!(first.categories, vec!["CSTO", "Opinion"]);
    assert_eq!(first.published, ts("2016-10-23T09:00:00Z"));
    let second = &feed.items[1];
    assert_eq!(
        second.url.as_ref().unwrap().as_str(),
        "https://www.commonspace.eu/news/relative-item"
    );
    assert_eq!(second.published, ts("2016-10-24T09:00:00Z"));
}

#[test]
fn rss_090_091_and_rdf() {
    let old = parse("rss_090.xml");
    assert_eq!(old.title.as_deref(), Some("Old Netscape-era feed"));
    let titles: Vec<_> = old.items.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(titles, vec!["CSTO summit opens in Yerevan", "Second item"]);
    assert_eq!(
        old.items[0].url.as_ref().unwrap().as_str(),
        "http://old.example.org/csto-summit"
    );

    let v091 = parse("rss_091.xml");
    assert_eq!(v091.items[0].title, "Café diplomacy in Minsk");

    let rdf = parse("rdf.xml");
    let item = &rdf.items[0];
    assert_eq!(item.title, "Karabakh talks resume");
    assert_eq!(item.summary, "Negotiators met again.");
    assert_eq!(item.published, ts("2026-11-20T08:00:00Z"));
}

#[test]
fn rss_without_known_version_is_patched() {
    assert_eq!(
        parse("rss_without_version.xml").items[0].title,
        "Versionless item"
    );
    assert_eq!(parse("rss_version_2_0_1.xml").items[0].title, "Item in 2.0.1");
}

#[test]
fn charsets_decode_to_the_same_text() {
    let declared = parse("cp1251_declared.xml");
    let lying = parse("utf8_labelled_cp1251.xml");
    assert_eq!(declared.title.as_deref(), Some("Новости Армении"));
    assert_eq!(
        declared.items[0].title,
        "ОДКБ: заседание Совета коллективной безопасности"
    );
    assert_eq!(
        declared.items[0].summary,
        "Пашинян не поедет на саммит ОДКБ в Минске."
    );
    assert_eq!(declared.items[0].categories, vec!["ОДКБ"]);
    assert_eq!(
        declared.items, lying.items,
        "UTF-8 bytes labelled windows-1251 are read as UTF-8"
    );
    // The header naming the charset too changes nothing.
    let with_header = parse_as(
        "cp1251_declared.xml",
        "https://massispost.com/feed/",
        Some("text/xml; charset=windows-1251"),
    )
    .unwrap();
    assert_eq!(with_header.items, declared.items);

    assert_eq!(parse("utf8_bom.xml").items[0].title, "Ереван — CSTO «summit»");
    assert_eq!(parse("utf16.xml").items[0].title, "Нагорный Карабах");
}

#[test]
fn relative_links_resolve_against_the_feed_url() {
    let feed = parse_as("relative_links.xml", "https://massispost.com/feed/", None).unwrap();
    let urls: Vec<_> = feed
        .items
        .iter()
        .map(|i| i.url.as_ref().map(Url::as_str))
        .collect();
    assert_eq!(
        urls,
        vec![
            Some("https://massispost.com/2026/11/root-relative/"),
            Some("https://massispost.com/feed/item-2.html"),
            Some("https://other.example.com/x"),
            Some("https://cdn.example.net/y"),
            None,
        ]
    );
}

#[test]
fn entities_in_titles_are_decoded_and_tags_stripped() {
    let feed = parse("entities_in_titles.xml");
    assert_eq!(feed.title.as_deref(), Some("Entities & titles"));
    let titles: Vec<_> = feed.items.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(
        titles,
        vec![
            "Armenia & Azerbaijan: “Peace” talks resume",
            "CSTO & Armenia: Pashinyan’s freeze",
            "Double-escaped ’ apostrophe & ampersand",
            "Spread over lines",
        ]
    );
    assert_eq!(feed.items[3].summary, "First paragraph.\nSecond & last.");
}

#[test]
fn invented_ids_never_become_guids() {
    let first = parse("no_guid_no_link.xml");
    let second = parse("no_guid_no_link.xml");
    assert_eq!(first.items, second.items, "parsing is deterministic");
    let items = &first.items;
    assert_eq!(items.len(), 4, "even the empty <item/> is an entry");
    assert_eq!(items[0].guid, None);
    assert_eq!(items[0].title, "A title and nothing else");
    assert_eq!(items[0].url, None);
    assert_eq!(items[0].published, now(), "no date: first-seen time");
    assert_eq!(items[1].guid, None);
    assert_eq!(
        items[1].title,
        "No title, no link, no guid: just text about the CSTO."
    );
    assert_eq!(
        items[2].guid.as_deref(),
        Some("https://sparse.example.org/permalink-guid")
    );
    assert_eq!(
        items[2].url.as_ref().unwrap().as_str(),
        "https://sparse.example.org/permalink-guid",
        "a permalink guid serves as the link"
    );
}

#[test]
fn bad_input_gets_a_kind() {
    let kind = |name: &str, ct: Option<&str>| {
        parse_as(name, "https://massispost.com/feed/", ct)
            .map(|f| format!("parsed {} items", f.items.len()))
            .unwrap_or_else(|e| e.kind().to_string())
    };
    assert_eq!(
        kind("html_not_feed.html", Some("text/html; charset=utf-8")),
        "not-a-feed"
    );
    // Damaged but readable: every complete entry is recovered, with a warning.
    let recovered = |name: &str| {
        let feed = parse_as(name, "https://massispost.com/feed/", None).unwrap();
        (feed.items.len(), feed.warnings.join("; "))
    };
    let (items, warning) = recovered("truncated.xml");
    assert!(items >= 1, "{items}");
    assert!(
        warning.starts_with(&format!("recovered {items} entries from a truncated document")),
        "{warning}"
    );
    let (items, warning) = recovered("malformed.xml");
    assert_eq!(items, 1);
    assert!(
        warning.starts_with("recovered 1 entries from an ill-formed document"),
        "{warning}"
    );
    let empty = parse_feed(
        b"  \n",
        None,
        &Url::parse("https://a.example/").unwrap(),
        "A",
        now(),
    );
    assert_eq!(empty.unwrap_err().kind(), "empty");
    let svg = parse_feed(
        b"<svg></svg>",
        None,
        &Url::parse("https://a.example/").unwrap(),
        "A",
        now(),
    );
    let svg = svg.unwrap_err();
    assert_eq!(svg.kind(), "not-a-feed");
    assert!(svg.to_string().contains("<svg>"), "{svg}");
    let garbage = parse_feed(
        b"\x00\x01binary",
        None,
        &Url::parse("https://a.example/").unwrap(),
        "A",
        now(),
    );
    assert_eq!(garbage.unwrap_err().kind(), "not-a-feed");
}

#[test]
fn entity_expansion_is_not_expanded() {
    let started = Instant::now();
    let feed = parse("entity_expansion.xml");
    assert!(started.elapsed() < Duration::from_secs(2));
    let item = &feed.items[0];
    // A billion laughs would be 3 GB; custom entities stay unexpanded references.
    assert!(item.title.len() < 100, "{}", item.title);
    assert!(item.summary.len() < 100, "{}", item.summary);
    assert!(item.title.starts_with("Laughs"));
}

#[test]
fn root_element_skips_prolog_comments_and_doctype() {
    let xml = b"<?xml version='1.0'?>\n<!-- <rss> -->\n<!DOCTYPE x [ <!ENTITY a 'b'> ]>\n<rdf:RDF a='1'>";
    let root = root_element(xml).unwrap();
    assert_eq!(root.name, "RDF");
    assert_eq!(root.qualified_name, "rdf:RDF");
}

#[test]
fn rss_version_patch_keeps_known_versions() {
    assert!(patch_rss_version(b"<rss version=\"2.0\">").is_none());
    assert!(patch_rss_version(b"<rss version='0.91'>").is_none());
    assert_eq!(
        patch_rss_version(b"<rss xmlns:dc=\"x\" version='2.0.1'>").unwrap(),
        b"<rss xmlns:dc=\"x\" version=\"2.0\">"
    );
    assert_eq!(patch_rss_version(b"<rss>").unwrap(), b"<rss version=\"2.0\">");
    assert!(patch_rss_version(b"<feed>").is_none());
}

#[test]
fn trailing_bytes_after_the_root_are_not_truncation() {
    let mut body = fixture("rss_without_version.xml");
    body.extend_from_slice(b"\n<!-- cached 0.2s -->\n\0\0 stray");
    let feed = parse_feed(
        &body,
        None,
        &Url::parse("https://a.example/").unwrap(),
        "A",
        now(),
    )
    .unwrap();
    assert_eq!(feed.items.len(), 1);
}

fn feed_fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/feeds");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.into_iter().map(|n| (n.clone(), fixture(&n))).collect()
}

#[test]
fn deferred_texts_are_made_exactly_as_parse_feed_makes_them() {
    let url = Url::parse("https://massispost.com/feed/").unwrap();
    let mut deferred_seen = 0;
    for (name, bytes) in feed_fixtures() {
        let Ok(whole) = parse_feed(&bytes, None, &url, "Test", now()) else {
            continue;
        };
        let mut all = parse_feed_deferred(&bytes, None, &url, "Test", now()).unwrap();
        deferred_seen += all
            .items
            .iter()
            .filter(|i| i.summary.is_empty() && i.content.is_empty())
            .count();
        all.finish_texts(|_| true);
        assert_eq!(all, whole, "{name}: every text made");

        // Only the even entries wanted: those come out the same, the odd
        // deferred ones stay without text.
        let mut some = parse_feed_deferred(&bytes, None, &url, "Test", now()).unwrap();
        let was_deferred: Vec<bool> = some
            .items
            .iter()
            .map(|i| i.guid.is_some() && i.summary.is_empty() && i.content.is_empty())
            .collect();
        some.finish_texts(|i| i % 2 == 0);
        for (i, (item, expected)) in some.items.iter().zip(&whole.items).enumerate() {
            if i % 2 == 0 || !was_deferred[i] {
                assert_eq!(item, expected, "{name}: entry {i}");
            } else {
                assert_eq!(
                    (item.summary.as_str(), item.content.as_str()),
                    ("", ""),
                    "{name}: entry {i}"
                );
                assert_eq!(item.title, expected.title, "{name}: entry {i}");
            }
        }
    }
    assert!(
        deferred_seen > 20,
        "the fixtures exercise deferral ({deferred_seen} entries)"
    );
}

#[test]
fn a_deferred_entry_whose_html_holds_no_text_gets_the_text_the_scan_finds() {
    let xml = br#"<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/">
  <title>Video</title>
  <entry><id>urn:1</id><title>Border talks on film</title>
    <link href="https://example.org/v/1"/>
    <updated>2026-11-20T08:00:00Z</updated>
    <summary type="html">&lt;img src="still.jpg"&gt;</summary>
    <media:group><media:description>Delegations meet at the border crossing</media:description></media:group>
  </entry>
</feed>"#;
    let url = Url::parse("https://example.org/feed").unwrap();
    let feed = parse_feed(xml, None, &url, "Test", now()).unwrap();
    assert_eq!(feed.items[0].summary, "Delegations meet at the border crossing");
}

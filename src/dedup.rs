//! Dedup keys: what makes two feed entries "the same item". An item is new
//! only if none of its keys was seen before:
//!
//! - `guid`: the feed's own GUID, scoped to the feed (GUIDs like `?p=123`
//!   are only unique within one site);
//! - `url`: the canonical URL — scheme-less (http ≡ https), lower-case host
//!   without `www.`, no default port, fragment, trailing slash or tracking
//!   parameters, the remaining query sorted;
//! - `title`: a normalised title, so one article syndicated by two feeds under
//!   different URLs is one item. Short generic titles ("News", "Daily
//!   digest") give no title key: they would merge unrelated items.
//! - `text`: only for an entry with none of the above (no GUID, no link, a
//!   short title): its feed, title and summary, so re-polling it never
//!   stores it twice.
//!
//! A key must identify one story. So a `url` or `title` key that two
//! *distinct* entries of the same document share identifies neither of them
//! and is dropped from both ([`DedupKeys::of_document`]): a feed whose every
//! `<link>` is its homepage, links that differ only by `#fragment`, a weekly
//! column whose posts share one title. A site's front page is never a key
//! at all (it names no article, and a feed that links every entry there may
//! bring them one per poll). Entries are distinct when their GUIDs
//! differ (or, without GUIDs, their title or summary): one entry repeated
//! word for word is a true duplicate and is still stored once. Everything
//! across documents is caught as before — the same story under a changed
//! GUID (its URL), with tracking parameters, http/https, in two feeds (URL
//! or title), with an edited title (its GUID or URL).

use url::Url;

use crate::item::Item;

/// Query parameters that only track the reader, never select the content.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid", "gclid", "gclsrc", "dclid", "yclid", "msclkid", "twclid", "igshid", "mc_cid", "mc_eid", "ref",
    "ref_src", "ref_url", "_hsenc", "_hsmi", "mkt_tok", "spm", "cmpid", "ocid", "sr_share", "rss", "feed",
];

/// Prefixes of tracking parameter families (`utm_source`, `utm_medium` ...).
const TRACKING_PREFIXES: &[&str] = &["utm_", "at_", "pk_", "hsa_", "oly_", "vero_"];

/// A title must have at least this many words to serve as a dedup key.
const MIN_TITLE_KEY_WORDS: usize = 4;

/// How much of the summary goes into a `text` key.
const MAX_TEXT_KEY_CHARS: usize = 300;

/// The keys one item is known by.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DedupKeys {
    pub guid: Option<String>,
    pub url: Option<String>,
    pub title: Option<String>,
    pub text: Option<String>,
}

impl DedupKeys {
    /// The keys of an item from a feed.
    pub fn of(item: &Item) -> DedupKeys {
        let mut keys = DedupKeys {
            guid: item
                .guid
                .as_deref()
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(|g| format!("{}\t{g}", item.feed)),
            url: item.url.as_ref().filter(|u| !is_site_root(u)).map(canonical_url),
            title: title_key(&item.title),
            text: None,
        };
        if keys.guid.is_none() && keys.url.is_none() && keys.title.is_none() {
            keys.text = Some(text_key(item));
        }
        keys
    }

    /// The keys of every entry of one feed document, in order: like
    /// [`DedupKeys::of`], minus the `url` and `title` keys that distinct
    /// entries of this document share (see the module doc).
    pub fn of_document(items: &[Item]) -> Vec<DedupKeys> {
        use std::collections::HashMap;
        let mut keys: Vec<DedupKeys> = items.iter().map(DedupKeys::of).collect();
        let identity = |item: &Item| -> String {
            match item.guid.as_deref().map(str::trim).filter(|g| !g.is_empty()) {
                Some(guid) => format!("g\t{guid}"),
                None => format!("t\t{}\t{}", item.title.trim(), item.summary),
            }
        };
        let identities: Vec<String> = items.iter().map(identity).collect();
        // key -> the first identity seen with it, and whether another one shares it
        let mut url_owner: HashMap<&str, (&str, bool)> = HashMap::new();
        let mut title_owner: HashMap<&str, (&str, bool)> = HashMap::new();
        for (k, id) in keys.iter().zip(&identities) {
            for (key, owners) in [(&k.url, &mut url_owner), (&k.title, &mut title_owner)] {
                if let Some(key) = key.as_deref() {
                    let entry = owners.entry(key).or_insert((id.as_str(), false));
                    if entry.0 != id {
                        entry.1 = true;
                    }
                }
            }
        }
        let shared = |owners: &HashMap<&str, (&str, bool)>, key: &Option<String>| {
            key.as_deref()
                .is_some_and(|k| owners.get(k).is_some_and(|(_, shared)| *shared))
        };
        let drop: Vec<(bool, bool)> = keys
            .iter()
            .map(|k| (shared(&url_owner, &k.url), shared(&title_owner, &k.title)))
            .collect();
        for ((k, item), (drop_url, drop_title)) in keys.iter_mut().zip(items).zip(drop) {
            if drop_url {
                k.url = None;
            }
            if drop_title {
                k.title = None;
            }
            if k.guid.is_none() && k.url.is_none() && k.title.is_none() && k.text.is_none() {
                *k = DedupKeys {
                    text: Some(text_key(item)),
                    ..DedupKeys::default()
                };
            }
        }
        keys
    }

    /// `(kind, key)` pairs, as stored in `seen_keys`.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("guid", &self.guid),
            ("url", &self.url),
            ("title", &self.title),
            ("text", &self.text),
        ]
        .into_iter()
        .filter_map(|(kind, key)| key.as_deref().map(|k| (kind, k)))
    }
}

/// A site's front page (`https://example.org/`, no query) names no article:
/// feeds that link every entry there would otherwise merge entries that
/// arrive one per poll, where the in-document rule cannot see the sharing.
fn is_site_root(url: &Url) -> bool {
    url.path().trim_matches('/').is_empty() && url.query().is_none()
}

/// The key of an entry known by nothing else: its feed, title and summary
/// (and link, which may be shared by distinct entries but still tells them apart).
fn text_key(item: &Item) -> String {
    let summary: String = item.summary.chars().take(MAX_TEXT_KEY_CHARS).collect();
    let link = item.url.as_ref().map(Url::as_str).unwrap_or("");
    format!("{}\t{}\t{summary}\t{link}", item.feed, item.title.trim())
}

fn is_tracking_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    TRACKING_PARAMS.contains(&name.as_str()) || TRACKING_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The canonical form of an article URL, used only as a dedup key (it is not
/// a fetchable URL: the scheme is dropped so http and https compare equal).
pub fn canonical_url(url: &Url) -> String {
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    let mut out = String::with_capacity(url.as_str().len());
    out.push_str("//");
    out.push_str(host);
    // A port is kept only when it is not the default of either scheme we fold together.
    if let Some(port) = url.port().filter(|p| *p != 80 && *p != 443) {
        out.push(':');
        out.push_str(&port.to_string());
    }
    let path = url.path().trim_end_matches('/');
    out.push_str(if path.is_empty() { "/" } else { path });
    let mut params: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !is_tracking_param(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if !params.is_empty() {
        params.sort();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        out.push('?');
        out.push_str(&query);
    }
    out
}

/// A title reduced to lower-case words of letters and digits, or `None` when
/// it is too short to identify an article.
pub fn title_key(title: &str) -> Option<String> {
    let mut key = String::with_capacity(title.len());
    let mut words = 0;
    for word in title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if words > 0 {
            key.push(' ');
        }
        key.extend(word.chars().flat_map(char::to_lowercase));
        words += 1;
    }
    (words >= MIN_TITLE_KEY_WORDS).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn canon(s: &str) -> String {
        canonical_url(&Url::parse(s).unwrap())
    }

    #[test]
    fn folds_the_variants_the_spec_names() {
        let want = "//massispost.com/2024/02/csto-summit?p=2";
        for u in [
            "https://massispost.com/2024/02/csto-summit/?p=2",
            "http://massispost.com/2024/02/csto-summit?p=2",
            "HTTPS://WWW.MassisPost.com:443/2024/02/csto-summit/?utm_source=tg&p=2&fbclid=x#respond",
            "https://massispost.com/2024/02/csto-summit?gclid=1&p=2&utm_medium=rss&utm_campaign=feed",
        ] {
            assert_eq!(canon(u), want, "{u}");
        }
    }

    #[test]
    fn keeps_what_selects_content() {
        assert_ne!(canon("https://a.com/x?id=1"), canon("https://a.com/x?id=2"));
        assert_ne!(canon("https://a.com/x"), canon("https://b.com/x"));
        assert_ne!(canon("https://a.com:8080/x"), canon("https://a.com/x"));
        assert_eq!(canon("https://a.com/x?b=2&a=1"), canon("https://a.com/x?a=1&b=2"));
    }

    #[test]
    fn an_item_without_guid_link_or_long_title_still_has_a_stable_key() {
        let item = Item {
            feed: "F".into(),
            guid: None,
            url: None,
            title: "Short".into(),
            summary: "Some text".into(),
            content: String::new(),
            published: jiff::Timestamp::UNIX_EPOCH,
            updated: None,
            dated: true,
            categories: vec![],
        };
        let keys = DedupKeys::of(&item);
        assert_eq!(
            keys.pairs().collect::<Vec<_>>(),
            vec![("text", "F\tShort\tSome text\t")]
        );
        assert_eq!(keys, DedupKeys::of(&item));
    }

    #[test]
    fn title_keys_ignore_case_punctuation_and_short_titles() {
        assert_eq!(
            title_key("CSTO’s Delayed Moves: Armenia — Azerbaijan!"),
            title_key("csto s delayed moves armenia azerbaijan")
        );
        assert_eq!(title_key("Daily news digest"), None);
        assert_eq!(
            title_key("ОДКБ провела учения в Беларуси").as_deref(),
            Some("одкб провела учения в беларуси")
        );
    }

    fn entry(guid: Option<&str>, url: &str, title: &str) -> Item {
        Item {
            feed: "F".into(),
            guid: guid.map(Into::into),
            url: Some(Url::parse(url).unwrap()),
            title: title.into(),
            summary: String::new(),
            content: String::new(),
            published: jiff::Timestamp::UNIX_EPOCH,
            dated: true,
            updated: None,
            categories: vec![],
        }
    }

    #[test]
    fn keys_shared_by_distinct_entries_of_one_document_identify_neither() {
        let items = [
            entry(
                Some("1"),
                "https://a.com/news",
                "Armenia and Azerbaijan sign a text",
            ),
            entry(Some("2"), "https://a.com/news#x", "Links for 2008-09-14"),
            entry(Some("3"), "https://a.com/3", "Links for 2008-09-14"),
            entry(Some("4"), "https://a.com/4", "CSTO summit opens in Minsk"),
        ];
        let keys = DedupKeys::of_document(&items);
        assert_eq!(keys[0].url, None, "one link for two stories");
        assert_eq!(keys[1].url, None, "differs only by its fragment");
        assert_eq!((keys[1].title.as_ref(), keys[2].title.as_ref()), (None, None));
        assert_eq!(keys[2].url.as_deref(), Some("//a.com/3"));
        assert_eq!(keys[3], DedupKeys::of(&items[3]), "a lone entry keeps every key");
        assert!(keys.iter().all(|k| k.guid.is_some()));
    }

    #[test]
    fn a_front_page_link_is_never_a_key() {
        let home = entry(Some("7"), "https://www.a.com/", "A long enough headline here");
        assert_eq!(DedupKeys::of(&home).url, None);
        let with_query = entry(Some("8"), "https://a.com/?p=12", "A long enough headline here");
        assert_eq!(DedupKeys::of(&with_query).url.as_deref(), Some("//a.com/?p=12"));
    }

    #[test]
    fn an_entry_repeated_word_for_word_is_still_one_item() {
        let items = [
            entry(None, "https://a.com/x", "Short"),
            entry(None, "https://a.com/x", "Short"),
            entry(None, "https://a.com/", "One headline of the day"),
            entry(None, "https://a.com/", "Another headline of the day"),
        ];
        let keys = DedupKeys::of_document(&items);
        assert_eq!(keys[0], keys[1]);
        assert_eq!(keys[0].url.as_deref(), Some("//a.com/x"));
        assert_ne!(keys[2], keys[3], "distinct titles under one shared link");
        assert_eq!(keys[2].url, None);
        assert!(keys[2].title.is_some());
    }

    fn host() -> impl Strategy<Value = String> {
        "[a-z]{1,10}(\\.[a-z]{2,5}){1,2}"
    }
    fn segs() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec("[a-zA-Z0-9_-]{1,12}", 0..4)
    }
    fn params() -> impl Strategy<Value = Vec<(String, String)>> {
        prop::collection::vec(("[a-z]{1,6}", "[a-zA-Z0-9]{0,6}"), 0..4)
    }

    fn build(scheme: &str, host: &str, segs: &[String], slash: bool, params: &[(String, String)]) -> Url {
        let mut s = format!("{scheme}://{host}/{}", segs.join("/"));
        if slash && !segs.is_empty() {
            s.push('/');
        }
        let mut u = Url::parse(&s).unwrap();
        if !params.is_empty() {
            u.query_pairs_mut()
                .extend_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        u
    }

    proptest! {
        #[test]
        fn canonical_form_is_idempotent(h in host(), s in segs(), p in params()) {
            let once = canonical_url(&build("https", &h, &s, false, &p));
            let again = canonical_url(&Url::parse(&format!("https:{once}")).unwrap());
            prop_assert_eq!(once, again);
        }

        #[test]
        fn scheme_slash_fragment_and_tracking_do_not_matter(
            h in host(), s in segs(), p in params(), slash: bool,
            tracking in prop::sample::select(vec!["utm_source", "utm_campaign", "fbclid", "gclid", "yclid", "mc_cid", "mc_eid", "ref"]),
            value in "[a-z0-9]{1,8}", frag in "[a-z]{0,6}",
        ) {
            let p: Vec<_> = p.into_iter().filter(|(k, _)| !is_tracking_param(k)).collect();
            let plain = canonical_url(&build("https", &h, &s, false, &p));
            let mut noisy = build("http", &h.to_uppercase(), &s, slash, &p);
            noisy.query_pairs_mut().append_pair(tracking, &value);
            if !frag.is_empty() { noisy.set_fragment(Some(&frag)); }
            prop_assert_eq!(plain, canonical_url(&noisy));
        }

        #[test]
        fn query_order_does_not_matter(h in host(), s in segs(), mut p in params()) {
            let p: Vec<_> = { p.retain(|(k, _)| !is_tracking_param(k)); p };
            let mut rev = p.clone();
            rev.reverse();
            prop_assert_eq!(canonical_url(&build("https", &h, &s, false, &p)), canonical_url(&build("https", &h, &s, false, &rev)));
        }

        #[test]
        fn different_paths_stay_different(h in host(), a in "[a-z0-9]{1,10}", b in "[a-z0-9]{1,10}") {
            prop_assume!(a != b);
            prop_assert_ne!(
                canonical_url(&Url::parse(&format!("https://{h}/{a}")).unwrap()),
                canonical_url(&Url::parse(&format!("https://{h}/{b}")).unwrap())
            );
        }
    }
}

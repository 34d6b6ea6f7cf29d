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
#[derive(Debug, Clone, PartialEq, Eq)]
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
            url: item.url.as_ref().map(canonical_url),
            title: title_key(&item.title),
            text: None,
        };
        if keys.guid.is_none() && keys.url.is_none() && keys.title.is_none() {
            let summary: String = item.summary.chars().take(MAX_TEXT_KEY_CHARS).collect();
            keys.text = Some(format!("{}\t{}\t{summary}", item.feed, item.title.trim()));
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
            categories: vec![],
        };
        let keys = DedupKeys::of(&item);
        assert_eq!(
            keys.pairs().collect::<Vec<_>>(),
            vec![("text", "F\tShort\tSome text")]
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

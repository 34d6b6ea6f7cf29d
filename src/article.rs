//! Full text of an article page: the stage after parsing, for feeds that give
//! only an excerpt.
//!
//! The body is found with the feed's CSS selectors, tried in order, and,
//! when none matches, the page's largest block of paragraph text. Known
//! clutter (scripts, share buttons, JNews related-post boxes, tag lists) is
//! left out. The text feeds the tagger only; it is never posted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ego_tree::NodeId;
use futures_util::StreamExt;
use scraper::node::Node;
use scraper::{ElementRef, Html, Selector};

use crate::fetch::HttpClient;
use crate::fetch::charset::charset_param;
use crate::item::Item;
use crate::text::{element_text, is_invisible};

/// Clutter inside article bodies on the shipped sources and WordPress at large.
const NOISE: &str = "nav, aside, form, .jnews_inline_related_post_wrapper, .jeg_post_tags, \
     .jeg_share_button, .sharedaddy, .jp-relatedposts, .wp-block-buttons, .post-tags, .related-posts, \
     .yarpp-related, .addtoany_share_save_container, .screen-reader-text";

/// [`NOISE`], compiled once.
fn noise_selector() -> &'static Selector {
    static COMPILED: std::sync::LazyLock<Selector> = std::sync::LazyLock::new(|| {
        // A constant of ours, not input: a test compiles it (every extractor uses it).
        Selector::parse(NOISE).expect("the built-in noise selector is valid CSS")
    });
    &COMPILED
}

/// Page chrome: nothing inside these is a candidate for the largest-block fallback.
const CHROME: &[&str] = &["head", "nav", "header", "footer", "aside", "form"];

/// The selector that names the fallback in [`Extracted::matched`].
pub const LARGEST_BLOCK: &str = "largest-block";

/// An article body found on a page.
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    pub text: String,
    /// The selector that matched, or [`LARGEST_BLOCK`].
    pub matched: String,
}

/// Finds article bodies with one feed's selectors. Compiled once; `Send + Sync`,
/// and cheap to clone (the compiled selectors are shared).
#[derive(Debug, Clone)]
pub struct ArticleExtractor {
    inner: Arc<CompiledSelectors>,
}

#[derive(Debug)]
struct CompiledSelectors {
    selectors: Vec<(String, Selector)>,
    noise: Selector,
}

impl ArticleExtractor {
    /// Compiles the selectors, in the order they are to be tried.
    pub fn new(selectors: &[String]) -> Result<Self, String> {
        let selectors = selectors
            .iter()
            .map(|s| {
                Selector::parse(s)
                    .map(|compiled| (s.clone(), compiled))
                    .map_err(|e| format!("invalid CSS selector {s:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_compiled(selectors))
    }

    /// From selectors compiled already (the config compiles them once), as
    /// `(as written, compiled)`, in the order they are to be tried.
    pub fn from_compiled(selectors: impl IntoIterator<Item = (String, Selector)>) -> Self {
        ArticleExtractor {
            inner: Arc::new(CompiledSelectors {
                selectors: selectors.into_iter().collect(),
                noise: noise_selector().clone(),
            }),
        }
    }

    /// The article text of a page: the first selector whose first match has
    /// text, else the largest block; `None` when the page has no text at all.
    pub fn extract(&self, html: &str) -> Option<Extracted> {
        let page = Html::parse_document(html);
        let noise: HashSet<NodeId> = page.select(&self.inner.noise).map(|e| e.id()).collect();
        for (name, selector) in &self.inner.selectors {
            let found = page
                .select(selector)
                .map(|element| element_text(element, &noise))
                .find(|text| !text.is_empty());
            if let Some(text) = found {
                return Some(Extracted {
                    text,
                    matched: name.clone(),
                });
            }
        }
        let block = largest_block(&page, &noise)?;
        let text = element_text(block, &noise);
        (!text.is_empty()).then(|| Extracted {
            text,
            matched: LARGEST_BLOCK.to_string(),
        })
    }
}

/// The element holding the most paragraph text directly: its own text nodes
/// plus its `<p>` children. Comments, menus and link lists lose to the article.
fn largest_block<'a>(page: &'a Html, noise: &HashSet<NodeId>) -> Option<ElementRef<'a>> {
    let excluded = |node: ego_tree::NodeRef<'_, Node>| {
        node.ancestors().chain(std::iter::once(node)).any(|n| {
            noise.contains(&n.id())
                || n.value()
                    .as_element()
                    .is_some_and(|e| is_invisible(e.name()) || CHROME.contains(&e.name()))
        })
    };
    let mut scores: HashMap<NodeId, usize> = HashMap::new();
    for node in page.tree.nodes() {
        let chars = match node.value() {
            Node::Text(t) => t.trim().chars().count(),
            Node::Element(e) if e.name() == "p" => ElementRef::wrap(node)
                .map(|p| p.text().map(|t| t.trim().chars().count()).sum())
                .unwrap_or(0),
            _ => continue,
        };
        if chars == 0 {
            continue;
        }
        let Some(parent) = node.parent() else { continue };
        let is_candidate = parent.value().as_element().is_some_and(|e| e.name() != "html");
        if is_candidate && !excluded(parent) {
            *scores.entry(parent.id()).or_default() += chars;
        }
    }
    let (best, _) = scores
        .into_iter()
        .max_by_key(|(id, score)| (*score, std::cmp::Reverse(*id)))?;
    page.tree.get(best).and_then(ElementRef::wrap)
}

/// An item's own text is an excerpt when shorter than `full_text_below`
/// characters; only items with a link can have their page fetched.
pub fn needs_full_text(item: &Item, full_text_below: usize) -> bool {
    let own = item.content.chars().count().max(item.summary.chars().count());
    item.url.is_some() && own < full_text_below
}

/// Fills `content` of each item that needs it by fetching its page: bounded
/// concurrency, at most one request per host at a time (a host's items go
/// one after another), the client's limits. A failure is logged and leaves
/// the item as it was; it never fails the poll.
pub async fn fill_full_text(
    client: &HttpClient,
    extractor: &ArticleExtractor,
    items: &mut [Item],
    full_text_below: usize,
    concurrency: usize,
) {
    let mut by_host: HashMap<String, Vec<(usize, url::Url)>> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        if !needs_full_text(item, full_text_below) {
            continue;
        }
        if let Some(url) = &item.url {
            let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
            by_host.entry(host).or_default().push((index, url.clone()));
        }
    }
    let fetch_host = |pages: Vec<(usize, url::Url)>| async move {
        let mut texts = Vec::new();
        for (index, url) in pages {
            if let Some(text) = fetch_article(client, extractor, &url).await {
                texts.push((index, text));
            }
        }
        texts
    };
    let found: Vec<Vec<(usize, String)>> = futures_util::stream::iter(by_host.into_values())
        .map(fetch_host)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for (index, text) in found.into_iter().flatten() {
        if let Some(item) = items.get_mut(index)
            && text.chars().count() > item.content.chars().count()
        {
            item.content = text;
        }
    }
}

/// One page's article text, or `None` (logged) when it cannot be had.
async fn fetch_article(client: &HttpClient, extractor: &ArticleExtractor, url: &url::Url) -> Option<String> {
    let fetched = match client.fetch_page(url).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(url = %url, error = %e, kind = %e.kind(), "article page fetch failed");
            return None;
        }
    };
    // Parsing is CPU work (html5ever is slow on pathological nesting), so it
    // runs on the blocking pool, never stalling the other polls.
    let extractor = extractor.clone();
    let extracted = tokio::task::spawn_blocking(move || {
        let html = decode_html(&fetched.body, fetched.content_type.as_deref());
        extractor.extract(&html)
    })
    .await;
    let extracted = match extracted {
        Ok(extracted) => extracted,
        Err(e) => {
            tracing::warn!(url = %url, error = %e, "article extraction failed");
            return None;
        }
    };
    match extracted {
        Some(extracted) => {
            tracing::debug!(
                url = %url,
                matched = %extracted.matched,
                chars = extracted.text.chars().count(),
                "article text extracted"
            );
            Some(extracted.text)
        }
        None => {
            tracing::warn!(url = %url, "article page has no text");
            None
        }
    }
}

/// An HTML page's bytes as text: BOM, then valid UTF-8, then the HTTP
/// charset, then a `<meta charset>` near the top, else lossy UTF-8.
pub fn decode_html(body: &[u8], content_type: Option<&str>) -> String {
    if let Some((encoding, bom_len)) = encoding_rs::Encoding::for_bom(body) {
        return encoding
            .decode_without_bom_handling(&body[bom_len..])
            .0
            .into_owned();
    }
    if let Ok(text) = std::str::from_utf8(body) {
        return text.to_string();
    }
    let label = content_type
        .and_then(charset_param)
        .map(str::to_string)
        .or_else(|| meta_charset(body));
    match label.and_then(|l| encoding_rs::Encoding::for_label_no_replacement(l.trim().as_bytes())) {
        Some(encoding) => encoding.decode_without_bom_handling(body).0.into_owned(),
        None => String::from_utf8_lossy(body).into_owned(),
    }
}

/// `<meta charset="x">` or `<meta http-equiv=... content="text/html; charset=x">` in the first 2 KiB.
fn meta_charset(body: &[u8]) -> Option<String> {
    let head: String = body
        .iter()
        .take(2048)
        .map(|b| b.to_ascii_lowercase() as char)
        .collect();
    let at = head.find("charset=")? + "charset=".len();
    let value: String = head[at..]
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        .collect();
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests;

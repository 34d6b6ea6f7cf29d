//! The one item shape every pipeline stage passes along: what a feed entry
//! becomes after parsing and normalisation, before dedup and tagging.

use jiff::Timestamp;
use url::Url;

/// A feed entry, normalised: plain text fields, an absolute link, and a GUID
/// only when the feed itself supplied one (never an id feed-rs invented).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Name of the configured feed this item came from.
    pub feed: String,
    /// The feed's own GUID / Atom id / JSON Feed id, when it gave one.
    pub guid: Option<String>,
    /// Absolute link to the article (relative links resolved against the feed URL).
    pub url: Option<Url>,
    /// Title as plain text: entities decoded, tags stripped, whitespace collapsed.
    pub title: String,
    /// Summary / description as plain text.
    pub summary: String,
    /// Full content as plain text: the feed's `content:encoded` / Atom content,
    /// or the article page's extracted body. Used for tagging, never posted.
    pub content: String,
    /// When the item was published; the first-seen time when the feed gives
    /// none or one that cannot be read (then `dated` is false).
    pub published: Timestamp,
    /// Whether `published` comes from the feed. An undated entry is never
    /// treated as published now: on a feed's first poll it is backfill.
    pub dated: bool,
    /// When the feed says it was last updated, if it says.
    pub updated: Option<Timestamp>,
    /// Feed categories, as given.
    pub categories: Vec<String>,
}

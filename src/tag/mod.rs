//! The keyword tagger: decides which tags an item carries and whether it is
//! relevant (it carries a primary tag: `csto` or `armenia-azerbaijan`).
//!
//! - `rules`: the rules file format and its validation, with line numbers;
//! - `normalise`: the one-pass text normaliser with an offset map;
//! - `compile`: the rules compiled (one automaton over every term, see `trie`);
//! - `matching`: an item's term occurrences, `except` voiding, hits by vocabulary;
//! - `score`: the points each tag gets and whether it is given;
//! - `engine`: runs those stages for one item and builds the [`Tagging`];
//! - `trie`: the automaton, a trie walked from each word start;
//! - `explain`: the human-readable account behind `cstowatch tag --explain`;
//! - `cli`: `cstowatch tag`, JSON Lines in and out.

pub mod cli;
mod compile;
pub mod engine;
pub mod explain;
mod matching;
pub mod normalise;
pub mod rules;
mod score;
mod trie;

use serde::{Deserialize, Serialize};

pub use cli::{TagRunSummary, run_tag_command};
pub use compile::Rules;

/// The parts of an item the tagger reads. Fields may be empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct Document<'a> {
    pub title: &'a str,
    pub summary: &'a str,
    pub content: &'a str,
}

impl<'a> Document<'a> {
    /// The text of one field.
    pub fn field(&self, field: Field) -> &'a str {
        match field {
            Field::Title => self.title,
            Field::Summary => self.summary,
            Field::Content => self.content,
        }
    }
}

/// Which part of an item a term matched in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    Title = 0,
    Summary = 1,
    Content = 2,
}

impl Field {
    pub const ALL: [Field; 3] = [Field::Title, Field::Summary, Field::Content];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Title => "title",
            Field::Summary => "summary",
            Field::Content => "content",
        }
    }
}

/// What the tagger decided about one item. Its names borrow from the
/// [`Rules`] that made it, so tagging allocates no string.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tagging<'r> {
    /// Carries at least one primary tag.
    pub relevant: bool,
    /// The highest score among the primary tags (0 when none has evidence),
    /// rounded to two decimals; compare with the rules' thresholds.
    pub score: f64,
    /// Tags given: primary tags first, then secondary, each in rules-file order.
    pub tags: Vec<&'r str>,
    /// The term hits that counted towards the tags given.
    pub matches: Vec<TermMatch<'r>>,
}

/// One term hit that counted towards a tag.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TermMatch<'r> {
    pub tag: &'r str,
    /// The term as written in the rules file.
    pub term: &'r str,
    pub field: Field,
    /// Byte range of the hit in the original field text.
    #[serde(skip)]
    pub start: usize,
    #[serde(skip)]
    pub end: usize,
}

/// The randomised tests' generator (xorshift64, a fixed seed): `next(n)` is
/// in `0..n`, the same sequence on every run.
#[cfg(test)]
pub(crate) fn test_rng() -> impl FnMut(usize) -> usize {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    move |n| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    }
}

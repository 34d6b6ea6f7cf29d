//! Compiling a checked rules file into [`Rules`]: every term of every tag
//! and list goes into ONE automaton (a trie walked from each word start,
//! see `trie`), equal vocabularies are merged, and the word filter the
//! normaliser applies is built from the patterns' first words and stems.
//! Matching an item against the result is `matching`; scoring it, `score`.

use std::path::Path;

use super::normalise::WordFilter;
use super::rules::{self, EntitySpec, Scoring, Spec, TagSpec, TermSpec};
use super::trie::Trie;
use crate::problem::{Problem, Problems};

/// Rules compiled for tagging: immutable, `Send + Sync`, share it with `Arc`.
#[derive(Debug, Clone)]
pub struct Rules {
    pub(super) scoring: Scoring,
    pub(super) terms: Vec<TermSpec>,
    /// Term ids per vocabulary, for `except` phrases (see `TermSpec::except`).
    pub(super) vocabs: Vec<Vec<usize>>,
    /// For each term, the scored vocabularies it belongs to (see
    /// [`number_scored_vocabularies`]): where its hits are grouped.
    pub(super) term_vocabs: Table,
    /// How many vocabularies scoring reads.
    pub(super) scored_vocabs: usize,
    /// For each automaton pattern, the terms that normalise to it.
    pub(super) pattern_terms: Table,
    /// For each pattern: its length without the padding spaces, its words,
    /// and whether it is a stem.
    pub(super) pattern_shape: Vec<PatternShape>,
    /// Terms that are some tag's `except` phrase or an entity's name:
    /// their hits may void others.
    pub(super) is_except_term: Vec<bool>,
    /// The most words a pattern has, and the largest `except_before`: how
    /// far from an `except` phrase a hit it voids can start.
    pub(super) max_pattern_words: u32,
    pub(super) max_except_before: u32,
    /// The `[[entity]]` names, for explanations.
    pub(super) entities: Vec<EntitySpec>,
    pub(super) automaton: Trie,
    /// The words that can begin a pattern, checked as each word is normalised.
    pub(super) starters: WordFilter,
    pub(super) tags: Vec<TagSpec>,
    /// Tag indexes, primary tags first, then secondary, each in file order.
    pub(super) order: Vec<usize>,
}

/// Lists of `u32` for the indexes 0..n, stored one after another: row `i`
/// is `items[offsets[i]..offsets[i + 1]]`. One allocation instead of a
/// `Vec` per row, and one fewer pointer to follow per lookup.
#[derive(Debug, Clone, Default)]
pub(super) struct Table {
    pub(super) offsets: Vec<u32>,
    pub(super) items: Vec<u32>,
}

impl Table {
    pub(super) fn new(rows: &[Vec<u32>]) -> Table {
        let mut table = Table::default();
        table.offsets.push(0);
        for row in rows {
            table.items.extend_from_slice(row);
            table.offsets.push(table.items.len() as u32);
        }
        table
    }

    #[inline]
    pub(super) fn row(&self, i: usize) -> &[u32] {
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&from), Some(&to)) => self.items.get(from as usize..to as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    pub(super) fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub(super) fn memory_usage(&self) -> usize {
        (self.offsets.capacity() + self.items.capacity()) * 4
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct PatternShape {
    pub(super) len: usize,
    pub(super) words: u32,
    pub(super) stem: bool,
}

impl Rules {
    /// Reads and compiles a rules file. `Ok` carries warnings (such as a term
    /// no text can match); `Err` every error, with file, line and key.
    pub fn load(path: &Path) -> Result<(Rules, Vec<Problem>), Problems> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Problems(vec![Problem::error(
                path,
                None,
                None,
                format!("cannot read the rules file: {e}"),
            )])
        })?;
        Rules::from_toml(&text, path)
    }

    /// Compiles rules text that was read from `path` (used in messages).
    pub fn from_toml(text: &str, path: &Path) -> Result<(Rules, Vec<Problem>), Problems> {
        let (spec, warnings) = rules::check(text, path)?;
        let rules = Rules::compile(spec).map_err(|e| Problems(vec![e]))?;
        Ok((rules, warnings))
    }

    pub(super) fn compile(spec: Spec) -> Result<Rules, Problem> {
        let Spec {
            scoring,
            mut terms,
            vocabs,
            mut tags,
            entities,
        } = spec;
        let (vocabs, is_canonical_term) = merge_equal_terms(&terms, vocabs);
        merge_equal_vocabularies(&vocabs, &mut tags, &mut terms);
        let scored = number_scored_vocabularies(&vocabs, &mut tags);
        let mut term_vocabs = vec![Vec::new(); terms.len()];
        for (group, &v) in scored.iter().enumerate() {
            for &t in &vocabs[v] {
                term_vocabs[t].push(group as u32);
            }
        }
        let mut patterns: Vec<String> = Vec::new();
        let mut pattern_terms: Vec<Vec<u32>> = Vec::new();
        let mut pattern_shape = Vec::new();
        let mut index = std::collections::HashMap::new();
        for (t, term) in terms.iter().enumerate() {
            if !is_canonical_term[t] {
                continue;
            }
            let padded = if term.wildcard {
                format!(" {}", term.pattern)
            } else {
                format!(" {} ", term.pattern)
            };
            let p = *index.entry(padded.clone()).or_insert_with(|| {
                let inner_spaces = term.pattern.bytes().filter(|&b| b == b' ').count() as u32;
                pattern_shape.push(PatternShape {
                    len: term.pattern.len(),
                    words: inner_spaces + 1,
                    stem: term.wildcard,
                });
                patterns.push(padded);
                pattern_terms.push(Vec::new());
                patterns.len() - 1
            });
            pattern_terms[p].push(t as u32);
        }
        // Entity names are looked at with the except phrases.
        let mut is_except_term: Vec<bool> = terms.iter().map(|t| t.entity.is_some()).collect();
        for term in &terms {
            if let Some(e) = term.except {
                for &t in &vocabs[e.vocab] {
                    is_except_term[t] = true;
                }
            }
        }
        // Patterns are matched from word starts, without their leading space.
        let unpadded: Vec<&[u8]> = patterns.iter().map(|p| &p.as_bytes()[1..]).collect();
        let automaton = Trie::new(&unpadded);
        // A pattern's first word; a stem when it is the whole pattern.
        let (mut words, mut stems) = (Vec::new(), Vec::new());
        for p in &unpadded {
            match p.iter().position(|&b| b == b' ') {
                Some(end) => words.push(&p[..end]),
                None => stems.push(*p),
            }
        }
        let starters = WordFilter::new(&words, &stems);
        let mut order: Vec<usize> = (0..tags.len()).filter(|&i| tags[i].primary).collect();
        order.extend((0..tags.len()).filter(|&i| !tags[i].primary));
        let max_pattern_words = pattern_shape.iter().map(|s| s.words).max().unwrap_or(1);
        let max_except_before = terms
            .iter()
            .filter_map(|t| t.except.map(|e| e.before))
            .max()
            .unwrap_or(0);
        let term_vocabs = Table::new(&term_vocabs);
        let pattern_terms = Table::new(&pattern_terms);
        Ok(Rules {
            scoring,
            terms,
            vocabs,
            term_vocabs,
            scored_vocabs: scored.len(),
            pattern_terms,
            pattern_shape,
            is_except_term,
            max_pattern_words,
            max_except_before,
            entities,
            automaton,
            starters,
            tags,
            order,
        })
    }

    /// Names of the primary tags, in file order.
    pub fn primary_tags(&self) -> Vec<&str> {
        self.tags
            .iter()
            .filter(|t| t.primary)
            .map(|t| t.name.as_str())
            .collect()
    }

    /// Whether `name` is a tag these rules can give.
    pub fn is_tag(&self, name: &str) -> bool {
        self.tags.iter().any(|t| t.name == name)
    }

    /// Every literal term as written (`Azerbaijan*` keeps its star), for
    /// tools that compare the engine with other matchers.
    pub fn terms_written(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|t| t.written.as_str())
    }

    /// How many distinct patterns the automaton holds.
    pub fn pattern_count(&self) -> usize {
        self.pattern_terms.len()
    }

    /// Approximate heap memory held by the compiled rules, in bytes.
    pub fn memory_usage(&self) -> usize {
        let terms: usize = self
            .terms
            .iter()
            .map(|t| std::mem::size_of::<TermSpec>() + t.written.capacity() + t.pattern.capacity())
            .sum();
        let vocabs: usize = self.vocabs.iter().map(|x| 24 + x.capacity() * 8).sum();
        let tags: usize = self
            .tags
            .iter()
            .map(|t| std::mem::size_of::<TagSpec>() + t.rules.len() * 128)
            .sum();
        self.automaton.memory_usage()
            + self.starters.memory_usage()
            + terms
            + vocabs
            + self.term_vocabs.memory_usage()
            + self.pattern_terms.memory_usage()
            + self.pattern_shape.capacity() * std::mem::size_of::<PatternShape>()
            + self.is_except_term.capacity()
            + tags
    }

    pub(crate) fn tag_spec(&self, tag: usize) -> &TagSpec {
        &self.tags[tag]
    }

    pub(crate) fn term(&self, term: u32) -> &TermSpec {
        &self.terms[term as usize]
    }

    /// The name of entity `e`, as the rules file gives it.
    pub(crate) fn entity_name(&self, e: u32) -> &str {
        self.entities.get(e as usize).map_or("", |s| s.name.as_str())
    }

    pub(crate) fn order(&self) -> &[usize] {
        &self.order
    }
}

/// The same term written the same way in several lists ("peace" in the
/// conflict words and in the settlement words) is one term: its hits are
/// found, voided and grouped once, not once per list. Returns the
/// vocabularies with every term replaced by the first of its equals, and
/// which terms are those firsts (the others are left unused).
fn merge_equal_terms(terms: &[TermSpec], mut vocabs: Vec<Vec<usize>>) -> (Vec<Vec<usize>>, Vec<bool>) {
    let mut first_with = std::collections::HashMap::new();
    let same: Vec<usize> = terms
        .iter()
        .enumerate()
        .map(|(t, term)| {
            let key = (
                term.written.as_str(),
                term.pattern.as_str(),
                term.wildcard,
                term.except.map(|e| (e.vocab, e.before)),
                term.entity.map(|e| (e.entity, e.kind as u8)),
            );
            *first_with.entry(key).or_insert(t)
        })
        .collect();
    for ids in &mut vocabs {
        for t in ids.iter_mut() {
            *t = same[*t];
        }
        ids.sort_unstable();
        ids.dedup();
    }
    let firsts = same.iter().enumerate().map(|(t, &s)| s == t).collect();
    (vocabs, firsts)
}

/// Numbers the vocabularies that scoring reads — a tag's terms, `unless`
/// and `subject`, a rule's slots and `unless` — 0, 1, 2 ... in order of
/// first use, points the tags and rules at those numbers, and returns the
/// vocabulary behind each number. The others (a per-language list that
/// only other lists include, `except` phrases, entities) are never asked
/// for their hits, so the engine does not group hits for them: fewer
/// groups to clear and fill per item, fewer entries per hit.
fn number_scored_vocabularies(vocabs: &[Vec<usize>], tags: &mut [TagSpec]) -> Vec<usize> {
    let mut number = vec![usize::MAX; vocabs.len()];
    let mut scored = Vec::new();
    let mut renumber = |v: &mut usize| {
        if let Some(n) = number.get_mut(*v) {
            if *n == usize::MAX {
                *n = scored.len();
                scored.push(*v);
            }
            *v = *n;
        }
    };
    for tag in tags {
        renumber(&mut tag.terms);
        if let Some(u) = tag.unless.as_mut() {
            renumber(u);
        }
        renumber(&mut tag.subject);
        for rule in &mut tag.rules {
            for slot in &mut rule.slots {
                renumber(slot);
            }
            if let Some(u) = rule.unless.as_mut() {
                renumber(u);
            }
        }
    }
    scored
}

/// Every rule slot that names a list, and every inline list, is a
/// vocabulary of its own; equal ones (they are sorted term-id sets) become
/// one, so a term's hit is recorded once per distinct list and not once per
/// rule using it ("Armenia" was in seven copies of three lists). Points
/// tags, rules and `except` at the first of each set of equals.
fn merge_equal_vocabularies(vocabs: &[Vec<usize>], tags: &mut [TagSpec], terms: &mut [TermSpec]) {
    let mut first_with: std::collections::HashMap<&[usize], usize> = std::collections::HashMap::new();
    let same: Vec<usize> = vocabs
        .iter()
        .enumerate()
        .map(|(v, ids)| *first_with.entry(ids.as_slice()).or_insert(v))
        .collect();
    let canonical = |v: usize| same.get(v).copied().unwrap_or(v);
    for tag in tags {
        tag.terms = canonical(tag.terms);
        tag.unless = tag.unless.map(canonical);
        tag.subject = canonical(tag.subject);
        for rule in &mut tag.rules {
            for slot in &mut rule.slots {
                *slot = canonical(*slot);
            }
            rule.unless = rule.unless.map(canonical);
        }
    }
    for term in terms {
        if let Some(except) = term.except.as_mut() {
            except.vocab = canonical(except.vocab);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tag::engine::testing::*;

    #[test]
    fn rules_naming_one_list_share_its_hits() {
        let r = rules(CO_OCCURRENCE);
        let armenia = r.terms.iter().position(|t| t.written == "Armenia*");
        let armenia = armenia.expect("the term is compiled");
        assert_eq!(
            r.term_vocabs.row(armenia).len(),
            1,
            "two rules name @am: one vocabulary, not three copies"
        );
        assert_eq!(
            r.tag(&doc("", "Armenian and Azerbaijani forces clash", "")).score,
            1.5
        );
    }

    #[test]
    fn shipped_rules_compile_small_and_name_the_primary_tags() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rules.toml");
        let (r, warnings) = Rules::load(&path).unwrap_or_else(|p| panic!("{p}"));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(r.primary_tags(), vec!["csto", "armenia-azerbaijan"]);
        assert!(r.memory_usage() < 10 * 1024 * 1024, "{} bytes", r.memory_usage());
        fn shareable<T: Send + Sync>(_: &T) {}
        shareable(&r);
    }
}

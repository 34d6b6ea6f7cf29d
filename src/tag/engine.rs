//! The compiled rules and the scoring of one item.
//!
//! Every term of every tag and list is compiled into ONE automaton, a trie
//! walked from each word start (`trie`), which finds every term at every
//! word, overlapping ones included ("Armenian-Azerbaijani" counts for the
//! phrase and for both words) — what an overlapping Aho–Corasick search
//! finds, several times faster on normalised text. Each field is normalised
//! once and searched once; the trie is walked only from the words that the
//! normaliser's `WordFilter` admits (a pattern's first words, and words a
//! one-word stem begins), about a third of the words of running text. The
//! normaliser leaves words separated by single spaces with a space at each
//! end, and each pattern is the term with a space before it and (unless it
//! is a stem) after it: so every hit is a
//! whole-word hit — the word-boundary check is built into the pattern — and
//! a hit's word index is the index of the word start it was found from.
//! Hits covered by a tag's `except` phrases are then voided, and the tags
//! are scored from the hits that remain:
//!
//! - each *mention* of a tag's own terms adds `weight × field weight`
//!   (hits of one tag a couple of words apart, like "Collective Security
//!   Treaty Organization (CSTO)", are one mention);
//! - each rule whose slots all match adds its weight × the field weight —
//!   once per field when it has `within`, else once for the item, weighted
//!   by the weakest field it needed;
//! - a tag is given when its score reaches its threshold and none of its
//!   `unless` terms occurs.

use std::cell::RefCell;
use std::ops::Range;
use std::path::Path;

use super::normalise::{Normalised, WordFilter, normalise_into};
use super::rules::{self, Scoring, Spec, TagSpec, TermSpec};
use super::trie::Trie;
use super::{Document, Field, Tagging, TermMatch};
use crate::problem::{Problem, Problems};

/// Rules compiled for tagging: immutable, `Send + Sync`, share it with `Arc`.
#[derive(Debug, Clone)]
pub struct Rules {
    scoring: Scoring,
    terms: Vec<TermSpec>,
    vocabs: Vec<Vec<usize>>,
    /// For each term, the vocabularies it belongs to.
    term_vocabs: Table,
    /// For each automaton pattern, the terms that normalise to it.
    pattern_terms: Table,
    /// For each pattern: its length without the padding spaces, its words,
    /// and whether it is a stem.
    pattern_shape: Vec<PatternShape>,
    /// Terms that are some tag's `except` phrase.
    is_except_term: Vec<bool>,
    automaton: Trie,
    /// The words that can begin a pattern, checked as each word is normalised.
    starters: WordFilter,
    tags: Vec<TagSpec>,
    /// Tag indexes, primary tags first, then secondary, each in file order.
    order: Vec<usize>,
}

/// Lists of `u32` for the indexes 0..n, stored one after another: row `i`
/// is `items[offsets[i]..offsets[i + 1]]`. One allocation instead of a
/// `Vec` per row, and one fewer pointer to follow per lookup.
#[derive(Debug, Clone, Default)]
struct Table {
    offsets: Vec<u32>,
    items: Vec<u32>,
}

impl Table {
    fn new(rows: &[Vec<u32>]) -> Table {
        let mut table = Table::default();
        table.offsets.push(0);
        for row in rows {
            table.items.extend_from_slice(row);
            table.offsets.push(table.items.len() as u32);
        }
        table
    }

    #[inline]
    fn row(&self, i: usize) -> &[u32] {
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&from), Some(&to)) => self.items.get(from as usize..to as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    fn memory_usage(&self) -> usize {
        (self.offsets.capacity() + self.items.capacity()) * 4
    }
}

#[derive(Debug, Clone, Copy)]
struct PatternShape {
    len: usize,
    words: u32,
    stem: bool,
}

/// A term found in a field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Occurrence {
    pub term: u32,
    pub field: Field,
    /// Byte range in the normalised field text.
    pub start: u32,
    pub end: u32,
    /// Index of its first and last word in the field.
    pub word: u32,
    pub word_end: u32,
    /// Covered by an `except` phrase of the tag that owns the term.
    pub void: bool,
}

/// An occurrence seen through one vocabulary (a tag's terms, a list, a slot).
#[derive(Debug, Clone, Copy)]
struct VocabHit {
    field: Field,
    word: u32,
    word_end: u32,
    occ: u32,
}

/// What made a tag's score.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reason {
    /// This many mentions of the tag's own terms in one field.
    Mentions(usize),
    /// A rule, by index within the tag.
    Rule(usize),
}

/// One contribution to a tag's score.
#[derive(Debug, Clone)]
pub(crate) struct Evidence {
    pub reason: Reason,
    pub points: f64,
    pub field: Field,
    /// Its occurrence indexes, in [`Evaluation::picked`].
    occurrences: Range<usize>,
}

/// A tag's score on one item.
#[derive(Debug, Clone)]
pub(crate) struct TagOutcome {
    pub score: f64,
    pub given: bool,
    /// An `unless` term occurred.
    pub vetoed: bool,
    /// Its evidence, in [`Evaluation::evidence`].
    evidence: Range<usize>,
}

/// Everything the engine worked out about one item. Its vectors are reused
/// from item to item (see [`Rules::tag`]), so evidence lists are ranges into
/// shared vectors rather than vectors of their own.
#[derive(Debug, Clone, Default)]
pub(crate) struct Evaluation {
    pub texts: [Normalised; 3],
    pub occurrences: Vec<Occurrence>,
    /// One per tag, in file order.
    pub outcomes: Vec<TagOutcome>,
    evidence: Vec<Evidence>,
    picked: Vec<u32>,
    hits: Hits,
    excepts: Vec<Occurrence>,
    /// Scratch for [`tightest_window`].
    window: Vec<(u32, usize)>,
    /// Scratch for [`Rules::find`].
    found: Vec<(u32, u32, u32)>,
}

thread_local! {
    /// Buffers for [`Rules::tag`], so tagging allocates only its result.
    static SCRATCH: RefCell<Evaluation> = RefCell::default();
}

/// Scratch buffers larger than this are dropped after use, so one huge item
/// does not pin its memory for the life of the thread.
const SCRATCH_KEEP_BYTES: usize = 1 << 20;

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

    fn compile(spec: Spec) -> Result<Rules, Problem> {
        let Spec {
            scoring,
            mut terms,
            vocabs,
            mut tags,
        } = spec;
        let canonical = merge_equal_vocabularies(&vocabs, &mut tags, &mut terms);
        let mut term_vocabs = vec![Vec::new(); terms.len()];
        for (v, ids) in vocabs.iter().enumerate() {
            if canonical[v] != v {
                continue;
            }
            for &t in ids {
                term_vocabs[t].push(v as u32);
            }
        }
        let mut patterns: Vec<String> = Vec::new();
        let mut pattern_terms: Vec<Vec<u32>> = Vec::new();
        let mut pattern_shape = Vec::new();
        let mut index = std::collections::HashMap::new();
        for (t, term) in terms.iter().enumerate() {
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
        let mut is_except_term = vec![false; terms.len()];
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
        let term_vocabs = Table::new(&term_vocabs);
        let pattern_terms = Table::new(&pattern_terms);
        Ok(Rules {
            scoring,
            terms,
            vocabs,
            term_vocabs,
            pattern_terms,
            pattern_shape,
            is_except_term,
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

    /// Tags one item.
    pub fn tag(&self, doc: &Document) -> Tagging<'_> {
        let reused = SCRATCH.try_with(|scratch| {
            let mut eval = scratch.try_borrow_mut().ok()?;
            self.evaluate_into(doc, &mut eval);
            let tagging = self.tagging(doc, &eval);
            if eval.texts.iter().map(|t| t.padded().len()).sum::<usize>() > SCRATCH_KEEP_BYTES {
                *eval = Evaluation::default();
            }
            Some(tagging)
        });
        match reused {
            Ok(Some(tagging)) => tagging,
            // The thread is being torn down (or, impossibly, tagging
            // re-entered): fresh buffers.
            _ => self.tagging(doc, &self.evaluate(doc)),
        }
    }

    pub(crate) fn tag_spec(&self, tag: usize) -> &TagSpec {
        &self.tags[tag]
    }

    pub(crate) fn term(&self, term: u32) -> &TermSpec {
        &self.terms[term as usize]
    }

    pub(crate) fn order(&self) -> &[usize] {
        &self.order
    }

    /// Builds the public result from an evaluation.
    pub(crate) fn tagging(&self, doc: &Document, eval: &Evaluation) -> Tagging<'_> {
        // Sized once for most items: no more tags than given, no more
        // matches than occurrences picked (capped: a huge item grows).
        let mut tags = Vec::with_capacity(eval.outcomes.iter().filter(|o| o.given).count());
        let mut matches: Vec<TermMatch> = Vec::with_capacity(eval.picked.len().min(256));
        // Which (term, field) pairs the current tag has listed: a bit each.
        let mut seen = vec![0u64; (self.terms.len() * Field::ALL.len()).div_ceil(64)];
        for &t in &self.order {
            let outcome = &eval.outcomes[t];
            if !outcome.given {
                continue;
            }
            let name = self.tags[t].name.as_str();
            tags.push(name);
            // Each term once per field: the first place it counted.
            seen.fill(0);
            for ev in eval.evidence(outcome).iter().filter(|e| e.points > 0.0) {
                for &o in eval.picked(ev) {
                    let occ = &eval.occurrences[o as usize];
                    let bit = occ.term as usize * Field::ALL.len() + occ.field as usize;
                    match seen.get_mut(bit / 64) {
                        Some(word) if *word & (1 << (bit % 64)) == 0 => *word |= 1 << (bit % 64),
                        _ => continue,
                    }
                    let (start, end) = eval.original_range(doc, occ);
                    matches.push(TermMatch {
                        tag: name,
                        term: self.terms[occ.term as usize].written.as_str(),
                        field: occ.field,
                        start,
                        end,
                    });
                }
            }
        }
        let score = self
            .tags
            .iter()
            .zip(&eval.outcomes)
            .filter(|(t, _)| t.primary)
            .map(|(_, o)| o.score)
            .fold(0.0_f64, f64::max);
        Tagging {
            relevant: self
                .tags
                .iter()
                .zip(&eval.outcomes)
                .any(|(t, o)| t.primary && o.given),
            score: (score * 100.0).round() / 100.0,
            tags,
            matches,
        }
    }

    /// Normalises, searches and scores one item.
    pub(crate) fn evaluate(&self, doc: &Document) -> Evaluation {
        let mut eval = Evaluation::default();
        self.evaluate_into(doc, &mut eval);
        eval
    }

    /// [`Rules::evaluate`] into `eval`, reusing its buffers.
    fn evaluate_into(&self, doc: &Document, eval: &mut Evaluation) {
        let Evaluation {
            texts,
            occurrences,
            outcomes,
            evidence,
            picked,
            hits,
            excepts,
            window,
            found,
        } = eval;
        occurrences.clear();
        for field in Field::ALL {
            let text = &mut texts[field as usize];
            normalise_into(doc.field(field), text, Some(&self.starters));
            self.find(text, field, occurrences, found);
        }
        self.void_excepted(occurrences, excepts);
        self.vocab_hits(occurrences, hits);
        outcomes.clear();
        evidence.clear();
        picked.clear();
        for t in 0..self.tags.len() {
            outcomes.push(self.score_tag(t, hits, evidence, picked, window));
        }
    }

    /// Every term occurrence in one normalised field, ordered by first
    /// word, then by last word, then by end.
    fn find(
        &self,
        text: &Normalised,
        field: Field,
        out: &mut Vec<Occurrence>,
        found: &mut Vec<(u32, u32, u32)>,
    ) {
        let bytes = text.padded();
        // The walks only note (pattern, word, start): a closure that small
        // is inlined into the walk, where building occurrences in it was not.
        found.clear();
        for &(from, word) in text.candidates() {
            self.automaton
                .walk(bytes, from as usize, |p, _| found.push((p, word, from)));
        }
        for &(p, word, from) in found.iter() {
            let Some(&shape) = self.pattern_shape.get(p as usize) else {
                continue;
            };
            // The pattern's leading space sits at padded `from - 1`, which
            // is where its first word starts in the unpadded text.
            let start = from as usize - 1;
            let mut stop = start + shape.len;
            if shape.stem {
                stop += bytes
                    .get(stop + 1..)
                    .and_then(|rest| rest.iter().position(|&b| b == b' '))
                    .unwrap_or(0);
            }
            for &t in self.pattern_terms.row(p as usize) {
                out.push(Occurrence {
                    term: t,
                    field,
                    start: start as u32,
                    end: stop as u32,
                    word,
                    word_end: word + shape.words - 1,
                    void: false,
                });
            }
        }
    }

    /// Voids occurrences covered by (or just after) an `except` phrase of
    /// the tag that owns the term.
    fn void_excepted(&self, occurrences: &mut [Occurrence], phrases_found: &mut Vec<Occurrence>) {
        phrases_found.clear();
        phrases_found.extend(
            occurrences
                .iter()
                .filter(|o| self.is_except_term[o.term as usize])
                .copied(),
        );
        if phrases_found.is_empty() {
            return;
        }
        for o in occurrences.iter_mut() {
            let Some(except) = self.terms[o.term as usize].except else {
                continue;
            };
            let phrases = &self.vocabs[except.vocab];
            let covered = phrases_found.iter().any(|p| {
                p.field == o.field
                    && phrases.binary_search(&(p.term as usize)).is_ok()
                    && ((p.start < o.end && o.start < p.end)
                        || (p.end <= o.start && o.word.saturating_sub(p.word_end + 1) <= except.before))
            });
            o.void = covered;
        }
    }

    /// The live occurrences seen through every vocabulary they belong to,
    /// grouped by vocabulary, each group in field and word order.
    fn vocab_hits(&self, occurrences: &[Occurrence], out: &mut Hits) {
        let Hits { hits, offsets, next } = out;
        // One group per vocabulary and field, so a field's hits need no search.
        let groups = self.vocabs.len() * Field::ALL.len();
        offsets.clear();
        offsets.resize(groups + 1, 0);
        for o in occurrences.iter().filter(|o| !o.void) {
            for &v in self.term_vocabs.row(o.term as usize) {
                offsets[Hits::group(v as usize, o.field) + 1] += 1;
            }
        }
        for g in 0..groups {
            offsets[g + 1] += offsets[g];
        }
        next.clear();
        next.extend_from_slice(offsets);
        let empty = VocabHit {
            field: Field::Title,
            word: 0,
            word_end: 0,
            occ: 0,
        };
        hits.clear();
        hits.resize(offsets[groups] as usize, empty);
        for (i, o) in occurrences.iter().enumerate() {
            if o.void {
                continue;
            }
            for &v in self.term_vocabs.row(o.term as usize) {
                let at = &mut next[Hits::group(v as usize, o.field)];
                hits[*at as usize] = VocabHit {
                    field: o.field,
                    word: o.word,
                    word_end: o.word_end,
                    occ: i as u32,
                };
                *at += 1;
            }
        }
    }

    /// Scores tag `t`, appending its evidence to `evidence` and their
    /// occurrence indexes to `picked`.
    fn score_tag(
        &self,
        t: usize,
        hits: &Hits,
        evidence: &mut Vec<Evidence>,
        picked: &mut Vec<u32>,
        window: &mut Vec<(u32, usize)>,
    ) -> TagOutcome {
        let tag = &self.tags[t];
        let fw = self.scoring.field_weights;
        let first_evidence = evidence.len();
        let vetoed = tag.unless.is_some_and(|v| !hits.of(v).is_empty());

        for field in Field::ALL {
            let own = hits.in_field(tag.terms, field);
            let Some(first) = own.first() else { continue };
            let mut mentions = 1;
            let mut end = first.word_end;
            for h in &own[1..] {
                if h.word > end + self.scoring.mention_gap {
                    mentions += 1;
                }
                end = end.max(h.word_end);
            }
            let from = picked.len();
            picked.extend(own.iter().map(|h| h.occ));
            evidence.push(Evidence {
                reason: Reason::Mentions(mentions),
                points: mentions as f64 * tag.weight * fw[field as usize],
                field,
                occurrences: from..picked.len(),
            });
        }

        for (r, rule) in tag.rules.iter().enumerate() {
            match rule.within {
                Some(within) => {
                    for field in Field::ALL {
                        if !rule.fields[field as usize] {
                            continue;
                        }
                        if rule.unless.is_some_and(|u| !hits.in_field(u, field).is_empty()) {
                            continue;
                        }
                        if rule.slots.iter().any(|&s| hits.in_field(s, field).is_empty()) {
                            continue;
                        }
                        // Rules have a few slots: no allocation for up to eight.
                        let mut few: [&[VocabHit]; 8] = [&[]; 8];
                        let many: Vec<&[VocabHit]>;
                        let slots: &[&[VocabHit]] = if rule.slots.len() <= few.len() {
                            for (slot, &s) in few.iter_mut().zip(&rule.slots) {
                                *slot = hits.in_field(s, field);
                            }
                            &few[..rule.slots.len()]
                        } else {
                            many = rule.slots.iter().map(|&s| hits.in_field(s, field)).collect();
                            &many
                        };
                        let from = picked.len();
                        if tightest_window(slots, within, picked, window) {
                            evidence.push(Evidence {
                                reason: Reason::Rule(r),
                                points: rule.weight * fw[field as usize],
                                field,
                                occurrences: from..picked.len(),
                            });
                        }
                    }
                }
                None => {
                    let allowed = |h: &&VocabHit| rule.fields[h.field as usize];
                    if rule
                        .unless
                        .is_some_and(|u| hits.of(u).iter().any(|h| allowed(&h)))
                    {
                        continue;
                    }
                    // Each slot's best hit is its hit in the heaviest field;
                    // the rule counts as much as the weakest of those.
                    let from = picked.len();
                    let mut weakest: Option<(f64, Field)> = None;
                    for &s in &rule.slots {
                        let best = hits
                            .of(s)
                            .iter()
                            .filter(allowed)
                            .max_by(|a, b| fw[a.field as usize].total_cmp(&fw[b.field as usize]));
                        let Some(best) = best else {
                            picked.truncate(from);
                            weakest = None;
                            break;
                        };
                        picked.push(best.occ);
                        let w = fw[best.field as usize];
                        if weakest.is_none_or(|(x, _)| w < x) {
                            weakest = Some((w, best.field));
                        }
                    }
                    if let Some((w, field)) = weakest {
                        evidence.push(Evidence {
                            reason: Reason::Rule(r),
                            points: rule.weight * w,
                            field,
                            occurrences: from..picked.len(),
                        });
                    }
                }
            }
        }

        let score: f64 = evidence[first_evidence..].iter().map(|e| e.points).sum();
        TagOutcome {
            score,
            // The tolerance keeps sums like 1.5 - 0.5 from missing 1.0 by rounding.
            given: !vetoed && score >= tag.threshold - 1e-9,
            vetoed,
            evidence: first_evidence..evidence.len(),
        }
    }
}

impl Evaluation {
    /// A tag's evidence.
    pub(crate) fn evidence(&self, outcome: &TagOutcome) -> &[Evidence] {
        self.evidence.get(outcome.evidence.clone()).unwrap_or(&[])
    }

    /// The occurrence indexes behind one piece of evidence.
    pub(crate) fn picked(&self, evidence: &Evidence) -> &[u32] {
        self.picked.get(evidence.occurrences.clone()).unwrap_or(&[])
    }

    /// The byte range in the original field text of an occurrence, on
    /// character boundaries.
    pub(crate) fn original_range(&self, doc: &Document, occ: &Occurrence) -> (usize, usize) {
        let original = doc.field(occ.field);
        let norm = &self.texts[occ.field as usize];
        let mut start = norm.original_offset(occ.start as usize).min(original.len());
        while !original.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = norm
            .original_offset(occ.end as usize)
            .clamp(start, original.len());
        while !original.is_char_boundary(end) {
            end += 1;
        }
        (start, end)
    }
}

/// Every rule slot that names a list, and every inline list, is a
/// vocabulary of its own; equal ones (they are sorted term-id sets) become
/// one, so a term's hit is recorded once per distinct list and not once per
/// rule using it ("Armenia" was in seven copies of three lists). Points
/// tags, rules and `except` at the first of each set of equals, and returns
/// that first one for every vocabulary.
fn merge_equal_vocabularies(
    vocabs: &[Vec<usize>],
    tags: &mut [TagSpec],
    terms: &mut [TermSpec],
) -> Vec<usize> {
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
    same
}

/// Live hits grouped by vocabulary and, within one, by field.
#[derive(Debug, Clone, Default)]
struct Hits {
    hits: Vec<VocabHit>,
    /// Group `g` (see [`Hits::group`]) is `hits[offsets[g]..offsets[g + 1]]`.
    offsets: Vec<u32>,
    /// Where the next hit of each group goes, while filling.
    next: Vec<u32>,
}

impl Hits {
    /// The group of vocabulary `vocab`'s hits in `field`; a vocabulary's
    /// groups are consecutive, in field order.
    fn group(vocab: usize, field: Field) -> usize {
        vocab * Field::ALL.len() + field as usize
    }

    fn groups(&self, from: usize, to: usize) -> &[VocabHit] {
        match (self.offsets.get(from), self.offsets.get(to)) {
            (Some(&a), Some(&b)) => self.hits.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Vocabulary `vocab`'s hits, in field and word order.
    fn of(&self, vocab: usize) -> &[VocabHit] {
        self.groups(
            Hits::group(vocab, Field::Title),
            Hits::group(vocab + 1, Field::Title),
        )
    }

    /// Vocabulary `vocab`'s hits in `field`, in word order.
    fn in_field(&self, vocab: usize, field: Field) -> &[VocabHit] {
        let g = Hits::group(vocab, field);
        self.groups(g, g + 1)
    }
}

/// One hit per slot, all within `within` words (first word of the first to
/// last word of the last), choosing the tightest such set, appended to
/// `picked`; `false` when no set fits. Each slot's hits are sorted by first
/// word.
fn tightest_window(
    slots: &[&[VocabHit]],
    within: u32,
    picked: &mut Vec<u32>,
    suffix_min: &mut Vec<(u32, usize)>,
) -> bool {
    if slots.iter().any(|s| s.is_empty()) {
        return false;
    }
    // For each slot, the smallest last-word among its hits from i onwards
    // (and which hit has it), slot after slot in one vector.
    suffix_min.clear();
    for s in slots {
        let at = suffix_min.len();
        suffix_min.resize(at + s.len(), (u32::MAX, 0));
        let mut best = (u32::MAX, 0);
        for i in (0..s.len()).rev() {
            if s[i].word_end < best.0 {
                best = (s[i].word_end, i);
            }
            suffix_min[at + i] = best;
        }
    }
    // The hit each slot takes for a window starting at word `start`, and
    // the window's last word; `None` when some slot has nothing from there.
    let window = |start: u32, mut take: Option<&mut Vec<u32>>| -> Option<u32> {
        let mut last = start;
        let mut at = 0;
        for s in slots {
            let mins = &suffix_min[at..at + s.len()];
            at += s.len();
            let i = s.partition_point(|h| h.word < start);
            let &(end, hit) = mins.get(i)?;
            last = last.max(end);
            if let Some(take) = take.as_mut() {
                take.push(s[hit].occ);
            }
        }
        Some(last)
    };
    let mut best: Option<(u32, u32)> = None;
    let mut consider = |start: u32, last: u32| {
        let span = last - start;
        if span <= within && best.is_none_or(|(b, _)| span < b) {
            best = Some((span, start));
        }
    };
    if slots.len() <= 8 {
        // The starts of one slot come in word order, so where each slot's
        // hits begin only moves forward: a cursor per slot instead of a
        // binary search per start and slot. Same starts, same order.
        for from in slots {
            let mut cursors = [0usize; 8];
            'start: for start in from.iter().map(|h| h.word) {
                let mut last = start;
                let mut at = 0;
                for (s, cursor) in slots.iter().zip(cursors.iter_mut()) {
                    while s.get(*cursor).is_some_and(|h| h.word < start) {
                        *cursor += 1;
                    }
                    let Some(&(end, _)) = suffix_min.get(at + *cursor).filter(|_| *cursor < s.len()) else {
                        continue 'start;
                    };
                    at += s.len();
                    last = last.max(end);
                }
                consider(start, last);
            }
        }
    } else {
        for start in slots.iter().flat_map(|s| s.iter().map(|h| h.word)) {
            if let Some(last) = window(start, None) {
                consider(start, last);
            }
        }
    }
    match best {
        Some((_, start)) => window(start, Some(picked)).is_some(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Rules {
        match Rules::from_toml(text, Path::new("test-rules.toml")) {
            Ok((r, _)) => r,
            Err(p) => panic!("rules do not compile:\n{p}"),
        }
    }

    fn doc<'a>(title: &'a str, summary: &'a str, content: &'a str) -> Document<'a> {
        Document {
            title,
            summary,
            content,
        }
    }

    fn title<'r>(r: &'r Rules, t: &str) -> Tagging<'r> {
        r.tag(&doc(t, "", ""))
    }

    const ONE_TAG: &str = r#"
        [[tag]]
        name = "t"
        primary = true
        terms = ["Azerbaijan*", "CSTO", "Zas", "Armenian-Azerbaijani border", "Azerbaijan's army", "ОДКБ", "ՀԱՊԿ"]
    "#;

    #[test]
    fn stem_wildcard_matches_word_continuations_only() {
        let r = rules(ONE_TAG);
        for t in [
            "Azerbaijani troops",
            "Azerbaijan’s army",
            "AZERBAIJANIS",
            "in Azerbaijan.",
        ] {
            assert!(title(&r, t).relevant, "{t}");
        }
        assert!(!title(&r, "NotAzerbaijan").relevant);
        let plain = rules(
            r#"
            [[tag]]
            name = "t"
            primary = true
            terms = ["Azerbaijan"]
        "#,
        );
        assert!(!title(&plain, "Azerbaijani troops").relevant);
        assert!(title(&plain, "Azerbaijan, again").relevant);
    }

    #[test]
    fn terms_match_whole_words() {
        let r = rules(ONE_TAG);
        assert!(!title(&r, "CSTOX and Zastava").relevant);
        assert!(title(&r, "the CSTO's reply").relevant);
        assert!(title(&r, "(Zas)").relevant);
    }

    #[test]
    fn phrases_match_across_dashes_spaces_quotes_and_entities() {
        let r = rules(ONE_TAG);
        for t in [
            "Armenian-Azerbaijani border",
            "Armenian–Azerbaijani border",
            "Armenian — Azerbaijani  border",
            "ARMENIAN AZERBAIJANI BORDER",
            "Armenian&ndash;Azerbaijani border",
        ] {
            let tagging = title(&r, t);
            assert!(
                tagging
                    .matches
                    .iter()
                    .any(|m| m.term == "Armenian-Azerbaijani border"),
                "{t}: {tagging:?}"
            );
        }
        assert!(
            title(&r, "Azerbaijan&#8217;s army")
                .matches
                .iter()
                .any(|m| m.term == "Azerbaijan's army")
        );
    }

    #[test]
    fn cyrillic_and_armenian_terms_match_any_case() {
        let r = rules(ONE_TAG);
        assert!(title(&r, "Саммит одкб").relevant);
        assert!(title(&r, "Саммит ОДКБ в Минске").relevant);
        assert!(title(&r, "ՀԱՊԿ գագաթնաժողով").relevant);
        assert!(title(&r, "հապկ").relevant);
    }

    #[test]
    fn field_weights_and_threshold_decide() {
        let r = rules(
            r#"
            [scoring]
            threshold = 1.0
            title = 1.5
            summary = 1.0
            content = 0.5
            [[tag]]
            name = "t"
            primary = true
            terms = ["CSTO"]
        "#,
        );
        assert_eq!(r.tag(&doc("CSTO", "", "")).score, 1.5);
        assert!(r.tag(&doc("", "CSTO", "")).relevant);
        let once = r.tag(&doc("", "", "The CSTO was mentioned once."));
        assert!(!once.relevant);
        assert_eq!(once.score, 0.5);
        assert!(
            r.tag(&doc("", "", "The CSTO ... and later the CSTO again."))
                .relevant
        );
    }

    #[test]
    fn a_name_and_its_abbreviation_side_by_side_are_one_mention() {
        let r = rules(
            r#"
            [[tag]]
            name = "t"
            primary = true
            terms = ["Collective Security Treaty Organization", "Collective Security Treaty", "CSTO"]
        "#,
        );
        let t = r.tag(&doc(
            "",
            "",
            "the Collective Security Treaty Organization (CSTO) met",
        ));
        assert_eq!(t.score, 0.5);
        assert!(!t.relevant);
    }

    const CO_OCCURRENCE: &str = r#"
        [lists]
        am = ["Armenia*", "Yerevan"]
        az = ["Azerbaijan*", "Baku"]
        war = ["clash*", "shelling"]
        [[tag]]
        name = "aa"
        primary = true
        [[tag.rule]]
        all = ["@am", "@az", "@war"]
        within = 5
        weight = 1.0
        [[tag.rule]]
        all = ["@am", "@az"]
        fields = ["title", "summary"]
        weight = 0.5
        unless = ["wrestl*"]
    "#;

    #[test]
    fn all_of_groups_fire_within_n_words_in_one_field() {
        let r = rules(CO_OCCURRENCE);
        let near = r.tag(&doc("", "Armenian and Azerbaijani forces clash", ""));
        assert_eq!(near.score, 1.5, "{near:?}");
        let far = r.tag(&doc(
            "",
            "Armenian officials, after a long and tiring day, said Azerbaijani clash",
            "",
        ));
        assert_eq!(far.score, 0.5);
        let split = r.tag(&doc("Armenian border", "Azerbaijani shelling", ""));
        assert_eq!(
            split.score, 0.5,
            "slots in different fields do not make a `within` rule"
        );
        let terms: Vec<&str> = near.matches.iter().map(|m| m.term).collect();
        assert!(terms.contains(&"Armenia*") && terms.contains(&"Azerbaijan*") && terms.contains(&"clash*"));
    }

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
    fn rules_without_within_count_at_their_weakest_field() {
        let r = rules(CO_OCCURRENCE);
        assert_eq!(r.tag(&doc("Yerevan says", "Baku said", "")).score, 0.5);
        assert_eq!(r.tag(&doc("Yerevan and Baku", "", "")).score, 0.75);
        assert_eq!(
            r.tag(&doc("Yerevan", "", "Baku")).score,
            0.0,
            "content is not among the rule's fields"
        );
        assert_eq!(
            r.tag(&doc("Yerevan and Baku wrestlers", "", "")).score,
            0.0,
            "`unless` stops the rule"
        );
    }

    #[test]
    fn except_phrases_void_hits_they_cover_or_precede() {
        let r = rules(
            r#"
            [[tag]]
            name = "t"
            primary = true
            terms = ["CSTO", "Karabakh"]
            except = ["fellow members", "including"]
            except_before = 2
        "#,
        );
        assert!(
            !title(
                &r,
                "both countries, fellow members of the CSTO, blamed each other"
            )
            .relevant
        );
        assert!(!title(&r, "all of Azerbaijan's territory, including Karabakh").relevant);
        assert!(title(&r, "fellow members met; later the CSTO summit opened").relevant);
    }

    #[test]
    fn unless_on_a_tag_vetoes_it() {
        let r = rules(
            r#"
            [[tag]]
            name = "t"
            primary = true
            terms = ["Qarabag"]
            unless = ["Champions League"]
        "#,
        );
        assert!(title(&r, "Qarabag and the border").relevant);
        assert!(!r.tag(&doc("Qarabag win", "in the Champions League", "")).relevant);
    }

    #[test]
    fn negative_rules_are_penalties() {
        let r = rules(
            r#"
            [lists]
            money = ["budget"]
            [[tag]]
            name = "t"
            primary = true
            terms = ["Karabakh"]
            [[tag.rule]]
            all = ["@money"]
            fields = ["title"]
            weight = -0.5
        "#,
        );
        assert!(
            !r.tag(&doc("State budget passed", "aid for Karabakh families", ""))
                .relevant
        );
        assert!(
            r.tag(&doc(
                "State budget passed",
                "aid for Karabakh families, and then more aid for Karabakh",
                ""
            ))
            .relevant
        );
    }

    #[test]
    fn primary_tags_come_first_and_only_they_make_items_relevant() {
        let r = rules(
            r#"
            [[tag]]
            name = "russia"
            terms = ["Russia"]
            [[tag]]
            name = "csto"
            primary = true
            terms = ["CSTO"]
        "#,
        );
        assert!(!title(&r, "Russia").relevant);
        assert_eq!(title(&r, "Russia").tags, vec!["russia"]);
        assert_eq!(title(&r, "Russia and the CSTO").tags, vec!["csto", "russia"]);
        assert_eq!(r.primary_tags(), vec!["csto"]);
        assert!(r.is_tag("russia") && !r.is_tag("armenia"));
    }

    #[test]
    fn matches_point_at_the_original_text() {
        let r = rules(ONE_TAG);
        let summary = "Tom &amp; “Jerry” — and   then the CSTO’s reply";
        let t = r.tag(&doc("", summary, ""));
        let m = t.matches.iter().find(|m| m.term == "CSTO").expect("a CSTO match");
        assert_eq!(&summary[m.start..m.end], "CSTO");
        let cyr = "Саммит ОДКБ";
        let t = r.tag(&doc(cyr, "", ""));
        assert_eq!(&cyr[t.matches[0].start..t.matches[0].end], "ОДКБ");
    }

    /// The occurrences found in `text` as its title, normalised with or
    /// without the word filter.
    fn found(r: &Rules, text: &str, filtered: bool) -> Vec<(u32, u32, u32, u32, u32)> {
        let mut norm = Normalised::default();
        normalise_into(text, &mut norm, filtered.then_some(&r.starters));
        let mut out = Vec::new();
        r.find(&norm, Field::Title, &mut out, &mut Vec::new());
        out.iter()
            .map(|o| (o.term, o.start, o.end, o.word, o.word_end))
            .collect()
    }

    #[test]
    fn the_word_filter_never_hides_a_hit() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rules.toml");
        let (r, _) = Rules::load(&path).unwrap_or_else(|p| panic!("{p}"));
        // Words of the shipped terms, stems with and without endings, and
        // words no term has.
        let mut words: Vec<String> = Vec::new();
        for t in &r.terms {
            for w in t.pattern.split(' ') {
                words.push(w.to_string());
                if t.wildcard {
                    words.push(format!("{w}is"));
                }
            }
        }
        words.extend(
            [
                "the",
                "of",
                "a",
                "Armenia’s",
                "Nagorno-Karabakh",
                "Cafe\u{301}",
                "ОДКБ",
                "x",
            ]
            .map(String::from),
        );
        let separators = [" ", " ", " ", ", ", "-", "’", " — ", "\u{a0}", " &amp; ", ". "];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut hits = 0;
        for _ in 0..3000 {
            let mut text = String::new();
            for _ in 0..1 + next(12) {
                let word = &words[next(words.len())];
                if next(4) == 0 {
                    text.push_str(&word.to_uppercase());
                } else {
                    text.push_str(word);
                }
                text.push_str(separators[next(separators.len())]);
            }
            let all = found(&r, &text, false);
            hits += all.len();
            assert_eq!(found(&r, &text, true), all, "{text:?}");
        }
        assert!(hits > 3000, "the texts hit terms ({hits})");
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

//! The compiled rules and the scoring of one item.
//!
//! Every term of every tag and list is compiled into ONE Aho–Corasick
//! automaton (overlapping search, so "Armenian-Azerbaijani" counts for the
//! phrase and for both words). Each field is normalised once and searched
//! once; each hit is checked for word boundaries, then hits covered by a
//! tag's `except` phrases are voided, and the tags are scored from the hits
//! that remain:
//!
//! - each *mention* of a tag's own terms adds `weight × field weight`
//!   (hits of one tag a couple of words apart, like "Collective Security
//!   Treaty Organization (CSTO)", are one mention);
//! - each rule whose slots all match adds its weight × the field weight —
//!   once per field when it has `within`, else once for the item, weighted
//!   by the weakest field it needed;
//! - a tag is given when its score reaches its threshold and none of its
//!   `unless` terms occurs.

use std::path::{Path, PathBuf};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use super::normalise::{Normalised, is_word_char, normalise};
use super::rules::{self, Scoring, Spec, TagSpec, TermSpec};
use super::{Document, Field, Tagging, TermMatch};
use crate::problem::{Problem, Problems};

/// Rules compiled for tagging: immutable, `Send + Sync`, share it with `Arc`.
#[derive(Debug, Clone)]
pub struct Rules {
    path: PathBuf,
    scoring: Scoring,
    terms: Vec<TermSpec>,
    vocabs: Vec<Vec<usize>>,
    /// For each term, the vocabularies it belongs to.
    term_vocabs: Vec<Vec<u32>>,
    /// For each automaton pattern, the terms that normalise to it.
    pattern_terms: Vec<Vec<u32>>,
    automaton: AhoCorasick,
    tags: Vec<TagSpec>,
    /// Tag indexes, primary tags first, then secondary, each in file order.
    order: Vec<usize>,
}

/// A term found in a field, after the word-boundary check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Occurrence {
    pub term: u32,
    pub field: Field,
    /// Byte range in the normalised field text.
    pub start: usize,
    pub end: usize,
    /// Index of its first and last word in the field.
    pub word: u32,
    pub word_end: u32,
    /// Covered by an `except` phrase of the tag that owns the term.
    pub void: bool,
}

/// An occurrence seen through one vocabulary (a tag's terms, a list, a slot).
#[derive(Debug, Clone, Copy)]
struct VocabHit {
    vocab: u32,
    field: Field,
    word: u32,
    word_end: u32,
    occ: u32,
}

/// What made a tag's score.
#[derive(Debug, Clone)]
pub(crate) enum Reason {
    /// One mention of the tag's own terms.
    Mention,
    /// A rule, by index within the tag.
    Rule(usize),
}

/// One contribution to a tag's score.
#[derive(Debug, Clone)]
pub(crate) struct Evidence {
    pub reason: Reason,
    pub points: f64,
    pub field: Field,
    /// Occurrence indexes.
    pub occurrences: Vec<u32>,
}

/// A tag's score on one item.
#[derive(Debug, Clone)]
pub(crate) struct TagOutcome {
    pub score: f64,
    pub given: bool,
    /// An `unless` term occurred.
    pub vetoed: bool,
    pub evidence: Vec<Evidence>,
}

/// Everything the engine worked out about one item.
#[derive(Debug, Clone)]
pub(crate) struct Evaluation {
    pub texts: [Normalised; 3],
    pub occurrences: Vec<Occurrence>,
    /// One per tag, in file order.
    pub outcomes: Vec<TagOutcome>,
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
        let rules = Rules::compile(spec, path).map_err(|e| Problems(vec![e]))?;
        Ok((rules, warnings))
    }

    fn compile(spec: Spec, path: &Path) -> Result<Rules, Problem> {
        let Spec {
            scoring,
            terms,
            vocabs,
            tags,
        } = spec;
        let mut term_vocabs = vec![Vec::new(); terms.len()];
        for (v, ids) in vocabs.iter().enumerate() {
            for &t in ids {
                term_vocabs[t].push(v as u32);
            }
        }
        let mut patterns: Vec<&str> = Vec::new();
        let mut pattern_terms: Vec<Vec<u32>> = Vec::new();
        let mut index = std::collections::HashMap::new();
        for (t, term) in terms.iter().enumerate() {
            let p = *index.entry(term.pattern.as_str()).or_insert_with(|| {
                patterns.push(&term.pattern);
                pattern_terms.push(Vec::new());
                patterns.len() - 1
            });
            pattern_terms[p].push(t as u32);
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&patterns)
            .or_else(|_| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .build(&patterns)
            })
            .map_err(|e| Problem::error(path, None, None, format!("cannot compile the terms: {e}")))?;
        let mut order: Vec<usize> = (0..tags.len()).filter(|&i| tags[i].primary).collect();
        order.extend((0..tags.len()).filter(|&i| !tags[i].primary));
        Ok(Rules {
            path: path.to_path_buf(),
            scoring,
            terms,
            vocabs,
            term_vocabs,
            pattern_terms,
            automaton,
            tags,
            order,
        })
    }

    /// The file these rules came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Names of the primary tags, in file order.
    pub fn primary_tags(&self) -> Vec<&str> {
        self.tags
            .iter()
            .filter(|t| t.primary)
            .map(|t| t.name.as_str())
            .collect()
    }

    /// Names of every tag: primary first, then secondary.
    pub fn tag_names(&self) -> Vec<&str> {
        self.order.iter().map(|&i| self.tags[i].name.as_str()).collect()
    }

    /// Whether `name` is a tag these rules can give.
    pub fn is_tag(&self, name: &str) -> bool {
        self.tags.iter().any(|t| t.name == name)
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
        let vecs = |v: &[Vec<u32>]| v.iter().map(|x| 24 + x.capacity() * 4).sum::<usize>();
        let vocabs: usize = self.vocabs.iter().map(|x| 24 + x.capacity() * 8).sum();
        let tags: usize = self
            .tags
            .iter()
            .map(|t| std::mem::size_of::<TagSpec>() + t.rules.len() * 128)
            .sum();
        self.automaton.memory_usage()
            + terms
            + vocabs
            + vecs(&self.term_vocabs)
            + vecs(&self.pattern_terms)
            + tags
    }

    /// Tags one item.
    pub fn tag(&self, doc: &Document) -> Tagging {
        let eval = self.evaluate(doc);
        self.tagging(doc, &eval)
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
    pub(crate) fn tagging(&self, doc: &Document, eval: &Evaluation) -> Tagging {
        let mut tags = Vec::new();
        let mut matches: Vec<TermMatch> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for &t in &self.order {
            let outcome = &eval.outcomes[t];
            if !outcome.given {
                continue;
            }
            let name = &self.tags[t].name;
            tags.push(name.clone());
            for ev in outcome.evidence.iter().filter(|e| e.points > 0.0) {
                for &o in &ev.occurrences {
                    let occ = &eval.occurrences[o as usize];
                    if !seen.insert((t, occ.term, occ.field, occ.start)) {
                        continue;
                    }
                    let (start, end) = eval.original_range(doc, occ);
                    matches.push(TermMatch {
                        tag: name.clone(),
                        term: self.terms[occ.term as usize].written.clone(),
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
        let texts = Field::ALL.map(|f| normalise(doc.field(f)));
        let mut occurrences = Vec::new();
        for field in Field::ALL {
            let first = occurrences.len();
            self.find(texts[field as usize].as_str(), field, &mut occurrences);
            number_words(texts[field as usize].as_str(), &mut occurrences[first..]);
        }
        self.void_excepted(&mut occurrences);
        let hits = self.vocab_hits(&occurrences);
        let outcomes = (0..self.tags.len()).map(|t| self.score_tag(t, &hits)).collect();
        Evaluation {
            texts,
            occurrences,
            outcomes,
        }
    }

    /// Every term occurrence in one normalised field, on word boundaries.
    fn find(&self, text: &str, field: Field, out: &mut Vec<Occurrence>) {
        if text.is_empty() {
            return;
        }
        for m in self.automaton.find_overlapping_iter(text) {
            let (start, end) = (m.start(), m.end());
            if text[..start].chars().next_back().is_some_and(is_word_char) {
                continue;
            }
            let ends_word = !text[end..].chars().next().is_some_and(is_word_char);
            for &t in &self.pattern_terms[m.pattern().as_usize()] {
                if ends_word || self.terms[t as usize].wildcard {
                    out.push(Occurrence {
                        term: t,
                        field,
                        start,
                        end,
                        word: 0,
                        word_end: 0,
                        void: false,
                    });
                }
            }
        }
    }

    /// Voids occurrences covered by (or just after) an `except` phrase of
    /// the tag that owns the term.
    fn void_excepted(&self, occurrences: &mut [Occurrence]) {
        for i in 0..occurrences.len() {
            let o = occurrences[i];
            let Some(except) = self.terms[o.term as usize].except else {
                continue;
            };
            let phrases = &self.vocabs[except.vocab];
            let covered = occurrences.iter().any(|p| {
                p.field == o.field
                    && phrases.binary_search(&(p.term as usize)).is_ok()
                    && ((p.start < o.end && o.start < p.end)
                        || (p.end <= o.start && o.word.saturating_sub(p.word_end + 1) <= except.before))
            });
            occurrences[i].void = covered;
        }
    }

    /// The live occurrences seen through every vocabulary they belong to,
    /// sorted by vocabulary, field and position.
    fn vocab_hits(&self, occurrences: &[Occurrence]) -> Vec<VocabHit> {
        let mut hits = Vec::new();
        for (i, o) in occurrences.iter().enumerate() {
            if o.void {
                continue;
            }
            for &v in &self.term_vocabs[o.term as usize] {
                hits.push(VocabHit {
                    vocab: v,
                    field: o.field,
                    word: o.word,
                    word_end: o.word_end,
                    occ: i as u32,
                });
            }
        }
        hits.sort_unstable_by_key(|h| (h.vocab, h.field, h.word, h.word_end, h.occ));
        hits
    }

    fn score_tag(&self, t: usize, hits: &[VocabHit]) -> TagOutcome {
        let tag = &self.tags[t];
        let fw = self.scoring.field_weights;
        let mut evidence = Vec::new();
        let vetoed = tag.unless.is_some_and(|v| !of_vocab(hits, v).is_empty());

        for field in Field::ALL {
            let own = of_field(of_vocab(hits, tag.terms), field);
            let mut i = 0;
            while i < own.len() {
                let mut end = own[i].word_end;
                let mut occs = vec![own[i].occ];
                let mut j = i + 1;
                while j < own.len() && own[j].word <= end + self.scoring.mention_gap {
                    end = end.max(own[j].word_end);
                    occs.push(own[j].occ);
                    j += 1;
                }
                evidence.push(Evidence {
                    reason: Reason::Mention,
                    points: tag.weight * fw[field as usize],
                    field,
                    occurrences: occs,
                });
                i = j;
            }
        }

        for (r, rule) in tag.rules.iter().enumerate() {
            match rule.within {
                Some(within) => {
                    for field in Field::ALL {
                        if !rule.fields[field as usize] {
                            continue;
                        }
                        if rule
                            .unless
                            .is_some_and(|u| !of_field(of_vocab(hits, u), field).is_empty())
                        {
                            continue;
                        }
                        let slots: Vec<&[VocabHit]> = rule
                            .slots
                            .iter()
                            .map(|&s| of_field(of_vocab(hits, s), field))
                            .collect();
                        if let Some(occurrences) = tightest_window(&slots, within) {
                            evidence.push(Evidence {
                                reason: Reason::Rule(r),
                                points: rule.weight * fw[field as usize],
                                field,
                                occurrences,
                            });
                        }
                    }
                }
                None => {
                    let allowed = |h: &&VocabHit| rule.fields[h.field as usize];
                    if rule
                        .unless
                        .is_some_and(|u| of_vocab(hits, u).iter().any(|h| allowed(&h)))
                    {
                        continue;
                    }
                    // Each slot's best hit is its hit in the heaviest field;
                    // the rule counts as much as the weakest of those.
                    let mut chosen = Vec::new();
                    let mut weakest: Option<(f64, Field)> = None;
                    for &s in &rule.slots {
                        let best = of_vocab(hits, s)
                            .iter()
                            .filter(allowed)
                            .max_by(|a, b| fw[a.field as usize].total_cmp(&fw[b.field as usize]));
                        let Some(best) = best else {
                            chosen.clear();
                            weakest = None;
                            break;
                        };
                        chosen.push(best.occ);
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
                            occurrences: chosen,
                        });
                    }
                }
            }
        }

        let score: f64 = evidence.iter().map(|e| e.points).sum();
        TagOutcome {
            score,
            // The tolerance keeps sums like 1.5 - 0.5 from missing 1.0 by rounding.
            given: !vetoed && score >= tag.threshold - 1e-9,
            vetoed,
            evidence,
        }
    }
}

impl Evaluation {
    /// The byte range in the original field text of an occurrence, on
    /// character boundaries.
    pub(crate) fn original_range(&self, doc: &Document, occ: &Occurrence) -> (usize, usize) {
        let original = doc.field(occ.field);
        let norm = &self.texts[occ.field as usize];
        let mut start = norm.original_offset(occ.start).min(original.len());
        while !original.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = norm.original_offset(occ.end).clamp(start, original.len());
        while !original.is_char_boundary(end) {
            end += 1;
        }
        (start, end)
    }
}

/// The hits of one vocabulary.
fn of_vocab(hits: &[VocabHit], vocab: usize) -> &[VocabHit] {
    let v = vocab as u32;
    let lo = hits.partition_point(|h| h.vocab < v);
    let hi = hits.partition_point(|h| h.vocab <= v);
    &hits[lo..hi]
}

/// The hits (of one vocabulary) in one field.
fn of_field(hits: &[VocabHit], field: Field) -> &[VocabHit] {
    let lo = hits.partition_point(|h| h.field < field);
    let hi = hits.partition_point(|h| h.field <= field);
    &hits[lo..hi]
}

/// One hit per slot, all within `within` words (first word of the first to
/// last word of the last), choosing the tightest such set; `None` when no
/// set fits. Each slot's hits are sorted by first word.
fn tightest_window(slots: &[&[VocabHit]], within: u32) -> Option<Vec<u32>> {
    if slots.iter().any(|s| s.is_empty()) {
        return None;
    }
    // For each slot, the smallest last-word among its hits from i onwards.
    let suffix_min: Vec<Vec<(u32, usize)>> = slots
        .iter()
        .map(|s| {
            let mut out = vec![(u32::MAX, 0); s.len()];
            let mut best = (u32::MAX, 0);
            for i in (0..s.len()).rev() {
                if s[i].word_end < best.0 {
                    best = (s[i].word_end, i);
                }
                out[i] = best;
            }
            out
        })
        .collect();
    let mut best: Option<(u32, Vec<u32>)> = None;
    for start in slots.iter().flat_map(|s| s.iter().map(|h| h.word)) {
        let mut last = start;
        let mut picks = Vec::with_capacity(slots.len());
        for (s, mins) in slots.iter().zip(&suffix_min) {
            let i = s.partition_point(|h| h.word < start);
            let Some(&(end, at)) = mins.get(i) else {
                picks.clear();
                break;
            };
            last = last.max(end);
            picks.push(s[at].occ);
        }
        if picks.len() != slots.len() {
            continue;
        }
        let span = last - start;
        if span <= within && best.as_ref().is_none_or(|(b, _)| span < *b) {
            best = Some((span, picks));
        }
    }
    best.map(|(_, picks)| picks)
}

/// Fills in the word indexes of the occurrences found in `text`, in one pass.
fn number_words(text: &str, occurrences: &mut [Occurrence]) {
    if occurrences.is_empty() {
        return;
    }
    // (byte position, occurrence, is its end)
    let mut marks: Vec<(usize, usize, bool)> = Vec::with_capacity(occurrences.len() * 2);
    for (i, o) in occurrences.iter().enumerate() {
        marks.push((o.start, i, false));
        marks.push((o.end, i, true));
    }
    marks.sort_unstable();
    let bytes = text.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80;
    let mut words: u32 = 0;
    let mut pos = 0;
    for (at, i, is_end) in marks {
        while pos < at {
            if is_word(bytes[pos]) && (pos == 0 || !is_word(bytes[pos - 1])) {
                words += 1;
            }
            pos += 1;
        }
        if is_end {
            occurrences[i].word_end = words.saturating_sub(1).max(occurrences[i].word);
        } else {
            occurrences[i].word = words;
        }
    }
}

//! The tagger's stages for one item, run in order: normalise each field
//! and find its term occurrences (`matching`, with the automaton built by
//! `compile`), each hit appended to its vocabularies' groups as it is
//! found; void the hits `except` phrases and entity names cover (only
//! when the item has one); score every tag (`score`); and build the
//! [`Tagging`].
//!
//! Each field is normalised once and searched once. The buffers of an
//! evaluation are reused from item to item on each thread, so tagging
//! allocates only its result.

use std::cell::RefCell;

use super::compile::Rules;
use super::matching::{Hits, Occurrence};
use super::normalise::{Normalised, normalise_into};
use super::score::{Evidence, Layout, TagOutcome};
use super::{Document, Field, Tagging, TermMatch};

/// Everything the engine worked out about one item. Its vectors are reused
/// from item to item (see [`Rules::tag`]), so evidence lists are ranges into
/// shared vectors rather than vectors of their own.
#[derive(Debug, Clone, Default)]
pub(crate) struct Evaluation {
    pub texts: [Normalised; 3],
    pub occurrences: Vec<Occurrence>,
    /// One per tag, in file order.
    pub outcomes: Vec<TagOutcome>,
    pub(super) evidence: Vec<Evidence>,
    pub(super) picked: Vec<u32>,
    pub(super) hits: Hits,
    pub(super) excepts: Vec<Occurrence>,
    /// Scratch for [`tightest_window`].
    pub(super) window: Vec<(u32, usize)>,
    /// Where the lead ends and how long the body is.
    pub layout: Layout,
}

thread_local! {
    /// Buffers for [`Rules::tag`], so tagging allocates only its result.
    static SCRATCH: RefCell<Evaluation> = RefCell::default();
}

/// Scratch buffers larger than this are dropped after use, so one huge item
/// does not pin its memory for the life of the thread.
const SCRATCH_KEEP_BYTES: usize = 1 << 20;

impl Rules {
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

    /// Builds the public result from an evaluation.
    pub(crate) fn tagging(&self, doc: &Document, eval: &Evaluation) -> Tagging<'_> {
        // Sized once for most items: no more tags than given, no more
        // matches than occurrences picked (capped: a huge item grows).
        let given = eval.outcomes.iter().filter(|o| o.given).count();
        let mut tags = Vec::with_capacity(given);
        let mut matches: Vec<TermMatch> =
            Vec::with_capacity(if given == 0 { 0 } else { eval.picked.len().min(256) });
        // Which (term, field) pairs the current tag has listed: a bit each
        // (made only for an item given a tag, as most items are not).
        let mut seen = if given == 0 {
            Vec::new()
        } else {
            vec![0u64; (self.terms.len() * Field::ALL.len()).div_ceil(64)]
        };
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
    pub(super) fn evaluate_into(&self, doc: &Document, eval: &mut Evaluation) {
        let Evaluation {
            texts,
            occurrences,
            outcomes,
            evidence,
            picked,
            hits,
            excepts,
            window,
            layout: layout_out,
        } = eval;
        occurrences.clear();
        hits.reset(self.scored_vocabs);
        let mut may_void = false;
        for field in Field::ALL {
            let text = &mut texts[field as usize];
            normalise_into(doc.field(field), text, Some(&self.starters));
            may_void |= self.find(text, field, occurrences, hits);
        }
        if may_void {
            self.void_excepted(occurrences, excepts, hits);
        }
        outcomes.clear();
        evidence.clear();
        picked.clear();
        let content = &texts[Field::Content as usize];
        let layout = Layout::new(
            &self.scoring.salience,
            texts[Field::Summary as usize].word_count(),
            content.word_count(),
            content.paragraph_starts(),
        );
        *layout_out = layout;
        for t in 0..self.tags.len() {
            let outcome = self.score_tag(
                t,
                hits,
                &layout,
                content.paragraph_starts(),
                outcomes,
                evidence,
                picked,
                window,
            );
            outcomes.push(outcome);
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
        let (start, end) = norm.original_span(occ.start as usize, occ.end as usize);
        let mut start = start.min(original.len());
        while !original.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = end.clamp(start, original.len());
        while !original.is_char_boundary(end) {
            end += 1;
        }
        (start, end)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the tagger's unit tests.

    use std::path::Path;

    use crate::tag::{Document, Rules, Tagging};

    pub(crate) fn rules(text: &str) -> Rules {
        match Rules::from_toml(text, Path::new("test-rules.toml")) {
            Ok((r, _)) => r,
            Err(p) => panic!("rules do not compile:\n{p}"),
        }
    }

    pub(crate) fn doc<'a>(title: &'a str, summary: &'a str, content: &'a str) -> Document<'a> {
        Document {
            title,
            summary,
            content,
        }
    }

    pub(crate) fn title<'r>(r: &'r Rules, t: &str) -> Tagging<'r> {
        r.tag(&doc(t, "", ""))
    }

    pub(crate) const ONE_TAG: &str = r#"
        [[tag]]
        name = "t"
        primary = true
        terms = ["Azerbaijan*", "CSTO", "Zas", "Armenian-Azerbaijani border", "Azerbaijan's army", "ОДКБ", "ՀԱՊԿ"]
    "#;

    pub(crate) const CO_OCCURRENCE: &str = r#"
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
}

#[cfg(test)]
mod tests {
    use crate::tag::engine::testing::*;

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
}

//! Scoring: a tag's points from its own terms' mentions and from its
//! rules (co-occurrence within a window of words, or anywhere in the item),
//! weighted by where in the item the hits sit, and whether it reaches its
//! threshold.
//!
//! Where a hit sits is its [`Zone`]: the title; the lead (the summary, or
//! when there is none the body's first `lead_words` words, which count as
//! a summary would); and the body after the lead. Real news names its
//! subject in the headline and the lead, and long bodies carry background
//! paragraphs about other subjects, so the body's points are *salience*
//! weighted: a tag's positive body points count in full up to
//! `body_full`, then with diminishing returns up to `body_max`; and they
//! are scaled by the share of the body's segments (`segment_words` words
//! each) that hold the tag's `subject` terms, in full from `body_share`
//! up. A subject that is one paragraph of twelve adds little; a body that
//! is about the subject adds up to `body_max`. The adjustment is itself a
//! piece of evidence, so `--explain` shows it.

use std::ops::Range;

use super::Field;
use super::compile::Rules;
use super::matching::{Hits, VocabHit};
use super::rules::Salience;

/// Where in an item a hit sits, for its weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zone {
    Title,
    Summary,
    /// The body's first words, standing in for a missing summary.
    Lead,
    /// The body after the lead.
    Body,
}

impl Zone {
    const ALL: [Zone; 4] = [Zone::Title, Zone::Summary, Zone::Lead, Zone::Body];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Zone::Title => "title",
            Zone::Summary => "summary",
            Zone::Lead => "lead",
            Zone::Body => "body",
        }
    }

    /// The field the zone's text is in.
    fn field(self) -> Field {
        match self {
            Zone::Title => Field::Title,
            Zone::Summary => Field::Summary,
            Zone::Lead | Zone::Body => Field::Content,
        }
    }
}

/// The shape of one item's text that scoring needs.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Layout {
    /// Content words before this index are the lead (0 with a summary).
    pub lead_end: u32,
    /// Words in the body after the lead.
    pub body_words: u32,
}

impl Layout {
    /// The layout of an item whose summary has this many words and whose
    /// content has `content_words` words, with paragraphs starting at
    /// `paragraphs`. Without a summary the lead is the content's first
    /// paragraph, or its first `lead_words` words when that is shorter (a
    /// first "paragraph" of a few words is a dateline or a byline: the
    /// lead then runs to the next break or `lead_words`).
    pub(crate) fn new(
        salience: &Salience,
        summary_words: u32,
        content_words: u32,
        paragraphs: &[u32],
    ) -> Layout {
        let lead_end = if summary_words == 0 {
            let paragraph_end = paragraphs
                .iter()
                .copied()
                .find(|&start| start >= MIN_LEAD_WORDS)
                .unwrap_or(content_words);
            paragraph_end.min(salience.lead_words).min(content_words)
        } else {
            0
        };
        Layout {
            lead_end,
            body_words: content_words - lead_end,
        }
    }
}

/// A first paragraph shorter than this is not the lead on its own.
const MIN_LEAD_WORDS: u32 = 10;

/// What made a tag's score.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reason {
    /// This many mentions of the tag's own terms in one zone.
    Mentions(usize),
    /// A rule, by index within the tag.
    Rule(usize),
    /// The salience adjustment of the body's points: `raw` points, the
    /// segments holding the subject out of all, and what they became.
    Body {
        raw: f64,
        diminished: f64,
        covered: u32,
        segments: u32,
        /// The segments are the body's paragraphs (else windows of words).
        paragraphs: bool,
        factor: f64,
    },
}

/// One contribution to a tag's score.
#[derive(Debug, Clone)]
pub(crate) struct Evidence {
    pub reason: Reason,
    pub points: f64,
    pub zone: Zone,
    /// Its occurrence indexes, in [`Evaluation::picked`].
    pub(super) occurrences: Range<usize>,
}

/// A tag's score on one item.
#[derive(Debug, Clone)]
pub(crate) struct TagOutcome {
    pub score: f64,
    pub given: bool,
    /// An `unless` term occurred.
    pub vetoed: bool,
    /// Its evidence, in [`Evaluation::evidence`].
    pub(super) evidence: Range<usize>,
}

/// A vocabulary's hits in one zone: a zone's hits are a slice of its
/// field's, cut at the end of the lead.
fn in_zone<'h>(hits: &'h Hits, vocab: usize, zone: Zone, layout: &Layout) -> &'h [VocabHit] {
    let all = hits.in_field(vocab, zone.field());
    let split = || all.partition_point(|h| h.word < layout.lead_end);
    match zone {
        Zone::Title | Zone::Summary => all,
        Zone::Lead => &all[..split()],
        Zone::Body => &all[split()..],
    }
}

/// Body points after diminishing returns: in full up to `full`, then
/// approaching `max`.
pub(crate) fn diminish(raw: f64, full: f64, max: f64) -> f64 {
    if raw <= full {
        raw
    } else if max <= full {
        full
    } else {
        let room = max - full;
        full + room * (1.0 - (-(raw - full) / room).exp())
    }
}

impl Rules {
    /// The weight of a zone's hits.
    fn zone_weight(&self, zone: Zone) -> f64 {
        let fw = self.scoring.field_weights;
        match zone {
            Zone::Title => fw[Field::Title as usize],
            Zone::Summary | Zone::Lead => fw[Field::Summary as usize],
            Zone::Body => fw[Field::Content as usize],
        }
    }

    /// Vocabulary `vocab`'s hit in the heaviest zone among the `allowed`
    /// fields, with that zone and its weight; of equals, the last in field
    /// and word order. Every hit of a zone weighs the same, so only each
    /// zone's last hit is a candidate: a look per zone, not per hit.
    fn heaviest_hit<'h>(
        &self,
        hits: &'h Hits,
        vocab: usize,
        layout: &Layout,
        allowed: impl Fn(Field) -> bool,
    ) -> Option<(&'h VocabHit, f64, Zone)> {
        let mut best: Option<(&VocabHit, f64, Zone)> = None;
        for zone in Zone::ALL {
            if !allowed(zone.field()) {
                continue;
            }
            let Some(last) = in_zone(hits, vocab, zone, layout).last() else {
                continue;
            };
            let w = self.zone_weight(zone);
            // `>=`: a later zone of equal weight wins, as `Iterator::max_by`
            // keeps the last of equal elements.
            if best.is_none_or(|(_, b, _)| w.total_cmp(&b).is_ge()) {
                best = Some((last, w, zone));
            }
        }
        best
    }

    /// Scores tag `t`, appending its evidence to `evidence` and their
    /// occurrence indexes to `picked`. `earlier` holds the outcomes of the
    /// tags before it in the file (for rules that `need` one).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn score_tag(
        &self,
        t: usize,
        hits: &Hits,
        layout: &Layout,
        paragraphs: &[u32],
        earlier: &[TagOutcome],
        evidence: &mut Vec<Evidence>,
        picked: &mut Vec<u32>,
        window: &mut Vec<(u32, usize)>,
    ) -> TagOutcome {
        let tag = &self.tags[t];
        let first_evidence = evidence.len();
        let vetoed = tag.unless.is_some_and(|v| hits.has(v));

        for zone in Zone::ALL {
            if !hits.has_in_field(tag.terms, zone.field()) {
                continue;
            }
            let own = in_zone(hits, tag.terms, zone, layout);
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
                points: mentions as f64 * tag.weight * self.zone_weight(zone),
                zone,
                occurrences: from..picked.len(),
            });
        }

        for (r, rule) in tag.rules.iter().enumerate() {
            if rule
                .needs
                .is_some_and(|n| !earlier.get(n).is_some_and(|o| o.given))
            {
                continue;
            }
            // A slot without a hit anywhere: the rule cannot fire.
            if !rule.slots.iter().all(|&s| hits.has(s)) {
                continue;
            }
            match rule.within {
                Some(within) => {
                    for zone in Zone::ALL {
                        let field = zone.field();
                        if !rule.fields[field as usize]
                            || !rule.slots.iter().all(|&s| hits.has_in_field(s, field))
                        {
                            continue;
                        }
                        if rule.unless.is_some_and(|u| hits.has_in_field(u, field)) {
                            continue;
                        }
                        if rule
                            .slots
                            .iter()
                            .any(|&s| in_zone(hits, s, zone, layout).is_empty())
                        {
                            continue;
                        }
                        // Rules have a few slots: no allocation for up to eight.
                        let mut few: [&[VocabHit]; 8] = [&[]; 8];
                        let many: Vec<&[VocabHit]>;
                        let slots: &[&[VocabHit]] = if rule.slots.len() <= few.len() {
                            for (slot, &s) in few.iter_mut().zip(&rule.slots) {
                                *slot = in_zone(hits, s, zone, layout);
                            }
                            &few[..rule.slots.len()]
                        } else {
                            many = rule
                                .slots
                                .iter()
                                .map(|&s| in_zone(hits, s, zone, layout))
                                .collect();
                            &many
                        };
                        let from = picked.len();
                        if tightest_window(slots, within, picked, window) {
                            evidence.push(Evidence {
                                reason: Reason::Rule(r),
                                points: rule.weight * self.zone_weight(zone),
                                zone,
                                occurrences: from..picked.len(),
                            });
                        }
                    }
                }
                None => {
                    let allowed = |field: Field| rule.fields[field as usize];
                    if rule
                        .unless
                        .is_some_and(|u| Field::ALL.iter().any(|&f| allowed(f) && hits.has_in_field(u, f)))
                    {
                        continue;
                    }
                    // Each slot's best hit is its hit in the heaviest zone;
                    // the rule counts as much as the weakest of those.
                    let from = picked.len();
                    let mut weakest: Option<(f64, Zone)> = None;
                    for &s in &rule.slots {
                        let Some((best, w, zone)) = self.heaviest_hit(hits, s, layout, allowed) else {
                            picked.truncate(from);
                            weakest = None;
                            break;
                        };
                        picked.push(best.occ);
                        if weakest.is_none_or(|(x, _)| w < x) {
                            weakest = Some((w, zone));
                        }
                    }
                    if let Some((w, zone)) = weakest {
                        evidence.push(Evidence {
                            reason: Reason::Rule(r),
                            points: rule.weight * w,
                            zone,
                            occurrences: from..picked.len(),
                        });
                    }
                }
            }
        }

        // Without evidence there are no body points to weigh.
        if evidence.len() > first_evidence {
            self.weigh_body(t, hits, layout, paragraphs, first_evidence, evidence);
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

    /// Adds the salience adjustment of tag `t`'s positive body points (see
    /// the module documentation), when there is one.
    fn weigh_body(
        &self,
        t: usize,
        hits: &Hits,
        layout: &Layout,
        paragraphs: &[u32],
        first_evidence: usize,
        evidence: &mut Vec<Evidence>,
    ) {
        let rules = &self.tags[t].rules;
        let subject = self.tags[t].subject;
        let raw: f64 = evidence[first_evidence..]
            .iter()
            .filter(|e| e.zone == Zone::Body && e.points > 0.0)
            .filter(|e| !matches!(e.reason, Reason::Rule(r) if rules[r].body_in_full))
            .map(|e| e.points)
            .sum();
        if raw <= 0.0 {
            return;
        }
        let s = &self.scoring.salience;
        let diminished = diminish(raw, s.body_full, s.body_max);
        // The body's segments are its paragraphs when it has some, else
        // windows of `segment_words` words.
        let starts = &paragraphs[paragraphs.partition_point(|&p| p <= layout.lead_end)..];
        let by_paragraph = !starts.is_empty();
        let segment_words = s.segment_words.max(1);
        let segments = if by_paragraph {
            starts.len() as u32 + 1
        } else {
            layout.body_words.div_ceil(segment_words).max(1)
        };
        let mut covered = 0;
        let mut last = None;
        // Hits come in word order: the paragraph count only moves forward.
        let mut paragraph = 0;
        for h in in_zone(hits, subject, Zone::Body, layout) {
            let segment = if by_paragraph {
                while starts.get(paragraph).is_some_and(|&p| p <= h.word) {
                    paragraph += 1;
                }
                paragraph as u32
            } else {
                (h.word - layout.lead_end) / segment_words
            };
            if last != Some(segment) {
                covered += 1;
                last = Some(segment);
            }
        }
        let factor = (f64::from(covered) / f64::from(segments) / s.body_share).min(1.0);
        let points = diminished * factor - raw;
        if points.abs() < 1e-9 {
            return;
        }
        evidence.push(Evidence {
            reason: Reason::Body {
                raw,
                diminished,
                covered,
                segments,
                paragraphs: by_paragraph,
                factor,
            },
            points,
            zone: Zone::Body,
            occurrences: 0..0,
        });
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
    // The tightest window so far, `(span, start)`: the first found of the
    // narrowest, starts taken slot by slot in word order.
    let mut best: Option<(u32, u32)> = None;
    let consider = |best: &mut Option<(u32, u32)>, start: u32, last: u32| {
        let span = last - start;
        if span <= within && best.is_none_or(|(b, _)| span < b) {
            *best = Some((span, start));
        }
    };
    if slots.len() <= 8 {
        // The starts of one slot come in word order, so where each slot's
        // hits begin only moves forward: a cursor per slot instead of a
        // binary search per start and slot. Same starts, same order.
        let mut bases = [0usize; 8];
        let mut at = 0;
        for (base, s) in bases.iter_mut().zip(slots) {
            *base = at;
            at += s.len();
        }
        for (f, from) in slots.iter().enumerate() {
            let mut cursors = [0usize; 8];
            'start: for start in from.iter().map(|h| h.word) {
                // A window no narrower than the best so far (or wider than
                // `within`) is not taken, and each slot only widens it:
                // stop looking as soon as it is. A slot skipped here has
                // its cursor caught up at the next start. The start's own
                // slot comes last: its hit there is the start itself, which
                // seldom widens the window, so the others stop it sooner.
                let bound = best.map_or(within, |(span, _)| span.saturating_sub(1).min(within));
                let mut last = start;
                for k in 1..=slots.len() {
                    let j = (f + k) % slots.len();
                    let (Some(s), Some(cursor), Some(&base)) =
                        (slots.get(j), cursors.get_mut(j), bases.get(j))
                    else {
                        continue;
                    };
                    while s.get(*cursor).is_some_and(|h| h.word < start) {
                        *cursor += 1;
                    }
                    let Some(&(end, _)) = suffix_min.get(base + *cursor).filter(|_| *cursor < s.len()) else {
                        // No hit of this slot from here: nor from any later start.
                        break 'start;
                    };
                    last = last.max(end);
                    if last - start > bound {
                        continue 'start;
                    }
                }
                consider(&mut best, start, last);
            }
        }
    } else {
        for start in slots.iter().flat_map(|s| s.iter().map(|h| h.word)) {
            if let Some(last) = window(start, None) {
                consider(&mut best, start, last);
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
    use super::{VocabHit, diminish, tightest_window};
    use crate::tag::engine::testing::*;

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
        // With a summary, the content is all body.
        let once = r.tag(&doc("", "A summary.", "The CSTO was mentioned once."));
        assert!(!once.relevant);
        assert_eq!(once.score, 0.5);
        assert!(
            r.tag(&doc("", "A summary.", "The CSTO ... and later the CSTO again."))
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
            "A summary.",
            "the Collective Security Treaty Organization (CSTO) met",
        ));
        assert_eq!(t.score, 0.5);
        assert!(!t.relevant);
    }

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

    /// A body of `n` paragraphs of filler, with `mention` in the ones `about` picks.
    fn body(n: usize, about: impl Fn(usize) -> bool, mention: &str) -> String {
        (0..n)
            .map(|i| {
                let filler = "The ministry said the plan would be discussed again next week by officials";
                if about(i) {
                    format!("{filler} and {mention}.")
                } else {
                    format!("{filler}.")
                }
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    const KARABAKH: &str = r#"
        [[tag]]
        name = "t"
        primary = true
        terms = ["Karabakh"]
    "#;

    #[test]
    fn a_subject_in_one_paragraph_of_twelve_does_not_pass_a_body_about_it_does() {
        let r = rules(KARABAKH);
        let summary = "Officials met on Monday.";
        let background = body(
            12,
            |i| i == 7,
            "Karabakh was mentioned, Karabakh again, and Karabakh",
        );
        let t = r.tag(&doc("Budget talks", summary, &background));
        assert!(!t.relevant, "{t:?}");
        assert!(
            t.score < 0.5,
            "three mentions in one paragraph of twelve: {}",
            t.score
        );
        let about = body(12, |i| i % 3 != 1, "Karabakh");
        let t = r.tag(&doc("Budget talks", summary, &about));
        assert!(t.relevant, "{t:?}");
        // Diminishing returns: eight body mentions are not worth four title ones.
        assert!(t.score < 2.0, "{}", t.score);
    }

    #[test]
    fn without_a_summary_the_first_paragraph_is_the_lead() {
        let r = rules(KARABAKH);
        let first = "Talks on Karabakh resumed in Washington on Monday, officials from both sides said.";
        let content = format!("{first}\n\n{}", body(6, |_| false, ""));
        let t = r.tag(&doc("Talks resume", "", &content));
        assert_eq!(t.score, 1.0, "a lead mention counts as a summary one");
        let t = r.tag(&doc("Talks resume", "A summary.", &content));
        assert!(!t.relevant, "with a summary the same paragraph is body: {t:?}");
        // A dateline is not the lead on its own: the lead runs to the next break.
        let t = r.tag(&doc("Talks resume", "", &format!("YEREVAN —\n{content}")));
        assert_eq!(t.score, 1.0);
    }

    #[test]
    fn diminishing_returns_are_full_then_approach_the_cap() {
        assert_eq!(diminish(0.75, 1.0, 2.0), 0.75);
        assert_eq!(diminish(1.0, 1.0, 2.0), 1.0);
        let more = diminish(1.5, 1.0, 2.0);
        assert!(more > 1.3 && more < 1.5, "{more}");
        assert!(diminish(50.0, 1.0, 2.0) <= 2.0);
        assert_eq!(diminish(3.0, 1.0, 1.0), 1.0);
    }

    const NEEDS: &str = r#"
        [lists]
        az = ["Azerbaijan*"]
        war = ["attack*"]
        [[tag]]
        name = "csto"
        primary = true
        terms = ["CSTO"]
        [[tag]]
        name = "aa"
        primary = true
        [[tag.rule]]
        all = ["@csto", "@az", "@war"]
        within = 20
        needs = "csto"
        body_in_full = true
        weight = 2.0
    "#;

    #[test]
    fn a_rule_that_needs_a_tag_fires_only_with_it_and_can_count_in_full_in_the_body() {
        let r = rules(NEEDS);
        let justification = "the CSTO stayed silent when Azerbaijani troops attacked";
        let long = format!("{}\n\n{justification}", body(10, |_| false, ""));
        let t = r.tag(&doc(
            "Armenia and the CSTO",
            "Yerevan says the CSTO failed it.",
            &long,
        ));
        assert_eq!(t.tags, vec!["csto", "aa"], "{t:?}");
        // Not about the CSTO: the same passage is background, and the rule does not fire.
        let t = r.tag(&doc("Budget talks", "Officials met on Monday.", &long));
        assert!(!t.tags.contains(&"aa"), "{t:?}");
    }

    /// The tightest window by its definition: every start of every slot,
    /// slot by slot in word order, each slot's hit ending first from there,
    /// the first of the narrowest kept.
    fn tightest_by_definition(slots: &[&[VocabHit]], within: u32) -> Option<Vec<u32>> {
        let window = |start: u32| -> Option<(u32, Vec<u32>)> {
            let mut last = start;
            let mut picked = Vec::new();
            for s in slots {
                let hit = s
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| h.word >= start)
                    .rev()
                    .min_by_key(|(_, h)| h.word_end)?;
                last = last.max(hit.1.word_end);
                picked.push(s[hit.0].occ);
            }
            Some((last, picked))
        };
        let mut best: Option<(u32, Vec<u32>)> = None;
        for s in slots {
            for h in s.iter() {
                if let Some((last, picked)) = window(h.word) {
                    let span = last - h.word;
                    if span <= within && best.as_ref().is_none_or(|(b, _)| span < *b) {
                        best = Some((span, picked));
                    }
                }
            }
        }
        best.map(|(_, picked)| picked)
    }

    #[test]
    fn the_tightest_window_is_the_first_of_the_narrowest() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % u64::from(n)) as u32
        };
        let mut found = 0;
        let mut scratch = Vec::new();
        for _ in 0..20_000 {
            let slot_count = 1 + next(4) as usize;
            let spread = 1 + next(60);
            let mut slots: Vec<Vec<VocabHit>> = Vec::new();
            let mut occ = 0;
            for _ in 0..slot_count {
                let mut words: Vec<(u32, u32)> = (0..next(7))
                    .map(|_| {
                        let word = next(spread);
                        (word, word + next(3))
                    })
                    .collect();
                words.sort_unstable();
                slots.push(
                    words
                        .into_iter()
                        .map(|(word, word_end)| {
                            occ += 1;
                            VocabHit { word, word_end, occ }
                        })
                        .collect(),
                );
            }
            let slots: Vec<&[VocabHit]> = slots.iter().map(Vec::as_slice).collect();
            let within = next(12);
            let mut picked = Vec::new();
            let fits = tightest_window(&slots, within, &mut picked, &mut scratch);
            let expected = tightest_by_definition(&slots, within);
            assert_eq!(fits.then_some(picked), expected, "{slots:?} within {within}");
            found += usize::from(fits);
        }
        assert!(found > 2_000, "windows found: {found}");
    }
}

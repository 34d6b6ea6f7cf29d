//! Scoring: a tag's points from its own terms' mentions and from its
//! rules (co-occurrence within a window of words, or anywhere in the item),
//! weighted by field, and whether it reaches its threshold.

use std::ops::Range;

use super::Field;
use super::compile::Rules;
use super::matching::{Hits, VocabHit};

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

impl Rules {
    /// Scores tag `t`, appending its evidence to `evidence` and their
    /// occurrence indexes to `picked`.
    pub(super) fn score_tag(
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
}

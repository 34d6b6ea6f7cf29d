//! Matching: every term occurrence in an item's normalised fields,
//! `except` phrases and entity names voiding the hits they cover, and the
//! live hits grouped by vocabulary and field for scoring.
//!
//! The automaton (`trie`) finds every term at every word, overlapping ones
//! included ("Armenian-Azerbaijani" counts for the phrase and for both
//! words) — what an overlapping Aho–Corasick search finds, several times
//! faster on normalised text. It is walked only from the words that the
//! normaliser's `WordFilter` admits (a pattern's first words, and words a
//! one-word stem begins), about a third of the words of running text. The
//! normaliser leaves words separated by single spaces with a space at each
//! end, and each pattern is the term with a space before it and (unless it
//! is a stem) after it: so every hit is a whole-word hit, and a hit's word
//! index is the index of the word start it was found from.

use super::Field;
use super::compile::Rules;
use super::normalise::Normalised;
use super::rules::EntityTermKind;

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
pub(super) struct VocabHit {
    pub(super) word: u32,
    pub(super) word_end: u32,
    pub(super) occ: u32,
}

/// Live hits grouped by vocabulary and, within one, by field: one list
/// per group, appended to as the automaton reports hits, so a hit is
/// written once, already routed, and the lists come out in field and word
/// order because the fields are searched in order, each from its first word.
#[derive(Debug, Clone, Default)]
pub(super) struct Hits {
    /// Group `g` (see [`Hits::group`]) is `groups[g]`.
    groups: Vec<Vec<VocabHit>>,
    /// A bit per group that holds a hit: which lists need clearing for the
    /// next item, and which vocabularies scoring can pass over unread.
    present: Vec<u64>,
}

impl Hits {
    /// The group of vocabulary `vocab`'s hits in `field`; a vocabulary's
    /// groups are consecutive, in field order.
    #[inline]
    pub(super) fn group(vocab: usize, field: Field) -> usize {
        vocab * Field::ALL.len() + field as usize
    }

    /// Empties every group, and makes room for `vocabs` vocabularies' groups.
    pub(super) fn reset(&mut self, vocabs: usize) {
        for (w, word) in self.present.iter_mut().enumerate() {
            let mut bits = *word;
            while bits != 0 {
                if let Some(list) = self.groups.get_mut(w * 64 + bits.trailing_zeros() as usize) {
                    list.clear();
                }
                bits &= bits - 1;
            }
            *word = 0;
        }
        let groups = vocabs * Field::ALL.len();
        if self.groups.len() != groups {
            self.groups.resize_with(groups, Vec::new);
            self.present.resize(groups.div_ceil(64), 0);
        }
    }

    /// Appends a hit to group `group`.
    #[inline]
    fn push(&mut self, group: usize, hit: VocabHit) {
        if let (Some(list), Some(word)) = (self.groups.get_mut(group), self.present.get_mut(group / 64)) {
            list.push(hit);
            *word |= 1 << (group % 64);
        }
    }

    /// Whether group `group` holds a hit.
    #[inline]
    fn is_present(&self, group: usize) -> bool {
        self.present
            .get(group / 64)
            .is_some_and(|w| w & (1 << (group % 64)) != 0)
    }

    /// Whether vocabulary `vocab` has a hit in any field.
    #[inline]
    pub(super) fn has(&self, vocab: usize) -> bool {
        Field::ALL.iter().any(|&f| self.is_present(Hits::group(vocab, f)))
    }

    /// Whether vocabulary `vocab` has a hit in `field`.
    #[inline]
    pub(super) fn has_in_field(&self, vocab: usize, field: Field) -> bool {
        self.is_present(Hits::group(vocab, field))
    }

    /// Vocabulary `vocab`'s hits in `field`, in word order.
    #[inline]
    pub(super) fn in_field(&self, vocab: usize, field: Field) -> &[VocabHit] {
        self.groups
            .get(Hits::group(vocab, field))
            .map_or(&[], Vec::as_slice)
    }

    /// Takes out of every group the hits of occurrences voided after they
    /// were grouped.
    fn drop_void(&mut self, occurrences: &[Occurrence]) {
        for (w, word) in self.present.iter_mut().enumerate() {
            let mut bits = *word;
            while bits != 0 {
                let bit = bits.trailing_zeros();
                bits &= bits - 1;
                let Some(list) = self.groups.get_mut(w * 64 + bit as usize) else {
                    continue;
                };
                list.retain(|h| occurrences.get(h.occ as usize).is_some_and(|o| !o.void));
                if list.is_empty() {
                    *word &= !(1 << bit);
                }
            }
        }
    }
}

impl Rules {
    /// Every term occurrence in one normalised field, ordered by first
    /// word, then by last word, then by end, appended to `out`, and each
    /// seen through the scored vocabularies its term belongs to, appended
    /// to `hits`. Returns whether a term that may void others (an `except`
    /// phrase, an entity's name) was found.
    pub(super) fn find(
        &self,
        text: &Normalised,
        field: Field,
        out: &mut Vec<Occurrence>,
        hits: &mut Hits,
    ) -> bool {
        let bytes = text.padded();
        let mut may_void = false;
        // Each hit becomes its occurrences and vocabulary hits where the
        // walk reports it, inside the walk's loop: a list of hits written
        // by the walks and read back after cost 7 % of the seeds' tagging
        // time once the walk was the lean double-array step.
        for &(from, word) in text.candidates() {
            self.automaton.walk(bytes, from as usize, |p, _| {
                let Some(&shape) = self.pattern_shape.get(p as usize) else {
                    return;
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
                let word_end = word + shape.words - 1;
                for &t in self.pattern_terms.row(p as usize) {
                    let occ = out.len() as u32;
                    out.push(Occurrence {
                        term: t,
                        field,
                        start: start as u32,
                        end: stop as u32,
                        word,
                        word_end,
                        void: false,
                    });
                    may_void |= self.is_except_term.get(t as usize).copied().unwrap_or(false);
                    for &v in self.term_vocabs.row(t as usize) {
                        hits.push(Hits::group(v as usize, field), VocabHit { word, word_end, occ });
                    }
                }
            });
        }
        may_void
    }

    /// Voids occurrences covered by (or just after) an `except` phrase of
    /// the tag that owns the term, and every occurrence an entity's name
    /// overlaps ("Zangezur" in "Zangezur Copper-Molybdenum Combine"), or
    /// an entity's short name overlaps when one of its names or context
    /// terms occurs in the item ("Qarabag" in an item about the Champions
    /// League). Entity hits are void themselves: they count for no tag.
    /// The hits of voided occurrences are taken out of `hits`.
    pub(super) fn void_excepted(
        &self,
        occurrences: &mut [Occurrence],
        phrases_found: &mut Vec<Occurrence>,
        hits: &mut Hits,
    ) {
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
        // Entities named (or whose context occurs) in the item; allocates
        // only for items with an entity's term.
        let present: Vec<u32> = phrases_found
            .iter()
            .filter_map(|p| self.terms[p.term as usize].entity)
            .filter(|e| e.kind != EntityTermKind::Short)
            .map(|e| e.entity)
            .collect();
        let mut grouped_void = false;
        // Entity hits are void themselves.
        if phrases_found
            .iter()
            .any(|p| self.terms[p.term as usize].entity.is_some())
        {
            for o in occurrences.iter_mut() {
                if self.terms[o.term as usize].entity.is_some() {
                    o.void = true;
                    grouped_void |= !self.term_vocabs.row(o.term as usize).is_empty();
                }
            }
        }
        // Keep the hits that void: except phrases, entity names, and short
        // names of entities present.
        phrases_found.retain(|p| match self.terms[p.term as usize].entity {
            Some(e) => match e.kind {
                EntityTermKind::Name => true,
                EntityTermKind::Short => present.contains(&e.entity),
                EntityTermKind::Context => false,
            },
            None => true,
        });
        // A phrase can void only the occurrences of its field whose words
        // meet its own (hits cover whole words, so byte ranges overlap
        // exactly when word ranges do) or start at most `before` words
        // after it: occurrences are in field and word order, so those are
        // one run, found by a binary search, not a pass over every hit.
        for p in phrases_found.iter() {
            let p_entity = self.terms[p.term as usize].entity.is_some();
            let lowest = p.word.saturating_sub(self.max_pattern_words.saturating_sub(1));
            let highest = p
                .word_end
                .saturating_add(1)
                .saturating_add(self.max_except_before);
            let from = occurrences.partition_point(|o| (o.field, o.word) < (p.field, lowest));
            for o in occurrences[from..].iter_mut() {
                if o.field != p.field || o.word > highest {
                    break;
                }
                let term = &self.terms[o.term as usize];
                if term.entity.is_some() {
                    continue;
                }
                let overlaps = p.start < o.end && o.start < p.end;
                let excepted = term.except.is_some_and(|except| {
                    self.vocabs[except.vocab]
                        .binary_search(&(p.term as usize))
                        .is_ok()
                        && (overlaps
                            || (p.end <= o.start && o.word.saturating_sub(p.word_end + 1) <= except.before))
                });
                if (p_entity && overlaps) || excepted {
                    o.void = true;
                    grouped_void |= !self.term_vocabs.row(o.term as usize).is_empty();
                }
            }
        }
        if grouped_void {
            hits.drop_void(occurrences);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tag::engine::testing::*;
    use std::path::Path;

    use crate::tag::normalise::normalise_into;

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

    /// The occurrences found in `text` as its title, normalised with or
    /// without the word filter.
    fn found(r: &Rules, text: &str, filtered: bool) -> Vec<(u32, u32, u32, u32, u32)> {
        let mut norm = Normalised::default();
        normalise_into(text, &mut norm, filtered.then_some(&r.starters));
        let mut out = Vec::new();
        let mut hits = Hits::default();
        hits.reset(r.scored_vocabs);
        r.find(&norm, Field::Title, &mut out, &mut hits);
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
        let mut next = super::super::test_rng();
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

    /// `void_excepted` by its definition: every occurrence checked against
    /// every voiding phrase of the item.
    fn void_by_definition(r: &Rules, occurrences: &mut [Occurrence]) {
        let found: Vec<Occurrence> = occurrences
            .iter()
            .filter(|o| r.is_except_term[o.term as usize])
            .copied()
            .collect();
        let present: Vec<u32> = found
            .iter()
            .filter_map(|p| r.terms[p.term as usize].entity)
            .filter(|e| e.kind != EntityTermKind::Short)
            .map(|e| e.entity)
            .collect();
        let phrases: Vec<Occurrence> = found
            .into_iter()
            .filter(|p| match r.terms[p.term as usize].entity {
                Some(e) => match e.kind {
                    EntityTermKind::Name => true,
                    EntityTermKind::Short => present.contains(&e.entity),
                    EntityTermKind::Context => false,
                },
                None => true,
            })
            .collect();
        for o in occurrences.iter_mut() {
            let term = &r.terms[o.term as usize];
            if term.entity.is_some() {
                o.void = true;
                continue;
            }
            let overlaps = |p: &Occurrence| p.field == o.field && p.start < o.end && o.start < p.end;
            let in_entity = phrases
                .iter()
                .any(|p| r.terms[p.term as usize].entity.is_some() && overlaps(p));
            let excepted = term.except.is_some_and(|except| {
                phrases.iter().any(|p| {
                    p.field == o.field
                        && r.vocabs[except.vocab].binary_search(&(p.term as usize)).is_ok()
                        && (overlaps(p)
                            || (p.end <= o.start && o.word.saturating_sub(p.word_end + 1) <= except.before))
                })
            });
            o.void = in_entity || excepted;
        }
    }

    #[test]
    fn voiding_near_each_phrase_agrees_with_checking_every_pair() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rules.toml");
        let (r, _) = Rules::load(&path).unwrap_or_else(|p| panic!("{p}"));
        // Every term's text (except phrases, entity names and context
        // terms among them), a stem with an ending, and filler.
        let mut phrases: Vec<String> = r.terms.iter().map(|t| t.pattern.clone()).collect();
        phrases.extend(
            r.terms
                .iter()
                .filter(|t| t.wildcard)
                .map(|t| format!("{}ian", t.pattern)),
        );
        phrases.extend(["the", "of", "and", "said", "x"].map(String::from));
        let separators = [" ", " ", ", ", " - ", ". ", "\n"];
        let mut next = super::super::test_rng();
        let (mut voided, mut kept) = (0, 0);
        for _ in 0..4000 {
            let mut fields: Vec<String> = Vec::new();
            for _ in 0..3 {
                let mut text = String::new();
                for _ in 0..next(14) {
                    text.push_str(&phrases[next(phrases.len())]);
                    text.push_str(separators[next(separators.len())]);
                }
                fields.push(text);
            }
            let mut occurrences = Vec::new();
            let mut hits = Hits::default();
            hits.reset(r.scored_vocabs);
            for (field, text) in Field::ALL.into_iter().zip(&fields) {
                let mut norm = Normalised::default();
                normalise_into(text, &mut norm, Some(&r.starters));
                r.find(&norm, field, &mut occurrences, &mut hits);
            }
            let mut expected = occurrences.clone();
            void_by_definition(&r, &mut expected);
            r.void_excepted(&mut occurrences, &mut Vec::new(), &mut hits);
            let got: Vec<bool> = occurrences.iter().map(|o| o.void).collect();
            let want: Vec<bool> = expected.iter().map(|o| o.void).collect();
            assert_eq!(got, want, "{fields:?}");
            voided += want.iter().filter(|&&v| v).count();
            kept += want.iter().filter(|&&v| !v).count();
        }
        assert!(voided > 1000 && kept > 1000, "voided {voided}, kept {kept}");
    }

    const ENTITIES: &str = r#"
        [[tag]]
        name = "aa"
        primary = true
        terms = ["Zangezur", "Qarabag", "Karabakh"]
        [[entity]]
        name = "the combine"
        names = ["Zangezur Copper-Molybdenum Combine", "ZCMC"]
        [[entity]]
        name = "the club"
        names = ["Qarabag FK"]
        short = ["Qarabag"]
        context = ["Champions League"]
    "#;

    #[test]
    fn entity_names_void_the_hits_they_overlap_for_every_tag() {
        let r = rules(ENTITIES);
        assert!(!title(&r, "Zangezur Copper–Molybdenum Combine posts record profit").relevant);
        assert!(title(&r, "Aliyev renews demand for a Zangezur corridor").relevant);
        assert!(
            title(&r, "ZCMC pays record taxes; Zangezur corridor talks stall").relevant,
            "a name voids only what it overlaps"
        );
        let t = title(&r, "Zangezur Copper-Molybdenum Combine");
        assert!(
            t.matches.is_empty(),
            "entity hits are not matches of any tag: {t:?}"
        );
    }

    #[test]
    fn short_names_are_the_entity_only_where_its_name_or_context_occurs() {
        let r = rules(ENTITIES);
        assert!(
            !r.tag(&doc(
                "Qarabag beat Benfica",
                "A Champions League night in Lisbon.",
                ""
            ))
            .relevant
        );
        assert!(
            !r.tag(&doc("Qarabag win again", "Qarabag FK top the league.", ""))
                .relevant
        );
        assert!(title(&r, "Qarabag region to get new roads").relevant);
        assert!(
            r.tag(&doc(
                "Karabakh war veterans watch Qarabag",
                "A Champions League night.",
                ""
            ))
            .relevant,
            "the short name is voided, other terms are not"
        );
    }

    #[test]
    fn a_suffix_after_a_hyphen_leaves_the_abbreviation_a_word() {
        let r = rules(ONE_TAG);
        for t in [
            "ՀԱՊԿ-ը",
            "ՀԱՊԿ-ի որոշումը",
            "ՀԱՊԿ֊ից",
            "ՀԱՊԿ–ում",
            "ОДКБ-шный саммит",
            "CSTO-led",
        ] {
            assert!(title(&r, t).relevant, "{t}");
        }
    }
}

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

/// Live hits grouped by vocabulary and, within one, by field.
#[derive(Debug, Clone, Default)]
pub(super) struct Hits {
    pub(super) hits: Vec<VocabHit>,
    /// Group `g` (see [`Hits::group`]) is `hits[offsets[g]..offsets[g + 1]]`.
    pub(super) offsets: Vec<u32>,
}

impl Hits {
    /// The group of vocabulary `vocab`'s hits in `field`; a vocabulary's
    /// groups are consecutive, in field order.
    pub(super) fn group(vocab: usize, field: Field) -> usize {
        vocab * Field::ALL.len() + field as usize
    }

    pub(super) fn groups(&self, from: usize, to: usize) -> &[VocabHit] {
        match (self.offsets.get(from), self.offsets.get(to)) {
            (Some(&a), Some(&b)) => self.hits.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Vocabulary `vocab`'s hits, in field and word order.
    pub(super) fn of(&self, vocab: usize) -> &[VocabHit] {
        self.groups(
            Hits::group(vocab, Field::Title),
            Hits::group(vocab + 1, Field::Title),
        )
    }

    /// Vocabulary `vocab`'s hits in `field`, in word order.
    pub(super) fn in_field(&self, vocab: usize, field: Field) -> &[VocabHit] {
        let g = Hits::group(vocab, field);
        self.groups(g, g + 1)
    }
}

impl Rules {
    /// Every term occurrence in one normalised field, ordered by first
    /// word, then by last word, then by end.
    pub(super) fn find(
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
    /// the tag that owns the term, and every occurrence an entity's name
    /// overlaps ("Zangezur" in "Zangezur Copper-Molybdenum Combine"), or
    /// an entity's short name overlaps when one of its names or context
    /// terms occurs in the item ("Qarabag" in an item about the Champions
    /// League). Entity hits are void themselves: they count for no tag.
    pub(super) fn void_excepted(&self, occurrences: &mut [Occurrence], phrases_found: &mut Vec<Occurrence>) {
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
        for o in occurrences.iter_mut() {
            let term = &self.terms[o.term as usize];
            if term.entity.is_some() {
                o.void = true;
                continue;
            }
            let overlaps = |p: &Occurrence| p.field == o.field && p.start < o.end && o.start < p.end;
            let in_entity = phrases_found
                .iter()
                .any(|p| self.terms[p.term as usize].entity.is_some() && overlaps(p));
            let excepted = term.except.is_some_and(|except| {
                let phrases = &self.vocabs[except.vocab];
                phrases_found.iter().any(|p| {
                    p.field == o.field
                        && phrases.binary_search(&(p.term as usize)).is_ok()
                        && (overlaps(p)
                            || (p.end <= o.start && o.word.saturating_sub(p.word_end + 1) <= except.before))
                })
            });
            o.void = in_entity || excepted;
        }
    }

    /// The live occurrences seen through every vocabulary they belong to,
    /// grouped by vocabulary, each group in field and word order.
    pub(super) fn vocab_hits(&self, occurrences: &[Occurrence], out: &mut Hits) {
        let Hits { hits, offsets } = out;
        // One group per vocabulary and field, so a field's hits need no
        // search. A counting sort: group `g`'s count goes to `offsets[g +
        // 2]`, so after the running sum `offsets[g + 1]` is where group `g`
        // starts, and filling moves it on to where `g` ends: `offsets[g]
        // .. offsets[g + 1]`, with no second cursor array.
        let groups = self.scored_vocabs * Field::ALL.len();
        offsets.clear();
        offsets.resize(groups + 2, 0);
        for o in occurrences.iter().filter(|o| !o.void) {
            for &v in self.term_vocabs.row(o.term as usize) {
                offsets[Hits::group(v as usize, o.field) + 2] += 1;
            }
        }
        for g in 0..groups {
            offsets[g + 2] += offsets[g + 1];
        }
        let empty = VocabHit {
            word: 0,
            word_end: 0,
            occ: 0,
        };
        hits.clear();
        hits.resize(offsets[groups + 1] as usize, empty);
        for (i, o) in occurrences.iter().enumerate() {
            if o.void {
                continue;
            }
            for &v in self.term_vocabs.row(o.term as usize) {
                let at = &mut offsets[Hits::group(v as usize, o.field) + 1];
                hits[*at as usize] = VocabHit {
                    word: o.word,
                    word_end: o.word_end,
                    occ: i as u32,
                };
                *at += 1;
            }
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

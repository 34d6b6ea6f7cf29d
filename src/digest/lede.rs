//! The one-line lede under a story's headline: the first sentence of a
//! feed's summary, so a reader can decide from headline plus lede.
//!
//! Only the feed's own summary is used, never the article text fetched
//! from the page (that is for tagging, never posted). Sentences are found
//! by Unicode's sentence rules (UAX #29, which also know the Armenian full
//! stop `։`), plus one guard those rules lack: a sentence never ends at an
//! initial or a common abbreviation ("U.S.", "Gen.", "N."), which are
//! frequent in news leads.

use unicode_segmentation::UnicodeSegmentation;

/// A lede is at most this many characters (with the "…" of a cut).
pub const MAX_LEDE_CHARS: usize = 200;

/// The lede `summary` gives under `title`: its first sentence, cut at a
/// word boundary when longer than [`MAX_LEDE_CHARS`]; the second sentence
/// when the first only repeats the headline. `None` when nothing is left.
pub fn lede(summary: &str, title: &str) -> Option<String> {
    let text = summary.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut sentence = first_sentence(&text);
    if same_words(sentence, title) {
        // Many feeds open the summary with the headline: the next sentence says more.
        let rest = &text[sentence.len()..];
        sentence = first_sentence(rest);
    }
    let sentence = sentence.trim();
    if sentence.is_empty() || same_words(sentence, title) {
        return None;
    }
    Some(cut_at_word(sentence, MAX_LEDE_CHARS))
}

/// The first sentence of `text` (all of it when it has one sentence).
fn first_sentence(text: &str) -> &str {
    let mut end = 0;
    for (start, sentence) in text.split_sentence_bound_indices() {
        end = start + sentence.len();
        // Past the cut there is no point looking for the real end.
        if !ends_in_abbreviation(text[..end].trim_end()) || end > MAX_LEDE_CHARS * 4 {
            break;
        }
    }
    &text[..end]
}

/// Whether `text` ends in an initial or abbreviation, whose full stop does
/// not end a sentence.
fn ends_in_abbreviation(text: &str) -> bool {
    const ABBREVIATIONS: &[&str] = &[
        "mr", "mrs", "ms", "dr", "prof", "gen", "col", "lt", "maj", "capt", "sgt", "adm", "sen", "rep",
        "gov", "pres", "st", "jr", "sr", "no", "vs", "approx", "jan", "feb", "mar", "apr", "jun", "jul",
        "aug", "sep", "sept", "oct", "nov", "dec",
    ];
    let Some(word) = text.strip_suffix('.') else {
        return false;
    };
    let last = word
        .rsplit(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or(word);
    let mut letters = last.chars();
    let single_letter = letters.next().is_some_and(char::is_alphabetic) && letters.next().is_none();
    single_letter || last.contains('.') || ABBREVIATIONS.contains(&last.to_lowercase().as_str())
}

/// Whether two texts say the same words (case, punctuation and spacing aside).
fn same_words(a: &str, b: &str) -> bool {
    let words = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    words(a) == words(b)
}

/// `text` cut to at most `max` characters at the last word boundary that
/// fits, ending in "…" (at a character when one word is longer than half
/// of `max`).
fn cut_at_word(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let room: String = text.chars().take(max - 1).collect();
    let at_word = match room.rfind(' ') {
        Some(space) if room[..space].chars().count() >= max / 2 => &room[..space],
        _ => room.as_str(),
    };
    let trimmed = at_word.trim_end_matches(|c: char| c.is_whitespace() || ",;:—–-(".contains(c));
    format!("{trimmed}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_sentence_of_the_summary() {
        assert_eq!(
            lede(
                "Troops fired on posts near Sotk overnight.  Nobody was hurt. The ministry said more.",
                "Shooting at Sotk"
            )
            .as_deref(),
            Some("Troops fired on posts near Sotk overnight.")
        );
        assert_eq!(
            lede("Вчера в Минске прошла встреча. Армения не участвовала.", "t").as_deref(),
            Some("Вчера в Минске прошла встреча.")
        );
        assert_eq!(
            lede("Երեկ Մինսկում հանդիպում է եղել։ Հայաստանը չի մասնակցել։", "t").as_deref(),
            Some("Երեկ Մինսկում հանդիպում է եղել։")
        );
    }

    #[test]
    fn initials_and_abbreviations_do_not_end_a_sentence() {
        assert_eq!(
            lede(
                "U.S. envoy Gen. J. Smith met Pashinyan in Yerevan on Monday. Talks continue.",
                "t"
            )
            .as_deref(),
            Some("U.S. envoy Gen. J. Smith met Pashinyan in Yerevan on Monday.")
        );
    }

    #[test]
    fn a_long_sentence_is_cut_at_a_word_boundary() {
        let long = "The foreign ministers of the member states met in Minsk ".repeat(6) + "today.";
        let cut = lede(&long, "t").unwrap();
        assert!(cut.chars().count() <= MAX_LEDE_CHARS, "{}", cut.chars().count());
        assert!(cut.ends_with("…"), "{cut}");
        let before = cut.trim_end_matches('…');
        assert!(long.starts_with(before), "{cut}");
        assert_eq!(long.as_bytes()[before.len()], b' ', "cut between words: {cut}");

        let one_word = "Ա".repeat(500);
        let cut = lede(&one_word, "t").unwrap();
        assert_eq!(cut.chars().count(), MAX_LEDE_CHARS);
    }

    #[test]
    fn nothing_when_empty_or_only_the_headline_again() {
        assert_eq!(lede("  \n ", "t"), None);
        assert_eq!(
            lede("CSTO summit opens in Minsk.", "CSTO Summit Opens in Minsk"),
            None
        );
        assert_eq!(
            lede(
                "CSTO summit opens in Minsk. Armenia stays away.",
                "CSTO Summit Opens in Minsk"
            )
            .as_deref(),
            Some("Armenia stays away.")
        );
    }
}

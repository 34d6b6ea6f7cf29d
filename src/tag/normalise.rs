//! The text normaliser: one pass that turns a title, summary or body into the
//! form the keyword automaton searches, keeping a map back to the original
//! byte offsets so `--explain` can quote the text as it was written.
//!
//! What it does, in order, per character:
//! - decodes HTML entities (`&amp;`, `&ndash;`, `&#8217;`, `&#x2014;` ...);
//! - applies Unicode NFKC (full-width letters, ligatures, NBSP ...) to each
//!   character together with the combining marks that follow it;
//! - lower-cases (Unicode, so Cyrillic `ОДКБ` and Armenian `ՀԱՊԿ` fold too);
//! - folds every hyphen and dash (`-` `‐` `–` `—` `−` Armenian `֊` ...) to a
//!   space, so "Armenian-Azerbaijani", "Armenian–Azerbaijani" and
//!   "Armenian Azerbaijani" are the same text;
//! - folds typographic quotes to `'` and `"`, drops zero-width characters and
//!   soft hyphens, and collapses every run of white space to one space.
//!
//! Rule terms go through the same function, so a term matches exactly the
//! texts that normalise to it. ASCII text takes a byte-at-a-time fast path;
//! only non-ASCII characters pay for NFKC.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// A normalised text and the way back to the original.
#[derive(Debug, Clone, Default)]
pub struct Normalised {
    text: String,
    /// `(normalised offset, original offset)` wherever the distance between
    /// the two changes; between anchors, offsets advance together.
    anchors: Vec<(usize, usize)>,
}

impl Normalised {
    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The byte offset in the original text that produced the byte at
    /// `offset` in the normalised text. It may fall inside a multi-byte
    /// character of the original; callers that slice must round it to a
    /// character boundary.
    pub fn original_offset(&self, offset: usize) -> usize {
        let i = self.anchors.partition_point(|&(n, _)| n <= offset);
        match i.checked_sub(1).and_then(|i| self.anchors.get(i)) {
            Some(&(n, o)) => o + (offset - n),
            None => offset,
        }
    }
}

/// Normalises `input` (see the module documentation).
pub fn normalise(input: &str) -> Normalised {
    let mut w = Writer {
        out: String::with_capacity(input.len()),
        anchors: vec![(0, 0)],
        delta: 0,
        pending_space: false,
    };
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let next_is_mark = b < 0x80
            && bytes.get(i + 1).is_some_and(|&n| n >= 0x80)
            && input[i + 1..].chars().next().is_some_and(is_combining_mark);
        if b < 0x80 && !next_is_mark {
            match b {
                b'&' => {
                    if let Some((decoded, len)) = decode_entity(&input[i..]) {
                        w.push_cluster(decoded, i);
                        i += len;
                        continue;
                    }
                    w.push_ascii(b, i);
                }
                b'A'..=b'Z' => w.push_ascii(b + 32, i),
                b'-' => w.space(),
                b'`' => w.push_ascii(b'\'', i),
                0..=0x20 | 0x7f => w.space(),
                _ => w.push_ascii(b, i),
            }
            i += 1;
            continue;
        }
        // A non-ASCII character, or an ASCII letter carrying combining marks:
        // NFKC needs the base and its marks together to compose them.
        let start = i;
        let mut chars = input[i..].chars();
        if let Some(c) = chars.next() {
            i += c.len_utf8();
        }
        for c in chars {
            if !is_combining_mark(c) {
                break;
            }
            i += c.len_utf8();
        }
        let cluster = &input[start..i];
        if cluster.chars().nth(1).is_none() && !needs_nfkc(cluster) {
            if let Some(c) = cluster.chars().next() {
                w.push_folded(c, start, true);
            }
        } else {
            let mut first = true;
            for c in cluster.nfkc() {
                w.push_folded(c, start, first);
                first = false;
            }
        }
    }
    w.finish()
}

/// Characters NFKC leaves alone can skip the normaliser's iterator machinery.
fn needs_nfkc(cluster: &str) -> bool {
    !matches!(
        unicode_normalization::is_nfkc_quick(cluster.chars()),
        unicode_normalization::IsNormalized::Yes
    )
}

/// Whether `c` is part of a word for word-boundary checks.
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || (!c.is_ascii() && is_combining_mark(c))
}

struct Writer {
    out: String,
    anchors: Vec<(usize, usize)>,
    delta: isize,
    pending_space: bool,
}

impl Writer {
    /// Notes that the next output byte comes from original offset `from`.
    #[inline]
    fn anchor(&mut self, from: usize) {
        if self.pending_space {
            self.pending_space = false;
            self.anchor_only(from.saturating_sub(1));
            self.out.push(' ');
        }
        self.anchor_only(from);
    }

    #[inline]
    fn anchor_only(&mut self, from: usize) {
        let at = self.out.len();
        let delta = from as isize - at as isize;
        if delta != self.delta {
            self.delta = delta;
            self.anchors.push((at, from));
        }
    }

    #[inline]
    fn push_ascii(&mut self, b: u8, from: usize) {
        self.anchor(from);
        self.out.push(b as char);
    }

    #[inline]
    fn space(&mut self) {
        if !self.out.is_empty() {
            self.pending_space = true;
        }
    }

    /// Pushes one character of NFKC output: lower-cased, dashes, quotes and
    /// white space folded. `first` says whether it starts its cluster, which
    /// is where its offset map anchor goes.
    fn push_folded(&mut self, c: char, from: usize, first: bool) {
        // Turkish and Azerbaijani dotted capital I lower-cases to a plain `i`
        // here, not `i` plus a combining dot, so "XANKƏNDİ" meets "Xankəndi".
        let lower = if c == '\u{130}' {
            'i'.to_lowercase()
        } else {
            c.to_lowercase()
        };
        for c in lower {
            match fold(c) {
                Folded::Char(c) => {
                    if first || self.pending_space {
                        self.anchor(from);
                    }
                    self.out.push(c);
                }
                Folded::Space => self.space(),
                Folded::Nothing => {}
            }
        }
    }

    /// Pushes a decoded entity as if its text had been written in place.
    fn push_cluster(&mut self, decoded: char, from: usize) {
        let mut buf = [0u8; 4];
        let s: &str = decoded.encode_utf8(&mut buf);
        let mut first = true;
        for c in s.nfkc() {
            self.push_folded(c, from, first);
            first = false;
        }
    }

    fn finish(self) -> Normalised {
        Normalised {
            text: self.out,
            anchors: self.anchors,
        }
    }
}

enum Folded {
    Char(char),
    Space,
    Nothing,
}

fn fold(c: char) -> Folded {
    match c {
        // Hyphens and dashes of every kind, including the Armenian hyphen.
        '-'
        | '\u{2010}'..='\u{2015}'
        | '\u{2212}'
        | '\u{2e3a}'
        | '\u{2e3b}'
        | '\u{fe58}'
        | '\u{fe63}'
        | '\u{ff0d}'
        | '\u{058a}'
        | '\u{05be}'
        | '\u{1806}' => Folded::Space,
        // Apostrophes and single quotes, including the Armenian apostrophe.
        '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}' | '\u{2032}' | '\u{2035}' | '\u{00b4}'
        | '\u{02bc}' | '\u{02bb}' | '\u{055a}' | '\u{2039}' | '\u{203a}' | '`' => Folded::Char('\''),
        '\u{201c}' | '\u{201d}' | '\u{201e}' | '\u{201f}' | '\u{2033}' | '\u{00ab}' | '\u{00bb}' => {
            Folded::Char('"')
        }
        // Zero-width characters and soft hyphens join what they sit between.
        '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}' | '\u{00ad}' => Folded::Nothing,
        c if c.is_whitespace() || c.is_control() => Folded::Space,
        c => Folded::Char(c),
    }
}

/// Decodes the HTML entity at the start of `s` (which begins with `&`):
/// the character and how many bytes the entity took. Unknown or malformed
/// entities are left as text, as browsers do.
fn decode_entity(s: &str) -> Option<(char, usize)> {
    let end = s.as_bytes().iter().take(12).position(|&b| b == b';')?;
    let body = &s[1..end];
    let c = if let Some(num) = body.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse::<u32>().ok()?,
        };
        char::from_u32(code)?
    } else {
        named_entity(body)?
    };
    Some((c, end + 1))
}

fn named_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "ndash" => '\u{2013}',
        "mdash" => '\u{2014}',
        "minus" => '\u{2212}',
        "hyphen" | "dash" => '\u{2010}',
        "lsquo" => '\u{2018}',
        "rsquo" => '\u{2019}',
        "sbquo" => '\u{201a}',
        "ldquo" => '\u{201c}',
        "rdquo" => '\u{201d}',
        "bdquo" => '\u{201e}',
        "laquo" => '\u{ab}',
        "raquo" => '\u{bb}',
        "lsaquo" => '\u{2039}',
        "rsaquo" => '\u{203a}',
        "hellip" => '\u{2026}',
        "shy" => '\u{ad}',
        "zwsp" => '\u{200b}',
        "thinsp" => '\u{2009}',
        "ensp" => '\u{2002}',
        "emsp" => '\u{2003}',
        "prime" => '\u{2032}',
        "acute" => '\u{b4}',
        "copy" => '\u{a9}',
        "reg" => '\u{ae}',
        "deg" => '\u{b0}',
        "middot" => '\u{b7}',
        "bull" => '\u{2022}',
        "euro" => '\u{20ac}',
        "ccedil" => 'ç',
        "Ccedil" => 'Ç',
        "eacute" => 'é',
        "Eacute" => 'É',
        "uuml" => 'ü',
        "Uuml" => 'Ü',
        "ouml" => 'ö',
        "Ouml" => 'Ö',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        normalise(s).as_str().to_string()
    }

    #[test]
    fn hyphens_dashes_and_spaces_are_one_separator() {
        let expected = "armenian azerbaijani border";
        for s in [
            "Armenian-Azerbaijani border",
            "Armenian–Azerbaijani border",
            "Armenian—Azerbaijani border",
            "Armenian ‐ Azerbaijani border",
            "Armenian − Azerbaijani border",
            "Armenian &ndash; Azerbaijani border",
            "Armenian&#8212;Azerbaijani border",
            "Armenian\u{a0}Azerbaijani\tborder",
            "  Armenian  \n Azerbaijani   border  ",
        ] {
            assert_eq!(n(s), expected, "input {s:?}");
        }
    }

    #[test]
    fn quotes_fold_to_ascii() {
        assert_eq!(
            n("Azerbaijan’s “Zangezur corridor”"),
            "azerbaijan's \"zangezur corridor\""
        );
        assert_eq!(n("CSTO&#8217;s &laquo;bloc&raquo;"), "csto's \"bloc\"");
        assert_eq!(n("Armenia`s ‘Iskanders’"), "armenia's 'iskanders'");
    }

    #[test]
    fn case_folds_in_every_script() {
        assert_eq!(n("CSTO Collective SECURITY"), "csto collective security");
        assert_eq!(n("ОДКБ и Армения"), "одкб и армения");
        assert_eq!(n("ՀԱՊԿ Հայաստան"), "հապկ հայաստան");
        assert_eq!(n("XANKƏNDİ"), "xankəndi");
    }

    #[test]
    fn entities_decode_and_unknown_ones_stay() {
        assert_eq!(n("Tom &amp; Jerry &lt;b&gt;"), "tom & jerry <b>");
        assert_eq!(n("&#x41;&#66;c"), "abc");
        assert_eq!(n("AT&T &bogus; &"), "at&t &bogus; &");
    }

    #[test]
    fn nfkc_composes_and_widens() {
        // e + combining acute composes to é; full-width letters become ASCII.
        assert_eq!(n("Cafe\u{301}"), "café");
        assert_eq!(n("ＣＳＴＯ"), "csto");
        assert_eq!(n("ﬁnal"), "final");
        assert_eq!(n("La\u{e7}\u{131}n"), "laçın");
    }

    #[test]
    fn zero_width_and_soft_hyphen_vanish() {
        assert_eq!(n("Kara\u{ad}bakh Art\u{200b}sakh"), "karabakh artsakh");
    }

    #[test]
    fn offsets_map_back_to_the_original() {
        let original = "  The “CSTO’s” —  reply &amp; Karabakh";
        let norm = normalise(original);
        let text = norm.as_str();
        for word in ["csto's", "reply", "karabakh", "&"] {
            let at = text.find(word).unwrap();
            let orig = norm.original_offset(at);
            let want = match word {
                "csto's" => original.find("CSTO").unwrap(),
                "reply" => original.find("reply").unwrap(),
                "karabakh" => original.find("Karabakh").unwrap(),
                _ => original.find("&amp;").unwrap(),
            };
            assert_eq!(orig, want, "{word}");
        }
        let end = text.find("reply").unwrap() + "reply".len();
        assert_eq!(norm.original_offset(end), original.find("reply").unwrap() + 5);
    }

    #[test]
    fn cyrillic_offsets_map_back() {
        let original = "Саммит ОДКБ в Ереване";
        let norm = normalise(original);
        let at = norm.as_str().find("одкб").unwrap();
        assert_eq!(norm.original_offset(at), original.find("ОДКБ").unwrap());
    }
}

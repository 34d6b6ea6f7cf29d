//! The text normaliser: one pass that turns a title, summary or body into the
//! form the keyword automaton searches, keeping a map back to the original
//! byte offsets so `--explain` can quote the text as it was written.
//!
//! What it does, in order, per character:
//! - decodes HTML entities (`&amp;`, `&ndash;`, `&#8217;`, `&#x2014;` ...);
//! - applies Unicode NFKC (full-width letters, ligatures, NBSP ...) to each
//!   character together with the combining marks that follow it;
//! - lower-cases (Unicode, so Cyrillic `ОДКБ` and Armenian `ՀԱՊԿ` fold too);
//! - folds every hyphen and dash (`-` `‐` `–` `—` `−` Armenian `֊` ...),
//!   every quote (straight or typographic), all other punctuation and every
//!   run of white space to ONE space, so "Armenian-Azerbaijani",
//!   "Armenian–Azerbaijani" and "Armenian Azerbaijani" are the same text,
//!   as are "Azerbaijan's" and "Azerbaijan’s" (both `azerbaijan s`);
//! - drops zero-width characters and soft hyphens.
//!
//! The result is words separated by single spaces, which is what lets the
//! engine find whole words without checking boundaries and count words by
//! counting spaces.
//!
//! Rule terms go through the same function, so a term matches exactly the
//! texts that normalise to it. ASCII text takes a fast path up to 64 bytes
//! at a time (classified with SSE2 on x86_64, eight bytes at a time on a
//! `u64` elsewhere, and checked against taking it a byte at a time); only
//! non-ASCII characters and entities pay for NFKC. Given a
//! [`WordFilter`], the normaliser also lists which words may begin a term,
//! so the search skips the others without looking at them again.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// A normalised text and the way back to the original.
#[derive(Debug, Clone, Default)]
pub struct Normalised {
    /// The words with one space before each and one after the last, so a
    /// search for " word " finds whole words without boundary checks.
    ///
    /// Kept as bytes: every byte written is ASCII or a whole encoded `char`,
    /// so it is UTF-8 by construction, and the hot path never pays for
    /// checking it; [`Normalised::as_str`] checks on the way out.
    padded: Vec<u8>,
    /// `(normalised offset, original offset)` wherever the distance between
    /// the two changes; between anchors, offsets advance together.
    anchors: Vec<(usize, usize)>,
    /// The words the filter admitted (every word when normalised without
    /// one): where each starts in the padded text, and its index.
    candidates: Vec<(u32, u32)>,
    /// How many words the text has.
    words: u32,
    /// Where paragraphs start: the index of the first word after each line
    /// break that follows a word.
    paragraphs: Vec<u32>,
}

impl Normalised {
    /// The normalised text: words separated by single spaces.
    pub fn as_str(&self) -> &str {
        let words = self
            .padded
            .get(1..self.padded.len().saturating_sub(1))
            .unwrap_or(&[]);
        std::str::from_utf8(words).unwrap_or_default()
    }

    /// The text with a space before the first word and after the last.
    pub(crate) fn padded(&self) -> &[u8] {
        &self.padded
    }

    /// The words the [`WordFilter`] given to [`normalise_into`] admitted,
    /// in order: where each starts in [`Normalised::padded`] (just after a
    /// space), and which word of the text it is (0 for the first).
    pub(crate) fn candidates(&self) -> &[(u32, u32)] {
        &self.candidates
    }

    /// How many words the normalised text has.
    pub fn word_count(&self) -> u32 {
        self.words
    }

    /// The index of the first word of each paragraph after the first
    /// (paragraphs are separated by line breaks in the original), in order.
    pub fn paragraph_starts(&self) -> &[u32] {
        &self.paragraphs
    }

    /// The byte offset in the original text that produced the byte at
    /// `offset` in [`Normalised::as_str`]. It may fall inside a multi-byte
    /// character of the original; callers that slice must round it to a
    /// character boundary.
    pub fn original_offset(&self, offset: usize) -> usize {
        let padded = offset + 1;
        let i = self.anchors.partition_point(|&(n, _)| n <= padded);
        self.through_anchor(i, offset)
    }

    /// [`Normalised::original_offset`] of `start` and of `end` (not before
    /// `start`), with one binary search: a hit spans a few words, so the
    /// anchor that maps its end is the one of its start or a few after.
    pub(crate) fn original_span(&self, start: usize, end: usize) -> (usize, usize) {
        let i = self.anchors.partition_point(|&(n, _)| n <= start + 1);
        let after = self.anchors.get(i..).unwrap_or(&[]);
        let j = i + after.iter().take_while(|&&(n, _)| n <= end + 1).count();
        (self.through_anchor(i, start), self.through_anchor(j, end))
    }

    /// The original offset of `offset`, given that anchors before `i` are
    /// at or before it and the others after it.
    #[inline]
    fn through_anchor(&self, i: usize, offset: usize) -> usize {
        match i.checked_sub(1).and_then(|i| self.anchors.get(i)) {
            Some(&(n, o)) => o + (offset + 1 - n),
            None => offset,
        }
    }
}

/// A Bloom-style filter over the words a caller is looking for, applied
/// while normalising: the words it turns away are not listed in
/// [`Normalised::candidates`], so the search for terms never visits them.
/// Most words of running text ("the", "of", "that") begin no term, and this
/// costs a few instructions per word where the normaliser has the word's
/// bytes in a register, against a pass of its own over every word.
///
/// A word's key is its first `prefix_len` bytes and its length capped at
/// `prefix_len`; `prefix_len` is at most the shortest stem sought, so every
/// word a stem begins has the stem's key. A word whose key's bit is clear
/// is none of the words and begins with none of the stems.
#[derive(Debug, Clone)]
pub(crate) struct WordFilter {
    prefix_len: usize,
    /// A fixed size, so a bit's word needs no bounds check.
    bits: Box<[u64; FILTER_WORDS]>,
}

/// Bits in a [`WordFilter`]: 8 KiB, which stays in L1 beside the tables.
const FILTER_BITS: u32 = 16;
const FILTER_WORDS: usize = 1 << (FILTER_BITS - 6);

impl WordFilter {
    /// A filter admitting `words` (normalised, each a single word), and
    /// every word that begins with a `stem`.
    pub(crate) fn new(words: &[&[u8]], stems: &[&[u8]]) -> WordFilter {
        let prefix_len = stems.iter().map(|s| s.len()).fold(7, usize::min).max(1);
        let mut filter = WordFilter {
            prefix_len,
            bits: Box::new([0; FILTER_WORDS]),
        };
        for word in words.iter().chain(stems) {
            let bit = filter.bit(load(word, 0), word.len());
            filter.bits[bit / 64] |= 1 << (bit % 64);
        }
        filter
    }

    /// The bit of a word `len` bytes long whose first bytes are `head`
    /// (little-endian; bytes past the word are ignored).
    #[inline]
    fn bit(&self, head: u64, len: usize) -> usize {
        let n = len.min(self.prefix_len);
        let key = (head & low_bytes(n)) | (n as u64) << 56;
        // The top FILTER_BITS bits: below FILTER_WORDS * 64.
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - FILTER_BITS)) as usize
    }

    #[inline]
    fn admits(&self, head: u64, len: usize) -> bool {
        let bit = self.bit(head, len);
        self.bits[bit / 64 % FILTER_WORDS] >> (bit % 64) & 1 == 1
    }

    /// Heap bytes held.
    pub(crate) fn memory_usage(&self) -> usize {
        FILTER_WORDS * 8
    }
}

/// Eight bytes of `bytes` from `at`, little-endian, zero past its end.
#[inline]
fn load(bytes: &[u8], at: usize) -> u64 {
    let mut buf = [0u8; 8];
    match bytes.get(at..at + 8) {
        Some(eight) => buf.copy_from_slice(eight),
        None => {
            for (b, &t) in buf.iter_mut().zip(bytes.get(at..).unwrap_or(&[])) {
                *b = t;
            }
        }
    }
    u64::from_le_bytes(buf)
}

/// A mask of the low `n` bytes of a `u64` (`n` at most 8): a load, where
/// a shift by a variable amount needs a check for 64.
#[inline]
fn low_bytes(n: usize) -> u64 {
    const MASKS: [u64; 9] = {
        let mut masks = [0u64; 9];
        let mut n = 1;
        while n < 9 {
            masks[n] = u64::MAX >> (64 - 8 * n);
            n += 1;
        }
        masks
    };
    MASKS.get(n).copied().unwrap_or(u64::MAX)
}

/// What the fast path does with an ASCII byte.
const SEPARATOR: u8 = 0;
const SPECIAL: u8 = 1;

/// ASCII letters and digits map to their lower-case selves, every other
/// ASCII byte separates words, `&` (entities) and non-ASCII bytes take the
/// slow path.
const CLASS: [u8; 256] = {
    let mut t = [SEPARATOR; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c >= 0x80 || c == b'&' {
            SPECIAL
        } else if c.is_ascii_uppercase() {
            c + 32
        } else if c.is_ascii_alphanumeric() {
            c
        } else {
            SEPARATOR
        };
        b += 1;
    }
    t
};

/// Bytes the block path ([`Writer::ascii_block`]) takes at most.
const BLOCK: usize = 64;

/// Eight bytes classified at once (SWAR): a bit per byte for those that
/// continue an ASCII word (letters and digits), for line breaks, and for
/// bytes only the slower paths take (non-ASCII, and `&` for entities); and
/// the eight bytes as the block path writes them: ASCII letters lowered,
/// every byte that is not part of a word a space. The byte loop's `CLASS`
/// lookups, done all at once on a `u64`.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    word: u8,
    newline: u8,
    special: u8,
    written: u64,
}

#[inline]
fn classify(x: u64) -> Chunk {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const LOW: u64 = !HIGH;
    const fn splat(b: u8) -> u64 {
        0x0101_0101_0101_0101 * b as u64
    }
    /// Per byte of `x` below 0x80: the high bit set where the byte is >= `c`.
    #[inline]
    fn at_least(x: u64, c: u8) -> u64 {
        ((x | HIGH) - splat(c)) & HIGH
    }
    /// The high bit set in each byte of `x` equal to `c` (exact: no carry
    /// crosses bytes).
    #[inline]
    fn equal(x: u64, c: u8) -> u64 {
        let t = x ^ splat(c);
        !(((t & LOW) + LOW) | t) & HIGH
    }
    /// The high bits of the eight bytes as eight bits, byte 0 lowest.
    #[inline]
    fn bits(high: u64) -> u8 {
        ((high >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u8
    }
    let ascii = !x & HIGH;
    let digit = at_least(x, b'0') & !at_least(x, b'9' + 1);
    let folded = x | splat(0x20);
    let letter = at_least(folded, b'a') & !at_least(folded, b'z' + 1);
    let upper = at_least(x, b'A') & !at_least(x, b'Z' + 1) & ascii;
    let word = (digit | letter) & ascii;
    let word_bytes = (word >> 7) * 0xff;
    Chunk {
        word: bits(word),
        newline: bits(equal(x, b'\n')),
        special: bits((x & HIGH) | equal(x, b'&')),
        written: ((x | (upper >> 2)) & word_bytes) | (splat(b' ') & !word_bytes),
    }
}

/// A block of up to [`BLOCK`] bytes classified: a bit per byte (byte 0
/// lowest) for those that continue an ASCII word, for line breaks, and for
/// bytes only the slower paths take; and the bytes as the block path
/// writes them, followed by spaces (so any run of it can be copied as a
/// whole [`BLOCK`] bytes and cut to length). Only what comes before the
/// first special byte, and that byte's bit, are certain: classifying may
/// stop there.
struct Block {
    word: u64,
    newline: u64,
    special: u64,
    written: [u8; 2 * BLOCK],
}

impl Block {
    /// No bytes of any class, and spaces written.
    const EMPTY: Block = Block {
        word: 0,
        newline: 0,
        special: 0,
        written: [b' '; 2 * BLOCK],
    };

    /// `bytes[at..]`, up to [`BLOCK`] bytes of it; past its end the block
    /// reads zero bytes (separators, which the caller does not take).
    #[inline]
    fn classify(bytes: &[u8], at: usize) -> Block {
        let mut padded = [0u8; BLOCK];
        let block: &[u8; BLOCK] = match bytes.get(at..at + BLOCK).and_then(|b| b.try_into().ok()) {
            Some(block) => block,
            None => {
                let rest = bytes.get(at..).unwrap_or(&[]);
                padded[..rest.len().min(BLOCK)].copy_from_slice(&rest[..rest.len().min(BLOCK)]);
                &padded
            }
        };
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: SSE2 is part of the x86_64 baseline, which every
            // x86_64 target (and so this build) has enabled.
            unsafe { Block::classify_sse2(block) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Block::classify_swar(block)
        }
    }

    /// [`Block::classify`] eight bytes at a time on `u64`s: the portable
    /// definition the SIMD version is tested against.
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    fn classify_swar(block: &[u8; BLOCK]) -> Block {
        let mut out = Block::EMPTY;
        for k in 0..BLOCK / 8 {
            let chunk = classify(load(block, 8 * k));
            out.word |= u64::from(chunk.word) << (8 * k);
            out.newline |= u64::from(chunk.newline) << (8 * k);
            out.special |= u64::from(chunk.special) << (8 * k);
            out.written[8 * k..8 * k + 8].copy_from_slice(&chunk.written.to_le_bytes());
        }
        out
    }

    /// [`Block::classify`] sixteen bytes at a time with SSE2: a compare per
    /// class and a `movemask` per bit set, where the `u64` version takes
    /// some sixty instructions per eight bytes.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "sse2")]
    fn classify_sse2(block: &[u8; BLOCK]) -> Block {
        use std::arch::x86_64::*;
        let mut out = Block::EMPTY;
        // Signed compares: bytes of 0x80 and up are negative, so below every
        // ASCII bound, as no letter or digit is.
        let between = |v: __m128i, low: u8, high: u8| {
            _mm_and_si128(
                _mm_cmpgt_epi8(v, _mm_set1_epi8(low as i8 - 1)),
                _mm_cmplt_epi8(v, _mm_set1_epi8(high as i8 + 1)),
            )
        };
        for k in 0..BLOCK / 16 {
            let lanes = &block[16 * k..16 * k + 16];
            // SAFETY: `lanes` is 16 readable bytes; the load is unaligned.
            let v = unsafe { _mm_loadu_si128(lanes.as_ptr().cast::<__m128i>()) };
            let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
            let word = _mm_or_si128(between(v, b'0', b'9'), between(folded, b'a', b'z'));
            let upper = _mm_and_si128(between(v, b'A', b'Z'), _mm_set1_epi8(0x20));
            let lowered = _mm_or_si128(v, upper);
            let written = _mm_or_si128(
                _mm_and_si128(word, lowered),
                _mm_andnot_si128(word, _mm_set1_epi8(b' ' as i8)),
            );
            let special = _mm_or_si128(v, _mm_cmpeq_epi8(v, _mm_set1_epi8(b'&' as i8)));
            let shift = 16 * k;
            out.word |= u64::from(_mm_movemask_epi8(word) as u16) << shift;
            out.special |= u64::from(_mm_movemask_epi8(special) as u16) << shift;
            out.newline |=
                u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8))) as u16) << shift;
            let slot = &mut out.written[16 * k..16 * k + 16];
            // SAFETY: `slot` is 16 writable bytes; the store is unaligned.
            unsafe { _mm_storeu_si128(slot.as_mut_ptr().cast::<__m128i>(), written) };
            // The caller takes nothing past the first special byte: in
            // Cyrillic or Armenian text that is a word away.
            if out.special != 0 {
                break;
            }
        }
        out
    }
}

/// The low `n` bits of a `u64` (`n` at most 64).
#[inline]
fn below(n: usize) -> u64 {
    u64::MAX.checked_shr(64 - n as u32).unwrap_or(0)
}

/// Normalises `input` (see the module documentation).
pub fn normalise(input: &str) -> Normalised {
    let mut out = Normalised::default();
    normalise_into(input, &mut out, None);
    out
}

/// [`normalise`] into `into`, reusing its buffers, listing as candidates
/// the words `filter` admits (all words without one).
pub(crate) fn normalise_into(input: &str, into: &mut Normalised, filter: Option<&WordFilter>) {
    normalise_with(input, into, filter, Some(&TWO_BYTE_FOLDS), true);
}

/// [`normalise_into`], looking two-byte characters up in `two_byte` or,
/// without it, taking them the slow way (which the table must agree with);
/// taking ASCII text in `blocks` of up to 64 bytes, or else a byte at a
/// time (the definition the block path must agree with).
fn normalise_with(
    input: &str,
    into: &mut Normalised,
    filter: Option<&WordFilter>,
    two_byte: Option<&TwoByteFolds>,
    blocks: bool,
) {
    let mut out = std::mem::take(&mut into.padded);
    out.clear();
    // Room for a block's whole 64-byte store past the last byte.
    out.reserve(input.len() + 2 + BLOCK);
    let mut anchors = std::mem::take(&mut into.anchors);
    anchors.clear();
    // Offsets are kept in the padded text, whose byte 1 is the first byte
    // of the input that survives.
    anchors.push((1, 0));
    // Not cleared: its slots are overwritten (see `Writer::word_ended_as`).
    let candidates = std::mem::take(&mut into.candidates);
    let mut paragraphs = std::mem::take(&mut into.paragraphs);
    paragraphs.clear();
    let mut w = Writer {
        out,
        anchors,
        word_start: 1,
        words: 0,
        candidates,
        admitted: 0,
        paragraphs,
        filter,
        delta: -1,
        dirty: true,
    };
    w.out.push(b' ');
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let class = CLASS[bytes[i] as usize];
        if class != SPECIAL {
            // Up to 64 bytes of ASCII at once, stopping at the first byte
            // that needs the paths below; not for the space, the ", " or
            // the short number between words of another script, which a
            // byte at a time takes for less.
            if blocks
                && bytes
                    .get(i..i + 8)
                    .and_then(|eight| <[u8; 8]>::try_from(eight).ok())
                    .is_some_and(|eight| u64::from_le_bytes(eight) & 0x8080_8080_8080_8080 == 0)
            {
                // It takes at least this byte (ASCII, not `&`), so the loop
                // moves on. A check for 0 here made the criterion bench 11 %
                // slower (30.8 -> 34.2 ms) for no more instructions: layout.
                i += w.ascii_block(bytes, i);
                continue;
            }
            if class > SPECIAL {
                if w.dirty {
                    w.anchor(i);
                }
                w.out.push(class);
                i += 1;
                continue;
            }
        }
        if class == SEPARATOR {
            w.separate();
            if bytes[i] == b'\n' {
                w.paragraph_break();
            }
            i += 1;
            continue;
        }
        if bytes[i] == b'&' {
            if let Some((decoded, len)) = decode_entity(&input[i..]) {
                let mut buf = [0u8; 4];
                w.push_cluster(decoded.encode_utf8(&mut buf), i);
                i += len;
            } else {
                w.separate();
                i += 1;
            }
            continue;
        }
        // Dashes, typographic quotes and the like (U+2010..=U+205E) and
        // NBSP or guillemets, followed by ASCII (so by no combining mark):
        // NFKC, case and folding all end in a separator, so skip them.
        if let Some(len) = punctuation_len(&bytes[i..]) {
            w.dirty = true;
            w.separate();
            i += len;
            continue;
        }
        // Two-byte characters (Latin with accents, Cyrillic, Armenian ...)
        // with no combining mark after them: their foldings are looked up,
        // a run of them in this loop.
        if let Some(table) = two_byte
            && let Some(mut folded) = table.fold(bytes, i)
        {
            loop {
                w.dirty = true;
                match folded {
                    TwoByteFold::Bytes(encoded, len) => {
                        w.anchor(i);
                        // Fixed-size stores: a slice of variable length
                        // would be a call to `memcpy` per character.
                        if len == 2 {
                            w.out.extend_from_slice(&encoded);
                        } else {
                            w.out.push(encoded[0]);
                        }
                        w.dirty = true;
                    }
                    TwoByteFold::Separator => w.separate(),
                    TwoByteFold::Nothing => {}
                }
                i += 2;
                match table.fold(bytes, i) {
                    Some(next) => folded = next,
                    None => break,
                }
            }
            continue;
        }
        // A non-ASCII character with the combining marks that follow it:
        // NFKC needs them together to compose them.
        let mut start = i;
        let mut chars = input[i..].chars();
        if let Some(c) = chars.next() {
            i += c.len_utf8();
            // A mark right after an ASCII letter belongs with that letter.
            if is_combining_mark(c)
                && start > 0
                && bytes[start - 1].is_ascii_alphanumeric()
                && w.out.last() == Some(&CLASS[bytes[start - 1] as usize])
            {
                w.out.pop();
                start -= 1;
                w.dirty = true;
            }
        }
        for c in chars {
            if !is_combining_mark(c) {
                break;
            }
            i += c.len_utf8();
        }
        w.push_cluster(&input[start..i], start);
    }
    *into = w.finish();
}

/// The length of the punctuation character at the start of `bytes` when it
/// is one that folds to a separator and no combining mark follows it.
#[inline]
fn punctuation_len(bytes: &[u8]) -> Option<usize> {
    let len = match bytes {
        // Not U+2017 or U+203E: NFKC gives a space and a combining mark.
        [0xe2, 0x80, 0x97 | 0xbe, ..] => return None,
        [0xe2, 0x80, 0x90..=0xbf, ..] | [0xe2, 0x81, 0x80..=0x9e, ..] => 3,
        [0xc2, 0xa0 | 0xab | 0xbb, ..] => 2,
        _ => return None,
    };
    match bytes.get(len) {
        Some(next) if !next.is_ascii() => None,
        _ => Some(len),
    }
}

/// How each two-byte UTF-8 character (U+0080..=U+07FF: Latin with
/// accents, Greek, Cyrillic, Armenian ...) standing alone normalises, worked
/// out once by the same steps the slow path takes, so text in those scripts
/// costs a table load per character instead of NFKC checks, case tables
/// and property lookups.
struct TwoByteFolds {
    /// By code point minus 0x80: [`TWO_BYTE_SLOW`], [`TWO_BYTE_SEPARATOR`],
    /// [`TWO_BYTE_NOTHING`], or the folded character's UTF-8 bytes (low
    /// two bytes) and length (third byte). Slow: NFKC changes it, it
    /// lower-cases to more than one character or to one of three bytes or
    /// more, or it is itself a combining mark (which may join the letter
    /// before it).
    folds: Vec<u32>,
    /// By code point minus 0x80: a combining mark.
    marks: Vec<bool>,
}

const TWO_BYTE_SLOW: u32 = u32::MAX;
const TWO_BYTE_SEPARATOR: u32 = u32::MAX - 1;
const TWO_BYTE_NOTHING: u32 = u32::MAX - 2;

static TWO_BYTE_FOLDS: std::sync::LazyLock<TwoByteFolds> = std::sync::LazyLock::new(TwoByteFolds::new);

impl TwoByteFolds {
    fn new() -> TwoByteFolds {
        let chars = (0x80..0x800).map(|cp| char::from_u32(cp).unwrap_or('\u{fffd}'));
        let marks = chars.clone().map(is_combining_mark).collect();
        let folds = chars
            .map(|c| {
                let mut buf = [0u8; 4];
                if is_combining_mark(c) || needs_nfkc(c.encode_utf8(&mut buf)) {
                    return TWO_BYTE_SLOW;
                }
                let mut lower = if c == '\u{130}' {
                    'i'.to_lowercase()
                } else {
                    c.to_lowercase()
                };
                match (lower.next(), lower.next()) {
                    (Some(l), None) => match fold(l) {
                        Folded::Char(l) => {
                            let encoded = l.encode_utf8(&mut buf).as_bytes();
                            match *encoded {
                                [b0] => 1 << 16 | u32::from(b0),
                                [b0, b1] => 2 << 16 | u32::from(b1) << 8 | u32::from(b0),
                                _ => TWO_BYTE_SLOW,
                            }
                        }
                        Folded::Separator => TWO_BYTE_SEPARATOR,
                        Folded::Nothing => TWO_BYTE_NOTHING,
                    },
                    _ => TWO_BYTE_SLOW,
                }
            })
            .collect();
        TwoByteFolds { folds, marks }
    }

    /// The folding of the two-byte character at `bytes[at..]` and its
    /// length, when it has one here: no combining mark follows it.
    #[inline]
    fn fold(&self, bytes: &[u8], at: usize) -> Option<TwoByteFold> {
        let cp = two_byte_code_point(bytes, at)?;
        let folded = *self.folds.get(cp - 0x80)?;
        if folded == TWO_BYTE_SLOW {
            return None;
        }
        match bytes.get(at + 2) {
            None => {}
            Some(next) if next.is_ascii() => {}
            // A mark after it: NFKC composes the two.
            Some(_) => match two_byte_code_point(bytes, at + 2) {
                Some(next) if !self.marks.get(next - 0x80).copied().unwrap_or(true) => {}
                _ => return None,
            },
        }
        Some(match folded {
            TWO_BYTE_SEPARATOR => TwoByteFold::Separator,
            TWO_BYTE_NOTHING => TwoByteFold::Nothing,
            encoded => TwoByteFold::Bytes([encoded as u8, (encoded >> 8) as u8], (encoded >> 16) as usize),
        })
    }
}

/// What a two-byte character becomes: [`Folded`] with the character
/// already encoded (its bytes and how many of them count).
#[derive(Debug, Clone, Copy)]
enum TwoByteFold {
    Bytes([u8; 2], usize),
    Separator,
    Nothing,
}

/// The code point of the two-byte UTF-8 character at `bytes[at..]`, if
/// one starts there.
#[inline]
fn two_byte_code_point(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at..at + 2) {
        Some(&[lead @ 0xc2..=0xdf, cont @ 0x80..=0xbf]) => {
            Some(usize::from(lead & 0x1f) << 6 | usize::from(cont & 0x3f))
        }
        _ => None,
    }
}

/// Characters NFKC leaves alone can skip the normaliser's iterator machinery.
fn needs_nfkc(cluster: &str) -> bool {
    !matches!(
        unicode_normalization::is_nfkc_quick(cluster.chars()),
        unicode_normalization::IsNormalized::Yes
    )
}

/// Whether `c` is part of a word: everything else separates words.
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || (!c.is_ascii() && is_combining_mark(c))
}

struct Writer<'f> {
    out: Vec<u8>,
    anchors: Vec<(usize, usize)>,
    /// Where the word being written starts, and how many words ended before it.
    word_start: usize,
    words: u32,
    /// Slots past `admitted` are free: see [`Writer::word_ended_as`].
    candidates: Vec<(u32, u32)>,
    admitted: usize,
    paragraphs: Vec<u32>,
    filter: Option<&'f WordFilter>,
    delta: isize,
    /// The distance between input and output may have changed since the
    /// last anchor (a separator run or a slow-path character).
    dirty: bool,
}

impl Writer<'_> {
    /// Notes that the next output byte comes from original offset `from`.
    #[inline]
    fn anchor(&mut self, from: usize) {
        self.dirty = false;
        self.anchor_at(self.out.len(), from);
    }

    /// Notes that output byte `at` comes from original offset `from`.
    #[inline]
    fn anchor_at(&mut self, at: usize, from: usize) {
        let delta = from as isize - at as isize;
        if delta != self.delta {
            self.delta = delta;
            self.anchors.push((at, from));
        }
    }

    /// Takes the ASCII text at `bytes[i..]`, up to [`BLOCK`] bytes, stopping
    /// before the first byte that is not ASCII or is `&`, and returns how
    /// many bytes it took. The output, anchors, candidates and paragraphs
    /// are those of taking the bytes one at a time; but the bytes are
    /// classified eight at a time, and written a run at a time: a run of
    /// separators is one space, so only its first byte is written, and the
    /// text between such dropped bytes is one copy. Most of a block is one
    /// or two copies, and a word costs the few instructions that note it.
    // Out of line: called once per block, and inlined it crowds the
    // per-character paths' registers (and `separate` out of them).
    #[inline(never)]
    fn ascii_block(&mut self, bytes: &[u8], i: usize) -> usize {
        let Block {
            mut word,
            mut newline,
            special,
            written,
        } = Block::classify(bytes, i);
        let room = bytes.len().saturating_sub(i);
        let taken = (special.trailing_zeros() as usize).min(room);
        if taken == 0 {
            return 0;
        }
        let valid = below(taken);
        word &= valid;
        newline &= valid;
        let separators = !word & valid;
        // A separator is written when it follows a word: the first of a
        // run, unless the text so far ends in a space.
        let after_space = u64::from(self.out.last() == Some(&b' '));
        let ends = separators & !(separators << 1 | after_space);
        let dropped = separators & !ends;

        let start = self.out.len();
        let words_before = self.words;
        // Room for every word the block can end (one in two bytes), so
        // noting them checks for none.
        if self.candidates.len() < self.admitted + BLOCK / 2 {
            self.grow_candidates();
        }
        // After a separator or a slow-path character, the first word byte
        // is where the offsets may have moved apart.
        if self.dirty {
            let first = word.trailing_zeros() as usize;
            if first < taken && dropped & below(first) == 0 {
                self.anchor_at(start + first, i + first);
            }
        }
        // Runs of kept bytes, `from..to`, `shift` bytes dropped before each.
        let (mut from, mut shift) = (0, 0);
        loop {
            let to = ((dropped & !below(from)).trailing_zeros() as usize).min(taken);
            let at = self.out.len();
            if let Some(run) = written.get(from..from + BLOCK) {
                self.out.extend_from_slice(run);
                self.out.truncate(at + (to - from));
            }
            self.words_end_at(ends & below(to) & !below(from), start, shift, &written);
            if to >= taken {
                break;
            }
            // A dropped run ends at a word byte (or the block's end), which
            // starts the next run: its offset has moved.
            let resume = ((!dropped & valid & !below(to)).trailing_zeros() as usize).min(taken);
            shift += resume - to;
            from = resume;
            if from >= taken {
                break;
            }
            self.anchor_at(start + from - shift, i + from);
        }
        while newline != 0 {
            let j = newline.trailing_zeros() as usize;
            newline &= newline - 1;
            // The words ended by the time the line break is read.
            self.paragraph_break_at(words_before + (ends & below(j + 1)).count_ones());
        }
        self.dirty = word >> (taken - 1) & 1 == 0;
        taken
    }

    /// Ends the current word: one space, however many separators.
    #[inline(always)]
    fn separate(&mut self) {
        if self.out.last() != Some(&b' ') {
            self.word_ended();
            self.start_word();
        }
        self.dirty = true;
    }

    /// Notes that the next word begins a paragraph (after a line break,
    /// once per run of them, never before the first word).
    fn paragraph_break(&mut self) {
        self.paragraph_break_at(self.words);
    }

    /// [`Writer::paragraph_break`] when `words` words have ended.
    fn paragraph_break_at(&mut self, words: u32) {
        if words > 0 && self.paragraphs.last() != Some(&words) {
            self.paragraphs.push(words);
        }
    }

    /// The space after a word that has ended; the next word starts after it.
    #[inline]
    fn start_word(&mut self) {
        self.out.push(b' ');
        self.word_start = self.out.len();
    }

    /// Lists the word just written as a candidate if the filter admits it.
    #[inline(always)]
    fn word_ended(&mut self) {
        let start = self.word_start;
        let end = self.out.len();
        let len = end.saturating_sub(start);
        // A short word is the tail of the last eight bytes written.
        let head = match end.checked_sub(8) {
            Some(from) if len < 8 => load(&self.out, from) >> (8 * (8 - len)),
            _ => load(&self.out, start),
        };
        self.word_ended_as(head, len);
    }

    #[cold]
    fn grow_candidates(&mut self) {
        self.candidates.resize(2 * self.admitted + 64, (0, 0));
    }

    /// Ends the words that the spaces already written at block positions
    /// `ends` follow (block position `j` is output byte `start + j - shift`:
    /// `shift` bytes were dropped before it), and
    /// starts the next after each space: [`Writer::word_ended_as`] for a
    /// run of words, its state in registers. A word that began in this
    /// block has its bytes in `written`, where its head is read from a
    /// buffer with room past every word, rather than from the output.
    #[inline(always)]
    fn words_end_at(&mut self, mut ends: u64, start: usize, shift: usize, written: &[u8; 2 * BLOCK]) {
        let Writer {
            out,
            candidates,
            filter,
            word_start,
            words,
            admitted,
            ..
        } = self;
        let filter = *filter;
        let (mut word_start_now, mut words_now, mut admitted_now) = (*word_start, *words, *admitted);
        while ends != 0 {
            let j = ends.trailing_zeros() as usize;
            ends &= ends - 1;
            let end = start + j - shift;
            let len = end.saturating_sub(word_start_now);
            // The bytes past the word are ignored by the filter.
            let head = match j.checked_sub(len) {
                Some(from) => load(written, from),
                None => load(out, word_start_now),
            };
            let keep = filter.is_none_or(|f| f.admits(head, len));
            if let Some(slot) = candidates.get_mut(admitted_now) {
                *slot = (word_start_now as u32, words_now);
            }
            admitted_now += usize::from(keep);
            words_now += 1;
            word_start_now = end + 1;
        }
        (*word_start, *words, *admitted) = (word_start_now, words_now, admitted_now);
    }

    /// [`Writer::word_ended`] for a word whose first bytes and length are known.
    #[inline]
    fn word_ended_as(&mut self, head: u64, len: usize) {
        // Every word is written to the next free slot, which only an
        // admitted word keeps: about a third are, in no pattern a branch
        // predictor could learn.
        let admitted = self.filter.is_none_or(|f| f.admits(head, len));
        if self.admitted == self.candidates.len() {
            self.grow_candidates();
        }
        if let Some(slot) = self.candidates.get_mut(self.admitted) {
            *slot = (self.word_start as u32, self.words);
        }
        self.admitted += usize::from(admitted);
        self.words += 1;
    }

    /// Pushes a cluster (or a decoded entity) from original offset `from`:
    /// NFKC, lower-cased, dashes and quotes folded to separators, invisible
    /// joiners dropped.
    fn push_cluster(&mut self, cluster: &str, from: usize) {
        self.dirty = true;
        let mut single = cluster.chars();
        if let (Some(c), None) = (single.next(), single.next())
            && !needs_nfkc(cluster)
        {
            self.push_folded(c, from);
            return;
        }
        for c in cluster.nfkc() {
            self.push_folded(c, from);
        }
    }

    fn push_folded(&mut self, c: char, from: usize) {
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
                    if self.dirty {
                        self.anchor(from);
                    }
                    let mut buf = [0u8; 4];
                    self.out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    // Later bytes of an expansion (ﬁ → fi) map to the same place.
                    self.dirty = true;
                }
                Folded::Separator => self.separate(),
                Folded::Nothing => {}
            }
        }
    }

    fn finish(mut self) -> Normalised {
        self.separate();
        // A line break after the last word starts no paragraph.
        if self.paragraphs.last() == Some(&self.words) {
            self.paragraphs.pop();
        }
        Normalised {
            padded: self.out,
            anchors: self.anchors,
            candidates: {
                let mut candidates = self.candidates;
                candidates.truncate(self.admitted);
                candidates
            },
            words: self.words,
            paragraphs: self.paragraphs,
        }
    }
}

enum Folded {
    Char(char),
    Separator,
    Nothing,
}

fn fold(c: char) -> Folded {
    match c {
        // Zero-width characters and soft hyphens join what they sit between.
        '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}' | '\u{00ad}' => Folded::Nothing,
        // Apostrophes that Unicode counts as letters still separate words.
        '\u{02bc}' | '\u{02bb}' | '\u{02b9}' | '\u{02c8}' => Folded::Separator,
        c if is_word_char(c) => Folded::Char(c),
        // Dashes, quotes, punctuation, white space.
        _ => Folded::Separator,
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
    fn quotes_and_punctuation_separate_words() {
        assert_eq!(
            n("Azerbaijan’s “Zangezur corridor”"),
            "azerbaijan s zangezur corridor"
        );
        assert_eq!(
            n("Azerbaijan's \"Zangezur corridor\"."),
            "azerbaijan s zangezur corridor"
        );
        assert_eq!(n("CSTO&#8217;s &laquo;bloc&raquo;"), "csto s bloc");
        assert_eq!(n("Armenia`s ‘Iskanders’ (2016)"), "armenia s iskanders 2016");
        assert_eq!(n("Azerbaijanʼs"), "azerbaijan s");
        assert_eq!(n("ՀԱՊԿ-ի գագաթնաժողովը՝ առանց"), "հապկ ի գագաթնաժողովը առանց");
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
        assert_eq!(n("Tom &amp; Jerry &lt;b&gt;"), "tom jerry b");
        assert_eq!(n("&#x41;&#66;c"), "abc");
        assert_eq!(n("AT&T &bogus; &"), "at t bogus");
        assert_eq!(n(""), "");
        assert_eq!(n(" — "), "");
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
    fn punctuation_shortcut_agrees_with_the_full_path() {
        // A character the shortcut takes (it is followed by ASCII) must be
        // one the full path (taken when a non-ASCII letter follows) turns
        // into a plain separator.
        let mut taken = 0;
        for c in ('\u{2000}'..='\u{206f}').chain(['\u{a0}', '\u{ab}', '\u{bb}', '\u{ad}']) {
            if punctuation_len(format!("{c}b").as_bytes()).is_none() {
                continue;
            }
            taken += 1;
            assert_eq!(n(&format!("a{c}é")), "a é", "U+{:04X}", c as u32);
            assert_eq!(n(&format!("a{c}b")), "a b", "U+{:04X}", c as u32);
        }
        assert_eq!(taken, 0x205f - 0x2010 - 2 + 3);
    }

    #[test]
    fn eight_byte_classes_agree_with_the_class_table() {
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut chunk = *b"abcdefgh";
                chunk[at] = b;
                let c = classify(u64::from_le_bytes(chunk));
                let bit = |mask: u8| mask >> at & 1 == 1;
                let class = CLASS[b as usize];
                assert_eq!(bit(c.word), class > SPECIAL, "byte {b:#x} at {at}");
                assert_eq!(bit(c.special), class == SPECIAL, "byte {b:#x} at {at}");
                assert_eq!(bit(c.newline), b == b'\n', "byte {b:#x} at {at}");
                assert_eq!(c.word | (1 << at), u8::MAX, "the other bytes are letters");
                let written = c.written.to_le_bytes()[at];
                assert_eq!(written, if class > SPECIAL { class } else { b' ' }, "byte {b:#x}");
            }
        }
        assert_eq!(
            n("HeLLo WORLD-2024 Über ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
            "hello world 2024 über abcdefghijklmnopqrstuvwxyz"
        );
    }

    #[test]
    fn simd_block_classes_agree_with_eight_byte_ones() {
        let mut next = super::super::test_rng();
        // Every byte value in every lane, then random blocks.
        for b in 0..=255u8 {
            for lane in [0, 7, 8, 15, 16, 31, 48, 63] {
                let mut block = *b"The CSTO, Armenia and Azerbaijan: a\ndispute over borders & 2024!";
                block[lane] = b;
                assert_same_classes(&block);
            }
        }
        for _ in 0..20_000 {
            let mut block = [0u8; BLOCK];
            for byte in &mut block {
                *byte = next(256) as u8;
            }
            assert_same_classes(&block);
        }
    }

    /// The two classifications agree up to the first special byte, which
    /// is as far as a block is taken.
    fn assert_same_classes(block: &[u8; BLOCK]) {
        let simd = Block::classify(block, 0);
        let swar = Block::classify_swar(block);
        let first = swar.special.trailing_zeros() as usize;
        let certain = below((first + 1).min(BLOCK));
        assert_eq!(simd.special & certain, swar.special & certain, "{block:?}");
        assert_eq!(simd.word & certain, swar.word & certain, "{block:?}");
        assert_eq!(simd.newline & certain, swar.newline & certain, "{block:?}");
        assert_eq!(simd.written[..first], swar.written[..first], "{block:?}");
    }

    /// Normalises `text` both ways: ASCII in blocks, and a byte at a time.
    fn both_ways(text: &str, filter: Option<&WordFilter>) -> (Normalised, Normalised) {
        let (mut blocks, mut bytes) = (Normalised::default(), Normalised::default());
        normalise_with(text, &mut blocks, filter, Some(&TWO_BYTE_FOLDS), true);
        normalise_with(text, &mut bytes, filter, Some(&TWO_BYTE_FOLDS), false);
        (blocks, bytes)
    }

    fn assert_same(blocks: &Normalised, bytes: &Normalised, text: &str) {
        assert_eq!(blocks.padded, bytes.padded, "{text:?}");
        assert_eq!(blocks.anchors, bytes.anchors, "{text:?}");
        assert_eq!(blocks.candidates, bytes.candidates, "{text:?}");
        assert_eq!(blocks.words, bytes.words, "{text:?}");
        assert_eq!(blocks.paragraphs, bytes.paragraphs, "{text:?}");
    }

    #[test]
    fn the_block_path_agrees_with_a_byte_at_a_time() {
        // Words short and long (past 8, 16 and 64 bytes), runs of every
        // kind of separator (past a block), line breaks, entities and
        // non-ASCII text that stop a block, and a combining mark that takes
        // back the ASCII letter a block wrote before it.
        let words: [&[u8]; 5] = [b"csto", b"of", b"armenian", b"x", "одкб".as_bytes()];
        let stems: [&[u8]; 2] = [b"azerbaijan", b"internation"];
        let filter = WordFilter::new(&words, &stems);
        let long = "Supercalifragilisticexpialidocious".repeat(3);
        let pieces = [
            "CSTO",
            "of",
            "Armenian",
            "AZERBAIJANIS",
            "internationally",
            "x",
            "the",
            "2024",
            "a1b2",
            long.as_str(),
            "Café",
            "ОДКБ",
            "a\u{301}b",
            "e\u{301}",
            "&amp;",
            "of&#8217;",
            "&bogus",
            "ﬁne",
        ];
        let separators = [
            " ",
            " ",
            " ",
            ", ",
            ". ",
            "-",
            " - ",
            "\n",
            ".\n\n",
            "\r\n",
            "\t",
            "’",
            " — ",
            "\u{a0}",
            "                                                                        ",
            ";;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;",
            "",
        ];
        let mut next = super::super::test_rng();
        let mut anchors = 0;
        for round in 0..20_000 {
            let mut text = String::new();
            if round % 3 == 0 {
                text.push_str(separators[next(separators.len())]);
            }
            for _ in 0..1 + next(40) {
                text.push_str(pieces[next(pieces.len())]);
                text.push_str(separators[next(separators.len())]);
            }
            let filter = (round % 2 == 0).then_some(&filter);
            let (blocks, bytes) = both_ways(&text, filter);
            assert_same(&blocks, &bytes, &text);
            anchors += blocks.anchors.len();
        }
        assert!(anchors > 100_000, "{anchors}");
    }

    #[test]
    fn candidates_are_the_words_the_filter_admits() {
        // Every word of the normalised text, however it was written (inside
        // one eight-byte chunk, across chunks, ended by the slow path after
        // punctuation, entities or non-ASCII), is listed exactly when the
        // filter admits its first bytes and length: the normaliser's shortcut
        // for a word's head must see the same bytes the word has.
        let words: [&[u8]; 4] = [b"csto", b"of", b"ab", b"armenian"];
        let stems: [&[u8]; 2] = [b"azerbaijan", b"internation"];
        let filter = WordFilter::new(&words, &stems);
        let pieces = [
            "CSTO",
            "of",
            "ab",
            "Armenian",
            "Azerbaijani",
            "internationally",
            "x",
            "the",
            "Café",
            "é",
            "ОДКБ",
            "a\u{301}b",
            "AB12",
            "ofof",
            "&amp;",
            "of&#8217;",
        ];
        let separators = [" ", ", ", "-", " - ", "\n", ".\n\n", "’", ";", "  ", "\t"];
        let mut next = super::super::test_rng();
        let (mut admitted, mut turned_away) = (0, 0);
        for _ in 0..5000 {
            let mut text = String::new();
            for _ in 0..1 + next(20) {
                text.push_str(pieces[next(pieces.len())]);
                text.push_str(separators[next(separators.len())]);
            }
            let mut norm = Normalised::default();
            normalise_into(&text, &mut norm, Some(&filter));
            let mut want = Vec::new();
            let mut at = 1u32;
            let normalised = norm.as_str().to_string();
            for (i, word) in normalised.split(' ').filter(|w| !w.is_empty()).enumerate() {
                if filter.admits(load(word.as_bytes(), 0), word.len()) {
                    want.push((at, i as u32));
                    admitted += 1;
                } else {
                    turned_away += 1;
                }
                at += word.len() as u32 + 1;
            }
            assert_eq!(norm.candidates(), &want[..], "{text:?}");
            assert_eq!(
                norm.word_count() as usize,
                normalised.split(' ').filter(|w| !w.is_empty()).count()
            );
        }
        assert!(
            admitted > 10_000 && turned_away > 10_000,
            "{admitted} {turned_away}"
        );
    }

    #[test]
    fn the_word_filter_admits_every_word_and_stem_it_was_given() {
        let words: [&[u8]; 5] = [b"csto", b"of", b"armenian", "одкб".as_bytes(), b"caf\xc3\xa9"];
        let stems: [&[u8]; 2] = [b"azerbaijan", b"film"];
        let filter = WordFilter::new(&words, &stems);
        let text = "The CSTO, of Armenian and ОДКБ; Azerbaijanis Azerbaijan filmmakers’ films — \
                    Cafe\u{301} CSTO’s the of  a   b c d e f g h i j k l m n o p q r s t u v w x y z";
        let mut norm = Normalised::default();
        normalise_into(text, &mut norm, Some(&filter));
        let normalised = norm.as_str().to_string();
        let all: Vec<&str> = normalised.split(' ').collect();
        let mut wanted = 0;
        let mut at = 1;
        for (i, word) in all.iter().enumerate() {
            let bytes = word.as_bytes();
            if words.contains(&bytes) || stems.iter().any(|s| bytes.starts_with(s)) {
                wanted += 1;
                assert!(norm.candidates().contains(&(at, i as u32)), "{word}");
            }
            at += word.len() as u32 + 1;
        }
        assert_eq!(wanted, 11);
        assert!(norm.candidates().len() < all.len() / 2, "{:?}", norm.candidates());
        let admitted = norm.candidates().len();
        normalise_into(text, &mut norm, None);
        assert_eq!(norm.candidates().len(), all.len());
        assert!(norm.candidates().len() > admitted);
    }

    #[test]
    fn two_byte_table_agrees_with_the_slow_path() {
        // Every two-byte character, alone and between neighbours that
        // change what it becomes: a combining mark after it (NFKC composes),
        // a letter before it that a mark would join, accented letters.
        let mut looked_up = 0;
        for cp in 0x80..0x800u32 {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            if TWO_BYTE_FOLDS.fold(c.to_string().as_bytes(), 0).is_some() {
                looked_up += 1;
            }
            for (before, after) in [
                ("", ""),
                ("a", "b"),
                ("A ", "\u{301}"),
                ("É", "\u{308}x"),
                ("x", "é"),
                ("", "\u{1dc0}"),
                ("&amp;", "&#769;"),
                ("\n", "\u{483}"),
                ("Ա", "Б"),
            ] {
                let text = format!("{before}{c}{after} {c}{c}");
                let (mut fast, mut slow) = (Normalised::default(), Normalised::default());
                normalise_with(&text, &mut fast, None, Some(&TWO_BYTE_FOLDS), true);
                normalise_with(&text, &mut slow, None, None, false);
                assert_eq!(fast.as_str(), slow.as_str(), "U+{cp:04X} in {text:?}");
                assert_eq!(fast.anchors, slow.anchors, "U+{cp:04X} in {text:?}");
                assert_eq!(fast.candidates, slow.candidates, "U+{cp:04X} in {text:?}");
                assert_eq!(fast.paragraphs, slow.paragraphs, "U+{cp:04X} in {text:?}");
            }
        }
        assert!(looked_up > 1000, "{looked_up}");
    }

    #[test]
    fn zero_width_and_soft_hyphen_vanish() {
        assert_eq!(n("Kara\u{ad}bakh Art\u{200b}sakh"), "karabakh artsakh");
        assert_eq!(n("Ka&shy;rabakh"), "karabakh");
    }

    #[test]
    fn offsets_map_back_to_the_original() {
        assert_eq!(normalise("Plain text").original_offset(6), 6);
        let original = "  The “CSTO’s” —  reply &amp; Karabakh";
        let norm = normalise(original);
        let text = norm.as_str();
        for word in ["csto", "reply", "karabakh"] {
            let at = text.find(word).unwrap();
            let orig = norm.original_offset(at);
            let want = match word {
                "csto" => original.find("CSTO").unwrap(),
                "reply" => original.find("reply").unwrap(),
                _ => original.find("Karabakh").unwrap(),
            };
            assert_eq!(orig, want, "{word}");
        }
        let end = text.find("reply").unwrap() + "reply".len();
        assert_eq!(norm.original_offset(end), original.find("reply").unwrap() + 5);
    }

    #[test]
    fn a_span_maps_as_its_two_ends_do() {
        let pieces = [
            "CSTO",
            "Karabakh",
            " ",
            ", ",
            " — ",
            "&amp;",
            "“",
            "’s",
            "Ереван",
            "ՀԱՊԿ",
            "Cafe\u{301}",
            "\n\n",
            "ﬁle",
        ];
        let mut next = super::super::test_rng();
        for _ in 0..2000 {
            let original: String = (0..next(16)).map(|_| pieces[next(pieces.len())]).collect();
            let norm = normalise(&original);
            let len = norm.as_str().len();
            for _ in 0..8 {
                let start = next(len + 1);
                let end = start + next(len + 1 - start);
                assert_eq!(
                    norm.original_span(start, end),
                    (norm.original_offset(start), norm.original_offset(end)),
                    "{original:?} {start}..{end}"
                );
            }
        }
    }

    #[test]
    fn words_and_paragraphs_are_counted() {
        let norm = normalise("YEREVAN — The talks\n\nresumed on Friday.\r\nBoth sides met.\n");
        assert_eq!(norm.word_count(), 9);
        assert_eq!(norm.paragraph_starts(), &[3, 6]);
        assert_eq!(normalise("").word_count(), 0);
        assert_eq!(normalise("\n\nOne line").paragraph_starts(), &[] as &[u32]);
    }

    #[test]
    fn cyrillic_offsets_map_back() {
        let original = "Саммит ОДКБ в Ереване";
        let norm = normalise(original);
        let at = norm.as_str().find("одкб").unwrap();
        assert_eq!(norm.original_offset(at), original.find("ОДКБ").unwrap());
    }
}

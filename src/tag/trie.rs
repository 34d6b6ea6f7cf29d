//! The term matcher: a byte trie over every pattern, walked anchored from
//! each word start of a normalised text.
//!
//! The normaliser leaves words separated by single spaces, and every pattern
//! begins at a word start (its leading space), so the hits an overlapping
//! Aho–Corasick search would report are exactly the patterns that a trie
//! walk from each word start passes through. Walking the trie needs no
//! failure links, most walks die after a few bytes ("the", "of"), and it
//! hands out hits already ordered by start word and then by end.
//!
//! The trie is stored as a *double array*: a state is a slot, and the
//! child of state `s` by byte class `c` is the slot `base(s) + c`, which is
//! that child only if the slot records `s` as its parent. Every step is
//! then the same few instructions and one load whose address does not
//! wait for anything but the previous step's load: no per-state kind to
//! dispatch on (single-child chains against dense rows, as before), whose
//! branch mispredicted on every other step once the normaliser had run
//! between walks and flushed the predictor's history.

/// A slot's entry: the slot's own `base` in the low 32 bits, the parent
/// slot in bits 32..63, and `ENDS_HERE` when a pattern ends at it. The
/// base is low so that the next step's address is the entry itself plus
/// a class, with no shift or mask between one load and the next.
const ENDS_HERE: u64 = 1 << 63;
const PARENT_MASK: u32 = (1 << 31) - 1;
/// The parent of no state (free slots and the root carry it): no trie has
/// that many slots (16 GB of them).
const NO_PARENT: u32 = PARENT_MASK;
/// An entry no walk can take.
const FREE: u64 = (NO_PARENT as u64) << 32;

/// The parent slot an entry names.
#[inline]
fn parent(entry: u64) -> u32 {
    (entry >> 32) as u32 & PARENT_MASK
}

#[derive(Debug, Clone)]
pub(crate) struct Trie {
    /// Byte to class; class 0 is for bytes no pattern holds, and no state
    /// has a child by it.
    classes: [u8; 256],
    /// The double array (see the module documentation); the root is slot 0.
    /// Long enough that `base + class` is in it for every base and class.
    slots: Vec<u64>,
    /// The pattern that ends at each slot.
    ends: Vec<u32>,
}

impl Trie {
    /// Builds the trie of `patterns` (each without its leading space). A
    /// pattern that appears twice keeps its first index.
    pub(crate) fn new<S: AsRef<[u8]>>(patterns: &[S]) -> Trie {
        let mut used = [false; 256];
        for p in patterns {
            for &b in p.as_ref() {
                used[b as usize] = true;
            }
        }
        // Class 0 is for bytes no pattern holds; 255 classes at most, which
        // normalised text cannot exceed (it has no ASCII punctuation or
        // control bytes), and any excess would share the last class.
        let mut classes = [0u8; 256];
        let mut count = 1usize;
        for b in 0..=255u8 {
            if used[b as usize] {
                classes[b as usize] = count.min(255) as u8;
                count += 1;
            }
        }
        let width = count.min(256);

        // A plain trie first: children per state as (class, child).
        let mut children: Vec<Vec<(u8, usize)>> = vec![Vec::new()];
        let mut ends: Vec<u32> = vec![u32::MAX];
        for (index, p) in patterns.iter().enumerate() {
            let mut state = 0usize;
            for &b in p.as_ref() {
                let class = classes[b as usize];
                state = match children[state].iter().find(|&&(c, _)| c == class) {
                    Some(&(_, child)) => child,
                    None => {
                        let child = children.len();
                        children.push(Vec::new());
                        ends.push(u32::MAX);
                        children[state].push((class, child));
                        child
                    }
                };
            }
            if ends[state] == u32::MAX {
                ends[state] = index as u32;
            }
        }

        // Place the states depth first: each state's children at the
        // lowest base where every slot they need is free. Most states have
        // one child, which takes the first free slot, so a chain of single
        // children sits in neighbouring slots (breadth first, the walks
        // over the seeds took about 1 ms more).
        let mut slot_of = vec![0usize; children.len()];
        let mut taken = vec![true];
        let mut slots = vec![FREE];
        let mut slot_ends = vec![u32::MAX];
        let mut first_free = 1usize;
        let mut stack = vec![0usize];
        while let Some(state) = stack.pop() {
            let slot = slot_of[state];
            let kids = &children[state];
            let base = match kids.iter().map(|&(c, _)| c as usize).min() {
                None => 0,
                Some(lowest) => {
                    let fits = |base: usize| {
                        kids.iter()
                            .all(|&(c, _)| !taken.get(base + c as usize).copied().unwrap_or(false))
                    };
                    let mut base = first_free.saturating_sub(lowest);
                    while !fits(base) {
                        base += 1;
                    }
                    base
                }
            };
            for &(c, child) in kids.iter().rev() {
                let at = base + c as usize;
                if taken.len() <= at {
                    taken.resize(at + 1, false);
                    slots.resize(at + 1, FREE);
                    slot_ends.resize(at + 1, u32::MAX);
                }
                taken[at] = true;
                slot_of[child] = at;
                stack.push(child);
            }
            while taken.get(first_free).copied().unwrap_or(false) {
                first_free += 1;
            }
            let up = if state == 0 {
                NO_PARENT
            } else {
                parent(slots[slot])
            };
            let flag = if ends[state] == u32::MAX { 0 } else { ENDS_HERE };
            slots[slot] = base as u32 as u64 | u64::from(up) << 32 | flag;
            slot_ends[slot] = ends[state];
            for &(_, child) in kids {
                // The child's parent, read back when the child is placed.
                slots[slot_of[child]] = (slot as u64) << 32;
            }
        }
        // Room past the last slot for any base plus any class.
        let room = slots.len() + width;
        slots.resize(room, FREE);
        slot_ends.resize(room, u32::MAX);
        Trie {
            classes,
            slots,
            ends: slot_ends,
        }
    }

    /// Calls `hit(pattern, end)` for every pattern that `text[from..]`
    /// starts with, shortest first; `end` is the index just past it.
    #[inline]
    pub(crate) fn walk(&self, text: &[u8], from: usize, mut hit: impl FnMut(u32, usize)) {
        let mut state = 0u32;
        let mut base = self.slots.first().map_or(0, |&e| e as u32);
        let mut at = from;
        while let Some(&b) = text.get(at) {
            let next = base + u32::from(self.classes[b as usize]);
            let entry = self.slots.get(next as usize).copied().unwrap_or(FREE);
            if parent(entry) != state {
                return;
            }
            at += 1;
            state = next;
            base = entry as u32;
            if entry & ENDS_HERE != 0
                && let Some(&p) = self.ends.get(next as usize)
            {
                hit(p, at);
            }
        }
    }

    /// Heap bytes held.
    pub(crate) fn memory_usage(&self) -> usize {
        self.slots.capacity() * 8 + self.ends.capacity() * 4 + std::mem::size_of::<Trie>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(trie: &Trie, text: &str, from: usize) -> Vec<(u32, usize)> {
        let mut out = Vec::new();
        trie.walk(text.as_bytes(), from, |p, end| out.push((p, end)));
        out
    }

    #[test]
    fn walks_report_every_pattern_starting_here_shortest_first() {
        let trie = Trie::new(&["csto ", "armenia", "armenian azerbaijani ", "armenian ", "ab"]);
        assert_eq!(
            hits(&trie, " armenian azerbaijani border ", 1),
            vec![(1, 8), (3, 10), (2, 22)]
        );
        assert_eq!(hits(&trie, " the csto ", 1), vec![]);
        assert_eq!(hits(&trie, " the csto ", 5), vec![(0, 10)]);
        assert_eq!(hits(&trie, " cst", 1), vec![]);
        assert_eq!(hits(&trie, " ab", 3), vec![]);
    }

    /// Every pattern `text[from..]` starts with, shortest first (of equal
    /// patterns, the first): what a walk must report.
    fn by_definition(patterns: &[Vec<u8>], text: &[u8], from: usize) -> Vec<(u32, usize)> {
        let mut out: Vec<(u32, usize)> = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            let end = from + p.len();
            if text[from..].starts_with(p) && !out.iter().any(|&(_, e)| e == end) {
                out.push((i as u32, end));
            }
        }
        out.sort_by_key(|&(_, end)| end);
        out
    }

    #[test]
    fn walks_agree_with_the_definition_on_the_shipped_patterns() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rules.toml");
        let (rules, _) = crate::tag::Rules::load(&path).unwrap_or_else(|p| panic!("{p}"));
        // The shipped patterns (without their leading space), as the engine
        // builds them, and texts made of their pieces and other words.
        let patterns: Vec<Vec<u8>> = rules
            .terms
            .iter()
            .map(|t| {
                let mut p = t.pattern.clone().into_bytes();
                if !t.wildcard {
                    p.push(b' ');
                }
                p
            })
            .collect();
        let trie = Trie::new(&patterns);
        let mut pieces: Vec<Vec<u8>> = patterns.clone();
        for p in &patterns {
            pieces.push(p[..p.len() / 2].to_vec());
            pieces.push(p.iter().rev().copied().collect());
        }
        pieces.extend([&b"the "[..], b"of ", b"x", b"\xd0\xb0 ", b"ian "].map(|w| w.to_vec()));
        let mut next = super::super::test_rng();
        let mut hits = 0;
        for _ in 0..1500 {
            let mut text = vec![b' '];
            for _ in 0..1 + next(8) {
                text.extend_from_slice(&pieces[next(pieces.len())]);
            }
            for from in 1..text.len() {
                let want = by_definition(&patterns, &text, from);
                hits += want.len();
                assert_eq!(
                    hits_of(&trie, &text, from),
                    want,
                    "{:?} from {from}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
        assert!(hits > 3_000, "the texts hit patterns ({hits})");
    }

    fn hits_of(trie: &Trie, text: &[u8], from: usize) -> Vec<(u32, usize)> {
        let mut out = Vec::new();
        trie.walk(text, from, |p, end| out.push((p, end)));
        out
    }

    #[test]
    fn duplicate_patterns_keep_their_first_index() {
        let trie = Trie::new(&["одкб ", "одкб "]);
        assert_eq!(hits(&trie, " одкб ", 1), vec![(0, " одкб ".len())]);
    }
}

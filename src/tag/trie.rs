//! The term matcher: a byte trie over every pattern, walked anchored from
//! each word start of a normalised text.
//!
//! The normaliser leaves words separated by single spaces, and every pattern
//! begins at a word start (its leading space), so the hits an overlapping
//! Aho–Corasick search would report are exactly the patterns that a trie
//! walk from each word start passes through. Walking the trie needs no
//! failure links, most walks die after a byte or two ("the", "of"), and it
//! hands out hits already ordered by start word and then by end.
//!
//! States with one child store just the byte leading to it (the child is
//! the next state); branching states have a dense row over byte classes
//! (bytes no pattern holds share class 0, which leads nowhere); the first
//! two steps of every walk come from tables indexed by the first two
//! bytes' classes.

/// A state's kind, in the top two bits of its `info`.
const LEAF: u32 = 0;
const SINGLE: u32 = 1;
const BRANCH: u32 = 2;
/// Set in `info` when a pattern ends at the state.
const ENDS_HERE: u32 = 1 << 29;
const PAYLOAD: u32 = ENDS_HERE - 1;

#[derive(Debug, Clone)]
pub(crate) struct Trie {
    /// Byte to class, for branching states' rows.
    classes: [u8; 256],
    /// Per state, numbered in depth-first preorder (the root is 0): its
    /// kind, `ENDS_HERE`, and a payload — for a state with one child (the
    /// child is the next state), the byte that leads there; for a
    /// branching state, the start of its row in `rows`.
    ///
    /// Below the first letters, a trie of words is mostly chains of single
    /// children: stored this way "azerbaijan" is a run of consecutive
    /// four-byte entries, one or two cache lines, where dense rows would
    /// take a cache line per letter.
    info: Vec<u32>,
    /// Dense transitions of branching states, `rows[row + class]`: the
    /// next state, or 0 (the root is no one's child) for none.
    rows: Vec<u32>,
    /// The pattern that ends at each state.
    ends: Vec<u32>,
    /// Row width: how many classes.
    width: usize,
    /// The state after a word's first byte, by its class, with
    /// `FIRST_ENDS` set when a pattern ends there; 0 for none.
    firsts: Vec<u32>,
    /// The state after a word's first two bytes, by `class0 * width +
    /// class1`, flagged the same way. Every walk starts with these two
    /// independent loads instead of two dependent steps.
    pairs: Vec<u32>,
}

/// Set in `firsts` and `pairs` entries when a pattern ends at the state.
const FIRST_ENDS: u32 = 1 << 31;

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

        // A plain trie first: children per state as (byte, child).
        let mut children: Vec<Vec<(u8, usize)>> = vec![Vec::new()];
        let mut ends: Vec<u32> = vec![u32::MAX];
        for (index, p) in patterns.iter().enumerate() {
            let mut state = 0usize;
            for &b in p.as_ref() {
                state = match children[state].iter().find(|&&(c, _)| c == b) {
                    Some(&(_, child)) => child,
                    None => {
                        let child = children.len();
                        children.push(Vec::new());
                        ends.push(u32::MAX);
                        children[state].push((b, child));
                        child
                    }
                };
            }
            if ends[state] == u32::MAX {
                ends[state] = index as u32;
            }
        }
        // Depth-first preorder: a single child is always the next state.
        let mut order = Vec::with_capacity(children.len());
        let mut stack = vec![0usize];
        while let Some(state) = stack.pop() {
            order.push(state);
            let mut kids = children[state].clone();
            kids.sort_unstable_by(|a, b| b.cmp(a));
            stack.extend(kids.iter().map(|&(_, c)| c));
        }
        let mut number = vec![0u32; children.len()];
        for (n, &state) in order.iter().enumerate() {
            number[state] = n as u32;
        }
        let mut info = vec![0u32; order.len()];
        let mut ends_by_number = vec![u32::MAX; order.len()];
        let mut rows = Vec::new();
        for &state in &order {
            let n = number[state] as usize;
            ends_by_number[n] = ends[state];
            let flag = if ends[state] == u32::MAX { 0 } else { ENDS_HERE };
            let kids = &children[state];
            info[n] = flag
                | match kids.as_slice() {
                    [] => LEAF << 30,
                    [(b, _)] => SINGLE << 30 | u32::from(*b),
                    _ => {
                        let row = rows.len();
                        rows.resize(row + width, 0u32);
                        for &(b, child) in kids {
                            rows[row + classes[b as usize] as usize] = number[child];
                        }
                        BRANCH << 30 | (row as u32 & PAYLOAD)
                    }
                };
        }
        // The states two steps from the root, by the classes of the steps.
        let step = |state: usize, class: usize| -> u32 {
            match info.get(state) {
                Some(&i) if i >> 30 == BRANCH => {
                    rows.get((i & PAYLOAD) as usize + class).copied().unwrap_or(0)
                }
                Some(&i)
                    if i >> 30 == SINGLE && classes[(i & 0xff) as usize] as usize == class && class != 0 =>
                {
                    state as u32 + 1
                }
                _ => 0,
            }
        };
        let flagged = |state: u32| -> u32 {
            match info.get(state as usize) {
                Some(&i) if state != 0 && i & ENDS_HERE != 0 => state | FIRST_ENDS,
                _ => state,
            }
        };
        let mut firsts = vec![0u32; width];
        let mut pairs = vec![0u32; width * width];
        for c0 in 1..width {
            let s1 = step(0, c0);
            firsts[c0] = flagged(s1);
            if s1 == 0 {
                continue;
            }
            for c1 in 1..width {
                pairs[c0 * width + c1] = flagged(step(s1 as usize, c1));
            }
        }
        Trie {
            width,
            firsts,
            pairs,
            classes,
            info,
            rows,
            ends: ends_by_number,
        }
    }

    /// Calls `hit(pattern, end)` for every pattern that `text[from..]`
    /// starts with, shortest first; `end` is the index just past it.
    #[inline]
    pub(crate) fn walk(&self, text: &[u8], from: usize, mut hit: impl FnMut(u32, usize)) {
        let class = |at: usize| text.get(at).map_or(0, |&b| self.classes[b as usize] as usize);
        let (c0, c1) = (class(from), class(from + 1));
        let first = self.firsts.get(c0).copied().unwrap_or(0);
        if first == 0 {
            return;
        }
        if first & FIRST_ENDS != 0
            && let Some(&p) = self.ends.get((first & !FIRST_ENDS) as usize)
        {
            hit(p, from + 1);
        }
        let second = self.pairs.get(c0 * self.width + c1).copied().unwrap_or(0);
        if second == 0 {
            return;
        }
        let mut state = (second & !FIRST_ENDS) as usize;
        if second & FIRST_ENDS != 0
            && let Some(&p) = self.ends.get(state)
        {
            hit(p, from + 2);
        }
        let Some(&(mut info)) = self.info.get(state) else {
            return;
        };
        let mut at = from + 2;
        while let Some(&b) = text.get(at) {
            state = match info >> 30 {
                SINGLE if b == info as u8 => state + 1,
                BRANCH => {
                    let slot = (info & PAYLOAD) as usize + self.classes[b as usize] as usize;
                    match self.rows.get(slot) {
                        Some(&next) if next != 0 => next as usize,
                        _ => return,
                    }
                }
                _ => return,
            };
            at += 1;
            info = match self.info.get(state) {
                Some(&i) => i,
                None => return,
            };
            if info & ENDS_HERE != 0
                && let Some(&p) = self.ends.get(state)
            {
                hit(p, at);
            }
        }
    }

    /// Heap bytes held.
    pub(crate) fn memory_usage(&self) -> usize {
        (self.info.capacity()
            + self.rows.capacity()
            + self.ends.capacity()
            + self.firsts.capacity()
            + self.pairs.capacity())
            * 4
            + std::mem::size_of::<Trie>()
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

    #[test]
    fn duplicate_patterns_keep_their_first_index() {
        let trie = Trie::new(&["одкб ", "одкб "]);
        assert_eq!(hits(&trie, " одкб ", 1), vec![(0, " одкб ".len())]);
    }
}

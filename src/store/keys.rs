//! Dedup keys as stored: each item's GUID, URL and title keys as 64-bit
//! hashes in `seen_hashes`, how a new item claims its keys, and the claims
//! of an open group commit, held in memory and written when it commits.
//!
//! Why the claims are held: a first cycle of 10,000 feeds claims 600,000
//! keys at random places in the table. Written as each item was stored,
//! nearly every key landed on a page that the item text streaming through
//! SQLite's page cache had pushed out since the page's last change: read
//! back, journalled again for the feed's savepoint, spilled to the WAL
//! again. That was half of the store thread's work and the store thread is
//! what a first cycle waits for. Held until the batch commits and written
//! in hash order, each page of the table is changed once per batch.
//!
//! Looking a new key up was then most of what was left: a key not in the
//! table still costs a read of the leaf page where it would be. Once a
//! process has looked up many keys that were not there (a first cycle, a
//! large import), it builds a Bloom filter of the stored hashes, and a key
//! the filter has never seen is new without a read. Another process writing
//! the same database (SQLite's `data_version` tells) drops the filter.

use std::collections::HashSet;
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use super::to_unix;
use crate::dedup::DedupKeys;

/// A title key only merges items first seen within this window: two
/// different articles years apart may share a headline.
pub const TITLE_KEY_WINDOW: Duration = Duration::from_secs(30 * 86_400);

/// A dedup key as stored: SipHash-1-3 (fixed keys) of its kind and text.
/// Two different keys share a hash with probability 2^-64 per pair: for a
/// million stored keys, about one chance in 37 million that any two do (and
/// then one item would be taken for a duplicate of another). Never change
/// the function or its keys: stored hashes would stop matching.
pub fn key_hash(kind: &str, key: &str) -> i64 {
    use std::hash::Hasher;
    let mut hasher = siphasher::sip::SipHasher13::new_with_keys(0x6373_746f_7761_7463, 0x6864_6564_7570_6b31);
    hasher.write(kind.as_bytes());
    hasher.write(&[0]);
    hasher.write(key.as_bytes());
    hasher.finish() as i64
}

/// Lookups that find nothing before a process builds its filter: a cycle
/// of a few hundred new items never pays for reading every stored hash; a
/// first cycle of thousands of feeds does so early, while the table is small.
const LOOKUPS_MISSED_BEFORE_FILTER: u32 = 20_000;

/// Keys claimed and not yet written to `seen_hashes` (those of the open
/// group commit, or of the one poll being written outside a batch), and the
/// filter over the stored ones. All claims were first seen in the
/// transaction now open, so all are within the title window of any lookup
/// it makes.
#[derive(Debug)]
pub(super) struct ClaimedKeys {
    /// `(hash, first_seen_at)` in the order they were claimed, so the claims
    /// of a poll that fails can be taken back from the end.
    claimed: Vec<(i64, i64)>,
    hashes: HashSet<i64>,
    /// Every hash stored or claimed since it was built (taken-back claims
    /// and pruned keys stay in it: they only cost a lookup).
    filter: Option<KeyFilter>,
    /// Keys found new, counted until the filter is built.
    missed: u32,
    /// `PRAGMA data_version` when the filter was built or last checked.
    data_version: i64,
    /// [`LOOKUPS_MISSED_BEFORE_FILTER`], lowered by tests.
    misses_before_filter: u32,
}

impl Default for ClaimedKeys {
    fn default() -> ClaimedKeys {
        ClaimedKeys {
            claimed: Vec::new(),
            hashes: HashSet::new(),
            filter: None,
            missed: 0,
            data_version: 0,
            misses_before_filter: LOOKUPS_MISSED_BEFORE_FILTER,
        }
    }
}

impl ClaimedKeys {
    /// Drops the filter if another connection has committed to the
    /// database since it was built: it may have stored keys the filter lacks.
    /// Call with the write lock held (or about to be taken), before claiming.
    pub(super) fn check_other_writers(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        if self.filter.is_some() {
            let version: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
            if version != self.data_version {
                self.filter = None;
                self.missed = 0;
            }
        }
        Ok(())
    }

    /// Builds the filter after `misses` lookups that find nothing.
    #[cfg(test)]
    pub(super) fn filter_after(&mut self, misses: u32) {
        self.misses_before_filter = misses;
    }

    #[cfg(test)]
    pub(super) fn has_filter(&self) -> bool {
        self.filter.is_some()
    }

    /// When the key `hash` was first seen: `now` when claimed in the open
    /// transaction, its stored time, or `None` for a new key (without a
    /// read when the filter is sure of it).
    fn first_seen(&self, conn: &Connection, hash: i64, now: i64) -> rusqlite::Result<Option<i64>> {
        if self.hashes.contains(&hash) {
            return Ok(Some(now));
        }
        if self.filter.as_ref().is_some_and(|f| !f.may_contain(hash)) {
            return Ok(None);
        }
        conn.prepare_cached("SELECT first_seen_at FROM seen_hashes WHERE hash = ?1")?
            .query_row([hash], |r| r.get(0))
            .optional()
    }

    /// Counts a key found new; builds the filter once enough have been
    /// (or a bigger one, once it is full).
    fn note_miss(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        match &self.filter {
            Some(f) if !f.is_full() => return Ok(()),
            Some(_) => {}
            None => {
                self.missed += 1;
                if self.missed < self.misses_before_filter {
                    return Ok(());
                }
            }
        }
        let mut stored = Vec::new();
        {
            let mut read = conn.prepare("SELECT hash FROM seen_hashes")?;
            let mut rows = read.query([])?;
            while let Some(row) = rows.next()? {
                stored.push(row.get::<_, i64>(0)?);
            }
        }
        let mut filter = KeyFilter::with_capacity(stored.len() + self.claimed.len());
        for &hash in stored.iter().chain(self.hashes.iter()) {
            filter.insert(hash);
        }
        self.data_version = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        self.filter = Some(filter);
        Ok(())
    }

    /// A mark to [`ClaimedKeys::take_back_to`].
    pub(super) fn mark(&self) -> usize {
        self.claimed.len()
    }

    /// Takes back every claim made since `mark`.
    pub(super) fn take_back_to(&mut self, mark: usize) {
        for (hash, _) in self.claimed.drain(mark.min(self.claimed.len())..) {
            self.hashes.remove(&hash);
        }
    }

    fn claim(&mut self, hash: i64, at: i64) {
        self.claimed.push((hash, at));
        self.hashes.insert(hash);
        if let Some(filter) = &mut self.filter {
            filter.insert(hash);
        }
    }

    /// Writes the claims into `seen_hashes`, in hash order (the table's
    /// order), and forgets them. Runs inside the transaction they belong
    /// to; forgotten even when the write fails, as that transaction is then
    /// rolled back.
    pub(super) fn write(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let mut claimed = std::mem::take(&mut self.claimed);
        self.hashes.clear();
        claimed.sort_unstable();
        let mut insert =
            conn.prepare_cached("INSERT INTO seen_hashes (hash, first_seen_at) VALUES (?1, ?2)")?;
        for (hash, at) in claimed {
            insert.execute(params![hash, at])?;
        }
        Ok(())
    }
}

/// A Bloom filter over key hashes: three probes into a power-of-two bit
/// array of at least 32 bits a key when built and 12 when full (under 0.2 %
/// false positives, then 1.1 %; a false positive costs the lookup the
/// filter saves, nothing more).
/// The hashes are SipHash values already, so the probes are cut from them.
#[derive(Debug)]
struct KeyFilter {
    bits: Vec<u64>,
    keys: usize,
}

impl KeyFilter {
    const BITS_PER_KEY: usize = 16;
    /// Past this many keys a bit, false positives climb: time for a bigger one.
    const FULL_AT_BITS_PER_KEY: usize = 12;

    fn with_capacity(keys: usize) -> KeyFilter {
        // Room to grow to twice as many keys before it is rebuilt.
        let bits = (2 * keys.max(1 << 14) * Self::BITS_PER_KEY).next_power_of_two();
        KeyFilter {
            bits: vec![0; bits / 64],
            keys: 0,
        }
    }

    fn probes(&self, hash: i64) -> [usize; 3] {
        let mask = (self.bits.len() * 64 - 1) as u64;
        let h = hash as u64;
        let step = h.rotate_left(32) | 1;
        [0u64, 1, 2].map(|i| (h.wrapping_add(i.wrapping_mul(step)) & mask) as usize)
    }

    fn insert(&mut self, hash: i64) {
        for bit in self.probes(hash) {
            if let Some(word) = self.bits.get_mut(bit / 64) {
                *word |= 1 << (bit % 64);
            }
        }
        self.keys += 1;
    }

    fn may_contain(&self, hash: i64) -> bool {
        self.probes(hash).iter().all(|&bit| {
            self.bits
                .get(bit / 64)
                .is_some_and(|w| w & (1 << (bit % 64)) != 0)
        })
    }

    fn is_full(&self) -> bool {
        self.keys * Self::FULL_AT_BITS_PER_KEY > self.bits.len() * 64
    }
}

/// Whether a key first seen at `at` still makes an item a duplicate: any
/// key does, a title key only within the title window.
fn still_counts(kind: &str, at: i64, title_since: i64) -> bool {
    kind != "title" || at >= title_since
}

/// Whether an item with any of these keys was seen: stored, or claimed in
/// the open transaction. A title key counts only within the title window.
pub(super) fn known(
    conn: &Connection,
    claimed: &ClaimedKeys,
    keys: &DedupKeys,
    now: Timestamp,
) -> rusqlite::Result<bool> {
    let now = to_unix(now);
    let title_since = now - TITLE_KEY_WINDOW.as_secs() as i64;
    for (kind, key) in keys.pairs() {
        let seen = claimed.first_seen(conn, key_hash(kind, key), now)?;
        if seen.is_some_and(|at| still_counts(kind, at, title_since)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Claims an item's keys as first seen at `now`, unless one of them is
/// already known (as [`known`] judges it): then it claims none and returns
/// false, the item being a duplicate. New keys join `claimed`, to be written
/// when the transaction is about to commit. A stored title key from before
/// the window is taken over in place with the new time; the title key is
/// looked at last, so no later key can make that change need undoing.
pub(super) fn claim_keys(
    conn: &Connection,
    claimed: &mut ClaimedKeys,
    keys: &DedupKeys,
    now: Timestamp,
) -> rusqlite::Result<bool> {
    let now = to_unix(now);
    let title_since = now - TITLE_KEY_WINDOW.as_secs() as i64;
    let mark = claimed.mark();
    let (titles, others): (Vec<_>, Vec<_>) = keys.pairs().partition(|(kind, _)| *kind == "title");
    for (kind, key) in others.into_iter().chain(titles) {
        let hash = key_hash(kind, key);
        match claimed.first_seen(conn, hash, now)? {
            None => {
                claimed.note_miss(conn)?;
                claimed.claim(hash, now);
            }
            Some(at) if !still_counts(kind, at, title_since) => {
                conn.prepare_cached("UPDATE seen_hashes SET first_seen_at = ?2 WHERE hash = ?1")?
                    .execute(params![hash, now])?;
            }
            Some(_) => {
                claimed.take_back_to(mark);
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Part of the migration to hashed keys: hashes every row of the old
/// `seen_keys` table into `seen_hashes` (on a collision, the later time
/// wins), then drops `seen_keys`.
pub(super) fn rehash_seen_keys(tx: &Connection) -> rusqlite::Result<()> {
    {
        let mut read = tx.prepare("SELECT kind, key, first_seen_at FROM seen_keys")?;
        let mut write = tx.prepare(
            "INSERT INTO seen_hashes (hash, first_seen_at) VALUES (?1, ?2)
             ON CONFLICT (hash) DO UPDATE SET first_seen_at = max(first_seen_at, excluded.first_seen_at)",
        )?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let kind: String = row.get(0)?;
            let key: String = row.get(1)?;
            let at: i64 = row.get(2)?;
            write.execute(params![key_hash(&kind, &key), at])?;
        }
    }
    tx.execute_batch("DROP INDEX seen_keys_item; DROP TABLE seen_keys;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_hash_never_changes() {
        // Stored hashes must match across builds: these values are pinned.
        assert_ne!(key_hash("url", "x"), key_hash("title", "x"));
        assert_ne!(key_hash("ur", "lx"), key_hash("url", "x"));
        assert_eq!(key_hash("url", "example.org/a"), PINNED_URL_HASH);
    }

    const PINNED_URL_HASH: i64 = -8_740_986_345_864_779_487;

    #[test]
    fn the_filter_never_forgets_a_key_and_rarely_claims_one_it_never_saw() {
        let hash = |i: u64| key_hash("url", &format!("https://example.org/{i}"));
        let mut filter = KeyFilter::with_capacity(50_000);
        let mut inserted = 0;
        while !filter.is_full() {
            filter.insert(hash(inserted));
            inserted += 1;
        }
        // Built for 50,000 with room to double: full near 2 × 50,000 × 16 / 12.
        assert!((100_000..=180_000).contains(&inserted), "{inserted}");
        assert!((0..inserted).all(|i| filter.may_contain(hash(i))));
        let strangers = 100_000;
        let false_positives = (inserted..inserted + strangers)
            .filter(|&i| filter.may_contain(hash(i)))
            .count();
        // Three probes at 12 bits a key: about 1.1 % in theory.
        assert!(false_positives < strangers as usize / 40, "{false_positives}");
    }
}

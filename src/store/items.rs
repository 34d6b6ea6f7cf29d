//! Items and their dedup keys: inserting a poll's new items, tagging results,
//! and the counts `status` shows.

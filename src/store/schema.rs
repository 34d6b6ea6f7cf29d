//! The database schema and its migrations. Each migration is applied once, in
//! order, inside a transaction; `PRAGMA user_version` records how far we got.
//! A database from a newer cstowatch (a higher version) is refused, never
//! downgraded or reset.

/// Migrations in order; index + 1 is the schema version they produce.
pub const MIGRATIONS: &[&str] = &[
    // 1: feeds, items, dedup keys, destinations and the outbox.
    r#"
    CREATE TABLE feeds (
        name                 TEXT PRIMARY KEY,
        url                  TEXT NOT NULL,
        etag                 TEXT,
        last_modified        TEXT,
        first_success_at     INTEGER,          -- unix seconds; NULL until a poll succeeds
        last_success_at      INTEGER,
        last_attempt_at      INTEGER,
        last_status          TEXT,             -- '200', '304', or an error kind
        last_error           TEXT,
        last_error_at        INTEGER,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        next_poll_at         INTEGER,          -- earliest time the next poll may run
        items_seen           INTEGER NOT NULL DEFAULT 0
    );

    -- Every item ever seen (until pruned by retention).
    CREATE TABLE items (
        id            INTEGER PRIMARY KEY,
        feed          TEXT NOT NULL,
        guid          TEXT,
        url           TEXT,
        canonical_url TEXT,
        title_key     TEXT,
        title         TEXT NOT NULL,
        summary       TEXT NOT NULL DEFAULT '',
        content       TEXT NOT NULL DEFAULT '',
        categories    TEXT NOT NULL DEFAULT '[]',  -- JSON array
        published_at  INTEGER NOT NULL,
        updated_at    INTEGER,
        first_seen_at INTEGER NOT NULL,
        -- 'pending': to be delivered when relevant; 'backfill': seen on a first
        -- poll and older than the backfill window, never delivered.
        status        TEXT NOT NULL CHECK (status IN ('pending', 'backfill')),
        tags          TEXT NOT NULL DEFAULT '[]',  -- JSON array, primary tags first
        score         REAL NOT NULL DEFAULT 0,
        relevant      INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX items_relevant ON items (relevant, status, published_at);
    CREATE INDEX items_first_seen ON items (first_seen_at);

    -- Dedup keys: 'guid' (feed + GUID), 'url' (canonical URL), 'title'
    -- (normalised title). Kept longer than items, so an item pruned by
    -- retention that reappears in a feed is still recognised.
    CREATE TABLE seen_keys (
        kind          TEXT NOT NULL,
        key           TEXT NOT NULL,
        item_id       INTEGER,                     -- NULL once the item is pruned
        first_seen_at INTEGER NOT NULL,
        PRIMARY KEY (kind, key)
    ) WITHOUT ROWID;
    CREATE INDEX seen_keys_item ON seen_keys (item_id);

    -- Where items are delivered: 'console' or 'telegram:<chat>'.
    CREATE TABLE destinations (
        id              TEXT PRIMARY KEY,
        last_digest_at  INTEGER,
        last_success_at INTEGER,
        last_error      TEXT,
        last_error_at   INTEGER
    );

    -- The outbox's memory: an item is delivered to a destination once a row
    -- exists here, written only after the destination accepted the message.
    CREATE TABLE deliveries (
        item_id      INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
        destination  TEXT NOT NULL,
        message_id   INTEGER,
        delivered_at INTEGER NOT NULL,
        kind         TEXT NOT NULL DEFAULT 'digest',   -- 'digest' or 'alert'
        PRIMARY KEY (item_id, destination)
    ) WITHOUT ROWID;
    "#,
    // 2: entries whose date could not be read (never counted as published at
    // poll time), and a feed's last warning (a recovered document, a charset
    // the feed lied about) for `status`.
    r#"
    ALTER TABLE items ADD COLUMN undated INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE feeds ADD COLUMN last_warning TEXT;
    "#,
    // 3: notices — messages that carry no items (operator alerts, the weekly
    // report's chart), queued per destination and sent through the same
    // outbox as digests: a row is written once, `sent_at` only after the
    // destination accepted it. `key` makes queueing idempotent: a producer
    // that asks twice for the same notice (the same week's report, the same
    // alert on the same day) queues it once.
    r#"
    CREATE TABLE notices (
        id          INTEGER PRIMARY KEY,
        destination TEXT NOT NULL,
        kind        TEXT NOT NULL,
        key         TEXT NOT NULL,
        html        TEXT NOT NULL,
        photo       BLOB,
        created_at  INTEGER NOT NULL,
        sent_at     INTEGER,
        message_id  INTEGER,
        UNIQUE (destination, key)
    );
    CREATE INDEX notices_unsent ON notices (destination, id) WHERE sent_at IS NULL;
    "#,
    // 4: operator alerts (`alerts`). When a feed's current failure streak
    // began (set by the first counted failure, cleared by a success; a feed
    // already failing at upgrade counts from its last error); when a
    // destination's current refusal (403, chat not found) began and when it
    // last refused; and what the operator has been told about each feed or
    // destination condition, so an alert goes out at most once a day and a
    // recovery only after its alert; and an index covering the item times
    // the silence model reads.
    r#"
    ALTER TABLE feeds ADD COLUMN failing_since INTEGER;
    UPDATE feeds SET failing_since = last_error_at WHERE consecutive_failures > 0;
    ALTER TABLE destinations ADD COLUMN refused_since INTEGER;
    ALTER TABLE destinations ADD COLUMN refused_at INTEGER;
    -- Covers the silence model's one read of every item's times: without
    -- it, that read goes through every stored article's text.
    CREATE INDEX items_arrivals ON items (feed, first_seen_at, published_at, undated);
    CREATE TABLE operator_alerts (
        subject      TEXT NOT NULL,        -- a feed name, or a destination id
        condition    TEXT NOT NULL,        -- 'failing', 'silent', 'refused'
        active       INTEGER NOT NULL,     -- the condition holds (as last announced)
        since        INTEGER NOT NULL,     -- when the announced condition began
        raised_on    TEXT,                 -- day (digest time zone) of the last alert
        recovered_on TEXT,                 -- day of the last recovery message
        PRIMARY KEY (subject, condition)
    ) WITHOUT ROWID;
    "#,
    // 5: story grouping. Every relevant item joins a story (items from any feed
    // about one event); stored so restarts and retries keep the grouping,
    // and so an item joining an already delivered story is shown as "more on".
    // Which story an item is in is a narrow table of its own: setting a
    // column of `items` would rewrite each item's whole row, text and all
    // (measured: it made grouping 10,000 items several times slower).
    r#"
    CREATE TABLE stories (
        id               INTEGER PRIMARY KEY,
        -- The clearest headline as grouping judged it; frozen once any item
        -- of the story is delivered, so "more on" names what readers saw.
        headline_item_id INTEGER
    );
    CREATE TABLE story_items (
        item_id  INTEGER PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE,
        story_id INTEGER NOT NULL REFERENCES stories (id)
    );
    CREATE INDEX story_items_story ON story_items (story_id);
    "#,
    // 6: the names (places, people, organisations) the tagger found in an
    // item's title and lead when it was stored, as a JSON array of rule
    // terms, so story grouping reads them instead of tagging every item
    // again. A narrow table, as for 5: a column added to `items` would sit
    // after the article text and be read through its overflow pages. Items
    // stored before this version have no row and are tagged again.
    r#"
    CREATE TABLE item_names (
        item_id INTEGER PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE,
        names   TEXT NOT NULL
    );
    "#,
    // 7: dedup keys stored as 64-bit hashes (see `keys::key_hash`) in a
    // rowid table keyed by the hash. The text keys (URLs, titles, feed +
    // GUID: ~100 bytes each) made an index of 50 MB at 10,000 feeds that
    // every batch of new items rewrote at random pages; a hash is 8 bytes.
    // `first_seen_at` is what dedup reads (the title window) and what
    // retention prunes by: a key is first seen with its item, so a key past
    // the key cutoff belongs to an item retention has already deleted.
    // The old `seen_keys` rows are hashed into it by `keys::rehash_seen_keys`
    // in the same transaction, which then drops `seen_keys`.
    r#"
    CREATE TABLE seen_hashes (
        hash          INTEGER PRIMARY KEY,
        first_seen_at INTEGER NOT NULL
    );
    "#,
    // 8: each feed's arrival times that its silence model can still use
    // (its last 28 days, at least its last eight: `alerts::silence`), as
    // ascending 8-byte little-endian unix seconds, and when it last brought
    // a new item. Alerts and `status` read one row per feed instead of every
    // stored item's times (at 10,000 feeds, 200,000 rows and a third of
    // `status`). A table of its own, written only by polls that store new
    // items: as a column of `feeds` it would be rewritten by every 304 (a
    // feed posting 50 items a day keeps 11 KB). Filled from the stored items
    // by `alerts::fill_feed_arrivals`. The undated items, which `status`
    // counts per feed, get a partial index of their own: the index 9 drops
    // covered them.
    r#"
    CREATE TABLE feed_arrivals (
        feed              TEXT PRIMARY KEY,
        times             BLOB NOT NULL,
        last_item_seen_at INTEGER NOT NULL
    );
    CREATE INDEX items_undated ON items (feed) WHERE undated;
    "#,
    // 9: the index of every item's times by feed is read by nothing now, and
    // each new item wrote it at a random place (one per feed).
    r#"
    DROP INDEX items_arrivals;
    "#,
    // 10: indexes every new item writes in order, or only when relevant. The
    // index of every item by (relevant, status, published_at) took each new
    // item at a random place; the readers (the outbox, grouping, the weekly
    // report) only ever ask for relevant items, a few in a hundred. `status`
    // counts every item and the backfilled ones from the first-seen index,
    // whose new entries always go at its end.
    r#"
    DROP INDEX items_relevant;
    CREATE INDEX items_relevant ON items (status, published_at) WHERE relevant = 1;
    DROP INDEX items_first_seen;
    CREATE INDEX items_first_seen ON items (first_seen_at, status);
    "#,
];

/// The version whose migration replaces text dedup keys by hashes; the
/// rows of `seen_keys` are carried over in Rust (SQLite has no SipHash).
pub const HASHED_KEYS_VERSION: i64 = 7;

/// The version that keeps arrival times with each feed; they are worked out
/// from the stored items in Rust.
pub const FEED_ARRIVALS_VERSION: i64 = 8;

/// The schema version this build writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

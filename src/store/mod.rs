//! State in an embedded SQLite database (rusqlite, bundled): feed cache
//! headers and health, every item seen with its dedup keys and tags, and the
//! outbox of what was delivered where.
//!
//! One `Store` owns one connection, and one [`StoreHandle`] owns the `Store`
//! on a thread of its own: everything outside this module reaches the
//! database through the handle (see `handle` for why, and for group commits
//! and durability). WAL mode lets `status` read while `run` writes; every
//! poll of a feed is written in one savepoint, so a crash leaves either all
//! of that poll or none of it.

pub mod alerts;
pub mod feeds;
mod handle;
pub mod items;
mod keys;
pub mod notices;
pub mod outbox;
mod schema;
pub mod stories;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use handle::{
    BATCH_WINDOW, MAX_BATCH, MAX_BATCH_TIME, MAX_QUEUED_WRITES, QueuedWrite, StoreHandle, wait_until_closed,
};
pub use schema::CURRENT_VERSION;

/// Prepared statements kept per connection: every statement of the hot
/// paths fits, so none is parsed twice.
const STATEMENT_CACHE: usize = 64;

/// Why the database could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the state database {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error(
        "the state database {path} is not a cstowatch database or is corrupt ({detail}); \
         move it aside to start fresh, or restore it from a backup"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "the state database {path} has schema version {found}, newer than this cstowatch \
         understands ({supported}); run the newer cstowatch, or restore an older backup"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("cannot create the state directory {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("state database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("state database error: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot start the state database's thread: {0}")]
    Thread(std::io::Error),
    #[error("the state database's thread has stopped")]
    Closed,
    #[error("the batch this write belonged to could not be committed: {0}")]
    BatchFailed(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The state database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Dedup keys claimed in the open transaction, not yet written.
    claimed_keys: keys::ClaimedKeys,
    /// Whether a group commit is open (see [`Store::begin_batch`]).
    batch_open: bool,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema
    /// up to date. A corrupt file or a newer schema is an error, never a reset.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            claimed_keys: keys::ClaimedKeys::default(),
            batch_open: false,
        };
        store.configure().map_err(|e| store.classify(e))?;
        store.migrate()?;
        Ok(store)
    }

    /// An in-memory database, for tests and `tag`-like commands that need no state.
    pub fn open_in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory()?;
        let mut store = Store {
            conn,
            path: PathBuf::from(":memory:"),
            claimed_keys: keys::ClaimedKeys::default(),
            batch_open: false,
        };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    /// The raw connection, for this module's tests.
    #[cfg(test)]
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Opens a group commit (see `handle`): the writes that follow, each in
    /// its own savepoint, are committed together by [`Store::commit_batch`].
    fn begin_batch(&mut self) -> Result<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        if let Err(e) = self.claimed_keys.check_other_writers(&self.conn) {
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
        self.batch_open = true;
        Ok(())
    }

    /// Commits the open batch, with the dedup keys its writes claimed; on
    /// failure it is rolled back whole.
    fn commit_batch(&mut self) -> Result<()> {
        self.batch_open = false;
        let written = self
            .claimed_keys
            .write(&self.conn)
            .and_then(|()| self.conn.execute_batch("COMMIT"));
        // The claims are gone either way: `write` takes them first.
        if let Err(e) = written {
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
        Ok(())
    }

    fn configure(&self) -> rusqlite::Result<()> {
        self.conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        self.conn.busy_timeout(Duration::from_secs(10))?;
        // journal_mode returns a row; WAL lets readers (`status`) work beside the service.
        let _mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        self.conn
            .execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
        // Each feed's write in a group commit is a savepoint, whose journal
        // of the pages it changes would otherwise be a temporary file on disk.
        self.conn.execute_batch("PRAGMA temp_store = MEMORY;")?;
        Ok(())
    }

    fn classify(&self, e: rusqlite::Error) -> StoreError {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) | Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
                StoreError::Corrupt {
                    path: self.path.clone(),
                    detail: e.to_string(),
                }
            }
            _ => StoreError::Sql(e),
        }
    }

    fn migrate(&mut self) -> Result<()> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.classify(e))?;
        if version > CURRENT_VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                supported: CURRENT_VERSION,
            });
        }
        if version == 0 {
            // A database we did not create must not be silently adopted.
            let foreign: i64 = self
                .conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                    [],
                    |r| r.get(0),
                )
                .map_err(|e| self.classify(e))?;
            if foreign > 0 {
                return Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    detail: "it holds tables but no cstowatch schema version".into(),
                });
            }
        }
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            if (i + 1) as i64 == schema::HASHED_KEYS_VERSION {
                keys::rehash_seen_keys(&tx)?;
            }
            if (i + 1) as i64 == schema::FEED_ARRIVALS_VERSION {
                alerts::fill_feed_arrivals(&tx)?;
            }
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(())
    }
}

/// Seconds since the Unix epoch, as stored.
pub fn to_unix(t: jiff::Timestamp) -> i64 {
    t.as_second()
}

/// A stored time back to a timestamp (out-of-range values clamp to the epoch).
pub fn from_unix(s: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(s).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.db");
        drop(Store::open(&path).unwrap());
        let s = Store::open(&path).unwrap();
        let v: i64 = s
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, CURRENT_VERSION);
    }

    #[test]
    fn garbage_file_is_corrupt_not_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
        let err = Store::open(&path).err().unwrap();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), vec![0x42u8; 8192]);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let s = Store::open(&path).unwrap();
            s.conn()
                .pragma_update(None, "user_version", CURRENT_VERSION + 1)
                .unwrap();
        }
        let err = Store::open(&path).err().unwrap();
        assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
    }
}

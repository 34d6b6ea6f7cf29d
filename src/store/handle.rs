//! The one way into the state database: a [`StoreHandle`] owns the
//! connection on a thread of its own and runs every piece of work there, in
//! the order it was asked for, so SQLite never blocks an async thread and no
//! lock is ever held across an `.await`.
//!
//! Why one thread and not a pool: SQLite has one writer at a time anyway,
//! and almost all of a cycle's database work is writing. One connection also
//! lets reads see the batch being written (dedup across feeds polled at once)
//! and keeps the prepared-statement cache in one place.
//!
//! **Group commits.** Poll results ([`StoreHandle::write_batched`]) are
//! written in batches: the first one opens a transaction, and every one
//! that follows within [`BATCH_WINDOW`] of the last joins it, up to
//! [`MAX_BATCH`] feeds or [`MAX_BATCH_TIME`]; one commit ends it. Each feed's write runs inside a savepoint of its own, so a
//! feed whose write fails is rolled back alone and the others still commit:
//! still all-or-nothing per feed, nothing half-written. Nobody hears "written"
//! before the commit. Under load this turns thousands of commits, each
//! rewriting the same index pages into the WAL, into a few dozen.
//!
//! **Durability.** The database runs in WAL mode with `synchronous = NORMAL`:
//! a commit survives the process being killed at any moment (the WAL is in
//! the OS's hands), but the last commits before a power cut may be lost.
//! For poll results that is harmless: the feed's validators are lost with
//! its items, so the feed is fetched again in full and nothing is missed.
//! For the outbox it is not: a delivery record must be on disk before the
//! next message to that chat goes out, or a power cut could post a message
//! twice beyond the one-message window SPEC.md allows. So
//! [`Store::record_delivery`] commits with `synchronous = FULL` (an fsync of
//! the WAL), and every other kind of work ends any open batch before it
//! runs: nothing waits behind a batch for longer than the window.
//!
//! Backpressure: at most [`MAX_QUEUED_WRITES`] batched writes wait at once;
//! a poll that finds the queue full waits for room, so a slow disk slows
//! polling down instead of filling memory with parsed items.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::{Result, Store, StoreError};

/// How long an open batch waits for another poll result before it commits.
pub const BATCH_WINDOW: Duration = Duration::from_millis(5);
/// The most feeds one batch holds.
pub const MAX_BATCH: usize = 1024;
/// The longest a batch stays open, so a steady trickle still commits.
pub const MAX_BATCH_TIME: Duration = Duration::from_secs(1);
/// The most poll results waiting to be written at once (each holds its
/// parsed items until it runs).
pub const MAX_QUEUED_WRITES: usize = 128;

/// A piece of work for the store's thread.
type Work = Box<dyn FnOnce(&mut Store) + Send>;
/// A batched write: does its work inside the open batch, and returns what to
/// tell its caller once the batch has committed (or failed to).
type BatchedWork = Box<dyn FnOnce(&mut Store) -> Box<dyn FnOnce(Option<&StoreError>) + Send> + Send>;

enum Job {
    /// Runs alone: any open batch is committed first.
    Alone(Work),
    /// Reads only: runs inside an open batch (and sees it).
    Read(Work),
    /// Joins the open batch, or opens one.
    Batched(BatchedWork, OwnedSemaphorePermit),
}

/// A write queued for a group commit.
#[must_use = "the write's outcome is only known once it is committed"]
pub struct QueuedWrite<T>(oneshot::Receiver<Result<T>>);

impl<T> QueuedWrite<T> {
    /// Waits for the batch holding the write to commit; returns what the write returned.
    pub async fn committed(self) -> Result<T> {
        self.0.await.map_err(|_| StoreError::Closed)?
    }
}

/// A cheap, cloneable handle to the state database's thread. The thread ends
/// when the last handle is dropped, after finishing the work already queued.
#[derive(Clone)]
pub struct StoreHandle {
    jobs: Sender<Job>,
    queue_room: Arc<Semaphore>,
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHandle").finish_non_exhaustive()
    }
}

impl StoreHandle {
    /// Opens (creating if needed) the database at `path` on a new thread;
    /// see [`Store::open`] for what can go wrong.
    pub fn open(path: &Path) -> Result<StoreHandle> {
        Self::start(Store::open(path)?)
    }

    /// An in-memory database, for tests.
    pub fn open_in_memory() -> Result<StoreHandle> {
        Self::start(Store::open_in_memory()?)
    }

    fn start(store: Store) -> Result<StoreHandle> {
        let (jobs, queue) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("cstowatch-store".into())
            .spawn(move || serve(store, queue))
            .map_err(StoreError::Thread)?;
        store_threads().push(thread);
        Ok(StoreHandle {
            jobs,
            queue_room: Arc::new(Semaphore::new(MAX_QUEUED_WRITES)),
        })
    }

    /// Runs `f` on the store's thread, alone (any open batch is committed
    /// first), and returns what it returned.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Alone(Box::new(move |s| {
            let _ = tx.send(f(s));
        })))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs a read on the store's thread; it may run inside an open batch
    /// and then sees that batch's writes. `f` must not write.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Read(Box::new(move |s| {
            let _ = tx.send(f(s));
        })))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs a write as part of a group commit (see the module docs) and
    /// returns once the batch holding it is committed. `f` must leave
    /// nothing behind when it fails: write inside a savepoint.
    pub async fn write_batched<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.queue_write(f).await?.committed().await
    }

    /// Queues a write for the next group commit, waiting only for room in
    /// the queue; the returned [`QueuedWrite`] says when it is committed.
    /// A caller that bounds its own work (the pipeline's poll slots) holds
    /// its slot until this returns, so at most the queue's worth of parsed
    /// items waits for the disk.
    pub async fn queue_write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T> + Send + 'static,
    ) -> Result<QueuedWrite<T>> {
        let permit = Arc::clone(&self.queue_room)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let (tx, rx) = oneshot::channel();
        let work: BatchedWork = Box::new(move |s| {
            let outcome = f(s);
            Box::new(move |commit_error: Option<&StoreError>| {
                let _ = tx.send(match (outcome, commit_error) {
                    (Ok(_), Some(e)) => Err(StoreError::BatchFailed(e.to_string())),
                    (outcome, _) => outcome,
                });
            })
        });
        self.send(Job::Batched(work, permit))?;
        Ok(QueuedWrite(rx))
    }

    /// Runs `f` on the store's thread and blocks until it is done: for the
    /// synchronous commands. Never call it from async code.
    pub fn call_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.send(Job::Alone(Box::new(move |s| {
            let _ = tx.send(f(s));
        })))?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    fn send(&self, job: Job) -> Result<()> {
        self.jobs.send(job).map_err(|_| StoreError::Closed)
    }
}

/// Every store thread started in this process, so the process can wait for
/// them to close their databases before it exits.
fn store_threads() -> std::sync::MutexGuard<'static, Vec<std::thread::JoinHandle<()>>> {
    static THREADS: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>> = std::sync::Mutex::new(Vec::new());
    THREADS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits, at most `limit`, for every store thread whose handles are all
/// dropped to finish its queued work and close its database. Called as the
/// process exits: a thread killed by the exit leaves its last commits in
/// the WAL, not checkpointed, and the next process to open the database
/// pays for reading and checkpointing them (a 10,000-feed `status` after a
/// `run --once`: 0.46 s of system time instead of 0.1 s). Closing the last
/// connection checkpoints the WAL and removes it. A thread still in use
/// (a handle kept alive) is left to the exit, as before.
pub fn wait_until_closed(limit: Duration) {
    let deadline = Instant::now() + limit;
    let threads = std::mem::take(&mut *store_threads());
    for thread in threads {
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        if thread.is_finished() {
            let _ = thread.join();
        }
    }
}

/// The store's thread: runs jobs in order, grouping batched writes.
fn serve(mut store: Store, queue: Receiver<Job>) {
    let heartbeat = &crate::monitor::liveness().store;
    let mut next = queue.recv().ok();
    while let Some(job) = next.take() {
        // Busy while a job (or a batch) runs, idle while waiting for one:
        // a job stuck on a lock shows as a stall on /healthz and stops the
        // watchdog's pings.
        let unit = heartbeat.unit();
        match job {
            Job::Alone(work) | Job::Read(work) => work(&mut store),
            Job::Batched(work, permit) => next = run_batch(&mut store, &queue, work, permit),
        }
        drop(unit);
        if next.is_none() {
            next = queue.recv().ok();
        }
    }
}

/// Runs one batch, starting with `first`; returns the job that ended it, if
/// it was not a batched write.
fn run_batch(
    store: &mut Store,
    queue: &Receiver<Job>,
    first: BatchedWork,
    first_permit: OwnedSemaphorePermit,
) -> Option<Job> {
    let opened = Instant::now();
    if let Err(e) = store.begin_batch() {
        // Cannot even begin: the write runs alone, in its own savepoint.
        let reply = first(store);
        reply(Some(&e));
        drop(first_permit);
        return None;
    }
    // A write's room in the queue is given back as soon as it has run (its
    // items are dropped then), not at the commit: the queue bounds the items
    // waiting in memory, the batch only how much one commit covers.
    let mut replies = vec![first(store)];
    drop(first_permit);
    let mut ended_by = None;
    // The window bounds waiting for more, not the batch: under load writes
    // keep arriving and the batch grows to MAX_BATCH, which is what keeps
    // the same index pages from being written to the WAL commit after commit.
    while replies.len() < MAX_BATCH && opened.elapsed() < MAX_BATCH_TIME {
        match queue.recv_timeout(BATCH_WINDOW) {
            Ok(Job::Batched(work, permit)) => {
                replies.push(work(store));
                drop(permit);
            }
            Ok(Job::Read(work)) => work(store),
            Ok(alone @ Job::Alone(_)) => {
                ended_by = Some(alone);
                break;
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let committed = store.commit_batch();
    match &committed {
        Ok(()) => tracing::debug!(
            "committed {} poll result(s), {} ms after the first",
            replies.len(),
            opened.elapsed().as_millis()
        ),
        Err(e) => tracing::error!("cannot commit {} poll result(s): {e}", replies.len()),
    }
    for reply in replies {
        reply(committed.as_ref().err());
    }
    ended_by
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feeds(s: &Store) -> Result<Vec<String>> {
        let mut stmt = s.conn().prepare("SELECT name FROM feeds ORDER BY name")?;
        let names = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(names)
    }

    /// Adds a feed row in a savepoint; `fail` rolls it back and errs, as a
    /// poll write does when something goes wrong half-way.
    fn add_feed(s: &mut Store, name: &str, fail: bool) -> Result<()> {
        let sp = s.conn.savepoint()?;
        sp.execute("INSERT INTO feeds (name, url) VALUES (?1, 'https://x/')", [name])?;
        if fail {
            return Err(StoreError::Corrupt {
                path: "test".into(),
                detail: "a write that fails half-way".into(),
            });
        }
        sp.commit()?;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_commits_every_write_but_the_one_that_failed() {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreHandle::open(&dir.path().join("state.db")).unwrap();
        let mut writes = tokio::task::JoinSet::new();
        for i in 0..300 {
            let store = store.clone();
            writes.spawn(async move {
                let name = format!("feed{i:03}");
                store.write_batched(move |s| add_feed(s, &name, i == 7)).await
            });
        }
        let mut failed = 0;
        while let Some(result) = writes.join_next().await {
            failed += usize::from(result.unwrap().is_err());
        }
        assert_eq!(failed, 1);
        let names = store.read(feeds).await.unwrap();
        assert_eq!(names.len(), 299);
        assert!(
            !names.contains(&"feed007".to_string()),
            "the failed write left nothing"
        );
        // A new connection sees it all: it was committed, not just written.
        let reopened = StoreHandle::open(&dir.path().join("state.db")).unwrap();
        assert_eq!(reopened.read(feeds).await.unwrap().len(), 299);
    }

    #[tokio::test]
    async fn work_runs_in_the_order_it_was_asked_for() {
        let store = StoreHandle::open_in_memory().unwrap();
        let write = store.write_batched(|s| add_feed(s, "a", false));
        let read = store.read(feeds);
        let call = store.call(|s| {
            add_feed(s, "b", false)?;
            feeds(s)
        });
        let (written, seen, after) = tokio::join!(write, read, call);
        written.unwrap();
        assert_eq!(seen.unwrap(), vec!["a"], "a read sees the batch it runs in");
        assert_eq!(after.unwrap(), vec!["a", "b"]);
        assert_eq!(
            store.call_blocking_from_test(feeds).await,
            vec!["a".to_string(), "b".to_string()]
        );
    }

    impl StoreHandle {
        /// `call_blocking` from a test's runtime, on a thread where blocking is allowed.
        async fn call_blocking_from_test(&self, f: fn(&Store) -> Result<Vec<String>>) -> Vec<String> {
            let handle = self.clone();
            tokio::task::spawn_blocking(move || handle.call_blocking(move |s| f(s)))
                .await
                .unwrap()
                .unwrap()
        }
    }
}

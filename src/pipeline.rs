//! The one place that runs the ingestion stages in order for a feed:
//! fetch → parse → drop known items → full text → tag → store. It holds no
//! stage's logic itself (see `fetch`, `parse`, `article`, `dedup`, `tag`,
//! `store`); it decides what to do with each stage's outcome and logs one
//! line per feed per poll.
//!
//! Where the work runs, so a cycle uses every core and nothing waits behind
//! a lock: fetching on the async runtime; parsing, dedup keys and tagging on
//! the blocking pool, at most one job per core at a time ([`CpuPool`]); the
//! database on its own thread ([`StoreHandle`]), poll results written in
//! group commits. At most `poll.concurrency` feeds are between fetch and
//! tagging at once; a feed waiting for its write to commit no longer holds
//! that slot.
//!
//! Each feed's health (validators, consecutive failures, next poll, whether
//! its last poll failed to connect) is kept in memory, loaded once from the
//! store: a poll starts without a read, and "is the whole network down?" is
//! one count, not a scan of every feed.
//!
//! **While the network is down, feeds wait for it instead of each trying
//! to connect.** Once every feed's last poll failed to connect and this
//! process has itself seen [`CONNECT_FAILURES_BEFORE_WAITING`] attempts in
//! a row fail that way, a due feed is tried only as the network's probe:
//! at most one at a time, one every [`PROBE_EVERY`]. Every other due feed
//! records a failure at once ("not tried while the network is down", kind
//! `network`), so `status` still shows each feed's error, the failures
//! still do not count against the feeds, and the first answer from any
//! feed ends the wait. In a real outage that saves a DNS lookup and a
//! connect per feed per round; the attempts in a row keep a state left
//! over from an old outage from holding feeds back when the network is up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::article::{ArticleExtractor, fill_full_text};
use crate::config::{Config, FeedConfig};
use crate::dedup::DedupKeys;
use crate::fetch::schedule::next_poll_delay;
use crate::fetch::{CacheHints, FeedResponse, HttpClient, NETWORK_ERROR_KIND, Validators};
use crate::item::Item;
use crate::parse::{ParsedFeed, parse_feed_deferred};
use crate::store::StoreHandle;
use crate::store::feeds::{FeedFailure, FeedState};
use crate::store::items::{ItemTags, NewItem, PollSuccess, PollSummary};
use crate::tag::{Document, Rules, Tagging};

/// Attempts to connect this process must see fail in a row, on top of every
/// feed's last poll having failed to connect, before feeds wait for the
/// network instead of trying (see the module doc).
pub const CONNECT_FAILURES_BEFORE_WAITING: u32 = 8;
/// While the network is down, how often one due feed is tried to see whether it is back.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Everything a poll needs, shared by every feed's task.
pub struct Pipeline {
    config: Arc<Config>,
    /// Fixed for the pipeline's life: a reload builds a new pipeline.
    rules: Arc<Rules>,
    client: HttpClient,
    extractors: HashMap<String, Arc<ArticleExtractor>>,
    store: StoreHandle,
    health: Mutex<Health>,
    /// Feeds between fetch and tagging at once (`poll.concurrency`).
    in_flight: Semaphore,
    cpu: CpuPool,
}

/// How one poll of one feed went.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// 200: parsed and stored.
    Fetched { bytes: usize, summary: PollSummary },
    /// 304: nothing changed, nothing parsed.
    NotModified,
    /// The fetch or the parse failed; the feed's error is recorded.
    Failed(Failure),
}

/// A failed poll, before it is recorded.
#[derive(Debug, Clone)]
pub struct Failure {
    /// `timeout`, `http-503`, `too-large`, `not-a-feed`, `malformed` ...
    pub kind: String,
    pub message: String,
    /// The host could not be reached at all (DNS, connect): a hint that the
    /// network, not the feed, is down.
    pub network: bool,
    pub hints: CacheHints,
}

/// The result of polling one feed.
#[derive(Debug, Clone)]
pub struct FeedReport {
    pub feed: String,
    pub outcome: Outcome,
    pub duration: Duration,
    /// When the feed should be polled next (for a failure: once recorded,
    /// see [`Pipeline::record_failure`]).
    pub next_poll_at: Timestamp,
}

/// What the pipeline remembers about each feed between polls.
#[derive(Debug, Clone, Default)]
struct FeedHealth {
    /// The URL the validators were issued for.
    url: String,
    validators: Validators,
    consecutive_failures: u32,
    next_poll_at: Option<Timestamp>,
    /// The last poll failed to connect at all.
    unreachable: bool,
    /// A poll has succeeded before: the feed's entries may be known, so a
    /// poll drops the known ones before making their text.
    polled_before: bool,
}

/// Every enabled feed's health, and how many of them are unreachable.
#[derive(Debug, Default)]
struct Health {
    feeds: HashMap<String, FeedHealth>,
    unreachable: usize,
    /// The network is taken to be down (logged once when it goes, once when it is back).
    network_down: bool,
    /// Attempts this process saw fail to connect since any host last answered.
    connect_failures_in_a_row: u32,
    /// While the network is down: the one poll let through to see whether it is back.
    probe: Probe,
}

/// The network's probe while it is down.
#[derive(Debug, Default)]
struct Probe {
    in_flight: bool,
    last_started: Option<Instant>,
    /// What skipped feeds record: the last real attempt's error, said once.
    skipped_message: String,
}

/// Whether a due feed is fetched or waits for the network.
enum Attempt<'a> {
    Fetch,
    /// Fetched as the network's probe: the guard ends the probe when the fetch is done.
    Probe(ProbeGuard<'a>),
    /// Not tried: the network is down and another feed is probing it.
    Wait(Failure),
}

/// Ends the probe when dropped, also when the poll is abandoned mid-fetch.
struct ProbeGuard<'a>(&'a Mutex<Health>);

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).probe.in_flight = false;
    }
}

impl Health {
    fn from_states(config: &Config, states: Vec<FeedState>) -> Health {
        let mut by_name: HashMap<String, FeedState> =
            states.into_iter().map(|s| (s.name.clone(), s)).collect();
        let mut health = Health::default();
        for feed in config.enabled_feeds() {
            let h = match by_name.remove(&feed.name) {
                Some(s) => FeedHealth {
                    unreachable: s.last_status.as_deref() == Some(crate::fetch::NETWORK_ERROR_KIND),
                    url: s.url,
                    validators: Validators {
                        etag: s.etag,
                        last_modified: s.last_modified,
                    },
                    consecutive_failures: s.consecutive_failures,
                    next_poll_at: s.next_poll_at,
                    polled_before: s.first_success_at.is_some(),
                },
                None => FeedHealth::default(),
            };
            health.unreachable += usize::from(h.unreachable);
            health.feeds.insert(feed.name.clone(), h);
        }
        health
    }

    /// Feeds wait for the network instead of connecting (see the module doc).
    fn waiting_for_network(&self) -> bool {
        self.network_down && self.connect_failures_in_a_row >= CONNECT_FAILURES_BEFORE_WAITING
    }

    /// A fetch ended: with the error when it could not connect at all.
    fn attempted(&mut self, connect_error: Option<&str>) {
        match connect_error {
            Some(error) => {
                self.connect_failures_in_a_row = self.connect_failures_in_a_row.saturating_add(1);
                self.probe.skipped_message =
                    format!("not tried while the network is down (last attempt: {error})");
            }
            None => self.connect_failures_in_a_row = 0,
        }
    }

    fn set_unreachable(&mut self, name: &str, unreachable: bool) {
        if let Some(h) = self.feeds.get_mut(name) {
            if h.unreachable != unreachable {
                if unreachable {
                    self.unreachable += 1;
                } else {
                    self.unreachable -= 1;
                }
            }
            h.unreachable = unreachable;
        }
    }
}

/// CPU-bound work (parsing, tagging) on the blocking pool, at most one job
/// per core at a time: a cycle uses every core, and the pool does not grow
/// to hundreds of threads when thousands of feeds answer at once.
struct CpuPool {
    permits: Semaphore,
}

impl CpuPool {
    fn new() -> CpuPool {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        CpuPool {
            permits: Semaphore::new(cores),
        }
    }

    async fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> anyhow::Result<R> {
        let _permit = self.permits.acquire().await?;
        Ok(tokio::task::spawn_blocking(f).await?)
    }
}

impl Pipeline {
    /// Builds the HTTP client, compiles every feed's article selectors, and
    /// loads every feed's health from the store.
    pub async fn new(config: Arc<Config>, rules: Arc<Rules>, store: StoreHandle) -> anyhow::Result<Pipeline> {
        let client = HttpClient::new(&config.poll)?;
        let mut extractors = HashMap::new();
        for feed in &config.feeds {
            if !feed.article_selector.is_empty() {
                let selectors = feed
                    .article_selector
                    .iter()
                    .map(|s| (s.text.clone(), s.compiled.clone()));
                extractors.insert(
                    feed.name.clone(),
                    Arc::new(ArticleExtractor::from_compiled(selectors)),
                );
            }
        }
        let states = store.read(|s| s.feed_states()).await?;
        Ok(Pipeline {
            health: Mutex::new(Health::from_states(&config, states)),
            in_flight: Semaphore::new(config.poll.concurrency),
            cpu: CpuPool::new(),
            config,
            rules,
            client,
            extractors,
            store,
        })
    }

    /// The configuration this pipeline was built from.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The state database.
    pub fn store(&self) -> &StoreHandle {
        &self.store
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<Rules> {
        Arc::clone(&self.rules)
    }

    /// When `feed` should next be polled, as last recorded (`None`: never polled).
    pub fn next_poll_at(&self, feed: &str) -> Option<Timestamp> {
        self.health().feeds.get(feed).and_then(|h| h.next_poll_at)
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Polls one feed: fetch, parse, dedup, full text, tag, and (on success)
    /// store everything in one transaction. A failure is returned, not
    /// recorded: whether it counts against the feed depends on the others
    /// (see [`Pipeline::record_failure`]).
    pub async fn poll_feed(&self, feed: &FeedConfig) -> anyhow::Result<FeedReport> {
        self.poll_feed_admitted(feed, None).await
    }

    /// [`Pipeline::poll_feed`], giving `admission` back as soon as the poll
    /// no longer needs its parsed items in memory: once its write is queued
    /// (or it failed). A poll waiting for its group commit holds nothing but
    /// its report, so a round can start the next feeds meanwhile.
    async fn poll_feed_admitted(
        &self,
        feed: &FeedConfig,
        admission: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> anyhow::Result<FeedReport> {
        let started = Instant::now();
        let (outcome, next_poll_at) = self.poll_feed_inner(feed, admission).await?;
        if let Outcome::Failed(failure) = &outcome {
            self.note_failure(&feed.name, failure);
        }
        let report = FeedReport {
            feed: feed.name.clone(),
            outcome,
            duration: started.elapsed(),
            next_poll_at,
        };
        // While the network is down (said once, at warn), each feed failing
        // to connect is routine: at info, so 10,000 feeds do not fill the
        // journal with 10,000 warnings a round.
        let routine =
            matches!(&report.outcome, Outcome::Failed(f) if f.network) && self.health().network_down;
        log_report(&report, routine);
        Ok(report)
    }

    async fn poll_feed_inner(
        &self,
        feed: &FeedConfig,
        admission: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> anyhow::Result<(Outcome, Timestamp)> {
        let slot = self.in_flight.acquire().await?;
        let slot = (slot, admission);
        // Decided once a slot is free, not before waiting for one: polls
        // queued behind the first failures then already see them.
        let probe = match self.attempt() {
            Attempt::Fetch => None,
            Attempt::Probe(guard) => Some(guard),
            Attempt::Wait(failure) => return Ok((Outcome::Failed(failure), Timestamp::now())),
        };
        // Validators are only trusted for the URL they were issued for.
        let validators = match self.health().feeds.get(&feed.name) {
            Some(h) if h.url == feed.url.as_str() => h.validators.clone(),
            _ => Validators::default(),
        };
        let now = Timestamp::now();
        let response = self.client.fetch_feed(&feed.url, &validators).await;
        // The probe (if this poll is it) ends once its outcome is noted.
        let mut fetched = match response {
            Ok(FeedResponse::Fetched(f)) => {
                self.health().attempted(None);
                f
            }
            Ok(FeedResponse::NotModified { hints }) => {
                self.health().attempted(None);
                drop(probe);
                let (_, next) = self
                    .store_success(
                        slot,
                        feed,
                        now,
                        "304",
                        validators,
                        Vec::new(),
                        0,
                        hints,
                        None,
                        None,
                    )
                    .await?;
                return Ok((Outcome::NotModified, next));
            }
            Err(e) => {
                let failure = Failure {
                    kind: e.kind().to_string(),
                    message: e.to_string(),
                    network: e.is_network(),
                    hints: CacheHints {
                        retry_after: e.retry_after(),
                        max_age: None,
                    },
                };
                self.health()
                    .attempted(failure.network.then_some(failure.message.as_str()));
                return Ok((Outcome::Failed(failure), now));
            }
        };
        drop(probe);
        let bytes = fetched.body.len();
        let parsed = {
            // Taken, not shared: a poll waiting for its group commit must
            // not keep its whole document alive.
            let body = std::mem::take(&mut fetched.body);
            let content_type = fetched.content_type.clone();
            // Relative links resolve against where the feed really came from, after redirects.
            let url = fetched.final_url.clone();
            let feed_name = feed.name.clone();
            self.cpu
                .run(move || {
                    parse_feed_deferred(&body, content_type.as_deref(), &url, &feed_name, now).map(with_keys)
                })
                .await?
        };
        let (document, keys) = match parsed {
            Ok(p) => p,
            Err(e) => {
                let failure = Failure {
                    kind: e.kind().to_string(),
                    message: e.to_string(),
                    network: false,
                    hints: fetched.hints,
                };
                return Ok((Outcome::Failed(failure), now));
            }
        };
        let ttl = document.ttl;
        let warning = (!document.warnings.is_empty()).then(|| document.warnings.join("; "));
        if let Some(warning) = &warning {
            warn!(feed = %feed.name, warning = %warning, "feed read with a warning");
        }

        // Drop what we already have before making its text or fetching its
        // article page. A feed never polled before has nothing known: no
        // round trip to the store (a first cycle of 10,000 feeds would pay
        // it for nothing); the store's write checks every key anyway.
        let extractor = self.extractors.get(&feed.name);
        let polled_before = self
            .health()
            .feeds
            .get(&feed.name)
            .is_some_and(|h| h.polled_before);
        let (keys, known) = if extractor.is_some() || polled_before {
            self.store
                .read(move |s| {
                    let known = keys
                        .iter()
                        .map(|k| s.is_known(k, now))
                        .collect::<crate::store::Result<Vec<bool>>>()?;
                    Ok((keys, known))
                })
                .await?
        } else {
            let known = vec![false; keys.len()];
            (keys, known)
        };
        let already_known = known.iter().filter(|k| **k).count();
        let rules = self.rules();
        let items = match extractor {
            Some(extractor) => {
                let fresh = self.cpu.run(move || fresh_items(document, keys, &known)).await?;
                let (mut fresh, keys): (Vec<Item>, Vec<DedupKeys>) = fresh.into_iter().unzip();
                fill_full_text(
                    &self.client,
                    extractor,
                    &mut fresh,
                    self.config.poll.full_text_below,
                    self.config.poll.article_concurrency,
                )
                .await;
                self.cpu
                    .run(move || tag_all(&rules, fresh.into_iter().zip(keys)))
                    .await?
            }
            None => {
                self.cpu
                    .run(move || tag_all(&rules, fresh_items(document, keys, &known)))
                    .await?
            }
        };
        let (summary, next) = self
            .store_success(
                slot,
                feed,
                now,
                "200",
                fetched.validators,
                items,
                already_known,
                fetched.hints,
                ttl,
                warning,
            )
            .await?;
        Ok((Outcome::Fetched { bytes, summary }, next))
    }

    /// Queues the poll's write, then gives up the poll slot (so the next feed
    /// is fetched while this one waits for its group commit) and waits.
    #[allow(clippy::too_many_arguments)]
    async fn store_success(
        &self,
        slot: (
            tokio::sync::SemaphorePermit<'_>,
            Option<tokio::sync::OwnedSemaphorePermit>,
        ),
        feed: &FeedConfig,
        now: Timestamp,
        status: &'static str,
        validators: Validators,
        items: Vec<NewItem>,
        // Entries dropped before the write as already stored: counted as duplicates.
        already_known: usize,
        hints: CacheHints,
        ttl: Option<Duration>,
        // Only a 200 sets it: `None` there clears the last poll's warning; a 304 keeps it.
        warning: Option<String>,
    ) -> anyhow::Result<(PollSummary, Timestamp)> {
        let delay = next_poll_delay(
            feed.interval(&self.config.poll),
            self.config.poll.max_interval,
            0,
            hints,
            ttl,
        );
        let next = add(now, delay);
        let (name, url) = (feed.name.clone(), feed.url.to_string());
        let backfill = self.config.poll.backfill;
        let stored = validators.clone();
        let queued = self
            .store
            .queue_write(move |s| {
                s.record_poll_success(PollSuccess {
                    name: &name,
                    url: &url,
                    at: now,
                    status,
                    etag: stored.etag.as_deref(),
                    last_modified: stored.last_modified.as_deref(),
                    items,
                    backfill,
                    next_poll_at: next,
                    warning: warning.as_deref(),
                })
            })
            .await?;
        drop(slot);
        let mut summary = queued.committed().await?;
        summary.duplicates += already_known;
        let mut health = self.health();
        health.set_unreachable(&feed.name, false);
        if health.network_down {
            health.network_down = false;
            info!(feed = %feed.name, "a feed answered: the network is back");
        }
        if let Some(h) = health.feeds.get_mut(&feed.name) {
            h.url = feed.url.to_string();
            h.validators = validators;
            h.consecutive_failures = 0;
            h.next_poll_at = Some(next);
            h.polled_before = true;
        }
        Ok((summary, next))
    }

    /// Whether a due feed is fetched now, as the network's probe, or waits
    /// for the network (see the module doc).
    fn attempt(&self) -> Attempt<'_> {
        let mut health = self.health();
        if !health.waiting_for_network() {
            return Attempt::Fetch;
        }
        let probe_due = health
            .probe
            .last_started
            .is_none_or(|t| t.elapsed() >= PROBE_EVERY);
        if !health.probe.in_flight && probe_due {
            health.probe.in_flight = true;
            health.probe.last_started = Some(Instant::now());
            return Attempt::Probe(ProbeGuard(&self.health));
        }
        Attempt::Wait(Failure {
            kind: NETWORK_ERROR_KIND.to_string(),
            message: health.probe.skipped_message.clone(),
            network: true,
            hints: CacheHints::default(),
        })
    }

    /// Whether the network is taken to be down: the last failure to connect
    /// found every enabled feed's last poll failing to connect too. A
    /// failure then is recorded without counting against its feed.
    pub fn network_is_down(&self) -> bool {
        self.health().network_down
    }

    /// Notes that `feed`'s poll failed, and decides whether that means the
    /// network is down: it failed to connect, and so did every other enabled
    /// feed's last poll. One count, kept as polls finish, not a scan.
    fn note_failure(&self, feed: &str, failure: &Failure) {
        let mut health = self.health();
        // Noted at once, not when the failure is written: a feed failing a
        // moment later must already see this one.
        health.set_unreachable(feed, failure.network);
        let down = failure.network && health.unreachable >= health.feeds.len();
        if down && !health.network_down {
            warn!(
                feeds = health.feeds.len(),
                "every feed is failing to connect: treating it as the network being down \
                 (failures are recorded, not held against the feeds)"
            );
        }
        health.network_down = down || (health.network_down && failure.network);
    }

    /// Records a failed poll and returns when the feed should be polled next.
    /// `network_down`: every feed is failing to connect at once, so this is
    /// the machine's network, not the feed; it is recorded without counting
    /// against the feed.
    pub async fn record_failure(
        &self,
        feed: &FeedConfig,
        failure: &Failure,
        network_down: bool,
    ) -> anyhow::Result<Timestamp> {
        let now = Timestamp::now();
        let previous = self
            .health()
            .feeds
            .get(&feed.name)
            .map_or(0, |h| h.consecutive_failures);
        let counted = if network_down { previous } else { previous + 1 };
        let next = add(
            now,
            next_poll_delay(
                feed.interval(&self.config.poll),
                self.config.poll.max_interval,
                counted,
                failure.hints,
                None,
            ),
        );
        let (name, url) = (feed.name.clone(), feed.url.to_string());
        let (kind, message) = (failure.kind.clone(), failure.message.clone());
        self.store
            .write_batched(move |s| {
                s.record_feed_failure(&FeedFailure {
                    name: &name,
                    url: &url,
                    at: now,
                    kind: &kind,
                    message: &message,
                    network_down,
                    next_poll_at: next,
                })
            })
            .await?;
        let mut health = self.health();
        health.set_unreachable(&feed.name, failure.network);
        if let Some(h) = health.feeds.get_mut(&feed.name) {
            h.consecutive_failures = counted;
            h.next_poll_at = Some(next);
        }
        Ok(next)
    }

    /// Polls every enabled feed once, at most `poll.concurrency` at a time,
    /// each on the runtime's worker threads, then records the failures (as
    /// "network down" when every feed failed to connect: one decision for
    /// the cycle). One feed's failure never stops the others.
    pub async fn poll_all(self: &Arc<Self>) -> anyhow::Result<Vec<FeedReport>> {
        // Enough tasks to keep every poll slot busy and the write queue full,
        // not one per feed: each holds a whole poll's state from its spawn,
        // and 10,000 of them at once cost tens of megabytes.
        // A poll gives its admission back once its write is queued, not when
        // it is committed: bounding finished polls waiting for their group
        // commit would cap a batch at this many feeds and stall fetching
        // while each batch commits.
        let admission = Arc::new(Semaphore::new(
            self.config.poll.concurrency + crate::store::MAX_QUEUED_WRITES,
        ));
        let mut polls = tokio::task::JoinSet::new();
        let mut reports = Vec::new();
        for feed in self.config.enabled_feeds() {
            let admitted = loop {
                tokio::select! {
                    permit = Arc::clone(&admission).acquire_owned() => break permit?,
                    Some(report) = polls.join_next() => reports.push(report??),
                }
            };
            let (pipeline, feed) = (Arc::clone(self), feed.clone());
            polls.spawn(async move { pipeline.poll_feed_admitted(&feed, Some(admitted)).await });
        }
        while let Some(report) = polls.join_next().await {
            reports.push(report??);
        }
        let network_down = !reports.is_empty()
            && reports
                .iter()
                .all(|r| matches!(&r.outcome, Outcome::Failed(f) if f.network));
        // Said once: the polls' own failures may have said it already.
        if network_down && !self.network_is_down() {
            warn!(
                feeds = reports.len(),
                "every feed failed to connect: treating it as the network being down"
            );
        }
        let feeds: HashMap<&str, &FeedConfig> = self
            .config
            .enabled_feeds()
            .map(|f| (f.name.as_str(), f))
            .collect();
        let mut failures = tokio::task::JoinSet::new();
        for report in &reports {
            if let Outcome::Failed(failure) = &report.outcome
                && let Some(feed) = feeds.get(report.feed.as_str())
            {
                let (pipeline, feed, failure) = (Arc::clone(self), (*feed).clone(), failure.clone());
                failures.spawn(async move { pipeline.record_failure(&feed, &failure, network_down).await });
            }
        }
        while let Some(recorded) = failures.join_next().await {
            recorded??;
        }
        Ok(reports)
    }
}

/// Pairs each parsed item with its dedup keys (keys that distinct entries of
/// the document share are dropped: see `DedupKeys::of_document`), and joins
/// the parser's warnings into the one line `status` shows.
fn with_keys(parsed: ParsedFeed) -> (ParsedFeed, Vec<DedupKeys>) {
    let keys = DedupKeys::of_document(&parsed.items);
    (parsed, keys)
}

/// The document's entries not `known`, their text made, with their keys.
fn fresh_items(mut document: ParsedFeed, keys: Vec<DedupKeys>, known: &[bool]) -> Vec<(Item, DedupKeys)> {
    document.finish_texts(|i| !known.get(i).copied().unwrap_or(false));
    document
        .items
        .into_iter()
        .zip(keys)
        .zip(known)
        .filter(|(_, known)| !**known)
        .map(|(pair, _)| pair)
        .collect()
}

fn tag_all(rules: &Rules, items: impl IntoIterator<Item = (Item, DedupKeys)>) -> Vec<NewItem> {
    let started = Instant::now();
    let tagged = items
        .into_iter()
        .map(|(item, keys)| tag_new_item(rules, item, keys))
        .collect();
    crate::monitor::metrics().observe_tagging(started.elapsed());
    tagged
}

/// An item tagged as the store keeps it: the tagger's verdict, and the
/// names it found in the title and lead, which story grouping compares.
pub fn tag_new_item(rules: &Rules, item: Item, keys: DedupKeys) -> NewItem {
    let tagging = rules.tag(&Document {
        title: &item.title,
        summary: &item.summary,
        content: &item.content,
    });
    let names = crate::story::names_in_title_and_lead(&tagging, &item.summary, &item.content)
        .map(str::to_owned)
        .collect();
    let tags = verdict(&tagging);
    NewItem {
        item,
        keys,
        tags,
        names,
    }
}

/// The tagger's verdict on an item's three text fields.
pub fn tag_text(rules: &Rules, title: &str, summary: &str, content: &str) -> ItemTags {
    verdict(&rules.tag(&Document {
        title,
        summary,
        content,
    }))
}

fn verdict(tagging: &Tagging) -> ItemTags {
    ItemTags {
        tags: tagging.tags.iter().map(|t| t.to_string()).collect(),
        score: tagging.score,
        relevant: tagging.relevant,
    }
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(t)
}

fn log_report(r: &FeedReport, routine_failure: bool) {
    let ms = r.duration.as_millis() as u64;
    match &r.outcome {
        Outcome::Fetched { bytes, summary } => info!(
            feed = %r.feed, outcome = "200", bytes, new = summary.new, relevant = summary.relevant,
            backfilled = summary.backfilled, duplicates = summary.duplicates, duration_ms = ms, "polled"
        ),
        Outcome::NotModified => {
            info!(feed = %r.feed, outcome = "304", bytes = 0, new = 0, duration_ms = ms, "polled")
        }
        Outcome::Failed(f) if routine_failure => {
            info!(feed = %r.feed, outcome = %f.kind, error = %f.message, bytes = 0, new = 0, duration_ms = ms, "poll failed")
        }
        Outcome::Failed(f) => {
            warn!(feed = %r.feed, outcome = %f.kind, error = %f.message, bytes = 0, new = 0, duration_ms = ms, "poll failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::path::Path;

    /// An address on 127.0.0.1 where nothing listens (yet): connections are refused.
    fn unused_address() -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a test port");
        listener.local_addr().expect("test listener has an address")
    }

    async fn pipeline_for(addresses: &[SocketAddr], store: StoreHandle) -> Pipeline {
        let mut toml = String::from("[poll]\ninterval = \"1m\"\ntimeout = \"2s\"\n");
        for (i, addr) in addresses.iter().enumerate() {
            toml.push_str(&format!(
                "[[feeds]]\nname = \"f{i}\"\nurl = \"http://{addr}/feed\"\n"
            ));
        }
        let config = Config::from_toml(&toml, Path::new("/tmp/cstowatch.toml")).expect("test config");
        let rules_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rules.toml");
        let rules = Rules::load(&rules_path).expect("the shipped rules").0;
        Pipeline::new(Arc::new(config), Arc::new(rules), store)
            .await
            .expect("pipeline")
    }

    /// Polls feed `i` and returns its failure (every feed here fails).
    async fn failure_of(pipeline: &Pipeline, i: usize) -> Failure {
        let feed = pipeline.config().feeds[i].clone();
        match pipeline.poll_feed(&feed).await.expect("poll").outcome {
            Outcome::Failed(f) => f,
            other => panic!("f{i} did not fail: {other:?}"),
        }
    }

    fn was_tried(f: &Failure) -> bool {
        !f.message.starts_with("not tried")
    }

    #[tokio::test]
    async fn while_the_network_is_down_one_feed_probes_it_and_the_others_wait() {
        let addresses: Vec<SocketAddr> = (0..12).map(|_| unused_address()).collect();
        let pipeline = pipeline_for(&addresses, StoreHandle::open_in_memory().unwrap()).await;
        // Nothing known yet: every feed is tried until all have failed to connect.
        for i in 0..12 {
            let f = failure_of(&pipeline, i).await;
            assert!(f.network && was_tried(&f), "f{i}: {f:?}");
        }
        assert!(pipeline.network_is_down());
        // Now one feed probes the network and the others record that they waited.
        let round: Vec<Failure> =
            futures_util::future::join_all((0..12).map(|i| failure_of(&pipeline, i))).await;
        assert_eq!(round.iter().filter(|f| was_tried(f)).count(), 1, "{round:#?}");
        for f in round.iter().filter(|f| !was_tried(f)) {
            assert_eq!((f.kind.as_str(), f.network), (NETWORK_ERROR_KIND, true));
            assert!(
                f.message.contains("Connection refused"),
                "the last attempt's error: {}",
                f.message
            );
        }

        // The network comes back at f0's address: the next probe (a second
        // later) reaches it, and the other feeds are tried again at once.
        let listener = tokio::net::TcpListener::bind(addresses[0])
            .await
            .expect("rebind f0's port");
        tokio::spawn(async move {
            let router = axum::Router::new().route("/feed", axum::routing::get(|| async { "not a feed" }));
            axum::serve(listener, router).await.expect("test server runs");
        });
        tokio::time::sleep(PROBE_EVERY + Duration::from_millis(100)).await;
        let f0 = failure_of(&pipeline, 0).await;
        assert!(
            !f0.network,
            "f0 answered (with something that is not a feed): {f0:?}"
        );
        assert!(!pipeline.network_is_down());
        let f1 = failure_of(&pipeline, 1).await;
        assert!(was_tried(&f1), "{f1:?}");
    }

    #[tokio::test]
    async fn an_old_outage_in_the_state_does_not_hold_feeds_back_before_attempts_fail() {
        let addresses: Vec<SocketAddr> = (0..12).map(|_| unused_address()).collect();
        let store = StoreHandle::open_in_memory().unwrap();
        let names: Vec<String> = (0..12).map(|i| format!("f{i}")).collect();
        store
            .call(move |s| {
                for name in &names {
                    s.record_feed_failure(&FeedFailure {
                        name,
                        url: "http://old/feed",
                        at: Timestamp::from_second(1_790_000_000).unwrap(),
                        kind: NETWORK_ERROR_KIND,
                        message: "network error: connection refused",
                        network_down: true,
                        next_poll_at: Timestamp::from_second(1_790_000_000).unwrap(),
                    })?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let pipeline = pipeline_for(&addresses, store).await;
        // Every feed's last poll failed to connect, so the first failure now
        // means the network is down; feeds still connect until this process
        // has seen enough attempts in a row fail.
        for i in 0..CONNECT_FAILURES_BEFORE_WAITING as usize {
            let f = failure_of(&pipeline, i).await;
            assert!(was_tried(&f), "f{i}: {f:?}");
            assert!(pipeline.network_is_down());
        }
        let probe = failure_of(&pipeline, 8).await;
        assert!(was_tried(&probe), "the first probe: {probe:?}");
        let waited = failure_of(&pipeline, 9).await;
        assert!(!was_tried(&waited), "{waited:?}");
    }
}

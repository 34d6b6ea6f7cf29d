//! The one place that runs the ingestion stages in order for a feed:
//! fetch → parse → drop known items → full text → tag → store. It holds no
//! stage's logic itself (see `fetch`, `parse`, `article`, `dedup`, `tag`,
//! `store`); it decides what to do with each stage's outcome and logs one
//! line per feed per poll.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tracing::{info, warn};

use crate::article::{ArticleExtractor, fill_full_text};
use crate::config::{Config, FeedConfig};
use crate::dedup::DedupKeys;
use crate::fetch::schedule::next_poll_delay;
use crate::fetch::{CacheHints, FeedResponse, HttpClient, Validators};
use crate::parse::parse_feed;
use crate::store::Store;
use crate::store::feeds::FeedFailure;
use crate::store::items::{ItemTags, NewItem, PollSuccess, PollSummary};
use crate::tag::{Document, Rules};

/// Everything a poll needs, shared by every feed's task.
pub struct Pipeline {
    config: Arc<Config>,
    rules: RwLock<Arc<Rules>>,
    client: HttpClient,
    extractors: HashMap<String, Arc<ArticleExtractor>>,
    store: Arc<Mutex<Store>>,
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
}

impl Pipeline {
    /// Builds the HTTP client and compiles every feed's article selectors.
    pub fn new(config: Arc<Config>, rules: Arc<Rules>, store: Arc<Mutex<Store>>) -> anyhow::Result<Pipeline> {
        let client = HttpClient::new(&config.poll)?;
        let mut extractors = HashMap::new();
        for feed in &config.feeds {
            if !feed.article_selector.is_empty() {
                let extractor = ArticleExtractor::new(&feed.article_selector)
                    .map_err(|e| anyhow::anyhow!("feed {}: article_selector: {e}", feed.name))?;
                extractors.insert(feed.name.clone(), Arc::new(extractor));
            }
        }
        Ok(Pipeline {
            config,
            rules: RwLock::new(rules),
            client,
            extractors,
            store,
        })
    }

    /// The configuration this pipeline was built from.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The shared state database.
    pub fn store(&self) -> &Arc<Mutex<Store>> {
        &self.store
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<Rules> {
        Arc::clone(&self.rules.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Swaps in new rules (reload); polls already running finish with the old ones.
    pub fn set_rules(&self, rules: Arc<Rules>) {
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = rules;
    }

    /// Runs a closure on the store on the blocking pool, so SQLite never stalls the runtime.
    pub async fn with_store<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> R + Send + 'static,
    ) -> anyhow::Result<R> {
        let store = Arc::clone(&self.store);
        Ok(tokio::task::spawn_blocking(move || {
            let mut guard = store.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        })
        .await?)
    }

    /// Polls one feed: fetch, parse, dedup, full text, tag, and (on success)
    /// store everything in one transaction. A failure is returned, not
    /// recorded: whether it counts against the feed depends on the others
    /// (see [`Pipeline::record_failure`]).
    pub async fn poll_feed(&self, feed: &FeedConfig) -> anyhow::Result<FeedReport> {
        let started = Instant::now();
        let outcome = self.poll_feed_inner(feed).await?;
        let report = FeedReport {
            feed: feed.name.clone(),
            outcome,
            duration: started.elapsed(),
        };
        log_report(&report);
        Ok(report)
    }

    async fn poll_feed_inner(&self, feed: &FeedConfig) -> anyhow::Result<Outcome> {
        let name = feed.name.clone();
        let state = self.with_store(move |s| s.feed_state(&name)).await??;
        // Validators are only trusted for the URL they were issued for.
        let validators = match &state {
            Some(s) if s.url == feed.url.as_str() => Validators {
                etag: s.etag.clone(),
                last_modified: s.last_modified.clone(),
            },
            _ => Validators::default(),
        };
        let now = Timestamp::now();
        let fetched = match self.client.fetch_feed(&feed.url, &validators).await {
            Ok(FeedResponse::Fetched(f)) => f,
            Ok(FeedResponse::NotModified { hints }) => {
                self.store_success(feed, now, "304", &validators, Vec::new(), hints, None)
                    .await?;
                return Ok(Outcome::NotModified);
            }
            Err(e) => {
                return Ok(Outcome::Failed(Failure {
                    kind: e.kind().to_string(),
                    message: e.to_string(),
                    network: e.is_network(),
                    hints: CacheHints {
                        retry_after: e.retry_after(),
                        max_age: None,
                    },
                }));
            }
        };
        let bytes = fetched.body.len();
        let parsed = {
            let body = fetched.body.clone();
            let content_type = fetched.content_type.clone();
            // Relative links resolve against where the feed really came from, after redirects.
            let url = fetched.final_url.clone();
            let feed_name = feed.name.clone();
            tokio::task::spawn_blocking(move || {
                parse_feed(&body, content_type.as_deref(), &url, &feed_name, now)
            })
            .await?
        };
        let parsed = match parsed {
            Ok(p) => p,
            Err(e) => {
                return Ok(Outcome::Failed(Failure {
                    kind: e.kind().to_string(),
                    message: e.to_string(),
                    network: false,
                    hints: fetched.hints,
                }));
            }
        };

        // Drop what we already have before any article page is fetched for it.
        let document_keys = DedupKeys::of_document(&parsed.items);
        let candidates: Vec<(crate::item::Item, DedupKeys)> =
            parsed.items.into_iter().zip(document_keys).collect();
        let (mut fresh, keys): (Vec<_>, Vec<_>) = self
            .with_store(move |s| -> crate::store::Result<Vec<_>> {
                let mut fresh = Vec::new();
                for (item, keys) in candidates {
                    if !s.is_known(&keys, now)? {
                        fresh.push((item, keys));
                    }
                }
                Ok(fresh)
            })
            .await??
            .into_iter()
            .unzip();

        if let Some(extractor) = self.extractors.get(&feed.name) {
            fill_full_text(
                &self.client,
                extractor,
                &mut fresh,
                self.config.poll.full_text_below,
                self.config.poll.article_concurrency,
            )
            .await;
        }

        let rules = self.rules();
        let items: Vec<NewItem> = fresh
            .into_iter()
            .zip(keys)
            .map(|(item, keys)| {
                let tags = tag_item(&rules, &item);
                NewItem { item, keys, tags }
            })
            .collect();
        let warning = (!parsed.warnings.is_empty()).then(|| parsed.warnings.join("; "));
        if let Some(warning) = &warning {
            warn!(feed = %feed.name, warning = %warning, "feed read with a warning");
        }
        let summary = self
            .store_success(
                feed,
                now,
                "200",
                &fetched.validators,
                items,
                fetched.hints,
                parsed.ttl,
            )
            .await?;
        let name = feed.name.clone();
        self.with_store(move |s| s.set_feed_warning(&name, warning.as_deref()))
            .await??;
        Ok(Outcome::Fetched { bytes, summary })
    }

    #[allow(clippy::too_many_arguments)]
    async fn store_success(
        &self,
        feed: &FeedConfig,
        now: Timestamp,
        status: &'static str,
        validators: &Validators,
        items: Vec<NewItem>,
        hints: CacheHints,
        ttl: Option<Duration>,
    ) -> anyhow::Result<PollSummary> {
        let delay = next_poll_delay(
            feed.interval(&self.config.poll),
            self.config.poll.max_interval,
            0,
            hints,
            ttl,
        );
        let next = add(now, delay);
        let (name, url) = (feed.name.clone(), feed.url.to_string());
        let (etag, last_modified) = (validators.etag.clone(), validators.last_modified.clone());
        let backfill = self.config.poll.backfill;
        let summary = self
            .with_store(move |s| {
                s.record_poll_success(PollSuccess {
                    name: &name,
                    url: &url,
                    at: now,
                    status,
                    etag: etag.as_deref(),
                    last_modified: last_modified.as_deref(),
                    items,
                    backfill,
                    next_poll_at: next,
                })
            })
            .await??;
        Ok(summary)
    }

    /// Records a failed poll. `network_down`: every feed is failing to connect
    /// at once, so this is the machine's network, not the feed; it is recorded
    /// without counting against the feed.
    pub async fn record_failure(
        &self,
        feed: &FeedConfig,
        failure: &Failure,
        network_down: bool,
    ) -> anyhow::Result<u32> {
        let now = Timestamp::now();
        let (name, url) = (feed.name.clone(), feed.url.to_string());
        let base = feed.interval(&self.config.poll);
        let max = self.config.poll.max_interval;
        let failure = failure.clone();
        let failures = self
            .with_store(move |s| {
                let previous = s.feed_state(&name)?.map_or(0, |st| st.consecutive_failures);
                let counted = if network_down { previous } else { previous + 1 };
                let next = add(now, next_poll_delay(base, max, counted, failure.hints, None));
                s.record_feed_failure(&FeedFailure {
                    name: &name,
                    url: &url,
                    at: now,
                    kind: &failure.kind,
                    message: &failure.message,
                    network_down,
                    next_poll_at: next,
                })
            })
            .await??;
        Ok(failures)
    }

    /// Polls every enabled feed once, at most `poll.concurrency` at a time,
    /// then records the failures (as "network down" when every feed failed to
    /// connect). One feed's failure never stops the others.
    pub async fn poll_all(&self) -> anyhow::Result<Vec<FeedReport>> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let feeds: Vec<&FeedConfig> = self.config.enabled_feeds().collect();
        let reports: Vec<FeedReport> = stream::iter(feeds.iter().map(|f| self.poll_feed(f)))
            .buffer_unordered(self.config.poll.concurrency)
            .try_collect()
            .await?;
        let network_down = !reports.is_empty()
            && reports
                .iter()
                .all(|r| matches!(&r.outcome, Outcome::Failed(f) if f.network));
        if network_down {
            warn!(
                feeds = reports.len(),
                "every feed failed to connect: treating it as the network being down"
            );
        }
        for report in &reports {
            if let Outcome::Failed(failure) = &report.outcome
                && let Some(feed) = feeds.iter().find(|f| f.name == report.feed)
            {
                self.record_failure(feed, failure, network_down).await?;
            }
        }
        Ok(reports)
    }
}

/// The tagger's verdict on one item, in the shape the store keeps.
pub fn tag_item(rules: &Rules, item: &crate::item::Item) -> ItemTags {
    tag_text(rules, &item.title, &item.summary, &item.content)
}

/// The tagger's verdict on an item's three text fields.
pub fn tag_text(rules: &Rules, title: &str, summary: &str, content: &str) -> ItemTags {
    let tagging = rules.tag(&Document {
        title,
        summary,
        content,
    });
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

fn log_report(r: &FeedReport) {
    let ms = r.duration.as_millis() as u64;
    match &r.outcome {
        Outcome::Fetched { bytes, summary } => info!(
            feed = %r.feed, outcome = "200", bytes, new = summary.new, relevant = summary.relevant,
            backfilled = summary.backfilled, duplicates = summary.duplicates, duration_ms = ms, "polled"
        ),
        Outcome::NotModified => {
            info!(feed = %r.feed, outcome = "304", bytes = 0, new = 0, duration_ms = ms, "polled")
        }
        Outcome::Failed(f) => {
            warn!(feed = %r.feed, outcome = %f.kind, error = %f.message, bytes = 0, new = 0, duration_ms = ms, "poll failed")
        }
    }
}

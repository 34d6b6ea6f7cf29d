//! The service's Prometheus metrics: one registry of typed metric families,
//! recorded where the events happen and encoded in the Prometheus text
//! format (0.0.4) for `GET /metrics`.
//!
//! Cost on the hot paths: every metric is an atomic; a label set is looked
//! up (a read lock and a hash) once per poll or per message, never per item.
//! A feed worker holds its own per-feed counters ([`FeedMetrics`]), looked
//! up once when it starts. Nothing here runs on the store's thread.

use std::time::Duration;

use jiff::Timestamp;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::pipeline::{FeedReport, Outcome};

/// The label of a per-feed metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedLabel {
    pub feed: String,
}

/// A poll's outcome for one feed: `200`, `304`, the failure's kind
/// (`timeout`, `http-503`, `network`, `malformed` ...), or `error` when the
/// poll could not be recorded.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PollLabels {
    pub feed: String,
    pub outcome: String,
}

/// The label of a per-destination metric (`console`, `telegram:@chan`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationLabel {
    pub destination: String,
}

/// One Bot API request's outcome for a destination.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub destination: String,
    /// `ok`, `429`, `401`, `400` (HTML refused), `403` (the chat refuses the
    /// bot, or is gone), `4xx` (another refusal), `transient` (5xx,
    /// timeouts, network errors: worth retrying).
    pub outcome: &'static str,
}

/// The label of a per-worker metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkerLabel {
    pub worker: &'static str,
}

/// Every metric the service exposes.
pub struct Metrics {
    registry: Registry,
    polls: Family<PollLabels, Counter>,
    poll_duration: Histogram,
    fetched_bytes: Family<FeedLabel, Counter>,
    items_seen: Family<FeedLabel, Counter>,
    items_relevant: Family<FeedLabel, Counter>,
    items_duplicate: Family<FeedLabel, Counter>,
    last_success: Family<FeedLabel, Gauge>,
    pending: Family<DestinationLabel, Gauge>,
    delivered: Family<DestinationLabel, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
    tagging_duration: Histogram,
    digest_render_duration: Histogram,
    delivery_cycle_duration: Histogram,
    worker_stalled: Family<WorkerLabel, Gauge>,
    resident_memory: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let polls = Family::default();
        registry.register(
            "cstowatch_polls",
            "Feed polls, by feed and outcome (200, 304, or the failure's kind)",
            polls.clone(),
        );
        // Seconds, from 10 ms to about a minute.
        let poll_duration = Histogram::new(exponential_buckets(0.01, 2.5, 10));
        registry.register_with_unit(
            "cstowatch_poll_duration",
            "Time to poll one feed: fetch, parse, article pages, tag, store",
            Unit::Seconds,
            poll_duration.clone(),
        );
        let fetched_bytes = Family::default();
        registry.register_with_unit(
            "cstowatch_fetched",
            "Feed body bytes fetched (after decompression), by feed",
            Unit::Bytes,
            fetched_bytes.clone(),
        );
        let items_seen = Family::default();
        registry.register(
            "cstowatch_items_seen",
            "Items seen for the first time and stored (backfill included), by feed",
            items_seen.clone(),
        );
        let items_relevant = Family::default();
        registry.register(
            "cstowatch_items_relevant",
            "New items the rules found relevant (pending delivery), by feed",
            items_relevant.clone(),
        );
        let items_duplicate = Family::default();
        registry.register(
            "cstowatch_items_duplicate",
            "Items dropped as duplicates of an item already stored, by feed",
            items_duplicate.clone(),
        );
        let last_success = Family::default();
        registry.register_with_unit(
            "cstowatch_feed_last_success_timestamp",
            "When each feed was last polled successfully (200 or 304), as Unix time",
            Unit::Seconds,
            last_success.clone(),
        );
        let pending = Family::default();
        registry.register(
            "cstowatch_pending_items",
            "Relevant items not yet delivered, by destination (as of the last delivery cycle)",
            pending.clone(),
        );
        let delivered = Family::default();
        registry.register(
            "cstowatch_delivered_items",
            "Items delivered, by destination",
            delivered.clone(),
        );
        let deliveries = Family::default();
        registry.register(
            "cstowatch_deliveries",
            "Messages sent or attempted, by destination and outcome \
             (ok, 429, 401, 400, 403, 4xx, transient)",
            deliveries.clone(),
        );
        // Seconds, from half a millisecond to about 8 s.
        let tagging_duration = Histogram::new(exponential_buckets(0.0005, 4.0, 8));
        registry.register_with_unit(
            "cstowatch_tagging_duration",
            "Time to tag one poll's new items",
            Unit::Seconds,
            tagging_duration.clone(),
        );
        let digest_render_duration = Histogram::new(exponential_buckets(0.0005, 4.0, 8));
        registry.register_with_unit(
            "cstowatch_digest_render_duration",
            "Time to group and render one digest",
            Unit::Seconds,
            digest_render_duration.clone(),
        );
        // Seconds, from 10 ms to about 20 minutes (pacing and flood waits included).
        let delivery_cycle_duration = Histogram::new(exponential_buckets(0.01, 4.0, 10));
        registry.register_with_unit(
            "cstowatch_delivery_cycle_duration",
            "Time of one delivery cycle over every destination, pacing included",
            Unit::Seconds,
            delivery_cycle_duration.clone(),
        );
        let worker_stalled = Family::default();
        registry.register(
            "cstowatch_worker_stalled",
            "1 when the worker (poll, delivery, store) is busy past its expected period; \
             what /healthz and the watchdog go by",
            worker_stalled.clone(),
        );
        let resident_memory = Gauge::default();
        registry.register_with_unit(
            "process_resident_memory",
            "Resident set size of the process",
            Unit::Bytes,
            resident_memory.clone(),
        );
        Metrics {
            registry,
            polls,
            poll_duration,
            fetched_bytes,
            items_seen,
            items_relevant,
            items_duplicate,
            last_success,
            pending,
            delivered,
            deliveries,
            tagging_duration,
            digest_render_duration,
            delivery_cycle_duration,
            worker_stalled,
            resident_memory,
        }
    }

    /// One feed's counters, looked up once for the life of its worker.
    pub fn feed(&self, name: &str) -> FeedMetrics {
        let label = FeedLabel {
            feed: name.to_string(),
        };
        FeedMetrics {
            name: name.to_string(),
            fetched_bytes: self.fetched_bytes.get_or_create(&label).clone(),
            items_seen: self.items_seen.get_or_create(&label).clone(),
            items_relevant: self.items_relevant.get_or_create(&label).clone(),
            items_duplicate: self.items_duplicate.get_or_create(&label).clone(),
            last_success: self.last_success.get_or_create(&label).clone(),
        }
    }

    /// Records one finished poll of `feed`.
    pub fn record_poll(&self, feed: &FeedMetrics, report: &FeedReport) {
        let outcome = match &report.outcome {
            Outcome::Fetched { .. } => "200",
            Outcome::NotModified => "304",
            Outcome::Failed(failure) => failure.kind.as_str(),
        };
        self.polls
            .get_or_create(&PollLabels {
                feed: feed.name.clone(),
                outcome: outcome.to_string(),
            })
            .inc();
        self.poll_duration.observe(report.duration.as_secs_f64());
        match &report.outcome {
            Outcome::Fetched { bytes, summary } => {
                feed.fetched_bytes.inc_by(*bytes as u64);
                feed.items_seen.inc_by(summary.new as u64);
                feed.items_relevant.inc_by(summary.relevant as u64);
                feed.items_duplicate.inc_by(summary.duplicates as u64);
                feed.last_success.set(Timestamp::now().as_second());
            }
            Outcome::NotModified => {
                feed.last_success.set(Timestamp::now().as_second());
            }
            Outcome::Failed(_) => {}
        }
    }

    /// Records a poll that could not be carried out at all (its write to
    /// the state database failed): outcome `error`.
    pub fn record_poll_error(&self, feed: &FeedMetrics) {
        self.polls
            .get_or_create(&PollLabels {
                feed: feed.name.clone(),
                outcome: "error".to_string(),
            })
            .inc();
    }

    /// Records one Bot API request (or console print) and its outcome.
    pub fn record_delivery(&self, destination: &str, outcome: &'static str) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                destination: destination.to_string(),
                outcome,
            })
            .inc();
    }

    /// Records a destination's state after a delivery cycle.
    pub fn record_destination(&self, destination: &str, pending: usize, delivered: usize) {
        let label = DestinationLabel {
            destination: destination.to_string(),
        };
        self.pending
            .get_or_create(&label)
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
        self.delivered.get_or_create(&label).inc_by(delivered as u64);
    }

    /// How long tagging one poll's items took.
    pub fn observe_tagging(&self, took: Duration) {
        self.tagging_duration.observe(took.as_secs_f64());
    }

    /// How long rendering one digest took.
    pub fn observe_digest_render(&self, took: Duration) {
        self.digest_render_duration.observe(took.as_secs_f64());
    }

    /// How long one delivery cycle took.
    pub fn observe_delivery_cycle(&self, took: Duration) {
        self.delivery_cycle_duration.observe(took.as_secs_f64());
    }

    /// The registry in the Prometheus text format, after refreshing what is
    /// read at scrape time (workers' stalls, the process's memory).
    pub fn encode(&self, liveness: &super::liveness::Liveness) -> String {
        let stalls = liveness.stalls();
        for worker in [&liveness.poll, &liveness.delivery, &liveness.store] {
            let stalled = stalls.iter().any(|s| s.worker == worker.name());
            self.worker_stalled
                .get_or_create(&WorkerLabel {
                    worker: worker.name(),
                })
                .set(i64::from(stalled));
        }
        if let Some(rss) = super::process::resident_bytes() {
            self.resident_memory.set(i64::try_from(rss).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        // Writing to a String cannot fail; an encoder error would be a bug in a metric.
        if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry) {
            tracing::error!("cannot encode the metrics: {e}");
        }
        text
    }
}

/// One feed's own counters, shared with the registry.
pub struct FeedMetrics {
    name: String,
    fetched_bytes: Counter,
    items_seen: Counter,
    items_relevant: Counter,
    items_duplicate: Counter,
    last_success: Gauge,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Failure;
    use crate::store::items::PollSummary;

    fn report(outcome: Outcome) -> FeedReport {
        FeedReport {
            feed: "Massis".into(),
            outcome,
            duration: Duration::from_millis(120),
            next_poll_at: Timestamp::now(),
        }
    }

    #[test]
    fn polls_are_counted_by_feed_and_outcome_with_prometheus_names() {
        let metrics = Metrics::new();
        let feed = metrics.feed("Massis");
        let summary = PollSummary {
            new: 3,
            backfilled: 0,
            relevant: 2,
            duplicates: 1,
        };
        metrics.record_poll(&feed, &report(Outcome::Fetched { bytes: 4096, summary }));
        metrics.record_poll(&feed, &report(Outcome::NotModified));
        metrics.record_poll(
            &feed,
            &report(Outcome::Failed(Failure {
                kind: "http-503".into(),
                message: "HTTP status 503".into(),
                network: false,
                hints: Default::default(),
            })),
        );
        let text = metrics.encode(&super::super::liveness::Liveness::new());
        for line in [
            "cstowatch_polls_total{feed=\"Massis\",outcome=\"200\"} 1",
            "cstowatch_polls_total{feed=\"Massis\",outcome=\"304\"} 1",
            "cstowatch_polls_total{feed=\"Massis\",outcome=\"http-503\"} 1",
            "cstowatch_fetched_bytes_total{feed=\"Massis\"} 4096",
            "cstowatch_items_seen_total{feed=\"Massis\"} 3",
            "cstowatch_items_relevant_total{feed=\"Massis\"} 2",
            "cstowatch_items_duplicate_total{feed=\"Massis\"} 1",
            "cstowatch_poll_duration_seconds_count 3",
            "# TYPE cstowatch_poll_duration_seconds histogram",
            "cstowatch_worker_stalled{worker=\"store\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert!(text.contains("cstowatch_feed_last_success_timestamp_seconds{feed=\"Massis\"} 1"));
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
    }
}

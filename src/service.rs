//! The long-running service (`cstowatch run`): its tasks, timers, signals
//! and shutdown path, written to be read (mini-redis is the model).
//!
//! - A **supervisor** owns the config and answers signals: SIGTERM/SIGINT stop
//!   everything; SIGHUP reloads config and rules and, if they are good,
//!   replaces the workers (a bad file keeps the old ones running).
//! - **Workers** of one generation: a task per feed (poll on its interval with
//!   jitter, backoff as the pipeline computed it), a delivery task (alerts at
//!   once, digests on schedule), an operator-alerts task (once per poll
//!   interval, see `alerts`), a weekly-report task (queues the chart when
//!   its slot passes, then wakes delivery), and a retention task. Each watches a `stop`
//!   channel and returns when it flips; the pipeline bounds how many polls run
//!   at once.
//! - Nothing is lost when a worker is stopped mid-poll: a poll writes in one
//!   transaction at its end, and delivery records an item only after Telegram
//!   accepted it, so abandoning in-flight work just leaves items pending.
//! - **Liveness** (`monitor::liveness`): each poll and each delivery cycle is
//!   a unit of work on its worker's heartbeat (the store's thread keeps its
//!   own). The systemd watchdog is pinged only while no worker is stalled,
//!   so a stuck worker gets the service restarted; `/healthz` answers from
//!   the same heartbeats. The optional HTTP listener (`[http] listen`) is
//!   bound at start and serves until shutdown, across reloads.

use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::config::{Config, FeedConfig};
use crate::deliver::{Deliverer, DeliveryError, Mode};
use crate::monitor::{self, server};
use crate::pipeline::{Outcome, Pipeline};
use crate::setup::{CommandResult, Failure, load_config, load_rules, runtime};
use crate::store::StoreHandle;
use crate::story::assign::group_before_delivery;

/// How long shutdown waits for in-flight work before abandoning it.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);
/// The most a feed's first poll after start is delayed to spread feeds out.
const MAX_START_JITTER: Duration = Duration::from_secs(5);
/// How often old items are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(6 * 3600);

/// Everything one generation of workers runs with; replaced whole on reload.
struct Generation {
    pipeline: Arc<Pipeline>,
    deliverer: Arc<Deliverer>,
}

/// Why the service stopped on its own (not by a signal).
enum Fatal {
    TokenRejected(DeliveryError),
}

/// Runs the service until SIGTERM or SIGINT.
pub fn run(config_path: &Path, dry_run: bool) -> CommandResult {
    let config = Arc::new(load_config(config_path)?);
    let rules = Arc::new(load_rules(&config)?);
    let store = StoreHandle::open(&config.state.path)?;
    let deliverer = Arc::new(Deliverer::new(&config, config.telegram_token()?)?);
    monitor::liveness().configure(&config);
    runtime()?.block_on(async {
        let (listener_stop, listener) = match start_listener(&config).await? {
            Some((stop, task)) => (Some(stop), Some(task)),
            None => (None, None),
        };
        let pipeline = Arc::new(Pipeline::new(Arc::clone(&config), rules, store.clone()).await?);
        let outcome = supervise(
            config_path.to_path_buf(),
            store,
            Generation { pipeline, deliverer },
            dry_run,
        )
        .await;
        if let (Some(stop), Some(task)) = (listener_stop, listener) {
            let _ = stop.send(());
            let _ = task.await;
        }
        outcome
    })
}

/// Binds `[http] listen`, when configured, and serves /metrics and /healthz
/// until the returned sender fires. A bind failure stops the start (exit 1):
/// an operator who asked for the listener must not find it silently absent.
async fn start_listener(
    config: &Config,
) -> Result<Option<(tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>)>, Failure> {
    let Some(addr) = config.http.listen else {
        return Ok(None);
    };
    if let Some(warning) = config.http.exposure_warning(&config.path) {
        warn!("{warning}");
    }
    let listener = server::bind(addr).await?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::Other(anyhow::anyhow!("cannot read the listener's address: {e}")))?;
    info!("metrics and health listening on http://{bound} (GET /metrics, GET /healthz)");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(listener, async {
        let _ = stopped.await;
    }));
    Ok(Some((stop, task)))
}

async fn supervise(
    config_path: PathBuf,
    store: StoreHandle,
    mut current: Generation,
    dry_run: bool,
) -> CommandResult {
    let signal_error =
        |e: std::io::Error| Failure::Other(anyhow::anyhow!("cannot install signal handlers: {e}"));
    let mut sigterm = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(signal_error)?;
    let (fatal_tx, mut fatal_rx) = tokio::sync::mpsc::channel::<Fatal>(1);
    let mut watchdog = watchdog_interval();
    let mut stalled = false;

    let listener_address = current.pipeline.config().http.listen;
    let (mut stop_tx, stop_rx) = watch::channel(false);
    let mut workers = spawn_workers(&current, stop_rx, fatal_tx.clone(), dry_run);
    info!(
        feeds = current.pipeline.config().enabled_feeds().count(),
        config = %config_path.display(),
        "cstowatch started"
    );
    notify_systemd(&[sd_notify::NotifyState::Ready]);

    let outcome = loop {
        tokio::select! {
            _ = sigterm.recv() => break Ok("SIGTERM"),
            _ = sigint.recv() => break Ok("SIGINT"),
            Some(Fatal::TokenRejected(e)) = fatal_rx.recv() => break Err(e),
            _ = sighup.recv() => match reload(&config_path, &store).await {
                Ok(next) => {
                    notify_reloading();
                    stop_workers(stop_tx, &mut workers).await;
                    current = next;
                    let (tx, rx) = watch::channel(false);
                    stop_tx = tx;
                    workers = spawn_workers(&current, rx, fatal_tx.clone(), dry_run);
                    let config = current.pipeline.config();
                    monitor::liveness().configure(config);
                    if config.http.listen != listener_address {
                        warn!("SIGHUP: [http] listen changed; the listener stays where it is until a restart");
                    }
                    info!(feeds = current.pipeline.config().enabled_feeds().count(), "SIGHUP: config and rules reloaded");
                    notify_systemd(&[sd_notify::NotifyState::Ready]);
                }
                // The running workers keep the old config and rules.
                Err(message) => error!("SIGHUP: reload failed, keeping the old config and rules:\n{message}"),
            },
            _ = tick(&mut watchdog) => stalled = watchdog_tick(stalled),
        }
    };
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    match &outcome {
        Ok(signal) => info!("{signal}: stopping; in-flight work finishes or stays pending"),
        Err(e) => error!("{e}: stopping"),
    }
    stop_workers(stop_tx, &mut workers).await;
    // Work runs in order on the store's thread: once this no-op is done,
    // every poll result queued before it is committed.
    if let Err(e) = store.call(|_| Ok(())).await {
        error!("cannot finish writing to the state database: {e}");
    }
    info!("stopped");
    outcome.map(|_| ()).map_err(|e| Failure::Other(e.into()))
}

/// Loads config and rules again; any problem keeps the old ones.
async fn reload(config_path: &Path, store: &StoreHandle) -> Result<Generation, String> {
    let describe = |f: Failure| match f {
        Failure::Usage(m) => m,
        Failure::Other(e) => format!("{e:#}"),
    };
    let config = Arc::new(load_config(config_path).map_err(describe)?);
    let rules = Arc::new(load_rules(&config).map_err(describe)?);
    let token = config.telegram_token().map_err(|e| format!("{e:#}"))?;
    let deliverer = Arc::new(Deliverer::new(&config, token).map_err(|e| format!("{e:#}"))?);
    let pipeline = Arc::new(
        Pipeline::new(config, rules, store.clone())
            .await
            .map_err(|e| format!("{e:#}"))?,
    );
    Ok(Generation { pipeline, deliverer })
}

fn spawn_workers(
    generation: &Generation,
    stop: watch::Receiver<bool>,
    fatal: tokio::sync::mpsc::Sender<Fatal>,
    dry_run: bool,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    let config = Arc::clone(generation.pipeline.config());
    let new_items = Arc::new(Notify::new());
    for feed in config.enabled_feeds() {
        set.spawn(feed_worker(
            Arc::clone(&generation.pipeline),
            feed.clone(),
            Arc::clone(&new_items),
            stop.clone(),
        ));
    }
    set.spawn(delivery_worker(
        Arc::clone(&generation.pipeline),
        Arc::clone(&generation.deliverer),
        Arc::clone(&new_items),
        stop.clone(),
        fatal,
        dry_run,
    ));
    set.spawn(alerts_worker(
        Arc::clone(&generation.pipeline),
        Arc::clone(&generation.deliverer),
        Arc::clone(&new_items),
        stop.clone(),
    ));
    set.spawn(report_worker(
        Arc::clone(&generation.pipeline),
        Arc::clone(&generation.deliverer),
        Arc::clone(&new_items),
        stop.clone(),
    ));
    set.spawn(retention_worker(Arc::clone(&generation.pipeline), stop));
    set
}

/// Tells every worker to stop and waits for them, abandoning stragglers after the grace period.
async fn stop_workers(stop: watch::Sender<bool>, workers: &mut JoinSet<()>) {
    let _ = stop.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            "in-flight work did not finish within {SHUTDOWN_GRACE:?}; abandoning it (its items stay pending)"
        );
        workers.abort_all();
        while workers.join_next().await.is_some() {}
    }
}

/// Sleeps for `d`, or returns `true` early if told to stop.
async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.changed() => true,
    }
}

/// Polls one feed forever: waits until its next poll time (the pipeline
/// remembers it, loaded from the store, so a restart does not hammer a feed
/// that is backing off), polls, repeats.
async fn feed_worker(
    pipeline: Arc<Pipeline>,
    feed: FeedConfig,
    new_items: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let interval = feed.interval(&pipeline.config().poll);
    let metrics = monitor::metrics().feed(&feed.name);
    // Spread feeds over a few seconds so they do not all fire at once, without
    // keeping a freshly started service silent for long.
    let mut wait = jitter(&feed.name, (interval / 10).min(MAX_START_JITTER));
    if let Some(next) = pipeline.next_poll_at(&feed.name) {
        wait = wait.max(until(next));
    }
    loop {
        if sleep_or_stop(wait, &mut stop).await {
            return;
        }
        // Busy from here until the poll (and a failure's record) is written.
        let unit = monitor::liveness().poll.unit();
        // Boxed: a worker waiting for its next poll (nearly all of them, nearly
        // always) then holds a few bytes, not a whole poll's state.
        let report = tokio::select! {
            r = Box::pin(pipeline.poll_feed(&feed)) => r,
            _ = stop.changed() => return,
        };
        match &report {
            Ok(report) => monitor::metrics().record_poll(&metrics, report),
            Err(_) => monitor::metrics().record_poll_error(&metrics),
        }
        let next = match report {
            Ok(report) => match &report.outcome {
                Outcome::Fetched { summary, .. } if summary.relevant > 0 => {
                    new_items.notify_one();
                    Some(report.next_poll_at)
                }
                Outcome::Failed(failure) => {
                    // The poll noted its failure; the pipeline logs once when the network goes down.
                    let network_down = failure.network && pipeline.network_is_down();
                    match pipeline.record_failure(&feed, failure, network_down).await {
                        Ok(next) => Some(next),
                        Err(e) => {
                            error!(feed = %feed.name, "cannot record the failure: {e:#}");
                            None
                        }
                    }
                }
                _ => Some(report.next_poll_at),
            },
            Err(e) => {
                error!(feed = %feed.name, "poll failed: {e:#}");
                None
            }
        };
        drop(unit);
        wait = next.map_or(interval, |next| until(next).max(Duration::from_millis(100)));
    }
}

/// Sends alerts as soon as a poll brings relevant items, and digests when due.
async fn delivery_worker(
    pipeline: Arc<Pipeline>,
    deliverer: Arc<Deliverer>,
    new_items: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
    fatal: tokio::sync::mpsc::Sender<Fatal>,
    dry_run: bool,
) {
    // Failed deliveries are retried on this period, on top of the schedule.
    const RETRY_EVERY: Duration = Duration::from_secs(60);
    let mut retry_wait = Duration::ZERO;
    loop {
        let next_digest = deliverer.next_digest_at(pipeline.store(), Timestamp::now()).await;
        let mut wait = until(next_digest);
        if !retry_wait.is_zero() {
            wait = wait.min(retry_wait);
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = new_items.notified() => {}
            _ = stop.changed() => return,
        }
        let store = pipeline.store().clone();
        let unit = monitor::liveness().delivery.unit();
        let started = std::time::Instant::now();
        group_before_delivery(&store, pipeline.rules()).await;
        let cycle = deliverer.deliver(&store, Timestamp::now(), Mode::Scheduled, dry_run);
        tokio::pin!(cycle);
        let mut stopping = false;
        let result = tokio::select! {
            r = &mut cycle => r,
            _ = stop.changed() => {
                // Dropping the cycle mid-send would forget a message Telegram already
                // accepted, and post it again after the restart: finish that one
                // message (stop_workers bounds the wait), leave the rest pending.
                deliverer.stop_after_current_message();
                stopping = true;
                cycle.await
            }
        };
        drop(unit);
        monitor::metrics().observe_delivery_cycle(started.elapsed());
        match result {
            Ok(report) => {
                for d in &report.destinations {
                    let delivered = if dry_run { 0 } else { d.items_delivered };
                    monitor::metrics().record_destination(&d.destination, d.items_pending, delivered);
                }
                retry_wait = if report.has_pending_failures() {
                    RETRY_EVERY
                } else {
                    Duration::ZERO
                };
                if report.sent_anything() {
                    info!("{report}");
                }
            }
            Err(e @ DeliveryError::TokenRejected) => {
                error!("{e}");
                let _ = fatal.send(Fatal::TokenRejected(e)).await;
                return;
            }
            Err(e) => {
                error!("delivery failed, items stay pending: {e}");
                retry_wait = RETRY_EVERY;
            }
        }
        if stopping {
            return;
        }
    }
}

/// Judges the operator alerts once per poll cycle (`poll.interval`), after
/// the first cycle has had its chance to run; wakes the delivery worker
/// when a notice for the admin chat was queued.
async fn alerts_worker(
    pipeline: Arc<Pipeline>,
    deliverer: Arc<Deliverer>,
    wake_delivery: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let every = pipeline.config().poll.interval;
    loop {
        if sleep_or_stop(every, &mut stop).await {
            return;
        }
        let queued =
            crate::alerts::check(pipeline.store(), pipeline.config(), deliverer.admin_destination()).await;
        if queued {
            wake_delivery.notify_one();
        }
    }
}

/// Queues the weekly report (`[report] weekly`) when its slot passes — at
/// start, the latest slot if its report was never queued (a restart that
/// missed it) — and wakes the delivery worker to send it. Queueing is
/// idempotent per week, so a restart or reload never queues it twice.
async fn report_worker(
    pipeline: Arc<Pipeline>,
    deliverer: Arc<Deliverer>,
    wake_delivery: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    const RETRY_EVERY: Duration = Duration::from_secs(10 * 60);
    let config = Arc::clone(pipeline.config());
    if !config.report.weekly {
        return;
    }
    loop {
        let now = Timestamp::now();
        let destinations = deliverer
            .reader_destination_ids()
            .into_iter()
            .map(String::from)
            .collect();
        let queued =
            crate::report::queue_due(pipeline.store(), pipeline.rules(), &config, destinations, now).await;
        let next = crate::report::slot::next_slot(&config.report, &config.digest.timezone, now);
        let mut wait = next.map_or(RETRY_EVERY, until).max(Duration::from_secs(1));
        match queued {
            Ok(Some(_)) => wake_delivery.notify_one(),
            Ok(None) => {}
            Err(e) => {
                error!("cannot queue the weekly report, trying again in {RETRY_EVERY:?}: {e:#}");
                wait = wait.min(RETRY_EVERY);
            }
        }
        if sleep_or_stop(wait, &mut stop).await {
            return;
        }
    }
}

/// Prunes items past retention now and then.
async fn retention_worker(pipeline: Arc<Pipeline>, mut stop: watch::Receiver<bool>) {
    let retention = pipeline.config().state.retention;
    loop {
        match pipeline
            .store()
            .call(move |s| s.prune(Timestamp::now(), retention))
            .await
        {
            Ok(n) if n > 0 => info!(items = n, "pruned items past retention"),
            Err(e) => error!("pruning failed: {e}"),
            _ => {}
        }
        if sleep_or_stop(PRUNE_EVERY, &mut stop).await {
            return;
        }
    }
}

fn until(t: Timestamp) -> Duration {
    let d = t.duration_since(Timestamp::now());
    d.try_into().unwrap_or(Duration::ZERO)
}

/// A per-feed, per-start offset in `[0, max)`.
fn jitter(name: &str, max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write(name.as_bytes());
    Duration::from_millis(h.finish() % (max.as_millis() as u64).max(1))
}

/// Pings the watchdog if no worker is stalled; says so once when one stalls
/// and once when all are progressing again. Returns whether any is stalled.
fn watchdog_tick(was_stalled: bool) -> bool {
    let stalls = monitor::liveness().stalls();
    if stalls.is_empty() {
        if was_stalled {
            info!("every worker is making progress again: pinging the systemd watchdog again");
        }
        notify_systemd(&[sd_notify::NotifyState::Watchdog]);
        return false;
    }
    if !was_stalled {
        error!(
            "{}: not pinging the systemd watchdog (systemd restarts the service when \
             WatchdogSec= passes without a ping)",
            monitor::liveness::describe(&stalls)
        );
    }
    true
}

/// Pings at half the period systemd asks for (`WatchdogSec=`), as sd_watchdog_enabled(3) advises.
fn watchdog_interval() -> Option<tokio::time::Interval> {
    sd_notify::watchdog_enabled()
        .filter(|d| !d.is_zero())
        .map(|d| tokio::time::interval(d / 2))
}

/// Completes at the watchdog's next tick; never, when systemd set no watchdog.
async fn tick(watchdog: &mut Option<tokio::time::Interval>) {
    match watchdog {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// systemd v253+ requires a monotonic timestamp with RELOADING=1.
fn notify_reloading() {
    match sd_notify::NotifyState::monotonic_usec_now() {
        Ok(now) => notify_systemd(&[sd_notify::NotifyState::Reloading, now]),
        Err(e) => warn!("cannot read the monotonic clock for systemd: {e}"),
    }
}

fn notify_systemd(states: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!("cannot notify systemd: {e}");
    }
}

//! Delivery: sends alerts and digests to every destination (Telegram chats,
//! or the console when there is no token) and records, per item and
//! destination, what was delivered — only after the destination accepted the
//! message carrying it.
//!
//! One [`Deliverer`] is built per process; [`Deliverer::deliver`] is one
//! delivery cycle. Within a cycle each destination gets, in order: its
//! pending alerts (items with an `alert_tags` tag, one message each, never
//! repeated in a digest), then — when a digest is due or forced — one digest
//! of everything else pending, one entry per story (a story part of which
//! the destination already received, by digest or alert, comes as "more
//! on"), split into as many messages as needed. The
//! first failure stops that destination for the cycle, so items always go
//! out in their original order; what was not accepted stays pending.
//!
//! Error handling (see `telegram` and `outbox`): 429 waits `retry_after`;
//! 5xx, timeouts and network errors leave items pending and back off; a 400
//! "can't parse entities" is resent once as plain text; 403 and unknown chats
//! are logged loudly and shown by `status`; 401 ends the cycle with
//! [`DeliveryError::TokenRejected`]. Nothing is ever dropped, unsubscribed or
//! deleted because of an error.

pub mod console;
pub mod outbox;
pub mod telegram;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;

use crate::config::{ChatId, Config, DigestConfig, Token};
use crate::digest::{self, DigestContext, Limits, Message, schedule};
use crate::store::outbox::{DeliveryKind, PendingItem};
use crate::store::stories::DeliveredHeadline;
use crate::store::{Store, StoreError, StoreHandle};
use console::Console;
use outbox::{ChatPacer, Pacing};
use telegram::{SendError, TelegramClient};

/// The destination used when there is no token.
pub const CONSOLE: &str = "console";

/// What the service loop or the command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Alerts, and the digest when the schedule says it is due (`run`, `run --once`).
    Scheduled,
    /// Alerts and the digest now, whatever the schedule (`digest`).
    Force,
}

/// Why a delivery cycle stopped as a whole. Problems with one destination
/// (403, outages) are not errors here: they are in [`DeliveryReport`].
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the Telegram token was rejected")]
    TokenRejected,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one cycle did, per destination.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryReport {
    pub destinations: Vec<DestinationReport>,
}

impl DeliveryReport {
    /// Items delivered (or, in a dry run, that would have been) over all destinations.
    pub fn items_delivered(&self) -> usize {
        self.destinations.iter().map(|d| d.items_delivered).sum()
    }

    /// Messages sent (or printed) over all destinations.
    pub fn messages_sent(&self) -> usize {
        self.destinations.iter().map(|d| d.messages_sent).sum()
    }

    /// Whether any destination failed or was deferred: its items are still owed.
    pub fn has_pending_failures(&self) -> bool {
        self.destinations
            .iter()
            .any(|d| d.error.is_some() || d.deferred_until.is_some())
    }

    /// Whether the cycle sent (or printed) anything at all.
    pub fn sent_anything(&self) -> bool {
        self.messages_sent() > 0
    }

    /// `(destination, error)` for every destination that failed this cycle.
    pub fn errors(&self) -> impl Iterator<Item = (&str, &str)> {
        self.destinations
            .iter()
            .filter_map(|d| d.error.as_deref().map(|e| (d.destination.as_str(), e)))
    }
}

impl std::fmt::Display for DeliveryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.destinations.is_empty() {
            return f.write_str("delivery: no destinations");
        }
        f.write_str("delivery:")?;
        for (i, d) in self.destinations.iter().enumerate() {
            let sep = if i == 0 { " " } else { "; " };
            write!(
                f,
                "{sep}{}: {} message(s), {} item(s) delivered, {} alert(s), {} pending",
                d.destination, d.messages_sent, d.items_delivered, d.alerts_sent, d.items_pending
            )?;
            if let Some(until) = d.deferred_until {
                write!(f, ", backing off until {until}")?;
            }
            if let Some(e) = &d.error {
                write!(f, ", error: {e}")?;
            }
        }
        Ok(())
    }
}

/// What one cycle did for one destination.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DestinationReport {
    /// `console` or `telegram:<chat>`.
    pub destination: String,
    /// Whether a digest was due (or forced) this cycle.
    pub digest_due: bool,
    pub messages_sent: usize,
    pub alerts_sent: usize,
    pub items_delivered: usize,
    /// Items still owed to this destination after the cycle.
    pub items_pending: usize,
    /// The destination was skipped: it is backing off after a failure until then.
    pub deferred_until: Option<Timestamp>,
    /// Why the destination stopped this cycle (token-free).
    pub error: Option<String>,
}

/// A destination as `status` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationStatus {
    pub destination: String,
    /// Relevant items not yet delivered there (after its tag filter).
    pub pending: usize,
    pub delivered: u64,
    pub last_digest_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
}

/// Per-destination status for `cstowatch status`: every configured chat,
/// then any other destination the database knows (the console, removed chats).
pub fn destination_status(store: &Store, config: &Config) -> Result<Vec<DestinationStatus>, StoreError> {
    let mut wanted: Vec<(String, Vec<String>)> = config
        .telegram
        .chats
        .iter()
        .map(|c| (telegram_id(&c.chat), c.tags.clone()))
        .collect();
    let known = store.destinations()?;
    for row in &known {
        if !wanted.iter().any(|(id, _)| *id == row.id) {
            wanted.push((row.id.clone(), Vec::new()));
        }
    }
    if wanted.is_empty() {
        wanted.push((CONSOLE.to_string(), Vec::new()));
    }
    wanted
        .into_iter()
        .map(|(id, tags)| {
            let row = known.iter().find(|r| r.id == id).cloned().unwrap_or_default();
            Ok(DestinationStatus {
                pending: store.pending_items(&id, &tags)?.len(),
                delivered: store.delivered_count(&id)?,
                destination: id,
                last_digest_at: row.last_digest_at,
                last_success_at: row.last_success_at,
                last_error: row.last_error,
                last_error_at: row.last_error_at,
            })
        })
        .collect()
}

fn telegram_id(chat: &ChatId) -> String {
    format!("telegram:{chat}")
}

/// One place messages go.
struct Destination {
    /// `console` or `telegram:<chat>`.
    id: String,
    /// The chat, for Telegram; `None` for the console.
    chat: Option<ChatId>,
    /// Only items with one of these tags; empty = all.
    tags: Vec<String>,
}

/// What the deliverer remembers about a destination between cycles.
#[derive(Default)]
struct ChannelState {
    pacer: Arc<Mutex<ChatPacer>>,
    /// After a failure, scheduled cycles leave the destination alone until then.
    retry_not_before: Option<Timestamp>,
    consecutive_failures: u32,
}

/// Sends alerts and digests; built once per process.
pub struct Deliverer {
    destinations: Vec<Destination>,
    /// Holds the token: this is why `Deliverer` has no derived `Debug`.
    telegram: Option<TelegramClient>,
    digest: DigestConfig,
    limits: Limits,
    pacing: Pacing,
    console: Console,
    channels: Mutex<HashMap<String, ChannelState>>,
    /// Set on shutdown: the cycle finishes the message in flight and sends no more.
    stopping: AtomicBool,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field(
                "destinations",
                &self.destinations.iter().map(|d| &d.id).collect::<Vec<_>>(),
            )
            .field("pacing", &self.pacing)
            .finish_non_exhaustive()
    }
}

/// Longest pause a scheduled cycle takes from a failing destination.
const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);
const FIRST_BACKOFF: Duration = Duration::from_secs(30);

impl Deliverer {
    /// With a token: one destination per configured chat. Without one (or
    /// without any chat): the console, which prints to stdout and records
    /// deliveries for `console` only, so a chat configured later still gets
    /// everything pending.
    pub fn new(config: &Config, token: Option<Token>) -> anyhow::Result<Deliverer> {
        let console_only = || {
            vec![Destination {
                id: CONSOLE.to_string(),
                chat: None,
                tags: Vec::new(),
            }]
        };
        let (destinations, telegram) = match token {
            None => {
                eprintln!("no Telegram token (CSTOWATCH_TELEGRAM_TOKEN): printing digests to stdout");
                (console_only(), None)
            }
            Some(_) if config.telegram.chats.is_empty() => {
                eprintln!("no [telegram] chat configured: printing digests to stdout");
                (console_only(), None)
            }
            Some(token) => {
                let client = TelegramClient::new(&config.telegram, token)?;
                let destinations = config
                    .telegram
                    .chats
                    .iter()
                    .map(|c| Destination {
                        id: telegram_id(&c.chat),
                        chat: Some(c.chat.clone()),
                        tags: c.tags.clone(),
                    })
                    .collect();
                (destinations, Some(client))
            }
        };
        Ok(Deliverer {
            destinations,
            telegram,
            digest: config.digest.clone(),
            limits: Limits::TELEGRAM,
            pacing: Pacing::default(),
            console: Console::stdout(),
            channels: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
        })
    }

    /// Replaces the pacing (tests use short gaps).
    pub fn with_pacing(mut self, pacing: Pacing) -> Deliverer {
        self.pacing = pacing;
        self
    }

    /// Prints console and dry-run messages to `out` instead of stdout.
    pub fn with_output(mut self, out: Box<dyn std::io::Write + Send>) -> Deliverer {
        self.console = Console::new(out);
        self
    }

    /// Asks a running cycle to stop after the message in flight: its answer is
    /// still recorded, and the rest stays pending. (Dropping the cycle instead
    /// could lose the record of a message Telegram accepted, which would then
    /// be posted again.) Only for shutting down: this deliverer sends no more.
    pub fn stop_after_current_message(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// The destinations, by id (`console`, `telegram:<chat>`).
    pub fn destination_ids(&self) -> Vec<&str> {
        self.destinations.iter().map(|d| d.id.as_str()).collect()
    }

    /// One delivery cycle at `now`: alerts, and the digest when `mode` is
    /// `Force` or the schedule says it is due. With `dry_run` the messages
    /// are printed to stdout and nothing is recorded.
    ///
    /// The store is reached only through its handle: its work runs on the
    /// store's thread, never on the async threads, and never across a send.
    pub async fn deliver(
        &self,
        store: &StoreHandle,
        now: Timestamp,
        mode: Mode,
        dry_run: bool,
    ) -> Result<DeliveryReport, DeliveryError> {
        let mut report = DeliveryReport::default();
        for destination in &self.destinations {
            report
                .destinations
                .push(self.deliver_to(destination, store, now, mode, dry_run).await?);
        }
        Ok(report)
    }

    /// When the next digest is due (never before `now`): the earliest next
    /// slot over all destinations, later when a destination is backing off.
    pub async fn next_digest_at(&self, store: &StoreHandle, now: Timestamp) -> Timestamp {
        let rows = store.read(|s| s.destinations()).await;
        let channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        self.destinations
            .iter()
            .map(|d| {
                // A destination that never had a digest is due at once.
                let row = rows.as_ref().map(|rows| rows.iter().find(|r| r.id == d.id));
                let slot = match row {
                    Ok(Some(row)) => match row.last_digest_at {
                        Some(anchor) => {
                            schedule::next_slot_after(&self.digest.schedule, &self.digest.timezone, anchor)
                        }
                        None => now,
                    },
                    Ok(None) => now,
                    Err(e) => {
                        tracing::warn!(destination = d.id, "cannot read the digest schedule: {e}");
                        schedule::next_slot_after(&self.digest.schedule, &self.digest.timezone, now)
                    }
                };
                match channels.get(&d.id).and_then(|c| c.retry_not_before) {
                    Some(retry) => slot.max(retry),
                    None => slot,
                }
            })
            .min()
            .unwrap_or_else(|| schedule::next_slot_after(&self.digest.schedule, &self.digest.timezone, now))
            .max(now)
    }

    async fn deliver_to(
        &self,
        destination: &Destination,
        store: &StoreHandle,
        now: Timestamp,
        mode: Mode,
        dry_run: bool,
    ) -> Result<DestinationReport, DeliveryError> {
        let id = destination.id.as_str();
        let mut report = DestinationReport {
            destination: id.to_string(),
            ..DestinationReport::default()
        };
        let (row, items, mut earlier) = {
            let (id, tags) = (id.to_string(), destination.tags.clone());
            store
                .call(move |s| {
                    let row = if dry_run {
                        s.destination(&id)?
                    } else {
                        Some(s.ensure_destination(&id)?)
                    };
                    let items = s.pending_items(&id, &tags)?;
                    // Stories this destination has seen part of: their new items come as "more on".
                    let mut stories: Vec<i64> = items.iter().filter_map(|i| i.story_id).collect();
                    stories.sort_unstable();
                    stories.dedup();
                    let earlier = s.delivered_headlines(&id, &stories)?;
                    Ok((row, items, earlier))
                })
                .await?
        };
        report.items_pending = items.len();

        if mode == Mode::Scheduled
            && !dry_run
            && let Some(retry) = self.channel(id, |c| c.retry_not_before)
            && now < retry
        {
            report.deferred_until = Some(retry);
            return Ok(report);
        }

        let (alerts, rest): (Vec<PendingItem>, Vec<PendingItem>) =
            items.into_iter().partition(|item| self.is_alert(item));
        let last_digest_at = row.and_then(|r| r.last_digest_at);
        let anchor = last_digest_at.unwrap_or(now);
        // A destination that never had a digest gets one at once (the backfill
        // window already keeps a new channel from being flooded).
        report.digest_due = mode == Mode::Force
            || last_digest_at
                .is_none_or(|last| schedule::is_due(&self.digest.schedule, &self.digest.timezone, last, now));

        let mut messages: Vec<(Message, DeliveryKind)> = alerts
            .iter()
            .map(|item| {
                let message =
                    digest::render_alert(item, &self.digest.timezone, self.digest.lede, self.limits);
                (message, DeliveryKind::Alert)
            })
            .collect();
        // An alert goes out on its own, first; its story's other reports in
        // this digest are then "more on" it. (When the alert fails, the cycle
        // stops before the digest, so this never names an unsent alert.)
        for alert in &alerts {
            if let Some(story) = alert.story_id {
                earlier.entry(story).or_insert_with(|| DeliveredHeadline {
                    item_id: alert.id,
                    title: alert.title.clone(),
                    url: alert.url.clone(),
                });
            }
        }
        if report.digest_due && !rest.is_empty() {
            let oldest = rest.iter().map(|i| i.published_at).min().unwrap_or(anchor);
            let ctx = DigestContext {
                zone: &self.digest.timezone,
                zone_name: &self.digest.timezone_name,
                period_start: anchor.min(oldest),
                period_end: now,
                lede: self.digest.lede,
            };
            messages.extend(
                digest::render_digest(&rest, &earlier, &ctx, self.limits)
                    .into_iter()
                    .map(|m| (m, DeliveryKind::Digest)),
            );
        }

        for (message, kind) in &messages {
            if self.stopping.load(Ordering::SeqCst) {
                return Ok(if dry_run {
                    report
                } else {
                    self.settle_pending(report)
                });
            }
            let kind_name = match kind {
                DeliveryKind::Alert => "alert",
                DeliveryKind::Digest => "digest",
            };
            if dry_run {
                self.print(&format!("dry run: {id} · {kind_name}"), &message.html);
                report.messages_sent += 1;
                report.items_delivered += message.item_ids.len();
                continue;
            }
            let sent = match &destination.chat {
                None => self
                    .console
                    .print(&format!("{id} · {kind_name}"), &message.html)
                    .map(|()| None)
                    .map_err(|e| SendError::Transient(format!("cannot write to stdout: {e}"))),
                Some(chat) => self.send_telegram(id, chat, &message.html).await.map(Some),
            };
            match sent {
                Ok(message_id) => {
                    let (dest, item_ids, recorded_kind) = (id.to_string(), message.item_ids.clone(), *kind);
                    store
                        .call(move |s| {
                            s.record_delivery(&dest, &item_ids, message_id, recorded_kind, Timestamp::now())
                        })
                        .await?;
                    report.messages_sent += 1;
                    report.items_delivered += message.item_ids.len();
                    if *kind == DeliveryKind::Alert {
                        report.alerts_sent += 1;
                    }
                }
                Err(error) => {
                    self.fail(destination, &error, store, now).await?;
                    report.error = Some(error.to_string());
                    if error == SendError::TokenRejected {
                        return Err(DeliveryError::TokenRejected);
                    }
                    return Ok(self.settle_pending(report));
                }
            }
        }

        if !dry_run {
            if report.digest_due {
                let dest = id.to_string();
                store.call(move |s| s.set_last_digest_at(&dest, now)).await?;
            }
            self.with_channel(id, |c| {
                c.retry_not_before = None;
                c.consecutive_failures = 0;
            });
            report = self.settle_pending(report);
        }
        Ok(report)
    }

    /// Items pending after a real cycle: those not delivered. (Only a real
    /// cycle reaches a failure, so the error path settles unconditionally.)
    fn settle_pending(&self, mut report: DestinationReport) -> DestinationReport {
        report.items_pending = report.items_pending.saturating_sub(report.items_delivered);
        report
    }

    fn is_alert(&self, item: &PendingItem) -> bool {
        item.tags.iter().any(|t| self.digest.alert_tags.contains(t))
    }

    fn print(&self, label: &str, html: &str) {
        if let Err(e) = self.console.print(label, html) {
            tracing::error!("cannot print the dry run to stdout: {e}");
        }
    }

    async fn send_telegram(&self, id: &str, chat: &ChatId, html: &str) -> Result<i64, SendError> {
        let Some(client) = &self.telegram else {
            return Err(SendError::Transient("no Telegram client".into()));
        };
        let pacer = self.channel(id, |c| Arc::clone(&c.pacer));
        outbox::send_paced(client, chat, id, html, &self.pacing, &pacer).await
    }

    /// Records a failed send: loudly in the log, in `destinations.last_error`
    /// for `status`, and as a backoff for scheduled cycles.
    async fn fail(
        &self,
        destination: &Destination,
        error: &SendError,
        store: &StoreHandle,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let id = destination.id.as_str();
        let text = error.to_string();
        match error {
            SendError::ChatUnavailable(_) | SendError::TokenRejected | SendError::Rejected(_) => {
                tracing::error!(destination = id, "delivery stopped, items stay pending: {text}")
            }
            _ => tracing::warn!(destination = id, "delivery failed, items stay pending: {text}"),
        }
        {
            let (dest, text) = (id.to_string(), text.clone());
            store
                .call(move |s| s.record_destination_error(&dest, &text, now))
                .await?;
        }
        self.with_channel(id, |c| {
            c.consecutive_failures = c.consecutive_failures.saturating_add(1);
            let backoff = FIRST_BACKOFF
                .saturating_mul(1 << (c.consecutive_failures - 1).min(10))
                .min(MAX_BACKOFF);
            let backoff = match error {
                SendError::RetryAfter(wait) => (*wait).max(FIRST_BACKOFF),
                _ => backoff,
            };
            let until = jiff::SignedDuration::try_from(backoff)
                .ok()
                .and_then(|d| now.checked_add(d).ok())
                .unwrap_or(now);
            c.retry_not_before = Some(until);
        });
        Ok(())
    }

    fn channel<T>(&self, id: &str, f: impl FnOnce(&ChannelState) -> T) -> T {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        f(channels.entry(id.to_string()).or_default())
    }

    fn with_channel(&self, id: &str, f: impl FnOnce(&mut ChannelState)) {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        f(channels.entry(id.to_string()).or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The service loop spawns delivery on the runtime: its future must be `Send`.
    #[test]
    fn a_delivery_cycle_can_be_spawned() {
        fn assert_send<T: Send>(_: &T) {}
        let config = Config::from_toml("", std::path::Path::new("/tmp/cstowatch.toml")).unwrap();
        let deliverer = Deliverer::new(&config, None).unwrap();
        let store = StoreHandle::open_in_memory().unwrap();
        let cycle = deliverer.deliver(&store, Timestamp::now(), Mode::Scheduled, true);
        assert_send(&cycle);
        assert_eq!(deliverer.destination_ids(), vec![CONSOLE]);
    }
}

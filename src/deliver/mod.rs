//! Delivery: sends alerts and digests to every destination (Telegram chats,
//! or the console when there is no token) and records, per item and
//! destination, what was delivered — only after the destination accepted the
//! message carrying it.
//!
//! One [`Deliverer`] is built per process; [`Deliverer::deliver`] is one
//! delivery cycle. Within a cycle each destination gets, in order: its
//! pending notices (messages that carry no items — operator alerts, the
//! weekly chart — queued in `store::notices`, each recorded sent once
//! accepted, exactly like items), its pending alerts (items with an `alert_tags` tag, one message each, never
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
use crate::store::notices::Notice;
use crate::store::outbox::{DeliveryKind, PendingItem};
use crate::store::stories::DeliveredHeadline;
use crate::store::{Store, StoreError, StoreHandle};
use console::Console;
use outbox::{ChatPacer, Pacing};
use telegram::{Outgoing, SendError, TelegramClient};

/// The destination used when there is no token.
pub const CONSOLE: &str = "console";

/// What the service loop or the command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Alerts, and the digest when the schedule says it is due (`run`, `run --once`).
    Scheduled,
    /// Alerts and the digest now, whatever the schedule (`digest`).
    Force,
    /// Queued notices only, now (`report --week` posting its chart): no
    /// alert, no digest.
    NoticesOnly,
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
            if d.notices_sent > 0 || d.notices_pending > 0 {
                write!(
                    f,
                    ", {} notice(s) sent, {} owed",
                    d.notices_sent, d.notices_pending
                )?;
            }
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
    /// Notices (operator alerts, reports) sent; they count in `messages_sent` too.
    pub notices_sent: usize,
    /// Notices still owed to this destination after the cycle.
    pub notices_pending: usize,
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
    /// Relevant items not yet delivered there (after its tag filter); for
    /// the admin chat, which takes no items, notices not yet delivered.
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
    // The admin chat takes no items: what it is owed is notices.
    let notice_only = config
        .telegram
        .admin_chat
        .as_ref()
        .map(telegram_id)
        .filter(|admin| {
            !config
                .telegram
                .chats
                .iter()
                .any(|c| telegram_id(&c.chat) == *admin)
        });
    wanted
        .into_iter()
        .map(|(id, tags)| {
            let row = known.iter().find(|r| r.id == id).cloned().unwrap_or_default();
            let pending = if notice_only.as_ref() == Some(&id) {
                store.pending_notice_count(&id)? as usize
            } else {
                store.pending_items(&id, &tags)?.len()
            };
            Ok(DestinationStatus {
                pending,
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

/// What the console shows of a message: its text, and for a photo its
/// caption and a line saying what image would have gone with it (the console
/// cannot show one; `report --week --out FILE` writes it).
fn console_text(outgoing: Outgoing<'_>) -> String {
    match outgoing {
        Outgoing::Text(html) => html.to_string(),
        Outgoing::Photo { png, caption } => {
            let size = match png_dimensions(png) {
                Some((w, h)) => format!("{w}×{h} PNG"),
                None => "image".to_string(),
            };
            format!("[photo: {size}, {} KB]\n{caption}", png.len().div_ceil(1024))
        }
    }
}

/// Width and height from a PNG's IHDR chunk, when `png` starts like one.
fn png_dimensions(png: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if png.len() < 24 || !png.starts_with(SIGNATURE) || &png[12..16] != b"IHDR" {
        return None;
    }
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    Some((be(16), be(20)))
}

/// A destination's id: `telegram:<chat>`.
pub fn telegram_id(chat: &ChatId) -> String {
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
    /// Whether items (digests, item alerts) go here, or only notices (an
    /// operator's admin chat).
    receives_items: bool,
}

/// One message of a cycle, in the order it goes out.
enum Outbound {
    /// A digest part or an item alert, carrying items.
    Items(Message, DeliveryKind),
    /// A queued notice, carrying none.
    Notice(Notice),
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
    /// Where operator alerts are queued (`telegram:<admin_chat>`), when
    /// there is a token and an admin chat.
    admin: Option<String>,
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
                receives_items: true,
            }]
        };
        let (mut destinations, telegram) = match token {
            None => {
                eprintln!("no Telegram token (CSTOWATCH_TELEGRAM_TOKEN): printing digests to stdout");
                (console_only(), None)
            }
            Some(token) if config.telegram.chats.is_empty() => {
                eprintln!("no [telegram] chat configured: printing digests to stdout");
                // Operator alerts still go to Telegram when there is an admin chat.
                let client = match &config.telegram.admin_chat {
                    Some(_) => Some(TelegramClient::new(&config.telegram, token)?),
                    None => None,
                };
                (console_only(), client)
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
                        receives_items: true,
                    })
                    .collect();
                (destinations, Some(client))
            }
        };
        // The admin chat takes notices only. When it is also a digest
        // destination, that destination takes its notices with its digests
        // (one destination, one outbox row, one pacing): the operator chose
        // it, but subscribers there will read the alerts, so say so.
        let admin = match (&telegram, &config.telegram.admin_chat) {
            (Some(_), Some(chat)) => {
                let id = telegram_id(chat);
                if destinations.iter().any(|d| d.id == id) {
                    tracing::warn!(
                        destination = id,
                        "admin_chat is also a digest destination: operator alerts will be posted there too"
                    );
                } else {
                    destinations.push(Destination {
                        id: id.clone(),
                        chat: Some(chat.clone()),
                        tags: Vec::new(),
                        receives_items: false,
                    });
                }
                Some(id)
            }
            _ => None,
        };
        Ok(Deliverer {
            destinations,
            admin,
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

    /// Where operator alerts are queued: the admin chat's destination id,
    /// when there is a token and `[telegram] admin_chat`; `None` means the
    /// log is where the operator hears them.
    pub fn admin_destination(&self) -> Option<&str> {
        self.admin.as_deref()
    }

    /// The destinations, by id (`console`, `telegram:<chat>`).
    pub fn destination_ids(&self) -> Vec<&str> {
        self.destinations.iter().map(|d| d.id.as_str()).collect()
    }

    /// The destinations readers see — those that take items, so not a
    /// notice-only admin chat: where the weekly report goes.
    pub fn reader_destination_ids(&self) -> Vec<&str> {
        self.destinations
            .iter()
            .filter(|d| d.receives_items)
            .map(|d| d.id.as_str())
            .collect()
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
        let (row, items, notices, mut earlier) = {
            let (id, tags, receives_items) = (
                id.to_string(),
                destination.tags.clone(),
                destination.receives_items,
            );
            store
                .call(move |s| {
                    let row = if dry_run {
                        s.destination(&id)?
                    } else {
                        Some(s.ensure_destination(&id)?)
                    };
                    let items = if receives_items {
                        s.pending_items(&id, &tags)?
                    } else {
                        Vec::new()
                    };
                    // Stories this destination has seen part of: their new items come as "more on".
                    let mut stories: Vec<i64> = items.iter().filter_map(|i| i.story_id).collect();
                    stories.sort_unstable();
                    stories.dedup();
                    let earlier = s.delivered_headlines(&id, &stories)?;
                    Ok((row, items, s.pending_notices(&id)?, earlier))
                })
                .await?
        };
        report.items_pending = items.len();
        report.notices_pending = notices.len();

        if mode == Mode::Scheduled
            && !dry_run
            && let Some(retry) = self.channel(id, |c| c.retry_not_before)
            && now < retry
        {
            report.deferred_until = Some(retry);
            return Ok(report);
        }

        let (alerts, rest): (Vec<PendingItem>, Vec<PendingItem>) = match mode {
            Mode::NoticesOnly => (Vec::new(), Vec::new()),
            _ => items.into_iter().partition(|item| self.is_alert(item)),
        };
        let last_digest_at = row.and_then(|r| r.last_digest_at);
        let anchor = last_digest_at.unwrap_or(now);
        // A destination that never had a digest gets one at once (the backfill
        // window already keeps a new channel from being flooded).
        report.digest_due = mode == Mode::Force
            || (mode == Mode::Scheduled
                && last_digest_at.is_none_or(|last| {
                    schedule::is_due(&self.digest.schedule, &self.digest.timezone, last, now)
                }));

        let mut messages: Vec<Outbound> = notices.into_iter().map(Outbound::Notice).collect();
        messages.extend(alerts.iter().map(|item| {
            let message = digest::render_alert(item, &self.digest.timezone, self.digest.lede, self.limits);
            Outbound::Items(message, DeliveryKind::Alert)
        }));
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
            let rendering = std::time::Instant::now();
            let digest = digest::render_digest(&rest, &earlier, &ctx, self.limits);
            crate::monitor::metrics().observe_digest_render(rendering.elapsed());
            messages.extend(
                digest
                    .into_iter()
                    .map(|m| Outbound::Items(m, DeliveryKind::Digest)),
            );
        }

        for outbound in &messages {
            if self.stopping.load(Ordering::SeqCst) {
                return Ok(if dry_run {
                    report
                } else {
                    self.settle_pending(report)
                });
            }
            let (kind_name, html) = match outbound {
                Outbound::Items(message, DeliveryKind::Alert) => ("alert", message.html.as_str()),
                Outbound::Items(message, DeliveryKind::Digest) => ("digest", message.html.as_str()),
                Outbound::Notice(notice) => (notice.kind.as_str(), notice.html.as_str()),
            };
            let outgoing = match outbound {
                Outbound::Notice(Notice { photo: Some(png), .. }) => Outgoing::Photo { png, caption: html },
                _ => Outgoing::Text(html),
            };
            if dry_run {
                self.print(&format!("dry run: {id} · {kind_name}"), &console_text(outgoing));
                self.count_sent(&mut report, outbound);
                continue;
            }
            let sent = match &destination.chat {
                None => self
                    .console
                    .print(&format!("{id} · {kind_name}"), &console_text(outgoing))
                    .map(|()| None)
                    .map_err(|e| SendError::Transient(format!("cannot write to stdout: {e}"))),
                Some(chat) => self.send_telegram(id, chat, outgoing).await.map(Some),
            };
            match sent {
                Ok(message_id) => {
                    if destination.chat.is_none() {
                        crate::monitor::metrics().record_delivery(id, "ok");
                    }
                    match outbound {
                        Outbound::Items(message, kind) => {
                            let (dest, item_ids, kind) = (id.to_string(), message.item_ids.clone(), *kind);
                            store
                                .call(move |s| {
                                    s.record_delivery(&dest, &item_ids, message_id, kind, Timestamp::now())
                                })
                                .await?;
                        }
                        Outbound::Notice(notice) => {
                            let notice_id = notice.id;
                            store
                                .call(move |s| s.record_notice_sent(notice_id, message_id, Timestamp::now()))
                                .await?;
                        }
                    }
                    crate::monitor::liveness().delivery.progress();
                    self.count_sent(&mut report, outbound);
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

    /// Items and notices pending after a real cycle: those not delivered.
    /// (Only a real cycle reaches a failure, so the error path settles
    /// unconditionally.)
    fn settle_pending(&self, mut report: DestinationReport) -> DestinationReport {
        report.items_pending = report.items_pending.saturating_sub(report.items_delivered);
        report.notices_pending = report.notices_pending.saturating_sub(report.notices_sent);
        report
    }

    /// Counts a message the destination accepted (or a dry run printed).
    fn count_sent(&self, report: &mut DestinationReport, outbound: &Outbound) {
        report.messages_sent += 1;
        match outbound {
            Outbound::Items(message, kind) => {
                report.items_delivered += message.item_ids.len();
                if *kind == DeliveryKind::Alert {
                    report.alerts_sent += 1;
                }
            }
            Outbound::Notice(_) => report.notices_sent += 1,
        }
    }

    fn is_alert(&self, item: &PendingItem) -> bool {
        item.tags.iter().any(|t| self.digest.alert_tags.contains(t))
    }

    fn print(&self, label: &str, html: &str) {
        if let Err(e) = self.console.print(label, html) {
            tracing::error!("cannot print the dry run to stdout: {e}");
        }
    }

    async fn send_telegram(&self, id: &str, chat: &ChatId, outgoing: Outgoing<'_>) -> Result<i64, SendError> {
        let Some(client) = &self.telegram else {
            return Err(SendError::Transient("no Telegram client".into()));
        };
        let pacer = self.channel(id, |c| Arc::clone(&c.pacer));
        outbox::send_paced(client, chat, id, outgoing, &self.pacing, &pacer).await
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
            // A refusal is also remembered as one: operator alerts report it.
            let refused = matches!(error, SendError::ChatUnavailable(_));
            store
                .call(move |s| {
                    s.record_destination_error(&dest, &text, now)?;
                    if refused {
                        s.record_destination_refused(&dest, now)?;
                    }
                    Ok(())
                })
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
        assert_eq!(deliverer.admin_destination(), None);
    }

    fn with_token(config: &str) -> Deliverer {
        let config = Config::from_toml(config, std::path::Path::new("/tmp/cstowatch.toml")).unwrap();
        Deliverer::new(&config, Some(Token::new("1:secret"))).unwrap()
    }

    #[test]
    fn the_admin_chat_takes_notices_only_and_is_never_a_second_destination() {
        let d = with_token("[telegram]\nchat = \"@news_room\"\nadmin_chat = \"@ops_room\"\n");
        assert_eq!(
            d.destination_ids(),
            vec!["telegram:@news_room", "telegram:@ops_room"]
        );
        assert!(!d.destinations[1].receives_items);
        assert_eq!(d.admin_destination(), Some("telegram:@ops_room"));
        assert_eq!(
            d.reader_destination_ids(),
            vec!["telegram:@news_room"],
            "the weekly chart is for readers, not the admin chat"
        );

        // No channel: digests print to stdout, alerts still reach the admin chat.
        let d = with_token("[telegram]\nadmin_chat = -100777\n");
        assert_eq!(d.destination_ids(), vec![CONSOLE, "telegram:-100777"]);

        // The admin chat is also a channel: one destination, taking both.
        let d = with_token("[telegram]\nchat = \"@news_room\"\nadmin_chat = \"@news_room\"\n");
        assert_eq!(d.destination_ids(), vec!["telegram:@news_room"]);
        assert!(d.destinations[0].receives_items);
        assert_eq!(d.admin_destination(), Some("telegram:@news_room"));

        // Without a token the log is where alerts go.
        let config = Config::from_toml(
            "[telegram]\nadmin_chat = \"@ops_room\"\n",
            std::path::Path::new("/tmp/cstowatch.toml"),
        )
        .unwrap();
        assert_eq!(Deliverer::new(&config, None).unwrap().admin_destination(), None);
    }
}

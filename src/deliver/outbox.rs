//! The outbox's sending discipline for one Telegram chat: pace messages
//! under Telegram's limits before it complains, honour every 429's
//! `retry_after` before any further request to that chat, and fall back to
//! plain text once when Telegram cannot parse our HTML.
//!
//! Which items are owed, and recording them as delivered once a message is
//! accepted, is the store's business (`store::outbox`); the loop over
//! messages is `Deliverer`'s.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::telegram::{Outgoing, SendError, TelegramClient, TextMode};
use crate::config::ChatId;
use crate::digest::to_plain_text;

/// How fast the outbox talks to one chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Least time between two messages to one chat (Telegram: about 1 a second in bursts).
    pub min_gap: Duration,
    /// Most messages to one chat in any 60 seconds (Telegram: 20 to a group or channel).
    pub per_minute: usize,
    /// A 429 asking for a longer wait than this ends the cycle for that chat
    /// (items stay pending) instead of blocking it.
    pub max_flood_wait: Duration,
    /// How many 429s in a row one message may get before the cycle gives up on the chat.
    pub max_flood_retries: u32,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            min_gap: Duration::from_secs(1),
            per_minute: 20,
            max_flood_wait: Duration::from_secs(600),
            max_flood_retries: 5,
        }
    }
}

/// When one chat may next be sent to: recent sends and any flood penalty.
#[derive(Debug, Default)]
pub struct ChatPacer {
    recent: VecDeque<Instant>,
    penalty_until: Option<Instant>,
}

impl ChatPacer {
    /// The earliest instant a request to this chat is allowed.
    pub fn ready_at(&self, pacing: &Pacing, now: Instant) -> Instant {
        let mut ready = now;
        if let Some(last) = self.recent.back() {
            ready = ready.max(*last + pacing.min_gap);
        }
        if pacing.per_minute > 0 && self.recent.len() >= pacing.per_minute {
            let oldest_in_window = self.recent[self.recent.len() - pacing.per_minute];
            ready = ready.max(oldest_in_window + Duration::from_secs(60));
        }
        if let Some(penalty) = self.penalty_until {
            ready = ready.max(penalty);
        }
        ready
    }

    /// Notes a request made at `at` (failed ones count: Telegram counts them too).
    pub fn note_request(&mut self, at: Instant) {
        self.recent.push_back(at);
        while self
            .recent
            .front()
            .is_some_and(|t| at.saturating_duration_since(*t) >= Duration::from_secs(60))
        {
            self.recent.pop_front();
        }
    }

    /// No request before `until` (a 429's `retry_after`).
    pub fn penalize(&mut self, until: Instant) {
        self.penalty_until = Some(self.penalty_until.map_or(until, |p| p.max(until)));
    }
}

/// Sends one message (or photo) to `chat`, waiting as the pacer says, retrying after
/// 429s (within [`Pacing`]'s bounds) and once as plain text after a parse
/// error. `pacer` is locked only between awaits.
pub async fn send_paced(
    client: &TelegramClient,
    chat: &ChatId,
    destination: &str,
    outgoing: Outgoing<'_>,
    pacing: &Pacing,
    pacer: &std::sync::Mutex<ChatPacer>,
) -> Result<i64, SendError> {
    let lock = || pacer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let html = outgoing.text();
    let mut mode = TextMode::Html;
    let mut text = html.to_string();
    let mut floods = 0;
    loop {
        let now = Instant::now();
        let ready = lock().ready_at(pacing, now);
        let wait = ready.saturating_duration_since(now);
        if wait > pacing.max_flood_wait {
            // Still inside a long flood penalty from an earlier cycle: not a single request.
            return Err(SendError::RetryAfter(wait));
        }
        // Pacing and flood waits are the delivery worker doing as told, not stalling.
        crate::monitor::liveness().delivery.idle_until(ready.into_std());
        tokio::time::sleep_until(ready).await;
        lock().note_request(Instant::now());
        let sent = client.send_outgoing(chat, outgoing, &text, mode).await;
        crate::monitor::liveness().delivery.progress();
        crate::monitor::metrics().record_delivery(
            destination,
            sent.as_ref().map_or_else(SendError::metric_outcome, |_| "ok"),
        );
        match sent {
            Ok(message_id) => return Ok(message_id),
            Err(SendError::RetryAfter(retry_after)) => {
                // Measured from when we got the answer, so never earlier than Telegram's clock.
                lock().penalize(Instant::now() + retry_after + Duration::from_millis(50));
                floods += 1;
                tracing::warn!(
                    destination,
                    retry_after_s = retry_after.as_secs(),
                    "Telegram flood control: waiting before the next request to this chat"
                );
                if floods > pacing.max_flood_retries || retry_after > pacing.max_flood_wait {
                    return Err(SendError::RetryAfter(retry_after));
                }
            }
            Err(SendError::CantParseEntities(error)) if mode == TextMode::Html => {
                tracing::error!(
                    destination,
                    %error,
                    text = html,
                    "Telegram could not parse a message we rendered (a bug: please report it); \
                     resending it once as plain text"
                );
                mode = TextMode::Plain;
                text = to_plain_text(html);
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_at_the_gap_then_holds_to_the_per_minute_limit() {
        let pacing = Pacing {
            min_gap: Duration::from_secs(1),
            per_minute: 3,
            ..Pacing::default()
        };
        let start = Instant::now();
        let mut pacer = ChatPacer::default();
        assert_eq!(pacer.ready_at(&pacing, start), start);
        let mut t = start;
        for _ in 0..3 {
            t = pacer.ready_at(&pacing, t);
            pacer.note_request(t);
        }
        assert_eq!(t, start + Duration::from_secs(2), "three sends a second apart");
        // The fourth waits until the first leaves the 60-second window.
        assert_eq!(pacer.ready_at(&pacing, t), start + Duration::from_secs(60));
    }

    #[test]
    fn a_penalty_outweighs_pacing() {
        let pacing = Pacing::default();
        let now = Instant::now();
        let mut pacer = ChatPacer::default();
        pacer.note_request(now);
        pacer.penalize(now + Duration::from_secs(30));
        pacer.penalize(now + Duration::from_secs(5));
        assert_eq!(pacer.ready_at(&pacing, now), now + Duration::from_secs(30));
    }
}

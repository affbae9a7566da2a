//! Paused channels: a channel whose server refuses the connection itself (an SMTP greeting
//! `554`, `AUTH` `535`, a failed TLS handshake, no answer) is paused rather than failing its
//! backlog one message at a time (ARCHITECTURE.md §8).
//!
//! While a channel is paused its notices stay pending, nothing of it is claimed and no attempt
//! is counted; the channel is probed (one connection, no message) after a backoff that doubles
//! from [`FIRST_PROBE`] up to [`PROBE_MAX`], and resumes when a probe succeeds. The pause is
//! shown by `herald_channel_paused{channel}` and in `/readyz`'s answer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::channel::{Channel, SendError};
use crate::web::Readiness;

/// The first probe of a paused channel comes this long after the pause.
pub const FIRST_PROBE: Duration = Duration::from_secs(1);
/// The longest wait between probes: a relay that refuses the credentials is asked again this
/// often, not in a loop that could lock the account out.
pub const PROBE_MAX: Duration = Duration::from_secs(60);

struct Pause {
    cause: String,
    since: Instant,
    next_probe: Instant,
    wait: Duration,
    probing: bool,
}

/// The channels paused now, and their probes.
pub struct Pauses {
    paused: BTreeMap<String, Pause>,
    readiness: Arc<Readiness>,
}

impl Pauses {
    pub fn new<'a>(channels: impl Iterator<Item = &'a String>, readiness: Arc<Readiness>) -> Self {
        for name in channels {
            metrics::gauge!("herald_channel_paused", "channel" => name.clone()).set(0.0);
        }
        Pauses {
            paused: BTreeMap::new(),
            readiness,
        }
    }

    /// Of `channels`, those not paused: the ones to claim for.
    pub fn unpaused<'a>(&self, channels: impl Iterator<Item = &'a String>) -> Vec<String> {
        channels
            .filter(|c| !self.paused.contains_key(*c))
            .cloned()
            .collect()
    }

    /// The paused channels with their causes.
    pub fn causes(&self) -> BTreeMap<String, String> {
        self.paused
            .iter()
            .map(|(name, p)| (name.clone(), p.cause.clone()))
            .collect()
    }

    /// Whether every paused channel has been paused for at least `long`.
    pub fn all_longer_than(&self, long: Duration) -> bool {
        self.paused.values().all(|p| p.since.elapsed() >= long)
    }

    /// A send on `channel` found it unavailable. A channel already paused stays as it is (its
    /// other sends in flight fail the same way).
    pub fn pause(&mut self, channel: &str, cause: String, error: &str) {
        if self.paused.contains_key(channel) {
            return;
        }
        tracing::warn!(channel, %error, retry_in_ms = FIRST_PROBE.as_millis() as u64, "channel paused: {cause}; its notices stay pending");
        metrics::gauge!("herald_channel_paused", "channel" => channel.to_owned()).set(1.0);
        self.readiness.channel(channel, Some(cause.clone()));
        let now = Instant::now();
        self.paused.insert(
            channel.to_owned(),
            Pause {
                cause,
                since: now,
                next_probe: now + FIRST_PROBE,
                wait: FIRST_PROBE,
                probing: false,
            },
        );
    }

    /// The paused channels due for a probe, marked as being probed.
    pub fn due(&mut self) -> Vec<String> {
        let now = Instant::now();
        self.paused
            .iter_mut()
            .filter(|(_, p)| !p.probing && p.next_probe <= now)
            .map(|(name, p)| {
                p.probing = true;
                name.clone()
            })
            .collect()
    }

    /// How a probe of `channel` ended: resumed, or paused for twice as long.
    pub fn probed(&mut self, channel: &str, result: Result<(), SendError>) {
        let Some(pause) = self.paused.get_mut(channel) else {
            return;
        };
        match result {
            Ok(()) => {
                tracing::info!(
                    channel,
                    paused_ms = pause.since.elapsed().as_millis() as u64,
                    "channel resumed"
                );
                metrics::gauge!("herald_channel_paused", "channel" => channel.to_owned()).set(0.0);
                self.readiness.channel(channel, None);
                self.paused.remove(channel);
            }
            Err(e) => {
                pause.wait = (pause.wait * 2).min(PROBE_MAX);
                pause.next_probe = Instant::now() + pause.wait;
                pause.probing = false;
                if let SendError::Unavailable { cause, .. } = &e
                    && *cause != pause.cause
                {
                    pause.cause = cause.clone();
                    self.readiness.channel(channel, Some(cause.clone()));
                }
                tracing::warn!(channel, error = %e, retry_in_ms = pause.wait.as_millis() as u64, "channel still paused");
            }
        }
    }
}

/// One probe, run in its own task.
pub async fn probe(name: String, channel: Arc<dyn Channel>) -> (String, Result<(), SendError>) {
    let result = channel.probe().await;
    (name, result)
}

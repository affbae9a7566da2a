//! When to try again: exponential backoff with jitter, bounded by an age after which Herald
//! gives up and surfaces the failure (ARCHITECTURE.md §2.4).

use std::time::Duration;

use serde::Deserialize;

use crate::store::Millis;
use crate::values::duration;

/// The longest a server's `Retry-After` is honoured.
pub const MAX_RETRY_AFTER: Duration = crate::channel::RETRY_AFTER_CAP;

/// `[delivery]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    #[serde(default = "default_initial", deserialize_with = "duration")]
    pub initial_backoff: Duration,
    #[serde(default = "default_max", deserialize_with = "duration")]
    pub max_backoff: Duration,
    /// After this long since it was queued, a notification that still fails is `failed`.
    #[serde(default = "default_max_age", deserialize_with = "duration")]
    pub max_age: Duration,
    /// How long a claim holds a notification, by the store's clock. A send begins only in the
    /// first half of it, and the instance renews its claims every third of it while their
    /// sends are in flight or their outcomes wait to be recorded; a crashed or frozen
    /// instance's claims are taken over once it has passed. At least three times every
    /// channel's `timeout` (checked at load), so that even a send whose renewals cannot reach
    /// the store ends before another instance may take its row.
    #[serde(default = "default_lease", deserialize_with = "duration")]
    pub lease: Duration,
    /// How often an idle dispatcher looks for due rows it was not told of: retries coming
    /// due, and (without PostgreSQL's notifications) rows another instance queued. A commit
    /// that queues notices wakes the dispatcher at once, in this process and, on PostgreSQL,
    /// in every instance (ARCHITECTURE.md §8).
    #[serde(default = "default_poll", deserialize_with = "duration")]
    pub poll: Duration,
}

fn default_poll() -> Duration {
    Duration::from_millis(200)
}

/// Three times the longest default channel `timeout` (30 s): see [`DeliveryConfig::lease`].
fn default_lease() -> Duration {
    Duration::from_secs(90)
}

fn default_initial() -> Duration {
    Duration::from_secs(5)
}

fn default_max() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_max_age() -> Duration {
    Duration::from_secs(24 * 3600)
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            initial_backoff: default_initial(),
            max_backoff: default_max(),
            max_age: default_max_age(),
            lease: default_lease(),
            poll: default_poll(),
        }
    }
}

impl DeliveryConfig {
    /// The wait before attempt `attempt + 1`, `attempt` counting from 1: doubling from
    /// `initial_backoff` up to `max_backoff`, then drawn from its upper half so that a burst of
    /// failures does not come back as a burst.
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.initial_backoff.as_millis() as f64
            * 2f64.powi(attempt.saturating_sub(1).min(40) as i32);
        let capped = base.min(self.max_backoff.as_millis() as f64);
        Duration::from_millis((capped * (0.5 + 0.5 * unit.clamp(0.0, 1.0))) as u64)
    }

    /// How long to wait after attempt `attempt` failed, in milliseconds (the store adds it to
    /// its own clock): the backoff, but never sooner than a server's `not_before` (its
    /// `Retry-After`). A `Retry-After` is capped at [`MAX_RETRY_AFTER`] and at `max_age` (past
    /// that the notification is given up anyway); the store's sum saturates, so a huge value
    /// can never wrap into a time in the past.
    pub fn retry_after(&self, attempt: u32, unit: f64, not_before: Duration) -> Millis {
        let not_before = not_before.min(MAX_RETRY_AFTER).min(self.max_age);
        let wait = self.backoff(attempt, unit).max(not_before);
        Millis::try_from(wait.as_millis()).unwrap_or(Millis::MAX)
    }

    /// Whether a notification queued at `created_at` is past saving at `now`.
    pub fn expired(&self, created_at: Millis, now: Millis) -> bool {
        now.saturating_sub(created_at) >= self.max_age.as_millis() as Millis
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps_with_jitter_in_the_upper_half() {
        let d = DeliveryConfig::default();
        assert_eq!(d.backoff(1, 1.0), Duration::from_secs(5));
        assert_eq!(d.backoff(2, 1.0), Duration::from_secs(10));
        assert_eq!(d.backoff(3, 0.0), Duration::from_secs(10));
        assert_eq!(d.backoff(30, 1.0), Duration::from_secs(900));
        assert_eq!(d.backoff(u32::MAX, 1.0), Duration::from_secs(900));
    }

    #[test]
    fn a_huge_retry_after_is_capped_never_wrapped() {
        let d = DeliveryConfig::default();
        let after = d.retry_after(1, 1.0, Duration::from_secs(u64::MAX));
        assert_eq!(after, 3_600_000);
        let short = DeliveryConfig {
            max_age: Duration::from_secs(60),
            ..DeliveryConfig::default()
        };
        assert_eq!(short.retry_after(1, 1.0, Duration::MAX), 60_000);
        assert_eq!(d.retry_after(1, 1.0, Duration::from_secs(30)), 30_000);
        assert_eq!(d.retry_after(1, 1.0, Duration::ZERO), 5_000);
    }

    #[test]
    fn expiry_is_by_age_since_queued() {
        let d = DeliveryConfig::default();
        assert!(!d.expired(0, 1000));
        assert!(d.expired(0, 24 * 3600 * 1000));
    }
}

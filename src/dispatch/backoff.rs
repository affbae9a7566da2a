//! When to try again: exponential backoff with jitter, bounded by an age after which Herald
//! gives up and surfaces the failure (ARCHITECTURE.md §2.4).

use std::time::Duration;

use serde::Deserialize;

use crate::store::Millis;
use crate::values::duration;

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
    /// How long a claim holds a notification. A send begins only in the first half of it; a
    /// crashed or frozen instance's claims are taken over once it has passed. Keep it well
    /// above the channels' `timeout` (which bounds connecting, and each message exchange).
    #[serde(default = "default_lease", deserialize_with = "duration")]
    pub lease: Duration,
}

fn default_lease() -> Duration {
    Duration::from_secs(5 * 60)
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
    fn expiry_is_by_age_since_queued() {
        let d = DeliveryConfig::default();
        assert!(!d.expired(0, 1000));
        assert!(d.expired(0, 24 * 3600 * 1000));
    }
}

//! Dispatch: claim due notifications, send them, record how each attempt ended.
//!
//! Three small stages, as in Alertmanager's `notify/`: the claim loop takes due rows from the
//! store with a lease; each send runs in its own task under its channel's concurrency limit (a
//! slow send holds one slot, not the loop); a recorder batches the outcomes into one store
//! transaction. The dispatcher never decodes events or renders messages.

mod backoff;

pub use backoff::DeliveryConfig;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::channel::{Channel, Outgoing, SendError};
use crate::store::{Claimed, Done, Finish, Store, StoreError, now_millis};

/// How long a claim holds a row; a crashed instance's rows are claimable again after it.
const LEASE: Duration = Duration::from_secs(300);
/// How often to look for due rows when there were none.
const IDLE_POLL: Duration = Duration::from_millis(200);

/// A channel with its concurrency limit.
pub struct Lane {
    pub channel: Arc<dyn Channel>,
    pub slots: Arc<Semaphore>,
}

/// What a dispatcher run did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Delivered {
    pub sent: u64,
    pub retried: u64,
    pub failed: u64,
}

pub struct Dispatcher<S: Store> {
    pub store: S,
    pub lanes: BTreeMap<String, Lane>,
    pub delivery: DeliveryConfig,
    /// Names this instance in claims.
    pub worker: String,
}

impl<S: Store> Dispatcher<S> {
    /// Runs until `stop` is cancelled (then finishes the sends in flight), or — when
    /// `until_idle` is given — until that token is cancelled and no notification is pending
    /// (everything sent or failed): the `--once` mode.
    pub async fn run(
        self,
        stop: CancellationToken,
        until_idle: Option<CancellationToken>,
    ) -> Result<Delivered, StoreError> {
        let capacity: usize = self
            .lanes
            .values()
            .map(|l| l.slots.available_permits())
            .sum::<usize>()
            .max(1);
        let in_flight = Arc::new(Semaphore::new(capacity));
        let (done_tx, done_rx) = mpsc::channel::<Done>(capacity * 4);
        let recorder = tokio::spawn(record(self.store.clone(), done_rx));
        let mut sends = JoinSet::new();
        let mut delivered = Delivered::default();

        let result: Result<(), StoreError> = async {
            loop {
                while let Some(joined) = sends.try_join_next() {
                    tally(&mut delivered, joined);
                }
                if stop.is_cancelled() {
                    return Ok(());
                }
                let free = in_flight.available_permits();
                if free == 0 {
                    tokio::select! {
                        Some(joined) = sends.join_next() => tally(&mut delivered, joined),
                        _ = stop.cancelled() => return Ok(()),
                    }
                    continue;
                }
                let now = now_millis();
                let claimed = self
                    .store
                    .claim(&self.worker, now, LEASE.as_millis() as i64, free as i64)
                    .await?;
                if claimed.is_empty() {
                    if let Some(idle) = &until_idle
                        && idle.is_cancelled()
                        && sends.is_empty()
                        && done_tx.capacity() == done_tx.max_capacity()
                        && self.store.counts().await?.pending == 0
                    {
                        return Ok(());
                    }
                    tokio::select! {
                        Some(joined) = sends.join_next() => tally(&mut delivered, joined),
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                        _ = stop.cancelled() => return Ok(()),
                    }
                    continue;
                }
                for row in claimed {
                    let permit = in_flight
                        .clone()
                        .acquire_owned()
                        .await
                        .expect("never closed");
                    let lane = self
                        .lanes
                        .get(&row.channel)
                        .map(|l| (l.channel.clone(), l.slots.clone()));
                    let delivery = self.delivery.clone();
                    let done_tx = done_tx.clone();
                    sends.spawn(async move {
                        let _permit = permit;
                        let finish = attempt(lane, &row, &delivery).await;
                        let kind = Kind::of(&finish);
                        let _ = done_tx
                            .send(Done {
                                key: row.key,
                                token: row.token,
                                finish,
                            })
                            .await;
                        kind
                    });
                }
            }
        }
        .await;

        // Stop taking work, but let the sends in flight finish and be recorded.
        while let Some(joined) = sends.join_next().await {
            tally(&mut delivered, joined);
        }
        drop(done_tx);
        let recorded = recorder
            .await
            .unwrap_or_else(|e| Err(StoreError::new("recorder", e)));
        result.and(recorded).map(|()| delivered)
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Sent,
    Retry,
    Failed,
}

impl Kind {
    fn of(finish: &Finish) -> Kind {
        match finish {
            Finish::Sent => Kind::Sent,
            Finish::Retry { .. } => Kind::Retry,
            Finish::Failed { .. } => Kind::Failed,
        }
    }
}

fn tally(delivered: &mut Delivered, joined: Result<Kind, tokio::task::JoinError>) {
    match joined {
        Ok(Kind::Sent) => delivered.sent += 1,
        Ok(Kind::Retry) => delivered.retried += 1,
        Ok(Kind::Failed) | Err(_) => delivered.failed += 1,
    }
}

/// One attempt at one row, and what to record about it.
async fn attempt(
    lane: Option<(Arc<dyn Channel>, Arc<Semaphore>)>,
    row: &Claimed,
    delivery: &DeliveryConfig,
) -> Finish {
    let Some((channel, slots)) = lane else {
        return Finish::Failed {
            error: format!("channel {:?} is not configured", row.channel),
        };
    };
    let _slot = slots.acquire_owned().await.expect("never closed");
    let outgoing = Outgoing {
        key: &row.key,
        recipient: &row.recipient,
        message: &row.message,
    };
    let started = std::time::Instant::now();
    let result = channel.send(outgoing).await;
    let now = now_millis();
    let labels = [("rule", row.rule.clone()), ("channel", row.channel.clone())];
    match &result {
        Ok(()) => {
            metrics::counter!("herald_notifications_sent_total", &labels).increment(1);
            metrics::histogram!("herald_delivery_latency_seconds", "channel" => row.channel.clone())
                .record(now.saturating_sub(row.created_at) as f64 / 1000.0);
        }
        Err(SendError::Permanent(_)) => {
            metrics::counter!("herald_notifications_failed_total", &labels).increment(1)
        }
        Err(SendError::Transient(_)) => {
            metrics::counter!("herald_notifications_retried_total", &labels).increment(1)
        }
    }
    match result {
        Ok(()) => {
            tracing::info!(key = %row.key, channel = %row.channel, elapsed_ms = started.elapsed().as_millis() as u64, "sent");
            Finish::Sent
        }
        Err(SendError::Permanent(error)) => {
            tracing::warn!(key = %row.key, channel = %row.channel, %error, "failed permanently");
            Finish::Failed { error }
        }
        Err(SendError::Transient(error)) => {
            let attempts = row.attempts + 1;
            if delivery.expired(row.created_at, now) {
                tracing::warn!(key = %row.key, channel = %row.channel, attempts, %error, "giving up: max_age reached");
                Finish::Failed {
                    error: format!(
                        "gave up after {attempts} attempts (max_age reached); last error: {error}"
                    ),
                }
            } else {
                let wait = delivery.backoff(attempts as u32, fastrand::f64());
                tracing::info!(key = %row.key, channel = %row.channel, attempts, retry_in_ms = wait.as_millis() as u64, %error, "will retry");
                Finish::Retry {
                    at: now + wait.as_millis() as i64,
                    error,
                }
            }
        }
    }
}

/// Records outcomes in batches: whatever has arrived since the last write goes in one
/// transaction, so one disk sync covers many sends.
async fn record<S: Store>(store: S, mut rx: mpsc::Receiver<Done>) -> Result<(), StoreError> {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 256).await > 0 {
        store
            .finish(now_millis(), std::mem::take(&mut batch))
            .await?;
    }
    Ok(())
}

//! Dispatch: claim due notifications, send them, record how each attempt ended.
//!
//! Three small stages, as in Alertmanager's `notify/`: the claim loop takes due rows from the
//! store with a lease, each channel (lane) for itself up to its free slots, so a backlog on one
//! channel never delays another's notices; each send runs in its own task (a slow send holds
//! one slot, not the loop); a recorder batches the outcomes into one store transaction. A row's
//! slot is held from its claim until its outcome is recorded, so a crash
//! can repeat at most that many messages (the sum of the channels' concurrency). The
//! dispatcher never decodes events or renders messages.
//!
//! Several instances may share one outbox (PostgreSQL). A claim is a lease with a token, timed
//! by the store's clock: a send begins only in the first half of the lease (checked as late as
//! the channel can), so a process frozen or slowed past it never sends a row another instance
//! has taken over; the instance renews its claims while their sends and outcomes are in hand,
//! so a crashed instance's rows are free again within one lease; and an outcome is recorded
//! only under the token it was claimed with. While the store cannot be
//! reached, claiming pauses and outcomes wait in memory to be recorded.
//!
//! A channel whose server refuses the connection itself is paused ([`pause`]): its rows are
//! not claimed, and the channel is probed until it delivers again.

mod backoff;
mod pause;

pub use backoff::DeliveryConfig;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::channel::{Channel, Outgoing, SendError};
use crate::store::{Attempt, Claimed, Done, Finish, Millis, Store, StoreError};
use crate::web::Readiness;
use pause::Pauses;

/// The first wait before trying a failing store again.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// The longest wait between attempts to reach a store that fails.
const STORE_RETRY_MAX: Duration = Duration::from_secs(5);
/// After a stop, how long outcomes keep waiting for a store that fails before they are given
/// up (their rows are then sent again once their lease has passed).
const RECORD_AFTER_STOP: Duration = Duration::from_secs(10);
/// `--once` ends with notices still pending when all that is left waits for channels paused
/// at least this long (a relay refusing the credentials will not be fixed within the run).
pub const ONCE_PAUSE_LIMIT: Duration = Duration::from_secs(10);

/// A channel with its concurrency limit: one slot per message claimed and not yet recorded.
pub struct Lane {
    pub channel: Arc<dyn Channel>,
    pub slots: Arc<Semaphore>,
}

/// What a dispatcher run did.
#[derive(Debug, Clone, Default)]
pub struct Delivered {
    pub sent: u64,
    pub retried: u64,
    pub failed: u64,
    /// Claims given back unsent because their time to begin ran out.
    pub released: u64,
    /// Channels still paused when the run ended, with why.
    pub paused: BTreeMap<String, String>,
}

pub struct Dispatcher<S: Store> {
    pub store: S,
    pub lanes: BTreeMap<String, Lane>,
    pub delivery: DeliveryConfig,
    /// Names this instance in claims.
    pub worker: String,
    /// Where paused channels are shown (`/readyz`).
    pub readiness: Arc<Readiness>,
    /// Signalled when this process queues notifications, so they are claimed at once; the
    /// idle poll remains for rows queued by other instances and for retries coming due.
    pub wake: Arc<Notify>,
}

impl<S: Store> Dispatcher<S> {
    /// Runs until `stop` is cancelled (then finishes the sends in flight), or — when
    /// `until_idle` is given — until that token is cancelled and no notification is pending
    /// (everything sent or failed, or waiting only for channels paused past
    /// [`ONCE_PAUSE_LIMIT`]): the `--once` mode.
    pub async fn run(
        self,
        stop: CancellationToken,
        until_idle: Option<CancellationToken>,
    ) -> Result<Delivered, StoreError> {
        // Each lane claims for itself, up to its free slots, so one channel's backlog never
        // holds up another's notices. A slot is held from the claim until the outcome is
        // recorded, so at most the sum of the channels' concurrency is ever sent and not yet
        // recorded: what a crash can make repeat.
        let capacity: usize = self
            .lanes
            .values()
            .map(|l| l.slots.available_permits())
            .sum::<usize>()
            .max(1);
        let (done_tx, done_rx) = mpsc::channel::<Recorded>(capacity);
        // Signalled whenever recorded outcomes give permits back.
        let returned = Arc::new(Notify::new());
        let recorder = tokio::spawn(record(
            self.store.clone(),
            done_rx,
            stop.clone(),
            returned.clone(),
        ));
        let lease = self.delivery.lease;
        let renewals = CancellationToken::new();
        let renewer = tokio::spawn(renew(
            self.store.clone(),
            self.worker.clone(),
            lease,
            renewals.clone(),
        ));
        let mut store_wait = IDLE_POLL;
        let mut sends = JoinSet::new();
        let mut probes: JoinSet<(String, Result<(), SendError>)> = JoinSet::new();
        let mut delivered = Delivered::default();
        let mut pauses = Pauses::new(self.lanes.keys(), self.readiness.clone());

        let result: Result<(), StoreError> = async {
            loop {
                while let Some(joined) = sends.try_join_next() {
                    tally(&mut delivered, &mut pauses, joined);
                }
                while let Some(Ok((name, result))) = probes.try_join_next() {
                    pauses.probed(&name, result);
                }
                for name in pauses.due() {
                    if let Some(lane) = self.lanes.get(&name) {
                        probes.spawn(pause::probe(name, lane.channel.clone()));
                    }
                }
                if stop.is_cancelled() {
                    return Ok(());
                }
                let (mut claimed_any, mut store_down) = (false, false);
                for channel in pauses.unpaused(self.lanes.keys()) {
                    let lane = &self.lanes[&channel];
                    let free = lane.slots.available_permits();
                    if free == 0 {
                        continue;
                    }
                    let claimed_at = std::time::Instant::now();
                    let begin_by = claimed_at + lease / 2;
                    let claimed = match self
                        .store
                        .claim(
                            &self.worker,
                            lease.as_millis() as i64,
                            free as i64,
                            std::slice::from_ref(&channel),
                        )
                        .await
                    {
                        Ok(claimed) => claimed,
                        Err(e) => {
                            store_failed("claim", &e, store_wait);
                            store_down = true;
                            break;
                        }
                    };
                    claimed_any |= !claimed.is_empty();
                    for row in claimed {
                        // Free at once: a lane claims no more than its free slots, and only
                        // this loop takes them.
                        let slot = lane
                            .slots
                            .clone()
                            .acquire_owned()
                            .await
                            .expect("never closed");
                        let channel = lane.channel.clone();
                        let delivery = self.delivery.clone();
                        let done_tx = done_tx.clone();
                        let stop = stop.clone();
                        let worker = self.worker.clone();
                        sends.spawn(async move {
                            let began = Began {
                                claimed_at,
                                begin_by,
                                stop: &stop,
                            };
                            let started = std::time::Instant::now();
                            let (finish, kind, reply) =
                                attempt(channel, &row, &delivery, began).await;
                            let attempt = reply.map(|reply| Attempt {
                                // The store's time, as this machine's steady clock has
                                // counted since the claim.
                                at: row
                                    .claimed_at
                                    .saturating_add((started - claimed_at).as_millis() as Millis),
                                instance: worker,
                                reply,
                                duration_ms: started.elapsed().as_millis() as i64,
                            });
                            let done = Done {
                                key: row.key,
                                token: row.token,
                                finish,
                                attempt,
                            };
                            let _ = done_tx.send((done, slot)).await;
                            kind
                        });
                    }
                }
                if store_down {
                    tokio::select! {
                        _ = tokio::time::sleep(store_wait) => {}
                        _ = stop.cancelled() => return Ok(()),
                    }
                    store_wait = (store_wait * 2).min(STORE_RETRY_MAX);
                    continue;
                }
                store_wait = IDLE_POLL;
                if claimed_any {
                    continue;
                }
                if let Some(idle) = &until_idle
                    && idle.is_cancelled()
                    && sends.is_empty()
                    && done_tx.capacity() == done_tx.max_capacity()
                    && pauses.all_longer_than(ONCE_PAUSE_LIMIT)
                    && self.nothing_to_claim(&pauses).await
                {
                    return Ok(());
                }
                // Nothing due, or every lane full: wait for a send to end, for recorded
                // outcomes to give permits back, or for the next look.
                tokio::select! {
                    Some(joined) = sends.join_next() => tally(&mut delivered, &mut pauses, joined),
                    _ = returned.notified() => {}
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(self.delivery.poll) => {}
                    _ = stop.cancelled() => return Ok(()),
                }
            }
        }
        .await;

        // Stop taking work, but let the sends in flight finish and be recorded.
        while let Some(joined) = sends.join_next().await {
            tally(&mut delivered, &mut pauses, joined);
        }
        probes.abort_all();
        delivered.paused = pauses.causes();
        drop(done_tx);
        let recorded = recorder
            .await
            .unwrap_or_else(|e| Err(StoreError::new("recorder", e)));
        renewals.cancel();
        let _ = renewer.await;
        result.and(recorded).map(|()| delivered)
    }

    /// Whether no pending notification is one this instance could send: every one is on a
    /// paused channel or on a channel it does not have (or none is pending). While the store
    /// cannot say, there may be: `--once` waits for it.
    async fn nothing_to_claim(&self, pauses: &Pauses) -> bool {
        let claimable = pauses.unpaused(self.lanes.keys());
        match self.store.pending_by_channel().await {
            Ok(pending) => pending
                .iter()
                .all(|(channel, n)| *n == 0 || !claimable.contains(channel)),
            Err(e) => {
                store_failed("count pending notifications", &e, IDLE_POLL);
                false
            }
        }
    }
}

/// How one send ended, as the claim loop counts it.
#[derive(Debug)]
enum Kind {
    Sent,
    Retry,
    Failed,
    Released,
    /// The channel cannot deliver now: pause it.
    Unavailable {
        channel: String,
        cause: String,
        error: String,
    },
}

fn tally(
    delivered: &mut Delivered,
    pauses: &mut Pauses,
    joined: Result<Kind, tokio::task::JoinError>,
) {
    match joined {
        Ok(Kind::Sent) => delivered.sent += 1,
        Ok(Kind::Retry) => delivered.retried += 1,
        Ok(Kind::Failed) | Err(_) => delivered.failed += 1,
        Ok(Kind::Released) => delivered.released += 1,
        Ok(Kind::Unavailable {
            channel,
            cause,
            error,
        }) => pauses.pause(&channel, cause, &error),
    }
}

fn store_failed(operation: &'static str, error: &StoreError, wait: Duration) {
    metrics::counter!("herald_store_errors_total", "operation" => operation).increment(1);
    tracing::warn!(%error, retry_in_ms = wait.as_millis() as u64, "the store failed to {operation}; dispatch waits for it");
}

/// One attempt at one row: what to record about it, and how the claim loop counts it.
/// When a claim was taken and how long its send may take to begin.
struct Began<'a> {
    claimed_at: std::time::Instant,
    /// The first half of the lease.
    begin_by: std::time::Instant,
    /// Herald is stopping: what has not begun is not begun.
    stop: &'a CancellationToken,
}

async fn attempt(
    channel: Arc<dyn Channel>,
    row: &Claimed,
    delivery: &DeliveryConfig,
    began: Began<'_>,
) -> (Finish, Kind, Option<String>) {
    let Began {
        claimed_at,
        begin_by,
        stop,
    } = began;
    let outgoing = Outgoing {
        key: &row.key,
        recipient: &row.recipient,
        message: &row.message,
        begin_by,
        stop,
    };
    if let Some(SendError::NotBegun(why)) = outgoing.must_not_begin("its send") {
        return released(row, &why);
    }
    let started = std::time::Instant::now();
    let result = channel.send(outgoing).await;
    // The store's time now, as this machine's steady clock has counted since the claim.
    let now = row
        .claimed_at
        .saturating_add(claimed_at.elapsed().as_millis() as Millis);
    let labels = [("rule", row.rule.clone()), ("channel", row.channel.clone())];
    match &result {
        Ok(_) => {
            metrics::counter!("herald_notifications_sent_total", &labels).increment(1);
            metrics::histogram!("herald_delivery_latency_seconds", "channel" => row.channel.clone())
                .record(now.saturating_sub(row.created_at) as f64 / 1000.0);
        }
        Err(SendError::Permanent(_)) => {
            metrics::counter!("herald_notifications_failed_total", &labels).increment(1)
        }
        Err(SendError::Transient(_) | SendError::Throttled { .. }) => {
            metrics::counter!("herald_notifications_retried_total", &labels).increment(1)
        }
        Err(SendError::NotBegun(_) | SendError::Unavailable { .. }) => {}
    }
    match result {
        Err(SendError::NotBegun(why)) => released(row, &why),
        Err(SendError::Unavailable { cause, error }) => {
            let deferred = format!("not attempted: the channel is paused: {error}");
            (
                Finish::Deferred {
                    error: deferred.clone(),
                },
                Kind::Unavailable {
                    channel: row.channel.clone(),
                    cause,
                    error,
                },
                Some(deferred),
            )
        }
        Ok(reply) => {
            tracing::info!(key = %row.key, channel = %row.channel, elapsed_ms = started.elapsed().as_millis() as u64, %reply, "sent");
            (Finish::Sent, Kind::Sent, Some(reply))
        }
        Err(SendError::Permanent(error)) => {
            tracing::warn!(key = %row.key, channel = %row.channel, %error, "failed permanently");
            (
                Finish::Failed {
                    error: error.clone(),
                },
                Kind::Failed,
                Some(error),
            )
        }
        Err(SendError::Transient(error)) => retry(row, delivery, now, error, Duration::ZERO),
        Err(SendError::Throttled { error, after }) => retry(row, delivery, now, error, after),
    }
}

/// A transient failure: retry with backoff (never sooner than `not_before`), or give up once
/// the notification is past `max_age`.
fn retry(
    row: &Claimed,
    delivery: &DeliveryConfig,
    now: Millis,
    error: String,
    not_before: Duration,
) -> (Finish, Kind, Option<String>) {
    let attempts = row.attempts + 1;
    let reply = Some(error.clone());
    if delivery.expired(row.created_at, now) {
        tracing::warn!(key = %row.key, channel = %row.channel, attempts, %error, "giving up: max_age reached");
        let error =
            format!("gave up after {attempts} attempts (max_age reached); last error: {error}");
        (Finish::Failed { error }, Kind::Failed, reply)
    } else {
        let after = delivery.retry_after(attempts as u32, fastrand::f64(), not_before);
        tracing::info!(key = %row.key, channel = %row.channel, attempts, retry_in_ms = after, %error, "will retry");
        (Finish::Retry { after, error }, Kind::Retry, reply)
    }
}

/// A claim given back unsent (its time to begin ran out, or Herald is stopping), so that any
/// instance may take the row at once.
fn released(row: &Claimed, why: &str) -> (Finish, Kind, Option<String>) {
    metrics::counter!("herald_notifications_released_total", "channel" => row.channel.clone())
        .increment(1);
    tracing::warn!(key = %row.key, channel = %row.channel, why, "not sent; released to be claimed again");
    (Finish::Released, Kind::Released, None)
}

/// An outcome on its way to the store, with the permit that lets the claim loop take another
/// row once the outcome is recorded.
type Recorded = (Done, tokio::sync::OwnedSemaphorePermit);

/// Records outcomes in batches: whatever has arrived since the last write goes in one
/// transaction, so one disk sync covers many sends; their permits are given back once it
/// commits. While the store fails, the same outcomes are offered again with backoff (no new
/// sends begin meanwhile); after a stop, for [`RECORD_AFTER_STOP`].
async fn record<S: Store>(
    store: S,
    mut rx: mpsc::Receiver<Recorded>,
    stop: CancellationToken,
    returned: Arc<Notify>,
) -> Result<(), StoreError> {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 256).await > 0 {
        let mut wait = IDLE_POLL;
        let mut stopped_at = None;
        let (outcomes, permits): (Vec<Done>, Vec<_>) = batch.drain(..).unzip();
        loop {
            match store.finish(outcomes.clone()).await {
                Ok(_) => break,
                Err(e) => {
                    let since_stop = stop
                        .is_cancelled()
                        .then(|| *stopped_at.get_or_insert_with(std::time::Instant::now));
                    if since_stop.is_some_and(|t| t.elapsed() >= RECORD_AFTER_STOP) {
                        tracing::error!(error = %e, outcomes = outcomes.len(), "stopping with outcomes the store did not take; those notifications are sent again once their lease has passed");
                        return Err(e);
                    }
                    store_failed("record outcomes", &e, wait);
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(STORE_RETRY_MAX);
                }
            }
        }
        drop(permits);
        returned.notify_one();
    }
    Ok(())
}

/// Renews this instance's claims every third of the lease until `stop`: a send that takes
/// long, or an outcome waiting for the store, keeps its row, while a crashed instance's claims
/// run out within one lease. A renewal the store misses is tried again at the next tick.
async fn renew<S: Store>(store: S, worker: String, lease: Duration, stop: CancellationToken) {
    let every = (lease / 3).max(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        if let Err(e) = store.renew(&worker, lease.as_millis() as Millis).await {
            store_failed("renew claims", &e, every);
        }
    }
}

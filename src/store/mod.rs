//! The store: the only state Herald shares between its stages (ARCHITECTURE.md §1, §7).
//!
//! A batch from a source — its selected events, their notifications, its dead letters and the
//! source's new checkpoint — is committed in one transaction ([`Store::commit`]); only then may
//! the source acknowledge its input (nothing lost). Notifications are inserted by key, ignoring a
//! key already present (nothing twice). The dispatcher claims due rows with a lease and a claim
//! token, and a row is marked only by the holder of its current token.
//!
//! [`Store`] has one implementation, [`SqlStore`], with one set of queries for its two engines:
//! SQLite (one instance) and PostgreSQL (several instances sharing one outbox). `engine.rs`
//! holds what differs: how each is opened and migrated.

mod engine;
mod sql;

pub use engine::{Engine, InstanceLock, RunLock, Schema};
pub use sql::SqlStore;

use std::future::Future;

use serde::Serialize;

/// Milliseconds since the Unix epoch: the store's clock unit.
pub type Millis = i64;

pub fn now_millis() -> Millis {
    jiff::Timestamp::now().as_millisecond()
}

/// A selected event, for dedup and history.
#[derive(Debug, Clone)]
pub struct SeenEvent {
    pub tenant: String,
    pub event_id: String,
    pub activity: String,
    pub time: Millis,
    /// Rules that selected it.
    pub rules: Vec<String>,
}

/// A notification to queue.
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub key: String,
    pub event_id: String,
    pub rule: String,
    pub channel: String,
    pub recipient: String,
    pub subject: String,
    pub message: Vec<u8>,
}

/// A dead letter to keep.
#[derive(Debug, Clone)]
pub struct NewDeadLetter {
    pub input: String,
    pub position: String,
    pub reason: String,
    pub raw: Vec<u8>,
}

/// Everything one source batch produced, committed together.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub source: String,
    pub events: Vec<SeenEvent>,
    pub notifications: Vec<NewNotification>,
    pub dead_letters: Vec<NewDeadLetter>,
    /// The source position this batch brings the source to: (key, value).
    pub checkpoint: Option<(String, String)>,
}

/// What a commit changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Committed {
    /// Notifications inserted.
    pub queued: u64,
    /// Notifications whose key was already in the outbox (a redelivered event).
    pub duplicates: u64,
    pub dead_letters: u64,
    /// Dead letters the source already held (the same content failing the same way).
    #[serde(skip)]
    pub dead_letters_known: u64,
    /// The times (Unix ms) of events recorded for the first time, for sources that measure
    /// how late records arrive.
    #[serde(skip)]
    pub first_seen: Vec<i64>,
    /// Inserted notifications per (rule, channel), for metrics.
    #[serde(skip)]
    pub queued_by: std::collections::BTreeMap<(String, String), u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Sent,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Sent => "sent",
            State::Failed => "failed",
        }
    }

    fn parse(text: &str) -> State {
        match text {
            "sent" => State::Sent,
            "failed" => State::Failed,
            _ => State::Pending,
        }
    }
}

/// A row claimed for sending; `token` must be shown to mark it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub key: String,
    pub rule: String,
    pub channel: String,
    pub recipient: String,
    pub message: Vec<u8>,
    /// Attempts before this one.
    pub attempts: i64,
    pub created_at: Millis,
    /// The store's time when the row was claimed (its clock, not this machine's).
    pub claimed_at: Millis,
    pub token: String,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Finish {
    Sent,
    /// Try again `after` this many milliseconds (counted by the store's clock).
    Retry {
        after: Millis,
        error: String,
    },
    Failed {
        error: String,
    },
    /// Not attempted: the claim's lease ran short before the send could begin. The claim is
    /// cleared (if still held) so any instance can take the row at once; no attempt counts.
    Released,
    /// Not attempted: the channel cannot deliver anything now (its relay refused the
    /// connection, TLS or the credentials) and is paused. The claim is cleared and the reason
    /// kept; no attempt counts, and the row is sent once the channel resumes.
    Deferred {
        error: String,
    },
}

/// The end of one attempt on a claimed row.
#[derive(Debug, Clone)]
pub struct Done {
    pub key: String,
    pub token: String,
    pub finish: Finish,
}

/// One outbox row as the CLI shows it.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxEntry {
    pub key: String,
    pub event_id: String,
    pub rule: String,
    pub channel: String,
    pub recipient: String,
    pub subject: String,
    pub state: State,
    pub attempts: i64,
    pub created_at: Millis,
    pub next_attempt_at: Millis,
    pub sent_at: Option<Millis>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct OutboxCounts {
    pub pending: u64,
    pub sent: u64,
    pub failed: u64,
}

/// A kept dead letter.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetterEntry {
    pub id: i64,
    pub source: String,
    pub input: String,
    pub position: String,
    pub reason: String,
    #[serde(skip)]
    pub raw: Vec<u8>,
    pub created_at: Millis,
}

/// What happened to a selected event under one rule: how many notices it queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    pub rule: String,
    pub queued: i64,
    pub created_at: Millis,
}

#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(String);

impl StoreError {
    pub(crate) fn new(context: &str, e: impl std::fmt::Display) -> Self {
        StoreError(format!("{context}: {e}"))
    }
}

/// The store's operations. Futures are `Send` so every stage can run on any runtime thread.
pub trait Store: Clone + Send + Sync + 'static {
    /// Commits a batch atomically; see the module docs.
    fn commit(&self, batch: &Batch) -> impl Future<Output = Result<Committed, StoreError>> + Send;

    /// Whether the database answers at all (for `/readyz`).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn checkpoint(
        &self,
        source: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Claims up to `limit` pending rows due now whose lease (if any) has run out, on the
    /// `channels` named: those this instance has configured and not paused. A row of a channel
    /// another instance has (a rolling deploy that adds one) is left to that instance. "Now"
    /// and the lease are the store's clock, one for every instance.
    fn claim(
        &self,
        worker: &str,
        lease: Millis,
        limit: i64,
        channels: &[String],
    ) -> impl Future<Output = Result<Vec<Claimed>, StoreError>> + Send;

    /// Records how attempts ended, in one transaction (one disk sync for many sends). An entry
    /// whose token no longer holds its row (the lease was taken over) changes nothing; the
    /// result counts the rows that were changed.
    fn finish(&self, done: Vec<Done>) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Releases claims left by a process that died: those of instance `of` (its own, when it
    /// starts again), or every claim (`None`: only for a single-instance SQLite store). Returns
    /// how many.
    fn release_claims(
        &self,
        of: Option<&str>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Extends every claim `worker` holds to `lease` from now, while its sends are in flight
    /// or their outcomes wait to be recorded. Returns how many.
    fn renew(
        &self,
        worker: &str,
        lease: Millis,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    fn outbox(
        &self,
        state: Option<State>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<OutboxEntry>, StoreError>> + Send;

    fn counts(&self) -> impl Future<Output = Result<OutboxCounts, StoreError>> + Send;

    /// Pending notifications per channel.
    fn pending_by_channel(
        &self,
    ) -> impl Future<Output = Result<std::collections::BTreeMap<String, u64>, StoreError>> + Send;

    /// Makes failed rows pending again, due now: one key, or every failed row when `key` is
    /// `None`. Returns how many.
    fn retry(&self, key: Option<&str>) -> impl Future<Output = Result<u64, StoreError>> + Send;

    fn dead_letters(
        &self,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<DeadLetterEntry>, StoreError>> + Send;

    fn dead_letter(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<DeadLetterEntry>, StoreError>> + Send;

    /// What was recorded for one event (tenant, id): one entry per rule that selected it.
    fn history(
        &self,
        tenant: &str,
        event_id: &str,
    ) -> impl Future<Output = Result<Vec<HistoryEntry>, StoreError>> + Send;

    /// Removes a dead letter, in the same transaction as the batch its replay produced.
    fn replace_dead_letter(
        &self,
        id: i64,
        batch: &Batch,
    ) -> impl Future<Output = Result<Committed, StoreError>> + Send;
}

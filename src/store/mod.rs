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

mod batch;
pub use batch::told_already;
mod engine;
mod events;
mod operators;
mod reports;
mod retention;
mod sql;
mod storm;

pub use engine::{Engine, InstanceLock, QUEUED_CHANNEL, RunLock, Schema, listen_for_queued};
pub use events::{EventEntry, EventQuery};
pub use operators::{Operator, OperatorAction};
pub use reports::{ActionOutcome, NewReport, Report, ReportAction, ReportedNotice, Verdict};
pub use retention::{Pruned, Retention};
pub use sql::SqlStore;
pub use storm::{BulkAccount, DueWindow, HeldNotice, LISTED, Members, NewSilence, SilenceEntry};

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
    /// Why it told nobody although selected (routine upkeep), for its history rows.
    pub routine: Option<String>,
    /// Where the record came from and its bytes: kept as a dead letter if the store refuses
    /// this event's rows (ARCHITECTURE.md §7).
    pub input: String,
    pub position: String,
    pub raw: Vec<u8>,
    /// The accounts it names (targets and initiator: UPN, display name, object id), lower
    /// case, to find it by in the dashboard.
    pub accounts: Vec<String>,
    /// With `[bulk]`: the accounts its initiator changed, counted in the initiator's window.
    pub bulk: Option<crate::storm::BulkCount>,
}

/// A notification to queue.
#[derive(Debug, Clone, Default)]
pub struct NewNotification {
    pub key: String,
    pub event_id: String,
    pub rule: String,
    pub channel: String,
    pub recipient: String,
    pub subject: String,
    pub message: Vec<u8>,
    /// The action (tenant and correlation id) of a `once_per_action` rule's notice: queued only
    /// if no other notice has told this recipient, on this channel, about it (table
    /// `actions_told`).
    pub action: Option<String>,
    /// What the notice said (JSON, [`crate::report::NoticeSummary`]): for the SOC's notice of
    /// an answer to its report link, and for the group or digest it may be held for.
    pub summary: Option<String>,
    /// Grouping, throttles, repeats and silences (ARCHITECTURE.md §13); `None`: queued as it
    /// is.
    pub controls: Option<crate::storm::Controls>,
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
    /// Notifications not queued because another notice told the recipient about the same
    /// action (`once_per_action`).
    pub suppressed: u64,
    /// Notifications held in a group or past a throttle, for the window's notice.
    pub held: u64,
    /// Notifications recorded as suppressed by a silence or as a repeat.
    pub silenced: u64,
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
    /// Notifications kept unsent per (rule, why: `held`, `silenced` or `repeat`), for metrics.
    #[serde(skip)]
    pub kept_by: std::collections::BTreeMap<(String, String), u64>,
}

impl Committed {
    /// Adds what another part of the same commit changed.
    pub fn absorb(&mut self, other: Committed) {
        self.queued += other.queued;
        self.duplicates += other.duplicates;
        self.suppressed += other.suppressed;
        self.held += other.held;
        self.silenced += other.silenced;
        for (key, n) in other.kept_by {
            *self.kept_by.entry(key).or_default() += n;
        }
        self.dead_letters += other.dead_letters;
        self.dead_letters_known += other.dead_letters_known;
        self.first_seen.extend(other.first_seen);
        for (key, n) in other.queued_by {
            *self.queued_by.entry(key).or_default() += n;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Sent,
    Failed,
    /// In a group's wait or past a throttle, until its window ends (`held_by`).
    Held,
    /// Told in its group's or digest's notice.
    Merged,
    /// Recorded, not sent: a silence or a repeat (`held_by`).
    Suppressed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Sent => "sent",
            State::Failed => "failed",
            State::Held => "held",
            State::Merged => "merged",
            State::Suppressed => "suppressed",
        }
    }

    fn parse(text: &str) -> State {
        match text {
            "sent" => State::Sent,
            "failed" => State::Failed,
            "held" => State::Held,
            "merged" => State::Merged,
            "suppressed" => State::Suppressed,
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
    /// The attempt, recorded in `attempts` whatever became of the claim (a send that was
    /// made is a fact even when its lease was taken over). `None` when nothing was handed
    /// over ([`Finish::Released`]).
    pub attempt: Option<Attempt>,
}

/// One delivery attempt, as the dispatcher saw it.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// When the send began, by the store's clock.
    pub at: Millis,
    pub instance: String,
    /// The receiving server's reply (`250 2.0.0 queued as …`, `HTTP 202 Accepted`), or the
    /// error.
    pub reply: String,
    pub duration_ms: i64,
}

/// A recorded attempt, as the CLI shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptEntry {
    pub at: Millis,
    pub instance: String,
    /// `sent`, `retry`, `failed` or `deferred` (the channel was paused).
    pub outcome: String,
    pub reply: String,
    pub duration_ms: i64,
}

/// Which outbox rows to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct OutboxQuery {
    pub state: Option<State>,
    /// Queued at or after this time.
    pub since: Option<Millis>,
    pub rule: Option<String>,
    pub recipient: Option<String>,
    pub channel: Option<String>,
    pub event: Option<String>,
    /// Only rows after this one in the listing's order (queued before it, or at the same
    /// time with a smaller key): the next page after a row's `(created_at, key)`.
    pub after: Option<(Millis, String)>,
    pub limit: i64,
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
    /// What holds or held it back: a window (`group-…`, `throttle-…`), `silence:ID` or
    /// `repeat:KEY`.
    pub held_by: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct OutboxCounts {
    pub pending: u64,
    pub sent: u64,
    pub failed: u64,
    pub held: u64,
    pub merged: u64,
    pub suppressed: u64,
}

/// What came in and went out since a time: the overview's day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Activity {
    /// Events a rule selected.
    pub events: u64,
    /// Notices queued, by channel and their state now: `(channel, state, count)`.
    pub notices: Vec<(String, String, u64)>,
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
    /// Each replay's outcome, a line each (`2026-12-03T16:40:00Z replayed: …`).
    pub replays: String,
    /// When it was handled: replayed into use, or resolved by hand.
    pub resolved_at: Option<Millis>,
}

/// What happened to a selected event under one rule: how many notices it queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    pub rule: String,
    pub queued: i64,
    /// Why it queued nothing although selected (`routine: only … changed`).
    pub reason: Option<String>,
    pub created_at: Millis,
}

#[derive(Debug, thiserror::Error)]
#[error("store: {message}")]
pub struct StoreError {
    message: String,
    /// The database refused a value (too large for an index, out of range): the same rows
    /// would be refused again, however often they were offered.
    refused: bool,
}

impl StoreError {
    pub(crate) fn new(context: &str, e: impl std::fmt::Display) -> Self {
        StoreError {
            message: format!("{context}: {e}"),
            refused: false,
        }
    }

    pub(crate) fn refused(context: &str, e: impl std::fmt::Display) -> Self {
        StoreError {
            message: format!("{context}: {e}"),
            refused: true,
        }
    }

    /// Whether the database refused the data itself, rather than failing to take it.
    pub fn is_refusal(&self) -> bool {
        self.refused
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

    /// Outbox rows matching `query`, newest first.
    fn outbox(
        &self,
        query: &OutboxQuery,
    ) -> impl Future<Output = Result<Vec<OutboxEntry>, StoreError>> + Send;

    /// One notification with its stored message.
    fn notification(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<(OutboxEntry, Vec<u8>)>, StoreError>> + Send;

    /// Every recorded attempt at one notification, oldest first.
    fn attempts(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Vec<AttemptEntry>, StoreError>> + Send;

    /// Every row by state: reads the whole outbox (for the CLI, not for every scrape).
    fn counts(&self) -> impl Future<Output = Result<OutboxCounts, StoreError>> + Send;

    /// Pending and failed rows only (`sent` is 0), from partial indexes: what `/metrics`
    /// shows on every scrape, at a cost that does not grow with the rows already sent.
    fn backlog(&self) -> impl Future<Output = Result<OutboxCounts, StoreError>> + Send;

    /// Removes, in each table, at most `batch` rows older than `retention` says to keep
    /// (a notification with its attempts), each table in its own short transaction; with
    /// `dry_run`, counts every such row and removes nothing. Callers repeat until nothing is
    /// left, pausing between passes.
    fn prune(
        &self,
        retention: &Retention,
        batch: i64,
        dry_run: bool,
    ) -> impl Future<Output = Result<Pruned, StoreError>> + Send;

    /// Pending notifications per channel.
    fn pending_by_channel(
        &self,
    ) -> impl Future<Output = Result<std::collections::BTreeMap<String, u64>, StoreError>> + Send;

    /// Makes failed rows pending again, due now: one key, or every failed row when `key` is
    /// `None`. Returns how many.
    fn retry(&self, key: Option<&str>) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// [`Store::retry`] by an operator, recorded in `operator_actions` in the same transaction.
    fn retry_by(
        &self,
        key: Option<&str>,
        by: &Operator,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Silences, newest first (with `live_only`, those still in force), each with how many
    /// notices it suppressed.
    fn silences(
        &self,
        live_only: bool,
    ) -> impl Future<Output = Result<Vec<SilenceEntry>, StoreError>> + Send;

    /// Creates a silence; `tell` makes the notices of its creation (to `[silences] notify`),
    /// queued in the same transaction, as is the operator's record when `operator` made it.
    fn add_silence<F>(
        &self,
        silence: &NewSilence,
        operator: Option<&Operator>,
        tell: F,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send
    where
        F: FnOnce(&SilenceEntry) -> Vec<NewNotification> + Send;

    /// Ends a silence now (`by` who); `false` when it had ended or never was.
    fn expire_silence(
        &self,
        id: i64,
        by: &str,
        operator: Option<&Operator>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Selected events, newest first (the dashboard's search).
    fn events(
        &self,
        query: &EventQuery,
    ) -> impl Future<Output = Result<Vec<EventEntry>, StoreError>> + Send;

    /// One selected event and its record as it came (empty for events recorded before 0011);
    /// without `tenant`, the event of that id in whichever tenant has it.
    fn event(
        &self,
        tenant: Option<&str>,
        event_id: &str,
    ) -> impl Future<Output = Result<Option<(EventEntry, Vec<u8>)>, StoreError>> + Send;

    /// The reports of event `event_id`'s notices, newest first.
    fn reports_of_event(
        &self,
        event_id: &str,
    ) -> impl Future<Output = Result<Vec<Report>, StoreError>> + Send;

    /// Selected events and notices queued since `since` (Unix ms).
    fn activity(&self, since: Millis) -> impl Future<Output = Result<Activity, StoreError>> + Send;

    /// Reports since `since` (Unix ms): all of them, and those saying "I did not do this".
    fn report_counts(
        &self,
        since: Millis,
    ) -> impl Future<Output = Result<(u64, u64), StoreError>> + Send;

    /// Operators' actions, newest first.
    fn operator_actions(
        &self,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<OperatorAction>, StoreError>> + Send;

    /// Operators' actions older than id `before` (all, with `None`), newest first.
    fn operator_actions_before(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<OperatorAction>, StoreError>> + Send;

    /// Dead letters older than id `before` (all, with `None`), newest first.
    fn dead_letters_before(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<DeadLetterEntry>, StoreError>> + Send;

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

    /// Records a dead letter's replay in the same transaction as the batch it produced: the
    /// entry stays (its id, input, position, time and first reason are the evidence), its
    /// `replays` gains the outcome, and it is resolved when the batch holds no dead letter.
    /// The batch's own dead letters (still unusable) are not kept again.
    fn replay_dead_letter(
        &self,
        id: i64,
        batch: &Batch,
    ) -> impl Future<Output = Result<Committed, StoreError>> + Send;

    /// Marks dead letter `id` (or, with `None`, every one) handled; returns how many were not
    /// already.
    fn resolve_dead_letters(
        &self,
        id: Option<i64>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// [`Store::replay_dead_letter`], by an operator when `by` names one: recorded in
    /// `operator_actions` in the same transaction.
    fn replay_dead_letter_by(
        &self,
        id: i64,
        batch: &Batch,
        by: Option<&Operator>,
    ) -> impl Future<Output = Result<Committed, StoreError>> + Send;

    /// [`Store::resolve_dead_letters`], by an operator when `by` names one.
    fn resolve_dead_letters_by(
        &self,
        id: Option<i64>,
        by: Option<&Operator>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The notice a report link names (by notification key), with its event's tenant, time
    /// and activity while `events_seen` still holds them.
    fn reported_notice(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<ReportedNotice>, StoreError>> + Send;

    /// Records the owner's answer once per notification key ("not me" replaces an earlier
    /// "me", never the reverse); returns the report as recorded and whether this call changed
    /// it.
    /// The first time, `notices` (the SOC's notices of the answer) are queued in the same
    /// transaction: an answer recorded is an answer told, once.
    fn record_report(
        &self,
        report: &NewReport,
        notices: &[NewNotification],
    ) -> impl Future<Output = Result<(Report, bool), StoreError>> + Send;

    /// The report of notification `key`, if its owner answered.
    fn report(&self, key: &str) -> impl Future<Output = Result<Option<Report>, StoreError>> + Send;

    /// Reports, newest first: of one verdict, since a time (Unix ms), at most `limit`.
    fn reports(
        &self,
        verdict: Option<Verdict>,
        since: Option<Millis>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Report>, StoreError>> + Send;
}

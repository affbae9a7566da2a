//! Intake: one source batch through decode → rules → plan, then into the store in one
//! transaction with the source's new checkpoint. A source acknowledges only after this returns.
//!
//! While the store cannot take a batch (the database restarting, a network cut), a patient
//! commit holds the batch and tries again with backoff: intake pauses, nothing is acknowledged,
//! nothing is dropped. The HTTP source commits impatiently and answers 503, so its sender retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Outcome, Pipeline};
use crate::store::{Batch, Committed, NewDeadLetter, NewNotification, Store, StoreError};
use crate::web::Readiness;

/// What one batch brought in.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Intake {
    pub records: u64,
    pub skipped: u64,
    pub selected: u64,
    #[serde(flatten)]
    pub committed: Committed,
}

/// The pipeline bound to a store; cheap to clone into every source.
pub struct Ingest<S: Store> {
    pipeline: Arc<Pipeline>,
    store: S,
    records: Arc<AtomicU64>,
    /// The tenant of records that do not name their own (see [`Pipeline::process_in`]).
    tenant: Option<Arc<str>>,
    /// Signalled after a commit that queued notifications: the dispatcher claims at once
    /// instead of at its next poll.
    queued: Arc<tokio::sync::Notify>,
    /// Where a store that fails is shown (`/readyz`).
    readiness: Arc<Readiness>,
}

impl<S: Store> Clone for Ingest<S> {
    fn clone(&self) -> Self {
        Ingest {
            pipeline: self.pipeline.clone(),
            store: self.store.clone(),
            records: self.records.clone(),
            tenant: self.tenant.clone(),
            queued: self.queued.clone(),
            readiness: self.readiness.clone(),
        }
    }
}

/// One piece of input from a source.
pub struct Piece<'a> {
    pub source: &'a str,
    /// Names the input in dead letters (a file path, `http`, a topic/partition/offset).
    pub input: &'a str,
    pub bytes: &'a [u8],
    /// The line of the whole input this piece starts on.
    pub first_line: usize,
    /// Where the source will be once this piece is committed.
    pub checkpoint: Option<(String, String)>,
}

/// Pieces decoded and planned, waiting to be committed as one transaction. A source that
/// reads faster than the store commits joins the pieces read meanwhile into one group
/// ([`Prepared::join`]): one commit, one fsync, the last piece's checkpoint.
pub struct Prepared {
    batch: Batch,
    intake: Intake,
    dead: Vec<(String, String)>,
    newest: Option<i64>,
    pieces: usize,
}

impl Prepared {
    /// How many pieces this holds.
    pub fn pieces(&self) -> usize {
        self.pieces
    }

    /// Adds `later` (the same source's next pieces): its rows follow these, and its checkpoint
    /// is the group's.
    pub fn join(&mut self, later: Prepared) {
        let Prepared {
            batch,
            intake,
            dead,
            newest,
            pieces,
        } = later;
        self.batch.events.extend(batch.events);
        self.batch.notifications.extend(batch.notifications);
        self.batch.dead_letters.extend(batch.dead_letters);
        self.batch.checkpoint = batch.checkpoint;
        self.intake.records += intake.records;
        self.intake.skipped += intake.skipped;
        self.intake.selected += intake.selected;
        self.dead.extend(dead);
        self.newest = self.newest.max(newest);
        self.pieces += pieces;
    }
}

impl<S: Store> Ingest<S> {
    pub fn new(pipeline: Arc<Pipeline>, store: S) -> Self {
        Ingest {
            pipeline,
            store,
            records: Arc::default(),
            tenant: None,
            queued: Arc::default(),
            readiness: Arc::default(),
        }
    }

    /// This intake, showing a store that fails in `readiness` (`/readyz`).
    pub fn with_readiness(self, readiness: Arc<Readiness>) -> Self {
        Ingest { readiness, ..self }
    }

    /// What a commit that queued notifications signals (for the dispatcher).
    pub fn queued(&self) -> Arc<tokio::sync::Notify> {
        self.queued.clone()
    }

    /// This intake for a source whose records may not name their tenant: they are taken as
    /// `tenant`'s (lowercased, as Entra writes tenant ids in its records).
    pub fn for_tenant(&self, tenant: &str) -> Self {
        Ingest {
            tenant: Some(tenant.to_ascii_lowercase().into()),
            ..self.clone()
        }
    }

    /// Audit records committed so far by every clone of this intake.
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// The pipeline, shared (the report pages render the SOC's notices with its planner).
    pub fn pipeline_arc(&self) -> Arc<Pipeline> {
        self.pipeline.clone()
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Decodes, plans and commits one piece. Returns only once it is durable.
    pub async fn commit(&self, piece: Piece<'_>) -> Result<Intake, StoreError> {
        self.commit_with_dead_letters(piece)
            .await
            .map(|(intake, _)| intake)
    }

    /// As [`Ingest::commit`], also returning each dead letter's position and reason.
    pub async fn commit_with_dead_letters(
        &self,
        piece: Piece<'_>,
    ) -> Result<(Intake, Vec<(String, String)>), StoreError> {
        self.commit_all(std::slice::from_ref(&piece)).await
    }

    /// As [`Ingest::commit`], but while the store fails, waits and tries again until it
    /// succeeds or `stop` is cancelled.
    pub async fn commit_patiently(
        &self,
        piece: Piece<'_>,
        stop: &CancellationToken,
    ) -> Result<Intake, StoreError> {
        self.commit_pieces(std::slice::from_ref(&piece), Some(stop))
            .await
            .map(|(intake, _)| intake)
    }

    /// Several pieces of one source in one transaction, with the last piece's checkpoint
    /// (a Kafka partition's messages, each its own input for dead letters).
    pub async fn commit_all(
        &self,
        pieces: &[Piece<'_>],
    ) -> Result<(Intake, Vec<(String, String)>), StoreError> {
        self.commit_pieces(pieces, None).await
    }

    /// As [`Ingest::commit_all`], patiently (see [`Ingest::commit_patiently`]).
    pub async fn commit_all_patiently(
        &self,
        pieces: &[Piece<'_>],
        stop: &CancellationToken,
    ) -> Result<(Intake, Vec<(String, String)>), StoreError> {
        self.commit_pieces(pieces, Some(stop)).await
    }

    async fn commit_pieces(
        &self,
        pieces: &[Piece<'_>],
        patience: Option<&CancellationToken>,
    ) -> Result<(Intake, Vec<(String, String)>), StoreError> {
        match self.prepare(pieces) {
            Some(prepared) => self.commit_prepared(prepared, patience).await,
            None => Ok((Intake::default(), Vec::new())),
        }
    }

    /// Decodes and plans `pieces` (of one source) without committing them: the batch that
    /// [`Ingest::commit_prepared`] commits with the last piece's checkpoint. `None` for no
    /// pieces.
    pub fn prepare(&self, pieces: &[Piece<'_>]) -> Option<Prepared> {
        let last = pieces.last()?;
        let mut out = Outcome::default();
        for piece in pieces {
            self.pipeline.process_in(
                piece.input,
                piece.bytes,
                piece.first_line,
                self.tenant.as_deref(),
                &mut out,
            );
        }
        let dead = out
            .dead_letters
            .iter()
            .map(|d| (d.position.to_string(), d.reason.clone()))
            .collect();
        let batch = to_batch(last.source, last.checkpoint.clone(), &mut out);
        let intake = Intake {
            records: out.records,
            skipped: out.skipped.values().sum(),
            selected: out.selected,
            committed: Committed::default(),
        };
        Some(Prepared {
            batch,
            intake,
            dead,
            newest: out.newest,
            pieces: pieces.len(),
        })
    }

    /// Commits what [`Ingest::prepare`] made, patiently when `patience` is given (see
    /// [`Ingest::commit_patiently`]). Returns only once it is durable.
    pub async fn commit_prepared(
        &self,
        prepared: Prepared,
        patience: Option<&CancellationToken>,
    ) -> Result<(Intake, Vec<(String, String)>), StoreError> {
        let Prepared {
            batch,
            mut intake,
            dead,
            newest,
            ..
        } = prepared;
        intake.committed = match patience {
            None => self.store.commit(&batch).await?,
            Some(stop) => self.store_patiently(&batch, stop).await?,
        };
        if intake.committed.queued > 0 {
            self.queued.notify_one();
        }
        count(&batch.source, &intake);
        if let Some(newest) = newest {
            lag(&batch.source, newest);
            self.readiness.newest_record(&batch.source, newest);
        }
        self.records.fetch_add(intake.records, Ordering::Relaxed);
        Ok((intake, dead))
    }

    /// Replays a kept dead letter through the current configuration: what it yields commits in
    /// the same transaction as the entry's new `replays` line, and the entry (resolved if it
    /// was used) keeps its evidence.
    pub async fn replay(
        &self,
        id: i64,
        source: &str,
        input: &str,
        raw: &[u8],
    ) -> Result<Intake, StoreError> {
        self.replay_by(id, source, input, raw, None).await
    }

    /// [`Ingest::replay`] by an operator of the dashboard, recorded with it.
    pub async fn replay_by(
        &self,
        id: i64,
        source: &str,
        input: &str,
        raw: &[u8],
        by: Option<&crate::store::Operator>,
    ) -> Result<Intake, StoreError> {
        let mut out = Outcome::default();
        self.pipeline.process(input, raw, &mut out);
        let batch = to_batch(source, None, &mut out);
        let intake = Intake {
            records: out.records,
            skipped: out.skipped.values().sum(),
            selected: out.selected,
            committed: Committed::default(),
        };
        let committed = self.store.replay_dead_letter_by(id, &batch, by).await?;
        Ok(Intake {
            committed,
            ..intake
        })
    }
}

impl<S: Store> Ingest<S> {
    /// Source `source`'s checkpoint `key`, read as patiently as a batch is committed: while the
    /// store fails, the source waits instead of ending. An error only once `stop` is cancelled.
    pub async fn checkpoint_patiently(
        &self,
        source: &str,
        key: &str,
        stop: &CancellationToken,
    ) -> Result<Option<String>, StoreError> {
        patiently(source, "checkpoint", stop, &self.readiness, || {
            self.store.checkpoint(source, key)
        })
        .await
    }

    /// Commits `batch`, waiting for a store that fails; nothing is acknowledged meanwhile.
    async fn store_patiently(
        &self,
        batch: &Batch,
        stop: &CancellationToken,
    ) -> Result<Committed, StoreError> {
        patiently(&batch.source, "commit", stop, &self.readiness, || {
            self.store.commit(batch)
        })
        .await
    }
}

/// Runs a store `operation` for `source` until it succeeds, retrying with backoff (250 ms
/// doubling to 5 s) while the store fails: intake pauses. An error only once `stop` is
/// cancelled.
async fn patiently<T, F, Fut>(
    source: &str,
    operation: &'static str,
    stop: &CancellationToken,
    readiness: &Readiness,
    mut run: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut wait = Duration::from_millis(250);
    let mut failing = false;
    let recovered = |failing: bool| {
        if failing {
            readiness.store_failing(false);
        }
    };
    loop {
        match run().await {
            Ok(value) => {
                recovered(failing);
                return Ok(value);
            }
            Err(e) => {
                if !failing {
                    failing = true;
                    readiness.store_failing(true);
                }
                metrics::counter!("herald_store_errors_total", "operation" => operation)
                    .increment(1);
                tracing::warn!(source, operation, error = %e, retry_in_ms = wait.as_millis() as u64,
                    "the store failed; intake paused, nothing acknowledged");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.cancelled() => {
                        recovered(failing);
                        return Err(e);
                    }
                }
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// A rendered notification as the store queues it.
pub fn queued(n: crate::plan::Notification) -> NewNotification {
    NewNotification {
        key: n.key.to_string(),
        event_id: n.event_id,
        rule: n.rule,
        channel: n.channel,
        recipient: n.recipient,
        subject: n.subject,
        message: n.message,
        action: n.action,
        summary: n.summary,
        controls: n.controls,
    }
}

/// Counts what a committed batch brought in (after the commit: only what is durable counts).
fn count(source: &str, intake: &Intake) {
    let source = source.to_owned();
    let committed = &intake.committed;
    metrics::counter!("herald_records_total", "source" => source.clone()).increment(intake.records);
    metrics::counter!("herald_records_skipped_total", "source" => source.clone())
        .increment(intake.skipped);
    metrics::counter!("herald_dead_letters_total", "source" => source.clone())
        .increment(committed.dead_letters);
    metrics::counter!("herald_notifications_duplicate_total", "source" => source.clone())
        .increment(committed.duplicates);
    metrics::counter!("herald_notifications_suppressed_total", "source" => source)
        .increment(committed.suppressed);
    for ((rule, channel), n) in &committed.queued_by {
        metrics::counter!("herald_notifications_queued_total", "rule" => rule.clone(), "channel" => channel.clone()).increment(*n);
    }
    // Storm control (ARCHITECTURE.md §13): held for a group or digest, silenced, a repeat.
    for ((rule, why), n) in &committed.kept_by {
        metrics::counter!("herald_notifications_kept_total", "rule" => rule.clone(), "why" => why.clone()).increment(*n);
    }
}

/// How far behind the identity provider a source is, as of its last commit: the newest record's
/// own time, and how long before the commit that was. A replay of old logs shows as lag too.
fn lag(source: &str, newest_ms: i64) {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    metrics::gauge!("herald_source_newest_record_timestamp_seconds", "source" => source.to_owned())
        .set(newest_ms as f64 / 1000.0);
    metrics::gauge!("herald_source_lag_seconds", "source" => source.to_owned())
        .set((now_ms - newest_ms).max(0) as f64 / 1000.0);
}

/// The store's view of an outcome. A notification that failed to render is kept as a dead
/// letter holding its record, so it can be replayed once the template is fixed.
fn to_batch(source: &str, checkpoint: Option<(String, String)>, out: &mut Outcome) -> Batch {
    let mut dead_letters: Vec<NewDeadLetter> = out
        .dead_letters
        .drain(..)
        .map(|d| NewDeadLetter {
            input: d.input,
            position: d.position.to_string(),
            reason: d.reason,
            raw: d.raw,
        })
        .collect();
    dead_letters.extend(out.failures.drain(..).map(|f| {
        tracing::warn!(source, error = %f, "not rendered; the record is kept as a dead letter");
        NewDeadLetter {
            input: source.to_owned(),
            position: format!("event {}", f.event_id),
            reason: format!("render failed: {f}"),
            raw: f.raw.clone(),
        }
    }));
    Batch {
        source: source.to_owned(),
        events: std::mem::take(&mut out.events),
        notifications: out.notifications.drain(..).map(queued).collect(),
        dead_letters,
        checkpoint,
    }
}

//! Group commit for a source catching up: while one commit is in flight, the source goes on
//! reading and planning; what it reads meanwhile is joined into the next commit (one
//! transaction, one fsync, the last piece's checkpoint). Commits stay in order, one at a
//! time, so a checkpoint never passes a piece that is not durable (ARCHITECTURE.md §2.1).

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Ingest, Intake, Prepared};
use crate::store::{Store, StoreError};

/// The most pieces one commit joins: bounds what waits in memory while the store is slow or
/// failing (the source stops reading until the commit before returns).
pub const MAX_GROUP: usize = 16;

/// One source's commits, overlapped with its reading.
pub struct GroupCommit<S: Store> {
    ingest: Ingest<S>,
    stop: CancellationToken,
    /// What each finished commit brought in, for the source's log.
    label: String,
    in_flight: Option<JoinHandle<Result<Intake, StoreError>>>,
    waiting: Option<Prepared>,
}

impl<S: Store> GroupCommit<S> {
    /// Commits through `ingest`, patiently until `stop` (see [`Ingest::commit_patiently`]).
    pub fn new(ingest: Ingest<S>, stop: CancellationToken, label: impl Into<String>) -> Self {
        GroupCommit {
            ingest,
            stop,
            label: label.into(),
            in_flight: None,
            waiting: None,
        }
    }

    /// Adds pieces to commit. Returns at once while the commit before is still in flight,
    /// unless [`MAX_GROUP`] pieces are already waiting; an error is an earlier commit's.
    pub async fn push(&mut self, prepared: Prepared) -> Result<(), StoreError> {
        match &mut self.waiting {
            Some(waiting) => waiting.join(prepared),
            None => self.waiting = Some(prepared),
        }
        let full = self
            .waiting
            .as_ref()
            .is_some_and(|w| w.pieces() >= MAX_GROUP);
        let idle = self.in_flight.as_ref().is_none_or(JoinHandle::is_finished);
        if idle || full {
            self.launch().await?;
        }
        Ok(())
    }

    /// Commits everything pushed and waits until it is durable. After a failed commit,
    /// nothing pushed later is committed.
    pub async fn flush(&mut self) -> Result<(), StoreError> {
        self.launch().await?;
        self.finish().await
    }

    /// Waits for the commit in flight, then starts one of what waits.
    async fn launch(&mut self) -> Result<(), StoreError> {
        self.finish().await?;
        if let Some(prepared) = self.waiting.take() {
            let ingest = self.ingest.clone();
            let stop = self.stop.clone();
            self.in_flight = Some(tokio::spawn(async move {
                ingest
                    .commit_prepared(prepared, Some(&stop))
                    .await
                    .map(|(intake, _)| intake)
            }));
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), StoreError> {
        let Some(handle) = self.in_flight.take() else {
            return Ok(());
        };
        let done = handle
            .await
            .map_err(|e| StoreError::new("a commit task ended", e))
            .and_then(|committed| committed);
        let intake = match done {
            Ok(intake) => intake,
            Err(e) => {
                // What waits comes after the piece that failed: committed, its checkpoint
                // would pass that piece, which would then never be read again. It is read
                // again from the last durable checkpoint instead.
                self.waiting = None;
                return Err(e);
            }
        };
        tracing::info!(source = %self.label, records = intake.records, queued = intake.committed.queued, dead_letters = intake.committed.dead_letters, "committed");
        Ok(())
    }
}

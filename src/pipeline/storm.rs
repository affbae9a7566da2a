//! Closing storm windows in the background (ARCHITECTURE.md §13): every second, each window
//! whose end has passed — a group's wait, a throttle's window that held notices, a bulk count —
//! is closed with its notice (the group's one notice, the digest, the SOC's bulk change), and
//! each silence that has ended gets its summary. Every instance runs this; the store lets one
//! close each window and silence, once, in the transaction that queues its notice.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Pipeline;
use super::ingest::queued;
use crate::store::{SqlStore, StoreError};

/// How often the windows are looked at.
const EVERY: Duration = Duration::from_secs(1);
/// Windows closed per pass at most (the rest at the next).
const PER_PASS: i64 = 100;

/// Closes windows and ended silences until `stop`; a failing store is tried again at the next
/// pass.
pub async fn closer(
    store: SqlStore,
    pipeline: Arc<Pipeline>,
    wake: Arc<tokio::sync::Notify>,
    stop: CancellationToken,
) {
    loop {
        match close_due(&store, &pipeline).await {
            Ok(0) => {}
            Ok(_) => wake.notify_one(),
            Err(e) => tracing::warn!(error = %e, "closing storm windows failed; trying again"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// One pass: every due window and ended silence; how many were closed.
pub async fn close_due(store: &SqlStore, pipeline: &Pipeline) -> Result<usize, StoreError> {
    let planner = pipeline.planner();
    let mut closed = 0;
    for window in store.due_windows(PER_PASS).await? {
        let done = store
            .close_window(&window, |members| {
                planner
                    .window_notices(&window, members)
                    .map(|notices| notices.into_iter().map(queued).collect())
            })
            .await?;
        if done {
            closed += 1;
            metrics::counter!("herald_storm_windows_closed_total", "kind" => window.kind.clone())
                .increment(1);
        }
    }
    for silence in store.ended_silences().await? {
        let done = store
            .close_silence(&silence, |held| match planner.silence_ended(&silence, held) {
                Ok(notices) => notices.into_iter().map(queued).collect(),
                Err(e) => {
                    tracing::error!(silence = silence.id, error = %e, "a silence's summary could not be made");
                    Vec::new()
                }
            })
            .await?;
        if done {
            closed += 1;
        }
    }
    Ok(closed)
}

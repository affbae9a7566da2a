//! Retention in the background (ARCHITECTURE.md §7): every instance prunes what
//! `[store.retention]` says may go, in small batches with pauses between them, so that pruning a
//! year's backlog never holds the store for long. Instances sharing PostgreSQL may prune at the
//! same time; a row goes once, whoever removes it.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::{Pruned, Retention, Store, StoreError};

/// Rows per table per transaction.
const BATCH: i64 = 500;
/// The pause between batches, so intake and dispatch keep the store.
const BETWEEN_BATCHES: Duration = Duration::from_millis(50);
/// How often a running instance looks for rows to prune.
const EVERY: Duration = Duration::from_secs(3600);
/// The first pass, after start.
const FIRST: Duration = Duration::from_secs(60);

/// Prunes in batches until nothing is left to prune.
pub async fn prune_all<S: Store>(store: &S, retention: &Retention) -> Result<Pruned, StoreError> {
    let mut total = Pruned::default();
    loop {
        let pass = store.prune(retention, BATCH, false).await?;
        total.sent += pass.sent;
        total.failed += pass.failed;
        total.attempts += pass.attempts;
        total.dead_letters += pass.dead_letters;
        total.history += pass.history;
        total.events_seen += pass.events_seen;
        total.actions_told += pass.actions_told;
        total.event_accounts += pass.event_accounts;
        total.reports += pass.reports;
        total.kept += pass.kept;
        total.storm += pass.storm;
        if pass.total() == 0 {
            return Ok(total);
        }
        tokio::time::sleep(BETWEEN_BATCHES).await;
    }
}

/// Prunes a minute after start, then every hour (with jitter, so instances started together
/// do not prune together), until `stop`. A store that fails is tried again at the next pass.
pub async fn pruner<S: Store>(store: S, retention: Retention, stop: CancellationToken) {
    let mut wait = FIRST;
    loop {
        let jitter = Duration::from_millis(fastrand::u64(..=wait.as_millis() as u64 / 10));
        tokio::select! {
            _ = tokio::time::sleep(wait + jitter) => {}
            _ = stop.cancelled() => return,
        }
        wait = EVERY;
        let pruned = tokio::select! {
            pruned = prune_all(&store, &retention) => pruned,
            _ = stop.cancelled() => return,
        };
        match pruned {
            Ok(p) if p.total() > 0 => tracing::info!(
                sent = p.sent,
                failed = p.failed,
                attempts = p.attempts,
                dead_letters = p.dead_letters,
                history = p.history,
                events_seen = p.events_seen,
                "pruned rows past their retention"
            ),
            Ok(_) => {}
            Err(e) => {
                metrics::counter!("herald_store_errors_total", "operation" => "prune").increment(1);
                tracing::warn!(error = %e, "pruning failed; tried again at the next pass");
            }
        }
    }
}

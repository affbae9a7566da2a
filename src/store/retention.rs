//! How long the store keeps what it holds (`[store.retention]`, ARCHITECTURE.md §7), the
//! queries that prune it in small batches, and what a pass removed. The background pass is in
//! `pipeline/prune.rs`; `herald prune` runs one by hand.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::sql::err;
use super::{Millis, SqlStore, State, StoreError};
use crate::values::duration;

/// `[store.retention]`: the age past which rows go, by the store's clock.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Sent notifications (with their attempts), counted from when they were sent.
    #[serde(default = "days_90", deserialize_with = "duration")]
    pub sent: Duration,
    /// Failed notifications (with their attempts), counted from when they were queued.
    #[serde(default = "days_180", deserialize_with = "duration")]
    pub failed: Duration,
    /// Dead letters, counted from when they were kept.
    #[serde(default = "days_180", deserialize_with = "duration")]
    pub dead_letters: Duration,
    /// Which rules matched each event.
    #[serde(default = "days_90", deserialize_with = "duration")]
    pub history: Duration,
    /// The record of selected events. At least as long as a source may deliver an event again
    /// (Kafka's retention, a Graph source's `overlap`); the outbox, which is what keeps a
    /// redelivered event from being told twice, must be kept at least this long (checked at
    /// load).
    #[serde(default = "days_14", deserialize_with = "duration")]
    pub events_seen: Duration,
    /// Owners' answers on report pages (`reports`), counted from when they answered. At least
    /// as long as a report link lives (checked at load): a link whose report is gone could
    /// decide again.
    #[serde(default = "days_365", deserialize_with = "duration")]
    pub reports: Duration,
}

fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

fn days_14() -> Duration {
    days(14)
}

fn days_90() -> Duration {
    days(90)
}

fn days_180() -> Duration {
    days(180)
}

fn days_365() -> Duration {
    days(365)
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            sent: days_90(),
            failed: days_180(),
            dead_letters: days_180(),
            history: days_90(),
            events_seen: days_14(),
            reports: days_365(),
        }
    }
}

impl Retention {
    /// What is wrong with these ages, as (key, message): an outbox kept for less time than
    /// events may be redelivered would let a redelivered event be told again.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        for (key, age) in [("sent", self.sent), ("failed", self.failed)] {
            if age < self.events_seen {
                return Some((
                    key,
                    format!(
                        "is shorter than events_seen ({:?} < {:?}): a notification must be kept as long as its event may be delivered again, or a redelivery tells it twice",
                        age, self.events_seen
                    ),
                ));
            }
        }
        None
    }
}

/// What a pruning pass removed (or, in a dry run, would remove), per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    pub sent: u64,
    pub failed: u64,
    pub attempts: u64,
    pub dead_letters: u64,
    pub history: u64,
    pub events_seen: u64,
    /// Claims of `once_per_action` notices (`actions_told`), kept as long as events are.
    pub actions_told: u64,
    /// The accounts selected events are found by, kept as long as the events.
    pub event_accounts: u64,
    pub reports: u64,
    /// Notices recorded and never sent (merged into a group's or digest's notice, or
    /// suppressed), kept as long as sent ones; and the closed storm windows, the bulk counts
    /// and the ended repeats, kept as long as events (ARCHITECTURE.md §13).
    pub kept: u64,
    pub storm: u64,
}

impl Pruned {
    pub fn total(&self) -> u64 {
        self.sent
            + self.failed
            + self.attempts
            + self.dead_letters
            + self.history
            + self.events_seen
            + self.actions_told
            + self.event_accounts
            + self.reports
            + self.kept
            + self.storm
    }
}

impl SqlStore {
    pub(super) async fn prune_rows(
        &self,
        retention: &Retention,
        batch: i64,
        dry_run: bool,
    ) -> Result<Pruned, StoreError> {
        let now = self.now(&self.pool).await?;
        let before = |age: std::time::Duration| now.saturating_sub(age.as_millis() as Millis);
        let (sent, failed) = (before(retention.sent), before(retention.failed));
        let mut pruned = Pruned::default();
        // The notifications of each kind, with their attempts.
        for (kind, cutoff) in [
            (State::Sent, sent),
            (State::Failed, failed),
            (State::Merged, sent),
        ] {
            let (n, attempts) = self
                .prune_notifications(kind, cutoff, batch, dry_run)
                .await?;
            match kind {
                State::Sent => pruned.sent = n,
                State::Merged => pruned.kept = n,
                _ => pruned.failed = n,
            }
            pruned.attempts += attempts;
        }
        let events = before(retention.events_seen);
        pruned.storm = self
            .prune_table("storm_windows", "id", "closed_at", events, batch, dry_run)
            .await?
            + self
                .prune_table("repeats", "key", "until", now, batch, dry_run)
                .await?;
        if !dry_run {
            // A bulk window's accounts go with it.
            sqlx::query(
                "DELETE FROM bulk_accounts WHERE window_id IN (SELECT b.window_id FROM bulk_accounts b
                 WHERE NOT EXISTS (SELECT 1 FROM storm_windows w WHERE w.id = b.window_id) LIMIT $1)",
            )
            .bind(batch)
            .execute(&self.pool)
            .await
            .map_err(super::sql::err("pruning bulk counts"))?;
        }
        pruned.dead_letters = self
            .prune_table(
                "dead_letters",
                "id",
                "created_at",
                before(retention.dead_letters),
                batch,
                dry_run,
            )
            .await?;
        pruned.history = self
            .prune_table(
                "history",
                "id",
                "created_at",
                before(retention.history),
                batch,
                dry_run,
            )
            .await?;
        pruned.events_seen = self
            .prune_table(
                "events_seen",
                "tenant, event_id",
                "first_seen",
                before(retention.events_seen),
                batch,
                dry_run,
            )
            .await?;
        // An action's records arrive together; its claim is needed no longer than a
        // redelivery of them may come.
        pruned.actions_told = self
            .prune_table(
                "actions_told",
                "action, channel, recipient",
                "created_at",
                before(retention.events_seen),
                batch,
                dry_run,
            )
            .await?;
        pruned.event_accounts = self
            .prune_table(
                "event_accounts",
                "account, tenant, event_id",
                "first_seen",
                before(retention.events_seen),
                batch,
                dry_run,
            )
            .await?;
        pruned.reports = self
            .prune_table(
                "reports",
                "key",
                "created_at",
                before(retention.reports),
                batch,
                dry_run,
            )
            .await?;
        Ok(pruned)
    }

    /// Removes (or counts) up to `batch` notifications of `kind` older than `cutoff`, with
    /// their attempts, in one transaction. Returns (notifications, attempts).
    async fn prune_notifications(
        &self,
        kind: State,
        cutoff: Millis,
        batch: i64,
        dry_run: bool,
    ) -> Result<(u64, u64), StoreError> {
        let aged = aged(kind);
        let failed = err("pruning notifications");
        if dry_run {
            let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM outbox WHERE {aged}"
            )))
            .bind(cutoff)
            .fetch_one(&self.pool)
            .await
            .map_err(&failed)?;
            let attempts: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM attempts WHERE key IN (SELECT key FROM outbox WHERE {aged})"
            )))
            .bind(cutoff)
            .fetch_one(&self.pool)
            .await
            .map_err(&failed)?;
            return Ok((rows as u64, attempts as u64));
        }
        let _writing = self.writing().await;
        let mut tx = self.pool.begin().await.map_err(&failed)?;
        let keys: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "DELETE FROM outbox WHERE key IN (SELECT key FROM outbox WHERE {aged} LIMIT $2)
             RETURNING key"
        )))
        .bind(cutoff)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await
        .map_err(&failed)?;
        if keys.is_empty() {
            // Ended, not dropped: a SQLite connection released inside a transaction is closed.
            tx.rollback().await.map_err(&failed)?;
            return Ok((0, 0));
        }
        // Only placeholders are spliced in; every key is bound.
        let list: Vec<String> = (1..=keys.len()).map(|i| format!("${i}")).collect();
        let mut attempts = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM attempts WHERE key IN ({})",
            list.join(", ")
        )));
        for key in &keys {
            attempts = attempts.bind(key);
        }
        let attempts = attempts
            .execute(&mut *tx)
            .await
            .map_err(&failed)?
            .rows_affected();
        tx.commit().await.map_err(&failed)?;
        let rows = keys.len() as u64;
        Ok((rows, attempts))
    }

    /// Removes (or counts) up to `batch` rows of `table` whose `column` is before `cutoff`;
    /// `id` names the row (its key's columns).
    async fn prune_table(
        &self,
        table: &'static str,
        id: &'static str,
        column: &'static str,
        cutoff: Millis,
        batch: i64,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        let failed = err("pruning old rows");
        if dry_run {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM {table} WHERE {column} < $1"
            )))
            .bind(cutoff)
            .fetch_one(&self.pool)
            .await
            .map_err(&failed)?;
            return Ok(n as u64);
        }
        let _writing = self.writing().await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE ({id}) IN (SELECT {id} FROM {table} WHERE {column} < $1 LIMIT $2)"
        )))
        .bind(cutoff)
        .bind(batch)
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected())
        .map_err(failed)
    }
}

/// How a notification of each kind ages: sent rows from when they were sent, failed ones from
/// when they were queued.
fn aged(kind: State) -> &'static str {
    match kind {
        State::Sent => "state = 'sent' AND sent_at < $1",
        // Merged and suppressed: never sent, aged from when they were recorded.
        State::Merged => "state IN ('merged', 'suppressed') AND created_at < $1",
        _ => "state = 'failed' AND created_at < $1",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outbox_kept_shorter_than_the_redelivery_window_is_refused() {
        assert_eq!(Retention::default().problem(), None);
        let short = Retention {
            sent: days(7),
            ..Retention::default()
        };
        let (key, message) = short.problem().unwrap();
        assert_eq!(key, "sent");
        assert!(message.contains("events_seen"), "{message}");
    }
}

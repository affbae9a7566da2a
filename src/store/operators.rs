//! What operators did (table `operator_actions`, ARCHITECTURE.md §7): each action through the
//! dashboard or its API is written in the transaction that does it, so there is no action
//! without its record and no record of an action that did not happen.

use serde::Serialize;
use sqlx::Row;

use super::sql::{SqlStore, err, text};
use super::{Millis, StoreError};

/// Who acted: the name and role an operator signed in with.
#[derive(Debug, Clone)]
pub struct Operator {
    pub name: String,
    pub role: String,
}

/// One recorded action.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorAction {
    pub id: i64,
    pub at: Millis,
    pub actor: String,
    pub role: String,
    /// `retry`, `retry_all`, `replay`, `resolve`.
    pub action: String,
    /// What it was done to (a notification key, `failed` for every failed row, `dead letter
    /// N`).
    pub target: String,
    /// What came of it ("1 notification pending again").
    pub outcome: String,
}

/// Records `by`'s `action` on `target` in the transaction `tx` that does it.
pub(super) async fn record(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    now: Millis,
    by: &Operator,
    action: &str,
    target: &str,
    outcome: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO operator_actions (at, actor, role, action, target, outcome)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(now)
    .bind(text(&by.name))
    .bind(text(&by.role))
    .bind(action)
    .bind(text(target))
    .bind(text(outcome))
    .execute(&mut **tx)
    .await
    .map_err(err("recording an operator's action"))?;
    Ok(())
}

impl SqlStore {
    /// Makes failed rows pending again (one key, or every failed notice) and records who did
    /// it, in one transaction. "Every" leaves out the response actions (`graph_action`): an
    /// account is disabled again only by name, one row at a time.
    pub(super) async fn retry_by_row(
        &self,
        key: Option<&str>,
        by: &Operator,
    ) -> Result<u64, StoreError> {
        let _writing = self.writing().await;
        let mut tx = self.pool.begin().await.map_err(err("beginning a retry"))?;
        let now = self.now(&mut *tx).await?;
        let n = sqlx::query(
            "UPDATE outbox SET state = 'pending', next_attempt_at = $1, attempts = 0, created_at = $1
             WHERE state = 'failed' AND ($2 = '' OR key = $2)
               AND ($2 <> '' OR channel <> 'graph_action')",
        )
        .bind(now)
        .bind(key.unwrap_or(""))
        .execute(&mut *tx)
        .await
        .map(|r| r.rows_affected())
        .map_err(err("retrying notifications"))?;
        let (action, target) = match key {
            Some(key) => ("retry", key),
            None => ("retry_all", "failed"),
        };
        let outcome = match n {
            1 => "1 notification pending again".to_owned(),
            n => format!("{n} notifications pending again"),
        };
        record(&mut tx, now, by, action, target, &outcome).await?;
        if n > 0 {
            self.notify_queued(&mut tx).await?;
        }
        tx.commit().await.map_err(err("committing a retry"))?;
        Ok(n)
    }

    pub(super) async fn operator_action_rows(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<OperatorAction>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM operator_actions WHERE id < $1 ORDER BY id DESC LIMIT $2")
                .bind(before.unwrap_or(i64::MAX))
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(err("listing operators' actions"))?;
        Ok(rows
            .iter()
            .map(|row| OperatorAction {
                id: row.get("id"),
                at: row.get("at"),
                actor: row.get("actor"),
                role: row.get("role"),
                action: row.get("action"),
                target: row.get("target"),
                outcome: row.get("outcome"),
            })
            .collect())
    }
}

//! Reports: what the owner of an account answered on a notice's report page (table
//! `reports`, ARCHITECTURE.md §7). One row per notification key: a second answer finds the
//! first, except that "I did not do this" replaces an earlier "This was me".

use serde::Serialize;
use sqlx::Row;

use super::sql::{SqlStore, err, text};
use super::{Batch, Millis, NewNotification, StoreError};

/// The notice a report link names, as the outbox holds it.
#[derive(Debug, Clone, Serialize)]
pub struct ReportedNotice {
    pub key: String,
    pub event_id: String,
    /// From the event's `events_seen` row; empty when it has been pruned.
    pub tenant: String,
    pub rule: String,
    pub recipient: String,
    pub subject: String,
    /// When the event happened (Unix ms), when still known.
    pub event_time: Option<Millis>,
    pub activity: Option<String>,
    /// What the notice said (JSON, `crate::report::NoticeSummary`), when it had a report link.
    pub summary: Option<String>,
}

/// The owner's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// "I did not do this".
    NotMe,
    /// "This was me".
    Me,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::NotMe => "not_me",
            Verdict::Me => "me",
        }
    }

    pub fn parse(text: &str) -> Option<Verdict> {
        match text {
            "not_me" => Some(Verdict::NotMe),
            "me" => Some(Verdict::Me),
            _ => None,
        }
    }
}

/// A recorded report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub key: String,
    pub event_id: String,
    pub tenant: String,
    pub account: String,
    pub subject: String,
    pub verdict: String,
    pub created_at: Millis,
    pub client_ip: String,
    pub user_agent: String,
    /// The response actions this report set off, each with its row's outcome.
    pub actions: Vec<ActionOutcome>,
}

/// A response action a report set off: an outbox row of the `graph_action` channel.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ReportAction {
    pub action: String,
    /// The row's notification key.
    pub key: String,
}

/// A response action and where it stands: its outbox row's state (`pending`, `sent`,
/// `failed`; `pruned` once retention took the row), attempts and last error (Graph's).
#[derive(Debug, Clone, Serialize)]
pub struct ActionOutcome {
    pub action: String,
    pub key: String,
    pub state: String,
    pub attempts: i64,
    pub error: Option<String>,
}

/// A report to record.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub notice: ReportedNotice,
    pub verdict: Verdict,
    pub client_ip: String,
    pub user_agent: String,
    /// The response actions queued with it (their rows are in the same batch).
    pub actions: Vec<ReportAction>,
}

fn report(row: &sqlx::any::AnyRow) -> Report {
    Report {
        key: row.get("key"),
        event_id: row.get("event_id"),
        tenant: row.get("tenant"),
        account: row.get("account"),
        subject: row.get("subject"),
        verdict: row.get("verdict"),
        created_at: row.get("created_at"),
        client_ip: row.get("client_ip"),
        user_agent: row.get("user_agent"),
        actions: Vec::new(),
    }
}

/// The actions column: a JSON list of [`ReportAction`]s (empty text before any).
fn actions_of(row: &sqlx::any::AnyRow) -> Vec<ReportAction> {
    serde_json::from_str(&row.get::<String, _>("actions")).unwrap_or_default()
}

impl SqlStore {
    pub(super) async fn reported_notice_row(
        &self,
        key: &str,
    ) -> Result<Option<ReportedNotice>, StoreError> {
        let row = sqlx::query(
            "SELECT o.key, o.event_id, o.rule, o.recipient, o.subject, o.summary,
                    e.tenant, e.event_time, e.activity
             FROM outbox o LEFT JOIN events_seen e ON e.event_id = o.event_id
             WHERE o.key = $1 LIMIT 1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(err("reading a reported notice"))?;
        Ok(row.map(|row| ReportedNotice {
            key: row.get("key"),
            event_id: row.get("event_id"),
            tenant: row.get::<Option<String>, _>("tenant").unwrap_or_default(),
            rule: row.get("rule"),
            recipient: row.get("recipient"),
            subject: row.get("subject"),
            event_time: row.get("event_time"),
            activity: row.get("activity"),
            summary: row.get("summary"),
        }))
    }

    pub(super) async fn record_report_row(
        &self,
        new: &NewReport,
        notices: &[NewNotification],
    ) -> Result<(Report, bool), StoreError> {
        let _writing = self.writing().await;
        let mut tx = self.pool.begin().await.map_err(err("beginning a report"))?;
        let now = self.now(&mut *tx).await?;
        let inserted = sqlx::query(
            // A link decides once — except that "I did not do this" overrides an earlier "This
            // was me": whoever clicked first (someone in the owner's mailbox, a scanner) must
            // not be able to silence the owner. Never the other way round.
            "INSERT INTO reports (key, event_id, tenant, account, subject, verdict, created_at, client_ip, user_agent, actions)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (key) DO UPDATE SET verdict = excluded.verdict, created_at = excluded.created_at,
                 client_ip = excluded.client_ip, user_agent = excluded.user_agent, actions = excluded.actions
             WHERE reports.verdict = 'me' AND excluded.verdict = 'not_me'",
        )
        .bind(&new.notice.key)
        .bind(text(&new.notice.event_id))
        .bind(text(&new.notice.tenant))
        .bind(text(&new.notice.recipient))
        .bind(text(&new.notice.subject))
        .bind(new.verdict.as_str())
        .bind(now)
        .bind(text(&new.client_ip))
        .bind(text(&new.user_agent))
        .bind(serde_json::to_string(&new.actions).unwrap_or_default())
        .execute(&mut *tx)
        .await
        .map_err(err("recording a report"))?;
        let new_row = inserted.rows_affected() == 1;
        if new_row && !notices.is_empty() {
            let batch = Batch {
                source: "report".to_owned(),
                notifications: notices.to_vec(),
                ..Batch::default()
            };
            let committed = super::batch::insert_batch(&mut tx, &batch, now).await?;
            if committed.queued > 0 {
                self.notify_queued(&mut tx).await?;
            }
        }
        tx.commit().await.map_err(err("committing a report"))?;
        let recorded = self
            .report_row(&new.notice.key)
            .await?
            .ok_or_else(|| StoreError::new("recording a report", "the row is gone"))?;
        Ok((recorded, new_row))
    }

    pub(super) async fn report_row(&self, key: &str) -> Result<Option<Report>, StoreError> {
        let row = sqlx::query("SELECT * FROM reports WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(err("reading a report"))?;
        match row {
            Some(row) => Ok(Some(self.with_outcomes(&row).await?)),
            None => Ok(None),
        }
    }

    /// `row` as a report, each of its actions with its outbox row's outcome.
    async fn with_outcomes(&self, row: &sqlx::any::AnyRow) -> Result<Report, StoreError> {
        let mut recorded = report(row);
        for action in actions_of(row) {
            let outcome = sqlx::query(
                "SELECT state, attempts, last_error FROM outbox WHERE key = $1 LIMIT 1",
            )
            .bind(&action.key)
            .fetch_optional(&self.pool)
            .await
            .map_err(err("reading a report's actions"))?;
            recorded.actions.push(match outcome {
                Some(o) => ActionOutcome {
                    state: o.get("state"),
                    attempts: o.get("attempts"),
                    error: o.get("last_error"),
                    action: action.action,
                    key: action.key,
                },
                None => ActionOutcome {
                    state: "pruned".to_owned(),
                    attempts: 0,
                    error: None,
                    action: action.action,
                    key: action.key,
                },
            });
        }
        Ok(recorded)
    }

    pub(super) async fn report_rows_of_event(
        &self,
        event_id: &str,
    ) -> Result<Vec<Report>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM reports WHERE event_id = $1 ORDER BY created_at DESC, key LIMIT 100",
        )
        .bind(event_id)
        .fetch_all(&self.pool)
        .await
        .map_err(err("listing an event's reports"))?;
        let mut reports = Vec::with_capacity(rows.len());
        for row in &rows {
            reports.push(self.with_outcomes(row).await?);
        }
        Ok(reports)
    }

    pub(super) async fn report_rows(
        &self,
        verdict: Option<Verdict>,
        since: Option<Millis>,
        limit: i64,
    ) -> Result<Vec<Report>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM reports WHERE ($1 = '' OR verdict = $1) AND created_at >= $2
             ORDER BY created_at DESC, key LIMIT $3",
        )
        .bind(verdict.map_or("", Verdict::as_str))
        .bind(since.unwrap_or(0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(err("listing reports"))?;
        let mut reports = Vec::with_capacity(rows.len());
        for row in &rows {
            reports.push(self.with_outcomes(row).await?);
        }
        Ok(reports)
    }
}

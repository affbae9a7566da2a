//! The selected events as the dashboard finds them (tables `events_seen` and
//! `event_accounts`, ARCHITECTURE.md §7): by an account they name, activity, tenant, rule and
//! time, newest first; one event with its record as it came.

use serde::Serialize;
use sqlx::Row;

use super::sql::{SqlStore, err};
use super::{Millis, StoreError};

/// Which events to list, newest first. Empty strings are no filter.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// A UPN, display name or object id, as named in the event (any case).
    pub account: String,
    pub activity: String,
    pub tenant: String,
    /// A rule that selected it.
    pub rule: String,
    /// The event happened at or after this time, and before `until`.
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    /// Only events after this one in the listing's order (newest first: time, then id and
    /// tenant, each descending) — `(event_time, event_id, tenant)` of the last row of the
    /// page before.
    pub after: Option<(Millis, String, String)>,
    pub limit: i64,
}

/// One selected event.
#[derive(Debug, Clone, Serialize)]
pub struct EventEntry {
    pub tenant: String,
    pub event_id: String,
    pub activity: String,
    pub event_time: Millis,
    pub source: String,
    pub first_seen: Millis,
}

fn entry(row: &sqlx::any::AnyRow) -> EventEntry {
    EventEntry {
        tenant: row.get("tenant"),
        event_id: row.get("event_id"),
        activity: row.get("activity"),
        event_time: row.get("event_time"),
        source: row.get("source"),
        first_seen: row.get("first_seen"),
    }
}

impl SqlStore {
    pub(super) async fn event_rows(&self, q: &EventQuery) -> Result<Vec<EventEntry>, StoreError> {
        // With an account, the search starts from its index (account, time, id, tenant); else
        // from events by (time, id, tenant). Either is read backwards, newest first, and a
        // page after a cursor starts where the row-value comparison says: both engines use the
        // index for it. Only the fixed text below is spliced; every value is bound.
        let (from, order, keys) = if q.account.trim().is_empty() {
            (
                "events_seen e",
                "e.event_time DESC, e.event_id DESC, e.tenant DESC",
                "(e.event_time, e.event_id, e.tenant)",
            )
        } else {
            (
                "event_accounts a JOIN events_seen e
                   ON e.tenant = a.tenant AND e.event_id = a.event_id",
                "a.event_time DESC, a.event_id DESC, a.tenant DESC",
                "(a.event_time, a.event_id, a.tenant)",
            )
        };
        let mut sql = format!(
            "SELECT e.tenant, e.event_id, e.activity, e.event_time, e.source, e.first_seen
             FROM {from}
             WHERE ($1 = '' OR lower(e.activity) = lower($1))
               AND ($2 = '' OR e.tenant = $2)
               AND e.event_time >= $3 AND e.event_time < $4
               AND ($5 = '' OR EXISTS (SELECT 1 FROM history h
                   WHERE h.tenant = e.tenant AND h.event_id = e.event_id AND h.rule = $5))"
        );
        let mut next = 7;
        if !q.account.trim().is_empty() {
            sql.push_str(&format!(" AND a.account = ${next}"));
            next += 1;
        }
        if q.after.is_some() {
            sql.push_str(&format!(
                " AND {keys} < (${}, ${}, ${})",
                next,
                next + 1,
                next + 2
            ));
        }
        sql.push_str(&format!(" ORDER BY {order} LIMIT $6"));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(q.activity.trim())
            .bind(q.tenant.trim())
            .bind(q.since.unwrap_or(i64::MIN))
            .bind(q.until.unwrap_or(i64::MAX))
            .bind(q.rule.trim())
            .bind(q.limit);
        if !q.account.trim().is_empty() {
            query = query.bind(q.account.trim().to_lowercase());
        }
        if let Some((time, id, tenant)) = &q.after {
            query = query.bind(*time).bind(id.clone()).bind(tenant.clone());
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(err("listing events"))?;
        Ok(rows.iter().map(entry).collect())
    }

    pub(super) async fn event_row(
        &self,
        tenant: Option<&str>,
        event_id: &str,
    ) -> Result<Option<(EventEntry, Vec<u8>)>, StoreError> {
        let row = sqlx::query(
            "SELECT tenant, event_id, activity, event_time, source, first_seen, raw
             FROM events_seen WHERE ($1 = 0 OR tenant = $2) AND event_id = $3
             ORDER BY tenant LIMIT 1",
        )
        .bind(i64::from(tenant.is_some()))
        .bind(tenant.unwrap_or(""))
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(err("reading an event"))?;
        Ok(row.map(|row| {
            let raw: Option<Vec<u8>> = row.get("raw");
            (entry(&row), raw.unwrap_or_default())
        }))
    }
}

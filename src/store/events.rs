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
    /// Only events after this one in the listing's order — `(event_time, event_id, tenant)`
    /// of the last row of the page before.
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
        // With an account, the search starts from its index (account, time): the rest of the
        // filters then look at that account's events only.
        let filters = "($1 = '' OR lower(e.activity) = lower($1))
             AND ($2 = '' OR e.tenant = $2)
             AND e.event_time >= $3 AND e.event_time < $4
             AND ($5 = '' OR EXISTS (SELECT 1 FROM history h
                 WHERE h.tenant = e.tenant AND h.event_id = e.event_id AND h.rule = $5))
             AND (e.event_time < $7 OR (e.event_time = $7
                 AND (e.event_id > $8 OR (e.event_id = $8 AND e.tenant > $9))))";
        let sql = if q.account.trim().is_empty() {
            format!(
                "SELECT e.tenant, e.event_id, e.activity, e.event_time, e.source, e.first_seen
                 FROM events_seen e WHERE {filters}
                 ORDER BY e.event_time DESC, e.event_id, e.tenant LIMIT $6"
            )
        } else {
            format!(
                "SELECT e.tenant, e.event_id, e.activity, e.event_time, e.source, e.first_seen
                 FROM event_accounts a JOIN events_seen e
                   ON e.tenant = a.tenant AND e.event_id = a.event_id
                 WHERE a.account = $10 AND {filters}
                 ORDER BY a.event_time DESC, e.event_id, e.tenant LIMIT $6"
            )
        };
        // Only the fixed text above is spliced; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(q.activity.trim())
            .bind(q.tenant.trim())
            .bind(q.since.unwrap_or(i64::MIN))
            .bind(q.until.unwrap_or(i64::MAX))
            .bind(q.rule.trim())
            .bind(q.limit);
        let (time, id, tenant) = match &q.after {
            Some((time, id, tenant)) => (*time, id.as_str(), tenant.as_str()),
            None => (i64::MAX, "", ""),
        };
        query = query.bind(time).bind(id).bind(tenant);
        if !q.account.trim().is_empty() {
            query = query.bind(q.account.trim().to_lowercase());
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

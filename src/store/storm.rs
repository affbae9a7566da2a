//! Storm control in the store (ARCHITECTURE.md §13): in the commit that queues a notification,
//! whether it is sent now, held in a group or past a throttle, or suppressed by a silence or
//! as a repeat — decided from counters in the store, so they hold across restarts and across
//! instances on one PostgreSQL; the windows' ends (a group's notice, a digest, a bulk change),
//! closed once by whichever instance comes first; and the silences themselves.

use sqlx::{Any, Row, Transaction};

use super::sql::{err, text};
use super::{Millis, NewNotification, Operator, SqlStore, StoreError};
use crate::storm::{BulkCount, Controls, Facets, Matchers, Weekly, scope_key};

/// What the store made of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fate {
    Pending,
    /// In a group's wait or past a throttle: the window's id.
    Held(String),
    /// By a silence (`silence:ID`) or as a repeat (`repeat:KEY`).
    Suppressed(String),
}

/// A silence in force, as the commit matches it.
pub(super) struct Live {
    id: i64,
    matchers: Matchers,
    weekly: Option<Weekly>,
}

/// The silences that may hold now (not expired, begun, not ended); a weekly one is checked
/// against its hours per notification.
pub(super) async fn live_silences(
    tx: &mut Transaction<'_, Any>,
    now: Millis,
) -> Result<Vec<Live>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, matchers, weekly FROM silences
         WHERE expired_at IS NULL AND starts_at <= $1 AND (ends_at IS NULL OR ends_at > $1)",
    )
    .bind(now)
    .fetch_all(&mut **tx)
    .await
    .map_err(err("reading the silences"))?;
    let mut live = Vec::new();
    for row in rows {
        let id: i64 = row.get("id");
        // Stored only after they parsed; one that no longer does (a newer Herald's syntax)
        // silences nothing rather than everything.
        let Ok(matchers) = Matchers::parse(&[row.get::<String, _>("matchers")]) else {
            tracing::warn!(
                silence = id,
                "a silence's matchers no longer parse; it is ignored"
            );
            continue;
        };
        let weekly = match row.get::<Option<String>, _>("weekly") {
            Some(w) => match Weekly::parse(&w) {
                Ok(w) => Some(w),
                Err(_) => continue,
            },
            None => None,
        };
        live.push(Live {
            id,
            matchers,
            weekly,
        });
    }
    Ok(live)
}

/// The first silence in force at `now` that holds `facets`.
pub(super) fn silenced_by(silences: &[Live], facets: &Facets, now: Millis) -> Option<i64> {
    silences
        .iter()
        .find(|s| s.matchers.holds(facets) && s.weekly.as_ref().is_none_or(|w| w.active_at(now)))
        .map(|s| s.id)
}

/// The fate of a notice only a silence can hold back (no repeat, group or throttle counts it).
pub(super) fn silenced(controls: &Controls, silences: &[Live], now: Millis) -> Fate {
    match controls.silenceable {
        true => silenced_by(silences, &controls.facets, now).map_or(Fate::Pending, |id| {
            Fate::Suppressed(format!("silence:{id}"))
        }),
        false => Fate::Pending,
    }
}

/// Decides `n`'s fate under its controls, counting it where it counts. Called only for a
/// notification whose key is new.
pub(super) async fn decide(
    tx: &mut Transaction<'_, Any>,
    n: &NewNotification,
    controls: &Controls,
    silences: &[Live],
    now: Millis,
) -> Result<Fate, StoreError> {
    if let fate @ Fate::Suppressed(_) = silenced(controls, silences, now) {
        return Ok(fate);
    }
    if let Some((key, window)) = &controls.repeat
        && let Some(first) = repeat_of(tx, key, *window, &n.key, now).await?
    {
        return Ok(Fate::Suppressed(format!("repeat:{first}")));
    }
    if let Some((group, wait)) = &controls.group {
        let scope = format!("group|{group}");
        if let Some(window) = open_window(tx, &scope, now).await?
            && window.closes_at > now
            && hold(tx, &window.id).await?
        {
            return Ok(Fate::Held(window.id));
        }
        // A new group counts once against the throttles, as the one notice it becomes.
        if let Some(held) = throttle(tx, n, controls, now).await? {
            return Ok(Fate::Held(held));
        }
        let (id, _) = new_window(tx, "group", &scope, n, "", now, now + wait).await?;
        return Ok(match hold(tx, &id).await? {
            true => Fate::Held(id),
            false => Fate::Pending,
        });
    }
    match throttle(tx, n, controls, now).await? {
        Some(held) => Ok(Fate::Held(held)),
        None => Ok(Fate::Pending),
    }
}

/// `Some(first)` when `key` already stands for another notice (`first`) whose window has not
/// ended; otherwise `n` takes the key.
async fn repeat_of(
    tx: &mut Transaction<'_, Any>,
    key: &str,
    window: Option<i64>,
    notice: &str,
    now: Millis,
) -> Result<Option<String>, StoreError> {
    let until = window.map(|w| now.saturating_add(w));
    let taken = sqlx::query(
        "INSERT INTO repeats (key, first_key, until, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (key) DO UPDATE SET first_key = excluded.first_key, until = excluded.until,
                                         created_at = excluded.created_at
         WHERE repeats.until IS NOT NULL AND repeats.until <= $4",
    )
    .bind(key)
    .bind(notice)
    .bind(until)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(err("claiming a repeat"))?;
    if taken.rows_affected() == 1 {
        return Ok(None);
    }
    let first: Option<String> = sqlx::query_scalar("SELECT first_key FROM repeats WHERE key = $1")
        .bind(key)
        .fetch_optional(&mut **tx)
        .await
        .map_err(err("reading a repeat"))?;
    Ok(first.filter(|f| f != notice))
}

/// The first throttle `n` is past (its window's id, the notice held in it), or `None` after
/// counting `n` in every throttle's window.
async fn throttle(
    tx: &mut Transaction<'_, Any>,
    n: &NewNotification,
    controls: &Controls,
    now: Millis,
) -> Result<Option<String>, StoreError> {
    let mut windows = Vec::new();
    for t in &controls.throttles {
        let scope = format!("throttle|{}", t.scope);
        let window = match open_window(tx, &scope, now).await? {
            Some(w) if w.closes_at > now => w,
            _ => {
                let (id, made) =
                    new_window(tx, "throttle", &scope, n, "", now, now + t.window).await?;
                // Another instance may have opened it a moment before, and counted in it.
                let counted: Option<i64> = match made {
                    true => None,
                    false => sqlx::query_scalar("SELECT counted FROM storm_windows WHERE id = $1")
                        .bind(&id)
                        .fetch_optional(&mut **tx)
                        .await
                        .map_err(err("reading a window"))?,
                };
                Window {
                    id,
                    closes_at: now + t.window,
                    counted: counted.unwrap_or(0),
                }
            }
        };
        if window.counted >= i64::from(t.limit) {
            // Closed by another instance a moment ago: sent now rather than held in it.
            if !hold(tx, &window.id).await? {
                return Ok(None);
            }
            return Ok(Some(window.id));
        }
        windows.push(window.id);
    }
    for id in windows {
        sqlx::query("UPDATE storm_windows SET counted = counted + 1 WHERE id = $1")
            .bind(&id)
            .execute(&mut **tx)
            .await
            .map_err(err("counting a notice"))?;
    }
    Ok(None)
}

struct Window {
    id: String,
    closes_at: Millis,
    counted: i64,
}

/// The window open for `scope`; one whose end has passed is taken out of the way (left to be
/// closed, or dropped when it holds nothing), so a new one can open.
async fn open_window(
    tx: &mut Transaction<'_, Any>,
    scope: &str,
    now: Millis,
) -> Result<Option<Window>, StoreError> {
    let row = sqlx::query(
        "SELECT id, closes_at, counted, held, kind FROM storm_windows WHERE scope = $1 AND open = 1",
    )
    .bind(text(scope))
    .fetch_optional(&mut **tx)
    .await
    .map_err(err("reading a window"))?;
    let Some(row) = row else { return Ok(None) };
    let window = Window {
        id: row.get("id"),
        closes_at: row.get("closes_at"),
        counted: row.get("counted"),
    };
    if window.closes_at > now {
        return Ok(Some(window));
    }
    let held: i64 = row.get("held");
    let kind: String = row.get("kind");
    if held == 0 && kind == "throttle" {
        sqlx::query("DELETE FROM storm_windows WHERE id = $1")
            .bind(&window.id)
            .execute(&mut **tx)
            .await
            .map_err(err("dropping a window"))?;
    } else {
        sqlx::query("UPDATE storm_windows SET open = 0 WHERE id = $1")
            .bind(&window.id)
            .execute(&mut **tx)
            .await
            .map_err(err("ending a window"))?;
    }
    Ok(None)
}

/// Opens a window for `scope`, `(id, true)`; or finds the one another instance opened a moment
/// before, `(its id, false)`.
#[allow(clippy::too_many_arguments)]
async fn new_window(
    tx: &mut Transaction<'_, Any>,
    kind: &str,
    scope: &str,
    n: &NewNotification,
    label: &str,
    now: Millis,
    closes_at: Millis,
) -> Result<(String, bool), StoreError> {
    let id = scope_key(
        kind,
        &[scope, &now.to_string(), &fastrand::u64(..).to_string()],
    );
    let made = sqlx::query(
        "INSERT INTO storm_windows (id, kind, scope, channel, recipient, rule, label, opened_at, closes_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
    )
    .bind(&id)
    .bind(kind)
    .bind(text(scope))
    .bind(&n.channel)
    .bind(text(&n.recipient))
    .bind(&n.rule)
    .bind(text(label))
    .bind(now)
    .bind(closes_at)
    .execute(&mut **tx)
    .await
    .map_err(err("opening a window"))?;
    if made.rows_affected() == 1 {
        return Ok((id, true));
    }
    let open: Option<String> =
        sqlx::query_scalar("SELECT id FROM storm_windows WHERE scope = $1 AND open = 1")
            .bind(text(scope))
            .fetch_optional(&mut **tx)
            .await
            .map_err(err("reading a window"))?;
    Ok((open.unwrap_or(id), false))
}

/// Holds one more notice in window `id`; `false` when another instance closed it between
/// this commit's read of it and now (its notice is queued: this one must not wait on it).
async fn hold(tx: &mut Transaction<'_, Any>, id: &str) -> Result<bool, StoreError> {
    let held =
        sqlx::query("UPDATE storm_windows SET held = held + 1 WHERE id = $1 AND closed_at IS NULL")
            .bind(id)
            .execute(&mut **tx)
            .await
            .map_err(err("holding a notice"))?;
    Ok(held.rows_affected() == 1)
}

/// Counts the accounts of one selected event in its initiator's bulk window.
pub(super) async fn count_bulk(
    tx: &mut Transaction<'_, Any>,
    bulk: &BulkCount,
    tenant: &str,
    event_id: &str,
    activity: &str,
    event_time: Millis,
    now: Millis,
) -> Result<(), StoreError> {
    if bulk.accounts.is_empty() {
        return Ok(());
    }
    let scope = format!("bulk|{}", bulk.scope);
    let window = match open_window(tx, &scope, now).await? {
        Some(w) => w.id,
        None => {
            let label = serde_json::json!({
                "initiator": bulk.initiator,
                "threshold": bulk.threshold,
            })
            .to_string();
            let about = NewNotification {
                channel: String::new(),
                recipient: String::new(),
                rule: String::new(),
                ..NewNotification::default()
            };
            new_window(tx, "bulk", &scope, &about, &label, now, now + bulk.window)
                .await?
                .0
        }
    };
    for account in &bulk.accounts {
        let added = sqlx::query(
            "INSERT INTO bulk_accounts (window_id, account, tenant, event_id, activity, event_time, seq)
             SELECT $1, $2, $3, $4, $5, $6, counted + 1 FROM storm_windows WHERE id = $1
             ON CONFLICT DO NOTHING",
        )
        .bind(&window)
        .bind(text(account))
        .bind(text(tenant))
        .bind(text(event_id))
        .bind(text(activity))
        .bind(event_time)
        .execute(&mut **tx)
        .await
        .map_err(err("counting a bulk change"))?;
        if added.rows_affected() == 1 {
            sqlx::query("UPDATE storm_windows SET counted = counted + 1 WHERE id = $1")
                .bind(&window)
                .execute(&mut **tx)
                .await
                .map_err(err("counting a bulk change"))?;
        }
    }
    Ok(())
}

/// A window whose end has passed, to be closed.
#[derive(Debug, Clone)]
pub struct DueWindow {
    pub id: String,
    pub kind: String,
    pub channel: String,
    pub recipient: String,
    pub rule: String,
    pub label: String,
    pub opened_at: Millis,
    pub closes_at: Millis,
    pub counted: i64,
    pub held: i64,
}

/// A notice held in a window, as its closing notice lists it.
#[derive(Debug, Clone)]
pub struct HeldNotice {
    pub key: String,
    pub event_id: String,
    pub rule: String,
    pub subject: String,
    /// What it said ([`crate::report::NoticeSummary`] as JSON).
    pub summary: Option<String>,
    pub created_at: Millis,
}

/// An account a bulk window counted.
#[derive(Debug, Clone)]
pub struct BulkAccount {
    pub account: String,
    pub tenant: String,
    pub event_id: String,
    pub activity: String,
    pub event_time: Millis,
}

/// What a closing window holds.
#[derive(Debug, Clone)]
pub enum Members {
    Notices(Vec<HeldNotice>),
    Accounts(Vec<BulkAccount>),
}

/// A silence as listed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SilenceEntry {
    pub id: i64,
    pub matchers: String,
    pub starts_at: Millis,
    pub ends_at: Option<Millis>,
    pub weekly: Option<String>,
    pub created_by: String,
    pub comment: String,
    pub created_at: Millis,
    pub expired_at: Option<Millis>,
    pub expired_by: Option<String>,
    /// Notices it has suppressed.
    pub suppressed: i64,
}

impl SilenceEntry {
    /// Whether it can still hold a notice at `now`.
    pub fn live_at(&self, now: Millis) -> bool {
        self.expired_at.is_none() && self.ends_at.is_none_or(|e| e > now)
    }
}

/// A silence to create.
#[derive(Debug, Clone)]
pub struct NewSilence {
    /// As [`Matchers::text`] writes them.
    pub matchers: String,
    /// `None`: now, by the store's clock.
    pub starts_at: Option<Millis>,
    pub ends_at: Option<Millis>,
    /// How long from its start, when `ends_at` is not given.
    pub lasts: Option<Millis>,
    pub weekly: Option<String>,
    pub created_by: String,
    pub comment: String,
}

/// The silences of the configuration (`[[silence]]`): each made once (told like any other),
/// and each made by an earlier configuration but no longer in it ended. Every instance does
/// this at start; the store makes each once.
impl SqlStore {
    pub async fn sync_silences<F>(
        &self,
        configured: &[crate::storm::ConfiguredSilence],
        tell: F,
    ) -> Result<(usize, usize), StoreError>
    where
        F: Fn(&SilenceEntry) -> Vec<NewNotification>,
    {
        let _writing = self.writing().await;
        let mut tx = self.pool.begin().await.map_err(err("syncing silences"))?;
        let now = self.now(&mut *tx).await?;
        let live: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, source FROM silences WHERE source IS NOT NULL AND expired_at IS NULL",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(err("syncing silences"))?;
        let wanted: Vec<String> = configured.iter().map(|c| c.source()).collect();
        let mut ended = 0;
        for (id, source) in &live {
            if !wanted.contains(source) {
                sqlx::query(
                    "UPDATE silences SET expired_at = $1, expired_by = 'the configuration' WHERE id = $2",
                )
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(err("ending a silence"))?;
                ended += 1;
            }
        }
        let mut made = 0;
        for (c, source) in configured.iter().zip(&wanted) {
            if live.iter().any(|(_, s)| s == source) {
                continue;
            }
            let silence = NewSilence {
                matchers: c.matchers.clone(),
                starts_at: c.starts,
                ends_at: c.ends,
                lasts: None,
                weekly: c.weekly.clone(),
                created_by: c.created_by.clone(),
                comment: c.comment.clone(),
            };
            let Some(entry) = insert_silence(&mut tx, &silence, Some(source), now).await? else {
                continue;
            };
            made += 1;
            for n in tell(&entry) {
                queue(&mut tx, &n, now).await?;
            }
        }
        self.notify_queued(&mut tx).await?;
        tx.commit().await.map_err(err("syncing silences"))?;
        Ok((made, ended))
    }
}

/// How many rows a window's close or a silence's summary lists at most (the rest are
/// counted).
pub const LISTED: usize = 200;

impl SqlStore {
    /// The windows whose end has passed, oldest first (throttle windows that held nothing are
    /// dropped on the way: they have nothing to tell).
    pub async fn due_windows(&self, limit: i64) -> Result<Vec<DueWindow>, StoreError> {
        let _writing = self.writing().await;
        let mut tx = self.pool.begin().await.map_err(err("reading windows"))?;
        let now = self.now(&mut *tx).await?;
        sqlx::query(
            "DELETE FROM storm_windows WHERE kind = 'throttle' AND held = 0 AND closed_at IS NULL AND closes_at <= $1",
        )
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(err("dropping windows"))?;
        let rows = sqlx::query(
            "SELECT id, kind, channel, recipient, rule, label, opened_at, closes_at, counted, held
             FROM storm_windows WHERE closed_at IS NULL AND closes_at <= $1
             ORDER BY closes_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(err("reading windows"))?;
        tx.commit().await.map_err(err("reading windows"))?;
        Ok(rows
            .iter()
            .map(|r| DueWindow {
                id: r.get("id"),
                kind: r.get("kind"),
                channel: r.get("channel"),
                recipient: r.get("recipient"),
                rule: r.get("rule"),
                label: r.get("label"),
                opened_at: r.get("opened_at"),
                closes_at: r.get("closes_at"),
                counted: r.get("counted"),
                held: r.get("held"),
            })
            .collect())
    }

    /// Closes `window` once: in one transaction its members are read, `tell` makes the notices
    /// of its close (none, for a bulk window under its threshold), they are queued, and the
    /// held notices marked `merged`. Should `tell` fail, the held notices are queued as they
    /// are: a digest that cannot be made must not keep them. `false` when another instance
    /// closed it first.
    pub async fn close_window<F>(&self, window: &DueWindow, tell: F) -> Result<bool, StoreError>
    where
        F: FnOnce(&Members) -> Result<Vec<NewNotification>, String>,
    {
        let _writing = self.writing().await;
        let mut tx = self.pool.begin().await.map_err(err("closing a window"))?;
        let now = self.now(&mut *tx).await?;
        let taken = sqlx::query(
            "UPDATE storm_windows SET open = 0, closed_at = $1 WHERE id = $2 AND closed_at IS NULL AND closes_at <= $1",
        )
        .bind(now)
        .bind(&window.id)
        .execute(&mut *tx)
        .await
        .map_err(err("closing a window"))?;
        if taken.rows_affected() == 0 {
            // Ended at once, not when the connection is next used: on SQLite the statement
            // above took the write lock, which a dropped transaction would keep.
            tx.rollback().await.map_err(err("rolling back"))?;
            return Ok(false);
        }
        let members = if window.kind == "bulk" {
            let rows = sqlx::query(
                "SELECT account, tenant, event_id, activity, event_time FROM bulk_accounts
                 WHERE window_id = $1 ORDER BY seq",
            )
            .bind(&window.id)
            .fetch_all(&mut *tx)
            .await
            .map_err(err("reading a bulk window"))?;
            Members::Accounts(
                rows.iter()
                    .map(|r| BulkAccount {
                        account: r.get("account"),
                        tenant: r.get("tenant"),
                        event_id: r.get("event_id"),
                        activity: r.get("activity"),
                        event_time: r.get("event_time"),
                    })
                    .collect(),
            )
        } else {
            Members::Notices(held_notices(&mut tx, &window.id, None).await?)
        };
        match tell(&members) {
            Ok(notices) => {
                let mut told = None;
                for n in &notices {
                    queue(&mut tx, n, now).await?;
                    told.get_or_insert_with(|| n.key.clone());
                }
                if window.kind != "bulk" {
                    sqlx::query(
                        "UPDATE outbox SET state = 'merged' WHERE held_by = $1 AND state = 'held'",
                    )
                    .bind(&window.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(err("merging held notices"))?;
                }
                sqlx::query("UPDATE storm_windows SET told = $1 WHERE id = $2")
                    .bind(told)
                    .bind(&window.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(err("closing a window"))?;
            }
            Err(e) => {
                tracing::error!(window = %window.id, error = %e, "a window's notice could not be made; its notices are sent one by one");
                sqlx::query(
                    "UPDATE outbox SET state = 'pending', next_attempt_at = $1 WHERE held_by = $2 AND state = 'held'",
                )
                .bind(now)
                .bind(&window.id)
                .execute(&mut *tx)
                .await
                .map_err(err("releasing held notices"))?;
            }
        }
        self.notify_queued(&mut tx).await?;
        tx.commit().await.map_err(err("closing a window"))?;
        Ok(true)
    }

    /// Creates a silence; `tell` makes the notices of its creation (to `[silences] notify`),
    /// queued in the same transaction. Returns its id.
    pub(super) async fn create_silence<F>(
        &self,
        silence: &NewSilence,
        operator: Option<&Operator>,
        tell: F,
    ) -> Result<i64, StoreError>
    where
        F: FnOnce(&SilenceEntry) -> Vec<NewNotification>,
    {
        let _writing = self.writing().await;
        let mut tx = self.pool.begin().await.map_err(err("adding a silence"))?;
        let now = self.now(&mut *tx).await?;
        let entry = insert_silence(&mut tx, silence, None, now)
            .await?
            .ok_or_else(|| StoreError::new("adding a silence", "no row was made"))?;
        let id = entry.id;
        for n in tell(&entry) {
            queue(&mut tx, &n, now).await?;
        }
        if let Some(by) = operator {
            super::operators::record(
                &mut tx,
                now,
                by,
                "silence",
                &format!("silence {id}"),
                &silence.matchers,
            )
            .await?;
        }
        self.notify_queued(&mut tx).await?;
        tx.commit().await.map_err(err("adding a silence"))?;
        Ok(id)
    }

    /// Every silence (or only those still in force), newest first, with what each suppressed.
    pub(super) async fn list_silences(
        &self,
        live_only: bool,
    ) -> Result<Vec<SilenceEntry>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(err("listing silences"))?;
        let now = self.now(&mut *conn).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SILENCE_COLUMNS}
                 WHERE $1 = 0 OR (s.expired_at IS NULL AND (s.ends_at IS NULL OR s.ends_at > $2))
                 ORDER BY s.id DESC"
        )))
        .bind(i64::from(live_only))
        .bind(now)
        .fetch_all(&mut *conn)
        .await
        .map_err(err("listing silences"))?;
        Ok(rows.iter().map(silence_entry).collect())
    }

    /// Ends a silence now; `false` when it had already ended or never was.
    pub(super) async fn end_silence(
        &self,
        id: i64,
        by: &str,
        operator: Option<&Operator>,
    ) -> Result<bool, StoreError> {
        let _writing = self.writing().await;
        let mut tx = self.pool.begin().await.map_err(err("expiring a silence"))?;
        let now = self.now(&mut *tx).await?;
        let done = sqlx::query(
            "UPDATE silences SET expired_at = $1, expired_by = $2
             WHERE id = $3 AND expired_at IS NULL AND (ends_at IS NULL OR ends_at > $1)",
        )
        .bind(now)
        .bind(text(by))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(err("expiring a silence"))?;
        if let Some(operator) = operator
            && done.rows_affected() == 1
        {
            super::operators::record(
                &mut tx,
                now,
                operator,
                "expire_silence",
                &format!("silence {id}"),
                "ended",
            )
            .await?;
        }
        tx.commit().await.map_err(err("expiring a silence"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Silences that have ended and whose summary is not yet queued.
    pub async fn ended_silences(&self) -> Result<Vec<SilenceEntry>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(err("reading silences"))?;
        let now = self.now(&mut *conn).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SILENCE_COLUMNS}
                 WHERE s.summary_at IS NULL AND (s.expired_at IS NOT NULL OR s.ends_at <= $1)
                 ORDER BY s.id"
        )))
        .bind(now)
        .fetch_all(&mut *conn)
        .await
        .map_err(err("reading silences"))?;
        Ok(rows.iter().map(silence_entry).collect())
    }

    /// Queues the summary of an ended silence once: `tell` gets what it suppressed (the first
    /// [`LISTED`]) and makes the notices.
    pub async fn close_silence<F>(
        &self,
        silence: &SilenceEntry,
        tell: F,
    ) -> Result<bool, StoreError>
    where
        F: FnOnce(&[HeldNotice]) -> Vec<NewNotification>,
    {
        let _writing = self.writing().await;
        let mut tx = self.pool.begin().await.map_err(err("closing a silence"))?;
        let now = self.now(&mut *tx).await?;
        let taken =
            sqlx::query("UPDATE silences SET summary_at = $1 WHERE id = $2 AND summary_at IS NULL")
                .bind(now)
                .bind(silence.id)
                .execute(&mut *tx)
                .await
                .map_err(err("closing a silence"))?;
        if taken.rows_affected() == 0 {
            // Ended at once, not when the connection is next used: on SQLite the statement
            // above took the write lock, which a dropped transaction would keep.
            tx.rollback().await.map_err(err("rolling back"))?;
            return Ok(false);
        }
        let held = held_notices(&mut tx, &format!("silence:{}", silence.id), Some(LISTED)).await?;
        for n in tell(&held) {
            queue(&mut tx, &n, now).await?;
        }
        self.notify_queued(&mut tx).await?;
        tx.commit().await.map_err(err("closing a silence"))?;
        Ok(true)
    }
}

/// A silence as listed, with how many notices it suppressed (`outbox_held`).
const SILENCE_COLUMNS: &str = "SELECT s.id, s.matchers, s.starts_at, s.ends_at, s.weekly, s.created_by, s.comment,
        s.created_at, s.expired_at, s.expired_by,
        (SELECT COUNT(*) FROM outbox o WHERE o.held_by = 'silence:' || CAST(s.id AS TEXT)) AS suppressed
 FROM silences s";

/// Inserts `silence` (one of the configuration's, `source`, only if none of that source is
/// in force); the silence as made, `None` when another instance made it a moment before.
async fn insert_silence(
    tx: &mut Transaction<'_, Any>,
    silence: &NewSilence,
    source: Option<&str>,
    now: Millis,
) -> Result<Option<SilenceEntry>, StoreError> {
    let starts = silence.starts_at.unwrap_or(now);
    let ends = silence
        .ends_at
        .or_else(|| silence.lasts.map(|d| starts.saturating_add(d)));
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO silences (matchers, starts_at, ends_at, weekly, created_by, comment, created_at, source)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(text(&silence.matchers))
    .bind(starts)
    .bind(ends)
    .bind(silence.weekly.as_deref().map(text))
    .bind(text(&silence.created_by))
    .bind(text(&silence.comment))
    .bind(now)
    .bind(source)
    .fetch_optional(&mut **tx)
    .await
    .map_err(err("adding a silence"))?;
    Ok(id.map(|id| SilenceEntry {
        id,
        matchers: silence.matchers.clone(),
        starts_at: starts,
        ends_at: ends,
        weekly: silence.weekly.clone(),
        created_by: silence.created_by.clone(),
        comment: silence.comment.clone(),
        created_at: now,
        expired_at: None,
        expired_by: None,
        suppressed: 0,
    }))
}

fn silence_entry(r: &sqlx::any::AnyRow) -> SilenceEntry {
    SilenceEntry {
        id: r.get("id"),
        matchers: r.get("matchers"),
        starts_at: r.get("starts_at"),
        ends_at: r.get("ends_at"),
        weekly: r.get("weekly"),
        created_by: r.get("created_by"),
        comment: r.get("comment"),
        created_at: r.get("created_at"),
        expired_at: r.get("expired_at"),
        expired_by: r.get("expired_by"),
        suppressed: r.get("suppressed"),
    }
}

async fn held_notices(
    tx: &mut Transaction<'_, Any>,
    held_by: &str,
    limit: Option<usize>,
) -> Result<Vec<HeldNotice>, StoreError> {
    let rows = sqlx::query(
        "SELECT key, event_id, rule, subject, summary, created_at FROM outbox
         WHERE held_by = $1 ORDER BY created_at, key LIMIT $2",
    )
    .bind(held_by)
    .bind(limit.map_or(i64::MAX, |l| l as i64))
    .fetch_all(&mut **tx)
    .await
    .map_err(err("reading held notices"))?;
    Ok(rows
        .iter()
        .map(|r| HeldNotice {
            key: r.get("key"),
            event_id: r.get("event_id"),
            rule: r.get("rule"),
            subject: r.get("subject"),
            summary: r.get("summary"),
            created_at: r.get("created_at"),
        })
        .collect())
}

/// Queues a notice of Herald's own (a window's close, a silence's news) once by its key.
async fn queue(
    tx: &mut Transaction<'_, Any>,
    n: &NewNotification,
    now: Millis,
) -> Result<(), StoreError> {
    super::batch::insert_notice(tx, n, "pending", None, now).await?;
    Ok(())
}

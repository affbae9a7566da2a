//! The store's queries, one set for both engines: placeholders (`$1`), upserts (`ON CONFLICT`)
//! and `RETURNING` mean the same on SQLite and PostgreSQL, so one behaviour is one text. The
//! one difference is claiming: on PostgreSQL, several instances claim at once and each skips
//! the rows another has locked (`FOR UPDATE SKIP LOCKED`); SQLite has one writer.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Row, Transaction};

use super::batch::{insert_batch, insert_isolated};
use super::engine::{Engine, Schema};
use super::{
    AttemptEntry, Batch, Claimed, Committed, DeadLetterEntry, Done, Finish, HistoryEntry, Millis,
    NewReport, OutboxCounts, OutboxEntry, OutboxQuery, Pruned, Report, ReportedNotice, Retention,
    State, Store, StoreError, Verdict, now_millis,
};

/// A store on SQLite or PostgreSQL.
#[derive(Clone)]
pub struct SqlStore {
    pub(super) pool: AnyPool,
    engine: Engine,
    /// A time to use instead of the database's clock ([`SqlStore::at`]).
    clock: Option<Millis>,
    /// SQLite's writers, one at a time ([`SqlStore::writing`]).
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl SqlStore {
    /// Opens the store `url` names (`sqlite://` paths relative to `base`) with a pool of
    /// `pool_size` connections, migrating or checking its schema.
    pub async fn open(
        url: &str,
        base: &Path,
        schema: Schema,
        pool_size: Option<u32>,
    ) -> Result<SqlStore, StoreError> {
        let engine = Engine::of(url, base).map_err(|e| StoreError::new("store.url", e))?;
        let pool = engine.connect(url, pool_size).await?;
        engine.schema(&pool, schema).await?;
        Ok(SqlStore {
            pool,
            engine,
            clock: None,
            writer: Arc::default(),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The same store, reading the time as `now` instead of from its clock: for tests of the
    /// store's contract, which step time by hand.
    pub fn at(&self, now: Millis) -> SqlStore {
        SqlStore {
            clock: Some(now),
            ..self.clone()
        }
    }

    /// The store's time: every instance's claims, leases, retries and records are timed by
    /// one clock, the database's (ARCHITECTURE.md §7), so a skewed or stepped clock on one
    /// machine cannot let it take a row another is sending. SQLite lives in this process and
    /// reads this machine's clock; PostgreSQL is asked.
    pub(super) async fn now<'c, E>(&self, conn: E) -> Result<Millis, StoreError>
    where
        E: sqlx::Executor<'c, Database = Any>,
    {
        if let Some(now) = self.clock {
            return Ok(now);
        }
        match self.engine {
            Engine::Sqlite(_) => Ok(now_millis()),
            Engine::Postgres => sqlx::query_scalar(
                "SELECT CAST(FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000) AS BIGINT)",
            )
            .fetch_one(conn)
            .await
            .map_err(err("reading the database's clock")),
        }
    }
}

impl SqlStore {
    /// Held by every write on SQLite, taken before its connection: SQLite has one writer at a
    /// time, and writers of this process that met at its lock would each sleep in its busy
    /// handler (1, 2, 5 … 100 ms) and retry; in line here, each begins the moment the one
    /// before commits (ARCHITECTURE.md §7). Other processes (the command line beside `run`)
    /// still wait in the busy handler. PostgreSQL's writers lock rows, not the database:
    /// `None`.
    pub(super) async fn writing(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.engine {
            Engine::Sqlite(_) => Some(self.writer.lock().await),
            Engine::Postgres => None,
        }
    }

    /// On PostgreSQL, tells every instance's dispatcher that rows are due, when `tx` commits
    /// (ARCHITECTURE.md §8).
    pub(super) async fn notify_queued(
        &self,
        tx: &mut Transaction<'_, Any>,
    ) -> Result<(), StoreError> {
        if self.engine == Engine::Postgres {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "NOTIFY {}",
                super::engine::QUEUED_CHANNEL
            )))
            .execute(&mut **tx)
            .await
            .map_err(err("notifying the dispatchers"))?;
        }
        Ok(())
    }

    /// One transaction for `batch`; `isolated`: each event under a savepoint of its own
    /// ([`insert_isolated`]).
    async fn commit_as(&self, batch: &Batch, isolated: bool) -> Result<Committed, StoreError> {
        let _writing = self.writing().await;
        let mut tx = self.pool.begin().await.map_err(err("beginning a batch"))?;
        let now = self.now(&mut *tx).await?;
        let committed = match isolated {
            false => insert_batch(&mut tx, batch, now).await?,
            true => insert_isolated(&mut tx, batch, now).await?,
        };
        if committed.queued > 0 {
            self.notify_queued(&mut tx).await?;
        }
        tx.commit().await.map_err(err("committing a batch"))?;
        Ok(committed)
    }
}

/// A value bound to a query built at run time.
enum Value {
    Text(String),
    Int(i64),
}

/// The claim: due rows whose lease (if any) has run out, on the channels named. $1 worker,
/// $2 token, $3 lease end, $4 now, $5 how many, $6… the channels (at least one). On
/// PostgreSQL, several instances claim at once: a row another instance is claiming right now is
/// skipped, not waited for, and one it has just claimed no longer qualifies when re-checked.
fn claim_query(engine: &Engine, channels: usize) -> String {
    let channels: Vec<String> = (0..channels).map(|i| format!("${}", i + 6)).collect();
    let channels = channels.join(", ");
    let locking = match engine {
        Engine::Postgres => " FOR UPDATE SKIP LOCKED",
        Engine::Sqlite(_) => "",
    };
    format!(
        "UPDATE outbox SET claimed_by = $1, claim_token = $2, claimed_until = $3
         WHERE key IN (SELECT key FROM outbox
                       WHERE state = 'pending' AND next_attempt_at <= $4
                         AND (claimed_until IS NULL OR claimed_until < $4)
                         AND channel IN ({channels})
                       ORDER BY next_attempt_at LIMIT $5{locking})
         RETURNING key, rule, channel, recipient, message, attempts, created_at"
    )
}

/// Text as the store keeps it: without NUL, which PostgreSQL's `TEXT` refuses (one such
/// value would fail its whole batch, or the recording of an outcome, on every retry). Decoded
/// audit text is already free of control characters; this is the store's own guarantee, for
/// what reaches it from elsewhere (a server's reply, a dead letter's reason). Raw bytes are kept
/// as they came, in `BYTEA`/`BLOB` columns.
pub(super) fn text(value: &str) -> String {
    value.replace('\0', "")
}

/// The SHA-256 of a dead letter's bytes, as hex: what "the same content" means.
pub(super) fn content_hash(raw: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(raw)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(super) fn err(context: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| {
        if refuses_data(&e) {
            StoreError::refused(context, e)
        } else {
            StoreError::new(context, e)
        }
    }
}

/// Whether the database refused a value itself, so that offering the same rows again would be
/// refused again: PostgreSQL's data exceptions (SQLSTATE class 22), integrity violations (23)
/// and exceeded limits (54: an index row too large); SQLite's TOOBIG (18), CONSTRAINT (19),
/// MISMATCH (20) and RANGE (25). A lost connection, a full disk or a server shutting down is
/// no refusal: those are waited out.
fn refuses_data(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    let Some(code) = db.code() else {
        return false;
    };
    if code.len() == 5 {
        return matches!(&code[..2], "22" | "23" | "54");
    }
    code.parse::<u32>()
        .is_ok_and(|n| matches!(n & 0xff, 18 | 19 | 20 | 25))
}

fn outbox_entry(row: &AnyRow) -> OutboxEntry {
    OutboxEntry {
        key: row.get("key"),
        event_id: row.get("event_id"),
        rule: row.get("rule"),
        channel: row.get("channel"),
        recipient: row.get("recipient"),
        subject: row.get("subject"),
        state: State::parse(row.get::<&str, _>("state")),
        attempts: row.get("attempts"),
        created_at: row.get("created_at"),
        next_attempt_at: row.get("next_attempt_at"),
        sent_at: row.get("sent_at"),
        last_error: row.get("last_error"),
        held_by: row.get("held_by"),
    }
}

fn dead_letter_entry(row: &AnyRow) -> DeadLetterEntry {
    DeadLetterEntry {
        id: row.get("id"),
        source: row.get("source"),
        input: row.get("input"),
        position: row.get("position"),
        reason: row.get("reason"),
        raw: row.get("raw"),
        created_at: row.get("created_at"),
        replays: row.get("replays"),
        resolved_at: row.get("resolved_at"),
    }
}

impl Store for SqlStore {
    async fn commit(&self, batch: &Batch) -> Result<Committed, StoreError> {
        match self.commit_as(batch, false).await {
            // Some value in it is refused: again, record by record, the refused ones kept as
            // dead letters.
            Err(e) if e.is_refusal() => self.commit_as(batch, true).await,
            committed => committed,
        }
    }

    async fn checkpoint(&self, source: &str, key: &str) -> Result<Option<String>, StoreError> {
        sqlx::query("SELECT value FROM checkpoints WHERE source = $1 AND key = $2")
            .bind(source)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map(|row| row.map(|r| r.get("value")))
            .map_err(err("reading a checkpoint"))
    }

    async fn claim(
        &self,
        worker: &str,
        lease: Millis,
        limit: i64,
        channels: &[String],
    ) -> Result<Vec<Claimed>, StoreError> {
        if channels.is_empty() {
            return Ok(Vec::new());
        }
        let _writing = self.writing().await;
        let now = self.now(&self.pool).await?;
        let token = format!("{worker}-{now}-{:016x}", fastrand::u64(..));
        // Only placeholders are spliced in; every value is bound.
        let claim = sqlx::AssertSqlSafe(claim_query(&self.engine, channels.len()));
        let mut query = sqlx::query(claim)
            .bind(worker)
            .bind(&token)
            .bind(now + lease)
            .bind(now)
            .bind(limit);
        for channel in channels {
            query = query.bind(channel);
        }
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(err("claiming due notifications"))?;
        // A claim need not reach the disk before its sends begin: an instance releases its
        // own claims when it starts, so a claim lost with the power is the one it would have
        // released. On SQLite it commits without its fsync, and the next commit that syncs
        // (the outcome's, a batch's) makes it durable with its own (ARCHITECTURE.md §7).
        let unsynced = matches!(self.engine, Engine::Sqlite(_));
        if unsynced {
            sqlx::query("PRAGMA synchronous = NORMAL")
                .execute(&mut *conn)
                .await
                .map_err(err("claiming due notifications"))?;
        }
        let rows = query.fetch_all(&mut *conn).await;
        if unsynced
            && sqlx::query("PRAGMA synchronous = FULL")
                .execute(&mut *conn)
                .await
                .is_err()
        {
            // Pooled as it is, it would commit a batch without syncing it.
            conn.close_on_drop();
        }
        let rows = rows.map_err(err("claiming due notifications"))?;
        Ok(rows
            .iter()
            .map(|row| Claimed {
                key: row.get("key"),
                rule: row.get("rule"),
                channel: row.get("channel"),
                recipient: row.get("recipient"),
                message: row.get("message"),
                attempts: row.get("attempts"),
                created_at: row.get("created_at"),
                claimed_at: now,
                token: token.clone(),
            })
            .collect())
    }

    async fn finish(&self, done: Vec<Done>) -> Result<u64, StoreError> {
        let _writing = self.writing().await;
        let mut tx = self.pool.begin().await.map_err(err("beginning to mark"))?;
        let now = self.now(&mut *tx).await?;
        let mut changed = 0;
        for d in &done {
            let query = match &d.finish {
                Finish::Sent => sqlx::query(
                    "UPDATE outbox SET state = 'sent', sent_at = $1, attempts = attempts + 1, last_error = NULL,
                            claimed_by = NULL, claim_token = NULL, claimed_until = NULL
                     WHERE key = $2 AND claim_token = $3",
                )
                .bind(now),
                Finish::Retry { after, error } => sqlx::query(
                    "UPDATE outbox SET next_attempt_at = $1, last_error = $2, attempts = attempts + 1,
                            claimed_by = NULL, claim_token = NULL, claimed_until = NULL
                     WHERE key = $3 AND claim_token = $4",
                )
                .bind(now.saturating_add(*after))
                .bind(text(error)),
                Finish::Failed { error } => sqlx::query(
                    "UPDATE outbox SET state = 'failed', last_error = $1, attempts = attempts + 1,
                            claimed_by = NULL, claim_token = NULL, claimed_until = NULL
                     WHERE key = $2 AND claim_token = $3",
                )
                .bind(text(error)),
                Finish::Released => sqlx::query(
                    "UPDATE outbox SET claimed_by = NULL, claim_token = NULL, claimed_until = NULL
                     WHERE key = $1 AND claim_token = $2",
                ),
                Finish::Deferred { error } => sqlx::query(
                    "UPDATE outbox SET last_error = $1,
                            claimed_by = NULL, claim_token = NULL, claimed_until = NULL
                     WHERE key = $2 AND claim_token = $3",
                )
                .bind(text(error)),
            };
            let result = query
                .bind(&d.key)
                .bind(&d.token)
                .execute(&mut *tx)
                .await
                .map_err(err("marking a notification"))?;
            changed += result.rows_affected();
            if let Some(attempt) = &d.attempt {
                let outcome = match &d.finish {
                    Finish::Sent => "sent",
                    Finish::Retry { .. } => "retry",
                    Finish::Failed { .. } => "failed",
                    Finish::Deferred { .. } => "deferred",
                    Finish::Released => continue,
                };
                sqlx::query(
                    "INSERT INTO attempts (key, at, instance, outcome, reply, duration_ms)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&d.key)
                .bind(attempt.at)
                .bind(text(&attempt.instance))
                .bind(outcome)
                .bind(text(&attempt.reply))
                .bind(attempt.duration_ms)
                .execute(&mut *tx)
                .await
                .map_err(err("recording an attempt"))?;
            }
        }
        tx.commit().await.map_err(err("committing marks"))?;
        Ok(changed)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(err("reaching the store"))
    }

    async fn release_claims(&self, of: Option<&str>) -> Result<u64, StoreError> {
        let query = match of {
            None => sqlx::query(
                "UPDATE outbox SET claimed_by = NULL, claim_token = NULL, claimed_until = NULL
                 WHERE claim_token IS NOT NULL",
            ),
            Some(worker) => sqlx::query(
                "UPDATE outbox SET claimed_by = NULL, claim_token = NULL, claimed_until = NULL
                 WHERE claim_token IS NOT NULL AND claimed_by = $1",
            )
            .bind(worker),
        };
        let _writing = self.writing().await;
        query
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(err("releasing claims"))
    }

    async fn renew(&self, worker: &str, lease: Millis) -> Result<u64, StoreError> {
        let _writing = self.writing().await;
        let now = self.now(&self.pool).await?;
        sqlx::query(
            "UPDATE outbox SET claimed_until = $1
             WHERE claimed_by = $2 AND claim_token IS NOT NULL AND state = 'pending'",
        )
        .bind(now.saturating_add(lease))
        .bind(worker)
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected())
        .map_err(err("renewing claims"))
    }

    async fn outbox(&self, query: &OutboxQuery) -> Result<Vec<OutboxEntry>, StoreError> {
        // Only placeholders are spliced in; every value is bound, in order.
        let mut filters = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        let mut filter = |column: &str, value: Value| {
            values.push(value);
            filters.push(format!("{column} ${}", values.len()));
        };
        if let Some(state) = query.state {
            filter("state =", Value::Text(state.as_str().to_owned()));
        }
        if let Some(since) = query.since {
            filter("created_at >=", Value::Int(since));
        }
        if let Some(rule) = &query.rule {
            filter("rule =", Value::Text(rule.clone()));
        }
        if let Some(recipient) = &query.recipient {
            filter("recipient =", Value::Text(recipient.clone()));
        }
        if let Some(channel) = &query.channel {
            filter("channel =", Value::Text(channel.clone()));
        }
        if let Some(event) = &query.event {
            filter("event_id =", Value::Text(event.clone()));
        }
        if let Some((at, key)) = &query.after {
            values.push(Value::Int(*at));
            values.push(Value::Text(key.clone()));
            let (a, k) = (values.len() - 1, values.len());
            // A row-value comparison: both engines read the index (created_at, key) from it.
            filters.push(format!("(created_at, key) < (${a}, ${k})"));
        }
        let filters = if filters.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", filters.join(" AND "))
        };
        let listing = format!(
            "SELECT key, event_id, rule, channel, recipient, subject, state, attempts, created_at,
                    next_attempt_at, sent_at, last_error, held_by
             FROM outbox {filters} ORDER BY created_at DESC, key DESC LIMIT ${}",
            values.len() + 1
        );
        let mut listing = sqlx::query(sqlx::AssertSqlSafe(listing));
        for value in values {
            listing = match value {
                Value::Text(text) => listing.bind(text),
                Value::Int(n) => listing.bind(n),
            };
        }
        let rows = listing
            .bind(query.limit)
            .fetch_all(&self.pool)
            .await
            .map_err(err("listing the outbox"))?;
        Ok(rows.iter().map(outbox_entry).collect())
    }

    async fn notification(&self, key: &str) -> Result<Option<(OutboxEntry, Vec<u8>)>, StoreError> {
        let row = sqlx::query("SELECT * FROM outbox WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(err("reading a notification"))?;
        Ok(row.map(|row| (outbox_entry(&row), row.get("message"))))
    }

    async fn attempts(&self, key: &str) -> Result<Vec<AttemptEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, instance, outcome, reply, duration_ms FROM attempts WHERE key = $1 ORDER BY at, id",
        )
        .bind(key)
        .fetch_all(&self.pool)
        .await
        .map_err(err("reading attempts"))?;
        Ok(rows
            .iter()
            .map(|row| AttemptEntry {
                at: row.get("at"),
                instance: row.get("instance"),
                outcome: row.get("outcome"),
                reply: row.get("reply"),
                duration_ms: row.get("duration_ms"),
            })
            .collect())
    }

    async fn counts(&self) -> Result<OutboxCounts, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state")
            .fetch_all(&self.pool)
            .await
            .map_err(err("counting the outbox"))?;
        let mut counts = OutboxCounts::default();
        for row in rows {
            let n = row.get::<i64, _>("n") as u64;
            match State::parse(row.get::<&str, _>("state")) {
                State::Pending => counts.pending = n,
                State::Sent => counts.sent = n,
                State::Failed => counts.failed = n,
                State::Held => counts.held = n,
                State::Merged => counts.merged = n,
                State::Suppressed => counts.suppressed = n,
            }
        }
        Ok(counts)
    }

    async fn backlog(&self) -> Result<OutboxCounts, StoreError> {
        // Each count reads one partial index (outbox_due, outbox_failed): the sent rows,
        // however many, are not in either.
        let count = |state: &'static str| {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM outbox WHERE state = '{state}'"
            )))
            .fetch_one(&self.pool)
        };
        let pending = count("pending")
            .await
            .map_err(err("counting the backlog"))?;
        let failed = count("failed").await.map_err(err("counting the backlog"))?;
        Ok(OutboxCounts {
            pending: pending as u64,
            failed: failed as u64,
            ..OutboxCounts::default()
        })
    }

    async fn prune(
        &self,
        retention: &Retention,
        batch: i64,
        dry_run: bool,
    ) -> Result<Pruned, StoreError> {
        self.prune_rows(retention, batch, dry_run).await
    }

    async fn pending_by_channel(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let rows = sqlx::query(
            "SELECT channel, COUNT(*) AS n FROM outbox WHERE state = 'pending' GROUP BY channel",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(err("counting pending notifications"))?;
        Ok(rows
            .iter()
            .map(|row| (row.get("channel"), row.get::<i64, _>("n") as u64))
            .collect())
    }

    async fn retry(&self, key: Option<&str>) -> Result<u64, StoreError> {
        let now = self.now(&self.pool).await?;
        let query = match key {
            Some(key) => sqlx::query(
                "UPDATE outbox SET state = 'pending', next_attempt_at = $1, attempts = 0, created_at = $2 WHERE key = $3 AND state = 'failed'",
            )
            .bind(now)
            .bind(now)
            .bind(key),
            None => sqlx::query("UPDATE outbox SET state = 'pending', next_attempt_at = $1, attempts = 0, created_at = $2 WHERE state = 'failed'")
                .bind(now)
                .bind(now),
        };
        let _writing = self.writing().await;
        let mut tx = self.pool.begin().await.map_err(err("beginning a retry"))?;
        let n = query
            .execute(&mut *tx)
            .await
            .map(|r| r.rows_affected())
            .map_err(err("retrying notifications"))?;
        if n > 0 {
            self.notify_queued(&mut tx).await?;
        }
        tx.commit().await.map_err(err("committing a retry"))?;
        Ok(n)
    }

    async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetterEntry>, StoreError> {
        let rows = sqlx::query("SELECT * FROM dead_letters ORDER BY id LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(err("listing dead letters"))?;
        Ok(rows.iter().map(dead_letter_entry).collect())
    }

    async fn history(&self, tenant: &str, event_id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT rule, queued, created_at, reason FROM history WHERE tenant = $1 AND event_id = $2 ORDER BY id",
        )
        .bind(tenant)
        .bind(event_id)
        .fetch_all(&self.pool)
        .await
        .map_err(err("reading history"))?;
        Ok(rows
            .iter()
            .map(|row| HistoryEntry {
                rule: row.get("rule"),
                queued: row.get("queued"),
                reason: row.get("reason"),
                created_at: row.get("created_at"),
            })
            .collect())
    }

    async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetterEntry>, StoreError> {
        let row = sqlx::query("SELECT * FROM dead_letters WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(err("reading a dead letter"))?;
        Ok(row.as_ref().map(dead_letter_entry))
    }

    async fn replay_dead_letter(&self, id: i64, batch: &Batch) -> Result<Committed, StoreError> {
        self.replay_dead_letter_by(id, batch, None).await
    }

    async fn replay_dead_letter_by(
        &self,
        id: i64,
        batch: &Batch,
        by: Option<&super::Operator>,
    ) -> Result<Committed, StoreError> {
        let _writing = self.writing().await;
        let mut tx = self.pool.begin().await.map_err(err("beginning a replay"))?;
        let now = self.now(&mut *tx).await?;
        let usable = Batch {
            dead_letters: Vec::new(),
            ..batch.clone()
        };
        let mut committed = insert_batch(&mut tx, &usable, now).await?;
        let at = jiff::Timestamp::from_millisecond(now)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| now.to_string());
        let outcome = if batch.dead_letters.is_empty() {
            format!(
                "{at} replayed: {} notifications queued, {} already known\n",
                committed.queued, committed.duplicates
            )
        } else {
            let reasons: Vec<&str> = batch
                .dead_letters
                .iter()
                .map(|d| d.reason.as_str())
                .collect();
            format!("{at} replayed: still unusable: {}\n", reasons.join("; "))
        };
        let resolved = batch.dead_letters.is_empty().then_some(now);
        let found = sqlx::query(
            "UPDATE dead_letters SET replays = replays || $1, resolved_at = COALESCE(resolved_at, $2)
             WHERE id = $3",
        )
        .bind(text(&outcome))
        .bind(resolved)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(err("recording a replay"))?;
        if found.rows_affected() == 0 {
            tx.rollback().await.map_err(err("ending a replay"))?;
            return Err(StoreError::new(
                "replaying a dead letter",
                format!("no dead letter {id}"),
            ));
        }
        committed.dead_letters = batch.dead_letters.len() as u64;
        if let Some(by) = by {
            let target = format!("dead letter {id}");
            let outcome = outcome.trim_end().split_once(' ').map_or("", |(_, o)| o);
            super::operators::record(&mut tx, now, by, "replay", &target, outcome).await?;
        }
        if committed.queued > 0 {
            self.notify_queued(&mut tx).await?;
        }
        tx.commit().await.map_err(err("committing a replay"))?;
        Ok(committed)
    }

    async fn reported_notice(&self, key: &str) -> Result<Option<ReportedNotice>, StoreError> {
        self.reported_notice_row(key).await
    }

    async fn record_report(
        &self,
        report: &NewReport,
        notices: &[super::NewNotification],
    ) -> Result<(Report, bool), StoreError> {
        self.record_report_row(report, notices).await
    }

    async fn retry_by(&self, key: Option<&str>, by: &super::Operator) -> Result<u64, StoreError> {
        self.retry_by_row(key, by).await
    }

    async fn silences(&self, live_only: bool) -> Result<Vec<super::SilenceEntry>, StoreError> {
        self.list_silences(live_only).await
    }

    async fn add_silence<F>(
        &self,
        silence: &super::NewSilence,
        operator: Option<&super::Operator>,
        tell: F,
    ) -> Result<i64, StoreError>
    where
        F: FnOnce(&super::SilenceEntry) -> Vec<super::NewNotification> + Send,
    {
        self.create_silence(silence, operator, tell).await
    }

    async fn expire_silence(
        &self,
        id: i64,
        by: &str,
        operator: Option<&super::Operator>,
    ) -> Result<bool, StoreError> {
        self.end_silence(id, by, operator).await
    }

    async fn events(
        &self,
        query: &super::EventQuery,
    ) -> Result<Vec<super::EventEntry>, StoreError> {
        self.event_rows(query).await
    }

    async fn event(
        &self,
        tenant: Option<&str>,
        event_id: &str,
    ) -> Result<Option<(super::EventEntry, Vec<u8>)>, StoreError> {
        self.event_row(tenant, event_id).await
    }

    async fn operator_actions(&self, limit: i64) -> Result<Vec<super::OperatorAction>, StoreError> {
        self.operator_action_rows(None, limit).await
    }

    async fn operator_actions_before(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<super::OperatorAction>, StoreError> {
        self.operator_action_rows(before, limit).await
    }

    async fn dead_letters_before(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<DeadLetterEntry>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM dead_letters WHERE id < $1 ORDER BY id DESC LIMIT $2")
                .bind(before.unwrap_or(i64::MAX))
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(err("listing dead letters"))?;
        Ok(rows.iter().map(dead_letter_entry).collect())
    }

    async fn reports_of_event(&self, event_id: &str) -> Result<Vec<Report>, StoreError> {
        self.report_rows_of_event(event_id).await
    }

    async fn activity(&self, since: Millis) -> Result<super::Activity, StoreError> {
        let events: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM events_seen WHERE first_seen >= $1")
                .bind(since)
                .fetch_one(&self.pool)
                .await
                .map_err(err("counting events"))?;
        let rows = sqlx::query(
            "SELECT channel, state, COUNT(*) AS n FROM outbox WHERE created_at >= $1
             GROUP BY channel, state ORDER BY channel, state",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(err("counting notices"))?;
        Ok(super::Activity {
            events: events.max(0) as u64,
            notices: rows
                .iter()
                .map(|r| {
                    (
                        r.get("channel"),
                        r.get("state"),
                        r.get::<i64, _>("n").max(0) as u64,
                    )
                })
                .collect(),
        })
    }

    async fn report_counts(&self, since: Millis) -> Result<(u64, u64), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS all_reports,
                    COALESCE(SUM(CASE WHEN verdict = 'not_me' THEN 1 ELSE 0 END), 0) AS not_me
             FROM reports WHERE created_at >= $1",
        )
        .bind(since)
        .fetch_one(&self.pool)
        .await
        .map_err(err("counting reports"))?;
        let count = |name: &str| row.try_get::<i64, _>(name).unwrap_or(0).max(0) as u64;
        Ok((count("all_reports"), count("not_me")))
    }

    async fn report(&self, key: &str) -> Result<Option<Report>, StoreError> {
        self.report_row(key).await
    }

    async fn reports(
        &self,
        verdict: Option<Verdict>,
        since: Option<Millis>,
        limit: i64,
    ) -> Result<Vec<Report>, StoreError> {
        self.report_rows(verdict, since, limit).await
    }

    async fn resolve_dead_letters(&self, id: Option<i64>) -> Result<u64, StoreError> {
        self.resolve_dead_letters_by(id, None).await
    }

    async fn resolve_dead_letters_by(
        &self,
        id: Option<i64>,
        by: Option<&super::Operator>,
    ) -> Result<u64, StoreError> {
        let _writing = self.writing().await;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(err("beginning a resolution"))?;
        let now = self.now(&mut *tx).await?;
        let query = match id {
            Some(id) => sqlx::query(
                "UPDATE dead_letters SET resolved_at = $1 WHERE resolved_at IS NULL AND id = $2",
            )
            .bind(now)
            .bind(id),
            None => {
                sqlx::query("UPDATE dead_letters SET resolved_at = $1 WHERE resolved_at IS NULL")
                    .bind(now)
            }
        };
        let n = query
            .execute(&mut *tx)
            .await
            .map(|r| r.rows_affected())
            .map_err(err("resolving dead letters"))?;
        if let Some(by) = by {
            let target = id.map_or("every dead letter".to_owned(), |id| {
                format!("dead letter {id}")
            });
            let outcome = format!("{n} resolved");
            super::operators::record(&mut tx, now, by, "resolve", &target, &outcome).await?;
        }
        tx.commit().await.map_err(err("committing a resolution"))?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewNotification, Schema};

    /// A claim on SQLite commits unsynced; the connection it used must be back at `FULL`
    /// before anything else commits on it, or a batch would be acknowledged before it is on
    /// the disk.
    #[tokio::test]
    async fn a_sqlite_claim_leaves_its_connection_synchronous_again() {
        let dir = std::env::temp_dir().join(format!("herald-claim-sync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // One connection: the claim's is the one every later statement gets.
        let store = SqlStore::open("sqlite://claims.db", &dir, Schema::Migrate, Some(1))
            .await
            .unwrap();
        let synchronous = || async {
            sqlx::query_scalar::<_, i64>("PRAGMA synchronous")
                .fetch_one(&store.pool)
                .await
                .unwrap()
        };
        assert_eq!(synchronous().await, 2, "FULL before any claim");
        let batch = Batch {
            source: "entra".to_owned(),
            events: Vec::new(),
            notifications: vec![NewNotification {
                key: "k1".to_owned(),
                event_id: "e1".to_owned(),
                rule: "password-reset".to_owned(),
                channel: "email".to_owned(),
                recipient: "adele@contoso.com".to_owned(),
                subject: "subject".to_owned(),
                message: b"message".to_vec(),
                action: None,
                summary: None,
                controls: None,
            }],
            dead_letters: Vec::new(),
            checkpoint: None,
        };
        store.commit(&batch).await.unwrap();
        let claimed = store
            .claim("herald-1", 60_000, 10, &["email".to_owned()])
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(synchronous().await, 2, "FULL again after a claim");
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

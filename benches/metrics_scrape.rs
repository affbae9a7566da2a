//! What a `/metrics` scrape asks of a store that has run for a year: an outbox of 1,000,000
//! sent rows (and a small backlog), on SQLite and on PostgreSQL. A scrape counts the pending
//! and failed rows (`Store::backlog`, from partial indexes); the baseline, measured in the same
//! run on the same store, is what a scrape did before: count every row by state
//! (`Store::counts`). Reports the median of each and their ratio.
//!
//! Run: `scripts/bench --bench metrics_scrape`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use herald::store::{Schema, SqlStore, Store};
use support::Scratch;
use support::postgres::Postgres;

const SENT: i64 = 1_000_000;
const PENDING: i64 = 200;
const FAILED: i64 = 50;

/// Rows `1..=n` of one state, as `herald run` would have left them (every column set).
fn fill(state: &str, from: i64, n: i64, series: &str) -> String {
    format!(
        "INSERT INTO outbox (key, event_id, rule, channel, recipient, subject, message, state,
                             attempts, created_at, next_attempt_at, sent_at)
         SELECT '{state}-' || x, 'event-' || x, 'password-reset', 'email',
                'user' || (x % 5000) || '@contoso.com', 'Your password was reset', {blob}, '{state}',
                1, 1700000000000 + x, 1700000000000 + x, {sent}
         FROM {series}",
        blob = "CAST('message' AS BLOB)",
        sent = if state == "sent" { "1700000000000 + x" } else { "NULL" },
        series = series.replace("{from}", &from.to_string()).replace("{to}", &(from + n - 1).to_string()),
    )
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

async fn measure(name: &str, store: &SqlStore) -> (Duration, Duration) {
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.sent, counts.pending, counts.failed),
        (SENT as u64, PENDING as u64, FAILED as u64)
    );
    let backlog = store.backlog().await.unwrap();
    assert_eq!(
        (backlog.pending, backlog.failed),
        (PENDING as u64, FAILED as u64)
    );
    let mut scrape = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        store.backlog().await.unwrap();
        scrape.push(started.elapsed());
    }
    let mut full = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        store.counts().await.unwrap();
        full.push(started.elapsed());
    }
    let (scrape, full) = (median(scrape), median(full));
    println!(
        "{name:<11} scrape (pending + failed, indexed): {:>8.2} ms   baseline (count every row): {:>8.2} ms   {:.1}x faster",
        scrape.as_secs_f64() * 1000.0,
        full.as_secs_f64() * 1000.0,
        full.as_secs_f64() / scrape.as_secs_f64()
    );
    (scrape, full)
}

async fn sqlite() {
    let scratch = Scratch::new("bench-metrics");
    let path = scratch.path().join("herald.db");
    let url = format!("sqlite://{}", path.display());
    let store = SqlStore::open(&url, scratch.path(), Schema::Migrate, None)
        .await
        .unwrap();
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let series = "(WITH RECURSIVE c(x) AS (SELECT {from} UNION ALL SELECT x + 1 FROM c WHERE x < {to}) SELECT x FROM c)";
    for (state, from, n) in [
        ("sent", 1, SENT),
        ("pending", 1, PENDING),
        ("failed", 1, FAILED),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(fill(state, from, n, series)))
            .execute(&pool)
            .await
            .unwrap();
    }
    sqlx::query("ANALYZE").execute(&pool).await.unwrap();
    measure("SQLite", &store).await;
}

async fn postgres() {
    let postgres = Postgres::shared();
    let db = postgres.database("metrics");
    let store = SqlStore::open(&db.url, std::path::Path::new("."), Schema::Migrate, None)
        .await
        .unwrap();
    let series = "generate_series({from}, {to}) AS x";
    for (state, from, n) in [
        ("sent", 1, SENT),
        ("pending", 1, PENDING),
        ("failed", 1, FAILED),
    ] {
        let sql = fill(state, from, n, series).replace("CAST('message' AS BLOB)", "'\\x00'::bytea");
        postgres.psql_in(&db.name, &sql);
    }
    // What autovacuum does to a table that has taken a million rows.
    postgres.psql_in(&db.name, "VACUUM ANALYZE outbox");
    measure("PostgreSQL", &store).await;
}

fn main() {
    // `cargo bench` passes `--bench`; this is not a criterion benchmark.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    println!(
        "/metrics against an outbox of {SENT} sent, {PENDING} pending and {FAILED} failed rows (median of 50 scrapes, 10 baseline counts):"
    );
    runtime.block_on(sqlite());
    runtime.block_on(postgres());
}

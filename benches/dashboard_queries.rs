//! What the dashboard's answers cost over a big store: 1,000,000 selected events, each with
//! its accounts, its rule's history row, one notice and its delivery attempt, on SQLite and on
//! PostgreSQL. Each figure is the median time of a real HTTP answer of `/api/v1` (the same
//! queries as the pages), measured in the same run against a baseline: one notification read
//! by its key (`/api/v1/outbox/{key}`, a primary-key lookup). Reports milliseconds and the
//! ratio to the baseline.
//!
//! Run: `scripts/bench --bench dashboard_queries`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use herald::dashboard::{Dashboard, DashboardConfig};
use herald::store::{Schema, SqlStore};
use support::Scratch;
use support::postgres::Postgres;

const EVENTS: i64 = 1_000_000;
/// Accounts the events are about: each has EVENTS / ACCOUNTS events.
const ACCOUNTS: i64 = 100_000;

/// The fill, with `{series}` the engine's way of counting 1..=EVENTS as `x` and `{blob}` its
/// way of writing a few bytes.
const FILL: &[&str] = &[
    "INSERT INTO events_seen (tenant, event_id, activity, event_time, source, first_seen, raw)
     SELECT 't1', 'e-' || x,
            CASE WHEN x % 100 = 0 THEN 'Update user' ELSE 'Reset user password' END,
            1700000000000 + x * 1000, 'bench', 1700000000000 + x * 1000, {blob}
     FROM {series}",
    "INSERT INTO event_accounts (account, tenant, event_id, event_time, first_seen)
     SELECT 'user' || (x % 100000) || '@contoso.com', 't1', 'e-' || x, 1700000000000 + x * 1000,
            1700000000000 + x * 1000
     FROM {series}",
    "INSERT INTO event_accounts (account, tenant, event_id, event_time, first_seen)
     SELECT 'user ' || (x % 100000), 't1', 'e-' || x, 1700000000000 + x * 1000,
            1700000000000 + x * 1000
     FROM {series}",
    "INSERT INTO history (tenant, event_id, rule, queued, created_at)
     SELECT 't1', 'e-' || x, 'reset', 1, 1700000000000 + x * 1000 FROM {series}",
    "INSERT INTO outbox (key, event_id, rule, channel, recipient, subject, message, state,
                         attempts, created_at, next_attempt_at, sent_at)
     SELECT 'k' || x, 'e-' || x, 'reset', 'email', 'user' || (x % 100000) || '@contoso.com',
            'Your password was reset', {blob},
            CASE WHEN x % 1000 = 0 THEN 'failed' ELSE 'sent' END, 1,
            1700000000000 + x * 1000, 1700000000000 + x * 1000, 1700000000000 + x * 1000
     FROM {series}",
    "INSERT INTO attempts (key, at, instance, outcome, reply, duration_ms)
     SELECT 'k' || x, 1700000000000 + x * 1000, 'herald-1', 'sent', '250 2.0.0 Ok: queued', 12
     FROM {series}",
];

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Serves the dashboard over `store` on a free port; its base URL and a bearer token.
async fn serve(store: SqlStore) -> (String, String) {
    let (token, hash) = herald::dashboard::session::new_token().unwrap();
    let config: DashboardConfig = toml::from_str(&format!(
        "tokens = [{{ name = \"bench\", role = \"viewer\", sha256 = \"{hash}\" }}]"
    ))
    .unwrap();
    let router = herald::dashboard::router(Dashboard {
        config,
        base: ".".into(),
        config_text: String::new(),
        store,
        readiness: Arc::new(herald::web::Readiness::default()),
        replayer: Arc::new(|_, _| Box::pin(async { Err("not in the benchmark".to_owned()) })),
        describer: Arc::new(|_| Vec::new()),
        silencer: herald::dashboard::Silencer {
            check: Arc::new(|_| Err("not in the benchmark".to_owned())),
            tell: Arc::new(|_| Vec::new()),
        },
        tls: false,
        app: None,
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, token)
}

async fn measure(name: &str, store: SqlStore) {
    let (base, token) = serve(store).await;
    let client = reqwest::Client::new();
    let time = |path: String, runs: usize| {
        let (client, token, base) = (client.clone(), token.clone(), base.clone());
        async move {
            let mut times = Vec::new();
            for i in 0..runs + 2 {
                let started = Instant::now();
                let response = client
                    .get(format!("{base}{path}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status().as_u16(), 200, "{path}");
                let body: serde_json::Value = response.json().await.unwrap();
                let elapsed = started.elapsed();
                assert!(!body.as_object().unwrap().is_empty());
                // The first two warm the caches.
                if i >= 2 {
                    times.push(elapsed);
                }
            }
            median(times)
        }
    };
    let baseline = time("/api/v1/outbox/k777777".into(), 50).await;
    let account = "user4242@contoso.com";
    let cases = [
        (
            "events of one account (UPN)",
            format!("/api/v1/events?account={account}"),
        ),
        (
            "events of one account (name)",
            "/api/v1/events?account=user%204242".to_owned(),
        ),
        ("newest events, a page", "/api/v1/events".to_owned()),
        (
            "events of a rare activity",
            "/api/v1/events?activity=Update%20user".to_owned(),
        ),
        (
            "an event's page",
            "/api/v1/event?tenant=t1&id=e-777777".to_owned(),
        ),
        ("newest notices, a page", "/api/v1/outbox".to_owned()),
        (
            "failed notices, a page",
            "/api/v1/outbox?state=failed".to_owned(),
        ),
        (
            "the next page of newest events",
            "/api/v1/events?cursor=1700500000000.652d353030303030.7431".to_owned(),
        ),
    ];
    println!(
        "{name}: baseline (one notification by its key): {:.2} ms",
        baseline.as_secs_f64() * 1000.0
    );
    for (what, path) in cases {
        let t = time(path, 20).await;
        println!(
            "{name}: {what:<32} {:>8.2} ms  {:>6.1}x the baseline",
            t.as_secs_f64() * 1000.0,
            t.as_secs_f64() / baseline.as_secs_f64()
        );
    }
}

async fn sqlite() {
    let scratch = Scratch::new("bench-dashboard");
    let path = scratch.path().join("herald.db");
    let url = format!("sqlite://{}", path.display());
    let store = SqlStore::open(&url, scratch.path(), Schema::Migrate, None)
        .await
        .unwrap();
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let started = Instant::now();
    let series = format!(
        "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {EVENTS}) SELECT x FROM c)"
    );
    for sql in FILL {
        let sql = sql
            .replace("{series}", &series)
            .replace("{blob}", "CAST('{}' AS BLOB)");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }
    sqlx::query("ANALYZE").execute(&pool).await.unwrap();
    println!("SQLite: filled in {:.0} s", started.elapsed().as_secs_f64());
    measure("SQLite", store).await;
}

async fn postgres() {
    let postgres = Postgres::shared();
    let db = postgres.database("dashboard");
    let store = SqlStore::open(&db.url, std::path::Path::new("."), Schema::Migrate, None)
        .await
        .unwrap();
    let started = Instant::now();
    let series = format!("generate_series(1, {EVENTS}) AS x");
    for sql in FILL {
        let sql = sql
            .replace("{series}", &series)
            .replace("{blob}", "'\\x7b7d'::bytea");
        postgres.psql_in(&db.name, &sql);
    }
    postgres.psql_in(&db.name, "VACUUM ANALYZE");
    println!(
        "PostgreSQL: filled in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    measure("PostgreSQL", store).await;
}

fn main() {
    // `cargo bench` passes `--bench`; this is not a criterion benchmark.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    println!(
        "The dashboard's API over {EVENTS} events and notices ({} events per account; median of 20 answers, 50 for the baseline):",
        EVENTS / ACCOUNTS
    );
    runtime.block_on(sqlite());
    runtime.block_on(postgres());
}

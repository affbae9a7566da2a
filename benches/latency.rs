//! End-to-end latency of one notice: a record POSTed to the HTTP source, one at a time, until a
//! real SMTP server (the tests' aiosmtpd) has accepted its notice. Real `herald run` processes:
//! one on SQLite, then two sharing a PostgreSQL store (each record POSTed to one of them in
//! turn). Reports p50 / p99 / max per configuration.
//!
//! The baseline is the tool Herald replaces: a Logic App that polls its trigger once a minute
//! waits 0–60 s for a record arriving at a random time (p50 30 s, p99 59.4 s). To compare with
//! another build of Herald in the same sitting (e.g. the dispatcher before it was woken by
//! commits), point `HERALD_LATENCY_BINARY` at that build's `herald`.
//!
//! Run: `scripts/bench --bench latency`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::postgres::Postgres;
use support::{Scratch, SmtpOptions, SmtpServer, free_port, request};

const RECORDS: usize = 500;

/// The `herald` measured.
fn binary() -> PathBuf {
    std::env::var_os("HERALD_LATENCY_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(support::HERALD))
}

struct Running {
    child: Child,
    ingest: u16,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `herald run` in `dir` on `store`, with an HTTP source and an SMTP channel.
fn start(dir: &Path, store: &str, smtp: &SmtpServer) -> Running {
    std::fs::create_dir_all(dir).unwrap();
    let (ingest, admin) = (free_port(), free_port());
    let config = dir.join("herald.toml");
    std::fs::write(
        &config,
        format!(
            r#"[admin]
listen = "127.0.0.1:{admin}"

[store]
url = "{store}"

[[source]]
kind = "http"
name = "ingest"
listen = "127.0.0.1:{ingest}"
auth = "none"

[channel.email]
kind = "smtp"
from = "security@contoso.com"
host = "127.0.0.1"
port = {smtp}
tls = "none"

[[rule]]
name = "password-reset"
activities = ["Reset user password"]
recipients = ["target"]
"#,
            smtp = smtp.port
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("herald.log")).unwrap();
    let child = Command::new(binary())
        .args(["run", "--config", config.to_str().unwrap()])
        .env("HERALD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let started = Instant::now();
    while request(admin, "GET", "/readyz", &[], b"").0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(60), "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    Running { child, ingest }
}

/// One password reset for user `i`, as an Event Hubs record.
fn record(template: &serde_json::Value, label: &str, i: usize) -> Vec<u8> {
    let mut r = template.clone();
    r["properties"]["id"] = format!("Directory_latency_{label}_{i:05}").into();
    r["properties"]["targetResources"][0]["userPrincipalName"] =
        format!("{label}{i:05}@contoso.com").into();
    serde_json::to_vec(&serde_json::json!({ "records": [r] })).unwrap()
}

/// POSTs `RECORDS` records one at a time, round robin over `instances`; each one's latency.
fn measure(label: &str, instances: &[Running], smtp: &SmtpServer) -> Vec<Duration> {
    let reset = support::reset_record();
    let before = smtp.messages().len();
    let mut latencies = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let body = record(&reset, label, i);
        let target = &instances[i % instances.len()];
        let sent = Instant::now();
        let json = ("Content-Type", "application/json");
        let (status, answer) = request(target.ingest, "POST", "/ingest", &[json], &body);
        assert_eq!(status, 200, "{answer}");
        while smtp.messages().len() < before + i + 1 {
            assert!(
                sent.elapsed() < Duration::from_secs(30),
                "record {i}: no notice"
            );
            std::thread::sleep(Duration::from_micros(500));
        }
        latencies.push(sent.elapsed());
    }
    latencies
}

fn report(label: &str, latencies: &mut [Duration]) -> f64 {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label:<36} {} records: p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms",
        latencies.len(),
        ms(at(0.50)),
        ms(at(0.99)),
        ms(*latencies.last().unwrap())
    );
    ms(at(0.99))
}

fn main() {
    // `cargo test --benches` runs benches with --bench absent: keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        println!("latency: skipped outside `cargo bench`");
        return;
    }
    println!("herald: {}", binary().display());
    let dir = Scratch::new("bench-latency");
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());

    let one = start(&dir.path().join("sqlite"), "sqlite://herald.db", &smtp);
    let p99_sqlite = report(
        "SQLite, one instance",
        &mut measure("s", std::slice::from_ref(&one), &smtp),
    );
    drop(one);

    let postgres = Postgres::shared();
    let db = postgres.database("latency");
    let two = [
        start(&dir.path().join("pg-a"), &db.url, &smtp),
        start(&dir.path().join("pg-b"), &db.url, &smtp),
    ];
    let p99_postgres = report("PostgreSQL, two instances", &mut measure("p", &two, &smtp));
    // A Logic App polling once a minute: a record waits for the next poll, uniformly 0-60 s.
    let (poll_p50, poll_p99) = (30_000.0, 59_400.0);
    println!(
        "{:<36} p50 {poll_p50:>6.0} ms  p99 {poll_p99:>6.0} ms (computed: a poll every 60 s)",
        "one-minute polling (the Logic App)"
    );
    println!(
        "p99 against one-minute polling: SQLite {:.4}x, PostgreSQL {:.4}x",
        p99_sqlite / poll_p99,
        p99_postgres / poll_p99
    );
}

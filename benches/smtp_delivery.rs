//! End-to-end delivery throughput to a real SMTP server process (aiosmtpd on loopback), with
//! pooled, concurrent connections beside one connection sending one message at a time (the
//! baseline, measured in the same run).
//!
//! Rate = messages / (last `sent_at` − first `sent_at`) from the outbox, so decoding and
//! rendering are not counted, only delivery.
//!
//! Run: `cargo bench --bench smtp_delivery` (needs what `scripts/test` installs).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use support::{Scratch, SmtpOptions, SmtpServer, fixture, herald};

const MESSAGES: usize = 2_000;

fn run(label: &str, concurrency: usize, pool: usize) -> f64 {
    let dir = Scratch::new(&format!("bench-smtp-{label}"));
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    let activities = std::fs::read_to_string(fixture("activities.ndjson")).unwrap();
    let reset: serde_json::Value = activities
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["properties"]["activityDisplayName"] == "Reset user password")
        .unwrap();
    let mut stream = String::new();
    for i in 0..MESSAGES {
        let mut r = reset.clone();
        r["properties"]["id"] = format!("Directory_bench_{i:06}").into();
        r["properties"]["targetResources"][0]["userPrincipalName"] =
            format!("user{i:05}@contoso.com").into();
        stream.push_str(&serde_json::to_string(&r).unwrap());
        stream.push('\n');
    }
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    std::fs::write(dir.path().join("in/stream.ndjson"), stream).unwrap();
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        format!(
            "[[source]]\nkind = \"file\"\nname = \"in\"\npath = \"in\"\n\n[channel.email]\nkind = \"smtp\"\nfrom = \"s@contoso.com\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nconcurrency = {concurrency}\npool_size = {pool}\n\n[[rule]]\nname = \"reset\"\nactivities = [\"Reset user password\"]\nrecipients = [\"target\"]\n",
            smtp.port
        ),
    )
    .unwrap();
    let out = herald(
        &[
            "run",
            "--once",
            "--log-format",
            "json",
            "--config",
            config.to_str().unwrap(),
        ],
        Duration::from_secs(600),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(smtp.messages().len(), MESSAGES);
    let list = herald(
        &[
            "outbox",
            "list",
            "--format",
            "json",
            "--limit",
            "100000",
            "--config",
            config.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    let sent: Vec<i64> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["sent_at"]
                .as_i64()
                .unwrap()
        })
        .collect();
    let span = (sent.iter().max().unwrap() - sent.iter().min().unwrap()).max(1) as f64 / 1000.0;
    let rate = MESSAGES as f64 / span;
    println!("{label:<28} {MESSAGES} messages in {span:.2} s = {rate:.0} messages/s");
    rate
}

fn main() {
    // `cargo test --benches` runs benches with --bench absent: keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        println!("smtp_delivery: skipped outside `cargo bench`");
        return;
    }
    let serial = run("1 connection, 1 at a time", 1, 1);
    let pooled = run("8 pooled connections", 8, 8);
    let wide = run("16 pooled connections", 16, 16);
    println!(
        "ratio pooled(8)/serial = {:.2}x, pooled(16)/serial = {:.2}x",
        pooled / serial,
        wide / serial
    );
}

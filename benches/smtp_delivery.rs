//! End-to-end delivery throughput to a real SMTP server process on loopback, with pooled,
//! concurrent connections beside one connection sending one message at a time (the baseline,
//! measured in the same run against the same server).
//!
//! Two servers: the tests' aiosmtpd (Python, one thread: it spends about 0.9 ms of CPU on each
//! message, so it caps what any client can reach on this machine) and Postfix's `smtp-sink` (C,
//! made for benchmarking SMTP clients), which leaves the measurement to Herald. Each server's
//! CPU time is printed beside the rate, to show which side is the bottleneck.
//!
//! Rate = messages / (last `sent_at` − first `sent_at`) from the outbox, so decoding and
//! rendering are not counted, only delivery.
//!
//! Run: `scripts/bench --bench smtp_delivery` (fetches `smtp-sink`; without it, only aiosmtpd).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::Duration;

use support::sink::SmtpSink;
use support::{Scratch, SmtpOptions, SmtpServer, cpu_seconds, herald};

const MESSAGES: usize = 2_000;

enum Server {
    Aiosmtpd,
    Sink(PathBuf),
}

fn run(label: &str, server: &Server, concurrency: usize, pool: usize) -> f64 {
    let slug: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let dir = Scratch::new(&format!("bench-smtp-{slug}"));
    let (port, pid, received): (u16, u32, Box<dyn Fn() -> usize>) = match server {
        Server::Aiosmtpd => {
            let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
            let (port, pid) = (smtp.port, smtp.pid());
            (port, pid, Box::new(move || smtp.messages().len()))
        }
        Server::Sink(binary) => {
            let sink = SmtpSink::start(binary, dir.path());
            let (port, pid) = (sink.port, sink.child.id());
            (port, pid, Box::new(move || sink.received()))
        }
    };
    let reset = support::reset_record();
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
            "[[source]]\nkind = \"file\"\nname = \"in\"\npath = \"in\"\n\n[channel.email]\nkind = \"smtp\"\nfrom = \"s@contoso.com\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nconcurrency = {concurrency}\npool_size = {pool}\n\n[[rule]]\nname = \"reset\"\nactivities = [\"Reset user password\"]\nrecipients = [\"target\"]\n",
        ),
    )
    .unwrap();
    let server_cpu = cpu_seconds(pid);
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
    let server_cpu = cpu_seconds(pid) - server_cpu;
    assert_eq!(received(), MESSAGES);
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
    println!(
        "{label:<40} {MESSAGES} messages in {span:.2} s = {rate:>5.0} messages/s (server CPU {:.2} ms/message)",
        server_cpu * 1000.0 / MESSAGES as f64
    );
    rate
}

fn main() {
    // `cargo test --benches` runs benches with --bench absent: keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        println!("smtp_delivery: skipped outside `cargo bench`");
        return;
    }
    let mut servers = vec![("aiosmtpd", Server::Aiosmtpd)];
    match std::env::var_os("HERALD_SMTP_SINK") {
        Some(sink) => servers.push(("smtp-sink", Server::Sink(sink.into()))),
        None => println!("smtp-sink: skipped (HERALD_SMTP_SINK unset; scripts/bench sets it)"),
    }
    for (name, server) in &servers {
        let serial = run(&format!("{name}: 1 connection, 1 at a time"), server, 1, 1);
        let pooled = run(&format!("{name}: 8 pooled connections"), server, 8, 8);
        let wide = run(&format!("{name}: 16 pooled connections"), server, 16, 16);
        println!(
            "{name}: ratio pooled(8)/serial = {:.2}x, pooled(16)/serial = {:.2}x",
            pooled / serial,
            wide / serial
        );
    }
}

//! Intake throughput from a pre-filled Kafka topic (tansu, 3 partitions) through decode, rules
//! and planning into the SQLite store, beside the file source reading the same records in the
//! same run (the baseline).
//!
//! 50,000 records in Event Hubs messages of 50 (`{"records":[…]}`), 1% password resets that a
//! rule selects; `herald run --once` with a file channel. Kafka's time is counted from the
//! partition assignment (joining the group is not intake), the file source's from the start;
//! both until exit, so both include delivering the same 500 notifications. The consumer asks the
//! broker not to hold fetches (`fetch.wait.max.ms = 10`, 10 MiB per partition): with librdkafka's
//! defaults tansu answered slowly enough to make the run 5x longer with the broker mostly idle.
//!
//! Run: `scripts/bench --bench kafka_intake` (needs what `scripts/test` installs).

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::kafka::{self, Broker, TOPIC};
use support::{HERALD, Scratch, cpu_seconds};

const MESSAGES: usize = 1_000;
const PER_MESSAGE: usize = 50;

fn config(dir: &Path, source: &str) -> std::path::PathBuf {
    let path = dir.join("herald.toml");
    std::fs::write(
        &path,
        format!(
            "[store]\nurl = \"sqlite://herald.db\"\n\n[[source]]\n{source}\n\n[channel.email]\nkind = \"file\"\nfrom = \"s@contoso.com\"\ndir = \"mail\"\n\n[[rule]]\nname = \"reset\"\nactivities = [\"Reset user password\"]\nrecipients = [\"target\"]\n"
        ),
    )
    .unwrap();
    path
}

/// Runs `herald run --once`; returns seconds from `from` (a log line, or the start) to exit.
fn run(config: &Path, from: Option<&str>) -> f64 {
    let started = Instant::now();
    let mut child = Command::new(HERALD)
        .args(["run", "--once", "--config", config.to_str().unwrap()])
        .env("HERALD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut mark = None;
    for line in BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        if mark.is_none() && from.is_some_and(|f| line.contains(f)) {
            mark = Some(Instant::now());
        }
    }
    assert!(child.wait().unwrap().success());
    let end = Instant::now();
    end.duration_since(mark.unwrap_or(started)).as_secs_f64()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("kafka_intake: skipped outside `cargo bench`");
        return;
    }
    let (messages, _) = kafka::mixed_messages("bench", MESSAGES, PER_MESSAGE, 100, 3);
    let bytes: usize = messages.iter().map(|(_, m)| m.len()).sum();
    let total = (MESSAGES * PER_MESSAGE) as f64;

    // Baseline: the file source over the same records, one Event Hubs message per line.
    let dir = Scratch::new("bench-intake-file");
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let mut stream = Vec::with_capacity(bytes + MESSAGES);
    for (_, m) in &messages {
        stream.extend_from_slice(m);
        stream.push(b'\n');
    }
    std::fs::write(dir.path().join("in/stream.ndjson"), &stream).unwrap();
    let file = run(
        &config(dir.path(), "kind = \"file\"\nname = \"in\"\npath = \"in\""),
        None,
    );

    let dir = Scratch::new("bench-intake-kafka");
    let broker = Broker::start(dir.path());
    broker.create_topic(TOPIC, 3);
    broker.produce(TOPIC, &messages);
    std::thread::sleep(Duration::from_millis(500));
    let broker_cpu = cpu_seconds(broker.pid());
    let kafka = run(
        &config(
            dir.path(),
            &format!(
                "kind = \"kafka\"\nname = \"entra\"\nbrokers = \"{}\"\ntopic = \"{TOPIC}\"\noptions = {{ \"fetch.wait.max.ms\" = \"10\", \"max.partition.fetch.bytes\" = \"10485760\" }}",
                broker.address()
            ),
        ),
        Some("partitions assigned"),
    );
    let broker_cpu = cpu_seconds(broker.pid()) - broker_cpu;
    let mail = std::fs::read_dir(dir.path().join("mail")).unwrap().count();
    assert_eq!(mail, MESSAGES * PER_MESSAGE / 100, "every notification");

    let mib = bytes as f64 / (1024.0 * 1024.0);
    println!(
        "{total:.0} records, {mib:.1} MiB in {MESSAGES} messages of {PER_MESSAGE}, 1% selected"
    );
    println!(
        "file source:  {file:.2} s = {:>7.0} records/s (baseline)",
        total / file
    );
    println!(
        "kafka source: {kafka:.2} s = {:>7.0} records/s = {:.2}x the file source (broker CPU meanwhile: {broker_cpu:.2} s)",
        total / kafka,
        file / kafka
    );
}

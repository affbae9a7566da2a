//! Throughput of 1, 2 and 3 Herald instances in one consumer group sharing one PostgreSQL
//! store, measured in the same run on the same machine, end to end: audit records produced to
//! the topic → read, matched, queued → delivered to an SMTP server.
//!
//! Each round has a fresh database, topic (6 partitions) and group. The instances are started
//! and ready (each has partitions) before the records are produced; the clock runs from the
//! first record produced to the last message the SMTP server accepted. 20,000 records in Event
//! Hubs messages of 50, a quarter of them password resets a rule selects: 5,000 messages. The
//! CPU each process used (Herald instances, broker, PostgreSQL, SMTP server) is printed beside
//! the rate, to show where the time goes.
//!
//! Run: `scripts/bench --bench scale_out` (needs what `scripts/test` installs; with Postfix's
//! `smtp-sink`, which `scripts/bench` provides, the SMTP server is not the bottleneck).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::instance::Instance;
use support::kafka::{self, Broker};
use support::postgres::Postgres;
use support::sink::{self, SmtpSink};
use support::{Scratch, SmtpOptions, SmtpServer, cpu_seconds};

const MESSAGES: usize = 400;
const PER_MESSAGE: usize = 50;
const PARTITIONS: i32 = 6;

/// The audit messages, and how many notifications they should produce.
fn messages() -> (Vec<(i32, Vec<u8>)>, usize) {
    kafka::mixed_messages("scale", MESSAGES, PER_MESSAGE, 4, PARTITIONS)
}

/// CPU seconds of a PostgreSQL cluster: the postmaster and every backend it started.
fn postgres_cpu(postmaster: u32) -> f64 {
    let mut total = cpu_seconds(postmaster);
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if parent == Some(postmaster) {
            total += cpu_seconds(pid);
        }
    }
    total
}

/// The SMTP server of a round: `smtp-sink` when available, else the tests' aiosmtpd.
enum Smtp {
    Sink(SmtpSink),
    Aiosmtpd(SmtpServer),
}

impl Smtp {
    fn port(&self) -> u16 {
        match self {
            Smtp::Sink(s) => s.port,
            Smtp::Aiosmtpd(s) => s.port,
        }
    }
    fn pid(&self) -> u32 {
        match self {
            Smtp::Sink(s) => s.child.id(),
            Smtp::Aiosmtpd(s) => s.pid(),
        }
    }
    fn received(&self) -> usize {
        match self {
            Smtp::Sink(s) => s.received(),
            Smtp::Aiosmtpd(s) => s.messages().len(),
        }
    }
}

struct Round {
    seconds: f64,
    produce_seconds: f64,
    herald_cpu: f64,
    broker_cpu: f64,
    postgres_cpu: f64,
    smtp_cpu: f64,
}

fn round(instances: usize, postgres: &Postgres, broker: &Broker) -> Round {
    let dir = Scratch::new(&format!("bench-scale-{instances}"));
    let smtp = match sink::binary() {
        Some(binary) => Smtp::Sink(SmtpSink::start(&binary, dir.path())),
        None => Smtp::Aiosmtpd(SmtpServer::start(dir.path(), SmtpOptions::default())),
    };
    let db = postgres.database(&format!("scale{instances}"));
    let topic = format!("audit-{instances}");
    broker.create_topic(&topic, PARTITIONS as u32);
    let config = format!(
        r#"
[store]
url = "{url}"

[[source]]
kind = "kafka"
name = "entra"
brokers = "{brokers}"
topic = "{topic}"
group = "bench-{instances}"
options = {{ "fetch.wait.max.ms" = "10", "max.partition.fetch.bytes" = "10485760" }}
{email}"#,
        url = db.url,
        brokers = broker.address(),
        email = support::email_rule(smtp.port(), "", "Reset user password"),
    );
    let heralds: Vec<Instance> = (0..instances)
        .map(|i| Instance::start(&dir.path().join(format!("h{i}")), &config))
        .collect();
    for h in &heralds {
        h.wait_ready(200, "has partitions");
    }
    let (messages, expected) = messages();

    let cpu = |heralds: &[Instance]| {
        (
            heralds.iter().map(|h| cpu_seconds(h.pid())).sum::<f64>(),
            cpu_seconds(broker.pid()),
            postgres_cpu(postgres.pid().unwrap()),
            cpu_seconds(smtp.pid()),
        )
    };
    let before = cpu(&heralds);
    let started = Instant::now();
    broker.produce(&topic, &messages);
    let produce_seconds = started.elapsed().as_secs_f64();
    while smtp.received() < expected {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{} of {expected} messages after 10 minutes",
            smtp.received()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let seconds = started.elapsed().as_secs_f64();
    let after = cpu(&heralds);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(smtp.received(), expected, "every notification once");
    Round {
        seconds,
        produce_seconds,
        herald_cpu: after.0 - before.0,
        broker_cpu: after.1 - before.1,
        postgres_cpu: after.2 - before.2,
        smtp_cpu: after.3 - before.3,
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("scale_out: skipped outside `cargo bench`");
        return;
    }
    let dir = Scratch::new("bench-scale");
    // A cluster of the bench's own (durable commits, as in production), for CPU accounting.
    let postgres = Postgres::own();
    let broker = Broker::start(dir.path());
    let (_, expected) = messages();
    let records = MESSAGES * PER_MESSAGE;
    println!(
        "{records} records in {MESSAGES} messages over {PARTITIONS} partitions, {expected} selected; SMTP server: {}; {} CPUs",
        if sink::binary().is_some() {
            "smtp-sink"
        } else {
            "aiosmtpd"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut one = None;
    for instances in 1..=3 {
        let r = round(instances, &postgres, &broker);
        let rate = records as f64 / r.seconds;
        let base = *one.get_or_insert(rate);
        println!(
            "{instances} instance(s): {:.2} s = {rate:>6.0} records/s, {:>5.0} messages/s = {:.2}x one instance (producing took {:.2} s); CPU s: herald {:.2}, broker {:.2}, postgres {:.2}, smtp {:.2} = {:.2} of {:.2} available",
            r.seconds,
            expected as f64 / r.seconds,
            rate / base,
            r.produce_seconds,
            r.herald_cpu,
            r.broker_cpu,
            r.postgres_cpu,
            r.smtp_cpu,
            r.herald_cpu + r.broker_cpu + r.postgres_cpu + r.smtp_cpu,
            r.seconds * std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
        );
    }
}

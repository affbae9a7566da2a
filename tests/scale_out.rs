//! Several Herald instances sharing one PostgreSQL store: real `herald run` processes, a real
//! broker (tansu), a real PostgreSQL and a real SMTP server. An instance killed mid-run, an
//! instance frozen while it holds claims, and the database restarting under a running
//! instance: every expected message arrives, and only the documented window may repeat one.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use support::instance::Instance;
use support::kafka::{self, Broker, TOPIC, audit_messages};
use support::postgres::Postgres;
use support::{Scratch, SmtpOptions, SmtpServer, email_to, fixture, request};

/// A configuration on the PostgreSQL store `db`, reading `source`, sending through `smtp`.
fn config(db: &str, source: &str, smtp: &SmtpServer, delivery: &str, channel: &str) -> String {
    format!(
        r#"
[store]
url = "{db}"
{source}
[delivery]
initial_backoff = "100ms"
max_backoff = "500ms"
{delivery}
{email}"#,
        email = email_to(smtp, channel),
    )
}

fn all_logs(instances: &[&Instance]) -> String {
    instances
        .iter()
        .enumerate()
        .map(|(i, h)| format!("--- instance {i}:\n{}\n", h.logs()))
        .collect()
}

/// Waits until `condition` holds (up to `limit`).
fn eventually(limit: Duration, what: &str, condition: impl Fn() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn three_instances_deliver_every_event_once_through_a_kill_and_a_restart() {
    let dir = Scratch::new("scale-three");
    let postgres = Postgres::shared();
    let db = postgres.database("three");
    let broker = Broker::start(dir.path());
    broker.create_topic(TOPIC, 6);
    let smtp = SmtpServer::start(
        dir.path(),
        SmtpOptions {
            delay_ms: 2,
            ..SmtpOptions::default()
        },
    );
    // A short lease, so the killed instance's claims are taken over within the test.
    let text = config(
        &db.url,
        &kafka::source(&broker, "herald"),
        &smtp,
        "lease = \"10s\"",
        "",
    );
    let mut instances: Vec<Instance> = ["a", "b", "c"]
        .iter()
        .map(|name| Instance::start(&dir.path().join(name), &text))
        .collect();
    for (i, h) in instances.iter().enumerate() {
        h.wait_ready(200, &format!("instance {i} has partitions"));
    }

    let (messages, expected) = audit_messages("s", 500, 10, 6);
    assert_eq!(expected.len(), 5_000);
    broker.produce(TOPIC, &messages);

    // Mid-run: kill -9 one instance, and restart it later (as a supervisor would).
    let logs = |instances: &[Instance]| all_logs(&instances.iter().collect::<Vec<_>>());
    eventually(Duration::from_secs(120), "1,000 messages", || {
        smtp.messages().len() >= 1_000
    });
    instances[1].kill();
    let at_kill = smtp.messages().len();
    std::thread::sleep(Duration::from_secs(7));
    instances[1].restart();

    smtp.wait_for(expected.len(), &|| logs(&instances));
    // Stragglers: a taken-over claim (lease 10 s) or a re-read batch would show by now.
    std::thread::sleep(Duration::from_secs(12));
    let duplicates = smtp.duplicates_among(&expected);
    let sent = postgres_count(postgres, &db.name, "state = 'sent'");
    eprintln!(
        "three instances: {} events, kill -9 at {at_kill} received; received {}, duplicates {duplicates}, outbox sent {sent}",
        expected.len(),
        smtp.messages().len()
    );
    assert_eq!(sent, 5_000, "one outbox row per notification");
    // The documented window: what the killed instance had handed to the relay but not yet
    // recorded, at most its in-flight sends (the channel's concurrency, 8).
    assert!(duplicates <= 8, "{duplicates} duplicates");
    let senders = instances
        .iter()
        .filter(|h| h.logs().contains("sent"))
        .count();
    assert_eq!(
        senders,
        3,
        "every instance sent some:\n{}",
        logs(&instances)
    );
}

/// Counts outbox rows matching `filter` in database `name`.
fn postgres_count(postgres: &Postgres, name: &str, filter: &str) -> usize {
    let out = postgres.psql_in(name, &format!("SELECT count(*) FROM outbox WHERE {filter}"));
    out.parse().unwrap_or_else(|_| panic!("count: {out}"))
}

/// Password resets for `count` users in one newline-delimited file.
fn resets(path: &Path, prefix: &str, count: usize) -> BTreeSet<String> {
    let activities = std::fs::read_to_string(fixture("activities.ndjson")).unwrap();
    let reset: serde_json::Value = activities
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["properties"]["activityDisplayName"] == "Reset user password")
        .unwrap();
    let mut text = String::new();
    let mut users = BTreeSet::new();
    for i in 0..count {
        let mut record = reset.clone();
        let user = format!("{prefix}-{i:03}@contoso.com");
        record["properties"]["id"] = format!("Directory_{prefix}_{i:03}").into();
        record["properties"]["targetResources"][0]["userPrincipalName"] = user.clone().into();
        text.push_str(&serde_json::to_string(&record).unwrap());
        text.push('\n');
        users.insert(user);
    }
    std::fs::write(path, text).unwrap();
    users
}

#[test]
fn a_frozen_instance_does_not_send_what_another_took_over() {
    let dir = Scratch::new("scale-frozen");
    let postgres = Postgres::shared();
    let db = postgres.database("frozen");
    // New connections wait 1.5 s for the relay's greeting: claims are held, unsent, that long.
    let smtp = SmtpServer::start(
        dir.path(),
        SmtpOptions {
            greeting_delay_ms: 1_500,
            ..SmtpOptions::default()
        },
    );
    let audit = dir.path().join("audit.json");
    let expected = resets(&audit, "f", 40);
    let source = format!(
        "\n[[source]]\nkind = \"file\"\nname = \"entra\"\npath = \"{}\"\n",
        audit.display()
    );
    // A send may begin within 3 s of its claim (half the lease): time enough for the greeting.
    let text = config(
        &db.url,
        &source,
        &smtp,
        "lease = \"6s\"",
        "concurrency = 4\ntimeout = \"60s\"",
    );
    let a = Instance::start(&dir.path().join("a"), &text);
    a.wait_ready(200, "a migrated the store and started");
    let claimed_by_a = format!("claimed_by LIKE '%-{}' AND state = 'pending'", a.pid());
    eventually(Duration::from_secs(30), "a claims notifications", || {
        postgres_count(postgres, &db.name, &claimed_by_a) > 0
    });
    a.signal("STOP");
    let held = postgres.psql_in(
        &db.name,
        &format!("SELECT key FROM outbox WHERE {claimed_by_a} ORDER BY key"),
    );
    let held: Vec<&str> = held.lines().collect();
    assert!(!held.is_empty() && held.len() <= 4, "{held:?}");
    assert_eq!(smtp.messages().len(), 0, "a froze before greeting");

    // b sends the rest, then a's rows once a's lease has run out.
    let b = Instance::start(&dir.path().join("b"), &text);
    smtp.wait_for(expected.len(), &|| all_logs(&[&a, &b]));
    eventually(Duration::from_secs(30), "every row sent", || {
        postgres_count(postgres, &db.name, "state = 'sent'") == expected.len()
    });

    // a wakes up with its claims' time long gone: it must give them up, not send them.
    a.signal("CONT");
    eventually(
        Duration::from_secs(30),
        "a gives up its stale claims",
        || a.logs().matches("the claim ran short").count() >= held.len(),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        smtp.duplicates_among(&expected),
        0,
        "a sent what b took over:\n{}",
        all_logs(&[&a, &b])
    );
    assert_eq!(smtp.messages().len(), expected.len());
    for key in &held {
        assert!(
            a.logs().contains(&format!("key={key}")),
            "a's log names {key}"
        );
    }
}

#[test]
fn a_database_restart_pauses_intake_and_loses_nothing() {
    let dir = Scratch::new("scale-db-restart");
    // A cluster of this test's own: it is stopped and started again.
    let postgres = Postgres::own();
    let db = postgres.database("restart");
    let broker = Broker::start(dir.path());
    broker.create_topic(TOPIC, 3);
    let smtp = SmtpServer::start(
        dir.path(),
        SmtpOptions {
            delay_ms: 5,
            ..SmtpOptions::default()
        },
    );
    let text = config(
        &db.url,
        &kafka::source(&broker, "herald"),
        &smtp,
        "lease = \"20s\"",
        "",
    );
    let h = Instance::start(&dir.path().join("a"), &text);
    h.wait_ready(200, "assigned");
    let (first, mut expected) = audit_messages("r1", 100, 10, 3);
    broker.produce(TOPIC, &first);
    eventually(Duration::from_secs(60), "the first messages", || {
        smtp.messages().len() >= 100
    });

    postgres.stop();
    h.wait_ready(503, "database down");
    let (_, why) = request(h.admin, "GET", "/readyz", &[], b"");
    assert!(why.contains("store unreachable"), "{why}");
    // Audit records keep arriving while the database is away.
    let (second, more) = audit_messages("r2", 100, 10, 3);
    broker.produce(TOPIC, &second);
    expected.extend(more);
    // The batch in hand waits for the database (each attempt gives up after the pool's 5 s).
    eventually(Duration::from_secs(30), "intake pauses", || {
        h.logs().contains("intake paused")
    });

    postgres.start();
    h.wait_ready(200, "database back");
    smtp.wait_for(expected.len(), &|| h.logs());
    std::thread::sleep(Duration::from_secs(2));
    let duplicates = smtp.duplicates_among(&expected);
    assert_eq!(duplicates, 0, "{}", h.logs());
    let (_, metrics) = request(h.admin, "GET", "/metrics", &[], b"");
    assert!(
        metrics.contains("herald_store_errors_total{operation=\"commit\"}"),
        "{metrics}"
    );
}

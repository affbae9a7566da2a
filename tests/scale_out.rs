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
use support::{Scratch, SmtpOptions, SmtpServer, email_to, request};

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
        "timeout = \"3s\"",
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
    let reset = support::reset_record();
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
    // New connections wait 1 s for the relay's greeting: claims are held, unsent, that long.
    let smtp = SmtpServer::start(
        dir.path(),
        SmtpOptions {
            greeting_delay_ms: 1_000,
            ..SmtpOptions::default()
        },
    );
    let audit = dir.path().join("audit.json");
    let expected = resets(&audit, "f", 40);
    let source = format!(
        "\n[[source]]\nkind = \"file\"\nname = \"entra\"\npath = \"{}\"\n",
        audit.display()
    );
    // A send may begin within 6 s of its claim (half the lease): time enough for the greeting.
    // The lease is three times the channel's timeout, as the configuration requires.
    let text = config(
        &db.url,
        &source,
        &smtp,
        "lease = \"12s\"",
        "concurrency = 4\ntimeout = \"4s\"",
    );
    let a = Instance::start(&dir.path().join("a"), &text);
    a.wait_ready(200, "a migrated the store and started");
    // Only a runs yet: every claim is a's.
    let claimed_by_a = "claimed_by IS NOT NULL AND state = 'pending'";
    eventually(Duration::from_secs(30), "a claims notifications", || {
        postgres_count(postgres, &db.name, claimed_by_a) > 0
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
    let b_started = Instant::now();
    smtp.wait_for(expected.len(), &|| all_logs(&[&a, &b]));
    eprintln!(
        "frozen instance: its {} claims were sent by the other {:.1} s after that one started (lease 12 s)",
        held.len(),
        b_started.elapsed().as_secs_f64()
    );
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
    // Two sources at once: the broker, and a followed directory of files (its checkpoints are
    // read on every poll).
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let mut expected = resets(&files.join("first.json"), "f1", 100);
    let file_source = format!(
        "\n[[source]]\nkind = \"file\"\nname = \"files\"\npath = \"{}\"\nfollow = true\npoll_interval = \"100ms\"\n",
        files.display()
    );
    let text = config(
        &db.url,
        &format!("{}{file_source}", kafka::source(&broker, "herald")),
        &smtp,
        "lease = \"90s\"",
        "",
    );
    let mut h = Instance::start(&dir.path().join("a"), &text);
    h.wait_ready(200, "assigned");
    let (first, more) = audit_messages("r1", 100, 10, 3);
    expected.extend(more);
    broker.produce(TOPIC, &first);
    eventually(Duration::from_secs(60), "the first messages", || {
        smtp.messages().len() >= 150
    });

    // 20 s without the database, in the middle of both replays.
    postgres.stop();
    let stopped = Instant::now();
    h.wait_ready(503, "database down");
    let (_, why) = request(h.admin, "GET", "/readyz", &[], b"");
    assert!(why.contains("store unreachable"), "{why}");
    // Audit records keep arriving while the database is away, by both ways.
    let (second, more) = audit_messages("r2", 100, 10, 3);
    broker.produce(TOPIC, &second);
    expected.extend(more);
    expected.extend(resets(&files.join("second.json"), "f2", 100));
    // The batch in hand waits for the database (each attempt gives up after the pool's 5 s).
    eventually(Duration::from_secs(30), "intake pauses", || {
        h.logs().contains("intake paused")
    });
    while stopped.elapsed() < Duration::from_secs(20) {
        assert!(
            h.running(),
            "Herald exited without its store:\n{}",
            h.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    postgres.start();
    h.wait_ready(200, "database back");
    smtp.wait_for(expected.len(), &|| h.logs());
    std::thread::sleep(Duration::from_secs(2));
    assert!(h.running(), "{}", h.logs());
    let duplicates = smtp.duplicates_among(&expected);
    eprintln!(
        "database down 20 s: {} notices expected, {} received, duplicates {duplicates}",
        expected.len(),
        smtp.messages().len()
    );
    // Outcomes of sends made just before the outage wait in memory and are recorded once the
    // database is back: nothing is sent again.
    assert_eq!(duplicates, 0, "{}", h.logs());
    let (_, metrics) = request(h.admin, "GET", "/metrics", &[], b"");
    assert!(
        metrics.contains("herald_store_errors_total{operation=\"commit\"}"),
        "{metrics}"
    );
}

/// The keys of the pending rows instance `name` holds.
fn held_keys(postgres: &Postgres, db: &str, name: &str) -> Vec<String> {
    let out = postgres.psql_in(
        db,
        &format!("SELECT key FROM outbox WHERE claimed_by = '{name}' AND state = 'pending'"),
    );
    out.lines().map(str::to_owned).collect()
}

/// Whether every row of `keys` is sent.
fn all_sent(postgres: &Postgres, db: &str, keys: &[String]) -> bool {
    let list: Vec<String> = keys.iter().map(|k| format!("'{k}'")).collect();
    keys.is_empty()
        || postgres_count(
            postgres,
            db,
            &format!("state = 'sent' AND key IN ({})", list.join(", ")),
        ) == keys.len()
}

/// An SMTP server whose every message takes `delay_ms` to be accepted.
fn slow_smtp(dir: &Path, delay_ms: u64) -> SmtpServer {
    SmtpServer::start(
        dir,
        SmtpOptions {
            delay_ms,
            ..SmtpOptions::default()
        },
    )
}

/// A file source over `count` password resets written into `dir`; the expected recipients.
fn reset_source(dir: &Path, prefix: &str, count: usize) -> (String, BTreeSet<String>) {
    let audit = dir.join(format!("{prefix}.json"));
    let expected = resets(&audit, prefix, count);
    let source = format!(
        "\n[[source]]\nkind = \"file\"\nname = \"entra\"\npath = \"{}\"\n",
        audit.display()
    );
    (source, expected)
}

#[test]
fn an_instance_whose_clock_runs_two_minutes_ahead_takes_no_row_another_is_sending() {
    let dir = Scratch::new("scale-skew");
    let postgres = Postgres::shared();
    let db = postgres.database("skew");
    // A slow relay: each send holds its claim for a while, long enough for a thief.
    let smtp = slow_smtp(dir.path(), 150);
    let (source, expected) = reset_source(dir.path(), "k", 60);
    let text = config(
        &db.url,
        &source,
        &smtp,
        "lease = \"6s\"",
        "concurrency = 4\ntimeout = \"2s\"",
    );
    let a = Instance::start(&dir.path().join("a"), &text);
    a.wait_ready(200, "a started");
    // b lives two minutes in the future: by its own clock, every lease a holds ran out long
    // ago, and every row it queues is not due for two minutes.
    let b = Instance::start_under(
        &dir.path().join("b"),
        &text,
        &[],
        &["faketime", "-f", "+2m"],
    );
    b.wait_ready(200, "b started");
    smtp.wait_for(expected.len(), &|| all_logs(&[&a, &b]));
    eventually(Duration::from_secs(30), "every row sent", || {
        postgres_count(postgres, &db.name, "state = 'sent'") == expected.len()
    });
    std::thread::sleep(Duration::from_secs(2));
    let duplicates = smtp.duplicates_among(&expected);
    // b's clock really was ahead: the time its log shows.
    let first_line = b.logs().lines().next().unwrap_or_default().to_owned();
    let b_time: jiff::Timestamp = first_line
        .split_whitespace()
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("b's log begins with a time: {first_line}"));
    let ahead = b_time.as_second() - jiff::Timestamp::now().as_second();
    assert!(ahead > 90, "b's clock is {ahead} s ahead: {first_line}");
    let sent_by = |h: &Instance| h.logs().matches(" sent ").count();
    eprintln!(
        "clock skew +2m: {} notices, a sent {}, b sent {}, duplicates {duplicates}",
        expected.len(),
        sent_by(&a),
        sent_by(&b)
    );
    assert_eq!(duplicates, 0, "{}", all_logs(&[&a, &b]));
    assert!(
        sent_by(&a) > 0 && sent_by(&b) > 0,
        "{}",
        all_logs(&[&a, &b])
    );
}

#[test]
fn a_killed_instance_frees_its_claims_when_it_restarts_or_within_one_lease() {
    let dir = Scratch::new("scale-killed");
    let postgres = Postgres::shared();

    // 1. A long lease (5 minutes), so only a release at restart can free the claims in time.
    let db = postgres.database("killed_restart");
    let smtp = slow_smtp(&dir.path().join("smtp1"), 250);
    let (source, expected) = reset_source(dir.path(), "r", 200);
    let text = config(&db.url, &source, &smtp, "lease = \"5m\"", "concurrency = 4");
    let mut a = Instance::start_with(&dir.path().join("a"), &text, &["--instance", "a"]);
    a.wait_ready(200, "a started");
    let b = Instance::start_with(&dir.path().join("b"), &text, &["--instance", "b"]);
    b.wait_ready(200, "b started");
    let held_by_a = "claimed_by = 'a' AND state = 'pending'";
    eventually(Duration::from_secs(60), "a is sending", || {
        smtp.messages().len() >= 20 && postgres_count(postgres, &db.name, held_by_a) > 0
    });
    a.kill();
    let held = held_keys(postgres, &db.name, "a");
    assert!(!held.is_empty(), "a held claims when it was killed");
    a.restart();
    let restarted = Instant::now();
    eventually(Duration::from_secs(60), "a's old claims released", || {
        a.logs().contains("released the claims of a previous run")
    });
    let released = restarted.elapsed();
    eventually(Duration::from_secs(60), "a's old claims sent", || {
        all_sent(postgres, &db.name, &held)
    });
    let held_sent = restarted.elapsed();
    eventually(Duration::from_secs(60), "every notice sent", || {
        postgres_count(postgres, &db.name, "state = 'sent'") == expected.len()
    });
    std::thread::sleep(Duration::from_secs(1));
    let duplicates = smtp.duplicates_among(&expected);
    eprintln!(
        "kill -9 and restart: the {} notices a held at the kill were free to send {:.1} s after its restart and sent {:.1} s after it, behind the backlog (lease 5 min); duplicates {duplicates}",
        held.len(),
        released.as_secs_f64(),
        held_sent.as_secs_f64()
    );
    assert!(
        a.logs().contains("released the claims of a previous run"),
        "{}",
        a.logs()
    );
    // At most what a had handed to the relay and not recorded: its concurrency.
    assert!(duplicates <= 4, "{duplicates} duplicates");
    // A second process under a's name is refused: it would take a's claims for its own.
    let mut twin = Instance::start_with(&dir.path().join("twin"), &text, &["--instance", "a"]);
    assert_eq!(
        twin.exited_within(Duration::from_secs(45)),
        Some(1),
        "a second instance named a must not start:\n{}",
        twin.logs()
    );
    assert!(
        twin.logs()
            .contains("another running instance has this name"),
        "{}",
        twin.logs()
    );
    drop((a, b));

    // 2. An instance that never comes back: its claims run out after one lease (6 s here).
    let db = postgres.database("killed_gone");
    let smtp = slow_smtp(&dir.path().join("smtp2"), 250);
    let (source, expected) = reset_source(dir.path(), "g", 200);
    let text = config(
        &db.url,
        &source,
        &smtp,
        "lease = \"6s\"",
        "concurrency = 4\ntimeout = \"2s\"",
    );
    let mut c = Instance::start_with(&dir.path().join("c"), &text, &["--instance", "c"]);
    c.wait_ready(200, "c started");
    let d = Instance::start_with(&dir.path().join("d"), &text, &["--instance", "d"]);
    d.wait_ready(200, "d started");
    let held_by_c = "claimed_by = 'c' AND state = 'pending'";
    eventually(Duration::from_secs(60), "c is sending", || {
        smtp.messages().len() >= 20 && postgres_count(postgres, &db.name, held_by_c) > 0
    });
    c.kill();
    let killed = Instant::now();
    let held = held_keys(postgres, &db.name, "c");
    assert!(!held.is_empty(), "c held claims when it was killed");
    eventually(Duration::from_secs(60), "c's claims run out", || {
        !held_keys(postgres, &db.name, "c")
            .iter()
            .any(|k| held.contains(k))
    });
    let taken_over = killed.elapsed();
    eventually(Duration::from_secs(60), "c's claims sent by d", || {
        all_sent(postgres, &db.name, &held)
    });
    let held_sent = killed.elapsed();
    eventually(Duration::from_secs(60), "every notice sent", || {
        postgres_count(postgres, &db.name, "state = 'sent'") == expected.len()
    });
    std::thread::sleep(Duration::from_secs(1));
    let duplicates = smtp.duplicates_among(&expected);
    eprintln!(
        "kill -9, no restart: the {} notices c held were taken over by d {:.1} s after the kill and sent {:.1} s after it (lease 6 s); duplicates {duplicates}",
        held.len(),
        taken_over.as_secs_f64(),
        held_sent.as_secs_f64()
    );
    assert!(duplicates <= 4, "{duplicates} duplicates");
    drop(d);
}

/// On PostgreSQL a commit that queues notices wakes every instance's dispatcher (`NOTIFY`), not
/// only the one in the process that made it. Here the idle poll is a minute: a notice made
/// pending again by another process (`herald outbox retry`) goes out at once only if that
/// process's commit woke the running instance.
#[test]
fn a_notice_queued_by_one_process_wakes_another_instance_at_once() {
    let dir = Scratch::new("scale-notify");
    let postgres = Postgres::shared();
    let db = postgres.database("notify");
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    smtp.script(&["550"]);
    let (source, expected) = reset_source(dir.path(), "n", 1);
    let text = config(&db.url, &source, &smtp, "poll = \"60s\"", "");
    let a = Instance::start(&dir.path().join("a"), &text);
    a.wait_ready(200, "a started");
    // a's own commit woke it: the notice was tried at once, and refused for good.
    eventually(Duration::from_secs(20), "the notice failed", || {
        postgres_count(postgres, &db.name, "state = 'failed'") == 1
    });
    let started = Instant::now();
    let out = support::herald(
        &[
            "outbox",
            "retry",
            "--failed",
            "--config",
            a.config.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0), "{}", support::text(&out.stderr));
    // Well inside a's minute-long poll.
    eventually(
        Duration::from_secs(20),
        "the retried notice arrived",
        || smtp.messages().len() == 1,
    );
    eprintln!(
        "a notice made pending by another process was sent {:.3} s later (poll 60 s)",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(smtp.duplicates_among(&expected), 0, "{}", a.logs());
}

/// A SQLite store's data files (the database and its write-ahead log) made immutable
/// (`chattr +i`) until dropped, also when a test fails, so its scratch directory can be
/// removed: every write fails, as on a full disk. The `-shm` index stays writable: SQLite maps
/// it into memory, and a page of it that could not be written would kill the process with
/// SIGBUS, which is the kernel's doing, not a store outage Herald could wait out.
struct Immutable(std::path::PathBuf);

impl Immutable {
    const FILES: [&str; 2] = ["herald.db", "herald.db-wal"];

    fn set(store: &Path) -> Immutable {
        let guard = Immutable(store.to_owned());
        guard.chattr("+i");
        guard
    }

    fn chattr(&self, flag: &str) {
        for name in Self::FILES {
            let status = std::process::Command::new("chattr")
                .arg(flag)
                .arg(self.0.join(name))
                .status()
                .expect("chattr (e2fsprogs; scripts/test installs it)");
            assert!(
                status.success(),
                "chattr {flag} {name}: this test needs a filesystem with attributes (ext4)"
            );
        }
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for name in Self::FILES {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(self.0.join(name))
                .status();
        }
    }
}

/// The SQLite twin of the database restart: the store's data files made immutable (`chattr
/// +i`: every write fails, as on a full disk) for 20 s in the middle of a Kafka and a
/// followed-directory replay. The store still answers reads, so `/readyz` learns of it from the
/// commits that fail.
#[test]
fn an_unwritable_sqlite_store_pauses_intake_and_loses_nothing() {
    let dir = Scratch::new("scale-sqlite-unwritable");
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let broker = Broker::start(dir.path());
    broker.create_topic(TOPIC, 3);
    let smtp = slow_smtp(dir.path(), 5);
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let mut expected = resets(&files.join("first.json"), "u1", 100);
    let file_source = format!(
        "\n[[source]]\nkind = \"file\"\nname = \"files\"\npath = \"{}\"\nfollow = true\npoll_interval = \"100ms\"\n",
        files.display()
    );
    let text = config(
        &format!("sqlite://{}", store.join("herald.db").display()),
        &format!("{}{file_source}", kafka::source(&broker, "herald")),
        &smtp,
        "",
        "",
    );
    let mut h = Instance::start(&dir.path().join("a"), &text);
    h.wait_ready(200, "assigned");
    let (first, more) = audit_messages("w1", 100, 10, 3);
    expected.extend(more);
    broker.produce(TOPIC, &first);
    eventually(Duration::from_secs(60), "the first messages", || {
        smtp.messages().len() >= 150
    });

    let unwritable = Immutable::set(&store);
    let stopped = Instant::now();
    let (second, more) = audit_messages("w2", 100, 10, 3);
    broker.produce(TOPIC, &second);
    expected.extend(more);
    expected.extend(resets(&files.join("second.json"), "u2", 100));
    // A writer may wait out SQLite's busy timeout (30 s) for a lock before its error shows.
    eventually(Duration::from_secs(75), "intake pauses", || {
        h.logs().contains("intake paused")
    });
    let (status, why) = request(h.admin, "GET", "/readyz", &[], b"");
    assert_eq!(status, 503, "{why}");
    assert!(why.contains("store unreachable"), "{why}");
    while stopped.elapsed() < Duration::from_secs(20) {
        assert!(
            h.running(),
            "Herald exited without its store:\n{}",
            h.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(unwritable);
    h.wait_ready(200, "the store takes writes again");
    smtp.wait_for(expected.len(), &|| h.logs());
    std::thread::sleep(Duration::from_secs(2));
    assert!(h.running(), "{}", h.logs());
    let duplicates = smtp.duplicates_among(&expected);
    eprintln!(
        "SQLite unwritable 20 s: {} notices expected, {} received, duplicates {duplicates}",
        expected.len(),
        smtp.messages().len()
    );
    assert_eq!(duplicates, 0, "{}", h.logs());
}

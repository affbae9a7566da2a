//! The crash test (ARCHITECTURE.md §2.1–2.2): thousands of audit records through `herald run` with the
//! file source and a real SMTP server, the process killed with SIGKILL at random moments and
//! restarted each time. Every expected message must arrive; the only duplicates allowed are
//! those of the documented window (a kill between "the server accepted" and "marked sent"),
//! so at most one per message in flight per kill. The counts are printed.

mod support;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{HERALD, Scratch, SmtpOptions, SmtpServer, email_to, fixture};

const RECORDS: usize = 5_000;
const EVERY: usize = 8; // one record in EVERY is a password reset for its own user
const FILES: usize = 20;
const KILLS: usize = 10;
const CONCURRENCY: usize = 4;

/// Writes the stream: FILES newline-delimited files of audit records, about one in eight a
/// "Reset user password" for a distinct user; returns the expected recipients.
fn write_stream(dir: &std::path::Path) -> BTreeSet<String> {
    let activities = std::fs::read_to_string(fixture("activities.ndjson")).unwrap();
    let records: Vec<serde_json::Value> = activities
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let reset = records
        .iter()
        .find(|r| r["properties"]["activityDisplayName"] == "Reset user password")
        .unwrap();
    let noise: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["properties"]["activityDisplayName"] != "Reset user password")
        .collect();
    let mut expected = BTreeSet::new();
    let mut files: Vec<String> = vec![String::new(); FILES];
    for i in 0..RECORDS {
        let mut record = if i % EVERY == 0 {
            let mut r = reset.clone();
            let upn = format!("user{i:05}@contoso.com");
            r["properties"]["targetResources"][0]["userPrincipalName"] = upn.clone().into();
            expected.insert(upn);
            r
        } else {
            noise[i % noise.len()].clone()
        };
        record["properties"]["id"] = format!("Directory_crash_{i:06}").into();
        files[i * FILES / RECORDS].push_str(&serde_json::to_string(&record).unwrap());
        files[i * FILES / RECORDS].push('\n');
    }
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    for (n, text) in files.iter().enumerate() {
        std::fs::write(input.join(format!("audit-{n:03}.ndjson")), text).unwrap();
    }
    expected
}

#[test]
fn killed_and_restarted_herald_delivers_everything_once_outside_the_window() {
    let dir = Scratch::new("crash");
    let smtp = SmtpServer::start(
        dir.path(),
        SmtpOptions {
            delay_ms: 5,
            ..SmtpOptions::default()
        },
    );
    let expected = write_stream(dir.path());
    assert!(expected.len() >= 500);
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[store]
url = "sqlite://herald.db"

[[source]]
kind = "file"
name = "in"
path = "in"

[delivery]
initial_backoff = "100ms"
max_backoff = "500ms"
{}"#,
            email_to(
                &smtp,
                &format!("concurrency = {CONCURRENCY}\npool_size = {CONCURRENCY}")
            )
        ),
    )
    .unwrap();

    let run = || {
        Command::new(HERALD)
            .args(["run", "--once", "--config", config.to_str().unwrap()])
            .env("HERALD_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };

    // Kill it at random moments; count only kills that hit a running process.
    let mut kills = 0;
    let mut attempts = 0;
    while kills < KILLS {
        attempts += 1;
        assert!(
            attempts < 200,
            "herald kept finishing before it could be killed"
        );
        let mut child = run();
        std::thread::sleep(Duration::from_millis(150 + fastrand::u64(..600)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    let received_before_last_run = smtp.messages().len();

    // Then let it finish.
    let started = Instant::now();
    let status = run().wait().unwrap();
    assert!(status.success());

    let by_recipient = smtp.count_by("X-Envelope-To:");
    let by_message_id = smtp.count_by("Message-ID:");
    let received: BTreeSet<String> = by_recipient.keys().cloned().collect();
    let missing: Vec<_> = expected.difference(&received).collect();
    let unexpected: Vec<_> = received.difference(&expected).collect();
    let duplicates: usize = by_recipient.values().map(|n| n - 1).sum();
    let messages: usize = by_recipient.values().sum();
    eprintln!(
        "crash test: {RECORDS} records, {} expected messages, {kills} SIGKILLs ({attempts} starts), \
         {received_before_last_run} received before the final run, final run {:.1}s; \
         received {messages}, missing {}, unexpected {}, duplicates {duplicates} (allowed at most {} = kills x in-flight)",
        expected.len(),
        started.elapsed().as_secs_f64(),
        missing.len(),
        unexpected.len(),
        KILLS * CONCURRENCY
    );
    assert!(missing.is_empty(), "lost: {missing:?}");
    assert!(unexpected.is_empty(), "unexpected: {unexpected:?}");
    assert!(duplicates <= KILLS * CONCURRENCY, "{duplicates} duplicates");
    // Every duplicate is a resend of the same message, which receivers can drop by its ID.
    assert_eq!(by_message_id.len(), expected.len());
}

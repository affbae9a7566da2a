//! Durable delivery against a real SMTP server process: retries, permanent failures, an
//! outage, giving up, STARTTLS with AUTH, restarts that resume, and dead letters kept.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::instance::Instance;
use support::{Scratch, SmtpOptions, SmtpServer, fixture, herald, herald_with_env, text};

const LIMIT: Duration = Duration::from_secs(60);

/// Writes a configuration that reads `DIR/in` and mails through the test server.
fn setup(
    dir: &Path,
    smtp: &SmtpServer,
    channel_extra: &str,
    delivery: &str,
    inputs: &[&str],
) -> PathBuf {
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    for name in inputs {
        std::fs::copy(fixture(name), input.join(name)).unwrap();
    }
    let config = dir.join("herald.toml");
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

[admin]
listen = "127.0.0.1:0"

[delivery]
initial_backoff = "100ms"
max_backoff = "400ms"
{delivery}

[channel.email]
kind = "smtp"
from = "Contoso Security <security@contoso.com>"
host = "127.0.0.1"
port = {port}
timeout = "5s"
{channel_extra}

[[rule]]
name = "password-reset"
activities = ["Reset user password"]
results = ["success"]
recipients = ["target"]
importance = "high"
"#,
            port = smtp.port
        ),
    )
    .unwrap();
    config
}

fn run_once(config: &Path) -> std::process::Output {
    let out = herald(
        &["run", "--once", "--config", config.to_str().unwrap()],
        LIMIT,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "herald run --once failed:\n{}",
        text(&out.stderr)
    );
    out
}

/// `herald run --once` where a notification ends `failed`: it exits 1 and says how many.
fn run_once_failing(config: &Path) -> std::process::Output {
    let out = herald(
        &["run", "--once", "--config", config.to_str().unwrap()],
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed notice exits 1:\n{stderr}"
    );
    assert!(
        stderr.contains("herald: 1 notifications failed in this run"),
        "{stderr}"
    );
    out
}

fn outbox(config: &Path) -> Vec<serde_json::Value> {
    support::outbox_rows(config, None)
}

#[test]
fn transient_replies_are_retried_and_the_message_arrives_once() {
    let dir = Scratch::new("retry-451");
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    smtp.script(&["451", "451"]);
    let config = setup(
        dir.path(),
        &smtp,
        "tls = \"none\"",
        "",
        &["envelope-reset-password.json"],
    );
    run_once(&config);
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].contains("X-Envelope-To: adele.vance@contoso.com"));
    let rows = outbox(&config);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["state"], "sent");
    assert_eq!(rows[0]["attempts"], 3);
    let key = rows[0]["key"].as_str().unwrap();
    assert!(messages[0].contains(&format!("Message-ID: <{key}@contoso.com>")));

    // `outbox show` answers "what happened to this notice": every attempt with the relay's
    // reply, and the message's headers (its body only when asked).
    let show = |extra: &[&str]| {
        let mut args = vec!["outbox", "show", key, "--config", config.to_str().unwrap()];
        args.extend(extra);
        let out = herald(&args, LIMIT);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let shown = show(&[]);
    let attempts: Vec<&str> = shown.lines().filter(|l| l.contains(" ms  ")).collect();
    assert_eq!(attempts.len(), 3, "{shown}");
    assert!(
        attempts[0].contains("retry") && attempts[0].contains("(451): 4.3.0 Temporary failure"),
        "{shown}"
    );
    assert!(
        attempts[1].contains("retry") && attempts[1].contains("451"),
        "{shown}"
    );
    assert!(
        attempts[2].contains("sent") && attempts[2].contains("250 2.0.0 OK queued"),
        "{shown}"
    );
    assert!(shown.contains("state:      sent"), "{shown}");
    assert!(
        shown.contains(&format!("Message-ID: <{key}@contoso.com>")),
        "{shown}"
    );
    assert!(
        !shown.contains("Content-Transfer-Encoding: quoted-printable"),
        "no body without --body:\n{shown}"
    );
    assert!(show(&["--body"]).contains("Content-Transfer-Encoding: quoted-printable"));
    let json: serde_json::Value = serde_json::from_str(&show(&["--format", "json"])).unwrap();
    assert_eq!(
        json["attempts_recorded"].as_array().unwrap().len(),
        3,
        "{json}"
    );
    assert_eq!(json["attempts_recorded"][2]["outcome"], "sent");
    let missing = herald(
        &[
            "outbox",
            "show",
            "nope",
            "--config",
            config.to_str().unwrap(),
        ],
        LIMIT,
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("no notification with key \"nope\""));
}

#[test]
fn a_permanent_reply_fails_at_once_with_the_reply_kept() {
    let dir = Scratch::new("fail-550");
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    smtp.script(&["550"]);
    let config = setup(
        dir.path(),
        &smtp,
        "tls = \"none\"",
        "",
        &["envelope-reset-password.json"],
    );
    run_once_failing(&config);
    assert!(smtp.messages().is_empty());
    let rows = outbox(&config);
    assert_eq!(rows[0]["state"], "failed");
    assert_eq!(rows[0]["attempts"], 1);
    assert!(
        rows[0]["last_error"].as_str().unwrap().contains("550"),
        "{}",
        rows[0]
    );

    // An operator retries it once the cause is fixed.
    let out = herald(
        &[
            "outbox",
            "retry",
            "--failed",
            "--config",
            config.to_str().unwrap(),
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0));
    run_once(&config);
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(outbox(&config)[0]["state"], "sent");
}

#[test]
fn a_dropped_connection_is_transient() {
    let dir = Scratch::new("drop");
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    smtp.script(&["drop"]);
    let config = setup(
        dir.path(),
        &smtp,
        "tls = \"none\"",
        "",
        &["envelope-reset-password.json"],
    );
    run_once(&config);
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(outbox(&config)[0]["attempts"], 2);
}

#[test]
fn a_server_outage_delays_delivery_and_loses_nothing() {
    let dir = Scratch::new("outage");
    let mut smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    smtp.stop();
    let config = setup(
        dir.path(),
        &smtp,
        "tls = \"none\"",
        "",
        &["envelope-reset-password.json", "two-user-targets.json"],
    );
    let child = std::process::Command::new(support::HERALD)
        .args(["run", "--once", "--config", config.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    smtp.restart();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(smtp.messages().len(), 1);
    let rows = outbox(&config);
    assert_eq!(
        rows[0]["attempts"], 1,
        "a relay that is down costs no attempt (the channel paused): {}",
        rows[0]
    );
    assert!(
        text(&out.stderr).contains("channel paused: cannot connect to the relay"),
        "{}",
        text(&out.stderr)
    );
}

/// Writes `DIR/in/backlog.json`: one envelope of `n` password resets, each for its own user;
/// returns the users.
fn write_backlog(dir: &Path, prefix: &str, n: usize) -> std::collections::BTreeSet<String> {
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let (messages, recipients) = support::kafka::audit_messages(prefix, 1, n, 1);
    std::fs::write(input.join("backlog.json"), &messages[0].1).unwrap();
    recipients
}

/// Waits (up to a minute) until `/readyz` answers with a body for which `want` holds.
fn wait_for_readyz(herald: &Instance, what: &str, want: impl Fn(u16, &str) -> bool) -> String {
    let started = std::time::Instant::now();
    loop {
        let (status, body) = support::request(herald.admin, "GET", "/readyz", &[], b"");
        if want(status, &body) {
            return body;
        }
        assert!(
            started.elapsed() < LIMIT,
            "/readyz never showed {what} (last: {status} {body:?}); log:\n{}",
            herald.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A relay that refuses the connection itself (`AUTH` answered `535`, the greeting `554`) says
/// nothing about the messages: the channel pauses, every notice stays pending with no attempt
/// counted (and is not failed by `max_age` meanwhile), `/readyz` and the metric name the
/// channel and why, and once the relay is fixed every notice arrives once.
#[test]
fn a_relay_refusing_the_credentials_or_the_connection_pauses_the_channel_and_loses_nothing() {
    for (how, cause) in [
        ("auth", "the relay refused the credentials (SMTP 535)"),
        ("greeting", "the relay refused the connection (SMTP 554)"),
    ] {
        let dir = Scratch::new(&format!("pause-{how}"));
        let smtp = SmtpServer::start(
            dir.path(),
            SmtpOptions {
                auth: Some(("herald".into(), "pw".into())),
                ..SmtpOptions::default()
            },
        );
        smtp.refuse(Some(how));
        let recipients = write_backlog(dir.path(), how, 20);
        let herald = Instance::start(
            dir.path(),
            &format!(
                r#"
[store]
url = "sqlite://herald.db"

[[source]]
kind = "file"
name = "in"
path = "in"

[delivery]
initial_backoff = "100ms"
max_backoff = "400ms"
max_age = "2s"

[channel.email]
kind = "smtp"
from = "security@contoso.com"
host = "127.0.0.1"
port = {port}
tls = "none"
username = "herald"
password = "pw"
timeout = "5s"

[[rule]]
name = "password-reset"
activities = ["Reset user password"]
recipients = ["target"]
"#,
                port = smtp.port
            ),
        );
        let body = wait_for_readyz(&herald, "the pause", |status, body| {
            status == 200 && body.contains("channel email: paused:")
        });
        assert!(
            body.contains(&format!("channel email: paused: {cause}")),
            "{body}"
        );
        assert!(!body.contains("127.0.0.1"), "no host in /readyz: {body}");
        let (_, metrics) = support::request(herald.admin, "GET", "/metrics", &[], b"");
        assert!(
            metrics.contains("herald_channel_paused{channel=\"email\"} 1"),
            "{metrics}"
        );
        // Longer than max_age and several probes: the backlog is neither sent nor failed, and
        // no attempt is counted against any notice.
        std::thread::sleep(Duration::from_secs(4));
        let rows = support::outbox_rows(&herald.config, None);
        assert_eq!(rows.len(), 20, "{rows:?}");
        for row in &rows {
            assert_eq!(
                (row["state"].as_str(), row["attempts"].as_i64()),
                (Some("pending"), Some(0)),
                "{row}"
            );
        }
        assert!(smtp.messages().is_empty());
        let logs = herald.logs();
        assert_eq!(
            logs.matches("channel paused").count(),
            1,
            "paused once, not per message:\n{logs}"
        );
        assert!(
            logs.contains("channel still paused"),
            "it was probed:\n{logs}"
        );

        smtp.refuse(None);
        smtp.wait_for(20, &|| herald.logs());
        wait_for_readyz(&herald, "the channel resumed", |status, body| {
            status == 200 && !body.contains("paused")
        });
        assert_eq!(smtp.duplicates_among(&recipients), 0);
        let (_, metrics) = support::request(herald.admin, "GET", "/metrics", &[], b"");
        assert!(
            metrics.contains("herald_channel_paused{channel=\"email\"} 0"),
            "{metrics}"
        );
        let rows = support::outbox_rows(&herald.config, None);
        for row in &rows {
            assert_eq!(
                (row["state"].as_str(), row["attempts"].as_i64()),
                (Some("sent"), Some(1)),
                "{row}"
            );
        }
        assert!(herald.logs().contains("channel resumed"));
    }
}

#[test]
fn a_notification_that_keeps_failing_is_failed_after_max_age() {
    let dir = Scratch::new("max-age");
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    smtp.script(&["451"; 50]);
    let config = setup(
        dir.path(),
        &smtp,
        "tls = \"none\"",
        "max_age = \"1s\"",
        &["envelope-reset-password.json"],
    );
    run_once_failing(&config);
    assert!(smtp.messages().is_empty());
    let rows = outbox(&config);
    assert_eq!(rows[0]["state"], "failed");
    let error = rows[0]["last_error"].as_str().unwrap();
    assert!(
        error.contains("max_age") && error.contains("451"),
        "{error}"
    );
}

#[test]
fn starttls_and_auth_with_the_password_from_the_environment() {
    let dir = Scratch::new("starttls");
    let secret = "s3cr3t-Pa55";
    let smtp = SmtpServer::start(
        dir.path(),
        SmtpOptions {
            tls: true,
            auth: Some(("herald".into(), secret.into())),
            ..SmtpOptions::default()
        },
    );
    let extra = format!(
        "tls = \"starttls\"\nca_file = \"{}\"\nusername = \"herald\"\npassword = {{ env = \"HERALD_TEST_SMTP_PASSWORD\" }}",
        smtp.ca_file().display()
    );
    let config = setup(
        dir.path(),
        &smtp,
        &extra,
        "",
        &["envelope-reset-password.json"],
    );
    let out = herald_with_env(
        &[
            "run",
            "--once",
            "--log-format",
            "json",
            "--config",
            config.to_str().unwrap(),
        ],
        &[
            ("HERALD_TEST_SMTP_PASSWORD", secret),
            ("HERALD_LOG", "debug,html5ever=info"),
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(smtp.messages().len(), 1, "{}", text(&out.stderr));
    let logs = text(&out.stderr);
    assert!(logs.contains("\"level\":\"DEBUG\""), "debug logging was on");
    assert!(
        !logs.contains(secret),
        "the password never reaches the logs"
    );
    assert!(
        !logs.contains("AUTH"),
        "nor does the SMTP exchange that carries it"
    );

    // Without the variable the configuration is refused, naming the variable, not a value.
    let out = herald(
        &["run", "--once", "--config", config.to_str().unwrap()],
        LIMIT,
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("HERALD_TEST_SMTP_PASSWORD is not set"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn implicit_tls_trusts_the_configured_authority_and_nothing_else() {
    let dir = Scratch::new("implicit-tls");
    let smtp = SmtpServer::start(
        dir.path(),
        SmtpOptions {
            tls: true,
            implicit_tls: true,
            auth: Some(("herald".into(), "pw".into())),
            ..SmtpOptions::default()
        },
    );
    let trusted = format!(
        "tls = \"tls\"\nca_file = \"{}\"\nusername = \"herald\"\npassword = {{ env = \"HERALD_TEST_SMTP_PASSWORD\" }}",
        smtp.ca_file().display()
    );
    let config = setup(
        dir.path(),
        &smtp,
        &trusted,
        "max_age = \"1s\"",
        &["envelope-reset-password.json"],
    );
    let run = |config: &Path, code: i32| {
        let out = herald_with_env(
            &["run", "--once", "--config", config.to_str().unwrap()],
            &[("HERALD_TEST_SMTP_PASSWORD", "pw")],
            LIMIT,
        );
        assert_eq!(out.status.code(), Some(code), "{}", text(&out.stderr));
    };
    run(&config, 0);
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].contains("Subject:"), "{}", messages[0]);

    // The same server without its authority configured: the certificate is refused, nothing is
    // sent in the clear, and the failure says why.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let untrusted = setup(
        &other,
        &smtp,
        "tls = \"tls\"\nusername = \"herald\"\npassword = { env = \"HERALD_TEST_SMTP_PASSWORD\" }",
        "max_age = \"1s\"",
        &["envelope-reset-password.json"],
    );
    // A relay's certificate is the relay's failure, not the message's: the channel pauses, the
    // notice stays pending for the next run, and `--once` gives up on the channel and says so.
    let out = herald_with_env(
        &["run", "--once", "--config", untrusted.to_str().unwrap()],
        &[("HERALD_TEST_SMTP_PASSWORD", "pw")],
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("herald: channel email is paused: TLS with the relay failed")
            && stderr.contains("herald: 1 notifications are still pending"),
        "{stderr}"
    );
    assert_eq!(smtp.messages().len(), 1, "nothing more arrived");
    let rows = outbox(&untrusted);
    assert_eq!(
        (rows[0]["state"].as_str(), rows[0]["attempts"].as_i64()),
        (Some("pending"), Some(0))
    );
    let error = rows[0]["last_error"].as_str().unwrap();
    assert!(error.contains("certificate"), "{error}");
}

#[test]
fn a_restart_resumes_where_it_stopped_and_redelivery_sends_once() {
    let dir = Scratch::new("resume");
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    let config = setup(
        dir.path(),
        &smtp,
        "tls = \"none\"",
        "",
        &["envelope-reset-password.json"],
    );
    run_once(&config);
    assert_eq!(smtp.messages().len(), 1);

    // Nothing new: nothing re-read, nothing sent.
    let out = run_once(&config);
    assert!(
        !text(&out.stderr).contains("committed"),
        "a finished file is not read again"
    );
    assert_eq!(smtp.messages().len(), 1);

    // Appended records are read from the saved offset; the same event again (a redelivery in
    // another file) adds nothing.
    let log = dir.path().join("in/stream.ndjson");
    let record = std::fs::read_to_string(fixture("quirks.ndjson")).unwrap();
    let first_line = record.lines().next().unwrap();
    std::fs::write(&log, format!("{first_line}\n")).unwrap();
    run_once(&config);
    assert_eq!(smtp.messages().len(), 2);
    std::fs::copy(&log, dir.path().join("in/stream-copy.ndjson")).unwrap();
    run_once(&config);
    assert_eq!(
        smtp.messages().len(),
        2,
        "the redelivered event is not sent twice"
    );
}

#[test]
fn dead_letters_are_kept_and_can_be_shown() {
    let dir = Scratch::new("dead-letters");
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    let config = setup(
        dir.path(),
        &smtp,
        "tls = \"none\"",
        "",
        &["dead-letters.ndjson"],
    );
    run_once(&config);
    assert_eq!(
        smtp.messages().len(),
        1,
        "the good Reset user password record goes on"
    );
    let c = config.to_str().unwrap();
    let list = text(&herald(&["dead-letters", "list", "--config", c], LIMIT).stdout);
    assert_eq!(list.lines().count(), 5, "{list}");
    assert!(
        list.lines()
            .any(|l| l.contains("line 2: record is not a JSON object")),
        "{list}"
    );
    let first_id = list
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let shown = text(&herald(&["dead-letters", "show", "--config", c, first_id], LIMIT).stdout);
    assert!(
        shown.contains("position: line 2") && shown.trim_end().ends_with("42"),
        "{shown}"
    );
    // Replaying input that is still bad keeps the entry as it was — same id, position, first
    // reason — with the replay's outcome added.
    let out = herald(&["dead-letters", "replay", "--config", c, first_id], LIMIT);
    assert_eq!(out.status.code(), Some(1));
    let list = text(&herald(&["dead-letters", "list", "--config", c], LIMIT).stdout);
    assert_eq!(list.lines().count(), 5, "{list}");
    let shown = text(&herald(&["dead-letters", "show", "--config", c, first_id], LIMIT).stdout);
    assert!(
        shown.contains(&format!("id:       {first_id}\n"))
            && shown.contains("position: line 2")
            && shown.contains("reason:   record is not a JSON object")
            && shown.contains("resolved: no"),
        "{shown}"
    );
    let replays: Vec<&str> = shown.lines().filter(|l| l.starts_with("replay:")).collect();
    assert_eq!(replays.len(), 1, "{shown}");
    assert!(replays[0].contains("replayed: still unusable"), "{shown}");

    // Resolved by hand: kept, shown as resolved, and left alone by `replay --all`.
    let out = herald(&["dead-letters", "resolve", "--config", c, first_id], LIMIT);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = text(&herald(&["dead-letters", "list", "--config", c], LIMIT).stdout);
    assert_eq!(list.lines().count(), 5, "{list}");
    let first = list.lines().next().unwrap();
    assert!(first.contains("resolved"), "{list}");
    assert_eq!(
        list.lines().filter(|l| l.contains("resolved")).count(),
        1,
        "{list}"
    );
    herald(&["dead-letters", "replay", "--all", "--config", c], LIMIT);
    let shown = text(&herald(&["dead-letters", "show", "--config", c, first_id], LIMIT).stdout);
    assert_eq!(
        shown.lines().filter(|l| l.starts_with("replay:")).count(),
        1,
        "a resolved entry is not replayed again:\n{shown}"
    );
}

#[test]
fn sigterm_stops_cleanly_and_one_sqlite_store_has_one_runner() {
    let dir = Scratch::new("sigterm");
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    let config = setup(
        dir.path(),
        &smtp,
        "tls = \"none\"",
        "",
        &["envelope-reset-password.json"],
    );
    let mut service = std::process::Command::new(support::HERALD)
        .args(["run", "--config", config.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while smtp.messages().is_empty() {
        assert!(started.elapsed() < LIMIT, "the service never delivered");
        std::thread::sleep(Duration::from_millis(50));
    }

    let second = herald(
        &["run", "--once", "--config", config.to_str().unwrap()],
        LIMIT,
    );
    assert_ne!(second.status.code(), Some(0));
    assert!(
        text(&second.stderr).contains("another `herald run` is using this SQLite store"),
        "{}",
        text(&second.stderr)
    );

    let term = std::process::Command::new("kill")
        .args(["-TERM", &service.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = service.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");
    assert_eq!(smtp.messages().len(), 1);
}

/// Quoted-printable, as the notices' text parts are sent: `=XX` bytes and `=` line ends.
fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Display names that carry `\r.\r\n` and SMTP commands (control-characters.json) cannot end
/// the message or start another: the server receives one message, whose text parts are
/// quoted-printable and show the names on one line, without control characters.
#[test]
fn control_characters_in_audit_fields_never_reach_the_smtp_transaction() {
    let dir = Scratch::new("control-characters");
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    let config = setup(
        dir.path(),
        &smtp,
        "tls = \"none\"",
        "",
        &["control-characters.json"],
    );
    run_once(&config);
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "one message and nothing else");
    let message = &messages[0];
    assert!(
        message.contains("Auto-Submitted: auto-generated")
            && message.contains("X-Auto-Response-Suppress: All"),
        "{message}"
    );
    for line in message.lines() {
        assert!(
            !line.starts_with("MAIL FROM")
                && !line.starts_with("RCPT TO")
                && !line.starts_with("Subject: forged")
                && line != "."
                && line != "DATA",
            "a raw line from an audit field: {line:?}\n{message}"
        );
    }
    assert_eq!(
        message
            .matches("Content-Transfer-Encoding: quoted-printable")
            .count(),
        2,
        "both text parts are quoted-printable: {message}"
    );
    assert!(!message.contains("7bit"), "{message}");
    let decoded = decode_quoted_printable(message);
    assert!(
        decoded.contains("Adele .  MAIL FROM:<x@evil.example>"),
        "the target's name on one line, control characters gone: {decoded}"
    );
    assert!(
        !decoded.contains('\0') && !decoded.contains('\u{1b}') && !decoded.contains('\u{85}'),
        "{decoded}"
    );
}

/// One channel's backlog does not hold up another channel: while a slow relay drains 150
/// mails, a role assignment's webhook notice goes out at once (each channel claims for itself).
/// Before, the claim took the oldest due rows of any channel, so the webhook waited behind
/// nearly the whole mail backlog.
#[test]
fn a_mail_backlog_does_not_delay_another_channels_notice() {
    let dir = Scratch::new("lanes");
    let smtp = SmtpServer::start(
        dir.path(),
        SmtpOptions {
            delay_ms: 100,
            ..SmtpOptions::default()
        },
    );
    let receiver = support::http_receiver::HttpReceiver::start(dir.path());
    let recipients = write_backlog(dir.path(), "lane", 150);
    let input = dir.path().join("in");
    let herald = Instance::start(
        dir.path(),
        &format!(
            r#"
[store]
url = "sqlite://herald.db"

[[source]]
kind = "file"
name = "in"
path = "in"
follow = true
poll_interval = "100ms"

[channel.email]
kind = "smtp"
from = "security@contoso.com"
host = "127.0.0.1"
port = {smtp}
tls = "none"
concurrency = 2

[channel.soc]
kind = "webhook"
url = "http://127.0.0.1:{hook}/hook"

[groups]
soc = ["soc@contoso.com"]

[[rule]]
name = "password-reset"
activities = ["Reset user password"]
recipients = ["target"]

[[rule]]
name = "role-assigned"
activities = ["Add member to role"]
recipients = ["group:soc"]
channels = ["soc"]
"#,
            smtp = smtp.port,
            hook = receiver.port
        ),
    );
    smtp.wait_for(5, &|| herald.logs());
    let role = std::fs::read_to_string(fixture("activities.ndjson"))
        .unwrap()
        .lines()
        .find(|l| l.contains("\"activityDisplayName\":\"Add member to role\""))
        .expect("a role assignment in the fixture")
        .to_owned();
    std::fs::write(input.join("role.json"), role + "\n").unwrap();
    let started = std::time::Instant::now();
    while receiver.requests().is_empty() {
        assert!(
            started.elapsed() < LIMIT,
            "no webhook; log:\n{}",
            herald.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mails = smtp.messages().len();
    eprintln!(
        "lanes: the webhook notice arrived {:?} after its record was written, with {mails} of 150 mails sent",
        started.elapsed()
    );
    assert!(
        mails < 100,
        "the webhook waited behind the mail backlog: {mails} of 150 mails were sent first"
    );
    smtp.wait_for(150, &|| herald.logs());
    assert_eq!(smtp.duplicates_among(&recipients), 0);
}

#[test]
fn on_sigterm_a_send_not_yet_begun_is_not_begun_and_nothing_is_lost() {
    let dir = Scratch::new("sigterm-unbegun");
    // One connection to a slow relay, six sends claimed at a time: five of them wait for it.
    let smtp = SmtpServer::start(
        dir.path(),
        SmtpOptions {
            delay_ms: 400,
            ..SmtpOptions::default()
        },
    );
    let recipients = write_backlog(dir.path(), "term", 20);
    let config = format!(
        r#"
[store]
url = "sqlite://herald.db"

[[source]]
kind = "file"
name = "in"
path = "in"
follow = true
poll_interval = "100ms"

[channel.email]
kind = "smtp"
from = "security@contoso.com"
host = "127.0.0.1"
port = {smtp}
tls = "none"
concurrency = 6
pool_size = 1

[[rule]]
name = "password-reset"
activities = ["Reset user password"]
recipients = ["target"]
"#,
        smtp = smtp.port
    );
    let mut instance = Instance::start(dir.path(), &config);
    smtp.wait_for(1, &|| instance.logs());
    let at_signal = smtp.messages().len();
    assert_eq!(instance.terminate(), 0, "{}", instance.logs());
    let after = smtp.messages().len();
    eprintln!("sigterm: {at_signal} mails before the signal, {after} once the process ended");
    // Only the message on the connection at the signal may still go out; the others that were
    // claimed and waiting for the connection are given back unsent.
    assert!(
        after <= at_signal + 1,
        "{} sends began after SIGTERM:\n{}",
        after - at_signal,
        instance.logs()
    );
    assert!(
        instance.logs().contains("Herald is stopping"),
        "{}",
        instance.logs()
    );
    // Nothing was lost and nothing counted as an attempt: the next run sends the rest, once.
    let config = instance.config.to_str().unwrap();
    let out = herald(&["run", "--once", "--config", config], LIMIT);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(smtp.duplicates_among(&recipients), 0);
}

/// `[store.retention]`: `herald prune --dry-run` says what is past its age and removes
/// nothing; `herald prune` removes it. The store's clock on SQLite is this machine's, run here
/// 91 days ahead under `faketime` (installed by scripts/test).
#[test]
fn prune_removes_what_is_past_its_retention_and_a_dry_run_only_says_so() {
    let dir = Scratch::new("prune");
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    let config = setup(
        dir.path(),
        &smtp,
        "tls = \"none\"",
        "",
        &["envelope-reset-password.json"],
    );
    run_once(&config);
    assert_eq!(outbox(&config).len(), 1);
    let prune = |ahead: &str, extra: &[&str]| {
        let out = std::process::Command::new("faketime")
            .args(["-f", ahead, support::HERALD, "prune", "--config"])
            .arg(&config)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    // Today nothing is old enough; in 91 days the sent notice is (90 days by default).
    assert!(prune("+0d", &["--dry-run"]).contains("would remove 0 sent notifications"));
    let said = prune("+91d", &["--dry-run"]);
    assert!(
        said.contains("would remove 1 sent notifications (older than 90d)"),
        "{said}"
    );
    assert!(said.contains("1 delivery attempts"), "{said}");
    assert_eq!(outbox(&config).len(), 1, "a dry run removes nothing");
    let said = prune("+91d", &[]);
    assert!(said.contains("removed 1 sent notifications"), "{said}");
    assert!(outbox(&config).is_empty());
}

//! The webhook channel against a real HTTP server process: JSON in Herald's schema, signed,
//! with the configured headers; 5xx and 429 retried, other 4xx failed at once with the
//! receiver's answer kept; hostile audit fields delivered as data.

mod support;

use std::path::Path;
use std::time::Duration;

use support::http_receiver::HttpReceiver;
use support::instance::Instance;
use support::{Scratch, fixture, herald_with_env, text};

const SECRET: &str = "whsec-4b7e9d";
const TOKEN: &str = "Bearer t0k3n";

/// A configuration reading `hostile.json` (a password reset whose display names are markup,
/// beside an event whose activity name tries a header injection), sending password resets to
/// the SOC through a webhook.
fn config(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    std::fs::copy(fixture("hostile.json"), dir.join("in/hostile.json")).unwrap();
    let path = dir.join("herald.toml");
    std::fs::write(
        &path,
        r#"
[[source]]
kind = "file"
name = "entra"
path = "in"

[delivery]
initial_backoff = "100ms"
max_backoff = "200ms"

[channel.soc]
kind = "webhook"
url = { env = "HOOK_URL" }
secret = { env = "HOOK_SECRET" }
headers = { Authorization = { env = "HOOK_TOKEN" } }

[groups]
soc = ["soc@contoso.com"]

[[rule]]
name = "password-changes"
activities = ["Reset user password"]
recipients = ["group:soc"]
channels = ["soc"]
"#,
    )
    .unwrap();
    path
}

fn run_once(config: &Path, receiver: &HttpReceiver) -> std::process::Output {
    let url = format!(
        "http://127.0.0.1:{}/hooks/herald?token=s3cr3t",
        receiver.port
    );
    herald_with_env(
        &["run", "--once", "--config", config.to_str().unwrap()],
        &[
            ("HOOK_URL", url.as_str()),
            ("HOOK_SECRET", SECRET),
            ("HOOK_TOKEN", TOKEN),
        ],
        Duration::from_secs(60),
    )
}

#[test]
fn webhook_posts_signed_json_and_retries_what_may_succeed() {
    let dir = Scratch::new("webhook-signed");
    let receiver = HttpReceiver::start_verifying(dir.path(), SECRET);
    // The first request meets an overloaded receiver, the second a throttled one.
    receiver.script(&["503 busy", "429 slow down"]);
    let config = config(dir.path());
    let out = run_once(&config, &receiver);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("s3cr3t") && !text(&out.stderr).contains(SECRET),
        "a secret reached the log:\n{}",
        text(&out.stderr)
    );

    let requests = receiver.requests();
    assert_eq!(
        requests.len(),
        3,
        "1 notification, tried 3 times: {requests:#?}"
    );
    let mut delivered = std::collections::BTreeMap::new();
    let now = jiff::Timestamp::now().as_second();
    for r in &requests {
        assert_eq!(r["method"], "POST");
        assert_eq!(r["path"], "/hooks/herald?token=s3cr3t");
        let headers = &r["headers"];
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["authorization"], TOKEN);
        let body = r["body"].as_str().unwrap();
        let signature = headers["x-herald-signature"].as_str().unwrap();
        let t: i64 = signature
            .strip_prefix("t=")
            .and_then(|s| s.split(',').next())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("{signature}"));
        assert!((now - t).abs() < 300, "signed at {t}, now {now}");
        // The receiver process recomputed the MAC over the raw body with the shared secret.
        assert_eq!(r["signature"], "valid", "{signature}");
        let payload: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(headers["x-herald-key"], payload["key"]);
        *delivered
            .entry(payload["key"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
        assert_eq!(payload["schema"], "herald.notification.v1");
        assert_eq!(payload["rule"]["name"], "password-changes");
        assert_eq!(payload["rule"]["channel"], "soc");
        assert_eq!(payload["recipient"]["address"], "soc@contoso.com");
        assert_eq!(payload["recipient"]["via"], "group");
        assert!(!payload["subject"].as_str().unwrap().is_empty());
    }
    assert_eq!(
        delivered.len(),
        1,
        "one notification, the same key each time"
    );

    // Hostile fields arrive as the exact strings the audit log held: data, not markup.
    let reset: serde_json::Value =
        serde_json::from_str(requests[2]["body"].as_str().unwrap()).unwrap();
    assert_eq!(reset["event"]["activity"], "Reset user password");
    assert_eq!(
        reset["event"]["targets"][0]["display_name"],
        "<script>alert(\"x\")</script> Adele"
    );
    assert_eq!(
        reset["event"]["initiated_by"]["display_name"],
        "<img src=x onerror=alert(1)>"
    );

    let list = herald_with_env(
        &["outbox", "list", "--config", config.to_str().unwrap()],
        &[],
        Duration::from_secs(30),
    );
    let list = text(&list.stdout);
    assert_eq!(list.matches(" sent ").count(), 1, "{list}");
}

#[test]
fn a_refused_webhook_fails_at_once_with_the_receivers_answer() {
    let dir = Scratch::new("webhook-refused");
    // A receiver holding another secret: it sees the signature does not verify.
    let receiver = HttpReceiver::start_verifying(dir.path(), "not-the-secret");
    receiver.script(&[r#"400 {"error":"unknown field: rule"}"#]);
    let config = config(dir.path());
    let out = run_once(&config, &receiver);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed notice exits 1: {}",
        text(&out.stderr)
    );
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1, "no retry after a 400");
    assert_eq!(requests[0]["signature"], "invalid: wrong MAC");
    let rows = support::outbox_rows(&config, Some("failed"));
    assert_eq!(rows.len(), 1);
    for row in rows {
        assert_eq!(
            row["last_error"],
            r#"HTTP 400 Bad Request: {"error":"unknown field: rule"}"#
        );
        assert_eq!(row["attempts"], 1);
    }
}

/// A redirect is not followed: a `302` would become a body-less GET whose `200` marked the
/// notice sent, and a `307` to another host would carry the Authorization header there. The
/// notice fails with the Location kept, and the other host hears nothing.
#[test]
fn a_redirect_is_a_failure_that_names_where_it_pointed_and_is_not_followed() {
    for status in ["302", "307"] {
        let dir = Scratch::new(&format!("webhook-redirect-{status}"));
        let receiver = HttpReceiver::start(dir.path());
        let elsewhere = HttpReceiver::start(&dir.path().join("elsewhere"));
        let location = format!("http://127.0.0.1:{}/collect", elsewhere.port);
        receiver.script(&[&format!("{status} {location}")]);
        let config = config(dir.path());
        let out = run_once(&config, &receiver);
        let stderr = text(&out.stderr);
        assert_eq!(receiver.requests().len(), 1, "{status}: {stderr}");
        assert!(
            elsewhere.requests().is_empty(),
            "{status}: the redirect was followed"
        );
        let rows = support::outbox_rows(&config, None);
        assert_eq!(rows.len(), 1, "{status}: {rows:?}");
        assert_eq!(rows[0]["state"], "failed", "{status}: {rows:?}");
        let error = rows[0]["last_error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!("HTTP {status} ")) && error.contains(&location),
            "{status}: {error}"
        );
    }
}

/// Waits (up to a minute) until `want` holds for the outbox `config` sees.
fn wait_for_outbox(config: &Path, what: &str, want: impl Fn(&[serde_json::Value]) -> bool) {
    let started = std::time::Instant::now();
    loop {
        let rows = support::outbox_rows(config, None);
        if want(&rows) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what}: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A rolling deploy that adds a channel: an instance whose configuration does not have it
/// leaves that channel's notices pending for the instances that do (it used to fail them as
/// "not configured"), and says so; the instance with the channel sends them.
#[test]
fn an_instance_leaves_the_notices_of_channels_it_does_not_have() {
    let dir = Scratch::new("webhook-other-channel");
    let receiver = HttpReceiver::start(dir.path());
    receiver.script(&["503 busy"; 2000]);
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    std::fs::copy(
        fixture("envelope-reset-password.json"),
        dir.path().join("in/reset.json"),
    )
    .unwrap();
    let common = r#"
[store]
url = "sqlite://herald.db"

[[source]]
kind = "file"
name = "entra"
path = "in"

[delivery]
initial_backoff = "100ms"
max_backoff = "200ms"

[channel.mail]
kind = "file"
from = "security@contoso.com"
dir = "mail"
"#;
    let rule = |channels: &str| {
        format!(
            "\n[[rule]]\nname = \"password-reset\"\nactivities = [\"Reset user password\"]\nrecipients = [\"target\"]\nchannels = {channels}\n"
        )
    };
    // The new version: mail and the SOC's webhook, which is busy for now.
    let new = format!(
        "{common}\n[channel.soc]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{}/hook\"\n{}",
        receiver.port,
        rule("[\"mail\", \"soc\"]")
    );
    let mut a = Instance::start(dir.path(), &new);
    wait_for_outbox(&a.config, "the webhook is tried", |rows| {
        rows.iter()
            .any(|r| r["channel"] == "soc" && r["attempts"].as_i64() >= Some(2))
    });
    a.kill();

    // The old version, on the same store: it has no `soc` channel.
    let old = dir.path().join("old.toml");
    std::fs::write(&old, format!("{common}{}", rule("[\"mail\"]"))).unwrap();
    let out = support::herald(
        &["run", "--once", "--config", old.to_str().unwrap()],
        Duration::from_secs(60),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "herald: 1 notifications wait for channel soc, which this configuration does not have"
        ),
        "{stderr}"
    );
    let rows = support::outbox_rows(&old, None);
    let soc: Vec<_> = rows.iter().filter(|r| r["channel"] == "soc").collect();
    assert_eq!(soc.len(), 1, "{rows:?}");
    assert_eq!(soc[0]["state"], "pending", "left alone: {}", soc[0]);

    // The new version again, with the receiver back: it sends the notice.
    receiver.script(&[]);
    a.restart();
    wait_for_outbox(&a.config, "the SOC's notice is sent", |rows| {
        rows.iter()
            .any(|r| r["channel"] == "soc" && r["state"] == "sent")
    });
}

/// PostgreSQL refuses NUL in text. A record with NUL in its id, tenant and names, and a
/// receiver whose refusal carries NUL, must neither wedge a commit nor the recording of an
/// outcome: the notice is failed with the receiver's answer (NUL removed) and the next one
/// is delivered.
#[test]
fn nul_in_a_record_or_a_receivers_answer_never_wedges_a_postgres_store() {
    let dir = Scratch::new("webhook-nul");
    let postgres = support::postgres::Postgres::shared();
    let db = postgres.database("webhook_nul");
    let receiver = HttpReceiver::start(dir.path());
    receiver.script(&["400 refused\u{0}here"]);
    let mut envelope: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("envelope-reset-password.json")).unwrap(),
    )
    .unwrap();
    let mut second = envelope["records"][0].clone();
    let first = &mut envelope["records"][0];
    first["tenantId"] = "7f3c2a10-4b6e-4d2a-9c1e-2f5a8b0d6e41\u{0}".into();
    first["properties"]["id"] = "Directory_nul\u{0}_1".into();
    first["properties"]["targetResources"][0]["displayName"] = "Adele\u{0} Vance".into();
    second["properties"]["id"] = "Directory_nul_2".into();
    second["properties"]["targetResources"][0]["userPrincipalName"] =
        "megan.bowen@contoso.com".into();
    envelope["records"].as_array_mut().unwrap().push(second);
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    std::fs::write(
        dir.path().join("in/nul.json"),
        serde_json::to_vec(&envelope).unwrap(),
    )
    .unwrap();
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[store]
url = "{url}"

[[source]]
kind = "file"
name = "entra"
path = "in"

[delivery]
initial_backoff = "100ms"
max_backoff = "200ms"

[channel.soc]
kind = "webhook"
url = "http://127.0.0.1:{port}/hook"
concurrency = 1

[[rule]]
name = "password-reset"
activities = ["Reset user password"]
recipients = ["target"]
channels = ["soc"]
"#,
            url = db.url,
            port = receiver.port
        ),
    )
    .unwrap();
    let out = support::herald(
        &["run", "--once", "--config", config.to_str().unwrap()],
        Duration::from_secs(60),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "one notice failed: {stderr}");
    let rows = support::outbox_rows(&config, None);
    assert_eq!(rows.len(), 2, "both records were committed: {rows:?}");
    let failed: Vec<_> = rows.iter().filter(|r| r["state"] == "failed").collect();
    let sent: Vec<_> = rows.iter().filter(|r| r["state"] == "sent").collect();
    assert_eq!((failed.len(), sent.len()), (1, 1), "{rows:?}");
    let error = failed[0]["last_error"].as_str().unwrap();
    assert!(
        error.contains("refused") && error.contains("here") && !error.contains('\0'),
        "the answer, NUL removed: {error}"
    );
}

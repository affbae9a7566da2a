//! The dashboard API against its own OpenAPI 3.1 document (`/api/v1/openapi.json`):
//! schemathesis (from PyPI; the README's test command installs it) generates requests from the
//! document — valid ones and, for the negative checks, invalid ones — and checks every answer:
//! no server error, a status and a body the document allows, authentication enforced. It runs
//! with an operator's bearer token against a store holding a notice and a dead letter.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::instance::Instance;
use support::{HERALD, Scratch, SmtpOptions, SmtpServer, fixture, outbox_rows, root, text};

/// schemathesis's `st`: HERALD_TEST_SCHEMATHESIS, on PATH, or in target/venv.
fn schemathesis() -> PathBuf {
    if let Ok(path) = std::env::var("HERALD_TEST_SCHEMATHESIS") {
        return path.into();
    }
    let on_path = std::process::Command::new("st")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if on_path {
        return "st".into();
    }
    let venv = root().join("target/venv/bin/st");
    assert!(
        venv.exists(),
        "no schemathesis: run scripts/test, which installs it (pip install schemathesis==4.32.5)"
    );
    venv
}

#[test]
fn the_api_answers_as_its_openapi_document_says() {
    let scratch = Scratch::new("openapi");
    let dir = scratch.path().to_owned();
    let smtp = SmtpServer::start(&dir, SmtpOptions::default());
    smtp.script(&["550"]);
    let out = std::process::Command::new(HERALD)
        .args(["token", "new", "--name", "script", "--role", "operator"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    let entry = text(&out.stderr)
        .split_once("tokens: ")
        .map(|(_, e)| e.trim().to_owned())
        .unwrap();
    std::fs::create_dir_all(dir.join("events")).unwrap();
    std::fs::copy(fixture("hostile.json"), dir.join("events/hostile.json")).unwrap();
    std::fs::write(dir.join("events/broken.json"), "{oops\n").unwrap();
    let config = format!(
        r#"[store]
url = "sqlite://herald.db"

[dashboard]
tokens = [{entry}]

[[source]]
kind = "file"
name = "events"
path = "events"
follow = true

[channel.email]
kind = "smtp"
from = "Contoso Security <security@contoso.com>"
host = "127.0.0.1"
port = {smtp}
tls = "none"

[[rule]]
name = "reset"
activities = ["Reset user password"]
recipients = ["target"]
"#,
        smtp = smtp.port
    );
    let herald = Instance::start(&dir, &config);
    let deadline = Instant::now() + Duration::from_secs(60);
    while outbox_rows(&herald.config, Some("failed")).is_empty() {
        assert!(Instant::now() < deadline, "no failed notice");
        std::thread::sleep(Duration::from_millis(200));
    }
    let base = format!("http://127.0.0.1:{}", herald.admin);
    // A silence's matchers are a small language of their own (regular expressions, CIDR
    // ranges, rules that must exist): JSON Schema cannot say which strings Herald takes, so a
    // schema-valid body may rightly be refused with a 400 naming the field. Every check still
    // runs on that operation; a 400 counts as an answer to valid data there.
    let settings = dir.join("schemathesis.toml");
    std::fs::write(
        &settings,
        "[[operations]]\ninclude-operation-id = \"add_silence\"\nchecks.positive_data_acceptance.expected-statuses = [200, 400, 401, 403, 503]\n",
    )
    .unwrap();
    let run = std::process::Command::new(schemathesis())
        .args(["--config-file", settings.to_str().unwrap()])
        .args(["run", &format!("{base}/api/v1/openapi.json")])
        .args(["--url", &base])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all", "--max-examples", "40", "--seed", "1"])
        .arg("--generation-deterministic")
        .args(["--workers", "1", "--request-timeout", "10"])
        .current_dir(&dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let report = format!("{}\n{}", text(&run.stdout), text(&run.stderr));
    assert!(
        run.status.success(),
        "schemathesis found failures:\n{report}"
    );
    // It did call the API: every operation the document names was tested.
    assert!(report.contains("Tested: 13"), "{report}");
    assert!(!herald.logs().contains("panicked"), "{}", herald.logs());
}

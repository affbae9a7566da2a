//! What every target asserts beyond "no panic", and the configurations they run.
//!
//! The assertions are the hostile-input contracts of ARCHITECTURE.md §2.5, checked on what
//! Herald produced rather than on how: a decoded event holds no control character, a subject
//! fits one header line, a mail's header block holds only Herald's headers, a JSON payload
//! parses and carries audit values exactly, an HTML part opens no element an attacker wrote.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use herald::config::Config;
use herald::event::{AuditEvent, DeadLetter};
use herald::pipeline::{Outcome, Pipeline};
use herald::plan::{Format, Notification};
use serde_json::Value;

/// Herald's starter configuration (`herald init`): the default rule set, a file channel.
const STARTER: &str = include_str!("../../examples/herald.toml");

/// The starter configuration with its channel made a webhook: its rules, planned as JSON.
/// Rendering mail (HTML, CSS inlining) costs a hundred times the decode; `render` covers it.
fn starter_as_webhook() -> String {
    let mut starter: toml::Table =
        toml::from_str(STARTER).expect("the starter configuration is TOML");
    let channel: toml::Table = toml::from_str(
        "[email]\nkind = \"webhook\"\nurl = \"https://soar.contoso.example/hook\"\n",
    )
    .expect("a channel table");
    starter.insert("channel".to_owned(), toml::Value::Table(channel));
    starter.to_string()
}

/// Every channel format, built-in and operator-templated, for rules that select every record:
/// the user concerned by mail (SMTP and Graph), the security team on every channel. `{tz}` is
/// the branding's zone.
const EVERY_FORMAT: &str = r#"
[branding]
organization = "Contoso"
address = "Contoso Ltd, 1 Example Way"
logo_url = "https://www.contoso.example/logo.png"
website = "https://www.contoso.example"
support_url = "https://support.contoso.example"
support_email = "helpdesk@contoso.example"
support_phone = "+1 555 0100"
report_url = "https://security.contoso.example/report"
report_email = "security@contoso.example"
timezone = "{tz}"

[microsoft.contoso]
tenant_id = "7f3c2a10-4b6e-4d2a-9c1e-2f5a8b0d6e41"
client_id = "11111111-1111-1111-1111-111111111111"
client_secret = { env = "HERALD_FUZZ_NEVER_READ" }

[groups]
soc = ["soc@contoso.example", "Second.Analyst@contoso.example"]

[channel.email]
kind = "smtp"
from = "Contoso Security <security@contoso.example>"

[channel.o365]
kind = "graph_mail"
app = "contoso"
sender = "security@contoso.example"

[channel.webhook]
kind = "webhook"
url = "https://soar.contoso.example/hook"

[channel.webhook-template]
kind = "webhook"
url = "https://tickets.contoso.example/hook"
template = "templates/webhook.json"

[channel.teams]
kind = "teams"
url = "https://teams.contoso.example/workflow"

[channel.teams-template]
kind = "teams"
url = "https://teams.contoso.example/workflow2"
template = "templates/teams.json"

[channel.slack]
kind = "slack"
url = "https://hooks.slack.example/services/T0/B0/X"

[channel.slack-template]
kind = "slack"
url = "https://hooks.slack.example/services/T0/B0/Y"
template = "templates/slack.json"

[[rule]]
name = "tell-the-user"
recipients = ["target"]
channels = ["email", "o365"]

[[rule]]
name = "tell-the-soc"
recipients = ["group:soc", "initiator"]
channels = ["email", "webhook", "webhook-template", "teams", "teams-template", "slack", "slack-template"]
subject = "{{ event.activity }}: {{ target.display_name if target else 'nobody' }} by {{ event.initiated_by.display_name }} ({{ event.result_reason }})"
importance = "high"
"#;

/// Branding zones the notices are rendered in: UTC, and one with a 45-minute offset and
/// daylight saving time.
const ZONES: [&str; 2] = ["UTC", "Pacific/Chatham"];

/// `fuzz/`, where the operator templates are: the fuzz crate's manifest directory, or the
/// repository's (the replay test) with `fuzz` under it.
pub fn fuzz_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    if manifest.join("templates/webhook.json").is_file() {
        manifest.to_owned()
    } else {
        manifest.join("fuzz")
    }
}

/// The starter rules, planned as JSON ([`starter_as_webhook`]); built once.
pub fn starter() -> &'static Pipeline {
    static STARTER_PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    STARTER_PIPELINE.get_or_init(|| {
        let path = fuzz_dir().join("herald.toml");
        let config = Config::parse(&path, &starter_as_webhook()).expect("the starter loads");
        Pipeline::new(config).expect("the starter's templates load")
    })
}

/// [`EVERY_FORMAT`] in each of [`ZONES`]; built once.
pub fn every_format() -> &'static [Pipeline] {
    static PIPELINES: OnceLock<Vec<Pipeline>> = OnceLock::new();
    PIPELINES.get_or_init(|| {
        let path = fuzz_dir().join("herald.toml");
        ZONES
            .iter()
            .map(|zone| {
                let text = EVERY_FORMAT.replace("{tz}", zone);
                let config = Config::parse(&path, &text).expect("the fuzz configuration loads");
                Pipeline::new(config).expect("the fuzz templates load")
            })
            .collect()
    })
}

/// Runs `bytes` through `pipeline` and checks all it produced.
pub fn process(pipeline: &Pipeline, bytes: &[u8]) -> Outcome {
    let mut out = Outcome::default();
    pipeline.process("fuzz input", bytes, &mut out);
    outcome(&out);
    out
}

/// A pipeline's outcome: every notice checked, no notice lost to a rendering failure.
pub fn outcome(out: &Outcome) {
    for dead in &out.dead_letters {
        dead_letter(dead);
    }
    let failures: Vec<String> = out.failures.iter().map(|e| e.to_string()).collect();
    assert!(
        failures.is_empty(),
        "a selected event failed to render: {failures:#?}"
    );
    for n in &out.notifications {
        notification(n);
    }
}

pub fn dead_letter(dead: &DeadLetter) {
    assert!(dead.position.line >= 1, "dead letter at line 0: {dead}");
    assert!(!dead.reason.is_empty(), "dead letter without a reason");
}

/// A decoded event: an id and an activity, and no control character in any string it carries
/// (keys of decoded JSON included); `raw` is kept as it came and is not checked.
pub fn event(event: &AuditEvent) {
    assert!(
        !event.id.trim().is_empty(),
        "an event without an id: {event:?}"
    );
    assert!(
        !event.activity.trim().is_empty(),
        "an event without an activity: {event:?}"
    );
    let value = serde_json::to_value(event).expect("an event serializes");
    no_control(&value, "event");
}

fn no_control(value: &Value, at: &str) {
    let bad = |s: &str| s.chars().any(char::is_control);
    match value {
        Value::String(s) => assert!(!bad(s), "control character in {at}: {s:?}"),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                no_control(item, &format!("{at}[{i}]"));
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                assert!(!bad(key), "control character in a key of {at}: {key:?}");
                no_control(item, &format!("{at}.{key}"));
            }
        }
        _ => {}
    }
}

/// One rendered notice, by format.
pub fn notification(n: &Notification) {
    subject(&n.subject);
    if !n.html.is_empty() {
        html(&n.html);
    }
    match n.format {
        Format::Email => mail(&n.message, &n.subject),
        Format::GraphMessage => {
            let v = json(&n.message);
            assert_eq!(v["subject"].as_str(), Some(n.subject.as_str()));
            assert_eq!(
                v["toRecipients"][0]["emailAddress"]["address"].as_str(),
                Some(n.recipient.as_str())
            );
        }
        Format::Json => {
            let v = json(&n.message);
            if n.channel.ends_with("-template") {
                // The operator's template printed these as JSON literals: exactly, escaped.
                assert_eq!(v["event_id"].as_str(), Some(n.event_id.as_str()), "{v}");
                assert_eq!(v["activity"].as_str(), Some(n.activity.as_str()), "{v}");
                assert_eq!(v["title"].as_str(), Some(n.subject.as_str()), "{v}");
            } else {
                assert_eq!(v["schema"], "herald.notification.v1");
                assert_eq!(v["subject"].as_str(), Some(n.subject.as_str()));
                assert_eq!(v["event"]["id"].as_str(), Some(n.event_id.as_str()));
            }
        }
        Format::TeamsCard => {
            let v = json(&n.message);
            assert_eq!(v["type"], "message", "{v}");
            let card = &v["attachments"][0]["content"];
            assert_eq!(card["type"], "AdaptiveCard", "{v}");
            if !n.channel.ends_with("-template") {
                // Values only in TextRuns, which Teams shows literally; these read Markdown.
                for markdown in ["TextBlock", "FactSet"] {
                    assert!(!has_type(card, markdown), "a {markdown} in {v}");
                }
            }
        }
        Format::SlackMessage => {
            let v = json(&n.message);
            let text = v["text"].as_str().expect("a Slack message has text");
            if !n.channel.ends_with("-template") {
                assert!(
                    !text.contains(['<', '>']),
                    "unescaped Slack markup: {text:?}"
                );
            }
        }
        Format::GraphAction => {
            // A response action names an action and an account; no audit text chooses a URL.
            let v = json(&n.message);
            assert!(v["action"].is_string(), "{v}");
            assert_eq!(v["account"].as_str(), Some(n.recipient.as_str()), "{v}");
        }
    }
}

/// A subject: one header line's worth of plain text.
fn subject(subject: &str) {
    assert!(
        !subject
            .chars()
            .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')),
        "control character in a subject: {subject:?}"
    );
    assert!(subject.chars().count() <= 200, "subject too long");
    assert_eq!(subject, subject.trim(), "subject with outer spaces");
}

/// Elements a template never writes: if one appears, audit text became markup.
fn html(html: &str) {
    let lower = html.to_ascii_lowercase();
    for tag in ["<script", "<iframe", "<svg", "<object", "<embed"] {
        assert!(!lower.contains(tag), "{tag} in a rendered HTML part");
    }
}

/// Headers a notice's top-level header block may hold, and nothing else.
const MAIL_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Message-ID",
    "Importance",
    "X-Priority",
    "Auto-Submitted",
    "X-Auto-Response-Suppress",
    "MIME-Version",
    "Date",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// An RFC 5322 message: CRLF line ends only, lines within SMTP's limit, and a header block
/// of Herald's headers only, each once (a header an event added would show here).
fn mail(message: &[u8], subject: &str) {
    for (i, b) in message.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(message.get(i + 1), Some(&b'\n'), "a bare CR at byte {i}"),
            b'\n' => assert!(i > 0 && message[i - 1] == b'\r', "a bare LF at byte {i}"),
            _ => {}
        }
    }
    let text = String::from_utf8_lossy(message);
    for line in text.split("\r\n") {
        assert!(line.len() <= 998, "a line of {} bytes", line.len());
    }
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut seen = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let name = line.split(':').next().unwrap_or_default();
        assert!(
            MAIL_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)),
            "unexpected header line {line:?} (subject {subject:?})"
        );
        assert!(!seen.contains(&name), "header {name} twice");
        seen.push(name);
    }
}

fn json(message: &[u8]) -> Value {
    serde_json::from_slice(message).unwrap_or_else(|e| {
        panic!(
            "a payload is not JSON ({e}): {}",
            String::from_utf8_lossy(message)
        )
    })
}

fn has_type(value: &Value, kind: &str) -> bool {
    match value {
        Value::Object(map) => {
            map.get("type").and_then(Value::as_str) == Some(kind)
                || map.values().any(|v| has_type(v, kind))
        }
        Value::Array(items) => items.iter().any(|v| has_type(v, kind)),
        _ => false,
    }
}

//! Teams and Slack channels against a real HTTP server process standing in for their incoming
//! webhooks: the built-in Adaptive Card and Block Kit message, with every audit value where the
//! client shows text literally.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::http_receiver::HttpReceiver;
use support::{Scratch, fixture, herald_with_env, text};

const REPORT: &str = "https://contoso.example/security/report";

/// Every object in `value` (depth first) whose `type` is `kind`.
fn all_of<'a>(value: &'a Value, kind: &str, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some(kind) {
                out.push(value);
            }
            map.values().for_each(|v| all_of(v, kind, out));
        }
        Value::Array(items) => items.iter().for_each(|v| all_of(v, kind, out)),
        _ => {}
    }
}

/// The JSON body `POST`ed to the path starting with `prefix`.
fn json_posted(requests: &[Value], prefix: &str) -> Value {
    let r = requests
        .iter()
        .find(|r| r["path"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no request to {prefix}"));
    assert_eq!(r["method"], "POST");
    assert_eq!(r["headers"]["content-type"], "application/json");
    serde_json::from_str(r["body"].as_str().unwrap()).unwrap()
}

#[test]
fn teams_and_slack_get_their_cards_with_audit_values_as_plain_text() {
    let dir = Scratch::new("chat-cards");
    let receiver = HttpReceiver::start(dir.path());
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    std::fs::copy(fixture("hostile.json"), dir.path().join("in/hostile.json")).unwrap();
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[source]]
kind = "file"
name = "entra"
path = "in"

[branding]
organization = "Contoso"
report_url = "{REPORT}"

[channel.teams]
kind = "teams"
url = {{ env = "TEAMS_URL" }}

[channel.slack]
kind = "slack"
url = {{ env = "SLACK_URL" }}

[groups]
soc = ["soc@contoso.com"]

[[rule]]
name = "password-reset"
activities = ["Reset user password"]
recipients = ["group:soc"]
channels = ["teams", "slack"]
"#
        ),
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{}", receiver.port);
    let (teams_url, slack_url) = (
        format!("{base}/workflows/triggers/manual/paths/invoke?sig=abc"),
        format!("{base}/services/T000/B000/XXXX"),
    );
    let out = herald_with_env(
        &["run", "--once", "--config", config.to_str().unwrap()],
        &[("TEAMS_URL", &teams_url), ("SLACK_URL", &slack_url)],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    let body = |prefix: &str| json_posted(&requests, prefix);
    let user = "<script>alert(\"x\")</script> Adele (adele.vance@contoso.com)";
    let initiator = "<img src=x onerror=alert(1)> (irvin.sayers@contoso.com) from 203.0.113.24";

    // Teams: one Adaptive Card; values only in TextRuns, which Teams shows literally.
    let teams = body("/workflows/");
    assert_eq!(teams["type"], "message");
    let attachment = &teams["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachment["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    for markdown in ["TextBlock", "FactSet"] {
        let mut found = Vec::new();
        all_of(card, markdown, &mut found);
        assert!(
            found.is_empty(),
            "a {markdown} interprets Markdown: {found:?}"
        );
    }
    let mut runs = Vec::new();
    all_of(card, "TextRun", &mut runs);
    let texts: Vec<&str> = runs.iter().map(|r| r["text"].as_str().unwrap()).collect();
    // The default subject is the headline for the SOC, naming the owner: literal text.
    let subject = "<script>alert(\"x\")</script> Adele's password was reset by an administrator";
    assert_eq!(texts[0], subject);
    let after = |label: &str| {
        let i = texts.iter().position(|t| *t == label).unwrap_or_else(|| {
            panic!("no {label:?} in {texts:?}");
        });
        texts[i + 1]
    };
    assert_eq!(after("Activity: "), "Reset user password");
    assert_eq!(after("User: "), user);
    assert_eq!(after("Initiated by: "), initiator);
    assert_eq!(after("Time: "), "2026-10-14 23:25:55 (UTC)");
    assert!(after("What changed: ").starts_with("Department: Finance → <b>bold</b>"));
    assert_eq!(
        card["actions"],
        serde_json::json!([{ "type": "Action.OpenUrl", "title": "Report this", "url": REPORT }])
    );

    // Slack: Block Kit with plain_text (emoji codes off); the Markdown fallback escaped.
    let slack = body("/services/");
    assert_eq!(
        slack["text"],
        "&lt;script&gt;alert(\"x\")&lt;/script&gt; Adele's password was reset by an administrator"
    );
    let blocks = slack["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    let mut plain = Vec::new();
    all_of(&slack, "plain_text", &mut plain);
    assert!(plain.iter().all(|p| p["emoji"] == false), "{plain:?}");
    let mut mrkdwn = Vec::new();
    all_of(&slack, "mrkdwn", &mut mrkdwn);
    assert!(mrkdwn.is_empty(), "{mrkdwn:?}");
    let fields: Vec<&str> = blocks[2]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&format!("User: {user}").as_str()),
        "{fields:?}"
    );
    assert!(
        fields.contains(&format!("Initiated by: {initiator}").as_str()),
        "{fields:?}"
    );
    assert_eq!(blocks[3]["elements"][0]["url"], REPORT);
}

/// The hostile record with a display name that tries to close a JSON string and add a key.
fn breaking_record(dir: &std::path::Path) {
    let mut record: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("hostile.json")).unwrap()).unwrap();
    let records = record["records"].as_array_mut().unwrap();
    records.truncate(1);
    records[0]["properties"]["targetResources"][0]["displayName"] =
        Value::from(r#"Adele", "admin": true, "x": "</script>"#);
    std::fs::create_dir_all(dir.join("in")).unwrap();
    std::fs::write(dir.join("in/record.json"), record.to_string()).unwrap();
}

const TEAMS_TEMPLATE: &str = r#"{
  "type": "AdaptiveCard",
  "version": "1.5",
  "body": [
    { "type": "RichTextBlock", "inlines": [
      { "type": "TextRun", "weight": "Bolder", "text": {{ "Password reset for " ~ target.display_name }} }
    ] },
    {% for fact in facts %}
    { "type": "RichTextBlock", "inlines": [ { "type": "TextRun", "text": {{ fact.label ~ ": " ~ fact.value }} } ] },
    {% endfor %}
    { "type": "RichTextBlock", "inlines": [ { "type": "TextRun", "text": {{ "Rule " ~ rule.name ~ ", key " ~ key }} } ] }
  ]
}"#;

const SLACK_TEMPLATE: &str = r#"{
  "text": {{ ("Reset for " ~ target.display_name) | slack_escape }},
  "blocks": [
    { "type": "section", "text": { "type": "plain_text", "emoji": false,
      "text": {{ (target.upn or "") ~ " / " ~ target.display_name }} } }
  ]
}"#;

const WEBHOOK_TEMPLATE: &str = r#"{
  "title": {{ subject }},
  "severity": {{ "high" if rule.importance == "high" else "medium" }},
  "user": { "upn": {{ target.upn }}, "name": {{ target.display_name }} },
  "actor": {{ event.initiated_by.upn }},
  "changes": {{ target.modified_properties | map(attribute="name") | list }},
  "id": {{ event.id }}
}"#;

#[test]
fn operator_templates_shape_cards_and_payloads_and_audit_values_stay_json_strings() {
    let dir = Scratch::new("chat-templates");
    let receiver = HttpReceiver::start(dir.path());
    breaking_record(dir.path());
    std::fs::write(dir.path().join("soc-card.json"), TEAMS_TEMPLATE).unwrap();
    std::fs::write(dir.path().join("soc-slack.json"), SLACK_TEMPLATE).unwrap();
    std::fs::write(dir.path().join("ticket.json"), WEBHOOK_TEMPLATE).unwrap();
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        r#"
[[source]]
kind = "file"
name = "entra"
path = "in"

[channel.teams]
kind = "teams"
url = { env = "TEAMS_URL" }
template = "soc-card.json"

[channel.slack]
kind = "slack"
url = { env = "SLACK_URL" }
template = "soc-slack.json"

[channel.tickets]
kind = "webhook"
url = { env = "TICKETS_URL" }
template = "ticket.json"

[groups]
soc = ["soc@contoso.com"]

[[rule]]
name = "password-reset"
activities = ["Reset user password"]
importance = "high"
recipients = ["group:soc"]
channels = ["teams", "slack", "tickets"]
"#,
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{}", receiver.port);
    let urls = [
        ("TEAMS_URL", format!("{base}/workflows/invoke")),
        ("SLACK_URL", format!("{base}/services/T0/B0/X")),
        ("TICKETS_URL", format!("{base}/tickets")),
    ];
    let env: Vec<(&str, &str)> = urls.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let check = herald_with_env(
        &["check", "--config", config.to_str().unwrap()],
        &env,
        Duration::from_secs(30),
    );
    assert!(check.status.success(), "{}", text(&check.stderr));

    let out = herald_with_env(
        &["run", "--once", "--config", config.to_str().unwrap()],
        &env,
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3, "{requests:#?}");
    let body = |prefix: &str| json_posted(&requests, prefix);
    let name = r#"Adele", "admin": true, "x": "</script>"#;

    // Teams: the operator's card, in the message envelope Herald adds.
    let teams = body("/workflows/");
    assert_eq!(teams["type"], "message");
    let card = &teams["attachments"][0]["content"];
    assert_eq!(
        teams["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["version"], "1.5");
    assert!(card.get("admin").is_none());
    let mut runs = Vec::new();
    all_of(card, "TextRun", &mut runs);
    let texts: Vec<&str> = runs.iter().map(|r| r["text"].as_str().unwrap()).collect();
    assert_eq!(texts[0], format!("Password reset for {name}"));
    assert!(
        texts.contains(&"Activity: Reset user password"),
        "{texts:?}"
    );
    assert!(
        texts.contains(&format!("User: {name} (adele.vance@contoso.com)").as_str()),
        "{texts:?}"
    );
    assert!(
        texts
            .last()
            .unwrap()
            .starts_with("Rule password-reset, key ")
    );

    // Slack: the operator's message as rendered.
    let slack = body("/services/");
    assert_eq!(
        slack,
        serde_json::json!({
            "text": r#"Reset for Adele", "admin": true, "x": "&lt;/script&gt;"#,
            "blocks": [ { "type": "section", "text": { "type": "plain_text", "emoji": false,
                "text": format!("adele.vance@contoso.com / {name}") } } ]
        })
    );

    // Webhook: the operator's schema instead of herald.notification.v1.
    let ticket = body("/tickets");
    assert_eq!(
        ticket,
        serde_json::json!({
            "title": format!("{name}'s password was reset by an administrator"),
            "severity": "high",
            "user": { "upn": "adele.vance@contoso.com", "name": name },
            "actor": "irvin.sayers@contoso.com",
            "changes": ["Department"],
            "id": "Directory_f7af8e3c-05e4-4a60-80ab-1ddf9360d462_V59DB_888685955",
        })
    );
}

#[test]
fn a_template_that_does_not_render_json_is_caught_by_check_and_kept_at_run() {
    let dir = Scratch::new("chat-template-broken");
    let receiver = HttpReceiver::start(dir.path());
    breaking_record(dir.path());
    // Quotes around a value: values print as JSON literals, so this is not JSON.
    std::fs::write(
        dir.path().join("card.json"),
        r#"{ "type": "AdaptiveCard", "version": "1.5", "body": [
             { "type": "TextBlock", "text": "{{ event.activity }}" } ] }"#,
    )
    .unwrap();
    // A Slack template that renders JSON, but no message.
    std::fs::write(dir.path().join("slack.json"), r#"[{{ subject }}]"#).unwrap();
    let config = dir.path().join("herald.toml");
    let write = |channel: &str| {
        std::fs::write(
            &config,
            format!(
                r#"
[[source]]
kind = "file"
name = "entra"
path = "in"

[channel.teams]
kind = "teams"
url = "http://127.0.0.1:{port}/workflows/invoke"
template = "card.json"

[channel.slack]
kind = "slack"
url = "http://127.0.0.1:{port}/services/T0/B0/X"
template = "slack.json"

[[rule]]
name = "password-reset"
activities = ["Reset user password"]
recipients = ["initiator"]
channels = ["{channel}"]
"#,
                port = receiver.port
            ),
        )
        .unwrap();
    };
    for (channel, expected) in [
        (
            "teams",
            "template channel.teams.template.json did not render JSON",
        ),
        (
            "slack",
            "template channel.slack.template.json must render a Slack message",
        ),
    ] {
        write(channel);
        let check = herald_with_env(
            &["check", "--config", config.to_str().unwrap()],
            &[],
            Duration::from_secs(30),
        );
        assert_eq!(check.status.code(), Some(2), "{}", text(&check.stderr));
        let stderr = text(&check.stderr);
        assert!(stderr.contains(expected), "{stderr}");
        assert!(stderr.contains("rule[0] \"password-reset\""), "{stderr}");
    }

    // At run time the record is not lost: it is kept as a dead letter naming the template,
    // and nothing half-built is posted.
    write("teams");
    let out = herald_with_env(
        &["run", "--once", "--config", config.to_str().unwrap()],
        &[],
        Duration::from_secs(60),
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("channel.teams.template.json did not render JSON"),
        "{stderr}"
    );
    assert!(receiver.requests().is_empty());
    let dead = herald_with_env(
        &["dead-letters", "list", "--config", config.to_str().unwrap()],
        &[],
        Duration::from_secs(30),
    );
    assert!(
        text(&dead.stdout).contains("did not render JSON"),
        "{}{}",
        text(&dead.stdout),
        text(&dead.stderr)
    );
}

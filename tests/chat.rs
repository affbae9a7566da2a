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
    let body = |prefix: &str| -> Value {
        let r = requests
            .iter()
            .find(|r| r["path"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("no request to {prefix}"));
        assert_eq!(r["method"], "POST");
        assert_eq!(r["headers"]["content-type"], "application/json");
        serde_json::from_str(r["body"].as_str().unwrap()).unwrap()
    };
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
    assert_eq!(texts[0], "Security notice: Reset user password");
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
    assert_eq!(slack["text"], "Security notice: Reset user password");
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

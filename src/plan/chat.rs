//! Cards for chat channels, built-in: a Teams Adaptive Card (`kind = "teams"`) and Slack Block
//! Kit blocks (`kind = "slack"`), for security teams. Both carry the same facts: the activity,
//! the user, the time, who did it, the result, what changed, and the report link as an action.
//! An operator's template (`template = "….json"` on the channel, see `render::load_json`)
//! replaces the built-in card; what it renders is checked and wrapped here.
//!
//! Every audit value goes where the chat client shows text literally: Adaptive Card `TextRun`s
//! (which do not interpret Markdown, unlike `TextBlock` and `FactSet`) and Slack `plain_text`
//! objects with emoji codes off; Slack's notification fallback, which is always Markdown, has
//! `&`, `<` and `>` escaped. A display name cannot become a link, a mention or formatting.

use serde_json::{Value, json};

use crate::event::{Actor, AuditEvent, ModifiedProperty, Target};

/// What a card says, all of it plain text.
pub(super) struct Card<'a> {
    pub subject: &'a str,
    pub summary: &'a str,
    /// The plain facts of the change ([`super::facts`]).
    pub facts: &'a [String],
    /// The modified properties the facts do not account for, scrubbed.
    pub changes: &'a [&'a ModifiedProperty],
    pub event: &'a AuditEvent,
    pub target: Option<&'a Target>,
    pub report_url: Option<&'a str>,
}

/// The longest value shown for one fact; audit values can be long (JSON blobs of properties).
const MAX_VALUE: usize = 500;

fn clip(text: &str) -> String {
    let mut out: String = text.chars().take(MAX_VALUE).collect();
    if text.chars().count() > MAX_VALUE {
        out.push('…');
    }
    out
}

fn actor(actor: &Actor) -> String {
    let name = actor.display_name.as_deref().unwrap_or_default();
    // Never an object id (an app's id, a target's id): a name or nothing.
    let id = actor
        .upn
        .as_deref()
        .or(actor.service_principal_name.as_deref())
        .unwrap_or_default();
    let mut text = match (name.is_empty(), id.is_empty()) {
        (false, false) => format!("{name} ({id})"),
        (false, true) => name.to_owned(),
        (true, false) => id.to_owned(),
        (true, true) => "unknown".to_owned(),
    };
    if let Some(ip) = &actor.ip {
        text.push_str(&format!(" from {ip}"));
    }
    text
}

fn target(target: &Target) -> String {
    match (target.display_name.as_deref(), target.upn.as_deref()) {
        (Some(name), Some(upn)) => format!("{name} ({upn})"),
        (Some(name), None) => name.to_owned(),
        (None, Some(upn)) => upn.to_owned(),
        (None, None) => "unknown".to_owned(),
    }
}

/// (label, value) pairs, labels ours, values from the audit record.
pub(super) fn facts(card: &Card) -> Vec<(&'static str, String)> {
    let event = card.event;
    let mut facts = vec![("Activity", event.activity.clone())];
    if let Some(t) = card.target.or(event.targets.first()) {
        facts.push(("User", target(t)));
    }
    facts.push((
        "Time",
        format!("{} (UTC)", event.time.strftime("%Y-%m-%d %H:%M:%S")),
    ));
    facts.push(("Initiated by", actor(&event.initiated_by)));
    if let Some(result) = &event.result {
        facts.push(("Result", result.clone()));
    }
    if !card.facts.is_empty() {
        facts.push(("What happened", card.facts.join("\n")));
    }
    let changes: Vec<String> = card
        .changes
        .iter()
        .map(|p| {
            format!(
                "{}: {} → {}",
                p.name,
                p.old.as_deref().unwrap_or("(none)"),
                p.new.as_deref().unwrap_or("(none)")
            )
        })
        .collect();
    if !changes.is_empty() {
        facts.push(("What changed", changes.join("\n")));
    }
    facts
        .into_iter()
        .map(|(label, value)| (label, clip(&value)))
        .collect()
}

/// A Teams Workflows message with the built-in Adaptive Card.
pub(super) fn teams(card: &Card) -> Value {
    let link = card.report_url.map(|url| ("Report this", url));
    teams_parts(card.subject, card.summary, &facts(card), link)
}

/// The built-in Adaptive Card of a subject, a summary and (label, value) facts, every value a
/// `TextRun`, and a `(title, url)` button; also the SOC's card of a report.
pub(super) fn teams_parts(
    subject: &str,
    summary: &str,
    facts: &[(&str, String)],
    link: Option<(&str, &str)>,
) -> Value {
    let run = |text: &str| json!({ "type": "TextRun", "text": text });
    let mut body = vec![
        json!({ "type": "RichTextBlock", "inlines": [
            { "type": "TextRun", "text": clip(subject), "weight": "Bolder", "size": "Medium" }
        ] }),
        json!({ "type": "RichTextBlock", "inlines": [ run(summary) ] }),
    ];
    for (label, value) in facts {
        body.push(
            json!({ "type": "RichTextBlock", "spacing": "Small", "inlines": [
            { "type": "TextRun", "text": format!("{label}: "), "weight": "Bolder" },
            run(&clip(value)),
        ] }),
        );
    }
    let actions: Vec<Value> = link
        .map(|(title, url)| json!({ "type": "Action.OpenUrl", "title": title, "url": url }))
        .into_iter()
        .collect();
    teams_message(json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": actions,
    }))
}

/// The Teams Workflows message that carries an Adaptive Card (built-in or an operator's).
pub(super) fn teams_message(card: Value) -> Value {
    json!({
        "type": "message",
        "attachments": [ {
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        } ],
    })
}

/// An operator's Teams template must render an Adaptive Card; Herald adds the envelope.
pub(super) fn adaptive_card(template: &str, card: Value) -> Result<Value, String> {
    if card.get("type").and_then(Value::as_str) != Some("AdaptiveCard") {
        return Err(format!(
            "template {template} must render an Adaptive Card (an object with \"type\": \"AdaptiveCard\")"
        ));
    }
    Ok(card)
}

/// An operator's Slack template must render a message: an object with `text` or `blocks`.
pub(super) fn slack_message(template: &str, message: Value) -> Result<Value, String> {
    if !message.get("text").is_some_and(Value::is_string)
        && !message.get("blocks").is_some_and(Value::is_array)
    {
        return Err(format!(
            "template {template} must render a Slack message (an object with \"text\" or \"blocks\")"
        ));
    }
    Ok(message)
}

/// `&`, `<` and `>` as Slack's Markdown needs them escaped (also the `slack_escape` filter of
/// operators' templates).
pub(super) fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A Slack incoming-webhook message: a notification fallback and Block Kit blocks.
pub(super) fn slack(card: &Card) -> Value {
    let link = card.report_url.map(|url| ("Report this", url));
    slack_parts(card.subject, card.summary, &facts(card), link)
}

/// The built-in Slack message of a subject, a summary and (label, value) facts, every value
/// `plain_text`, and a `(title, url)` button; also the SOC's message of a report.
pub(super) fn slack_parts(
    subject: &str,
    summary: &str,
    facts: &[(&str, String)],
    link: Option<(&str, &str)>,
) -> Value {
    let plain = |text: &str| json!({ "type": "plain_text", "text": text, "emoji": false });
    let header: String = subject.chars().take(150).collect();
    let fields: Vec<Value> = facts
        .iter()
        .take(10)
        .map(|(label, value)| plain(&format!("{label}: {}", clip(value))))
        .collect();
    let mut blocks = vec![
        json!({ "type": "header", "text": plain(&header) }),
        json!({ "type": "section", "text": plain(summary) }),
        json!({ "type": "section", "fields": fields }),
    ];
    if let Some((title, url)) = link {
        blocks.push(json!({ "type": "actions", "elements": [
            { "type": "button", "text": plain(title), "url": url }
        ] }));
    }
    json!({ "text": slack_escape(subject), "blocks": blocks })
}

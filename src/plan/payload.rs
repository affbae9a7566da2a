//! The JSON a channel delivers when it is not an RFC 5322 message: Herald's built-in schema,
//! `herald.notification.v1` (`kind = "webhook"`), and a Microsoft Graph `message` object
//! (`kind = "graph_mail"`). Every audit field is carried as a JSON string value, escaped by the
//! serializer, so a hostile display name stays data in the receiver's hands (the Graph body is
//! the same escaped HTML as the mail).

use serde::Serialize;

use super::key::NotificationKey;
use super::recipients::Resolved;
use crate::event::{AuditEvent, Target};
use crate::rules::Importance;

#[derive(Serialize)]
struct Payload<'a> {
    schema: &'static str,
    key: &'a str,
    subject: &'a str,
    summary: &'a str,
    rule: Rule<'a>,
    recipient: Recipient<'a>,
    /// The target the notification is about (for a `target` recipient), if any.
    target: Option<&'a Target>,
    event: &'a AuditEvent,
}

#[derive(Serialize)]
struct Rule<'a> {
    name: &'a str,
    importance: &'a str,
    channel: &'a str,
}

#[derive(Serialize)]
struct Recipient<'a> {
    address: &'a str,
    via: &'a str,
    group: Option<&'a str>,
}

pub(super) struct Parts<'a> {
    pub key: &'a NotificationKey,
    pub subject: &'a str,
    pub summary: &'a str,
    pub rule: &'a str,
    pub importance: Importance,
    pub channel: &'a str,
    pub recipient: &'a Resolved,
    pub target: Option<&'a Target>,
    pub event: &'a AuditEvent,
}

pub(super) fn build(parts: Parts) -> Result<Vec<u8>, String> {
    serde_json::to_vec(&Payload {
        schema: "herald.notification.v1",
        key: parts.key.as_str(),
        subject: parts.subject,
        summary: parts.summary,
        rule: Rule {
            name: parts.rule,
            importance: parts.importance.as_str(),
            channel: parts.channel,
        },
        recipient: Recipient {
            address: &parts.recipient.address,
            via: parts.recipient.via,
            group: parts.recipient.group.as_deref(),
        },
        target: parts.target,
        event: parts.event,
    })
    .map_err(|e| format!("building the JSON payload: {e}"))
}

/// A Graph `message` resource for `sendMail`: the rendered subject and HTML, one recipient, the
/// rule's importance, and the notification key as an internet message header.
pub(super) fn graph_message(
    subject: &str,
    html: &str,
    to: &str,
    importance: Importance,
    key: &NotificationKey,
    logo: Option<&crate::config::Logo>,
) -> Result<Vec<u8>, String> {
    let mut message = serde_json::json!({
        "subject": subject,
        "body": { "contentType": "HTML", "content": html },
        "toRecipients": [ { "emailAddress": { "address": to } } ],
        "importance": importance.as_str(),
        // Graph takes custom headers only if they start with `X-`: `Auto-Submitted` cannot be
        // set through sendMail, `X-Auto-Response-Suppress` can.
        "internetMessageHeaders": [
            { "name": "X-Herald-Key", "value": key.as_str() },
            { "name": "X-Auto-Response-Suppress", "value": "All" },
        ],
    });
    if let Some(logo) = logo {
        use base64::Engine;
        // The inline logo as Graph takes it: a fileAttachment with `isInline` and the
        // `contentId` the HTML's `cid:` names.
        message["attachments"] = serde_json::json!([{
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": logo.file_name,
            "contentType": logo.content_type,
            "contentBytes": base64::engine::general_purpose::STANDARD.encode(&logo.bytes),
            "contentId": super::message::LOGO_CID,
            "isInline": true,
        }]);
    }
    serde_json::to_vec(&message).map_err(|e| format!("building the Graph message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_graph_message_carries_the_logo_as_an_inline_attachment() {
        let key = NotificationKey::new(Some("t"), "e1", "r", "o365", "adele@contoso.com");
        let logo = crate::config::Logo {
            bytes: b"\x89PNG\r\n\x1a\nlogo".as_slice().into(),
            content_type: "image/png",
            file_name: "logo.png".to_owned(),
        };
        let body = |logo| {
            let bytes = graph_message(
                "s",
                "<img src=\"cid:logo@herald\">",
                "adele@contoso.com",
                Importance::Normal,
                &key,
                logo,
            )
            .unwrap();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
        };
        let with = body(Some(&logo));
        assert_eq!(
            with["attachments"],
            serde_json::json!([{
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "logo.png",
                "contentType": "image/png",
                "contentBytes": "iVBORw0KGgpsb2dv",
                "contentId": "logo@herald",
                "isInline": true,
            }])
        );
        assert!(body(None).get("attachments").is_none());
    }
}

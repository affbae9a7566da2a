//! The RFC 5322 message for an email notification: multipart/alternative (text, then HTML with
//! inlined CSS), a `Message-ID` derived from the notification key so receivers can drop a
//! duplicate, `Importance`/`X-Priority` headers, and `Auto-Submitted: auto-generated` (RFC 3834)
//! with `X-Auto-Response-Suppress: All`, so out-of-office replies do not come back.
//!
//! Both parts are quoted-printable, whatever they hold: audit text never reaches the SMTP
//! transaction as raw lines, so nothing in it can look like the end of `DATA`.

use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};

use super::key::NotificationKey;
use crate::rules::Importance;

pub(crate) struct Email<'a> {
    pub from: &'a Mailbox,
    pub to: &'a str,
    pub subject: &'a str,
    pub text: String,
    pub html: String,
    pub key: &'a NotificationKey,
    pub importance: Importance,
}

pub(crate) fn build(email: Email) -> Result<Vec<u8>, String> {
    let to: Mailbox = email
        .to
        .parse()
        .map_err(|e| format!("recipient {:?}: {e}", email.to))?;
    let domain = email.from.email.domain();
    let priority = match email.importance {
        Importance::High => "1",
        Importance::Normal => "3",
        Importance::Low => "5",
    };
    let message = Message::builder()
        .from(email.from.clone())
        .to(to)
        .subject(email.subject)
        .message_id(Some(format!("<{}@{domain}>", email.key)))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Importance"),
            email.importance.as_str().to_owned(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Priority"),
            priority.to_owned(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_owned(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
            "All".to_owned(),
        ))
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(quoted_printable(email.text)),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(quoted_printable(email.html)),
                ),
        )
        .map_err(|e| format!("building the message: {e}"))?;
    Ok(message.formatted())
}

fn quoted_printable(text: String) -> Body {
    // Quoted-printable takes any text, so lettre never refuses it.
    Body::new_with_encoding(text, ContentTransferEncoding::QuotedPrintable)
        .unwrap_or_else(Body::new)
}

//! The RFC 5322 message for an email notification: multipart/alternative (text, then HTML with
//! inlined CSS), a `Message-ID` derived from the notification key so receivers can drop a
//! duplicate, `Importance`/`X-Priority` headers, and `Auto-Submitted: auto-generated` (RFC 3834)
//! with `X-Auto-Response-Suppress: All`, so out-of-office replies do not come back.
//!
//! With `[branding] logo_file` the HTML part travels as multipart/related with the logo as an
//! inline image (`Content-ID: <logo@herald>`, referenced as `cid:logo@herald`).
//!
//! Both parts are quoted-printable, whatever they hold: audit text never reaches the SMTP
//! transaction as raw lines, so nothing in it can look like the end of `DATA`.

use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};

use super::key::NotificationKey;
use crate::config::Logo;
use crate::rules::Importance;

/// The Content-ID of the inline logo; templates reference it as `cid:` + this.
pub(crate) const LOGO_CID: &str = "logo@herald";

pub(crate) struct Email<'a> {
    pub from: &'a Mailbox,
    pub to: &'a str,
    pub subject: &'a str,
    pub text: String,
    pub html: String,
    pub key: &'a NotificationKey,
    pub importance: Importance,
    pub logo: Option<&'a Logo>,
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
        .multipart({
            let text = SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(quoted_printable(email.text));
            let html = SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(quoted_printable(email.html));
            let alternative = MultiPart::alternative().singlepart(text);
            match email.logo {
                None => alternative.singlepart(html),
                Some(logo) => {
                    let kind = ContentType::parse(logo.content_type)
                        .map_err(|e| format!("logo content type: {e}"))?;
                    let image = Attachment::new_inline_with_name(
                        LOGO_CID.to_owned(),
                        logo.file_name.clone(),
                    )
                    .body(logo.bytes.to_vec(), kind);
                    alternative.multipart(MultiPart::related().singlepart(html).singlepart(image))
                }
            }
        })
        .map_err(|e| format!("building the message: {e}"))?;
    Ok(message.formatted())
}

fn quoted_printable(text: String) -> Body {
    // Quoted-printable takes any text, so lettre never refuses it.
    Body::new_with_encoding(text, ContentTransferEncoding::QuotedPrintable)
        .unwrap_or_else(Body::new)
}

//! Every audit field is hostile (ARCHITECTURE.md §2.5): what an attacker writes into a display name, a
//! property value or an activity name comes out escaped, and never as a header.

use std::path::Path;

use herald::config::Config;
use herald::pipeline::{Outcome, Pipeline};
use herald::plan::Notification;

const HOSTILE: &[u8] = include_bytes!("fixtures/entra/hostile.json");

/// Notices for every record of hostile.json, with subjects that print the raw activity.
fn notices(extra: &str) -> Vec<Notification> {
    let config = format!(
        r#"
[channel.email]
kind = "smtp"
from = "Security <security@contoso.com>"

[[rule]]
name = "everything"
recipients = ["target"]
subject = "Alert: {{{{ event.activity }}}} for {{{{ target.display_name }}}}"
importance = "high"
{extra}
"#
    );
    let config = Config::parse(Path::new("hostile.toml"), &config).unwrap();
    let pipeline = Pipeline::new(config).unwrap();
    let mut out = Outcome::default();
    pipeline.process("hostile.json", HOSTILE, &mut out);
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    assert!(out.dead_letters.is_empty(), "{:?}", out.dead_letters);
    out.notifications
}

/// The header block of a message (up to the first blank line).
fn headers(n: &Notification) -> String {
    let text = String::from_utf8_lossy(&n.message);
    text.split("\r\n\r\n").next().unwrap().to_owned()
}

#[test]
fn markup_in_display_names_and_values_is_escaped_in_html() {
    let notices = notices("");
    let reset = notices
        .iter()
        .find(|n| n.activity == "Reset user password")
        .unwrap();
    let html = &reset.html;
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<b>bold</b>"), "{html}");
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{html}"
    );
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(html.contains("&lt;b&gt;bold&lt;/b&gt; &amp;"), "{html}");
    assert!(!html.contains("href=\"javascript:"), "{html}");
    // The plain-text part shows the same text literally: text/plain is never interpreted.
    assert!(reset.text.contains("<img src=x onerror=alert(1)>"));
}

#[test]
fn a_line_break_in_an_activity_cannot_add_a_header() {
    let notices = notices("");
    let injected = notices
        .iter()
        .find(|n| n.activity.contains("Bcc"))
        .expect("the injected record is selected");
    assert!(!injected.subject.contains('\r') && !injected.subject.contains('\n'));
    assert!(
        injected
            .subject
            .starts_with("Alert: Change user password Bcc: attacker@evil.example for")
    );
    let headers = headers(injected);
    assert!(
        !headers
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
        "{headers}"
    );
    let to: Vec<_> = headers.lines().filter(|l| l.starts_with("To:")).collect();
    assert_eq!(to, ["To: megan.bowen@contoso.com"]);
    // Whatever the encoding of the subject, it is one header, not two.
    assert_eq!(
        headers
            .lines()
            .filter(|l| l.starts_with("Subject:"))
            .count(),
        1
    );
}

#[test]
fn the_subject_of_the_hostile_display_name_is_plain_text() {
    // Subjects are not HTML: no entities, but no control characters either.
    let notices = notices("");
    let reset = notices
        .iter()
        .find(|n| n.activity == "Reset user password")
        .unwrap();
    assert_eq!(
        reset.subject,
        "Alert: Reset user password for <script>alert(\"x\")</script> Adele"
    );
}

#[test]
fn importance_sets_the_priority_headers() {
    for (importance, priority) in [("low", "5"), ("normal", "3"), ("high", "1")] {
        let config = format!(
            "[channel.email]\nkind = \"smtp\"\nfrom = \"s@contoso.com\"\n[[rule]]\nname = \"r\"\nactivities = [\"Reset user password\"]\nrecipients = [\"target\"]\nimportance = \"{importance}\"\n"
        );
        let pipeline = Pipeline::new(Config::parse(Path::new("t.toml"), &config).unwrap()).unwrap();
        let mut out = Outcome::default();
        pipeline.process("hostile.json", HOSTILE, &mut out);
        let headers = headers(&out.notifications[0]);
        assert!(
            headers.contains(&format!("Importance: {importance}\r\n")),
            "{headers}"
        );
        assert!(
            headers.contains(&format!("X-Priority: {priority}\r\n")),
            "{headers}"
        );
    }
}

#[test]
fn times_are_shown_in_the_configured_zone() {
    let render = |branding: &str| {
        let config = format!(
            "{branding}\n[channel.email]\nkind = \"smtp\"\nfrom = \"s@contoso.com\"\n[[rule]]\nname = \"r\"\nactivities = [\"Reset user password\"]\nrecipients = [\"target\"]\n"
        );
        let pipeline = Pipeline::new(Config::parse(Path::new("t.toml"), &config).unwrap()).unwrap();
        let mut out = Outcome::default();
        pipeline.process("hostile.json", HOSTILE, &mut out);
        out.notifications[0].text.clone()
    };
    // The record's time is 2026-10-14T23:25:55Z.
    assert!(
        render("").contains("Wednesday 14 October 2026, 23:25 UTC"),
        "{}",
        render("")
    );
    let berlin = render("[branding]\ntimezone = \"Europe/Berlin\"");
    assert!(
        berlin.contains("Thursday 15 October 2026, 01:25 CEST"),
        "{berlin}"
    );
}

#[test]
fn keys_and_message_ids_are_stable_and_distinct_per_rule() {
    let first = notices(
        "\n[[rule]]\nname = \"second\"\nactivities = [\"Reset user password\"]\nrecipients = [\"target\"]\n",
    );
    let again = notices(
        "\n[[rule]]\nname = \"second\"\nactivities = [\"Reset user password\"]\nrecipients = [\"target\"]\n",
    );
    let keys = |ns: &[Notification]| ns.iter().map(|n| n.key.to_string()).collect::<Vec<_>>();
    assert_eq!(keys(&first), keys(&again));
    let reset: Vec<_> = first
        .iter()
        .filter(|n| n.activity == "Reset user password")
        .collect();
    assert_eq!(reset.len(), 2);
    assert_ne!(reset[0].key, reset[1].key);
    for n in &first {
        assert!(headers(n).contains(&format!("Message-ID: <{}@contoso.com>", n.key)));
    }
}

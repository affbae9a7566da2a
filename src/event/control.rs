//! Control characters out of audit text, once, where events are decoded (ARCHITECTURE.md §2.5).
//!
//! Every string of an [`AuditEvent`] was written by whoever made the audited change. A CR, LF,
//! NUL, ESC or any other C0/C1 control character in a display name could end a header line, end
//! an SMTP `DATA` section (`\r.\r\n`), or move a terminal's cursor; none of them belongs in a
//! name, a UPN or a property value. Line breaks and tabs become a space (a multi-line value
//! stays readable on one line), the rest are removed; nothing else is changed. The record's raw
//! JSON is left as it came (dead letters and templates' `raw` are evidence).

use serde_json::Value;

use super::{AuditEvent, Target};

/// Whether `c` is removed from audit text: a control character (C0, C1, DEL), or an
/// invisible character that changes how the text around it reads — bidirectional overrides
/// and isolates (U+202A–U+202E, U+2066–U+2069), the directional marks, zero-width characters
/// (U+200B–U+200F) and the BOM — with which a display name could make "gmail.com" read as
/// "moc.liamg" or hide text inside a headline.
fn unwanted(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// `text` without control characters and invisible direction or zero-width characters
/// ([`unwanted`]): `\r`, `\n` and `\t` become a space, the others go.
pub fn clean(text: &str) -> String {
    if !text.chars().any(unwanted) {
        return text.to_owned();
    }
    text.chars()
        .filter_map(|c| match c {
            '\r' | '\n' | '\t' => Some(' '),
            c if unwanted(c) => None,
            c => Some(c),
        })
        .collect()
}

fn clean_in_place(text: &mut String) {
    if text.chars().any(unwanted) {
        *text = clean(text);
    }
}

fn clean_option(text: &mut Option<String>) {
    if let Some(t) = text {
        clean_in_place(t);
    }
}

fn clean_json(value: &mut Value) {
    match value {
        Value::String(s) => clean_in_place(s),
        Value::Array(items) => items.iter_mut().for_each(clean_json),
        Value::Object(map) => {
            // Keys are decoded audit text too (`{"\u0007": 1}` inside a modified property);
            // of two keys that clean to the same text, the later is kept.
            if map.keys().any(|k| k.chars().any(unwanted)) {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(key, value)| (clean(&key), value))
                    .collect();
            }
            map.values_mut().for_each(clean_json)
        }
        _ => {}
    }
}

/// Cleans every decoded string of `event` (not its `raw` record).
pub(crate) fn clean_event(event: &mut AuditEvent) {
    clean_in_place(&mut event.id);
    clean_in_place(&mut event.activity);
    for field in [
        &mut event.tenant_id,
        &mut event.category,
        &mut event.operation_name,
        &mut event.operation_type,
        &mut event.result,
        &mut event.result_reason,
        &mut event.logged_by_service,
        &mut event.correlation_id,
    ] {
        clean_option(field);
    }
    let actor = &mut event.initiated_by;
    for field in [
        &mut actor.id,
        &mut actor.display_name,
        &mut actor.upn,
        &mut actor.ip,
        &mut actor.app_id,
        &mut actor.service_principal_name,
    ] {
        clean_option(field);
    }
    event.targets.iter_mut().for_each(clean_target);
    for detail in &mut event.additional_details {
        clean_in_place(&mut detail.key);
        clean_in_place(&mut detail.value);
    }
}

fn clean_target(target: &mut Target) {
    for field in [
        &mut target.id,
        &mut target.kind,
        &mut target.display_name,
        &mut target.upn,
    ] {
        clean_option(field);
    }
    for property in &mut target.modified_properties {
        clean_in_place(&mut property.name);
        clean_option(&mut property.old);
        clean_option(&mut property.new);
        clean_json(&mut property.old_json);
        clean_json(&mut property.new_json);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_overrides_and_zero_width_characters_are_removed() {
        assert_eq!(
            clean("Adele\u{202E}moc.liamg\u{200B}\u{2066}x\u{FEFF}"),
            "Adelemoc.liamgx"
        );
    }

    #[test]
    fn control_characters_are_removed_and_line_breaks_become_spaces() {
        assert_eq!(
            clean("Adele\r.\r\nMAIL FROM:<x@evil>\0\u{1b}[31m\u{85}"),
            "Adele .  MAIL FROM:<x@evil>[31m"
        );
        assert_eq!(clean("Zoë Müller 🙂"), "Zoë Müller 🙂");
    }
}

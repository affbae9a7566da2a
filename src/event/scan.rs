//! Format detection and the hot-path scan of one input.
//!
//! Accepted, auto-detected per input (ARCHITECTURE.md §4): the diagnostic-settings envelope
//! `{"records":[…]}`, one diagnostic record, Graph pages `{"value":[…]}`, one Graph
//! `directoryAudit`, a JSON array of records, and newline-delimited JSON of any of these.
//!
//! The scan reads each record into a borrowed [`Head`] (a handful of string slices; every other
//! field is skipped without being built), so a record no rule wants costs one pass of the JSON
//! parser and no allocation. The full [`AuditEvent`] is built by [`RecordView::decode`].

use std::borrow::Cow;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::lenient::LenientStr;
use super::normalize::{Checked, to_event};
use super::time::parse_time;
use super::{AuditEvent, DeadLetter, Position};

/// What the scan yields, in input order.
#[derive(Debug)]
pub enum Item<'a> {
    Record(RecordView<'a>),
    Skipped(Skipped<'a>),
    Dead(DeadLetter),
}

/// A record of another log category (`SignInLogs`, `UserRiskEvents`, …) that shares the hub.
#[derive(Debug)]
pub struct Skipped<'a> {
    pub category: Cow<'a, str>,
    pub position: Position,
}

/// A usable audit record, not yet fully decoded.
#[derive(Debug)]
pub struct RecordView<'a> {
    pub raw: &'a str,
    pub position: Position,
    id: Cow<'a, str>,
    activity: Cow<'a, str>,
    operation_name: Option<Cow<'a, str>>,
    time: Timestamp,
    diagnostic: bool,
}

impl<'a> RecordView<'a> {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `activityDisplayName`, trimmed.
    pub fn activity(&self) -> &str {
        &self.activity
    }

    /// The diagnostic `operationName`, when the record carries one.
    pub fn operation_name(&self) -> Option<&str> {
        self.operation_name.as_deref()
    }

    pub fn time(&self) -> Timestamp {
        self.time
    }

    /// Builds the full event. Fails only if the record is nested beyond the JSON parser's limit
    /// after all, which the scan's parser would normally have refused first.
    pub fn decode(&self) -> Result<AuditEvent, String> {
        let raw = serde_json::from_str(self.raw).map_err(|e| format!("invalid JSON: {e}"))?;
        Ok(to_event(
            raw,
            Checked {
                id: self.id.clone().into_owned(),
                activity: self.activity.clone().into_owned(),
                time: self.time,
                diagnostic: self.diagnostic,
            },
        ))
    }
}

/// The few fields the scan reads, from a record or from a container around records. Both record
/// shapes fit: diagnostic records keep the audit fields under `properties`, Graph ones at the top.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    records: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    value: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    id: LenientStr<'a>,
    #[serde(borrow, default)]
    category: LenientStr<'a>,
    #[serde(borrow, default, rename = "operationName")]
    operation_name: LenientStr<'a>,
    #[serde(borrow, default)]
    time: LenientStr<'a>,
    #[serde(borrow, default, rename = "activityDisplayName")]
    activity: LenientStr<'a>,
    #[serde(borrow, default, rename = "activityDateTime")]
    activity_time: LenientStr<'a>,
    #[serde(borrow, default, rename = "createdDateTime")]
    created_time: LenientStr<'a>,
    #[serde(borrow, default)]
    properties: Option<Properties<'a>>,
    /// What a Graph object says it is (`#microsoft.graph.signIn`), when it says so.
    #[serde(borrow, default, rename = "@odata.type")]
    odata_type: LenientStr<'a>,
    /// Fields every Graph `signIn` has and no `directoryAudit` has.
    #[serde(borrow, default, rename = "appDisplayName")]
    app_display_name: LenientStr<'a>,
    #[serde(borrow, default, rename = "clientAppUsed")]
    client_app_used: LenientStr<'a>,
}

#[derive(Deserialize)]
struct Properties<'a> {
    #[serde(borrow, default)]
    id: LenientStr<'a>,
    #[serde(borrow, default, rename = "activityDisplayName")]
    activity: LenientStr<'a>,
    #[serde(borrow, default, rename = "activityDateTime")]
    activity_time: LenientStr<'a>,
}

/// Scans one input and hands every record, skip and dead letter to `emit`, in order.
///
/// `input` names the input in dead letters. Never panics, whatever the bytes.
pub fn scan<'a>(input: &str, bytes: &'a [u8], mut emit: impl FnMut(Item<'a>)) {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let mut scanner = Scanner {
        input,
        emit: &mut emit,
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return scanner.lines(bytes);
    };
    let err = match serde_json::from_str::<Head>(text) {
        Ok(head) => return scanner.document(head, text, 1),
        Err(e) => e,
    };
    // A JSON array of records, as exports write them.
    if text.trim_start().starts_with('[')
        && let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(text)
    {
        return scanner.items("", &items, text, 1);
    }
    if looks_like_lines(text) {
        scanner.lines(bytes)
    } else {
        scanner.dead(Position::line(1), text.as_bytes(), invalid_json(&err))
    }
}

/// Newline-delimited input: some line is a complete JSON object on its own. (A pretty-printed
/// document never has one: its lines are fragments like `{` or `"key": "value",`.)
fn looks_like_lines(text: &str) -> bool {
    text.trim().contains('\n')
        && text.lines().any(|line| {
            let line = line.trim();
            line.starts_with('{') && serde_json::from_str::<&RawValue>(line).is_ok()
        })
}

fn invalid_json(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Eof => format!("truncated JSON: {e}"),
        serde_json::error::Category::Data => format!("unusable record: {e}"),
        _ => format!("invalid JSON: {e}"),
    }
}

/// Quotes a value from the input for an error message: escaped, so it cannot drive a terminal,
/// and cut short.
fn quoted(value: &str) -> String {
    let cut: String = value.chars().take(60).collect();
    let ellipsis = if cut.len() < value.len() { "…" } else { "" };
    format!("{cut:?}{ellipsis}")
}

struct Scanner<'s, 'a> {
    input: &'s str,
    emit: &'s mut dyn FnMut(Item<'a>),
}

impl<'a> Scanner<'_, 'a> {
    fn dead(&mut self, position: Position, raw: &[u8], reason: String) {
        (self.emit)(Item::Dead(DeadLetter {
            input: self.input.to_owned(),
            position,
            reason,
            raw: raw.to_vec(),
        }));
    }

    /// One top-level JSON value starting on `line`: an envelope, a Graph page or a record.
    fn document(&mut self, mut head: Head<'a>, text: &'a str, line: usize) {
        let (array, items) = match (head.records.take(), head.value.take()) {
            (Some(records), _) => ("records", records),
            (None, Some(value)) => ("value", value),
            (None, None) => return self.head(head, text, Position::line(line)),
        };
        self.items(array, &items, text, line);
    }

    fn items(&mut self, array: &'static str, items: &[&'a RawValue], text: &'a str, line: usize) {
        let mut lines = LineCursor::new(text, line);
        for (index, item) in items.iter().enumerate() {
            let raw = item.get();
            let position = Position {
                line: lines.line_at(raw),
                array: Some(array),
                index: Some(index),
            };
            self.record(raw, position);
        }
    }

    fn lines(&mut self, bytes: &'a [u8]) {
        for (number, line) in bytes.split(|b| *b == b'\n').enumerate() {
            let number = number + 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Ok(text) = std::str::from_utf8(line) else {
                self.dead(
                    Position::line(number),
                    line,
                    "line is not valid UTF-8".into(),
                );
                continue;
            };
            let text = text.trim();
            if !text.starts_with('{') {
                self.dead(Position::line(number), line, not_an_object(text));
                continue;
            }
            match serde_json::from_str::<Head>(text) {
                Ok(head) => self.document(head, text, number),
                Err(e) => self.dead(Position::line(number), line, invalid_json(&e)),
            }
        }
    }

    fn record(&mut self, raw: &'a str, position: Position) {
        if !raw.starts_with('{') {
            return self.dead(position, raw.as_bytes(), not_an_object(raw));
        }
        match serde_json::from_str::<Head>(raw) {
            Ok(head) => self.head(head, raw, position),
            Err(e) => self.dead(position, raw.as_bytes(), invalid_json(&e)),
        }
    }

    /// Checks the three things a record cannot do without, and routes it.
    fn head(&mut self, head: Head<'a>, raw: &'a str, position: Position) {
        let Head {
            id,
            category,
            operation_name,
            time,
            activity,
            activity_time,
            created_time,
            properties,
            odata_type,
            app_display_name,
            client_app_used,
            ..
        } = head;
        let diagnostic = properties.is_some();
        let (id, id_field, activity, activity_field, when, when_field) = match properties {
            // Diagnostic settings: the log category is at the top, the audit fields inside.
            // Other categories share the hub (sign-ins, risk events, Graph activity); a record
            // of an unexpected category that still carries an audit activity is decoded rather
            // than skipped, so a mislabelled audit record is not passed over.
            Some(props) => {
                if let Some(category) = category
                    .0
                    .filter(|c| !c.trim().eq_ignore_ascii_case("AuditLogs"))
                    .filter(|_| props.activity.get().is_none())
                {
                    return (self.emit)(Item::Skipped(Skipped { category, position }));
                }
                let (when, when_field) = match props.activity_time.0 {
                    Some(t) => (Some(t), "properties.activityDateTime"),
                    None => (time.0, "time"),
                };
                let (activity, activity_field) = match props.activity.get() {
                    Some(_) => (props.activity, "properties.activityDisplayName"),
                    None => (operation_name.clone(), "operationName"),
                };
                (
                    props.id,
                    "properties.id",
                    activity,
                    activity_field,
                    when,
                    when_field,
                )
            }
            None => {
                // Graph objects of another kind read from the same place (a sign-in export
                // beside the audit log) are skipped by kind, as other hub categories are.
                if activity.get().is_none()
                    && let Some(kind) =
                        other_graph_kind(&odata_type, &app_display_name, &client_app_used)
                {
                    return (self.emit)(Item::Skipped(Skipped {
                        category: kind,
                        position,
                    }));
                }
                let (when, when_field) = match activity_time.0 {
                    Some(t) => (Some(t), "activityDateTime"),
                    None => (created_time.0, "createdDateTime"),
                };
                (id, "id", activity, "activityDisplayName", when, when_field)
            }
        };
        let Some(id_text) = id.get() else {
            return self.dead(
                position,
                raw.as_bytes(),
                format!("missing `{id_field}`: an audit record needs an id"),
            );
        };
        let Some(activity_text) = activity.get() else {
            return self.dead(
                position,
                raw.as_bytes(),
                format!("missing `{activity_field}`: an audit record needs an activity name"),
            );
        };
        let Some(when) = when.filter(|w| !w.trim().is_empty()) else {
            return self.dead(
                position,
                raw.as_bytes(),
                format!("missing `{when_field}`: an audit record needs a time"),
            );
        };
        let Some(time) = parse_time(&when) else {
            return self.dead(
                position,
                raw.as_bytes(),
                format!("`{when_field}` {} is not a timestamp", quoted(&when)),
            );
        };
        let view = RecordView {
            raw,
            position,
            id: trimmed(&id, id_text),
            activity: trimmed(&activity, activity_text),
            operation_name: if diagnostic {
                operation_name.get().map(|op| Cow::Owned(op.to_owned()))
            } else {
                None
            },
            time,
            diagnostic,
        };
        (self.emit)(Item::Record(view))
    }
}

/// The trimmed text of a lenient field, borrowed from the input when the JSON had no escapes.
fn trimmed<'a>(field: &LenientStr<'a>, text: &str) -> Cow<'a, str> {
    match &field.0 {
        Some(Cow::Borrowed(s)) => Cow::Borrowed(s.trim()),
        _ => Cow::Owned(text.to_owned()),
    }
}

fn not_an_object(raw: &str) -> String {
    let found = match raw.trim_start().chars().next() {
        Some('[') => "an array",
        Some('"') => "a string",
        Some('t' | 'f') => "a boolean",
        Some('n') => "null",
        Some('-' | '0'..='9') => "a number",
        _ => "something else",
    };
    format!("record is not a JSON object (found {found})")
}

/// Line numbers of records inside one document, counted incrementally as records come in order.
struct LineCursor<'a> {
    text: &'a str,
    offset: usize,
    line: usize,
}

impl<'a> LineCursor<'a> {
    fn new(text: &'a str, line: usize) -> Self {
        LineCursor {
            text,
            offset: 0,
            line,
        }
    }

    /// The line on which `part` (a slice of the document) starts.
    fn line_at(&mut self, part: &str) -> usize {
        let at = (part.as_ptr() as usize).saturating_sub(self.text.as_ptr() as usize);
        let at = at.min(self.text.len());
        if at >= self.offset {
            self.line += self.text.as_bytes()[self.offset..at]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            self.offset = at;
        }
        self.line
    }
}

/// The kind of a Graph object that is not a `directoryAudit`: named by its `@odata.type`
/// (`#microsoft.graph.signIn` → `Graph signIn`), or a sign-in by the fields only sign-ins have
/// (`appDisplayName`, `clientAppUsed`). `None`: it may be a broken audit record, kept as a
/// dead letter.
fn other_graph_kind<'a>(
    odata_type: &LenientStr<'a>,
    app_display_name: &LenientStr<'a>,
    client_app_used: &LenientStr<'a>,
) -> Option<Cow<'a, str>> {
    if let Some(kind) = odata_type.get() {
        // Attacker-controlled like every field: only letters and digits, briefly, name it.
        let kind: String = kind
            .trim()
            .trim_start_matches("#microsoft.graph.")
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(40)
            .collect();
        if kind.is_empty() || kind.eq_ignore_ascii_case("directoryAudit") {
            return None;
        }
        return Some(Cow::Owned(format!("Graph {kind}")));
    }
    (app_display_name.get().is_some() || client_app_used.get().is_some())
        .then_some(Cow::Borrowed("Graph signIn"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<String> {
        let mut out = Vec::new();
        scan("t", input.as_bytes(), |item| {
            out.push(match item {
                Item::Record(r) => format!("record {}", r.id()),
                Item::Skipped(s) => format!("skipped {}", s.category),
                Item::Dead(d) => format!("dead {}", d.reason),
            })
        });
        out
    }

    #[test]
    fn other_categories_are_skipped_but_mislabelled_audit_records_are_not() {
        let input = concat!(
            r#"{"category":"SignInLogs","time":"2026-01-01T00:00:00Z","properties":{"id":"s1"}}"#,
            "\n",
            r#"{"category":"Policy","time":"2026-01-01T00:00:00Z","properties":{"id":"a1","activityDisplayName":"Update policy"}}"#,
            "\n"
        );
        assert_eq!(kinds(input), ["skipped SignInLogs", "record a1"]);
    }

    #[test]
    fn graph_objects_of_another_kind_are_skipped_by_kind_and_broken_audits_are_kept() {
        let input = concat!(
            // A Graph signIn, as the sign-in API returns it: no activity, sign-in fields.
            r#"{"id":"s1","createdDateTime":"2026-01-01T00:00:00Z","userPrincipalName":"adele@contoso.com","appDisplayName":"Office 365","clientAppUsed":"Browser","status":{"errorCode":0}}"#,
            "
",
            // Named by its type, with hostile characters in it.
            r##"{"@odata.type":"#microsoft.graph.riskDetection\u0007<b>","id":"r1"}"##,
            "
",
            // A directoryAudit that lost its activity is a broken audit record.
            r##"{"@odata.type":"#microsoft.graph.directoryAudit","id":"a1","activityDateTime":"2026-01-01T00:00:00Z"}"##,
            "
",
            r#"{"id":"a2","activityDateTime":"2026-01-01T00:00:00Z"}"#,
            "
"
        );
        let kinds = kinds(input);
        assert_eq!(
            kinds[..2],
            ["skipped Graph signIn", "skipped Graph riskDetectionb"]
        );
        assert!(kinds[2].starts_with("dead"), "{kinds:?}");
        assert!(kinds[3].starts_with("dead"), "{kinds:?}");
    }
}

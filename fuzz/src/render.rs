//! `render`: a valid audit record whose every writable field is fuzz text, through the
//! pipeline under every channel format: the built-in `security-notice` (HTML and text mail,
//! SMTP and Graph), the built-in webhook payload, Teams card and Slack message, and operator
//! JSON templates for each (`fuzz/templates/`), in one of two branding zones.
//!
//! Input: one byte of switches (bits 0-2 the time, 3-4 the initiator, 5 the record's shape,
//! 6-7 the zone), then the fields in [`FIELDS`] order, separated by `0xFF`
//! (which UTF-8 text never holds; fields are read lossily). A missing field keeps the
//! ordinary value. Asserted: the record is used, and every notice passes [`super::checks`].

use serde_json::{Value, json};

use super::checks;

/// The fields fuzz text replaces, in input order.
const FIELDS: [&str; 18] = [
    "activity",
    "initiator display name",
    "initiator UPN",
    "IP address",
    "target display name",
    "target UPN",
    "target type",
    "modified property name",
    "old value",
    "new value",
    "additional detail key",
    "additional detail value",
    "result",
    "result reason",
    "id",
    "app display name",
    "time",
    "logged by service",
];

/// Times the switches choose from: Jiff's last and first instants, a fold in the Chatham
/// zone, a gap in Europe's, the first year, the epoch; switch 7 takes the `time` field.
const TIMES: [&str; 7] = [
    "2026-10-14T23:25:55.1234567+00:00",
    "9999-12-30T22:00:00.999999999Z",
    "-009999-01-02T01:59:59Z",
    "2026-04-05T02:45:00+13:45",
    "2026-03-29T01:30:00Z",
    "0001-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
];

pub fn run(data: &[u8]) {
    let Some((&switches, rest)) = data.split_first() else {
        return;
    };
    let fields: Vec<String> = rest
        .split(|b| *b == 0xFF)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    let field = |i: usize, ordinary: &str| {
        debug_assert!(i < FIELDS.len());
        fields.get(i).cloned().unwrap_or(ordinary.to_owned())
    };
    // The scan refuses a record without these; keep it usable.
    let usable = |text: String, ordinary: &str| {
        let bare = text.trim();
        if text.chars().all(|c| c.is_whitespace() || c.is_control())
            || bare == "null"
            || bare == "<null>"
        {
            ordinary.to_owned()
        } else {
            text
        }
    };
    let activity = usable(field(0, "Reset user password"), "Reset user password");
    let id = usable(
        field(14, "Directory_fuzz_00001_1"),
        "Directory_fuzz_00001_1",
    );
    let fuzzed_time = switches & 0b111 == 7;
    let time = match TIMES.get(usize::from(switches & 0b111)) {
        Some(time) => (*time).to_owned(),
        None => field(16, TIMES[0]),
    };
    let initiated_by = match (switches >> 3) & 0b11 {
        0 | 1 => json!({ "user": {
            "id": "0b7d3f2a-0000-4000-8000-000000000001",
            "displayName": field(1, "Irvin Sayers"),
            "userPrincipalName": field(2, "irvin.sayers@contoso.com"),
            "ipAddress": field(3, "203.0.113.24"),
        } }),
        2 => json!({ "app": {
            "appId": null,
            "displayName": field(15, "Device Registration Service"),
            "servicePrincipalId": "0b7d3f2a-0000-4000-8000-000000000002",
            "servicePrincipalName": field(15, "Device Registration Service"),
        } }),
        _ => Value::Null,
    };
    let target = json!({
        "id": "6a1e6c4d-0000-4000-8000-000000000003",
        "displayName": field(4, "Adele Vance"),
        "userPrincipalName": field(5, "adele.vance@contoso.com"),
        "type": field(6, "User"),
        "modifiedProperties": [ {
            "displayName": field(7, "Department"),
            "oldValue": field(8, "[\"Finance\"]"),
            "newValue": field(9, "[\"Sales\"]"),
        } ],
    });
    // A second user with a valid address, so there is always someone the target rule tells.
    let second = json!({
        "id": "6a1e6c4d-0000-4000-8000-000000000004",
        "displayName": field(4, "Megan Bowen"),
        "userPrincipalName": "megan.bowen@contoso.com",
        "type": "User",
        "modifiedProperties": [],
    });
    let audit = json!({
        "id": id,
        "category": "UserManagement",
        "correlationId": "f7af8e3c-05e4-4a60-80ab-1ddf9360d462",
        "result": field(12, "success"),
        "resultReason": field(13, ""),
        "activityDisplayName": activity,
        "activityDateTime": time,
        "loggedByService": field(17, "Core Directory"),
        "operationType": "Reset",
        "initiatedBy": initiated_by,
        "targetResources": [target, second],
        "additionalDetails": [ { "key": field(10, "User-Agent"), "value": field(11, "Mozilla/5.0") } ],
    });
    let record = if switches & 0b10_0000 == 0 {
        // Event Hubs: a diagnostic-settings envelope.
        json!({ "records": [ {
            "time": "2026-10-14T23:25:55.1234567Z",
            "resourceId": "/tenants/7f3c2a10-4b6e-4d2a-9c1e-2f5a8b0d6e41/providers/Microsoft.aadiam",
            "operationName": activity,
            "category": "AuditLogs",
            "tenantId": "7f3c2a10-4b6e-4d2a-9c1e-2f5a8b0d6e41",
            "callerIpAddress": field(3, "203.0.113.24"),
            "properties": audit,
        } ] })
    } else {
        // Graph: a directoryAudit page.
        json!({ "value": [audit] })
    };
    let bytes = serde_json::to_vec(&record).expect("a record serializes");
    let zones = checks::every_format();
    let pipeline = &zones[usize::from(switches >> 6) % zones.len()];
    let out = checks::process(pipeline, &bytes);
    if !fuzzed_time {
        let dead: Vec<String> = out.dead_letters.iter().map(|d| d.to_string()).collect();
        assert_eq!(out.records, 1, "the record was not used: {dead:?}");
    }
    assert!(out.selected <= 1);
}

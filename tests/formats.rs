//! Decoding: every accepted format, every quirk of real records, dead letters with their
//! positions, and arbitrary bytes that must never panic.

use herald::event::{ActorKind, AuditEvent, DeadLetter, Item, scan};
use proptest::prelude::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/entra/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[derive(Default)]
struct Scanned {
    events: Vec<(String, AuditEvent)>,
    skipped: Vec<(String, String)>,
    dead: Vec<DeadLetter>,
}

/// Scans `bytes` and fully decodes every record, keeping each record's position.
fn scan_all(name: &str, bytes: &[u8]) -> Scanned {
    let mut out = Scanned::default();
    scan(name, bytes, |item| match item {
        Item::Record(view) => {
            let position = view.position.to_string();
            out.events.push((position, view.decode().unwrap()));
        }
        Item::Skipped(s) => out
            .skipped
            .push((s.category.into_owned(), s.position.to_string())),
        Item::Dead(d) => out.dead.push(d),
    });
    out
}

fn events(name: &str) -> Vec<AuditEvent> {
    let scanned = scan_all(name, &fixture(name));
    assert!(scanned.dead.is_empty(), "{name}: {:?}", scanned.dead);
    scanned.events.into_iter().map(|(_, e)| e).collect()
}

fn quirk(name: &str) -> AuditEvent {
    events("quirks.ndjson")
        .into_iter()
        .find(|e| {
            e.additional_details
                .iter()
                .any(|d| d.key == "fixture-quirk" && d.value == name)
        })
        .unwrap_or_else(|| panic!("no quirk {name}"))
}

// --- formats -------------------------------------------------------------------------------

#[test]
fn envelope_records_are_decoded_with_their_index() {
    // Event Hubs body: {"records":[…]}.
    let scanned = scan_all("reset", &fixture("envelope-reset-password.json"));
    assert_eq!(scanned.events.len(), 1);
    let (position, e) = &scanned.events[0];
    assert_eq!(position, "line 3, records[0]");
    assert_eq!(e.activity, "Reset user password");
    assert_eq!(e.category.as_deref(), Some("UserManagement"));
    assert_eq!(e.logged_by_service.as_deref(), Some("Core Directory"));
    assert_eq!(e.result.as_deref(), Some("success"));
    assert_eq!(
        e.tenant_id.as_deref(),
        Some("7f3c2a10-4b6e-4d2a-9c1e-2f5a8b0d6e41")
    );
    assert_eq!(e.initiated_by.kind, ActorKind::User);
    assert_eq!(
        e.initiated_by.upn.as_deref(),
        Some("irvin.sayers@contoso.com")
    );
    assert_eq!(e.initiated_by.ip.as_deref(), Some("203.0.113.24"));
    assert_eq!(e.targets.len(), 1);
    assert_eq!(e.targets[0].upn.as_deref(), Some("adele.vance@contoso.com"));
    assert!(e.targets[0].is_type("User"));
}

#[test]
fn a_single_diagnostic_record_decodes() {
    let bytes = fixture("quirks.ndjson");
    let line = bytes.split(|b| *b == b'\n').next().unwrap();
    let scanned = scan_all("one", line);
    assert_eq!(scanned.events.len(), 1);
    assert_eq!(scanned.events[0].0, "line 1");
}

#[test]
fn newline_delimited_records_carry_their_line() {
    let scanned = scan_all("quirks", &fixture("quirks.ndjson"));
    assert!(scanned.dead.is_empty(), "{:?}", scanned.dead);
    let positions: Vec<_> = scanned.events.iter().map(|(p, _)| p.clone()).collect();
    let want: Vec<_> = (1..=17).map(|l| format!("line {l}")).collect();
    assert_eq!(positions, want);
}

#[test]
fn graph_page_records_are_decoded_with_their_index() {
    // GET /auditLogs/directoryAudits page, with @odata.nextLink and capitalised `Type`.
    let scanned = scan_all("graph", &fixture("graph-page.json"));
    assert!(scanned.dead.is_empty());
    let positions: Vec<_> = scanned
        .events
        .iter()
        .map(|(p, _)| p.split(", ").nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(positions, ["value[0]", "value[1]", "value[2]"]);
    let group = &scanned.events[0].1;
    assert_eq!(group.activity, "Add member to group");
    let types: Vec<_> = group
        .targets
        .iter()
        .map(|t| t.kind.clone().unwrap())
        .collect();
    assert_eq!(types, ["Group", "User"]);
    let by_app = &scanned.events[1].1;
    assert_eq!(by_app.initiated_by.kind, ActorKind::App);
    let sspr = &scanned.events[2].1;
    assert_eq!(
        sspr.logged_by_service.as_deref(),
        Some("Self-service Password Management")
    );
    assert!(sspr.initiator_is(&sspr.targets[0]));
}

#[test]
fn a_single_graph_object_decodes_strong_authentication_changes() {
    let e = &events("graph-single-strong-auth.json")[0];
    assert_eq!(e.activity, "Update user");
    let p = e.targets[0]
        .modified_properties
        .iter()
        .find(|p| p.name == "StrongAuthenticationMethod")
        .unwrap();
    // Readable, not a JSON blob; the structure stays in `old_json`/`new_json`.
    assert_eq!(p.old.as_deref(), Some("MethodType: 6, Default: true"));
    assert!(p.new_json.is_array());
    assert_eq!(p.new_json.as_array().unwrap().len(), 2);
}

#[test]
fn graph_record_with_created_date_time_only_decodes() {
    let e = &events("graph-created-date-time.json")[0];
    assert_eq!(e.activity, "Reset user password");
}

#[test]
fn graph_documentation_singular_target_resource_is_read() {
    let page = r#"{"value":[{"id":"a1","activityDisplayName":"Add member to group","activityDateTime":"2026-01-01T00:00:00Z",
        "targetResource":[{"id":"u1","Type":"User","userPrincipalName":"adele.vance@contoso.com","modifiedProperties":[]}]}]}"#;
    let scanned = scan_all("page", page.as_bytes());
    assert_eq!(
        scanned.events[0].1.targets[0].upn.as_deref(),
        Some("adele.vance@contoso.com")
    );
}

#[test]
fn a_json_array_of_records_decodes() {
    let bytes = fixture("quirks.ndjson");
    let lines: Vec<&str> = std::str::from_utf8(&bytes)
        .unwrap()
        .lines()
        .take(3)
        .collect();
    let array = format!("[{}]", lines.join(",\n"));
    let scanned = scan_all("array", array.as_bytes());
    assert_eq!(scanned.events.len(), 3);
    assert_eq!(scanned.events[2].0, "line 3, [2]");
}

#[test]
fn the_quickstart_examples_decode() {
    for name in [
        "reset-password.json",
        "security-info.json",
        "role-assignment.json",
        "graph-page.json",
    ] {
        let bytes = std::fs::read(format!(
            "{}/examples/events/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let scanned = scan_all(name, &bytes);
        assert!(
            !scanned.events.is_empty() && scanned.dead.is_empty(),
            "{name}"
        );
    }
}

#[test]
fn other_log_categories_are_skipped_with_their_category() {
    let scanned = scan_all("mixed", &fixture("envelope-mixed-categories.json"));
    assert_eq!(scanned.events.len(), 1);
    let mut categories: Vec<_> = scanned.skipped.iter().map(|(c, _)| c.as_str()).collect();
    categories.sort_unstable();
    assert_eq!(
        categories,
        [
            "MicrosoftGraphActivityLogs",
            "NonInteractiveUserSignInLogs",
            "ServicePrincipalSignInLogs",
            "SignInLogs",
            "UserRiskEvents"
        ]
    );
}

// --- quirks of real records ----------------------------------------------------------------

#[test]
fn level_as_number_or_string_and_duration_as_string_are_accepted() {
    for name in ["level-int", "level-string", "duration-string"] {
        assert_eq!(quirk(name).activity, "Reset user password", "{name}");
    }
}

#[test]
fn tenant_is_found_in_the_resource_id() {
    assert_eq!(
        quirk("tenant-only-in-resource-id").tenant_id.as_deref(),
        Some("7f3c2a10-4b6e-4d2a-9c1e-2f5a8b0d6e41")
    );
}

#[test]
fn null_placeholder_ips_are_absent() {
    assert_eq!(quirk("null-ip-string").initiated_by.ip, None);
    assert_eq!(
        quirk("ipv6-caller").initiated_by.ip.as_deref(),
        Some("2001:db8::1f")
    );
}

#[test]
fn roles_as_string_or_array_do_not_matter() {
    for name in ["roles-string", "roles-array"] {
        assert_eq!(quirk(name).initiated_by.kind, ActorKind::User, "{name}");
    }
}

#[test]
fn initiator_is_user_or_app_whichever_is_not_null() {
    let app = quirk("app-initiator-user-null").initiated_by;
    assert_eq!(app.kind, ActorKind::App);
    assert!(app.display_name.is_some());
    assert_eq!(app.upn, None);
    let user = quirk("user-initiator-app-null").initiated_by;
    assert_eq!(user.kind, ActorKind::User);
    assert!(user.upn.is_some());
}

#[test]
fn null_display_names_and_missing_or_null_upns_are_absent() {
    let e = quirk("null-display-names");
    assert_eq!(e.initiated_by.display_name, None);
    assert_eq!(e.targets[0].display_name, None);
    assert_eq!(quirk("missing-upn").targets[0].upn, None);
    assert_eq!(quirk("null-upn").targets[0].upn, None);
}

#[test]
fn capitalised_type_is_read() {
    assert!(quirk("type-capitalised").targets[0].is_type("user"));
}

#[test]
fn json_encoded_property_values_become_readable() {
    let e = quirk("json-encoded-values");
    let values: Vec<_> = e.targets[0]
        .modified_properties
        .iter()
        .map(|p| (p.old.clone(), p.new.clone()))
        .collect();
    let all: Vec<String> = values
        .iter()
        .flat_map(|(o, n)| [o.clone(), n.clone()])
        .flatten()
        .collect();
    for want in ["Member", "Guest", "true"] {
        assert!(all.iter().any(|v| v == want), "{want} in {all:?}");
    }
    assert!(
        !all.iter()
            .any(|v| v.starts_with('"') || v == "[]" || v.is_empty()),
        "{all:?}"
    );
    assert!(
        !all.iter().any(|v| v.starts_with('{') || v.starts_with('[')),
        "an object reads as its fields, never as a blob: {all:?}"
    );
}

#[test]
fn trailing_spaces_in_activity_names_are_trimmed() {
    assert_eq!(
        quirk("trailing-space-activity").activity,
        "Change user password"
    );
}

#[test]
fn failures_keep_their_reason() {
    let e = quirk("result-failure");
    assert_eq!(e.result.as_deref(), Some("failure"));
    assert!(
        e.result_reason
            .as_deref()
            .unwrap()
            .contains("ObjectAlreadyExists")
    );
}

#[test]
fn every_observed_time_format_means_the_same_instant() {
    let want: jiff::Timestamp = "2026-01-09T09:41:00Z".parse().unwrap();
    let all = events("time-formats.ndjson");
    assert_eq!(all.len(), 11);
    for e in all {
        let seconds = e.time.as_second();
        assert_eq!(seconds, want.as_second(), "{}", e.id);
    }
}

#[test]
fn every_activity_fixture_decodes_with_a_user_target() {
    let all = events("activities.ndjson");
    assert_eq!(all.len(), 29);
    for e in all {
        assert!(
            e.targets
                .iter()
                .any(|t| t.is_type("User") && t.upn.is_some()),
            "{}",
            e.activity
        );
    }
}

// --- dead letters --------------------------------------------------------------------------

#[test]
fn unusable_records_become_dead_letters_with_position_and_reason() {
    let bytes = fixture("dead-letters.ndjson");
    let scanned = scan_all("dead-letters.ndjson", &bytes);
    let ids: Vec<_> = scanned
        .events
        .iter()
        .map(|(p, e)| format!("{p} {}", e.activity))
        .collect();
    assert_eq!(
        ids,
        ["line 1 Change user password", "line 7 Reset user password"]
    );
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let expected = [
        (2, "record is not a JSON object (found a number)"),
        (3, "missing `properties.id`"),
        (4, "missing `operationName`"),
        (
            5,
            "`properties.activityDateTime` \"yesterday-ish\" is not a timestamp",
        ),
        (6, "JSON"),
    ];
    assert_eq!(scanned.dead.len(), expected.len());
    for (dead, (line, reason)) in scanned.dead.iter().zip(expected) {
        assert_eq!(dead.input, "dead-letters.ndjson");
        assert_eq!(dead.position.line, line);
        assert!(dead.reason.contains(reason), "line {line}: {}", dead.reason);
        assert_eq!(dead.raw, lines[line - 1], "the line's bytes are kept");
    }
}

#[test]
fn a_bad_record_inside_an_envelope_does_not_stop_the_others() {
    let envelope = "{\n  \"records\": [\n    7,\n    {\"time\": \"2026-01-01T00:00:00Z\", \"properties\": {\"activityDisplayName\": \"Reset user password\"}},\n    {\"time\": \"2026-01-01T00:00:00Z\", \"properties\": {\"id\": \"ok\", \"activityDisplayName\": \"Reset user password\"}}\n  ]\n}";
    let scanned = scan_all("env", envelope.as_bytes());
    let dead: Vec<_> = scanned.dead.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        dead,
        [
            "env: line 3, records[0]: record is not a JSON object (found a number)",
            "env: line 4, records[1]: missing `properties.id`: an audit record needs an id",
        ]
    );
    assert_eq!(scanned.events.len(), 1);
    assert_eq!(scanned.events[0].0, "line 5, records[2]");
}

#[test]
fn broken_documents_and_odd_inputs_are_handled() {
    assert!(scan_all("empty", b"").dead.is_empty());
    assert!(scan_all("blank", b" \n\t\n").dead.is_empty());
    // A byte-order mark before an envelope.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(fixture("envelope-reset-password.json"));
    assert_eq!(scan_all("bom", &bom).events.len(), 1);
    // Invalid UTF-8 on one line of many.
    let mut lines = fixture("quirks.ndjson");
    lines.extend(b"\n{\"id\": \"\xff\xfe\"}\n");
    let scanned = scan_all("utf8", &lines);
    assert_eq!(scanned.events.len(), 17);
    assert_eq!(scanned.dead.len(), 1);
    assert!(scanned.dead[0].reason.contains("UTF-8"));
    // A truncated pretty-printed envelope is one dead letter, kept whole.
    let whole = fixture("envelope-reset-password.json");
    let cut = &whole[..whole.len() / 2];
    let scanned = scan_all("cut", cut);
    assert_eq!(scanned.dead.len(), 1);
    assert!(
        scanned.dead[0].reason.contains("truncated JSON"),
        "{}",
        scanned.dead[0].reason
    );
    assert_eq!(scanned.dead[0].raw, cut);
    // Nesting deep enough to overflow a naive recursive parser.
    let deep = "[".repeat(100_000);
    assert_eq!(scan_all("deep", deep.as_bytes()).dead.len(), 1);
    let deep_record = format!(
        "{{\"records\":[{{\"properties\":{}}}]}}",
        "{\"a\":".repeat(50_000)
    );
    assert_eq!(scan_all("deep", deep_record.as_bytes()).dead.len(), 1);
}

// --- never panics --------------------------------------------------------------------------

/// Scans and fully decodes whatever the bytes hold; the property is that this returns.
fn survive(bytes: &[u8]) {
    scan("fuzz", bytes, |item| {
        if let Item::Record(view) = item {
            let _ = view.decode();
        }
    });
}

const SEEDS: &[&str] = &[
    "envelope-reset-password.json",
    "quirks.ndjson",
    "graph-page.json",
    "dead-letters.ndjson",
    "hostile.json",
    "time-formats.ndjson",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        survive(&bytes);
    }

    #[test]
    fn mutated_records_never_panic(seed in 0..SEEDS.len(), cut in any::<prop::sample::Index>(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8)) {
        let mut bytes = fixture(SEEDS[seed]);
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let end = cut.index(bytes.len() + 1);
        survive(&bytes[..end]);
        survive(&bytes);
    }

    #[test]
    fn json_values_in_record_fields_never_panic(value in json_value(), field in prop::sample::select(vec![
        "id", "time", "category", "operationName", "properties", "records", "value",
    ]), inner in prop::sample::select(vec![
        "id", "activityDisplayName", "activityDateTime", "initiatedBy", "targetResources", "additionalDetails", "category",
    ])) {
        let base = fixture("envelope-reset-password.json");
        let mut doc: serde_json::Value = serde_json::from_slice(&base).unwrap();
        doc["records"][0]["properties"][inner] = value.clone();
        survive(&serde_json::to_vec(&doc).unwrap());
        doc["records"][0][field] = value;
        survive(&serde_json::to_vec(&doc).unwrap());
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

//! The Graph audit-log source against a local HTTP server process that serves the token
//! endpoint and `directoryAudits` in Microsoft's documented formats: paging across three pages,
//! the stored position less the overlap on the next poll, a late record inside the overlap
//! delivered once, throttling waited out, and a missing permission explained.

mod support;

use std::path::Path;
use std::time::Duration;

use support::http_receiver::HttpReceiver;
use support::{Scratch, SmtpOptions, SmtpServer, fixture, herald_with_env, text};

/// A self-service password reset for `user` at `time`, as Graph returns it.
fn record(id: &str, user: &str, time: &str) -> serde_json::Value {
    let page: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("graph-page.json")).unwrap())
            .unwrap();
    let mut r = page["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["activityDisplayName"] == "Reset password (self-service)")
        .unwrap()
        .clone();
    r["id"] = id.into();
    r["activityDateTime"] = time.into();
    r["targetResources"][0]["userPrincipalName"] = user.into();
    r["initiatedBy"]["user"]["userPrincipalName"] = user.into();
    r
}

/// Writes a page of `records` (with a nextLink to `next`, if any) as `dir/NAME.json`.
fn page(dir: &Path, name: &str, records: &[serde_json::Value], next: Option<&str>) -> String {
    let mut page = serde_json::json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/directoryAudits",
        "value": records,
    });
    if let Some(next) = next {
        page["@odata.nextLink"] = next.into();
    }
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_vec(&page).unwrap()).unwrap();
    format!("200 @{}", path.display())
}

fn config(dir: &Path, cloud: &HttpReceiver, smtp: &SmtpServer) -> std::path::PathBuf {
    let path = dir.join("herald.toml");
    std::fs::write(
        &path,
        format!(
            r#"{app}
[[source]]
kind = "graph"
name = "entra-graph"
app = "contoso"
overlap = "10m"
start = "24h"
{email}"#,
            app = cloud.microsoft_app(),
            email = support::email_rule(smtp.port, "", "Reset password (self-service)"),
        ),
    )
    .unwrap();
    path
}

fn run_once(config: &Path) -> std::process::Output {
    herald_with_env(
        &["run", "--once", "--config", config.to_str().unwrap()],
        &[("GRAPH_CLIENT_SECRET", "s3cr3t")],
        Duration::from_secs(60),
    )
}

/// The `$filter` bound of a directoryAudits request path.
fn bound(path: &str) -> jiff::Timestamp {
    let (_, rest) = path
        .split_once("$filter=activityDateTime%20ge%20")
        .unwrap_or_else(|| panic!("no $filter in {path}"));
    rest.split('&').next().unwrap().parse().unwrap()
}

#[test]
fn graph_source_pages_to_the_end_then_reads_late_records_once() {
    let dir = Scratch::new("graph-source");
    let cloud = HttpReceiver::start(dir.path());
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    let local = format!("http://127.0.0.1:{}", cloud.port);
    let next = |token: &str| format!("{local}/v1.0/auditLogs/directoryAudits?$skiptoken={token}");
    let now = jiff::Timestamp::now();
    let at = |minutes_ago: i64| (now - jiff::SignedDuration::from_mins(minutes_ago)).to_string();
    let newest = at(30);

    // First poll: three pages, five resets; the newest record is on the first page (Graph
    // returns the newest first).
    cloud.script_gets(&[
        &page(
            dir.path(),
            "p1",
            &[
                record("a1", "u1@contoso.com", &newest),
                record("a2", "u2@contoso.com", &at(40)),
            ],
            Some(&next("p2")),
        ),
        &page(
            dir.path(),
            "p2",
            &[
                record("a3", "u3@contoso.com", &at(50)),
                record("a4", "u4@contoso.com", &at(60)),
            ],
            Some(&next("p3")),
        ),
        &page(
            dir.path(),
            "p3",
            &[record("a5", "u5@contoso.com", &at(70))],
            None,
        ),
    ]);
    let config = config(dir.path(), &cloud, &smtp);
    let out = run_once(&config);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("s3cr3t"));
    assert_eq!(smtp.messages().len(), 5, "{}", text(&out.stderr));

    let gets: Vec<serde_json::Value> = cloud
        .requests()
        .into_iter()
        .filter(|r| r["method"] == "GET")
        .collect();
    assert_eq!(gets.len(), 3);
    let first = gets[0]["path"].as_str().unwrap();
    assert!(
        first.starts_with("/v1.0/auditLogs/directoryAudits?$filter="),
        "{first}"
    );
    let since = now.duration_since(bound(first)).as_secs_f64();
    assert!(
        (since - 24.0 * 3600.0).abs() < 120.0,
        "the first poll reads `start` back: {first}"
    );
    assert_eq!(
        gets[1]["path"],
        "/v1.0/auditLogs/directoryAudits?$skiptoken=p2"
    );
    assert_eq!(
        gets[2]["path"],
        "/v1.0/auditLogs/directoryAudits?$skiptoken=p3"
    );
    assert!(
        gets.iter()
            .all(|g| g["headers"]["authorization"] == "Bearer tok-1")
    );

    // Second poll: Graph throttles once, then returns a record already read (inside the
    // overlap) and one that arrived late, older than the newest but inside the overlap.
    cloud.script_gets(&[
        r#"429 {"error":{"code":"TooManyRequests","message":"Too many requests"}}"#,
        &page(
            dir.path(),
            "p4",
            &[
                record("a1", "u1@contoso.com", &newest),
                record("late", "late@contoso.com", &at(35)),
            ],
            None,
        ),
    ]);
    let out = run_once(&config);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let gets: Vec<serde_json::Value> = cloud
        .requests()
        .into_iter()
        .filter(|r| r["method"] == "GET")
        .collect();
    assert_eq!(gets.len(), 5);
    let expected_bound =
        newest.parse::<jiff::Timestamp>().unwrap() - jiff::SignedDuration::from_mins(10);
    let got = bound(gets[3]["path"].as_str().unwrap());
    assert!(
        got.duration_since(expected_bound).abs().as_secs_f64() < 1.0,
        "the next poll starts at the newest record less the overlap: {got} vs {expected_bound}"
    );
    let gap = gets[4]["time"].as_f64().unwrap() - gets[3]["time"].as_f64().unwrap();
    assert!(gap >= 0.95, "Retry-After waited out: {gap}");

    let counts = smtp.count_by("X-Envelope-To:");
    assert_eq!(counts.len(), 6, "{counts:?}");
    assert!(counts.values().all(|n| *n == 1), "each once: {counts:?}");
    assert_eq!(counts.get("late@contoso.com"), Some(&1));
}

#[test]
fn a_malformed_page_stops_the_poll_without_moving_the_position() {
    let dir = Scratch::new("graph-source-malformed");
    let cloud = HttpReceiver::start(dir.path());
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    cloud.script_gets(&[r#"200 {"value": [ {"id": "x", "#]);
    let config = config(dir.path(), &cloud, &smtp);
    let out = run_once(&config);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("page 1: not a Graph page"), "{stderr}");
    // Nothing was committed: the next poll asks from the same place.
    let out = run_once(&config);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let gets: Vec<String> = cloud
        .requests()
        .into_iter()
        .filter(|r| r["method"] == "GET")
        .map(|r| r["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(gets.len(), 2);
    let (first, second) = (bound(&gets[0]), bound(&gets[1]));
    assert!(
        second.duration_since(first).as_secs_f64() < 120.0,
        "{first} then {second}"
    );
}

#[test]
fn a_missing_permission_is_explained() {
    let dir = Scratch::new("graph-source-403");
    let cloud = HttpReceiver::start(dir.path());
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    cloud.script_gets(&[
        r#"403 {"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation."}}"#,
    ]);
    let config = config(dir.path(), &cloud, &smtp);
    let out = run_once(&config);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Authorization_RequestDenied: Insufficient privileges")
            && stderr.contains("AuditLog.Read.All"),
        "{stderr}"
    );
}

/// The tenant of `HttpReceiver::microsoft_app`, which Graph's records do not carry.
const TENANT: &str = "00000000-0000-0000-0000-000000000000";

#[test]
fn a_record_read_from_graph_and_from_event_hubs_is_told_once() {
    let dir = Scratch::new("graph-source-tenant");
    let cloud = HttpReceiver::start(dir.path());
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    let time = (jiff::Timestamp::now() - jiff::SignedDuration::from_mins(5)).to_string();
    let reset = record("Directory_same-event", "adele@contoso.com", &time);
    cloud.script_gets(&[&page(dir.path(), "p1", std::slice::from_ref(&reset), None)]);
    // The same record as the diagnostic setting streams it to Event Hubs: the envelope names
    // the tenant (as archived from the hub into a file, which the file source reads).
    let envelope = serde_json::json!({"records": [{
        "time": time,
        "resourceId": format!("/tenants/{TENANT}/providers/Microsoft.aadiam"),
        "operationName": reset["activityDisplayName"],
        "category": "AuditLogs",
        "tenantId": TENANT,
        "properties": reset,
    }]});
    std::fs::create_dir(dir.path().join("hub")).unwrap();
    std::fs::write(
        dir.path().join("hub/archive.json"),
        serde_json::to_vec(&envelope).unwrap(),
    )
    .unwrap();
    let config = config(dir.path(), &cloud, &smtp);
    let text_of_config = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("[[source]]\nkind = \"file\"\nname = \"hub\"\npath = \"hub\"\n{text_of_config}"),
    )
    .unwrap();

    let out = run_once(&config);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let counts = smtp.count_by("X-Envelope-To:");
    assert_eq!(
        counts.get("adele@contoso.com"),
        Some(&1),
        "one notice for one event, whichever way it came: {counts:?}\n{}",
        text(&out.stderr)
    );
}

#[test]
fn overlapping_polls_keep_one_dead_letter_and_count_nearly_missed_records() {
    let dir = Scratch::new("graph-source-overlap");
    let cloud = HttpReceiver::start(dir.path());
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    let now = jiff::Timestamp::now();
    let at = |seconds_ago: i64| (now - jiff::SignedDuration::from_secs(seconds_ago)).to_string();
    let newest = at(30 * 60);
    // A record Herald cannot use (a reset with no time), read again by every overlapping poll.
    let mut broken = record("broken", "broken@contoso.com", &at(31 * 60));
    broken["activityDateTime"] = serde_json::Value::Null;
    let first = page(
        dir.path(),
        "p1",
        &[record("n1", "n1@contoso.com", &newest), broken.clone()],
        None,
    );
    // The second poll reads from `newest − 10 min`: a record first seen 9.5 minutes before
    // the newest one is in the oldest tenth of that window (nearly missed); one first seen
    // 5 minutes before it is not.
    let second = page(
        dir.path(),
        "p2",
        &[
            record("n1", "n1@contoso.com", &newest),
            broken.clone(),
            record("edge", "edge@contoso.com", &at(30 * 60 + 9 * 60 + 30)),
            record("middle", "middle@contoso.com", &at(35 * 60)),
        ],
        None,
    );
    let third = page(
        dir.path(),
        "p3",
        &[record("n1", "n1@contoso.com", &newest), broken],
        None,
    );
    cloud.script_gets(&[&first, &second, &third]);
    let config = config(dir.path(), &cloud, &smtp);
    let mut late_warnings = Vec::new();
    for _ in 0..3 {
        let out = run_once(&config);
        assert!(out.status.success(), "{}", text(&out.stderr));
        late_warnings.push(
            text(&out.stderr)
                .lines()
                .filter(|l| l.contains("nearly `overlap`"))
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        );
    }
    assert!(late_warnings[0].is_empty(), "{late_warnings:?}");
    assert_eq!(late_warnings[1].len(), 1, "{late_warnings:?}");
    assert!(
        late_warnings[1][0].contains("records=1"),
        "{late_warnings:?}"
    );
    assert!(late_warnings[2].is_empty(), "{late_warnings:?}");

    let c = config.to_str().unwrap();
    let list = text(
        &support::herald(
            &["dead-letters", "list", "--config", c],
            Duration::from_secs(30),
        )
        .stdout,
    );
    assert_eq!(
        list.lines().count(),
        1,
        "one dead letter for three reads: {list}"
    );
    let counts = smtp.count_by("X-Envelope-To:");
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
}

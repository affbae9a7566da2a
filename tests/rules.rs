//! Rule selection: every selector, the activity index, and the default rule set against the
//! project's activity fixtures.

use std::path::Path;

use herald::config::Config;
use herald::event::{AuditEvent, Item, scan};

const ACTIVITIES: &str = include_str!("fixtures/entra/activities.ndjson");
const STARTER: &str = include_str!("../examples/herald.toml");

const BASE: &str = r#"
[channel.email]
kind = "file"
from = "Security <security@contoso.com>"
dir = "mail"

[groups]
soc = ["soc@contoso.com"]
"#;

fn config(rules: &str) -> Config {
    Config::parse(Path::new("test.toml"), &format!("{BASE}{rules}")).unwrap()
}

fn events(bytes: &str) -> Vec<AuditEvent> {
    let mut out = Vec::new();
    scan("test", bytes.as_bytes(), |item| {
        if let Item::Record(view) = item {
            out.push(view.decode().unwrap());
        }
    });
    out
}

/// The fixture-case tag the activities fixture puts on each line.
fn case(event: &AuditEvent) -> &str {
    event
        .additional_details
        .iter()
        .find(|d| d.key == "fixture-case")
        .map(|d| d.value.as_str())
        .unwrap()
}

fn event(case_name: &str) -> AuditEvent {
    events(ACTIVITIES)
        .into_iter()
        .find(|e| case(e) == case_name)
        .unwrap_or_else(|| panic!("no fixture case {case_name}"))
}

fn selected(config: &Config, event: &AuditEvent) -> Vec<String> {
    config
        .rules
        .select(event)
        .iter()
        .map(|m| m.rule.name.clone())
        .collect()
}

#[test]
fn activities_match_ignoring_case_and_extra_spaces() {
    let config = config(
        "[[rule]]\nname = \"r\"\nactivities = [\"  reset   USER password \"]\nrecipients = [\"target\"]\n",
    );
    assert_eq!(selected(&config, &event("reset-user-password")), ["r"]);
    assert!(config.rules.wants("Reset user password", None));
    assert!(config.rules.wants("RESET USER PASSWORD ", None));
    assert!(!config.rules.wants("Reset password", None));
    assert!(selected(&config, &event("reset-password")).is_empty());
}

#[test]
fn operation_name_is_matched_when_it_differs_from_the_activity() {
    // Some producers write a different operationName than activityDisplayName.
    let config = config(
        "[[rule]]\nname = \"r\"\nactivities = [\"Authentication Methods Policy Update\"]\nrecipients = [\"soc@contoso.com\"]\n",
    );
    assert!(config.rules.wants(
        "Update authentication methods policy",
        Some("Authentication Methods Policy Update")
    ));
}

#[test]
fn category_service_and_result_selectors_must_all_hold() {
    let config = config(
        r#"
[[rule]]
name = "core"
services = ["core directory"]
categories = ["usermanagement"]
results = ["SUCCESS"]
activities = ["Reset user password", "Reset password (by admin)"]
recipients = ["target"]
"#,
    );
    assert_eq!(selected(&config, &event("reset-user-password")), ["core"]);
    // Same activity family, other service.
    assert!(selected(&config, &event("reset-password-by-admin")).is_empty());
    let mut failed = event("reset-user-password");
    failed.result = Some("failure".into());
    assert!(selected(&config, &failed).is_empty());
    let mut no_category = event("reset-user-password");
    no_category.category = None;
    assert!(selected(&config, &no_category).is_empty());
}

#[test]
fn target_types_select_targets() {
    let config = config(
        "[[rule]]\nname = \"roles\"\nactivities = [\"Add member to role\"]\ntarget_types = [\"role\"]\nrecipients = [\"group:soc\"]\n",
    );
    let event = event("add-member-to-role");
    let matches = config.rules.select(&event);
    assert_eq!(matches.len(), 1);
    let types: Vec<_> = matches[0]
        .targets
        .iter()
        .map(|&i| event.targets[i].kind.clone().unwrap())
        .collect();
    assert_eq!(types, ["Role"]);

    let devices = self::config(
        "[[rule]]\nname = \"d\"\nactivities = [\"Add member to role\"]\ntarget_types = [\"Device\"]\nrecipients = [\"group:soc\"]\n",
    );
    assert!(devices.rules.select(&event).is_empty());
}

#[test]
fn initiator_self_and_other_select_by_who_acted() {
    let rules = config(
        r#"
[[rule]]
name = "self"
initiator = "self"
recipients = ["target"]

[[rule]]
name = "other"
initiator = "other"
recipients = ["target"]
"#,
    );
    let self_service = event("user-registered-security-info");
    assert!(self_service.initiator_is(&self_service.targets[0]));
    assert_eq!(selected(&rules, &self_service), ["self"]);
    let by_admin = event("reset-user-password");
    assert_eq!(selected(&rules, &by_admin), ["other"]);
}

#[test]
fn modified_properties_match_by_name_or_prefix() {
    let rules = config(
        r#"
[[rule]]
name = "mfa"
activities = ["Update user"]
modified_properties = ["StrongAuthentication*"]
recipients = ["target"]

[[rule]]
name = "exact"
activities = ["Update user"]
modified_properties = ["displayname"]
recipients = ["target"]
"#,
    );
    assert_eq!(
        selected(&rules, &event("update-user-strong-auth-requirement")),
        ["mfa"]
    );
    assert_eq!(
        selected(&rules, &event("update-user-display-name-only")),
        ["exact"]
    );
}

#[test]
fn a_rule_without_activities_sees_every_record() {
    let rules =
        config("[[rule]]\nname = \"all\"\nresults = [\"success\"]\nrecipients = [\"group:soc\"]\n");
    assert!(rules.rules.wants("Anything at all", None));
    assert_eq!(selected(&rules, &event("add-member-to-group")), ["all"]);
}

#[test]
fn several_rules_can_select_one_event_in_configuration_order() {
    let rules = config(
        r#"
[[rule]]
name = "b"
activities = ["Add member to role"]
recipients = ["group:soc"]

[[rule]]
name = "a"
activities = ["add member to role"]
recipients = ["target"]
"#,
    );
    assert_eq!(selected(&rules, &event("add-member-to-role")), ["b", "a"]);
}

#[test]
fn default_rule_set_covers_the_security_relevant_activities() {
    let config = Config::parse(Path::new("examples/herald.toml"), STARTER).unwrap();
    let expected: &[(&str, &[&str])] = &[
        ("reset-user-password", &["password-reset"]),
        ("reset-password", &["password-reset"]),
        ("reset-password-by-admin", &["password-reset"]),
        ("reset-password-self-service", &["password-reset"]),
        ("change-user-password", &["password-change"]),
        ("change-password-self-service", &["password-change"]),
        ("set-force-change-user-password", &[]),
        ("user-registered-security-info", &["sign-in-method-added"]),
        ("user-updated-security-info", &["sign-in-method-changed"]),
        ("user-deleted-security-info", &["sign-in-method-removed"]),
        (
            "user-changed-default-security-info",
            &["sign-in-method-changed"],
        ),
        ("user-registered-all-required-security-info", &[]),
        ("admin-registered-security-info", &["sign-in-method-added"]),
        ("admin-updated-security-info", &["sign-in-method-changed"]),
        ("admin-deleted-security-info", &["sign-in-method-removed"]),
        ("add-fido2-security-key", &["sign-in-method-added"]),
        ("delete-fido2-security-keys", &["sign-in-method-removed"]),
        (
            "add-windows-hello-for-business-credential",
            &["sign-in-method-added"],
        ),
        (
            "add-passwordless-phone-sign-in-credential",
            &["sign-in-method-added"],
        ),
        ("enable-strong-authentication", &["mfa-enabled-or-disabled"]),
        (
            "disable-strong-authentication",
            &["mfa-enabled-or-disabled"],
        ),
        (
            "update-user-strong-auth-requirement",
            &["mfa-settings-updated"],
        ),
        ("update-user-display-name-only", &[]),
        (
            "add-member-to-role",
            &["admin-role-assigned", "admin-role-assigned-security-team"],
        ),
        (
            "add-eligible-member-to-role",
            &["admin-role-assigned", "admin-role-assigned-security-team"],
        ),
        ("disable-account", &["account-disabled-or-enabled"]),
        ("enable-account", &["account-disabled-or-enabled"]),
        ("add-member-to-group", &[]),
        ("update-sts-refresh-token-valid-from", &[]),
    ];
    let all = events(ACTIVITIES);
    assert_eq!(
        all.len(),
        expected.len(),
        "every fixture line is listed here"
    );
    for event in &all {
        let (_, want) = expected
            .iter()
            .find(|(name, _)| *name == case(event))
            .unwrap_or_else(|| panic!("fixture case {} is not listed", case(event)));
        assert_eq!(selected(&config, event), *want, "{}", case(event));
    }
}

//! Facts: what an audit record means for the account it is about, as a few plain sentences a
//! notice shows instead of Entra's property names (ARCHITECTURE.md §2.8).
//!
//! An explainer per family of change in the default rule set: sign-in methods
//! (`StrongAuthenticationPhoneAppDetail`, `StrongAuthenticationUserDetails`,
//! `StrongAuthenticationMethod`), per-user MFA (`StrongAuthenticationRequirement`), roles
//! (`Role.DisplayName`, `Role.TemplateId`), group membership and account state
//! (`AccountEnabled`). Names come only from the record itself or from Microsoft's documented
//! role list ([`super::roles`]); a code Microsoft does not document (`MethodType`'s numbers, a
//! requirement's `State`) is counted or described as "a sign-in method", never named.
//! Properties an explainer has turned into facts are left out of the notice's remaining
//! "other changes"; every other property still appears, readable and scrubbed.

use std::collections::BTreeSet;

use serde_json::Value;

use super::roles;
use crate::event::sensitive::mask_phone;
use crate::event::{ActorKind, AuditEvent, ModifiedProperty, Target};
use crate::rules::normalize;

/// Who reads a notice: the owner of the account, or someone else (a group, the SOC), who reads
/// the owner's name in the third person.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reader<'a> {
    Owner,
    Other { owner: &'a str },
}

impl Reader<'_> {
    /// "your" or "Adele Vance's", for the middle of a sentence.
    fn possessive(&self) -> String {
        match self {
            Reader::Owner => "your".to_owned(),
            Reader::Other { owner } => format!("{owner}'s"),
        }
    }

    /// "Your" or "Adele Vance's", to begin a sentence: a name (or an address) as it is.
    fn possessive_start(&self) -> String {
        match self {
            Reader::Owner => "Your".to_owned(),
            Reader::Other { owner } => format!("{owner}'s"),
        }
    }
}

/// How an operation ended, as its `result` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// `success`, or no result recorded.
    Succeeded,
    /// `failure`: nothing was changed.
    Failed,
    /// Anything else (`timeout`, `unknownFutureValue`): it may or may not have taken effect.
    Unsure,
}

pub(crate) fn ended(event: &AuditEvent) -> Ended {
    match event.result.as_deref().map(str::trim) {
        None | Some("") => Ended::Succeeded,
        Some(r) if r.eq_ignore_ascii_case("success") => Ended::Succeeded,
        Some(r) if r.eq_ignore_ascii_case("failure") => Ended::Failed,
        Some(_) => Ended::Unsure,
    }
}

/// The name a third-person notice calls the owner of `target` by.
pub(crate) fn owner_name(target: Option<&Target>) -> String {
    target
        .and_then(|t| t.display_name.clone().or_else(|| t.upn.clone()))
        .map(|name| shorten(&name))
        .unwrap_or_else(|| "the account".to_owned())
}

/// The facts of one notice, and the modified properties they account for.
#[derive(Debug, Default)]
pub(crate) struct Explained {
    pub facts: Vec<String>,
    pub explained: BTreeSet<String>,
    /// What happened to the sign-in methods, for a headline more exact than "settings changed".
    pub methods: Methods,
}

/// Sign-in methods added, removed, or the default changed, by any explainer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Methods {
    pub added: bool,
    pub removed: bool,
    pub other: bool,
}

/// The plain facts `event` states about `target`, worded for `reader`. An operation that did
/// not succeed (or may not have) states no facts — its headline says how it ended — but the
/// properties the explainers understand are still accounted for (never shown raw as "other
/// changes").
pub(crate) fn explain(event: &AuditEvent, target: Option<&Target>, reader: Reader) -> Explained {
    let mut out = Explained::default();
    let succeeded = ended(event) == Ended::Succeeded;
    let Some(target) = target else { return out };
    authenticator_apps(target, &mut out);
    user_details(target, &mut out);
    method_list(target, reader, &mut out);
    requirement(target, reader, &mut out);
    role(event, target, reader, &mut out);
    group(event, target, reader, &mut out);
    account_state(event, target, reader, &mut out);
    if !succeeded {
        out.facts.clear();
    }
    out
}

fn property<'a>(target: &'a Target, name: &str) -> Option<&'a ModifiedProperty> {
    target
        .modified_properties
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
}

/// A value from a record, safe to put in a sentence: single-line, and short.
fn shorten(text: &str) -> String {
    let text: String = text.trim().chars().filter(|c| !c.is_control()).collect();
    // A name is never an object id, even when a record puts one there.
    let text = crate::event::sensitive::mask_guids(&text);
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

fn items(value: &Value) -> Vec<&serde_json::Map<String, Value>> {
    match value {
        Value::Array(items) => items.iter().filter_map(Value::as_object).collect(),
        Value::Object(fields) => vec![fields],
        _ => Vec::new(),
    }
}

fn field<'a>(item: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a str> {
    item.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// `StrongAuthenticationPhoneAppDetail`: the authenticator apps registered for the account,
/// one entry per device, identified by the entry's `Id` (else its device name).
fn authenticator_apps(target: &Target, out: &mut Explained) {
    let Some(p) = property(target, "StrongAuthenticationPhoneAppDetail") else {
        return;
    };
    let apps = |value: &Value| -> Vec<(String, String)> {
        items(value)
            .into_iter()
            .map(|app| {
                let name = match field(app, "AuthenticatorFlavor") {
                    Some(f) if f.eq_ignore_ascii_case("Authenticator") => "Microsoft Authenticator",
                    _ => "An authenticator app",
                };
                let label = match field(app, "DeviceName") {
                    Some(device) => format!("{name} on {}", shorten(device)),
                    None => name.to_owned(),
                };
                let id = field(app, "Id")
                    .map(str::to_owned)
                    .unwrap_or_else(|| label.clone());
                (id, label)
            })
            .collect()
    };
    // A new value that is absent says nothing about what is there now: no facts.
    if !matches!(p.old_json, Value::Array(_) | Value::Null) || !p.new_json.is_array() {
        return;
    }
    let (old, new) = (apps(&p.old_json), apps(&p.new_json));
    for (id, label) in &new {
        match old.iter().find(|(o, _)| o == id) {
            None => {
                out.methods.added = true;
                out.facts
                    .push(format!("{label} was added as a sign-in method"));
            }
            Some((_, was)) if was != label => {
                out.methods.other = true;
                out.facts.push(format!("{was} was replaced by {label}"));
            }
            Some(_) => {}
        }
    }
    for (id, label) in &old {
        if !new.iter().any(|(n, _)| n == id) {
            out.methods.removed = true;
            out.facts
                .push(format!("{label} was removed from the sign-in methods"));
        }
    }
    out.explained.insert(p.name.clone());
}

/// `StrongAuthenticationUserDetails`: the phone numbers and email address used to sign in.
fn user_details(target: &Target, out: &mut Explained) {
    const FIELDS: [(&str, &str, bool); 4] = [
        ("PhoneNumber", "Phone", true),
        ("AlternativePhoneNumber", "Alternate phone", true),
        ("VoiceOnlyPhoneNumber", "Voice-only phone", true),
        ("Email", "Email address", false),
    ];
    let Some(p) = property(target, "StrongAuthenticationUserDetails") else {
        return;
    };
    let (old, new) = (items(&p.old_json), items(&p.new_json));
    if new.is_empty() && !p.new_json.is_array() {
        return;
    }
    let get = |side: &[&serde_json::Map<String, Value>], name: &str| {
        side.first()
            .and_then(|item| field(item, name))
            .map(str::to_owned)
    };
    for (name, label, phone) in FIELDS {
        let shown = |v: &str| {
            if phone { mask_phone(v) } else { shorten(v) }
        };
        match (get(&old, name), get(&new, name)) {
            (None, Some(n)) => {
                out.methods.added = true;
                out.facts.push(format!(
                    "{label} {} was added as a sign-in method",
                    shown(&n)
                ));
            }
            (Some(o), None) => {
                out.methods.removed = true;
                out.facts.push(format!(
                    "{label} {} was removed from the sign-in methods",
                    shown(&o)
                ));
            }
            (Some(o), Some(n)) if o != n => {
                out.methods.other = true;
                out.facts.push(format!(
                    "{label} {} was replaced by {}",
                    shown(&o),
                    shown(&n)
                ));
            }
            _ => {}
        }
    }
    out.explained.insert(p.name.clone());
}

/// `StrongAuthenticationMethod`: the list of `{MethodType, Default}`. Microsoft does not
/// document what each `MethodType` number is, so methods are counted, not named; facts the
/// app or phone explainers already gave are not repeated as counts.
fn method_list(target: &Target, reader: Reader, out: &mut Explained) {
    let Some(p) = property(target, "StrongAuthenticationMethod") else {
        return;
    };
    // An absent new value says nothing about what is there now: no facts from it.
    if p.new_json.is_null() {
        return;
    }
    let methods = |value: &Value| -> Option<(BTreeSet<i64>, Option<i64>)> {
        if value.is_null() {
            return Some((BTreeSet::new(), None));
        }
        let list = value.as_array()?;
        let mut codes = BTreeSet::new();
        let mut default = None;
        for m in list.iter().filter_map(Value::as_object) {
            let code = m
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("MethodType"))
                .and_then(|(_, v)| v.as_i64())?;
            codes.insert(code);
            let is_default = m
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Default"))
                .and_then(|(_, v)| v.as_bool())
                .unwrap_or(false);
            if is_default {
                default = Some(code);
            }
        }
        Some((codes, default))
    };
    let (Some((old, old_default)), Some((new, new_default))) =
        (methods(&p.old_json), methods(&p.new_json))
    else {
        return;
    };
    let added = new.difference(&old).count();
    let removed = old.difference(&new).count();
    // An app or a phone already named says what was added; the count would repeat it.
    let mut facts = Vec::new();
    if added > 0 && !out.methods.added {
        facts.push(count_fact(added, "added"));
    }
    if removed > 0 && !out.methods.removed {
        facts.push(count_fact(removed, "removed"));
    }
    out.methods.added |= added > 0;
    out.methods.removed |= removed > 0;
    if new.is_empty() && !old.is_empty() {
        facts.push(format!(
            "{} no sign-in methods for multi-factor authentication left",
            match reader {
                Reader::Owner => "You have".to_owned(),
                Reader::Other { owner } => format!("{owner} has"),
            }
        ));
    } else if old_default.is_some() && new_default.is_some() && old_default != new_default {
        out.methods.other = true;
        facts.push(format!(
            "{} default sign-in method was changed",
            reader.possessive_start()
        ));
    }
    out.facts.extend(facts);
    out.explained.insert(p.name.clone());
}

fn count_fact(n: usize, what: &str) -> String {
    match n {
        1 => format!("A sign-in method was {what}"),
        n => format!("{n} sign-in methods were {what}"),
    }
}

/// `StrongAuthenticationRequirement`: per-user MFA, on when the list has an entry. The
/// entry's `State` number is not documented, so only on and off are told apart.
fn requirement(target: &Target, reader: Reader, out: &mut Explained) {
    let Some(p) = property(target, "StrongAuthenticationRequirement") else {
        return;
    };
    let on = |v: &Value| match v {
        Value::Null => Some(false),
        Value::Array(items) => Some(!items.is_empty()),
        _ => None,
    };
    // An absent new value is not "off": it says nothing.
    let (Some(was), Some(is)) = (
        on(&p.old_json),
        p.new_json.as_array().map(|a| !a.is_empty()),
    ) else {
        return;
    };
    let whose = reader.possessive();
    out.facts.push(match (was, is) {
        (false, true) => {
            format!("Per-user multi-factor authentication was turned on for {whose} account")
        }
        (true, false) => {
            format!("Per-user multi-factor authentication was turned off for {whose} account")
        }
        _ => format!(
            "The per-user multi-factor authentication settings of {whose} account were changed"
        ),
    });
    out.explained.insert(p.name.clone());
}

/// The role a role-assignment record names: its `Role.DisplayName`, else the documented name
/// of its `Role.TemplateId`.
pub(crate) fn role_name(target: Option<&Target>) -> Option<String> {
    let target = target?;
    let value =
        |name: &str| property(target, name).and_then(|p| p.new.clone().or_else(|| p.old.clone()));
    value("Role.DisplayName").map(|n| shorten(&n)).or_else(|| {
        value("Role.TemplateId").and_then(|id| roles::name_of_template(&id).map(str::to_owned))
    })
}

fn role(event: &AuditEvent, target: &Target, reader: Reader, out: &mut Explained) {
    let activity = normalize(&event.activity);
    let has_role_properties = target
        .modified_properties
        .iter()
        .any(|p| p.name.to_ascii_lowercase().starts_with("role."));
    if !activity.contains("member to role")
        && !activity.contains("member from role")
        && !has_role_properties
    {
        return;
    }
    let role = match role_name(Some(target)) {
        Some(name) => format!("the {name} role"),
        None => "an administrator role".to_owned(),
    };
    // A request is not a grant, and eligibility is not the role itself.
    if activity.contains("requested") {
        out.facts.push(match reader {
            Reader::Owner => capitalized(&format!("{role} was requested for you")),
            Reader::Other { owner } => capitalized(&format!("{role} was requested for {owner}")),
        });
    } else {
        let (you, they) = if activity.starts_with("add eligible member") {
            ("You can now activate", "can now activate")
        } else if activity.starts_with("remove eligible member") {
            ("You can no longer activate", "can no longer activate")
        } else if activity.starts_with("add") {
            ("You now have", "now has")
        } else if activity.starts_with("remove") {
            ("You no longer have", "no longer has")
        } else {
            return;
        };
        out.facts.push(match reader {
            Reader::Owner => format!("{you} {role}"),
            Reader::Other { owner } => format!("{owner} {they} {role}"),
        });
    }
    for p in &target.modified_properties {
        if p.name.to_ascii_lowercase().starts_with("role.") {
            out.explained.insert(p.name.clone());
        }
    }
}

fn group(event: &AuditEvent, target: &Target, reader: Reader, out: &mut Explained) {
    let activity = normalize(&event.activity);
    let Some(name) =
        property(target, "Group.DisplayName").and_then(|p| p.new.clone().or_else(|| p.old.clone()))
    else {
        return;
    };
    let name = shorten(&name);
    let subject = match reader {
        Reader::Owner => "You were".to_owned(),
        Reader::Other { owner } => format!("{owner} was"),
    };
    out.facts.push(match activity.as_str() {
        "add member to group" => format!("{subject} added to the group {name}"),
        "remove member from group" => format!("{subject} removed from the group {name}"),
        _ => return,
    });
    for p in &target.modified_properties {
        if p.name.to_ascii_lowercase().starts_with("group.") {
            out.explained.insert(p.name.clone());
        }
    }
}

/// `AccountEnabled`, or the activity itself: whether the account can sign in, and who
/// changed that.
fn account_state(event: &AuditEvent, target: &Target, reader: Reader, out: &mut Explained) {
    let enabled = property(target, "AccountEnabled").and_then(|p| {
        let flag = |v: &Value| match v {
            Value::Bool(b) => Some(*b),
            Value::Array(items) => items.first().and_then(Value::as_bool),
            _ => None,
        };
        let now = flag(&p.new_json)?;
        out.explained.insert(p.name.clone());
        (flag(&p.old_json) != Some(now)).then_some(now)
    });
    let enabled = enabled.or(match normalize(&event.activity).as_str() {
        "disable account" => Some(false),
        "enable account" => Some(true),
        _ => None,
    });
    let Some(enabled) = enabled else { return };
    let by = actor(event).map(|a| format!(" by {a}")).unwrap_or_default();
    let state = if enabled { "enabled" } else { "disabled" };
    out.facts.push(format!(
        "{} account was {state}{by}",
        reader.possessive_start()
    ));
}

/// Who did it, as a sentence names them.
fn actor(event: &AuditEvent) -> Option<String> {
    let a = &event.initiated_by;
    let name = a.display_name.as_deref().or(a.upn.as_deref())?;
    Some(match a.kind {
        ActorKind::App => format!("the application {}", shorten(name)),
        _ => shorten(name),
    })
}

/// `text` with its first letter in upper case.
pub(crate) fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A modified property as the decoder leaves it: Entra's JSON-in-a-string values decoded.
    fn prop(name: &str, old: Value, new: Value) -> ModifiedProperty {
        let decode = |v: Value| match v {
            Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
            other => other,
        };
        let (old_json, new_json) = (decode(old), decode(new));
        let text = |v: &Value| v.as_str().map(str::to_owned);
        ModifiedProperty {
            name: name.to_owned(),
            old: text(&old_json),
            new: text(&new_json),
            old_json,
            new_json,
        }
    }

    fn event(activity: &str, properties: Vec<ModifiedProperty>) -> AuditEvent {
        let checked = crate::event::normalize::Checked {
            id: "Directory_1".to_owned(),
            activity: activity.to_owned(),
            time: jiff::Timestamp::UNIX_EPOCH,
            diagnostic: false,
        };
        let raw = json!({
            "result": "success",
            "initiatedBy": {"user": {"displayName": "Megan Bowen", "userPrincipalName": "megan@contoso.com"}},
            "targetResources": [{"id": "u1", "type": "User", "displayName": "Adele Vance", "userPrincipalName": "adele@contoso.com"}]
        });
        let mut event = crate::event::normalize::to_event(raw, checked);
        event.targets[0].modified_properties = properties;
        event
    }

    fn facts_of(event: &AuditEvent, reader: Reader) -> Vec<String> {
        explain(event, event.targets.first(), reader).facts
    }

    #[test]
    fn an_authenticator_registration_names_the_app_and_device_not_the_method_codes() {
        let app = r#"[{"DeviceName":"SM-A546B","DeviceToken":"tok","Id":"1a2b","AuthenticatorFlavor":"Authenticator"}]"#;
        let e = event(
            "Update user",
            vec![
                prop(
                    "StrongAuthenticationMethod",
                    json!("[]"),
                    json!(r#"[{"MethodType":6,"Default":true},{"MethodType":7,"Default":false}]"#),
                ),
                prop(
                    "StrongAuthenticationPhoneAppDetail",
                    json!(null),
                    json!(app),
                ),
            ],
        );
        assert_eq!(
            facts_of(&e, Reader::Owner),
            ["Microsoft Authenticator on SM-A546B was added as a sign-in method"]
        );
    }

    #[test]
    fn a_phone_is_masked_and_a_changed_default_is_said_without_naming_codes() {
        let e = event(
            "Update user",
            vec![
                prop(
                    "StrongAuthenticationUserDetails",
                    json!(
                        r#"{"PhoneNumber":"+1 4255550167","AlternativePhoneNumber":null,"Email":null}"#
                    ),
                    json!(r#"{"PhoneNumber":null,"AlternativePhoneNumber":null,"Email":null}"#),
                ),
                prop(
                    "StrongAuthenticationMethod",
                    json!(r#"[{"MethodType":6,"Default":false},{"MethodType":0,"Default":true}]"#),
                    json!(r#"[{"MethodType":6,"Default":true}]"#),
                ),
            ],
        );
        let facts = facts_of(
            &e,
            Reader::Other {
                owner: "Adele Vance",
            },
        );
        assert_eq!(
            facts,
            [
                "Phone +1 ••••••••67 was removed from the sign-in methods",
                "Adele Vance's default sign-in method was changed",
            ]
        );
        assert!(
            !facts
                .iter()
                .any(|f| f.contains("MethodType") || f.contains('0'))
        );
    }

    #[test]
    fn a_role_is_named_by_its_display_name_or_documented_template() {
        let by_name = event(
            "Add member to role",
            vec![
                prop(
                    "Role.DisplayName",
                    json!(null),
                    json!("\"Global Administrator\""),
                ),
                prop(
                    "Role.ObjectID",
                    json!(null),
                    json!("\"3c1b4b1e-0000-4000-8000-000000000001\""),
                ),
            ],
        );
        assert_eq!(
            facts_of(&by_name, Reader::Owner),
            ["You now have the Global Administrator role"]
        );
        let by_template = event(
            "Add eligible member to role",
            vec![
                prop(
                    "Role.WellKnownObjectName",
                    json!(null),
                    json!("\"CompanyAdministrator\""),
                ),
                prop(
                    "Role.TemplateId",
                    json!(null),
                    json!("\"62e90394-69f5-4237-9190-012177145e10\""),
                ),
            ],
        );
        assert_eq!(
            facts_of(
                &by_template,
                Reader::Other {
                    owner: "Adele Vance"
                }
            ),
            ["Adele Vance can now activate the Global Administrator role"]
        );
        let unknown = event(
            "Add member to role",
            vec![prop(
                "Role.WellKnownObjectName",
                json!(null),
                json!("\"SomethingNew\""),
            )],
        );
        assert_eq!(
            facts_of(&unknown, Reader::Owner),
            ["You now have an administrator role"]
        );
        let explained = explain(&by_template, by_template.targets.first(), Reader::Owner).explained;
        assert!(
            explained.contains("Role.TemplateId") && explained.contains("Role.WellKnownObjectName")
        );
    }

    #[test]
    fn a_disabled_account_says_who_disabled_it() {
        let e = event(
            "Disable account",
            vec![prop("AccountEnabled", json!("[true]"), json!("[false]"))],
        );
        assert_eq!(
            facts_of(&e, Reader::Owner),
            ["Your account was disabled by Megan Bowen"]
        );
        assert_eq!(
            facts_of(
                &e,
                Reader::Other {
                    owner: "Adele Vance"
                }
            ),
            ["Adele Vance's account was disabled by Megan Bowen"]
        );
    }

    #[test]
    fn per_user_mfa_is_on_or_off_by_whether_a_requirement_exists() {
        let e = event(
            "Update user",
            vec![prop(
                "StrongAuthenticationRequirement",
                json!(r#"[{"RelyingParty":"*","State":1}]"#),
                json!("[]"),
            )],
        );
        assert_eq!(
            facts_of(&e, Reader::Owner),
            ["Per-user multi-factor authentication was turned off for your account"]
        );
    }

    #[test]
    fn a_failed_operation_states_no_facts() {
        let mut e = event("Disable account", vec![]);
        e.result = Some("failure".to_owned());
        assert!(facts_of(&e, Reader::Owner).is_empty());
    }

    #[test]
    fn a_request_or_an_eligibility_is_not_said_as_a_grant() {
        let role = || {
            vec![prop(
                "Role.DisplayName",
                json!(null),
                json!("\"Global Administrator\""),
            )]
        };
        let requested = event("Add member to role in PIM requested (permanent)", role());
        assert_eq!(
            facts_of(&requested, Reader::Owner),
            ["The Global Administrator role was requested for you"]
        );
        let removed = event("Remove eligible member from role", role());
        assert_eq!(
            facts_of(&removed, Reader::Owner),
            ["You can no longer activate the Global Administrator role"]
        );
    }

    #[test]
    fn an_absent_new_value_states_nothing_rather_than_everything_removed() {
        let e = event(
            "Update user",
            vec![
                prop(
                    "StrongAuthenticationMethod",
                    json!(r#"[{"MethodType":6,"Default":true}]"#),
                    json!(null),
                ),
                prop(
                    "StrongAuthenticationRequirement",
                    json!(r#"[{"State":1}]"#),
                    json!(null),
                ),
                prop(
                    "StrongAuthenticationPhoneAppDetail",
                    json!(r#"[{"DeviceName":"SM-A546B","Id":"1"}]"#),
                    json!(null),
                ),
                prop(
                    "StrongAuthenticationUserDetails",
                    json!(r#"{"PhoneNumber":"+1 4255550167"}"#),
                    json!(null),
                ),
            ],
        );
        assert!(facts_of(&e, Reader::Owner).is_empty());
    }

    #[test]
    fn a_sentence_that_begins_with_an_address_keeps_it_as_written() {
        let e = event(
            "Disable account",
            vec![prop("AccountEnabled", json!("[true]"), json!("[false]"))],
        );
        assert_eq!(
            facts_of(
                &e,
                Reader::Other {
                    owner: "adele@contoso.com"
                }
            ),
            ["adele@contoso.com's account was disabled by Megan Bowen"]
        );
    }
}

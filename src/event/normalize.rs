//! The full decode: one record's JSON (diagnostic or Graph shape) into an [`AuditEvent`].
//!
//! Runs only for records a rule may select. Every field but the three the scan already checked
//! (id, activity, time) is optional here: a record is never refused for an irregular extra.

use jiff::Timestamp;
use serde_json::Value;

use super::lenient::{Fields, readable_property};
use super::{Actor, ActorKind, AuditEvent, Detail, ModifiedProperty, Target};

/// What the scan established about a record before the full decode.
pub(crate) struct Checked {
    pub id: String,
    pub activity: String,
    pub time: Timestamp,
    /// Diagnostic-settings records keep the audit fields under `properties`.
    pub diagnostic: bool,
}

pub(crate) fn to_event(raw: Value, checked: Checked) -> AuditEvent {
    let mut event = decode(raw, checked);
    super::control::clean_event(&mut event);
    event
}

fn decode(raw: Value, checked: Checked) -> AuditEvent {
    let top = Fields::of(Some(&raw));
    let props = if checked.diagnostic {
        top.object(&["properties"])
    } else {
        top
    };
    let operation_name = checked
        .diagnostic
        .then(|| top.text(&["operationName"]))
        .flatten()
        .filter(|op| op != &checked.activity);
    let caller_ip = top.text(&["callerIpAddress"]);

    AuditEvent {
        tenant_id: top
            .text(&["tenantId"])
            .or_else(|| props.text(&["tenantId"]))
            .or_else(|| {
                top.text(&["resourceId"])
                    .and_then(|r| tenant_from_resource_id(&r))
            }),
        category: props.text(&["category"]),
        operation_name,
        operation_type: props.text(&["operationType"]),
        result: props.text(&["result"]),
        result_reason: props
            .text(&["resultReason"])
            .or_else(|| props.text(&["resultDescription"]))
            .or_else(|| top.text(&["resultDescription"])),
        logged_by_service: props.text(&["loggedByService"]),
        correlation_id: props
            .text(&["correlationId"])
            .or_else(|| top.text(&["correlationId"])),
        initiated_by: actor(props.object(&["initiatedBy"]), caller_ip),
        targets: props
            .array(&["targetResources", "targetResource"])
            .iter()
            .filter(|t| t.is_object())
            .map(|t| target(Fields::of(Some(t))))
            .collect(),
        additional_details: props
            .array(&["additionalDetails"])
            .iter()
            .filter_map(|d| detail(Fields::of(Some(d))))
            .collect(),
        id: checked.id,
        time: checked.time,
        activity: checked.activity,
        raw,
    }
}

/// `/tenants/<id>/providers/Microsoft.aadiam`: the only place some records name their tenant.
fn tenant_from_resource_id(resource_id: &str) -> Option<String> {
    let mut parts = resource_id.split('/').filter(|p| !p.is_empty());
    while let Some(part) = parts.next() {
        if part.eq_ignore_ascii_case("tenants") {
            return parts.next().map(str::to_owned);
        }
    }
    None
}

/// `initiatedBy` holds `user` or `app`; either may be null or missing.
fn actor(initiated_by: Fields, caller_ip: Option<String>) -> Actor {
    let user = initiated_by.object(&["user"]);
    if user.0.is_some() {
        return Actor {
            kind: ActorKind::User,
            id: user.text(&["id"]),
            display_name: user.text(&["displayName"]),
            upn: user.text(&["userPrincipalName"]),
            ip: user.text(&["ipAddress"]).or(caller_ip),
            app_id: None,
            service_principal_name: None,
        };
    }
    let app = initiated_by.object(&["app"]);
    if app.0.is_some() {
        return Actor {
            kind: ActorKind::App,
            id: app.text(&["servicePrincipalId"]),
            display_name: app.text(&["displayName"]),
            upn: None,
            ip: caller_ip,
            app_id: app.text(&["appId"]),
            service_principal_name: app.text(&["servicePrincipalName"]),
        };
    }
    Actor {
        ip: caller_ip,
        ..Actor::default()
    }
}

fn target(t: Fields) -> Target {
    Target {
        id: t.text(&["id"]),
        kind: t.text(&["type"]),
        display_name: t.text(&["displayName"]),
        upn: t.text(&["userPrincipalName"]),
        modified_properties: t
            .array(&["modifiedProperties"])
            .iter()
            .filter_map(|p| {
                let p = Fields::of(Some(p));
                let name = p.text(&["displayName"])?;
                let (old, old_json) = readable_property(p.value(&["oldValue"]));
                let (new, new_json) = readable_property(p.value(&["newValue"]));
                Some(ModifiedProperty {
                    name,
                    old,
                    new,
                    old_json,
                    new_json,
                })
            })
            .collect(),
    }
}

fn detail(d: Fields) -> Option<Detail> {
    let key = d.text(&["key"])?;
    let value = match d.value(&["value"]) {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    Some(Detail { key, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_is_read_from_resource_id() {
        assert_eq!(
            tenant_from_resource_id("/tenants/abc-123/providers/Microsoft.aadiam").as_deref(),
            Some("abc-123")
        );
        assert_eq!(tenant_from_resource_id("/providers/Microsoft.aadiam"), None);
    }
}

//! Sample audit records for the gallery (`herald preview --gallery`): one record per activity,
//! shaped like Entra's directoryAudit records (the target, its modified properties, who did
//! it and from where), with made-up people in Contoso and documentation addresses.
//!
//! Self-service activities are done by the owner of the account; every other one by an
//! administrator. The modified properties are those Entra writes for the activity's family:
//! an `Update user` registers Microsoft Authenticator, a role assignment names the role, a
//! disabled account flips `AccountEnabled`.

use serde_json::{Value, json};

use crate::event::AuditEvent;
use crate::event::normalize::{Checked, to_event};
use crate::rules::normalize;

/// The owner of the sample account.
pub(crate) const OWNER_UPN: &str = "adele.vance@contoso.com";
/// The administrator who does what the owner does not.
pub(crate) const ADMIN_UPN: &str = "megan.bowen@contoso.com";

/// A record of `activity` with `result` (`success`, `failure`), decoded.
pub(crate) fn record(activity: &str, result: &str) -> AuditEvent {
    let name = normalize(activity);
    let self_service = name.starts_with("user ") || name.contains("self-service");
    let initiated_by = if self_service {
        json!({ "user": { "id": "4f0a1c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b", "displayName": "Adele Vance",
                          "userPrincipalName": OWNER_UPN, "ipAddress": "203.0.113.7" } })
    } else {
        json!({ "user": { "id": "9c8b7a6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", "displayName": "Megan Bowen",
                          "userPrincipalName": ADMIN_UPN, "ipAddress": "198.51.100.23" } })
    };
    let (service, properties, extra_target) = family(&name);
    let mut targets = vec![json!({
        "id": "4f0a1c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b",
        "type": "User",
        "displayName": "Adele Vance",
        "userPrincipalName": OWNER_UPN,
        "modifiedProperties": properties,
    })];
    targets.extend(extra_target);
    let raw = json!({
        "id": format!("Directory_0b7e2f4a-gallery_{}", name.replace(' ', "-")),
        "category": "UserManagement",
        "correlationId": "0b7e2f4a-6c1d-4e8f-9a2b-3c4d5e6f7a8b",
        "result": result,
        "resultReason": "",
        "activityDisplayName": activity,
        "activityDateTime": "2026-10-20T13:35:53Z",
        "loggedByService": service,
        "operationType": "Update",
        "initiatedBy": initiated_by,
        "targetResources": targets,
        "additionalDetails": [],
    });
    let checked = Checked {
        id: raw["id"].as_str().unwrap_or_default().to_owned(),
        activity: activity.to_owned(),
        time: "2026-10-20T13:35:53Z"
            .parse()
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        diagnostic: false,
    };
    to_event(raw, checked)
}

/// Entra JSON-encodes modified property values inside strings.
fn encoded(value: Value) -> Value {
    Value::String(value.to_string())
}

fn changed(name: &str, old: Value, new: Value) -> Value {
    json!({ "displayName": name, "oldValue": encoded(old), "newValue": encoded(new) })
}

/// The logging service, the owner's modified properties and any further target of a record
/// of the activity `name` (normalized).
fn family(name: &str) -> (&'static str, Value, Option<Value>) {
    if name.contains("role") {
        let role = json!([
            changed(
                "Role.ObjectID",
                Value::Null,
                json!("7a1f3c5e-0d2b-4c6e-8f1a-3b5d7e9f1a2c")
            ),
            changed(
                "Role.DisplayName",
                Value::Null,
                json!("Global Administrator")
            ),
            changed(
                "Role.TemplateId",
                Value::Null,
                json!("62e90394-69f5-4237-9190-012177145e10")
            ),
            changed(
                "Role.WellKnownObjectName",
                Value::Null,
                json!("CompanyAdministrator")
            ),
        ]);
        let target = json!({ "id": "7a1f3c5e-0d2b-4c6e-8f1a-3b5d7e9f1a2c", "type": "Role",
                             "displayName": "Global Administrator", "modifiedProperties": [] });
        return ("Core Directory", role, Some(target));
    }
    match name {
        "update user" => {
            let app = json!([{
                "DeviceName": "SM-A546B", "DeviceToken": "fcm-push-token-gallery", "DeviceTag": "SoftwareTokenActivated",
                "PhoneAppVersion": "6.2510.7126", "OathTokenTimeDrift": 0, "Id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                "AuthenticationType": 3, "NotificationType": 4, "AuthenticatorFlavor": "Authenticator"
            }]);
            let props = json!([
                changed("StrongAuthenticationMethod", json!([]),
                        json!([{ "MethodType": 6, "Default": true }, { "MethodType": 7, "Default": false }])),
                changed("StrongAuthenticationPhoneAppDetail", Value::Null, app),
                { "displayName": "Included Updated Properties", "oldValue": null,
                  "newValue": "\"StrongAuthenticationMethod, StrongAuthenticationPhoneAppDetail\"" },
            ]);
            ("Core Directory", props, None)
        }
        "disable account" | "enable account" => {
            let now = name == "enable account";
            let props = json!([
                changed("AccountEnabled", json!([!now]), json!([now])),
                { "displayName": "Included Updated Properties", "oldValue": null, "newValue": "\"AccountEnabled\"" },
            ]);
            ("Core Directory", props, None)
        }
        n if n.contains("security info") => ("Authentication Methods", json!([]), None),
        n if n.contains("(self-service)") || n.contains("(by admin)") => {
            ("Self-service Password Management", json!([]), None)
        }
        _ => ("Core Directory", json!([]), None),
    }
}

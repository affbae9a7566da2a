//! Routine upkeep: changes Entra records that are no security event for the account's owner.
//!
//! Microsoft Authenticator's registration (`StrongAuthenticationPhoneAppDetail`) is rewritten
//! whenever the app drifts its clock, renews its push token, updates itself or is used: an
//! `Update user` whose values differ only in such fields changed no sign-in method. Such an
//! event is recorded (its history row says why) and tells nobody (ARCHITECTURE.md §2.6).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::event::{AuditEvent, ModifiedProperty};

/// Fields of a method's registration that change in its ordinary use: the TOTP clock drift,
/// when it last signed someone in, the app's version, and its push token (renewed by the
/// phone's push service).
const UPKEEP: [&str; 4] = [
    "OathTokenTimeDrift",
    "LastAuthenticatedTimestamp",
    "PhoneAppVersion",
    "DeviceToken",
];

/// Entra's list of the properties an update touched: a summary, not a change of its own.
const INCLUDED: &str = "Included Updated Properties";

/// Why `event` is routine upkeep — `routine: only OathTokenTimeDrift changed` — or `None`
/// when anything else changed. Routine means: some target has modified properties, and in
/// every one of them the old and new values are JSON that differ only in [`UPKEEP`] fields.
pub fn upkeep_only(event: &AuditEvent) -> Option<String> {
    let properties: Vec<&ModifiedProperty> = event
        .targets
        .iter()
        .flat_map(|t| &t.modified_properties)
        .filter(|p| !p.name.trim().eq_ignore_ascii_case(INCLUDED))
        .collect();
    if properties.is_empty() {
        return None;
    }
    let mut changed = BTreeSet::new();
    for property in properties {
        if !same_but_upkeep(&property.old_json, &property.new_json, &mut changed) {
            return None;
        }
    }
    if changed.is_empty() {
        return None;
    }
    let fields: Vec<&str> = changed.into_iter().collect();
    Some(format!("routine: only {} changed", fields.join(", ")))
}

/// Whether `old` and `new` are equal once [`UPKEEP`] fields are set aside (objects, or lists
/// of objects in the same order); the upkeep fields that differ are added to `changed`.
fn same_but_upkeep(old: &Value, new: &Value, changed: &mut BTreeSet<&'static str>) -> bool {
    match (old, new) {
        (Value::Array(old), Value::Array(new)) => {
            old.len() == new.len()
                && old
                    .iter()
                    .zip(new)
                    .all(|(o, n)| same_but_upkeep(o, n, changed))
        }
        (Value::Object(old), Value::Object(new)) => {
            let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
            for key in keys {
                let (o, n) = (old.get(key), new.get(key));
                if o == n {
                    continue;
                }
                match UPKEEP.iter().find(|u| u.eq_ignore_ascii_case(key)) {
                    Some(upkeep) => {
                        changed.insert(upkeep);
                    }
                    None => return false,
                }
            }
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn property(name: &str, old: Value, new: Value) -> ModifiedProperty {
        ModifiedProperty {
            name: name.to_owned(),
            old: None,
            new: None,
            old_json: old,
            new_json: new,
        }
    }

    fn event(properties: Vec<ModifiedProperty>) -> AuditEvent {
        let checked = crate::event::normalize::Checked {
            id: "Directory_1".to_owned(),
            activity: "Update user".to_owned(),
            time: jiff::Timestamp::UNIX_EPOCH,
            diagnostic: false,
        };
        let raw = json!({ "targetResources": [{ "type": "User", "userPrincipalName": "adele@contoso.com" }] });
        let mut event = crate::event::normalize::to_event(raw, checked);
        event.targets[0].modified_properties = properties;
        event
    }

    fn app(drift: i64, name: &str) -> Value {
        json!([{ "DeviceName": name, "DeviceToken": "t", "OathTokenTimeDrift": drift, "AuthenticationType": 3 }])
    }

    #[test]
    fn only_clock_drift_is_routine_and_says_so() {
        let e = event(vec![
            property(
                "StrongAuthenticationPhoneAppDetail",
                app(2, "SM-A546B"),
                app(3, "SM-A546B"),
            ),
            property(
                INCLUDED,
                Value::Null,
                json!("StrongAuthenticationPhoneAppDetail"),
            ),
        ]);
        assert_eq!(
            upkeep_only(&e).as_deref(),
            Some("routine: only OathTokenTimeDrift changed")
        );
    }

    #[test]
    fn a_new_device_or_another_property_is_not_routine() {
        let renamed = event(vec![property(
            "StrongAuthenticationPhoneAppDetail",
            app(2, "SM-A546B"),
            app(3, "Pixel 9"),
        )]);
        assert_eq!(upkeep_only(&renamed), None);
        let mut two = app(2, "SM-A546B");
        two.as_array_mut()
            .unwrap()
            .push(json!({ "DeviceName": "Pixel 9" }));
        let added = event(vec![property(
            "StrongAuthenticationPhoneAppDetail",
            app(2, "SM-A546B"),
            two,
        )]);
        assert_eq!(upkeep_only(&added), None);
        let plain = event(vec![property(
            "AccountEnabled",
            json!([true]),
            json!([false]),
        )]);
        assert_eq!(upkeep_only(&plain), None);
        let nothing = event(vec![property(INCLUDED, Value::Null, json!("x"))]);
        assert_eq!(upkeep_only(&nothing), None);
        let unchanged = event(vec![property(
            "StrongAuthenticationPhoneAppDetail",
            app(2, "a"),
            app(2, "a"),
        )]);
        assert_eq!(upkeep_only(&unchanged), None);
    }
}

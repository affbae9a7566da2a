//! What a notice must never show, however a record carries it (ARCHITECTURE.md §2.5): push
//! tokens, secrets, key material, hashes, tenant-internal object ids, and phone numbers
//! beyond their last two digits. One list, used where a changed value becomes readable text
//! and where a target reaches a template.

use serde_json::{Map, Value};

/// Parts of a field's name that mark it as secret material, compared ignoring case.
const SECRET_PARTS: [&str; 8] = [
    "token",
    "secret",
    "password",
    "hash",
    "key",
    "thumbprint",
    "credential",
    "certificate",
];

/// Longest readable form of a structured value, in characters.
const READABLE_MAX: usize = 300;

/// Whether a field (or a modified property) named `name` never appears in a notice: secret
/// material, or an object id (`Id`, `DeviceId`, `Role.ObjectID`, `Role.TemplateId`).
pub fn is_sensitive_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_PARTS.iter().any(|part| lower.contains(part))
        || lower == "id"
        || name.ends_with("Id")
        || name.ends_with("ID")
}

/// Whether `text` is a GUID (`8-4-4-4-12` hex digits), the shape of Entra's object ids.
pub fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.trim().split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `text` without the object ids in it: a list (`;` or `,` separated, as Entra writes
/// `ServicePrincipalNames`) loses its GUID items, and a GUID inside an item
/// (`GUID/host`) becomes `…`. `None` when nothing else is left.
pub fn without_ids(text: &str) -> Option<String> {
    let items: Vec<String> = text
        .split([';', ','])
        .map(str::trim)
        .filter(|item| !item.is_empty() && !is_guid(item))
        .map(mask_guids)
        .collect();
    (!items.is_empty()).then(|| items.join(", "))
}

/// `text` with every GUID in it replaced by `…`.
pub fn mask_guids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        match rest.get(..36).filter(|head| is_guid(head)) {
            Some(_) => {
                out.push('…');
                rest = &rest[36..];
            }
            None => {
                let c = rest.chars().next().unwrap_or_default();
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// A phone number with every digit but the last two hidden, keeping a leading `+country`
/// code: `+1 4255550167` → `+1 ••••••••67`.
pub fn mask_phone(number: &str) -> String {
    let number = number.trim();
    let (country, rest) = match number.strip_prefix('+') {
        Some(after) => match after.split_once(' ') {
            Some((code, rest))
                if (1..=3).contains(&code.len()) && code.chars().all(|c| c.is_ascii_digit()) =>
            {
                (format!("+{code} "), rest)
            }
            _ => (String::new(), number),
        },
        None => (String::new(), number),
    };
    let digits: Vec<char> = rest.chars().filter(char::is_ascii_digit).collect();
    let shown: String = digits[digits.len().saturating_sub(2)..].iter().collect();
    let hidden = "•".repeat(digits.len().saturating_sub(2));
    format!("{country}{hidden}{shown}")
}

/// Whether a field (or property) named `name` holds phone numbers: `PhoneNumber`,
/// `TelephoneNumber`, `BusinessPhones`, `Mobile` — not `PhoneAppVersion`.
pub fn is_phone_field(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    (lower.contains("phone") || lower.contains("mobile")) && !lower.contains("app")
}

/// A readable list of phone numbers (`, ` separated), each masked with [`mask_phone`].
pub fn mask_phones(text: &str) -> String {
    text.split(", ")
        .map(mask_phone)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `value` without what a notice must not show: sensitive fields and GUID values removed
/// from every object, phone numbers masked.
pub fn scrub(value: &Value) -> Value {
    match value {
        Value::Object(fields) => {
            let mut kept = Map::new();
            for (name, v) in fields {
                if is_sensitive_name(name) || v.as_str().is_some_and(is_guid) {
                    continue;
                }
                let v = match v {
                    Value::String(s) if is_phone_field(name) => Value::String(mask_phone(s)),
                    other => scrub(other),
                };
                kept.insert(name.clone(), v);
            }
            Value::Object(kept)
        }
        Value::Array(items) => Value::Array(items.iter().map(scrub).collect()),
        Value::String(s) if is_guid(s) => Value::Null,
        other => other.clone(),
    }
}

/// A structured value (an object, or a list of them) as a short line a reader can take in:
/// each object's meaningful plain fields as `Name: value`, objects separated by `; `; nested
/// structures, empty values and everything [`scrub`] removes left out. `None` when nothing
/// is left.
pub fn readable(value: &Value) -> Option<String> {
    let scrubbed = scrub(value);
    let items: Vec<&Value> = match &scrubbed {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let parts: Vec<String> = items
        .into_iter()
        .filter_map(|item| match item {
            Value::Object(fields) => {
                let shown: Vec<String> = fields
                    .iter()
                    .filter_map(|(name, v)| plain(v).map(|v| format!("{name}: {v}")))
                    .collect();
                (!shown.is_empty()).then(|| shown.join(", "))
            }
            other => plain(other),
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    let text = parts.join("; ");
    Some(match text.char_indices().nth(READABLE_MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    })
}

fn plain(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_authenticator_registration_reads_without_its_token_or_ids() {
        let detail = json!([{
            "DeviceName": "SM-A546B", "DeviceToken": "e7KRRYuURkCn:APA91bFW", "DeviceTag": "SoftwareTokenActivated",
            "PhoneAppVersion": "6.2510.7126", "OathTokenTimeDrift": 3,
            "DeviceId": "9e8d7c6b-5a4f-4e3d-2c1b-0a9f8e7d6c5b", "Id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
            "HashFunction": null, "TenantDeviceId": null, "SecuredPartitionId": 20115, "SecuredKeyId": 7,
            "AuthenticatorFlavor": "Authenticator"
        }]);
        let text = readable(&detail).unwrap();
        assert_eq!(
            text,
            "DeviceName: SM-A546B, DeviceTag: SoftwareTokenActivated, PhoneAppVersion: 6.2510.7126, AuthenticatorFlavor: Authenticator"
        );
        for hidden in ["APA91", "9e8d7c6b", "1a2b3c4d", "20115", "Drift"] {
            assert!(!text.contains(hidden), "{hidden} in {text}");
        }
    }

    #[test]
    fn phone_numbers_show_their_last_two_digits_only() {
        assert_eq!(mask_phone("+1 4255550167"), "+1 ••••••••67");
        assert_eq!(mask_phone("4255550167"), "••••••••67");
        // A long "+digits " prefix is no country code: every digit but the last two hidden.
        assert_eq!(mask_phone("+4255550167 1"), "•••••••••71");
        assert_eq!(
            mask_phones("+1 4255550167, +44 7700900123"),
            "+1 ••••••••67, +44 ••••••••23"
        );
        let details = json!({ "PhoneNumber": "+44 7700900123", "AlternativePhoneNumber": "+1 4255550167", "Email": "adele@contoso.com" });
        let text = readable(&details).unwrap();
        assert!(!text.contains("7700900"), "{text}");
        assert!(text.contains("+44 ••••••••23"), "{text}");
    }

    #[test]
    fn secret_and_id_names_are_sensitive() {
        for name in [
            "DeviceToken",
            "ClientSecret",
            "KeyIdentifier",
            "Role.ObjectID",
            "Role.TemplateId",
            "Id",
            "PasswordHash",
        ] {
            assert!(is_sensitive_name(name), "{name}");
        }
        for name in ["DeviceName", "Role.DisplayName", "MethodType", "Valid"] {
            assert!(!is_sensitive_name(name), "{name}");
        }
        assert!(is_guid("62e90394-69f5-4237-9190-012177145e10"));
        assert_eq!(
            without_ids("https://a.example;62e90394-69f5-4237-9190-012177145e10;62e90394-69f5-4237-9190-012177145e10/b.example").as_deref(),
            Some("https://a.example, …/b.example")
        );
        assert_eq!(without_ids("62e90394-69f5-4237-9190-012177145e10"), None);
        assert_eq!(without_ids("Member").as_deref(), Some("Member"));
        assert!(!is_guid("Member"));
    }
}

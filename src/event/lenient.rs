//! Tolerant readers for the irregular fields of real audit records.
//!
//! Two tools: [`LenientStr`], a borrowed string field for the hot-path scan that turns any
//! non-string value (null, a number, an object) into "absent" instead of failing the record; and
//! [`Fields`], case- and spelling-tolerant accessors over a `serde_json` object for the full
//! decode (`type` vs `Type`, `targetResources` vs `targetResource`, `"<null>"` placeholders).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A string field that is `None` unless the JSON holds a string there. Borrows when it can.
#[derive(Debug, Default, Clone)]
pub(crate) struct LenientStr<'a>(pub Option<Cow<'a, str>>);

impl<'a> LenientStr<'a> {
    /// The trimmed value, `None` when absent, empty or a placeholder such as `"<null>"`.
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref().and_then(meaningful)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for LenientStr<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(LenientStr(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(LenientStr(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(LenientStr(Some(Cow::Owned(v))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LenientStr(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LenientStr(None))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Placeholders real records use for "no value".
fn meaningful(text: &str) -> Option<&str> {
    // Control characters leave decoded text (`control.rs`): a value of nothing else is empty,
    // and an id or activity of only those is missing, not a key shared by every such record.
    let text = text.trim_matches(|c: char| c.is_whitespace() || c.is_control());
    match text {
        "" | "<null>" | "null" => None,
        _ => Some(text),
    }
}

/// Tolerant accessors over one JSON object of a record.
#[derive(Clone, Copy)]
pub(crate) struct Fields<'a>(pub Option<&'a Map<String, Value>>);

impl<'a> Fields<'a> {
    pub fn of(value: Option<&'a Value>) -> Self {
        Fields(value.and_then(Value::as_object))
    }

    /// The first of `names` present with a non-null value; exact spelling first, then ignoring
    /// ASCII case (`Level`/`level`, `type`/`Type`).
    pub fn value(&self, names: &[&str]) -> Option<&'a Value> {
        let map = self.0?;
        for name in names {
            if let Some(v) = map.get(*name).filter(|v| !v.is_null()) {
                return Some(v);
            }
        }
        map.iter()
            .find(|(k, v)| !v.is_null() && names.iter().any(|n| k.eq_ignore_ascii_case(n)))
            .map(|(_, v)| v)
    }

    pub fn object(&self, names: &[&str]) -> Fields<'a> {
        Fields(self.value(names).and_then(Value::as_object))
    }

    pub fn array(&self, names: &[&str]) -> &'a [Value] {
        self.value(names)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// A text field: strings trimmed, numbers and booleans printed, placeholders dropped.
    pub fn text(&self, names: &[&str]) -> Option<String> {
        match self.value(names)? {
            Value::String(s) => meaningful(s).map(str::to_owned),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// What a notice shows for a structured value that does not parse.
pub(crate) const UNREADABLE: &str = "(a value Herald cannot read; not shown)";

/// The readable form of a `modifiedProperties` value. Entra JSON-encodes them inside strings:
/// `"\"Member\""` → `Member`, `"[\"Guest\"]"` → `Guest`, `"[true]"` → `true`; empty values
/// (`null`, `""`, `"[]"`, `"\"\""`) are `None`; structures stay compact JSON text.
pub(crate) fn readable_property(value: Option<&Value>) -> (Option<String>, Value) {
    let decoded = match value {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) => match serde_json::from_str(s) {
            Ok(v) => v,
            // A structure cut short or mangled is no text to show: it may hold a push token
            // or a phone number the scrubbing below never saw as fields.
            Err(_) if s.trim_start().starts_with(['{', '[']) => {
                return (Some(UNREADABLE.to_owned()), Value::Null);
            }
            Err(_) => Value::String(s.clone()),
        },
        Some(other) => other.clone(),
    };
    let text = match &decoded {
        Value::Array(items) if items.iter().all(is_scalar) => {
            let parts: Vec<String> = items.iter().filter_map(scalar_text).collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        }
        v if is_scalar(v) => scalar_text(v),
        // Never a raw blob: the meaningful fields, without what a notice must not show.
        other => super::sensitive::readable(other),
    };
    (text, decoded)
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        // Entra writes `None` for an enum without a value (`LiveType: ["None"]`).
        Value::String(s) => meaningful(s).filter(|t| *t != "None").map(str::to_owned),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_str_turns_other_types_into_absent() {
        #[derive(serde::Deserialize)]
        struct R<'a> {
            #[serde(borrow)]
            a: LenientStr<'a>,
            #[serde(borrow)]
            b: LenientStr<'a>,
            #[serde(borrow)]
            c: LenientStr<'a>,
        }
        let r: R = serde_json::from_str(r#"{"a":"x\ny","b":{"k":[1,2]},"c":"<null>"}"#).unwrap();
        assert_eq!(r.a.get(), Some("x\ny"));
        assert_eq!(r.b.get(), None);
        assert_eq!(r.c.get(), None);
    }

    #[test]
    fn modified_property_values_are_made_readable() {
        let cases = [
            (json!("\"Member\""), Some("Member")),
            (json!("[\"Guest\"]"), Some("Guest")),
            (json!("[true]"), Some("true")),
            (json!("[\"a\",\"b\"]"), Some("a, b")),
            (json!("[]"), None),
            (json!(""), None),
            (json!("\"\""), None),
            (json!(null), None),
            (json!("not json"), Some("not json")),
            (json!("None"), None),
            (json!("\"None\""), None),
            (json!("[\"None\"]"), None),
            (
                json!("[{\"DeviceToken\":\"secret-push-token\",\"DeviceName\":\"SM"),
                Some(UNREADABLE),
            ),
            // A JSON value reads as its fields, never as a blob.
            (json!("{\"State\":0}"), Some("State: 0")),
            (
                json!("[{\"MethodType\":6,\"Default\":true},{\"MethodType\":7,\"Default\":false}]"),
                Some("MethodType: 6, Default: true; MethodType: 7, Default: false"),
            ),
            (json!(7), Some("7")),
        ];
        for (raw, want) in cases {
            let (text, _) = readable_property(Some(&raw));
            assert_eq!(text.as_deref(), want, "{raw}");
        }
    }

    #[test]
    fn field_names_match_regardless_of_case() {
        let v = json!({"Type": "User", "level": 4});
        let f = Fields::of(Some(&v));
        assert_eq!(f.text(&["type"]).as_deref(), Some("User"));
        assert_eq!(f.text(&["Level"]).as_deref(), Some("4"));
    }
}

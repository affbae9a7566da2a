//! The librdkafka settings a `kind = "kafka"` source asks for: its own (manual offsets, the
//! group, where a new group starts), the Event Hubs shortcut, explicit TLS/SASL, and the user's
//! passthrough `options`.
//!
//! Settings are built as a plain map so they can be checked without a broker; secrets are in
//! it (they must reach librdkafka), so the map is never logged and errors name keys, not values.

use std::collections::BTreeMap;
use std::path::Path;

use super::KafkaSourceConfig;

/// What an Event Hubs connection string says, minus its key.
#[derive(Debug, PartialEq, Eq)]
pub struct EventHubs {
    /// `NAMESPACE.servicebus.windows.net`.
    pub host: String,
    /// The event hub, when the string is one hub's (a hub-level policy).
    pub entity_path: Option<String>,
}

/// Reads `Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…[;EntityPath=…]`. Errors
/// say what is missing or malformed and never repeat the string.
pub fn parse_connection_string(text: &str) -> Result<EventHubs, String> {
    const WHERE: &str = "copy it from the Azure portal: Event Hubs namespace → Shared access \
                         policies → a policy with Listen → Connection string–primary key";
    let mut parts = BTreeMap::new();
    for (i, part) in text.trim().split(';').enumerate() {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((key, value)) = part.split_once('=') else {
            return Err(format!(
                "part {} has no `=` (expected Key=Value parts separated by `;`); {WHERE}",
                i + 1
            ));
        };
        parts.insert(key.trim().to_ascii_lowercase(), value.trim());
    }
    let endpoint = parts
        .get("endpoint")
        .ok_or_else(|| format!("no Endpoint=sb://… part; {WHERE}"))?;
    let host = endpoint
        .strip_prefix("sb://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|host| !host.is_empty() && !host.contains('/'))
        .ok_or_else(|| {
            // The value is not shown: a string whose parts are not split by `;` carries the key
            // inside what looks like the Endpoint.
            "Endpoint must look like sb://NAMESPACE.servicebus.windows.net/ (parts are separated by `;`)".to_owned()
        })?;
    let has_key =
        parts.contains_key("sharedaccesskeyname") && parts.contains_key("sharedaccesskey");
    if !has_key && !parts.contains_key("sharedaccesssignature") {
        return Err(format!(
            "no SharedAccessKeyName and SharedAccessKey (nor SharedAccessSignature); {WHERE}"
        ));
    }
    for key in ["sharedaccesskey", "sharedaccesskeyname"] {
        if parts.get(key).is_some_and(|v| v.is_empty()) {
            return Err(format!("{key} is empty; {WHERE}"));
        }
    }
    Ok(EventHubs {
        host: host.to_owned(),
        entity_path: parts
            .get("entitypath")
            .filter(|p| !p.is_empty())
            .map(|p| (*p).to_owned()),
    })
}

/// A static member's `group.instance.id`: the instance's name and the source's, in the
/// characters Kafka allows (`[A-Za-z0-9._-]`, at most 249).
pub fn member_id(instance: &str, source: &str) -> String {
    format!("herald.{instance}.{source}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(249)
        .collect()
}

/// Settings Herald relies on for its promises; `options` may not change them.
const OWN: [(&str, &str); 3] = [
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("enable.partition.eof", "true"),
];

/// The full librdkafka configuration and the topics to subscribe to.
pub fn settings(
    config: &KafkaSourceConfig,
    base: &Path,
) -> Result<(BTreeMap<String, String>, Vec<String>), String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    let mut set = |k: &str, v: &str| {
        map.insert(k.to_owned(), v.to_owned());
    };
    for (k, v) in OWN {
        set(k, v);
    }
    set("group.id", &config.group);
    set("client.id", "herald");
    set("auto.offset.reset", config.start.as_str());
    set("statistics.interval.ms", "2000");

    let mut topics = config.topics.clone();
    topics.extend(config.topic.clone());
    let mut brokers = config.brokers.clone();

    if let Some(secret) = &config.event_hubs_connection_string {
        if config.security_protocol.is_some()
            || config.sasl_mechanism.is_some()
            || config.username.is_some()
            || config.password.is_some()
        {
            return Err(
                "event_hubs_connection_string sets security_protocol, sasl_mechanism, \
                        username and password itself: remove those"
                    .to_owned(),
            );
        }
        let secret = secret
            .resolve(base)
            .map_err(|e| format!("event_hubs_connection_string: {e}"))?;
        let hub = parse_connection_string(secret.expose())
            .map_err(|e| format!("event_hubs_connection_string: {e}"))?;
        brokers.get_or_insert_with(|| format!("{}:9093", hub.host));
        if topics.is_empty() {
            topics.extend(hub.entity_path);
        }
        set("security.protocol", "SASL_SSL");
        set("sasl.mechanism", "PLAIN");
        set("sasl.username", "$ConnectionString");
        set("sasl.password", secret.expose());
        // Azure's recommendations for librdkafka: it closes idle connections after 240 s.
        set("socket.keepalive.enable", "true");
        set("metadata.max.age.ms", "180000");
        set("session.timeout.ms", "30000");
        set("heartbeat.interval.ms", "3000");
    } else {
        if let Some(protocol) = &config.security_protocol {
            set("security.protocol", protocol);
        }
        if let Some(mechanism) = &config.sasl_mechanism {
            set("sasl.mechanism", mechanism);
        }
        match (&config.username, &config.password) {
            (Some(user), Some(password)) => {
                let password = password
                    .resolve(base)
                    .map_err(|e| format!("password: {e}"))?;
                set("sasl.username", user);
                set("sasl.password", password.expose());
            }
            (None, None) => {}
            _ => return Err("username and password go together".to_owned()),
        }
    }
    if let Some(ca) = &config.ca_file {
        set("ssl.ca.location", &base.join(ca).to_string_lossy());
    }
    let brokers = brokers.ok_or(
        "brokers is required (host:port, comma-separated), unless \
         event_hubs_connection_string gives the namespace",
    )?;
    set("bootstrap.servers", &brokers);
    if topics.is_empty() {
        return Err(
            "topics is required (the event hub's name, e.g. insights-logs-auditlogs)".into(),
        );
    }

    for (key, value) in &config.options {
        if let Some((_, own)) = OWN.iter().find(|(k, v)| k == key && v != value) {
            return Err(format!(
                "options.{key:?}: Herald commits offsets itself, only after the store has \
                 the records, and needs {key} = {own}"
            ));
        }
        if key == "group.id" || key == "bootstrap.servers" {
            return Err(format!(
                "options.{key:?}: set it with {} instead",
                if key == "group.id" {
                    "group"
                } else {
                    "brokers"
                }
            ));
        }
        map.insert(key.clone(), value.clone());
    }
    Ok((map, topics))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CS: &str = "Endpoint=sb://contoso-audit.servicebus.windows.net/;SharedAccessKeyName=herald-listen;SharedAccessKey=c2VjcmV0LWtleQ==;EntityPath=insights-logs-auditlogs";

    fn config(extra: &str) -> KafkaSourceConfig {
        toml::from_str(&format!("name = \"entra\"\n{extra}")).unwrap()
    }

    #[test]
    fn a_static_member_id_is_the_instance_and_the_source_in_kafkas_characters() {
        assert_eq!(
            member_id("vm-7-1a2b3c4d", "entra"),
            "herald.vm-7-1a2b3c4d.entra"
        );
        assert_eq!(
            member_id("ops host/é", "entra 2"),
            "herald.ops-host--.entra-2"
        );
        assert_eq!(member_id(&"x".repeat(400), "e").len(), 249);
    }

    #[test]
    fn event_hubs_connection_string_gives_everything_the_kafka_endpoint_needs() {
        // SAFETY: tests in this module read only their own variable.
        unsafe { std::env::set_var("HERALD_TEST_EH_CS", CS) };
        let c = config("event_hubs_connection_string = { env = \"HERALD_TEST_EH_CS\" }");
        let (map, topics) = settings(&c, Path::new(".")).unwrap();
        assert_eq!(topics, ["insights-logs-auditlogs"]);
        assert_eq!(
            map["bootstrap.servers"],
            "contoso-audit.servicebus.windows.net:9093"
        );
        assert_eq!(map["security.protocol"], "SASL_SSL");
        assert_eq!(map["sasl.mechanism"], "PLAIN");
        assert_eq!(map["sasl.username"], "$ConnectionString");
        assert_eq!(map["sasl.password"], CS);
        assert_eq!(map["group.id"], "herald");
        assert_eq!(map["enable.auto.commit"], "false");
        assert_eq!(map["enable.auto.offset.store"], "false");
        assert_eq!(map["auto.offset.reset"], "earliest");
        assert_eq!(map["socket.keepalive.enable"], "true");
        // Explicit brokers and topics win over what the string implies.
        let c = config(
            "brokers = \"eh.example:9093\"\ntopics = [\"audit\"]\ngroup = \"$Default\"\nstart = \"latest\"\nevent_hubs_connection_string = { env = \"HERALD_TEST_EH_CS\" }",
        );
        let (map, topics) = settings(&c, Path::new(".")).unwrap();
        assert_eq!(
            (map["bootstrap.servers"].as_str(), topics),
            ("eh.example:9093", vec!["audit".to_owned()])
        );
        assert_eq!(map["group.id"], "$Default");
        assert_eq!(map["auto.offset.reset"], "latest");
        // Mixing the shortcut with explicit SASL is refused.
        let c = config(
            "event_hubs_connection_string = { env = \"HERALD_TEST_EH_CS\" }\nusername = \"u\"\npassword = { env = \"X\" }",
        );
        assert!(
            settings(&c, Path::new("."))
                .unwrap_err()
                .contains("remove those")
        );
    }

    #[test]
    fn malformed_connection_strings_are_explained_without_repeating_the_key() {
        let cases = [
            (
                "SharedAccessKeyName=a;SharedAccessKey=s3cr3t",
                "no Endpoint",
            ),
            (
                "Endpoint=https://x.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey=s3cr3t",
                "sb://",
            ),
            (
                "Endpoint=sb://x.servicebus.windows.net/",
                "no SharedAccessKeyName",
            ),
            (
                "Endpoint=sb://x.servicebus.windows.net/;s3cr3t",
                "part 2 has no `=`",
            ),
            (
                "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey=",
                "sharedaccesskey is empty",
            ),
            (
                "Endpoint=sb://x.servicebus.windows.net/,SharedAccessKeyName=a,SharedAccessKey=s3cr3t",
                "parts are separated by `;`",
            ),
            ("", "no Endpoint"),
        ];
        for (text, expected) in cases {
            let e = parse_connection_string(text).unwrap_err();
            assert!(e.contains(expected), "{text:?}: {e}");
            assert!(!e.contains("s3cr3t"), "{e}");
        }
        let hub = parse_connection_string(
            "endpoint=sb://ns.servicebus.windows.net;sharedaccesskeyname=k;sharedaccesskey=v==",
        )
        .unwrap();
        assert_eq!(
            hub,
            EventHubs {
                host: "ns.servicebus.windows.net".into(),
                entity_path: None
            }
        );
    }

    #[test]
    fn plain_kafka_with_scram_over_tls_and_passthrough_options() {
        unsafe { std::env::set_var("HERALD_TEST_KAFKA_PW", "pw-value") };
        let c = config(
            "brokers = \"k1:9093,k2:9093\"\ntopic = \"audit\"\nsecurity_protocol = \"SASL_SSL\"\nsasl_mechanism = \"SCRAM-SHA-512\"\nusername = \"herald\"\npassword = { env = \"HERALD_TEST_KAFKA_PW\" }\nca_file = \"ca.pem\"\noptions = { \"fetch.max.bytes\" = \"5242880\" }",
        );
        let (map, topics) = settings(&c, Path::new("/etc/herald")).unwrap();
        assert_eq!(topics, ["audit"]);
        assert_eq!(map["bootstrap.servers"], "k1:9093,k2:9093");
        assert_eq!(map["security.protocol"], "SASL_SSL");
        assert_eq!(map["sasl.mechanism"], "SCRAM-SHA-512");
        assert_eq!(map["sasl.username"], "herald");
        assert_eq!(map["sasl.password"], "pw-value");
        assert_eq!(map["ssl.ca.location"], "/etc/herald/ca.pem");
        assert_eq!(map["fetch.max.bytes"], "5242880");
        assert!(!format!("{c:?}").contains("pw-value"));
    }

    #[test]
    fn options_cannot_undo_what_the_promises_need() {
        for (option, expected) in [
            (
                "\"enable.auto.commit\" = \"true\"",
                "commits offsets itself",
            ),
            (
                "\"enable.auto.offset.store\" = \"true\"",
                "commits offsets itself",
            ),
            ("\"group.id\" = \"x\"", "set it with group"),
        ] {
            let c = config(&format!(
                "brokers = \"k:9092\"\ntopics = [\"a\"]\noptions = {{ {option} }}"
            ));
            let e = settings(&c, Path::new(".")).unwrap_err();
            assert!(e.contains(expected), "{option}: {e}");
        }
        let c = config("topics = [\"a\"]");
        assert!(
            settings(&c, Path::new("."))
                .unwrap_err()
                .contains("brokers is required")
        );
        let c = config("brokers = \"k:9092\"");
        assert!(
            settings(&c, Path::new("."))
                .unwrap_err()
                .contains("topics is required")
        );
    }
}

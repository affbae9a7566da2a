//! Typed configuration values: secrets and durations, resolved once at load.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Where a secret comes from: written inline, an environment variable, or a file. `Debug`
/// shows where, never an inline value. Written as a string or as a table with exactly one of
/// `env` and `file` (deserialized by hand, so that a misspelled key is named in the error).
#[derive(Clone)]
pub enum SecretSource {
    Env { env: String },
    File { file: PathBuf },
    Inline(String),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env { env } => write!(f, "{{ env = {env:?} }}"),
            SecretSource::File { file } => write!(f, "{{ file = {:?} }}", file.display()),
            SecretSource::Inline(_) => f.write_str("***"),
        }
    }
}

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

impl<'de> serde::de::Visitor<'de> for SecretVisitor {
    type Value = SecretSource;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a secret: a string, { env = \"VARIABLE\" } or { file = \"PATH\" }")
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<SecretSource, E> {
        Ok(SecretSource::Inline(value.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<SecretSource, E> {
        Ok(SecretSource::Inline(value))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<SecretSource, A::Error> {
        use serde::de::Error;
        let mut found: Option<SecretSource> = None;
        while let Some(key) = map.next_key::<String>()? {
            let source = match key.as_str() {
                "env" => SecretSource::Env {
                    env: map.next_value()?,
                },
                "file" => SecretSource::File {
                    file: map.next_value()?,
                },
                other => {
                    return Err(A::Error::custom(format!(
                        "unknown key `{other}` in a secret (write {{ env = \"VARIABLE\" }} or {{ file = \"PATH\" }})"
                    )));
                }
            };
            if found.is_some() {
                return Err(A::Error::custom(
                    "a secret takes one of `env` and `file`, not both",
                ));
            }
            found = Some(source);
        }
        found.ok_or_else(|| {
            A::Error::custom(
                "an empty table is no secret (write { env = \"VARIABLE\" } or { file = \"PATH\" })",
            )
        })
    }
}

/// A resolved secret. Its `Debug` and `Display` print `***`, so it never reaches a log, an
/// error message or a metric by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret obtained at run time (an access token).
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl SecretSource {
    /// Reads the secret; errors name the variable or file, never the value.
    pub fn resolve(&self, base: &Path) -> Result<Secret, String> {
        match self {
            SecretSource::Inline(value) => Ok(Secret(value.clone())),
            SecretSource::Env { env } => std::env::var(env)
                .map(Secret)
                .map_err(|_| format!("environment variable {env} is not set")),
            SecretSource::File { file } => {
                let path = base.join(file);
                std::fs::read_to_string(&path)
                    .map(|s| Secret(s.trim_end_matches(['\r', '\n']).to_owned()))
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))
            }
        }
    }
}

/// Whether mail can be sent to `address` as it is: lettre's `Address` accepts forms (a quoted
/// local part, an IP literal) that its `Mailbox` and envelope refuse, so both must take it.
pub fn sendable_address(address: &str) -> bool {
    address.parse::<lettre::Address>().is_ok()
        && address.parse::<lettre::message::Mailbox>().is_ok()
}

/// The longest duration a configuration may name. Durations are added to instants and
/// timestamps; bounding them here means no such addition can overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 86_400);

/// A duration written as `500ms`, `5s`, `15m`, `24h` or `7d`, at most [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| {
        format!("{text:?} is not a duration (use e.g. \"500ms\", \"5s\", \"15m\", \"24h\")")
    })?;
    let millis = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{text:?}: unknown unit (use ms, s, m, h or d)")),
    };
    match n.checked_mul(millis).map(Duration::from_millis) {
        Some(d) if d <= MAX_DURATION => Ok(d),
        _ => Err(format!("{text:?} is too long (at most a year, \"366d\")")),
    }
}

/// Serde adapter for [`parse_duration`].
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

/// An address range (`10.0.0.0/8`, `::1/128`, or one address).
#[derive(Debug, Clone, Copy)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let bad = || format!("{text:?} is not an address or a CIDR range (e.g. \"10.0.0.0/8\")");
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().map_err(|_| bad())?)),
            None => (text, None),
        };
        let net: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        if bits > max {
            return Err(bad());
        }
        Ok(Cidr { net, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let bits = u32::from(self.bits);
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_a_message_can_be_built_for_are_sendable() {
        assert!(sendable_address("adele.vance@contoso.com"));
        // lettre's Address takes these; its Mailbox and envelope do not.
        assert!(!sendable_address("a@[203.0.113.1]"));
        assert!(!sendable_address("\"a b\"@contoso.com"));
        assert!(!sendable_address("not an address"));
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("fast").is_err());
        assert_eq!(parse_duration("366d"), Ok(MAX_DURATION));
        for huge in [
            "367d",
            "1000000000d",
            "18446744073709551615ms",
            "99999999999999999999s",
        ] {
            let err = parse_duration(huge).unwrap_err();
            assert!(
                err.contains("is too long") || err.contains("not a duration"),
                "{err}"
            );
        }
        assert!(
            parse_duration("1000000000d")
                .unwrap_err()
                .contains("too long")
        );
    }

    fn secret(text: &str) -> Result<SecretSource, String> {
        #[derive(Deserialize)]
        struct S {
            #[allow(dead_code)]
            s: SecretSource,
        }
        toml::from_str::<S>(text)
            .map(|s| s.s)
            .map_err(|e| e.message().to_owned())
    }

    #[test]
    fn secret_forms_and_misspelled_keys() {
        assert!(matches!(secret("s = \"x\""), Ok(SecretSource::Inline(v)) if v == "x"));
        assert!(
            matches!(secret("s = { env = \"V\" }"), Ok(SecretSource::Env { env }) if env == "V")
        );
        assert!(matches!(
            secret("s = { file = \"f\" }"),
            Ok(SecretSource::File { .. })
        ));
        let err = secret("s = { evn = \"V\" }").unwrap_err();
        assert!(err.contains("unknown key `evn` in a secret"), "{err}");
        assert!(!err.contains("untagged"), "{err}");
        let err = secret("s = { env = \"V\", file = \"f\" }").unwrap_err();
        assert!(err.contains("not both"), "{err}");
        assert!(secret("s = {}").unwrap_err().contains("empty table"));
        assert!(secret("s = 5").unwrap_err().contains("a secret: a string"));
    }

    #[test]
    fn secrets_never_print() {
        let s = SecretSource::Inline("hunter2".into())
            .resolve(Path::new("."))
            .unwrap();
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        let missing = SecretSource::Env {
            env: "HERALD_TEST_UNSET_SECRET".into(),
        }
        .resolve(Path::new("."));
        assert_eq!(
            missing.unwrap_err(),
            "environment variable HERALD_TEST_UNSET_SECRET is not set"
        );
    }
}

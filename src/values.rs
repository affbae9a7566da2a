//! Typed configuration values: secrets and durations, resolved once at load.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Where a secret comes from: written inline, an environment variable, or a file. `Debug`
/// shows where, never an inline value.
#[derive(Clone, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
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

/// A duration written as `500ms`, `5s`, `15m`, `24h` or `7d`.
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
    Ok(Duration::from_millis(n.saturating_mul(millis)))
}

/// Serde adapter for [`parse_duration`].
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("fast").is_err());
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

//! Who this `herald run` is: the name its claims carry in a shared store, stable across
//! restarts so that a restarted instance recognises (and releases) the claims it held when it
//! died (ARCHITECTURE.md §7).

use std::path::Path;

/// The longest instance name accepted.
const MAX_NAME: usize = 64;

/// This instance's name: `given` (`--instance`, `HERALD_INSTANCE`), or by default the host name
/// and a short digest of the configuration file's path, so that the same service on the same
/// machine has the same name after every restart, and two configurations on one machine have
/// two names.
pub fn name(given: Option<&str>, config: &Path) -> Result<String, String> {
    if let Some(name) = given {
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        return match valid {
            true => Ok(name.to_owned()),
            false => Err(format!(
                "--instance: {name:?} is not an instance name (1 to {MAX_NAME} of A-Z a-z 0-9 . _ -)"
            )),
        };
    }
    use sha2::Digest;
    let path = std::fs::canonicalize(config).unwrap_or_else(|_| config.to_owned());
    let digest = sha2::Sha256::digest(path.to_string_lossy().as_bytes());
    let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{}-{short}", hostname()))
}

/// The host name, kept to the characters an instance name allows.
fn hostname() -> String {
    let name: String = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(MAX_NAME - 9)
        .collect();
    if name.is_empty() {
        "herald".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_name_is_stable_per_configuration_and_a_given_one_is_checked() {
        let a = name(None, Path::new("/etc/herald/a.toml")).unwrap();
        assert_eq!(a, name(None, Path::new("/etc/herald/a.toml")).unwrap());
        assert_ne!(a, name(None, Path::new("/etc/herald/b.toml")).unwrap());
        assert!(a.starts_with(&hostname()), "{a}");
        assert_eq!(name(Some("herald-0"), Path::new("x")).unwrap(), "herald-0");
        for bad in ["", "a b", "x\u{0}", "é", &"n".repeat(65)] {
            let err = name(Some(bad), Path::new("x")).unwrap_err();
            assert!(err.starts_with("--instance: "), "{err}");
        }
    }
}

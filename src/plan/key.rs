//! The notification key: the idempotency boundary of the whole system (ARCHITECTURE.md §2.2).

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// `hash(tenant, event id, rule, channel, recipient)`, as 32 hex digits (128 bits).
///
/// The same event seen again (a redelivered batch, a re-read file, a replay) yields the same
/// keys, so the store inserts nothing new. Recipients are compared ignoring case, as mail
/// systems do.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct NotificationKey(String);

impl NotificationKey {
    pub fn new(
        tenant: Option<&str>,
        event_id: &str,
        rule: &str,
        channel: &str,
        recipient: &str,
    ) -> Self {
        let mut hash = Sha256::new();
        // Length-prefixed, so no two field lists can produce the same byte stream.
        for part in [
            tenant.unwrap_or(""),
            event_id,
            rule,
            channel,
            &recipient.to_lowercase(),
        ] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        let digest = hash.finalize();
        let mut hex = String::with_capacity(32);
        for byte in &digest[..16] {
            hex.push_str(&format!("{byte:02x}"));
        }
        NotificationKey(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NotificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_same_key_and_recipient_case_does_not_matter() {
        let a = NotificationKey::new(Some("t"), "e1", "r", "email", "Adele@Contoso.com");
        let b = NotificationKey::new(Some("t"), "e1", "r", "email", "adele@contoso.com");
        assert_eq!(a, b);
        assert_eq!(a.as_str().len(), 32);
    }

    #[test]
    fn every_part_changes_the_key() {
        let base = NotificationKey::new(Some("t"), "e1", "r", "email", "a@b.c");
        for other in [
            NotificationKey::new(None, "e1", "r", "email", "a@b.c"),
            NotificationKey::new(Some("t"), "e2", "r", "email", "a@b.c"),
            NotificationKey::new(Some("t"), "e1", "r2", "email", "a@b.c"),
            NotificationKey::new(Some("t"), "e1", "r", "chat", "a@b.c"),
            NotificationKey::new(Some("t"), "e1", "r", "email", "x@b.c"),
            NotificationKey::new(Some("te"), "1", "r", "email", "a@b.c"),
        ] {
            assert_ne!(base, other);
        }
    }
}

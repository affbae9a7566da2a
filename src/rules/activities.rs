//! Herald's list of known Entra ID audit activity names, and the nearest one to a name that is
//! not in it (for the warning `herald check` gives on a misspelled activity in a rule).
//!
//! Gathered from Microsoft's audit-activity reference, the activities the default rule set and
//! the plain wording know, and the activity names of real audit records. Entra adds activities
//! over time, so a name missing here is a warning, never an error.

use super::normalize;

/// Activity display names (`activityDisplayName`, `operationName`) as Entra writes them.
pub const KNOWN_ACTIVITIES: &[&str] = &[
    "Add app role assignment to service principal",
    "Add delegated permission grant",
    "Add device",
    "Add eligible member to role",
    "Add FIDO2 security key",
    "Add member to group",
    "Add member to role",
    "Add member to role completed (PIM activation)",
    "Add member to role in PIM completed (permanent)",
    "Add member to role in PIM completed (timebound)",
    "Add member to role in PIM requested (permanent)",
    "Add member to role outside of PIM (permanent)",
    "Add passwordless phone sign-in credential",
    "Add registered owner to device",
    "Add registered users to device",
    "Add scoped member to role",
    "Add service principal",
    "Add service principal credentials",
    "Add unverified domain",
    "Add user",
    "Add Windows Hello for Business credential",
    "Added policy",
    "Admin deleted security info",
    "Admin registered security info",
    "Admin started password reset",
    "Admin updated security info",
    "Authentication Methods Policy Reset",
    "Authentication Methods Policy Update",
    "Blocked from self-service password reset",
    "Change password (self-service)",
    "Change user password",
    "Consent to application",
    "Create application – Certificates and secrets management",
    "Delete application password for user",
    "Delete conditional access policy",
    "Delete device",
    "Delete FIDO2 security key",
    "Delete FIDO2 security key(s)",
    "Delete passwordless phone sign-in credential",
    "Delete policy",
    "Delete role assignment",
    "Delete user",
    "Delete Windows Hello for Business credential",
    "Disable account",
    "Disable Strong Authentication",
    "Enable account",
    "Enable Strong Authentication",
    "Get Guest Usages resource",
    "GroupLifecyclePolicies_Get",
    "Hard Delete user",
    "Invite external user",
    "Invite Internal User",
    "Recover device local administrator password",
    "Redeem external user invite",
    "Remove eligible member from role",
    "Remove member from group",
    "Remove member from role",
    "Remove owner from group",
    "Remove role assignment",
    "Remove unverified domain",
    "Reset password",
    "Reset password (by admin)",
    "Reset password (self-service)",
    "Reset user password",
    "Restore user",
    "Security info saved for self-service password reset",
    "Self-service password reset flow activity progress",
    "Set domain authentication",
    "Set federation settings on domain",
    "Set force change user password",
    "Unlock user account (self-service)",
    "Update authentication methods policy",
    "Update conditional access policy",
    "Update device",
    "Update group",
    "Update policy",
    "Update service principal",
    "Update StsRefreshTokenValidFrom Timestamp",
    "Update user",
    "User canceled security info registration",
    "User changed default security info",
    "User deleted security info",
    "User has elevated their access to User Access Administrator for their Azure Resources",
    "User Password Registration",
    "User Password Reset",
    "User registered all required security info",
    "User registered security info",
    "User reviewed security info",
    "User started password change",
    "user started password reset",
    "User started security info registration",
    "User updated security info",
];

/// Whether `name` is a known activity (compared as rules compare: ignoring case and spaces).
pub fn is_known(name: &str) -> bool {
    let name = normalize(name);
    KNOWN_ACTIVITIES.iter().any(|k| normalize(k) == name)
}

/// The known activity `name` is (compared as rules compare), as Entra writes it.
pub fn canonical(name: &str) -> Option<&'static str> {
    let name = normalize(name);
    KNOWN_ACTIVITIES
        .iter()
        .copied()
        .find(|k| normalize(k) == name)
}

/// The known activity nearest to `name`, if one is close enough to be a likely misspelling.
pub fn nearest(name: &str) -> Option<&'static str> {
    let name = normalize(name);
    let limit = (name.chars().count() / 4).clamp(1, 4);
    KNOWN_ACTIVITIES
        .iter()
        .map(|k| (levenshtein(&normalize(k), &name), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Edits (insertions, deletions, substitutions of one character) that turn `a` into `b`.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("same", "same"), 0);
    }

    #[test]
    fn misspellings_find_the_known_name() {
        assert!(is_known("reset  USER password"));
        assert!(!is_known("Reset user pasword"));
        assert_eq!(nearest("Reset user pasword"), Some("Reset user password"));
        assert_eq!(nearest("Something else entirely"), None);
    }

    #[test]
    fn the_default_rule_set_names_only_known_activities() {
        let starter: toml::Table =
            toml::from_str(include_str!("../../examples/herald.toml")).unwrap();
        for rule in starter["rule"].as_array().unwrap() {
            for activity in rule
                .get("activities")
                .and_then(|a| a.as_array())
                .into_iter()
                .flatten()
            {
                let activity = activity.as_str().unwrap();
                assert!(is_known(activity), "{activity:?}");
            }
        }
    }
}

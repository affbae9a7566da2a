//! Activities in plain words, for the person whose account it is.
//!
//! Entra's activity names are written for auditors ("Admin registered security info"); a notice
//! opens with what happened to *you*. Unknown activities fall back to their own name.

use crate::event::{AuditEvent, Target};
use crate::rules::normalize;

/// The headline of a notice about `event`, addressed to the owner of `target`.
pub(crate) fn headline(event: &AuditEvent, target: Option<&Target>) -> String {
    let activity = normalize(&event.activity);
    let succeeded = event
        .result
        .as_deref()
        .is_none_or(|r| r.eq_ignore_ascii_case("success"));
    if !succeeded {
        return match attempted(&activity) {
            Some(text) => text.to_owned(),
            None => format!("{} — it did not succeed", event.activity),
        };
    }
    let changed = |prefix: &str| {
        target.is_some_and(|t| {
            t.modified_properties
                .iter()
                .any(|p| p.name.to_ascii_lowercase().starts_with(prefix))
        })
    };
    let text = match activity.as_str() {
        "reset user password" | "reset password" | "reset password (by admin)" => {
            "Your password was reset by an administrator"
        }
        "reset password (self-service)" => {
            "Your password was reset with self-service password reset"
        }
        "change user password" | "change password (self-service)" => "Your password was changed",
        "set force change user password" => {
            "You will be asked to change your password at your next sign-in"
        }
        "user registered security info" | "add passwordless phone sign-in credential" => {
            "A new sign-in method was added to your account"
        }
        "admin registered security info" => {
            "An administrator added a sign-in method to your account"
        }
        "user updated security info" | "admin updated security info" => {
            "A sign-in method on your account was changed"
        }
        "user deleted security info"
        | "admin deleted security info"
        | "delete passwordless phone sign-in credential" => {
            "A sign-in method was removed from your account"
        }
        "user changed default security info" => "Your default sign-in method was changed",
        "user registered all required security info" => "Your sign-in methods were registered",
        "add fido2 security key" => "A security key was added to your account",
        "delete fido2 security key(s)" => "A security key was removed from your account",
        "add windows hello for business credential" => {
            "Windows Hello for Business was set up for your account"
        }
        "delete windows hello for business credential" => {
            "A Windows Hello for Business credential was removed from your account"
        }
        "enable strong authentication" => {
            "Multi-factor authentication was turned on for your account"
        }
        "disable strong authentication" => {
            "Multi-factor authentication was turned off for your account"
        }
        "update user" if changed("strongauthentication") => {
            "The multi-factor authentication settings of your account were changed"
        }
        "add member to role" | "add scoped member to role" => {
            "You were given an administrator role"
        }
        "add eligible member to role" => "You were made eligible for an administrator role",
        "disable account" => "Your account was disabled",
        "enable account" => "Your account was enabled",
        _ => return event.activity.clone(),
    };
    text.to_owned()
}

/// The headline of a notice about an operation that did not succeed (`result` other than
/// `success`): what was attempted, and that it did not take effect. Never the wording of a
/// change that happened: a failed reset must not tell the owner their password was reset.
fn attempted(activity: &str) -> Option<&'static str> {
    Some(match activity {
        "reset user password" | "reset password" | "reset password (by admin)" => {
            "Someone tried to reset your password — it did not succeed"
        }
        "reset password (self-service)" => {
            "Someone tried to reset your password with self-service password reset — it did not succeed"
        }
        "change user password" | "change password (self-service)" => {
            "Someone tried to change your password — it did not succeed"
        }
        "user registered security info"
        | "admin registered security info"
        | "add passwordless phone sign-in credential"
        | "add fido2 security key"
        | "add windows hello for business credential" => {
            "Someone tried to add a sign-in method to your account — it did not succeed"
        }
        "user updated security info"
        | "admin updated security info"
        | "user changed default security info" => {
            "Someone tried to change a sign-in method on your account — it did not succeed"
        }
        "user deleted security info"
        | "admin deleted security info"
        | "delete passwordless phone sign-in credential"
        | "delete fido2 security key(s)"
        | "delete windows hello for business credential" => {
            "Someone tried to remove a sign-in method from your account — it did not succeed"
        }
        "add member to role" | "add scoped member to role" | "add eligible member to role" => {
            "Someone tried to give you an administrator role — it did not succeed"
        }
        "disable account" => "Someone tried to disable your account — it did not succeed",
        "enable account" => "Someone tried to enable your account — it did not succeed",
        _ => return None,
    })
}

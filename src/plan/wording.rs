//! Activities in plain words, for the person whose account it is.
//!
//! Entra's activity names are written for auditors ("Admin registered security info"); a notice
//! opens with what happened to *you*. Unknown activities fall back to their own name.

use crate::event::{AuditEvent, Target};
use crate::rules::normalize;

/// The headline of a notice about `event`, addressed to the owner of `target`.
pub(crate) fn headline(event: &AuditEvent, target: Option<&Target>) -> String {
    let activity = normalize(&event.activity);
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

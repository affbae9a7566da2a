//! Activities in plain words: the headline (and subject) of a notice for each reader, and a
//! short explanation of why it matters (ARCHITECTURE.md §2.8).
//!
//! Entra's activity names are written for auditors ("Admin registered security info"); a notice
//! opens with what happened — to *you* for the owner of the account, to the owner by name for a
//! group or the SOC. Every activity of the default rule set has both; an unknown activity falls
//! back to its own name.

use super::facts::{Ended, Methods, Reader, capitalized, ended};
use crate::event::{ActorKind, AuditEvent, Target};
use crate::rules::normalize;

/// A sentence in two persons: `you` for the owner, `they` with `{owner}` for the owner's name.
struct Phrase {
    you: &'static str,
    they: &'static str,
}

const fn p(you: &'static str, they: &'static str) -> Phrase {
    Phrase { you, they }
}

impl Phrase {
    /// The phrase for `reader`; a name that begins it stays as written (an address in lower
    /// case is not capitalized).
    fn say(&self, reader: Reader) -> String {
        match reader {
            Reader::Owner => self.you.to_owned(),
            Reader::Other { owner } => capitalized(self.they).replace("{owner}", owner),
        }
    }
}

/// The headline of a notice about `event` and `target`, for `reader`; `methods` is what the
/// explainers found happened to the sign-in methods ([`super::facts::Explained::methods`]).
pub(crate) fn headline(
    event: &AuditEvent,
    target: Option<&Target>,
    reader: Reader,
    methods: Methods,
) -> String {
    let activity = normalize(&event.activity);
    let said = match ended(event) {
        Ended::Failed => {
            return match attempted(&activity) {
                Some(phrase) => phrase.say(reader),
                None => format!("{} — it did not succeed", event.activity),
            };
        }
        // A timeout may or may not have taken effect: said as what was done, with a doubt.
        Ended::Unsure => {
            return match done(&activity, target, methods) {
                Some(phrase) => format!("{} — it may not have completed", phrase.say(reader)),
                None => format!("{} — it may not have completed", event.activity),
            };
        }
        Ended::Succeeded => match done(&activity, target, methods) {
            Some(phrase) => phrase.say(reader),
            None => return event.activity.clone(),
        },
    };
    let mut said = said;
    // A role assignment names the role when the record does.
    if activity.contains("role")
        && let Some(role) = super::facts::role_name(target)
    {
        said = said
            .replace("an administrator role", &format!("the {role} role"))
            .replace("An administrator role", &format!("The {role} role"));
    }
    // An application is not an administrator: a script or a compromised app may be acting.
    if event.initiated_by.kind == ActorKind::App {
        said = said.replace("by an administrator", "by an application");
    }
    said
}

fn done(activity: &str, target: Option<&Target>, methods: Methods) -> Option<Phrase> {
    let changed = |prefix: &str| {
        target.is_some_and(|t| {
            t.modified_properties
                .iter()
                .any(|p| p.name.to_ascii_lowercase().starts_with(prefix))
        })
    };
    Some(match activity {
        "reset user password" | "reset password" | "reset password (by admin)" => p(
            "Your password was reset by an administrator",
            "{owner}'s password was reset by an administrator",
        ),
        "reset password (self-service)" => p(
            "Your password was reset with self-service password reset",
            "{owner}'s password was reset with self-service password reset",
        ),
        "change user password" | "change password (self-service)" => p(
            "Your password was changed",
            "{owner}'s password was changed",
        ),
        "set force change user password" => p(
            "You will be asked to change your password at your next sign-in",
            "{owner} will be asked to change their password at their next sign-in",
        ),
        "user registered security info" | "add passwordless phone sign-in credential" => p(
            "A new sign-in method was added to your account",
            "A new sign-in method was added to {owner}'s account",
        ),
        "admin registered security info" => p(
            "An administrator added a sign-in method to your account",
            "An administrator added a sign-in method to {owner}'s account",
        ),
        "user updated security info" | "admin updated security info" => p(
            "A sign-in method on your account was changed",
            "A sign-in method on {owner}'s account was changed",
        ),
        "user deleted security info"
        | "admin deleted security info"
        | "delete passwordless phone sign-in credential" => p(
            "A sign-in method was removed from your account",
            "A sign-in method was removed from {owner}'s account",
        ),
        "user changed default security info" => p(
            "Your default sign-in method was changed",
            "{owner}'s default sign-in method was changed",
        ),
        "user registered all required security info" => p(
            "Your sign-in methods were registered",
            "{owner}'s sign-in methods were registered",
        ),
        "add fido2 security key" => p(
            "A security key was added to your account",
            "A security key was added to {owner}'s account",
        ),
        "delete fido2 security key(s)" | "delete fido2 security key" => p(
            "A security key was removed from your account",
            "A security key was removed from {owner}'s account",
        ),
        "add windows hello for business credential" => p(
            "Windows Hello for Business was set up for your account",
            "Windows Hello for Business was set up for {owner}'s account",
        ),
        "delete windows hello for business credential" => p(
            "A Windows Hello for Business credential was removed from your account",
            "A Windows Hello for Business credential was removed from {owner}'s account",
        ),
        "enable strong authentication" => p(
            "Multi-factor authentication was turned on for your account",
            "Multi-factor authentication was turned on for {owner}'s account",
        ),
        "disable strong authentication" => p(
            "Multi-factor authentication was turned off for your account",
            "Multi-factor authentication was turned off for {owner}'s account",
        ),
        // What the explainers found decides: an added method is said as one.
        "update user" if changed("strongauthentication") => {
            match (methods.added, methods.removed, methods.other) {
                (true, false, false) => p(
                    "A new sign-in method was added to your account",
                    "A new sign-in method was added to {owner}'s account",
                ),
                (false, true, false) => p(
                    "A sign-in method was removed from your account",
                    "A sign-in method was removed from {owner}'s account",
                ),
                _ => p(
                    "The multi-factor authentication settings of your account were changed",
                    "The multi-factor authentication settings of {owner}'s account were changed",
                ),
            }
        }
        "add member to role" | "add scoped member to role" => p(
            "You were given an administrator role",
            "{owner} was given an administrator role",
        ),
        "add eligible member to role" => p(
            "You were made eligible for an administrator role",
            "{owner} was made eligible for an administrator role",
        ),
        "remove member from role" | "remove eligible member from role" => p(
            "An administrator role was taken away from you",
            "An administrator role was taken away from {owner}",
        ),
        "disable account" => p(
            "Your account was disabled",
            "{owner}'s account was disabled",
        ),
        "enable account" => p("Your account was enabled", "{owner}'s account was enabled"),
        "update user" if changed("accountenabled") => p(
            "Whether your account can sign in was changed",
            "Whether {owner}'s account can sign in was changed",
        ),
        "add member to group" => p("You were added to a group", "{owner} was added to a group"),
        "remove member from group" => p(
            "You were removed from a group",
            "{owner} was removed from a group",
        ),
        _ => return None,
    })
}

/// The headline of a notice about an operation that failed (`result` is `failure`): what was
/// attempted, and that it did not take effect. Never the wording of a
/// change that happened: a failed reset must not tell the owner their password was reset.
fn attempted(activity: &str) -> Option<Phrase> {
    Some(match activity {
        "reset user password" | "reset password" | "reset password (by admin)" => p(
            "Someone tried to reset your password — it did not succeed",
            "Someone tried to reset {owner}'s password — it did not succeed",
        ),
        "reset password (self-service)" => p(
            "Someone tried to reset your password with self-service password reset — it did not succeed",
            "Someone tried to reset {owner}'s password with self-service password reset — it did not succeed",
        ),
        "change user password" | "change password (self-service)" => p(
            "Someone tried to change your password — it did not succeed",
            "Someone tried to change {owner}'s password — it did not succeed",
        ),
        "user registered security info"
        | "admin registered security info"
        | "add passwordless phone sign-in credential"
        | "add fido2 security key"
        | "add windows hello for business credential" => p(
            "Someone tried to add a sign-in method to your account — it did not succeed",
            "Someone tried to add a sign-in method to {owner}'s account — it did not succeed",
        ),
        "user updated security info"
        | "admin updated security info"
        | "user changed default security info" => p(
            "Someone tried to change a sign-in method on your account — it did not succeed",
            "Someone tried to change a sign-in method on {owner}'s account — it did not succeed",
        ),
        "user deleted security info"
        | "admin deleted security info"
        | "delete passwordless phone sign-in credential"
        | "delete fido2 security key(s)"
        | "delete windows hello for business credential" => p(
            "Someone tried to remove a sign-in method from your account — it did not succeed",
            "Someone tried to remove a sign-in method from {owner}'s account — it did not succeed",
        ),
        "enable strong authentication" | "disable strong authentication" | "update user" => p(
            "Someone tried to change the security settings of your account — it did not succeed",
            "Someone tried to change the security settings of {owner}'s account — it did not succeed",
        ),
        "add member to role" | "add scoped member to role" | "add eligible member to role" => p(
            "Someone tried to give you an administrator role — it did not succeed",
            "Someone tried to give {owner} an administrator role — it did not succeed",
        ),
        "remove member from role" | "remove eligible member from role" => p(
            "Someone tried to take an administrator role away from you — it did not succeed",
            "Someone tried to take an administrator role away from {owner} — it did not succeed",
        ),
        "disable account" => p(
            "Someone tried to disable your account — it did not succeed",
            "Someone tried to disable {owner}'s account — it did not succeed",
        ),
        "enable account" => p(
            "Someone tried to enable your account — it did not succeed",
            "Someone tried to enable {owner}'s account — it did not succeed",
        ),
        _ => return None,
    })
}

/// Why the owner of the account should care, in a sentence or two; `None` for an activity
/// Herald has no words for. Said to the owner only: a group or the SOC knows why.
pub(crate) fn explanation(event: &AuditEvent, target: Option<&Target>) -> Option<&'static str> {
    let activity = normalize(&event.activity);
    let changed = |prefix: &str| {
        target.is_some_and(|t| {
            t.modified_properties
                .iter()
                .any(|p| p.name.to_ascii_lowercase().starts_with(prefix))
        })
    };
    if ended(event) == Ended::Failed {
        return attempted(&activity).map(|_| {
            "Nothing was changed. An attempt you did not make can mean someone is trying to take over your account."
        });
    }
    let password = activity.contains("password") && !activity.contains("passwordless");
    Some(match activity.as_str() {
        "set force change user password" => {
            "You will have to choose a new password when you next sign in. If you did not expect this, tell your IT support."
        }
        a if password && !a.contains("security info") => {
            "Your old password no longer works. If you did not expect this, someone else may be able to sign in as you."
        }
        a if a.contains("member to role") || a.contains("member from role") => {
            "An administrator role lets an account change settings, users or data for the whole organization; attackers look for accounts that have one."
        }
        "disable account" => {
            "A disabled account cannot sign in until an administrator enables it again."
        }
        "enable account" => "The account can sign in again.",
        "update user" if changed("accountenabled") && !changed("strongauthentication") => {
            "Whether an account can sign in is an administrator's decision; a change you did not expect should be reported."
        }
        "update user" if !changed("strongauthentication") => return None,
        "add member to group" | "remove member from group" => {
            "Groups decide what an account may open and change; being added to the wrong one can give someone access they should not have."
        }
        "enable strong authentication" | "disable strong authentication" | "update user" => {
            "Multi-factor authentication asks for a second proof, such as an app prompt or a code, when you sign in. Turning it off or changing it makes an account easier to take over."
        }
        a if a.contains("delete")
            || a.contains("deleted")
            || a.contains("updated")
            || a.contains("changed") =>
        {
            "Sign-in methods are how you prove it is you when you sign in. If you did not change this one, someone else may have, to keep you out or to let themselves in."
        }
        a if a.contains("security info")
            || a.contains("credential")
            || a.contains("security key") =>
        {
            "Sign-in methods are how you prove it is you when you sign in. Whoever added this one can use it to sign in as you."
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The headline as a notice renders it: with what the explainers found.
    fn said(event: &AuditEvent, target: Option<&Target>, reader: Reader) -> String {
        let methods = super::super::facts::explain(event, target, reader).methods;
        headline(event, target, reader, methods)
    }

    /// Every activity of the default rule set has a headline in plain words for both readers,
    /// for success and failure, and an explanation for the owner.
    #[test]
    fn every_default_activity_has_plain_words_for_every_reader() {
        let starter: toml::Table =
            toml::from_str(include_str!("../../examples/herald.toml")).unwrap();
        let other = Reader::Other {
            owner: "Adele Vance",
        };
        for rule in starter["rule"].as_array().unwrap() {
            for activity in rule["activities"].as_array().unwrap() {
                let activity = activity.as_str().unwrap();
                for result in ["success", "failure"] {
                    let event = super::super::samples::record(activity, result);
                    let target = event.targets.first();
                    let owner = said(&event, target, Reader::Owner);
                    let third = said(&event, target, other);
                    assert_ne!(owner, activity, "{activity} ({result}) has no headline");
                    assert!(
                        owner.to_lowercase().contains("you"),
                        "{activity} ({result}): {owner}"
                    );
                    assert!(
                        third.contains("Adele Vance"),
                        "{activity} ({result}): {third}"
                    );
                    assert!(
                        !third.to_lowercase().contains("you"),
                        "{activity} ({result}): {third}"
                    );
                    assert!(
                        explanation(&event, target).is_some(),
                        "{activity} ({result}) has no explanation"
                    );
                }
            }
        }
    }

    #[test]
    fn a_role_assignment_names_the_role_in_its_headline() {
        let event = super::super::samples::record("Add member to role", "success");
        assert_eq!(
            said(&event, event.targets.first(), Reader::Owner),
            "You were given the Global Administrator role"
        );
    }

    #[test]
    fn a_timeout_may_not_have_completed_and_a_failure_did_not() {
        let mut event = super::super::samples::record("Reset user password", "timeout");
        assert_eq!(
            said(&event, event.targets.first(), Reader::Owner),
            "Your password was reset by an administrator — it may not have completed"
        );
        event.result = Some("Failure".to_owned());
        assert_eq!(
            said(&event, event.targets.first(), Reader::Owner),
            "Someone tried to reset your password — it did not succeed"
        );
    }

    #[test]
    fn an_application_is_not_called_an_administrator() {
        let mut event = super::super::samples::record("Reset user password", "success");
        event.initiated_by.kind = ActorKind::App;
        assert_eq!(
            said(&event, event.targets.first(), Reader::Owner),
            "Your password was reset by an application"
        );
    }

    #[test]
    fn a_passwordless_credential_is_no_password_change() {
        let event =
            super::super::samples::record("Add passwordless phone sign-in credential", "success");
        let said = explanation(&event, event.targets.first()).unwrap();
        assert!(!said.contains("password no longer works"), "{said}");
        assert!(said.contains("Sign-in methods"), "{said}");
    }
}

//! Who a match tells: recipient specs resolved against one event into addresses.

use std::collections::BTreeMap;

use crate::event::{ActorKind, AuditEvent};
use crate::rules::{Match, Recipient};

/// One resolved recipient and how it was found.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub address: String,
    /// `target`, `initiator`, `address` or `group`.
    pub via: &'static str,
    pub group: Option<String>,
    /// The target this notification is about (index into `event.targets`).
    pub target: Option<usize>,
}

/// Whether `recipient` is the one who did what the notice is about: the initiator, or an
/// address that is the initiator's, or the owner of a target who changed their own account.
/// A copy to a group is never "you".
pub(crate) fn is_actor(event: &AuditEvent, recipient: &Resolved) -> bool {
    match recipient.via {
        "initiator" => true,
        "group" => false,
        _ => {
            let own = recipient
                .target
                .and_then(|i| event.targets.get(i))
                .is_some_and(|t| recipient.via == "target" && event.initiator_is(t));
            let same_address = event.initiated_by.kind == ActorKind::User
                && event
                    .initiated_by
                    .upn
                    .as_deref()
                    .is_some_and(|upn| upn.eq_ignore_ascii_case(&recipient.address));
            own || same_address
        }
    }
}

/// Resolves a match's recipients, each address once (ignoring case), in rule order.
/// "target" means every selected target of type User that has a usable address: a device, a
/// group or a user without a UPN yields nobody.
pub(crate) fn resolve(
    event: &AuditEvent,
    m: &Match,
    groups: &BTreeMap<String, Vec<String>>,
) -> Vec<Resolved> {
    let first_target = m
        .targets
        .iter()
        .copied()
        .find(|&i| event.targets[i].is_type("User"))
        .or_else(|| m.targets.first().copied());
    let mut out: Vec<Resolved> = Vec::new();
    let mut push = |address: String, via, group: Option<&str>, target| {
        if !out.iter().any(|r| r.address.eq_ignore_ascii_case(&address)) {
            out.push(Resolved {
                address,
                via,
                group: group.map(str::to_owned),
                target,
            });
        }
    };
    for spec in &m.rule.recipients {
        match spec {
            Recipient::Target => {
                for &i in &m.targets {
                    let t = &event.targets[i];
                    if let Some(address) = t
                        .is_type("User")
                        .then(|| t.upn.as_deref().and_then(mail_address))
                        .flatten()
                    {
                        push(address, "target", None, Some(i));
                    }
                }
            }
            Recipient::Initiator => {
                let actor = &event.initiated_by;
                if actor.kind == ActorKind::User
                    && let Some(address) = actor.upn.as_deref().and_then(mail_address)
                {
                    push(address, "initiator", None, first_target);
                }
            }
            Recipient::Address(address) => push(address.clone(), "address", None, first_target),
            Recipient::Group(name) => {
                for address in groups.get(name).into_iter().flatten() {
                    push(address.clone(), "group", Some(name), first_target);
                }
            }
        }
    }
    out
}

/// The mail address for a UPN, if it has one. A guest's UPN
/// (`adele_fabrikam.com#EXT#@contoso.onmicrosoft.com`) is not their mailbox: their real address
/// is the part before `#EXT#`, with the last `_` standing for the `@`.
pub(crate) fn mail_address(upn: &str) -> Option<String> {
    let upn = upn.trim();
    let candidate = match upn.find("#EXT#") {
        Some(at) => {
            let local = &upn[..at];
            let split = local.rfind('_')?;
            format!("{}@{}", &local[..split], &local[split + 1..])
        }
        None => upn.to_owned(),
    };
    // A notice to an address `message.rs` cannot build is no notice: such a UPN yields nobody.
    crate::values::sendable_address(&candidate).then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upns_that_are_not_addresses_yield_nobody() {
        assert_eq!(
            mail_address("adele.vance@contoso.com").as_deref(),
            Some("adele.vance@contoso.com")
        );
        assert_eq!(mail_address("user1"), None);
        assert_eq!(mail_address(""), None);
        assert_eq!(mail_address("a@b.c\r\nBcc: x@evil.example"), None);
    }

    #[test]
    fn guest_upn_becomes_the_home_address() {
        assert_eq!(
            mail_address("adele_v_fabrikam.com#EXT#@contoso.onmicrosoft.com").as_deref(),
            Some("adele_v@fabrikam.com")
        );
        assert_eq!(
            mail_address("nounderscore#EXT#@contoso.onmicrosoft.com"),
            None
        );
    }
}

//! Evaluating one rule's selectors against one decoded event.

use super::{InitiatorFilter, Rule, normalize};
use crate::event::{AuditEvent, Target};

/// A rule that selected an event, and which of the event's targets it is about.
#[derive(Debug)]
pub struct Match<'r> {
    pub rule: &'r Rule,
    /// Indexes into `event.targets`.
    pub targets: Vec<usize>,
}

/// Whether `rule` selects `event`; event-level selectors first, then target-level ones
/// (`target_types`, `initiator`, `modified_properties`), which must leave at least one target.
pub(super) fn evaluate<'r>(rule: &'r Rule, event: &AuditEvent) -> Option<Match<'r>> {
    let activity_ok = rule.activities.is_empty()
        || std::iter::once(&event.activity)
            .chain(event.operation_name.as_ref())
            .any(|name| rule.activities.contains(&normalize(name)));
    if !activity_ok
        || !one_of(&rule.categories, event.category.as_deref())
        || !one_of(&rule.services, event.logged_by_service.as_deref())
        || !one_of(&rule.results, event.result.as_deref())
    {
        return None;
    }
    let by_target = !rule.target_types.is_empty()
        || rule.initiator != InitiatorFilter::Any
        || !rule.modified_properties.is_empty();
    let targets: Vec<usize> = event
        .targets
        .iter()
        .enumerate()
        .filter(|(_, t)| target_selected(rule, event, t))
        .map(|(i, _)| i)
        .collect();
    if by_target && targets.is_empty() {
        return None;
    }
    Some(Match { rule, targets })
}

fn one_of(allowed: &[String], value: Option<&str>) -> bool {
    allowed.is_empty() || value.is_some_and(|v| allowed.contains(&normalize(v)))
}

fn target_selected(rule: &Rule, event: &AuditEvent, target: &Target) -> bool {
    one_of(&rule.target_types, target.kind.as_deref())
        && match rule.initiator {
            InitiatorFilter::Any => true,
            InitiatorFilter::Itself => event.initiator_is(target),
            InitiatorFilter::Other => !event.initiator_is(target),
        }
        && (rule.modified_properties.is_empty()
            || target.modified_properties.iter().any(|p| {
                let name = normalize(&p.name);
                rule.modified_properties
                    .iter()
                    .any(|pattern| match pattern.strip_suffix('*') {
                        Some(prefix) => name.starts_with(prefix),
                        None => name == *pattern,
                    })
            }))
}

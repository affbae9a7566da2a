//! The rule index: activity name → rules, so a record is routed by one lookup.

use std::collections::HashMap;

use super::select::{Match, evaluate};
use super::{Rule, normalize};
use crate::event::AuditEvent;

/// All rules, indexed by the activities they name. Rules without an activity selector apply to
/// every record; they are kept apart and cost a full decode of every record, which
/// `herald check` points out.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    by_activity: HashMap<String, Vec<usize>>,
    any_activity: Vec<usize>,
}

impl RuleSet {
    pub fn new(rules: Vec<Rule>) -> Self {
        let mut by_activity: HashMap<String, Vec<usize>> = HashMap::new();
        let mut any_activity = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            if rule.activities.is_empty() {
                any_activity.push(i);
            }
            for activity in &rule.activities {
                let entry = by_activity.entry(activity.clone()).or_default();
                if !entry.contains(&i) {
                    entry.push(i);
                }
            }
        }
        RuleSet {
            rules,
            by_activity,
            any_activity,
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn get(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// Whether any rule could select a record with this activity (or diagnostic
    /// `operationName`). The hot path: no allocation unless the name needs normalizing.
    pub fn wants(&self, activity: &str, operation_name: Option<&str>) -> bool {
        !self.any_activity.is_empty()
            || self.lookup(activity).is_some()
            || operation_name.is_some_and(|op| self.lookup(op).is_some())
    }

    fn lookup(&self, name: &str) -> Option<&Vec<usize>> {
        let is_normal = name
            .bytes()
            .all(|b| !b.is_ascii_uppercase() && b != b'\t' && b.is_ascii())
            && !name.contains("  ")
            && name.trim().len() == name.len();
        if is_normal {
            self.by_activity.get(name)
        } else {
            self.by_activity.get(&normalize(name))
        }
    }

    /// Every rule that selects this event, in configuration order, each with the targets it
    /// selected.
    pub fn select(&self, event: &AuditEvent) -> Vec<Match<'_>> {
        let mut candidates: Vec<usize> = self.any_activity.clone();
        for name in std::iter::once(event.activity.as_str()).chain(event.operation_name.as_deref())
        {
            if let Some(found) = self.lookup(name) {
                candidates.extend(found);
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .into_iter()
            .filter_map(|i| evaluate(&self.rules[i], event))
            .collect()
    }
}

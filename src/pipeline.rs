//! Wires the stages for one input: decode → rules → plan (DESIGN §1).
//!
//! This is the pure part of Herald's flow, shared by the dry run (`herald test`) and the
//! service: bytes in, notifications, skips and dead letters out. It stores and sends nothing.

use std::collections::{BTreeMap, HashSet};

use crate::config::{Config, ConfigError};
use crate::event::{DeadLetter, Item, scan};
use crate::plan::{Notification, NotificationKey, PlanError, Planner};
use crate::rules::Match;

/// A configuration ready to process input.
pub struct Pipeline {
    config: Config,
    planner: Planner,
}

/// What processing some inputs produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Usable audit records.
    pub records: u64,
    /// Records at least one rule selected.
    pub selected: u64,
    /// Records of other log categories, per category.
    pub skipped: BTreeMap<String, u64>,
    pub dead_letters: Vec<DeadLetter>,
    /// Each notification once: a key seen before (the same event again) adds nothing.
    pub notifications: Vec<Notification>,
    /// Notifications dropped because their key was already planned.
    pub duplicates: u64,
    /// Matches whose recipients resolved to nobody: (rule, event id).
    pub unaddressed: Vec<(String, String)>,
    pub failures: Vec<PlanError>,
    seen: HashSet<NotificationKey>,
}

impl Pipeline {
    pub fn new(config: Config) -> Result<Pipeline, ConfigError> {
        let planner = Planner::new(&config)?;
        Ok(Pipeline { config, planner })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Renders every rule's templates once against the first record of `sample`, as if the
    /// rule had selected it; returns each failure, located at its rule.
    pub fn render_samples(&self, sample: &[u8]) -> Vec<String> {
        let mut event = None;
        scan("sample event", sample, |item| {
            if let (None, Item::Record(view)) = (&event, item) {
                event = view.decode().ok();
            }
        });
        let Some(event) = event else {
            return vec!["the sample event does not decode".to_owned()];
        };
        let mut problems = Vec::new();
        for (i, rule) in self.config.rules.rules().iter().enumerate() {
            let m = Match {
                rule,
                targets: (0..event.targets.len()).collect(),
            };
            for result in self.planner.plan(&event, &m) {
                if let Err(e) = result {
                    problems.push(
                        self.config
                            .error_at_rule(i, "template", e.message)
                            .to_string(),
                    );
                }
            }
        }
        problems
    }

    /// Runs one input through the stages, adding to `out`. `input` names it in dead letters.
    pub fn process(&self, input: &str, bytes: &[u8], out: &mut Outcome) {
        let rules = &self.config.rules;
        scan(input, bytes, |item| match item {
            Item::Record(view) => {
                out.records += 1;
                if !rules.wants(view.activity(), view.operation_name()) {
                    return;
                }
                let event = match view.decode() {
                    Ok(event) => event,
                    Err(reason) => {
                        out.records -= 1;
                        out.dead_letters.push(DeadLetter {
                            input: input.to_owned(),
                            position: view.position,
                            reason,
                            raw: view.raw.as_bytes().to_vec(),
                        });
                        return;
                    }
                };
                let matches = rules.select(&event);
                if !matches.is_empty() {
                    out.selected += 1;
                }
                for m in &matches {
                    let planned = self.planner.plan(&event, m);
                    if planned.is_empty() {
                        out.unaddressed
                            .push((m.rule.name.clone(), event.id.clone()));
                    }
                    for result in planned {
                        match result {
                            Ok(n) if out.seen.insert(n.key.clone()) => out.notifications.push(n),
                            Ok(_) => out.duplicates += 1,
                            Err(e) => out.failures.push(e),
                        }
                    }
                }
            }
            Item::Skipped(skipped) => {
                *out.skipped
                    .entry(skipped.category.into_owned())
                    .or_default() += 1;
            }
            Item::Dead(dead) => out.dead_letters.push(dead),
        });
    }
}

//! Wires the stages (ARCHITECTURE.md §1).
//!
//! [`Pipeline`] is the pure part of the flow, shared by the dry run (`herald test`) and the
//! service: bytes in; notifications, skips and dead letters out; nothing stored or sent.
//! [`Ingest`] binds it to the store for sources, [`GroupCommit`] overlaps a source's reading
//! with its commits, and [`run`] is the service itself.

mod group;
mod ingest;
mod instance;
mod prune;
mod run;
pub mod storm;

pub use group::GroupCommit;
pub use ingest::{Ingest, Intake, Piece, Prepared, queued as queued_notification};
pub use instance::name as instance_name;
pub use prune::prune_all;
pub use run::{for_other_channels, open_store, run};

use std::collections::{BTreeMap, HashSet};

use crate::config::{Config, ConfigError};
use crate::event::{DeadLetter, Item, Position, scan};
use crate::plan::{Notification, NotificationKey, PlanError, Planner};
use crate::rules::Match;
use crate::store::SeenEvent;

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
    /// The time of the newest usable record, in Unix milliseconds.
    pub newest: Option<i64>,
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
    /// Selected events that told nobody because their change was routine upkeep: (event id,
    /// why).
    pub routine: Vec<(String, String)>,
    pub failures: Vec<PlanError>,
    /// The records some rule selected, with the rules that did.
    pub events: Vec<SeenEvent>,
    seen: HashSet<NotificationKey>,
}

/// The report pages of `config`: its branding, its time zone, and `[web] page_template` if it
/// names one (read and compiled here, so `herald check` and `run` refuse a broken one).
pub fn report_pages(config: &Config) -> Result<crate::report::page::Pages, String> {
    let template = match config.web.as_ref().and_then(|w| w.page_template.as_ref()) {
        Some(path) => {
            let path = config.dir().join(path);
            if path.extension().is_none_or(|e| e != "html") {
                return Err(format!(
                    "{} must end in .html, so that every value is escaped",
                    path.display()
                ));
            }
            Some(
                std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    crate::report::page::Pages::new(
        crate::plan::page_environment(&config.branding.timezone),
        minijinja::Value::from(minijinja::value::Serde(&config.branding)),
        template,
    )
}

/// A notice a dry run leaves out because another told its recipient about the same action.
#[derive(Debug, Clone)]
pub struct Suppressed {
    pub rule: String,
    pub event_id: String,
    pub recipient: String,
    /// Why, as the store's history says it.
    pub reason: String,
}

impl Outcome {
    /// Applies `once_per_action` as the store does at commit (ARCHITECTURE.md §7,
    /// `actions_told`): of the notices of one action to one recipient on one channel, the
    /// first is kept; the others are removed and returned. For the dry run, which has no store.
    pub fn once_per_action(&mut self) -> Vec<Suppressed> {
        let mut told: std::collections::HashMap<(String, String, String), String> =
            std::collections::HashMap::new();
        let mut out = Vec::new();
        self.notifications.retain(|n| {
            let Some(action) = &n.action else { return true };
            let claim = (
                action.clone(),
                n.channel.clone(),
                n.recipient.to_lowercase(),
            );
            match told.get(&claim) {
                None => {
                    told.insert(claim, n.key.to_string());
                    true
                }
                Some(holder) => {
                    out.push(Suppressed {
                        rule: n.rule.clone(),
                        event_id: n.event_id.clone(),
                        recipient: n.recipient.clone(),
                        reason: crate::store::told_already(&n.recipient, action, holder),
                    });
                    false
                }
            }
        });
        out
    }
}

impl Pipeline {
    pub fn new(config: Config) -> Result<Pipeline, ConfigError> {
        let planner = Planner::new(&config)?;
        Ok(Pipeline { config, planner })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The renderer of the loaded rules (the gallery renders through it).
    pub fn planner(&self) -> &Planner {
        &self.planner
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
            let told = self.planner.owners_told(&event, std::slice::from_ref(&m));
            for result in self.planner.plan(&event, &m, &told) {
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
        self.process_at(input, bytes, 1, out)
    }

    /// As [`Pipeline::process`], for a part of a larger input that starts on `first_line`, so
    /// that dead letters name the line in the whole input.
    pub fn process_at(&self, input: &str, bytes: &[u8], first_line: usize, out: &mut Outcome) {
        self.process_in(input, bytes, first_line, None, out)
    }

    /// As [`Pipeline::process_at`], for a source that knows its tenant when its records do not
    /// name one (Graph's `directoryAudit` carries no `tenantId`): such records are decoded as
    /// the tenant's, so they get the same notification keys as the same records read from
    /// Event Hubs, whose envelope names the tenant.
    pub fn process_in(
        &self,
        input: &str,
        bytes: &[u8],
        first_line: usize,
        tenant: Option<&str>,
        out: &mut Outcome,
    ) {
        let dead_before = out.dead_letters.len();
        self.process_part(input, bytes, first_line, tenant, out);
        for dead in &mut out.dead_letters[dead_before..] {
            dead.position.line += first_line - 1;
        }
    }

    fn process_part(
        &self,
        input: &str,
        bytes: &[u8],
        first_line: usize,
        tenant: Option<&str>,
        out: &mut Outcome,
    ) {
        let rules = &self.config.rules;
        scan(input, bytes, |item| match item {
            Item::Record(view) => {
                out.records += 1;
                out.newest = out.newest.max(Some(view.time().as_millisecond()));
                if !rules.wants(view.activity(), view.operation_name()) {
                    return;
                }
                let mut event = match view.decode() {
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
                if event.tenant_id.is_none() {
                    event.tenant_id = tenant.map(str::to_owned);
                }
                let matches = rules.select(&event);
                let routine = if matches.is_empty() {
                    None
                } else {
                    crate::rules::routine::upkeep_only(&event)
                };
                if !matches.is_empty() {
                    out.selected += 1;
                    out.events.push(SeenEvent {
                        tenant: event.tenant_id.clone().unwrap_or_default(),
                        event_id: event.id.clone(),
                        activity: event.activity.clone(),
                        time: event.time.as_millisecond(),
                        rules: matches.iter().map(|m| m.rule.name.clone()).collect(),
                        routine: routine.clone(),
                        input: input.to_owned(),
                        position: Position {
                            line: view.position.line + first_line - 1,
                            ..view.position
                        }
                        .to_string(),
                        raw: view.raw.as_bytes().to_vec(),
                        accounts: accounts_of(&event),
                        bulk: self.planner.bulk_count(&event),
                    });
                }
                if let Some(why) = routine {
                    out.routine.push((event.id.clone(), why));
                    return;
                }
                let told = self.planner.owners_told(&event, &matches);
                for m in &matches {
                    let planned = self.planner.plan(&event, m, &told);
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

/// The accounts `event` names, to find it by: each target's and the initiator's UPN, display
/// name and object id, lower case, each at most 256 characters, once.
fn accounts_of(event: &crate::event::AuditEvent) -> Vec<String> {
    let actor = &event.initiated_by;
    let mut accounts: Vec<String> = event
        .targets
        .iter()
        .flat_map(|t| [&t.upn, &t.display_name, &t.id])
        .chain([&actor.upn, &actor.display_name, &actor.id])
        .flatten()
        .map(|a| {
            a.trim()
                .chars()
                .take(256)
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|a| !a.is_empty())
        .collect();
    accounts.sort();
    accounts.dedup();
    accounts
}

impl Pipeline {
    /// What a stored record says in Herald's plain words (the dashboard's event page): the
    /// headline and facts of each record in `raw`, as a security team reads them. Nothing for
    /// bytes that hold no record.
    pub fn describe(&self, raw: &[u8]) -> Vec<String> {
        let mut said = Vec::new();
        scan("stored record", raw, |item| {
            if let Item::Record(view) = item
                && let Ok(event) = view.decode()
            {
                said.extend(self.planner.describe(&event));
            }
        });
        said
    }
}

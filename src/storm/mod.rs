//! Calming storms without losing anything (ARCHITECTURE.md §13): what the configuration says
//! about grouping, throttling, bulk changes, repeats and silences, and what each notification
//! carries so that the store can decide, in the commit that queues it, whether it is sent now,
//! held for a group or a digest, or recorded as suppressed.
//!
//! This module is a leaf: the configuration reads its tables, the planner fills in
//! [`Controls`], the store applies them and keeps the counters, the pipeline closes the
//! windows. Nothing here talks to the store or renders anything.

pub mod matcher;
pub mod weekly;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use matcher::{Matcher, Matchers};
pub use weekly::Weekly;

/// `[[throttle]]`: at most `limit` notices per `window` to one recipient on one channel
/// (narrowed `by` rule or initiator); past it, notices are held and sent as one digest when
/// the window ends.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    #[serde(default)]
    pub by: ThrottleBy,
    pub limit: u32,
    #[serde(deserialize_with = "crate::values::duration")]
    pub window: Duration,
    /// The rules it counts (default every rule).
    #[serde(default)]
    pub rules: Vec<String>,
    /// The channels it counts (default every channel).
    #[serde(default)]
    pub channels: Vec<String>,
}

impl ThrottleConfig {
    /// The throttle a configuration without `throttle` gets: at most 10 notices per recipient
    /// per 10 minutes on each mail channel. Chat channels and webhooks are left alone: a SIEM
    /// behind a webhook wants every event.
    pub fn default_for(mail_channels: Vec<String>) -> ThrottleConfig {
        ThrottleConfig {
            by: ThrottleBy::Recipient,
            limit: 10,
            window: Duration::from_secs(600),
            rules: Vec::new(),
            channels: mail_channels,
        }
    }
}

/// What a throttle counts, beside the recipient and the channel.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ThrottleBy {
    /// Every notice to the recipient.
    #[default]
    Recipient,
    /// Each rule's notices to the recipient, apart.
    Rule,
    /// Each initiator's notices to the recipient, apart.
    Initiator,
}

/// `[bulk]`: one initiator acting on more than `accounts` accounts within `window` is told to
/// `notify` as one "bulk change" digest when the window ends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkConfig {
    #[serde(default = "default_bulk_accounts")]
    pub accounts: u32,
    #[serde(
        default = "default_bulk_window",
        deserialize_with = "crate::values::duration"
    )]
    pub window: Duration,
    /// Addresses and `group:NAME`s.
    pub notify: Vec<String>,
    #[serde(default = "default_channels")]
    pub channels: Vec<String>,
}

fn default_bulk_accounts() -> u32 {
    20
}

fn default_bulk_window() -> Duration {
    Duration::from_secs(600)
}

fn default_channels() -> Vec<String> {
    vec!["email".to_owned()]
}

/// `[silences]`: who is told when a silence is created and when it ends (beside its creator).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilencesConfig {
    #[serde(default)]
    pub notify: Vec<String>,
    #[serde(default = "default_channels")]
    pub channels: Vec<String>,
}

/// `[[silence]]`: a silence kept in the configuration (a maintenance window as code). At start
/// it is made in the store once (told like any other); one removed from the file is ended.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceConfig {
    #[serde(rename = "match")]
    pub matchers: Vec<String>,
    /// Weekly hours: `"sat,sun 22:00-04:00 Europe/Berlin"`.
    #[serde(default)]
    pub weekly: Option<String>,
    /// From and until when (RFC 3339); without them, from start for ever.
    #[serde(default)]
    pub starts: Option<String>,
    #[serde(default)]
    pub ends: Option<String>,
    pub comment: String,
    /// Who answers for it (an address hears its summary when it ends).
    #[serde(default = "configuration")]
    pub created_by: String,
}

fn configuration() -> String {
    "the configuration".to_owned()
}

/// A `[[silence]]` checked: its matchers as stored, times in Unix ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredSilence {
    pub matchers: String,
    pub weekly: Option<String>,
    pub starts: Option<i64>,
    pub ends: Option<i64>,
    pub comment: String,
    pub created_by: String,
}

impl ConfiguredSilence {
    /// What it is known by in the store: the same table in the file is the same silence.
    pub fn source(&self) -> String {
        let starts = self.starts.map(|t| t.to_string()).unwrap_or_default();
        let ends = self.ends.map(|t| t.to_string()).unwrap_or_default();
        scope_key(
            "config",
            &[
                &self.matchers,
                self.weekly.as_deref().unwrap_or(""),
                &starts,
                &ends,
                &self.comment,
                &self.created_by,
            ],
        )
    }
}

impl SilenceConfig {
    /// Checks every matcher, the hours, the times and the reason; `(key, message)` names what
    /// is wrong. `rules` are (name, silenceable).
    pub fn check(
        &self,
        rules: &[(&str, bool)],
    ) -> Result<ConfiguredSilence, (&'static str, String)> {
        let matchers = Matchers::parse(&self.matchers).map_err(|m| ("match", m))?;
        may_hold(&matchers, rules).map_err(|m| ("match", m))?;
        if let Some(w) = &self.weekly {
            Weekly::parse(w).map_err(|m| ("weekly", m))?;
        }
        let time = |key: &'static str, t: &Option<String>| {
            t.as_deref()
                .map(|t| {
                    t.parse::<jiff::Timestamp>()
                        .map(|t| t.as_millisecond())
                        .map_err(|_| {
                            (
                                key,
                                format!("{t:?} is not a time like 2026-12-24T18:00:00Z"),
                            )
                        })
                })
                .transpose()
        };
        let (starts, ends) = (time("starts", &self.starts)?, time("ends", &self.ends)?);
        if let (Some(s), Some(e)) = (starts, ends)
            && e <= s
        {
            return Err(("ends", "a silence must end after it starts".to_owned()));
        }
        if self.comment.trim().is_empty() {
            return Err(("comment", "say why: the security group reads it".to_owned()));
        }
        Ok(ConfiguredSilence {
            matchers: matchers.text(),
            weekly: self.weekly.clone(),
            starts,
            ends,
            comment: self.comment.trim().to_owned(),
            created_by: self.created_by.trim().to_owned(),
        })
    }
}

/// Whether a silence of `matchers` may hold any of `rules` (name, silenceable): refused when
/// it matches none, or only rules marked `silenceable = false`.
pub fn may_hold(matchers: &Matchers, rules: &[(&str, bool)]) -> Result<(), String> {
    let held: Vec<&(&str, bool)> = rules
        .iter()
        .filter(|(name, _)| matchers.may_hold_for_rule(name))
        .collect();
    if held.is_empty() {
        return Err("it matches no rule's notices".to_owned());
    }
    if held.iter().all(|(_, silenceable)| !silenceable) {
        let names: Vec<&str> = held.iter().map(|(n, _)| *n).collect();
        return Err(format!(
            "it would match only rules marked silenceable = false ({}): their notices are always sent",
            names.join(", ")
        ));
    }
    Ok(())
}

/// A rule's `group`: its notices to one recipient on one channel that share the key within
/// `wait` of the first become one notice.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// The record's correlation id: the records of one change.
    #[default]
    Correlation,
    /// Who did it.
    Initiator,
    /// The activity.
    Activity,
}

/// A rule's `repeat`: a second occurrence of the same key within the window (or ever) is
/// recorded, not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    Within(Duration),
    Never,
}

impl<'de> Deserialize<'de> for Repeat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Repeat, D::Error> {
        let text = String::deserialize(d)?;
        match text.trim() {
            "never" => Ok(Repeat::Never),
            other => crate::values::parse_duration(other)
                .map(Repeat::Within)
                .map_err(|m| serde::de::Error::custom(format!("{m}, or \"never\""))),
        }
    }
}

/// What a rule's `repeat` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepeatField {
    Target,
    Activity,
    Initiator,
    Result,
}

/// What a notification is about, as silences match it. Every value is the record's, so
/// hostile; they are compared, never interpreted.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Facets {
    pub rule: String,
    pub activity: String,
    pub tenant: String,
    /// The accounts the notice is about (the target's UPN and display name).
    pub account: Vec<String>,
    pub recipient: String,
    /// The user who did it (UPN).
    pub initiator_user: Option<String>,
    /// The app that did it: display name and app id.
    pub initiator_app: Vec<String>,
    pub ip: Option<String>,
}

/// What the store decides a notification's fate by (ARCHITECTURE.md §13), made by the
/// planner from the rule and the configuration.
#[derive(Debug, Clone, Default)]
pub struct Controls {
    pub facets: Facets,
    /// `false` for a rule marked `silenceable = false`: no silence holds its notices.
    pub silenceable: bool,
    /// The rule's `repeat`: the key (a digest of rule, channel, recipient and the compared
    /// fields) and the window, `None` for never again.
    pub repeat: Option<(String, Option<i64>)>,
    /// The rule's `group`: the key (channel, recipient and the group's value) and the wait.
    pub group: Option<(String, i64)>,
    /// Every throttle that counts the notification: its scope (a key) and its limit and
    /// window in milliseconds.
    pub throttles: Vec<Throttle>,
}

impl Controls {
    /// Whether a repeat, a group or a throttle counts the notification in the store (a silence
    /// alone is matched in memory).
    pub fn counts(&self) -> bool {
        self.repeat.is_some() || self.group.is_some() || !self.throttles.is_empty()
    }
}

/// One throttle's count for one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttle {
    pub scope: String,
    pub limit: u32,
    pub window: i64,
}

/// One initiator's change to accounts, counted for `[bulk]`.
#[derive(Debug, Clone, Default)]
pub struct BulkCount {
    /// The initiator's key (tenant and UPN or app id) and the name it is shown by.
    pub scope: String,
    pub initiator: String,
    pub accounts: Vec<String>,
    pub threshold: u32,
    pub window: i64,
    /// What a silence matches it by (no rule, account or recipient: a silence of the
    /// initiator, tenant, activity or address holds the bulk digest too).
    pub facets: Facets,
}

/// A digest of `parts`, short and fixed in length: the keys of windows, repeats and groups.
pub fn scope_key(kind: &str, parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    for p in parts {
        h.update([0u8]);
        h.update(p.to_lowercase().as_bytes());
    }
    let digest = h.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{kind}-{hex}")
}

/// What held a notification back, in words, from its state and `held_by`: for `herald outbox
/// show`, the listing and the dashboard.
pub fn fate_in_words(state: &str, held_by: Option<&str>) -> Option<String> {
    let by = held_by?;
    let what = if let Some(id) = by.strip_prefix("silence:") {
        format!("silenced by silence {id} (herald silence list)")
    } else if let Some(key) = by.strip_prefix("repeat:") {
        format!("a repeat: notice {key} already told this")
    } else if by.starts_with("group-") {
        match state {
            "held" => format!("grouped: waiting for the rest of its change ({by})"),
            _ => format!("grouped: told in its group's notice ({by})"),
        }
    } else if by.starts_with("throttle-") {
        match state {
            "held" => format!("held for a digest: past a throttle until its window ends ({by})"),
            _ => format!("told in a digest ({by})"),
        }
    } else {
        by.to_owned()
    };
    Some(what)
}

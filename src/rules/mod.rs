//! Rules: which audit events matter, and who is told about them on which channel.
//!
//! A rule is data (TOML, ARCHITECTURE.md §6). [`RuleConfig`] is what the operator writes; [`Rule`] is the
//! checked, normalized form; [`RuleSet`] holds them behind an index by activity so that routing a
//! record costs one map lookup, not a scan of every rule. Rules never render or send anything:
//! they yield [`Match`]es for [`crate::plan`].

pub mod activities;
mod index;
pub mod routine;
mod select;

pub use index::RuleSet;
pub use select::Match;

use serde::Deserialize;

/// One `[[rule]]` table as written. All selectors are optional; AND between keys, OR within a
/// list, strings compared ignoring case (and, for activities, runs of spaces).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    #[serde(default)]
    pub activities: Vec<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub results: Vec<String>,
    #[serde(default)]
    pub target_types: Vec<String>,
    /// Names of modified properties of a selected target; a trailing `*` matches a prefix
    /// (`StrongAuthentication*`).
    #[serde(default)]
    pub modified_properties: Vec<String>,
    #[serde(default)]
    pub initiator: InitiatorFilter,
    pub recipients: Vec<String>,
    #[serde(default = "default_channels")]
    pub channels: Vec<String>,
    #[serde(default = "default_template")]
    pub template: String,
    /// A template for the subject line; the built-in default names the activity.
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub importance: Importance,
    /// One action, one notice: no notice when another notice of a rule with this flag has
    /// already told the same recipient, on the same channel, about a record with the same
    /// correlation id (Entra writes several records for one change).
    #[serde(default)]
    pub once_per_action: bool,
    /// The response actions an owner's "I did not do this" on one of this rule's notices sets
    /// off, in place of `[report] actions`.
    #[serde(default)]
    pub report_actions: Option<Vec<crate::channel::graph_action::Action>>,
    /// One action, one notice: this rule's notices to one recipient on one channel that share
    /// `group_by` within `group_wait` of the first are sent as one notice listing every fact.
    #[serde(default, deserialize_with = "optional_duration")]
    pub group_wait: Option<std::time::Duration>,
    #[serde(default)]
    pub group_by: crate::storm::GroupBy,
    /// A second occurrence of `repeat_key` within this window (or ever: `"never"`) is recorded
    /// and not sent.
    #[serde(default)]
    pub repeat: Option<crate::storm::Repeat>,
    #[serde(default = "default_repeat_key")]
    pub repeat_key: Vec<crate::storm::RepeatField>,
    /// `false`: no silence holds this rule's notices ("you were made Global Administrator").
    #[serde(default = "yes")]
    pub silenceable: bool,
}

fn optional_duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<std::time::Duration>, D::Error> {
    crate::values::duration(d).map(Some)
}

fn default_repeat_key() -> Vec<crate::storm::RepeatField> {
    vec![
        crate::storm::RepeatField::Target,
        crate::storm::RepeatField::Activity,
    ]
}

fn yes() -> bool {
    true
}

fn default_channels() -> Vec<String> {
    vec!["email".to_owned()]
}

fn default_template() -> String {
    "security-notice".to_owned()
}

/// Whether the initiator must be the target (`self`: self-service) or someone else (`other`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitiatorFilter {
    #[default]
    Any,
    #[serde(rename = "self")]
    Itself,
    Other,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Importance {
    Low,
    #[default]
    Normal,
    High,
}

impl Importance {
    pub fn as_str(self) -> &'static str {
        match self {
            Importance::Low => "low",
            Importance::Normal => "normal",
            Importance::High => "high",
        }
    }
}

/// Who a rule tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// Every selected target of type User that has an address.
    Target,
    /// The user who did it (an app initiator has no address: nobody is told).
    Initiator,
    /// A fixed address.
    Address(String),
    /// A `[groups]` entry.
    Group(String),
}

/// A rule, checked and normalized.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub(crate) activities: Vec<String>,
    pub(crate) categories: Vec<String>,
    pub(crate) services: Vec<String>,
    pub(crate) results: Vec<String>,
    pub(crate) target_types: Vec<String>,
    pub(crate) modified_properties: Vec<String>,
    pub(crate) initiator: InitiatorFilter,
    pub recipients: Vec<Recipient>,
    pub channels: Vec<String>,
    pub template: String,
    pub subject: Option<String>,
    pub importance: Importance,
    /// See [`RuleConfig::once_per_action`].
    pub once_per_action: bool,
    /// See [`RuleConfig::report_actions`].
    pub report_actions: Option<Vec<crate::channel::graph_action::Action>>,
    /// See [`RuleConfig::group_wait`]: what groups and how long the first waits.
    pub group: Option<(crate::storm::GroupBy, std::time::Duration)>,
    /// See [`RuleConfig::repeat`].
    pub repeat: Option<(crate::storm::Repeat, Vec<crate::storm::RepeatField>)>,
    pub silenceable: bool,
}

impl Rule {
    /// Whether the rule names no activities, and so must see every record fully decoded.
    pub fn matches_any_activity(&self) -> bool {
        self.activities.is_empty()
    }
}

/// A rule that cannot be used, with the key at fault (`recipients[1]`).
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct RuleError {
    pub key: String,
    pub message: String,
}

fn rule_error(key: impl Into<String>, message: impl Into<String>) -> RuleError {
    RuleError {
        key: key.into(),
        message: message.into(),
    }
}

/// What a rule may refer to outside itself.
pub struct Known<'a> {
    pub groups: &'a dyn Fn(&str) -> bool,
    pub channels: &'a dyn Fn(&str) -> bool,
}

impl RuleConfig {
    /// Checks the rule against the rest of the configuration and normalizes it.
    pub fn compile(&self, known: &Known) -> Result<Rule, RuleError> {
        if self.name.trim().is_empty() || self.name.chars().any(char::is_control) {
            return Err(rule_error(
                "name",
                "must be a non-empty name without control characters",
            ));
        }
        if self.recipients.is_empty() {
            return Err(rule_error(
                "recipients",
                "a rule must tell someone: add \"target\", \"initiator\", an address or \"group:<name>\"",
            ));
        }
        let recipients = self
            .recipients
            .iter()
            .enumerate()
            .map(|(i, r)| {
                parse_recipient(r, known).map_err(|m| rule_error(format!("recipients[{i}]"), m))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.channels.is_empty() {
            return Err(rule_error("channels", "name at least one channel"));
        }
        for (i, channel) in self.channels.iter().enumerate() {
            if !(known.channels)(channel) {
                return Err(rule_error(
                    format!("channels[{i}]"),
                    format!("no [channel.{channel}] is configured"),
                ));
            }
        }
        for (key, list) in [
            ("activities", &self.activities),
            ("categories", &self.categories),
            ("services", &self.services),
            ("results", &self.results),
            ("target_types", &self.target_types),
            ("modified_properties", &self.modified_properties),
        ] {
            if let Some(i) = list.iter().position(|s| normalize(s).is_empty()) {
                return Err(rule_error(
                    format!("{key}[{i}]"),
                    "empty value: it would match nothing",
                ));
            }
        }
        if self.group_wait.is_some_and(|w| w.is_zero()) {
            return Err(rule_error(
                "group_wait",
                "a group must wait for something: leave it out to send each notice at once",
            ));
        }
        if self.repeat.is_some() && self.repeat_key.is_empty() {
            return Err(rule_error(
                "repeat_key",
                "name what a repeat compares (target, activity, initiator, result)",
            ));
        }
        let lower = |list: &[String]| list.iter().map(|s| normalize(s)).collect::<Vec<_>>();
        Ok(Rule {
            name: self.name.trim().to_owned(),
            activities: lower(&self.activities),
            categories: lower(&self.categories),
            services: lower(&self.services),
            results: lower(&self.results),
            target_types: lower(&self.target_types),
            modified_properties: lower(&self.modified_properties),
            initiator: self.initiator,
            recipients,
            channels: self.channels.clone(),
            template: self.template.clone(),
            subject: self.subject.clone(),
            importance: self.importance,
            once_per_action: self.once_per_action,
            report_actions: self.report_actions.clone(),
            group: self.group_wait.map(|w| (self.group_by, w)),
            repeat: self.repeat.map(|r| (r, self.repeat_key.clone())),
            silenceable: self.silenceable,
        })
    }
}

fn parse_recipient(spec: &str, known: &Known) -> Result<Recipient, String> {
    let spec = spec.trim();
    match spec {
        "target" => Ok(Recipient::Target),
        "initiator" => Ok(Recipient::Initiator),
        _ => {
            if let Some(group) = spec.strip_prefix("group:") {
                if (known.groups)(group) {
                    Ok(Recipient::Group(group.to_owned()))
                } else {
                    Err(format!("no group {group:?} in [groups]"))
                }
            } else if spec.parse::<lettre::Address>().is_ok() {
                Ok(Recipient::Address(spec.to_owned()))
            } else {
                Err(format!(
                    "{spec:?} is not \"target\", \"initiator\", \"group:<name>\" or an email address"
                ))
            }
        }
    }
}

/// How names are compared: trimmed, runs of whitespace as one space, lower case. Real activity
/// names carry trailing spaces, and casing differs between Microsoft's own sources.
pub(crate) fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Known<'static> {
        Known {
            groups: &|g| g == "soc",
            channels: &|c| c == "email",
        }
    }

    fn config(toml_text: &str) -> RuleConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn names_are_compared_without_case_or_extra_spaces() {
        assert_eq!(normalize("  Reset   user Password "), "reset user password");
    }

    #[test]
    fn recipients_are_checked() {
        let rule =
            config("name='r'\nrecipients=['target','initiator','soc@contoso.com','group:soc']")
                .compile(&known())
                .unwrap();
        assert_eq!(
            rule.recipients,
            vec![
                Recipient::Target,
                Recipient::Initiator,
                Recipient::Address("soc@contoso.com".into()),
                Recipient::Group("soc".into())
            ]
        );
        let err = config("name='r'\nrecipients=['target','group:nope']")
            .compile(&known())
            .unwrap_err();
        assert_eq!(err.key, "recipients[1]");
        let err = config("name='r'\nrecipients=['the boss']")
            .compile(&known())
            .unwrap_err();
        assert_eq!(err.key, "recipients[0]");
    }

    #[test]
    fn unknown_channel_is_an_error() {
        let err = config("name='r'\nrecipients=['target']\nchannels=['pager']")
            .compile(&known())
            .unwrap_err();
        assert_eq!(err.key, "channels[0]");
        assert!(err.message.contains("[channel.pager]"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(
            toml::from_str::<RuleConfig>("name='r'\nrecipients=['target']\nactivity=['x']")
                .is_err()
        );
    }
}

//! The configuration file: its model, loading, and validation into typed values.
//!
//! Validated once, here: every error names the file, the line and the key
//! (`herald.toml:41: rule[2] "password-reset": recipients[1]: no group "soc" in [groups]`), and
//! nothing downstream re-parses a config string. Unknown keys are errors.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::channel::{ChannelConfig, Format};
use crate::dispatch::DeliveryConfig;
use crate::msgraph::MicrosoftApp;
use crate::rules::{Known, RuleConfig, RuleSet};
use crate::source::SourceConfig;
use crate::values::SecretSource;
use crate::web::AdminConfig;
use crate::web::public::PublicConfig;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    store: StoreConfig,
    #[serde(default)]
    source: Vec<Spanned<SourceConfig>>,
    #[serde(default)]
    delivery: DeliveryConfig,
    #[serde(default)]
    admin: AdminConfig,
    web: Option<PublicConfig>,
    dashboard: Option<crate::dashboard::DashboardConfig>,
    #[serde(default)]
    report: crate::report::ReportConfig,
    #[serde(default)]
    branding: Branding,
    #[serde(default)]
    groups: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    microsoft: BTreeMap<String, Spanned<MicrosoftApp>>,
    #[serde(default)]
    channel: BTreeMap<String, Spanned<ChannelConfig>>,
    #[serde(default)]
    rule: Vec<Spanned<RuleConfig>>,
    /// `[[throttle]]`; absent, the default one (`ThrottleConfig::default_for`); `throttle =
    /// []` for none.
    throttle: Option<Vec<crate::storm::ThrottleConfig>>,
    bulk: Option<crate::storm::BulkConfig>,
    #[serde(default)]
    silences: crate::storm::SilencesConfig,
    #[serde(default)]
    silence: Vec<crate::storm::SilenceConfig>,
}

/// `[store]`: where Herald keeps its state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://PATH` (relative to the configuration file), or `postgres://…` for several
    /// instances. A secret source, since a PostgreSQL URL may carry a password.
    #[serde(default = "default_store_url")]
    pub url: SecretSource,
    /// Connections in the pool (SQLite 4, PostgreSQL 8 by default).
    #[serde(default)]
    pub pool_size: Option<u32>,
    /// How long rows are kept (`[store.retention]`); pruned in the background.
    #[serde(default)]
    pub retention: crate::store::Retention,
}

fn default_store_url() -> SecretSource {
    SecretSource::Inline("sqlite://herald.db".to_owned())
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: default_store_url(),
            pool_size: None,
            retention: crate::store::Retention::default(),
        }
    }
}

/// What the notices say about the organization sending them (`[branding]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Branding {
    #[serde(default = "default_organization")]
    pub organization: String,
    pub address: Option<String>,
    pub logo_url: Option<String>,
    /// A PNG, JPEG or GIF file (relative to the configuration's directory) embedded in every
    /// mail as an inline image (`cid:`), so clients that block remote images still show it.
    /// Takes the place of `logo_url` in mail.
    pub logo_file: Option<PathBuf>,
    /// `logo_file`, read and checked at load.
    #[serde(skip)]
    pub logo: Option<Logo>,
    pub website: Option<String>,
    pub support_url: Option<String>,
    pub support_email: Option<String>,
    pub support_phone: Option<String>,
    pub report_url: Option<String>,
    pub report_email: Option<String>,
    /// IANA zone for times in notices (`Europe/Berlin`); UTC by default.
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

/// The logo image embedded in mail (`[branding] logo_file`).
#[derive(Clone)]
pub struct Logo {
    pub bytes: std::sync::Arc<[u8]>,
    /// `image/png`, `image/jpeg` or `image/gif`.
    pub content_type: &'static str,
    /// The file's name, without its directory.
    pub file_name: String,
}

impl std::fmt::Debug for Logo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Logo({}, {}, {} bytes)",
            self.file_name,
            self.content_type,
            self.bytes.len()
        )
    }
}

/// Largest logo embedded: every notice carries it.
const LOGO_MAX: usize = 256 * 1024;

/// Reads `[branding] logo_file` from `dir`: an image by its content, not its name.
fn load_logo(dir: &Path, file: &Path) -> Result<Logo, String> {
    let path = dir.join(file);
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() > LOGO_MAX {
        return Err(format!(
            "{} is {} KiB; a logo sent with every notice must be at most {} KiB",
            path.display(),
            bytes.len() / 1024,
            LOGO_MAX / 1024
        ));
    }
    let content_type = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        "image/gif"
    } else {
        return Err(format!(
            "{} is not a PNG, JPEG or GIF image (mail clients show no other kind inline)",
            path.display()
        ));
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "logo".to_owned());
    // The name goes into a MIME header: keep it to plain characters.
    let file_name: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(Logo {
        bytes: bytes.into(),
        content_type,
        file_name,
    })
}

fn default_organization() -> String {
    "Your organization".to_owned()
}

fn default_timezone() -> String {
    "UTC".to_owned()
}

impl Default for Branding {
    fn default() -> Self {
        toml::from_str("").expect("branding defaults")
    }
}

/// A loaded, validated configuration.
#[derive(Debug)]
pub struct Config {
    pub path: PathBuf,
    pub store: StoreConfig,
    pub sources: Vec<SourceConfig>,
    pub delivery: DeliveryConfig,
    pub admin: AdminConfig,
    /// `[web]`: the public listener of the report pages, and the keys of the report links.
    pub web: Option<PublicConfig>,
    /// `[dashboard]`: the operator's dashboard and API on the admin listener.
    pub dashboard: Option<crate::dashboard::DashboardConfig>,
    /// The file as written, every inline secret shown as `***` (the dashboard's
    /// configuration page).
    pub shown: String,
    /// `[report]`: who hears of an owner's answer on a report page.
    pub report: crate::report::ReportConfig,
    /// `[[throttle]]` as it applies (the default one when the file names none).
    pub throttles: Vec<crate::storm::ThrottleConfig>,
    /// `[bulk]`: who hears of one initiator changing many accounts.
    pub bulk: Option<crate::storm::BulkConfig>,
    /// `[silences]`: who hears of a silence made and ended.
    pub silences: crate::storm::SilencesConfig,
    /// `[[silence]]`: the silences kept in the configuration, checked.
    pub configured_silences: Vec<crate::storm::ConfiguredSilence>,
    pub branding: Branding,
    pub groups: BTreeMap<String, Vec<String>>,
    pub channels: BTreeMap<String, ChannelConfig>,
    /// App registrations (`[microsoft.NAME]`) the Microsoft channels and sources use.
    pub microsoft: BTreeMap<String, MicrosoftApp>,
    pub rules: RuleSet,
    /// Line of each rule's table, for errors found later (templates).
    pub(crate) rule_lines: Vec<usize>,
    /// Line of each channel's table, likewise.
    pub(crate) channel_lines: BTreeMap<String, usize>,
    /// Line of each source's table, likewise.
    pub(crate) source_lines: Vec<usize>,
    /// Lines of the keys whose values are checked after loading (`rule[0].template`,
    /// `channel.teams.template`), so those errors point at the key, not its table.
    pub(crate) key_lines: BTreeMap<String, usize>,
    /// Lines of `[store]` keys, for secrets resolved later.
    pub(crate) store_url_line: Option<usize>,
    /// What is valid but probably not meant (an unknown activity, an unused channel):
    /// `herald check` prints these and still exits 0.
    pub warnings: Vec<ConfigWarning>,
}

/// Something valid but probably not meant, located like a [`ConfigError`].
#[derive(Debug)]
pub struct ConfigWarning(pub ConfigError);

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "warning: {}", self.0)
    }
}

/// What a command needs a configuration to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// `check` and `run`: at least one source, rule and channel.
    Everything,
    /// `test` and `preview` read their input from the command line: rules and channels.
    RulesAndChannels,
}

/// A configuration problem, located.
#[derive(Debug)]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_owned(),
            line: None,
            key: None,
            message: format!("cannot read the configuration: {e}"),
        })?;
        Config::parse(path, &text)
    }

    /// Parses and validates `text`; `path` names it in errors and anchors relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let located = |line: Option<usize>, key: Option<String>, message: String| ConfigError {
            path: path.to_owned(),
            line,
            key,
            message,
        };
        let file: ConfigFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            let key = e.span().and_then(|s| key_path(text, s.start));
            located(line, key, plain_message(e.message().trim()))
        })?;

        if let Some(web) = &file.web {
            web.check().map_err(|(key, m)| {
                located(key_line(text, "web", key), Some(format!("web.{key}")), m)
            })?;
        }
        if let Some(dashboard) = &file.dashboard {
            dashboard.check().map_err(|(key, m)| {
                located(
                    key_line(text, "dashboard", key),
                    Some(format!("dashboard.{key}")),
                    m,
                )
            })?;
        }
        let mut branding = file.branding;
        check_branding(&branding).map_err(|(key, m)| {
            located(
                key_line(text, "branding", key),
                Some(format!("branding.{key}")),
                m,
            )
        })?;
        if let Some(file) = &branding.logo_file {
            let dir = path.parent().unwrap_or(Path::new("."));
            branding.logo = Some(load_logo(dir, file).map_err(|m| {
                located(
                    key_line(text, "branding", "logo_file"),
                    Some("branding.logo_file".to_owned()),
                    m,
                )
            })?);
        }

        for (name, members) in &file.groups {
            let line = key_line(text, "groups", name);
            if members.is_empty() {
                return Err(located(
                    line,
                    Some(format!("groups.{name}")),
                    "an empty group tells nobody".into(),
                ));
            }
            for (i, member) in members.iter().enumerate() {
                if !crate::values::sendable_address(member) {
                    return Err(located(
                        line,
                        Some(format!("groups.{name}[{i}]")),
                        format!("{member:?} is not an email address"),
                    ));
                }
            }
        }

        let mut microsoft = BTreeMap::new();
        for (name, app) in file.microsoft {
            let line = line_of(text, app.span().start);
            let app = app.into_inner();
            if let Some(problem) = app.problem() {
                return Err(located(
                    Some(line),
                    Some(format!("microsoft.{name}")),
                    problem,
                ));
            }
            microsoft.insert(name, app);
        }

        if let Some(app) = file.dashboard.as_ref().and_then(|d| d.app.as_ref())
            && !microsoft.contains_key(app)
        {
            return Err(located(
                key_line(text, "dashboard", "app"),
                Some("dashboard.app".into()),
                format!("no [microsoft.{app}] table"),
            ));
        }
        let mut channels = BTreeMap::new();
        let mut channel_lines = BTreeMap::new();
        let mut key_lines = BTreeMap::new();
        for (name, channel) in file.channel {
            let line = line_of(text, channel.span().start);
            if let Some(at) = key_line_from(text, channel.span().start, "template") {
                key_lines.insert(format!("channel.{name}.template"), at);
            }
            let channel = channel.into_inner();
            if let Some(from) = channel.from()
                && from.parse::<lettre::message::Mailbox>().is_err()
            {
                return Err(located(
                    Some(line),
                    Some(format!("channel.{name}.from")),
                    format!("{from:?} is not a mailbox (\"Name <address>\" or an address)"),
                ));
            }
            if let ChannelConfig::GraphMail(mail) = &channel
                && !microsoft.contains_key(&mail.app)
            {
                return Err(located(
                    Some(line),
                    Some(format!("channel.{name}.app")),
                    format!("no [microsoft.{}] table", mail.app),
                ));
            }
            if let ChannelConfig::Smtp(smtp) = &channel
                && let Some((key, problem)) = smtp.problem()
            {
                return Err(located(
                    Some(line),
                    Some(format!("channel.{name}.{key}")),
                    problem,
                ));
            }
            channel_lines.insert(name.clone(), line);
            channels.insert(name, channel);
        }

        if let SecretSource::Inline(url) = &file.store.url
            && let Err(e) = crate::store::Engine::of(url, Path::new("."))
        {
            return Err(located(
                key_line(text, "store", "url"),
                Some("store.url".into()),
                e,
            ));
        }
        if file.delivery.lease < std::time::Duration::from_secs(1) {
            return Err(located(
                key_line(text, "delivery", "lease"),
                Some("delivery.lease".into()),
                "must be at least 1s (sends begin only in its first half)".to_owned(),
            ));
        }
        if file.delivery.poll < std::time::Duration::from_millis(10) {
            return Err(located(
                key_line(text, "delivery", "poll"),
                Some("delivery.poll".into()),
                "must be at least 10ms (commits wake the dispatcher; the poll is only its safety net)".to_owned(),
            ));
        }
        // A send must end well inside its claim even if renewals cannot reach the store: it
        // begins in the lease's first half and is bounded by its channel's timeout.
        let lease = file.delivery.lease;
        for (name, channel) in &channels {
            if let Some(timeout) = channel.timeout()
                && lease < timeout.saturating_mul(3)
            {
                let table = format!("channel.{name}");
                return Err(located(
                    key_line(text, &table, "timeout")
                        .or_else(|| key_line(text, "delivery", "lease"))
                        .or(channel_lines.get(name).copied()),
                    Some(format!("{table}.timeout")),
                    format!(
                        "delivery.lease ({}) must be at least 3 times this channel's timeout ({}), so that a send ends well inside its claim: raise the lease to {} or lower the timeout",
                        shown_duration(lease),
                        shown_duration(timeout),
                        shown_duration(timeout.saturating_mul(3))
                    ),
                ));
            }
        }
        if let Some((key, problem)) = file.store.retention.problem() {
            return Err(located(
                key_line(text, "store.retention", key),
                Some(format!("store.retention.{key}")),
                problem,
            ));
        }
        // A report link reads its notice's outbox row and its report: both must outlive it, or
        // a link would show "not found", or decide again once its report was pruned.
        if let Some(web) = &file.web {
            let retention = &file.store.retention;
            for (key, kept) in [("sent", retention.sent), ("reports", retention.reports)] {
                if kept < web.link_lifetime {
                    return Err(located(
                        key_line(text, "web", "link_lifetime"),
                        Some("web.link_lifetime".into()),
                        format!(
                            "is longer than store.retention.{key} ({} > {}): a link must not outlive the {} it reads",
                            shown_duration(web.link_lifetime),
                            shown_duration(kept),
                            if key == "sent" { "notice" } else { "report" }
                        ),
                    ));
                }
            }
        }
        if file.store.pool_size == Some(0) {
            return Err(located(
                key_line(text, "store", "pool_size"),
                Some("store.pool_size".into()),
                "must be at least 1".to_owned(),
            ));
        }

        let mut sources = Vec::new();
        let mut source_lines = Vec::new();
        let mut source_warnings = Vec::new();
        for (i, spanned) in file.source.into_iter().enumerate() {
            let line = line_of(text, spanned.span().start);
            let source = spanned.into_inner();
            if let SourceConfig::Graph(graph) = &source
                && !microsoft.contains_key(&graph.app)
            {
                return Err(located(
                    Some(line),
                    Some(format!("source[{i}].app")),
                    format!("no [microsoft.{}] table", graph.app),
                ));
            }
            if let SourceConfig::Graph(graph) = &source
                && !crate::source::graph::is_tenant_id(&microsoft[&graph.app].tenant_id)
            {
                return Err(located(
                    Some(line),
                    Some(format!("source[{i}].app")),
                    format!(
                        "microsoft.{}.tenant_id must be the tenant's id (its Directory ID, a GUID) for a Graph source: records read from Graph are keyed by it, as the same records from Event Hubs are",
                        graph.app
                    ),
                ));
            }
            if let SourceConfig::Http(http) = &source
                && let (crate::source::http::Auth::Bearer, None) = (http.auth, &http.token)
            {
                return Err(located(
                    Some(line),
                    Some(format!("source[{i}].token")),
                    "required: token = { env = \"HERALD_INGEST_TOKEN\" } (or write auth = \"none\" to accept anyone)".into(),
                ));
            }
            if let SourceConfig::Http(http) = &source
                && let Some((key, message)) = http.problem(path.parent().unwrap_or(Path::new("")))
            {
                let key = format!("source[{i}] {:?}: {key}", http.name);
                return Err(located(Some(line), Some(key), message));
            }
            if let SourceConfig::Http(http) = &source
                && let Some((key, message)) = http.warning()
            {
                let key = format!("source[{i}] {:?}: {key}", http.name);
                source_warnings.push(ConfigWarning(located(Some(line), Some(key), message)));
            }
            if let SourceConfig::File(file) = &source
                && let Some((key, message)) = file.problem(path.parent().unwrap_or(Path::new("")))
            {
                let key = format!("source[{i}] {:?}: {key}", file.name);
                return Err(located(Some(line), Some(key), message));
            }
            if sources
                .iter()
                .any(|s: &SourceConfig| s.name() == source.name())
            {
                return Err(located(
                    Some(line),
                    Some(format!("source[{i}].name")),
                    format!("{:?} is already the name of another source", source.name()),
                ));
            }
            sources.push(source);
            source_lines.push(line);
        }

        let known = Known {
            groups: &|g| file.groups.contains_key(g),
            channels: &|c| channels.contains_key(c),
        };
        let mut rules = Vec::new();
        let mut rule_lines = Vec::new();
        let mut warnings = source_warnings;
        for (i, spanned) in file.rule.iter().enumerate() {
            let line = line_of(text, spanned.span().start);
            let config = spanned.get_ref();
            let rule = config.compile(&known).map_err(|e| {
                let field = e.key.split(['[', '.']).next().unwrap_or_default();
                located(
                    key_line_from(text, spanned.span().start, field).or(Some(line)),
                    Some(format!("rule[{i}] {:?}: {}", config.name, e.key)),
                    e.message,
                )
            })?;
            if rules
                .iter()
                .any(|r: &crate::rules::Rule| r.name == rule.name)
            {
                return Err(located(
                    Some(line),
                    Some(format!("rule[{i}].name")),
                    format!("{:?} is already the name of another rule", rule.name),
                ));
            }
            for activity in &config.activities {
                if crate::rules::activities::is_known(activity) {
                    continue;
                }
                let hint = match crate::rules::activities::nearest(activity) {
                    Some(near) => format!(" — did you mean {near:?}?"),
                    None => String::new(),
                };
                warnings.push(ConfigWarning(located(
                    key_line_from(text, spanned.span().start, "activities").or(Some(line)),
                    Some(format!("rule[{i}] {:?}: activities", config.name)),
                    format!("{activity:?} is not an Entra activity Herald knows{hint}"),
                )));
            }
            for key in ["template", "subject"] {
                if let Some(at) = key_line_from(text, spanned.span().start, key) {
                    key_lines.insert(format!("rule[{i}].{key}"), at);
                }
            }
            rules.push(rule);
            rule_lines.push(line);
        }
        // `[report]`: known groups and addresses, on channels that send mail.
        let report = &file.report;
        let report_error = |key: &str, m: String| {
            located(
                key_line(text, "report", key),
                Some(format!("report.{key}")),
                m,
            )
        };
        for spec in &report.notify {
            match spec.strip_prefix("group:") {
                Some(group) if !file.groups.contains_key(group) => {
                    return Err(report_error(
                        "notify",
                        format!("no group {group:?} in [groups]"),
                    ));
                }
                Some(_) => {}
                None if !crate::values::sendable_address(spec) => {
                    return Err(report_error(
                        "notify",
                        format!("{spec:?} is neither an email address nor \"group:NAME\""),
                    ));
                }
                None => {}
            }
        }
        if !report.notify.is_empty() && file.web.is_none() {
            warnings.push(ConfigWarning(located(
                key_line(text, "report", "notify"),
                Some("report.notify".to_owned()),
                "no [web]: notices carry no report link, so nobody can answer and nothing is told"
                    .to_owned(),
            )));
        }
        if !report.notify.is_empty() {
            for name in &report.channels {
                if !channels.contains_key(name) {
                    return Err(report_error("channels", format!("no channel {name:?}")));
                }
            }
        }
        // Response actions: through a known app registration, on the internal channel
        // `graph_action`, which no `[channel.NAME]` may take.
        use crate::channel::graph_action;
        if let Some(line) = channel_lines.get(graph_action::CHANNEL) {
            return Err(located(
                Some(*line),
                Some(format!("channel.{}", graph_action::CHANNEL)),
                "this name is Herald's own, for the response actions of [report] actions: name the channel otherwise".to_owned(),
            ));
        }
        let acting = !report.actions.is_empty()
            || rules
                .iter()
                .any(|r| r.report_actions.as_ref().is_some_and(|a| !a.is_empty()));
        match (&report.app, acting) {
            (Some(app), _) if !microsoft.contains_key(app) => {
                return Err(report_error("app", format!("no [microsoft.{app}] table")));
            }
            (None, true) => {
                return Err(located(
                    key_line(text, "report", "actions"),
                    Some("report.app".to_owned()),
                    "response actions need the [microsoft.NAME] app they are performed with: set [report] app".to_owned(),
                ));
            }
            (Some(app), true) => {
                if file.web.is_none() {
                    warnings.push(ConfigWarning(located(
                        key_line(text, "report", "actions"),
                        Some("report.actions".to_owned()),
                        "no [web]: notices carry no report link, so no answer sets off an action"
                            .to_owned(),
                    )));
                }
                let mut action = crate::channel::GraphActionConfig::new(app);
                // A call ends well inside its claim, as for every channel (§7).
                action.timeout = action.timeout.min(file.delivery.lease / 3);
                channels.insert(
                    graph_action::CHANNEL.to_owned(),
                    ChannelConfig::GraphAction(action),
                );
            }
            (_, false) => {}
        }
        // Storm control: what it names must exist.
        let recipients_error = |table: &str, key: &str, spec: &str| -> Option<String> {
            let _ = (table, key);
            match spec.strip_prefix("group:") {
                Some(group) if !file.groups.contains_key(group) => {
                    Some(format!("no group {group:?} in [groups]"))
                }
                Some(_) => None,
                None if !crate::values::sendable_address(spec) => Some(format!(
                    "{spec:?} is neither an email address nor \"group:NAME\""
                )),
                None => None,
            }
        };
        let throttles = match &file.throttle {
            Some(list) => list.clone(),
            None => vec![crate::storm::ThrottleConfig::default_for(
                channels
                    .iter()
                    .filter(|(_, c)| matches!(c.format(), Format::Email | Format::GraphMessage))
                    .map(|(n, _)| n.clone())
                    .collect(),
            )],
        };
        for (i, t) in file.throttle.iter().flatten().enumerate() {
            let at = |key: &str, m: String| {
                located(
                    array_key_line(text, "throttle", i, key),
                    Some(format!("throttle[{i}].{key}")),
                    m,
                )
            };
            if t.limit == 0 {
                return Err(at(
                    "limit",
                    "at least 1: a throttle of 0 would hold every notice until its window ends"
                        .to_owned(),
                ));
            }
            if t.window.is_zero() {
                return Err(at("window", "a window must last".to_owned()));
            }
            if let Some(r) = t
                .rules
                .iter()
                .find(|r| !rules.iter().any(|rule| rule.name == **r))
            {
                return Err(at("rules", format!("no rule {r:?}")));
            }
            if let Some(c) = t.channels.iter().find(|c| !channels.contains_key(*c)) {
                return Err(at("channels", format!("no channel {c:?}")));
            }
        }
        for (table, notify, used) in [
            (
                "bulk",
                file.bulk.as_ref().map(|b| (&b.notify, &b.channels)),
                file.bulk.is_some(),
            ),
            (
                "silences",
                Some((&file.silences.notify, &file.silences.channels)),
                !file.silences.notify.is_empty(),
            ),
        ] {
            let Some((notify, table_channels)) = notify else {
                continue;
            };
            let at = |key: &str, m: String| {
                located(
                    key_line(text, table, key),
                    Some(format!("{table}.{key}")),
                    m,
                )
            };
            if table == "bulk" && notify.is_empty() {
                return Err(at(
                    "notify",
                    "name who hears of bulk changes (addresses or \"group:NAME\")".to_owned(),
                ));
            }
            for spec in notify {
                if let Some(m) = recipients_error(table, "notify", spec) {
                    return Err(at("notify", m));
                }
            }
            if used {
                for name in table_channels {
                    if !channels.contains_key(name) {
                        return Err(at("channels", format!("no channel {name:?}")));
                    }
                }
            }
        }
        let rule_names: Vec<(&str, bool)> = rules
            .iter()
            .map(|r| (r.name.as_str(), r.silenceable))
            .collect();
        let mut configured_silences = Vec::new();
        for (i, silence) in file.silence.iter().enumerate() {
            let c = silence.check(&rule_names).map_err(|(key, m)| {
                located(
                    array_key_line(text, "silence", i, key),
                    Some(format!("silence[{i}].{key}")),
                    m,
                )
            })?;
            configured_silences.push(c);
        }
        if let Some(bulk) = &file.bulk
            && (bulk.accounts == 0 || bulk.window.is_zero())
        {
            return Err(located(
                key_line(text, "bulk", "accounts"),
                Some("bulk.accounts".to_owned()),
                "a bulk change is more than `accounts` (at least 1) accounts within a `window` that lasts".to_owned(),
            ));
        }
        for (name, line) in &channel_lines {
            let reports_use_it = !report.notify.is_empty() && report.channels.contains(name);
            if !rules.iter().any(|r| r.channels.contains(name)) && !reports_use_it {
                warnings.push(ConfigWarning(located(
                    Some(*line),
                    Some(format!("channel.{name}")),
                    "no rule uses this channel".to_owned(),
                )));
            }
        }

        Ok(Config {
            path: path.to_owned(),
            store: file.store,
            sources,
            delivery: file.delivery,
            admin: file.admin,
            web: file.web,
            dashboard: file.dashboard,
            shown: masked(text),
            report: file.report,
            throttles,
            bulk: file.bulk,
            silences: file.silences,
            configured_silences,
            branding,
            groups: file.groups,
            channels,
            microsoft,
            rules: RuleSet::new(rules),
            rule_lines,
            channel_lines,
            source_lines,
            key_lines,
            store_url_line: key_line(text, "store", "url"),
            warnings,
        })
    }

    /// Refuses a configuration that could not do anything: no source, no rule or no channel.
    pub fn require(&self, needs: Needs) -> Result<(), ConfigError> {
        let missing = |what: &str, example: &str| ConfigError {
            path: self.path.clone(),
            line: None,
            key: None,
            message: format!("no {what}: nothing would be {example} (see `herald init`)"),
        };
        if needs == Needs::Everything && self.sources.is_empty() {
            return Err(missing("[[source]]", "read"));
        }
        if self.rules.rules().is_empty() {
            return Err(missing("[[rule]]", "selected"));
        }
        if self.channels.is_empty() {
            return Err(missing("[channel.NAME]", "sent"));
        }
        Ok(())
    }

    /// Every secret reference, with where it is written: `(line, key, source)`.
    pub fn secrets(&self) -> Vec<(Option<usize>, String, &SecretSource)> {
        let mut out = vec![(self.store_url_line, "store.url".to_owned(), &self.store.url)];
        for (name, app) in &self.microsoft {
            if let Some(secret) = &app.client_secret {
                out.push((None, format!("microsoft.{name}.client_secret"), secret));
            }
        }
        if let Some(key) = self.dashboard.as_ref().and_then(|d| d.session_key.as_ref()) {
            out.push((None, "dashboard.session_key".to_owned(), key));
        }
        if let Some(web) = &self.web {
            for (i, k) in web.link_keys.iter().enumerate() {
                out.push((None, format!("web.link_keys[{i}] {:?}", k.id), &k.secret));
            }
        }
        for (name, channel) in &self.channels {
            let line = self.channel_lines.get(name).copied();
            let key = |k: &str| format!("channel.{name}.{k}");
            match channel {
                ChannelConfig::Smtp(c) => {
                    if let Some(p) = &c.password {
                        out.push((line, key("password"), p));
                    }
                }
                ChannelConfig::Webhook(c) => {
                    out.push((line, key("url"), &c.url));
                    if let Some(s) = &c.secret {
                        out.push((line, key("secret"), s));
                    }
                    for (header, value) in &c.headers {
                        out.push((line, key(&format!("headers.{header}")), value));
                    }
                }
                ChannelConfig::Teams(c) | ChannelConfig::Slack(c) => {
                    out.push((line, key("url"), &c.url));
                }
                ChannelConfig::File(_)
                | ChannelConfig::GraphMail(_)
                | ChannelConfig::GraphAction(_) => {}
            }
        }
        for (i, source) in self.sources.iter().enumerate() {
            let line = self.source_lines.get(i).copied();
            let key = |k: &str| format!("source[{i}].{k}");
            match source {
                SourceConfig::Http(c) => {
                    if let Some(t) = &c.token {
                        out.push((line, key("token"), t));
                    }
                }
                SourceConfig::Kafka(c) => {
                    if let Some(s) = &c.event_hubs_connection_string {
                        out.push((line, key("event_hubs_connection_string"), s));
                    }
                    if let Some(p) = &c.password {
                        out.push((line, key("password"), p));
                    }
                }
                SourceConfig::File(_) | SourceConfig::Graph(_) => {}
            }
        }
        out
    }

    /// Resolves every secret reference (never keeping or showing the value); one error for
    /// each environment variable not set or file not readable.
    pub fn check_secrets(&self) -> Vec<ConfigError> {
        self.secrets()
            .into_iter()
            .filter_map(|(line, key, source)| {
                source.resolve(self.dir()).err().map(|message| ConfigError {
                    path: self.path.clone(),
                    line,
                    key: Some(key),
                    message,
                })
            })
            .collect()
    }

    /// Where relative paths in the configuration (templates) are resolved from.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// An error found after loading, located at rule `index`'s key (or its table).
    pub fn error_at_rule(&self, index: usize, key: &str, message: String) -> ConfigError {
        let name = &self.rules.rules()[index].name;
        let line = self.key_lines.get(&format!("rule[{index}].{key}"));
        ConfigError {
            path: self.path.clone(),
            line: line.or(self.rule_lines.get(index)).copied(),
            key: Some(format!("rule[{index}] {name:?}: {key}")),
            message,
        }
    }

    /// An error found after loading, located at channel `name`'s key (or its table).
    pub fn error_at_channel(&self, name: &str, key: &str, message: String) -> ConfigError {
        let line = self.key_lines.get(&format!("channel.{name}.{key}"));
        ConfigError {
            path: self.path.clone(),
            line: line.or(self.channel_lines.get(name)).copied(),
            key: Some(format!("channel.{name}.{key}")),
            message,
        }
    }
}

fn check_branding(b: &Branding) -> Result<(), (&'static str, String)> {
    for (key, url) in [
        ("logo_url", &b.logo_url),
        ("website", &b.website),
        ("support_url", &b.support_url),
        ("report_url", &b.report_url),
    ] {
        if let Some(url) = url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err((key, format!("{url:?} must be an http:// or https:// URL")));
        }
    }
    for (key, address) in [
        ("support_email", &b.support_email),
        ("report_email", &b.report_email),
    ] {
        if let Some(address) = address
            && !crate::values::sendable_address(address)
        {
            return Err((key, format!("{address:?} is not an email address")));
        }
    }
    if jiff::tz::TimeZone::get(&b.timezone).is_err() {
        return Err((
            "timezone",
            format!(
                "{:?} is not a known time zone (use an IANA name such as \"Europe/Berlin\")",
                b.timezone
            ),
        ));
    }
    Ok(())
}

/// `text` with every inline value of a key that may hold a secret (`password`, `secret`,
/// `token`, `url` — a store URL carries its password, a webhook URL is its own credential —,
/// `sha256`, a header's value, a key) shown as `***`. References (`{ env = … }`,
/// `{ file = … }`) stay: they name where a secret is, not the secret. Text that does not
/// parse shows nothing.
fn masked(text: &str) -> String {
    fn secret_key(key: &str) -> bool {
        let key = key.to_ascii_lowercase();
        key != "public_url"
            && [
                "password",
                "secret",
                "token",
                "url",
                "sha256",
                "key",
                "connection_string",
            ]
            .iter()
            .any(|k| key.ends_with(k))
    }
    fn walk(value: &mut toml::Value, secret: bool) {
        match value {
            toml::Value::String(s) if secret => *s = "***".to_owned(),
            toml::Value::Table(table) => {
                let reference =
                    table.len() == 1 && (table.contains_key("env") || table.contains_key("file"));
                for (key, v) in table.iter_mut() {
                    // Pass-through settings (a Kafka source's `options`: keys, passwords,
                    // OAuth settings) and headers are credentials as often as not: all hidden.
                    let inner = !reference
                        && (secret || secret_key(key) || key == "options" || key == "headers");
                    walk(v, inner);
                }
            }
            toml::Value::Array(items) => items.iter_mut().for_each(|v| walk(v, secret)),
            _ => {}
        }
    }
    let Ok(mut table) = text.parse::<toml::Table>() else {
        return String::new();
    };
    for (key, value) in table.iter_mut() {
        // Every value of `headers` is a credential as often as not.
        walk(value, secret_key(key) || key == "headers");
    }
    // `headers` tables inside channels.
    if let Some(toml::Value::Table(channels)) = table.get_mut("channel") {
        for (_, channel) in channels.iter_mut() {
            if let Some(headers) = channel.get_mut("headers") {
                walk(headers, true);
            }
        }
    }
    toml::to_string(&table).unwrap_or_default()
}

/// A duration as a configuration would write it (`90s`, `1500ms`, `10m`, `2h`, `7d`).
pub fn shown_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    match d.subsec_millis() {
        0 if secs > 0 && secs.is_multiple_of(86_400) => format!("{}d", secs / 86_400),
        0 if secs > 0 && secs.is_multiple_of(3_600) => format!("{}h", secs / 3_600),
        0 if secs >= 120 && secs.is_multiple_of(60) => format!("{}m", secs / 60),
        0 => format!("{secs}s"),
        _ => format!("{}ms", d.as_millis()),
    }
}

/// The line on which `key` is set in `[table]`, for errors found after parsing.
fn key_line(text: &str, table: &str, key: &str) -> Option<usize> {
    let mut current = "";
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            current = line.trim_matches(|c| c == '[' || c == ']').trim();
        } else if current == table
            && let Some(rest) = line
                .strip_prefix(key)
                .or_else(|| line.strip_prefix(&format!("\"{key}\"")))
            && rest.trim_start().starts_with('=')
        {
            return Some(i + 1);
        }
    }
    None
}

/// The line on which `key` is set in the `index`th `[[table]]` (or its header's, without the
/// key).
fn array_key_line(text: &str, table: &str, index: usize, key: &str) -> Option<usize> {
    let header = format!("[[{table}]]");
    let start = text
        .match_indices(&header)
        .filter(|(at, _)| *at == 0 || text[..*at].ends_with('\n'))
        .nth(index)?
        .0;
    key_line_from(text, start, key).or(Some(line_of(text, start)))
}

/// The line on which `key` is set in the table that begins at byte `start` (its header line is
/// skipped), for errors inside an array-of-tables entry.
fn key_line_from(text: &str, start: usize, key: &str) -> Option<usize> {
    let first = line_of(text, start);
    for (i, line) in text.lines().enumerate().skip(first - 1) {
        let line = line.trim();
        if line.starts_with('[') && i + 1 > first {
            return None;
        }
        if let Some(rest) = line.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            return Some(i + 1);
        }
    }
    None
}

/// The key path of the value at byte `offset`, from the text: the table header above it and
/// the key on its line (`rule[0].results`, `delivery.lease`), so that an error toml reports at
/// a value (a wrong type) names the key.
fn key_path(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or_default().trim();
    if line.starts_with('[') {
        return None;
    }
    let key = line.split_once('=')?.0.trim().trim_matches('"');
    let mut table: Option<String> = None;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for header in text[..line_start].lines().map(str::trim) {
        if let Some(name) = header.strip_prefix("[[").and_then(|h| h.split("]]").next()) {
            let name = name.trim().to_owned();
            let n = counts.entry(name.clone()).or_insert(0);
            table = Some(format!("{name}[{n}]"));
            *n += 1;
        } else if let Some(name) = header.strip_prefix('[').and_then(|h| h.split(']').next()) {
            table = Some(name.trim().to_owned());
        }
    }
    Some(match table {
        Some(table) => format!("{table}.{key}"),
        None => key.to_owned(),
    })
}

/// serde's `invalid type: string "x", expected a sequence` in the words of a TOML file.
fn plain_message(message: &str) -> String {
    let Some((found, expected)) = message
        .strip_prefix("invalid type: ")
        .and_then(|m| m.split_once(", expected "))
    else {
        return message.to_owned();
    };
    let expected = match expected {
        "a sequence" => "a list",
        "a map" => "a table",
        other => other,
    };
    format!("expected {expected}, found {found}")
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[channel.email]
kind = "file"
from = "Security <security@contoso.com>"
dir = "mail"

[groups]
soc = ["soc@contoso.com"]
"#;

    fn parse(extra: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("herald.toml"), &format!("{BASE}{extra}"))
    }

    #[test]
    fn storm_control_is_checked_and_every_matcher_located() {
        let rules = "[[rule]]\nname = \"tap\"\nrecipients = [\"target\"]\n\n[[rule]]\nname = \"admin\"\nrecipients = [\"target\"]\nsilenceable = false\n";
        let config = parse(rules).unwrap();
        // No [[throttle]]: the default one, on the mail channels.
        assert_eq!(config.throttles.len(), 1);
        assert_eq!(config.throttles[0].limit, 10);
        // A top-level key: before any table.
        let off = Config::parse(
            Path::new("herald.toml"),
            &format!("throttle = []\n{BASE}{rules}"),
        );
        assert!(off.unwrap().throttles.is_empty());
        let silence = |table: &str| {
            parse(&format!("{rules}\n[[silence]]\n{table}\n"))
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        let err = silence("match = [\"initiator.ap=x\"]\ncomment = \"x\"");
        assert!(
            err.contains("silence[0].match") && err.contains("unknown field \"initiator.ap\""),
            "{err}"
        );
        assert!(err.starts_with("herald.toml:19:"), "{err}");
        let err = silence("match = [\"rule=admin\"]\ncomment = \"x\"");
        assert!(err.contains("silenceable = false (admin)"), "{err}");
        let err =
            silence("match = [\"rule=tap\"]\nweekly = \"sat 25:00-02:00 UTC\"\ncomment = \"x\"");
        assert!(err.contains("silence[0].weekly"), "{err}");
        let err = silence("match = [\"rule=tap\"]\ncomment = \" \"");
        assert!(err.contains("silence[0].comment"), "{err}");
        let ok = parse(&format!("{rules}\n[[silence]]\nmatch = [\"rule=tap\", \"ip=10.0.0.0/8\"]\nweekly = \"sat,sun 22:00-04:00 Europe/Berlin\"\ncomment = \"maintenance\"\n")).unwrap();
        assert_eq!(
            ok.configured_silences[0].matchers,
            "rule=\"tap\", ip=\"10.0.0.0/8\""
        );
        let err = parse(&format!(
            "{rules}\n[[throttle]]\nlimit = 0\nwindow = \"10m\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("throttle[0].limit"), "{err}");
        let err = parse(&format!(
            "{rules}\n[[throttle]]\nlimit = 5\nwindow = \"10m\"\nrules = [\"nope\"]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("throttle[0].rules") && err.contains("no rule \"nope\""),
            "{err}"
        );
        let err = parse(&format!("{rules}\n[bulk]\nnotify = [\"group:nope\"]\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bulk.notify"), "{err}");
        let err = parse(&format!(
            "{rules}\n[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\nrepeat = \"sometimes\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("or \"never\""), "{err}");
    }

    #[test]
    fn a_valid_rule_loads() {
        let config =
            parse("[[rule]]\nname = \"r\"\nrecipients = [\"target\", \"group:soc\"]\n").unwrap();
        assert_eq!(config.rules.rules().len(), 1);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = parse("[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\nrecipient = []\n")
            .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("herald.toml:12"), "{text}");
        assert!(text.contains("unknown field `recipient`"), "{text}");
    }

    #[test]
    fn response_actions_need_a_known_app_and_take_a_channel_of_their_own() {
        let rule = "[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\n";
        let app = "[microsoft.contoso]\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = { env = \"S\" }\n";
        let err = parse(&format!(
            "{rule}[report]\nactions = [\"revoke_sessions\"]\n"
        ))
        .unwrap_err();
        assert_eq!(err.key.as_deref(), Some("report.app"), "{err}");
        assert!(err.message.contains("set [report] app"), "{err}");
        let err = parse(&format!(
            "{rule}[report]\napp = \"fabrikam\"\nactions = [\"revoke_sessions\"]\n{app}"
        ))
        .unwrap_err();
        assert_eq!(err.key.as_deref(), Some("report.app"), "{err}");
        // A rule's own actions need the app too.
        let err = parse(&format!("{rule}report_actions = [\"disable_account\"]\n")).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("report.app"), "{err}");
        let err = parse(&format!("{rule}[report]\nactions = [\"reboot\"]\n")).unwrap_err();
        assert!(err.message.contains("unknown variant `reboot`"), "{err}");
        // Configured, they get the `graph_action` channel, which no table may take.
        let config = parse(&format!(
            "{rule}[report]\napp = \"contoso\"\nactions = [\"revoke_sessions\"]\n{app}"
        ))
        .unwrap();
        assert!(matches!(
            config.channels.get("graph_action"),
            Some(ChannelConfig::GraphAction(c)) if c.app == "contoso"
        ));
        let err = parse(&format!(
            "{rule}[channel.graph_action]\nkind = \"file\"\nfrom = \"a@contoso.com\"\ndir = \"d\"\n"
        ))
        .unwrap_err();
        assert_eq!(err.key.as_deref(), Some("channel.graph_action"), "{err}");
        // Nobody writes the kind themselves, and no rule sends notices on it.
        let err = parse(&format!("{rule}[channel.x]\nkind = \"graph_action\"\n")).unwrap_err();
        assert!(err.message.contains("unknown variant"), "{err}");
        let err = parse(&format!(
            "[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\nchannels = [\"graph_action\"]\n[report]\napp = \"contoso\"\nactions = [\"revoke_sessions\"]\n{app}"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("graph_action"), "{err}");
    }

    #[test]
    fn a_report_link_may_not_outlive_its_notice_or_its_report() {
        let rule = "[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\n";
        let web = "[web]\nlisten = \"127.0.0.1:8080\"\npublic_url = \"https://herald.contoso.com\"\nlink_keys = [{ id = \"k\", secret = { env = \"K\" } }]\nlink_lifetime = \"30d\"\n";
        parse(&format!("{rule}{web}")).unwrap();
        for (key, what) in [("sent", "notice"), ("reports", "report")] {
            let err =
                parse(&format!("{rule}{web}[store.retention]\n{key} = \"20d\"\n")).unwrap_err();
            assert_eq!(err.key.as_deref(), Some("web.link_lifetime"), "{err}");
            assert!(
                err.message
                    .contains(&format!("store.retention.{key} (30d > 20d)"))
                    && err.message.ends_with(&format!("the {what} it reads")),
                "{err}"
            );
        }
    }

    #[test]
    fn the_configuration_shown_keeps_no_inline_secret() {
        let config = parse(
            r#"[store]
url = "postgres://herald:hunter2@db/herald"
[channel.hook]
kind = "webhook"
url = "https://hooks.contoso.com/T0/abc"
secret = { env = "HOOK_SECRET" }
headers = { "X-Api-Key" = "k-12345" }
[[source]]
kind = "kafka"
name = "hub"
brokers = "ns.servicebus.windows.net:9093"
topic = "audit"
options = { "ssl.key.pem" = "-----BEGIN PRIVATE KEY-----abc" }
[[rule]]
name = "r"
recipients = ["target"]
channels = ["hook"]
"#,
        )
        .unwrap();
        for secret in ["hunter2", "abc", "k-12345", "BEGIN PRIVATE KEY"] {
            assert!(!config.shown.contains(secret), "{}", config.shown);
        }
        assert!(config.shown.contains("HOOK_SECRET"), "{}", config.shown);
        assert!(
            config.shown.contains("security@contoso.com"),
            "{}",
            config.shown
        );
    }

    #[test]
    fn the_soc_hears_of_reports_on_any_channel_it_has() {
        let rule = "[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\n";
        let teams =
            "[channel.soc]\nkind = \"teams\"\nurl = \"https://contoso.webhook.office.com/x\"\n";
        parse(&format!(
            "{rule}{teams}[report]\nnotify = [\"group:soc\"]\nchannels = [\"email\", \"soc\"]\n"
        ))
        .unwrap();
        let err = parse(&format!(
            "{rule}[report]\nnotify = [\"group:soc\"]\nchannels = [\"pager\"]\n"
        ))
        .unwrap_err();
        assert_eq!(err.key.as_deref(), Some("report.channels"), "{err}");
    }

    #[test]
    fn a_lease_shorter_than_three_timeouts_names_the_channel() {
        let rule = "[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\n";
        let relay = "[channel.relay]\nkind = \"webhook\"\nurl = \"https://hooks.contoso.com/h\"\ntimeout = \"40s\"\n";
        let err = parse(&format!("{rule}{relay}")).unwrap_err().to_string();
        assert!(
            err.starts_with("herald.toml:15: channel.relay.timeout: delivery.lease (90s) must be at least 3 times this channel's timeout (40s)"),
            "{err}"
        );
        assert!(err.contains("raise the lease to 2m"), "{err}");
        // The default timeouts fit the default lease; a longer lease fits a longer timeout.
        parse(&format!("{rule}{relay}[delivery]\nlease = \"2m\"\n")).unwrap();
        let relay = relay.replace("timeout = \"40s\"\n", "");
        parse(&format!("{rule}{relay}")).unwrap();
    }

    #[test]
    fn an_outbox_kept_shorter_than_events_may_be_redelivered_is_refused() {
        let rule = "[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\n";
        let err = parse(&format!(
            "{rule}[store.retention]\nevents_seen = \"30d\"\nsent = \"7d\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("herald.toml:14: store.retention.sent: is shorter than events_seen"),
            "{err}"
        );
        let config = parse(&format!("{rule}[store.retention]\nsent = \"30d\"\n")).unwrap();
        assert_eq!(
            config.store.retention.sent,
            std::time::Duration::from_secs(30 * 86_400)
        );
        assert_eq!(
            config.store.retention.failed,
            std::time::Duration::from_secs(180 * 86_400)
        );
    }

    #[test]
    fn store_url_and_lease_are_checked_without_showing_a_password() {
        let rule = "[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\n";
        let err = parse(&format!(
            "[store]\nurl = \"mysql://root:hunter2@db/h\"\n{rule}"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("herald.toml:10: store.url: "), "{err}");
        assert!(
            err.contains("\"mysql\"") && !err.contains("hunter2"),
            "{err}"
        );
        parse(&format!(
            "[store]\nurl = \"postgres://herald:hunter2@db/herald\"\npool_size = 16\n{rule}"
        ))
        .unwrap();
        parse(&format!(
            "[store]\nurl = {{ env = \"HERALD_STORE_URL\" }}\n{rule}"
        ))
        .unwrap();
        let err = parse(&format!("[delivery]\nlease = \"0s\"\n{rule}"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("herald.toml:10: delivery.lease: "), "{err}");
    }

    #[test]
    fn bad_recipient_names_the_rule_and_key_at_its_line() {
        let err = parse("\n[[rule]]\nname = \"r\"\nrecipients = [\"group:nope\"]\n").unwrap_err();
        assert_eq!(err.line, Some(12));
        assert_eq!(
            err.to_string(),
            "herald.toml:12: rule[0] \"r\": recipients[0]: no group \"nope\" in [groups]"
        );
    }

    #[test]
    fn a_wrong_type_names_the_key_at_its_line() {
        let err = parse("[[rule]]\nname = \"password-reset\"\nrecipients = [\"target\"]\nresults = \"success\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "herald.toml:12: rule[0].results: expected a list, found string \"success\""
            ),
            "{err}"
        );
        let err =
            parse("[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\n[delivery]\nlease = 5\n")
                .unwrap_err()
                .to_string();
        assert!(err.starts_with("herald.toml:13: delivery.lease: "), "{err}");
    }

    #[test]
    fn a_misspelled_secret_table_names_the_key() {
        let err = parse(
            "[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\n[store]\nurl = { evn = \"X\" }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("herald.toml:13: store.url: "), "{err}");
        assert!(err.contains("unknown key `evn`"), "{err}");
    }

    #[test]
    fn huge_durations_are_refused_at_load() {
        let err = parse("[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\n[delivery]\nlease = \"1000000000d\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("herald.toml:13: delivery.lease: "), "{err}");
        assert!(err.contains("too long"), "{err}");
    }

    #[test]
    fn unknown_activities_and_unused_channels_are_warnings() {
        let config = parse(
            "[[rule]]\nname = \"r\"\nactivities = [\"Reset user pasword\", \"Reset password\"]\nrecipients = [\"target\"]\n\n[channel.spare]\nkind = \"file\"\nfrom = \"a@b.c\"\ndir = \"x\"\n",
        )
        .unwrap();
        let warnings: Vec<String> = config.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            warnings,
            [
                "warning: herald.toml:11: rule[0] \"r\": activities: \"Reset user pasword\" is not an Entra activity Herald knows — did you mean \"Reset user password\"?",
                "warning: herald.toml:14: channel.spare: no rule uses this channel",
            ]
        );
        assert!(
            parse("[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\n")
                .unwrap()
                .warnings
                .is_empty()
        );
    }

    #[test]
    fn an_empty_configuration_is_refused_by_what_each_command_needs() {
        let empty = Config::parse(Path::new("e.toml"), "").unwrap();
        let err = empty
            .require(Needs::RulesAndChannels)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no [[rule]]"), "{err}");
        let no_source = parse("[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\n").unwrap();
        no_source.require(Needs::RulesAndChannels).unwrap();
        let err = no_source
            .require(Needs::Everything)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no [[source]]"), "{err}");
        let no_channel = Config::parse(
            Path::new("n.toml"),
            "[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\nchannels = []\n",
        );
        if let Ok(c) = no_channel {
            assert!(
                c.require(Needs::RulesAndChannels)
                    .unwrap_err()
                    .to_string()
                    .contains("no [channel.NAME]")
            );
        }
    }

    #[test]
    fn secrets_are_resolved_and_missing_ones_named() {
        let config = parse(
            "[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\n[store]\nurl = { env = \"HERALD_TEST_NO_SUCH_VARIABLE\" }\n",
        )
        .unwrap();
        let errors: Vec<String> = config
            .check_secrets()
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            errors,
            [
                "herald.toml:13: store.url: environment variable HERALD_TEST_NO_SUCH_VARIABLE is not set"
            ]
        );
    }

    #[test]
    fn duplicate_rule_names_are_refused() {
        let err = parse("[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\n[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\n").unwrap_err();
        assert!(err.to_string().contains("already the name"), "{err}");
    }

    #[test]
    fn branding_links_must_be_web_urls() {
        let err = parse("[branding]\nreport_url = \"javascript:alert(1)\"\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("branding.report_url"));
    }

    #[test]
    fn bad_group_members_are_located() {
        let err = Config::parse(
            Path::new("g.toml"),
            "[groups]\nteam = [\"not an address\"]\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "g.toml:2: groups.team[0]: \"not an address\" is not an email address"
        );
    }

    #[test]
    fn unknown_time_zone_is_refused() {
        let err = parse("[branding]\ntimezone = \"Mars/Olympus\"\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("branding.timezone"));
        assert_eq!(err.line, Some(10));
    }

    #[test]
    fn an_http_path_the_router_cannot_serve_is_refused() {
        for path in ["ingest", "/ingest/{id}", "/in gest", "/*all"] {
            let err = parse(&format!(
                "[[source]]\nkind = \"http\"\nname = \"h\"\nlisten = \"127.0.0.1:8080\"\nauth = \"none\"\npath = {path:?}\n\
                 [[rule]]\nname = \"r\"\nrecipients = [\"target\"]\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(err.contains("source[0] \"h\": path: "), "{path}: {err}");
        }
    }

    #[test]
    fn a_graph_source_needs_the_tenant_id_not_a_domain() {
        let with_tenant = |tenant: &str| {
            parse(&format!(
                "[microsoft.contoso]\ntenant_id = \"{tenant}\"\nclient_id = \"c\"\nclient_secret = {{ env = \"S\" }}\n\
                 [[source]]\nkind = \"graph\"\nname = \"g\"\napp = \"contoso\"\n\
                 [[rule]]\nname = \"r\"\nrecipients = [\"target\"]\n"
            ))
        };
        let err = with_tenant("contoso.onmicrosoft.com")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("source[0].app: microsoft.contoso.tenant_id must be the tenant's id"),
            "{err}"
        );
        with_tenant("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap();
    }

    #[test]
    fn channel_kind_must_be_known() {
        let err = Config::parse(
            Path::new("h.toml"),
            "[channel.x]\nkind = \"pigeon\"\nfrom = \"a@b.c\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("pigeon"), "{err}");
    }
}

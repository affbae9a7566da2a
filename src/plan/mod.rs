//! Planning: a rule match becomes notifications, one per (event, rule, channel, recipient),
//! each fully rendered and carrying its deterministic [`NotificationKey`].
//!
//! The planner owns the templates and the branding. It never decodes, stores or sends: it is
//! a pure function from a decoded event and a match to messages.

mod chat;
mod facts;
pub mod gallery;
mod key;
mod message;
mod payload;
mod recipients;
mod render;
mod report;
mod roles;
mod samples;
mod storm;
mod wording;

pub use key::NotificationKey;
pub use render::clean_subject;

use std::collections::BTreeMap;

use lettre::message::Mailbox;
use minijinja::value::Serde;
use minijinja::{Environment, Value, context};
use serde::Serialize;

pub use crate::channel::Format;
use crate::config::{Branding, Config, ConfigError};
use crate::event::{AuditEvent, ModifiedProperty};
use crate::rules::{Importance, Match};
use render::TemplateNames;

/// How a channel's notifications are rendered.
enum Delivery {
    Mail(Mailbox),
    GraphMessage,
    /// JSON for an HTTP channel (`webhook`, `teams`, `slack`): from the operator's template
    /// when the channel names one, else the built-in payload or card.
    Json {
        format: Format,
        template: Option<String>,
    },
}

/// One message to one recipient on one channel, ready to hand to the channel.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub key: NotificationKey,
    pub event_id: String,
    pub activity: String,
    pub rule: String,
    pub channel: String,
    pub recipient: String,
    pub subject: String,
    pub importance: Importance,
    #[serde(skip)]
    pub html: String,
    #[serde(skip)]
    pub text: String,
    pub format: Format,
    /// What the channel delivers: the full RFC 5322 message, or the JSON payload.
    #[serde(skip)]
    pub message: Vec<u8>,
    /// For a rule with `once_per_action`: the action (tenant and correlation id) this notice
    /// tells its recipient about, told once per recipient and channel.
    #[serde(skip)]
    pub action: Option<String>,
    /// For a notice with a report link: what it said ([`crate::report::NoticeSummary`], as
    /// JSON), kept in the outbox so the SOC's notice of a report, or the group or digest the
    /// notice may be held for, can repeat it.
    #[serde(skip)]
    pub summary: Option<String>,
    /// What the store decides its fate by: silences, repeats, groups, throttles
    /// (ARCHITECTURE.md §13). `None` for Herald's own notices, which are sent as they are.
    #[serde(skip)]
    pub controls: Option<crate::storm::Controls>,
}

/// A notification that could not be rendered; the match is kept so it is not silently lost.
#[derive(Debug, Clone, thiserror::Error)]
#[error("rule {rule:?}, event {event_id}, recipient {recipient}: {message}")]
pub struct PlanError {
    pub rule: String,
    pub event_id: String,
    pub recipient: String,
    pub message: String,
    /// The record, so the failure can be kept and replayed once the template is fixed.
    pub raw: Vec<u8>,
}

struct RuleTemplates {
    body: TemplateNames,
    subject: String,
}

/// Renders matches into notifications.
pub struct Planner {
    env: Environment<'static>,
    templates: BTreeMap<String, RuleTemplates>,
    deliveries: BTreeMap<String, Delivery>,
    groups: BTreeMap<String, Vec<String>>,
    branding: Branding,
    links: Option<ReportLinks>,
    report: crate::report::ReportConfig,
    /// The rules whose own `report_actions` take the place of `[report] actions`.
    rule_actions: BTreeMap<String, Vec<crate::channel::graph_action::Action>>,
    /// `[dashboard] public_url`: the SOC's notice of a report links to the event's page.
    dashboard_url: Option<String>,
    /// The rules, for the silences' check of what they may hold.
    rules: Vec<crate::rules::Rule>,
    throttles: Vec<crate::storm::ThrottleConfig>,
    bulk: Option<crate::storm::BulkConfig>,
    silences: crate::storm::SilencesConfig,
}

/// How notices to an account's owner get their report link (`[web]`).
struct ReportLinks {
    keys: crate::report::link::LinkKeys,
    public_url: String,
    lifetime: std::time::Duration,
}

impl ReportLinks {
    /// The signed link to the report page of the notice `key`, valid for `lifetime` from now.
    fn link(&self, key: &NotificationKey) -> Option<String> {
        let expires = jiff::Timestamp::now().as_second() + self.lifetime.as_secs() as i64;
        self.keys
            .sign(key.as_str(), expires)
            .map(|token| format!("{}/r/{token}", self.public_url))
    }
}

/// A minijinja environment with the notices' filters and globals (times in `timezone`), for
/// pages rendered like notices.
pub fn page_environment(timezone: &str) -> Environment<'static> {
    render::environment(timezone)
}

impl Planner {
    /// Loads every rule's templates; errors name the rule and the file.
    pub fn new(config: &Config) -> Result<Planner, ConfigError> {
        let mut env = render::environment(&config.branding.timezone);
        for (name, source) in [
            (
                "report-notice.html",
                include_str!("../../templates/report-notice.html"),
            ),
            (
                "report-notice.txt",
                include_str!("../../templates/report-notice.txt"),
            ),
            (
                "storm-notice.html",
                include_str!("../../templates/storm-notice.html"),
            ),
            (
                "storm-notice.txt",
                include_str!("../../templates/storm-notice.txt"),
            ),
        ] {
            env.add_template(name, source)
                .expect("built-in report notice compiles");
        }
        let mut templates = BTreeMap::new();
        for (i, rule) in config.rules.rules().iter().enumerate() {
            let body = render::load(&mut env, &rule.template, config.dir())
                .map_err(|m| config.error_at_rule(i, "template", m))?;
            let subject = render::load_subject(&mut env, &rule.name, rule.subject.as_deref())
                .map_err(|m| config.error_at_rule(i, "subject", m))?;
            templates.insert(rule.name.clone(), RuleTemplates { body, subject });
        }
        let mut deliveries = BTreeMap::new();
        for (name, c) in &config.channels {
            let template = match c.template() {
                Some(path) => Some(
                    render::load_json(&mut env, name, path, config.dir())
                        .map_err(|m| config.error_at_channel(name, "template", m))?,
                ),
                None => None,
            };
            let delivery = match c.format() {
                Format::Email => match c.from().and_then(|f| f.parse::<Mailbox>().ok()) {
                    Some(from) => Delivery::Mail(from),
                    None => continue,
                },
                Format::GraphMessage => Delivery::GraphMessage,
                format @ (Format::Json | Format::TeamsCard | Format::SlackMessage) => {
                    Delivery::Json { format, template }
                }
                // Response actions are queued by `report_notices`, never rendered from a rule.
                Format::GraphAction => continue,
            };
            deliveries.insert(name.clone(), delivery);
        }
        // Without its keys (a secret not set for a dry run) a notice has no report link;
        // `herald check` names the missing secret and `herald run` refuses to start.
        let links = config
            .web
            .as_ref()
            .and_then(|web| match web.keys(config.dir()) {
                Ok(keys) => Some(ReportLinks {
                    keys,
                    public_url: web.public_url.clone(),
                    lifetime: web.link_lifetime,
                }),
                Err(e) => {
                    tracing::warn!(error = %e, "notices get no report link");
                    None
                }
            });
        Ok(Planner {
            env,
            templates,
            deliveries,
            groups: config.groups.clone(),
            branding: config.branding.clone(),
            links,
            report: config.report.clone(),
            dashboard_url: config.dashboard.as_ref().and_then(|d| d.public_url.clone()),
            rule_actions: config
                .rules
                .rules()
                .iter()
                .filter_map(|r| Some((r.name.clone(), r.report_actions.clone()?)))
                .collect(),
            rules: config.rules.rules().to_vec(),
            throttles: config.throttles.clone(),
            bulk: config.bulk.clone(),
            silences: config.silences.clone(),
        })
    }

    /// Herald's plain words for `event` as a security team reads them (the dashboard's event
    /// page): for each user target (or the event itself, without one), its headline and facts.
    pub fn describe(&self, event: &AuditEvent) -> Vec<String> {
        let users: Vec<Option<&crate::event::Target>> = {
            let users: Vec<_> = event
                .targets
                .iter()
                .filter(|t| t.is_type("User"))
                .map(Some)
                .collect();
            if users.is_empty() {
                vec![event.targets.first()]
            } else {
                users
            }
        };
        let mut said = Vec::new();
        for target in users {
            let owner = facts::owner_name(target);
            let reader = facts::Reader::Other { owner: &owner };
            let explained = facts::explain(event, target, reader);
            said.push(wording::headline(event, target, reader, explained.methods));
            said.extend(explained.facts);
        }
        said
    }

    /// The targets of `event` whose owners a notice of any of `matches` goes to: a copy to
    /// a group or the SOC says the owner was told only for these.
    pub fn owners_told(&self, event: &AuditEvent, matches: &[Match]) -> Vec<usize> {
        let mut told: Vec<usize> = matches
            .iter()
            .filter(|m| !m.rule.channels.is_empty())
            .flat_map(|m| recipients::resolve(event, m, &self.groups))
            .filter(|r| r.via == "target")
            .filter_map(|r| r.target)
            .collect();
        told.sort_unstable();
        told.dedup();
        told
    }

    /// Every notification `m` yields for `event`; `told` is [`Planner::owners_told`] of every
    /// match of the event. A match whose recipients resolve to nobody (a device target, a user
    /// without an address) yields none.
    pub fn plan(
        &self,
        event: &AuditEvent,
        m: &Match,
        told: &[usize],
    ) -> Vec<Result<Notification, PlanError>> {
        let rule = m.rule;
        let recipients = recipients::resolve(event, m, &self.groups);
        let mut out = Vec::with_capacity(recipients.len() * rule.channels.len());
        for channel in &rule.channels {
            for recipient in &recipients {
                out.push(
                    self.render(event, m, channel, recipient, told)
                        .map_err(|message| PlanError {
                            rule: rule.name.clone(),
                            event_id: event.id.clone(),
                            recipient: recipient.address.clone(),
                            message,
                            raw: serde_json::to_vec(&event.raw).unwrap_or_default(),
                        }),
                );
            }
        }
        out
    }

    fn render(
        &self,
        event: &AuditEvent,
        m: &Match,
        channel: &str,
        recipient: &recipients::Resolved,
        told: &[usize],
    ) -> Result<Notification, String> {
        let rule = m.rule;
        let templates = self
            .templates
            .get(&rule.name)
            .ok_or_else(|| format!("rule {:?} has no loaded templates", rule.name))?;
        let delivery = self
            .deliveries
            .get(channel)
            .ok_or_else(|| format!("channel {channel:?} is not configured"))?;
        let key = NotificationKey::new(
            event.tenant_id.as_deref(),
            &event.id,
            &rule.name,
            channel,
            &recipient.address,
        );
        let target = recipient.target.map(|i| &event.targets[i]);
        let shown = target.map(shown_target);
        let owner = facts::owner_name(target);
        // The owner reads "you" however the rule found them (`initiator` of a self-service
        // change, an address, a group of one).
        let is_owner = recipient.via == "target"
            || target
                .filter(|t| t.is_type("User"))
                .and_then(|t| t.upn.as_deref())
                .and_then(recipients::mail_address)
                .is_some_and(|a| a.eq_ignore_ascii_case(&recipient.address));
        let reader = if is_owner {
            facts::Reader::Owner
        } else {
            facts::Reader::Other { owner: &owner }
        };
        let explained = facts::explain(event, target, reader);
        let summary = wording::headline(event, target, reader, explained.methods);
        // What the facts do not already say, for the notice's "other changes".
        let changes: Vec<&ModifiedProperty> = shown
            .iter()
            .flat_map(|t| &t.modified_properties)
            .filter(|p| p.name != "Included Updated Properties")
            .filter(|p| !explained.explained.contains(&p.name))
            .collect();
        // The owner's signed link goes only by mail to the owner: a chat channel or webhook is
        // read by others, who must not answer for them.
        let by_mail = matches!(delivery, Delivery::Mail(_) | Delivery::GraphMessage);
        let report_link = self
            .links
            .as_ref()
            .filter(|_| is_owner && by_mail)
            .and_then(|l| l.link(&key));
        // What this notice says: for the SOC's notice should its owner answer the link, and
        // for the group or digest it may be held for.
        let report_summary = {
            let actor = &event.initiated_by;
            serde_json::to_string(&crate::report::NoticeSummary {
                headline: summary.clone(),
                facts: explained.facts.clone(),
                activity: event.activity.clone(),
                event_time: event.time.as_millisecond(),
                account: target.and_then(|t| t.upn.clone().or_else(|| t.display_name.clone())),
                initiator: actor.display_name.clone().or_else(|| actor.upn.clone()),
                ip: actor.ip.clone(),
                account_id: target.and_then(|t| t.id.clone()),
                account_upn: target.and_then(|t| t.upn.clone()),
                tenant: event.tenant_id.clone(),
            })
            .ok()
        };
        let ctx = context! {
            event => Value::from(Serde(event)),
            target => Value::from(Serde(shown.as_ref())),
            recipient => context! {
                address => &recipient.address,
                via => recipient.via,
                group => &recipient.group,
                is_owner => is_owner,
                is_actor => recipients::is_actor(event, recipient),
            },
            owner_told => recipient.target.is_some_and(|i| told.contains(&i)),
            rule => context! {
                name => &rule.name,
                importance => rule.importance.as_str(),
                channel => channel,
            },
            branding => Value::from(Serde(&self.branding)),
            // The logo's source in mail: the inline image, else `logo_url`.
            logo_src => match &self.branding.logo {
                Some(_) => Some(format!("cid:{}", message::LOGO_CID)),
                None => self.branding.logo_url.clone(),
            },
            summary => &summary,
            // The owner's signed link to the report page ([web]); `branding.report_url`
            // stands in without one.
            report_link => &report_link,
            explanation => matches!(reader, facts::Reader::Owner)
                .then(|| wording::explanation(event, target))
                .flatten(),
            what_happened => &explained.facts,
            changes => Value::from(Serde(&changes)),
            raw => Value::from(Serde(&event.raw)),
            key => key.as_str(),
        };
        let render_with = |name: &str, ctx: &Value| {
            self.env
                .get_template(name)
                .and_then(|t| t.render(ctx))
                .map_err(|e| format!("template {name}: {e}"))
        };
        let render = |name: &str| render_with(name, &ctx);
        let subject = clean_subject(&render(&templates.subject)?);
        let (format, html, text, message) = match delivery {
            Delivery::Mail(from) => {
                let html = inline_css(&render(&templates.body.html)?)?;
                let text = render(&templates.body.text)?;
                let message = message::build(message::Email {
                    from,
                    to: &recipient.address,
                    subject: &subject,
                    text: text.clone(),
                    html: html.clone(),
                    key: &key,
                    importance: rule.importance,
                    logo: self.branding.logo.as_ref(),
                })?;
                (Format::Email, html, text, message)
            }
            Delivery::GraphMessage => {
                let html = inline_css(&render(&templates.body.html)?)?;
                let text = render(&templates.body.text)?;
                let message = payload::graph_message(
                    &subject,
                    &html,
                    &recipient.address,
                    rule.importance,
                    &key,
                    self.branding.logo.as_ref(),
                )?;
                (Format::GraphMessage, html, text, message)
            }
            Delivery::Json { format, template } => {
                let card = chat::Card {
                    subject: &subject,
                    summary: &summary,
                    facts: &explained.facts,
                    changes: &changes,
                    event,
                    target,
                    // Never the owner's own link: a Teams or Slack channel is shared, and
                    // whoever answered there would decide for the owner.
                    report_url: self.branding.report_url.as_deref(),
                };
                let json = |value: serde_json::Value| {
                    serde_json::to_vec(&value).map_err(|e| format!("building the payload: {e}"))
                };
                let message = match (template, format) {
                    (Some(name), _) => {
                        let facts: Vec<_> = chat::facts(&card)
                            .into_iter()
                            .map(|(label, value)| context! { label => label, value => value })
                            .collect();
                        let ctx = context! { subject => &subject, facts => facts, ..ctx.clone() };
                        let value = render::parse_json(name, &render_with(name, &ctx)?)?;
                        json(match format {
                            Format::TeamsCard => {
                                chat::teams_message(chat::adaptive_card(name, value)?)
                            }
                            Format::SlackMessage => chat::slack_message(name, value)?,
                            _ => value,
                        })?
                    }
                    (None, Format::TeamsCard) => json(chat::teams(&card))?,
                    (None, Format::SlackMessage) => json(chat::slack(&card))?,
                    (None, _) => payload::build(payload::Parts {
                        key: &key,
                        subject: &subject,
                        summary: &summary,
                        rule: &rule.name,
                        importance: rule.importance,
                        channel,
                        recipient,
                        target,
                        event,
                    })?,
                };
                (*format, String::new(), summary, message)
            }
        };
        Ok(Notification {
            key,
            event_id: event.id.clone(),
            activity: event.activity.clone(),
            rule: rule.name.clone(),
            channel: channel.to_owned(),
            recipient: recipient.address.clone(),
            subject,
            importance: rule.importance,
            html,
            text,
            format,
            message,
            action: rule.once_per_action.then(|| action_of(event)).flatten(),
            summary: report_summary,
            controls: Some(self.controls(event, rule, channel, &recipient.address, target)),
        })
    }
}

impl Planner {
    /// Addresses and `group:NAME`s as the addresses they stand for, each once (without case).
    fn addresses(&self, specs: impl Iterator<Item = String>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for spec in specs {
            let addresses = match spec.strip_prefix("group:") {
                Some(group) => self.groups.get(group).cloned().unwrap_or_default(),
                None => vec![spec.clone()],
            };
            for address in addresses {
                if !out.iter().any(|r| r.eq_ignore_ascii_case(&address)) {
                    out.push(address);
                }
            }
        }
        out
    }

    /// One of Herald's own notices by mail or Graph mail: `{template}.html` (its CSS inlined)
    /// and `{template}.txt` rendered with `ctx`, as the channel's message.
    #[allow(clippy::too_many_arguments)]
    fn own_mail(
        &self,
        delivery: &Delivery,
        template: &str,
        ctx: &Value,
        recipient: &str,
        subject: &str,
        key: &NotificationKey,
        importance: Importance,
    ) -> Result<(Format, String, String, Vec<u8>), String> {
        let render = |name: String| {
            self.env
                .get_template(&name)
                .and_then(|t| t.render(ctx))
                .map_err(|e| format!("template {name}: {e}"))
        };
        let html = inline_css(&render(format!("{template}.html"))?)?;
        let text = render(format!("{template}.txt"))?;
        match delivery {
            Delivery::Mail(from) => {
                let message = message::build(message::Email {
                    from,
                    to: recipient,
                    subject,
                    text: text.clone(),
                    html: html.clone(),
                    key,
                    importance,
                    logo: None,
                })?;
                Ok((Format::Email, html, text, message))
            }
            _ => {
                let message =
                    payload::graph_message(subject, &html, recipient, importance, key, None)?;
                Ok((Format::GraphMessage, html, text, message))
            }
        }
    }
}

/// The action `event` is part of: `tenant|correlation id|result`. The result is part of it,
/// so a failed attempt never stands for the change that later succeeded. `None` without a
/// meaningful correlation id (absent, or all zeros as in anonymized records), so unrelated
/// records are never taken for one action. Entra's correlation ids are GUIDs: a longer one is
/// cut, and `|` is dropped, so the key stays one short row of three parts.
fn action_of(event: &AuditEvent) -> Option<String> {
    let id = event.correlation_id.as_deref()?.trim();
    if id.is_empty() || id.chars().all(|c| c == '0' || c == '-') {
        return None;
    }
    let part = |text: &str| -> String {
        text.chars()
            .filter(|c| *c != '|')
            .take(128)
            .collect::<String>()
            .to_ascii_lowercase()
    };
    Some(format!(
        "{}|{}|{}",
        part(event.tenant_id.as_deref().unwrap_or_default()),
        part(id),
        part(event.result.as_deref().unwrap_or("success")),
    ))
}

/// `target` as templates see it: without the modified properties a notice must not show
/// (secrets, object ids: [`crate::event::sensitive`]) and with the rest's structured values
/// scrubbed the same way.
fn shown_target(target: &crate::event::Target) -> crate::event::Target {
    use crate::event::sensitive::{
        is_phone_field, is_sensitive_name, mask_phones, scrub, without_ids,
    };
    let mut shown = target.clone();
    // The target's object id is the tenant's business, not the reader's.
    shown.id = None;
    shown.modified_properties.retain_mut(|p| {
        if is_sensitive_name(&p.name) {
            return false;
        }
        let had_value = p.old.is_some() || p.new.is_some();
        let phone = is_phone_field(&p.name);
        let readable =
            |text: &str| without_ids(text).map(|t| if phone { mask_phones(&t) } else { t });
        p.old = p.old.as_deref().and_then(readable);
        p.new = p.new.as_deref().and_then(readable);
        p.old_json = scrub(&p.old_json);
        p.new_json = scrub(&p.new_json);
        // A property that held nothing but object ids says nothing a reader can use.
        !had_value || p.old.is_some() || p.new.is_some()
    });
    shown
}

/// Moves `<style>` rules into `style` attributes: many mail clients drop `<style>` blocks.
fn inline_css(html: &str) -> Result<String, String> {
    css_inline::CSSInliner::options()
        .load_remote_stylesheets(false)
        .build()
        .inline(html)
        .map_err(|e| format!("inlining CSS: {e}"))
}

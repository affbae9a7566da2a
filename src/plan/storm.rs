//! Storm control's part of planning (ARCHITECTURE.md §13): the [`Controls`] each notification
//! carries to the store (its silences' facets, its repeat, group and throttle keys), the bulk
//! count of an event, and Herald's own notices of a storm — a group's one notice, a digest of
//! what a throttle held, the SOC's bulk-change digest, a silence made and ended — on every
//! kind of channel.

use minijinja::context;
use serde_json::json;

use super::{Delivery, Format, Notification, NotificationKey, Planner, chat, clean_subject};
use crate::event::{ActorKind, AuditEvent, Target};
use crate::report::NoticeSummary;
use crate::rules::{Importance, Rule};
use crate::store::{BulkAccount, DueWindow, HeldNotice, LISTED, Members, SilenceEntry};
use crate::storm::{
    BulkCount, Controls, Facets, GroupBy, Matchers, Repeat, RepeatField, Throttle, ThrottleBy,
    scope_key,
};

/// One of Herald's own notices, before it is put into a channel's format.
struct Told {
    /// What it is about, for its key (a window's id, a silence's).
    about: String,
    rule: String,
    event_id: String,
    subject: String,
    lead: String,
    sections: Vec<Section>,
    link: Option<(String, String)>,
    importance: Importance,
    /// For a group's notice to the account's owner by mail: what it said, for its report
    /// link.
    summary: Option<NoticeSummary>,
}

#[derive(serde::Serialize)]
struct Section {
    heading: String,
    items: Vec<String>,
}

impl Planner {
    /// What the store decides `rule`'s notice to `recipient` on `channel` by.
    pub(super) fn controls(
        &self,
        event: &AuditEvent,
        rule: &Rule,
        channel: &str,
        recipient: &str,
        target: Option<&Target>,
    ) -> Controls {
        let actor = &event.initiated_by;
        let tenant = event.tenant_id.clone().unwrap_or_default();
        let initiator = initiator_key(event);
        let facets = Facets {
            rule: rule.name.clone(),
            activity: event.activity.clone(),
            tenant: tenant.clone(),
            account: target
                .into_iter()
                .flat_map(|t| [t.upn.clone(), t.display_name.clone()])
                .flatten()
                .collect(),
            recipient: recipient.to_owned(),
            ip: actor.ip.clone(),
            ..initiator_facets(event)
        };
        let target_key = target
            .and_then(|t| t.id.clone().or_else(|| t.upn.clone()))
            .unwrap_or_default();
        let repeat = rule.repeat.as_ref().map(|(repeat, fields)| {
            let mut parts = vec![
                rule.name.clone(),
                channel.to_owned(),
                recipient.to_owned(),
                tenant.clone(),
            ];
            for field in fields {
                parts.push(match field {
                    RepeatField::Target => target_key.clone(),
                    RepeatField::Activity => event.activity.clone(),
                    RepeatField::Initiator => initiator.clone(),
                    RepeatField::Result => event.result.clone().unwrap_or_default(),
                });
            }
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            let window = match repeat {
                Repeat::Within(d) => Some(d.as_millis() as i64),
                Repeat::Never => None,
            };
            (scope_key("repeat", &parts), window)
        });
        let group = rule.group.and_then(|(by, wait)| {
            let value = match by {
                GroupBy::Correlation => super::action_of(event)?,
                GroupBy::Initiator => initiator.clone(),
                GroupBy::Activity => event.activity.clone(),
            };
            Some((
                scope_key("group", &[channel, recipient, &tenant, &value]),
                wait.as_millis() as i64,
            ))
        });
        let throttles = self
            .throttles
            .iter()
            .enumerate()
            .filter(|(_, t)| t.rules.is_empty() || t.rules.contains(&rule.name))
            .filter(|(_, t)| t.channels.is_empty() || t.channels.iter().any(|c| c == channel))
            .map(|(i, t)| {
                let by = match t.by {
                    ThrottleBy::Recipient => String::new(),
                    ThrottleBy::Rule => rule.name.clone(),
                    ThrottleBy::Initiator => initiator.clone(),
                };
                Throttle {
                    scope: scope_key("throttle", &[&i.to_string(), channel, recipient, &by]),
                    limit: t.limit,
                    window: t.window.as_millis() as i64,
                }
            })
            .collect();
        Controls {
            facets,
            silenceable: rule.silenceable,
            repeat,
            group,
            throttles,
        }
    }

    /// With `[bulk]`: the accounts `event`'s initiator changed (each user target other than
    /// the initiator), counted in the initiator's window.
    pub fn bulk_count(&self, event: &AuditEvent) -> Option<BulkCount> {
        let bulk = self.bulk.as_ref()?;
        let initiator = initiator_key(event);
        if initiator.is_empty() {
            return None;
        }
        let accounts: Vec<String> = event
            .targets
            .iter()
            .filter(|t| t.is_type("User") && !event.initiator_is(t))
            .filter_map(|t| t.upn.clone().or_else(|| t.display_name.clone()))
            .map(|a| a.to_lowercase())
            .collect();
        if accounts.is_empty() {
            return None;
        }
        let actor = &event.initiated_by;
        let shown = actor
            .upn
            .clone()
            .or_else(|| actor.display_name.clone())
            .or_else(|| actor.app_id.clone())
            .unwrap_or_else(|| initiator.clone());
        let tenant = event.tenant_id.clone().unwrap_or_default();
        let facets = Facets {
            activity: event.activity.clone(),
            tenant: tenant.clone(),
            ip: actor.ip.clone(),
            ..initiator_facets(event)
        };
        Some(BulkCount {
            facets,
            scope: scope_key("bulk", &[&tenant, &initiator]),
            initiator: shown,
            accounts,
            threshold: bulk.accounts,
            window: bulk.window.as_millis() as i64,
        })
    }

    /// Whether a silence of `matchers` may hold any rule's notices: refused when every rule it
    /// could match is `silenceable = false`.
    pub fn silence_may_hold(&self, matchers: &Matchers) -> Result<(), String> {
        let rules: Vec<(&str, bool)> = self
            .rules
            .iter()
            .map(|r| (r.name.as_str(), r.silenceable))
            .collect();
        crate::storm::may_hold(matchers, &rules)
    }

    /// The notices of a window whose end has passed: a group's one notice, a throttle's
    /// digest, a bulk change's digest to `[bulk] notify` (none under its threshold).
    pub fn window_notices(
        &self,
        window: &DueWindow,
        members: &Members,
    ) -> Result<Vec<Notification>, String> {
        match members {
            Members::Notices(held) if held.is_empty() => Ok(Vec::new()),
            Members::Notices(held) => {
                let told = match window.kind.as_str() {
                    "group" => self.group_told(window, held),
                    _ => self.digest_told(window, held),
                };
                Ok(vec![self.tell(
                    &told,
                    &window.channel,
                    &window.recipient,
                )?])
            }
            Members::Accounts(accounts) => {
                let label: serde_json::Value =
                    serde_json::from_str(&window.label).unwrap_or_default();
                let threshold = label["threshold"].as_i64().unwrap_or(i64::MAX);
                if (accounts.len() as i64) <= threshold {
                    return Ok(Vec::new());
                }
                let Some(bulk) = &self.bulk else {
                    return Ok(Vec::new());
                };
                let initiator = label["initiator"].as_str().unwrap_or("someone").to_owned();
                let told = self.bulk_told(window, &initiator, accounts);
                self.tell_all(&told, &bulk.notify, &bulk.channels, None)
            }
        }
    }

    /// The security group's notice of a new silence: nobody mutes Herald quietly.
    pub fn silence_created(&self, s: &SilenceEntry) -> Result<Vec<Notification>, String> {
        let told = Told {
            about: format!("silence-{}", s.id),
            rule: "silence-created".to_owned(),
            event_id: format!("silence {}", s.id),
            subject: format!("{} silenced some of Herald's notices", s.created_by),
            lead: format!(
                "{} created silence {}: notices it matches are recorded in Herald but not sent{}.",
                s.created_by,
                s.id,
                self.until(s)
            ),
            sections: vec![Section {
                heading: "The silence".to_owned(),
                items: self.silence_items(s),
            }],
            link: self.dashboard_link("See it in Herald", "/silences"),
            importance: Importance::High,
            summary: None,
        };
        self.tell_all(&told, &self.silences.notify, &self.silences.channels, None)
    }

    /// The summary of an ended silence, to its creator (when an address) and `[silences]
    /// notify`: what it suppressed.
    pub fn silence_ended(
        &self,
        s: &SilenceEntry,
        held: &[HeldNotice],
    ) -> Result<Vec<Notification>, String> {
        let mut items: Vec<String> = held.iter().map(|h| self.held_line(h)).collect();
        if s.suppressed as usize > items.len() {
            items.push(format!(
                "… and {} more (herald outbox list --state suppressed)",
                s.suppressed as usize - items.len()
            ));
        }
        let ended = match &s.expired_by {
            Some(by) => format!("{by} ended it"),
            None => "its time is up".to_owned(),
        };
        let mut sections = vec![Section {
            heading: "The silence".to_owned(),
            items: self.silence_items(s),
        }];
        if !items.is_empty() {
            sections.push(Section {
                heading: "What it kept from being sent".to_owned(),
                items,
            });
        }
        let told = Told {
            about: format!("silence-{}", s.id),
            rule: "silence-ended".to_owned(),
            event_id: format!("silence {}", s.id),
            subject: format!(
                "Silence {} has ended: {} notices were not sent",
                s.id, s.suppressed
            ),
            lead: format!(
                "Silence {}, made by {}, has ended: {ended}. While it held, Herald recorded {} notices it matched without sending them; every one is kept in Herald.",
                s.id, s.created_by, s.suppressed
            ),
            sections,
            link: self.dashboard_link("See them in Herald", "/outbox?state=suppressed"),
            importance: Importance::Normal,
            summary: None,
        };
        let creator = crate::values::sendable_address(&s.created_by).then(|| s.created_by.clone());
        self.tell_all(
            &told,
            &self.silences.notify,
            &self.silences.channels,
            creator,
        )
    }

    fn silence_items(&self, s: &SilenceEntry) -> Vec<String> {
        let mut items = vec![
            format!("Matches: {}", s.matchers),
            format!("Why: {}", s.comment),
            format!("From: {}", self.time(s.starts_at)),
        ];
        if let Some(end) = s.ends_at {
            items.push(format!("Until: {}", self.time(end)));
        }
        if let Some(w) = &s.weekly {
            items.push(format!("Only: {w}"));
        }
        items
    }

    fn until(&self, s: &SilenceEntry) -> String {
        match s.ends_at {
            Some(end) => format!(" until {}", self.time(end)),
            None => " until it is expired".to_owned(),
        }
    }

    fn group_told(&self, window: &DueWindow, held: &[HeldNotice]) -> Told {
        let summaries: Vec<Option<NoticeSummary>> = held.iter().map(summary_of).collect();
        let first = summaries.iter().flatten().next().cloned();
        let headline = first
            .as_ref()
            .map(|s| s.headline.clone())
            .unwrap_or_else(|| held[0].subject.clone());
        let mut facts: Vec<String> = Vec::new();
        let mut sections = Vec::new();
        // Each record of the change, with what it adds (a fact told once); a record without
        // facts of its own says what it was.
        for (h, s) in held.iter().zip(&summaries) {
            let mut items: Vec<String> = match s {
                Some(s) => s
                    .facts
                    .iter()
                    .filter(|f| !facts.contains(f))
                    .cloned()
                    .collect(),
                None => Vec::new(),
            };
            facts.extend(items.iter().cloned());
            if items.is_empty() {
                items.push(s.as_ref().map_or(h.subject.clone(), |s| s.headline.clone()));
            }
            sections.push(Section {
                heading: s
                    .as_ref()
                    .map(|s| format!("{} ({})", s.activity, self.time(s.event_time)))
                    .unwrap_or_else(|| h.rule.clone()),
                items,
            });
        }
        if let Some(by) = first.as_ref().and_then(|s| s.initiator.clone()) {
            let from = first
                .as_ref()
                .and_then(|s| s.ip.clone())
                .map(|ip| format!(" from {ip}"))
                .unwrap_or_default();
            sections.push(Section {
                heading: "Who did it".to_owned(),
                items: vec![format!("{by}{from}")],
            });
        }
        let owner = first.as_ref().is_some_and(|s| {
            s.account_upn
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(&window.recipient))
        });
        Told {
            about: window.id.clone(),
            rule: window.rule.clone(),
            event_id: held[0].event_id.clone(),
            subject: clean_subject(&headline),
            lead: match held.len() {
                1 => "Herald recorded this change:".to_owned(),
                n => format!(
                    "Entra recorded this change as {n} records; here is all of it in one notice."
                ),
            },
            sections,
            link: None,
            importance: Importance::Normal,
            summary: owner.then(|| NoticeSummary {
                facts,
                ..first.clone().unwrap_or_default()
            }),
        }
    }

    fn digest_told(&self, window: &DueWindow, held: &[HeldNotice]) -> Told {
        let n = held.len();
        let mut sections: Vec<Section> = held
            .iter()
            .take(LISTED)
            .map(|h| match summary_of(h) {
                Some(s) => {
                    let mut items = s.facts.clone();
                    if let Some(by) = &s.initiator {
                        let from =
                            s.ip.as_deref()
                                .map(|ip| format!(" from {ip}"))
                                .unwrap_or_default();
                        items.push(format!("Done by {by}{from}"));
                    }
                    Section {
                        heading: format!("{}: {}", self.time(s.event_time), s.headline),
                        items,
                    }
                }
                None => Section {
                    heading: format!("{}: {}", self.time(h.created_at), h.subject),
                    items: Vec::new(),
                },
            })
            .collect();
        if n > LISTED {
            sections.push(Section {
                heading: format!("… and {} more", n - LISTED),
                items: vec![
                    "Every one is kept in Herald (herald outbox list --state merged).".to_owned(),
                ],
            });
        }
        let span = span_in_words(window.closes_at - window.opened_at);
        Told {
            about: window.id.clone(),
            rule: "digest".to_owned(),
            event_id: held[0].event_id.clone(),
            subject: format!("{n} more security notices, held back so as not to flood you"),
            lead: format!(
                "You had {} notices from Herald within {span}; to keep your inbox usable, Herald held back the next {n} and lists every one of them here. Nothing was left out.",
                window.counted
            ),
            sections,
            link: self.dashboard_link("All notices in Herald", "/outbox"),
            importance: Importance::Normal,
            summary: None,
        }
    }

    fn bulk_told(&self, window: &DueWindow, initiator: &str, accounts: &[BulkAccount]) -> Told {
        let mut activities: Vec<(String, usize)> = Vec::new();
        for a in accounts {
            match activities.iter_mut().find(|(n, _)| *n == a.activity) {
                Some((_, c)) => *c += 1,
                None => activities.push((a.activity.clone(), 1)),
            }
        }
        let first = &accounts[0];
        let last = &accounts[accounts.len() - 1];
        let mut url = self.dashboard_url.as_ref().and_then(|base| {
            let mut url = reqwest::Url::parse(&format!("{base}/events")).ok()?;
            url.query_pairs_mut()
                .append_pair("account", &initiator.to_lowercase());
            Some(url.to_string())
        });
        let link = url.take().map(|u| ("Every change in Herald".to_owned(), u));
        Told {
            about: window.id.clone(),
            rule: "bulk-change".to_owned(),
            event_id: first.event_id.clone(),
            subject: clean_subject(&format!(
                "Bulk change: {initiator} changed {} accounts",
                accounts.len()
            )),
            lead: format!(
                "{initiator} changed {} accounts between {} and {}. Each account's owner was told as usual (unless a silence holds their notices).",
                accounts.len(),
                self.time(first.event_time.min(window.opened_at)),
                self.time(last.event_time.max(first.event_time)),
            ),
            sections: vec![
                Section {
                    heading: "What".to_owned(),
                    items: activities
                        .iter()
                        .map(|(a, n)| format!("{a}: {n} accounts"))
                        .collect(),
                },
                Section {
                    heading: "Accounts".to_owned(),
                    items: vec![
                        format!("First: {} ({})", first.account, self.time(first.event_time)),
                        format!("Last: {} ({})", last.account, self.time(last.event_time)),
                        format!("Tenant: {}", first.tenant),
                    ],
                },
            ],
            link,
            importance: Importance::High,
            summary: None,
        }
    }

    fn held_line(&self, h: &HeldNotice) -> String {
        match summary_of(h) {
            Some(s) => format!(
                "{}: {}{}",
                self.time(s.event_time),
                s.headline,
                s.account
                    .as_deref()
                    .map(|a| format!(" ({a})"))
                    .unwrap_or_default()
            ),
            None => format!("{}: {}", self.time(h.created_at), h.subject),
        }
    }

    fn dashboard_link(&self, label: &str, path: &str) -> Option<(String, String)> {
        self.dashboard_url
            .as_ref()
            .map(|base| (label.to_owned(), format!("{base}{path}")))
    }

    /// A time as the notices print it, in `[branding] timezone`.
    fn time(&self, millis: i64) -> String {
        let Ok(t) = jiff::Timestamp::from_millisecond(millis) else {
            return String::new();
        };
        let zone =
            jiff::tz::TimeZone::get(&self.branding.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        t.to_zoned(zone)
            .strftime("%a %-d %b %Y, %H:%M %Z")
            .to_string()
    }

    /// `told` to every one of `notify` (groups expanded) and `extra` on every channel of
    /// `channels`; once per chat channel or webhook, which is one destination.
    fn tell_all(
        &self,
        told: &Told,
        notify: &[String],
        channels: &[String],
        extra: Option<String>,
    ) -> Result<Vec<Notification>, String> {
        let recipients = self.addresses(notify.iter().cloned().chain(extra));
        let mut out = Vec::new();
        for channel in channels {
            match self.deliveries.get(channel) {
                Some(Delivery::Json { .. }) => out.push(self.tell(told, channel, channel)?),
                Some(_) => {
                    for r in &recipients {
                        out.push(self.tell(told, channel, r)?);
                    }
                }
                None => {}
            }
        }
        Ok(out)
    }

    /// `told` on `channel` to `recipient`.
    fn tell(&self, told: &Told, channel: &str, recipient: &str) -> Result<Notification, String> {
        let key = NotificationKey::new(None, &told.about, &told.rule, channel, recipient);
        let delivery = self
            .deliveries
            .get(channel)
            .ok_or_else(|| format!("channel {channel:?} is not configured"))?;
        let subject = clean_subject(&told.subject);
        let by_mail = matches!(delivery, Delivery::Mail(_) | Delivery::GraphMessage);
        let report_link = told
            .summary
            .as_ref()
            .filter(|_| by_mail)
            .and(self.links.as_ref())
            .and_then(|l| l.link(&key));
        let summary = report_link
            .as_ref()
            .and(told.summary.as_ref())
            .and_then(|s| serde_json::to_string(s).ok());
        let link = told
            .link
            .as_ref()
            .map(|(label, url)| context! { label => label, url => url });
        let (format, html, text, message) = match delivery {
            Delivery::Mail(_) | Delivery::GraphMessage => {
                let ctx = context! {
                    subject => &subject,
                    lead => &told.lead,
                    sections => minijinja::Value::from(minijinja::value::Serde(&told.sections)),
                    link => link,
                    report_link => &report_link,
                    key => key.as_str(),
                };
                self.own_mail(
                    delivery,
                    "storm-notice",
                    &ctx,
                    recipient,
                    &subject,
                    &key,
                    told.importance,
                )?
            }
            Delivery::Json { format, .. } => {
                let facts: Vec<(&str, String)> = told
                    .sections
                    .iter()
                    .take(20)
                    .map(|s| (s.heading.as_str(), s.items.join("\n")))
                    .collect();
                let link = told.link.as_ref().map(|(l, u)| (l.as_str(), u.as_str()));
                let value = match format {
                    Format::TeamsCard => chat::teams_parts(&subject, &told.lead, &facts, link),
                    Format::SlackMessage => chat::slack_parts(&subject, &told.lead, &facts, link),
                    _ => json!({
                        "schema": "herald.storm.v1",
                        "kind": &told.rule,
                        "key": key.as_str(),
                        "subject": &subject,
                        "summary": &told.lead,
                        "sections": &told.sections,
                        "link": told.link.as_ref().map(|(_, u)| u),
                    }),
                };
                let message =
                    serde_json::to_vec(&value).map_err(|e| format!("building the payload: {e}"))?;
                (*format, String::new(), told.lead.clone(), message)
            }
        };
        Ok(Notification {
            key,
            event_id: told.event_id.clone(),
            activity: String::new(),
            rule: told.rule.clone(),
            channel: channel.to_owned(),
            recipient: recipient.to_owned(),
            subject,
            importance: told.importance,
            html,
            text,
            format,
            message,
            action: None,
            summary,
            controls: None,
        })
    }
}

fn summary_of(h: &HeldNotice) -> Option<NoticeSummary> {
    h.summary
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
}

/// Who did it, as one key: the user's UPN or object id, or the app's id or name.
fn initiator_key(event: &AuditEvent) -> String {
    let actor = &event.initiated_by;
    [
        actor.upn.as_deref(),
        actor.app_id.as_deref(),
        actor.id.as_deref(),
        actor.display_name.as_deref(),
    ]
    .into_iter()
    .flatten()
    .find(|v| !v.trim().is_empty())
    .map(str::to_lowercase)
    .unwrap_or_default()
}

/// The initiator as silences match it: the user's UPN, or the app's name, id and service
/// principal name.
fn initiator_facets(event: &AuditEvent) -> Facets {
    let actor = &event.initiated_by;
    Facets {
        initiator_user: (actor.kind == ActorKind::User)
            .then(|| actor.upn.clone())
            .flatten(),
        initiator_app: match actor.kind {
            ActorKind::App => [
                actor.display_name.clone(),
                actor.app_id.clone(),
                actor.service_principal_name.clone(),
            ]
            .into_iter()
            .flatten()
            .collect(),
            _ => Vec::new(),
        },
        ..Facets::default()
    }
}

/// A window's length as a reader says it: "30 seconds", "10 minutes", "2 hours".
fn span_in_words(millis: i64) -> String {
    let seconds = millis / 1_000;
    let (n, unit) = match seconds {
        s if s < 120 => (s, "second"),
        s if s < 7_200 => (s / 60, "minute"),
        s => (s / 3_600, "hour"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const CONFIG: &str = r#"
[channel.email]
kind = "file"
from = "Security <security@contoso.com>"
dir = "mail"

[channel.soc-teams]
kind = "teams"
url = "https://contoso.webhook.office.com/x"

[bulk]
accounts = 1
notify = ["soc@contoso.com"]
channels = ["email", "soc-teams"]

[[rule]]
name = "reset"
recipients = ["target"]
"#;

    const HOSTILE: &str = "<script>alert(1)</script>\r\nBcc: x@evil.example";

    fn planner() -> Planner {
        let config = Config::parse(std::path::Path::new("herald.toml"), CONFIG).unwrap();
        Planner::new(&config).unwrap()
    }

    fn window(kind: &str) -> DueWindow {
        DueWindow {
            id: format!("{kind}-1"),
            kind: kind.to_owned(),
            channel: "email".to_owned(),
            recipient: "adele@contoso.com".to_owned(),
            rule: "reset".to_owned(),
            label: serde_json::json!({ "initiator": HOSTILE, "threshold": 1 }).to_string(),
            opened_at: 1_800_000_000_000,
            closes_at: 1_800_000_600_000,
            counted: 5,
            held: 1,
        }
    }

    fn text_of(n: &Notification) -> String {
        String::from_utf8_lossy(&n.message).into_owned()
    }

    #[test]
    fn a_digest_and_a_group_escape_every_audit_value() {
        let summary = NoticeSummary {
            headline: HOSTILE.to_owned(),
            facts: vec![format!("fact {HOSTILE}")],
            activity: "Reset password (by admin)".to_owned(),
            event_time: 1_800_000_000_000,
            initiator: Some(HOSTILE.to_owned()),
            ..NoticeSummary::default()
        };
        let held = vec![HeldNotice {
            key: "k1".to_owned(),
            event_id: "e1".to_owned(),
            rule: "reset".to_owned(),
            subject: HOSTILE.to_owned(),
            summary: serde_json::to_string(&summary).ok(),
            created_at: 1_800_000_000_000,
        }];
        for kind in ["throttle", "group"] {
            let notices = planner()
                .window_notices(&window(kind), &Members::Notices(held.clone()))
                .unwrap();
            assert_eq!(notices.len(), 1, "{kind}");
            let n = &notices[0];
            assert!(
                !n.subject.contains('\r') && !n.subject.contains('\n'),
                "{kind}: {:?}",
                n.subject
            );
            assert!(!n.html.contains("<script>"), "{kind}: {}", n.html);
            assert!(n.html.contains("&lt;script&gt;"), "{kind}: {}", n.html);
            // No audit text reaches the message's headers as a line of its own.
            let message = text_of(n);
            let headers = message.split("\r\n\r\n").next().unwrap();
            assert!(
                !headers.lines().any(|l| l.starts_with("Bcc")),
                "{kind}: {headers}"
            );
        }
    }

    #[test]
    fn a_bulk_digest_puts_the_initiator_only_where_it_is_text() {
        let accounts = Members::Accounts(vec![
            BulkAccount {
                account: "adele@contoso.com".to_owned(),
                tenant: "t".to_owned(),
                event_id: "e1".to_owned(),
                activity: HOSTILE.to_owned(),
                event_time: 1_800_000_000_000,
            },
            BulkAccount {
                account: "alex@contoso.com".to_owned(),
                tenant: "t".to_owned(),
                event_id: "e2".to_owned(),
                activity: HOSTILE.to_owned(),
                event_time: 1_800_000_001_000,
            },
        ]);
        let notices = planner()
            .window_notices(&window("bulk"), &accounts)
            .unwrap();
        // The SOC's mail and one card.
        assert_eq!(notices.len(), 2);
        let mail = notices.iter().find(|n| n.format == Format::Email).unwrap();
        assert!(!mail.subject.contains('\n'), "{:?}", mail.subject);
        assert!(!mail.html.contains("<script>") && mail.html.contains("&lt;script&gt;"));
        let card = notices
            .iter()
            .find(|n| n.format == Format::TeamsCard)
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&card.message).unwrap();
        // In the card the hostile text is only ever the value of a text field, never a URL,
        // an image or a type.
        fn places(v: &serde_json::Value, key: &str, found: &mut Vec<String>) {
            match v {
                serde_json::Value::String(t) if t.contains("<script>") => {
                    found.push(key.to_owned())
                }
                serde_json::Value::Array(items) => items.iter().for_each(|i| places(i, key, found)),
                serde_json::Value::Object(map) => map.iter().for_each(|(k, v)| places(v, k, found)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        places(&value, "", &mut found);
        assert!(!found.is_empty(), "{value}");
        assert!(
            found
                .iter()
                .all(|k| k == "text" || k == "title" || k == "value"),
            "{found:?}: {value}"
        );
    }
}

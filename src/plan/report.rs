//! What an owner's answer on a report page sets off (ARCHITECTURE.md §2.9): the SOC's notice
//! on every `[report] channels` channel — mail, Teams, Slack or webhook — and, for "I did not
//! do this", the response actions (`[report] actions`, or the answered rule's
//! `report_actions`) as rows of the internal `graph_action` channel. All of it is queued in the
//! transaction that records the answer, keyed so that an answer is told and acted on once.

use minijinja::context;
use serde_json::json;

use super::{Delivery, Format, Notification, NotificationKey, Planner, chat, clean_subject};
use crate::channel::graph_action::{self, Action};
use crate::report::Answer;
use crate::rules::Importance;

impl Planner {
    /// The notices telling `[report] notify` of an owner's answer, one per recipient and
    /// channel, and the response actions of an "I did not do this", one per action. Keys are
    /// made of the reported event and the answering account, the verdict or action, the
    /// channel and the recipient, so an answer is told and acted on once however often it is
    /// posted. "This was me" is told only with `notify_confirmed`, and acted on never.
    pub fn report_notices(&self, answer: &Answer) -> Vec<Result<Notification, String>> {
        let config = &self.report;
        let not_me = answer.verdict == "not_me";
        let actions = if not_me {
            self.actions_for(&answer.rule)
        } else {
            &[]
        };
        let mut out: Vec<Result<Notification, String>> = actions
            .iter()
            .map(|a| Ok(self.action(answer, *a)))
            .collect();
        if !not_me && !config.notify_confirmed {
            return out;
        }
        let recipients = self.addresses(config.notify.iter().cloned());
        let told: Vec<String> = actions
            .iter()
            .map(|a| a.describe(&answer.account))
            .collect();
        for channel in &config.channels {
            match self.deliveries.get(channel) {
                // A chat channel or a webhook is one destination, whoever the recipients are.
                Some(Delivery::Json { .. }) => {
                    out.push(self.render_report(answer, channel, channel, &told));
                }
                _ => {
                    for recipient in &recipients {
                        out.push(self.render_report(answer, channel, recipient, &told));
                    }
                }
            }
        }
        out
    }

    /// The actions an "I did not do this" on a notice of `rule` sets off.
    fn actions_for(&self, rule: &str) -> &[Action] {
        self.rule_actions
            .get(rule)
            .map_or(self.report.actions.as_slice(), Vec::as_slice)
    }

    fn action(&self, answer: &Answer, action: Action) -> Notification {
        let account = &answer.account;
        let about = format!("{}|{}", answer.event_id, account.to_lowercase());
        let rule = format!("action-{}", action.as_str());
        let key = NotificationKey::new(
            Some(&answer.tenant),
            &about,
            &rule,
            graph_action::CHANNEL,
            account,
        );
        let summary = answer.summary.as_ref();
        let request = graph_action::Request {
            action,
            user_id: summary.and_then(|s| s.account_id.clone()),
            upn: summary.and_then(|s| s.account_upn.clone()),
            account: account.clone(),
            tenant: answer.tenant.clone(),
        };
        Notification {
            key,
            event_id: answer.event_id.clone(),
            activity: answer
                .summary
                .as_ref()
                .map(|s| s.activity.clone())
                .unwrap_or_default(),
            rule,
            channel: graph_action::CHANNEL.to_owned(),
            recipient: account.clone(),
            subject: action.describe(account),
            importance: Importance::High,
            html: String::new(),
            text: String::new(),
            format: Format::GraphAction,
            message: serde_json::to_vec(&request).unwrap_or_default(),
            action: None,
            summary: None,
            controls: None,
        }
    }

    fn render_report(
        &self,
        answer: &Answer,
        channel: &str,
        recipient: &str,
        actions: &[String],
    ) -> Result<Notification, String> {
        // One notice per answering owner: two owners of one event who both say "not me" are
        // two notices.
        let rule = format!("report-{}", answer.verdict);
        let about = format!("{}|{}", answer.event_id, answer.account.to_lowercase());
        let key = NotificationKey::new(Some(&answer.tenant), &about, &rule, channel, recipient);
        let summary = answer.summary.clone().unwrap_or_default();
        let not_me = answer.verdict == "not_me";
        let headline = match not_me {
            true => format!(
                "{} says this was not them: {}",
                answer.account, answer.subject
            ),
            false => format!(
                "{} confirmed this was them: {}",
                answer.account, answer.subject
            ),
        };
        let lead = match not_me {
            true => format!(
                "{} says they did not do this. Someone else may have access to the account.",
                answer.account
            ),
            false => format!("{} confirmed this was them.", answer.account),
        };
        let time = |ms: i64| {
            jiff::Timestamp::from_millisecond(ms)
                .ok()
                .map(|t| t.to_string())
        };
        let event_time = (summary.event_time != 0)
            .then(|| time(summary.event_time))
            .flatten();
        let subject = clean_subject(&headline);
        // The event's page in the dashboard: Herald's own address, the event named only in
        // the query, encoded (a record cannot choose where the link goes).
        let event_url = self.dashboard_url.as_ref().and_then(|base| {
            let mut url = reqwest::Url::parse(&format!("{base}/event")).ok()?;
            url.query_pairs_mut()
                .append_pair("tenant", &answer.tenant)
                .append_pair("id", &answer.event_id);
            Some(url.to_string())
        });
        let (format, html, text, message) = match self.deliveries.get(channel) {
            Some(delivery @ (Delivery::Mail(_) | Delivery::GraphMessage)) => {
                let ctx = context! {
                    headline => &headline,
                    account => &answer.account,
                    notice => context! {
                        subject => &answer.subject,
                        key => &answer.notice_key,
                        event_id => &answer.event_id,
                    },
                    summary => context! {
                        facts => &summary.facts,
                        activity => &summary.activity,
                        event_time => &event_time,
                        initiator => &summary.initiator,
                        ip => &summary.ip,
                    },
                    report => context! {
                        verdict => &answer.verdict,
                        at => time(answer.at),
                        client_ip => &answer.client_ip,
                        user_agent => &answer.user_agent,
                    },
                    actions => actions.to_vec(),
                    event_url => &event_url,
                    key => key.as_str(),
                };
                self.own_mail(
                    delivery,
                    "report-notice",
                    &ctx,
                    recipient,
                    &subject,
                    &key,
                    Importance::High,
                )?
            }
            Some(Delivery::Json { format, .. }) => {
                // Built in whatever the channel's template: an operator's card is made for
                // notices, and this is no notice of an event.
                let mut facts: Vec<(&str, String)> = vec![("Account", answer.account.clone())];
                facts.push(("Notice", answer.subject.clone()));
                if !summary.facts.is_empty() {
                    facts.push(("What happened", summary.facts.join("\n")));
                }
                if !summary.activity.is_empty() {
                    facts.push(("Activity", summary.activity.clone()));
                }
                if let Some(at) = &event_time {
                    facts.push(("Happened (UTC)", at.clone()));
                }
                if let Some(by) = &summary.initiator {
                    let from = summary
                        .ip
                        .as_deref()
                        .map(|ip| format!(" from {ip}"))
                        .unwrap_or_default();
                    facts.push(("Done by", format!("{by}{from}")));
                }
                facts.push((
                    "Answered",
                    format!(
                        "{} from {}",
                        time(answer.at).unwrap_or_default(),
                        answer.client_ip
                    ),
                ));
                if !actions.is_empty() {
                    facts.push(("Response", actions.join("\n")));
                }
                facts.push(("Reference", key.as_str().to_owned()));
                let value = match format {
                    Format::TeamsCard => chat::teams_parts(
                        &subject,
                        &lead,
                        &facts,
                        event_url.as_deref().map(|u| ("Open in Herald", u)),
                    ),
                    Format::SlackMessage => chat::slack_parts(
                        &subject,
                        &lead,
                        &facts,
                        event_url.as_deref().map(|u| ("Open in Herald", u)),
                    ),
                    _ => json!({
                        "schema": "herald.report.v1",
                        "key": key.as_str(),
                        "subject": &subject,
                        "summary": &lead,
                        "verdict": &answer.verdict,
                        "account": &answer.account,
                        "answered_at": time(answer.at),
                        "client_ip": &answer.client_ip,
                        "user_agent": &answer.user_agent,
                        "notice": {
                            "key": &answer.notice_key,
                            "subject": &answer.subject,
                            "rule": &answer.rule,
                            "event_id": &answer.event_id,
                            "tenant": &answer.tenant,
                        },
                        "event": {
                            "activity": &summary.activity,
                            "time": &event_time,
                            "facts": &summary.facts,
                            "initiator": &summary.initiator,
                            "ip": &summary.ip,
                        },
                        "actions": actions,
                        "event_url": &event_url,
                    }),
                };
                let message =
                    serde_json::to_vec(&value).map_err(|e| format!("building the payload: {e}"))?;
                (*format, String::new(), lead.clone(), message)
            }
            None => return Err(format!("channel {channel:?} is not configured")),
        };
        Ok(Notification {
            key,
            event_id: answer.event_id.clone(),
            activity: summary.activity.clone(),
            rule,
            channel: channel.to_owned(),
            recipient: recipient.to_owned(),
            subject,
            importance: Importance::High,
            html,
            text,
            format,
            message,
            action: None,
            summary: None,
            controls: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::report::NoticeSummary;

    const CONFIG: &str = r#"
[channel.email]
kind = "file"
from = "Security <security@contoso.com>"
dir = "mail"

[channel.soc-teams]
kind = "teams"
url = "https://contoso.webhook.office.com/x"

[groups]
soc = ["soc@contoso.com", "lead@contoso.com"]

[microsoft.contoso]
tenant_id = "7f3c2a10-4b6e-4d2a-9c1e-2f5a8b0d6e41"
client_id = "c"
client_secret = { env = "S" }

[report]
notify = ["group:soc", "SOC@contoso.com"]
channels = ["email", "soc-teams"]
app = "contoso"
actions = ["revoke_sessions", "disable_account"]

[[rule]]
name = "reset"
recipients = ["target"]

[[rule]]
name = "quiet"
recipients = ["target"]
report_actions = []
"#;

    fn planner() -> Planner {
        let config = Config::parse(std::path::Path::new("herald.toml"), CONFIG).unwrap();
        Planner::new(&config).unwrap()
    }

    fn answer(rule: &str, verdict: &str) -> Answer {
        Answer {
            notice_key: "n1".into(),
            rule: rule.into(),
            event_id: "e1".into(),
            tenant: "7f3c2a10-4b6e-4d2a-9c1e-2f5a8b0d6e41".into(),
            account: "Adele.Vance@contoso.com".into(),
            subject: "Your password was reset".into(),
            verdict: verdict.into(),
            at: 1_765_000_000_000,
            client_ip: "203.0.113.9".into(),
            user_agent: "<script>alert(1)</script>".into(),
            summary: Some(NoticeSummary {
                headline: "Your password was reset".into(),
                activity: "Reset user password".into(),
                account_id: Some("ad7140d9-2cc2-4134-8bae-6b90ba3dede2".into()),
                ..NoticeSummary::default()
            }),
        }
    }

    #[test]
    fn not_me_queues_the_actions_and_tells_each_mailbox_and_each_chat_channel_once() {
        let planner = planner();
        let told: Vec<Notification> = planner
            .report_notices(&answer("reset", "not_me"))
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let on = |channel: &str| told.iter().filter(|n| n.channel == channel).count();
        assert_eq!(on("graph_action"), 2);
        // soc@ once, whatever its case; lead@; one card on Teams.
        assert_eq!(on("email"), 2);
        assert_eq!(on("soc-teams"), 1);
        let revoke = told
            .iter()
            .find(|n| n.rule == "action-revoke_sessions")
            .unwrap();
        let request: graph_action::Request = serde_json::from_slice(&revoke.message).unwrap();
        assert_eq!(request.action, Action::RevokeSessions);
        assert_eq!(
            request.user_id.as_deref(),
            Some("ad7140d9-2cc2-4134-8bae-6b90ba3dede2")
        );
        assert_eq!(revoke.format, Format::GraphAction);
        assert_eq!(
            revoke.subject,
            "Revoke the sign-in sessions of Adele.Vance@contoso.com"
        );
        // Every key is distinct, and the same answer posted again makes the same keys.
        let mut keys: Vec<_> = told.iter().map(|n| n.key.as_str().to_owned()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), told.len());
        let again: Vec<String> = planner
            .report_notices(&answer("reset", "not_me"))
            .into_iter()
            .map(|n| n.unwrap().key.as_str().to_owned())
            .collect();
        assert!(again.iter().all(|k| keys.contains(k)));
        // The card names the actions and carries the user agent as text, not markup.
        let card = told.iter().find(|n| n.channel == "soc-teams").unwrap();
        let card = String::from_utf8(card.message.clone()).unwrap();
        assert!(card.contains("Revoke the sign-in sessions of"), "{card}");
        assert!(card.contains("says this was not them"), "{card}");
        let mail = told.iter().find(|n| n.channel == "email").unwrap();
        assert!(!mail.html.contains("<script>"), "{}", mail.html);
    }

    #[test]
    fn this_was_me_sets_nothing_off_and_a_rule_can_say_no_actions() {
        let planner = planner();
        assert!(planner.report_notices(&answer("reset", "me")).is_empty());
        let quiet: Vec<Notification> = planner
            .report_notices(&answer("quiet", "not_me"))
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert!(quiet.iter().all(|n| n.channel != "graph_action"));
        assert_eq!(quiet.len(), 3);
    }
}

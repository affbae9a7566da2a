//! "This wasn't me": the signed link in every notice to an account's owner ([`link`]) and the
//! pages behind it ([`page`]), served by the public listener (`crate::web::public`); the owner's
//! answer is kept in the store's `reports` table and told to the SOC (`[report]`,
//! ARCHITECTURE.md §2.9).

use serde::Deserialize;

pub mod link;
pub mod page;

/// `[report]`: who hears of an owner's answer, and what follows an "I did not do this".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Addresses and `group:NAME`s told of every "I did not do this".
    #[serde(default)]
    pub notify: Vec<String>,
    /// The channels they are told on (any kind: mail, Teams, Slack, webhook); default
    /// `["email"]`.
    #[serde(default = "default_channels")]
    pub channels: Vec<String>,
    /// Also tell them of every "This was me".
    #[serde(default)]
    pub notify_confirmed: bool,
    /// The response actions an "I did not do this" sets off (a rule's `report_actions` takes
    /// their place for its notices).
    #[serde(default)]
    pub actions: Vec<crate::channel::graph_action::Action>,
    /// The `[microsoft.NAME]` registration the actions are performed with.
    #[serde(default)]
    pub app: Option<String>,
}

fn default_channels() -> Vec<String> {
    vec!["email".to_owned()]
}

/// What the notice a report is about said, kept with it in the outbox (`summary`) so that the
/// SOC's notice can repeat it: the notice's headline and facts, and who did it from where.
#[derive(Debug, Clone, Default, serde::Serialize, Deserialize)]
pub struct NoticeSummary {
    pub headline: String,
    #[serde(default)]
    pub facts: Vec<String>,
    pub activity: String,
    /// When the event happened (Unix ms).
    pub event_time: i64,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub initiator: Option<String>,
    #[serde(default)]
    pub ip: Option<String>,
    /// The account's object id and UPN, for the response actions (never shown).
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub account_upn: Option<String>,
    /// The event's tenant, as the record named it (or its source knew it).
    #[serde(default)]
    pub tenant: Option<String>,
}

/// An owner's answer, as the SOC's notice tells it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub notice_key: String,
    /// The rule of the answered notice.
    pub rule: String,
    pub event_id: String,
    pub tenant: String,
    pub account: String,
    /// The answered notice's subject.
    pub subject: String,
    /// `not_me` or `me`.
    pub verdict: String,
    /// When it was answered (Unix ms).
    pub at: i64,
    pub client_ip: String,
    pub user_agent: String,
    pub summary: Option<NoticeSummary>,
}

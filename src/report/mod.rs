//! "This wasn't me": the signed link in every notice to an account's owner ([`link`]) and the
//! pages behind it ([`page`]), served by the public listener (`crate::web::public`); the owner's
//! answer is kept in the store's `reports` table and told to the SOC (`[report]`,
//! ARCHITECTURE.md §2.9).

use serde::Deserialize;

pub mod link;
pub mod page;

/// `[report]`: who hears of an owner's answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Addresses and `group:NAME`s told of every "I did not do this".
    #[serde(default)]
    pub notify: Vec<String>,
    /// The channels they are told on (mail channels: `file`, `smtp`, `graph_mail`); default
    /// `["email"]`.
    #[serde(default = "default_channels")]
    pub channels: Vec<String>,
    /// Also tell them of every "This was me".
    #[serde(default)]
    pub notify_confirmed: bool,
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
}

/// An owner's answer, as the SOC's notice tells it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub notice_key: String,
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

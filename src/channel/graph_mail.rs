//! `kind = "graph_mail"`: Microsoft 365 mail through Microsoft Graph
//! (`POST /v1.0/users/{sender}/sendMail`) with an app registration's OAuth token, for tenants
//! where SMTP basic authentication is switched off.
//!
//! The message JSON (subject, HTML body, recipient, importance, and the notification key as an
//! `X-Herald-Key` internet header) is rendered when the notification is planned; this channel
//! adds `saveToSentItems` and delivers it; `202` is delivered, and Graph's other replies are
//! classified as for every Graph channel (`super::graph`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::{Channel, Outgoing, ProbeFuture, SendError, SendFuture};
use crate::msgraph::Tokens;
use crate::values::duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphMailConfig {
    /// The `[microsoft.NAME]` registration to send as.
    pub app: String,
    /// The mailbox messages are sent from (its address or object id).
    pub sender: String,
    /// Keep a copy in the sender's Sent Items (default false: a notification mailbox would
    /// fill with them).
    #[serde(default)]
    pub save_to_sent_items: bool,
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_concurrency() -> usize {
    4
}

pub(super) struct GraphMail {
    http: reqwest::Client,
    tokens: Arc<Tokens>,
    url: reqwest::Url,
    save: bool,
}

impl GraphMail {
    pub fn new(
        config: &GraphMailConfig,
        apps: &std::collections::BTreeMap<String, crate::msgraph::MicrosoftApp>,
        base: &Path,
    ) -> Result<GraphMail, String> {
        let connection = super::graph::connect(&config.app, apps, base, config.timeout)?;
        let url = connection
            .app
            .graph_url(&["users", &config.sender, "sendMail"])?;
        Ok(GraphMail {
            http: connection.http,
            tokens: connection.tokens,
            url,
            save: config.save_to_sent_items,
        })
    }

    async fn post(&self, body: &[u8]) -> Result<String, SendError> {
        super::graph::call(&self.tokens, "Graph sendMail", "Mail.Send", |token| {
            self.http
                .post(self.url.clone())
                .bearer_auth(token)
                .header("Content-Type", "application/json")
                .body(body.to_vec())
        })
        .await
    }
}

impl Channel for GraphMail {
    fn probe(&self) -> ProbeFuture<'_> {
        super::graph::probe(&self.tokens)
    }

    fn send<'a>(&'a self, message: Outgoing<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            if let Some(not_begun) = message.must_not_begin("the request") {
                return Err(not_begun);
            }
            let message_json = std::str::from_utf8(message.message)
                .map_err(|_| SendError::Permanent("the queued message is not JSON".to_owned()))?;
            let body = format!(
                "{{\"message\":{message_json},\"saveToSentItems\":{}}}",
                self.save
            );
            self.post(body.as_bytes()).await
        })
    }
}

//! Channels: where notifications go, one file per kind, one trait.
//!
//! A channel takes one rendered message for one recipient and either delivers it or says why
//! not, as a *type*: [`SendError::Transient`] is retried with backoff, [`SendError::Permanent`]
//! fails the notification at once (ARCHITECTURE.md §2.4), and [`SendError::Unavailable`] says
//! the channel itself cannot deliver anything now, so the dispatcher pauses it (§8). Channels
//! never decode, plan or touch the store.

mod file;
mod graph;
pub mod graph_action;
mod graph_mail;
mod smtp;
mod webhook;

pub use file::FileConfig;
pub use graph_action::GraphActionConfig;
pub use graph_mail::GraphMailConfig;
pub use smtp::{SmtpConfig, TlsMode};
pub use webhook::{ChatConfig, WebhookConfig, signature};

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use serde::Deserialize;

/// One `[channel.NAME]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ChannelConfig {
    /// Mail through an SMTP relay.
    Smtp(SmtpConfig),
    /// Each message written as an `.eml` file into a directory.
    File(FileConfig),
    /// Each notification `POST`ed as JSON.
    Webhook(WebhookConfig),
    /// Microsoft 365 mail through Microsoft Graph.
    #[serde(rename = "graph_mail")]
    GraphMail(GraphMailConfig),
    /// An Adaptive Card to a Teams Workflows webhook.
    Teams(ChatConfig),
    /// Block Kit blocks to a Slack incoming webhook.
    Slack(ChatConfig),
    /// The response actions of `[report] actions` through Microsoft Graph: never written as a
    /// `[channel.NAME]`, added as `graph_action` when actions are configured.
    #[serde(skip)]
    GraphAction(GraphActionConfig),
}

/// What a channel delivers, rendered when a notification is planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// An RFC 5322 message (`smtp`, `file`).
    Email,
    /// Herald's JSON payload (`webhook`).
    Json,
    /// A Graph `message` object (`graph_mail`).
    GraphMessage,
    /// A Teams message with an Adaptive Card (`teams`).
    TeamsCard,
    /// A Slack message with Block Kit blocks (`slack`).
    SlackMessage,
    /// A response action ([`graph_action::Request`], `graph_action`).
    GraphAction,
}

impl Format {
    /// The file extension a rendered message of this format takes.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Email => "eml",
            Format::Json
            | Format::GraphMessage
            | Format::TeamsCard
            | Format::SlackMessage
            | Format::GraphAction => "json",
        }
    }
}

impl ChannelConfig {
    /// The sender of this channel's messages, as written; `None` for a channel that sends no
    /// mail (its notifications are rendered as JSON).
    pub fn from(&self) -> Option<&str> {
        match self {
            ChannelConfig::Smtp(c) => Some(&c.from),
            ChannelConfig::File(c) => Some(&c.from),
            ChannelConfig::Webhook(_)
            | ChannelConfig::GraphMail(_)
            | ChannelConfig::Teams(_)
            | ChannelConfig::Slack(_)
            | ChannelConfig::GraphAction(_) => None,
        }
    }

    /// What this channel's notifications are rendered as.
    pub fn format(&self) -> Format {
        match self {
            ChannelConfig::Smtp(_) | ChannelConfig::File(_) => Format::Email,
            ChannelConfig::Webhook(_) => Format::Json,
            ChannelConfig::GraphMail(_) => Format::GraphMessage,
            ChannelConfig::Teams(_) => Format::TeamsCard,
            ChannelConfig::Slack(_) => Format::SlackMessage,
            ChannelConfig::GraphAction(_) => Format::GraphAction,
        }
    }

    /// The operator's JSON template for this channel's payload, if it has one (`webhook`,
    /// `teams`, `slack`); otherwise the built-in one is used.
    pub fn template(&self) -> Option<&Path> {
        match self {
            ChannelConfig::Webhook(c) => c.template.as_deref(),
            ChannelConfig::Teams(c) | ChannelConfig::Slack(c) => c.template.as_deref(),
            ChannelConfig::Smtp(_)
            | ChannelConfig::File(_)
            | ChannelConfig::GraphMail(_)
            | ChannelConfig::GraphAction(_) => None,
        }
    }

    /// How many messages this channel may have in flight at once.
    pub fn concurrency(&self) -> usize {
        match self {
            ChannelConfig::Smtp(c) => c.concurrency,
            ChannelConfig::File(c) => c.concurrency,
            ChannelConfig::Webhook(c) => c.concurrency,
            ChannelConfig::GraphMail(c) => c.concurrency,
            ChannelConfig::Teams(c) | ChannelConfig::Slack(c) => c.concurrency,
            ChannelConfig::GraphAction(c) => c.concurrency,
        }
        .max(1)
    }

    /// What bounds one send on this channel, for channels that talk to a server.
    pub fn timeout(&self) -> Option<std::time::Duration> {
        match self {
            ChannelConfig::Smtp(c) => Some(c.timeout),
            ChannelConfig::File(_) => None,
            ChannelConfig::Webhook(c) => Some(c.timeout),
            ChannelConfig::GraphMail(c) => Some(c.timeout),
            ChannelConfig::Teams(c) | ChannelConfig::Slack(c) => Some(c.timeout),
            ChannelConfig::GraphAction(c) => Some(c.timeout),
        }
    }
}

/// One message for one recipient, as queued.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub key: &'a str,
    pub recipient: &'a str,
    /// The full RFC 5322 message.
    pub message: &'a [u8],
    /// The last moment the message may begin to be handed over: past it, the claim's lease
    /// may be taken over by another instance, so the channel returns [`SendError::NotBegun`]
    /// instead. Checked as late as possible (after connecting), so a process frozen meanwhile
    /// does not send what another instance has already sent.
    pub begin_by: std::time::Instant,
    /// Cancelled when Herald is stopping: a send that has not begun by then is not begun (its
    /// row stays pending for the next run); one in flight finishes within its timeout.
    pub stop: &'a tokio_util::sync::CancellationToken,
}

impl Outgoing<'_> {
    /// Why the message must not begin to be handed over now, if it must not: the claim's time
    /// to begin ran out, or Herald is stopping. `what` names what would begin ("the request").
    /// Channels ask as late as they can, right before the first byte of the message goes out.
    pub fn must_not_begin(&self, what: &str) -> Option<SendError> {
        if self.stop.is_cancelled() {
            Some(SendError::NotBegun(format!(
                "Herald is stopping; {what} was not begun"
            )))
        } else if std::time::Instant::now() >= self.begin_by {
            Some(SendError::NotBegun(format!(
                "the claim ran short before {what} could begin"
            )))
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: the network, a timeout, SMTP 4xx, HTTP 429/5xx.
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help: SMTP 5xx, a refused recipient, HTTP 4xx.
    #[error("{0}")]
    Permanent(String),
    /// Nothing was handed over: the claim's time to begin ran out, or Herald is stopping (see
    /// [`Outgoing::must_not_begin`]).
    #[error("{0}")]
    NotBegun(String),
    /// Nothing was handed over, and nothing could be: the channel's server refused the
    /// connection itself (an SMTP greeting `554`, `AUTH` `535`, a failed TLS handshake, no
    /// answer at all). The message is not at fault: the dispatcher pauses the channel, keeps its
    /// messages pending without counting an attempt, and probes until it works again.
    /// `cause` is a short description without host names or replies, fit for `/readyz`;
    /// `error` is the full reason, for the log and the outbox.
    #[error("{error}")]
    Unavailable { cause: String, error: String },
    /// Worth retrying, but not before `after` (HTTP 429/503 with `Retry-After`).
    #[error("{error} (retry after {after:?})")]
    Throttled {
        error: String,
        after: std::time::Duration,
    },
}

/// A send: the receiving server's reply when it accepted the message (`250 2.0.0 Ok: queued
/// as …`, `HTTP 202 Accepted`), recorded with the attempt (ARCHITECTURE.md §7).
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<String, SendError>> + Send + 'a>>;

/// A probe of a paused channel.
pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// A destination for notifications.
pub trait Channel: Send + Sync {
    fn send<'a>(&'a self, message: Outgoing<'a>) -> SendFuture<'a>;

    /// Whether the channel can deliver again after it answered [`SendError::Unavailable`]:
    /// as much of a delivery as can be done without a message (for SMTP: connect, greet, TLS,
    /// authenticate). Channels that never answer `Unavailable` have nothing to probe.
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async { Ok(()) })
    }
}

/// Builds every configured channel; `base` anchors relative paths. Errors name the channel.
pub fn build_all(
    configs: &BTreeMap<String, ChannelConfig>,
    apps: &BTreeMap<String, crate::msgraph::MicrosoftApp>,
    base: &Path,
) -> Result<BTreeMap<String, Arc<dyn Channel>>, String> {
    configs
        .iter()
        .map(|(name, config)| {
            let channel: Arc<dyn Channel> = match config {
                ChannelConfig::Smtp(c) => {
                    Arc::new(smtp::Smtp::new(c, base).map_err(|e| format!("channel.{name}: {e}"))?)
                }
                ChannelConfig::File(c) => Arc::new(
                    file::FileDrop::new(c, base).map_err(|e| format!("channel.{name}: {e}"))?,
                ),
                ChannelConfig::Webhook(c) => Arc::new(
                    webhook::Webhook::new(c, base).map_err(|e| format!("channel.{name}: {e}"))?,
                ),
                ChannelConfig::Teams(c) | ChannelConfig::Slack(c) => Arc::new(
                    webhook::Webhook::chat(c, base).map_err(|e| format!("channel.{name}: {e}"))?,
                ),
                ChannelConfig::GraphMail(c) => Arc::new(
                    graph_mail::GraphMail::new(c, apps, base)
                        .map_err(|e| format!("channel.{name}: {e}"))?,
                ),
                ChannelConfig::GraphAction(c) => Arc::new(
                    graph_action::GraphAction::new(c, apps, base)
                        .map_err(|e| format!("report.app: {e}"))?,
                ),
            };
            Ok((name.clone(), channel))
        })
        .collect()
}

/// The longest `Retry-After` Herald honours: a receiver asking for more (or for `u64::MAX`
/// seconds, which would overflow a deadline) is asked again after this.
pub(crate) const RETRY_AFTER_CAP: std::time::Duration = std::time::Duration::from_secs(3600);

/// An HTTP `Retry-After` given in seconds (the form Graph, Teams and Slack use), capped at
/// [`RETRY_AFTER_CAP`].
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<std::time::Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| std::time::Duration::from_secs(s).min(RETRY_AFTER_CAP))
}

/// The HTTP client every HTTP channel, the Graph source and the token client start from. It
/// follows no redirects: reqwest would turn a `301`/`302` POST into a body-less GET, whose
/// `2xx` would mark a notice sent that nobody received, and a `307`/`308` to another host would
/// carry the channel's headers (secrets) there. It sends no `Referer`.
pub(crate) fn http_client(timeout: std::time::Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
}

/// A redirect answer, as a permanent failure that keeps where it pointed: the channel's URL
/// should be the final address.
pub(crate) fn redirected(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
) -> Option<SendError> {
    if !status.is_redirection() {
        return None;
    }
    let location: String = headers
        .get(reqwest::header::LOCATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_else(|| "(no Location)".to_owned())
        .chars()
        .take(300)
        .filter(|c| !c.is_control())
        .collect();
    Some(SendError::Permanent(format!(
        "HTTP {status}: redirected to {location}; Herald follows no redirects, so set the channel's URL to the final address"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, LOCATION, RETRY_AFTER};

    #[test]
    fn a_huge_retry_after_is_capped() {
        let mut headers = HeaderMap::new();
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("18446744073709551615"),
        );
        assert_eq!(retry_after(&headers), Some(RETRY_AFTER_CAP));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(
            retry_after(&headers),
            Some(std::time::Duration::from_secs(7))
        );
    }

    #[test]
    fn a_redirect_is_permanent_and_keeps_its_location() {
        let mut headers = HeaderMap::new();
        headers.insert(
            LOCATION,
            HeaderValue::from_static("https://elsewhere.example/hook"),
        );
        let Some(SendError::Permanent(why)) = redirected(reqwest::StatusCode::FOUND, &headers)
        else {
            panic!("a 302 is a permanent failure")
        };
        assert!(
            why.starts_with("HTTP 302 Found: redirected to https://elsewhere.example/hook"),
            "{why}"
        );
        assert!(redirected(reqwest::StatusCode::OK, &headers).is_none());
    }
}

//! `kind = "graph_mail"`: Microsoft 365 mail through Microsoft Graph
//! (`POST /v1.0/users/{sender}/sendMail`) with an app registration's OAuth token, for tenants
//! where SMTP basic authentication is switched off.
//!
//! The message JSON (subject, HTML body, recipient, importance, and the notification key as an
//! `X-Herald-Key` internet header) is rendered when the notification is planned; this channel
//! adds `saveToSentItems` and delivers it. Replies: `202` is delivered. `401` renews the token
//! once and tries again. `429`, `503` and `504` are retried no sooner than their `Retry-After`;
//! other 5xx and no reply are retried with backoff; any other 4xx fails at once, keeping Graph's
//! error code and message.

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
        let app = apps
            .get(&config.app)
            .ok_or_else(|| format!("app: no [microsoft.{}] table", config.app))?;
        let http = super::http_client(config.timeout)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let tokens = Tokens::new(app, base, http.clone())
            .map_err(|e| format!("microsoft.{}: {e}", config.app))?;
        let url = app.graph_url(&["users", &config.sender, "sendMail"])?;
        Ok(GraphMail {
            http,
            tokens: Arc::new(tokens),
            url,
            save: config.save_to_sent_items,
        })
    }

    async fn post(&self, body: &[u8]) -> Result<String, SendError> {
        let mut renewed = false;
        loop {
            let token = self.tokens.token().await.map_err(no_token)?;
            let response = self
                .http
                .post(self.url.clone())
                .bearer_auth(token.expose())
                .header("Content-Type", "application/json")
                .body(body.to_vec())
                .send()
                .await
                .map_err(|e| {
                    SendError::Transient(format!(
                        "Graph sendMail: {}",
                        if e.is_timeout() {
                            "no reply in time"
                        } else {
                            "cannot reach Graph"
                        }
                    ))
                })?;
            let status = response.status();
            if let Some(error) = super::redirected(status, response.headers()) {
                return Err(error);
            }
            let retry_after = super::retry_after(response.headers());
            // Graph's id of the request, which Microsoft's support asks for.
            let request_id: Option<String> = response
                .headers()
                .get("request-id")
                .and_then(|v| v.to_str().ok())
                .map(|id| id.chars().take(64).collect());
            let answer = response.text().await.unwrap_or_default();
            if status.as_u16() == 401 && !renewed {
                tracing::info!("Graph refused the access token; renewing it once");
                self.tokens.reject(&token).await;
                renewed = true;
                continue;
            }
            return classify(status, retry_after, &answer).map(|reply| match request_id {
                Some(id) => format!("{reply} (request-id {id})"),
                None => reply,
            });
        }
    }
}

/// What Graph's reply means for the notification.
pub(super) fn classify(
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
    answer: &str,
) -> Result<String, SendError> {
    if status.is_success() {
        return Ok(format!("HTTP {status}"));
    }
    #[derive(Deserialize)]
    struct Answer {
        error: GraphError,
    }
    #[derive(Deserialize)]
    struct GraphError {
        code: String,
        message: String,
    }
    let why = match serde_json::from_str::<Answer>(answer) {
        Ok(a) => format!("{}: {}", a.error.code, a.error.message),
        Err(_) => answer
            .chars()
            .take(300)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
    };
    let error = format!("Graph sendMail: HTTP {status}: {}", why.trim());
    match status.as_u16() {
        429 | 503 | 504 => Err(match retry_after {
            Some(after) => SendError::Throttled { error, after },
            None => SendError::Transient(error),
        }),
        408 | 500..=599 => Err(SendError::Transient(error)),
        _ => Err(SendError::Permanent(error)),
    }
}

/// The identity platform issued no token (a secret expired or revoked, an app deleted, the
/// endpoint unreachable): no message can go until it does, so the channel pauses (ARCHITECTURE.md
/// §8) rather than spend every notice's attempts on it.
fn no_token(error: String) -> SendError {
    SendError::Unavailable {
        cause: "the identity platform issued no access token".to_owned(),
        error,
    }
}

impl Channel for GraphMail {
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async move { self.tokens.token().await.map(|_| ()).map_err(no_token) })
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

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn graph_replies_are_classified_with_its_error_code() {
        assert!(classify(StatusCode::ACCEPTED, None, "").is_ok());
        let throttled = classify(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(7)),
            r#"{"error":{"code":"ApplicationThrottled","message":"Too many requests"}}"#,
        );
        let Err(SendError::Throttled { error, after }) = throttled else {
            panic!("429 with Retry-After is throttled")
        };
        assert_eq!(after, Duration::from_secs(7));
        assert!(
            error.contains("ApplicationThrottled: Too many requests"),
            "{error}"
        );
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, None, "oops"),
            Err(SendError::Transient(_))
        ));
        let Err(SendError::Permanent(e)) = classify(
            StatusCode::BAD_REQUEST,
            None,
            r#"{"error":{"code":"ErrorInvalidRecipients","message":"At least one recipient is not valid."}}"#,
        ) else {
            panic!("400 is permanent")
        };
        assert_eq!(
            e,
            "Graph sendMail: HTTP 400 Bad Request: ErrorInvalidRecipients: At least one recipient is not valid."
        );
    }
}

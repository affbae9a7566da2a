//! `kind = "webhook"`: each notification `POST`ed as JSON to a URL (a SOAR, a ticketing system,
//! an automation flow). The payload is rendered when the notification is planned (Herald's
//! built-in schema, see `plan::payload`); this channel only delivers it.
//!
//! Every request carries `X-Herald-Key` (the notification key: a receiver can drop a resend)
//! and, with a `secret`, `X-Herald-Signature: t=UNIX,v1=HEX` where HEX is HMAC-SHA256 of
//! `"{t}.{body}"` under the secret, so a receiver can check who sent it and when. Replies: 2xx is
//! delivered; 408, 429 and 5xx (and no reply) are retried; any other status fails at once, with
//! the status and the start of the receiver's answer kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use sha2::Sha256;

use super::{Channel, Outgoing, SendError, SendFuture};
use crate::values::{Secret, SecretSource, duration};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to `POST`; a secret, since webhook URLs often carry their token.
    pub url: SecretSource,
    /// Key for `X-Herald-Signature`; without it, requests are not signed.
    pub secret: Option<SecretSource>,
    /// More request headers (e.g. `Authorization`); values are secrets.
    #[serde(default)]
    pub headers: BTreeMap<String, SecretSource>,
    /// A JSON template for the body instead of Herald's built-in schema.
    pub template: Option<PathBuf>,
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

/// `kind = "teams"` and `kind = "slack"`: a chat platform's incoming webhook, which takes the
/// card Herald renders for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatConfig {
    /// The webhook URL; a secret (anyone holding it can post to the channel).
    pub url: SecretSource,
    /// A JSON template for the card (Teams: the Adaptive Card; Slack: the message) instead of
    /// the built-in one.
    pub template: Option<PathBuf>,
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

fn default_timeout() -> Duration {
    Duration::from_secs(15)
}

fn default_concurrency() -> usize {
    4
}

pub(super) struct Webhook {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: Option<Secret>,
}

impl Webhook {
    /// A chat platform's webhook: no signature, no extra headers.
    pub fn chat(config: &ChatConfig, base: &Path) -> Result<Webhook, String> {
        Webhook::new(
            &WebhookConfig {
                url: config.url.clone(),
                secret: None,
                headers: BTreeMap::new(),
                template: None,
                timeout: config.timeout,
                concurrency: config.concurrency,
            },
            base,
        )
    }

    /// Resolves the secrets and checks the URL and headers; errors never show a secret.
    pub fn new(config: &WebhookConfig, base: &Path) -> Result<Webhook, String> {
        let url = config.url.resolve(base).map_err(|e| format!("url: {e}"))?;
        let url = reqwest::Url::parse(url.expose())
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some())
            .ok_or("url: not an http(s) URL with a host")?;
        let secret = match &config.secret {
            Some(s) => Some(s.resolve(base).map_err(|e| format!("secret: {e}"))?),
            None => None,
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let value = value
                .resolve(base)
                .map_err(|e| format!("headers.{name}: {e}"))?;
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("headers.{name}: not a header name"))?;
            let mut value = HeaderValue::from_str(value.expose())
                .map_err(|_| format!("headers.{name}: not a header value"))?;
            value.set_sensitive(true);
            headers.insert(header, value);
        }
        let client = super::http_client(config.timeout)
            .default_headers(headers)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Webhook {
            client,
            url,
            secret,
        })
    }
}

/// `t=UNIX,v1=HEX`: HMAC-SHA256 of `"{t}.{body}"` under `secret`.
pub fn signature(secret: &[u8], unix: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(unix.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={unix},v1={hex}")
}

/// What a reply means for the notification; a `Retry-After` (in seconds) on a 429 or 503 is
/// honoured.
pub(super) fn classify(
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
    body: &str,
) -> Result<String, SendError> {
    if status.is_success() {
        return Ok(format!("HTTP {status}"));
    }
    let answer: String = body
        .chars()
        .take(300)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let error = format!("HTTP {status}: {}", answer.trim());
    if let (429 | 503, Some(after)) = (status.as_u16(), retry_after) {
        Err(SendError::Throttled { error, after })
    } else if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() {
        Err(SendError::Transient(error))
    } else {
        Err(SendError::Permanent(error))
    }
}

impl Channel for Webhook {
    fn send<'a>(&'a self, message: Outgoing<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            if let Some(not_begun) = message.must_not_begin("the request") {
                return Err(not_begun);
            }
            let mut request = self
                .client
                .post(self.url.clone())
                .header("Content-Type", "application/json")
                .header("X-Herald-Key", message.key)
                .body(message.message.to_vec());
            if let Some(secret) = &self.secret {
                let now = jiff::Timestamp::now().as_second();
                request = request.header(
                    "X-Herald-Signature",
                    signature(secret.expose().as_bytes(), now, message.message),
                );
            }
            // reqwest's errors can name the URL, which may hold a token: say only what failed.
            let response = request.send().await.map_err(|e| {
                let what = if e.is_timeout() {
                    "no reply in time"
                } else if e.is_connect() {
                    "cannot connect"
                } else {
                    "the request failed"
                };
                SendError::Transient(format!("webhook: {what}"))
            })?;
            let status = response.status();
            if let Some(error) = super::redirected(status, response.headers()) {
                return Err(error);
            }
            let retry_after = super::retry_after(response.headers());
            let body = response.text().await.unwrap_or_default();
            classify(status, retry_after, &body)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_time_dot_body() {
        // The value Python's hmac module gives for the same key and message.
        let s = signature(b"key", 1_700_000_000, b"{}");
        assert_eq!(
            s,
            "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
        assert_ne!(s, signature(b"key", 1_700_000_001, b"{}"));
        assert_ne!(s, signature(b"other", 1_700_000_000, b"{}"));
    }

    #[test]
    fn replies_are_classified() {
        use reqwest::StatusCode;
        assert!(classify(StatusCode::ACCEPTED, None, "").is_ok());
        for transient in [408, 429, 500, 502, 503, 504] {
            let status = StatusCode::from_u16(transient).unwrap();
            assert!(matches!(
                classify(status, None, "busy"),
                Err(SendError::Transient(_))
            ));
        }
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(30)), ""),
            Err(SendError::Throttled { after, .. }) if after == Duration::from_secs(30)
        ));
        let Err(SendError::Permanent(e)) = classify(StatusCode::BAD_REQUEST, None, "bad\nfield x")
        else {
            panic!("400 is permanent")
        };
        assert_eq!(e, "HTTP 400 Bad Request: bad field x");
    }
}

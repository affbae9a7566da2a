//! What the Graph channels (`graph_mail`, `graph_action`) share: one request with the app's
//! token — renewed once when Graph answers `401` — and what Graph's reply means.
//!
//! Replies: `2xx` is done. `429`, `503` and `504` are retried no sooner than their
//! `Retry-After`; other 5xx, `408` and no reply are retried with backoff; any other 4xx fails at
//! once, keeping Graph's error code and message (ARCHITECTURE.md §2.4).

use std::time::Duration;

use serde::Deserialize;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::{ProbeFuture, SendError};
use crate::msgraph::{MicrosoftApp, Tokens};

/// What a Graph channel is built from: the `[microsoft.NAME]` registration `app`, an HTTP
/// client bounded by `timeout`, and the registration's tokens.
pub(super) struct Connection<'a> {
    pub app: &'a MicrosoftApp,
    pub http: reqwest::Client,
    pub tokens: Arc<Tokens>,
}

pub(super) fn connect<'a>(
    app: &str,
    apps: &'a BTreeMap<String, MicrosoftApp>,
    base: &Path,
    timeout: Duration,
) -> Result<Connection<'a>, String> {
    let registration = apps
        .get(app)
        .ok_or_else(|| format!("app: no [microsoft.{app}] table"))?;
    let http = super::http_client(timeout)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let tokens = Tokens::new(registration, base, http.clone())
        .map_err(|e| format!("microsoft.{app}: {e}"))?;
    Ok(Connection {
        app: registration,
        http,
        tokens: Arc::new(tokens),
    })
}

/// A paused Graph channel works again once the identity platform issues a token.
pub(super) fn probe(tokens: &Tokens) -> ProbeFuture<'_> {
    Box::pin(async move { tokens.token().await.map(|_| ()).map_err(no_token) })
}

/// Sends the request `build` makes (given a bearer token) and classifies the reply; `what`
/// names the call in errors ("Graph sendMail"), and `permission` the Graph permission the app
/// needs for it, said with a `403`. The reply keeps Graph's `request-id`, which Microsoft's
/// support asks for.
pub(super) async fn call(
    tokens: &Tokens,
    what: &str,
    permission: &str,
    build: impl Fn(&str) -> reqwest::RequestBuilder,
) -> Result<String, SendError> {
    exchange(tokens, what, permission, build)
        .await
        .map(|(reply, _)| reply)
}

/// As [`call`], with the body of a successful answer (Graph's JSON).
pub(super) async fn exchange(
    tokens: &Tokens,
    what: &str,
    permission: &str,
    build: impl Fn(&str) -> reqwest::RequestBuilder,
) -> Result<(String, String), SendError> {
    let mut renewed = false;
    loop {
        let token = tokens.token().await.map_err(no_token)?;
        let response = build(token.expose()).send().await.map_err(|e| {
            SendError::Transient(format!(
                "{what}: {}",
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
        let request_id: Option<String> = response
            .headers()
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(|id| id.chars().take(64).collect());
        let answer = response.text().await.unwrap_or_default();
        if status.as_u16() == 401 && !renewed {
            tracing::info!("Graph refused the access token; renewing it once");
            tokens.reject(&token).await;
            renewed = true;
            continue;
        }
        let outcome = classify(what, status, retry_after, &answer);
        return match (outcome, request_id) {
            (Err(SendError::Permanent(error)), _) if status.as_u16() == 403 => {
                Err(SendError::Permanent(format!(
                    "{error} — the app needs the Graph application permission {permission}, with an administrator's consent"
                )))
            }
            (Ok(reply), Some(id)) => Ok((format!("{reply} (request-id {id})"), answer)),
            (outcome, _) => outcome.map(|reply| (reply, answer)),
        };
    }
}

/// What Graph's reply means for the row.
pub(super) fn classify(
    what: &str,
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
        Err(_) => answer.chars().take(300).collect(),
    };
    let why: String = why
        .chars()
        .take(500)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let error = format!("{what}: HTTP {status}: {}", why.trim());
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
/// endpoint unreachable): nothing can go until it does, so the channel pauses (ARCHITECTURE.md
/// §8) rather than spend every row's attempts on it.
pub(super) fn no_token(error: String) -> SendError {
    SendError::Unavailable {
        cause: "the identity platform issued no access token".to_owned(),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn graph_replies_are_classified_with_its_error_code() {
        let what = "Graph sendMail";
        assert!(classify(what, StatusCode::ACCEPTED, None, "").is_ok());
        let throttled = classify(
            what,
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
            classify(what, StatusCode::BAD_GATEWAY, None, "oops"),
            Err(SendError::Transient(_))
        ));
        let Err(SendError::Permanent(e)) = classify(
            what,
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
        // A reply with control characters keeps none of them.
        let Err(SendError::Permanent(e)) =
            classify(what, StatusCode::FORBIDDEN, None, "no\r\nway\u{1b}[0m")
        else {
            panic!("403 is permanent")
        };
        assert!(!e.chars().any(char::is_control), "{e:?}");
    }
}

//! Microsoft identity for Graph: an app registration (`[microsoft.NAME]`) and the OAuth 2.0
//! client-credentials tokens it gets from the Microsoft identity platform, cached and renewed
//! before they expire. Used by the `graph_mail` channel (and later the Graph audit source).
//!
//! Authority and Graph base URLs are configurable, for national clouds and for tests, which
//! point them at a local server speaking Microsoft's documented formats.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::{Secret, SecretSource};

/// `[microsoft.NAME]`: one app registration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MicrosoftApp {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: Option<SecretSource>,
    /// A certificate credential (signed JWT client assertion): not supported yet.
    pub certificate_path: Option<std::path::PathBuf>,
    #[serde(default = "default_authority")]
    pub authority: String,
    #[serde(default = "default_graph")]
    pub graph: String,
}

fn default_authority() -> String {
    "https://login.microsoftonline.com".to_owned()
}

fn default_graph() -> String {
    "https://graph.microsoft.com".to_owned()
}

impl MicrosoftApp {
    /// What is wrong with this registration as written, if anything.
    pub fn problem(&self) -> Option<String> {
        if self.certificate_path.is_some() {
            return Some(
                "certificate_path: certificate credentials are not supported yet; use client_secret"
                    .to_owned(),
            );
        }
        if self.client_secret.is_none() {
            return Some("client_secret is required".to_owned());
        }
        for (key, url) in [("authority", &self.authority), ("graph", &self.graph)] {
            if reqwest::Url::parse(url)
                .ok()
                .filter(|u| matches!(u.scheme(), "https" | "http"))
                .is_none()
            {
                return Some(format!("{key}: {url:?} is not an http(s) URL"));
            }
        }
        None
    }

    /// `{graph}/v1.0/` followed by `segments`, each percent-encoded as one path segment.
    pub fn graph_url(&self, segments: &[&str]) -> Result<reqwest::Url, String> {
        let mut url =
            reqwest::Url::parse(&self.graph).map_err(|e| format!("graph {:?}: {e}", self.graph))?;
        url.path_segments_mut()
            .map_err(|_| format!("graph {:?}: not a base URL", self.graph))?
            .pop_if_empty()
            .push("v1.0")
            .extend(segments);
        Ok(url)
    }
}

/// Tokens for one app registration, shared by every channel and source that uses it.
pub struct Tokens {
    http: reqwest::Client,
    url: reqwest::Url,
    client_id: String,
    secret: Secret,
    scope: String,
    cached: Mutex<Option<(Secret, Instant)>>,
}

/// Renew a token this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);

impl Tokens {
    pub fn new(app: &MicrosoftApp, base: &Path, http: reqwest::Client) -> Result<Tokens, String> {
        if let Some(problem) = app.problem() {
            return Err(problem);
        }
        let secret = app
            .client_secret
            .as_ref()
            .expect("checked")
            .resolve(base)
            .map_err(|e| format!("client_secret: {e}"))?;
        let mut url = reqwest::Url::parse(&app.authority)
            .map_err(|e| format!("authority {:?}: {e}", app.authority))?;
        url.path_segments_mut()
            .map_err(|_| format!("authority {:?}: not a base URL", app.authority))?
            .pop_if_empty()
            .extend([app.tenant_id.as_str(), "oauth2", "v2.0", "token"]);
        Ok(Tokens {
            http,
            url,
            client_id: app.client_id.clone(),
            secret,
            scope: format!("{}/.default", app.graph.trim_end_matches('/')),
            cached: Mutex::new(None),
        })
    }

    /// A token valid for a while yet: the cached one, or a new one.
    pub async fn token(&self) -> Result<Secret, String> {
        let mut cached = self.cached.lock().await;
        if let Some((token, renew_at)) = cached.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.fetch().await?;
        let renew_at = Instant::now() + lifetime.saturating_sub(RENEW_BEFORE);
        *cached = Some((token.clone(), renew_at));
        Ok(token)
    }

    /// Forgets `rejected` (Graph answered 401 to it), so the next call gets a new token.
    pub async fn reject(&self, rejected: &Secret) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|(t, _)| t == rejected) {
            *cached = None;
        }
    }

    async fn fetch(&self) -> Result<(Secret, Duration), String> {
        let response = self
            .http
            .post(self.url.clone())
            .form(&[
                ("client_id", self.client_id.as_str()),
                ("scope", self.scope.as_str()),
                ("client_secret", self.secret.expose()),
                ("grant_type", "client_credentials"),
            ])
            .send()
            .await
            .map_err(|e| {
                format!(
                    "token request: {}",
                    if e.is_timeout() {
                        "no reply in time"
                    } else {
                        "cannot reach the identity platform"
                    }
                )
            })?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        #[derive(Deserialize)]
        struct Granted {
            access_token: String,
            expires_in: u64,
        }
        #[derive(Deserialize)]
        struct Refused {
            error: String,
            error_description: Option<String>,
        }
        if status.is_success() {
            let granted: Granted = serde_json::from_str(&body)
                .map_err(|e| format!("token response: not the expected JSON ({e})"))?;
            tracing::info!(
                expires_in = granted.expires_in,
                "got an access token for Microsoft Graph"
            );
            return Ok((
                Secret::new(granted.access_token),
                Duration::from_secs(granted.expires_in),
            ));
        }
        let why = serde_json::from_str::<Refused>(&body)
            .map(|r| {
                let description = r.error_description.unwrap_or_default();
                let first_line = description.lines().next().unwrap_or_default();
                format!("{}: {first_line}", r.error)
            })
            .unwrap_or_else(|_| format!("HTTP {status}"));
        Err(format!("token request refused: {why}"))
    }
}

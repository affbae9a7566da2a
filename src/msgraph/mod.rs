//! Microsoft identity for Graph: an app registration (`[microsoft.NAME]`) and the OAuth 2.0
//! client-credentials tokens it gets from the Microsoft identity platform, cached and renewed
//! before they expire. Used by the `graph_mail` channel and the Graph audit source.
//!
//! The app proves itself with a client secret, or with a certificate: a JWT client assertion
//! signed with the certificate's private key (PS256: RSA-PSS with SHA-256) and naming the
//! certificate by its SHA-256 thumbprint (`x5t#S256`), as the identity platform documents for
//! certificate credentials (and as Microsoft's own libraries send since 2024).
//!
//! Authority and Graph base URLs are configurable, for national clouds and for tests, which
//! point them at a local server speaking Microsoft's documented formats.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use crate::values::{Secret, SecretSource};

pub mod signin;

/// `[microsoft.NAME]`: one app registration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MicrosoftApp {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: Option<SecretSource>,
    /// A certificate credential: the certificate (PEM) uploaded to the app registration.
    pub certificate_path: Option<std::path::PathBuf>,
    /// Its RSA private key (PEM); by default read from `certificate_path` too.
    pub private_key_path: Option<std::path::PathBuf>,
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
        match (&self.client_secret, &self.certificate_path) {
            (None, None) => {
                return Some("client_secret or certificate_path is required".to_owned());
            }
            (Some(_), Some(_)) => {
                return Some("give client_secret or certificate_path, not both".to_owned());
            }
            _ => {}
        }
        if self.private_key_path.is_some() && self.certificate_path.is_none() {
            return Some("private_key_path needs certificate_path".to_owned());
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

    /// Whether the certificate credential, if any, loads (for `herald check`: it reads files,
    /// no secret). `base` anchors relative paths.
    pub fn check_certificate(&self, base: &Path) -> Result<(), String> {
        match &self.certificate_path {
            Some(certificate) => {
                let (certificate, key) = self.certificate_files(certificate, base);
                Certificate::load(&certificate, &key).map(|_| ())
            }
            None => Ok(()),
        }
    }

    fn certificate_files(
        &self,
        certificate: &Path,
        base: &Path,
    ) -> (std::path::PathBuf, std::path::PathBuf) {
        let certificate = base.join(certificate);
        let key = self
            .private_key_path
            .as_ref()
            .map_or_else(|| certificate.clone(), |k| base.join(k));
        (certificate, key)
    }
}

/// How the app proves itself to the identity platform.
enum Credential {
    Secret(Secret),
    Certificate(Certificate),
}

/// A certificate credential, loaded.
struct Certificate {
    key: aws_lc_rs::signature::RsaKeyPair,
    /// Base64url SHA-256 thumbprint of the certificate's DER encoding.
    x5t_s256: String,
}

impl Certificate {
    fn load(certificate: &Path, key: &Path) -> Result<Certificate, String> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let der = CertificateDer::from_pem_file(certificate)
            .map_err(|e| format!("certificate_path {}: {e}", certificate.display()))?;
        let key_der = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| format!("private key {}: not a usable RSA key ({e})", key.display()))?;
        let key = match &key_der {
            PrivateKeyDer::Pkcs8(k) => {
                aws_lc_rs::signature::RsaKeyPair::from_pkcs8(k.secret_pkcs8_der())
            }
            PrivateKeyDer::Pkcs1(k) => {
                aws_lc_rs::signature::RsaKeyPair::from_der(k.secret_pkcs1_der())
            }
            _ => {
                return Err(format!(
                    "private key {}: not a usable RSA key",
                    key.display()
                ));
            }
        }
        .map_err(|e| format!("private key {}: not a usable RSA key ({e})", key.display()))?;
        let thumbprint = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der.as_ref());
        Ok(Certificate {
            key,
            x5t_s256: base64url(thumbprint.as_ref()),
        })
    }

    /// A client assertion for `audience` (the token URL), valid for ten minutes.
    fn assertion(&self, client_id: &str, audience: &str) -> Result<String, String> {
        let now = jiff::Timestamp::now().as_second();
        let header = serde_json::json!({
            "alg": "PS256", "typ": "JWT", "x5t#S256": self.x5t_s256,
        });
        let claims = serde_json::json!({
            "aud": audience, "iss": client_id, "sub": client_id,
            "jti": format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
            "iat": now, "nbf": now, "exp": now + 600,
        });
        let input = format!(
            "{}.{}",
            base64url(header.to_string().as_bytes()),
            base64url(claims.to_string().as_bytes())
        );
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &aws_lc_rs::signature::RSA_PSS_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "signing the client assertion failed".to_owned())?;
        Ok(format!("{input}.{}", base64url(&signature)))
    }
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Tokens for one app registration, shared by every channel and source that uses it.
pub struct Tokens {
    http: reqwest::Client,
    url: reqwest::Url,
    client_id: String,
    credential: Credential,
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
        let credential = match (&app.client_secret, &app.certificate_path) {
            (Some(secret), _) => Credential::Secret(
                secret
                    .resolve(base)
                    .map_err(|e| format!("client_secret: {e}"))?,
            ),
            (None, Some(certificate)) => {
                let (certificate, key) = app.certificate_files(certificate, base);
                Credential::Certificate(Certificate::load(&certificate, &key)?)
            }
            (None, None) => return Err("client_secret or certificate_path is required".into()),
        };
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
            credential,
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
        // `expires_in` comes from the network: bounded, so adding it to an instant cannot
        // overflow (a token is renewed at least daily whatever the server says).
        let lifetime = lifetime.min(Duration::from_secs(86_400));
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
        let assertion;
        let mut form = vec![
            ("client_id", self.client_id.as_str()),
            ("scope", self.scope.as_str()),
        ];
        match &self.credential {
            Credential::Secret(secret) => form.push(("client_secret", secret.expose())),
            Credential::Certificate(certificate) => {
                assertion = certificate.assertion(&self.client_id, self.url.as_str())?;
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ));
                form.push(("client_assertion", &assertion));
            }
        }
        form.push(("grant_type", "client_credentials"));
        let response = self
            .http
            .post(self.url.clone())
            .form(&form)
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

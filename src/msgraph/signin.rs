//! Signing operators in with Microsoft Entra ID: the OpenID Connect authorization-code flow
//! with PKCE against an app registration (`[microsoft.NAME]`), and the ID token's checks —
//! its RS256 signature against the tenant's published keys (JWKS, cached for an hour and
//! fetched again for an unknown key id), issuer, audience, tenant, nonce and lifetime. The
//! code is redeemed with the app's own credential (client secret or certificate), as the
//! client-credentials tokens are.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::{Credential, MicrosoftApp, Tokens};

/// How far a token's times may be from this machine's clock.
const SKEW: i64 = 300;

/// Who an ID token names, once it has passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// `preferred_username` (the UPN), else `name`, else the object id.
    pub name: String,
    /// The user's object id (`oid`).
    pub oid: String,
    /// The app roles the user holds (`roles`).
    pub roles: Vec<String>,
    /// The groups' object ids (`groups`), when the app registration emits them.
    pub groups: Vec<String>,
}

/// One key of a JWKS; keys of other kinds (no `n`, `e`) are listed and never matched.
#[derive(Deserialize)]
struct Jwk {
    #[serde(default)]
    kid: String,
    #[serde(default)]
    kty: String,
    #[serde(default)]
    n: String,
    #[serde(default)]
    e: String,
}

/// One app registration's sign-in.
pub struct SignIn {
    app: MicrosoftApp,
    tokens: Tokens,
    http: reqwest::Client,
    keys: Mutex<Option<(Vec<Jwk>, Instant)>>,
}

impl SignIn {
    pub fn new(
        app: &MicrosoftApp,
        base: &std::path::Path,
        http: reqwest::Client,
    ) -> Result<SignIn, String> {
        Ok(SignIn {
            tokens: Tokens::new(app, base, http.clone())?,
            app: app.clone(),
            http,
            keys: Mutex::new(None),
        })
    }

    fn authority(&self, tail: &[&str]) -> String {
        let mut url = format!(
            "{}/{}",
            self.app.authority.trim_end_matches('/'),
            self.app.tenant_id
        );
        for part in tail {
            url.push('/');
            url.push_str(part);
        }
        url
    }

    /// Where the browser goes to sign in; `challenge` is the PKCE S256 challenge.
    pub fn authorize_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        challenge: &str,
    ) -> String {
        let query = [
            ("client_id", self.app.client_id.as_str()),
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("response_mode", "query"),
            ("scope", "openid profile"),
            ("state", state),
            ("nonce", nonce),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ];
        let mut url = reqwest::Url::parse(&self.authority(&["oauth2", "v2.0", "authorize"]))
            .expect("the authority is checked at load");
        url.query_pairs_mut().extend_pairs(query);
        url.to_string()
    }

    /// Redeems the authorization code for the ID token.
    pub async fn redeem(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<String, String> {
        let assertion;
        let token_url = self.tokens.url.as_str();
        let mut form = vec![
            ("client_id", self.app.client_id.as_str()),
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect_uri),
            ("scope", "openid profile"),
        ];
        match &self.tokens.credential {
            Credential::Secret(secret) => form.push(("client_secret", secret.expose())),
            Credential::Certificate(certificate) => {
                assertion = certificate.assertion(&self.app.client_id, token_url)?;
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ));
                form.push(("client_assertion", &assertion));
            }
        }
        let response = self
            .http
            .post(token_url)
            .form(&form)
            .send()
            .await
            .map_err(|_| "the identity platform cannot be reached".to_owned())?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        #[derive(Deserialize)]
        struct Granted {
            id_token: String,
        }
        #[derive(Deserialize)]
        struct Refused {
            error: String,
            error_description: Option<String>,
        }
        if status.is_success() {
            return serde_json::from_str::<Granted>(&body)
                .map(|g| g.id_token)
                .map_err(|_| "the token answer holds no ID token".to_owned());
        }
        Err(match serde_json::from_str::<Refused>(&body) {
            Ok(r) => format!(
                "the code was refused: {}: {}",
                r.error,
                r.error_description
                    .unwrap_or_default()
                    .lines()
                    .next()
                    .unwrap_or_default()
            ),
            Err(_) => format!("the code was refused: HTTP {status}"),
        })
    }

    /// The key `kid`'s (n, e), from the cached JWKS or, for a key not in it, a fresh one.
    async fn key(&self, kid: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
        let mut cached = self.keys.lock().await;
        let fresh = cached
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() < Duration::from_secs(3600));
        let known = cached
            .as_ref()
            .is_some_and(|(keys, _)| keys.iter().any(|k| k.kid == kid));
        if !fresh || !known {
            #[derive(Deserialize)]
            struct Jwks {
                keys: Vec<Jwk>,
            }
            let body = self
                .http
                .get(self.authority(&["discovery", "v2.0", "keys"]))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .ok_or_else(|| "the tenant's signing keys cannot be read".to_owned())?
                .bytes()
                .await
                .map_err(|_| "the tenant's signing keys cannot be read".to_owned())?;
            let jwks: Jwks = serde_json::from_slice(&body)
                .map_err(|_| "the tenant's signing keys are not a JWKS".to_owned())?;
            *cached = Some((jwks.keys, Instant::now()));
        }
        let (keys, _) = cached.as_ref().expect("just filled");
        let key = keys
            .iter()
            .find(|k| k.kid == kid && k.kty == "RSA" && !k.n.is_empty() && !k.e.is_empty())
            .ok_or_else(|| format!("no signing key {kid:?} in the tenant's keys"))?;
        let decode = |v: &str| {
            B64.decode(v)
                .map_err(|_| "a signing key is not base64url".to_owned())
        };
        Ok((decode(&key.n)?, decode(&key.e)?))
    }

    /// Who `id_token` names, if its signature, issuer, audience, tenant, `nonce` and times
    /// (at `now`, Unix seconds) all hold; otherwise which failed.
    pub async fn verify(&self, id_token: &str, nonce: &str, now: i64) -> Result<SignedIn, String> {
        let mut parts = id_token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("the ID token is not a JWT".to_owned());
        };
        #[derive(Deserialize)]
        struct Header {
            alg: String,
            kid: String,
        }
        let json = |part: &str| -> Result<serde_json::Value, String> {
            let bytes = B64
                .decode(part)
                .map_err(|_| "the ID token is not base64url".to_owned())?;
            serde_json::from_slice(&bytes).map_err(|_| "the ID token is not JSON".to_owned())
        };
        let header: Header = serde_json::from_value(json(header)?)
            .map_err(|_| "the ID token's header names no key".to_owned())?;
        if header.alg != "RS256" {
            return Err(format!(
                "the ID token is signed with {:?}, not RS256",
                header.alg
            ));
        }
        let (n, e) = self.key(&header.kid).await?;
        let signature = B64
            .decode(signature)
            .map_err(|_| "the ID token's signature is not base64url".to_owned())?;
        // What was signed: the token up to its last `.`.
        let signed = id_token.rsplit_once('.').map_or("", |(signed, _)| signed);
        aws_lc_rs::signature::RsaPublicKeyComponents { n: &n, e: &e }
            .verify(
                &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                signed.as_bytes(),
                &signature,
            )
            .map_err(|_| "the ID token's signature does not verify".to_owned())?;
        let claims = json(payload)?;
        let text = |name: &str| claims.get(name).and_then(|v| v.as_str()).unwrap_or("");
        let number = |name: &str| claims.get(name).and_then(|v| v.as_i64());
        let issuer = self.authority(&["v2.0"]);
        if text("iss") != issuer {
            return Err(format!(
                "the ID token's issuer is {:?}, not {issuer:?}",
                text("iss")
            ));
        }
        let audience_ok = match claims.get("aud") {
            Some(serde_json::Value::String(aud)) => *aud == self.app.client_id,
            Some(serde_json::Value::Array(auds)) => {
                auds.len() == 1 && auds[0].as_str() == Some(&self.app.client_id)
            }
            _ => false,
        };
        if !audience_ok {
            return Err("the ID token is for another application (aud)".to_owned());
        }
        if !text("tid").eq_ignore_ascii_case(&self.app.tenant_id) {
            return Err("the ID token is of another tenant (tid)".to_owned());
        }
        if nonce.is_empty()
            || aws_lc_rs::constant_time::verify_slices_are_equal(
                text("nonce").as_bytes(),
                nonce.as_bytes(),
            )
            .is_err()
        {
            return Err("the ID token is not of this sign-in (nonce)".to_owned());
        }
        match number("exp") {
            Some(exp) if exp.saturating_add(SKEW) > now => {}
            _ => return Err("the ID token has expired".to_owned()),
        }
        let later = now.saturating_add(SKEW);
        if number("nbf").is_some_and(|nbf| nbf > later)
            || number("iat").is_some_and(|iat| iat > later)
        {
            return Err("the ID token is not valid yet".to_owned());
        }
        let list = |name: &str| -> Vec<String> {
            claims
                .get(name)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let oid = text("oid").to_owned();
        let name = [text("preferred_username"), text("name"), oid.as_str()]
            .into_iter()
            .find(|n| !n.is_empty())
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_control())
            .take(128)
            .collect();
        Ok(SignedIn {
            name,
            oid,
            roles: list("roles"),
            groups: list("groups"),
        })
    }
}

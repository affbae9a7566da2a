//! The operator's dashboard and its API (`[dashboard]`, ARCHITECTURE.md §12), served on the
//! admin listener beside `/healthz`, `/readyz` and `/metrics`, never on the public report
//! listener. It owns sign-in ([`session`]), the pages ([`pages`]: server-rendered, escaped
//! like notices, readable without JavaScript) and `/api/v1` ([`api`]): the same reads and
//! actions as JSON, for a session or a bearer token. Every state change is a `POST` that must
//! come from the dashboard itself (`Origin`, `Sec-Fetch-Site`) and, from a browser, carry its
//! session's CSRF token; every operator's action is recorded in `operator_actions` in the
//! transaction that does it.

pub mod api;
pub mod cursor;
mod entra;
pub mod pages;
pub mod session;
pub mod silences;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::store::Store;
use crate::values::{SecretSource, duration};
use crate::web::Readiness;
pub use session::{Role, TokenEntry, Who};
pub use silences::Silencer;

/// `[dashboard]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardConfig {
    /// How operators sign in: `token` (a token of `tokens`, typed into the sign-in form or
    /// sent as `Authorization: Bearer`) or `entra` (Microsoft Entra ID, with `app`; `tokens`
    /// then serve scripts).
    #[serde(default)]
    pub auth: Auth,
    /// `auth = "entra"`: the `[microsoft.NAME]` app registration operators sign in with (its
    /// redirect URI `{public_url}/auth/callback`).
    #[serde(default)]
    pub app: Option<String>,
    /// `auth = "entra"`: the app roles (`roles` claim) or group object ids (`groups` claim)
    /// that make an operator, and those that make a viewer.
    #[serde(default)]
    pub operators: Vec<String>,
    #[serde(default)]
    pub viewers: Vec<String>,
    /// Who may sign in, with which role; tokens kept only as their SHA-256.
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
    /// The key sessions are signed with (at least 32 bytes); by default one made at random
    /// when Herald starts, so sessions end with the process.
    #[serde(default)]
    pub session_key: Option<SecretSource>,
    #[serde(default = "default_lifetime", deserialize_with = "duration")]
    pub session_lifetime: Duration,
    /// Where operators reach the dashboard (`https://herald-admin.contoso.com`): the origin
    /// forms must come from, and whether cookies are `Secure`. By default the request's own
    /// `Host` over plain HTTP.
    #[serde(default)]
    pub public_url: Option<String>,
}

fn default_lifetime() -> Duration {
    Duration::from_secs(8 * 3600)
}

/// How operators sign in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Auth {
    #[default]
    Token,
    Entra,
}

impl DashboardConfig {
    /// What is wrong with this table as written, as (key, message).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.auth == Auth::Entra {
            if self.app.is_none() {
                return Err((
                    "app",
                    "auth = \"entra\" needs the [microsoft.NAME] app operators sign in with".into(),
                ));
            }
            if self.public_url.is_none() {
                return Err((
                    "public_url",
                    "auth = \"entra\" needs the address operators reach the dashboard at: its redirect URI is {public_url}/auth/callback".into(),
                ));
            }
            if self.operators.is_empty() && self.viewers.is_empty() {
                return Err((
                    "operators",
                    "nobody would have a role: list app roles or group ids in operators or viewers"
                        .into(),
                ));
            }
        } else if self.tokens.is_empty() {
            return Err((
                "tokens",
                "nobody could sign in: add a token (`herald token new --name NAME --role operator` prints one)".into(),
            ));
        }
        for (i, t) in self.tokens.iter().enumerate() {
            if let Some(problem) = t.problem() {
                return Err(("tokens", problem));
            }
            if self.tokens[..i].iter().any(|o| o.name == t.name) {
                return Err(("tokens", format!("{:?} is listed twice", t.name)));
            }
        }
        if let Some(url) = &self.public_url {
            let plain = reqwest::Url::parse(url).ok().filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.path() == "/"
                    && u.query().is_none()
                    && !url.ends_with('/')
            });
            if plain.is_none() {
                return Err((
                    "public_url",
                    format!("{url:?} must be http(s)://host[:port], without a path or trailing /"),
                ));
            }
        }
        Ok(())
    }
}

/// What the dashboard shows and acts on.
pub struct Dashboard<S: Store> {
    pub config: DashboardConfig,
    /// Where relative paths (a `session_key` file) are anchored.
    pub base: PathBuf,
    /// The loaded configuration as text, every secret shown as `***`.
    pub config_text: String,
    pub store: S,
    pub readiness: Arc<Readiness>,
    /// Replays a dead letter through the running pipeline.
    pub replayer: Replayer,
    /// Herald's plain words for a stored record (the pipeline's explainers).
    pub describer: Describer,
    /// The planner's check and notices of a silence.
    pub silencer: Silencer,
    /// Whether the admin listener serves HTTPS itself (`[admin] tls`).
    pub tls: bool,
    /// `auth = "entra"`: the app registration named by `app`.
    pub app: Option<crate::msgraph::MicrosoftApp>,
}

/// The headline and facts of a stored record, as a security team reads them.
pub type Describer = Arc<dyn Fn(&[u8]) -> Vec<String> + Send + Sync>;

/// Replays dead letter `id` as `by`; what came of it, or why it could not be replayed.
pub type Replayer = Arc<
    dyn Fn(
            i64,
            crate::store::Operator,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send>>
        + Send
        + Sync,
>;

pub(crate) struct Shared<S: Store> {
    sessions: session::Sessions,
    public_url: Option<String>,
    config_text: String,
    store: S,
    readiness: Arc<Readiness>,
    replayer: Replayer,
    describer: Describer,
    silencer: Silencer,
    tls: bool,
    pages: pages::Templates,
    /// `auth = "entra"`: the sign-in, and who gets which role.
    entra: Option<Entra>,
}

/// Entra ID sign-in.
pub(crate) struct Entra {
    signin: crate::msgraph::signin::SignIn,
    operators: Vec<String>,
    viewers: Vec<String>,
}

/// The dashboard's routes, to merge into the admin listener's.
pub fn router<S: Store>(dashboard: Dashboard<S>) -> Result<Router, String> {
    let key = match &dashboard.config.session_key {
        Some(source) => Some(
            source
                .resolve(&dashboard.base)
                .map_err(|e| format!("dashboard.session_key: {e}"))?,
        ),
        None => None,
    };
    let mut sessions = session::Sessions::new(
        dashboard.config.tokens.clone(),
        key.as_ref().map(|k| k.expose().as_bytes()),
        dashboard.config.session_lifetime,
    )
    .map_err(|e| format!("dashboard: {e}"))?;
    if dashboard.config.auth == Auth::Entra {
        sessions = sessions.with_entra();
    }
    let shared = Arc::new(Shared {
        sessions,
        public_url: dashboard.config.public_url.clone(),
        config_text: dashboard.config_text,
        store: dashboard.store,
        readiness: dashboard.readiness,
        replayer: dashboard.replayer,
        describer: dashboard.describer,
        silencer: dashboard.silencer,
        tls: dashboard.tls,
        pages: pages::Templates::new()?,
        entra: match (&dashboard.config.auth, &dashboard.app) {
            (Auth::Entra, Some(app)) => {
                let http = crate::channel::http_client(Duration::from_secs(15))
                    .build()
                    .map_err(|e| format!("dashboard: HTTP client: {e}"))?;
                Some(Entra {
                    signin: crate::msgraph::signin::SignIn::new(app, &dashboard.base, http)
                        .map_err(|e| format!("dashboard.app: {e}"))?,
                    operators: dashboard.config.operators.clone(),
                    viewers: dashboard.config.viewers.clone(),
                })
            }
            (Auth::Entra, None) => return Err("dashboard.app: no such app registration".into()),
            (Auth::Token, _) => None,
        },
    });
    Ok(pages::routes::<S>()
        .merge(api::routes::<S>())
        .merge(entra::routes::<S>())
        .with_state(shared)
        .layer(axum::middleware::map_response(
            crate::web::public::secure_headers,
        )))
}

/// The session cookie's name.
const COOKIE: &str = "herald_session";

impl<S: Store> Shared<S> {
    /// The session cookie's value in `headers`, if any.
    fn cookie<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)
            .map(|(_, value)| value)
    }

    /// Who sent the request: a valid session cookie, or a bearer token.
    fn who(&self, headers: &HeaderMap) -> Option<(Who, Credential)> {
        let now = jiff::Timestamp::now().as_second();
        if let Some(value) = self.cookie(headers)
            && let Some(who) = self.sessions.verify(value, now)
        {
            return Some((who, Credential::Session(value.to_owned())));
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))?;
        self.sessions
            .by_token(bearer)
            .map(|who| (who, Credential::Bearer))
    }

    /// Whether a state-changing request comes from the dashboard itself: a browser says where
    /// a request comes from (`Sec-Fetch-Site`, `Origin`); a script with a bearer token sends
    /// neither, and needs none (it has no ambient credential a site could borrow).
    fn same_origin(&self, headers: &HeaderMap) -> bool {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(site) = header("sec-fetch-site")
            && !matches!(site, "same-origin" | "none")
        {
            return false;
        }
        match header("origin") {
            None => true,
            Some(origin) => origin == self.origin(headers),
        }
    }

    /// The dashboard's origin: `public_url`, or this request's `Host` over the listener's
    /// own scheme.
    fn origin(&self, headers: &HeaderMap) -> String {
        match &self.public_url {
            Some(url) => url.clone(),
            None => format!(
                "{}://{}",
                if self.tls { "https" } else { "http" },
                headers
                    .get(header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
            ),
        }
    }

    fn secure_cookies(&self) -> bool {
        self.tls
            || self
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"))
    }
}

/// How a request proved who sent it.
#[derive(Debug, Clone)]
enum Credential {
    /// The session cookie (its value binds the CSRF token).
    Session(String),
    Bearer,
}

/// The store's error, without its text (it may name hosts): logged, answered 503.
fn store_down(e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "dashboard: the store cannot be read");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the store cannot be reached; see Herald's log\n",
    )
        .into_response()
}

/// `path` resolved against `base` (for `herald check`, which reads the session key).
pub fn check_session_key(config: &DashboardConfig, base: &Path) -> Result<(), String> {
    if let Some(source) = &config.session_key {
        let key = source
            .resolve(base)
            .map_err(|e| format!("session_key: {e}"))?;
        session::Sessions::new(
            Vec::new(),
            Some(key.expose().as_bytes()),
            config.session_lifetime,
        )?;
    }
    Ok(())
}

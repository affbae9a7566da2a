//! The public listener (`[web]`, ARCHITECTURE.md §2.9): the report pages behind the link in
//! every notice to an account's owner, and nothing else — the admin listener's routes are not
//! reachable through it.
//!
//! `GET /r/{token}` only shows a page (mail scanners fetch every link); the owner's answer is a
//! `POST` with the link's CSRF token, checked with the request's `Origin` and
//! `Sec-Fetch-Site`. A link decides once. Every page is server-rendered from a template whose
//! name ends in `.html` (escaped like notices), works without JavaScript, and is sent with a
//! content security policy that allows no script at all. Requests are limited per client and
//! bodies to a few kilobytes.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Extension, Form, Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::listener::{Peer, TlsFiles};
use crate::channel::graph_action;
use crate::report::Answer;
use crate::report::link::{LinkError, LinkKey, LinkKeys};
use crate::report::page::{Page, Pages};
use crate::store::{NewNotification, NewReport, ReportAction, Store, Verdict};
use crate::values::Cidr;

/// What renders the SOC's notices of an answer (`[report] notify`), built by the service from
/// the loaded rules' renderer.
pub type Notifier = Arc<dyn Fn(&Answer) -> Vec<NewNotification> + Send + Sync>;
use crate::values::SecretSource;

/// `[web]`: where the report pages are served, and the keys their links are signed with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicConfig {
    pub listen: SocketAddr,
    /// The address people reach the pages at (`https://herald.contoso.com`, the reverse
    /// proxy's), without a trailing `/`: links are `{public_url}/r/{token}`.
    pub public_url: String,
    /// `[{ id = "2026-12", secret = { env = "HERALD_LINK_KEY" } }, …]`: the first signs new
    /// links, every one verifies.
    pub link_keys: Vec<LinkKeyConfig>,
    /// How long a link decides (default 7 days).
    #[serde(
        default = "default_lifetime",
        deserialize_with = "crate::values::duration"
    )]
    pub link_lifetime: Duration,
    /// Reverse proxies whose `X-Forwarded-For` is believed: addresses or CIDR ranges.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Requests per minute a client may make (default 30).
    #[serde(default = "default_rate")]
    pub rate_limit: u32,
    /// The organization's own page template, instead of the built-in one: a path ending in
    /// `.html` (escaped like notices), relative to the configuration file. It gets `state`
    /// (`ask`, `recorded`, `invalid`, `retired`, `expired`, `not_found`, `forbidden`, `busy`,
    /// `unavailable`), `branding`, `notice`, `report`, `csrf`, `expires`, `recorded_now`.
    pub page_template: Option<std::path::PathBuf>,
    pub tls: Option<TlsFiles>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkKeyConfig {
    pub id: String,
    pub secret: SecretSource,
}

fn default_lifetime() -> Duration {
    Duration::from_secs(7 * 86_400)
}

fn default_rate() -> u32 {
    30
}

impl PublicConfig {
    /// What is wrong with it before any secret is read: the URL, the proxies, the key ids.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let url = &self.public_url;
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || url.ends_with('/')
            || url.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err((
                "public_url",
                format!("{url:?} must be an http:// or https:// address without a trailing /"),
            ));
        }
        match reqwest::Url::parse(url) {
            Ok(u)
                if u.query().is_none()
                    && u.fragment().is_none()
                    && u.username().is_empty()
                    && u.password().is_none()
                    && u.host_str().is_some() => {}
            _ => {
                return Err((
                    "public_url",
                    format!(
                        "{url:?} must be a plain http(s)://host[:port][/path] address: no user, query or fragment"
                    ),
                ));
            }
        }
        if self.link_lifetime.is_zero() {
            return Err((
                "link_lifetime",
                "a link that expires at once answers nothing".into(),
            ));
        }
        if self.link_keys.is_empty() {
            return Err((
                "link_keys",
                "list at least one key: link_keys = [{ id = \"k1\", secret = { env = \"HERALD_LINK_KEY\" } }]".into(),
            ));
        }
        for proxy in &self.trusted_proxies {
            Cidr::parse(proxy).map_err(|m| ("trusted_proxies", m))?;
        }
        if self.rate_limit == 0 {
            return Err((
                "rate_limit",
                "0 requests a minute would refuse everyone".into(),
            ));
        }
        Ok(())
    }

    /// The link keys, their secrets read (from the environment or files relative to `base`).
    pub fn keys(&self, base: &Path) -> Result<LinkKeys, String> {
        let keys = self
            .link_keys
            .iter()
            .map(|k| {
                let secret = k
                    .secret
                    .resolve(base)
                    .map_err(|e| format!("link key {:?}: {e}", k.id))?;
                LinkKey::new(&k.id, secret.expose().as_bytes())
            })
            .collect::<Result<Vec<_>, _>>()?;
        LinkKeys::new(keys)
    }
}

struct Shared<S> {
    store: S,
    keys: LinkKeys,
    notifier: Notifier,
    pages: Pages,
    origin: String,
    trusted: Vec<Cidr>,
    rate: u32,
    clients: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// Most clients the rate limiter remembers; past it, the oldest window is forgotten.
const CLIENTS_MAX: usize = 10_000;

impl<S> Shared<S> {
    /// Who the client is: the peer, or, behind a trusted proxy, the nearest address in
    /// `X-Forwarded-For` that is not one of the proxies. The header is read from the right
    /// (what the nearest proxy appended first); an entry that is no address (`unknown`, garbage)
    /// ends the walk at the last address a trusted proxy vouched for, so nothing the client
    /// wrote further left is believed.
    fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let trusted = |ip: IpAddr| self.trusted.iter().any(|c| c.contains(ip));
        let mut client = peer.ip().to_canonical();
        if !trusted(client) {
            return client;
        }
        let entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for entry in entries.into_iter().rev() {
            let Some(ip) = forwarded_address(entry.trim()) else {
                break;
            };
            client = ip;
            if !trusted(ip) {
                break;
            }
        }
        client
    }

    /// Whether `client` may make one more request this minute. IPv6 clients count by their
    /// /64 (one host has a whole one). When the table is full, the oldest window is forgotten:
    /// a flood of new addresses costs the flood's own addresses their limit, not everyone's.
    fn allow(&self, client: IpAddr) -> bool {
        let client = match client {
            IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
            v4 => v4,
        };
        let now = Instant::now();
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len() >= CLIENTS_MAX && !clients.contains_key(&client) {
            clients.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
            if clients.len() >= CLIENTS_MAX
                && let Some(oldest) = clients
                    .iter()
                    .min_by_key(|(_, (start, _))| *start)
                    .map(|(k, _)| *k)
            {
                clients.remove(&oldest);
            }
        }
        let entry = clients.entry(client).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(60) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= self.rate
    }
}

/// An `X-Forwarded-For` entry's address: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1` or
/// `[2001:db8::1]:4711`.
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    entry
        .parse::<SocketAddr>()
        .ok()
        .map(|a| a.ip().to_canonical())
}

/// Binds `[web] listen`.
pub async fn bind(config: &PublicConfig) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(config.listen).await
}

/// What the public listener serves with: its `[web]` table, the configuration's folder (for
/// TLS files), the link keys, the pages, and what renders the SOC's notices.
pub struct Public {
    pub config: PublicConfig,
    pub base: std::path::PathBuf,
    pub keys: LinkKeys,
    pub pages: Pages,
    pub notifier: Notifier,
}

/// Serves the report pages until `stop`.
pub async fn serve<S: Store>(
    listener: tokio::net::TcpListener,
    public: Public,
    store: S,
    stop: CancellationToken,
) -> Result<(), String> {
    let Public {
        config,
        base,
        keys,
        pages,
        notifier,
    } = public;
    let tls = match &config.tls {
        Some(files) => Some(files.acceptor(&base)?),
        None => None,
    };
    let origin = origin_of(&config.public_url);
    let shared = Arc::new(Shared {
        store,
        keys,
        notifier,
        pages,
        origin,
        trusted: config
            .trusted_proxies
            .iter()
            .filter_map(|p| Cidr::parse(p).ok())
            .collect(),
        rate: config.rate_limit,
        clients: Mutex::new(HashMap::new()),
    });
    let app = Router::new()
        .route("/r/{token}", get(show::<S>).post(decide::<S>))
        .fallback(|| async { page_response(StatusCode::NOT_FOUND, Page::NotFound, None) })
        .layer(DefaultBodyLimit::max(4096))
        .layer(axum::middleware::map_response(secure_headers))
        .with_state(shared.clone());
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(listen = %local, public_url = %config.public_url, "public listener: report pages");
    super::listener::serve(listener, tls, super::HEADER_TIMEOUT, app, stop).await;
    Ok(())
}

/// `scheme://host[:port]` of a URL, as browsers send it in `Origin` (lower-case host, no
/// default port).
fn origin_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| url.to_owned())
}

fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The headers every answer of this listener carries (its pages, and axum's own rejections
/// such as a 405): no caching, no referrer to other sites, no framing, and a policy under
/// which no script runs.
pub(crate) async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        // `same-origin`, not `no-referrer`: under `no-referrer` a browser posts the form with
        // `Origin: null`, and the origin check needs the real one. No other site sees the link.
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A page.
fn page_response(status: StatusCode, page: Page, pages: Option<&Pages>) -> Response {
    let body = match pages {
        Some(p) => p.render(&page),
        None => Pages::fallback(&page),
    };
    (status, axum::response::Html(body)).into_response()
}

/// The page for a token that does not verify.
fn refused(shared: &Shared<impl Store>, e: &LinkError) -> Response {
    let (status, page) = match e {
        LinkError::Invalid => (StatusCode::BAD_REQUEST, Page::Invalid),
        LinkError::UnknownKey => (StatusCode::BAD_REQUEST, Page::Retired),
        LinkError::Expired(_) => (StatusCode::GONE, Page::Expired),
    };
    page_response(status, page, Some(&shared.pages))
}

fn store_down(shared: &Shared<impl Store>, e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "report page: the store cannot be read");
    page_response(
        StatusCode::SERVICE_UNAVAILABLE,
        Page::Unavailable,
        Some(&shared.pages),
    )
}

async fn show<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    Extension(Peer(peer)): Extension<Peer>,
    headers: HeaderMap,
    UrlPath(token): UrlPath<String>,
) -> Response {
    if !shared.allow(shared.client(peer, &headers)) {
        return page_response(
            StatusCode::TOO_MANY_REQUESTS,
            Page::Busy,
            Some(&shared.pages),
        );
    }
    let link = match shared.keys.verify(&token, now_secs()) {
        Ok(link) => link,
        Err(e) => return refused(&shared, &e),
    };
    let notice = match shared.store.reported_notice(&link.key).await {
        Ok(Some(n)) => n,
        Ok(None) => {
            return page_response(StatusCode::NOT_FOUND, Page::NotFound, Some(&shared.pages));
        }
        Err(e) => return store_down(&shared, e),
    };
    match shared.store.report(&link.key).await {
        Ok(Some(report)) => {
            // After "This was me", the owner can still say it was not them.
            let csrf = (report.verdict == "me").then(|| shared.keys.csrf(&token));
            page_response(
                StatusCode::OK,
                Page::Recorded {
                    notice,
                    report,
                    now: false,
                    csrf,
                },
                Some(&shared.pages),
            )
        }
        Ok(None) => {
            let csrf = shared.keys.csrf(&token);
            page_response(
                StatusCode::OK,
                Page::Ask {
                    notice,
                    csrf,
                    expires: link.expires,
                },
                Some(&shared.pages),
            )
        }
        Err(e) => store_down(&shared, e),
    }
}

#[derive(Deserialize)]
struct Decision {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    verdict: String,
}

async fn decide<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    Extension(Peer(peer)): Extension<Peer>,
    headers: HeaderMap,
    UrlPath(token): UrlPath<String>,
    form: Result<Form<Decision>, axum::extract::rejection::FormRejection>,
) -> Response {
    let client = shared.client(peer, &headers);
    if !shared.allow(client) {
        return page_response(
            StatusCode::TOO_MANY_REQUESTS,
            Page::Busy,
            Some(&shared.pages),
        );
    }
    // A form posted from another site is refused, whatever it carries.
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let cross_site = matches!(header("sec-fetch-site"), Some(site) if site != "same-origin" && site != "none")
        || header("origin").is_some_and(|o| !o.eq_ignore_ascii_case(&shared.origin));
    if cross_site {
        return page_response(StatusCode::FORBIDDEN, Page::Forbidden, Some(&shared.pages));
    }
    let link = match shared.keys.verify(&token, now_secs()) {
        Ok(link) => link,
        // An expired link shows nothing of its notice, whatever was recorded: the page is
        // the same for anyone holding it.
        Err(e) => {
            return refused(&shared, &e);
        }
    };
    let Ok(Form(decision)) = form else {
        return page_response(
            StatusCode::BAD_REQUEST,
            Page::Forbidden,
            Some(&shared.pages),
        );
    };
    if !shared.keys.csrf_ok(&token, &decision.csrf) {
        return page_response(StatusCode::FORBIDDEN, Page::Forbidden, Some(&shared.pages));
    }
    let Some(verdict) = Verdict::parse(&decision.verdict) else {
        return page_response(
            StatusCode::BAD_REQUEST,
            Page::Forbidden,
            Some(&shared.pages),
        );
    };
    let notice = match shared.store.reported_notice(&link.key).await {
        Ok(Some(n)) => n,
        Ok(None) => {
            return page_response(StatusCode::NOT_FOUND, Page::NotFound, Some(&shared.pages));
        }
        Err(e) => return store_down(&shared, e),
    };
    let user_agent: String = header("user-agent")
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect();
    let summary: Option<crate::report::NoticeSummary> = notice
        .summary
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok());
    // The tenant the notice itself recorded, rather than whichever event of that id
    // `events_seen` holds (or no longer holds).
    let tenant = summary
        .as_ref()
        .and_then(|s| s.tenant.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| notice.tenant.clone());
    let answer = Answer {
        notice_key: notice.key.clone(),
        rule: notice.rule.clone(),
        event_id: notice.event_id.clone(),
        tenant,
        account: notice.recipient.clone(),
        subject: notice.subject.clone(),
        verdict: verdict.as_str().to_owned(),
        at: jiff::Timestamp::now().as_millisecond(),
        client_ip: client.to_string(),
        user_agent: user_agent.clone(),
        summary,
    };
    let notices = (shared.notifier)(&answer);
    // The response actions among them, named on the report.
    let actions = notices
        .iter()
        .filter(|n| n.channel == graph_action::CHANNEL)
        .filter_map(|n| {
            let request: graph_action::Request = serde_json::from_slice(&n.message).ok()?;
            Some(ReportAction {
                action: request.action.as_str().to_owned(),
                key: n.key.clone(),
            })
        })
        .collect();
    let new = NewReport {
        notice: notice.clone(),
        verdict,
        client_ip: client.to_string(),
        user_agent,
        actions,
    };
    match shared.store.record_report(&new, &notices).await {
        Ok((report, recorded)) => {
            if recorded {
                metrics::counter!("herald_reports_total", "verdict" => verdict.as_str())
                    .increment(1);
                tracing::info!(key = %report.key, verdict = verdict.as_str(), "report recorded");
            }
            page_response(
                StatusCode::OK,
                Page::Recorded {
                    csrf: (report.verdict == "me").then(|| shared.keys.csrf(&token)),
                    notice,
                    report,
                    now: recorded,
                },
                Some(&shared.pages),
            )
        }
        Err(e) => store_down(&shared, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_ranges_contain_their_addresses() {
        let ten = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(ten.contains("10.1.2.3".parse().unwrap()));
        assert!(!ten.contains("11.0.0.1".parse().unwrap()));
        assert!(ten.contains("::ffff:10.0.0.9".parse().unwrap()));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(
            Cidr::parse("::/0")
                .unwrap()
                .contains("2001:db8::1".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope").is_err());
    }

    #[test]
    fn an_origin_is_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://herald.contoso.com"),
            "https://herald.contoso.com"
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080/base"),
            "http://127.0.0.1:8080"
        );
    }
}

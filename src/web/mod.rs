//! The admin listener: `/healthz` (the process answers), `/readyz` (it can reach its store and
//! every source is up) and Prometheus `/metrics`. It shows counts and states, never a message
//! body, an address list or a secret.
//!
//! A paused channel is named in `/readyz`'s answer but does not make it fail: readiness says
//! whether this instance takes input, which it still does (the notices wait in the outbox);
//! failing it would take every instance out of a load balancer because a relay is down.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

pub mod listener;
pub mod public;

/// How long a client of the admin listener may take to send a request's headers.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// `[admin]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Serve HTTPS (the dashboard's sessions then go only over it).
    #[serde(default)]
    pub tls: Option<listener::TlsFiles>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: default_listen(),
            tls: None,
        }
    }
}

/// What readiness depends on besides the store.
#[derive(Default)]
pub struct Readiness {
    /// Every source has started (listeners bound, files opened).
    pub sources_started: AtomicBool,
    /// Sources that cannot take input now, with why (a broker unreachable, no partition).
    not_ready: Mutex<BTreeMap<String, String>>,
    /// Channels paused now, with why (the relay refused the credentials).
    paused: Mutex<BTreeMap<String, String>>,
    /// Store operations failing now (a commit, a checkpoint read): the store answers a ping
    /// but does not take writes (a SQLite file made read-only, a disk full).
    store_failing: std::sync::atomic::AtomicUsize,
    /// Each source's newest record committed (its own time, Unix ms), for the dashboard.
    newest: Mutex<BTreeMap<String, i64>>,
}

impl Readiness {
    /// Marks a source not ready, saying why, or ready again with `None`.
    pub fn source(&self, name: &str, why: Option<String>) {
        let mut not_ready = self.not_ready.lock().unwrap_or_else(|p| p.into_inner());
        match why {
            Some(why) => not_ready.insert(name.to_owned(), why),
            None => not_ready.remove(name),
        };
    }

    /// Marks a channel paused, saying why, or delivering again with `None`.
    pub fn channel(&self, name: &str, why: Option<String>) {
        let mut paused = self.paused.lock().unwrap_or_else(|p| p.into_inner());
        match why {
            Some(why) => paused.insert(name.to_owned(), why),
            None => paused.remove(name),
        };
    }

    /// An operation on the store began failing (`true`) or succeeded again after failing.
    pub fn store_failing(&self, failing: bool) {
        if failing {
            self.store_failing.fetch_add(1, Ordering::Relaxed);
        } else {
            self.store_failing.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// One line per paused channel.
    fn paused(&self) -> String {
        let paused = self.paused.lock().unwrap_or_else(|p| p.into_inner());
        paused
            .iter()
            .map(|(name, why)| format!("channel {name}: paused: {why}\n"))
            .collect()
    }

    /// Source `name` committed a record of time `ms` (Unix ms); the newest is kept.
    pub fn newest_record(&self, name: &str, ms: i64) {
        let mut newest = self.newest.lock().unwrap_or_else(|p| p.into_inner());
        let at = newest.entry(name.to_owned()).or_insert(ms);
        *at = (*at).max(ms);
    }

    /// Each source's newest record committed by this instance (Unix ms).
    pub fn newest_records(&self) -> BTreeMap<String, i64> {
        self.newest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The paused channels, with why.
    pub fn paused_channels(&self) -> BTreeMap<String, String> {
        self.paused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The sources that cannot take input now, with why.
    pub fn sources_not_ready(&self) -> BTreeMap<String, String> {
        self.not_ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn not_ready(&self) -> Option<String> {
        let not_ready = self.not_ready.lock().unwrap_or_else(|p| p.into_inner());
        (!not_ready.is_empty()).then(|| {
            not_ready
                .iter()
                .map(|(name, why)| format!("source {name}: {why}\n"))
                .collect()
        })
    }
}

struct Shared<S: Store> {
    store: S,
    metrics: PrometheusHandle,
    readiness: Arc<Readiness>,
}

/// Binds the admin address; done before anything starts, so a taken port stops Herald at once.
pub async fn bind(config: &AdminConfig) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(config.listen).await
}

/// Serves the admin listener (over `tls` when given); `dashboard`, when configured, adds the
/// dashboard's routes.
pub async fn serve<S: Store>(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    store: S,
    metrics: PrometheusHandle,
    readiness: Arc<Readiness>,
    dashboard: Option<Router>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(
        listen = %listener.local_addr()?,
        dashboard = dashboard.is_some(),
        "admin listener: /healthz /readyz /metrics"
    );
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready::<S>))
        .route("/metrics", get(render::<S>))
        .with_state(Arc::new(Shared {
            store,
            metrics,
            readiness,
        }));
    let app = match dashboard {
        Some(dashboard) => app.merge(dashboard),
        None => app,
    };
    listener::serve(listener, tls, HEADER_TIMEOUT, app, stop).await;
    Ok(())
}

async fn ready<S: Store>(State(shared): State<Arc<Shared<S>>>) -> (StatusCode, String) {
    if !shared.readiness.sources_started.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting\n".to_owned());
    }
    if let Some(why) = shared.readiness.not_ready() {
        return (StatusCode::SERVICE_UNAVAILABLE, why);
    }
    if shared.readiness.store_failing.load(Ordering::Relaxed) > 0 {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "store unreachable: it does not take writes\n".to_owned(),
        );
    }
    // The error itself is logged by whatever failed; it may name hosts, so it is not served.
    match tokio::time::timeout(Duration::from_secs(3), shared.store.ping()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            format!("ready\n{}", shared.readiness.paused()),
        ),
        Ok(Err(_)) | Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "store unreachable\n".to_owned(),
        ),
    }
}

async fn render<S: Store>(State(shared): State<Arc<Shared<S>>>) -> String {
    // Pending and failed rows only, from partial indexes: a scrape's cost does not grow with
    // the rows already sent (`herald_notifications_sent_total` counts those).
    if let Ok(backlog) = shared.store.backlog().await {
        metrics::gauge!("herald_outbox_notifications", "state" => "pending")
            .set(backlog.pending as f64);
        metrics::gauge!("herald_outbox_notifications", "state" => "failed")
            .set(backlog.failed as f64);
    }
    shared.metrics.run_upkeep();
    shared.metrics.render()
}

//! The admin listener: `/healthz` (the process answers), `/readyz` (it can reach its store and
//! every source is up) and Prometheus `/metrics`. It shows counts and states, never a message
//! body, an address list or a secret.

use std::net::SocketAddr;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// `[admin]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: default_listen(),
        }
    }
}

/// What readiness depends on besides the store.
#[derive(Default)]
pub struct Readiness {
    /// Every source has started (listeners bound, files opened).
    pub sources_started: AtomicBool,
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

pub async fn serve<S: Store>(
    listener: tokio::net::TcpListener,
    store: S,
    metrics: PrometheusHandle,
    readiness: Arc<Readiness>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(listen = %listener.local_addr()?, "admin listener: /healthz /readyz /metrics");
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready::<S>))
        .route("/metrics", get(render::<S>))
        .with_state(Arc::new(Shared {
            store,
            metrics,
            readiness,
        }));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
}

async fn ready<S: Store>(State(shared): State<Arc<Shared<S>>>) -> (StatusCode, &'static str) {
    if !shared.readiness.sources_started.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting\n");
    }
    match shared.store.counts().await {
        Ok(_) => (StatusCode::OK, "ready\n"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store unreachable\n"),
    }
}

async fn render<S: Store>(State(shared): State<Arc<Shared<S>>>) -> String {
    if let Ok(counts) = shared.store.counts().await {
        metrics::gauge!("herald_outbox_notifications", "state" => "pending")
            .set(counts.pending as f64);
        metrics::gauge!("herald_outbox_notifications", "state" => "sent").set(counts.sent as f64);
        metrics::gauge!("herald_outbox_notifications", "state" => "failed")
            .set(counts.failed as f64);
    }
    shared.metrics.run_upkeep();
    shared.metrics.render()
}

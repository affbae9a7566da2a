//! `kind = "http"`: audit records `POST`ed to `listen` + `path`, in any format the decoders
//! accept, optionally gzip-compressed.
//!
//! The answer is the acknowledgement (ARCHITECTURE.md §2.1): `200` with counts only after the batch is
//! committed. A body with no usable record gets `400` naming each position and reason — and is
//! kept as dead letters all the same. Without the bearer token: `401`. Too large (before or
//! after decompression): `413`.

use std::io::Read;
use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::pipeline::{Ingest, Piece};
use crate::store::{Store, StoreError};
use crate::values::{Secret, SecretSource};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSourceConfig {
    pub name: String,
    pub listen: SocketAddr,
    #[serde(default = "default_path")]
    pub path: String,
    /// The bearer token clients must send; required unless `auth = "none"`.
    pub token: Option<SecretSource>,
    #[serde(default)]
    pub auth: Auth,
    /// Largest body accepted, in bytes, after decompression (default 1 MiB, Event Hubs'
    /// message limit).
    #[serde(default = "default_max_body")]
    pub max_body: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Auth {
    #[default]
    Bearer,
    None,
}

fn default_path() -> String {
    "/ingest".to_owned()
}

fn default_max_body() -> usize {
    1 << 20
}

impl HttpSourceConfig {
    /// The token, resolved; `None` only when the operator wrote `auth = "none"`.
    pub fn resolve_token(&self, base: &std::path::Path) -> Result<Option<Secret>, String> {
        match (self.auth, &self.token) {
            (Auth::None, None) => Ok(None),
            (Auth::None, Some(_)) => Err("token is set but auth = \"none\": remove one".into()),
            (Auth::Bearer, None) => Err("token is required (token = { env = \"HERALD_INGEST_TOKEN\" }), or write auth = \"none\" to accept anyone".into()),
            (Auth::Bearer, Some(source)) => source.resolve(base).map(Some).map_err(|e| format!("token: {e}")),
        }
    }
}

struct Shared<S: Store> {
    name: String,
    token: Option<Secret>,
    max_body: usize,
    ingest: Ingest<S>,
}

/// Serves until `stop`; an error only if the listener cannot be bound.
pub async fn run<S: Store>(
    config: HttpSourceConfig,
    token: Option<Secret>,
    ingest: Ingest<S>,
    stop: CancellationToken,
) -> Result<(), StoreError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            StoreError::new(
                &format!("source {}: listening on {}", config.name, config.listen),
                e,
            )
        })?;
    let shared = std::sync::Arc::new(Shared {
        name: config.name.clone(),
        token,
        max_body: config.max_body,
        ingest,
    });
    // The compressed body may not exceed the limit either.
    let app = Router::new()
        .route(&config.path, post(receive::<S>))
        .layer(DefaultBodyLimit::max(config.max_body))
        .with_state(shared);
    tracing::info!(source = %config.name, listen = %config.listen, path = %config.path, "accepting audit records over HTTP");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .map_err(|e| StoreError::new(&format!("source {}", config.name), e))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

async fn receive<S: Store>(
    State(shared): State<std::sync::Arc<Shared<S>>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    if let Some(token) = &shared.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given.is_none_or(|g| !constant_time_eq(g.as_bytes(), token.expose().as_bytes())) {
            return error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
        }
    }
    let body = match body {
        Ok(body) => body,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {} bytes", shared.max_body),
            );
        }
        Err(e) => return error(e.status(), e.body_text()),
    };
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let bytes = if gzip {
        let mut out = Vec::new();
        let limit = shared.max_body as u64 + 1;
        if let Err(e) = flate2::read::GzDecoder::new(&body[..])
            .take(limit)
            .read_to_end(&mut out)
        {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the gzip body does not decompress: {e}"),
            );
        }
        if out.len() > shared.max_body {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the body is larger than {} bytes once decompressed",
                    shared.max_body
                ),
            );
        }
        out
    } else {
        body.to_vec()
    };

    let piece = Piece {
        source: &shared.name,
        input: "request body",
        bytes: &bytes,
        first_line: 1,
        checkpoint: None,
    };
    match shared.ingest.commit_with_dead_letters(piece).await {
        Ok((intake, dead)) if intake.records == 0 && intake.skipped == 0 && !dead.is_empty() => {
            let errors: Vec<_> = dead
                .iter()
                .map(|(position, reason)| json!({ "position": position, "reason": reason }))
                .collect();
            (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "error": "no usable audit record in the body; it was kept as dead letters", "errors": errors })),
            )
                .into_response()
        }
        Ok((intake, _)) => (StatusCode::OK, axum::Json(intake)).into_response(),
        Err(e) => {
            tracing::error!(source = %shared.name, error = %e, "could not commit a request");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store is unavailable; retry later",
            )
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

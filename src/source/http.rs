//! `kind = "http"`: audit records `POST`ed to `listen` + `path`, in any format the decoders
//! accept, optionally gzip-compressed.
//!
//! The answer is the acknowledgement (ARCHITECTURE.md §2.1): `200` with counts only after the batch is
//! committed. A body with no usable record gets `400` naming each position and reason — and is
//! kept as dead letters all the same. Without the bearer token: `401`. Too large (before or
//! after decompression): `413`.
//!
//! With `tls = { cert, key }` the listener speaks HTTPS only (rustls), so the token never
//! crosses the network in the clear; connections are served by [`crate::web::listener`], which
//! bounds the TLS handshake and the headers' arrival (`request_timeout`).
//!
//! The token and the concurrency limit are checked before a byte of the body is read, so a
//! client without the token cannot make Herald buffer `max_body` per connection; a body that
//! does not arrive within `request_timeout` gets `408`, and requests beyond `max_concurrent`
//! get `503` with `Retry-After` at once rather than queueing (a sender retries; a queue would
//! hold memory for clients that may never finish).

use std::io::Read;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::pipeline::{Ingest, Piece};
use crate::store::{Store, StoreError};
use crate::values::{Secret, SecretSource};
use crate::web::listener::{self, TlsFiles};

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
    /// How long the whole body may take to arrive (default 30 s).
    #[serde(
        default = "default_request_timeout",
        deserialize_with = "crate::values::duration"
    )]
    pub request_timeout: std::time::Duration,
    /// Requests handled at once; more get `503` (default 16).
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    /// Serve HTTPS with this certificate and key.
    pub tls: Option<TlsFiles>,
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

fn default_request_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(30)
}

fn default_max_concurrent() -> usize {
    16
}

impl HttpSourceConfig {
    /// What `herald check` refuses in this source, as (key, message): a `path` the router
    /// cannot serve (it would stop `herald run` at start), TLS files that cannot be used.
    /// Relative paths are from `base`.
    pub fn problem(&self, base: &std::path::Path) -> Option<(&'static str, String)> {
        if let Some(tls) = &self.tls
            && let Err(e) = tls.acceptor(base)
        {
            return Some(("tls", e));
        }
        let p = &self.path;
        if !p.starts_with('/') {
            return Some((
                "path",
                format!("{p:?} must start with `/` (e.g. \"/ingest\")"),
            ));
        }
        if p.contains(['{', '}', '*', '?', '#'])
            || p.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Some((
                "path",
                format!("{p:?} is not a plain URL path: no `{{`, `}}`, `*`, `?`, `#` or spaces"),
            ));
        }
        None
    }

    /// What `herald check` warns about, as (key, message): a bearer token that would cross the
    /// network in the clear (a plain listener on an address other than loopback).
    pub fn warning(&self) -> Option<(&'static str, String)> {
        (self.token.is_some() && self.tls.is_none() && !self.listen.ip().is_loopback()).then(|| {
            (
                "tls",
                format!(
                    "the bearer token travels in the clear to {}: set tls = {{ cert = \"…\", key = \"…\" }}, or listen on 127.0.0.1 behind a proxy that terminates TLS",
                    self.listen
                ),
            )
        })
    }

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
    request_timeout: std::time::Duration,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    ingest: Ingest<S>,
}

/// Serves until `stop`; an error only if the listener cannot be bound or its TLS files read.
pub async fn run<S: Store>(
    config: HttpSourceConfig,
    base: std::path::PathBuf,
    token: Option<Secret>,
    ingest: Ingest<S>,
    stop: CancellationToken,
) -> Result<(), StoreError> {
    let context = format!("source {}", config.name);
    let tls = config
        .tls
        .as_ref()
        .map(|tls| tls.acceptor(&base))
        .transpose()
        .map_err(|e| StoreError::new(&format!("{context}: tls"), e))?;
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
        request_timeout: config.request_timeout,
        permits: std::sync::Arc::new(tokio::sync::Semaphore::new(config.max_concurrent.max(1))),
        ingest,
    });
    let app = Router::new()
        .route(&config.path, post(receive::<S>))
        .with_state(shared);
    let scheme = if tls.is_some() { "HTTPS" } else { "HTTP" };
    tracing::info!(source = %config.name, listen = %config.listen, path = %config.path, "accepting audit records over {scheme}");
    listener::serve(listener, tls, config.request_timeout, app, stop).await;
    Ok(())
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// What a request brought in, carried from [`handle`] to the log line of [`receive`].
#[derive(Clone, Copy, Default)]
struct Counts {
    records: u64,
    queued: u64,
    dead_letters: u64,
}

/// Every request is logged at info: source, status and counts; never the body or the token.
async fn receive<S: Store>(
    State(shared): State<std::sync::Arc<Shared<S>>>,
    request: Request,
) -> Response {
    let response = handle(&shared, request).await;
    let counts = response
        .extensions()
        .get::<Counts>()
        .copied()
        .unwrap_or_default();
    tracing::info!(
        source = %shared.name,
        status = response.status().as_u16(),
        records = counts.records,
        queued = counts.queued,
        dead_letters = counts.dead_letters,
        "ingest request"
    );
    response
}

async fn handle<S: Store>(shared: &Shared<S>, request: Request) -> Response {
    let headers = request.headers().clone();
    if let Some(token) = &shared.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given.is_none_or(|g| !constant_time_eq(g.as_bytes(), token.expose().as_bytes())) {
            return error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
        }
    }
    // Without a token, only a JSON content type: a cross-site form in a browser on the
    // internal network can send only the "simple" types, so it cannot forge records.
    if shared.token.is_none() {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|v| v == "application/json" || v == "application/x-ndjson");
        if !json {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "with auth = \"none\", Content-Type must be application/json or application/x-ndjson",
            );
        }
    }
    let Ok(_permit) = shared.permits.clone().try_acquire_owned() else {
        let mut response = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many requests at once; retry later",
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
        return response;
    };
    // Only now, with the token checked and a permit held, is the body read; the compressed
    // body may not exceed the limit either.
    let read = read_body(request.into_body(), shared.max_body);
    let body = match tokio::time::timeout(shared.request_timeout, read).await {
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body did not arrive within {} s",
                    shared.request_timeout.as_secs_f64()
                ),
            );
        }
        Ok(Ok(body)) => body,
        Ok(Err(BodyError::TooLarge)) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {} bytes", shared.max_body),
            );
        }
        Ok(Err(BodyError::Read(e))) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body could not be read: {e}"),
            );
        }
    };
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let bytes = match decode_body(body, encoding, shared.max_body) {
        Ok(bytes) => bytes,
        Err(refused @ BodyRefused::TooLarge(_)) => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, refused.to_string());
        }
        Err(refused @ BodyRefused::Gzip(_)) => {
            return error(StatusCode::BAD_REQUEST, refused.to_string());
        }
    };

    let piece = Piece {
        source: &shared.name,
        input: "request body",
        bytes: &bytes,
        first_line: 1,
        checkpoint: None,
    };
    match shared.ingest.commit_with_dead_letters(piece).await {
        Ok((intake, dead)) => {
            let counts = Counts {
                records: intake.records,
                queued: intake.committed.queued,
                dead_letters: dead.len() as u64,
            };
            let errors: Vec<_> = dead
                .iter()
                .map(|(position, reason)| json!({ "position": position, "reason": reason }))
                .collect();
            let mut response = if intake.records == 0 && intake.skipped == 0 && !errors.is_empty() {
                (
                        StatusCode::BAD_REQUEST,
                        axum::Json(json!({ "error": "no usable audit record in the body; it was kept as dead letters", "errors": errors })),
                    )
                        .into_response()
            } else {
                // A partial success names each dead letter as the 400 does.
                let mut body = serde_json::to_value(&intake).unwrap_or_else(|_| json!({}));
                if !errors.is_empty() {
                    body["errors"] = serde_json::Value::Array(errors);
                }
                (StatusCode::OK, axum::Json(body)).into_response()
            };
            response.extensions_mut().insert(counts);
            response
        }
        Err(e) => {
            tracing::error!(source = %shared.name, error = %e, "could not commit a request");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store is unavailable; retry later",
            )
        }
    }
}

/// Why [`decode_body`] refuses a body: `413` or `400`.
#[derive(Debug, thiserror::Error)]
pub enum BodyRefused {
    #[error("the body is larger than {0} bytes once decompressed")]
    TooLarge(usize),
    #[error("the gzip body does not decompress: {0}")]
    Gzip(std::io::Error),
}

/// The body as read (at most `max_body` bytes as sent) turned into input: gzip, named by
/// `Content-Encoding` or recognised by its magic bytes (a gzip body sent without the header
/// is still gzip), is decompressed — every member, as `cat a.gz b.gz` writes them — and may
/// not exceed `max_body` once decompressed either; anything else is the input as it is.
pub fn decode_body(
    body: Vec<u8>,
    content_encoding: Option<&str>,
    max_body: usize,
) -> Result<Vec<u8>, BodyRefused> {
    let gzip = content_encoding.is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"))
        || body.starts_with(&[0x1f, 0x8b]);
    if !gzip {
        return Ok(body);
    }
    let mut out = Vec::new();
    let limit = max_body as u64 + 1;
    flate2::read::MultiGzDecoder::new(&body[..])
        .take(limit)
        .read_to_end(&mut out)
        .map_err(BodyRefused::Gzip)?;
    if out.len() > max_body {
        return Err(BodyRefused::TooLarge(max_body));
    }
    Ok(out)
}

enum BodyError {
    TooLarge,
    Read(axum::Error),
}

/// Reads the body frame by frame, stopping as soon as it passes `limit`.
async fn read_body(mut body: axum::body::Body, limit: usize) -> Result<Vec<u8>, BodyError> {
    use axum::body::HttpBody;
    let mut out = Vec::new();
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        let frame = frame.map_err(BodyError::Read)?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(BodyError::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

//! `/api/v1`: what the pages show, as JSON, for a session or a bearer token (scripts), with
//! the same roles. A `POST` with a session cookie must carry its CSRF token in
//! `X-CSRF-Token` and come from the dashboard's origin; with a bearer token it needs neither.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::pages::{
    EventFilter, EventId, OutboxFilter, Paged, event_keys, id_keys, is_key, outbox_keys, page_of,
    pretty,
};
use super::{Credential, Role, Shared, Who, store_down};
use crate::store::Store;

pub(super) fn routes<S: Store>() -> Router<Arc<Shared<S>>> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/overview", get(overview::<S>))
        .route("/api/v1/events", get(events::<S>))
        .route("/api/v1/event", get(event::<S>))
        .route("/api/v1/outbox", get(outbox::<S>))
        .route("/api/v1/outbox/{key}", get(notice::<S>))
        .route("/api/v1/outbox/{key}/retry", post(retry::<S>))
        .route("/api/v1/actions", get(actions::<S>))
        .route(
            "/api/v1/silences",
            get(super::silences::list_api::<S>).post(super::silences::add_api::<S>),
        )
        .route(
            "/api/v1/silences/{id}/expire",
            post(super::silences::expire_api::<S>),
        )
        .route("/api/v1/dead-letters", get(dead_letters::<S>))
        .route("/api/v1/dead-letters/{id}/replay", post(replay::<S>))
        .route("/api/v1/dead-letters/{id}/resolve", post(resolve::<S>))
}

/// The OpenAPI 3.1 document of this API.
const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

/// A query axum reads as `Query` does, refused as every other error of this API: a JSON 400.
pub(super) struct ApiQuery<T>(pub(super) T);

/// A path parameter read as `Path` does, refused as a JSON 400.
pub(super) struct ApiPath<T>(pub(super) T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|e| error(StatusCode::BAD_REQUEST, &e.to_string()))
    }
}

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|e| error(StatusCode::BAD_REQUEST, &e.to_string()))
    }
}

pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

#[expect(
    clippy::result_large_err,
    reason = "the refusal is the handler's own response, returned at once"
)]
pub(super) fn reader<S: Store>(
    shared: &Shared<S>,
    headers: &HeaderMap,
) -> Result<(Who, Credential), Response> {
    shared.who(headers).ok_or_else(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "sign in, or send Authorization: Bearer with a dashboard token",
        )
    })
}

async fn overview<S: Store>(State(shared): State<Arc<Shared<S>>>, headers: HeaderMap) -> Response {
    if let Err(r) = reader(&shared, &headers) {
        return r;
    }
    match tokio::try_join!(shared.store.backlog(), shared.store.pending_by_channel()) {
        Ok((backlog, pending)) => Json(json!({
            "outbox": { "pending": backlog.pending, "failed": backlog.failed },
            "pending_by_channel": pending,
            "paused_channels": shared.readiness.paused_channels(),
            "sources_not_ready": shared.readiness.sources_not_ready(),
        }))
        .into_response(),
        Err(e) => store_down(e),
    }
}

async fn events<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    ApiQuery(filter): ApiQuery<EventFilter>,
) -> Response {
    if let Err(r) = reader(&shared, &headers) {
        return r;
    }
    let query = match filter.query() {
        Ok(q) => q,
        Err(why) => return error(StatusCode::BAD_REQUEST, why.as_str()),
    };
    match shared.store.events(&query).await {
        Ok(rows) => {
            let (rows, next) = page_of(rows, query.limit - 1, event_keys);
            Json(json!({ "events": rows, "next": next })).into_response()
        }
        Err(e) => store_down(e),
    }
}

async fn event<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    ApiQuery(id): ApiQuery<EventId>,
) -> Response {
    let who = match reader(&shared, &headers) {
        Ok((who, _)) => who,
        Err(r) => return r,
    };
    let found = match shared.store.event(id.tenant.as_deref(), &id.id).await {
        Ok(Some(found)) => found,
        Ok(None) => return error(StatusCode::NOT_FOUND, "no such event"),
        Err(e) => return store_down(e),
    };
    let (entry, raw) = found;
    let notices = crate::store::OutboxQuery {
        event: Some(entry.event_id.clone()),
        limit: 1000,
        ..crate::store::OutboxQuery::default()
    };
    match tokio::try_join!(
        shared.store.history(&entry.tenant, &entry.event_id),
        shared.store.outbox(&notices)
    ) {
        Ok((history, notices)) => Json(json!({
            "event": entry,
            // What notices never show is in it: operators only.
            "record": (who.role == Role::Operator).then(|| pretty(&raw)),
            "facts": (shared.describer)(&raw),
            "rules": history,
            "notifications": notices,
        }))
        .into_response(),
        Err(e) => store_down(e),
    }
}

async fn outbox<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    ApiQuery(filter): ApiQuery<OutboxFilter>,
) -> Response {
    if let Err(r) = reader(&shared, &headers) {
        return r;
    }
    let query = match filter.query() {
        Ok(q) => q,
        Err(why) => return error(StatusCode::BAD_REQUEST, why.as_str()),
    };
    match shared.store.outbox(&query).await {
        Ok(rows) => {
            let (rows, next) = page_of(rows, query.limit - 1, outbox_keys);
            Json(json!({ "notifications": rows, "next": next })).into_response()
        }
        Err(e) => store_down(e),
    }
}

async fn notice<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    ApiPath(key): ApiPath<String>,
) -> Response {
    if let Err(r) = reader(&shared, &headers) {
        return r;
    }
    match tokio::try_join!(shared.store.notification(&key), shared.store.attempts(&key)) {
        Ok((Some((row, _)), attempts)) => {
            Json(json!({ "notification": row, "attempts": attempts })).into_response()
        }
        Ok((None, _)) => error(StatusCode::NOT_FOUND, "no such notification"),
        Err(e) => store_down(e),
    }
}

/// An operator's state change: a bearer token, or a session with its `X-CSRF-Token` from the
/// dashboard's origin; and the operator role.
pub(super) fn operator<S: Store>(
    shared: &Shared<S>,
    headers: &HeaderMap,
    what: &str,
) -> Result<crate::store::Operator, Box<Response>> {
    let (who, credential) = reader(shared, headers).map_err(Box::new)?;
    if let Credential::Session(cookie) = &credential {
        let csrf = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !shared.same_origin(headers) || !shared.sessions.csrf_ok(cookie, csrf) {
            return Err(Box::new(error(
                StatusCode::FORBIDDEN,
                "a request with a session needs its X-CSRF-Token, from the dashboard's origin",
            )));
        }
    }
    if who.role != Role::Operator {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            &format!("{what} needs the operator role"),
        )));
    }
    Ok(crate::store::Operator {
        name: who.name,
        role: who.role.as_str().to_owned(),
    })
}

async fn retry<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    ApiPath(key): ApiPath<String>,
) -> Response {
    let operator = match operator(&shared, &headers, "retrying") {
        Ok(o) => o,
        Err(r) => return *r,
    };
    if !is_key(&key) {
        return error(StatusCode::BAD_REQUEST, "not a notification key");
    }
    match shared.store.retry_by(Some(&key), &operator).await {
        Ok(n) => Json(json!({ "retried": n })).into_response(),
        Err(e) => store_down(e),
    }
}

async fn dead_letters<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    ApiQuery(paged): ApiQuery<Paged>,
) -> Response {
    if let Err(r) = reader(&shared, &headers) {
        return r;
    }
    let (before, limit) = match paged.before() {
        Ok(b) => b,
        Err(why) => return error(StatusCode::BAD_REQUEST, why.as_str()),
    };
    match shared.store.dead_letters_before(before, limit).await {
        Ok(letters) => {
            let (letters, next) = page_of(letters, limit - 1, |d| id_keys(d.id));
            let letters: Vec<_> = letters
                .iter()
                .map(|d| {
                    json!({
                        "id": d.id, "source": d.source, "input": d.input, "position": d.position,
                        "reason": d.reason, "created_at": d.created_at, "replays": d.replays,
                        "resolved_at": d.resolved_at, "raw": String::from_utf8_lossy(&d.raw),
                    })
                })
                .collect();
            Json(json!({ "dead_letters": letters, "next": next })).into_response()
        }
        Err(e) => store_down(e),
    }
}

async fn replay<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
) -> Response {
    let by = match operator(&shared, &headers, "replaying") {
        Ok(o) => o,
        Err(r) => return *r,
    };
    match (shared.replayer)(id, by).await {
        Ok(outcome) => Json(json!({ "replayed": id, "outcome": outcome })).into_response(),
        Err(e) if e.starts_with("no dead letter") => error(StatusCode::NOT_FOUND, &e),
        Err(e) => store_down(e),
    }
}

async fn resolve<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
) -> Response {
    let by = match operator(&shared, &headers, "resolving") {
        Ok(o) => o,
        Err(r) => return *r,
    };
    match shared
        .store
        .resolve_dead_letters_by(Some(id), Some(&by))
        .await
    {
        Ok(n) => Json(json!({ "resolved": n })).into_response(),
        Err(e) => store_down(e),
    }
}

async fn actions<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    ApiQuery(paged): ApiQuery<Paged>,
) -> Response {
    if let Err(r) = reader(&shared, &headers) {
        return r;
    }
    let (before, limit) = match paged.before() {
        Ok(b) => b,
        Err(why) => return error(StatusCode::BAD_REQUEST, why.as_str()),
    };
    match shared.store.operator_actions_before(before, limit).await {
        Ok(actions) => {
            let (actions, next) = page_of(actions, limit - 1, |a| id_keys(a.id));
            Json(json!({ "actions": actions, "next": next })).into_response()
        }
        Err(e) => store_down(e),
    }
}

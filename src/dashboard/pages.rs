//! The dashboard's pages, rendered on the server from `templates/dashboard/` (names end in
//! `.html`: minijinja escapes every value, all of which may come from an audit record). Each
//! page is a plain document with links and forms: no script is needed, and none runs (the
//! listener's policy allows none).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::value::Serde;
use minijinja::{Environment, Value, context};
use serde::Deserialize;

use super::{COOKIE, Credential, Role, Shared, Who, store_down};
use crate::store::{OutboxQuery, State as RowState, Store};

/// The pages' templates, built into the binary.
pub(crate) struct Templates(Environment<'static>);

const TEMPLATES: &[(&str, &str)] = &[
    (
        "base.html",
        include_str!("../../templates/dashboard/base.html"),
    ),
    (
        "login.html",
        include_str!("../../templates/dashboard/login.html"),
    ),
    (
        "silences.html",
        include_str!("../../templates/dashboard/silences.html"),
    ),
    (
        "overview.html",
        include_str!("../../templates/dashboard/overview.html"),
    ),
    (
        "outbox.html",
        include_str!("../../templates/dashboard/outbox.html"),
    ),
    (
        "notice.html",
        include_str!("../../templates/dashboard/notice.html"),
    ),
    (
        "events.html",
        include_str!("../../templates/dashboard/events.html"),
    ),
    (
        "event.html",
        include_str!("../../templates/dashboard/event.html"),
    ),
    (
        "dead-letters.html",
        include_str!("../../templates/dashboard/dead-letters.html"),
    ),
    (
        "dead-letter.html",
        include_str!("../../templates/dashboard/dead-letter.html"),
    ),
    (
        "config.html",
        include_str!("../../templates/dashboard/config.html"),
    ),
    (
        "actions.html",
        include_str!("../../templates/dashboard/actions.html"),
    ),
    (
        "refused.html",
        include_str!("../../templates/dashboard/refused.html"),
    ),
];

impl Templates {
    pub(crate) fn new() -> Result<Templates, String> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        env.add_filter("time", |ms: Option<i64>| -> String {
            ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
                .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default()
        });
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .map_err(|e| format!("dashboard template {name}: {e}"))?;
        }
        Ok(Templates(env))
    }

    pub(super) fn render_page(&self, name: &str, ctx: Value) -> Response {
        self.render(name, ctx)
    }

    fn render(&self, name: &str, ctx: Value) -> Response {
        match self.0.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                tracing::error!(error = %e, template = name, "dashboard: a page could not be rendered");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page could not be rendered\n",
                )
                    .into_response()
            }
        }
    }
}

pub(super) fn routes<S: Store>() -> Router<Arc<Shared<S>>> {
    Router::new()
        .route("/", get(overview::<S>))
        .route("/login", get(login_page::<S>).post(login::<S>))
        .route("/logout", post(logout::<S>))
        .route("/events", get(events::<S>))
        .route("/event", get(event::<S>))
        .route("/outbox", get(outbox::<S>))
        .route("/outbox/retry", post(retry::<S>))
        .route("/outbox/{key}", get(notice::<S>))
        .route("/dead-letters", get(dead_letters::<S>))
        .route("/dead-letters/{id}", get(dead_letter::<S>))
        .route("/dead-letters/{id}/replay", post(replay::<S>))
        .route("/dead-letters/{id}/resolve", post(resolve::<S>))
        .route("/config", get(config::<S>))
        .route("/actions", get(actions::<S>))
        .route(
            "/silences",
            get(super::silences::list_page::<S>).post(super::silences::add_form::<S>),
        )
        .route(
            "/silences/{id}/expire",
            post(super::silences::expire_form::<S>),
        )
}

/// The signed-in operator, or the way to the sign-in page.
#[expect(
    clippy::result_large_err,
    reason = "the refusal is the handler's own response, returned at once"
)]
pub(super) fn signed_in<S: Store>(
    shared: &Shared<S>,
    headers: &HeaderMap,
) -> Result<(Who, String), Response> {
    match shared.who(headers) {
        Some((who, Credential::Session(cookie))) => Ok((who, cookie)),
        _ => Err(Redirect::to("/login").into_response()),
    }
}

/// What every page shows of who is signed in, and the CSRF token its forms carry.
pub(super) fn page(shared: &Shared<impl Store>, who: &Who, cookie: &str) -> Value {
    context! {
        who => context! { name => &who.name, role => who.role.as_str(), operator => who.role == Role::Operator },
        csrf => shared.sessions.csrf(cookie),
    }
}

pub(super) fn refused(shared: &Shared<impl Store>, status: StatusCode, why: &str) -> Response {
    let mut response = shared.pages.render(
        "refused.html",
        context! { why => why, status => status.as_u16() },
    );
    *response.status_mut() = status;
    response
}

async fn login_page<S: Store>(State(shared): State<Arc<Shared<S>>>) -> Response {
    shared.pages.render(
        "login.html",
        context! { entra => shared.entra.is_some(), tokens => shared.sessions.has_tokens() },
    )
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if !shared.same_origin(&headers) {
        return refused(
            &shared,
            StatusCode::FORBIDDEN,
            "This form was not sent from Herald's own page.",
        );
    }
    let Some(who) = shared.sessions.by_token(&form.token) else {
        tracing::warn!("dashboard: a sign-in with an unknown token");
        let mut response = shared.pages.render(
            "login.html",
            context! { failed => true, entra => shared.entra.is_some(), tokens => true },
        );
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return response;
    };
    tracing::info!(operator = %who.name, role = who.role.as_str(), "dashboard: signed in");
    let value = shared.sessions.issue(
        &who,
        super::session::Via::Token,
        jiff::Timestamp::now().as_second(),
    );
    let cookie = format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        shared.sessions.lifetime(),
        if shared.secure_cookies() {
            "; Secure"
        } else {
            ""
        }
    );
    let mut response = Redirect::to("/").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: Option<String>,
}

/// A state change from a browser: signed in, from the dashboard itself, with its session's
/// CSRF token.
#[expect(
    clippy::result_large_err,
    reason = "the refusal is the handler's own response, returned at once"
)]
fn checked_post<S: Store>(
    shared: &Shared<S>,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<(Who, String), Response> {
    let (who, cookie) = signed_in(shared, headers)?;
    if !shared.same_origin(headers) || !shared.sessions.csrf_ok(&cookie, csrf) {
        tracing::warn!(operator = %who.name, "dashboard: a form without this session's CSRF token, or from another site");
        return Err(refused(
            shared,
            StatusCode::FORBIDDEN,
            "This form was not sent from Herald's own page.",
        ));
    }
    Ok((who, cookie))
}

async fn logout<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refusal) = checked_post(&shared, &headers, &form.csrf) {
        return refusal;
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("herald_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

async fn overview<S: Store>(State(shared): State<Arc<Shared<S>>>, headers: HeaderMap) -> Response {
    let (who, cookie) = match signed_in(&shared, &headers) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let since = crate::store::now_millis() - 24 * 3_600_000;
    let (backlog, pending, (all, not_me), actions, day) = match tokio::try_join!(
        shared.store.backlog(),
        shared.store.pending_by_channel(),
        shared.store.report_counts(since),
        shared.store.operator_actions(10),
        shared.store.activity(since),
    ) {
        Ok(read) => read,
        Err(e) => return store_down(e),
    };
    shared.pages.render(
        "overview.html",
        context! {
            backlog => Value::from(Serde(backlog)),
            pending => pending,
            paused => shared.readiness.paused_channels(),
            not_ready => shared.readiness.sources_not_ready(),
            reports => context! { all => all, not_me => not_me },
            day => context! {
                events => day.events,
                by_channel => day.notices.iter().map(|(channel, state, n)| context! {
                    channel => channel, state => state, n => n,
                }).collect::<Vec<_>>(),
            },
            newest => shared.readiness.newest_records().into_iter().map(|(source, ms)| context! {
                source => source,
                at => ms,
                lag => (crate::store::now_millis() - ms).max(0) / 1000,
            }).collect::<Vec<_>>(),
            actions => Value::from(Serde(&actions)),
            ..page(&shared, &who, &cookie)
        },
    )
}

#[derive(Deserialize, Default)]
pub(super) struct OutboxFilter {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub rule: Option<String>,
    #[serde(default)]
    pub recipient: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub event: Option<String>,
    /// The page after the one that gave this cursor.
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub limit: Option<i64>,
}

impl OutboxFilter {
    /// The store's query; an empty field is no filter, an unknown state is refused. It asks
    /// for one row more than the page holds, to know whether another page follows.
    pub(super) fn query(&self) -> Result<OutboxQuery, String> {
        let some = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        let state = match some(&self.state).as_deref() {
            None => None,
            Some("pending") => Some(RowState::Pending),
            Some("sent") => Some(RowState::Sent),
            Some("failed") => Some(RowState::Failed),
            Some("held") => Some(RowState::Held),
            Some("merged") => Some(RowState::Merged),
            Some("suppressed") => Some(RowState::Suppressed),
            Some(other) => {
                return Err(format!(
                    "no state {other:?}: pending, sent, failed, held, merged or suppressed"
                ));
            }
        };
        let after = match some(&self.cursor) {
            Some(cursor) => {
                let (at, mut keys) = super::cursor::decode(&cursor, 1)?;
                Some((at, keys.remove(0)))
            }
            None => None,
        };
        Ok(OutboxQuery {
            state,
            since: None,
            rule: some(&self.rule),
            recipient: some(&self.recipient),
            channel: some(&self.channel),
            event: some(&self.event),
            after,
            limit: super::cursor::limit(self.limit)? + 1,
        })
    }

    /// This filter's page after `cursor`, as a link.
    fn next_link(&self, cursor: &str) -> String {
        let mut url = reqwest::Url::parse("http://herald/outbox").expect("a URL");
        {
            let mut q = url.query_pairs_mut();
            for (name, value) in [
                ("state", &self.state),
                ("rule", &self.rule),
                ("recipient", &self.recipient),
                ("channel", &self.channel),
                ("event", &self.event),
            ] {
                if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                    q.append_pair(name, v);
                }
            }
            q.append_pair("cursor", cursor);
        }
        format!("/outbox?{}", url.query().unwrap_or_default())
    }
}

/// The page of `rows` (fetched one longer than `limit`) and the cursor after it, if more
/// follow; `cursor` gives a row's.
pub(super) fn page_of<T>(
    mut rows: Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let limit = limit.max(0) as usize;
    if rows.len() <= limit {
        return (rows, None);
    }
    rows.truncate(limit);
    let next = rows.last().map(cursor);
    (rows, next)
}

/// The cursor after an outbox row.
pub(super) fn outbox_keys(row: &crate::store::OutboxEntry) -> String {
    super::cursor::encode(row.created_at, &[&row.key])
}

/// The cursor after an event.
pub(super) fn event_keys(row: &crate::store::EventEntry) -> String {
    super::cursor::encode(row.event_time, &[&row.event_id, &row.tenant])
}

/// The cursor after a row of a list by id (dead letters, actions).
pub(super) fn id_keys(id: i64) -> String {
    super::cursor::encode(id, &[])
}

async fn outbox<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    Query(filter): Query<OutboxFilter>,
) -> Response {
    let (who, cookie) = match signed_in(&shared, &headers) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let query = match filter.query() {
        Ok(q) => q,
        Err(why) => return refused(&shared, StatusCode::BAD_REQUEST, why.as_str()),
    };
    let rows = match shared.store.outbox(&query).await {
        Ok(rows) => rows,
        Err(e) => return store_down(e),
    };
    let (rows, next) = page_of(rows, query.limit - 1, outbox_keys);
    shared.pages.render(
        "outbox.html",
        context! {
            rows => Value::from(Serde(&rows)),
            next => next.map(|c| filter.next_link(&c)),
            filter => context! {
                state => &filter.state, rule => &filter.rule, channel => &filter.channel,
                recipient => &filter.recipient, event => &filter.event,
            },
            ..page(&shared, &who, &cookie)
        },
    )
}

async fn notice<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    let (who, cookie) = match signed_in(&shared, &headers) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let (row, attempts) =
        match tokio::try_join!(shared.store.notification(&key), shared.store.attempts(&key)) {
            Ok(read) => read,
            Err(e) => return store_down(e),
        };
    let Some((row, _message)) = row else {
        return refused(&shared, StatusCode::NOT_FOUND, "No such notification.");
    };
    let why = crate::storm::fate_in_words(row.state.as_str(), row.held_by.as_deref());
    shared.pages.render(
        "notice.html",
        context! {
            why => why,
            row => Value::from(Serde(&row)),
            attempts => Value::from(Serde(&attempts)),
            ..page(&shared, &who, &cookie)
        },
    )
}

async fn retry<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let (who, _) = match checked_post(&shared, &headers, &form.csrf) {
        Ok(w) => w,
        Err(r) => return r,
    };
    if who.role != Role::Operator {
        return refused(
            &shared,
            StatusCode::FORBIDDEN,
            "Retrying needs the operator role; you are signed in as a viewer.",
        );
    }
    let key = form.key.as_deref().filter(|k| !k.is_empty());
    if key.is_some_and(|k| !is_key(k)) {
        return refused(
            &shared,
            StatusCode::BAD_REQUEST,
            "That is not a notification key.",
        );
    }
    let operator = crate::store::Operator {
        name: who.name.clone(),
        role: who.role.as_str().to_owned(),
    };
    match shared.store.retry_by(key, &operator).await {
        Ok(n) => {
            tracing::info!(operator = %who.name, key = key.unwrap_or("every failed"), n, "dashboard: retry");
            match key {
                Some(key) => Redirect::to(&format!("/outbox/{key}")).into_response(),
                None => Redirect::to("/outbox?state=pending").into_response(),
            }
        }
        Err(e) => store_down(e),
    }
}

#[derive(Deserialize, Default)]
pub(super) struct EventFilter {
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub activity: String,
    #[serde(default)]
    pub tenant: String,
    #[serde(default)]
    pub rule: String,
    /// An age (`24h`, `7d`) or a time (`2026-12-01T08:00:00Z`).
    #[serde(default)]
    pub since: String,
    #[serde(default)]
    pub until: String,
    #[serde(default)]
    pub cursor: String,
    #[serde(default)]
    pub limit: Option<i64>,
}

impl EventFilter {
    /// The store's query, one row longer than the page (to know whether another follows).
    pub(super) fn query(&self) -> Result<crate::store::EventQuery, String> {
        let time = |text: &str, what: &str| -> Result<Option<i64>, String> {
            if text.is_empty() {
                return Ok(None);
            }
            if let Some(age) = age_millis(text) {
                return Ok(Some(crate::store::now_millis().saturating_sub(age)));
            }
            text.parse::<jiff::Timestamp>()
                .map(|t| Some(t.as_millisecond()))
                .map_err(|_| {
                    format!(
                        "{what}: {text:?} is neither an age (24h, 7d) nor a time (2026-12-01T08:00:00Z)"
                    )
                })
        };
        Ok(crate::store::EventQuery {
            account: self.account.clone(),
            activity: self.activity.clone(),
            tenant: self.tenant.clone(),
            rule: self.rule.clone(),
            since: time(&self.since, "since")?,
            until: time(&self.until, "until")?,
            after: match self.cursor.as_str() {
                "" => None,
                cursor => {
                    let (time, mut keys) = super::cursor::decode(cursor, 2)?;
                    let tenant = keys.pop().unwrap_or_default();
                    let id = keys.pop().unwrap_or_default();
                    Some((time, id, tenant))
                }
            },
            limit: super::cursor::limit(self.limit)? + 1,
        })
    }

    /// This search's page after `cursor`, as a link.
    fn next_link(&self, cursor: &str) -> String {
        let mut url = reqwest::Url::parse("http://herald/events").expect("a URL");
        {
            let mut q = url.query_pairs_mut();
            for (name, value) in [
                ("account", &self.account),
                ("activity", &self.activity),
                ("tenant", &self.tenant),
                ("rule", &self.rule),
                ("since", &self.since),
                ("until", &self.until),
            ] {
                if !value.is_empty() {
                    q.append_pair(name, value);
                }
            }
            q.append_pair("cursor", cursor);
        }
        format!("/events?{}", url.query().unwrap_or_default())
    }
}

async fn events<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    Query(filter): Query<EventFilter>,
) -> Response {
    let (who, cookie) = match signed_in(&shared, &headers) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let query = match filter.query() {
        Ok(q) => q,
        Err(why) => return refused(&shared, StatusCode::BAD_REQUEST, why.as_str()),
    };
    let rows = match shared.store.events(&query).await {
        Ok(rows) => rows,
        Err(e) => return store_down(e),
    };
    let (rows, next) = page_of(rows, query.limit - 1, event_keys);
    shared.pages.render(
        "events.html",
        context! {
            rows => Value::from(Serde(&rows)),
            next => next.map(|c| filter.next_link(&c)),
            filter => context! {
                account => &filter.account, activity => &filter.activity, tenant => &filter.tenant,
                rule => &filter.rule, since => &filter.since, until => &filter.until,
            },
            ..page(&shared, &who, &cookie)
        },
    )
}

/// An age as the search takes one — digits and a unit (`ms`, `s`, `m`, `h`, `d`) — in
/// milliseconds, however long (a search reaches back as far as asked).
fn age_millis(text: &str) -> Option<i64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().ok()?;
    let unit = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some(n.saturating_mul(unit))
}

#[derive(Deserialize)]
pub(super) struct EventId {
    /// Absent: the event of that id in whichever tenant has it (a notice names no tenant).
    #[serde(default)]
    pub tenant: Option<String>,
    pub id: String,
}

/// The record as it came, pretty-printed when it is JSON.
pub(super) fn pretty(raw: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(raw) {
        Ok(value) => serde_json::to_string_pretty(&value).unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(raw).into_owned(),
    }
}

async fn event<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    Query(id): Query<EventId>,
) -> Response {
    let (who, cookie) = match signed_in(&shared, &headers) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let notices = OutboxQuery {
        event: Some(id.id.clone()),
        limit: 1000,
        ..OutboxQuery::default()
    };
    let (found, notices) = match tokio::try_join!(
        shared.store.event(id.tenant.as_deref(), &id.id),
        shared.store.outbox(&notices),
    ) {
        Ok(read) => read,
        Err(e) => return store_down(e),
    };
    let Some((entry, raw)) = found else {
        return refused(
            &shared,
            StatusCode::NOT_FOUND,
            "No such event (or it is older than the store keeps).",
        );
    };
    let (history, reports) = match tokio::try_join!(
        shared.store.history(&entry.tenant, &entry.event_id),
        shared.store.reports_of_event(&entry.event_id),
    ) {
        Ok(read) => read,
        Err(e) => return store_down(e),
    };
    let mut told = Vec::new();
    for notice in notices {
        match shared.store.attempts(&notice.key).await {
            Ok(attempts) => told.push(context! {
                row => Value::from(Serde(&notice)),
                attempts => Value::from(Serde(&attempts)),
            }),
            Err(e) => return store_down(e),
        }
    }
    shared.pages.render(
        "event.html",
        context! {
            event => Value::from(Serde(&entry)),
            // The record as it came holds what notices never show (device tokens, whole phone
            // numbers): operators only.
            raw => (who.role == Role::Operator).then(|| pretty(&raw)),
            facts => (shared.describer)(&raw),
            history => Value::from(Serde(&history)),
            reports => Value::from(Serde(&reports)),
            notices => told,
            ..page(&shared, &who, &cookie)
        },
    )
}

#[derive(Deserialize, Default)]
pub(super) struct Paged {
    #[serde(default)]
    pub cursor: String,
    #[serde(default)]
    pub limit: Option<i64>,
}

impl Paged {
    /// The id the page starts before, and the rows to fetch (one more than the page).
    pub(super) fn before(&self) -> Result<(Option<i64>, i64), String> {
        let before = match self.cursor.as_str() {
            "" => None,
            cursor => match super::cursor::decode(cursor, 0)?.0 {
                id if id >= 0 => Some(id),
                _ => return Err("cursor: not a cursor of this list".to_owned()),
            },
        };
        Ok((before, super::cursor::limit(self.limit)? + 1))
    }
}

async fn dead_letters<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    Query(paged): Query<Paged>,
) -> Response {
    let (who, cookie) = match signed_in(&shared, &headers) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let (before, limit) = match paged.before() {
        Ok(b) => b,
        Err(why) => return refused(&shared, StatusCode::BAD_REQUEST, why.as_str()),
    };
    match shared.store.dead_letters_before(before, limit).await {
        Ok(letters) => {
            let (letters, next) = page_of(letters, limit - 1, |d| id_keys(d.id));
            shared.pages.render(
                "dead-letters.html",
                context! {
                    letters => Value::from(Serde(&letters)),
                    next => next.map(|c| format!("/dead-letters?cursor={c}")),
                    ..page(&shared, &who, &cookie)
                },
            )
        }
        Err(e) => store_down(e),
    }
}

async fn dead_letter<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let (who, cookie) = match signed_in(&shared, &headers) {
        Ok(w) => w,
        Err(r) => return r,
    };
    match shared.store.dead_letter(id).await {
        Ok(Some(letter)) => shared.pages.render(
            "dead-letter.html",
            context! {
                letter => Value::from(Serde(&letter)),
                raw => pretty(&letter.raw),
                ..page(&shared, &who, &cookie)
            },
        ),
        Ok(None) => refused(&shared, StatusCode::NOT_FOUND, "No such dead letter."),
        Err(e) => store_down(e),
    }
}

/// An operator's state change from a browser form.
pub(super) fn operator_post<S: Store>(
    shared: &Shared<S>,
    headers: &HeaderMap,
    csrf: &str,
    what: &str,
) -> Result<crate::store::Operator, Box<Response>> {
    let (who, _) = checked_post(shared, headers, csrf).map_err(Box::new)?;
    if who.role != Role::Operator {
        return Err(Box::new(refused(
            shared,
            StatusCode::FORBIDDEN,
            &format!("{what} needs the operator role; you are signed in as a viewer."),
        )));
    }
    Ok(crate::store::Operator {
        name: who.name,
        role: who.role.as_str().to_owned(),
    })
}

async fn replay<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let by = match operator_post(&shared, &headers, &form.csrf, "Replaying") {
        Ok(by) => by,
        Err(r) => return *r,
    };
    let name = by.name.clone();
    match (shared.replayer)(id, by).await {
        Ok(outcome) => {
            tracing::info!(operator = %name, id, outcome = %outcome, "dashboard: dead letter replayed");
            Redirect::to(&format!("/dead-letters/{id}")).into_response()
        }
        Err(e) => {
            tracing::warn!(operator = %name, id, error = %e, "dashboard: a replay failed");
            refused(
                &shared,
                StatusCode::SERVICE_UNAVAILABLE,
                "The replay could not be made; see Herald's log.",
            )
        }
    }
}

async fn resolve<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let by = match operator_post(&shared, &headers, &form.csrf, "Resolving") {
        Ok(by) => by,
        Err(r) => return *r,
    };
    match shared
        .store
        .resolve_dead_letters_by(Some(id), Some(&by))
        .await
    {
        Ok(_) => Redirect::to(&format!("/dead-letters/{id}")).into_response(),
        Err(e) => store_down(e),
    }
}

/// A notification key: hex digits (it goes into a `Location`).
pub(super) fn is_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 64 && key.chars().all(|c| c.is_ascii_hexdigit())
}

async fn config<S: Store>(State(shared): State<Arc<Shared<S>>>, headers: HeaderMap) -> Response {
    let (who, cookie) = match signed_in(&shared, &headers) {
        Ok(w) => w,
        Err(r) => return r,
    };
    shared.pages.render(
        "config.html",
        context! { text => &shared.config_text, ..page(&shared, &who, &cookie) },
    )
}

async fn actions<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    Query(paged): Query<Paged>,
) -> Response {
    let (who, cookie) = match signed_in(&shared, &headers) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let (before, limit) = match paged.before() {
        Ok(b) => b,
        Err(why) => return refused(&shared, StatusCode::BAD_REQUEST, why.as_str()),
    };
    match shared.store.operator_actions_before(before, limit).await {
        Ok(actions) => {
            let (actions, next) = page_of(actions, limit - 1, |a| id_keys(a.id));
            shared.pages.render(
                "actions.html",
                context! {
                    actions => Value::from(Serde(&actions)),
                    next => next.map(|c| format!("/actions?cursor={c}")),
                    ..page(&shared, &who, &cookie)
                },
            )
        }
        Err(e) => store_down(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_renders_and_escapes_what_it_is_given() {
        let templates = Templates::new().unwrap();
        let hostile = "<script>alert(1)</script>";
        for name in [
            "login.html",
            "overview.html",
            "outbox.html",
            "notice.html",
            "events.html",
            "event.html",
            "dead-letters.html",
            "dead-letter.html",
            "config.html",
            "actions.html",
            "refused.html",
        ] {
            let ctx = context! {
                who => context! { name => hostile, role => "operator", operator => true },
                csrf => "c",
                why => hostile,
                text => hostile,
                raw => hostile,
                event => context! { activity => hostile, event_id => hostile },
                row => context! { key => "ab", subject => hostile, state => "failed" },
            };
            let html = templates
                .0
                .get_template(name)
                .and_then(|t| t.render(ctx))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!html.contains(hostile), "{name}: {html}");
        }
    }
}

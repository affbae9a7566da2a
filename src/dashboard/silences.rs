//! Silences in the dashboard and its API (ARCHITECTURE.md §12, §13): the page that lists them
//! with what each held, and the operator's forms and calls that make and end them. A silence
//! is checked by the planner (through [`Silencer`]: it must hold some rule that may be
//! silenced) and told to the security group in the transaction that makes it, as from the
//! command line.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;
use serde_json::json;

use super::api::{error, operator, reader};
use super::pages::{operator_post, page, refused, signed_in};
use super::{Shared, store_down};
use crate::store::{NewNotification, NewSilence, Operator, SilenceEntry, Store};
use crate::storm::{Matchers, Weekly};

/// The planner's part of a silence, which the dashboard may not import: whether it may hold
/// any rule's notices, and the security group's notices of it.
#[derive(Clone)]
pub struct Silencer {
    pub check: SilenceCheck,
    pub tell: SilenceTeller,
}

/// Whether a silence may hold any rule's notices (why not, if not).
pub type SilenceCheck = Arc<dyn Fn(&Matchers) -> Result<(), String> + Send + Sync>;

/// The security group's notices of a silence made.
pub type SilenceTeller = Arc<dyn Fn(&SilenceEntry) -> Vec<NewNotification> + Send + Sync>;

/// A silence as a form or the API asks for it.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Asked {
    #[serde(default)]
    matchers: Vec<String>,
    #[serde(default, rename = "for")]
    lasts: Option<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    starts: Option<String>,
    #[serde(default)]
    weekly: Option<String>,
    #[serde(default)]
    comment: String,
}

/// The form: matchers one per line.
#[derive(Debug, Deserialize)]
pub(super) struct SilenceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    matchers: String,
    #[serde(default, rename = "for")]
    lasts: String,
    #[serde(default)]
    weekly: String,
    #[serde(default)]
    comment: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

fn some(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

fn time(text: &str, key: &str) -> Result<i64, String> {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| format!("{key}: not a time like 2026-12-24T18:00:00Z"))
}

impl Asked {
    /// Checks what was asked, as `herald silence add` does; errors say which field.
    fn check(self, silencer: &Silencer, by: &str) -> Result<NewSilence, String> {
        let matchers = Matchers::parse(&self.matchers).map_err(|m| format!("matchers: {m}"))?;
        (silencer.check)(&matchers).map_err(|m| format!("refused: {m}"))?;
        let comment = self.comment.trim().to_owned();
        if comment.is_empty() {
            return Err("comment: say why, for whoever reads the security group's notice".into());
        }
        let weekly = some(self.weekly);
        if let Some(w) = &weekly {
            Weekly::parse(w).map_err(|m| format!("weekly: {m}"))?;
        }
        let lasts = some(self.lasts)
            .map(|d| crate::values::parse_duration(&d).map_err(|m| format!("for: {m}")))
            .transpose()?
            .map(|d| d.as_millis() as i64);
        let until = some(self.until).map(|t| time(&t, "until")).transpose()?;
        if lasts.is_none() && until.is_none() && weekly.is_none() {
            return Err("say how long: for (2h), until (a time), or weekly hours".into());
        }
        Ok(NewSilence {
            matchers: matchers.text(),
            starts_at: some(self.starts).map(|t| time(&t, "starts")).transpose()?,
            ends_at: until,
            lasts,
            weekly,
            created_by: by.to_owned(),
            comment,
        })
    }
}

/// Makes the silence (its notices and the operator's record in the same transaction).
async fn create<S: Store>(
    shared: &Shared<S>,
    silence: &NewSilence,
    by: &Operator,
) -> Result<i64, Response> {
    let tell = shared.silencer.tell.clone();
    let id = shared
        .store
        .add_silence(silence, Some(by), move |entry| tell(entry))
        .await
        .map_err(store_down)?;
    tracing::info!(operator = %by.name, silence = id, matchers = %silence.matchers, "dashboard: silence made");
    Ok(id)
}

pub(super) async fn list_page<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
) -> Response {
    let (who, cookie) = match signed_in(&shared, &headers) {
        Ok(w) => w,
        Err(r) => return r,
    };
    match shared.store.silences(false).await {
        Ok(silences) => {
            let now = jiff::Timestamp::now().as_millisecond();
            let (live, ended): (Vec<_>, Vec<_>) =
                silences.into_iter().partition(|s| s.live_at(now));
            shared.pages.render_page(
                "silences.html",
                context! { live => minijinja::Value::from(minijinja::value::Serde(&live)), ended => minijinja::Value::from(minijinja::value::Serde(&ended)), ..page(&shared, &who, &cookie) },
            )
        }
        Err(e) => store_down(e),
    }
}

pub(super) async fn add_form<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    Form(form): Form<SilenceForm>,
) -> Response {
    let by = match operator_post(&shared, &headers, &form.csrf, "Silencing") {
        Ok(by) => by,
        Err(r) => return *r,
    };
    let asked = Asked {
        matchers: form
            .matchers
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        lasts: Some(form.lasts),
        weekly: Some(form.weekly),
        comment: form.comment,
        ..Asked::default()
    };
    let silence = match asked.check(&shared.silencer, &by.name) {
        Ok(s) => s,
        Err(m) => return refused(&shared, StatusCode::BAD_REQUEST, &m),
    };
    match create(&shared, &silence, &by).await {
        Ok(_) => Redirect::to("/silences").into_response(),
        Err(r) => r,
    }
}

pub(super) async fn expire_form<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    let by = match operator_post(&shared, &headers, &form.csrf, "Ending a silence") {
        Ok(by) => by,
        Err(r) => return *r,
    };
    match shared.store.expire_silence(id, &by.name, Some(&by)).await {
        Ok(_) => Redirect::to("/silences").into_response(),
        Err(e) => store_down(e),
    }
}

pub(super) async fn list_api<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    super::api::ApiQuery(query): super::api::ApiQuery<AllQuery>,
) -> Response {
    if let Err(r) = reader(&shared, &headers) {
        return r;
    }
    match shared.store.silences(!query.all.unwrap_or(false)).await {
        Ok(silences) => Json(json!({ "silences": silences })).into_response(),
        Err(e) => store_down(e),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct AllQuery {
    all: Option<bool>,
}

pub(super) async fn add_api<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let by = match operator(&shared, &headers, "silencing") {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let asked: Asked = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("the body: {e}")),
    };
    let silence = match asked.check(&shared.silencer, &by.name) {
        Ok(s) => s,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    match create(&shared, &silence, &by).await {
        Ok(id) => Json(json!({ "silence": id })).into_response(),
        Err(r) => r,
    }
}

pub(super) async fn expire_api<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    super::api::ApiPath(id): super::api::ApiPath<i64>,
) -> Response {
    let by = match operator(&shared, &headers, "ending a silence") {
        Ok(o) => o,
        Err(r) => return *r,
    };
    match shared.store.expire_silence(id, &by.name, Some(&by)).await {
        Ok(expired) => Json(json!({ "expired": expired })).into_response(),
        Err(e) => store_down(e),
    }
}

//! Signing in with Microsoft Entra ID (`auth = "entra"`, ARCHITECTURE.md §12): `/auth/start`
//! sends the browser to the tenant's authorize endpoint with a fresh state, nonce and PKCE
//! challenge, carried meanwhile in a signed ten-minute cookie (`SameSite=Lax`: the callback is
//! a navigation from Microsoft's site); `/auth/callback` checks the state, redeems the code
//! with the app's credential, checks the ID token (`crate::msgraph::signin`) and gives the
//! role its `roles` or `groups` claim earns, or refuses.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use super::session::{Pending, Via, challenge, random};
use super::{COOKIE, Role, Shared, Who};
use crate::store::Store;

/// The sign-in cookie's name.
const LOGIN: &str = "herald_login";

pub(super) fn routes<S: Store>() -> Router<Arc<Shared<S>>> {
    Router::new()
        .route("/auth/start", get(start::<S>))
        .route("/auth/callback", get(callback::<S>))
}

impl<S: Store> Shared<S> {
    fn redirect_uri(&self) -> String {
        format!(
            "{}/auth/callback",
            self.public_url.as_deref().unwrap_or_default()
        )
    }

    fn cookie_named<'a>(&self, headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value)
    }
}

fn refused<S: Store>(shared: &Shared<S>, status: StatusCode, why: &str) -> Response {
    tracing::warn!(why, "dashboard: a sign-in with Entra ID was refused");
    let mut response = shared.pages.render_page(
        "refused.html",
        minijinja::context! { why => format!("The sign-in was refused: {why}") },
    );
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::SET_COOKIE, clear(LOGIN, "/auth"));
    response
}

fn clear(name: &str, path: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}=; Path={path}; HttpOnly; SameSite=Lax; Max-Age=0"
    ))
    .expect("a plain cookie")
}

async fn start<S: Store>(State(shared): State<Arc<Shared<S>>>) -> Response {
    let Some(entra) = &shared.entra else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let pending = match (random(24), random(24), random(32)) {
        (Ok(state), Ok(nonce), Ok(verifier)) => Pending {
            state,
            nonce,
            verifier,
        },
        _ => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let url = entra.signin.authorize_url(
        &shared.redirect_uri(),
        &pending.state,
        &pending.nonce,
        &challenge(&pending.verifier),
    );
    let value = shared
        .sessions
        .pending(&pending, jiff::Timestamp::now().as_second());
    let cookie = format!(
        "{LOGIN}={value}; Path=/auth; HttpOnly; SameSite=Lax; Max-Age=600{}",
        if shared.secure_cookies() {
            "; Secure"
        } else {
            ""
        }
    );
    let mut response = Redirect::to(&url).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize)]
struct Callback {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

async fn callback<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    query: Result<Query<Callback>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(entra) = &shared.entra else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(Query(callback)) = query else {
        return refused(
            &shared,
            StatusCode::BAD_REQUEST,
            "the answer from Entra ID is not readable",
        );
    };
    if let Some(error) = &callback.error {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return refused(
            &shared,
            StatusCode::UNAUTHORIZED,
            &format!("Entra ID answered {error}"),
        );
    }
    let now = jiff::Timestamp::now().as_second();
    let Some(pending) = shared
        .cookie_named(&headers, LOGIN)
        .and_then(|v| shared.sessions.verify_pending(v, now))
    else {
        return refused(
            &shared,
            StatusCode::UNAUTHORIZED,
            "this browser did not start it here, or it took more than ten minutes",
        );
    };
    let state_ok = callback.state.as_deref().is_some_and(|s| {
        aws_lc_rs::constant_time::verify_slices_are_equal(s.as_bytes(), pending.state.as_bytes())
            .is_ok()
    });
    if !state_ok {
        return refused(
            &shared,
            StatusCode::UNAUTHORIZED,
            "its state is not this sign-in's",
        );
    }
    let Some(code) = callback.code.as_deref().filter(|c| !c.is_empty()) else {
        return refused(&shared, StatusCode::UNAUTHORIZED, "Entra ID sent no code");
    };
    let id_token = match entra
        .signin
        .redeem(code, &pending.verifier, &shared.redirect_uri())
        .await
    {
        Ok(token) => token,
        Err(why) => {
            // Its details (an AADSTS code, the app's id) are for the log, not for whoever
            // started a sign-in.
            tracing::warn!(why = %why, "dashboard: the identity platform did not redeem a sign-in's code");
            return refused(
                &shared,
                StatusCode::UNAUTHORIZED,
                "the identity platform did not accept its code (the reason is in Herald's log)",
            );
        }
    };
    let signed = match entra.signin.verify(&id_token, &pending.nonce, now).await {
        Ok(signed) => signed,
        Err(why) => return refused(&shared, StatusCode::UNAUTHORIZED, &why),
    };
    let holds = |list: &[String]| {
        list.iter().any(|r| {
            signed.roles.contains(r) || signed.groups.iter().any(|g| g.eq_ignore_ascii_case(r))
        })
    };
    let role = if holds(&entra.operators) {
        Role::Operator
    } else if holds(&entra.viewers) {
        Role::Viewer
    } else {
        return refused(
            &shared,
            StatusCode::FORBIDDEN,
            &format!(
                "{} has no Herald role: ask for one of the app roles or groups in [dashboard] operators or viewers",
                signed.name
            ),
        );
    };
    let who = Who {
        name: signed.name.clone(),
        role,
    };
    tracing::info!(operator = %who.name, oid = %signed.oid, role = role.as_str(), "dashboard: signed in with Entra ID");
    let value = shared.sessions.issue(&who, Via::Entra, now);
    let session = format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        shared.sessions.lifetime(),
        if shared.secure_cookies() {
            "; Secure"
        } else {
            ""
        }
    );
    // A page of our own that moves on to the overview: the redirect from Microsoft's site is a
    // cross-site navigation, on which the browser would not send the SameSite=Strict session.
    let mut response = Html(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url=/\"><title>Signed in · Herald</title></head><body><h1>Signed in</h1><p><a href=\"/\">Continue to Herald</a></p></body></html>",
    )
    .into_response();
    if let Ok(session) = HeaderValue::from_str(&session) {
        response.headers_mut().append(header::SET_COOKIE, session);
    }
    response
        .headers_mut()
        .append(header::SET_COOKIE, clear(LOGIN, "/auth"));
    response
}

//! The response actions an owner's "I did not do this" sets off (`[report] actions`), each one
//! row of the internal channel `graph_action`, performed through Microsoft Graph with the
//! `[report] app` registration (ARCHITECTURE.md §2.9):
//!
//! - `revoke_sessions`: `POST /users/{id}/revokeSignInSessions` (`User.RevokeSessions.All`);
//! - `confirm_compromised`: `POST /identityProtection/riskyUsers/confirmCompromised` with
//!   `{"userIds": [id]}` (`IdentityRiskyUser.ReadWrite.All`; needs Entra ID P2);
//! - `disable_account`: `PATCH /users/{id}` with `{"accountEnabled": false}`
//!   (`User.EnableDisableAccount.All`).
//!
//! Before any of them, the account is read (`GET /users/{id}`, `User.Read.All`) and must be
//! the one who answered — its UPN or mail the report's account: the object id comes from an
//! audit record, which anyone who can write to an intake may have shaped, and must not point
//! an owner's answer at another account. Each action is idempotent at Graph, so the documented
//! repeat after a crash mid-send (§2.2) does no harm. The row's message names the action, the
//! account's object id (or, without one, its UPN) and the event's tenant; an event of another
//! tenant than the app's is refused, never sent. A refused permission (`403`) fails at once
//! with the permission named.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Channel, Outgoing, ProbeFuture, SendError, SendFuture};
use crate::msgraph::{MicrosoftApp, Tokens};

/// The channel name response actions are queued under (reserved: no `[channel.NAME]` may take
/// it).
pub const CHANNEL: &str = "graph_action";

/// The permission every action needs: the account is read first.
pub const READ_USER: &str = "User.Read.All";

/// A response action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    RevokeSessions,
    ConfirmCompromised,
    DisableAccount,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::RevokeSessions => "revoke_sessions",
            Action::ConfirmCompromised => "confirm_compromised",
            Action::DisableAccount => "disable_account",
        }
    }

    /// The Graph application permission the app needs for it (besides [`READ_USER`]).
    pub fn permission(self) -> &'static str {
        match self {
            Action::RevokeSessions => "User.RevokeSessions.All",
            Action::ConfirmCompromised => "IdentityRiskyUser.ReadWrite.All",
            Action::DisableAccount => "User.EnableDisableAccount.All",
        }
    }

    /// What it does, in the outbox's subject column: "Revoke the sign-in sessions of {account}".
    pub fn describe(self, account: &str) -> String {
        match self {
            Action::RevokeSessions => format!("Revoke the sign-in sessions of {account}"),
            Action::ConfirmCompromised => format!("Confirm {account} as compromised"),
            Action::DisableAccount => format!("Disable the account {account}"),
        }
    }
}

/// One queued action: the row's message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub action: Action,
    /// The account's object id, when the event named it.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The account's UPN as the audit record named it, when it did.
    #[serde(default)]
    pub upn: Option<String>,
    /// The account who answered (the address the notice went to): the account acted on must
    /// be this one.
    pub account: String,
    /// The event's tenant (empty when unknown).
    #[serde(default)]
    pub tenant: String,
}

/// The channel's settings: the app registration, and how long one call may take.
#[derive(Debug, Clone)]
pub struct GraphActionConfig {
    pub app: String,
    pub timeout: Duration,
    pub concurrency: usize,
}

impl GraphActionConfig {
    pub fn new(app: &str) -> GraphActionConfig {
        GraphActionConfig {
            app: app.to_owned(),
            timeout: Duration::from_secs(30),
            concurrency: 2,
        }
    }
}

pub(super) struct GraphAction {
    http: reqwest::Client,
    tokens: Arc<Tokens>,
    app: MicrosoftApp,
}

impl GraphAction {
    pub fn new(
        config: &GraphActionConfig,
        apps: &std::collections::BTreeMap<String, MicrosoftApp>,
        base: &Path,
    ) -> Result<GraphAction, String> {
        let connection = super::graph::connect(&config.app, apps, base, config.timeout)?;
        Ok(GraphAction {
            app: connection.app.clone(),
            http: connection.http,
            tokens: connection.tokens,
        })
    }

    async fn perform(&self, request: &Request) -> Result<String, SendError> {
        if !request.tenant.is_empty() && !request.tenant.eq_ignore_ascii_case(&self.app.tenant_id) {
            return Err(SendError::Permanent(format!(
                "the event is of tenant {}, the app is registered in tenant {}: not performed",
                request.tenant, self.app.tenant_id
            )));
        }
        // The id comes from an audit record, which anyone may have shaped: only an object id
        // (a GUID) or an address-like UPN goes into the URL, as one path segment.
        let user_id = request.user_id.as_deref().filter(|id| is_object_id(id));
        let upn = request.upn.as_deref().unwrap_or(&request.account);
        let user = match user_id {
            Some(id) => id,
            None if is_upn(upn) => upn,
            None => {
                return Err(SendError::Permanent(format!(
                    "the account {:?} has neither an object id nor a usable UPN: not performed",
                    request.account
                )));
            }
        };
        let url = |segments: &[&str]| self.app.graph_url(segments).map_err(SendError::Permanent);
        let action = request.action;
        let (what, method, url, body) = match action {
            Action::RevokeSessions => (
                "Graph revokeSignInSessions",
                reqwest::Method::POST,
                url(&["users", user, "revokeSignInSessions"])?,
                None,
            ),
            Action::ConfirmCompromised => {
                let Some(id) = user_id else {
                    return Err(SendError::Permanent(format!(
                        "confirmCompromised needs the account's object id, and the event named none for {}",
                        request.account
                    )));
                };
                (
                    "Graph confirmCompromised",
                    reqwest::Method::POST,
                    url(&["identityProtection", "riskyUsers", "confirmCompromised"])?,
                    Some(serde_json::json!({ "userIds": [id] })),
                )
            }
            Action::DisableAccount => (
                "Graph update user",
                reqwest::Method::PATCH,
                url(&["users", user])?,
                Some(serde_json::json!({ "accountEnabled": false })),
            ),
        };
        self.same_account(user, &request.account).await?;
        super::graph::call(&self.tokens, what, action.permission(), |token| {
            let request = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token);
            match &body {
                Some(body) => request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_string()),
                // Graph takes no body here; say so with a length of 0.
                None => request.header(reqwest::header::CONTENT_LENGTH, "0"),
            }
        })
        .await
    }
}

/// An Entra object id: a GUID.
fn is_object_id(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A UPN as Graph takes one in a path: `local@domain` of letters, digits and `.-_+'`.
fn is_upn(upn: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_+'".contains(c);
    match upn.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && local.chars().all(allowed)
                && domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
                && !upn.contains("..")
        }
        None => false,
    }
}

impl GraphAction {
    /// Whether the account `user` (an object id or UPN) is `account`, the one who answered:
    /// its UPN or mail, ignoring case. Not, or no such account: refused for good.
    async fn same_account(&self, user: &str, account: &str) -> Result<(), SendError> {
        let mut url = self
            .app
            .graph_url(&["users", user])
            .map_err(SendError::Permanent)?;
        url.query_pairs_mut()
            .append_pair("$select", "id,userPrincipalName,mail");
        let (_, body) =
            super::graph::exchange(&self.tokens, "Graph get user", READ_USER, |token| {
                self.http.get(url.clone()).bearer_auth(token)
            })
            .await?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct User {
            #[serde(default)]
            user_principal_name: Option<String>,
            #[serde(default)]
            mail: Option<String>,
        }
        let found: User = serde_json::from_str(&body).map_err(|_| {
            SendError::Permanent("Graph get user: the answer is not a user".to_owned())
        })?;
        let same = [&found.user_principal_name, &found.mail]
            .into_iter()
            .flatten()
            .any(|a| a.eq_ignore_ascii_case(account));
        if same {
            return Ok(());
        }
        let upn: String = found
            .user_principal_name
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        Err(SendError::Permanent(format!(
            "the audit record names the account {user}, which is {upn:?}, not {account} who answered: not performed"
        )))
    }
}

impl Channel for GraphAction {
    fn probe(&self) -> ProbeFuture<'_> {
        super::graph::probe(&self.tokens)
    }

    fn send<'a>(&'a self, message: Outgoing<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let request: Request = serde_json::from_slice(message.message).map_err(|e| {
                SendError::Permanent(format!("the queued action is not readable: {e}"))
            })?;
            if let Some(not_begun) = message.must_not_begin("the request") {
                return Err(not_begun);
            }
            self.perform(&request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel() -> GraphAction {
        let app = MicrosoftApp {
            tenant_id: "7f3c2a10-4b6e-4d2a-9c1e-2f5a8b0d6e41".into(),
            client_id: "c".into(),
            client_secret: Some(crate::values::SecretSource::Inline("s".into())),
            certificate_path: None,
            private_key_path: None,
            // Nothing listens here: a request would fail as unreachable, not as refused.
            authority: "http://127.0.0.1:9".into(),
            graph: "http://127.0.0.1:9".into(),
        };
        let apps = [("contoso".to_owned(), app)].into_iter().collect();
        GraphAction::new(&GraphActionConfig::new("contoso"), &apps, Path::new(".")).unwrap()
    }

    #[tokio::test]
    async fn an_event_of_another_tenant_or_without_an_id_is_refused_before_any_request() {
        let channel = channel();
        let other = Request {
            action: Action::DisableAccount,
            user_id: Some("ad7140d9-2cc2-4134-8bae-6b90ba3dede2".into()),
            upn: None,
            account: "adele@fabrikam.com".into(),
            tenant: "00000000-1111-2222-3333-444444444444".into(),
        };
        let Err(SendError::Permanent(why)) = channel.perform(&other).await else {
            panic!("another tenant's account is not acted on")
        };
        assert!(
            why.contains("the app is registered in tenant 7f3c2a10"),
            "{why}"
        );
        let no_id = Request {
            action: Action::ConfirmCompromised,
            user_id: None,
            upn: None,
            account: "adele@contoso.com".into(),
            tenant: String::new(),
        };
        let Err(SendError::Permanent(why)) = channel.perform(&no_id).await else {
            panic!("confirmCompromised needs an id")
        };
        assert!(why.contains("needs the account's object id"), "{why}");
        // An id or UPN that is no id or UPN never reaches a URL.
        for (id, upn) in [
            (Some("../../groups/x"), "../me"),
            (
                Some("ad7140d9-2cc2-4134-8bae-6b90ba3dede2/.."),
                "a/b@contoso.com",
            ),
            (None, "adele@contoso.com/../../x"),
        ] {
            let hostile = Request {
                action: Action::RevokeSessions,
                user_id: id.map(str::to_owned),
                upn: None,
                account: upn.into(),
                tenant: String::new(),
            };
            let Err(SendError::Permanent(why)) = channel.perform(&hostile).await else {
                panic!("{id:?} {upn:?} is refused")
            };
            assert!(
                why.contains("neither an object id nor a usable UPN"),
                "{why}"
            );
        }
        assert!(is_object_id("AD7140D9-2cc2-4134-8bae-6b90ba3dede2"));
        assert!(is_upn("o'neil+x@contoso.co.uk"));
    }
}

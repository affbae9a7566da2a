//! The operator's dashboard, end to end: `herald token new` makes the tokens, `herald run`
//! serves the dashboard on its admin listener, and a real browser (Debian's chromium) signs in
//! as an operator, finds a notice the real SMTP server refused, sees its attempts with the
//! server's reply, retries it once the server takes mail and sees it sent; the operators'
//! actions and the configuration (its secrets as `***`) have their pages. A viewer reads but
//! cannot retry, a form from another site or without its CSRF token is refused, and hostile
//! audit values render as text. Screenshots of each page go to `target/tmp/pages/`.

mod support;

use std::time::{Duration, Instant};

use support::browser::Browser;
use support::instance::Instance;
use support::{HERALD, Scratch, SmtpOptions, SmtpServer, fixture, outbox_rows, text};
use thirtyfour::By;

/// A new token from `herald token new`, and the line it says to add.
fn new_token(name: &str, role: &str) -> (String, String) {
    let out = std::process::Command::new(HERALD)
        .args(["token", "new", "--name", name, "--role", role])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = text(&out.stderr);
    let entry = line
        .split_once("tokens: ")
        .map(|(_, e)| e.trim().to_owned())
        .unwrap_or_else(|| panic!("{line}"));
    (text(&out.stdout).trim().to_owned(), entry)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether the element `css` selects comes to read `expected` within ten seconds.
async fn text_becomes(browser: &Browser, css: &str, expected: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(element) = browser.driver().find(By::Css(css)).await
            && element.text().await.unwrap_or_default() == expected
        {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `POST /login` with `token`; the session cookie it set.
async fn session(base: &str, token: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .post(format!("{base}/login"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_retries_a_refused_notice_in_a_real_browser_and_a_viewer_cannot() {
    let scratch = Scratch::new("dashboard");
    let dir = scratch.path().to_owned();
    let smtp = SmtpServer::start(&dir, SmtpOptions::default());
    // The relay refuses the first message for good.
    smtp.script(&["550"]);
    let (operator, operator_entry) = new_token("olivia", "operator");
    let (viewer, viewer_entry) = new_token("victor", "viewer");
    std::fs::create_dir_all(dir.join("events")).unwrap();
    std::fs::copy(fixture("hostile.json"), dir.join("events/hostile.json")).unwrap();
    // And input Herald cannot use, with markup in it: a dead letter.
    std::fs::write(dir.join("events/broken.json"), "{\"<b>oops</b>\n").unwrap();
    let config = format!(
        r#"[store]
url = "sqlite://herald.db"

[dashboard]
tokens = [{operator_entry}, {viewer_entry}]

[[source]]
kind = "file"
name = "events"
path = "events"
follow = true

[channel.email]
kind = "smtp"
from = "Contoso Security <security@contoso.com>"
host = "127.0.0.1"
port = {smtp}
tls = "none"

# Never used: its URL is its own credential, and the configuration page must not show it.
[channel.hook]
kind = "webhook"
url = "https://hooks.contoso.com/T0/supersecret"

[[rule]]
name = "reset"
activities = ["Reset user password"]
recipients = ["target"]
subject = "Changed: {{{{ target.display_name }}}}"
"#,
        smtp = smtp.port
    );
    let herald = Instance::start(&dir, &config);
    wait_for("a failed notice", || {
        !outbox_rows(&herald.config, Some("failed")).is_empty()
    });
    let failed = outbox_rows(&herald.config, Some("failed"));
    assert_eq!(failed.len(), 1, "{failed:?}");
    let key = failed[0]["key"].as_str().unwrap().to_owned();
    let subject = failed[0]["subject"].as_str().unwrap().to_owned();
    assert!(
        subject.contains('<'),
        "the fixture's name is markup: {subject}"
    );
    let base = format!("http://127.0.0.1:{}", herald.admin);

    // Not signed in: the pages send to the sign-in page, the API answers 401.
    let browser = Browser::start("dashboard").await;
    let driver = browser.driver();
    driver.goto(&format!("{base}/outbox")).await.unwrap();
    assert_eq!(
        browser.heading_becomes("Sign in to Herald").await,
        "Sign in to Herald"
    );
    browser.screenshot("dashboard-sign-in").await;
    let anonymous = reqwest::get(format!("{base}/api/v1/outbox")).await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    // A wrong token is refused with the form again.
    driver
        .find(By::Css("#token"))
        .await
        .unwrap()
        .send_keys("hd_not-a-token")
        .await
        .unwrap();
    browser.click("button[type=submit]").await;
    assert!(
        text_becomes(
            &browser,
            "p.alert",
            "That token is not one of this dashboard's."
        )
        .await,
        "a wrong token is refused with the form again"
    );

    // The operator signs in and sees the failure on the overview.
    driver
        .find(By::Css("#token"))
        .await
        .unwrap()
        .send_keys(&operator)
        .await
        .unwrap();
    browser.click("button[type=submit]").await;
    assert_eq!(browser.heading_becomes("Overview").await, "Overview");
    let page = driver.source().await.unwrap();
    assert!(page.contains("olivia (operator)"), "{page}");
    browser.screenshot("dashboard-overview").await;

    // The failed notice, its subject as text: the markup is shown, never run.
    driver
        .goto(&format!("{base}/outbox?state=failed"))
        .await
        .unwrap();
    assert_eq!(browser.heading_becomes("Outbox").await, "Outbox");
    let row = driver.find(By::Css("table tr:nth-child(2)")).await.unwrap();
    let row_text = row.text().await.unwrap();
    assert!(row_text.contains(&subject), "{row_text}");
    assert!(
        driver
            .find_all(By::Css("main table img"))
            .await
            .unwrap()
            .is_empty(),
        "markup from the audit record became an element"
    );
    browser.screenshot("dashboard-outbox").await;
    browser.click(&format!("a[href='/outbox/{key}']")).await;
    assert_eq!(browser.heading_becomes(&subject).await, subject);
    let reply = driver
        .find(By::Css("td.reply"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(reply.contains("550"), "the relay's reply: {reply}");
    browser.screenshot("dashboard-notice-failed").await;

    // The relay is fixed; the operator retries and sees the notice sent, with the 250.
    smtp.script(&[]);
    browser.click("#retry").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // The page may be between loads: no cell yet is no state yet.
        let state = match driver.find(By::Css("#state")).await {
            Ok(cell) => cell.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if state == "sent" {
            break;
        }
        assert!(Instant::now() < deadline, "still {state}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        driver.refresh().await.unwrap();
    }
    let replies: Vec<String> = {
        let mut out = Vec::new();
        for cell in driver.find_all(By::Css("td.reply")).await.unwrap() {
            out.push(cell.text().await.unwrap());
        }
        out
    };
    assert!(replies.iter().any(|r| r.starts_with("250")), "{replies:?}");
    browser.screenshot("dashboard-notice-sent").await;
    assert_eq!(smtp.messages().len(), 1);

    // The event, found by its account's UPN: its rule, its notice with both attempts, and
    // the record as it came, markup and all, as text.
    let recipient = failed[0]["recipient"].as_str().unwrap().to_owned();
    driver
        .goto(&format!(
            "{base}/events?account={}",
            recipient.to_uppercase()
        ))
        .await
        .unwrap();
    assert_eq!(browser.heading_becomes("Events").await, "Events");
    let rows = driver.find_all(By::Css("main table tr")).await.unwrap();
    assert_eq!(rows.len(), 2, "one event for {recipient}");
    browser.screenshot("dashboard-events").await;
    browser.click("main table a").await;
    assert_eq!(
        browser.heading_becomes("Reset user password").await,
        "Reset user password"
    );
    let history = driver
        .find(By::Css("#history"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(history.contains("reset 1"), "{history}");
    let replies = driver.find_all(By::Css("td.reply")).await.unwrap();
    assert_eq!(replies.len(), 2, "both attempts");
    // Herald's plain words for it, as the SOC reads them.
    let facts = driver
        .find(By::Css("#facts"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(facts.contains("password was reset"), "{facts}");
    let raw = driver
        .find(By::Css("#raw"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        raw.contains("\"activityDisplayName\": \"Reset user password\""),
        "{raw}"
    );
    assert!(
        raw.contains("<script>"),
        "the record's markup, as text: {raw}"
    );
    assert!(
        driver
            .find_all(By::Css("main script, main img"))
            .await
            .unwrap()
            .is_empty(),
        "markup from the record became an element"
    );
    browser.screenshot("dashboard-event").await;
    let api: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/events?account={recipient}"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(api["events"].as_array().unwrap().len(), 1, "{api}");

    // The dead letter: its input as text; replayed (still unusable, and it says so), then
    // marked handled.
    driver.goto(&format!("{base}/dead-letters")).await.unwrap();
    assert_eq!(
        browser.heading_becomes("Dead letters").await,
        "Dead letters"
    );
    browser.screenshot("dashboard-dead-letters").await;
    browser.click("main table a").await;
    let heading = browser.heading_becomes("Dead letter 1").await;
    assert!(heading.starts_with("Dead letter "), "{heading}");
    let raw = driver
        .find(By::Css("#raw"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(raw.contains("<b>oops</b>"), "{raw}");
    browser.click("#replay").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let replays = loop {
        // The old page may go stale between finding and reading: read again.
        let replays = text_of(&browser, "#replays").await.unwrap_or_default();
        if replays.contains("replayed") || Instant::now() > deadline {
            break replays;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(replays.contains("replayed: still unusable"), "{replays}");
    browser.click("#resolve").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let resolved = loop {
        let resolved = text_of(&browser, "#resolved").await.unwrap_or_default();
        if resolved.ends_with("UTC") || Instant::now() > deadline {
            break resolved;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(resolved.ends_with("UTC"), "handled: {resolved:?}");
    browser.screenshot("dashboard-dead-letter").await;

    // Who did it, in the operators' actions.
    driver.goto(&format!("{base}/actions")).await.unwrap();
    assert_eq!(
        browser.heading_becomes("Operators' actions").await,
        "Operators' actions"
    );
    let actions = driver
        .find(By::Css("main table"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        actions.contains("olivia (operator)")
            && actions.contains("retry")
            && actions.contains(&key)
            && actions.contains("replay")
            && actions.contains("resolve"),
        "{actions}"
    );
    browser.screenshot("dashboard-actions").await;

    // The configuration, read-only, its secrets hidden.
    driver.goto(&format!("{base}/config")).await.unwrap();
    assert_eq!(
        browser.heading_becomes("Configuration").await,
        "Configuration"
    );
    let shown = driver
        .find(By::Css("pre"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(shown.contains("url = \"***\""), "{shown}");
    assert!(!shown.contains("supersecret"), "{shown}");
    assert!(!shown.contains(&operator), "{shown}");
    browser.screenshot("dashboard-config").await;

    // A viewer reads, through the API with a bearer token, and may not retry.
    let client = reqwest::Client::new();
    let listed = client
        .get(format!("{base}/api/v1/outbox?state=sent"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status().as_u16(), 200);
    let listed: serde_json::Value = listed.json().await.unwrap();
    assert_eq!(listed["notifications"][0]["key"], key.as_str());
    let refused = client
        .post(format!("{base}/api/v1/outbox/{key}/retry"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    // The viewer's session in a form: 403 too, with a page that says why.
    let viewer_cookie = session(&base, &viewer).await;
    let page = client
        .get(format!("{base}/outbox"))
        .header("Cookie", &viewer_cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("id=\"retry-all\""),
        "a viewer is offered no retry"
    );
    let csrf = {
        let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
        page[at..at + page[at..].find('"').unwrap()].to_owned()
    };
    let as_viewer = client
        .post(format!("{base}/outbox/retry"))
        .header("Cookie", &viewer_cookie)
        .form(&[("csrf", csrf.as_str()), ("key", key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(as_viewer.status().as_u16(), 403);
    assert!(as_viewer.text().await.unwrap().contains("operator role"));

    // The operator's session, forged from another site or without its CSRF token: refused.
    let operator_cookie = session(&base, &operator).await;
    let page = client
        .get(format!("{base}/outbox"))
        .header("Cookie", &operator_cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = {
        let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
        page[at..at + page[at..].find('"').unwrap()].to_owned()
    };
    for (origin, token) in [
        (Some("https://evil.example"), csrf.as_str()),
        (None, ""),
        (None, "AAAA"),
    ] {
        let mut forged = client
            .post(format!("{base}/outbox/retry"))
            .header("Cookie", &operator_cookie)
            .form(&[("csrf", token)]);
        if let Some(origin) = origin {
            forged = forged.header("Origin", origin);
        }
        assert_eq!(
            forged.send().await.unwrap().status().as_u16(),
            403,
            "{origin:?} {token:?}"
        );
    }
    let cross_site = client
        .post(format!("{base}/api/v1/outbox/{key}/retry"))
        .header("Cookie", &operator_cookie)
        .header("Sec-Fetch-Site", "cross-site")
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status().as_u16(), 403);
    // Only what the operator did was recorded: the retry, the replay, the resolution.
    let recorded: serde_json::Value = client
        .get(format!("{base}/api/v1/actions"))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let done: Vec<&str> = recorded["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(done, ["resolve", "replay", "retry"], "{recorded}");
    assert!(
        recorded["actions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["actor"] == "olivia")
    );
    // A viewer may not replay.
    let replay = client
        .post(format!("{base}/api/v1/dead-letters/1/replay"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status().as_u16(), 403);

    // Signing out ends the browser's session.
    driver.goto(&format!("{base}/")).await.unwrap();
    browser.click("header button").await;
    assert_eq!(
        browser.heading_becomes("Sign in to Herald").await,
        "Sign in to Herald"
    );
    browser.quit().await;
}

/// One sign-in with Entra ID as a browser makes it, without following redirects: `/auth/start`,
/// the identity platform's authorize endpoint, then the callback with the sign-in cookie.
/// Returns the callback's status, body and the session cookie it set, if any.
async fn entra_sign_in(base: &str) -> (u16, String, Option<String>) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let started = client
        .get(format!("{base}/auth/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status().as_u16(), 303);
    let login = started.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        login.contains("SameSite=Lax") && login.contains("HttpOnly"),
        "{login}"
    );
    let login = login.split(';').next().unwrap().to_owned();
    let authorize = started.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );
    let answered = client.get(&authorize).send().await.unwrap();
    let callback = answered.headers()["location"].to_str().unwrap().to_owned();
    let done = client
        .get(&callback)
        .header("Cookie", &login)
        .send()
        .await
        .unwrap();
    let status = done.status().as_u16();
    let session = done
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("herald_session=") && !c.starts_with("herald_session=;"))
        .map(|c| c.split(';').next().unwrap().to_owned());
    (status, done.text().await.unwrap(), session)
}

/// `auth = "entra"`: a real browser signs in through the local stand-in for the identity
/// platform (authorization code with PKCE, an RS256 ID token checked against the tenant's
/// JWKS) and is an operator by its app role; a group makes a viewer; an ID token for another
/// audience or tenant, with another nonce or issuer, or signed by another key, a user with no
/// role, and a callback with another state are each refused.
#[tokio::test(flavor = "multi_thread")]
async fn operators_sign_in_with_entra_and_forged_id_tokens_are_refused() {
    use support::http_receiver::HttpReceiver;
    let scratch = Scratch::new("dashboard-entra");
    let dir = scratch.path().to_owned();
    let identity = HttpReceiver::start(&dir.join("identity"));
    std::fs::write(dir.join("graph.secret"), "s3cr3t").unwrap();
    let app = identity.microsoft_app().replace(
        r#"{ env = "GRAPH_CLIENT_SECRET" }"#,
        r#"{ file = "graph.secret" }"#,
    );
    let admin = support::free_port();
    let base = format!("http://127.0.0.1:{admin}");
    let user = |claims: serde_json::Value| identity.sign_in_as(&claims);
    user(serde_json::json!({
        "oid": "o-olivia", "name": "Olivia", "preferred_username": "olivia@contoso.com",
        "roles": ["Herald.Operator"],
    }));
    let config = format!(
        r#"[store]
url = "sqlite://herald.db"

[dashboard]
auth = "entra"
app = "contoso"
public_url = "{base}"
operators = ["Herald.Operator"]
viewers = ["Herald.Viewer", "6d0a2e1c-0000-4000-8000-00000000cafe"]

[[source]]
kind = "file"
name = "events"
path = "events"

[channel.email]
kind = "file"
from = "Contoso Security <security@contoso.com>"
dir = "mail"

[[rule]]
name = "reset"
activities = ["Reset user password"]
recipients = ["target"]
{app}"#
    );
    std::fs::create_dir_all(dir.join("events")).unwrap();
    let herald = Instance::start_at(&dir, &config, admin);
    herald.wait_ready(200, "the dashboard with Entra sign-in");

    // The browser: the sign-in page, Microsoft's sign-in (the stand-in), the overview.
    let browser = Browser::start("dashboard-entra").await;
    let driver = browser.driver();
    driver.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(
        browser.heading_becomes("Sign in to Herald").await,
        "Sign in to Herald"
    );
    browser.screenshot("dashboard-entra-sign-in").await;
    browser.click("#entra").await;
    assert_eq!(browser.heading_becomes("Overview").await, "Overview");
    let page = driver.source().await.unwrap();
    assert!(page.contains("olivia@contoso.com (operator)"), "{page}");
    browser.screenshot("dashboard-entra-overview").await;
    browser.quit().await;
    // The stand-in saw the code redeemed with the app's secret and the PKCE verifier.
    let redeemed: Vec<_> = identity
        .requests()
        .into_iter()
        .filter(|r| {
            r["body"]
                .as_str()
                .is_some_and(|b| b.contains("grant_type=authorization_code"))
        })
        .collect();
    assert_eq!(redeemed.len(), 1);
    let form = redeemed[0]["body"].as_str().unwrap();
    assert!(
        form.contains("client_secret=s3cr3t") && form.contains("code_verifier="),
        "{form}"
    );

    // A group makes a viewer.
    user(serde_json::json!({
        "preferred_username": "victor@contoso.com", "groups": ["6D0A2E1C-0000-4000-8000-00000000CAFE"],
    }));
    let (status, _, session) = entra_sign_in(&base).await;
    assert_eq!(status, 200);
    let overview = reqwest::Client::new()
        .get(format!("{base}/"))
        .header("Cookie", session.unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        overview.contains("victor@contoso.com (viewer)"),
        "{overview}"
    );

    // Forged or foreign ID tokens, and a user without a role: refused, no session.
    for (claims, status, why) in [
        (
            serde_json::json!({ "aud": "another-app", "roles": ["Herald.Operator"] }),
            401,
            "another application",
        ),
        (
            serde_json::json!({ "tid": "99999999-9999-9999-9999-999999999999", "roles": ["Herald.Operator"] }),
            401,
            "another tenant",
        ),
        (
            serde_json::json!({ "nonce": "replayed", "roles": ["Herald.Operator"] }),
            401,
            "nonce",
        ),
        (
            serde_json::json!({ "iss": "https://login.evil.example/x/v2.0", "roles": ["Herald.Operator"] }),
            401,
            "issuer",
        ),
        (
            serde_json::json!({ "sign_with_other_key": true, "roles": ["Herald.Operator"] }),
            401,
            "signature does not verify",
        ),
        (
            serde_json::json!({ "exp": 1_000_000, "roles": ["Herald.Operator"] }),
            401,
            "expired",
        ),
        (
            serde_json::json!({ "preferred_username": "mallory@contoso.com" }),
            403,
            "has no Herald role",
        ),
    ] {
        user(claims.clone());
        let (got, body, session) = entra_sign_in(&base).await;
        assert_eq!(got, status, "{claims}: {body}");
        assert!(body.contains(why), "{claims}: {body}");
        assert!(session.is_none(), "{claims}: a session was opened");
    }

    // A callback whose state is not the one this browser started with.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let started = client
        .get(format!("{base}/auth/start"))
        .send()
        .await
        .unwrap();
    let login = started.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let forged = client
        .get(format!("{base}/auth/callback?code=code-1&state=not-mine"))
        .header("Cookie", &login)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    assert!(forged.text().await.unwrap().contains("state"));
    // And one without the sign-in cookie at all.
    let bare = client
        .get(format!("{base}/auth/callback?code=code-1&state=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status().as_u16(), 401);
}

/// `[admin] tls`: the admin listener serves HTTPS itself — `/healthz` and the dashboard — and
/// the dashboard's session cookie is then `Secure`, its forms' origin the `https://` one.
#[test]
fn the_admin_listener_serves_the_dashboard_over_tls() {
    let scratch = Scratch::new("dashboard-tls");
    let dir = scratch.path().to_owned();
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    support::make_certificates(&certs);
    let (token, entry) = new_token("olivia", "operator");
    std::fs::create_dir_all(dir.join("events")).unwrap();
    // Instance::start writes `[admin]` with its port first: these keys join that table.
    let config = format!(
        r#"tls = {{ cert = "certs/server.pem", key = "certs/server.key" }}

[store]
url = "sqlite://herald.db"

[dashboard]
tokens = [{entry}]

[[source]]
kind = "file"
name = "events"
path = "events"

[channel.email]
kind = "file"
from = "Contoso Security <security@contoso.com>"
dir = "mail"

[[rule]]
name = "reset"
activities = ["Reset user password"]
recipients = ["target"]
"#
    );
    let herald = Instance::start(&dir, &config);
    let ca = certs.join("ca.pem");
    let script = r#"
import ssl, sys, urllib.request, urllib.error, urllib.parse
port, ca, token, origin = sys.argv[1:5]
context = ssl.create_default_context(cafile=ca)
class Keep(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None
opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), Keep)
def answer(request):
    try:
        with opener.open(request, timeout=30) as a:
            return a.status, a.headers
    except urllib.error.HTTPError as e:
        return e.code, e.headers
status, _ = answer(urllib.request.Request("https://127.0.0.1:%s/healthz" % port))
print(status)
login = urllib.request.Request("https://127.0.0.1:%s/login" % port, method="POST",
    data=urllib.parse.urlencode({"token": token}).encode(), headers={"Origin": origin})
status, headers = answer(login)
print(status)
print(headers.get("Set-Cookie", ""))
"#;
    let deadline = Instant::now() + Duration::from_secs(60);
    let origin = format!("https://127.0.0.1:{}", herald.admin);
    let out = loop {
        let out = std::process::Command::new(support::python())
            .args(["-c", script, &herald.admin.to_string()])
            .arg(&ca)
            .args([token.as_str(), origin.as_str()])
            .output()
            .unwrap();
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let said = text(&out.stdout);
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.first(), Some(&"200"), "{said}{}", text(&out.stderr));
    assert_eq!(lines.get(1), Some(&"303"), "signed in over https: {said}");
    let cookie = lines.get(2).copied().unwrap_or_default();
    assert!(
        cookie.starts_with("herald_session=") && cookie.contains("; Secure"),
        "{cookie}"
    );
}

/// Silences in the dashboard: an operator silences an app from the page (the security group
/// is told at once), its notices are recorded as suppressed and the page counts them; a
/// silence of only an unsilenceable rule is refused; a viewer reads them through the API and
/// may not make one; the operator ends it, and the summary follows.
#[tokio::test(flavor = "multi_thread")]
async fn an_operator_silences_an_app_from_the_page_and_ends_it() {
    let scratch = Scratch::new("dashboard-silences");
    let dir = scratch.path().to_owned();
    let smtp = SmtpServer::start(&dir, SmtpOptions::default());
    let (operator, operator_entry) = new_token("olivia", "operator");
    let (viewer, viewer_entry) = new_token("victor", "viewer");
    let config = format!(
        r#"[store]
url = "sqlite://herald.db"

[dashboard]
tokens = [{operator_entry}, {viewer_entry}]

[[source]]
kind = "file"
name = "events"
path = "events"
follow = true
create = true
poll_interval = "200ms"

[channel.email]
kind = "smtp"
from = "Contoso Security <security@contoso.com>"
host = "127.0.0.1"
port = {smtp}
tls = "none"

[[rule]]
name = "tap-issued"
activities = ["Admin registered security info"]
recipients = ["target"]

[[rule]]
name = "admin-role"
activities = ["Add member to role"]
recipients = ["target"]
silenceable = false

[silences]
notify = ["soc@contoso.com"]
"#,
        smtp = smtp.port
    );
    let herald = Instance::start(&dir, &config);
    herald.wait_ready(200, "the dashboard is up");
    let base = format!("http://127.0.0.1:{}", herald.admin);
    let browser = Browser::start("dashboard-silences").await;
    let driver = browser.driver();
    driver.goto(&format!("{base}/login")).await.unwrap();
    driver
        .find(By::Css("#token"))
        .await
        .unwrap()
        .send_keys(&operator)
        .await
        .unwrap();
    browser.click("button[type=submit]").await;
    assert_eq!(browser.heading_becomes("Overview").await, "Overview");
    browser.click("a[href='/silences']").await;
    assert_eq!(browser.heading_becomes("Silences").await, "Silences");
    // Refused: it would hold only a rule that must always be told.
    fill(&browser, "textarea[name=matchers]", "rule=admin-role").await;
    fill(&browser, "input[name=comment]", "mute the admins").await;
    browser.click("#silence").await;
    assert!(
        text_becomes(&browser, "p.alert", "refused: it would match only rules marked silenceable = false (admin-role): their notices are always sent").await,
        "{}",
        driver.source().await.unwrap()
    );
    driver.goto(&format!("{base}/silences")).await.unwrap();
    fill(
        &browser,
        "textarea[name=matchers]",
        "initiator.app=\"Bulk Onboarding\"",
    )
    .await;
    fill(
        &browser,
        "input[name=comment]",
        "December onboarding <b>run</b>",
    )
    .await;
    browser.click("#silence").await;
    assert_eq!(browser.heading_becomes("Silences").await, "Silences");
    let live = driver
        .find(By::Css("#live"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        live.contains("initiator.app=\"Bulk Onboarding\"") && live.contains("olivia"),
        "{live}"
    );
    // The comment's markup is text.
    assert!(live.contains("December onboarding <b>run</b>"), "{live}");
    smtp.wait_for(1, &|| herald.logs());
    let created = &smtp.messages()[0];
    assert!(
        created.contains("X-Envelope-To: soc@contoso.com"),
        "{created}"
    );
    assert!(
        created.contains("olivia silenced some of Herald's notices"),
        "{created}"
    );

    // Three issuances by the app: recorded, none sent.
    let lines: String = (0..3)
        .map(|i| {
            support::graph_record(
                &format!("tap-{i}"),
                "Admin registered security info",
                &format!("new.user{i}@contoso.com"),
                "Bulk Onboarding",
                &format!("4c3b2a19-0000-4000-8000-{i:012}"),
            ) + "\n"
        })
        .collect();
    std::fs::write(dir.join("taps.tmp"), lines).unwrap();
    std::fs::rename(dir.join("taps.tmp"), dir.join("events/taps.json")).unwrap();
    wait_for("three suppressed", || {
        outbox_rows(&herald.config, Some("suppressed")).len() == 3
    });
    // The outbox says what held each one back.
    let key = outbox_rows(&herald.config, Some("suppressed"))[0]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    driver.goto(&format!("{base}/outbox/{key}")).await.unwrap();
    assert!(
        text_becomes(
            &browser,
            "#why",
            "silenced by silence 1 (herald silence list)"
        )
        .await,
        "{}",
        driver.source().await.unwrap()
    );
    driver.goto(&format!("{base}/silences")).await.unwrap();
    let live = driver
        .find(By::Css("#live"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(live.contains(" 3"), "{live}");
    browser.screenshot("dashboard-silences").await;

    // A viewer reads them and may not make one.
    let client = reqwest::Client::new();
    let listed: serde_json::Value = client
        .get(format!("{base}/api/v1/silences"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["silences"][0]["suppressed"], 3, "{listed}");
    let id = listed["silences"][0]["id"].as_i64().unwrap();
    let made = client
        .post(format!("{base}/api/v1/silences"))
        .bearer_auth(&viewer)
        .json(&serde_json::json!({ "matchers": ["rule=tap-issued"], "for": "1h", "comment": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status().as_u16(), 403);

    // The operator ends it; the summary goes to the security group (the creator's name is
    // not an address).
    browser.click(&format!("#expire-{id}")).await;
    assert_eq!(browser.heading_becomes("Silences").await, "Silences");
    let ended = driver
        .find(By::Css("#ended"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(ended.contains("by olivia"), "{ended}");
    smtp.wait_for(2, &|| herald.logs());
    let summary = &smtp.messages()[1];
    assert!(
        summary.contains(&format!("Silence {id} has ended: 3 notices were not sent")),
        "{summary}"
    );
    driver.goto(&format!("{base}/actions")).await.unwrap();
    let actions = driver
        .find(By::Css("main table"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        actions.contains("silence") && actions.contains("expire_silence"),
        "{actions}"
    );
    browser.screenshot("dashboard-silences-ended").await;
    browser.quit().await;
}

/// Types `value` into the form field `css`, replacing what it held.
async fn fill(browser: &Browser, css: &str, value: &str) {
    let field = browser.driver().find(By::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

/// The text of the element `css` selects, or `None` while the page is changing under it.
async fn text_of(browser: &Browser, css: &str) -> Option<String> {
    browser
        .driver()
        .find(By::Css(css))
        .await
        .ok()?
        .text()
        .await
        .ok()
}

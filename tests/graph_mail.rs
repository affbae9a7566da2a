//! Microsoft 365 mail over Graph against a local HTTP server process that speaks the identity
//! platform's token endpoint and Graph's `sendMail` as Microsoft documents them: the
//! client-credentials request, the exact `sendMail` JSON, a token renewed after a 401, throttling
//! waited out by `Retry-After`, and Graph's own error kept when it refuses.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::http_receiver::HttpReceiver;
use support::{Scratch, fixture, herald_with_env, text};

const TENANT: &str = "00000000-0000-0000-0000-000000000000";
const CLIENT: &str = "11111111-1111-1111-1111-111111111111";
const CLIENT_SECRET: &str = "s3cr3t~value";

fn config(dir: &Path, cloud: &HttpReceiver) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    std::fs::copy(fixture("hostile.json"), dir.join("in/hostile.json")).unwrap();
    let path = dir.join("herald.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[source]]
kind = "file"
name = "entra"
path = "in"

[delivery]
initial_backoff = "100ms"
max_backoff = "200ms"

{app}
[channel.o365]
kind = "graph_mail"
app = "contoso"
sender = "security-notices@contoso.com"

[[rule]]
name = "password-reset"
activities = ["Reset user password"]
recipients = ["target"]
channels = ["o365"]
"#,
            app = cloud.microsoft_app(),
        ),
    )
    .unwrap();
    path
}

fn run_once(config: &Path) -> std::process::Output {
    run_once_expecting(config, 0)
}

/// `herald run --once`, exiting with `code` (1 when a notification ended `failed`).
fn run_once_expecting(config: &Path, code: i32) -> std::process::Output {
    let out = herald_with_env(
        &["run", "--once", "--config", config.to_str().unwrap()],
        &[("GRAPH_CLIENT_SECRET", CLIENT_SECRET)],
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(code), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains(CLIENT_SECRET) && !text(&out.stderr).contains("tok-"),
        "a secret reached the log:\n{}",
        text(&out.stderr)
    );
    out
}

/// `application/x-www-form-urlencoded` into pairs.
fn form(body: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    body.split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            (decode(k), decode(v))
        })
        .collect()
}

fn outbox(config: &Path, state: &str) -> Vec<serde_json::Value> {
    support::outbox_rows(config, Some(state))
}

#[test]
fn graph_mail_sends_with_a_client_credentials_token_and_renews_it_after_a_401() {
    let dir = Scratch::new("graph-mail-token");
    let cloud = HttpReceiver::start(dir.path());
    // The first token is refused as expired by Graph.
    cloud.script(&[
        r#"401 {"error":{"code":"InvalidAuthenticationToken","message":"Lifetime validation failed, the token is expired."}}"#,
    ]);
    let config = config(dir.path(), &cloud);
    run_once(&config);

    let requests = cloud.requests();
    let paths: Vec<&str> = requests
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    let token_path = format!("/{TENANT}/oauth2/v2.0/token");
    let send_path = "/v1.0/users/security-notices@contoso.com/sendMail";
    assert_eq!(
        paths,
        [
            token_path.as_str(),
            send_path,
            token_path.as_str(),
            send_path
        ]
    );

    // The client-credentials grant, as the identity platform documents it.
    let token = &requests[0];
    assert_eq!(token["method"], "POST");
    assert_eq!(
        token["headers"]["content-type"],
        "application/x-www-form-urlencoded"
    );
    let scope = format!("http://127.0.0.1:{}/.default", cloud.port);
    let expected: Vec<(String, String)> = [
        ("client_id", CLIENT),
        ("scope", scope.as_str()),
        ("client_secret", CLIENT_SECRET),
        ("grant_type", "client_credentials"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(form(token["body"].as_str().unwrap()), expected);

    // sendMail with the first token (refused), then with a new one.
    assert_eq!(requests[1]["headers"]["authorization"], "Bearer tok-1");
    assert_eq!(requests[3]["headers"]["authorization"], "Bearer tok-2");
    assert_eq!(requests[1]["body"], requests[3]["body"]);
    let send = &requests[3];
    assert_eq!(send["method"], "POST");
    assert_eq!(send["headers"]["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_str(send["body"].as_str().unwrap()).unwrap();
    let sent = outbox(&config, "sent");
    assert_eq!(sent.len(), 1);
    let key = sent[0]["key"].as_str().unwrap();
    let html = body["message"]["body"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let expected = serde_json::json!({
        "message": {
            "subject": "Your password was reset by an administrator",
            "body": { "contentType": "HTML", "content": html },
            "toRecipients": [ { "emailAddress": { "address": "adele.vance@contoso.com" } } ],
            "importance": "normal",
            "internetMessageHeaders": [
                { "name": "X-Herald-Key", "value": key },
                { "name": "X-Auto-Response-Suppress", "value": "All" },
            ],
        },
        "saveToSentItems": false,
    });
    assert_eq!(body, expected);
    // The HTML is the mail's: the hostile display name escaped, never markup.
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
}

#[test]
fn graph_mail_waits_out_throttling_and_keeps_graphs_error_when_it_refuses() {
    let dir = Scratch::new("graph-mail-throttle");
    let cloud = HttpReceiver::start(dir.path());
    cloud.script(&[
        r#"429 {"error":{"code":"ApplicationThrottled","message":"Application is over its MailboxConcurrency limit."}}"#,
        r#"503 {"error":{"code":"ServiceUnavailable","message":"Service Unavailable"}}"#,
    ]);
    let throttled = config(dir.path(), &cloud);
    run_once(&throttled);
    let sends: Vec<f64> = cloud
        .requests()
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/sendMail"))
        .map(|r| r["time"].as_f64().unwrap())
        .collect();
    assert_eq!(sends.len(), 3, "throttled, unavailable, sent");
    // Both replies said `Retry-After: 1`; the backoff alone would be 100–200 ms.
    assert!(sends[1] - sends[0] >= 0.95, "{sends:?}");
    assert!(sends[2] - sends[1] >= 0.95, "{sends:?}");
    assert_eq!(outbox(&throttled, "sent").len(), 1);

    // A refusal that retrying cannot fix fails at once, with Graph's code and message.
    let dir = Scratch::new("graph-mail-refused");
    let cloud = HttpReceiver::start(dir.path());
    cloud.script(&[
        r#"400 {"error":{"code":"ErrorInvalidRecipients","message":"At least one recipient is not valid., Recipient 'adele.vance@contoso.com' is not resolved."}}"#,
    ]);
    let config = config(dir.path(), &cloud);
    run_once_expecting(&config, 1);
    let failed = outbox(&config, "failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0]["last_error"],
        "Graph sendMail: HTTP 400 Bad Request: ErrorInvalidRecipients: At least one recipient is not valid., Recipient 'adele.vance@contoso.com' is not resolved."
    );
    assert_eq!(failed[0]["attempts"], 1);
}

#[test]
fn a_malformed_token_answer_is_retried_not_fatal() {
    let dir = Scratch::new("graph-mail-bad-token");
    let cloud = HttpReceiver::start(dir.path());
    cloud.script_tokens(&[r#"200 {"token_type": "Bearer", "expires_in"#]);
    let config = config(dir.path(), &cloud);
    run_once(&config);
    let paths: Vec<String> = cloud
        .requests()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_owned())
        .collect();
    let token_path = format!("/{TENANT}/oauth2/v2.0/token");
    assert_eq!(
        paths,
        [
            token_path.as_str(),
            token_path.as_str(),
            "/v1.0/users/security-notices@contoso.com/sendMail"
        ]
    );
    assert_eq!(outbox(&config, "sent").len(), 1);
}

/// An app whose secret the identity platform refuses (expired, revoked): the channel pauses
/// rather than spend the notice's attempts, and delivers once a token is issued again.
#[test]
fn a_refused_token_request_pauses_the_channel_until_a_token_is_issued() {
    let dir = Scratch::new("graph-mail-token-refused");
    let cloud = HttpReceiver::start(dir.path());
    let refused = r#"401 {"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys are expired."}"#;
    cloud.script_tokens(&[refused, refused]);
    let config = config(dir.path(), &cloud);
    let out = run_once(&config);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("channel paused: the identity platform issued no access token"),
        "{stderr}"
    );
    let paths: Vec<String> = cloud
        .requests()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_owned())
        .collect();
    let sends = paths.iter().filter(|p| p.ends_with("/sendMail")).count();
    assert_eq!(sends, 1, "{paths:?}");
    let sent = outbox(&config, "sent");
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0]["attempts"], 1,
        "the refusals cost no attempt: {}",
        sent[0]
    );
}

/// Base64url without padding, as JWTs and certificate thumbprints are written.
fn base64url(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .expect("base64url")
}

fn base64url_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        text(&out.stderr)
    );
    out.stdout
}

/// A self-signed certificate `NAME.crt` and its unencrypted key `NAME.key`, made in `dir` by
/// OpenSSL with `-newkey` arguments `key` (as one uploads a certificate to an app registration).
fn self_signed(dir: &Path, key: &[&str], name: &str) {
    let (key_file, certificate) = (format!("{name}.key"), format!("{name}.crt"));
    let mut args = vec!["req", "-x509", "-newkey"];
    args.extend_from_slice(key);
    args.extend_from_slice(&[
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=herald-test",
        "-keyout",
        &key_file,
        "-out",
        &certificate,
    ]);
    openssl(dir, &args);
}

/// The test configuration, with the app proving itself by `credential` instead of its secret.
fn config_with_credential(dir: &Path, cloud: &HttpReceiver, credential: &str) -> PathBuf {
    let config = config(dir, cloud);
    let app = cloud.microsoft_app().replace(
        r#"client_secret = { env = "GRAPH_CLIENT_SECRET" }"#,
        credential,
    );
    let written = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, written.replace(&cloud.microsoft_app(), &app)).unwrap();
    config
}

#[test]
fn a_certificate_credential_signs_a_client_assertion_the_certificate_verifies() {
    let dir = Scratch::new("graph-mail-certificate");
    let cloud = HttpReceiver::start(dir.path());
    // A self-signed certificate with its key in a file of its own.
    self_signed(dir.path(), &["rsa:2048"], "app");
    let config = config_with_credential(
        dir.path(),
        &cloud,
        "certificate_path = \"app.crt\"\nprivate_key_path = \"app.key\"",
    );
    let out = herald_with_env(
        &["run", "--once", "--config", config.to_str().unwrap()],
        &[],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(outbox(&config, "sent").len(), 1);

    let requests = cloud.requests();
    let token_url = format!("http://127.0.0.1:{}/{TENANT}/oauth2/v2.0/token", cloud.port);
    assert_eq!(requests[0]["path"], format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(requests[1]["headers"]["authorization"], "Bearer tok-1");
    let form = form(requests[0]["body"].as_str().unwrap());
    let names: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "client_id",
            "scope",
            "client_assertion_type",
            "client_assertion",
            "grant_type"
        ]
    );
    assert_eq!(form[0].1, CLIENT);
    assert_eq!(
        form[2].1,
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert_eq!(form[4].1, "client_credentials");

    // The assertion: header names the certificate by its thumbprints, claims name the app and
    // the token endpoint, and the signature verifies with the certificate's public key.
    let jwt = &form[3].1;
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "{jwt}");
    let header: serde_json::Value = serde_json::from_slice(&base64url(parts[0])).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&base64url(parts[1])).unwrap();
    let der = openssl(dir.path(), &["x509", "-in", "app.crt", "-outform", "DER"]);
    std::fs::write(dir.path().join("app.der"), &der).unwrap();
    let fingerprint = |digest: &str| {
        let out = openssl(dir.path(), &["dgst", digest, "-binary", "app.der"]);
        base64url_encode(&out)
    };
    assert_eq!(header["alg"], "PS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["x5t#S256"], fingerprint("-sha256"));
    assert_eq!(header.as_object().unwrap().len(), 3, "{header}");
    assert_eq!(claims["aud"], token_url);
    assert_eq!(claims["iss"], CLIENT);
    assert_eq!(claims["sub"], CLIENT);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    let iat = claims["iat"].as_i64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - 120..=now).contains(&iat), "iat {iat}, now {now}");
    assert_eq!(claims["nbf"], iat);
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 600);

    std::fs::write(
        dir.path().join("signed"),
        format!("{}.{}", parts[0], parts[1]),
    )
    .unwrap();
    std::fs::write(dir.path().join("signature"), base64url(parts[2])).unwrap();
    openssl(
        dir.path(),
        &[
            "x509", "-in", "app.crt", "-pubkey", "-noout", "-out", "app.pub",
        ],
    );
    // PS256: RSA-PSS over SHA-256, salt as long as the digest (RFC 7518 §3.5).
    let pss = [
        "dgst",
        "-sha256",
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sigopt",
        "rsa_pss_saltlen:digest",
        "-verify",
        "app.pub",
        "-signature",
        "signature",
        "signed",
    ];
    let verified = openssl(dir.path(), &pss);
    assert_eq!(text(&verified).trim(), "Verified OK");
    let fails = |args: &[&str]| {
        !std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
            .status
            .success()
    };
    // Not PKCS#1 v1.5 (RS256): the padding is checked, so the check above can fail.
    let pkcs1 = [
        "dgst",
        "-sha256",
        "-verify",
        "app.pub",
        "-signature",
        "signature",
        "signed",
    ];
    assert!(fails(&pkcs1));
    // A tampered input does not verify.
    std::fs::write(
        dir.path().join("signed"),
        format!("{}.{}x", parts[0], parts[1]),
    )
    .unwrap();
    assert!(fails(&pss));
}

#[test]
fn certificate_files_are_checked_by_herald_check_and_at_start() {
    let dir = Scratch::new("graph-mail-bad-certificate");
    let cloud = HttpReceiver::start(dir.path());
    self_signed(
        dir.path(),
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "ec",
    );
    self_signed(dir.path(), &["rsa:2048"], "rsa");
    // One file holding both, the default place for the key.
    let both = [
        std::fs::read_to_string(dir.path().join("rsa.crt")).unwrap(),
        std::fs::read_to_string(dir.path().join("rsa.key")).unwrap(),
    ]
    .concat();
    std::fs::write(dir.path().join("both.pem"), both).unwrap();
    // Every variant is written to the same file.
    let with = |credential: &str| config_with_credential(dir.path(), &cloud, credential);
    let config = with(r#"certificate_path = "both.pem""#);
    let herald = |command: &str| {
        herald_with_env(
            &[command, "--config", config.to_str().unwrap()],
            &[],
            Duration::from_secs(30),
        )
    };

    let check = herald("check");
    assert!(check.status.success(), "{}", text(&check.stderr));

    for (credential, expected) in [
        (r#"certificate_path = "missing.crt""#, "missing.crt"),
        (
            "certificate_path = \"ec.crt\"\nprivate_key_path = \"ec.key\"",
            "ec.key: not a usable RSA key",
        ),
        ("certificate_path = \"rsa.crt\"", "rsa.crt: "),
    ] {
        assert_eq!(with(credential), config);
        let check = herald("check");
        assert_eq!(check.status.code(), Some(2), "{credential}");
        let stderr = text(&check.stderr);
        assert!(stderr.contains("microsoft.contoso: "), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");

        let run = herald_with_env(
            &["run", "--once", "--config", config.to_str().unwrap()],
            &[],
            Duration::from_secs(30),
        );
        assert!(!run.status.success());
        let stderr = text(&run.stderr);
        assert!(
            stderr.contains("channel.o365: microsoft.contoso: "),
            "{stderr}"
        );
        assert!(stderr.contains(expected), "{stderr}");
    }
}

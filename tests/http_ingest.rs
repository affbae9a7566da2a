//! The HTTP source and the admin listener of a running `herald run`, over real sockets.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{HERALD, Scratch, SmtpOptions, SmtpServer, email_to, fixture, free_port, request};

struct Service {
    child: Child,
    ingest: u16,
    admin: u16,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, smtp: &SmtpServer) -> Service {
    start_with(dir, smtp, "token = { env = \"HERALD_TEST_INGEST_TOKEN\" }")
}

/// `extra`: more keys for the HTTP source.
fn start_with(dir: &Path, smtp: &SmtpServer, extra: &str) -> Service {
    let (ingest, admin) = (free_port(), free_port());
    let config = dir.join("herald.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[store]
url = "sqlite://herald.db"

[admin]
listen = "127.0.0.1:{admin}"

[[source]]
kind = "http"
name = "ingest"
listen = "127.0.0.1:{ingest}"
max_body = 65536
{extra}
{}"#,
            email_to(smtp, "")
        ),
    )
    .unwrap();
    let child = Command::new(HERALD)
        .args(["run", "--config", config.to_str().unwrap()])
        .env("HERALD_TEST_INGEST_TOKEN", "t0ken")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("herald.log")).unwrap())
        .spawn()
        .unwrap();
    let service = Service {
        child,
        ingest,
        admin,
    };
    let started = Instant::now();
    while request(admin, "GET", "/readyz", &[], b"").0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "herald did not become ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    service
}

const AUTH: (&str, &str) = ("Authorization", "Bearer t0ken");

#[test]
fn http_ingest_answers_after_commit_and_refuses_what_it_must() {
    let dir = Scratch::new("http-ingest");
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    let service = start(dir.path(), &smtp);
    let body = std::fs::read(fixture("envelope-reset-password.json")).unwrap();

    // No token, wrong token: 401, nothing queued.
    assert_eq!(
        request(service.ingest, "POST", "/ingest", &[], &body).0,
        401
    );
    assert_eq!(
        request(
            service.ingest,
            "POST",
            "/ingest",
            &[("Authorization", "Bearer nope")],
            &body
        )
        .0,
        401
    );

    // 200 with counts, after the commit; the same body again queues nothing new.
    let (status, answer) = request(service.ingest, "POST", "/ingest", &[AUTH], &body);
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        (answer["records"].as_u64(), answer["queued"].as_u64()),
        (Some(1), Some(1)),
        "{answer}"
    );
    let (status, answer) = request(service.ingest, "POST", "/ingest", &[AUTH], &body);
    assert_eq!(status, 200);
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        (answer["queued"].as_u64(), answer["duplicates"].as_u64()),
        (Some(0), Some(1)),
        "{answer}"
    );
    smtp.wait_for(1, &String::new);

    // Gzip bodies are accepted.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&std::fs::read(fixture("two-user-targets.json")).unwrap())
        .unwrap();
    let (status, answer) = request(
        service.ingest,
        "POST",
        "/ingest",
        &[AUTH, ("Content-Encoding", "gzip")],
        &gz.finish().unwrap(),
    );
    assert_eq!(status, 200, "{answer}");

    // Too large, before or after decompression: 413.
    assert_eq!(
        request(
            service.ingest,
            "POST",
            "/ingest",
            &[AUTH],
            &vec![b' '; 70_000]
        )
        .0,
        413
    );
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    bomb.write_all(&vec![b' '; 1_000_000]).unwrap();
    assert_eq!(
        request(
            service.ingest,
            "POST",
            "/ingest",
            &[AUTH, ("Content-Encoding", "gzip")],
            &bomb.finish().unwrap()
        )
        .0,
        413
    );

    // Undecodable: 400 naming position and reason, and kept as a dead letter.
    let (status, answer) = request(
        service.ingest,
        "POST",
        "/ingest",
        &[AUTH],
        b"{\"records\": [42, {\"time\": \"x\"}]}",
    );
    assert_eq!(status, 400, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["errors"][0]["position"], "line 1, records[0]");
    assert!(
        answer["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("not a JSON object")
    );
    assert_eq!(answer["errors"][1]["position"], "line 1, records[1]");

    // The admin listener: health, readiness, metrics without secrets.
    assert_eq!(request(service.admin, "GET", "/healthz", &[], b"").0, 200);
    let (status, metrics) = request(service.admin, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    for line in [
        "herald_records_total{source=\"ingest\"}",
        "herald_dead_letters_total{source=\"ingest\"} 2",
        "herald_notifications_queued_total{rule=\"password-reset\",channel=\"email\"} 1",
        "herald_notifications_duplicate_total{source=\"ingest\"} 1",
        "herald_outbox_notifications{state=\"pending\"}",
        "herald_outbox_notifications{state=\"failed\"}",
        "herald_delivery_latency_seconds",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    assert!(
        metrics
            .contains("herald_notifications_sent_total{rule=\"password-reset\",channel=\"email\"}"),
        "{metrics}"
    );
    // Source lag: the newest record committed was the gzip body's, of 2026-10-14T21:33:33.755Z.
    let gauge = |name: &str| -> f64 {
        let prefix = format!("{name}{{source=\"ingest\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{name} in\n{metrics}"))
            .parse()
            .unwrap()
    };
    assert_eq!(
        gauge("herald_source_newest_record_timestamp_seconds"),
        1_792_013_613.755
    );
    assert!(gauge("herald_source_lag_seconds") > 3_600.0, "{metrics}");
    assert!(
        !metrics.contains("t0ken") && !metrics.contains("adele"),
        "no secrets or addresses in metrics"
    );
}

/// Sends the head of a POST (no body) and returns the stream, to read the answer from.
fn send_head(port: u16, headers: &[(&str, &str)], length: usize) -> std::net::TcpStream {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "POST /ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {length}\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

fn status_of(stream: &mut std::net::TcpStream) -> u16 {
    use std::io::Read;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn http_ingest_checks_the_token_before_the_body_and_bounds_slow_and_many_clients() {
    let dir = Scratch::new("http-ingest-guard");
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    let service = start_with(
        dir.path(),
        &smtp,
        "token = { env = \"HERALD_TEST_INGEST_TOKEN\" }\nrequest_timeout = \"2s\"\nmax_concurrent = 1",
    );

    // A wrong token with a large declared body: 401 while the body is still unsent.
    let mut stream = send_head(service.ingest, &[("Authorization", "Bearer nope")], 50_000);
    assert_eq!(status_of(&mut stream), 401);

    // Two clients send headers and part of the body, then stall. With max_concurrent = 1,
    // whichever arrives second gets 503 at once; the first is cut with 408 after
    // request_timeout.
    let mut slow: Vec<_> = (0..2)
        .map(|_| {
            let mut stream = send_head(service.ingest, &[AUTH], 1_000);
            stream.write_all(b"{\"records\": [").unwrap();
            stream
        })
        .collect();
    let mut statuses: Vec<u16> = slow.iter_mut().map(status_of).collect();
    statuses.sort();
    assert_eq!(statuses, [408, 503]);

    // The slot is free again.
    let body = std::fs::read(fixture("envelope-reset-password.json")).unwrap();
    let (status, answer) = request(service.ingest, "POST", "/ingest", &[AUTH], &body);
    assert_eq!(status, 200, "{answer}");

    // A client that never finishes its headers is disconnected after request_timeout, not
    // held for ever (it holds no request slot meanwhile).
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", service.ingest)).unwrap();
    stalled
        .write_all(b"POST /ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthor")
        .unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    let ended = std::io::Read::read_to_end(&mut stalled, &mut rest);
    assert!(
        ended.is_ok(),
        "the connection of a client stalled in its headers was closed: {ended:?}"
    );
}

/// Posts `body` over HTTPS with Python's TLS client, trusting only `ca`; the status and body.
fn post_https(port: u16, ca: &Path, token: &str, body: &Path) -> (u16, String) {
    let script = r#"
import ssl, sys, urllib.request, urllib.error
port, ca, token, body = sys.argv[1:5]
context = ssl.create_default_context(cafile=ca)
request = urllib.request.Request(
    "https://127.0.0.1:%s/ingest" % port, data=open(body, "rb").read(), method="POST",
    headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
try:
    with urllib.request.urlopen(request, context=context, timeout=30) as answer:
        print(answer.status); print(answer.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); print(e.read().decode())
"#;
    let out = Command::new(support::python())
        .args(["-c", script, &port.to_string()])
        .arg(ca)
        .arg(token)
        .arg(body)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (status, answer) = stdout.split_once('\n').unwrap_or_else(|| {
        panic!(
            "the HTTPS client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (status.trim().parse().unwrap(), answer.to_owned())
}

#[test]
fn http_ingest_over_tls_and_check_warns_of_a_token_in_the_clear() {
    let dir = Scratch::new("http-ingest-tls");
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    support::make_certificates(&certs);
    let tls = "tls = { cert = \"certs/server.pem\", key = \"certs/server.key\" }";
    let service = start_with(
        dir.path(),
        &smtp,
        &format!("token = {{ env = \"HERALD_TEST_INGEST_TOKEN\" }}\n{tls}"),
    );
    let fixture = fixture("envelope-reset-password.json");
    let (status, answer) = post_https(service.ingest, &certs.join("ca.pem"), "t0ken", &fixture);
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["queued"].as_u64(), Some(1), "{answer}");
    let (status, _) = post_https(service.ingest, &certs.join("ca.pem"), "wrong", &fixture);
    assert_eq!(status, 401);
    // Plain HTTP to the TLS listener gets no answer, and the token it carried reaches nothing.
    let body = std::fs::read(&fixture).unwrap();
    let (status, _) = request(service.ingest, "POST", "/ingest", &[AUTH], &body);
    assert_ne!(status, 200);
    smtp.wait_for(1, &|| {
        std::fs::read_to_string(dir.path().join("herald.log")).unwrap()
    });
    assert_eq!(smtp.messages().len(), 1, "one record, one notice");

    // `herald check`: a token on a plain listener off this host is a warning; with TLS, or
    // on loopback, it is not; a key that is not a key is an error naming the file.
    let check = |listen: &str, extra: &str| {
        let config = dir.path().join("check.toml");
        std::fs::write(
            &config,
            format!(
                "[[source]]\nkind = \"http\"\nname = \"ingest\"\nlisten = \"{listen}\"\ntoken = \"t\"\n{extra}\n{}",
                email_to(&smtp, "")
            ),
        )
        .unwrap();
        let out = support::herald(
            &["check", "--config", config.to_str().unwrap()],
            Duration::from_secs(30),
        );
        (out.status.code(), support::text(&out.stderr))
    };
    let (code, stderr) = check("0.0.0.0:8443", "");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: ")
            && stderr.contains(
                "source[0] \"ingest\": tls: the bearer token travels in the clear to 0.0.0.0:8443"
            ),
        "{stderr}"
    );
    for (listen, extra) in [("0.0.0.0:8443", tls), ("127.0.0.1:8443", "")] {
        let (code, stderr) = check(listen, extra);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(
            !stderr.contains("in the clear"),
            "{listen} {extra}: {stderr}"
        );
    }
    let (code, stderr) = check(
        "0.0.0.0:8443",
        "tls = { cert = \"certs/server.pem\", key = \"certs/ca.pem\" }",
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("source[0] \"ingest\": tls: key:") && stderr.contains("ca.pem"),
        "{stderr}"
    );
}

#[test]
fn http_ingest_reads_concatenated_gzip_members_and_gzip_without_the_header() {
    let dir = Scratch::new("http-ingest-gzip");
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    let service = start(dir.path(), &smtp);
    // One document compressed as two members (`cat a.gz b.gz`), posted without
    // Content-Encoding: the first member alone is not valid JSON.
    let document = std::fs::read(fixture("two-user-targets.json")).unwrap();
    let (a, b) = document.split_at(document.len() / 2);
    let mut body = Vec::new();
    for half in [a, b] {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(half).unwrap();
        body.extend(gz.finish().unwrap());
    }
    let (status, answer) = request(service.ingest, "POST", "/ingest", &[AUTH], &body);
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["records"].as_u64(), Some(1), "{answer}");
}

#[test]
fn http_ingest_without_auth_accepts_only_json_content_types() {
    let dir = Scratch::new("http-ingest-noauth");
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    let service = start_with(dir.path(), &smtp, "auth = \"none\"");
    let body = std::fs::read(fixture("envelope-reset-password.json")).unwrap();
    // What a cross-site form can send: refused, naming the accepted types.
    let (status, answer) = request(
        service.ingest,
        "POST",
        "/ingest",
        &[("Content-Type", "text/plain")],
        &body,
    );
    assert_eq!(status, 415, "{answer}");
    assert!(answer.contains("application/json"), "{answer}");
    let (status, answer) = request(service.ingest, "POST", "/ingest", &[], &body);
    assert_eq!(status, 415, "{answer}");
    let (status, answer) = request(
        service.ingest,
        "POST",
        "/ingest",
        &[("Content-Type", "application/json; charset=utf-8")],
        &body,
    );
    assert_eq!(status, 200, "{answer}");
}

/// A body with one usable record and one broken line answers 200 naming the dead letter's
/// position and reason, as a 400 does; every request is logged at info with its status and
/// counts, never its body or the token.
#[test]
fn a_partial_success_names_its_dead_letters_and_every_request_is_logged() {
    let dir = Scratch::new("http-partial");
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    let service = start(dir.path(), &smtp);
    let good = std::fs::read_to_string(fixture("envelope-reset-password.json")).unwrap();
    let good: serde_json::Value = serde_json::from_str(&good).unwrap();
    let body = format!("{}\n{{\"secret-marker\": \n", good["records"][0]);
    let (status, answer) = request(service.ingest, "POST", "/ingest", &[AUTH], body.as_bytes());
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["queued"], 1, "{answer}");
    let errors = answer["errors"].as_array().expect("errors listed");
    assert_eq!(errors.len(), 1, "{answer}");
    assert!(
        errors[0]["position"].as_str().unwrap().contains("line 2"),
        "{answer}"
    );
    assert!(
        !errors[0]["reason"].as_str().unwrap().is_empty(),
        "{answer}"
    );
    assert_eq!(
        request(service.ingest, "POST", "/ingest", &[], body.as_bytes()).0,
        401
    );

    let log = std::fs::read_to_string(dir.path().join("herald.log")).unwrap();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ingest request"))
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("status=200")
            && l.contains("records=1")
            && l.contains("queued=1")
            && l.contains("dead_letters=1")),
        "{log}"
    );
    assert!(lines.iter().any(|l| l.contains("status=401")), "{log}");
    assert!(
        !log.contains("t0ken") && !log.contains("secret-marker"),
        "the token or the body reached the log: {log}"
    );
}

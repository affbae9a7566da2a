//! The shared harness for tests with real parts: a real SMTP server process (aiosmtpd, see
//! `smtp_server.py`), scratch directories, and the `herald` binary.

#![allow(dead_code)]

pub mod browser;
pub mod http_receiver;
pub mod instance;
pub mod kafka;
pub mod postgres;
pub mod sink;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const HERALD: &str = env!("CARGO_BIN_EXE_herald");

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/entra").join(name)
}

/// A fresh directory for one test, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("herald-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A port nothing listens on, for a server a test starts. Taken below the kernel's ephemeral
/// range (`ip_local_port_range`), so the many outgoing connections of a test with several
/// processes cannot be holding it by the time the server binds it, and never the same twice
/// in one test binary.
pub fn free_port() -> u16 {
    use std::sync::Mutex;
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok();
    let ephemeral: Vec<u16> = range
        .iter()
        .flat_map(|r| r.split_whitespace())
        .filter_map(|p| p.parse().ok())
        .collect();
    let (low, high) = match ephemeral[..] {
        [low, high] => (low, high),
        _ => (32768, 60999),
    };
    // Below the range when there is room there, else above it.
    let ports = if low > 11000 {
        10000..low
    } else {
        high.saturating_add(1).min(65000)..65535
    };
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let port = fastrand::u16(ports.clone());
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free port in {ports:?}");
}

/// The Python that has aiosmtpd (scripts/test installs it).
pub(crate) fn python() -> String {
    let candidates = [
        std::env::var("HERALD_TEST_PYTHON").ok(),
        Some("python3".into()),
        Some("/usr/bin/python3".into()),
    ];
    for python in candidates.into_iter().flatten() {
        let ok = Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return python;
        }
    }
    panic!(
        "no Python with aiosmtpd: run scripts/test, which installs it (python3-aiosmtpd or pip install aiosmtpd)"
    );
}

#[derive(Default, Clone)]
pub struct SmtpOptions {
    /// Require STARTTLS with a certificate made for the test.
    pub tls: bool,
    /// With `tls`: TLS from the first byte (SMTPS) instead of STARTTLS.
    pub implicit_tls: bool,
    /// Require AUTH with this user and password.
    pub auth: Option<(String, String)>,
    /// Wait this long before answering each message (a slow relay).
    pub delay_ms: u64,
    /// Wait this long before greeting each new connection.
    pub greeting_delay_ms: u64,
}

/// A real SMTP server process on a free port.
pub struct SmtpServer {
    pub port: u16,
    pub dir: PathBuf,
    options: SmtpOptions,
    child: Option<Child>,
}

impl SmtpServer {
    pub fn start(dir: &Path, options: SmtpOptions) -> SmtpServer {
        let dir = dir.join("smtp");
        std::fs::create_dir_all(dir.join("mail")).unwrap();
        if options.tls {
            make_certificates(&dir);
        }
        let mut server = SmtpServer {
            port: free_port(),
            dir,
            options,
            child: None,
        };
        server.restart();
        server
    }

    /// The server's process id (0 while stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// The CA certificate that signed the server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Starts the server again on the same port (after [`SmtpServer::stop`]).
    pub fn restart(&mut self) {
        let mut cmd = Command::new(python());
        cmd.arg(root().join("tests/support/smtp_server.py"))
            .args(["--port", &self.port.to_string()])
            .arg("--maildir")
            .arg(self.dir.join("mail"))
            .arg("--script")
            .arg(self.dir.join("script"))
            .arg("--refuse")
            .arg(self.dir.join("refuse"));
        if self.options.tls {
            cmd.arg("--tls-cert").arg(self.dir.join("server.pem"));
            cmd.arg("--tls-key").arg(self.dir.join("server.key"));
            if self.options.implicit_tls {
                cmd.arg("--implicit-tls");
            }
        }
        if self.options.delay_ms > 0 {
            cmd.args(["--delay-ms", &self.options.delay_ms.to_string()]);
        }
        if self.options.greeting_delay_ms > 0 {
            cmd.args([
                "--greeting-delay-ms",
                &self.options.greeting_delay_ms.to_string(),
            ]);
        }
        if let Some((user, password)) = &self.options.auth {
            cmd.args(["--auth", &format!("{user}:{password}")]);
        }
        let log = self.dir.join("server.log");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "READY",
            "the SMTP server did not start on port {}: {}",
            self.port,
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Makes the relay refuse whole connections: `Some("greeting")` answers each new connection
    /// `554`, `Some("auth")` refuses AUTH with `535`; `None` fixes it.
    pub fn refuse(&self, how: Option<&str>) {
        let path = self.dir.join("refuse");
        match how {
            Some(how) => std::fs::write(path, how).unwrap(),
            None => {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// How the next DATA commands are answered, in order: "250", "451", "550", "drop".
    pub fn script(&self, replies: &[&str]) {
        let text: String = replies.iter().map(|r| format!("{r}\n")).collect();
        std::fs::write(self.dir.join("script"), text).unwrap();
    }

    /// Accepted messages counted by the value of one header (e.g. `X-Envelope-To:`).
    pub fn count_by(&self, header: &str) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for message in self.messages() {
            let value = message
                .lines()
                .find_map(|l| l.strip_prefix(header))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default();
            *counts.entry(value).or_insert(0) += 1;
        }
        counts
    }

    /// Waits (up to two minutes) until at least `n` messages have arrived.
    pub fn wait_for(&self, n: usize, logs: &dyn Fn() -> String) {
        let started = Instant::now();
        loop {
            let have = self.messages().len();
            if have >= n {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "expected {n} messages, have {have}; logs:\n{}",
                logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asserts that every expected recipient got mail and nobody else did; returns how many
    /// messages were repeats.
    pub fn duplicates_among(&self, expected: &std::collections::BTreeSet<String>) -> usize {
        let got = self.count_by("X-Envelope-To:");
        let names: std::collections::BTreeSet<String> = got.keys().cloned().collect();
        let missing: Vec<_> = expected.difference(&names).collect();
        let unexpected: Vec<_> = names.difference(expected).collect();
        assert!(missing.is_empty(), "lost ({}): {missing:?}", missing.len());
        assert!(unexpected.is_empty(), "unexpected: {unexpected:?}");
        got.values().map(|n| n - 1).sum()
    }

    /// Every accepted message, in arrival order.
    pub fn messages(&self) -> Vec<String> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.join("mail"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A CA (`ca.pem`) and a certificate it signed for `localhost` and `127.0.0.1` (`server.pem`,
/// `server.key`), made with openssl in `dir`.
pub fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(Stdio::null())
            .status()
            .expect("openssl");
        assert!(status.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Herald test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

/// Runs `herald ARGS`, killing it after `limit`.
pub fn herald(args: &[&str], limit: Duration) -> Output {
    herald_with_env(args, &[], limit)
}

/// `herald outbox list --format json` for `config` (only rows in `state`, when given), one
/// JSON object per row.
pub fn outbox_rows(config: &Path, state: Option<&str>) -> Vec<serde_json::Value> {
    let config = config.to_str().unwrap();
    let mut args = vec![
        "outbox", "list", "--format", "json", "--limit", "1000000", "--config", config,
    ];
    if let Some(state) = state {
        args.extend(["--state", state]);
    }
    let out = herald(&args, Duration::from_secs(30));
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn herald_with_env(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    // Output goes to files, not pipes: a chatty run must never block on a full pipe.
    let logs = std::env::temp_dir().join(format!(
        "herald-output-{}-{}",
        std::process::id(),
        fastrand_id()
    ));
    std::fs::create_dir_all(&logs).unwrap();
    let (out_path, err_path) = (logs.join("stdout"), logs.join("stderr"));
    let mut child = Command::new(HERALD)
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    };
    let _ = std::fs::remove_dir_all(&logs);
    output
}

fn fastrand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A message as a reader sees it: quoted-printable soft breaks joined and `=XX` decoded (the
/// parts are UTF-8).
pub fn decode_qp(eml: &[u8]) -> String {
    let joined = String::from_utf8_lossy(eml).replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(b) if bytes[i] == b'=' => {
                out.push(b);
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One HTTP/1.1 request; returns (status, body).
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // A server may answer (413, 401) without reading a large body: never block on writing it.
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// CPU seconds (user + system) a process has used so far.
/// The password reset of `tests/fixtures/activities.ndjson`: a record to stamp copies from.
pub fn reset_record() -> serde_json::Value {
    std::fs::read_to_string(fixture("activities.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["properties"]["activityDisplayName"] == "Reset user password")
        .expect("a password reset in the fixture")
}

pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    ticks / 100.0
}

/// `[channel.email]` sending to this server without TLS, with `extra` lines, and the rule the
/// long-running tests use: a password reset tells its target.
pub fn email_to(smtp: &SmtpServer, extra: &str) -> String {
    email_rule(smtp.port, extra, "Reset user password")
}

/// An SMTP channel `email` to `127.0.0.1:port` (with `extra` keys) and a rule `password-reset`
/// sending `activity` events to their target user.
pub fn email_rule(port: u16, extra: &str, activity: &str) -> String {
    format!(
        r#"
[channel.email]
kind = "smtp"
from = "Contoso Security <security@contoso.com>"
host = "127.0.0.1"
port = {port}
tls = "none"
{extra}

[[rule]]
name = "password-reset"
activities = ["{activity}"]
recipients = ["target"]
"#
    )
}

/// A Graph `directoryAudit` record: `activity` on `target` by `by` (an app's name, or a UPN
/// for a user), in `correlation`.
pub fn graph_record(id: &str, activity: &str, target: &str, by: &str, correlation: &str) -> String {
    let initiator = if by.contains('@') {
        serde_json::json!({ "user": { "id": "5d5b6f0e-1b0c-4c43-9a8e-2f1d3c4b5a60", "userPrincipalName": by, "displayName": by, "ipAddress": "198.51.100.7" } })
    } else {
        serde_json::json!({ "app": { "appId": "1b9c1a6e-0000-4000-8000-000000000001", "displayName": by, "servicePrincipalId": "2c8d2b7f-0000-4000-8000-000000000002", "servicePrincipalName": by } })
    };
    serde_json::json!({
        "id": id,
        "category": "UserManagement",
        "correlationId": correlation,
        "result": "success",
        "resultReason": "",
        "activityDisplayName": activity,
        "activityDateTime": "2026-12-06T09:00:00Z",
        "loggedByService": "Authentication Methods",
        "operationType": "Add",
        "initiatedBy": initiator,
        "targetResources": [{
            // One account, one object id.
            "id": format!("0a0b0c0d-0000-4000-8000-{:012}", target.bytes().map(u64::from).sum::<u64>() * 7919 + target.len() as u64),
            "displayName": target,
            "type": "User",
            "userPrincipalName": target,
            "modifiedProperties": []
        }],
        "additionalDetails": []
    })
    .to_string()
}

//! A real HTTP server process standing in for a webhook receiver and for Microsoft's token
//! endpoint and Graph (`http_receiver.py`): it records every request, so tests assert method,
//! path, headers and body exactly, and answers as a script says (401, 503, 429 with
//! `Retry-After`, 400 with Graph's error JSON).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{free_port, python, root};

pub struct HttpReceiver {
    pub port: u16,
    dir: PathBuf,
    child: Child,
}

impl HttpReceiver {
    pub fn start(dir: &Path) -> HttpReceiver {
        HttpReceiver::launch(dir, None)
    }

    /// A receiver that checks `X-Herald-Signature` with `secret` as a webhook receiver would,
    /// recording its verdict in each request's `signature`.
    pub fn start_verifying(dir: &Path, secret: &str) -> HttpReceiver {
        HttpReceiver::launch(dir, Some(secret))
    }

    fn launch(dir: &Path, secret: Option<&str>) -> HttpReceiver {
        let dir = dir.join("receiver");
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let mut command = Command::new(python());
        command
            .arg(root().join("tests/support/http_receiver.py"))
            .args(["--port", &port.to_string()])
            .arg("--dir")
            .arg(&dir)
            .arg("--script")
            .arg(dir.join("script"));
        if let Some(secret) = secret {
            command.args(["--hmac-secret", secret]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "READY",
            "the HTTP receiver did not start on port {port}: {}",
            std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
        );
        HttpReceiver { port, dir, child }
    }

    /// A `[microsoft.contoso]` app registration whose identity platform and Graph are this
    /// server; its client secret comes from `GRAPH_CLIENT_SECRET`.
    pub fn microsoft_app(&self) -> String {
        format!(
            r#"
[microsoft.contoso]
tenant_id = "00000000-0000-0000-0000-000000000000"
client_id = "11111111-1111-1111-1111-111111111111"
client_secret = {{ env = "GRAPH_CLIENT_SECRET" }}
authority = "http://127.0.0.1:{port}"
graph = "http://127.0.0.1:{port}"
"#,
            port = self.port
        )
    }

    /// The claims of the ID tokens the identity platform's sign-in issues from now on (over
    /// its defaults; `"sign_with_other_key": true` signs with a key its JWKS does not hold).
    pub fn sign_in_as(&self, claims: &serde_json::Value) {
        std::fs::write(self.dir.join("user.json"), claims.to_string()).unwrap();
    }

    /// Graph's users from now on: `(object id, UPN)`, each also found by its UPN.
    pub fn users(&self, users: &[(&str, &str)]) {
        let mut all = serde_json::Map::new();
        for (id, upn) in users {
            let user = serde_json::json!({ "id": id, "userPrincipalName": upn, "mail": upn });
            all.insert(id.to_string(), user.clone());
            all.insert(upn.to_string(), user);
        }
        std::fs::write(
            self.dir.join("users.json"),
            serde_json::Value::Object(all).to_string(),
        )
        .unwrap();
    }

    /// How the next requests are answered, in order: `STATUS [BODY]`.
    pub fn script(&self, replies: &[&str]) {
        let text: String = replies.iter().map(|r| format!("{r}\n")).collect();
        std::fs::write(self.dir.join("script"), text).unwrap();
    }

    /// How the next token requests are answered, in order: `STATUS [BODY]`.
    pub fn script_tokens(&self, replies: &[&str]) {
        let text: String = replies.iter().map(|r| format!("{r}\n")).collect();
        std::fs::write(self.dir.join("script.token"), text).unwrap();
    }

    /// How the next GET requests are answered, in order: `STATUS BODY` or `STATUS @FILE`.
    pub fn script_gets(&self, replies: &[&str]) {
        let text: String = replies.iter().map(|r| format!("{r}\n")).collect();
        std::fs::write(self.dir.join("script.get"), text).unwrap();
    }

    /// Every request so far: `{time, method, path, headers, body}`.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.join("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

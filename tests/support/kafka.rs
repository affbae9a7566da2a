//! A real Kafka-compatible broker for the tests: `tansu`, with its SQLite engine, run from its own
//! empty directory on a free port (scripts/test installs it), and a producer to fill topics.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::collections::BTreeSet;

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// The tansu binary: `HERALD_TEST_TANSU`, else on PATH, else cargo's bin directory.
fn tansu() -> PathBuf {
    if let Some(path) = std::env::var_os("HERALD_TEST_TANSU") {
        return path.into();
    }
    let on_path = Command::new("tansu")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if on_path {
        return "tansu".into();
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default();
    let installed = home.join("bin/tansu");
    assert!(
        installed.exists(),
        "no tansu broker: run scripts/test, which installs it (cargo install tansu --locked --features dynostore,libsql)"
    );
    installed
}

pub struct Broker {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Broker {
    /// Starts a broker whose data lives in `dir/tansu`.
    pub fn start(dir: &Path) -> Broker {
        let dir = dir.join("tansu");
        std::fs::create_dir_all(&dir).unwrap();
        let mut broker = Broker {
            port: super::free_port(),
            dir,
            child: None,
        };
        broker.restart();
        broker
    }

    /// The broker's process id (0 while stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts it again on the same port and data (after [`Broker::stop`]).
    pub fn restart(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("broker.log"))
            .unwrap();
        let child = Command::new(tansu())
            .current_dir(&self.dir)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .env_remove("STORAGE_ENGINE")
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "tansu did not start; see {}",
                self.dir.join("broker.log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn create_topic(&self, name: &str, partitions: u32) {
        let status = Command::new(tansu())
            .current_dir(&self.dir)
            .args([
                "topic",
                "create",
                name,
                "--partitions",
                &partitions.to_string(),
            ])
            .args(["--broker", &format!("tcp://127.0.0.1:{}", self.port)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "tansu topic create {name}");
    }

    /// Produces each `(partition, payload)` and waits until the broker has them all.
    pub fn produce(&self, topic: &str, messages: &[(i32, Vec<u8>)]) {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", self.address())
            .set("message.max.bytes", "2000000")
            .create()
            .unwrap();
        for (partition, payload) in messages {
            let mut record = BaseRecord::<(), [u8]>::to(topic)
                .partition(*partition)
                .payload(payload.as_slice());
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        producer.poll(Duration::from_millis(50));
                        record = back;
                    }
                }
            }
            producer.poll(Duration::ZERO);
        }
        producer.flush(Duration::from_secs(60)).unwrap();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The topic Entra ID's diagnostic setting writes audit logs to.
pub const TOPIC: &str = "insights-logs-auditlogs";

/// `{"records":[…]}` messages (the Event Hubs shape) of `per_message` password resets each,
/// spread over `partitions` round robin; returns the messages and the recipients they should
/// reach.
pub fn audit_messages(
    prefix: &str,
    count: usize,
    per_message: usize,
    partitions: i32,
) -> (Vec<(i32, Vec<u8>)>, BTreeSet<String>) {
    let reset = super::reset_record();
    let mut out = Vec::new();
    let mut recipients = BTreeSet::new();
    for m in 0..count {
        let records: Vec<serde_json::Value> = (0..per_message)
            .map(|r| {
                let mut record = reset.clone();
                let user = format!("{prefix}-{m:04}-{r:02}@contoso.com");
                record["properties"]["id"] = format!("Directory_{prefix}_{m:04}_{r:02}").into();
                record["properties"]["targetResources"][0]["userPrincipalName"] =
                    user.clone().into();
                recipients.insert(user);
                record
            })
            .collect();
        let body = serde_json::json!({ "records": records });
        out.push((m as i32 % partitions, serde_json::to_vec(&body).unwrap()));
    }
    (out, recipients)
}

/// `count` Event Hubs messages of `per_message` records each, partitions round robin: one record
/// in `select_every` a password reset (for a rule to select), the others group changes (for the
/// rules to skip); every record a distinct id and user. Returns the messages and how many
/// records are resets.
pub fn mixed_messages(
    prefix: &str,
    count: usize,
    per_message: usize,
    select_every: usize,
    partitions: i32,
) -> (Vec<(i32, Vec<u8>)>, usize) {
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(super::fixture("activities.ndjson"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let pick = |name: &str| {
        lines
            .iter()
            .find(|r| r["properties"]["activityDisplayName"] == name)
            .unwrap()
            .clone()
    };
    let (reset, other) = (pick("Reset user password"), pick("Add member to group"));
    let mut selected = 0;
    let messages = (0..count)
        .map(|m| {
            let records: Vec<serde_json::Value> = (0..per_message)
                .map(|r| {
                    let n = m * per_message + r;
                    let mut record = if n.is_multiple_of(select_every) {
                        selected += 1;
                        reset.clone()
                    } else {
                        other.clone()
                    };
                    record["properties"]["id"] = format!("Directory_{prefix}_{n:07}").into();
                    record["properties"]["targetResources"][0]["userPrincipalName"] =
                        format!("user{n:07}@contoso.com").into();
                    record
                })
                .collect();
            let body = serde_json::to_vec(&serde_json::json!({ "records": records })).unwrap();
            ((m as i32) % partitions, body)
        })
        .collect();
    (messages, selected)
}

/// A `[[source]]` table consuming [`TOPIC`] on `broker` in `group`, with short session
/// timeouts so the tests' kills are noticed within seconds, and a short rebalance timeout
/// (`max.poll.interval.ms`, which the client sends as its rebalance timeout): a rebalance
/// waits at most that long for a member to rejoin.
pub fn source(broker: &Broker, group: &str) -> String {
    format!(
        r#"
[[source]]
kind = "kafka"
name = "entra"
brokers = "{brokers}"
topic = "{TOPIC}"
group = "{group}"
options = {{ "session.timeout.ms" = "10000", "heartbeat.interval.ms" = "1000", "max.poll.interval.ms" = "30000", "reconnect.backoff.max.ms" = "1000" }}
"#,
        brokers = broker.address()
    )
}

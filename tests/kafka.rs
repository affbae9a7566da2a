//! The Kafka source against a real broker (tansu) and a real SMTP server: messages in the Event
//! Hubs shape over several partitions, malformed messages, SIGKILL and restart, instances
//! joining and leaving one consumer group, and the broker going away and coming back.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use support::instance::Instance;
use support::kafka::{self, Broker, TOPIC, audit_messages as messages};
use support::{Scratch, SmtpOptions, SmtpServer, email_to, request};

/// `herald run` with its own SQLite store in `dir`, consuming the topic in group `herald`.
fn start(dir: &Path, broker: &Broker, smtp: &SmtpServer) -> Instance {
    start_with(dir, broker, smtp, "")
}

/// As [`start`], with more keys for the Kafka source.
fn start_with(dir: &Path, broker: &Broker, smtp: &SmtpServer, source_keys: &str) -> Instance {
    let config = format!(
        r#"
[store]
url = "sqlite://herald.db"
{source}{source_keys}
[delivery]
initial_backoff = "100ms"
max_backoff = "500ms"
{email}"#,
        source = kafka::source(broker, "herald"),
        email = email_to(smtp, ""),
    );
    Instance::start(dir, &config)
}

#[test]
fn messages_over_three_partitions_arrive_once_and_a_malformed_one_is_kept() {
    let dir = Scratch::new("kafka-partitions");
    let broker = Broker::start(dir.path());
    broker.create_topic(TOPIC, 3);
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    let (mut batch, expected) = messages("p", 30, 10, 3);
    // In the middle of partition 1: not JSON at all.
    batch.insert(16, (1, b"{\"records\": [ this is not JSON".to_vec()));
    broker.produce(TOPIC, &batch);

    let mut herald = start(&dir.path().join("a"), &broker, &smtp);
    herald.wait_ready(200, "assigned");
    smtp.wait_for(expected.len(), &|| herald.logs());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(smtp.duplicates_among(&expected), 0, "duplicates");

    // Kept with its coordinates and why: `ID  TIME  SOURCE  INPUT: POSITION: REASON`.
    let dead = herald.herald(&["dead-letters", "list"]);
    let lines: Vec<&str> = dead.lines().collect();
    assert_eq!(lines.len(), 1, "{dead}");
    assert!(
        lines[0].contains(&format!("entra  {TOPIC} partition 1 offset 5: line 1")),
        "{dead}"
    );
    assert!(lines[0].contains("JSON"), "{dead}");

    let (_, metrics) = request(herald.admin, "GET", "/metrics", &[], b"");
    assert!(
        metrics.contains("herald_kafka_messages_total{source=\"entra\"} 31"),
        "{metrics}"
    );
    assert!(metrics.contains("herald_kafka_commit_seconds"), "{metrics}");

    // SIGTERM: a clean exit; a restart reads nothing again (offsets were committed).
    assert_eq!(herald.terminate(), 0, "{}", herald.logs());
    herald.restart();
    herald.wait_ready(200, "assigned again");
    let (more, more_expected) = messages("q", 3, 2, 3);
    broker.produce(TOPIC, &more);
    smtp.wait_for(expected.len() + more_expected.len(), &|| herald.logs());
    std::thread::sleep(Duration::from_millis(500));
    let all: BTreeSet<String> = expected.union(&more_expected).cloned().collect();
    assert_eq!(smtp.duplicates_among(&all), 0, "duplicates after restart");
}

#[test]
fn killed_while_consuming_and_restarted_nothing_is_lost_or_sent_twice() {
    let dir = Scratch::new("kafka-kill");
    let broker = Broker::start(dir.path());
    broker.create_topic(TOPIC, 3);
    let smtp = SmtpServer::start(
        dir.path(),
        SmtpOptions {
            delay_ms: 5,
            ..SmtpOptions::default()
        },
    );
    let (batch, expected) = messages("k", 300, 10, 3);
    broker.produce(TOPIC, &batch);

    let mut herald = start(&dir.path().join("a"), &broker, &smtp);
    let mut kills = 0;
    while kills < 5 && smtp.messages().len() < expected.len() {
        herald.wait_ready(200, "assigned");
        std::thread::sleep(Duration::from_millis(200 + fastrand::u64(..1000)));
        herald.kill();
        kills += 1;
        // Restarted at once: the same static member takes its partitions back without waiting
        // for the killed one's session to expire.
        herald.restart();
    }
    assert!(kills >= 3, "only {kills} kills landed before the end");
    smtp.wait_for(expected.len(), &|| herald.logs());
    std::thread::sleep(Duration::from_secs(1));
    let duplicates = smtp.duplicates_among(&expected);
    eprintln!(
        "kafka kill test: {} records, {kills} SIGKILLs, received {}, duplicates {duplicates}",
        expected.len(),
        smtp.messages().len()
    );
    // Only sends in flight at a kill can repeat (the documented window): 8 per kill at most.
    assert!(duplicates <= kills * 8, "{duplicates} duplicates");
}

#[test]
fn instances_joining_and_leaving_the_group_split_partitions_and_send_once() {
    let dir = Scratch::new("kafka-group");
    let broker = Broker::start(dir.path());
    broker.create_topic(TOPIC, 3);
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());

    let a = start(&dir.path().join("a"), &broker, &smtp);
    let b = start(&dir.path().join("b"), &broker, &smtp);
    // Ready means "has a partition": with three partitions and two members, both have some.
    a.wait_ready(200, "a assigned");
    b.wait_ready(200, "b assigned");
    let logs = || format!("a:\n{}\nb:\n{}", a.logs(), b.logs());

    let (first, mut expected) = messages("g1", 30, 5, 3);
    broker.produce(TOPIC, &first);
    smtp.wait_for(expected.len(), &logs);

    // A third joins (a rebalance) while messages flow, then leaves for good (another). A static
    // member keeps its partitions through a stop, for its restart; one that is scaled away
    // for good joins as a dynamic member, which leaves the group when it stops.
    let mut c = start_with(
        &dir.path().join("c"),
        &broker,
        &smtp,
        "static_membership = false",
    );
    let (second, more) = messages("g2", 30, 5, 3);
    broker.produce(TOPIC, &second);
    expected.extend(more);
    c.wait_ready(200, "c assigned");
    let (third, more) = messages("g3", 30, 5, 3);
    broker.produce(TOPIC, &third);
    expected.extend(more);
    smtp.wait_for(expected.len(), &logs);
    assert_eq!(c.terminate(), 0);

    let (fourth, more) = messages("g4", 30, 5, 3);
    broker.produce(TOPIC, &fourth);
    expected.extend(more);
    smtp.wait_for(expected.len(), &logs);
    std::thread::sleep(Duration::from_secs(1));
    let assigned = |h: &Instance| h.logs().matches("partitions assigned").count();
    assert!(
        assigned(&a) >= 2 && assigned(&b) >= 2,
        "both saw the rebalances:\n{}",
        logs()
    );
    assert_eq!(smtp.duplicates_among(&expected), 0, "duplicates");
}

#[test]
fn a_broker_outage_shows_in_readyz_and_consumption_resumes() {
    let dir = Scratch::new("kafka-outage");
    let mut broker = Broker::start(dir.path());
    broker.create_topic(TOPIC, 3);
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    let herald = start(&dir.path().join("a"), &broker, &smtp);
    herald.wait_ready(200, "assigned");
    let (before, mut expected) = messages("o1", 6, 2, 3);
    broker.produce(TOPIC, &before);
    smtp.wait_for(expected.len(), &|| herald.logs());

    broker.stop();
    herald.wait_ready(503, "broker down");
    let (_, why) = request(herald.admin, "GET", "/readyz", &[], b"");
    assert!(why.contains("source entra"), "{why}");

    broker.restart();
    herald.wait_ready(200, "broker back");
    let (after, more) = messages("o2", 6, 2, 3);
    broker.produce(TOPIC, &after);
    expected.extend(more);
    smtp.wait_for(expected.len(), &|| herald.logs());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(smtp.duplicates_among(&expected), 0, "duplicates");
}

/// A malformed Event Hubs connection string (parts joined with `,` instead of `;`, as a
/// copy-paste into a YAML list can leave it) stops `herald run` with an explanation, and the
/// key's bytes appear in none of its output.
#[test]
fn a_malformed_connection_string_is_explained_without_its_key() {
    const KEY: &str = "bG9uZy1zZWNyZXQta2V5LWJ5dGVz";
    let dir = Scratch::new("kafka-connection-string");
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[source]]
kind = "kafka"
name = "entra"
topics = ["insights-logs-auditlogs"]
group = "herald"
event_hubs_connection_string = {{ env = "HERALD_TEST_EH_CS" }}
{email}"#,
            email = support::email_rule(2525, "", "Reset user password"),
        ),
    )
    .unwrap();
    let malformed = format!(
        "Endpoint=sb://contoso-audit.servicebus.windows.net/,SharedAccessKeyName=herald-listen,SharedAccessKey={KEY}"
    );
    for command in [&["check"][..], &["run", "--once"][..]] {
        let mut args = command.to_vec();
        args.extend(["--config", config.to_str().unwrap()]);
        let out = support::herald_with_env(
            &args,
            &[("HERALD_TEST_EH_CS", malformed.as_str())],
            Duration::from_secs(30),
        );
        let all = format!(
            "{}{}",
            support::text(&out.stdout),
            support::text(&out.stderr)
        );
        assert!(!all.contains(KEY), "{command:?} repeated the key: {all}");
        if command[0] == "run" {
            assert!(!out.status.success(), "{all}");
            assert!(all.contains("parts are separated by `;`"), "{all}");
        }
    }
}

/// `herald run --once` on several topics reads each to its end: the topics share partition
/// numbers, and the end of one topic's partition 0 is not the end of the other's.
#[test]
fn run_once_reads_every_topic_to_its_end() {
    let dir = Scratch::new("kafka-once-topics");
    let broker = Broker::start(dir.path());
    broker.create_topic("audit-small", 1);
    broker.create_topic("audit-large", 2);
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    // Both topics have a partition 0; the small topic's ends long before the large one's.
    let (small, small_expected) = messages("s", 1, 1, 1);
    let (mut large, large_expected) = messages("l", 150, 2, 1);
    large[0].0 = 1;
    broker.produce("audit-small", &small);
    broker.produce("audit-large", &large);
    let expected: BTreeSet<String> = small_expected.union(&large_expected).cloned().collect();

    let config = dir.path().join("herald.toml");
    let source = kafka::source(&broker, "herald").replace(
        &format!("topic = \"{TOPIC}\""),
        "topics = [\"audit-small\", \"audit-large\"]",
    );
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"sqlite://herald.db\"\n{source}\n{}",
            email_to(&smtp, "")
        ),
    )
    .unwrap();
    let run = || {
        let out = support::herald(
            &["run", "--once", "--config", config.to_str().unwrap()],
            Duration::from_secs(120),
        );
        assert_eq!(out.status.code(), Some(0), "{}", support::text(&out.stderr));
    };
    run();
    assert_eq!(smtp.messages().len(), expected.len());
    assert_eq!(smtp.duplicates_among(&expected), 0);
    // Again with nothing new: it ends (every partition is at its committed end) and sends
    // nothing more.
    run();
    assert_eq!(smtp.messages().len(), expected.len());
}

/// A member restarted right after `kill -9`, or after a clean stop, takes its partitions back
/// at once as the same static member (`group.instance.id`, from the instance's stable name),
/// instead of waiting for its old session to expire: 30 s here, as Herald sets for Event Hubs.
#[test]
fn a_restarted_member_takes_its_partitions_back_without_waiting_for_its_session() {
    let dir = Scratch::new("kafka-static");
    let broker = Broker::start(dir.path());
    broker.create_topic(TOPIC, 3);
    let smtp = SmtpServer::start(dir.path(), SmtpOptions::default());
    let source = kafka::source(&broker, "herald").replace(
        "\"session.timeout.ms\" = \"10000\"",
        "\"session.timeout.ms\" = \"30000\"",
    );
    assert!(source.contains("30000"), "{source}");
    let config = format!(
        "\n[store]\nurl = \"sqlite://herald.db\"\n{source}\n[delivery]\ninitial_backoff = \"100ms\"\n{}",
        email_to(&smtp, "")
    );
    let mut herald = Instance::start(&dir.path().join("a"), &config);
    herald.wait_ready(200, "assigned");
    let (first, mut expected) = messages("m1", 6, 2, 3);
    broker.produce(TOPIC, &first);
    smtp.wait_for(expected.len(), &|| herald.logs());

    // Resumed when every message produced after the restart has its notice: well inside the
    // old session's 30 s.
    let resume = |herald: &mut Instance, prefix: &str, expected: &mut BTreeSet<String>| {
        let restarted = std::time::Instant::now();
        herald.restart();
        let (more, more_expected) = messages(prefix, 6, 2, 3);
        broker.produce(TOPIC, &more);
        expected.extend(more_expected);
        while smtp.messages().len() < expected.len() {
            assert!(
                restarted.elapsed() < Duration::from_secs(20),
                "not resumed within 20 s of the restart:\n{}",
                herald.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        restarted.elapsed()
    };
    herald.kill();
    let after_kill = resume(&mut herald, "m2", &mut expected);
    assert_eq!(herald.terminate(), 0, "{}", herald.logs());
    let after_stop = resume(&mut herald, "m3", &mut expected);
    eprintln!(
        "restart to the last notice of new messages: after kill -9 {:.2} s, after SIGTERM {:.2} s (session 30 s)",
        after_kill.as_secs_f64(),
        after_stop.as_secs_f64()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(smtp.duplicates_among(&expected), 0, "{}", herald.logs());
}

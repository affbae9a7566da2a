//! `kind = "kafka"`: a Kafka consumer group, or an Azure Event Hubs namespace through its Kafka
//! endpoint (where diagnostic settings stream the Entra audit log).
//!
//! Messages are gathered per partition for a moment (`linger`) or up to `batch_size`, then each
//! partition's messages are decoded and committed to the store in one transaction, partitions
//! in parallel, in order within each. Only then are their offsets committed to the broker
//! (ARCHITECTURE.md §2.1): a crash between the two re-reads messages the store already has, which the
//! notification keys make harmless. A message that does not decode is kept as a dead letter
//! naming topic, partition and offset, and the offset moves on.
//!
//! Rebalances: the loop does not poll while a batch is being committed, so a revocation (which
//! librdkafka delivers during a poll) always finds the taken messages committed; messages
//! gathered but not yet committed for a revoked partition are dropped, to be read by its next
//! owner from the committed offset.

mod client;
mod context;
mod progress;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::pipeline::{Ingest, Piece};
use crate::store::{Store, StoreError};
use crate::values::{SecretSource, duration};
use crate::web::Readiness;
use context::Context;
use progress::{Partition, Progress};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    pub name: String,
    /// `host:port[,host:port…]`; from the connection string's namespace when omitted.
    pub brokers: Option<String>,
    #[serde(default)]
    pub topics: Vec<String>,
    /// One topic, as a shorthand for `topics`.
    pub topic: Option<String>,
    #[serde(default = "default_group")]
    pub group: String,
    /// Where a group with no committed offset starts.
    #[serde(default)]
    pub start: Start,
    /// Event Hubs: derives brokers, SASL_SSL/PLAIN and the credentials.
    pub event_hubs_connection_string: Option<SecretSource>,
    pub security_protocol: Option<String>,
    pub sasl_mechanism: Option<String>,
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    /// Extra CA certificates (PEM) for the brokers' TLS.
    pub ca_file: Option<PathBuf>,
    /// librdkafka settings passed through as they are.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Messages of one partition committed to the store in one transaction, at most.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// How long to gather messages before committing what arrived.
    #[serde(default = "default_linger", deserialize_with = "duration")]
    pub linger: Duration,
    /// Join the group as a static member (`group.instance.id`, from the instance's name): a
    /// member that restarts, even after `kill -9`, takes its partitions back at once instead
    /// of waiting for its old session to expire. Needs a broker that speaks Kafka 2.3's
    /// group protocol; `false` joins as a dynamic member.
    #[serde(default = "default_static_membership")]
    pub static_membership: bool,
}

fn default_static_membership() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// Everything the hub still retains: nothing written before Herald's first start is missed.
    #[default]
    Earliest,
    /// Only what arrives after the group's first start.
    Latest,
}

impl Start {
    fn as_str(self) -> &'static str {
        match self {
            Start::Earliest => "earliest",
            Start::Latest => "latest",
        }
    }
}

fn default_group() -> String {
    "herald".to_owned()
}

fn default_batch_size() -> usize {
    500
}

fn default_linger() -> Duration {
    Duration::from_millis(100)
}

/// A configured, subscribed consumer.
pub struct KafkaSource {
    name: String,
    consumer: Arc<StreamConsumer<Context>>,
    batch_size: usize,
    linger: Duration,
    /// `start = "latest"`: a partition without a committed offset begins at its end.
    from_latest: bool,
    messages: metrics::Counter,
    bytes: metrics::Counter,
}

/// One message, owned, as gathered.
struct Taken {
    offset: i64,
    payload: Vec<u8>,
}

impl KafkaSource {
    /// Builds the consumer and subscribes; configuration errors are reported here, before
    /// anything starts. Connecting happens in the background and shows in `/readyz`.
    /// `instance` is this instance's name, the static member's identity (stable across
    /// restarts, unique among live instances).
    pub fn new(
        config: &KafkaSourceConfig,
        base: &Path,
        instance: &str,
        readiness: Arc<Readiness>,
    ) -> Result<KafkaSource, String> {
        let (mut settings, topics) = client::settings(config, base)?;
        if config.static_membership {
            settings
                .entry("group.instance.id".to_owned())
                .or_insert_with(|| client::member_id(instance, &config.name));
        }
        let mut client = ClientConfig::new();
        for (k, v) in &settings {
            client.set(k, v);
        }
        let consumer: StreamConsumer<Context> = client
            .create_with_context(Context::new(&config.name, readiness))
            .map_err(|e| format!("Kafka client: {e}"))?;
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| format!("subscribe to {topics:?}: {e}"))?;
        Ok(KafkaSource {
            name: config.name.clone(),
            consumer: Arc::new(consumer),
            batch_size: config.batch_size.max(1),
            linger: config.linger,
            from_latest: config.start == Start::Latest,
            messages: metrics::counter!("herald_kafka_messages_total", "source" => config.name.clone()),
            bytes: metrics::counter!("herald_kafka_bytes_total", "source" => config.name.clone()),
        })
    }

    /// Consumes until `stop`, or with `once` until every assigned partition is read to its end.
    pub async fn run<S: Store>(
        self,
        ingest: Ingest<S>,
        stop: CancellationToken,
        once: bool,
    ) -> Result<(), StoreError> {
        let mut gathered: BTreeMap<(String, i32), Vec<Taken>> = BTreeMap::new();
        let mut count = 0usize;
        let mut since: Option<Instant> = None;
        let mut progress = Progress::default();
        loop {
            let deadline = since.map(|t| tokio::time::Instant::from_std(t + self.linger));
            let received = tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = sleep_until(deadline) => None,
                received = self.consumer.recv() => Some(received.map(|m| {
                    let key = (m.topic().to_owned(), m.partition());
                    let taken = Taken {
                        offset: m.offset(),
                        payload: m.payload().unwrap_or_default().to_vec(),
                    };
                    (key, taken)
                })),
            };
            for revoked in self.consumer.context().take_revoked() {
                if let Some(dropped) = gathered.remove(&revoked) {
                    count -= dropped.len();
                }
            }
            let mut flush = received.is_none();
            match received {
                Some(Ok((key, taken))) => {
                    self.consumer.context().heard_from_broker();
                    self.messages.increment(1);
                    self.bytes.increment(taken.payload.len() as u64);
                    progress.consumed(&key, taken.offset);
                    gathered.entry(key).or_default().push(taken);
                    count += 1;
                    since.get_or_insert_with(Instant::now);
                    flush = count >= self.batch_size;
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    if once {
                        self.ended(&mut progress, partition);
                    }
                    flush = true;
                }
                Some(Err(e)) => {
                    tracing::warn!(source = %self.name, error = %e, "Kafka consumer");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                None => {}
            }
            if flush && count > 0 {
                self.commit(std::mem::take(&mut gathered), &ingest, &stop)
                    .await?;
                count = 0;
                since = None;
            }
            if once && count == 0 && progress.all_read(&self.assigned()) {
                break;
            }
        }
        Ok(())
    }

    /// The partitions assigned to this consumer now.
    fn assigned(&self) -> Vec<Partition> {
        self.consumer
            .assignment()
            .map(|a| {
                a.elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records `PartitionEOF(number)` in `progress` ([`progress`] explains why it takes
    /// watermarks). The watermarks and committed offsets are asked of the broker only when the
    /// number is assigned in several topics: a few requests per partition end, in one run.
    fn ended(&self, progress: &mut Progress, number: i32) {
        let assigned = self.assigned();
        let consumer = &self.consumer;
        let watermarks = |p: &Partition| {
            tokio::task::block_in_place(|| {
                consumer.fetch_watermarks(&p.0, p.1, Duration::from_secs(10))
            })
            .ok()
            .filter(|(low, high)| *low >= 0 && *high >= 0)
        };
        let high = |p: &Partition| watermarks(p).map(|(_, high)| high);
        let mut committed: Option<BTreeMap<Partition, i64>> = None;
        let start = |p: &Partition| {
            let committed = committed.get_or_insert_with(|| {
                let Ok(assignment) = consumer.assignment() else {
                    return BTreeMap::new();
                };
                tokio::task::block_in_place(|| {
                    consumer.committed_offsets(assignment, Duration::from_secs(10))
                })
                .map(|list| {
                    list.elements()
                        .iter()
                        .filter_map(|e| match e.offset() {
                            Offset::Offset(o) => Some(((e.topic().to_owned(), e.partition()), o)),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default()
            });
            committed.get(p).copied().or_else(|| {
                // No committed offset: consumption began where `start` points.
                let (low, high) = watermarks(p)?;
                Some(if self.from_latest { high } else { low })
            })
        };
        progress.ended(number, &assigned, high, start);
    }

    /// Commits each partition's messages to the store (in parallel), then their offsets to the
    /// broker.
    async fn commit<S: Store>(
        &self,
        gathered: BTreeMap<(String, i32), Vec<Taken>>,
        ingest: &Ingest<S>,
        stop: &CancellationToken,
    ) -> Result<(), StoreError> {
        let mut tasks = JoinSet::new();
        for ((topic, partition), messages) in gathered {
            let (ingest, source, stop) = (ingest.clone(), self.name.clone(), stop.clone());
            tasks.spawn(async move {
                let inputs: Vec<String> = messages
                    .iter()
                    .map(|m| format!("{topic} partition {partition} offset {}", m.offset))
                    .collect();
                let pieces: Vec<Piece<'_>> = messages
                    .iter()
                    .zip(&inputs)
                    .map(|(m, input)| Piece {
                        source: &source,
                        input,
                        bytes: &m.payload,
                        first_line: 1,
                        checkpoint: None,
                    })
                    .collect();
                let next = messages.last().map_or(0, |m| m.offset + 1);
                let (intake, dead) = ingest.commit_all_patiently(&pieces, &stop).await?;
                for (position, reason) in &dead {
                    tracing::warn!(source = %source, %topic, partition, %position, %reason, "dead letter");
                }
                tracing::debug!(source = %source, %topic, partition, messages = messages.len(), records = intake.records, queued = intake.committed.queued, "committed");
                Ok::<_, StoreError>((topic, partition, next))
            });
        }
        let mut offsets = TopicPartitionList::new();
        while let Some(done) = tasks.join_next().await {
            let (topic, partition, next) =
                done.map_err(|e| StoreError::new("committing a Kafka batch", e))??;
            offsets
                .add_partition_offset(&topic, partition, Offset::Offset(next))
                .map_err(|e| StoreError::new("offsets", e))?;
        }
        let started = Instant::now();
        let consumer = self.consumer.clone();
        let committed = tokio::task::block_in_place(|| consumer.commit(&offsets, CommitMode::Sync));
        metrics::histogram!("herald_kafka_commit_seconds", "source" => self.name.clone())
            .record(started.elapsed().as_secs_f64());
        if let Err(e) = committed {
            // The store has the records; after a restart or rebalance they are read again and
            // their notification keys keep them from being sent twice.
            tracing::warn!(source = %self.name, error = %e, "offset commit failed; the records are stored and will be read again");
        }
        Ok(())
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

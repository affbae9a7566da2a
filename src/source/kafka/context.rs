//! What librdkafka tells Herald from its own threads: rebalances (which partitions are ours),
//! statistics (consumer lag, broker state), errors and log lines. It records them for the
//! consume loop, `/readyz` and `/metrics`, and never blocks.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;

use crate::web::Readiness;

pub struct Context {
    source: String,
    readiness: Arc<Readiness>,
    /// Partitions taken away since the consume loop last looked: it drops what it holds of them.
    revoked: Mutex<Vec<(String, i32)>>,
    assigned: AtomicUsize,
    brokers_up: AtomicBool,
}

impl Context {
    pub fn new(source: &str, readiness: Arc<Readiness>) -> Context {
        let context = Context {
            source: source.to_owned(),
            readiness,
            revoked: Mutex::default(),
            assigned: AtomicUsize::new(0),
            brokers_up: AtomicBool::new(false),
        };
        context.update_readiness();
        context
    }

    /// The partitions revoked since the last call.
    pub fn take_revoked(&self) -> Vec<(String, i32)> {
        std::mem::take(&mut *self.revoked.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A message arrived: the broker is certainly reachable.
    pub fn heard_from_broker(&self) {
        if !self.brokers_up.swap(true, Ordering::Relaxed) {
            self.update_readiness();
        }
    }

    fn update_readiness(&self) {
        let why = if !self.brokers_up.load(Ordering::Relaxed) {
            Some("Kafka brokers unreachable".to_owned())
        } else if self.assigned.load(Ordering::Relaxed) == 0 {
            Some("no partition assigned to this instance".to_owned())
        } else {
            None
        };
        self.readiness.source(&self.source, why);
    }
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let source = &self.source;
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(source, facility, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(source, facility, "librdkafka: {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(source, facility, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(source, facility, "librdkafka: {message}"),
        }
    }

    fn stats(&self, statistics: Statistics) {
        let up = statistics.brokers.values().any(|b| b.state == "UP");
        if self.brokers_up.swap(up, Ordering::Relaxed) != up {
            self.update_readiness();
        }
        for (topic, t) in &statistics.topics {
            for (id, p) in &t.partitions {
                // -1 is librdkafka's internal "unassigned" partition.
                if *id < 0 || !p.desired || p.consumer_lag < 0 {
                    continue;
                }
                metrics::gauge!(
                    "herald_kafka_consumer_lag",
                    "source" => self.source.clone(),
                    "topic" => topic.clone(),
                    "partition" => id.to_string()
                )
                .set(p.consumer_lag as f64);
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF) {
            return; // the end of a partition, reported as an error: not one
        }
        tracing::warn!(source = %self.source, error = %error, "Kafka: {reason}");
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown)
            && self.brokers_up.swap(false, Ordering::Relaxed)
        {
            self.update_readiness();
        }
    }
}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let mut revoked = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
            for e in list.elements() {
                revoked.push((e.topic().to_owned(), e.partition()));
            }
            tracing::info!(source = %self.source, partitions = %describe(list), "partitions revoked");
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // Counted from the event, never by asking the consumer: a revocation also comes while
        // the consumer closes, when asking it for its assignment would wait for ever. Eager
        // assignment revokes everything, then assigns the whole set; cooperative assignment
        // adds and removes increments: both add up.
        match rebalance {
            Rebalance::Assign(list) => {
                self.assigned.fetch_add(list.count(), Ordering::Relaxed);
                tracing::info!(source = %self.source, partitions = %describe(list), "partitions assigned")
            }
            Rebalance::Revoke(list) => {
                let revoked = list.count();
                let _ = self
                    .assigned
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                        Some(n.saturating_sub(revoked))
                    });
            }
            Rebalance::Error(e) => {
                tracing::warn!(source = %self.source, error = %e, "rebalance failed")
            }
        }
        self.update_readiness();
    }
}

fn describe(list: &rdkafka::TopicPartitionList) -> String {
    list.elements()
        .iter()
        .map(|e| format!("{}/{}", e.topic(), e.partition()))
        .collect::<Vec<_>>()
        .join(",")
}

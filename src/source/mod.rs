//! Sources: where audit records come from. Each yields pieces of input to
//! [`crate::pipeline::Ingest`] and acknowledges a position only after the piece is committed.
//!
//! One file per kind; a new source is one file plus one line in [`SourceConfig`].

pub mod file;
pub mod graph;
pub mod http;
pub mod kafka;

use serde::Deserialize;

/// One `[[source]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceConfig {
    File(file::FileSourceConfig),
    Http(http::HttpSourceConfig),
    Kafka(Box<kafka::KafkaSourceConfig>),
    Graph(graph::GraphSourceConfig),
}

impl SourceConfig {
    pub fn name(&self) -> &str {
        match self {
            SourceConfig::File(c) => &c.name,
            SourceConfig::Http(c) => &c.name,
            SourceConfig::Kafka(c) => &c.name,
            SourceConfig::Graph(c) => &c.name,
        }
    }
}

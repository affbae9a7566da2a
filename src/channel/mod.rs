//! Channels: where notifications go.
//!
//! This module owns each channel's configuration. Delivery itself (SMTP, the `.eml` file drop,
//! chat webhooks) is built on the same tables, one file per channel kind. Every channel kind
//! known today sends email, so each names the `From` address its messages carry.

use std::path::PathBuf;

use serde::Deserialize;

/// One `[channel.NAME]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ChannelConfig {
    /// Mail through an SMTP relay.
    Smtp(SmtpConfig),
    /// Each message written as an `.eml` file into a directory.
    File(FileConfig),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// `Name <address>` or a bare address.
    pub from: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub from: String,
    pub dir: PathBuf,
}

impl ChannelConfig {
    /// The sender of this channel's messages, as written.
    pub fn from(&self) -> &str {
        match self {
            ChannelConfig::Smtp(c) => &c.from,
            ChannelConfig::File(c) => &c.from,
        }
    }
}

//! `kind = "smtp"`: mail through a relay with lettre (tokio, rustls) over pooled connections
//! ([`pool`]).
//!
//! Replies are classified as SMTP means them: 4xx, dropped connections and timeouts are
//! transient; 5xx is permanent. What fails before a message is begun (the greeting, TLS,
//! AUTH) is the relay's failure, not the message's: the channel is unavailable and pauses.
//! The message goes out byte for byte as rendered, so its `Message-ID` (derived from the
//! notification key) lets receivers drop a resend.

mod pool;

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use serde::Deserialize;

use pool::{Pool, Security};

use super::{Channel, Outgoing, ProbeFuture, SendError, SendFuture};
use crate::values::{SecretSource, duration};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS (port 587); refused if the server cannot.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or a test server.
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub from: String,
    #[serde(default = "default_host")]
    pub host: String,
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: TlsMode,
    /// A PEM file of extra certificate authorities to trust (a private relay's CA).
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    /// Allows `username`/`password` over `tls = "none"` to a relay that is not on this host.
    #[serde(default)]
    pub allow_plaintext_auth: bool,
    #[serde(default = "default_pool_size")]
    /// Connections open to the relay at once, reused between messages.
    pub pool_size: usize,
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Messages in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

fn default_host() -> String {
    "localhost".to_owned()
}

fn default_pool_size() -> usize {
    8
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_concurrency() -> usize {
    8
}

impl SmtpConfig {
    /// What is wrong with this table beyond its types, as (key, why): credentials sent in the
    /// clear (`tls = "none"`) to a relay off this host, unless `allow_plaintext_auth` says so.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        let credentials = self.username.is_some() || self.password.is_some();
        if credentials
            && self.tls == TlsMode::None
            && !self.allow_plaintext_auth
            && !loopback(&self.host)
        {
            return Some((
                "tls",
                format!(
                    "tls = \"none\" would send the username and password to {} in the clear; use \"starttls\" or \"tls\", or set allow_plaintext_auth = true",
                    self.host
                ),
            ));
        }
        None
    }
}

/// Whether `host` names this machine (`localhost`, 127.0.0.0/8, `::1`).
fn loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub(super) struct Smtp {
    pool: Pool,
    sender: lettre::Address,
}

impl Smtp {
    pub fn new(config: &SmtpConfig, base: &Path) -> Result<Smtp, String> {
        let sender: Mailbox = config.from.parse().map_err(|e| format!("from: {e}"))?;
        let port = config.port.unwrap_or(match config.tls {
            TlsMode::Starttls => 587,
            TlsMode::Tls => 465,
            TlsMode::None => 25,
        });
        let security = match config.tls {
            TlsMode::None => Security::None,
            mode => {
                let mut params = TlsParameters::builder(config.host.clone());
                if let Some(ca) = &config.ca_file {
                    let path = base.join(ca);
                    let pem = std::fs::read(&path)
                        .map_err(|e| format!("ca_file: cannot read {}: {e}", path.display()))?;
                    let cert = Certificate::from_pem(&pem)
                        .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                    params = params.add_root_certificate(cert);
                }
                let params = params.build_rustls().map_err(|e| format!("TLS: {e}"))?;
                if mode == TlsMode::Tls {
                    Security::Implicit(params)
                } else {
                    Security::Starttls(params)
                }
            }
        };
        let credentials = match (&config.username, &config.password) {
            (Some(user), Some(password)) => {
                let password = password
                    .resolve(base)
                    .map_err(|e| format!("password: {e}"))?;
                Some(Credentials::new(user.clone(), password.expose().to_owned()))
            }
            (None, None) => None,
            _ => return Err("username and password go together".to_owned()),
        };
        Ok(Smtp {
            pool: Pool::new(
                config.host.clone(),
                port,
                security,
                credentials,
                config.pool_size,
                config.timeout,
            ),
            sender: sender.email,
        })
    }
}

/// Replies to a message as SMTP means them: 5xx permanent; 4xx and the network transient.
fn classify(e: lettre::transport::smtp::Error) -> SendError {
    let text = e.to_string();
    if e.is_permanent() {
        SendError::Permanent(text)
    } else {
        SendError::Transient(text)
    }
}

impl Channel for Smtp {
    fn send<'a>(&'a self, message: Outgoing<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let to: lettre::Address = message.recipient.parse().map_err(|e| {
                SendError::Permanent(format!("recipient {:?}: {e}", message.recipient))
            })?;
            let envelope = Envelope::new(Some(self.sender.clone()), vec![to])
                .map_err(|e| SendError::Permanent(format!("envelope: {e}")))?;
            self.pool.send(&envelope, &message).await
        })
    }

    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(self.pool.probe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> SmtpConfig {
        toml::from_str(&format!("from = \"a@contoso.com\"\n{extra}")).unwrap()
    }

    #[test]
    fn plaintext_credentials_off_this_host_need_allow_plaintext_auth() {
        let auth = "username = \"u\"\npassword = \"hunter2\"\n";
        let (key, why) = config(&format!(
            "{auth}host = \"relay.contoso.com\"\ntls = \"none\""
        ))
        .problem()
        .expect("refused");
        assert_eq!(key, "tls");
        assert!(
            why.contains("relay.contoso.com") && why.contains("allow_plaintext_auth"),
            "{why}"
        );
        assert!(!why.contains("hunter2"), "no password shown: {why}");
        for fine in [
            format!(
                "{auth}host = \"relay.contoso.com\"\ntls = \"none\"\nallow_plaintext_auth = true"
            ),
            format!("{auth}host = \"relay.contoso.com\""),
            format!("{auth}host = \"127.0.0.1\"\ntls = \"none\""),
            format!("{auth}host = \"localhost\"\ntls = \"none\""),
            format!("{auth}host = \"::1\"\ntls = \"none\""),
            "host = \"relay.contoso.com\"\ntls = \"none\"".to_owned(),
        ] {
            assert_eq!(config(&fine).problem(), None, "{fine}");
        }
    }
}

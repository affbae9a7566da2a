//! Herald's HTTP listeners: the accept loop every listener (the HTTP source, the admin
//! endpoints) is served by, with optional TLS (rustls) and time limits on the parts of a
//! request before the handler sees it.
//!
//! `axum::serve` bounds neither a TLS handshake nor how long a client may take to send its
//! headers, so a client that opens connections and sends nothing (or one byte a minute) would
//! hold them for ever. Here each connection is its own task: the handshake must finish within
//! [`HANDSHAKE_TIMEOUT`] and the headers must arrive within the listener's `header_timeout`
//! (hyper closes the connection otherwise); a slow handshake never holds up accepting others.
//! On stop, the listener stops accepting and the requests in flight finish (graceful
//! shutdown), for at most [`DRAIN_TIMEOUT`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;

/// A TLS handshake not finished within this is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After a stop, requests in flight get this long to finish.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// `tls = { cert = "…", key = "…" }`: PEM files, the certificate chain (leaf first) and its
/// private key (PKCS#8, PKCS#1 or SEC1). Relative paths are from the configuration's folder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// Reads and checks both files; the error names the file and what is wrong with it (never
    /// the key's bytes).
    pub fn acceptor(&self, base: &Path) -> Result<TlsAcceptor, String> {
        let cert = base.join(&self.cert);
        let key = base.join(&self.key);
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
            .map_err(|e| format!("cert: cannot read {}: {e}", cert.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("cert: {}: {e}", cert.display()))?;
        if chain.is_empty() {
            return Err(format!("cert: {} holds no PEM certificate", cert.display()));
        }
        let private = PrivateKeyDer::from_pem_file(&key)
            .map_err(|e| format!("key: {}: no private key could be read: {e}", key.display()))?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| {
                format!(
                    "key: {} does not go with the certificate in {}: {e}",
                    key.display(),
                    cert.display()
                )
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// The address a request's connection came from (a reverse proxy's, behind one).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

/// Serves `app` on `listener` until `stop`, over TLS when `tls` is given.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    header_timeout: Duration,
    app: Router,
    stop: CancellationToken,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, mostly: wait rather than spin.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        // The peer's address, for handlers that answer per client (the public pages' rate
        // limit and the client recorded with a report).
        let service = TowerToHyperService::new(app.clone().layer(axum::Extension(Peer(peer))));
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let io = match tls {
                None => Either::Right(tcp),
                Some(tls) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
                    Ok(Ok(stream)) => Either::Left(stream),
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake not finished in time");
                        return;
                    }
                },
            };
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let connection = http.serve_connection(TokioIo::new(io), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("stopped with requests still in flight after {DRAIN_TIMEOUT:?}");
    }
}

//! The relay's connections: opened, secured, authenticated, reused and retired here.
//!
//! Herald opens each TCP connection itself, with Nagle's algorithm off, and hands it to lettre
//! for the SMTP dialogue, TLS and AUTH. lettre writes a message's body and its closing `.` as
//! two writes; with Nagle on, the second waits for the relay's delayed ACK (40 ms on Linux), which
//! capped one connection at about 22 messages a second. Every step of SMTP is a write followed by
//! a wait for the reply, so there is nothing for Nagle to coalesce: switching it off costs nothing.
//!
//! Any failure while connecting (TCP, greeting, TLS, AUTH) is the relay's, not a message's:
//! it is answered as [`SendError::Unavailable`], which pauses the channel (ARCHITECTURE.md §8),
//! and [`Pool::probe`] tells when the relay takes connections again.
//!
//! A connection goes back to the pool after a successful send and is reused most-recent-first;
//! one idle for a while is probed with `NOOP` before use, one idle for long is closed. Any
//! error leaves the connection broken (lettre aborts it), so it is dropped, never reused.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
#[allow(deprecated)]
// lettre's own TLS is reachable only through this type; see `implicit_tls`
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};

use super::classify;
use crate::channel::{Outgoing, SendError};

/// An idle connection older than this is asked `NOOP` before it carries a message.
const PROBE_AFTER: Duration = Duration::from_secs(10);
/// An idle connection older than this is closed rather than reused.
const CLOSE_AFTER: Duration = Duration::from_secs(60);

/// How the connection is secured.
pub(super) enum Security {
    None,
    /// Plain, then upgraded with STARTTLS; refused if the relay does not offer it.
    Starttls(TlsParameters),
    /// TLS from the first byte.
    Implicit(TlsParameters),
}

pub(super) struct Pool {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
    /// Bounds connecting and each send.
    timeout: Duration,
    /// One permit per connection the pool may hold open.
    slots: Semaphore,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl Pool {
    pub fn new(
        host: String,
        port: u16,
        security: Security,
        credentials: Option<Credentials>,
        size: usize,
        timeout: Duration,
    ) -> Pool {
        Pool {
            host,
            port,
            security,
            credentials,
            hello: ClientId::default(),
            timeout,
            slots: Semaphore::new(size.max(1)),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends one message on a pooled connection, opening one when none is idle. While it
    /// waits for a connection, the claim's time to begin may run out or Herald may stop: then
    /// nothing is begun.
    /// Returns the relay's reply to the message (`250 2.0.0 Ok: queued as …`).
    pub async fn send(
        &self,
        envelope: &Envelope,
        message: &Outgoing<'_>,
    ) -> Result<String, SendError> {
        let what = "the SMTP transaction";
        // Stopping or past the deadline, `must_not_begin` always has its reason.
        let not_begun = || {
            message
                .must_not_begin(what)
                .unwrap_or_else(|| SendError::NotBegun(format!("{what} was not begun")))
        };
        let _slot = tokio::select! {
            slot = self.slots.acquire() => slot.map_err(|_| {
                SendError::Transient("the SMTP channel is shutting down".to_owned())
            })?,
            _ = message.stop.cancelled() => return Err(not_begun()),
            _ = tokio::time::sleep_until(message.begin_by.into()) => return Err(not_begun()),
        };
        // A connection that took past the claim's time to begin (this process was frozen or
        // starved meanwhile) begins nothing, whatever became of it: that is no reason to pause
        // the channel.
        let mut conn = match self.checkout().await {
            Ok(conn) => conn,
            Err(e) => return Err(message.must_not_begin(what).unwrap_or(e)),
        };
        if let Some(not_begun) = message.must_not_begin(what) {
            self.checkin(conn);
            return Err(not_begun);
        }
        match tokio::time::timeout(self.timeout, conn.send(envelope, message.message)).await {
            Ok(Ok(response)) => {
                self.checkin(conn);
                let lines: Vec<&str> = response.message().collect();
                Ok(format!("{} {}", response.code(), lines.join(" ")))
            }
            Ok(Err(e)) => {
                if !conn.has_broken() {
                    self.checkin(conn);
                }
                Err(classify(e))
            }
            Err(_) => Err(SendError::Transient(format!(
                "{}:{}: no reply within {:?}",
                self.host, self.port, self.timeout
            ))),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<(AsyncSmtpConnection, Instant)>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn checkout(&self) -> Result<AsyncSmtpConnection, SendError> {
        loop {
            let Some((mut conn, since)) = self.idle().pop() else {
                break;
            };
            let idle_for = since.elapsed();
            if idle_for >= CLOSE_AFTER {
                let _ = tokio::time::timeout(Duration::from_secs(1), conn.quit()).await;
                continue;
            }
            if idle_for < PROBE_AFTER
                || tokio::time::timeout(self.timeout, conn.test_connected())
                    .await
                    .unwrap_or(false)
            {
                return Ok(conn);
            }
        }
        match tokio::time::timeout(self.timeout, self.connect()).await {
            Ok(conn) => conn,
            Err(_) => Err(SendError::Unavailable {
                cause: "the relay did not answer in time".to_owned(),
                error: format!(
                    "{}:{}: could not connect within {:?}",
                    self.host, self.port, self.timeout
                ),
            }),
        }
    }

    fn checkin(&self, conn: AsyncSmtpConnection) {
        let mut idle = self.idle();
        idle.retain(|(_, since)| since.elapsed() < CLOSE_AFTER);
        idle.push((conn, Instant::now()));
    }

    /// Opens, secures and authenticates one connection. Whatever fails here is the relay's
    /// doing, not the message's: [`SendError::Unavailable`], so the channel pauses.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let unreachable = |e: io::Error| SendError::Unavailable {
            cause: "cannot connect to the relay".to_owned(),
            error: format!("{}:{}: {e}", self.host, self.port),
        };
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(unreachable)?;
        tcp.set_nodelay(true).map_err(unreachable)?;
        let peer = tcp.peer_addr().map_err(unreachable)?;
        let stream: Box<dyn AsyncTokioStream> = match &self.security {
            Security::Implicit(params) => Box::new(
                implicit_tls(tcp, peer, params.clone())
                    .await
                    .map_err(|e| self.refused("TLS with the relay failed", e))?,
            ),
            Security::None | Security::Starttls(_) => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| self.refused("the relay refused the connection", e))?;
        if let Security::Starttls(params) = &self.security {
            conn.starttls(params.clone(), &self.hello)
                .await
                .map_err(|e| self.refused("STARTTLS with the relay failed", e))?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials)
                .await
                .map_err(|e| self.refused("the relay refused the credentials", e))?;
        }
        Ok(conn)
    }

    /// A step of [`Pool::connect`] that failed: what failed (with the reply code, if the relay
    /// sent one) for `/readyz`, and the full error, with the relay's address, for the log.
    fn refused(&self, step: &str, e: lettre::transport::smtp::Error) -> SendError {
        let cause = match e.status() {
            Some(code) => format!("{step} (SMTP {code})"),
            None => step.to_owned(),
        };
        SendError::Unavailable {
            cause,
            error: format!("{}:{}: {e}", self.host, self.port),
        }
    }

    /// Opens a connection (greeting, TLS, authentication) and keeps it for the next message:
    /// whether the relay takes mail again after [`SendError::Unavailable`].
    pub async fn probe(&self) -> Result<(), SendError> {
        let _slot =
            self.slots.acquire().await.map_err(|_| {
                SendError::Transient("the SMTP channel is shutting down".to_owned())
            })?;
        let conn = self.checkout().await?;
        self.checkin(conn);
        Ok(())
    }
}

/// TLS from the first byte, by lettre's own TLS code (the same trust settings as STARTTLS),
/// over Herald's socket. lettre offers this only through `AsyncNetworkStream`, which speaks the
/// `futures` I/O traits; [`Implicit`] adapts it back to what `connect_with_transport` takes.
#[allow(deprecated)]
async fn implicit_tls(
    tcp: TcpStream,
    peer: SocketAddr,
    params: TlsParameters,
) -> Result<Implicit, lettre::transport::smtp::Error> {
    let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
    stream.upgrade_tls(params).await?;
    Ok(Implicit {
        inner: stream.compat(),
        peer,
    })
}

#[allow(deprecated)]
#[derive(Debug)]
struct Implicit {
    inner: Compat<AsyncNetworkStream>,
    peer: SocketAddr,
}

impl AsyncTokioStream for Implicit {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
}

impl AsyncRead for Implicit {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Implicit {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

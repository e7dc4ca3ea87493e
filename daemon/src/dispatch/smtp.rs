//! The relay: every email leaves through one SMTP relay, over a small pool
//! of connections that are reused from message to message.
//!
//! We open the TCP stream ourselves and turn Nagle's algorithm off
//! (`TCP_NODELAY`) before lettre sees it. lettre writes a message's data
//! and the end-of-data marker (`\r\n.\r\n`) as two writes and then waits
//! for the reply. With Nagle on, the small second write is held back until
//! the relay acknowledges the first, and the relay delays that ACK (40 ms
//! on Linux) because it has nothing to answer yet: one stall per message,
//! about 23 messages/s per connection whatever the hardware.
//! `cargo bench -p touchpoint-daemon --bench smtp` shows it.
//!
//! The transaction (MAIL, RCPT…, DATA, data) is driven here, not by
//! lettre's `send`, which answers any refusal with QUIT and a closed
//! connection. After a refusal we send RSET and keep the connection, so an
//! unknown recipient does not cost a reconnect (and a TLS handshake).
//!
//! What a [`Delivery`] tells the caller:
//! - `Accepted`: the relay took the message (2xx after the data).
//! - `Transient` / `Permanent`: the relay refused this message (a 4xx / 5xx
//!   reply to MAIL, a RCPT, DATA or the data). If one recipient is refused,
//!   the transaction is abandoned: nothing goes to the others.
//! - `Unreachable`: says nothing about the message. No connection, TLS or
//!   AUTH failed, a timeout, a `421` (the relay is closing the channel), or
//!   the connection dropped. Retry later. One case is ambiguous, as with any
//!   SMTP client: when the connection drops after the end of the data went
//!   out, the relay may have taken the message; the error says so.
//!
//! Data goes out byte-exact: a message ending in CRLF is sent without it,
//! because the end-of-data marker supplies that line end (RFC 5321
//! 4.1.1.4); lettre would otherwise add an empty line at the end.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
#[allow(deprecated)]
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use touchpoint_common::config::{SmtpConfig, SmtpTls};

/// Idle connections older than this are probed with NOOP before reuse:
/// relays close idle connections (Postfix after 300 s), and a probe is
/// cheaper than a failed MAIL.
const PROBE_AFTER: Duration = Duration::from_secs(60);

/// The relay cannot be set up from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error("smtp.host is empty: no relay configured")]
    NoHost,
    #[error("smtp.connections must be at least 1")]
    NoConnections,
    #[error("smtp.username is {0:?} but there is no password (smtp.password_file)")]
    NoPassword(String),
    #[error("TLS for relay {host}: {error}")]
    Tls { host: String, error: String },
}

/// The outcome of one message handed to the relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The relay took the message; `response` is its reply, e.g.
    /// `"250 2.0.0 Ok: queued as 4F2A1"`.
    Accepted { response: String },
    /// 4xx: refused for now; the same message may go through later.
    /// A message with a non-ASCII address or 8-bit data for a relay that
    /// lacks SMTPUTF8 / 8BITMIME is refused here without being sent, as
    /// `Permanent` with 553 / 554 and a message that starts "not sent:".
    Transient { code: u16, message: String },
    /// 5xx: refused for good (unknown recipient, policy, content).
    Permanent { code: u16, message: String },
    /// Nothing was learned about the message (see the module docs).
    Unreachable { error: String },
}

/// Counters of a [`Relay`], for status views and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Connections open now, idle or in use.
    pub open: usize,
    /// Connections carrying a message now.
    pub in_use: usize,
    /// Messages the relay accepted.
    pub sent: u64,
    /// Messages the relay refused (4xx or 5xx).
    pub refused: u64,
    /// Connections opened (greeting, EHLO, TLS and AUTH done).
    pub connects: u64,
    /// Sends that ended `Unreachable`.
    pub errors: u64,
}

#[derive(Default)]
struct Counters {
    open: AtomicUsize,
    in_use: AtomicUsize,
    sent: AtomicU64,
    refused: AtomicU64,
    connects: AtomicU64,
    errors: AtomicU64,
}

/// An open connection; counted in `open` for as long as it lives, so a
/// send that is cancelled halfway leaves the counters right.
struct Conn {
    smtp: AsyncSmtpConnection,
    last_used: Instant,
    counters: Arc<Counters>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a send holding a connection.
struct InUse(Arc<Counters>);

impl InUse {
    fn new(counters: &Arc<Counters>) -> Self {
        counters.in_use.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(counters))
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        self.0.in_use.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why a transaction did not end in acceptance.
enum Failure {
    /// The relay answered with a negative reply; the connection is in step.
    Refused { code: u16, message: String },
    /// The connection is no longer usable. `data_sent`: the end of the data
    /// had gone out, so the relay may have taken the message.
    Broken { error: String, data_sent: bool },
}

impl Failure {
    fn from_smtp(e: lettre::transport::smtp::Error, data_sent: bool) -> Self {
        match e.status() {
            Some(code) => Failure::Refused {
                code: code.into(),
                message: std::error::Error::source(&e)
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            },
            None => Failure::Broken {
                error: e.to_string(),
                data_sent,
            },
        }
    }
}

/// The SMTP relay with its connection pool. `Send + Sync`; share it in an
/// `Arc`.
pub struct Relay {
    host: String,
    port: u16,
    tls: SmtpTls,
    tls_parameters: Option<TlsParameters>,
    /// PEM certificates trusted besides the public roots.
    roots_pem: Vec<u8>,
    hello: ClientId,
    credentials: Option<Credentials>,
    timeout: Duration,
    probe_after: Duration,
    permits: Semaphore,
    idle: Mutex<Vec<Conn>>,
    closed: AtomicBool,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay for `cfg`; `password` is the content of `cfg.password_file`
    /// (needed when `cfg.username` is set). Opens no connection yet.
    pub fn new(cfg: &SmtpConfig, password: Option<String>) -> Result<Relay, SmtpError> {
        if cfg.host.is_empty() {
            return Err(SmtpError::NoHost);
        }
        if cfg.connections == 0 {
            return Err(SmtpError::NoConnections);
        }
        let credentials = if cfg.username.is_empty() {
            None
        } else {
            let password = password.ok_or_else(|| SmtpError::NoPassword(cfg.username.clone()))?;
            Some(Credentials::new(cfg.username.clone(), password))
        };
        let hello = if cfg.hello_name.is_empty() {
            ClientId::default()
        } else {
            ClientId::Domain(cfg.hello_name.clone())
        };
        let mut relay = Relay {
            host: cfg.host.clone(),
            port: cfg.port,
            tls: cfg.tls,
            tls_parameters: None,
            roots_pem: Vec::new(),
            hello,
            credentials,
            timeout: Duration::from_secs(cfg.timeout_secs.max(1)),
            probe_after: PROBE_AFTER,
            permits: Semaphore::new(cfg.connections as usize),
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            counters: Arc::default(),
        };
        relay.tls_parameters = relay.build_tls()?;
        Ok(relay)
    }

    /// Trusts the PEM certificates in `pem` besides the public roots: for a
    /// relay whose certificate comes from a private CA.
    pub fn with_root_certificates(mut self, pem: &[u8]) -> Result<Relay, SmtpError> {
        if !String::from_utf8_lossy(pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(self.tls_error("no PEM certificate in the given roots"));
        }
        self.roots_pem.extend_from_slice(pem);
        self.roots_pem.push(b'\n');
        self.tls_parameters = self.build_tls()?;
        Ok(self)
    }

    fn tls_error(&self, error: impl ToString) -> SmtpError {
        SmtpError::Tls {
            host: self.host.clone(),
            error: error.to_string(),
        }
    }

    fn build_tls(&self) -> Result<Option<TlsParameters>, SmtpError> {
        if self.tls == SmtpTls::None {
            return Ok(None);
        }
        let mut builder = TlsParameters::builder(self.host.clone());
        if !self.roots_pem.is_empty() {
            let cert = Certificate::from_pem(&self.roots_pem).map_err(|e| self.tls_error(e))?;
            builder = builder.add_root_certificate(cert);
        }
        builder
            .build_rustls()
            .map(Some)
            .map_err(|e| self.tls_error(e))
    }

    /// Sends one message on a pooled connection: an idle one if there is
    /// one (probed first if it idled longer than a minute), else a new one.
    /// At most `connections` sends run at once; further callers wait.
    pub async fn send(&self, envelope: &Envelope, bytes: &[u8]) -> Delivery {
        let delivery = self.send_inner(envelope, bytes).await;
        let counter = match &delivery {
            Delivery::Accepted { .. } => &self.counters.sent,
            Delivery::Transient { .. } | Delivery::Permanent { .. } => &self.counters.refused,
            Delivery::Unreachable { .. } => &self.counters.errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        delivery
    }

    async fn send_inner(&self, envelope: &Envelope, bytes: &[u8]) -> Delivery {
        let closed = || Delivery::Unreachable {
            error: "the relay connection pool is closed (shutting down)".into(),
        };
        if self.closed.load(Ordering::Acquire) {
            return closed();
        }
        let Ok(_permit) = self.permits.acquire().await else {
            return closed();
        };
        if self.closed.load(Ordering::Acquire) {
            return closed();
        }
        let _in_use = InUse::new(&self.counters);
        let (mut conn, reused) = match self.checkout().await {
            Ok(c) => c,
            Err(error) => return Delivery::Unreachable { error },
        };
        let mut result = self.transaction(&mut conn.smtp, envelope, bytes).await;
        if reused
            && matches!(
                result,
                Err(Failure::Broken {
                    data_sent: false,
                    ..
                })
            )
        {
            // The relay closed the idle connection under us. The message
            // had not gone out, so one more try on a fresh connection is
            // safe and spares the caller a pointless back-off.
            drop(conn);
            conn = match self.open().await {
                Ok(c) => c,
                Err(error) => return Delivery::Unreachable { error },
            };
            result = self.transaction(&mut conn.smtp, envelope, bytes).await;
        }
        match result {
            Ok(response) => {
                self.checkin(conn).await;
                Delivery::Accepted {
                    response: render(&response),
                }
            }
            Err(Failure::Refused { code, message }) => {
                if self.within(conn.smtp.command(Rset)).await.is_ok() {
                    self.checkin(conn).await;
                }
                match code {
                    421 => Delivery::Unreachable {
                        error: format!("relay closing the channel: {code} {message}"),
                    },
                    code if code >= 500 => Delivery::Permanent { code, message },
                    _ => Delivery::Transient { code, message },
                }
            }
            Err(Failure::Broken { error, data_sent }) => Delivery::Unreachable {
                error: if data_sent {
                    format!(
                        "{error} (after the end of the data was sent: the relay may have taken the message)"
                    )
                } else {
                    error
                },
            },
        }
    }

    /// Counters of this relay now.
    pub fn stats(&self) -> RelayStats {
        let c = &self.counters;
        RelayStats {
            open: c.open.load(Ordering::Relaxed),
            in_use: c.in_use.load(Ordering::Relaxed),
            sent: c.sent.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            connects: c.connects.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
        }
    }

    /// Graceful shutdown: QUIT on the idle connections now, on the busy
    /// ones when their message is done. Sends after this are `Unreachable`.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        for mut conn in idle {
            let _ = self.within(conn.smtp.quit()).await;
        }
    }

    /// Runs `fut` within the command timeout.
    async fn within<T>(
        &self,
        fut: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r.map_err(|e| Failure::from_smtp(e, false)),
            Err(_) => Err(Failure::Broken {
                error: format!("no reply within {} s", self.timeout.as_secs()),
                data_sent: false,
            }),
        }
    }

    /// An idle connection (and `true`), or a new one (and `false`).
    async fn checkout(&self) -> Result<(Conn, bool), String> {
        loop {
            let idle = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let Some(mut conn) = idle else {
                return self.open().await.map(|c| (c, false));
            };
            if conn.last_used.elapsed() < self.probe_after {
                return Ok((conn, true));
            }
            if let Ok(true) = tokio::time::timeout(self.timeout, conn.smtp.test_connected()).await {
                return Ok((conn, true));
            }
            tracing::debug!(host = %self.host, "idle relay connection gone; dropped");
        }
    }

    /// Returns a connection to the pool, or closes it when shutting down.
    async fn checkin(&self, mut conn: Conn) {
        if conn.smtp.has_broken() {
            return;
        }
        if self.closed.load(Ordering::Acquire) {
            let _ = self.within(conn.smtp.quit()).await;
            return;
        }
        conn.last_used = Instant::now();
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
    }

    /// Opens a connection: TCP (no Nagle), implicit TLS or STARTTLS as
    /// configured, greeting and EHLO, AUTH when configured.
    async fn open(&self) -> Result<Conn, String> {
        let whole = self.timeout * 4;
        match tokio::time::timeout(whole, self.open_steps()).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "relay {}:{}: connection not ready within {} s",
                self.host,
                self.port,
                whole.as_secs()
            )),
        }
    }

    async fn open_steps(&self) -> Result<Conn, String> {
        let at = format!("relay {}:{}", self.host, self.port);
        let tcp = connect_tcp(&self.host, self.port, self.timeout)
            .await
            .map_err(|e| format!("{at}: connect: {e}"))?;
        let stream: Box<dyn AsyncTokioStream> = match (&self.tls, &self.tls_parameters) {
            (SmtpTls::Tls, Some(params)) => {
                #[allow(deprecated)]
                let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
                self.within(stream.upgrade_tls(params.clone()))
                    .await
                    .map_err(|f| format!("{at}: TLS: {}", describe(f)))?;
                Box::new(TlsBridge(stream))
            }
            _ => Box::new(tcp),
        };
        let mut smtp = self
            .within(AsyncSmtpConnection::connect_with_transport(
                stream,
                &self.hello,
            ))
            .await
            .map_err(|f| format!("{at}: greeting/EHLO: {}", describe(f)))?;
        if let (SmtpTls::Starttls, Some(params)) = (&self.tls, &self.tls_parameters) {
            self.within(smtp.starttls(params.clone(), &self.hello))
                .await
                .map_err(|f| format!("{at}: STARTTLS: {}", describe(f)))?;
        }
        if let Some(credentials) = &self.credentials {
            self.within(smtp.auth(&[Mechanism::Plain, Mechanism::Login], credentials))
                .await
                .map_err(|f| format!("{at}: AUTH: {}", describe(f)))?;
        }
        self.counters.connects.fetch_add(1, Ordering::Relaxed);
        self.counters.open.fetch_add(1, Ordering::Relaxed);
        Ok(Conn {
            smtp,
            last_used: Instant::now(),
            counters: Arc::clone(&self.counters),
        })
    }

    /// One transaction: MAIL, RCPT for each recipient, DATA, the data.
    async fn transaction(
        &self,
        smtp: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        bytes: &[u8],
    ) -> Result<Response, Failure> {
        let mut params = Vec::new();
        let non_ascii_address = envelope
            .from()
            .into_iter()
            .chain(envelope.to())
            .any(|a: &Address| !AsRef::<str>::as_ref(a).is_ascii());
        if non_ascii_address {
            if !smtp.server_info().supports_feature(Extension::SmtpUtfEight) {
                return Err(Failure::Refused {
                    code: 553,
                    message:
                        "not sent: 5.6.7 non-ASCII address and the relay does not offer SMTPUTF8"
                            .into(),
                });
            }
            params.push(MailParameter::SmtpUtfEight);
        }
        if !bytes.is_ascii() {
            if !smtp.server_info().supports_feature(Extension::EightBitMime) {
                return Err(Failure::Refused {
                    code: 554,
                    message: "not sent: 5.6.3 8-bit data and the relay does not offer 8BITMIME"
                        .into(),
                });
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        self.within(smtp.command(Mail::new(envelope.from().cloned(), params)))
            .await?;
        for to in envelope.to() {
            self.within(smtp.command(Rcpt::new(to.clone(), Vec::new())))
                .await?;
        }
        self.within(smtp.command(Data)).await?;
        let data = bytes.strip_suffix(b"\r\n").unwrap_or(bytes);
        match tokio::time::timeout(self.timeout, smtp.message(data)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(Failure::from_smtp(e, true)),
            Err(_) => Err(Failure::Broken {
                error: format!("no reply to the data within {} s", self.timeout.as_secs()),
                data_sent: true,
            }),
        }
    }
}

fn describe(f: Failure) -> String {
    match f {
        Failure::Refused { code, message } => format!("{code} {message}"),
        Failure::Broken { error, .. } => error,
    }
}

/// `"250 2.0.0 Ok: queued"`: the code and the reply's lines.
fn render(response: &Response) -> String {
    let mut s = u16::from(response.code()).to_string();
    for line in response.message() {
        s.push(' ');
        s.push_str(line);
    }
    s
}

/// Opens a TCP connection to the relay with Nagle's algorithm off (see the
/// module docs for why).
pub(crate) async fn connect_tcp(host: &str, port: u16, limit: Duration) -> io::Result<TcpStream> {
    let stream = tokio::time::timeout(limit, TcpStream::connect((host, port)))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("not connected within {} s", limit.as_secs()),
            )
        })??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A TLS stream from lettre (implicit TLS, set up before the greeting) in
/// the shape `connect_with_transport` takes: lettre's stream speaks the
/// futures-io traits, the transport wants tokio's.
#[allow(deprecated)]
#[derive(Debug)]
struct TlsBridge(AsyncNetworkStream);

impl tokio::io::AsyncRead for TlsBridge {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let dst = buf.initialize_unfilled();
        match futures::io::AsyncRead::poll_read(Pin::new(&mut self.0), cx, dst) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl tokio::io::AsyncWrite for TlsBridge {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        futures::io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures::io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures::io::AsyncWrite::poll_close(Pin::new(&mut self.0), cx)
    }
}

impl AsyncTokioStream for TlsBridge {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mailin_embedded::response::{AUTH_OK, INVALID_CREDENTIALS, OK};
    use mailin_embedded::{AuthMechanism, Handler, Response as Reply, Server, SslConfig};
    use std::io::{Read, Write};
    use std::net::TcpListener as StdListener;

    // A test CA and a certificate for "localhost" and 127.0.0.1 signed by
    // it (P-256, valid until 2126), made with openssl for these tests only.
    const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBojCCAUegAwIBAgIUHHFOLirnb099YJ+gAp7iwTD8/BQwCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwSVG91Y2hwb2ludCB0ZXN0IENBMCAXDTI2MTEyMzEzMTgwOVoY
DzIxMjYxMDMwMTMxODA5WjAdMRswGQYDVQQDDBJUb3VjaHBvaW50IHRlc3QgQ0Ew
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATXiGp+o8W2cB5m8vkOAgva1CENDk9h
QTmFlw5PixBs91jCF6PakpulPNYdh5GPiuVi63kTeUoq4yRpOUJxySSTo2MwYTAd
BgNVHQ4EFgQUqNWzT6OYgWL8AE6kATcGUcOLhDgwHwYDVR0jBBgwFoAUqNWzT6OY
gWL8AE6kATcGUcOLhDgwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAgQw
CgYIKoZIzj0EAwIDSQAwRgIhAIohFrRBTD02pXKZbTeEm1p8nlbarJkzFER4e/bU
bzyhAiEAvo8roopSvshu/SFxkVlZSAV8uS6bzRVyeKKSbsaT++Y=
-----END CERTIFICATE-----
";
    const LEAF_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIByDCCAW6gAwIBAgIUKRJZBxk/8KoNENShfNPeIguXVwgwCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwSVG91Y2hwb2ludCB0ZXN0IENBMCAXDTI2MTEyMzEzMTgwOVoY
DzIxMjYxMDMwMTMxODA5WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjO
PQIBBggqhkjOPQMBBwNCAATJVTWCzZ6Y28t0WzxNw9RSg26tBJFSQKL8ENpbXp9u
MVb6r9iFv/NuvM8IiknVWAtw92nDlQtHYxjqPM7Ck4AUo4GSMIGPMAwGA1UdEwEB
/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMBoGA1Ud
EQQTMBGCCWxvY2FsaG9zdIcEfwAAATAdBgNVHQ4EFgQUIXB3W6JEKBs/9A8735ve
IVaxPD0wHwYDVR0jBBgwFoAUqNWzT6OYgWL8AE6kATcGUcOLhDgwCgYIKoZIzj0E
AwIDSAAwRQIgcVYyLGQYUJLuPR/9XXYw64mLzcsQ618u5mB24IOUuHgCIQCVMBkL
dcbf5B5ur2n3vecqzefJI2aIMqU3AjAt2J+iQA==
-----END CERTIFICATE-----
";
    const LEAF_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgrBI54O/CTlEBqFy0
m56+8qehTwxTVI8iJZRPYXUQRoihRANCAATJVTWCzZ6Y28t0WzxNw9RSg26tBJFS
QKL8ENpbXp9uMVb6r9iFv/NuvM8IiknVWAtw92nDlQtHYxjqPM7Ck4AU
-----END PRIVATE KEY-----
";

    /// 8-bit UTF-8, a line that starts with a dot (stuffed on the wire),
    /// CRLF line ends including the last.
    const MESSAGE: &[u8] = "From: Autohaus Müller <service@autohaus.test>\r\n\
To: kunde@example.test\r\n\
Subject: Ihr Termin\r\n\
Message-ID: <1.d001@autohaus.test>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Grüß Gott,\r\n\
.ein Punkt am Anfang\r\n\
..zwei Punkte\r\n\
.\r\n\
Ende\r\n"
        .as_bytes();

    #[derive(Clone, Debug, Default, PartialEq)]
    struct Got {
        from: String,
        to: Vec<String>,
        data: Vec<u8>,
    }

    /// The mailin-embedded handler: keeps accepted messages; refuses
    /// recipients containing "tempfail" (451) or "nosuchuser" (550).
    #[derive(Clone)]
    struct Recorder {
        got: Arc<Mutex<Vec<Got>>>,
        current: Got,
    }

    impl Handler for Recorder {
        fn rcpt(&mut self, to: &str) -> Reply {
            if to.contains("tempfail") {
                Reply::custom(451, "4.7.1 try again later".into())
            } else if to.contains("nosuchuser") {
                Reply::custom(550, "5.1.1 no such user".into())
            } else {
                OK
            }
        }

        fn data_start(&mut self, _domain: &str, from: &str, _8bit: bool, to: &[String]) -> Reply {
            self.current = Got {
                from: from.into(),
                to: to.to_vec(),
                data: Vec::new(),
            };
            OK
        }

        fn data(&mut self, buf: &[u8]) -> io::Result<()> {
            self.current.data.extend_from_slice(buf);
            Ok(())
        }

        fn data_end(&mut self) -> Reply {
            self.got
                .lock()
                .unwrap()
                .push(std::mem::take(&mut self.current));
            Reply::custom(250, "2.0.0 Ok: queued".into())
        }

        fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Reply {
            self.auth_login(user, password)
        }

        fn auth_login(&mut self, user: &str, password: &str) -> Reply {
            if user == "touchpoint" && password == "s3cret" {
                AUTH_OK
            } else {
                INVALID_CREDENTIALS
            }
        }
    }

    fn install_crypto_provider() {
        // Both of rustls' providers are compiled in (see Cargo.toml), so
        // mailin-embedded's server config needs a process default.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }

    /// A mailin-embedded server on 127.0.0.1:0 (its thread lives as long as
    /// the test process: the library has no shutdown).
    fn mailin(starttls: bool, auth: bool) -> (SocketAddr, Arc<Mutex<Vec<Got>>>) {
        let listener = StdListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::default();
        let mut server = Server::new(Recorder {
            got: Arc::clone(&got),
            current: Got::default(),
        });
        server
            .with_name("relay.test")
            .with_num_threads(8)
            .with_tcp_listener(listener);
        if starttls {
            install_crypto_provider();
            let dir = tempfile::tempdir().unwrap();
            let cert = dir.path().join("cert.pem");
            let key = dir.path().join("key.pem");
            std::fs::write(&cert, LEAF_PEM).unwrap();
            std::fs::write(&key, LEAF_KEY).unwrap();
            server
                .with_ssl(SslConfig::SelfSigned {
                    cert_path: cert.display().to_string(),
                    key_path: key.display().to_string(),
                })
                .unwrap();
        }
        if auth {
            server
                .with_auth(AuthMechanism::Plain)
                .with_auth(AuthMechanism::Login);
        }
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        (addr, got)
    }

    /// A raw SMTP responder for what mailin-embedded cannot do: faults, and
    /// refusing the data (554) of a message to a "spamtrap" recipient.
    struct Raw {
        addr: SocketAddr,
        /// Command lines seen, upper-cased, from every connection.
        log: Arc<Mutex<Vec<String>>>,
        got: Arc<Mutex<Vec<Vec<u8>>>>,
        /// The next this many DATA phases read one line of the data, then
        /// hang up without a reply.
        drop_data: Arc<AtomicUsize>,
    }

    #[derive(Clone, Copy, PartialEq)]
    enum After {
        /// Keep the connection after a message.
        Stay,
        /// Close it after each accepted message, as a relay does with
        /// connections that idle too long.
        Close,
    }

    fn raw(after: After, tls: Option<Arc<rustls::ServerConfig>>) -> Raw {
        let listener = StdListener::bind("127.0.0.1:0").unwrap();
        let raw = Raw {
            addr: listener.local_addr().unwrap(),
            log: Arc::default(),
            got: Arc::default(),
            drop_data: Arc::default(),
        };
        let (log, got, drop_data) = (
            Arc::clone(&raw.log),
            Arc::clone(&raw.got),
            Arc::clone(&raw.drop_data),
        );
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let (log, got, drop_data, tls) = (
                    Arc::clone(&log),
                    Arc::clone(&got),
                    Arc::clone(&drop_data),
                    tls.clone(),
                );
                std::thread::spawn(move || match tls {
                    Some(cfg) => {
                        let conn = rustls::ServerConnection::new(cfg).unwrap();
                        let stream = rustls::StreamOwned::new(conn, tcp);
                        let _ = raw_session(stream, after, &log, &got, &drop_data);
                    }
                    None => {
                        let _ = raw_session(tcp, after, &log, &got, &drop_data);
                    }
                });
            }
        });
        raw
    }

    fn read_line<S: Read>(s: &mut S, buf: &mut Vec<u8>) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(i) = buf.iter().position(|&b| b == b'\n') {
                return Ok(Some(buf.drain(..=i).collect()));
            }
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk)?;
            if n == 0 {
                return Ok(None);
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn raw_session<S: Read + Write>(
        mut s: S,
        after: After,
        log: &Mutex<Vec<String>>,
        got: &Mutex<Vec<Vec<u8>>>,
        drop_data: &AtomicUsize,
    ) -> io::Result<()> {
        let mut buf = Vec::new();
        let mut spamtrap = false;
        s.write_all(b"220 raw.test ESMTP\r\n")?;
        while let Some(line) = read_line(&mut s, &mut buf)? {
            let cmd = String::from_utf8_lossy(&line)
                .trim_end()
                .to_ascii_uppercase();
            log.lock().unwrap().push(cmd.clone());
            let verb = cmd.split([' ', ':']).next().unwrap_or_default().to_string();
            match verb.as_str() {
                "EHLO" => s.write_all(b"250-raw.test\r\n250 8BITMIME\r\n")?,
                "MAIL" | "RCPT" | "RSET" | "NOOP" => {
                    spamtrap |= verb == "RCPT" && cmd.contains("SPAMTRAP");
                    spamtrap &= verb != "RSET" && verb != "MAIL";
                    s.write_all(b"250 2.0.0 Ok\r\n")?
                }
                "QUIT" => {
                    s.write_all(b"221 2.0.0 Bye\r\n")?;
                    return Ok(());
                }
                "DATA" => {
                    s.write_all(b"354 go ahead\r\n")?;
                    let drop_now = drop_data
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    let mut data = Vec::new();
                    loop {
                        let Some(line) = read_line(&mut s, &mut buf)? else {
                            return Ok(());
                        };
                        if drop_now {
                            return Ok(());
                        }
                        if line == b".\r\n" {
                            break;
                        }
                        data.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
                    }
                    if std::mem::take(&mut spamtrap) {
                        s.write_all(b"554 5.7.1 message refused\r\n")?;
                        continue;
                    }
                    got.lock().unwrap().push(data);
                    s.write_all(b"250 2.0.0 Ok: queued as RAW\r\n")?;
                    if after == After::Close {
                        return Ok(());
                    }
                }
                _ => s.write_all(b"500 5.5.2 what?\r\n")?,
            }
            s.flush()?;
        }
        Ok(())
    }

    fn tls_server_config() -> Arc<rustls::ServerConfig> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(LEAF_PEM.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(LEAF_KEY.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        )
    }

    fn config(host: &str, addr: SocketAddr, tls: SmtpTls, connections: u32) -> SmtpConfig {
        SmtpConfig {
            host: host.into(),
            port: addr.port(),
            tls,
            username: String::new(),
            password_file: String::new(),
            ca_file: String::new(),
            connections,
            in_flight_per_connection: 8,
            timeout_secs: 10,
            hello_name: "touchpoint.test".into(),
        }
    }

    fn plain(addr: SocketAddr, connections: u32) -> Relay {
        Relay::new(&config("127.0.0.1", addr, SmtpTls::None, connections), None).unwrap()
    }

    fn envelope(to: &[&str]) -> Envelope {
        Envelope::new(
            Some("bounce+d001.42@autohaus.test".parse().unwrap()),
            to.iter().map(|t| t.parse().unwrap()).collect(),
        )
        .unwrap()
    }

    fn accepted(d: &Delivery) -> bool {
        matches!(d, Delivery::Accepted { .. })
    }

    #[tokio::test]
    async fn accepted_mail_arrives_byte_exact() {
        let (addr, got) = mailin(false, false);
        let relay = plain(addr, 2);
        let d = relay
            .send(&envelope(&["kunde@example.test"]), MESSAGE)
            .await;
        let Delivery::Accepted { response } = d else {
            panic!("{d:?}")
        };
        assert_eq!(response, "250 2.0.0 Ok: queued");
        // Without a final line end, the end-of-data marker adds one.
        let d = relay
            .send(
                &envelope(&["b@example.test", "c@example.test"]),
                b"Subject: x\r\n\r\nno end",
            )
            .await;
        assert!(accepted(&d), "{d:?}");
        let got = got.lock().unwrap().clone();
        assert_eq!(
            got,
            vec![
                Got {
                    from: "bounce+d001.42@autohaus.test".into(),
                    to: vec!["kunde@example.test".into()],
                    data: MESSAGE.to_vec(),
                },
                Got {
                    from: "bounce+d001.42@autohaus.test".into(),
                    to: vec!["b@example.test".into(), "c@example.test".into()],
                    data: b"Subject: x\r\n\r\nno end\r\n".to_vec(),
                }
            ]
        );
        let stats = relay.stats();
        assert_eq!((stats.sent, stats.connects, stats.open), (2, 1, 1));
    }

    #[tokio::test]
    async fn refusals_are_classified_and_the_connection_kept() {
        let (addr, got) = mailin(false, false);
        let relay = plain(addr, 1);
        let d = relay
            .send(&envelope(&["tempfail@example.test"]), MESSAGE)
            .await;
        assert_eq!(
            d,
            Delivery::Transient {
                code: 451,
                message: "4.7.1 try again later".into()
            }
        );
        let d = relay
            .send(&envelope(&["nosuchuser@example.test"]), MESSAGE)
            .await;
        assert_eq!(
            d,
            Delivery::Permanent {
                code: 550,
                message: "5.1.1 no such user".into()
            }
        );
        // One refused recipient stops the whole transaction.
        let d = relay
            .send(
                &envelope(&["ok@example.test", "nosuchuser@example.test"]),
                MESSAGE,
            )
            .await;
        assert!(matches!(d, Delivery::Permanent { code: 550, .. }), "{d:?}");
        let d = relay.send(&envelope(&["ok@example.test"]), MESSAGE).await;
        assert!(accepted(&d), "{d:?}");
        let got = got.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].to, vec!["ok@example.test".to_string()]);
        let stats = relay.stats();
        assert_eq!(
            (stats.connects, stats.refused, stats.sent, stats.errors),
            (1, 3, 1, 0),
            "every message on the first connection"
        );
    }

    #[tokio::test]
    async fn a_refusal_after_the_data_keeps_the_connection() {
        // mailin-embedded stays in its data state after refusing the data,
        // so this one runs against the raw responder.
        let raw = raw(After::Stay, None);
        let relay = plain(raw.addr, 1);
        let d = relay
            .send(&envelope(&["spamtrap@example.test"]), MESSAGE)
            .await;
        assert_eq!(
            d,
            Delivery::Permanent {
                code: 554,
                message: "5.7.1 message refused".into()
            }
        );
        let d = relay.send(&envelope(&["a@example.test"]), MESSAGE).await;
        assert!(accepted(&d), "{d:?}");
        assert_eq!(*raw.got.lock().unwrap(), vec![MESSAGE.to_vec()]);
        let stats = relay.stats();
        assert_eq!((stats.connects, stats.refused, stats.sent), (1, 1, 1));
    }

    #[tokio::test]
    async fn nothing_listening_is_unreachable() {
        let port = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let relay = plain(port, 2);
        let d = relay.send(&envelope(&["a@example.test"]), MESSAGE).await;
        let Delivery::Unreachable { error } = d else {
            panic!("{d:?}")
        };
        assert!(error.contains("connect"), "{error}");
        let stats = relay.stats();
        assert_eq!((stats.errors, stats.open, stats.in_use), (1, 0, 0));
    }

    #[tokio::test]
    async fn connections_are_reused() {
        let (addr, got) = mailin(false, false);
        let relay = plain(addr, 4);
        for _ in 0..50 {
            assert!(accepted(
                &relay.send(&envelope(&["a@example.test"]), MESSAGE).await
            ));
        }
        assert_eq!(
            relay.stats().connects,
            1,
            "one after another: one connection"
        );

        let relay = plain(addr, 4);
        let env = envelope(&["b@example.test"]);
        let sends = (0..50).map(|_| relay.send(&env, MESSAGE));
        let results = futures::future::join_all(sends).await;
        assert!(results.iter().all(accepted), "{results:?}");
        let stats = relay.stats();
        assert_eq!(
            (stats.connects, stats.open, stats.in_use, stats.sent),
            (4, 4, 0, 50),
            "at once: the pool's size"
        );
        assert_eq!(got.lock().unwrap().len(), 100);
    }

    #[tokio::test]
    async fn the_stream_handed_to_lettre_has_nodelay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = connect_tcp("127.0.0.1", addr.port(), Duration::from_secs(5))
            .await
            .unwrap();
        assert!(stream.nodelay().unwrap());
    }

    #[tokio::test]
    async fn a_drop_in_the_data_is_unreachable_and_the_connection_replaced() {
        let raw = raw(After::Stay, None);
        raw.drop_data.store(1, Ordering::SeqCst);
        let relay = plain(raw.addr, 1);
        let d = relay.send(&envelope(&["a@example.test"]), MESSAGE).await;
        let Delivery::Unreachable { error } = d else {
            panic!("{d:?}")
        };
        assert!(error.contains("may have taken the message"), "{error}");
        assert_eq!(relay.stats().open, 0, "the broken connection is gone");
        let d = relay.send(&envelope(&["a@example.test"]), MESSAGE).await;
        assert!(accepted(&d), "{d:?}");
        assert_eq!(*raw.got.lock().unwrap(), vec![MESSAGE.to_vec()]);
        let stats = relay.stats();
        assert_eq!((stats.connects, stats.errors, stats.sent), (2, 1, 1));
    }

    #[tokio::test]
    async fn a_connection_the_relay_closed_while_idle_is_replaced() {
        let raw = raw(After::Close, None);
        let relay = plain(raw.addr, 1);
        for _ in 0..3 {
            let d = relay.send(&envelope(&["a@example.test"]), MESSAGE).await;
            assert!(accepted(&d), "{d:?}");
        }
        let stats = relay.stats();
        assert_eq!((stats.connects, stats.errors, stats.sent), (3, 0, 3));
        assert_eq!(raw.got.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn old_idle_connections_are_probed() {
        let raw = raw(After::Stay, None);
        let mut relay = plain(raw.addr, 1);
        relay.probe_after = Duration::ZERO;
        for _ in 0..2 {
            assert!(accepted(
                &relay.send(&envelope(&["a@example.test"]), MESSAGE).await
            ));
        }
        let log = raw.log.lock().unwrap().clone();
        assert_eq!(log.iter().filter(|c| *c == "NOOP").count(), 1, "{log:?}");
        assert_eq!(relay.stats().connects, 1);
    }

    #[tokio::test]
    async fn starttls_and_auth() {
        let (addr, got) = mailin(true, true);
        let mut cfg = config("localhost", addr, SmtpTls::Starttls, 1);
        cfg.username = "touchpoint".into();
        let relay = Relay::new(&cfg, Some("s3cret".into()))
            .unwrap()
            .with_root_certificates(CA_PEM.as_bytes())
            .unwrap();
        let d = relay
            .send(&envelope(&["kunde@example.test"]), MESSAGE)
            .await;
        assert!(accepted(&d), "{d:?}");
        assert_eq!(got.lock().unwrap()[0].data, MESSAGE);

        let wrong = Relay::new(&cfg, Some("guess".into()))
            .unwrap()
            .with_root_certificates(CA_PEM.as_bytes())
            .unwrap();
        let d = wrong
            .send(&envelope(&["kunde@example.test"]), MESSAGE)
            .await;
        assert!(
            matches!(&d, Delivery::Unreachable { error } if error.contains("AUTH: 535")),
            "{d:?}"
        );

        // The public roots do not know the test CA.
        let untrusted = Relay::new(&cfg, Some("s3cret".into())).unwrap();
        let d = untrusted
            .send(&envelope(&["kunde@example.test"]), MESSAGE)
            .await;
        assert!(
            matches!(&d, Delivery::Unreachable { error } if error.contains("STARTTLS")),
            "{d:?}"
        );
        assert_eq!(got.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn implicit_tls() {
        let raw = raw(After::Stay, Some(tls_server_config()));
        let relay = Relay::new(&config("localhost", raw.addr, SmtpTls::Tls, 1), None)
            .unwrap()
            .with_root_certificates(CA_PEM.as_bytes())
            .unwrap();
        for _ in 0..2 {
            let d = relay.send(&envelope(&["a@example.test"]), MESSAGE).await;
            assert!(accepted(&d), "{d:?}");
        }
        assert_eq!(*raw.got.lock().unwrap(), vec![MESSAGE.to_vec(); 2]);
        assert_eq!(relay.stats().connects, 1);

        // A plain server does not answer a TLS handshake.
        let (addr, _) = mailin(false, false);
        let relay = Relay::new(&config("localhost", addr, SmtpTls::Tls, 1), None).unwrap();
        let d = relay.send(&envelope(&["a@example.test"]), MESSAGE).await;
        assert!(
            matches!(&d, Delivery::Unreachable { error } if error.contains("TLS")),
            "{d:?}"
        );
    }

    #[tokio::test]
    async fn close_quits_idle_connections() {
        let raw = raw(After::Stay, None);
        let relay = plain(raw.addr, 2);
        assert!(accepted(
            &relay.send(&envelope(&["a@example.test"]), MESSAGE).await
        ));
        relay.close().await;
        assert!(raw.log.lock().unwrap().contains(&"QUIT".to_string()));
        assert_eq!(relay.stats().open, 0);
        let d = relay.send(&envelope(&["a@example.test"]), MESSAGE).await;
        assert!(matches!(d, Delivery::Unreachable { .. }), "{d:?}");
        assert_eq!(relay.stats().connects, 1);
    }

    #[test]
    fn configuration_errors() {
        let addr: SocketAddr = "127.0.0.1:25".parse().unwrap();
        let mut cfg = config("", addr, SmtpTls::None, 1);
        assert!(matches!(Relay::new(&cfg, None), Err(SmtpError::NoHost)));
        cfg.host = "relay.test".into();
        cfg.connections = 0;
        assert!(matches!(
            Relay::new(&cfg, None),
            Err(SmtpError::NoConnections)
        ));
        cfg.connections = 1;
        cfg.username = "touchpoint".into();
        assert!(matches!(
            Relay::new(&cfg, None),
            Err(SmtpError::NoPassword(_))
        ));
        let relay = Relay::new(&cfg, Some("pw".into())).unwrap();
        assert!(relay.with_root_certificates(b"not a certificate").is_err());
    }

    #[test]
    fn relay_and_send_are_shareable_across_tasks() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: &T) {}
        let addr: SocketAddr = "127.0.0.1:25".parse().unwrap();
        let relay = plain(addr, 1);
        send_sync(&relay);
        let env = envelope(&["a@example.test"]);
        let fut = relay.send(&env, MESSAGE);
        send(&fut);
    }
}

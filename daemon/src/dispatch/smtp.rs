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
use touchpoint_common::limits;

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

impl Delivery {
    /// The relay's words as one clean line of about a kilobyte: a relay
    /// may answer with up to 100 kB of lines (what lettre reads), and what
    /// it says goes into a message's history, why and last error, a bad
    /// address's reason and the status every operator sees, again with
    /// every retry.
    fn bounded(self) -> Self {
        let cut = |text| limits::outside_owned(text, limits::OUTSIDE_CHARS);
        match self {
            Delivery::Accepted { response } => Delivery::Accepted {
                response: cut(response),
            },
            Delivery::Transient { code, message } => Delivery::Transient {
                code,
                message: cut(message),
            },
            Delivery::Permanent { code, message } => Delivery::Permanent {
                code,
                message: cut(message),
            },
            Delivery::Unreachable { error } => Delivery::Unreachable { error: cut(error) },
        }
    }
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
        let delivery = self.send_inner(envelope, bytes).await.bounded();
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
mod tests;

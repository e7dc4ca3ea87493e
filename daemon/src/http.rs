//! The daemon's small HTTP endpoint: RFC 8058 one-click unsubscribe.
//!
//! Emails carry `List-Unsubscribe: <mailto:…>, <{public_url}/u/{token}>`
//! and `List-Unsubscribe-Post: List-Unsubscribe=One-Click`. A mail client
//! POSTs `List-Unsubscribe=One-Click` to that link and email consent is
//! withdrawn at once (200, no further step); a person who opens the link
//! gets a page with one button that makes the same POST, because mail
//! scanners fetch every link and a GET must change nothing.
//!
//! Everything here faces the internet: each connection serves one request
//! (no keep-alive), whose header and body must each arrive within
//! `request_timeout` (slowloris gets closed), at most `max_connections` at once and
//! `max_connections_per_ip` of them from one client address (more are closed
//! unanswered before a byte is read; `slots`), bodies beyond `max_body_bytes` get 413, more than
//! `requests_per_minute` refusals from one client address get 429 (the address
//! from `X-Forwarded-For` only when the peer is a trusted proxy). Any path
//! but `/u/{token}` and any token that is not ours, or names no message,
//! gets the same 404, which says nothing about tenants or messages.
//!
//! A thin router (`route`) over dispatch's one way to withdraw email
//! consent (`Dispatcher::unsubscribe_one_click`), the same as for a mailed
//! unsubscribe; every withdrawal is audited (`audit`), refusals are
//! counted and audited once a minute. Imports dispatch, store and config;
//! never control.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::HttpSettings;
use crate::dispatch::Dispatcher;
use crate::store::Stores;

mod audit;
mod page;
mod rate;
mod route;
mod slots;

/// Headers are read into a buffer of at most this size (hyper's minimum);
/// a longer header block ends the connection.
const MAX_HEADER_BYTES: usize = 8192;
/// Beyond the header and body timeouts, how long one connection may last.
const BACKSTOP: Duration = Duration::from_secs(30);

/// Binds the listen address; a failure is a start-up error that names it.
pub async fn bind(settings: &HttpSettings) -> Result<TcpListener, HttpError> {
    TcpListener::bind(settings.listen)
        .await
        .map_err(|source| HttpError::Bind {
            addr: settings.listen,
            source,
        })
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen on {addr} ([http] listen): {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What every request handler shares.
pub(crate) struct Endpoint {
    dispatcher: Arc<Dispatcher>,
    stores: Arc<Stores>,
    settings: HttpSettings,
    rate: rate::Limiter,
    tally: audit::Tally,
    /// Connections closed for their address's cap, counted per address.
    crowded: audit::Crowded,
}

/// Serves on `listener` until `shutdown`; each connection runs on `tracker`.
pub async fn run(
    listener: TcpListener,
    dispatcher: Arc<Dispatcher>,
    stores: Arc<Stores>,
    settings: HttpSettings,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let slots = Arc::new(slots::Slots::new(
        settings.max_connections,
        settings.max_connections_per_ip,
        &settings.trusted_proxies,
    ));
    let ep = Arc::new(Endpoint {
        rate: rate::Limiter::new(settings.requests_per_minute),
        dispatcher,
        stores,
        settings,
        tally: audit::Tally::default(),
        crowded: audit::Crowded::default(),
    });
    let mut audit_tick = tokio::time::interval(Duration::from_secs(60));
    audit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = audit_tick.tick() => {
                flush_tally(&ep).await;
                continue;
            }
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "http: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = match slots.take(peer.ip()) {
            Ok(slot) => slot,
            // Closed unanswered: a flood gets nothing but closes.
            Err(slots::Full::All) => {
                route::refuse(&ep, audit::Refusal::Busy);
                continue;
            }
            Err(slots::Full::Address(key)) => {
                route::refuse_address(&ep, key);
                continue;
            }
        };
        let (ep, shutdown) = (ep.clone(), shutdown.clone());
        tracker.spawn(async move {
            serve(stream, peer, ep, shutdown).await;
            drop(slot);
        });
    }
    flush_tally(&ep).await;
}

async fn flush_tally(ep: &Arc<Endpoint>) {
    let ep = ep.clone();
    let flushed = tokio::task::spawn_blocking(move || {
        ep.tally.flush(&ep.stores);
        ep.crowded.flush(&ep.stores);
    });
    if let Err(e) = flushed.await {
        tracing::error!(error = %e, "http: audit task failed");
    }
}

/// One connection, one request, within the request timeout.
async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    ep: Arc<Endpoint>,
    shutdown: CancellationToken,
) {
    let limit = ep.settings.request_timeout;
    let svc = {
        let ep = ep.clone();
        service_fn(move |req| {
            let ep = ep.clone();
            async move { Ok::<_, std::convert::Infallible>(route::handle(req, peer.ip(), &ep).await) }
        })
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limit)
        .keep_alive(false)
        .max_buf_size(MAX_HEADER_BYTES)
        .serve_connection(TokioIo::new(stream), svc);
    let mut conn = std::pin::pin!(conn);
    // The header and the body each have `limit` (hyper's header timeout,
    // the body's in `route`); this is the backstop for everything else,
    // a store that answers slowly included.
    let backstop = 2 * limit + BACKSTOP;
    let finished = tokio::select! {
        r = tokio::time::timeout(backstop, conn.as_mut()) => r,
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(limit, conn.as_mut()).await
        }
    };
    match finished {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "http: connection ended with an error"),
        Err(_) => tracing::warn!(%peer, "http: connection not done in time; closed"),
    }
}

//! Accepting connections: the peer's credentials are checked before
//! anything else, so a peer without access is refused at once and never
//! takes one of the `max_connections` slots; refusals are counted per uid
//! and audited once a minute.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use touchpoint_common::codec::encode_frame;
use touchpoint_common::domain::Timestamp;
use touchpoint_common::protocol::{AuditOutcome, HelloReply, PROTOCOL_VERSION};

use super::{audit, reply, Ctx};

/// Refused peers answered at once; beyond this many at a time, a refused
/// connection is closed without a word (a flood gets nothing but closes).
const REFUSING_AT_ONCE: usize = 16;
/// How long a refused peer is given to send its hello (read so that its
/// write does not fail before it can read why it was refused).
const REFUSAL_LINGER: Duration = Duration::from_millis(500);

/// Accepts connections until `shutdown`; each connection runs on `tracker`.
///
/// The peer's credentials are checked on accept: a peer without access is
/// refused at once and never takes one of the `max_connections` slots, so
/// no other user can lock out the ones who have access.
pub async fn run(
    listener: UnixListener,
    ctx: Arc<Ctx>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(ctx.cfg.max_connections.max(1) as usize));
    let refusing = Arc::new(Semaphore::new(REFUSING_AT_ONCE));
    let mut audit_tick = tokio::time::interval(Duration::from_secs(5));
    audit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = audit_tick.tick() => {
                ctx.refusals.flush(&ctx, false);
                continue;
            }
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let cred = match stream.peer_cred() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read peer credentials; closing");
                continue;
            }
        };
        let (uid, gid) = (cred.uid(), cred.gid());
        let identity = match ctx.access.identify(uid, gid) {
            Ok(i) => i,
            Err(reason) => {
                ctx.refusals.note(&ctx, uid, &reason);
                if let Ok(permit) = refusing.clone().try_acquire_owned() {
                    tracker.spawn(async move {
                        refuse_at_once(stream, reason).await;
                        drop(permit);
                    });
                }
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if let Ok(p) = refusing.clone().try_acquire_owned() {
                let limit = ctx.cfg.max_connections;
                tracker.spawn(async move {
                    refuse_busy(stream, limit).await;
                    drop(p);
                });
            }
            continue;
        };
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            ctx.connections.fetch_add(1, Ordering::Relaxed);
            super::session::serve(stream, ctx.clone(), identity, shutdown).await;
            ctx.connections.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    ctx.refusals.flush(&ctx, true);
}

/// Tells a peer without access why, without reading more than its hello.
async fn refuse_at_once(stream: UnixStream, reason: String) {
    let mut framed = Framed::new(stream, reply::codec());
    let reply = HelloReply::Rejected {
        version: PROTOCOL_VERSION,
        reason,
    };
    if let Ok(bytes) = encode_frame(&reply) {
        let _ = tokio::time::timeout(REFUSAL_LINGER, framed.send(bytes::Bytes::from(bytes))).await;
    }
    let _ = tokio::time::timeout(REFUSAL_LINGER, framed.next()).await;
}

async fn refuse_busy(stream: UnixStream, limit: u32) {
    let mut framed = Framed::new(stream, reply::codec());
    // Read the hello first: closing with it unread makes the client's write
    // fail (EPIPE) before it can read why.
    let _ = tokio::time::timeout(Duration::from_secs(1), framed.next()).await;
    let reply = HelloReply::Rejected {
        version: PROTOCOL_VERSION,
        reason: format!("too many connections (limit {limit}); try again later"),
    };
    if let Ok(bytes) = encode_frame(&reply) {
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            framed.send(bytes::Bytes::from(bytes)),
        )
        .await;
    }
}

/// Refused connections, counted per uid over a minute and audited as one
/// line each: a user who cannot get in cannot grow the audit log faster
/// than a line a minute.
#[derive(Default)]
pub(super) struct Refusals {
    windows: std::sync::Mutex<std::collections::HashMap<u32, RefusalWindow>>,
}

struct RefusalWindow {
    first: Timestamp,
    last: Timestamp,
    count: u64,
    reason: String,
}

/// One audit line per uid per this long (milliseconds are the timestamps').
const REFUSAL_WINDOW_SECS: i64 = 60;
/// Uids counted at once; more and every window is written out early.
const REFUSAL_UIDS: usize = 1_024;

impl Refusals {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<u32, RefusalWindow>> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn note(&self, ctx: &Ctx, uid: u32, reason: &str) {
        let now = Timestamp::now();
        let full = {
            let mut w = self.lock();
            match w.get_mut(&uid) {
                Some(win) => {
                    win.count += 1;
                    win.last = now;
                }
                None => {
                    tracing::warn!(uid, %reason, "connection refused (further refusals of this uid within a minute are counted)");
                    w.insert(
                        uid,
                        RefusalWindow {
                            first: now,
                            last: now,
                            count: 1,
                            reason: reason.to_string(),
                        },
                    );
                }
            }
            w.len() >= REFUSAL_UIDS
        };
        if full {
            self.flush(ctx, true);
        }
    }

    /// Audits the windows a minute old (all of them with `all`).
    fn flush(&self, ctx: &Ctx, all: bool) {
        let now = Timestamp::now();
        let due: Vec<(u32, RefusalWindow)> = {
            let mut w = self.lock();
            let uids: Vec<u32> = w
                .iter()
                .filter(|(_, win)| all || now.0 - win.first.0 >= REFUSAL_WINDOW_SECS * 1000)
                .map(|(uid, _)| *uid)
                .collect();
            uids.into_iter()
                .filter_map(|uid| w.remove(&uid).map(|win| (uid, win)))
                .collect()
        };
        for (uid, win) in due {
            let detail = if win.count == 1 {
                format!("1 connection refused at {}", win.first)
            } else {
                format!(
                    "{} connections refused from {} to {}",
                    win.count, win.first, win.last
                )
            };
            audit::record(
                ctx,
                audit::Actor::Peer { uid },
                &audit::Audited::connect(),
                detail,
                AuditOutcome::Refused(win.reason),
            );
        }
    }
}

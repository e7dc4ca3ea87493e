//! Accepting connections. The peer's credentials are checked before
//! anything else, so a peer without access is refused at once and never
//! takes one of the `max_connections` slots. Of those slots, one Unix user
//! holds at most `max_connections_per_user`, and `reserved_for_admins` are
//! kept for admins: no user, with access or without, can lock the others
//! out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use touchpoint_common::codec::encode_frame;
use touchpoint_common::config::ControlConfig;
use touchpoint_common::protocol::{HelloReply, Identity, Role, PROTOCOL_VERSION};

use super::{reply, Ctx};

/// Connections being identified or refused at once; beyond this, a new
/// connection is closed without a word (a flood gets nothing but closes,
/// and never delays those already admitted).
const ADMITTING_AT_ONCE: usize = 32;
/// How long a refused peer is given to send its hello (read so that its
/// write does not fail before it can read why it was refused).
const REFUSAL_LINGER: Duration = Duration::from_millis(500);

/// Accepts connections until `shutdown`; each connection runs on `tracker`.
pub async fn run(
    listener: UnixListener,
    ctx: Arc<Ctx>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let slots = Arc::new(Slots::new(&ctx.cfg));
    let admitting = Arc::new(Semaphore::new(ADMITTING_AT_ONCE));
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
        let Ok(admit) = admitting.clone().try_acquire_owned() else {
            continue;
        };
        let (ctx, slots, shutdown) = (ctx.clone(), slots.clone(), shutdown.clone());
        tracker.spawn(async move {
            let Some((stream, identity)) = admit_peer(&ctx, stream).await else {
                return;
            };
            let slot = match slots.take(&identity) {
                Ok(slot) => slot,
                Err(reason) => {
                    refuse(stream, reason, true).await;
                    return;
                }
            };
            drop(admit);
            let served = ctx.connections.serve(identity.uid);
            super::session::serve(stream, ctx.clone(), identity, shutdown).await;
            drop(served);
            drop(slot);
        });
    }
    ctx.refusals.flush(&ctx, true);
}

/// The peer's identity, or `None` once it was refused (and told why).
/// Names are looked up off the reactor: a slow name service delays this
/// peer, not the accept loop.
async fn admit_peer(ctx: &Arc<Ctx>, stream: UnixStream) -> Option<(UnixStream, Identity)> {
    let cred = match stream.peer_cred() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read peer credentials; closing");
            return None;
        }
    };
    let (uid, gid) = (cred.uid(), cred.gid());
    let c = ctx.clone();
    let identified = tokio::task::spawn_blocking(move || c.access.identify(uid, gid)).await;
    match identified {
        Ok(Ok(identity)) => Some((stream, identity)),
        Ok(Err(reason)) => {
            ctx.refusals.connect(ctx, uid, &reason);
            refuse(stream, reason, false).await;
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "identifying a peer failed");
            None
        }
    }
}

/// Tells a peer why it is refused. `after_hello`: the peer has access and
/// is refused for want of a slot, so its hello comes first (read it, or its
/// write fails before it can read why); a peer without access is told at
/// once and given a moment to send its hello.
async fn refuse(stream: UnixStream, reason: String, after_hello: bool) {
    let mut framed = Framed::new(stream, reply::codec());
    if after_hello {
        let _ = tokio::time::timeout(Duration::from_secs(1), framed.next()).await;
    }
    let reply = HelloReply::Rejected {
        version: PROTOCOL_VERSION,
        reason,
    };
    if let Ok(bytes) = encode_frame(&reply) {
        let _ = tokio::time::timeout(REFUSAL_LINGER, framed.send(bytes::Bytes::from(bytes))).await;
    }
    if !after_hello {
        let _ = tokio::time::timeout(REFUSAL_LINGER, framed.next()).await;
    }
}

/// The connection slots: `max_connections` in all, at most
/// `max_connections_per_user` per uid, the last `reserved_for_admins` for
/// admins only.
struct Slots {
    limit: usize,
    per_user: usize,
    reserved: usize,
    held: Mutex<(usize, HashMap<u32, usize>)>,
}

/// One slot, given back when dropped.
struct Slot {
    slots: Arc<Slots>,
    uid: u32,
}

impl Slots {
    fn new(cfg: &ControlConfig) -> Self {
        let limit = cfg.max_connections.max(1) as usize;
        Self {
            limit,
            per_user: cfg.max_connections_per_user.max(1) as usize,
            reserved: (cfg.reserved_for_admins as usize).min(limit - 1),
            held: Mutex::new((0, HashMap::new())),
        }
    }

    fn take(self: &Arc<Self>, who: &Identity) -> Result<Slot, String> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_uid) = &mut *held;
        let open_to = if who.role == Role::Admin {
            self.limit
        } else {
            self.limit - self.reserved
        };
        if *total >= open_to {
            return Err(format!(
                "too many connections (limit {}); try again later",
                self.limit
            ));
        }
        let mine = per_uid.entry(who.uid).or_insert(0);
        if *mine >= self.per_user {
            return Err(format!(
                "too many connections of user {} (limit {} per user); close some and try again",
                who.user, self.per_user
            ));
        }
        *mine += 1;
        *total += 1;
        Ok(Slot {
            slots: self.clone(),
            uid: who.uid,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_uid) = &mut *held;
        *total = total.saturating_sub(1);
        if let Some(n) = per_uid.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_uid.remove(&self.uid);
            }
        }
    }
}

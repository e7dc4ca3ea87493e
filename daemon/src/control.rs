//! The control socket: a thin layer that authenticates a connection by its
//! peer credentials, decodes framed requests, checks role and tenant scope,
//! calls the capability modules and audits what changed state.
//!
//! A bad client can only hurt its own connection: frames are bounded before
//! they are buffered, decoding is bounded, a client that does not finish the
//! hello or goes silent is disconnected, and connections beyond the limit are
//! told so and closed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use touchpoint_common::codec::{decode_frame, encode_frame, MAX_FRAME_BYTES};
use touchpoint_common::config::ControlConfig;
use touchpoint_common::domain::Timestamp;
use touchpoint_common::policy::PolicySet;
use touchpoint_common::protocol::{
    AuditEntry, AuditOutcome, DaemonStatus, ErrorKind, ErrorReply, Hello, HelloReply, Identity,
    Request, RequestEnvelope, Response, ResponseEnvelope, Role, Scope, TenantDetail, TenantSummary,
    CHANGE_COALESCE_MS, PROTOCOL_MAGIC, PROTOCOL_VERSION,
};
use touchpoint_common::{Date, TenantId};

use crate::access::{self, Access};
use crate::import::Importer;
use crate::store::{StoreError, Stores};

/// Everything a request handler may call.
pub struct Ctx {
    pub stores: Arc<Stores>,
    pub importer: Arc<Importer>,
    pub policies: Arc<crate::policy::PolicyHandle>,
    pub access: Access,
    pub cfg: ControlConfig,
    pub socket_path: PathBuf,
    pub started_at: Timestamp,
    pub connections: AtomicU64,
    /// Lead times the planner uses (the policy's unless learned).
    pub leads: Arc<crate::planner::LeadTimes>,
    pub schedule: Arc<crate::planner::ScheduleState>,
    /// Set once the dispatcher runs (the daemon starts it after the context).
    pub dispatch: std::sync::OnceLock<Arc<crate::dispatch::Dispatcher>>,
    /// Brand material and its approvals (set at start).
    pub material: std::sync::OnceLock<Arc<crate::approvals::Material>>,
    upload_seq: AtomicU64,
    refusals: Refusals,
}

impl Ctx {
    pub fn new(
        stores: Arc<Stores>,
        importer: Arc<Importer>,
        policies: Arc<crate::policy::PolicyHandle>,
        access: Access,
        cfg: ControlConfig,
        socket_path: PathBuf,
    ) -> Self {
        Self {
            stores,
            importer,
            policies,
            access,
            cfg,
            socket_path,
            started_at: Timestamp::now(),
            connections: AtomicU64::new(0),
            leads: Arc::new(crate::planner::LeadTimes::default()),
            schedule: Arc::new(crate::planner::ScheduleState::default()),
            dispatch: std::sync::OnceLock::new(),
            material: std::sync::OnceLock::new(),
            upload_seq: AtomicU64::new(0),
            refusals: Refusals::default(),
        }
    }

    fn audit(
        &self,
        who: &Identity,
        action: &str,
        tenant: Option<&TenantId>,
        detail: String,
        outcome: AuditOutcome,
    ) {
        self.audit_raw(
            who.uid,
            &who.user,
            Some(who.role),
            action,
            tenant,
            detail,
            outcome,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn audit_raw(
        &self,
        uid: u32,
        user: &str,
        role: Option<Role>,
        action: &str,
        tenant: Option<&TenantId>,
        detail: String,
        outcome: AuditOutcome,
    ) {
        let entry = AuditEntry {
            seq: 0,
            at: Timestamp::now(),
            uid,
            user: user.to_string(),
            role,
            action: action.to_string(),
            tenant: tenant.cloned(),
            detail,
            outcome,
        };
        if let Err(e) = self.stores.central().audit(entry) {
            tracing::error!(error = %e, action, "cannot write the audit log");
        }
    }
}

/// How much history a `Tenant` reply carries.
const DETAIL_IMPORTS: usize = 20;
const DETAIL_ERRORS: usize = 100;
const DETAIL_MERGES: usize = 500;

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME_BYTES)
        .new_codec()
}

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
            serve(stream, &ctx, identity, shutdown).await;
            ctx.connections.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    ctx.refusals.flush(&ctx, true);
}

/// Tells a peer without access why, without reading more than its hello.
async fn refuse_at_once(stream: UnixStream, reason: String) {
    let mut framed = Framed::new(stream, codec());
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
    let mut framed = Framed::new(stream, codec());
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
pub struct Refusals {
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
            ctx.audit_raw(
                uid,
                &format!("uid{uid}"),
                None,
                "connect",
                None,
                detail,
                AuditOutcome::Refused(win.reason),
            );
        }
    }
}

async fn send<T: serde::Serialize>(
    framed: &mut Framed<UnixStream, LengthDelimitedCodec>,
    msg: &T,
) -> bool {
    match encode_frame(msg) {
        Ok(bytes) => framed.send(bytes::Bytes::from(bytes)).await.is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a reply");
            false
        }
    }
}

async fn reject(framed: &mut Framed<UnixStream, LengthDelimitedCodec>, reason: String) {
    tracing::info!(%reason, "connection rejected");
    let _ = send(
        framed,
        &HelloReply::Rejected {
            version: PROTOCOL_VERSION,
            reason,
        },
    )
    .await;
    let _ = framed.get_mut().shutdown().await;
}

async fn serve(stream: UnixStream, ctx: &Ctx, identity: Identity, shutdown: CancellationToken) {
    let mut framed = Framed::new(stream, codec());

    let handshake = Duration::from_millis(ctx.cfg.handshake_timeout_ms);
    let hello = match tokio::time::timeout(handshake, framed.next()).await {
        Err(_) => {
            return reject(
                &mut framed,
                format!("no hello within {} ms", ctx.cfg.handshake_timeout_ms),
            )
            .await
        }
        Ok(None) => return,
        Ok(Some(Err(e))) => return reject(&mut framed, format!("bad frame: {e}")).await,
        Ok(Some(Ok(bytes))) => bytes,
    };
    let hello: Hello = match decode_frame(&hello) {
        Ok(h) => h,
        Err(_) => {
            return reject(
                &mut framed,
                "not a touchpoint hello: expected the protocol's first message".into(),
            )
            .await
        }
    };
    if hello.magic != PROTOCOL_MAGIC {
        return reject(&mut framed, "not a touchpoint hello: wrong magic".into()).await;
    }
    if hello.version != PROTOCOL_VERSION {
        return reject(
            &mut framed,
            format!(
                "protocol version {} is not supported: touchpointd {} speaks version {}; use a matching touchpoint",
                hello.version,
                env!("CARGO_PKG_VERSION"),
                PROTOCOL_VERSION
            ),
        )
        .await;
    }
    let client =
        touchpoint_common::limits::clean(&hello.client, touchpoint_common::limits::CLIENT_CHARS);
    tracing::debug!(user = %identity.user, role = %identity.role, %client, "connected");
    let welcome = HelloReply::Welcome {
        version: PROTOCOL_VERSION,
        daemon: format!("touchpointd {}", env!("CARGO_PKG_VERSION")),
        identity: identity.clone(),
    };
    if !send(&mut framed, &welcome).await {
        return;
    }

    let idle = Duration::from_secs(ctx.cfg.idle_timeout_secs.max(1));
    let mut upload: Option<Upload> = None;
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => break,
            n = tokio::time::timeout(idle, framed.next()) => n,
        };
        let bytes = match next {
            Err(_) => {
                let reply = error_reply(
                    0,
                    ErrorKind::Malformed,
                    format!("no request for {} s; closing", idle.as_secs()),
                );
                let _ = send(&mut framed, &reply).await;
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                let _ = send(
                    &mut framed,
                    &error_reply(0, ErrorKind::Malformed, format!("bad frame: {e}; closing")),
                )
                .await;
                break;
            }
            Ok(Some(Ok(b))) => b,
        };
        let envelope: RequestEnvelope = match decode_frame(&bytes) {
            Ok(e) => e,
            Err(e) => {
                let _ = send(
                    &mut framed,
                    &error_reply(
                        0,
                        ErrorKind::Malformed,
                        format!("cannot decode request: {e}; closing"),
                    ),
                )
                .await;
                break;
            }
        };
        let id = envelope.id;
        if matches!(envelope.request, Request::Subscribe) {
            if let Some(u) = upload.take() {
                u.discard().await;
            }
            let ok = send(
                &mut framed,
                &ResponseEnvelope {
                    id,
                    response: Response::Subscribed,
                },
            )
            .await;
            if ok {
                subscribed(&mut framed, ctx, &identity, id, &shutdown).await;
            }
            break;
        }
        if let Some(reply) = handle(ctx, &identity, envelope.request, &mut upload).await {
            if !send(
                &mut framed,
                &ResponseEnvelope {
                    id,
                    response: reply,
                },
            )
            .await
            {
                break;
            }
        }
    }
    if let Some(u) = upload.take() {
        u.discard().await;
    }
}

/// How long a subscriber may take to read one `Changed` before it is
/// dropped: the feed never waits on a client that stopped reading.
const SUBSCRIBER_SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection turned change feed: `Changed` frames (id `sub_id`) for the
/// changes in the caller's scope, the first at once, later ones gathered
/// over [`CHANGE_COALESCE_MS`]; `Ping` answered, anything else refused. Not
/// closed for being idle. What waits to be sent is one set of topics and
/// tenants, however much happens: the outbound queue is bounded.
async fn subscribed(
    framed: &mut Framed<UnixStream, LengthDelimitedCodec>,
    ctx: &Ctx,
    who: &Identity,
    sub_id: u64,
    shutdown: &CancellationToken,
) {
    use tokio::sync::broadcast::error::RecvError;
    let mut rx = ctx.stores.events().subscribe();
    let mut pending = crate::events::Pending::default();
    let window = Duration::from_millis(CHANGE_COALESCE_MS);
    let mut next_at = tokio::time::Instant::now();
    loop {
        let reply = tokio::select! {
            _ = shutdown.cancelled() => return,
            e = rx.recv() => {
                match e {
                    Ok(e) => {
                        pending.add(&e, &who.scope);
                    }
                    Err(RecvError::Lagged(_)) => pending.lagged(),
                    Err(RecvError::Closed) => return,
                }
                continue;
            }
            _ = tokio::time::sleep_until(next_at), if !pending.is_empty() => {
                let Some(changes) = pending.take() else { continue };
                next_at = tokio::time::Instant::now() + window;
                ResponseEnvelope { id: sub_id, response: Response::Changed(changes) }
            }
            frame = framed.next() => {
                let bytes = match frame {
                    Some(Ok(b)) => b,
                    _ => return,
                };
                match decode_frame::<RequestEnvelope>(&bytes) {
                    Ok(RequestEnvelope { id, request: Request::Ping, .. }) => {
                        ResponseEnvelope { id, response: Response::Pong }
                    }
                    Ok(env) => error_reply(
                        env.id,
                        ErrorKind::Invalid,
                        format!(
                            "this connection is a change feed: only ping is answered here, not {}; use another connection",
                            env.request.name()
                        ),
                    ),
                    Err(e) => {
                        let reply = error_reply(
                            0,
                            ErrorKind::Malformed,
                            format!("cannot decode request: {e}; closing"),
                        );
                        let _ = tokio::time::timeout(SUBSCRIBER_SEND_TIMEOUT, send(framed, &reply)).await;
                        return;
                    }
                }
            }
        };
        match tokio::time::timeout(SUBSCRIBER_SEND_TIMEOUT, send(framed, &reply)).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(_) => {
                tracing::info!(user = %who.user, "subscriber does not read its changes; dropped");
                return;
            }
        }
    }
}

fn error_reply(id: u64, kind: ErrorKind, message: String) -> ResponseEnvelope {
    ResponseEnvelope {
        id,
        response: Response::Error(ErrorReply { kind, message }),
    }
}

fn err(kind: ErrorKind, message: impl Into<String>) -> Response {
    Response::Error(ErrorReply {
        kind,
        message: message.into(),
    })
}

fn store_err(e: StoreError) -> Response {
    match e {
        StoreError::UnknownTenant(_) | StoreError::NotFound(_) => {
            err(ErrorKind::NotFound, e.to_string())
        }
        StoreError::Conflict(_) => err(ErrorKind::Invalid, e.to_string()),
        StoreError::Unavailable(_) => err(ErrorKind::Busy, e.to_string()),
        _ => {
            tracing::error!(error = %e, "store error");
            err(ErrorKind::Internal, e.to_string())
        }
    }
}

/// An upload in progress on one connection.
struct Upload {
    tenant: TenantId,
    file_name: String,
    declared: u64,
    path: PathBuf,
    file: Option<tokio::fs::File>,
    written: u64,
    failed: Option<String>,
}

impl Upload {
    async fn discard(mut self) {
        self.file.take();
        let _ = tokio::fs::remove_file(&self.path).await;
    }
}

/// Handles one request. `None` means no reply (upload chunks).
async fn handle(
    ctx: &Ctx,
    who: &Identity,
    request: Request,
    upload: &mut Option<Upload>,
) -> Option<Response> {
    let action = request.name();
    let tenant = access::tenant_of(&request);
    if !access::role_allows(who.role, &request) {
        let reason = format!("role {} may not {action}", who.role);
        ctx.audit(
            who,
            action,
            tenant.as_ref(),
            String::new(),
            AuditOutcome::Refused(reason.clone()),
        );
        return Some(err(ErrorKind::Forbidden, reason));
    }
    if let Err(e) = request.check_limits() {
        return Some(err(ErrorKind::Invalid, e.to_string()));
    }
    let material = ctx.material.get().cloned();
    let scoped = access::check_scope(&who.scope, &request, |id| {
        let m = material.as_ref()?;
        m.proposal(id).ok().map(|p| p.template)
    });
    if let Err(out) = scoped {
        ctx.audit(
            who,
            action,
            out.tenant.as_ref().or(tenant.as_ref()),
            String::new(),
            AuditOutcome::Refused(out.reason.clone()),
        );
        return Some(err(ErrorKind::Forbidden, out.reason));
    }
    match request {
        Request::UploadBegin {
            tenant,
            file_name,
            size,
        } => Some(upload_begin(ctx, who, tenant, file_name, size, upload).await),
        Request::UploadChunk { data } => {
            upload_chunk(ctx, data, upload).await;
            None
        }
        Request::UploadEnd => Some(upload_end(ctx, who, upload).await),
        Request::UploadAbort => {
            if let Some(u) = upload.take() {
                u.discard().await;
            }
            Some(Response::Pong)
        }
        Request::Ping => Some(Response::Pong),
        other => {
            let ctx_who = who.clone();
            // Store reads and writes block; keep them off the reactor.
            let stores = ctx.stores.clone();
            let status = if matches!(other, Request::Status) {
                Some(status(ctx, who))
            } else {
                None
            };
            let policies = ctx.policies.clone();
            let leads = ctx.leads.clone();
            let dispatcher = ctx.dispatch.get().cloned();
            let material = ctx.material.get().cloned();
            let reply = tokio::task::spawn_blocking(move || match other {
                Request::Status => status
                    .map(Response::Status)
                    .unwrap_or_else(|| err(ErrorKind::Internal, "status")),
                Request::ListTenants => list_tenants(&stores, &policies, &ctx_who),
                Request::Tenant { tenant } => tenant_detail(&stores, &policies, &tenant),
                Request::Imports { tenant, limit } => stores
                    .tenant(&tenant)
                    .and_then(|s| s.imports(limit.min(10_000) as usize))
                    .map(Response::Imports)
                    .unwrap_or_else(store_err),
                Request::Merges {
                    tenant,
                    include_undone,
                } => stores
                    .tenant(&tenant)
                    .and_then(|s| s.merges(include_undone))
                    .map(Response::Merges)
                    .unwrap_or_else(store_err),
                Request::UndoMerge { tenant, merge_id } => stores
                    .tenant(&tenant)
                    .and_then(|s| s.undo_merge(merge_id, &ctx_who.user))
                    .map(Response::MergeUndone)
                    .unwrap_or_else(store_err),
                Request::Audit {
                    tenant,
                    limit,
                    text,
                } => audit_log(&stores, &ctx_who, tenant.as_ref(), limit, &text),
                Request::Plan {
                    tenant,
                    day,
                    dry_run,
                    policies: candidate,
                    show,
                } => {
                    let r = plan(
                        &stores,
                        &policies,
                        &leads,
                        &ctx_who,
                        tenant.clone(),
                        day,
                        dry_run,
                        candidate,
                        show,
                    );
                    if let (Some(d), false) = (&dispatcher, dry_run) {
                        d.wake(tenant.as_ref());
                    }
                    r
                }
                Request::Costs { tenant, month } => {
                    let p = policies.current();
                    let tenants = in_scope(&p, &ctx_who, tenant);
                    crate::ledger::costs(&stores, &p, &tenants, month)
                        .map(Response::Costs)
                        .unwrap_or_else(store_err)
                }
                Request::Queue {
                    filter,
                    offset,
                    limit,
                } => {
                    let p = policies.current();
                    let tenants = match &filter.tenant {
                        Some(t) if p.tenant(t).is_none() => {
                            return err(
                                ErrorKind::NotFound,
                                format!("no dealer policy for tenant {t}"),
                            )
                        }
                        Some(t) => vec![t.clone()],
                        None => crate::overview::tenants_in_scope(&p, &ctx_who.scope),
                    };
                    crate::queue::page(&stores, &tenants, &filter, offset, limit)
                        .map(|page| Response::Queue(Box::new(page)))
                        .unwrap_or_else(store_err)
                }
                Request::Content { tenant, id } => {
                    match crate::content::content(&stores, &policies.current(), &tenant, id) {
                        Ok(c) => Response::Content(Box::new(c)),
                        Err(crate::content::ContentError::Store(e)) => store_err(e),
                        Err(crate::content::ContentError::NotFound(e)) => {
                            err(ErrorKind::NotFound, e)
                        }
                        Err(e) => err(ErrorKind::Invalid, e.to_string()),
                    }
                }
                Request::Overview => crate::overview::overview(
                    &stores,
                    &crate::overview::Sources {
                        policies: &policies,
                        dispatch: dispatcher.as_ref().map(|d| d.snapshot(&ctx_who.scope)),
                        material: material.as_deref(),
                    },
                    &ctx_who.scope,
                )
                .map(|o| Response::Overview(Box::new(o)))
                .unwrap_or_else(store_err),
                Request::Message { tenant, id } => {
                    match stores.tenant(&tenant).and_then(|s| s.message(id)) {
                        Ok(Some(m)) => Response::Message(Box::new(m)),
                        Ok(None) => err(
                            ErrorKind::NotFound,
                            format!("tenant {tenant} has no message {id}"),
                        ),
                        Err(e) => store_err(e),
                    }
                }
                other @ (Request::Propose { .. }
                | Request::ProposeRollback { .. }
                | Request::Proposals { .. }
                | Request::Proposal { .. }
                | Request::Preview { .. }
                | Request::Approve { .. }
                | Request::Reject { .. }
                | Request::Templates { .. }) => match material {
                    None => err(ErrorKind::Busy, "brand material is not loaded"),
                    Some(m) => material_request(
                        &m,
                        dispatcher.as_deref(),
                        &stores,
                        &policies,
                        &ctx_who,
                        other,
                    ),
                },
                other => match dispatcher {
                    None => err(ErrorKind::Busy, "dispatch is not running"),
                    Some(d) => dispatch_request(&d, &policies, &ctx_who, other),
                },
            })
            .await
            .unwrap_or_else(|e| err(ErrorKind::Internal, format!("handler failed: {e}")));
            if action == "plan" {
                let (outcome, detail) = match &reply {
                    Response::Error(e) => (AuditOutcome::Failed(e.message.clone()), String::new()),
                    Response::Planned(p) => (
                        AuditOutcome::Ok,
                        format!(
                            "{} messages planned, {} cancelled, {} tenants",
                            p.reports.iter().map(|r| r.planned_count).sum::<u64>(),
                            p.reports.iter().map(|r| r.cancelled_count).sum::<u64>(),
                            p.reports.len()
                        ),
                    ),
                    _ => (AuditOutcome::Ok, String::new()),
                };
                ctx.audit(who, action, tenant.as_ref(), detail, outcome);
            }
            if matches!(
                action,
                "pause"
                    | "resume"
                    | "run-batches"
                    | "hold"
                    | "release"
                    | "cancel"
                    | "retry"
                    | "call-outcomes"
            ) {
                let (outcome, detail) = match &reply {
                    Response::Error(e) => (AuditOutcome::Failed(e.message.clone()), String::new()),
                    Response::Actions(a) => (
                        AuditOutcome::Ok,
                        format!(
                            "{} of {} messages: {}",
                            a.iter().filter(|r| r.outcome.is_ok()).count(),
                            a.len(),
                            a.iter()
                                .map(|r| r.id.to_string())
                                .collect::<Vec<_>>()
                                .join(",")
                        ),
                    ),
                    Response::Paused(p) => {
                        (AuditOutcome::Ok, format!("{} pauses in force", p.len()))
                    }
                    Response::Batches(b) => (
                        AuditOutcome::Ok,
                        b.iter()
                            .map(|b| format!("{} {}: {} messages", b.tenant, b.kind, b.messages))
                            .collect::<Vec<_>>()
                            .join("; "),
                    ),
                    Response::Outcomes(o) => (
                        AuditOutcome::Ok,
                        format!("{} applied, {} errors", o.applied, o.errors.len()),
                    ),
                    _ => (AuditOutcome::Ok, String::new()),
                };
                ctx.audit(who, action, tenant.as_ref(), detail, outcome);
            }
            if matches!(
                action,
                "propose" | "propose-rollback" | "approve" | "reject"
            ) {
                let (outcome, detail) = match &reply {
                    Response::Error(e) => (AuditOutcome::Failed(e.message.clone()), String::new()),
                    Response::Proposal(d) => {
                        let p = &d.proposal;
                        let what = match &p.status {
                            touchpoint_common::protocol::ProposalStatus::Pending => format!(
                                "proposal #{} for template {} (base v{}{}): {}",
                                p.id,
                                p.template,
                                p.base_version,
                                p.rollback_to
                                    .map(|v| format!(", back to v{v}"))
                                    .unwrap_or_default(),
                                p.comment
                            ),
                            touchpoint_common::protocol::ProposalStatus::Approved {
                                version,
                                comment,
                                ..
                            } => format!(
                                "proposal #{} by {}: template {} v{version} in force{}",
                                p.id,
                                p.author,
                                p.template,
                                if comment.is_empty() {
                                    String::new()
                                } else {
                                    format!(": {comment}")
                                }
                            ),
                            touchpoint_common::protocol::ProposalStatus::Rejected {
                                comment,
                                ..
                            } => format!(
                                "proposal #{} by {} for template {} rejected: {comment}",
                                p.id, p.author, p.template
                            ),
                        };
                        (AuditOutcome::Ok, what)
                    }
                    _ => (AuditOutcome::Ok, String::new()),
                };
                ctx.audit(who, action, None, detail, outcome);
            }
            if action == "undo-merge" {
                let outcome = match &reply {
                    Response::Error(e) => AuditOutcome::Failed(e.message.clone()),
                    _ => AuditOutcome::Ok,
                };
                let detail = match &reply {
                    Response::MergeUndone(m) => {
                        format!("merge #{} ({} into {})", m.merge_id, m.merged, m.survivor)
                    }
                    _ => String::new(),
                };
                ctx.audit(who, action, tenant.as_ref(), detail, outcome);
            }
            Some(reply)
        }
    }
}

fn status(ctx: &Ctx, who: &Identity) -> DaemonStatus {
    let tenants = ctx
        .policies
        .current()
        .tenants
        .keys()
        .filter(|t| who.scope.allows(t))
        .count() as u64;
    DaemonStatus {
        daemon_version: env!("CARGO_PKG_VERSION").to_string(),
        protocol_version: PROTOCOL_VERSION,
        started_at: ctx.started_at,
        state_dir: ctx.stores.state_dir().display().to_string(),
        socket: ctx.socket_path.display().to_string(),
        policy: ctx.policies.status_for(&who.scope),
        tenants,
        tenants_open: ctx.stores.open_count() as u64,
        max_open_tenants: ctx.stores.max_open() as u64,
        connections: ctx.connections.load(Ordering::Relaxed),
        identity: who.clone(),
        planning: ctx.schedule.get(),
    }
}

fn summary(stores: &Stores, name: String, tenant: &TenantId) -> Result<TenantSummary, StoreError> {
    let s = stores.tenant(tenant)?;
    Ok(TenantSummary {
        id: tenant.clone(),
        name,
        stats: s.stats()?,
        opt_ins: s.opt_ins()?,
        last_import: s.imports(1)?.into_iter().next(),
        error: None,
    })
}

fn list_tenants(
    stores: &Stores,
    policies: &crate::policy::PolicyHandle,
    who: &Identity,
) -> Response {
    let p = policies.current();
    // From the central store: listing opens no tenant's database, and a
    // tenant whose store is in trouble is listed with its error.
    let out = p
        .tenants
        .iter()
        .filter(|(id, _)| who.scope.allows(id))
        .map(|(id, policy)| stores.summary(id, policy.tenant.name.clone()))
        .collect();
    Response::Tenants(out)
}

fn tenant_detail(
    stores: &Stores,
    policies: &crate::policy::PolicyHandle,
    tenant: &TenantId,
) -> Response {
    let name = policies
        .current()
        .tenant(tenant)
        .map(|p| p.tenant.name.clone())
        .unwrap_or_default();
    let detail = (|| {
        let s = stores.tenant(tenant)?;
        Ok::<_, StoreError>(TenantDetail {
            summary: summary(stores, name, tenant)?,
            // Bounded so a busy tenant's detail stays far below the frame
            // limit; the full history and errors are one `Imports` away.
            imports: s
                .imports(DETAIL_IMPORTS)?
                .into_iter()
                .map(|mut r| {
                    let cut = r.errors.len().saturating_sub(DETAIL_ERRORS);
                    r.errors.truncate(DETAIL_ERRORS);
                    r.errors_truncated += cut as u64;
                    r
                })
                .collect(),
            merges: s.merges(true)?.into_iter().take(DETAIL_MERGES).collect(),
        })
    })();
    detail.map(Response::Tenant).unwrap_or_else(store_err)
}

#[allow(clippy::too_many_arguments)]
fn plan(
    stores: &Stores,
    policies: &crate::policy::PolicyHandle,
    leads: &crate::planner::LeadTimes,
    who: &Identity,
    tenant: Option<TenantId>,
    day: Option<Date>,
    dry_run: bool,
    candidate: Option<BTreeMap<String, String>>,
    show: u32,
) -> Response {
    let current = policies.current();
    let candidate = match candidate {
        Some(_) if !dry_run => {
            return err(
                ErrorKind::Invalid,
                "planning against other policies is a dry run only",
            )
        }
        Some(files) => match PolicySet::validate(&files, "") {
            Ok(set) => Some(set),
            Err(errs) => {
                let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
                return err(
                    ErrorKind::Invalid,
                    format!("the candidate policies are invalid:\n{}", lines.join("\n")),
                );
            }
        },
        None => None,
    };
    let tenants: Vec<TenantId> = match tenant {
        Some(t) if current.tenants.contains_key(&t) => vec![t],
        Some(t) => {
            return err(
                ErrorKind::NotFound,
                format!("no dealer policy for tenant {t}"),
            )
        }
        None => current
            .tenants
            .keys()
            .filter(|t| who.scope.allows(t))
            .cloned()
            .collect(),
    };
    // At most ~2,000 listed messages in all, so the answer fits a frame.
    let show = (show as usize).min(2_000 / tenants.len().max(1)).min(500);
    let today = day.unwrap_or_else(Date::today);
    Response::Planned(crate::planner::request(
        stores,
        &current,
        candidate.as_ref(),
        &tenants,
        today,
        dry_run,
        show,
        leads,
    ))
}

/// The tenants a request covers: the one named, or all in the caller's scope.
fn in_scope(
    p: &crate::policy::Policies,
    who: &Identity,
    tenant: Option<TenantId>,
) -> Vec<TenantId> {
    match tenant {
        Some(t) => vec![t],
        None => p
            .tenants
            .keys()
            .filter(|t| who.scope.allows(t))
            .cloned()
            .collect(),
    }
}

fn material_request(
    m: &crate::approvals::Material,
    dispatcher: Option<&crate::dispatch::Dispatcher>,
    stores: &Stores,
    policies: &crate::policy::PolicyHandle,
    who: &Identity,
    request: Request,
) -> Response {
    let p = policies.current();
    let failed = |e: crate::approvals::ApprovalError| err(e.kind(), e.to_string());
    let detail = |id: u64| {
        m.detail(id)
            .map(|d| Response::Proposal(Box::new(d)))
            .unwrap_or_else(failed)
    };
    match request {
        Request::Propose {
            template,
            text,
            comment,
        } => match m.propose(&template, &text, &comment, &who.user, who.uid, &p.brand) {
            Ok(prop) => detail(prop.id),
            Err(e) => failed(e),
        },
        Request::ProposeRollback {
            template,
            version,
            comment,
        } => match m.propose_rollback(&template, version, &comment, &who.user, who.uid, &p.brand) {
            Ok(prop) => detail(prop.id),
            Err(e) => failed(e),
        },
        Request::Proposals { all } => m
            .proposals(all)
            .map(|mut list| {
                list.retain(|p| access::material_in_scope(&who.scope, &p.template, false).is_ok());
                Response::Proposals(list)
            })
            .unwrap_or_else(failed),
        Request::Proposal { id } => detail(id),
        Request::Preview {
            id,
            tenant,
            customer,
        } => {
            let t = match m.proposed_template(id) {
                Ok(t) => t,
                Err(e) => return failed(e),
            };
            match crate::approvals::preview::preview(
                stores,
                &p,
                id,
                &t,
                &tenant,
                customer.as_deref(),
            ) {
                Ok(pv) => Response::Preview(Box::new(pv)),
                Err(crate::approvals::preview::PreviewError::Store(e)) => store_err(e),
                Err(crate::approvals::preview::PreviewError::NotFound(e)) => {
                    err(ErrorKind::NotFound, e)
                }
                Err(e) => err(ErrorKind::Invalid, e.to_string()),
            }
        }
        Request::Approve { id, comment } => match m.approve(id, &who.user, who.uid, &comment) {
            Ok(v) => {
                // In force at once: planned messages already rendered with
                // the old version are rendered again; sent ones keep theirs.
                if let (Some(d), Ok(prop)) = (dispatcher, m.detail(id)) {
                    let line = format!("proposal #{id} approved by {}", who.user);
                    let rerendered =
                        match crate::approvals::slots::tenant_of(&prop.proposal.template) {
                            Some(tenant) => d.rerender_tenant_slots(&tenant, &line),
                            None => d.rerender(&prop.proposal.template, &line),
                        };
                    match rerendered {
                        Ok((done, held)) => tracing::info!(
                            template = %prop.proposal.template,
                            version = v.version,
                            rerendered = done,
                            held,
                            "brand material approved and in force"
                        ),
                        Err(e) => tracing::error!("re-rendering after approval #{id}: {e}"),
                    }
                }
                let brand = m
                    .detail(id)
                    .is_ok_and(|d| crate::approvals::brand::is_brand(&d.proposal.template));
                if brand {
                    // The approved brand text is in force from the next
                    // load of the policies: load them now, as SIGHUP does.
                    match policies.reload_if_changed(|_| Ok(())) {
                        Ok(_) => {
                            tracing::info!(version = v.version, "brand approved; policies reloaded")
                        }
                        Err(errs) => {
                            for e in &errs {
                                tracing::warn!("{e}");
                            }
                        }
                    }
                }
                detail(id)
            }
            Err(e) => failed(e),
        },
        Request::Reject { id, comment } => match m.reject(id, &who.user, who.uid, &comment) {
            Ok(_) => detail(id),
            Err(e) => failed(e),
        },
        Request::Templates { name } => m
            .history(name.as_deref())
            .map(|mut list| {
                list.retain(|t| access::material_in_scope(&who.scope, &t.name, false).is_ok());
                Response::Templates(list)
            })
            .unwrap_or_else(failed),
        _ => err(ErrorKind::Malformed, "unexpected request"),
    }
}

fn dispatch_request(
    d: &crate::dispatch::Dispatcher,
    policies: &crate::policy::PolicyHandle,
    who: &Identity,
    request: Request,
) -> Response {
    let p = policies.current();
    let failed = |e: crate::dispatch::DispatchError| match e {
        crate::dispatch::DispatchError::Store(e) => store_err(e),
        other => err(ErrorKind::Internal, other.to_string()),
    };
    match request {
        Request::DispatchStatus => {
            Response::Dispatch(Box::new(d.status(&who.scope, &in_scope(&p, who, None))))
        }
        Request::Pause { scope } | Request::Resume { scope }
            if scope.tenant.is_none() && !matches!(who.scope, Scope::All) =>
        {
            err(
                ErrorKind::Forbidden,
                format!(
                    "pausing or resuming {scope} needs a scope over every tenant; name a tenant"
                ),
            )
        }
        Request::Pause { scope } => {
            if let Some(s) = &scope.service {
                if !p.brand.services.contains_key(s) {
                    return err(
                        ErrorKind::NotFound,
                        format!("no service {s:?} in the brand policy"),
                    );
                }
            }
            d.pause(scope, &who.user)
                .map(|p| Response::Paused(pauses_in_scope(p, &who.scope)))
                .unwrap_or_else(failed)
        }
        Request::Resume { scope } => d
            .resume(scope)
            .map(|p| Response::Paused(pauses_in_scope(p, &who.scope)))
            .unwrap_or_else(failed),
        Request::RunBatches { tenant } => d
            .run_batches(&in_scope(&p, who, tenant))
            .map(Response::Batches)
            .unwrap_or_else(failed),
        Request::MessageAction {
            tenant,
            ids,
            action,
        } => d
            .apply_action(&tenant, &ids, action, &who.user)
            .map(Response::Actions)
            .unwrap_or_else(failed),
        Request::CallOutcomes { file_name, data } => d
            .call_outcomes(&file_name, &data, &|t| who.scope.allows(t))
            .map(Response::Outcomes)
            .unwrap_or_else(failed),
        _ => err(ErrorKind::Malformed, "unexpected request"),
    }
}

/// The pauses a caller with `scope` sees: its tenants' and those of all.
fn pauses_in_scope(
    mut pauses: Vec<touchpoint_common::protocol::Pause>,
    scope: &Scope,
) -> Vec<touchpoint_common::protocol::Pause> {
    pauses.retain(|p| p.scope.tenant.as_ref().is_none_or(|t| scope.allows(t)));
    pauses
}

/// Audit entries looked at per request at most: a text that matches
/// little answers with what the newest entries hold.
const AUDIT_SCAN: usize = 200_000;

fn audit_log(
    stores: &Stores,
    who: &Identity,
    tenant: Option<&TenantId>,
    limit: u32,
    text: &str,
) -> Response {
    let limit = limit.clamp(1, 10_000) as usize;
    let needle = text.trim().to_lowercase();
    let visible = |e: &AuditEntry| match (&who.scope, &e.tenant) {
        (Scope::All, _) => true,
        (scope, Some(t)) => scope.allows(t),
        // Entries about no tenant: only one's own.
        (_, None) => e.uid == who.uid,
    };
    let matches = |e: &AuditEntry| {
        if needle.is_empty() {
            return true;
        }
        let outcome = match &e.outcome {
            AuditOutcome::Ok => "ok".to_string(),
            AuditOutcome::Refused(r) => format!("refused {r}"),
            AuditOutcome::Failed(r) => format!("failed {r}"),
        };
        [
            e.user.as_str(),
            e.action.as_str(),
            e.tenant.as_ref().map_or("", |t| t.as_str()),
            e.detail.as_str(),
            outcome.as_str(),
        ]
        .iter()
        .any(|f| f.to_lowercase().contains(&needle))
    };
    match stores.central().audit_search(limit, AUDIT_SCAN, |e| {
        tenant.is_none_or(|t| e.tenant.as_ref() == Some(t)) && visible(e) && matches(e)
    }) {
        Ok(entries) => Response::Audit(entries),
        Err(e) => store_err(e),
    }
}

async fn upload_begin(
    ctx: &Ctx,
    who: &Identity,
    tenant: TenantId,
    file_name: String,
    size: u64,
    upload: &mut Option<Upload>,
) -> Response {
    if let Some(u) = upload.take() {
        u.discard().await;
    }
    if ctx.policies.current().tenant(&tenant).is_none() {
        let reason = format!("unknown tenant \"{tenant}\": no dealer policy registers it");
        ctx.audit(
            who,
            "import",
            Some(&tenant),
            file_name,
            AuditOutcome::Failed(reason.clone()),
        );
        return err(ErrorKind::NotFound, reason);
    }
    let bare = std::path::Path::new(&file_name)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .filter(|n| !n.is_empty() && n.len() <= 255)
        .unwrap_or_else(|| "upload.csv".to_string());
    if size > ctx.cfg.max_upload_bytes {
        return err(
            ErrorKind::Invalid,
            format!(
                "{bare} is {size} bytes; the limit is {} (control.max_upload_bytes)",
                ctx.cfg.max_upload_bytes
            ),
        );
    }
    let dir = ctx.stores.state_dir().join("spool");
    let seq = ctx.upload_seq.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("upload-{}-{seq}", std::process::id()));
    let file = async {
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::File::create(&path).await
    }
    .await;
    match file {
        Ok(f) => {
            *upload = Some(Upload {
                tenant,
                file_name: bare,
                declared: size,
                path,
                file: Some(f),
                written: 0,
                failed: None,
            });
            Response::UploadReady
        }
        Err(e) => err(
            ErrorKind::Internal,
            format!("cannot spool the upload in {}: {e}", dir.display()),
        ),
    }
}

async fn upload_chunk(ctx: &Ctx, data: Vec<u8>, upload: &mut Option<Upload>) {
    use tokio::io::AsyncWriteExt as _;
    let Some(u) = upload.as_mut() else { return };
    if u.failed.is_some() {
        return;
    }
    u.written += data.len() as u64;
    if u.written > u.declared || u.written > ctx.cfg.max_upload_bytes {
        u.failed = Some(format!(
            "{} sent more than the {} bytes it announced",
            u.file_name, u.declared
        ));
        return;
    }
    if let Some(f) = u.file.as_mut() {
        if let Err(e) = f.write_all(&data).await {
            u.failed = Some(format!("cannot spool the upload: {e}"));
        }
    }
}

async fn upload_end(ctx: &Ctx, who: &Identity, upload: &mut Option<Upload>) -> Response {
    use tokio::io::AsyncWriteExt as _;
    let Some(mut u) = upload.take() else {
        return err(ErrorKind::Malformed, "no upload in progress");
    };
    if u.failed.is_none() && u.written != u.declared {
        u.failed = Some(format!(
            "{} announced {} bytes but sent {}",
            u.file_name, u.declared, u.written
        ));
    }
    if u.failed.is_none() {
        if let Some(f) = u.file.as_mut() {
            if let Err(e) = f.flush().await {
                u.failed = Some(format!("cannot spool the upload: {e}"));
            }
        }
    }
    if let Some(reason) = u.failed.take() {
        ctx.audit(
            who,
            "import",
            Some(&u.tenant),
            u.file_name.clone(),
            AuditOutcome::Failed(reason.clone()),
        );
        u.discard().await;
        return err(ErrorKind::Invalid, reason);
    }
    u.file.take();
    let importer = ctx.importer.clone();
    let (tenant, name, path) = (u.tenant.clone(), u.file_name.clone(), u.path.clone());
    let result = tokio::task::spawn_blocking(move || importer.import(&tenant, &path, &name)).await;
    let _ = tokio::fs::remove_file(&u.path).await;
    match result {
        Ok(Ok(report)) => {
            let outcome = match &report.status {
                touchpoint_common::domain::ImportStatus::Failed { reason } => {
                    AuditOutcome::Failed(reason.clone())
                }
                _ => AuditOutcome::Ok,
            };
            let detail = format!(
                "import #{} {}: {} rows ok, {} rejected",
                report.import_id, report.file_name, report.rows_ok, report.rows_rejected
            );
            ctx.audit(who, "import", Some(&u.tenant), detail, outcome);
            Response::Imported(report)
        }
        Ok(Err(e)) => {
            ctx.audit(
                who,
                "import",
                Some(&u.tenant),
                u.file_name.clone(),
                AuditOutcome::Failed(e.to_string()),
            );
            err(ErrorKind::Internal, e.to_string())
        }
        Err(e) => err(ErrorKind::Internal, format!("import task failed: {e}")),
    }
}

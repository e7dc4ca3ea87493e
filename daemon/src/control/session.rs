//! One connection: the hello (magic and protocol version), then one
//! request after another, each answered in order, until the client goes,
//! falls silent for `idle_timeout_secs` or the daemon shuts down.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use touchpoint_common::codec::decode_frame;
use touchpoint_common::protocol::{
    ErrorKind, Hello, HelloReply, Identity, RequestEnvelope, Response, ResponseEnvelope, Role,
    PROTOCOL_MAGIC, PROTOCOL_VERSION,
};
use touchpoint_common::TenantId;

use super::reply::{self, error_reply, send, Conn};
use super::route::{self, Routed};
use super::{feed, upload, Ctx};

async fn reject(framed: &mut Conn, reason: String) {
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

/// Serves one connection whose peer has `identity`: the hello, then
/// requests until the client goes, falls silent or shutdown.
pub(super) async fn serve(
    stream: UnixStream,
    ctx: Arc<Ctx>,
    identity: Identity,
    shutdown: CancellationToken,
) {
    let mut framed = Framed::new(stream, reply::codec());

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
    let mut upload: Option<upload::Upload> = None;
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
        let name = envelope.request.name();
        let tenant = crate::access::tenant_of(&envelope.request);
        let changes = !Role::ReadOnly.allows(&envelope.request);
        let response = match route::route(&ctx, &identity, envelope.request, &mut upload).await {
            Routed::Reply(r) => {
                log_request(&identity, name, tenant.as_ref(), changes, &r);
                r
            }
            Routed::NoReply => continue,
            Routed::Feed => {
                if let Some(u) = upload.take() {
                    u.discard().await;
                }
                // Subscribed to the bus before the client hears it is.
                let rx = ctx.stores.events().subscribe();
                let ok = send(
                    &mut framed,
                    &ResponseEnvelope {
                        id,
                        response: Response::Subscribed,
                    },
                )
                .await;
                if ok {
                    feed::run(&mut framed, rx, &identity, id, &shutdown).await;
                }
                break;
            }
        };
        if !send(&mut framed, &ResponseEnvelope { id, response }).await {
            break;
        }
    }
    if let Some(u) = upload.take() {
        u.discard().await;
    }
}

/// One line per answered request, with its fields apart (JSON under the
/// journal): at info what may change something, at debug what only reads
/// (a console reads a lot).
fn log_request(
    who: &Identity,
    request: &'static str,
    tenant: Option<&TenantId>,
    changes: bool,
    response: &Response,
) {
    let outcome = match response {
        Response::Error(e) => match e.kind {
            ErrorKind::Malformed => "malformed",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Busy => "busy",
            ErrorKind::Internal => "internal",
        },
        _ => "ok",
    };
    let tenant = tenant.map_or("", |t| t.as_str());
    if changes {
        tracing::info!(user = %who.user, request, tenant, outcome, "request");
    } else {
        tracing::debug!(user = %who.user, request, tenant, outcome, "request");
    }
}

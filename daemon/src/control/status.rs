//! `Status` and `Overview`: the daemon and its figures as the caller's
//! scope shows them.

use std::sync::atomic::Ordering;

use touchpoint_common::protocol::{DaemonStatus, Identity, Response, PROTOCOL_VERSION};

use super::Ctx;

pub(super) fn status(ctx: &Ctx, who: &Identity) -> Response {
    Response::Status(daemon_status(ctx, who))
}

fn daemon_status(ctx: &Ctx, who: &Identity) -> DaemonStatus {
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
        planning: ctx.planning.schedule.get(),
    }
}

pub(super) fn overview(ctx: &Ctx, who: &Identity) -> Response {
    Response::Overview(Box::new(crate::overview::overview(
        &ctx.stores,
        &crate::overview::Sources {
            policies: &ctx.policies,
            dispatch: ctx.dispatch.as_ref().map(|d| d.snapshot(&who.scope)),
            material: Some(&ctx.material),
        },
        &who.scope,
    )))
}

//! `Status` and `Overview`: the daemon and its figures as the caller's
//! scope shows them. A caller whose scope is not every tenant gets the
//! figures of its own tenants (their open stores) and of its own
//! connections, and none of the figures only known over every tenant.

use touchpoint_common::protocol::{
    DaemonStatus, Identity, PlanningStatus, Response, Scope, PROTOCOL_VERSION,
};
use touchpoint_common::Date;

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
    let daemon_wide = matches!(who.scope, Scope::All);
    let planning = ctx.planning.schedule.get();
    let (tenants_open, connections, planning) = if daemon_wide {
        (ctx.stores.open_count(), ctx.connections.total(), planning)
    } else {
        // The last scheduled run's figures are over every tenant.
        let planning = PlanningStatus {
            last_planned: 0,
            last_failed: 0,
            last_millis: 0,
            ..planning
        };
        (
            ctx.stores.open_count_of(|t| who.scope.allows(t)),
            ctx.connections.of(who.uid),
            planning,
        )
    };
    DaemonStatus {
        daemon_version: env!("CARGO_PKG_VERSION").to_string(),
        protocol_version: PROTOCOL_VERSION,
        started_at: ctx.started_at,
        state_dir: ctx.stores.state_dir().display().to_string(),
        socket: ctx.socket_path.display().to_string(),
        policy: ctx.policies.status_for(&who.scope),
        tenants,
        tenants_open: tenants_open as u64,
        max_open_tenants: ctx.stores.max_open() as u64,
        connections,
        identity: who.clone(),
        planning,
        daemon_wide,
        clock: touchpoint_common::clock::start(),
        retention: {
            let mut r = ctx.retention.status();
            // Its figures are of every tenant.
            if !daemon_wide {
                r.last = None;
            }
            r
        },
    }
}

pub(super) fn overview(ctx: &Ctx, who: &Identity, day: Option<Date>) -> Response {
    Response::Overview(Box::new(crate::overview::overview(
        &ctx.stores,
        &crate::overview::Sources {
            policies: &ctx.policies,
            dispatch: ctx.dispatch.as_ref().map(|d| d.snapshot(&who.scope)),
            material: Some(&ctx.material),
        },
        &who.scope,
        day,
    )))
}

//! Dispatch on request: its status, pauses, closing the day's batches now,
//! an operator's hold/release/cancel/retry, and the call centre's outcomes.
//! Every answer is cut to the caller's scope.

use touchpoint_common::protocol::{
    ErrorKind, Identity, MessageAction, Pause, PauseScope, Response, Scope,
};
use touchpoint_common::TenantId;

use super::planning::in_scope;
use super::reply::{err, store_err};
use super::Ctx;
use crate::dispatch::{DispatchError, Dispatcher};

/// Runs `f` with the dispatcher, or says that dispatch is off.
fn with(ctx: &Ctx, f: impl FnOnce(&Dispatcher) -> Result<Response, DispatchError>) -> Response {
    let Some(d) = ctx.dispatch.as_deref() else {
        return err(
            ErrorKind::Busy,
            "dispatch is off ([dispatch] enabled = false in touchpointd.toml)",
        );
    };
    f(d).unwrap_or_else(|e| match e {
        DispatchError::Store(e) => store_err(e),
        other => err(ErrorKind::Internal, other.to_string()),
    })
}

pub(super) fn status(ctx: &Ctx, who: &Identity) -> Response {
    let p = ctx.policies.current();
    with(ctx, |d| {
        Ok(Response::Dispatch(Box::new(
            d.status(&who.scope, &in_scope(&p, who, None)),
        )))
    })
}

pub(super) fn pause(ctx: &Ctx, who: &Identity, scope: PauseScope) -> Response {
    if let Some(s) = &scope.service {
        if !ctx.policies.current().brand.services.contains_key(s) {
            return err(
                ErrorKind::NotFound,
                format!("no service {s:?} in the brand policy"),
            );
        }
    }
    with(ctx, |d| {
        d.pause(scope, &who.user)
            .map(|p| Response::Paused(pauses_in_scope(p, &who.scope)))
    })
}

pub(super) fn resume(ctx: &Ctx, who: &Identity, scope: PauseScope) -> Response {
    with(ctx, |d| {
        d.resume(scope)
            .map(|p| Response::Paused(pauses_in_scope(p, &who.scope)))
    })
}

pub(super) fn run_batches(ctx: &Ctx, who: &Identity, tenant: Option<TenantId>) -> Response {
    let p = ctx.policies.current();
    with(ctx, |d| {
        d.run_batches(&in_scope(&p, who, tenant))
            .map(Response::Batches)
    })
}

pub(super) fn act(
    ctx: &Ctx,
    who: &Identity,
    tenant: &TenantId,
    ids: &[u64],
    action: MessageAction,
) -> Response {
    with(ctx, |d| {
        d.apply_action(tenant, ids, action, &who.user)
            .map(Response::Actions)
    })
}

pub(super) fn call_outcomes(ctx: &Ctx, who: &Identity, file_name: &str, data: &[u8]) -> Response {
    with(ctx, |d| {
        d.call_outcomes(file_name, data, &|t| who.scope.allows(t))
            .map(Response::Outcomes)
    })
}

/// The pauses a caller with `scope` sees: its tenants' and those of all.
fn pauses_in_scope(mut pauses: Vec<Pause>, scope: &Scope) -> Vec<Pause> {
    pauses.retain(|p| p.scope.tenant.as_ref().is_none_or(|t| scope.allows(t)));
    pauses
}

//! `Plan`: the planner on demand (the daily run is the planner's own
//! schedule).

use std::collections::BTreeMap;

use touchpoint_common::protocol::{ErrorKind, Identity, Response};
use touchpoint_common::{Date, TenantId};

use super::reply::err;
use super::Ctx;

/// Plans (or dry-runs) the named tenant or every tenant in scope, with a
/// candidate policy set if one is given; wakes dispatch after a plan that
/// wrote.
pub(super) fn plan(ctx: &Ctx, who: &Identity, args: Plan) -> Response {
    let reply = plan_tenants(ctx, who, &args);
    if let (Some(d), false) = (&ctx.dispatch, args.dry_run) {
        d.wake(args.tenant.as_ref());
    }
    reply
}

/// The fields of a `Plan` request.
pub(super) struct Plan {
    pub(super) tenant: Option<TenantId>,
    pub(super) day: Option<Date>,
    pub(super) dry_run: bool,
    pub(super) candidate: Option<BTreeMap<String, String>>,
    pub(super) show: u32,
}

fn plan_tenants(ctx: &Ctx, who: &Identity, args: &Plan) -> Response {
    let Plan {
        tenant,
        day,
        dry_run,
        candidate,
        show,
    } = args;
    let (dry_run, show) = (*dry_run, *show);
    let current = ctx.policies.current();
    let candidate = match candidate {
        Some(_) if !dry_run => {
            return err(
                ErrorKind::Invalid,
                "planning against other policies is a dry run only",
            )
        }
        Some(files) => match touchpoint_common::render::lint::validate(files, "") {
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
        Some(t) if current.tenants.contains_key(t) => vec![t.clone()],
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
    let today = (*day).unwrap_or_else(Date::today);
    // Only a plan that commits today's messages computes learning again
    // (it reads every tenant, writes the central store, may raise the
    // version and is audited); a dry run, or a plan for another day, uses
    // what is in force.
    let learned = if !dry_run && today == Date::today() {
        ctx.planning.learning.refresh(&ctx.stores, &current, today)
    } else {
        ctx.planning.learning.current()
    };
    Response::Planned(crate::planner::request(
        &ctx.stores,
        &current,
        candidate.as_ref(),
        &tenants,
        today,
        dry_run,
        show,
        &learned,
    ))
}

/// The tenants a request covers: the one named, or all in the caller's scope.
pub(super) fn in_scope(
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

//! The results report: the caller's tenants, or pooled for the brand.

use touchpoint_common::protocol::{ErrorKind, Identity, ReportQuery, Response};
use touchpoint_common::{Date, TenantId};

use super::planning::in_scope;
use super::reply::{err, store_err};
use super::Ctx;
use crate::attribution;
use crate::results::{self, ResultsError};

pub(super) fn report(ctx: &Ctx, who: &Identity, query: ReportQuery) -> Response {
    let p = ctx.policies.current();
    // Before the tenant is looked up: a pooled query's answer must not
    // tell whether a tenant id exists.
    if query.pooled && query.tenant.is_some() {
        return err(
            ErrorKind::Invalid,
            "a pooled report pools every dealer; it takes no tenant",
        );
    }
    if let Some(t) = query.tenant.as_ref().filter(|t| p.tenant(t).is_none()) {
        return err(
            ErrorKind::NotFound,
            format!("no dealer policy for tenant {t}"),
        );
    }
    // A pooled report reads every dealer (the role decides who may ask);
    // any other is cut to the caller's scope here, names included.
    let tenants = in_scope(&p, who, query.tenant.clone());
    match results::report(&ctx.stores, &p, &tenants, query, Date::today()) {
        Ok(r) => Response::Report(Box::new(r)),
        Err(ResultsError::Invalid(e)) => err(ErrorKind::Invalid, e),
    }
}

/// One tenant's responses and their verdicts (the router has checked the
/// tenant is in the caller's scope).
pub(super) fn responses(
    ctx: &Ctx,
    tenant: &TenantId,
    customer: Option<&str>,
    organic_only: bool,
    limit: u32,
) -> Response {
    let p = ctx.policies.current();
    let windows = attribution::windows_of(&p.brand);
    let query = attribution::Listing {
        customer,
        organic_only,
        limit: limit.clamp(1, MAX_RESPONSE_LINES) as usize,
    };
    ctx.stores
        .tenant(tenant)
        .and_then(|s| attribution::explain(&s, &windows, &query))
        .map(|list| Response::Responses(Box::new(list)))
        .unwrap_or_else(store_err)
}

/// The most lines one responses answer carries.
const MAX_RESPONSE_LINES: u32 = 10_000;

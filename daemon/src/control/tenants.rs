//! A dealer's data room as the console sees it: the listing (from the
//! central store's figures, opening no tenant's database), one tenant's
//! detail, its imports and its duplicate merges, one stored customer.

use touchpoint_common::protocol::{Identity, ParkedVehicle, Response, TenantDetail, TenantSummary};
use touchpoint_common::TenantId;

use super::reply::store_err;
use super::Ctx;
use crate::store::{StoreError, Stores};

/// How much history a `Tenant` reply carries.
const DETAIL_IMPORTS: usize = 20;
const DETAIL_ERRORS: usize = 100;
const DETAIL_MERGES: usize = 500;

fn summary(stores: &Stores, name: String, tenant: &TenantId) -> Result<TenantSummary, StoreError> {
    let s = stores.tenant(tenant)?;
    Ok(TenantSummary {
        id: tenant.clone(),
        name,
        stats: s.stats()?,
        opt_ins: s.opt_ins()?,
        last_import: s.imports(1)?.into_iter().next().map(Box::new),
        error: None,
    })
}

pub(super) fn list(ctx: &Ctx, who: &Identity) -> Response {
    let (stores, p) = (&ctx.stores, ctx.policies.current());
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

pub(super) fn detail(ctx: &Ctx, tenant: &TenantId) -> Response {
    let stores = &ctx.stores;
    let name = ctx
        .policies
        .current()
        .tenant(tenant)
        .map(|p| p.tenant.name.clone())
        .unwrap_or_default();
    let detail = (|| {
        let s = stores.tenant(tenant)?;
        let (parked, parked_list) = s.parked_vehicles(TenantDetail::MAX_PARKED)?;
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
                    let cut = r.warnings.len().saturating_sub(DETAIL_ERRORS);
                    r.warnings.truncate(DETAIL_ERRORS);
                    r.warnings_truncated += cut as u64;
                    r
                })
                .collect(),
            merges: s.merges(true)?.into_iter().take(DETAIL_MERGES).collect(),
            parked,
            parked_list: parked_list
                .into_iter()
                .map(|(vin, customer_no)| ParkedVehicle { vin, customer_no })
                .collect(),
        })
    })();
    detail.map(Response::Tenant).unwrap_or_else(store_err)
}

pub(super) fn imports(ctx: &Ctx, tenant: &TenantId, limit: u32) -> Response {
    ctx.stores
        .tenant(tenant)
        .and_then(|s| s.imports(limit.min(10_000) as usize))
        .map(Response::Imports)
        .unwrap_or_else(store_err)
}

pub(super) fn merges(ctx: &Ctx, tenant: &TenantId, include_undone: bool) -> Response {
    ctx.stores
        .tenant(tenant)
        .and_then(|s| s.merges(include_undone))
        .map(Response::Merges)
        .unwrap_or_else(store_err)
}

pub(super) fn undo_merge(ctx: &Ctx, who: &Identity, tenant: &TenantId, merge_id: u64) -> Response {
    ctx.stores
        .tenant(tenant)
        .and_then(|s| s.undo_merge(merge_id, &who.user))
        .map(Response::MergeUndone)
        .unwrap_or_else(store_err)
}

pub(super) fn customer(ctx: &Ctx, tenant: &TenantId, no: &str) -> Response {
    let found = ctx
        .stores
        .tenant(tenant)
        .and_then(|s| crate::customer::detail(&s, tenant, no));
    match found {
        Ok(Some(d)) => Response::Customer(Box::new(d)),
        // The number is the caller's, checked against limits; shown quoted.
        Ok(None) => store_err(StoreError::NotFound(format!(
            "tenant {tenant} has no customer {no:?}"
        ))),
        Err(e) => store_err(e),
    }
}

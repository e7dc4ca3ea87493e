//! Messages as the console reads them: a page of the queue, one message
//! whole, its content as it was (or will be) sent; and the ledger.

use touchpoint_common::protocol::{ErrorKind, Identity, QueueFilter, Response};
use touchpoint_common::queue::unknown_value;
use touchpoint_common::TenantId;

use super::planning::in_scope;
use super::reply::{err, store_err};
use super::Ctx;

pub(super) fn queue(
    ctx: &Ctx,
    who: &Identity,
    filter: QueueFilter,
    offset: u64,
    limit: u32,
) -> Response {
    let p = ctx.policies.current();
    let in_scope = crate::overview::tenants_in_scope(&p, &who.scope);
    // The values whose set is known here; a suggestion names only tenants
    // the caller may see (the scope check let only those through anyway).
    for t in &filter.tenants {
        if p.tenant(t).is_none() {
            let known = in_scope.iter().map(|t| t.as_str());
            return err(
                ErrorKind::NotFound,
                format!(
                    "`tenant:{t}`: {}",
                    unknown_value("tenant", t.as_str(), known)
                ),
            );
        }
    }
    for s in &filter.services {
        if !p.brand.services.contains_key(s) {
            let known = p.brand.services.keys().map(|s| s.as_str());
            return err(
                ErrorKind::Invalid,
                format!("`service:{s}`: {}", unknown_value("service", s, known)),
            );
        }
    }
    let tenants = if filter.tenants.is_empty() {
        in_scope
    } else {
        let mut list = filter.tenants.clone();
        list.sort();
        list
    };
    crate::queue::page(&ctx.stores, &tenants, &filter, offset, limit)
        .map(|page| Response::Queue(Box::new(page)))
        .unwrap_or_else(store_err)
}

pub(super) fn message(ctx: &Ctx, tenant: &TenantId, id: u64) -> Response {
    match ctx.stores.tenant(tenant).and_then(|s| s.message(id)) {
        Ok(Some(m)) => Response::Message(Box::new(m)),
        Ok(None) => err(
            ErrorKind::NotFound,
            format!("tenant {tenant} has no message {id}"),
        ),
        Err(e) => store_err(e),
    }
}

pub(super) fn content(ctx: &Ctx, tenant: &TenantId, id: u64) -> Response {
    let one_click = ctx.dispatch.as_ref().and_then(|d| d.one_click_base());
    match crate::content::content(&ctx.stores, &ctx.policies.current(), tenant, id, one_click) {
        Ok(c) => Response::Content(Box::new(c)),
        Err(crate::content::ContentError::Store(e)) => store_err(e),
        Err(crate::content::ContentError::NotFound(e)) => err(ErrorKind::NotFound, e),
        Err(e) => err(ErrorKind::Invalid, e.to_string()),
    }
}

pub(super) fn costs(
    ctx: &Ctx,
    who: &Identity,
    tenant: Option<TenantId>,
    month: Option<u32>,
) -> Response {
    let p = ctx.policies.current();
    let tenants = in_scope(&p, who, tenant);
    crate::ledger::costs(&ctx.stores, &p, &tenants, month)
        .map(Response::Costs)
        .unwrap_or_else(store_err)
}

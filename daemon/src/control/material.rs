//! Brand material and its approvals (M6) on request: proposals, their
//! diffs and previews, four-eyes decisions, template histories. A decision
//! is in force at once: rendered messages are rendered again and an
//! approved brand file reloads the policies.

use touchpoint_common::protocol::{ErrorKind, Identity, Response};
use touchpoint_common::TenantId;

use super::reply::{err, store_err};
use super::Ctx;
use crate::access;
use crate::approvals::{preview, ApprovalError, Material};

fn failed(e: ApprovalError) -> Response {
    err(e.kind(), e.to_string())
}

fn detail(m: &Material, id: u64) -> Response {
    m.detail(id)
        .map(|d| Response::Proposal(Box::new(d)))
        .unwrap_or_else(failed)
}

pub(super) fn propose(
    ctx: &Ctx,
    who: &Identity,
    template: &str,
    text: &str,
    comment: &str,
) -> Response {
    let p = ctx.policies.current();
    match ctx
        .material
        .propose(template, text, comment, &who.user, who.uid, &p.brand)
    {
        Ok(prop) => detail(&ctx.material, prop.id),
        Err(e) => failed(e),
    }
}

pub(super) fn propose_rollback(
    ctx: &Ctx,
    who: &Identity,
    template: &str,
    version: u32,
    comment: &str,
) -> Response {
    let p = ctx.policies.current();
    match ctx
        .material
        .propose_rollback(template, version, comment, &who.user, who.uid, &p.brand)
    {
        Ok(prop) => detail(&ctx.material, prop.id),
        Err(e) => failed(e),
    }
}

/// Proposals the caller's scope may see (other dealers' slots left out).
pub(super) fn proposals(ctx: &Ctx, who: &Identity, all: bool) -> Response {
    ctx.material
        .proposals(all)
        .map(|mut list| {
            list.retain(|p| access::material_in_scope(&who.scope, &p.template, false).is_ok());
            Response::Proposals(list)
        })
        .unwrap_or_else(failed)
}

pub(super) fn proposal(ctx: &Ctx, id: u64) -> Response {
    detail(&ctx.material, id)
}

pub(super) fn preview(ctx: &Ctx, id: u64, tenant: &TenantId, customer: Option<&str>) -> Response {
    let t = match ctx.material.proposed_template(id) {
        Ok(t) => t,
        Err(e) => return failed(e),
    };
    let p = ctx.policies.current();
    match preview::preview(&ctx.stores, &p, id, &t, tenant, customer) {
        Ok(pv) => Response::Preview(Box::new(pv)),
        Err(preview::PreviewError::Store(e)) => store_err(e),
        Err(preview::PreviewError::NotFound(e)) => err(ErrorKind::NotFound, e),
        Err(e) => err(ErrorKind::Invalid, e.to_string()),
    }
}

pub(super) fn approve(ctx: &Ctx, who: &Identity, id: u64, comment: &str) -> Response {
    let m = &ctx.material;
    let v = match m.approve(id, &who.user, who.uid, comment) {
        Ok(v) => v,
        Err(e) => return failed(e),
    };
    let Ok(prop) = m.detail(id) else {
        return detail(m, id);
    };
    // In force at once: planned messages already rendered with the old
    // version are rendered again; sent ones keep theirs.
    if let Some(d) = &ctx.dispatch {
        let line = format!("proposal #{id} approved by {}", who.user);
        let rerendered = match access::material_owner(&prop.proposal.template) {
            access::MaterialOwner::Tenant(tenant) => d.rerender_tenant_slots(&tenant, &line),
            access::MaterialOwner::Everyone | access::MaterialOwner::Nobody => {
                d.rerender(&prop.proposal.template, &line)
            }
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
    if crate::approvals::brand::is_brand(&prop.proposal.template) {
        // The approved brand text is in force from the next load of the
        // policies: load them now, as SIGHUP does.
        match ctx.policies.reload_if_changed(|_| Ok(())) {
            Ok(_) => tracing::info!(version = v.version, "brand approved; policies reloaded"),
            Err(errs) => {
                for e in &errs {
                    tracing::warn!("{e}");
                }
            }
        }
    }
    Response::Proposal(Box::new(prop))
}

pub(super) fn reject(ctx: &Ctx, who: &Identity, id: u64, comment: &str) -> Response {
    match ctx.material.reject(id, &who.user, who.uid, comment) {
        Ok(_) => detail(&ctx.material, id),
        Err(e) => failed(e),
    }
}

/// Template histories the caller's scope may see.
pub(super) fn templates(ctx: &Ctx, who: &Identity, name: Option<&str>) -> Response {
    ctx.material
        .history(name)
        .map(|mut list| {
            list.retain(|t| access::material_in_scope(&who.scope, &t.name, false).is_ok());
            Response::Templates(list)
        })
        .unwrap_or_else(failed)
}

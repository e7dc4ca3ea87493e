//! Requests of a data subject's rights (`crate::erasure`): erase a
//! customer, let an erased one back in on a new legal basis, record an
//! objection, export a customer whole, erase a dealer. Routing and
//! answers only.

use touchpoint_common::protocol::{CustomerExport, ErrorKind, Identity, Response, RightsDone};
use touchpoint_common::TenantId;

use super::reply::{err, store_err};
use super::Ctx;
use crate::erasure::ErasureError;

fn erasure_err(e: ErasureError) -> Response {
    match e {
        ErasureError::Store(e) => store_err(e),
        ErasureError::NotFound(m) => err(ErrorKind::NotFound, m),
        ErasureError::Refused(m) => err(ErrorKind::Busy, m),
        ErasureError::Setup(m) => err(ErrorKind::Internal, m),
    }
}

pub(super) fn erase(ctx: &Ctx, tenant: &TenantId, customer: &str) -> Response {
    match ctx.erasure.erase(tenant, customer) {
        Ok(r) => Response::Rights(RightsDone {
            tenant: tenant.clone(),
            pseudonym: Some(r.pseudonym),
            done: vec![
                ("customer numbers erased".into(), r.erased.customers),
                ("vehicles erased".into(), r.erased.vehicles),
                ("consents erased".into(), r.erased.consents),
                ("visits erased".into(), r.erased.visits),
                ("responses erased".into(), r.erased.responses),
                ("merges erased".into(), r.erased.merges),
                ("import findings scrubbed".into(), r.erased.findings),
                ("messages cancelled".into(), r.cancelled),
                ("messages pseudonymised".into(), r.pseudonymised),
                ("spooled emails removed".into(), r.spooled),
                (
                    "letter and call files rewritten".into(),
                    r.outputs_rewritten,
                ),
                ("letter and call files removed".into(), r.outputs_removed),
                (
                    "imported files in the inbox's archive removed".into(),
                    r.archived_removed,
                ),
                (
                    "audit lines naming them pseudonymised".into(),
                    r.audit_lines,
                ),
                ("suppression entries".into(), r.suppressed),
                ("store rewritten".into(), 1),
            ],
        }),
        Err(e) => erasure_err(e),
    }
}

pub(super) fn reinstate(ctx: &Ctx, tenant: &TenantId, customer: &str) -> Response {
    match ctx.erasure.reinstate(tenant, customer) {
        Ok((pseudonym, n)) => Response::Rights(RightsDone {
            tenant: tenant.clone(),
            pseudonym: Some(pseudonym),
            done: vec![("suppression entries lifted".into(), n)],
        }),
        Err(e) => erasure_err(e),
    }
}

pub(super) fn object(
    ctx: &Ctx,
    who: &Identity,
    tenant: &TenantId,
    customer: &str,
    reason: &str,
    lift: bool,
) -> Response {
    match ctx
        .erasure
        .object(tenant, customer, &who.user, reason, lift)
    {
        Ok(()) => Response::Rights(RightsDone {
            tenant: tenant.clone(),
            pseudonym: None,
            done: vec![(
                if lift {
                    "objections lifted"
                } else {
                    "objections recorded"
                }
                .into(),
                1,
            )],
        }),
        Err(e) => erasure_err(e),
    }
}

pub(super) fn export(ctx: &Ctx, tenant: &TenantId, customer: &str) -> Response {
    match ctx.erasure.export(tenant, customer) {
        Ok(x) => Response::CustomerExport(Box::<CustomerExport>::new(x)),
        Err(e) => erasure_err(e),
    }
}

pub(super) fn erase_tenant(ctx: &Ctx, tenant: &TenantId, archive: Option<&str>) -> Response {
    if ctx.policies.current().tenant(tenant).is_some() {
        return err(
            ErrorKind::Invalid,
            format!(
                "a dealer policy still registers tenant {tenant}: remove its file from policies/dealers/ first (the reload stops its planning and dispatch)"
            ),
        );
    }
    match ctx
        .erasure
        .erase_tenant(tenant, archive.map(std::path::Path::new))
    {
        Ok(r) => Response::Rights(RightsDone {
            tenant: tenant.clone(),
            pseudonym: None,
            done: vec![
                ("customers archived".into(), r.archived),
                ("store removed".into(), 1),
                ("brand material records removed (slots)".into(), r.material),
                ("folders removed".into(), r.folders),
            ],
        }),
        Err(e) => erasure_err(e),
    }
}

//! Every request passes the same three checks, in this order, then goes to
//! exactly one handler:
//!
//! 1. the role may make the request at all (`Role::allows`, shared with the
//!    console);
//! 2. every text it carries is within `common::limits`;
//! 3. it reaches nothing outside the caller's tenant scope
//!    (`access::check_scope`, whose `reach` names every request).
//!
//! The match below has one arm per request and no catch-all: a new
//! request does not compile until it is routed. State-changing requests
//! are audited from their typed answer ([`audit::Audited::of`]).

use std::sync::Arc;

use touchpoint_common::protocol::{ErrorKind, Identity, Request, Response};

use super::audit::{self, Audited};
use super::reply::err;
use super::upload::{self, Upload};
use super::{
    backup, dispatch, learning, material, outbox, planning, results, rights, status, tenants, Ctx,
};
use crate::access::{self, Reach};

/// What the session does with a request. Moved once per request, so the
/// size of a `Response` inline costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub(super) enum Routed {
    Reply(Response),
    /// Not answered one by one (upload chunks).
    NoReply,
    /// The connection becomes a change feed.
    Feed,
}

pub(super) async fn route(
    ctx: &Arc<Ctx>,
    who: &Identity,
    request: Request,
    upload: &mut Option<Upload>,
) -> Routed {
    if let Err(reply) = authorize(ctx, who, &request).await {
        return Routed::Reply(reply);
    }
    let audited = Audited::of(&request);
    let reply = match request {
        Request::Ping => Response::Pong,
        Request::Subscribe => return Routed::Feed,
        Request::UploadBegin {
            tenant,
            file_name,
            size,
        } => upload::begin(ctx, who, tenant, file_name, size, upload).await,
        Request::UploadChunk { data } => {
            upload::chunk(ctx, data, upload).await;
            return Routed::NoReply;
        }
        Request::UploadEnd => upload::end(ctx, who, upload).await,
        Request::UploadAbort => upload::abort(upload).await,
        Request::Status => blocking(ctx, who, status::status).await,
        Request::Overview { day } => {
            blocking(ctx, who, move |c, w| status::overview(c, w, day)).await
        }
        Request::ListTenants => blocking(ctx, who, tenants::list).await,
        Request::Tenant { tenant } => {
            blocking(ctx, who, move |c, _| tenants::detail(c, &tenant)).await
        }
        Request::Imports { tenant, limit } => {
            blocking(ctx, who, move |c, _| tenants::imports(c, &tenant, limit)).await
        }
        Request::Merges {
            tenant,
            include_undone,
        } => {
            blocking(ctx, who, move |c, _| {
                tenants::merges(c, &tenant, include_undone)
            })
            .await
        }
        Request::UndoMerge { tenant, merge_id } => {
            blocking(ctx, who, move |c, w| {
                tenants::undo_merge(c, w, &tenant, merge_id)
            })
            .await
        }
        Request::Audit {
            tenant,
            limit,
            text,
        } => {
            blocking(ctx, who, move |c, w| {
                audit::search(&c.stores, w, tenant.as_ref(), limit, &text)
            })
            .await
        }
        Request::Plan {
            tenant,
            day,
            dry_run,
            policies,
            show,
        } => {
            blocking(ctx, who, move |c, w| {
                planning::plan(
                    c,
                    w,
                    planning::Plan {
                        tenant,
                        day,
                        dry_run,
                        candidate: policies,
                        show,
                    },
                )
            })
            .await
        }
        Request::Costs { tenant, month } => {
            blocking(ctx, who, move |c, w| outbox::costs(c, w, tenant, month)).await
        }
        Request::Queue {
            filter,
            offset,
            limit,
        } => {
            blocking(ctx, who, move |c, w| {
                outbox::queue(c, w, filter, offset, limit)
            })
            .await
        }
        Request::Message { tenant, id } => {
            blocking(ctx, who, move |c, _| outbox::message(c, &tenant, id)).await
        }
        Request::Content { tenant, id } => {
            blocking(ctx, who, move |c, _| outbox::content(c, &tenant, id)).await
        }
        Request::DispatchStatus => blocking(ctx, who, dispatch::status).await,
        Request::Pause { scope } => {
            blocking(ctx, who, move |c, w| dispatch::pause(c, w, scope)).await
        }
        Request::Resume { scope } => {
            blocking(ctx, who, move |c, w| dispatch::resume(c, w, scope)).await
        }
        Request::RunBatches { tenant } => {
            blocking(ctx, who, move |c, w| dispatch::run_batches(c, w, tenant)).await
        }
        Request::MessageAction {
            tenant,
            ids,
            action,
        } => {
            blocking(ctx, who, move |c, w| {
                dispatch::act(c, w, &tenant, &ids, action)
            })
            .await
        }
        Request::CallOutcomes { file_name, data } => {
            blocking(ctx, who, move |c, w| {
                dispatch::call_outcomes(c, w, &file_name, &data)
            })
            .await
        }
        Request::Propose {
            template,
            text,
            comment,
        } => {
            blocking(ctx, who, move |c, w| {
                material::propose(c, w, &template, &text, &comment)
            })
            .await
        }
        Request::ProposeRollback {
            template,
            version,
            comment,
        } => {
            blocking(ctx, who, move |c, w| {
                material::propose_rollback(c, w, &template, version, &comment)
            })
            .await
        }
        Request::Proposals { all } => {
            blocking(ctx, who, move |c, w| material::proposals(c, w, all)).await
        }
        Request::Proposal { id } => blocking(ctx, who, move |c, _| material::proposal(c, id)).await,
        Request::Preview {
            id,
            tenant,
            customer,
        } => {
            blocking(ctx, who, move |c, _| {
                material::preview(c, id, &tenant, customer.as_deref())
            })
            .await
        }
        Request::Approve { id, comment } => {
            blocking(ctx, who, move |c, w| material::approve(c, w, id, &comment)).await
        }
        Request::Reject { id, comment } => {
            blocking(ctx, who, move |c, w| material::reject(c, w, id, &comment)).await
        }
        Request::Templates { name } => {
            blocking(ctx, who, move |c, w| {
                material::templates(c, w, name.as_deref())
            })
            .await
        }
        Request::Report { query } => {
            blocking(ctx, who, move |c, w| results::report(c, w, query)).await
        }
        Request::Responses {
            tenant,
            customer,
            organic_only,
            limit,
        } => {
            blocking(ctx, who, move |c, _| {
                results::responses(c, &tenant, customer.as_deref(), organic_only, limit)
            })
            .await
        }
        Request::Learning { service } => {
            blocking(ctx, who, move |c, _| learning::learning(c, service)).await
        }
        Request::LearningAction { service, action } => {
            blocking(ctx, who, move |c, _| learning::action(c, service, action)).await
        }
        Request::Customer { tenant, customer } => {
            blocking(ctx, who, move |c, _| {
                tenants::customer(c, &tenant, &customer)
            })
            .await
        }
        Request::Erase {
            tenant, customer, ..
        } => blocking(ctx, who, move |c, _| rights::erase(c, &tenant, &customer)).await,
        Request::Reinstate {
            tenant, customer, ..
        } => {
            blocking(ctx, who, move |c, _| {
                rights::reinstate(c, &tenant, &customer)
            })
            .await
        }
        Request::Object {
            tenant,
            customer,
            reason,
            lift,
        } => {
            blocking(ctx, who, move |c, w| {
                rights::object(c, w, &tenant, &customer, &reason, lift)
            })
            .await
        }
        Request::ExportCustomer { tenant, customer } => {
            blocking(ctx, who, move |c, _| rights::export(c, &tenant, &customer)).await
        }
        Request::EraseTenant { tenant, archive } => {
            blocking(ctx, who, move |c, _| {
                rights::erase_tenant(c, &tenant, archive.as_deref())
            })
            .await
        }
        Request::Backup { dir, keep } => {
            blocking(ctx, who, move |c, _| backup::write(c, &dir, keep)).await
        }
        Request::VerifyBackup { dir } => blocking(ctx, who, move |_, _| backup::verify(&dir)).await,
        Request::RetentionRun => {
            blocking(ctx, who, |c, w| {
                Response::Retention(c.retention.run(&w.user))
            })
            .await
        }
    };
    if let Some(what) = audited {
        audit::answered(ctx, who, what, &reply);
    }
    Routed::Reply(reply)
}

/// The three checks; a refusal is audited and answered.
async fn authorize(ctx: &Arc<Ctx>, who: &Identity, request: &Request) -> Result<(), Response> {
    let tenant = access::tenant_of(request);
    if !who.role.allows(request) {
        let reason = format!("role {} may not {}", who.role, request.name());
        ctx.refusals.request(ctx, who, request, tenant, &reason);
        return Err(err(ErrorKind::Forbidden, reason));
    }
    if let Err(e) = request.check_limits() {
        return Err(err(ErrorKind::Invalid, e.to_string()));
    }
    // A proposal's material is read from the central store: off the reactor.
    let material = match access::reach(request) {
        Reach::Proposal { id, .. }
            if !matches!(who.scope, touchpoint_common::protocol::Scope::All) =>
        {
            let m = ctx.material.clone();
            tokio::task::spawn_blocking(move || m.proposal(id).ok().map(|p| p.template))
                .await
                .ok()
                .flatten()
        }
        _ => None,
    };
    match access::check_scope(&who.scope, request, |_| material) {
        Ok(()) => Ok(()),
        Err(out) => {
            ctx.refusals
                .request(ctx, who, request, out.tenant.or(tenant), &out.reason);
            Err(err(ErrorKind::Forbidden, out.reason))
        }
    }
}

/// Runs a handler on the blocking pool: store reads and writes block.
async fn blocking<F>(ctx: &Arc<Ctx>, who: &Identity, f: F) -> Response
where
    F: FnOnce(&Ctx, &Identity) -> Response + Send + 'static,
{
    let (ctx, who) = (ctx.clone(), who.clone());
    tokio::task::spawn_blocking(move || f(&ctx, &who))
        .await
        .unwrap_or_else(|e| err(ErrorKind::Internal, format!("handler failed: {e}")))
}

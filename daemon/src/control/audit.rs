//! The audit trail of the control socket (M11): every state-changing
//! request and every refusal, with who and when. What a line says comes
//! from the typed request (what was asked, about which tenant) and its
//! typed answer (what happened: done, partly, failed, refused); no list of
//! action names to keep in step by hand. [`search`] answers `Audit`.

use std::collections::HashMap;

use touchpoint_common::domain::Timestamp;
use touchpoint_common::protocol::{
    AuditEntry, AuditOutcome, Identity, ProposalStatus, Request, Response, Role, Scope,
};
use touchpoint_common::TenantId;

use super::reply::store_err;
use super::Ctx;
use crate::access;
use crate::store::Stores;

/// What a state-changing request is about, taken before it is handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Audited {
    pub(super) action: &'static str,
    pub(super) tenant: Option<TenantId>,
    /// What the line names when the answer says nothing more (a file).
    pub(super) subject: String,
    /// The customer number an erasure or reinstatement names: the line
    /// says their pseudonym instead, wherever the number would stand (the
    /// why, an error), so that no audit line keeps it in clear.
    pub(super) person: Option<String>,
}

impl Audited {
    /// An import of `file` through the socket, once its upload ends.
    pub(super) fn import(tenant: &TenantId, file: &str) -> Self {
        Self {
            action: "import",
            tenant: Some(tenant.clone()),
            subject: file.to_string(),
            person: None,
        }
    }

    /// The audit line a request gets when it is handled; `None` for a
    /// request that changes nothing. No wildcard: a new request says here
    /// whether it changes state.
    pub(super) fn of(request: &Request) -> Option<Self> {
        let changes = match request {
            Request::Ping
            | Request::Status
            | Request::ListTenants
            | Request::Tenant { .. }
            | Request::Imports { .. }
            | Request::Merges { .. }
            | Request::Audit { .. }
            | Request::Plan { dry_run: true, .. }
            | Request::DispatchStatus
            | Request::Costs { .. }
            | Request::Message { .. }
            | Request::Proposals { .. }
            | Request::Proposal { .. }
            | Request::Preview { .. }
            | Request::Templates { .. }
            | Request::Queue { .. }
            | Request::Content { .. }
            | Request::Overview { .. }
            | Request::Responses { .. }
            | Request::Customer { .. }
            | Request::Subscribe => false,
            // Who read a person's data whole, and when, is kept.
            Request::ExportCustomer { .. } => true,
            Request::Erase { .. }
            | Request::Reinstate { .. }
            | Request::Object { .. }
            | Request::EraseTenant { .. }
            | Request::RetentionRun => true,
            // A copy of every dealer's data written: who, when, where.
            Request::Backup { .. } => true,
            // Hashes and counts read, nothing of a person shown.
            Request::VerifyBackup { .. } => false,
            // Reading the pooled report is the brand's access to every
            // dealer's figures: who read which, when, is kept.
            Request::Report { query } => query.pooled,
            // What is learned is pooled figures too: every read is kept.
            Request::Learning { .. } => true,
            // The import is audited when the upload ends, with its file
            // ([`Audited::import`]); the chunks change nothing yet.
            Request::UploadBegin { .. }
            | Request::UploadChunk { .. }
            | Request::UploadEnd
            | Request::UploadAbort => false,
            Request::Plan { .. }
            | Request::UndoMerge { .. }
            | Request::Pause { .. }
            | Request::Resume { .. }
            | Request::RunBatches { .. }
            | Request::MessageAction { .. }
            | Request::CallOutcomes { .. }
            | Request::Propose { .. }
            | Request::ProposeRollback { .. }
            | Request::Approve { .. }
            | Request::Reject { .. }
            | Request::LearningAction { .. } => true,
        };
        // The why of a data subject's rights goes with the line; the person
        // only by the answer's pseudonym (an erased customer's number is
        // not kept).
        let subject = match request {
            Request::Erase { reason, .. } | Request::Object { reason, .. } => {
                format!("why: {reason}")
            }
            Request::Reinstate { basis, .. } => format!("new legal basis: {basis}"),
            Request::ExportCustomer { customer, .. } => format!("customer {customer}"),
            Request::Backup { dir, .. } => format!("into {dir}"),
            Request::EraseTenant { archive, .. } => match archive {
                Some(a) => format!("archive: {a}"),
                None => "no archive".into(),
            },
            _ => String::new(),
        };
        let person = match request {
            Request::Erase { customer, .. } | Request::Reinstate { customer, .. } => {
                Some(customer.trim().to_string())
            }
            _ => None,
        };
        changes.then(|| Self {
            action: request.name(),
            tenant: access::tenant_of(request),
            subject,
            person,
        })
    }
}

/// Characters of an audit line's detail, and of its outcome's reason.
/// What they quote from outside is bounded where it entered; this bounds
/// the line whatever an answer holds (an error about a file, a row).
const AUDIT_TEXT_CHARS: usize = 2 * touchpoint_common::limits::COMMENT_CHARS;

/// Writes one audit entry. A failure to write is logged; it does not undo
/// what was done.
fn record(ctx: &Ctx, who: &Identity, what: &Audited, detail: String, outcome: AuditOutcome) {
    let cut = |text| touchpoint_common::limits::outside_owned(text, AUDIT_TEXT_CHARS);
    let (detail, outcome) = (
        cut(detail),
        match outcome {
            AuditOutcome::Ok => AuditOutcome::Ok,
            AuditOutcome::Refused(r) => AuditOutcome::Refused(cut(r)),
            AuditOutcome::Failed(r) => AuditOutcome::Failed(cut(r)),
            AuditOutcome::Partial(r) => AuditOutcome::Partial(cut(r)),
        },
    );
    let entry = AuditEntry {
        seq: 0,
        // Audit lines carry wall time, whatever the clock's start.
        at: Timestamp::wall(),
        uid: who.uid,
        user: who.user.clone(),
        role: Some(who.role),
        action: what.action.to_string(),
        tenant: what.tenant.clone(),
        detail,
        outcome,
    };
    if let Err(e) = ctx.stores.central().audit(entry) {
        tracing::error!(error = %e, action = what.action, "cannot write the audit log");
    }
}

/// Refusals, audited without letting anyone grow the log at will: the
/// first refusal of a kind (same uid, action, tenant and reason) within a
/// minute is written at once, the further ones are counted and written as
/// one line when the minute is over.
#[derive(Default)]
pub(super) struct Refusals {
    windows: std::sync::Mutex<HashMap<RefusalKey, RefusalWindow>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct RefusalKey {
    uid: u32,
    action: &'static str,
    tenant: Option<TenantId>,
    reason: String,
}

struct RefusalWindow {
    /// The refused peer's name and role (none before it had an identity).
    user: String,
    role: Option<Role>,
    first: Timestamp,
    last: Timestamp,
    /// Refusals after the first, not written yet.
    more: u64,
}

/// One window per kind of refusal lasts this long (timestamps are in ms).
const REFUSAL_WINDOW_MS: i64 = 60_000;
/// Kinds counted at once; more and every window is written out early.
const REFUSAL_KINDS: usize = 1_024;

impl Refusals {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RefusalKey, RefusalWindow>> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A peer without access tried to connect.
    pub(super) fn connect(&self, ctx: &Ctx, uid: u32, reason: &str) {
        let key = RefusalKey {
            uid,
            action: "connect",
            tenant: None,
            reason: reason.to_string(),
        };
        self.note(ctx, key, format!("uid{uid}"), None, |at| {
            format!("1 connection refused at {at}")
        });
    }

    /// A request refused for its role, its limits or its scope.
    pub(super) fn request(
        &self,
        ctx: &Ctx,
        who: &Identity,
        request: &Request,
        tenant: Option<TenantId>,
        reason: &str,
    ) {
        let key = RefusalKey {
            uid: who.uid,
            action: request.name(),
            tenant,
            reason: reason.to_string(),
        };
        self.note(ctx, key, who.user.clone(), Some(who.role), |_| {
            String::new()
        });
    }

    fn note(
        &self,
        ctx: &Ctx,
        key: RefusalKey,
        user: String,
        role: Option<Role>,
        first_detail: impl FnOnce(Timestamp) -> String,
    ) {
        let now = Timestamp::wall();
        let (first, full) = {
            let mut w = self.lock();
            match w.get_mut(&key) {
                Some(win) => {
                    win.more += 1;
                    win.last = now;
                    (false, false)
                }
                None => {
                    w.insert(
                        key.clone(),
                        RefusalWindow {
                            user: user.clone(),
                            role,
                            first: now,
                            last: now,
                            more: 0,
                        },
                    );
                    (true, w.len() >= REFUSAL_KINDS)
                }
            }
        };
        if first {
            tracing::info!(uid = key.uid, action = key.action, reason = %key.reason, "refused (more of the same within a minute are counted)");
            write_refusal(ctx, &key, &user, role, first_detail(now));
        }
        if full {
            self.flush(ctx, true);
        }
    }

    /// Writes the count of the windows a minute old (of all with `all`).
    pub(super) fn flush(&self, ctx: &Ctx, all: bool) {
        let now = Timestamp::wall();
        let due: Vec<(RefusalKey, RefusalWindow)> = {
            let mut w = self.lock();
            let keys: Vec<RefusalKey> = w
                .iter()
                .filter(|(_, win)| all || now.0 - win.first.0 >= REFUSAL_WINDOW_MS)
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter()
                .filter_map(|k| w.remove(&k).map(|win| (k, win)))
                .collect()
        };
        for (key, win) in due.into_iter().filter(|(_, win)| win.more > 0) {
            let what = if key.action == "connect" {
                "connections"
            } else {
                "requests"
            };
            let detail = format!(
                "{} more {what} refused from {} to {}",
                win.more, win.first, win.last
            );
            write_refusal(ctx, &key, &win.user, win.role, detail);
        }
    }
}

fn write_refusal(ctx: &Ctx, key: &RefusalKey, user: &str, role: Option<Role>, detail: String) {
    let entry = AuditEntry {
        seq: 0,
        // Audit lines carry wall time, whatever the clock's start.
        at: Timestamp::wall(),
        uid: key.uid,
        user: user.to_string(),
        role,
        action: key.action.to_string(),
        tenant: key.tenant.clone(),
        detail,
        outcome: AuditOutcome::Refused(key.reason.clone()),
    };
    if let Err(e) = ctx.stores.central().audit(entry) {
        tracing::error!(error = %e, action = key.action, "cannot write the audit log");
    }
}

/// The audit line of a handled request, from its answer.
pub(super) fn answered(ctx: &Ctx, who: &Identity, mut what: Audited, reply: &Response) {
    let (outcome, detail) = outcome_of(reply);
    let detail = if detail.is_empty() {
        std::mem::take(&mut what.subject)
    } else if what.subject.is_empty() || !matches!(reply, Response::Rights(_)) {
        detail
    } else {
        format!("{detail}; {}", what.subject)
    };
    if what.tenant.is_none() {
        what.tenant = tenant_in(reply);
    }
    let (detail, outcome) = match (&what.person, &what.tenant) {
        (Some(no), Some(t)) if !no.is_empty() => {
            let p = ctx.erasure.pseudonym(t, no);
            let hide = |text: &str| crate::erasure::replace_number(text, no, &p);
            (hide(&detail), map_reason(outcome, hide))
        }
        _ => (detail, outcome),
    };
    record(ctx, who, &what, detail, outcome);
}

/// The outcome with its reason through `f`.
fn map_reason(o: AuditOutcome, f: impl Fn(&str) -> String) -> AuditOutcome {
    match o {
        AuditOutcome::Ok => AuditOutcome::Ok,
        AuditOutcome::Refused(r) => AuditOutcome::Refused(f(&r)),
        AuditOutcome::Failed(r) => AuditOutcome::Failed(f(&r)),
        AuditOutcome::Partial(r) => AuditOutcome::Partial(f(&r)),
    }
}

/// The tenant an answer shows the request was about, when the request
/// did not name it (a proposal's slots).
fn tenant_in(reply: &Response) -> Option<TenantId> {
    match reply {
        Response::Proposal(d) => match access::material_owner(&d.proposal.template) {
            access::MaterialOwner::Tenant(t) => Some(t),
            access::MaterialOwner::Everyone | access::MaterialOwner::Nobody => None,
        },
        _ => None,
    }
}

/// How many ids an audit line lists before it counts the rest.
const IDS_SHOWN: usize = 50;

/// What happened, and the line's detail, from the typed answer.
fn outcome_of(reply: &Response) -> (AuditOutcome, String) {
    match reply {
        Response::Error(e) => (AuditOutcome::Failed(e.message.clone()), String::new()),
        Response::Actions(results) => {
            let done: Vec<u64> = results
                .iter()
                .filter(|r| r.outcome.is_ok())
                .map(|r| r.id)
                .collect();
            let not: Vec<String> = results
                .iter()
                .filter_map(|r| {
                    r.outcome
                        .as_ref()
                        .err()
                        .map(|why| format!("#{}: {why}", r.id))
                })
                .collect();
            let detail = format!(
                "{} of {} messages: {}",
                done.len(),
                results.len(),
                ids(&done)
            );
            let outcome = match (done.is_empty(), not.is_empty()) {
                (_, true) => AuditOutcome::Ok,
                (true, false) => AuditOutcome::Failed(first(&not)),
                (false, false) => AuditOutcome::Partial(first(&not)),
            };
            (outcome, detail)
        }
        Response::Paused(p) => (AuditOutcome::Ok, format!("{} pauses in force", p.len())),
        Response::Batches(b) => (
            AuditOutcome::Ok,
            b.iter()
                .map(|b| format!("{} {}: {} messages", b.tenant, b.kind, b.messages))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Response::Outcomes(o) => {
            let detail = format!("{} applied, {} errors", o.applied, o.errors.len());
            let outcome = match (o.errors.is_empty(), o.applied + o.unchanged == 0) {
                (true, _) => AuditOutcome::Ok,
                (false, true) => AuditOutcome::Failed(first(&o.errors)),
                (false, false) => AuditOutcome::Partial(first(&o.errors)),
            };
            (outcome, detail)
        }
        Response::Planned(p) => {
            let detail = format!(
                "{} messages planned, {} cancelled, {} tenants",
                p.reports.iter().map(|r| r.planned_count).sum::<u64>(),
                p.reports.iter().map(|r| r.cancelled_count).sum::<u64>(),
                p.reports.len()
            );
            let not: Vec<String> = p
                .failed
                .iter()
                .map(|(t, why)| format!("{t}: {why}"))
                .collect();
            let outcome = match (not.is_empty(), p.reports.is_empty()) {
                (true, _) => AuditOutcome::Ok,
                (false, true) => AuditOutcome::Failed(first(&not)),
                (false, false) => AuditOutcome::Partial(first(&not)),
            };
            (outcome, detail)
        }
        Response::Imported(r) => AuditOutcome::of_import(r),
        Response::MergeUndone(m) => (
            AuditOutcome::Ok,
            format!("merge #{} ({} into {})", m.merge_id, m.merged, m.survivor),
        ),
        Response::Proposal(d) => {
            let p = &d.proposal;
            let what = match &p.status {
                ProposalStatus::Pending => format!(
                    "proposal #{} for template {} (base v{}{}): {}",
                    p.id,
                    p.template,
                    p.base_version,
                    p.rollback_to
                        .map(|v| format!(", back to v{v}"))
                        .unwrap_or_default(),
                    p.comment
                ),
                ProposalStatus::Approved {
                    version, comment, ..
                } => format!(
                    "proposal #{} by {}: template {} v{version} in force{}",
                    p.id,
                    p.author,
                    p.template,
                    if comment.is_empty() {
                        String::new()
                    } else {
                        format!(": {comment}")
                    }
                ),
                ProposalStatus::Rejected { comment, .. } => format!(
                    "proposal #{} by {} for template {} rejected: {comment}",
                    p.id, p.author, p.template
                ),
            };
            (AuditOutcome::Ok, what)
        }
        Response::Learning(state) => (
            AuditOutcome::Ok,
            format!(
                "learned version {}: {}",
                state.version,
                state
                    .services
                    .iter()
                    .map(|s| format!(
                        "{} {} lead {} days ({})",
                        s.service,
                        s.channel,
                        s.lead.value,
                        s.lead.source.as_str()
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ),
        Response::Retention(r) if !r.failed.is_empty() => {
            (AuditOutcome::Partial(r.failed.join("; ")), r.summary())
        }
        Response::Retention(r) => (AuditOutcome::Ok, r.summary()),
        Response::Rights(r) => (
            AuditOutcome::Ok,
            format!(
                "{}{}",
                r.pseudonym
                    .as_deref()
                    .map(|p| format!("{p}: "))
                    .unwrap_or_default(),
                r.done
                    .iter()
                    .map(|(what, n)| format!("{what} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        _ => (AuditOutcome::Ok, String::new()),
    }
}

fn first(reasons: &[String]) -> String {
    match reasons {
        [] => String::new(),
        [one] => one.clone(),
        [one, rest @ ..] => format!("{one} (and {} more)", rest.len()),
    }
}

fn ids(list: &[u64]) -> String {
    let mut s = list
        .iter()
        .take(IDS_SHOWN)
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    if list.len() > IDS_SHOWN {
        s.push_str(&format!(" and {} more", list.len() - IDS_SHOWN));
    }
    s
}

/// Audit entries looked at per request at most: a text that matches
/// little answers with what the newest entries hold.
const AUDIT_SCAN: usize = 200_000;

pub(super) fn search(
    stores: &Stores,
    who: &Identity,
    tenant: Option<&TenantId>,
    limit: u32,
    text: &str,
) -> Response {
    let limit = limit.clamp(1, 10_000) as usize;
    let needle = text.trim().to_lowercase();
    let visible = |e: &AuditEntry| match (&who.scope, &e.tenant) {
        (Scope::All, _) => true,
        (scope, Some(t)) => scope.allows(t),
        // Entries about no tenant: only one's own.
        (_, None) => e.uid == who.uid,
    };
    let matches = |e: &AuditEntry| {
        if needle.is_empty() {
            return true;
        }
        let outcome = e.outcome.describe();
        [
            e.user.as_str(),
            e.action.as_str(),
            e.tenant.as_ref().map_or("", |t| t.as_str()),
            e.detail.as_str(),
            outcome.as_str(),
        ]
        .iter()
        .any(|f| f.to_lowercase().contains(&needle))
    };
    match stores.central().audit_search(limit, AUDIT_SCAN, |e| {
        tenant.is_none_or(|t| e.tenant.as_ref() == Some(t)) && visible(e) && matches(e)
    }) {
        Ok(entries) => Response::Audit(entries),
        Err(e) => store_err(e),
    }
}

//! Audit lines of the HTTP endpoint. Every withdrawal is one line (who:
//! `one-click (http)`, the tenant, the message); refusals and repeated
//! unsubscribes are counted and written as one line a minute, so a flood
//! of forged links cannot flood the log.

use std::sync::Mutex;

use touchpoint_common::domain::Timestamp;
use touchpoint_common::protocol::{AuditEntry, AuditOutcome, NO_UID};
use touchpoint_common::TenantId;

use crate::store::Stores;

/// Who the audit log names for what came over HTTP.
pub(super) const WHO: &str = "one-click (http)";

/// What the endpoint turned away (or found nothing to do for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    NotFound,
    TooMany,
    TooLarge,
    BadBody,
    Busy,
    /// A valid POST for someone already unsubscribed.
    Repeated,
}

const KINDS: [(Refusal, &str); 6] = [
    (Refusal::NotFound, "not found"),
    (Refusal::TooMany, "too many requests"),
    (Refusal::TooLarge, "body too large"),
    (Refusal::BadBody, "not a one-click body"),
    (Refusal::Busy, "no free connection"),
    (Refusal::Repeated, "already unsubscribed"),
];

/// Per kind, how many since the window opened, and when it opened. The
/// first of a kind in a window is written at once, the rest counted and
/// written when the window closes (every minute, and at stop).
#[derive(Default)]
pub(super) struct Tally {
    counts: Mutex<[(u64, Option<Timestamp>); KINDS.len()]>,
}

impl Tally {
    /// Counts one; `true` if it is the first of its kind in this window
    /// (the caller writes it with [`refused`]).
    pub(super) fn count(&self, r: Refusal) -> bool {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let Some(i) = KINDS.iter().position(|(k, _)| *k == r) else {
            return false;
        };
        let (n, first) = &mut c[i];
        *n += 1;
        first.get_or_insert_with(Timestamp::wall);
        *n == 1
    }

    /// Closes the window: one line per kind seen more than once.
    pub(super) fn flush(&self, stores: &Stores) {
        let taken = std::mem::take(&mut *self.counts.lock().unwrap_or_else(|e| e.into_inner()));
        let now = Timestamp::wall();
        for ((kind, what), (n, first)) in KINDS.iter().zip(taken) {
            let Some(first) = first.filter(|_| n > 1) else {
                continue;
            };
            write(
                stores,
                ACTION,
                None,
                format!(
                    "{} more one-click requests: {what}, from {first} to {now}",
                    n - 1
                ),
                outcome(*kind, what),
            );
        }
    }
}

/// The action of every line about one-click requests not acted on.
const ACTION: &str = "one-click";

/// The line of the first refusal of its kind in a window.
pub(super) fn refused(stores: &Stores, r: Refusal) {
    let what = KINDS
        .iter()
        .find(|(k, _)| *k == r)
        .map_or("refused", |(_, w)| *w);
    write(
        stores,
        ACTION,
        None,
        format!("1 one-click request: {what} (more within a minute are counted)"),
        outcome(r, what),
    );
}

/// A repeat was answered 200 like the first: not a refusal.
fn outcome(r: Refusal, what: &str) -> AuditOutcome {
    match r {
        Refusal::Repeated => AuditOutcome::Ok,
        _ => AuditOutcome::Refused(what.into()),
    }
}

/// The line of one withdrawal.
pub(super) fn unsubscribed(stores: &Stores, tenant: &TenantId, id: u64) {
    write(
        stores,
        "unsubscribe",
        Some(tenant.clone()),
        format!("message #{id}: email consent withdrawn (RFC 8058 one-click)"),
        AuditOutcome::Ok,
    );
}

fn write(
    stores: &Stores,
    action: &str,
    tenant: Option<TenantId>,
    detail: String,
    outcome: AuditOutcome,
) {
    let entry = AuditEntry {
        seq: 0,
        // Audit lines carry wall time, whatever the clock's start.
        at: Timestamp::wall(),
        uid: NO_UID,
        user: WHO.into(),
        role: None,
        action: action.into(),
        tenant,
        detail,
        outcome,
    };
    if let Err(e) = stores.central().audit(entry) {
        tracing::error!(error = %e, action, "http: cannot write the audit log");
    }
}

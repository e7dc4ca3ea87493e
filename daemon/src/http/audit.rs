//! Audit lines of the HTTP endpoint. Every withdrawal is one line (who:
//! `one-click (http)`, the tenant, the message); refusals and repeated
//! unsubscribes are counted and written as one line a minute, so a flood
//! of forged links cannot flood the log.

use std::collections::HashMap;
use std::net::IpAddr;
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
    /// A click on a link clicked before (redirected like the first).
    ClickedAgain,
}

const KINDS: [(Refusal, &str); 7] = [
    (Refusal::NotFound, "not found"),
    (Refusal::TooMany, "too many requests"),
    (Refusal::TooLarge, "body too large"),
    (Refusal::BadBody, "not a one-click body"),
    (Refusal::Busy, "no free connection"),
    (Refusal::Repeated, "already unsubscribed"),
    (Refusal::ClickedAgain, "link clicked again"),
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

/// Addresses counted at once in a window; connections from further
/// addresses are counted together (a flood from very many addresses never
/// grows the map or the log).
const CROWDED_ADDRESSES: usize = 1_024;

/// Connections closed because their address held its share of the slots:
/// per address (its key: IPv4, or the IPv6 /64), how many since the
/// window opened; the first of an address is written at once, the rest
/// as one line per address when the window closes.
#[derive(Default)]
pub(super) struct Crowded {
    windows: Mutex<CrowdedWindows>,
}

#[derive(Default)]
struct CrowdedWindows {
    per_address: HashMap<IpAddr, (u64, Timestamp)>,
    /// From addresses past `CROWDED_ADDRESSES`: how many, since when.
    others: (u64, Option<Timestamp>),
}

impl Crowded {
    /// Counts one; `true` if it is the first of `key` in this window (the
    /// caller writes it with [`crowded`]).
    pub(super) fn count(&self, key: IpAddr) -> bool {
        let mut w = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let full = w.per_address.len() >= CROWDED_ADDRESSES;
        match w.per_address.get_mut(&key) {
            Some((n, _)) => {
                *n += 1;
                false
            }
            None if full => {
                w.others.0 += 1;
                w.others.1.get_or_insert_with(Timestamp::wall);
                false
            }
            None => {
                w.per_address.insert(key, (1, Timestamp::wall()));
                true
            }
        }
    }

    /// Closes the window: one line per address refused more than once.
    pub(super) fn flush(&self, stores: &Stores) {
        let taken = std::mem::take(&mut *self.windows.lock().unwrap_or_else(|e| e.into_inner()));
        let now = Timestamp::wall();
        let mut lines: Vec<(IpAddr, u64, Timestamp)> = taken
            .per_address
            .into_iter()
            .filter(|(_, (n, _))| *n > 1)
            .map(|(ip, (n, first))| (ip, n - 1, first))
            .collect();
        lines.sort_by_key(|(ip, _, _)| *ip);
        for (ip, more, first) in lines {
            write(
                stores,
                ACTION,
                None,
                format!(
                    "{more} more connections from {ip} closed: {CROWDED}, from {first} to {now}"
                ),
                AuditOutcome::Refused(CROWDED.into()),
            );
        }
        if let (n, Some(first)) = taken.others {
            write(
                stores,
                ACTION,
                None,
                format!("{n} connections from further addresses closed: {CROWDED}, from {first} to {now}"),
                AuditOutcome::Refused(CROWDED.into()),
            );
        }
    }
}

/// Why a connection from an address holding its share was closed.
const CROWDED: &str = "address holds max_connections_per_ip";

/// The line of the first connection from `key` closed in a window.
pub(super) fn crowded(stores: &Stores, key: IpAddr) {
    write(
        stores,
        ACTION,
        None,
        format!("1 connection from {key} closed: {CROWDED} (more within a minute are counted)"),
        AuditOutcome::Refused(CROWDED.into()),
    );
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

/// A repeat was answered like the first: not a refusal.
fn outcome(r: Refusal, what: &str) -> AuditOutcome {
    match r {
        Refusal::Repeated | Refusal::ClickedAgain => AuditOutcome::Ok,
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

/// The line of a link's first click: the tenant, the message, the link's
/// number; never its address (it may carry personal data) nor the client.
pub(super) fn clicked(stores: &Stores, tenant: &TenantId, id: u64, link: u32) {
    write(
        stores,
        "click",
        Some(tenant.clone()),
        format!("message #{id}: link {link} clicked (first click)"),
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

//! What dispatch shows of itself: the scoped [`Snapshot`] and the status
//! reply built from it and the scope's queues.

use std::sync::atomic::Ordering;

use touchpoint_common::domain::{Channel, Timestamp};
use touchpoint_common::protocol::{DispatchStatus, Scope, TenantQueue};
use touchpoint_common::TenantId;

use super::{today_local, Dispatcher, ErrorAbout};
use crate::dispatch::snapshot::{DaemonWide, Snapshot, Totals};

impl Dispatcher {
    /// What a caller with `scope` sees of dispatch: the queues of
    /// `tenants` (theirs), each with why it cannot be read if it cannot, and
    /// the rest as [`Dispatcher::snapshot`] cuts it. The queues come from
    /// each outbox's kept summary (`Stores::outbox_summary`): a tenant
    /// whose outbox was not written since is not opened again.
    pub fn status(&self, scope: &Scope, tenants: &[TenantId]) -> DispatchStatus {
        let today = today_local(Timestamp::now().0);
        let queues = tenants
            .iter()
            .map(|t| match self.stores.outbox_summary(t, today) {
                Ok(s) => TenantQueue {
                    tenant: t.clone(),
                    email: s.queued_on(Channel::Email),
                    post: s.queued_on(Channel::Post),
                    phone: s.queued_on(Channel::Phone),
                    in_flight: s.in_flight,
                    sent_today: s.sent_that_day,
                    error: None,
                },
                // A store that cannot be read is not an empty queue.
                Err(e) => TenantQueue {
                    tenant: t.clone(),
                    email: 0,
                    post: 0,
                    phone: 0,
                    in_flight: 0,
                    sent_today: 0,
                    error: Some(e.to_string()),
                },
            })
            .collect();
        self.snapshot(scope).into_status(queues)
    }

    /// Dispatch's state now, cut to what a caller with `scope` may see: of
    /// pauses, throttles and the last error only what names no other
    /// tenant, and what is only known over every tenant (the relay, counts,
    /// throughput, global and per-domain throttles) for a scope over every
    /// tenant only.
    pub fn snapshot(&self, scope: &Scope) -> Snapshot {
        let now = Timestamp::now().0;
        let all = matches!(scope, Scope::All);
        // Taken before the state lock, which dispatch holds on its hot path.
        let throughput = all.then(|| self.throughput.last_hour(now));
        let mut st = self.state();
        let last_error = match (&st.last_error_about, scope) {
            (_, Scope::All) => st.last_error.clone(),
            (ErrorAbout::Tenant(t), scope) if scope.allows(t) => st.last_error.clone(),
            _ => String::new(),
        };
        let throttles = st
            .throttles
            .status(now)
            .into_iter()
            .filter(|th| match th.name.strip_prefix("tenant ") {
                Some(t) => TenantId::new(t).is_ok_and(|t| scope.allows(&t)),
                None => all,
            })
            .collect();
        let daemon_wide = throughput.map(|throughput| {
            let c = &self.counters;
            DaemonWide {
                relay_down_until: st.relay_down_until.filter(|t| *t > now).map(Timestamp),
                sent_last_minute: st.throttles.sent_last_minute(now),
                totals: Totals {
                    sent: c.sent.load(Ordering::Relaxed),
                    deferred: c.deferred.load(Ordering::Relaxed),
                    failed: c.failed.load(Ordering::Relaxed),
                    fallbacks: c.fallbacks.load(Ordering::Relaxed),
                    resent_after_crash: c.resent.load(Ordering::Relaxed),
                    resent_after_cut: c.resent_cut.load(Ordering::Relaxed),
                    bounces: c.bounces.load(Ordering::Relaxed),
                    unsubscribes: c.unsubscribes.load(Ordering::Relaxed),
                    autoreplies: c.autoreplies.load(Ordering::Relaxed),
                    ignored: c.ignored.load(Ordering::Relaxed),
                },
                throughput,
            }
        });
        Snapshot {
            enabled: self.enabled,
            transport: self.transport_desc.clone(),
            paused: st
                .pauses
                .iter()
                .filter(|p| p.scope.tenant.as_ref().is_none_or(|t| scope.allows(t)))
                .cloned()
                .collect(),
            throttles,
            last_error,
            daemon_wide,
        }
    }
}

#[cfg(test)]
mod tests;

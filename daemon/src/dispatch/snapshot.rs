//! What dispatch shows of itself: a copy of its live state (pauses,
//! throttles, the relay, the last error, counters, throughput) taken at one
//! moment by [`super::Dispatcher::snapshot`] and cut to the scope of the
//! caller it is taken for. Read models (the overview, the dispatch status
//! request) read a snapshot, never the live dispatcher; a snapshot names no
//! tenant outside its scope and counts nothing of one, so whatever reads it
//! cannot leak one.
//!
//! What is only known over every tenant (the relay, counts since the
//! start, throughput, the global and per-domain throttles, whose domains
//! are other dealers' customers') is in a snapshot only for a scope over
//! every tenant ([`Snapshot::daemon_wide`]); for any other scope it is not
//! there at all, which the answers built from it say.
//!
//! Only dispatch makes one (its fields are private to `dispatch`).

use touchpoint_common::domain::Timestamp;
use touchpoint_common::protocol::{DispatchStatus, Pause, TenantQueue, ThrottleStatus};
use touchpoint_common::TenantId;

/// Dispatch's state at one moment, as one caller may see it.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub(super) enabled: bool,
    pub(super) transport: String,
    /// Pauses of every tenant (none named) and of the scope's tenants.
    pub(super) paused: Vec<Pause>,
    /// The scope's tenants' throttles; with `daemon_wide`, every throttle.
    pub(super) throttles: Vec<ThrottleStatus>,
    /// Empty unless it is about a tenant of the scope; with `daemon_wide`,
    /// whatever it is about.
    pub(super) last_error: String,
    /// Only for a scope over every tenant.
    pub(super) daemon_wide: Option<DaemonWide>,
}

/// What dispatch knows only over every tenant.
#[derive(Clone, Debug)]
pub(super) struct DaemonWide {
    pub relay_down_until: Option<Timestamp>,
    pub sent_last_minute: u64,
    pub totals: Totals,
    /// Messages handed to a transport per minute over the last hour, oldest
    /// first, the current minute last.
    pub throughput: Vec<u64>,
}

/// Counts since the daemon started, over every tenant.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Totals {
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
    pub fallbacks: u64,
    pub resent_after_crash: u64,
    pub resent_after_cut: u64,
    pub bounces: u64,
    pub unsubscribes: u64,
    pub autoreplies: u64,
    pub ignored: u64,
}

impl Snapshot {
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// How email goes out (`smtp relay host:port (...)`, `spool <dir>`).
    pub fn transport(&self) -> &str {
        &self.transport
    }

    pub fn paused(&self) -> &[Pause] {
        &self.paused
    }

    pub fn throttles(&self) -> &[ThrottleStatus] {
        &self.throttles
    }

    /// Whether it was taken for a scope over every tenant, and so holds
    /// what is only known over every tenant.
    pub fn daemon_wide(&self) -> bool {
        self.daemon_wide.is_some()
    }

    /// Until when email waits for the relay, if it could not be reached
    /// (`None` too when not [`Snapshot::daemon_wide`]).
    pub fn relay_down_until(&self) -> Option<Timestamp> {
        self.daemon_wide.as_ref().and_then(|w| w.relay_down_until)
    }

    pub fn last_error(&self) -> &str {
        &self.last_error
    }

    /// Messages handed to a transport per minute over the last hour, oldest
    /// first, the current minute last; `None` when not
    /// [`Snapshot::daemon_wide`].
    pub fn throughput(&self) -> Option<&[u64]> {
        self.daemon_wide.as_ref().map(|w| w.throughput.as_slice())
    }

    /// Whether a pause covers messages of `service` of `tenant` (a tenant
    /// of the scope: the pauses of others are not in the snapshot).
    pub fn is_paused(&self, tenant: &TenantId, service: &str) -> bool {
        self.paused.iter().any(|p| p.scope.covers(tenant, service))
    }

    /// The status the control socket reports, with the scope's `queues`.
    /// Without [`Snapshot::daemon_wide`], what is only known over every
    /// tenant is 0 and the answer says it is not shown.
    pub fn into_status(self, queues: Vec<TenantQueue>) -> DispatchStatus {
        let daemon_wide = self.daemon_wide.is_some();
        let (t, sent_last_minute, relay_down_until) = match self.daemon_wide {
            Some(w) => (w.totals, w.sent_last_minute, w.relay_down_until),
            None => (Totals::default(), 0, None),
        };
        DispatchStatus {
            enabled: self.enabled,
            transport: self.transport,
            paused: self.paused,
            throttles: self.throttles,
            queues,
            sent_last_minute,
            sent_total: t.sent,
            deferred_total: t.deferred,
            failed_total: t.failed,
            fallbacks_total: t.fallbacks,
            resent_after_crash: t.resent_after_crash,
            resent_after_cut: t.resent_after_cut,
            bounces_processed: t.bounces,
            relay_down_until,
            last_error: self.last_error,
            unsubscribes_processed: t.unsubscribes,
            autoreplies_processed: t.autoreplies,
            mails_ignored: t.ignored,
            daemon_wide,
        }
    }
}

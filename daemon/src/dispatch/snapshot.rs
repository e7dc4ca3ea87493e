//! What dispatch shows of itself: a copy of its live state (pauses,
//! throttles, the relay, the last error, counters, throughput) taken at one
//! moment by [`super::Dispatcher::snapshot`] and cut to the scope of the
//! caller it is taken for. Read models (the overview, the dispatch status
//! request) read a snapshot, never the live dispatcher; a snapshot names no
//! tenant outside its scope, so whatever reads it cannot leak one.
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
    /// Throttles that name no tenant, and the scope's tenants'.
    pub(super) throttles: Vec<ThrottleStatus>,
    pub(super) relay_down_until: Option<Timestamp>,
    /// Empty unless it is about the relay or a tenant of the scope.
    pub(super) last_error: String,
    pub(super) sent_last_minute: u64,
    pub(super) totals: Totals,
    /// Messages handed to a transport per minute over the last hour, oldest
    /// first, the current minute last.
    pub(super) throughput: Vec<u64>,
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

    /// Until when email waits for the relay, if it could not be reached.
    pub fn relay_down_until(&self) -> Option<Timestamp> {
        self.relay_down_until
    }

    pub fn last_error(&self) -> &str {
        &self.last_error
    }

    /// Messages handed to a transport per minute over the last hour, oldest
    /// first, the current minute last.
    pub fn throughput(&self) -> &[u64] {
        &self.throughput
    }

    /// Whether a pause covers messages of `service` of `tenant` (a tenant
    /// of the scope: the pauses of others are not in the snapshot).
    pub fn is_paused(&self, tenant: &TenantId, service: &str) -> bool {
        self.paused.iter().any(|p| p.scope.covers(tenant, service))
    }

    /// The status the control socket reports, with the scope's `queues`.
    pub fn into_status(self, queues: Vec<TenantQueue>) -> DispatchStatus {
        let t = self.totals;
        DispatchStatus {
            enabled: self.enabled,
            transport: self.transport,
            paused: self.paused,
            throttles: self.throttles,
            queues,
            sent_last_minute: self.sent_last_minute,
            sent_total: t.sent,
            deferred_total: t.deferred,
            failed_total: t.failed,
            fallbacks_total: t.fallbacks,
            resent_after_crash: t.resent_after_crash,
            resent_after_cut: t.resent_after_cut,
            bounces_processed: t.bounces,
            relay_down_until: self.relay_down_until,
            last_error: self.last_error,
            unsubscribes_processed: t.unsubscribes,
            autoreplies_processed: t.autoreplies,
            mails_ignored: t.ignored,
        }
    }
}

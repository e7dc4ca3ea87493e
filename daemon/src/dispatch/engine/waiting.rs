//! Emails checked whole and found allowed whose domain had no room: later
//! rounds leave such an email alone while that domain still has none,
//! before reading anything of it again (`claim.rs`). Behind a busy domain
//! a round may page through thousands of queued emails; reading each one's
//! message, recipient and consent every round took most of dispatch's time
//! (BENCHMARKS.md, "A backlog behind busy domains").
//!
//! What may change about a waiting email is found in time:
//! - the tenant's data (an import, a merge, a consent given or withdrawn,
//!   an undo) changes its data version, which forgets all its waiting
//!   emails: each is checked whole again in the next round;
//! - anything else (its status, a pause, the dealer's policy) is checked
//!   when the domain it waits for has room, before it may go;
//! - everything is forgotten when the day changes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use touchpoint_common::TenantId;

/// Waiting emails remembered at most, over all tenants; past it an email is
/// simply checked whole every round, as before.
const MAX_WAITING: usize = 1 << 20;

#[derive(Debug, Default)]
pub(super) struct Waiting {
    /// Per tenant: the data version the emails were checked against, and
    /// each email's domain.
    tenants: HashMap<TenantId, (u64, HashMap<u64, Arc<str>>)>,
    /// Domains held once, shared by their emails.
    domains: HashSet<Arc<str>>,
    len: usize,
}

impl Waiting {
    /// Forgets `tenant`'s waiting emails if its data changed since they
    /// were checked (`version`, [`crate::store::TenantStore::data_version`]).
    pub(super) fn data_is(&mut self, tenant: &TenantId, version: u64) {
        if let Some((v, emails)) = self.tenants.get_mut(tenant) {
            if *v != version {
                self.len -= emails.len();
                emails.clear();
                *v = version;
            }
        }
    }

    /// The domain email `id` of `tenant` waits for, if it waits.
    pub(super) fn domain(&self, tenant: &TenantId, id: u64) -> Option<&str> {
        self.tenants.get(tenant)?.1.get(&id).map(|d| &**d)
    }

    /// Notes that email `id`, checked against data `version`, waits for
    /// `domain`.
    pub(super) fn note(&mut self, tenant: &TenantId, version: u64, id: u64, domain: &str) {
        self.data_is(tenant, version);
        let domain = match self.domains.get(domain) {
            Some(d) => d.clone(),
            None if self.len >= MAX_WAITING => return,
            None => {
                let d: Arc<str> = domain.into();
                self.domains.insert(d.clone());
                d
            }
        };
        let (_, emails) = self
            .tenants
            .entry(tenant.clone())
            .or_insert_with(|| (version, HashMap::new()));
        match emails.get_mut(&id) {
            Some(d) => *d = domain,
            None if self.len >= MAX_WAITING => {}
            None => {
                emails.insert(id, domain);
                self.len += 1;
            }
        }
    }

    /// Email `id` of `tenant` waits no more (taken, or judged otherwise).
    pub(super) fn forget(&mut self, tenant: &TenantId, id: u64) {
        if let Some((_, emails)) = self.tenants.get_mut(tenant) {
            if emails.remove(&id).is_some() {
                self.len -= 1;
            }
        }
    }

    /// A new day: nothing is remembered.
    pub(super) fn clear(&mut self) {
        *self = Self::default();
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests;

//! The outbox index of a store closed as idle or to make room, kept for
//! listings without free text (`queue::page`): a listing over a thousand
//! tenants would otherwise open a thousand stores and build a thousand
//! indexes at every page, and only `max_open_tenants` stay open.
//!
//! An index is kept with the outbox's write count at the close and is the
//! store's while the count stays (the rule of `summary.rs`: every write of
//! a tenant's outbox is counted, and nothing but this daemon writes it). A
//! kept index is only read: a store opened again builds its own, so a kept
//! one can never be written on. Recipients' texts change without an
//! outbox write (an import), so a listing with free text always reads the
//! store. What is kept is bounded by [`BUDGET`] bytes: past it an index is
//! not kept, and its listing opens the store as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use touchpoint_common::TenantId;

use super::outbox::index::OutboxIndex;

/// Heap bytes of all kept indexes together at most (at about 50 bytes a
/// message: some five million messages).
pub(super) const BUDGET: usize = 256 << 20;

#[derive(Default)]
pub(super) struct KeptIndexes {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    /// Per tenant: the write count it is true at, and the index.
    by_tenant: HashMap<TenantId, (u64, Arc<OutboxIndex>)>,
    bytes: usize,
}

impl Kept {
    fn remove(&mut self, id: &TenantId) {
        if let Some((_, ix)) = self.by_tenant.remove(id) {
            self.bytes -= ix.heap_bytes();
        }
    }
}

impl KeptIndexes {
    fn lock(&self) -> MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The index kept for `id` if its outbox was not written since
    /// (`writes`); one that is behind is dropped.
    pub(super) fn get(&self, id: &TenantId, writes: u64) -> Option<Arc<OutboxIndex>> {
        let mut kept = self.lock();
        match kept.by_tenant.get(id) {
            Some((w, ix)) if *w == writes => Some(ix.clone()),
            Some(_) => {
                kept.remove(id);
                None
            }
            None => None,
        }
    }

    /// Keeps `index`, true at outbox write count `writes`, in place of any
    /// kept before; past the budget, those behind their outbox's count
    /// now (`writes_now`) go first, and if that is not room enough it is
    /// not kept.
    pub(super) fn put(
        &self,
        id: &TenantId,
        writes: u64,
        index: OutboxIndex,
        budget: usize,
        writes_now: impl Fn(&TenantId) -> u64,
    ) {
        let bytes = index.heap_bytes();
        let mut kept = self.lock();
        kept.remove(id);
        if kept.bytes + bytes > budget {
            let behind: Vec<TenantId> = kept
                .by_tenant
                .iter()
                .filter(|(t, (w, _))| writes_now(t) != *w)
                .map(|(t, _)| t.clone())
                .collect();
            for t in &behind {
                kept.remove(t);
            }
        }
        if kept.bytes + bytes > budget {
            tracing::debug!(tenant = %id, bytes, "outbox index not kept: over the budget");
            return;
        }
        kept.bytes += bytes;
        kept.by_tenant.insert(id.clone(), (writes, Arc::new(index)));
    }

    /// Drops what is kept of `id` if its outbox was written since
    /// (`writes`).
    pub(super) fn forget_behind(&self, id: &TenantId, writes: u64) {
        self.get(id, writes);
    }

    /// Drops what is kept of `id` (its files changed or went).
    pub(super) fn forget(&self, id: &TenantId) {
        self.lock().remove(id);
    }

    /// Heap bytes kept now.
    pub(super) fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

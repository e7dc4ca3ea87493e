//! What the read models over every tenant (the overview, `dispatch
//! status`, the costs) show of a tenant's outbox, kept while its store is
//! closed.
//!
//! A scope of a thousand tenants would otherwise open a thousand stores at
//! every look (only `max_open_tenants` stay open, so each look closes and
//! opens them again). A summary is read from the store once and kept with
//! the outbox's write count (`Events::outbox_written`: counted by the
//! outbox's one writer after every write group, by the response months'
//! write, by a tenant's removal and by the close of a store in trouble,
//! whose next instance reads its disk, not what the last one held) and
//! the day it was read for; while both hold, the summary is the store's
//! and the store is not opened. The count is read before the store is: a
//! write meanwhile leaves the kept count behind, and the next look reads
//! the store again. This rests on what the whole daemon rests on: nothing
//! but this daemon writes a tenant's database (sled's file lock keeps a
//! second daemon out; a restart starts with nothing kept).
//!
//! A store that closes (idle, or to make room) reads its summary anew
//! first if one was kept before and is behind (`Stores::keep_summary`):
//! once someone has looked, a plan over more tenants than stay open
//! leaves the next look nothing to open but the stores still open. After
//! a start, the first look reads every store. Summaries of one tenant are
//! read one at a time: a console's retry while the first look still reads
//! waits for it and finds what it kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use touchpoint_common::domain::Channel;
use touchpoint_common::outbox::LedgerEntry;
use touchpoint_common::report::ResponseMonths;
use touchpoint_common::{Date, TenantId};

use super::error::Result;
use super::outbox::index::OutboxDigest;
use super::tenant::TenantStore;

/// One tenant's outbox as the overview and `dispatch status` show it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutboxSummary {
    /// Messages per day and status, emails per day, queued emails' due
    /// times: the overview's figures for any day and time.
    pub digest: OutboxDigest,
    /// The cost ledger: (month, service, entry).
    pub ledger: Vec<(u32, String, LedgerEntry)>,
    /// Responses per month, as the last attribution pass counted them.
    pub responses: ResponseMonths,
    /// Messages queued or deferred on email, post and phone.
    pub queued: [u64; 3],
    /// Messages marked sending.
    pub in_flight: u64,
    /// Emails sent on the day it was read for.
    pub sent_that_day: u64,
}

impl OutboxSummary {
    /// Reads it from an open store, for `day`.
    pub fn read(store: &TenantStore, day: Date) -> Result<Self> {
        Ok(Self {
            digest: store.with_index_unnamed(|ix| ix.digest())?,
            ledger: store.ledger()?,
            responses: store.response_months()?,
            queued: [Channel::Email, Channel::Post, Channel::Phone]
                .map(|c| store.queued_count(c) as u64),
            in_flight: store.in_flight()?.len() as u64,
            sent_that_day: store.sent_on(day)?,
        })
    }

    /// Messages queued or deferred on `channel`.
    pub fn queued_on(&self, channel: Channel) -> u64 {
        match channel {
            Channel::Email => self.queued[0],
            Channel::Post => self.queued[1],
            Channel::Phone => self.queued[2],
        }
    }
}

/// A summary with the outbox's write count and the day it is good for.
type Kept = (u64, Date, Arc<OutboxSummary>);

/// The summaries read so far, and per tenant the turn to read one: two
/// looks at once (a console's retry while the first still reads) read each
/// store once, the second finding what the first kept; a look waiting for
/// one tenant's store (closed for a backup's copy, say) holds up no other.
#[derive(Default)]
pub(super) struct Summaries {
    kept: Mutex<HashMap<TenantId, Kept>>,
    turns: Mutex<HashMap<TenantId, Arc<Mutex<()>>>>,
}

impl Summaries {
    fn kept(&self) -> MutexGuard<'_, HashMap<TenantId, Kept>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The summary kept for `id` if it was read at `writes` for `day`.
    pub(super) fn get(&self, id: &TenantId, writes: u64, day: Date) -> Option<Arc<OutboxSummary>> {
        self.kept()
            .get(id)
            .filter(|(w, d, _)| (*w, *d) == (writes, day))
            .map(|(_, _, s)| s.clone())
    }

    /// Runs `f` in `id`'s turn to read a summary.
    pub(super) fn in_turn<R>(&self, id: &TenantId, f: impl FnOnce() -> R) -> R {
        let turn = {
            let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
            turns.entry(id.clone()).or_default().clone()
        };
        let _held = turn.lock().unwrap_or_else(|e| e.into_inner());
        f()
    }

    /// Whether a summary of `id` is kept but not the one read at `writes`
    /// for `day`.
    pub(super) fn behind(&self, id: &TenantId, writes: u64, day: Date) -> bool {
        self.kept()
            .get(id)
            .is_some_and(|(w, d, _)| (*w, *d) != (writes, day))
    }

    /// Keeps `s`, read at `writes` for `day`, unless one read at a later
    /// count for that day is kept already (a close's read that overtook
    /// this one).
    pub(super) fn put(&self, id: &TenantId, writes: u64, day: Date, s: Arc<OutboxSummary>) {
        let mut kept = self.kept();
        if kept
            .get(id)
            .is_some_and(|(w, d, _)| *d == day && *w > writes)
        {
            return;
        }
        kept.insert(id.clone(), (writes, day, s));
    }

    pub(super) fn forget(&self, id: &TenantId) {
        self.kept().remove(id);
        let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
        turns.remove(id);
    }
}

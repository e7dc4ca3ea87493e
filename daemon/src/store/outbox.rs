//! A tenant's outbox: planned messages, the occasions they cover, each
//! recipient's contact history, the load per send day, the dispatch queues,
//! the budget ledger and the emails sent per day.
//!
//! Owns the trees `outbox`, `occasions`, `contacts`, `by_day`, `queue`,
//! `inflight`, `ledger`, `daily`, `credits` and `tracking` (their keys: [`keys`]), and the `meta`
//! keys `next_message_id` and `plan_stamp`. Every index is a function of a
//! message's stored state:
//!
//! | index      | holds a message while it is | key                            |
//! |------------|-----------------------------|--------------------------------|
//! | `by_day`   | planned or rendered         | send day, id                   |
//! | `queue`    | queued or deferred          | channel, due (unix ms), id     |
//! | `inflight` | sending                     | id                             |
//! | `contacts` | a contact (not failed, cancelled, replaced) | recipient, send day, id |
//!
//! This file reads; every write of these trees goes through the one writer
//! in [`mod@write`], which keeps the indexes, the occasions, the ledger and the
//! in-memory [`index`] right for any message's move, whether a planning run
//! or dispatch makes it.
//!
//! Uses `db` (the room's database and health) and the leaf modules; must
//! not import `records`, `tenant` or the root: the outbox knows messages,
//! not customers.

pub mod index;
mod keys;
pub(super) mod results;
pub(super) mod write;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use touchpoint_common::domain::Channel;
use touchpoint_common::outbox::{LedgerEntry, Message, MessageStatus, TrackedLinks};
use touchpoint_common::protocol::Topic;
use touchpoint_common::report::{Credited, ResponseMonths};
use touchpoint_common::Date;

use super::db::{decode, encode, TenantDb};
use super::error::Result;
use index::OutboxIndex;

/// One earlier contact of a recipient, as capping sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contact {
    pub day: Date,
    pub message: u64,
    pub status: MessageStatus,
}

pub(super) struct Outbox {
    db: Arc<TenantDb>,
    outbox: sled::Tree,
    occasions: sled::Tree,
    contacts: sled::Tree,
    by_day: sled::Tree,
    queue: sled::Tree,
    inflight: sled::Tree,
    ledger: sled::Tree,
    daily: sled::Tree,
    /// The response credited to a message or control record.
    credits: sled::Tree,
    /// Click tracking: a tracked email's links and the clicks on them.
    tracking: sled::Tree,
    /// Shared with the dealer's data, which owns its other keys.
    meta: sled::Tree,
    /// One planning run or dispatch pass at a time, from reading to writing.
    planning: Mutex<()>,
    /// The outbox index, once asked for; kept current by the writer.
    index: Mutex<Option<OutboxIndex>>,
    /// Writes by anything but a planning run's commit (`write.rs`).
    writes: std::sync::atomic::AtomicU64,
}

impl Outbox {
    pub(super) fn open(db: Arc<TenantDb>) -> Result<Self> {
        Ok(Self {
            outbox: db.tree("outbox")?,
            occasions: db.tree("occasions")?,
            contacts: db.tree("contacts")?,
            by_day: db.tree("by_day")?,
            queue: db.tree("queue")?,
            inflight: db.tree("inflight")?,
            ledger: db.tree("ledger")?,
            daily: db.tree("daily")?,
            credits: db.tree("credits")?,
            tracking: db.tree("tracking")?,
            meta: db.tree("meta")?,
            planning: Mutex::new(()),
            index: Mutex::new(None),
            writes: Default::default(),
            db,
        })
    }

    pub(super) fn plan_lock(&self) -> MutexGuard<'_, ()> {
        self.planning.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn index_lock(&self) -> MutexGuard<'_, Option<OutboxIndex>> {
        // Every change under this lock is one upsert or a whole build, so a
        // poisoned lock holds a usable index.
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    pub(super) fn with_index<R>(&self, f: impl FnOnce(&OutboxIndex) -> R) -> Result<R> {
        self.with_index_prepared(|_| Ok(()), f)
    }

    /// Runs `f` on the index, built first if need be, after `prepare` (the
    /// store's reading of the recipients' texts) had it.
    pub(super) fn with_index_prepared<R>(
        &self,
        prepare: impl FnOnce(&mut OutboxIndex) -> Result<()>,
        f: impl FnOnce(&OutboxIndex) -> R,
    ) -> Result<R> {
        let mut guard = self.index_lock();
        let mut ix = match guard.take() {
            Some(ix) => ix,
            None => {
                let started = std::time::Instant::now();
                let ix = OutboxIndex::build(self.stored_messages())?;
                tracing::debug!(
                    tenant = %self.db.id(),
                    messages = ix.len(),
                    bytes = ix.heap_bytes(),
                    millis = started.elapsed().as_millis() as u64,
                    "outbox index built"
                );
                ix
            }
        };
        let prepared = prepare(&mut ix);
        // Kept whatever `prepare` says: a failed read leaves texts to read.
        let r = prepared.map(|()| f(&ix));
        *guard = Some(ix);
        r
    }

    /// The index, if built, taken out (the store is closing).
    pub(super) fn take_index(&self) -> Option<OutboxIndex> {
        self.index_lock().take()
    }

    pub(super) fn message(&self, id: u64) -> Result<Option<Message>> {
        self.outbox
            .get(keys::id(id))
            .map_err(self.db.err())?
            .map(|b| decode("outbox", &b))
            .transpose()
    }

    /// The response credited to a message or control record, if any.
    pub(super) fn credit(&self, id: u64) -> Result<Option<Credited>> {
        self.credits
            .get(keys::id(id))
            .map_err(self.db.err())?
            .map(|b| decode("credits", &b))
            .transpose()
    }

    /// A tracked email's links and the clicks on them, if it has any.
    pub(super) fn tracking(&self, id: u64) -> Result<Option<TrackedLinks>> {
        self.tracking
            .get(keys::id(id))
            .map_err(self.db.err())?
            .map(|b| decode("tracking", &b))
            .transpose()
    }

    /// Every tracked email's links and clicks, by message id.
    pub(super) fn all_tracking(&self) -> Result<BTreeMap<u64, TrackedLinks>> {
        let mut out = BTreeMap::new();
        for kv in self.tracking.iter() {
            let (k, v) = kv.map_err(self.db.err())?;
            if let Some(id) = keys::id_of(&k) {
                out.insert(id, decode("tracking", &v)?);
            }
        }
        Ok(out)
    }

    /// Every credited response, by message id.
    pub(super) fn credits(&self) -> Result<BTreeMap<u64, Credited>> {
        let mut out = BTreeMap::new();
        for kv in self.credits.iter() {
            let (k, v) = kv.map_err(self.db.err())?;
            if let Some(id) = keys::id_of(&k) {
                out.insert(id, decode("credits", &v)?);
            }
        }
        Ok(out)
    }

    pub(super) fn messages(&self) -> impl DoubleEndedIterator<Item = Result<Message>> + '_ {
        self.outbox
            .iter()
            .values()
            .map(move |r| r.map_err(self.db.err()).and_then(|b| decode("outbox", &b)))
    }

    /// Every stored message with its id, or `None` for one that does not
    /// decode (logged): the index is built from these.
    fn stored_messages(&self) -> impl Iterator<Item = Result<(u64, Option<Message>)>> + '_ {
        self.outbox.iter().map(move |kv| {
            let (k, v) = kv.map_err(self.db.err())?;
            let id = keys::id_of(&k).unwrap_or_default();
            match decode::<Message>("outbox", &v) {
                Ok(m) => Ok((id, Some(m))),
                Err(e) => {
                    tracing::error!(
                        tenant = %self.db.id(),
                        id,
                        error = %e,
                        "a message in the outbox cannot be read; it is left out of the queue"
                    );
                    Ok((id, None))
                }
            }
        })
    }

    pub(super) fn message_count(&self) -> usize {
        self.outbox.len()
    }

    pub(super) fn planned_occasion(&self, key: &str) -> Result<Option<u64>> {
        Ok(self
            .occasions
            .get(key.as_bytes())
            .map_err(self.db.err())?
            .and_then(|b| keys::u64_value(&b)))
    }

    pub(super) fn contacts_of(&self, recipient: &str) -> Result<Vec<Contact>> {
        let prefix = keys::contact_prefix(recipient);
        let mut out = Vec::new();
        for kv in self.contacts.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(self.db.err())?;
            let Some((day, id)) = keys::contact_rest(&k[prefix.len()..]) else {
                continue;
            };
            let status: MessageStatus = decode("contacts", &v)?;
            out.push(Contact {
                day,
                message: id,
                status,
            });
        }
        Ok(out)
    }

    pub(super) fn day_load(&self, from: Date) -> Result<BTreeMap<Date, u32>> {
        let mut out = BTreeMap::new();
        for k in self.by_day.range(keys::day_from(from)..).keys() {
            let k = k.map_err(self.db.err())?;
            if let Some(d) = keys::day_of(&k) {
                *out.entry(d).or_insert(0) += 1;
            }
        }
        Ok(out)
    }

    pub(super) fn pending_messages_of<'a>(
        &self,
        from: Date,
        recipients: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<Message>> {
        // Every planned or rendered message is a contact of its recipient
        // (`Keys::as_if`): the contacts index finds them.
        let mut out = Vec::new();
        for no in recipients {
            for c in self.contacts_of(no)? {
                if !c.status.is_revisable() || c.day < from {
                    continue;
                }
                if let Some(m) = self.message(c.message)? {
                    if m.status.is_revisable() && m.send_on >= from && m.recipient == no {
                        out.push(m);
                    }
                }
            }
        }
        out.sort_by_key(|m| (m.send_on, m.id));
        out.dedup_by_key(|m| m.id);
        Ok(out)
    }

    /// Outbox writes by anything but a planning run's commit.
    pub(super) fn writes(&self) -> u64 {
        self.writes.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(super) fn pending_messages(&self, from: Date) -> Result<Vec<Message>> {
        let mut out = Vec::new();
        for k in self.by_day.range(keys::day_from(from)..).keys() {
            let k = k.map_err(self.db.err())?;
            let id = keys::day_id(&k);
            if let Some(m) = id.map(|id| self.message(id)).transpose()?.flatten() {
                out.push(m);
            }
        }
        Ok(out)
    }

    pub(super) fn releasable(&self, day: Date) -> Result<Vec<u64>> {
        let hi = keys::day(day, u64::MAX);
        let mut out = Vec::new();
        for k in self.by_day.range(..=hi).keys() {
            let k = k.map_err(self.db.err())?;
            if let Some(id) = keys::day_id(&k) {
                out.push(id);
            }
        }
        Ok(out)
    }

    pub(super) fn due(&self, channel: Channel, now_ms: i64, limit: usize) -> Result<Vec<u64>> {
        let lo = keys::queue(channel, 0, 0);
        let hi = keys::queue(channel, now_ms, u64::MAX);
        let mut out = Vec::new();
        for k in self.queue.range(lo..=hi).keys().take(limit) {
            let k = k.map_err(self.db.err())?;
            if let Some(id) = keys::queue_id(&k) {
                out.push(id);
            }
        }
        Ok(out)
    }

    pub(super) fn due_after(
        &self,
        channel: Channel,
        now_ms: i64,
        after: Option<(i64, u64)>,
        limit: usize,
    ) -> Result<Vec<(i64, u64)>> {
        use std::ops::Bound;
        let lo = match after {
            Some((due, id)) => Bound::Excluded(keys::queue(channel, due, id)),
            None => Bound::Included(keys::queue(channel, 0, 0)),
        };
        let hi = Bound::Included(keys::queue(channel, now_ms, u64::MAX));
        let mut out = Vec::new();
        for k in self.queue.range::<[u8; 17], _>((lo, hi)).keys().take(limit) {
            let k = k.map_err(self.db.err())?;
            if let (Some(due), Some(id)) = (keys::queue_due(&k), keys::queue_id(&k)) {
                out.push((due, id));
            }
        }
        Ok(out)
    }

    pub(super) fn next_due(&self, channel: Channel) -> Result<Option<i64>> {
        let lo = keys::queue(channel, 0, 0);
        let hi = keys::queue(channel, i64::MAX, u64::MAX);
        Ok(self
            .queue
            .range(lo..=hi)
            .keys()
            .next()
            .transpose()
            .map_err(self.db.err())?
            .and_then(|k| keys::queue_due(&k)))
    }

    pub(super) fn queued_count(&self, channel: Channel) -> usize {
        let lo = keys::queue(channel, 0, 0);
        let hi = keys::queue(channel, i64::MAX, u64::MAX);
        self.queue.range(lo..=hi).count()
    }

    pub(super) fn in_flight(&self) -> Result<Vec<u64>> {
        self.inflight
            .iter()
            .keys()
            .map(|k| {
                k.map_err(self.db.err())
                    .map(|k| keys::inflight_id(&k).unwrap_or(0))
            })
            .collect()
    }

    pub(super) fn sent_on(&self, day: Date) -> Result<u64> {
        Ok(self
            .daily
            .get(keys::daily(day))
            .map_err(self.db.err())?
            .and_then(|b| keys::u64_value(&b))
            .unwrap_or(0))
    }

    pub(super) fn ledger_entry(&self, month: u32, service: &str) -> Result<LedgerEntry> {
        Ok(self
            .ledger
            .get(keys::ledger(month, service))
            .map_err(self.db.err())?
            .map(|b| decode("ledger", &b))
            .transpose()?
            .unwrap_or_default())
    }

    pub(super) fn ledger(&self) -> Result<Vec<(u32, String, LedgerEntry)>> {
        let mut out = Vec::new();
        for kv in self.ledger.iter() {
            let (k, v) = kv.map_err(self.db.err())?;
            let Some((month, service)) = keys::ledger_row(&k) else {
                continue;
            };
            out.push((month, service, decode("ledger", &v)?));
        }
        Ok(out)
    }

    /// The tenant's responses by month as the last attribution pass
    /// counted them (empty before the first).
    pub(super) fn response_months(&self) -> Result<ResponseMonths> {
        match self
            .meta
            .get(keys::RESPONSE_MONTHS)
            .map_err(self.db.err())?
        {
            Some(b) => decode("meta", &b),
            None => Ok(ResponseMonths::default()),
        }
    }

    /// Keeps what an attribution pass counted, when it differs from what is
    /// kept; says so on the change feed. A derived figure: a crash before
    /// it is written leaves the previous count until the next pass.
    pub(super) fn set_response_months(&self, months: &ResponseMonths) -> Result<()> {
        if self.response_months()? == *months {
            return Ok(());
        }
        let _w = self.db.lock_writer();
        self.db.writable()?;
        let bytes = encode("meta", months)?;
        self.meta
            .insert(keys::RESPONSE_MONTHS, bytes)
            .map_err(self.db.err())?;
        // Counted like a write group of the writer: the overview's kept
        // summary of this outbox holds these counts (`store/summary.rs`).
        self.db.events().outbox_written(self.db.id());
        self.db
            .events()
            .publish(&[Topic::Tenants], Some(self.db.id()));
        Ok(())
    }

    pub(super) fn plan_stamp(&self) -> Result<Option<u64>> {
        Ok(self
            .meta
            .get(keys::PLAN_STAMP)
            .map_err(self.db.err())?
            .and_then(|b| keys::u64_value(&b)))
    }
}

//! One dealer's sealed data room.
//!
//! Trees and keys (all keys sort the way the scans need them):
//! ```text
//! customers    customer_no                      -> Customer
//! vehicles     vin                              -> Vehicle
//! owner        customer_no 0x00 vin             -> ()           vehicles of a holder
//! consents     customer_no 0x00 channel         -> Consent      latest statement per channel
//! visits       vin date(4, BE) kind             -> ServiceVisit visits of a vehicle in date order
//! imports      import_id (u64 BE)               -> ImportReport
//! import_hash  content hash                     -> import_id
//! merges       merge_id (u64 BE)                -> MergeRecord
//! merged       customer_no                      -> merge_id     active merges only
//! meta         "counters" | "next_import_id" | "next_merge_id" | "pending_import"
//!              | "next_message_id" | "plan_stamp" | "generation"
//! outbox       message_id (u64 BE)              -> Message
//! occasions    occasion key                     -> message_id   occasions already planned
//! contacts     customer_no 0x00 date(4) id(8)   -> MessageStatus  per-recipient contact history
//! by_day       date(4) id(8)                    -> ()           messages not yet sent, by send day
//! ledger       month(4, BE yyyymm) service      -> LedgerEntry
//! ```
//! The outbox trees are written by [`super::outbox`].
//! Customer numbers are validated by import to contain no control bytes, so
//! the 0x00 separator is unambiguous.
//!
//! On disk: `<tenant>/store/` is the sled database, `<tenant>/import.staging`
//! an import being written and `<tenant>/import.undo/` the undo journal of
//! one being applied (see [`super::ImportTxn`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use sled::Transactional;
use touchpoint_common::domain::{
    Channel, Consent, Customer, ImportReport, MergeRecord, ServiceVisit, TenantStats, Timestamp,
    Vehicle,
};
use touchpoint_common::outbox::{LedgerEntry, Message};
use touchpoint_common::protocol::{OptIns, Topic};
use touchpoint_common::{Date, TenantId};

use super::central::{FigureBoard, TenantFigures};
use super::db::{decode, encode, encode_tx, tx_err, TenantDb};
use super::error::{Result, StoreError};
use super::import_txn::consent_key;
use super::outbox::index::OutboxIndex;
use super::outbox::write::{Change, PlanWrite};
use super::outbox::{Contact, Outbox};

pub(super) const META_COUNTERS: &[u8] = b"counters";
const META_NEXT_IMPORT: &[u8] = b"next_import_id";
const META_NEXT_MERGE: &[u8] = b"next_merge_id";
const META_GENERATION: &[u8] = b"generation";
pub(super) const META_PENDING: &[u8] = b"pending_import";

/// Record counts kept up to date by every write, so stats never scan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Counters {
    pub(super) customers: u64,
    pub(super) vehicles: u64,
    pub(super) consents: u64,
    pub(super) visits: u64,
    pub(super) imports: u64,
    pub(super) merges_active: u64,
}

pub struct TenantStore {
    db: Arc<TenantDb>,
    pub(super) customers: sled::Tree,
    pub(super) vehicles: sled::Tree,
    pub(super) owner: sled::Tree,
    pub(super) consents: sled::Tree,
    pub(super) visits: sled::Tree,
    pub(super) imports: sled::Tree,
    pub(super) import_hash: sled::Tree,
    merges: sled::Tree,
    merged: sled::Tree,
    pub(super) meta: sled::Tree,
    bad_addresses: sled::Tree,
    outbox: Outbox,
    /// Opt-in counts and the data version they were counted at.
    opt_ins: Mutex<Option<(u64, OptIns)>>,
    /// Where the figures the tenants listing shows are kept (central store).
    board: FigureBoard,
    /// The figures changed since they were last written to the board.
    figures_due: AtomicBool,
    /// An import interrupted by an earlier version after its commit point
    /// was completed when this store opened (it still needs its identity pass).
    pub(super) completed_import: AtomicBool,
}

pub(super) fn prefix_of(customer_no: &str) -> Vec<u8> {
    let mut k = customer_no.as_bytes().to_vec();
    k.push(0);
    k
}

impl TenantStore {
    pub(super) fn open(
        id: TenantId,
        dir: &Path,
        cache_bytes: u64,
        events: Arc<crate::events::Events>,
        board: FigureBoard,
    ) -> Result<Self> {
        // First, so that a leftover of an interrupted import never takes
        // the space the database needs to open.
        super::import_txn::before_open(dir)?;
        let db = Arc::new(TenantDb::open(id, dir, cache_bytes, events)?);
        let store = Self {
            customers: db.tree("customers")?,
            vehicles: db.tree("vehicles")?,
            owner: db.tree("owner")?,
            consents: db.tree("consents")?,
            visits: db.tree("visits")?,
            imports: db.tree("imports")?,
            import_hash: db.tree("import_hash")?,
            merges: db.tree("merges")?,
            merged: db.tree("merged")?,
            meta: db.tree("meta")?,
            bad_addresses: db.tree("bad_addresses")?,
            outbox: Outbox::open(db.clone())?,
            db,
            opt_ins: Mutex::new(None),
            board,
            figures_due: AtomicBool::new(false),
            completed_import: AtomicBool::new(false),
        };
        super::import_txn::recover(&store)?;
        // Whatever recovery did, and whatever an earlier run wrote after
        // its figures: the listing shows this store as it is.
        if let Err(e) = store.publish_figures() {
            tracing::warn!(tenant = %store.id(), error = %e, "cannot write the tenant's figures");
        }
        Ok(store)
    }

    pub(super) fn err(&self) -> impl Fn(sled::Error) -> StoreError + '_ {
        self.db.err()
    }

    pub(super) fn mark_broken(&self, why: &str) {
        self.db.mark_broken(why)
    }

    /// Why this handle is out of service, if it is.
    pub fn trouble(&self) -> Option<String> {
        self.db.trouble()
    }

    pub(super) fn writable(&self) -> Result<()> {
        self.db.writable()
    }

    pub(super) fn lock_file(&self) -> PathBuf {
        self.db.lock_file()
    }

    pub(super) fn dir(&self) -> &Path {
        self.db.dir()
    }

    /// What the tenants listing shows of this tenant.
    pub fn figures(&self) -> Result<TenantFigures> {
        let mut stats = self.stats()?;
        stats.disk_bytes = 0;
        let last_import = self.imports(1)?.into_iter().next().map(|mut r| {
            // Row errors quote the dealer's file: they stay in its room.
            r.errors_truncated += r.errors.len() as u64;
            r.errors = Vec::new();
            r
        });
        Ok(TenantFigures {
            stats,
            opt_ins: self.opt_ins()?,
            last_import,
        })
    }

    /// Writes this tenant's figures to the central store.
    pub(super) fn publish_figures(&self) -> Result<()> {
        self.figures_due.store(false, Ordering::Release);
        let r = self.figures().and_then(|f| self.board.put(self.id(), &f));
        if r.is_err() {
            self.figures_due.store(true, Ordering::Release);
        }
        r
    }

    /// Writes the figures if a change is pending (the flusher's round).
    pub(super) fn publish_figures_if_due(&self) {
        if self.figures_due.load(Ordering::Acquire) && self.trouble().is_none() {
            if let Err(e) = self.publish_figures() {
                tracing::warn!(tenant = %self.id(), error = %e, "cannot write the tenant's figures");
            }
        }
    }

    pub fn id(&self) -> &TenantId {
        self.db.id()
    }

    pub fn flush(&self) -> Result<()> {
        self.db.flush()
    }

    pub(super) fn flush_if_dirty(&self) -> Result<()> {
        self.db.flush_if_dirty()
    }

    pub(super) fn touch(&self) {
        self.db.touch()
    }

    /// Held by a planning run that writes, from reading to committing.
    pub fn plan_lock(&self) -> MutexGuard<'_, ()> {
        self.outbox.plan_lock()
    }

    pub(super) fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.db.lock_writer()
    }

    pub(super) fn counters(&self) -> Result<Counters> {
        match self.meta.get(META_COUNTERS).map_err(self.err())? {
            Some(b) => decode("meta", &b),
            None => Ok(Counters::default()),
        }
    }

    pub(super) fn next_id(&self, key: &[u8]) -> Result<u64> {
        self.writable()?;
        let next = self
            .meta
            .update_and_fetch(key, |old| {
                let n = old
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0)
                    + 1;
                Some(n.to_be_bytes().to_vec())
            })
            .map_err(self.err())?;
        Ok(next
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(1))
    }

    // ----- reads -------------------------------------------------------------

    pub fn customer(&self, customer_no: &str) -> Result<Option<Customer>> {
        self.customers
            .get(customer_no.as_bytes())
            .map_err(self.err())?
            .map(|b| decode("customers", &b))
            .transpose()
    }

    /// All customers in customer-number order.
    pub fn customers(&self) -> impl Iterator<Item = Result<Customer>> + '_ {
        self.customers
            .iter()
            .values()
            .map(move |r| r.map_err(self.err()).and_then(|b| decode("customers", &b)))
    }

    pub fn vehicle(&self, vin: &str) -> Result<Option<Vehicle>> {
        self.vehicles
            .get(vin.as_bytes())
            .map_err(self.err())?
            .map(|b| decode("vehicles", &b))
            .transpose()
    }

    /// All vehicles in VIN order.
    pub fn vehicles(&self) -> impl Iterator<Item = Result<Vehicle>> + '_ {
        self.vehicles
            .iter()
            .values()
            .map(move |r| r.map_err(self.err()).and_then(|b| decode("vehicles", &b)))
    }

    /// Vehicles whose current holder is this customer number.
    pub fn vehicles_of(&self, customer_no: &str) -> Result<Vec<Vehicle>> {
        let prefix = prefix_of(customer_no);
        let mut out = Vec::new();
        for k in self.owner.scan_prefix(&prefix).keys() {
            let k = k.map_err(self.err())?;
            // An import interrupted and completed after a restart may leave a
            // stale entry behind; the vehicle record is the truth.
            if let Some(v) = self.vehicle(&String::from_utf8_lossy(&k[prefix.len()..]))? {
                if v.customer_no == customer_no {
                    out.push(v);
                }
            }
        }
        Ok(out)
    }

    /// The latest consent statement per channel of one customer.
    pub fn consents_of(&self, customer_no: &str) -> Result<Vec<Consent>> {
        self.consents
            .scan_prefix(prefix_of(customer_no))
            .values()
            .map(|r| r.map_err(self.err()).and_then(|b| decode("consents", &b)))
            .collect()
    }

    pub fn consent(&self, customer_no: &str, channel: Channel) -> Result<Option<Consent>> {
        self.consents
            .get(consent_key(customer_no, channel))
            .map_err(self.err())?
            .map(|b| decode("consents", &b))
            .transpose()
    }

    /// All current consent statements, grouped by customer number.
    pub fn consents(&self) -> impl Iterator<Item = Result<Consent>> + '_ {
        self.consents
            .iter()
            .values()
            .map(move |r| r.map_err(self.err()).and_then(|b| decode("consents", &b)))
    }

    /// Service visits of one vehicle in date order.
    pub fn visits_of(&self, vin: &str) -> Result<Vec<ServiceVisit>> {
        self.visits
            .scan_prefix(vin.as_bytes())
            .values()
            .map(|r| r.map_err(self.err()).and_then(|b| decode("visits", &b)))
            .collect()
    }

    /// All service visits, grouped by VIN, each vehicle's in date order.
    pub fn visits(&self) -> impl Iterator<Item = Result<ServiceVisit>> + '_ {
        self.visits
            .iter()
            .values()
            .map(move |r| r.map_err(self.err()).and_then(|b| decode("visits", &b)))
    }

    pub fn stats(&self) -> Result<TenantStats> {
        let c = self.counters()?;
        Ok(TenantStats {
            customers: c.customers,
            recipients: c.customers.saturating_sub(c.merges_active),
            vehicles: c.vehicles,
            consents: c.consents,
            visits: c.visits,
            merges_active: c.merges_active,
            imports: c.imports,
            disk_bytes: self.db.size_on_disk(),
        })
    }

    /// Recipients by what they allow: email and phone consent given and not
    /// withdrawn, post refused. Counted once per data version (a consent
    /// changes it), so listing many tenants often costs no scan.
    pub fn opt_ins(&self) -> Result<OptIns> {
        let version = self.data_version()?;
        let mut cached = self.opt_ins.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((v, o)) = *cached {
            if v == version {
                return Ok(o);
            }
        }
        let mut o = OptIns::default();
        for c in self.consents() {
            let c = c?;
            let counted = match (c.channel, c.granted) {
                (Channel::Email, true) => &mut o.email,
                (Channel::Phone, true) => &mut o.phone,
                (Channel::Post, false) => &mut o.post_refused,
                _ => continue,
            };
            // A customer merged into another is no recipient of its own.
            if !self
                .merged
                .contains_key(c.customer_no.as_bytes())
                .map_err(self.err())?
            {
                *counted += 1;
            }
        }
        *cached = Some((version, o));
        Ok(o)
    }

    /// Tells subscribers that the customer data changed, after bringing
    /// the central figures up to date (a listing right after an import
    /// shows it).
    pub(super) fn data_changed(&self) {
        if let Err(e) = self.publish_figures() {
            tracing::warn!(tenant = %self.id(), error = %e, "cannot write the tenant's figures; retried by the flusher");
        }
        self.db.events().publish(&[Topic::Tenants], Some(self.id()));
    }

    /// Marks the figures for the flusher's next round: for frequent small
    /// changes (consents from dispatch), where recounting each time costs
    /// more than a moment's lag in the listing.
    pub(super) fn figures_changed(&self) {
        self.figures_due.store(true, Ordering::Release);
    }

    // ----- import history -----------------------------------------------------

    /// Newest first.
    pub fn imports(&self, limit: usize) -> Result<Vec<ImportReport>> {
        self.imports
            .iter()
            .values()
            .rev()
            .take(limit)
            .map(|r| r.map_err(self.err()).and_then(|b| decode("imports", &b)))
            .collect()
    }

    pub fn import(&self, import_id: u64) -> Result<Option<ImportReport>> {
        self.imports
            .get(import_id.to_be_bytes())
            .map_err(self.err())?
            .map(|b| decode("imports", &b))
            .transpose()
    }

    /// The committed import that had exactly these bytes, if any.
    pub fn import_by_hash(&self, content_hash: &str) -> Result<Option<u64>> {
        Ok(self
            .import_hash
            .get(content_hash.as_bytes())
            .map_err(self.err())?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map(u64::from_be_bytes))
    }

    /// Records an import that changed no data (failed, or already imported).
    pub fn record_import(&self, report: &ImportReport) -> Result<()> {
        let _w = self.lock_writer();
        self.writable()?;
        let mut c = self.counters()?;
        c.imports += 1;
        (&self.imports, &self.meta)
            .transaction(|(imports, meta)| {
                imports.insert(&report.import_id.to_be_bytes(), encode_tx(report)?)?;
                meta.insert(META_COUNTERS, encode_tx(&c)?)?;
                Ok(())
            })
            .map_err(tx_err(&self.db))?;
        self.flush()?;
        self.data_changed();
        Ok(())
    }

    /// Replaces a stored import report (the identity pass adds its merge count).
    pub fn update_import(&self, report: &ImportReport) -> Result<()> {
        self.writable()?;
        self.imports
            .insert(report.import_id.to_be_bytes(), encode("imports", report)?)
            .map_err(self.err())?;
        self.touch();
        self.data_changed();
        Ok(())
    }

    pub fn next_import_id(&self) -> Result<u64> {
        self.next_id(META_NEXT_IMPORT)
    }

    // ----- merges -------------------------------------------------------------

    /// Takes the writer lock for a multi-step change (identity pass).
    pub fn writer(&self) -> MutexGuard<'_, ()> {
        self.lock_writer()
    }

    pub fn merges(&self, include_undone: bool) -> Result<Vec<MergeRecord>> {
        let mut out = Vec::new();
        for v in self.merges.iter().values().rev() {
            let m: MergeRecord = decode("merges", &v.map_err(self.err())?)?;
            if include_undone || m.undone_at.is_none() {
                out.push(m);
            }
        }
        Ok(out)
    }

    pub fn merge(&self, merge_id: u64) -> Result<Option<MergeRecord>> {
        self.merges
            .get(merge_id.to_be_bytes())
            .map_err(self.err())?
            .map(|b| decode("merges", &b))
            .transpose()
    }

    /// The active merge that folded this customer into another, if any.
    pub fn merged_into(&self, customer_no: &str) -> Result<Option<MergeRecord>> {
        match self
            .merged
            .get(customer_no.as_bytes())
            .map_err(self.err())?
        {
            Some(id) => match <[u8; 8]>::try_from(id.as_ref()) {
                Ok(id) => self.merge(u64::from_be_bytes(id)),
                Err(_) => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// Merged customer number -> surviving customer number, for every active merge.
    pub fn merge_map(&self) -> Result<std::collections::HashMap<String, String>> {
        let mut map = std::collections::HashMap::new();
        // Forward, unlike `merges`: sled walks a tree backwards with one
        // lookup from the root per step. A customer is merged by at most one
        // active merge, so the order does not matter.
        for v in self.merges.iter().values() {
            let m: MergeRecord = decode("merges", &v.map_err(self.err())?)?;
            if m.undone_at.is_none() {
                map.insert(m.merged, m.survivor);
            }
        }
        Ok(map)
    }

    pub fn next_merge_id(&self) -> Result<u64> {
        self.next_id(META_NEXT_MERGE)
    }

    /// Stores new merges atomically and durably. The caller holds [`Self::writer`].
    /// A merge whose `merged` customer is already merged is refused.
    pub fn record_merges(&self, merges: &[MergeRecord]) -> Result<()> {
        if merges.is_empty() {
            return Ok(());
        }
        self.writable()?;
        let mut c = self.counters()?;
        for m in merges {
            if self
                .merged
                .contains_key(m.merged.as_bytes())
                .map_err(self.err())?
            {
                return Err(StoreError::Conflict(format!(
                    "customer {} is already merged",
                    m.merged
                )));
            }
        }
        c.merges_active += merges.len() as u64;
        (&self.merges, &self.merged, &self.meta)
            .transaction(|(mt, md, meta)| {
                for m in merges {
                    mt.insert(&m.merge_id.to_be_bytes(), encode_tx(m)?)?;
                    md.insert(m.merged.as_bytes(), &m.merge_id.to_be_bytes())?;
                }
                meta.insert(META_COUNTERS, encode_tx(&c)?)?;
                Ok(())
            })
            .map_err(tx_err(&self.db))?;
        self.flush()?;
        self.data_changed();
        Ok(())
    }

    /// Undoes one merge: the merged customer is a recipient of its own again.
    pub fn undo_merge(&self, merge_id: u64, by: &str) -> Result<MergeRecord> {
        let _w = self.lock_writer();
        self.writable()?;
        let mut m = self.merge(merge_id)?.ok_or_else(|| {
            StoreError::NotFound(format!("no merge #{merge_id} in tenant {}", self.id()))
        })?;
        if m.undone_at.is_some() {
            return Err(StoreError::Conflict(format!(
                "merge #{merge_id} was already undone"
            )));
        }
        m.undone_at = Some(Timestamp::now());
        m.undone_by = Some(by.to_string());
        let mut c = self.counters()?;
        c.merges_active = c.merges_active.saturating_sub(1);
        (&self.merges, &self.merged, &self.meta)
            .transaction(|(mt, md, meta)| {
                mt.insert(&m.merge_id.to_be_bytes(), encode_tx(&m)?)?;
                md.remove(m.merged.as_bytes())?;
                meta.insert(META_COUNTERS, encode_tx(&c)?)?;
                Ok(())
            })
            .map_err(tx_err(&self.db))?;
        self.flush()?;
        self.data_changed();
        Ok(m)
    }

    // ----- the outbox ----------------------------------------------------------

    pub fn message(&self, id: u64) -> Result<Option<Message>> {
        self.outbox.message(id)
    }

    /// All messages, oldest first.
    pub fn messages(&self) -> impl DoubleEndedIterator<Item = Result<Message>> + '_ {
        self.outbox.messages()
    }

    pub fn message_count(&self) -> usize {
        self.outbox.message_count()
    }

    /// The message an occasion was planned into, if any.
    pub fn planned_occasion(&self, key: &str) -> Result<Option<u64>> {
        self.outbox.planned_occasion(key)
    }

    /// A recipient's messages that count as contacts, in date order.
    pub fn contacts_of(&self, recipient: &str) -> Result<Vec<Contact>> {
        self.outbox.contacts_of(recipient)
    }

    /// Messages not yet sent per send day, from `from` on.
    pub fn day_load(&self, from: Date) -> Result<BTreeMap<Date, u32>> {
        self.outbox.day_load(from)
    }

    /// Messages not yet sent whose send day is `from` or later.
    pub fn pending_messages(&self, from: Date) -> Result<Vec<Message>> {
        self.outbox.pending_messages(from)
    }

    /// Ids of planned or rendered messages whose send day is `day` or earlier.
    pub fn releasable(&self, day: Date) -> Result<Vec<u64>> {
        self.outbox.releasable(day)
    }

    /// Ids of messages queued or deferred on `channel` and due at `now_ms`
    /// or earlier, earliest first, at most `limit`.
    pub fn due(&self, channel: Channel, now_ms: i64, limit: usize) -> Result<Vec<u64>> {
        self.outbox.due(channel, now_ms, limit)
    }

    /// Like [`TenantStore::due`], from after the `(due, id)` position a
    /// previous page ended at: a caller that skips messages (paused, a busy
    /// domain) reads on instead of seeing the same ones again.
    pub fn due_after(
        &self,
        channel: Channel,
        now_ms: i64,
        after: Option<(i64, u64)>,
        limit: usize,
    ) -> Result<Vec<(i64, u64)>> {
        self.outbox.due_after(channel, now_ms, after, limit)
    }

    /// When the next queued or deferred message on `channel` is due (unix ms).
    pub fn next_due(&self, channel: Channel) -> Result<Option<i64>> {
        self.outbox.next_due(channel)
    }

    /// Messages queued or deferred per channel.
    pub fn queued_count(&self, channel: Channel) -> usize {
        self.outbox.queued_count(channel)
    }

    /// Ids of messages marked sending: handed to a transport when the daemon
    /// last stopped, or now.
    pub fn in_flight(&self) -> Result<Vec<u64>> {
        self.outbox.in_flight()
    }

    /// Emails sent on `day`.
    pub fn sent_on(&self, day: Date) -> Result<u64> {
        self.outbox.sent_on(day)
    }

    pub fn ledger_entry(&self, month: u32, service: &str) -> Result<LedgerEntry> {
        self.outbox.ledger_entry(month, service)
    }

    /// Every ledger row, by month then service.
    pub fn ledger(&self) -> Result<Vec<(u32, String, LedgerEntry)>> {
        self.outbox.ledger()
    }

    /// Runs `f` on the outbox index, building it first (one scan of the
    /// outbox) if this is the first time since the store was opened.
    pub fn with_index<R>(&self, f: impl FnOnce(&OutboxIndex) -> R) -> Result<R> {
        self.outbox.with_index(f)
    }

    /// Reserves `n` message ids; returns the first.
    pub fn reserve_message_ids(&self, n: u64) -> Result<u64> {
        self.outbox.reserve_message_ids(n)
    }

    pub fn plan_stamp(&self) -> Result<Option<u64>> {
        self.outbox.plan_stamp()
    }

    /// Writes one planning run durably, revisions first (a cancelled
    /// message frees its occasion keys, and a new message of the same run
    /// may take them again), in chunks of whole messages, the stamp with
    /// the last chunk.
    pub fn commit_plan(&self, w: &PlanWrite) -> Result<()> {
        self.outbox.commit_plan(w)
    }

    /// Writes a group of transitions and flushes once.
    pub fn apply(&self, changes: &[Change]) -> Result<()> {
        self.outbox.apply(changes)
    }

    /// Writes a group of transitions without flushing: the caller flushes
    /// (once for several groups) before anything outside relies on them.
    pub fn apply_unflushed(&self, changes: &[Change]) -> Result<()> {
        self.outbox.apply_unflushed(changes)
    }

    // ----- dispatch's findings about the dealer's data ---------------------------

    /// Changes whenever the tenant's data changes (imports, merges, undos,
    /// consent changes): the planner skips a tenant whose data, policy and day
    /// are those of its last run.
    pub fn data_version(&self) -> Result<u64> {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for key in [META_COUNTERS, META_NEXT_MERGE, META_GENERATION] {
            let v = self.meta.get(key).map_err(self.err())?;
            for b in v.as_deref().unwrap_or(&[]).iter().chain(&[0xff]) {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        Ok(h)
    }

    /// Marks the data changed for writers that leave the counters alone.
    pub fn bump_generation(&self) -> Result<()> {
        self.writable()?;
        self.meta
            .update_and_fetch(META_GENERATION, |old| {
                let n = old
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                Some((n + 1).to_be_bytes().to_vec())
            })
            .map_err(self.err())?;
        self.touch();
        // Consents and bad addresses from dispatch: the opt-in counts of the
        // listing follow with the flusher's next round.
        self.figures_changed();
        self.db.events().publish(&[Topic::Tenants], Some(self.id()));
        Ok(())
    }

    /// Records an address that hard-bounced: it is not used again.
    pub fn mark_bad_address(&self, address: &str, reason: &str) -> Result<()> {
        self.writable()?;
        self.bad_addresses
            .insert(address.trim().to_lowercase().as_bytes(), reason.as_bytes())
            .map_err(self.err())?;
        self.bump_generation()
    }

    /// Why an address is not used, if it hard-bounced.
    pub fn bad_address(&self, address: &str) -> Result<Option<String>> {
        Ok(self
            .bad_addresses
            .get(address.trim().to_lowercase().as_bytes())
            .map_err(self.err())?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Every address that hard-bounced (lower case), with the reason.
    pub fn bad_addresses(&self) -> Result<Vec<(String, String)>> {
        self.bad_addresses
            .iter()
            .map(|kv| {
                kv.map_err(self.err()).map(|(k, v)| {
                    (
                        String::from_utf8_lossy(&k).into_owned(),
                        String::from_utf8_lossy(&v).into_owned(),
                    )
                })
            })
            .collect()
    }

    /// Records a consent statement unless a later one is on record (an
    /// unsubscribe, a call-centre answer). Returns whether it was recorded.
    pub fn record_consent(&self, c: &Consent) -> Result<bool> {
        // Not while an import is applied: the import decides against the
        // stored statement and may roll back to it, either of which would
        // lose a withdrawal recorded in between.
        let _w = self.lock_writer();
        self.writable()?;
        let key = consent_key(&c.customer_no, c.channel);
        if let Some(old) = self.consents.get(&key).map_err(self.err())? {
            let old: Consent = decode("consents", &old)?;
            if old.at > c.at || (old.granted == c.granted && old.at == c.at) {
                return Ok(false);
            }
        }
        self.consents
            .insert(key, encode("consents", c)?)
            .map_err(self.err())?;
        self.bump_generation()?;
        Ok(true)
    }
}

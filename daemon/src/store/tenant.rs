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

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use touchpoint_common::codec::{decode_record, encode_record};
use touchpoint_common::domain::{
    Channel, Consent, Customer, ImportReport, MergeRecord, ServiceVisit, TenantStats, Timestamp,
    Vehicle,
};
use touchpoint_common::protocol::{OptIns, Topic};
use touchpoint_common::TenantId;

use super::central::{FigureBoard, TenantFigures};
use super::error::{Result, StoreError};
use super::files::{remove_unfinished_snapshots, sled_err};
use super::import_txn::consent_key;

const TENANT_SEGMENT_BYTES: usize = 128 * 1024;

pub(super) const META_COUNTERS: &[u8] = b"counters";
const META_NEXT_IMPORT: &[u8] = b"next_import_id";
const META_NEXT_MERGE: &[u8] = b"next_merge_id";
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
    id: TenantId,
    db: sled::Db,
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
    pub(super) outbox: sled::Tree,
    pub(super) occasions: sled::Tree,
    pub(super) contacts: sled::Tree,
    pub(super) by_day: sled::Tree,
    pub(super) ledger: sled::Tree,
    pub(super) queue: sled::Tree,
    pub(super) inflight: sled::Tree,
    pub(super) daily: sled::Tree,
    pub(super) bad_addresses: sled::Tree,
    /// The directory of this tenant (the sled database is in `store/`).
    pub(super) dir: PathBuf,
    /// One writer at a time: an import, an identity pass or a merge undo.
    writer: Mutex<()>,
    /// One planning run at a time (the schedule and an on-demand run).
    planning: Mutex<()>,
    dirty: AtomicBool,
    /// The outbox index, once asked for (see [`super::index`]).
    pub(super) index: Mutex<Option<super::index::OutboxIndex>>,
    /// Opt-in counts and the data version they were counted at.
    opt_ins: Mutex<Option<(u64, OptIns)>>,
    pub(super) events: Arc<crate::events::Events>,
    /// Where the figures the tenants listing shows are kept (central store).
    board: FigureBoard,
    /// The figures changed since they were last written to the board.
    figures_due: AtomicBool,
    /// Set by the first I/O error: sled's state in memory may then differ
    /// from its disk, so this handle takes no more writes and the open set
    /// reopens the database (see [`super::Stores::tenant`]).
    broken: Mutex<Option<String>>,
    is_broken: AtomicBool,
    /// An import interrupted by an earlier version after its commit point
    /// was completed when this store opened (it still needs its identity pass).
    pub(super) completed_import: AtomicBool,
}

pub(super) fn decode<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T> {
    decode_record(bytes).map_err(|source| StoreError::Codec { tree, source })
}

pub(super) fn encode<T: Serialize>(tree: &'static str, value: &T) -> Result<Vec<u8>> {
    encode_record(value).map_err(|source| StoreError::Codec { tree, source })
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
        let path = dir.join("store");
        remove_unfinished_snapshots(&path);
        let err = sled_err(&path);
        let config = sled::Config::new()
            .path(&path)
            .cache_capacity(cache_bytes)
            // sled keeps I/O buffers of a segment each per open database: at
            // its 512 KiB default an idle open tenant costs about 2 MB of RSS,
            // at 128 KiB about 0.7 MB (BENCHMARKS.md). Fixed at creation: sled
            // refuses to reopen a database with another segment size.
            .segment_size(TENANT_SEGMENT_BYTES)
            // No flusher thread per database: Stores::flush_dirty flushes them all.
            .flush_every_ms(None);
        // The open set never opens a database an earlier instance of which
        // may still be alive, so a lock held here is another process's.
        let db = config.open().map_err(|e| match e {
            sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
                StoreError::Unavailable(format!(
                    "{}: the database is locked by another process (a second touchpointd on this state directory?)",
                    path.display()
                ))
            }
            other => err(other),
        })?;
        let tree = |name: &str| db.open_tree(name).map_err(&err);
        let store = Self {
            customers: tree("customers")?,
            vehicles: tree("vehicles")?,
            owner: tree("owner")?,
            consents: tree("consents")?,
            visits: tree("visits")?,
            imports: tree("imports")?,
            import_hash: tree("import_hash")?,
            merges: tree("merges")?,
            merged: tree("merged")?,
            meta: tree("meta")?,
            outbox: tree("outbox")?,
            occasions: tree("occasions")?,
            contacts: tree("contacts")?,
            by_day: tree("by_day")?,
            ledger: tree("ledger")?,
            queue: tree("queue")?,
            inflight: tree("inflight")?,
            daily: tree("daily")?,
            bad_addresses: tree("bad_addresses")?,
            dir: dir.to_path_buf(),
            id,
            db,
            writer: Mutex::new(()),
            planning: Mutex::new(()),
            dirty: AtomicBool::new(false),
            index: Mutex::new(None),
            opt_ins: Mutex::new(None),
            events,
            board,
            figures_due: AtomicBool::new(false),
            broken: Mutex::new(None),
            is_broken: AtomicBool::new(false),
            completed_import: AtomicBool::new(false),
        };
        super::import_txn::recover(&store)?;
        // Whatever recovery did, and whatever an earlier run wrote after
        // its figures: the listing shows this store as it is.
        if let Err(e) = store.publish_figures() {
            tracing::warn!(tenant = %store.id, error = %e, "cannot write the tenant's figures");
        }
        Ok(store)
    }

    pub(super) fn err(&self) -> impl Fn(sled::Error) -> StoreError + '_ {
        move |source| {
            self.note_sled_error(&source);
            StoreError::Sled {
                path: format!("tenant {}", self.id),
                source,
            }
        }
    }

    /// An I/O error (or worse) leaves sled's memory possibly ahead of its
    /// disk: this handle is done for.
    fn note_sled_error(&self, e: &sled::Error) {
        if !matches!(
            e,
            sled::Error::CollectionNotFound(_) | sled::Error::Unsupported(_)
        ) {
            self.mark_broken(&e.to_string());
        }
    }

    /// Takes this handle out of service: it refuses writes from now on,
    /// and the open set reopens the database once nobody holds it.
    pub(super) fn mark_broken(&self, why: &str) {
        let mut b = self.broken.lock().unwrap_or_else(|e| e.into_inner());
        if b.is_none() {
            tracing::error!(tenant = %self.id, error = why, "tenant store taken out of service; it is reopened on the next request");
            *b = Some(why.to_string());
            self.is_broken.store(true, Ordering::Release);
        }
    }

    /// Why this handle is out of service, if it is.
    pub fn trouble(&self) -> Option<String> {
        if !self.is_broken.load(Ordering::Acquire) {
            return None;
        }
        self.broken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|why| format!("{why} (the store is reopened on the next request)"))
    }

    /// Refuses a write through a handle taken out of service.
    pub(super) fn writable(&self) -> Result<()> {
        match self.trouble() {
            None => Ok(()),
            Some(why) => Err(StoreError::Unavailable(format!(
                "tenant {}: {why}",
                self.id
            ))),
        }
    }

    /// The file sled locks while the database is open.
    pub(super) fn lock_file(&self) -> PathBuf {
        self.dir.join("store").join("db")
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
        let r = self.figures().and_then(|f| self.board.put(&self.id, &f));
        if r.is_err() {
            self.figures_due.store(true, Ordering::Release);
        }
        r
    }

    /// Writes the figures if a change is pending (the flusher's round).
    pub(super) fn publish_figures_if_due(&self) {
        if self.figures_due.load(Ordering::Acquire) && self.trouble().is_none() {
            if let Err(e) = self.publish_figures() {
                tracing::warn!(tenant = %self.id, error = %e, "cannot write the tenant's figures");
            }
        }
    }

    pub fn id(&self) -> &TenantId {
        &self.id
    }

    pub fn flush(&self) -> Result<()> {
        self.dirty.store(false, Ordering::Release);
        if let Err(e) = self.db.flush() {
            self.dirty.store(true, Ordering::Release);
            return Err(self.err()(e));
        }
        Ok(())
    }

    pub(super) fn flush_if_dirty(&self) -> Result<()> {
        if self.dirty.load(Ordering::Acquire) {
            self.flush()?;
        }
        Ok(())
    }

    pub(super) fn touch(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// Held by a planning run that writes, from reading to committing.
    pub fn plan_lock(&self) -> MutexGuard<'_, ()> {
        self.planning.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
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
            disk_bytes: self.db.size_on_disk().unwrap_or(0),
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
            tracing::warn!(tenant = %self.id, error = %e, "cannot write the tenant's figures; retried by the flusher");
        }
        self.events.publish(&[Topic::Tenants], Some(&self.id));
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
            .map_err(tx_err(self))?;
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
            .map_err(tx_err(self))?;
        self.flush()?;
        self.data_changed();
        Ok(())
    }

    /// Undoes one merge: the merged customer is a recipient of its own again.
    pub fn undo_merge(&self, merge_id: u64, by: &str) -> Result<MergeRecord> {
        let _w = self.lock_writer();
        self.writable()?;
        let mut m = self.merge(merge_id)?.ok_or_else(|| {
            StoreError::NotFound(format!("no merge #{merge_id} in tenant {}", self.id))
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
            .map_err(tx_err(self))?;
        self.flush()?;
        self.data_changed();
        Ok(m)
    }
}

type TxResult<T> = std::result::Result<T, sled::transaction::ConflictableTransactionError<String>>;

fn encode_tx<T: Serialize>(v: &T) -> TxResult<Vec<u8>> {
    encode_record(v)
        .map_err(|e| sled::transaction::ConflictableTransactionError::Abort(e.to_string()))
}

pub(super) fn tx_err(
    s: &TenantStore,
) -> impl Fn(sled::transaction::TransactionError<String>) -> StoreError + '_ {
    move |e| match e {
        sled::transaction::TransactionError::Abort(msg) => {
            StoreError::Conflict(format!("tenant {}: {msg}", s.id))
        }
        sled::transaction::TransactionError::Storage(source) => s.err()(source),
    }
}

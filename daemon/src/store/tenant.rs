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
//! staging      tree(1) key                      -> op(1) value  an import being written
//! ```
//! Customer numbers are validated by import to contain no control bytes, so
//! the 0x00 separator is unambiguous.
//!
//! Imports are atomic by redo: everything an import would change is first
//! written to `staging`, then a `pending_import` marker is flushed (the commit
//! point), then the staged operations are applied and the marker removed. A
//! crash before the marker leaves the tenant as it was (staging is discarded
//! at the next open); a crash after it is completed at the next open.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::{IVec, Transactional};
use touchpoint_common::codec::{decode_record, encode_record, encode_record_into};
use touchpoint_common::domain::{
    Channel, Consent, Customer, ImportReport, MergeRecord, ServiceVisit, TenantStats, Timestamp,
    Vehicle,
};
use touchpoint_common::TenantId;

use super::{sled_err, Result, StoreError};

/// How many staged operations are applied per sled batch.
const APPLY_BATCH: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum TreeId {
    Customers = 1,
    Vehicles = 2,
    Owner = 3,
    Consents = 4,
    Visits = 5,
    Imports = 6,
    ImportHash = 7,
    Meta = 8,
}

impl TreeId {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => TreeId::Customers,
            2 => TreeId::Vehicles,
            3 => TreeId::Owner,
            4 => TreeId::Consents,
            5 => TreeId::Visits,
            6 => TreeId::Imports,
            7 => TreeId::ImportHash,
            8 => TreeId::Meta,
            _ => return None,
        })
    }
}

const OP_DELETE: u8 = 0;
const OP_PUT: u8 = 1;

const META_COUNTERS: &[u8] = b"counters";
const META_NEXT_IMPORT: &[u8] = b"next_import_id";
const META_NEXT_MERGE: &[u8] = b"next_merge_id";
const META_PENDING: &[u8] = b"pending_import";

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

/// What a staged write did to the record it touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Inserted,
    Updated,
    Unchanged,
}

pub struct TenantStore {
    id: TenantId,
    db: sled::Db,
    customers: sled::Tree,
    vehicles: sled::Tree,
    owner: sled::Tree,
    consents: sled::Tree,
    visits: sled::Tree,
    imports: sled::Tree,
    import_hash: sled::Tree,
    merges: sled::Tree,
    merged: sled::Tree,
    pub(super) meta: sled::Tree,
    pub(super) staging: sled::Tree,
    /// One writer at a time: an import, an identity pass or a merge undo.
    writer: Mutex<()>,
    dirty: AtomicBool,
}

fn decode<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T> {
    decode_record(bytes).map_err(|source| StoreError::Codec { tree, source })
}

fn encode<T: Serialize>(tree: &'static str, value: &T) -> Result<Vec<u8>> {
    encode_record(value).map_err(|source| StoreError::Codec { tree, source })
}

fn composite(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + 1 + b.len());
    k.extend_from_slice(a);
    k.push(0);
    k.extend_from_slice(b);
    k
}

fn prefix_of(customer_no: &str) -> Vec<u8> {
    let mut k = customer_no.as_bytes().to_vec();
    k.push(0);
    k
}

fn consent_key(customer_no: &str, channel: Channel) -> Vec<u8> {
    composite(customer_no.as_bytes(), &[channel as u8])
}

fn visit_key(v: &ServiceVisit) -> Vec<u8> {
    let mut k = Vec::with_capacity(v.vin.len() + 4 + v.kind.len());
    k.extend_from_slice(v.vin.as_bytes());
    k.extend_from_slice(&v.date.key_bytes());
    k.extend_from_slice(v.kind.as_bytes());
    k
}

impl TenantStore {
    pub(super) fn open(id: TenantId, path: &Path, cache_bytes: u64) -> Result<Self> {
        let err = sled_err(path);
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            // No flusher thread per database: Stores::flush_dirty flushes them all.
            .flush_every_ms(None)
            .open()
            .map_err(&err)?;
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
            staging: tree("staging")?,
            id,
            db,
            writer: Mutex::new(()),
            dirty: AtomicBool::new(false),
        };
        store.recover()?;
        Ok(store)
    }

    fn err(&self) -> impl Fn(sled::Error) -> StoreError + '_ {
        move |source| StoreError::Sled { path: format!("tenant {}", self.id), source }
    }

    /// Finishes an import that passed its commit point, or discards one that did not.
    fn recover(&self) -> Result<()> {
        if let Some(id) = self.meta.get(META_PENDING).map_err(self.err())? {
            tracing::warn!(tenant = %self.id, import = ?id.as_ref(), "completing an import interrupted after its commit point");
            self.apply_staging()?;
            self.meta.remove(META_PENDING).map_err(self.err())?;
            self.flush()?;
        } else if !self.staging.is_empty() {
            tracing::warn!(tenant = %self.id, "discarding an import interrupted before its commit point");
            self.staging.clear().map_err(self.err())?;
            self.flush()?;
        }
        Ok(())
    }

    pub fn id(&self) -> &TenantId {
        &self.id
    }

    pub fn flush(&self) -> Result<()> {
        self.dirty.store(false, Ordering::Release);
        self.db.flush().map_err(self.err())?;
        Ok(())
    }

    pub(super) fn flush_if_dirty(&self) -> Result<()> {
        if self.dirty.load(Ordering::Acquire) {
            self.flush()?;
        }
        Ok(())
    }

    fn touch(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn counters(&self) -> Result<Counters> {
        match self.meta.get(META_COUNTERS).map_err(self.err())? {
            Some(b) => decode("meta", &b),
            None => Ok(Counters::default()),
        }
    }

    fn next_id(&self, key: &[u8]) -> Result<u64> {
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
            if let Some(v) = self.vehicle(&String::from_utf8_lossy(&k[prefix.len()..]))? {
                out.push(v);
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
        let mut c = self.counters()?;
        c.imports += 1;
        (&self.imports, &self.meta)
            .transaction(|(imports, meta)| {
                imports.insert(&report.import_id.to_be_bytes(), encode_tx(report)?)?;
                meta.insert(META_COUNTERS, encode_tx(&c)?)?;
                Ok(())
            })
            .map_err(tx_err(&self.id))?;
        self.flush()
    }

    /// Replaces a stored import report (the identity pass adds its merge count).
    pub fn update_import(&self, report: &ImportReport) -> Result<()> {
        self.imports
            .insert(report.import_id.to_be_bytes(), encode("imports", report)?)
            .map_err(self.err())?;
        self.touch();
        Ok(())
    }

    pub fn next_import_id(&self) -> Result<u64> {
        self.next_id(META_NEXT_IMPORT)
    }

    /// Starts an atomic import. Blocks while another writer is active.
    pub fn begin_import(&self, import_id: u64) -> Result<ImportTxn<'_>> {
        let guard = self.lock_writer();
        // A previous transaction that was dropped without commit leaves staging behind.
        self.staging.clear().map_err(self.err())?;
        Ok(ImportTxn {
            store: self,
            _writer: guard,
            import_id,
            buf: Vec::with_capacity(256),
            delta: Counters::default(),
        })
    }

    fn tree(&self, id: TreeId) -> &sled::Tree {
        match id {
            TreeId::Customers => &self.customers,
            TreeId::Vehicles => &self.vehicles,
            TreeId::Owner => &self.owner,
            TreeId::Consents => &self.consents,
            TreeId::Visits => &self.visits,
            TreeId::Imports => &self.imports,
            TreeId::ImportHash => &self.import_hash,
            TreeId::Meta => &self.meta,
        }
    }

    /// Applies every staged operation, in batches. Idempotent: re-running it
    /// after a crash writes the same final values.
    fn apply_staging(&self) -> Result<()> {
        let mut batches: Vec<(TreeId, sled::Batch, usize)> = Vec::new();
        let mut pending = 0usize;
        for kv in self.staging.iter() {
            let (k, v) = kv.map_err(self.err())?;
            let (Some(&t), Some(&op)) = (k.first(), v.first()) else { continue };
            let Some(tid) = TreeId::from_byte(t) else { continue };
            let idx = match batches.iter().position(|(id, _, _)| *id == tid) {
                Some(i) => i,
                None => {
                    batches.push((tid, sled::Batch::default(), 0));
                    batches.len() - 1
                }
            };
            let (_, batch, n) = &mut batches[idx];
            if op == OP_PUT {
                batch.insert(&k[1..], &v[1..]);
            } else {
                batch.remove(&k[1..]);
            }
            *n += 1;
            pending += 1;
            if pending >= APPLY_BATCH {
                self.apply_batches(&mut batches)?;
                pending = 0;
            }
        }
        self.apply_batches(&mut batches)?;
        self.staging.clear().map_err(self.err())?;
        self.touch();
        Ok(())
    }

    fn apply_batches(&self, batches: &mut Vec<(TreeId, sled::Batch, usize)>) -> Result<()> {
        for (tid, batch, _) in batches.drain(..) {
            self.tree(tid).apply_batch(batch).map_err(self.err())?;
        }
        Ok(())
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
        match self.merged.get(customer_no.as_bytes()).map_err(self.err())? {
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
        for m in self.merges(false)? {
            map.insert(m.merged, m.survivor);
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
        let mut c = self.counters()?;
        for m in merges {
            if self.merged.contains_key(m.merged.as_bytes()).map_err(self.err())? {
                return Err(StoreError::Conflict(format!("customer {} is already merged", m.merged)));
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
            .map_err(tx_err(&self.id))?;
        self.flush()
    }

    /// Undoes one merge: the merged customer is a recipient of its own again.
    pub fn undo_merge(&self, merge_id: u64, by: &str) -> Result<MergeRecord> {
        let _w = self.lock_writer();
        let mut m = self
            .merge(merge_id)?
            .ok_or_else(|| StoreError::NotFound(format!("no merge #{merge_id} in tenant {}", self.id)))?;
        if m.undone_at.is_some() {
            return Err(StoreError::Conflict(format!("merge #{merge_id} was already undone")));
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
            .map_err(tx_err(&self.id))?;
        self.flush()?;
        Ok(m)
    }
}

type TxResult<T> = std::result::Result<T, sled::transaction::ConflictableTransactionError<String>>;

fn encode_tx<T: Serialize>(v: &T) -> TxResult<Vec<u8>> {
    encode_record(v).map_err(|e| sled::transaction::ConflictableTransactionError::Abort(e.to_string()))
}

fn tx_err(id: &TenantId) -> impl Fn(sled::transaction::TransactionError<String>) -> StoreError + '_ {
    move |e| match e {
        sled::transaction::TransactionError::Abort(msg) => {
            StoreError::Conflict(format!("tenant {id}: {msg}"))
        }
        sled::transaction::TransactionError::Storage(source) => {
            StoreError::Sled { path: format!("tenant {id}"), source }
        }
    }
}

/// An import being written. Reads see what this import staged so far; nothing
/// is visible to other readers until [`ImportTxn::commit`]. Dropping it
/// without commit discards everything (the staging is cleared at the next
/// import or open).
pub struct ImportTxn<'s> {
    store: &'s TenantStore,
    _writer: MutexGuard<'s, ()>,
    import_id: u64,
    buf: Vec<u8>,
    delta: Counters,
}

impl<'s> ImportTxn<'s> {
    pub fn import_id(&self) -> u64 {
        self.import_id
    }

    pub fn store(&self) -> &'s TenantStore {
        self.store
    }

    fn staging_key(tree: TreeId, key: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(1 + key.len());
        k.push(tree as u8);
        k.extend_from_slice(key);
        k
    }

    /// The value as this import sees it: staged if staged, else stored.
    /// The flag says whether it was staged.
    fn current(&self, tree: TreeId, key: &[u8]) -> Result<(Option<IVec>, bool)> {
        let s = self.store;
        match s.staging.get(Self::staging_key(tree, key)).map_err(s.err())? {
            Some(v) if v.first() == Some(&OP_PUT) => Ok((Some(v.subslice(1, v.len() - 1)), true)),
            Some(_) => Ok((None, true)),
            None => Ok((s.tree(tree).get(key).map_err(s.err())?, false)),
        }
    }

    pub(super) fn stage_put(&mut self, tree: TreeId, key: &[u8], value: &[u8]) -> Result<()> {
        let mut v = Vec::with_capacity(1 + value.len());
        v.push(OP_PUT);
        v.extend_from_slice(value);
        self.store
            .staging
            .insert(Self::staging_key(tree, key), v)
            .map_err(self.store.err())?;
        Ok(())
    }

    fn stage_delete(&mut self, tree: TreeId, key: &[u8]) -> Result<()> {
        self.store
            .staging
            .insert(Self::staging_key(tree, key), vec![OP_DELETE])
            .map_err(self.store.err())?;
        Ok(())
    }

    /// Stages `value` under `key`, comparing encoded bytes with what is there.
    fn put_encoded(&mut self, tree: TreeId, key: &[u8]) -> Result<Change> {
        let (cur, _) = self.current(tree, key)?;
        let change = match cur {
            None => Change::Inserted,
            Some(ref c) if c.as_ref() == self.buf.as_slice() => return Ok(Change::Unchanged),
            Some(_) => Change::Updated,
        };
        let value = std::mem::take(&mut self.buf);
        let r = self.stage_put(tree, key, &value);
        self.buf = value;
        r?;
        Ok(change)
    }

    fn encode_buf<T: Serialize>(&mut self, tree: &'static str, v: &T) -> Result<()> {
        encode_record_into(v, &mut self.buf).map_err(|source| StoreError::Codec { tree, source })
    }

    pub fn customer(&self, customer_no: &str) -> Result<Option<Customer>> {
        self.current(TreeId::Customers, customer_no.as_bytes())?
            .0
            .map(|b| decode("customers", &b))
            .transpose()
    }

    pub fn put_customer(&mut self, c: &Customer) -> Result<Change> {
        self.encode_buf("customers", c)?;
        let change = self.put_encoded(TreeId::Customers, c.customer_no.as_bytes())?;
        if change == Change::Inserted {
            self.delta.customers += 1;
        }
        Ok(change)
    }

    pub fn vehicle(&self, vin: &str) -> Result<Option<Vehicle>> {
        self.current(TreeId::Vehicles, vin.as_bytes())?
            .0
            .map(|b| decode("vehicles", &b))
            .transpose()
    }

    /// Stores a vehicle; when its holder changed, moves it to the new holder.
    pub fn put_vehicle(&mut self, v: &Vehicle) -> Result<Change> {
        let previous = self.vehicle(&v.vin)?;
        self.encode_buf("vehicles", v)?;
        let change = self.put_encoded(TreeId::Vehicles, v.vin.as_bytes())?;
        match (&previous, change) {
            (_, Change::Unchanged) => {}
            (Some(p), _) if p.customer_no == v.customer_no => {}
            (p, _) => {
                if let Some(p) = p {
                    self.stage_delete(TreeId::Owner, &composite(p.customer_no.as_bytes(), v.vin.as_bytes()))?;
                }
                self.stage_put(TreeId::Owner, &composite(v.customer_no.as_bytes(), v.vin.as_bytes()), &[])?;
            }
        }
        if change == Change::Inserted {
            self.delta.vehicles += 1;
        }
        Ok(change)
    }

    pub fn consent(&self, customer_no: &str, channel: Channel) -> Result<Option<Consent>> {
        self.current(TreeId::Consents, &consent_key(customer_no, channel))?
            .0
            .map(|b| decode("consents", &b))
            .transpose()
    }

    /// Stores a consent statement unless a later one is already there (the
    /// latest statement wins; on equal timestamps the newer import wins).
    pub fn put_consent(&mut self, c: &Consent) -> Result<Change> {
        let key = consent_key(&c.customer_no, c.channel);
        if let Some(cur) = self.consent(&c.customer_no, c.channel)? {
            if cur.at > c.at || (cur.granted == c.granted && cur.at == c.at) {
                return Ok(Change::Unchanged);
            }
        }
        self.encode_buf("consents", c)?;
        let change = self.put_encoded(TreeId::Consents, &key)?;
        if change == Change::Inserted {
            self.delta.consents += 1;
        }
        Ok(change)
    }

    pub fn put_visit(&mut self, v: &ServiceVisit) -> Result<Change> {
        self.encode_buf("visits", v)?;
        let change = self.put_encoded(TreeId::Visits, &visit_key(v))?;
        if change == Change::Inserted {
            self.delta.visits += 1;
        }
        Ok(change)
    }

    /// Makes the import durable and visible, atomically, with its report.
    pub fn commit(mut self, report: &ImportReport) -> Result<()> {
        let s = self.store;
        let mut c = s.counters()?;
        c.customers += self.delta.customers;
        c.vehicles += self.delta.vehicles;
        c.consents += self.delta.consents;
        c.visits += self.delta.visits;
        c.imports += 1;
        let report_bytes = encode("imports", report)?;
        self.stage_put(TreeId::Imports, &report.import_id.to_be_bytes(), &report_bytes)?;
        self.stage_put(
            TreeId::ImportHash,
            report.content_hash.as_bytes(),
            &report.import_id.to_be_bytes(),
        )?;
        self.stage_put(TreeId::Meta, META_COUNTERS, &encode("meta", &c)?)?;
        // Commit point: staging and the marker are durable together.
        s.meta
            .insert(META_PENDING, &report.import_id.to_be_bytes())
            .map_err(s.err())?;
        s.flush()?;
        s.apply_staging()?;
        s.meta.remove(META_PENDING).map_err(s.err())?;
        s.flush()
    }

    /// Discards everything staged.
    pub fn abort(self) -> Result<()> {
        self.store.staging.clear().map_err(self.store.err())?;
        Ok(())
    }
}

//! Atomic imports that keep up with a bulk load.
//!
//! An import is written in two phases:
//!
//! 1. **Stage.** Every record the file yields is appended to
//!    `<tenant>/import.staging`, a plain sequential file: no reads, no index,
//!    so staging costs about what encoding costs. Nothing is visible yet.
//! 2. **Commit.** The staging file is fsynced, then a `pending_import` marker
//!    (holding the import's report) is written and flushed: that is the
//!    commit point. The staged records are then applied to the trees in
//!    large batches, and a final transaction stores the report, the content
//!    hash and the counters and removes the marker.
//!
//! A crash before the commit point leaves the tenant as it was (the staging
//! file is deleted at the next open); a crash after it is completed at the
//! next open by applying the staging file again. Applying is idempotent:
//! every decision that depends on what is stored (which fields a newer
//! export may overwrite, whether a consent statement is the latest, which
//! holder a vehicle moves from) is taken at apply time against the stored
//! record, so running it twice gives the same result.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::MutexGuard;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use touchpoint_common::codec::{decode_record, encode_record, encode_record_into};
use touchpoint_common::domain::{
    Channel, Consent, Counts, Customer, FieldSet, ImportReport, ServiceVisit, Timestamp, Vehicle,
};

use super::tenant::{TenantStore, META_COUNTERS, META_PENDING};
use super::{Result, StoreError};

/// Name of the staging file in a tenant's directory while an import is written.
pub const STAGING_FILE: &str = "import.staging";

const OP_HEADER: u8 = 0;
const OP_CUSTOMER: u8 = 1;
const OP_VEHICLE: u8 = 2;
const OP_CONSENT: u8 = 3;
const OP_VISIT: u8 = 4;

/// Written first into every staging file.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Header {
    import_id: u64,
    /// Columns the file had; other fields of stored records are kept.
    present: FieldSet,
    /// Time stamped on consent statements that carry no date of their own.
    now: Timestamp,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn codec_err(tree: &'static str) -> impl Fn(touchpoint_common::codec::CodecError) -> StoreError {
    move |source| StoreError::Codec { tree, source }
}

impl TenantStore {
    fn staging_path(&self) -> PathBuf {
        self.dir.join(STAGING_FILE)
    }

    /// Starts an atomic import in which every field of a record is replaced.
    /// Blocks while another writer is active.
    pub fn begin_import(&self, import_id: u64) -> Result<ImportTxn<'_>> {
        self.begin_import_with(import_id, FieldSet::ALL, Timestamp::now())
    }

    /// Starts an atomic import of a file that has the columns `present`;
    /// `now` stamps consent statements without a date.
    pub fn begin_import_with(
        &self,
        import_id: u64,
        present: FieldSet,
        now: Timestamp,
    ) -> Result<ImportTxn<'_>> {
        let guard = self.lock_writer();
        let path = self.staging_path();
        let file = File::create(&path).map_err(io_err(&path))?;
        let mut txn = ImportTxn {
            store: self,
            _writer: guard,
            out: BufWriter::with_capacity(1 << 20, file),
            path,
            buf: Vec::with_capacity(512),
        };
        txn.write(
            OP_HEADER,
            &Header {
                import_id,
                present,
                now,
            },
        )?;
        Ok(txn)
    }
}

/// An import being written. Nothing is visible to readers until
/// [`ImportTxn::commit`]; dropping it without commit discards it.
pub struct ImportTxn<'s> {
    store: &'s TenantStore,
    _writer: MutexGuard<'s, ()>,
    out: BufWriter<File>,
    path: PathBuf,
    buf: Vec<u8>,
}

impl<'s> ImportTxn<'s> {
    pub fn store(&self) -> &'s TenantStore {
        self.store
    }

    fn write<T: Serialize>(&mut self, op: u8, value: &T) -> Result<()> {
        encode_record_into(value, &mut self.buf).map_err(codec_err("staging"))?;
        let len = u32::try_from(self.buf.len())
            .map_err(|_| StoreError::Conflict("record too large to stage".into()))?;
        let w = |out: &mut BufWriter<File>, buf: &[u8]| -> std::io::Result<()> {
            out.write_all(&[op])?;
            out.write_all(&len.to_le_bytes())?;
            out.write_all(buf)
        };
        w(&mut self.out, &self.buf).map_err(io_err(&self.path))
    }

    pub fn put_customer(&mut self, c: &Customer) -> Result<()> {
        self.write(OP_CUSTOMER, c)
    }

    /// Stores a vehicle; when its holder changed, it moves to the new holder.
    pub fn put_vehicle(&mut self, v: &Vehicle) -> Result<()> {
        self.write(OP_VEHICLE, v)
    }

    /// Stores a consent statement unless a later one is stored
    /// ([`Consent::supersedes`]).
    pub fn put_consent(&mut self, c: &Consent) -> Result<()> {
        self.write(OP_CONSENT, c)
    }

    pub fn put_visit(&mut self, v: &ServiceVisit) -> Result<()> {
        self.write(OP_VISIT, v)
    }

    /// Makes the import durable and visible, atomically, with its report.
    /// Returns the report with the record counts filled in.
    pub fn commit(mut self, report: &ImportReport) -> Result<ImportReport> {
        let s = self.store;
        self.out.flush().map_err(io_err(&self.path))?;
        self.out.get_ref().sync_all().map_err(io_err(&self.path))?;
        File::open(&s.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&s.dir))?;
        // Commit point.
        let template = encode_record(report).map_err(codec_err("meta"))?;
        s.meta.insert(META_PENDING, template).map_err(s.err())?;
        s.flush()?;
        let applied = apply(s, &self.path)?;
        let mut report = report.clone();
        applied.fill(&mut report);
        finish(s, &report, Some(&applied))?;
        let _ = std::fs::remove_file(&self.path);
        s.data_changed();
        Ok(report)
    }

    /// Discards everything staged.
    pub fn abort(self) -> Result<()> {
        drop(self.out);
        let _ = std::fs::remove_file(&self.path);
        Ok(())
    }
}

/// What applying a staging file did.
#[derive(Default)]
struct Applied {
    customers: Counts,
    vehicles: Counts,
    consents: Counts,
    visits: Counts,
}

impl Applied {
    fn fill(&self, r: &mut ImportReport) {
        r.customers = self.customers;
        r.vehicles = self.vehicles;
        r.consents = self.consents;
        r.visits = self.visits;
    }
}

/// Stores the report, the hash and the counters and removes the marker, in
/// one transaction. `applied` is `None` when recovering: then the counters
/// are recounted, because a partial earlier apply may have been counted
/// nowhere.
fn finish(s: &TenantStore, report: &ImportReport, applied: Option<&Applied>) -> Result<()> {
    let mut c = s.counters()?;
    match applied {
        Some(a) => {
            c.customers += a.customers.inserted;
            c.vehicles += a.vehicles.inserted;
            c.consents += a.consents.inserted;
            c.visits += a.visits.inserted;
        }
        None => {
            c.customers = s.customers.len() as u64;
            c.vehicles = s.vehicles.len() as u64;
            c.consents = s.consents.len() as u64;
            c.visits = s.visits.len() as u64;
        }
    }
    c.imports += 1;
    let report_bytes = encode_record(report).map_err(codec_err("imports"))?;
    let counters = encode_record(&c).map_err(codec_err("meta"))?;
    let id = report.import_id.to_be_bytes();
    (&s.imports, &s.import_hash, &s.meta)
        .transaction(|(imports, hash, meta)| {
            imports.insert(&id, report_bytes.as_slice())?;
            hash.insert(report.content_hash.as_bytes(), &id)?;
            meta.insert(META_COUNTERS, counters.as_slice())?;
            meta.remove(META_PENDING)?;
            Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
        })
        .map_err(|e| match e {
            sled::transaction::TransactionError::Storage(source) => StoreError::Sled {
                path: format!("tenant {}", s.id()),
                source,
            },
            sled::transaction::TransactionError::Abort(()) => {
                StoreError::Conflict("import commit aborted".into())
            }
        })?;
    s.touch();
    s.flush()
}

/// At open: completes an import that passed its commit point, discards one that did not.
pub(super) fn recover(s: &TenantStore) -> Result<()> {
    let path = s.staging_path();
    match s.meta.get(META_PENDING).map_err(s.err())? {
        Some(template) => {
            let mut report: ImportReport = decode_record(&template).map_err(codec_err("meta"))?;
            tracing::warn!(tenant = %s.id(), import = report.import_id, "completing an import interrupted after its commit point");
            if path.exists() {
                let applied = apply(s, &path)?;
                applied.fill(&mut report);
            }
            report.format = format!(
                "{} (completed after a restart; counts are of the second pass)",
                report.format
            );
            finish(s, &report, None)?;
            let _ = std::fs::remove_file(&path);
        }
        None if path.exists() => {
            tracing::warn!(tenant = %s.id(), "discarding an import interrupted before its commit point");
            std::fs::remove_file(&path).map_err(io_err(&path))?;
        }
        None => {}
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum T {
    Customers,
    Vehicles,
    Owner,
    Consents,
    Visits,
}

/// Applies staged records with plain inserts: atomicity comes from the
/// commit marker, not from sled batches, and sled's `apply_batch` measured
/// about three times slower than single inserts for bulk loads.
struct Applier<'a> {
    s: &'a TenantStore,
    header: Header,
    out: Applied,
}

impl<'a> Applier<'a> {
    fn tree(&self, t: T) -> &'a sled::Tree {
        match t {
            T::Customers => &self.s.customers,
            T::Vehicles => &self.s.vehicles,
            T::Owner => &self.s.owner,
            T::Consents => &self.s.consents,
            T::Visits => &self.s.visits,
        }
    }

    fn get(&self, t: T, key: &[u8]) -> Result<Option<sled::IVec>> {
        self.tree(t).get(key).map_err(self.s.err())
    }

    fn get_decoded<V: DeserializeOwned>(
        &self,
        t: T,
        key: &[u8],
        name: &'static str,
    ) -> Result<Option<(V, sled::IVec)>> {
        match self.get(t, key)? {
            Some(bytes) => Ok(Some((
                decode_record(&bytes).map_err(codec_err(name))?,
                bytes,
            ))),
            None => Ok(None),
        }
    }

    fn put(&mut self, t: T, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        self.tree(t).insert(key, value).map_err(self.s.err())?;
        Ok(())
    }

    fn remove(&mut self, t: T, key: Vec<u8>) -> Result<()> {
        self.tree(t).remove(key).map_err(self.s.err())?;
        Ok(())
    }

    /// Writes `value` unless equal to what is stored; returns what it did.
    fn upsert(&mut self, t: T, key: Vec<u8>, value: Vec<u8>, old: Option<&[u8]>) -> Result<Change> {
        match old {
            Some(o) if o == value.as_slice() => Ok(Change::Unchanged),
            Some(_) => self.put(t, key, value).map(|_| Change::Updated),
            None => self.put(t, key, value).map(|_| Change::Inserted),
        }
    }

    fn customer(&mut self, mut c: Customer) -> Result<()> {
        let key = c.customer_no.as_bytes().to_vec();
        let old = self.get_decoded::<Customer>(T::Customers, &key, "customers")?;
        let old_bytes = old.as_ref().map(|(_, b)| b.clone());
        if let Some((stored, _)) = old {
            c.keep_absent_from(stored, self.header.present);
        }
        let bytes = encode_record(&c).map_err(codec_err("customers"))?;
        let ch = self.upsert(T::Customers, key, bytes, old_bytes.as_deref())?;
        count(&mut self.out.customers, ch);
        Ok(())
    }

    fn vehicle(&mut self, mut v: Vehicle) -> Result<()> {
        let key = v.vin.as_bytes().to_vec();
        let old = self.get_decoded::<Vehicle>(T::Vehicles, &key, "vehicles")?;
        let (old_owner, old_bytes) = match old {
            Some((stored, bytes)) => {
                let owner = stored.customer_no.clone();
                v.keep_absent_from(stored, self.header.present);
                (Some(owner), Some(bytes))
            }
            None => (None, None),
        };
        let bytes = encode_record(&v).map_err(codec_err("vehicles"))?;
        let ch = self.upsert(T::Vehicles, key, bytes, old_bytes.as_deref())?;
        if old_owner.as_deref() != Some(v.customer_no.as_str()) {
            if let Some(o) = old_owner {
                self.remove(T::Owner, composite(o.as_bytes(), v.vin.as_bytes()))?;
            }
            self.put(
                T::Owner,
                composite(v.customer_no.as_bytes(), v.vin.as_bytes()),
                Vec::new(),
            )?;
        }
        count(&mut self.out.vehicles, ch);
        Ok(())
    }

    fn consent(&mut self, mut c: Consent) -> Result<()> {
        let key = consent_key(&c.customer_no, c.channel);
        let old = self.get_decoded::<Consent>(T::Consents, &key, "consents")?;
        if !c.supersedes(old.as_ref().map(|(s, _)| s), self.header.now) {
            count(&mut self.out.consents, Change::Unchanged);
            return Ok(());
        }
        let bytes = encode_record(&c).map_err(codec_err("consents"))?;
        let ch = self.upsert(
            T::Consents,
            key,
            bytes,
            old.as_ref().map(|(_, b)| b.as_ref()),
        )?;
        count(&mut self.out.consents, ch);
        Ok(())
    }

    fn visit(&mut self, v: ServiceVisit) -> Result<()> {
        let key = visit_key(&v);
        let old = self.get(T::Visits, &key)?;
        let bytes = encode_record(&v).map_err(codec_err("visits"))?;
        let ch = self.upsert(T::Visits, key, bytes, old.as_deref())?;
        count(&mut self.out.visits, ch);
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Inserted,
    Updated,
    Unchanged,
}

fn count(c: &mut Counts, ch: Change) {
    match ch {
        Change::Inserted => c.inserted += 1,
        Change::Updated => c.updated += 1,
        Change::Unchanged => c.unchanged += 1,
    }
}

/// Applies a staging file. Customers, vehicles (with the holder index) and
/// consents plus visits live in disjoint trees, so each group is applied by
/// its own thread reading the same file.
fn apply(s: &TenantStore, path: &Path) -> Result<Applied> {
    const GROUPS: [&[u8]; 3] = [&[OP_CUSTOMER], &[OP_VEHICLE], &[OP_CONSENT, OP_VISIT]];
    let results: Vec<Result<Applied>> = std::thread::scope(|scope| {
        let handles: Vec<_> = GROUPS
            .iter()
            .map(|kinds| scope.spawn(move || apply_kinds(s, path, kinds)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(StoreError::Conflict("import apply thread panicked".into()))
                })
            })
            .collect()
    });
    let mut total = Applied::default();
    for r in results {
        let a = r?;
        add(&mut total.customers, a.customers);
        add(&mut total.vehicles, a.vehicles);
        add(&mut total.consents, a.consents);
        add(&mut total.visits, a.visits);
    }
    Ok(total)
}

fn add(into: &mut Counts, c: Counts) {
    into.inserted += c.inserted;
    into.updated += c.updated;
    into.unchanged += c.unchanged;
}

fn apply_kinds(s: &TenantStore, path: &Path, kinds: &[u8]) -> Result<Applied> {
    let file = File::open(path).map_err(io_err(path))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut buf = Vec::with_capacity(512);
    let mut next = |buf: &mut Vec<u8>, wanted: &dyn Fn(u8) -> bool| -> Result<Option<u8>> {
        loop {
            let mut head = [0u8; 5];
            match r.read_exact(&mut head) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(io_err(path)(e)),
            }
            let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
            if wanted(head[0]) {
                buf.resize(len, 0);
                r.read_exact(buf).map_err(io_err(path))?;
                return Ok(Some(head[0]));
            }
            std::io::copy(&mut (&mut r).take(len as u64), &mut std::io::sink())
                .map_err(io_err(path))?;
        }
    };
    let header: Header = match next(&mut buf, &|op| op == OP_HEADER)? {
        Some(OP_HEADER) => decode_record(&buf).map_err(codec_err("staging"))?,
        _ => {
            return Err(StoreError::Conflict(format!(
                "{}: staging file without header",
                path.display()
            )))
        }
    };
    let mut a = Applier {
        s,
        header,
        out: Applied::default(),
    };
    let wanted = |op: u8| kinds.contains(&op) || op > OP_VISIT;
    while let Some(op) = next(&mut buf, &wanted)? {
        let dec = codec_err("staging");
        match op {
            OP_CUSTOMER => a.customer(decode_record(&buf).map_err(dec)?)?,
            OP_VEHICLE => a.vehicle(decode_record(&buf).map_err(dec)?)?,
            OP_CONSENT => a.consent(decode_record(&buf).map_err(dec)?)?,
            OP_VISIT => a.visit(decode_record(&buf).map_err(dec)?)?,
            other => {
                return Err(StoreError::Conflict(format!(
                    "{}: unknown staged operation {other}",
                    path.display()
                )))
            }
        }
    }
    Ok(a.out)
}

pub(super) fn composite(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + 1 + b.len());
    k.extend_from_slice(a);
    k.push(0);
    k.extend_from_slice(b);
    k
}

pub(super) fn consent_key(customer_no: &str, channel: Channel) -> Vec<u8> {
    composite(customer_no.as_bytes(), &[channel as u8])
}

pub(super) fn visit_key(v: &ServiceVisit) -> Vec<u8> {
    let mut k = Vec::with_capacity(v.vin.len() + 4 + v.kind.len());
    k.extend_from_slice(v.vin.as_bytes());
    k.extend_from_slice(&v.date.key_bytes());
    k.extend_from_slice(v.kind.as_bytes());
    k
}

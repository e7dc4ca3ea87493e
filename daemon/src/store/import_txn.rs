//! Atomic imports that keep up with a bulk load.
//!
//! An import is written in two phases:
//!
//! 1. **Stage.** Every record the file yields is appended to
//!    `<tenant>/import.staging`, a plain sequential file: no reads, no index,
//!    so staging costs about what encoding costs. Nothing is visible yet.
//! 2. **Apply.** The staged records are applied to the trees in batches,
//!    with a write-ahead undo journal in `<tenant>/import.undo/`: before a
//!    batch is written to the database, what it overwrites (or that the key
//!    was absent) is appended to the journal and synced. A last transaction
//!    stores the report, the content hash and the counters (its before-images
//!    journaled too), the database is flushed, and the journal directory is
//!    renamed to `import.undo.done`: that rename is the commit point. Only
//!    then is the client told "committed".
//!
//! Anything that goes wrong before the commit point (an error, a full disk,
//! a crash) is rolled back from the journal: at once when the store still
//! takes writes, else when it is next opened. So an import the client was
//! told failed never reappears, and one it was told committed is never lost.
//! The staging file is never needed again once applying began; it is
//! removed when the import ends, whichever way, and at the next open.
//!
//! Applying is idempotent and every decision that depends on what is stored
//! (which fields a newer export may overwrite, whether a consent statement
//! is the latest, which holder a vehicle moves from) is taken at apply time
//! against the stored record (or the batch's own earlier write of it).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::MutexGuard;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::{IVec, Transactional};
use touchpoint_common::codec::{decode_record, encode_record, encode_record_into};
use touchpoint_common::domain::{
    Channel, Consent, Counts, Customer, FieldSet, ImportReport, ServiceVisit, Timestamp, Vehicle,
};

use super::diskio::Tracked;
use super::error::{Result, StoreError};
use super::tenant::{TenantStore, META_COUNTERS, META_PENDING};

/// Name of the staging file in a tenant's directory while an import is written.
pub const STAGING_FILE: &str = "import.staging";
/// The undo journal of an import being applied (a directory).
pub const UNDO_DIR: &str = "import.undo";
/// The journal of a committed import, until it is removed.
const UNDO_DONE: &str = "import.undo.done";
/// Starts every staging file written by this version. A staging file
/// without it is an earlier version's, which its pending marker may need.
const STAGING_MAGIC: &[u8; 8] = b"TPSTAGE2";

const OP_HEADER: u8 = 0;
const OP_CUSTOMER: u8 = 1;
const OP_VEHICLE: u8 = 2;
const OP_CONSENT: u8 = 3;
const OP_VISIT: u8 = 4;

/// Staged records applied per journal batch (one sync each).
const BATCH: usize = 4096;
/// A journal frame longer than this is not one we wrote (a torn length).
const MAX_FRAME: u64 = 1 << 30;

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

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Removes a file or a directory tree, never following a symlink.
fn remove_path(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl TenantStore {
    fn staging_path(&self) -> PathBuf {
        self.dir().join(STAGING_FILE)
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
        self.writable()?;
        let path = self.staging_path();
        // Whatever is there (a leftover, a symlink) goes, unfollowed; the
        // new file is created, never opened through a link.
        remove_path(&path).map_err(io_err(&path))?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut txn = ImportTxn {
            store: self,
            _writer: guard,
            out: Some(BufWriter::with_capacity(1 << 20, Tracked::new(file, &path))),
            path,
            buf: Vec::with_capacity(512),
            done: false,
        };
        if let Some(out) = txn.out.as_mut() {
            out.write_all(STAGING_MAGIC).map_err(io_err(&txn.path))?;
        }
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

    /// True once after this store completed, when it opened, an import an
    /// earlier version had interrupted after its commit point (it still
    /// needs its identity pass).
    pub fn take_completed_import(&self) -> bool {
        self.completed_import.swap(false, Ordering::AcqRel)
    }
}

/// An import being written. Nothing is visible to readers until
/// [`ImportTxn::commit`]; dropping it without commit discards it, staging
/// file included.
pub struct ImportTxn<'s> {
    store: &'s TenantStore,
    _writer: MutexGuard<'s, ()>,
    out: Option<BufWriter<Tracked>>,
    path: PathBuf,
    buf: Vec<u8>,
    done: bool,
}

impl<'s> ImportTxn<'s> {
    pub fn store(&self) -> &'s TenantStore {
        self.store
    }

    fn write<T: Serialize>(&mut self, op: u8, value: &T) -> Result<()> {
        encode_record_into(value, &mut self.buf).map_err(codec_err("staging"))?;
        let len = u32::try_from(self.buf.len())
            .map_err(|_| StoreError::Conflict("record too large to stage".into()))?;
        let Some(out) = self.out.as_mut() else {
            return Err(StoreError::Conflict("import already ended".into()));
        };
        let w = |out: &mut BufWriter<Tracked>, buf: &[u8]| -> std::io::Result<()> {
            out.write_all(&[op])?;
            out.write_all(&len.to_le_bytes())?;
            out.write_all(buf)
        };
        w(out, &self.buf).map_err(io_err(&self.path))
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

    /// Makes the import durable and visible, with its report. Returns the
    /// report with the record counts filled in. On an error nothing of the
    /// import stays (see the module documentation).
    pub fn commit(mut self, report: &ImportReport) -> Result<ImportReport> {
        let s = self.store;
        if let Some(mut out) = self.out.take() {
            // Read back by this process only: a crash from here on rolls
            // back without it, so it needs no sync.
            out.flush().map_err(io_err(&self.path))?;
        }
        let report = commit_staged(s, Some(&self.path), report, false)?;
        self.done = true;
        let _ = std::fs::remove_file(&self.path);
        s.data_changed();
        Ok(report)
    }

    /// Discards everything staged.
    pub fn abort(self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
pub(super) fn batch_size() -> usize {
    BATCH
}

#[cfg(test)]
impl ImportTxn<'_> {
    /// What a kill leaves of an import being staged: the staged bytes
    /// written, nothing cleaned up, the writer lock never released.
    pub(super) fn crash(mut self) {
        if let Some(out) = self.out.as_mut() {
            let _ = out.flush();
        }
        std::mem::forget(self);
    }
}

impl Drop for ImportTxn<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // A failed or abandoned import must not keep its staging file: it
        // can be as large as the export and is of no use any more.
        drop(self.out.take());
        if let Err(e) = std::fs::remove_file(&self.path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(file = %self.path.display(), error = %e, "cannot remove an import's staging file");
            }
        }
    }
}

/// Applies a staging file (or, `None`, only recounts) under a journal and
/// commits it; on failure rolls it back or leaves that to the next open.
fn commit_staged(
    s: &TenantStore,
    staging: Option<&Path>,
    report: &ImportReport,
    recount: bool,
) -> Result<ImportReport> {
    let undo = s.dir().join(UNDO_DIR);
    let attempt = || -> Result<ImportReport> {
        // Never there on a store that takes writes; if it were, it would
        // be an earlier import's, to be undone before this one begins.
        rollback(s)?;
        std::fs::create_dir(&undo).map_err(io_err(&undo))?;
        sync_dir(s.dir())?;
        let mut report = report.clone();
        let applied = match staging {
            Some(path) => {
                let applied = apply(s, path, &undo)?;
                applied.fill(&mut report);
                Some(applied)
            }
            None => None,
        };
        let counted = if recount { None } else { applied.as_ref() };
        finish(s, &report, counted, &undo)?;
        commit_point(s)?;
        Ok(report)
    };
    match attempt() {
        Ok(report) => {
            let done = s.dir().join(UNDO_DONE);
            if let Err(e) = remove_path(&done) {
                tracing::warn!(dir = %done.display(), error = %e, "cannot remove a committed import's journal; removed at the next open");
            }
            Ok(report)
        }
        Err(e) => {
            let rolled_back = s.trouble().is_none()
                && match rollback(s) {
                    Ok(_) => true,
                    Err(undo_err) => {
                        tracing::error!(tenant = %s.id(), error = %undo_err, "rolling back a failed import failed; retried when the store is reopened");
                        false
                    }
                };
            if !rolled_back {
                // The journal is still there: reopening rolls it back.
                s.mark_broken(&format!(
                    "import #{} failed and is rolled back when the store is reopened: {e}",
                    report.import_id
                ));
            }
            Err(StoreError::ImportFailed {
                tenant: s.id().to_string(),
                import_id: report.import_id,
                rolled_back,
                source: Box::new(e),
            })
        }
    }
}

/// The commit point: the journal becomes a committed one.
fn commit_point(s: &TenantStore) -> Result<()> {
    let undo = s.dir().join(UNDO_DIR);
    let done = s.dir().join(UNDO_DONE);
    std::fs::rename(&undo, &done).map_err(io_err(&undo))?;
    if let Err(e) = sync_dir(s.dir()) {
        // Not known to be durable: take it back, so that the import rolls
        // back here and after a crash alike.
        return match std::fs::rename(&done, &undo) {
            Ok(()) => Err(e),
            Err(back) => {
                // Committed as far as this file system says: so it is.
                tracing::warn!(tenant = %s.id(), error = %back, "import committed though its directory could not be synced");
                Ok(())
            }
        };
    }
    Ok(())
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

/// Stores the report, the hash and the counters and removes an earlier
/// version's marker, in one transaction whose before-images are journaled.
/// `applied` is `None` when recovering: then the counters are recounted.
fn finish(
    s: &TenantStore,
    report: &ImportReport,
    applied: Option<&Applied>,
    undo: &Path,
) -> Result<()> {
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
    let hash = report.content_hash.as_bytes();
    let mut j = Journal::create(&undo.join("final"))?;
    let get = |t: &sled::Tree, k: &[u8]| t.get(k).map_err(s.err());
    j.record(T::Imports, &id, get(&s.imports, &id)?.as_deref());
    j.record(T::ImportHash, hash, get(&s.import_hash, hash)?.as_deref());
    j.record(
        T::Meta,
        META_COUNTERS,
        get(&s.meta, META_COUNTERS)?.as_deref(),
    );
    j.record(
        T::Meta,
        META_PENDING,
        get(&s.meta, META_PENDING)?.as_deref(),
    );
    j.sync()?;
    (&s.imports, &s.import_hash, &s.meta)
        .transaction(|(imports, hash_t, meta)| {
            imports.insert(&id, report_bytes.as_slice())?;
            hash_t.insert(hash, &id)?;
            meta.insert(META_COUNTERS, counters.as_slice())?;
            meta.remove(META_PENDING)?;
            Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
        })
        .map_err(|e| match e {
            sled::transaction::TransactionError::Storage(source) => s.err()(source),
            sled::transaction::TransactionError::Abort(()) => {
                StoreError::Conflict("import commit aborted".into())
            }
        })?;
    s.touch();
    s.flush()
}

/// Before the database opens: removes what no recovery needs (a committed
/// import's journal, a staging file of this version), so that it never
/// takes the space the database needs to open.
pub(super) fn before_open(dir: &Path) -> Result<()> {
    let done = dir.join(UNDO_DONE);
    remove_path(&done).map_err(io_err(&done))?;
    let staging = dir.join(STAGING_FILE);
    let ours = match std::fs::symlink_metadata(&staging) {
        Ok(m) if m.is_file() => {
            let mut magic = [0u8; 8];
            File::open(&staging)
                .and_then(|mut f| f.read_exact(&mut magic))
                .map(|()| &magic == STAGING_MAGIC)
                // Too short to hold the magic: nothing an earlier version
                // could complete either.
                .unwrap_or(true)
        }
        Ok(_) => true,
        Err(_) => false,
    };
    if ours {
        tracing::warn!(file = %staging.display(), "removing the staging file of an interrupted import");
        remove_path(&staging).map_err(io_err(&staging))?;
    }
    Ok(())
}

/// At open: rolls back an import interrupted before its commit point;
/// completes one an earlier version interrupted after its own commit point.
pub(super) fn recover(s: &TenantStore) -> Result<()> {
    if let Some(n) = rollback(s)? {
        tracing::warn!(tenant = %s.id(), records = n, "rolled back an import interrupted before its commit point");
    }
    let staging = s.staging_path();
    match s.meta.get(META_PENDING).map_err(s.err())? {
        Some(template) => {
            let mut report: ImportReport = decode_record(&template).map_err(codec_err("meta"))?;
            tracing::warn!(tenant = %s.id(), import = report.import_id, "completing an import an earlier version interrupted after its commit point");
            report.format = format!(
                "{} (completed after a restart; counts are of the second pass)",
                report.format
            );
            let path = staging.exists().then_some(staging.as_path());
            commit_staged(s, path, &report, true)?;
            let _ = std::fs::remove_file(&staging);
            s.completed_import.store(true, Ordering::Release);
        }
        None if staging.exists() => {
            tracing::warn!(tenant = %s.id(), "discarding an import interrupted before its commit point");
            remove_path(&staging).map_err(io_err(&staging))?;
        }
        None => {}
    }
    Ok(())
}

/// Restores what the journal of an uncommitted import recorded, then
/// removes it. `None` when there was none. Idempotent: interrupted, it is
/// simply run again.
fn rollback(s: &TenantStore) -> Result<Option<usize>> {
    let undo = s.dir().join(UNDO_DIR);
    match std::fs::symlink_metadata(&undo) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            remove_path(&undo).map_err(io_err(&undo))?;
            return Ok(None);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&undo)(e)),
    }
    let mut restored = 0;
    for entry in std::fs::read_dir(&undo).map_err(io_err(&undo))? {
        let path = entry.map_err(io_err(&undo))?.path();
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            restored += replay(s, &path)?;
        }
    }
    s.flush()?;
    remove_path(&undo).map_err(io_err(&undo))?;
    sync_dir(s.dir())?;
    // Counts may have been cached from the rolled-back state.
    s.data_changed();
    Ok(Some(restored))
}

/// Restores one journal file's before-images, newest batch first.
fn replay(s: &TenantStore, path: &Path) -> Result<usize> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let len = f.metadata().map_err(io_err(path))?.len();
    let mut frames = Vec::new();
    let mut pos = 0u64;
    let mut head = [0u8; 12];
    let mut payload = Vec::new();
    // The valid frames: a torn or unsynced last one was never applied.
    while pos + 12 <= len {
        f.seek(SeekFrom::Start(pos)).map_err(io_err(path))?;
        f.read_exact(&mut head).map_err(io_err(path))?;
        let n = u64::from(u32::from_le_bytes([head[0], head[1], head[2], head[3]]));
        if n > MAX_FRAME || pos + 12 + n > len {
            break;
        }
        payload.resize(n as usize, 0);
        f.read_exact(&mut payload).map_err(io_err(path))?;
        if checksum(&payload) != head[4..12] {
            break;
        }
        frames.push((pos + 12, n as usize));
        pos += 12 + n;
    }
    let mut restored = 0;
    for (at, n) in frames.into_iter().rev() {
        f.seek(SeekFrom::Start(at)).map_err(io_err(path))?;
        payload.resize(n, 0);
        f.read_exact(&mut payload).map_err(io_err(path))?;
        let mut rest = payload.as_slice();
        while !rest.is_empty() {
            let (t, key, before, tail) = parse_record(rest).ok_or_else(|| {
                StoreError::Conflict(format!("{}: malformed journal record", path.display()))
            })?;
            let tree = t.tree(s);
            match before {
                Some(v) => tree.insert(key, v).map(|_| ()),
                None => tree.remove(key).map(|_| ()),
            }
            .map_err(s.err())?;
            restored += 1;
            rest = tail;
        }
    }
    Ok(restored)
}

type Record<'a> = (T, &'a [u8], Option<&'a [u8]>, &'a [u8]);

fn parse_record(b: &[u8]) -> Option<Record<'_>> {
    let (&tag, b) = b.split_first()?;
    let t = T::from_tag(tag)?;
    let (key, b) = take_len(b)?;
    let (&has, b) = b.split_first()?;
    if has == 0 {
        return Some((t, key, None, b));
    }
    let (before, b) = take_len(b)?;
    Some((t, key, Some(before), b))
}

fn take_len(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
    let rest = b.get(4..)?;
    Some((rest.get(..n)?, rest.get(n..)?))
}

fn checksum(b: &[u8]) -> [u8; 8] {
    let h = blake3::hash(b);
    let mut out = [0u8; 8];
    out.copy_from_slice(&h.as_bytes()[..8]);
    out
}

/// A write-ahead undo journal: before-images appended in synced frames.
struct Journal {
    out: Tracked,
    path: PathBuf,
    buf: Vec<u8>,
}

impl Journal {
    fn create(path: &Path) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io_err(path))?;
        Ok(Self {
            out: Tracked::new(file, path),
            path: path.to_path_buf(),
            buf: Vec::new(),
        })
    }

    fn record(&mut self, t: T, key: &[u8], before: Option<&[u8]>) {
        self.buf.push(t as u8);
        self.buf
            .extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(key);
        match before {
            None => self.buf.push(0),
            Some(v) => {
                self.buf.push(1);
                self.buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
                self.buf.extend_from_slice(v);
            }
        }
    }

    /// Writes what was recorded as one frame and syncs it.
    fn sync(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let len = u32::try_from(self.buf.len())
            .map_err(|_| StoreError::Conflict("journal frame too large".into()))?;
        let mut frame = Vec::with_capacity(12 + self.buf.len());
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&checksum(&self.buf));
        frame.extend_from_slice(&self.buf);
        self.out
            .write_all(&frame)
            .and_then(|()| self.out.file().sync_data())
            .map_err(io_err(&self.path))?;
        self.buf.clear();
        Ok(())
    }
}

/// The trees an import writes, as journal records name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum T {
    Customers = 0,
    Vehicles = 1,
    Owner = 2,
    Consents = 3,
    Visits = 4,
    Imports = 5,
    ImportHash = 6,
    Meta = 7,
}

impl T {
    fn from_tag(tag: u8) -> Option<Self> {
        Some(match tag {
            0 => T::Customers,
            1 => T::Vehicles,
            2 => T::Owner,
            3 => T::Consents,
            4 => T::Visits,
            5 => T::Imports,
            6 => T::ImportHash,
            7 => T::Meta,
            _ => return None,
        })
    }

    fn tree(self, s: &TenantStore) -> &sled::Tree {
        match self {
            T::Customers => &s.customers,
            T::Vehicles => &s.vehicles,
            T::Owner => &s.owner,
            T::Consents => &s.consents,
            T::Visits => &s.visits,
            T::Imports => &s.imports,
            T::ImportHash => &s.import_hash,
            T::Meta => &s.meta,
        }
    }
}

/// A key a batch read or wrote: what the database held before the batch,
/// and what the batch will write (`None`: only read).
struct Pending {
    before: Option<IVec>,
    after: Option<Option<IVec>>,
}

/// Applies staged records in batches: each batch's decisions are taken
/// against the database and the batch's own earlier writes, its
/// before-images are journaled and synced, and only then is it written
/// with plain inserts (sled's `apply_batch` measured about three times
/// slower than single inserts for bulk loads).
struct Applier<'a> {
    s: &'a TenantStore,
    header: Header,
    out: Applied,
    journal: Journal,
    batch: HashMap<(T, Vec<u8>), Pending>,
    /// Keys the batch writes, in the order first written.
    writes: Vec<(T, Vec<u8>)>,
    records: usize,
}

impl<'a> Applier<'a> {
    fn get(&mut self, t: T, key: &[u8]) -> Result<Option<IVec>> {
        // One lookup key per record read: cheap next to sled's own work.
        let k = (t, key.to_vec());
        if let Some(p) = self.batch.get(&k) {
            return Ok(p.after.clone().unwrap_or_else(|| p.before.clone()));
        }
        let v = t.tree(self.s).get(key).map_err(self.s.err())?;
        self.batch.insert(
            k,
            Pending {
                before: v.clone(),
                after: None,
            },
        );
        Ok(v)
    }

    fn get_decoded<V: DeserializeOwned>(
        &mut self,
        t: T,
        key: &[u8],
        name: &'static str,
    ) -> Result<Option<(V, IVec)>> {
        match self.get(t, key)? {
            Some(bytes) => Ok(Some((
                decode_record(&bytes).map_err(codec_err(name))?,
                bytes,
            ))),
            None => Ok(None),
        }
    }

    fn set(&mut self, t: T, key: Vec<u8>, after: Option<IVec>) -> Result<()> {
        let k = (t, key);
        match self.batch.get_mut(&k) {
            Some(p) => {
                if p.after.is_none() {
                    self.writes.push(k.clone());
                }
                p.after = Some(after);
            }
            None => {
                let before = t.tree(self.s).get(&k.1).map_err(self.s.err())?;
                self.writes.push(k.clone());
                self.batch.insert(
                    k,
                    Pending {
                        before,
                        after: Some(after),
                    },
                );
            }
        }
        Ok(())
    }

    fn put(&mut self, t: T, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        self.set(t, key, Some(value.into()))
    }

    fn remove(&mut self, t: T, key: Vec<u8>) -> Result<()> {
        self.set(t, key, None)
    }

    /// Writes `value` unless equal to what is stored; returns what it did.
    fn upsert(&mut self, t: T, key: Vec<u8>, value: Vec<u8>, old: Option<&[u8]>) -> Result<Change> {
        match old {
            Some(o) if o == value.as_slice() => Ok(Change::Unchanged),
            Some(_) => self.put(t, key, value).map(|_| Change::Updated),
            None => self.put(t, key, value).map(|_| Change::Inserted),
        }
    }

    /// Counts a staged record; a full batch is written.
    fn record_done(&mut self) -> Result<()> {
        self.records += 1;
        if self.records >= BATCH {
            self.write_batch()?;
        }
        Ok(())
    }

    /// Journals the batch's before-images, syncs them, then writes the
    /// batch: nothing reaches the database that the journal cannot undo.
    fn write_batch(&mut self) -> Result<()> {
        self.records = 0;
        if self.writes.is_empty() {
            self.batch.clear();
            return Ok(());
        }
        for k in &self.writes {
            if let Some(p) = self.batch.get(k) {
                self.journal.record(k.0, &k.1, p.before.as_deref());
            }
        }
        self.journal.sync()?;
        for k in std::mem::take(&mut self.writes) {
            let Some(Pending {
                after: Some(after), ..
            }) = self.batch.remove(&k)
            else {
                continue;
            };
            let (t, key) = k;
            let tree = t.tree(self.s);
            match after {
                Some(v) => tree.insert(key, v).map(|_| ()),
                None => tree.remove(key).map(|_| ()),
            }
            .map_err(self.s.err())?;
        }
        self.batch.clear();
        Ok(())
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

/// Applies a staging file, journaling into `undo`. Customers, vehicles
/// (with the holder index) and consents plus visits live in disjoint
/// trees, so each group is applied by its own thread reading the same file,
/// with its own journal.
fn apply(s: &TenantStore, path: &Path, undo: &Path) -> Result<Applied> {
    const GROUPS: [&[u8]; 3] = [&[OP_CUSTOMER], &[OP_VEHICLE], &[OP_CONSENT, OP_VISIT]];
    let results: Vec<Result<Applied>> = std::thread::scope(|scope| {
        let handles: Vec<_> = GROUPS
            .iter()
            .enumerate()
            .map(|(n, kinds)| {
                let journal = undo.join(n.to_string());
                scope.spawn(move || apply_kinds(s, path, kinds, &journal))
            })
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

fn apply_kinds(s: &TenantStore, path: &Path, kinds: &[u8], journal: &Path) -> Result<Applied> {
    let file = File::open(path).map_err(io_err(path))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(io_err(path))?;
    if &magic != STAGING_MAGIC {
        // An earlier version's file starts with its header record.
        r.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
    }
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
        journal: Journal::create(journal)?,
        batch: HashMap::new(),
        writes: Vec::new(),
        records: 0,
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
        a.record_done()?;
    }
    a.write_batch()?;
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

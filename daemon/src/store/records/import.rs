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
//!
//! Files: this one (beginning, staging, the commit protocol, recovery at
//! open), `import/staging.rs` (the staging file's format), `import/apply.rs`
//! (applying it in journaled batches), `import/journal.rs` (the undo
//! journal). Writes the dealer's trees of `records` (its parent), and only
//! those; must not import `outbox` or `tenant`.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::MutexGuard;

use serde::Serialize;
use sled::Transactional;
use touchpoint_common::codec::{encode_record, encode_record_into};
use touchpoint_common::domain::{
    Consent, Customer, FieldSet, ImportReport, ServiceVisit, Timestamp, Vehicle,
};
use touchpoint_common::report::ReportedResponse;
use touchpoint_common::Date;

use super::keys::{META_COUNTERS, META_PENDING};
use super::Records;
use crate::store::db::codec_err;
use crate::store::diskio::Tracked;
use crate::store::error::{Result, StoreError};
use crate::store::files::{io_err, remove_path, sync_dir};
use apply::{apply, Applied};
use journal::{Journal, T};
pub use staging::STAGING_FILE;
use staging::{
    Header, Rejected, Staged, OP_CONSENT, OP_CUSTOMER, OP_CUSTOMER_ROW, OP_HEADER, OP_REJECTED,
    OP_RESPONSE, OP_VEHICLE, OP_VEHICLE_ROW, OP_VISIT, STAGING_MAGIC,
};

mod apply;
mod journal;
mod staging;

/// The undo journal of an import being applied (a directory).
pub const UNDO_DIR: &str = "import.undo";
/// The journal of a committed import, until it is removed.
const UNDO_DONE: &str = "import.undo.done";

/// Starts an atomic import of a file that has the columns `present`;
/// `now` stamps consent statements without a date. Blocks while another
/// writer is active.
pub(in crate::store) fn begin(
    s: &Records,
    import_id: u64,
    present: FieldSet,
    now: Timestamp,
) -> Result<ImportTxn<'_>> {
    let guard = s.db.lock_writer();
    s.db.writable()?;
    let path = s.db.dir().join(STAGING_FILE);
    // Whatever is there (a leftover, a symlink) goes, unfollowed; the
    // new file is created, never opened through a link.
    remove_path(&path).map_err(io_err(&path))?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io_err(&path))?;
    let mut txn = ImportTxn {
        records: s,
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

/// An import being written. Nothing is visible to readers until
/// [`ImportTxn::commit`]; dropping it without commit discards it, staging
/// file included.
pub struct ImportTxn<'s> {
    records: &'s Records,
    _writer: MutexGuard<'s, ()>,
    out: Option<BufWriter<Tracked>>,
    path: PathBuf,
    buf: Vec<u8>,
    done: bool,
}

impl<'s> ImportTxn<'s> {
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

    /// Stores the customer of the file's row at `line`, keeping what is
    /// stored of the fields `dropped` (bad values the row had), unless the
    /// stored customer is of an export newer than `as_of` (then the row is
    /// counted stale in the report).
    pub fn put_customer_row(
        &mut self,
        c: &Customer,
        dropped: FieldSet,
        as_of: Date,
        line: u64,
    ) -> Result<()> {
        self.write(
            OP_CUSTOMER_ROW,
            &Staged {
                record: c,
                dropped,
                as_of,
                line,
            },
        )
    }

    /// [`Self::put_customer_row`] for a vehicle.
    pub fn put_vehicle_row(
        &mut self,
        v: &Vehicle,
        dropped: FieldSet,
        as_of: Date,
        line: u64,
    ) -> Result<()> {
        self.write(
            OP_VEHICLE_ROW,
            &Staged {
                record: v,
                dropped,
                as_of,
                line,
            },
        )
    }

    /// Stores a consent statement unless a later one is stored
    /// ([`Consent::supersedes`]).
    pub fn put_consent(&mut self, c: &Consent) -> Result<()> {
        self.write(OP_CONSENT, c)
    }

    pub fn put_visit(&mut self, v: &ServiceVisit) -> Result<()> {
        self.write(OP_VISIT, v)
    }

    /// Stores a response from a response file; the caller has checked
    /// that its customer or vehicle is known.
    pub fn put_response(&mut self, r: &ReportedResponse) -> Result<()> {
        self.write(OP_RESPONSE, r)
    }

    /// Notes a row of the file that was rejected, about the vehicle `vin`
    /// and the customer `customer_no` (each empty when it could not be
    /// read): a re-export is not taken as the truth about them, so this
    /// file removes none of their earlier visits and responses. A rejected
    /// row whose vehicle and customer could not be read at all (both
    /// empty) could be about anyone: then the file removes nothing.
    pub fn rejected(&mut self, vin: &str, customer_no: &str) -> Result<()> {
        self.write(
            OP_REJECTED,
            &Rejected {
                vin: vin.to_string(),
                customer_no: customer_no.to_string(),
            },
        )
    }

    /// Makes the import durable and visible, with its report. Returns the
    /// report with the record counts filled in. On an error nothing of the
    /// import stays (see the module documentation).
    pub fn commit(mut self, report: &ImportReport) -> Result<ImportReport> {
        let s = self.records;
        if let Some(mut out) = self.out.take() {
            // Read back by this process only: a crash from here on rolls
            // back without it, so it needs no sync.
            out.flush().map_err(io_err(&self.path))?;
        }
        let window = s.write_window();
        let before = s.data_version()?;
        let (report, applied) = commit_staged(s, Some(&self.path), report, false)?;
        self.done = true;
        let _ = std::fs::remove_file(&self.path);
        match applied {
            Some(a) if !a.untold => {
                let opt_ins = s.opt_ins_delta_of_consents(&a.consents_changed)?;
                s.carry(before, &a.touched, Some(opt_ins))?;
            }
            _ => s.forget_changes(),
        }
        drop(window);
        s.data_changed();
        Ok(report)
    }

    /// Discards everything staged.
    pub fn abort(self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
pub(in crate::store) fn batch_size() -> usize {
    apply::BATCH
}

#[cfg(test)]
impl ImportTxn<'_> {
    /// What a kill leaves of an import being staged: the staged bytes
    /// written, nothing cleaned up, the writer lock never released.
    pub(in crate::store) fn crash(mut self) {
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
    s: &Records,
    staging: Option<&Path>,
    report: &ImportReport,
    recount: bool,
) -> Result<(ImportReport, Option<apply::Applied>)> {
    let undo = s.db.dir().join(UNDO_DIR);
    let attempt = || -> Result<(ImportReport, Option<apply::Applied>)> {
        // Never there on a store that takes writes; if it were, it would
        // be an earlier import's, to be undone before this one begins.
        rollback(s)?;
        std::fs::create_dir(&undo).map_err(io_err(&undo))?;
        sync_dir(s.db.dir())?;
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
        Ok((report, applied))
    };
    match attempt() {
        Ok(committed) => {
            let done = s.db.dir().join(UNDO_DONE);
            if let Err(e) = remove_path(&done) {
                tracing::warn!(dir = %done.display(), error = %e, "cannot remove a committed import's journal; removed at the next open");
            }
            Ok(committed)
        }
        Err(e) => {
            let rolled_back = s.db.trouble().is_none()
                && match rollback(s) {
                    Ok(_) => true,
                    Err(undo_err) => {
                        tracing::error!(tenant = %s.db.id(), error = %undo_err, "rolling back a failed import failed; retried when the store is reopened");
                        false
                    }
                };
            if !rolled_back {
                // The journal is still there: reopening rolls it back.
                s.db.mark_broken(&format!(
                    "import #{} failed and is rolled back when the store is reopened: {e}",
                    report.import_id
                ));
            }
            Err(StoreError::ImportFailed {
                tenant: s.db.id().to_string(),
                import_id: report.import_id,
                rolled_back,
                source: Box::new(e),
            })
        }
    }
}

/// The commit point: the journal becomes a committed one.
fn commit_point(s: &Records) -> Result<()> {
    let undo = s.db.dir().join(UNDO_DIR);
    let done = s.db.dir().join(UNDO_DONE);
    std::fs::rename(&undo, &done).map_err(io_err(&undo))?;
    if let Err(e) = sync_dir(s.db.dir()) {
        // Not known to be durable: take it back, so that the import rolls
        // back here and after a crash alike.
        return match std::fs::rename(&done, &undo) {
            Ok(()) => Err(e),
            Err(back) => {
                // Committed as far as this file system says: so it is.
                tracing::warn!(tenant = %s.db.id(), error = %back, "import committed though its directory could not be synced");
                Ok(())
            }
        };
    }
    Ok(())
}

/// Stores the report, the hash and the counters and removes an earlier
/// version's marker, in one transaction whose before-images are journaled.
/// `applied` is `None` when recovering: then the counters are recounted.
fn finish(
    s: &Records,
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
            c.visits = (c.visits + a.visits.inserted).saturating_sub(a.corrections.visits.removed);
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
    let get = |t: &sled::Tree, k: &[u8]| t.get(k).map_err(s.db.err());
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
            sled::transaction::TransactionError::Storage(source) => s.db.err()(source),
            sled::transaction::TransactionError::Abort(()) => {
                StoreError::Conflict("import commit aborted".into())
            }
        })?;
    s.db.touch();
    s.db.flush()
}

/// Before the database opens: removes what no recovery needs (a committed
/// import's journal, a staging file of this version), so that it never
/// takes the space the database needs to open.
pub(in crate::store) fn before_open(dir: &Path) -> Result<()> {
    let done = dir.join(UNDO_DONE);
    remove_path(&done).map_err(io_err(&done))?;
    let staging = dir.join(STAGING_FILE);
    if staging::is_ours(&staging) {
        tracing::warn!(file = %staging.display(), "removing the staging file of an interrupted import");
        remove_path(&staging).map_err(io_err(&staging))?;
    }
    Ok(())
}

/// At open: rolls back an import interrupted before its commit point;
/// completes one an earlier version interrupted after its own commit point.
pub(in crate::store) fn recover(s: &Records) -> Result<()> {
    if let Some(n) = rollback(s)? {
        tracing::warn!(tenant = %s.db.id(), records = n, "rolled back an import interrupted before its commit point");
    }
    let staging = s.db.dir().join(STAGING_FILE);
    match s.meta.get(META_PENDING).map_err(s.db.err())? {
        Some(template) => {
            let mut report = crate::store::db::decode_import_report("meta", &template)?;
            tracing::warn!(tenant = %s.db.id(), import = report.import_id, "completing an import an earlier version interrupted after its commit point");
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
            tracing::warn!(tenant = %s.db.id(), "discarding an import interrupted before its commit point");
            remove_path(&staging).map_err(io_err(&staging))?;
        }
        None => {}
    }
    Ok(())
}

/// Restores what the journal of an uncommitted import recorded, then
/// removes it. `None` when there was none. Idempotent: interrupted, it is
/// simply run again.
fn rollback(s: &Records) -> Result<Option<usize>> {
    let undo = s.db.dir().join(UNDO_DIR);
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
            restored += journal::replay(s, &path)?;
        }
    }
    s.db.flush()?;
    remove_path(&undo).map_err(io_err(&undo))?;
    sync_dir(s.db.dir())?;
    // Counts may have been cached from the rolled-back state.
    s.forget_changes();
    s.data_changed();
    Ok(Some(restored))
}

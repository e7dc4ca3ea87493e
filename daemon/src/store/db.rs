//! One tenant's open sled database and its health, shared by the parts of
//! the tenant's store ([`super::records`], [`super::outbox`]), each of which
//! opens and owns its own trees through it.
//!
//! Owns no tree. Holds what every write of the room must agree on: whether
//! the handle is still in service (an I/O error takes it out: sled's memory
//! may then be ahead of its disk), whether there are unflushed writes, the
//! one-writer lock of the dealer's data, and how a record is encoded.
//!
//! Uses only the leaf modules (`error`, `files`); imports no part of the
//! store and nothing that imports it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::de::DeserializeOwned;
use serde::Serialize;
use touchpoint_common::codec::{decode_record, encode_record, CodecError};
use touchpoint_common::TenantId;

use super::error::{Result, StoreError};
use super::files::{remove_unfinished_snapshots, sled_err};
use crate::events::Events;

pub(super) const TENANT_SEGMENT_BYTES: usize = 128 * 1024;

pub(super) struct TenantDb {
    id: TenantId,
    /// The directory of this tenant (the sled database is in `store/`).
    dir: PathBuf,
    db: sled::Db,
    events: Arc<Events>,
    /// One writer of the dealer's data at a time: an import, an identity
    /// pass, a merge undo, a consent from dispatch, a planning run's commit.
    writer: Mutex<()>,
    dirty: AtomicBool,
    /// Set by the first I/O error: sled's state in memory may then differ
    /// from its disk, so this handle takes no more writes and the open set
    /// reopens the database (see [`super::Stores::tenant`]).
    broken: Mutex<Option<String>>,
    is_broken: AtomicBool,
}

/// One tree's live records ([`TenantDb::tree_bytes`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeBytes {
    pub name: String,
    pub entries: u64,
    pub key_bytes: u64,
    pub value_bytes: u64,
}

impl TenantDb {
    pub(super) fn open(
        id: TenantId,
        dir: &Path,
        cache_bytes: u64,
        events: Arc<Events>,
    ) -> Result<Self> {
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
        super::schema::prepare(&db, &path, super::schema::TENANT_STEPS)?;
        Ok(Self {
            id,
            dir: dir.to_path_buf(),
            db,
            events,
            writer: Mutex::new(()),
            dirty: AtomicBool::new(false),
            broken: Mutex::new(None),
            is_broken: AtomicBool::new(false),
        })
    }

    /// Opens one tree of this database; only the part that owns it asks.
    pub(super) fn tree(&self, name: &str) -> Result<sled::Tree> {
        self.db
            .open_tree(name)
            .map_err(sled_err(&self.dir.join("store")))
    }

    pub(super) fn id(&self) -> &TenantId {
        &self.id
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(super) fn events(&self) -> &Events {
        &self.events
    }

    pub(super) fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// Entries and the bytes of their keys and values per tree: what the
    /// store holds live, against [`Self::size_on_disk`]. Reads every
    /// record (the import benchmark's breakdown).
    pub(super) fn tree_bytes(&self) -> Result<Vec<TreeBytes>> {
        let mut out = Vec::new();
        for name in self.db.tree_names() {
            let tree = self.db.open_tree(&name).map_err(self.err())?;
            let mut t = TreeBytes {
                name: String::from_utf8_lossy(&name).into_owned(),
                ..TreeBytes::default()
            };
            for kv in tree.iter() {
                let (k, v) = kv.map_err(self.err())?;
                t.entries += 1;
                t.key_bytes += k.len() as u64;
                t.value_bytes += v.len() as u64;
            }
            out.push(t);
        }
        Ok(out)
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
    pub(super) fn trouble(&self) -> Option<String> {
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

    pub(super) fn flush(&self) -> Result<()> {
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

    /// Notes unflushed writes for the shared flusher.
    pub(super) fn touch(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    pub(super) fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(super) fn decode<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T> {
    decode_record(bytes).map_err(|source| StoreError::Codec { tree, source })
}

/// An import report as this version writes it or as earlier ones wrote
/// it (without warnings, parked vehicles and stale records; without what a
/// re-export corrected or the unrecognised visit types; without the
/// response counts).
pub(super) fn decode_import_report(
    tree: &'static str,
    bytes: &[u8],
) -> Result<touchpoint_common::domain::ImportReport> {
    use touchpoint_common::domain::{ImportReportV1, ImportReportV2, ImportReportV3};
    decode(tree, bytes).or_else(|e| {
        decode::<ImportReportV3>(tree, bytes)
            .map(Into::into)
            .or_else(|_| decode::<ImportReportV2>(tree, bytes).map(Into::into))
            .or_else(|_| decode::<ImportReportV1>(tree, bytes).map(Into::into))
            .map_err(|_| e)
    })
}

pub(super) fn codec_err(
    tree: &'static str,
) -> impl Fn(touchpoint_common::codec::CodecError) -> StoreError {
    move |source| StoreError::Codec { tree, source }
}

pub(super) fn encode<T: Serialize>(tree: &'static str, value: &T) -> Result<Vec<u8>> {
    encode_record(value).map_err(|source| match source {
        source @ CodecError::TooLarge { .. } => StoreError::TooLarge { tree, source },
        source => StoreError::Codec { tree, source },
    })
}

pub(super) type TxResult<T> =
    std::result::Result<T, sled::transaction::ConflictableTransactionError<String>>;

pub(super) fn encode_tx<T: Serialize>(v: &T) -> TxResult<Vec<u8>> {
    encode_record(v)
        .map_err(|e| sled::transaction::ConflictableTransactionError::Abort(e.to_string()))
}

/// Aborts a transaction over a store error (a record that does not decode).
pub(super) fn abort(e: StoreError) -> sled::transaction::ConflictableTransactionError<String> {
    sled::transaction::ConflictableTransactionError::Abort(e.to_string())
}

pub(super) fn tx_err(
    db: &TenantDb,
) -> impl Fn(sled::transaction::TransactionError<String>) -> StoreError + '_ {
    move |e| match e {
        sled::transaction::TransactionError::Abort(msg) => {
            StoreError::Conflict(format!("tenant {}: {msg}", db.id))
        }
        sled::transaction::TransactionError::Storage(source) => db.err()(source),
    }
}

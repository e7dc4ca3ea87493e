//! Sealed data rooms: one sled database per tenant, one central database for
//! agency-level data.
//!
//! Layout under the state directory:
//! ```text
//! <state>/central/            tenant registry, audit log, brand material,
//!                             each tenant's figures for the listing
//! <state>/tenants/<tenant>/   one sled database per dealer
//! ```
//! A [`TenantStore`] handle is bound to one tenant's database at open time and
//! none of its methods takes a tenant id, so no call through one tenant's
//! handle can reach another tenant's data.
//!
//! sled gives every database a page cache and (by default) a flusher thread.
//! With hundreds of dealers that does not scale, so each database gets a small
//! explicit cache, no flusher thread of its own (one shared flusher calls
//! [`Stores::flush_dirty`]), and at most `max_open_tenants` are open at once;
//! the least recently used idle one is closed to make room.
//!
//! Invariants that are easy to break:
//! - A database is never opened while an earlier instance of it may be
//!   alive (sled's file lock outlives the last handle by a moment): see
//!   the open set. Nothing outside this module keeps a sled handle.
//! - After an I/O error a handle is out of service (sled's memory may be
//!   ahead of its disk): it refuses writes and is reopened once let go.
//! - Listing tenants opens no tenant database: it reads the figures each
//!   store writes to the central store at its write points.
//! - An import the client was told failed is rolled back, never completed
//!   (see `records/import.rs`).
//! - A tree is reached only by the part that owns it (its fields are
//!   private to the part's file and children); the rest of the daemon
//!   speaks to a [`TenantStore`] in domain terms and never sees a key.
//! - Every write of the outbox's trees goes through its one writer
//!   (`outbox/write.rs`), which keeps the indexes, the occasions, the
//!   ledger and the in-memory index right for any message's move.
//!
//! Files (no import circles: `tenant.rs` uses the parts; the children of a
//! part use it, while a part uses none of its children but its leaves; the
//! parts use neither each other nor `tenant.rs`):
//! - `tenant.rs`: [`TenantStore`], the room's handle; the tree table.
//! - `records.rs`, `records/`: the dealer's data, its import (staging, undo
//!   journal, recovery) and merges.
//! - `outbox.rs`, `outbox/`: messages and all that follows them, the
//!   ledger, the in-memory index; the one writer in `outbox/write.rs`.
//! - `db.rs`: one tenant's sled database and its health.
//! - `central.rs`, `material.rs`: the agency-level database.
//! - `summary.rs` (a child of this file: it reads through `tenant.rs`):
//!   what the overview, `dispatch status` and the costs show of an
//!   outbox, kept while its store is closed ([`Stores::outbox_summary`]).
//! - leaves: `error.rs`, `files.rs`, `diskio.rs`, `seal.rs`, `outbox/keys.rs`,
//!   `outbox/index.rs`, `records/keys.rs`, `records/import/staging.rs`.

mod central;
mod db;
mod diskio;
mod error;
mod files;
mod kept_index;
mod material;
mod outbox;
mod records;
mod rewrite;
mod schema;
mod seal;
mod snapshot;
mod summary;
mod tenant;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use touchpoint_common::config::StoresConfig;
use touchpoint_common::protocol::TenantSummary;
use touchpoint_common::{Date, TenantId};

pub use central::{Central, TenantFigures, TenantRecord};
pub use db::TreeBytes;
pub use diskio::{fail_writes_under, FaultGuard};
pub use error::{Result, StoreError};
pub use outbox::index;
pub use outbox::results::{lead_due, local_day, send_moment, sent_at};
pub use outbox::write::{reservation, Change, LedgerDelta, PlanWrite};
pub use outbox::Contact;
pub use records::erasure::{Erased, Identifier, Suppression, ERASED_FINDING};
pub use records::import::{ImportTxn, STAGING_FILE, UNDO_DIR};
pub use snapshot::TreeCounts;
pub use summary::OutboxSummary;

/// In a state directory while a backup is restored into it
/// (`crate::backup::restore`): a daemon does not start on it.
pub const RESTORE_MARKER: &str = ".restore-incomplete";
pub use tenant::{Park, Standing, TenantStore};

use files::{wait_released, RELEASE_WAIT};

/// The set of stores under one state directory.
pub struct Stores {
    root: PathBuf,
    cfg: StoresConfig,
    central: Arc<Central>,
    open: Mutex<OpenSet>,
    /// Signalled whenever a slot of the open set changes state.
    changed: Condvar,
    events: Arc<crate::events::Events>,
    /// What the overview and `dispatch status` show of each tenant's
    /// outbox, kept under its write count ([`Stores::outbox_summary`]).
    summaries: summary::Summaries,
    /// The outbox indexes of stores closed as idle or to make room, kept
    /// under their write count for listings ([`Stores::with_outbox_index`]).
    indexes: kept_index::KeptIndexes,
    /// The previous run did not close the stores (a crash, a kill): the
    /// tenants' figures in the central store may lag behind their stores.
    unclean_start: bool,
}

/// The tenant databases of this process, one slot per tenant.
///
/// sled locks a database's file while any part of it is alive, and parts
/// of it (its I/O threads) may outlive the last handle by a moment. So a
/// database is only ever opened when no earlier instance of it can be
/// alive: a slot is closed only when the open set holds its sole handle,
/// and it stays `Closing` until the file lock is seen released; a request
/// for a tenant that is opening or closing waits for that, it never meets
/// a lock of our own.
#[derive(Default)]
struct OpenSet {
    slots: HashMap<TenantId, Slot>,
    /// Requests waiting for a tenant's slot to change.
    waiting: HashMap<TenantId, usize>,
    /// Tenants whose open store someone waits to close (a rewrite, a
    /// copy for a backup), with how many wait: new requests for them wait
    /// too, so that the ones under way can finish and the store is not
    /// held forever by a stream of overlapping users (dispatch).
    draining: HashMap<TenantId, usize>,
}

enum Slot {
    /// Being opened by one request, outside the lock; others wait.
    Opening,
    Open(Open),
    /// Being closed outside the lock: flushed, dropped, lock released.
    Closing,
    /// The last attempt to open failed; the next request tries again.
    Failed(String),
}

struct Open {
    store: Arc<TenantStore>,
    last_used: Instant,
}

/// How long a request waits for a tenant store that another task is opening
/// or closing, before it gives up.
const SLOT_WAIT: Duration = Duration::from_secs(60);
/// How long a request waits for the tasks still using a store broken by an
/// I/O error to let go of it.
const BROKEN_HELD_WAIT: Duration = Duration::from_secs(5);
/// How often a waiter looks again at a broken store still held elsewhere
/// (holders do not signal when they drop a handle).
const HOLDER_POLL: Duration = Duration::from_millis(10);

impl Stores {
    pub fn open(state_dir: &Path, cfg: &StoresConfig) -> Result<Self> {
        if state_dir.join(RESTORE_MARKER).exists() {
            return Err(StoreError::Unavailable(format!(
                "{}: a restore into this state directory did not finish ({RESTORE_MARKER} is there); empty it and restore again",
                state_dir.display()
            )));
        }
        Self::open_restoring(state_dir, cfg)
    }

    /// [`Stores::open`] on a state directory being restored (`backup.rs`),
    /// which carries the restore marker until it is whole.
    pub fn open_restoring(state_dir: &Path, cfg: &StoresConfig) -> Result<Self> {
        let root = state_dir.to_path_buf();
        let tenants = root.join("tenants");
        std::fs::create_dir_all(&tenants).map_err(|source| StoreError::Io {
            path: tenants.display().to_string(),
            source,
        })?;
        let events = Arc::new(crate::events::Events::new());
        let central = Arc::new(Central::open(
            &root.join("central"),
            cfg.cache_bytes_central,
            events.clone(),
        )?);
        let unclean_start = central.mark_running()?;
        Ok(Self {
            root,
            cfg: cfg.clone(),
            central,
            open: Mutex::new(OpenSet::default()),
            changed: Condvar::new(),
            events,
            summaries: Default::default(),
            indexes: Default::default(),
            unclean_start,
        })
    }

    /// The change bus every write point of the stores publishes on.
    pub fn events(&self) -> &Arc<crate::events::Events> {
        &self.events
    }

    pub fn state_dir(&self) -> &Path {
        &self.root
    }

    pub fn central(&self) -> &Central {
        &self.central
    }

    pub fn tenant_dir(&self, id: &TenantId) -> PathBuf {
        // TenantId's character set rules out separators and "..".
        self.root.join("tenants").join(id.as_str())
    }

    /// True when the previous run ended without closing the stores.
    pub fn unclean_start(&self) -> bool {
        self.unclean_start
    }

    /// The store of a registered tenant, opened if needed.
    ///
    /// A store that met an I/O error is not handed out again: once the
    /// tasks still using it have let go, it is closed and opened afresh
    /// (sled replays its log), so a full disk that has been cleared, say,
    /// needs no restart.
    pub fn tenant(&self, id: &TenantId) -> Result<Arc<TenantStore>> {
        if self.central.tenant(id)?.is_none() {
            return Err(StoreError::UnknownTenant(id.to_string()));
        }
        let started = Instant::now();
        let mut open = self.lock();
        loop {
            let draining = open.draining.contains_key(id);
            match open.slots.get_mut(id) {
                Some(Slot::Open(o)) if o.store.trouble().is_none() && !draining => {
                    o.last_used = Instant::now();
                    return Ok(o.store.clone());
                }
                Some(Slot::Open(o))
                    if o.store.trouble().is_some() && Arc::strong_count(&o.store) == 1 =>
                {
                    tracing::warn!(tenant = %id, "reopening a tenant store after an I/O error");
                    let Some(Slot::Open(o)) = open.slots.insert(id.clone(), Slot::Closing) else {
                        continue;
                    };
                    drop(open);
                    let closed = self.close_store(id, o.store);
                    open = self.lock();
                    Self::closed(&mut open, id, closed);
                    self.changed.notify_all();
                    continue;
                }
                slot @ (Some(Slot::Open(_)) | Some(Slot::Opening) | Some(Slot::Closing)) => {
                    let now = Instant::now();
                    // Opening and closing always end; a broken store's
                    // holders are finishing whatever they do with it (which
                    // fails), but may be this very task, further up.
                    let (until, why) = match slot {
                        Some(Slot::Open(_)) if draining => (
                            started + SLOT_WAIT,
                            "is being closed for a copy or a rewrite",
                        ),
                        Some(Slot::Open(_)) => (
                            started + BROKEN_HELD_WAIT,
                            "is being reopened after an I/O error and is still in use",
                        ),
                        _ => (started + SLOT_WAIT, "is still being opened or closed"),
                    };
                    if now >= until {
                        return Err(StoreError::Unavailable(format!(
                            "tenant {id}: its store {why}; try again"
                        )));
                    }
                    // A broken store still held elsewhere is polled: its
                    // holders do not signal when they let go.
                    let wait = (until - now).min(HOLDER_POLL);
                    *open.waiting.entry(id.clone()).or_insert(0) += 1;
                    open = self
                        .changed
                        .wait_timeout(open, wait)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0);
                    if let Some(n) = open.waiting.get_mut(id) {
                        *n -= 1;
                        if *n == 0 {
                            open.waiting.remove(id);
                        }
                    }
                }
                Some(Slot::Failed(_)) | None => {
                    open.slots.insert(id.clone(), Slot::Opening);
                    drop(open);
                    let mut opening = OpeningGuard {
                        stores: self,
                        id,
                        armed: true,
                    };
                    let opened = self.open_store(id);
                    opening.armed = false;
                    open = self.lock();
                    let store = match opened {
                        Ok(store) => store,
                        Err(e) => {
                            open.slots.insert(id.clone(), Slot::Failed(e.to_string()));
                            self.changed.notify_all();
                            return Err(e);
                        }
                    };
                    open.slots.insert(
                        id.clone(),
                        Slot::Open(Open {
                            store: store.clone(),
                            last_used: Instant::now(),
                        }),
                    );
                    let victims = self.over_limit(&mut open, id);
                    self.changed.notify_all();
                    drop(open);
                    self.close_slots(victims, true);
                    return Ok(store);
                }
            }
        }
    }

    /// Rewrites a tenant's database into a fresh one holding only its live
    /// records, so that what was removed from it is gone from disk too
    /// (`rewrite.rs`). Holds the tenant's slot throughout: the store is
    /// closed first (once nobody else holds it), requests for the tenant
    /// wait meanwhile, and the next one opens the rewritten database. The
    /// caller must hold no handle of this tenant's store.
    pub fn rewrite_tenant(&self, id: &TenantId) -> Result<()> {
        if self.central.tenant(id)?.is_none() {
            return Err(StoreError::UnknownTenant(id.to_string()));
        }
        self.with_tenant_closed(id, false, || rewrite::rewrite(&self.tenant_dir(id)))
    }

    /// Rewrites the central database into a fresh one, so that what was
    /// replaced or removed in it is gone from its files too
    /// (`Central::rewrite`); its users wait meanwhile.
    pub fn rewrite_central(&self) -> Result<()> {
        self.central.rewrite()
    }

    /// Copies the central database into a new one at `to` (a backup): one
    /// moment of it, its live records only (`snapshot.rs`).
    pub fn snapshot_central(&self, to: &Path) -> Result<TreeCounts> {
        self.central.snapshot(to)
    }

    /// Copies a tenant's database into a new one at `to` (a backup), its
    /// store closed meanwhile (requests for this tenant wait; see
    /// [`Stores::rewrite_tenant`]). `None`: the tenant has stored nothing.
    /// The caller must hold no handle of this tenant's store.
    pub fn snapshot_tenant(&self, id: &TenantId, to: &Path) -> Result<Option<TreeCounts>> {
        if self.central.tenant(id)?.is_none() {
            return Err(StoreError::UnknownTenant(id.to_string()));
        }
        let mut counts = None;
        self.with_tenant_closed(id, true, || {
            let from = self.tenant_dir(id).join("store");
            if !from.join("db").exists() {
                return Ok(());
            }
            let old = sled::Config::new()
                .path(&from)
                .cache_capacity(snapshot::COPY_CACHE)
                .segment_size(db::TENANT_SEGMENT_BYTES)
                .flush_every_ms(None)
                .open()
                .map_err(files::sled_err(&from))?;
            let copied = snapshot::copy_trees(&old, to, Some(db::TENANT_SEGMENT_BYTES));
            drop(old);
            files::wait_released(&from.join("db"), files::RELEASE_WAIT)
                .map_err(files::io_err(&from))?;
            counts = Some(copied?);
            Ok(())
        })?;
        Ok(counts)
    }

    /// The records per tree of a copied central database (`<dir>/central`
    /// of a backup or a restored state directory), which it opens: never
    /// a database in use.
    pub fn count_central(path: &Path) -> Result<TreeCounts> {
        snapshot::count_trees(path, None)
    }

    /// Like [`Stores::count_central`], of a copied tenant database.
    pub fn count_tenant(path: &Path) -> Result<TreeCounts> {
        snapshot::count_trees(path, Some(db::TENANT_SEGMENT_BYTES))
    }

    /// Removes a tenant's store from disk and its registry entry (a dealer
    /// who left): the store is closed first, once nobody else holds it.
    pub fn remove_tenant(&self, id: &TenantId) -> Result<()> {
        self.with_tenant_closed(id, false, || {
            let dir = self.tenant_dir(id);
            files::remove_path(&dir).map_err(files::io_err(&dir))?;
            files::sync_dir(&self.root.join("tenants"))?;
            // Its outbox is gone: counted as a write, so that nothing
            // remembered of it (dispatch's quiet tenants, its summary)
            // outlives it, should the id come back.
            self.events.outbox_written(id);
            self.summaries.forget(id);
            self.indexes.forget(id);
            self.central.unregister_tenant(id).map(|_| ())
        })
    }

    /// Runs `f` on a tenant's directory with its store closed and its slot
    /// held (requests for it wait); afterwards the slot is free again, or
    /// failed with `f`'s error.
    ///
    /// With `reseal`, `f` only reads the closed database (a backup): a
    /// standing written down as it closed is sealed after `f` (whose
    /// opening of the files changes them), not before.
    fn with_tenant_closed(
        &self,
        id: &TenantId,
        reseal: bool,
        f: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        // Its files are about to change or go (a copy for a backup, which
        // `reseal` says, only reads them): nothing kept of them stays.
        if !reseal {
            self.indexes.forget(id);
        }
        let store = self.take_slot(id)?;
        let closed = match store {
            Some(s) => self.close_unsealed(id, s),
            // Closed before: its seal, if the files are still as sealed,
            // is taken here to be written again after `f`.
            None if reseal => Ok(seal::take(&self.tenant_dir(id))),
            None => Ok(None),
        };
        let done = closed
            .map_err(StoreError::Unavailable)
            .and_then(|sealed| f().map(|()| sealed));
        if let (true, Ok(Some(token))) = (reseal, &done) {
            seal::write(&self.tenant_dir(id), *token);
        }
        let done = done.map(|_| ());
        let mut open = self.lock();
        match &done {
            Ok(()) => {
                open.slots.remove(id);
            }
            Err(e) => {
                open.slots.insert(id.clone(), Slot::Failed(e.to_string()));
            }
        }
        self.changed.notify_all();
        done
    }

    /// Marks a tenant's slot `Closing` for the caller, once nobody but the
    /// open set holds its store (waiting for that, and for an opening or
    /// closing to end, up to [`SLOT_WAIT`]); hands over the open store.
    fn take_slot(&self, id: &TenantId) -> Result<Option<Arc<TenantStore>>> {
        let until = Instant::now() + SLOT_WAIT;
        let mut open = self.lock();
        let mut draining = false;
        let taken = loop {
            match open.slots.get(id) {
                Some(Slot::Open(o)) if Arc::strong_count(&o.store) == 1 => {
                    break Ok(Self::take_for_close(&mut open, id));
                }
                None | Some(Slot::Failed(_)) => {
                    open.slots.insert(id.clone(), Slot::Closing);
                    break Ok(None);
                }
                Some(slot) => {
                    // New users of an open store wait from now on.
                    if matches!(slot, Slot::Open(_)) && !draining {
                        *open.draining.entry(id.clone()).or_insert(0) += 1;
                        draining = true;
                    }
                    let now = Instant::now();
                    if now >= until {
                        break Err(StoreError::Unavailable(format!(
                            "tenant {id}: its store is in use; try again"
                        )));
                    }
                    *open.waiting.entry(id.clone()).or_insert(0) += 1;
                    open = self
                        .changed
                        .wait_timeout(open, (until - now).min(HOLDER_POLL))
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0);
                    if let Some(n) = open.waiting.get_mut(id) {
                        *n -= 1;
                        if *n == 0 {
                            open.waiting.remove(id);
                        }
                    }
                }
            }
        };
        if draining {
            if let Some(n) = open.draining.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    open.draining.remove(id);
                }
            }
            self.changed.notify_all();
        }
        taken
    }

    /// The store of a registered tenant if it has one on disk: `None` for a
    /// tenant that never stored anything (reading it needs no new database).
    pub fn tenant_if_exists(&self, id: &TenantId) -> Result<Option<Arc<TenantStore>>> {
        let opened = matches!(self.lock().slots.get(id), Some(Slot::Open(_)));
        if !opened && !self.tenant_dir(id).join("store").exists() {
            if self.central.tenant(id)?.is_none() {
                return Err(StoreError::UnknownTenant(id.to_string()));
            }
            return Ok(None);
        }
        self.tenant(id).map(Some)
    }

    fn open_store(&self, id: &TenantId) -> Result<Arc<TenantStore>> {
        let dir = self.tenant_dir(id);
        match TenantStore::open(
            id.clone(),
            &dir,
            self.cfg.cache_bytes_per_tenant,
            self.events.clone(),
            self.central.figure_board(),
        ) {
            Ok(store) => Ok(Arc::new(store)),
            // Locked by another process: nothing of ours to wait for.
            Err(e @ StoreError::Unavailable(_)) => Err(e),
            Err(e) => {
                // Failed after sled opened it (recovery, say): the instance
                // just dropped may hold the file lock a moment longer, and
                // the next attempt must not meet it.
                if let Err(w) = wait_released(&dir.join("store").join("db"), RELEASE_WAIT) {
                    tracing::error!(tenant = %id, error = %w, "a failed open left its lock behind");
                }
                Err(e)
            }
        }
    }

    /// Why a tenant's store cannot be used right now, if it cannot: it met
    /// an I/O error (it is reopened on the next request), or it could not
    /// be opened. Opens nothing.
    pub fn trouble(&self, id: &TenantId) -> Option<String> {
        match self.lock().slots.get(id) {
            Some(Slot::Open(o)) => o.store.trouble(),
            Some(Slot::Failed(e)) => Some(e.clone()),
            _ => None,
        }
    }

    /// What the tenants listing shows of one tenant, from the central
    /// store and the file system: no tenant store is opened.
    pub fn summary(&self, id: &TenantId, name: String) -> TenantSummary {
        let mut error = self.trouble(id);
        let figures = match self.central.figures(id) {
            Ok(f) => f.unwrap_or_default(),
            Err(e) => {
                error.get_or_insert_with(|| format!("figures unreadable: {e}"));
                TenantFigures::default()
            }
        };
        let mut stats = figures.stats;
        stats.disk_bytes = disk_bytes(&self.tenant_dir(id).join("store"));
        TenantSummary {
            id: id.clone(),
            name,
            stats,
            opt_ins: figures.opt_ins,
            last_import: figures.last_import.map(Box::new),
            error,
        }
    }

    fn lock(&self) -> MutexGuard<'_, OpenSet> {
        // A panic while holding this lock leaves the map consistent (every
        // mutation is a single insert/remove), so a poisoned lock is usable.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Beyond `max_open_tenants`, takes the least recently used stores
    /// nobody else holds out of the open set (marked closing) for the
    /// caller to close. A store in use is never closed under its user; the
    /// set stays over the limit until it is let go.
    fn over_limit(&self, open: &mut OpenSet, keep: &TenantId) -> Vec<(TenantId, Arc<TenantStore>)> {
        let max = self.cfg.max_open_tenants.max(1) as usize;
        let mut idle: Vec<(Instant, TenantId)> = open
            .slots
            .iter()
            .filter_map(|(id, s)| match s {
                Slot::Open(o) if id != keep && Arc::strong_count(&o.store) == 1 => {
                    Some((o.last_used, id.clone()))
                }
                _ => None,
            })
            .collect();
        let used = open
            .slots
            .values()
            .filter(|s| !matches!(s, Slot::Failed(_)))
            .count();
        let excess = used.saturating_sub(max).min(idle.len());
        idle.sort();
        idle.into_iter()
            .take(excess)
            .filter_map(|(_, id)| Self::take_for_close(open, &id).map(|s| (id, s)))
            .collect()
    }

    /// Marks an open slot closing and hands over its store.
    fn take_for_close(open: &mut OpenSet, id: &TenantId) -> Option<Arc<TenantStore>> {
        match open.slots.insert(id.clone(), Slot::Closing) {
            Some(Slot::Open(o)) => Some(o.store),
            Some(other) => {
                open.slots.insert(id.clone(), other);
                None
            }
            None => {
                open.slots.remove(id);
                None
            }
        }
    }

    /// Closes these stores; with `summarize`, first keeps the outbox
    /// summary of each whose kept one is behind its writes
    /// ([`Stores::keep_summary`]): the overview after a plan over more
    /// tenants than stay open opens none of those closed.
    fn close_slots(&self, victims: Vec<(TenantId, Arc<TenantStore>)>, summarize: bool) {
        if victims.is_empty() {
            return;
        }
        let results: Vec<(TenantId, Result<(), String>)> = victims
            .into_iter()
            .map(|(id, store)| {
                if summarize {
                    self.keep_summary(&id, &store);
                    self.keep_index(&id, &store);
                }
                let r = self.close_store(&id, store);
                (id, r)
            })
            .collect();
        let mut open = self.lock();
        for (id, r) in results {
            Self::closed(&mut open, &id, r);
        }
        self.changed.notify_all();
    }

    /// The slot of a store just closed: free; or failed, so that the
    /// listing keeps saying why until an open succeeds, when its file lock
    /// was never released or it was closed for an I/O error.
    fn closed(open: &mut OpenSet, id: &TenantId, r: Result<(), String>) {
        match r {
            Ok(()) => {
                open.slots.remove(id);
            }
            Err(e) => {
                open.slots.insert(id.clone(), Slot::Failed(e));
            }
        }
    }

    /// Flushes and drops a store whose only handle this is, then waits
    /// until sled has let go of its file, so that it can be opened again.
    /// `Err` says why the tenant is to be listed in trouble afterwards.
    fn close_store(&self, id: &TenantId, store: Arc<TenantStore>) -> Result<(), String> {
        let dir = store.dir().to_path_buf();
        let sealed = self.close_unsealed(id, store)?;
        // Nothing writes the files any more: what they are now is what the
        // standing written down stands on.
        if let Some(token) = sealed {
            seal::write(&dir, token);
        }
        Ok(())
    }

    /// Closes a store as [`Stores::close_store`] does, and returns the
    /// token of the standing it wrote down, for the caller to seal the
    /// files with once nothing writes them (`seal.rs`); `None`: nothing
    /// written down, or the close did not go cleanly.
    fn close_unsealed(
        &self,
        id: &TenantId,
        store: Arc<TenantStore>,
    ) -> Result<Option<u64>, String> {
        let mut trouble = store.trouble();
        if trouble.is_some() {
            // What was read of it may have been ahead of its disk, which
            // its next instance reads: nothing kept of its outbox (its
            // summary, dispatch's note of it) outlives this close.
            self.events.outbox_written(id);
        }
        let mut sealed = None;
        if trouble.is_none() {
            // What the next open may read back of the re-plan's standing:
            // only from a store nobody else holds (none can write after).
            if Arc::strong_count(&store) == 1 {
                match store.park() {
                    Ok(token) => sealed = token,
                    Err(e) => {
                        tracing::warn!(tenant = %id, error = %e, "cannot keep the planning standing across the close");
                    }
                }
            }
            if let Err(e) = store.flush() {
                tracing::warn!(tenant = %id, error = %e, "flush before close failed");
                sealed = None;
                // What was kept of it at this close (its summary, its
                // index) may be ahead of its disk now: counted as a write,
                // and the close says why.
                self.events.outbox_written(id);
                trouble = Some(
                    store
                        .trouble()
                        .unwrap_or_else(|| format!("flush before close failed: {e}")),
                );
            }
        }
        let lock_file = store.lock_file();
        if Arc::strong_count(&store) > 1 {
            // Only at shutdown: whoever still holds it closes it.
            return Ok(None);
        }
        drop(store);
        match wait_released(&lock_file, RELEASE_WAIT) {
            Ok(()) => {
                tracing::debug!(tenant = %id, "closed tenant store");
                trouble.map_or(Ok(sealed), Err)
            }
            Err(e) => {
                let msg = format!("{}: not released after closing: {e}", lock_file.display());
                tracing::error!(tenant = %id, "{msg}");
                Err(msg)
            }
        }
    }

    /// Closes tenant databases unused for `idle`, and those broken by an
    /// I/O error that nobody uses any more. Returns how many were closed.
    pub fn close_idle(&self, idle: Duration) -> usize {
        let mut open = self.lock();
        let now = Instant::now();
        let ids: Vec<TenantId> = open
            .slots
            .iter()
            .filter_map(|(id, s)| match s {
                Slot::Open(o)
                    if Arc::strong_count(&o.store) == 1
                        && (now.duration_since(o.last_used) >= idle
                            || o.store.trouble().is_some()) =>
                {
                    Some(id.clone())
                }
                _ => None,
            })
            .collect();
        let victims: Vec<(TenantId, Arc<TenantStore>)> = ids
            .into_iter()
            .filter_map(|id| Self::take_for_close(&mut open, &id).map(|s| (id, s)))
            .collect();
        drop(open);
        let n = victims.len();
        self.close_slots(victims, true);
        n
    }

    /// How many write groups `id`'s outbox has taken since the start
    /// ([`crate::events::Events::outbox_written`]); opens nothing.
    pub fn outbox_writes(&self, id: &TenantId) -> u64 {
        self.events.outbox_writes(id)
    }

    /// What the overview and `dispatch status` show of `id`'s outbox, with
    /// `day`'s sent emails: kept from the last read while the outbox was
    /// not written since and the day is the same, else read from its store
    /// (opened if need be) and kept.
    pub fn outbox_summary(&self, id: &TenantId, day: Date) -> Result<Arc<OutboxSummary>> {
        // The count is read before the store is: a write meanwhile makes
        // the kept summary older than its count says, never newer.
        let kept = |writes| {
            // A store in trouble says so, however little changed.
            self.trouble(id)
                .is_none()
                .then(|| self.summaries.get(id, writes, day))
                .flatten()
        };
        if let Some(kept) = kept(self.outbox_writes(id)) {
            return Ok(kept);
        }
        // One reader of this tenant's at a time: whoever waited finds what
        // the one before read, and does not read the same store again.
        self.summaries.in_turn(id, || {
            let writes = self.outbox_writes(id);
            if let Some(kept) = kept(writes) {
                return Ok(kept);
            }
            let read = Arc::new(OutboxSummary::read(&*self.tenant(id)?, day)?);
            self.summaries.put(id, writes, day, read.clone());
            Ok(read)
        })
    }

    /// Reads and keeps the outbox summary of an open store about to close,
    /// for today, when one was asked for before (someone looks at the
    /// overview) and the one kept is behind; not for a store in trouble.
    /// Reading it costs a scan of the outbox (its index), so a daemon
    /// nobody looks at does not pay for it at every close.
    fn keep_summary(&self, id: &TenantId, store: &TenantStore) {
        let writes = self.outbox_writes(id);
        let today = Date::today();
        if store.trouble().is_some() || !self.summaries.behind(id, writes, today) {
            return;
        }
        match OutboxSummary::read(store, today) {
            Ok(read) => self.summaries.put(id, writes, today, Arc::new(read)),
            Err(e) => {
                tracing::warn!(tenant = %id, error = %e, "cannot keep the outbox summary across the close");
            }
        }
    }

    /// Keeps the outbox index of an open store about to close, if it has
    /// one (a listing, the overview or `dispatch status` built it) and is
    /// not in trouble; else drops one kept before that is behind. Room is
    /// made first from kept indexes that are behind their outbox.
    fn keep_index(&self, id: &TenantId, store: &TenantStore) {
        let writes = self.outbox_writes(id);
        match store.take_index() {
            Some(index) if store.trouble().is_none() => {
                self.indexes
                    .put(id, writes, index, kept_index::BUDGET, |t| {
                        self.outbox_writes(t)
                    })
            }
            _ => self.indexes.forget_behind(id, writes),
        }
    }

    /// `f` on `id`'s outbox index without its recipients' texts (a listing
    /// without free text): the open store's; else the one kept from its
    /// close while its outbox was not written since, the store unopened;
    /// else the store's, opened. `None`: a tenant that never stored
    /// anything.
    pub fn with_outbox_index<R>(
        &self,
        id: &TenantId,
        f: impl FnOnce(&index::OutboxIndex) -> R,
    ) -> Result<Option<R>> {
        // Closed, and not failed: no slot at all. An open store (one in
        // trouble too, which is opened again) answers as it always does.
        let closed = !self.lock().slots.contains_key(id);
        if closed {
            // The count before the look: a write meanwhile leaves what is
            // kept behind it, and the next look reads the store.
            let writes = self.outbox_writes(id);
            if let Some(index) = self.indexes.get(id, writes) {
                return Ok(Some(f(&index)));
            }
        }
        match self.tenant_if_exists(id)? {
            Some(store) => store.with_index_unnamed(f).map(Some),
            None => Ok(None),
        }
    }

    /// Heap bytes of the outbox indexes kept for closed stores.
    pub fn kept_index_bytes(&self) -> usize {
        self.indexes.bytes()
    }

    /// Tenant databases open (or being opened or closed) now.
    pub fn open_count(&self) -> usize {
        self.lock()
            .slots
            .values()
            .filter(|s| !matches!(s, Slot::Failed(_)))
            .count()
    }

    /// Like [`Stores::open_count`], of the tenants for which `counted` holds.
    pub fn open_count_of(&self, counted: impl Fn(&TenantId) -> bool) -> usize {
        self.lock()
            .slots
            .iter()
            .filter(|(id, s)| !matches!(s, Slot::Failed(_)) && counted(id))
            .count()
    }

    /// Requests waiting for this tenant's store (being opened or closed).
    #[cfg(test)]
    fn waiting_for(&self, id: &TenantId) -> usize {
        self.lock().waiting.get(id).copied().unwrap_or(0)
    }

    #[cfg(test)]
    fn closing(&self, id: &TenantId) -> bool {
        matches!(self.lock().slots.get(id), Some(Slot::Closing))
    }

    pub fn max_open(&self) -> usize {
        self.cfg.max_open_tenants as usize
    }

    fn open_stores(&self) -> Vec<Arc<TenantStore>> {
        self.lock()
            .slots
            .values()
            .filter_map(|s| match s {
                Slot::Open(o) => Some(o.store.clone()),
                _ => None,
            })
            .collect()
    }

    /// Flushes every open database with unflushed writes, and the central
    /// one; brings the central figures of changed tenants up to date. One
    /// tenant's failure does not keep the others from being flushed: the
    /// first error is returned after all were tried.
    pub fn flush_dirty(&self) -> Result<()> {
        let mut first = None;
        for s in self.open_stores() {
            if s.trouble().is_some() {
                continue;
            }
            if let Err(e) = s.flush_if_dirty() {
                tracing::error!(tenant = %s.id(), error = %e, "flush failed");
                first.get_or_insert(e);
            }
            s.publish_figures_if_due();
        }
        let central = self.central.flush();
        match first {
            Some(e) => Err(e),
            None => central,
        }
    }

    /// Brings a tenant's figures in the central store up to date from its
    /// store (opening it), for figures that may lag: after an unclean stop,
    /// or never written (a state directory from before they existed).
    pub fn refresh_figures(&self, id: &TenantId) -> Result<()> {
        self.tenant(id)?.publish_figures()
    }

    /// Flushes and closes everything (shutdown).
    pub fn close_all(&self) -> Result<()> {
        let mut open = self.lock();
        let ids: Vec<TenantId> = open
            .slots
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Open(_)))
            .map(|(id, _)| id.clone())
            .collect();
        let victims: Vec<(TenantId, Arc<TenantStore>)> = ids
            .into_iter()
            .filter_map(|id| Self::take_for_close(&mut open, &id).map(|s| (id, s)))
            .collect();
        drop(open);
        for (_, s) in &victims {
            s.publish_figures_if_due();
        }
        // A store someone still holds (work that outlived the drain) stays
        // `Closing`: a late request waits instead of opening it a second
        // time against its own lock, and the stop is not recorded as clean,
        // so the next start refreshes the figures.
        let (free, held): (Vec<_>, Vec<_>) = victims
            .into_iter()
            .partition(|(_, s)| Arc::strong_count(s) == 1);
        for (id, s) in &held {
            if let Err(e) = s.flush() {
                tracing::warn!(tenant = %id, error = %e, "flush of a store still in use at shutdown failed");
            }
            tracing::warn!(tenant = %id, "tenant store still in use at shutdown; left to its holder");
        }
        self.close_slots(free, false);
        if held.is_empty() {
            self.central.mark_stopped()
        } else {
            Ok(())
        }
    }
}

/// Leaves no slot `Opening` for ever should opening a store panic.
struct OpeningGuard<'a> {
    stores: &'a Stores,
    id: &'a TenantId,
    armed: bool,
}

impl Drop for OpeningGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut open = self.stores.lock();
            open.slots.insert(
                self.id.clone(),
                Slot::Failed("opening the store failed unexpectedly".into()),
            );
            self.stores.changed.notify_all();
        }
    }
}

/// Bytes of the files under `dir` (a tenant's database), without opening
/// it and without following symlinks.
fn disk_bytes(dir: &Path) -> u64 {
    fn walk(dir: &Path, depth: u32) -> u64 {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return 0;
        };
        rd.flatten()
            .map(|e| match e.path().symlink_metadata() {
                Ok(m) if m.is_dir() && depth < 4 => walk(&e.path(), depth + 1),
                Ok(m) if m.is_file() => m.len(),
                _ => 0,
            })
            .sum()
    }
    walk(dir, 0)
}

#[cfg(test)]
mod tests;

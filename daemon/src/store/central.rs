//! The agency-level database: the tenant registry, the audit log, and the
//! brand material with its proposals (`material.rs`). Later: pooled
//! aggregates. Never holds a dealer's customer data.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use touchpoint_common::codec::{decode_record, encode_record};
use touchpoint_common::domain::{ImportReport, TenantStats, Timestamp};
use touchpoint_common::protocol::{AuditEntry, OptIns, Pause, RetentionRun, Topic};
use touchpoint_common::TenantId;

use super::error::{Result, StoreError};
use super::files::{remove_unfinished_snapshots, sled_err, wait_released, RELEASE_WAIT};
use crate::events::{Audience, Events};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub id: TenantId,
    pub name: String,
    pub registered_at: Timestamp,
}

/// What the tenants listing shows of one tenant: kept in the central store
/// by the tenant's store at every write that changes it, so that listing
/// hundreds of tenants opens none of their databases. Counts and the last
/// import's outcome only: no customer data (the last import goes without
/// its row errors, which quote the file).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantFigures {
    /// `disk_bytes` is not kept: it is read from the file system.
    pub stats: TenantStats,
    pub opt_ins: OptIns,
    pub last_import: Option<ImportReport>,
}

/// [`TenantFigures`] as the version before wrote them (its last import
/// without warnings, parked vehicles and stale records): read so that the
/// listing keeps them.
#[derive(Deserialize)]
struct TenantFiguresV3 {
    stats: TenantStats,
    opt_ins: OptIns,
    last_import: Option<touchpoint_common::domain::ImportReportV3>,
}

impl From<TenantFiguresV3> for TenantFigures {
    fn from(f: TenantFiguresV3) -> Self {
        Self {
            stats: f.stats,
            opt_ins: f.opt_ins,
            last_import: f.last_import.map(Into::into),
        }
    }
}

/// [`TenantFigures`] as an earlier version wrote them (its last import
/// without what a re-export corrected, its tally without the unrecognised
/// visit types): read so that the listing keeps them.
#[derive(Deserialize)]
struct TenantFiguresV2 {
    stats: TenantStats,
    opt_ins: OptIns,
    last_import: Option<touchpoint_common::domain::ImportReportV2>,
}

impl From<TenantFiguresV2> for TenantFigures {
    fn from(f: TenantFiguresV2) -> Self {
        Self {
            stats: f.stats,
            opt_ins: f.opt_ins,
            last_import: f.last_import.map(Into::into),
        }
    }
}

/// [`TenantFigures`] as an earlier version wrote them (its last import
/// without the response counts): read so that the listing keeps them.
#[derive(Deserialize)]
struct TenantFiguresV1 {
    stats: TenantStats,
    opt_ins: OptIns,
    last_import: Option<touchpoint_common::domain::ImportReportV1>,
}

impl From<TenantFiguresV1> for TenantFigures {
    fn from(f: TenantFiguresV1) -> Self {
        Self {
            stats: f.stats,
            opt_ins: f.opt_ins,
            last_import: f.last_import.map(Into::into),
        }
    }
}

/// Where a tenant's store writes its figures.
#[derive(Clone)]
pub(super) struct FigureBoard {
    central: Arc<Central>,
}

impl FigureBoard {
    pub(super) fn put(&self, id: &TenantId, figures: &TenantFigures) -> Result<()> {
        let bytes = encode_record(figures).map_err(|source| StoreError::Codec {
            tree: "figures",
            source,
        })?;
        let c = self.central.db()?;
        c.figures
            .insert(id.as_str(), bytes)
            .map_err(self.central.fail())?;
        Ok(())
    }
}

/// The central database and its trees, as one open instance.
pub(super) struct CentralDb {
    db: sled::Db,
    tenants: sled::Tree,
    figures: sled::Tree,
    audit: sled::Tree,
    pub(super) settings: sled::Tree,
    /// Brand material: template heads and versions (see `material.rs`).
    pub(super) templates: sled::Tree,
    /// Proposed changes of brand material by id.
    pub(super) proposals: sled::Tree,
}

impl CentralDb {
    fn open(path: &Path, cache_bytes: u64) -> Result<Self> {
        let err = sled_err(path);
        // An instance of this process closed just before (a restart in the
        // same process) may hold the file lock a moment longer while sled's
        // threads end; another process's lock stays, and then nothing here
        // is touched (its unfinished snapshot is its own).
        if let Err(e) = wait_released(&path.join("db"), OPEN_WAIT) {
            return Err(StoreError::Unavailable(format!(
                "{}: the database is locked ({e}): is another touchpointd running on this state directory?",
                path.display()
            )));
        }
        remove_unfinished_snapshots(path);
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .flush_every_ms(None)
            .open()
            .map_err(&err)?;
        super::schema::prepare(&db, path, super::schema::CENTRAL_STEPS)?;
        Ok(Self {
            tenants: db.open_tree("tenants").map_err(&err)?,
            figures: db.open_tree("figures").map_err(&err)?,
            audit: db.open_tree("audit").map_err(&err)?,
            settings: db.open_tree("settings").map_err(&err)?,
            templates: db.open_tree("templates").map_err(&err)?,
            proposals: db.open_tree("proposals").map_err(&err)?,
            db,
        })
    }
}

/// How long opening the central database waits for its file lock.
const OPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Free bytes the central database's file system needs before a broken
/// instance is dropped to be reopened.
const REOPEN_ROOM: u64 = 4 << 20;

// The casts matter on 32-bit targets, where these are narrower.
#[allow(clippy::unnecessary_cast)]
fn room_to_reopen(path: &Path) -> bool {
    match nix::sys::statvfs::statvfs(path) {
        Ok(st) => {
            (st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64) >= REOPEN_ROOM
        }
        // Cannot tell: try.
        Err(_) => true,
    }
}

/// The agency-level store. Like a tenant's store, its database is taken out
/// of service by an I/O error (a full disk) and opened afresh on the next
/// use once nobody uses the old instance: the audit log and the registry
/// work again as soon as space returns, without a restart.
pub struct Central {
    path: PathBuf,
    cache_bytes: u64,
    pub(super) events: Arc<Events>,
    /// `None` while it could not be reopened.
    cur: Mutex<Option<Arc<CentralDb>>>,
    /// Why the current instance is out of service.
    broken: Mutex<Option<String>>,
}

const PAUSES: &[u8] = b"dispatch_pauses";
/// Central settings key present while a daemon has the stores open.
const RUNNING: &[u8] = b"stores_open";
/// Central settings key of the learned lead times and send slots.
const LEARNED: &[u8] = b"learned";
/// The last retention run (`RetentionRun`).
const RETENTION: &[u8] = b"retention_run";

/// How long a use of the central store waits for the other users of an
/// instance broken by an I/O error to let go of it.
const BROKEN_HELD_WAIT: Duration = Duration::from_secs(5);

/// How long a copy of the central store waits for the uses under way.
const SNAPSHOT_HELD_WAIT: Duration = Duration::from_secs(30);

impl Central {
    pub(super) fn open(path: &Path, cache_bytes: u64, events: Arc<Events>) -> Result<Self> {
        if let Some(parent) = path.parent() {
            super::rewrite::before_open_named(parent, super::rewrite::CENTRAL_REWRITE)?;
        }
        let db = CentralDb::open(path, cache_bytes)?;
        Ok(Self {
            path: path.to_path_buf(),
            cache_bytes,
            events,
            cur: Mutex::new(Some(Arc::new(db))),
            broken: Mutex::new(None),
        })
    }

    /// The open instance; reopened first when an I/O error took the last
    /// one out of service. Callers hold it for one operation and never
    /// call back into `Central` while they do (a reopen waits for them).
    pub(super) fn db(&self) -> Result<Arc<CentralDb>> {
        let mut cur = self.cur.lock().unwrap_or_else(|e| e.into_inner());
        let why = self
            .broken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(why) = why else {
            return cur
                .clone()
                .ok_or_else(|| StoreError::Unavailable("the central store is not open".into()));
        };
        if let Some(old) = cur.as_ref() {
            // sled writes a snapshot when it opens a database: on a disk
            // still full the instance dropped for a reopen would not come
            // back, and nothing central (the registry every request checks)
            // could be read. Until there is room, the broken instance
            // serves reads; its writes fail.
            if !room_to_reopen(&self.path) {
                return Ok(old.clone());
            }
        }
        if let Some(old) = cur.take() {
            let deadline = Instant::now() + BROKEN_HELD_WAIT;
            while Arc::strong_count(&old) > 1 {
                if Instant::now() >= deadline {
                    *cur = Some(old);
                    return Err(StoreError::Unavailable(format!(
                        "the central store is being reopened after an I/O error ({why}) and is still in use; try again"
                    )));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            drop(old);
            wait_released(&self.path.join("db"), RELEASE_WAIT).map_err(|source| {
                StoreError::Io {
                    path: self.path.join("db").display().to_string(),
                    source,
                }
            })?;
        }
        let db = Arc::new(CentralDb::open(&self.path, self.cache_bytes)?);
        tracing::warn!("central store reopened after an I/O error");
        *self.broken.lock().unwrap_or_else(|e| e.into_inner()) = None;
        *cur = Some(db.clone());
        Ok(db)
    }

    /// Copies the central database into a new one at `to` (a backup), with
    /// no other user meanwhile: the instance is held here, so uses of the
    /// central store wait until the copy is done; the ones under way are
    /// let finish first (up to [`SNAPSHOT_HELD_WAIT`]).
    pub(super) fn snapshot(&self, to: &Path) -> Result<super::snapshot::TreeCounts> {
        let cur = self.cur.lock().unwrap_or_else(|e| e.into_inner());
        let db = self.held_alone(&cur, "copied")?;
        super::snapshot::copy_trees(&db.db, to, None)
    }

    /// With `cur` (the lock) held: the instance in service once nobody
    /// else holds it; the uses under way are let finish first (up to
    /// [`SNAPSHOT_HELD_WAIT`]), new ones wait on the lock. `what` the
    /// caller does with it, for the errors ("copied").
    fn held_alone<'a>(
        &self,
        cur: &'a Option<Arc<CentralDb>>,
        what: &str,
    ) -> Result<&'a Arc<CentralDb>> {
        if let Some(why) = self
            .broken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Err(StoreError::Unavailable(format!(
                "the central store is out of service after an I/O error ({why}); not {what}"
            )));
        }
        let db = cur
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("the central store is not open".into()))?;
        let deadline = Instant::now() + SNAPSHOT_HELD_WAIT;
        while Arc::strong_count(db) > 1 {
            if Instant::now() >= deadline {
                return Err(StoreError::Unavailable(format!(
                    "the central store stayed in use; not {what}, try again"
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(db)
    }

    /// Rewrites the central database into a fresh one (`rewrite.rs`), so
    /// that values replaced or removed (a person's numbers in audit lines,
    /// pruned lines) are gone from its files too. The instance is held
    /// here as for a copy ([`Central::snapshot`]): uses wait, the ones
    /// under way are let finish first; then it is closed, rewritten and
    /// opened again. A kill at any point leaves the database whole.
    pub(super) fn rewrite(&self) -> Result<()> {
        let mut cur = self.cur.lock().unwrap_or_else(|e| e.into_inner());
        self.held_alone(&cur, "rewritten")?;
        let Some(db) = cur.take() else {
            return Err(StoreError::Unavailable(
                "the central store is not open".into(),
            ));
        };
        let flushed = db.db.flush().map_err(self.fail());
        drop(db);
        let db_file = self.path.join("db");
        let rewritten = flushed.and_then(|_| {
            wait_released(&db_file, RELEASE_WAIT).map_err(|source| StoreError::Io {
                path: db_file.display().to_string(),
                source,
            })?;
            let (Some(parent), Some(name)) = (self.path.parent(), self.path.file_name()) else {
                return Err(StoreError::Conflict(format!(
                    "{}: no folder to rewrite the central store in",
                    self.path.display()
                )));
            };
            super::rewrite::rewrite_named(parent, &name.to_string_lossy(), None)
        });
        // Whatever happened, the database at its path is whole: open it.
        let reopened = CentralDb::open(&self.path, self.cache_bytes);
        match reopened {
            Ok(db) => *cur = Some(Arc::new(db)),
            Err(e) => {
                tracing::error!(error = %e, "the central store did not open again after its rewrite");
                *self.broken.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
                return Err(e);
            }
        }
        rewritten
    }

    /// Maps a sled error; an I/O error (or worse) takes the instance out of
    /// service: its memory may be ahead of its disk.
    pub(super) fn fail(&self) -> impl Fn(sled::Error) -> StoreError + '_ {
        move |source| {
            if !matches!(
                source,
                sled::Error::CollectionNotFound(_) | sled::Error::Unsupported(_)
            ) {
                let mut b = self.broken.lock().unwrap_or_else(|e| e.into_inner());
                if b.is_none() {
                    tracing::error!(error = %source, "central store taken out of service; it is reopened on its next use");
                    *b = Some(source.to_string());
                }
            }
            StoreError::Sled {
                path: "central".into(),
                source,
            }
        }
    }

    pub fn flush(&self) -> Result<()> {
        let c = self.db()?;
        self.flush_db(&c)
    }

    pub(super) fn flush_db(&self, c: &CentralDb) -> Result<()> {
        c.db.flush().map_err(self.fail())?;
        Ok(())
    }

    /// Registers a tenant or updates its display name. Returns true if it is new.
    pub fn register_tenant(&self, id: &TenantId, name: &str) -> Result<bool> {
        let existing = self.tenant(id)?;
        if let Some(t) = &existing {
            if t.name == name {
                return Ok(false);
            }
        }
        let rec = TenantRecord {
            id: id.clone(),
            name: name.to_string(),
            registered_at: existing
                .as_ref()
                .map(|t| t.registered_at)
                .unwrap_or_else(Timestamp::now),
        };
        let bytes = encode_record(&rec).map_err(|source| StoreError::Codec {
            tree: "tenants",
            source,
        })?;
        let c = self.db()?;
        c.tenants.insert(id.as_str(), bytes).map_err(self.fail())?;
        self.flush_db(&c)?;
        Ok(existing.is_none())
    }

    /// Takes a tenant out of the registry, with its figures (a dealer who
    /// left, `touchpoint erase-tenant`). The audit log keeps its lines.
    pub fn unregister_tenant(&self, id: &TenantId) -> Result<bool> {
        let c = self.db()?;
        let was = c.tenants.remove(id.as_str()).map_err(self.fail())?;
        c.figures.remove(id.as_str()).map_err(self.fail())?;
        self.flush_db(&c)?;
        Ok(was.is_some())
    }

    pub fn tenant(&self, id: &TenantId) -> Result<Option<TenantRecord>> {
        self.db()?
            .tenants
            .get(id.as_str())
            .map_err(self.fail())?
            .map(|b| {
                decode_record(&b).map_err(|source| StoreError::Codec {
                    tree: "tenants",
                    source,
                })
            })
            .transpose()
    }

    /// All registered tenants in id order.
    pub fn tenants(&self) -> Result<Vec<TenantRecord>> {
        self.db()?
            .tenants
            .iter()
            .values()
            .map(|r| {
                r.map_err(self.fail()).and_then(|b| {
                    decode_record(&b).map_err(|source| StoreError::Codec {
                        tree: "tenants",
                        source,
                    })
                })
            })
            .collect()
    }

    /// A tenant's figures as its store last wrote them.
    pub fn figures(&self, id: &TenantId) -> Result<Option<TenantFigures>> {
        self.db()?
            .figures
            .get(id.as_str())
            .map_err(self.fail())?
            .map(|b| {
                decode_record(&b)
                    .or_else(|e| {
                        decode_record::<TenantFiguresV3>(&b)
                            .map(Into::into)
                            .or_else(|_| decode_record::<TenantFiguresV2>(&b).map(Into::into))
                            .or_else(|_| decode_record::<TenantFiguresV1>(&b).map(Into::into))
                            .map_err(|_| e)
                    })
                    .map_err(|source| StoreError::Codec {
                        tree: "figures",
                        source,
                    })
            })
            .transpose()
    }

    pub(super) fn figure_board(self: &Arc<Self>) -> FigureBoard {
        FigureBoard {
            central: self.clone(),
        }
    }

    /// Records durably that the stores are open. True when they were
    /// already: the previous run ended without closing them.
    pub(super) fn mark_running(&self) -> Result<bool> {
        let c = self.db()?;
        let was = c
            .settings
            .insert(RUNNING, &[1u8])
            .map_err(self.fail())?
            .is_some();
        self.flush_db(&c)?;
        Ok(was)
    }

    /// Records durably that the stores were closed in order.
    pub(super) fn mark_stopped(&self) -> Result<()> {
        let c = self.db()?;
        c.settings.remove(RUNNING).map_err(self.fail())?;
        self.flush_db(&c)
    }

    /// A record of the `settings` tree, as stored.
    fn setting<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        self.db()?
            .settings
            .get(key)
            .map_err(self.fail())?
            .map(|b| {
                decode_record(&b).map_err(|source| StoreError::Codec {
                    tree: "settings",
                    source,
                })
            })
            .transpose()
    }

    /// Replaces a record of the `settings` tree, durably.
    fn set_setting<T: serde::Serialize + ?Sized>(&self, key: &[u8], value: &T) -> Result<()> {
        let bytes = encode_record(value).map_err(|source| StoreError::Codec {
            tree: "settings",
            source,
        })?;
        let c = self.db()?;
        c.settings.insert(key, bytes).map_err(self.fail())?;
        self.flush_db(&c)
    }

    /// Dispatch pauses in force (they outlive a restart).
    pub fn pauses(&self) -> Result<Vec<Pause>> {
        Ok(self.setting(PAUSES)?.unwrap_or_default())
    }

    /// Replaces the pauses in force, durably. `changed`: the tenant whose
    /// pause was set or lifted (`None`: a pause of every tenant), so that
    /// only those who may see it hear of it.
    pub fn set_pauses(&self, pauses: &[Pause], changed: Option<&TenantId>) -> Result<()> {
        self.set_setting(PAUSES, pauses)?;
        self.events.publish(&[Topic::Dispatch], changed);
        Ok(())
    }

    /// The learned state (`crate::learning`), as last stored.
    pub fn learned(&self) -> Result<Option<touchpoint_common::learning::LearnedState>> {
        self.setting(LEARNED)
    }

    /// Replaces the learned state, durably (`crate::learning` is its one
    /// writer).
    pub fn set_learned(&self, state: &touchpoint_common::learning::LearnedState) -> Result<()> {
        self.set_setting(LEARNED, state)
    }

    /// Appends to the audit log, durably. The sequence number is assigned here.
    pub fn audit(&self, mut entry: AuditEntry) -> Result<u64> {
        let c = self.db()?;
        let generated = c.db.generate_id().map_err(self.fail())?;
        // A database copied into a new one (a rewrite, a restore) starts
        // sled's generator again from its beginning: the log's last line is
        // the floor, so that a sequence never goes back, and a line is only
        // ever added where none stands (a concurrent writer's taken place
        // moves it one on).
        let last = c
            .audit
            .last()
            .map_err(self.fail())?
            .and_then(|(k, _)| <[u8; 8]>::try_from(&k[..]).ok())
            .map(u64::from_be_bytes);
        let mut seq = last.map_or(generated, |l| generated.max(l + 1));
        loop {
            entry.seq = seq;
            let bytes = encode_record(&entry).map_err(|source| StoreError::Codec {
                tree: "audit",
                source,
            })?;
            let added = c
                .audit
                .compare_and_swap(seq.to_be_bytes(), None as Option<&[u8]>, Some(bytes))
                .map_err(self.fail())?;
            if added.is_ok() {
                break;
            }
            seq += 1;
        }
        self.flush_db(&c)?;
        drop(c);
        // An entry about no tenant is shown to a narrower scope only if it
        // is the user's own (as the `Audit` request reads them).
        let audience = match &entry.tenant {
            Some(t) => Audience::Tenant(t.clone()),
            None => Audience::ScopeOverAllAnd(entry.uid),
        };
        self.events.publish_to(&[Topic::Audit], audience);
        Ok(seq)
    }

    /// Removes the audit lines written before `before` (retention, brand
    /// `[retention] audit_months`), durably; returns how many went.
    pub fn prune_audit(&self, before: Timestamp) -> Result<u64> {
        self.rewrite_audit(|e| (e.at >= before).then_some(e))
    }

    /// Rewrites every audit line through `f`: `None` removes it, a changed
    /// entry replaces it (same sequence number), durably; returns how many
    /// lines were removed or changed.
    pub fn rewrite_audit(&self, f: impl Fn(AuditEntry) -> Option<AuditEntry>) -> Result<u64> {
        let c = self.db()?;
        let mut n = 0;
        for kv in c.audit.iter() {
            let (k, v) = kv.map_err(self.fail())?;
            let entry: AuditEntry = decode_record(&v).map_err(|source| StoreError::Codec {
                tree: "audit",
                source,
            })?;
            let before = entry.clone();
            match f(entry) {
                None => {
                    c.audit.remove(k).map_err(self.fail())?;
                }
                Some(e) if e == before => continue,
                Some(e) => {
                    let bytes = encode_record(&e).map_err(|source| StoreError::Codec {
                        tree: "audit",
                        source,
                    })?;
                    c.audit.insert(k, bytes).map_err(self.fail())?;
                }
            }
            n += 1;
        }
        if n > 0 {
            self.flush_db(&c)?;
            drop(c);
            self.events
                .publish_to(&[Topic::Audit], Audience::ScopeOverAll);
        }
        Ok(n)
    }

    /// The last retention run, as stored (`crate::retention`).
    pub fn retention_run(&self) -> Result<Option<RetentionRun>> {
        self.setting(RETENTION)
    }

    /// Stores what the last retention run did, durably.
    pub fn set_retention_run(&self, run: &RetentionRun) -> Result<()> {
        self.set_setting(RETENTION, run)
    }

    /// Newest first: up to `limit` entries for which `keep` holds, looking
    /// at no more than `max_scan` entries (a filter that matches little on a
    /// long log answers with what it found, not after reading all of it).
    pub fn audit_search(
        &self,
        limit: usize,
        max_scan: usize,
        mut keep: impl FnMut(&AuditEntry) -> bool,
    ) -> Result<Vec<AuditEntry>> {
        let mut out = Vec::new();
        let c = self.db()?;
        for v in c.audit.iter().values().rev().take(max_scan) {
            let e: AuditEntry =
                decode_record(&v.map_err(self.fail())?).map_err(|source| StoreError::Codec {
                    tree: "audit",
                    source,
                })?;
            if keep(&e) {
                out.push(e);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Newest first, optionally only entries about one tenant.
    pub fn audit_log(&self, tenant: Option<&TenantId>, limit: usize) -> Result<Vec<AuditEntry>> {
        let mut out = Vec::new();
        let c = self.db()?;
        for v in c.audit.iter().values().rev() {
            let e: AuditEntry =
                decode_record(&v.map_err(self.fail())?).map_err(|source| StoreError::Codec {
                    tree: "audit",
                    source,
                })?;
            if tenant.is_none() || e.tenant.as_ref() == tenant {
                out.push(e);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}

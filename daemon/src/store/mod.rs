//! Sealed data rooms: one sled database per tenant, one central database for
//! agency-level data.
//!
//! Layout under the state directory:
//! ```text
//! <state>/central/            tenant registry, audit log, brand material
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

mod central;
mod dispatch;
mod import_txn;
pub mod index;
mod material;
mod outbox;
mod tenant;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use touchpoint_common::codec::CodecError;
use touchpoint_common::config::StoresConfig;
use touchpoint_common::TenantId;

pub use central::{Central, TenantRecord};
pub use dispatch::{Change, LedgerDelta};
pub use import_txn::{ImportTxn, STAGING_FILE};
pub use outbox::{Contact, PlanWrite};
pub use tenant::TenantStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Sled {
        path: String,
        #[source]
        source: sled::Error,
    },
    #[error("corrupt record in {tree}: {source}")]
    Codec {
        tree: &'static str,
        #[source]
        source: CodecError,
    },
    #[error("unknown tenant {0:?}: no dealer policy registers it")]
    UnknownTenant(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The set of stores under one state directory.
pub struct Stores {
    root: PathBuf,
    cfg: StoresConfig,
    central: Central,
    open: Mutex<OpenSet>,
    events: Arc<crate::events::Events>,
}

#[derive(Default)]
struct OpenSet {
    map: HashMap<TenantId, Open>,
    /// Handles evicted while someone still held them: reused if asked for
    /// again before they drop, because sled refuses to open a database twice.
    retired: HashMap<TenantId, Weak<TenantStore>>,
}

struct Open {
    store: Arc<TenantStore>,
    last_used: Instant,
}

impl Stores {
    pub fn open(state_dir: &Path, cfg: &StoresConfig) -> Result<Self> {
        let root = state_dir.to_path_buf();
        let tenants = root.join("tenants");
        std::fs::create_dir_all(&tenants).map_err(|source| StoreError::Io {
            path: tenants.display().to_string(),
            source,
        })?;
        let events = Arc::new(crate::events::Events::new());
        let central = Central::open(
            &root.join("central"),
            cfg.cache_bytes_central,
            events.clone(),
        )?;
        Ok(Self {
            root,
            cfg: cfg.clone(),
            central,
            open: Mutex::new(OpenSet::default()),
            events,
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

    /// The store of a registered tenant, opened if needed.
    pub fn tenant(&self, id: &TenantId) -> Result<Arc<TenantStore>> {
        if self.central.tenant(id)?.is_none() {
            return Err(StoreError::UnknownTenant(id.to_string()));
        }
        let mut open = self.lock();
        if let Some(o) = open.map.get_mut(id) {
            o.last_used = Instant::now();
            return Ok(o.store.clone());
        }
        let store = match open.retired.remove(id).and_then(|w| w.upgrade()) {
            Some(store) => store,
            None => Arc::new(TenantStore::open(
                id.clone(),
                &self.tenant_dir(id),
                self.cfg.cache_bytes_per_tenant,
                self.events.clone(),
            )?),
        };
        if open.map.len() >= self.cfg.max_open_tenants.max(1) as usize {
            Self::evict_lru(&mut open);
        }
        open.map.insert(
            id.clone(),
            Open {
                store: store.clone(),
                last_used: Instant::now(),
            },
        );
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, OpenSet> {
        // A panic while holding this lock leaves the map consistent (every
        // mutation is a single insert/remove), so a poisoned lock is usable.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn evict_lru(open: &mut OpenSet) {
        let victim = open
            .map
            .iter()
            .min_by_key(|(_, o)| o.last_used)
            .map(|(id, _)| id.clone());
        if let Some(id) = victim {
            if let Some(o) = open.map.remove(&id) {
                Self::retire(open, id, o.store);
            }
        }
    }

    fn retire(open: &mut OpenSet, id: TenantId, store: Arc<TenantStore>) {
        if let Err(e) = store.flush() {
            tracing::warn!(tenant = %id, error = %e, "flush before close failed");
        }
        if Arc::strong_count(&store) > 1 {
            open.retired.insert(id, Arc::downgrade(&store));
        } else {
            tracing::debug!(tenant = %id, "closed tenant store");
        }
        open.retired.retain(|_, w| w.strong_count() > 0);
    }

    /// Closes tenant databases unused for `idle`. Returns how many were closed.
    pub fn close_idle(&self, idle: Duration) -> usize {
        let mut open = self.lock();
        let now = Instant::now();
        let idle_ids: Vec<TenantId> = open
            .map
            .iter()
            .filter(|(_, o)| {
                now.duration_since(o.last_used) >= idle && Arc::strong_count(&o.store) == 1
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &idle_ids {
            if let Some(o) = open.map.remove(id) {
                Self::retire(&mut open, id.clone(), o.store);
            }
        }
        idle_ids.len()
    }

    pub fn open_count(&self) -> usize {
        self.lock().map.len()
    }

    pub fn max_open(&self) -> usize {
        self.cfg.max_open_tenants as usize
    }

    /// Flushes every open database with unflushed writes, and the central one.
    pub fn flush_dirty(&self) -> Result<()> {
        let stores: Vec<Arc<TenantStore>> =
            self.lock().map.values().map(|o| o.store.clone()).collect();
        for s in stores {
            s.flush_if_dirty()?;
        }
        self.central.flush()
    }

    /// Flushes and closes everything (shutdown).
    pub fn close_all(&self) -> Result<()> {
        let mut open = self.lock();
        let all: Vec<(TenantId, Open)> = open.map.drain().collect();
        for (id, o) in all {
            Self::retire(&mut open, id, o.store);
        }
        self.central.flush()
    }
}

pub(crate) fn sled_err(path: &Path) -> impl Fn(sled::Error) -> StoreError + '_ {
    move |source| StoreError::Sled {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests;

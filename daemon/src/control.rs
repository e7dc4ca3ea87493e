//! The control socket: a thin router over the capability modules.
//!
//! ```text
//! listener  accept, peer credentials checked before anything else, the
//!           connection limit, refusals counted per uid
//! session   the hello, then one request after another on a connection
//! route     role, limits and tenant scope, then one arm per request
//! feed      a connection turned change feed (Subscribe)
//! upload    a file sent in chunks, imported at its end
//! audit     what a state-changing request did, derived from the typed
//!           request and its answer; the `Audit` request reads it back
//! reply     errors as replies, frames on the wire
//! status, tenants, planning, outbox, dispatch, material
//!           one file per capability's requests: they call that
//!           capability's API and shape its answer, nothing more
//! ```
//!
//! A bad client can only hurt its own connection: frames are bounded before
//! they are buffered, decoding is bounded, a client that does not finish the
//! hello or goes silent is disconnected, and connections beyond the limit are
//! told so and closed. A peer without access never holds a connection slot.
//!
//! Must not: hold state of its own beyond connections (everything a request
//! reads or changes belongs to a capability module), or touch a store's
//! internals (it calls `Stores`/`TenantStore` methods in domain terms).

mod audit;
mod backup;
mod dispatch;
mod feed;
mod learning;
mod listener;
mod material;
mod outbox;
mod planning;
mod reply;
mod results;
mod rights;
mod route;
mod session;
mod status;
mod tenants;
mod upload;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use touchpoint_common::config::ControlConfig;
use touchpoint_common::domain::Timestamp;

pub use listener::run;

/// Writes the refusals still counted. The accept loop writes them when it
/// stops, but a connection accepted just before may be refused after that
/// (admission runs on its own task): called once every connection task
/// has ended, so that no counted refusal is lost from the audit log.
pub fn flush_refusals(ctx: &Ctx) {
    ctx.refusals.flush(ctx, true);
}

use crate::access::Access;
use crate::approvals::Material;
use crate::dispatch::Dispatcher;
use crate::import::Importer;
use crate::planner::Planning;
use crate::policy::PolicyHandle;
use crate::store::Stores;

/// What the control socket serves, each part owned by its capability.
pub struct Parts {
    pub stores: Arc<Stores>,
    pub importer: Arc<Importer>,
    pub erasure: Arc<crate::erasure::Erasure>,
    pub backups: Arc<crate::backup::Backups>,
    pub retention: Arc<crate::retention::Retention>,
    pub policies: Arc<PolicyHandle>,
    pub material: Arc<Material>,
    /// `None` when dispatch is off in the configuration.
    pub dispatch: Option<Arc<Dispatcher>>,
    pub planning: Arc<Planning>,
    pub access: Access,
    pub cfg: ControlConfig,
    pub socket_path: PathBuf,
}

/// Everything a request handler may call. Built whole, before the socket
/// serves.
pub struct Ctx {
    pub stores: Arc<Stores>,
    pub importer: Arc<Importer>,
    pub erasure: Arc<crate::erasure::Erasure>,
    pub backups: Arc<crate::backup::Backups>,
    pub retention: Arc<crate::retention::Retention>,
    pub policies: Arc<PolicyHandle>,
    pub material: Arc<Material>,
    pub dispatch: Option<Arc<Dispatcher>>,
    pub planning: Arc<Planning>,
    access: Access,
    cfg: ControlConfig,
    socket_path: PathBuf,
    started_at: Timestamp,
    connections: Connections,
    refusals: audit::Refusals,
}

impl Ctx {
    pub fn new(p: Parts) -> Self {
        Self {
            stores: p.stores,
            importer: p.importer,
            erasure: p.erasure,
            backups: p.backups,
            retention: p.retention,
            policies: p.policies,
            material: p.material,
            dispatch: p.dispatch,
            planning: p.planning,
            access: p.access,
            cfg: p.cfg,
            socket_path: p.socket_path,
            // Wall time: when this process really started.
            started_at: Timestamp::wall(),
            connections: Connections::default(),
            refusals: audit::Refusals::default(),
        }
    }
}

/// The connections being served, per uid: a caller whose scope is not
/// every tenant is shown only its own.
#[derive(Default)]
struct Connections {
    by_uid: Mutex<HashMap<u32, u64>>,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, u64>> {
        // Every change is one insert or remove: a poisoned map is whole.
        self.by_uid.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One more of `uid`'s connections is served until the guard drops.
    fn serve(&self, uid: u32) -> Served<'_> {
        *self.lock().entry(uid).or_insert(0) += 1;
        Served { of: self, uid }
    }

    fn total(&self) -> u64 {
        self.lock().values().sum()
    }

    fn of(&self, uid: u32) -> u64 {
        self.lock().get(&uid).copied().unwrap_or(0)
    }
}

/// A connection being served (see [`Connections::serve`]).
struct Served<'a> {
    of: &'a Connections,
    uid: u32,
}

impl Drop for Served<'_> {
    fn drop(&mut self) {
        let mut map = self.of.lock();
        if let Some(n) = map.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.uid);
            }
        }
    }
}

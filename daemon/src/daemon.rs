//! The daemon's lifecycle: start every subsystem on one shutdown token, run
//! until it fires, then drain in-flight work and flush the stores.
//!
//! Tests start a [`Daemon`] in-process on a temp socket and state dir exactly
//! as `main` does, so what they exercise is what ships.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use touchpoint_common::toml_file::ConfigError;

use crate::access::Access;
use crate::config::Resolved;
use crate::control::{self, Ctx};
use crate::import::{inbox, Importer};
use crate::policy::{self, Policies, PolicyHandle};
use crate::store::Stores;

pub struct Daemon {
    pub ctx: Arc<Ctx>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    /// How long shutdown waits for in-flight work (imports, requests) to
    /// finish (`stop_wait_secs`).
    drain: Duration,
}

impl Daemon {
    /// Opens the stores, loads the policies and starts serving on `listener`.
    pub async fn start(
        cfg: &Resolved,
        listener: UnixListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let stores_cfg = cfg.config.stores.clone();
        let state_dir = cfg.state_dir.clone();
        let stores = tokio::task::spawn_blocking(move || Stores::open(&state_dir, &stores_cfg))
            .await?
            .with_context(|| format!("cannot open the stores under {}", cfg.state_dir.display()))?;
        let stores = Arc::new(stores);
        audit_clock(&stores);
        clear_spool(&cfg.state_dir.join("spool"));
        // Brand material: the store's versions are in force (the brand file
        // too when the brand reviews it); the files seed what the store
        // does not know yet.
        let material = Arc::new(
            crate::approvals::Material::new(stores.clone()).with_policy_dir(cfg.policy_dir.clone()),
        );
        let over = brand_override(material.clone());
        let policies = policy::load_dir_with(&cfg.policy_dir, Some(&over)).map_err(|errs| {
            anyhow::anyhow!(
                "the policies in {} are invalid:\n{}",
                cfg.policy_dir.display(),
                join(&errs)
            )
        })?;
        register(&stores, &policies)?;
        let recovered = finish_recovered_imports(&stores, &policies).await;
        if recovered > 0 {
            tracing::info!(
                tenants = recovered,
                "recovered interrupted imports (rolled back, or completed with their identity passes)"
            );
        }
        refresh_figures(&stores, &policies).await;
        seed_material(&material, &policies);
        let policies = Arc::new(PolicyHandle::new(policies));
        policies.set_override(over);
        policies.set_events(stores.events().clone());
        let erasure = {
            let stores = stores.clone();
            let folders = vec![
                inbox::inbox_root(&cfg.state_dir),
                cfg.dispatch.spool.clone(),
                cfg.dispatch.letters.clone(),
                cfg.dispatch.calls.clone(),
            ];
            Arc::new(
                tokio::task::spawn_blocking(move || crate::erasure::Erasure::open(stores))
                    .await?
                    .context("cannot read the erasure key")?
                    .with_tenant_folders(folders)
                    .with_email_spool(cfg.dispatch.spool.clone())
                    .with_outputs(cfg.dispatch.letters.clone(), cfg.dispatch.calls.clone())
                    .with_archive(crate::erasure::outputs::Archive {
                        root: inbox::inbox_root(&cfg.state_dir),
                        folders: vec![inbox::DONE, inbox::FAILED],
                        report_suffix: inbox::REPORT_SUFFIX,
                    }),
            )
        };
        let importer = Arc::new(
            Importer::new(
                stores.clone(),
                policies.clone(),
                cfg.config.import.max_reported_errors as usize,
                Arc::new(crate::planner::history::Covered {
                    policies: policies.clone(),
                }),
            )
            .with_journeys(Arc::new(crate::planner::journey::Refresh {
                policies: policies.clone(),
            }))
            .with_erasure(erasure.clone()),
        );
        // Bound before dispatch starts: the links in its emails name the
        // address actually bound when `public_url` is not set.
        let http = match &cfg.http {
            Some(h) => {
                let listener = crate::http::bind(h).await?;
                let base = match &h.public_url {
                    Some(url) => url.clone(),
                    None => format!("http://{}", listener.local_addr()?),
                };
                tracing::info!(listen = %listener.local_addr()?, public_url = %base, "one-click unsubscribe served over HTTP");
                Some((listener, base, h.clone()))
            }
            None => None,
        };
        let dispatcher = if cfg.config.dispatch.enabled {
            let mut d = crate::dispatch::Dispatcher::new(
                stores.clone(),
                policies.clone(),
                &cfg.config.dispatch,
                cfg.dispatch.clone(),
            )
            .context("cannot start dispatch")?;
            if let Some((_, base, h)) = &http {
                d = d.with_one_click(base.clone());
                if let Some(url) = &h.public_url {
                    d = d.with_click_tracking(url.clone());
                }
            }
            Some(Arc::new(d.with_material(material.clone())))
        } else {
            None
        };
        let planning = Arc::new(crate::planner::Planning {
            learning: crate::learning::Learning::load(&stores),
            schedule: Default::default(),
        });
        let retention = Arc::new(crate::retention::Retention::new(
            erasure.clone(),
            policies.clone(),
        ));
        // Everything the socket serves is in place before it serves.
        let ctx = Arc::new(Ctx::new(control::Parts {
            stores: stores.clone(),
            importer: importer.clone(),
            erasure,
            backups: Arc::new(crate::backup::Backups::new(
                stores.clone(),
                vec![
                    (
                        crate::erasure::KEY_FILE.into(),
                        cfg.state_dir.join(crate::erasure::KEY_FILE),
                    ),
                    (
                        crate::backup::DISPATCH_KEY.into(),
                        cfg.dispatch.secret.clone(),
                    ),
                ],
            )),
            retention: retention.clone(),
            policies,
            material: material.clone(),
            dispatch: dispatcher.clone(),
            planning: planning.clone(),
            access: Access::new(cfg.config.access.clone()),
            cfg: cfg.config.control.clone(),
            socket_path: cfg.socket.clone(),
        }));

        let tracker = TaskTracker::new();
        if let Some(d) = dispatcher.clone() {
            tracker.spawn(d.run(shutdown.clone(), Duration::from_secs(30)));
        }
        if let (Some((listener, _, settings)), Some(d)) = (http, &dispatcher) {
            tracker.spawn(crate::http::run(
                listener,
                d.clone(),
                stores.clone(),
                settings,
                shutdown.clone(),
                tracker.clone(),
            ));
        }
        tracker.spawn(control::run(
            listener,
            ctx.clone(),
            shutdown.clone(),
            tracker.clone(),
        ));
        tracker.spawn(flusher(
            stores.clone(),
            Duration::from_millis(cfg.config.stores.flush_every_ms),
            shutdown.clone(),
        ));
        tracker.spawn(idle_closer(
            stores.clone(),
            Duration::from_secs(cfg.config.stores.idle_close_secs),
            shutdown.clone(),
        ));
        tracker.spawn(retention.run_daily(shutdown.clone()));
        tracker.spawn(crate::planner::run_schedule(
            stores.clone(),
            ctx.policies.clone(),
            planning,
            shutdown.clone(),
        ));
        tracker.spawn(policy::watch(
            ctx.policies.clone(),
            registrar(stores.clone(), Some(material.clone())),
            shutdown.clone(),
        ));
        if cfg.config.import.watch_inbox {
            tracker.spawn(inbox::run(
                importer,
                Duration::from_millis(cfg.config.import.settle_ms),
                shutdown.clone(),
            ));
        }
        Ok(Self {
            ctx,
            shutdown,
            tracker,
            drain: Duration::from_secs(cfg.config.stop_wait_secs),
        })
    }

    /// A handle that reloads the policies (SIGHUP) while the daemon runs.
    pub fn reloader(&self) -> Reloader {
        Reloader(self.ctx.clone())
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits for the shutdown token, lets in-flight work finish, flushes.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.shutdown.cancelled().await;
        self.tracker.close();
        if tokio::time::timeout(self.drain, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "in-flight work did not finish within {}s (stop_wait_secs); closing anyway",
                self.drain.as_secs()
            );
        }
        control::flush_refusals(&self.ctx);
        let stores = self.ctx.stores.clone();
        tokio::task::spawn_blocking(move || stores.close_all()).await??;
        tracing::info!("stores flushed and closed");
        Ok(())
    }
}

#[derive(Clone)]
pub struct Reloader(Arc<Ctx>);

impl Reloader {
    /// Re-reads the policy directory. On error the old policies stay in force.
    pub fn reload(&self) -> Result<(), Vec<ConfigError>> {
        self.0.policies.reload(registrar(
            self.0.stores.clone(),
            Some(self.0.material.clone()),
        ))?;
        Ok(())
    }
}

/// What every reload (SIGHUP or a changed file) does with a valid new set
/// before it takes effect: register its tenants, so that a request for a new
/// tenant never meets a policy without a registry entry.
fn registrar(
    stores: Arc<Stores>,
    material: Option<Arc<crate::approvals::Material>>,
) -> impl Fn(&Policies) -> Result<(), ConfigError> + Send + Sync + 'static {
    move |p| {
        register(&stores, p).map_err(|e| ConfigError {
            file: p.dir.display().to_string(),
            line: None,
            key: String::new(),
            message: e.to_string(),
        })?;
        if let Some(m) = &material {
            seed_material(m, p);
        }
        Ok(())
    }
}

/// Puts the approved brand text in place of `brand.toml` before the
/// policy files are validated (when the brand reviews its own file), and
/// proposes a `brand.toml` that differs from it.
pub(crate) fn brand_override(material: Arc<crate::approvals::Material>) -> policy::Override {
    use crate::approvals::brand::BrandFile;
    Arc::new(move |files| {
        match material.brand_override(files) {
            Ok(BrandFile::NotSeeded | BrandFile::Direct | BrandFile::InForce) => {}
            Ok(BrandFile::Proposed(id)) => tracing::warn!(
                proposal = id,
                "brand.toml differs from the version in force; propose it: proposed for review as #{id}; the approved brand stays in force until it is approved"
            ),
            Ok(BrandFile::Pending(id)) => tracing::warn!(
                proposal = id,
                "brand.toml differs from the version in force; its change is pending as proposal #{id}"
            ),
            Ok(BrandFile::Rejected(id)) => tracing::warn!(
                proposal = id,
                "brand.toml differs from the version in force; its change was rejected as proposal #{id}"
            ),
            Ok(BrandFile::Earlier(v)) => tracing::warn!(
                version = v,
                "brand.toml differs from the version in force; it is the earlier brand v{v}: propose a change with touchpoint propose"
            ),
            // The file on disk would not load (and `--check-config`, which
            // the unit runs before every start, fails on it): an error of
            // the policy directory like any other, shown by status, the
            // console and an alert; the policies in force stay.
            Ok(BrandFile::Invalid(errs)) => return Err(errs),
            Err(e) => tracing::error!("brand material: {e}; brand.toml is read as it is"),
        }
        Ok(())
    })
}

/// Makes a template file the store does not know version 1; says which
/// files differ from the version in force (they must be proposed). With the
/// brand reviewing dealers' slots, does the same for their slots, proposing
/// a changed dealer's file for review.
fn seed_material(material: &crate::approvals::Material, p: &Policies) {
    seed_slots(material, p);
    let files = match policy::read_dir(&p.dir, "") {
        Ok(f) => f,
        Err(errs) => {
            tracing::warn!("brand material not seeded: {}", join(&errs));
            return;
        }
    };
    if let Some(text) = files.get(crate::approvals::brand::FILE) {
        use crate::approvals::brand::SeededBrand;
        match material.seed_brand(text) {
            Ok(SeededBrand::Unchanged) => {}
            Ok(SeededBrand::Added) => tracing::info!("brand.toml seeded as brand version 1"),
            Ok(SeededBrand::Recorded(v)) => tracing::info!(
                "brand.toml is in force as read ([review] brand = false); recorded as brand v{v}"
            ),
            Err(e) => tracing::error!("brand material not seeded: {e}"),
        }
    }
    match material.seed(&files) {
        Ok(s) => {
            for name in s.added {
                tracing::info!(template = %name, "template seeded from its file as version 1");
            }
            for name in s.differs {
                tracing::warn!(
                    template = %name,
                    "templates/{name}.toml differs from the version in force; the file is not used until it is proposed and approved (touchpoint propose)"
                );
            }
        }
        Err(e) => tracing::error!("brand material not seeded: {e}"),
    }
}

fn seed_slots(material: &crate::approvals::Material, p: &Policies) {
    match material.seed_slots(p) {
        Ok(s) => {
            for t in s.added {
                tracing::info!(tenant = %t, "dealer's slots seeded from its file as slots/{t} version 1");
            }
            for (t, id) in s.proposed {
                tracing::warn!(
                    tenant = %t,
                    proposal = id,
                    "dealers/{t}.toml changes its slots: proposed for review as #{id}; the approved slots stay in force until it is approved"
                );
            }
            for (t, id) in s.pending {
                tracing::info!(tenant = %t, proposal = id, "dealers/{t}.toml: its slot change is pending as proposal #{id}");
            }
            for (t, id) in s.rejected {
                tracing::warn!(
                    tenant = %t,
                    proposal = id,
                    "dealers/{t}.toml: its slot change was rejected as proposal #{id}; the approved slots stay in force"
                );
            }
        }
        Err(e) => tracing::error!("dealers' slots not seeded: {e}"),
    }
}

/// A tenant with a staging file or an undo journal left over was
/// interrupted mid-import. Opening its store rolls that import back (or
/// completes one an earlier version had passed its commit point with,
/// which then gets the identity pass it never had).
async fn finish_recovered_imports(stores: &Arc<Stores>, p: &Policies) -> usize {
    let due: Vec<_> = p
        .tenants
        .keys()
        .filter(|id| {
            let dir = stores.tenant_dir(id);
            dir.join(crate::store::STAGING_FILE).exists()
                || dir.join(crate::store::UNDO_DIR).exists()
        })
        .cloned()
        .collect();
    let n = due.len();
    for id in due {
        let stores = stores.clone();
        let r = tokio::task::spawn_blocking(move || -> anyhow::Result<Option<usize>> {
            let store = stores.tenant(&id)?;
            if !store.take_completed_import() {
                return Ok(None);
            }
            Ok(Some(crate::identity::find_and_merge(&store, None)?.len()))
        })
        .await;
        match r {
            Ok(Ok(Some(merges))) => tracing::info!(merges, "identity pass after recovery"),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "recovery of an interrupted import failed"),
            Err(e) => tracing::error!(error = %e, "recovery task failed"),
        }
    }
    n
}

/// The tenants listing reads figures the stores keep in the central store.
/// After a run that did not close the stores they may lag behind a store
/// (a crash between a write and its figures), and a state directory from
/// before they existed has none: those tenants' figures are brought up to
/// date here, before anything is served. A tenant that cannot be opened is
/// listed with its error.
async fn refresh_figures(stores: &Arc<Stores>, p: &Policies) {
    let all = stores.unclean_start();
    let due: Vec<_> = p
        .tenants
        .keys()
        .filter(|id| {
            stores.tenant_dir(id).join("store").exists()
                && (all || !matches!(stores.central().figures(id), Ok(Some(_))))
        })
        .cloned()
        .collect();
    if due.is_empty() {
        return;
    }
    tracing::info!(
        tenants = due.len(),
        "bringing the tenants' figures up to date"
    );
    let stores = stores.clone();
    let r = tokio::task::spawn_blocking(move || {
        for id in due {
            if let Err(e) = stores.refresh_figures(&id) {
                tracing::error!(tenant = %id, error = %e, "cannot read the tenant's store");
            }
        }
    })
    .await;
    if let Err(e) = r {
        tracing::error!(error = %e, "figures task failed");
    }
}

/// A daemon on a simulated clock (`--clock-start`) says so in the audit
/// log, at the real time it started: nobody reading the log later may take
/// what this process did for the real daemon's work.
fn audit_clock(stores: &Stores) {
    use touchpoint_common::domain::Timestamp;
    use touchpoint_common::protocol::{AuditEntry, AuditOutcome, NO_UID};
    let Some(start) = touchpoint_common::clock::start() else {
        return;
    };
    let entry = AuditEntry {
        seq: 0,
        at: Timestamp::wall(),
        uid: NO_UID,
        user: "touchpointd".into(),
        role: None,
        action: "clock-start".into(),
        tenant: None,
        detail: format!(
            "{}; this process plans and sends by that clock (a rehearsal)",
            start.describe()
        ),
        outcome: AuditOutcome::Ok,
    };
    if let Err(e) = stores.central().audit(entry) {
        tracing::error!(error = %e, "cannot write the simulated clock's start to the audit log");
    }
}

/// Uploads cut off by a crash or a dropped connection leave spool files;
/// none can be resumed, so they go at start. Through the folder's
/// descriptor: a spool that is a link is not cleared (what it points to is
/// not the daemon's), an entry that is a link goes itself.
fn clear_spool(dir: &std::path::Path) {
    use crate::files::{Dir, Perms};
    let spool = match Dir::open(dir, Perms::PRIVATE) {
        Ok(Some(d)) => d,
        Ok(None) => return,
        Err(e) => {
            tracing::error!("upload spool not cleared: {e}");
            return;
        }
    };
    let names = match spool.names() {
        Ok(n) => n,
        Err(e) => {
            tracing::error!("upload spool not cleared: {e}");
            return;
        }
    };
    for name in names {
        let file = dir.join(&name);
        if matches!(spool.kind(&name), Ok(Some(nix::sys::stat::SFlag::S_IFDIR))) {
            continue;
        }
        match spool.remove(&name) {
            Ok(()) => {
                tracing::info!(file = %file.display(), "removed an upload interrupted by a restart")
            }
            Err(e) => tracing::warn!(error = %e, "cannot remove a stale upload"),
        }
    }
}

fn join(errs: &[ConfigError]) -> String {
    errs.iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Puts every tenant of the policies into the registry and gives it an inbox.
fn register(stores: &Stores, p: &Policies) -> anyhow::Result<()> {
    for (id, t) in &p.tenants {
        if stores.central().register_tenant(id, &t.tenant.name)? {
            tracing::info!(tenant = %id, name = %t.tenant.name, "tenant registered");
        }
    }
    inbox::ensure_dirs(stores.state_dir(), p.tenants.keys().cloned())
        .context("cannot create inbox folders")?;
    Ok(())
}

/// One flusher for all databases instead of a thread per database.
async fn flusher(stores: Arc<Stores>, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let s = stores.clone();
        match tokio::task::spawn_blocking(move || s.flush_dirty()).await {
            Ok(Err(e)) => tracing::error!(error = %e, "flush failed"),
            Err(e) => tracing::error!(error = %e, "flush task failed"),
            Ok(Ok(())) => {}
        }
    }
}

async fn idle_closer(stores: Arc<Stores>, idle: Duration, shutdown: CancellationToken) {
    let mut tick =
        tokio::time::interval((idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(60)));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let s = stores.clone();
        let closed = tokio::task::spawn_blocking(move || {
            let n = s.close_idle(idle);
            if n > 0 {
                crate::memory::release_free();
            }
            n
        })
        .await;
        if let Ok(n) = closed {
            if n > 0 {
                tracing::debug!(closed = n, "closed idle tenant stores");
            }
        }
    }
}

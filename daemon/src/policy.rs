//! Policy files (M4): the brand file, one file per dealer and the brand's
//! templates, read and validated as a whole. A set with any error is refused
//! and the previous one stays in force. [`watch`] reloads the set when a file
//! changes; SIGHUP does the same on demand.
//!
//! ```text
//! <policy_dir>/brand.toml
//! <policy_dir>/dealers/<tenant-id>.toml
//! <policy_dir>/templates/<name>.toml
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use touchpoint_common::domain::Timestamp;
use touchpoint_common::policy::{self as schema, PolicySet, PolicySource};
use touchpoint_common::protocol::{PolicyStatus, Scope};
use touchpoint_common::toml_file::ConfigError;
use touchpoint_common::TenantId;

/// A complete, validated set of policies and where it came from.
#[derive(Clone, Debug)]
pub struct Policies {
    pub dir: PathBuf,
    pub set: PolicySet,
    pub loaded_at: Timestamp,
}

impl std::ops::Deref for Policies {
    type Target = PolicySet;
    fn deref(&self) -> &PolicySet {
        &self.set
    }
}

/// The policy directory on disk, for [`schema::read_files`].
struct Dir<'a>(&'a Path);

impl PolicySource for Dir<'_> {
    fn files_in(&self, rel: &str) -> std::io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.0.join(rel))? {
            let entry = entry?;
            // Follows symlinks, as reading the file does.
            if entry.path().is_file() {
                if let Some(name) = entry.file_name().to_str() {
                    names.push(name.to_string());
                }
            }
        }
        Ok(names)
    }

    fn read(&self, rel: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.0.join(rel))
    }
}

/// Reads every policy file under `dir` (`brand.toml`, `dealers/*.toml`,
/// `templates/*.toml`) into `relative path -> text`. Errors name files as
/// `shown/<relative path>`.
pub fn read_dir(dir: &Path, shown: &str) -> Result<BTreeMap<String, String>, Vec<ConfigError>> {
    schema::read_files(&Dir(dir), shown)
}

/// Replaces files read from the policy directory before they are
/// validated: the daemon puts the approved text of the brand material
/// `brand` in place of `brand.toml` when the brand reviews its own file
/// (see [`crate::approvals::Material::brand_override`]). An error refuses
/// the load like an error in the files: a `brand.toml` that would not load
/// on its own (`touchpointd --check-config`) is an error of the policy
/// directory even while the approved text stands in for it. Errors name
/// files relative to the policy directory.
pub type Override =
    Arc<dyn Fn(&mut BTreeMap<String, String>) -> Result<(), Vec<ConfigError>> + Send + Sync>;

/// Reads and validates every policy file under `dir`. Returns all errors
/// found, not just the first, each located by file, line and key.
pub fn load_dir(dir: &Path) -> Result<Policies, Vec<ConfigError>> {
    load_dir_with(dir, None)
}

/// [`load_dir`], with `over` replacing files before the validation.
pub fn load_dir_with(dir: &Path, over: Option<&Override>) -> Result<Policies, Vec<ConfigError>> {
    let shown = dir.display().to_string();
    let mut files = read_dir(dir, &shown)?;
    if let Some(over) = over {
        over(&mut files).map_err(|errs| {
            errs.into_iter()
                .map(|mut e| {
                    e.file = format!("{}/{}", shown.trim_end_matches('/'), e.file);
                    e
                })
                .collect::<Vec<_>>()
        })?;
    }
    let set = touchpoint_common::render::lint::validate(&files, &shown)?;
    Ok(Policies {
        dir: dir.to_path_buf(),
        set,
        loaded_at: Timestamp::now(),
    })
}

/// What a reload did.
#[derive(Debug)]
pub enum Reloaded {
    /// The new set is in force.
    Changed(Arc<Policies>),
    /// The files are valid and say what the set in force says; nothing was swapped.
    Unchanged,
}

/// The policies in force, shared by every subsystem. Readers take a cheap
/// snapshot (`current()`); a reload swaps the whole set at once.
pub struct PolicyHandle {
    tx: watch::Sender<Arc<Policies>>,
    /// Errors of the last load attempt and when it failed (empty, `None`
    /// when it succeeded).
    last_errors: Mutex<(Vec<ConfigError>, Option<Timestamp>)>,
    /// One reload at a time: the watcher and SIGHUP must not swap in an
    /// older reading of the files after a newer one.
    reloading: Mutex<()>,
    /// What replaces files on every reload (set once at start).
    over: OnceLock<Override>,
    /// Where reloads are announced (set once at start).
    events: OnceLock<Arc<crate::events::Events>>,
}

impl PolicyHandle {
    pub fn new(initial: Policies) -> Self {
        Self {
            tx: watch::Sender::new(Arc::new(initial)),
            last_errors: Mutex::new((Vec::new(), None)),
            reloading: Mutex::new(()),
            over: OnceLock::new(),
            events: OnceLock::new(),
        }
    }

    /// Announces every load attempt, good or bad, on `events` (the first
    /// call counts).
    pub fn set_events(&self, events: Arc<crate::events::Events>) {
        let _ = self.events.set(events);
    }

    fn announce(&self) {
        if let Some(e) = self.events.get() {
            e.publish(&[touchpoint_common::protocol::Topic::Policy], None);
        }
    }

    /// Makes every reload replace files with `over` before validating them
    /// (the first call counts; later ones are ignored).
    pub fn set_override(&self, over: Override) {
        let _ = self.over.set(over);
    }

    fn load(&self, dir: &Path) -> Result<Policies, Vec<ConfigError>> {
        load_dir_with(dir, self.over.get())
    }

    pub fn current(&self) -> Arc<Policies> {
        self.tx.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Policies>> {
        self.tx.subscribe()
    }

    /// Re-reads the directory. On success `prepare` runs on the new set
    /// (registering new tenants, say) and then the set is in force; on any
    /// error the old one stays and the errors are kept for `status`.
    pub fn reload(
        &self,
        prepare: impl FnOnce(&Policies) -> Result<(), ConfigError>,
    ) -> Result<Arc<Policies>, Vec<ConfigError>> {
        let _one = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        self.swap(self.load(&self.current().dir), prepare)
    }

    /// Like [`reload`](Self::reload), but a set equal to the one in force
    /// (an editor saving without a change, a mistake undone) is not swapped
    /// in again; errors of an earlier attempt are cleared all the same.
    pub fn reload_if_changed(
        &self,
        prepare: impl FnOnce(&Policies) -> Result<(), ConfigError>,
    ) -> Result<Reloaded, Vec<ConfigError>> {
        let _one = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.current();
        match self.load(&current.dir) {
            Ok(p) if p.fingerprint == current.fingerprint => {
                let had_errors = !self.errors().0.is_empty();
                *self.errors() = (Vec::new(), None);
                if had_errors {
                    self.announce();
                }
                Ok(Reloaded::Unchanged)
            }
            loaded => self.swap(loaded, prepare).map(Reloaded::Changed),
        }
    }

    fn swap(
        &self,
        loaded: Result<Policies, Vec<ConfigError>>,
        prepare: impl FnOnce(&Policies) -> Result<(), ConfigError>,
    ) -> Result<Arc<Policies>, Vec<ConfigError>> {
        let r = match loaded.and_then(|p| prepare(&p).map(|_| p).map_err(|e| vec![e])) {
            Ok(p) => {
                let p = Arc::new(p);
                self.tx.send_replace(p.clone());
                *self.errors() = (Vec::new(), None);
                Ok(p)
            }
            Err(errs) => {
                *self.errors() = (errs.clone(), Some(Timestamp::now()));
                Err(errs)
            }
        };
        self.announce();
        r
    }

    fn errors(&self) -> std::sync::MutexGuard<'_, (Vec<ConfigError>, Option<Timestamp>)> {
        self.last_errors.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The policy set in force and the errors of the last load, whole.
    pub fn status(&self) -> PolicyStatus {
        self.status_for(&Scope::All)
    }

    /// What a caller with `scope` sees of [`status`](Self::status): the
    /// dealers' files of other tenants and their errors are left out (an
    /// error in no file of the caller's is counted, not shown, so that the
    /// caller still learns that a change was refused).
    pub fn status_for(&self, scope: &Scope) -> PolicyStatus {
        let p = self.current();
        let errors = self.errors();
        let dir = p.dir.display().to_string();
        let visible = |rel: &str| match rel.strip_prefix("dealers/") {
            None => true,
            Some(file) => file
                .strip_suffix(".toml")
                .and_then(|stem| TenantId::new(stem).ok())
                .is_some_and(|t| scope.allows(&t)),
        };
        let files = p.files.iter().filter(|f| visible(f)).cloned().collect();
        let mut shown: Vec<String> = Vec::new();
        let mut hidden = 0;
        for e in &errors.0 {
            let rel = e
                .file
                .strip_prefix(&dir)
                .map(|r| r.trim_start_matches('/'))
                .unwrap_or(&e.file);
            let in_scope = matches!(scope, Scope::All) || (is_policy_file(rel) && visible(rel));
            if in_scope {
                shown.push(e.to_string());
            } else {
                hidden += 1;
            }
        }
        if hidden > 0 {
            shown.push(format!(
                "{hidden} more error{} in files outside your scope",
                if hidden == 1 { "" } else { "s" }
            ));
        }
        PolicyStatus {
            dir,
            loaded_at: p.loaded_at,
            files,
            errors: shown,
            version: p.fingerprint,
            failed_at: errors.1,
        }
    }
}

/// How long the policy directory must be quiet before it is re-read: an
/// editor's save is several events (write a temp file, rename it over the
/// old one, change permissions), and a `git checkout` is many.
pub const SETTLE: Duration = Duration::from_millis(150);
/// A directory that never goes quiet is re-read this long after its first
/// change all the same, so that a change is in force within a second.
pub const MAX_DELAY: Duration = Duration::from_millis(600);
/// Where the system's file watcher is unavailable (no inotify left, say), the
/// directory is polled at this interval instead.
const POLL: Duration = Duration::from_millis(500);

/// Starts watching the policy directory of `handle` (recursively: editors
/// replace files, and `dealers/` may be replaced as a whole) and returns the
/// task that reloads on change until `shutdown`. The watch is in place when
/// this returns, so no change after it is missed.
///
/// A valid change goes through `prepare` (the same as on SIGHUP) and is in
/// force within [`MAX_DELAY`] plus the reading time. An invalid one leaves
/// the policy in force alone; its errors are logged, one line each, and
/// shown by `status` until a later change is valid.
pub fn watch<F>(
    handle: Arc<PolicyHandle>,
    prepare: F,
    shutdown: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static
where
    F: Fn(&Policies) -> Result<(), ConfigError> + Send + Sync + 'static,
{
    let dir = handle.current().dir.clone();
    let (tx, rx) = mpsc::unbounded_channel::<()>();
    let watcher = start_watcher(&dir, tx);
    let prepare = Arc::new(prepare);
    async move {
        // Dropping the watcher ends the events; keep it as long as the task.
        let _watcher = watcher;
        run_watch(handle, prepare, rx, shutdown).await;
    }
}

fn start_watcher(dir: &Path, tx: mpsc::UnboundedSender<()>) -> Option<Box<dyn Watcher + Send>> {
    let root = dir.to_path_buf();
    let on_event = move |res: notify::Result<notify::Event>| {
        // A failed or overflowed watch may have lost a change: re-read.
        let relevant = res.map_or(true, |ev| {
            ev.need_rescan()
                || (!matches!(ev.kind, EventKind::Access(_))
                    && ev.paths.iter().any(|p| is_policy_path(&root, p)))
        });
        if relevant {
            let _ = tx.send(());
        }
    };
    let native = notify::recommended_watcher(on_event.clone())
        .and_then(|mut w| w.watch(dir, RecursiveMode::Recursive).map(|_| w));
    match native {
        Ok(w) => return Some(Box::new(w)),
        Err(e) => tracing::warn!(
            dir = %dir.display(),
            error = %e,
            "cannot watch the policy directory; polling it every {} ms instead",
            POLL.as_millis()
        ),
    }
    let config = notify::Config::default().with_poll_interval(POLL);
    match notify::PollWatcher::new(on_event, config)
        .and_then(|mut w| w.watch(dir, RecursiveMode::Recursive).map(|_| w))
    {
        Ok(w) => Some(Box::new(w)),
        Err(e) => {
            tracing::error!(
                dir = %dir.display(),
                error = %e,
                "cannot poll the policy directory either; policy changes need SIGHUP"
            );
            None
        }
    }
}

/// Whether `rel` (relative to the policy directory) names a policy file:
/// `brand.toml` or a `*.toml` directly in `dealers/` or `templates/`.
fn is_policy_file(rel: &str) -> bool {
    match rel.split('/').collect::<Vec<_>>().as_slice() {
        ["brand.toml"] => true,
        ["dealers" | "templates", name] => name.ends_with(".toml"),
        _ => false,
    }
}

/// Whether a change at `path` can change the policy set: `brand.toml`, a
/// `*.toml` in `dealers/` or `templates/`, or one of those folders itself.
/// Swap files and backups (`.d001.toml.swp`, `d001.toml~`, vim's `4913`)
/// are not; reading the files (access events) is not either.
fn is_policy_path(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    let parts: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
    match parts.as_slice() {
        [] => true,
        ["brand.toml"] | ["dealers" | "templates"] => true,
        ["dealers" | "templates", name] => name.ends_with(".toml") && !name.starts_with('.'),
        _ => false,
    }
}

async fn run_watch<F>(
    handle: Arc<PolicyHandle>,
    prepare: Arc<F>,
    mut rx: mpsc::UnboundedReceiver<()>,
    shutdown: CancellationToken,
) where
    F: Fn(&Policies) -> Result<(), ConfigError> + Send + Sync + 'static,
{
    // A change between the first load and the start of the watch is caught
    // by one check right away (a no-op when nothing changed).
    let start = Instant::now();
    let mut pending = Some((start, start));
    let mut watching = true;
    loop {
        let due = pending.map(|(first, last)| (last + SETTLE).min(first + MAX_DELAY));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            event = rx.recv(), if watching => {
                match event {
                    Some(()) => {
                        let now = Instant::now();
                        pending = Some((pending.map_or(now, |(first, _)| first), now));
                    }
                    // No watcher: only SIGHUP reloads.
                    None => watching = false,
                }
                continue;
            }
            _ = tokio::time::sleep_until(due.unwrap_or(start)), if due.is_some() => {}
        }
        pending = None;
        let (h, p) = (handle.clone(), prepare.clone());
        match tokio::task::spawn_blocking(move || h.reload_if_changed(|new| p(new))).await {
            Ok(Ok(Reloaded::Changed(p))) => tracing::info!(
                files = p.files.len(),
                tenants = p.tenants.len(),
                "policy files changed; the new policy is in force"
            ),
            Ok(Ok(Reloaded::Unchanged)) => {
                tracing::debug!("policy files touched; nothing changed");
            }
            Ok(Err(errs)) => {
                for e in &errs {
                    tracing::warn!("{e}");
                }
                tracing::warn!(
                    errors = errs.len(),
                    "policy change refused; the previous policy stays in force"
                );
            }
            Err(e) => tracing::error!(error = %e, "policy reload task failed"),
        }
    }
}

#[cfg(test)]
mod tests;

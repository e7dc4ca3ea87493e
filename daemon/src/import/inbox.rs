//! The drop folder: `<state>/inbox/<tenant-id>/`. A file that lands there is
//! imported once it has stopped growing, then moved to `done/` (committed or
//! already imported) or `failed/` (not importable), with a `.report.txt`
//! beside it that lists every rejected row.
//!
//! Events from `notify` make this quick; a periodic rescan makes it correct
//! even when events are lost (inotify queue overflow, network file systems).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use touchpoint_common::domain::{ImportReport, ImportStatus};
use touchpoint_common::TenantId;

use super::Importer;

pub const DONE: &str = "done";
pub const FAILED: &str = "failed";
const RESCAN: Duration = Duration::from_secs(5);

pub fn inbox_root(state_dir: &Path) -> PathBuf {
    state_dir.join("inbox")
}

/// Creates `<inbox>/<tenant>/` for each tenant.
pub fn ensure_dirs(
    state_dir: &Path,
    tenants: impl IntoIterator<Item = TenantId>,
) -> std::io::Result<()> {
    let root = inbox_root(state_dir);
    for t in tenants {
        std::fs::create_dir_all(root.join(t.as_str()))?;
    }
    Ok(())
}

/// Whether a path is a file dropped for import (not a report, not a
/// temporary file an uploader is still writing, not in done/ or failed/).
fn is_candidate(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    if rel.components().count() != 2 {
        return false;
    }
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    !(name.starts_with('.')
        || name.ends_with(".part")
        || name.ends_with(".tmp")
        || name.ends_with(".report.txt")
        || name.ends_with('~'))
}

struct Seen {
    len: u64,
    modified: Option<SystemTime>,
    stable_since: Instant,
}

/// Runs until `shutdown`.
pub async fn run(importer: Arc<Importer>, settle: Duration, shutdown: CancellationToken) {
    let root = inbox_root(importer.stores().state_dir());
    if let Err(e) = std::fs::create_dir_all(&root) {
        tracing::error!(dir = %root.display(), error = %e, "cannot create the inbox; drop-folder import is off");
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            for p in ev.paths {
                let _ = tx.send(p);
            }
        }
    })
    .and_then(|mut w| w.watch(&root, RecursiveMode::Recursive).map(|_| w));
    let _watcher = match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(dir = %root.display(), error = %e, "cannot watch the inbox; falling back to rescanning every {}s", RESCAN.as_secs());
            None
        }
    };

    let mut seen: HashMap<PathBuf, Seen> = HashMap::new();
    rescan(&root, &mut seen);
    // One interval for the whole loop: a stream of watcher events must not
    // keep postponing the settle check.
    let mut tick = tokio::time::interval((settle / 2).max(Duration::from_millis(50)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_rescan = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(p) = rx.recv() => {
                if is_candidate(&root, &p) {
                    seen.entry(p).or_insert(Seen { len: u64::MAX, modified: None, stable_since: Instant::now() });
                }
                continue;
            }
            _ = tick.tick() => {}
        }
        if last_rescan.elapsed() >= RESCAN {
            rescan(&root, &mut seen);
            last_rescan = Instant::now();
        }
        let ripe = settle_check(&mut seen, settle);
        for path in ripe {
            if shutdown.is_cancelled() {
                break;
            }
            seen.remove(&path);
            let importer = importer.clone();
            let r = tokio::task::spawn_blocking(move || process(&importer, &path)).await;
            if let Err(e) = r {
                tracing::error!(error = %e, "inbox import task failed");
            }
        }
    }
}

fn rescan(root: &Path, seen: &mut HashMap<PathBuf, Seen>) {
    let Ok(tenants) = std::fs::read_dir(root) else {
        return;
    };
    for t in tenants.flatten() {
        if !t.path().is_dir() {
            continue;
        }
        let Ok(files) = std::fs::read_dir(t.path()) else {
            continue;
        };
        for f in files.flatten() {
            let p = f.path();
            if p.is_file() && is_candidate(root, &p) {
                seen.entry(p).or_insert(Seen {
                    len: u64::MAX,
                    modified: None,
                    stable_since: Instant::now(),
                });
            }
        }
    }
}

/// Files whose size and mtime have not changed for `settle`.
fn settle_check(seen: &mut HashMap<PathBuf, Seen>, settle: Duration) -> Vec<PathBuf> {
    let mut ripe = Vec::new();
    seen.retain(|path, s| {
        let Ok(meta) = std::fs::metadata(path) else {
            return false;
        };
        if !meta.is_file() {
            return false;
        }
        let modified = meta.modified().ok();
        if meta.len() != s.len || modified != s.modified {
            s.len = meta.len();
            s.modified = modified;
            s.stable_since = Instant::now();
        } else if s.stable_since.elapsed() >= settle {
            ripe.push(path.clone());
        }
        true
    });
    ripe.sort();
    ripe
}

/// Imports one dropped file and files it away with its report.
fn process(importer: &Importer, path: &Path) {
    let Some(tenant_dir) = path.parent() else {
        return;
    };
    let dir_name = tenant_dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let outcome = match TenantId::new(dir_name.as_str()) {
        Err(e) => Err(format!(
            "{}: the folder name is not a tenant id: {e}",
            tenant_dir.display()
        )),
        Ok(tenant) => importer
            .import(&tenant, path, &file_name)
            .map_err(|e| e.to_string()),
    };
    let (sub, text) = match &outcome {
        Ok(report) if !matches!(report.status, ImportStatus::Failed { .. }) => {
            (DONE, report_text(report))
        }
        Ok(report) => (FAILED, report_text(report)),
        Err(reason) => (FAILED, format!("{file_name}: not imported: {reason}\n")),
    };
    if let Err(e) = file_away(tenant_dir, path, &file_name, sub, &text) {
        tracing::error!(file = %path.display(), error = %e, "cannot move an imported file out of the inbox");
    }
    if let Err(reason) = outcome {
        tracing::warn!(file = %path.display(), %reason, "inbox file not imported");
    }
}

fn file_away(
    tenant_dir: &Path,
    path: &Path,
    file_name: &str,
    sub: &str,
    report: &str,
) -> std::io::Result<()> {
    let dest_dir = tenant_dir.join(sub);
    std::fs::create_dir_all(&dest_dir)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let dest = dest_dir.join(format!("{stamp}-{file_name}"));
    let report_path = dest_dir.join(format!("{stamp}-{file_name}.report.txt"));
    // Report first (write then rename), so a file in done/ always has its report.
    let tmp = dest_dir.join(format!(".{stamp}-{file_name}.report.tmp"));
    std::fs::write(&tmp, report)?;
    std::fs::rename(&tmp, &report_path)?;
    std::fs::rename(path, &dest)
}

/// The human-readable report kept beside an imported file.
pub fn report_text(r: &ImportReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let status = match &r.status {
        ImportStatus::Committed => "committed".to_string(),
        ImportStatus::AlreadyImported { previous } => {
            format!("already imported as #{previous}; nothing changed")
        }
        ImportStatus::Failed { reason } => format!("failed: {reason}"),
    };
    let _ = writeln!(
        s,
        "import #{} of {} for tenant {}: {status}",
        r.import_id, r.file_name, r.tenant
    );
    let _ = writeln!(s, "bytes: {}  blake3: {}", r.bytes, r.content_hash);
    let _ = writeln!(s, "started: {}  finished: {}", r.started_at, r.finished_at);
    if !r.format.is_empty() {
        let _ = writeln!(s, "format: {}", r.format);
    }
    let _ = writeln!(
        s,
        "rows: {} total, {} ok, {} rejected",
        r.rows_total, r.rows_ok, r.rows_rejected
    );
    for (what, c) in [
        ("customers", r.customers),
        ("vehicles", r.vehicles),
        ("consents", r.consents),
        ("visits", r.visits),
    ] {
        let _ = writeln!(
            s,
            "{what}: {} inserted, {} updated, {} unchanged",
            c.inserted, c.updated, c.unchanged
        );
    }
    let _ = writeln!(s, "duplicate merges: {}", r.merges);
    if !r.unmapped_columns.is_empty() {
        let _ = writeln!(s, "columns not imported: {}", r.unmapped_columns.join(", "));
    }
    for e in &r.errors {
        let _ = writeln!(s, "{e}");
    }
    if r.errors_truncated > 0 {
        let _ = writeln!(s, "… and {} more rejected rows", r.errors_truncated);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_directly_in_a_tenant_folder_are_candidates() {
        let root = Path::new("/s/inbox");
        assert!(is_candidate(root, Path::new("/s/inbox/d001/kunden.csv")));
        assert!(!is_candidate(root, Path::new("/s/inbox/kunden.csv")));
        assert!(!is_candidate(
            root,
            Path::new("/s/inbox/d001/done/kunden.csv")
        ));
        assert!(!is_candidate(root, Path::new("/s/inbox/d001/.kunden.csv")));
        assert!(!is_candidate(
            root,
            Path::new("/s/inbox/d001/kunden.csv.part")
        ));
        assert!(!is_candidate(root, Path::new("/s/inbox/d001/x.report.txt")));
    }
}

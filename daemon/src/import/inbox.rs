//! The drop folder: `<state>/inbox/<tenant-id>/`. A file that lands there is
//! imported once it has stopped growing, then moved to `done/` (committed or
//! already imported) or `failed/` (not importable), with a `.report.txt`
//! beside it that lists every rejected row.
//!
//! Events from `notify` make this quick; a periodic rescan makes it correct
//! even when events are lost (inotify queue overflow, network file systems).
//!
//! The inbox is a trust boundary: whoever may drop files there (a dealer's
//! upload account, say) is not whoever runs the daemon (root). So nothing
//! below the state directory is reached through a symbolic link: the inbox
//! root, each tenant folder, `done/` and `failed/` must be real folders, each
//! opened with `O_NOFOLLOW` from the one above rather than by path, and a
//! dropped entry must be a regular file with a single link. It is opened
//! once (`O_NOFOLLOW | O_NONBLOCK`, so a FIFO cannot block), checked through
//! that descriptor and hashed and parsed from it. Anything else, a symbolic
//! link, FIFO, device, socket or a file with several hard links, is refused
//! unopened: it is moved into `failed/` with a report that says what it is,
//! never what it holds. A tenant folder or inbox root that is not a real
//! folder is left alone and reported beside it. Entries that cannot be
//! filed stay where they are and are not tried again until they change (or
//! [`RETRY_LEFT`] has passed). Folders and reports are made as
//! [`crate::files`] makes them, with the state directory's permissions, not
//! the umask's.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use touchpoint_common::domain::{Counts, ImportReport, ImportStatus};
use touchpoint_common::TenantId;

use super::{shown_file_name, Importer, Snapshot};
use crate::files::{self, Dir, FilesError, Perms, Replace};

pub const DONE: &str = "done";
pub const FAILED: &str = "failed";
const RESCAN: Duration = Duration::from_secs(5);
/// How long an entry that could not be filed is left alone unchanged.
pub const RETRY_LEFT: Duration = Duration::from_secs(600);
pub const REPORT_SUFFIX: &str = ".report.txt";
/// The report written into `<state>` when the inbox root is not a folder.
pub const ROOT_REPORT: &str = "inbox.report.txt";
/// A name in a folder can be this long (NAME_MAX of Linux file systems).
const NAME_MAX: usize = 255;

pub fn inbox_root(state_dir: &Path) -> PathBuf {
    state_dir.join("inbox")
}

/// Creates `<inbox>/<tenant>/` for each tenant. Creates nothing through a
/// symbolic link: an inbox root or tenant folder that is one is left alone
/// (the inbox loop reports it).
pub fn ensure_dirs(
    state_dir: &Path,
    tenants: impl IntoIterator<Item = TenantId>,
) -> std::io::Result<()> {
    let root = inbox_root(state_dir);
    let root_dir = match open_root(state_dir) {
        Ok(d) => d,
        Err(FilesError::NotAFolder { .. }) => {
            tracing::error!(dir = ?root, "the inbox is not a folder (a symbolic link?); drop-folder import is off until it is one");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    for t in tenants {
        match root_dir.sub(t.as_str()) {
            Ok(_) | Err(FilesError::NotAFolder { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Opens the inbox root (not through a symbolic link), creating it when
/// missing; what is made below it gets the state directory's permissions.
fn open_root(state_dir: &Path) -> Result<Dir, FilesError> {
    Dir::create(&inbox_root(state_dir), Perms::of_dir(state_dir))
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
    let Some(name) = path.file_name().map(OsStr::as_bytes) else {
        return false;
    };
    !(name.starts_with(b".")
        || name == DONE.as_bytes()
        || name == FAILED.as_bytes()
        || name.ends_with(b".part")
        || name.ends_with(b".tmp")
        || name.ends_with(REPORT_SUFFIX.as_bytes())
        || name.ends_with(b"~"))
}

/// What tells whether a directory entry changed, without following it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    kind: u32,
    len: u64,
    mtime: (i64, i64),
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Self {
        Self {
            dev: m.dev(),
            ino: m.ino(),
            kind: m.mode() & SFlag::S_IFMT.bits(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
        }
    }

    fn lstat(path: &Path) -> Option<Self> {
        std::fs::symlink_metadata(path).ok().map(|m| Self::of(&m))
    }
}

struct Seen {
    stamp: Option<Stamp>,
    stable_since: Instant,
}

/// What became of a processed entry.
#[derive(Debug)]
enum Outcome {
    /// Filed away, gone, or nothing for the inbox (a folder).
    Done,
    /// Left where it is; not tried again while it stays as it was.
    Left(Stamp),
    /// Changed while it was handled: let it settle and handle it again.
    Again,
}

/// The inbox loop's memory of what it has seen.
struct Inbox {
    root: PathBuf,
    state_dir: PathBuf,
    seen: HashMap<PathBuf, Seen>,
    /// Entries left in place, as they were then and when.
    left: HashMap<PathBuf, (Stamp, Instant)>,
    /// Folders (the root, tenant folders) reported as not real folders, as
    /// they were then: reported once until they change.
    reported: HashMap<PathBuf, Option<Stamp>>,
}

/// Runs until `shutdown`.
pub async fn run(importer: Arc<Importer>, settle: Duration, shutdown: CancellationToken) {
    let state_dir = importer.stores().state_dir().to_path_buf();
    let root = inbox_root(&state_dir);
    match open_root(&state_dir) {
        Ok(_) | Err(FilesError::NotAFolder { .. }) => {}
        Err(e) => {
            tracing::error!(dir = ?root, error = %e, "cannot create the inbox; drop-folder import is off");
            return;
        }
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    // A watcher that followed links would watch (and report) what a
    // symbolic link in the inbox points to.
    let watcher = notify::RecommendedWatcher::new(
        move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                for p in ev.paths {
                    let _ = tx.send(p);
                }
            }
        },
        notify::Config::default().with_follow_symlinks(false),
    )
    .and_then(|mut w| {
        if !std::fs::symlink_metadata(&root).is_ok_and(|m| m.is_dir()) {
            return Err(notify::Error::generic("the inbox is not a folder"));
        }
        w.watch(&root, RecursiveMode::Recursive).map(|_| w)
    });
    let _watcher = match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(dir = ?root, error = %e, "cannot watch the inbox; falling back to rescanning every {}s", RESCAN.as_secs());
            None
        }
    };

    let mut inbox = Inbox {
        root,
        state_dir,
        seen: HashMap::new(),
        left: HashMap::new(),
        reported: HashMap::new(),
    };
    inbox.rescan();
    // One interval for the whole loop: a stream of watcher events must not
    // keep postponing the settle check.
    let mut tick = tokio::time::interval((settle / 2).max(Duration::from_millis(50)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_rescan = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(p) = rx.recv() => {
                if is_candidate(&inbox.root, &p) {
                    inbox.seen.entry(p).or_insert(Seen { stamp: None, stable_since: Instant::now() });
                }
                continue;
            }
            _ = tick.tick() => {}
        }
        if last_rescan.elapsed() >= RESCAN {
            inbox.rescan();
            last_rescan = Instant::now();
        }
        let ripe = inbox.settle_check(settle);
        for path in ripe {
            if shutdown.is_cancelled() {
                break;
            }
            inbox.seen.remove(&path);
            let importer = importer.clone();
            let (root, state_dir, p) = (inbox.root.clone(), inbox.state_dir.clone(), path.clone());
            let r = tokio::task::spawn_blocking(move || process(&importer, &root, &state_dir, &p))
                .await;
            match r {
                Ok(Outcome::Done) => {}
                Ok(Outcome::Left(stamp)) => {
                    inbox.left.insert(path, (stamp, Instant::now()));
                }
                Ok(Outcome::Again) => {
                    inbox.seen.insert(
                        path,
                        Seen {
                            stamp: None,
                            stable_since: Instant::now(),
                        },
                    );
                }
                Err(e) => tracing::error!(error = %e, "inbox import task failed"),
            }
        }
    }
}

impl Inbox {
    fn rescan(&mut self) {
        self.left.retain(|p, (stamp, since)| {
            Stamp::lstat(p) == Some(*stamp) && since.elapsed() < RETRY_LEFT
        });
        let root_stamp = std::fs::symlink_metadata(&self.root).ok();
        if !root_stamp.as_ref().is_some_and(|m| m.is_dir()) {
            let stamp = root_stamp.as_ref().map(Stamp::of);
            if root_stamp.is_some() && self.report_once(self.root.clone(), stamp) {
                refuse_root(&self.state_dir, &self.root);
            }
            return;
        }
        self.reported.remove(&self.root);
        let Ok(tenants) = std::fs::read_dir(&self.root) else {
            return;
        };
        for t in tenants.flatten() {
            let Ok(kind) = t.file_type() else {
                continue;
            };
            let tenant_dir = t.path();
            if kind.is_symlink() {
                let stamp = Stamp::lstat(&tenant_dir);
                if self.report_once(tenant_dir.clone(), stamp) {
                    refuse_tenant_folder(&self.root, &self.state_dir, &t.file_name());
                }
                continue;
            }
            if !kind.is_dir() {
                continue;
            }
            self.reported.remove(&tenant_dir);
            // Listed by path, so only a hint: `process` opens every entry
            // from the inbox root down without following links.
            let Ok(files) = std::fs::read_dir(&tenant_dir) else {
                continue;
            };
            for f in files.flatten() {
                let p = f.path();
                if f.file_type().is_ok_and(|k| !k.is_dir()) && is_candidate(&self.root, &p) {
                    self.seen.entry(p).or_insert(Seen {
                        stamp: None,
                        stable_since: Instant::now(),
                    });
                }
            }
        }
        // Forget what is gone, so the maps stay as large as the inbox.
        self.reported
            .retain(|p, _| std::fs::symlink_metadata(p).is_ok());
    }

    /// Whether `path` (as `stamp`) has not been reported yet; notes it.
    fn report_once(&mut self, path: PathBuf, stamp: Option<Stamp>) -> bool {
        self.reported.insert(path, stamp) != Some(stamp)
    }

    /// Entries whose stamp (taken without following links) has not changed
    /// for `settle`, except those left alone as they are.
    fn settle_check(&mut self, settle: Duration) -> Vec<PathBuf> {
        let mut ripe = Vec::new();
        let left = &self.left;
        self.seen.retain(|path, s| {
            let Some(stamp) = Stamp::lstat(path) else {
                return false;
            };
            if stamp.kind == SFlag::S_IFDIR.bits()
                || left.get(path).is_some_and(|(l, _)| *l == stamp)
            {
                return false;
            }
            if s.stamp != Some(stamp) {
                s.stamp = Some(stamp);
                s.stable_since = Instant::now();
            } else if s.stable_since.elapsed() >= settle {
                ripe.push(path.clone());
            }
            true
        });
        ripe.sort();
        ripe
    }
}

/// Reports that the inbox root is not a real folder, in the state directory.
fn refuse_root(state_dir: &Path, root: &Path) {
    tracing::error!(dir = ?root, "the inbox is not a folder (a symbolic link?); the daemon follows no links there, drop-folder import is off until it is a folder");
    let text = format!(
        "{}: not used: it is not a folder (a symbolic link?); the daemon follows no links in the inbox. Drop-folder import is off until it is a folder.\n",
        root.display()
    );
    let written = Dir::open(state_dir, Perms::of_dir(state_dir)).and_then(|dir| match dir {
        Some(dir) => write_report(&dir, OsStr::new(ROOT_REPORT), &text),
        None => Ok(()),
    });
    if let Err(e) = written {
        tracing::error!(dir = ?state_dir, error = %e, "cannot write the inbox's report");
    }
}

/// Reports that `<inbox>/<name>` is a symbolic link, beside it in the inbox.
fn refuse_tenant_folder(root: &Path, state_dir: &Path, name: &OsStr) {
    let shown = shown_file_name(&name.to_string_lossy());
    tracing::warn!(dir = ?root.join(name), "an inbox folder is a symbolic link; the daemon does not follow it");
    let text = format!(
        "inbox/{shown}: not used: it is a symbolic link, not a folder; the daemon follows no links in the inbox. Make it a folder.\n"
    );
    let report = report_name(name.as_bytes(), REPORT_SUFFIX);
    let written = Dir::open(root, Perms::of_dir(state_dir)).and_then(|dir| match dir {
        Some(dir) => write_report(&dir, OsStr::from_bytes(&report), &text),
        None => Ok(()),
    });
    if let Err(e) = written {
        tracing::error!(dir = ?root, error = %e, "cannot write the report of an inbox folder");
    }
}

/// What a directory entry is, for a report, when it is not a regular file.
fn refusal(st: &FileStat) -> Option<String> {
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    let what = match kind {
        SFlag::S_IFREG if st.st_nlink > 1 => {
            return Some(format!(
                "it has {} hard links; the inbox takes only files with one (copy the file into the inbox instead of linking it)",
                st.st_nlink
            ))
        }
        SFlag::S_IFREG => return None,
        SFlag::S_IFLNK => "a symbolic link; the inbox takes only regular files and follows no links",
        SFlag::S_IFIFO => "a named pipe (FIFO); the inbox takes only regular files",
        SFlag::S_IFCHR | SFlag::S_IFBLK => "a device; the inbox takes only regular files",
        SFlag::S_IFSOCK => "a socket; the inbox takes only regular files",
        _ => "not a regular file; the inbox takes only regular files",
    };
    Some(format!("it is {what}"))
}

fn same_entry(a: &FileStat, b: &FileStat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

/// Opens the regular file `entry` describes, once, without following a
/// link and without blocking, and checks that it is still that file.
fn open_entry(dir: &Dir, name: &OsStr, entry: &FileStat) -> Result<File, String> {
    let fd = openat(
        dir.fd(),
        name,
        OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::ELOOP => {
            "it became a symbolic link while it was opened; the inbox follows no links".to_string()
        }
        e => format!("cannot open it: {e}"),
    })?;
    let st = fstat(&fd).map_err(|e| format!("cannot inspect it: {e}"))?;
    if !same_entry(&st, entry) {
        return Err("it was replaced while it was opened; drop it again".into());
    }
    if let Some(reason) = refusal(&st) {
        return Err(reason);
    }
    Ok(File::from(fd))
}

/// Whether `<tenant>/<name>` can take filed entries: missing (it is made
/// when needed) or a real folder. Says what is wrong otherwise.
fn check_sub_dir(tenant: &Dir, name: &str) -> Result<(), String> {
    match tenant.kind(name) {
        Ok(None | Some(SFlag::S_IFDIR)) => Ok(()),
        Ok(Some(_)) => Err(not_a_folder(name)),
        Err(e) => Err(format!("cannot inspect {name}/: {e}")),
    }
}

fn not_a_folder(name: &str) -> String {
    format!("{name} is not a folder (a symbolic link?); the inbox files nothing through links")
}

/// Opens `<tenant>/<name>/`, creating it (with the state directory's
/// permissions) when missing. Says what is wrong when it is not a real
/// folder.
fn sub_dir(tenant: &Dir, name: &str) -> Result<Dir, String> {
    tenant.sub(name).map_err(|e| match e {
        FilesError::NotAFolder { .. } => not_a_folder(name),
        e => format!("cannot open {name}/: {e}"),
    })
}

fn left(path: &Path) -> Outcome {
    Stamp::lstat(path).map_or(Outcome::Done, Outcome::Left)
}

/// Imports one dropped entry and files it away with its report, or refuses it.
fn process(importer: &Importer, root: &Path, state_dir: &Path, path: &Path) -> Outcome {
    let (Some(name), Some(tenant_name)) =
        (path.file_name(), path.parent().and_then(Path::file_name))
    else {
        return Outcome::Done;
    };
    let tenant_dir = match Dir::open(root, Perms::of_dir(state_dir))
        .and_then(|r| r.map(|r| r.open_sub(tenant_name)).transpose())
        .map(Option::flatten)
    {
        Ok(Some(d)) => d,
        Ok(None) => return Outcome::Done,
        Err(e) => {
            // A link or a vanished folder: the rescan reports links.
            tracing::warn!(file = ?path, error = %e, "inbox entry not reachable through real folders; left alone");
            return left(path);
        }
    };
    let entry = match fstatat(tenant_dir.fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Outcome::Done,
        Err(e) => {
            tracing::warn!(file = ?path, error = %e, "cannot inspect an inbox entry; left alone");
            return left(path);
        }
    };
    if entry.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits() {
        return Outcome::Done;
    }
    let shown = shown_file_name(&name.to_string_lossy());
    let file = match refusal(&entry).map_or_else(|| open_entry(&tenant_dir, name, &entry), Err) {
        Ok(f) => f,
        Err(reason) => {
            tracing::warn!(file = ?path, %reason, "inbox entry refused");
            let text = format!("{shown}: not imported: {reason}\n");
            return match sub_dir(&tenant_dir, FAILED) {
                Ok(failed) => file_away(&tenant_dir, name, &entry, &failed, &text),
                Err(why) => report_beside(&tenant_dir, path, name, &shown, &why),
            };
        }
    };
    // Where the file goes must be sound before anything is imported.
    if let Err(why) = check_sub_dir(&tenant_dir, DONE).and(check_sub_dir(&tenant_dir, FAILED)) {
        return report_beside(&tenant_dir, path, name, &shown, &why);
    }
    let before = Snapshot::of(&file).ok();
    let outcome = match TenantId::new(&*tenant_name.to_string_lossy()) {
        Err(e) => Err(format!(
            "inbox/{}: the folder name is not a tenant id: {e}",
            shown_file_name(&tenant_name.to_string_lossy())
        )),
        Ok(tenant) => importer
            .import_open(&tenant, &file, &shown)
            .map_err(|e| e.to_string()),
    };
    // The import checks the same before committing; this also catches a
    // change after the commit, before the file is filed away as complete.
    if before.is_none() || Snapshot::of(&file).ok() != before {
        // Committed or not, what was read is not the whole file: import it
        // again (a committed part again is idempotent) once it settles.
        tracing::info!(file = ?path, "inbox file changed while it was imported; importing it again once it stops changing");
        return Outcome::Again;
    }
    if let Ok(tenant) = TenantId::new(&*tenant_name.to_string_lossy()) {
        let (result, detail) = match &outcome {
            Ok(report) => touchpoint_common::protocol::AuditOutcome::of_import(report),
            Err(reason) => (
                touchpoint_common::protocol::AuditOutcome::Failed(reason.clone()),
                shown.clone(),
            ),
        };
        importer.audit(super::INBOX_ACTOR, "import", &tenant, detail, result);
    }
    let (sub, text) = match &outcome {
        Ok(report) if !matches!(report.status, ImportStatus::Failed { .. }) => {
            (DONE, report_text(report))
        }
        Ok(report) => (FAILED, report_text(report)),
        Err(reason) => (FAILED, format!("{shown}: not imported: {reason}\n")),
    };
    let filed = match sub_dir(&tenant_dir, sub) {
        Ok(dest) => file_away(&tenant_dir, name, &entry, &dest, &text),
        // Replaced by a link while the file was imported: the import stands
        // (a second one is "already imported"), the file stays.
        Err(why) => report_beside(&tenant_dir, path, name, &shown, &why),
    };
    if let Err(reason) = outcome {
        tracing::warn!(file = ?path, %reason, "inbox file not imported");
    }
    filed
}

/// Writes the report beside an entry that cannot be filed (`done/` or
/// `failed/` is not a folder) and leaves the entry alone.
fn report_beside(tenant_dir: &Dir, path: &Path, name: &OsStr, shown: &str, why: &str) -> Outcome {
    tracing::error!(file = ?path, reason = why, "inbox file left where it is");
    let text = format!("{shown}: not imported: {why}\n");
    let report = report_name(name.as_bytes(), REPORT_SUFFIX);
    if let Err(e) = write_report(tenant_dir, OsStr::from_bytes(&report), &text) {
        tracing::error!(file = ?path, error = %e, "cannot write the report beside an inbox file");
    }
    left(path)
}

/// `name` with `suffix`, shortened so that it fits in a directory entry.
fn report_name(name: &[u8], suffix: &str) -> Vec<u8> {
    let keep = name.len().min(NAME_MAX - suffix.len() - 1);
    let mut out = name[..keep].to_vec();
    out.extend_from_slice(suffix.as_bytes());
    out
}

/// Moves the entry `name` (still the one `entry` describes) into `dest_dir`
/// under a timestamped name, with its report written first, so a filed
/// entry always has its report.
fn file_away(
    tenant_dir: &Dir,
    name: &OsStr,
    entry: &FileStat,
    dest_dir: &Dir,
    report: &str,
) -> Outcome {
    match fstatat(tenant_dir.fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(now) if same_entry(&now, entry) => {}
        Ok(_) => return Outcome::Again,
        Err(Errno::ENOENT) => return Outcome::Done,
        Err(e) => {
            tracing::error!(file = ?name, error = %e, "cannot inspect an inbox entry before filing it");
            return Outcome::Left(stamp_of(entry));
        }
    }
    // Wall time: when the file was really filed, like the audit log.
    let stamp = touchpoint_common::clock::wall_utc()
        .format("%Y%m%dT%H%M%S%.3fZ")
        .to_string();
    let mut result = Err(FilesError::Exists {
        path: dest_dir.path().to_path_buf(),
    });
    for attempt in 0..100u32 {
        let prefix = if attempt == 0 {
            format!("{stamp}-")
        } else {
            format!("{stamp}.{attempt}-")
        };
        // Room for the report's suffix and the temporary file's dot.
        let room = NAME_MAX - REPORT_SUFFIX.len() - 1 - prefix.len();
        let mut dest = prefix.into_bytes();
        dest.extend_from_slice(&name.as_bytes()[..name.len().min(room)]);
        let report_path = report_name(&dest, REPORT_SUFFIX);
        if fstatat(dest_dir.fd(), dest.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW).is_ok() {
            continue;
        }
        if let Err(e) = write_report(dest_dir, OsStr::from_bytes(&report_path), report) {
            tracing::error!(file = ?name, error = %e, "cannot write the report of an inbox file");
            return Outcome::Left(stamp_of(entry));
        }
        result = files::rename_at(
            tenant_dir,
            name,
            dest_dir,
            OsStr::from_bytes(&dest),
            Replace::No,
        );
        if !matches!(result, Err(FilesError::Exists { .. })) {
            break;
        }
    }
    match result {
        Ok(()) => Outcome::Done,
        Err(e) => {
            tracing::error!(file = ?name, error = %e, "cannot move an imported file out of the inbox; left where it is");
            Outcome::Left(stamp_of(entry))
        }
    }
}

fn stamp_of(st: &FileStat) -> Stamp {
    Stamp {
        dev: st.st_dev,
        ino: st.st_ino,
        kind: st.st_mode & SFlag::S_IFMT.bits(),
        len: u64::try_from(st.st_size).unwrap_or(0),
        mtime: (st.st_mtime, st.st_mtime_nsec),
    }
}

/// Writes `text` as `<dir>/<name>`: into a new temporary file (never an
/// existing one, which could be a link to something else), then renamed
/// over `name`.
fn write_report(dir: &Dir, name: &OsStr, text: &str) -> Result<(), FilesError> {
    dir.write(name, &[text.as_bytes()], Replace::Yes).map(drop)
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
    let _ = writeln!(s, "rows: {} total, {}", r.rows_total, r.rows_summary());
    if r.parked > 0 {
        let _ = writeln!(
            s,
            "vehicles parked: {} (holder not a known customer; attached when the customer is imported)",
            r.parked
        );
    }
    if let Some(line) = r.stale.describe(&r.file_name) {
        let _ = writeln!(s, "{line}");
    }
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
    if r.responses != Counts::default() {
        let c = r.responses;
        let _ = writeln!(
            s,
            "responses: {} inserted, {} updated, {} unchanged",
            c.inserted, c.updated, c.unchanged
        );
    }
    let _ = writeln!(s, "duplicate merges: {}", r.merges);
    if let Some(t) = &r.credited {
        let _ = writeln!(
            s,
            "credited: {} responses: {} credited to messages, {} to control records, {} organic",
            t.total(),
            t.to_messages,
            t.to_control,
            t.organic
        );
        if let Some(line) = t.unrecognised_line() {
            let _ = writeln!(s, "visit types: {line}");
        }
    }
    for line in r.corrections.describe() {
        let _ = writeln!(s, "re-export: {line}");
    }
    if !r.unmapped_columns.is_empty() {
        let _ = writeln!(s, "columns not imported: {}", r.unmapped_columns.join(", "));
    }
    for e in &r.errors {
        let _ = writeln!(s, "{e}");
    }
    if r.errors_truncated > 0 {
        let _ = writeln!(s, "… and {} more rejected rows", r.errors_truncated);
    }
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    if r.warnings_truncated > 0 {
        let _ = writeln!(s, "… and {} more warnings", r.warnings_truncated);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_says_what_a_re_export_removed() {
        use touchpoint_common::domain::{Corrected, Corrections, Timestamp};
        let mut r = ImportReport::new(
            7,
            touchpoint_common::TenantId::new("d001").expect("id"),
            "werkstatt.csv",
            "h",
            Timestamp::default(),
        );
        r.corrections = Corrections {
            responses: Corrected {
                span: Some((
                    touchpoint_common::Date::from_ymd(2026, 10, 1).expect("date"),
                    touchpoint_common::Date::from_ymd(2026, 10, 2).expect("date"),
                )),
                removed: 1,
                kept: 0,
            },
            unreadable: 0,
            ..Corrections::default()
        };
        let text = report_text(&r);
        assert!(
            text.contains("\nre-export: removed 1 response no longer in the export (customers and vehicles it names, 2026-10-01…2026-10-02)\n"),
            "{text}"
        );
    }

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
        // Even when they are not folders: they are the daemon's.
        assert!(!is_candidate(root, Path::new("/s/inbox/d001/done")));
        assert!(!is_candidate(root, Path::new("/s/inbox/d001/failed")));
    }

    #[test]
    fn report_names_fit_in_a_directory_entry() {
        let long = vec![b'k'; 255];
        let name = report_name(&long, REPORT_SUFFIX);
        assert!(name.len() < NAME_MAX, "{}", name.len());
        assert!(name.ends_with(REPORT_SUFFIX.as_bytes()));
        assert_eq!(report_name(b"a.csv", REPORT_SUFFIX), b"a.csv.report.txt");
    }
}

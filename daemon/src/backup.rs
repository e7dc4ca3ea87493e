//! Backups of the whole installation while it runs, their verification,
//! and a restore into an empty state directory.
//!
//! A backup is a folder in a *repository* (a folder the administrator
//! names; made 0700 when missing):
//!
//! ```text
//! <repository>/
//!   .lock                         held (flock) while a backup is written
//!   20261207T021500Z/             one finished backup
//!     central/                    the central database, copied
//!     tenants/<id>/store/         each dealer's database, copied
//!     secrets/erasure.key         the keys the stores cannot do without
//!     secrets/dispatch.key
//!     manifest.json               what is in it: stores, records per tree,
//!                                 every file with its size and BLAKE3 hash
//!     manifest.blake3             the manifest's own hash
//!   .incomplete-20261208T021500Z/ one being written, or left by a kill
//! ```
//!
//! Every backup is **full**: each database's live records copied into a
//! fresh database (`Stores::snapshot_*`), so a backup holds no old values
//! from sled's log (nothing of an erased customer travels into it) and is
//! as small as the data. Each store is copied at one moment: a dealer's
//! store closed for the copy (its requests wait), the central store held
//! from every other user while it is copied. Stores are copied one after
//! the other, the central one first, so two stores are not of the same
//! moment; the manifest says when each was taken. What crosses stores is
//! rebuilt at start (the tenants' figures in the central store).
//!
//! A backup is written under `.incomplete-<name>`, its manifest last, every
//! file and folder synced, and only then renamed to `<name>`: a kill at any
//! moment leaves the earlier backups as they were and at worst an
//! `.incomplete-` folder, which the next backup with `keep` removes. Not
//! backed up: the inbox and the upload spool (files not imported yet), the
//! email spool (emptied at every start), the letters and call lists
//! written (hand-over folders others collect), the configuration and the
//! policies (the administrator's files).
//!
//! [`verify`] checks a backup as restic's `check --read-data` checks a
//! repository: the manifest against its hash, every file against the
//! manifest (nothing missing, nothing extra, no link), and every database
//! opened from a scratch copy with its records counted against the
//! manifest. [`restore`] verifies, copies into an empty state directory
//! marked [`crate::store::RESTORE_MARKER`] until it is whole (a daemon
//! refuses to start on a marked one), counts again, and opens the stores
//! once, which migrates an older schema.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use touchpoint_common::codec::RECORD_SCHEMA_VERSION;
use touchpoint_common::domain::Timestamp;
use touchpoint_common::TenantId;

use crate::store::{StoreError, Stores, TreeCounts, RESTORE_MARKER};

pub const MANIFEST: &str = "manifest.json";
pub const MANIFEST_HASH: &str = "manifest.blake3";
/// The dispatch key's name in a backup and in a restored state directory
/// (where the configuration's default `dispatch.secret_file` is).
pub const DISPATCH_KEY: &str = "dispatch.key";
/// Rounds over the tenants whose store was busy (held longer than a
/// store's wait) before a backup gives up.
const BUSY_ROUNDS: u32 = 3;

const FORMAT: u32 = 1;
const INCOMPLETE: &str = ".incomplete-";
const VERIFYING: &str = ".verify-";
const LOCK: &str = ".lock";
/// The largest manifest read: a million files' lines.
const MAX_MANIFEST: u64 = 256 << 20;
/// The largest secret copied: keys are 32 bytes, hex or raw.
const MAX_SECRET: u64 = 64 << 10;
/// Findings listed before the rest are counted only.
const MAX_FINDINGS: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The request cannot be done as asked (a path, a busy repository).
    #[error("{0}")]
    Refused(String),
    /// It failed on the way; nothing finished was changed.
    #[error("{0}")]
    Failed(String),
    /// The backup does not verify: what is wrong, file by file.
    #[error("the backup does not verify:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

type Result<T> = std::result::Result<T, BackupError>;

fn io(what: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |e| BackupError::Failed(format!("{}: {e}", what.display()))
}

fn store(e: StoreError) -> BackupError {
    BackupError::Failed(e.to_string())
}

/// What a backup holds, written last into it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The layout of the backup folder (this module's [`FORMAT`]).
    pub format: u32,
    pub created_at: Timestamp,
    /// The daemon that wrote it.
    pub version: String,
    /// The record schema of its stores (`codec::RECORD_SCHEMA_VERSION`).
    pub schema: u8,
    pub stores: Vec<StoreEntry>,
    /// Secrets copied, by name (`secrets/<name>`).
    pub secrets: Vec<String>,
    /// Every file but the manifest and its hash, by path in the backup.
    pub files: Vec<FileEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreEntry {
    /// `None`: the central store.
    pub tenant: Option<TenantId>,
    /// Its folder in the backup (`central`, `tenants/<id>/store`).
    pub path: String,
    pub taken_at: Timestamp,
    pub records: TreeCounts,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
    pub blake3: String,
}

impl Manifest {
    pub fn records(&self) -> u64 {
        self.stores.iter().flat_map(|s| s.records.values()).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// What a backup run did.
#[derive(Clone, Debug)]
pub struct Done {
    pub path: PathBuf,
    pub manifest: Manifest,
    /// Tenants registered when the backup began and gone before their
    /// store was copied.
    pub skipped: Vec<String>,
    /// Earlier backups and leftovers removed by `keep`.
    pub removed: Vec<String>,
    pub took_ms: u64,
}

/// Writes backups of the running daemon's stores.
pub struct Backups {
    stores: Arc<Stores>,
    /// Files copied into `secrets/`: (name in the backup, where it is).
    secrets: Vec<(String, PathBuf)>,
}

impl Backups {
    pub fn new(stores: Arc<Stores>, secrets: Vec<(String, PathBuf)>) -> Self {
        Self { stores, secrets }
    }

    /// Writes a new full backup into the repository `repo` (made when
    /// missing); then, with `keep`, removes all but the newest `keep`
    /// backups and any leftover of an interrupted one. Blocking.
    pub fn run(&self, repo: &Path, keep: Option<usize>) -> Result<Done> {
        let started = Instant::now();
        if !repo.is_absolute() {
            return Err(BackupError::Refused(format!(
                "{}: the repository must be an absolute path",
                repo.display()
            )));
        }
        if keep == Some(0) {
            return Err(BackupError::Refused(
                "keep must be at least 1: the backup just written is kept".into(),
            ));
        }
        open_repository(repo, true)?;
        let _lock = lock(repo)?;
        let name = new_name(repo)?;
        let work = repo.join(format!("{INCOMPLETE}{name}"));
        make_dir(&work)?;
        tracing::info!(backup = %work.display(), "backup started");

        let mut stores = Vec::new();
        let central = work.join("central");
        let taken_at = Timestamp::wall();
        let records = self.stores.snapshot_central(&central).map_err(store)?;
        stores.push(StoreEntry {
            tenant: None,
            path: "central".into(),
            taken_at,
            records,
        });
        // The registry as the central copy has it: a tenant registered
        // after it is in neither.
        let registered = self.stores.central().tenants().map_err(store)?;
        let mut skipped = Vec::new();
        make_dir(&work.join("tenants"))?;
        // A store held longer than the wait for it (a long import) is
        // tried again after the others, a few rounds; a backup is written
        // whole or not at all.
        let mut todo: Vec<_> = registered.into_iter().map(|t| t.id).collect();
        for round in 1..=BUSY_ROUNDS {
            let mut busy = Vec::new();
            for id in todo {
                let dir = work.join("tenants").join(id.as_str());
                make_dir(&dir)?;
                let path = format!("tenants/{id}/store");
                let taken_at = Timestamp::wall();
                match self.stores.snapshot_tenant(&id, &work.join(&path)) {
                    Ok(Some(records)) => stores.push(StoreEntry {
                        tenant: Some(id.clone()),
                        path,
                        taken_at,
                        records,
                    }),
                    // Nothing stored yet: restored as a tenant without a store.
                    Ok(None) => {}
                    Err(StoreError::UnknownTenant(_)) => skipped.push(id.to_string()),
                    Err(StoreError::Unavailable(why)) if round < BUSY_ROUNDS => {
                        tracing::info!(tenant = %id, round, "tenant store busy, tried again later: {why}");
                        let _ = std::fs::remove_dir_all(work.join(&path));
                        busy.push(id);
                        continue;
                    }
                    Err(e) => return Err(store(e)),
                }
                tracing::debug!(tenant = %id, "tenant store copied");
            }
            todo = busy;
            if todo.is_empty() {
                break;
            }
        }
        let mut secrets = Vec::new();
        if !self.secrets.is_empty() {
            make_dir(&work.join("secrets"))?;
        }
        for (name, from) in &self.secrets {
            match read_bounded(from, MAX_SECRET) {
                Ok(bytes) => {
                    write_new(&work.join("secrets").join(name), &bytes)?;
                    secrets.push(name.clone());
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(from)(e)),
            }
        }
        let files = hash_tree(&work, true)?;
        let manifest = Manifest {
            format: FORMAT,
            created_at: Timestamp::wall(),
            version: env!("CARGO_PKG_VERSION").into(),
            schema: RECORD_SCHEMA_VERSION,
            stores,
            secrets,
            files,
        };
        let text = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| BackupError::Failed(format!("manifest: {e}")))?;
        write_new(&work.join(MANIFEST), &text)?;
        write_new(
            &work.join(MANIFEST_HASH),
            format!("{}\n", blake3::hash(&text).to_hex()).as_bytes(),
        )?;
        sync_dir(&work)?;
        let path = repo.join(&name);
        std::fs::rename(&work, &path).map_err(io(&work))?;
        sync_dir(repo)?;
        tracing::info!(
            backup = %path.display(),
            stores = manifest.stores.len(),
            records = manifest.records(),
            bytes = manifest.bytes(),
            "backup written"
        );
        let removed = match keep {
            Some(keep) => prune(repo, keep)?,
            None => Vec::new(),
        };
        Ok(Done {
            path,
            manifest,
            skipped,
            removed,
            took_ms: started.elapsed().as_millis() as u64,
        })
    }
}

/// What a verification found.
#[derive(Clone, Debug)]
pub struct Verified {
    pub path: PathBuf,
    pub manifest: Manifest,
}

/// Checks a backup (or a repository's newest one) whole: see the module's
/// text. Blocking; opens scratch copies of its databases beside it.
pub fn verify(path: &Path) -> Result<Verified> {
    let path = resolve(path)?;
    let manifest = read_manifest(&path)?;
    let mut findings = Vec::new();
    if manifest.format > FORMAT {
        findings.push(format!(
            "{MANIFEST}: layout {} is newer than this version's ({FORMAT})",
            manifest.format
        ));
    }
    if manifest.schema > RECORD_SCHEMA_VERSION {
        findings.push(format!(
            "{MANIFEST}: its stores hold record schema {}, newer than this version's ({RECORD_SCHEMA_VERSION}); verify and restore with the version that wrote it ({})",
            manifest.schema, manifest.version
        ));
    }
    check_files(&path, &manifest, &mut findings)?;
    if findings.is_empty() {
        // A database is only read by opening it, and sled writes to what
        // it opens: each is counted from a scratch copy.
        let scratch = scratch_dir(&path)?;
        let counted = count_stores(&path, &scratch.0, &manifest, &mut findings);
        drop(scratch);
        counted?;
    }
    if findings.is_empty() {
        Ok(Verified { path, manifest })
    } else {
        Err(BackupError::Invalid(cap(findings)))
    }
}

/// What a restore did.
#[derive(Clone, Debug)]
pub struct Restored {
    pub from: PathBuf,
    pub manifest: Manifest,
}

/// Restores a backup (or a repository's newest one) into `state_dir`,
/// which must be empty or missing: verified first, copied under the
/// restore marker, counted again, and opened once. Blocking; for
/// `touchpointd --restore`, with no daemon on `state_dir`.
pub fn restore(from: &Path, state_dir: &Path) -> Result<Restored> {
    let Verified {
        path: from,
        manifest,
    } = verify(from)?;
    match std::fs::symlink_metadata(state_dir) {
        Ok(m) if m.is_dir() => {
            let mut entries = std::fs::read_dir(state_dir).map_err(io(state_dir))?;
            if entries.next().is_some() {
                return Err(BackupError::Refused(format!(
                    "{}: not empty; a backup is restored into an empty or new state directory",
                    state_dir.display()
                )));
            }
        }
        Ok(_) => {
            return Err(BackupError::Refused(format!(
                "{}: not a folder",
                state_dir.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => make_dir(state_dir)?,
        Err(e) => return Err(io(state_dir)(e)),
    }
    let marker = state_dir.join(RESTORE_MARKER);
    write_new(
        &marker,
        format!("restoring {}\n", from.display()).as_bytes(),
    )?;
    sync_dir(state_dir)?;
    for f in &manifest.files {
        let target = match f.path.strip_prefix("secrets/") {
            Some(name) => state_dir.join(name),
            None => state_dir.join(&f.path),
        };
        if let Some(parent) = target.parent() {
            make_dirs(state_dir, parent)?;
        }
        let bytes = read_bounded(&from.join(&f.path), u64::MAX).map_err(io(&from.join(&f.path)))?;
        if blake3::hash(&bytes).to_hex().as_str() != f.blake3 {
            return Err(BackupError::Invalid(vec![format!(
                "{}: changed while it was restored",
                f.path
            )]));
        }
        write_new(&target, &bytes)?;
    }
    sync_tree(state_dir)?;
    let mut findings = Vec::new();
    count_stores_at(state_dir, &manifest, &mut findings)?;
    if !findings.is_empty() {
        return Err(BackupError::Invalid(cap(findings)));
    }
    // Opened once as the daemon opens it: an older schema is migrated
    // now, a damaged store is found now, not at the first request.
    let stores = Stores::open_restoring(state_dir, &Default::default()).map_err(store)?;
    for s in &manifest.stores {
        if let Some(id) = &s.tenant {
            stores.tenant(id).map_err(store)?;
        }
    }
    stores.close_all().map_err(store)?;
    drop(stores);
    std::fs::remove_file(&marker).map_err(io(&marker))?;
    sync_dir(state_dir)?;
    Ok(Restored { from, manifest })
}

/// The backup a path names: a backup folder (it has a manifest), or a
/// repository, whose newest finished backup it is.
fn resolve(path: &Path) -> Result<PathBuf> {
    let meta = std::fs::symlink_metadata(path).map_err(io(path))?;
    if !meta.is_dir() {
        return Err(BackupError::Refused(format!(
            "{}: not a folder (a backup, or a repository of backups)",
            path.display()
        )));
    }
    if path.join(MANIFEST).exists() {
        return Ok(path.to_path_buf());
    }
    finished(path)?.pop().map(|n| path.join(n)).ok_or_else(|| {
        BackupError::Refused(format!(
            "{}: neither a backup (no {MANIFEST}) nor a repository holding one",
            path.display()
        ))
    })
}

/// A finished backup's folder name: `YYYYMMDDTHHMMSSZ`, `-N` when two
/// began in one second. Sorts in time order.
fn is_backup_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 16
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z'
        && (b.len() == 16
            || (b[16] == b'-' && b.len() > 17 && b[17..].iter().all(u8::is_ascii_digit)))
}

/// The finished backups of a repository, oldest first.
fn finished(repo: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(repo).map_err(io(repo))? {
        let e = e.map_err(io(repo))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if is_backup_name(&name) && e.file_type().map_err(io(repo))?.is_dir() {
            names.push(name);
        }
    }
    names.sort_by(|a, b| backup_order(a).cmp(&backup_order(b)));
    Ok(names)
}

fn backup_order(name: &str) -> (&str, u64) {
    let (stamp, n) = name.split_at(16);
    (stamp, n.trim_start_matches('-').parse().unwrap_or(0))
}

fn new_name(repo: &Path) -> Result<String> {
    let stamp = touchpoint_common::clock::wall_utc()
        .format("%Y%m%dT%H%M%SZ")
        .to_string();
    let taken = |n: &str| repo.join(n).exists() || repo.join(format!("{INCOMPLETE}{n}")).exists();
    if !taken(&stamp) {
        return Ok(stamp);
    }
    (2..1000)
        .map(|i| format!("{stamp}-{i}"))
        .find(|n| !taken(n))
        .ok_or_else(|| {
            BackupError::Refused(format!("{}: too many backups this second", repo.display()))
        })
}

/// Removes all but the newest `keep` finished backups, and the leftovers
/// of interrupted ones (the caller holds the repository's lock).
fn prune(repo: &Path, keep: usize) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let done = finished(repo)?;
    let old = done.len().saturating_sub(keep);
    for name in &done[..old] {
        std::fs::remove_dir_all(repo.join(name)).map_err(io(&repo.join(name)))?;
        removed.push(name.clone());
    }
    for e in std::fs::read_dir(repo).map_err(io(repo))? {
        let e = e.map_err(io(repo))?;
        let name = e.file_name().to_string_lossy().into_owned();
        // A verification's scratch copy left by a process that is gone
        // (killed while verifying) goes too; a live one's stays.
        let dead_scratch = name
            .strip_prefix(VERIFYING)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| !Path::new("/proc").join(pid.to_string()).exists());
        if (name.starts_with(INCOMPLETE) || dead_scratch)
            && e.file_type().map_err(io(repo))?.is_dir()
        {
            std::fs::remove_dir_all(e.path()).map_err(io(&e.path()))?;
            removed.push(name);
        }
    }
    if !removed.is_empty() {
        sync_dir(repo)?;
        tracing::info!(removed = ?removed, "older backups removed");
    }
    Ok(removed)
}

/// Checks that `repo` is a real folder (made, 0700, when `create` and
/// missing; its parent must exist).
fn open_repository(repo: &Path, create: bool) -> Result<()> {
    match std::fs::symlink_metadata(repo) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(m) if m.file_type().is_symlink() => Err(BackupError::Refused(format!(
            "{}: a symbolic link; name the folder itself",
            repo.display()
        ))),
        Ok(_) => Err(BackupError::Refused(format!(
            "{}: not a folder",
            repo.display()
        ))),
        Err(e) if create && e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(repo)
                .map_err(|e| {
                    BackupError::Refused(format!(
                        "{}: cannot make the repository ({e})",
                        repo.display()
                    ))
                })?;
            if let Some(parent) = repo.parent() {
                sync_dir(parent)?;
            }
            Ok(())
        }
        Err(e) => Err(io(repo)(e)),
    }
}

/// The repository's lock, held while a backup is written into it.
fn lock(repo: &Path) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let path = repo.join(LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)
        .map_err(io(&path))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|_| {
        BackupError::Refused(format!(
            "{}: another backup is being written into this repository",
            repo.display()
        ))
    })
}

fn make_dir(path: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(io(path))
}

/// Makes the folders from `root` down to `dir`, each 0700.
fn make_dirs(root: &Path, dir: &Path) -> Result<()> {
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    let mut at = root.to_path_buf();
    for part in rel.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(BackupError::Failed(format!(
                    "{}: not a folder",
                    at.display()
                )))
            }
            Err(_) => make_dir(&at)?,
        }
    }
    Ok(())
}

/// Writes a new file (never through anything standing there), 0600,
/// synced.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Reads a file not through a link, up to `max` bytes.
/// A file opened for reading, never through a link.
fn open_read(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
}

fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let f = open_read(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > max {
        return Err(std::io::Error::other(format!(
            "{} bytes, more than the {max} expected",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(dir))
}

/// Syncs every folder below `root` and `root` (the files are synced as
/// they are written).
fn sync_tree(root: &Path) -> Result<()> {
    for e in walk(root)? {
        if e.1.is_dir() {
            sync_dir(&e.0)?;
        }
    }
    sync_dir(root)
}

/// Every entry below `root`, depth first, with its type (links not
/// followed).
fn walk(root: &Path) -> Result<Vec<(PathBuf, std::fs::FileType)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let e = e.map_err(io(&dir))?;
            let t = e.file_type().map_err(io(&e.path()))?;
            if t.is_dir() {
                stack.push(e.path());
            }
            out.push((e.path(), t));
        }
    }
    Ok(out)
}

/// The path of a file in a backup, `/`-separated.
fn rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Every regular file below `root` with its size and hash, by path;
/// synced on the way when `sync`.
fn hash_tree(root: &Path, sync: bool) -> Result<Vec<FileEntry>> {
    let mut files = Vec::new();
    for (path, t) in walk(root)? {
        if !t.is_file() {
            continue;
        }
        let f = open_read(&path).map_err(io(&path))?;
        if sync {
            f.sync_all().map_err(io(&path))?;
        }
        let mut hasher = blake3::Hasher::new();
        let bytes = std::io::copy(&mut &f, &mut hasher).map_err(io(&path))?;
        files.push(FileEntry {
            path: rel(root, &path),
            bytes,
            blake3: hasher.finalize().to_hex().to_string(),
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn read_manifest(backup: &Path) -> Result<Manifest> {
    let text = read_bounded(&backup.join(MANIFEST), MAX_MANIFEST)
        .map_err(|e| BackupError::Invalid(vec![format!("{MANIFEST}: {e}")]))?;
    let hash = read_bounded(&backup.join(MANIFEST_HASH), 1024)
        .map_err(|e| BackupError::Invalid(vec![format!("{MANIFEST_HASH}: {e}")]))?;
    if String::from_utf8_lossy(&hash).trim() != blake3::hash(&text).to_hex().as_str() {
        return Err(BackupError::Invalid(vec![format!(
            "{MANIFEST}: does not match {MANIFEST_HASH}: the manifest is damaged"
        )]));
    }
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| BackupError::Invalid(vec![format!("{MANIFEST}: {e}")]))?;
    // Paths come from a file: each must stay inside the backup.
    for f in &manifest.files {
        let p = Path::new(&f.path);
        if f.path.is_empty()
            || p.is_absolute()
            || p.components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(BackupError::Invalid(vec![format!(
                "{MANIFEST}: file path {:?} leaves the backup",
                f.path
            )]));
        }
    }
    for s in &manifest.stores {
        let expected = match &s.tenant {
            None => "central".to_string(),
            Some(t) => format!("tenants/{t}/store"),
        };
        if s.path != expected {
            return Err(BackupError::Invalid(vec![format!(
                "{MANIFEST}: store path {:?} is not where its store belongs ({expected})",
                s.path
            )]));
        }
    }
    Ok(manifest)
}

/// The files of a backup against its manifest.
fn check_files(backup: &Path, m: &Manifest, findings: &mut Vec<String>) -> Result<()> {
    let mut listed: BTreeMap<&str, &FileEntry> =
        m.files.iter().map(|f| (f.path.as_str(), f)).collect();
    for (path, t) in walk(backup)? {
        let name = rel(backup, &path);
        if t.is_dir() {
            continue;
        }
        if name == MANIFEST || name == MANIFEST_HASH {
            continue;
        }
        if !t.is_file() {
            findings.push(format!("{name}: not a regular file (a link?)"));
            listed.remove(name.as_str());
            continue;
        }
        let Some(entry) = listed.remove(name.as_str()) else {
            findings.push(format!("{name}: not in the manifest"));
            continue;
        };
        let f = open_read(&path).map_err(io(&path))?;
        let mut hasher = blake3::Hasher::new();
        let bytes = std::io::copy(&mut &f, &mut hasher).map_err(io(&path))?;
        if bytes != entry.bytes {
            findings.push(format!(
                "{name}: {bytes} bytes, the manifest says {}",
                entry.bytes
            ));
        } else if hasher.finalize().to_hex().as_str() != entry.blake3 {
            findings.push(format!("{name}: its content does not match its hash"));
        }
    }
    for name in listed.keys() {
        findings.push(format!("{name}: missing"));
    }
    Ok(())
}

/// A scratch folder beside a backup, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch_dir(backup: &Path) -> Result<Scratch> {
    let parent = backup.parent().unwrap_or(Path::new("/"));
    for i in 0..100u32 {
        let p = parent.join(format!("{VERIFYING}{}-{i}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&p) {
            Ok(()) => return Ok(Scratch(p)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(&p)(e)),
        }
    }
    Err(BackupError::Failed(format!(
        "{}: no scratch folder could be made for the check",
        parent.display()
    )))
}

/// Copies each database of a backup into `scratch` and counts it.
fn count_stores(
    backup: &Path,
    scratch: &Path,
    m: &Manifest,
    findings: &mut Vec<String>,
) -> Result<()> {
    for s in &m.stores {
        let prefix = format!("{}/", s.path);
        for f in m.files.iter().filter(|f| f.path.starts_with(&prefix)) {
            let target = scratch.join(&f.path);
            if let Some(parent) = target.parent() {
                make_dirs(scratch, parent)?;
            }
            std::fs::copy(backup.join(&f.path), &target).map_err(io(&target))?;
        }
    }
    count_stores_at(scratch, m, findings)
}

/// Counts the databases under `root` (a scratch copy or a restored state
/// directory) against the manifest.
fn count_stores_at(root: &Path, m: &Manifest, findings: &mut Vec<String>) -> Result<()> {
    for s in &m.stores {
        let path = root.join(&s.path);
        let counted = match s.tenant {
            None => Stores::count_central(&path),
            Some(_) => Stores::count_tenant(&path),
        };
        match counted {
            Ok(c) => {
                let trees: std::collections::BTreeSet<&String> =
                    c.keys().chain(s.records.keys()).collect();
                for tree in trees {
                    let (n, m) = (
                        c.get(tree).copied().unwrap_or(0),
                        s.records.get(tree).copied().unwrap_or(0),
                    );
                    if n != m {
                        findings.push(format!(
                            "{}: tree {tree}: {n} records, the manifest says {m}",
                            s.path
                        ));
                    }
                }
            }
            Err(e) => findings.push(format!("{}: cannot be opened ({e})", s.path)),
        }
    }
    Ok(())
}

fn cap(mut findings: Vec<String>) -> Vec<String> {
    if findings.len() > MAX_FINDINGS {
        let more = findings.len() - MAX_FINDINGS;
        findings.truncate(MAX_FINDINGS);
        findings.push(format!("… and {more} more"));
    }
    findings
}

#[cfg(test)]
mod tests;

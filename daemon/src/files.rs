//! Files the daemon writes into folders that others may write too: the
//! output folders a lettershop's or call centre's pickup job collects
//! from (letters, call lists, the email spool), the inbox a dealer drops
//! files into, the upload spool. The daemon runs as root or as a service
//! user that can write its own stores and keys; whoever can write such a
//! folder must not make it write anywhere else.
//!
//! So, below a folder's *root* (the configured output folder, the inbox,
//! the upload spool):
//!
//! - nothing is reached through a symbolic link: the root is opened with
//!   `O_DIRECTORY | O_NOFOLLOW`, every folder below it the same way relative
//!   to the one above, and every file operation is relative to an open
//!   folder (`openat`, `renameat`, `unlinkat`, `fstatat`). A root or tenant
//!   folder that is not a real folder is an error that says so
//!   ([`FilesError::NotAFolder`]); it is neither followed nor replaced. The
//!   path up to the root's parent is the administrator's (the configuration,
//!   the state directory) and is taken as given;
//! - a file is written into a new file of its own (`O_CREAT | O_EXCL |
//!   O_NOFOLLOW`, under a random hidden name, so no name can be planted in
//!   advance), synced, renamed into place and the folder synced: it appears
//!   whole or not at all, and never through anything that stood there;
//! - permissions come from the folder, not from the umask: a folder made
//!   here gets its parent's, a file read access for whom the folder grants
//!   it, write access for the daemon only ([`Perms`]).
//!
//! Temporary files are named `.tp-<16 hex digits>.tmp`; one left by a crash
//! is removed by [`Dir::remove_temps`] when no write can be under way.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag, RenameFlags, AT_FDCWD};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{fsync, unlinkat, UnlinkatFlags};

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("{}: not a folder (a symbolic link?); the daemon writes nothing through links: make it a folder", path.display())]
    NotAFolder { path: PathBuf },
    #[error("{}: already there; a written file is never replaced", path.display())]
    Exists { path: PathBuf },
    #[error("{}: not a plain name for a file in a folder", path.display())]
    BadName { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub type Result<T, E = FilesError> = std::result::Result<T, E>;

impl From<FilesError> for io::Error {
    fn from(e: FilesError) -> Self {
        let kind = match &e {
            FilesError::NotAFolder { .. } => io::ErrorKind::NotADirectory,
            FilesError::Exists { .. } => io::ErrorKind::AlreadyExists,
            FilesError::BadName { .. } => io::ErrorKind::InvalidInput,
            FilesError::Io { source, .. } => source.kind(),
        };
        io::Error::new(kind, e)
    }
}

fn io_at(path: &Path, e: impl Into<io::Error>) -> FilesError {
    FilesError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// The permissions of what the daemon makes in a folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perms {
    /// Of folders: the parent's permission bits and set-group-id (so that a
    /// shared group goes on owning what is made below).
    pub dir: u32,
    /// Of files: readable for whom the folder is readable, writable by the
    /// daemon only; never executable.
    pub file: u32,
}

impl Perms {
    /// Only the daemon's user, whatever the folders say (keys).
    pub const PRIVATE: Perms = Perms {
        dir: 0o700,
        file: 0o600,
    };

    /// What a folder with permission bits `mode` implies.
    pub fn of_mode(mode: u32) -> Perms {
        Perms {
            dir: mode & 0o2777,
            file: (mode & 0o644) | 0o600,
        }
    }

    /// What the folder `path` implies (followed: it is the administrator's);
    /// [`Perms::PRIVATE`] when it cannot be read.
    pub fn of_dir(path: &Path) -> Perms {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).map_or(Perms::PRIVATE, |m| Perms::of_mode(m.mode()))
    }
}

/// Whether a rename may replace what stands under the new name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replace {
    /// It may (a spooled email written again after a crash).
    Yes,
    /// It may not: a file someone may have fetched already stays as it is.
    No,
}

/// An open folder, reached without following links.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
    perms: Perms,
}

fn open_dir_at<Fd: AsFd>(parent: Fd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// `name` as one plain entry of a folder: not empty, no `/`, not `.` or
/// `..`, not longer than a file system takes.
fn plain(name: &OsStr) -> bool {
    let b = name.as_bytes();
    !b.is_empty() && b.len() <= 255 && !b.contains(&b'/') && b != b"." && b != b".."
}

impl Dir {
    /// Opens the folder `path`, creating it (with `perms.dir`, and its
    /// missing parents as the administrator's path says) when it is missing.
    /// What is made below it gets `perms`.
    pub fn create(path: &Path, perms: Perms) -> Result<Dir> {
        let (parent, name) = split(path)?;
        let parent_fd = match open_parent(parent) {
            Err(Errno::ENOENT) => {
                std::fs::create_dir_all(parent).map_err(|e| io_at(parent, e))?;
                open_parent(parent)
            }
            r => r,
        }
        .map_err(|e| io_at(parent, e))?;
        Dir::sub_of(&parent_fd, path, name, perms.dir, perms)
    }

    /// Opens the output folder `path` (creating it, as [`Dir::create`], with
    /// its parent's permissions); what is made below it gets the
    /// permissions the folder itself has then.
    pub fn output(path: &Path) -> Result<Dir> {
        let parent = path.parent().unwrap_or(Path::new("."));
        let made = Dir::create(path, Perms::of_dir(parent))?;
        let st = fstat(&made.fd).map_err(|e| io_at(path, e))?;
        Ok(Dir {
            perms: Perms::of_mode(st.st_mode),
            ..made
        })
    }

    /// Opens the output folder `path` if there is anything under that name
    /// (made nothing); what is made below it gets its permissions.
    pub fn open_output(path: &Path) -> Result<Option<Dir>> {
        let Some(d) = Dir::open(path, Perms::PRIVATE)? else {
            return Ok(None);
        };
        let st = fstat(&d.fd).map_err(|e| io_at(path, e))?;
        Ok(Some(d.with_perms(Perms::of_mode(st.st_mode))))
    }

    /// Opens the folder `path` the administrator named (the state
    /// directory, say), following it as given, links included; creates it
    /// and its missing parents first.
    pub fn given(path: &Path, perms: Perms) -> Result<Dir> {
        let fd = match open_parent(path) {
            Err(Errno::ENOENT) => {
                std::fs::create_dir_all(path).map_err(|e| io_at(path, e))?;
                open_parent(path)
            }
            r => r,
        }
        .map_err(|e| match e {
            Errno::ENOTDIR => FilesError::NotAFolder {
                path: path.to_path_buf(),
            },
            e => io_at(path, e),
        })?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
            perms,
        })
    }

    /// Opens the folder `path` if there is anything under that name.
    pub fn open(path: &Path, perms: Perms) -> Result<Option<Dir>> {
        let (parent, name) = split(path)?;
        let parent_fd = match open_parent(parent) {
            Err(Errno::ENOENT) => return Ok(None),
            r => r.map_err(|e| io_at(parent, e))?,
        };
        match open_dir_at(&parent_fd, name) {
            Ok(fd) => Ok(Some(Dir {
                fd,
                path: path.to_path_buf(),
                perms,
            })),
            Err(Errno::ENOENT) => Ok(None),
            Err(Errno::ELOOP | Errno::ENOTDIR) => Err(FilesError::NotAFolder {
                path: path.to_path_buf(),
            }),
            Err(e) => Err(io_at(path, e)),
        }
    }

    /// Opens the folder `name` in this one, creating it when missing.
    pub fn sub(&self, name: impl AsRef<OsStr>) -> Result<Dir> {
        let name = name.as_ref();
        let path = self.path.join(name);
        if !plain(name) {
            return Err(FilesError::BadName { path });
        }
        Dir::sub_of(&self.fd, &path, name, self.perms.dir, self.perms)
    }

    /// Opens the folder `name` in this one if there is anything under that name.
    pub fn open_sub(&self, name: impl AsRef<OsStr>) -> Result<Option<Dir>> {
        let name = name.as_ref();
        let path = self.path.join(name);
        if !plain(name) {
            return Err(FilesError::BadName { path });
        }
        match open_dir_at(&self.fd, name) {
            Ok(fd) => Ok(Some(Dir {
                fd,
                path,
                perms: self.perms,
            })),
            Err(Errno::ENOENT) => Ok(None),
            Err(Errno::ELOOP | Errno::ENOTDIR) => Err(FilesError::NotAFolder { path }),
            Err(e) => Err(io_at(&path, e)),
        }
    }

    fn sub_of(parent: &OwnedFd, path: &Path, name: &OsStr, mode: u32, perms: Perms) -> Result<Dir> {
        let created = match mkdirat(parent, name, Mode::from_bits_truncate(0o700)) {
            Ok(()) => true,
            Err(Errno::EEXIST) => false,
            Err(e) => return Err(io_at(path, e)),
        };
        let fd = open_dir_at(parent, name).map_err(|e| match e {
            Errno::ELOOP | Errno::ENOTDIR => FilesError::NotAFolder {
                path: path.to_path_buf(),
            },
            e => io_at(path, e),
        })?;
        if created {
            // Made 0700 so that nobody gets in before the permissions are
            // set; mkdir's mode is cut by the umask, the folder's counts.
            fchmod(&fd, Mode::from_bits_truncate(mode)).map_err(|e| io_at(path, e))?;
            // The new entry in the parent is durable too.
            fsync(parent).map_err(|e| io_at(path, e))?;
        }
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
            perms,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `name` if it is one plain entry of this folder (a path with `/`
    /// would reach past it).
    fn entry<'n>(&self, name: &'n OsStr) -> Result<&'n OsStr> {
        if plain(name) {
            Ok(name)
        } else {
            Err(FilesError::BadName {
                path: self.path.join(name),
            })
        }
    }

    pub fn perms(&self) -> Perms {
        self.perms
    }

    /// The same folder, making what is made below it with `perms`.
    pub fn with_perms(self, perms: Perms) -> Dir {
        Dir { perms, ..self }
    }

    /// The folder's descriptor, for `*at` calls of a caller's own.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Syncs the folder: its entries made or renamed are durable.
    pub fn sync(&self) -> Result<()> {
        fsync(&self.fd).map_err(|e| io_at(&self.path, e))
    }

    /// The type of the entry `name` (`S_IFREG`, `S_IFLNK`, …), not
    /// following a link; `None` when there is none.
    pub fn kind(&self, name: impl AsRef<OsStr>) -> Result<Option<SFlag>> {
        let name = self.entry(name.as_ref())?;
        match fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(SFlag::from_bits_truncate(
                st.st_mode & SFlag::S_IFMT.bits(),
            ))),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(io_at(&self.path.join(name), e)),
        }
    }

    /// Whether `name` is a regular file (a link to one is not).
    pub fn is_file(&self, name: impl AsRef<OsStr>) -> Result<bool> {
        Ok(self.kind(name)? == Some(SFlag::S_IFREG))
    }

    /// The names in the folder (not `.` and `..`).
    pub fn names(&self) -> Result<Vec<OsString>> {
        let fd = openat(
            &self.fd,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_at(&self.path, e))?;
        let mut dir = nix::dir::Dir::from_fd(fd).map_err(|e| io_at(&self.path, e))?;
        let mut out = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(|e| io_at(&self.path, e))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                out.push(OsStr::from_bytes(name).to_os_string());
            }
        }
        Ok(out)
    }

    /// Opens the regular file `name` for reading, not through a link and
    /// without blocking on a FIFO.
    pub fn open_read(&self, name: impl AsRef<OsStr>) -> Result<File> {
        let name = self.entry(name.as_ref())?;
        let path = self.path.join(name);
        let fd = openat(
            &self.fd,
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_at(&path, e))?;
        let st = fstat(&fd).map_err(|e| io_at(&path, e))?;
        if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFREG.bits() {
            return Err(io_at(&path, io::Error::other("not a regular file")));
        }
        Ok(File::from(fd))
    }

    /// Removes the entry `name` (a link itself, never what it points to).
    /// Missing is fine.
    pub fn remove(&self, name: impl AsRef<OsStr>) -> Result<()> {
        let name = self.entry(name.as_ref())?;
        match unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(io_at(&self.path.join(name), e)),
        }
    }

    /// A new, empty file of this folder's under a random temporary name.
    pub fn temp(&self) -> Result<Temp<'_>> {
        // A taken name (a crash's leftover, or planted) is skipped; a few
        // in a row of 2^64 would mean something else is wrong.
        let mut last = Errno::EEXIST;
        for _ in 0..8 {
            let name = temp_name();
            match openat(
                &self.fd,
                name.as_str(),
                OFlag::O_RDWR
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            ) {
                Ok(fd) => {
                    let temp = Temp {
                        dir: self,
                        name,
                        file: Some(File::from(fd)),
                    };
                    // open's mode is cut by the umask; the folder's counts.
                    fchmod(temp.fd()?, Mode::from_bits_truncate(self.perms.file))
                        .map_err(|e| io_at(&self.path.join(temp.name.as_str()), e))?;
                    return Ok(temp);
                }
                Err(Errno::EEXIST) => last = Errno::EEXIST,
                Err(e) => return Err(io_at(&self.path, e)),
            }
        }
        Err(io_at(&self.path, last))
    }

    /// Writes `parts`, one after the other, as the file `name`: whole or
    /// not at all, durably. Returns its path.
    pub fn write(
        &self,
        name: impl AsRef<OsStr>,
        parts: &[&[u8]],
        replace: Replace,
    ) -> Result<PathBuf> {
        let name = name.as_ref();
        let mut temp = self.temp()?;
        for p in parts {
            temp.write_all(p)?;
        }
        temp.publish(name, replace)?;
        self.sync()?;
        Ok(self.path.join(name))
    }

    /// Renames `from` to `to`, both in this folder; with [`Replace::No`]
    /// nothing standing under `to` is replaced.
    pub fn rename(
        &self,
        from: impl AsRef<OsStr>,
        to: impl AsRef<OsStr>,
        replace: Replace,
    ) -> Result<()> {
        rename_at(self, from.as_ref(), self, to.as_ref(), replace)
    }

    /// Removes the temporary files a crash left (see the module docs). Call
    /// only when no write into this folder can be under way. Returns how
    /// many went.
    pub fn remove_temps(&self) -> Result<usize> {
        let mut n = 0;
        for name in self.names()? {
            if is_temp_name(name.as_bytes())
                && self.kind(&name)?.is_some_and(|k| k != SFlag::S_IFDIR)
            {
                self.remove(&name)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// Renames `from` in `from_dir` to `to` in `to_dir` (folders of one file
/// system); with [`Replace::No`] nothing standing under `to` is replaced.
pub fn rename_at(
    from_dir: &Dir,
    from: &OsStr,
    to_dir: &Dir,
    to: &OsStr,
    replace: Replace,
) -> Result<()> {
    let to_path = || to_dir.path.join(to);
    if !plain(to) {
        return Err(FilesError::BadName { path: to_path() });
    }
    let r = match replace {
        Replace::Yes => nix::fcntl::renameat(&from_dir.fd, from, &to_dir.fd, to),
        Replace::No => match nix::fcntl::renameat2(
            &from_dir.fd,
            from,
            &to_dir.fd,
            to,
            RenameFlags::RENAME_NOREPLACE,
        ) {
            // A file system without RENAME_NOREPLACE: look, then rename.
            Err(Errno::EINVAL | Errno::ENOSYS) => match to_dir.kind(to)? {
                Some(_) => Err(Errno::EEXIST),
                None => nix::fcntl::renameat(&from_dir.fd, from, &to_dir.fd, to),
            },
            r => r,
        },
    };
    r.map_err(|e| match e {
        Errno::EEXIST => FilesError::Exists { path: to_path() },
        e => io_at(&to_path(), e),
    })
}

/// A new file under a temporary name in a [`Dir`]; removed when dropped
/// unless published or kept.
#[derive(Debug)]
pub struct Temp<'a> {
    dir: &'a Dir,
    name: String,
    file: Option<File>,
}

impl Temp<'_> {
    /// Its temporary name in the folder.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn fd(&self) -> Result<&File> {
        self.file
            .as_ref()
            .ok_or_else(|| io_at(&self.dir.path, io::Error::other("temporary file closed")))
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        let path = self.dir.path.join(&self.name);
        match self.file.as_mut() {
            Some(f) => f.write_all(bytes).map_err(|e| io_at(&path, e)),
            None => Err(io_at(&path, io::Error::other("temporary file closed"))),
        }
    }

    /// Syncs the file and renames it to `name` (the folder is not synced:
    /// the caller does, once for several).
    pub fn publish(mut self, name: impl AsRef<OsStr>, replace: Replace) -> Result<()> {
        self.fd()?
            .sync_all()
            .map_err(|e| io_at(&self.dir.path.join(&self.name), e))?;
        self.file = None;
        self.dir.rename(&self.name, name, replace)?;
        self.name.clear();
        Ok(())
    }

    /// Keeps the file under its temporary name and hands it over with that
    /// name (the caller removes it with [`Dir::remove`]).
    pub fn keep(mut self) -> Result<(File, String)> {
        let file = self
            .file
            .take()
            .ok_or_else(|| io_at(&self.dir.path, io::Error::other("temporary file closed")))?;
        Ok((file, std::mem::take(&mut self.name)))
    }
}

impl Drop for Temp<'_> {
    fn drop(&mut self) {
        if !self.name.is_empty() {
            self.file = None;
            let _ = self.dir.remove(&self.name);
        }
    }
}

const TEMP_PREFIX: &str = ".tp-";
const TEMP_SUFFIX: &str = ".tmp";

/// A random hidden name: `.tp-<16 hex digits>.tmp`. The standard library's
/// per-process random SipHash keys make it unpredictable without a
/// dependency; `O_EXCL` makes a collision harmless anyway.
fn temp_name() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(SEQ.fetch_add(1, Ordering::Relaxed));
    format!("{TEMP_PREFIX}{:016x}{TEMP_SUFFIX}", h.finish())
}

fn is_temp_name(name: &[u8]) -> bool {
    name.len() == TEMP_PREFIX.len() + 16 + TEMP_SUFFIX.len()
        && name.starts_with(TEMP_PREFIX.as_bytes())
        && name.ends_with(TEMP_SUFFIX.as_bytes())
        && name[TEMP_PREFIX.len()..TEMP_PREFIX.len() + 16]
            .iter()
            .all(u8::is_ascii_hexdigit)
}

fn split(path: &Path) -> Result<(&Path, &OsStr)> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) if plain(name) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            Ok((parent, name))
        }
        _ => Err(FilesError::BadName {
            path: path.to_path_buf(),
        }),
    }
}

/// The parent of a root, or another folder of the administrator's path:
/// followed as given.
fn open_parent(parent: &Path) -> nix::Result<OwnedFd> {
    openat(
        AT_FDCWD,
        parent,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Why [`secret`] failed: a file that is not a secret (`Setup`), or I/O.
#[derive(Debug)]
pub enum SecretError {
    Setup(String),
    Io(String),
}

impl std::fmt::Display for SecretError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretError::Setup(m) | SecretError::Io(m) => f.write_str(m),
        }
    }
}

/// Reads or creates a 32-byte secret of this installation (the one that
/// signs return paths and links; the one that keys the erasure's
/// suppression list): created new, 0600, never through a link.
pub fn secret(path: &std::path::Path) -> std::result::Result<[u8; 32], SecretError> {
    match std::fs::read(path) {
        Ok(b) => <[u8; 32]>::try_from(b.as_slice()).map_err(|_| {
            SecretError::Setup(format!(
                "{}: must hold exactly 32 bytes, has {}",
                path.display(),
                b.len()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            let seed = blake3::hash(
                format!(
                    "{}{:?}{}{}",
                    // Wall time, for entropy only.
                    touchpoint_common::clock::wall_millis(),
                    std::time::Instant::now(),
                    std::process::id(),
                    path.display()
                )
                .as_bytes(),
            );
            let mut h = blake3::Hasher::new_keyed(seed.as_bytes());
            if let Ok(extra) = std::fs::read("/proc/sys/kernel/random/uuid") {
                h.update(&extra);
            }
            key.copy_from_slice(h.finalize().as_bytes());
            // For the daemon's user only, written as a new file (never
            // through whatever stands at a temporary name), and never over
            // anything under the key's name: something there that could not
            // be read as a file (a dangling link) is an error, not replaced.
            let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                return Err(SecretError::Setup(format!(
                    "{}: not a file name",
                    path.display()
                )));
            };
            let dir = if dir.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                dir
            };
            let folder =
                Dir::given(dir, Perms::PRIVATE).map_err(|e| SecretError::Io(e.to_string()))?;
            match folder.write(name, &[&key], Replace::No) {
                Ok(_) => Ok(key),
                Err(e @ FilesError::Exists { .. }) => Err(SecretError::Setup(format!(
                    "{e}, but it cannot be read as a file (a dangling symbolic link?)"
                ))),
                Err(e) => Err(SecretError::Io(e.to_string())),
            }
        }
        Err(e) => Err(SecretError::Setup(format!("{}: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests;

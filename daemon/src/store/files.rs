//! The store's dealings with files that are not reads or writes of
//! records: waiting for a closed database's file lock to go, clearing what
//! a full disk left unfinished, syncing and removing the import's own files,
//! naming a file in an error. A leaf: it uses only the error type.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use super::error::{Result, StoreError};

/// How long a closed database's file lock may take to be released (sled's
/// I/O threads finish their last writes after the last handle is dropped).
pub(super) const RELEASE_WAIT: Duration = Duration::from_secs(60);

/// Waits until nobody holds the file lock sled takes on `path` (its
/// database file), by taking and dropping that lock ourselves.
pub(super) fn wait_released(path: &Path, within: Duration) -> std::io::Result<()> {
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_micros(200);
    loop {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        use nix::fcntl::{Flock, FlockArg};
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            // Dropping it releases our lock at once.
            Ok(_locked) => return Ok(()),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    "still locked",
                ))
            }
            Err((_, e)) => return Err(e.into()),
        }
    }
}

/// Removes the snapshot files sled left unfinished. sled writes a snapshot
/// to `snap.<lsn>.generating` and renames it when complete; one that a
/// full disk cut short stays behind, and sled 0.34 then reads it as the
/// newest snapshot at every open and refuses the database as corrupt (for
/// good: freeing space does not help). An unfinished snapshot holds nothing
/// the log and the previous snapshot do not.
pub(super) fn remove_unfinished_snapshots(db_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(db_dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.")
            && name.ends_with(".generating")
            && e.path().symlink_metadata().is_ok_and(|m| m.is_file())
        {
            match std::fs::remove_file(e.path()) {
                Ok(()) => {
                    tracing::warn!(file = %e.path().display(), "removed a snapshot sled left unfinished")
                }
                Err(err) => {
                    tracing::warn!(file = %e.path().display(), error = %err, "cannot remove an unfinished snapshot")
                }
            }
        }
    }
}

pub(super) fn sled_err(path: &Path) -> impl Fn(sled::Error) -> StoreError + '_ {
    move |source| StoreError::Sled {
        path: path.display().to_string(),
        source,
    }
}

pub(super) fn io_err(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Removes a file or a directory tree, never following a symlink.
pub(super) fn remove_path(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

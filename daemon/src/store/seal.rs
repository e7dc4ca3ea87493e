//! The seal of a standing written down at a close (`records/changes.rs`):
//! at the next open, the proof that nothing wrote the tenant's database
//! while it was closed. A leaf: files only.
//!
//! As the store closes with a standing written down, [`write`] records in
//! the file `standing.seal` beside the database the standing's token and a
//! digest of what every file of the database (`store/`, its subfolders
//! too) is as the close left it: name, type, inode, size, modification and
//! change times. A write by anything (an earlier build that knows nothing
//! of the standing, a tool) changes a file's size or times, and the change
//! time cannot be set back by a program (only by the clock: below). [`take`], as the store opens and before sled
//! touches its files, removes the seal and gives its token only if every
//! file is as recorded. Reading two trees whole at every close and open
//! did the same at a cost of about a second and 325 MB at a million
//! customers (BENCHMARKS.md).
//!
//! A file's time is only as fine as the file system's clock, which may
//! tick every few milliseconds: a write in the same tick as the database's
//! last one could leave its times as they were. So the seal is kept only
//! once that clock has moved past the database's newest time (the seal's
//! own modification time, as the file system set it, is later), and every
//! later write gets a later time, as long as the wall clock is not set
//! back meanwhile (a write would then have to land on exactly the times
//! recorded to go unseen). No seal is kept where the clock does not move
//! within [`CLOCK_WAIT`], where it counts whole seconds, or where the
//! seal's folder is on another file system than the database; the next
//! open then plans everyone. Deleting the seal file is always safe: it
//! only costs the next re-plan its shortcut.

use std::fs::{self, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

/// The seal's file in the tenant's folder, beside `store/`.
pub(super) const SEAL_FILE: &str = "standing.seal";
const SEAL_TEMP: &str = ".standing.seal.tmp";
/// The first word of the seal's one line.
const FORMAT: &str = "touchpoint-seal-1";
/// Files of a database at most; one with more is not sealed.
const MAX_FILES: usize = 4096;
/// How long [`write`] waits for the file system's clock to move on.
pub(super) const CLOCK_WAIT: Duration = Duration::from_millis(100);

/// Records, after the database in `tenant_dir` was closed and released,
/// that the standing written down with `token` stands on its files as
/// they are. Anything that goes wrong leaves no seal (a warning): the next
/// open then plans everyone, as it would have without the standing.
pub(super) fn write(tenant_dir: &Path, token: u64) {
    match try_write(tenant_dir, token) {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(dir = %tenant_dir.display(), "the file system's clock did not move on: no seal kept");
        }
        Err(e) => {
            tracing::warn!(dir = %tenant_dir.display(), error = %e, "cannot keep the standing's seal; the next re-plan plans everyone");
            let _ = fs::remove_file(tenant_dir.join(SEAL_FILE));
        }
    }
    let _ = fs::remove_file(tenant_dir.join(SEAL_TEMP));
}

fn try_write(tenant_dir: &Path, token: u64) -> std::io::Result<bool> {
    // A seal of an earlier close goes first: whatever happens below, none
    // but this one may stand for the standing just written.
    remove_if_there(&tenant_dir.join(SEAL_FILE))?;
    let store = tenant_dir.join("store");
    let (digest, newest) = digest(&store)?;
    let store_dev = fs::symlink_metadata(&store)?.dev();
    let temp = tenant_dir.join(SEAL_TEMP);
    let line = format!("{FORMAT} {token:016x} {digest:016x}\n");
    let deadline = Instant::now() + CLOCK_WAIT;
    loop {
        remove_if_there(&temp)?;
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&temp)?;
        f.write_all(line.as_bytes())?;
        let meta = f.metadata()?;
        drop(f);
        let written = modified_ns(&meta);
        // The seal's time says how the database's files' clock goes only
        // on their file system, and only if that clock is finer than a
        // second (whole seconds: a rewrite in place within one is not
        // seen).
        if meta.dev() != store_dev || written % 1_000_000_000 == 0 {
            return Ok(false);
        }
        if written > newest {
            // rename(2) replaces a name, never what a link there points to.
            fs::rename(&temp, tenant_dir.join(SEAL_FILE))?;
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Removes the seal of the database in `tenant_dir` and gives its token
/// if the database's files are as it recorded them. No seal, an unreadable
/// one, one that cannot be removed, or any file changed: `None`.
pub(super) fn take(tenant_dir: &Path) -> Option<u64> {
    let path = tenant_dir.join(SEAL_FILE);
    let mut text = String::new();
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
    {
        // A plain file only (a FIFO planted there would block a read),
        // bounded: the seal is one short line.
        Ok(f) => {
            if !f.metadata().is_ok_and(|m| m.is_file())
                || f.take(256).read_to_string(&mut text).is_err()
            {
                text.clear();
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        // A link planted there (ELOOP), or unreadable: no seal, and gone.
        Err(_) => {}
    }
    if let Err(e) = remove_if_there(&path) {
        // Left in place it could be read again after the files changed,
        // and would be refused then too; refused now all the same.
        tracing::warn!(path = %path.display(), error = %e, "cannot remove the standing's seal");
        return None;
    }
    let mut words = text.split_ascii_whitespace();
    let (Some(FORMAT), Some(token), Some(sealed), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return None;
    };
    let token = u64::from_str_radix(token, 16).ok()?;
    let sealed = u64::from_str_radix(sealed, 16).ok()?;
    let (now, _) = digest(&tenant_dir.join("store")).ok()?;
    (now == sealed).then_some(token)
}

fn remove_if_there(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn modified_ns(m: &fs::Metadata) -> i128 {
    i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec())
}

fn changed_ns(m: &fs::Metadata) -> i128 {
    i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec())
}

/// A digest of what the files under `store` (itself included) are, and
/// the newest modification or change time among them. Links are recorded
/// as links, never followed.
fn digest(store: &Path) -> std::io::Result<(u64, i128)> {
    let mut files = Vec::new();
    let top = fs::symlink_metadata(store)?;
    files.push((String::new(), top));
    let mut folders = vec![(store.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = folders.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let name = format!("{prefix}/{}", entry.file_name().to_string_lossy());
            // Of the entry itself (a link is not followed).
            let m = entry.metadata()?;
            if m.is_dir() {
                folders.push((entry.path(), name.clone()));
            }
            files.push((name, m));
            if files.len() > MAX_FILES {
                return Err(std::io::Error::other(format!(
                    "more than {MAX_FILES} files in {}",
                    store.display()
                )));
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    // Fixed keys (`DefaultHasher::new`): the same digest in every process
    // of this build (the standing is read back only by the build that
    // wrote it).
    let mut h = std::hash::DefaultHasher::new();
    let mut newest = i128::MIN;
    for (name, m) in &files {
        let (modified, changed) = (modified_ns(m), changed_ns(m));
        newest = newest.max(modified).max(changed);
        (name, m.mode(), m.dev(), m.ino(), m.len(), modified, changed).hash(&mut h);
    }
    Ok((h.finish(), newest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed_store() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store");
        fs::create_dir(&store).expect("store");
        fs::write(store.join("db"), b"0123456789").expect("db");
        fs::write(store.join("conf"), b"conf").expect("conf");
        write(dir.path(), 7);
        (dir, store)
    }

    #[test]
    fn a_seal_gives_its_token_once_while_the_files_are_unchanged() {
        let (dir, _) = sealed_store();
        assert!(dir.path().join(SEAL_FILE).is_file());
        assert_eq!(take(dir.path()), Some(7));
        assert_eq!(take(dir.path()), None, "taken once");
        assert!(!dir.path().join(SEAL_FILE).exists());
        assert!(!dir.path().join(SEAL_TEMP).exists());
    }

    /// Rewritten in place, same size, its modification time set back to
    /// what it was: the change time still tells.
    #[test]
    fn a_same_size_write_with_its_modification_time_set_back_breaks_the_seal() {
        let (dir, store) = sealed_store();
        let db = store.join("db");
        let was = fs::metadata(&db).and_then(|m| m.modified()).expect("mtime");
        let f = OpenOptions::new().write(true).open(&db).expect("open");
        (&f).write_all(b"9876543210").expect("write");
        f.set_modified(was).expect("set back");
        drop(f);
        assert_eq!(fs::metadata(&db).expect("db").len(), 10);
        assert_eq!(take(dir.path()), None);
    }

    #[test]
    fn a_file_added_removed_or_replaced_by_a_copy_breaks_the_seal() {
        for change in ["added", "removed", "copied"] {
            let (dir, store) = sealed_store();
            match change {
                "added" => fs::write(store.join("snap.0001"), b"s").expect("add"),
                "removed" => fs::remove_file(store.join("conf")).expect("remove"),
                _ => {
                    // A copy with the same bytes and times: another inode.
                    let db = store.join("db");
                    let was = fs::metadata(&db).and_then(|m| m.modified()).expect("mtime");
                    fs::copy(&db, store.join("db.copy")).expect("copy");
                    fs::rename(store.join("db.copy"), &db).expect("replace");
                    fs::File::options()
                        .write(true)
                        .open(&db)
                        .and_then(|f| f.set_modified(was))
                        .expect("times");
                }
            }
            assert_eq!(take(dir.path()), None, "{change}");
        }
    }

    #[test]
    fn a_seal_of_another_format_or_a_fifo_in_its_place_gives_nothing() {
        let (dir, _) = sealed_store();
        let seal = dir.path().join(SEAL_FILE);
        let text = fs::read_to_string(&seal).expect("seal");
        fs::write(&seal, text.replace(FORMAT, "touchpoint-seal-0")).expect("rewrite");
        assert_eq!(take(dir.path()), None);
        nix::unistd::mkfifo(&seal, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("fifo");
        // Would block forever if opened for reading without O_NONBLOCK.
        assert_eq!(take(dir.path()), None);
        assert!(fs::symlink_metadata(&seal).is_err(), "removed");
    }
}

//! The edge where the store writes files of its own (the import staging
//! file and the undo journal; sled writes its database itself).
//!
//! Every such write goes through [`Tracked`], so that a test can make the
//! files under one directory run out of space after a number of bytes, as
//! a full disk would, where it cannot mount a small file system: see
//! [`fail_writes_under`]. Without an armed fault this costs one atomic load
//! per buffered write.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// ENOSPC, as the kernel reports a full disk.
const ENOSPC: i32 = 28;

struct Fault {
    dir: PathBuf,
    /// Bytes that may still be written under `dir`.
    left: u64,
}

static ARMED: AtomicBool = AtomicBool::new(false);
static FAULTS: Mutex<Vec<Fault>> = Mutex::new(Vec::new());

fn faults() -> std::sync::MutexGuard<'static, Vec<Fault>> {
    FAULTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes the store's own writes to files under `dir` fail with "No space
/// left on device" once `after_bytes` more bytes have been written there,
/// until the returned guard is dropped (space freed).
#[must_use = "the fault lasts as long as the guard"]
pub fn fail_writes_under(dir: &Path, after_bytes: u64) -> FaultGuard {
    faults().push(Fault {
        dir: dir.to_path_buf(),
        left: after_bytes,
    });
    ARMED.store(true, Ordering::Release);
    FaultGuard {
        dir: dir.to_path_buf(),
    }
}

pub struct FaultGuard {
    dir: PathBuf,
}

impl Drop for FaultGuard {
    fn drop(&mut self) {
        let mut f = faults();
        f.retain(|x| x.dir != self.dir);
        ARMED.store(!f.is_empty(), Ordering::Release);
    }
}

fn charge(path: &Path, n: usize) -> io::Result<()> {
    if !ARMED.load(Ordering::Acquire) {
        return Ok(());
    }
    for f in faults().iter_mut().filter(|f| path.starts_with(&f.dir)) {
        if f.left < n as u64 {
            f.left = 0;
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        f.left -= n as u64;
    }
    Ok(())
}

/// A file the store writes, through the fault seam.
pub(super) struct Tracked {
    file: std::fs::File,
    path: PathBuf,
}

impl Tracked {
    pub(super) fn new(file: std::fs::File, path: &Path) -> Self {
        Self {
            file,
            path: path.to_path_buf(),
        }
    }

    pub(super) fn file(&self) -> &std::fs::File {
        &self.file
    }
}

impl Write for Tracked {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        charge(&self.path, buf.len())?;
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

//! The undo journal of an import being applied: before a batch reaches the
//! database, what it overwrites (or that the key was absent) is appended
//! here in one checksummed frame and synced; rolling back replays the valid
//! frames newest first. A torn or unsynced last frame was never applied.
//!
//! ```text
//! frame   len(u32 LE) checksum(8, blake3) payload
//! record  tree(1, T) key_len(u32 LE) key  0 | 1 before_len(u32 LE) before
//! ```
//!
//! Reaches the dealer's trees (`records`) to restore them; writes through
//! `diskio`. Must not import `import.rs` or `apply.rs` (they use it).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::store::diskio::Tracked;
use crate::store::error::{Result, StoreError};
use crate::store::files::io_err;
use crate::store::records::Records;

/// A journal frame longer than this is not one we wrote (a torn length).
const MAX_FRAME: u64 = 1 << 30;

/// Restores one journal file's before-images, newest batch first.
pub(super) fn replay(s: &Records, path: &Path) -> Result<usize> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let len = f.metadata().map_err(io_err(path))?.len();
    let mut frames = Vec::new();
    let mut pos = 0u64;
    let mut head = [0u8; 12];
    let mut payload = Vec::new();
    // The valid frames: a torn or unsynced last one was never applied.
    while pos + 12 <= len {
        f.seek(SeekFrom::Start(pos)).map_err(io_err(path))?;
        f.read_exact(&mut head).map_err(io_err(path))?;
        let n = u64::from(u32::from_le_bytes([head[0], head[1], head[2], head[3]]));
        if n > MAX_FRAME || pos + 12 + n > len {
            break;
        }
        payload.resize(n as usize, 0);
        f.read_exact(&mut payload).map_err(io_err(path))?;
        if checksum(&payload) != head[4..12] {
            break;
        }
        frames.push((pos + 12, n as usize));
        pos += 12 + n;
    }
    let mut restored = 0;
    for (at, n) in frames.into_iter().rev() {
        f.seek(SeekFrom::Start(at)).map_err(io_err(path))?;
        payload.resize(n, 0);
        f.read_exact(&mut payload).map_err(io_err(path))?;
        let mut rest = payload.as_slice();
        while !rest.is_empty() {
            let (t, key, before, tail) = parse_record(rest).ok_or_else(|| {
                StoreError::Conflict(format!("{}: malformed journal record", path.display()))
            })?;
            let tree = t.tree(s);
            match before {
                Some(v) => tree.insert(key, v).map(|_| ()),
                None => tree.remove(key).map(|_| ()),
            }
            .map_err(s.db.err())?;
            restored += 1;
            rest = tail;
        }
    }
    Ok(restored)
}

type Record<'a> = (T, &'a [u8], Option<&'a [u8]>, &'a [u8]);

fn parse_record(b: &[u8]) -> Option<Record<'_>> {
    let (&tag, b) = b.split_first()?;
    let t = T::from_tag(tag)?;
    let (key, b) = take_len(b)?;
    let (&has, b) = b.split_first()?;
    if has == 0 {
        return Some((t, key, None, b));
    }
    let (before, b) = take_len(b)?;
    Some((t, key, Some(before), b))
}

fn take_len(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
    let rest = b.get(4..)?;
    Some((rest.get(..n)?, rest.get(n..)?))
}

fn checksum(b: &[u8]) -> [u8; 8] {
    let h = blake3::hash(b);
    let mut out = [0u8; 8];
    out.copy_from_slice(&h.as_bytes()[..8]);
    out
}

/// A write-ahead undo journal: before-images appended in synced frames.
pub(super) struct Journal {
    out: Tracked,
    path: PathBuf,
    buf: Vec<u8>,
}

impl Journal {
    pub(super) fn create(path: &Path) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io_err(path))?;
        Ok(Self {
            out: Tracked::new(file, path),
            path: path.to_path_buf(),
            buf: Vec::new(),
        })
    }

    pub(super) fn record(&mut self, t: T, key: &[u8], before: Option<&[u8]>) {
        self.buf.push(t as u8);
        self.buf
            .extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(key);
        match before {
            None => self.buf.push(0),
            Some(v) => {
                self.buf.push(1);
                self.buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
                self.buf.extend_from_slice(v);
            }
        }
    }

    /// Writes what was recorded as one frame and syncs it.
    pub(super) fn sync(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let len = u32::try_from(self.buf.len())
            .map_err(|_| StoreError::Conflict("journal frame too large".into()))?;
        let mut frame = Vec::with_capacity(12 + self.buf.len());
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&checksum(&self.buf));
        frame.extend_from_slice(&self.buf);
        self.out
            .write_all(&frame)
            .and_then(|()| self.out.file().sync_data())
            .map_err(io_err(&self.path))?;
        self.buf.clear();
        Ok(())
    }
}

/// The trees an import writes, as journal records name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum T {
    Customers = 0,
    Vehicles = 1,
    Owner = 2,
    Consents = 3,
    Visits = 4,
    Imports = 5,
    ImportHash = 6,
    Meta = 7,
    Responses = 8,
    AsOf = 9,
}

impl T {
    fn from_tag(tag: u8) -> Option<Self> {
        Some(match tag {
            0 => T::Customers,
            1 => T::Vehicles,
            2 => T::Owner,
            3 => T::Consents,
            4 => T::Visits,
            5 => T::Imports,
            6 => T::ImportHash,
            7 => T::Meta,
            8 => T::Responses,
            9 => T::AsOf,
            _ => return None,
        })
    }

    pub(super) fn tree(self, s: &Records) -> &sled::Tree {
        match self {
            T::Customers => &s.customers,
            T::Vehicles => &s.vehicles,
            T::Owner => &s.owner,
            T::Consents => &s.consents,
            T::Visits => &s.visits,
            T::Imports => &s.imports,
            T::ImportHash => &s.import_hash,
            T::Meta => &s.meta,
            T::Responses => &s.responses,
            T::AsOf => &s.as_of,
        }
    }
}

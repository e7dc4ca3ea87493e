//! Copies of the stores as they stand, for a backup (`crate::backup`): a
//! database's live trees copied into a new database elsewhere while nobody
//! writes to it, so that the copy is one moment of that store and carries
//! none of the old values sled keeps in its log (an erased customer's
//! bytes do not travel into backups).
//!
//! A tenant's store is copied closed: the open set holds its slot
//! meanwhile (`Stores::snapshot_tenant`), so requests for that tenant wait
//! for the copy and no other. The central store cannot close (every
//! request reads the registry), so it is copied open with no other user:
//! `Central::snapshot` takes the instance away from `Central::db` while
//! it copies, and the requests that need it meanwhile wait.
//!
//! Also the tree copier of `rewrite.rs`. A leaf: it uses `db`'s settings
//! and the leaves `error` and `files`.

use std::collections::BTreeMap;
use std::path::Path;

use super::error::{Result, StoreError};
use super::files::{sled_err, wait_released, RELEASE_WAIT};

/// Records per tree, by the tree's name (sled's default tree included:
/// it holds the schema stamp).
pub type TreeCounts = BTreeMap<String, u64>;

/// The cache of a copy being written: only what the copy passes through.
pub(super) const COPY_CACHE: u64 = 8 * 1024 * 1024;

/// Copies every live tree of `from` into a new database at `to` (which
/// must not exist), flushes and closes the copy, and waits until sled has
/// let go of its files. `segment_bytes` as the copied store's own.
pub(super) fn copy_trees(
    from: &sled::Db,
    to: &Path,
    segment_bytes: Option<usize>,
) -> Result<TreeCounts> {
    let mut config = sled::Config::new()
        .path(to)
        .cache_capacity(COPY_CACHE)
        .flush_every_ms(None)
        .create_new(true);
    if let Some(bytes) = segment_bytes {
        config = config.segment_size(bytes);
    }
    let mut counts = TreeCounts::new();
    {
        let new = config.open().map_err(sled_err(to))?;
        for name in from.tree_names() {
            let src = from.open_tree(&name).map_err(sled_err(to))?;
            let dst = new.open_tree(&name).map_err(sled_err(to))?;
            let mut n = 0u64;
            for kv in src.iter() {
                let (k, v) = kv.map_err(sled_err(to))?;
                dst.insert(k, v).map_err(sled_err(to))?;
                n += 1;
            }
            counts.insert(String::from_utf8_lossy(&name).into_owned(), n);
        }
        new.flush().map_err(sled_err(to))?;
    }
    wait_released(&to.join("db"), RELEASE_WAIT).map_err(|source| StoreError::Io {
        path: to.join("db").display().to_string(),
        source,
    })?;
    Ok(counts)
}

/// The records per tree of the closed database at `path`, opened for the
/// count and closed again (a restored or verified copy). sled writes to a
/// database it opens: count copies, never the only one.
pub(super) fn count_trees(path: &Path, segment_bytes: Option<usize>) -> Result<TreeCounts> {
    let mut counts = TreeCounts::new();
    {
        let mut config = sled::Config::new()
            .path(path)
            .cache_capacity(COPY_CACHE)
            .flush_every_ms(None);
        if let Some(bytes) = segment_bytes {
            config = config.segment_size(bytes);
        }
        let db = config.open().map_err(sled_err(path))?;
        for name in db.tree_names() {
            let tree = db.open_tree(&name).map_err(sled_err(path))?;
            let mut n = 0u64;
            for kv in tree.iter() {
                kv.map_err(sled_err(path))?;
                n += 1;
            }
            counts.insert(String::from_utf8_lossy(&name).into_owned(), n);
        }
    }
    wait_released(&path.join("db"), RELEASE_WAIT).map_err(|source| StoreError::Io {
        path: path.join("db").display().to_string(),
        source,
    })?;
    Ok(counts)
}

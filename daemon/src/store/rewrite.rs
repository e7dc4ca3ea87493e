//! Rewriting a tenant's database into a fresh one, so that what was
//! removed from its trees is gone from disk too: sled keeps old values in
//! its log segments until it happens to reuse them, so an erased customer
//! would still be in the files. The live trees are copied into a new
//! database beside the old one (`<tenant>/store.rewrite`), which is flushed,
//! closed and then swapped with `<tenant>/store` in one `renameat2`
//! (`RENAME_EXCHANGE`); the old database, now at `store.rewrite`, is
//! removed. A kill at any point leaves `store` whole: the old database
//! before the exchange, the new one after it. Whatever stands at
//! `store.rewrite` when a store is opened is a leftover (a partial copy, or
//! the old database after the exchange) and is removed first
//! ([`before_open`]).
//!
//! The central database (`<state>/central`) is rewritten the same way
//! beside itself (`central.rewrite`), with sled's default segment size,
//! while `Central` holds it closed (`Central::rewrite`: after an erasure
//! replaced a person's numbers in the audit log, after retention removed
//! audit lines).
//!
//! Runs only on a closed database: the open set holds the tenant's slot
//! (`Stores::rewrite_tenant`). A leaf: it uses `db`'s settings and the
//! leaves `error` and `files`.

use std::path::Path;

use super::db::TENANT_SEGMENT_BYTES;
use super::error::{Result, StoreError};
use super::files::{io_err, remove_path, sled_err, sync_dir, wait_released, RELEASE_WAIT};
use super::snapshot::{copy_trees, COPY_CACHE};

/// Where the copy is made, beside `store`.
pub(super) const REWRITE_DIR: &str = "store.rewrite";

/// Removes a leftover of an interrupted rewrite (see the module docs).
pub(super) fn before_open(dir: &Path) -> Result<()> {
    before_open_named(dir, REWRITE_DIR)
}

/// [`before_open`] for the database `<dir>/<name>`, whose copy is made at
/// `<dir>/<name>.rewrite`.
pub(super) fn before_open_named(dir: &Path, copy_name: &str) -> Result<()> {
    let leftover = dir.join(copy_name);
    if std::fs::symlink_metadata(&leftover).is_ok() {
        tracing::warn!(dir = %leftover.display(), "removing the leftover of an interrupted store rewrite");
        remove_path(&leftover).map_err(io_err(&leftover))?;
        sync_dir(dir)?;
    }
    Ok(())
}

/// Rewrites the closed database `<dir>/store` (see the module docs).
pub(super) fn rewrite(dir: &Path) -> Result<()> {
    rewrite_named(dir, "store", Some(TENANT_SEGMENT_BYTES))
}

/// The central database's copy, beside it.
pub(super) const CENTRAL_REWRITE: &str = "central.rewrite";

/// Rewrites the closed database `<dir>/<name>` through a copy at
/// `<dir>/<name>.rewrite` made with `segment_bytes` (`None`: sled's
/// default), the segment size the database was made with.
pub(super) fn rewrite_named(dir: &Path, name: &str, segment_bytes: Option<usize>) -> Result<()> {
    let copy_name = format!("{name}.rewrite");
    before_open_named(dir, &copy_name)?;
    let old_path = dir.join(name);
    let new_path = dir.join(&copy_name);
    match std::fs::symlink_metadata(&old_path) {
        Ok(m) if m.is_dir() => {}
        // Nothing stored yet: nothing to rewrite.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Ok(_) => {
            return Err(StoreError::Conflict(format!(
                "{}: not a directory; not rewritten",
                old_path.display()
            )))
        }
        Err(e) => return Err(io_err(&old_path)(e)),
    }
    copy(&old_path, &new_path, segment_bytes)?;
    wait_released(&old_path.join("db"), RELEASE_WAIT).map_err(io_err(&old_path))?;
    wait_released(&new_path.join("db"), RELEASE_WAIT).map_err(io_err(&new_path))?;
    sync_dir(dir)?;
    let folder = std::fs::File::open(dir).map_err(io_err(dir))?;
    nix::fcntl::renameat2(
        &folder,
        copy_name.as_str(),
        &folder,
        name,
        nix::fcntl::RenameFlags::RENAME_EXCHANGE,
    )
    .map_err(|e| io_err(dir)(e.into()))?;
    sync_dir(dir)?;
    // The old database, now under the copy's name.
    remove_path(&new_path).map_err(io_err(&new_path))?;
    sync_dir(dir)
}

/// Copies every live tree of the closed database at `from` into a new one
/// at `to`, durably, and closes both.
fn copy(from: &Path, to: &Path, segment_bytes: Option<usize>) -> Result<()> {
    let mut config = sled::Config::new()
        .path(from)
        .cache_capacity(COPY_CACHE)
        .flush_every_ms(None);
    if let Some(bytes) = segment_bytes {
        config = config.segment_size(bytes);
    }
    let old = config.open().map_err(sled_err(from))?;
    copy_trees(&old, to, segment_bytes).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_holding(dir: &Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("read dir").flatten() {
                let p = e.path();
                let m = p.symlink_metadata().expect("metadata");
                if m.is_dir() {
                    stack.push(p);
                } else if std::fs::read(&p)
                    .expect("read")
                    .windows(needle.len())
                    .any(|w| w == needle)
                {
                    found.push(p);
                }
            }
        }
        found
    }

    fn db(dir: &Path) -> sled::Db {
        sled::Config::new()
            .path(dir.join("store"))
            .segment_size(TENANT_SEGMENT_BYTES)
            .open()
            .expect("open")
    }

    #[test]
    fn a_rewrite_keeps_the_live_records_and_drops_what_was_removed_from_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = db(dir.path());
            let t = db.open_tree("customers").expect("tree");
            t.insert("K1", &b"Quellenbruennerich"[..]).expect("insert");
            t.insert("K2", &b"Bleibtreu"[..]).expect("insert");
            // The schema stamp lives in the default tree: it moves too.
            db.insert(super::super::schema::KEY, &[7u8]).expect("stamp");
            db.flush().expect("flush");
            t.remove("K1").expect("remove");
            db.flush().expect("flush");
        }
        wait_released(&dir.path().join("store").join("db"), RELEASE_WAIT).expect("released");
        // sled keeps the removed value in its files: the reason for all this.
        assert!(!files_holding(dir.path(), b"Quellenbruennerich").is_empty());

        rewrite(dir.path()).expect("rewrite");

        assert_eq!(
            files_holding(dir.path(), b"Quellenbruennerich"),
            Vec::<std::path::PathBuf>::new()
        );
        assert!(!dir.path().join(REWRITE_DIR).exists());
        let db = db(dir.path());
        let t = db.open_tree("customers").expect("tree");
        assert_eq!(
            t.get("K2").expect("get").as_deref(),
            Some(&b"Bleibtreu"[..])
        );
        assert_eq!(t.get("K1").expect("get"), None);
        assert_eq!(
            db.get(super::super::schema::KEY).expect("get").as_deref(),
            Some(&[7u8][..]),
            "the schema stamp is kept"
        );
    }

    #[test]
    fn the_leftover_of_an_interrupted_rewrite_is_removed_and_the_store_stays_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = db(dir.path());
            db.insert("k", "v").expect("insert");
            db.flush().expect("flush");
        }
        // Killed while copying (a partial new database), or after the
        // exchange (the old one): either way `store` is whole.
        let leftover = dir.path().join(REWRITE_DIR);
        std::fs::create_dir_all(&leftover).expect("mkdir");
        std::fs::write(leftover.join("db"), b"half a copy").expect("write");
        wait_released(&dir.path().join("store").join("db"), RELEASE_WAIT).expect("released");

        before_open(dir.path()).expect("before open");

        assert!(!leftover.exists());
        let db = db(dir.path());
        assert_eq!(db.get("k").expect("get").as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn nothing_stored_is_nothing_to_rewrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        rewrite(dir.path()).expect("rewrite");
        assert!(!dir.path().join("store").exists());
    }
}

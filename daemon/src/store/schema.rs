//! Which shape of stored records a database holds, and the way from an
//! older shape to this build's.
//!
//! Every database (the central one and each tenant's) keeps the
//! [`RECORD_SCHEMA_VERSION`] of its records under [`KEY`] in its default
//! tree; every record also carries it in its first byte (`codec`). On
//! open, [`prepare`]:
//!
//! * no stamp: a database just created, or one written before the stamp
//!   existed (whose records are version 1): stamped with this build's;
//! * an older stamp: each step of the database's list of [`Migration`]s
//!   from there runs in order, with a progress line in the log, and the
//!   stamp moves on after each step once it is durable. A step interrupted
//!   (a crash, a full disk) runs again from its start on the next open:
//!   steps must be idempotent, which the record's own version byte makes
//!   easy (a record already in the new shape is left alone);
//! * a newer stamp: refused ([`StoreError::NewerSchema`]): this build
//!   would misread the records. For the central database that stops the
//!   daemon at start, with the message.
//!
//! Every change of a stored record's shape bumps `RECORD_SCHEMA_VERSION`
//! and adds its step here. `tests/e2e/upgrade.rs` opens a state directory
//! written by version 1 (`tests/fixtures/state-v1`) and compares every
//! record with what was written: it fails until the step exists.
//!
//! A leaf: uses only `error`.

use std::path::Path;
use std::time::{Duration, Instant};

use touchpoint_common::codec::RECORD_SCHEMA_VERSION;

use super::error::{Result, StoreError};

/// The stamp's key in a database's default tree (no tree of ours uses the
/// default one).
pub(super) const KEY: &[u8] = b"touchpoint.schema_version";

/// How often a long migration logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// One step from a schema version to the next.
pub(super) struct Migration {
    /// The version it reads; it leaves the database at `from + 1`.
    pub from: u8,
    /// What it changes, for the log.
    pub what: &'static str,
    /// Rewrites the records; calls `progress` with the number done so far
    /// now and then. Must be idempotent (see the module's text).
    pub run: fn(&sled::Db, &mut dyn FnMut(u64)) -> Result<()>,
}

/// The steps of a tenant's database (none yet: version 1 is the first).
pub(super) const TENANT_STEPS: &[Migration] = &[];
/// The steps of the central database (none yet).
pub(super) const CENTRAL_STEPS: &[Migration] = &[];

/// The schema version a database says it holds (1 when unstamped).
pub(super) fn stamped(db: &sled::Db, path: &Path) -> Result<u8> {
    let err = |source| StoreError::Sled {
        path: path.display().to_string(),
        source,
    };
    match db.get(KEY).map_err(err)? {
        None => Ok(1),
        Some(v) if v.len() == 1 => Ok(v[0]),
        Some(v) => Err(StoreError::Unavailable(format!(
            "{}: its schema stamp is damaged ({} bytes where one is expected)",
            path.display(),
            v.len()
        ))),
    }
}

/// Brings an opened database to this build's schema, or refuses it.
pub(super) fn prepare(db: &sled::Db, path: &Path, steps: &[Migration]) -> Result<()> {
    prepare_to(db, path, steps, RECORD_SCHEMA_VERSION)
}

fn prepare_to(db: &sled::Db, path: &Path, steps: &[Migration], current: u8) -> Result<()> {
    let err = |source| StoreError::Sled {
        path: path.display().to_string(),
        source,
    };
    let found = stamped(db, path)?;
    if found > current {
        return Err(StoreError::NewerSchema {
            path: path.display().to_string(),
            found,
            reads: current,
        });
    }
    let mut at = found;
    while at < current {
        let Some(step) = steps.iter().find(|s| s.from == at) else {
            return Err(StoreError::Unavailable(format!(
                "{}: holds schema version {at} and this build knows no way from it to {current}",
                path.display()
            )));
        };
        tracing::info!(store = %path.display(), from = at, to = at + 1, what = step.what, "migrating the stored records");
        let started = Instant::now();
        let mut last = Instant::now();
        let mut progress = |done: u64| {
            if last.elapsed() >= PROGRESS_EVERY {
                last = Instant::now();
                tracing::info!(store = %path.display(), from = at, done, "migrating the stored records");
            }
        };
        (step.run)(db, &mut progress)?;
        // The records are durable before the stamp says so.
        db.flush().map_err(err)?;
        db.insert(KEY, &[at + 1]).map_err(err)?;
        db.flush().map_err(err)?;
        tracing::info!(
            store = %path.display(),
            to = at + 1,
            secs = started.elapsed().as_secs_f64(),
            "migrated the stored records"
        );
        at += 1;
    }
    if db.get(KEY).map_err(err)?.is_none() {
        // Durable with the database's next flush; until then an open
        // stamps it again.
        db.insert(KEY, &[current]).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn temp_db() -> (tempfile::TempDir, sled::Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new()
            .path(dir.path().join("db"))
            .open()
            .unwrap();
        (dir, db)
    }

    /// A step from 1 to 2: every value of tree `t` gets a `!` (once).
    fn exclaim(db: &sled::Db, progress: &mut dyn FnMut(u64)) -> Result<()> {
        let t = db.open_tree("t").unwrap();
        for (n, kv) in t.iter().enumerate() {
            let (k, v) = kv.unwrap();
            if !v.ends_with(b"!") {
                let mut new = v.to_vec();
                new.push(b'!');
                t.insert(k, new).unwrap();
            }
            progress(n as u64 + 1);
        }
        Ok(())
    }

    fn failing(_: &sled::Db, _: &mut dyn FnMut(u64)) -> Result<()> {
        Err(StoreError::Unavailable("disk full".into()))
    }

    const STEPS: &[Migration] = &[Migration {
        from: 1,
        what: "exclaim",
        run: exclaim,
    }];

    #[test]
    fn a_new_database_is_stamped_with_this_builds_version() {
        let (dir, db) = temp_db();
        prepare(&db, dir.path(), &[]).unwrap();
        assert_eq!(stamped(&db, dir.path()).unwrap(), RECORD_SCHEMA_VERSION);
    }

    #[test]
    fn an_older_database_is_migrated_once_and_stamped() {
        let (dir, db) = temp_db();
        let t = db.open_tree("t").unwrap();
        t.insert("a", "x").unwrap();
        t.insert("b", "y").unwrap();
        // Unstamped: version 1, as every store written before the stamp.
        prepare_to(&db, dir.path(), STEPS, 2).unwrap();
        assert_eq!(stamped(&db, dir.path()).unwrap(), 2);
        assert_eq!(&*t.get("a").unwrap().unwrap(), b"x!");
        // Opened again: nothing runs twice.
        prepare_to(&db, dir.path(), STEPS, 2).unwrap();
        assert_eq!(&*t.get("b").unwrap().unwrap(), b"y!");
    }

    #[test]
    fn an_interrupted_step_leaves_the_old_stamp_and_runs_again() {
        let (dir, db) = temp_db();
        db.open_tree("t").unwrap().insert("a", "x").unwrap();
        let broken = [Migration {
            from: 1,
            what: "fails",
            run: failing,
        }];
        assert!(prepare_to(&db, dir.path(), &broken, 2).is_err());
        assert_eq!(stamped(&db, dir.path()).unwrap(), 1, "not moved on");
        prepare_to(&db, dir.path(), STEPS, 2).unwrap();
        assert_eq!(stamped(&db, dir.path()).unwrap(), 2);
    }

    #[test]
    fn a_newer_database_is_refused_and_a_missing_step_is_an_error() {
        let (dir, db) = temp_db();
        db.insert(KEY, &[RECORD_SCHEMA_VERSION + 1]).unwrap();
        let e = prepare(&db, dir.path(), &[]).unwrap_err();
        assert!(matches!(e, StoreError::NewerSchema { .. }), "{e}");
        assert!(e.to_string().contains("newer touchpointd"), "{e}");
        // Left as it was.
        assert_eq!(stamped(&db, dir.path()).unwrap(), RECORD_SCHEMA_VERSION + 1);

        let (dir, db) = temp_db();
        let e = prepare_to(&db, dir.path(), &[], 2).unwrap_err();
        assert!(e.to_string().contains("no way from it"), "{e}");
    }
}

//! Requests of backups (`crate::backup`): write one, verify one. Routing
//! and answers only.

use std::path::Path;

use touchpoint_common::protocol::{BackupDone, ErrorKind, Response};

use super::reply::err;
use super::Ctx;
use crate::backup::{BackupError, Manifest};

fn backup_err(e: BackupError) -> Response {
    match e {
        BackupError::Refused(m) => err(ErrorKind::Invalid, m),
        BackupError::Failed(m) => err(ErrorKind::Internal, m),
        e @ BackupError::Invalid(_) => err(ErrorKind::Invalid, e.to_string()),
    }
}

fn done(path: &Path, m: &Manifest) -> BackupDone {
    BackupDone {
        path: path.display().to_string(),
        created_at: m.created_at,
        stores: m.stores.len() as u64,
        records: m.records(),
        files: m.files.len() as u64,
        bytes: m.bytes(),
        skipped: Vec::new(),
        removed: Vec::new(),
        took_ms: 0,
    }
}

pub(super) fn write(ctx: &Ctx, dir: &str, keep: Option<u32>) -> Response {
    match ctx.backups.run(Path::new(dir), keep.map(|k| k as usize)) {
        Ok(d) => Response::Backup(BackupDone {
            skipped: d.skipped,
            removed: d.removed,
            took_ms: d.took_ms,
            ..done(&d.path, &d.manifest)
        }),
        Err(e) => backup_err(e),
    }
}

pub(super) fn verify(dir: &str) -> Response {
    match crate::backup::verify(Path::new(dir)) {
        Ok(v) => Response::Backup(done(&v.path, &v.manifest)),
        Err(e) => backup_err(e),
    }
}

//! A file sent over the socket in chunks (`UploadBegin`, `UploadChunk`…,
//! `UploadEnd`): spooled under the state directory, bounded by what it
//! announced and by `max_upload_bytes`, imported when it ends, removed
//! whatever happens.
//!
//! The spool (`<state>/spool`) is reached without following a link and
//! each upload is a new file under a random name in it (see
//! [`crate::files`]), read back and removed through the folder's
//! descriptor: nothing planted there is written through, read or removed
//! in its place.

use std::sync::Arc;

use touchpoint_common::protocol::{ErrorKind, Identity, Response};
use touchpoint_common::TenantId;

use crate::files::Dir;

use super::audit::{self, Audited};
use super::reply::err;
use super::Ctx;

/// An upload in progress on one connection.
pub(super) struct Upload {
    tenant: TenantId,
    file_name: String,
    declared: u64,
    /// The spool folder and the file's name in it.
    spool: Arc<Dir>,
    name: String,
    file: Option<tokio::fs::File>,
    written: u64,
    failed: Option<String>,
}

impl Upload {
    pub(super) async fn discard(mut self) {
        self.file.take();
        remove(self.spool, self.name).await;
    }
}

async fn remove(spool: Arc<Dir>, name: String) {
    let r = tokio::task::spawn_blocking(move || spool.remove(&name)).await;
    if let Ok(Err(e)) = r {
        tracing::warn!("cannot remove a spooled upload: {e}");
    }
}

/// Where uploads are spooled, under the state directory (cleared at start,
/// daemon.rs).
const SPOOL: &str = "spool";

pub(super) async fn begin(
    ctx: &Ctx,
    who: &Identity,
    tenant: TenantId,
    file_name: String,
    size: u64,
    upload: &mut Option<Upload>,
) -> Response {
    if let Some(u) = upload.take() {
        u.discard().await;
    }
    if ctx.policies.current().tenant(&tenant).is_none() {
        let reason = format!("unknown tenant \"{tenant}\": no dealer policy registers it");
        let reply = err(ErrorKind::NotFound, reason);
        audit::answered(ctx, who, Audited::import(&tenant, &file_name), &reply);
        return reply;
    }
    let bare = std::path::Path::new(&file_name)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .filter(|n| !n.is_empty() && n.len() <= 255)
        .unwrap_or_else(|| "upload.csv".to_string());
    if size > ctx.cfg.max_upload_bytes {
        return err(
            ErrorKind::Invalid,
            format!(
                "{bare} is {size} bytes; the limit is {} (control.max_upload_bytes)",
                ctx.cfg.max_upload_bytes
            ),
        );
    }
    let dir = ctx.stores.state_dir().join(SPOOL);
    let spooled = tokio::task::spawn_blocking(move || {
        let spool = Dir::output(&dir)?;
        let (file, name) = spool.temp()?.keep()?;
        Ok::<_, crate::files::FilesError>((Arc::new(spool), file, name))
    })
    .await;
    match spooled {
        Ok(Ok((spool, file, name))) => {
            *upload = Some(Upload {
                tenant,
                file_name: bare,
                declared: size,
                spool,
                name,
                file: Some(tokio::fs::File::from_std(file)),
                written: 0,
                failed: None,
            });
            Response::UploadReady
        }
        Ok(Err(e)) => err(ErrorKind::Internal, format!("cannot spool the upload: {e}")),
        Err(e) => err(ErrorKind::Internal, format!("cannot spool the upload: {e}")),
    }
}

pub(super) async fn chunk(ctx: &Ctx, data: Vec<u8>, upload: &mut Option<Upload>) {
    use tokio::io::AsyncWriteExt as _;
    let Some(u) = upload.as_mut() else { return };
    if u.failed.is_some() {
        return;
    }
    u.written += data.len() as u64;
    if u.written > u.declared || u.written > ctx.cfg.max_upload_bytes {
        u.failed = Some(format!(
            "{} sent more than the {} bytes it announced",
            u.file_name, u.declared
        ));
        return;
    }
    if let Some(f) = u.file.as_mut() {
        if let Err(e) = f.write_all(&data).await {
            u.failed = Some(format!("cannot spool the upload: {e}"));
        }
    }
}

/// Drops the upload in progress, if any.
pub(super) async fn abort(upload: &mut Option<Upload>) -> Response {
    if let Some(u) = upload.take() {
        u.discard().await;
    }
    Response::Pong
}

pub(super) async fn end(ctx: &Ctx, who: &Identity, upload: &mut Option<Upload>) -> Response {
    use tokio::io::AsyncWriteExt as _;
    let Some(mut u) = upload.take() else {
        return err(ErrorKind::Malformed, "no upload in progress");
    };
    if u.failed.is_none() && u.written != u.declared {
        u.failed = Some(format!(
            "{} announced {} bytes but sent {}",
            u.file_name, u.declared, u.written
        ));
    }
    if u.failed.is_none() {
        if let Some(f) = u.file.as_mut() {
            if let Err(e) = f.flush().await {
                u.failed = Some(format!("cannot spool the upload: {e}"));
            }
        }
    }
    let what = Audited::import(&u.tenant, &u.file_name);
    if let Some(reason) = u.failed.take() {
        u.discard().await;
        let reply = err(ErrorKind::Invalid, reason);
        audit::answered(ctx, who, what, &reply);
        return reply;
    }
    u.file.take();
    let importer = ctx.importer.clone();
    let (tenant, shown, spool, name) = (
        u.tenant.clone(),
        u.file_name.clone(),
        u.spool.clone(),
        u.name.clone(),
    );
    let result = tokio::task::spawn_blocking(move || {
        let file = spool.open_read(&name).map_err(|e| e.to_string())?;
        importer
            .import_open(&tenant, &file, &shown)
            .map_err(|e| e.to_string())
    })
    .await;
    remove(u.spool, u.name).await;
    let reply = match result {
        Ok(Ok(report)) => Response::Imported(report),
        Ok(Err(e)) => err(ErrorKind::Internal, e),
        Err(e) => err(ErrorKind::Internal, format!("import task failed: {e}")),
    };
    audit::answered(ctx, who, what, &reply);
    reply
}

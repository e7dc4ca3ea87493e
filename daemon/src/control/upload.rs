//! A file sent over the socket in chunks (`UploadBegin`, `UploadChunk`…,
//! `UploadEnd`): spooled under the state directory, bounded by what it
//! announced and by `max_upload_bytes`, imported when it ends, removed
//! whatever happens.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use touchpoint_common::protocol::{ErrorKind, Identity, Response};
use touchpoint_common::TenantId;

use super::audit::{self, Audited};
use super::reply::err;
use super::Ctx;

/// An upload in progress on one connection.
pub(super) struct Upload {
    tenant: TenantId,
    file_name: String,
    declared: u64,
    path: PathBuf,
    file: Option<tokio::fs::File>,
    written: u64,
    failed: Option<String>,
}

impl Upload {
    pub(super) async fn discard(mut self) {
        self.file.take();
        let _ = tokio::fs::remove_file(&self.path).await;
    }
}

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
    let dir = ctx.stores.state_dir().join("spool");
    let seq = ctx.upload_seq.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("upload-{}-{seq}", std::process::id()));
    let file = async {
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::File::create(&path).await
    }
    .await;
    match file {
        Ok(f) => {
            *upload = Some(Upload {
                tenant,
                file_name: bare,
                declared: size,
                path,
                file: Some(f),
                written: 0,
                failed: None,
            });
            Response::UploadReady
        }
        Err(e) => err(
            ErrorKind::Internal,
            format!("cannot spool the upload in {}: {e}", dir.display()),
        ),
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
    let (tenant, name, path) = (u.tenant.clone(), u.file_name.clone(), u.path.clone());
    let result = tokio::task::spawn_blocking(move || importer.import(&tenant, &path, &name)).await;
    let _ = tokio::fs::remove_file(&u.path).await;
    let reply = match result {
        Ok(Ok(report)) => Response::Imported(report),
        Ok(Err(e)) => err(ErrorKind::Internal, e.to_string()),
        Err(e) => err(ErrorKind::Internal, format!("import task failed: {e}")),
    };
    audit::answered(ctx, who, what, &reply);
    reply
}

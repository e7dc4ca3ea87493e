//! Daily letter batches for the lettershop: one print-ready PDF and one
//! manifest per tenant, day and sequence number.
//!
//! ```text
//! <dir>/<tenant>/<tenant>-<YYYY-MM-DD>-<seq:02>.pdf   the letters, each from a new page
//! <dir>/<tenant>/<tenant>-<YYYY-MM-DD>-<seq:02>.csv   one row per letter, in print order
//! ```
//!
//! Letters are sorted by sorting region (the postcode prefix of
//! [`Postage::region_of`]), then postcode, then customer number, so the
//! lettershop can hand them over presorted; a region's letter count picks its
//! bulk discount. Letters without a region come last.
//!
//! The manifest is written by [`super::csv_out`], which keeps names from
//! running as spreadsheet formulas.
//!
//! Both files are written under hidden temporary names in the same
//! directory, synced, and renamed: the PDF first, the manifest last. The
//! manifest under its final name is what marks a batch complete
//! ([`batch_complete`]); a crash before that leaves at most temporary files
//! and a PDF without a manifest, which the next [`write_batch`] of the same
//! batch overwrites.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use touchpoint_common::money::Money;
use touchpoint_common::postage::Postage;
use touchpoint_common::{Date, TenantId};

use super::csv_out::{Cell, CsvOut};
use crate::render::pdf::{render_batch, Letter};

/// One day's batch of one tenant.
#[derive(Debug)]
pub struct BatchRequest<'a> {
    pub tenant: &'a TenantId,
    pub day: Date,
    /// Number of the batch within the day, from 1.
    pub seq: u32,
    pub letters: Vec<Letter>,
    pub postage: &'a Postage,
}

/// What a written batch holds and costs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchReport {
    pub pdf: PathBuf,
    pub manifest: PathBuf,
    /// One line per letter, in print order.
    pub lines: Vec<BatchLine>,
    /// Postage of the whole batch.
    pub total: Money,
}

/// One letter of a written batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchLine {
    pub message: u64,
    /// Position in the batch, from 1.
    pub sequence: u32,
    pub pages: u32,
    pub grams: u32,
    pub weight_class: String,
    /// Name of the discount tier the letter's region earned.
    pub discount: Option<String>,
    /// Postage of this letter, discount applied.
    pub postage: Money,
}

#[derive(Debug, thiserror::Error)]
pub enum LetterError {
    #[error("batch {0} has no letters")]
    Empty(String),
    #[error("batch {} is already complete; a written batch is never replaced", .0.display())]
    Exists(PathBuf),
    #[error("message {message}: {pages} pages weigh {grams} g, more than the heaviest weight class of the postage table takes")]
    TooHeavy {
        message: u64,
        pages: u32,
        grams: u32,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("manifest: {0}")]
    Manifest(#[from] csv::Error),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LetterError + '_ {
    move |source| LetterError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Final paths of a batch's PDF and manifest.
pub fn batch_paths(dir: &Path, tenant: &TenantId, day: Date, seq: u32) -> (PathBuf, PathBuf) {
    let stem = format!("{tenant}-{day}-{seq:02}");
    let d = dir.join(tenant.as_str());
    (d.join(format!("{stem}.pdf")), d.join(format!("{stem}.csv")))
}

/// Whether the batch was written completely (its manifest exists).
pub fn batch_complete(dir: &Path, tenant: &TenantId, day: Date, seq: u32) -> bool {
    batch_paths(dir, tenant, day, seq).1.is_file()
}

/// Sorts, renders and writes one batch; see the module docs.
pub fn write_batch(dir: &Path, req: BatchRequest) -> Result<BatchReport, LetterError> {
    let BatchRequest {
        tenant,
        day,
        seq,
        mut letters,
        postage,
    } = req;
    let (pdf_path, manifest_path) = batch_paths(dir, tenant, day, seq);
    if letters.is_empty() {
        return Err(LetterError::Empty(format!("{tenant}-{day}-{seq:02}")));
    }
    if manifest_path.is_file() {
        return Err(LetterError::Exists(manifest_path));
    }

    letters.sort_by(|a, b| {
        let (ra, rb) = (
            postage.region_of(&a.postcode),
            postage.region_of(&b.postcode),
        );
        (ra.is_none(), ra, a.postcode.trim(), &a.recipient, a.message).cmp(&(
            rb.is_none(),
            rb,
            b.postcode.trim(),
            &b.recipient,
            b.message,
        ))
    });
    let mut per_region: HashMap<&str, u32> = HashMap::new();
    for l in &letters {
        if let Some(r) = postage.region_of(&l.postcode) {
            *per_region.entry(r).or_default() += 1;
        }
    }

    let (pdf, pages) = render_batch(&letters);

    let mut lines = Vec::with_capacity(letters.len());
    let mut total = Money(0);
    let mut csv = CsvOut::new(
        &[
            "sequence",
            "message",
            "recipient",
            "name",
            "postcode",
            "region",
            "pages",
            "grams",
            "weight_class",
            "discount",
            "postage_cents",
        ],
        letters.len() * 96,
    )?;
    for (i, (l, &pages)) in letters.iter().zip(&pages).enumerate() {
        let grams = postage.weight_grams(pages);
        let class = postage.class_for(grams).ok_or(LetterError::TooHeavy {
            message: l.message,
            pages,
            grams,
        })?;
        let region = postage.region_of(&l.postcode);
        let tier = region
            .and_then(|r| per_region.get(r))
            .and_then(|&n| postage.tier_for(n));
        let price = Postage::price(class, tier);
        total = Money(total.0 + price.0);
        let line = BatchLine {
            message: l.message,
            sequence: i as u32 + 1,
            pages,
            grams,
            weight_class: class.name.clone(),
            discount: tier.map(|t| t.name.clone()),
            postage: price,
        };
        csv.row(&[
            Cell::from(line.sequence),
            Cell::from(l.message),
            Cell::from(&l.recipient),
            Cell::from(l.addressee()),
            Cell::from(l.postcode.as_str()),
            Cell::from(region.unwrap_or("")),
            Cell::from(pages),
            Cell::from(grams),
            Cell::from(&line.weight_class),
            Cell::from(line.discount.as_deref().unwrap_or("")),
            Cell::from(price.cents()),
        ])?;
        lines.push(line);
    }
    let manifest = csv.finish()?;

    let tenant_dir = pdf_path.parent().unwrap_or(dir);
    ensure_dir(tenant_dir).map_err(io_err(tenant_dir))?;
    let pdf_tmp = temp_path(&pdf_path);
    let manifest_tmp = temp_path(&manifest_path);
    write_synced(&pdf_tmp, &pdf).map_err(io_err(&pdf_tmp))?;
    write_synced(&manifest_tmp, &manifest).map_err(io_err(&manifest_tmp))?;
    std::fs::rename(&pdf_tmp, &pdf_path).map_err(io_err(&pdf_path))?;
    sync_dir(tenant_dir).map_err(io_err(tenant_dir))?;
    std::fs::rename(&manifest_tmp, &manifest_path).map_err(io_err(&manifest_path))?;
    sync_dir(tenant_dir).map_err(io_err(tenant_dir))?;

    Ok(BatchReport {
        pdf: pdf_path,
        manifest: manifest_path,
        lines,
        total,
    })
}

// ----- durable files (shared with the call lists) ----------------------------------

/// The hidden temporary name of `path` in its directory: `.<name>.tmp`.
/// Fixed per file, so a leftover of a crashed write is overwritten by the next.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Writes `bytes` to `path` (created or truncated) and syncs it to disk.
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Syncs a directory, so the renames and creations in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` if it is missing, durably (its parent is synced too).
pub(crate) fn ensure_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

/// Writes `bytes` to `path` through a temporary file, so `path` appears
/// whole or not at all. Refuses to replace an existing `path`.
pub(crate) fn write_new_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if path.exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "already written; a delivered file is never replaced",
        ));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    ensure_dir(dir)?;
    let tmp = temp_path(path);
    write_synced(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests;

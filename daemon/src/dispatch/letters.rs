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
//! The manifest is written by [`touchpoint_common::csv_out`], which keeps names from
//! running as spreadsheet formulas.
//!
//! The tenant's folder is reached without following links and both files
//! are written as new files under random hidden names in it, synced and
//! renamed: the PDF first, the manifest last and never over anything
//! (see [`crate::files`]; whoever collects the batches may write there). The
//! manifest under its final name is what marks a batch complete
//! ([`batch_complete`]); a crash before that leaves at most temporary files
//! (removed at the next start) and a PDF without a manifest, which the next
//! [`write_batch`] of the same batch replaces.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use touchpoint_common::money::Money;
use touchpoint_common::postage::Postage;
use touchpoint_common::{Date, TenantId};

use crate::files::{Dir, FilesError, Perms, Replace};
use crate::render::pdf::{render_batch, Letter};
use touchpoint_common::csv_out::{Cell, CsvOut};

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
    #[error(transparent)]
    Files(FilesError),
    #[error("manifest: {0}")]
    Manifest(#[from] csv::Error),
}

impl From<FilesError> for LetterError {
    fn from(e: FilesError) -> Self {
        match e {
            FilesError::Exists { path } => LetterError::Exists(path),
            e => LetterError::Files(e),
        }
    }
}

/// Names of a batch's PDF and manifest in the tenant's folder.
pub fn batch_names(tenant: &TenantId, day: Date, seq: u32) -> (String, String) {
    let stem = format!("{tenant}-{day}-{seq:02}");
    (format!("{stem}.pdf"), format!("{stem}.csv"))
}

/// Final paths of a batch's PDF and manifest.
pub fn batch_paths(dir: &Path, tenant: &TenantId, day: Date, seq: u32) -> (PathBuf, PathBuf) {
    let (pdf, manifest) = batch_names(tenant, day, seq);
    let d = dir.join(tenant.as_str());
    (d.join(pdf), d.join(manifest))
}

/// The tenant's folder under the letters folder `dir`, made if missing;
/// an error if it (or `dir`) is not a real folder.
pub fn tenant_folder(dir: &Path, tenant: &TenantId) -> Result<Dir, FilesError> {
    Dir::output(dir)?.sub(tenant.as_str())
}

/// The tenant's folder under `dir` if there is one (made nothing); an
/// error if it (or `dir`) is not a real folder.
pub fn existing_tenant_folder(dir: &Path, tenant: &TenantId) -> Result<Option<Dir>, FilesError> {
    match Dir::open_output(dir)? {
        Some(d) => d.open_sub(tenant.as_str()),
        None => Ok(None),
    }
}

/// Whether the batch was written completely (its manifest is a file
/// there, not reached through a link).
pub fn batch_complete(dir: &Path, tenant: &TenantId, day: Date, seq: u32) -> bool {
    let manifest = batch_names(tenant, day, seq).1;
    Dir::open(dir, Perms::PRIVATE)
        .ok()
        .flatten()
        .and_then(|d| d.open_sub(tenant.as_str()).ok().flatten())
        .is_some_and(|d| d.is_file(&manifest).unwrap_or(false))
}

/// Sorts, renders and writes one batch into the tenant's folder under
/// `dir` (made when missing, after the letters are rendered); see the
/// module docs.
pub fn write_batch(dir: &Path, req: BatchRequest) -> Result<BatchReport, LetterError> {
    let tenant = req.tenant;
    let rendered = render(req)?;
    let out = tenant_folder(dir, tenant)?;
    rendered.write(&out)
}

/// [`write_batch`] into the tenant's folder `out`, already open.
pub fn write_batch_in(out: &Dir, req: BatchRequest) -> Result<BatchReport, LetterError> {
    render(req)?.write(out)
}

/// A batch rendered, not written yet.
struct Rendered {
    pdf: Vec<u8>,
    manifest: Vec<u8>,
    pdf_name: String,
    manifest_name: String,
    lines: Vec<BatchLine>,
    total: Money,
}

fn render(req: BatchRequest) -> Result<Rendered, LetterError> {
    let BatchRequest {
        tenant,
        day,
        seq,
        mut letters,
        postage,
    } = req;
    let (pdf_name, manifest_name) = batch_names(tenant, day, seq);
    if letters.is_empty() {
        return Err(LetterError::Empty(format!("{tenant}-{day}-{seq:02}")));
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

    Ok(Rendered {
        pdf,
        manifest,
        pdf_name,
        manifest_name,
        lines,
        total,
    })
}

impl Rendered {
    fn write(self, out: &Dir) -> Result<BatchReport, LetterError> {
        if out.is_file(&self.manifest_name)? {
            return Err(LetterError::Exists(out.path().join(self.manifest_name)));
        }
        let mut pdf = out.temp()?;
        pdf.write_all(&self.pdf)?;
        let mut manifest = out.temp()?;
        manifest.write_all(&self.manifest)?;
        // A PDF left without its manifest by a crash is no batch: replace it.
        pdf.publish(&self.pdf_name, Replace::Yes)?;
        out.sync()?;
        // The manifest marks the batch complete; one that is there (fetched
        // by the lettershop, maybe) is never replaced.
        manifest.publish(&self.manifest_name, Replace::No)?;
        out.sync()?;
        Ok(BatchReport {
            pdf: out.path().join(self.pdf_name),
            manifest: out.path().join(self.manifest_name),
            lines: self.lines,
            total: self.total,
        })
    }
}

#[cfg(test)]
mod tests;

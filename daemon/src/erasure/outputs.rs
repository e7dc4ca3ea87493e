//! An erased person taken out of the files dispatch already wrote for the
//! dealer: letter batches (a PDF and its manifest) and call lists, under
//! `<letters>/<tenant>/` and `<calls>/<tenant>/`.
//!
//! - A CSV (a batch's manifest, a call list) loses the rows about the
//!   person: a row with one of their customer numbers as a whole field
//!   (the manifest's `recipient`, the list's `customer_no`). The header and
//!   every other row stay byte for byte; a file left with no row is
//!   removed, and with a manifest its batch's PDF.
//! - A batch's PDF keeps its shape: the manifest says which pages are the
//!   person's letters (`pages`, in print order), and on those pages every
//!   text the content stream sets is overwritten with as many `x` (content
//!   streams are not compressed and come in page order, `render/pdf.rs`),
//!   so every offset and length stays right and the other letters stay as
//!   printed. A PDF without its manifest (a batch cut short, written again
//!   by the next batch run) that holds one of the person's texts is removed.
//!
//! Every file is read and written through [`Dir`] (no link followed, a
//! folder that is not a real folder an error), rewritten whole under a
//! temporary name and renamed into place, and read only up to
//! [`MAX_OUTPUT_BYTES`]: a larger one makes the erasure fail, named, so
//! that it is never reported done with the person still in a file.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::Read as _;
use std::path::PathBuf;

use nix::sys::stat::SFlag;
use touchpoint_common::TenantId;

use crate::files::{Dir, FilesError, Perms, Replace};

/// The largest output file an erasure reads (a batch of many letters).
pub const MAX_OUTPUT_BYTES: u64 = 1 << 30;

/// What was done to the dealer's output files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scrubbed {
    /// Files rewritten without the person.
    pub rewritten: u64,
    /// Files removed: they were about the person only.
    pub removed: u64,
}

/// Takes the person (their customer `numbers`, and `needles`: the texts
/// that name them) out of the tenant's files under each of `roots`.
pub fn scrub(
    roots: &[PathBuf],
    tenant: &TenantId,
    numbers: &BTreeSet<String>,
    needles: &[String],
) -> Result<Scrubbed, FilesError> {
    let needles: Vec<&str> = needles
        .iter()
        .map(|n| n.trim())
        .filter(|n| n.chars().count() >= 3)
        .collect();
    let mut out = Scrubbed::default();
    for root in roots {
        let Some(folder) = Dir::open(root, Perms::of_dir(root))?
            .map(|d| d.open_sub(tenant.as_str()))
            .transpose()?
            .flatten()
        else {
            continue;
        };
        let mut names: Vec<String> = Vec::new();
        for n in folder.names()? {
            if matches!(folder.kind(&n)?, Some(SFlag::S_IFREG)) {
                names.extend(n.to_str().map(str::to_string));
            }
        }
        let mut done: BTreeSet<String> = BTreeSet::new();
        for name in names.iter().filter(|n| n.ends_with(".csv")) {
            let bytes = read(&folder, name)?;
            let Some(cut) = without_rows(&bytes, numbers) else {
                continue;
            };
            let pdf = format!("{}.pdf", name.trim_end_matches(".csv"));
            let has_pdf = names.contains(&pdf);
            if has_pdf {
                done.insert(pdf.clone());
            }
            if cut.left == 0 {
                folder.remove(name)?;
                out.removed += 1;
                if has_pdf {
                    folder.remove(&pdf)?;
                    out.removed += 1;
                }
                continue;
            }
            if has_pdf && !cut.pages.is_empty() {
                let doc = read(&folder, &pdf)?;
                folder.write(
                    OsStr::new(&pdf),
                    &[&blank_pages(&doc, &cut.pages)],
                    Replace::Yes,
                )?;
                out.rewritten += 1;
            }
            folder.write(OsStr::new(name), &[&cut.bytes], Replace::Yes)?;
            out.rewritten += 1;
        }
        for name in names
            .iter()
            .filter(|n| n.ends_with(".pdf") && !done.contains(*n))
        {
            let bytes = read(&folder, name)?;
            if holds_any(&bytes, numbers, &needles) {
                folder.remove(name)?;
                out.removed += 1;
            }
        }
    }
    Ok(out)
}

fn read(folder: &Dir, name: &str) -> Result<Vec<u8>, FilesError> {
    let path = folder.path().join(name);
    let io = |e: std::io::Error| FilesError::Io {
        path: path.clone(),
        source: e,
    };
    let file = folder.open_read(name)?;
    let mut bytes = Vec::new();
    file.take(MAX_OUTPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_OUTPUT_BYTES {
        return Err(io(std::io::Error::other(format!(
            "larger than {MAX_OUTPUT_BYTES} bytes: not read to take an erased person out"
        ))));
    }
    Ok(bytes)
}

/// A CSV without the person's rows.
struct Cut {
    bytes: Vec<u8>,
    /// Rows left besides the header.
    left: usize,
    /// The pages (0-based, in print order) of the rows taken out, when the
    /// file has a `pages` column (a batch's manifest).
    pages: Vec<std::ops::Range<u32>>,
}

/// The CSV `bytes` without the rows that have one of `numbers` as a whole
/// field; `None` when no row has.
fn without_rows(bytes: &[u8], numbers: &BTreeSet<String>) -> Option<Cut> {
    let theirs = |field: &[u8]| numbers.contains(String::from_utf8_lossy(field).trim());
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    let mut pages = Vec::new();
    let (mut rows, mut page, mut pages_at) = (0usize, 0u32, None);
    loop {
        let start = reader.position().byte() as usize;
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            // The end, or not a file we can read as CSV: what was read counts.
            Ok(false) | Err(_) => break,
        }
        let end = (reader.position().byte() as usize).min(bytes.len());
        if rows == 0 && pages_at.is_none() && start == 0 {
            pages_at = Some(record.iter().position(|f| f == b"pages"));
            continue; // the header
        }
        rows += 1;
        let n: u32 = pages_at
            .flatten()
            .and_then(|i| record.get(i))
            .and_then(|f| std::str::from_utf8(f).ok()?.trim().parse().ok())
            .unwrap_or(0);
        if record.iter().any(theirs) {
            cuts.push((start, end));
            if n > 0 {
                pages.push(page..page + n);
            }
        }
        page += n;
    }
    if cuts.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    for (s, e) in &cuts {
        out.extend_from_slice(&bytes[at..*s]);
        at = *e;
    }
    out.extend_from_slice(&bytes[at..]);
    Some(Cut {
        bytes: out,
        left: rows - cuts.len(),
        pages,
    })
}

/// The PDF `bytes` with every text set on the pages `pages` overwritten
/// with `x`: the bytes inside each literal string of those pages' content
/// streams (the n-th stream of the file is page n's).
fn blank_pages(bytes: &[u8], pages: &[std::ops::Range<u32>]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut at = 0;
    let mut page = 0u32;
    while let Some(k) = find(&out[at..], b"stream\n") {
        let start = at + k + b"stream\n".len();
        let Some(len) = find(&out[start..], b"\nendstream") else {
            break;
        };
        // A keyword after a dictionary, never text: streams are skipped whole.
        let before = out[..at + k].trim_ascii_end();
        if before.ends_with(b">>") {
            if pages.iter().any(|r| r.contains(&page)) {
                blank_strings(&mut out[start..start + len]);
            }
            page += 1;
        }
        at = start + len + b"\nendstream".len();
    }
    out
}

/// Overwrites the bytes inside every literal string `( … )` of a content
/// stream with `x` (an escape and what it escapes too).
fn blank_strings(stream: &mut [u8]) {
    let (mut depth, mut i) = (0u32, 0);
    while i < stream.len() {
        match (depth, stream[i]) {
            (0, b'(') => depth = 1,
            (0, _) => {}
            (_, b'\\') => {
                stream[i] = b'x';
                if i + 1 < stream.len() {
                    stream[i + 1] = b'x';
                }
                i += 1;
            }
            (_, b'(') => {
                depth += 1;
                stream[i] = b'x';
            }
            (1, b')') => depth = 0,
            (_, b')') => {
                depth -= 1;
                stream[i] = b'x';
            }
            _ => stream[i] = b'x',
        }
        i += 1;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Whether a PDF sets one of the person's texts (as the PDF writer sets
/// them: WinAnsi, `(`, `)` and `\` escaped).
fn holds_any(bytes: &[u8], numbers: &BTreeSet<String>, needles: &[&str]) -> bool {
    needles
        .iter()
        .copied()
        .chain(numbers.iter().map(String::as_str))
        .any(|text| {
            let mut set = Vec::new();
            for b in crate::render::pdf::encode_winansi(text) {
                if matches!(b, b'(' | b')' | b'\\') {
                    set.push(b'\\');
                }
                set.push(b);
            }
            set.len() >= 3 && find(bytes, &set).is_some()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_loses_only_the_persons_rows_byte_for_byte() {
        let numbers: BTreeSet<String> = ["K-1".to_string()].into();
        let csv = b"task,customer_no,name\n\"d.1\",\"K-1\",\"Anna \"\"A\"\" Quell\"\n\"d.2\",\"K-2\",\"Berta\r\nBleib\"\n\"d.3\",\"K-3\",\"K-1 is not this\"\n";
        let cut = without_rows(csv, &numbers).expect("rows taken out");
        assert_eq!(
            cut.bytes,
            b"task,customer_no,name\n\"d.2\",\"K-2\",\"Berta\r\nBleib\"\n\"d.3\",\"K-3\",\"K-1 is not this\"\n".to_vec()
        );
        assert_eq!((cut.left, cut.pages.len()), (2, 0));
        assert!(without_rows(csv, &["K-9".to_string()].into()).is_none());
        let only = b"task,customer_no\n\"d.1\",\"K-1\"\n";
        assert_eq!(without_rows(only, &numbers).expect("cut").left, 0);
    }

    #[test]
    fn a_manifest_names_the_pages_of_the_persons_letters_and_only_those_are_blanked() {
        let manifest =
            b"sequence,message,recipient,pages\n1,7,\"K-2\",2\n2,8,\"K-1\",1\n3,9,\"K-3\",1\n";
        let cut = without_rows(manifest, &["K-1".to_string()].into()).expect("cut");
        assert_eq!(cut.pages, vec![std::ops::Range { start: 2, end: 3 }]);
        let page = |text: &str| format!("<< /Length 9 >>\nstream\nBT ({text}) Tj ET\nendstream\n");
        let pdf = format!(
            "%PDF\n{}{}{}{}",
            page("Berta (S.) \\\\"),
            page("Seite 2"),
            page("Quellenbr\u{fc}nnerich stream"),
            page("Carl")
        );
        let out = blank_pages(pdf.as_bytes(), &cut.pages);
        assert_eq!(out.len(), pdf.len());
        let want = format!(
            "%PDF\n{}{}{}{}",
            page("Berta (S.) \\\\"),
            page("Seite 2"),
            page(&"x".repeat("Quellenbr\u{fc}nnerich stream".len())),
            page("Carl")
        );
        assert_eq!(String::from_utf8_lossy(&out), want);
    }
}

//! An erased person taken out of the files dispatch already wrote for the
//! dealer: letter batches (a PDF and its manifest) and call lists, under
//! `<letters>/<tenant>/` and `<calls>/<tenant>/`.
//!
//! - A row is the person's when its customer-number column (by header:
//!   the manifest's `recipient`, the call list's `customer_no`) holds one
//!   of their numbers; no other column is looked at (a postcode, a
//!   sequence or a weight may equal a customer number). A CSV without
//!   such a column is not one of ours and is left alone.
//! - A call list loses the person's rows; the header and every other row
//!   stay byte for byte; a list left with no row is removed.
//! - A batch's manifest keeps a row for each letter, so that a lettershop
//!   that splits the PDF by the manifest's `pages` still splits it right:
//!   the person's row becomes a void one (recipient, name, postcode and
//!   region emptied, the name saying [`VOID_NAME`]; sequence, message,
//!   pages, weight and postage stay, so recovery and the ledger still
//!   read it). The PDF keeps its shape: on the person's pages every text
//!   the content stream sets is overwritten with as many `x` (content
//!   streams are not compressed and come in page order, `render/pdf.rs`),
//!   so every offset and length stays right and the other letters stay as
//!   printed. A batch whose every letter was the person's is removed.
//! - A PDF without its manifest (a batch cut short, written again by the
//!   next batch run) that sets one of the person's texts is removed; a
//!   PDF with its manifest is judged by the manifest only.
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

/// The name a void manifest row carries: the letter of an erased person.
pub const VOID_NAME: &str = "VOID: erased, do not post";

/// The columns that name the person a row is about.
const NUMBER_COLUMNS: [&str; 2] = ["recipient", "customer_no"];

/// A manifest's columns a void row empties (the rest stay).
const PERSONAL_COLUMNS: [&str; 4] = ["recipient", "name", "postcode", "region"];

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
        let names = regular_files(&folder)?;
        for name in names.iter().filter(|n| n.ends_with(".csv")) {
            let bytes = read(&folder, name)?;
            let Some(cut) = without_rows(&bytes, numbers) else {
                continue;
            };
            let pdf = format!("{}.pdf", name.trim_end_matches(".csv"));
            let has_pdf = names.contains(&pdf);
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
        // A PDF whose manifest is there was judged by it above.
        for name in names.iter().filter(|n| {
            n.ends_with(".pdf") && !names.contains(&format!("{}.csv", n.trim_end_matches(".pdf")))
        }) {
            let bytes = read(&folder, name)?;
            if holds_any(&bytes, numbers, &needles) {
                folder.remove(name)?;
                out.removed += 1;
            }
        }
    }
    Ok(out)
}

/// The inbox's archive: where the folder of a tenant keeps the exports
/// once imported or refused (`done`, `failed`), and the suffix of a
/// report beside one (given by `daemon.rs`: erasure does not import the
/// importer).
#[derive(Clone, Debug)]
pub struct Archive {
    pub root: std::path::PathBuf,
    pub folders: Vec<&'static str>,
    pub report_suffix: &'static str,
}

/// Removes from the tenant's inbox archive (`<inbox>/<tenant>/done/` and
/// `failed/`: the dealers' exports as they came, and their reports) every
/// file that names the person: one of `tokens` (customer numbers, VINs)
/// as a whole word, or one of `emails` (any case). Such a file is a raw
/// copy of data already imported (or refused), so it goes whole, with its
/// report. Returns how many files went.
pub fn scrub_archive(
    archive: &Archive,
    tenant: &TenantId,
    tokens: &[String],
    emails: &[String],
) -> Result<u64, FilesError> {
    let tokens: Vec<&[u8]> = tokens
        .iter()
        .map(|t| t.trim().as_bytes())
        .filter(|t| !t.is_empty())
        .collect();
    let emails: Vec<Vec<u8>> = emails
        .iter()
        .map(|e| e.trim().to_ascii_lowercase().into_bytes())
        .filter(|e| e.len() >= 3)
        .collect();
    let inbox = &archive.root;
    let Some(folder) = Dir::open(inbox, Perms::of_dir(inbox))?
        .map(|d| d.open_sub(tenant.as_str()))
        .transpose()?
        .flatten()
    else {
        return Ok(0);
    };
    let mut removed = 0;
    for sub in &archive.folders {
        let Some(dir) = folder.open_sub(sub)? else {
            continue;
        };
        let names = regular_files(&dir)?;
        let mut gone: BTreeSet<String> = BTreeSet::new();
        for name in &names {
            let bytes = read(&dir, name)?;
            let lower = bytes.to_ascii_lowercase();
            if tokens.iter().any(|t| holds_word(&bytes, t))
                || emails.iter().any(|e| find(&lower, e).is_some())
            {
                gone.insert(name.clone());
            }
        }
        // A removed export's report goes with it.
        for name in &names {
            if let Some(of) = name.strip_suffix(archive.report_suffix) {
                if gone.contains(of) {
                    gone.insert(name.clone());
                }
            }
        }
        for name in &gone {
            dir.remove(name)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes the tenant's files last changed before `before`: the top level
/// of its folder under each of `roots` (letter batches, call lists) and
/// the archive's folders. Never through a link; a folder that is not
/// there is nothing to do. Returns how many files went.
pub fn expire_files(
    roots: &[PathBuf],
    archive: Option<&Archive>,
    tenant: &TenantId,
    before: std::time::SystemTime,
) -> Result<u64, FilesError> {
    let mut folders: Vec<Dir> = Vec::new();
    for root in roots {
        if let Some(d) = Dir::open(root, Perms::of_dir(root))? {
            folders.extend(d.open_sub(tenant.as_str())?);
        }
    }
    if let Some(a) = archive {
        if let Some(t) = Dir::open(&a.root, Perms::of_dir(&a.root))?
            .map(|d| d.open_sub(tenant.as_str()))
            .transpose()?
            .flatten()
        {
            for sub in &a.folders {
                folders.extend(t.open_sub(sub)?);
            }
        }
    }
    let mut removed = 0;
    for dir in &folders {
        for name in regular_files(dir)? {
            let path = dir.path().join(&name);
            let modified = dir
                .open_read(&name)?
                .metadata()
                .and_then(|m| m.modified())
                .map_err(|e| FilesError::Io { path, source: e })?;
            if modified < before {
                dir.remove(&name)?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// The names of the regular files in `dir` (no link, no folder).
fn regular_files(dir: &Dir) -> Result<Vec<String>, FilesError> {
    let mut names = Vec::new();
    for n in dir.names()? {
        if matches!(dir.kind(&n)?, Some(SFlag::S_IFREG)) {
            names.extend(n.to_str().map(str::to_string));
        }
    }
    Ok(names)
}

/// Whether `word` stands in `hay` with no letter or digit on either side.
fn holds_word(hay: &[u8], word: &[u8]) -> bool {
    if word.is_empty() || hay.len() < word.len() {
        return false;
    }
    let mut from = 0;
    while let Some(k) = find(&hay[from..], word) {
        let at = from + k;
        let end = at + word.len();
        let before = at.checked_sub(1).map(|i| hay[i]);
        let after = hay.get(end).copied();
        if !before.is_some_and(|b| b.is_ascii_alphanumeric())
            && !after.is_some_and(|b| b.is_ascii_alphanumeric())
        {
            return true;
        }
        from = at + 1;
    }
    false
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

/// A CSV without the person's rows (a manifest: with them void).
struct Cut {
    bytes: Vec<u8>,
    /// Rows left that are not the person's.
    left: usize,
    /// The pages (0-based, in print order) of the rows taken out, when the
    /// file has a `pages` column (a batch's manifest).
    pages: Vec<std::ops::Range<u32>>,
}

/// The CSV `bytes` without the rows whose customer-number column holds
/// one of `numbers` (in a manifest, a file with a `pages` column, those
/// rows made void instead); `None` when no row does, or the file has no
/// such column.
fn without_rows(bytes: &[u8], numbers: &BTreeSet<String>) -> Option<Cut> {
    let theirs = |field: &[u8]| numbers.contains(String::from_utf8_lossy(field).trim());
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    // Each cut: the row's bytes, and what stands there instead.
    let mut cuts: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    let mut pages = Vec::new();
    let (mut rows, mut page) = (0usize, 0u32);
    let mut header: Option<csv::ByteRecord> = None;
    loop {
        let start = reader.position().byte() as usize;
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            // The end, or not a file we can read as CSV: what was read counts.
            Ok(false) | Err(_) => break,
        }
        let end = (reader.position().byte() as usize).min(bytes.len());
        let Some(h) = &header else {
            header = Some(record.clone());
            continue;
        };
        let col = |name: &str| h.iter().position(|f| f == name.as_bytes());
        let number_at = NUMBER_COLUMNS.iter().find_map(|c| col(c))?;
        let pages_at = col("pages");
        // A row made void by an earlier erasure is no one's letter.
        let void = col("name").and_then(|i| record.get(i)) == Some(VOID_NAME.as_bytes());
        rows += usize::from(!void);
        let n: u32 = pages_at
            .and_then(|i| record.get(i))
            .and_then(|f| std::str::from_utf8(f).ok()?.trim().parse().ok())
            .unwrap_or(0);
        if record.get(number_at).is_some_and(theirs) {
            let instead = match pages_at {
                Some(_) => void_row(h, &record, &bytes[start..end])?,
                None => Vec::new(),
            };
            cuts.push((start, end, instead));
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
    for (s, e, instead) in &cuts {
        out.extend_from_slice(&bytes[at..*s]);
        out.extend_from_slice(instead);
        at = *e;
    }
    out.extend_from_slice(&bytes[at..]);
    Some(Cut {
        bytes: out,
        left: rows - cuts.len(),
        pages,
    })
}

/// A manifest row made void: [`PERSONAL_COLUMNS`] emptied, the name
/// [`VOID_NAME`], the rest as it was; ended as the original row was.
fn void_row(header: &csv::ByteRecord, row: &csv::ByteRecord, original: &[u8]) -> Option<Vec<u8>> {
    let fields: Vec<&[u8]> = header
        .iter()
        .zip(row.iter())
        .map(|(h, f)| match h {
            b"name" => VOID_NAME.as_bytes(),
            h if PERSONAL_COLUMNS.iter().any(|c| c.as_bytes() == h) => b"",
            _ => f,
        })
        .collect();
    // Quoted as the manifest's writer quotes (`common::csv_out`).
    let mut w = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::NonNumeric)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(&fields).ok()?;
    let mut row = w.into_inner().ok()?;
    row.pop();
    // The line ends around the row as they were (the reader's positions
    // put a CRLF's `\n` at the start of the next row's bytes).
    let eol = |b: &u8| matches!(b, b'\r' | b'\n');
    let lead = original.iter().take_while(|b| eol(b)).count();
    let trail = original[lead..].iter().rev().take_while(|b| eol(b)).count();
    let mut out = original[..lead].to_vec();
    out.extend_from_slice(&row);
    out.extend_from_slice(&original[original.len() - trail..]);
    Some(out)
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
    fn a_word_is_found_whole_only() {
        assert!(holds_word(b"K1;Anna", b"K1"));
        assert!(holds_word(b"x;\"10042\"\n", b"10042"));
        assert!(!holds_word(b"K10;K21", b"K1"));
        assert!(!holds_word(b"110042", b"10042"));
        assert!(holds_word(b"110042 10042", b"10042"));
        assert!(!holds_word(b"", b"K1"));
    }

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
        let manifest = b"sequence,message,recipient,name,postcode,pages,postage_cents\r\n1,7,\"K-2\",\"Berta\",\"10115\",2,95\r\n2,8,\"K-1\",\"Quell, Anna\",\"10115\",1,85\r\n3,9,\"K-3\",\"Carl\",\"K-1\",1,85\r\n";
        let cut = without_rows(manifest, &["K-1".to_string()].into()).expect("cut");
        assert_eq!(cut.pages, vec![std::ops::Range { start: 2, end: 3 }]);
        // The letter stays a row (a lettershop splits the PDF by `pages`),
        // void; a postcode or name that equals a number is no match.
        assert_eq!(
            String::from_utf8_lossy(&cut.bytes),
            "sequence,message,recipient,name,postcode,pages,postage_cents\r\n1,7,\"K-2\",\"Berta\",\"10115\",2,95\r\n2,8,\"\",\"VOID: erased, do not post\",\"\",1,85\r\n3,9,\"K-3\",\"Carl\",\"K-1\",1,85\r\n"
        );
        assert_eq!(cut.left, 2);
        // Again: nothing more is the person's; with the others erased too,
        // nothing is left.
        assert!(without_rows(&cut.bytes, &["K-1".to_string()].into()).is_none());
        let all: BTreeSet<String> = ["K-2".to_string(), "K-3".to_string()].into();
        assert_eq!(without_rows(&cut.bytes, &all).expect("cut").left, 0);
        // A number in a postcode of a file we did not write: not ours.
        assert!(without_rows(
            b"postcode,name\n10115,Anna\n",
            &["10115".to_string()].into()
        )
        .is_none());
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

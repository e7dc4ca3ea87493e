//! Turns the bytes of one dealer-management-system CSV export into validated
//! domain records, one record at a time.
//!
//! The parser sniffs the first 64 KiB (kept, not lost) for binary formats,
//! the encoding (UTF-8 with or without BOM, else Windows-1252; UTF-16 when
//! it carries a BOM or looks like it) and the delimiter (`;`, `,`, tab,
//! `|`), reads the header and maps its columns onto [`ImportField`]s once.
//! Then every data record becomes a [`Row`] of the records it carries, or a
//! [`RowError`] naming the file, the physical line the record starts on, the
//! field and the reason. A bad row never stops the parse.
//!
//! Memory stays bounded whatever the file size: the sniff buffer, the csv
//! reader's buffer and one record (whose bytes are kept for the case below).
//! A one-line record longer than [`MAX_RECORD_BYTES`] ends the parse with
//! [`FileError::RecordTooLarge`], and so does a NUL byte anywhere (binary
//! data, as in the sniffed part).
//!
//! A quote that is opened and never closed would swallow the rows after it
//! into one value. A record whose quoted value runs over a line break is
//! therefore checked: when its quotes are not closed the way CSV closes them
//! (right before a delimiter or a line end; not at all), when the value
//! spans more than [`MAX_QUOTED_LINES`] lines, or when one of its lines has
//! as many delimiters as a row, its first line is rejected with
//! `unclosed quote` and the parse goes on at the next line, so the rows it
//! swallowed are read as rows. So is a record that runs over several lines
//! past [`MAX_RECORD_BYTES`]. After [`MAX_UNCLOSED_QUOTES`] such lines the
//! file is given up on.
//!
//! A row with fewer values than the header has columns (a row written with
//! another delimiter is one value) or with values beyond them is rejected,
//! as is a value longer than [`MAX_FIELD_BYTES`] in a column that is read.
//! Headers that repeat an earlier one are listed in [`Format::describe`].
//!
//! What a row carries follows from the columns the file has:
//! - a [`Customer`] when the row has a customer number and the file has at
//!   least one customer column besides it (name, address, contact, …), so a
//!   vehicle file never produces empty customers;
//! - a [`Vehicle`] when the row has a VIN and the file has a customer-number
//!   column or vehicle columns (make, model, dates, mileage); it needs the
//!   customer number of its holder. Fields whose column is missing from the
//!   file are empty: callers merging into stored records should consult
//!   [`Format::has`] rather than overwrite with blanks;
//! - one [`Consent`] per non-empty consent column (or one per row in consent
//!   files with channel and granted columns). Without a consent-date column
//!   `at` is `Timestamp::default()` (zero): the caller stamps it with the
//!   import time;
//! - in a response file (one with a response-kind column, see
//!   [`ImportField::ResponseKind`]) a [`ReportedResponse`] and nothing
//!   else: an appointment booked or an offer accepted, by customer number
//!   or VIN, with its date, optional value and note, and its source
//!   `file:line`. A response file with customer, vehicle, consent or visit
//!   columns is refused as a whole ([`FileError::MixedResponses`]): which
//!   of them a row meant cannot be told;
//! - a [`ServiceVisit`] when the row has a visit date; it needs a VIN, and
//!   its customer number may be empty in visit files that only carry VINs
//!   (the caller looks the holder up). It carries the visit type as the
//!   export names it, the order or invoice amount when the file has one
//!   (`412,00`, `1.234,56 €`; a negative amount is refused), and its
//!   source, `file:line`, which an attributed response cites.
//!
//! Cells that only hold a placeholder (`-`, `NULL`, `k.A.`, `n/a`, `n.v.`)
//! count as empty. When several columns map to one field (`Telefon` and
//! `Mobil`), the first non-empty cell wins. A row with several bad fields
//! gives one error, named after the leftmost bad field, whose reason lists
//! the others (`…; also birth_date: …`).
//!
//! UTF-8 files reach the csv reader undecoded and each record is validated;
//! a field that is not UTF-8 after all (the first 64 KiB were plain ASCII,
//! later rows carry Windows-1252 umlauts) is read as Windows-1252. Other
//! encodings are transcoded while streaming.

mod headers;
mod sniff;
pub mod values;

use std::fmt;
use std::io::{self, Read};

use csv::{ByteRecord, StringRecord};
use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};
use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};
use touchpoint_common::domain::{
    Channel, Consent, Customer, FieldSet, ImportField, RowError, Salutation, ServiceVisit, Vehicle,
};
use touchpoint_common::policy::TenantImport;
use touchpoint_common::report::ReportedResponse;
use touchpoint_common::Date;

pub use values::DateOrder;
use values::Era;

/// How much of the file is looked at to detect its format.
pub const SNIFF_BYTES: usize = 64 * 1024;
/// The longest record accepted. Real DMS records are a few hundred bytes.
pub const MAX_RECORD_BYTES: u64 = 1 << 20;
/// A quoted value spanning more lines than this is taken for a quote that
/// was never closed. Remarks with a few line breaks are common; a value
/// over dozens of lines is not.
pub const MAX_QUOTED_LINES: u64 = 20;
/// Lines that open a quote they never close before the file is given up
/// on as not quoted the way CSV is. Each costs one re-read of at most a
/// record's bytes, so this bounds the work on a hostile file.
pub const MAX_UNCLOSED_QUOTES: u32 = 100;
/// The longest value accepted in a column that maps to a field. Names,
/// streets and addresses are far shorter; anything longer is not data.
pub const MAX_FIELD_BYTES: usize = 512;
const CSV_BUFFER: usize = 64 * 1024;

/// One column of the file as the header names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// The header as written (trimmed).
    pub header: String,
    /// None: no built-in or tenant mapping knows this header.
    pub field: Option<ImportField>,
}

/// What the sniffing found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format {
    /// "utf-8", "utf-8 (BOM)", "windows-1252" (or "utf-16le", "utf-16be", or
    /// the name of a forced encoding).
    pub encoding: &'static str,
    pub delimiter: u8,
    pub columns: Vec<Column>,
    /// Columns whose header repeats an earlier column's (compared as the
    /// mapping compares them), as (column, earlier column), 0-based. Only
    /// columns that map to a field are listed: for those a row's first
    /// non-empty value is used, which the report says.
    pub duplicates: Vec<(usize, usize)>,
}

/// Headers shown in reports: at most this many characters of each.
const SHOWN_HEADER_CHARS: usize = 60;
/// Columns listed by name in a report; the rest are counted.
const SHOWN_COLUMNS: usize = 50;

/// A header as a report shows it: quoted with escapes, cut to a bounded length.
fn shown_header(h: &str) -> String {
    let mut chars = h.chars();
    let head: String = chars.by_ref().take(SHOWN_HEADER_CHARS).collect();
    if chars.next().is_some() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

impl Format {
    /// E.g. `windows-1252, ';', 14 columns`, followed by the headers that
    /// repeat an earlier one.
    pub fn describe(&self) -> String {
        let delimiter = match self.delimiter {
            b'\t' => "tab".to_string(),
            d => format!("'{}'", d as char),
        };
        let n = self.columns.len();
        let mut s = format!(
            "{}, {}, {} column{}",
            self.encoding,
            delimiter,
            n,
            if n == 1 { "" } else { "s" }
        );
        if !self.duplicates.is_empty() {
            const SHOWN: usize = 5;
            for (k, &(i, first)) in self.duplicates.iter().take(SHOWN).enumerate() {
                s.push_str(if k == 0 { "; " } else { ", " });
                let header = self.columns.get(i).map_or("", |c| c.header.as_str());
                s.push_str(&format!(
                    "column {} {} repeats column {}",
                    i + 1,
                    shown_header(header),
                    first + 1
                ));
            }
            if self.duplicates.len() > SHOWN {
                s.push_str(&format!(" and {} more", self.duplicates.len() - SHOWN));
            }
            s.push_str(" (a row's first non-empty value of them is used)");
        }
        s
    }

    /// Headers no field is mapped to, as written (bounded); a column without
    /// a header is named by its position ("(column 7)"). At most
    /// [`SHOWN_COLUMNS`] are named, then how many more there are.
    pub fn unmapped(&self) -> Vec<String> {
        let mut unmapped = self
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.field.is_none());
        let mut out: Vec<String> = unmapped
            .by_ref()
            .take(SHOWN_COLUMNS)
            .map(|(i, c)| {
                if c.header.is_empty() {
                    format!("(column {})", i + 1)
                } else {
                    let mut chars = c.header.chars();
                    let head: String = chars.by_ref().take(SHOWN_HEADER_CHARS).collect();
                    if chars.next().is_some() {
                        format!("{head}…")
                    } else {
                        head
                    }
                }
            })
            .collect();
        let more = unmapped.count();
        if more > 0 {
            out.push(format!("… and {more} more"));
        }
        out
    }

    /// Whether some column of the file maps to `field`.
    pub fn has(&self, field: ImportField) -> bool {
        self.columns.iter().any(|c| c.field == Some(field))
    }
}

/// Why a whole file cannot be imported. Nothing of it should be applied.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the file is empty: no header line and no rows")]
    Empty,
    #[error("not a CSV file: {reason}")]
    NotCsv { reason: String },
    #[error(
        "no column for a customer number or VIN; headers seen: {}; {}",
        HeaderList(headers),
        key_hint(headers)
    )]
    NoKeyColumn { headers: Vec<String> },
    #[error("the record starting at line {line} is longer than {} KiB; probably an unclosed quote (\") in it", limit / 1024)]
    RecordTooLarge { line: u64, limit: u64 },
    #[error("the header (line {line}) opens a quote (\") that runs over the end of the line; close it so that the rows are read as rows")]
    HeaderQuote { line: u64 },
    #[error("more than {limit} lines open a quote (\") they never close, the last on line {line}; the file's quoting is broken")]
    UnclosedQuotes { line: u64, limit: u32 },
    #[error("import option {option} = {value:?} is not supported; use {expected}")]
    BadOption {
        option: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error(
        "a response file (column {kind_column}) cannot also carry {}: import customers, vehicles, consents and visits from their own files, or map those columns to \"ignore\" under [import.columns] in the dealer policy",
        HeaderList(others)
    )]
    MixedResponses {
        kind_column: String,
        others: Vec<String>,
    },
    #[error(
        "column {column} belongs in a response file, which needs a column for the kind of response (\"Reaktion\": Termin or Angebot angenommen)"
    )]
    ResponseWithoutKind { column: String },
    #[error(
        "only the key column{} {} {} understood; {} {}: nothing but {what} could be imported from this file. Map {} under [import.columns] in the dealer policy (e.g. {:?} = \"visit_date\"), or map {} to \"ignore\" to import only the holders",
        if keys.len() == 1 { "" } else { "s" },
        HeaderList(keys),
        if keys.len() == 1 { "was" } else { "were" },
        HeaderList(unknown),
        if unknown.len() == 1 { "was not" } else { "were not" },
        if unknown.len() == 1 { "it" } else { "them" },
        unknown.first().map(|h| h.chars().take(SHOWN_HEADER_CHARS).collect::<String>()).unwrap_or_default(),
        if unknown.len() == 1 { "it" } else { "them" },
    )]
    OnlyKeys {
        keys: Vec<String>,
        unknown: Vec<String>,
        /// What the keys alone carry, in words.
        what: &'static str,
    },
    #[error("read error: {0}")]
    Io(#[from] io::Error),
    #[error("a send history file (it has a sent-date column) needs a column for {what}")]
    HistoryMissing { what: &'static str },
    #[error("a send history file (it has a sent-date column) holds only sends; column {header} ({field}) belongs in another file")]
    HistoryMixed { header: String, field: ImportField },
}

struct HeaderList<'a>(&'a [String]);

impl fmt::Display for HeaderList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 20;
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, h) in self.0.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&shown_header(h))?;
        }
        if self.0.len() > SHOWN {
            write!(f, " and {} more", self.0.len() - SHOWN)?;
        }
        Ok(())
    }
}

fn key_hint(headers: &[String]) -> &'static str {
    let looks_like_data = headers.iter().any(|h| {
        let h = h.trim();
        h.contains('@')
            || (!h.is_empty() && h.chars().all(|c| c.is_ascii_digit() || ".-/ ".contains(c)))
    });
    if looks_like_data {
        "the first line looks like data: export with a header line"
    } else {
        "map a column to customer_no or vin under [import.columns] in the dealer policy"
    }
}

/// The records one data row carries.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Row {
    /// 1-based physical line where the record starts (the header is line 1).
    pub line: u64,
    /// Optional fields whose value was bad and that the row's records do
    /// not carry: what is stored of them stays (see [`Parser`]'s docs).
    pub dropped: FieldSet,
    /// Why each of `dropped` was not imported, `file:line: field: reason
    /// (field not imported)`, left to right.
    pub warnings: Vec<RowError>,
    pub customer: Option<Customer>,
    pub vehicle: Option<Vehicle>,
    pub consents: Vec<Consent>,
    pub visit: Option<ServiceVisit>,
    /// Rows of a response file carry this and nothing else.
    pub response: Option<ReportedResponse>,
    /// A row of a send history file: nothing else is read from it.
    pub sent: Option<Sent>,
}

/// Whom a rejected row is about, as far as it can be read: its VIN
/// (normalised) and its customer number, either possibly empty, never
/// both. A row whose VIN is not a VIN, or that was rejected before its
/// values could be told apart (a row cut short, an unclosed quote), has
/// none: see [`Parser::rejected_subject`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    pub vin: String,
    pub customer_no: String,
}

/// One message a previous system sent (or held back for its control
/// group), as a send history file states it. Checked against the stored
/// customers and the brand's services when it is imported
/// (`import::history`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub customer_no: String,
    /// Empty when the file names no vehicle.
    pub vin: String,
    pub service: String,
    /// `None`: a control-group member, who was sent nothing.
    pub channel: Option<Channel>,
    pub date: Date,
    /// What the previous system paid for it, cents.
    pub cost: Option<i64>,
}

/// Fields a send history file may have besides its own (anything else in it
/// would be a second kind of record in one file).
const HISTORY_FIELDS: &[ImportField] = &[
    ImportField::CustomerNo,
    ImportField::Vin,
    ImportField::ConsentChannel,
    ImportField::SentService,
    ImportField::SentDate,
    ImportField::SentCost,
    ImportField::Ignore,
];

/// Columns a send history file must have, with what they are called.
const HISTORY_REQUIRED: &[(ImportField, &str)] = &[
    (ImportField::CustomerNo, "a customer number (Kundennr)"),
    (ImportField::SentService, "the service (Dienst)"),
    (
        ImportField::ConsentChannel,
        "the channel (Kanal: email, post, phone or control)",
    ),
];

type Prefixed<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

enum Inner<R> {
    /// UTF-8 goes to the csv reader as it is; invalid bytes are handled per record.
    Plain(Prefixed<R>),
    Decoded(DecodeReaderBytes<Prefixed<R>, Vec<u8>>),
}

/// The csv reader's input: the sniff buffer, then the rest of the file.
///
/// It keeps the bytes it delivered since `mark` (where the record being
/// read starts), so that after a record that turns out to be an unclosed
/// quote the parse can go back to the line after the quote's: [`Seek`] goes
/// anywhere within the kept bytes and nowhere else. Memory stays bounded: a
/// record that runs on for more than [`MAX_RECORD_BYTES`] (plus the csv
/// reader's read-ahead) is cut off with [`Oversized`]. The first NUL byte
/// passed on is noted, so binary data after the sniffed part is found.
struct Source<R> {
    inner: Inner<R>,
    /// Stream offset of `kept[0]`.
    kept_from: u64,
    kept: Vec<u8>,
    /// Stream offset of the next byte to deliver; below the end of `kept`
    /// after a seek back.
    pos: u64,
    /// Where the record being read starts: bytes before it may be dropped.
    mark: u64,
    /// Stream offset of the first NUL byte.
    nul_at: Option<u64>,
}

impl<R> Source<R> {
    fn new(inner: Inner<R>) -> Self {
        Self {
            inner,
            kept_from: 0,
            kept: Vec::with_capacity(2 * CSV_BUFFER),
            pos: 0,
            mark: 0,
            nul_at: None,
        }
    }

    /// The kept bytes from stream offset `from` on (empty if not kept).
    fn kept_since(&self, from: u64) -> &[u8] {
        let at = from.saturating_sub(self.kept_from);
        usize::try_from(at)
            .ok()
            .and_then(|at| self.kept.get(at..))
            .unwrap_or(&[])
    }

    fn kept_end(&self) -> u64 {
        self.kept_from + self.kept.len() as u64
    }
}

#[derive(Debug)]
struct Oversized;

impl fmt::Display for Oversized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("record too large")
    }
}

impl std::error::Error for Oversized {}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // The csv reader reads ahead by up to its buffer size.
        if self.pos.saturating_sub(self.mark) > MAX_RECORD_BYTES + CSV_BUFFER as u64 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, Oversized));
        }
        let n = if self.pos < self.kept_end() {
            let replay = self.kept_since(self.pos);
            let n = buf.len().min(replay.len());
            buf[..n].copy_from_slice(&replay[..n]);
            n
        } else {
            let n = match &mut self.inner {
                Inner::Plain(r) => r.read(buf)?,
                Inner::Decoded(r) => r.read(buf)?,
            };
            let new = &buf[..n];
            if self.nul_at.is_none() && new.contains(&0) {
                self.nul_at = new
                    .iter()
                    .position(|&b| b == 0)
                    .map(|i| self.pos + i as u64);
            }
            // Dropping the bytes before the mark only once they are at least
            // half of what is kept moves each byte a bounded number of times.
            let dead = usize::try_from(self.mark.saturating_sub(self.kept_from))
                .unwrap_or(usize::MAX)
                .min(self.kept.len());
            if dead > 0 && dead >= self.kept.len() / 2 {
                self.kept.drain(..dead);
                self.kept_from += dead as u64;
            }
            self.kept.extend_from_slice(new);
            n
        };
        self.pos += n as u64;
        Ok(n)
    }
}

/// Goes back (or forth) within the kept bytes; see [`Source`].
impl<R: Read> io::Seek for Source<R> {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        match to {
            io::SeekFrom::Start(at) if (self.kept_from..=self.kept_end()).contains(&at) => {
                self.pos = at;
                self.mark = at;
                Ok(at)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the import reader seeks only within the bytes of the current record",
            )),
        }
    }
}

/// Fields by number: the last variant's plus one (variants are only ever
/// added at the end).
const N_FIELDS: usize = ImportField::SentCost as usize + 1;

/// The fields a response file may have besides columns to ignore.
const RESPONSE_FIELDS: &[ImportField] = &[
    ImportField::CustomerNo,
    ImportField::Vin,
    ImportField::ResponseDate,
    ImportField::ResponseKind,
    ImportField::ResponseValue,
    ImportField::ResponseNote,
    ImportField::Ignore,
];

const VEHICLE_FIELDS: &[ImportField] = &[
    ImportField::Make,
    ImportField::Model,
    ImportField::FirstRegistration,
    ImportField::LastServiceDate,
    ImportField::LastServiceKm,
    ImportField::NextInspection,
    ImportField::WarrantyEnd,
];

/// Column indices per field, computed once from the header.
struct Plan {
    cols: Vec<Vec<usize>>,
    /// Columns whose values are read, with their field, to bound their length.
    mapped: Vec<(usize, ImportField)>,
    width: usize,
    has_customer: bool,
    has_vehicle: bool,
    /// A response file: its rows are responses only.
    responses: bool,
    /// A send history file: its rows are sends and nothing else.
    history: bool,
}

impl Plan {
    fn new(columns: &[Column]) -> Self {
        let mut cols = vec![Vec::new(); N_FIELDS];
        for (i, c) in columns.iter().enumerate() {
            if let Some(f) = c.field {
                cols[f as usize].push(i);
            }
        }
        let any = |fs: &[ImportField]| fs.iter().any(|&f| !cols[f as usize].is_empty());
        let has_customer = any(ImportField::CUSTOMER);
        let has_vehicle = any(VEHICLE_FIELDS) || any(&[ImportField::CustomerNo]);
        let responses = any(&[ImportField::ResponseKind]);
        let mapped = columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                c.field
                    .filter(|&f| f != ImportField::Ignore)
                    .map(|f| (i, f))
            })
            .collect();
        Self {
            history: !cols[ImportField::SentDate as usize].is_empty(),
            cols,
            mapped,
            width: columns.len(),
            has_customer,
            has_vehicle,
            responses,
        }
    }

    /// The first non-empty cell of the field's columns, cleaned; "" if none.
    fn get<'r>(&self, rec: &'r StringRecord, field: ImportField) -> &'r str {
        for &i in &self.cols[field as usize] {
            if let Some(v) = rec.get(i) {
                let v = clean(v);
                if !v.is_empty() {
                    return v;
                }
            }
        }
        ""
    }

    /// Where the field's first column is, to report errors left to right.
    fn position(&self, field: ImportField) -> usize {
        self.cols[field as usize]
            .first()
            .copied()
            .unwrap_or(usize::MAX)
    }
}

fn clean(s: &str) -> &str {
    let t = s.trim_matches(|c: char| c.is_whitespace() || c.is_control() || c == '\u{feff}');
    if is_placeholder(t) {
        ""
    } else {
        t
    }
}

fn is_placeholder(t: &str) -> bool {
    matches!(t.len(), 1..=5)
        && (matches!(t, "-" | "--" | "---" | "NULL" | "null" | "\\N")
            || ["k.a.", "k. a.", "n/a", "n.a.", "n.v."]
                .iter()
                .any(|p| t.eq_ignore_ascii_case(p)))
}

struct FieldError {
    position: usize,
    field: ImportField,
    reason: String,
}

/// Whether a bad value of `field` drops that field only (the row is kept
/// without it and the drop reported as a warning) rather than the row: every
/// field but the keys (customer number, VIN) and what makes a row the record
/// it is (a visit's date, a consent statement's channel and yes/no, a
/// response's kind and date, every field of a send history).
fn droppable(field: ImportField, plan: &Plan) -> bool {
    use ImportField as F;
    if plan.history {
        return false;
    }
    if plan.responses {
        return matches!(field, F::ResponseValue);
    }
    matches!(
        field,
        F::IsCompany
            | F::Country
            | F::Postcode
            | F::Email
            | F::Phone
            | F::BirthDate
            | F::Language
            | F::FirstRegistration
            | F::LastServiceDate
            | F::LastServiceKm
            | F::NextInspection
            | F::WarrantyEnd
            | F::ConsentEmail
            | F::ConsentPost
            | F::ConsentPhone
            | F::ConsentDate
            | F::VisitKm
            | F::VisitValue
    )
}

/// Whether a customer read from a row with fields dropped is still someone
/// to write to: a name (or company) or a way to reach them.
fn usable(c: &Customer) -> bool {
    !c.last_name.is_empty()
        || !c.first_name.is_empty()
        || c.company.is_some()
        || c.email.is_some()
        || c.phone.is_some()
        || (!c.address.street.is_empty() && !c.address.city.is_empty())
}

/// What a row reports a bad field with: the field and why.
type Fail<'f> = dyn FnMut(ImportField, String) + 'f;

/// A value a row may have: `None` when its cell is empty; the cell parsed
/// otherwise, a parse error reported against `field` (and `None`).
fn optional<T>(
    cell: &str,
    field: ImportField,
    fail: &mut Fail<'_>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    if cell.is_empty() {
        return None;
    }
    parse(cell).map_err(|e| fail(field, e)).ok()
}

/// A value a row needs: an empty cell is reported against `field` as
/// `missing: {missing}`; otherwise as [`optional`].
fn required<T>(
    cell: &str,
    field: ImportField,
    missing: &str,
    fail: &mut Fail<'_>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    if cell.is_empty() {
        fail(field, format!("missing: {missing}"));
        return None;
    }
    optional(cell, field, fail, parse)
}

/// Everything a row needs besides the record itself.
struct Rules {
    file: String,
    consent_source: String,
    order: DateOrder,
    today: Date,
    plan: Plan,
    /// What row errors call each column: its field, else its header (bounded).
    names: Vec<String>,
    delimiter: u8,
}

/// Streams the rows of one CSV export. See the module docs.
pub struct Parser<R> {
    csv: csv::Reader<Source<R>>,
    format: Format,
    rules: Rules,
    record: Option<ByteRecord>,
    fallback: StringRecord,
    errors: Vec<FieldError>,
    /// Where the next record starts, for errors that have no record.
    next_line: u64,
    /// Old Mac files end lines with '\r' alone (see [`Parser::new`]).
    lines_by_cr: bool,
    /// Lines rejected for a quote they open and never close.
    unclosed_quotes: u32,
    finished: bool,
    aborted: Option<FileError>,
    warned_encoding: bool,
    /// Whom the row last rejected is about (see [`Parser::rejected_subject`]).
    rejected: Option<Subject>,
}

impl<R: Read> Parser<R> {
    /// Sniffs encoding and delimiter from the first bytes (peek up to 64 KiB,
    /// without losing them), reads the header, maps columns.
    pub fn new(mut reader: R, file_name: &str, opts: &TenantImport) -> Result<Self, FileError> {
        let forced_delimiter = opts
            .delimiter
            .as_deref()
            .map(delimiter_option)
            .transpose()?;
        let forced_encoding = opts.encoding.as_deref().map(encoding_option).transpose()?;
        let order = match opts.date_order.as_deref() {
            None => DateOrder::default(),
            Some(s) => DateOrder::from_option(s).ok_or_else(|| FileError::BadOption {
                option: "date_order",
                value: s.to_string(),
                expected: "\"dmy\", \"ymd\" or \"mdy\"",
            })?,
        };

        let (buf, at_eof) = fill(&mut reader)?;
        if buf.is_empty() {
            return Err(FileError::Empty);
        }
        let bom = sniff::bom(&buf);
        if let Some(reason) = sniff::binary_reason(&buf, bom.map_or(0, |b| b.1)) {
            return Err(FileError::NotCsv { reason });
        }
        let (encoding, bom_len) = match (forced_encoding, bom) {
            (Some(forced), Some((found, len))) if forced == found => (forced, len),
            (Some(forced), _) => (forced, 0),
            (None, Some(found)) => found,
            (None, None) => match sniff::utf16_without_bom(&buf) {
                Some(utf16) => (utf16, 0),
                None if sniff::is_utf8(&buf, at_eof) => (UTF_8, 0),
                None => (WINDOWS_1252, 0),
            },
        };
        let label = sniff::label(encoding, bom_len > 0);
        let text: std::borrow::Cow<'_, [u8]> = if encoding.is_ascii_compatible() {
            if let Some(reason) = sniff::control_reason(&buf[bom_len..]) {
                return Err(FileError::NotCsv {
                    reason: reason.into(),
                });
            }
            std::borrow::Cow::Borrowed(&buf[bom_len..])
        } else {
            let (decoded, _) = encoding.decode_without_bom_handling(&buf[bom_len..]);
            std::borrow::Cow::Owned(decoded.into_owned().into_bytes())
        };
        if at_eof && text.iter().all(u8::is_ascii_whitespace) {
            return Err(FileError::Empty);
        }
        let sep_line = sniff::excel_sep_line(&text);
        let body = match sep_line {
            Some(_) => text
                .iter()
                .position(|&b| b == b'\n')
                .map_or(&text[..0], |i| &text[i + 1..]),
            None => &text[..],
        };
        let sniffed = forced_delimiter
            .or(sep_line)
            .or_else(|| sniff::sniff_delimiter(body, at_eof));
        let delimiter = sniffed.unwrap_or(b';');
        // Records end at '\n' only: the csv crate counts the line of a record
        // before it consumes the '\n' of a preceding "\r\n", which would put
        // every error of a Windows file one line too early. The '\r' left at
        // the end of the last cell is trimmed like any other whitespace. Old
        // Mac files end lines with '\r' alone; they get the csv default (and
        // line numbers counted by '\n', i.e. 1).
        let terminator = if text.contains(&b'\n') || !text.contains(&b'\r') {
            csv::Terminator::Any(b'\n')
        } else {
            csv::Terminator::CRLF
        };
        drop(text);

        let mut cursor = io::Cursor::new(buf);
        let inner = if encoding == UTF_8 {
            cursor.set_position(bom_len as u64);
            Inner::Plain(cursor.chain(reader))
        } else {
            Inner::Decoded(
                DecodeReaderBytesBuilder::new()
                    .encoding(Some(encoding))
                    .strip_bom(true)
                    .build(cursor.chain(reader)),
            )
        };
        let mut csv = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .terminator(terminator)
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(CSV_BUFFER)
            .from_reader(Source::new(inner));

        let mut record = ByteRecord::new();
        if sep_line.is_some() {
            read_raw(&mut csv, &mut record, 1)?;
        }
        // The header is the first record with a name in it.
        let headers = loop {
            csv.get_mut().mark = csv.position().byte();
            let line = csv.position().line();
            if !read_raw(&mut csv, &mut record, line)? {
                return Err(FileError::Empty);
            }
            // A header name over a line break is a quote left open: it
            // swallowed the rows, and nothing after it can be trusted.
            // ('\r' ends the last name of a "\r\n" file, see above.)
            let cr_lines = matches!(terminator, csv::Terminator::CRLF);
            if record
                .iter()
                .any(|h| h.contains(&b'\n') || (cr_lines && h.contains(&b'\r')))
            {
                return Err(FileError::HeaderQuote {
                    line: record.position().map_or(line, csv::Position::line),
                });
            }
            let mut headers: Vec<String> = record
                .iter()
                .map(|h| clean_header(&decode_lossy(h)))
                .collect();
            while headers.last().is_some_and(String::is_empty) {
                headers.pop();
            }
            if !headers.is_empty() {
                break headers;
            }
        };
        if let Some(line) = nul_line(&csv, csv.position().line()) {
            return Err(binary(line));
        }

        let mut fields = headers::map_headers(&headers, &opts.columns);
        let history = fields.contains(&Some(ImportField::SentDate));
        if history {
            for (f, what) in HISTORY_REQUIRED {
                if !fields.contains(&Some(*f)) {
                    return Err(FileError::HistoryMissing { what });
                }
            }
            if let Some((h, f)) = headers
                .iter()
                .zip(&fields)
                .find_map(|(h, f)| f.filter(|f| !HISTORY_FIELDS.contains(f)).map(|f| (h, f)))
            {
                return Err(FileError::HistoryMixed {
                    header: shown_header(h),
                    field: f,
                });
            }
        } else {
            // `Dienst` or `Kosten` in an export that is no send history
            // means something else there: reported as unmapped, not read.
            for f in &mut fields {
                if matches!(f, Some(ImportField::SentService | ImportField::SentCost)) {
                    *f = None;
                }
            }
        }
        let has_key = fields
            .iter()
            .any(|f| matches!(f, Some(ImportField::CustomerNo | ImportField::Vin)));
        if !has_key {
            if sniffed.is_none() && headers.len() == 1 {
                // Nothing shows this is a CSV export: its first line is not
                // quoted, it may be anything (a note, a key, a password file).
                return Err(FileError::NotCsv {
                    reason: "no delimiter (';', ',', tab or '|') and no known column name in the first line".into(),
                });
            }
            return Err(FileError::NoKeyColumn { headers });
        }
        check_response_file(&headers, &fields)?;
        check_more_than_keys(&headers, &fields)?;
        let columns: Vec<Column> = headers
            .into_iter()
            .zip(fields)
            .map(|(header, field)| Column { header, field })
            .collect();
        let plan = Plan::new(&columns);
        let names = columns
            .iter()
            .enumerate()
            .map(|(i, c)| match c.field {
                Some(f) if f != ImportField::Ignore => f.name().to_string(),
                _ if c.header.is_empty() => format!("(column {})", i + 1),
                _ => c.header.chars().take(SHOWN_HEADER_CHARS).collect(),
            })
            .collect();
        let duplicates = duplicate_headers(&columns);
        let format = Format {
            encoding: label,
            delimiter,
            columns,
            duplicates,
        };
        tracing::debug!(file = file_name, format = %format.describe(), "import format detected");
        let next_line = csv.position().line();
        Ok(Self {
            csv,
            format,
            rules: Rules {
                file: file_name.to_string(),
                consent_source: format!("import:{file_name}"),
                order,
                today: Date::today(),
                plan,
                names,
                delimiter,
            },
            record: Some(record),
            fallback: StringRecord::new(),
            errors: Vec::new(),
            next_line,
            lines_by_cr: matches!(terminator, csv::Terminator::CRLF),
            unclosed_quotes: 0,
            finished: false,
            aborted: None,
            warned_encoding: false,
            rejected: None,
        })
    }

    /// Judges dates (birth dates in the future, two-digit years) against
    /// this day instead of the clock's.
    pub fn with_today(mut self, today: Date) -> Self {
        self.rules.today = today;
        self
    }

    pub fn format(&self) -> &Format {
        &self.format
    }

    /// Whom the row the iterator last gave as rejected is about, as far as
    /// it can be read; `None` when neither its vehicle nor its customer can
    /// be (or the last row was not rejected). An import must not take a
    /// re-export as the truth about a vehicle or customer a rejected row
    /// may be about.
    pub fn rejected_subject(&self) -> Option<&Subject> {
        self.rejected.as_ref()
    }

    /// Set when the parse stopped before the end of the file (a read error,
    /// a runaway record). The iterator has yielded one last `RowError` with
    /// field "file" for it; the caller should treat the import as failed.
    pub fn aborted(&self) -> Option<&FileError> {
        self.aborted.as_ref()
    }

    fn abort(&mut self, e: csv::Error) -> RowError {
        let error = match e.into_kind() {
            csv::ErrorKind::Io(io) if io.get_ref().is_some_and(|i| i.is::<Oversized>()) => {
                FileError::RecordTooLarge {
                    line: self.next_line,
                    limit: MAX_RECORD_BYTES,
                }
            }
            csv::ErrorKind::Io(io) => FileError::Io(io),
            other => FileError::NotCsv {
                reason: format!("{other:?}"),
            },
        };
        self.abort_with(error, self.next_line)
    }

    fn abort_with(&mut self, error: FileError, line: u64) -> RowError {
        self.finished = true;
        let row_error = RowError {
            file: self.rules.file.clone(),
            line,
            field: "file".into(),
            reason: error.to_string(),
        };
        self.aborted = Some(error);
        row_error
    }

    /// Whether the record just read, which started at stream offset `begin`
    /// on `line`, is a quote opened and never closed rather than a quoted
    /// value with line breaks in it: the quote ran to the end of the file
    /// (an odd number of quote characters), or its value spans more than
    /// [`MAX_QUOTED_LINES`] lines or has a line that looks like a row of
    /// its own (as many delimiters as a row has). Returns the column and the
    /// number of lines the value runs on over.
    fn unclosed_quote(&self, record: &ByteRecord, begin: u64, line: u64) -> Option<(usize, u64)> {
        let source = self.csv.get_ref();
        let end = self.csv.position().byte();
        let raw = source.kept_since(begin);
        let raw = &raw[..raw
            .len()
            .min(usize::try_from(end.saturating_sub(begin)).unwrap_or(0))];
        let breaks = self.csv.position().line().saturating_sub(line);
        // Lines end at '\n' (the terminator, consumed with the record); in
        // old Mac files at '\r' and lines are not counted.
        let multi_line = if self.lines_by_cr {
            record.as_slice().iter().any(|&b| b == b'\r' || b == b'\n')
        } else {
            breaks >= 2 || (breaks == 1 && raw.last() != Some(&b'\n'))
        };
        if !multi_line {
            return None;
        }
        let is_break = |b: &u8| *b == b'\n' || (self.lines_by_cr && *b == b'\r');
        let column = record.iter().position(|f| f.iter().any(is_break))?;
        let value = record.get(column)?;
        let mut runs_on = value.iter().filter(|b| is_break(b)).count() as u64;
        if value.last().is_some_and(is_break) {
            runs_on -= 1;
        }
        let width = self.rules.plan.width;
        let row_like = width >= 2
            && value
                .split(is_break)
                .skip(1)
                .any(|l| l.iter().filter(|&&b| b == self.rules.delimiter).count() + 1 >= width);
        (!well_quoted(raw, self.rules.delimiter) || runs_on > MAX_QUOTED_LINES || row_like)
            .then_some((column, runs_on))
    }

    /// Rejects the line a runaway quote starts on and goes on reading at
    /// the line after it. `from` is where the record (or blank lines before
    /// it) starts, on `line`. None when no line break is kept after `from`:
    /// the record is one line too long, not a quote.
    fn resume_after_first_line(&mut self, from: u64, line: u64) -> Option<Result<u64, RowError>> {
        let lines_by_cr = self.lines_by_cr;
        let is_break = |b: u8| b == b'\n' || (lines_by_cr && b == b'\r');
        let kept = self.csv.get_ref().kept_since(from);
        // csv skips blank lines before a record; the record starts after them.
        let blank = kept.iter().take_while(|&&b| is_break(b)).count();
        let skipped = kept[..blank].iter().filter(|&&b| b == b'\n').count() as u64;
        let first_break = kept[blank..].iter().position(|&b| is_break(b))?;
        let start_line = line + skipped;
        self.unclosed_quotes += 1;
        if self.unclosed_quotes > MAX_UNCLOSED_QUOTES {
            return Some(Err(self.abort_with(
                FileError::UnclosedQuotes {
                    line: start_line,
                    limit: MAX_UNCLOSED_QUOTES,
                },
                start_line,
            )));
        }
        let resume = from + (blank + first_break + 1) as u64;
        let resume_line = if kept[blank + first_break] == b'\n' {
            start_line + 1
        } else {
            start_line
        };
        let mut at = csv::Position::new();
        at.set_byte(resume).set_line(resume_line);
        if let Err(e) = self.csv.seek_raw(io::SeekFrom::Start(resume), at) {
            return Some(Err(self.abort(e)));
        }
        self.next_line = resume_line;
        Some(Ok(start_line))
    }

    fn unclosed_quote_error(&self, line: u64, field: &str, runs_on: &str) -> RowError {
        RowError {
            file: self.rules.file.clone(),
            line,
            field: field.to_string(),
            reason: format!(
                "unclosed quote (\"): the quoted value starting on this line runs on {runs_on}; this line is rejected and the lines after it are read as rows"
            ),
        }
    }

    /// One step of the iterator: a record read, judged and turned into a
    /// row or an error; None for a record without values.
    fn step(&mut self, mut record: ByteRecord) -> (Option<Result<Row, RowError>>, ByteRecord) {
        let from = self.csv.position().byte();
        let from_line = self.csv.position().line();
        self.csv.get_mut().mark = from;
        match self.csv.read_byte_record(&mut record) {
            Ok(false) => {
                self.finished = true;
                (None, record)
            }
            Ok(true) => {
                let start = record.position().cloned().unwrap_or_else(|| {
                    let mut p = csv::Position::new();
                    p.set_byte(from).set_line(from_line);
                    p
                });
                let (begin, line) = (start.byte(), start.line());
                let end = self.csv.position().byte();
                self.next_line = self.csv.position().line();
                if self.csv.get_ref().nul_at.is_some_and(|at| at < end) {
                    let e = self.abort_with(binary(line), line);
                    return (Some(Err(e)), record);
                }
                if let Some((column, runs_on)) = self.unclosed_quote(&record, begin, line) {
                    // The record spans lines, so a line break follows `begin`.
                    if let Some(resumed) = self.resume_after_first_line(begin, line) {
                        let e = resumed.map_or_else(
                            |e| e,
                            |line| {
                                let field =
                                    self.rules.names.get(column).map_or("row", String::as_str);
                                let s = if runs_on == 1 { "" } else { "s" };
                                self.unclosed_quote_error(
                                    line,
                                    field,
                                    &format!("over {runs_on} more line{s}"),
                                )
                            },
                        );
                        return (Some(Err(e)), record);
                    }
                }
                if end - begin > MAX_RECORD_BYTES {
                    let e = self.abort_with(
                        FileError::RecordTooLarge {
                            line,
                            limit: MAX_RECORD_BYTES,
                        },
                        line,
                    );
                    return (Some(Err(e)), record);
                }
                self.process(record, line)
            }
            Err(e) => {
                let oversized = matches!(e.kind(), csv::ErrorKind::Io(io) if io.get_ref().is_some_and(|i| i.is::<Oversized>()));
                if oversized {
                    // A record runs on past the limit. Over several lines that
                    // is a quote never closed: reject its first line, read on.
                    if let Some(resumed) = self.resume_after_first_line(from, from_line) {
                        let e = resumed.map_or_else(
                            |e| e,
                            |line| {
                                self.unclosed_quote_error(
                                    line,
                                    "row",
                                    &format!("for more than {} KiB", MAX_RECORD_BYTES / 1024),
                                )
                            },
                        );
                        return (Some(Err(e)), record);
                    }
                }
                (Some(Err(self.abort(e))), record)
            }
        }
    }

    /// Decodes one record (invalid UTF-8 in a UTF-8 file: that field as
    /// Windows-1252) and builds its row.
    fn process(
        &mut self,
        record: ByteRecord,
        line: u64,
    ) -> (Option<Result<Row, RowError>>, ByteRecord) {
        match StringRecord::from_byte_record(record) {
            Ok(rec) => {
                let out = self
                    .rules
                    .row(&rec, line, &mut self.errors, &mut self.rejected);
                (out, rec.into_byte_record())
            }
            Err(e) => {
                let record = e.into_byte_record();
                if !self.warned_encoding {
                    self.warned_encoding = true;
                    tracing::warn!(
                        file = %self.rules.file,
                        line,
                        "invalid UTF-8 in a file whose first 64 KiB looked like UTF-8; reading such fields as Windows-1252"
                    );
                }
                self.fallback.clear();
                for field in record.iter() {
                    self.fallback.push_field(&decode_lossy(field));
                }
                let out =
                    self.rules
                        .row(&self.fallback, line, &mut self.errors, &mut self.rejected);
                (out, record)
            }
        }
    }
}

impl<R: Read> Iterator for Parser<R> {
    type Item = Result<Row, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rejected = None;
        while !self.finished {
            let record = self.record.take().unwrap_or_default();
            let (out, record) = self.step(record);
            self.record = Some(record);
            if out.is_some() {
                return out;
            }
        }
        None
    }
}

/// Whether every quote in the raw bytes of a record opens a value and is
/// closed right before a delimiter or the end of a line, as CSV has it. The
/// csv reader is lenient: it ends a quote anywhere (`"Müller, Hans` closes
/// at the next row's first quote) and at the end of the file.
fn well_quoted(raw: &[u8], delimiter: u8) -> bool {
    let mut quoted = false;
    let mut field_start = true;
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if quoted {
            if b == b'"' {
                if raw.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    quoted = false;
                    // Blanks between a closing quote and the delimiter are let pass.
                    let mut next = i + 1;
                    while raw.get(next).is_some_and(|&c| c == b' ' && c != delimiter) {
                        next += 1;
                    }
                    if !matches!(raw.get(next), None | Some(b'\n' | b'\r'))
                        && raw.get(next) != Some(&delimiter)
                    {
                        return false;
                    }
                }
            }
        } else if b == b'"' && field_start {
            quoted = true;
        } else {
            field_start = b == delimiter || b == b'\n' || b == b'\r';
        }
        i += 1;
    }
    !quoted
}

/// The line of the first NUL byte when the csv reader has passed it.
fn nul_line<R: Read>(csv: &csv::Reader<Source<R>>, line: u64) -> Option<u64> {
    csv.get_ref()
        .nul_at
        .is_some_and(|at| at < csv.position().byte())
        .then_some(line)
}

fn binary(line: u64) -> FileError {
    FileError::NotCsv {
        reason: format!("contains binary data (NUL bytes) on line {line}; not a text file"),
    }
}

/// A response file has only response columns (and the customer number or
/// VIN); response columns come only with a response-kind column.
fn check_response_file(
    headers: &[String],
    fields: &[Option<ImportField>],
) -> Result<(), FileError> {
    let shown = |i: usize| headers.get(i).map_or_else(String::new, |h| h.clone());
    let kind = fields
        .iter()
        .position(|f| *f == Some(ImportField::ResponseKind));
    match kind {
        Some(k) => {
            let others: Vec<String> = fields
                .iter()
                .enumerate()
                .filter(|(_, f)| f.is_some_and(|f| !RESPONSE_FIELDS.contains(&f)))
                .map(|(i, _)| shown(i))
                .collect();
            if others.is_empty() {
                Ok(())
            } else {
                Err(FileError::MixedResponses {
                    kind_column: shown_header(&shown(k)),
                    others,
                })
            }
        }
        None => match fields.iter().position(|f| {
            matches!(
                f,
                Some(
                    ImportField::ResponseDate
                        | ImportField::ResponseValue
                        | ImportField::ResponseNote
                )
            )
        }) {
            Some(i) => Err(FileError::ResponseWithoutKind {
                column: shown_header(&shown(i)),
            }),
            None => Ok(()),
        },
    }
}

/// A file whose only understood columns are the customer number and the
/// VIN, beside columns nothing maps, is refused: its rows would import
/// nothing but holders while the report said every row was fine (a visit
/// export in a dialect no mapping knows, say). Mapping the unknown columns
/// to `ignore` says that holders are all the file is for.
fn check_more_than_keys(
    headers: &[String],
    fields: &[Option<ImportField>],
) -> Result<(), FileError> {
    let keys_only = fields.iter().all(|f| {
        matches!(
            f,
            None | Some(ImportField::CustomerNo | ImportField::Vin | ImportField::Ignore)
        )
    });
    let unknown: Vec<String> = headers
        .iter()
        .zip(fields)
        .enumerate()
        .filter(|(_, (_, f))| f.is_none())
        .map(|(i, (h, _))| {
            if h.is_empty() {
                format!("(column {})", i + 1)
            } else {
                h.clone()
            }
        })
        .collect();
    if !keys_only || unknown.is_empty() {
        return Ok(());
    }
    let keys = headers
        .iter()
        .zip(fields)
        .filter(|(_, f)| matches!(f, Some(ImportField::CustomerNo | ImportField::Vin)))
        .map(|(h, _)| h.clone())
        .collect();
    let has = |f: ImportField| fields.contains(&Some(f));
    let what = match (has(ImportField::CustomerNo), has(ImportField::Vin)) {
        (true, true) => "which customer holds which vehicle",
        (true, false) => "customer numbers",
        _ => "VINs",
    };
    Err(FileError::OnlyKeys {
        keys,
        unknown,
        what,
    })
}

/// Mapped columns whose header repeats an earlier column's; see [`Format::duplicates`].
fn duplicate_headers(columns: &[Column]) -> Vec<(usize, usize)> {
    let mut first: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for (i, c) in columns.iter().enumerate() {
        if matches!(c.field, None | Some(ImportField::Ignore)) {
            continue;
        }
        let key = values::fold_key(&c.header);
        if key.is_empty() {
            continue;
        }
        match first.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => out.push((i, *e.get())),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(i);
            }
        }
    }
    out
}

fn fill<R: Read>(reader: &mut R) -> io::Result<(Vec<u8>, bool)> {
    let mut buf = vec![0u8; SNIFF_BYTES];
    let mut len = 0;
    while len < buf.len() {
        match reader.read(&mut buf[len..]) {
            Ok(0) => {
                buf.truncate(len);
                return Ok((buf, true));
            }
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((buf, false))
}

fn read_raw<R: Read>(
    csv: &mut csv::Reader<Source<R>>,
    record: &mut ByteRecord,
    line: u64,
) -> Result<bool, FileError> {
    csv.read_byte_record(record)
        .map_err(|e| match e.into_kind() {
            csv::ErrorKind::Io(io) if io.get_ref().is_some_and(|i| i.is::<Oversized>()) => {
                FileError::RecordTooLarge {
                    line,
                    limit: MAX_RECORD_BYTES,
                }
            }
            csv::ErrorKind::Io(io) => FileError::Io(io),
            other => FileError::NotCsv {
                reason: format!("{other:?}"),
            },
        })
}

fn decode_lossy(field: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(field) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => WINDOWS_1252.decode_without_bom_handling(field).0,
    }
}

fn clean_header(h: &str) -> String {
    values::collapse_ws(
        h.trim_matches(|c: char| c.is_whitespace() || c.is_control() || c == '\u{feff}'),
    )
}

fn delimiter_option(s: &str) -> Result<u8, FileError> {
    let d = match s {
        "\t" | "\\t" | "tab" | "TAB" | "Tab" => b'\t',
        "semicolon" => b';',
        "comma" => b',',
        "pipe" => b'|',
        s if s.len() == 1 && s.as_bytes()[0].is_ascii_punctuation() && s != "\"" => s.as_bytes()[0],
        _ => {
            return Err(FileError::BadOption {
                option: "delimiter",
                value: s.to_string(),
                expected: "\";\", \",\", \"\\t\" or \"|\"",
            })
        }
    };
    Ok(d)
}

fn encoding_option(s: &str) -> Result<&'static Encoding, FileError> {
    Encoding::for_label(s.trim().as_bytes())
        .filter(|e| *e != encoding_rs::REPLACEMENT)
        .ok_or_else(|| FileError::BadOption {
            option: "encoding",
            value: s.to_string(),
            expected: "\"utf-8\" or \"windows-1252\"",
        })
}

impl Rules {
    /// None for a row without any value (skipped silently). A rejected
    /// row leaves in `rejected` whom it is about, when that can be read.
    fn row(
        &self,
        rec: &StringRecord,
        line: u64,
        errors: &mut Vec<FieldError>,
        rejected: &mut Option<Subject>,
    ) -> Option<Result<Row, RowError>> {
        use ImportField as F;
        let p = &self.plan;
        let last_value = (0..rec.len())
            .rev()
            .find(|&i| rec.get(i).is_some_and(|c| !clean(c).is_empty()))?;
        if last_value >= p.width {
            return Some(Err(self.error(
                line,
                "row",
                format!(
                    "has {} values but the header has {} columns (a delimiter inside an unquoted value?)",
                    last_value + 1,
                    p.width
                ),
            )));
        }
        if rec.len() < p.width {
            return Some(Err(self.error(line, "row", self.too_few_values(rec))));
        }
        for &(i, field) in &p.mapped {
            let len = rec.get(i).map_or(0, str::len);
            if len > MAX_FIELD_BYTES {
                return Some(Err(self.error(
                    line,
                    field.name(),
                    format!("is {len} bytes long; at most {MAX_FIELD_BYTES} are accepted"),
                )));
            }
        }
        let customer_no = p.get(rec, F::CustomerNo);
        let vin_cell = p.get(rec, F::Vin);
        if customer_no.is_empty() && vin_cell.is_empty() {
            return Some(Err(self.error(
                line,
                "customer_no",
                "missing: every row needs a customer number or a VIN".into(),
            )));
        }
        errors.clear();
        let mut fail = |field: ImportField, reason: String| {
            errors.push(FieldError {
                position: p.position(field),
                field,
                reason,
            });
        };
        let vin = if vin_cell.is_empty() {
            String::new()
        } else {
            values::normalize_vin(vin_cell).unwrap_or_else(|e| {
                fail(F::Vin, e);
                String::new()
            })
        };
        let mut row = Row {
            line,
            ..Row::default()
        };

        if p.responses {
            row.response = self.response(rec, customer_no, &vin, line, &mut fail);
        } else if p.history {
            row.sent = self.sent(rec, customer_no, &vin, &mut fail);
        } else if p.has_customer && !customer_no.is_empty() {
            row.customer = Some(self.customer(rec, customer_no, &mut fail));
        }

        if !vin_cell.is_empty() && p.has_vehicle && !p.responses && !p.history {
            if customer_no.is_empty() {
                fail(
                    F::CustomerNo,
                    "missing: a vehicle needs the customer number of its holder".into(),
                );
            }
            let date = |f: ImportField, fail: &mut Fail<'_>| -> Option<Date> {
                optional(p.get(rec, f), f, fail, |v| {
                    values::parse_date(v, self.order, Era::Near, self.today)
                })
                .flatten()
            };
            row.vehicle = Some(Vehicle {
                vin: vin.clone(),
                customer_no: customer_no.to_string(),
                make: values::collapse_ws(p.get(rec, F::Make)),
                model: values::collapse_ws(p.get(rec, F::Model)),
                first_registration: date(F::FirstRegistration, &mut fail),
                last_service_date: date(F::LastServiceDate, &mut fail),
                last_service_km: optional(
                    p.get(rec, F::LastServiceKm),
                    F::LastServiceKm,
                    &mut fail,
                    values::parse_km,
                ),
                next_inspection: date(F::NextInspection, &mut fail),
                warranty_end: date(F::WarrantyEnd, &mut fail),
            });
        }

        if !p.history {
            self.consents(rec, customer_no, &mut row.consents, &mut fail);
        }

        let visit_date = p.get(rec, F::VisitDate);
        let visit_km = p.get(rec, F::VisitKm);
        let visit_kind = p.get(rec, F::VisitKind);
        let visit_value = p.get(rec, F::VisitValue);
        if !visit_date.is_empty() {
            if vin_cell.is_empty() {
                fail(F::Vin, "missing: a service visit needs a VIN".into());
            }
            let date = values::parse_date(visit_date, self.order, Era::Near, self.today)
                .map_err(|e| fail(F::VisitDate, e))
                .ok()
                .flatten();
            let km = optional(visit_km, F::VisitKm, &mut fail, values::parse_km);
            let value = optional(visit_value, F::VisitValue, &mut fail, values::parse_amount);
            if let Some(date) = date {
                row.visit = Some(ServiceVisit {
                    vin: vin.clone(),
                    customer_no: customer_no.to_string(),
                    date,
                    km,
                    kind: if visit_kind.is_empty() {
                        "service".into()
                    } else {
                        values::collapse_ws(visit_kind)
                    },
                    value,
                    source: format!("{}:{line}", self.file),
                });
            }
        } else if !visit_km.is_empty() || !visit_kind.is_empty() || !visit_value.is_empty() {
            fail(F::VisitDate, "missing: a service visit needs a date".into());
        }

        if errors.is_empty() {
            return Some(Ok(row));
        }
        errors.sort_by_key(|e| e.position);
        if errors.iter().all(|e| droppable(e.field, p)) {
            // Only optional fields are bad: the row is kept without them,
            // unless what is left of it is nobody and nothing.
            if row.customer.as_ref().is_some_and(|c| !usable(c)) {
                row.customer = None;
            }
            let something = row.customer.is_some()
                || row.vehicle.is_some()
                || row.visit.is_some()
                || row.response.is_some()
                || !row.consents.is_empty();
            if something {
                for e in errors.iter() {
                    row.dropped.insert(e.field);
                    let what = if e.field == F::ConsentDate {
                        "field not imported, nor the row's consent statements"
                    } else {
                        "field not imported"
                    };
                    row.warnings.push(self.error(
                        line,
                        e.field.name(),
                        format!("{} ({what})", e.reason),
                    ));
                }
                return Some(Ok(row));
            }
        }
        // A VIN that is not one names no vehicle; the customer number alone
        // is not enough then (the row's visits are its vehicle's).
        let vin_read = vin_cell.is_empty() || !vin.is_empty();
        if vin_read && !(vin.is_empty() && customer_no.is_empty()) {
            *rejected = Some(Subject {
                vin: vin.clone(),
                customer_no: customer_no.to_string(),
            });
        }
        let mut reason = errors[0].reason.clone();
        for e in &errors[1..] {
            reason.push_str("; also ");
            reason.push_str(e.field.name());
            reason.push_str(": ");
            reason.push_str(&e.reason);
        }
        Some(Err(self.error(line, errors[0].field.name(), reason)))
    }

    /// Why a row with fewer values than the header has columns is rejected;
    /// a row of one value that holds another delimiter was probably written
    /// with that one.
    fn too_few_values(&self, rec: &StringRecord) -> String {
        let n = rec.len();
        let mut reason = format!(
            "has {n} value{} but the header has {} columns",
            if n == 1 { "" } else { "s" },
            self.plan.width
        );
        let name = |d: u8| match d {
            b'\t' => "tab".to_string(),
            d => format!("'{}'", d as char),
        };
        if n == 1 {
            let cell = rec.get(0).unwrap_or("");
            if let Some(&other) = sniff::CANDIDATES
                .iter()
                .find(|&&d| d != self.delimiter && cell.as_bytes().contains(&d))
            {
                reason.push_str(&format!(
                    " (separated by {} instead of {}?)",
                    name(other),
                    name(self.delimiter)
                ));
            }
        }
        reason
    }

    fn error(&self, line: u64, field: &str, reason: String) -> RowError {
        RowError {
            file: self.file.clone(),
            line,
            field: field.to_string(),
            reason,
        }
    }

    /// The response of a response file's row; `None` when a field is bad
    /// (the row is then rejected with what `fail` collected).
    fn response(
        &self,
        rec: &StringRecord,
        customer_no: &str,
        vin: &str,
        line: u64,
        fail: &mut Fail<'_>,
    ) -> Option<ReportedResponse> {
        use ImportField as F;
        let p = &self.plan;
        let kind = required(
            p.get(rec, F::ResponseKind),
            F::ResponseKind,
            "a response needs a kind (Termin / appointment, Angebot angenommen / offer accepted)",
            fail,
            values::parse_response_kind,
        );
        let date = required(
            p.get(rec, F::ResponseDate),
            F::ResponseDate,
            "a response needs a date",
            fail,
            |v| values::parse_date(v, self.order, Era::Near, self.today),
        )
        .flatten();
        let value = optional(
            p.get(rec, F::ResponseValue),
            F::ResponseValue,
            fail,
            values::parse_amount,
        );
        Some(ReportedResponse {
            customer_no: customer_no.to_string(),
            vin: vin.to_string(),
            date: date?,
            kind: kind?,
            value,
            note: values::collapse_ws(p.get(rec, F::ResponseNote)),
            source: format!("{}:{line}", self.file),
        })
    }

    fn customer(&self, rec: &StringRecord, customer_no: &str, fail: &mut Fail<'_>) -> Customer {
        use ImportField as F;
        let p = &self.plan;
        let get = |f| p.get(rec, f);
        let mut c = Customer {
            customer_no: customer_no.to_string(),
            language: "de".into(),
            ..Customer::default()
        };

        let country = get(F::Country);
        c.address.country = if country.is_empty() {
            "DE".into()
        } else {
            // On error: no country, so no German postcode check on top.
            values::normalize_country(country).unwrap_or_else(|e| {
                fail(F::Country, e);
                String::new()
            })
        };

        let salutation = get(F::Salutation);
        if !salutation.is_empty() {
            c.salutation = values::parse_salutation(salutation);
        }
        let company = get(F::Company);
        if !company.is_empty() {
            c.company = Some(values::collapse_ws(company));
        }
        let explicit = optional(get(F::IsCompany), F::IsCompany, fail, values::parse_yes_no);

        c.first_name = values::collapse_ws(get(F::FirstName));
        c.last_name = values::collapse_ws(get(F::LastName));
        let full = get(F::FullName);
        if !full.is_empty() && c.last_name.is_empty() {
            let company_name = explicit
                .unwrap_or(c.salutation == Salutation::Company || values::looks_like_company(full));
            if company_name && c.company.is_none() && c.first_name.is_empty() {
                c.company = Some(values::collapse_ws(full));
            } else {
                let (first, last) = values::split_full_name(full);
                if c.first_name.is_empty() {
                    c.first_name = first;
                }
                c.last_name = last;
            }
        }
        // A company column alone does not make a company: a salutation of
        // a person or a first name says the customer is a person (the
        // company stays, as a line of their address).
        let a_person = matches!(
            c.salutation,
            Salutation::Mr | Salutation::Ms | Salutation::Mx
        ) || !c.first_name.is_empty();
        c.is_company = explicit
            .unwrap_or(c.salutation == Salutation::Company || (c.company.is_some() && !a_person));

        let street = get(F::Street);
        let house_no = get(F::HouseNo);
        if house_no.is_empty() {
            let (street, no) = values::split_street(street);
            c.address.street = street;
            c.address.house_no = no.unwrap_or_default();
        } else {
            c.address.street = values::collapse_ws(street);
            c.address.house_no = values::normalize_house_no(house_no);
        }
        let postcode = get(F::Postcode);
        if !postcode.is_empty() {
            c.address.postcode = values::normalize_postcode(postcode, &c.address.country)
                .unwrap_or_else(|e| {
                    fail(F::Postcode, e);
                    String::new()
                });
        }
        c.address.city = values::collapse_ws(get(F::City));

        c.email = optional(get(F::Email), F::Email, fail, values::normalize_email);
        let country = if c.address.country.is_empty() {
            "DE"
        } else {
            &c.address.country
        };
        c.phone = optional(get(F::Phone), F::Phone, fail, |v| {
            values::normalize_phone(v, country)
        });
        c.birth_date = optional(get(F::BirthDate), F::BirthDate, fail, |v| {
            values::parse_date(v, self.order, Era::Past, self.today)
        })
        .flatten();
        let language = get(F::Language);
        if !language.is_empty() {
            if let Ok(l) = values::normalize_language(language).map_err(|e| fail(F::Language, e)) {
                c.language = l;
            }
        }
        c
    }

    /// A send history row. Only past days are accepted: the file records
    /// what was sent, never what is to be.
    fn sent(
        &self,
        rec: &StringRecord,
        customer_no: &str,
        vin: &str,
        fail: &mut Fail<'_>,
    ) -> Option<Sent> {
        use ImportField as F;
        let p = &self.plan;
        if customer_no.is_empty() {
            fail(
                F::CustomerNo,
                "missing: a send needs the customer number of its recipient".into(),
            );
        }
        let service = p.get(rec, F::SentService);
        if service.is_empty() {
            fail(
                F::SentService,
                "missing: which service the message was for".into(),
            );
        }
        let channel = required(
            p.get(rec, F::ConsentChannel),
            F::ConsentChannel,
            "email, post, phone, or control for a control-group member",
            fail,
            values::parse_sent_channel,
        );
        let date = required(
            p.get(rec, F::SentDate),
            F::SentDate,
            "the day the message went out",
            fail,
            |v| match values::parse_date(v, self.order, Era::Near, self.today)? {
                Some(d) if d >= self.today => Err(format!(
                    "{d} is not in the past: a send history records only what was sent before today"
                )),
                d => Ok(d),
            },
        )
        .flatten();
        let cost = optional(
            p.get(rec, F::SentCost),
            F::SentCost,
            fail,
            values::parse_amount,
        );
        if matches!(channel, Some(None)) && cost.is_some_and(|c| c > 0) {
            fail(
                F::SentCost,
                "a control-group member was sent nothing and cannot have cost anything".into(),
            );
        }
        Some(Sent {
            customer_no: customer_no.to_string(),
            vin: vin.to_string(),
            service: values::collapse_ws(service),
            channel: channel?,
            date: date?,
            cost,
        })
    }

    fn consents(
        &self,
        rec: &StringRecord,
        customer_no: &str,
        out: &mut Vec<Consent>,
        fail: &mut Fail<'_>,
    ) {
        use ImportField as F;
        let p = &self.plan;
        let mut statements: [Option<(Channel, bool)>; 4] = [None; 4];
        for (i, (field, channel)) in [
            (F::ConsentEmail, Channel::Email),
            (F::ConsentPost, Channel::Post),
            (F::ConsentPhone, Channel::Phone),
        ]
        .into_iter()
        .enumerate()
        {
            statements[i] = optional(p.get(rec, field), field, fail, values::parse_yes_no)
                .map(|g| (channel, g));
        }
        let channel = p.get(rec, F::ConsentChannel);
        let granted = p.get(rec, F::ConsentGranted);
        let mut any = statements.iter().any(Option::is_some);
        if !channel.is_empty() || !granted.is_empty() {
            any = true;
            let channel = required(
                channel,
                F::ConsentChannel,
                "a consent statement needs a channel",
                fail,
                values::parse_channel,
            );
            let granted = required(
                granted,
                F::ConsentGranted,
                "a consent statement needs yes or no",
                fail,
                values::parse_yes_no,
            );
            if let (Some(c), Some(g)) = (channel, granted) {
                statements[3] = Some((c, g));
            }
        }
        if !any {
            return;
        }
        if customer_no.is_empty() {
            fail(
                F::CustomerNo,
                "missing: a consent needs a customer number".into(),
            );
            return;
        }
        // A statement without its date would be taken as made today: with a
        // bad date, the row's statements are not imported at all.
        let date = p.get(rec, F::ConsentDate);
        let at = match values::parse_timestamp(date, self.order, self.today) {
            _ if date.is_empty() => Default::default(),
            Ok(at) => at.unwrap_or_default(),
            Err(e) => {
                fail(F::ConsentDate, e);
                return;
            }
        };
        let source = p.get(rec, F::ConsentSource);
        let source = if source.is_empty() {
            self.consent_source.clone()
        } else {
            values::collapse_ws(source)
        };
        for (channel, granted) in statements.into_iter().flatten() {
            out.push(Consent {
                customer_no: customer_no.to_string(),
                channel,
                granted,
                source: source.clone(),
                at,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Format, Vec<Result<Row, RowError>>) {
        let parser = Parser::new(text.as_bytes(), "t.csv", &TenantImport::default())
            .expect("parses")
            .with_today(Date::from_ymd(2025, 6, 15).expect("date"));
        let format = parser.format().clone();
        (format, parser.collect())
    }

    #[test]
    fn placeholders_are_empty() {
        assert_eq!(clean("  NULL "), "");
        assert_eq!(clean("k.A."), "");
        assert_eq!(clean(" - "), "");
        assert_eq!(clean("\u{feff}Kdnr"), "Kdnr");
        assert_eq!(clean("Null"), "Null");
    }

    #[test]
    fn describe_names_the_format() {
        let (format, rows) = parse("Kundennr;Name;Notiz\n1;Hans Müller;x\n");
        assert_eq!(format.describe(), "utf-8, ';', 3 columns");
        assert_eq!(format.unmapped(), vec!["Notiz".to_string()]);
        assert!(format.has(ImportField::FullName));
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn a_file_of_keys_and_unknown_columns_is_refused_not_imported_as_holders() {
        // A visit export in a dialect nothing maps: before, every row was
        // "ok" and not one visit was stored.
        let text = "KdNr\tFIN\tAufDat\tAufKM\tAufArt\n10002\tWVWZZZ1KZ6W000001\t12.04.22\t29662\tInspektion\n";
        let err = Parser::new(text.as_bytes(), "t.csv", &TenantImport::default())
            .err()
            .expect("refused");
        assert!(matches!(err, FileError::OnlyKeys { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "only the key columns \"KdNr\", \"FIN\" were understood; \"AufDat\", \"AufKM\", \"AufArt\" were not: nothing but which customer holds which vehicle could be imported from this file. Map them under [import.columns] in the dealer policy (e.g. \"AufDat\" = \"visit_date\"), or map them to \"ignore\" to import only the holders"
        );
        // With the customer number alone, it says so.
        let err = Parser::new(
            "KdNr;AufDat\n1;12.04.22\n".as_bytes(),
            "t.csv",
            &TenantImport::default(),
        )
        .err()
        .expect("refused");
        assert!(
            err.to_string()
                .contains("nothing but customer numbers could be imported"),
            "{err}"
        );
        // Mapped, the same file is a visit file.
        let mut policy = TenantImport::default();
        for (h, f) in [
            ("AufDat", ImportField::VisitDate),
            ("AufKM", ImportField::VisitKm),
            ("AufArt", ImportField::VisitKind),
        ] {
            policy.columns.insert(h.into(), f);
        }
        let rows: Vec<Row> = Parser::new(text.as_bytes(), "t.csv", &policy)
            .expect("parses")
            .map(|r| r.expect("row"))
            .collect();
        assert!(rows[0].visit.is_some());
        // Keys alone (a holder file), or unknown columns mapped to ignore: fine.
        for ok in [
            "KdNr;FIN\n1;WVWZZZ1KZ6W000001\n",
            "Kundennr;Nachname;Notiz\n1;Meier;x\n",
        ] {
            assert!(
                Parser::new(ok.as_bytes(), "t.csv", &TenantImport::default()).is_ok(),
                "{ok}"
            );
        }
        let mut ignore = TenantImport::default();
        for h in ["AufDat", "AufKM", "AufArt"] {
            ignore.columns.insert(h.into(), ImportField::Ignore);
        }
        assert!(Parser::new(text.as_bytes(), "t.csv", &ignore).is_ok());
    }

    #[test]
    fn a_person_with_a_company_column_stays_a_person_and_keeps_the_company() {
        // A private customer whose export fills the company column (an
        // employer, a fleet contract) was greeted "Guten Tag" as a company.
        let (_, rows) = parse(
            "Kundennr;Anrede;Vorname;Nachname;Firma\n\
             1;Herr;Hans;Müller;Müller Bau GmbH\n\
             2;;Eva;Schulz;Schulz Transporte\n\
             3;Firma;;;Berg Logistik GmbH\n\
             4;;;;Schmidt KG\n",
        );
        let got: Vec<(bool, Option<String>)> = rows
            .into_iter()
            .map(|r| r.expect("ok").customer.expect("a customer"))
            .map(|c| (c.is_company, c.company))
            .collect();
        assert_eq!(
            got,
            vec![
                (false, Some("Müller Bau GmbH".into())),
                (false, Some("Schulz Transporte".into())),
                (true, Some("Berg Logistik GmbH".into())),
                (true, Some("Schmidt KG".into())),
            ]
        );
    }

    #[test]
    fn several_bad_fields_are_reported_in_one_error() {
        let (_, rows) = parse("Kundennr;E-Mail;PLZ\n7;max@@example;123\n");
        let err = rows[0].as_ref().expect_err("bad row");
        assert_eq!(
            err.to_string(),
            "t.csv:2: email: \"max@@example\" is not an address; also postcode: \"123\" is not a German postcode (5 digits)"
        );
    }

    #[test]
    fn crlf_line_numbers_and_quoted_last_cells() {
        let (_, rows) =
            parse("Kundennr;Nachname\r\n1;\"Meier\"\r\n\r\n2;\"Weiß\r\nvon\"\r\n3;Kurz\r\n");
        let rows: Vec<Row> = rows.into_iter().map(|r| r.expect("ok")).collect();
        let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 4, 6]);
        let names: Vec<&str> = rows
            .iter()
            .filter_map(|r| r.customer.as_ref())
            .map(|c| c.last_name.as_str())
            .collect();
        assert_eq!(names, vec!["Meier", "Weiß von", "Kurz"]);
    }

    #[test]
    fn lines_after_blank_lines_and_unclosed_quotes_are_counted() {
        let (_, rows) =
            parse("Kundennr;Nachname;Ort\n1;Meier;Ulm\n\n\n2;\"Weiss;Ulm\n3;Kurz;Ulm\n");
        let lines: Vec<Result<u64, String>> = rows
            .into_iter()
            .map(|r| r.map(|r| r.line).map_err(|e| e.to_string()))
            .collect();
        assert_eq!(
            lines,
            vec![
                Ok(2),
                Err("t.csv:5: last_name: unclosed quote (\"): the quoted value starting on this line runs on over 1 more line; this line is rejected and the lines after it are read as rows".into()),
                Ok(6)
            ]
        );
    }

    #[test]
    fn well_quoted_records() {
        assert!(well_quoted(b"1;\"a\nb\";c\n", b';'));
        assert!(well_quoted(b"1;\"a \"\"x\"\" b\" ;c\r\n", b';'));
        assert!(well_quoted(b"1;Zoll 17\";c\n", b';'));
        assert!(!well_quoted(b"1;\"a\nb;c\n", b';'));
        assert!(!well_quoted(b"1;\"a\n2;\"b\";c\n", b';'));
    }

    #[test]
    fn vin_only_file_makes_no_vehicles_without_details() {
        let (_, rows) = parse("FIN;Besuchsdatum;km\nWVWZZZ1KZ6W000001;03.02.2025;45.300\n");
        let row = rows[0].as_ref().expect("ok");
        assert_eq!(row.vehicle, None);
        let visit = row.visit.as_ref().expect("visit");
        assert_eq!(visit.km, Some(45300));
        assert_eq!(visit.customer_no, "");
    }

    #[test]
    fn a_response_file_carries_responses_and_nothing_else() {
        use touchpoint_common::report::ResponseKind;
        let (format, rows) = parse(
            "Kundennummer;FIN;Datum;Reaktion;Wert;Bemerkung\n\
             K1;WVWZZZ1KZ6W000001;03.02.2025;Termin;;Inspektion + Reifen\n\
             ;WVWZZZ1KZ6W000002;4.2.25;Angebot angenommen;1.290,00 €;\n",
        );
        assert!(format.has(ImportField::ResponseDate));
        assert!(format.has(ImportField::ResponseValue));
        assert!(format.has(ImportField::ResponseNote));
        let rows: Vec<Row> = rows.into_iter().map(|r| r.expect("ok")).collect();
        assert_eq!(
            rows[0].response,
            Some(ReportedResponse {
                customer_no: "K1".into(),
                vin: "WVWZZZ1KZ6W000001".into(),
                date: Date::from_ymd(2025, 2, 3).expect("date"),
                kind: ResponseKind::Appointment,
                value: None,
                note: "Inspektion + Reifen".into(),
                source: "t.csv:2".into(),
            })
        );
        assert_eq!(rows[0].customer, None);
        assert_eq!(
            rows[0].vehicle, None,
            "a customer number and a VIN make no vehicle here"
        );
        let r = rows[1].response.as_ref().expect("response");
        assert_eq!(
            (r.kind, r.value, r.date),
            (
                ResponseKind::OfferAccepted,
                Some(129_000),
                Date::from_ymd(2025, 2, 4).expect("date")
            )
        );
    }

    #[test]
    fn response_files_in_english_and_their_bad_rows() {
        let (_, rows) = parse(
            "customer no;date;response;amount\n\
             K1;2025-02-03;appointment booked;\n\
             K2;2025-02-30;test drive;12\n\
             K3;;offer accepted;-5\n",
        );
        assert!(rows[0].as_ref().expect("ok").response.is_some());
        let errors: Vec<String> = rows[1..]
            .iter()
            .map(|r| r.as_ref().expect_err("bad").to_string())
            .collect();
        assert_eq!(errors.len(), 2);
        assert!(
            errors[0].starts_with("t.csv:3: response_date: ")
                && errors[0]
                    .contains("; also response_kind: \"test drive\" is not a response kind"),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with(
                "t.csv:4: response_date: missing: a response needs a date; also response_value: "
            ),
            "{errors:?}"
        );
    }

    #[test]
    fn a_rejected_row_says_whom_it_is_about_as_far_as_it_can_be_read() {
        let text = "FIN;Kundennummer;Auftragsdatum\n\
                    WVWZZZ1KZ6W000001;K1;31.02.2025\n\
                    KAPUTT;K1;01.02.2025\n\
                    ;K2;31.02.2025\n\
                    WVWZZZ1KZ6W000001\n\
                    WVWZZZ1KZ6W000001;K1;01.02.2025\n";
        let mut parser = Parser::new(text.as_bytes(), "t.csv", &TenantImport::default())
            .expect("parses")
            .with_today(Date::from_ymd(2025, 6, 15).expect("date"));
        let subject = |vin: &str, customer_no: &str| Subject {
            vin: vin.into(),
            customer_no: customer_no.into(),
        };
        let mut seen = Vec::new();
        while let Some(row) = parser.next() {
            seen.push((row.is_ok(), parser.rejected_subject().cloned()));
        }
        assert_eq!(
            seen,
            vec![
                // A bad date: its vehicle and customer are read.
                (false, Some(subject("WVWZZZ1KZ6W000001", "K1"))),
                // A VIN that is not one names no vehicle.
                (false, None),
                // No VIN: the customer is read.
                (false, Some(subject("", "K2"))),
                // Cut short: nothing is read.
                (false, None),
                (true, None),
            ]
        );
    }

    #[test]
    fn a_response_file_with_other_records_is_refused_as_ambiguous() {
        let err = Parser::new(
            "Kundennummer;Nachname;Reaktion;Datum;Auftragsdatum\nK1;Berg;Termin;01.02.2025;\n"
                .as_bytes(),
            "t.csv",
            &TenantImport::default(),
        )
        .err()
        .expect("refused");
        assert_eq!(
            err.to_string(),
            "a response file (column \"Reaktion\") cannot also carry \"Nachname\", \"Auftragsdatum\": import customers, vehicles, consents and visits from their own files, or map those columns to \"ignore\" under [import.columns] in the dealer policy"
        );
        let err = Parser::new(
            "Kundennummer;Reaktionsdatum\nK1;01.02.2025\n".as_bytes(),
            "t.csv",
            &TenantImport::default(),
        )
        .err()
        .expect("refused");
        assert_eq!(
            err.to_string(),
            "column \"Reaktionsdatum\" belongs in a response file, which needs a column for the kind of response (\"Reaktion\": Termin or Angebot angenommen)"
        );
    }
}

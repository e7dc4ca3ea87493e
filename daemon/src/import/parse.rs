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
//! reader's buffer and one record. A record longer than
//! [`MAX_RECORD_BYTES`] (in practice an unclosed quote swallowing the rest of
//! the file) ends the parse with [`FileError::RecordTooLarge`].
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
//! - a [`ServiceVisit`] when the row has a visit date; it needs a VIN, and
//!   its customer number may be empty in visit files that only carry VINs
//!   (the caller looks the holder up).
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
use touchpoint_common::config::TenantImport;
use touchpoint_common::domain::{
    Channel, Consent, Customer, ImportField, RowError, Salutation, ServiceVisit, Timestamp, Vehicle,
};
use touchpoint_common::Date;

pub use values::DateOrder;
use values::Era;

/// How much of the file is looked at to detect its format.
pub const SNIFF_BYTES: usize = 64 * 1024;
/// The longest record accepted. Real DMS records are a few hundred bytes.
pub const MAX_RECORD_BYTES: u64 = 1 << 20;
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
}

impl Format {
    /// E.g. `windows-1252, ';', 14 columns`.
    pub fn describe(&self) -> String {
        let delimiter = match self.delimiter {
            b'\t' => "tab".to_string(),
            d => format!("'{}'", d as char),
        };
        let n = self.columns.len();
        format!(
            "{}, {}, {} column{}",
            self.encoding,
            delimiter,
            n,
            if n == 1 { "" } else { "s" }
        )
    }

    /// Headers no field is mapped to, as written; a column without a header
    /// is named by its position ("(column 7)").
    pub fn unmapped(&self) -> Vec<String> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.field.is_none())
            .map(|(i, c)| {
                if c.header.is_empty() {
                    format!("(column {})", i + 1)
                } else {
                    c.header.clone()
                }
            })
            .collect()
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
    #[error("import option {option} = {value:?} is not supported; use {expected}")]
    BadOption {
        option: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("read error: {0}")]
    Io(#[from] io::Error),
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
            write!(f, "{h:?}")?;
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
    pub customer: Option<Customer>,
    pub vehicle: Option<Vehicle>,
    pub consents: Vec<Consent>,
    pub visit: Option<ServiceVisit>,
}

type Prefixed<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

enum Inner<R> {
    /// UTF-8 goes to the csv reader as it is; invalid bytes are handled per record.
    Plain(Prefixed<R>),
    Decoded(DecodeReaderBytes<Prefixed<R>, Vec<u8>>),
}

/// The csv reader's input: the sniff buffer, then the rest of the file,
/// counting the bytes since the start of the current record so a runaway
/// record ends the parse instead of filling memory.
struct Source<R> {
    inner: Inner<R>,
    since_mark: u64,
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
        let n = match &mut self.inner {
            Inner::Plain(r) => r.read(buf)?,
            Inner::Decoded(r) => r.read(buf)?,
        };
        self.since_mark += n as u64;
        // The csv reader reads ahead by up to its buffer size.
        if self.since_mark > MAX_RECORD_BYTES + CSV_BUFFER as u64 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, Oversized));
        }
        Ok(n)
    }
}

const N_FIELDS: usize = ImportField::Ignore as usize + 1;

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
    width: usize,
    has_customer: bool,
    has_vehicle: bool,
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
        Self {
            cols,
            width: columns.len(),
            has_customer,
            has_vehicle,
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
    field: &'static str,
    reason: String,
}

/// Everything a row needs besides the record itself.
struct Rules {
    file: String,
    consent_source: String,
    order: DateOrder,
    today: Date,
    plan: Plan,
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
    finished: bool,
    aborted: Option<FileError>,
    warned_encoding: bool,
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
            .from_reader(Source {
                inner,
                since_mark: 0,
            });

        let mut record = ByteRecord::new();
        if sep_line.is_some() {
            read_raw(&mut csv, &mut record, 1)?;
        }
        // The header is the first record with a name in it.
        let headers = loop {
            csv.get_mut().since_mark = 0;
            let line = csv.position().line();
            if !read_raw(&mut csv, &mut record, line)? {
                return Err(FileError::Empty);
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

        let fields = headers::map_headers(&headers, &opts.columns);
        let has_key = fields
            .iter()
            .any(|f| matches!(f, Some(ImportField::CustomerNo | ImportField::Vin)));
        if !has_key {
            if sniffed.is_none() && headers.len() == 1 {
                let first: String = headers[0].chars().take(60).collect();
                return Err(FileError::NotCsv {
                    reason: format!(
                        "no delimiter (';', ',', tab or '|') and no known column name in the first line {first:?}"
                    ),
                });
            }
            return Err(FileError::NoKeyColumn { headers });
        }
        let columns: Vec<Column> = headers
            .into_iter()
            .zip(fields)
            .map(|(header, field)| Column { header, field })
            .collect();
        let plan = Plan::new(&columns);
        let format = Format {
            encoding: label,
            delimiter,
            columns,
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
            },
            record: Some(record),
            fallback: StringRecord::new(),
            errors: Vec::new(),
            next_line,
            finished: false,
            aborted: None,
            warned_encoding: false,
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

    /// Set when the parse stopped before the end of the file (a read error,
    /// a runaway record). The iterator has yielded one last `RowError` with
    /// field "file" for it; the caller should treat the import as failed.
    pub fn aborted(&self) -> Option<&FileError> {
        self.aborted.as_ref()
    }

    fn abort(&mut self, e: csv::Error) -> RowError {
        self.finished = true;
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
        let row_error = RowError {
            file: self.rules.file.clone(),
            line: self.next_line,
            field: "file".into(),
            reason: error.to_string(),
        };
        self.aborted = Some(error);
        row_error
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
                let out = self.rules.row(&rec, line, &mut self.errors);
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
                let out = self.rules.row(&self.fallback, line, &mut self.errors);
                (out, record)
            }
        }
    }
}

impl<R: Read> Iterator for Parser<R> {
    type Item = Result<Row, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.finished {
            let mut record = self.record.take().unwrap_or_default();
            self.csv.get_mut().since_mark = 0;
            match self.csv.read_byte_record(&mut record) {
                Ok(false) => {
                    self.finished = true;
                    self.record = Some(record);
                }
                Ok(true) => {
                    let line = record
                        .position()
                        .map_or(self.next_line, csv::Position::line);
                    self.next_line = self.csv.position().line();
                    let (out, record) = self.process(record, line);
                    self.record = Some(record);
                    if out.is_some() {
                        return out;
                    }
                }
                Err(e) => return Some(Err(self.abort(e))),
            }
        }
        None
    }
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
    /// None for a row without any value (skipped silently).
    fn row(
        &self,
        rec: &StringRecord,
        line: u64,
        errors: &mut Vec<FieldError>,
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
                field: field.name(),
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

        if p.has_customer && !customer_no.is_empty() {
            row.customer = Some(self.customer(rec, customer_no, &mut fail));
        }

        if !vin_cell.is_empty() && p.has_vehicle {
            if customer_no.is_empty() {
                fail(
                    F::CustomerNo,
                    "missing: a vehicle needs the customer number of its holder".into(),
                );
            }
            let date =
                |f: ImportField, fail: &mut dyn FnMut(ImportField, String)| -> Option<Date> {
                    let v = p.get(rec, f);
                    if v.is_empty() {
                        return None;
                    }
                    values::parse_date(v, self.order, Era::Near, self.today).unwrap_or_else(|e| {
                        fail(f, e);
                        None
                    })
                };
            let km = p.get(rec, F::LastServiceKm);
            row.vehicle = Some(Vehicle {
                vin: vin.clone(),
                customer_no: customer_no.to_string(),
                make: values::collapse_ws(p.get(rec, F::Make)),
                model: values::collapse_ws(p.get(rec, F::Model)),
                first_registration: date(F::FirstRegistration, &mut fail),
                last_service_date: date(F::LastServiceDate, &mut fail),
                last_service_km: if km.is_empty() {
                    None
                } else {
                    values::parse_km(km)
                        .map_err(|e| fail(F::LastServiceKm, e))
                        .ok()
                },
                next_inspection: date(F::NextInspection, &mut fail),
                warranty_end: date(F::WarrantyEnd, &mut fail),
            });
        }

        self.consents(rec, customer_no, &mut row.consents, &mut fail);

        let visit_date = p.get(rec, F::VisitDate);
        let visit_km = p.get(rec, F::VisitKm);
        let visit_kind = p.get(rec, F::VisitKind);
        if !visit_date.is_empty() {
            if vin_cell.is_empty() {
                fail(F::Vin, "missing: a service visit needs a VIN".into());
            }
            let date = values::parse_date(visit_date, self.order, Era::Near, self.today)
                .map_err(|e| fail(F::VisitDate, e))
                .ok()
                .flatten();
            let km = if visit_km.is_empty() {
                None
            } else {
                values::parse_km(visit_km)
                    .map_err(|e| fail(F::VisitKm, e))
                    .ok()
            };
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
                });
            }
        } else if !visit_km.is_empty() || !visit_kind.is_empty() {
            fail(F::VisitDate, "missing: a service visit needs a date".into());
        }

        if errors.is_empty() {
            return Some(Ok(row));
        }
        errors.sort_by_key(|e| e.position);
        let mut reason = errors[0].reason.clone();
        for e in &errors[1..] {
            reason.push_str("; also ");
            reason.push_str(e.field);
            reason.push_str(": ");
            reason.push_str(&e.reason);
        }
        Some(Err(self.error(line, errors[0].field, reason)))
    }

    fn error(&self, line: u64, field: &str, reason: String) -> RowError {
        RowError {
            file: self.file.clone(),
            line,
            field: field.to_string(),
            reason,
        }
    }

    fn customer(
        &self,
        rec: &StringRecord,
        customer_no: &str,
        fail: &mut dyn FnMut(ImportField, String),
    ) -> Customer {
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
        let is_company = get(F::IsCompany);
        let explicit = if is_company.is_empty() {
            None
        } else {
            values::parse_yes_no(is_company)
                .map_err(|e| fail(F::IsCompany, e))
                .ok()
        };

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
        c.is_company =
            explicit.unwrap_or(c.company.is_some() || c.salutation == Salutation::Company);

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

        let email = get(F::Email);
        if !email.is_empty() {
            c.email = values::normalize_email(email)
                .map_err(|e| fail(F::Email, e))
                .ok();
        }
        let phone = get(F::Phone);
        if !phone.is_empty() {
            let country = if c.address.country.is_empty() {
                "DE"
            } else {
                &c.address.country
            };
            c.phone = values::normalize_phone(phone, country)
                .map_err(|e| fail(F::Phone, e))
                .ok();
        }
        let birth = get(F::BirthDate);
        if !birth.is_empty() {
            c.birth_date = values::parse_date(birth, self.order, Era::Past, self.today)
                .map_err(|e| fail(F::BirthDate, e))
                .ok()
                .flatten();
        }
        let language = get(F::Language);
        if !language.is_empty() {
            if let Ok(l) = values::normalize_language(language).map_err(|e| fail(F::Language, e)) {
                c.language = l;
            }
        }
        c
    }

    fn consents(
        &self,
        rec: &StringRecord,
        customer_no: &str,
        out: &mut Vec<Consent>,
        fail: &mut dyn FnMut(ImportField, String),
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
            let v = p.get(rec, field);
            if !v.is_empty() {
                statements[i] = values::parse_yes_no(v)
                    .map(|g| (channel, g))
                    .map_err(|e| fail(field, e))
                    .ok();
            }
        }
        let channel = p.get(rec, F::ConsentChannel);
        let granted = p.get(rec, F::ConsentGranted);
        let mut any = statements.iter().any(Option::is_some);
        if !channel.is_empty() || !granted.is_empty() {
            any = true;
            let channel = if channel.is_empty() {
                fail(
                    F::ConsentChannel,
                    "missing: a consent statement needs a channel".into(),
                );
                None
            } else {
                values::parse_channel(channel)
                    .map_err(|e| fail(F::ConsentChannel, e))
                    .ok()
            };
            let granted = if granted.is_empty() {
                fail(
                    F::ConsentGranted,
                    "missing: a consent statement needs yes or no".into(),
                );
                None
            } else {
                values::parse_yes_no(granted)
                    .map_err(|e| fail(F::ConsentGranted, e))
                    .ok()
            };
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
        let date = p.get(rec, F::ConsentDate);
        let at = if date.is_empty() {
            Timestamp::default()
        } else {
            values::parse_timestamp(date, self.order, self.today)
                .map_err(|e| fail(F::ConsentDate, e))
                .ok()
                .flatten()
                .unwrap_or_default()
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
    fn vin_only_file_makes_no_vehicles_without_details() {
        let (_, rows) = parse("FIN;Besuchsdatum;km\nWVWZZZ1KZ6W000001;03.02.2025;45.300\n");
        let row = rows[0].as_ref().expect("ok");
        assert_eq!(row.vehicle, None);
        let visit = row.visit.as_ref().expect("visit");
        assert_eq!(visit.km, Some(45300));
        assert_eq!(visit.customer_no, "");
    }
}

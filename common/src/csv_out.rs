//! The one writer of every CSV file Touchpoint hands to people: the letter
//! batches' manifests (lettershop) and the call lists (call centre) the
//! daemon writes, and the ledger `touchpoint costs --csv` prints. People
//! open these in a spreadsheet, and their text cells come from dealers'
//! exports, which anyone who can get a name into a dealer's system can fill.
//! In memory only (no I/O): the caller writes the bytes where they go.
//!
//! Text cells ([`Cell::Text`]) are made harmless for a spreadsheet
//! ([`text`]):
//! - control characters (tab, CR, LF, …) and line or paragraph separators
//!   become spaces, so a row is one line for the person and for
//!   line-oriented tools, and leading blanks are trimmed (a spreadsheet may
//!   drop them and then run what follows);
//! - a cell that then begins with `=`, `+`, `-` or `@` (or their full-width
//!   forms, which some spreadsheets take the same way) is led by `'`, so it
//!   is shown as the text it is, unless it is simply a number (`-5`,
//!   `+4989123456`), which no spreadsheet runs;
//! - every text cell that is not a number is quoted, so a `;` in it cannot
//!   split it for a spreadsheet that reads the file with semicolons (German
//!   Excel), which would put what follows the `;` at the start of a cell of
//!   its own.
//!
//! Numbers ([`Cell::Int`]) are written as they are; the header (our own
//! column names) is written unquoted, as before.

use std::borrow::Cow;

/// One cell of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell<'a> {
    /// Text from anywhere, made harmless by [`text`].
    Text(&'a str),
    /// A number we computed (an id, a count, cents).
    Int(i128),
}

impl<'a> From<&'a str> for Cell<'a> {
    fn from(s: &'a str) -> Self {
        Cell::Text(s)
    }
}

impl<'a> From<&'a String> for Cell<'a> {
    fn from(s: &'a String) -> Self {
        Cell::Text(s)
    }
}

macro_rules! int_cell {
    ($($t:ty),*) => {$(
        impl From<$t> for Cell<'_> {
            fn from(n: $t) -> Self {
                Cell::Int(i128::from(n))
            }
        }
    )*};
}
int_cell!(u32, u64, i64);

/// A CSV file being written in memory: a header, then rows.
pub struct CsvOut {
    w: csv::Writer<Vec<u8>>,
}

impl CsvOut {
    /// Starts a file with the given column names, with room for about
    /// `bytes` bytes.
    pub fn new(header: &[&str], bytes: usize) -> Result<Self, csv::Error> {
        let mut head = csv::WriterBuilder::new()
            .quote_style(csv::QuoteStyle::Necessary)
            .from_writer(Vec::with_capacity(bytes));
        head.write_record(header)?;
        let buf = head.into_inner().map_err(|e| e.into_error())?;
        // Every field that is not a number is quoted: text cells, which is
        // what matters, and nothing a reader would not expect.
        let w = csv::WriterBuilder::new()
            .quote_style(csv::QuoteStyle::NonNumeric)
            .from_writer(buf);
        Ok(Self { w })
    }

    pub fn row(&mut self, cells: &[Cell]) -> Result<(), csv::Error> {
        let fields = cells.iter().map(|c| match c {
            Cell::Text(s) => text(s),
            Cell::Int(n) => Cow::Owned(n.to_string()),
        });
        self.w.write_record(fields.map(|f| f.into_owned()))
    }

    /// The file's bytes.
    pub fn finish(self) -> Result<Vec<u8>, csv::Error> {
        self.w.into_inner().map_err(|e| e.into_error().into())
    }
}

/// Characters a spreadsheet may start a formula with.
const FORMULA_START: [char; 8] = ['=', '+', '-', '@', '＝', '＋', '－', '＠'];

/// A text cell as no spreadsheet will run it; see the module docs.
pub fn text(s: &str) -> Cow<'_, str> {
    let flat = |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}';
    let t: Cow<str> = if s.contains(flat) {
        let one_line: String = s.chars().map(|c| if flat(c) { ' ' } else { c }).collect();
        Cow::Owned(one_line.trim().to_string())
    } else {
        Cow::Borrowed(s.trim())
    };
    if t.starts_with(FORMULA_START) && !is_plain_number(&t) {
        Cow::Owned(format!("'{t}"))
    } else {
        t
    }
}

/// `-5`, `+4989123456`, `3.50`, `3,50`: a sign, digits and at most one
/// decimal point or comma between digits.
fn is_plain_number(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    let mut parts = digits.splitn(2, ['.', ',']);
    let whole = parts.next().unwrap_or_default();
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && parts.next().is_none_or(all_digits)
}

#[cfg(test)]
mod tests;

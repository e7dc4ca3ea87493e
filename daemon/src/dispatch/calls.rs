//! Call-centre task lists and the outcomes that come back.
//!
//! A list is a CSV file per tenant, day and sequence number,
//! `<dir>/<tenant>/calls-<tenant>-<YYYY-MM-DD>-<seq:02>.csv`, written whole
//! or not at all into the tenant's folder, never through a link and never
//! over a list that is there (see [`crate::files`]). Its last three columns,
//! `outcome`, `minutes` and `note`, are left empty for the call centre; the
//! file it sends back is read by [`parse_outcomes`], which finds its columns
//! by name (so added, removed or reordered columns do no harm), takes comma,
//! semicolon or tab as separator (a list saved again by a German
//! spreadsheet has semicolons) and UTF-8 or Windows-1252. The list is
//! written by [`touchpoint_common::csv_out`], which keeps names and notes from running
//! as spreadsheet formulas.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use touchpoint_common::{limits, Date, TenantId, TenantIdError};

use crate::files::{Dir, FilesError, Replace};
use touchpoint_common::csv_out::{Cell, CsvOut};

/// One call to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallTask {
    /// Outbox message id.
    pub message: u64,
    pub customer_no: String,
    pub name: String,
    pub phone: String,
    /// Service id (`service_due`).
    pub service: String,
    /// Service name as people say it ("Inspektion").
    pub service_name: String,
    /// What the call is about, on one line.
    pub occasions: String,
    pub due: Date,
    /// The dealer the call is made for.
    pub dealer: String,
}

/// How a call went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Reached,
    Appointment,
    Declined,
    NotReached,
    WrongNumber,
}

impl Outcome {
    /// Reads an outcome as a call centre writes it, in English or German,
    /// in any case, with `_` or `-` for spaces: "Termin", "nicht erreicht",
    /// "WRONG_NUMBER".
    pub fn parse(s: &str) -> Option<Self> {
        let words: Vec<String> = s
            .split(|c: char| c.is_whitespace() || c == '_' || c == '-')
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        Some(match words.join(" ").as_str() {
            "reached" | "erreicht" => Outcome::Reached,
            "appointment" | "termin" => Outcome::Appointment,
            "declined" | "abgelehnt" => Outcome::Declined,
            "not reached" | "nicht erreicht" => Outcome::NotReached,
            "wrong number" | "falsche nummer" => Outcome::WrongNumber,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Reached => "reached",
            Outcome::Appointment => "appointment",
            Outcome::Declined => "declined",
            Outcome::NotReached => "not_reached",
            Outcome::WrongNumber => "wrong_number",
        }
    }
}

/// One reported call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallOutcome {
    /// Line of the row in the file.
    pub line: u64,
    pub tenant: TenantId,
    pub message: u64,
    pub outcome: Outcome,
    /// Minutes the call centre bills for the call.
    pub minutes: Option<u32>,
    pub note: String,
}

/// A row of an outcome file that could not be taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutcomeError {
    pub file: String,
    pub line: u64,
    /// Column name, empty for a problem of the whole row.
    pub field: String,
    pub message: String,
}

impl fmt::Display for OutcomeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CallsError {
    #[error(transparent)]
    Files(#[from] FilesError),
    #[error("task list: {0}")]
    Csv(#[from] csv::Error),
}

const COLUMNS: [&str; 12] = [
    "task_id",
    "customer_no",
    "name",
    "phone",
    "service",
    "service_name",
    "occasions",
    "due",
    "dealer",
    "outcome",
    "minutes",
    "note",
];

/// Name of a task list in the tenant's folder.
pub fn tasks_name(tenant: &TenantId, day: Date, seq: u32) -> String {
    format!("calls-{tenant}-{day}-{seq:02}.csv")
}

/// Path of a task list.
pub fn tasks_path(dir: &Path, tenant: &TenantId, day: Date, seq: u32) -> PathBuf {
    dir.join(tenant.as_str()).join(tasks_name(tenant, day, seq))
}

/// The tenant's folder under the call lists' folder `dir`, made if
/// missing; an error if it (or `dir`) is not a real folder.
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

/// The task id of a message: `<tenant>.<message>`.
pub fn task_id(tenant: &TenantId, message: u64) -> String {
    format!("{tenant}.{message}")
}

/// Writes a task list into the tenant's folder under `dir`; an existing
/// list is never replaced (the call centre may have fetched it already).
pub fn write_tasks(
    dir: &Path,
    tenant: &TenantId,
    day: Date,
    seq: u32,
    tasks: &[CallTask],
) -> Result<PathBuf, CallsError> {
    write_tasks_in(&tenant_folder(dir, tenant)?, tenant, day, seq, tasks)
}

/// [`write_tasks`] into the tenant's folder `out`, already open.
pub fn write_tasks_in(
    out: &Dir,
    tenant: &TenantId,
    day: Date,
    seq: u32,
    tasks: &[CallTask],
) -> Result<PathBuf, CallsError> {
    let mut w = CsvOut::new(&COLUMNS, 64 + tasks.len() * 160)?;
    for t in tasks {
        w.row(&[
            Cell::from(task_id(tenant, t.message).as_str()),
            Cell::from(&t.customer_no),
            Cell::from(&t.name),
            Cell::from(&t.phone),
            Cell::from(&t.service),
            Cell::from(&t.service_name),
            Cell::from(&t.occasions),
            Cell::from(t.due.to_string().as_str()),
            Cell::from(&t.dealer),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
        ])?;
    }
    let bytes = w.finish()?;
    Ok(out.write(tasks_name(tenant, day, seq), &[&bytes], Replace::No)?)
}

/// Reads an outcome file the call centre sent back. Rows with an empty
/// `outcome` (calls not made yet) are skipped; every row that cannot be
/// taken is reported with file, line and column, and the good rows are kept.
pub fn parse_outcomes(file_name: &str, bytes: &[u8]) -> (Vec<CallOutcome>, Vec<OutcomeError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    // The file is outside text: a message quoting it is one short line
    // whatever it quotes (each quote is cut shorter still: `echo`).
    let err = |line: u64, field: &str, message: String| OutcomeError {
        file: file_name.to_string(),
        line,
        field: field.to_string(),
        message: limits::outside_owned(message, limits::OUTSIDE_CHARS),
    };

    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(_) => {
            encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0
        }
    };
    let header_line = text.lines().next().unwrap_or_default();
    let delimiter = [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|&d| header_line.bytes().filter(|&b| b == d).count())
        .unwrap_or(b',');
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(text.as_bytes());

    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_lowercase()).collect(),
        Err(e) => {
            errors.push(err(1, "", format!("cannot read the header: {e}")));
            return (out, errors);
        }
    };
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(c_task), Some(c_outcome)) = (col("task_id"), col("outcome")) else {
        for name in ["task_id", "outcome"] {
            if col(name).is_none() {
                errors.push(err(
                    1,
                    name,
                    format!(
                        "the header has no {name} column (found: {})",
                        echo(&headers.join(", "))
                    ),
                ));
            }
        }
        return (out, errors);
    };
    let (c_minutes, c_note) = (col("minutes"), col("note"));

    let mut seen: HashMap<(TenantId, u64), u64> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(err(line, "", e.to_string()));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let field = |c: Option<usize>| c.and_then(|c| record.get(c)).unwrap_or("").trim();
        let (task, outcome_text) = (field(Some(c_task)), field(Some(c_outcome)));
        let (minutes_text, note) = (field(c_minutes), field(c_note));
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if outcome_text.is_empty() {
            if !minutes_text.is_empty() || !note.is_empty() {
                errors.push(err(
                    line,
                    "outcome",
                    "missing, but minutes or a note are given".into(),
                ));
            }
            continue;
        }
        let before = errors.len();
        let id = match parse_task_id(task) {
            Ok(id) => Some(id),
            Err(m) => {
                errors.push(err(line, "task_id", m));
                None
            }
        };
        let outcome = Outcome::parse(outcome_text);
        if outcome.is_none() {
            errors.push(err(
                line,
                "outcome",
                format!(
                    "{:?} is not an outcome; write one of erreicht, termin, abgelehnt, \
                     nicht erreicht, falsche nummer (or reached, appointment, declined, not reached, \
                     wrong number)",
                    echo(outcome_text)
                ),
            ));
        }
        let minutes = if minutes_text.is_empty() {
            None
        } else {
            match minutes_text.parse::<u32>() {
                Ok(m) => Some(m),
                Err(_) => {
                    errors.push(err(
                        line,
                        "minutes",
                        format!("{:?} is not a whole number of minutes", echo(minutes_text)),
                    ));
                    None
                }
            }
        };
        let (Some((tenant, message)), Some(outcome)) = (id, outcome) else {
            continue;
        };
        if errors.len() != before {
            continue;
        }
        if let Some(first) = seen.get(&(tenant.clone(), message)) {
            errors.push(err(
                line,
                "task_id",
                format!(
                    "{} was reported already on line {first}; this row is ignored",
                    echo(task)
                ),
            ));
            continue;
        }
        seen.insert((tenant.clone(), message), line);
        out.push(CallOutcome {
            line,
            tenant,
            message,
            outcome,
            minutes,
            // Stored in the message's history and why.
            note: limits::outside(note, limits::OUTSIDE_CHARS).into_owned(),
        });
    }
    (out, errors)
}

/// A value of the file quoted back in an error.
fn echo(text: &str) -> std::borrow::Cow<'_, str> {
    limits::outside(text, limits::ECHO_CHARS)
}

fn parse_task_id(s: &str) -> Result<(TenantId, u64), String> {
    if s.is_empty() {
        return Err("missing".into());
    }
    let Some((tenant, message)) = s.rsplit_once('.') else {
        return Err(format!(
            "{:?} is not a task id (<tenant>.<message>)",
            echo(s)
        ));
    };
    let tenant = TenantId::new(tenant).map_err(|e| match e {
        // It quotes the whole id, however long.
        TenantIdError::TooLong(_) => format!("{:?}: the tenant id is too long", echo(s)),
        e => format!("{:?}: {e}", echo(s)),
    })?;
    let message = message
        .parse::<u64>()
        .map_err(|_| format!("{:?}: {:?} is not a message number", echo(s), echo(message)))?;
    Ok((tenant, message))
}

#[cfg(test)]
mod tests;

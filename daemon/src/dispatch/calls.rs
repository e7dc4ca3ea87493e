//! Call-centre task lists and the outcomes that come back.
//!
//! A list is a CSV file per tenant, day and sequence number,
//! `<dir>/<tenant>/calls-<tenant>-<YYYY-MM-DD>-<seq:02>.csv`, written whole
//! or not at all (temporary file, sync, rename). Its last three columns,
//! `outcome`, `minutes` and `note`, are left empty for the call centre; the
//! file it sends back is read by [`parse_outcomes`], which finds its columns
//! by name (so added, removed or reordered columns do no harm), takes comma,
//! semicolon or tab as separator (a list saved again by a German
//! spreadsheet has semicolons) and UTF-8 or Windows-1252. The list is
//! written by [`super::csv_out`], which keeps names and notes from running
//! as spreadsheet formulas.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use touchpoint_common::{Date, TenantId};

use super::csv_out::{Cell, CsvOut};
use super::letters::write_new_file;

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
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
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

/// Path of a task list.
pub fn tasks_path(dir: &Path, tenant: &TenantId, day: Date, seq: u32) -> PathBuf {
    dir.join(tenant.as_str())
        .join(format!("calls-{tenant}-{day}-{seq:02}.csv"))
}

/// The task id of a message: `<tenant>.<message>`.
pub fn task_id(tenant: &TenantId, message: u64) -> String {
    format!("{tenant}.{message}")
}

/// Writes a task list; an existing list is never replaced (the call centre
/// may have fetched it already).
pub fn write_tasks(
    dir: &Path,
    tenant: &TenantId,
    day: Date,
    seq: u32,
    tasks: &[CallTask],
) -> Result<PathBuf, CallsError> {
    let path = tasks_path(dir, tenant, day, seq);
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
    write_new_file(&path, &bytes).map_err(|source| CallsError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Reads an outcome file the call centre sent back. Rows with an empty
/// `outcome` (calls not made yet) are skipped; every row that cannot be
/// taken is reported with file, line and column, and the good rows are kept.
pub fn parse_outcomes(file_name: &str, bytes: &[u8]) -> (Vec<CallOutcome>, Vec<OutcomeError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let err = |line: u64, field: &str, message: String| OutcomeError {
        file: file_name.to_string(),
        line,
        field: field.to_string(),
        message,
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
                        headers.join(", ")
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
                    "{outcome_text:?} is not an outcome; write one of erreicht, termin, abgelehnt, \
                     nicht erreicht, falsche nummer (or reached, appointment, declined, not reached, \
                     wrong number)"
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
                        format!("{minutes_text:?} is not a whole number of minutes"),
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
                format!("{task} was reported already on line {first}; this row is ignored"),
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
            note: note.to_string(),
        });
    }
    (out, errors)
}

fn parse_task_id(s: &str) -> Result<(TenantId, u64), String> {
    if s.is_empty() {
        return Err("missing".into());
    }
    let Some((tenant, message)) = s.rsplit_once('.') else {
        return Err(format!("{s:?} is not a task id (<tenant>.<message>)"));
    };
    let tenant = TenantId::new(tenant).map_err(|e| format!("{s:?}: {e}"))?;
    let message = message
        .parse::<u64>()
        .map_err(|_| format!("{s:?}: {message:?} is not a message number"))?;
    Ok((tenant, message))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId::new("d001").unwrap()
    }

    fn day() -> Date {
        Date::from_ymd(2026, 11, 23).unwrap()
    }

    fn task(message: u64, name: &str) -> CallTask {
        CallTask {
            message,
            customer_no: format!("K{message}"),
            name: name.into(),
            phone: "+49 5361 12345".into(),
            service: "service_due".into(),
            service_name: "Inspektion".into(),
            occasions: "Inspektion Aurora fällig am 15.12.2026; HU fällig".into(),
            due: Date::from_ymd(2026, 12, 15).unwrap(),
            dealer: "Autohaus Müller".into(),
        }
    }

    #[test]
    fn writes_the_list_with_empty_columns_for_the_call_centre() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_tasks(
            dir.path(),
            &tenant(),
            day(),
            2,
            &[task(17, "Jürgen Weiß"), task(18, "=HYPERLINK(\"x\")")],
        )
        .unwrap();
        assert_eq!(path, dir.path().join("d001/calls-d001-2026-11-23-02.csv"));
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "task_id,customer_no,name,phone,service,service_name,occasions,due,dealer,outcome,minutes,note"
        );
        // Text quoted (a spreadsheet reading `;` must not split the
        // occasions), formulas led by `'`.
        assert_eq!(
            lines.next().unwrap(),
            "\"d001.17\",\"K17\",\"Jürgen Weiß\",\"'+49 5361 12345\",\"service_due\",\"Inspektion\",\
             \"Inspektion Aurora fällig am 15.12.2026; HU fällig\",\"2026-12-15\",\"Autohaus Müller\",\"\",\"\",\"\""
        );
        assert!(lines
            .next()
            .unwrap()
            .contains(",\"'=HYPERLINK(\"\"x\"\")\","));
        assert!(lines.next().is_none());
        // Never replaced, and no temp file left.
        assert!(matches!(
            write_tasks(dir.path(), &tenant(), day(), 2, &[]),
            Err(CallsError::Io { .. })
        ));
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn the_written_list_filled_in_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_tasks(
            dir.path(),
            &tenant(),
            day(),
            1,
            &[task(1, "A"), task(2, "B"), task(3, "C")],
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let filled: String = text
            .lines()
            .map(|l| {
                if l.starts_with("\"d001.1\",") {
                    format!(
                        "{}\n",
                        l.replace(",\"\",\"\",\"\"", ",Termin,4,Termin am 3.12. um 9 Uhr")
                    )
                } else if l.starts_with("\"d001.3\",") {
                    format!("{}\n", l.replace(",\"\",\"\",\"\"", ",nicht erreicht,1,"))
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        let (out, errors) = parse_outcomes("calls-d001-2026-11-23-01.csv", filled.as_bytes());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            out,
            [
                CallOutcome {
                    line: 2,
                    tenant: tenant(),
                    message: 1,
                    outcome: Outcome::Appointment,
                    minutes: Some(4),
                    note: "Termin am 3.12. um 9 Uhr".into(),
                },
                CallOutcome {
                    line: 4,
                    tenant: tenant(),
                    message: 3,
                    outcome: Outcome::NotReached,
                    minutes: Some(1),
                    note: String::new(),
                },
            ]
        );
    }

    #[test]
    fn outcome_words_in_english_and_german() {
        for (s, o) in [
            ("erreicht", Outcome::Reached),
            ("Reached", Outcome::Reached),
            ("TERMIN", Outcome::Appointment),
            ("appointment", Outcome::Appointment),
            ("abgelehnt", Outcome::Declined),
            ("Declined", Outcome::Declined),
            ("Nicht  erreicht", Outcome::NotReached),
            ("not_reached", Outcome::NotReached),
            ("not-reached", Outcome::NotReached),
            ("Falsche Nummer", Outcome::WrongNumber),
            ("WRONG_NUMBER", Outcome::WrongNumber),
        ] {
            assert_eq!(Outcome::parse(s), Some(o), "{s}");
        }
        for s in ["", "vielleicht", "nicht", "reachedx"] {
            assert_eq!(Outcome::parse(s), None, "{s}");
        }
        for o in [
            Outcome::Reached,
            Outcome::Appointment,
            Outcome::Declined,
            Outcome::NotReached,
            Outcome::WrongNumber,
        ] {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
    }

    #[test]
    fn broken_rows_are_reported_and_good_rows_kept() {
        let file = "\
task_id,name,outcome,minutes,note
d001.1,A,erreicht,3,ok
d001.2,B,vielleicht,2,
d001.3,C,termin,zwei,
d001,D,termin,1,
D001.5,E,abgelehnt,,
d001.6,F,,,
d001.7,G,,5,
d001.8,\"H, mit Komma\",Falsche Nummer,,Nummer vergeben
d001.1,A,erreicht,3,doppelt
";
        let (out, errors) = parse_outcomes("back.csv", file.as_bytes());
        let got: Vec<(u64, Outcome)> = out.iter().map(|o| (o.message, o.outcome)).collect();
        assert_eq!(got, [(1, Outcome::Reached), (8, Outcome::WrongNumber)]);
        assert_eq!(out[1].note, "Nummer vergeben");
        assert_eq!(out[1].minutes, None);
        let where_: Vec<(u64, &str)> = errors.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(
            where_,
            [
                (3, "outcome"),
                (4, "minutes"),
                (5, "task_id"),
                (6, "task_id"),
                (8, "outcome"),
                (10, "task_id"),
            ]
        );
        assert!(errors.iter().all(|e| e.file == "back.csv"));
        assert_eq!(
            errors[1].to_string(),
            "back.csv:4: minutes: \"zwei\" is not a whole number of minutes"
        );
        assert!(errors[5].message.contains("line 2"), "{}", errors[5]);
    }

    #[test]
    fn a_list_saved_by_a_german_spreadsheet_is_read() {
        // Semicolons, Windows-1252, columns reordered, CRLF.
        let mut bytes = b"Note;Outcome;Task_ID;Minutes\r\n".to_vec();
        bytes.extend_from_slice(b"R\xfcckruf gew\xfcnscht;Erreicht;d001.9;2\r\n");
        let (out, errors) = parse_outcomes("x.csv", &bytes);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].note, "Rückruf gewünscht");
        assert_eq!(out[0].minutes, Some(2));
        // UTF-8 with BOM.
        let (out, errors) = parse_outcomes(
            "y.csv",
            "\u{feff}task_id,outcome\nd001.4,abgelehnt\n".as_bytes(),
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(out[0].outcome, Outcome::Declined);
    }

    #[test]
    fn a_file_without_the_needed_columns_is_one_error() {
        let (out, errors) = parse_outcomes("z.csv", b"id,result\nd001.1,erreicht\n");
        assert!(out.is_empty());
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["task_id", "outcome"]);
        assert!(errors.iter().all(|e| e.line == 1));
    }
}

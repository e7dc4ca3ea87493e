#![allow(clippy::unwrap_used)]

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
        Err(CallsError::Files(crate::files::FilesError::Exists { .. }))
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

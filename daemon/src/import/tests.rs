//! A re-exported visit or response file through the real parser and store:
//! what it corrects away is reported, and a rejected row never removes
//! anything.

use std::sync::Arc;

use touchpoint_common::domain::{Corrected, Corrections, ImportReport};
use touchpoint_common::Date;

use super::{import_file, ImportOptions};
use crate::store::{Stores, TenantStore};

const VISITS: &str = "FIN;Kundennummer;Auftragsdatum;Auftragsart\n";
const V1: &str = "WVWZZZ1KZ6W000001";
const V2: &str = "WVWZZZ1KZ6W000002";

fn d(y: i32, m: u32, day: u32) -> Date {
    Date::from_ymd(y, m, day).expect("valid test date")
}

struct Room {
    dir: tempfile::TempDir,
    _stores: Stores,
    store: Arc<TenantStore>,
}

impl Room {
    /// A tenant with customers K1 (vehicle V1) and K2 (V2), and the first
    /// export of `werkstatt.csv`: V1 on 8 and 12 January, V2 on 1 January.
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (stores, store) = crate::testkit::one_tenant(&dir.path().join("state"));
        let room = Self {
            dir,
            _stores: stores,
            store,
        };
        room.import(
            "kunden.csv",
            &format!("Kundennummer;Nachname;FIN\nK1;Berg;{V1}\nK2;Kurz;{V2}\n"),
        );
        let first = room.import(
            "werkstatt.csv",
            &format!(
                "{VISITS}{V2};K2;01.01.2027;Inspektion\n\
                 {V1};K1;08.01.2027;Inspektion\n\
                 {V1};K1;12.01.2027;Inspektion\n"
            ),
        );
        assert_eq!(first.corrections.describe(), Vec::<String>::new());
        room
    }

    fn import(&self, name: &str, text: &str) -> ImportReport {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write export");
        let report =
            import_file(&self.store, &path, name, &ImportOptions::default()).expect("import");
        assert!(report.is_committed(), "{:?}", report.status);
        report
    }

    fn visit_days(&self, vin: &str) -> Vec<Date> {
        self.store
            .visits_of(vin)
            .expect("visits")
            .into_iter()
            .map(|v| v.date)
            .collect()
    }
}

#[test]
fn a_clean_re_export_without_a_row_removes_it_and_reports_the_count() {
    let room = Room::new();
    // V1's 8 January was deleted in the dealer's system.
    let r = room.import(
        "werkstatt.csv",
        &format!(
            "{VISITS}{V2};K2;01.01.2027;Inspektion\n\
             {V1};K1;12.01.2027;Inspektion\n"
        ),
    );
    assert_eq!(room.visit_days(V1), vec![d(2027, 1, 12)]);
    assert_eq!(
        r.corrections,
        Corrections {
            visits: Corrected {
                span: Some((d(2027, 1, 1), d(2027, 1, 12))),
                removed: 1,
                kept: 0,
            },
            responses: Corrected::default(),
            unreadable: 0,
        }
    );
    assert_eq!(
        r.corrections.describe(),
        vec!["removed 1 visit no longer in the export (vehicles it names, 2027-01-01…2027-01-12)"]
    );
    // As stored in the import history.
    let stored = room.store.imports(1).expect("imports");
    assert_eq!(stored[0].corrections, r.corrections);
}

#[test]
fn a_row_rejected_for_its_date_keeps_the_visit_it_may_carry_and_says_why() {
    let room = Room::new();
    // The dealer's system wrote V1's 8 January with a day that does not
    // exist: the row is rejected, and the visit stays.
    let r = room.import(
        "werkstatt.csv",
        &format!(
            "{VISITS}{V2};K2;01.01.2027;Inspektion\n\
             {V1};K1;31.02.2027;Inspektion\n\
             {V1};K1;12.01.2027;Inspektion\n"
        ),
    );
    assert_eq!(r.rows_rejected, 1, "{:?}", r.errors);
    assert_eq!(r.errors[0].field, "visit_date");
    assert_eq!(room.visit_days(V1), vec![d(2027, 1, 8), d(2027, 1, 12)]);
    assert_eq!(
        (r.corrections.visits.removed, r.corrections.visits.kept),
        (0, 1)
    );
    assert_eq!(
        r.corrections.describe(),
        vec!["kept 1 visit no longer in the export: a rejected row may carry it (correct the file and import it again)"]
    );
    // The rejected row spares its vehicle only: V2's visit a corrected
    // export no longer has is still corrected away.
    let r = room.import(
        "werkstatt.csv",
        &format!(
            "{VISITS}{V2};K2;31.12.2026;Inspektion\n\
             {V1};K1;31.02.2027;Inspektion\n\
             {V1};K1;12.01.2027;Inspektion\n"
        ),
    );
    assert_eq!(room.visit_days(V2), vec![d(2026, 12, 31)]);
    assert_eq!(room.visit_days(V1), vec![d(2027, 1, 8), d(2027, 1, 12)]);
    assert_eq!(
        (r.corrections.visits.removed, r.corrections.visits.kept),
        (1, 1)
    );
}

#[test]
fn a_rejected_row_whose_vehicle_cannot_be_read_makes_the_file_correct_nothing() {
    let room = Room::new();
    // V1's 8 January is gone from the export, and a row's VIN is not one:
    // that row could be V1's 8 January.
    let r = room.import(
        "werkstatt.csv",
        &format!(
            "{VISITS}{V2};K2;01.01.2027;Inspektion\n\
             WVW-KAPUTT;K1;08.01.2027;Inspektion\n\
             {V1};K1;12.01.2027;Inspektion\n"
        ),
    );
    assert_eq!(r.rows_rejected, 1, "{:?}", r.errors);
    assert_eq!(r.errors[0].field, "vin");
    assert_eq!(room.visit_days(V1), vec![d(2027, 1, 8), d(2027, 1, 12)]);
    assert_eq!(
        (
            r.corrections.visits.removed,
            r.corrections.visits.kept,
            r.corrections.unreadable
        ),
        (0, 1, 1)
    );
    assert_eq!(
        r.corrections.describe(),
        vec![
            "no corrections: 1 row was rejected whose vehicle or customer could not be read",
            "kept 1 visit no longer in the export: a rejected row may carry it (correct the file and import it again)",
        ]
    );
    // A row cut short cannot be read either.
    let r = room.import(
        "werkstatt.csv",
        &format!(
            "{VISITS}{V2};K2;01.01.2027;Inspektion\n\
             {V1};K1\n\
             {V1};K1;12.01.2027;Inspektion\n"
        ),
    );
    assert_eq!(r.rows_rejected, 1, "{:?}", r.errors);
    assert_eq!(room.visit_days(V1), vec![d(2027, 1, 8), d(2027, 1, 12)]);
    assert_eq!(r.corrections.unreadable, 1);
}

#[test]
fn a_response_file_spares_the_customers_of_its_rejected_rows() {
    let room = Room::new();
    let responses = "Kundennummer;Datum;Reaktion;Wert\n";
    room.import(
        "termine.csv",
        &format!(
            "{responses}K1;05.01.2027;Termin;\n\
             K1;09.01.2027;Termin;\n\
             K2;07.01.2027;Termin;\n"
        ),
    );
    // K1's 5 January row now has a value that is not an amount (rejected:
    // K1's 5 January stays), K2's 7 January is gone, and a row names a
    // customer the dealer does not have (rejected, but readable: it spares
    // that customer only).
    let r = room.import(
        "termine.csv",
        &format!(
            "{responses}K1;05.01.2027;Termin;zwölf\n\
             K1;09.01.2027;Termin;\n\
             K2;03.01.2027;Termin;\n\
             K9;06.01.2027;Termin;\n\
             K2;09.01.2027;Termin;\n"
        ),
    );
    assert_eq!(r.rows_rejected, 2, "{:?}", r.errors);
    let mut stored: Vec<(String, Date)> = room
        .store
        .responses()
        .map(|r| r.expect("response"))
        .map(|r| (r.customer_no, r.date))
        .collect();
    stored.sort();
    assert_eq!(
        stored,
        vec![
            ("K1".to_string(), d(2027, 1, 5)),
            ("K1".to_string(), d(2027, 1, 9)),
            ("K2".to_string(), d(2027, 1, 3)),
            ("K2".to_string(), d(2027, 1, 9)),
        ]
    );
    assert_eq!(
        r.corrections.responses,
        Corrected {
            span: Some((d(2027, 1, 3), d(2027, 1, 9))),
            removed: 1,
            kept: 1,
        }
    );
    assert_eq!(
        r.corrections.describe(),
        vec![
            "removed 1 response no longer in the export (customers and vehicles it names, 2027-01-03…2027-01-09)",
            "kept 1 response no longer in the export: a rejected row may carry it (correct the file and import it again)",
        ]
    );
}

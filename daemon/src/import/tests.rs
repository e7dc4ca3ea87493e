//! A re-exported visit or response file through the real parser and store:
//! what it corrects away is reported, and a rejected row never removes
//! anything. Dealer data kept whole: a bad optional field drops that field
//! only, vehicles of unknown holders are parked until the holder arrives,
//! and an older export never overwrites a newer one.

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
    /// A tenant with nothing imported yet.
    fn empty() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (stores, store) = crate::testkit::one_tenant(&dir.path().join("state"));
        Self {
            dir,
            _stores: stores,
            store,
        }
    }

    fn customer(&self, no: &str) -> touchpoint_common::domain::Customer {
        self.store
            .customer(no)
            .expect("read")
            .unwrap_or_else(|| panic!("no customer {no}"))
    }

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
    // K1's 5 January row now has a kind that is not a response (rejected:
    // K1's 5 January stays; a bad value alone would only drop the value), K2's 7 January is gone, and a row names a
    // customer the dealer does not have (rejected, but readable: it spares
    // that customer only).
    let r = room.import(
        "termine.csv",
        &format!(
            "{responses}K1;05.01.2027;Kaffee;\n\
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

const CUSTOMERS: &str =
    "Kundennummer;Nachname;Straße;PLZ;Ort;E-Mail;Geburtsdatum;Einwilligung E-Mail\n";

fn warnings(r: &ImportReport) -> Vec<String> {
    r.warnings.iter().map(ToString::to_string).collect()
}

/// An impossible birth date loses the birth date, not the customer: the
/// name, address and consent are imported, the stored birth date stays,
/// and the report says what was not imported, counted apart.
#[test]
fn a_bad_optional_field_drops_that_field_only_and_is_a_warning() {
    let room = Room::empty();
    room.import(
        "kunden.csv",
        &format!("{CUSTOMERS}K1;Berg;Hauptstr. 1;89073;Ulm;berg@example.de;17.04.1965;ja\n"),
    );
    let r = room.import(
        "kunden2.csv",
        &format!(
            "{CUSTOMERS}K1;Berg;Neue Str. 2;89073;Ulm;berg@example.de;31.02.1990;ja\n\
             K2;Kurz;Weg 3;89075;Ulm;kurz(at)example.de;03.11.1978;ja\n\
             K3;Lang;Gasse 4;89077;Ulm;lang@example.de;01.01.1980;ja\n"
        ),
    );
    assert_eq!(
        (r.rows_total, r.rows_ok, r.rows_warned, r.rows_rejected),
        (3, 1, 2, 0),
        "{:?}",
        r.errors
    );
    assert_eq!(
        warnings(&r),
        vec![
            "kunden2.csv:2: birth_date: \"31.02.1990\" does not exist: February 1990 has 28 days (field not imported)",
            "kunden2.csv:3: email: \"kurz(at)example.de\" is not an address (field not imported)",
        ]
    );
    assert_eq!(r.rows_summary(), "1 ok, 2 with warnings, 0 rejected");
    assert_eq!(
        r.outcome_summary(),
        "1 rows ok, 2 with warnings, 0 rejected"
    );
    let k1 = room.customer("K1");
    assert_eq!(
        k1.address.street, "Neue Str.",
        "the rest of the row is imported"
    );
    assert_eq!(
        k1.birth_date,
        Some(d(1965, 4, 17)),
        "the stored birth date stays"
    );
    let k2 = room.customer("K2");
    assert_eq!((k2.last_name.as_str(), k2.email.as_deref()), ("Kurz", None));
    assert_eq!(k2.birth_date, Some(d(1978, 11, 3)));
    let consent = room
        .store
        .consent("K2", touchpoint_common::domain::Channel::Email)
        .expect("read");
    assert!(
        consent.is_some_and(|c| c.granted),
        "its consent is imported"
    );
    // Stored as it was returned, warnings and all.
    assert_eq!(room.store.import(r.import_id).expect("read"), Some(r));
}

/// A key that is bad, or a row left with nobody to write to once its bad
/// fields are dropped, still rejects the row.
#[test]
fn a_bad_key_or_a_row_left_with_nothing_is_rejected() {
    let room = Room::empty();
    let r = room.import(
        "kontakte.csv",
        "Kundennummer;E-Mail;FIN;Marke\nK9;kein-at;;\nK8;k8@example.de;WVWZZZ1KZ6W00000I;VW\n",
    );
    assert_eq!((r.rows_ok, r.rows_warned, r.rows_rejected), (0, 0, 2));
    let errors: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
    assert!(
        errors[0].starts_with("kontakte.csv:2: email: \"kein-at\" is not an address"),
        "{errors:?}"
    );
    assert!(errors[1].starts_with("kontakte.csv:3: vin: "), "{errors:?}");
    assert!(room.store.customer("K9").expect("read").is_none());
}

/// A vehicle whose holder is not (yet) a customer is kept, reported and
/// listed as parked; once the customer is imported it is theirs.
#[test]
fn a_vehicle_before_its_customer_is_parked_then_attached() {
    let room = Room::empty();
    let r = room.import(
        "fahrzeuge.csv",
        &format!("FIN;Kundennummer;Marke\n{V1};99999;VW\n{V2};K2;VW\n"),
    );
    assert_eq!((r.rows_ok, r.rows_warned, r.parked), (0, 2, 2));
    assert_eq!(
        warnings(&r),
        vec![
            "fahrzeuge.csv:2: customer_no: \"99999\" is not a known customer; vehicle kept until the customer arrives",
            "fahrzeuge.csv:3: customer_no: \"K2\" is not a known customer; vehicle kept until the customer arrives",
        ]
    );
    let (n, list) = room.store.parked_vehicles(1).expect("parked");
    assert_eq!((n, list), (2, vec![(V1.to_string(), "99999".to_string())]));

    room.import("kunden.csv", "Kundennummer;Nachname;Ort\n99999;Berg;Ulm\n");
    let (n, list) = room.store.parked_vehicles(10).expect("parked");
    assert_eq!((n, list), (1, vec![(V2.to_string(), "K2".to_string())]));
    let vins: Vec<String> = room
        .store
        .vehicles_of("99999")
        .expect("vehicles")
        .into_iter()
        .map(|v| v.vin)
        .collect();
    assert_eq!(vins, vec![V1.to_string()], "the vehicle is the customer's");
    // A vehicle of a known holder, or of one in its own row, is not parked.
    let r = room.import(
        "fahrzeuge2.csv",
        &format!("FIN;Kundennummer;Marke\n{V1};99999;Volkswagen\n"),
    );
    assert_eq!((r.rows_ok, r.parked), (1, 0));
    let r = room.import(
        "kombi.csv",
        &format!("Kundennummer;Nachname;FIN\nK2;Kurz;{V2}\n"),
    );
    assert_eq!((r.rows_ok, r.parked), (1, 0));
    assert_eq!(room.store.parked_vehicles(10).expect("parked").0, 0);
}

/// Last month's export sent again (other bytes) after this month's puts no
/// old address back, nor an old consent: its records are stale, reported
/// as such; a newer export applies.
#[test]
fn an_older_export_never_overwrites_a_newer_one() {
    let room = Room::empty();
    room.import(
        "kunden_2025-02-28.csv",
        &format!("{CUSTOMERS}K1;Berg;Neue Str. 2;89073;Ulm;;;nein\n"),
    );
    let r = room.import(
        "kunden_20250131.csv",
        &format!(
            "{CUSTOMERS}K1;Berg;Alte Str. 1;89073;Ulm;;;ja\n\
             K2;Kurz;Weg 3;89075;Ulm;;;ja\n"
        ),
    );
    assert!(r.is_committed());
    assert_eq!(
        r.stale,
        touchpoint_common::domain::Stale {
            rows: 1,
            as_of: Some(d(2025, 1, 31)),
            stored: Some(d(2025, 2, 28)),
        }
    );
    assert_eq!(
        r.stale.describe(&r.file_name).as_deref(),
        Some("kunden_20250131.csv: 1 row older than the stored data (as of 2025-01-31 < 2025-02-28); not applied")
    );
    assert_eq!(room.customer("K1").address.street, "Neue Str.");
    assert_eq!(
        room.customer("K2").address.street,
        "Weg",
        "a new customer is imported"
    );
    let consent = room
        .store
        .consent("K1", touchpoint_common::domain::Channel::Email)
        .expect("read")
        .expect("a statement");
    assert!(
        !consent.granted,
        "an older export's undated yes does not undo a newer no"
    );
    // A newer export applies.
    let r = room.import(
        "kunden_2025-03-31.csv",
        &format!("{CUSTOMERS}K1;Berg;Dritte Str. 3;89073;Ulm;;;ja\n"),
    );
    assert_eq!(r.stale.rows, 0);
    assert_eq!(room.customer("K1").address.street, "Dritte Str.");
}

/// A customer stored by the version before (no "as of" kept) is updated by
/// any export, however old its name says it is; from then on its "as of"
/// is kept.
#[test]
fn a_record_stored_without_an_as_of_takes_any_export() {
    let room = Room::empty();
    let mut tx = room.store.begin_import(1).expect("begin");
    tx.put_customer(&touchpoint_common::domain::Customer {
        customer_no: "K1".into(),
        last_name: "Berg".into(),
        ..Default::default()
    })
    .expect("put");
    tx.commit(&ImportReport::new(
        1,
        room.store.id().clone(),
        "alt.csv",
        "old",
        touchpoint_common::domain::Timestamp(1),
    ))
    .expect("commit");
    let r = room.import(
        "kunden_2020-01-31.csv",
        "Kundennummer;Nachname;Ort\nK1;Berg;Ulm\n",
    );
    assert_eq!((r.stale.rows, r.customers.updated), (0, 1));
    assert_eq!(room.customer("K1").address.city, "Ulm");
    let r = room.import(
        "kunden_2019-12-31.csv",
        "Kundennummer;Nachname;Ort\nK1;Berg;Neu-Ulm\n",
    );
    assert_eq!(r.stale.rows, 1);
    assert_eq!(room.customer("K1").address.city, "Ulm");
}

#[test]
fn the_date_in_a_file_name() {
    use super::date_in_name;
    assert_eq!(date_in_name("kunden_2026-11-30.csv"), Some(d(2026, 11, 30)));
    assert_eq!(
        date_in_name("20261130_fahrzeuge.csv"),
        Some(d(2026, 11, 30))
    );
    assert_eq!(date_in_name("export 30.11.2026.csv"), Some(d(2026, 11, 30)));
    assert_eq!(date_in_name("kunden_2024-05.csv"), None);
    assert_eq!(date_in_name("kunden.csv"), None);
    assert_eq!(date_in_name("k_20261131.csv"), None, "no such day");
    assert_eq!(
        date_in_name("k_123456789.csv"),
        None,
        "nine digits are no date"
    );
    assert_eq!(
        date_in_name("k_2026-11-30_2026-12-01.csv"),
        None,
        "two different dates: none is the one"
    );
}

//! File-level tests of the import parser over the exports in
//! `tests/fixtures/import/`: exact values for good rows, exact messages for
//! bad rows and bad files.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use touchpoint_common::domain::{
    Address, Channel, Consent, Customer, ImportField, RowError, Salutation, ServiceVisit,
    Timestamp, Vehicle,
};
use touchpoint_common::policy::TenantImport;
use touchpoint_common::Date;
use touchpointd::import::parse::*;

fn today() -> Date {
    date(2025, 6, 15)
}

fn date(y: i32, m: u32, d: u32) -> Date {
    Date::from_ymd(y, m, d).expect("valid date")
}

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

fn open_with(name: &str, opts: &TenantImport) -> Result<Parser<File>, FileError> {
    let file = File::open(path(name)).expect("fixture exists");
    Parser::new(file, name, opts).map(|p| p.with_today(today()))
}

struct Parsed {
    format: Format,
    rows: Vec<Row>,
    errors: Vec<RowError>,
}

impl Parsed {
    fn error_lines(&self) -> Vec<String> {
        self.errors.iter().map(ToString::to_string).collect()
    }

    /// The rows' warnings: optional fields dropped, the rows kept.
    fn warning_lines(&self) -> Vec<String> {
        self.rows
            .iter()
            .flat_map(|r| &r.warnings)
            .map(ToString::to_string)
            .collect()
    }

    fn row(&self, line: u64) -> &Row {
        self.rows
            .iter()
            .find(|r| r.line == line)
            .unwrap_or_else(|| panic!("no row at line {line}"))
    }
}

fn collect<R: Read>(parser: Parser<R>) -> Parsed {
    let format = parser.format().clone();
    let (mut rows, mut errors) = (Vec::new(), Vec::new());
    for item in parser {
        match item {
            Ok(r) => rows.push(r),
            Err(e) => errors.push(e),
        }
    }
    Parsed {
        format,
        rows,
        errors,
    }
}

fn parse_with(name: &str, opts: &TenantImport) -> Parsed {
    collect(open_with(name, opts).unwrap_or_else(|e| panic!("{name}: {e}")))
}

fn parse(name: &str) -> Parsed {
    parse_with(name, &TenantImport::default())
}

fn file_error(name: &str) -> String {
    match open_with(name, &TenantImport::default()) {
        Ok(_) => panic!("{name} should be rejected"),
        Err(e) => e.to_string(),
    }
}

fn customer(no: &str) -> Customer {
    Customer {
        customer_no: no.into(),
        language: "de".into(),
        ..Customer::default()
    }
}

fn address(street: &str, house_no: &str, postcode: &str, city: &str, country: &str) -> Address {
    Address {
        street: street.into(),
        house_no: house_no.into(),
        postcode: postcode.into(),
        city: city.into(),
        country: country.into(),
    }
}

fn consent(
    customer_no: &str,
    channel: Channel,
    granted: bool,
    source: &str,
    at: Timestamp,
) -> Consent {
    Consent {
        customer_no: customer_no.into(),
        channel,
        granted,
        source: source.into(),
        at,
    }
}

fn at(s: &str) -> Timestamp {
    let t = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("test timestamp");
    Timestamp(t.and_utc().timestamp_millis())
}

#[test]
fn windows_1252_semicolon_customer_export() {
    let p = parse("kunden.csv");
    assert_eq!(p.format.describe(), "windows-1252, ';', 16 columns");
    assert_eq!(p.format.unmapped(), vec!["Bemerkung".to_string()]);
    assert_eq!(p.format.columns[5].header, "Straße");
    assert_eq!(p.format.columns[5].field, Some(ImportField::Street));

    assert_eq!(
        p.error_lines(),
        vec![
            "kunden.csv:12: row: has 19 values but the header has 16 columns (a delimiter inside an unquoted value?)",
            "kunden.csv:13: customer_no: missing: every row needs a customer number or a VIN",
            "kunden.csv:14: row: has 14 values but the header has 16 columns",
        ]
    );
    // A bad optional value drops that field, not the customer.
    assert_eq!(
        p.warning_lines(),
        vec![
            "kunden.csv:4: email: \"max@@example\" is not an address (field not imported)",
            "kunden.csv:9: postcode: \"1234567\" is not a German postcode (5 digits) (field not imported)",
            "kunden.csv:11: email: \"oeztuerk(at)web.de\" is not an address (field not imported)",
            "kunden.csv:11: birth_date: \"31.02.1990\" does not exist: February 1990 has 28 days (field not imported)",
        ]
    );
    let kept = p.row(11).customer.clone().expect("the customer is kept");
    assert_eq!((kept.email.as_deref(), kept.birth_date), (None, None));
    assert!(!kept.last_name.is_empty(), "{kept:?}");
    assert!(p.row(11).dropped.contains(ImportField::BirthDate));
    assert!(p.row(11).dropped.contains(ImportField::Email));
    assert!(!p.row(11).dropped.contains(ImportField::LastName));
    let lines: Vec<u64> = p.rows.iter().map(|r| r.line).collect();
    assert_eq!(
        lines,
        vec![2, 3, 4, 5, 6, 9, 11],
        "the empty record on line 8 and the blank line 10 are skipped"
    );

    let source = "import:kunden.csv";
    let hans = p.row(2);
    assert_eq!(
        hans.customer,
        Some(Customer {
            salutation: Salutation::Mr,
            first_name: "Hans".into(),
            last_name: "Müller".into(),
            address: address("Hauptstr.", "12A", "80331", "München", "DE"),
            email: Some("hans.mueller@example.de".into()),
            phone: Some("+49891234567".into()),
            birth_date: Some(date(1965, 4, 17)),
            ..customer("10001")
        })
    );
    assert_eq!(
        hans.consents,
        vec![
            consent("10001", Channel::Email, true, source, Timestamp::default()),
            consent("10001", Channel::Post, true, source, Timestamp::default()),
        ]
    );
    assert_eq!((hans.vehicle.as_ref(), hans.visit.as_ref()), (None, None));

    let erika = p.row(3).customer.clone().expect("customer");
    assert_eq!(erika.last_name, "Weiß");
    assert_eq!(
        erika.address,
        address("Straße des 17. Juni", "5", "01067", "Dresden", "DE")
    );
    assert_eq!(
        erika.phone.as_deref(),
        Some("+491712345678"),
        "the mobile column fills an empty phone column"
    );
    assert_eq!(erika.email.as_deref(), Some("Erika.Weiss@t-online.de"));
    assert_eq!(erika.birth_date, Some(date(1978, 11, 3)));
    assert_eq!(
        p.row(3)
            .consents
            .iter()
            .map(|c| (c.channel, c.granted))
            .collect::<Vec<_>>(),
        vec![(Channel::Email, false), (Channel::Post, true)]
    );

    let schmidt = p.row(5).customer.clone().expect("customer");
    assert_eq!(
        schmidt,
        Customer {
            salutation: Salutation::Company,
            company: Some("Autohaus Schmidt GmbH & Co. KG".into()),
            is_company: true,
            address: address("Industriestr.", "7-9", "70173", "Stuttgart", "DE"),
            email: Some("info@autohaus-schmidt.de".into()),
            phone: Some("+49711998877".into()),
            ..customer("10004")
        }
    );
    assert_eq!(schmidt.display_name(), "Autohaus Schmidt GmbH & Co. KG");

    // A quoted note with a line break: the record starts on line 6 and the next one on line 8.
    let anna = p.row(6).customer.clone().expect("customer");
    assert_eq!(
        (anna.first_name.as_str(), anna.last_name.as_str()),
        ("Anna", "Groß")
    );
    // A row shorter than the header (line 14) is rejected: whether cells
    // went missing at its end or in its middle cannot be told.
}

#[test]
fn forced_encoding_and_delimiter_give_the_same_rows() {
    let opts = TenantImport {
        encoding: Some("windows-1252".into()),
        delimiter: Some(";".into()),
        ..TenantImport::default()
    };
    let forced = parse_with("kunden.csv", &opts);
    let detected = parse("kunden.csv");
    assert_eq!(forced.rows, detected.rows);
    assert_eq!(forced.errors, detected.errors);
}

#[test]
fn utf8_with_bom_vehicle_export() {
    let p = parse("fahrzeuge.csv");
    assert_eq!(p.format.describe(), "utf-8 (BOM), ';', 9 columns");
    assert_eq!(
        p.format.columns[0].header, "Kundennummer",
        "the BOM is not part of the first header"
    );
    assert!(p.format.unmapped().is_empty());
    assert_eq!(
        p.error_lines(),
        vec![
            "fahrzeuge.csv:4: vin: \"WAUZZZ8V0KA00001\" is not a VIN: it has 16 characters, a VIN has 17",
            "fahrzeuge.csv:5: customer_no: missing: a vehicle needs the customer number of its holder",
        ]
    );
    assert_eq!(
        p.warning_lines(),
        vec![
            "fahrzeuge.csv:6: last_service_km: \"-1200\" is negative (field not imported)",
            "fahrzeuge.csv:7: first_registration: \"13.13.2020\" does not exist: there is no month 13 (field not imported)",
            "fahrzeuge.csv:7: last_service_km: \"2.500.000\" is not a plausible mileage (more than 2,000,000 km) (field not imported)",
        ]
    );
    let v7 = p.row(7).vehicle.clone().expect("the vehicle is kept");
    assert_eq!((v7.first_registration, v7.last_service_km), (None, None));
    assert_eq!(
        p.row(2).vehicle,
        Some(Vehicle {
            vin: "WVWZZZ1KZ6W000001".into(),
            customer_no: "10001".into(),
            make: "Volkswagen".into(),
            model: "Golf VIII 1.5 eTSI".into(),
            first_registration: Some(date(2019, 3, 15)),
            last_service_date: Some(date(2024, 2, 12)),
            last_service_km: Some(45_300),
            next_inspection: Some(date(2026, 3, 1)),
            warranty_end: Some(date(2024, 3, 14)),
        })
    );
    assert_eq!(
        p.row(2).customer,
        None,
        "a vehicle file carries no customer records"
    );
    let passat = p.row(3).vehicle.clone().expect("vehicle");
    assert_eq!(passat.vin, "WVWZZZ3CZ8E123456");
    assert_eq!(passat.first_registration, Some(date(2018, 6, 1)));
    assert_eq!(passat.last_service_km, Some(87_654));
    assert_eq!(passat.warranty_end, None);
    let focus = p.row(8).vehicle.clone().expect("vehicle");
    assert_eq!(focus.make, "Ford");
    assert_eq!(focus.first_registration, Some(date(2024, 12, 31)));
    assert_eq!(focus.last_service_date, Some(date(2025, 1, 15)));
    assert_eq!(focus.next_inspection, Some(date(2026, 12, 31)));
    assert_eq!(p.rows.len(), 5);
}

#[test]
fn english_comma_export_with_full_names_and_quotes() {
    let p = parse("customers_en.csv");
    assert_eq!(p.format.describe(), "utf-8, ',', 19 columns");
    assert_eq!(p.format.columns[2].field, Some(ImportField::FullName));
    assert!(p.format.has(ImportField::FullName) && !p.format.has(ImportField::FirstName));
    assert_eq!(
        p.error_lines(),
        vec![
            "customers_en.csv:7: row: has 20 values but the header has 19 columns (a delimiter inside an unquoted value?)",
        ]
    );
    assert_eq!(
        p.warning_lines(),
        vec!["customers_en.csv:8: email: \"bob@example\" is not an address (field not imported)"]
    );

    let hans = p.row(2);
    assert_eq!(
        hans.customer,
        Some(Customer {
            salutation: Salutation::Mr,
            first_name: "Hans".into(),
            last_name: "Müller".into(),
            address: address("Hauptstraße", "12A", "80331", "Munich", "DE"),
            email: Some("hans@example.com".into()),
            phone: Some("+49891234567".into()),
            birth_date: Some(date(1965, 4, 17)),
            language: "en".into(),
            ..customer("C-1001")
        })
    );
    let golf = hans.vehicle.clone().expect("vehicle");
    assert_eq!(
        (golf.customer_no.as_str(), golf.model.as_str()),
        ("C-1001", "Golf")
    );
    assert_eq!(golf.last_service_km, Some(45_300));
    assert_eq!(golf.first_registration, Some(date(2019, 3, 15)));
    assert_eq!(
        hans.consents,
        vec![consent(
            "C-1001",
            Channel::Email,
            true,
            "import:customers_en.csv",
            Timestamp(0)
        )]
    );

    let jane = p.row(3);
    let c = jane.customer.clone().expect("customer");
    assert_eq!(
        (c.first_name.as_str(), c.last_name.as_str()),
        ("Jane", "Smith")
    );
    assert_eq!(c.salutation, Salutation::Ms);
    assert_eq!(
        c.address,
        address("Baker Street", "221B", "NW1 6XE", "London", "GB")
    );
    assert_eq!(c.phone.as_deref(), Some("+442079460958"));
    assert_eq!(c.birth_date, Some(date(1980, 5, 12)));
    assert_eq!(jane.vehicle, None);
    assert_eq!(jane.consents.len(), 1);

    let fleet = p.row(4);
    let c = fleet.customer.clone().expect("customer");
    assert!(c.is_company);
    assert_eq!(c.company.as_deref(), Some("Fleet Services Ltd"));
    assert_eq!((c.first_name.as_str(), c.last_name.as_str()), ("", ""));
    assert_eq!(
        c.address,
        address("Industrial Park", "7", "12345", "Berlin", "DE")
    );
    let bmw = fleet.vehicle.clone().expect("vehicle");
    assert_eq!(bmw.model, "320d Touring, M Sport");
    assert_eq!(bmw.last_service_km, Some(120_000));
    assert!(fleet.consents.is_empty());

    // A quoted company name with a line break: line 5 and 6 are one record.
    let anna = p.row(5).customer.clone().expect("customer");
    assert_eq!(
        (anna.first_name.as_str(), anna.last_name.as_str()),
        ("Anna", "von der Heide")
    );
    assert_eq!(
        anna.company.as_deref(),
        Some("Heide & Partner Steuerberatung")
    );
    assert_eq!(p.rows.len(), 5, "bob (a bad email) is kept without it");
    assert_eq!(
        p.row(8).customer.as_ref().map(|c| c.email.clone()),
        Some(None)
    );
}

#[test]
fn tab_separated_visit_export() {
    let p = parse("werkstatt.tsv");
    assert_eq!(p.format.describe(), "utf-8, tab, 5 columns");
    assert_eq!(
        p.format.columns[2].field,
        Some(ImportField::VisitKm),
        "km-Stand in a visit file is the visit's"
    );
    assert_eq!(p.format.unmapped(), vec!["Bemerkung".to_string()]);
    assert_eq!(
        p.error_lines(),
        vec![
            "werkstatt.tsv:5: customer_no: missing: every row needs a customer number or a VIN",
            "werkstatt.tsv:6: visit_date: missing: a service visit needs a date",
            "werkstatt.tsv:7: visit_date: \"32.01.2025\" does not exist: there is no day 32",
        ]
    );
    let visits: Vec<ServiceVisit> = p.rows.iter().filter_map(|r| r.visit.clone()).collect();
    let visit = |vin: &str, date: Date, km: Option<u32>, kind: &str, line: u32| ServiceVisit {
        vin: vin.into(),
        customer_no: String::new(),
        date,
        km,
        kind: kind.into(),
        value: None,
        source: format!("werkstatt.tsv:{line}"),
    };
    assert_eq!(
        visits,
        vec![
            visit(
                "WVWZZZ1KZ6W000001",
                date(2024, 12, 31),
                Some(45_300),
                "Inspektion",
                2
            ),
            visit(
                "WVWZZZ3CZ8E123456",
                date(2024, 12, 31),
                Some(87_654),
                "HU/AU",
                3
            ),
            visit("WF0XXXGCDX1234567", date(2025, 1, 2), None, "service", 4),
        ]
    );
    assert!(p
        .rows
        .iter()
        .all(|r| r.vehicle.is_none() && r.customer.is_none()));
}

/// A DMS workshop export with an invoice amount and a visit type: the
/// amount in German and English forms becomes cents, a bad amount is a
/// row error naming the field, and the good rows are kept.
#[test]
fn visit_export_with_amount_and_visit_type() {
    let p = parse("werkstatt_rechnungen.csv");
    let fields: Vec<Option<ImportField>> = p.format.columns.iter().map(|c| c.field).collect();
    assert_eq!(
        fields,
        vec![
            Some(ImportField::CustomerNo),
            Some(ImportField::Vin),
            Some(ImportField::VisitDate),
            Some(ImportField::VisitKind),
            Some(ImportField::VisitValue),
        ]
    );
    assert_eq!(
        p.error_lines(),
        vec!["werkstatt_rechnungen.csv:7: visit_date: missing: a service visit needs a date",]
    );
    assert_eq!(
        p.warning_lines(),
        vec![
            "werkstatt_rechnungen.csv:5: visit_value: \"-80,00\" is negative (a credit note is no order value) (field not imported)",
            "werkstatt_rechnungen.csv:6: visit_value: \"zwölf\" is not an amount (write 412,00 or 412.00) (field not imported)",
        ]
    );
    let got: Vec<(String, String, Option<i64>, String)> = p
        .rows
        .iter()
        .filter_map(|r| r.visit.clone())
        .map(|v| (v.customer_no, v.kind, v.value, v.source))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "K1".into(),
                "Inspektion".into(),
                Some(41_200),
                "werkstatt_rechnungen.csv:2".into()
            ),
            (
                "K2".into(),
                "HU".into(),
                Some(123_456),
                "werkstatt_rechnungen.csv:3".into()
            ),
            (
                "K3".into(),
                "Reifenwechsel".into(),
                None,
                "werkstatt_rechnungen.csv:4".into()
            ),
            // Bad amounts: the visits are kept without them.
            (
                "K4".into(),
                "Garantie".into(),
                None,
                "werkstatt_rechnungen.csv:5".into()
            ),
            (
                "K5".into(),
                "Inspektion".into(),
                None,
                "werkstatt_rechnungen.csv:6".into()
            ),
        ]
    );
}

#[test]
fn consent_file_with_channel_and_granted_columns() {
    let p = parse("einwilligungen.csv");
    assert_eq!(
        p.error_lines(),
        vec![
            "einwilligungen.csv:5: consent_channel: \"Fax\" is not a channel (email, post or phone)",
            "einwilligungen.csv:6: consent_granted: \"vielleicht\" is not yes or no",
        ]
    );
    let consents: Vec<Consent> = p.rows.iter().flat_map(|r| r.consents.clone()).collect();
    assert_eq!(
        consents,
        vec![
            consent(
                "10001",
                Channel::Email,
                true,
                "Werkstattauftrag",
                at("2024-03-15 14:30")
            ),
            consent(
                "10001",
                Channel::Post,
                false,
                "import:einwilligungen.csv",
                at("2024-03-15 00:00")
            ),
            consent(
                "10002",
                Channel::Phone,
                false,
                "Anruf Kunde",
                at("2025-02-01 09:00")
            ),
            consent(
                "10005",
                Channel::Post,
                true,
                "import:einwilligungen.csv",
                Timestamp::default()
            ),
        ]
    );
    assert!(
        p.rows.iter().all(|r| r.customer.is_none()),
        "a consent file has no customer columns"
    );
}

#[test]
fn tenant_column_mapping_and_options() {
    let mut columns = BTreeMap::new();
    columns.insert("KD#".to_string(), ImportField::CustomerNo);
    columns.insert("mail privat".to_string(), ImportField::Email);
    columns.insert("Geb.".to_string(), ImportField::BirthDate);
    columns.insert("Fzg.-Ident".to_string(), ImportField::Vin);
    columns.insert("Tacho".to_string(), ImportField::LastServiceKm);
    columns.insert("Notiz".to_string(), ImportField::Ignore);
    let opts = TenantImport {
        columns,
        delimiter: Some("|".into()),
        date_order: Some("ymd".into()),
        ..TenantImport::default()
    };
    let p = parse_with("eigene_spalten.csv", &opts);
    assert_eq!(p.format.describe(), "utf-8, '|', 7 columns");
    assert_eq!(
        p.format.unmapped(),
        vec!["Sonstiges".to_string()],
        "ignored columns are not reported"
    );
    assert!(p.errors.is_empty(), "{:?}", p.error_lines());
    let peter = p.row(2).customer.clone().expect("customer");
    assert_eq!(peter.customer_no, "K-77");
    assert_eq!(peter.email.as_deref(), Some("Peter.Pan@example.org"));
    assert_eq!(
        peter.birth_date,
        Some(date(1965, 4, 17)),
        "year first; a birth year in the future is 19xx"
    );
    assert_eq!(
        p.row(2).vehicle.as_ref().and_then(|v| v.last_service_km),
        Some(45_300)
    );
    assert_eq!(
        p.row(3).customer.as_ref().and_then(|c| c.birth_date),
        Some(date(1931, 12, 24))
    );
}

#[test]
fn excel_sep_line_sets_the_delimiter_and_counts_as_a_line() {
    let p = parse("excel_sep.csv");
    assert_eq!(p.format.describe(), "utf-8, ',', 3 columns");
    assert_eq!(p.rows.len(), 1);
    assert_eq!(p.rows[0].line, 3);
    let c = p.rows[0].customer.clone().expect("customer");
    assert_eq!(
        (c.first_name.as_str(), c.last_name.as_str()),
        ("Hans", "Müller")
    );
}

#[test]
fn empty_files_are_rejected_and_a_header_alone_is_fine() {
    for name in ["leer.csv", "nur_bom.csv", "nur_leerzeilen.csv"] {
        assert_eq!(
            file_error(name),
            "the file is empty: no header line and no rows",
            "{name}"
        );
    }
    let p = parse("nur_kopfzeile.csv");
    assert!(p.rows.is_empty() && p.errors.is_empty());
    assert_eq!(p.format.describe(), "utf-8, ';', 3 columns");
}

#[test]
fn files_that_are_not_csv_say_what_they_are() {
    assert_eq!(
        file_error("kunden.xlsx"),
        "not a CSV file: looks like a ZIP archive (an .xlsx?); export as CSV"
    );
    assert_eq!(
        file_error("logo.png"),
        "not a CSV file: looks like a PNG image"
    );
    assert_eq!(
        file_error("notizen.txt"),
        "not a CSV file: no delimiter (';', ',', tab or '|') and no known column name in the first line"
    );
    assert_eq!(
        file_error("ohne_schluessel.csv"),
        "no column for a customer number or VIN; headers seen: \"Vorname\", \"Nachname\", \"Ort\"; map a column to customer_no or vin under [import.columns] in the dealer policy"
    );
    assert_eq!(
        file_error("ohne_kopfzeile.csv"),
        "no column for a customer number or VIN; headers seen: \"10001\", \"Herr\", \"Hans\", \"Müller\", \"hans@example.de\"; the first line looks like data: export with a header line"
    );
    let binary = b"Kundennr;Name\n\x00\x01\x02\x03\x00\x00";
    let err = Parser::new(&binary[..], "x.csv", &TenantImport::default())
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("not a CSV file: contains binary data (NUL bytes); not a text file")
    );
}

#[test]
fn bad_options_are_file_errors() {
    let bad = |opts: TenantImport| {
        Parser::new(&b"Kundennr\n1\n"[..], "x.csv", &opts)
            .err()
            .map(|e| e.to_string())
    };
    assert_eq!(
        bad(TenantImport { encoding: Some("ebcdic".into()), ..TenantImport::default() }).as_deref(),
        Some("import option encoding = \"ebcdic\" is not supported; use \"utf-8\" or \"windows-1252\"")
    );
    assert_eq!(
        bad(TenantImport {
            delimiter: Some("ab".into()),
            ..TenantImport::default()
        })
        .as_deref(),
        Some(
            "import option delimiter = \"ab\" is not supported; use \";\", \",\", \"\\t\" or \"|\""
        )
    );
    assert_eq!(
        bad(TenantImport { date_order: Some("julian".into()), ..TenantImport::default() }).as_deref(),
        Some("import option date_order = \"julian\" is not supported; use \"dmy\", \"ymd\" or \"mdy\"")
    );
}

#[test]
fn forced_encoding_is_honoured() {
    let utf8 = "Kundennr;Nachname\n1;Müller\n";
    let opts = TenantImport {
        encoding: Some("windows-1252".into()),
        ..TenantImport::default()
    };
    let p = collect(Parser::new(utf8.as_bytes(), "x.csv", &opts).expect("parser"));
    assert_eq!(p.format.encoding, "windows-1252");
    assert_eq!(
        p.rows[0].customer.as_ref().map(|c| c.last_name.as_str()),
        Some("MÃ¼ller")
    );
}

#[test]
fn utf16_exports_are_decoded() {
    let text = "Kundennr\tNachname\r\n1\tWeiß\r\n";
    let le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let p = collect(Parser::new(&le[..], "x.txt", &TenantImport::default()).expect("parser"));
    assert_eq!(p.format.describe(), "utf-16le, tab, 2 columns");
    assert_eq!(
        p.rows[0].customer.as_ref().map(|c| c.last_name.as_str()),
        Some("Weiß")
    );
}

/// Generates a customer export row by row, never holding more than one row.
struct Generated {
    header: Option<Vec<u8>>,
    row: u64,
    rows: u64,
    pending: Vec<u8>,
    pos: usize,
    latin1_from: u64,
}

impl Generated {
    fn new(rows: u64) -> Self {
        Self {
            header: Some(
                b"Kundennr;Anrede;Vorname;Nachname;Strasse;PLZ;Ort;E-Mail;FIN;km-Stand\r\n"
                    .to_vec(),
            ),
            row: 0,
            rows,
            pending: Vec::new(),
            pos: 0,
            latin1_from: u64::MAX,
        }
    }
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.pending.len() {
            self.pos = 0;
            self.pending.clear();
            if let Some(h) = self.header.take() {
                self.pending = h;
            } else if self.row < self.rows {
                self.row += 1;
                let n = self.row;
                let name: &[u8] = if n >= self.latin1_from {
                    b"M\xfcller"
                } else {
                    b"Mueller"
                };
                self.pending
                    .extend_from_slice(format!("{n};Herr;Hans;").as_bytes());
                self.pending.extend_from_slice(name);
                self.pending.extend_from_slice(
                    format!(
                        ";Hauptstr. {};80331;Muenchen;h{n}@example.de;WVWZZZ1KZ6W{:06};{}\r\n",
                        n % 200 + 1,
                        n % 1_000_000,
                        n % 300_000
                    )
                    .as_bytes(),
                );
            } else {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.pending.len() - self.pos);
        buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn streams_large_inputs_row_by_row() {
    let rows = 50_000;
    let parser =
        Parser::new(Generated::new(rows), "gross.csv", &TenantImport::default()).expect("parser");
    let mut n = 0;
    for item in parser {
        let row = item.expect("valid row");
        n += 1;
        assert_eq!(row.line, n + 1);
        assert!(row.customer.is_some() && row.vehicle.is_some());
    }
    assert_eq!(n, rows);

    // An endless input: rows come out before the input ends.
    let endless = Parser::new(
        Generated::new(u64::MAX),
        "endlos.csv",
        &TenantImport::default(),
    )
    .expect("parser");
    assert_eq!(endless.take(10_000).filter(Result::is_ok).count(), 10_000);
}

#[test]
fn windows_1252_bytes_after_the_sniffed_part_of_a_utf8_file_survive() {
    // The first 64 KiB are ASCII (so "utf-8"), later rows carry Windows-1252 umlauts.
    let mut input = Generated::new(3_000);
    input.latin1_from = 2_000;
    let p = collect(Parser::new(input, "gemischt.csv", &TenantImport::default()).expect("parser"));
    assert_eq!(p.format.encoding, "utf-8");
    assert!(p.errors.is_empty());
    assert_eq!(
        p.rows[1_998]
            .customer
            .as_ref()
            .map(|c| c.last_name.as_str()),
        Some("Mueller")
    );
    assert_eq!(
        p.rows[1_999]
            .customer
            .as_ref()
            .map(|c| c.last_name.as_str()),
        Some("Müller")
    );
}

#[test]
fn an_unclosed_quote_over_the_record_limit_is_rejected_without_filling_memory() {
    let mut text = b"Kundennr;Name\n1;Hans Meier\n2;\"Erika Weiss\n".to_vec();
    for i in 0..40_000 {
        text.extend_from_slice(format!("{i};Hans Muster mit einem langen Namen\n").as_bytes());
    }
    assert!(text.len() as u64 > MAX_RECORD_BYTES + 64 * 1024);
    let mut parser =
        Parser::new(&text[..], "kaputt.csv", &TenantImport::default()).expect("parser");
    let first = parser.next().expect("row").expect("ok");
    assert_eq!(first.line, 2);
    let err = parser.next().expect("item").expect_err("rejected");
    assert_eq!(
        err.to_string(),
        "kaputt.csv:3: row: unclosed quote (\"): the quoted value starting on this line runs on for more than 1024 KiB; this line is rejected and the lines after it are read as rows"
    );
    let rest: Vec<u64> = parser.by_ref().map(|r| r.expect("ok").line).collect();
    assert_eq!(rest, (4..40_004).collect::<Vec<u64>>());
    assert!(parser.aborted().is_none());
}

#[test]
fn a_line_over_the_record_limit_ends_the_parse() {
    let mut text = b"Kundennr;Name\n1;Hans Meier\n2;".to_vec();
    text.extend(std::iter::repeat_n(b'x', 2 << 20));
    text.extend_from_slice(b"\n3;Eva\n");
    let mut parser = Parser::new(&text[..], "lang.csv", &TenantImport::default()).expect("parser");
    assert_eq!(parser.next().expect("row").expect("ok").line, 2);
    let err = parser.next().expect("item").expect_err("aborted");
    assert_eq!(
        err.to_string(),
        "lang.csv:3: file: the record starting at line 3 is longer than 1024 KiB; probably an unclosed quote (\") in it"
    );
    assert!(matches!(
        parser.aborted(),
        Some(FileError::RecordTooLarge { line: 3, .. })
    ));
    assert!(parser.next().is_none());
}

#[test]
fn many_unclosed_quotes_give_up_on_the_file() {
    let mut text = b"Kundennr;Name;Ort\n".to_vec();
    for i in 0..200 {
        text.extend_from_slice(format!("{i};\"Meier;Ulm\n").as_bytes());
    }
    let mut parser =
        Parser::new(&text[..], "quotes.csv", &TenantImport::default()).expect("parser");
    let errors = parser.by_ref().filter(Result::is_err).count();
    assert_eq!(errors, 101, "100 rejected lines, then the file");
    assert_eq!(
        parser.aborted().map(ToString::to_string).as_deref(),
        Some("more than 100 lines open a quote (\") they never close, the last on line 102; the file's quoting is broken")
    );
}

#[test]
fn read_errors_mid_file_abort_with_a_row_error() {
    struct Failing(Vec<u8>, usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.1 >= self.0.len() {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.0.len() - self.1).min(10);
            buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }
    // More than the sniff buffer, so the error comes while streaming.
    let mut text = b"Kundennr;Name\n".to_vec();
    for i in 1..=8_000 {
        text.extend_from_slice(format!("{i};Hans Meier\n").as_bytes());
    }
    let mut parser =
        Parser::new(Failing(text, 0), "x.csv", &TenantImport::default()).expect("parser");
    let rows = parser.by_ref().take_while(Result::is_ok).count();
    assert_eq!(rows, 8_000);
    assert!(matches!(parser.aborted(), Some(FileError::Io(_))));
    assert_eq!(
        parser.aborted().map(ToString::to_string).as_deref(),
        Some("read error: disk on fire")
    );
    assert!(parser.next().is_none());
}

/// Throughput in release mode:
/// `cargo test --release -p touchpoint-daemon --test import_parse -- --ignored --nocapture`
#[test]
#[ignore = "measures throughput; run in release mode"]
fn throughput() {
    let rows = 500_000;
    let mut bytes = Vec::new();
    Generated::new(rows)
        .read_to_end(&mut bytes)
        .expect("generate");
    let windows: Vec<u8> = {
        let text = String::from_utf8(bytes.clone()).expect("ascii");
        let text = text
            .replace("Mueller", "Müller")
            .replace("Muenchen", "München");
        encoding_rs::WINDOWS_1252.encode(&text).0.into_owned()
    };
    for (label, input) in [("utf-8", &bytes), ("windows-1252", &windows)] {
        let start = std::time::Instant::now();
        let parser =
            Parser::new(&input[..], "gross.csv", &TenantImport::default()).expect("parser");
        let ok = parser.filter(Result::is_ok).count() as u64;
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(ok, rows);
        println!(
            "{label}: {rows} rows, {:.0} MB in {secs:.2} s: {:.0} rows/s, {:.0} MB/s",
            input.len() as f64 / 1e6,
            rows as f64 / secs,
            input.len() as f64 / 1e6 / secs
        );
    }
}

/// `Kundennr;Nachname;Ort` and `n` good rows numbered from `first`.
fn rows_text(first: u64, n: u64) -> String {
    (first..first + n)
        .map(|i| format!("{i};Meier{i};Ulm\n"))
        .collect()
}

#[test]
fn an_unclosed_quote_rejects_its_line_and_the_rows_it_swallowed_are_read_as_rows() {
    // 51 data rows: the first one opens a quote it never closes (well under 1 MiB).
    let text = format!("Kundennr;Nachname;Ort\n1;\"Meier;Ulm\n{}", rows_text(2, 50));
    let p = collect(
        Parser::new(text.as_bytes(), "offen.csv", &TenantImport::default()).expect("parser"),
    );
    assert_eq!(
        p.error_lines(),
        ["offen.csv:2: last_name: unclosed quote (\"): the quoted value starting on this line runs on over 50 more lines; this line is rejected and the lines after it are read as rows"]
    );
    let lines: Vec<u64> = p.rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, (3..=52).collect::<Vec<u64>>());
    assert_eq!(
        p.row(3).customer.as_ref().map(|c| c.last_name.as_str()),
        Some("Meier2")
    );
}

#[test]
fn an_unclosed_quote_in_the_header_rejects_the_file() {
    let text = format!("Kundennr;\"Nachname;Ort\n{}", rows_text(1, 50));
    let err = Parser::new(text.as_bytes(), "x.csv", &TenantImport::default())
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("the header (line 1) opens a quote (\") that runs over the end of the line; close it so that the rows are read as rows")
    );
}

#[test]
fn a_quote_closed_rows_later_does_not_swallow_the_rows_between() {
    // The quote opened on line 3 is closed by the first quote of line 6.
    let text = format!(
        "Kundennr;Nachname;Ort\n1;Meier;Ulm\n2;\"Weiss;Ulm\n{}5;\"Müller, Hans\";Ulm\n{}",
        rows_text(3, 2),
        rows_text(6, 3)
    );
    let p =
        collect(Parser::new(text.as_bytes(), "x.csv", &TenantImport::default()).expect("parser"));
    assert_eq!(p.errors.len(), 1, "{:?}", p.error_lines());
    assert!(
        p.error_lines()[0].starts_with("x.csv:3: last_name: unclosed quote (\")"),
        "{:?}",
        p.error_lines()
    );
    let lines: Vec<u64> = p.rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 4, 5, 6, 7, 8, 9]);
    assert_eq!(
        p.row(6).customer.as_ref().map(|c| c.last_name.as_str()),
        Some("Müller, Hans")
    );
}

#[test]
fn quoted_values_over_a_few_lines_are_still_one_value() {
    let text = "Kundennr;Nachname;Bemerkung\n1;Meier;\"erste Zeile\nzweite Zeile\ndritte, Zeile\"\n2;Weiss;x\n";
    let p =
        collect(Parser::new(text.as_bytes(), "x.csv", &TenantImport::default()).expect("parser"));
    assert!(p.errors.is_empty(), "{:?}", p.error_lines());
    let lines: Vec<u64> = p.rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 5]);
}

#[test]
fn rows_whose_field_count_does_not_match_the_header_are_rejected() {
    let text = "Kundennr;Anrede;Vorname;Nachname;Ort\n\
                MX-1;Herr;Hans;Muster;Ulm\n\
                MX-2,Herr,Hans,Muster,Ulm\n\
                MX-3;Frau;Eva\n\
                MX-4;Frau;Eva;Weiss;Ulm;;\n";
    let p =
        collect(Parser::new(text.as_bytes(), "x.csv", &TenantImport::default()).expect("parser"));
    assert_eq!(
        p.error_lines(),
        [
            "x.csv:3: row: has 1 value but the header has 5 columns (separated by ',' instead of ';'?)",
            "x.csv:4: row: has 3 values but the header has 5 columns",
        ]
    );
    let lines: Vec<u64> = p.rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 5], "trailing empty cells are no extra columns");
}

/// More than the sniff buffer of good rows, then `tail`.
fn long_text_then(tail: &[u8]) -> Vec<u8> {
    let mut text = b"Kundennr;Nachname;Ort\n".to_vec();
    text.extend_from_slice(rows_text(1, 4_000).as_bytes());
    assert!(text.len() > SNIFF_BYTES);
    text.extend_from_slice(tail);
    text
}

#[test]
fn a_nul_byte_after_the_sniffed_part_rejects_the_file_as_one_before_it_does() {
    let text = long_text_then(b"4001;Mei\0er;Ulm\n4002;Weiss;Ulm\n");
    let mut parser = Parser::new(&text[..], "nul.csv", &TenantImport::default()).expect("parser");
    let ok = parser.by_ref().take_while(Result::is_ok).count();
    assert_eq!(ok, 4_000);
    assert_eq!(
        parser.aborted().map(ToString::to_string).as_deref(),
        Some("not a CSV file: contains binary data (NUL bytes) on line 4002; not a text file")
    );
    assert!(parser.next().is_none());
}

#[test]
fn a_record_over_the_limit_ends_the_parse_however_little_it_is_over() {
    let mut tail = b"4001;Weiss;".to_vec();
    tail.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES as usize + 10));
    tail.extend_from_slice(b"\n4002;Weiss;Ulm\n");
    let text = long_text_then(&tail);
    let mut parser = Parser::new(&text[..], "lang.csv", &TenantImport::default()).expect("parser");
    let ok = parser.by_ref().take_while(Result::is_ok).count();
    assert_eq!(ok, 4_000);
    assert!(
        matches!(
            parser.aborted(),
            Some(FileError::RecordTooLarge { line: 4002, .. })
        ),
        "{:?}",
        parser.aborted()
    );
}

#[test]
fn a_value_longer_than_a_field_can_be_is_rejected() {
    let long = "A".repeat(900_000);
    let text = format!("Kundennr;Vorname;Nachname\n1;{long};Meier\n2;Hans;Meier\n");
    let p =
        collect(Parser::new(text.as_bytes(), "x.csv", &TenantImport::default()).expect("parser"));
    assert_eq!(
        p.error_lines(),
        [format!(
            "x.csv:2: first_name: is 900000 bytes long; at most {MAX_FIELD_BYTES} are accepted"
        )]
    );
    assert_eq!(p.rows.len(), 1);
    assert_eq!(p.rows[0].line, 3);
}

#[test]
fn duplicate_header_names_are_reported_in_the_format() {
    let text =
        "Kundennr;Nachname;E-Mail;Nachname\n1;Meier;m@example.de;Weiss\n2;;e@example.de;Weiss\n";
    let p =
        collect(Parser::new(text.as_bytes(), "x.csv", &TenantImport::default()).expect("parser"));
    assert_eq!(
        p.format.describe(),
        "utf-8, ';', 4 columns; column 4 \"Nachname\" repeats column 2 (a row's first non-empty value of them is used)"
    );
    let names: Vec<&str> = p
        .rows
        .iter()
        .filter_map(|r| r.customer.as_ref())
        .map(|c| c.last_name.as_str())
        .collect();
    assert_eq!(names, ["Meier", "Weiss"]);
}

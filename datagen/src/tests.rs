use std::collections::{HashMap, HashSet};
use std::path::Path;

use touchpoint_common::config::DaemonConfig;
use touchpoint_common::domain::Channel;
use touchpoint_common::domain::ImportField;
use touchpoint_common::policy::{BrandPolicy, PolicySet, TenantPolicy};
use touchpoint_common::toml_file::parse_toml;
use touchpoint_common::Date;

use super::*;
use crate::gen::{add_months, hu_date, Tri};

fn as_of() -> Date {
    Date::from_ymd(2026, 3, 15).expect("date")
}

fn spec(customers: usize, seed: u64) -> DealerSpec {
    DealerSpec {
        id: "d001".into(),
        name: "Autohaus Müller GmbH".into(),
        city: "München".into(),
        postcode_prefix: "80".into(),
        customers,
        seed,
    }
}

fn export(spec: &DealerSpec, opts: &ExportOptions) -> (Vec<u8>, ExportStats) {
    let mut out = Vec::new();
    let stats = write_customer_export_as_of(spec, opts, as_of(), &mut out).expect("export");
    (out, stats)
}

fn visits(spec: &DealerSpec, opts: &ExportOptions) -> (Vec<u8>, ExportStats) {
    let mut out = Vec::new();
    let stats = write_visits_export_as_of(spec, opts, as_of(), &mut out).expect("export");
    (out, stats)
}

/// Decodes an export to text, BOM removed.
fn text(bytes: &[u8], d: Dialect) -> String {
    match d {
        Dialect::DmsSemicolon1252 => {
            let (s, _, had_errors) = encoding_rs::WINDOWS_1252.decode(bytes);
            assert!(!had_errors);
            s.into_owned()
        }
        _ => {
            let bytes = bytes
                .strip_prefix(b"\xEF\xBB\xBF".as_slice())
                .unwrap_or(bytes);
            String::from_utf8(bytes.to_vec()).expect("utf-8")
        }
    }
}

/// Minimal CSV record splitter: quoted fields with doubled quotes, no line breaks inside.
fn split(line: &str, delim: char) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let field = fields.last_mut().expect("one field");
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c == delim && !quoted => fields.push(String::new()),
            c => field.push(c),
        }
    }
    fields
}

/// Header and rows as maps from header to value.
fn table(bytes: &[u8], d: Dialect) -> (Vec<String>, Vec<HashMap<String, String>>) {
    let text = text(bytes, d);
    let delim = char::from(d.delimiter());
    let mut lines = text.split(d.line_end()).filter(|l| !l.is_empty());
    let header = split(lines.next().expect("header"), delim);
    let rows = lines
        .map(|l| {
            let fields = split(l, delim);
            assert_eq!(fields.len(), header.len(), "{l}");
            header.iter().cloned().zip(fields).collect()
        })
        .collect();
    (header, rows)
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    for d in Dialect::ALL {
        let opts = ExportOptions::demo(d);
        let (a, sa) = export(&spec(800, 7), &opts);
        let (b, sb) = export(&spec(800, 7), &opts);
        assert_eq!(sa, sb);
        assert!(a == b, "{d:?}: same seed gave different bytes");
        let (c, _) = export(&spec(800, 8), &opts);
        assert!(a != c, "{d:?}: another seed gave the same bytes");
        assert_eq!(sa.bytes, a.len() as u64);
        let (va, _) = visits(&spec(800, 7), &opts);
        let (vb, _) = visits(&spec(800, 7), &opts);
        assert!(va == vb);
    }
}

#[test]
fn headers_are_as_specified() {
    let expected = [
        (
            Dialect::DmsSemicolon1252,
            "Kundennummer;Anrede;Vorname;Nachname;Firma;Straße;PLZ;Ort;E-Mail;Telefon;Geburtsdatum;Einwilligung E-Mail;Einwilligung Post;Einwilligung Telefon;FIN;Marke;Modell;Erstzulassung;Letzter Service;km-Stand;Nächste HU;Garantieende",
        ),
        (
            Dialect::DmsCommaUtf8Bom,
            "Customer No,Salutation,First Name,Last Name,Company,Street,House No,Postcode,City,Email,Phone,Date of Birth,Email Consent,Post Consent,Phone Consent,VIN,Make,Model,First Registration,Last Service Date,Mileage,Next Inspection,Warranty End",
        ),
        (
            Dialect::DmsTab,
            "KdNr\tAnrede\tVorname\tName\tFirma\tStrasse\tPLZ\tOrt\tEMail\tTel\tGebDat\tEW_Mail\tEW_Post\tEW_Tel\tFIN\tFabrikat\tTyp\tEZ\tLetzteWS\tKM\tHU\tGarEnde",
        ),
    ];
    for (d, header) in expected {
        let (bytes, _) = export(&spec(5, 1), &ExportOptions::demo(d));
        assert_eq!(
            bytes.starts_with(b"\xEF\xBB\xBF"),
            d == Dialect::DmsCommaUtf8Bom
        );
        let text = text(&bytes, d);
        assert_eq!(text.split(d.line_end()).next(), Some(header));
        assert!(text.ends_with(d.line_end()));
        if d == Dialect::DmsTab {
            assert!(!text.contains('\r'));
        }
    }
    let (bytes, _) = visits(&spec(5, 1), &ExportOptions::demo(Dialect::DmsSemicolon1252));
    assert!(text(&bytes, Dialect::DmsSemicolon1252)
        .starts_with("Kundennummer;FIN;Auftragsdatum;Kilometerstand;Auftragsart\r\n"));
}

#[test]
fn windows_1252_round_trips_umlauts() {
    let opts = ExportOptions::demo(Dialect::DmsSemicolon1252);
    let (bytes, _) = export(&spec(3000, 3), &opts);
    // Real single-byte umlauts, not UTF-8 sequences or numeric character references.
    assert!(bytes.contains(&0xFC), "no 'ü' byte");
    assert!(bytes.contains(&0xDF), "no 'ß' byte");
    assert!(
        !bytes.windows(2).any(|w| w == b"\xC3\xBC"),
        "UTF-8 in a Windows-1252 file"
    );
    assert!(!bytes.windows(2).any(|w| w == b"&#"));
    let text = text(&bytes, Dialect::DmsSemicolon1252);
    for word in ["Müller", "straße", "München", "Nächste HU"] {
        assert!(text.contains(word), "{word} missing");
    }
    // Every table string survives the trip.
    let truth: Vec<Record> = records(&spec(3000, 3), &opts, as_of()).collect();
    for r in truth.iter().take(500) {
        assert!(
            text.contains(&r.customer.last_name),
            "{}",
            r.customer.last_name
        );
        assert!(text.contains(&r.customer.address.city));
    }
}

#[test]
fn model_codes_are_vin_characters() {
    for m in crate::tables::MODELS {
        assert!(
            m.code.bytes().all(|b| crate::vin::VIN_CHARS.contains(&b)),
            "{}",
            m.name
        );
    }
}

#[test]
fn every_table_string_is_windows_1252() {
    use crate::tables::*;
    let mut all: Vec<&str> = Vec::new();
    all.extend(
        MALE_FIRST
            .iter()
            .chain(FEMALE_FIRST)
            .chain(LAST)
            .chain(STREETS)
            .chain(BUSINESS_STREETS),
    );
    all.extend(COMPANIES.iter().map(|c| c.0));
    all.extend(COMPANY_WORDS);
    for r in REGIONS {
        all.extend([r.city, r.dealer]);
        all.extend(r.towns.iter().map(|t| t.0));
    }
    for s in all {
        let (_, _, unmappable) = encoding_rs::WINDOWS_1252.encode(s);
        assert!(!unmappable, "{s} is not Windows-1252");
    }
}

#[test]
fn clean_exports_have_only_valid_unique_vins_and_consistent_vehicles() {
    for d in Dialect::ALL {
        let opts = ExportOptions::clean(d);
        let (bytes, stats) = export(&spec(4000, 11), &opts);
        assert_eq!(stats.bad_rows, 0);
        let cols = d.customer_columns();
        let vin_col = cols
            .iter()
            .find(|c| c.1 == ImportField::Vin)
            .expect("vin")
            .0;
        let (_, rows) = table(&bytes, d);
        assert_eq!(rows.len() as u64, stats.rows);
        let mut vins = HashSet::new();
        for row in &rows {
            let vin = &row[vin_col];
            if vin.is_empty() {
                continue;
            }
            assert!(is_valid_vin(vin), "{vin}");
            assert!(vin.starts_with("WNW") || vin.starts_with("WNV"), "{vin}");
            vins.insert(vin.clone());
        }
        assert_eq!(vins.len() as u64, stats.vehicles, "{d:?}: VINs repeat");
    }
}

#[test]
fn vehicle_dates_follow_the_rules() {
    let as_of = as_of();
    let opts = ExportOptions::clean(Dialect::DmsSemicolon1252);
    let mut vehicles = 0;
    let mut stale_or_missing_hu = 0;
    for r in records(&spec(5000, 5), &opts, as_of) {
        for v in &r.vehicles {
            vehicles += 1;
            let fr = v.first_registration.expect("first registration");
            assert!(fr.year() >= 2008 && fr <= as_of, "{fr}");
            assert!(crate::models().any(|m| m == v.model));
            if let Some(ls) = v.last_service_date {
                assert!(
                    ls <= as_of && ls.days() >= as_of.days() - 730 && ls > fr,
                    "{ls}"
                );
                let km = f64::from(v.last_service_km.expect("km with service date"));
                let years = f64::from(ls.days() - fr.days()) / 365.25;
                assert!(
                    km >= years * 3_900.0 && km <= years * 40_100.0,
                    "{km} km in {years} years"
                );
            }
            match v.next_inspection {
                Some(hu) => {
                    // On the 36 + 24k month grid from first registration.
                    let fr_days = fr.days();
                    assert!(
                        (0..12).any(|k| hu_date(fr_days, k) == hu.days()),
                        "{hu} vs {fr}"
                    );
                    if hu < as_of {
                        stale_or_missing_hu += 1;
                    }
                }
                None => stale_or_missing_hu += 1,
            }
            let w = v.warranty_end.map(|w| w.days());
            if let Some(w) = w {
                assert!(
                    (2..=6).any(|y| add_months(fr.days(), 12 * y) == w),
                    "warranty"
                );
            }
        }
    }
    assert!(vehicles > 5000);
    let share = f64::from(stale_or_missing_hu) / f64::from(vehicles);
    assert!((0.05..0.25).contains(&share), "{share}");
}

#[test]
fn duplicates_and_fleets_come_at_the_requested_rates() {
    let mut opts = ExportOptions::clean(Dialect::DmsCommaUtf8Bom);
    opts.duplicate_rate = 0.05;
    opts.fleet_rate = 0.5;
    let n = 20_000;
    let (_, stats) = export(&spec(n, 21), &opts);
    let dup = stats.duplicates as f64 / n as f64;
    assert!((0.04..0.06).contains(&dup), "duplicates {dup}");
    let households = stats.households as f64 / n as f64;
    assert!(
        (0.015..0.035).contains(&households),
        "households {households}"
    );
    // A tenth of the non-duplicate customers are companies, half of those fleets.
    let fleets = stats.fleets as f64 / n as f64;
    assert!((0.035..0.06).contains(&fleets), "fleets {fleets}");
    assert_eq!(stats.customers, n as u64);

    opts.duplicate_rate = 0.0;
    opts.fleet_rate = 0.0;
    let (_, stats) = export(&spec(2000, 21), &opts);
    assert_eq!(
        (stats.duplicates, stats.households, stats.fleets),
        (0, 0, 0)
    );
}

#[test]
fn duplicates_are_near_never_exact_and_keep_a_link() {
    let mut opts = ExportOptions::clean(Dialect::DmsSemicolon1252);
    opts.duplicate_rate = 0.1;
    let all: Vec<Record> = records(&spec(5000, 9), &opts, as_of()).collect();
    let by_no: HashMap<&str, &Record> = all
        .iter()
        .map(|r| (r.customer.customer_no.as_str(), r))
        .collect();
    let (bytes, _) = export(&spec(5000, 9), &opts);
    let rows: HashMap<String, HashMap<String, String>> = table(&bytes, opts.dialect)
        .1
        .into_iter()
        .map(|r| (r["Kundennummer"].clone(), r))
        .collect();
    assert_eq!(by_no.len(), all.len(), "customer numbers repeat");
    let mut dups = 0;
    let mut kinds = HashSet::new();
    for r in &all {
        let RecordKind::Duplicate { of } = &r.kind else {
            continue;
        };
        dups += 1;
        let src = by_no[of.as_str()];
        assert_eq!(src.kind, RecordKind::Person);
        let (a, b) = (&r.customer, &src.customer);
        assert_ne!(a.customer_no, b.customer_no);
        // As written in the export, the two never agree on name and address.
        let (ra, rb) = (&rows[&a.customer_no], &rows[&b.customer_no]);
        let differs = ["Vorname", "Nachname", "Straße", "PLZ", "Ort"]
            .iter()
            .any(|c| ra[*c] != rb[*c]);
        assert!(differs, "exact copy: {ra:?}");
        let same_email = a.email.is_some() && a.email == b.email;
        let same_phone = a.phone.is_some() && a.phone == b.phone;
        let same_address = a.address.postcode == b.address.postcode;
        assert!(
            same_email || same_phone || same_address,
            "no link: {a:?} / {b:?}"
        );
        if a.last_name != b.last_name {
            kinds.insert("name");
        }
        if !same_address {
            kinds.insert("moved");
        }
        if a.address.street != b.address.street && same_address {
            kinds.insert("street");
        }
    }
    assert!(dups > 350, "{dups}");
    assert_eq!(kinds.len(), 3, "{kinds:?}");
}

#[test]
fn near_duplicate_spellings_show_up() {
    let mut opts = ExportOptions::clean(Dialect::DmsSemicolon1252);
    opts.duplicate_rate = 0.2;
    let all: Vec<Record> = records(&spec(8000, 4), &opts, as_of()).collect();
    let names: HashSet<&str> = all.iter().map(|r| r.customer.last_name.as_str()).collect();
    assert!(names.contains("Mueller") && names.contains("Müller"));
    assert!(names.contains("Weiss") || names.contains("Strauss") || names.contains("Gross"));
    let (bytes, _) = export(&spec(8000, 4), &opts);
    let text = text(&bytes, Dialect::DmsSemicolon1252);
    assert!(text.contains("str. "), "abbreviated street");
    assert!(text.contains("strasse "), "ss for ß");
    let spaced = regex_like_spaced_house_no(&text);
    assert!(spaced, "no house number like \"12 a\"");
}

fn regex_like_spaced_house_no(text: &str) -> bool {
    text.split(';').any(|f| {
        let b = f.as_bytes();
        b.len() > 3
            && b[b.len() - 1].is_ascii_alphabetic()
            && b[b.len() - 2] == b' '
            && b[b.len() - 3].is_ascii_digit()
    })
}

#[test]
fn records_match_the_export() {
    let opts = ExportOptions::demo(Dialect::DmsTab);
    let (bytes, stats) = export(&spec(1500, 13), &opts);
    let all: Vec<Record> = records(&spec(1500, 13), &opts, as_of()).collect();
    assert_eq!(all.len() as u64, stats.customers);
    let vehicles: usize = all.iter().map(|r| r.vehicles.len()).sum();
    assert_eq!(vehicles as u64, stats.vehicles);
    let rows: usize = all.iter().map(|r| r.vehicles.len().max(1)).sum();
    assert_eq!(rows as u64, stats.rows);
    let (_, table) = table(&bytes, Dialect::DmsTab);
    assert_eq!(table[0]["KdNr"], all[0].customer.customer_no);
    assert_eq!(
        table[0]["KdNr"].len(),
        8,
        "tab dialect pads customer numbers"
    );
    let fleets = all
        .iter()
        .filter(|r| r.kind == RecordKind::Fleet && r.vehicles.len() >= 2)
        .count();
    assert_eq!(fleets as u64, stats.fleets);
    for r in all.iter().filter(|r| r.kind == RecordKind::Fleet) {
        assert!((2..=40).contains(&r.vehicles.len()));
        assert!(r.customer.is_company && r.customer.company.is_some());
    }
}

#[test]
fn consents_vary_and_respect_no_consent_rate() {
    let mut opts = ExportOptions::clean(Dialect::DmsSemicolon1252);
    opts.no_consent_rate = 0.2;
    let all: Vec<Record> = records(&spec(10_000, 17), &opts, as_of()).collect();
    let none = all
        .iter()
        .filter(|r| r.consent_email != Some(true) && r.consent_post != Some(true))
        .count();
    let share = none as f64 / all.len() as f64;
    assert!((0.17..0.25).contains(&share), "{share}");
    assert!(all
        .iter()
        .any(|r| r.consent_post == Some(true) && r.consent_email != Some(true)));
    assert!(all
        .iter()
        .any(|r| r.consent_email == Some(true) && r.consent_post == Some(true)));
    for r in &all {
        if r.consent_email == Some(true) {
            assert!(r.customer.email.is_some(), "email consent without email");
        }
    }
    // The three spellings of the columns.
    assert_eq!(Dialect::DmsTab.name(), "dms-tab");
    let mut s = String::new();
    Dialect::DmsTab.push_consent(&mut s, Tri::Yes);
    Dialect::DmsSemicolon1252.push_consent(&mut s, Tri::No);
    Dialect::DmsCommaUtf8Bom.push_consent(&mut s, Tri::Yes);
    assert_eq!(s, "Jneinyes");
}

#[test]
fn personal_data_looks_german() {
    let opts = ExportOptions::clean(Dialect::DmsCommaUtf8Bom);
    let all: Vec<Record> = records(&spec(3000, 23), &opts, as_of()).collect();
    for r in &all {
        let c = &r.customer;
        assert_eq!(c.address.postcode.len(), 5);
        assert!(c.address.postcode.bytes().all(|b| b.is_ascii_digit()));
        if let Some(e) = &c.email {
            assert_eq!(e.matches('@').count(), 1, "{e}");
            assert!(e.is_ascii() && e == &e.to_lowercase(), "{e}");
        }
        if let Some(p) = &c.phone {
            assert!(
                p.starts_with('0') || p.starts_with("+49") || p.starts_with("(0"),
                "{p}"
            );
        }
        if let Some(b) = c.birth_date {
            assert!((1940..=2005).contains(&b.year()), "{b}");
        }
    }
    let in_city = all
        .iter()
        .filter(|r| r.customer.address.city == "München")
        .count();
    assert!(in_city > all.len() / 2);
    let city_codes_ok = all
        .iter()
        .filter(|r| r.customer.address.city == "München")
        .all(|r| r.customer.address.postcode.starts_with('8'));
    assert!(city_codes_ok);
    let domains: HashSet<&str> = all
        .iter()
        .filter_map(|r| r.customer.email.as_deref())
        .filter_map(|e| e.split('@').nth(1))
        .collect();
    for d in ["gmail.com", "web.de", "gmx.de", "t-online.de", "outlook.de"] {
        assert!(domains.contains(d), "{d}");
    }
    assert!(
        domains
            .iter()
            .any(|d| d.contains('-') || d.starts_with("stadtwerke")),
        "no company domain"
    );
}

#[test]
fn comma_dialect_quotes_company_names_with_commas() {
    let mut opts = ExportOptions::clean(Dialect::DmsCommaUtf8Bom);
    opts.fleet_rate = 0.0;
    let (bytes, _) = export(&spec(6000, 31), &opts);
    let text = text(&bytes, Dialect::DmsCommaUtf8Bom);
    assert!(
        text.contains(" & Partner GbR\""),
        "no quoted company with a comma"
    );
    let (_, rows) = table(&bytes, Dialect::DmsCommaUtf8Bom);
    assert!(rows.iter().any(|r| r["Company"].contains(", ")));
    assert!(rows.iter().any(|r| r["Company"].contains("\"Zur Mühle\"")));
}

#[test]
fn bad_rows_are_broken_and_counted() {
    for d in Dialect::ALL {
        let mut opts = ExportOptions::clean(d);
        opts.bad_row_rate = 0.05;
        let (bytes, stats) = export(&spec(4000, 41), &opts);
        let share = stats.bad_rows as f64 / stats.rows as f64;
        assert!((0.035..0.065).contains(&share), "{share}");
        let cols = d.customer_columns();
        let col = |f: ImportField| cols.iter().find(|c| c.1 == f).expect("column").0;
        let (_, rows) = table(&bytes, d);
        let mut broken = 0;
        for row in &rows {
            let vin = &row[col(ImportField::Vin)];
            let email = &row[col(ImportField::Email)];
            let bad_vin = !vin.is_empty() && !is_valid_vin(vin);
            let bad_email = !email.is_empty() && email.matches('@').count() != 1;
            let bad_date = [ImportField::FirstRegistration, ImportField::BirthDate]
                .iter()
                .any(|f| row[col(*f)].contains("31.02") || row[col(*f)].contains("02-31"));
            broken += usize::from(bad_vin || bad_email || bad_date);
        }
        assert_eq!(broken as u64, stats.bad_rows, "{d:?}");

        let (vbytes, vstats) = visits(&spec(1000, 41), &opts);
        assert!(vstats.bad_rows > 0);
        let (_, vrows) = table(&vbytes, d);
        assert_eq!(vrows.len() as u64, vstats.rows);
    }
}

#[test]
fn visits_agree_with_the_customer_export() {
    let opts = ExportOptions::clean(Dialect::DmsSemicolon1252);
    let all: Vec<Record> = records(&spec(1200, 51), &opts, as_of()).collect();
    let (bytes, stats) = visits(&spec(1200, 51), &opts);
    let (_, rows) = table(&bytes, Dialect::DmsSemicolon1252);
    assert_eq!(rows.len() as u64, stats.rows);
    assert!(stats.rows > stats.vehicles * 2, "{stats:?}");
    let parse_date = |s: &str| {
        let p: Vec<u32> = s.split('.').map(|x| x.parse().expect("number")).collect();
        Date::from_ymd(p[2] as i32, p[1], p[0]).expect("valid date")
    };
    let parse_km = |s: &str| s.replace('.', "").parse::<u32>().expect("km");
    let mut by_vin: HashMap<String, Vec<(Date, u32, String, String)>> = HashMap::new();
    for r in &rows {
        by_vin.entry(r["FIN"].clone()).or_default().push((
            parse_date(&r["Auftragsdatum"]),
            parse_km(&r["Kilometerstand"]),
            r["Auftragsart"].clone(),
            r["Kundennummer"].clone(),
        ));
    }
    let mut checked = 0;
    for r in &all {
        for v in &r.vehicles {
            let Some(history) = by_vin.get(&v.vin) else {
                continue;
            };
            assert!(history.iter().all(|h| h.3 == r.customer.customer_no));
            assert!(
                history
                    .windows(2)
                    .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1),
                "{history:?}"
            );
            assert!(history
                .iter()
                .all(|h| h.0 <= as_of() && Some(h.0) >= v.first_registration));
            if let Some(ls) = v.last_service_date {
                let last = history
                    .iter()
                    .rfind(|h| h.2 == "Inspektion")
                    .expect("inspection");
                assert_eq!((last.0, Some(last.1)), (ls, v.last_service_km));
                checked += 1;
            }
        }
    }
    assert!(checked > 500, "{checked}");
}

#[test]
fn demo_dealers_are_distinct_and_plausible() {
    let dealers = demo_dealers(40);
    let ids: HashSet<&str> = dealers.iter().map(|d| d.id.as_str()).collect();
    let names: HashSet<&str> = dealers.iter().map(|d| d.name.as_str()).collect();
    let seeds: HashSet<u64> = dealers.iter().map(|d| d.seed).collect();
    assert_eq!((ids.len(), names.len(), seeds.len()), (40, 40, 40));
    assert_eq!(dealers[0].id, "d001");
    assert_eq!(dealers[23].id, "d024");
    for d in &dealers {
        assert!((150..=1500).contains(&d.customers));
        assert_eq!(d.postcode_prefix.len(), 2);
        assert!(touchpoint_common::TenantId::new(d.id.clone()).is_ok());
    }
    let sizes: HashSet<usize> = dealers.iter().map(|d| d.customers).collect();
    assert!(sizes.len() > 30);
    assert_eq!(dealers[0].dialect(), Dialect::DmsSemicolon1252);
    assert_eq!(dealers[1].dialect(), Dialect::DmsCommaUtf8Bom);
    assert_eq!(dealers[2].dialect(), Dialect::DmsTab);
    assert_eq!(dealers[2].customer_file_name(), "kdstamm_d003.csv");
    // A dealer the tables do not know still gets postcodes of its prefix.
    let mut odd = spec(200, 3);
    odd.city = "Kleinkleckersdorf".into();
    odd.postcode_prefix = "07".into();
    let all: Vec<Record> = records(&odd, &ExportOptions::clean(Dialect::DmsTab), as_of()).collect();
    assert!(all
        .iter()
        .all(|r| r.customer.address.postcode.starts_with("07")));
}

#[test]
fn tenant_policy_toml_parses_and_round_trips() {
    for spec in demo_dealers(30) {
        let text = tenant_policy_toml(&spec);
        let policy: TenantPolicy = parse_toml(&format!("{}.toml", spec.id), &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(policy.tenant.id.as_str(), spec.id);
        assert_eq!(policy.tenant.name, spec.name);
        assert_eq!(policy.tenant.city, spec.city);
        if spec.dialect() == Dialect::DmsTab {
            assert_eq!(policy.import.delimiter.as_deref(), Some("\t"));
            assert_eq!(
                policy.import.columns.get("Name"),
                Some(&ImportField::LastName)
            );
            assert_eq!(
                policy.import.columns.get("KdNr"),
                Some(&ImportField::CustomerNo)
            );
            assert_eq!(
                policy.import.columns.get("AufKM"),
                Some(&ImportField::VisitKm)
            );
        } else {
            assert!(policy.import.columns.is_empty());
        }
    }
    let mut odd = spec(10, 1);
    odd.name = "Autohaus \"Zum Stern\" \\ Süd".into();
    let policy: TenantPolicy = parse_toml("x.toml", &tenant_policy_toml(&odd)).expect("escaped");
    assert_eq!(policy.tenant.name, odd.name);
}

/// A dealer whose exports are written in another dialect than its own DMS's
/// (`touchpoint-datagen --dialect comma`) gets a policy that reads that
/// dialect: a tab dealer's forced tab delimiter and short headers would
/// refuse a comma file.
#[test]
fn a_policy_and_file_name_in_another_dialect_follow_that_dialect() {
    let tab = demo_dealers(3).remove(2);
    assert_eq!(tab.dialect(), Dialect::DmsTab);
    let text = tenant_policy_toml_in(&tab, Dialect::DmsCommaUtf8Bom);
    let policy: TenantPolicy = parse_toml("d003.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(policy.tenant.id.as_str(), "d003");
    assert_eq!(policy.import.delimiter, None);
    assert!(policy.import.columns.is_empty());
    assert_eq!(
        tab.customer_file_name_in(Dialect::DmsCommaUtf8Bom),
        "customers_d003.csv"
    );
    assert_eq!(tab.customer_file_name(), "kdstamm_d003.csv");
    assert_eq!(
        tenant_policy_toml_in(&tab, tab.dialect()),
        tenant_policy_toml(&tab)
    );
}

fn policies_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `relative path -> text` of every `*.toml` in `policies/<sub>/`.
fn shipped(sub: &str) -> std::collections::BTreeMap<String, String> {
    let dir = policies_dir().join(sub);
    let mut files = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) == Some("toml") {
            let name = path.file_name().and_then(|n| n.to_str()).expect("name");
            files.insert(format!("{sub}/{name}"), read(&path));
        }
    }
    files
}

/// The shipped brand file and templates with the given dealer files.
fn with_shipped_brand(
    dealers: impl IntoIterator<Item = (String, String)>,
) -> std::collections::BTreeMap<String, String> {
    let mut files = shipped("templates");
    files.insert(
        "brand.toml".into(),
        read(&policies_dir().join("brand.toml")),
    );
    files.extend(dealers);
    files
}

fn validate(files: &std::collections::BTreeMap<String, String>) -> PolicySet {
    PolicySet::validate(files, "").unwrap_or_else(|errs| {
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        panic!("{}", shown.join("\n"))
    })
}

#[test]
fn generated_policies_validate_with_the_shipped_brand() {
    let dealers = demo_dealers(60);
    let set =
        validate(&with_shipped_brand(dealers.iter().map(|d| {
            (format!("dealers/{}.toml", d.id), tenant_policy_toml(d))
        })));
    assert_eq!(set.tenants.len(), 60);
    let opted = |service: &str| {
        set.tenants
            .values()
            .filter(|t| t.services.get(service).is_some_and(|s| s.opt_in))
            .count()
    };
    // Everyone sends service and inspection reminders; the rest varies.
    assert_eq!(opted("service_due"), 60);
    assert_eq!(opted("hu_reminder"), 60);
    assert!(
        (35..60).contains(&opted("birthday")),
        "{}",
        opted("birthday")
    );
    assert!((10..45).contains(&opted("warranty_extension")));
    assert!((15..45).contains(&opted("winter_check")));
    for (id, t) in &set.tenants {
        for (service, s) in &t.services {
            assert!(set.brand.services.contains_key(service), "{id}: {service}");
            assert_eq!(s.opt_in, s.monthly_budget.cents() > 0, "{id}: {service}");
        }
        assert!(t.sender.email.starts_with("service@") && t.sender.email.ends_with(".example"));
        assert!(t.sender.phone.starts_with("+49 "), "{}", t.sender.phone);
        assert_eq!(t.sender.postcode.len(), 5, "{id}");
        assert!(t.channels.enabled.contains(&Channel::Email));
        for slot in ["signature", "opening_hours", "local_offer", "logo"] {
            assert!(t.slots.contains_key(slot), "{id}: {slot}");
        }
    }
    let budgets: HashSet<i64> = set
        .tenants
        .values()
        .map(|t| t.services["service_due"].monthly_budget.cents())
        .collect();
    assert!(budgets.len() > 20, "budgets vary: {budgets:?}");
    let first = &set.tenants[&touchpoint_common::TenantId::new("d001").expect("id")];
    assert_eq!(first.sender.email, "service@autohaus-mueller.example");
    assert_eq!(first.sender.name, "Autohaus Müller GmbH");
}

/// The dealer files in `policies/dealers/` are this generator's output for
/// the 24 demo dealers. `TOUCHPOINT_REGENERATE=1 cargo test -p
/// touchpoint-datagen shipped_dealer` rewrites them after a change here.
#[test]
fn shipped_dealer_policies_are_the_generated_ones() {
    let dir = policies_dir().join("dealers");
    let regenerate = std::env::var_os("TOUCHPOINT_REGENERATE").is_some();
    let mut stale = Vec::new();
    for d in demo_dealers(24) {
        let path = dir.join(format!("{}.toml", d.id));
        let want = tenant_policy_toml(&d);
        if regenerate {
            std::fs::write(&path, &want).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "out of date (run TOUCHPOINT_REGENERATE=1 cargo test -p touchpoint-datagen shipped_dealer): {stale:#?}"
    );
}

#[test]
fn policy_files_in_the_repository_validate() {
    let dealers = shipped("dealers");
    let ids: Vec<String> = dealers
        .keys()
        .filter_map(|k| {
            Some(
                k.strip_prefix("dealers/")?
                    .strip_suffix(".toml")?
                    .to_string(),
            )
        })
        .collect();
    let expected: Vec<String> = demo_dealers(24).into_iter().map(|d| d.id).collect();
    assert_eq!(ids, expected);
    let set = validate(&with_shipped_brand(dealers));
    assert_eq!(set.tenants.len(), 24);
    assert_eq!(set.brand.brand.id, BRAND_ID);
    assert_eq!(set.brand.brand.name, "Nordwagen Deutschland");
    // Every service names a template, and every template is one a service names.
    let named: std::collections::BTreeSet<&str> = set
        .brand
        .services
        .values()
        .map(|s| s.template.as_str())
        .collect();
    let have: std::collections::BTreeSet<&str> = set.templates.keys().map(String::as_str).collect();
    assert_eq!(named, have);
    for (rel, text) in shipped("templates") {
        let table: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let keys: Vec<&str> = table.keys().map(String::as_str).collect();
        assert_eq!(keys, ["html", "letter", "subject", "text"], "{rel}");
    }
    let _: BrandPolicy = parse_toml("brand.toml", &read(&policies_dir().join("brand.toml")))
        .unwrap_or_else(|e| panic!("{e}"));

    let daemon: DaemonConfig = parse_toml(
        "touchpointd.toml",
        &read(&policies_dir().join("touchpointd.toml")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // The example documents the defaults; keep them in step.
    assert_eq!(daemon, DaemonConfig::default());
}

#[test]
fn commented_access_example_is_valid_when_uncommented() {
    let text = read(&policies_dir().join("touchpointd.toml"));
    // The example is the tail of the file from "# [[access]]" on; "##" lines explain it.
    let start = text
        .find("\n# [[access]]")
        .expect("commented [[access]] example");
    let uncommented: String = text[start..]
        .lines()
        .filter(|l| !l.starts_with("##"))
        .filter_map(|l| l.strip_prefix("# ").or_else(|| (l == "#").then_some("")))
        .map(|l| format!("{l}\n"))
        .collect();
    let config: DaemonConfig =
        parse_toml("access-example", &uncommented).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.access.len() >= 2);
}

// ----- the past quarter -------------------------------------------------------

#[test]
fn the_past_quarter_agrees_across_history_visits_and_customers() {
    use crate::history::{truth, CONTROL_PERCENT, QUARTER_DAYS, SERVICE};
    let d = Dialect::DmsSemicolon1252;
    let without = ExportOptions::clean(d);
    let with = ExportOptions {
        past_quarter: true,
        ..without
    };
    let s = spec(3000, 77);
    let mut h = Vec::new();
    write_history_export_as_of(&s, &without, as_of(), &mut h).expect("export");
    assert_eq!(table(&h, d).1.len(), 0, "no quarter unless asked for");

    let mut h = Vec::new();
    let stats = write_history_export_as_of(&s, &with, as_of(), &mut h).expect("export");
    let (header, sends) = table(&h, d);
    assert_eq!(
        header,
        [
            "Kundennr",
            "FIN",
            "Dienst",
            "Kanal",
            "Versanddatum",
            "Kosten"
        ]
    );
    assert_eq!(sends.len() as u64, stats.rows);
    assert!(stats.rows > 200, "{stats:?}");
    let parse_date = |s: &str| {
        let p: Vec<u32> = s.split('.').map(|x| x.parse().expect("number")).collect();
        Date::from_ymd(p[2] as i32, p[1], p[0]).expect("valid date")
    };
    let control = sends
        .iter()
        .filter(|r| r["Kanal"] == "Kontrollgruppe")
        .count();
    let share = control as f64 / sends.len() as f64;
    assert!(
        (share - f64::from(CONTROL_PERCENT) / 100.0).abs() < 0.04,
        "{share}"
    );

    // Every send lies in the quarter and is for a vehicle of its customer
    // whose service (by the export before the quarter) fell due then.
    let before: HashMap<String, (String, Option<Date>)> = records(&s, &without, as_of())
        .flat_map(|r| {
            r.vehicles
                .into_iter()
                .map(move |v| (v.vin.clone(), (v.customer_no.clone(), v.last_service_date)))
        })
        .collect();
    let after: HashMap<String, Option<Date>> = records(&s, &with, as_of())
        .flat_map(|r| r.vehicles.into_iter().map(|v| (v.vin, v.last_service_date)))
        .collect();
    let mut responded = 0;
    let grid = truth()
        .service(SERVICE)
        .expect("the quarter's service")
        .spec
        .grid;
    let mut leads = std::collections::BTreeSet::new();
    for r in &sends {
        let sent = parse_date(&r["Versanddatum"]);
        assert!(
            sent < as_of() && sent >= as_of().add_days(-QUARTER_DAYS),
            "{r:?}"
        );
        let (owner, last) = &before[&r["FIN"]];
        assert_eq!(
            owner.trim_start_matches('0'),
            r["Kundennr"].trim_start_matches('0')
        );
        let last = last.expect("serviced before");
        // Sent a lead of the brand's grid before the service fell due.
        let lead = last.add_months(12).days() - sent.days();
        assert!(grid.leads().any(|l| l as i32 == lead), "{lead}");
        leads.insert(lead);
        match after[&r["FIN"]] {
            Some(now) if now != last => {
                assert!(now > sent && now < as_of(), "{now} after {sent}");
                responded += 1;
            }
            _ => {}
        }
        assert_eq!(r["Kosten"].is_empty(), r["Kanal"] == "Kontrollgruppe");
    }
    // After its send, a vehicle of the draw has the drawn response as its
    // one service visit; tyre changes, repairs and HU visits go on.
    let (bytes, _) = visits(&s, &with);
    let (_, rows) = table(&bytes, d);
    let mut visits_after: HashMap<&str, Vec<Date>> = HashMap::new();
    let mut other_after: HashSet<&str> = HashSet::new();
    let sent_on: HashMap<&str, Date> = sends
        .iter()
        .map(|r| (r["FIN"].as_str(), parse_date(&r["Versanddatum"])))
        .collect();
    for r in &rows {
        let vin = r["FIN"].as_str();
        let day = parse_date(&r["Auftragsdatum"]);
        if sent_on.get(vin).is_some_and(|&sent| day > sent) {
            if r["Auftragsart"] == "Inspektion" {
                visits_after.entry(vin).or_default().push(day);
            } else {
                assert!(
                    ["Reifenwechsel", "Reparatur", "Garantie", "HU/AU"]
                        .contains(&r["Auftragsart"].as_str()),
                    "{r:?}"
                );
                other_after.insert(r["Auftragsart"].as_str());
            }
        }
    }
    // The quarter varies its lead over the grid, so there is something to learn.
    assert_eq!(leads.len(), grid.leads().count(), "{leads:?}");
    assert_eq!(visits_after.len(), responded);
    assert!(visits_after.values().all(|v| v.len() == 1));
    assert!(responded > 20, "{responded}");
    // Organic workshop visits go on after a send (which kinds depends on
    // the season the quarter falls in).
    assert!(
        other_after.contains("Reparatur") || other_after.contains("Reifenwechsel"),
        "{other_after:?}"
    );
}

use super::*;

fn map(headers: &[&str]) -> Vec<Option<ImportField>> {
    let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    map_headers(&headers, &BTreeMap::new())
}

#[test]
fn german_and_english_spellings_map_to_one_field() {
    let customer_no = [
        "Kunden-Nr.",
        "Kundennummer",
        "KdNr",
        "Customer No",
        "customer_id",
        " KUNDEN NR ",
    ];
    for h in customer_no {
        assert_eq!(default_field(&fold_key(h)), Some(F::CustomerNo), "{h}");
    }
    let cases: &[(&str, ImportField)] = &[
        ("Vorname", F::FirstName),
        ("First name", F::FirstName),
        ("Nachname", F::LastName),
        ("Last Name", F::LastName),
        ("Firma", F::Company),
        ("Company", F::Company),
        ("Straße", F::Street),
        ("Strasse", F::Street),
        ("Street", F::Street),
        ("Hausnummer", F::HouseNo),
        ("Hausnr.", F::HouseNo),
        ("PLZ", F::Postcode),
        ("Postleitzahl", F::Postcode),
        ("ZIP", F::Postcode),
        ("Postcode", F::Postcode),
        ("Ort", F::City),
        ("Stadt", F::City),
        ("City", F::City),
        ("E-Mail", F::Email),
        ("Email", F::Email),
        ("E-Mail 2", F::Email),
        ("Telefon", F::Phone),
        ("Tel.", F::Phone),
        ("Mobil", F::Phone),
        ("Phone", F::Phone),
        ("Geburtsdatum", F::BirthDate),
        ("Date of birth", F::BirthDate),
        ("FIN", F::Vin),
        ("Fahrgestellnummer", F::Vin),
        ("VIN", F::Vin),
        ("Marke", F::Make),
        ("Make", F::Make),
        ("Modell", F::Model),
        ("Model", F::Model),
        ("Erstzulassung", F::FirstRegistration),
        ("EZ", F::FirstRegistration),
        ("First registration", F::FirstRegistration),
        ("Letzter Service", F::LastServiceDate),
        ("Letzte Inspektion", F::LastServiceDate),
        ("km-Stand", F::LastServiceKm),
        ("Kilometerstand", F::LastServiceKm),
        ("Mileage", F::LastServiceKm),
        ("Nächste HU", F::NextInspection),
        ("HU fällig", F::NextInspection),
        ("HU faellig", F::NextInspection),
        ("Garantieende", F::WarrantyEnd),
        ("Garantie bis", F::WarrantyEnd),
        ("Warranty end", F::WarrantyEnd),
        ("Einwilligung E-Mail", F::ConsentEmail),
        ("Email consent", F::ConsentEmail),
        ("Einwilligung Post", F::ConsentPost),
        ("Einwilligung Telefon", F::ConsentPhone),
        ("Werkstattbesuch", F::VisitDate),
        ("Besuchsdatum", F::VisitDate),
        ("Visit date", F::VisitDate),
        ("Auftragsart", F::VisitKind),
        ("Visit type", F::VisitKind),
    ];
    for (h, f) in cases {
        assert_eq!(default_field(&fold_key(h)), Some(*f), "{h}");
    }
    assert_eq!(default_field(&fold_key("Bemerkung")), None);
    assert_eq!(default_field(&fold_key("Nr")), None);
}

#[test]
fn name_is_a_full_name_unless_a_first_name_column_exists() {
    assert_eq!(
        map(&["Kd-Nr", "Name"]),
        vec![Some(F::CustomerNo), Some(F::FullName)]
    );
    assert_eq!(
        map(&["Kd-Nr", "Name", "Vorname"]),
        vec![Some(F::CustomerNo), Some(F::LastName), Some(F::FirstName)]
    );
}

#[test]
fn mileage_in_a_visit_file_is_the_visit_mileage() {
    assert_eq!(
        map(&["FIN", "Besuchsdatum", "km-Stand"]),
        vec![Some(F::Vin), Some(F::VisitDate), Some(F::VisitKm)]
    );
    assert_eq!(
        map(&["FIN", "Letzter Service", "km-Stand"]),
        vec![
            Some(F::Vin),
            Some(F::LastServiceDate),
            Some(F::LastServiceKm)
        ]
    );
}

#[test]
fn tenant_mapping_wins_and_is_folded() {
    let headers: Vec<String> = ["Kd#", "Name", "Mail (privat)", "Notiz"]
        .iter()
        .map(|h| h.to_string())
        .collect();
    let mut over = BTreeMap::new();
    over.insert("KD".to_string(), F::CustomerNo);
    over.insert("name".to_string(), F::Company);
    over.insert("mail privat".to_string(), F::Email);
    over.insert("NOTIZ".to_string(), F::Ignore);
    assert_eq!(
        map_headers(&headers, &over),
        vec![
            Some(F::CustomerNo),
            Some(F::Company),
            Some(F::Email),
            Some(F::Ignore)
        ]
    );
}

#[test]
fn empty_headers_map_to_nothing() {
    assert_eq!(map(&["", " - "]), vec![None, None]);
}

//! How each dealer-management system writes its exports: headers, delimiter,
//! encoding, dates, numbers and yes/no values.

use touchpoint_common::domain::{ImportField, Salutation};

use crate::gen::{push_padded, push_u64, ymd, Tri};

/// The export formats of the dealer-management systems the generator imitates.
///
/// | | `DmsSemicolon1252` | `DmsCommaUtf8Bom` | `DmsTab` |
/// |---|---|---|---|
/// | delimiter | `;` | `,` | tab |
/// | encoding | Windows-1252 | UTF-8 with BOM | UTF-8 |
/// | line end | CRLF | CRLF | LF |
/// | headers | German | English | German short forms |
/// | dates | `31.12.2024` | `2024-12-31` | `31.12.24` |
/// | km | `45.300` | `45300` | `45300` |
/// | consent | `ja` / `nein` / empty | `yes` / `no` / empty | `J` / `N` / empty |
/// | salutation | `Herr` `Frau` `Firma` empty | `Mr` `Ms` `Mx` `Company` | `Hr.` `Fr.` `Fa.` empty |
/// | street | "Hauptstraße 12a" | street and house number apart | "Hauptstraße 12a" |
/// | customer no | `10482` | `10482` | `00010482` |
///
/// Fields holding the delimiter or a quote are quoted CSV-style (`"Müller, Schmidt & Partner GbR"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    DmsSemicolon1252,
    DmsCommaUtf8Bom,
    DmsTab,
}

const SEMICOLON_CUSTOMERS: &[(&str, ImportField)] = &[
    ("Kundennummer", ImportField::CustomerNo),
    ("Anrede", ImportField::Salutation),
    ("Vorname", ImportField::FirstName),
    ("Nachname", ImportField::LastName),
    ("Firma", ImportField::Company),
    ("Straße", ImportField::Street),
    ("PLZ", ImportField::Postcode),
    ("Ort", ImportField::City),
    ("E-Mail", ImportField::Email),
    ("Telefon", ImportField::Phone),
    ("Geburtsdatum", ImportField::BirthDate),
    ("Einwilligung E-Mail", ImportField::ConsentEmail),
    ("Einwilligung Post", ImportField::ConsentPost),
    ("Einwilligung Telefon", ImportField::ConsentPhone),
    ("FIN", ImportField::Vin),
    ("Marke", ImportField::Make),
    ("Modell", ImportField::Model),
    ("Erstzulassung", ImportField::FirstRegistration),
    ("Letzter Service", ImportField::LastServiceDate),
    ("km-Stand", ImportField::LastServiceKm),
    ("Nächste HU", ImportField::NextInspection),
    ("Garantieende", ImportField::WarrantyEnd),
];

const COMMA_CUSTOMERS: &[(&str, ImportField)] = &[
    ("Customer No", ImportField::CustomerNo),
    ("Salutation", ImportField::Salutation),
    ("First Name", ImportField::FirstName),
    ("Last Name", ImportField::LastName),
    ("Company", ImportField::Company),
    ("Street", ImportField::Street),
    ("House No", ImportField::HouseNo),
    ("Postcode", ImportField::Postcode),
    ("City", ImportField::City),
    ("Email", ImportField::Email),
    ("Phone", ImportField::Phone),
    ("Date of Birth", ImportField::BirthDate),
    ("Email Consent", ImportField::ConsentEmail),
    ("Post Consent", ImportField::ConsentPost),
    ("Phone Consent", ImportField::ConsentPhone),
    ("VIN", ImportField::Vin),
    ("Make", ImportField::Make),
    ("Model", ImportField::Model),
    ("First Registration", ImportField::FirstRegistration),
    ("Last Service Date", ImportField::LastServiceDate),
    ("Mileage", ImportField::LastServiceKm),
    ("Next Inspection", ImportField::NextInspection),
    ("Warranty End", ImportField::WarrantyEnd),
];

const TAB_CUSTOMERS: &[(&str, ImportField)] = &[
    ("KdNr", ImportField::CustomerNo),
    ("Anrede", ImportField::Salutation),
    ("Vorname", ImportField::FirstName),
    ("Name", ImportField::LastName),
    ("Firma", ImportField::Company),
    ("Strasse", ImportField::Street),
    ("PLZ", ImportField::Postcode),
    ("Ort", ImportField::City),
    ("EMail", ImportField::Email),
    ("Tel", ImportField::Phone),
    ("GebDat", ImportField::BirthDate),
    ("EW_Mail", ImportField::ConsentEmail),
    ("EW_Post", ImportField::ConsentPost),
    ("EW_Tel", ImportField::ConsentPhone),
    ("FIN", ImportField::Vin),
    ("Fabrikat", ImportField::Make),
    ("Typ", ImportField::Model),
    ("EZ", ImportField::FirstRegistration),
    ("LetzteWS", ImportField::LastServiceDate),
    ("KM", ImportField::LastServiceKm),
    ("HU", ImportField::NextInspection),
    ("GarEnde", ImportField::WarrantyEnd),
];

const SEMICOLON_VISITS: &[(&str, ImportField)] = &[
    ("Kundennummer", ImportField::CustomerNo),
    ("FIN", ImportField::Vin),
    ("Auftragsdatum", ImportField::VisitDate),
    ("Kilometerstand", ImportField::VisitKm),
    ("Auftragsart", ImportField::VisitKind),
];

const COMMA_VISITS: &[(&str, ImportField)] = &[
    ("Customer No", ImportField::CustomerNo),
    ("VIN", ImportField::Vin),
    ("Visit Date", ImportField::VisitDate),
    ("Visit Mileage", ImportField::VisitKm),
    ("Visit Type", ImportField::VisitKind),
];

const TAB_VISITS: &[(&str, ImportField)] = &[
    ("KdNr", ImportField::CustomerNo),
    ("FIN", ImportField::Vin),
    ("AufDat", ImportField::VisitDate),
    ("AufKM", ImportField::VisitKm),
    ("AufArt", ImportField::VisitKind),
];

impl Dialect {
    pub const ALL: [Dialect; 3] = [
        Dialect::DmsSemicolon1252,
        Dialect::DmsCommaUtf8Bom,
        Dialect::DmsTab,
    ];

    /// The dialect of the dealer at `index` (0-based) in [`crate::demo_dealers`]: they take turns,
    /// so d001 writes `;`/Windows-1252, d002 `,`/UTF-8 with BOM, d003 tabs, d004 `;` again.
    pub fn for_index(index: usize) -> Dialect {
        Self::ALL[index % Self::ALL.len()]
    }

    /// Short stable name for reports and file names.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::DmsSemicolon1252 => "dms-semicolon-1252",
            Dialect::DmsCommaUtf8Bom => "dms-comma-utf8-bom",
            Dialect::DmsTab => "dms-tab",
        }
    }

    pub fn delimiter(self) -> u8 {
        match self {
            Dialect::DmsSemicolon1252 => b';',
            Dialect::DmsCommaUtf8Bom => b',',
            Dialect::DmsTab => b'\t',
        }
    }

    /// WHATWG label of the encoding: "windows-1252" or "utf-8".
    pub fn encoding(self) -> &'static str {
        match self {
            Dialect::DmsSemicolon1252 => "windows-1252",
            _ => "utf-8",
        }
    }

    pub fn has_bom(self) -> bool {
        self == Dialect::DmsCommaUtf8Bom
    }

    pub fn line_end(self) -> &'static str {
        match self {
            Dialect::DmsTab => "\n",
            _ => "\r\n",
        }
    }

    /// True if dates are written year first (ISO); otherwise day first.
    pub fn year_first(self) -> bool {
        self == Dialect::DmsCommaUtf8Bom
    }

    /// Headers of the customer export, in order, with the canonical field each one carries.
    pub fn customer_columns(self) -> &'static [(&'static str, ImportField)] {
        match self {
            Dialect::DmsSemicolon1252 => SEMICOLON_CUSTOMERS,
            Dialect::DmsCommaUtf8Bom => COMMA_CUSTOMERS,
            Dialect::DmsTab => TAB_CUSTOMERS,
        }
    }

    /// Headers of the service-visits export, in order, with their canonical fields.
    pub fn visit_columns(self) -> &'static [(&'static str, ImportField)] {
        match self {
            Dialect::DmsSemicolon1252 => SEMICOLON_VISITS,
            Dialect::DmsCommaUtf8Bom => COMMA_VISITS,
            Dialect::DmsTab => TAB_VISITS,
        }
    }

    /// Appends `value` as one field, quoted if it holds the delimiter, a quote or a line break.
    pub(crate) fn push_text(self, line: &mut String, value: &str) {
        let delim = self.delimiter();
        if value
            .bytes()
            .any(|b| b == delim || b == b'"' || b == b'\n' || b == b'\r')
        {
            line.push('"');
            for c in value.chars() {
                if c == '"' {
                    line.push('"');
                }
                line.push(c);
            }
            line.push('"');
        } else {
            line.push_str(value);
        }
    }

    pub(crate) fn push_delim(self, line: &mut String) {
        line.push(char::from(self.delimiter()));
    }

    pub(crate) fn push_date(self, line: &mut String, day: Option<i32>) {
        if let Some(day) = day {
            let (y, m, d) = ymd(day);
            self.push_ymd(line, y, m, d);
        }
    }

    /// Writes any y/m/d, including impossible ones (for broken rows).
    pub(crate) fn push_ymd(self, line: &mut String, y: i32, m: u32, d: u32) {
        let y = y.max(0) as u64;
        match self {
            Dialect::DmsSemicolon1252 => {
                push_padded(line, u64::from(d), 2);
                line.push('.');
                push_padded(line, u64::from(m), 2);
                line.push('.');
                push_padded(line, y, 4);
            }
            Dialect::DmsCommaUtf8Bom => {
                push_padded(line, y, 4);
                line.push('-');
                push_padded(line, u64::from(m), 2);
                line.push('-');
                push_padded(line, u64::from(d), 2);
            }
            Dialect::DmsTab => {
                push_padded(line, u64::from(d), 2);
                line.push('.');
                push_padded(line, u64::from(m), 2);
                line.push('.');
                push_padded(line, y % 100, 2);
            }
        }
    }

    pub(crate) fn push_km(self, line: &mut String, km: Option<u32>) {
        let Some(km) = km else { return };
        if self == Dialect::DmsSemicolon1252 && km >= 1000 {
            // German thousands separator: 45.300, 1.203.400
            if km >= 1_000_000 {
                push_u64(line, u64::from(km / 1_000_000));
                line.push('.');
                push_padded(line, u64::from(km / 1000 % 1000), 3);
            } else {
                push_u64(line, u64::from(km / 1000));
            }
            line.push('.');
            push_padded(line, u64::from(km % 1000), 3);
        } else {
            push_u64(line, u64::from(km));
        }
    }

    pub(crate) fn push_consent(self, line: &mut String, c: Tri) {
        let s = match (self, c) {
            (_, Tri::Unknown) => "",
            (Dialect::DmsSemicolon1252, Tri::Yes) => "ja",
            (Dialect::DmsSemicolon1252, Tri::No) => "nein",
            (Dialect::DmsCommaUtf8Bom, Tri::Yes) => "yes",
            (Dialect::DmsCommaUtf8Bom, Tri::No) => "no",
            (Dialect::DmsTab, Tri::Yes) => "J",
            (Dialect::DmsTab, Tri::No) => "N",
        };
        line.push_str(s);
    }

    pub(crate) fn push_salutation(self, line: &mut String, s: Salutation) {
        let s = match (self, s) {
            (_, Salutation::Unknown) => "",
            (Dialect::DmsSemicolon1252, Salutation::Mr) => "Herr",
            (Dialect::DmsSemicolon1252, Salutation::Ms) => "Frau",
            (Dialect::DmsSemicolon1252, Salutation::Company) => "Firma",
            (Dialect::DmsSemicolon1252, Salutation::Mx) => "",
            (Dialect::DmsCommaUtf8Bom, Salutation::Mr) => "Mr",
            (Dialect::DmsCommaUtf8Bom, Salutation::Ms) => "Ms",
            (Dialect::DmsCommaUtf8Bom, Salutation::Mx) => "Mx",
            (Dialect::DmsCommaUtf8Bom, Salutation::Company) => "Company",
            (Dialect::DmsTab, Salutation::Mr) => "Hr.",
            (Dialect::DmsTab, Salutation::Ms) => "Fr.",
            (Dialect::DmsTab, Salutation::Company) => "Fa.",
            (Dialect::DmsTab, Salutation::Mx) => "",
        };
        line.push_str(s);
    }

    pub(crate) fn push_customer_no(self, line: &mut String, no: u64) {
        if self == Dialect::DmsTab {
            push_padded(line, no, 8);
        } else {
            push_u64(line, no);
        }
    }

    pub(crate) fn push_header(self, line: &mut String, columns: &[(&str, ImportField)]) {
        for (i, (name, _)) in columns.iter().enumerate() {
            if i > 0 {
                self.push_delim(line);
            }
            self.push_text(line, name);
        }
        line.push_str(self.line_end());
    }
}

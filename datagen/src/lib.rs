//! Deterministic, realistic German dealer data for the demo, the end-to-end
//! tests and the benchmarks: customer/vehicle exports and service visits in
//! the dialects real dealer-management systems write.
//!
//! Everything is derived from a seed, so the same spec gives the same bytes,
//! and rows are streamed to the writer, never held in memory.

use std::io::{self, Write};

use chrono::{Datelike, Duration, NaiveDate};

/// One dealer of the demo brand.
#[derive(Clone, Debug)]
pub struct DealerSpec {
    pub id: String,
    pub name: String,
    pub city: String,
    pub postcode_prefix: String,
    pub customers: usize,
    pub seed: u64,
}

/// The export format of a dealer-management system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// `;`, Windows-1252, German headers, `31.12.2024`, km as `45.300`.
    DmsSemicolon1252,
    /// `,`, UTF-8 with BOM, English headers, ISO dates, quoted commas.
    DmsCommaUtf8Bom,
    /// Tab, UTF-8, short German headers, `31.12.24`.
    DmsTab,
}

impl Dialect {
    pub fn for_index(i: usize) -> Self {
        match i % 3 {
            0 => Dialect::DmsSemicolon1252,
            1 => Dialect::DmsCommaUtf8Bom,
            _ => Dialect::DmsTab,
        }
    }

    fn delimiter(self) -> u8 {
        match self {
            Dialect::DmsSemicolon1252 => b';',
            Dialect::DmsCommaUtf8Bom => b',',
            Dialect::DmsTab => b'\t',
        }
    }
}

#[derive(Clone, Debug)]
pub struct ExportOptions {
    pub dialect: Dialect,
    /// Share of customers that reappear as a near-duplicate under another number.
    pub duplicate_rate: f64,
    /// Share of customers that are companies with 2 to 40 vehicles.
    pub fleet_rate: f64,
    /// Share of customers without any consent.
    pub no_consent_rate: f64,
    /// Share of rows with a broken field (email, VIN or date).
    pub bad_row_rate: f64,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            dialect: Dialect::DmsSemicolon1252,
            duplicate_rate: 0.04,
            fleet_rate: 0.05,
            no_consent_rate: 0.15,
            bad_row_rate: 0.0,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportStats {
    pub rows: u64,
    pub customers: u64,
    pub vehicles: u64,
    pub duplicates: u64,
    pub fleets: u64,
    pub bad_rows: u64,
    pub bytes: u64,
}

const FIRST_M: &[&str] = &[
    "Jürgen", "Hans", "Peter", "Michael", "Thomas", "Andreas", "Stefan", "Björn", "Sören", "Jörg",
    "Klaus", "Wolfgang", "Uwe", "Frank", "Markus", "Tobias", "Lukas", "Jonas", "Mehmet", "Özgür",
];
const FIRST_F: &[&str] = &[
    "Anna", "Sabine", "Ursula", "Petra", "Monika", "Jürgina", "Käthe", "Bärbel", "Julia", "Lena",
    "Sophie", "Marie", "Hannah", "Ayşe", "Renate", "Gisela", "Christine", "Andrea", "Claudia", "Jana",
];
const LAST: &[&str] = &[
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
    "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann",
    "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Weiß", "Groß",
    "Jäger", "Köhler", "Özdemir", "Yılmaz", "Kowalski", "Lehmann", "Krause", "Böhm", "Fuß",
];
const STREETS: &[&str] = &[
    "Hauptstraße", "Schulstraße", "Gartenstraße", "Bahnhofstraße", "Dorfstraße", "Bergstraße",
    "Birkenweg", "Lindenallee", "Am Mühlbach", "Kirchplatz", "Goethestraße", "Schillerstraße",
    "Ringstraße", "Waldweg", "Rosenstraße", "Friedhofsweg", "Industriestraße", "Am Anger",
];
const COMPANIES: &[&str] = &[
    "Pflegedienst Sonnenschein GmbH", "Stadtwerke Nord GmbH", "Bäckerei Groß KG",
    "Müller, Schmidt & Partner GbR", "Elektro Köhler e.K.", "Gärtnerei Blümel OHG",
    "Hausmeisterservice Fuß UG (haftungsbeschränkt)", "Kurierdienst Schnell AG",
];
const DOMAINS: &[&str] = &["gmail.com", "web.de", "gmx.de", "t-online.de", "outlook.de", "posteo.de"];
const MODELS: &[&str] = &["Fjord", "Kappa", "Ostra Kombi", "E-Lumen", "Fjord Cross", "Vela"];
const VIN_CHARS: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789";

/// `n` plausible dealers across German cities, with varying sizes.
pub fn demo_dealers(n: usize) -> Vec<DealerSpec> {
    const CITIES: &[(&str, &str, &str)] = &[
        ("München", "80", "Autohaus Huber"),
        ("Hamburg", "20", "Autohaus Hansen"),
        ("Berlin", "10", "Autohaus Spree"),
        ("Köln", "50", "Autohaus am Dom"),
        ("Frankfurt am Main", "60", "Autohaus Main"),
        ("Stuttgart", "70", "Autohaus Schwaben"),
        ("Düsseldorf", "40", "Autohaus Rhein"),
        ("Leipzig", "04", "Autohaus Sachsen"),
        ("Dortmund", "44", "Autohaus Westfalen"),
        ("Essen", "45", "Autohaus Ruhr"),
        ("Bremen", "28", "Autohaus Weser"),
        ("Dresden", "01", "Autohaus Elbflorenz"),
        ("Hannover", "30", "Autohaus Leine"),
        ("Nürnberg", "90", "Autohaus Franken"),
        ("Duisburg", "47", "Autohaus Niederrhein"),
        ("Bochum", "44", "Autohaus Ruhrtal"),
        ("Wuppertal", "42", "Autohaus Schwebebahn"),
        ("Bielefeld", "33", "Autohaus Teutoburg"),
        ("Bonn", "53", "Autohaus Siebengebirge"),
        ("Münster", "48", "Autohaus Prinzipalmarkt"),
        ("Mannheim", "68", "Autohaus Kurpfalz"),
        ("Karlsruhe", "76", "Autohaus Fächerstadt"),
        ("Augsburg", "86", "Autohaus Fugger"),
        ("Würzburg", "97", "Autohaus Mainfranken"),
        ("Regensburg", "93", "Autohaus Donau"),
        ("Göttingen", "37", "Autohaus Gänseliesel"),
        ("Lübeck", "23", "Autohaus Trave"),
        ("Saarbrücken", "66", "Autohaus Saar"),
    ];
    (0..n)
        .map(|i| {
            let (city, plz, name) = CITIES[i % CITIES.len()];
            let owner = LAST[(i * 7) % LAST.len()];
            let suffix = if i >= CITIES.len() { format!(" {}", i / CITIES.len() + 1) } else { String::new() };
            DealerSpec {
                id: format!("d{:03}", i + 1),
                name: format!("{name} {owner} GmbH{suffix}"),
                city: city.to_string(),
                postcode_prefix: plz.to_string(),
                customers: 150 + (i * 389) % 1350,
                seed: 1000 + i as u64,
            }
        })
        .collect()
}

/// A dealer's policy file (`policies/dealers/<id>.toml`).
pub fn tenant_policy_toml(spec: &DealerSpec) -> String {
    format!(
        "# Dealer policy of {name}. Schema: common::config::TenantPolicy.\n\n[tenant]\n# Tenant id: the file must be named <id>.toml.\nid = \"{id}\"\n# Shown in the console and in reports.\nname = \"{name}\"\ncity = \"{city}\"\n\n[import]\n# Column mapping: header as written in this dealer's export -> canonical field.\n# The built-in defaults know common German and English headers.\n# [import.columns]\n# \"Kd-Nr.\" = \"customer_no\"\n",
        id = spec.id,
        name = spec.name,
        city = spec.city
    )
}

struct Gen {
    rng: fastrand::Rng,
    today: NaiveDate,
}

struct Person {
    no: String,
    salutation: &'static str,
    first: String,
    last: String,
    company: Option<String>,
    street: String,
    house: String,
    postcode: String,
    city: String,
    email: String,
    phone: String,
    birth: Option<NaiveDate>,
    consent_email: Option<bool>,
    consent_post: Option<bool>,
}

struct Car {
    vin: String,
    model: &'static str,
    first_reg: NaiveDate,
    last_service: Option<NaiveDate>,
    km: u32,
    next_hu: Option<NaiveDate>,
    warranty_end: NaiveDate,
}

fn translit(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            'ä' | 'Ä' => out.push_str("ae"),
            'ö' | 'Ö' => out.push_str("oe"),
            'ü' | 'Ü' => out.push_str("ue"),
            'ß' => out.push_str("ss"),
            'ş' => out.push('s'),
            'ı' => out.push('i'),
            c if c.is_ascii_alphanumeric() => out.push(c.to_ascii_lowercase()),
            _ => {}
        }
    }
    out
}

impl Gen {
    fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[self.rng.usize(..xs.len())]
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.f64() < p
    }

    fn vin(&mut self) -> String {
        let mut v = String::with_capacity(17);
        v.push_str("WNW");
        for _ in 0..14 {
            v.push(VIN_CHARS[self.rng.usize(..VIN_CHARS.len())] as char);
        }
        v
    }

    fn person(&mut self, spec: &DealerSpec, no: usize, company: bool, opts: &ExportOptions) -> Person {
        let female = self.rng.bool();
        let first = if female { self.pick(FIRST_F) } else { self.pick(FIRST_M) }.to_string();
        let last = self.pick(LAST).to_string();
        let company = company.then(|| self.pick(COMPANIES).to_string());
        let domain = match &company {
            Some(c) => format!("{}.de", translit(c.split_whitespace().next().unwrap_or("firma"))),
            None => self.pick(DOMAINS).to_string(),
        };
        let email = match &company {
            Some(_) => format!("fuhrpark@{domain}"),
            None => format!("{}.{}{}@{domain}", translit(&first), translit(&last), self.rng.u32(1..99)),
        };
        let consent = !self.chance(opts.no_consent_rate);
        let age = self.rng.i64(18 * 365..85 * 365);
        Person {
            no: format!("{}{:06}", spec.id.to_uppercase(), no),
            salutation: if company.is_some() { "Firma" } else if female { "Frau" } else { "Herr" },
            first: if company.is_some() { String::new() } else { first },
            last: if company.is_some() { String::new() } else { last },
            street: self.pick(STREETS).to_string(),
            house: format!("{}{}", self.rng.u32(1..180), if self.chance(0.15) { "a" } else { "" }),
            postcode: format!("{}{:03}", spec.postcode_prefix, self.rng.u32(0..1000)),
            city: spec.city.clone(),
            email,
            phone: format!("0{}{} {}", spec.postcode_prefix.trim_start_matches('0'), self.rng.u32(1..9), self.rng.u32(100_000..9_999_999)),
            birth: if company.is_some() { None } else { Some(self.today - Duration::days(age)) },
            consent_email: if consent { Some(self.rng.f64() < 0.8) } else { None },
            consent_post: if consent { Some(true) } else { None },
            company,
        }
    }

    fn car(&mut self) -> Car {
        let age_days = self.rng.i64(30..16 * 365);
        let first_reg = self.today - Duration::days(age_days);
        let km_per_year = self.rng.u32(9_000..24_000);
        let km = (age_days as u64 * km_per_year as u64 / 365) as u32;
        let last_service = (age_days > 200).then(|| self.today - Duration::days(self.rng.i64(10..700)));
        let mut hu = add_months(first_reg, 36);
        while hu < self.today {
            hu = add_months(hu, 24);
        }
        Car {
            vin: self.vin(),
            model: self.pick(MODELS),
            first_reg,
            last_service,
            km,
            next_hu: (!self.chance(0.1)).then_some(hu),
            warranty_end: add_months(first_reg, if self.chance(0.3) { 36 } else { 24 } + if self.chance(0.1) { 24 } else { 0 }),
        }
    }
}

fn add_months(d: NaiveDate, months: u32) -> NaiveDate {
    d.checked_add_months(chrono::Months::new(months)).unwrap_or(d)
}

/// Writes text in the dialect's encoding and counts bytes.
struct Out<W: Write> {
    w: W,
    dialect: Dialect,
    bytes: u64,
    line: String,
}

impl<W: Write> Out<W> {
    fn field(&mut self, s: &str) {
        if !self.line.is_empty() {
            self.line.push(self.dialect.delimiter() as char);
        }
        let d = self.dialect.delimiter() as char;
        if s.contains(d) || s.contains('"') || s.contains('\n') {
            self.line.push('"');
            self.line.push_str(&s.replace('"', "\"\""));
            self.line.push('"');
        } else {
            self.line.push_str(s);
        }
    }

    fn end(&mut self) -> io::Result<()> {
        self.line.push_str("\r\n");
        let bytes: std::borrow::Cow<[u8]> = match self.dialect {
            Dialect::DmsSemicolon1252 => encoding_rs::WINDOWS_1252.encode(&self.line).0,
            _ => std::borrow::Cow::Borrowed(self.line.as_bytes()),
        };
        self.w.write_all(&bytes)?;
        self.bytes += bytes.len() as u64;
        self.line.clear();
        Ok(())
    }
}

fn date(d: Option<NaiveDate>, dialect: Dialect) -> String {
    match d {
        None => String::new(),
        Some(d) => match dialect {
            Dialect::DmsSemicolon1252 => d.format("%d.%m.%Y").to_string(),
            Dialect::DmsCommaUtf8Bom => d.format("%Y-%m-%d").to_string(),
            Dialect::DmsTab => d.format("%d.%m.%y").to_string(),
        },
    }
}

fn km(n: u32, dialect: Dialect) -> String {
    match dialect {
        Dialect::DmsSemicolon1252 if n >= 1000 => format!("{}.{:03}", n / 1000, n % 1000),
        _ => n.to_string(),
    }
}

fn yes_no(v: Option<bool>, dialect: Dialect) -> &'static str {
    match (v, dialect) {
        (None, _) => "",
        (Some(true), Dialect::DmsCommaUtf8Bom) => "yes",
        (Some(false), Dialect::DmsCommaUtf8Bom) => "no",
        (Some(true), _) => "ja",
        (Some(false), _) => "nein",
    }
}

fn header(dialect: Dialect) -> &'static [&'static str] {
    match dialect {
        Dialect::DmsSemicolon1252 => &[
            "Kundennummer", "Anrede", "Vorname", "Nachname", "Firma", "Straße", "PLZ", "Ort", "E-Mail",
            "Telefon", "Geburtsdatum", "Einwilligung E-Mail", "Einwilligung Post", "FIN", "Marke",
            "Modell", "Erstzulassung", "Letzter Service", "km-Stand", "Nächste HU", "Garantieende",
        ],
        Dialect::DmsCommaUtf8Bom => &[
            "Customer No", "Salutation", "First Name", "Last Name", "Company", "Street", "House No",
            "Postcode", "City", "Email", "Phone", "Date of Birth", "Email Consent", "Post Consent", "VIN",
            "Make", "Model", "First Registration", "Last Service Date", "Mileage", "Next Inspection",
            "Warranty End",
        ],
        Dialect::DmsTab => &[
            "KdNr", "Anrede", "Vorname", "Name", "Firma", "Strasse", "PLZ", "Ort", "Mail", "Tel",
            "GebDat", "EW Mail", "EW Post", "FIN", "Marke", "Modell", "EZ", "Letzte Inspektion",
            "Kilometerstand", "HU", "Garantie bis",
        ],
    }
}

fn write_row<W: Write>(out: &mut Out<W>, p: &Person, car: Option<&Car>, bad: Option<u32>) -> io::Result<()> {
    let d = out.dialect;
    out.field(&p.no);
    out.field(p.salutation);
    out.field(&p.first);
    out.field(&p.last);
    out.field(p.company.as_deref().unwrap_or(""));
    if d == Dialect::DmsCommaUtf8Bom {
        out.field(&p.street);
        out.field(&p.house);
    } else {
        out.field(&format!("{} {}", p.street, p.house));
    }
    out.field(&p.postcode);
    out.field(&p.city);
    let email = if bad == Some(0) { p.email.replace('@', "@@") } else { p.email.clone() };
    out.field(&email);
    out.field(&p.phone);
    let birth = if bad == Some(2) { "31.02.1970".to_string() } else { date(p.birth, d) };
    out.field(&birth);
    out.field(yes_no(p.consent_email, d));
    out.field(yes_no(p.consent_post, d));
    match car {
        Some(c) => {
            let vin = if bad == Some(1) { c.vin[..12].to_string() } else { c.vin.clone() };
            out.field(&vin);
            out.field("Nordwagen");
            out.field(c.model);
            out.field(&date(Some(c.first_reg), d));
            out.field(&date(c.last_service, d));
            out.field(&km(c.km, d));
            out.field(&date(c.next_hu, d));
            out.field(&date(Some(c.warranty_end), d));
        }
        None => {
            for _ in 0..8 {
                out.field("");
            }
        }
    }
    out.end()
}

fn gen(spec: &DealerSpec) -> Gen {
    Gen { rng: fastrand::Rng::with_seed(spec.seed), today: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default() }
}

/// One combined customer + vehicle export: a row per vehicle with the
/// customer's columns repeated; customers without a vehicle get one row.
pub fn write_customer_export<W: Write>(spec: &DealerSpec, opts: &ExportOptions, w: W) -> io::Result<ExportStats> {
    let mut g = gen(spec);
    let mut out = Out { w, dialect: opts.dialect, bytes: 0, line: String::with_capacity(512) };
    let mut st = ExportStats::default();
    if opts.dialect == Dialect::DmsCommaUtf8Bom {
        out.w.write_all(b"\xEF\xBB\xBF")?;
        out.bytes += 3;
    }
    for h in header(opts.dialect) {
        out.field(h);
    }
    out.end()?;
    let mut no = 0usize;
    for _ in 0..spec.customers {
        no += 1;
        let fleet = g.chance(opts.fleet_rate);
        let p = g.person(spec, no, fleet, opts);
        let cars = if fleet { g.rng.usize(2..=40) } else if g.chance(0.1) { 0 } else if g.chance(0.12) { 2 } else { 1 };
        st.customers += 1;
        st.fleets += fleet as u64;
        let mut rows = 0;
        for _ in 0..cars.max(1) {
            let car = (cars > 0).then(|| g.car());
            let bad = g.chance(opts.bad_row_rate).then(|| g.rng.u32(0..3));
            write_row(&mut out, &p, car.as_ref(), bad)?;
            st.vehicles += car.is_some() as u64;
            st.bad_rows += bad.is_some() as u64;
            rows += 1;
        }
        st.rows += rows;
        if !fleet && g.chance(opts.duplicate_rate) {
            // The same person again under another customer number, written differently.
            no += 1;
            let mut d = Person { no: format!("{}{:06}", spec.id.to_uppercase(), no), ..p };
            match g.rng.u32(0..4) {
                0 => d.last = d.last.replace('ü', "ue").replace('ö', "oe").replace('ä', "ae").replace('ß', "ss"),
                1 => d.street = d.street.replace("straße", "str."),
                2 => d.house = d.house.replace('a', " a").to_uppercase(),
                _ => d.first = d.first.chars().take(d.first.chars().count().saturating_sub(1)).collect::<String>() + "e",
            }
            let car = g.car();
            write_row(&mut out, &d, Some(&car), None)?;
            st.duplicates += 1;
            st.customers += 1;
            st.vehicles += 1;
            st.rows += 1;
        }
    }
    out.w.flush()?;
    st.bytes = out.bytes;
    Ok(st)
}

/// Service visits of the same dealer (customer number, VIN, date, km, type),
/// in the dialect's format. Deterministic for the spec, independent of the
/// customer export's random stream except for the seed.
pub fn write_visits_export<W: Write>(spec: &DealerSpec, opts: &ExportOptions, w: W) -> io::Result<ExportStats> {
    // Replay the customer export's generation to get the same numbers and VINs.
    let mut g = gen(spec);
    let mut visits = fastrand::Rng::with_seed(spec.seed ^ 0x5157_5157);
    let mut out = Out { w, dialect: opts.dialect, bytes: 0, line: String::with_capacity(256) };
    let mut st = ExportStats::default();
    let heads: &[&str] = match opts.dialect {
        Dialect::DmsCommaUtf8Bom => &["Customer No", "VIN", "Visit Date", "Mileage", "Visit Type"],
        _ => &["Kundennummer", "FIN", "Besuchsdatum", "km-Stand", "Auftragsart"],
    };
    if opts.dialect == Dialect::DmsCommaUtf8Bom {
        out.w.write_all(b"\xEF\xBB\xBF")?;
    }
    for h in heads {
        out.field(h);
    }
    out.end()?;
    let kinds = ["Inspektion", "Ölwechsel", "HU/AU", "Reifenwechsel", "Garantiearbeit"];
    let mut no = 0usize;
    for _ in 0..spec.customers {
        no += 1;
        let fleet = g.chance(opts.fleet_rate);
        let p = g.person(spec, no, fleet, opts);
        let cars = if fleet { g.rng.usize(2..=40) } else if g.chance(0.1) { 0 } else if g.chance(0.12) { 2 } else { 1 };
        for _ in 0..cars.max(1) {
            let car = (cars > 0).then(|| g.car());
            let _ = g.chance(opts.bad_row_rate).then(|| g.rng.u32(0..3));
            if let Some(c) = car {
                let n = visits.usize(0..4);
                let age = (g.today - c.first_reg).num_days().max(1);
                for k in 0..n {
                    let day = c.first_reg + Duration::days(age * (k as i64 + 1) / (n as i64 + 1));
                    let kmv = (c.km as i64 * (k as i64 + 1) / (n as i64 + 1)) as u32;
                    out.field(&p.no);
                    out.field(&c.vin);
                    out.field(&date(Some(day), opts.dialect));
                    out.field(&km(kmv, opts.dialect));
                    out.field(kinds[visits.usize(..kinds.len())]);
                    out.end()?;
                    st.rows += 1;
                }
                st.vehicles += 1;
            }
        }
        st.customers += 1;
        if !fleet && g.chance(opts.duplicate_rate) {
            no += 1;
            let _ = g.rng.u32(0..4);
            let _ = g.car();
        }
    }
    out.w.flush()?;
    st.bytes = out.bytes;
    let _ = g.today.year();
    Ok(st)
}

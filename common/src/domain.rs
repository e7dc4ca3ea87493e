//! Domain records of one dealer's data room, and the reports the daemon gives
//! about them. Every type here is stored or sent through [`crate::codec`], so
//! enums only ever gain variants at the end.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Date, TenantId};

/// Milliseconds since the Unix epoch, UTC. Serialized as the number where
/// the format is binary (records, frames) and as RFC 3339 in UTC
/// (`2026-12-07T07:00:00+00:00`) where it is human-readable (`--json`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::clock::rfc3339::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::clock::rfc3339::deserialize(d).map(Timestamp)
    }
}

impl Timestamp {
    /// Domain time: the daemon's clock ([`crate::clock`]), which a
    /// rehearsal starts at a chosen moment.
    pub fn now() -> Self {
        Self(crate::clock::now_millis())
    }

    /// Wall time: when something really happened on this machine (audit
    /// lines), whatever moment the clock was started at.
    pub fn wall() -> Self {
        Self(crate::clock::wall_millis())
    }

    pub fn from_date(d: Date) -> Self {
        let secs = d
            .naive()
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp())
            .unwrap_or(0);
        Self(secs * 1000)
    }

    pub fn millis(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match chrono::DateTime::from_timestamp_millis(self.0) {
            Some(t) => write!(f, "{}", t.format("%Y-%m-%d %H:%M:%S UTC")),
            None => write!(f, "@{}ms", self.0),
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Post,
    Phone,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Post, Channel::Phone];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Post => "post",
            Channel::Phone => "phone",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Salutation {
    #[default]
    Unknown,
    /// Herr
    Mr,
    /// Frau
    Ms,
    /// Divers / neutral address
    Mx,
    /// Firma
    Company,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Address {
    /// Street name without the house number.
    pub street: String,
    /// House number as written, normalised to upper case without inner spaces ("12A").
    pub house_no: String,
    pub postcode: String,
    pub city: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
}

/// A customer as the dealer's system knows them, keyed by the dealer's own
/// customer number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Customer {
    pub customer_no: String,
    pub salutation: Salutation,
    pub first_name: String,
    pub last_name: String,
    /// Company name for business customers.
    pub company: Option<String>,
    pub is_company: bool,
    pub address: Address,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub birth_date: Option<Date>,
    /// ISO 639-1 language code, lower case.
    pub language: String,
}

impl Customer {
    /// The name as it would stand on an envelope.
    pub fn display_name(&self) -> String {
        match (&self.company, self.first_name.is_empty()) {
            (Some(c), _) if self.is_company => c.clone(),
            (_, true) => self.last_name.clone(),
            (_, false) => format!("{} {}", self.first_name, self.last_name),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Vehicle {
    /// 17-character vehicle identification number, upper case.
    pub vin: String,
    /// Customer number of the current holder.
    pub customer_no: String,
    pub make: String,
    pub model: String,
    pub first_registration: Option<Date>,
    pub last_service_date: Option<Date>,
    pub last_service_km: Option<u32>,
    pub next_inspection: Option<Date>,
    pub warranty_end: Option<Date>,
}

/// One statement of consent for one channel. The latest statement (by `at`) wins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub customer_no: String,
    pub channel: Channel,
    pub granted: bool,
    /// Where the statement came from: "dms-import:kunden.csv", "unsubscribe", "form:2024-05".
    pub source: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceVisit {
    pub vin: String,
    pub customer_no: String,
    pub date: Date,
    pub km: Option<u32>,
    /// Kind of visit as the dealer's system names it ("Inspektion", "HU", "Reifenwechsel").
    pub kind: String,
    /// Order or invoice amount in cents, when the export carries one.
    #[serde(with = "crate::money::cents::option")]
    pub value: Option<i64>,
    /// Where the row came from, `file:line` (`werkstatt.csv:214`): what an
    /// attributed response cites. Empty for visits stored before sources
    /// were kept.
    pub source: String,
}

/// [`ServiceVisit`] as stored before it carried a value and a source:
/// read so that a store written by an earlier version keeps its visits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceVisitV1 {
    pub vin: String,
    pub customer_no: String,
    pub date: Date,
    pub km: Option<u32>,
    pub kind: String,
}

impl From<ServiceVisitV1> for ServiceVisit {
    fn from(v: ServiceVisitV1) -> Self {
        Self {
            vin: v.vin,
            customer_no: v.customer_no,
            date: v.date,
            km: v.km,
            kind: v.kind,
            value: None,
            source: String::new(),
        }
    }
}

/// The canonical fields an import row can carry. A tenant's column mapping
/// maps the headers of its dealer-management-system exports onto these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportField {
    CustomerNo,
    Salutation,
    FirstName,
    LastName,
    /// "Name" columns that hold "Nachname, Vorname" or "Vorname Nachname".
    FullName,
    Company,
    IsCompany,
    Street,
    HouseNo,
    Postcode,
    City,
    Country,
    Email,
    Phone,
    BirthDate,
    Language,
    Vin,
    Make,
    Model,
    FirstRegistration,
    LastServiceDate,
    LastServiceKm,
    NextInspection,
    WarrantyEnd,
    ConsentEmail,
    ConsentPost,
    ConsentPhone,
    ConsentDate,
    ConsentSource,
    /// Consent files: one statement per row.
    ConsentChannel,
    ConsentGranted,
    VisitDate,
    VisitKm,
    VisitKind,
    /// A column to read past without a warning.
    Ignore,
    /// The order or invoice amount of a service visit.
    VisitValue,
    /// Response files: the day of the response.
    ResponseDate,
    /// Response files: what the customer did (appointment, offer accepted).
    ResponseKind,
    /// Response files: the order or offer value.
    ResponseValue,
    /// Response files: a remark kept with the response.
    ResponseNote,
    /// Send history (a migration from the system Touchpoint replaces): the
    /// brand service a past message was for. In such a file the channel
    /// column ([`ImportField::ConsentChannel`]) is the channel it went by,
    /// or `control` for a control-group member.
    SentService,
    /// Send history: the day the message went out.
    SentDate,
    /// Send history: what the message cost.
    SentCost,
}

impl ImportField {
    /// Fields that describe a customer (besides the customer number).
    pub const CUSTOMER: &'static [ImportField] = &[
        ImportField::Salutation,
        ImportField::FirstName,
        ImportField::LastName,
        ImportField::FullName,
        ImportField::Company,
        ImportField::IsCompany,
        ImportField::Street,
        ImportField::HouseNo,
        ImportField::Postcode,
        ImportField::City,
        ImportField::Country,
        ImportField::Email,
        ImportField::Phone,
        ImportField::BirthDate,
        ImportField::Language,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ImportField::CustomerNo => "customer_no",
            ImportField::Salutation => "salutation",
            ImportField::FirstName => "first_name",
            ImportField::LastName => "last_name",
            ImportField::FullName => "full_name",
            ImportField::Company => "company",
            ImportField::IsCompany => "is_company",
            ImportField::Street => "street",
            ImportField::HouseNo => "house_no",
            ImportField::Postcode => "postcode",
            ImportField::City => "city",
            ImportField::Country => "country",
            ImportField::Email => "email",
            ImportField::Phone => "phone",
            ImportField::BirthDate => "birth_date",
            ImportField::Language => "language",
            ImportField::Vin => "vin",
            ImportField::Make => "make",
            ImportField::Model => "model",
            ImportField::FirstRegistration => "first_registration",
            ImportField::LastServiceDate => "last_service_date",
            ImportField::LastServiceKm => "last_service_km",
            ImportField::NextInspection => "next_inspection",
            ImportField::WarrantyEnd => "warranty_end",
            ImportField::ConsentEmail => "consent_email",
            ImportField::ConsentPost => "consent_post",
            ImportField::ConsentPhone => "consent_phone",
            ImportField::ConsentDate => "consent_date",
            ImportField::ConsentSource => "consent_source",
            ImportField::ConsentChannel => "consent_channel",
            ImportField::ConsentGranted => "consent_granted",
            ImportField::VisitDate => "visit_date",
            ImportField::VisitKm => "visit_km",
            ImportField::VisitKind => "visit_kind",
            ImportField::Ignore => "ignore",
            ImportField::VisitValue => "visit_value",
            ImportField::ResponseDate => "response_date",
            ImportField::ResponseKind => "response_kind",
            ImportField::ResponseValue => "response_value",
            ImportField::ResponseNote => "response_note",
            ImportField::SentService => "sent_service",
            ImportField::SentDate => "sent_date",
            ImportField::SentCost => "sent_cost",
        }
    }
}

impl fmt::Display for ImportField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`ImportField`]s: which columns a file had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FieldSet(u64);

impl FieldSet {
    /// Every field: a record from a source that replaces all of it.
    pub const ALL: FieldSet = FieldSet(u64::MAX);

    pub fn insert(&mut self, f: ImportField) {
        self.0 |= 1 << (f as u32);
    }

    pub fn contains(&self, f: ImportField) -> bool {
        self.0 & (1 << (f as u32)) != 0
    }

    pub fn any(&self, fields: &[ImportField]) -> bool {
        fields.iter().any(|f| self.contains(*f))
    }

    /// The fields of this set that are not in `other`.
    pub fn without(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 & !other.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
}

impl FromIterator<ImportField> for FieldSet {
    fn from_iter<I: IntoIterator<Item = ImportField>>(iter: I) -> Self {
        let mut s = FieldSet::default();
        for f in iter {
            s.insert(f);
        }
        s
    }
}

/// Source prefix of consent statements that came from a dealer export.
pub const IMPORT_SOURCE: &str = "import:";

impl Customer {
    /// A newer export updates what it has columns for and leaves the rest of
    /// the stored record alone, so a file without, say, a birth-date column
    /// cannot blank out stored birth dates.
    pub fn keep_absent_from(&mut self, stored: Customer, present: FieldSet) {
        use ImportField::*;
        let has = |f: &[ImportField]| present.any(f);
        if !has(&[Salutation]) {
            self.salutation = stored.salutation;
        }
        if !has(&[FirstName, FullName]) {
            self.first_name = stored.first_name;
        }
        if !has(&[LastName, FullName]) {
            self.last_name = stored.last_name;
        }
        if !has(&[Company]) {
            self.company = stored.company;
        }
        if !has(&[Company, IsCompany]) {
            self.is_company = stored.is_company;
        }
        if !has(&[Street]) {
            self.address.street = stored.address.street;
        }
        if !has(&[Street, HouseNo]) {
            self.address.house_no = stored.address.house_no;
        }
        if !has(&[Postcode]) {
            self.address.postcode = stored.address.postcode;
        }
        if !has(&[City]) {
            self.address.city = stored.address.city;
        }
        if !has(&[Country]) {
            self.address.country = stored.address.country;
        }
        if !has(&[Email]) {
            self.email = stored.email;
        }
        if !has(&[Phone]) {
            self.phone = stored.phone;
        }
        if !has(&[BirthDate]) {
            self.birth_date = stored.birth_date;
        }
        if !has(&[Language]) {
            self.language = stored.language;
        }
    }
}

impl Vehicle {
    /// See [`Customer::keep_absent_from`].
    pub fn keep_absent_from(&mut self, stored: Vehicle, present: FieldSet) {
        use ImportField::*;
        let has = |f: &[ImportField]| present.any(f);
        if !has(&[Make]) {
            self.make = stored.make;
        }
        if !has(&[Model]) {
            self.model = stored.model;
        }
        if !has(&[FirstRegistration]) {
            self.first_registration = stored.first_registration;
        }
        if !has(&[LastServiceDate]) {
            self.last_service_date = stored.last_service_date;
        }
        if !has(&[LastServiceKm]) {
            self.last_service_km = stored.last_service_km;
        }
        if !has(&[NextInspection]) {
            self.next_inspection = stored.next_inspection;
        }
        if !has(&[WarrantyEnd]) {
            self.warranty_end = stored.warranty_end;
        }
    }
}

impl Consent {
    /// Whether this statement replaces the stored one. The latest statement
    /// wins; on equal time the newer one. A statement without a date of its
    /// own (`at` zero) is stamped with `now` (the import's time), but an
    /// undated "yes" never overrides a "no" that came from outside the
    /// dealer's exports: a revocation by unsubscribe must not be undone by
    /// an export that has not caught up with it.
    pub fn supersedes(&mut self, stored: Option<&Consent>, now: Timestamp) -> bool {
        if self.at == Timestamp::default() {
            if let Some(s) = stored {
                let protected = self.granted && !s.granted && !s.source.starts_with(IMPORT_SOURCE);
                if s.granted == self.granted || protected {
                    return false;
                }
            }
            self.at = now;
        }
        match stored {
            Some(s) => !(s.at > self.at || (s.granted == self.granted && s.at == self.at)),
            None => true,
        }
    }
}

/// A rejected row: `file:line: field: reason`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    pub file: String,
    /// 1-based physical line where the record starts (the header is line 1).
    pub line: u64,
    /// Canonical field name, or the header as written when no field applies ("row", "file").
    pub field: String,
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file, self.line, self.field, self.reason
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Counts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl Counts {
    pub fn changed(&self) -> u64 {
        self.inserted + self.updated
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    /// Applied; the counts say what changed.
    Committed,
    /// The same bytes were imported before; nothing was changed.
    AlreadyImported { previous: u64 },
    /// Nothing was applied (not a CSV file, unreadable, interrupted before commit).
    Failed { reason: String },
}

/// What one import did. Kept in the tenant's import history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    pub import_id: u64,
    pub tenant: TenantId,
    pub file_name: String,
    /// BLAKE3 of the file's bytes, hex.
    pub content_hash: String,
    pub bytes: u64,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub status: ImportStatus,
    /// Detected format, e.g. "windows-1252, ';', 14 columns".
    pub format: String,
    pub rows_total: u64,
    pub rows_ok: u64,
    pub rows_rejected: u64,
    pub customers: Counts,
    pub vehicles: Counts,
    pub consents: Counts,
    pub visits: Counts,
    /// Headers that mapped to no field (reported once, not per row).
    pub unmapped_columns: Vec<String>,
    pub errors: Vec<RowError>,
    /// Rejected rows beyond those listed in `errors`.
    pub errors_truncated: u64,
    /// Duplicate merges the identity pass made after this import.
    pub merges: u64,
    /// Rows of a response file (appointments, offers accepted) stored.
    pub responses: Counts,
    /// How the responses this file brought (its visits and responses) were
    /// credited; `None` when it brought none or attribution did not run.
    pub credited: Option<ResponseTally>,
    /// What this file, a re-export, corrected away of an earlier import of
    /// the same name, and what it kept because rows of it were rejected.
    pub corrections: Corrections,
    /// Rows imported with a field of theirs dropped (a bad optional value)
    /// or a vehicle parked; counted apart from `rows_ok`, so that
    /// `rows_ok + rows_warned + rows_rejected` is every row read.
    pub rows_warned: u64,
    /// What was not imported of rows that were: `file:line: field: reason
    /// (field not imported)`, and vehicles kept until their holder arrives.
    pub warnings: Vec<RowError>,
    /// Warnings beyond those listed in `warnings`.
    pub warnings_truncated: u64,
    /// Vehicles of this file whose holder is not a known customer: kept,
    /// and attached when that customer is imported.
    pub parked: u64,
    /// Records of this file older than what is stored, not applied.
    pub stale: Stale,
    /// When the import this one repeats (same bytes) finished; `None`
    /// unless the status is [`ImportStatus::AlreadyImported`].
    pub previous_at: Option<Timestamp>,
}

/// Records an import did not apply because the store holds data of a
/// newer export for them (see `as_of` of the dealer's records).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stale {
    /// Rows whose customer or vehicle was not applied (a row of both
    /// counts once).
    pub rows: u64,
    /// The oldest "as of" of those records.
    pub as_of: Option<Date>,
    /// The newest "as of" stored that a skipped record was older than.
    pub stored: Option<Date>,
}

impl Stale {
    /// `kunden.csv: 312 rows older than the stored data (as of
    /// 2026-11-30 < 2026-12-05); not applied`; `None` when there were none.
    pub fn describe(&self, file: &str) -> Option<String> {
        if self.rows == 0 {
            return None;
        }
        let n = self.rows;
        let dates = match (self.as_of, self.stored) {
            (Some(a), Some(s)) => format!(" (as of {a} < {s})"),
            _ => String::new(),
        };
        Some(format!(
            "{file}: {n} row{} older than the stored data{dates}; not applied",
            if n == 1 { "" } else { "s" }
        ))
    }
}

/// [`ImportReport`] as stored before it kept warnings, parked vehicles
/// and stale records apart: read so that a store written by the version
/// before keeps its import history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReportV3 {
    pub import_id: u64,
    pub tenant: TenantId,
    pub file_name: String,
    pub content_hash: String,
    pub bytes: u64,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub status: ImportStatus,
    pub format: String,
    pub rows_total: u64,
    pub rows_ok: u64,
    pub rows_rejected: u64,
    pub customers: Counts,
    pub vehicles: Counts,
    pub consents: Counts,
    pub visits: Counts,
    pub unmapped_columns: Vec<String>,
    pub errors: Vec<RowError>,
    pub errors_truncated: u64,
    pub merges: u64,
    pub responses: Counts,
    pub credited: Option<ResponseTally>,
    pub corrections: Corrections,
}

impl From<ImportReportV3> for ImportReport {
    fn from(r: ImportReportV3) -> Self {
        Self {
            import_id: r.import_id,
            tenant: r.tenant,
            file_name: r.file_name,
            content_hash: r.content_hash,
            bytes: r.bytes,
            started_at: r.started_at,
            finished_at: r.finished_at,
            status: r.status,
            format: r.format,
            rows_total: r.rows_total,
            rows_ok: r.rows_ok,
            rows_rejected: r.rows_rejected,
            customers: r.customers,
            vehicles: r.vehicles,
            consents: r.consents,
            visits: r.visits,
            unmapped_columns: r.unmapped_columns,
            errors: r.errors,
            errors_truncated: r.errors_truncated,
            merges: r.merges,
            responses: r.responses,
            credited: r.credited,
            corrections: r.corrections,
            rows_warned: 0,
            warnings: Vec::new(),
            warnings_truncated: 0,
            parked: 0,
            stale: Stale::default(),
            previous_at: None,
        }
    }
}

/// What a re-exported visit or response file did to the rows an earlier
/// import of a file of the same name stored: such a file is the truth for
/// the vehicles and customers it names in the days it covers, so their
/// earlier rows it no longer has are removed. A rejected row never causes
/// a removal: the vehicle and customer it names keep their earlier rows,
/// and when a rejected row's vehicle or customer cannot be read at all,
/// the file corrects nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Corrections {
    pub visits: Corrected,
    pub responses: Corrected,
    /// Rejected rows whose vehicle or customer could not be read (a bad
    /// VIN, a row cut short): when there are any, nothing was removed.
    pub unreadable: u64,
}

/// [`Corrections`] of one kind of row (visits or responses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Corrected {
    /// The first and the last day of the file's rows of this kind; `None`
    /// when it has none (then it corrects none either).
    pub span: Option<(Date, Date)>,
    /// Earlier rows the file no longer has, removed.
    pub removed: u64,
    /// Earlier rows the file no longer has, kept because a rejected row
    /// may carry them.
    pub kept: u64,
}

impl Corrections {
    /// Says what the re-export removed and what it kept, one line each,
    /// e.g. `removed 3 visits no longer in the export (vehicles it names,
    /// 2026-10-01…2026-11-30)`; nothing when it had nothing to correct.
    pub fn describe(&self) -> Vec<String> {
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut out = Vec::new();
        let kinds = [
            (&self.visits, "visit", "visits", "vehicles it names"),
            (
                &self.responses,
                "response",
                "responses",
                "customers and vehicles it names",
            ),
        ];
        for (c, one, many, whom) in kinds {
            if let (Some((from, to)), true) = (c.span, c.removed > 0) {
                out.push(format!(
                    "removed {} no longer in the export ({whom}, {from}…{to})",
                    plural(c.removed, one, many)
                ));
            }
        }
        let corrects = self.visits.span.is_some() || self.responses.span.is_some();
        if self.unreadable > 0 && corrects {
            out.push(format!(
                "no corrections: {} rejected whose vehicle or customer could not be read",
                plural(self.unreadable, "row was", "rows were")
            ));
        }
        for (c, one, many, _) in kinds {
            if c.kept > 0 {
                out.push(format!(
                    "kept {} no longer in the export: a rejected row may carry {} (correct the file and import it again)",
                    plural(c.kept, one, many),
                    if c.kept == 1 { "it" } else { "them" }
                ));
            }
        }
        out
    }
}

/// How the responses one import brought were credited.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResponseTally {
    /// Credited to a message that was sent.
    pub to_messages: u64,
    /// Credited to a control-group member's record.
    pub to_control: u64,
    /// Credited to nothing: no message before it answers it (or the
    /// customer or vehicle is not known); these make the baseline.
    pub organic: u64,
    /// Visits of the import whose type (`Auftragsart`) the daemon does not
    /// know: they count as workshop visits, which answer no service
    /// reminder.
    pub unrecognised: u64,
    /// Those types with how many visits had each, the most frequent first
    /// (then by name): at most [`MAX_TALLIED_TYPES`] of them, each cut to
    /// [`MAX_TALLIED_TYPE_CHARS`] characters without control characters.
    pub unrecognised_types: Vec<(String, u64)>,
}

/// Unrecognised visit types an import's tally names.
pub const MAX_TALLIED_TYPES: usize = 8;
/// Characters of an unrecognised visit type a tally keeps.
pub const MAX_TALLIED_TYPE_CHARS: usize = 40;

impl ResponseTally {
    pub fn total(&self) -> u64 {
        self.to_messages + self.to_control + self.organic
    }

    /// Sets [`Self::unrecognised`] and [`Self::unrecognised_types`] from
    /// every visit type of the import the daemon does not know, as the
    /// dealer's file wrote it, with its number of visits.
    pub fn set_unrecognised<'a>(&mut self, types: impl IntoIterator<Item = (&'a str, u64)>) {
        let mut shown: BTreeMap<String, u64> = BTreeMap::new();
        self.unrecognised = 0;
        for (kind, n) in types {
            self.unrecognised += n;
            let cut: String = kind
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_TALLIED_TYPE_CHARS)
                .collect();
            *shown.entry(cut).or_default() += n;
        }
        let mut types: Vec<(String, u64)> = shown.into_iter().collect();
        types.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        types.truncate(MAX_TALLIED_TYPES);
        self.unrecognised_types = types;
    }

    /// `3 visits of types not recognised, counted as workshop visits (no
    /// service reminder is credited with them): "WA" 2, "01" 1`; `None`
    /// when every type was recognised. Types are quoted and escaped.
    pub fn unrecognised_line(&self) -> Option<String> {
        if self.unrecognised == 0 {
            return None;
        }
        let n = self.unrecognised;
        let mut line = format!(
            "{n} visit{} of types not recognised, counted as workshop visits (no service reminder is credited with them)",
            if n == 1 { "" } else { "s" }
        );
        let named: u64 = self.unrecognised_types.iter().map(|t| t.1).sum();
        let list: Vec<String> = self
            .unrecognised_types
            .iter()
            .map(|(t, c)| format!("{t:?} {c}"))
            .collect();
        if !list.is_empty() {
            line.push_str(": ");
            line.push_str(&list.join(", "));
        }
        if named < n {
            line.push_str(&format!(", {} of other types", n - named));
        }
        Some(line)
    }
}

/// [`ResponseTally`] as stored before it counted unrecognised visit types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseTallyV1 {
    pub to_messages: u64,
    pub to_control: u64,
    pub organic: u64,
}

impl From<ResponseTallyV1> for ResponseTally {
    fn from(t: ResponseTallyV1) -> Self {
        Self {
            to_messages: t.to_messages,
            to_control: t.to_control,
            organic: t.organic,
            ..Self::default()
        }
    }
}

/// [`ImportReport`] as stored before it said what a re-export corrected and
/// before its tally counted unrecognised visit types: read so that a store
/// written by an earlier version keeps its import history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReportV2 {
    pub import_id: u64,
    pub tenant: TenantId,
    pub file_name: String,
    pub content_hash: String,
    pub bytes: u64,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub status: ImportStatus,
    pub format: String,
    pub rows_total: u64,
    pub rows_ok: u64,
    pub rows_rejected: u64,
    pub customers: Counts,
    pub vehicles: Counts,
    pub consents: Counts,
    pub visits: Counts,
    pub unmapped_columns: Vec<String>,
    pub errors: Vec<RowError>,
    pub errors_truncated: u64,
    pub merges: u64,
    pub responses: Counts,
    pub credited: Option<ResponseTallyV1>,
}

impl From<ImportReportV2> for ImportReport {
    fn from(r: ImportReportV2) -> Self {
        ImportReportV3 {
            import_id: r.import_id,
            tenant: r.tenant,
            file_name: r.file_name,
            content_hash: r.content_hash,
            bytes: r.bytes,
            started_at: r.started_at,
            finished_at: r.finished_at,
            status: r.status,
            format: r.format,
            rows_total: r.rows_total,
            rows_ok: r.rows_ok,
            rows_rejected: r.rows_rejected,
            customers: r.customers,
            vehicles: r.vehicles,
            consents: r.consents,
            visits: r.visits,
            unmapped_columns: r.unmapped_columns,
            errors: r.errors,
            errors_truncated: r.errors_truncated,
            merges: r.merges,
            responses: r.responses,
            credited: r.credited.map(Into::into),
            corrections: Corrections::default(),
        }
        .into()
    }
}

/// [`ImportReport`] as stored before it counted responses: read so that a
/// store written by an earlier version keeps its import history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReportV1 {
    pub import_id: u64,
    pub tenant: TenantId,
    pub file_name: String,
    pub content_hash: String,
    pub bytes: u64,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub status: ImportStatus,
    pub format: String,
    pub rows_total: u64,
    pub rows_ok: u64,
    pub rows_rejected: u64,
    pub customers: Counts,
    pub vehicles: Counts,
    pub consents: Counts,
    pub visits: Counts,
    pub unmapped_columns: Vec<String>,
    pub errors: Vec<RowError>,
    pub errors_truncated: u64,
    pub merges: u64,
}

impl From<ImportReportV1> for ImportReport {
    fn from(r: ImportReportV1) -> Self {
        ImportReportV3 {
            import_id: r.import_id,
            tenant: r.tenant,
            file_name: r.file_name,
            content_hash: r.content_hash,
            bytes: r.bytes,
            started_at: r.started_at,
            finished_at: r.finished_at,
            status: r.status,
            format: r.format,
            rows_total: r.rows_total,
            rows_ok: r.rows_ok,
            rows_rejected: r.rows_rejected,
            customers: r.customers,
            vehicles: r.vehicles,
            consents: r.consents,
            visits: r.visits,
            unmapped_columns: r.unmapped_columns,
            errors: r.errors,
            errors_truncated: r.errors_truncated,
            merges: r.merges,
            responses: Counts::default(),
            credited: None,
            corrections: Corrections::default(),
        }
        .into()
    }
}

impl ImportReport {
    /// A report of an import that has not read a row yet (status committed,
    /// all counts zero); the importer fills it in as it goes.
    pub fn new(
        import_id: u64,
        tenant: TenantId,
        file_name: impl Into<String>,
        content_hash: impl Into<String>,
        started_at: Timestamp,
    ) -> Self {
        Self {
            import_id,
            tenant,
            file_name: file_name.into(),
            content_hash: content_hash.into(),
            bytes: 0,
            started_at,
            finished_at: started_at,
            status: ImportStatus::Committed,
            format: String::new(),
            rows_total: 0,
            rows_ok: 0,
            rows_rejected: 0,
            customers: Counts::default(),
            vehicles: Counts::default(),
            consents: Counts::default(),
            visits: Counts::default(),
            unmapped_columns: Vec::new(),
            errors: Vec::new(),
            errors_truncated: 0,
            merges: 0,
            responses: Counts::default(),
            credited: None,
            corrections: Corrections::default(),
            rows_warned: 0,
            warnings: Vec::new(),
            warnings_truncated: 0,
            parked: 0,
            stale: Stale::default(),
            previous_at: None,
        }
    }

    /// `1204 ok, 3 with warnings, 2 rejected` (the part about warnings
    /// left out when there were none).
    pub fn rows_summary(&self) -> String {
        self.rows_counted("")
    }

    fn rows_counted(&self, noun: &str) -> String {
        let warned = if self.rows_warned > 0 {
            format!(", {} with warnings", self.rows_warned)
        } else {
            String::new()
        };
        format!(
            "{}{noun} ok{warned}, {} rejected",
            self.rows_ok, self.rows_rejected
        )
    }

    /// What the import did in one line, as the audit log says it:
    /// `same file as #3 (imported 2026-12-05 09:12:00 UTC); nothing
    /// applied` (with the rows of people erased since, which its errors
    /// list), or `1204 rows ok, 3 with warnings, 2 rejected` with the
    /// stale records.
    pub fn outcome_summary(&self) -> String {
        if let ImportStatus::AlreadyImported { previous } = self.status {
            let when = self
                .previous_at
                .map(|t| format!(" (imported {t})"))
                .unwrap_or_default();
            let erased = match self.rows_rejected {
                0 => String::new(),
                1 => "; 1 row is of a person erased since (listed)".to_string(),
                n => format!("; {n} rows are of people erased since (listed)"),
            };
            return format!("same file as #{previous}{when}; nothing applied{erased}");
        }
        let mut line = self.rows_counted(" rows");
        if self.stale.rows > 0 {
            line.push_str(&format!(
                ", {} older than the stored data not applied",
                self.stale.rows
            ));
        }
        line
    }

    pub fn is_committed(&self) -> bool {
        matches!(self.status, ImportStatus::Committed)
    }
}

/// Why two customer records were judged to be one person or one household.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchReason {
    SameEmail(String),
    SamePhone(String),
    /// Same normalised name and address.
    SameNameAndAddress {
        name: String,
        address: String,
    },
    /// Names within a small edit distance at the same address.
    SimilarNameSameAddress {
        a: String,
        b: String,
        distance: u32,
        address: String,
    },
    /// Same normalised company name.
    SameCompany(String),
}

impl fmt::Display for MatchReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MatchReason::SameEmail(e) => write!(f, "same email {e}"),
            MatchReason::SamePhone(p) => write!(f, "same phone {p}"),
            MatchReason::SameNameAndAddress { name, address } => {
                write!(f, "same name {name:?} at {address:?}")
            }
            MatchReason::SimilarNameSameAddress {
                a,
                b,
                distance,
                address,
            } => write!(
                f,
                "names {a:?} and {b:?} differ by {distance} at the same address {address:?}"
            ),
            MatchReason::SameCompany(c) => write!(f, "same company {c:?}"),
        }
    }
}

/// A customer's objection to advertising (GDPR Art. 21): the planner plans
/// nothing for them while it stands. Kept apart from the imported data, so
/// a re-import does not lift it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objection {
    pub at: Timestamp,
    /// Who recorded it (the operator's user name).
    pub by: String,
    /// Why, as the operator gave it (bounded on the wire).
    pub reason: String,
}

/// One merge of a duplicate customer into a surviving one. Merges never
/// delete records: the merged customer stays stored and is redirected to the
/// survivor, so a merge can be undone exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeRecord {
    pub merge_id: u64,
    pub survivor: String,
    pub merged: String,
    pub reasons: Vec<MatchReason>,
    pub at: Timestamp,
    /// Import that triggered the identity pass, if any.
    pub import_id: Option<u64>,
    pub undone_at: Option<Timestamp>,
    pub undone_by: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TenantStats {
    pub customers: u64,
    /// Customers after duplicate merges: the people and households we write to.
    pub recipients: u64,
    pub vehicles: u64,
    pub consents: u64,
    pub visits: u64,
    pub merges_active: u64,
    pub imports: u64,
    pub disk_bytes: u64,
}

// ----- journey stages -------------------------------------------------------------

/// Where a customer is in their life with the brand, derived from their
/// vehicles and visits (see the brand file's `[journey]`). The names of
/// earlier policies still read: `loyal` is `active`, `lost` is `lapsed`.
/// Stored (bincode, by position): only gains variants at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JourneyStage {
    /// Holds a vehicle first registered less than `new_months` ago.
    New,
    /// Visited within `lapsing_after_months`.
    #[serde(alias = "loyal")]
    Active,
    /// Last visit between `lapsing_after_months` and `lapsed_after_months` ago.
    Lapsing,
    /// No visit for `lapsed_after_months`, or never: win-back.
    #[serde(alias = "lost")]
    Lapsed,
}

impl JourneyStage {
    pub fn as_str(self) -> &'static str {
        match self {
            JourneyStage::New => "new",
            JourneyStage::Active => "active",
            JourneyStage::Lapsing => "lapsing",
            JourneyStage::Lapsed => "lapsed",
        }
    }
}

/// Where a vehicle is in its life, derived from its first registration
/// and warranty end (see the brand file's `[journey]`). Stored (bincode,
/// by position): only gains variants at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VehicleStage {
    /// First registered less than `new_months` ago.
    New,
    /// Its warranty runs, and ends more than `warranty_ending_months` ahead.
    InWarranty,
    /// Within the last `warranty_ending_months` before its warranty end.
    WarrantyEnding,
    /// Its warranty has ended.
    PostWarranty,
    /// At least `ageing_years` old: trade-in interest.
    Ageing,
}

impl VehicleStage {
    pub fn as_str(self) -> &'static str {
        match self {
            VehicleStage::New => "new",
            VehicleStage::InWarranty => "in_warranty",
            VehicleStage::WarrantyEnding => "warranty_ending",
            VehicleStage::PostWarranty => "post_warranty",
            VehicleStage::Ageing => "ageing",
        }
    }
}

/// A journey stage of either kind: what a `journey` service's `stage`
/// names (the names of the two kinds differ but for `new`, which is the
/// customer's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AnyStage {
    Customer(JourneyStage),
    Vehicle(VehicleStage),
}

impl AnyStage {
    pub fn as_str(self) -> &'static str {
        match self {
            AnyStage::Customer(s) => s.as_str(),
            AnyStage::Vehicle(s) => s.as_str(),
        }
    }
}

/// A change of journey stage, recorded when it was noticed (an import that
/// changed the data, or the daily plan as time passes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JourneyTransition {
    /// The customer's stage; `from` is `None` when first derived.
    Customer {
        day: Date,
        from: Option<JourneyStage>,
        to: JourneyStage,
    },
    /// One vehicle's stage; `from` is `None` when first derived (or not
    /// derivable before).
    Vehicle {
        day: Date,
        vin: String,
        from: Option<VehicleStage>,
        to: VehicleStage,
    },
}

impl JourneyTransition {
    pub fn day(&self) -> Date {
        match self {
            JourneyTransition::Customer { day, .. } | JourneyTransition::Vehicle { day, .. } => {
                *day
            }
        }
    }

    /// The stage entered.
    pub fn to(&self) -> AnyStage {
        match self {
            JourneyTransition::Customer { to, .. } => AnyStage::Customer(*to),
            JourneyTransition::Vehicle { to, .. } => AnyStage::Vehicle(*to),
        }
    }
}

/// A vehicle's stage as stored: `None` when it cannot be derived (no
/// first registration and no warranty end on record).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VehicleJourney {
    pub vin: String,
    pub stage: Option<VehicleStage>,
}

/// The journey of one recipient (a customer not merged into another) as
/// last derived: kept in the tenant store, current after every import that
/// changed data and every daily plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JourneyRecord {
    pub stage: JourneyStage,
    /// The day of the derivation that last changed the record.
    pub changed_on: Date,
    /// The recipient's vehicles (merged customers' included), in VIN order,
    /// at most [`JourneyRecord::MAX_VEHICLES`].
    pub vehicles: Vec<VehicleJourney>,
    /// The newest transitions, oldest first, at most
    /// [`JourneyRecord::MAX_TRANSITIONS`].
    pub transitions: Vec<JourneyTransition>,
}

impl JourneyRecord {
    pub const MAX_TRANSITIONS: usize = 16;
    pub const MAX_VEHICLES: usize = 200;

    /// Adds a transition, dropping the oldest beyond the bound.
    pub fn push(&mut self, t: JourneyTransition) {
        self.transitions.push(t);
        let over = self.transitions.len().saturating_sub(Self::MAX_TRANSITIONS);
        self.transitions.drain(..over);
    }

    pub fn vehicle(&self, vin: &str) -> Option<VehicleStage> {
        self.vehicles
            .iter()
            .find(|v| v.vin == vin)
            .and_then(|v| v.stage)
    }
}

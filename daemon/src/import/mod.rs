//! Import of dealer exports (M2): one code path for files uploaded over the
//! control socket and files dropped into the inbox.
//!
//! [`parse`] turns messy CSV bytes into validated records and row errors;
//! this module applies them to a tenant's store atomically, with a report.

pub mod inbox;
pub mod parse;

use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use touchpoint_common::config::TenantImport;
use touchpoint_common::domain::{
    Consent, Counts, Customer, ImportField, ImportReport, ImportStatus, RowError, Timestamp, Vehicle,
};

use std::sync::Arc;

use touchpoint_common::TenantId;

use crate::policy::PolicyHandle;
use crate::store::{Change, ImportTxn, StoreError, Stores, TenantStore};

/// The one entry point both the control socket and the inbox use.
pub struct Importer {
    stores: Arc<Stores>,
    policies: Arc<PolicyHandle>,
    max_reported_errors: usize,
}

impl Importer {
    pub fn new(stores: Arc<Stores>, policies: Arc<PolicyHandle>, max_reported_errors: usize) -> Self {
        Self { stores, policies, max_reported_errors }
    }

    pub fn stores(&self) -> &Arc<Stores> {
        &self.stores
    }

    /// Imports a file for a tenant with that tenant's import settings. Blocking.
    pub fn import(&self, tenant: &TenantId, path: &Path, file_name: &str) -> Result<ImportReport, ImportError> {
        let policy = self
            .policies
            .current()
            .tenant(tenant)
            .map(|p| p.import.clone())
            .ok_or_else(|| StoreError::UnknownTenant(tenant.to_string()))?;
        let store = self.stores.tenant(tenant)?;
        let opts = ImportOptions { policy, max_reported_errors: self.max_reported_errors };
        let report = import_file(&store, path, file_name, &opts)?;
        tracing::info!(
            tenant = %tenant,
            file = file_name,
            import = report.import_id,
            status = ?report.status,
            rows_ok = report.rows_ok,
            rows_rejected = report.rows_rejected,
            merges = report.merges,
            "import finished"
        );
        Ok(report)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Settings of one import besides the file.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    pub policy: TenantImport,
    /// Rejected rows listed in the report; the rest are counted.
    pub max_reported_errors: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self { policy: TenantImport::default(), max_reported_errors: 1000 }
    }
}

/// Imports one file into one tenant: atomically (all rows of the file or
/// none), idempotently (the same bytes twice change nothing), keeping the
/// good rows of a file with bad ones. Then runs the identity pass.
///
/// `file_name` is the name the dealer gave the file; it is what row errors
/// cite. Blocking: call from a blocking thread.
pub fn import_file(
    store: &TenantStore,
    path: &Path,
    file_name: &str,
    opts: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let started_at = Timestamp::now();
    let io_err = |source| ImportError::Io { path: path.display().to_string(), source };
    let (content_hash, bytes) = hash_file(path).map_err(io_err)?;
    let mut report = ImportReport {
        import_id: 0,
        tenant: store.id().clone(),
        file_name: file_name.to_string(),
        content_hash,
        bytes,
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
    };

    if let Some(previous) = store.import_by_hash(&report.content_hash)? {
        report.import_id = store.next_import_id()?;
        report.status = ImportStatus::AlreadyImported { previous };
        report.finished_at = Timestamp::now();
        store.record_import(&report)?;
        return Ok(report);
    }

    report.import_id = store.next_import_id()?;
    let file = File::open(path).map_err(io_err)?;
    let parser = match parse::Parser::new(BufReader::with_capacity(256 * 1024, file), file_name, &opts.policy) {
        Ok(p) => p,
        Err(e) => {
            report.status = ImportStatus::Failed { reason: e.to_string() };
            report.finished_at = Timestamp::now();
            store.record_import(&report)?;
            return Ok(report);
        }
    };
    report.format = parser.format().describe();
    report.unmapped_columns = parser.format().unmapped();
    let present: HashSet<ImportField> =
        parser.format().columns.iter().filter_map(|c| c.field).collect();
    let merge = FieldMerge::new(&present);

    let mut txn = store.begin_import(report.import_id)?;
    for row in parser {
        report.rows_total += 1;
        match row {
            Ok(row) => {
                report.rows_ok += 1;
                apply_row(&mut txn, row, &merge, started_at, file_name, &mut report)?;
            }
            Err(e) => {
                report.rows_rejected += 1;
                push_error(&mut report, e, opts.max_reported_errors);
            }
        }
    }
    report.finished_at = Timestamp::now();
    txn.commit(&report)?;

    if report.customers.changed() > 0 || report.vehicles.changed() > 0 {
        match crate::identity::find_and_merge(store, Some(report.import_id)) {
            Ok(merges) => {
                report.merges = merges.len() as u64;
                if !merges.is_empty() {
                    store.update_import(&report)?;
                }
            }
            // The import itself is committed; a failed identity pass is retried after the next one.
            Err(e) => tracing::error!(tenant = %store.id(), error = %e, "identity pass failed"),
        }
    }
    Ok(report)
}

fn push_error(report: &mut ImportReport, e: RowError, max: usize) {
    if report.errors.len() < max {
        report.errors.push(e);
    } else {
        report.errors_truncated += 1;
    }
}

fn count(c: &mut Counts, change: Change) {
    match change {
        Change::Inserted => c.inserted += 1,
        Change::Updated => c.updated += 1,
        Change::Unchanged => c.unchanged += 1,
    }
}

fn apply_row(
    txn: &mut ImportTxn<'_>,
    row: parse::Row,
    merge: &FieldMerge,
    now: Timestamp,
    file_name: &str,
    report: &mut ImportReport,
) -> Result<(), StoreError> {
    if let Some(c) = row.customer.filter(|_| merge.has_customer_fields) {
        let c = match txn.customer(&c.customer_no)? {
            Some(stored) => merge.customer(stored, c),
            None => c,
        };
        count(&mut report.customers, txn.put_customer(&c)?);
    }
    if let Some(v) = row.vehicle {
        let v = match txn.vehicle(&v.vin)? {
            Some(stored) => merge.vehicle(stored, v),
            None => v,
        };
        count(&mut report.vehicles, txn.put_vehicle(&v)?);
    }
    for c in row.consents {
        count(&mut report.consents, put_consent(txn, c, now, file_name)?);
    }
    if let Some(v) = row.visit {
        count(&mut report.visits, txn.put_visit(&v)?);
    }
    Ok(())
}

/// Source prefix of consent statements that came from a dealer export.
pub const IMPORT_SOURCE: &str = "import:";

/// Consent statements without a date of their own are stamped with the time
/// of the import. Such an undated "yes" never overrides a "no" that came from
/// outside the dealer's exports: a revocation by unsubscribe must not be
/// undone by an export that simply has not caught up with it. Between the
/// dealer's own statements, the newer export wins.
fn put_consent(
    txn: &mut ImportTxn<'_>,
    mut c: Consent,
    now: Timestamp,
    file_name: &str,
) -> Result<Change, StoreError> {
    c.source = if c.source.is_empty() {
        format!("{IMPORT_SOURCE}{file_name}")
    } else {
        format!("{IMPORT_SOURCE}{file_name}: {}", c.source)
    };
    if c.at == Timestamp::default() {
        if let Some(stored) = txn.consent(&c.customer_no, c.channel)? {
            let protected_revocation =
                c.granted && !stored.granted && !stored.source.starts_with(IMPORT_SOURCE);
            if stored.granted == c.granted || protected_revocation {
                return Ok(Change::Unchanged);
            }
        }
        c.at = now;
    }
    txn.put_consent(&c)
}

/// Which fields a file carries. A newer export updates what it has columns
/// for and leaves the rest of a stored record alone, so a vehicles-only file
/// cannot blank out customers' addresses.
struct FieldMerge {
    present: HashSet<ImportField>,
    has_customer_fields: bool,
}

impl FieldMerge {
    fn new(present: &HashSet<ImportField>) -> Self {
        use ImportField::*;
        let customer_fields = [
            Salutation, FirstName, LastName, FullName, Company, IsCompany, Street, HouseNo, Postcode,
            City, Country, Email, Phone, BirthDate, Language,
        ];
        Self {
            has_customer_fields: customer_fields.iter().any(|f| present.contains(f)),
            present: present.clone(),
        }
    }

    fn has(&self, fields: &[ImportField]) -> bool {
        fields.iter().any(|f| self.present.contains(f))
    }

    fn customer(&self, stored: Customer, mut new: Customer) -> Customer {
        use ImportField::*;
        if !self.has(&[Salutation]) {
            new.salutation = stored.salutation;
        }
        if !self.has(&[FirstName, FullName]) {
            new.first_name = stored.first_name;
        }
        if !self.has(&[LastName, FullName]) {
            new.last_name = stored.last_name;
        }
        if !self.has(&[Company]) {
            new.company = stored.company;
        }
        if !self.has(&[Company, IsCompany]) {
            new.is_company = stored.is_company;
        }
        if !self.has(&[Street]) {
            new.address.street = stored.address.street;
        }
        if !self.has(&[Street, HouseNo]) {
            new.address.house_no = stored.address.house_no;
        }
        if !self.has(&[Postcode]) {
            new.address.postcode = stored.address.postcode;
        }
        if !self.has(&[City]) {
            new.address.city = stored.address.city;
        }
        if !self.has(&[Country]) {
            new.address.country = stored.address.country;
        }
        if !self.has(&[Email]) {
            new.email = stored.email;
        }
        if !self.has(&[Phone]) {
            new.phone = stored.phone;
        }
        if !self.has(&[BirthDate]) {
            new.birth_date = stored.birth_date;
        }
        if !self.has(&[Language]) {
            new.language = stored.language;
        }
        new
    }

    fn vehicle(&self, stored: Vehicle, mut new: Vehicle) -> Vehicle {
        use ImportField::*;
        if !self.has(&[Make]) {
            new.make = stored.make;
        }
        if !self.has(&[Model]) {
            new.model = stored.model;
        }
        if !self.has(&[FirstRegistration]) {
            new.first_registration = stored.first_registration;
        }
        if !self.has(&[LastServiceDate]) {
            new.last_service_date = stored.last_service_date;
        }
        if !self.has(&[LastServiceKm]) {
            new.last_service_km = stored.last_service_km;
        }
        if !self.has(&[NextInspection]) {
            new.next_inspection = stored.next_inspection;
        }
        if !self.has(&[WarrantyEnd]) {
            new.warranty_end = stored.warranty_end;
        }
        new
    }
}

/// BLAKE3 of the file and its length, streamed.
fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut hasher = blake3::Hasher::new();
    let mut file = File::open(path)?;
    let n = std::io::copy(&mut file, &mut hasher)?;
    Ok((hasher.finalize().to_hex().to_string(), n))
}

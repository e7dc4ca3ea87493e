//! Import of dealer exports (M2): one code path for files uploaded over the
//! control socket and files dropped into the inbox.
//!
//! [`parse`] turns messy CSV bytes into validated records and row errors;
//! this module applies them to a tenant's store atomically, with a report.

pub mod history;
pub mod inbox;
pub mod parse;

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;
use std::time::SystemTime;

use std::collections::HashMap;
use touchpoint_common::domain::{
    FieldSet, ImportField, ImportReport, ImportStatus, RowError, Timestamp, IMPORT_SOURCE,
};
use touchpoint_common::policy::{BrandPolicy, TenantImport};
use touchpoint_common::report::ReportedResponse;

use std::sync::Arc;

use touchpoint_common::TenantId;

use crate::attribution::Windows;
use crate::policy::PolicyHandle;
use crate::store::{ImportTxn, StoreError, Stores, TenantStore};
use history::{HistoryService, Occasions};

/// The one entry point both the control socket and the inbox use.
pub struct Importer {
    stores: Arc<Stores>,
    policies: Arc<PolicyHandle>,
    max_reported_errors: usize,
    occasions: Arc<dyn Occasions>,
    journeys: Arc<dyn Journeys>,
    erasure: Option<Arc<crate::erasure::Erasure>>,
}

/// Keeps the journey stages current after an import that changed data.
/// The planner knows how stages are derived (`planner::journey::Refresh`);
/// the import asks it. Like the identity pass it cannot fail the import it
/// follows: a failed refresh is logged, and the next import or plan
/// derives the stages again.
pub trait Journeys: Send + Sync {
    fn refresh(&self, store: &TenantStore) -> Result<(), StoreError>;
}

/// Derives nothing: for an import without a planner
/// (`ImportOptions::default()`, tools and tests of the import alone).
pub struct NoJourneys;

impl Journeys for NoJourneys {
    fn refresh(&self, _store: &TenantStore) -> Result<(), StoreError> {
        Ok(())
    }
}

impl Importer {
    /// `occasions` says which occasion a send of an imported send history
    /// covered (the planner's `planner::history::Covered`).
    pub fn new(
        stores: Arc<Stores>,
        policies: Arc<PolicyHandle>,
        max_reported_errors: usize,
        occasions: Arc<dyn Occasions>,
    ) -> Self {
        Self {
            stores,
            policies,
            max_reported_errors,
            occasions,
            journeys: Arc::new(NoJourneys),
            erasure: None,
        }
    }

    /// Skips the rows of erased people (the suppression list,
    /// [`crate::erasure::Erasure::check_row`]).
    pub fn with_erasure(mut self, erasure: Arc<crate::erasure::Erasure>) -> Self {
        self.erasure = Some(erasure);
        self
    }

    /// Keeps the journey stages current after each import (the daemon
    /// hands the planner's `planner::journey::Refresh`).
    pub fn with_journeys(mut self, journeys: Arc<dyn Journeys>) -> Self {
        self.journeys = journeys;
        self
    }

    pub fn stores(&self) -> &Arc<Stores> {
        &self.stores
    }

    /// Imports a file for a tenant with that tenant's import settings. Blocking.
    /// The path's last part is not followed if it is a symbolic link.
    pub fn import(
        &self,
        tenant: &TenantId,
        path: &Path,
        file_name: &str,
    ) -> Result<ImportReport, ImportError> {
        let file = open_no_follow(path).map_err(|source| ImportError::Io {
            path: path.display().to_string(),
            source,
        })?;
        self.import_open(tenant, &file, file_name)
    }

    /// Imports an open file (read from its start) for a tenant. Blocking.
    pub fn import_open(
        &self,
        tenant: &TenantId,
        file: &File,
        file_name: &str,
    ) -> Result<ImportReport, ImportError> {
        let set = self.policies.current();
        let policy = set
            .tenant(tenant)
            .map(|p| p.import.clone())
            .ok_or_else(|| StoreError::UnknownTenant(tenant.to_string()))?;
        let windows = crate::attribution::windows_of(&set.brand);
        let services = history_services(&set.brand);
        let store = self.stores.tenant(tenant)?;
        let opts = ImportOptions {
            policy,
            max_reported_errors: self.max_reported_errors,
            windows,
            services,
            occasions: self.occasions.clone(),
            journeys: self.journeys.clone(),
            erasure: self.erasure.clone(),
        };
        let report = import_open(&store, file, file_name, &opts)?;
        if report.merges > 0 {
            self.audit(
                SYSTEM_ACTOR,
                "merge",
                tenant,
                format!(
                    "{} duplicate customer{} merged by the identity pass after import #{} {} (touchpoint merges --tenant {tenant} lists them)",
                    report.merges,
                    if report.merges == 1 { "" } else { "s" },
                    report.import_id,
                    report.file_name
                ),
                touchpoint_common::protocol::AuditOutcome::Ok,
            );
        }
        tracing::info!(
            tenant = %tenant,
            file = ?report.file_name,
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

/// Who the audit log names for what the daemon did on its own (an identity
/// pass's merges).
pub const SYSTEM_ACTOR: &str = "touchpointd";
/// Who the audit log names for an import of a file dropped into the inbox.
pub const INBOX_ACTOR: &str = "inbox";

impl Importer {
    /// Writes an audit line for something no operator asked for over the
    /// socket (a drop-folder import, merges), as `user`.
    pub fn audit(
        &self,
        user: &str,
        action: &str,
        tenant: &TenantId,
        detail: String,
        outcome: touchpoint_common::protocol::AuditOutcome,
    ) {
        let entry = touchpoint_common::protocol::AuditEntry {
            seq: 0,
            at: Timestamp::wall(),
            uid: touchpoint_common::protocol::NO_UID,
            user: user.into(),
            role: None,
            action: action.into(),
            tenant: Some(tenant.clone()),
            detail,
            outcome,
        };
        if let Err(e) = self.stores.central().audit(entry) {
            tracing::error!(tenant = %tenant, error = %e, "cannot write to the audit log");
        }
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
#[derive(Clone)]
pub struct ImportOptions {
    pub policy: TenantImport,
    /// Rejected rows listed in the report; the rest are counted.
    pub max_reported_errors: usize,
    /// Each service's attribution window, for crediting imported visits
    /// (a service not listed: the default).
    pub windows: Windows,
    /// The brand's services, for send history files ([`history`]): a send
    /// for a service not listed is rejected.
    pub services: HashMap<String, HistoryService>,
    /// Which occasion a past send covered (see [`history::Occasions`]).
    pub occasions: Arc<dyn Occasions>,
    /// Keeps the journey stages current (see [`Journeys`]).
    pub journeys: Arc<dyn Journeys>,
    /// The suppression list's check: a row of an erased person is
    /// rejected, named in the report (`None`: no check, tools and tests
    /// of the import alone).
    pub erasure: Option<Arc<crate::erasure::Erasure>>,
}

impl std::fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportOptions")
            .field("policy", &self.policy)
            .field("max_reported_errors", &self.max_reported_errors)
            .field("windows", &self.windows)
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            policy: TenantImport::default(),
            max_reported_errors: 1000,
            windows: Windows::default(),
            services: HashMap::new(),
            occasions: Arc::new(history::DayKeys),
            journeys: Arc::new(NoJourneys),
            erasure: None,
        }
    }
}

/// The brand's services as a send history needs them.
pub fn history_services(brand: &BrandPolicy) -> HashMap<String, HistoryService> {
    brand
        .services
        .iter()
        .map(|(id, s)| {
            (
                id.clone(),
                HistoryService {
                    template: s.template.clone(),
                    occasion: s.occasion,
                },
            )
        })
        .collect()
}

/// Imports one file into one tenant: atomically (all rows of the file or
/// none), idempotently (the same bytes twice change nothing), keeping the
/// good rows of a file with bad ones. Then runs the identity pass.
///
/// `file_name` is the name the dealer gave the file; it is what row errors
/// cite (control characters replaced, see [`shown_file_name`]). The path's
/// last part is not followed if it is a symbolic link. Blocking: call from
/// a blocking thread.
pub fn import_file(
    store: &TenantStore,
    path: &Path,
    file_name: &str,
    opts: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let file = open_no_follow(path).map_err(|source| ImportError::Io {
        path: path.display().to_string(),
        source,
    })?;
    import_open(store, &file, file_name, opts)
}

/// [`import_file`] of a file already open (read from its start): it is
/// hashed and parsed through this one descriptor, and when its size or
/// modification time changed by the time it is parsed (someone is still
/// writing it) nothing is committed and the report says so.
pub fn import_open(
    store: &TenantStore,
    file: &File,
    file_name: &str,
    opts: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    import_reading(store, file, file, file_name, opts)
}

/// [`import_open`], parsing the bytes `input` yields from the start of the
/// file (normally the file itself, `file`) while `file` is what is hashed and
/// watched for changes. Lets a caller feed the parser through a reader of
/// its own, such as a test playing a writer who goes on writing while the
/// file is imported.
pub fn import_reading<R: Read>(
    store: &TenantStore,
    file: &File,
    input: R,
    file_name: &str,
    opts: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let started_at = Timestamp::now();
    let file_name = &shown_file_name(file_name);
    let io_err = |source| ImportError::Io {
        path: file_name.clone(),
        source,
    };
    let before = Snapshot::of(file).map_err(io_err)?;
    let (content_hash, bytes) = hash_file(file).map_err(io_err)?;
    let mut report = ImportReport::new(0, store.id().clone(), file_name, content_hash, started_at);
    report.bytes = bytes;

    if let Some(previous) = store.import_by_hash(&report.content_hash)? {
        report.import_id = store.next_import_id()?;
        report.status = ImportStatus::AlreadyImported { previous };
        report.previous_at = store.import(previous)?.map(|p| p.finished_at);
        let since = report.previous_at.unwrap_or(Timestamp(0));
        if opts.erasure.is_some() && store.erased_since(since)? {
            (&*file).seek(std::io::SeekFrom::Start(0)).map_err(io_err)?;
            erased_rows(store, input, file_name, opts, &mut report)?;
        }
        report.finished_at = Timestamp::now();
        store.record_import(&report)?;
        return Ok(report);
    }

    report.import_id = store.next_import_id()?;
    (&*file).seek(std::io::SeekFrom::Start(0)).map_err(io_err)?;
    let parser = match parse::Parser::new(
        BufReader::with_capacity(256 * 1024, input),
        file_name,
        &opts.policy,
    ) {
        Ok(p) => p,
        Err(e) => {
            report.status = ImportStatus::Failed {
                reason: e.to_string(),
            };
            report.finished_at = Timestamp::now();
            store.record_import(&report)?;
            return Ok(report);
        }
    };
    report.format = parser.format().describe();
    report.unmapped_columns = parser.format().unmapped();
    if parser.format().has(ImportField::SentDate) {
        return history::import(store, file, parser, report, before, opts);
    }
    let present: FieldSet = parser
        .format()
        .columns
        .iter()
        .filter_map(|c| c.field)
        .collect();
    let customer_fields = present.any(ImportField::CUSTOMER);

    // The day the export's data is as of: the file name's date, else today.
    // An undated consent statement is taken as made then (at the end of
    // that day, or now when that is earlier).
    let today = touchpoint_common::Date::today();
    let as_of = date_in_name(file_name)
        .filter(|d| *d <= today)
        .unwrap_or(today);
    let stamp = if as_of < today {
        Timestamp(Timestamp::from_date(as_of.add_days(1)).millis() - 1).min(started_at)
    } else {
        started_at
    };
    let mut txn = store.begin_import_with(report.import_id, present, stamp)?;
    let mut rows = parser;
    // Vehicles whose holder is neither stored nor in their own row: parked
    // unless the file brings the holder (looked up once it is committed).
    let mut unheld: Vec<(u64, String)> = Vec::new();
    // Lines of the visits and responses this file brings, in file order:
    // whose credits the report tallies.
    let mut brought: Vec<u64> = Vec::new();
    // Not a `for` loop: whom a rejected row is about is asked of the parser.
    while let Some(row) = rows.next() {
        report.rows_total += 1;
        match row {
            Ok(mut row) => {
                if let Some(e) = erased(store, &row, file_name, opts)? {
                    report.rows_rejected += 1;
                    let subject = subject(&row);
                    push_error(&mut report, e, opts.max_reported_errors);
                    txn.rejected(&subject.vin, &subject.customer_no)?;
                    continue;
                }
                if let Some(r) = &row.response {
                    if let Some(e) = unknown_holder(store, r, file_name, row.line)? {
                        report.rows_rejected += 1;
                        push_error(&mut report, e, opts.max_reported_errors);
                        txn.rejected(&r.vin, &r.customer_no)?;
                        continue;
                    }
                }
                if row.warnings.is_empty() {
                    report.rows_ok += 1;
                } else {
                    report.rows_warned += 1;
                }
                for w in std::mem::take(&mut row.warnings) {
                    push_warning(&mut report, w, opts.max_reported_errors);
                }
                if row.visit.is_some() || row.response.is_some() {
                    brought.push(row.line);
                }
                if let Some(v) = &row.vehicle {
                    let held_here = row.customer.is_some() && customer_fields;
                    if !held_here && store.customer(&v.customer_no)?.is_none() {
                        unheld.push((row.line, v.customer_no.clone()));
                    }
                }
                stage_row(&mut txn, row, customer_fields, file_name, as_of)?;
            }
            Err(e) => {
                report.rows_rejected += 1;
                push_error(&mut report, e, opts.max_reported_errors);
                // A rejected row never makes a re-export remove anything.
                match rows.rejected_subject() {
                    Some(s) => txn.rejected(&s.vin, &s.customer_no)?,
                    None => txn.rejected("", "")?,
                }
            }
        }
    }
    if let Some(cause) = rows.aborted() {
        // The file could not be read to its end: importing the part before
        // the break would store a truncated export as if it were complete.
        txn.abort()?;
        report.status = ImportStatus::Failed {
            reason: format!("stopped reading at row {}: {cause}", report.rows_total),
        };
        report.finished_at = Timestamp::now();
        store.record_import(&report)?;
        return Ok(report);
    }
    // What was parsed must be the file as it was hashed, complete: a writer
    // that went on after a pause longer than the inbox's settle time would
    // otherwise leave a half file committed under the hash of another.
    let after = Snapshot::of(file).map_err(io_err)?;
    if after != before || bytes != before.len {
        txn.abort()?;
        report.status = ImportStatus::Failed {
            reason: format!(
                "the file changed while it was being imported (it had {} bytes, then {}); nothing of it was imported",
                before.len, after.len
            ),
        };
        report.finished_at = Timestamp::now();
        store.record_import(&report)?;
        return Ok(report);
    }
    report.finished_at = Timestamp::now();
    let report = txn.commit(&report)?;
    let report = park(store, report, &unheld, opts.max_reported_errors);
    let report = after_commit(store, report);
    let report = if brought.is_empty() {
        report
    } else {
        credit_responses(store, report, &brought, &opts.windows)
    };
    refresh_journeys(store, &report, opts);
    Ok(report)
}

/// The journey pass after a committed import that changed the data
/// stages are derived from (customers, vehicles, visits; merges).
fn refresh_journeys(store: &TenantStore, report: &ImportReport, opts: &ImportOptions) {
    let changed = report.customers.changed()
        + report.vehicles.changed()
        + report.visits.changed()
        + report.merges
        + report.corrections.visits.removed;
    if changed == 0 {
        return;
    }
    if let Err(e) = opts.journeys.refresh(store) {
        tracing::error!(tenant = %store.id(), import = report.import_id, error = %e, "journey refresh failed; the import stands");
    }
}

/// Whom a parsed row is about: its VIN and its customer number.
fn subject(row: &parse::Row) -> parse::Subject {
    let customer_no = row
        .customer
        .as_ref()
        .map(|c| &c.customer_no)
        .or(row.vehicle.as_ref().map(|v| &v.customer_no))
        .or(row.visit.as_ref().map(|v| &v.customer_no))
        .or(row.response.as_ref().map(|r| &r.customer_no))
        .or(row.consents.first().map(|c| &c.customer_no))
        .cloned()
        .unwrap_or_default();
    let vin = row
        .vehicle
        .as_ref()
        .map(|v| &v.vin)
        .or(row.visit.as_ref().map(|v| &v.vin))
        .or(row.response.as_ref().map(|r| &r.vin))
        .cloned()
        .unwrap_or_default();
    parse::Subject { vin, customer_no }
}

/// A row about a person erased from this dealer's data (the suppression
/// list): rejected, `file:line: customer_no: customer 10042 was erased on
/// 2026-12-10; row skipped`, until an administrator states a new legal
/// basis (`touchpoint reinstate`).
fn erased(
    store: &TenantStore,
    row: &parse::Row,
    file_name: &str,
    opts: &ImportOptions,
) -> Result<Option<RowError>, StoreError> {
    let Some(erasure) = &opts.erasure else {
        return Ok(None);
    };
    let customer_no = subject(row).customer_no;
    Ok(erasure
        .check_row(store, &customer_no, row.customer.as_ref())?
        .map(|reason| RowError {
            file: file_name.to_string(),
            line: row.line,
            field: ImportField::CustomerNo.name().into(),
            reason,
        }))
}

/// The rows of a file already imported that are about a person erased
/// since (the suppression list): each named in the report as the import
/// would name it, `rows_rejected` counting them; nothing is applied. An
/// operator who uploads the same bytes again sees that the file holds an
/// erased person, though "already imported" stands: applying the old file
/// again is not what a duplicate does (a re-export of visits is the truth
/// for its days, and would undo later corrections).
fn erased_rows<R: Read>(
    store: &TenantStore,
    input: R,
    file_name: &str,
    opts: &ImportOptions,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let Ok(rows) = parse::Parser::new(
        BufReader::with_capacity(256 * 1024, input),
        file_name,
        &opts.policy,
    ) else {
        return Ok(());
    };
    for row in rows.flatten() {
        if let Some(e) = erased(store, &row, file_name, opts)? {
            report.rows_rejected += 1;
            push_error(report, e, opts.max_reported_errors);
        }
    }
    Ok(())
}

/// A response file's row whose customer or vehicle this dealer does not
/// have: a response must answer something sent to someone known.
fn unknown_holder(
    store: &TenantStore,
    r: &ReportedResponse,
    file_name: &str,
    line: u64,
) -> Result<Option<RowError>, StoreError> {
    let error = |field: &str, reason: String| RowError {
        file: file_name.to_string(),
        line,
        field: field.to_string(),
        reason,
    };
    if !r.customer_no.is_empty() && store.customer(&r.customer_no)?.is_none() {
        return Ok(Some(error(
            "customer_no",
            format!(
                "{:?} is not a customer of this dealer (import the customer first)",
                r.customer_no
            ),
        )));
    }
    if !r.vin.is_empty() && store.vehicle(&r.vin)?.is_none() {
        return Ok(Some(error(
            "vin",
            format!(
                "{:?} is not a vehicle of this dealer (import the vehicle first)",
                r.vin
            ),
        )));
    }
    Ok(None)
}

/// Credits the visits and responses to the messages before them, after
/// the identity pass (a merged customer is one recipient), and tallies in
/// the report how those of this file (its `lines`, ascending) were
/// credited. Like the identity pass, it cannot fail the import it follows:
/// a failed pass is logged and the next import's pass recomputes every
/// credit.
fn credit_responses(
    store: &TenantStore,
    mut report: ImportReport,
    lines: &[u64],
    windows: &Windows,
) -> ImportReport {
    let file = report.file_name.clone();
    let ours = |source: &str| {
        source
            .rsplit_once(':')
            .filter(|(f, _)| *f == file)
            .and_then(|(_, line)| line.parse::<u64>().ok())
            .is_some_and(|line| lines.binary_search(&line).is_ok())
    };
    match crate::attribution::attribute(store, windows, &ours) {
        Ok(s) => {
            tracing::info!(
                tenant = %store.id(),
                import = report.import_id,
                responses = s.responses,
                credited = s.credited,
                to_control = s.to_control,
                organic = s.organic,
                changed = s.changed,
                "responses attributed"
            );
            // A file that brings no responses of its own (a send history)
            // has no tally to show.
            if !lines.is_empty() {
                report.credited = Some(s.brought);
                if let Err(e) = store.update_import(&report) {
                    tracing::error!(tenant = %store.id(), import = report.import_id, error = %e, "the import is committed; how its responses were credited was not stored");
                }
            }
        }
        Err(e) => {
            tracing::error!(tenant = %store.id(), import = report.import_id, error = %e, "attribution failed; the import stands")
        }
    }
    report
}

/// The identity pass after a committed import. Infallible by type: once the
/// import is committed the client is told so, whatever happens here (a
/// failed pass is retried after the next import; a report whose merge
/// count could not be stored says it in the log).
fn after_commit(store: &TenantStore, mut report: ImportReport) -> ImportReport {
    if report.customers.changed() == 0 && report.vehicles.changed() == 0 {
        return report;
    }
    match crate::identity::find_and_merge(store, Some(report.import_id)) {
        Ok(merges) => {
            report.merges = merges.len() as u64;
            if !merges.is_empty() {
                if let Err(e) = store.update_import(&report) {
                    tracing::error!(tenant = %store.id(), import = report.import_id, error = %e, "the import is committed; its merge count was not stored");
                }
            }
        }
        Err(e) => tracing::error!(tenant = %store.id(), error = %e, "identity pass failed"),
    }
    report
}

/// The vehicles of a committed import whose holder is still not a known
/// customer (`unheld`: their lines and holders, in file order): kept and
/// attached when the customer is imported, reported as warnings now.
fn park(
    store: &TenantStore,
    mut report: ImportReport,
    unheld: &[(u64, String)],
    max: usize,
) -> ImportReport {
    if unheld.is_empty() {
        return report;
    }
    let warned: std::collections::HashSet<u64> = report.warnings.iter().map(|w| w.line).collect();
    for (line, customer_no) in unheld {
        match store.customer(customer_no) {
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(e) => {
                tracing::error!(tenant = %store.id(), import = report.import_id, error = %e, "cannot tell whether a vehicle's holder is known; not reported as parked");
                continue;
            }
        }
        report.parked += 1;
        if !warned.contains(line) && report.rows_ok > 0 {
            report.rows_ok -= 1;
            report.rows_warned += 1;
        }
        let w = RowError {
            file: report.file_name.clone(),
            line: *line,
            field: ImportField::CustomerNo.name().into(),
            reason: format!(
                "{customer_no:?} is not a known customer; vehicle kept until the customer arrives"
            ),
        };
        push_warning(&mut report, w, max);
    }
    report.warnings.sort_by_key(|w| w.line);
    if let Err(e) = store.update_import(&report) {
        tracing::error!(tenant = %store.id(), import = report.import_id, error = %e, "the import is committed; its parked vehicles were not stored in its report");
    }
    report
}

/// The day a file's name says its export is of: `kunden_2026-11-30.csv`,
/// `20261130_fahrzeuge.csv`, `export-30.11.2026.csv`; `None` when the name
/// has no such date (or more than one different).
pub fn date_in_name(name: &str) -> Option<touchpoint_common::Date> {
    use touchpoint_common::Date;
    let b = name.as_bytes();
    let digits = |from: usize, n: usize| -> Option<u32> {
        let s = b.get(from..from + n)?;
        s.iter()
            .all(u8::is_ascii_digit)
            .then(|| s.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
    };
    let boundary = |i: usize| i >= b.len() || !b[i].is_ascii_digit();
    let mut found: Option<Date> = None;
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        let sep = |at: usize| b.get(at).is_some_and(|c| matches!(c, b'-' | b'_' | b'.'));
        let candidate = if let (Some(y), true, Some(m), true, Some(d)) = (
            digits(i, 4),
            sep(i + 4),
            digits(i + 5, 2),
            sep(i + 7),
            digits(i + 8, 2),
        ) {
            boundary(i + 10)
                .then(|| Date::from_ymd(y as i32, m, d))
                .flatten()
        } else if let (Some(d), true, Some(m), true, Some(y)) = (
            digits(i, 2),
            sep(i + 2),
            digits(i + 3, 2),
            sep(i + 5),
            digits(i + 6, 4),
        ) {
            boundary(i + 10)
                .then(|| Date::from_ymd(y as i32, m, d))
                .flatten()
        } else if let (Some(y), Some(m), Some(d)) =
            (digits(i, 4), digits(i + 4, 2), digits(i + 6, 2))
        {
            boundary(i + 8)
                .then(|| Date::from_ymd(y as i32, m, d))
                .flatten()
        } else {
            None
        };
        if let Some(d) = candidate.filter(|d| d.year() >= 2000) {
            if found.is_some_and(|f| f != d) {
                return None;
            }
            found = Some(d);
        }
        i += 1;
    }
    found
}

fn push_warning(report: &mut ImportReport, w: RowError, max: usize) {
    if report.warnings.len() < max {
        report.warnings.push(w);
    } else {
        report.warnings_truncated += 1;
    }
}

fn push_error(report: &mut ImportReport, e: RowError, max: usize) {
    if report.errors.len() < max {
        report.errors.push(e);
    } else {
        report.errors_truncated += 1;
    }
}

/// Stages one parsed row. Decisions that depend on stored data (which
/// fields to keep, whether a consent statement is newer) are taken when the
/// import is applied; see [`crate::store::ImportTxn`].
fn stage_row(
    txn: &mut ImportTxn<'_>,
    row: parse::Row,
    customer_fields: bool,
    file_name: &str,
    as_of: touchpoint_common::Date,
) -> Result<(), StoreError> {
    // A row of a vehicles-only file names its holder but says nothing about them.
    if let Some(c) = row.customer.filter(|_| customer_fields) {
        txn.put_customer_row(&c, row.dropped, as_of, row.line)?;
    }
    if let Some(v) = row.vehicle {
        txn.put_vehicle_row(&v, row.dropped, as_of, row.line)?;
    }
    for mut c in row.consents {
        c.source = if c.source.is_empty() || c.source.starts_with(IMPORT_SOURCE) {
            format!("{IMPORT_SOURCE}{file_name}")
        } else {
            format!("{IMPORT_SOURCE}{file_name}: {}", c.source)
        };
        txn.put_consent(&c)?;
    }
    if let Some(v) = row.visit {
        txn.put_visit(&v)?;
    }
    if let Some(r) = row.response {
        txn.put_response(&r)?;
    }
    Ok(())
}

/// BLAKE3 of the file from its start and its length, streamed.
fn hash_file(file: &File) -> std::io::Result<(String, u64)> {
    let mut hasher = blake3::Hasher::new();
    let mut reader = file;
    reader.seek(std::io::SeekFrom::Start(0))?;
    let n = std::io::copy(&mut reader, &mut hasher)?;
    Ok((hasher.finalize().to_hex().to_string(), n))
}

/// What tells whether a file changed: its size and modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub len: u64,
    pub modified: Option<SystemTime>,
}

impl Snapshot {
    pub fn of(file: &File) -> std::io::Result<Self> {
        let meta = file.metadata()?;
        Ok(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

/// Opens a file for reading without following a symbolic link in the
/// path's last part, and without blocking on a FIFO.
pub fn open_no_follow(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits())
        .open(path)
}

/// Longest file name shown in reports, in bytes (a file system's limit).
const MAX_SHOWN_NAME: usize = 255;

/// A file name as reports and the history show it: control and
/// direction-changing characters replaced, at most 255 bytes. The name is
/// chosen by whoever dropped or uploaded the file; a line break in it must
/// not start a line of the report.
pub fn shown_file_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len().min(MAX_SHOWN_NAME));
    for c in name.chars() {
        let c = if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            '\u{fffd}'
        } else {
            c
        };
        if out.len() + c.len_utf8() > MAX_SHOWN_NAME {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;

//! Send history: the log of what the system Touchpoint replaces sent to whom
//! and when (a migration from the dealer's old tool or the previous
//! agency), with the members of its control group if it kept one.
//!
//! Each row becomes a message in the tenant's outbox with status `sent` (or
//! `control`) on its past day, so that its recipient's visits are credited
//! to it (`crate::attribution`), frequency capping counts it as a contact,
//! and the planner does not plan the occasion it covered again: the message
//! holds that occasion's key, found by the planner ([`Occasions`]).
//!
//! What a row cost is the previous system's money: it is kept on the
//! message as booked (results show it as the cost of that send) and goes
//! into no month of the ledger, whose budgets are Touchpoint's own.
//!
//! A file is imported whole or not at all: its sends go into the outbox in
//! one transaction, and only then is the file recorded as imported. A file
//! cut off by a crash in between leaves its sends and no record of the
//! file; imported again, every send is found by its occasion key and
//! nothing is added twice. Re-importing a longer log adds only what is new.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;

use touchpoint_common::consent::survivor;
use touchpoint_common::domain::{FieldSet, ImportReport, ImportStatus, RowError, Timestamp};
use touchpoint_common::outbox::{Dispatch, Message, MessageStatus, Occasion, Step, Why};
use touchpoint_common::policy::OccasionKind;

use super::parse::{Parser, Sent};
use super::{push_error, ImportError, ImportOptions, Snapshot};
use crate::store::{Change, StoreError, TenantStore};

/// Sends one file may hold: they go into the outbox in one transaction,
/// which sled keeps whole in memory. A larger log is split by month.
pub const MAX_SENDS: usize = 50_000;

/// Which occasion a past send covered. The planner knows how occasions are
/// found and keyed (`crate::planner::history`); the import asks it.
pub trait Occasions: Send + Sync {
    /// For each send, in order, the occasion the planner would have sent it
    /// for on its day, as the stored data shows it now; `None` where the
    /// data shows none any more (the vehicle was serviced since, the
    /// customer has no vehicle of that kind).
    fn covered(
        &self,
        store: &TenantStore,
        sends: &[&Sent],
    ) -> Result<Vec<Option<Occasion>>, StoreError>;
}

/// Keys every send by its day alone: for an import without a planner
/// (`ImportOptions::default()`, tools and tests of the import alone). The
/// daemon always asks the planner.
pub struct DayKeys;

impl Occasions for DayKeys {
    fn covered(
        &self,
        _store: &TenantStore,
        sends: &[&Sent],
    ) -> Result<Vec<Option<Occasion>>, StoreError> {
        Ok(vec![None; sends.len()])
    }
}

/// A brand service as a send history needs it.
#[derive(Clone, Debug)]
pub struct HistoryService {
    pub template: String,
    pub occasion: OccasionKind,
}

/// The outcome of a history row that passed parsing and its checks.
struct Accepted {
    line: u64,
    sent: Sent,
    recipient: String,
}

/// Imports a send history file whose header `parser` has read. Called by
/// [`super::import_reading`] for files with a sent-date column.
pub(super) fn import<R: Read>(
    store: &TenantStore,
    file: &File,
    mut parser: Parser<R>,
    mut report: ImportReport,
    before: Snapshot,
    opts: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let file_name = report.file_name.clone();
    let mut parsed = Vec::new();
    for row in parser.by_ref() {
        report.rows_total += 1;
        match row {
            Ok(row) => {
                if let Some(sent) = row.sent {
                    parsed.push((row.line, sent));
                }
            }
            Err(e) => {
                report.rows_rejected += 1;
                push_error(&mut report, e, opts.max_reported_errors);
            }
        }
    }
    let failed = |mut report: ImportReport, reason: String| {
        report.status = ImportStatus::Failed { reason };
        report.finished_at = Timestamp::now();
        store.record_import(&report)?;
        Ok(report)
    };
    if let Some(cause) = parser.aborted() {
        let reason = format!("stopped reading at row {}: {cause}", report.rows_total);
        return failed(report, reason);
    }
    if parsed.len() > MAX_SENDS {
        let reason = format!(
            "{} sends in one file; at most {MAX_SENDS} are imported at once: split the history by month",
            parsed.len()
        );
        return failed(report, reason);
    }
    let after = Snapshot::of(file).map_err(|source| ImportError::Io {
        path: file_name.clone(),
        source,
    })?;
    if after != before || report.bytes != before.len {
        let reason = format!(
            "the file changed while it was being imported (it had {} bytes, then {}); nothing of it was imported",
            before.len, after.len
        );
        return failed(report, reason);
    }

    let planning = store.plan_lock();
    let merges = store.merge_map()?;
    let mut accepted = Vec::with_capacity(parsed.len());
    for (line, sent) in parsed {
        match check(store, &merges, &sent, opts)? {
            Ok(recipient) => accepted.push(Accepted {
                line,
                sent,
                recipient,
            }),
            Err((field, reason)) => {
                report.rows_rejected += 1;
                let e = RowError {
                    file: file_name.clone(),
                    line,
                    field: field.into(),
                    reason,
                };
                push_error(&mut report, e, opts.max_reported_errors);
            }
        }
    }
    // Rows refused by the checks after those refused by parsing: in file order.
    report.errors.sort_by_key(|e| e.line);
    report.rows_ok = accepted.len() as u64;
    let sends: Vec<&Sent> = accepted.iter().map(|a| &a.sent).collect();
    let covered = opts.occasions.covered(store, &sends)?;

    let now = Timestamp::now();
    let mut keys = HashSet::new();
    let mut messages = Vec::new();
    let mut already = 0u64;
    for (a, occasion) in accepted.iter().zip(covered) {
        let mut occasion = occasion.unwrap_or_else(|| history_occasion(a, opts));
        if a.sent.vin.is_empty() {
            // The row names no vehicle: which of the customer's vehicles it
            // reminded of is not known, so a visit of any of them answers it
            // (`crate::attribution`); the planner's guess only keys it.
            occasion.vin = None;
        }
        if !keys.insert(occasion.key.clone()) || store.planned_occasion(&occasion.key)?.is_some() {
            already += 1;
            continue;
        }
        messages.push((a, occasion));
    }
    let first = match messages.len() as u64 {
        0 => 0,
        n => store.reserve_message_ids(n)?,
    };
    let changes: Vec<Change> = messages
        .into_iter()
        .enumerate()
        .map(|(i, (a, occasion))| {
            let m = message(store, first + i as u64, a, occasion, &file_name, opts, now);
            Change {
                before: None,
                after: m,
                ledger: Vec::new(),
                claim_occasions: true,
                free_occasions: false,
                sent_on: None,
                credit: None,
                tracking: None,
            }
        })
        .collect();
    let added = changes.len();
    store.apply_as_one(&changes)?;
    store.flush()?;
    drop(planning);

    report.format = format!("send history; {}", report.format);
    report.finished_at = Timestamp::now();
    // The file is recorded (its hash with it) only now that its sends are
    // durable: see the module's comment.
    let txn = store.begin_import_with(report.import_id, FieldSet::default(), report.started_at)?;
    let report = txn.commit(&report)?;
    tracing::info!(
        tenant = %store.id(),
        import = report.import_id,
        added,
        already,
        rejected = report.rows_rejected,
        "send history imported"
    );
    if added > 0 {
        // Visits imported before the history may answer its sends.
        return Ok(super::credit_responses(store, report, &[], &opts.windows));
    }
    Ok(report)
}

/// Checks a send against the stored data and the brand's services; the
/// recipient it is for (after merges), or the field and reason it is
/// rejected for.
fn check(
    store: &TenantStore,
    merges: &HashMap<String, String>,
    sent: &Sent,
    opts: &ImportOptions,
) -> Result<Result<String, (&'static str, String)>, StoreError> {
    if !opts.services.contains_key(&sent.service) {
        let mut known: Vec<&str> = opts.services.keys().map(String::as_str).collect();
        known.sort_unstable();
        return Ok(Err((
            "sent_service",
            format!(
                "{:?} is not a service of the brand policy (services: {})",
                sent.service,
                known.join(", ")
            ),
        )));
    }
    let recipient = survivor(merges, &sent.customer_no).to_string();
    if store.customer(&recipient)?.is_none() {
        return Ok(Err((
            "customer_no",
            format!(
                "no customer {:?} in this dealer's data; import the customer export first",
                sent.customer_no
            ),
        )));
    }
    if !sent.vin.is_empty() {
        match store.vehicle(&sent.vin)? {
            None => {
                return Ok(Err((
                    "vin",
                    format!("no vehicle {} in this dealer's data", sent.vin),
                )))
            }
            Some(v) if survivor(merges, &v.customer_no) != recipient => {
                return Ok(Err((
                    "vin",
                    format!(
                        "vehicle {} belongs to customer {}, not to {}",
                        sent.vin, v.customer_no, sent.customer_no
                    ),
                )))
            }
            Some(_) => {}
        }
    }
    Ok(Ok(recipient))
}

/// The occasion of a send whose occasion the stored data no longer shows:
/// keyed by its day, a key the planner never makes, so it blocks nothing
/// and is found again on a re-import.
fn history_occasion(a: &Accepted, opts: &ImportOptions) -> Occasion {
    let s = &a.sent;
    let subject = if s.vin.is_empty() {
        &a.recipient
    } else {
        &s.vin
    };
    Occasion {
        key: format!("{}:{subject}:sent:{}", s.service, s.date),
        service: s.service.clone(),
        kind: opts
            .services
            .get(&s.service)
            .map_or(OccasionKind::Campaign, |h| h.occasion),
        vin: (!s.vin.is_empty()).then(|| s.vin.clone()),
        due: s.date,
        reason: format!(
            "sent on {} by the previous system; the stored data no longer shows its occasion",
            s.date
        ),
        value: 0,
    }
}

fn message(
    store: &TenantStore,
    id: u64,
    a: &Accepted,
    occasion: Occasion,
    file_name: &str,
    opts: &ImportOptions,
    now: Timestamp,
) -> Message {
    let s = &a.sent;
    let (status, channel) = match s.channel {
        Some(c) => (MessageStatus::Sent, c),
        // A control record keeps a channel like any message; which one the
        // previous system would have used is not known, and no report
        // shows a control record's channel.
        None => (
            MessageStatus::Control,
            touchpoint_common::domain::Channel::Post,
        ),
    };
    let line = format!("imported from send history ({file_name}:{})", a.line);
    // Noon UTC: the same calendar day in every time zone the daemon may run in.
    let at = Timestamp(Timestamp::from_date(s.date).0 + 12 * 3_600_000);
    let template = opts
        .services
        .get(&s.service)
        .map(|h| h.template.clone())
        .unwrap_or_default();
    Message {
        id,
        message_id: format!(
            "<tp.{}.{id}@{}>",
            store.id(),
            touchpoint_common::outbox::HISTORY_MESSAGE_DOMAIN
        ),
        recipient: a.recipient.clone(),
        channel,
        service: s.service.clone(),
        template,
        value: occasion.value,
        why: vec![
            Why {
                step: Step::Occasion,
                text: line.clone(),
            },
            Why {
                step: Step::Occasion,
                text: occasion.reason.clone(),
            },
        ],
        occasions: vec![occasion],
        send_on: s.date,
        send_at: 12 * 60,
        cost: 0,
        status,
        planned_at: now,
        policy: 0,
        history: vec![(at, status, line)],
        dispatch: Dispatch {
            booked: s.cost.unwrap_or(0),
            first_attempt: (status == MessageStatus::Sent).then_some(at),
            ..Dispatch::default()
        },
    }
}

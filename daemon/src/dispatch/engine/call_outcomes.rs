//! What the call centre reports about the calls of a call list: the history
//! line, booked minutes, a wrong number marked bad, a refusal withdrawing
//! phone consent. A row about anything but a call that was made is refused
//! with its line; the rest of the file applies.
//!
//! Each tenant's rows apply all or nothing, as far as a store allows: every
//! row is read and checked before anything is written; then the call
//! centre's answers about the dealer's customers (consents withdrawn,
//! numbers marked wrong) are written in one transaction, and the outcomes on
//! the calls (history lines, booked minutes) in another. Answers go first:
//! should the second write fail, a customer who declined is not called
//! again, and sending the file again adds what is missing. A tenant that
//! fails is one row of the report saying exactly what of it was stored;
//! it never fails the request after other tenants were written.

use std::collections::BTreeMap;

use touchpoint_common::domain::{Channel, Consent, Timestamp};
use touchpoint_common::protocol::OutcomeReport;
use touchpoint_common::report::{Credited, ResponseKind};
use touchpoint_common::TenantId;

use super::{today_local, why, Dispatcher, Result, S};
use crate::dispatch::calls;
use crate::ledger;
use crate::policy::Policies;
use crate::store::{Change, StoreError};

/// Error rows a report lists at most; one more says how many were left out
/// (an answer must fit a frame, and its audit line stays short).
pub(crate) const REPORTED_ERRORS: usize = 1_000;

/// What one tenant's rows change, read and checked, nothing written yet.
#[derive(Default)]
struct Planned {
    changes: Vec<Change>,
    /// Phone consent withdrawn by a refusal.
    consents: Vec<Consent>,
    /// Numbers reported wrong, with the reason stored.
    wrong: Vec<(String, String)>,
    unchanged: u64,
}

impl Dispatcher {
    /// Applies outcomes the call centre reported: history, booked minutes,
    /// a wrong number marks the number bad, a refusal withdraws phone consent.
    /// Only phone tasks that went out in a call list take an outcome; any
    /// other row is an error with its line, and the rest of the file applies.
    /// A tenant whose rows cannot be applied is an error row saying what of
    /// it was stored (see the module docs); the request itself does not fail.
    pub fn call_outcomes(
        &self,
        file_name: &str,
        data: &[u8],
        allowed: &dyn Fn(&TenantId) -> bool,
    ) -> Result<OutcomeReport> {
        let (rows, errors) = calls::parse_outcomes(file_name, data);
        let mut report = OutcomeReport {
            errors: errors
                .iter()
                .map(|e| format!("{file_name}:{}: {}: {}", e.line, e.field, e.message))
                .collect(),
            ..Default::default()
        };
        let p = self.policies.current();
        let now = Timestamp::now().0;
        let mut by_tenant: BTreeMap<TenantId, Vec<calls::CallOutcome>> = BTreeMap::new();
        for r in rows {
            by_tenant.entry(r.tenant.clone()).or_default().push(r);
        }
        for (t, rows) in by_tenant {
            if !allowed(&t) {
                report.errors.push(format!(
                    "{file_name}: tenant {t}: outside your scope; {} rows skipped",
                    rows.len()
                ));
                continue;
            }
            if let Err(e) = self.tenant_call_outcomes(&t, file_name, rows, &p, now, &mut report) {
                report.errors.push(format!("{file_name}: tenant {t}: {e}"));
            }
        }
        if report.errors.len() > REPORTED_ERRORS {
            let more = report.errors.len() - REPORTED_ERRORS;
            report.errors.truncate(REPORTED_ERRORS);
            report
                .errors
                .push(format!("{file_name}: … and {more} more errors"));
        }
        Ok(report)
    }

    /// One tenant's rows (see the module docs). Rows refused one by one go
    /// into `report` as they are found; `Err` says what of the tenant's
    /// rows was stored when they could not all be.
    fn tenant_call_outcomes(
        &self,
        t: &TenantId,
        file_name: &str,
        rows: Vec<calls::CallOutcome>,
        p: &Policies,
        now: i64,
        report: &mut OutcomeReport,
    ) -> std::result::Result<(), String> {
        let n = rows.len();
        let nothing = |e: &dyn std::fmt::Display| {
            format!(
                "nothing of its {n} {} was stored: {e}",
                plural(n, "row", "rows")
            )
        };
        let store = self.stores.tenant(t).map_err(|e| nothing(&e))?;
        // No planning run or dispatch pass moves these messages between
        // the reading and the writing.
        let _lock = store.plan_lock();
        let planned = self
            .plan_call_outcomes(&store, t, file_name, rows, p, now, report)
            .map_err(|e| nothing(&e))?;
        let recorded = store
            .record_consents_and_bad_addresses(&planned.consents, &planned.wrong)
            .map_err(|e| nothing(&e))?;
        let answers = [
            (
                recorded,
                "phone consent withdrawn",
                "phone consents withdrawn",
            ),
            (
                planned.wrong.len(),
                "number marked wrong",
                "numbers marked wrong",
            ),
        ]
        .iter()
        .filter(|(k, ..)| *k > 0)
        .map(|(k, one, many)| format!("{k} {}", plural(*k, one, many)))
        .collect::<Vec<_>>()
        .join(", ");
        let calls = planned.changes.len();
        let outcomes = format!("the outcomes of {calls} {}", plural(calls, "call", "calls"));
        if let Err(e) = store.apply_as_one(&planned.changes) {
            if answers.is_empty() {
                return Err(nothing(&e));
            }
            // What was stored is made durable, as it is reported.
            let durable = match store.flush() {
                Ok(()) => String::new(),
                Err(f) => format!(" (and may be lost: {f})"),
            };
            return Err(format!(
                "stored: {answers}{durable}; not stored: {outcomes} (history, minutes): {e}; \
                 send the file again to store them"
            ));
        }
        if let Err(e) = store.flush() {
            return Err(format!(
                "{answers}{}{outcomes} written, but perhaps not kept on disk: {e}; \
                 send the file again (what was kept counts as unchanged)",
                if answers.is_empty() { "" } else { "; " }
            ));
        }
        report.applied += calls as u64;
        report.unchanged += planned.unchanged;
        Ok(())
    }

    /// Reads and checks one tenant's rows and works out what they change,
    /// writing nothing.
    #[allow(clippy::too_many_arguments)]
    fn plan_call_outcomes(
        &self,
        store: &crate::store::TenantStore,
        t: &TenantId,
        file_name: &str,
        rows: Vec<calls::CallOutcome>,
        p: &Policies,
        now: i64,
        report: &mut OutcomeReport,
    ) -> Result<Planned> {
        let mut planned = Planned::default();
        for r in rows {
            let refused =
                |why: String| format!("{file_name}:{}: task_id: {t}.{}: {why}", r.line, r.message);
            let m = match store.message(r.message) {
                Ok(Some(m)) => m,
                Ok(None) => {
                    report.errors.push(refused("no such message".into()));
                    continue;
                }
                // One damaged record refuses its row, not the tenant's rows.
                Err(e @ StoreError::Codec { .. }) => {
                    report.errors.push(refused(format!(
                        "the message cannot be read ({e}); outcome not applied"
                    )));
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            // Only a call that was made can have an outcome: a row naming
            // a letter or an email (a typo, a mixed-up file) would
            // otherwise withdraw phone consent or mark a number wrong.
            if m.channel != Channel::Phone {
                let what = match m.channel {
                    Channel::Post => "a letter (post)",
                    _ => "an email",
                };
                report.errors.push(refused(format!(
                    "{what}, not a call task; outcome not applied"
                )));
                continue;
            }
            if m.status != S::Sent || m.dispatch.batch.is_empty() {
                report.errors.push(refused(format!(
                    "not in a call list yet ({}); outcome not applied",
                    m.status
                )));
                continue;
            }
            // The note was made one short clean line when the file was read.
            let line = format!(
                "call outcome: {:?}{}{}",
                r.outcome,
                r.minutes.map(|m| format!(", {m} min")).unwrap_or_default(),
                if r.note.is_empty() {
                    String::new()
                } else {
                    format!(", {}", r.note)
                }
            );
            if m.why.iter().any(|w| w.text == line) {
                planned.unchanged += 1;
                continue;
            }
            let mut c = Change::new(m.clone(), m.clone());
            why(&mut c.after, line.clone());
            c.after.history.push((Timestamp(now), m.status, line));
            if let (Some(min), Some(rate)) = (r.minutes, p.brand.channels.phone.per_minute) {
                let actual = i64::from(min) * rate.0;
                let delta = actual - m.dispatch.booked;
                if delta != 0 && m.status == S::Sent {
                    let day = today_local(now);
                    let share = ledger::brand_share(&p.brand, &m.service, day, actual)
                        - m.dispatch.brand_share;
                    c.after.dispatch.booked = actual;
                    c.after.dispatch.brand_share += share;
                    c.ledger.push((
                        touchpoint_common::outbox::month_of(day),
                        m.service.clone(),
                        crate::store::LedgerDelta {
                            reserved: 0,
                            booked: delta,
                            brand: share,
                        },
                    ));
                }
            }
            match r.outcome {
                calls::Outcome::WrongNumber => {
                    if let Some(ph) = store.customer(&m.recipient)?.and_then(|c| c.phone) {
                        planned
                            .wrong
                            .push((ph, "call centre: wrong number".to_string()));
                    }
                }
                // An appointment booked on the call is the call task's
                // response, credited to the task itself (not through the
                // window: the call and the booking are one act); the
                // visit that follows is the appointment kept, not a
                // second response to the same call.
                calls::Outcome::Appointment => {
                    let credited = Credited {
                        kind: ResponseKind::Appointment,
                        date: today_local(now),
                        value: None,
                        source: format!("{file_name}:{}", r.line),
                    };
                    let text = format!(
                        "{} {} ({}), booked on the call",
                        credited.kind.name(),
                        credited.date,
                        credited.source
                    );
                    c.after.why.push(touchpoint_common::outbox::Why {
                        step: touchpoint_common::outbox::Step::Response,
                        text: text.clone(),
                    });
                    c.after
                        .history
                        .push((Timestamp(now), m.status, format!("response: {text}")));
                    c.credit = Some(Some(credited));
                }
                calls::Outcome::Declined => {
                    planned.consents.push(Consent {
                        customer_no: m.recipient.clone(),
                        channel: Channel::Phone,
                        granted: false,
                        source: format!("call-centre:{file_name}"),
                        at: Timestamp(now),
                    });
                }
                _ => {}
            }
            planned.changes.push(c);
        }
        Ok(planned)
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

#[cfg(test)]
mod tests;

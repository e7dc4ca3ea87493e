//! What the call centre reports about the calls of a call list: the history
//! line, booked minutes, a wrong number marked bad, a refusal withdrawing
//! phone consent. A row about anything but a call that was made is refused
//! with its line; the rest of the file applies.

use std::collections::BTreeMap;

use touchpoint_common::domain::{Channel, Consent, Timestamp};
use touchpoint_common::TenantId;

use super::{today_local, why, Dispatcher, Result, S};
use crate::dispatch::calls;
use crate::ledger;
use crate::store::Change;

impl Dispatcher {
    /// Applies outcomes the call centre reported: history, booked minutes,
    /// a wrong number marks the number bad, a refusal withdraws phone consent.
    /// Only phone tasks that went out in a call list take an outcome; any
    /// other row is an error with its line, and the rest of the file applies.
    pub fn call_outcomes(
        &self,
        file_name: &str,
        data: &[u8],
        allowed: &dyn Fn(&TenantId) -> bool,
    ) -> Result<touchpoint_common::protocol::OutcomeReport> {
        let (rows, errors) = calls::parse_outcomes(file_name, data);
        let mut report = touchpoint_common::protocol::OutcomeReport {
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
            let store = match self.stores.tenant(&t) {
                Ok(s) => s,
                Err(e) => {
                    report.errors.push(format!("{file_name}: tenant {t}: {e}"));
                    continue;
                }
            };
            let _lock = store.plan_lock();
            let mut changes = Vec::new();
            for r in rows {
                let refused = |why: String| {
                    format!("{file_name}:{}: task_id: {t}.{}: {why}", r.line, r.message)
                };
                let Some(m) = store.message(r.message)? else {
                    report.errors.push(refused("no such message".into()));
                    continue;
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
                    report.unchanged += 1;
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
                        if let Some(c) = store.customer(&m.recipient)? {
                            if let Some(ph) = c.phone {
                                store.mark_bad_address(&ph, "call centre: wrong number")?;
                            }
                        }
                    }
                    calls::Outcome::Declined => {
                        store.record_consent(&Consent {
                            customer_no: m.recipient.clone(),
                            channel: Channel::Phone,
                            granted: false,
                            source: format!("call-centre:{file_name}"),
                            at: Timestamp(now),
                        })?;
                    }
                    _ => {}
                }
                changes.push(c);
                report.applied += 1;
            }
            store.apply(&changes)?;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests;

//! Operator actions: hold, release, cancel, retry and send-now of messages
//! (each allowed by the message's status), and pauses of a tenant or a
//! service.

use touchpoint_common::domain::Timestamp;
use touchpoint_common::protocol::{ActionResult, MessageAction, Pause, PauseScope};
use touchpoint_common::TenantId;

use touchpoint_common::outbox::{month_of, SENT_NOW_BY};

use super::{minutes_local, today_local, why, Dispatcher, Result, S};
use crate::ledger;
use crate::store::{Change, StoreError};

impl Dispatcher {
    pub fn apply_action(
        &self,
        tenant: &TenantId,
        ids: &[u64],
        action: MessageAction,
        by: &str,
    ) -> Result<Vec<ActionResult>> {
        let store = self.stores.tenant(tenant)?;
        let _lock = store.plan_lock();
        let now = Timestamp::now().0;
        let mut out = Vec::new();
        let mut changes = Vec::new();
        for &id in ids {
            let m = match store.message(id) {
                Ok(Some(m)) => m,
                Ok(None) => {
                    out.push(ActionResult {
                        id,
                        outcome: Err("no such message".into()),
                    });
                    continue;
                }
                // One damaged record fails its own action, not the others.
                Err(e @ StoreError::Codec { .. }) => {
                    out.push(ActionResult {
                        id,
                        outcome: Err(format!("cannot be read: {e}")),
                    });
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let mut c = Change::new(m.clone(), m.clone());
            let a = &mut c.after;
            let by_line = format!("{} by {by}", action.as_str());
            let r: std::result::Result<(), String> = match action.check(m.status, m.channel) {
                Err(e) => Err(e),
                Ok(()) => match action {
                    MessageAction::Hold => {
                        a.dispatch.held_from = Some(m.status);
                        a.set_status(Timestamp(now), S::Held, by_line);
                        Ok(())
                    }
                    MessageAction::Release => {
                        let back = a.dispatch.held_from.take().unwrap_or(S::Queued);
                        let back = if back == S::Deferred { S::Queued } else { back };
                        if back == S::Queued {
                            a.dispatch.retry_at = Some(Timestamp(now));
                        }
                        a.set_status(Timestamp(now), back, by_line);
                        Ok(())
                    }
                    MessageAction::Cancel => {
                        why(a, format!("cancelled by {by}"));
                        a.dispatch.last_error = by_line.clone();
                        a.set_status(Timestamp(now), S::Cancelled, by_line);
                        // Occasions stay taken: an operator's cancel is final for them.
                        ledger::release(&mut c);
                        Ok(())
                    }
                    MessageAction::Retry => {
                        a.dispatch.retry_at = Some(Timestamp(now));
                        a.dispatch.first_attempt = None;
                        if m.status == S::Failed {
                            // Re-reserve what the failure released.
                            ledger::reserve(&mut c, &m);
                        }
                        c.after.set_status(Timestamp(now), S::Queued, by_line);
                        Ok(())
                    }
                    MessageAction::SendNow => {
                        let (today, minute) = (today_local(now), minutes_local(now));
                        if (m.send_on, m.send_at) <= (today, minute) {
                            Err(
                                "it is due already: it goes out as soon as dispatch gets to it"
                                    .into(),
                            )
                        } else {
                            // The estimate moves to this month's reservations:
                            // dispatch checks this month's budget against it.
                            // (Nothing is booked before a message goes out;
                            // as `ledger::release`, a booked one moves nothing.)
                            let moves = month_of(m.send_on) != month_of(today)
                                && m.dispatch.booked == 0
                                && m.cost != 0;
                            if moves {
                                ledger::release(&mut c);
                            }
                            let a = &mut c.after;
                            why(
                                a,
                                format!(
                                    "{SENT_NOW_BY}{by} (planned for {} {:02}:{:02})",
                                    m.send_on,
                                    m.send_at / 60,
                                    m.send_at % 60
                                ),
                            );
                            a.send_on = today;
                            a.send_at = minute;
                            if m.status == S::Queued {
                                a.dispatch.retry_at = Some(Timestamp(now));
                            }
                            a.set_status(Timestamp(now), m.status, by_line);
                            if moves {
                                let after = c.after.clone();
                                ledger::reserve(&mut c, &after);
                            }
                            Ok(())
                        }
                    }
                },
            };
            match r {
                Ok(()) => {
                    out.push(ActionResult {
                        id,
                        outcome: Ok(c.after.status),
                    });
                    changes.push(c);
                }
                Err(e) => out.push(ActionResult {
                    id,
                    outcome: Err(e),
                }),
            }
        }
        store.apply(&changes)?;
        drop(_lock);
        self.wake(Some(tenant));
        Ok(out)
    }

    pub fn pause(&self, scope: PauseScope, by: &str) -> Result<Vec<Pause>> {
        let tenant = scope.tenant.clone();
        let mut st = self.state();
        if !st.pauses.iter().any(|p| p.scope == scope) {
            st.pauses.push(Pause {
                scope,
                by: by.to_string(),
                at: Timestamp::now(),
            });
            st.pauses.sort_by(|a, b| a.scope.cmp(&b.scope));
        }
        self.stores
            .central()
            .set_pauses(&st.pauses, tenant.as_ref())?;
        Ok(st.pauses.clone())
    }

    pub fn resume(&self, scope: PauseScope) -> Result<Vec<Pause>> {
        let mut st = self.state();
        st.pauses.retain(|p| p.scope != scope);
        self.stores
            .central()
            .set_pauses(&st.pauses, scope.tenant.as_ref())?;
        let out = st.pauses.clone();
        drop(st);
        self.wake.notify_one();
        Ok(out)
    }
}

#[cfg(test)]
mod tests;

//! What the transport said about each email: accepted (sent, its cost
//! booked), refused for now (deferred, waits doubling up to the maximum
//! age), refused for good (the address marked bad; a letter in its place
//! where the customer may get one, else failed), or the relay not reached
//! (queued again, the relay backed off).

use std::sync::atomic::Ordering;

use touchpoint_common::domain::{Channel, Timestamp};
use touchpoint_common::outbox::Message;
use touchpoint_common::TenantId;

use super::recovery::CUT_RESEND;
use super::{
    minutes_local, today_local, why, DispatchError, Dispatcher, ErrorAbout, Outcome, Result, S,
};
use crate::dispatch::smtp::Delivery;
use crate::ledger;
use crate::policy::Policies;
use crate::store::{Change, StoreError, TenantStore};

/// How long email waits after the relay could not be reached, doubling up to the cap.
pub(super) const RELAY_BACKOFF_MIN: i64 = 2_000;

const RELAY_BACKOFF_MAX: i64 = 300_000;

impl Dispatcher {
    /// Records outcomes, durably.
    pub(super) fn record_and_flush(&self, done: Vec<Outcome>) {
        self.record_outcomes(done);
        if let Err(e) = self.flush_written() {
            self.note_error(None, format!("flush: {e}"));
        }
    }

    /// Records what the transport said, with what could not be recorded
    /// before: a tenant whose store cannot be written to now keeps its
    /// outcomes for the next round (its messages stay `sending`).
    pub(super) fn record_outcomes(&self, done: Vec<Outcome>) {
        let now = Timestamp::now().0;
        let policies = self.policies.current();
        // Outcomes stay listed until written, so that no look for
        // interrupted sends (a control request's, say) takes their
        // messages for interrupted meanwhile.
        let by_tenant = {
            let mut st = self.state();
            for o in done {
                // The transport slot is free again whatever becomes of
                // the record; counted once, not with every retry.
                let accepted = matches!(o.delivery, Delivery::Accepted { .. });
                st.throttles.done(&o.tenant, &o.domain, accepted);
                st.unrecorded.entry(o.tenant.clone()).or_default().push(o);
            }
            st.unrecorded.clone()
        };
        for (t, outcomes) in by_tenant {
            match self.record_tenant_outcomes(&t, &outcomes, &policies, now) {
                Ok(()) => self.forget_outcomes(&t, &outcomes),
                Err(DispatchError::Store(StoreError::UnknownTenant(_))) => {
                    // Erased or removed meanwhile: nothing is left to write
                    // to (and a tenant registered again under the id must
                    // not have its messages taken for these).
                    self.note_error(
                        Some(&t),
                        format!(
                            "tenant {t}: {} send outcome(s) not recorded: the tenant is gone",
                            outcomes.len()
                        ),
                    );
                    self.forget_outcomes(&t, &outcomes);
                }
                Err(e) => {
                    self.note_error(
                        Some(&t),
                        format!(
                            "tenant {t}: recording {} send outcome(s), kept to try again: {e}",
                            outcomes.len()
                        ),
                    );
                    if let Some(kept) = self.state().unrecorded.get_mut(&t) {
                        for o in kept {
                            o.retried = true;
                        }
                    }
                }
            }
        }
    }

    fn forget_outcomes(&self, t: &TenantId, outcomes: &[Outcome]) {
        let mut st = self.state();
        st.unrecorded.remove(t);
        for o in outcomes {
            st.in_flight.remove(&(t.clone(), o.id));
        }
    }

    /// Whether an email was handed to the transport and its outcome is
    /// not yet written (see `State::in_flight`).
    pub(super) fn is_in_flight(&self, t: &TenantId, id: u64) -> bool {
        self.state().in_flight.contains(&(t.clone(), id))
    }

    /// Whether outcomes wait to be recorded (see [`Self::record_outcomes`]).
    pub(super) fn has_unrecorded(&self, t: Option<&TenantId>) -> bool {
        let st = self.state();
        match t {
            Some(t) => st.unrecorded.contains_key(t),
            None => !st.unrecorded.is_empty(),
        }
    }

    /// Writes one tenant's outcomes, the messages' changes in one batch.
    /// On an error the caller keeps them all; the retry leaves alone a
    /// message that already moved on, and what may have been written
    /// before the error (a bad address marked, a letter's id reserved) is
    /// the same again or only a gap in the ids.
    fn record_tenant_outcomes(
        &self,
        t: &TenantId,
        outcomes: &[Outcome],
        p: &Policies,
        now: i64,
    ) -> Result<()> {
        let store = self.stores.tenant(t)?;
        let _lock = store.plan_lock();
        let retry_first = i64::from(p.brand.email.retry_first_minutes) * 60_000;
        let max_age = i64::from(p.brand.email.retry_max_hours) * 3_600_000;
        let mut changes = Vec::new();
        let mut unreachable = None;
        let (mut sent, mut deferred, mut cut) = (0, 0, 0);
        for o in outcomes {
            // What the transport said goes by when it said it.
            let (now, today) = (o.at, today_local(o.at));
            // A damaged record is skipped (noted once), not retried for
            // ever with every later outcome of its tenant.
            let Some(m) = self.message_or_skip(&store, o.id)? else {
                continue;
            };
            if m.status != S::Sending {
                continue;
            }
            let mut after = m.clone();
            match &o.delivery {
                Delivery::Accepted { response } => {
                    after.dispatch.last_error.clear();
                    after.dispatch.retry_at = None;
                    after.set_status(
                        Timestamp(now),
                        S::Sent,
                        format!("accepted: {}", response.trim()),
                    );
                    let mut c = Change::new(m, after);
                    c.sent_on = Some(today);
                    ledger::book(&mut c, &p.brand, p.brand.channels.email.cost.0, today);
                    changes.push(c);
                    sent += 1;
                }
                Delivery::Transient { code, message } => {
                    let first = m.dispatch.first_attempt.map(|t| t.0).unwrap_or(now);
                    let answer = format!("{code} {}", message.trim());
                    if now - first >= max_age {
                        changes.extend(self.fail_email(
                            &store,
                            p,
                            m,
                            format!(
                                "still refused after {} attempts over {} hours: {answer}",
                                after.dispatch.attempts, p.brand.email.retry_max_hours
                            ),
                            now,
                        )?);
                        continue;
                    }
                    let exp = after.dispatch.attempts.saturating_sub(1).min(16);
                    let wait = retry_first.saturating_mul(1 << exp).min(max_age);
                    let at = (now + wait).min(first + max_age);
                    after.dispatch.retry_at = Some(Timestamp(at));
                    after.dispatch.last_error = answer.clone();
                    after.set_status(
                        Timestamp(now),
                        S::Deferred,
                        format!("{answer}; next attempt {}", Timestamp(at)),
                    );
                    changes.push(Change::new(m, after));
                    deferred += 1;
                }
                Delivery::Permanent { code, message } => {
                    let answer = format!("{code} {}", message.trim());
                    if matches!(*code, 550 | 551 | 553) {
                        let addr = m.dispatch.address.clone();
                        if !addr.is_empty() {
                            store.mark_bad_address(&addr, &answer)?;
                        }
                    }
                    changes.extend(self.fail_email(
                        &store,
                        p,
                        m,
                        format!("refused: {answer}"),
                        now,
                    )?);
                }
                Delivery::Unreachable { error } => {
                    if error.contains("may have taken the message") {
                        cut += 1;
                        after
                            .history
                            .push((Timestamp(now), S::Sending, CUT_RESEND.into()));
                    }
                    // Says nothing about the message: it waits for the relay.
                    after.dispatch.attempts = after.dispatch.attempts.saturating_sub(1);
                    after.dispatch.last_error = error.clone();
                    after.dispatch.retry_at = Some(Timestamp(now));
                    after.set_status(
                        Timestamp(now),
                        S::Queued,
                        format!("relay not reached: {error}; waits"),
                    );
                    changes.push(Change::new(m, after));
                    if !o.retried {
                        unreachable = Some(error.clone());
                    }
                }
            }
        }
        store.apply_unflushed(&changes)?;
        self.counters.sent.fetch_add(sent, Ordering::Relaxed);
        self.counters
            .deferred
            .fetch_add(deferred, Ordering::Relaxed);
        self.counters.resent_cut.fetch_add(cut, Ordering::Relaxed);
        self.count_failed(&changes);
        let accepted = changes.iter().filter(|c| c.after.status == S::Sent).count() as u64;
        self.throughput.record(now, accepted);
        let mut st = self.state();
        st.unflushed.insert(t.clone());
        let relay_was_down = st.relay_down_until.is_some();
        match unreachable {
            Some(e) => {
                let backoff = st.relay_backoff;
                st.relay_down_until = Some(now + backoff);
                st.relay_backoff = (backoff * 2).min(RELAY_BACKOFF_MAX);
                st.last_error = format!("relay not reached: {e}");
                st.last_error_about = ErrorAbout::Everyone;
            }
            None => {
                if changes.iter().any(|c| c.after.status == S::Sent) {
                    st.relay_down_until = None;
                    st.relay_backoff = RELAY_BACKOFF_MIN;
                }
            }
        }
        let relay_down = st.relay_down_until.is_some();
        drop(st);
        if relay_was_down != relay_down {
            // Only a scope over every tenant is shown the relay.
            self.stores.events().publish_to(
                &[touchpoint_common::protocol::Topic::Dispatch],
                crate::events::Audience::ScopeOverAll,
            );
        }
        Ok(())
    }

    /// An email that cannot be delivered: a letter in its place if the
    /// customer may get one, else failed. Returns the changes to write.
    pub(super) fn fail_email(
        &self,
        store: &TenantStore,
        p: &Policies,
        m: Message,
        reason: String,
        now: i64,
    ) -> Result<Vec<Change>> {
        let mut email = m.clone();
        email.dispatch.last_error = reason.clone();
        email.dispatch.retry_at = None;
        why(&mut email, format!("email failed: {reason}"));
        let letter = match self.fallback_allowed(store, p, &m)? {
            Ok(how) => Some(how),
            Err(why_not) => {
                why(&mut email, format!("no letter instead: {why_not}"));
                None
            }
        };
        let Some(how) = letter else {
            email.set_status(Timestamp(now), S::Failed, reason);
            let mut c = Change::new(m, email);
            ledger::release(&mut c);
            return Ok(vec![c]);
        };
        let id = store.reserve_message_ids(1)?;
        let mut letter = m.clone();
        letter.id = id;
        letter.message_id = match m.message_id.rsplit_once('@') {
            Some((_, domain)) => format!("<tp.{}.{id}@{domain}", store.id()),
            None => format!("<tp.{}.{id}@touchpoint.invalid>", store.id()),
        };
        letter.channel = Channel::Post;
        letter.cost = p.brand.channels.post.cost.0;
        letter.send_on = today_local(now);
        letter.send_at = minutes_local(now);
        letter.status = S::Queued;
        letter.planned_at = Timestamp(now);
        letter.history = vec![(
            Timestamp(now),
            S::Queued,
            format!("letter in place of email #{}", m.id),
        )];
        letter.dispatch = Default::default();
        letter.dispatch.fallback_of = Some(m.id);
        letter.dispatch.retry_at = Some(Timestamp(now));
        why(
            &mut letter,
            format!(
                "fallback: email #{} failed ({reason}); sent as a letter instead: {how}",
                m.id
            ),
        );
        email.dispatch.fallback_to = Some(id);
        why(&mut email, format!("replaced by letter #{id}"));
        email.set_status(
            Timestamp(now),
            S::Fallback,
            format!("replaced by letter #{id}"),
        );
        let mut ce = Change::new(m, email);
        ledger::release(&mut ce);
        let mut cl = Change {
            before: None,
            after: letter.clone(),
            ledger: Vec::new(),
            claim_occasions: true,
            free_occasions: false,
            sent_on: None,
            credit: None,
            tracking: None,
        };
        ledger::reserve(&mut cl, &letter);
        Ok(vec![ce, cl])
    }

    /// Counts the emails [`Self::fail_email`] failed among `changes`, once
    /// they are written (a write that failed is tried again, and counted
    /// then).
    pub(super) fn count_failed(&self, changes: &[Change]) {
        for c in changes {
            let was_sending = c
                .before
                .as_ref()
                .is_some_and(|b| b.status != c.after.status);
            match c.after.status {
                S::Failed if was_sending && c.after.channel == Channel::Email => {
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                }
                S::Fallback if was_sending => {
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    self.counters.fallbacks.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
    }

    /// Whether a failed email may become a letter: postal consent, a
    /// complete address, the dealer sends letters, the service allows them.
    fn fallback_allowed(
        &self,
        store: &TenantStore,
        p: &Policies,
        m: &Message,
    ) -> Result<std::result::Result<String, String>> {
        let Some(tenant) = p.tenant(store.id()) else {
            return Ok(Err("the dealer has no policy".into()));
        };
        if !tenant.channels.enabled.contains(&Channel::Post) {
            return Ok(Err("the dealer does not send letters".into()));
        }
        if let Some(svc) = p.brand.services.get(&m.service) {
            if svc.forbidden_channels.contains(&Channel::Post)
                || svc.mandatory_channel.is_some_and(|c| c != Channel::Post)
                || !svc.channels.contains(&Channel::Post)
            {
                return Ok(Err(format!("service {} is not sent by post", m.service)));
            }
        }
        let c = match store.customer(&m.recipient) {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(Err(format!("customer {} no longer exists", m.recipient))),
            // A damaged record: no address to write to, and no reason to
            // keep the email's outcome from being recorded.
            Err(StoreError::Codec { .. }) => {
                return Ok(Err(format!(
                    "customer {}'s record cannot be read",
                    m.recipient
                )))
            }
            Err(e) => return Err(e.into()),
        };
        let a = &c.address;
        if a.street.is_empty() || a.postcode.is_empty() || a.city.is_empty() {
            return Ok(Err("no complete postal address".into()));
        }
        let people = self.people(store)?;
        let numbers = people.numbers_of(&m.recipient);
        let basis = match self.consent_of(store, p, &numbers, Channel::Post, &m.recipient)? {
            Ok(basis) => basis,
            Err(why_not) => return Ok(Err(why_not)),
        };
        Ok(Ok(format!(
            "{basis}; to {} {}, {} {}",
            a.street, a.house_no, a.postcode, a.city
        )))
    }
}

#[cfg(test)]
mod tests;

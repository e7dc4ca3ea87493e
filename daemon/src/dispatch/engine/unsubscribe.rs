//! The one way email consent is withdrawn for a message: a mail to its
//! unsubscribe address (`bounces`) and a one-click POST to the daemon's
//! HTTP endpoint (`crate::http`) both come here, so planner and dispatch
//! see either at once (the next email to that person is cancelled at claim).

use touchpoint_common::domain::{Channel, Consent, Timestamp};
use touchpoint_common::TenantId;

use super::{Dispatcher, Result};
use crate::dispatch::verp;
use crate::store::{Change, TenantStore};

/// What a withdrawal for a message did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsubscribed {
    /// A withdrawal was recorded and the message's history says so.
    Recorded,
    /// The person's email consent already stood withdrawn: nothing new.
    Already,
}

/// The message a valid one-click token names, as far as a web page may
/// show it: the dealer's name, nothing about the person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneClickTarget {
    pub tenant: TenantId,
    pub id: u64,
    pub dealer: String,
}

impl Dispatcher {
    /// The message a one-click token names, if the token is ours, its
    /// tenant has a policy and the message is on record; `None` for
    /// anything else, without saying which (the caller answers 404).
    pub fn one_click_target(&self, token: &str) -> Result<Option<OneClickTarget>> {
        let Some((tenant, id)) = verp::parse_unsubscribe_token(token, &self.secret) else {
            return Ok(None);
        };
        let p = self.policies.current();
        let Some(policy) = p.tenant(&tenant) else {
            return Ok(None);
        };
        // The name the email came from (as `claim` writes its From).
        let dealer = if policy.sender.name.is_empty() {
            policy.tenant.name.clone()
        } else {
            policy.sender.name.clone()
        };
        let store = self.stores.tenant(&tenant)?;
        if self.message_or_skip(&store, id)?.is_none() {
            return Ok(None);
        }
        Ok(Some(OneClickTarget { tenant, id, dealer }))
    }

    /// Withdraws email consent for the recipient of message `id` of
    /// `tenant` (a one-click POST), durably. `None`: no such message.
    pub fn unsubscribe_one_click(
        &self,
        tenant: &TenantId,
        id: u64,
    ) -> Result<Option<Unsubscribed>> {
        let store = self.stores.tenant(tenant)?;
        self.withdraw_email_consent(&store, id, "one-click".into(), Timestamp::now())
    }

    /// Records a withdrawal of email consent (`source`, `at`) for the
    /// recipient of message `id`, a history line on the message, and
    /// flushes before returning. Idempotent: when the recipient's email
    /// consent already stands withdrawn, nothing is recorded.
    pub(super) fn withdraw_email_consent(
        &self,
        store: &TenantStore,
        id: u64,
        source: String,
        at: Timestamp,
    ) -> Result<Option<Unsubscribed>> {
        let Some(m) = self.message_or_skip(store, id)? else {
            return Ok(None);
        };
        if store
            .consent(&m.recipient, Channel::Email)?
            .is_some_and(|c| !c.granted)
        {
            return Ok(Some(Unsubscribed::Already));
        }
        let recorded = store.record_consent(&Consent {
            customer_no: m.recipient.clone(),
            channel: Channel::Email,
            granted: false,
            source,
            at,
        })?;
        if recorded {
            let _lock = store.plan_lock();
            if let Some(m) = store.message(id)? {
                let mut c = Change::new(m.clone(), m.clone());
                c.after
                    .history
                    .push((at, m.status, "recipient unsubscribed from email".into()));
                store.apply(&[c])?;
            }
        }
        store.flush()?;
        Ok(Some(if recorded {
            Unsubscribed::Recorded
        } else {
            Unsubscribed::Already
        }))
    }
}

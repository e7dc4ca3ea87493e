//! Costs and budgets (M8): what a message costs when it goes out, who pays
//! which share, and the ledger per tenant, service and month.
//!
//! Planning reserves a message's estimated cost in the month of its send day
//! (the store's one rule for estimates, [`reservation`]); dispatch releases
//! that reservation and books the real cost (postage by weight and discount
//! tier, the email cost, call minutes) in the month it went out, with the
//! brand's share where the brand subsidises the service; a cancel releases
//! the reservation.

use std::collections::BTreeMap;

use touchpoint_common::outbox::{month_of, LedgerEntry, Message};
use touchpoint_common::policy::{BrandPolicy, TenantPolicy};
use touchpoint_common::protocol::CostRow;
use touchpoint_common::{Date, TenantId};

use crate::policy::Policies;
use crate::store::{reservation, Change, LedgerDelta, StoreError, Stores, TenantStore};

/// The brand's share of `cost` for a service on `day`, rounded to the cent.
pub fn brand_share(brand: &BrandPolicy, service: &str, day: Date, cost: i64) -> i64 {
    let pct = i64::from(brand.subsidy(service, day));
    (cost * pct + 50) / 100
}

/// Books `cost` for the message `c.after` sent on `day`: releases its
/// reservation (month of its send day), books the cost and the brand's share
/// (month of `day`) and records both on the message.
pub fn book(c: &mut Change, brand: &BrandPolicy, cost: i64, day: Date) {
    let share = brand_share(brand, &c.after.service, day, cost);
    // Every message reserved its estimate when it entered the outbox
    // (planned, or made as a fallback letter); the first booking releases it.
    if c.after.dispatch.booked == 0 {
        c.release_reservation();
    }
    c.after.dispatch.booked += cost;
    c.after.dispatch.brand_share += share;
    c.ledger.push((
        month_of(day),
        c.after.service.clone(),
        LedgerDelta {
            reserved: 0,
            booked: cost,
            brand: share,
        },
    ));
}

/// Releases the reservation of a message that will not go out (cancelled,
/// failed before anything was booked).
pub fn release(c: &mut Change) {
    if c.after.dispatch.booked == 0 {
        c.release_reservation();
    }
}

/// Reserves the estimate of a message new to the outbox (a fallback
/// letter), or of one that takes up its estimate again (a failed email
/// retried), as the store's one rule says ([`reservation`]).
pub fn reserve(c: &mut Change, m: &Message) {
    let (month, service, d) = reservation(m);
    c.ledger.push((month, service.to_string(), d));
}

/// Whether booking `cost` more would overrun the dealer's monthly budget
/// for the service; `Some(reason)` if it would.
pub fn over_budget(
    entry: &LedgerEntry,
    budget: Option<i64>,
    estimate: i64,
    cost: i64,
) -> Option<String> {
    let budget = budget?;
    // The message's own estimate is in `reserved` already.
    let after = entry.booked + entry.reserved - estimate + cost;
    (after > budget).then(|| {
        format!(
            "budget exhausted: {} booked and {} reserved of {} this month",
            money(entry.booked),
            money(entry.reserved - estimate),
            money(budget)
        )
    })
}

/// Budgets at dispatch for one tenant and month: the ledger as read once,
/// plus what this pass has let go since.
pub struct DispatchBudgets<'a> {
    store: &'a TenantStore,
    month: u32,
    seen: BTreeMap<String, LedgerEntry>,
}

impl<'a> DispatchBudgets<'a> {
    pub fn new(store: &'a TenantStore, day: Date) -> Self {
        Self {
            store,
            month: month_of(day),
            seen: BTreeMap::new(),
        }
    }

    /// The estimate of `m` among this month's reservations: only if it was
    /// planned for this month.
    fn estimate(&self, m: &Message) -> i64 {
        if month_of(m.send_on) == self.month {
            m.cost
        } else {
            0
        }
    }

    /// Why `m` may not go at `cost`: its service's budget would be overrun.
    pub fn check(
        &mut self,
        m: &Message,
        budget: Option<i64>,
        cost: i64,
    ) -> Result<Option<String>, StoreError> {
        let entry = match self.seen.get(&m.service) {
            Some(e) => *e,
            None => {
                let e = self.store.ledger_entry(self.month, &m.service)?;
                self.seen.insert(m.service.clone(), e);
                e
            }
        };
        Ok(over_budget(&entry, budget, self.estimate(m), cost))
    }

    /// Counts `m` as gone at `cost` (after a `check`).
    pub fn take(&mut self, m: &Message, cost: i64) {
        let estimate = self.estimate(m);
        if let Some(e) = self.seen.get_mut(&m.service) {
            e.booked += cost;
            e.reserved -= estimate;
        }
    }
}

pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

/// The ledger rows of `tenants`, with each service's budget
/// ([`tenant_costs`] for each).
pub fn costs(
    stores: &Stores,
    policies: &Policies,
    tenants: &[TenantId],
    month: Option<u32>,
) -> Result<Vec<CostRow>, StoreError> {
    let mut out = Vec::new();
    let today = Date::today();
    for t in tenants {
        // The ledger kept with the outbox's summary: a store unchanged
        // since is not opened.
        let summary = stores.outbox_summary(t, today)?;
        let ledger = summary.ledger.iter().cloned();
        out.extend(cost_rows(ledger, policies.tenant(t), t, month));
    }
    Ok(out)
}

/// One tenant's cost rows, read from its open store ([`cost_rows`]).
pub fn tenant_costs(
    store: &TenantStore,
    policy: Option<&TenantPolicy>,
    t: &TenantId,
    month: Option<u32>,
) -> Result<Vec<CostRow>, StoreError> {
    Ok(cost_rows(store.ledger()?, policy, t, month))
}

/// One tenant's cost rows as `touchpoint_common::budget` defines them, the
/// one place they are made (the overview, the Tenants view, `touchpoint
/// costs` and the alerts all read these), from its ledger as
/// [`TenantStore::ledger`] gives it (`(month, service, entry)`): each
/// ledger entry of `month` (every month when `None`) with its service's
/// budget as the dealer's file sets it (what planning and dispatch hold it
/// to), and a row of zeros for each service the dealer takes part in that
/// has no entry in a month shown (its whole budget remains). In service
/// order per month.
pub fn cost_rows(
    ledger: impl IntoIterator<Item = (u32, String, LedgerEntry)>,
    policy: Option<&TenantPolicy>,
    t: &TenantId,
    month: Option<u32>,
) -> Vec<CostRow> {
    let budget_of = |service: &str| {
        policy
            .and_then(|p| p.services.get(service))
            .map(|s| s.monthly_budget.0)
    };
    let mut by_month: BTreeMap<u32, BTreeMap<String, LedgerEntry>> = BTreeMap::new();
    if let Some(m) = month {
        by_month.entry(m).or_default();
    }
    for (m, service, e) in ledger {
        if month.is_some_and(|want| want != m) {
            continue;
        }
        by_month.entry(m).or_default().insert(service, e);
    }
    let taking_part: Vec<&String> = policy
        .map(|p| {
            p.services
                .iter()
                .filter(|(_, s)| s.opt_in)
                .map(|(name, _)| name)
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for (m, mut entries) in by_month {
        for name in &taking_part {
            entries.entry((*name).clone()).or_default();
        }
        for (service, e) in entries {
            out.push(CostRow {
                tenant: t.clone(),
                month: m,
                budget: budget_of(&service),
                service,
                reserved: e.reserved,
                booked: e.booked,
                brand: e.brand,
                dealer: e.dealer(),
            });
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn budget_check_counts_the_message_once() {
        let e = LedgerEntry {
            reserved: 300,
            booked: 700,
            brand: 0,
        };
        // The message's estimate (100) is among the 300 reserved.
        assert_eq!(over_budget(&e, Some(1000), 100, 100), None);
        assert!(over_budget(&e, Some(1000), 100, 101)
            .unwrap()
            .contains("7.00 booked and 2.00 reserved of 10.00"));
        assert_eq!(over_budget(&e, None, 100, 10_000), None);
    }

    #[test]
    fn money_prints_cents() {
        assert_eq!(money(1234), "12.34");
        assert_eq!(money(-5), "-0.05");
    }
}

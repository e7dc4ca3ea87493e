//! Budget figures: the one definition every view and command uses (the
//! overview, the Tenants view, `touchpoint costs`, the alerts).
//!
//! Per tenant, service and month (one [`CostRow`], made by the daemon's
//! ledger from its entries and the dealer's policy):
//! - **reserved**: the estimated cost of messages planned or queued and not
//!   yet sent (held back from the budget, not spent);
//! - **booked**: the cost of messages sent (charged);
//! - **budget**: the dealer's monthly budget for the service, if it has one;
//! - **remaining** = budget − reserved − booked.
//!
//! Sums ([`BudgetSum`]) are only ever over one month: budgets of different
//! months are never added. A sum's budget and remaining count only the
//! services with a budget, and so does its share used.

use crate::protocol::CostRow;
use crate::TenantId;

impl CostRow {
    /// What is left of the service's budget: budget − reserved − booked
    /// (negative when overrun); `None` without a budget.
    pub fn remaining(&self) -> Option<i64> {
        self.budget.map(|b| b - self.reserved - self.booked)
    }

    /// Reserved and booked as a share of the budget, percent (rounded
    /// down); `None` without a budget above 0.
    pub fn used_percent(&self) -> Option<i64> {
        percent(self.reserved + self.booked, self.budget)
    }
}

fn percent(used: i64, budget: Option<i64>) -> Option<i64> {
    budget
        .filter(|b| *b > 0)
        .map(|b| used.max(0).saturating_mul(100) / b)
}

/// Sums of cost rows of one month.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BudgetSum {
    /// Over every row.
    pub reserved: i64,
    pub booked: i64,
    pub brand: i64,
    pub dealer: i64,
    /// Over the rows with a budget: the budgets, and reserved plus booked.
    pub budget: Option<i64>,
    pub used: i64,
}

impl BudgetSum {
    pub fn add(&mut self, r: &CostRow) {
        self.reserved += r.reserved;
        self.booked += r.booked;
        self.brand += r.brand;
        self.dealer += r.dealer;
        if let Some(b) = r.budget {
            *self.budget.get_or_insert(0) += b;
            self.used += r.reserved + r.booked;
        }
    }

    /// The sum of `rows`; they must all be of one month.
    pub fn of<'a>(rows: impl IntoIterator<Item = &'a CostRow>) -> Self {
        let mut s = Self::default();
        for r in rows {
            s.add(r);
        }
        s
    }

    /// Budget − reserved − booked over the services with a budget.
    pub fn remaining(&self) -> Option<i64> {
        self.budget.map(|b| b - self.used)
    }

    /// Reserved and booked of the services with a budget as a share of
    /// their budgets, percent (rounded down).
    pub fn used_percent(&self) -> Option<i64> {
        percent(self.used, self.budget)
    }
}

/// One tenant's figures for one month, from rows of any tenants and months.
pub fn tenant_month(rows: &[CostRow], tenant: &TenantId, month: u32) -> BudgetSum {
    BudgetSum::of(
        rows.iter()
            .filter(|r| &r.tenant == tenant && r.month == month),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        tenant: &str,
        month: u32,
        service: &str,
        r: i64,
        b: i64,
        budget: Option<i64>,
    ) -> CostRow {
        CostRow {
            tenant: TenantId::new(tenant).expect("id"),
            month,
            service: service.into(),
            reserved: r,
            booked: b,
            brand: 0,
            dealer: b,
            budget,
        }
    }

    #[test]
    fn one_definition_of_remaining_and_share_used() {
        let a = row("d001", 202612, "hu", 4_000, 1_000, Some(10_000));
        assert_eq!(a.remaining(), Some(5_000));
        assert_eq!(a.used_percent(), Some(50));
        let none = row("d001", 202612, "birthday", 700, 300, None);
        assert_eq!((none.remaining(), none.used_percent()), (None, None));
        let zero = row("d001", 202612, "x", 0, 0, Some(0));
        assert_eq!((zero.remaining(), zero.used_percent()), (Some(0), None));
        let over = row("d001", 202612, "y", 0, 12_000, Some(10_000));
        assert_eq!(
            (over.remaining(), over.used_percent()),
            (Some(-2_000), Some(120))
        );
    }

    #[test]
    fn a_tenant_month_counts_its_own_month_only_and_budgets_of_budgeted_services() {
        let rows = [
            row("d001", 202612, "hu", 4_000, 1_000, Some(10_000)),
            row("d001", 202612, "birthday", 700, 300, None),
            row("d001", 202612, "service_due", 0, 0, Some(10_000)),
            row("d001", 202611, "hu", 0, 9_000, Some(10_000)),
            row("d002", 202612, "hu", 9_000, 0, Some(10_000)),
        ];
        let s = tenant_month(&rows, &TenantId::new("d001").expect("id"), 202612);
        assert_eq!((s.reserved, s.booked), (4_700, 1_300));
        assert_eq!(s.budget, Some(20_000));
        assert_eq!(s.used, 5_000);
        assert_eq!(s.remaining(), Some(15_000));
        assert_eq!(s.used_percent(), Some(25));
    }
}

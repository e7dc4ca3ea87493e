//! The pooled brand report's disclosure rule (M1, M9): a cell is shown
//! only if at least `min_dealers` dealers contribute to it and no one
//! dealer contributes more than `max_dealer_share` of it (the threshold
//! rule and the (n,k)-dominance rule with n = 1 of statistical disclosure
//! control; Hundepool et al., *Statistical Disclosure Control*, Wiley
//! 2012, §4.2). Dominance is checked on every magnitude a cell shows: its
//! rows (messages sent plus control members, [`Tally::exposures`]), its
//! booked cost and its response value, so that a dealer with a few large
//! orders cannot be read off a cell where it sends few messages.
//!
//! Complementary (secondary) suppression, §4.3 there: the total is the
//! sum of the groups, so total − shown groups is the sum of the hidden
//! groups, a cell of its own. While the hidden groups together would fail
//! the rule, the smallest shown group is hidden too (when none is left,
//! the hidden groups together are the total, which passed).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::stats::Tally;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRule {
    pub min_dealers: u32,
    /// The largest share of a cell's rows one dealer may contribute, in
    /// thousandths (policy `max_dealer_share = 0.5` is 500).
    pub max_dealer_permille: u32,
}

/// One line of a report: a group, or the total.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportGroup {
    /// Sorts the groups (weekday number, hour, lead bucket...).
    pub order: i64,
    pub label: String,
    /// `None` when suppressed.
    pub tally: Option<Tally>,
    pub suppressed: Option<Suppression>,
}

/// Why a pooled cell is not shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Suppression {
    /// Fewer dealers than the rule's minimum contribute to it.
    TooFewDealers,
    /// One dealer contributes more than the rule's maximum share.
    Dominated,
    /// Shown, it would let a suppressed cell be recovered from the total.
    Complementary,
}

impl Suppression {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooFewDealers => "too few dealers",
            Self::Dominated => "one dealer dominates",
            Self::Complementary => "complementary",
        }
    }
}

/// Whether one cell, given each contributing dealer's tally, may be shown.
pub fn primary(rule: &PoolRule, dealers: &[Tally]) -> Option<Suppression> {
    let contributing = dealers.iter().filter(|t| t.exposures() > 0).count();
    if contributing < rule.min_dealers.max(1) as usize {
        return Some(Suppression::TooFewDealers);
    }
    let magnitudes: [fn(&Tally) -> u128; 3] = [
        |t| u128::from(t.exposures()),
        |t| u128::from(t.cost.unsigned_abs()),
        |t| u128::from(t.value.unsigned_abs()),
    ];
    for magnitude in magnitudes {
        let total: u128 = dealers.iter().map(magnitude).sum();
        let largest = dealers.iter().map(magnitude).max().unwrap_or(0);
        // Integers: a share of exactly the maximum is allowed, whatever rounding.
        if largest * 1000 > u128::from(rule.max_dealer_permille) * total {
            return Some(Suppression::Dominated);
        }
    }
    None
}

/// One cell before pooling: its order and label, and each contributing
/// dealer's tally under an opaque number (the same dealer has the same
/// number in every cell of one report, so that the total can be checked
/// per dealer; the number is never shown).
#[derive(Clone, Debug, Default)]
pub struct Cell {
    pub order: i64,
    pub label: String,
    pub dealers: BTreeMap<u32, Tally>,
}

/// Pools cells under the rule. Returns the groups, sorted, and the total;
/// every suppressed cell has its tally removed and says why.
/// `sharing`: the numbers of the dealers that grant the brand any figure.
pub fn pool(
    rule: &PoolRule,
    sharing: &BTreeSet<u32>,
    mut cells: Vec<Cell>,
) -> (Vec<ReportGroup>, ReportGroup) {
    let check = |dealers: &BTreeMap<u32, Tally>| {
        let all: Vec<Tally> = dealers.values().copied().collect();
        primary(rule, &all).or_else(|| {
            if !dealers.keys().any(|d| sharing.contains(d)) {
                return None;
            }
            let rest: Vec<Tally> = dealers
                .iter()
                .filter(|(d, _)| !sharing.contains(d))
                .map(|(_, t)| *t)
                .collect();
            primary(rule, &rest)
        })
    };
    cells.sort_by(|a, b| (a.order, &a.label).cmp(&(b.order, &b.label)));
    let mut by_dealer: BTreeMap<u32, Tally> = BTreeMap::new();
    for c in &cells {
        for (d, t) in &c.dealers {
            by_dealer.entry(*d).or_default().add(t);
        }
    }
    let sum = |m: &BTreeMap<u32, Tally>| {
        let mut s = Tally::default();
        m.values().for_each(|t| s.add(t));
        s
    };
    let mut groups: Vec<ReportGroup> = cells
        .iter()
        .map(|c| ReportGroup {
            order: c.order,
            label: c.label.clone(),
            tally: Some(sum(&c.dealers)),
            suppressed: check(&c.dealers),
        })
        .collect();
    let mut total = ReportGroup {
        order: i64::MAX,
        label: "total".into(),
        tally: Some(sum(&by_dealer)),
        suppressed: check(&by_dealer),
    };
    if total.suppressed.is_none() {
        // total − shown = the hidden groups together: that sum must pass
        // the rule as a cell of its own.
        loop {
            let mut hidden: BTreeMap<u32, Tally> = BTreeMap::new();
            for (g, c) in groups.iter().zip(&cells) {
                if g.suppressed.is_some() {
                    for (d, t) in &c.dealers {
                        hidden.entry(*d).or_default().add(t);
                    }
                }
            }
            if hidden.is_empty() || check(&hidden).is_none() {
                break;
            }
            let smallest = groups
                .iter_mut()
                .filter(|g| g.suppressed.is_none())
                .min_by_key(|g| g.tally.map(|t| t.exposures()).unwrap_or(0));
            match smallest {
                Some(g) => g.suppressed = Some(Suppression::Complementary),
                None => {
                    total.suppressed = Some(Suppression::Complementary);
                    break;
                }
            }
        }
    }
    for g in groups.iter_mut().chain(std::iter::once(&mut total)) {
        if g.suppressed.is_some() {
            g.tally = None;
        }
    }
    (groups, total)
}

#[cfg(test)]
mod tests;

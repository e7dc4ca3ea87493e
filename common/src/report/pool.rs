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
//!
//! The lift is stratified by service ([`stratified`]), so a cell's lift is
//! computed from its per-service sub-cells, which the brand sees nothing
//! else of. Only sub-cells that pass the rule enter a lift; what a lift
//! leaves out of its cell (sent minus the sent the lift covers) is itself
//! a cell that must pass, and so is what the groups' lifts leave out of the
//! total's (total's covered sent − the groups' covered sent): while either
//! fails, the smallest sub-cell still in a lift is left out too
//! ([`lift_strata`]). A sub-cell left out still counts in its cell's sent,
//! responses and cost, which passed.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::stats::{stratified, Figures, Tally};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRule {
    pub min_dealers: u32,
    /// The largest share of a cell's rows one dealer may contribute, in
    /// thousandths (policy `max_dealer_share = 0.5` is 500).
    pub max_dealer_permille: u32,
}

/// One line of a report: a group, or the total.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportGroup {
    /// Sorts the groups (weekday number, hour, lead bucket...).
    pub order: i64,
    pub label: String,
    /// `None` when suppressed.
    pub tally: Option<Tally>,
    /// The tally's figures with the lift stratified by service
    /// ([`stratified`]), computed where the per-service counts are known
    /// (the daemon); `None` when suppressed.
    pub figures: Option<Figures>,
    /// The services the lift is computed from (with a control group, and
    /// in a pooled report passing the rule); the others count in every
    /// figure but the lift, incremental responses and their cost.
    pub lift_services: Vec<String>,
    pub suppressed: Option<Suppression>,
}

impl ReportGroup {
    /// When the lift leaves some of the group's messages out (services
    /// without a control group, or pooled sub-cells the rule holds back):
    /// which services it is from and how much of the sent it covers.
    pub fn lift_note(&self, pooled: bool) -> Option<String> {
        let (t, f) = (self.tally?, self.figures?);
        // No lift at all is said where the lift is (n/a).
        if f.lift.is_none() || f.lift_sent >= t.sent {
            return None;
        }
        // Pooled, a service with a control group is also left out when its
        // part of the cell fails the privacy rule.
        let which = if pooled {
            "the services with a control group that pass the privacy rule"
        } else {
            "the services with a control group"
        };
        Some(format!(
            "{}: lift covers {} of {} sent, from {which}: {}",
            self.label,
            f.lift_sent,
            t.sent,
            self.lift_services.join(", ")
        ))
    }
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

/// Each contributing dealer's tally under an opaque number (the same
/// dealer has the same number in every cell of one report, so that the
/// total can be checked per dealer; the number is never shown).
pub type Dealers = BTreeMap<u32, Tally>;

/// One cell before pooling: its order and label, and per service (the
/// strata of its lift) each contributing dealer's tally.
#[derive(Clone, Debug, Default)]
pub struct Cell {
    pub order: i64,
    pub label: String,
    pub strata: BTreeMap<String, Dealers>,
}

impl Cell {
    /// Each dealer's tally over every service of the cell.
    pub fn dealers(&self) -> Dealers {
        union(self.strata.values())
    }
}

fn union<'a>(parts: impl IntoIterator<Item = &'a Dealers>) -> Dealers {
    let mut out = Dealers::new();
    for part in parts {
        for (d, t) in part {
            out.entry(*d).or_default().add(t);
        }
    }
    out
}

fn sum(m: &Dealers) -> Tally {
    let mut s = Tally::default();
    m.values().for_each(|t| s.add(t));
    s
}

/// A stratum with both messages and control members: one a lift can use.
fn has_lift(t: &Tally) -> bool {
    t.sent > 0 && t.control > 0
}

/// The strata of several cells together (the total's).
pub fn merge<'a>(
    cells: impl IntoIterator<Item = &'a BTreeMap<String, Dealers>>,
) -> BTreeMap<String, Dealers> {
    let mut out: BTreeMap<String, Dealers> = BTreeMap::new();
    for strata in cells {
        for (s, d) in strata {
            let into = out.entry(s.clone()).or_default();
            for (dealer, t) in d {
                into.entry(*dealer).or_default().add(t);
            }
        }
    }
    out
}

/// A cell's tally over every dealer and service.
pub fn tally(strata: &BTreeMap<String, Dealers>) -> Tally {
    sum(&union(strata.values()))
}

/// The figures of a cell from its strata, the lift from the strata in
/// `lifted` only.
pub fn figures(strata: &BTreeMap<String, Dealers>, lifted: &BTreeSet<String>) -> Figures {
    let total = tally(strata);
    let parts: Vec<Tally> = strata
        .iter()
        .filter(|(s, _)| lifted.contains(*s))
        .map(|(_, d)| sum(d))
        .collect();
    stratified(&total, &parts)
}

/// Sets a group's tally, figures and lift services from its strata, the
/// lift from those in `lifted` (those with a control group among them).
pub fn fill(g: &mut ReportGroup, strata: &BTreeMap<String, Dealers>, lifted: &BTreeSet<String>) {
    g.tally = Some(tally(strata));
    g.figures = Some(figures(strata, lifted));
    g.lift_services = strata
        .iter()
        .filter(|(s, d)| lifted.contains(*s) && has_lift(&sum(d)))
        .map(|(s, _)| s.clone())
        .collect();
}

/// Which strata of a shown cell may enter its lift: those `allowed` that
/// have a control group and pass `check`, and only while the strata left
/// out pass `check` together (else the smallest one still in goes out).
fn lift_strata(
    check: &dyn Fn(&Dealers) -> Option<Suppression>,
    strata: &BTreeMap<String, Dealers>,
    allowed: &dyn Fn(&str) -> bool,
) -> BTreeSet<String> {
    let mut lifted: BTreeSet<String> = strata
        .iter()
        .filter(|(s, d)| allowed(s) && has_lift(&sum(d)) && check(d).is_none())
        .map(|(s, _)| s.clone())
        .collect();
    loop {
        let out = union(
            strata
                .iter()
                .filter(|(s, _)| !lifted.contains(*s))
                .map(|(_, d)| d),
        );
        if out.is_empty() || check(&out).is_none() {
            return lifted;
        }
        let smallest = lifted
            .iter()
            .min_by_key(|s| sum(&strata[*s]).exposures())
            .cloned();
        match smallest {
            Some(s) => lifted.remove(&s),
            None => return lifted,
        };
    }
}

/// Complementary suppression over cells that partition one total (the
/// groups of a report; learning's lead arms, or its slot arms): total −
/// shown cells = the hidden cells together, a cell of its own. While the
/// hidden cells together fail `check`, the smallest shown cell (by rows;
/// the first on a tie) is hidden too, marked `Complementary`. Returns
/// false when every cell is hidden and together they still fail: then the
/// total itself must not be shown either.
pub fn complement(
    check: &dyn Fn(&Dealers) -> Option<Suppression>,
    cells: &[Dealers],
    suppressed: &mut [Option<Suppression>],
) -> bool {
    loop {
        let hidden = union(
            cells
                .iter()
                .zip(suppressed.iter())
                .filter(|(_, s)| s.is_some())
                .map(|(d, _)| d),
        );
        if hidden.is_empty() || check(&hidden).is_none() {
            return true;
        }
        let smallest = (0..cells.len())
            .filter(|&i| suppressed[i].is_none())
            .min_by_key(|&i| sum(&cells[i]).exposures());
        match smallest {
            Some(i) => suppressed[i] = Some(Suppression::Complementary),
            None => return false,
        }
    }
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
    let dealers: Vec<Dealers> = cells.iter().map(Cell::dealers).collect();
    let by_dealer = union(&dealers);
    let mut groups: Vec<ReportGroup> = cells
        .iter()
        .zip(&dealers)
        .map(|(c, d)| ReportGroup {
            order: c.order,
            label: c.label.clone(),
            tally: Some(sum(d)),
            figures: None,
            lift_services: Vec::new(),
            suppressed: check(d),
        })
        .collect();
    let mut total = ReportGroup {
        order: i64::MAX,
        label: "total".into(),
        tally: Some(sum(&by_dealer)),
        figures: None,
        lift_services: Vec::new(),
        suppressed: check(&by_dealer),
    };
    if total.suppressed.is_none() {
        let mut hidden: Vec<Option<Suppression>> = groups.iter().map(|g| g.suppressed).collect();
        if !complement(&check, &dealers, &mut hidden) {
            total.suppressed = Some(Suppression::Complementary);
        }
        for (g, h) in groups.iter_mut().zip(hidden) {
            g.suppressed = h;
        }
    }

    // The lifts, stratified over the sub-cells that pass.
    let total_strata = merge(cells.iter().map(|c| &c.strata));
    let total_lifted = if total.suppressed.is_none() {
        lift_strata(&check, &total_strata, &|_| true)
    } else {
        BTreeSet::new()
    };
    let mut lifted: Vec<BTreeSet<String>> = groups
        .iter()
        .zip(&cells)
        .map(|(g, c)| match g.suppressed {
            Some(_) => BTreeSet::new(),
            None => lift_strata(&check, &c.strata, &|s| total_lifted.contains(s)),
        })
        .collect();
    // The total's covered sent − the groups' is the sum of the sub-cells of
    // the total's lift services that no group's lift covers: a cell too.
    loop {
        let left_out = union(cells.iter().zip(&lifted).flat_map(|(c, l)| {
            c.strata
                .iter()
                .filter(|(s, _)| total_lifted.contains(*s) && !l.contains(*s))
                .map(|(_, d)| d)
        }));
        if left_out.is_empty() || check(&left_out).is_none() {
            break;
        }
        let smallest = cells
            .iter()
            .zip(lifted.iter().enumerate())
            .flat_map(|(c, (i, l))| l.iter().map(move |s| (sum(&c.strata[s]).exposures(), i, s)))
            .min()
            .map(|(_, i, s)| (i, s.clone()));
        match smallest {
            Some((i, s)) => {
                lifted[i].remove(&s);
            }
            // Every sub-cell of those services left out: together they are
            // the total's covered part, which passed.
            None => break,
        }
    }
    for ((g, c), l) in groups.iter_mut().zip(&cells).zip(&lifted) {
        fill(g, &c.strata, l);
    }
    fill(&mut total, &total_strata, &total_lifted);

    for g in groups.iter_mut().chain(std::iter::once(&mut total)) {
        if g.suppressed.is_some() {
            g.tally = None;
            g.figures = None;
            g.lift_services.clear();
        }
    }
    (groups, total)
}

#[cfg(test)]
mod tests;

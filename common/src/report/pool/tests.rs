use super::*;
use crate::report::stats::{newcombe, Lift};

const RULE: PoolRule = PoolRule {
    min_dealers: 5,
    max_dealer_permille: 500,
};

fn sent(n: u64) -> Tally {
    Tally {
        sent: n,
        delivered: n,
        responses: n / 10,
        cost: n as i64 * 100,
        ..Tally::default()
    }
}

/// A cell of one service with `counts[i]` messages from dealer i.
fn cell(order: i64, label: &str, counts: &[u64]) -> Cell {
    let dealers = counts
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| (i as u32, sent(*n)))
        .collect();
    Cell {
        order,
        label: label.into(),
        strata: BTreeMap::from([("s".to_string(), dealers)]),
    }
}

#[test]
fn four_dealers_are_suppressed_six_are_shown() {
    let (g, total) = pool(
        &RULE,
        &BTreeSet::new(),
        vec![cell(0, "a", &[10, 10, 10, 10])],
    );
    assert_eq!(g[0].suppressed, Some(Suppression::TooFewDealers));
    assert_eq!(g[0].tally, None);
    assert_eq!(total.tally, None, "the total is the same four dealers");

    let (g, total) = pool(&RULE, &BTreeSet::new(), vec![cell(0, "a", &[10; 6])]);
    assert_eq!(g[0].suppressed, None);
    assert_eq!(g[0].tally.map(|t| t.sent), Some(60));
    assert_eq!(total.tally.map(|t| t.sent), Some(60));
}

#[test]
fn a_dominating_dealer_is_suppressed() {
    // Six dealers, one with 60 of 110 rows: more than half.
    let (g, _) = pool(
        &RULE,
        &BTreeSet::new(),
        vec![cell(0, "a", &[60, 10, 10, 10, 10, 10])],
    );
    assert_eq!(g[0].suppressed, Some(Suppression::Dominated));
    assert_eq!(g[0].tally, None);
    // Exactly half is allowed: "more than" the share is what dominates.
    let (g, _) = pool(
        &RULE,
        &BTreeSet::new(),
        vec![cell(0, "a", &[50, 10, 10, 10, 10, 10])],
    );
    assert_eq!(g[0].suppressed, None);
}

/// No suppressed cell can be recovered as the total minus the shown ones.
#[test]
fn complementary_suppression_protects_a_lone_suppressed_cell() {
    let cells = vec![
        cell(0, "big", &[100, 100, 100, 100, 100, 100]),
        cell(1, "small", &[5, 5, 5, 5, 5, 5]),
        cell(2, "rare", &[3, 0, 0, 0, 0, 1]),
        cell(3, "mid", &[20, 20, 20, 20, 20, 20]),
    ];
    let (g, total) = pool(&RULE, &BTreeSet::new(), cells);
    let by = |l: &str| g.iter().find(|x| x.label == l).expect("group");
    assert_eq!(by("rare").suppressed, Some(Suppression::TooFewDealers));
    assert_eq!(
        by("small").suppressed,
        Some(Suppression::Complementary),
        "next smallest"
    );
    assert_eq!(by("big").suppressed, None);
    assert_eq!(by("mid").suppressed, None);
    let shown: u64 = g.iter().filter_map(|x| x.tally).map(|t| t.sent).sum();
    let total = total.tally.expect("total shown").sent;
    // total − shown is the sum of two suppressed cells, not either one.
    assert_eq!(total - shown, 30 + 4);
    assert!(g.iter().filter(|x| x.suppressed.is_some()).count() != 1);
}

#[test]
fn hidden_groups_that_together_fail_the_rule_take_a_shown_one_with_them() {
    let cells = vec![
        cell(3, "d", &[10; 6]),
        cell(1, "b", &[1, 1]),
        cell(0, "a", &[10; 6]),
        cell(2, "c", &[1, 1, 1]),
    ];
    let (g, total) = pool(&RULE, &BTreeSet::new(), cells);
    let labels: Vec<&str> = g.iter().map(|x| x.label.as_str()).collect();
    assert_eq!(labels, ["a", "b", "c", "d"]);
    assert_eq!(g[1].suppressed, Some(Suppression::TooFewDealers));
    assert_eq!(g[2].suppressed, Some(Suppression::TooFewDealers));
    // b and c together come from three dealers: total − a − d would show
    // them as one cell under the minimum of five, so a or d goes too.
    let complementary = g
        .iter()
        .filter(|x| x.suppressed == Some(Suppression::Complementary))
        .count();
    assert_eq!(complementary, 1, "{g:?}");
    assert!(total.tally.is_some());
}

/// The reviewer's case: one dealer alone in two hours, six dealers in a
/// third. Hiding the two hours is not enough: total − 09:00 would be that
/// one dealer's figures exactly.
#[test]
fn total_minus_the_shown_groups_never_reveals_one_dealer() {
    let only_d0 = |order, label, n| cell(order, label, &[n]);
    let cells = vec![
        only_d0(3, "03:00", 40),
        only_d0(4, "04:00", 20),
        cell(9, "09:00", &[100; 6]),
    ];
    let (g, total) = pool(&RULE, &BTreeSet::new(), cells);
    let shown: u64 = g.iter().filter_map(|x| x.tally).map(|t| t.sent).sum();
    // Whatever the total shows, total − shown must not be 60 (d0's).
    if let Some(t) = total.tally {
        assert_ne!(t.sent - shown, 60, "{g:?}");
    }
    assert_eq!(g[2].suppressed, Some(Suppression::Complementary), "{g:?}");
}

#[test]
fn one_dealers_large_orders_dominate_a_cell_of_many_messages() {
    let mut dealers: BTreeMap<u32, Tally> = (0..5).map(|d| (d, sent(100))).collect();
    if let Some(t) = dealers.get_mut(&0) {
        t.value = 10_000_000;
    }
    for d in 1..5 {
        if let Some(t) = dealers.get_mut(&d) {
            t.value = 100_000;
        }
    }
    let all: Vec<Tally> = dealers.values().copied().collect();
    assert_eq!(primary(&RULE, &all), Some(Suppression::Dominated));
    let even: Vec<Tally> = (0..5).map(|_| sent(100)).collect();
    assert_eq!(primary(&RULE, &even), None);
}

#[test]
fn with_two_groups_the_other_one_is_the_complement() {
    let (g, total) = pool(
        &RULE,
        &BTreeSet::new(),
        vec![
            cell(0, "a", &[10; 6]),
            cell(1, "b", &[0, 0, 0, 0, 0, 0, 9, 1]),
        ],
    );
    assert_eq!(g[1].suppressed, Some(Suppression::TooFewDealers));
    assert_eq!(g[0].suppressed, Some(Suppression::Complementary));
    assert!(total.tally.is_some());
}

/// Six dealers pass the rule; if one of them publishes its own figures,
/// the other five still do; if two do, four are left and the cell would
/// give them away (cell − the two published): suppressed.
#[test]
fn dealers_that_share_their_figures_are_counted_out() {
    let cells = || vec![cell(0, "a", &[10; 6])];
    let (g, _) = pool(&RULE, &BTreeSet::from([0]), cells());
    assert_eq!(g[0].suppressed, None);
    let (g, total) = pool(&RULE, &BTreeSet::from([0, 1]), cells());
    assert_eq!(g[0].suppressed, Some(Suppression::TooFewDealers));
    assert_eq!(total.tally, None);
}

/// Per dealer: `n` sent, a fifth answered; with `control`, n/2 control
/// members of whom a tenth answered.
fn exposed(n: u64, control: bool) -> Tally {
    let c = if control { n / 2 } else { 0 };
    Tally {
        control: c,
        control_responses: c / 10,
        responses: n / 5,
        ..sent(n)
    }
}

/// A cell with, per service, `counts[i]` messages from dealer i.
fn strata(order: i64, label: &str, services: &[(&str, bool, &[u64])]) -> Cell {
    Cell {
        order,
        label: label.into(),
        strata: services
            .iter()
            .map(|(s, control, counts)| {
                let dealers = counts
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(i, n)| (i as u32, exposed(*n, *control)))
                    .collect();
                (s.to_string(), dealers)
            })
            .collect(),
    }
}

/// A sub-cell from two dealers has a control group, but it may not enter
/// the lift; alone outside the lift it would be shown as the group minus
/// the lift's part, so the other service goes out of the lift too. With a
/// third, large service without control left out as well, what the lift
/// leaves out passes and the lift is the first service's.
#[test]
fn a_pooled_lift_uses_only_sub_cells_that_pass() {
    let (g, _) = pool(
        &RULE,
        &BTreeSet::new(),
        vec![strata(
            0,
            "Mon",
            &[("a", true, &[20; 6]), ("b", true, &[0, 0, 0, 0, 10, 10])],
        )],
    );
    assert_eq!(g[0].suppressed, None);
    let f = g[0].figures.expect("shown");
    assert_eq!((f.lift, f.lift_sent), (None, 0), "{g:?}");
    assert!(g[0].lift_services.is_empty());

    let (g, total) = pool(
        &RULE,
        &BTreeSet::new(),
        vec![strata(
            0,
            "Mon",
            &[
                ("a", true, &[20; 6]),
                ("b", true, &[0, 0, 0, 0, 10, 10]),
                ("c", false, &[30; 6]),
            ],
        )],
    );
    let f = g[0].figures.expect("shown");
    assert_eq!(f.lift_sent, 120, "{g:?}");
    assert_eq!(g[0].lift_services, ["a"]);
    // a alone: its own Newcombe interval over the six dealers' counts.
    assert_eq!(f.lift, lift_of(&[20; 6]));
    assert_eq!(total.figures.expect("total").lift_sent, 120);
}

/// The unstratified lift of one service's cell from these dealers.
fn lift_of(counts: &[u64]) -> Option<Lift> {
    let mut t = Tally::default();
    counts.iter().for_each(|n| t.add(&exposed(*n, true)));
    newcombe(t.responses, t.sent, t.control_responses, t.control)
}

/// The total's lift covers service a in full; Tuesday's a comes from one
/// dealer and stays out of Tuesday's lift. If Monday's lift kept a, the
/// total's covered sent minus Monday's would be that one dealer's sent:
/// Monday's a goes out of its lift too.
#[test]
fn the_total_minus_the_groups_lifts_never_shows_a_sub_cell() {
    let cells = vec![
        strata(0, "Mon", &[("a", true, &[20; 6])]),
        strata(1, "Tue", &[("a", true, &[7]), ("c", false, &[30; 6])]),
    ];
    let (g, total) = pool(&RULE, &BTreeSet::new(), cells);
    assert!(g.iter().all(|x| x.suppressed.is_none()), "{g:?}");
    let total_lift = total.figures.expect("total").lift_sent;
    assert_eq!(
        total_lift, 127,
        "the total's a passes: 7 of 127 rows is no dominance"
    );
    let groups: u64 = g
        .iter()
        .filter_map(|x| x.figures)
        .map(|f| f.lift_sent)
        .sum();
    assert_ne!(total_lift - groups, 7, "{g:?}");
    assert_eq!(groups, 0, "{g:?}");
}

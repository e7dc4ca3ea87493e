use super::*;

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

/// A cell with `counts[i]` messages from dealer i.
fn cell(order: i64, label: &str, counts: &[u64]) -> Cell {
    Cell {
        order,
        label: label.into(),
        dealers: counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (i as u32, sent(*n)))
            .collect(),
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
fn two_primary_suppressions_need_no_complement_and_order_is_kept() {
    let cells = vec![
        cell(3, "d", &[10; 6]),
        cell(1, "b", &[1, 1]),
        cell(0, "a", &[10; 6]),
        cell(2, "c", &[1, 1, 1]),
    ];
    let (g, total) = pool(&RULE, &BTreeSet::new(), cells);
    let labels: Vec<&str> = g.iter().map(|x| x.label.as_str()).collect();
    assert_eq!(labels, ["a", "b", "c", "d"]);
    let hidden: Vec<Option<Suppression>> = g.iter().map(|x| x.suppressed).collect();
    assert_eq!(
        hidden,
        [
            None,
            Some(Suppression::TooFewDealers),
            Some(Suppression::TooFewDealers),
            None
        ]
    );
    assert!(total.tally.is_some());
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

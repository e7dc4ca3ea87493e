use std::collections::BTreeMap;

use chrono::TimeZone;
use touchpoint_common::config::StoresConfig;
use touchpoint_common::domain::{Channel, Timestamp};
use touchpoint_common::learning::{Arm, LearnedState, Source};
use touchpoint_common::money::Money;
use touchpoint_common::policy::{BrandPolicy, PolicySet};
use touchpoint_common::report::{Credited, ResponseKind, ResultRow};
use touchpoint_common::Date;

use super::model::{self, Counts, Stream};
use super::*;
use crate::attribution::ControlResponses;

const BRAND: &str = r#"
[brand]
id = "b"
name = "B"

[planning]
schedule = "0 0 6 * * *"
horizon_days = 14
bundling_window_days = 0
default_km_per_day = 30
min_value = 0

[contact]
max_contacts = 3
period_days = 30
min_gap_days = 0

[channels]
email = { cost = 0.10, consent = "opt_in" }
post = { cost = 0.95, consent = "opt_out" }
phone = { cost = 0, consent = "opt_in" }

[privacy]
min_dealers = 5
max_dealer_share = 0.5

[services.due]
name = "Service"
occasion = "service_due"
template = "due"
lead_days = 21
value = 38.00
channels = ["email"]
interval_months = 12
learn = true
explore_percent = 10
send_window = { weekdays = ["mon", "tue", "wed", "thu", "fri"], from = "09:00", to = "11:00" }
"#;

fn set() -> PolicySet {
    let mut files = BTreeMap::new();
    files.insert("brand.toml".to_string(), BRAND.to_string());
    files.insert(
        "templates/due.toml".to_string(),
        "subject = ''\ntext = ''\nhtml = ''\nletter = ''\n".to_string(),
    );
    match PolicySet::validate(&files, "") {
        Ok(set) => set,
        Err(e) => panic!("test policies are invalid: {e:?}"),
    }
}

fn brand() -> BrandPolicy {
    set().brand
}

fn d(y: i32, m: u32, day: u32) -> Date {
    Date::from_ymd(y, m, day).expect("date")
}

/// A dealer with `n` reminders at `lead` days, `r` of them answered, and
/// a control group of 20 with one response in every lead's window.
fn dealer(cells: &[(u32, u64, u64)]) -> DealerData {
    let mut out = DealerData::default();
    for &(lead, n, r) in cells {
        out.cells.insert(
            ("due".into(), Channel::Email, Arm::Lead(lead)),
            Counts {
                sent: n,
                responses: r,
                ..Counts::default()
            },
        );
        out.baseline.insert(
            ("due".into(), lead),
            Counts {
                control: 20,
                control_responses: 1,
                ..Counts::default()
            },
        );
    }
    out
}

fn learned(state: &LearnedState) -> &LearnedService {
    state.get("due", Channel::Email).expect("due on email")
}

#[test]
fn the_grid_is_derived_from_the_policys_lead_and_snaps_within_half_a_step() {
    let b = brand();
    let s = &b.services["due"];
    assert_eq!(s.lead_grid(), [14, 21, 28, 35, 42]);
    let g = &grids(&b, &BTreeMap::new())["due"];
    assert_eq!(g.snap(21), Some(21));
    assert_eq!(g.snap(24), Some(21));
    assert_eq!(g.snap(25), Some(28));
    // 17 is 3 from 14 and 4 from 21.
    assert_eq!(g.snap(17), Some(14));
    // More than half a step outside the grid: no arm.
    assert_eq!(g.snap(10), None);
    assert_eq!(g.snap(46), None);
}

#[test]
fn the_posterior_and_the_objective_are_the_hand_computed_ones() {
    // Prior centred on 10 % with 20 pseudo-messages: Beta(2, 18).
    let p = model::prior(Some(0.1));
    assert!(
        (p.0 - 2.0).abs() < 1e-9 && (p.1 - 18.0).abs() < 1e-9,
        "{p:?}"
    );
    // 100 sent, 20 answered: Beta(22, 98), mean 22 / 120.
    let a = model::arm(
        Arm::Lead(28),
        Some((
            Counts {
                sent: 100,
                responses: 20,
                ..Counts::default()
            },
            5,
        )),
        p,
        0.05,
        3800,
        10,
    );
    assert_eq!((a.alpha, a.beta), (22.0, 98.0));
    assert!((a.mean() - 22.0 / 120.0).abs() < 1e-12);
    // (22/120 − 0.05) × 38.00 € − 0.10 € = 496.67 cents.
    assert!((a.objective - ((22.0 / 120.0 - 0.05) * 3800.0 - 10.0)).abs() < 1e-9);
    assert!((a.objective - 496.666_666).abs() < 1e-3, "{}", a.objective);
}

#[test]
fn four_dealers_leave_the_policys_value_five_learn_it() {
    let b = brand();
    // Each dealer: 100 at the policy's 21 days (10 answered), 100 at 28
    // days (20 answered); a control baseline of 1 in 20.
    let one = dealer(&[(21, 100, 10), (28, 100, 20)]);
    let four = vec![one.clone(); 4];
    let state = compute(&b, &four, &LearnedState::default());
    let s = learned(&state);
    assert_eq!(s.lead.value, 21);
    assert_eq!(s.lead.source, Source::Policy);
    assert_eq!(s.dealers, 4);
    assert!(s.incremental.is_none());
    assert!(s.lead.arms.iter().all(|a| !a.passes && a.sent == 0));
    assert_eq!(
        lead_text(s),
        "lead time: 21 days (policy; learning has 4 dealers, needs 5)"
    );

    let five = vec![one; 5];
    let state = compute(&b, &five, &LearnedState::default());
    let s = learned(&state);
    assert_eq!(s.lead.value, 28);
    assert_eq!(s.lead.source, Source::Learned);
    assert_eq!((s.dealers, s.sent), (5, 1000));
    // Pooled 21 days: 50 of 500, the prior Beta(2, 18); at 28 days
    // Beta(2 + 100, 18 + 400): mean 102 / 520.
    let at28 = s
        .lead
        .arms
        .iter()
        .find(|a| a.arm == Arm::Lead(28))
        .expect("28 days");
    assert_eq!((at28.alpha, at28.beta), (102.0, 418.0));
    assert!((at28.baseline - 0.05).abs() < 1e-12);
    let (inc, text) = Learned::new(state.clone())
        .incremental_response("due", Channel::Email)
        .expect("learned");
    assert!((inc - (102.0 / 520.0 - 0.05)).abs() < 1e-12);
    assert!(text.contains("from 5 dealers"), "{text}");
    assert_eq!(
        lead_text(s),
        "lead time: 28 days (learned from 5 dealers, 1,000 reminders: 20.0 % responded vs 10.0 % at the policy's 21 days)"
    );
    assert_eq!(state.version, 1);
    // The same data again: nothing changes, the version stays.
    let again = compute(
        &b,
        &vec![dealer(&[(21, 100, 10), (28, 100, 20)]); 5],
        &state,
    );
    assert_eq!(again.version, 1);
    assert_eq!(learned(&again).lead.version, 1);
}

#[test]
fn a_cell_one_dealer_dominates_is_not_used() {
    let b = brand();
    let mut dealers = vec![dealer(&[(21, 100, 10), (28, 100, 20)]); 4];
    // The fifth sends 1,000 at 28 days: 1,000 of 1,400 is above half.
    dealers.push(dealer(&[(21, 100, 10), (28, 1000, 200)]));
    let state = compute(&b, &dealers, &LearnedState::default());
    let s = learned(&state);
    let at28 = s
        .lead
        .arms
        .iter()
        .find(|a| a.arm == Arm::Lead(28))
        .expect("28 days");
    assert!(!at28.passes);
    assert_eq!((at28.sent, at28.responses, at28.dealers), (0, 0, 0));
    // Only the 21 days' cell passes: the policy's value, learned.
    assert_eq!(s.lead.value, 21);
    assert_eq!(s.lead.source, Source::Learned);
    assert_eq!(s.sent, 500);
}

#[test]
fn a_frozen_service_keeps_its_values_while_the_data_moves() {
    let b = brand();
    let state = compute(
        &b,
        &vec![dealer(&[(21, 100, 10), (28, 100, 20)]); 5],
        &LearnedState::default(),
    );
    let mut frozen = state.clone();
    frozen.frozen.insert("due".into());
    // Now 35 days is far better; frozen, 28 stays.
    let moved = vec![dealer(&[(21, 100, 10), (28, 100, 20), (35, 100, 60)]); 5];
    let next = compute(&b, &moved, &frozen);
    let s = learned(&next);
    assert_eq!(s.lead.value, 28);
    assert_eq!(s.lead.source, Source::Frozen);
    assert!(s.frozen);
    // Not frozen, it moves.
    let free = compute(&b, &moved, &state);
    assert_eq!(learned(&free).lead.value, 35);
    assert_eq!(free.version, 2);
}

#[test]
fn exploration_is_deterministic_bounded_and_never_on_a_control_member() {
    let b = brand();
    let s = &b.services["due"];
    let state = compute(
        &b,
        &vec![dealer(&[(21, 100, 10), (28, 100, 20)]); 5],
        &LearnedState::default(),
    );
    let l = Learned::new(state.clone());
    let mut explored = 0;
    for i in 0..2000 {
        let key = format!("due|V{i}|2027-01-10");
        let a = l.lead("due", s, Channel::Email, &key, false);
        assert_eq!(a, l.lead("due", s, Channel::Email, &key, false), "{key}");
        let why = a.why.clone().unwrap_or_default();
        if why.contains("exploring") {
            explored += 1;
            assert!(s.lead_grid().contains(&a.value), "{a:?}");
        } else {
            assert_eq!(a.value, 28, "{why}");
        }
        // A control member gets the value in force, never a draw.
        let c = l.lead("due", s, Channel::Email, &key, true);
        assert_eq!(c.value, 28);
        assert!(!c.why.unwrap_or_default().contains("exploring"));
    }
    // 10 % of 2,000, give or take the hash's spread (fixed: the keys are).
    assert!((150..=250).contains(&explored), "{explored}");
    // Another version draws anew.
    let mut v2 = state;
    v2.version += 1;
    let l2 = Learned::new(v2);
    let differ = (0..200)
        .filter(|i| {
            let key = format!("due|V{i}|2027-01-10");
            l.lead("due", s, Channel::Email, &key, false)
                != l2.lead("due", s, Channel::Email, &key, false)
        })
        .count();
    assert!(differ > 0);
}

#[test]
fn thompson_draws_follow_the_posteriors() {
    let mut stream = Stream::new("x", 1);
    let n = 20_000;
    let mean: f64 = (0..n).map(|_| stream.beta(2.0, 18.0)).sum::<f64>() / f64::from(n);
    assert!((mean - 0.1).abs() < 0.005, "{mean}");
    let arms = [
        model::arm(Arm::Lead(14), None, (10.0, 1000.0), 0.0, 100, 0),
        model::arm(Arm::Lead(21), None, (1000.0, 10.0), 0.0, 100, 0),
    ];
    for i in 0..100 {
        let mut s = Stream::new(&format!("k{i}"), 3);
        assert_eq!(model::thompson(&arms, 100, 0, &mut s), Some(Arm::Lead(21)));
    }
}

fn row(sent: Date, due: Date, answered: bool) -> ResultRow {
    let at = chrono::Local
        .from_local_datetime(&sent.naive().and_hms_opt(9, 30, 0).expect("time"))
        .single()
        .expect("local time");
    ResultRow {
        service: "due".into(),
        channel: Some(Channel::Email),
        due,
        sent_at: Timestamp(at.timestamp_millis()),
        lead_days: due.days() - sent.days(),
        cost: Money(10),
        delivered: true,
        bounced: false,
        unsubscribed: false,
        response: answered.then(|| Credited {
            kind: ResponseKind::ServiceVisit,
            date: sent.add_days(5),
            value: None,
            source: "w.csv:2".into(),
        }),
        clicks: 0,
    }
}

#[test]
fn a_dealers_counts_use_closed_windows_and_a_baseline_per_lead() {
    let b = brand();
    let due = d(2026, 6, 30);
    let today = d(2026, 12, 1);
    let rows = vec![
        // 24 days ahead: the 21 days' arm, a Tuesday 09:xx.
        row(d(2026, 6, 6), due, true),
        row(d(2026, 6, 2), due, false),
        // Its window (60 days) has not closed by today.
        row(d(2026, 11, 20), d(2026, 12, 10), true),
    ];
    // One control member answered 20 days before its due date: inside
    // the windows of 21 days and more (sent the day before, or earlier),
    // not that of 14.
    let controls = vec![ControlResponses {
        service: "due".into(),
        due,
        days: vec![due.add_days(-20)],
    }];
    let data = collect(&rows, &controls, &grids(&b, &BTreeMap::new()), today);
    let lead = |l| {
        data.cells
            .get(&("due".to_string(), Channel::Email, Arm::Lead(l)))
    };
    assert_eq!(
        lead(21),
        Some(&Counts {
            sent: 1,
            responses: 1,
            ..Counts::default()
        })
    );
    // 28 days before the due date: the 28 days' arm.
    assert_eq!(lead(28).map(|c| (c.sent, c.responses)), Some((1, 0)));
    assert_eq!(lead(14), None);
    let slot = |wd, h| {
        data.cells
            .get(&("due".to_string(), Channel::Email, Arm::Slot(wd, h)))
            .map(|c| c.sent)
    };
    // 2026-06-06 is a Saturday, 2026-06-02 a Tuesday.
    assert_eq!(slot(5, 9), Some(1));
    assert_eq!(slot(1, 9), Some(1));
    let base = |l| data.baseline[&("due".to_string(), l)];
    assert_eq!((base(14).control, base(14).control_responses), (1, 0));
    assert_eq!((base(21).control, base(21).control_responses), (1, 1));
    assert_eq!((base(28).control, base(28).control_responses), (1, 1));
    assert_eq!((base(42).control, base(42).control_responses), (1, 1));

    // Reset on 2026-06-03: only what was sent from then on counts.
    let since = BTreeMap::from([("due".to_string(), d(2026, 6, 3))]);
    let data = collect(&rows, &controls, &grids(&b, &since), today);
    assert_eq!(data.cells.values().map(|c| c.sent).max(), Some(1));
    assert!(!data
        .cells
        .contains_key(&("due".to_string(), Channel::Email, Arm::Lead(28))));
}

#[test]
fn freeze_and_reset_are_versions_in_the_central_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stores = Stores::open(dir.path(), &StoresConfig::default()).expect("stores");
    let set = set();
    let learning = Learning::load(&stores);
    let today = d(2026, 12, 1);
    let first = learning.refresh(&stores, &set, today);
    assert_eq!(first.state().version, 1);
    assert_eq!(learned(first.state()).lead.source, Source::Policy);
    // Nothing changed: skipped, the same state.
    let again = learning.refresh(&stores, &set, today);
    assert!(Arc::ptr_eq(&first, &again));

    let frozen = learning.freeze(&stores, &set, "due").expect("freeze");
    assert_eq!(frozen.version, 2);
    assert!(frozen.frozen.contains("due"));
    assert_eq!(learned(&frozen).lead.source, Source::Frozen);
    assert!(learning.freeze(&stores, &set, "due").is_err());
    assert!(matches!(
        learning.freeze(&stores, &set, "nope"),
        Err(LearningError::Invalid(_))
    ));
    // It outlives a restart.
    assert_eq!(Learning::load(&stores).current().state(), &frozen);
    let after = learning.refresh(&stores, &set, today.add_days(1));
    assert_eq!(learned(after.state()).lead.source, Source::Frozen);

    let reset = learning.reset(&stores, &set, "due", today).expect("reset");
    assert!(!reset.frozen.contains("due"));
    assert_eq!(reset.reset_on.get("due"), Some(&today));
    assert_eq!(learned(&reset).lead.source, Source::Policy);
    assert!(reset.version > frozen.version);
    let audit = stores.central().audit_log(None, 20).expect("audit");
    assert!(
        audit.iter().any(|e| e.action == "learned"
            && e.detail
                .starts_with("version 1: due email: lead time: 21 days (policy")),
        "{audit:#?}"
    );
}

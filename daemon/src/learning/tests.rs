use std::collections::{BTreeMap, HashMap};

use chrono::TimeZone;
use touchpoint_common::config::StoresConfig;
use touchpoint_common::domain::{Channel, Timestamp};
use touchpoint_common::learning::{Arm, ArmFigures, LearnedState, Source, ANY_HOUR, ANY_WEEKDAY};
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

/// A long lead's window holds few organic visits (a low baseline). Its
/// prior is the policy's lift over that baseline, not the policy's raw
/// rate: unanswered messages at that lead then count against it, and the
/// policy's lead stays (with a prior on the raw rate, 0 of 100 answered
/// at 42 days looked like 3 incremental points and won).
#[test]
fn a_lead_with_a_low_baseline_and_no_responses_does_not_win_on_its_prior() {
    let b = brand();
    let mut one = dealer(&[(21, 100, 25), (42, 100, 0)]);
    for (lead, responses) in [(21, 22), (42, 1)] {
        one.baseline.insert(
            ("due".into(), lead),
            Counts {
                control: 100,
                control_responses: responses,
                ..Counts::default()
            },
        );
    }
    let state = compute(&b, &vec![one; 5], &LearnedState::default());
    let s = learned(&state);
    assert_eq!((s.lead.value, s.lead.source), (21, Source::Learned));
    let at42 = s
        .lead
        .arms
        .iter()
        .find(|a| a.arm == Arm::Lead(42))
        .expect("42 days");
    // Prior mean 0.01 + (0.25 - 0.22) = 0.04 over 20 pseudo-messages, then
    // 0 of 500: Beta(0.8, 19.2 + 500).
    assert!((at42.alpha - 0.8).abs() < 1e-9, "{at42:?}");
    assert!((at42.beta - 519.2).abs() < 1e-9, "{at42:?}");
    assert!(at42.mean() < at42.baseline);
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
    // Fewer than the minimum: no count at all.
    assert_eq!(s.dealers, 0);
    assert!(s.incremental.is_none());
    assert!(s.lead.arms.iter().all(|a| !a.passes && a.sent == 0));
    assert_eq!(
        lead_text(s),
        "lead time: 21 days (policy; learning has fewer than 5 dealers)"
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
        "lead time: 28 days (learned from 5 dealers, 1,000 reminders: 20.0 % responded, +15.0 points over the control group, vs 10.0 %, +5.0 points, at the policy's 21 days)"
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

/// The lead, weekday and hour arms count the same messages: a message a
/// partition has no arm for (a send history's email has no hour) is in
/// that partition's rest cell, pooled with its arms. One dealer's 50 such
/// emails cannot be worked out as the weekday arms' total less the hour
/// arms' total.
#[test]
fn what_no_hour_arm_holds_is_pooled_with_the_hours_and_never_singled_out() {
    let b = brand();
    let g = &grids(&b, &BTreeMap::new())["due"];
    let (days, hours) = (g.days.clone(), g.hours.clone());
    assert!(days.len() >= 2 && hours.len() >= 2, "{g:?}");
    let dealers: Vec<DealerData> = (0..5)
        .map(|i| {
            let mut d = dealer(&[(21, 100 * days.len() as u64, 30)]);
            let mut put = |arm, sent, responses| {
                d.cells.insert(
                    ("due".into(), Channel::Email, arm),
                    Counts {
                        sent,
                        responses,
                        ..Counts::default()
                    },
                );
            };
            for &wd in &days {
                put(Arm::Slot(wd, ANY_HOUR), 100, 6);
            }
            // The same emails by hour, to the message and the answer.
            let (total, answered) = (100 * days.len() as u64, 6 * days.len() as u64);
            let n = hours.len() as u64;
            for (k, &h) in (0u64..).zip(&hours) {
                let (sent, responses) = if k == 0 {
                    (
                        total - (n - 1) * (total / n),
                        answered - (n - 1) * (answered / n),
                    )
                } else {
                    (total / n, answered / n)
                };
                put(Arm::Slot(ANY_WEEKDAY, h), sent, responses);
            }
            if i == 0 {
                // Dealer 0 also imported 50 emails of a send history on
                // the first weekday, 20 answered: in its lead and weekday
                // arms, and the hours' rest.
                let lead = d
                    .cells
                    .get_mut(&("due".into(), Channel::Email, Arm::Lead(21)))
                    .expect("lead");
                lead.sent += 50;
                lead.responses += 20;
                let first = d
                    .cells
                    .get_mut(&("due".into(), Channel::Email, Arm::Slot(days[0], ANY_HOUR)))
                    .expect("weekday");
                first.sent += 50;
                first.responses += 20;
                d.cells.insert(
                    ("due".into(), Channel::Email, data::REST_OF_HOURS),
                    Counts {
                        sent: 50,
                        responses: 20,
                        ..Counts::default()
                    },
                );
            }
            d
        })
        .collect();
    let state = compute(&b, &dealers, &LearnedState::default());
    let s = learned(&state);
    let shown = |weekday: bool| -> (u64, u64) {
        s.slot
            .arms
            .iter()
            .filter(|a| a.passes)
            .filter(|a| matches!(a.arm, Arm::Slot(wd, _) if (wd < ANY_WEEKDAY) == weekday))
            .fold((0, 0), |(n, r), a| (n + a.sent, r + a.responses))
    };
    let (day_sent, day_responses) = shown(true);
    let (hour_sent, hour_responses) = shown(false);
    assert!(day_sent > 0 && hour_sent > 0);
    assert_ne!(
        (day_sent - hour_sent, day_responses - hour_responses),
        (50, 20),
        "dealer 0's history emails would be singled out"
    );
    // No arm is the rest cell.
    assert!(s
        .slot
        .arms
        .iter()
        .all(|a| a.arm != data::REST_OF_HOURS && a.arm != data::REST_OF_DAYS));
}

/// A thin arm that happened to answer well does not replace the policy's
/// lead (the best of many thin arms is the luckiest); an arm whose gain
/// stands clear of the noise does.
#[test]
fn a_lead_replaces_the_policys_only_on_evidence() {
    let b = brand();
    // Per dealer, 5 dealers: the policy's 21 days 20 of 200; 28 days 1 of
    // 4 (25 %), pooled 5 of 20: posterior Beta(2 + 5, 18 + 15), mean
    // 17.5 %, 7.5 points more incremental response than the policy's, but
    // with a standard deviation of about 6.4 points (the posteriors' and
    // the baseline's of 100 members) that is 1.17 of them, short of
    // EVIDENCE_Z: no evidence.
    let thin = compute(
        &b,
        &vec![dealer(&[(21, 200, 20), (28, 4, 1)]); 5],
        &LearnedState::default(),
    );
    let s = learned(&thin);
    let at28 = s
        .lead
        .arms
        .iter()
        .find(|a| a.arm == Arm::Lead(28))
        .expect("28 days");
    let at21 = s
        .lead
        .arms
        .iter()
        .find(|a| a.arm == Arm::Lead(21))
        .expect("21 days");
    // By the objective alone (the choice before this rule), 28 days.
    assert!(at28.passes && at28.objective > at21.objective + 1.0);
    assert_eq!(s.lead.value, 21, "{:?}", s.lead.arms);
    // 40 of 200 per dealer at 28 days: 10 points more, about 3 points of
    // noise. Learned.
    let thick = compute(
        &b,
        &vec![dealer(&[(21, 200, 20), (28, 200, 40)]); 5],
        &LearnedState::default(),
    );
    assert_eq!(learned(&thick).lead.value, 28);
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
    // The 21 days' cell passes on its own, but with it shown the 28 days'
    // would be every lead's total minus it: held back too (together the
    // two are still dominated), so nothing is learned and nothing shown.
    assert!(s.lead.arms.iter().all(|a| !a.passes && a.sent == 0));
    assert_eq!(s.lead.value, 21);
    assert_eq!(s.lead.source, Source::Policy);
    assert_eq!(s.sent, 0);
    // Five dealers have data: the count may be said, and why nothing is used.
    assert_eq!(s.dealers, 5);
    assert_eq!(
        lead_text(s),
        "lead time: 21 days (policy; no lead time with its control baseline passes the privacy rule yet)"
    );
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
    // 10 % of 2,000, give or take the hash's spread (fixed: the keys
    // are): with no slot in force, every exploring occasion explores its
    // lead.
    assert!((150..=250).contains(&explored), "{explored}");
    // Another version of the service draws anew.
    let mut v2 = state;
    v2.services[0].lead.version += 1;
    let l2 = Learned::new(v2);
    let differ = (0..2000)
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

/// No response answers any message but the one credited to it.
fn no_answers() -> HashMap<u64, Vec<Date>> {
    HashMap::new()
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
        time_known: true,
        sent_now: false,
        id: 0,
        planned_at: None,
        planned_on: None,
        planned_lead: None,
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
    // One control member was serviced 20 days before its due date (and a
    // year before that, the cycle before): inside the windows of 21 days
    // and more (sent the day before, or earlier); for 14 days it is no
    // member at all, because a reminder of that lead is never sent once
    // the work is done. Another, drawn 25 days before its due date and
    // never answering, can be judged for 14 and 21 days only: whoever came
    // between 42 (or 28) and 25 days before was never drawn.
    let controls = vec![
        ControlResponses {
            service: "due".into(),
            due,
            drawn: due.add_days(-60),
            days: vec![due.add_days(-385), due.add_days(-20)],
            done: Some(due.add_days(-20)),
        },
        ControlResponses {
            service: "due".into(),
            due,
            drawn: due.add_days(-25),
            days: vec![],
            done: None,
        },
    ];
    let data = collect(
        &rows,
        &no_answers(),
        &controls,
        &grids(&b, &BTreeMap::new()),
        today,
    );
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
    // 2026-06-06 is a Saturday, 2026-06-02 a Tuesday, both at 09:30: the
    // Tuesday a weekday arm, the Saturday (outside the window) the weekday
    // partition's rest; one hour arm for both.
    assert_eq!(slot(5, ANY_HOUR), None);
    assert_eq!(
        data.cells
            .get(&("due".to_string(), Channel::Email, data::REST_OF_DAYS))
            .map(|c| c.sent),
        Some(1)
    );
    assert_eq!(slot(1, ANY_HOUR), Some(1));
    assert_eq!(slot(ANY_WEEKDAY, 9), Some(2));
    assert!(data
        .cells
        .keys()
        .all(|(_, _, a)| !matches!(a, Arm::Slot(wd, h) if *wd < ANY_WEEKDAY && *h < ANY_HOUR)));
    // A send history's message (day only, its hour made up) counts for its
    // lead and its weekday, never for an hour.
    let mut from_history = rows.clone();
    from_history[1].time_known = false;
    let hist = collect(
        &from_history,
        &no_answers(),
        &controls,
        &grids(&b, &BTreeMap::new()),
        today,
    );
    assert_eq!(
        hist.cells
            .get(&("due".to_string(), Channel::Email, Arm::Lead(28)))
            .map(|c| c.sent),
        Some(1)
    );
    let hist_slot = |wd, h| {
        hist.cells
            .get(&("due".to_string(), Channel::Email, Arm::Slot(wd, h)))
            .map(|c| c.sent)
    };
    assert_eq!(hist_slot(1, ANY_HOUR), Some(1));
    assert_eq!(
        hist_slot(ANY_WEEKDAY, 9),
        Some(1),
        "the other email's hour only"
    );
    let base = |l| data.baseline[&("due".to_string(), l)];
    assert_eq!((base(14).control, base(14).control_responses), (1, 0));
    assert_eq!((base(21).control, base(21).control_responses), (2, 1));
    assert_eq!((base(28).control, base(28).control_responses), (1, 1));
    assert_eq!((base(42).control, base(42).control_responses), (1, 1));

    // Reset on 2026-06-03: only what was sent from then on counts.
    let since = BTreeMap::from([("due".to_string(), d(2026, 6, 3))]);
    let data = collect(&rows, &no_answers(), &controls, &grids(&b, &since), today);
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

/// Five dealers, each 100 reminders at 21 and at 28 days, sent on Mondays
/// and Tuesdays (100 each); dealer 0 also sent 7 on a Wednesday (2
/// answered), at 21 days. Every lead cell passes; the Wednesday has one
/// dealer.
fn with_a_lone_slot() -> Vec<DealerData> {
    (0..5)
        .map(|i| {
            let mut d = dealer(&[(21, 100 + if i == 0 { 7 } else { 0 }, 10), (28, 100, 20)]);
            let mut slot = |wd, h, sent, responses| {
                d.cells.insert(
                    ("due".into(), Channel::Email, Arm::Slot(wd, h)),
                    Counts {
                        sent,
                        responses,
                        ..Counts::default()
                    },
                );
            };
            slot(0, ANY_HOUR, 100, 10);
            slot(1, ANY_HOUR, 100, 20);
            if i == 0 {
                slot(2, ANY_HOUR, 7, 2);
            }
            d
        })
        .collect()
}

#[test]
fn a_failing_slot_cannot_be_worked_out_from_the_shown_totals() {
    let b = brand();
    let dealers = with_a_lone_slot();
    let state = compute(&b, &dealers, &LearnedState::default());
    let s = learned(&state);
    let lead_sent: u64 = s.lead.arms.iter().map(|a| a.sent).sum();
    let lead_responses: u64 = s.lead.arms.iter().map(|a| a.responses).sum();
    assert_eq!((lead_sent, lead_responses, s.sent), (1007, 150, 1007));
    let shown: Vec<&ArmFigures> = s.slot.arms.iter().filter(|a| a.passes).collect();
    let slot_sent: u64 = shown.iter().map(|a| a.sent).sum();
    let slot_responses: u64 = shown.iter().map(|a| a.responses).sum();
    // Before: both big weekdays shown, 1007 − 1000 = dealer 0's 7 on a
    // Wednesday (and 150 − 148 its 2 answers). Now the smallest passing
    // weekday (Monday) is held back with it: the difference is both.
    assert_ne!(lead_sent - slot_sent, 7);
    assert_eq!(
        (lead_sent - slot_sent, lead_responses - slot_responses),
        (507, 50)
    );
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].arm, Arm::Slot(1, ANY_HOUR));
    let weekdays = s
        .slot
        .arms
        .iter()
        .filter(|a| matches!(a.arm, Arm::Slot(wd, _) if wd < ANY_WEEKDAY));
    for a in weekdays.filter(|a| !a.passes) {
        assert_eq!((a.sent, a.responses, a.dealers), (0, 0, 0), "{a:?}");
        // The posterior of a held-back arm is the prior: nothing of its data.
        let p = model::prior(Some(0.2));
        assert_eq!((a.alpha, a.beta), p, "{a:?}");
    }
    // One slot shown is no comparison: no slot learned.
    assert_eq!(s.slot.value, None);

    // The same in the lead arms: dealer 0 alone sent 7 at 35 days, which
    // every slot counts too. The smallest passing lead is held back with it.
    let mut dealers = with_a_lone_slot();
    dealers[0].cells.insert(
        ("due".into(), Channel::Email, Arm::Lead(21)),
        Counts {
            sent: 100,
            responses: 10,
            ..Counts::default()
        },
    );
    dealers[0].cells.insert(
        ("due".into(), Channel::Email, Arm::Lead(35)),
        Counts {
            sent: 7,
            responses: 2,
            ..Counts::default()
        },
    );
    let state = compute(&b, &dealers, &LearnedState::default());
    let s = learned(&state);
    let shown: Vec<Arm> = s
        .lead
        .arms
        .iter()
        .filter(|a| a.passes)
        .map(|a| a.arm)
        .collect();
    assert_eq!(shown, [Arm::Lead(28)]);
    assert_eq!(s.sent, 500);
}

#[test]
fn two_baselines_whose_difference_is_one_dealers_members_are_not_both_shown() {
    let b = brand();
    // Each dealer 20 control members in both leads' windows; dealer 0 has
    // 5 more whose window only the 28 days' lead closed. Each baseline
    // passes; their difference is dealer 0's five.
    let mut dealers = vec![dealer(&[(21, 100, 10), (28, 100, 20)]); 5];
    dealers[0].baseline.insert(
        ("due".into(), 28),
        Counts {
            control: 25,
            control_responses: 3,
            ..Counts::default()
        },
    );
    let state = compute(&b, &dealers, &LearnedState::default());
    let s = learned(&state);
    let arm = |l| {
        s.lead
            .arms
            .iter()
            .find(|a| a.arm == Arm::Lead(l))
            .expect("arm")
    };
    // The smaller one (21 days: 100 members) is held back.
    assert_eq!((arm(21).control, arm(21).control_responses), (0, 0));
    assert_eq!((arm(28).control, arm(28).control_responses), (105, 7));
    assert!(!arm(21).has_baseline() && arm(21).passes);
    // Without its baseline the policy's 21 days cannot be compared with:
    // no evidence that 28 days is better, the policy's value stays (before
    // the evidence rule, 28 days won unopposed).
    assert_eq!((s.lead.value, s.lead.source), (21, Source::Policy));
}

#[test]
fn an_arm_without_a_passing_baseline_is_left_out_of_the_choice() {
    let b = brand();
    // 28 days answered better, but only four dealers have control members
    // in its window: its baseline fails the rule. 21 days' passes (1 in 20).
    let mut dealers = vec![dealer(&[(21, 100, 10), (28, 100, 20)]); 5];
    for d in &mut dealers[..1] {
        d.baseline.remove(&("due".to_string(), 28));
    }
    for d in &mut dealers {
        for l in [14, 35, 42] {
            d.baseline.remove(&("due".to_string(), l));
        }
    }
    let state = compute(&b, &dealers, &LearnedState::default());
    let s = learned(&state);
    let at28 = s
        .lead
        .arms
        .iter()
        .find(|a| a.arm == Arm::Lead(28))
        .expect("28");
    assert!(at28.passes && !at28.has_baseline(), "{at28:?}");
    // Before: baseline 0 made 28 days' objective the best.
    assert_eq!((s.lead.value, s.lead.source), (21, Source::Learned));
    let inc = s.incremental.expect("incremental");
    let at21 = s
        .lead
        .arms
        .iter()
        .find(|a| a.arm == Arm::Lead(21))
        .expect("21");
    assert!((inc - (at21.mean() - 0.05)).abs() < 1e-12, "{inc}");
}

#[test]
fn slots_are_learned_from_two_passing_slots_with_a_margin_and_a_letters_is_its_weekday() {
    // Per dealer, five dealers: Monday and Tuesday 1,000 emails each, and
    // the same 2,000 by hour: 09:00 and 10:00, 1,000 each (answered: ten
    // times the figure given).
    let slots = |mon: u64, tue: u64, nine: u64, ten: u64| -> Vec<DealerData> {
        (0..5)
            .map(|_| {
                let mut d = dealer(&[(21, 200, 20)]);
                for (arm, r) in [
                    (Arm::Slot(0, ANY_HOUR), mon),
                    (Arm::Slot(1, ANY_HOUR), tue),
                    (Arm::Slot(ANY_WEEKDAY, 9), nine),
                    (Arm::Slot(ANY_WEEKDAY, 10), ten),
                ] {
                    d.cells.insert(
                        ("due".into(), Channel::Email, arm),
                        Counts {
                            sent: 1000,
                            responses: 10 * r,
                            ..Counts::default()
                        },
                    );
                }
                d
            })
            .collect()
    };
    let b = brand();
    // Tuesday 20 % vs 10 %, 10:00 20 % vs 10 %: Tue 10:00.
    let state = compute(&b, &slots(10, 20, 10, 20), &LearnedState::default());
    let s = learned(&state);
    assert_eq!(s.slot.value, Some((1, 10)));
    assert!(
        s.slot_text()
            .starts_with("send time: Tue 10:00 (learned slot"),
        "{}",
        s.slot_text()
    );
    // Only the weekdays differ: a weekday only; only the hours: an hour.
    let state = compute(&b, &slots(10, 20, 15, 15), &LearnedState::default());
    assert_eq!(learned(&state).slot.value, Some((1, ANY_HOUR)));
    let state = compute(&b, &slots(15, 15, 20, 10), &LearnedState::default());
    let s = learned(&state);
    assert_eq!(s.slot.value, Some((ANY_WEEKDAY, 9)));
    assert!(
        s.slot_text().starts_with("send time: 09:00 (learned slot"),
        "{}",
        s.slot_text()
    );
    // A smooth hour curve (a window to 12:00): 09:00 and 10:00 answer
    // alike (20 %), 11:00 far less (5 %). Neither of the best two beats the
    // other, both beat the window spread over all three: an hour is
    // learned (before, against the runner-up, never).
    let mut smooth = slots(15, 15, 20, 20);
    for d in &mut smooth {
        d.cells.insert(
            ("due".into(), Channel::Email, Arm::Slot(ANY_WEEKDAY, 11)),
            Counts {
                sent: 1000,
                responses: 50,
                ..Counts::default()
            },
        );
    }
    let mut wide = b.clone();
    wide.services.get_mut("due").expect("due").send_window.to =
        touchpoint_common::policy::TimeOfDay(12 * 60);
    let state = compute(&wide, &smooth, &LearnedState::default());
    assert!(
        matches!(learned(&state).slot.value, Some((ANY_WEEKDAY, 9 | 10))),
        "{:?}",
        learned(&state).slot
    );
    // 10.4 % vs 10 %: within the margin, no slot.
    let mut close = slots(50, 52, 50, 52);
    for d in &mut close {
        for c in d.cells.values_mut() {
            if c.sent == 1000 {
                c.sent = 5000;
            }
        }
    }
    let state = compute(&b, &close, &LearnedState::default());
    let s = learned(&state);
    assert_eq!(s.slot.arms.iter().filter(|a| a.passes).count(), 4);
    assert_eq!(s.slot.value, None);
    // By post, a letter goes with its day's batch: its slot is the weekday
    // only, and there are no hour arms.
    let mut post = brand();
    post.services.get_mut("due").expect("due").channels = vec![Channel::Post];
    let by_post: Vec<DealerData> = slots(10, 20, 10, 20)
        .into_iter()
        .map(|mut d| {
            d.cells = d
                .cells
                .into_iter()
                .map(|((s, _, a), c)| ((s, Channel::Post, a), c))
                .collect();
            d
        })
        .collect();
    let state = compute(&post, &by_post, &LearnedState::default());
    let s = state.get("due", Channel::Post).expect("due by post");
    assert_eq!(s.lead.source, Source::Learned);
    assert!(!s.slot.arms.is_empty());
    assert!(s
        .slot
        .arms
        .iter()
        .all(|a| matches!(a.arm, Arm::Slot(wd, ANY_HOUR) if wd < ANY_WEEKDAY)));
    assert_eq!(s.slot.value, Some((1, ANY_HOUR)));
    assert_eq!(s.slot.source, Source::Learned);
    assert!(
        s.slot_text().starts_with("send day: Tue (learned slot"),
        "{}",
        s.slot_text()
    );
}

/// A learning window shorter than the attribution window: a message
/// teaches once that window has closed, a response after it is none, and
/// the control group's baseline is counted over the same days.
#[test]
fn a_learning_window_counts_the_responses_within_it_once_it_has_closed() {
    let mut b = brand();
    let due = d(2026, 7, 1);
    let today = d(2026, 7, 10);
    // Sent 2026-06-03 and 2026-06-10 (28 and 21 days before the due date);
    // the first answered after 5 days, the second after 25 (still within
    // the 60 days' attribution).
    let early = row(d(2026, 6, 3), due, true);
    let mut late = row(d(2026, 6, 10), due, true);
    if let Some(c) = late.response.as_mut() {
        c.date = d(2026, 7, 5);
    }
    let member = ControlResponses {
        service: "due".into(),
        due,
        drawn: due.add_days(-60),
        // 2 days after the 28 days' send day, 25 after the 21 days'.
        days: vec![d(2026, 6, 5), d(2026, 6, 28)],
        done: Some(d(2026, 6, 5)),
    };
    let rows = [early, late];
    let controls = std::slice::from_ref(&member);
    // The default window (60 days) has closed for neither message.
    let whole = collect(
        &rows,
        &no_answers(),
        controls,
        &grids(&b, &BTreeMap::new()),
        today,
    );
    assert!(whole.cells.is_empty() && whole.baseline.is_empty());
    assert_eq!(b.services["due"].learn_window(), 60);
    // 21 days: both windows closed (the second on 2026-07-01); only the
    // first response lies within its window.
    b.services.get_mut("due").expect("due").learn_window_days = Some(21);
    let short = collect(
        &rows,
        &no_answers(),
        controls,
        &grids(&b, &BTreeMap::new()),
        today,
    );
    let lead = |l| {
        short
            .cells
            .get(&("due".to_string(), Channel::Email, Arm::Lead(l)))
            .map(|c| (c.sent, c.responses))
    };
    assert_eq!(lead(28), Some((1, 1)));
    assert_eq!(lead(21), Some((1, 0)));
    let base = |l| {
        short
            .baseline
            .get(&("due".to_string(), l))
            .map(|c| (c.control, c.control_responses))
    };
    // The member answered 2 days after the 28 days' send day (and again
    // 25 days after it, outside the 21 days' window: no answer there); by
    // the 21 days' send day its work was done, so it is no member of that
    // lead.
    assert_eq!(base(28), Some((1, 1)));
    assert_eq!(base(21), None);
    // A window longer than the attribution window is the attribution's.
    b.services.get_mut("due").expect("due").learn_window_days = Some(90);
    assert_eq!(b.services["due"].learn_window(), 60);
}

/// A message an operator sent now was sent on nobody's plan: it counts in
/// no lead arm and no slot arm.
#[test]
fn a_message_sent_now_counts_in_no_arm() {
    let grids = grids(&brand(), &BTreeMap::new());
    let mut now = row(d(2026, 3, 3), d(2026, 3, 24), true);
    let planned = collect(
        std::slice::from_ref(&now),
        &no_answers(),
        &[],
        &grids,
        d(2026, 9, 1),
    );
    assert_eq!(
        planned.cells.len(),
        3,
        "a lead arm, a weekday arm and an hour arm"
    );
    now.sent_now = true;
    let data = collect(&[now], &no_answers(), &[], &grids, d(2026, 9, 1));
    assert!(data.cells.is_empty(), "{:?}", data.cells);
}

/// A letter's slot is the weekday it went out on, whatever the hour of its
/// batch, and a letter of an imported send history (day only) counts too;
/// an email counts for its weekday, and for its hour only with its real
/// time of day.
#[test]
fn a_letters_slot_is_its_weekday_and_only_an_email_with_its_time_has_an_hour() {
    let grids = grids(&brand(), &BTreeMap::new());
    let today = d(2026, 9, 1);
    // Tuesday 2026-03-03, sent at 09:30 local.
    let sent = d(2026, 3, 3);
    let mut letter = row(sent, d(2026, 3, 24), true);
    letter.channel = Some(Channel::Post);
    let mut history_letter = letter.clone();
    history_letter.time_known = false;
    let email = row(sent, d(2026, 3, 24), false);
    let mut history_email = email.clone();
    history_email.time_known = false;
    let data = collect(
        &[letter, history_letter, email, history_email],
        &no_answers(),
        &[],
        &grids,
        today,
    );
    let cell = |channel, arm| data.cells.get(&("due".to_string(), channel, arm)).copied();
    let weekday = cell(Channel::Post, Arm::Slot(1, ANY_HOUR)).expect("the letters' weekday");
    assert_eq!((weekday.sent, weekday.responses), (2, 2));
    assert!(data
        .cells
        .keys()
        .all(|(_, c, a)| *c != Channel::Post || !matches!(a, Arm::Slot(_, h) if *h != ANY_HOUR)));
    // Both emails count for their weekday; only the one with its real
    // time for its hour.
    let count = |arm| cell(Channel::Email, arm).map(|c| c.sent);
    assert_eq!(count(Arm::Slot(1, ANY_HOUR)), Some(2));
    assert_eq!(count(Arm::Slot(ANY_WEEKDAY, 9)), Some(1));
}

#[test]
fn one_draw_per_occasion_decides_whether_it_explores() {
    let b = brand();
    let s = &b.services["due"];
    let state = compute(&b, &with_slots(), &LearnedState::default());
    assert!(learned(&state).slot.value.is_some());
    let l = Learned::new(state.clone());
    let n = 20_000;
    let mut explored = 0;
    let mut leads = 0;
    let in_force = learned(&state).lead.value;
    let slot_in_force = learned(&state).slot.value;
    for i in 0..n {
        let key = format!("due|V{i}|2027-01-10");
        let lead = l.lead("due", s, Channel::Email, &key, false);
        let slot = l.slot("due", s, Channel::Email, &key, false).expect("slot");
        let (a, b) = (
            lead.why.unwrap_or_default().contains("exploring:"),
            slot.why.unwrap_or_default().contains("exploring:"),
        );
        // One decision: an occasion explores its lead or its slot, never
        // both; the other is the value in force.
        assert!(!(a && b), "{key}");
        if a {
            assert_eq!(slot.value, slot_in_force.expect("slot in force"), "{key}");
        }
        if b {
            assert_eq!(lead.value, in_force, "{key}");
        }
        explored += u32::from(a || b);
        leads += u32::from(a);
    }
    // 10 % of 20,000 (before: about 19 %, two draws per occasion), about
    // half of them each.
    assert!((1_800..=2_200).contains(&explored), "{explored}");
    assert!((800..=1_200).contains(&leads), "{leads} of {explored}");

    // Another service's change (the global version) draws nothing anew.
    let mut other = state.clone();
    let mut unrelated = learned(&state).clone();
    unrelated.service = "other".into();
    unrelated.lead.version = 9;
    other.services.push(unrelated);
    other.version = 9;
    let l2 = Learned::new(other);
    for i in 0..500 {
        let key = format!("due|V{i}|2027-01-10");
        assert_eq!(
            l.lead("due", s, Channel::Email, &key, false),
            l2.lead("due", s, Channel::Email, &key, false),
            "{key}"
        );
    }
}

/// Five dealers: 28 days answered best; Tuesday and 09:00 answered best
/// (1,000 emails a slot and dealer: enough to learn a first slot).
fn with_slots() -> Vec<DealerData> {
    (0..5)
        .map(|_| {
            let mut d = dealer(&[(21, 100, 10), (28, 100, 20)]);
            for (arm, r) in [
                (Arm::Slot(0, ANY_HOUR), 100),
                (Arm::Slot(1, ANY_HOUR), 200),
                (Arm::Slot(ANY_WEEKDAY, 9), 200),
                (Arm::Slot(ANY_WEEKDAY, 10), 100),
            ] {
                d.cells.insert(
                    ("due".into(), Channel::Email, arm),
                    Counts {
                        sent: 1000,
                        responses: r,
                        ..Counts::default()
                    },
                );
            }
            d
        })
        .collect()
}

#[test]
fn the_value_factor_needs_a_policy_increment_and_is_bounded() {
    let b = brand();
    // 21 days: 10 % answered against a baseline of 5 %; 28 days: 20 %.
    let state = compute(
        &b,
        &vec![dealer(&[(21, 100, 10), (28, 100, 20)]); 5],
        &LearnedState::default(),
    );
    let (f, _) = Learned::new(state)
        .value_factor("due", Channel::Email)
        .expect("factor");
    assert!(f > 2.0 && f < 4.0, "{f}");
    // 28 days: 90 %: far more than four times the policy's, held at 4.
    let state = compute(
        &b,
        &vec![dealer(&[(21, 100, 10), (28, 100, 90)]); 5],
        &LearnedState::default(),
    );
    let (f, _) = Learned::new(state)
        .value_factor("due", Channel::Email)
        .expect("factor");
    assert_eq!(f, 4.0);
    // The policy's 21 days at 5.2 %: 0.2 points over its baseline, too
    // little to divide by.
    let mut thin = vec![dealer(&[(21, 500, 26), (28, 100, 20)]); 5];
    for d in &mut thin {
        d.cells
            .get_mut(&("due".into(), Channel::Email, Arm::Lead(21)))
            .expect("21")
            .sent = 500;
    }
    let state = compute(&b, &thin, &LearnedState::default());
    let at21 = learned(&state)
        .lead
        .arms
        .iter()
        .find(|a| a.arm == Arm::Lead(21))
        .expect("21")
        .clone();
    assert!(
        at21.mean() - at21.baseline < MIN_POLICY_INCREMENTAL,
        "{at21:?}"
    );
    assert_eq!(
        Learned::new(state).value_factor("due", Channel::Email),
        None
    );
    // No control baseline at the policy's lead: no increment to divide by.
    let mut unbased = vec![dealer(&[(21, 100, 10), (28, 100, 20)]); 5];
    for d in &mut unbased {
        d.baseline.clear();
    }
    let state = compute(&b, &unbased, &LearnedState::default());
    assert_eq!(learned(&state).lead.source, Source::Learned);
    assert_eq!(
        Learned::new(state).value_factor("due", Channel::Email),
        None
    );
}

#[test]
fn a_frozen_lead_off_the_new_grid_falls_back_to_the_policy() {
    let b = brand();
    let state = compute(
        &b,
        &vec![dealer(&[(21, 100, 10), (35, 100, 40)]); 5],
        &LearnedState::default(),
    );
    let mut frozen = state;
    frozen.frozen.insert("due".into());
    frozen.services[0].frozen = true;
    frozen.services[0].lead.source = Source::Frozen;
    assert_eq!(learned(&frozen).lead.value, 35);
    // The policy now ends at 28 days.
    let mut changed = b.clone();
    changed.services.get_mut("due").expect("due").lead_days_max = Some(28);
    let s = &changed.services["due"];
    assert_eq!(s.lead_grid(), [14, 21, 28]);
    let l = Learned::new(frozen);
    let pick = l.lead("due", s, Channel::Email, "due|V1|2027-01-10", false);
    assert_eq!(pick.value, 21);
    assert_eq!(
        pick.why.as_deref(),
        Some("lead time: 21 days (policy; the frozen 35 days is no lead time of the policy's grid any more)")
    );
    assert_eq!(l.find_lead("due", s), 21);
    // On the old grid it stays.
    assert_eq!(
        l.lead("due", &b.services["due"], Channel::Email, "k", false)
            .value,
        35
    );
}

/// Lead arms over 7–56 days whose pooled counts are what a response curve
/// gives: a baseline of organic visits falling with the lead (a longer
/// lead's window holds fewer), and on top an incremental response of
/// `bump(lead)`; `n(lead)` messages per arm, 1,500 control members per
/// lead, 5 dealers.
fn curve(bump: &dyn Fn(u32) -> f64, n: &dyn Fn(u32) -> u64, policy: u32) -> Vec<ArmFigures> {
    let leads: Vec<u32> = (1..=8).map(|i| i * 7).collect();
    let base = |l: u32| 0.25 - 0.002 * f64::from(l);
    let policy_rate = base(policy) + bump(policy);
    leads
        .iter()
        .map(|&l| {
            let sent = n(l);
            let responses = (sent as f64 * (base(l) + bump(l))).round() as u64;
            let control = 1500;
            let control_responses = (control as f64 * base(l)).round() as u64;
            let counts = Counts {
                sent,
                responses,
                control,
                control_responses,
            };
            let mut a = model::arm(
                Arm::Lead(l),
                Some((counts, 5)),
                model::prior(Some(policy_rate)),
                control_responses as f64 / control as f64,
                3800,
                10,
            );
            a.control = control;
            a.control_responses = control_responses;
            a
        })
        .collect()
}

/// The truth's shape: a Gaussian bump (sd 1.25 steps) over a floor of a
/// quarter of its peak.
fn bump_at(peak: u32) -> impl Fn(u32) -> f64 {
    move |l| {
        let z = (f64::from(l) - f64::from(peak)) / 8.75;
        0.12 * (0.25 + 0.75 * (-0.5 * z * z).exp())
    }
}

/// Arms whose true incremental response follows a bump at 35 days, 40
/// messages each beside the policy's 2,000 at 14 days: no arm alone is
/// evidence (each is about 7 points of noise), so each arm on its own
/// data keeps the policy's lead; borrowing strength over the grid, the
/// arms around the bump together are, and the lead learned is within one
/// step of the truth.
#[test]
fn smoothing_over_the_grid_finds_a_bump_no_single_arm_shows() {
    let policy = 14;
    let arms = curve(
        &bump_at(35),
        &|l| if l == policy { 2000 } else { 40 },
        policy,
    );
    let all = |a: &ArmFigures| a.passes;
    let (p, l) = (Arm::Lead(policy), model::LAMBDA);
    let independent = model::best_with(&arms, &all, p, p, 0.0);
    assert_eq!(independent, p, "{arms:?}");
    let smoothed = model::best_with(&arms, &all, p, p, l);
    assert!(
        matches!(smoothed, Arm::Lead(x) if (28..=42).contains(&x)),
        "{smoothed:?}"
    );
    assert_eq!(model::best(&arms, &all, p, p), smoothed);
    // The smoothed curve peaks at the truth's 35 days.
    let s = model::smooth(&arms, &all, l).expect("smoothed");
    let top = (0..s.mean.len())
        .max_by(|&a, &b| s.mean[a].total_cmp(&s.mean[b]))
        .expect("arms");
    assert_eq!(arms[top].arm, Arm::Lead(35), "{:?}", s.mean);
}

/// One thin arm that answered well by luck while its neighbours did not:
/// on its own data it is evidence and wins (the winner's curse); smoothed,
/// its neighbours pull it back and the policy's lead stays.
#[test]
fn a_lucky_arm_its_neighbours_do_not_back_does_not_win() {
    let policy = 21;
    let truth = bump_at(21);
    let lucky = |l: u32| if l == 42 { truth(l) + 0.15 } else { truth(l) };
    let arms = curve(&lucky, &|l| if l == policy { 2000 } else { 150 }, policy);
    let all = |a: &ArmFigures| a.passes;
    let p = Arm::Lead(policy);
    assert_eq!(model::best_with(&arms, &all, p, p, 0.0), Arm::Lead(42));
    assert_eq!(model::best(&arms, &all, p, p), p);
}

/// A learned lead stays until another beats it by the evidence margin
/// (hysteresis): a slightly better neighbour does not move it, and its
/// version stays; from the policy's lead the same data moves it.
#[test]
fn a_learned_lead_changes_only_when_another_beats_it_by_the_margin() {
    let b = brand();
    // 5 dealers: 21 days 10 %, 28 days 22 %, 35 days 23 % answered (the
    // baselines 5 %).
    let data = vec![dealer(&[(21, 400, 40), (28, 400, 88), (35, 400, 92)]); 5];
    let fresh = compute(&b, &data, &LearnedState::default());
    let from_policy = learned(&fresh);
    assert_eq!(from_policy.lead.source, Source::Learned);
    let moved_to = from_policy.lead.value;
    assert_ne!(moved_to, 21, "{:?}", from_policy.lead.arms);
    // In force: 28 days, learned at version 7. 35 days is a point better,
    // well within the noise: 28 stays, and nothing changes version.
    let mut prev = fresh.clone();
    prev.version = 7;
    for s in &mut prev.services {
        s.lead.value = 28;
        s.lead.version = 7;
        s.slot.version = 7;
    }
    let next = compute(&b, &data, &prev);
    assert_eq!(learned(&next).lead.value, 28);
    assert_eq!(learned(&next).lead.version, 7);
    assert_eq!(next.version, 7);
    // In force: 35 days. 28 is not better by the margin either: 35 stays.
    for s in &mut prev.services {
        s.lead.value = 35;
    }
    assert_eq!(learned(&compute(&b, &data, &prev)).lead.value, 35);
}

/// A response the attribution pass credits to a later message (a service
/// visit answers both the service reminder and a later inspection
/// reminder of the vehicle) still answers the earlier message for
/// learning, as it answers a control member in the same place: judged by
/// the credit alone, a message sent earlier (a longer lead) lost its
/// responses to later messages, and short leads looked better.
#[test]
fn a_response_credited_to_a_later_message_still_answers_the_earlier_one() {
    let b = brand();
    let today = d(2027, 6, 1);
    let sent = d(2027, 1, 4);
    let mut earlier = row(sent, sent.add_days(28), false);
    earlier.id = 7;
    let answered: HashMap<u64, Vec<Date>> = [(7, vec![sent.add_days(12)])].into();
    let count = |answered: &HashMap<u64, Vec<Date>>| {
        collect(
            std::slice::from_ref(&earlier),
            answered,
            &[],
            &grids(&b, &BTreeMap::new()),
            today,
        )
        .cells
        .get(&("due".to_string(), Channel::Email, Arm::Lead(28)))
        .map(|c| (c.sent, c.responses))
    };
    assert_eq!(count(&no_answers()), Some((1, 0)));
    assert_eq!(count(&answered), Some((1, 1)));
    // On the send day, or after the learning window: no response.
    for day in [sent, sent.add_days(61)] {
        assert_eq!(count(&[(7, vec![day])].into()), Some((1, 0)), "{day}");
    }
}

/// An email planned for 10:00 that dispatch released at 19:30 the same
/// day (a backlog; a simulated day whose clock starts after the window)
/// counts for the hour chosen, 10:00: before, every such email fell in the
/// rest of the hours and no hour could ever be learned. One released the
/// next day counts for the hour it went out at.
#[test]
fn an_email_counts_for_the_hour_planned_when_it_went_out_that_day() {
    let grids = grids(&brand(), &BTreeMap::new());
    let at = |day: Date, h: u32, m: u32| {
        let t = chrono::Local
            .from_local_datetime(&day.naive().and_hms_opt(h, m, 0).expect("time"))
            .single()
            .expect("local time");
        Timestamp(t.timestamp_millis())
    };
    // Tuesday 2026-03-03.
    let sent = d(2026, 3, 3);
    let mut late = row(sent, d(2026, 3, 24), false);
    late.planned_at = Some(at(sent, 10, 5));
    late.sent_at = at(sent, 19, 30);
    let mut next_day = row(sent.add_days(1), d(2026, 3, 24), false);
    next_day.planned_at = Some(at(sent, 10, 5));
    next_day.sent_at = at(sent.add_days(1), 9, 10);
    let data = collect(&[late, next_day], &no_answers(), &[], &grids, d(2026, 9, 1));
    let count = |arm| {
        data.cells
            .get(&("due".to_string(), Channel::Email, arm))
            .map(|c| c.sent)
    };
    assert_eq!(count(Arm::Slot(ANY_WEEKDAY, 10)), Some(1));
    assert_eq!(count(Arm::Slot(ANY_WEEKDAY, 9)), Some(1));
    assert_eq!(count(data::REST_OF_HOURS), None);
    assert_eq!(count(Arm::Slot(1, ANY_HOUR)), Some(1));
    assert_eq!(count(Arm::Slot(2, ANY_HOUR)), Some(1));
    // Each slot cell by lead too: both went at 21 days (20 snaps to it).
    let by_lead = |arm| {
        data.slot_leads
            .get(&("due".to_string(), Channel::Email, arm, 21))
            .copied()
    };
    for arm in [
        Arm::Slot(ANY_WEEKDAY, 10),
        Arm::Slot(ANY_WEEKDAY, 9),
        Arm::Slot(1, ANY_HOUR),
        Arm::Slot(2, ANY_HOUR),
    ] {
        assert_eq!(by_lead(arm), Some(1), "{arm}");
    }
    assert_eq!(data.slot_leads.len(), 4, "{:?}", data.slot_leads);
}

/// A learned hour stays while the best beats it by less than the margin
/// (hysteresis): 09:00 and 10:00 answer about alike, and whichever was
/// learned first stays, with its version.
#[test]
fn a_learned_hour_stays_while_a_neighbour_is_not_better_by_the_margin() {
    let mut b = brand();
    b.services.get_mut("due").expect("due").send_window.to =
        touchpoint_common::policy::TimeOfDay(12 * 60);
    // Per dealer, five dealers, 800 emails an hour: 09:00 160 answered,
    // 10:00 164, 11:00 40.
    let data: Vec<DealerData> = (0..5)
        .map(|_| {
            let mut d = dealer(&[(21, 600, 60)]);
            for (h, r) in [(9, 160), (10, 164), (11, 40)] {
                d.cells.insert(
                    ("due".into(), Channel::Email, Arm::Slot(ANY_WEEKDAY, h)),
                    Counts {
                        sent: 800,
                        responses: r,
                        ..Counts::default()
                    },
                );
            }
            d
        })
        .collect();
    let fresh = compute(&b, &data, &LearnedState::default());
    assert_eq!(learned(&fresh).slot.value, Some((ANY_WEEKDAY, 10)));
    let mut prev = fresh.clone();
    prev.version = 4;
    for s in &mut prev.services {
        s.slot.value = Some((ANY_WEEKDAY, 9));
        s.slot.source = Source::Learned;
        s.slot.version = 4;
        s.lead.version = 4;
    }
    let next = compute(&b, &data, &prev);
    assert_eq!(learned(&next).slot.value, Some((ANY_WEEKDAY, 9)));
    assert_eq!(learned(&next).slot.version, 4);
    assert_eq!(next.version, 4);
}

/// Finding 2 of session 19: a slot in force gave way to a neighbour a
/// point better, within the noise of a slot's cell, so hours took turns.
/// Now the best must beat the slot in force by the evidence margin (as a
/// lead must): 2 points on 1,000 emails each (z ≈ 1.1) keep it, 6 points
/// replace it.
#[test]
fn a_learned_hour_stays_until_a_neighbour_beats_it_by_the_evidence_margin() {
    let mut b = brand();
    b.services.get_mut("due").expect("due").send_window.to =
        touchpoint_common::policy::TimeOfDay(12 * 60);
    // Per dealer, five dealers, 200 emails an hour.
    let hours = |nine: u64, ten: u64| -> Vec<DealerData> {
        (0..5)
            .map(|_| {
                let mut d = dealer(&[(21, 600, 60)]);
                for (h, r) in [(9, nine), (10, ten), (11, 10)] {
                    d.cells.insert(
                        ("due".into(), Channel::Email, Arm::Slot(ANY_WEEKDAY, h)),
                        Counts {
                            sent: 200,
                            responses: r,
                            ..Counts::default()
                        },
                    );
                }
                d
            })
            .collect()
    };
    let held_at_nine = |data: &[DealerData]| {
        let mut prev = compute(&b, data, &LearnedState::default());
        prev.version = 4;
        for s in &mut prev.services {
            s.slot.value = Some((ANY_WEEKDAY, 9));
            s.slot.source = Source::Learned;
            s.slot.version = 4;
            s.lead.version = 4;
        }
        compute(&b, data, &prev)
    };
    // 09:00 20 %, 10:00 22 %: within the noise, 09:00 stays, no new version.
    let next = held_at_nine(&hours(40, 44));
    assert_eq!(learned(&next).slot.value, Some((ANY_WEEKDAY, 9)));
    assert_eq!(learned(&next).slot.version, 4);
    assert_eq!(next.version, 4);
    // 09:00 20 %, 10:00 26 %: evidence, 10:00 it is.
    let next = held_at_nine(&hours(40, 52));
    assert_eq!(learned(&next).slot.value, Some((ANY_WEEKDAY, 10)));
    assert_eq!(next.version, 5);
}

/// Finding 1 of session 19: with every lead worth the same lift, the
/// short leads won. Two thirds of their messages were the first plan's
/// backlog: occasions found too late for the lead meant for them, planned
/// and sent the same day at whatever lead was left, a cohort whose visits
/// are not those the lead's control baseline stands for (here it comes
/// anyway half the time). Such messages count in no arm, so the estimator
/// does not prefer the short lead; without the rule, 14 days is learned.
#[test]
fn messages_found_too_late_for_their_lead_do_not_make_the_short_lead_win() {
    let b = brand();
    let today = d(2026, 12, 1);
    let mut rows = Vec::new();
    let mut controls = Vec::new();
    // Every lead answers 34 % against a 30 % baseline (equal lift).
    for (i, due) in (0..100).map(|i| (i, d(2026, 6, 1).add_days(i % 20))) {
        for (lead, n) in [(14, 2), (21, 10), (28, 2)] {
            for k in 0..n {
                let mut r = row(due.add_days(-lead), due, (i * n + k) % 50 < 17);
                r.planned_on = Some(due.add_days(-70));
                rows.push(r);
            }
        }
        controls.push(ControlResponses {
            service: "due".into(),
            due,
            drawn: due.add_days(-70),
            days: if i % 10 < 3 {
                vec![due.add_days(5)]
            } else {
                vec![]
            },
            done: None,
        });
    }
    // The first plan's backlog: 150 occasions found 15 days before their
    // due date, planned and sent that day (lead 15: the 14 days' arm), half
    // of them answered (three in seven of the arm's messages, as in the
    // season).
    for i in 0..150 {
        let due = d(2026, 5, 20).add_days(i % 5);
        let sent = due.add_days(-15);
        let mut r = row(sent, due, i % 2 == 0);
        r.planned_on = Some(sent);
        rows.push(r);
    }
    let grids = grids(&b, &BTreeMap::new());
    let one = collect(&rows, &no_answers(), &controls, &grids, today);
    // Five dealers alike: the policy's 21 days stays.
    let state = compute(&b, &vec![one.clone(); 5], &LearnedState::default());
    assert_eq!(learned(&state).lead.value, 21, "{:?}", learned(&state).lead);
    assert_eq!(learned(&state).lead.source, Source::Learned);
    let arm = |l| one.cells[&("due".to_string(), Channel::Email, Arm::Lead(l))];
    assert_eq!((arm(14).sent, arm(14).responses), (200, 68));
    assert_eq!((arm(21).sent, arm(21).responses), (1000, 340));
    let base = one.baseline[&("due".to_string(), 14)];
    assert_eq!((base.control, base.control_responses), (100, 30));
    // A control member drawn on a shorter lead's send day stands for such
    // a message: no baseline of that lead counts it; the grid's longest
    // lead does.
    let late = ControlResponses {
        service: "due".into(),
        due: d(2026, 6, 1),
        drawn: d(2026, 6, 1).add_days(-14),
        days: vec![],
        done: None,
    };
    let alone = collect(
        &[],
        &no_answers(),
        std::slice::from_ref(&late),
        &grids,
        today,
    );
    assert!(!alone.baseline.contains_key(&("due".to_string(), 14)));
    let longest = ControlResponses {
        drawn: d(2026, 6, 1).add_days(-42),
        ..late
    };
    let alone = collect(&[], &no_answers(), &[longest], &grids, today);
    assert_eq!(alone.baseline[&("due".to_string(), 42)].control, 1);
    assert_eq!(alone.baseline[&("due".to_string(), 14)].control, 1);
}

/// Finding of session 20: the first slot was taken when the best beat its
/// partition's pooled rate by a point, and then held. Among ten hours, the
/// best is the luckiest of ten; the first slot now needs the evidence for
/// the family compared (z ≈ 2.33 for ten): 1.5 points over nine hours at
/// 20 % on 3,000 emails each are not enough, 5 points are. (On 1,000
/// emails each neither is: session 27's precision, the next test.)
#[test]
fn the_first_hour_learned_needs_the_evidence_of_the_best_of_ten() {
    let mut b = brand();
    let w = &mut b.services.get_mut("due").expect("due").send_window;
    w.from = touchpoint_common::policy::TimeOfDay(9 * 60);
    w.to = touchpoint_common::policy::TimeOfDay(19 * 60);
    // Per dealer, five dealers, 600 emails an hour from 09:00 to 18:00.
    let hours = |best: u64| -> Vec<DealerData> {
        (0..5)
            .map(|_| {
                let mut d = dealer(&[(21, 6000, 1200)]);
                for h in 9..19u8 {
                    d.cells.insert(
                        ("due".into(), Channel::Email, Arm::Slot(ANY_WEEKDAY, h)),
                        Counts {
                            sent: 600,
                            responses: if h == 16 { best } else { 120 },
                            ..Counts::default()
                        },
                    );
                }
                d
            })
            .collect()
    };
    let fresh = compute(&b, &hours(129), &LearnedState::default());
    assert_eq!(
        learned(&fresh).slot.value,
        None,
        "21.5 % against 20 % is the luck of the best of ten"
    );
    let fresh = compute(&b, &hours(150), &LearnedState::default());
    assert_eq!(learned(&fresh).slot.value, Some((ANY_WEEKDAY, 16)));
}

/// Finding of session 27 (EVALUATION.md): at the issue's size the email
/// weekday was learned in week 6 on fewer than 280 emails a weekday, the
/// best about 2 standard deviations above the rest, and it was the truth's
/// second worst; in force, it got every email that did not explore and stayed
/// the season. The first slot now waits until the comparison can tell a
/// point apart (its standard deviation at most [`super::SLOT_MARGIN`]):
/// Wednesday at 30 % against 21.7 % is not learned on 300 emails a
/// weekday, and is on ten times as many.
#[test]
fn the_first_weekday_waits_until_the_arms_can_tell_a_point_apart() {
    // Per dealer, five dealers: 60 emails a weekday, 18 answered on
    // Wednesday and 13 on the others; then ten times as many.
    let weekdays = |scale: u64| -> Vec<DealerData> {
        let cells: Vec<(&str, Arm, u64, u64)> = (0..5u8)
            .map(|wd| {
                let answered = if wd == 2 { 18 } else { 13 };
                ("due", Arm::Slot(wd, ANY_HOUR), 60 * scale, answered * scale)
            })
            .collect();
        slot_cells(&cells)
    };
    let thin = compute(&brand(), &weekdays(1), &LearnedState::default());
    assert_eq!(
        learned(&thin).slot.value,
        None,
        "{:?}",
        learned(&thin).slot.arms
    );
    let thick = compute(&brand(), &weekdays(10), &LearnedState::default());
    assert_eq!(learned(&thick).slot.value, Some((2, ANY_HOUR)));
}

#[test]
fn the_normal_quantile_is_the_tables() {
    use super::model::{first_slot_z, normal_quantile};
    for (p, z) in [
        (0.5, 0.0),
        (0.9, 1.281_552),
        (0.95, 1.644_854),
        (0.975, 1.959_964),
        (0.99, 2.326_348),
        (0.001, -3.090_232),
        (0.999_9, 3.719_016),
    ] {
        assert!(
            (normal_quantile(p) - z).abs() < 1e-5,
            "{p}: {} not {z}",
            normal_quantile(p)
        );
    }
    assert!((first_slot_z(1) - 1.281_552).abs() < 1e-5);
    assert!((first_slot_z(10) - 2.326_348).abs() < 1e-5);
}

/// Finding of session 20: a message planned at 21 days whose send day a
/// holiday moved four days later went out at 17 and counted for 14 days;
/// such messages flattered the short arm. A message sent more than half a
/// step off its planned lead counts in no arm; one within it counts for
/// its planned lead.
#[test]
fn a_message_sent_off_its_planned_lead_counts_in_no_arm() {
    let b = brand();
    let grids = super::grids(&b, &BTreeMap::new());
    let due = Date::from_ymd(2027, 3, 1).expect("day");
    let today = Date::from_ymd(2027, 6, 1).expect("day");
    let planned_at = |sent: Date, planned: Option<u32>| {
        let mut r = row(sent, due, true);
        r.planned_lead = planned;
        r
    };
    let rows = vec![
        // Planned at 21, sent at 17: no arm.
        planned_at(due.add_days(-17), Some(21)),
        // Planned at 21, sent at 19: the 21-day arm.
        planned_at(due.add_days(-19), Some(21)),
        // No lead chosen by learning (a history's send): by its own lead.
        planned_at(due.add_days(-14), None),
        // Planned at 20 days on a grid since changed, sent so: 21 days.
        planned_at(due.add_days(-20), Some(20)),
    ];
    let data = collect(&rows, &no_answers(), &[], &grids, today);
    let sent = |l: u32| {
        data.cells
            .get(&("due".to_string(), Channel::Email, Arm::Lead(l)))
            .map_or(0, |c| c.sent)
    };
    assert_eq!((sent(14), sent(21)), (1, 2), "{:?}", data.cells);
}

#[test]
fn the_lead_chosen_is_read_back_from_every_why_the_planner_writes() {
    use touchpoint_common::outbox::{planned_lead, Step, Why};
    let b = brand();
    let s = &b.services["due"];
    let mut state = LearnedState::default();
    let whys = |learned: &Learned| {
        [false, true].map(|control| {
            let pick = learned.lead("due", s, Channel::Email, "k", control);
            let why = [Why {
                step: Step::SendTime,
                text: pick.why.expect("a learning service says its lead"),
            }];
            (planned_lead(&why), pick.value)
        })
    };
    for (read, chosen) in whys(&Learned::new(state.clone())) {
        assert_eq!(read, Some(chosen));
    }
    // Learned values of every source say it the same way.
    let data: Vec<DealerData> = (0..5).map(|_| dealer(&[(21, 600, 60)])).collect();
    state = compute(&b, &data, &state);
    assert!(!state.services.is_empty());
    for (read, chosen) in whys(&Learned::new(state)) {
        assert_eq!(read, Some(chosen));
    }
}

/// The test brand with a second learning service, `hu`, like `due` but
/// with its own send window.
fn two_services(hu_from: u16, hu_to: u16) -> BrandPolicy {
    let mut b = brand();
    let mut hu = b.services.get("due").expect("due").clone();
    hu.send_window.from = touchpoint_common::policy::TimeOfDay(hu_from * 60);
    hu.send_window.to = touchpoint_common::policy::TimeOfDay(hu_to * 60);
    b.services.insert("hu".into(), hu);
    b
}

/// Five dealers; per dealer and service, `(service, arm, sent, responses)`.
fn slot_cells(cells: &[(&str, Arm, u64, u64)]) -> Vec<DealerData> {
    (0..5)
        .map(|_| {
            let mut d = dealer(&[(21, 200, 20)]);
            for &(service, arm, sent, responses) in cells {
                d.cells.insert(
                    (service.into(), Channel::Email, arm),
                    Counts {
                        sent,
                        responses,
                        ..Counts::default()
                    },
                );
            }
            d
        })
        .collect()
}

#[test]
fn a_weekday_too_thin_in_one_service_is_learned_from_the_channels_services_together() {
    // Per dealer and service: 300 emails on Monday, 30 answered, and 300
    // on Tuesday, 39 answered. One service's 1,500 a day over five dealers
    // cannot tell 13 % from 10 % to the point a first slot needs; the two
    // services' 3,000 a day can.
    let (mon, tue) = (Arm::Slot(0, ANY_HOUR), Arm::Slot(1, ANY_HOUR));
    let data = slot_cells(&[
        ("due", mon, 300, 30),
        ("due", tue, 300, 39),
        ("hu", mon, 300, 30),
        ("hu", tue, 300, 39),
    ]);
    let alone = compute(&brand(), &data, &LearnedState::default());
    assert_eq!(learned(&alone).slot.value, None);
    let b = two_services(9, 11);
    let both = compute(&b, &data, &LearnedState::default());
    for id in ["due", "hu"] {
        let s = both.get(id, Channel::Email).expect("learned");
        assert_eq!(s.slot.value, Some((1, ANY_HOUR)), "{id}: {:?}", s.slot);
        let tue = s.slot.arms.iter().find(|a| a.arm == tue).expect("tue");
        assert_eq!((tue.sent, tue.responses, tue.dealers), (3000, 390, 5));
    }
    // By post nothing of the emails is pooled: no post arm has data.
    let mut post = b.clone();
    for s in post.services.values_mut() {
        s.channels = vec![Channel::Email, Channel::Post];
    }
    let state = compute(&post, &data, &LearnedState::default());
    let s = state.get("due", Channel::Post).expect("due by post");
    assert!(s.slot.arms.iter().all(|a| a.sent == 0), "{:?}", s.slot.arms);
}

#[test]
fn an_hour_only_one_service_sends_in_is_not_learned_for_that_services_rate() {
    // `due` sends from 09:00 to 11:00 and answers at 30 % in either hour;
    // `hu` sends from 10:00 only and answers at 10 %. Pooled raw, 09:00
    // would answer at 30 % and 10:00 at 15 % (150 + 150 of 500 + 1,500 per
    // five dealers): a slot no email earned. Standardised to each
    // service's own rate, the two hours are alike.
    let (nine, ten) = (Arm::Slot(ANY_WEEKDAY, 9), Arm::Slot(ANY_WEEKDAY, 10));
    let flat = slot_cells(&[
        ("due", nine, 100, 30),
        ("due", ten, 100, 30),
        ("hu", ten, 300, 30),
    ]);
    let b = two_services(10, 11);
    let state = compute(&b, &flat, &LearnedState::default());
    let due = state.get("due", Channel::Email).expect("due");
    assert_eq!(due.slot.value, None, "{:?}", due.slot.arms);
    for arm in [nine, ten] {
        let a = due.slot.arms.iter().find(|a| a.arm == arm).expect("arm");
        assert_eq!(a.rate(), Some(0.3), "{arm}: {a:?}");
    }
    // `hu` has one hour of its own: no hour to choose.
    let hu = state.get("hu", Channel::Email).expect("hu");
    assert_eq!(hu.slot.value, None);
    assert_eq!(
        hu.slot
            .arms
            .iter()
            .filter(|a| matches!(a.arm, Arm::Slot(ANY_WEEKDAY, _)))
            .map(|a| (a.arm, a.rate()))
            .collect::<Vec<_>>(),
        vec![(ten, Some(0.1))]
    );
    // Where 09:00 does answer better for `due` (45 % vs 30 %, on ten
    // times the emails), it is learned.
    let better = slot_cells(&[
        ("due", nine, 1000, 450),
        ("due", ten, 1000, 300),
        ("hu", ten, 3000, 300),
    ]);
    let state = compute(&b, &better, &LearnedState::default());
    let due = state.get("due", Channel::Email).expect("due");
    assert_eq!(
        due.slot.value,
        Some((ANY_WEEKDAY, 9)),
        "{:?}",
        due.slot.arms
    );
}

#[test]
fn a_service_one_dealer_sends_is_not_pooled_into_the_channels_slots() {
    // `due` from five dealers; `hu` from dealer 0 alone. Pooled, the
    // weekday cells would pass on `due`'s dealers, and their total less
    // `due`'s (its lead arms show it) would be dealer 0's `hu` emails.
    let (mon, tue) = (Arm::Slot(0, ANY_HOUR), Arm::Slot(1, ANY_HOUR));
    let mut data = slot_cells(&[("due", mon, 100, 10), ("due", tue, 100, 13)]);
    for (arm, sent, responses) in [(mon, 300, 90), (tue, 300, 30)] {
        data[0].cells.insert(
            ("hu".into(), Channel::Email, arm),
            Counts {
                sent,
                responses,
                ..Counts::default()
            },
        );
    }
    let state = compute(&two_services(9, 11), &data, &LearnedState::default());
    for id in ["due", "hu"] {
        let s = state.get(id, Channel::Email).expect("learned");
        let figures: Vec<(Arm, u64, u64, u32)> = s
            .slot
            .arms
            .iter()
            .filter(|a| a.passes)
            .map(|a| (a.arm, a.sent, a.responses, a.dealers))
            .collect();
        assert_eq!(
            figures,
            vec![(mon, 500, 50, 5), (tue, 500, 65, 5)],
            "{id}: only due's emails"
        );
    }
}

#[test]
fn an_hour_that_holds_more_messages_of_a_better_answered_lead_is_not_learned_for_it() {
    // Per dealer, five dealers: 1,200 emails at 21 days answered at 30 %
    // (its window holds more organic visits), 1,200 at 42 days at 10 %.
    // 09:00 holds 900 of the 21-day ones and 300 of the 42-day ones, as
    // the emails that do not explore fill the window from its start at the
    // lead in force; 10:00 the other way round. 09:00 answers as its
    // leads do (270 + 30 = 300 of 1,200); 10:00 a third more than its
    // leads would (90 + 90 = 180 expected, 240 answered). Raw, 09:00 looks the
    // better hour (25 % vs 20 %); weighed against its leads, 10:00 is.
    let (nine, ten) = (Arm::Slot(ANY_WEEKDAY, 9), Arm::Slot(ANY_WEEKDAY, 10));
    let data: Vec<DealerData> = (0..5)
        .map(|_| {
            let mut d = dealer(&[(21, 1200, 360), (42, 1200, 120)]);
            for (arm, responses, at_21, at_42) in [(nine, 300, 900, 300), (ten, 240, 300, 900)] {
                d.cells.insert(
                    ("due".into(), Channel::Email, arm),
                    Counts {
                        sent: 1200,
                        responses,
                        ..Counts::default()
                    },
                );
                for (lead, n) in [(21, at_21), (42, at_42)] {
                    d.slot_leads
                        .insert(("due".into(), Channel::Email, arm, lead), n);
                }
            }
            d
        })
        .collect();
    let state = compute(&brand(), &data, &LearnedState::default());
    let s = learned(&state);
    assert_eq!(s.slot.value, Some((ANY_WEEKDAY, 10)), "{:?}", s.slot.arms);
    // Standardised to the service's rate over both hours (540 of 2,400):
    // 10:00 at 4/3 of it, 09:00 at once.
    let figures: Vec<(Arm, u64, u64)> = s
        .slot
        .arms
        .iter()
        .filter(|a| a.passes)
        .map(|a| (a.arm, a.sent, a.responses))
        .collect();
    assert_eq!(figures, vec![(nine, 6000, 1350), (ten, 6000, 1800)]);
    // Without the leads of each hour's messages, 09:00 would be taken.
    let unweighed: Vec<DealerData> = data
        .into_iter()
        .map(|mut d| {
            d.slot_leads.clear();
            d
        })
        .collect();
    let raw = compute(&brand(), &unweighed, &LearnedState::default());
    assert_eq!(learned(&raw).slot.value, Some((ANY_WEEKDAY, 9)));
}

/// Exploration goes to the challengers of the values in force, never to
/// them (they have every message that does not explore), and a lead is
/// drawn by the smoothed curve: the neighbours of a clear peak far more
/// than the leads the curve rules out. (Before, Thompson's draw over every
/// arm gave most exploring messages the lead in force itself.)
#[test]
fn exploration_draws_the_challengers_of_the_values_in_force() {
    let b = brand();
    let s = &b.services["due"];
    // A peak at 28 days: 14 and 42 days answer below their baseline of 5 %.
    let data = vec![
        dealer(&[
            (14, 100, 2),
            (21, 100, 10),
            (28, 400, 80),
            (35, 100, 12),
            (42, 100, 4)
        ]);
        5
    ];
    let state = compute(&b, &data, &LearnedState::default());
    assert_eq!(learned(&state).lead.value, 28);
    let l = Learned::new(state);
    let mut drawn: BTreeMap<u32, u32> = BTreeMap::new();
    for i in 0..20_000 {
        let key = format!("due|V{i}|2027-01-10");
        let a = l.lead("due", s, Channel::Email, &key, false);
        if a.why.unwrap_or_default().contains("exploring:") {
            *drawn.entry(a.value).or_default() += 1;
        }
    }
    let n = |lead| drawn.get(&lead).copied().unwrap_or(0);
    let explored: u32 = drawn.values().sum();
    // 10 %: no slot is in force, so every exploring occasion explores its
    // lead.
    assert!((1_800..=2_200).contains(&explored), "{drawn:?}");
    assert_eq!(n(28), 0, "{drawn:?}");
    assert!(n(21) + n(35) > 4 * (n(14) + n(42)), "{drawn:?}");

    // The slot: Tuesday and 09:00 are in force; an exploring email goes
    // on another weekday and at the window's other hour, 10:00.
    let state = compute(&b, &with_slots(), &LearnedState::default());
    assert_eq!(learned(&state).slot.value, Some((1, 9)));
    let l = Learned::new(state);
    let mut days = BTreeMap::<u8, u32>::new();
    for i in 0..20_000 {
        let key = format!("due|V{i}|2027-01-10");
        let p = l.slot("due", s, Channel::Email, &key, false).expect("slot");
        if p.why.unwrap_or_default().contains("exploring:") {
            assert_eq!(p.value.1, 10, "{key}");
            *days.entry(p.value.0).or_default() += 1;
        } else {
            assert_eq!(p.value, (1, 9));
        }
    }
    assert!(!days.contains_key(&1), "{days:?}");
    assert_eq!(days.len(), 4, "{days:?}");
}

#[test]
fn the_lead_explored_is_drawn_from_the_smoothed_curve_without_the_one_in_force() {
    // Data at 21 and 28 days only (28 in force): the curve is known there
    // and wide elsewhere, so every lead but the one in force is drawn.
    let arms: Vec<ArmFigures> = [14, 21, 28, 35, 42]
        .into_iter()
        .map(|l| {
            let data = matches!(l, 21 | 28).then(|| {
                let c = Counts {
                    sent: 500,
                    responses: if l == 28 { 100 } else { 60 },
                    control: 200,
                    control_responses: 20,
                };
                (c, 5)
            });
            let mut a = model::arm(Arm::Lead(l), data, model::prior(Some(0.15)), 0.1, 100, 0);
            if let Some((c, _)) = data {
                a.control = c.control;
                a.control_responses = c.control_responses;
            }
            a
        })
        .collect();
    let usable = model::usable_lead(&arms);
    assert!(model::smooth(&arms, &usable, model::LAMBDA).is_some());
    let mut seen = BTreeMap::<u32, u32>::new();
    for i in 0..2_000 {
        let key = format!("k{i}");
        let draw = |v| {
            model::explore_lead(
                &arms,
                &usable,
                Arm::Lead(28),
                100,
                0,
                &mut Stream::new(&key, v),
            )
        };
        let a = draw(1);
        // The same key and version draw the same lead.
        assert_eq!(a, draw(1), "{key}");
        if let Some(Arm::Lead(l)) = a {
            *seen.entry(l).or_default() += 1;
        }
    }
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        [14, 21, 35, 42],
        "{seen:?}"
    );
    assert_eq!(seen.values().sum::<u32>(), 2_000);
    // A grid of one lead, the one in force: nothing to explore.
    let mut st = Stream::new("k", 1);
    assert_eq!(
        model::explore_lead(&arms[2..3], &usable, Arm::Lead(28), 100, 0, &mut st),
        None
    );
}

/// An occasion found early for the grid's sake waits for the lead in
/// force unless it explores its lead: one that explores its slot goes at
/// the lead in force, planned when that lead's send day comes within the
/// horizon, as one that does not explore; a control member is drawn when
/// found.
#[test]
fn only_an_occasion_exploring_its_lead_is_planned_when_found() {
    let b = brand();
    let s = &b.services["due"];
    let state = compute(&b, &with_slots(), &LearnedState::default());
    let l = Learned::new(state);
    let (send_day, until) = (d(2027, 3, 1), d(2027, 2, 1));
    let (mut planned_now, mut lead_turns) = (0, 0);
    for i in 0..4_000 {
        let key = format!("due|V{i}|2027-03-20");
        let lead = l.lead("due", s, Channel::Email, &key, false);
        let explores_lead = lead.why.unwrap_or_default().contains("exploring:");
        let waits = l.waits("due", s, Channel::Email, &key, false, send_day, until);
        assert_eq!(waits, !explores_lead, "{key}");
        // Within the horizon nothing waits; a control member never does.
        assert!(!l.waits("due", s, Channel::Email, &key, false, until, until));
        assert!(!l.waits("due", s, Channel::Email, &key, true, send_day, until));
        planned_now += u32::from(!waits);
        lead_turns += u32::from(explores_lead);
    }
    // About 5 % (half of the 10 % exploring).
    assert!((120..=280).contains(&planned_now), "{planned_now}");
    assert_eq!(planned_now, lead_turns);
}

#[test]
fn the_cholesky_factor_gives_back_the_smoothed_covariance() {
    let arms: Vec<ArmFigures> = [14, 21, 28, 35, 42]
        .into_iter()
        .map(|l| {
            let c = Counts {
                sent: 100 + u64::from(l) * 10,
                responses: 20 + u64::from(l) / 7,
                control: 300,
                control_responses: 30,
            };
            let mut a = model::arm(
                Arm::Lead(l),
                Some((c, 5)),
                model::prior(Some(0.2)),
                0.1,
                100,
                0,
            );
            a.control = c.control;
            a
        })
        .collect();
    let usable = model::usable_lead(&arms);
    let sm = model::smooth(&arms, &usable, model::LAMBDA).expect("smoothed");
    let l = model::cholesky(&sm.cov).expect("positive definite");
    for i in 0..arms.len() {
        for j in 0..arms.len() {
            assert_eq!(l[i][j], if j > i { 0.0 } else { l[i][j] });
            let back: f64 = (0..arms.len()).map(|k| l[i][k] * l[j][k]).sum();
            assert!(
                (back - sm.cov[i][j]).abs() <= 1e-12 + 1e-9 * sm.cov[i][i].abs(),
                "{i} {j}"
            );
        }
    }
    // Not positive definite, or no variance: none.
    assert!(model::cholesky(&[vec![1.0, 2.0], vec![2.0, 1.0]]).is_none());
    assert!(model::cholesky(&[vec![0.0]]).is_none());
    assert!(model::cholesky(&[vec![f64::NAN]]).is_none());
}

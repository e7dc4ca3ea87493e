use super::*;
use crate::domain::{Channel, Timestamp};
use crate::money::Money;
use crate::report::{Credited, ResponseKind};
use crate::Date;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 5e-5
}

/// Newcombe (1998), table II: the published limits of method 10.
#[test]
fn newcombe_matches_the_published_examples() {
    for (x1, n1, x2, n2, lo, hi) in [
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (6, 7, 2, 7, 0.0582, 0.8062),
        (5, 56, 0, 29, -0.0381, 0.1926),
    ] {
        let l = newcombe(x1, n1, x2, n2).expect("defined");
        assert!(
            close(l.low, lo) && close(l.high, hi),
            "{x1}/{n1} − {x2}/{n2}: {l:?}"
        );
    }
}

#[test]
fn wilson_of_zero_successes_stays_inside_zero_one() {
    let (lo, hi) = wilson(0, 10).expect("defined");
    assert_eq!(lo, 0.0);
    assert!(close(hi, 0.2775), "{hi}");
    assert_eq!(wilson(0, 0), None);
}

fn row(channel: Option<Channel>, cost: i64, response: Option<i64>) -> ResultRow {
    ResultRow {
        service: "inspection".into(),
        channel,
        due: Date::from_ymd(2027, 1, 20).expect("date"),
        sent_at: Timestamp(0),
        lead_days: 20,
        cost: Money(cost),
        delivered: channel.is_some(),
        bounced: false,
        unsubscribed: false,
        response: response.map(|v| Credited {
            kind: ResponseKind::ServiceVisit,
            date: Date::from_ymd(2027, 1, 22).expect("date"),
            value: Some(Money(v)),
            source: "werkstatt.csv:2".into(),
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

/// 10 letters at 1.00 €, 3 answered (worth 100 € each); 10 control
/// members, 1 came anyway: rate 30 % vs 10 %, lift 20 points, 2
/// incremental responses, 10.00 € / 3 per response, 5.00 € per
/// incremental one.
#[test]
fn figures_by_hand() {
    let mut t = Tally::default();
    for i in 0..10 {
        t.add_row(&row(Some(Channel::Post), 100, (i < 3).then_some(10_000)));
        t.add_row(&row(None, 0, (i < 1).then_some(5_000)));
    }
    assert_eq!(
        (t.sent, t.responses, t.control, t.control_responses),
        (10, 3, 10, 1)
    );
    assert_eq!(
        (t.cost, t.value),
        (1_000, 30_000),
        "control value is not the messages'"
    );
    let f = t.figures();
    assert!(close(f.response_rate.expect("rate"), 0.3));
    assert!(close(f.control_rate.expect("rate"), 0.1));
    let lift = f.lift.expect("lift");
    assert!(close(lift.estimate, 0.2));
    assert!(
        lift.low < 0.0 && lift.high > 0.4,
        "small groups: wide interval {lift:?}"
    );
    assert!(close(f.incremental.expect("inc"), 2.0));
    assert!(close(f.cost_per_response.expect("cpr"), 1_000.0 / 3.0));
    assert!(close(f.cost_per_incremental.expect("cpi"), 500.0));
}

#[test]
fn undefined_figures_are_none_never_infinite() {
    let none = Tally::default().figures();
    assert_eq!(none, Figures::default());
    // No control group: no lift, no cost per incremental response.
    let mut t = Tally::default();
    t.add_row(&row(Some(Channel::Email), 10, None));
    let f = t.figures();
    assert_eq!(
        (f.response_rate, f.lift, f.cost_per_response),
        (Some(0.0), None, None)
    );
    // Lift ≤ 0: cost per incremental response is undefined.
    t.add_row(&row(None, 0, Some(0)));
    let f = t.figures();
    assert!(f.lift.expect("lift").estimate < 0.0);
    assert_eq!(f.cost_per_incremental, None);
}

#[test]
fn groups_sort_and_label() {
    let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("time");
    let mut r = row(Some(Channel::Email), 0, None);
    let t = at("2027-01-04 09:30"); // a Monday
    assert_eq!(By::Weekday.group("d1", &r, t), (0, "Mon".into()));
    assert_eq!(By::Hour.group("d1", &r, t), (9, "09:00".into()));
    assert_eq!(By::Month.group("d1", &r, t), (202_701, "2027-01".into()));
    assert_eq!(By::Lead.group("d1", &r, t), (2, "14-20 days".into()));
    r.lead_days = 3;
    assert_eq!(By::Lead.group("d1", &r, t), (0, "1-6 days".into()));
    r.lead_days = 0;
    assert_eq!(By::Lead.group("d1", &r, t).1, "on/after due");
    r.lead_days = 400;
    assert_eq!(By::Lead.group("d1", &r, t), (12, "84+ days".into()));
    assert_eq!(By::Channel.group("d1", &row(None, 0, None), t).1, "control");
    assert_eq!(By::parse("weekday"), Some(By::Weekday));
    assert_eq!(By::parse("week"), None);
}

fn counts(sent: u64, responses: u64, control: u64, control_responses: u64, cost: i64) -> Tally {
    Tally {
        sent,
        delivered: sent,
        responses,
        control,
        control_responses,
        cost,
        ..Tally::default()
    }
}

fn sum(parts: &[Tally]) -> Tally {
    let mut t = Tally::default();
    parts.iter().for_each(|p| t.add(p));
    t
}

/// service_due: 100 sent at 1.00 €, 30 answered; 100 control members, 10
/// came anyway: lift 20 points, 20 incremental responses. birthday: 100
/// sent at 0.50 €, 5 answered, no control group. Pooled, the birthday
/// messages count as sent with no baseline: 35/200 against 10/100 = 7.5
/// points, 15 incremental, 150 € / 15 = 10.00 € each. Stratified: the
/// lift is service_due's alone, 20 points over its 100 sent, 20
/// incremental responses, its 100 € / 20 = 5.00 € each.
#[test]
fn a_service_without_a_control_group_is_left_out_of_the_lift() {
    let due = counts(100, 30, 100, 10, 10_000);
    let birthday = counts(100, 5, 0, 0, 5_000);
    let total = sum(&[due, birthday]);
    let pooled = total.figures();
    assert!(
        close(pooled.lift.expect("pooled").estimate, 0.075),
        "{pooled:?}"
    );
    assert!(close(pooled.cost_per_incremental.expect("cpi"), 1_000.0));

    let f = stratified(&total, &[due, birthday]);
    let lift = f.lift.expect("lift");
    assert!(close(lift.estimate, 0.20), "{lift:?}");
    // service_due's own Newcombe interval: one stratum in the lift.
    assert!(
        close(lift.low, 0.090_002) && close(lift.high, 0.305_789),
        "{lift:?}"
    );
    assert_eq!(f.lift_sent, 100, "the lift covers service_due's sent only");
    assert!(close(f.incremental.expect("inc"), 20.0));
    assert!(close(f.cost_per_incremental.expect("cpi"), 500.0));
    // Counts and rates stay the whole group's.
    assert!(close(f.response_rate.expect("rate"), 0.175));
    assert!(close(f.control_rate.expect("rate"), 0.10));
    assert!(close(f.cost_per_response.expect("cpr"), 15_000.0 / 35.0));
}

/// Simpson's paradox: in both services the messages add 10 points, but
/// service A (base rate 50 %) keeps 400 in control and sends 100, service
/// B (base rate 10 %) sends 400 and keeps 100. Pooled: 140/500 = 28 %
/// against 210/500 = 42 %, −14 points, the interval below zero. Stratified:
/// (0.10 × 100 + 0.10 × 400) / 500 = +10 points, 50 incremental; the
/// interval (Newcombe per service, combined with weights 0.2 and 0.8)
/// above zero. Limits computed by hand from the Wilson intervals:
/// A [−0.009460, 0.202889], B [0.017264, 0.161367] →
/// 0.1 − √((0.2·0.109460)² + (0.8·0.082736)²) = 0.030285,
/// 0.1 + √((0.2·0.102889)² + (0.8·0.061367)²) = 0.153232.
#[test]
fn simpsons_paradox_pooled_and_stratified_lift_differ_in_sign() {
    let a = counts(100, 60, 400, 200, 10_000);
    let b = counts(400, 80, 100, 10, 40_000);
    let total = sum(&[a, b]);
    let pooled = total.figures().lift.expect("pooled");
    assert!(
        close(pooled.estimate, -0.14) && pooled.high < 0.0,
        "{pooled:?}"
    );

    let f = stratified(&total, &[a, b]);
    let lift = f.lift.expect("lift");
    assert!(close(lift.estimate, 0.10), "{lift:?}");
    assert!(
        close(lift.low, 0.030_285) && close(lift.high, 0.153_232),
        "{lift:?}"
    );
    assert!(close(f.incremental.expect("inc"), 50.0));
    assert_eq!(f.lift_sent, 500);
    assert!(close(f.cost_per_incremental.expect("cpi"), 50_000.0 / 50.0));
}

/// A group of one service has today's figures: Newcombe's interval, lift
/// × sent, cost / incremental; a service with no rows in it changes nothing.
#[test]
fn one_service_has_the_unstratified_figures() {
    let t = counts(70, 56, 80, 48, 7_000);
    let f = stratified(&t, &[t, Tally::default()]);
    let l = newcombe(56, 70, 48, 80).expect("defined");
    assert_eq!(f.lift, Some(l));
    assert!(close(l.low, 0.0524) && close(l.high, 0.3339));
    assert!(close(f.incremental.expect("inc"), l.estimate * 70.0));
    assert!(close(
        f.cost_per_incremental.expect("cpi"),
        7_000.0 / (l.estimate * 70.0)
    ));
    assert_eq!(f.lift_sent, 70);
    assert_eq!(t.figures(), f);
}

/// No service with a control group: no lift, none of its figures, and
/// the counts still there.
#[test]
fn no_control_group_in_any_service_no_lift() {
    let a = counts(10, 2, 0, 0, 100);
    let b = counts(5, 0, 0, 0, 100);
    let f = stratified(&sum(&[a, b]), &[a, b]);
    assert_eq!(
        (f.lift, f.incremental, f.cost_per_incremental, f.lift_sent),
        (None, None, None, 0)
    );
    assert!(close(f.response_rate.expect("rate"), 2.0 / 15.0));
}

/// Clicks are counted beside responses, never as one: 4 delivered emails,
/// 2 clicked (one of them 3 times), 1 bounced email clicked too: click
/// rate 2 / 4, response rate untouched.
#[test]
fn clicks_are_counted_per_delivered_email_and_are_no_response() {
    let mut t = Tally::default();
    for (clicks, delivered) in [(3, true), (1, true), (0, true), (0, true), (2, false)] {
        let mut r = row(Some(Channel::Email), 0, None);
        r.clicks = clicks;
        r.delivered = delivered;
        r.bounced = !delivered;
        t.add_row(&r);
    }
    // A delivered letter has no link: it does not dilute the click rate.
    t.add_row(&row(Some(Channel::Post), 0, None));
    assert_eq!((t.sent, t.delivered, t.clicked, t.clicks), (6, 5, 2, 6));
    assert_eq!(t.emails_delivered, 4);
    assert_eq!(t.responses, 0);
    let f = t.figures();
    assert_eq!(f.click_rate, Some(0.5));
    assert_eq!(f.response_rate, Some(0.0));
    let mut sum = Tally::default();
    sum.add(&t);
    sum.add(&t);
    assert_eq!((sum.clicked, sum.clicks, sum.emails_delivered), (4, 12, 8));
    assert_eq!(Tally::default().figures().click_rate, None);
}

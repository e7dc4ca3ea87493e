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
    assert_eq!((t.sent, t.delivered, t.clicked, t.clicks), (5, 4, 2, 6));
    assert_eq!(t.responses, 0);
    let f = t.figures();
    assert_eq!(f.click_rate, Some(0.5));
    assert_eq!(f.response_rate, Some(0.0));
    let mut sum = Tally::default();
    sum.add(&t);
    sum.add(&t);
    assert_eq!((sum.clicked, sum.clicks), (4, 12));
    assert_eq!(Tally::default().figures().click_rate, None);
}

use touchpoint_common::domain::Channel;
use touchpoint_common::Date;

use super::*;

fn day(y: i32, m: u32, d: u32) -> Date {
    Date::from_ymd(y, m, d).expect("a valid date")
}

#[test]
fn the_same_seed_gives_the_same_truth_and_draws() {
    let a = Truth::new(11, &demo_services());
    let b = Truth::new(11, &demo_services());
    assert_eq!(a, b);
    let m = Send {
        service: "service_due",
        channel: Channel::Email,
        due: day(2027, 3, 1),
        send_on: day(2027, 2, 1),
        send_at: 9 * 60,
        dealer: "d001",
        key: 42,
    };
    for key in 0..200 {
        let m = Send { key, ..m };
        assert_eq!(a.visit_after(&m), b.visit_after(&m));
        assert_eq!(
            a.organic_visit("service_due", key, m.due),
            b.organic_visit("service_due", key, m.due)
        );
    }
    // Another seed draws another optimum somewhere over a few seeds.
    let peaks: std::collections::BTreeSet<u32> = (0..8)
        .map(|s| Truth::new(s, &demo_services()).services[0].peak_lead)
        .collect();
    assert!(peaks.len() > 1, "{peaks:?}");
}

#[test]
fn the_optimum_is_on_the_grid_in_the_window_and_never_the_policy_lead() {
    for seed in 0..40 {
        let t = Truth::new(seed, &demo_services());
        for s in &t.services {
            for channel in [Channel::Email, Channel::Post] {
                let o = t.oracle(&s.spec.id, channel).expect("a known service");
                assert!(s.spec.grid.leads().any(|l| l == o.lead), "{o:?}");
                assert_ne!(o.lead, s.spec.policy_lead, "seed {seed} {}", s.spec.id);
                assert!(s.spec.weekdays.contains(&o.slot.weekday));
                assert!((s.spec.hours.0..s.spec.hours.1).contains(&o.slot.hour));
                // No arm of the grid and the window is worth more.
                for lead in s.spec.grid.leads() {
                    for &weekday in &s.spec.weekdays {
                        for hour in s.spec.hours.0..s.spec.hours.1 {
                            let slot = Slot { weekday, hour };
                            let inc =
                                t.expected_incremental(&s.spec.id, channel, lead as i32, slot, 1.0);
                            assert!(inc <= o.incremental + 1e-12, "{lead} {slot:?}");
                        }
                    }
                }
                // Within a step of the response curve's peak: the organic
                // visits move it at most that far.
                assert!(
                    s.spec.grid.steps_between(o.lead, s.peak_lead) <= 1,
                    "{o:?} {s:?}"
                );
                assert!(o.incremental > 0.0);
            }
        }
    }
}

#[test]
fn drawn_responses_follow_the_expected_incremental_response() {
    // Messages at the oracle's arm and at the policy's lead to the same
    // recipients: the share that comes within the window because of the
    // message matches the model's expectation.
    let t = Truth::new(5, &demo_services());
    let o = t.oracle("service_due", Channel::Email).expect("known");
    let f = t.dealer_factor("d003");
    let due0 = day(2027, 1, 4);
    for lead in [o.lead as i32, 21] {
        let (mut with, mut without, n) = (0u32, 0u32, 40_000u64);
        for key in 0..n {
            // Spread dues so that the send day falls on the oracle's weekday.
            let due = due0.add_days((key % 20) as i32 * 7);
            let send_on = due.add_days(-lead);
            let shift =
                (i32::from(o.slot.weekday) - Slot::of(send_on, 0).weekday as i32).rem_euclid(7);
            let (send_on, due) = (send_on.add_days(shift), due.add_days(shift));
            let m = Send {
                service: "service_due",
                channel: Channel::Email,
                due,
                send_on,
                send_at: u16::from(o.slot.hour) * 60,
                dealer: "d003",
                key,
            };
            let organic = t.organic_visit("service_due", key, due);
            if organic.is_some_and(|d| d < send_on) {
                continue; // would not have been messaged
            }
            let in_window =
                |d: Option<Date>| d.is_some_and(|d| d.days() - send_on.days() <= WINDOW_DAYS);
            with += u32::from(in_window(t.visit_after(&m)));
            without += u32::from(in_window(organic));
        }
        let measured = (f64::from(with) - f64::from(without)) / n as f64;
        let expected = t.expected_incremental("service_due", Channel::Email, lead, o.slot, f);
        // Not conditioned the same way (the skipped), so a loose bound.
        assert!(
            (measured - expected).abs() < 0.25 * expected + 0.01,
            "lead {lead}: {measured} vs {expected}"
        );
    }
}

#[test]
fn without_a_message_only_the_organic_baseline_comes() {
    let t = Truth::new(3, &demo_services());
    let due = day(2027, 2, 15);
    let n = 20_000u64;
    let came = (0..n)
        .filter(|&k| t.organic_visit("service_due", k, due).is_some())
        .count() as f64;
    let rate = came / n as f64;
    assert!((rate - 0.55).abs() < 0.02, "{rate}");
    for k in 0..n {
        if let Some(d) = t.organic_visit("service_due", k, due) {
            let off = d.days() - due.days();
            assert!((-ORGANIC_BEFORE..=ORGANIC_AFTER).contains(&off));
        }
    }
    // An unknown service: nothing, no response chance.
    assert_eq!(t.organic_visit("birthday", 1, due), None);
    assert_eq!(
        t.response_chance(
            "birthday",
            Channel::Email,
            7,
            Slot {
                weekday: 0,
                hour: 9
            },
            1.0
        ),
        0.0
    );
    // A message never makes a visit before it was sent.
    for key in 0..2_000 {
        let m = Send {
            service: "service_due",
            channel: Channel::Post,
            due,
            send_on: due.add_days(-35),
            send_at: 600,
            dealer: "d002",
            key,
        };
        if let Some(d) = t.visit_after(&m) {
            assert!(d >= m.send_on);
        }
    }
}

#[test]
fn dealers_differ_and_stay_in_their_band() {
    let t = Truth::new(9, &demo_services());
    let f: Vec<f64> = (1..=30)
        .map(|i| t.dealer_factor(&format!("d{i:03}")))
        .collect();
    assert!(f.iter().all(|x| (0.6..=1.4).contains(x)));
    let (lo, hi) = f
        .iter()
        .fold((2.0f64, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
    assert!(hi - lo > 0.3, "{lo}..{hi}");
}

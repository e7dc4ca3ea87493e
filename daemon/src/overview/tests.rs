#![allow(clippy::unwrap_used)]

use touchpoint_common::protocol::PauseScope;

use super::*;

fn tid(s: &str) -> TenantId {
    TenantId::new(s).unwrap()
}

fn policy(errors: &[&str]) -> PolicyStatus {
    PolicyStatus {
        dir: "/etc/touchpoint/policies".into(),
        loaded_at: Timestamp(0),
        files: Vec::new(),
        errors: errors.iter().map(|s| s.to_string()).collect(),
        version: 7,
        failed_at: (!errors.is_empty()).then_some(Timestamp(1_000)),
    }
}

/// (service, reserved, booked, budget) in December 2026.
type Cost<'a> = (&'a str, i64, i64, Option<i64>);

fn figures(t: &str, stats: OutboxStats, budgets: &[Cost]) -> TenantFigures {
    let budgets = budgets
        .iter()
        .map(|(service, reserved, booked, budget)| CostRow {
            tenant: tid(t),
            month: 202612,
            service: service.to_string(),
            reserved: *reserved,
            booked: *booked,
            brand: 0,
            dealer: *booked,
            budget: *budget,
        })
        .collect();
    TenantFigures {
        tenant: tid(t),
        stats,
        budgets,
        responses: Default::default(),
    }
}

#[test]
fn alerts_name_what_is_wrong_pauses_first_then_most_severe() {
    let now = Timestamp(1_000_000 * 60_000);
    let now_min = 1_000_000u32;
    let pol = policy(&["dealers/d009.toml:3: services: unknown service \"x\"", "b"]);
    let paused = [Pause {
        scope: PauseScope {
            tenant: Some(tid("d002")),
            service: None,
        },
        by: "anna".into(),
        at: Timestamp(now.0 - 3_600_000),
    }];
    let tenants = [
        figures(
            "d001",
            OutboxStats {
                stuck: 12,
                stuck_since_min: Some(now_min - 20),
                emails_out_week: 200,
                bounced_week: 11,
                ..OutboxStats::default()
            },
            &[
                ("inspection", 9_000, 400, Some(10_000)),
                // Reserved, nothing booked yet: used up, not spent.
                ("service_due", 10_000, 0, Some(10_000)),
                ("birthday", 8_000, 999, Some(10_000)),
                ("tyres", 50_000, 0, Some(0)),
                ("winter", 50_000, 0, None),
            ],
        ),
        figures(
            "d002",
            OutboxStats {
                stuck: 1,
                stuck_since_min: Some(now_min - 61),
                emails_out_week: 100,
                bounced_week: 5,
                ..OutboxStats::default()
            },
            &[],
        ),
    ];
    let a = alerts(&AlertInputs {
        now,
        policy: &pol,
        dispatch_enabled: true,
        relay_down_until: Some(Timestamp(now.0 + 120_000)),
        dispatch_error: "relay not reached: connection refused",
        paused: &paused,
        bounce_alert_percent: 5,
        tenants: &tenants,
        unreadable: &[(tid("d003"), "No space left on device (os error 28)".into())],
    });
    let lines: Vec<(AlertLevel, Option<String>, &str)> = a
        .iter()
        .map(|x| {
            (
                x.level,
                x.tenant.as_ref().map(|t| t.to_string()),
                x.text.as_str(),
            )
        })
        .collect();
    // The pause first, whatever is more severe: a list cut after a few
    // lines must not hide it; then the most severe first.
    assert!(lines[0].2.starts_with("Tenant d002 paused"), "{lines:#?}");
    let levels: Vec<AlertLevel> = lines[1..].iter().map(|l| l.0).collect();
    let mut sorted = levels.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(levels, sorted, "{lines:#?}");
    let find = |needle: &str| {
        lines
            .iter()
            .find(|l| l.2.contains(needle))
            .unwrap_or_else(|| panic!("no alert with {needle:?} in {lines:#?}"))
    };
    let p = find("policy files invalid");
    assert_eq!(p.0, AlertLevel::Critical);
    assert!(
        p.2.contains("d009.toml:3") && p.2.contains("and 1 more"),
        "{}",
        p.2
    );
    assert_eq!(find("relay unreachable").0, AlertLevel::Critical);
    let s = find("12 emails due since");
    assert_eq!((s.0, s.1.as_deref()), (AlertLevel::Warning, Some("d001")));
    assert!(s.2.contains("20 minutes"), "{}", s.2);
    let s = find("1 email due since");
    assert_eq!((s.0, s.1.as_deref()), (AlertLevel::Critical, Some("d002")));
    let i = find("inspection budget");
    assert_eq!(i.0, AlertLevel::Warning);
    assert_eq!(
        i.2,
        "inspection budget 2026-12 94% used: 90.00 reserved + 4.00 booked of 100.00, 6.00 remaining"
    );
    let s = find("service_due budget");
    assert_eq!(s.0, AlertLevel::Critical);
    assert!(
        s.2.contains("100% used: 100.00 reserved + 0.00 booked of 100.00, 0.00 remaining"),
        "{}",
        s.2
    );
    assert!(lines.iter().all(|l| !l.2.contains("spent")), "{lines:#?}");
    assert!(lines
        .iter()
        .all(|l| !l.2.contains("birthday") && !l.2.contains("tyres") && !l.2.contains("winter")));
    let b = find("bounce rate");
    assert_eq!(b.1.as_deref(), Some("d001"));
    assert!(b.2.contains("11 of 200") && b.2.contains("5.5%"), "{}", b.2);
    // 5 of 100 is not above 5 %.
    assert_eq!(lines.iter().filter(|l| l.2.contains("bounce")).count(), 1);
    let p = find("Tenant d002 paused by anna since");
    assert_eq!(p.0, AlertLevel::Warning);
    let u = find("store unreadable");
    assert_eq!((u.0, u.1.as_deref()), (AlertLevel::Critical, Some("d003")));
    assert!(u.2.contains("No space left on device"), "{}", u.2);
}

#[test]
fn no_stuck_queue_alert_while_dispatch_is_off_and_none_when_all_is_well() {
    let now = Timestamp(1_000_000 * 60_000);
    let pol = policy(&[]);
    let tenants = [figures(
        "d001",
        OutboxStats {
            stuck: 3,
            stuck_since_min: Some(999_000),
            ..OutboxStats::default()
        },
        &[("inspection", 100, 0, Some(10_000))],
    )];
    let mut i = AlertInputs {
        now,
        policy: &pol,
        dispatch_enabled: false,
        relay_down_until: None,
        dispatch_error: "",
        paused: &[],
        bounce_alert_percent: 5,
        tenants: &tenants,
        unreadable: &[],
    };
    assert!(alerts(&i).is_empty());
    i.dispatch_enabled = true;
    assert_eq!(alerts(&i).len(), 1);
}

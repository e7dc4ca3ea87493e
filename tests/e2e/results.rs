//! Results reports (M9, M1) against a real daemon: messages planned and
//! dispatched to the spool, then `touchpoint report` as an admin, a scoped
//! operator and the brand; the pooled report's disclosure rule with 4 and
//! with 6 dealers; the brand role refused everything that names a tenant.

use std::path::Path;
use std::time::Duration;

use touchpoint::client::{ClientError, PlanArgs};
use touchpoint_common::config::AccessRule;
use touchpoint_common::protocol::{ErrorKind, QueueFilter, Request, Response, Role};
use touchpoint_common::report::answer::ReportQuery;
use touchpoint_common::report::pool::Suppression;
use touchpoint_common::Date;
use touchpoint_tests::{eventually, every_request, tid, touchpoint, Options, TestDaemon};

use crate::common::me;
use crate::today;

fn rule(role: Role) -> AccessRule {
    AccessRule {
        user: None,
        uid: Some(me()),
        group: None,
        gid: None,
        role,
        tenants: vec!["*".into()],
    }
}

fn scoped(role: Role, tenant: &str) -> AccessRule {
    AccessRule {
        tenants: vec![tenant.into()],
        ..rule(role)
    }
}

/// Dealer files `t001`… taking part in `service_due`, named "Autohaus Nr. N".
fn dealers(dir: &Path, n: usize) -> Vec<std::path::PathBuf> {
    let text = std::fs::read_to_string(today::dealer_file(dir)).expect("dealer file");
    (1..=n)
        .map(|i| {
            let path = dir.join(format!("t{i:03}.toml"));
            let t = text
                .replace(&format!("\"{}\"", today::TENANT), &format!("\"t{i:03}\""))
                .replace("Autohaus Grün & Söhne GmbH", &format!("Autohaus Nr. {i}"));
            std::fs::write(&path, t).expect("dealer file");
            path
        })
        .collect()
}

fn start(dir: &Path, n: usize) -> TestDaemon {
    let spool = dir.join("out");
    TestDaemon::start_with(Options {
        dealers: Vec::new(),
        dealer_files: dealers(dir, n),
        brand: Some(today::brand_due_at_once()),
        access: vec![rule(Role::Admin)],
        dispatch: Some(format!(
            "[dispatch]\ntick_ms = 50\nbatch_at = \"23:59\"\nspool_dir = {:?}\nletters_dir = {:?}\ncalls_dir = {:?}\n",
            spool.join("mail").display().to_string(),
            spool.join("letters").display().to_string(),
            spool.join("calls").display().to_string(),
        )),
        ..Options::default()
    })
}

/// Imports six customers into each tenant, plans them (six emails each,
/// due today) and waits until dispatch has sent them to the spool.
async fn send_six_each(d: &TestDaemon, dir: &Path, tenants: &[&str]) {
    let mut c = d.client().await;
    for t in tenants {
        let r = c
            .upload(&tid(t), &today::customers_csv(dir, true))
            .await
            .expect("upload");
        assert!(r.errors.is_empty(), "{:#?}", r.errors);
        let plan = c
            .plan(PlanArgs {
                tenant: Some(tid(t)),
                day: None,
                dry_run: false,
                policies: None,
                show: 0,
            })
            .await
            .expect("plan");
        assert_eq!(
            plan.reports.first().map(|r| r.planned_count),
            Some(6),
            "{t}"
        );
    }
    let socket = d.socket.clone();
    let tenants: Vec<String> = tenants.iter().map(|t| t.to_string()).collect();
    let all_sent = eventually(Duration::from_secs(60), || {
        tenants.iter().all(|t| {
            let filter = format!("tenant:{t} status:sent");
            let out = touchpoint(&socket, &["queue", &filter, "--json"]);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            v["total"].as_u64() == Some(6)
        })
    });
    assert!(
        all_sent,
        "dispatch did not send six emails for each of {tenants:?}"
    );
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[tokio::test]
async fn report_counts_what_was_sent_and_an_operator_sees_only_its_tenants() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = start(dir.path(), 2);
    // Nothing sent yet: said so, no table of zeros.
    let out = touchpoint(&d.socket, &["report"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("no messages sent in"), "{text}");
    assert!(!text.contains("sent    resp"), "{text}");

    send_six_each(&d, dir.path(), &["t001", "t002"]).await;

    // The hand count: the queue's sent messages and the ledger's booked cost.
    let mut c = d.client().await;
    let page = c
        .queue(
            &QueueFilter {
                statuses: vec![touchpoint_common::outbox::MessageStatus::Sent],
                ..QueueFilter::default()
            },
            0,
            100,
        )
        .await
        .expect("queue");
    let booked: i64 = c
        .costs(None, None)
        .await
        .expect("costs")
        .iter()
        .map(|r| r.booked)
        .sum();
    assert_eq!(page.total, 12);
    assert!(booked > 0, "emails book their cost");

    let v = json(&touchpoint(
        &d.socket,
        &["report", "--by", "tenant", "--json"],
    ));
    let groups = v["groups"].as_array().expect("groups");
    let labels: Vec<&str> = groups.iter().filter_map(|g| g["group"].as_str()).collect();
    assert_eq!(labels, ["t001 Autohaus Nr. 1", "t002 Autohaus Nr. 2"]);
    for g in groups {
        assert_eq!(g["counts"]["sent"], 6, "{g}");
        assert_eq!(g["counts"]["delivered"], 6, "{g}");
        assert_eq!(g["counts"]["responses"], 0, "{g}");
        assert_eq!(g["figures"]["response_rate"], 0.0, "{g}");
        // No control group on this branch: no lift, nothing per incremental response.
        assert!(g["figures"]["lift"].is_null(), "{g}");
        assert!(g["figures"]["cost_per_incremental"].is_null(), "{g}");
    }
    assert_eq!(v["total"]["counts"]["sent"], 12);
    assert_eq!(
        v["total"]["counts"]["cost"],
        serde_json::json!({
            "amount": touchpoint_common::money::Money(booked).to_string(),
            "currency": "EUR"
        })
    );

    // By service, text: one line per group, 80 columns at most.
    let out = touchpoint(&d.socket, &["report"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("service_due") && l.contains(" 12 ")),
        "{text}"
    );
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");

    // CSV through the one writer: a header, the group, the total.
    let out = touchpoint(&d.socket, &["report", "--csv"]);
    let csv = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("group,suppressed,sent,"), "{csv}");
    assert!(
        lines[1].starts_with(r#""service_due","",12,12,0,0.0000,0,0,"""#),
        "{csv}"
    );

    // Filters: a period without messages, an unknown service.
    let out = touchpoint(
        &d.socket,
        &["report", "--from", "2020-01-01", "--to", "2020-01-31"],
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("no messages sent in 2020-01-01 to 2020-01-31"));
    let out = touchpoint(&d.socket, &["report", "--service", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no service \"nope\""));

    // An operator of t001 sees t001 only, names included, and may not pool.
    d.restart_with_access(&[scoped(Role::Operator, "t001")]);
    let out = touchpoint(&d.socket, &["report", "--by", "tenant"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("t001 Autohaus"), "{text}");
    assert!(!text.contains("t002") && !text.contains("Nr. 2"), "{text}");
    let v = json(&touchpoint(
        &d.socket,
        &["report", "--by", "tenant", "--json"],
    ));
    assert_eq!(v["total"]["counts"]["sent"], 6);
    let text = v.to_string();
    assert!(text.contains("t001 Autohaus Nr. 1"), "{text}");
    assert!(!text.contains("t002") && !text.contains("Nr. 2"), "{text}");
    let out = touchpoint(&d.socket, &["report", "--tenant", "t002"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains("outside your scope") && !err.contains("Nr. 2"),
        "{err}"
    );
    let out = touchpoint(&d.socket, &["report", "--pooled"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("may not"),
        "{:?}",
        out
    );
}

#[tokio::test]
async fn the_pooled_report_suppresses_four_dealers_and_shows_six() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = start(dir.path(), 6);
    send_six_each(&d, dir.path(), &["t001", "t002", "t003", "t004"]).await;

    d.restart_with_access(&[rule(Role::Brand)]);
    let mut c = d.client().await;
    let r = c
        .report(ReportQuery {
            pooled: true,
            ..ReportQuery::default()
        })
        .await
        .expect("pooled report");
    assert_eq!(r.groups.len(), 1, "{r:?}");
    assert_eq!(r.groups[0].label, "service_due");
    assert_eq!(r.groups[0].suppressed, Some(Suppression::TooFewDealers));
    assert_eq!((r.groups[0].tally, r.total.tally), (None, None), "{r:?}");
    assert!(r.shared.is_empty() && r.errors.is_empty());
    let out = touchpoint(&d.socket, &["report", "--pooled"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("service_due     suppressed (too few dealers)"),
        "{text}"
    );
    assert!(
        !text.contains("t00") && !text.contains("Autohaus"),
        "{text}"
    );

    // Two more dealers send: six dealers, equal shares, shown.
    d.restart_with_access(&[rule(Role::Admin)]);
    send_six_each(&d, dir.path(), &["t005", "t006"]).await;
    d.restart_with_access(&[rule(Role::Brand)]);
    let mut c = d.client().await;
    let r = c
        .report(ReportQuery {
            pooled: true,
            ..ReportQuery::default()
        })
        .await
        .expect("pooled report");
    assert_eq!(r.groups[0].suppressed, None, "{r:?}");
    assert_eq!(r.groups[0].tally.map(|t| t.sent), Some(36));
    assert_eq!(r.total.tally.map(|t| t.sent), Some(36));
    assert_eq!(r.dealers, 6);
    let text = format!("{r:?}");
    assert!(
        !text.contains("t00") && !text.contains("Autohaus"),
        "{text}"
    );
    // Grouped by tenant, every cell would be one dealer: refused.
    let out = touchpoint(&d.socket, &["report", "--pooled", "--by", "tenant"]);
    assert!(!out.status.success());
    // Periods that could be subtracted from each other are refused: a
    // pooled report is one whole calendar month and one table of it.
    let today = Date::today();
    let first = Date::from_ymd(today.year(), today.month(), 1).expect("first");
    for (from, to) in [
        (Some(first.add_days(1)), None),
        (Some(first), Some(first.add_months(1))),
        (None, Some(today.add_days(-1).max(first))),
    ] {
        let refused = c
            .report(ReportQuery {
                pooled: true,
                from,
                to,
                ..ReportQuery::default()
            })
            .await;
        assert!(refused.is_err(), "{from:?}..{to:?}: {refused:?}");
    }
    let whole = c
        .report(ReportQuery {
            pooled: true,
            from: Some(first),
            to: Some(first.add_months(1).add_days(-1)),
            ..ReportQuery::default()
        })
        .await
        .expect("a whole month");
    assert_eq!(whole.total.tally.map(|t| t.sent), Some(36));
    let by_service = c
        .report(ReportQuery {
            pooled: true,
            service: Some("service_due".into()),
            ..ReportQuery::default()
        })
        .await;
    assert!(by_service.is_err(), "{by_service:?}");
    // Whether a tenant exists is not told by a pooled query naming one.
    let (known, unknown) = (
        c.report(ReportQuery {
            pooled: true,
            tenant: Some("t001".parse().expect("id")),
            ..ReportQuery::default()
        })
        .await,
        c.report(ReportQuery {
            pooled: true,
            tenant: Some("t999".parse().expect("id")),
            ..ReportQuery::default()
        })
        .await,
    );
    assert_eq!(format!("{known:?}"), format!("{unknown:?}"));

    // t001 grants the brand two of its own figures: they appear by name,
    // nothing else of t001 does, and the other five still pass the rule.
    let share = |t: &str| {
        let file = d.policy_dir.join("dealers").join(format!("{t}.toml"));
        let text = std::fs::read_to_string(&file).expect("dealer file");
        std::fs::write(
            &file,
            format!("{text}\n[share]\nfields = [\"sent\", \"response_rate\"]\n"),
        )
        .expect("share");
    };
    let pooled = || {
        let v = json(&touchpoint(&d.socket, &["report", "--pooled", "--json"]));
        v["report"].clone()
    };
    share("t001");
    assert!(
        eventually(Duration::from_secs(30), || pooled()["shared"]
            .as_array()
            .is_some_and(|s| s.len() == 1)),
        "the grant was not picked up"
    );
    let r = pooled();
    assert_eq!(r["shared"][0]["tenant"], "t001");
    assert_eq!(r["shared"][0]["name"], "Autohaus Nr. 1");
    assert_eq!(
        r["shared"][0]["fields"],
        serde_json::json!([["sent", "6"], ["response_rate", "0.0 %"]])
    );
    assert!(r["groups"][0]["suppressed"].is_null(), "{r}");
    // A second grant leaves four dealers unpublished: the cell would give
    // them away as cell − the two published, so it is suppressed.
    share("t002");
    assert!(
        eventually(Duration::from_secs(30), || pooled()["shared"]
            .as_array()
            .is_some_and(|s| s.len() == 2)),
        "the second grant was not picked up"
    );
    let r = pooled();
    assert_eq!(r["groups"][0]["suppressed"], "too_few_dealers", "{r}");
    assert!(r["total"]["tally"].is_null(), "{r}");
}

#[tokio::test]
async fn the_brand_role_is_refused_everything_that_names_a_tenant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = start(dir.path(), 2);
    send_six_each(&d, dir.path(), &["t001"]).await;
    d.restart_with_access(&[rule(Role::Brand)]);
    let mut c = d.client().await;
    let mut allowed = Vec::new();
    for r in every_request(&tid("t001"), 1) {
        if matches!(r, Request::UploadChunk { .. } | Request::Subscribe) {
            continue;
        }
        let name = r.name();
        let answer = match c.request(r.clone()).await {
            Ok(a) => a,
            Err(ClientError::Daemon(e)) => Response::Error(e),
            Err(e) => panic!("{name}: {e}"),
        };
        let text = format!("{answer:?}");
        assert!(!text.contains("Autohaus Nr."), "{name}: {text}");
        match answer {
            Response::Error(e) if e.kind == ErrorKind::Forbidden => {}
            other => {
                let names_tenant = format!("{r:?}").contains("t001");
                assert!(!names_tenant, "{name} naming t001 was answered: {other:?}");
                allowed.push(name);
            }
        }
    }
    // The pooled report, the learned values (pooled under the same rule)
    // and reading brand material: nothing else.
    allowed.sort_unstable();
    allowed.dedup();
    assert_eq!(
        allowed,
        [
            "learning",
            "ping",
            "pooled-report",
            "proposal",
            "proposals",
            "templates"
        ]
    );
    // Subscribing (the feed names tenants) is refused too.
    let e = c.request(Request::Subscribe).await.expect_err("subscribe");
    assert!(
        matches!(e, ClientError::Daemon(ref e) if e.kind == ErrorKind::Forbidden),
        "{e}"
    );
}

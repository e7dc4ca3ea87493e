//! Planning end to end: fixture exports imported into a real daemon, planned
//! for a fixed day, and the planned messages (recipient, channel, day,
//! occasions, why) compared with `fixtures/plan/expected.txt`.
//!
//! `UPDATE_EXPECT=1 cargo test -p touchpoint-tests plan` rewrites the
//! expected file; review its diff like code.

use std::fmt::Write as _;
use std::path::PathBuf;

use touchpoint::client::PlanArgs;
use touchpoint_common::outbox::{Message, MessageStatus, PlanReport};
use touchpoint_common::protocol::PlanResult;
use touchpoint_common::Date;
use touchpoint_tests::{fixture, tid, touchpoint, Options, TestDaemon};

/// A Tuesday. The shipped brand's winter campaign starts on 2026-11-30.
const DAY: &str = "2026-12-01";

fn day() -> Date {
    Date::from_ymd(2026, 12, 1).expect("date")
}

fn plan_fixture(name: &str) -> PathBuf {
    fixture(&format!("plan/{name}"))
}

fn daemon() -> TestDaemon {
    TestDaemon::start_with(Options {
        dealer_files: vec![plan_fixture("p001.toml")],
        ..Options::default()
    })
}

async fn import(d: &TestDaemon, files: &[&str]) {
    let mut c = d.client().await;
    for f in files {
        let report = c
            .upload(&tid("p001"), &plan_fixture(f))
            .await
            .unwrap_or_else(|e| panic!("import {f}: {e}"));
        assert!(report.errors.is_empty(), "{f}: {:#?}", report.errors);
    }
}

async fn plan(d: &TestDaemon, dry_run: bool) -> PlanReport {
    let mut c = d.client().await;
    let mut r: PlanResult = c
        .plan(PlanArgs {
            tenant: Some(tid("p001")),
            day: Some(day()),
            dry_run,
            policies: None,
            show: 500,
        })
        .await
        .expect("plan");
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    r.reports.pop().expect("one report")
}

/// The parts of a plan that must not drift, one line per fact.
fn render(r: &PlanReport) -> String {
    let mut out = String::new();
    let msg = |out: &mut String, m: &Message| {
        let _ = writeln!(
            out,
            "{} {} {:02}:{:02} {} {} cost {} value {}",
            m.recipient,
            m.send_on,
            m.send_at / 60,
            m.send_at % 60,
            m.channel,
            m.service,
            m.cost,
            m.value
        );
        for o in &m.occasions {
            let _ = writeln!(out, "  occasion {} due {}", o.key, o.due);
        }
        for w in &m.why {
            let _ = writeln!(out, "  why {w}");
        }
    };
    for m in &r.planned {
        msg(&mut out, m);
    }
    for d in &r.dropped {
        let _ = writeln!(
            out,
            "dropped {} {} due {}: {}: {}",
            d.recipient, d.occasion.key, d.occasion.due, d.step, d.reason
        );
    }
    for m in &r.cancelled {
        let _ = write!(out, "cancelled ");
        msg(&mut out, m);
    }
    out
}

fn check_expected(name: &str, actual: &str) {
    let path = plan_fixture(name);
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, actual).expect("write expected");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_EXPECT=1 writes it)", path.display()));
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(5)
            .map(|(i, (a, b))| format!("line {}:\n  expected: {a}\n  actual:   {b}", i + 1))
            .collect();
        panic!(
            "{} differs ({} vs {} lines):\n{}\n--- actual ---\n{actual}",
            path.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plans_the_fixture_tenant_as_expected_and_idempotently() {
    let d = daemon();
    import(&d, &["kunden.csv", "besuche.csv"]).await;

    // A dry run shows the plan and writes nothing.
    let dry = plan(&d, true).await;
    assert!(dry.dry_run);
    assert!(dry.planned_count > 0);

    let first = plan(&d, false).await;
    check_expected("expected.txt", &render(&first));
    // The dry run computed the same plan (ids and Message-IDs aside).
    assert_eq!(
        render(&dry),
        render(&first),
        "a dry run must plan exactly what a real run plans"
    );
    for m in &first.planned {
        assert_eq!(m.status, MessageStatus::Planned);
        assert_eq!(
            m.message_id,
            format!("<tp.p001.{}@autohaus-plan.example>", m.id)
        );
    }

    // Same day, same data, same policy: nothing to do.
    let again = plan(&d, false).await;
    assert!(again.unchanged, "{again:#?}");
    assert_eq!(again.planned_count, 0);

    // New data (a visit import) makes it plan again, but nothing twice.
    import(&d, &["besuche.csv"]).await;
    let rerun = plan(&d, false).await;
    assert!(!rerun.unchanged);
    assert_eq!(rerun.planned_count, 0, "{}", render(&rerun));
    assert_eq!(
        rerun.already_planned + rerun.dropped_count,
        rerun.occasions_found,
        "what was dropped before is looked at again, the rest was planned"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_consent_cancels_the_planned_email_and_replans_by_post() {
    let d = daemon();
    import(&d, &["kunden.csv", "besuche.csv"]).await;
    let first = plan(&d, false).await;
    let k1: Vec<&Message> = first
        .planned
        .iter()
        .filter(|m| m.recipient == "K-1")
        .collect();
    assert_eq!(k1.len(), 1, "{}", render(&first));
    assert_eq!(k1[0].channel.as_str(), "email");

    import(&d, &["widerruf.csv"]).await;
    let second = plan(&d, false).await;
    check_expected("expected-after-revocation.txt", &render(&second));
    let cancelled = second
        .cancelled
        .iter()
        .find(|m| m.recipient == "K-1")
        .expect("K-1's email is cancelled");
    assert_eq!(cancelled.status, MessageStatus::Cancelled);
    assert!(
        cancelled
            .why
            .last()
            .is_some_and(|w| w.text.contains("email: consent withdrawn 2026-11-25")),
        "{:?}",
        cancelled.why
    );
    let replanned: Vec<&Message> = second
        .planned
        .iter()
        .filter(|m| m.recipient == "K-1")
        .collect();
    assert!(
        replanned.iter().all(|m| m.channel.as_str() == "post"),
        "{}",
        render(&second)
    );
    assert!(!replanned.is_empty());

    // The re-planned letters are recorded: a third run after new data plans
    // nothing twice.
    import(&d, &["besuche.csv"]).await;
    let third = plan(&d, false).await;
    assert!(!third.unchanged);
    assert_eq!(third.planned_count, 0, "{}", render(&third));
    assert_eq!(third.cancelled_count, 0, "{}", render(&third));
}

#[test]
fn plan_cli_dry_run_and_policy_diff() {
    let d = daemon();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(import(&d, &["kunden.csv", "besuche.csv"]));

    let out = touchpoint(
        &d.socket,
        &["plan", "--tenant", "p001", "--day", DAY, "--dry-run"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with(&format!("plan for {DAY} (dry run: nothing written)")),
        "{stdout}"
    );
    assert!(stdout.contains("SERVICE"), "{stdout}");
    assert!(stdout.contains("total"), "{stdout}");

    // A candidate policy where the dealer leaves the winter campaign.
    let candidate = d.dir.path().join("candidate");
    touchpoint_tests::copy_dir(&d.policy_dir, &candidate);
    touchpoint_tests::copy_dir(&d.policy_dir.join("dealers"), &candidate.join("dealers"));
    touchpoint_tests::copy_dir(
        &d.policy_dir.join("templates"),
        &candidate.join("templates"),
    );
    let p001 = candidate.join("dealers/p001.toml");
    let text = std::fs::read_to_string(&p001).expect("read");
    let text = text.replace("[services.winter_check]\nmonthly_budget = 50.00\n", "");
    std::fs::write(&p001, text).expect("write");
    let dir = candidate.display().to_string();
    let out = touchpoint(
        &d.socket,
        &[
            "plan",
            "--tenant",
            "p001",
            "--day",
            DAY,
            "--policies",
            &dir,
            "--show",
            "50",
            "--json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let changes = &v["changes"][0];
    assert_eq!(changes["tenant"], "p001");
    let removed = changes["removed"].as_u64().expect("removed");
    let changed = changes["changed"].as_u64().expect("changed");
    assert!(removed + changed > 0, "{changes:#}");
    let money = |v: &serde_json::Value| {
        serde_json::from_value::<touchpoint_common::money::Money>(v.clone())
            .unwrap_or_else(|e| panic!("not an amount ({e}): {v}"))
    };
    assert!(
        money(&changes["cost_candidate"]) < money(&changes["cost_current"]),
        "{changes:#}"
    );
    // Nothing was written by either run.
    let out = touchpoint(
        &d.socket,
        &[
            "plan",
            "--tenant",
            "p001",
            "--day",
            DAY,
            "--dry-run",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["reports"][0]["already_planned"], 0);

    // An invalid candidate is refused with file, line and key.
    std::fs::write(
        &p001,
        "[tenant]\nid = \"p001\"\nname = \"X\"\n[services.hu_reminder]\nmonthly_budget = -3\n",
    )
    .expect("write");
    let out = touchpoint(&d.socket, &["plan", "--day", DAY, "--policies", &dir]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("dealers/p001.toml:5: services.hu_reminder.monthly_budget"),
        "{stderr}"
    );
}

/// An operator's cancel is final for the occasions: the message is never
/// sent, its reservation goes, and no later plan plans its occasions again
/// (what the CLI's help, the console's confirmation and the protocol say).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_cancel_keeps_its_occasions_taken_for_later_plans() {
    use touchpoint_common::protocol::QueueFilter;
    let (d, _files, mut c) = crate::overview::planned(None, true).await;
    let tenant = crate::today::TENANT;
    let filter =
        |f: &str| QueueFilter::parse(format!("tenant:{tenant} {f}").trim()).expect("filter");
    let page = c.queue(&filter(""), 0, 10).await.expect("queue");
    assert_eq!(page.total, 6, "{page:?}");
    let id = page.rows[0].id.to_string();
    let out = touchpoint(&d.socket, &["cancel", "--tenant", tenant, &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let plan = |dry_run| PlanArgs {
        tenant: Some(tid(tenant)),
        day: None,
        dry_run,
        policies: None,
        show: 0,
    };
    // A dry run computes the whole plan (a committing one may find nothing
    // changed): all six occasions are taken, the cancelled one too.
    let again = c.plan(plan(true)).await.expect("plan");
    let r = again.reports.first().expect("report");
    assert_eq!(
        (r.planned_count, r.already_planned),
        (0, 6),
        "{}",
        render(r)
    );
    let again = c.plan(plan(false)).await.expect("plan");
    assert_eq!(again.reports.first().map(|r| r.planned_count), Some(0));
    let cancelled = c
        .queue(&filter("status:cancelled"), 0, 10)
        .await
        .expect("queue");
    assert_eq!(cancelled.total, 1);
    let all = c.queue(&filter(""), 0, 10).await.expect("queue");
    assert_eq!(
        all.total, 6,
        "no new message for the cancelled one's occasions"
    );
}

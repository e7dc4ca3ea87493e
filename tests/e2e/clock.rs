//! `touchpointd --clock-start`: the real binary on a clock started on a
//! coming Monday morning plans that Monday as its today and sends what is
//! due by then to its spool, whatever real day the test runs on (a Sunday,
//! a quiet day, included). It says so in its status, its overview and the
//! audit log, whose lines keep real time.

use std::path::Path;
use std::time::Duration;

use chrono::{Local, TimeZone, Utc};
use touchpoint::client::{Client, PlanArgs};
use touchpoint_common::policy::{BrandPolicy, Weekday};
use touchpoint_common::Date;
use touchpoint_tests::{daemon_files_with, eventually, repo_root, tid, DaemonProcess};

use crate::today::{customers_csv, dealer_file, TENANT};

/// The first Monday after today that is no public holiday of the shipped
/// brand: service_due's window (Mon–Fri 08:00–18:00) is open on it.
fn coming_monday() -> Date {
    let text = std::fs::read_to_string(repo_root().join("policies/brand.toml")).expect("brand");
    let brand: BrandPolicy =
        touchpoint_common::toml_file::parse_toml("brand.toml", &text).expect("shipped brand");
    let real_today = Date::from(Local::now().date_naive());
    (1..=70)
        .map(|n| real_today.add_days(n))
        .find(|d| {
            Weekday::of(*d) == Weekday::Mon
                && !brand.calendar.holidays.iter().any(|h| h.0 == *d)
                && !brand.calendar.quiet_weekdays.contains(&Weekday::Mon)
        })
        .expect("a Monday within ten weeks")
}

/// The `Date:` header of a spooled email.
fn date_header(mail: &Path) -> String {
    let text = std::fs::read_to_string(mail).expect("spooled mail");
    text.lines()
        .find_map(|l| l.strip_prefix("Date: "))
        .unwrap_or_else(|| panic!("{}: no Date header", mail.display()))
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_on_a_clock_started_monday_evening_sends_mondays_email() {
    let monday = coming_monday();
    // 18:00: service_due's window is 08:00-18:00, each message at a time of
    // its own in it, so all six are due at once.
    let start = format!("{monday} 18:00");
    let root = tempfile::tempdir().expect("tempdir");
    let out = root.path().join("out");
    let files = daemon_files_with(
        root.path(),
        &[],
        &format!(
            "[dispatch]\ntick_ms = 50\nbatch_at = \"23:59\"\nspool_dir = {:?}\nletters_dir = {:?}\ncalls_dir = {:?}\n",
            out.join("mail").display().to_string(),
            out.join("letters").display().to_string(),
            out.join("calls").display().to_string(),
        ),
    );
    dealer_file(&files.policy_dir.join("dealers"));
    let _daemon = DaemonProcess::spawn_with(
        &files.config_file,
        &files.socket,
        &files.log,
        &["--clock-start", &start],
    );
    let log = std::fs::read_to_string(&files.log).expect("log");
    let shown = format!("simulated clock: started at Mon {monday} 18:00");
    assert!(log.contains(&shown), "the log says so at start:\n{log}");

    let mut c = Client::connect(&files.socket).await.expect("connect");
    let status = c.status().await.expect("status");
    let clock = status.clock.expect("status shows the simulated clock");
    assert!(clock.describe().starts_with(&shown), "{}", clock.describe());
    let overview = c.overview(None).await.expect("overview");
    assert_eq!(overview.today, monday, "the daemon's today is the clock's");
    assert_eq!(overview.clock, Some(clock));

    // The audit log names it, at the real time it was set.
    let audit = c.audit(None, 50, "clock-start").await.expect("audit");
    let entry = audit
        .iter()
        .find(|a| a.action == "clock-start")
        .expect("the clock's start is audited");
    assert!(entry.detail.contains(&shown), "{}", entry.detail);
    assert!(
        entry.at.0 >= clock.wall_ms && entry.at.0 < clock.at_ms,
        "audit lines carry wall time: {} (clock set at {}, started at {})",
        entry.at.0,
        clock.wall_ms,
        clock.at_ms
    );

    // Customers whose service falls due in about ten days (from the real
    // today): the reminder is late already, so it goes on the daemon's
    // first usable day, its Monday.
    let r = c
        .upload(&tid(TENANT), &customers_csv(root.path(), true))
        .await
        .expect("upload");
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    let plan = c
        .plan(PlanArgs {
            tenant: Some(tid(TENANT)),
            day: None,
            dry_run: false,
            policies: None,
            show: 10,
        })
        .await
        .expect("plan");
    let report = plan.reports.first().expect("a report");
    assert_eq!(report.planned_count, 6, "{report:#?}");
    assert!(
        report.planned.iter().all(|m| m.send_on == monday),
        "{:#?}",
        report.planned
    );

    let spool = out.join("mail").join(TENANT);
    let spooled = || {
        std::fs::read_dir(&spool)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    assert!(
        eventually(Duration::from_secs(60), || spooled().len() == 6),
        "six emails in {}: {:?}\n{}",
        spool.display(),
        spooled(),
        std::fs::read_to_string(&files.log).unwrap_or_default()
    );
    // Each says it was sent that Monday, as its history does.
    let monday_local = Local
        .with_ymd_and_hms(monday.year(), monday.month(), monday.day(), 18, 0, 0)
        .single()
        .expect("18:00 local");
    let date = monday_local
        .with_timezone(&Utc)
        .format("%a, %d %b %Y")
        .to_string();
    for mail in spooled() {
        let header = date_header(&mail);
        assert!(
            header.starts_with(&date),
            "{}: Date: {header}, not {date}",
            mail.display()
        );
    }
    // The spool file is written before the message is marked sent (a
    // crash in between sends it again rather than losing it): wait for
    // the mark too.
    for m in &report.planned {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let m = loop {
            let m = c.message(&tid(TENANT), m.id).await.expect("message");
            let sent = m
                .history
                .iter()
                .any(|h| h.1 == touchpoint_common::outbox::MessageStatus::Sent);
            if sent || std::time::Instant::now() >= deadline {
                break m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let sent = m
            .history
            .iter()
            .find(|h| h.1 == touchpoint_common::outbox::MessageStatus::Sent)
            .unwrap_or_else(|| panic!("#{} sent: {:#?}", m.id, m.history));
        assert!(
            sent.0 .0 >= clock.at_ms,
            "#{} sent at {} by the clock",
            m.id,
            sent.0
        );
    }
}

/// The daemon's stderr log redirected to a file (the demo's `daemon.log`)
/// or a pipe holds no colour codes; `NO_COLOR` keeps it plain too. The
/// rehearsal's warning is logged before the configuration is read, so a
/// missing configuration file is enough to see a log line.
#[test]
fn the_stderr_log_has_no_colour_when_redirected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.toml");
    for no_color in [None, Some("1")] {
        let mut cmd = std::process::Command::new(touchpoint_tests::bin("touchpointd"));
        cmd.arg("--clock-start")
            .arg("2026-12-07T08:00:00+01:00")
            .arg("--config")
            .arg(&missing)
            .env_remove("JOURNAL_STREAM")
            .env_remove("NO_COLOR")
            .stdin(std::process::Stdio::null());
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let out = cmd.output().expect("touchpointd");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("simulated clock"), "{stderr}");
        assert!(
            !stderr.contains('\u{1b}'),
            "NO_COLOR={no_color:?}: escape codes in {stderr:?}"
        );
    }
}

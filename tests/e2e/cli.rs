//! The real `touchpoint` binary's subcommands against a daemon: what they
//! print, what `--json` gives scripts, and the exit codes (0 ok, 1 the daemon
//! or an import said no, 2 usage errors, 3 the daemon unreachable).

use touchpoint_tests::{touchpoint, TestDaemon};

use crate::common::{import_fixture, me, my_name, JUNE, MAY, MAY_ERRORS, MAY_WARNINGS};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(&out.stdout)))
}

#[test]
fn import_prints_the_report_with_every_row_error_and_exits_0() {
    let d = TestDaemon::start();
    let file = import_fixture(MAY);
    let label = file.display().to_string();
    let out = touchpoint(&d.socket, &["import", "--tenant", "d001", &label]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], format!("{label}: committed as import #1"));
    assert!(
        lines.contains(&"  format     windows-1252, ';', 22 columns"),
        "{stdout}"
    );
    // A bad email and an impossible first registration cost those fields,
    // not their customers and vehicles.
    assert!(
        lines.contains(&"  rows       11 total, 7 ok, 2 with warnings, 2 rejected"),
        "{stdout}"
    );
    assert!(
        lines.contains(&"  customers  8 inserted, 0 updated, 1 unchanged"),
        "{stdout}"
    );
    assert!(lines.contains(&"  merges     1"), "{stdout}");
    assert!(lines.contains(&"  unmapped   Bemerkung"), "{stdout}");
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with(&format!("{MAY}:")))
        .collect();
    assert_eq!(errors, MAY_ERRORS, "{stdout}");
    let warnings: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("warning: "))
        .collect();
    assert_eq!(warnings, MAY_WARNINGS, "{stdout}");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    // The tenant's detail lists them as the import's warnings.
    let out = touchpoint(&d.socket, &["tenant", "d001"]);
    let detail = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{detail}{}", text(&out.stderr));
    assert!(
        detail.contains(&format!(
            "\nimport #1 ({MAY}): 2 rows with warnings\n  {}\n  {}\n",
            MAY_WARNINGS[0], MAY_WARNINGS[1]
        )),
        "{detail}"
    );

    // Two files in one call: the one already imported, then the June export.
    let june = import_fixture(JUNE);
    let june_label = june.display().to_string();
    let out = touchpoint(
        &d.socket,
        &["import", "--tenant", "d001", &label, &june_label],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with(&format!("{label}: same file as #1 (imported ")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "); nothing applied\n{june_label}: committed as import #3\n"
        )),
        "{stdout}"
    );
}

#[test]
fn a_failed_file_exits_1_and_says_why() {
    let d = TestDaemon::start();
    let png = import_fixture("kunden.png").display().to_string();
    let out = touchpoint(&d.socket, &["import", "--tenant", "d001", &png]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert_eq!(
        stdout.lines().next(),
        Some(format!("{png}: failed: not a CSV file: looks like a PNG image").as_str())
    );

    // A failed file among good ones: the good one is imported, the exit code is 1.
    let may = import_fixture(MAY).display().to_string();
    let out = touchpoint(&d.socket, &["import", "--tenant", "d002", &png, &may]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains(&format!("{may}: committed as import #2")),
        "{}",
        text(&out.stdout)
    );

    // An unknown tenant is the daemon saying no.
    let out = touchpoint(&d.socket, &["import", "--tenant", "d999", &may]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert_eq!(
        stdout,
        format!(
            "{may}: failed: not found: unknown tenant \"d999\": no dealer policy registers it\n"
        )
    );

    // A file that does not exist.
    let out = touchpoint(
        &d.socket,
        &["import", "--tenant", "d001", "/nonexistent/kunden.csv"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout)
            .starts_with("/nonexistent/kunden.csv: failed: cannot read /nonexistent/kunden.csv: "),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn tenants_json_carries_the_counts_for_scripts() {
    let d = TestDaemon::start();
    let may = import_fixture(MAY).display().to_string();
    assert_eq!(
        touchpoint(&d.socket, &["import", "--tenant", "d001", &may])
            .status
            .code(),
        Some(0)
    );
    let out = touchpoint(&d.socket, &["tenants", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v = json(&out);
    let list = v.as_array().expect("a JSON array");
    let ids: Vec<&str> = list.iter().map(|t| t["id"].as_str().expect("id")).collect();
    assert_eq!(ids, ["d001", "d002", "d003"]);
    let s = &list[0]["stats"];
    assert_eq!(
        (
            s["customers"].as_u64(),
            s["recipients"].as_u64(),
            s["vehicles"].as_u64(),
            s["consents"].as_u64()
        ),
        (Some(8), Some(7), Some(7), Some(16))
    );
    assert_eq!(list[0]["name"], "Autohaus Müller GmbH");
    assert_eq!(list[0]["last_import"]["rows_rejected"].as_u64(), Some(2));
    assert_eq!(list[0]["last_import"]["rows_warned"].as_u64(), Some(2));
    assert_eq!(list[1]["stats"]["customers"].as_u64(), Some(0));
    assert!(list[1]["last_import"].is_null());

    // The import itself as JSON.
    let out = touchpoint(&d.socket, &["import", "--tenant", "d002", "--json", &may]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v[0]["file"], may.as_str());
    assert_eq!(v[0]["report"]["rows_ok"].as_u64(), Some(7));
    let errors: Vec<String> = v[0]["report"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            format!(
                "{}:{}: {}: {}",
                e["file"].as_str().unwrap_or(""),
                e["line"],
                e["field"].as_str().unwrap_or(""),
                e["reason"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(errors, MAY_ERRORS);
}

/// A workshop export imported again under its name is the truth for the
/// vehicles it names in its days: what it removed is in the report, and a
/// row it has that was rejected removes nothing.
#[test]
fn a_re_export_reports_what_it_removed_and_its_rejected_rows_remove_nothing() {
    let d = TestDaemon::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("werkstatt.csv");
    let label = file.display().to_string();
    let import = |csv: &str| {
        std::fs::write(&file, csv).expect("write export");
        let out = touchpoint(&d.socket, &["import", "--tenant", "d001", &label]);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
        stdout
    };
    // The holders first: their vehicles are not parked.
    let kunden = dir.path().join("kunden.csv");
    std::fs::write(&kunden, "Kundennummer;Nachname\nK1;Berg\nK2;Kurz\n").expect("write");
    let out = touchpoint(
        &d.socket,
        &["import", "--tenant", "d001", &kunden.display().to_string()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let head = "FIN;Kundennummer;Auftragsdatum;Auftragsart\n";
    let v2 = "WVWZZZ1KZ6W000002;K2;01.01.2027;Inspektion\n";
    let v1_late = "WVWZZZ1KZ6W000001;K1;12.01.2027;Inspektion\n";
    let out = import(&format!(
        "{head}{v2}WVWZZZ1KZ6W000001;K1;08.01.2027;Inspektion\n{v1_late}"
    ));
    assert!(!out.contains("re-export"), "{out}");
    let visits = || {
        let out = touchpoint(&d.socket, &["tenants", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        json(&out)[0].clone()
    };
    assert_eq!(visits()["stats"]["visits"].as_u64(), Some(3));

    // The 8 January row now has a day that does not exist: rejected, and
    // the visit it carried stays.
    let out = import(&format!(
        "{head}{v2}WVWZZZ1KZ6W000001;K1;31.02.2027;Inspektion\n{v1_late}"
    ));
    assert!(
        out.contains("\n  rows       3 total, 2 ok, 1 rejected\n")
            && out.contains("\n  re-export  kept 1 visit no longer in the export: a rejected row may carry it (correct the file and import it again)\n")
            && !out.contains("removed"),
        "{out}"
    );
    assert_eq!(visits()["stats"]["visits"].as_u64(), Some(3));

    // A row whose vehicle cannot be read: the file corrects nothing.
    let out = import(&format!(
        "{head}{v2}KAPUTT;K1;08.01.2027;Inspektion\n{v1_late}"
    ));
    assert!(
        out.contains("\n  re-export  no corrections: 1 row was rejected whose vehicle or customer could not be read\n")
            && !out.contains("removed"),
        "{out}"
    );
    assert_eq!(visits()["stats"]["visits"].as_u64(), Some(3));

    // A clean export without the row: removed, and the report says so.
    let out = import(&format!("{head}{v2}{v1_late}"));
    assert!(
        out.contains("\n  re-export  removed 1 visit no longer in the export (vehicles it names, 2027-01-01…2027-01-12)\n"),
        "{out}"
    );
    let tenant = visits();
    assert_eq!(tenant["stats"]["visits"].as_u64(), Some(2));
    assert_eq!(
        tenant["last_import"]["corrections"]["visits"]["removed"].as_u64(),
        Some(1),
        "{tenant}"
    );
}

#[test]
fn status_shows_who_you_are() {
    let d = TestDaemon::start();
    let out = touchpoint(&d.socket, &["status"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let you = format!(
        "you          {} (uid {}), admin, scope: all tenants",
        my_name(),
        me()
    );
    assert!(
        stdout.lines().any(|l| l == you),
        "want {you:?} in:\n{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l == "policy       valid"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("socket       {}", d.socket.display())),
        "{stdout}"
    );

    let out = touchpoint(&d.socket, &["status", "--json"]);
    let v = json(&out);
    assert_eq!(v["identity"]["uid"].as_u64(), Some(u64::from(me())));
    assert_eq!(v["identity"]["role"], "admin");
    assert_eq!(v["tenants"].as_u64(), Some(3));
}

#[test]
fn an_unreachable_socket_exits_3_saying_it_cannot_connect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("nobody.sock");
    for args in [
        &["status"][..],
        &["tenants", "--json"][..],
        &["import", "--tenant", "d001", "x.csv"][..],
        // An action with --json: no result list for an unreachable daemon.
        &["hold", "--tenant", "d001", "1", "--json"][..],
        &["approve", "1", "--json"][..],
    ] {
        let out = touchpoint(&socket, args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(stderr.contains("cannot connect"), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&socket.display().to_string()),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    }

    // A socket file nobody listens on any more (a daemon that crashed).
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
    let out = touchpoint(&stale, &["status"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("cannot connect"),
        "{}",
        text(&out.stderr)
    );

    // A usage error is 2, not 3: told apart by a script that retries.
    let out = touchpoint(&socket, &["queue", "--limit", "many"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = touchpoint(&socket, &["--readonly", "cancel", "--tenant", "d001", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    // `--help` lists every code.
    let out = touchpoint(&socket, &["--help"]);
    let help = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{help}");
    for line in [
        "Exit codes:",
        "  0  success",
        "  1  the daemon refused the request",
        "  2  usage:",
        "  3  the daemon is unreachable:",
    ] {
        assert!(help.contains(line), "{line:?} not in:\n{help}");
    }
}

#[test]
fn readonly_refuses_changes_and_undo_reports_daemon_errors() {
    let d = TestDaemon::start();
    let may = import_fixture(MAY).display().to_string();
    let out = touchpoint(
        &d.socket,
        &["--readonly", "import", "--tenant", "d001", &may],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--readonly"),
        "{}",
        text(&out.stderr)
    );
    let out = touchpoint(&d.socket, &["tenant", "d001", "--json"]);
    assert_eq!(
        json(&out)["summary"]["stats"]["customers"].as_u64(),
        Some(0),
        "nothing was imported"
    );

    assert_eq!(
        touchpoint(&d.socket, &["import", "--tenant", "d001", &may])
            .status
            .code(),
        Some(0)
    );
    let out = touchpoint(&d.socket, &["merges", "--tenant", "d001", "--json"]);
    let merges = json(&out);
    let id = merges[0]["merge_id"].as_u64().expect("a merge");
    let out = touchpoint(
        &d.socket,
        &["undo-merge", "--tenant", "d001", &id.to_string()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("merge #{id} undone: customer K-10006 is separate from K-10001 again\n")
    );
    let out = touchpoint(
        &d.socket,
        &["undo-merge", "--tenant", "d001", &id.to_string()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!("touchpoint: invalid: merge #{id} was already undone\n")
    );
}

/// `touchpoint policy check DIR`: no daemon, no socket.
fn policy_check(args: &[&str]) -> std::process::Output {
    std::process::Command::new(touchpoint_tests::bin("touchpoint"))
        .args(["policy", "check"])
        .args(args)
        .env_remove("TOUCHPOINT_SOCKET")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run touchpoint")
}

#[test]
fn policy_check_says_ok_for_every_valid_directory_and_the_shipped_one() {
    for case in touchpoint_tests::policy_cases("valid") {
        let dir = case.display().to_string();
        let out = policy_check(&[&dir]);
        assert_eq!(out.status.code(), Some(0), "{dir}: {}", text(&out.stdout));
        assert!(
            text(&out.stdout).starts_with("ok: "),
            "{}",
            text(&out.stdout)
        );
    }
    let base = touchpoint_tests::repo_root().join("tests/policies/valid/base");
    let out = policy_check(&[&base.display().to_string()]);
    assert_eq!(text(&out.stdout), "ok: 7 files, 2 dealers, 4 services\n");

    let shipped = touchpoint_tests::repo_root().join("policies");
    let out = policy_check(&[&shipped.display().to_string(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let v = json(&out);
    assert_eq!(v["ok"], true);
    assert_eq!(v["dealers"], 24);
    assert_eq!(v["services"], 6);
    assert_eq!(v["errors"].as_array().map(Vec::len), Some(0));
}

#[test]
fn policy_check_prints_exactly_the_expected_errors_of_every_invalid_case_and_exits_1() {
    for case in touchpoint_tests::policy_cases("invalid") {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = touchpoint_tests::materialize_policy_case(&case, tmp.path());
        let shown = dir.display().to_string();
        let out = policy_check(&[&shown]);
        assert_eq!(out.status.code(), Some(1), "{}", case.display());
        let expected: String = std::fs::read_to_string(case.join("expected.txt"))
            .expect("expected.txt")
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| format!("{shown}/{l}\n"))
            .collect();
        assert_eq!(text(&out.stdout), expected, "{}", case.display());
        assert!(
            text(&out.stderr).contains("a daemon would keep its previous policy"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn policy_check_json_lists_located_errors_and_a_missing_dir_exits_2() {
    let case = touchpoint_tests::repo_root().join("tests/policies/invalid/several_files");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = touchpoint_tests::materialize_policy_case(&case, tmp.path());
    let out = policy_check(&[&dir.display().to_string(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["ok"], false);
    let errors = v["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 3, "{v:#}");
    assert_eq!(
        errors[1]["file"],
        format!("{}/dealers/d001.toml", dir.display())
    );
    assert_eq!(errors[1]["line"], 8);
    assert_eq!(errors[1]["key"], "channels.daily_capacity");
    assert_eq!(errors[1]["message"], "must be between 1 and 1000000, got 0");

    let gone = tmp.path().join("nowhere");
    let out = policy_check(&[&gone.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!("touchpoint: {}: no such directory\n", gone.display())
    );
    assert!(out.stdout.is_empty());
    // Without a DIR it is a usage error too.
    assert_eq!(policy_check(&[]).status.code(), Some(2));
}

/// `touchpoint message --content` prints the content whole after the
/// message (the console's detail used to cut it at twelve lines and the
/// CLI showed none); `--html` gives the HTML part, `--json` both as one
/// object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_content_is_printed_whole() {
    use touchpoint_common::protocol::QueueFilter;
    use touchpoint_tests::{tid, Options};

    use crate::today::{brand_due_at_once, dealer_file, plan_customers, TENANT};

    let files = tempfile::tempdir().expect("tempdir");
    let d = TestDaemon::start_with(Options {
        dealer_files: vec![dealer_file(files.path())],
        brand: Some(brand_due_at_once()),
        ..Options::default()
    });
    let mut c = d.client().await;
    plan_customers(&mut c, files.path()).await;
    let page = c.queue(&QueueFilter::default(), 0, 1).await.expect("queue");
    let id = page.rows[0].id;
    let content = c.content(&tid(TENANT), id).await.expect("content");
    assert!(content.text.lines().count() > 12, "{}", content.text);
    let id = id.to_string();
    let args = ["message", "--tenant", TENANT, id.as_str(), "--content"];

    let out = touchpoint(&d.socket, &args);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with(&format!("message      {id}\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("subject      {}\n", content.subject)),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("\n\n{}", content.text.trim_end())),
        "{stdout}"
    );
    assert!(!stdout.contains("more lines"), "{stdout}");

    let out = touchpoint(&d.socket, &[&args[..], &["--html"]].concat());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains(content.html.trim_end()), "{stdout}");

    let out = touchpoint(&d.socket, &[&args[..], &["--json"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v = json(&out);
    assert_eq!(v["content"]["text"], content.text.as_str());
    assert_eq!(v["message"]["recipient"], page.rows[0].recipient.as_str());

    // --html without --content is a usage error.
    let out = touchpoint(&d.socket, &["message", "--tenant", TENANT, &id, "--html"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// `touchpoint send-now` makes a message planned for a later day due now,
/// through the socket, audited; a message due already is refused (exit 1)
/// with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_now_makes_a_later_message_due_today_and_is_audited() {
    use touchpoint::client::PlanArgs;
    use touchpoint_common::protocol::{PauseScope, QueueFilter};
    use touchpoint_common::Date;
    use touchpoint_tests::{tid, Options};

    use crate::today::{brand_due_at_once, customers_csv, dealer_file, TENANT};

    let files = tempfile::tempdir().expect("tempdir");
    let d = TestDaemon::start_with(Options {
        dealer_files: vec![dealer_file(files.path())],
        brand: Some(brand_due_at_once()),
        dispatch: Some("[dispatch]\ntick_ms = 50\nbatch_at = \"23:59\"\n".into()),
        ..Options::default()
    });
    let mut c = d.client().await;
    // Paused: messages are rendered and queued but nothing goes out while
    // the test looks, so the second send-now meets a message still due.
    c.pause(PauseScope::default()).await.expect("pause");
    let r = c
        .upload(&tid(TENANT), &customers_csv(files.path(), true))
        .await
        .expect("upload");
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    // Planned as if it were five days from now: the messages go then.
    let later = Date::today().add_days(5);
    let plan = c
        .plan(PlanArgs {
            tenant: Some(tid(TENANT)),
            day: Some(later),
            dry_run: false,
            policies: None,
            show: 0,
        })
        .await
        .expect("plan");
    assert!(plan.reports[0].planned_count > 0, "{plan:#?}");
    let page = c.queue(&QueueFilter::default(), 0, 1).await.expect("queue");
    let row = &page.rows[0];
    assert!(row.send_on >= later, "{row:?}");
    let id = row.id.to_string();

    let out = touchpoint(&d.socket, &["send-now", "--tenant", TENANT, &id]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("made due now"), "{stdout}");
    let m = c.message(&tid(TENANT), row.id).await.expect("message");
    assert_eq!(m.send_on, Date::today(), "{m:#?}");
    assert!(
        m.why.iter().any(|w| w.text.starts_with("sent now by ")),
        "{:#?}",
        m.why
    );
    let audit = c.audit(None, 50, "").await.expect("audit");
    assert!(audit.iter().any(|e| e.action == "send-now"), "{audit:#?}");

    // Again: it is due already.
    let out = touchpoint(&d.socket, &["send-now", "--tenant", TENANT, &id]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("due already"), "{stdout}");
}

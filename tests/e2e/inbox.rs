//! The drop folder `<state>/inbox/<tenant>/` (M2): a file that lands there is
//! imported and filed into `done/` or `failed/` with a report beside it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use touchpoint_tests::{eventually, tid, TestDaemon};

use crate::common::{import_fixture, MAY, MAY_ERRORS, MAY_WARNINGS};

pub(crate) const FILED: Duration = Duration::from_secs(20);

/// Drops a file the way a careful uploader does: write `<name>.part`, rename.
pub(crate) fn drop_file(inbox: &Path, name: &str, bytes: &[u8]) {
    let part = inbox.join(format!("{name}.part"));
    std::fs::write(&part, bytes).expect("write .part");
    std::fs::rename(&part, inbox.join(name)).expect("rename into place");
}

/// Files in `dir` whose name ends with `-<name>` (the inbox prefixes a timestamp).
pub(crate) fn filed(dir: &Path, name: &str) -> Vec<PathBuf> {
    let suffix = format!("-{name}");
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    out.retain(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(&suffix))
    });
    out.sort();
    out
}

/// Waits until the dropped `name` has left `inbox` and returns the text of
/// the report filed beside it in `inbox/<sub>/`. The report is written
/// before the file is moved, so both are there once the file is gone.
///
/// Polls with `stat` only, so that waiting generates no watcher events
/// (`listing_the_inbox_while_files_arrive_does_not_stall_imports` checks
/// that such events do not hold up the inbox).
pub(crate) fn wait_filed(inbox: &Path, sub: &str, name: &str) -> String {
    let dropped = inbox.join(name);
    assert!(
        eventually(FILED, || !dropped.exists()),
        "{name} was not picked up from {} within {FILED:?}",
        inbox.display()
    );
    let dir = inbox.join(sub);
    let files = filed(&dir, name);
    let newest = files
        .last()
        .unwrap_or_else(|| panic!("{name} is not in {}: {:?}", dir.display(), ls(&dir)));
    let report = PathBuf::from(format!("{}.report.txt", newest.display()));
    std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("report {}: {e}", report.display()))
}

pub(crate) fn ls(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn a_dropped_export_is_imported_and_filed_with_its_report() {
    let d = TestDaemon::start();
    let inbox = d.inbox("d001");
    // An upload still in progress: never touched.
    std::fs::write(
        inbox.join("kunden_2024-06.csv.part"),
        b"Kundennummer;Nachname\r\nK-1;Halb",
    )
    .expect("write");
    drop_file(
        &inbox,
        MAY,
        &std::fs::read(import_fixture(MAY)).expect("fixture"),
    );

    let report = wait_filed(&inbox, "done", MAY);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(
        lines[0],
        format!("import #1 of {MAY} for tenant d001: committed")
    );
    for want in [
        "format: windows-1252, ';', 22 columns",
        "rows: 11 total, 7 ok, 2 with warnings, 2 rejected",
        "customers: 8 inserted, 0 updated, 1 unchanged",
        "vehicles: 7 inserted, 0 updated, 0 unchanged",
        "consents: 16 inserted, 0 updated, 2 unchanged",
        "visits: 0 inserted, 0 updated, 0 unchanged",
        "duplicate merges: 1",
        "columns not imported: Bemerkung",
    ] {
        assert!(lines.contains(&want), "{want:?} missing in:\n{report}");
    }
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with(&format!("{MAY}:")))
        .collect();
    assert_eq!(errors, MAY_ERRORS, "row errors in:\n{report}");
    let warnings: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("warning: "))
        .collect();
    assert_eq!(warnings, MAY_WARNINGS, "warnings in:\n{report}");

    assert!(!inbox.join(MAY).exists(), "moved out of the inbox");
    assert_eq!(
        ls(&inbox),
        ["done", "kunden_2024-06.csv.part"],
        "the .part file is left alone"
    );
    assert!(ls(&inbox.join("failed")).is_empty());

    let mut c = d.client().await;
    let s = c.tenant(&tid("d001")).await.expect("d001").summary.stats;
    assert_eq!(
        (
            s.customers,
            s.vehicles,
            s.consents,
            s.merges_active,
            s.imports
        ),
        (8, 7, 16, 1, 1)
    );
    assert_eq!(
        c.tenant(&tid("d002"))
            .await
            .expect("d002")
            .summary
            .stats
            .customers,
        0
    );

    // The same file dropped again is recognised.
    drop_file(
        &inbox,
        MAY,
        &std::fs::read(import_fixture(MAY)).expect("fixture"),
    );
    let second = wait_filed(&inbox, "done", MAY);
    assert_eq!(filed(&inbox.join("done"), MAY).len(), 2);
    assert!(
        second.starts_with(&format!(
            "import #2 of {MAY} for tenant d001: already imported as #1; nothing changed\n"
        )),
        "{second}"
    );
    assert_eq!(
        c.tenant(&tid("d001"))
            .await
            .expect("d001")
            .summary
            .stats
            .customers,
        8
    );
    // Both drops are in the audit log, by the inbox, the second as the
    // same file as the first; so are the identity pass's merges.
    let audit = c.audit(Some(&tid("d001")), 10, "").await.expect("audit");
    let lines: Vec<(&str, &str, &str)> = audit
        .iter()
        .map(|e| (e.user.as_str(), e.action.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert_eq!((lines[0].0, lines[0].1), ("inbox", "import"), "{lines:#?}");
    assert!(
        lines[0]
            .2
            .starts_with(&format!("import #2 {MAY}: same file as #1 (imported "))
            && lines[0].2.ends_with("); nothing applied"),
        "{lines:#?}"
    );
    assert_eq!(
        lines[1],
        (
            "inbox",
            "import",
            format!("import #1 {MAY}: 7 rows ok, 2 with warnings, 2 rejected").as_str()
        )
    );
    assert_eq!(
        (lines[2].0, lines[2].1),
        ("touchpointd", "merge"),
        "{lines:#?}"
    );
    assert!(audit.iter().all(|e| e.tenant == Some(tid("d001"))));
}

#[tokio::test]
async fn a_dropped_file_that_is_not_csv_is_filed_as_failed_with_its_report() {
    let d = TestDaemon::start();
    let inbox = d.inbox("d002");
    drop_file(
        &inbox,
        "kunden.png",
        &std::fs::read(import_fixture("kunden.png")).expect("fixture"),
    );
    let report = wait_filed(&inbox, "failed", "kunden.png");
    assert!(
        report.starts_with("import #1 of kunden.png for tenant d002: failed: not a CSV file: looks like a PNG image\n"),
        "{report}"
    );
    assert!(ls(&inbox.join("done")).is_empty());
    assert_eq!(ls(&inbox), ["failed"]);
    let mut c = d.client().await;
    let detail = c.tenant(&tid("d002")).await.expect("d002");
    assert_eq!(
        (detail.summary.stats.customers, detail.summary.stats.imports),
        (0, 1)
    );
    assert_eq!(detail.imports[0].file_name, "kunden.png");
}

#[tokio::test]
async fn a_folder_that_is_no_registered_tenant_gets_a_failed_report() {
    let d = TestDaemon::start();
    let inbox = d.state_dir.join("inbox/d999");
    std::fs::create_dir_all(&inbox).expect("mkdir");
    drop_file(
        &inbox,
        MAY,
        &std::fs::read(import_fixture(MAY)).expect("fixture"),
    );
    let report = wait_filed(&inbox, "failed", MAY);
    assert_eq!(
        report,
        format!("{MAY}: not imported: unknown tenant \"d999\": no dealer policy registers it\n")
    );
    assert!(!d.state_dir.join("tenants/d999").exists());
}

/// A steady stream of watcher events (here: a monitoring job listing the
/// inbox every 25 ms, which inotify reports as open/close events on the
/// watched folders) must not keep dropped files from being imported.
#[tokio::test]
async fn listing_the_inbox_while_files_arrive_does_not_stall_imports() {
    let d = TestDaemon::start();
    let inbox = d.inbox("d001");
    std::fs::create_dir_all(inbox.join("done")).expect("mkdir done");
    drop_file(
        &inbox,
        MAY,
        &std::fs::read(import_fixture(MAY)).expect("fixture"),
    );
    let done = inbox.join("done");
    let imported = eventually(Duration::from_secs(10), || {
        // What `watch ls inbox/d001/done` does.
        !filed(&done, MAY).is_empty()
    });
    assert!(
        imported,
        "not imported while the inbox was being listed: {:?}",
        ls(&inbox)
    );
}

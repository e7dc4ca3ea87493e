//! The inbox as a trust boundary: whoever may drop files into
//! `<state>/inbox/<tenant>/` must not make the daemon (root) read, move or
//! create anything outside it, nor put what a file says into a report.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use touchpoint_tests::{daemon_files, eventually, tid, DaemonProcess, TestDaemon};

use crate::common::{import_fixture, MAY};
use crate::inbox::{drop_file, filed, ls, wait_filed, FILED};

/// A root-only file outside the state directory.
fn secret(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

const SHADOW: &str = "root:$6$geheimerhash:19000:0:99999:7:::\nbin:*:19000:0:99999:7:::\n";
/// An export a link could smuggle in: following it would import S-1.
const SMUGGLED: &str = "Kundennr;Nachname\nS-1;Geschmuggelt\n";

async fn imports_of(d: &TestDaemon, tenant: &str) -> (u64, u64) {
    let mut c = d.client().await;
    let s = c.tenant(&tid(tenant)).await.expect("tenant").summary.stats;
    (s.customers, s.imports)
}

#[tokio::test]
async fn a_symbolic_link_in_a_tenant_folder_is_filed_as_failed_unfollowed_and_unread() {
    let d = TestDaemon::start();
    let outside = d.dir.path().join("outside");
    let smuggled = secret(&outside, "geheim.csv", SMUGGLED);
    let shadow = secret(&outside, "shadow", SHADOW);
    let inbox = d.inbox("d001");
    std::os::unix::fs::symlink(&smuggled, inbox.join("kunden.csv")).expect("symlink");
    std::os::unix::fs::symlink(&shadow, inbox.join("shadow.csv")).expect("symlink");

    for name in ["kunden.csv", "shadow.csv"] {
        let report = wait_filed(&inbox, "failed", name);
        assert_eq!(
            report,
            format!("{name}: not imported: it is a symbolic link; the inbox takes only regular files and follows no links\n")
        );
        // The link itself was moved, not what it points to.
        let moved = filed(&inbox.join("failed"), name);
        assert!(
            std::fs::symlink_metadata(&moved[0])
                .expect("moved")
                .file_type()
                .is_symlink(),
            "{moved:?}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&smuggled).expect("intact"),
        SMUGGLED
    );
    assert_eq!(std::fs::read_to_string(&shadow).expect("intact"), SHADOW);
    assert_eq!(ls(&outside), ["geheim.csv", "shadow"]);
    assert!(ls(&inbox.join("done")).is_empty());
    assert_eq!(
        imports_of(&d, "d001").await,
        (0, 0),
        "nothing read, nothing in the history"
    );
}

#[tokio::test]
async fn a_hard_link_to_a_file_outside_is_refused() {
    let d = TestDaemon::start();
    let outside = d.dir.path().join("outside");
    let smuggled = secret(&outside, "geheim.csv", SMUGGLED);
    let inbox = d.inbox("d001");
    std::fs::hard_link(&smuggled, inbox.join("kunden.csv")).expect("hard link");

    let report = wait_filed(&inbox, "failed", "kunden.csv");
    assert_eq!(
        report,
        "kunden.csv: not imported: it has 2 hard links; the inbox takes only files with one (copy the file into the inbox instead of linking it)\n"
    );
    assert_eq!(
        std::fs::read_to_string(&smuggled).expect("intact"),
        SMUGGLED
    );
    assert_eq!(imports_of(&d, "d001").await, (0, 0));
}

#[tokio::test]
async fn a_fifo_and_a_socket_are_refused_without_blocking_the_inbox() {
    let d = TestDaemon::start();
    let inbox = d.inbox("d001");
    nix::unistd::mkfifo(
        &inbox.join("kunden.csv"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    let _socket = std::os::unix::net::UnixListener::bind(inbox.join("socket.csv")).expect("bind");
    // A good export behind them still goes through.
    drop_file(
        &inbox,
        MAY,
        &std::fs::read(import_fixture(MAY)).expect("fixture"),
    );

    assert_eq!(
        wait_filed(&inbox, "failed", "kunden.csv"),
        "kunden.csv: not imported: it is a named pipe (FIFO); the inbox takes only regular files\n"
    );
    assert_eq!(
        wait_filed(&inbox, "failed", "socket.csv"),
        "socket.csv: not imported: it is a socket; the inbox takes only regular files\n"
    );
    let report = wait_filed(&inbox, "done", MAY);
    assert!(
        report.starts_with(&format!("import #1 of {MAY} for tenant d001: committed\n")),
        "{report}"
    );
    assert_eq!(imports_of(&d, "d001").await, (8, 1));
}

#[tokio::test]
async fn a_tenant_folder_that_is_a_symbolic_link_is_not_followed() {
    let d = TestDaemon::start();
    let outside = d.dir.path().join("outside");
    secret(&outside, "kunden.csv", SMUGGLED);
    let tenant = d.inbox("d002");
    std::fs::remove_dir(&tenant).expect("the daemon made an empty folder");
    std::os::unix::fs::symlink(&outside, &tenant).expect("symlink");

    let report = d.state_dir.join("inbox/d002.report.txt");
    assert!(
        eventually(FILED, || report.exists()),
        "no report on inbox/d002 within {FILED:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&report).expect("report"),
        "inbox/d002: not used: it is a symbolic link, not a folder; the daemon follows no links in the inbox. Make it a folder.\n"
    );
    assert_eq!(
        ls(&outside),
        ["kunden.csv"],
        "nothing moved, no done/ or failed/ made there"
    );
    assert_eq!(imports_of(&d, "d002").await, (0, 0));
}

#[tokio::test]
async fn a_done_folder_that_is_a_symbolic_link_is_not_followed() {
    let d = TestDaemon::start();
    let outside = d.dir.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let inbox = d.inbox("d001");
    std::os::unix::fs::symlink(&outside, inbox.join("done")).expect("symlink");
    drop_file(
        &inbox,
        MAY,
        &std::fs::read(import_fixture(MAY)).expect("fixture"),
    );

    let report = inbox.join(format!("{MAY}.report.txt"));
    assert!(
        eventually(FILED, || report.exists()),
        "no report beside {MAY} within {FILED:?}: {:?} {:?} {:?}",
        ls(&inbox),
        ls(&outside),
        ls(&inbox.join("failed"))
    );
    assert_eq!(
        std::fs::read_to_string(&report).expect("report"),
        format!("{MAY}: not imported: done is not a folder (a symbolic link?); the inbox files nothing through links\n")
    );
    assert!(inbox.join(MAY).exists(), "left where it was");
    assert!(ls(&outside).is_empty(), "nothing moved through the link");
    assert_eq!(
        imports_of(&d, "d001").await,
        (0, 0),
        "not imported while it cannot be filed"
    );
}

#[test]
fn an_inbox_that_is_a_symbolic_link_is_not_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = daemon_files(
        dir.path(),
        &[
            ("d001", "Autohaus Müller GmbH"),
            ("d002", "Autohaus Weiß KG"),
        ],
    );
    let outside = dir.path().join("outside");
    secret(&outside.join("d001"), "kunden.csv", SMUGGLED);
    std::fs::create_dir_all(&files.state_dir).expect("state dir");
    std::os::unix::fs::symlink(&outside, files.state_dir.join("inbox")).expect("symlink");

    let mut daemon = DaemonProcess::spawn(&files.config_file, &files.socket, &files.log);
    let report = files.state_dir.join("inbox.report.txt");
    assert!(
        eventually(FILED, || report.exists()),
        "no report on the inbox within {FILED:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&report).expect("report"),
        format!(
            "{}: not used: it is not a folder (a symbolic link?); the daemon follows no links in the inbox. Drop-folder import is off until it is a folder.\n",
            files.state_dir.join("inbox").display()
        )
    );
    assert_eq!(
        ls(&outside),
        ["d001"],
        "no tenant folders made through the link"
    );
    assert_eq!(ls(&outside.join("d001")), ["kunden.csv"], "nothing moved");
    assert!(
        daemon.child.try_wait().expect("wait").is_none(),
        "the daemon keeps running"
    );
    let log = std::fs::read_to_string(&files.log).expect("log");
    assert!(log.contains("the inbox is not a folder"), "{log}");
}

/// Reports say what is wrong, not what the file says, and are as readable
/// as the state directory, not as the umask makes them.
#[tokio::test]
async fn reports_quote_no_content_of_a_file_that_is_not_csv_and_have_the_state_dirs_permissions() {
    let d = TestDaemon::start();
    std::fs::set_permissions(&d.state_dir, std::fs::Permissions::from_mode(0o750))
        .expect("chmod state");
    let inbox = d.inbox("d001");
    drop_file(&inbox, "shadow.csv", SHADOW.as_bytes());

    let report = wait_filed(&inbox, "failed", "shadow.csv");
    assert!(
        report.starts_with("import #1 of shadow.csv for tenant d001: failed: not a CSV file: no delimiter (';', ',', tab or '|') and no known column name in the first line\n"),
        "{report}"
    );
    assert!(
        !report.contains("geheim") && !report.contains("root"),
        "{report}"
    );
    let mut c = d.client().await;
    let history = format!("{:?}", c.imports(&tid("d001"), 10).await.expect("history"));
    assert!(
        !history.contains("geheim") && !history.contains("root:"),
        "{history}"
    );

    let failed = inbox.join("failed");
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").mode() & 0o777;
    assert_eq!(mode(&failed), 0o750, "failed/ as the state dir");
    let filed = filed(&failed, "shadow.csv");
    let report_path = PathBuf::from(format!("{}.report.txt", filed[0].display()));
    assert_eq!(
        mode(&report_path),
        0o640,
        "the report as the state dir, no execute bits"
    );
}

/// A file name is chosen by whoever drops the file: a line break in it
/// must not forge a line of the report.
#[tokio::test]
async fn a_file_name_cannot_forge_lines_of_the_report() {
    let d = TestDaemon::start();
    let inbox = d.inbox("d001");
    let name = "x\nrows: 99 total, 99 ok, 0 rejected\n.csv";
    drop_file(&inbox, name, SMUGGLED.as_bytes());
    let report = wait_filed(&inbox, "done", name);
    let rows: Vec<&str> = report.lines().filter(|l| l.starts_with("rows:")).collect();
    assert_eq!(rows, ["rows: 1 total, 1 ok, 0 rejected"], "{report}");
    assert!(
        report.starts_with("import #1 of x\u{fffd}rows: 99 total, 99 ok, 0 rejected\u{fffd}.csv for tenant d001: committed\n"),
        "{report}"
    );
}

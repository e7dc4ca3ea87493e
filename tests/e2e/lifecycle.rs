//! The real `touchpointd` binary (M12): start, status, SIGTERM, SIGHUP,
//! configuration checks, and crash atomicity of imports under SIGKILL.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use touchpoint::client::Client;
use touchpoint_common::domain::ImportStatus;
use touchpoint_common::protocol::DaemonStatus;
use touchpoint_tests::{
    bin, daemon_files, daemon_files_with, output_within, tid, DaemonFiles, DaemonProcess,
};

const DEALERS: &[(&str, &str)] = &[
    ("d001", "Autohaus Müller GmbH"),
    ("d002", "Autohaus Weiß KG"),
];
const EXIT: Duration = Duration::from_secs(20);

fn start(f: &DaemonFiles) -> DaemonProcess {
    let p = DaemonProcess::spawn(&f.config_file, &f.socket, &f.log);
    p.wait_for_signal_handlers();
    p
}

fn log_of(f: &DaemonFiles) -> String {
    std::fs::read_to_string(&f.log).unwrap_or_default()
}

async fn status(socket: &Path) -> DaemonStatus {
    Client::connect(socket)
        .await
        .expect("connect")
        .status()
        .await
        .expect("status")
}

/// Polls the daemon's status until `cond` holds; the last status otherwise.
async fn status_until(socket: &Path, cond: impl Fn(&DaemonStatus) -> bool) -> DaemonStatus {
    let mut last = status(socket).await;
    for _ in 0..400 {
        if cond(&last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        last = status(socket).await;
    }
    last
}

#[tokio::test]
async fn the_binary_serves_status_and_stops_on_sigterm_removing_its_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = daemon_files(dir.path(), DEALERS);
    let mut p = start(&f);
    let mut c = Client::connect(&f.socket).await.expect("connect");
    let s = c.status().await.expect("status");
    assert_eq!(s.tenants, 2);
    assert_eq!(s.state_dir, f.state_dir.display().to_string());
    assert_eq!(s.socket, f.socket.display().to_string());
    let (templates, files): (Vec<&String>, Vec<&String>) = s
        .policy
        .files
        .iter()
        .partition(|f| f.starts_with("templates/"));
    assert_eq!(
        files,
        ["brand.toml", "dealers/d001.toml", "dealers/d002.toml"]
    );
    assert!(
        templates.contains(&&"templates/service_due.toml".to_string()),
        "{templates:?}"
    );
    assert!(s.policy.errors.is_empty(), "{:?}", s.policy.errors);
    assert!(f.state_dir.join("inbox/d001").is_dir() && f.state_dir.join("inbox/d002").is_dir());

    // A connected, idle console does not hold up the stop.
    p.signal(Signal::SIGTERM);
    let exit = p
        .wait_exit(EXIT)
        .unwrap_or_else(|| panic!("no exit within {EXIT:?}; log:\n{}", log_of(&f)));
    assert_eq!(exit.code(), Some(0), "log:\n{}", log_of(&f));
    assert!(!f.socket.exists(), "the socket file is removed on exit");
    assert!(
        c.ping().await.is_err(),
        "the console's connection was closed"
    );
}

#[test]
fn check_config_reports_a_bad_value_with_file_line_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("touchpointd.toml");
    std::fs::write(&bad, "[stores]\nmax_open_tenants = 0\n").expect("write");
    let out = output_within(
        Command::new(bin("touchpointd"))
            .arg("--check-config")
            .arg("--config")
            .arg(&bad),
        EXIT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let want = format!(
        "{}:2: stores.max_open_tenants: must be at least 1, got 0",
        bad.display()
    );
    assert!(
        stderr.lines().any(|l| l.ends_with(&want)),
        "want {want:?} in:\n{stderr}"
    );

    // A misspelt key is located too.
    std::fs::write(
        &bad,
        "state_dir = \"/tmp/x\"\n\n[control]\nmax_conections = 3\n",
    )
    .expect("write");
    let out = output_within(
        Command::new(bin("touchpointd"))
            .arg("--check-config")
            .arg("--config")
            .arg(&bad),
        EXIT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let at = format!("{}:4", bad.display());
    assert!(
        stderr.contains(&at) && stderr.contains("max_conections"),
        "want {at:?} and the key in:\n{stderr}"
    );

    // A good configuration with its policies passes.
    let f = daemon_files(dir.path(), DEALERS);
    let out = output_within(
        Command::new(bin("touchpointd"))
            .arg("--check-config")
            .arg("--config")
            .arg(&f.config_file),
        EXIT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 dealers"), "{stdout}");
    assert!(!f.state_dir.exists(), "a check creates no state");
}

#[test]
fn check_config_reports_an_invalid_dealer_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = daemon_files(dir.path(), DEALERS);
    let d002 = f.policy_dir.join("dealers/d002.toml");
    std::fs::write(
        &d002,
        "[tenant]\nid = \"d002\"\nname = \"Autohaus Weiß KG\"\nbudget = 12\n",
    )
    .expect("write");
    let out = output_within(
        Command::new(bin("touchpointd"))
            .arg("--check-config")
            .arg("--config")
            .arg(&f.config_file),
        EXIT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let at = format!("{}:4", d002.display());
    assert!(
        stderr.contains(&at) && stderr.contains("budget"),
        "want {at:?} and the key in:\n{stderr}"
    );
}

#[test]
fn an_invalid_dealer_policy_stops_the_start_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = daemon_files(dir.path(), DEALERS);
    let d002 = f.policy_dir.join("dealers/d002.toml");
    std::fs::write(
        &d002,
        "[tenant]\nid = \"d002\"\nname = \"Autohaus Weiß KG\"\nbudget = 12\n",
    )
    .expect("write");
    let out = output_within(
        Command::new(bin("touchpointd"))
            .arg("--config")
            .arg(&f.config_file),
        EXIT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let at = format!("{}:4", d002.display());
    assert!(
        stderr.contains(&at) && stderr.contains("budget"),
        "want {at:?} and the key in:\n{stderr}"
    );
}

#[test]
fn a_failed_start_leaves_no_socket_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = daemon_files(dir.path(), DEALERS);
    std::fs::write(
        f.policy_dir.join("dealers/d002.toml"),
        "[tenant]\nid = \"d002\"\nbudget = 12\n",
    )
    .expect("write");
    let out = output_within(
        Command::new(bin("touchpointd"))
            .arg("--config")
            .arg(&f.config_file),
        EXIT,
    );
    assert!(!out.status.success());
    assert!(!f.socket.exists(), "{} was left behind", f.socket.display());
}

/// Signal handlers are in place before the socket appears: a SIGHUP sent as
/// soon as the socket exists (while the stores still open) must not meet
/// the default action, which would kill the daemon.
#[test]
fn a_sighup_as_soon_as_the_socket_appears_does_not_kill_the_daemon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = daemon_files(dir.path(), DEALERS);
    let log = std::fs::File::create(&f.log).expect("log");
    let mut child = Command::new(bin("touchpointd"))
        .arg("--config")
        .arg(&f.config_file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn touchpointd");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !f.socket.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
    }
    assert!(f.socket.exists(), "no socket; log:\n{}", log_of(&f));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        Signal::SIGHUP,
    )
    .expect("SIGHUP");
    std::thread::sleep(Duration::from_millis(300));
    let status = child.try_wait().expect("try_wait");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        status,
        None,
        "the daemon died of a SIGHUP sent once its socket existed; log:\n{}",
        log_of(&f)
    );
}

#[tokio::test]
async fn sighup_with_a_broken_policy_keeps_the_old_one_and_reports_the_error_then_a_fix_applies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = daemon_files(dir.path(), DEALERS);
    let mut p = start(&f);
    let d002 = f.policy_dir.join("dealers/d002.toml");
    std::fs::write(
        &d002,
        "[tenant]\nid = \"d002\"\nname = \"Autohaus Weiß KG\"\nbudget = 12\n",
    )
    .expect("write");
    p.signal(Signal::SIGHUP);
    let s = status_until(&f.socket, |s| !s.policy.errors.is_empty()).await;
    assert_eq!(s.policy.errors.len(), 1, "{:?}", s.policy.errors);
    let e = &s.policy.errors[0];
    assert!(
        e.starts_with(&format!("{}:4: ", d002.display())) && e.contains("budget"),
        "{e}"
    );
    assert!(
        p.child.try_wait().expect("try_wait").is_none(),
        "the daemon keeps running"
    );
    let mut c = Client::connect(&f.socket).await.expect("connect");
    let names: Vec<String> = c
        .tenants()
        .await
        .expect("tenants")
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(
        names,
        ["Autohaus Müller GmbH", "Autohaus Weiß KG"],
        "the previous policies stay in force"
    );

    // Fixed, plus a new dealer.
    std::fs::write(
        &d002,
        "[tenant]\nid = \"d002\"\nname = \"Autohaus Weiß & Söhne KG\"\n",
    )
    .expect("write");
    std::fs::write(
        f.policy_dir.join("dealers/d003.toml"),
        "[tenant]\nid = \"d003\"\nname = \"Schröder Automobile\"\n",
    )
    .expect("write");
    p.signal(Signal::SIGHUP);
    let s = status_until(&f.socket, |s| s.policy.errors.is_empty() && s.tenants == 3).await;
    assert!(s.policy.errors.is_empty(), "{:?}", s.policy.errors);
    assert_eq!(s.tenants, 3);
    assert!(
        s.policy.files.contains(&"dealers/d003.toml".to_string()),
        "{:?}",
        s.policy.files
    );
    // A new dealer counts only once it is registered and has its inbox.
    let listed = c.tenants().await;
    let names: Vec<(String, String)> = listed
        .unwrap_or_else(|e| panic!("tenants after the reload: {e}"))
        .into_iter()
        .map(|t| (t.id.to_string(), t.name))
        .collect();
    assert_eq!(
        names,
        [
            ("d001".to_string(), "Autohaus Müller GmbH".to_string()),
            ("d002".to_string(), "Autohaus Weiß & Söhne KG".to_string()),
            ("d003".to_string(), "Schröder Automobile".to_string()),
        ]
    );
    assert!(
        f.state_dir.join("inbox/d003").is_dir(),
        "the new dealer gets an inbox"
    );
    assert_eq!(
        c.tenant(&tid("d003"))
            .await
            .expect("d003")
            .summary
            .stats
            .customers,
        0
    );
    assert!(p.child.try_wait().expect("try_wait").is_none());
}

/// `touchpoint import --tenant d001 FILE` in the background.
fn spawn_import(f: &DaemonFiles, file: &Path) -> std::process::Child {
    Command::new(bin("touchpoint"))
        .arg("--socket")
        .arg(&f.socket)
        .args(["import", "--tenant", "d001"])
        .arg(file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn touchpoint import")
}

/// Bytes under `dir`, recursively.
fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// How far an import has got, as seen from outside the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The upload is arriving in `<state>/spool/`.
    Uploading,
    /// Rows are being written to `<tenant>/import.staging` (before the commit point).
    Staging,
    /// The tenant's database is growing: staged rows are being applied
    /// (after the commit point).
    Applying,
}

/// Waits until the import of `file` into d001 has reached `phase`, or the
/// import has ended (then the moment has passed; the caller kills anyway).
fn wait_for_phase(
    f: &DaemonFiles,
    file: &crate::common::LargeExport,
    import: &mut std::process::Child,
    phase: Phase,
) {
    let spool = f.state_dir.join("spool");
    let tenant = f.state_dir.join("tenants/d001");
    let staging = tenant.join("import.staging");
    let store = tenant.join("store");
    let baseline = dir_size(&store);
    let reached = || match phase {
        Phase::Uploading => std::fs::read_dir(&spool).is_ok_and(|mut rd| rd.next().is_some()),
        Phase::Staging => std::fs::metadata(&staging).is_ok_and(|m| m.len() > 0),
        Phase::Applying => dir_size(&store) > baseline + (2 << 20),
    };
    let done = touchpoint_tests::eventually(Duration::from_secs(120), || {
        reached() || import.try_wait().ok().flatten().is_some()
    });
    assert!(
        done,
        "the import of {} never reached {phase:?}; log:\n{}",
        file.path.display(),
        log_of(f)
    );
}

/// A dealer added by a reload is registered (store, inbox) before the new
/// policy is in force: as soon as the status counts it, the listing has it.
/// Were it the other way round, a listing in between would fail as a whole
/// with "unknown tenant"; that window is short, so the test adds dealers one
/// by one and lists right after each reload shows.
#[tokio::test]
async fn tenants_added_by_a_reload_are_listed_as_soon_as_they_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = daemon_files(dir.path(), DEALERS);
    let p = start(&f);
    let mut c = Client::connect(&f.socket).await.expect("connect");
    for i in 100..250u64 {
        std::fs::write(
            f.policy_dir.join(format!("dealers/d{i}.toml")),
            format!("[tenant]\nid = \"d{i}\"\nname = \"Autohaus {i}\"\n"),
        )
        .expect("write");
        p.signal(Signal::SIGHUP);
        let want = i - 97;
        let mut counted = false;
        for _ in 0..20_000 {
            if c.status().await.expect("status").tenants == want {
                counted = true;
                break;
            }
        }
        assert!(counted, "d{i} never counted");
        let listed = c
            .tenants()
            .await
            .unwrap_or_else(|e| panic!("d{i} counts but the tenants cannot be listed: {e}"));
        assert_eq!(listed.len() as u64, want);
    }
}

/// `touchpoint tenants` reads the figures each store keeps in the central
/// store: listing opens no tenant's database. (Opening every one of more
/// dealers than may be open at once made each listing close the stores the
/// previous one had opened, and a listing then met a store still being
/// closed: "could not acquire lock ... WouldBlock".) What an import wrote
/// is listed after a restart, with no store opened for it.
#[tokio::test]
async fn listing_tenants_opens_none_of_their_stores() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Dispatch looks at every tenant's outbox each round; it is not what
    // this test is about.
    let f = daemon_files_with(dir.path(), DEALERS, "[dispatch]\nenabled = false\n");
    for i in 100..250u64 {
        std::fs::write(
            f.policy_dir.join(format!("dealers/d{i}.toml")),
            format!("[tenant]\nid = \"d{i}\"\nname = \"Autohaus {i}\"\n"),
        )
        .expect("write");
    }
    let mut p = start(&f);
    let mut c = Client::connect(&f.socket).await.expect("connect");
    let r = c
        .upload(
            &tid("d001"),
            crate::common::import_fixture(crate::common::MAY),
        )
        .await
        .expect("import");
    assert_eq!(r.status, ImportStatus::Committed);
    drop(c);
    p.signal(Signal::SIGTERM);
    assert_eq!(
        p.wait_exit(EXIT).and_then(|e| e.code()),
        Some(0),
        "log:\n{}",
        log_of(&f)
    );

    let _p = start(&f);
    let mut c = Client::connect(&f.socket).await.expect("connect");
    let listed = c.tenants().await.expect("tenants");
    assert_eq!(listed.len(), 152);
    let d001 = &listed[0];
    assert_eq!(
        (
            d001.id.to_string(),
            d001.stats.customers,
            d001.stats.recipients
        ),
        ("d001".to_string(), 8, 7)
    );
    assert!(d001.stats.disk_bytes > 0);
    assert_eq!(
        d001.last_import.as_ref().map(|i| i.file_name.as_str()),
        Some(crate::common::MAY)
    );
    assert!(listed.iter().all(|t| t.error.is_none()));
    assert!(listed[1..].iter().all(|t| t.stats.customers == 0));
    let s = c.status().await.expect("status");
    assert_eq!(
        s.tenants_open,
        0,
        "listing opened tenant stores; log:\n{}",
        log_of(&f)
    );
}

#[tokio::test]
async fn sigterm_during_an_import_lets_it_finish() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = daemon_files(dir.path(), DEALERS);
    // The import of a debug build on a loaded machine may take longer than
    // the default minute; what is tested is that it is let finish.
    let config = std::fs::read_to_string(&f.config_file).expect("config");
    std::fs::write(&f.config_file, format!("stop_wait_secs = 900\n{config}")).expect("config");
    let file = crate::common::large_export(dir.path());
    let mut p = start(&f);
    let mut import = spawn_import(&f, &file.path);
    wait_for_phase(&f, &file, &mut import, Phase::Staging);
    p.signal(Signal::SIGTERM);
    let exit = p
        .wait_exit(Duration::from_secs(900))
        .expect("the daemon exits once the import is done");
    assert_eq!(exit.code(), Some(0), "log:\n{}", log_of(&f));
    let out = import.wait_with_output().expect("touchpoint import");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with(&format!(
            "{}: committed as import #1\n",
            file.path.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "  customers  {} inserted, 0 updated, ",
            file.customers
        )),
        "{stdout}"
    );

    let _p = start(&f);
    let mut c = Client::connect(&f.socket).await.expect("connect");
    let stats = c.tenant(&tid("d001")).await.expect("d001").summary.stats;
    assert_eq!(
        (stats.customers, stats.vehicles),
        (file.customers, file.vehicles)
    );
}

/// SIGKILL while the upload arrives, while rows are staged (before the
/// commit point) and while they are applied (after it): after a restart the
/// tenant has either nothing or the whole file, never a part; an import
/// that passed its commit point is completed; the file can be imported again.
#[tokio::test]
async fn an_import_killed_at_any_moment_is_all_or_nothing_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = daemon_files(dir.path(), DEALERS);
    let file = crate::common::large_export(dir.path());
    let d001 = tid("d001");
    let mut committed = false;
    for (round, phase) in [Phase::Uploading, Phase::Staging, Phase::Applying]
        .into_iter()
        .enumerate()
    {
        let mut p = start(&f);
        let mut import = spawn_import(&f, &file.path);
        wait_for_phase(&f, &file, &mut import, phase);
        p.signal(Signal::SIGKILL);
        p.wait_exit(EXIT).expect("killed");
        // The console notices that the daemon is gone (exit 3: unreachable),
        // unless the import was answered just before the kill.
        let out = output_of(import);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        let answered = match out.status.code() {
            Some(3) => {
                assert!(stderr.contains("touchpoint: "), "round {round}: {stderr}");
                false
            }
            Some(0) => {
                assert!(
                    stdout.contains(": committed as import #"),
                    "round {round}: {stdout}"
                );
                true
            }
            other => panic!("round {round}: touchpoint exited with {other:?}: {stdout}{stderr}"),
        };

        let mut restarted = start(&f);
        let mut c = Client::connect(&f.socket)
            .await
            .expect("connect after restart");
        let stats = c.tenant(&d001).await.expect("d001").summary.stats;
        eprintln!("round {round} ({phase:?}): {stats:?}");
        assert!(
            stats.customers == 0 || stats.customers == file.customers,
            "round {round} ({phase:?}): {} of {} customers after a kill: a partial import",
            stats.customers,
            file.customers
        );
        if answered || committed {
            assert_eq!(
                stats.customers, file.customers,
                "round {round}: a committed import was lost"
            );
        }
        if stats.customers == file.customers {
            assert_eq!(stats.vehicles, file.vehicles, "round {round}");
            // Completed at restart or not, the import had its identity pass
            // (a clean import of this file merges about 2,700 duplicates).
            assert!(stats.merges_active > 2_000, "round {round}: {stats:?}");
            assert_eq!(
                stats.recipients,
                stats.customers - stats.merges_active,
                "round {round}"
            );
            committed = true;
        } else {
            assert_eq!(
                (stats.vehicles, stats.consents, stats.imports),
                (0, 0, 0),
                "round {round}: {stats:?}"
            );
        }
        assert!(
            !f.state_dir.join("tenants/d001/import.staging").exists(),
            "round {round}: staging left behind"
        );
        let spool = f.state_dir.join("spool");
        assert!(
            std::fs::read_dir(&spool).map_or(true, |mut rd| rd.next().is_none()),
            "round {round}: upload spool left behind in {}",
            spool.display()
        );
        drop(c);
        restarted.signal(Signal::SIGTERM);
        assert_eq!(
            restarted.wait_exit(EXIT).and_then(|e| e.code()),
            Some(0),
            "log:\n{}",
            log_of(&f)
        );
    }

    // Imported again after the last crash: complete, and the file is known.
    let _p = start(&f);
    let mut c = Client::connect(&f.socket).await.expect("connect");
    let report = c.upload(&d001, &file.path).await.expect("re-import");
    match &report.status {
        ImportStatus::Committed => {
            assert!(!committed, "{report:?}");
            assert_eq!(report.customers.inserted, file.customers);
        }
        ImportStatus::AlreadyImported { .. } => assert!(committed),
        ImportStatus::Failed { reason } => panic!("re-import failed: {reason}"),
    }
    let stats = c.tenant(&d001).await.expect("d001").summary.stats;
    assert_eq!(
        (stats.customers, stats.vehicles),
        (file.customers, file.vehicles)
    );
}

/// The output of a child that has ended or is about to.
fn output_of(child: std::process::Child) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(EXIT) {
        Ok(out) => out.expect("wait for touchpoint"),
        Err(_) => {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL);
            panic!("touchpoint (pid {pid}) did not end within {EXIT:?} after the daemon died");
        }
    }
}

/// An upload spooled by a daemon that was then killed is garbage: nothing
/// will ever import it. A restart must not keep it forever (it can be as
/// large as `control.max_upload_bytes`).
#[test]
fn spool_files_left_by_a_crash_are_removed_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = daemon_files(dir.path(), DEALERS);
    let spool = f.state_dir.join("spool");
    std::fs::create_dir_all(&spool).expect("mkdir");
    std::fs::write(spool.join("upload-99999-0"), b"Kundennummer;Name\nK-1;Halb").expect("write");
    let _p = start(&f);
    assert!(
        touchpoint_tests::eventually(Duration::from_secs(10), || std::fs::read_dir(&spool)
            .map(|rd| rd.count() == 0)
            .unwrap_or(true)),
        "left in {}: {:?}",
        spool.display(),
        std::fs::read_dir(&spool).map(|rd| rd.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );
}

/// Only a stale socket at the configured path is replaced. A regular file
/// there (a typo in `socket =` pointing at something precious, say) or a
/// symlink is a start-up error that names the path, and stays as it was.
#[test]
fn a_regular_file_or_a_symlink_at_the_socket_path_stops_the_start_and_is_kept() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let f = daemon_files(dir.path(), DEALERS);
    let run = || {
        output_within(
            Command::new(bin("touchpointd"))
                .arg("--config")
                .arg(&f.config_file),
            EXIT,
        )
    };

    std::fs::write(&f.socket, b"precious data\n").expect("write");
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{} is not a socket", f.socket.display())),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&f.socket).expect("the file is still there"),
        b"precious data\n"
    );

    std::fs::remove_file(&f.socket).expect("rm");
    let target = dir.path().join("elsewhere.sock");
    std::os::unix::net::UnixListener::bind(&target).expect("bind the target");
    std::os::unix::fs::symlink(&target, &f.socket).expect("symlink");
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{} is not a socket", f.socket.display())),
        "{stderr}"
    );
    assert!(std::fs::symlink_metadata(&f.socket)
        .expect("the link is still there")
        .file_type()
        .is_symlink());
    assert!(std::fs::symlink_metadata(&target)
        .expect("its target too")
        .file_type()
        .is_socket());

    // A socket left by a daemon that died is replaced.
    std::fs::remove_file(&f.socket).expect("rm");
    drop(std::os::unix::net::UnixListener::bind(&f.socket).expect("bind"));
    let mut p = start(&f);
    p.signal(Signal::SIGTERM);
    assert_eq!(
        p.wait_exit(EXIT).and_then(|e| e.code()),
        Some(0),
        "log:\n{}",
        log_of(&f)
    );
}

/// A second daemon on a state directory in use fails with a clear reason
/// and touches nothing of it; the first goes on serving.
#[tokio::test]
async fn a_second_daemon_on_the_same_state_directory_is_refused() {
    let d = touchpoint_tests::TestDaemon::start();
    let other = d.dir.path().join("second.sock");
    let out = touchpoint_tests::output_within(
        std::process::Command::new(touchpoint_tests::bin("touchpointd"))
            .arg("--config")
            .arg(&d.config_file)
            .arg("--socket")
            .arg(&other),
        std::time::Duration::from_secs(60),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another touchpointd"), "{err}");
    let mut c = d.client().await;
    c.status().await.expect("the first daemon still serves");
}

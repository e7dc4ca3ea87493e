//! What `packaging/` ships: the systemd unit as this machine's systemd reads
//! it, and the notifications the real binary sends that the unit's
//! `Type=notify` and `ExecReload=` rely on.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use touchpoint_tests::{bin, daemon_files, output_within, repo_root, wait_until_serving};

/// `systemd-analyze`, where this machine has one.
fn systemd_analyze() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/bin".into()])
        .map(|d| d.join("systemd-analyze"))
        .find(|p| p.is_file())
}

/// `systemd-analyze verify` finds nothing to say about the shipped units
/// (the daemon's, and the nightly backup's service and timer):
/// no key or type this systemd does not know (`Type=notify-reload` and
/// `ReloadSignal=` need systemd 253; on 252 both are ignored with a warning
/// and `systemctl reload` does nothing), no command it cannot run.
///
/// The unit names the installed binary, `/usr/bin/touchpointd`, which a
/// test machine does not have; the copy verified here names the binary just
/// built instead and is otherwise the shipped file byte for byte.
#[test]
fn the_shipped_unit_passes_systemd_analyze_verify() {
    let Some(tool) = systemd_analyze() else {
        eprintln!("no systemd-analyze on this machine: the unit is not verified");
        return;
    };
    let shipped = repo_root().join("packaging/touchpointd.service");
    let text = std::fs::read_to_string(&shipped).expect("packaging/touchpointd.service");
    const INSTALLED: &str = "/usr/bin/touchpointd ";
    const CONSOLE: &str = "/usr/bin/touchpoint ";
    assert!(
        text.contains(&format!("ExecStart={INSTALLED}")),
        "the unit starts {INSTALLED}: {text}"
    );
    let built = bin("touchpointd");
    let console = bin("touchpoint");
    assert!(built.is_file(), "{} was not built", built.display());
    let dir = tempfile::tempdir().expect("tempdir");
    // The nightly backup's service and timer beside it: they need it.
    let mut units = Vec::new();
    for name in [
        "touchpointd.service",
        "touchpoint-backup.service",
        "touchpoint-backup.timer",
    ] {
        let text = std::fs::read_to_string(repo_root().join("packaging").join(name))
            .unwrap_or_else(|e| panic!("packaging/{name}: {e}"));
        let unit = dir.path().join(name);
        std::fs::write(
            &unit,
            text.replace(INSTALLED, &format!("{} ", built.display()))
                .replace(CONSOLE, &format!("{} ", console.display())),
        )
        .expect("write the unit");
        units.push(unit);
    }
    assert!(
        std::fs::read_to_string(&units[1])
            .expect("the unit as shipped")
            .contains(&format!("ExecStart={} ", console.display())),
        "the backup runs the console"
    );

    let out = output_within(
        Command::new(&tool).arg("verify").args(&units),
        Duration::from_secs(60),
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let about_the_unit: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("touchpoint") || l.contains(&*dir.path().to_string_lossy()))
        .collect();
    assert!(
        about_the_unit.is_empty(),
        "systemd-analyze verify ({}) on {}:\n{}",
        version(&tool),
        shipped.display(),
        about_the_unit.join("\n")
    );
}

fn version(tool: &Path) -> String {
    Command::new(tool)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_default()
}

/// Notifications the daemon sent to `NOTIFY_SOCKET`, one datagram each.
struct Notifications {
    socket: UnixDatagram,
    seen: Vec<String>,
}

impl Notifications {
    fn bind(path: &Path) -> Self {
        let socket = UnixDatagram::bind(path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        Self {
            socket,
            seen: Vec::new(),
        }
    }

    /// Reads datagrams until one carries `state` (`READY=1`), and returns
    /// the states of every datagram read on the way, that one included.
    fn until(&mut self, state: &str) -> Vec<Vec<String>> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut got = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            assert!(
                Instant::now() < deadline,
                "no {state} within 30 s; notifications so far: {:?}",
                self.seen
            );
            let Ok(n) = self.socket.recv(&mut buf) else {
                continue;
            };
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            self.seen.push(text.clone());
            let states: Vec<String> = text.lines().map(str::to_string).collect();
            let done = states.iter().any(|s| s == state);
            got.push(states);
            if done {
                return got;
            }
        }
    }
}

/// Under `Type=notify` with `ExecReload=kill -HUP $MAINPID`, systemd takes
/// the unit as reloading from `RELOADING=1` until `READY=1`: every SIGHUP
/// must end in `READY=1`, a reload refused for a broken policy file as
/// much as one that took, or the unit would stay "reloading" for good.
#[test]
fn each_sighup_is_reported_reloading_then_ready_even_when_the_reload_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = daemon_files(dir.path(), &[("d001", "Autohaus Müller GmbH")]);
    let notify = dir.path().join("notify.sock");
    let mut n = Notifications::bind(&notify);
    let log = std::fs::File::create(&f.log).expect("log");
    let mut child = Command::new(bin("touchpointd"))
        .arg("--config")
        .arg(&f.config_file)
        .env("NOTIFY_SOCKET", &notify)
        .env_remove("WATCHDOG_USEC")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn touchpointd");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let log_of = || std::fs::read_to_string(&f.log).unwrap_or_default();

    let start = n.until("READY=1");
    assert!(
        start.iter().flatten().all(|s| s != "RELOADING=1"),
        "{start:?}"
    );
    wait_until_serving(&f.socket);

    let reload = |n: &mut Notifications| {
        nix::sys::signal::kill(pid, Signal::SIGHUP).expect("SIGHUP");
        let got = n.until("READY=1");
        let reloading = got
            .iter()
            .position(|d| d.iter().any(|s| s == "RELOADING=1"));
        let ready = got.len() - 1;
        assert!(
            reloading.is_some_and(|r| r < ready),
            "RELOADING=1 before READY=1: {got:?}\nlog:\n{}",
            log_of()
        );
    };
    reload(&mut n);
    std::fs::write(
        f.policy_dir.join("dealers/d001.toml"),
        "[tenant]\nid = \"d001\"\nname = \"Autohaus Müller GmbH\"\nbudget = 12\n",
    )
    .expect("break the dealer policy");
    reload(&mut n);
    assert!(
        log_of().contains("policy reload refused"),
        "the second reload was refused:\n{}",
        log_of()
    );

    nix::sys::signal::kill(pid, Signal::SIGTERM).expect("SIGTERM");
    n.until("STOPPING=1");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "no stop within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}; log:\n{}", log_of());
}

fn run_ok(cmd: &mut Command) -> String {
    let out = output_within(cmd, Duration::from_secs(300));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `packaging/deb.sh` builds the Debian package from the binaries just
/// built, and `dpkg-deb` reads it back: the fields, every file where an
/// admin expects it with its mode, the configuration and policies as
/// conffiles, and maintainer scripts a shell can parse. (Installing it is
/// not part of the test: it creates a system user.)
#[test]
fn the_debian_package_builds_with_its_files_conffiles_and_scripts() {
    let built = bin("touchpointd");
    bin("touchpoint");
    let bin_dir = built.parent().expect("the binaries' folder");
    let out = tempfile::tempdir().expect("tempdir");
    let printed = run_ok(
        Command::new("bash")
            .arg(repo_root().join("packaging/deb.sh"))
            .arg("--bin-dir")
            .arg(bin_dir)
            .arg("--out")
            .arg(out.path())
            // The test reads the package back; packing it small is not its job.
            .args(["--compress", "none"]),
    );
    let deb = PathBuf::from(printed.trim());
    assert!(deb.starts_with(out.path()) && deb.is_file(), "{printed}");

    let info = run_ok(Command::new("dpkg-deb").arg("--info").arg(&deb));
    for field in [
        "Package: touchpoint",
        "Version: 0.1.0",
        "Depends: libc6 (>= 2.34), libgcc-s1, adduser, init-system-helpers (>= 1.52)",
        "Section: admin",
    ] {
        assert!(info.contains(field), "{field} in:\n{info}");
    }
    let contents = run_ok(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    let entry = |path: &str| -> String {
        contents
            .lines()
            .find(|l| l.ends_with(&format!(" .{path}")))
            .unwrap_or_else(|| panic!("{path} not in the package:\n{contents}"))
            .to_string()
    };
    for (path, mode) in [
        ("/usr/bin/touchpointd", "-rwxr-xr-x root/root"),
        ("/usr/bin/touchpoint", "-rwxr-xr-x root/root"),
        (
            "/lib/systemd/system/touchpointd.service",
            "-rw-r--r-- root/root",
        ),
        (
            "/lib/systemd/system/touchpoint-backup.service",
            "-rw-r--r-- root/root",
        ),
        (
            "/lib/systemd/system/touchpoint-backup.timer",
            "-rw-r--r-- root/root",
        ),
        ("/etc/touchpoint/touchpointd.toml", "-rw-r----- root/root"),
        (
            "/etc/touchpoint/policies/brand.toml",
            "-rw-r--r-- root/root",
        ),
        (
            "/etc/touchpoint/policies/templates/service_due.toml",
            "-rw-r--r-- root/root",
        ),
        (
            "/usr/share/doc/touchpoint/copyright",
            "-rw-r--r-- root/root",
        ),
        (
            "/usr/share/doc/touchpoint/examples/dealer.toml",
            "-rw-r--r-- root/root",
        ),
    ] {
        let line = entry(path);
        assert!(line.starts_with(mode), "{path}: {line}");
    }
    // No demo dealer is installed as a tenant.
    assert!(
        !contents.contains("./etc/touchpoint/policies/dealers/d0"),
        "{contents}"
    );

    let control = tempfile::tempdir().expect("tempdir");
    run_ok(
        Command::new("dpkg-deb")
            .arg("--control")
            .arg(&deb)
            .arg(control.path()),
    );
    let conffiles = std::fs::read_to_string(control.path().join("conffiles")).expect("conffiles");
    for path in [
        "/etc/touchpoint/touchpointd.toml",
        "/etc/touchpoint/policies/brand.toml",
        "/etc/touchpoint/policies/templates/service_due.toml",
    ] {
        assert!(conffiles.lines().any(|l| l == path), "{path}: {conffiles}");
    }
    for script in ["postinst", "prerm", "postrm"] {
        run_ok(
            Command::new("sh")
                .arg("-n")
                .arg(control.path().join(script)),
        );
    }
    let postinst = std::fs::read_to_string(control.path().join("postinst")).expect("postinst");
    assert!(
        postinst.contains("adduser --system --ingroup touchpoint"),
        "{postinst}"
    );
    // The installed configuration names the installed places.
    let text = std::fs::read_to_string(repo_root().join("policies/touchpointd.toml"))
        .expect("policies/touchpointd.toml");
    assert!(text.contains("state_dir = \"/var/lib/touchpoint\""));
    assert!(text.contains("policy_dir = \"/etc/touchpoint/policies\""));
}

/// Under the journal (`JOURNAL_STREAM` set, as systemd sets it), every log
/// line is one JSON object with the event's fields as keys: a request that
/// changes something is logged with its user, request, tenant and outcome,
/// a refused one with the refusal; on a terminal the same event is text.
#[test]
fn under_the_journal_the_log_is_json_lines_with_request_tenant_and_outcome() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = daemon_files(dir.path(), &[("d001", "Autohaus Müller GmbH")]);
    let log = std::fs::File::create(&f.log).expect("log");
    let mut child = Command::new(bin("touchpointd"))
        .arg("--config")
        .arg(&f.config_file)
        .env("JOURNAL_STREAM", "8:12345")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn touchpointd");
    wait_until_serving(&f.socket);
    let out = touchpoint_tests::touchpoint(&f.socket, &["plan", "--tenant", "d001"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = touchpoint_tests::touchpoint(&f.socket, &["plan", "--tenant", "nope"]);
    assert_ne!(out.status.code(), Some(0));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let _ = child.wait();

    let text = std::fs::read_to_string(&f.log).expect("log");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let planned = lines
        .iter()
        .find(|l| l["request"] == "plan" && l["tenant"] == "d001")
        .unwrap_or_else(|| panic!("no plan request logged:\n{text}"));
    assert_eq!(planned["outcome"], "ok", "{planned}");
    assert_eq!(planned["level"], "INFO", "{planned}");
    assert!(planned["user"].is_string(), "{planned}");
    assert!(
        lines
            .iter()
            .any(|l| l["request"] == "plan" && l["outcome"] != "ok"),
        "the refused plan is logged with its outcome:\n{text}"
    );
}

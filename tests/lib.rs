//! Harness for end-to-end tests: a real `touchpointd` (in-process on its own
//! runtime, or the real binary as a child process) on a temp socket, state
//! dir and policy dir, and the real `touchpoint` client.

pub mod smtp;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use touchpoint_common::config::{AccessRule, DaemonConfig};
use touchpointd::config::Resolved;

/// The repository root (this crate lives in `<root>/tests`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Fixture files shared by the tests.
pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(name)
}

/// `tests/policies/<kind>/*`: the valid policy directories (`"valid"`) or
/// the invalid cases (`"invalid"`), sorted. See `tests/policies/README.md`.
pub fn policy_cases(kind: &str) -> Vec<PathBuf> {
    let dir = repo_root().join("tests/policies").join(kind);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

/// Files of an invalid case that describe it rather than being policy files.
pub const CASE_FILES: [&str; 2] = ["expected.txt", "remove.txt"];

/// Makes the policy directory an invalid case stands for in `into`: the base
/// (`tests/policies/valid/base`), the case's own files laid over it, and the
/// files its `remove.txt` lists removed.
pub fn materialize_policy_case(case: &Path, into: &Path) -> PathBuf {
    copy_tree(&repo_root().join("tests/policies/valid/base"), into);
    copy_tree(case, into);
    for name in CASE_FILES {
        let _ = std::fs::remove_file(into.join(name));
    }
    if let Ok(list) = std::fs::read_to_string(case.join("remove.txt")) {
        for rel in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
            std::fs::remove_file(into.join(rel))
                .unwrap_or_else(|e| panic!("{}: remove {rel}: {e}", case.display()));
        }
    }
    into.to_path_buf()
}

/// Copies the files under `from` into `to`, subfolders included, replacing
/// files of the same name.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A temp directory with a policy set: the shipped `brand.toml` and
/// templates, and the named dealers (taking part in no service).
pub fn policy_dir(root: &Path, dealers: &[(&str, &str)]) -> PathBuf {
    let dir = root.join("policies");
    std::fs::create_dir_all(dir.join("dealers")).expect("mkdir policies");
    copy_dir(
        &repo_root().join("policies/templates"),
        &dir.join("templates"),
    );
    let brand = std::fs::read_to_string(repo_root().join("policies/brand.toml")).expect("brand");
    std::fs::write(dir.join("brand.toml"), brand_review_off(&brand)).expect("brand");
    for (id, name) in dealers {
        std::fs::write(
            dir.join("dealers").join(format!("{id}.toml")),
            format!("[tenant]\nid = \"{id}\"\nname = \"{name}\"\n"),
        )
        .expect("dealer");
    }
    dir
}

/// `brand.toml` text with `[review] brand` off: tests rewrite the brand
/// file while the daemon runs and expect it in force at once, as it is
/// without review (the shipped file turns the review on).
pub fn brand_review_off(text: &str) -> String {
    text.replacen("\nbrand = true\n", "\nbrand = false\n", 1)
}

/// Copies the files of one directory (not recursive).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }
}

/// Settings for a test daemon.
pub struct Options {
    pub dealers: Vec<(String, String)>,
    pub access: Vec<AccessRule>,
    pub handshake_timeout_ms: u64,
    pub idle_timeout_secs: u64,
    pub max_connections: u32,
    pub settle_ms: u64,
    /// Dealer policy files copied into `dealers/` besides `dealers`.
    pub dealer_files: Vec<PathBuf>,
    /// The `[dispatch]` section (and its sub-tables) of the daemon's
    /// configuration, as TOML. `None`: dispatch off, so tests that are not
    /// about sending see their planned messages stay put.
    pub dispatch: Option<String>,
    /// The text of `brand.toml`, in place of the shipped one (a send window
    /// or calendar a test needs).
    pub brand: Option<String>,
    /// Template files (name, text) in place of the shipped ones of that
    /// name: the brand material the daemon seeds on its first start.
    pub templates: Vec<(String, String)>,
    /// The state directory, in place of `<temp dir>/state` (one on a small
    /// file system, say).
    pub state_dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            dealers: vec![
                ("d001".into(), "Autohaus Müller GmbH".into()),
                ("d002".into(), "Autohaus Weiß KG".into()),
                ("d003".into(), "Schröder Automobile".into()),
            ],
            access: vec![],
            handshake_timeout_ms: 2_000,
            idle_timeout_secs: 30,
            max_connections: 16,
            settle_ms: 200,
            dealer_files: Vec::new(),
            dispatch: None,
            brand: None,
            templates: Vec::new(),
            state_dir: None,
        }
    }
}

/// Between 00:00 and 01:00 local time, moves this process's domain time
/// (`touchpoint_common::clock`) an hour on, once, before any daemon of it
/// starts: tests that plan today with a window placed around the present
/// minute (the approvals cycle: from 12 minutes ago) need room before and
/// after it within the day. The date
/// stays the same (so daemons run as child processes, on the real clock,
/// agree on today), and nothing shows a simulated clock.
pub fn keep_off_midnight() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use chrono::Timelike;
        let now = touchpoint_common::clock::now_local();
        if now.hour() == 0 {
            touchpoint_common::clock::shift_for_tests(3_600_000);
        }
    });
}

/// A daemon running in this process on its own runtime thread.
pub struct TestDaemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub policy_dir: PathBuf,
    pub config_file: PathBuf,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl TestDaemon {
    pub fn start() -> Self {
        Self::start_with(Options::default())
    }

    pub fn start_with(opts: Options) -> Self {
        keep_off_midnight();
        // Build the binaries (once per test process) before any daemon or
        // client exists: a first `bin()` call later, while the test holds an
        // idle connection, could outlast the daemon's idle timeout.
        bin("touchpoint");
        let dir = tempfile::tempdir().expect("tempdir");
        let dealers: Vec<(&str, &str)> = opts
            .dealers
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let policy_dir = policy_dir(dir.path(), &dealers);
        if let Some(brand) = &opts.brand {
            std::fs::write(policy_dir.join("brand.toml"), brand_review_off(brand))
                .expect("brand.toml");
        }
        for (name, text) in &opts.templates {
            std::fs::write(policy_dir.join("templates").join(name), text).expect("template");
        }
        for f in &opts.dealer_files {
            let name = f.file_name().expect("dealer file name");
            std::fs::copy(f, policy_dir.join("dealers").join(name)).expect("copy dealer file");
        }
        let state_dir = opts
            .state_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("state"));
        let socket = dir.path().join("touchpoint.sock");
        let mut config = DaemonConfig {
            state_dir: state_dir.display().to_string(),
            socket: socket.display().to_string(),
            policy_dir: policy_dir.display().to_string(),
            access: opts.access,
            ..DaemonConfig::default()
        };
        config.control.handshake_timeout_ms = opts.handshake_timeout_ms;
        config.control.idle_timeout_secs = opts.idle_timeout_secs;
        config.control.max_connections = opts.max_connections;
        config.import.settle_ms = opts.settle_ms;
        config.stores.flush_every_ms = 100;
        let config_file = dir.path().join("touchpointd.toml");
        let access = std::mem::take(&mut config.access);
        let text = format!(
            "{}\n{}{ACCESS_MARK}{}",
            toml_of(&config),
            opts.dispatch
                .as_deref()
                .unwrap_or("[dispatch]\nenabled = false\n"),
            access_toml(&access)
        );
        std::fs::write(&config_file, text).expect("config");
        let (shutdown, thread) = launch(&config_file, &socket);
        Self {
            dir,
            socket,
            state_dir,
            policy_dir,
            config_file,
            shutdown,
            thread: Some(thread),
        }
    }

    /// Stops the daemon and starts it again on the same state, policies and
    /// socket, with other `[[access]]` rules: a test sets up tenants' data
    /// with one identity and then looks at it with another.
    pub fn restart_with_access(&mut self, access: &[AccessRule]) {
        self.stop_in_place();
        let text = std::fs::read_to_string(&self.config_file).expect("config");
        let base = text.split(ACCESS_MARK).next().unwrap_or_default();
        std::fs::write(
            &self.config_file,
            format!("{base}{ACCESS_MARK}{}", access_toml(access)),
        )
        .expect("config");
        let _ = std::fs::remove_file(&self.socket);
        let (shutdown, thread) = launch(&self.config_file, &self.socket);
        self.shutdown = shutdown;
        self.thread = Some(thread);
    }

    /// A connected client (the console's own client library).
    pub async fn client(&self) -> touchpoint::client::Client {
        touchpoint::client::Client::connect(&self.socket)
            .await
            .expect("connect")
    }

    /// Stops the daemon gracefully and waits for it.
    pub fn stop(mut self) {
        self.stop_in_place();
    }

    /// Stops the daemon gracefully and waits for it, keeping the temp dir so
    /// that a test can look at the state it left (open the stores directly).
    pub fn stop_in_place(&mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.thread.take() {
            t.join()
                .expect("daemon thread")
                .expect("daemon exits cleanly");
        }
    }

    /// Lets a second Unix user (tests of four eyes, run as root) reach the
    /// socket, and gives them a home of their own for the console's log.
    /// Returns that home.
    pub fn open_to_user(&self, uid: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod dir");
        std::fs::set_permissions(&self.socket, std::fs::Permissions::from_mode(0o666))
            .expect("chmod socket");
        let home = self.dir.path().join(format!("user{uid}"));
        std::fs::create_dir(&home).expect("home of the second user");
        std::os::unix::fs::chown(&home, Some(uid), Some(uid)).expect("chown");
        home
    }

    /// The inbox folder of a tenant.
    pub fn inbox(&self, tenant: &str) -> PathBuf {
        self.state_dir.join("inbox").join(tenant)
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Where a test daemon's configuration file has its `[[access]]` rules.
const ACCESS_MARK: &str = "\n# access rules\n";

type DaemonThread = std::thread::JoinHandle<anyhow::Result<()>>;

/// Starts a daemon of `config_file` on its own runtime thread, serving on `socket`.
fn launch(config_file: &Path, socket: &Path) -> (CancellationToken, DaemonThread) {
    let resolved =
        touchpointd::config::load(Some(config_file), &Default::default()).expect("config loads");
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let sock = socket.to_path_buf();
    let thread = std::thread::spawn(move || -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let listener = tokio::net::UnixListener::bind(&sock)?;
            run_daemon(&resolved, listener, token).await
        })
    });
    wait_until_serving(socket);
    (shutdown, thread)
}

async fn run_daemon(
    cfg: &Resolved,
    listener: tokio::net::UnixListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let daemon = touchpointd::daemon::Daemon::start(cfg, listener, shutdown).await?;
    daemon.wait().await
}

pub fn toml_of(config: &DaemonConfig) -> String {
    // Written by hand so the file looks like one an administrator would write.
    let mut s = format!(
        "state_dir = {:?}\nsocket = {:?}\npolicy_dir = {:?}\n\n[stores]\nflush_every_ms = {}\n\n[control]\nhandshake_timeout_ms = {}\nidle_timeout_secs = {}\nmax_connections = {}\n\n[import]\nsettle_ms = {}\n",
        config.state_dir,
        config.socket,
        config.policy_dir,
        config.stores.flush_every_ms,
        config.control.handshake_timeout_ms,
        config.control.idle_timeout_secs,
        config.control.max_connections,
        config.import.settle_ms,
    );
    s.push_str(&access_toml(&config.access));
    s
}

/// `[[access]]` tables for `rules`.
pub fn access_toml(rules: &[AccessRule]) -> String {
    let mut s = String::new();
    for r in rules {
        s.push_str("\n[[access]]\n");
        if let Some(u) = r.uid {
            s.push_str(&format!("uid = {u}\n"));
        }
        if let Some(u) = &r.user {
            s.push_str(&format!("user = {u:?}\n"));
        }
        if let Some(g) = r.gid {
            s.push_str(&format!("gid = {g}\n"));
        }
        if let Some(g) = &r.group {
            s.push_str(&format!("group = {g:?}\n"));
        }
        s.push_str(&format!(
            "role = {:?}\ntenants = {:?}\n",
            r.role.as_str(),
            r.tenants
        ));
    }
    s
}

/// Waits until something accepts connections on `socket`.
pub fn wait_for_socket(socket: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on {} after 20 s", socket.display());
}

/// Waits until the daemon behind `socket` answers a hello. The socket
/// accepts connections as soon as it is bound, before the daemon has opened
/// its stores and created the inboxes; only an answer shows it is serving.
/// The probe uses a wrong magic, which is refused without an audit entry.
pub fn wait_until_serving(socket: &Path) {
    use std::io::{Read, Write};
    use touchpoint_common::protocol::{Hello, HelloReply};
    wait_for_socket(socket);
    let probe = || -> std::io::Result<HelloReply> {
        let mut s = std::os::unix::net::UnixStream::connect(socket)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let hello = Hello {
            magic: *b"PRBE",
            version: 0,
            client: "e2e readiness probe".into(),
        };
        let payload =
            touchpoint_common::codec::encode_frame(&hello).map_err(std::io::Error::other)?;
        s.write_all(&(payload.len() as u32).to_be_bytes())?;
        s.write_all(&payload)?;
        let mut len = [0u8; 4];
        s.read_exact(&mut len)?;
        let mut reply = vec![0u8; u32::from_be_bytes(len).min(1 << 16) as usize];
        s.read_exact(&mut reply)?;
        touchpoint_common::codec::decode_frame(&reply).map_err(std::io::Error::other)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match probe() {
            Ok(_) => return,
            Err(e) if Instant::now() >= deadline => {
                panic!(
                    "{} does not answer a hello after 20 s: {e}",
                    socket.display()
                )
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Polls `cond` until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Path of a workspace binary, built on first use with the profile of this
/// test run (cargo builds only the test crate's own binaries for its tests).
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test-binary>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("profile dir");
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(repo_root()).args([
            "build",
            "--quiet",
            "-p",
            "touchpoint-daemon",
            "-p",
            "touchpoint-console",
            "--bins",
        ]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "building the binaries failed");
    });
    profile_dir.join(name)
}

/// A `touchpointd` binary running as a child process.
pub struct DaemonProcess {
    pub child: Child,
    pub socket: PathBuf,
}

impl DaemonProcess {
    pub fn spawn(config_file: &Path, socket: &Path, log: &Path) -> Self {
        Self::spawn_with(config_file, socket, log, &[])
    }

    /// [`Self::spawn`] with more arguments (`--clock-start`, say).
    pub fn spawn_with(config_file: &Path, socket: &Path, log: &Path, args: &[&str]) -> Self {
        let log = std::fs::File::create(log).expect("log file");
        let child = Command::new(bin("touchpointd"))
            .arg("--config")
            .arg(config_file)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn touchpointd");
        wait_until_serving(socket);
        Self {
            child,
            socket: socket.to_path_buf(),
        }
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig)
            .expect("signal");
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl DaemonProcess {
    /// Waits until the process has installed its handlers for SIGTERM and
    /// SIGHUP. The socket accepts connections a moment before that, and a
    /// signal sent in between would meet the default action (terminate).
    pub fn wait_for_signal_handlers(&self) {
        let pid = self.child.id();
        let caught = || -> Option<u64> {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
            u64::from_str_radix(mask.trim(), 16).ok()
        };
        let wanted = [
            nix::sys::signal::Signal::SIGHUP,
            nix::sys::signal::Signal::SIGTERM,
        ]
        .iter()
        .fold(0u64, |m, s| m | 1 << (*s as i32 - 1));
        assert!(
            eventually(Duration::from_secs(20), || caught()
                .is_some_and(|m| m & wanted == wanted)),
            "touchpointd (pid {pid}) did not install its signal handlers within 20 s"
        );
    }
}

/// Files of a daemon configured for running the real binary.
pub struct DaemonFiles {
    pub config_file: PathBuf,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub policy_dir: PathBuf,
    pub log: PathBuf,
}

/// Writes `touchpointd.toml` and a policy set with `dealers` under `root`.
pub fn daemon_files(root: &Path, dealers: &[(&str, &str)]) -> DaemonFiles {
    daemon_files_with(root, dealers, "")
}

/// Like [`daemon_files`], with `extra` TOML appended to the configuration
/// (a `[dispatch]` section, say).
pub fn daemon_files_with(root: &Path, dealers: &[(&str, &str)], extra: &str) -> DaemonFiles {
    let policy_dir = policy_dir(root, dealers);
    let state_dir = root.join("state");
    let socket = root.join("touchpoint.sock");
    let mut config = DaemonConfig {
        state_dir: state_dir.display().to_string(),
        socket: socket.display().to_string(),
        policy_dir: policy_dir.display().to_string(),
        ..DaemonConfig::default()
    };
    config.stores.flush_every_ms = 100;
    config.import.settle_ms = 200;
    let config_file = root.join("touchpointd.toml");
    std::fs::write(&config_file, format!("{}\n{extra}", toml_of(&config))).expect("config");
    DaemonFiles {
        config_file,
        socket,
        state_dir,
        policy_dir,
        log: root.join("touchpointd.log"),
    }
}

/// The `touchpoint` binary run as `uid` (and gid `uid`) against `socket`,
/// with `home` for its log (see [`TestDaemon::open_to_user`]).
pub fn touchpoint_as(uid: u32, socket: &Path, home: &Path, args: &[&str]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(bin("touchpoint"));
    cmd.arg("--socket")
        .arg(socket)
        .args(args)
        .env("HOME", home)
        .env("XDG_STATE_HOME", home)
        .uid(uid)
        .gid(uid);
    output_within(&mut cmd, Duration::from_secs(60))
}

/// Runs a command to its end, or kills it after `timeout` and fails the test.
pub fn output_within(cmd: &mut Command, timeout: Duration) -> std::process::Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.expect("wait for the command"),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("{cmd:?} did not finish within {} s", timeout.as_secs());
        }
    }
}

/// A tenant id known to be valid.
/// A TCP port on 127.0.0.1 free a moment ago, for a daemon's `[http]
/// listen`: the links in its emails must name the port before it starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub fn tid(s: &str) -> touchpoint_common::TenantId {
    touchpoint_common::TenantId::new(s).expect("valid tenant id")
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the `touchpoint` binary against a socket.
pub fn touchpoint(socket: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin("touchpoint"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run touchpoint")
}

/// [`touchpoint`] that must succeed: its stdout, or a panic with both
/// outputs.
pub fn touchpoint_ok(socket: &Path, args: &[&str]) -> String {
    let out = touchpoint(socket, args);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "touchpoint {args:?}:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Variants of [`Request`](touchpoint_common::protocol::Request): a test
/// that walks [`every_request`] knows it met them all.
pub const REQUEST_KINDS: usize = 46;

/// The index of a request's variant. No wildcard: a new request does not
/// compile here until it has an index, and [`every_request`] fails its
/// coverage check until it has an example.
pub fn request_kind(r: &touchpoint_common::protocol::Request) -> usize {
    use touchpoint_common::protocol::Request as R;
    match r {
        R::Ping => 0,
        R::Status => 1,
        R::ListTenants => 2,
        R::Tenant { .. } => 3,
        R::UploadBegin { .. } => 4,
        R::UploadChunk { .. } => 5,
        R::UploadEnd => 6,
        R::UploadAbort => 7,
        R::Imports { .. } => 8,
        R::Merges { .. } => 9,
        R::UndoMerge { .. } => 10,
        R::Audit { .. } => 11,
        R::Plan { .. } => 12,
        R::DispatchStatus => 13,
        R::Pause { .. } => 14,
        R::Resume { .. } => 15,
        R::RunBatches { .. } => 16,
        R::Costs { .. } => 17,
        R::Message { .. } => 18,
        R::MessageAction { .. } => 19,
        R::CallOutcomes { .. } => 20,
        R::Propose { .. } => 21,
        R::ProposeRollback { .. } => 22,
        R::Proposals { .. } => 23,
        R::Proposal { .. } => 24,
        R::Preview { .. } => 25,
        R::Approve { .. } => 26,
        R::Reject { .. } => 27,
        R::Templates { .. } => 28,
        R::Queue { .. } => 29,
        R::Content { .. } => 30,
        R::Overview { .. } => 31,
        R::Subscribe => 32,
        R::Report { .. } => 33,
        R::Responses { .. } => 34,
        R::Learning { .. } => 35,
        R::LearningAction { .. } => 36,
        R::Customer { .. } => 37,
        R::Erase { .. } => 38,
        R::Reinstate { .. } => 39,
        R::Object { .. } => 40,
        R::ExportCustomer { .. } => 41,
        R::EraseTenant { .. } => 42,
        R::Backup { .. } => 43,
        R::VerifyBackup { .. } => 44,
        R::RetentionRun => 45,
    }
}

/// At least one request of every kind, each naming `tenant` wherever a
/// request can name one (the tenant, a queue filter, a pause, the slots of
/// the tenant as brand material), and proposal `proposal` where it names
/// a proposal. Several forms of a kind where their reach differs (a
/// tenant named or not, a dry run or not).
pub fn every_request(
    tenant: &touchpoint_common::TenantId,
    proposal: u64,
) -> Vec<touchpoint_common::protocol::Request> {
    use touchpoint_common::protocol::{
        MessageAction, PauseScope, QueueFilter, ReportQuery, Request as R,
    };
    let t = || tenant.clone();
    let slots = format!("slots/{tenant}");
    vec![
        R::Ping,
        R::Status,
        R::ListTenants,
        R::Tenant { tenant: t() },
        R::UploadBegin {
            tenant: t(),
            file_name: "kunden.csv".into(),
            size: 10,
        },
        R::UploadChunk {
            data: b"x".to_vec(),
        },
        R::UploadEnd,
        R::UploadAbort,
        R::Imports {
            tenant: t(),
            limit: 10,
        },
        R::Merges {
            tenant: t(),
            include_undone: true,
        },
        R::UndoMerge {
            tenant: t(),
            merge_id: 1,
        },
        R::Audit {
            tenant: Some(t()),
            limit: 100,
            text: String::new(),
        },
        R::Audit {
            tenant: None,
            limit: 100,
            text: String::new(),
        },
        R::Plan {
            tenant: Some(t()),
            day: None,
            dry_run: true,
            policies: None,
            show: 10,
        },
        R::Plan {
            tenant: Some(t()),
            day: None,
            dry_run: false,
            policies: None,
            show: 10,
        },
        R::Plan {
            tenant: None,
            day: None,
            dry_run: true,
            policies: None,
            show: 10,
        },
        R::DispatchStatus,
        R::Pause {
            scope: PauseScope {
                tenant: Some(t()),
                service: None,
            },
        },
        R::Resume {
            scope: PauseScope {
                tenant: Some(t()),
                service: None,
            },
        },
        R::RunBatches { tenant: Some(t()) },
        R::Costs {
            tenant: Some(t()),
            month: None,
        },
        R::Costs {
            tenant: None,
            month: None,
        },
        R::Message { tenant: t(), id: 1 },
        R::MessageAction {
            tenant: t(),
            ids: vec![1],
            action: MessageAction::Hold,
        },
        R::CallOutcomes {
            file_name: "outcomes.csv".into(),
            data: Vec::new(),
        },
        R::Propose {
            template: slots.clone(),
            text: "[slots]\nsignature = \"Ihr Team\"\n".into(),
            comment: "signature".into(),
        },
        R::ProposeRollback {
            template: slots.clone(),
            version: 1,
            comment: "back".into(),
        },
        R::Proposals { all: true },
        R::Proposal { id: proposal },
        R::Preview {
            id: proposal,
            tenant: t(),
            customer: None,
        },
        R::Approve {
            id: proposal,
            comment: String::new(),
        },
        R::Reject {
            id: proposal,
            comment: "no".into(),
        },
        R::Templates {
            name: Some(slots.clone()),
        },
        R::Templates { name: None },
        R::Queue {
            filter: QueueFilter {
                tenants: vec![t()],
                ..QueueFilter::default()
            },
            offset: 0,
            limit: 50,
        },
        R::Queue {
            filter: QueueFilter::default(),
            offset: 0,
            limit: 50,
        },
        R::Content { tenant: t(), id: 1 },
        R::Overview { day: None },
        R::Subscribe,
        R::Report {
            query: ReportQuery {
                tenant: Some(t()),
                ..ReportQuery::default()
            },
        },
        R::Report {
            query: ReportQuery::default(),
        },
        R::Report {
            query: ReportQuery {
                pooled: true,
                ..ReportQuery::default()
            },
        },
        R::Responses {
            tenant: t(),
            customer: None,
            organic_only: false,
            limit: 10,
        },
        R::Learning { service: None },
        R::LearningAction {
            service: "service_due".into(),
            action: touchpoint_common::learning::LearningAction::Freeze,
        },
        R::Customer {
            tenant: t(),
            customer: "K-1".into(),
        },
        R::Erase {
            tenant: t(),
            customer: "K-1".into(),
            reason: "test".into(),
        },
        R::Reinstate {
            tenant: t(),
            customer: "K-1".into(),
            basis: "test".into(),
        },
        R::Object {
            tenant: t(),
            customer: "K-1".into(),
            reason: "test".into(),
            lift: false,
        },
        R::ExportCustomer {
            tenant: t(),
            customer: "K-1".into(),
        },
        R::EraseTenant {
            tenant: t(),
            archive: None,
        },
        // A parent that does not exist: nothing is written.
        R::Backup {
            dir: "/nonexistent-touchpoint-test/backups".into(),
            keep: Some(1),
        },
        R::VerifyBackup {
            dir: "/nonexistent-touchpoint-test/backups".into(),
        },
        R::RetentionRun,
    ]
}

fn all<T: serde::Serialize, E: std::fmt::Debug>(
    it: impl Iterator<Item = Result<T, E>>,
) -> serde_json::Value {
    let items: Vec<T> = it.map(|r| r.expect("a stored record reads")).collect();
    serde_json::to_value(items).expect("json")
}

fn val<T: serde::Serialize>(v: T) -> serde_json::Value {
    serde_json::to_value(v).expect("json")
}

/// Every record of the central store, as this build reads it (the audit
/// up to 10,000 lines): for comparing two state directories.
pub fn dump_central(central: &touchpointd::store::Central) -> serde_json::Value {
    let audit = central.audit_log(None, 10_000).expect("audit");
    serde_json::json!({
        "tenants": val(central.tenants().expect("tenants")),
        "pauses": val(central.pauses().expect("pauses")),
        "learned": val(central.learned().expect("learned")),
        "audit": val(audit),
        "templates": val(central.template_histories().expect("templates")),
        "proposals": val(central.proposals().expect("proposals")),
    })
}

/// Every record of a tenant's store, as this build reads it (its latest
/// 1,000 imports): for comparing two state directories.
pub fn dump_tenant(t: &touchpointd::store::TenantStore) -> serde_json::Value {
    serde_json::json!({
        "customers": all(t.customers()),
        "vehicles": all(t.vehicles()),
        "consents": all(t.consents()),
        "journeys": all(t.journeys()),
        "visits": all(t.visits()),
        "responses": all(t.responses()),
        "imports": val(t.imports(1_000).expect("imports")),
        "merges": val(t.merges(true).expect("merges")),
        "messages": all(t.messages()),
        "credits": val(t.credits().expect("credits")),
        "tracking": val(t.all_tracking().expect("tracking")),
        "ledger": val(t.ledger().expect("ledger")),
        "bad_addresses": val(t.bad_addresses().expect("bad addresses")),
    })
}

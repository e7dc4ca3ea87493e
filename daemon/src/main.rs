//! `touchpointd`: the Touchpoint daemon.

use std::io::IsTerminal as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use sd_notify::NotifyState;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use touchpointd::config::{self, Overrides};
use touchpointd::daemon::Daemon;

/// Marketing-automation daemon: sealed dealer stores, import, control socket.
#[derive(Parser, Debug)]
#[command(name = "touchpointd", version)]
struct Args {
    /// Configuration file (TOML). Without it, built-in defaults apply.
    #[arg(long, short, env = "TOUCHPOINTD_CONFIG")]
    config: Option<PathBuf>,
    /// State directory (overrides `state_dir`).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Control socket path (overrides `socket`).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Policy directory (overrides `policy_dir`).
    #[arg(long)]
    policy_dir: Option<PathBuf>,
    /// Check the configuration and the policy files, then exit.
    #[arg(long)]
    check_config: bool,
    /// Log filter, e.g. `info` or `touchpointd=debug` (also `RUST_LOG`).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log: String,
    /// Rehearsal: start the daemon's clock at this moment (RFC 3339, or
    /// local "YYYY-MM-DD HH:MM") and let it run at normal speed. Planning,
    /// send times and batches follow it; audit lines keep real time. Shown
    /// in `touchpoint status`, the overview and the audit log.
    #[arg(long, value_name = "WHEN", value_parser = touchpoint_common::clock::parse_start)]
    clock_start: Option<i64>,
    /// Restore a backup written by `touchpoint backup` (its folder, or the
    /// repository: then its newest) into the state directory, which must
    /// be empty or missing; verified first. Then exit: start the daemon as
    /// usual afterwards.
    #[arg(long, value_name = "BACKUP")]
    restore: Option<PathBuf>,
}

fn main() -> ExitCode {
    // Before any thread starts.
    touchpointd::memory::limit_arenas();
    let args = Args::parse();
    init_logging(&args.log);
    // Before anything reads the clock.
    if let Some(at) = args.clock_start {
        match touchpoint_common::clock::set_start(at) {
            Ok(start) => tracing::warn!(
                "{}; this is a rehearsal daemon: it plans and sends by that clock",
                start.describe()
            ),
            Err(e) => {
                eprintln!("touchpointd: --clock-start: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let overrides = Overrides {
        state_dir: args.state_dir.clone(),
        socket: args.socket.clone(),
        policy_dir: args.policy_dir.clone(),
    };
    let cfg = match config::load(args.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(errs) => {
            for e in errs {
                eprintln!("touchpointd: {e}");
            }
            return ExitCode::from(2);
        }
    };
    if args.check_config {
        return match touchpointd::policy::load_dir(&cfg.policy_dir) {
            Ok(p) => {
                println!(
                    "configuration ok; policies ok: {} dealers in {} (state dir {}, socket {})",
                    p.tenants.len(),
                    cfg.policy_dir.display(),
                    cfg.state_dir.display(),
                    cfg.socket.display()
                );
                ExitCode::SUCCESS
            }
            Err(errs) => {
                for e in errs {
                    eprintln!("touchpointd: {e}");
                }
                ExitCode::from(2)
            }
        };
    }
    if let Some(from) = &args.restore {
        return restore(from, &cfg);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("touchpointd")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("touchpointd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("touchpointd: {e:#}");
            let _ = sd_notify::notify(false, &[NotifyState::Status(&format!("failed: {e}"))]);
            ExitCode::FAILURE
        }
    }
}

/// `--restore`: see [`touchpointd::backup::restore`].
fn restore(from: &Path, cfg: &config::Resolved) -> ExitCode {
    match touchpointd::backup::restore(from, &cfg.state_dir) {
        Ok(r) => {
            let m = &r.manifest;
            println!(
                "restored {} (written {}) into {}: {} stores, {} records, {} files, {} bytes; verified, counted and opened",
                r.from.display(),
                m.created_at,
                cfg.state_dir.display(),
                m.stores.len(),
                m.records(),
                m.files.len(),
                m.bytes()
            );
            let restored_key = cfg.state_dir.join(touchpointd::backup::DISPATCH_KEY);
            if m.secrets
                .iter()
                .any(|s| s == touchpointd::backup::DISPATCH_KEY)
                && cfg.dispatch.secret != restored_key
            {
                println!(
                    "note: the dispatch key was restored to {}, but the configuration reads {}: move it there, or the links in emails already sent stop working",
                    restored_key.display(),
                    cfg.dispatch.secret.display()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("touchpointd: restore: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Under systemd, stderr goes to the journal, which stamps time itself
    // and stores each line as it comes: JSON lines there, text elsewhere.
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    // Colour only for a person at a terminal: not in a file the log is
    // redirected to (the demo's daemon.log), not with NO_COLOR.
    let ansi = touchpoint_common::colour::wanted(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if journal {
        // One JSON object a line, the event's fields (tenant, request,
        // outcome, …) as keys: what a journal reader filters on.
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .without_time()
            .init();
    } else {
        builder.with_ansi(ansi).init();
    }
}

async fn serve(cfg: config::Resolved) -> anyhow::Result<()> {
    // Handlers first: a signal that arrives while the stores open must be
    // handled after start, not kill the process with the socket left behind.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (listener, owned_path) = listen(&cfg.socket, cfg.socket_mode)?;
    let shutdown = CancellationToken::new();
    let daemon = match Daemon::start(&cfg, listener, shutdown.clone()).await {
        Ok(d) => d,
        Err(e) => {
            if let Some(p) = &owned_path {
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
    };
    tracing::info!(
        socket = %cfg.socket.display(),
        state_dir = %cfg.state_dir.display(),
        policy_dir = %cfg.policy_dir.display(),
        "touchpointd {} ready",
        env!("CARGO_PKG_VERSION")
    );
    let _ = sd_notify::notify(false, &[NotifyState::Ready, NotifyState::Status("ready")]);

    let mut watchdog_usec = 0u64;
    let watchdog = sd_notify::watchdog_enabled(false, &mut watchdog_usec);
    let mut dog = tokio::time::interval(std::time::Duration::from_micros(
        (watchdog_usec / 2).max(1_000_000),
    ));
    let reloader = daemon.reloader();
    let wait = tokio::spawn(daemon.wait());
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: shutting down"); break; }
            _ = hup.recv() => {
                // The shipped unit (Type=notify, ExecReload=kill -HUP) takes
                // the service as reloading from RELOADING=1 to READY=1, so
                // READY=1 follows every reload, a refused one too.
                // MONOTONIC_USEC is read by Type=notify-reload only (systemd
                // 253+); older versions ignore it.
                let mut states = vec![NotifyState::Reloading];
                if let Ok(m) = NotifyState::monotonic_usec_now() { states.push(m); }
                let _ = sd_notify::notify(false, &states);
                let r = reloader.clone();
                match tokio::task::spawn_blocking(move || r.reload()).await {
                    Ok(Ok(())) => tracing::info!("SIGHUP: policies reloaded"),
                    Ok(Err(errs)) => for e in &errs {
                        tracing::error!("policy reload refused, previous policies stay in force: {e}");
                    },
                    Err(e) => tracing::error!("policy reload task failed: {e}"),
                }
                let _ = sd_notify::notify(false, &[NotifyState::Ready]);
            }
            _ = dog.tick(), if watchdog => { let _ = sd_notify::notify(false, &[NotifyState::Watchdog]); }
        }
    }
    let _ = sd_notify::notify(
        false,
        &[
            NotifyState::Stopping,
            NotifyState::Status("stopping: finishing in-flight work"),
        ],
    );
    shutdown.cancel();
    let r = wait.await.context("daemon task")?;
    if let Some(p) = owned_path {
        let _ = std::fs::remove_file(p);
    }
    r
}

/// The listening socket: from systemd socket activation if we were given
/// one, else bound here. Returns the path to remove on exit when we bound it.
fn listen(path: &Path, mode: u32) -> anyhow::Result<(tokio::net::UnixListener, Option<PathBuf>)> {
    if let Some(listener) = activated()? {
        tracing::info!("using the socket passed by systemd");
        return Ok((listener, None));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    remove_stale_socket(path)?;
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("cannot bind {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set mode {mode:o} on {}", path.display()))?;
    Ok((listener, Some(path.to_path_buf())))
}

/// Makes room for binding `path`: a socket nobody listens on (left by a
/// daemon that died) is removed. Anything else there is not ours to delete:
/// a root daemon that removes whatever a mistyped `socket =` points at could
/// destroy any file on the machine, so a regular file, a directory or a
/// symlink (never followed) is a start-up error.
fn remove_stale_socket(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", path.display())),
    };
    if !meta.file_type().is_socket() {
        let what = if meta.file_type().is_symlink() {
            "a symlink"
        } else if meta.is_dir() {
            "a directory"
        } else if meta.is_file() {
            "a regular file"
        } else {
            "a special file"
        };
        anyhow::bail!(
            "{} is not a socket but {what}; refusing to replace it (remove it or set another `socket`)",
            path.display()
        );
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        anyhow::bail!(
            "another touchpointd is already listening on {}",
            path.display()
        );
    }
    std::fs::remove_file(path)
        .with_context(|| format!("cannot remove the stale socket {}", path.display()))
}

fn activated() -> anyhow::Result<Option<tokio::net::UnixListener>> {
    let Some(fd) = sd_notify::listen_fds().ok().and_then(|mut fds| fds.next()) else {
        return Ok(None);
    };
    // SAFETY: systemd passed this descriptor to us (LISTEN_FDS and LISTEN_PID
    // were checked by listen_fds) and nothing else in this process owns it.
    #[allow(unsafe_code)]
    let std_listener =
        unsafe { <std::os::unix::net::UnixListener as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    std_listener.set_nonblocking(true)?;
    Ok(Some(tokio::net::UnixListener::from_std(std_listener)?))
}

//! The console logs to a file, never onto its own screen.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Mutex;

/// `$XDG_STATE_HOME/touchpoint/console.log`, else
/// `~/.local/state/touchpoint/console.log`, else a per-user file in the temp dir.
pub fn log_path() -> PathBuf {
    let state_home = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local").join("state"))
        });
    if let Some(dir) = state_home {
        let dir = dir.join("touchpoint");
        if std::fs::create_dir_all(&dir).is_ok() {
            return dir.join("console.log");
        }
    }
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("touchpoint-console-{uid}.log"))
}

fn open(path: &PathBuf) -> Option<File> {
    OpenOptions::new().create(true).append(true).open(path).ok()
}

/// Sends `tracing` output to the log file (level from `$TOUCHPOINT_LOG`,
/// default `info`). Without a writable file the console runs unlogged rather
/// than writing onto the terminal.
pub fn init() -> Option<PathBuf> {
    let path = log_path();
    let file = open(&path).or_else(|| {
        let fallback = std::env::temp_dir().join("touchpoint-console.log");
        open(&fallback)
    })?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOUCHPOINT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let result = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Mutex::new(file))
        .try_init();
    result.ok().map(|_| path)
}

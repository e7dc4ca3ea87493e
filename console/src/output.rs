//! What every subcommand shares about its output: the exit codes, the
//! `--json` switch, and writing to stdout.
//!
//! Exit codes ([`EXIT_CODES`], shown by `touchpoint --help`): 0 success;
//! 1 the daemon (or an import) said no; 2 usage errors; 3 the daemon could
//! not be reached.
//!
//! Imports nothing from this crate: `cli`, `demo` and `policy_check` all
//! write through it.

use clap::Args;

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
/// No daemon to talk to: no socket, nothing listening, the connection
/// refused, broken or timed out. Worth a retry; 1 and 2 are not.
pub const EXIT_UNREACHABLE: u8 = 3;

/// Every exit code, as `touchpoint --help` ends (and the README lists them).
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the daemon refused the request, or some of it failed (an id not acted
     on, an import or a row rejected, policy errors found)
  2  usage: bad arguments, --readonly refused a change, a file not usable
  3  the daemon is unreachable: no socket, nothing listening, the connection
     refused, broken or timed out";

#[derive(Debug, Args, Clone, Copy)]
pub struct Output {
    /// Print JSON for scripts instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Writes to stdout. A reader that went away (`touchpoint tenants | head`)
/// is not an error worth a panic or a message.
pub fn emit(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

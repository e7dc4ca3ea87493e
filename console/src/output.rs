//! What every subcommand shares about its output: the exit codes, the
//! `--json` switch, and writing to stdout.
//!
//! Exit codes: 0 success; 1 the daemon (or an import) said no; 2 usage or
//! connection errors.
//!
//! Imports nothing from this crate: `cli`, `demo` and `policy_check` all
//! write through it.

use clap::Args;

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

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

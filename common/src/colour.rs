//! Whether to write colour (ANSI escapes): only to a terminal, and never
//! when `NO_COLOR` is set to anything but the empty string
//! (<https://no-color.org>). The console's diffs and the daemon's stderr
//! log ask the same question. A leaf; no I/O: the caller says whether its
//! stream is a terminal.

use std::ffi::OsStr;

pub fn wanted(is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

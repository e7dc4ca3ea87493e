//! `touchpoint`: the operator console of touchpointd. One [`client::Client`]
//! serves the interactive console ([`tui`]), the scriptable subcommands
//! ([`cli`]), `touchpoint policy check` ([`policy_check`]) and the demo
//! ([`demo`]); those three write through [`output`] and [`mod@format`].
//! [`commands`] holds what the subcommands and the console's `:` line
//! both run (pause, resume, plan, batches, import).
//! [`simulate`] runs the daemon through a simulated season.

pub mod cli;
pub mod client;
pub mod commands;
pub mod demo;
pub mod format;
pub mod logging;
pub mod output;
pub mod policy_check;
pub mod simulate;
pub mod tui;

#[cfg(test)]
mod fixtures;

// The crate's module graph is checked by tests/layering.rs.

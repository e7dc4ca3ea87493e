//! `touchpoint`: the operator console of touchpointd. One [`client::Client`]
//! serves the interactive console ([`tui`]), the scriptable subcommands
//! ([`cli`]) and the demo ([`demo`]).

pub mod cli;
pub mod client;
pub mod demo;
pub mod format;
pub mod logging;
pub mod output;
pub mod policy_check;
pub mod tui;

#[cfg(test)]
mod fixtures;

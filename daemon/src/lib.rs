//! touchpointd: the Touchpoint daemon as a library, so the end-to-end tests
//! and the benchmarks drive the same code the binary runs.
//!
//! One module per capability, each owning its data behind a small API; the
//! control socket is a thin layer over them.

pub mod access;
pub mod approvals;
pub mod attribution;
pub mod backup;
pub mod config;
pub mod content;
pub mod control;
pub mod customer;
pub mod daemon;
pub mod dispatch;
pub mod erasure;
pub mod events;
pub mod files;
pub mod http;
pub mod identity;
pub mod import;
pub mod learning;
pub mod ledger;
pub mod memory;
pub mod overview;
pub mod planner;
pub mod policy;
pub mod queue;
pub mod render;
pub mod results;
pub mod retention;
pub mod store;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

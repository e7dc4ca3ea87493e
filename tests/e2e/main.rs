//! End-to-end tests: a real `touchpointd` (in-process, or the real binary) on
//! a temp socket, state dir and policy dir, driven through the console's
//! client library, the `touchpoint` binary and raw socket frames.
//!
//! Run with `cargo test -p touchpoint-tests`.

mod access;
mod adversarial;
mod approvals;
mod backup;
mod brand_review;
mod cli;
mod clock;
mod common;
mod console;
mod console_command;
mod console_customer;
mod console_feed;
mod console_header;
mod console_pty;
mod crash;
mod customer;
mod dispatch;
mod erasure;
mod faults;
mod history;
mod http;
mod import;
mod inbox;
mod learning;
mod lifecycle;
mod overview;
mod packaging;
mod plan;
mod policy_files;
mod policy_reload;
mod protocol;
mod responses;
mod results;
mod retention;
mod simulate;
mod today;
mod upgrade;

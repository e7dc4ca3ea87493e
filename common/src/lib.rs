//! The contract between the daemon (`touchpointd`) and the console (`touchpoint`).
//!
//! Domain types, the policy and configuration schema, the wire protocol and the
//! one codec every stored record and every socket frame goes through. Nothing in
//! here opens a file or a socket.

pub mod budget;
pub mod clock;
pub mod codec;
pub mod colour;
pub mod config;
pub mod consent;
pub mod csv_out;
pub mod date;
pub mod domain;
pub mod learning;
pub mod limits;
pub mod money;
pub mod outbox;
pub mod policy;
pub mod postage;
pub mod protocol;
pub mod queue;
pub mod render;
pub mod report;
pub mod template;
pub mod tenant;
pub mod toml_file;

pub use date::Date;
pub use tenant::{TenantId, TenantIdError};

// The crate's module graph is checked by tests/layering.rs.

//! touchpointd: the Touchpoint daemon as a library, so tests and benchmarks can
//! drive the same code the binary runs.

pub mod store;

//! Dispatch: the outbox's way out. Email over SMTP (or a local spool),
//! letters in daily print batches, call-centre task lists; bounces and
//! unsubscribes coming back.

pub mod bounce;
pub mod calls;
pub mod csv_out;
pub mod engine;
pub mod letters;
pub mod mime;
pub mod smtp;
pub mod snapshot;
pub mod spool;
pub mod throttle;
pub mod throughput;
pub mod verp;
pub use engine::{DispatchError, Dispatcher};
pub use snapshot::Snapshot;

//! Dispatch: the outbox's way out. Email over SMTP (or a local spool),
//! letters in daily print batches, call-centre task lists; bounces,
//! unsubscribes and call outcomes coming back.
//!
//! [`engine`] is the dispatcher (the loop and its steps); the other modules
//! are its edges, each a format or a transport with no state of its own:
//! [`smtp`] and [`spool`] (transports), [`mime`] and [`verp`] (the email
//! and its signed return path and unsubscribe link), [`letters`] and
//! [`calls`] (the batch files; the letters' layout is render's),
//! [`bounce`] (reading returned mail), [`throttle`] and [`throughput`]
//! (live counters). Read models see dispatch only as a [`Snapshot`].
//!
//! Renders through `render` and reads brand material through its
//! `MaterialSource`; must never import `approvals`, `control`, `overview`
//! or `content`.

pub mod bounce;
pub mod calls;
pub mod engine;
pub mod letters;
pub mod links;
pub mod mime;
pub mod smtp;
pub mod snapshot;
pub mod spool;
pub mod throttle;
pub mod throughput;
pub mod verp;
pub use engine::{Click, DispatchError, Dispatcher, OneClickTarget, Unsubscribed};
pub use snapshot::Snapshot;

//! End-to-end tests of the trust boundaries: what someone who may write to
//! a place the daemon reads (the inbox, the socket) can make it do.

mod inbox;

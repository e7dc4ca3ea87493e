//! The trust boundaries, tried as an attacker and a careless user would:
//! what someone who may write to a place the daemon reads or writes (the
//! inbox, the output folders, the socket) can make it do. One place for the cases an adversarial pass
//! found, so the next pass starts from them.

mod inbox;
mod outputs;
mod scope;
mod socket;

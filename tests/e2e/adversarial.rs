//! The trust boundaries, tried as an attacker and a careless user would:
//! what someone who may write to a place the daemon reads (the inbox, the
//! socket) can make it do. One place for the cases an adversarial pass
//! found, so the next pass starts from them.

mod inbox;
mod outside_text;
mod scope;
mod socket;

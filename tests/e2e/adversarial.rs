//! The trust boundaries, tried as an attacker and a careless user would:
//! what someone who may write to a place the daemon reads or writes (the
//! inbox, the output folders, the socket, a returned mail) can make it do.
//! One place for the cases an adversarial pass found, so the next pass
//! starts from them.

mod http;
mod inbox;
mod outputs;
mod outside_text;
mod scope;
mod socket;

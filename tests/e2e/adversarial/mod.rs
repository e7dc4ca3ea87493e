//! The trust boundaries, tried as an attacker and a careless user would:
//! one place for the cases an adversarial pass found, so the next pass
//! starts from them.

mod scope;
mod socket;

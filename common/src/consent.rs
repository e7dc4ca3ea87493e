//! Which of a person's consent statements stands. Pure rules, shared by the
//! planner (when it plans), dispatch (at send time) and the store's figures
//! (opt-in counts), so that all three read consent the same way.
//!
//! A person may have several customer numbers (identity merges). Their
//! statements on a channel are taken together: the latest one stands, and a
//! withdrawal stands against a grant made at the same moment.

use std::cmp::Reverse;
use std::collections::HashMap;

use crate::domain::{Consent, Timestamp};

/// Whether `new` replaces `old` as the statement that stands: it is later,
/// or as late and a withdrawal where `old` is a grant. Ties beyond that go
/// to the smaller customer number and source, so the choice never depends
/// on the order statements are read in.
pub fn prevails(new: &Consent, old: &Consent) -> bool {
    fn rank(c: &Consent) -> (Timestamp, bool, Reverse<&str>, Reverse<&str>) {
        (
            c.at,
            !c.granted,
            Reverse(c.customer_no.as_str()),
            Reverse(c.source.as_str()),
        )
    }
    rank(new) > rank(old)
}

/// The statement that stands among all of a person's statements on one
/// channel (see [`prevails`]).
pub fn standing<'a>(statements: impl IntoIterator<Item = &'a Consent>) -> Option<&'a Consent> {
    statements.into_iter().fold(None, |best, c| match best {
        Some(b) if !prevails(c, b) => Some(b),
        _ => Some(c),
    })
}

/// Follows merge chains (a merged into b merged into c) to the final
/// survivor; `merged_into` maps a merged customer number to the one it was
/// merged into.
pub fn survivor<'a>(merged_into: &'a HashMap<String, String>, no: &'a str) -> &'a str {
    let mut cur = no;
    for _ in 0..16 {
        match merged_into.get(cur) {
            Some(next) => cur = next,
            None => break,
        }
    }
    cur
}

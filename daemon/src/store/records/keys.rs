//! The keys of the dealer's trees, encoded in this one place.
//!
//! The layouts are in the tree table of `tenant.rs`; a change here changes
//! it. Integers are big-endian and dates [`touchpoint_common::Date::key_bytes`].
//! Customer numbers are validated by import to contain no control bytes, so
//! the 0x00 separator is unambiguous.
//!
//! A leaf: uses nothing of the store.

use touchpoint_common::domain::{Channel, ServiceVisit};
use touchpoint_common::report::ReportedResponse;

/// `meta` key: the record counts ([`super::Counters`]).
pub(super) const META_COUNTERS: &[u8] = b"counters";
/// `meta` key: the last import id given out (u64).
pub(super) const META_NEXT_IMPORT: &[u8] = b"next_import_id";
/// `meta` key: the last merge id given out (u64).
pub(super) const META_NEXT_MERGE: &[u8] = b"next_merge_id";
/// `meta` key: bumped by writes that leave the counters alone (u64).
pub(super) const META_GENERATION: &[u8] = b"generation";
/// `meta` key: the trackers written down when the store last closed
/// (`changes.rs`, `Records::park`); removed when it opens.
pub(super) const META_PARKED: &[u8] = b"parked_standing";
/// `meta` key: an earlier version's marker of an import interrupted after
/// its commit point (the report to complete it with).
pub(super) const META_PENDING: &[u8] = b"pending_import";

/// `as_of` key of a customer: `c`, 0, the customer number.
pub(super) fn as_of_customer(customer_no: &str) -> Vec<u8> {
    composite(b"c", customer_no.as_bytes())
}

/// `as_of` key of a vehicle: `v`, 0, the VIN.
pub(super) fn as_of_vehicle(vin: &str) -> Vec<u8> {
    composite(b"v", vin.as_bytes())
}

/// Every key of one customer in `owner` and `consents`.
pub(super) fn customer_prefix(customer_no: &str) -> Vec<u8> {
    let mut k = customer_no.as_bytes().to_vec();
    k.push(0);
    k
}

/// A bad address as it is looked up.
pub(super) fn address(address: &str) -> Vec<u8> {
    address.trim().to_lowercase().into_bytes()
}

pub(super) fn composite(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + 1 + b.len());
    k.extend_from_slice(a);
    k.push(0);
    k.extend_from_slice(b);
    k
}

pub(super) fn consent_key(customer_no: &str, channel: Channel) -> Vec<u8> {
    composite(customer_no.as_bytes(), &[channel as u8])
}

pub(super) fn visit_key(v: &ServiceVisit) -> Vec<u8> {
    let mut k = Vec::with_capacity(v.vin.len() + 4 + v.kind.len());
    k.extend_from_slice(v.vin.as_bytes());
    k.extend_from_slice(&v.date.key_bytes());
    k.extend_from_slice(v.kind.as_bytes());
    k
}

/// One response per customer, vehicle, day and kind: the same row in a
/// later file is the same response.
pub(super) fn response_key(r: &ReportedResponse) -> Vec<u8> {
    let mut k = composite(r.customer_no.as_bytes(), r.vin.as_bytes());
    k.push(0);
    k.extend_from_slice(&r.date.key_bytes());
    k.push(r.kind as u8);
    k
}

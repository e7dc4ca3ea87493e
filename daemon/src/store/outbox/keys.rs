//! The keys of the outbox's trees, encoded and decoded in this one place,
//! and where a message in a given state is indexed.
//!
//! The layouts are in the tree table of `tenant.rs`; a change here changes
//! it. Integers are big-endian and days are [`Date::key_bytes`], so every
//! scan runs in key order. Customer numbers contain no control bytes (import
//! validates them), so the 0x00 after a recipient is unambiguous.
//!
//! A leaf: uses nothing of the store.

use touchpoint_common::domain::Channel;
use touchpoint_common::outbox::{Message, MessageStatus};
use touchpoint_common::Date;

/// `meta` key: the last message id given out (u64).
pub(super) const NEXT_MESSAGE: &[u8] = b"next_message_id";
/// `meta` key: what the last planning run saw (u64, see the planner).
pub(super) const PLAN_STAMP: &[u8] = b"plan_stamp";
/// `meta` key: the tenant's responses by month, as the last attribution
/// pass counted them (`ResponseMonths`).
pub(super) const RESPONSE_MONTHS: &[u8] = b"response_months";

pub(super) fn id(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// Every contact of one recipient.
pub(super) fn contact_prefix(recipient: &str) -> Vec<u8> {
    let mut k = recipient.as_bytes().to_vec();
    k.push(0);
    k
}

pub(super) fn contact(recipient: &str, day: Date, id: u64) -> Vec<u8> {
    let mut k = contact_prefix(recipient);
    k.extend_from_slice(&day.key_bytes());
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The send day and id of a contact key, given without its recipient prefix.
pub(super) fn contact_rest(rest: &[u8]) -> Option<(Date, u64)> {
    Some((date_at(rest, 0)?, id_at(rest, 4)?))
}

pub(super) fn day(day: Date, id: u64) -> [u8; 12] {
    let mut k = [0; 12];
    k[..4].copy_from_slice(&day.key_bytes());
    k[4..].copy_from_slice(&id.to_be_bytes());
    k
}

/// The first `by_day` key of a day.
pub(super) fn day_from(day: Date) -> [u8; 4] {
    day.key_bytes()
}

pub(super) fn day_of(k: &[u8]) -> Option<Date> {
    date_at(k, 0)
}

pub(super) fn day_id(k: &[u8]) -> Option<u64> {
    id_at(k, 4)
}

pub(super) fn queue(channel: Channel, due: i64, id: u64) -> [u8; 17] {
    let mut k = [0; 17];
    k[0] = channel as u8;
    k[1..9].copy_from_slice(&(due.max(0) as u64).to_be_bytes());
    k[9..].copy_from_slice(&id.to_be_bytes());
    k
}

/// When a queued message is due (unix ms) and its id.
pub(super) fn queue_due(k: &[u8]) -> Option<i64> {
    id_at(k, 1).map(|d| d as i64)
}

pub(super) fn queue_id(k: &[u8]) -> Option<u64> {
    id_at(k, 9)
}

pub(super) fn inflight_id(k: &[u8]) -> Option<u64> {
    id_at(k, 0)
}

/// The id of an `outbox` key.
pub(super) fn id_of(k: &[u8]) -> Option<u64> {
    id_at(k, 0)
}

pub(super) fn ledger(month: u32, service: &str) -> Vec<u8> {
    let mut k = month.to_be_bytes().to_vec();
    k.extend_from_slice(service.as_bytes());
    k
}

/// The month and service of a ledger key.
pub(super) fn ledger_row(k: &[u8]) -> Option<(u32, String)> {
    let month = <[u8; 4]>::try_from(k.get(..4)?).ok()?;
    Some((
        u32::from_be_bytes(month),
        String::from_utf8_lossy(&k[4..]).into_owned(),
    ))
}

pub(super) fn daily(day: Date) -> [u8; 4] {
    day.key_bytes()
}

/// A big-endian u64 value (an occasion's message, a counter).
pub(super) fn u64_value(v: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(v).ok().map(u64::from_be_bytes)
}

fn id_at(k: &[u8], at: usize) -> Option<u64> {
    k.get(at..at + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
}

fn date_at(k: &[u8], at: usize) -> Option<Date> {
    let raw = u32::from_be_bytes(k.get(at..at + 4)?.try_into().ok()?) ^ 0x8000_0000;
    Some(Date::from_days(raw as i32))
}

/// The index entries a message in a given state has.
#[derive(Default)]
pub(super) struct Keys {
    pub(super) by_day: Option<[u8; 12]>,
    pub(super) queue: Option<[u8; 17]>,
    pub(super) inflight: bool,
    pub(super) contact: Option<Vec<u8>>,
}

impl Keys {
    /// Where `m` is indexed as it stands.
    pub(super) fn of(m: &Message) -> Self {
        Self::as_if(m, m.status)
    }

    /// Where `m` would be indexed were its status `status`.
    pub(super) fn as_if(m: &Message, status: MessageStatus) -> Self {
        use MessageStatus as S;
        let due = m.dispatch.retry_at.map(|t| t.0).unwrap_or(0);
        Self {
            by_day: status.is_revisable().then(|| day(m.send_on, m.id)),
            queue: matches!(status, S::Queued | S::Deferred).then(|| queue(m.channel, due, m.id)),
            inflight: status == S::Sending,
            contact: status
                .is_contact()
                .then(|| contact(&m.recipient, m.send_on, m.id)),
        }
    }
}

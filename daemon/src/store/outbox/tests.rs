//! The outbox against records it cannot read back, and writes that would
//! make one.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use touchpoint_common::codec::MAX_RECORD_BYTES;
use touchpoint_common::domain::{Channel, Timestamp};
use touchpoint_common::outbox::{Message, MessageStatus, Occasion};
use touchpoint_common::policy::OccasionKind;
use touchpoint_common::{Date, TenantId};

use super::write::{Change, PlanWrite};
use super::Outbox;
use crate::store::db::TenantDb;

fn open(dir: &std::path::Path) -> Outbox {
    let db = TenantDb::open(
        TenantId::new("d001").unwrap(),
        dir,
        1 << 20,
        Arc::new(crate::events::Events::new()),
    )
    .unwrap();
    Outbox::open(Arc::new(db)).unwrap()
}

fn planned(id: u64) -> Message {
    let on = Date::from_ymd(2026, 12, 1).unwrap();
    Message {
        id,
        message_id: format!("<tp.d001.{id}@test>"),
        recipient: format!("K{id}"),
        channel: Channel::Post,
        service: "service_due".into(),
        template: "service_due".into(),
        occasions: vec![Occasion {
            key: format!("service_due:V{id}:2025-01-01"),
            service: "service_due".into(),
            kind: OccasionKind::ServiceDue,
            vin: Some(format!("V{id}")),
            due: on,
            reason: "due".into(),
            value: 3800,
        }],
        send_on: on,
        send_at: 540,
        cost: 95,
        value: 3800,
        status: MessageStatus::Planned,
        why: Vec::new(),
        planned_at: Timestamp(0),
        policy: 1,
        history: Vec::new(),
        dispatch: Default::default(),
    }
}

fn plan(ob: &Outbox, messages: &[Message]) {
    ob.commit_plan(&PlanWrite {
        new: messages,
        revised: &[],
        stamp: 1,
    })
    .unwrap();
}

/// A message that does not decode (written by a build that stored what it
/// could not read back, or damaged) is left out of the index and reported
/// by id; the tenant's other messages are listed as before, and reading
/// that one message is a clear error.
#[test]
fn a_message_that_does_not_decode_is_left_out_of_the_index_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let ob = open(dir.path());
    plan(&ob, &[planned(1), planned(2), planned(4)]);
    // With sled directly: no writer of ours stores this.
    ob.outbox
        .insert(3u64.to_be_bytes(), &b"\x01\xff\xff\xff\xff"[..])
        .unwrap();
    let listed = ob.with_index(|ix| ix.len()).expect("the index builds");
    assert_eq!(listed, 3);
    assert_eq!(
        ob.with_index(|ix| ix.unreadable().to_vec()).unwrap(),
        vec![3]
    );
    let e = ob.message(3).expect_err("no message from garbage");
    assert!(
        e.to_string().starts_with("corrupt record in outbox: "),
        "{e}"
    );
    assert_eq!(ob.message(4).unwrap().map(|m| m.id), Some(4));
}

/// A write that would store a message larger than a store reads back is
/// refused, whole: nothing of its group is written, and the outbox stays
/// readable.
#[test]
fn a_message_too_large_to_read_back_is_refused_at_write_and_nothing_of_its_group_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let ob = open(dir.path());
    plan(&ob, &[planned(1), planned(2)]);
    let small = ob.message(1).unwrap().unwrap();
    let big = ob.message(2).unwrap().unwrap();
    let mut grown = big.clone();
    grown.occasions[0].reason = "r".repeat(MAX_RECORD_BYTES);
    let mut queued = small.clone();
    queued.status = MessageStatus::Cancelled;
    let e = ob
        .apply(&[
            Change::new(small.clone(), queued),
            Change::new(big.clone(), grown),
        ])
        .expect_err("refused");
    assert!(e.to_string().contains("too large"), "{e}");
    assert_eq!(ob.message(1).unwrap(), Some(small));
    assert_eq!(ob.message(2).unwrap(), Some(big));
    assert_eq!(ob.with_index(|ix| ix.len()).unwrap(), 2);
}

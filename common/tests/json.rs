//! The two forms of dates, times, months, timestamps and money: readable
//! where the format is human-readable (`touchpoint … --json`, serde_json),
//! the same bytes as before on the wire and on disk (bincode). Each form
//! reads back what it writes.

use serde::{Deserialize, Serialize};
use touchpoint_common::codec::{decode_frame, encode_frame};
use touchpoint_common::domain::Timestamp;
use touchpoint_common::money::Money;
use touchpoint_common::protocol::{CostRow, QueueRow};
use touchpoint_common::Date;

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("json")
}

fn round_trip<T>(v: &T)
where
    T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
{
    let back: T = serde_json::from_str(&json(v)).expect("json reads back");
    assert_eq!(&back, v);
    let back: T = decode_frame(&encode_frame(v).expect("encode")).expect("decode");
    assert_eq!(&back, v);
}

#[test]
fn dates_timestamps_and_money_are_readable_in_json() {
    let day = Date::from_ymd(2026, 12, 7).expect("date");
    assert_eq!(json(&day), r#""2026-12-07""#);
    // 2026-12-07 08:00 in Berlin.
    let t = Timestamp(1_796_626_800_000);
    assert_eq!(json(&t), r#""2026-12-07T07:00:00+00:00""#);
    assert_eq!(
        json(&Timestamp(1_796_626_800_250)),
        r#""2026-12-07T07:00:00.250+00:00""#
    );
    assert_eq!(json(&Money(1230)), r#"{"amount":"12.30","currency":"EUR"}"#);
    assert_eq!(json(&Money(5)), r#"{"amount":"0.05","currency":"EUR"}"#);
    for v in [day, Date::from_ymd(1, 1, 1).expect("date")] {
        round_trip(&v);
    }
    for v in [t, Timestamp(1_796_626_800_250), Timestamp(0)] {
        round_trip(&v);
    }
    for v in [Money(0), Money(5), Money(1230), Money(100_000_000)] {
        round_trip(&v);
    }
    // Another offset is the same moment.
    let back: Timestamp = serde_json::from_str(r#""2026-12-07T08:00:00+01:00""#).expect("offset");
    assert_eq!(back, t);
}

#[test]
fn bad_readable_forms_are_refused_with_what_was_expected() {
    let e = serde_json::from_str::<Date>(r#""07.12.2026""#).expect_err("german date");
    assert!(e.to_string().contains("YYYY-MM-DD"), "{e}");
    let e = serde_json::from_str::<Date>("739971").expect_err("day number");
    assert!(e.to_string().contains("string"), "{e}");
    let e = serde_json::from_str::<Timestamp>(r#""2026-12-07 08:00""#).expect_err("no offset");
    assert!(e.to_string().contains("RFC 3339"), "{e}");
    let e = serde_json::from_str::<Money>(r#"{"amount":"12.30","currency":"USD"}"#)
        .expect_err("currency");
    assert!(e.to_string().contains("EUR"), "{e}");
}

/// A queue row as the protocol had it before its JSON became readable:
/// plain numbers throughout.
#[derive(Serialize)]
struct PlainQueueRow<'a> {
    tenant: &'a str,
    id: u64,
    status: u32,
    channel: u32,
    service: &'a str,
    template: &'a str,
    send_on: i32,
    send_at: u16,
    recipient: &'a str,
    name: &'a str,
    address: &'a str,
    cost: i64,
    attempts: u32,
    last_error: &'a str,
    updated_at: i64,
    town: &'a str,
}

fn queue_row() -> QueueRow {
    QueueRow {
        tenant: touchpoint_common::TenantId::new("d001").expect("id"),
        id: 42,
        status: touchpoint_common::outbox::MessageStatus::Held,
        channel: touchpoint_common::domain::Channel::Post,
        service: "inspection".into(),
        template: "inspection_letter".into(),
        send_on: Date::from_ymd(2026, 12, 7).expect("date"),
        send_at: 8 * 60 + 30,
        recipient: "K-1001".into(),
        name: "Jürgen Weiß".into(),
        address: "Hauptstr. 1, 50667 Köln".into(),
        cost: 95,
        attempts: 0,
        last_error: String::new(),
        updated_at: Timestamp(1_796_626_800_000),
        town: "50667 Köln".into(),
    }
}

#[test]
fn the_wire_form_is_the_plain_numbers_it_always_was() {
    let row = queue_row();
    let plain = PlainQueueRow {
        tenant: "d001",
        id: 42,
        status: row.status as u32,
        channel: row.channel as u32,
        service: "inspection",
        template: "inspection_letter",
        send_on: row.send_on.days(),
        send_at: 510,
        recipient: "K-1001",
        name: "Jürgen Weiß",
        address: "Hauptstr. 1, 50667 Köln",
        cost: 95,
        attempts: 0,
        last_error: "",
        updated_at: 1_796_626_800_000,
        town: "50667 Köln",
    };
    assert_eq!(
        encode_frame(&row).expect("row"),
        encode_frame(&plain).expect("plain")
    );
    round_trip(&row);
}

#[test]
fn times_months_and_cents_fields_are_readable_in_json() {
    let v: serde_json::Value = serde_json::to_value(queue_row()).expect("json");
    assert_eq!(v["send_on"], "2026-12-07");
    assert_eq!(v["send_at"], "08:30");
    assert_eq!(
        v["cost"],
        serde_json::json!({"amount": "0.95", "currency": "EUR"})
    );
    assert_eq!(v["status"], "held");
    assert_eq!(v["updated_at"], "2026-12-07T07:00:00+00:00");

    let row = CostRow {
        tenant: touchpoint_common::TenantId::new("d001").expect("id"),
        month: 202_612,
        service: "inspection".into(),
        reserved: 1_250,
        booked: 0,
        brand: 0,
        dealer: -5,
        budget: None,
    };
    let v: serde_json::Value = serde_json::to_value(&row).expect("json");
    assert_eq!(v["month"], "2026-12");
    assert_eq!(v["reserved"]["amount"], "12.50");
    assert_eq!(v["dealer"]["amount"], "-0.05");
    assert_eq!(v["budget"], serde_json::Value::Null);
    round_trip(&row);
    round_trip(&CostRow {
        budget: Some(10_000),
        ..row
    });
}

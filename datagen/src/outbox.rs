//! Outbox messages in bulk, for benchmarks of what reads the outbox (the
//! queue, the console): deterministic, cheap, and varied the way a busy
//! outbox is.

use touchpoint_common::domain::{Channel, Timestamp};
use touchpoint_common::outbox::{Message, MessageStatus};
use touchpoint_common::queue::STATUSES;
use touchpoint_common::Date;

pub const SERVICES: [&str; 6] = [
    "service_due",
    "inspection",
    "birthday",
    "tyres",
    "recall",
    "campaign_winter",
];

/// Message `id` of a tenant's outbox: every status, channel and one of six
/// services in turn, send days through 2026, emails that went out with an
/// address and, when deferred or failed, the relay's answer.
pub fn message(tenant: &str, id: u64) -> Message {
    let n = id as usize;
    // Control records are no messages of a busy outbox: the figures stay
    // comparable with those measured before they existed.
    let statuses = &STATUSES[..STATUSES.len() - 1];
    let status = statuses[n * 7 % statuses.len()];
    let channel = Channel::ALL[n % 3];
    let service = SERVICES[n * 13 % SERVICES.len()];
    let went = !matches!(status, MessageStatus::Planned | MessageStatus::Rendered);
    let mut m = Message {
        id,
        message_id: format!("<tp.{tenant}.{id}@example.de>"),
        recipient: format!("K{:07}", id % 400_000),
        channel,
        service: service.into(),
        template: service.into(),
        occasions: Vec::new(),
        send_on: Date::from_ymd(2026, 1, 1)
            .map(|d| d.add_days((n % 365) as i32))
            .unwrap_or_else(Date::today),
        send_at: 540,
        cost: 95,
        value: 0,
        status,
        why: Vec::new(),
        planned_at: Timestamp(1_760_000_000_000),
        policy: 1,
        history: Vec::new(),
        dispatch: Default::default(),
    };
    if went && channel == Channel::Email {
        m.dispatch.address = format!("kunde{}@mail-{}.example.de", id % 400_000, n % 50);
        m.dispatch.last_error = match status {
            MessageStatus::Deferred => "451 4.7.1 Greylisted, please try again later".into(),
            MessageStatus::Failed => "550 5.1.1 <user> Recipient address rejected".into(),
            _ => String::new(),
        };
        m.dispatch.retry_at = Some(Timestamp(1_760_000_000_000));
    }
    m
}

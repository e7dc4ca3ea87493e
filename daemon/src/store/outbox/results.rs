//! What results reports are computed from: one [`ResultRow`] per message
//! that went out and per control record, with the response credited to it
//! (see `crate::attribution` for how a response is credited).
//!
//! A message "went out" when its history shows it handed to its transport
//! (`sent`): it is still `sent` (delivered), or it was sent and came back
//! (`failed` or replaced by a letter after a bounce: bounced). A message
//! refused before it left is no exposure and has no row. A control record
//! counts from the day it would have gone out.
//!
//! Reads through the tenant's public API only (messages, credits,
//! consents): it writes nothing.

use std::collections::HashMap;

use touchpoint_common::domain::{Channel, Timestamp};
use touchpoint_common::money::Money;
use touchpoint_common::outbox::{Message, MessageStatus};
use touchpoint_common::report::ResultRow;
use touchpoint_common::Date;

// By their own paths, not through the store's root, which re-exports
// this file's functions: the store's parts form no circle.
use crate::store::error::Result;
use crate::store::tenant::TenantStore;

/// When the message was handed to its transport, if it ever was: the
/// newest move *into* `sent` in its history (lines written later about a
/// sent message, a call outcome or a credited response, carry the status
/// it has and are no sending), else (a history cut in the middle) its
/// first attempt.
pub fn sent_at(m: &Message) -> Option<Timestamp> {
    let h = &m.history;
    (0..h.len())
        .rev()
        .find(|&i| h[i].1 == MessageStatus::Sent && (i == 0 || h[i - 1].1 != MessageStatus::Sent))
        .map(|i| h[i].0)
        .or_else(|| {
            (m.status == MessageStatus::Sent)
                .then_some(m.dispatch.first_attempt)
                .flatten()
        })
}

/// The day of a timestamp in the daemon's local time zone, as send days
/// and imported dates are.
pub fn local_day(t: Timestamp) -> Option<Date> {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_millis_opt(t.0)
        .single()
        .map(|d| Date::from(d.date_naive()))
}

/// A message's send moment: its send day and minute in the daemon's local
/// time, as the send windows are. Dispatch releases a message at it; a
/// control record's message would have gone out at it.
pub fn send_moment(m: &Message) -> Timestamp {
    use chrono::TimeZone;
    let naive =
        m.send_on
            .naive()
            .and_hms_opt(u32::from(m.send_at / 60), u32::from(m.send_at % 60), 0);
    Timestamp(
        naive
            .and_then(|n| chrono::Local.from_local_datetime(&n).earliest())
            .map(|t| t.timestamp_millis())
            .unwrap_or(0),
    )
}

/// The occasion a message is measured by: the one of its leading service
/// (the service that pays and whose template leads), else its first.
/// The due date of the occasion a message is for: its lead service's.
pub fn lead_due(m: &Message) -> Date {
    m.occasions
        .iter()
        .find(|o| o.service == m.service)
        .or_else(|| m.occasions.first())
        .map(|o| o.due)
        .unwrap_or(m.send_on)
}

impl TenantStore {
    /// One row per message that went out and per control record whose
    /// (would-be) sending day lies in `from..=to`, oldest message first.
    pub fn result_rows(&self, from: Date, to: Date) -> Result<Vec<ResultRow>> {
        let credits = self.credits()?;
        let tracking = self.all_tracking()?;
        let mut rows = Vec::new();
        // Per recipient, every email that went out (its row, if it is in
        // the period, and its time): an unsubscribe is put on the last
        // email before it, whatever the period, so that two reports never
        // put one unsubscribe on two emails.
        let mut emails: HashMap<String, Vec<(Option<usize>, Timestamp)>> = HashMap::new();
        for m in self.messages() {
            let m = m?;
            let (at, channel) = match m.status {
                MessageStatus::Control => (send_moment(&m), None),
                _ => match sent_at(&m) {
                    Some(at) => (at, Some(m.channel)),
                    None => continue,
                },
            };
            let Some(day) = local_day(at) else { continue };
            let inside = day >= from && day <= to;
            if channel == Some(Channel::Email) {
                emails
                    .entry(m.recipient.clone())
                    .or_default()
                    .push((inside.then_some(rows.len()), at));
            }
            if !inside {
                continue;
            }
            let due = lead_due(&m);
            let went_out = channel.is_some();
            rows.push(ResultRow {
                service: m.service.clone(),
                channel,
                due,
                sent_at: at,
                lead_days: due.days() - day.days(),
                cost: Money(if went_out { m.dispatch.booked } else { 0 }),
                delivered: m.status == MessageStatus::Sent,
                bounced: went_out
                    && matches!(m.status, MessageStatus::Failed | MessageStatus::Fallback),
                unsubscribed: false,
                response: credits.get(&m.id).cloned(),
                clicks: tracking.get(&m.id).map_or(0, |t| t.clicks),
                time_known: !m.from_send_history(),
                sent_now: m.sent_now(),
                id: m.id,
                planned_at: Some(send_moment(&m)),
                planned_on: local_day(m.planned_at),
                // A bundle's lead line is that of the occasion it was
                // shaped from, which need not be the one it is measured by
                // (`lead_due`): only a message of one occasion says its.
                planned_lead: (m.occasions.len() == 1).then(|| m.planned_lead()).flatten(),
            });
        }
        for (recipient, sent) in &emails {
            let Some(c) = self.consent(recipient, Channel::Email)? else {
                continue;
            };
            // Only the recipient's own answer to an email counts: a
            // withdrawal from a dealer's export or a phone call is no
            // unsubscribe from a message.
            let answer = c.source == "one-click" || c.source.starts_with("unsubscribe mail");
            if c.granted || !answer {
                continue;
            }
            let last = sent
                .iter()
                .filter(|(_, at)| *at <= c.at)
                .max_by_key(|s| s.1);
            if let Some((Some(row), _)) = last {
                rows[*row].unsubscribed = true;
            }
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use touchpoint_common::outbox::{Dispatch, Message, MessageStatus as S};

    use super::*;

    #[test]
    fn sent_is_the_newest_move_into_sent_not_a_later_line_about_it() {
        let mut m = Message {
            id: 1,
            message_id: "<1@test>".into(),
            recipient: "K1".into(),
            channel: Channel::Email,
            service: "s".into(),
            template: "s".into(),
            occasions: Vec::new(),
            send_on: Date::from_ymd(2026, 1, 1).expect("day"),
            send_at: 0,
            cost: 0,
            value: 0,
            status: S::Sent,
            why: Vec::new(),
            planned_at: Timestamp(0),
            policy: 0,
            history: vec![
                (Timestamp(1), S::Planned, "planned".into()),
                (Timestamp(2), S::Sending, "claimed".into()),
                (Timestamp(3), S::Failed, "550".into()),
                (Timestamp(4), S::Queued, "retried".into()),
                (Timestamp(5), S::Sent, "250 ok".into()),
                (Timestamp(9), S::Sent, "response: service visit".into()),
            ],
            dispatch: Dispatch::default(),
        };
        assert_eq!(sent_at(&m), Some(Timestamp(5)));
        m.history.truncate(4);
        m.status = S::Queued;
        assert_eq!(sent_at(&m), None);
    }
}

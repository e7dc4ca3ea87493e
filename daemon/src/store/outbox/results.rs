//! What the results reports count, read from the outbox: one
//! [`ResultRow`] per message that went out. A message went out when a
//! transport took it (it reached `sent`), or when the relay refused it for
//! good after it was handed over (failed or replaced by a letter after at
//! least one attempt). Messages still waiting, held, cancelled before
//! sending or never attempted are not exposures and are not counted.
//!
//! Responses and control-group members are not stored yet: every row has
//! `response: None` and there are no control rows.

use chrono::TimeZone;
use touchpoint_common::domain::Timestamp;
use touchpoint_common::money::Money;
use touchpoint_common::outbox::{Message, MessageStatus as S};
use touchpoint_common::report::ResultRow;
use touchpoint_common::Date;

use super::super::error::{Result, StoreError};
use super::Outbox;

/// The history line dispatch adds when an unsubscribe mail names a message.
const UNSUBSCRIBED: &str = "recipient unsubscribed";

impl Outbox {
    /// Rows of the messages that went out on a local day in `from..=to`.
    /// A message that does not decode is skipped and logged, never a stop.
    pub(in crate::store) fn result_rows(&self, from: Date, to: Date) -> Result<Vec<ResultRow>> {
        let mut rows = Vec::new();
        for m in self.messages() {
            let m = match m {
                Ok(m) => m,
                Err(e @ StoreError::Codec { .. }) => {
                    tracing::warn!(error = %e, "a message that cannot be read is left out of the results");
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Some(row) =
                row_of(&m).filter(|r| local_date(r.sent_at).is_some_and(|d| d >= from && d <= to))
            {
                rows.push(row);
            }
        }
        Ok(rows)
    }
}

fn local_date(t: Timestamp) -> Option<Date> {
    chrono::Local
        .timestamp_millis_opt(t.0)
        .single()
        .map(|t| Date::from(t.date_naive()))
}

/// The row of a message, if it went out.
fn row_of(m: &Message) -> Option<ResultRow> {
    let accepted = m
        .history
        .iter()
        .find(|(_, s, _)| *s == S::Sent)
        .map(|h| h.0);
    let refused = matches!(m.status, S::Failed | S::Fallback) && m.dispatch.attempts > 0;
    let sent_at = match (accepted, m.status) {
        (Some(at), _) => at,
        // The history keeps its first and newest lines only: a message
        // that is sent now was sent, even if the line was cut.
        (None, S::Sent) => m.dispatch.first_attempt.or(m.history.last().map(|h| h.0))?,
        (None, _) if refused => m.dispatch.first_attempt?,
        (None, _) => return None,
    };
    let bounced = matches!(m.status, S::Failed | S::Fallback);
    let due = m.occasions.first().map_or(m.send_on, |o| o.due);
    let lead_days = local_date(sent_at).map_or(0, |d| due.days() - d.days());
    Some(ResultRow {
        service: m.service.clone(),
        channel: Some(m.channel),
        due,
        sent_at,
        lead_days,
        cost: Money(m.dispatch.booked),
        delivered: m.status == S::Sent,
        bounced,
        unsubscribed: m
            .history
            .iter()
            .any(|(_, _, why)| why.starts_with(UNSUBSCRIBED)),
        response: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use touchpoint_common::domain::Channel;
    use touchpoint_common::outbox::{Dispatch, Occasion};
    use touchpoint_common::policy::OccasionKind;

    fn noon(d: Date) -> Timestamp {
        Timestamp(Timestamp::from_date(d).0 + 12 * 3_600_000)
    }

    fn message(status: S, history: &[S], attempts: u32) -> Message {
        let day = Date::from_ymd(2027, 1, 4).expect("date");
        Message {
            id: 1,
            message_id: String::new(),
            recipient: "100".into(),
            channel: Channel::Email,
            service: "hu_reminder".into(),
            template: "hu_reminder".into(),
            occasions: vec![Occasion {
                key: "k".into(),
                service: "hu_reminder".into(),
                kind: OccasionKind::InspectionDue,
                vin: None,
                due: day.add_days(28),
                reason: String::new(),
                value: 0,
            }],
            send_on: day,
            send_at: 600,
            cost: 2,
            value: 0,
            status,
            why: vec![],
            planned_at: Timestamp::from_date(day),
            policy: 0,
            history: history
                .iter()
                .map(|s| (noon(day), *s, String::new()))
                .collect(),
            dispatch: Dispatch {
                attempts,
                first_attempt: (attempts > 0).then(|| noon(day)),
                booked: 2,
                ..Dispatch::default()
            },
        }
    }

    #[test]
    fn only_messages_handed_to_a_transport_are_rows() {
        let sent = row_of(&message(S::Sent, &[S::Planned, S::Sending, S::Sent], 1)).expect("row");
        assert!(sent.delivered && !sent.bounced && !sent.unsubscribed);
        assert_eq!(
            (sent.lead_days, sent.cost, sent.response.clone()),
            (28, Money(2), None)
        );
        assert_eq!(sent.channel, Some(Channel::Email));

        let bounced =
            row_of(&message(S::Failed, &[S::Sending, S::Sent, S::Failed], 1)).expect("row");
        assert!(bounced.bounced && !bounced.delivered);
        let refused = row_of(&message(S::Failed, &[S::Sending, S::Failed], 1)).expect("row");
        assert!(refused.bounced);

        for (status, history) in [
            (S::Queued, &[S::Planned, S::Queued][..]),
            (S::Cancelled, &[S::Planned, S::Cancelled][..]),
            (S::Held, &[S::Planned, S::Held][..]),
        ] {
            assert_eq!(row_of(&message(status, history, 0)), None, "{status:?}");
        }
        // Failed before any attempt (no address): never went out.
        assert_eq!(
            row_of(&message(S::Failed, &[S::Planned, S::Failed], 0)),
            None
        );
    }

    #[test]
    fn an_unsubscribe_line_marks_the_row() {
        let mut m = message(S::Sent, &[S::Sent], 1);
        m.history.push((
            Timestamp(0),
            S::Sent,
            "recipient unsubscribed from email".into(),
        ));
        assert!(row_of(&m).expect("row").unsubscribed);
    }
}

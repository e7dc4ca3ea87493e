//! What still waits to go out, and when: from the queue, the first day a
//! waiting message is due on, its first and last send time, and how many
//! emails, letters and call tasks wait for that day.

use touchpoint_common::domain::Channel;
use touchpoint_common::outbox::MessageStatus;
use touchpoint_common::queue::QueueFilter;
use touchpoint_common::Date;

use crate::client::Client;
use crate::format::thousands;

/// Messages not yet sent that will go out by themselves (held ones wait for
/// an operator, not for a moment).
const WAITING: [MessageStatus; 4] = [
    MessageStatus::Planned,
    MessageStatus::Rendered,
    MessageStatus::Queued,
    MessageStatus::Deferred,
];
/// The daemon's largest queue page.
const PAGE: u32 = 1_000;

/// The first day something waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct NextSend {
    pub day: Date,
    /// The earliest and latest send time that day, minutes after midnight.
    pub first: u16,
    pub last: u16,
    pub emails: u64,
    pub letters: u64,
    pub calls: u64,
}

impl NextSend {
    /// `Mon 2026-12-07 08:00`.
    pub fn shown(&self, minutes: u16) -> String {
        format!(
            "{} {}",
            self.day.naive().format("%a"),
            self.argument(minutes)
        )
    }

    /// `2026-12-07 08:00`, local time, as `touchpointd --clock-start` takes it.
    pub fn argument(&self, minutes: u16) -> String {
        format!("{} {:02}:{:02}", self.day, minutes / 60, minutes % 60)
    }

    pub fn messages(&self) -> u64 {
        self.emails + self.letters + self.calls
    }

    /// `next send: Mon 2026-12-07 08:00, 2,577 emails, 2,761 letters`.
    pub fn line(&self) -> String {
        let mut s = format!(
            "next send: {}, {} emails, {} letters",
            self.shown(self.first),
            thousands(self.emails),
            thousands(self.letters)
        );
        if self.calls > 0 {
            let plural = if self.calls == 1 { "" } else { "s" };
            s.push_str(&format!(", {} call task{plural}", thousands(self.calls)));
        }
        s
    }
}

/// The first day a waiting message of the caller's scope is due on, or
/// `None` when nothing waits.
pub(super) async fn next_send(client: &mut Client) -> anyhow::Result<Option<NextSend>> {
    let filter = QueueFilter {
        statuses: WAITING.to_vec(),
        ..QueueFilter::default()
    };
    let mut next: Option<NextSend> = None;
    let mut offset = 0;
    loop {
        let page = client.queue(&filter, offset, PAGE).await?;
        for r in &page.rows {
            let n = match &mut next {
                Some(n) if n.day < r.send_on => continue,
                Some(n) if n.day == r.send_on => n,
                _ => next.insert(NextSend {
                    day: r.send_on,
                    first: r.send_at,
                    last: r.send_at,
                    emails: 0,
                    letters: 0,
                    calls: 0,
                }),
            };
            n.first = n.first.min(r.send_at);
            n.last = n.last.max(r.send_at);
            match r.channel {
                Channel::Email => n.emails += 1,
                Channel::Post => n.letters += 1,
                Channel::Phone => n.calls += 1,
            }
        }
        offset += page.rows.len() as u64;
        if page.rows.is_empty() || offset >= page.total {
            break;
        }
    }
    Ok(next)
}

/// Emails of `day` or before that still wait: 0 once dispatch sent all
/// that is due on a clock past `day`'s last send time.
pub(crate) async fn emails_due_by(client: &mut Client, day: Date) -> anyhow::Result<u64> {
    let filter = QueueFilter {
        statuses: WAITING
            .iter()
            .copied()
            .chain([MessageStatus::Sending])
            .collect(),
        channels: vec![Channel::Email],
        to: Some(day),
        ..QueueFilter::default()
    };
    Ok(client.queue(&filter, 0, 1).await?.total)
}

/// Messages that wait to go out, every day.
pub(super) async fn waiting(client: &mut Client) -> anyhow::Result<u64> {
    let filter = QueueFilter {
        statuses: WAITING.to_vec(),
        ..QueueFilter::default()
    };
    Ok(client.queue(&filter, 0, 1).await?.total)
}

/// Messages of `channel` sent on `day`.
pub(super) async fn sent_on(
    client: &mut Client,
    day: Date,
    channel: Channel,
) -> anyhow::Result<u64> {
    let filter = QueueFilter {
        statuses: vec![MessageStatus::Sent],
        channels: vec![channel],
        from: Some(day),
        to: Some(day),
        ..QueueFilter::default()
    };
    Ok(client.queue(&filter, 0, 1).await?.total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_send_says_when_and_how_many() {
        let n = NextSend {
            day: Date::from_ymd(2026, 12, 7).expect("day"),
            first: 8 * 60,
            last: 17 * 60 + 55,
            emails: 2_577,
            letters: 2_761,
            calls: 0,
        };
        assert_eq!(
            n.line(),
            "next send: Mon 2026-12-07 08:00, 2,577 emails, 2,761 letters"
        );
        assert_eq!(n.argument(n.last), "2026-12-07 17:55");
        assert_eq!(n.messages(), 5_338);
        let with_calls = NextSend { calls: 12, ..n };
        assert!(with_calls.line().ends_with(", 12 call tasks"));
    }
}

//! A compact in-memory index of a tenant's outbox, for listing, filtering,
//! paging and counting a million messages without reading them.
//!
//! Built by one scan of the outbox the first time it is asked for, then kept
//! current by the outbox's one writer (`write.rs`), after each transaction
//! that succeeded, under the same lock; dropped with the store when the
//! tenant's database closes. A stored message that cannot be read (damaged,
//! or written by a build that stored what it could not read back) is left
//! out and its id kept in [`OutboxIndex::unreadable`]: one bad record does
//! not take the listing of a whole tenant with it.
//!
//! Per message it holds what a filter looks at and nothing more: the id,
//! status, channel, send day, when it is due (queued or deferred), the
//! service and template as small numbers (each name stored once), whether
//! it hard-bounced, and a short lowercase text for the free-text filter
//! (customer number, the address used and the start of the last transport
//! answer) in one shared buffer. About 28 bytes plus the text.
//!
//! A leaf: uses nothing of the store.

use std::collections::{BTreeMap, HashMap};

use touchpoint_common::domain::Channel;
use touchpoint_common::outbox::{Message, MessageStatus};
use touchpoint_common::protocol::DayCounts;
use touchpoint_common::queue::{QueueFilter, STATUSES};
use touchpoint_common::Date;

/// Bytes of the last transport answer the text filter sees.
const ANSWER_BYTES: usize = 40;
/// A message's text at most (customer number, address, answer).
const TEXT_BYTES: usize = 255;
const BOUNCED: u8 = 1;

/// Names stored once, referred to by number.
#[derive(Debug, Default)]
struct Names {
    list: Vec<Box<str>>,
    lower: Vec<Box<str>>,
    by_name: HashMap<Box<str>, u16>,
}

impl Names {
    fn id(&mut self, name: &str) -> u16 {
        if let Some(id) = self.by_name.get(name) {
            return *id;
        }
        // More names than a u16 holds cannot happen with real policies;
        // the last number is shared rather than failing a write.
        let id = self.list.len().min(u16::MAX as usize) as u16;
        if usize::from(id) == self.list.len() {
            self.list.push(name.into());
            self.lower.push(name.to_lowercase().into());
        }
        self.by_name.insert(name.into(), id);
        id
    }

    fn lookup(&self, name: &str) -> Option<u16> {
        self.by_name.get(name).copied()
    }

    fn name(&self, id: u16) -> &str {
        self.list.get(usize::from(id)).map_or("", |s| s)
    }
}

#[derive(Clone, Copy, Debug)]
struct Row {
    text_at: u32,
    send_on: i32,
    /// Queued or deferred: when it is due, unix minutes (0: not known).
    due_min: u32,
    service: u16,
    template: u16,
    /// Position in [`STATUSES`].
    status: u8,
    /// Position in [`Channel::ALL`].
    channel: u8,
    text_len: u8,
    flags: u8,
}

fn status_no(s: MessageStatus) -> u8 {
    STATUSES.iter().position(|x| *x == s).unwrap_or(0) as u8
}

fn channel_no(c: Channel) -> u8 {
    Channel::ALL.iter().position(|x| *x == c).unwrap_or(0) as u8
}

/// The lowercase text the free-text filter searches, fields separated by
/// NUL so that a match never spans two of them.
fn text_of(m: &Message, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(m.recipient.to_lowercase().as_bytes());
    out.push(0);
    out.extend_from_slice(m.dispatch.address.to_lowercase().as_bytes());
    out.push(0);
    let answer = m.dispatch.last_error.to_lowercase();
    let mut cut = answer.len().min(ANSWER_BYTES);
    while !answer.is_char_boundary(cut) {
        cut -= 1;
    }
    out.extend_from_slice(&answer.as_bytes()[..cut]);
    out.truncate(TEXT_BYTES);
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    if hay.len() < needle.len() {
        return false;
    }
    let last = hay.len() - needle.len();
    let mut i = 0;
    while i <= last {
        match hay[i..=last].iter().position(|b| *b == first) {
            None => return false,
            Some(p) => {
                i += p;
                if &hay[i + 1..i + needle.len()] == rest {
                    return true;
                }
                i += 1;
            }
        }
    }
    false
}

/// One tenant's outbox, compact.
#[derive(Debug, Default)]
pub struct OutboxIndex {
    /// Ascending.
    ids: Vec<u64>,
    rows: Vec<Row>,
    texts: Vec<u8>,
    /// Bytes of `texts` no row refers to any more.
    garbage: usize,
    services: Names,
    templates: Names,
    scratch: Vec<u8>,
    /// Ids of stored messages that could not be read when it was built.
    unreadable: Vec<u64>,
}

/// What one filter selects from one tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Messages matching the whole filter.
    pub total: u64,
    /// Matches per status ignoring the status criterion, in [`STATUSES`] order.
    pub counts: [u64; STATUSES.len()],
    /// The ids of the page, newest first.
    pub ids: Vec<u64>,
}

/// Figures of one tenant the overview shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Messages per send day, for every send day from the day asked for on
    /// (and the other day asked for, if any); days without messages are
    /// not in it.
    pub days: BTreeMap<Date, DayCounts>,
    /// Messages still to go out (planned, rendered, queued, deferred,
    /// sending) whose send day is before the day asked for: late, they go
    /// out that day.
    pub late: u64,
    /// Emails queued or deferred, due before the time asked for and not
    /// paused: how many, and the earliest due (unix minutes).
    pub stuck: u64,
    pub stuck_since_min: Option<u32>,
    /// Emails of the week (send day in the seven days up to the day asked
    /// for) that went out (sent, or bounced after), and how many bounced.
    pub emails_out_week: u64,
    pub bounced_week: u64,
}

impl OutboxIndex {
    /// An index of these stored messages: each its id and the message, or
    /// `None` when it could not be read (left out, and listed in
    /// [`OutboxIndex::unreadable`]). An error of the scan itself fails it.
    pub fn build<E>(
        messages: impl Iterator<Item = std::result::Result<(u64, Option<Message>), E>>,
    ) -> std::result::Result<Self, E> {
        let mut ix = OutboxIndex::default();
        for m in messages {
            match m? {
                (_, Some(m)) => ix.upsert(&m),
                (id, None) => ix.unreadable.push(id),
            }
        }
        ix.ids.shrink_to_fit();
        ix.rows.shrink_to_fit();
        ix.texts.shrink_to_fit();
        Ok(ix)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Ids of stored messages left out because they could not be read.
    pub fn unreadable(&self) -> &[u64] {
        &self.unreadable
    }

    /// Bytes the index holds (capacity), for benchmarks.
    pub fn heap_bytes(&self) -> usize {
        self.ids.capacity() * std::mem::size_of::<u64>()
            + self.rows.capacity() * std::mem::size_of::<Row>()
            + self.texts.capacity()
    }

    /// Takes a message's stored state (new, or changed).
    pub fn upsert(&mut self, m: &Message) {
        if !self.unreadable.is_empty() {
            // Written again whole: readable now.
            self.unreadable.retain(|id| *id != m.id);
        }
        let mut text = std::mem::take(&mut self.scratch);
        text_of(m, &mut text);
        let row = Row {
            text_at: 0,
            send_on: m.send_on.days(),
            due_min: match m.status {
                MessageStatus::Queued | MessageStatus::Deferred => m
                    .dispatch
                    .retry_at
                    .map_or(0, |t| (t.0.max(0) / 60_000).min(i64::from(u32::MAX)) as u32),
                _ => 0,
            },
            service: self.services.id(&m.service),
            template: self.templates.id(&m.template),
            status: status_no(m.status),
            channel: channel_no(m.channel),
            text_len: text.len() as u8,
            flags: if m.dispatch.last_error.starts_with("hard bounce") {
                BOUNCED
            } else {
                0
            },
        };
        let pos = match self.ids.last() {
            Some(last) if *last < m.id => Err(self.ids.len()),
            None => Err(0),
            _ => self.ids.binary_search(&m.id),
        };
        let at = match pos {
            Ok(i) => {
                let old = self.rows[i];
                if self.text(&old) == text.as_slice() {
                    self.rows[i] = Row {
                        text_at: old.text_at,
                        ..row
                    };
                    self.scratch = text;
                    return;
                }
                self.garbage += usize::from(old.text_len);
                i
            }
            Err(i) => {
                self.ids.insert(i, m.id);
                self.rows.insert(i, row);
                i
            }
        };
        self.rows[at] = Row {
            text_at: self.texts.len() as u32,
            ..row
        };
        self.texts.extend_from_slice(&text);
        self.scratch = text;
        if self.garbage > 1 << 16 && self.garbage * 2 > self.texts.len() {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let mut texts = Vec::with_capacity(self.texts.len() - self.garbage);
        for r in &mut self.rows {
            let start = r.text_at as usize;
            let t = &self.texts[start..start + usize::from(r.text_len)];
            r.text_at = texts.len() as u32;
            texts.extend_from_slice(t);
        }
        self.texts = texts;
        self.garbage = 0;
    }

    fn text(&self, r: &Row) -> &[u8] {
        let start = r.text_at as usize;
        self.texts
            .get(start..start + usize::from(r.text_len))
            .unwrap_or(&[])
    }

    /// The ids of one recipient's messages (any status), newest first: the
    /// rows whose text starts with the customer number, compared whole.
    pub fn of_recipient(&self, recipient: &str) -> Vec<u64> {
        let mut want = recipient.to_lowercase().into_bytes();
        want.push(0);
        let mut out: Vec<u64> = self
            .ids
            .iter()
            .zip(&self.rows)
            .filter(|(_, r)| self.text(r).starts_with(&want))
            .map(|(id, _)| *id)
            .collect();
        out.reverse();
        out
    }

    /// The matches of `filter` (its tenant criterion is the caller's), the
    /// page of them from `skip` on, at most `take`, newest first, and the
    /// counts per status.
    pub fn select(&self, filter: &QueueFilter, skip: u64, take: usize) -> Selection {
        let mut sel = Selection::default();
        let service = match &filter.service {
            None => None,
            Some(s) => match self.services.lookup(s).or_else(|| {
                // The filter language lowers what it reads.
                (0..self.services.list.len())
                    .find(|i| self.services.lower[*i].as_ref() == s.to_lowercase())
                    .map(|i| i as u16)
            }) {
                Some(id) => Some(id),
                None => return sel,
            },
        };
        let mut statuses = [filter.statuses.is_empty(); STATUSES.len()];
        for s in &filter.statuses {
            statuses[usize::from(status_no(*s))] = true;
        }
        let mut channels = [filter.channels.is_empty(); 3];
        for c in &filter.channels {
            channels[usize::from(channel_no(*c))] = true;
        }
        let from = filter.from.map_or(i32::MIN, |d| d.days());
        let to = filter.to.map_or(i32::MAX, |d| d.days());
        let needle = filter.text.trim().to_lowercase();
        let needle = needle.as_bytes();
        let by_name = |names: &Names| -> Vec<bool> {
            names
                .lower
                .iter()
                .map(|n| !needle.is_empty() && contains(n.as_bytes(), needle))
                .collect()
        };
        let service_text = by_name(&self.services);
        let template_text = by_name(&self.templates);
        for (i, r) in self.rows.iter().enumerate().rev() {
            if !channels[usize::from(r.channel)]
                || r.send_on < from
                || r.send_on > to
                || service.is_some_and(|s| s != r.service)
            {
                continue;
            }
            if !needle.is_empty()
                && !service_text[usize::from(r.service)]
                && !template_text[usize::from(r.template)]
                && !contains(self.text(r), needle)
            {
                continue;
            }
            sel.counts[usize::from(r.status)] += 1;
            if !statuses[usize::from(r.status)] {
                continue;
            }
            if sel.total >= skip && sel.ids.len() < take {
                sel.ids.push(self.ids[i]);
            }
            sel.total += 1;
        }
        sel
    }

    /// The overview's figures: `today`'s messages by where they stand,
    /// emails due before `stuck_before_min` (unix minutes) still queued
    /// outside `paused` services, and the week's emails and bounces.
    pub fn stats(
        &self,
        today: Date,
        also: Option<Date>,
        stuck_before_min: u32,
        paused: impl Fn(&str) -> bool,
    ) -> OutboxStats {
        use MessageStatus as S;
        let mut out = OutboxStats::default();
        let paused: Vec<bool> = self.services.list.iter().map(|s| paused(s)).collect();
        let day = today.days();
        let also = also.map(Date::days);
        let week_from = day - 6;
        let email = channel_no(Channel::Email);
        for r in &self.rows {
            let status = STATUSES[usize::from(r.status)];
            let to_go = matches!(
                status,
                S::Planned | S::Rendered | S::Queued | S::Deferred | S::Sending
            );
            if r.send_on < day && to_go {
                out.late += 1;
            }
            if r.send_on >= day || also == Some(r.send_on) {
                let c = out.days.entry(Date::from_days(r.send_on)).or_default();
                match status {
                    S::Planned | S::Rendered => c.planned += 1,
                    S::Queued | S::Deferred | S::Sending => c.queued += 1,
                    S::Sent => c.sent += 1,
                    S::Failed => c.failed += 1,
                    S::Held => c.held += 1,
                    S::Fallback | S::Cancelled | S::Control => {}
                }
            }
            if r.channel != email {
                continue;
            }
            if matches!(status, S::Queued | S::Deferred)
                && r.due_min != 0
                && r.due_min < stuck_before_min
                && !paused[usize::from(r.service)]
            {
                out.stuck += 1;
                out.stuck_since_min =
                    Some(out.stuck_since_min.map_or(r.due_min, |m| m.min(r.due_min)));
            }
            if (week_from..=day).contains(&r.send_on) {
                let bounced = r.flags & BOUNCED != 0;
                if status == S::Sent || bounced {
                    out.emails_out_week += 1;
                }
                if bounced {
                    out.bounced_week += 1;
                }
            }
        }
        out.days.retain(|_, c| *c != DayCounts::default());
        out
    }

    /// The service name behind a number (for tests and diagnostics).
    pub fn service_name(&self, id: u16) -> &str {
        self.services.name(id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn substring_search() {
        assert!(contains(b"abc\0x@y.de\0", b"y.de"));
        assert!(contains(b"aab", b"ab"));
        assert!(!contains(b"ab", b"abc"));
        assert!(!contains(b"abc", b"c\0"));
        assert!(contains(b"abc", b""));
    }
}

//! A compact in-memory index of a tenant's outbox, for listing, filtering,
//! ordering, paging and counting a million messages without reading them.
//!
//! Built by one scan of the outbox the first time it is asked for, then kept
//! current by the outbox's one writer (`write.rs`), after each transaction
//! that succeeded, under the same lock; dropped with the store when the
//! tenant's database closes. A stored message that cannot be read (damaged,
//! or written by a build that stored what it could not read back) is left
//! out and its id kept in [`OutboxIndex::unreadable`]: one bad record does
//! not take the listing of a whole tenant with it.
//!
//! Per message it holds what a filter or an order looks at and nothing
//! more: the id, status, channel, send day and minute, its cost, when it is
//! due (queued or deferred), the service and template as small numbers
//! (each name stored once), its recipient as a number, whether it
//! hard-bounced, and a short folded text for the free-text filter (the
//! address used and the start of the last transport answer) in one shared
//! buffer: 36 bytes plus the text. Per recipient, once however many
//! messages they have, the folded text of their customer number, name,
//! postcode, city and email domain ([`Person`]), filled from the dealer's
//! data by the store ([`OutboxIndex::refresh_people`]): the outbox knows
//! messages, not customers.
//!
//! Texts are folded ([`fold`]: lower case, `ß` as `ss`) on both sides, so
//! that `Fößel`, `föß` and `FÖSSEL` find each other.
//!
//! A leaf: uses nothing of the store.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use touchpoint_common::domain::{Channel, Customer};
use touchpoint_common::outbox::{Message, MessageStatus};
use touchpoint_common::protocol::DayCounts;
use touchpoint_common::queue::{QueueFilter, SortKey, STATUSES};
use touchpoint_common::Date;

/// Bytes of the last transport answer the text filter sees.
const ANSWER_BYTES: usize = 40;
/// A message's or a person's text at most.
const TEXT_BYTES: usize = 255;
const BOUNCED: u8 = 1;
/// Bytes of a customer number a person's text keeps: dealers' numbers are
/// short; two longer ones alike in these bytes would share a person.
const NUMBER_BYTES: usize = 100;
/// Message ids an order tells apart (2^48: far beyond any outbox).
const ID_BITS: u32 = 48;
const ID_MASK: u64 = (1 << ID_BITS) - 1;

/// Text as the free-text filter compares it: lower case, `ß` as `ss`.
pub fn fold(s: &str) -> String {
    let lower = s.to_lowercase();
    if lower.contains('ß') {
        lower.replace('ß', "ss")
    } else {
        lower
    }
}

/// Appends `text` folded, cut at a character boundary so that `out` stays
/// within `max` bytes.
fn push_folded(out: &mut Vec<u8>, text: &str, max: usize) {
    let t = fold(text);
    let room = max.saturating_sub(out.len());
    let mut cut = t.len().min(room);
    while !t.is_char_boundary(cut) {
        cut -= 1;
    }
    out.extend_from_slice(&t.as_bytes()[..cut]);
}

/// Names stored once, referred to by number.
#[derive(Debug, Default)]
struct Names {
    list: Vec<Box<str>>,
    folded: Vec<Box<str>>,
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
            self.folded.push(fold(name).into());
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

/// Where one recipient's text lies in [`People::text`].
#[derive(Clone, Copy, Debug)]
struct Person {
    at: u32,
    len: u8,
    /// Only the customer number yet: the dealer's data is still to be read.
    pending: bool,
}

/// The recipients of a tenant's messages, each once: the folded text of
/// customer number, name, postcode, city and email domain, NUL between
/// them so that a match never spans two.
#[derive(Debug, Default)]
struct People {
    list: Vec<Person>,
    text: Vec<u8>,
    /// Hash of the customer number → person; a collision takes the next
    /// free hash (the stored number tells them apart).
    by_no: HashMap<u32, u32, BuildHasherDefault<NoHash>>,
    /// Bytes of `text` no person refers to any more.
    garbage: usize,
    /// Persons still `pending`.
    pending: usize,
    /// The dealer's data version the texts were read at.
    epoch: Option<u64>,
}

/// The keys of [`People::by_no`] are hashes already: only spread over
/// the 64 bits the map uses.
#[derive(Default)]
struct NoHash(u64);

impl std::hash::Hasher for NoHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// The part of a customer number a person's text keeps.
fn number_cut(no: &str) -> &str {
    let mut cut = no.len().min(NUMBER_BYTES);
    while !no.is_char_boundary(cut) {
        cut -= 1;
    }
    &no[..cut]
}

fn number_hash(no: &str) -> u32 {
    // 32 bits: a collision only costs a probe, and the map stays small.
    BuildHasherDefault::<DefaultHasher>::default().hash_one(no) as u32
}

/// A person's text: the customer number as stored (how it is looked up),
/// then, folded, the number (when folding changes it) and what the
/// customer record says.
fn person_text(no: &str, c: Option<&Customer>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(number_cut(no).as_bytes());
    if fold(no) != no {
        out.push(0);
        push_folded(out, no, NUMBER_BYTES * 2 + 1);
    }
    if let Some(c) = c {
        let domain = c
            .email
            .as_deref()
            .and_then(|e| e.rsplit_once('@'))
            .map_or("", |(_, d)| d);
        for field in [
            c.display_name().as_str(),
            &c.address.postcode,
            &c.address.city,
            domain,
        ] {
            if out.len() < TEXT_BYTES {
                out.push(0);
            }
            push_folded(out, field, TEXT_BYTES);
        }
    }
}

impl People {
    fn text_of(&self, p: usize) -> &[u8] {
        let Some(person) = self.list.get(p) else {
            return &[];
        };
        let start = person.at as usize;
        self.text
            .get(start..start + usize::from(person.len))
            .unwrap_or(&[])
    }

    /// The customer number of a person, as stored (the text up to the
    /// first NUL).
    fn number_of(&self, p: usize) -> &[u8] {
        let t = self.text_of(p);
        t.split(|b| *b == 0).next().unwrap_or(t)
    }

    /// The person of a customer number, or the free hash to add it under.
    fn find(&self, no: &str) -> Result<u32, u32> {
        let no = number_cut(no);
        let mut h = number_hash(no);
        loop {
            match self.by_no.get(&h) {
                None => return Err(h),
                Some(p) if self.number_of(*p as usize) == no.as_bytes() => return Ok(*p),
                Some(_) => h = h.wrapping_add(1),
            }
        }
    }

    /// The person of a customer number, added (pending) when new.
    fn id(&mut self, no: &str, scratch: &mut Vec<u8>) -> u32 {
        match self.find(no) {
            Ok(p) => p,
            Err(free) => {
                person_text(no, None, scratch);
                let p = self.list.len() as u32;
                self.list.push(Person {
                    at: self.text.len() as u32,
                    len: scratch.len() as u8,
                    pending: true,
                });
                self.text.extend_from_slice(scratch);
                self.by_no.insert(free, p);
                self.pending += 1;
                p
            }
        }
    }

    fn set_text(&mut self, p: usize, text: &[u8]) {
        let person = &mut self.list[p];
        if person.pending {
            person.pending = false;
            self.pending -= 1;
        }
        let start = person.at as usize;
        if self.text.get(start..start + usize::from(person.len)) == Some(text) {
            return;
        }
        self.garbage += usize::from(person.len);
        person.at = self.text.len() as u32;
        person.len = text.len() as u8;
        self.text.extend_from_slice(text);
    }

    fn compact(&mut self) {
        let mut text = Vec::with_capacity(self.text.len() - self.garbage);
        for p in &mut self.list {
            let start = p.at as usize;
            let t = &self.text[start..start + usize::from(p.len)];
            p.at = text.len() as u32;
            text.extend_from_slice(t);
        }
        self.text = text;
        self.garbage = 0;
    }
}

#[derive(Clone, Copy, Debug)]
struct Row {
    text_at: u32,
    /// Send day and time: minutes since day 0 of [`Date::days`].
    send_min: u32,
    /// Queued or deferred: when it is due, unix minutes (0: not known).
    due_min: u32,
    /// Cents, as the queue lists it (booked once sent, else the estimate).
    cost: u32,
    /// Position in [`OutboxIndex::people`].
    person: u32,
    service: u16,
    template: u16,
    /// Position in [`STATUSES`].
    status: u8,
    /// Position in [`Channel::ALL`].
    channel: u8,
    text_len: u8,
    flags: u8,
}

impl Row {
    fn send_on(&self) -> i32 {
        (self.send_min / 1440) as i32
    }
}

fn status_no(s: MessageStatus) -> u8 {
    STATUSES.iter().position(|x| *x == s).unwrap_or(0) as u8
}

fn channel_no(c: Channel) -> u8 {
    Channel::ALL.iter().position(|x| *x == c).unwrap_or(0) as u8
}

/// The folded text the free-text filter searches besides the recipient's:
/// the address used and the start of the last answer, NUL between them.
fn text_of(m: &Message, out: &mut Vec<u8>) {
    out.clear();
    push_folded(out, &m.dispatch.address, TEXT_BYTES);
    out.push(0);
    push_folded(out, &m.dispatch.last_error, out.len() + ANSWER_BYTES);
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
    people: People,
    scratch: Vec<u8>,
    /// Ids of stored messages that could not be read when it was built.
    unreadable: Vec<u64>,
}

/// One match in a listing's order: compare `(key, tie)` ascending (or all
/// of it descending when the order is reversed). `tie` holds the tenant's
/// position among those asked for and the id (newest first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ordered {
    pub key: u64,
    pub tie: u64,
}

impl Ordered {
    pub fn tenant(&self) -> usize {
        (self.tie >> ID_BITS) as usize
    }

    pub fn id(&self) -> u64 {
        ID_MASK - (self.tie & ID_MASK)
    }
}

/// What one filter selects from one tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Messages matching the whole filter.
    pub total: u64,
    /// Matches per status ignoring the status criterion, in [`STATUSES`] order.
    pub counts: [u64; STATUSES.len()],
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
    /// Its recipients are only customer numbers until
    /// [`OutboxIndex::refresh_people`].
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
        ix.people.list.shrink_to_fit();
        ix.people.text.shrink_to_fit();
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

    /// Bytes the index holds (capacity), for benchmarks: messages, their
    /// texts, and the recipients with theirs and the map of their numbers.
    pub fn heap_bytes(&self) -> usize {
        let map = self.people.by_no.capacity() * (std::mem::size_of::<(u32, u32)>() + 1);
        self.ids.capacity() * std::mem::size_of::<u64>()
            + self.rows.capacity() * std::mem::size_of::<Row>()
            + self.texts.capacity()
            + self.people.list.capacity() * std::mem::size_of::<Person>()
            + self.people.text.capacity()
            + map
    }

    /// Reads the recipients' texts from the dealer's data: every one when
    /// `epoch` (the data's version) is not the one they were read at, else
    /// only those added since. `customer` looks one up by number.
    pub fn refresh_people<E>(
        &mut self,
        epoch: u64,
        mut customer: impl FnMut(&str) -> std::result::Result<Option<Customer>, E>,
    ) -> std::result::Result<(), E> {
        let all = self.people.epoch != Some(epoch);
        if !all && self.people.pending == 0 {
            return Ok(());
        }
        let mut text = std::mem::take(&mut self.scratch);
        for p in 0..self.people.list.len() {
            if !all && !self.people.list[p].pending {
                continue;
            }
            let no = String::from_utf8_lossy(self.people.number_of(p)).into_owned();
            let c = customer(&no)?;
            person_text(&no, c.as_ref(), &mut text);
            self.people.set_text(p, &text);
        }
        self.scratch = text;
        self.people.epoch = Some(epoch);
        if self.people.garbage > 1 << 16 && self.people.garbage * 2 > self.people.text.len() {
            self.people.compact();
        }
        Ok(())
    }

    /// Takes a message's stored state (new, or changed).
    pub fn upsert(&mut self, m: &Message) {
        if !self.unreadable.is_empty() {
            // Written again whole: readable now.
            self.unreadable.retain(|id| *id != m.id);
        }
        let mut text = std::mem::take(&mut self.scratch);
        let person = self.people.id(&m.recipient, &mut text);
        text_of(m, &mut text);
        let minutes = i64::from(m.send_on.days()) * 1440 + i64::from(m.send_at);
        let row = Row {
            text_at: 0,
            send_min: minutes.clamp(0, i64::from(u32::MAX)) as u32,
            due_min: match m.status {
                MessageStatus::Queued | MessageStatus::Deferred => m
                    .dispatch
                    .retry_at
                    .map_or(0, |t| (t.0.max(0) / 60_000).min(i64::from(u32::MAX)) as u32),
                _ => 0,
            },
            cost: m.listed_cost().clamp(0, i64::from(u32::MAX)) as u32,
            person,
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

    /// The ids of one recipient's messages (any status), newest first.
    pub fn of_recipient(&self, recipient: &str) -> Vec<u64> {
        let Ok(person) = self.people.find(recipient) else {
            return Vec::new();
        };
        let mut out: Vec<u64> = self
            .ids
            .iter()
            .zip(&self.rows)
            .filter(|(_, r)| r.person == person)
            .map(|(id, _)| *id)
            .collect();
        out.reverse();
        out
    }

    /// The matches of `filter` (its tenant criterion is the caller's),
    /// each pushed onto `out` with its place in `filter.sort`'s order
    /// (`tenant`: the tenant's position among those listed), and the
    /// counts per status.
    pub fn select(&self, filter: &QueueFilter, tenant: usize, out: &mut Vec<Ordered>) -> Selection {
        let mut sel = Selection::default();
        let mut services = vec![filter.services.is_empty(); self.services.list.len()];
        for s in &filter.services {
            // The filter language lowers what it reads.
            let found = self.services.lookup(s).or_else(|| {
                let s = fold(s);
                (0..self.services.list.len())
                    .find(|i| self.services.folded[*i].as_ref() == s)
                    .map(|i| i as u16)
            });
            if let Some(id) = found {
                services[usize::from(id)] = true;
            }
        }
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
        let needle = fold(filter.text.trim());
        let needle = needle.as_bytes();
        let by_name = |names: &Names| -> Vec<bool> {
            names
                .folded
                .iter()
                .map(|n| !needle.is_empty() && contains(n.as_bytes(), needle))
                .collect()
        };
        let service_text = by_name(&self.services);
        let template_text = by_name(&self.templates);
        // Each recipient's text is searched once, however many messages.
        let person_text: Vec<bool> = if needle.is_empty() {
            Vec::new()
        } else {
            (0..self.people.list.len())
                .map(|p| contains(self.people.text_of(p), needle))
                .collect()
        };
        let tenant_bits = (tenant as u64).min(u64::from(u16::MAX)) << ID_BITS;
        for (i, r) in self.rows.iter().enumerate() {
            let day = r.send_on();
            if !channels[usize::from(r.channel)]
                || day < from
                || day > to
                || !services
                    .get(usize::from(r.service))
                    .copied()
                    .unwrap_or(false)
            {
                continue;
            }
            if !needle.is_empty()
                && !service_text[usize::from(r.service)]
                && !template_text[usize::from(r.template)]
                && !person_text.get(r.person as usize).copied().unwrap_or(false)
                && !contains(self.text(r), needle)
            {
                continue;
            }
            sel.counts[usize::from(r.status)] += 1;
            if !statuses[usize::from(r.status)] {
                continue;
            }
            let later_first = u64::from(u32::MAX - r.send_min);
            let key = match filter.sort.key {
                SortKey::Time => later_first,
                SortKey::Tenant => (tenant as u64) << 32 | later_first,
                SortKey::Status => u64::from(r.status) << 32 | later_first,
                SortKey::Cost => u64::from(u32::MAX - r.cost) << 32 | later_first,
            };
            out.push(Ordered {
                key,
                tie: tenant_bits | (ID_MASK - (self.ids[i] & ID_MASK)),
            });
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
            let send_on = r.send_on();
            if send_on < day && to_go {
                out.late += 1;
            }
            if send_on >= day || also == Some(send_on) {
                let c = out.days.entry(Date::from_days(send_on)).or_default();
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
            if (week_from..=day).contains(&r.send_on()) {
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

    #[test]
    fn a_number_whose_hash_is_taken_probes_on() {
        let mut people = People::default();
        let mut scratch = Vec::new();
        let k1 = people.id("K1", &mut scratch);
        // K1 stored where K2's hash points, as a collision would.
        people.by_no.clear();
        people.by_no.insert(number_hash("K2"), k1);
        let k2 = people.id("K2", &mut scratch);
        assert_ne!(k1, k2);
        assert_eq!(people.find("K2"), Ok(k2));
        assert_eq!(people.number_of(k2 as usize), b"K2");
        assert_eq!(people.text_of(k2 as usize), b"K2\0k2");
    }

    #[test]
    fn folding_lowers_and_spells_sharp_s_out() {
        assert_eq!(fold("Fößel"), "fössel");
        assert_eq!(fold("FÖSSEL"), "fössel");
        assert_eq!(fold("Straße ẞ"), "strasse ss");
    }
}

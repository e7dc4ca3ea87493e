//! A compact in-memory index of a tenant's outbox, for listing, filtering,
//! ordering, paging and counting a million messages without reading them.
//!
//! Built by one scan of the outbox the first time it is asked for, then kept
//! current by the outbox's one writer (`write.rs`), after each transaction
//! that succeeded, under the same lock. When the tenant's database closes
//! as idle or to make room, it is kept for listings while the outbox is not
//! written (`store/kept_index.rs`), else dropped with the store. A stored
//! message that cannot be read (damaged, or written by a build that stored
//! what it could not read back) is left out and its id kept in
//! [`OutboxIndex::unreadable`]: one bad record does not take the listing of
//! a whole tenant with it.
//!
//! Per message it holds what a filter or an order looks at and nothing
//! more: the id, status, channel, send day and minute, its cost, the
//! service and template as small numbers (each name stored once), its
//! recipient as a number, whether it hard-bounced, and a short folded text
//! for the free-text filter (the address used and the start of the last
//! transport answer) in one shared buffer: 28 bytes plus the text. When a
//! queued or deferred message is due is kept beside them, for those only
//! (a few at any time). Per recipient, once however many messages they
//! have, the folded text of their customer number, name, postcode, city
//! and email domain ([`People`]), filled from the dealer's data by the
//! store ([`OutboxIndex::refresh_people`]): the outbox knows messages, not
//! customers. A recipient costs 4 bytes, its text and its slot in the map
//! of numbers.
//!
//! Texts are folded ([`fold`]: lower case, `ß` as `ss`) on both sides, so
//! that `Fößel`, `föß` and `FÖSSEL` find each other. The one exception is
//! an ASCII customer number, kept once as stored and compared ignoring
//! ASCII case (the same as folding it).
//!
//! A leaf: uses nothing of the store.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use hashbrown::HashTable;

use touchpoint_common::domain::{Channel, Customer};
use touchpoint_common::outbox::{Message, MessageStatus};
use touchpoint_common::protocol::DayCounts;
use touchpoint_common::queue::{QueueFilter, SortKey, STATUSES};
use touchpoint_common::Date;

/// Bytes of the last transport answer the text filter sees.
const ANSWER_BYTES: usize = 40;
/// A message's or a person's text at most.
const TEXT_BYTES: usize = 255;
/// A row's `state`: the status's position in [`STATUSES`] in bits 0–3,
/// the channel's in [`Channel::ALL`] in bits 4–5, a hard bounce in bit 6.
const CHANNEL_SHIFT: u32 = 4;
const BOUNCED: u8 = 1 << 6;
const _: () = assert!(STATUSES.len() <= 16 && Channel::ALL.len() <= 4);
/// Bytes of a customer number a person's text keeps: dealers' numbers are
/// short; two longer ones alike in these bytes would share a person.
const NUMBER_BYTES: usize = 100;
/// Ends a recipient's text in [`People::text`]: no UTF-8 text holds it.
const END: u8 = 0xFF;
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

/// The recipients of a tenant's messages, each once: the folded text of
/// customer number, name, postcode, city and email domain, NUL between
/// them so that a match never spans two, [`END`] after them.
#[derive(Debug, Default)]
struct People {
    /// Where each recipient's text starts in `text`.
    list: Vec<u32>,
    text: Vec<u8>,
    /// The recipients by customer number (hashed from their text).
    by_no: HashTable<u32>,
    /// Bytes of `text` no recipient refers to any more.
    garbage: usize,
    /// Recipients whose text is only their customer number yet: the
    /// dealer's data is still to be read.
    pending: Vec<u32>,
    /// The dealer's data version the texts were read at.
    epoch: Option<u64>,
}

/// The part of a customer number a person's text keeps.
fn number_cut(no: &str) -> &str {
    let mut cut = no.len().min(NUMBER_BYTES);
    while !no.is_char_boundary(cut) {
        cut -= 1;
    }
    &no[..cut]
}

fn number_hash(no: &[u8]) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(no)
}

/// A recipient's text in `text`, from where it starts to its [`END`].
fn text_at(text: &[u8], at: u32) -> &[u8] {
    let rest = text.get(at as usize..).unwrap_or(&[]);
    let len = rest.iter().position(|b| *b == END).unwrap_or(rest.len());
    &rest[..len]
}

/// The customer number in a recipient's text (up to the first NUL).
fn number_in(text: &[u8]) -> &[u8] {
    text.split(|b| *b == 0).next().unwrap_or(text)
}

/// A person's text: the customer number as stored (how it is looked up),
/// then, folded, the number (when it is not ASCII and folding changes it:
/// an ASCII number is compared ignoring case instead) and what the
/// customer record says.
fn person_text(no: &str, c: Option<&Customer>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(number_cut(no).as_bytes());
    if !no.is_ascii() && fold(no) != no {
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
        self.list.get(p).map_or(&[], |at| text_at(&self.text, *at))
    }

    /// The customer number of a person, as stored.
    fn number_of(&self, p: usize) -> &[u8] {
        number_in(self.text_of(p))
    }

    /// Whether the person's text holds `needle` (folded).
    fn matches(&self, p: usize, needle: &[u8]) -> bool {
        let t = self.text_of(p);
        let no = number_in(t);
        contains(&t[no.len()..], needle) || contains_ignoring_ascii_case(no, needle)
    }

    /// The person of a customer number, or the hash to add it under.
    fn find(&self, no: &str) -> Result<u32, u64> {
        let no = number_cut(no).as_bytes();
        let h = number_hash(no);
        self.by_no
            .find(h, |p| self.number_of(*p as usize) == no)
            .copied()
            .ok_or(h)
    }

    /// Appends a text, [`END`] after it; where it starts.
    fn push_text(&mut self, text: &[u8]) -> u32 {
        let at = self.text.len() as u32;
        self.text.extend_from_slice(text);
        self.text.push(END);
        at
    }

    /// The person of a customer number, added (pending) when new.
    fn id(&mut self, no: &str, scratch: &mut Vec<u8>) -> u32 {
        match self.find(no) {
            Ok(p) => p,
            Err(h) => {
                person_text(no, None, scratch);
                let p = self.list.len() as u32;
                let at = self.push_text(scratch);
                self.list.push(at);
                let (list, text) = (&self.list, &self.text);
                self.by_no.insert_unique(h, p, |q| {
                    let at = list.get(*q as usize).copied().unwrap_or(0);
                    number_hash(number_in(text_at(text, at)))
                });
                self.pending.push(p);
                p
            }
        }
    }

    fn set_text(&mut self, p: usize, text: &[u8]) {
        if self.text_of(p) == text {
            return;
        }
        self.garbage += self.text_of(p).len() + 1;
        self.list[p] = self.push_text(text);
    }

    fn compact(&mut self) {
        let mut text = Vec::with_capacity(self.text.len() - self.garbage);
        for at in &mut self.list {
            let t = text_at(&self.text, *at);
            *at = text.len() as u32;
            text.extend_from_slice(t);
            text.push(END);
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
    /// Cents, as the queue lists it (booked once sent, else the estimate).
    cost: u32,
    /// Position in [`OutboxIndex::people`].
    person: u32,
    /// Position in [`OutboxIndex::kinds`]: its service and template.
    kind: u16,
    /// Status, channel and bounce ([`BOUNCED`]).
    state: u8,
    text_len: u8,
}

// The row is what a message costs besides its id and text.
const _: () = assert!(std::mem::size_of::<Row>() == 20);

impl Row {
    /// Position in [`STATUSES`].
    fn status(&self) -> u8 {
        self.state & 0xF
    }

    /// Position in [`Channel::ALL`].
    fn channel(&self) -> u8 {
        (self.state >> CHANNEL_SHIFT) & 0x3
    }

    fn bounced(&self) -> bool {
        self.state & BOUNCED != 0
    }

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
/// the address used and the start of the last answer, NUL between them;
/// nothing at all (not even the NUL) for a message with neither, as most
/// are before they go out.
fn text_of(m: &Message, out: &mut Vec<u8>) {
    out.clear();
    if m.dispatch.address.is_empty() && m.dispatch.last_error.is_empty() {
        return;
    }
    push_folded(out, &m.dispatch.address, TEXT_BYTES);
    out.push(0);
    push_folded(out, &m.dispatch.last_error, out.len() + ANSWER_BYTES);
    out.truncate(TEXT_BYTES);
}

/// [`contains`], an ASCII letter of `hay` matching either case (`needle`
/// is folded: lower case).
fn contains_ignoring_ascii_case(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || hay.windows(needle.len()).any(|w| {
            w.iter()
                .zip(needle)
                .all(|(h, n)| h.to_ascii_lowercase() == *n)
        })
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
    /// Each pair of service and template the messages have, once.
    kinds: Vec<(u16, u16)>,
    kind_of: HashMap<(u16, u16), u16>,
    people: People,
    /// Queued or deferred messages with a known due time: id → unix
    /// minutes.
    due: HashMap<u64, u32>,
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

/// A tenant's messages counted for the overview, apart from the day and
/// time asked for ([`OutboxIndex::digest`]): per send day the messages
/// per status, per send day the emails that went out and bounced, and per
/// service the due times of queued and deferred emails. About 50 bytes a
/// send day and 4 a queued email.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxDigest {
    /// (send day as [`Date::days`], messages per status of [`STATUSES`]),
    /// ascending.
    days: Vec<(i32, [u32; STATUSES.len()])>,
    /// (send day, emails sent or bounced after, of them bounced), ascending.
    emails: Vec<(i32, (u32, u32))>,
    /// (service, due times in unix minutes ascending) of queued and
    /// deferred emails.
    due_emails: Vec<(Box<str>, Vec<u32>)>,
}

impl OutboxDigest {
    /// The overview's figures: `today`'s messages by where they stand (and
    /// every later day's, and `also`'s), messages still to go whose day has
    /// passed, emails due before `stuck_before_min` (unix minutes) still
    /// queued outside `paused` services, and the week's emails and bounces.
    pub fn stats(
        &self,
        today: Date,
        also: Option<Date>,
        stuck_before_min: u32,
        paused: impl Fn(&str) -> bool,
    ) -> OutboxStats {
        use MessageStatus as S;
        let mut out = OutboxStats::default();
        let day = today.days();
        let also = also.map(Date::days);
        for (send_on, counts) in &self.days {
            for (status, n) in STATUSES.iter().zip(counts) {
                let n = u64::from(*n);
                if n == 0 {
                    continue;
                }
                let to_go = matches!(
                    status,
                    S::Planned | S::Rendered | S::Queued | S::Deferred | S::Sending
                );
                if *send_on < day && to_go {
                    out.late += n;
                }
                if *send_on >= day || also == Some(*send_on) {
                    let c = out.days.entry(Date::from_days(*send_on)).or_default();
                    match status {
                        S::Planned | S::Rendered => c.planned += n,
                        S::Queued | S::Deferred | S::Sending => c.queued += n,
                        S::Sent => c.sent += n,
                        S::Failed => c.failed += n,
                        S::Held => c.held += n,
                        S::Fallback | S::Cancelled | S::Control => {}
                    }
                }
            }
        }
        for (send_on, (went, bounced)) in &self.emails {
            if (day - 6..=day).contains(send_on) {
                out.emails_out_week += u64::from(*went);
                out.bounced_week += u64::from(*bounced);
            }
        }
        for (service, due) in &self.due_emails {
            if paused(service) {
                continue;
            }
            let stuck = due.partition_point(|at| *at < stuck_before_min);
            if stuck > 0 {
                out.stuck += stuck as u64;
                let first = due[0];
                out.stuck_since_min = Some(out.stuck_since_min.map_or(first, |m| m.min(first)));
            }
        }
        out.days.retain(|_, c| *c != DayCounts::default());
        out
    }
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
        // A map slot: its entry and a control byte.
        let slots = |capacity: usize, entry: usize| capacity * (entry + 1);
        self.ids.capacity() * std::mem::size_of::<u64>()
            + self.rows.capacity() * std::mem::size_of::<Row>()
            + self.texts.capacity()
            + self.people.list.capacity() * std::mem::size_of::<u32>()
            + self.people.text.capacity()
            + self.people.pending.capacity() * std::mem::size_of::<u32>()
            + slots(self.people.by_no.capacity(), std::mem::size_of::<u32>())
            + slots(self.due.capacity(), std::mem::size_of::<(u64, u32)>())
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
        if !all && self.people.pending.is_empty() {
            return Ok(());
        }
        let which: Vec<u32> = if all {
            (0..self.people.list.len() as u32).collect()
        } else {
            self.people.pending.clone()
        };
        let mut text = std::mem::take(&mut self.scratch);
        for p in which {
            let p = p as usize;
            let no = String::from_utf8_lossy(self.people.number_of(p)).into_owned();
            let c = match customer(&no) {
                Ok(c) => c,
                Err(e) => {
                    self.scratch = text;
                    return Err(e);
                }
            };
            person_text(&no, c.as_ref(), &mut text);
            self.people.set_text(p, &text);
        }
        self.scratch = text;
        self.people.pending = Vec::new();
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
        let due = match m.status {
            MessageStatus::Queued | MessageStatus::Deferred => m
                .dispatch
                .retry_at
                .map_or(0, |t| (t.0.max(0) / 60_000).min(i64::from(u32::MAX)) as u32),
            _ => 0,
        };
        if due != 0 {
            self.due.insert(m.id, due);
        } else if !self.due.is_empty() {
            self.due.remove(&m.id);
        }
        let row = Row {
            text_at: 0,
            send_min: minutes.clamp(0, i64::from(u32::MAX)) as u32,
            cost: m.listed_cost().clamp(0, i64::from(u32::MAX)) as u32,
            person,
            kind: self.kind(&m.service, &m.template),
            state: status_no(m.status)
                | channel_no(m.channel) << CHANNEL_SHIFT
                | if m.dispatch.last_error.starts_with("hard bounce") {
                    BOUNCED
                } else {
                    0
                },
            text_len: text.len() as u8,
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

    /// The number of a message's service and template.
    fn kind(&mut self, service: &str, template: &str) -> u16 {
        let pair = (self.services.id(service), self.templates.id(template));
        if let Some(k) = self.kind_of.get(&pair) {
            return *k;
        }
        // More pairs than a u16 holds cannot happen with real policies;
        // the last number is shared rather than failing a write.
        let k = self.kinds.len().min(u16::MAX as usize) as u16;
        if usize::from(k) == self.kinds.len() {
            self.kinds.push(pair);
        }
        self.kind_of.insert(pair, k);
        k
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
        // Per service and template: whether the filter's services take it,
        // whether its names hold the text.
        let kind_taken: Vec<bool> = self
            .kinds
            .iter()
            .map(|(s, _)| services.get(usize::from(*s)).copied().unwrap_or(false))
            .collect();
        let kind_text: Vec<bool> = self
            .kinds
            .iter()
            .map(|(s, t)| service_text[usize::from(*s)] || template_text[usize::from(*t)])
            .collect();
        // Each recipient's text is searched once, however many messages.
        let person_text: Vec<bool> = if needle.is_empty() {
            Vec::new()
        } else {
            (0..self.people.list.len())
                .map(|p| self.people.matches(p, needle))
                .collect()
        };
        let tenant_bits = (tenant as u64).min(u64::from(u16::MAX)) << ID_BITS;
        for (i, r) in self.rows.iter().enumerate() {
            let day = r.send_on();
            let kind = usize::from(r.kind);
            if !channels[usize::from(r.channel())] || day < from || day > to || !kind_taken[kind] {
                continue;
            }
            if !needle.is_empty()
                && !kind_text[kind]
                && !person_text.get(r.person as usize).copied().unwrap_or(false)
                && !contains(self.text(r), needle)
            {
                continue;
            }
            sel.counts[usize::from(r.status())] += 1;
            if !statuses[usize::from(r.status())] {
                continue;
            }
            let later_first = u64::from(u32::MAX - r.send_min);
            let key = match filter.sort.key {
                SortKey::Time => later_first,
                SortKey::Tenant => (tenant as u64) << 32 | later_first,
                SortKey::Status => u64::from(r.status()) << 32 | later_first,
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

    /// What the overview's figures are made of, whatever day and time
    /// they are asked for ([`OutboxDigest::stats`]): small enough to keep
    /// for a tenant whose store is closed.
    pub fn digest(&self) -> OutboxDigest {
        use MessageStatus as S;
        let mut days: BTreeMap<i32, [u32; STATUSES.len()]> = BTreeMap::new();
        let mut emails: BTreeMap<i32, (u32, u32)> = BTreeMap::new();
        let email = channel_no(Channel::Email);
        for r in &self.rows {
            let counts = days.entry(r.send_on()).or_insert([0; STATUSES.len()]);
            counts[usize::from(r.status())] += 1;
            if r.channel() != email {
                continue;
            }
            let bounced = r.bounced();
            if STATUSES[usize::from(r.status())] == S::Sent || bounced {
                let e = emails.entry(r.send_on()).or_default();
                e.0 += 1;
                e.1 += u32::from(bounced);
            }
        }
        // Only queued and deferred messages have a due time.
        let mut due: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for (id, at) in &self.due {
            let Ok(i) = self.ids.binary_search(id) else {
                continue;
            };
            let r = &self.rows[i];
            if r.channel() == email {
                let service = self.kinds[usize::from(r.kind)].0;
                due.entry(self.services.name(service))
                    .or_default()
                    .push(*at);
            }
        }
        OutboxDigest {
            days: days.into_iter().collect(),
            emails: emails.into_iter().collect(),
            due_emails: due
                .into_iter()
                .map(|(service, mut at)| {
                    at.sort_unstable();
                    (service.into(), at)
                })
                .collect(),
        }
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
    fn numbers_differing_in_case_are_two_people_found_by_either_case() {
        let mut people = People::default();
        let mut scratch = Vec::new();
        let upper = people.id("K-1", &mut scratch);
        let lower = people.id("k-1", &mut scratch);
        assert_ne!(upper, lower);
        assert_eq!(people.find("K-1"), Ok(upper));
        assert_eq!(people.find("k-1"), Ok(lower));
        // An ASCII number is held once, as stored.
        assert_eq!(people.text_of(upper as usize), b"K-1");
        for p in [upper, lower] {
            assert!(people.matches(p as usize, b"k-1"));
            assert!(!people.matches(p as usize, b"k-2"));
        }
        // One that folding changes otherwise is held folded as well.
        let sharp = people.id("Kß9", &mut scratch);
        assert_eq!(people.text_of(sharp as usize), "Kß9\0kss9".as_bytes());
        assert!(people.matches(sharp as usize, b"kss9"));
    }

    #[test]
    fn a_recipient_whose_text_changes_is_found_after_compaction() {
        let mut people = People::default();
        let mut scratch = Vec::new();
        let ps: Vec<u32> = (0..50)
            .map(|i| people.id(&format!("K{i}"), &mut scratch))
            .collect();
        for (i, p) in ps.iter().enumerate() {
            people.set_text(*p as usize, format!("K{i}\0name {i}").as_bytes());
        }
        assert!(people.garbage > 0);
        people.compact();
        assert_eq!(people.garbage, 0);
        for (i, p) in ps.iter().enumerate() {
            assert_eq!(people.find(&format!("K{i}")), Ok(*p));
            assert_eq!(
                people.text_of(*p as usize),
                format!("K{i}\0name {i}").as_bytes()
            );
        }
    }

    #[test]
    fn a_due_time_counts_while_queued_and_leaves_with_the_queue() {
        let mut m = queued_email();
        let mut ix = OutboxIndex::default();
        ix.upsert(&m);
        let stuck = |ix: &OutboxIndex| {
            ix.digest()
                .stats(m.send_on, None, u32::MAX, |_| false)
                .stuck
        };
        assert_eq!(stuck(&ix), 1);
        m.status = MessageStatus::Sent;
        ix.upsert(&m);
        assert_eq!(stuck(&ix), 0, "sent: no longer due");
        assert!(ix.due.is_empty());
        // A message with neither address nor answer holds no text, and a
        // search still finds it by its recipient.
        let mut quiet = m.clone();
        quiet.id = 2;
        quiet.dispatch.address.clear();
        quiet.dispatch.last_error.clear();
        ix.upsert(&quiet);
        assert_eq!(ix.rows[1].text_len, 0);
        let mut out = Vec::new();
        let filter = QueueFilter {
            text: "K-7".into(),
            ..QueueFilter::default()
        };
        assert_eq!(ix.select(&filter, 0, &mut out).total, 2);
    }

    fn queued_email() -> Message {
        let mut m = Message {
            id: 1,
            message_id: "<1@x>".into(),
            recipient: "K-7".into(),
            channel: Channel::Email,
            service: "service".into(),
            template: "service".into(),
            occasions: Vec::new(),
            send_on: Date::from_ymd(2026, 12, 7).unwrap(),
            send_at: 540,
            cost: 1,
            value: 0,
            status: MessageStatus::Queued,
            why: Vec::new(),
            planned_at: touchpoint_common::domain::Timestamp(0),
            policy: 1,
            history: Vec::new(),
            dispatch: Default::default(),
        };
        m.dispatch.address = "a@b.de".into();
        m.dispatch.retry_at = Some(touchpoint_common::domain::Timestamp(60_000));
        m
    }

    #[test]
    fn folding_lowers_and_spells_sharp_s_out() {
        assert_eq!(fold("Fößel"), "fössel");
        assert_eq!(fold("FÖSSEL"), "fössel");
        assert_eq!(fold("Straße ẞ"), "strasse ss");
    }
}

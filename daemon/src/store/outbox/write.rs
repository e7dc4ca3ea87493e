//! The outbox's one writer: every write of the outbox's trees, a planning
//! run's and every later status change alike, goes through [`Outbox::write`],
//! one transaction per chunk of whole messages. It keeps the indexes (a
//! function of a message's stored state, see [`super::keys::Keys`]), the
//! occasions, the ledger, the emails sent per day and the in-memory index
//! right for any move; callers say what moves, never which keys.
//!
//! It also stores every message as a store keeps it ([`Message::bound`]: a
//! history and *why* grown without end cut to their first and newest
//! lines), and refuses a group with a message still too large to read back.
//!
//! Three doors lead to it:
//! - [`Outbox::commit_plan`]: a planning run, in chunks of whole messages
//!   (revisions first: a cancelled message frees its occasion keys, and a
//!   new message of the same run may take them again), the plan stamp with
//!   the last chunk, one flush. A crash between two chunks leaves complete
//!   messages, each with its occasion keys, and no plan stamp, so the next
//!   run plans the rest and nothing twice. (One transaction for a whole run
//!   of thousands of messages made sled hold every write and all the garbage
//!   they make until the end: slower, and hundreds of MB more at a million
//!   customers.)
//! - [`Outbox::apply`]: a group of transitions ([`Change`]), flushed once:
//!   durability costs one flush per group, not per message. Nothing outside
//!   the daemon (a relay, a lettershop directory) sees a message before the
//!   transition that hands it over is flushed.
//! - [`Outbox::apply_as_one`]: a group in one transaction, all or none, for
//!   a caller that reports on it as one (the call centre's outcomes).
//!
//! The last two count their writes ([`Outbox::writes`]): a planning run
//! knows from the count that nothing but planning moved the outbox since
//! the last run (the planner's incremental re-plan).
//!
//! The ledger rule for estimates lives once, in [`reservation`].

use std::collections::BTreeMap;

use sled::Transactional;
use touchpoint_common::outbox::{month_of, LedgerEntry, Message, MessageStatus, TrackedLinks};
use touchpoint_common::protocol::Topic;
use touchpoint_common::report::Credited;
use touchpoint_common::Date;

use super::keys::{self, Keys};
use super::Outbox;
use crate::store::db::{abort, decode, encode, tx_err};
use crate::store::error::Result;

/// Messages per transaction.
const CHUNK: usize = 128;

/// Everything one planning run writes. The ledger follows the messages: a
/// new message reserves its cost in the month of its send day, a cancelled
/// one releases it ([`reservation`]).
#[derive(Debug, Default)]
pub struct PlanWrite<'a> {
    pub new: &'a [Message],
    /// Earlier messages the run changed (cancelled), stored whole.
    pub revised: &'a [Message],
    /// Recorded after the write: what the run saw (data, policy, day).
    pub stamp: u64,
}

/// Money a transition moves in the ledger of one month and service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerDelta {
    pub reserved: i64,
    pub booked: i64,
    pub brand: i64,
}

impl std::ops::AddAssign for LedgerDelta {
    fn add_assign(&mut self, d: Self) {
        self.reserved += d.reserved;
        self.booked += d.booked;
        self.brand += d.brand;
    }
}

impl std::ops::Neg for LedgerDelta {
    type Output = Self;
    fn neg(self) -> Self {
        Self {
            reserved: -self.reserved,
            booked: -self.booked,
            brand: -self.brand,
        }
    }
}

/// The ledger's rule for estimates: from when a message enters the outbox
/// until it is booked or will not go out, it holds a reservation of its
/// estimated cost in the month of its send day. A planning run reserves
/// this for every message it adds and releases it for every message it
/// cancels; dispatch releases it when it books, cancels or fails a message
/// ([`Change::release_reservation`]) and reserves it for a letter made in
/// place of an email or a failed email retried (`crate::ledger::reserve`).
pub fn reservation(m: &Message) -> (u32, &str, LedgerDelta) {
    (
        month_of(m.send_on),
        &m.service,
        LedgerDelta {
            reserved: m.cost,
            ..LedgerDelta::default()
        },
    )
}

/// One message's move from its stored state to `after`.
#[derive(Debug)]
pub struct Change {
    /// The state the indexes hold now; `None` for a message new to the outbox.
    pub before: Option<Message>,
    pub after: Message,
    /// Ledger movements, by month (`yyyymm`) and service.
    pub ledger: Vec<(u32, String, LedgerDelta)>,
    /// Occasion keys to point at `after` (a fallback letter takes over the
    /// occasions of the email it replaces).
    pub claim_occasions: bool,
    /// Occasion keys to free, so a later plan may plan them again (a
    /// message cancelled because its consent or service went away).
    pub free_occasions: bool,
    /// Counts towards the tenant's sent-per-day figure on this day.
    pub sent_on: Option<Date>,
    /// The response credited to the message: `None` leaves it as it is,
    /// `Some(None)` takes it back, `Some(Some(c))` credits `c`.
    pub credit: Option<Option<Credited>>,
    /// Its tracked links and their clicks, to store (`None`: as they are).
    pub tracking: Option<TrackedLinks>,
}

impl Change {
    pub fn new(before: Message, after: Message) -> Self {
        Self {
            before: Some(before),
            after,
            ledger: Vec::new(),
            claim_occasions: false,
            free_occasions: false,
            sent_on: None,
            credit: None,
            tracking: None,
        }
    }

    /// Releases the estimate reserved at planning (the month of the send day).
    pub fn release_reservation(&mut self) {
        let (month, service, d) = reservation(&self.after);
        let released = (month, service.to_string(), -d);
        self.ledger.push(released);
    }
}

/// One message's move as the writer takes it: borrowed, so that a planning
/// run's messages are written without being copied.
struct Row<'a> {
    after: &'a Message,
    /// Where the message is indexed now (nowhere if new to the outbox).
    before: Keys,
    ledger: Ledger<'a>,
    claim_occasions: bool,
    free_occasions: bool,
    sent_on: Option<Date>,
    credit: Option<&'a Option<Credited>>,
    tracking: Option<&'a TrackedLinks>,
}

enum Ledger<'a> {
    /// [`reservation`] of the message, taken.
    Reserve,
    /// [`reservation`] of the message, given back.
    Release,
    /// What the caller worked out (dispatch: bookings, shares, releases).
    Moves(&'a [(u32, String, LedgerDelta)]),
}

impl<'a> Row<'a> {
    /// A message a planning run adds.
    fn planned(m: &'a Message) -> Self {
        Self {
            after: m,
            before: Keys::default(),
            ledger: Ledger::Reserve,
            claim_occasions: true,
            free_occasions: false,
            sent_on: None,
            credit: None,
            tracking: None,
        }
    }

    /// A message a planning run revised. A run revises only what it read
    /// planned or rendered, two states indexed alike.
    fn revised(m: &'a Message) -> Self {
        let cancelled = m.status == MessageStatus::Cancelled;
        Self {
            after: m,
            before: Keys::as_if(m, MessageStatus::Planned),
            ledger: if cancelled {
                Ledger::Release
            } else {
                Ledger::Moves(&[])
            },
            claim_occasions: false,
            // The occasions are free to be planned again (consent may return).
            free_occasions: cancelled,
            sent_on: None,
            credit: None,
            tracking: None,
        }
    }

    fn change(c: &'a Change) -> Self {
        Self {
            after: &c.after,
            before: c.before.as_ref().map(Keys::of).unwrap_or_default(),
            ledger: Ledger::Moves(&c.ledger),
            claim_occasions: c.claim_occasions,
            free_occasions: c.free_occasions,
            sent_on: c.sent_on,
            credit: c.credit.as_ref(),
            tracking: c.tracking.as_ref(),
        }
    }
}

impl Outbox {
    /// Reserves `n` message ids; returns the first.
    pub(in crate::store) fn reserve_message_ids(&self, n: u64) -> Result<u64> {
        self.db.writable()?;
        let end = self
            .meta
            .update_and_fetch(keys::NEXT_MESSAGE, |old| {
                let cur = old.and_then(keys::u64_value).unwrap_or(0);
                Some((cur + n).to_be_bytes().to_vec())
            })
            .map_err(self.db.err())?
            .and_then(|b| keys::u64_value(&b))
            .unwrap_or(n);
        Ok(end - n + 1)
    }

    /// Writes one planning run durably (see the module documentation).
    pub(in crate::store) fn commit_plan(&self, w: &PlanWrite) -> Result<()> {
        let _w = self.db.lock_writer();
        self.db.writable()?;
        let _counted = Counted(&self.db);
        let chunks = w
            .revised
            .chunks(CHUNK)
            .map(|c| (c, true))
            .chain(w.new.chunks(CHUNK).map(|c| (c, false)))
            .collect::<Vec<_>>();
        if chunks.is_empty() {
            self.meta
                .insert(keys::PLAN_STAMP, &w.stamp.to_be_bytes())
                .map_err(self.db.err())?;
        }
        let last = chunks.len().saturating_sub(1);
        for (n, (chunk, revised)) in chunks.into_iter().enumerate() {
            let stamp = (n == last).then_some(w.stamp);
            if revised {
                self.write(chunk.iter().map(Row::revised), stamp)?;
            } else {
                self.write(chunk.iter().map(Row::planned), stamp)?;
            }
        }
        self.db.flush()?;
        if !w.new.is_empty() || !w.revised.is_empty() {
            self.db
                .events()
                .publish(&[Topic::Outbox, Topic::Costs], Some(self.db.id()));
        }
        Ok(())
    }

    /// Writes a group of transitions and flushes once.
    pub(in crate::store) fn apply(&self, changes: &[Change]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        self.apply_unflushed(changes)?;
        self.db.flush()
    }

    /// Writes a group of transitions without flushing: the caller flushes
    /// (once for several groups) before anything outside relies on them.
    pub(in crate::store) fn apply_unflushed(&self, changes: &[Change]) -> Result<()> {
        self.db.writable()?;
        if !changes.is_empty() {
            self.writes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let _counted = (!changes.is_empty()).then(|| Counted(&self.db));
        for chunk in changes.chunks(CHUNK) {
            self.write(chunk.iter().map(Row::change), None)?;
        }
        if !changes.is_empty() {
            self.db.touch();
            self.db
                .events()
                .publish(&[Topic::Outbox, Topic::Costs], Some(self.db.id()));
        }
        Ok(())
    }

    /// Writes a group of transitions in one transaction, all or none,
    /// without flushing: for a group the caller reports on as one. sled
    /// holds a transaction whole in memory, so a group of moderate size.
    pub(in crate::store) fn apply_as_one(&self, changes: &[Change]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        self.db.writable()?;
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _counted = Counted(&self.db);
        self.write(changes.iter().map(Row::change), None)?;
        self.db.touch();
        self.db
            .events()
            .publish(&[Topic::Outbox, Topic::Costs], Some(self.db.id()));
        Ok(())
    }

    /// One transaction: whole messages with everything that hangs on them,
    /// and the plan stamp if one is given.
    fn write<'a>(&self, rows: impl Iterator<Item = Row<'a>>, stamp: Option<u64>) -> Result<()> {
        struct Prepared<'a> {
            row: Row<'a>,
            /// The message cut to what a store keeps, when it was not.
            bounded: Option<Message>,
            bytes: Vec<u8>,
            new: Keys,
            /// The contact entry's value, if it has one.
            status: Option<Vec<u8>>,
            /// The credited response to store (`Some(None)`: to remove).
            credit: Option<Option<Vec<u8>>>,
            /// The tracked links to store.
            tracking: Option<Vec<u8>>,
        }
        impl Prepared<'_> {
            /// The message as stored.
            fn message(&self) -> &Message {
                self.bounded.as_ref().unwrap_or(self.row.after)
            }
        }
        let mut prepared = Vec::with_capacity(rows.size_hint().0);
        let mut ledger: BTreeMap<(u32, &str), LedgerDelta> = BTreeMap::new();
        let mut daily: BTreeMap<[u8; 4], u64> = BTreeMap::new();
        for row in rows {
            let m = row.after;
            match row.ledger {
                // A free message reserves nothing: no ledger row for it.
                Ledger::Reserve | Ledger::Release if m.cost == 0 => {}
                Ledger::Reserve | Ledger::Release => {
                    let (month, service, d) = reservation(m);
                    let d = if matches!(row.ledger, Ledger::Release) {
                        -d
                    } else {
                        d
                    };
                    *ledger.entry((month, service)).or_default() += d;
                }
                Ledger::Moves(moves) => {
                    for (month, service, d) in moves {
                        *ledger.entry((*month, service.as_str())).or_default() += *d;
                    }
                }
            }
            if let Some(day) = row.sent_on {
                *daily.entry(keys::daily(day)).or_insert(0) += 1;
            }
            // Whoever wrote it, a history that grew with every attempt and
            // action, or a line longer than any should be, is cut here
            // (a copy only then): a message stays a record a store reads.
            let bounded = (!m.is_bounded()).then(|| {
                let mut b = m.clone();
                b.bound();
                b
            });
            let stored = bounded.as_ref().unwrap_or(m);
            let new = Keys::of(stored);
            let status = match new.contact {
                Some(_) => Some(encode("contacts", &stored.status)?),
                None => None,
            };
            let credit = match row.credit {
                None => None,
                Some(None) => Some(None),
                Some(Some(c)) => Some(Some(encode("credits", c)?)),
            };
            let tracking = match row.tracking {
                Some(t) => Some(encode("tracking", t)?),
                None => None,
            };
            prepared.push(Prepared {
                credit,
                tracking,
                // Refused whole (the whole transaction) if still too large.
                bytes: encode("outbox", stored)?,
                row,
                bounded,
                new,
                status,
            });
        }
        let ledger: Vec<(Vec<u8>, LedgerDelta)> = ledger
            .into_iter()
            .map(|((month, service), d)| (keys::ledger(month, service), d))
            .collect();
        // Held across the transaction, so the index follows the writes in
        // the order they were made.
        let mut index = self.index_lock();
        (
            &self.outbox,
            &self.occasions,
            &self.contacts,
            &self.by_day,
            &self.queue,
            &self.inflight,
            &self.ledger,
            &self.daily,
            &self.meta,
            &self.credits,
            &self.tracking,
        )
            .transaction(
                |(
                    outbox,
                    occasions,
                    contacts,
                    by_day,
                    queue,
                    inflight,
                    ledger_t,
                    daily_t,
                    meta,
                    credits,
                    tracking,
                )| {
                    for p in &prepared {
                        let (m, old) = (p.message(), &p.row.before);
                        let id = keys::id(m.id);
                        outbox.insert(&id, p.bytes.as_slice())?;
                        if old.by_day != p.new.by_day {
                            if let Some(k) = old.by_day {
                                by_day.remove(&k)?;
                            }
                            if let Some(k) = p.new.by_day {
                                by_day.insert(&k, &[])?;
                            }
                        }
                        if old.queue != p.new.queue {
                            if let Some(k) = old.queue {
                                queue.remove(&k)?;
                            }
                            if let Some(k) = p.new.queue {
                                queue.insert(&k, &[])?;
                            }
                        }
                        match (old.inflight, p.new.inflight) {
                            (false, true) => {
                                inflight.insert(&id, &[])?;
                            }
                            (true, false) => {
                                inflight.remove(&id)?;
                            }
                            _ => {}
                        }
                        if old.contact != p.new.contact {
                            if let Some(k) = &old.contact {
                                contacts.remove(k.as_slice())?;
                            }
                        }
                        if let (Some(k), Some(status)) = (&p.new.contact, &p.status) {
                            contacts.insert(k.as_slice(), status.as_slice())?;
                        }
                        if p.row.free_occasions {
                            for o in &m.occasions {
                                // Only if it still points here.
                                if occasions.get(o.key.as_bytes())?.as_deref() == Some(&id[..]) {
                                    occasions.remove(o.key.as_bytes())?;
                                }
                            }
                        }
                        if p.row.claim_occasions {
                            for o in &m.occasions {
                                occasions.insert(o.key.as_bytes(), &id)?;
                            }
                        }
                        match &p.credit {
                            Some(Some(c)) => {
                                credits.insert(&id, c.as_slice())?;
                            }
                            Some(None) => {
                                credits.remove(&id)?;
                            }
                            None => {}
                        }
                        if let Some(t) = &p.tracking {
                            tracking.insert(&id, t.as_slice())?;
                        }
                    }
                    for (k, d) in &ledger {
                        let mut e: LedgerEntry = match ledger_t.get(k.as_slice())? {
                            Some(b) => decode("ledger", &b).map_err(abort)?,
                            None => LedgerEntry::default(),
                        };
                        e.reserved += d.reserved;
                        e.booked += d.booked;
                        e.brand += d.brand;
                        ledger_t.insert(k.as_slice(), encode("ledger", &e).map_err(abort)?)?;
                    }
                    for (day, n) in &daily {
                        let old = daily_t
                            .get(day)?
                            .and_then(|b| keys::u64_value(&b))
                            .unwrap_or(0);
                        daily_t.insert(day, &(old + n).to_be_bytes())?;
                    }
                    if let Some(stamp) = stamp {
                        meta.insert(keys::PLAN_STAMP, &stamp.to_be_bytes())?;
                    }
                    Ok(())
                },
            )
            .map_err(tx_err(&self.db))?;
        if let Some(ix) = index.as_mut() {
            for p in &prepared {
                ix.upsert(p.message());
            }
        }
        Ok(())
    }
}

/// Counts a write group of the tenant's outbox on the change bus
/// (`Events::outbox_written`) as it goes out of scope: after the group's
/// writes, whether they all went or one failed part-way (what went before
/// is written all the same, and the dispatcher must look again).
struct Counted<'a>(&'a crate::store::db::TenantDb);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.events().outbox_written(self.0.id());
    }
}

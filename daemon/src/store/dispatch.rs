//! A tenant's outbox on its way out: status transitions and the indexes that
//! follow a message's status.
//!
//! Every index is a function of a message's stored state, so one function
//! keeps them all right for any transition:
//!
//! | index      | holds a message while it is | key                            |
//! |------------|-----------------------------|--------------------------------|
//! | `by_day`   | planned or rendered         | send day, id                   |
//! | `queue`    | queued or deferred          | channel, due (unix ms), id     |
//! | `inflight` | sending                     | id                             |
//! | `contacts` | a contact (not failed, cancelled, replaced) | recipient, send day, id |
//!
//! A group of transitions is written in transactions of whole messages and
//! flushed once ([`TenantStore::apply`]): durability costs one flush per
//! group, not per message. Nothing outside the daemon (a relay, a lettershop
//! directory) sees a message before the transition that hands it over is
//! flushed.

use std::collections::BTreeMap;

use sled::Transactional;
use touchpoint_common::domain::{Channel, Consent};
use touchpoint_common::outbox::{month_of, LedgerEntry, Message, MessageStatus};
use touchpoint_common::protocol::Topic;
use touchpoint_common::Date;

use super::error::Result;
use super::import_txn::consent_key;
use super::tenant::{decode, encode, prefix_of, tx_err, TenantStore};

/// Messages per transaction.
const CHUNK: usize = 128;

fn contact_key(recipient: &str, day: Date, id: u64) -> Vec<u8> {
    let mut k = prefix_of(recipient);
    k.extend_from_slice(&day.key_bytes());
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn day_key(day: Date, id: u64) -> [u8; 12] {
    let mut k = [0; 12];
    k[..4].copy_from_slice(&day.key_bytes());
    k[4..].copy_from_slice(&id.to_be_bytes());
    k
}

fn queue_key(channel: Channel, due: i64, id: u64) -> [u8; 17] {
    let mut k = [0; 17];
    k[0] = channel as u8;
    k[1..9].copy_from_slice(&(due.max(0) as u64).to_be_bytes());
    k[9..].copy_from_slice(&id.to_be_bytes());
    k
}

fn ledger_key(month: u32, service: &str) -> Vec<u8> {
    let mut k = month.to_be_bytes().to_vec();
    k.extend_from_slice(service.as_bytes());
    k
}

fn id_at(k: &[u8], at: usize) -> Option<u64> {
    k.get(at..at + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
}

/// The index keys a message in a given state is found under.
#[derive(Default)]
struct Keys {
    by_day: Option<[u8; 12]>,
    queue: Option<[u8; 17]>,
    inflight: bool,
    contact: Option<Vec<u8>>,
}

fn keys(m: &Message) -> Keys {
    use MessageStatus as S;
    let due = m.dispatch.retry_at.map(|t| t.0).unwrap_or(0);
    Keys {
        by_day: m.status.is_revisable().then(|| day_key(m.send_on, m.id)),
        queue: matches!(m.status, S::Queued | S::Deferred).then(|| queue_key(m.channel, due, m.id)),
        inflight: m.status == S::Sending,
        contact: m
            .status
            .is_contact()
            .then(|| contact_key(&m.recipient, m.send_on, m.id)),
    }
}

/// Money a transition moves in the ledger of one month and service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerDelta {
    pub reserved: i64,
    pub booked: i64,
    pub brand: i64,
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
        }
    }

    /// Releases the estimate reserved at planning (the month of the send day).
    pub fn release_reservation(&mut self) {
        let m = &self.after;
        self.ledger.push((
            month_of(m.send_on),
            m.service.clone(),
            LedgerDelta {
                reserved: -m.cost,
                ..LedgerDelta::default()
            },
        ));
    }
}

impl TenantStore {
    /// Writes a group of transitions and flushes once.
    pub fn apply(&self, changes: &[Change]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        self.apply_unflushed(changes)?;
        self.flush()
    }

    /// Writes a group of transitions without flushing: the caller flushes
    /// (once for several groups) before anything outside relies on them.
    pub fn apply_unflushed(&self, changes: &[Change]) -> Result<()> {
        self.writable()?;
        for chunk in changes.chunks(CHUNK) {
            self.apply_chunk(chunk)?;
        }
        if !changes.is_empty() {
            self.touch();
            self.events
                .publish(&[Topic::Outbox, Topic::Costs], Some(self.id()));
        }
        Ok(())
    }

    fn apply_chunk(&self, chunk: &[Change]) -> Result<()> {
        struct Row<'a> {
            c: &'a Change,
            bytes: Vec<u8>,
            status: Vec<u8>,
            old: Keys,
            new: Keys,
        }
        let mut rows = Vec::with_capacity(chunk.len());
        let mut ledger: BTreeMap<Vec<u8>, LedgerDelta> = BTreeMap::new();
        let mut daily: BTreeMap<[u8; 4], u64> = BTreeMap::new();
        for c in chunk {
            rows.push(Row {
                c,
                bytes: encode("outbox", &c.after)?,
                status: encode("contacts", &c.after.status)?,
                old: c.before.as_ref().map(keys).unwrap_or_default(),
                new: keys(&c.after),
            });
            for (month, service, d) in &c.ledger {
                let e = ledger.entry(ledger_key(*month, service)).or_default();
                e.reserved += d.reserved;
                e.booked += d.booked;
                e.brand += d.brand;
            }
            if let Some(day) = c.sent_on {
                *daily.entry(day.key_bytes()).or_insert(0) += 1;
            }
        }
        let ledger: Vec<(Vec<u8>, LedgerDelta)> = ledger.into_iter().collect();
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
        )
            .transaction(
                |(outbox, occasions, contacts, by_day, queue, inflight, ledger_t, daily_t)| {
                    for r in &rows {
                        let id = r.c.after.id.to_be_bytes();
                        outbox.insert(&id, r.bytes.as_slice())?;
                        if r.old.by_day != r.new.by_day {
                            if let Some(k) = r.old.by_day {
                                by_day.remove(&k)?;
                            }
                            if let Some(k) = r.new.by_day {
                                by_day.insert(&k, &[])?;
                            }
                        }
                        if r.old.queue != r.new.queue {
                            if let Some(k) = r.old.queue {
                                queue.remove(&k)?;
                            }
                            if let Some(k) = r.new.queue {
                                queue.insert(&k, &[])?;
                            }
                        }
                        match (r.old.inflight, r.new.inflight) {
                            (false, true) => {
                                inflight.insert(&id, &[])?;
                            }
                            (true, false) => {
                                inflight.remove(&id)?;
                            }
                            _ => {}
                        }
                        if r.old.contact != r.new.contact {
                            if let Some(k) = &r.old.contact {
                                contacts.remove(k.as_slice())?;
                            }
                        }
                        if let Some(k) = &r.new.contact {
                            contacts.insert(k.as_slice(), r.status.as_slice())?;
                        }
                        if r.c.free_occasions {
                            for o in &r.c.after.occasions {
                                // Only if it still points here.
                                if occasions.get(o.key.as_bytes())?.as_deref() == Some(&id[..]) {
                                    occasions.remove(o.key.as_bytes())?;
                                }
                            }
                        }
                        if r.c.claim_occasions {
                            for o in &r.c.after.occasions {
                                occasions.insert(o.key.as_bytes(), &id)?;
                            }
                        }
                    }
                    for (k, d) in &ledger {
                        let mut e: LedgerEntry = match ledger_t.get(k.as_slice())? {
                            Some(b) => decode("ledger", &b).map_err(|e| {
                                sled::transaction::ConflictableTransactionError::Abort(
                                    e.to_string(),
                                )
                            })?,
                            None => LedgerEntry::default(),
                        };
                        e.reserved += d.reserved;
                        e.booked += d.booked;
                        e.brand += d.brand;
                        let bytes = encode("ledger", &e).map_err(|e| {
                            sled::transaction::ConflictableTransactionError::Abort(e.to_string())
                        })?;
                        ledger_t.insert(k.as_slice(), bytes)?;
                    }
                    for (day, n) in &daily {
                        let old = daily_t
                            .get(day)?
                            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
                            .map(u64::from_be_bytes)
                            .unwrap_or(0);
                        daily_t.insert(day, &(old + n).to_be_bytes())?;
                    }
                    Ok(())
                },
            )
            .map_err(tx_err(self))?;
        if let Some(ix) = index.as_mut() {
            for c in chunk {
                ix.upsert(&c.after);
            }
        }
        Ok(())
    }

    /// Ids of messages queued or deferred on `channel` and due at `now_ms`
    /// or earlier, earliest first, at most `limit`.
    pub fn due(&self, channel: Channel, now_ms: i64, limit: usize) -> Result<Vec<u64>> {
        let lo = queue_key(channel, 0, 0);
        let hi = queue_key(channel, now_ms, u64::MAX);
        let mut out = Vec::new();
        for k in self.queue.range(lo..=hi).keys().take(limit) {
            let k = k.map_err(self.err())?;
            if let Some(id) = id_at(&k, 9) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Like [`TenantStore::due`], from after the `(due, id)` position a
    /// previous page ended at: a caller that skips messages (paused, a busy
    /// domain) reads on instead of seeing the same ones again.
    pub fn due_after(
        &self,
        channel: Channel,
        now_ms: i64,
        after: Option<(i64, u64)>,
        limit: usize,
    ) -> Result<Vec<(i64, u64)>> {
        use std::ops::Bound;
        let lo = match after {
            Some((due, id)) => Bound::Excluded(queue_key(channel, due, id)),
            None => Bound::Included(queue_key(channel, 0, 0)),
        };
        let hi = Bound::Included(queue_key(channel, now_ms, u64::MAX));
        let mut out = Vec::new();
        for k in self.queue.range::<[u8; 17], _>((lo, hi)).keys().take(limit) {
            let k = k.map_err(self.err())?;
            if let (Some(due), Some(id)) = (id_at(&k, 1), id_at(&k, 9)) {
                out.push((due as i64, id));
            }
        }
        Ok(out)
    }

    /// When the next queued or deferred message on `channel` is due (unix ms).
    pub fn next_due(&self, channel: Channel) -> Result<Option<i64>> {
        let lo = queue_key(channel, 0, 0);
        let hi = queue_key(channel, i64::MAX, u64::MAX);
        Ok(self
            .queue
            .range(lo..=hi)
            .keys()
            .next()
            .transpose()
            .map_err(self.err())?
            .and_then(|k| id_at(&k, 1))
            .map(|d| d as i64))
    }

    /// Messages queued or deferred per channel.
    pub fn queued_count(&self, channel: Channel) -> usize {
        let lo = queue_key(channel, 0, 0);
        let hi = queue_key(channel, i64::MAX, u64::MAX);
        self.queue.range(lo..=hi).count()
    }

    /// Ids of messages marked sending: handed to a transport when the daemon
    /// last stopped, or now.
    pub fn in_flight(&self) -> Result<Vec<u64>> {
        self.inflight
            .iter()
            .keys()
            .map(|k| k.map_err(self.err()).map(|k| id_at(&k, 0).unwrap_or(0)))
            .collect()
    }

    /// Ids of planned or rendered messages whose send day is `day` or earlier.
    pub fn releasable(&self, day: Date) -> Result<Vec<u64>> {
        let hi = day_key(day, u64::MAX);
        let mut out = Vec::new();
        for k in self.by_day.range(..=hi).keys() {
            let k = k.map_err(self.err())?;
            if let Some(id) = id_at(&k, 4) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Emails sent on `day`.
    pub fn sent_on(&self, day: Date) -> Result<u64> {
        Ok(self
            .daily
            .get(day.key_bytes())
            .map_err(self.err())?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }

    /// Records an address that hard-bounced: it is not used again.
    pub fn mark_bad_address(&self, address: &str, reason: &str) -> Result<()> {
        self.writable()?;
        self.bad_addresses
            .insert(address.trim().to_lowercase().as_bytes(), reason.as_bytes())
            .map_err(self.err())?;
        self.bump_generation()
    }

    /// Why an address is not used, if it hard-bounced.
    pub fn bad_address(&self, address: &str) -> Result<Option<String>> {
        Ok(self
            .bad_addresses
            .get(address.trim().to_lowercase().as_bytes())
            .map_err(self.err())?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Every address that hard-bounced (lower case), with the reason.
    pub fn bad_addresses(&self) -> Result<Vec<(String, String)>> {
        self.bad_addresses
            .iter()
            .map(|kv| {
                kv.map_err(self.err()).map(|(k, v)| {
                    (
                        String::from_utf8_lossy(&k).into_owned(),
                        String::from_utf8_lossy(&v).into_owned(),
                    )
                })
            })
            .collect()
    }

    /// Records a consent statement unless a later one is on record (an
    /// unsubscribe, a call-centre answer). Returns whether it was recorded.
    pub fn record_consent(&self, c: &Consent) -> Result<bool> {
        // Not while an import is applied: the import decides against the
        // stored statement and may roll back to it, either of which would
        // lose a withdrawal recorded in between.
        let _w = self.lock_writer();
        self.writable()?;
        let key = consent_key(&c.customer_no, c.channel);
        if let Some(old) = self.consents.get(&key).map_err(self.err())? {
            let old: Consent = decode("consents", &old)?;
            if old.at > c.at || (old.granted == c.granted && old.at == c.at) {
                return Ok(false);
            }
        }
        self.consents
            .insert(key, encode("consents", c)?)
            .map_err(self.err())?;
        self.bump_generation()?;
        Ok(true)
    }
}

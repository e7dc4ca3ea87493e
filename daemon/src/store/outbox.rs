//! A tenant's outbox: planned messages, the occasions they cover, each
//! recipient's contact history, the load per send day and the budget ledger.
//!
//! The planner writes a run in chunks of whole messages, each chunk one
//! transaction: the messages, their occasion keys, contact and day entries
//! and their share of the ledger. A crash between two chunks leaves complete
//! messages, each with its occasion keys, and no plan stamp, so the next run
//! plans the rest and nothing twice. (One transaction for a whole run of
//! thousands of messages made sled hold every write and all the garbage they
//! make until the end: slower, and hundreds of MB more at a million customers.)

use std::collections::BTreeMap;

use sled::transaction::ConflictableTransactionError;
use sled::Transactional;
use touchpoint_common::outbox::{month_of, LedgerEntry, Message, MessageStatus};
use touchpoint_common::protocol::Topic;
use touchpoint_common::Date;

use super::error::{Result, StoreError};
use super::tenant::{decode, encode, prefix_of, tx_err, TenantStore};

const META_NEXT_MESSAGE: &[u8] = b"next_message_id";
const META_PLAN_STAMP: &[u8] = b"plan_stamp";
const META_GENERATION: &[u8] = b"generation";

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

fn ledger_key(month: u32, service: &str) -> Vec<u8> {
    let mut k = month.to_be_bytes().to_vec();
    k.extend_from_slice(service.as_bytes());
    k
}

fn date_from_key(b: &[u8]) -> Option<Date> {
    let raw = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) ^ 0x8000_0000;
    Some(Date::from_days(raw as i32))
}

/// One earlier contact of a recipient, as capping sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contact {
    pub day: Date,
    pub message: u64,
    pub status: MessageStatus,
}

/// Everything one planning run writes. The ledger follows the messages: a
/// new message reserves its cost in the month of its send day, a cancelled
/// one releases it.
#[derive(Debug, Default)]
pub struct PlanWrite<'a> {
    pub new: &'a [Message],
    /// Earlier messages the run changed (cancelled), stored whole.
    pub revised: &'a [Message],
    /// Recorded after the write: what the run saw (data, policy, day).
    pub stamp: u64,
}

fn abort(e: StoreError) -> ConflictableTransactionError<String> {
    ConflictableTransactionError::Abort(e.to_string())
}

/// Messages per transaction when writing a run.
const PLAN_CHUNK: usize = 128;

impl TenantStore {
    pub fn message(&self, id: u64) -> Result<Option<Message>> {
        self.outbox
            .get(id.to_be_bytes())
            .map_err(self.err())?
            .map(|b| decode("outbox", &b))
            .transpose()
    }

    /// All messages, oldest first.
    pub fn messages(&self) -> impl DoubleEndedIterator<Item = Result<Message>> + '_ {
        self.outbox
            .iter()
            .values()
            .map(move |r| r.map_err(self.err()).and_then(|b| decode("outbox", &b)))
    }

    pub fn message_count(&self) -> usize {
        self.outbox.len()
    }

    /// The message an occasion was planned into, if any.
    pub fn planned_occasion(&self, key: &str) -> Result<Option<u64>> {
        Ok(self
            .occasions
            .get(key.as_bytes())
            .map_err(self.err())?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map(u64::from_be_bytes))
    }

    /// A recipient's messages that count as contacts, in date order.
    pub fn contacts_of(&self, recipient: &str) -> Result<Vec<Contact>> {
        let prefix = prefix_of(recipient);
        let mut out = Vec::new();
        for kv in self.contacts.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(self.err())?;
            let rest = &k[prefix.len()..];
            let (Some(day), Some(id)) = (
                date_from_key(rest),
                rest.get(4..12)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes),
            ) else {
                continue;
            };
            let status: MessageStatus = decode("contacts", &v)?;
            out.push(Contact {
                day,
                message: id,
                status,
            });
        }
        Ok(out)
    }

    /// Messages not yet sent per send day, from `from` on.
    pub fn day_load(&self, from: Date) -> Result<BTreeMap<Date, u32>> {
        let mut out = BTreeMap::new();
        for k in self.by_day.range(from.key_bytes()..).keys() {
            let k = k.map_err(self.err())?;
            if let Some(d) = date_from_key(&k) {
                *out.entry(d).or_insert(0) += 1;
            }
        }
        Ok(out)
    }

    /// Messages not yet sent whose send day is `from` or later.
    pub fn pending_messages(&self, from: Date) -> Result<Vec<Message>> {
        let mut out = Vec::new();
        for k in self.by_day.range(from.key_bytes()..).keys() {
            let k = k.map_err(self.err())?;
            let id = k
                .get(4..12)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes);
            if let Some(m) = id.map(|id| self.message(id)).transpose()?.flatten() {
                out.push(m);
            }
        }
        Ok(out)
    }

    pub fn ledger_entry(&self, month: u32, service: &str) -> Result<LedgerEntry> {
        Ok(self
            .ledger
            .get(ledger_key(month, service))
            .map_err(self.err())?
            .map(|b| decode("ledger", &b))
            .transpose()?
            .unwrap_or_default())
    }

    /// Every ledger row, by month then service.
    pub fn ledger(&self) -> Result<Vec<(u32, String, LedgerEntry)>> {
        let mut out = Vec::new();
        for kv in self.ledger.iter() {
            let (k, v) = kv.map_err(self.err())?;
            let Some(month) = k.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
                continue;
            };
            out.push((
                u32::from_be_bytes(month),
                String::from_utf8_lossy(&k[4..]).into_owned(),
                decode("ledger", &v)?,
            ));
        }
        Ok(out)
    }

    /// Reserves `n` message ids.
    pub fn reserve_message_ids(&self, n: u64) -> Result<u64> {
        self.writable()?;
        let end = self
            .meta
            .update_and_fetch(META_NEXT_MESSAGE, |old| {
                let cur = old
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                Some((cur + n).to_be_bytes().to_vec())
            })
            .map_err(self.err())?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(n);
        Ok(end - n + 1)
    }

    /// Changes whenever the tenant's data changes (imports, merges, undos,
    /// consent changes): the planner skips a tenant whose data, policy and day
    /// are those of its last run.
    pub fn data_version(&self) -> Result<u64> {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for key in [
            super::tenant::META_COUNTERS,
            b"next_merge_id".as_slice(),
            META_GENERATION,
        ] {
            let v = self.meta.get(key).map_err(self.err())?;
            for b in v.as_deref().unwrap_or(&[]).iter().chain(&[0xff]) {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        Ok(h)
    }

    /// Marks the data changed for writers that leave the counters alone.
    pub fn bump_generation(&self) -> Result<()> {
        self.writable()?;
        self.meta
            .update_and_fetch(META_GENERATION, |old| {
                let n = old
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                Some((n + 1).to_be_bytes().to_vec())
            })
            .map_err(self.err())?;
        self.touch();
        // Consents and bad addresses from dispatch: the opt-in counts of the
        // listing follow with the flusher's next round.
        self.figures_changed();
        self.events.publish(&[Topic::Tenants], Some(self.id()));
        Ok(())
    }

    pub fn plan_stamp(&self) -> Result<Option<u64>> {
        Ok(self
            .meta
            .get(META_PLAN_STAMP)
            .map_err(self.err())?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map(u64::from_be_bytes))
    }

    /// Writes one planning run durably, revisions first (a cancelled
    /// message frees its occasion keys, and a new message of the same run
    /// may take them again), in chunks of whole messages (see the module
    /// documentation), the stamp with the last chunk.
    pub fn commit_plan(&self, w: &PlanWrite) -> Result<()> {
        let _w = self.lock_writer();
        self.writable()?;
        let chunks = w
            .revised
            .chunks(PLAN_CHUNK)
            .map(|c| (c, true))
            .chain(w.new.chunks(PLAN_CHUNK).map(|c| (c, false)))
            .collect::<Vec<_>>();
        if chunks.is_empty() {
            self.meta
                .insert(META_PLAN_STAMP, &w.stamp.to_be_bytes())
                .map_err(self.err())?;
        }
        let last = chunks.len().saturating_sub(1);
        for (n, (chunk, revised)) in chunks.into_iter().enumerate() {
            let stamp = (n == last).then_some(w.stamp);
            self.write_chunk(chunk, revised, stamp)?;
        }
        self.flush()?;
        if !w.new.is_empty() || !w.revised.is_empty() {
            self.events
                .publish(&[Topic::Outbox, Topic::Costs], Some(self.id()));
        }
        Ok(())
    }

    /// One transaction: whole messages with everything that hangs on them.
    fn write_chunk(&self, chunk: &[Message], revised: bool, stamp: Option<u64>) -> Result<()> {
        let mut rows = Vec::with_capacity(chunk.len());
        let mut ledger: BTreeMap<(u32, &str), i64> = BTreeMap::new();
        for m in chunk {
            rows.push((
                m,
                encode("outbox", m)?,
                encode("contacts", &m.status)?,
                contact_key(&m.recipient, m.send_on, m.id),
            ));
            let delta = match (revised, m.status) {
                (false, _) => m.cost,
                (true, MessageStatus::Cancelled) => -m.cost,
                (true, _) => 0,
            };
            if delta != 0 {
                *ledger.entry((month_of(m.send_on), &m.service)).or_insert(0) += delta;
            }
        }
        let ledger: Vec<(Vec<u8>, i64)> = ledger
            .into_iter()
            .map(|((month, service), delta)| (ledger_key(month, service), delta))
            .collect();
        // Held across the transaction, so the index follows the writes in
        // the order they were made.
        let mut index = self.index_lock();
        (
            &self.outbox,
            &self.occasions,
            &self.contacts,
            &self.by_day,
            &self.ledger,
            &self.meta,
        )
            .transaction(|(outbox, occasions, contacts, by_day, ledger_t, meta)| {
                for (m, bytes, status, ck) in &rows {
                    let id = m.id.to_be_bytes();
                    outbox.insert(&id, bytes.as_slice())?;
                    if !revised {
                        for o in &m.occasions {
                            occasions.insert(o.key.as_bytes(), &id)?;
                        }
                        contacts.insert(ck.as_slice(), status.as_slice())?;
                        by_day.insert(&day_key(m.send_on, m.id), &[])?;
                        continue;
                    }
                    if m.status.is_contact() {
                        contacts.insert(ck.as_slice(), status.as_slice())?;
                    } else {
                        contacts.remove(ck.as_slice())?;
                    }
                    if !m.status.is_revisable() {
                        by_day.remove(&day_key(m.send_on, m.id))?;
                    }
                    if m.status == MessageStatus::Cancelled {
                        // The occasions are free to be planned again (consent may return).
                        for o in &m.occasions {
                            occasions.remove(o.key.as_bytes())?;
                        }
                    }
                }
                for (k, delta) in &ledger {
                    let mut e: LedgerEntry = match ledger_t.get(k.as_slice())? {
                        Some(b) => decode("ledger", &b).map_err(abort)?,
                        None => LedgerEntry::default(),
                    };
                    e.reserved += delta;
                    ledger_t.insert(k.as_slice(), encode("ledger", &e).map_err(abort)?)?;
                }
                if let Some(stamp) = stamp {
                    meta.insert(META_PLAN_STAMP, &stamp.to_be_bytes())?;
                }
                Ok(())
            })
            .map_err(tx_err(self))?;
        if let Some(ix) = index.as_mut() {
            for m in chunk {
                ix.upsert(m);
            }
        }
        Ok(())
    }
}

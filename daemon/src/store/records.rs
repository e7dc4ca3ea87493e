//! The dealer's data in its room: customers, vehicles and their holders,
//! consent statements, service visits, reported responses (appointments,
//! offers accepted), the import history, merges, and the
//! addresses that hard-bounced; the record counts, and the figures the
//! tenants listing shows, derived from them.
//!
//! Owns the trees `customers`, `vehicles`, `owner`, `consents`, `visits`,
//! `responses`, `imports`, `import_hash`, `merges`, `merged`, `bad_addresses`,
//! `journeys`, `as_of`, `suppressed` and `objections` (their keys: [`keys`]), and the `meta` keys `counters`, `next_import_id`,
//! `next_merge_id`, `pending_import` and `generation`. Only this file and
//! its children reach them: `import` (an import, journaled), `merges`
//! (merges and their undo), `journeys` (the derived journey stages),
//! `erasure` (a person erased, the suppression list, objections); this file writes the rest (import reports that
//! change no data, consent statements and bad addresses from dispatch).
//!
//! Uses `db`, `central` (where figures go) and the leaf modules; must not
//! import `outbox`, `tenant` or the root. Uses nothing of its children.

pub(super) mod changes;
pub(super) mod erasure;
pub(super) mod import;
mod journeys;
mod keys;
mod merges;
pub(super) mod tracker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sled::Transactional;
use touchpoint_common::consent;
use touchpoint_common::domain::{
    Channel, Consent, Customer, ImportReport, ServiceVisit, TenantStats, Vehicle,
};
use touchpoint_common::limits;
use touchpoint_common::protocol::{OptIns, Topic};
use touchpoint_common::report::ReportedResponse;

use super::central::{FigureBoard, TenantFigures};
use super::db::{abort, decode, encode, encode_tx, tx_err, TenantDb};
use super::error::Result;
use keys::{META_COUNTERS, META_GENERATION, META_NEXT_IMPORT, META_NEXT_MERGE};

/// Record counts kept up to date by every write, so stats never scan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Counters {
    customers: u64,
    vehicles: u64,
    consents: u64,
    visits: u64,
    imports: u64,
    merges_active: u64,
}

pub(super) struct Records {
    db: Arc<TenantDb>,
    customers: sled::Tree,
    vehicles: sled::Tree,
    owner: sled::Tree,
    consents: sled::Tree,
    visits: sled::Tree,
    responses: sled::Tree,
    imports: sled::Tree,
    import_hash: sled::Tree,
    merges: sled::Tree,
    merged: sled::Tree,
    bad_addresses: sled::Tree,
    /// customer_no -> JourneyRecord (`journeys.rs`).
    journeys: sled::Tree,
    /// The day the stored data of a customer or vehicle is as of, by the
    /// export that last wrote it ([`keys::as_of_customer`],
    /// [`keys::as_of_vehicle`]): an older export does not overwrite it.
    /// Absent for records stored before it was kept (any export applies).
    as_of: sled::Tree,
    /// Keyed hashes of erased people's identifiers -> `Suppression`
    /// (`erasure.rs`).
    suppressed: sled::Tree,
    /// customer_no -> `Objection` (`erasure.rs`).
    objections: sled::Tree,
    /// Shared with the outbox, which owns its other keys.
    meta: sled::Tree,
    /// What changed since the derived views were computed, and the
    /// opt-in counts at a version (`changes.rs`).
    changes: Mutex<tracker::Changes>,
    /// Records of the dealer's data decoded (`changes.rs`, `records_read`).
    reads: AtomicU64,
    /// Write windows opened and closed: odd while one is open (`changes.rs`).
    writing: AtomicU64,
    /// Where the figures the tenants listing shows are kept (central store).
    board: FigureBoard,
    /// The figures changed since they were last written to the board.
    figures_due: AtomicBool,
    /// An import interrupted by an earlier version after its commit point
    /// was completed when this store opened (it still needs its identity pass).
    completed_import: AtomicBool,
    /// Raised by every change of the customers (an import committed or
    /// rolled back, a merge): what the outbox index's recipient texts follow.
    people_epoch: AtomicU64,
}

impl Records {
    pub(super) fn open(db: Arc<TenantDb>, board: FigureBoard) -> Result<Self> {
        Ok(Self {
            customers: db.tree("customers")?,
            vehicles: db.tree("vehicles")?,
            owner: db.tree("owner")?,
            consents: db.tree("consents")?,
            visits: db.tree("visits")?,
            responses: db.tree("responses")?,
            imports: db.tree("imports")?,
            import_hash: db.tree("import_hash")?,
            merges: db.tree("merges")?,
            merged: db.tree("merged")?,
            bad_addresses: db.tree("bad_addresses")?,
            journeys: db.tree("journeys")?,
            as_of: db.tree("as_of")?,
            suppressed: db.tree("suppressed")?,
            objections: db.tree("objections")?,
            meta: db.tree("meta")?,
            db,
            changes: Mutex::new(tracker::Changes::default()),
            reads: AtomicU64::new(0),
            writing: AtomicU64::new(0),
            board,
            figures_due: AtomicBool::new(false),
            completed_import: AtomicBool::new(false),
            people_epoch: AtomicU64::new(0),
        })
    }

    fn counters(&self) -> Result<Counters> {
        match self.meta.get(META_COUNTERS).map_err(self.db.err())? {
            Some(b) => decode("meta", &b),
            None => Ok(Counters::default()),
        }
    }

    fn next_id(&self, key: &[u8]) -> Result<u64> {
        self.db.writable()?;
        let next = self
            .meta
            .update_and_fetch(key, |old| {
                let n = old
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0)
                    + 1;
                Some(n.to_be_bytes().to_vec())
            })
            .map_err(self.db.err())?;
        Ok(next
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(1))
    }

    pub(super) fn customer(&self, customer_no: &str) -> Result<Option<Customer>> {
        self.customers
            .get(customer_no.as_bytes())
            .map_err(self.db.err())?
            .map(|b| {
                self.note_read();
                decode("customers", &b)
            })
            .transpose()
    }

    pub(super) fn customers(&self) -> impl Iterator<Item = Result<Customer>> + '_ {
        self.customers.iter().values().map(move |r| {
            self.note_read();
            r.map_err(self.db.err())
                .and_then(|b| decode("customers", &b))
        })
    }

    pub(super) fn vehicle(&self, vin: &str) -> Result<Option<Vehicle>> {
        self.vehicles
            .get(vin.as_bytes())
            .map_err(self.db.err())?
            .map(|b| {
                self.note_read();
                decode("vehicles", &b)
            })
            .transpose()
    }

    pub(super) fn vehicles(&self) -> impl Iterator<Item = Result<Vehicle>> + '_ {
        self.vehicles.iter().values().map(move |r| {
            self.note_read();
            r.map_err(self.db.err())
                .and_then(|b| decode("vehicles", &b))
        })
    }

    pub(super) fn vehicles_of(&self, customer_no: &str) -> Result<Vec<Vehicle>> {
        let prefix = keys::customer_prefix(customer_no);
        let mut out = Vec::new();
        for k in self.owner.scan_prefix(&prefix).keys() {
            let k = k.map_err(self.db.err())?;
            // An import interrupted and completed after a restart may leave a
            // stale entry behind; the vehicle record is the truth.
            if let Some(v) = self.vehicle(&String::from_utf8_lossy(&k[prefix.len()..]))? {
                if v.customer_no == customer_no {
                    out.push(v);
                }
            }
        }
        Ok(out)
    }

    /// Vehicles whose holder's customer number is not a stored customer:
    /// how many, and the first `limit` of them (VIN, customer number) in
    /// the order of their holders' numbers. Reads the holder index once.
    pub(super) fn parked_vehicles(&self, limit: usize) -> Result<(u64, Vec<(String, String)>)> {
        let mut count = 0;
        let mut list = Vec::new();
        let mut last: Option<(Vec<u8>, bool)> = None;
        for k in self.owner.iter().keys() {
            let k = k.map_err(self.db.err())?;
            let Some(at) = k.iter().position(|&b| b == 0) else {
                continue;
            };
            let (holder, vin) = (&k[..at], &k[at + 1..]);
            let known = match &last {
                Some((h, known)) if h.as_slice() == holder => *known,
                _ => {
                    let known = self.customers.contains_key(holder).map_err(self.db.err())?;
                    last = Some((holder.to_vec(), known));
                    known
                }
            };
            if known {
                continue;
            }
            let vin = String::from_utf8_lossy(vin).into_owned();
            let holder = String::from_utf8_lossy(holder).into_owned();
            // A stale index entry (see `vehicles_of`): the record is the truth.
            if self.vehicle(&vin)?.is_none_or(|v| v.customer_no != holder) {
                continue;
            }
            count += 1;
            if list.len() < limit {
                list.push((vin, holder));
            }
        }
        Ok((count, list))
    }

    pub(super) fn consents_of(&self, customer_no: &str) -> Result<Vec<Consent>> {
        self.consents
            .scan_prefix(keys::customer_prefix(customer_no))
            .values()
            .map(|r| {
                self.note_read();
                r.map_err(self.db.err())
                    .and_then(|b| decode("consents", &b))
            })
            .collect()
    }

    pub(super) fn consent(&self, customer_no: &str, channel: Channel) -> Result<Option<Consent>> {
        self.consents
            .get(keys::consent_key(customer_no, channel))
            .map_err(self.db.err())?
            .map(|b| decode("consents", &b))
            .transpose()
    }

    pub(super) fn consents(&self) -> impl Iterator<Item = Result<Consent>> + '_ {
        self.consents.iter().values().map(move |r| {
            self.note_read();
            r.map_err(self.db.err())
                .and_then(|b| decode("consents", &b))
        })
    }

    pub(super) fn visits_of(&self, vin: &str) -> Result<Vec<ServiceVisit>> {
        self.visits
            .scan_prefix(vin.as_bytes())
            .values()
            .map(|r| {
                self.note_read();
                r.map_err(self.db.err()).and_then(|b| decode_visit(&b))
            })
            .collect()
    }

    pub(super) fn visits(&self) -> impl Iterator<Item = Result<ServiceVisit>> + '_ {
        self.visits.iter().values().map(move |r| {
            self.note_read();
            r.map_err(self.db.err()).and_then(|b| decode_visit(&b))
        })
    }

    /// Responses reported in response files that name this customer number.
    pub(super) fn responses_of(&self, customer_no: &str) -> Result<Vec<ReportedResponse>> {
        self.responses
            .scan_prefix(keys::customer_prefix(customer_no))
            .values()
            .map(|r| {
                r.map_err(self.db.err())
                    .and_then(|b| decode("responses", &b))
            })
            .collect()
    }

    /// Responses reported in response files, by customer or VIN.
    pub(super) fn responses(&self) -> impl Iterator<Item = Result<ReportedResponse>> + '_ {
        self.responses.iter().values().map(move |r| {
            r.map_err(self.db.err())
                .and_then(|b| decode("responses", &b))
        })
    }

    pub(super) fn stats(&self) -> Result<TenantStats> {
        let c = self.counters()?;
        Ok(TenantStats {
            customers: c.customers,
            recipients: c.customers.saturating_sub(c.merges_active),
            vehicles: c.vehicles,
            consents: c.consents,
            visits: c.visits,
            merges_active: c.merges_active,
            imports: c.imports,
            disk_bytes: self.db.size_on_disk(),
        })
    }

    pub(super) fn opt_ins(&self) -> Result<OptIns> {
        let windows = self.windows();
        let version = self.data_version()?;
        if let Some(o) = self.cached_opt_ins(version) {
            return Ok(o);
        }
        // Counted per person, as the planner and dispatch read consent: a
        // customer merged into another is no recipient of its own, and the
        // statement that stands for a person is the latest under any of
        // their numbers (touchpoint_common::consent).
        let merged_into = self.merge_map()?;
        let mut o = OptIns::default();
        let mut count = |c: &Consent| {
            let counted = match (c.channel, c.granted) {
                (Channel::Email, true) => &mut o.email,
                (Channel::Phone, true) => &mut o.phone,
                (Channel::Post, false) => &mut o.post_refused,
                _ => return,
            };
            *counted += 1;
        };
        // Only people with several numbers need their statements gathered.
        let mut people: HashMap<(String, Channel), Consent> = HashMap::new();
        let merged_people: std::collections::HashSet<&str> = merged_into
            .iter()
            .flat_map(|(m, s)| [m.as_str(), consent::survivor(&merged_into, s)])
            .collect();
        for c in self.consents() {
            let c = c?;
            if !merged_people.contains(c.customer_no.as_str()) {
                count(&c);
                continue;
            }
            let person = consent::survivor(&merged_into, &c.customer_no).to_string();
            match people.entry((person, c.channel)) {
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    if consent::prevails(&c, e.get()) {
                        e.insert(c);
                    }
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(c);
                }
            }
        }
        for c in people.values() {
            count(c);
        }
        // Kept only when no write was under way meanwhile: the changes
        // of later writes are added to it (`changes.rs`).
        if windows % 2 == 0 && self.windows() == windows && self.data_version()? == version {
            self.cache_opt_ins(version, o);
        }
        Ok(o)
    }

    pub(super) fn figures(&self) -> Result<TenantFigures> {
        let mut stats = self.stats()?;
        stats.disk_bytes = 0;
        let last_import = self.imports(1)?.into_iter().next().map(|mut r| {
            // Row errors and warnings quote the dealer's file: they stay
            // in its room.
            r.errors_truncated += r.errors.len() as u64;
            r.errors = Vec::new();
            r.warnings_truncated += r.warnings.len() as u64;
            r.warnings = Vec::new();
            r
        });
        Ok(TenantFigures {
            stats,
            opt_ins: self.opt_ins()?,
            last_import,
        })
    }

    /// Writes this tenant's figures to the central store.
    pub(super) fn publish_figures(&self) -> Result<()> {
        self.figures_due.store(false, Ordering::Release);
        let r = self
            .figures()
            .and_then(|f| self.board.put(self.db.id(), &f));
        if r.is_err() {
            self.figures_due.store(true, Ordering::Release);
        }
        r
    }

    /// Writes the figures if a change is pending (the flusher's round).
    pub(super) fn publish_figures_if_due(&self) {
        if self.figures_due.load(Ordering::Acquire) && self.db.trouble().is_none() {
            if let Err(e) = self.publish_figures() {
                tracing::warn!(tenant = %self.db.id(), error = %e, "cannot write the tenant's figures");
            }
        }
    }

    /// Tells subscribers that the customer data changed, after bringing
    /// the central figures up to date (a listing right after an import
    /// shows it).
    fn data_changed(&self) {
        self.people_epoch.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = self.publish_figures() {
            tracing::warn!(tenant = %self.db.id(), error = %e, "cannot write the tenant's figures; retried by the flusher");
        }
        self.db
            .events()
            .publish(&[Topic::Tenants], Some(self.db.id()));
    }

    /// Marks the figures for the flusher's next round: for frequent small
    /// changes (consents from dispatch), where recounting each time costs
    /// more than a moment's lag in the listing.
    fn figures_changed(&self) {
        self.figures_due.store(true, Ordering::Release);
    }

    pub(super) fn imports(&self, limit: usize) -> Result<Vec<ImportReport>> {
        self.imports
            .iter()
            .values()
            .rev()
            .take(limit)
            .map(|r| {
                r.map_err(self.db.err())
                    .and_then(|b| crate::store::db::decode_import_report("imports", &b))
            })
            .collect()
    }

    pub(super) fn import(&self, import_id: u64) -> Result<Option<ImportReport>> {
        self.imports
            .get(import_id.to_be_bytes())
            .map_err(self.db.err())?
            .map(|b| crate::store::db::decode_import_report("imports", &b))
            .transpose()
    }

    pub(super) fn import_by_hash(&self, content_hash: &str) -> Result<Option<u64>> {
        Ok(self
            .import_hash
            .get(content_hash.as_bytes())
            .map_err(self.db.err())?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map(u64::from_be_bytes))
    }

    pub(super) fn record_import(&self, report: &ImportReport) -> Result<()> {
        let _w = self.db.lock_writer();
        self.db.writable()?;
        let before = self.data_version()?;
        let mut c = self.counters()?;
        c.imports += 1;
        (&self.imports, &self.meta)
            .transaction(|(imports, meta)| {
                imports.insert(&report.import_id.to_be_bytes(), encode_tx(report)?)?;
                meta.insert(META_COUNTERS, encode_tx(&c)?)?;
                Ok(())
            })
            .map_err(tx_err(&self.db))?;
        // An import that stored nothing: only its report and the count.
        self.carry(before, &tracker::Touched::new(), None)?;
        self.db.flush()?;
        self.data_changed();
        Ok(())
    }

    pub(super) fn update_import(&self, report: &ImportReport) -> Result<()> {
        self.db.writable()?;
        self.imports
            .insert(report.import_id.to_be_bytes(), encode("imports", report)?)
            .map_err(self.db.err())?;
        self.db.touch();
        self.data_changed();
        Ok(())
    }

    pub(super) fn next_import_id(&self) -> Result<u64> {
        self.next_id(META_NEXT_IMPORT)
    }

    pub(super) fn data_version(&self) -> Result<u64> {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for key in [META_COUNTERS, META_NEXT_MERGE, META_GENERATION] {
            let v = self.meta.get(key).map_err(self.db.err())?;
            for b in v.as_deref().unwrap_or(&[]).iter().chain(&[0xff]) {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        Ok(h)
    }

    /// Changes whenever customers may have changed (see `people_epoch`).
    pub(super) fn people_epoch(&self) -> u64 {
        self.people_epoch.load(Ordering::SeqCst)
    }

    pub(super) fn bump_generation(&self) -> Result<()> {
        self.db.writable()?;
        self.meta
            .update_and_fetch(META_GENERATION, |old| Some(next_generation(old)))
            .map_err(self.db.err())?;
        self.generation_bumped();
        Ok(())
    }

    fn generation_bumped(&self) {
        // Consents or addresses from dispatch, an objection: not said whose.
        self.forget_changes();
        self.db.touch();
        // Consents and bad addresses from dispatch: the opt-in counts of the
        // listing follow with the flusher's next round.
        self.figures_changed();
        self.db
            .events()
            .publish(&[Topic::Tenants], Some(self.db.id()));
    }

    pub(super) fn mark_bad_address(&self, address: &str, reason: &str) -> Result<()> {
        self.db.writable()?;
        self.bad_addresses
            .insert(
                keys::address(address),
                bad_address_reason(reason).as_bytes(),
            )
            .map_err(self.db.err())?;
        self.bump_generation()
    }

    pub(super) fn record_consents_and_bad_addresses(
        &self,
        consents: &[Consent],
        bad: &[(String, String)],
    ) -> Result<usize> {
        if consents.is_empty() && bad.is_empty() {
            return Ok(0);
        }
        // Not while an import is applied (see `record_consent`).
        let _w = self.db.lock_writer();
        self.db.writable()?;
        let consents = consents
            .iter()
            .map(|c| {
                Ok((
                    keys::consent_key(&c.customer_no, c.channel),
                    c,
                    encode("consents", c)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let bad: Vec<(Vec<u8>, std::borrow::Cow<'_, str>)> = bad
            .iter()
            .map(|(address, reason)| (keys::address(address), bad_address_reason(reason)))
            .collect();
        let recorded = (&self.consents, &self.bad_addresses, &self.meta)
            .transaction(|(consents_t, bad_t, meta)| {
                let mut recorded = 0;
                for (key, c, bytes) in &consents {
                    if let Some(old) = consents_t.get(key)? {
                        let old: Consent = decode("consents", &old).map_err(abort)?;
                        if old.at > c.at || (old.granted == c.granted && old.at == c.at) {
                            continue;
                        }
                    }
                    consents_t.insert(key.as_slice(), bytes.as_slice())?;
                    recorded += 1;
                }
                for (key, reason) in &bad {
                    bad_t.insert(key.as_slice(), reason.as_bytes())?;
                }
                if recorded > 0 || !bad.is_empty() {
                    let generation = meta.get(META_GENERATION)?;
                    meta.insert(META_GENERATION, next_generation(generation.as_deref()))?;
                }
                Ok(recorded)
            })
            .map_err(tx_err(&self.db))?;
        if recorded > 0 || !bad.is_empty() {
            self.generation_bumped();
        }
        Ok(recorded)
    }

    pub(super) fn bad_address(&self, address: &str) -> Result<Option<String>> {
        Ok(self
            .bad_addresses
            .get(keys::address(address))
            .map_err(self.db.err())?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    pub(super) fn bad_addresses(&self) -> Result<Vec<(String, String)>> {
        self.bad_addresses
            .iter()
            .map(|kv| {
                kv.map_err(self.db.err()).map(|(k, v)| {
                    (
                        String::from_utf8_lossy(&k).into_owned(),
                        String::from_utf8_lossy(&v).into_owned(),
                    )
                })
            })
            .collect()
    }

    pub(super) fn record_consent(&self, c: &Consent) -> Result<bool> {
        // Not while an import is applied: the import decides against the
        // stored statement and may roll back to it, either of which would
        // lose a withdrawal recorded in between.
        let _w = self.db.lock_writer();
        self.db.writable()?;
        let key = keys::consent_key(&c.customer_no, c.channel);
        if let Some(old) = self.consents.get(&key).map_err(self.db.err())? {
            let old: Consent = decode("consents", &old)?;
            if old.at > c.at || (old.granted == c.granted && old.at == c.at) {
                return Ok(false);
            }
        }
        self.consents
            .insert(key, encode("consents", c)?)
            .map_err(self.db.err())?;
        self.bump_generation()?;
        Ok(true)
    }

    pub(super) fn take_completed_import(&self) -> bool {
        self.completed_import.swap(false, Ordering::AcqRel)
    }
}

fn next_generation(old: Option<&[u8]>) -> Vec<u8> {
    let n = old
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0);
    (n + 1).to_be_bytes().to_vec()
}

/// Why an address is not used, as stored: its writers bound what they
/// quote from outside; this bounds what they add, whatever it is.
fn bad_address_reason(reason: &str) -> std::borrow::Cow<'_, str> {
    limits::outside(reason, 2 * limits::OUTSIDE_CHARS)
}

#[cfg(test)]
impl Records {
    /// The trees an import writes, by name (a test compares them before
    /// and after a failed import).
    pub(super) fn import_trees(&self) -> [(&'static str, &sled::Tree); 8] {
        [
            ("responses", &self.responses),
            ("customers", &self.customers),
            ("vehicles", &self.vehicles),
            ("owner", &self.owner),
            ("consents", &self.consents),
            ("visits", &self.visits),
            ("imports", &self.imports),
            ("import_hash", &self.import_hash),
        ]
    }

    /// The stored record counts, as stored.
    pub(super) fn counters_bytes(&self) -> Option<sled::IVec> {
        self.meta.get(META_COUNTERS).expect("meta")
    }

    /// Leaves the marker an earlier version left for an import interrupted
    /// after its commit point: the report to complete it with.
    pub(super) fn plant_pending_import(&self, template: Vec<u8>) {
        self.meta
            .insert(keys::META_PENDING, template)
            .expect("marker");
    }

    pub(super) fn pending_import(&self) -> bool {
        self.meta.get(keys::META_PENDING).expect("meta").is_some()
    }
}

/// A stored visit, as this version writes it or as the one before wrote it
/// (without value and source).
fn decode_visit(bytes: &[u8]) -> Result<ServiceVisit> {
    decode("visits", bytes).or_else(|e| {
        decode::<touchpoint_common::domain::ServiceVisitV1>("visits", bytes)
            .map(ServiceVisit::from)
            .map_err(|_| e)
    })
}

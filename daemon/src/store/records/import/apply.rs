//! Applying a staging file to the dealer's trees: in batches, each batch's
//! decisions taken against the database and the batch's own earlier writes,
//! its before-images journaled and synced before it is written.
//!
//! Reaches the dealer's trees (`records`) through the journal's names for
//! them ([`T`]); must not import `import.rs` (which uses it).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use serde::de::DeserializeOwned;
use sled::IVec;
use touchpoint_common::codec::{decode_record, encode_record};
use touchpoint_common::domain::{
    Consent, Corrected, Corrections, Counts, Customer, FieldSet, ImportReport, ServiceVisit, Stale,
    Vehicle,
};
use touchpoint_common::report::ReportedResponse;
use touchpoint_common::Date;

use super::journal::{Journal, T};
use super::staging::{
    Header, Reader, Rejected, Staged, OP_CONSENT, OP_CUSTOMER, OP_CUSTOMER_ROW, OP_HEADER, OP_LAST,
    OP_REJECTED, OP_RESPONSE, OP_VEHICLE, OP_VEHICLE_ROW, OP_VISIT,
};
use crate::store::db::codec_err;
use crate::store::error::{Result, StoreError};
use crate::store::records::keys::{
    as_of_customer, as_of_vehicle, composite, consent_key, response_key, visit_key,
};
use crate::store::records::tracker::Touched;
use crate::store::records::Records;

/// Staged records applied per journal batch (one sync each).
pub(super) const BATCH: usize = 4096;

/// What applying a staging file did.
#[derive(Default)]
pub(super) struct Applied {
    pub(super) customers: Counts,
    pub(super) vehicles: Counts,
    pub(super) consents: Counts,
    pub(super) visits: Counts,
    pub(super) responses: Counts,
    /// What a re-export corrected away and kept (see
    /// [`Applier::remove_corrected`]).
    pub(super) corrections: Corrections,
    /// Lines of rows whose customer or vehicle was older than the stored
    /// one, not applied; with the days compared.
    pub(super) stale_lines: HashSet<u64>,
    pub(super) stale: Stale,
    /// The customers whose data this import changed (`changes.rs`); the
    /// holders of the vehicles in `visit_vins` are added once applied.
    pub(super) touched: Touched,
    /// Vehicles whose visits changed.
    visit_vins: BTreeSet<String>,
    /// Something changed whose customers are not told (visits corrected
    /// away): every derived view recomputes.
    pub(super) untold: bool,
    /// Consent statements written: before and after.
    pub(super) consents_changed: Vec<(Option<Consent>, Consent)>,
}

impl Applied {
    pub(super) fn fill(&self, r: &mut ImportReport) {
        r.customers = self.customers;
        r.vehicles = self.vehicles;
        r.consents = self.consents;
        r.visits = self.visits;
        r.responses = self.responses;
        r.corrections = self.corrections;
        r.stale = Stale {
            rows: self.stale_lines.len() as u64,
            ..self.stale
        };
    }
}

/// A key a batch read or wrote: what the database held before the batch,
/// and what the batch will write (`None`: only read).
struct Pending {
    before: Option<IVec>,
    after: Option<Option<IVec>>,
}

/// Applies staged records in batches: each batch's decisions are taken
/// against the database and the batch's own earlier writes, its
/// before-images are journaled and synced, and only then is it written
/// with plain inserts (sled's `apply_batch` measured about three times
/// slower than single inserts for bulk loads).
struct Applier<'a> {
    s: &'a Records,
    header: Header,
    out: Applied,
    journal: Journal,
    batch: HashMap<(T, Vec<u8>), Pending>,
    /// Keys the batch writes, in the order first written.
    writes: Vec<(T, Vec<u8>)>,
    records: usize,
    /// The visits this file carries: what a corrected export replaces.
    visits: Option<Scope>,
    /// The same for the responses of a response file.
    responses: Option<Scope>,
    /// Whom the file's rejected rows are about: spared from correction.
    rejected: Spared,
}

/// The vehicles and customers rejected rows of the file name, whose
/// earlier visits and responses the file does not correct away: the row
/// that was rejected may be the one that carries them.
#[derive(Default)]
struct Spared {
    vins: HashSet<String>,
    customers: HashSet<String>,
    /// Rejected rows whose vehicle and customer could not be read: any of
    /// them makes the file correct nothing.
    unreadable: u64,
}

impl Spared {
    fn note(&mut self, r: Rejected) {
        if r.vin.is_empty() && r.customer_no.is_empty() {
            self.unreadable += 1;
            return;
        }
        if !r.vin.is_empty() {
            self.vins.insert(r.vin);
        }
        if !r.customer_no.is_empty() {
            self.customers.insert(r.customer_no);
        }
    }

    /// Whether a stored row about this vehicle and customer is spared.
    fn spares(&self, vin: &str, customer_no: &str) -> bool {
        self.unreadable > 0
            || (!vin.is_empty() && self.vins.contains(vin))
            || (!customer_no.is_empty() && self.customers.contains(customer_no))
    }
}

/// The days a visit or response export covers, the subjects (vehicles,
/// customers) it names, and the rows it has for them. A re-export is the
/// truth only for the subjects it names in the days it covers: a partial
/// re-export of one customer's history removes nothing of the others'.
struct Scope {
    /// The file name the rows' sources cite (`werkstatt.csv`).
    file: String,
    from: touchpoint_common::Date,
    to: touchpoint_common::Date,
    subjects: std::collections::HashSet<String>,
    keys: std::collections::HashSet<Vec<u8>>,
}

impl Scope {
    /// Widens `scope` by one row of the file about `subject`.
    fn note(
        scope: &mut Option<Scope>,
        source: &str,
        date: touchpoint_common::Date,
        subject: &str,
        key: &[u8],
    ) {
        let Some(file) = source_file(source) else {
            return;
        };
        let scope = scope.get_or_insert_with(|| Scope {
            file: file.to_string(),
            from: date,
            to: date,
            subjects: Default::default(),
            keys: Default::default(),
        });
        scope.from = scope.from.min(date);
        scope.to = scope.to.max(date);
        scope.subjects.insert(subject.to_string());
        scope.keys.insert(key.to_vec());
    }
}

/// What a visit or a reported response is about: its vehicle, else its
/// customer.
fn subject<'a>(vin: &'a str, customer_no: &'a str) -> &'a str {
    if vin.is_empty() {
        customer_no
    } else {
        vin
    }
}

/// The file name of a visit's source, `werkstatt.csv` of `werkstatt.csv:214`.
fn source_file(source: &str) -> Option<&str> {
    source
        .rsplit_once(':')
        .map(|(f, _)| f)
        .filter(|f| !f.is_empty())
}

impl<'a> Applier<'a> {
    fn get(&mut self, t: T, key: &[u8]) -> Result<Option<IVec>> {
        // One lookup key per record read: cheap next to sled's own work.
        let k = (t, key.to_vec());
        if let Some(p) = self.batch.get(&k) {
            return Ok(p.after.clone().unwrap_or_else(|| p.before.clone()));
        }
        let v = t.tree(self.s).get(key).map_err(self.s.db.err())?;
        self.batch.insert(
            k,
            Pending {
                before: v.clone(),
                after: None,
            },
        );
        Ok(v)
    }

    fn get_decoded<V: DeserializeOwned>(
        &mut self,
        t: T,
        key: &[u8],
        name: &'static str,
    ) -> Result<Option<(V, IVec)>> {
        match self.get(t, key)? {
            Some(bytes) => Ok(Some((
                decode_record(&bytes).map_err(codec_err(name))?,
                bytes,
            ))),
            None => Ok(None),
        }
    }

    fn set(&mut self, t: T, key: Vec<u8>, after: Option<IVec>) -> Result<()> {
        let k = (t, key);
        match self.batch.get_mut(&k) {
            Some(p) => {
                if p.after.is_none() {
                    self.writes.push(k.clone());
                }
                p.after = Some(after);
            }
            None => {
                let before = t.tree(self.s).get(&k.1).map_err(self.s.db.err())?;
                self.writes.push(k.clone());
                self.batch.insert(
                    k,
                    Pending {
                        before,
                        after: Some(after),
                    },
                );
            }
        }
        Ok(())
    }

    fn put(&mut self, t: T, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        self.set(t, key, Some(value.into()))
    }

    fn remove(&mut self, t: T, key: Vec<u8>) -> Result<()> {
        self.set(t, key, None)
    }

    /// Writes `value` unless equal to what is stored; returns what it did.
    fn upsert(&mut self, t: T, key: Vec<u8>, value: Vec<u8>, old: Option<&[u8]>) -> Result<Change> {
        match old {
            Some(o) if o == value.as_slice() => Ok(Change::Unchanged),
            Some(_) => self.put(t, key, value).map(|_| Change::Updated),
            None => self.put(t, key, value).map(|_| Change::Inserted),
        }
    }

    /// Counts a staged record; a full batch is written.
    fn record_done(&mut self) -> Result<()> {
        self.records += 1;
        if self.records >= BATCH {
            self.write_batch()?;
        }
        Ok(())
    }

    /// Journals the batch's before-images, syncs them, then writes the
    /// batch: nothing reaches the database that the journal cannot undo.
    fn write_batch(&mut self) -> Result<()> {
        self.records = 0;
        if self.writes.is_empty() {
            self.batch.clear();
            return Ok(());
        }
        for k in &self.writes {
            if let Some(p) = self.batch.get(k) {
                self.journal.record(k.0, &k.1, p.before.as_deref());
            }
        }
        self.journal.sync()?;
        for k in std::mem::take(&mut self.writes) {
            let Some(Pending {
                after: Some(after), ..
            }) = self.batch.remove(&k)
            else {
                continue;
            };
            let (t, key) = k;
            let tree = t.tree(self.s);
            match after {
                Some(v) => tree.insert(key, v).map(|_| ()),
                None => tree.remove(key).map(|_| ()),
            }
            .map_err(self.s.db.err())?;
        }
        self.batch.clear();
        Ok(())
    }

    /// Whether the record under `key` of `as_of` (its row's `line`) is
    /// older than the stored one: then it is counted stale and not applied.
    /// Otherwise its day is stored as the record's "as of".
    fn stale(&mut self, key: Vec<u8>, as_of: Date, line: u64) -> Result<bool> {
        let stored = self
            .get_decoded::<Date>(T::AsOf, &key, "as_of")?
            .map(|(d, _)| d);
        match stored {
            Some(s) if as_of < s => {
                self.out.stale_lines.insert(line);
                let st = &mut self.out.stale;
                st.as_of = Some(st.as_of.map_or(as_of, |a| a.min(as_of)));
                st.stored = Some(st.stored.map_or(s, |x| x.max(s)));
                Ok(true)
            }
            Some(s) if s == as_of => Ok(false),
            _ => {
                let bytes = encode_record(&as_of).map_err(codec_err("as_of"))?;
                self.put(T::AsOf, key, bytes)?;
                Ok(false)
            }
        }
    }

    fn customer_row(&mut self, r: Staged<Customer>) -> Result<()> {
        if self.stale(as_of_customer(&r.record.customer_no), r.as_of, r.line)? {
            return Ok(());
        }
        self.customer(r.record, r.dropped)
    }

    fn vehicle_row(&mut self, r: Staged<Vehicle>) -> Result<()> {
        if self.stale(as_of_vehicle(&r.record.vin), r.as_of, r.line)? {
            return Ok(());
        }
        self.vehicle(r.record, r.dropped)
    }

    /// Stores a customer; the fields the file has no column for, and those
    /// `dropped` of its row, keep what is stored.
    fn customer(&mut self, mut c: Customer, dropped: FieldSet) -> Result<()> {
        let key = c.customer_no.as_bytes().to_vec();
        let old = self.get_decoded::<Customer>(T::Customers, &key, "customers")?;
        let old_bytes = old.as_ref().map(|(_, b)| b.clone());
        if let Some((stored, _)) = old {
            c.keep_absent_from(stored, self.header.present.without(dropped));
        }
        let bytes = encode_record(&c).map_err(codec_err("customers"))?;
        let ch = self.upsert(T::Customers, key, bytes, old_bytes.as_deref())?;
        if ch != Change::Unchanged {
            self.out.touched.insert(c.customer_no);
        }
        count(&mut self.out.customers, ch);
        Ok(())
    }

    fn vehicle(&mut self, mut v: Vehicle, dropped: FieldSet) -> Result<()> {
        let key = v.vin.as_bytes().to_vec();
        let old = self.get_decoded::<Vehicle>(T::Vehicles, &key, "vehicles")?;
        let (old_owner, old_bytes) = match old {
            Some((stored, bytes)) => {
                let owner = stored.customer_no.clone();
                v.keep_absent_from(stored, self.header.present.without(dropped));
                (Some(owner), Some(bytes))
            }
            None => (None, None),
        };
        let bytes = encode_record(&v).map_err(codec_err("vehicles"))?;
        let ch = self.upsert(T::Vehicles, key, bytes, old_bytes.as_deref())?;
        if ch != Change::Unchanged {
            self.out.touched.insert(v.customer_no.clone());
        }
        if old_owner.as_deref() != Some(v.customer_no.as_str()) {
            if let Some(o) = old_owner {
                self.remove(T::Owner, composite(o.as_bytes(), v.vin.as_bytes()))?;
                self.out.touched.insert(o);
            }
            self.put(
                T::Owner,
                composite(v.customer_no.as_bytes(), v.vin.as_bytes()),
                Vec::new(),
            )?;
        }
        count(&mut self.out.vehicles, ch);
        Ok(())
    }

    fn consent(&mut self, mut c: Consent) -> Result<()> {
        let key = consent_key(&c.customer_no, c.channel);
        let old = self.get_decoded::<Consent>(T::Consents, &key, "consents")?;
        if !c.supersedes(old.as_ref().map(|(s, _)| s), self.header.now) {
            count(&mut self.out.consents, Change::Unchanged);
            return Ok(());
        }
        let bytes = encode_record(&c).map_err(codec_err("consents"))?;
        let ch = self.upsert(
            T::Consents,
            key,
            bytes,
            old.as_ref().map(|(_, b)| b.as_ref()),
        )?;
        if ch != Change::Unchanged {
            self.out.touched.insert(c.customer_no.clone());
            self.out.consents_changed.push((old.map(|(o, _)| o), c));
        }
        count(&mut self.out.consents, ch);
        Ok(())
    }

    fn visit(&mut self, v: ServiceVisit) -> Result<()> {
        let key = visit_key(&v);
        Scope::note(
            &mut self.visits,
            &v.source,
            v.date,
            subject(&v.vin, &v.customer_no),
            &key,
        );
        let old = self.get(T::Visits, &key)?;
        let bytes = encode_record(&v).map_err(codec_err("visits"))?;
        let ch = self.upsert(T::Visits, key, bytes, old.as_deref())?;
        if ch != Change::Unchanged {
            self.out.touched.insert(v.customer_no.clone());
            self.out.visit_vins.insert(v.vin);
        }
        count(&mut self.out.visits, ch);
        Ok(())
    }

    fn response(&mut self, r: ReportedResponse) -> Result<()> {
        let key = response_key(&r);
        Scope::note(
            &mut self.responses,
            &r.source,
            r.date,
            subject(&r.vin, &r.customer_no),
            &key,
        );
        let old = self.get(T::Responses, &key)?;
        let bytes = encode_record(&r).map_err(codec_err("responses"))?;
        let ch = self.upsert(T::Responses, key, bytes, old.as_deref())?;
        count(&mut self.out.responses, ch);
        Ok(())
    }

    /// A re-exported file is taken as the truth for the vehicles and
    /// customers it names in the days it covers: a visit (or reported
    /// response) of one of them an earlier import of the same file name
    /// stored for one of those days, and this export no longer has
    /// (its date, vehicle or kind corrected, or the row deleted in the
    /// dealer's system), is removed, and with it any credit for it. Days
    /// outside the export's first..last row, and rows from other files,
    /// are kept. So is every such row of a vehicle or customer a rejected
    /// row of the file names, and every one when a rejected row's vehicle
    /// and customer could not be read ([`Spared`]): a rejected row never
    /// removes anything. Returns what was removed and what was kept.
    fn remove_corrected(&mut self, t: T, scope: Option<Scope>) -> Result<Corrected> {
        let Some(scope) = scope else {
            return Ok(Corrected::default());
        };
        let mut out = Corrected {
            span: Some((scope.from, scope.to)),
            ..Corrected::default()
        };
        let mut gone = Vec::new();
        for entry in t.tree(self.s).iter() {
            let (key, bytes) = entry.map_err(self.s.db.err())?;
            if scope.keys.contains(key.as_ref()) {
                continue;
            }
            // A record an earlier version stored (a visit without source)
            // does not decode: never ours.
            let stored = match t {
                T::Visits => decode_record::<ServiceVisit>(&bytes)
                    .ok()
                    .map(|v| (v.date, v.source, v.vin, v.customer_no)),
                _ => decode_record::<ReportedResponse>(&bytes)
                    .ok()
                    .map(|r| (r.date, r.source, r.vin, r.customer_no)),
            };
            let Some((date, source, vin, customer_no)) = stored else {
                continue;
            };
            if date >= scope.from
                && date <= scope.to
                && scope.subjects.contains(subject(&vin, &customer_no))
                && source_file(&source) == Some(scope.file.as_str())
            {
                if self.rejected.spares(&vin, &customer_no) {
                    out.kept += 1;
                } else {
                    gone.push(key.to_vec());
                }
            }
        }
        out.removed = gone.len() as u64;
        for key in gone {
            self.remove(t, key)?;
            self.record_done()?;
        }
        Ok(out)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Inserted,
    Updated,
    Unchanged,
}

fn count(c: &mut Counts, ch: Change) {
    match ch {
        Change::Inserted => c.inserted += 1,
        Change::Updated => c.updated += 1,
        Change::Unchanged => c.unchanged += 1,
    }
}

/// Applies a staging file, journaling into `undo`. Customers, vehicles
/// (with the holder index) and consents plus visits and responses live in disjoint
/// trees, so each group is applied by its own thread reading the same file,
/// with its own journal.
pub(super) fn apply(s: &Records, path: &Path, undo: &Path) -> Result<Applied> {
    const GROUPS: [&[u8]; 3] = [
        &[OP_CUSTOMER, OP_CUSTOMER_ROW],
        &[OP_VEHICLE, OP_VEHICLE_ROW],
        &[OP_CONSENT, OP_VISIT, OP_RESPONSE, OP_REJECTED],
    ];
    let results: Vec<Result<Applied>> = std::thread::scope(|scope| {
        let handles: Vec<_> = GROUPS
            .iter()
            .enumerate()
            .map(|(n, kinds)| {
                let journal = undo.join(n.to_string());
                scope.spawn(move || apply_kinds(s, path, kinds, &journal))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(StoreError::Conflict("import apply thread panicked".into()))
                })
            })
            .collect()
    });
    let mut total = Applied::default();
    for r in results {
        let a = r?;
        add(&mut total.customers, a.customers);
        add(&mut total.vehicles, a.vehicles);
        add(&mut total.consents, a.consents);
        add(&mut total.visits, a.visits);
        add(&mut total.responses, a.responses);
        // Only the group with the visits and responses corrects.
        if a.corrections != Corrections::default() {
            total.corrections = a.corrections;
        }
        total.stale_lines.extend(a.stale_lines);
        total.touched.extend(a.touched);
        total.visit_vins.extend(a.visit_vins);
        total.untold |= a.untold;
        total.consents_changed.extend(a.consents_changed);
        let (st, a) = (&mut total.stale, a.stale);
        st.as_of = st.as_of.min(a.as_of).or(st.as_of).or(a.as_of);
        st.stored = st.stored.max(a.stored);
    }
    // A visit belongs to its vehicle's holder, as the vehicles now stand.
    for vin in std::mem::take(&mut total.visit_vins) {
        if let Some(v) = s.vehicle(&vin)? {
            total.touched.insert(v.customer_no);
        }
    }
    Ok(total)
}

fn add(into: &mut Counts, c: Counts) {
    into.inserted += c.inserted;
    into.updated += c.updated;
    into.unchanged += c.unchanged;
}

fn apply_kinds(s: &Records, path: &Path, kinds: &[u8], journal: &Path) -> Result<Applied> {
    let mut r = Reader::open(path)?;
    let mut buf = Vec::with_capacity(512);
    let header: Header = match r.next(&mut buf, &|op| op == OP_HEADER)? {
        Some(OP_HEADER) => decode_record(&buf).map_err(codec_err("staging"))?,
        _ => {
            return Err(StoreError::Conflict(format!(
                "{}: staging file without header",
                path.display()
            )))
        }
    };
    let mut a = Applier {
        s,
        header,
        out: Applied::default(),
        journal: Journal::create(journal)?,
        batch: HashMap::new(),
        writes: Vec::new(),
        records: 0,
        visits: None,
        responses: None,
        rejected: Spared::default(),
    };
    // An op this version does not know is read, to fail on it.
    let wanted = |op: u8| kinds.contains(&op) || op > OP_LAST;
    while let Some(op) = r.next(&mut buf, &wanted)? {
        let dec = codec_err("staging");
        match op {
            OP_CUSTOMER => a.customer(decode_record(&buf).map_err(dec)?, FieldSet::default())?,
            OP_VEHICLE => a.vehicle(decode_record(&buf).map_err(dec)?, FieldSet::default())?,
            OP_CUSTOMER_ROW => a.customer_row(decode_record(&buf).map_err(dec)?)?,
            OP_VEHICLE_ROW => a.vehicle_row(decode_record(&buf).map_err(dec)?)?,
            OP_CONSENT => a.consent(decode_record(&buf).map_err(dec)?)?,
            OP_VISIT => a.visit(decode_record(&buf).map_err(dec)?)?,
            OP_RESPONSE => a.response(decode_record(&buf).map_err(dec)?)?,
            OP_REJECTED => a.rejected.note(decode_record(&buf).map_err(dec)?),
            other => {
                return Err(StoreError::Conflict(format!(
                    "{}: unknown staged operation {other}",
                    path.display()
                )))
            }
        }
        a.record_done()?;
    }
    let scope = a.visits.take();
    let visits = a.remove_corrected(T::Visits, scope)?;
    let scope = a.responses.take();
    let responses = a.remove_corrected(T::Responses, scope)?;
    a.out.corrections = Corrections {
        visits,
        responses,
        unreadable: a.rejected.unreadable,
    };
    a.out.untold |= visits.removed > 0;
    if visits.removed + responses.removed + visits.kept + responses.kept > 0 {
        tracing::info!(
            import = a.header.import_id,
            visits = visits.removed,
            responses = responses.removed,
            visits_kept = visits.kept,
            responses_kept = responses.kept,
            "rows corrected away by a re-exported file removed; rows rejected rows may carry kept"
        );
    }
    a.write_batch()?;
    Ok(a.out)
}

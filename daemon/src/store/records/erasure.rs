//! A data subject's rights in the dealer's data: erasing a person's records
//! (Art. 17), the suppression entries that keep an erased person from
//! coming back with the next import, and objections to advertising
//! (Art. 21). What is erased and why is decided by `crate::erasure`; this
//! only removes and stores.
//!
//! Writes the trees `customers`, `vehicles`, `owner`, `consents`,
//! `visits`, `responses`, `merges`, `merged`, `bad_addresses`, `journeys`,
//! `as_of` and `imports` (removals, and findings scrubbed; visits and
//! responses past the brand's retention) of its parent,
//! `records`, and owns `suppressed` and `objections`. Imports nothing else
//! of the store but `db` and the leaves.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use touchpoint_common::domain::{Customer, MergeRecord, Objection, RowError, Timestamp};
use touchpoint_common::Date;

use super::keys::{self, META_COUNTERS};
use super::Records;
use crate::store::db::{decode, decode_import_report, encode};
use crate::store::error::Result;

/// What stands in a finding of an import report that named an erased person.
pub const ERASED_FINDING: &str = "(erased)";

/// Why a keyed hash is in the suppression list: the day its person was
/// erased, and which of their identifiers it is the hash of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    pub erased_on: Date,
    pub identifier: Identifier,
    /// The pseudonym of the person erased: every entry of one person
    /// carries it, so they are lifted together (a new legal basis).
    pub person: String,
}

/// The identifiers of a person the suppression list keeps a hash of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Identifier {
    CustomerNo,
    Email,
    Phone,
    NameAndPostcode,
}

impl Identifier {
    pub fn as_str(self) -> &'static str {
        match self {
            Identifier::CustomerNo => "customer number",
            Identifier::Email => "email",
            Identifier::Phone => "phone",
            Identifier::NameAndPostcode => "name and postcode",
        }
    }
}

/// How many records an erasure removed, per kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Erased {
    pub customers: u64,
    pub vehicles: u64,
    pub consents: u64,
    pub visits: u64,
    pub responses: u64,
    pub merges: u64,
    /// Findings of import reports that named the person, scrubbed.
    pub findings: u64,
}

impl Records {
    /// Removes every record of the customers `numbers` (one person: a
    /// number and those merged into it): the customers, their vehicles
    /// (held now or parked under their number) with the vehicles' visits,
    /// consents, responses, journeys, merges naming them, the bad-address
    /// entries of their email and phone; and scrubs the findings of import
    /// reports that contain any of `needles` (their numbers, names,
    /// addresses, VINs). Counts stay right. Flushed before it returns.
    pub(in crate::store) fn erase_people(
        &self,
        numbers: &BTreeSet<String>,
        people: &[Customer],
        needles: &[String],
    ) -> Result<Erased> {
        let _w = self.db.lock_writer();
        self.db.writable()?;
        let err = self.db.err();
        let mut out = Erased::default();
        let mut vins = BTreeSet::new();
        for no in numbers {
            if self
                .customers
                .remove(no.as_bytes())
                .map_err(&err)?
                .is_some()
            {
                out.customers += 1;
            }
            self.as_of.remove(keys::as_of_customer(no)).map_err(&err)?;
            self.journeys.remove(no.as_bytes()).map_err(&err)?;
            self.merged.remove(no.as_bytes()).map_err(&err)?;
            let prefix = keys::customer_prefix(no);
            for k in self.owner.scan_prefix(&prefix).keys() {
                let k = k.map_err(&err)?;
                vins.insert(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
                self.owner.remove(&k).map_err(&err)?;
            }
            for k in self.consents.scan_prefix(&prefix).keys() {
                self.consents.remove(k.map_err(&err)?).map_err(&err)?;
                out.consents += 1;
            }
        }
        for kv in self.vehicles.iter() {
            let (k, v) = kv.map_err(&err)?;
            let v: touchpoint_common::domain::Vehicle = decode("vehicles", &v)?;
            if numbers.contains(&v.customer_no) {
                vins.insert(String::from_utf8_lossy(&k).into_owned());
            }
        }
        for vin in &vins {
            if self
                .vehicles
                .remove(vin.as_bytes())
                .map_err(&err)?
                .is_some()
            {
                out.vehicles += 1;
            }
            self.as_of.remove(keys::as_of_vehicle(vin)).map_err(&err)?;
        }
        for kv in self.visits.iter() {
            let (k, v) = kv.map_err(&err)?;
            let v = super::decode_visit(&v)?;
            if vins.contains(&v.vin) || numbers.contains(&v.customer_no) {
                self.visits.remove(k).map_err(&err)?;
                out.visits += 1;
            }
        }
        for kv in self.responses.iter() {
            let (k, v) = kv.map_err(&err)?;
            let r: touchpoint_common::report::ReportedResponse = decode("responses", &v)?;
            if numbers.contains(&r.customer_no) || vins.contains(&r.vin) {
                self.responses.remove(k).map_err(&err)?;
                out.responses += 1;
            }
        }
        let mut merges_active = 0;
        for kv in self.merges.iter() {
            let (k, v) = kv.map_err(&err)?;
            let m: MergeRecord = decode("merges", &v)?;
            if numbers.contains(&m.survivor) || numbers.contains(&m.merged) {
                if m.undone_at.is_none() {
                    merges_active += 1;
                    // The other side of an active merge is merged no more.
                    self.merged.remove(m.merged.as_bytes()).map_err(&err)?;
                }
                self.merges.remove(k).map_err(&err)?;
                out.merges += 1;
            }
        }
        for p in people {
            for a in [&p.email, &p.phone].into_iter().flatten() {
                self.bad_addresses.remove(keys::address(a)).map_err(&err)?;
            }
        }
        out.findings = self.scrub_findings(needles)?;
        let mut c = self.counters()?;
        c.customers = c.customers.saturating_sub(out.customers);
        c.vehicles = c.vehicles.saturating_sub(out.vehicles);
        c.consents = c.consents.saturating_sub(out.consents);
        c.visits = c.visits.saturating_sub(out.visits);
        c.merges_active = c.merges_active.saturating_sub(merges_active);
        self.meta
            .insert(META_COUNTERS, encode("meta", &c)?)
            .map_err(&err)?;
        self.db.flush()?;
        drop(_w);
        self.forget_changes();
        self.data_changed();
        Ok(out)
    }

    /// Removes every visit and reported response of a day before `before`
    /// (retention); returns how many visits and responses went. Counts
    /// stay right. Flushed before it returns.
    pub(in crate::store) fn prune_responses(&self, before: Date) -> Result<(u64, u64)> {
        let _w = self.db.lock_writer();
        self.db.writable()?;
        let err = self.db.err();
        let (mut visits, mut responses) = (0, 0);
        for kv in self.visits.iter() {
            let (k, v) = kv.map_err(&err)?;
            if super::decode_visit(&v)?.date < before {
                self.visits.remove(k).map_err(&err)?;
                visits += 1;
            }
        }
        for kv in self.responses.iter() {
            let (k, v) = kv.map_err(&err)?;
            let r: touchpoint_common::report::ReportedResponse = decode("responses", &v)?;
            if r.date < before {
                self.responses.remove(k).map_err(&err)?;
                responses += 1;
            }
        }
        if visits + responses == 0 {
            return Ok((0, 0));
        }
        let mut c = self.counters()?;
        c.visits = c.visits.saturating_sub(visits);
        self.meta
            .insert(META_COUNTERS, encode("meta", &c)?)
            .map_err(&err)?;
        self.db.flush()?;
        drop(_w);
        self.data_changed();
        Ok((visits, responses))
    }

    /// Replaces every finding of a stored import report that contains one
    /// of `needles` (case-insensitive) with [`ERASED_FINDING`].
    fn scrub_findings(&self, needles: &[String]) -> Result<u64> {
        let needles: Vec<String> = needles
            .iter()
            .map(|n| n.trim().to_lowercase())
            .filter(|n| n.chars().count() >= 3)
            .collect();
        let hit = |e: &RowError| {
            let text = format!("{} {}", e.field, e.reason).to_lowercase();
            needles.iter().any(|n| text.contains(n.as_str()))
        };
        let mut scrubbed = 0;
        for kv in self.imports.iter() {
            let (k, v) = kv.map_err(self.db.err())?;
            let mut report = decode_import_report("imports", &v)?;
            let mut n = 0;
            for e in report.errors.iter_mut().chain(report.warnings.iter_mut()) {
                if hit(e) {
                    e.field = String::new();
                    e.reason = ERASED_FINDING.into();
                    n += 1;
                }
            }
            if n > 0 {
                self.imports
                    .insert(k, encode("imports", &report)?)
                    .map_err(self.db.err())?;
                scrubbed += n;
            }
        }
        Ok(scrubbed)
    }

    /// Adds keyed hashes to the suppression list (an entry already there
    /// keeps its day).
    pub(in crate::store) fn suppress(&self, entries: &[([u8; 32], Suppression)]) -> Result<()> {
        self.db.writable()?;
        for (hash, s) in entries {
            if self.suppressed.get(hash).map_err(self.db.err())?.is_none() {
                self.suppressed
                    .insert(hash, encode("suppressed", s)?)
                    .map_err(self.db.err())?;
            }
        }
        self.db.flush()
    }

    /// The suppression entry of a keyed hash, if the list holds one.
    pub(in crate::store) fn suppressed(&self, hash: &[u8; 32]) -> Result<Option<Suppression>> {
        self.suppressed
            .get(hash)
            .map_err(self.db.err())?
            .map(|b| decode("suppressed", &b))
            .transpose()
    }

    /// Whether a suppression entry stands whose day ends after `t`.
    pub(in crate::store) fn erased_since(&self, t: Timestamp) -> Result<bool> {
        for v in self.suppressed.iter().values() {
            let s: Suppression = decode("suppressed", &v.map_err(self.db.err())?)?;
            if Timestamp::from_date(s.erased_on.add_days(1)) > t {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Removes every suppression entry of one person (by pseudonym: a new
    /// legal basis). Returns how many went.
    pub(in crate::store) fn unsuppress(&self, person: &str) -> Result<u64> {
        self.db.writable()?;
        let mut n = 0;
        for kv in self.suppressed.iter() {
            let (k, v) = kv.map_err(self.db.err())?;
            let s: Suppression = decode("suppressed", &v)?;
            if s.person == person {
                self.suppressed.remove(k).map_err(self.db.err())?;
                n += 1;
            }
        }
        self.db.flush()?;
        Ok(n)
    }

    /// Records (or, with `None`, lifts) a customer's objection to
    /// advertising; kept apart from the imported data, so a re-import
    /// leaves it standing.
    pub(in crate::store) fn set_objection(
        &self,
        customer_no: &str,
        objection: Option<&Objection>,
    ) -> Result<()> {
        self.db.writable()?;
        match objection {
            Some(o) => self
                .objections
                .insert(customer_no.as_bytes(), encode("objections", o)?)
                .map(|_| ()),
            None => self.objections.remove(customer_no.as_bytes()).map(|_| ()),
        }
        .map_err(self.db.err())?;
        self.db.flush()?;
        self.bump_generation()
    }

    pub(in crate::store) fn objection(&self, customer_no: &str) -> Result<Option<Objection>> {
        self.objections
            .get(customer_no.as_bytes())
            .map_err(self.db.err())?
            .map(|b| decode("objections", &b))
            .transpose()
    }

    /// The customer numbers with an objection standing.
    pub(in crate::store) fn objections(&self) -> Result<BTreeSet<String>> {
        self.objections
            .iter()
            .keys()
            .map(|k| {
                k.map_err(self.db.err())
                    .map(|k| String::from_utf8_lossy(&k).into_owned())
            })
            .collect()
    }
}

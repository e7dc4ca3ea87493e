//! What changed in the dealer's data since the views derived from it were
//! last computed, so that they follow a small import instead of
//! recomputing the whole tenant (issue 17): the stored journeys (derived
//! on a day under a policy), the identity pass's match keys (an opaque
//! state the identity module keeps here), the opt-in counts of the
//! tenants listing, and the last committed planning run's standing (an
//! opaque state the planner keeps here for its incremental re-plan).
//!
//! Every write that changes the data version (`Records::data_version`)
//! hands its `before` version and what it touched to [`Records::carry`]
//! (or drops every tracker with [`Records::forget_changes`] when it cannot
//! say whom it touched). A tracker is moved on only when it stood at that
//! `before` version; any other change in between drops it, and a tracker
//! is read only while it stands at the current version. A dropped or
//! missing tracker means: recompute the whole tenant. The trackers live in
//! memory with the open store. When the store closes (idle, or at
//! shutdown), the journeys' tracker, the planning run's standing and the
//! opt-in counts are written down if they stand at the data version then
//! ([`Records::park`], `meta` key [`keys::META_PARKED`]), and read back
//! (and removed) when it opens again, if the data still stands there, the
//! executable is the one that wrote them and nothing wrote the database
//! while it was closed ([`Records::unpark`], [`Seal`], `store/seal.rs`):
//! an export that arrives after the store was closed as idle is re-planned
//! as one that arrives before, and a reopened store counts no consents for
//! the tenants listing. The identity pass's state is not kept (a reopened
//! store recomputes it at its next import).
//!
//! Part of `records`; writes the one `meta` key.

use std::any::Any;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;

use touchpoint_common::consent;
use touchpoint_common::domain::{Channel, Consent};
use touchpoint_common::protocol::OptIns;
use touchpoint_common::Date;

use serde::{Deserialize, Serialize};

use super::keys::META_PARKED;
use super::tracker::{
    count_person, standing, Changes, OptInsDelta, Park, Since, Standing, Touched,
};
use super::Records;
use crate::store::db::{decode, encode};
use crate::store::error::Result;

/// What [`Records::park`] writes down: the data version the trackers
/// stand at, the seal it was written under, the journeys' tracker (day,
/// policy, customers touched since), the planning run's (customers touched
/// since, the planner's bytes) and the opt-in counts.
#[derive(Serialize, Deserialize)]
struct Parked {
    version: u64,
    seal: Seal,
    journeys: Option<(Date, u64, Vec<String>)>,
    plan: Option<(Vec<String>, Vec<u8>)>,
    opt_ins: Option<OptIns>,
}

/// What a written-down standing must find again to be read back, besides
/// the data version: the executable that wrote it (another build may
/// derive or plan otherwise) and the token of this close, which the open
/// gets only from a seal file whose database files nothing changed while
/// the store was closed (`store/seal.rs`: an earlier build that knows
/// nothing of the standing counts no outbox write, nor does a tool).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(in crate::store) struct Seal {
    pub(in crate::store) build: u64,
    pub(in crate::store) token: u64,
}

impl Records {
    fn changes(&self) -> std::sync::MutexGuard<'_, Changes> {
        // Every change under this lock is a whole assignment.
        self.changes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A write moved the data from `before` to the current version,
    /// touching `touched`; `opt_ins` is what it did to the opt-in counts
    /// (`None`: unknown, unless nothing was touched).
    pub(in crate::store) fn carry(
        &self,
        before: u64,
        touched: &Touched,
        opt_ins: Option<OptInsDelta>,
    ) -> Result<()> {
        let after = self.data_version()?;
        let mut ch = self.changes();
        if ch
            .journeys
            .as_mut()
            .is_some_and(|(_, _, s)| !s.carry(before, after, touched))
        {
            ch.journeys = None;
        }
        if ch
            .identity
            .as_mut()
            .is_some_and(|(s, _)| !s.carry(before, after, touched))
        {
            ch.identity = None;
        }
        if ch
            .plan
            .as_mut()
            .is_some_and(|(s, _)| !s.carry(before, after, touched))
        {
            ch.plan = None;
        }
        ch.opt_ins = match (ch.opt_ins.take(), opt_ins) {
            (Some((v, o)), Some(d)) if v == before => d.apply(o).map(|o| (after, o)),
            (Some((v, o)), None) if v == before && touched.is_empty() => Some((after, o)),
            _ => None,
        };
        Ok(())
    }

    /// A write that cannot say whom it touched: every view recomputes.
    pub(in crate::store) fn forget_changes(&self) {
        *self.changes() = Changes::default();
    }

    /// The customers whose journeys need deriving again on `day` under
    /// `policy`, and the version to pass to [`Records::journeys_derived`];
    /// `None`: every recipient's.
    pub(in crate::store) fn journeys_pending(
        &self,
        day: Date,
        policy: u64,
    ) -> Result<Option<(u64, Touched)>> {
        let version = self.data_version()?;
        let ch = self.changes();
        Ok(match &ch.journeys {
            Some((d, p, s)) if *d == day && *p == policy && s.version == version => {
                Some((version, s.touched.clone()))
            }
            _ => None,
        })
    }

    /// The journeys were derived on `day` under `policy` from the data at
    /// `version`: all of them (`all`), or those pending at that version.
    pub(in crate::store) fn journeys_derived(
        &self,
        day: Date,
        policy: u64,
        version: u64,
        all: bool,
    ) {
        let mut ch = self.changes();
        match &mut ch.journeys {
            Some((d, p, s)) if !all && *d == day && *p == policy && s.version == version => {
                s.touched.clear();
            }
            // Changed since `version`: the tracker already holds those
            // changes (and the ones derived now, again: harmless).
            Some((d, p, _)) if !all && *d == day && *p == policy => {}
            _ if all => {
                ch.journeys = Some((
                    day,
                    policy,
                    Since {
                        version,
                        touched: Touched::new(),
                    },
                ));
            }
            _ => ch.journeys = None,
        }
    }

    /// The identity pass's state and the customers changed since it was
    /// taken, when it stands at the current version; taken out (the pass
    /// gives it back with [`Records::identity_keep`]).
    pub(in crate::store) fn identity_take(&self) -> Result<Option<(Touched, Box<dyn Any + Send>)>> {
        let version = self.data_version()?;
        let mut ch = self.changes();
        match ch.identity.take() {
            Some((s, state)) if s.version == version => Ok(Some((s.touched, state))),
            _ => Ok(None),
        }
    }

    /// Keeps the identity pass's state, taken from the data at `version`.
    pub(in crate::store) fn identity_keep(&self, version: u64, state: Box<dyn Any + Send>) {
        self.changes().identity = Some((
            Since {
                version,
                touched: Touched::new(),
            },
            state,
        ));
    }

    /// The last committed planning run's state and the customers changed
    /// since, when it stands at the current version; taken out (the
    /// planner gives the next run's back with [`Records::plan_keep`]).
    pub(in crate::store) fn plan_take(&self) -> Result<Option<(Touched, Standing)>> {
        let version = self.data_version()?;
        let mut ch = self.changes();
        match ch.plan.take() {
            Some((s, state)) if s.version == version => Ok(Some((s.touched, state))),
            _ => Ok(None),
        }
    }

    /// Keeps a committed planning run's state, planned from the data at
    /// `version`.
    pub(in crate::store) fn plan_keep(&self, version: u64, state: Box<dyn Park>) {
        self.changes().plan = Some((
            Since {
                version,
                touched: Touched::new(),
            },
            Standing::Live(state),
        ));
    }

    /// Writes down the journeys' tracker, the planning run's standing and
    /// the opt-in counts, those of them that stand at the current data
    /// version, under `seal`, for the store's next open; `outbox_writes`
    /// is the outbox's count of writes by anything but planning now.
    /// Called as the store closes, when nothing else holds it (the caller
    /// flushes, then seals the files: `store/seal.rs`). Returns whether
    /// anything was written.
    pub(in crate::store) fn park(&self, outbox_writes: u64, seal: Seal) -> Result<bool> {
        let version = self.data_version()?;
        let ch = self.changes();
        let listed = |s: &Since| s.touched.iter().cloned().collect::<Vec<String>>();
        let journeys = match &ch.journeys {
            Some((day, policy, s)) if s.version == version => Some((*day, *policy, listed(s))),
            _ => None,
        };
        let plan = match &ch.plan {
            Some((s, Standing::Live(state))) if s.version == version => {
                state.park(outbox_writes).map(|bytes| (listed(s), bytes))
            }
            // Read back at this open and not used since: kept again, if
            // nothing but planning wrote the outbox since the open.
            Some((
                s,
                Standing::Parked {
                    bytes,
                    outbox_writes: w,
                },
            )) if s.version == version && *w == outbox_writes => Some((listed(s), bytes.clone())),
            _ => None,
        };
        let opt_ins = match ch.opt_ins {
            Some((v, o)) if v == version => Some(o),
            _ => None,
        };
        drop(ch);
        if journeys.is_none() && plan.is_none() && opt_ins.is_none() {
            return Ok(false);
        }
        let parked = Parked {
            version,
            seal,
            journeys,
            plan,
            opt_ins,
        };
        // Too large to write down (a tracker of very many customers): the
        // next open recomputes, as it would have without this.
        match encode("meta", &parked) {
            Ok(bytes) => {
                self.meta
                    .insert(META_PARKED, bytes)
                    .map_err(self.db.err())?;
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(tenant = %self.db.id(), error = %e, "the planning standing is not kept across the close");
                Ok(false)
            }
        }
    }

    /// Reads back what [`Records::park`] wrote at the last close and
    /// restores the trackers if the data still stands at their version and
    /// `sealed` (this executable, and the token of a seal whose files are
    /// unchanged; `None`: no such seal) is theirs; `outbox_writes` is the
    /// outbox's count now (at the open). Removed as it is read, not
    /// durably: the removal is this session's first write to the log, so
    /// no later write survives a crash without it; and what survives
    /// without any write is what it stands on. Anything else (unreadable,
    /// another build, no seal, the data changed): the trackers stay empty
    /// and every view recomputes, as before.
    pub(in crate::store) fn unpark(&self, outbox_writes: u64, sealed: Option<Seal>) -> Result<()> {
        let Some(bytes) = self.meta.get(META_PARKED).map_err(self.db.err())? else {
            return Ok(());
        };
        if let Err(e) = self.meta.remove(META_PARKED) {
            tracing::warn!(tenant = %self.db.id(), error = %e, "cannot remove the planning standing kept at the last close");
        }
        let parked: Parked = match decode("meta", &bytes) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(tenant = %self.db.id(), error = %e, "the planning standing kept at the last close is unreadable; recomputed");
                return Ok(());
            }
        };
        let version = self.data_version()?;
        if parked.version != version || Some(parked.seal) != sealed {
            return Ok(());
        }
        let since = |touched: Vec<String>| Since {
            version,
            touched: touched.into_iter().collect(),
        };
        let mut ch = self.changes();
        if let Some(o) = parked.opt_ins {
            ch.opt_ins = Some((version, o));
        }
        if let Some((day, policy, touched)) = parked.journeys {
            ch.journeys = Some((day, policy, since(touched)));
        }
        if let Some((touched, bytes)) = parked.plan {
            ch.plan = Some((
                since(touched),
                Standing::Parked {
                    bytes,
                    outbox_writes,
                },
            ));
        }
        Ok(())
    }

    /// Opens a window in which dealer data is written and its change
    /// carried: counts taken while one is open are not kept (a count that
    /// saw part of a write, kept under the version before it, would be
    /// moved on by that write's change once more).
    pub(in crate::store) fn write_window(&self) -> WriteWindow<'_> {
        self.writing.fetch_add(1, Ordering::SeqCst);
        WriteWindow(self)
    }

    /// Where the write windows stand: odd while one is open.
    pub(in crate::store) fn windows(&self) -> u64 {
        self.writing.load(Ordering::SeqCst)
    }

    /// The opt-in counts if they are known at `version`.
    pub(in crate::store) fn cached_opt_ins(&self, version: u64) -> Option<OptIns> {
        match self.changes().opt_ins {
            Some((v, o)) if v == version => Some(o),
            _ => None,
        }
    }

    pub(in crate::store) fn cache_opt_ins(&self, version: u64, o: OptIns) {
        self.changes().opt_ins = Some((version, o));
    }

    /// Records of the dealer's data decoded so far (customers, vehicles,
    /// consents, visits, journeys): what a test reads to check that a
    /// small import reads a small part of a large tenant.
    pub(in crate::store) fn records_read(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    pub(in crate::store) fn note_read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    /// What changing consent statements (`(before, after)` of each
    /// statement written) did to the opt-in counts: each person they
    /// belong to counted before and after (a merged person by every
    /// statement under their numbers).
    pub(in crate::store) fn opt_ins_delta_of_consents(
        &self,
        changed: &[(Option<Consent>, Consent)],
    ) -> Result<OptInsDelta> {
        if changed.is_empty() {
            return Ok(OptInsDelta::default());
        }
        let merged_into = self.merge_map()?;
        let mut before_of: HashMap<(String, Channel), Option<Consent>> = HashMap::new();
        let mut people: BTreeSet<String> = BTreeSet::new();
        for (before, after) in changed {
            before_of
                .entry((after.customer_no.clone(), after.channel))
                .or_insert_with(|| before.clone());
            people.insert(consent::survivor(&merged_into, &after.customer_no).to_string());
        }
        let members = members_of(&merged_into, &people);
        let mut d = OptInsDelta::default();
        for (person, numbers) in members {
            let mut now: Vec<Consent> = Vec::new();
            let mut then: Vec<Consent> = Vec::new();
            for no in numbers.iter().chain(std::iter::once(&person)) {
                let current = self.consents_of(no)?;
                for ch in Channel::ALL {
                    let c = current.iter().find(|c| c.channel == ch);
                    now.extend(c.cloned());
                    match before_of.get(&(no.clone(), ch)) {
                        Some(b) => then.extend(b.clone()),
                        None => then.extend(c.cloned()),
                    }
                }
            }
            count_person(&mut d.sub, &standing(&then));
            count_person(&mut d.add, &standing(&now));
        }
        Ok(d)
    }

    /// What merging (`new`: merged → survivor pairs, on top of the merges
    /// in force) does to the opt-in counts: the people they join counted
    /// apart before and as one after.
    pub(in crate::store) fn opt_ins_delta_of_merges(
        &self,
        new: &[(String, String)],
    ) -> Result<OptInsDelta> {
        let mut map = self.merge_map()?;
        let mut people_before: BTreeSet<String> = BTreeSet::new();
        for (m, s) in new {
            people_before.insert(consent::survivor(&map, m).to_string());
            people_before.insert(consent::survivor(&map, s).to_string());
        }
        let before = members_of(&map, &people_before);
        for (m, s) in new {
            map.insert(m.clone(), s.clone());
        }
        let people_after: BTreeSet<String> = people_before
            .iter()
            .map(|p| consent::survivor(&map, p).to_string())
            .collect();
        let after = members_of(&map, &people_after);
        let mut d = OptInsDelta::default();
        let statements = |person: &String, numbers: &Vec<String>| -> Result<Vec<Consent>> {
            let mut out = Vec::new();
            for no in numbers.iter().chain(std::iter::once(person)) {
                out.extend(self.consents_of(no)?);
            }
            Ok(out)
        };
        for (p, n) in &before {
            count_person(&mut d.sub, &standing(&statements(p, n)?));
        }
        for (p, n) in &after {
            count_person(&mut d.add, &standing(&statements(p, n)?));
        }
        Ok(d)
    }
}

/// An open write window ([`Records::write_window`]), closed when dropped.
pub(in crate::store) struct WriteWindow<'a>(&'a Records);

impl Drop for WriteWindow<'_> {
    fn drop(&mut self) {
        self.0.writing.fetch_add(1, Ordering::SeqCst);
    }
}

/// Each person of `people` (a survivor, or a customer merged into no one)
/// with the numbers merged into them.
fn members_of(
    merged_into: &HashMap<String, String>,
    people: &BTreeSet<String>,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out: std::collections::BTreeMap<String, Vec<String>> =
        people.iter().map(|p| (p.clone(), Vec::new())).collect();
    for m in merged_into.keys() {
        if let Some(list) = out.get_mut(consent::survivor(merged_into, m)) {
            list.push(m.clone());
        }
    }
    for list in out.values_mut() {
        list.sort();
    }
    out
}

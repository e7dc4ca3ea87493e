//! Planning (M5): turns each tenant's occasions into planned messages in its
//! outbox, through these steps in this order, each leaving a line in the
//! message's *why*:
//!
//! 1. consent and channel (the service's channel order among those with
//!    consent and an address; mandatory and forbidden channels; the
//!    dealer's suppression list);
//! 2. bundling (occasions due within the brand's window: one message);
//! 3. consolidation (a holder's vehicles with the same service: one message);
//! 4. frequency capping (at most N contacts per rolling period, a minimum
//!    gap, counting what is planned and sent), with the next best offer:
//!    nothing below the brand's value threshold takes a contact, and when
//!    the rules let not every offer of a recipient out, the best expected
//!    ones go (learned incremental response × value, else the policy's
//!    value, minus cost), the *why* naming the runner-up and the margin;
//! 5. budget (the service's monthly budget, highest expected value first);
//! 6. send time (the service's window, no quiet days or holidays, the
//!    dealer's daily capacity; an email at a five-minute step of the
//!    window drawn per recipient and service, so a dealer's emails spread
//!    over its hours, a letter or call in the window's first hour).
//!
//! Before the steps, each recipient's journey stages are derived for the
//! day and, in a run that writes, stored with their transitions
//! ([`journey`]): time alone moves a customer to `lapsed`.
//!
//! A run is idempotent: every occasion has a stable key, and an occasion
//! planned once is never planned again (unless its message is cancelled).
//! A run whose tenant data, policy and day equal those of the last run is
//! skipped outright; a committing run on the day of the last one, with
//! nothing but dealer data changed since, plans only the recipients that
//! may plan otherwise than then ([`Basis`]). Before planning, messages not yet sent are checked
//! again: one whose channel lost its consent is cancelled, which frees its
//! occasions for this run to plan on another channel.

pub mod consent;
pub mod control;
pub mod history;
pub mod journey;
pub mod occasions;
pub mod recipients;
mod steps;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use touchpoint_common::domain::Timestamp;
use touchpoint_common::outbox::{
    month_of, Message, MessageStatus, PlanChange, PlanReport, ServiceTotals, Step, Why,
};
use touchpoint_common::policy::PolicySet;
use touchpoint_common::protocol::{PlanResult, PlanningStatus, TenantPlanChanges};
use touchpoint_common::{Date, TenantId};

use crate::learning::{Learned, Learning};
use crate::policy::PolicyHandle;
use crate::store::{Contact, Park, PlanWrite, Standing, StoreError, Stores, TenantStore};
pub use steps::History;
use steps::{Input, Outcome};
use touchpoint_common::learning::LearnedState;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no dealer policy for tenant {0:?}")]
    UnknownTenant(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Write the planned messages into the outbox.
    Commit,
    /// Compute everything, write nothing.
    DryRun,
}

/// The outbox as a run sees it: the store, minus what this run cancelled.
struct StoreHistory<'a> {
    store: &'a TenantStore,
    load: BTreeMap<Date, u32>,
    freed_keys: HashSet<String>,
    cancelled_ids: HashSet<u64>,
    released: HashMap<(u32, String), i64>,
    error: std::cell::RefCell<Option<StoreError>>,
}

impl StoreHistory<'_> {
    fn fail(&self, e: StoreError) {
        self.error.borrow_mut().get_or_insert(e);
    }
}

impl History for StoreHistory<'_> {
    fn planned(&self, key: &str) -> bool {
        if self.freed_keys.contains(key) {
            return false;
        }
        match self.store.planned_occasion(key) {
            Ok(v) => v.is_some(),
            Err(e) => {
                self.fail(e);
                true
            }
        }
    }

    fn contacts(&self, recipient: &str) -> Vec<Contact> {
        match self.store.contacts_of(recipient) {
            Ok(v) => v
                .into_iter()
                .filter(|c| !self.cancelled_ids.contains(&c.message))
                .collect(),
            Err(e) => {
                self.fail(e);
                Vec::new()
            }
        }
    }

    fn day_load(&self) -> &BTreeMap<Date, u32> {
        &self.load
    }

    fn committed(&self, month: u32, service: &str) -> i64 {
        let released = self
            .released
            .get(&(month, service.to_string()))
            .copied()
            .unwrap_or(0);
        match self.store.ledger_entry(month, service) {
            Ok(e) => e.committed() - released,
            Err(e) => {
                self.fail(e);
                i64::MAX / 4
            }
        }
    }
}

/// What a committed run was planned from: the data, the policy, the day
/// and the learned values in force (`learned`: [`learned_fingerprint`]).
/// A run with the same stamp as the last committed one is skipped.
fn stamp(data_version: u64, policy: u64, today: Date, learned: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data_version
        .to_be_bytes()
        .into_iter()
        .chain(policy.to_be_bytes())
        .chain(today.days().to_be_bytes())
        .chain(learned.to_be_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// What a committed run leaves with the open store for the next run
/// (`TenantStore::plan_keep`), which then plans only the recipients whose
/// data changed since (the store's tracker) and those of `unsettled`, when
/// the day, the clock's day, the policy, the learned values and the
/// outbox's other writers stand as they were.
///
/// Why that equals a full run: every other recipient had each occasion it
/// has planned or dropped for want of a channel (consent, address,
/// suppression, objection); with the same data and inputs, a full run finds
/// the same occasions, skips the planned ones and drops the rest at the
/// same step, so it shapes no draft for them and takes nothing from the
/// budget or a day's capacity; their messages not yet sent passed the same
/// revision then (or their recipient is unsettled). The rest (revision,
/// capping, budget, send time, ids, order) run as in a full run over the
/// recipients planned, in the same customer-number order, with the day
/// load of every message not yet sent read from the day index.
///
/// Which unsettled recipients a run plans again: see [`Unsettled`].
///
/// It outlives its open store: written down when the store closes (as
/// idle, or at shutdown) if nothing but planning wrote the outbox since the
/// run, and read back when it opens ([`Park`]; the store keeps it only
/// while the data, the outbox, the journeys and the executable are as they
/// were, and removes it when read). Its bytes carry [`STANDING_FORMAT`].
#[derive(serde::Serialize, serde::Deserialize)]
struct Basis {
    day: Date,
    clock_day: Date,
    policy: u64,
    learned: LearnedState,
    /// Not written down: the count is the open store's.
    #[serde(skip)]
    outbox_writes: u64,
    unsettled: BTreeMap<String, Unsettled>,
}

/// The format of a written-down [`Basis`]: raised with any change of what
/// it means.
const STANDING_FORMAT: u32 = 1;

impl Park for Basis {
    fn park(&self, outbox_writes: u64) -> Option<Vec<u8>> {
        if outbox_writes != self.outbox_writes {
            return None;
        }
        let kept = (STANDING_FORMAT, self);
        touchpoint_common::codec::encode_record(&kept).ok()
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

impl Basis {
    /// A standing read back at the store's open, which stood at
    /// `outbox_writes` then; `None` if it is of another format or unreadable.
    fn unpark(bytes: &[u8], outbox_writes: u64) -> Option<Self> {
        let (format, mut basis): (u32, Basis) =
            touchpoint_common::codec::decode_record(bytes).ok()?;
        if format != STANDING_FORMAT {
            return None;
        }
        basis.outbox_writes = outbox_writes;
        Some(basis)
    }
}

/// A recipient with an occasion dropped for another reason than want of a
/// channel, as the next run must treat it.
///
/// A recipient whose drops were all of its own making (the contact rules
/// over its own messages, the value threshold) and none of whose messages
/// the run planned or cancelled is settled like the rest: the same data,
/// day and inputs shape the same drafts and drop them at the same step.
/// One dropped only for want of budget, with nothing of its own planned or
/// cancelled, shapes the same drafts next time, each with the same cost,
/// value, day and month. What its month and service had used when it was
/// dropped (the commitments, plus every draft funded ahead of it in the
/// budget step's order) has been committed since, when no draft funded
/// there was given back by the send-time step in that run; every draft of
/// a later run only takes from budget. So what is left for it can have
/// grown only by what revisions released there since (a cancelled
/// message's cost), less what drafts funded ahead of it take: while that
/// is less than it fell short by, a full run drops it again and plans
/// nothing for it. Among those waiting in one month and service at one
/// cost, taken in the budget step's order, the k-th can be funded only if
/// the k before it are (one that is not had less left than its cost, and
/// so has every one after it), each taking its cost: it needs what was
/// released to cover its shortfall and k costs, else neither it nor any
/// after it is planned again ([`waiting_to_plan`]). (Before this, every
/// such recipient was planned by every run: at 1M customers over 100
/// dealers, with the shipped budgets, every one of 58,347 recipients with a
/// drop.) One carried past a run is short by what the run funded in its
/// month and service more ([`carry`]); one no longer short, or whose month and service
/// the send-time step gave budget back to in the run, is planned by the
/// next run.
/// Everything else plans again: a send-time drop (its budget was reserved
/// ahead of others' until the send-time step released it, so it takes part
/// in the budget step; so does one the send-time step moved into another
/// month and dropped there), a message the revision would cancel, and a drop
/// beside a message planned or cancelled for the same recipient (its own
/// contacts moved).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
enum Unsettled {
    /// Planned again by the next run.
    Always,
    /// Planned again by a run whose revision releases enough budget of a
    /// month and service one of these drafts waits in (each one's
    /// shortfall less what runs since released, plus what they funded
    /// there); carried until then.
    Budget(Vec<steps::Waiting>),
}

/// The recipients an incremental run plans, as [`incremental_set`] finds
/// them.
struct Only {
    /// Planned for sure: data changed, journeys pending, unsettled.
    numbers: std::collections::BTreeSet<String>,
    /// The data version the stored journeys are derived at.
    journeys_version: u64,
    /// Dropped for want of budget: planned when the run's revision
    /// releases enough budget of one of their months and services, else
    /// carried.
    waiting: BTreeMap<String, Vec<steps::Waiting>>,
}

/// A hash of the learned values in force, for the run's stamp; one that
/// cannot be encoded gives a new value each time (the run is never
/// skipped for it).
fn learned_fingerprint(learned: &Learned) -> u64 {
    match touchpoint_common::codec::encode_record(&in_force(learned)) {
        Ok(bytes) => bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        }),
        Err(_) => Timestamp::wall().millis() as u64 ^ 0x5bd1_e995,
    }
}

/// The learned values in force (what planning reads of them).
fn in_force(learned: &Learned) -> LearnedState {
    let mut s = learned.state().clone();
    s.signature = 0;
    s.computed_at = None;
    s
}

/// The customer numbers an incremental run must plan (see [`Basis`]), or
/// `None`: plan every recipient.
fn incremental_set(
    store: &TenantStore,
    version: u64,
    today: Date,
    clock_day: Date,
    set: &PolicySet,
    learned: &LearnedState,
    outbox_writes: u64,
) -> Result<Option<Only>, PlanError> {
    let Some((touched, state)) = store.plan_take()? else {
        return Ok(None);
    };
    let basis = match state {
        Standing::Live(state) => match state.into_any().downcast::<Basis>() {
            Ok(basis) => *basis,
            Err(_) => return Ok(None),
        },
        Standing::Parked {
            bytes,
            outbox_writes,
        } => match Basis::unpark(&bytes, outbox_writes) {
            Some(basis) => basis,
            None => return Ok(None),
        },
    };
    if basis.day != today
        || basis.clock_day != clock_day
        || basis.policy != set.fingerprint
        || basis.outbox_writes != outbox_writes
        || basis.learned != *learned
    {
        return Ok(None);
    }
    // Every journey derived today under this policy, but for these.
    let Some((journeys_version, pending)) = store.journeys_pending(today, set.fingerprint)? else {
        return Ok(None);
    };
    if journeys_version != version {
        return Ok(None);
    }
    let mut numbers = touched;
    numbers.extend(pending);
    let mut waiting = BTreeMap::new();
    for (no, u) in basis.unsettled {
        match u {
            Unsettled::Always => {
                numbers.insert(no);
            }
            Unsettled::Budget(keys) => {
                waiting.insert(no, keys);
            }
        }
    }
    waiting.retain(|no, _| !numbers.contains(no));
    Ok(Some(Only {
        numbers,
        journeys_version,
        waiting,
    }))
}

/// Plans one tenant for `today`.
pub fn plan_tenant(
    store: &TenantStore,
    set: &PolicySet,
    today: Date,
    mode: Mode,
    learned: &Learned,
) -> Result<PlanReport, PlanError> {
    let started = Instant::now();
    let _planning = (mode == Mode::Commit).then(|| store.plan_lock());
    let tenant = store.id().as_str();
    let policy = set
        .tenant(store.id())
        .ok_or_else(|| PlanError::UnknownTenant(tenant.to_string()))?;
    let mut report = PlanReport {
        tenant: tenant.to_string(),
        day: Some(today),
        dry_run: mode == Mode::DryRun,
        ..PlanReport::default()
    };
    let run_stamp = stamp(
        store.data_version()?,
        set.fingerprint,
        today,
        learned_fingerprint(learned),
    );
    if mode == Mode::Commit && store.plan_stamp()? == Some(run_stamp) {
        report.unchanged = true;
        report.millis = started.elapsed().as_millis() as u64;
        return Ok(report);
    }
    // Addresses that hard-bounced (bad_addresses is written by dispatch;
    // mark_bad_address bumps the data version, so a stamp check above sees it).
    let bad: std::collections::HashMap<String, String> =
        store.bad_addresses()?.into_iter().collect();
    let input = Input {
        tenant,
        brand: &set.brand,
        policy,
        today,
        learned,
        bad_addresses: &bad,
    };
    let mut clock = Instant::now();
    let mut lap = || {
        let now = Instant::now();
        let d = now - clock;
        clock = now;
        d.as_micros() as u64
    };
    let version = store.data_version()?;
    // A committing run on the same day under the same policy and learned
    // values as the last one, with nothing but planning having written
    // the outbox since, plans only the recipients that may plan otherwise
    // than then ([`Basis`]); anything it cannot account for: every one.
    let clock_day = Date::today();
    let outbox_writes = store.outbox_writes();
    let in_force = in_force(learned);
    let only = match mode {
        Mode::Commit => incremental_set(
            store,
            version,
            today,
            clock_day,
            set,
            &in_force,
            outbox_writes,
        )?,
        Mode::DryRun => None,
    };
    let (mut recipients, gone) = match &only {
        Some(o) => recipients::load_some(store, &o.numbers)?,
        None => (recipients::load(store)?, Vec::new()),
    };
    // Time passes: stages change without new data. A dry run derives the
    // same transitions and stores none.
    match &only {
        Some(o) => {
            journey::refresh_loaded(
                store,
                &mut recipients,
                &gone,
                &set.brand.journey,
                today,
                true,
            )?;
            store.journeys_derived(today, set.fingerprint, o.journeys_version, false);
        }
        None => {
            journey::refresh(
                store,
                &mut recipients,
                &set.brand.journey,
                today,
                mode == Mode::Commit,
            )?;
            if mode == Mode::Commit {
                store.journeys_derived(today, set.fingerprint, version, true);
            }
        }
    }
    // The recipients loaded (those waiting for budget that a release may
    // fund are loaded with the revision's time below).
    let load_us = lap();
    // Messages not yet sent: still allowed?
    let mut history = StoreHistory {
        store,
        load: BTreeMap::new(),
        freed_keys: HashSet::new(),
        cancelled_ids: HashSet::new(),
        released: HashMap::new(),
        error: std::cell::RefCell::new(None),
    };
    let incremental = only.is_some();
    let pending = match &only {
        // The others' messages were revised by an earlier run with the
        // same data and inputs and stand: only their count per day is read.
        Some(o) => {
            history.load = store.day_load(today)?;
            let mut of: std::collections::BTreeSet<&str> =
                o.numbers.iter().map(String::as_str).collect();
            of.extend(recipients.iter().map(|r| r.customer.customer_no.as_str()));
            store.pending_messages_of(today, of)?
        }
        None => store.pending_messages(today)?,
    };
    revise(
        pending,
        &recipients,
        &input,
        incremental,
        &mut history,
        &mut report.cancelled,
    );
    // The recipients waiting for budget of a month and service the
    // revision released as much of as they fell short by: planned too
    // ([`Unsettled`]); the others are carried to the next run, short by
    // what was released less.
    // Short by what was released less: finished once the budget step has
    // run ([`carry`]).
    let mut carried: BTreeMap<String, Vec<steps::Waiting>> = BTreeMap::new();
    let mut waiting_planned = 0usize;
    if let Some(o) = &only {
        let released = |k: &steps::BudgetKey| history.released.get(k).copied().unwrap_or(0).max(0);
        // A waiter this run loaded already (the root of a customer whose
        // data changed) is planned afresh: its old drafts are not waiting
        // any more, nor carried.
        let have: HashSet<String> = recipients
            .iter()
            .map(|r| r.customer.customer_no.clone())
            .collect();
        let waiting: BTreeMap<String, Vec<steps::Waiting>> = o
            .waiting
            .iter()
            .filter(|(no, _)| !have.contains(*no))
            .map(|(no, ws)| (no.clone(), ws.clone()))
            .collect();
        let wanted = waiting_to_plan(&waiting, &released);
        waiting_planned = wanted.len();
        for (no, ws) in waiting.into_iter().filter(|(no, _)| !wanted.contains(no)) {
            let left: Vec<steps::Waiting> = ws
                .into_iter()
                .map(|w| steps::Waiting {
                    short: w.short - released(&w.key),
                    ..w
                })
                .collect();
            carried.insert(no, left);
        }
        if !wanted.is_empty() {
            let (mut more, more_gone) = recipients::load_some(store, &wanted)?;
            more.retain(|r| !have.contains(&r.customer.customer_no));
            journey::refresh_loaded(
                store,
                &mut more,
                &more_gone,
                &set.brand.journey,
                today,
                true,
            )?;
            // Neither the waiting (filtered above) nor their roots (kept
            // out here) were loaded yet.
            let numbers: std::collections::BTreeSet<&str> = more
                .iter()
                .map(|r| r.customer.customer_no.as_str())
                .chain(wanted.iter().map(String::as_str))
                .collect();
            let pending = store.pending_messages_of(today, numbers)?;
            recipients.extend(more);
            recipients.sort_by(|a, b| a.customer.customer_no.cmp(&b.customer.customer_no));
            // Their messages passed this revision today with the same
            // data (else they would not wait): nothing is cancelled, so
            // nothing released here is missed by the choice above.
            let before = report.cancelled.len();
            revise(
                pending,
                &recipients,
                &input,
                incremental,
                &mut history,
                &mut report.cancelled,
            );
            debug_assert_eq!(
                report.cancelled.len(),
                before,
                "a waiter's message cancelled"
            );
        }
    }
    report.recipients = recipients.len() as u64;
    let index: HashMap<&str, usize> = recipients
        .iter()
        .enumerate()
        .map(|(i, r)| (r.customer.customer_no.as_str(), i))
        .collect();

    let revise_us = lap();
    let mut out = Outcome::default();
    let mut shaped = Vec::new();
    for (i, r) in recipients.iter().enumerate() {
        shaped.extend(steps::shape(i, r, &input, &history, &mut out));
    }
    let shape_us = lap();
    let mut spent = HashMap::new();
    let funded = steps::budget(shaped, &recipients, &input, &history, &mut spent, &mut out);
    steps::schedule(funded, &recipients, &input, &history, &mut spent, &mut out);
    if let Some(e) = history.error.take() {
        return Err(e.into());
    }
    let fund_us = lap();
    let budget_drops: Vec<(String, Option<steps::Waiting>)> = std::mem::take(&mut out.budget_drops)
        .into_iter()
        .map(|(i, key)| (recipients[i].customer.customer_no.clone(), key))
        .collect();
    let released_late: HashSet<steps::BudgetKey> = out.released_late.drain(..).collect();
    let carried = carry(carried, &out.funded, &released_late);

    let count = out.drafts.len() + out.controls.len();
    let first_id = match mode {
        Mode::Commit if count > 0 => store.reserve_message_ids(count as u64)?,
        _ => 1,
    };
    // Stable order: by send day, then recipient.
    let mut drafts: Vec<(steps::Draft, u16)> = std::mem::take(&mut out.drafts)
        .into_iter()
        .zip(std::mem::take(&mut out.times))
        .collect();
    drafts.sort_by(|(x, a), (y, b)| {
        (x.day, a, &recipients[x.recipient].customer.customer_no).cmp(&(
            y.day,
            b,
            &recipients[y.recipient].customer.customer_no,
        ))
    });
    report.planned.reserve_exact(drafts.len());
    for (n, (d, at)) in drafts.into_iter().enumerate() {
        let r = &recipients[d.recipient];
        let m = steps::message(d, at, first_id + n as u64, r, &input, set.fingerprint);
        report.planned.push(m);
    }
    let mut controls = std::mem::take(&mut out.controls);
    controls.sort_by(|x, y| {
        (x.day, &recipients[x.recipient].customer.customer_no)
            .cmp(&(y.day, &recipients[y.recipient].customer.customer_no))
    });
    let next = first_id + report.planned.len() as u64;
    for (n, d) in controls.into_iter().enumerate() {
        let r = &recipients[d.recipient];
        report
            .planned
            .push(control_record(d, next + n as u64, r, &input, set));
    }
    report.occasions_found = out.occasions_found;
    report.already_planned = out.already_planned;
    report.dropped = out.dropped;
    report.totals = totals(&report);
    report.planned_count = report.planned.len() as u64;
    report.dropped_count = report.dropped.len() as u64;
    report.cancelled_count = report.cancelled.len() as u64;
    let build_us = lap();

    // What the next run must plan again although its data did not change
    // ([`Unsettled`]), and those carried from before.
    let waiting_carried = carried
        .values()
        .filter(|u| matches!(u, Unsettled::Budget(_)))
        .count();
    let unsettled = if mode == Mode::Commit {
        let mut next = carried;
        next.extend(unsettled(
            &report,
            &budget_drops,
            &released_late,
            &recipients,
            &index,
            &input,
        ));
        next
    } else {
        Default::default()
    };
    if mode == Mode::Commit {
        let write = PlanWrite {
            new: &report.planned,
            revised: &report.cancelled,
            stamp: run_stamp,
        };
        store.commit_plan(&write)?;
        store.plan_keep(
            version,
            Box::new(Basis {
                day: today,
                clock_day,
                policy: set.fingerprint,
                learned: in_force,
                outbox_writes,
                unsettled,
            }),
        );
    }
    let commit_us = lap();
    tracing::debug!(
        target: "touchpointd::planner::phases",
        tenant,
        recipients = report.recipients,
        waiting_planned,
        waiting_carried,
        load_us,
        revise_us,
        shape_us,
        fund_us,
        build_us,
        commit_us,
        "plan phases"
    );
    report.millis = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Of the recipients waiting for budget, those a full run might fund
/// with what this run's revision `released` ([`Unsettled`]): per month and
/// service released and per cost, the waiting drafts in the budget step's
/// order (value, day, customer number), the k-th (from 0) while its
/// shortfall less the release, plus k costs, is not above 0.
fn waiting_to_plan(
    waiting: &BTreeMap<String, Vec<steps::Waiting>>,
    released: &dyn Fn(&steps::BudgetKey) -> i64,
) -> std::collections::BTreeSet<String> {
    let mut by_key: BTreeMap<(&steps::BudgetKey, i64), Vec<(&String, &steps::Waiting)>> =
        BTreeMap::new();
    for (no, ws) in waiting {
        for w in ws.iter().filter(|w| released(&w.key) > 0) {
            by_key.entry((&w.key, w.cost)).or_default().push((no, w));
        }
    }
    let mut wanted = std::collections::BTreeSet::new();
    for ((key, cost), mut list) in by_key {
        let r = released(key);
        list.sort_by(|(na, a), (nb, b)| {
            b.value
                .cmp(&a.value)
                .then(a.day.cmp(&b.day))
                .then(na.cmp(nb))
        });
        // `ahead`: those before it at this cost, each taking its cost.
        for (ahead, (no, w)) in (0_i64..).zip(list) {
            if w.short - r + ahead * cost > 0 {
                break;
            }
            wanted.insert(no.clone());
        }
    }
    wanted
}

/// What becomes of the recipients still waiting for budget after a run
/// (their drafts short by what was released less): each draft is short by
/// the cost of every draft the run funded in its month and service more.
/// Why: what was left for it when it was dropped has been committed since
/// (less what revisions released, already taken off), and every draft the
/// run funded there is committed now too, ahead of it or not (the order
/// matters within a run; at the next run's start only what is committed
/// counts); anything else the run took there (a draft moved into that
/// month by the send-time step) only takes more, so the shortfall is at
/// least this. One whose month and service the send-time step gave budget
/// back to in the run (a funded draft dropped or moved to another month:
/// less is committed than was funded) is planned again by the next run,
/// and so is one with a draft no longer short (one before it may give its
/// budget back without a release). Before this, a release of one cost made
/// every waiter of its month and service with a smaller shortfall plan
/// again, whatever the run funded there.
fn carry(
    carried: BTreeMap<String, Vec<steps::Waiting>>,
    funded: &HashMap<steps::BudgetKey, i64>,
    released_late: &HashSet<steps::BudgetKey>,
) -> BTreeMap<String, Unsettled> {
    carried
        .into_iter()
        .map(|(no, ws)| {
            let late = ws.iter().any(|w| released_late.contains(&w.key));
            let left: Vec<steps::Waiting> = ws
                .into_iter()
                .map(|w| steps::Waiting {
                    short: w.short + funded.get(&w.key).copied().unwrap_or(0),
                    ..w
                })
                .collect();
            let u = if late || left.iter().any(|w| w.short <= 0) {
                Unsettled::Always
            } else {
                Unsettled::Budget(left)
            };
            (no, u)
        })
        .collect()
}

/// Revises messages not yet sent: each one still revisable that may no
/// longer go out is cancelled (into `cancelled`), its occasions freed and
/// its cost released; every other one takes its day's capacity (counted
/// here in a full run; an incremental run read the day index, and takes a
/// cancelled one off it).
fn revise(
    pending: Vec<Message>,
    recipients: &[recipients::Recipient],
    input: &Input,
    incremental: bool,
    history: &mut StoreHistory,
    cancelled: &mut Vec<Message>,
) {
    let index: HashMap<&str, usize> = recipients
        .iter()
        .enumerate()
        .map(|(i, r)| (r.customer.customer_no.as_str(), i))
        .collect();
    let today = input.today;
    for mut m in pending {
        // Everything not yet sent takes its day's capacity; only what is
        // not yet handed to a transport can be revised.
        let reason = if m.status.is_revisable() {
            revision(&m, recipients, &index, input)
        } else {
            None
        };
        let Some(reason) = reason else {
            if !incremental {
                *history.load.entry(m.send_on).or_insert(0) += 1;
            }
            continue;
        };
        if incremental {
            // Counted from the day index: taken off again.
            if let Some(n) = history.load.get_mut(&m.send_on) {
                *n = n.saturating_sub(1);
            }
        }
        let now = touchpoint_common::domain::Timestamp::now();
        m.status = MessageStatus::Cancelled;
        m.why.push(Why {
            step: Step::Revision,
            text: format!("cancelled on {today}: {reason}"),
        });
        m.dispatch.last_error = reason.clone();
        m.history.push((now, MessageStatus::Cancelled, reason));
        history.cancelled_ids.insert(m.id);
        history
            .freed_keys
            .extend(m.occasions.iter().map(|o| o.key.clone()));
        let key = (month_of(m.send_on), m.service.clone());
        *history.released.entry(key).or_insert(0) += m.cost;
        cancelled.push(m);
    }
}

/// The recipients of a committed run the next run must plan again or
/// keep waiting for budget ([`Unsettled`]).
fn unsettled(
    report: &PlanReport,
    budget_drops: &[(String, Option<steps::Waiting>)],
    released_late: &HashSet<steps::BudgetKey>,
    recipients: &[recipients::Recipient],
    index: &HashMap<&str, usize>,
    input: &Input,
) -> BTreeMap<String, Unsettled> {
    let mut out: BTreeMap<String, Unsettled> = BTreeMap::new();
    let moved: HashSet<&str> = report
        .planned
        .iter()
        .chain(&report.cancelled)
        .map(|m| m.recipient.as_str())
        .collect();
    // A message the next revision would cancel.
    for m in report
        .planned
        .iter()
        .filter(|m| m.status.is_revisable())
        .filter(|m| revision(m, recipients, index, input).is_some())
    {
        out.insert(m.recipient.clone(), Unsettled::Always);
    }
    let mut keys: BTreeMap<&str, Vec<steps::Waiting>> = BTreeMap::new();
    let mut took_budget: HashSet<&str> = HashSet::new();
    for (no, drop) in budget_drops {
        match drop {
            Some(w) if !released_late.contains(&w.key) => {
                keys.entry(no.as_str()).or_default().push(w.clone());
            }
            // Short where a draft funded ahead of it was given back later
            // in the run (what it had then is not committed), or dropped
            // by the send-time step after the budget step funded it.
            _ => {
                took_budget.insert(no.as_str());
            }
        }
    }
    // Why, counted for the log.
    let revision = out.len();
    let (mut send_time, mut own_moved, mut given_back) = (0, 0, 0);
    let mut drops: HashSet<&str> = HashSet::new();
    for d in report.dropped.iter().filter(|d| d.step != Step::Channel) {
        let no = d.recipient.as_str();
        drops.insert(no);
        if out.get(no) == Some(&Unsettled::Always) {
            continue;
        }
        let again = if d.step == Step::SendTime {
            Some(&mut send_time)
        } else if moved.contains(no) {
            Some(&mut own_moved)
        } else if took_budget.contains(no) {
            Some(&mut given_back)
        } else {
            None
        };
        if let Some(n) = again {
            *n += 1;
            out.insert(no.to_string(), Unsettled::Always);
        } else if let Some(k) = keys.get(no) {
            out.insert(no.to_string(), Unsettled::Budget(k.clone()));
        }
        // Otherwise capping or the value threshold: its own making.
    }
    tracing::debug!(
        target: "touchpointd::planner::phases",
        tenant = report.tenant.as_str(),
        revision,
        send_time,
        own_moved,
        budget_given_back = given_back,
        waiting_for_budget = out
            .values()
            .filter(|u| matches!(u, Unsettled::Budget(_)))
            .count(),
        settled = drops.iter().filter(|no| !out.contains_key(**no)).count(),
        "unsettled recipients"
    );
    out
}

/// A control-group member's record: the message it stands for, kept with
/// its occasion, channel and the day it would have gone out, costing
/// nothing and going nowhere.
fn control_record(
    d: steps::Draft,
    id: u64,
    r: &recipients::Recipient,
    input: &Input,
    set: &PolicySet,
) -> Message {
    let at = set
        .brand
        .services
        .get(&d.service)
        .map(|s| s.send_window.from.minutes())
        .unwrap_or(0);
    let mut m = steps::message(d, at, id, r, input, set.fingerprint);
    m.cost = 0;
    m.status = MessageStatus::Control;
    if let Some(first) = m.history.first_mut() {
        first.1 = MessageStatus::Control;
        first.2 = "control group: no message is sent".into();
    }
    m
}

/// Why a message planned earlier may no longer go out, if it may not.
fn revision(
    m: &Message,
    recipients: &[recipients::Recipient],
    index: &HashMap<&str, usize>,
    input: &Input,
) -> Option<String> {
    let Some(&i) = index.get(m.recipient.as_str()) else {
        return Some(format!(
            "recipient {} is no longer a recipient (merged into another customer)",
            m.recipient
        ));
    };
    let r = &recipients[i];
    for o in &m.occasions {
        if !input
            .policy
            .services
            .get(&o.service)
            .is_some_and(|s| s.opt_in)
        {
            return Some(format!("the dealer no longer takes part in {}", o.service));
        }
        let answered = input
            .brand
            .services
            .get(&o.service)
            .and_then(|s| occasions::answered(o, r, s, input.brand, input.today));
        if answered.is_some() {
            return answered;
        }
    }
    // As in planning: the numbers merged into the recipient count too.
    let suppressed = &input.policy.suppress.customers;
    if suppressed.contains(&r.customer.customer_no)
        || r.merged.iter().any(|no| suppressed.contains(no))
    {
        return Some("customer is on the dealer's suppression list".into());
    }
    if r.objected {
        return Some(steps::OBJECTED.into());
    }
    // Every occasion bundled into the message must still allow its channel.
    let mut seen: Vec<&str> = Vec::new();
    for o in &m.occasions {
        if seen.contains(&o.service.as_str()) {
            continue;
        }
        seen.push(&o.service);
        let service = input.brand.services.get(&o.service)?;
        if let Err(reason) = steps::channel_check(r, m.channel, service, input) {
            return Some(reason);
        }
    }
    None
}

fn totals(report: &PlanReport) -> Vec<ServiceTotals> {
    let mut by: BTreeMap<&str, ServiceTotals> = BTreeMap::new();
    for m in &report.planned {
        let t = by.entry(&m.service).or_default();
        if m.status == MessageStatus::Control {
            t.control += 1;
            continue;
        }
        t.messages += 1;
        t.cost += m.cost;
        match m.channel {
            touchpoint_common::domain::Channel::Email => t.email += 1,
            touchpoint_common::domain::Channel::Post => t.post += 1,
            touchpoint_common::domain::Channel::Phone => t.phone += 1,
        }
    }
    for d in &report.dropped {
        by.entry(&d.occasion.service).or_default().dropped += 1;
    }
    by.into_iter()
        .map(|(s, mut t)| {
            t.service = s.to_string();
            t
        })
        .collect()
}

/// What a candidate policy would plan differently from the current one,
/// matching messages by the occasions they cover.
pub fn diff(current: &PlanReport, candidate: &PlanReport) -> Vec<PlanChange> {
    let key = |m: &Message| {
        let mut k: Vec<&str> = m.occasions.iter().map(|o| o.key.as_str()).collect();
        k.sort_unstable();
        (m.recipient.clone(), k.join("|"))
    };
    let cur: BTreeMap<_, &Message> = current.planned.iter().map(|m| (key(m), m)).collect();
    let cand: BTreeMap<_, &Message> = candidate.planned.iter().map(|m| (key(m), m)).collect();
    let mut changes = Vec::new();
    for (k, m) in &cur {
        match cand.get(k) {
            None => changes.push(PlanChange::Removed(Box::new((*m).clone()))),
            Some(c)
                if c.channel != m.channel
                    || c.send_on != m.send_on
                    || c.cost != m.cost
                    || c.service != m.service =>
            {
                changes.push(PlanChange::Changed {
                    current: Box::new((*m).clone()),
                    candidate: Box::new((*c).clone()),
                })
            }
            Some(_) => {}
        }
    }
    for (k, m) in &cand {
        if !cur.contains_key(k) {
            changes.push(PlanChange::Added(Box::new((*m).clone())));
        }
    }
    changes
}

/// Answers a plan request: plans (or dry-runs) the tenants, and with a
/// candidate policy set also dry-runs that and reports the difference.
/// Lists are cut to `show` entries per tenant so the answer fits a frame.
#[allow(clippy::too_many_arguments)]
pub fn request(
    stores: &Stores,
    set: &PolicySet,
    candidate: Option<&PolicySet>,
    tenants: &[TenantId],
    today: Date,
    dry_run: bool,
    show: usize,
    learned: &Learned,
) -> PlanResult {
    let mode = if dry_run { Mode::DryRun } else { Mode::Commit };
    let mut result = PlanResult::default();
    // The difference to a candidate policy needs every planned message.
    let keep = if candidate.is_some() {
        usize::MAX
    } else {
        show
    };
    let current = plan_tenants(stores, set, Some(tenants), today, mode, learned, keep);
    let candidate = candidate.map(|c| {
        // A tenant the candidate does not know plans nothing under it.
        let known: Vec<TenantId> = tenants
            .iter()
            .filter(|t| c.tenants.contains_key(*t))
            .cloned()
            .collect();
        plan_tenants(stores, c, Some(&known), today, Mode::DryRun, learned, keep)
            .into_iter()
            .collect::<BTreeMap<_, _>>()
    });
    for (id, r) in current {
        let mut report = match r {
            Ok(r) => r,
            Err(e) => {
                result.failed.push((id.to_string(), e.to_string()));
                continue;
            }
        };
        if let Some(cand) = &candidate {
            let empty = PlanReport::default();
            let other = match cand.get(&id) {
                Some(Ok(r)) => r,
                Some(Err(e)) => {
                    result
                        .failed
                        .push((id.to_string(), format!("candidate policy: {e}")));
                    continue;
                }
                None => &empty,
            };
            let changes = diff(&report, other);
            let count = |f: fn(&PlanChange) -> bool| changes.iter().filter(|c| f(c)).count() as u64;
            result.changes.push(TenantPlanChanges {
                tenant: id.to_string(),
                added: count(|c| matches!(c, PlanChange::Added(_))),
                removed: count(|c| matches!(c, PlanChange::Removed(_))),
                changed: count(|c| matches!(c, PlanChange::Changed { .. })),
                cost_current: report.planned.iter().map(|m| m.cost).sum(),
                cost_candidate: other.planned.iter().map(|m| m.cost).sum(),
                changes: changes.into_iter().take(show).collect(),
            });
        }
        report.planned.truncate(show);
        report.dropped.truncate(show);
        report.cancelled.truncate(show);
        result.reports.push(report);
    }
    result
}

/// A report with at most `keep` entries per list.
fn shorten(mut r: PlanReport, keep: usize) -> PlanReport {
    if r.planned.len() > keep {
        r.planned.truncate(keep);
        r.planned.shrink_to_fit();
    }
    if r.dropped.len() > keep {
        r.dropped.truncate(keep);
        r.dropped.shrink_to_fit();
    }
    if r.cancelled.len() > keep {
        r.cancelled.truncate(keep);
        r.cancelled.shrink_to_fit();
    }
    r
}

/// Plans the given tenants (all with a policy when `None`) on a few threads.
/// Each report keeps at most `keep` entries per list (its counts stay
/// whole), cut as soon as its tenant is done: the lists of a plan for a
/// million customers would otherwise all be held at once.
pub fn plan_tenants(
    stores: &Stores,
    set: &PolicySet,
    tenants: Option<&[TenantId]>,
    today: Date,
    mode: Mode,
    learned: &Learned,
    keep: usize,
) -> Vec<(TenantId, Result<PlanReport, PlanError>)> {
    let ids: Vec<TenantId> = match tenants {
        Some(t) => t.to_vec(),
        None => set.tenants.keys().cloned().collect(),
    };
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(ids.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::with_capacity(ids.len()));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(id) = ids.get(i) else { break };
                let r = stores
                    .tenant(id)
                    .map_err(PlanError::from)
                    .and_then(|store| plan_tenant(&store, set, today, mode, learned))
                    .map(|r| shorten(r, keep));
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, id.clone(), r));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _, _)| *i);
    results.into_iter().map(|(_, id, r)| (id, r)).collect()
}

/// The planner's state shared by its daily schedule and the requests that
/// plan on demand: what is learned (lead times and send slots, refreshed
/// before every run) and what `status` shows about the schedule.
#[derive(Default)]
pub struct Planning {
    pub learning: Learning,
    pub schedule: ScheduleState,
}

/// What `status` shows about the schedule.
#[derive(Default)]
pub struct ScheduleState(std::sync::Mutex<PlanningStatus>);

impl ScheduleState {
    pub fn get(&self) -> PlanningStatus {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut PlanningStatus)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// Runs the daily plan on the brand's cron schedule until shutdown. A
/// policy change re-reads the schedule.
pub async fn run_schedule(
    stores: Arc<Stores>,
    policies: Arc<PolicyHandle>,
    planning: Arc<Planning>,
    shutdown: CancellationToken,
) {
    let state = &planning.schedule;
    let mut changes = policies.subscribe();
    loop {
        let current = policies.current();
        let expr = current.brand.planning.schedule.clone();
        let next = expr
            .parse::<cron::Schedule>()
            .ok()
            .and_then(|s| s.after(&touchpoint_common::clock::now_local()).next());
        let Some(next) = next else {
            tracing::warn!(schedule = %expr, "the planning schedule never fires");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = changes.changed() => continue,
            }
        };
        state.update(|s| {
            s.schedule = expr.clone();
            s.next_run = Some(Timestamp(next.timestamp_millis()));
        });
        // The clock runs at normal speed, so its distance is the sleep's.
        let wait = (next - touchpoint_common::clock::now_local())
            .to_std()
            .unwrap_or(Duration::ZERO);
        tracing::debug!(%next, "next scheduled plan");
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = changes.changed() => continue,
            _ = tokio::time::sleep(wait) => {}
        }
        let (stores, set, planning) = (stores.clone(), policies.current(), planning.clone());
        let started = Instant::now();
        let today = Date::from(next.date_naive());
        let results = tokio::task::spawn_blocking(move || {
            let learned = planning.learning.refresh(&stores, &set, today);
            plan_tenants(&stores, &set, None, today, Mode::Commit, &learned, 0)
        })
        .await;
        match results {
            Ok(results) => {
                let (mut planned, mut failed) = (0, 0);
                for (id, r) in &results {
                    match r {
                        Ok(r) => planned += r.planned_count,
                        Err(e) => {
                            failed += 1;
                            tracing::error!(tenant = %id, error = %e, "scheduled plan failed");
                        }
                    }
                }
                state.update(|s| {
                    s.last_run = Some(Timestamp::now());
                    s.last_planned = planned;
                    s.last_failed = failed;
                    s.last_millis = started.elapsed().as_millis() as u64;
                });
                tracing::info!(
                    tenants = results.len(),
                    planned,
                    millis = started.elapsed().as_millis() as u64,
                    "scheduled plan done"
                );
            }
            Err(e) => tracing::error!(error = %e, "scheduled plan panicked"),
        }
    }
}

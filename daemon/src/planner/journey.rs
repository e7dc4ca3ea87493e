//! Journey stages (M5): where each customer and each of their vehicles is
//! in their life with the brand, derived from the data and the brand's
//! `[journey]` thresholds, and kept in the tenant store with the
//! transitions between them.
//!
//! A vehicle is `ageing` from `ageing_years` on; below that, with a
//! warranty end on record, `post_warranty` from that day, `warranty_ending`
//! in the `warranty_ending_months` before it; otherwise `new` in its first
//! `new_months`, then `in_warranty` while a warranty end lies ahead. A
//! vehicle with neither a first registration nor a warranty end (or an
//! old one without a warranty end) has no stage.
//!
//! A customer is `new` while they hold a vehicle younger than
//! `new_months`, else `active`, `lapsing` or `lapsed` by the months since
//! the last workshop visit of any of their vehicles (never: `lapsed`).
//!
//! [`refresh`] runs after every import that changed data (through
//! [`Refresh`], the importer's `Journeys`) and in every planning run (time
//! passes: a stage changes without new data). It compares what it derives
//! with what is stored, in one ordered pass over both (recipients and the
//! `journeys` tree are both in customer-number order), and writes only the
//! records that changed. A change is recorded as a transition (from, to,
//! the day it was noticed), at most [`JourneyRecord::MAX_TRANSITIONS`] per
//! recipient; a `journey` service's occasion is the entry into its stage.

use std::sync::Arc;

use touchpoint_common::domain::{
    JourneyRecord, JourneyStage, JourneyTransition, Vehicle, VehicleJourney, VehicleStage,
};
use touchpoint_common::policy::Journey;
use touchpoint_common::Date;

use super::recipients::{self, Recipient};
use crate::policy::PolicyHandle;
use crate::store::{StoreError, TenantStore};

/// A vehicle's stage on `today`, if it can be told.
pub fn vehicle_stage(v: &Vehicle, j: &Journey, today: Date) -> Option<VehicleStage> {
    let reg = v.first_registration;
    if reg.is_some_and(|r| r.years_until(today) >= j.ageing_years as i32) {
        return Some(VehicleStage::Ageing);
    }
    if let Some(end) = v.warranty_end {
        if today >= end {
            return Some(VehicleStage::PostWarranty);
        }
        if end <= today.add_months(j.warranty_ending_months) {
            return Some(VehicleStage::WarrantyEnding);
        }
    }
    if reg.is_some_and(|r| r.months_until(today) < j.new_months as i32) {
        return Some(VehicleStage::New);
    }
    v.warranty_end.map(|_| VehicleStage::InWarranty)
}

/// The customer's stage on `today`.
pub fn customer_stage(r: &Recipient, j: &Journey, today: Date) -> JourneyStage {
    let newest = r
        .vehicles
        .iter()
        .filter_map(|v| v.vehicle.first_registration)
        .max();
    if newest.is_some_and(|d| d.months_until(today) < j.new_months as i32) {
        return JourneyStage::New;
    }
    match r.last_visit().map(|d| d.months_until(today)) {
        Some(m) if m < j.lapsing_after_months as i32 => JourneyStage::Active,
        Some(m) if m < j.lapsed_after_months as i32 => JourneyStage::Lapsing,
        _ => JourneyStage::Lapsed,
    }
}

/// The recipient's journey on `today`, with the transitions from `old`
/// (the record stored before) added.
pub fn derive(
    r: &Recipient,
    old: Option<&JourneyRecord>,
    j: &Journey,
    today: Date,
) -> JourneyRecord {
    let stage = customer_stage(r, j, today);
    let mut vehicles: Vec<VehicleJourney> = r
        .vehicles
        .iter()
        .map(|v| VehicleJourney {
            vin: v.vehicle.vin.clone(),
            stage: vehicle_stage(&v.vehicle, j, today),
        })
        .collect();
    vehicles.sort_by(|a, b| a.vin.cmp(&b.vin));
    vehicles.truncate(JourneyRecord::MAX_VEHICLES);
    let mut record = JourneyRecord {
        stage,
        changed_on: today,
        vehicles,
        transitions: old.map(|o| o.transitions.clone()).unwrap_or_default(),
    };
    let before = old.map(|o| o.stage);
    if before != Some(stage) {
        record.push(JourneyTransition::Customer {
            day: today,
            from: before,
            to: stage,
        });
    }
    for i in 0..record.vehicles.len() {
        let VehicleJourney { vin, stage } = record.vehicles[i].clone();
        let Some(to) = stage else { continue };
        let from = old.and_then(|o| o.vehicle(&vin));
        if from != Some(to) {
            record.push(JourneyTransition::Vehicle {
                day: today,
                vin,
                from,
                to,
            });
        }
    }
    record
}

/// What a refresh did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// Records written (new or changed).
    pub written: u64,
    /// Records removed (the customer merged into another, or gone).
    pub removed: u64,
}

/// Derives every recipient's journey on `today`, sets it on the recipient
/// and, when `write`, stores the records that changed. `recipients` must be
/// in customer-number order (as [`recipients::load`] returns them).
pub fn refresh(
    store: &TenantStore,
    recipients: &mut [Recipient],
    j: &Journey,
    today: Date,
    write: bool,
) -> Result<Refreshed, StoreError> {
    let mut stored = store.journeys().peekable();
    let mut changes: Vec<(String, Option<JourneyRecord>)> = Vec::new();
    let mut done = Refreshed::default();
    for r in recipients.iter_mut() {
        let no = r.customer.customer_no.as_str();
        let mut old = None;
        while let Some(next) = stored.peek() {
            match next {
                Ok((k, _)) if k.as_str() < no => {
                    if let Some(Ok((k, _))) = stored.next() {
                        changes.push((k, None));
                        done.removed += 1;
                    }
                }
                Ok((k, _)) if k == no => {
                    if let Some(Ok((_, rec))) = stored.next() {
                        old = Some(rec);
                    }
                    break;
                }
                Ok(_) => break,
                Err(_) => {
                    if let Some(Err(e)) = stored.next() {
                        return Err(e);
                    }
                }
            }
        }
        settle(r, old, j, today, &mut changes, &mut done);
    }
    for rest in stored {
        let (k, _) = rest?;
        changes.push((k, None));
        done.removed += 1;
    }
    if write {
        store.write_journeys(&changes)?;
    }
    Ok(done)
}

/// Derives the recipient's journey from its stored one `old` and sets it
/// on the recipient; when it changed, notes the record to write.
fn settle(
    r: &mut Recipient,
    old: Option<JourneyRecord>,
    j: &Journey,
    today: Date,
    changes: &mut Vec<(String, Option<JourneyRecord>)>,
    done: &mut Refreshed,
) {
    let new = derive(r, old.as_ref(), j, today);
    // Nothing changed: the stored record stands, its day included.
    let same = old.as_ref().is_some_and(|o| {
        o.stage == new.stage && o.vehicles == new.vehicles && o.transitions == new.transitions
    });
    let new = match (same, old) {
        (true, Some(o)) => o,
        _ => new,
    };
    if !same {
        changes.push((r.customer.customer_no.clone(), Some(new.clone())));
        done.written += 1;
    }
    r.journey = Some(new);
}

/// Derives again the journeys of the recipients `numbers` belong to (see
/// [`recipients::load_some`]) and removes the stored ones of those that
/// are no recipient: what [`refresh`] would change when only `numbers`
/// changed since every journey was derived on `today`.
pub fn refresh_some(
    store: &TenantStore,
    numbers: &std::collections::BTreeSet<String>,
    j: &Journey,
    today: Date,
) -> Result<Refreshed, StoreError> {
    let (mut recipients, gone) = recipients::load_some(store, numbers)?;
    refresh_loaded(store, &mut recipients, &gone, j, today, true)
}

/// Derives the journeys of `recipients` (as [`recipients::load_some`]
/// loads them), sets them on the recipients and, when `write`, stores the
/// records that changed and removes the stored ones of `gone` (numbers
/// that are no recipient): what [`refresh`] does for them.
pub fn refresh_loaded(
    store: &TenantStore,
    recipients: &mut [Recipient],
    gone: &[String],
    j: &Journey,
    today: Date,
    write: bool,
) -> Result<Refreshed, StoreError> {
    let mut changes: Vec<(String, Option<JourneyRecord>)> = Vec::new();
    let mut done = Refreshed::default();
    for no in gone {
        if store.journey(no)?.is_some() {
            changes.push((no.clone(), None));
            done.removed += 1;
        }
    }
    for r in recipients.iter_mut() {
        let old = store.journey(&r.customer.customer_no)?;
        settle(r, old, j, today, &mut changes, &mut done);
    }
    if write {
        store.write_journeys(&changes)?;
    }
    Ok(done)
}

/// The refresh after an import (the importer's `Journeys`): stores the
/// journeys as of today, under the planning lock (a planning run writes
/// them too). Only the recipients whose data changed since every journey
/// was last derived today under this policy, when the store knows them
/// (`TenantStore::journeys_pending`); else every recipient's.
pub struct Refresh {
    pub policies: Arc<PolicyHandle>,
}

impl crate::import::Journeys for Refresh {
    fn refresh(&self, store: &TenantStore) -> Result<(), StoreError> {
        let set = self.policies.current();
        let _planning = store.plan_lock();
        let today = Date::today();
        let j = &set.brand.journey;
        if let Some((version, touched)) = store.journeys_pending(today, set.fingerprint)? {
            let done = refresh_some(store, &touched, j, today)?;
            store.journeys_derived(today, set.fingerprint, version, false);
            tracing::debug!(tenant = %store.id(), customers = touched.len(), written = done.written, removed = done.removed, "journeys of the changed customers refreshed");
            return Ok(());
        }
        let version = store.data_version()?;
        let mut recipients = recipients::load(store)?;
        let done = refresh(store, &mut recipients, j, today, true)?;
        store.journeys_derived(today, set.fingerprint, version, true);
        tracing::debug!(tenant = %store.id(), written = done.written, removed = done.removed, "journeys refreshed");
        Ok(())
    }
}

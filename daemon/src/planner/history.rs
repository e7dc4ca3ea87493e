//! Which occasion a send of an imported send history covered
//! (`crate::import::history`): the occasion this planner would have sent
//! it for on its day, found by the planner's own rules on the data stored
//! now, so that its key is the key a planning run makes and the occasion
//! is not planned again.

use std::collections::HashMap;
use std::sync::Arc;

use touchpoint_common::consent::survivor;
use touchpoint_common::outbox::Occasion;

use super::occasions::{self, Window};
use super::recipients;
use crate::import::history::Occasions;
use crate::import::parse::Sent;
use crate::policy::PolicyHandle;
use crate::store::{StoreError, TenantStore};

/// How far after a send its occasion may fall due besides the service's
/// lead time: the previous system's lead times are not ours, and a
/// reminder sent three months early still reminded of that occasion.
pub const HISTORY_SLACK_DAYS: u32 = 90;

/// [`Occasions`] by the planner's rules, under the policy in force.
pub struct Covered {
    pub policies: Arc<PolicyHandle>,
}

impl Occasions for Covered {
    fn covered(
        &self,
        store: &TenantStore,
        sends: &[&Sent],
    ) -> Result<Vec<Option<Occasion>>, StoreError> {
        if sends.is_empty() {
            return Ok(Vec::new());
        }
        let set = self.policies.current();
        let brand = &set.brand;
        let merges = store.merge_map()?;
        let recipients = recipients::load(store)?;
        let index: HashMap<&str, usize> = recipients
            .iter()
            .enumerate()
            .map(|(i, r)| (r.customer.customer_no.as_str(), i))
            .collect();
        let mut out = Vec::with_capacity(sends.len());
        let mut found = Vec::new();
        for s in sends {
            let (Some(service), Some(&i)) = (
                brand.services.get(&s.service),
                index.get(survivor(&merges, &s.customer_no)),
            ) else {
                out.push(None);
                continue;
            };
            let window = Window {
                today: s.date,
                horizon_days: brand.planning.horizon_days.max(HISTORY_SLACK_DAYS),
            };
            found.clear();
            // The occasion as it stood on the send's day: a reminder that was
            // answered has its answer stored as the vehicle's last service,
            // which moves the occasion a year on (out of reach, and the send
            // would lose its due date and lead).
            let as_of = as_of_day(store, &recipients[i], s.date)?;
            occasions::find(
                as_of.as_ref().unwrap_or(&recipients[i]),
                &s.service,
                service,
                service.lead_days,
                brand,
                &window,
                &mut found,
            );
            // The send's vehicle when it names one; else the first due.
            found.sort_by_key(|o| o.due);
            let pick = found
                .iter()
                .find(|o| s.vin.is_empty() || o.vin.as_deref() == Some(s.vin.as_str()))
                .cloned();
            out.push(pick);
        }
        Ok(out)
    }
}

/// `r` as it stood on `day` when a vehicle's stored last service is on or
/// after it: that vehicle's last service (and its reading) is its latest
/// service visit before `day` (when the stored visits have one), and its
/// mileage rate is read from the visits before `day` only; an inspection
/// visit on or after `day` did not answer it yet. `None` when no vehicle of
/// `r` was serviced or inspected since `day`.
fn as_of_day(
    store: &TenantStore,
    r: &recipients::Recipient,
    day: touchpoint_common::Date,
) -> Result<Option<recipients::Recipient>, StoreError> {
    let moved = |v: &recipients::VehicleView| {
        v.vehicle.last_service_date.is_some_and(|d| d >= day)
            || v.inspected.is_some_and(|d| d >= day)
    };
    if !r.vehicles.iter().any(moved) {
        return Ok(None);
    }
    let mut then = r.clone();
    for v in &mut then.vehicles {
        if !moved(v) {
            continue;
        }
        let before: Vec<_> = store
            .visits_of(&v.vehicle.vin)?
            .into_iter()
            .filter(|x| x.date < day)
            .collect();
        // The vehicle as its export says, and what its visits before the
        // day did to it. An export that records a service on or after the
        // day cannot say what was due then: the latest service visit
        // before the day can; without one, the export's date is left.
        let mut vehicle = v.vehicle.clone();
        (vehicle.last_service_date, vehicle.last_service_km) = v.exported_service;
        let export_after = vehicle.last_service_date.is_some_and(|d| d >= day);
        if export_after {
            vehicle.last_service_date = None;
            vehicle.last_service_km = None;
        }
        let mut done = recipients::Done::default();
        for x in &before {
            done.note(&vehicle, x.date, x.km, &x.kind);
        }
        if export_after && done.service.is_none() {
            (vehicle.last_service_date, vehicle.last_service_km) = v.exported_service;
        }
        let readings: Vec<(touchpoint_common::Date, Option<u32>)> =
            before.iter().map(|x| (x.date, x.km)).collect();
        *v = recipients::vehicle_view_done(vehicle, &readings, done);
    }
    Ok(Some(then))
}

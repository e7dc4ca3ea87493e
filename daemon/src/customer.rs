//! Read model for the console: one stored customer whole
//! (`touchpoint customer`): identity, merges, vehicles with their journey
//! stages and visits, consents with their sources, responses, the journey
//! with its transitions, and the messages. Every list is cut at
//! [`CustomerDetail::MAX_ITEMS`] and says how many more there were, so an
//! answer stays far below the frame limit whatever the customer holds.
//!
//! A number merged into another shows the survivor (the recipient the
//! planner sees), with the number asked for named.

use touchpoint_common::domain::{Customer, ServiceVisit};
use touchpoint_common::protocol::{CustomerDetail, CustomerMessage, CustomerVehicle};
use touchpoint_common::TenantId;

use crate::store::{StoreError, TenantStore};

const MAX: usize = CustomerDetail::MAX_ITEMS;

/// Keeps the first `MAX` of `v`, returning how many were cut.
fn cap<T>(v: &mut Vec<T>) -> u64 {
    let more = v.len().saturating_sub(MAX) as u64;
    v.truncate(MAX);
    more
}

/// The person a customer number stands for: the survivor of its merges
/// (the record shown) and every number that is that person, the
/// survivor's first; `None` when the number is not stored.
pub fn person(
    store: &TenantStore,
    no: &str,
) -> Result<Option<(Customer, Vec<String>)>, StoreError> {
    let Some(asked) = store.customer(no)? else {
        return Ok(None);
    };
    let merge_map = store.merge_map()?;
    let survivor = touchpoint_common::consent::survivor(&merge_map, no).to_string();
    let customer = if survivor == asked.customer_no {
        asked
    } else {
        match store.customer(&survivor)? {
            Some(c) => c,
            None => asked,
        }
    };
    let me = customer.customer_no.clone();
    let mut numbers = vec![me.clone()];
    let mut absorbed: Vec<&String> = merge_map
        .keys()
        .filter(|k| touchpoint_common::consent::survivor(&merge_map, k) == me)
        .collect();
    absorbed.sort();
    numbers.extend(absorbed.into_iter().cloned());
    Ok(Some((customer, numbers)))
}

/// The customer `no` of `tenant`, or `None` when the tenant has no such
/// customer number.
pub fn detail(
    store: &TenantStore,
    tenant: &TenantId,
    no: &str,
) -> Result<Option<CustomerDetail>, StoreError> {
    let Some((customer, numbers)) = person(store, no)? else {
        return Ok(None);
    };
    let me = customer.customer_no.clone();

    let mut merges: Vec<_> = store
        .merges(true)?
        .into_iter()
        .filter(|m| numbers.contains(&m.survivor) || numbers.contains(&m.merged))
        .collect();
    let merges_more = cap(&mut merges);

    let journey = store.journey(&me)?;
    let mut vehicles = Vec::new();
    let mut consents = Vec::new();
    let mut responses = Vec::new();
    let mut ids = Vec::new();
    for n in &numbers {
        for v in store.vehicles_of(n)? {
            let mut visits: Vec<ServiceVisit> = store.visits_of(&v.vin)?;
            visits.reverse();
            let visits_more = cap(&mut visits);
            vehicles.push(CustomerVehicle {
                stage: journey.as_ref().and_then(|j| j.vehicle(&v.vin)),
                vehicle: v,
                visits,
                visits_more,
            });
        }
        consents.extend(store.consents_of(n)?);
        responses.extend(store.responses_of(n)?);
        ids.extend(store.with_index(|ix| ix.of_recipient(n))?);
    }
    vehicles.sort_by(|a, b| a.vehicle.vin.cmp(&b.vehicle.vin));
    let vehicles_more = cap(&mut vehicles);
    let consents_more = cap(&mut consents);
    responses.sort_by_key(|r| std::cmp::Reverse(r.date));
    let responses_more = cap(&mut responses);
    ids.sort_unstable_by_key(|id| std::cmp::Reverse(*id));
    let messages_more = ids.len().saturating_sub(MAX) as u64;
    ids.truncate(MAX);
    let mut messages = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(m) = store.message(id)? {
            messages.push(CustomerMessage {
                id: m.id,
                service: m.service,
                channel: m.channel,
                status: m.status,
                send_on: m.send_on,
            });
        }
    }
    Ok(Some(CustomerDetail {
        tenant: tenant.clone(),
        asked_for: (no != me).then(|| no.to_string()),
        customer,
        merges,
        merges_more,
        vehicles,
        vehicles_more,
        consents,
        consents_more,
        responses,
        responses_more,
        journey,
        messages,
        messages_more,
        objection: numbers
            .iter()
            .find_map(|n| store.objection(n).transpose())
            .transpose()?,
    }))
}

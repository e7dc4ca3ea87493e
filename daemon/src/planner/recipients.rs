//! The planner's view of a tenant: one [`Recipient`] per customer that is not
//! merged into another, with the vehicles, consents and visits of everyone
//! merged into them. Built with one ordered scan of each tree.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use touchpoint_common::domain::{Channel, Consent, Customer, JourneyRecord, ServiceVisit, Vehicle};
use touchpoint_common::report::ResponseKind;
use touchpoint_common::Date;

use crate::store::{StoreError, TenantStore};

/// A vehicle with what its visits tell about it.
#[derive(Clone, Debug)]
pub struct VehicleView {
    pub vehicle: Vehicle,
    /// Average km per day from the vehicle's own history, and how it was found.
    pub km_per_day: Option<(f64, String)>,
    /// Latest known mileage: (date, km).
    pub last_km: Option<(Date, u32)>,
    pub last_visit: Option<Date>,
    /// The latest inspection (HU) visit on record, if it may answer the
    /// vehicle's inspection ([`Done`]).
    pub inspected: Option<Date>,
    /// The last service as the vehicle export records it, before any
    /// visit moved it ([`Done::apply`]): what the data said on an earlier
    /// day starts from it (`history`).
    pub exported_service: (Option<Date>, Option<u32>),
}

#[derive(Clone, Debug)]
pub struct Recipient {
    pub customer: Customer,
    /// Customer numbers merged into this one by identity.
    pub merged: Vec<String>,
    pub vehicles: Vec<VehicleView>,
    /// The statement that stands per channel (index [`Channel::index`])
    /// across the customer and everyone merged into them
    /// ([`super::consent`]).
    pub consents: [Option<Consent>; 3],
    /// The journey as derived by this run ([`super::journey::refresh`]);
    /// `None` until then.
    pub journey: Option<JourneyRecord>,
    /// The customer (or one merged into them) objected to advertising
    /// (Art. 21, `touchpoint object`): nothing is planned for them.
    pub objected: bool,
}

impl Recipient {
    pub fn new(customer: Customer) -> Self {
        Self {
            customer,
            merged: Vec::new(),
            vehicles: Vec::new(),
            consents: [None, None, None],
            journey: None,
            objected: false,
        }
    }

    pub fn consent(&self, c: Channel) -> Option<&Consent> {
        self.consents[c.index()].as_ref()
    }

    pub fn last_visit(&self) -> Option<Date> {
        self.vehicles.iter().filter_map(|v| v.last_visit).max()
    }

    /// Takes a statement of the customer or of a number merged into them;
    /// the one that stands is kept ([`super::consent::prevails`]).
    pub fn add_consent(&mut self, c: Consent) {
        let slot = &mut self.consents[c.channel.index()];
        if slot
            .as_ref()
            .is_none_or(|old| super::consent::prevails(&c, old))
        {
            *slot = Some(c);
        }
    }
}

/// Builds a vehicle view from its service visits (any order).
pub fn vehicle_view(vehicle: Vehicle, visits: &[(Date, Option<u32>)]) -> VehicleView {
    let vehicle_service = (vehicle.last_service_date, vehicle.last_service_km);
    // The first and last mileage reading, by (date, km); no list needed.
    let serviced = match (vehicle.last_service_date, vehicle.last_service_km) {
        (Some(d), Some(k)) => Some((d, k)),
        _ => None,
    };
    let mut first: Option<(Date, u32)> = None;
    let mut last: Option<(Date, u32)> = None;
    for p in visits
        .iter()
        .filter_map(|(d, km)| km.map(|k| (*d, k)))
        .chain(serviced)
    {
        first = Some(first.map_or(p, |f| f.min(p)));
        last = Some(last.map_or(p, |l| l.max(p)));
    }
    let last_visit = visits
        .iter()
        .map(|(d, _)| *d)
        .chain(vehicle.last_service_date)
        .max();
    let last_km = last;
    let km_per_day = match (first, last) {
        (Some((d0, k0)), Some((d1, k1))) if d1.days() - d0.days() >= 30 && k1 >= k0 => {
            let days = d1.days() - d0.days();
            Some((
                f64::from(k1 - k0) / f64::from(days),
                format!(
                    "{:.0} km/day from {k0} km on {d0} to {k1} km on {d1}",
                    f64::from(k1 - k0) / f64::from(days)
                ),
            ))
        }
        _ => None,
    };
    VehicleView {
        vehicle,
        km_per_day,
        last_km,
        last_visit,
        inspected: None,
        exported_service: (vehicle_service.0, vehicle_service.1),
    }
}

/// How long before a recorded inspection date an inspection visit may be
/// that inspection done early: half the usual 24 months. An older one is
/// the previous inspection.
pub const INSPECTION_EARLY_DAYS: i32 = 365;

/// What a vehicle's stored visits say was done after the dates its own
/// export records: a dealer's vehicle export may lag behind the workshop,
/// or never carry the dates at all, while the visits export tells. A
/// reminder for work already done is the reminder a customer minds most.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Done {
    /// The latest service visit after the recorded last service.
    pub service: Option<(Date, Option<u32>)>,
    /// The latest inspection visit that may answer the recorded (or
    /// computed) inspection.
    pub inspection: Option<Date>,
}

impl Done {
    /// Takes one of the vehicle's visits into account. Only a visit newer
    /// than what the vehicle records is classified (most are older).
    pub fn note(&mut self, vehicle: &Vehicle, date: Date, km: Option<u32>, kind: &str) {
        // A visit dated ahead (a booked appointment, a mistyped year) has
        // not happened: it does no work.
        if date > Date::today() {
            return;
        }
        let after_service = vehicle.last_service_date.is_none_or(|d| date > d);
        let near_inspection = vehicle
            .next_inspection
            .is_none_or(|n| date > n.add_days(-INSPECTION_EARLY_DAYS));
        if !after_service && !near_inspection {
            return;
        }
        match crate::attribution::visit_kind(kind) {
            Some(ResponseKind::ServiceVisit)
                if after_service && self.service.is_none_or(|(d, _)| date > d) =>
            {
                self.service = Some((date, km));
            }
            Some(ResponseKind::InspectionVisit)
                if near_inspection && self.inspection.is_none_or(|d| date > d) =>
            {
                self.inspection = Some(date);
            }
            _ => {}
        }
    }

    /// The vehicle as its visits leave it: a later service visit is its
    /// last service (with that visit's reading, or none).
    pub fn apply(self, mut vehicle: Vehicle) -> Vehicle {
        if let Some((date, km)) = self.service {
            vehicle.last_service_date = Some(date);
            vehicle.last_service_km = km;
        }
        vehicle
    }

    /// Notes every visit of `visits` for `vehicle`.
    pub fn of(vehicle: &Vehicle, visits: &[ServiceVisit]) -> Self {
        let mut done = Self::default();
        for x in visits {
            done.note(vehicle, x.date, x.km, &x.kind);
        }
        done
    }
}

/// [`vehicle_view`] of the vehicle as its visits leave it ([`Done`]).
pub fn vehicle_view_done(
    vehicle: Vehicle,
    visits: &[(Date, Option<u32>)],
    done: Done,
) -> VehicleView {
    let exported = (vehicle.last_service_date, vehicle.last_service_km);
    let mut view = vehicle_view(done.apply(vehicle), visits);
    view.inspected = done.inspection;
    view.exported_service = exported;
    view
}

pub(super) use touchpoint_common::consent::survivor;

/// Loads every recipient of a tenant, in customer-number order.
pub fn load(store: &TenantStore) -> Result<Vec<Recipient>, StoreError> {
    let merged_into = store.merge_map()?;
    let mut recipients = Vec::new();
    let mut absorbed = Vec::new();
    for c in store.customers() {
        let c = c?;
        if merged_into.contains_key(&c.customer_no) {
            absorbed.push(c.customer_no);
            continue;
        }
        recipients.push(Recipient::new(c));
    }

    // What belongs to whom is found first, through an index that borrows
    // the customer numbers, and handed out after.
    let mut vehicles = Vec::new();
    let mut consents = Vec::new();
    let mut merged = Vec::new();
    {
        let index: HashMap<&str, usize> = recipients
            .iter()
            .enumerate()
            .map(|(i, r)| (r.customer.customer_no.as_str(), i))
            .collect();
        let slot = |no: &str| index.get(survivor(&merged_into, no)).copied();
        for no in absorbed {
            if let Some(i) = slot(&no) {
                merged.push((i, no));
            }
        }

        // Visits are keyed by VIN, as are vehicles: both scans are in VIN order.
        let mut visits = store.visits().peekable();
        let mut buf: Vec<(Date, Option<u32>)> = Vec::new();
        for v in store.vehicles() {
            let v = v?;
            buf.clear();
            let mut done = Done::default();
            while let Some(next) = visits.peek() {
                match next {
                    Ok(visit) if visit.vin.as_str() < v.vin.as_str() => {
                        visits.next();
                    }
                    Ok(visit) if visit.vin == v.vin => {
                        buf.push((visit.date, visit.km));
                        done.note(&v, visit.date, visit.km, &visit.kind);
                        visits.next();
                    }
                    Ok(_) => break,
                    Err(_) => {
                        if let Some(Err(e)) = visits.next() {
                            return Err(e);
                        }
                    }
                }
            }
            if let Some(i) = slot(&v.customer_no) {
                vehicles.push((i, vehicle_view_done(v, &buf, done)));
            }
        }
        for c in store.consents() {
            let c = c?;
            if let Some(i) = slot(&c.customer_no) {
                consents.push((i, c));
            }
        }
    }
    for (i, no) in merged {
        recipients[i].merged.push(no);
    }
    for (i, v) in vehicles {
        recipients[i].vehicles.push(v);
    }
    for (i, c) in consents {
        recipients[i].add_consent(c);
    }
    let objections = store.objections()?;
    if !objections.is_empty() {
        for r in &mut recipients {
            r.objected = objections.contains(&r.customer.customer_no)
                || r.merged.iter().any(|no| objections.contains(no));
        }
    }
    Ok(recipients)
}

/// The recipients that `numbers` belong to (each number's survivor, when
/// that is a stored customer merged into no one), in customer-number
/// order, each as [`load`] builds it; with the numbers of `numbers` that
/// are no recipient (merged into another, or not a customer). Reads only
/// those recipients' records (and the merges and objections).
pub fn load_some(
    store: &TenantStore,
    numbers: &BTreeSet<String>,
) -> Result<(Vec<Recipient>, Vec<String>), StoreError> {
    let merged_into = store.merge_map()?;
    let mut gone = Vec::new();
    let mut roots: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for no in numbers {
        let root = survivor(&merged_into, no);
        if root != no.as_str() {
            gone.push(no.clone());
        }
        roots.entry(root.to_string()).or_default();
    }
    for m in merged_into.keys() {
        if let Some(members) = roots.get_mut(survivor(&merged_into, m)) {
            members.push(m.clone());
        }
    }
    let objections = store.objections()?;
    let mut out = Vec::new();
    for (root, mut members) in roots {
        // A survivor merged on into a chain longer than `survivor`
        // follows is no recipient either.
        let customer = match store.customer(&root)? {
            Some(c) if !merged_into.contains_key(&root) => c,
            _ => {
                if numbers.contains(&root) && !gone.contains(&root) {
                    gone.push(root);
                }
                continue;
            }
        };
        members.sort();
        let mut r = Recipient::new(customer);
        let mut vehicles = Vec::new();
        for no in std::iter::once(&root).chain(&members) {
            vehicles.extend(store.vehicles_of(no)?);
            for c in store.consents_of(no)? {
                r.add_consent(c);
            }
        }
        vehicles.sort_by(|a, b| a.vin.cmp(&b.vin));
        let mut buf: Vec<(Date, Option<u32>)> = Vec::new();
        for v in vehicles {
            buf.clear();
            let mut done = Done::default();
            for visit in store.visits_of(&v.vin)? {
                // Visits are keyed by VIN first: a longer VIN with this one
                // as its prefix is another vehicle's.
                if visit.vin != v.vin {
                    continue;
                }
                buf.push((visit.date, visit.km));
                done.note(&v, visit.date, visit.km, &visit.kind);
            }
            r.vehicles.push(vehicle_view_done(v, &buf, done));
        }
        r.objected = objections.contains(&root) || members.iter().any(|no| objections.contains(no));
        r.merged = members;
        out.push(r);
    }
    gone.sort();
    gone.dedup();
    Ok((out, gone))
}

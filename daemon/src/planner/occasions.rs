//! Occasions (M5): every reason to contact a recipient that falls into the
//! planning horizon, each with the date it happens and how that was found.

use touchpoint_common::domain::Channel;
use touchpoint_common::outbox::Occasion;
use touchpoint_common::policy::{
    BrandPolicy, ConsentRule, Journey, JourneyStage, OccasionKind, Segment, Service,
};
use touchpoint_common::Date;

use super::recipients::{Recipient, VehicleView};

/// A service-due date may lie this far in the past and still be reminded
/// (as due today): the mileage projection often says "already due".
pub const OVERDUE_GRACE_DAYS: i32 = 90;

/// What the planner needs to know about a service besides the policy: the
/// lead time in force (the policy's, or one learned from responses).
pub struct Window {
    pub today: Date,
    pub horizon_days: u32,
}

impl Window {
    /// Whether an occasion due on `due` with `lead` days of lead time is
    /// planned now: its send date is within the horizon.
    pub fn takes(&self, due: Date, lead: u32) -> bool {
        due >= self.today
            && due.add_days(-(lead as i32)) <= self.today.add_days(self.horizon_days as i32)
    }
}

/// Finds the occasions of one service for one recipient.
pub fn find(
    r: &Recipient,
    id: &str,
    s: &Service,
    lead: u32,
    brand: &BrandPolicy,
    w: &Window,
    out: &mut Vec<Occasion>,
) {
    let occasion = |key: String, vin: Option<&str>, due: Date, reason: String| Occasion {
        key,
        service: id.to_string(),
        kind: s.occasion,
        vin: vin.map(str::to_string),
        due,
        reason,
        value: s.value.cents(),
    };
    match s.occasion {
        OccasionKind::ServiceDue => {
            for v in &r.vehicles {
                if let Some((due, anchor, reason)) = service_due(v, s, brand, w.today) {
                    if w.takes(due, lead) {
                        let key = format!("{id}:{}:{anchor}", v.vehicle.vin);
                        out.push(occasion(key, Some(&v.vehicle.vin), due, reason));
                    }
                }
            }
        }
        OccasionKind::InspectionDue => {
            for v in &r.vehicles {
                if let Some((due, reason)) = inspection_due(v, s, w.today) {
                    if w.takes(due, lead) {
                        let key = format!("{id}:{}:{due}", v.vehicle.vin);
                        out.push(occasion(key, Some(&v.vehicle.vin), due, reason));
                    }
                }
            }
        }
        OccasionKind::WarrantyEnd => {
            for v in &r.vehicles {
                if let Some(end) = v.vehicle.warranty_end {
                    if w.takes(end, lead) {
                        let key = format!("{id}:{}:{end}", v.vehicle.vin);
                        let reason = format!("warranty ends on {end}");
                        out.push(occasion(key, Some(&v.vehicle.vin), end, reason));
                    }
                }
            }
        }
        OccasionKind::Birthday => {
            if r.customer.is_company {
                return;
            }
            if let Some(born) = r.customer.birth_date {
                let due = next_birthday(born, w.today);
                if w.takes(due, lead) {
                    let key = format!("{id}:{}:{}", r.customer.customer_no, due.year());
                    let reason = if (born.month(), born.day()) == (2, 29) && due.day() == 28 {
                        format!("born {born}; celebrated on 28 February in a common year")
                    } else {
                        format!("born {born}")
                    };
                    out.push(occasion(key, None, due, reason));
                }
            }
        }
        OccasionKind::Campaign => {
            let (Some(from), Some(to), Some(seg)) = (s.from, s.to, s.segment.as_ref()) else {
                return;
            };
            let (from, to) = (from.0, to.0);
            if to < w.today {
                return;
            }
            let due = from.max(w.today);
            if !w.takes(due, lead) {
                return;
            }
            if let Some((vin, reason)) = segment_match(r, seg, brand, w.today) {
                // Once per campaign run: the same campaign next season
                // (a new `from`) reaches everyone again.
                let key = format!("{id}:{}:{from}", r.customer.customer_no);
                let reason = if reason.is_empty() {
                    format!("campaign {from} to {to}")
                } else {
                    format!("campaign {from} to {to}; {reason}")
                };
                out.push(occasion(key, vin.as_deref(), due, reason));
            }
        }
    }
}

/// Due date of the next service: time since the last service or mileage
/// projected from the vehicle's km per day, whichever comes first. Returns
/// (due, cycle anchor, reason).
pub fn service_due(
    v: &VehicleView,
    s: &Service,
    brand: &BrandPolicy,
    today: Date,
) -> Option<(Date, Date, String)> {
    let months = s.interval_months?;
    let veh = &v.vehicle;
    let (base, base_what) = match (veh.last_service_date, veh.first_registration) {
        (Some(d), _) => (d, format!("the service on {d}")),
        (None, Some(d)) => (d, format!("first registration on {d}")),
        (None, None) => return None,
    };
    let by_time = base.add_months(months);
    let mut due = by_time;
    let mut reason = format!("{months} months after {base_what}");
    if let Some(interval) = s.interval_km {
        let (kmpd, how) = match &v.km_per_day {
            Some((k, how)) => (*k, how.clone()),
            None => (
                f64::from(brand.planning.default_km_per_day),
                format!(
                    "brand default of {} km/day (no mileage history)",
                    brand.planning.default_km_per_day
                ),
            ),
        };
        // The next service is due at the last service's mileage plus the
        // interval. A service on record without its mileage still starts a
        // new interval, counted from the service day; with no service on
        // record, the odometer counts from 0 km at first registration.
        let (target, (ref_day, ref_km), what) = match (veh.last_service_km, veh.last_service_date) {
            (None, Some(d)) => (
                interval,
                (d, 0),
                format!("{interval} km after the service on {d}"),
            ),
            (km, _) => {
                let target = km.unwrap_or(0).saturating_add(interval);
                let from = v
                    .last_km
                    .or_else(|| veh.first_registration.map(|d| (d, 0)))
                    .unwrap_or((base, 0));
                (target, from, format!("{target} km"))
            }
        };
        if kmpd > 0.0 {
            let days = (f64::from(target.saturating_sub(ref_km)) / kmpd).ceil() as i32;
            let by_km = ref_day.add_days(days);
            // A projection long past while the time limit is still ahead
            // is a stale mileage, not a lost customer: the time limit holds.
            let stale = by_km < today.add_days(-OVERDUE_GRACE_DAYS)
                && by_time >= today.add_days(-OVERDUE_GRACE_DAYS);
            if by_km < by_time && !stale {
                due = by_km;
                reason = format!("{what} projected on {by_km} at {how}");
            }
        }
    }
    if due < today {
        if due < today.add_days(-OVERDUE_GRACE_DAYS) {
            return None;
        }
        reason = format!("{reason}; overdue, reminded as due today");
        due = today;
    }
    Some((due, base, reason))
}

/// Next statutory inspection on or after today.
pub fn inspection_due(v: &VehicleView, s: &Service, today: Date) -> Option<(Date, String)> {
    let veh = &v.vehicle;
    if let Some(d) = veh.next_inspection {
        // A recorded date just passed is an overdue inspection, reminded as
        // due today; long past, the record is stale and nothing is said.
        return if d >= today {
            Some((d, format!("next inspection recorded for {d}")))
        } else if d >= today.add_days(-OVERDUE_GRACE_DAYS) {
            Some((today, format!("next inspection recorded for {d}; overdue, reminded as due today")))
        } else {
            None
        };
    }
    let reg = veh.first_registration?;
    let first = s.first_after_months?;
    let every = s.every_months?.max(1);
    let mut n = 0u32;
    let mut due = reg.add_months(first);
    // Count from registration each time so day clamping never accumulates
    // (registered on the 31st: due on the last day of each due month).
    while due < today {
        n += 1;
        due = reg.add_months(first + n * every);
    }
    let what = if n == 0 {
        format!("first inspection {first} months after registration on {reg}")
    } else {
        format!(
            "{first} + {n}×{every} months after registration on {reg} (no inspection date recorded)"
        )
    };
    Some((due, what))
}

/// The next birthday on or after today; born on 29 February, it is the
/// 28th in common years.
pub fn next_birthday(born: Date, today: Date) -> Date {
    let on = |year: i32| {
        Date::from_ymd(year, born.month(), born.day())
            .or_else(|| Date::from_ymd(year, 2, 28))
            .unwrap_or(today)
    };
    let this_year = on(today.year());
    if this_year >= today {
        this_year
    } else {
        on(today.year() + 1)
    }
}

pub fn journey_stage(r: &Recipient, j: &Journey, today: Date) -> JourneyStage {
    let newest = r
        .vehicles
        .iter()
        .filter_map(|v| v.vehicle.first_registration)
        .max();
    if newest.is_some_and(|d| d.months_until(today) < j.new_months as i32) {
        return JourneyStage::New;
    }
    match r.last_visit().map(|d| d.months_until(today)) {
        Some(m) if m < j.lapsing_after_months as i32 => JourneyStage::Loyal,
        Some(m) if m < j.lost_after_months as i32 => JourneyStage::Lapsing,
        _ => JourneyStage::Lost,
    }
}

/// Whether a recipient is in a campaign's segment: the vehicle it matched
/// on (if the segment looks at vehicles) and a description of the match.
pub fn segment_match(
    r: &Recipient,
    seg: &Segment,
    brand: &BrandPolicy,
    today: Date,
) -> Option<(Option<String>, String)> {
    let mut why = Vec::new();
    if !seg.postcode_prefixes.is_empty() {
        let pc = &r.customer.address.postcode;
        let p = seg
            .postcode_prefixes
            .iter()
            .find(|p| pc.starts_with(p.as_str()))?;
        why.push(format!("postcode {pc} starts with {p}"));
    }
    if let Some(range) = seg.days_since_last_visit {
        let days = r
            .last_visit()
            .map(|d| (today.days() - d.days()).max(0) as u32)
            .unwrap_or(u32::MAX);
        if !range.contains(days) {
            return None;
        }
        why.push(match r.last_visit() {
            Some(d) => format!("last visit {d}"),
            None => "never visited".into(),
        });
    }
    for &c in &seg.consent {
        if !has_consent(r, c, brand) {
            return None;
        }
    }
    if !seg.consent.is_empty() {
        let names: Vec<&str> = seg.consent.iter().map(|c| c.as_str()).collect();
        why.push(format!("consent to {}", names.join(", ")));
    }
    if !seg.journey_stages.is_empty() {
        let stage = journey_stage(r, &brand.journey, today);
        if !seg.journey_stages.contains(&stage) {
            return None;
        }
        why.push(format!("journey stage {stage:?}").to_lowercase());
    }
    let looks_at_vehicles = !seg.models.is_empty() || seg.vehicle_age_years.is_some();
    if !looks_at_vehicles {
        return Some((None, why.join(", ")));
    }
    let v = r.vehicles.iter().find(|v| {
        let model_ok = seg.models.is_empty()
            || seg
                .models
                .iter()
                .any(|m| m.eq_ignore_ascii_case(&v.vehicle.model));
        let age_ok = seg.vehicle_age_years.is_none_or(|range| {
            v.vehicle
                .first_registration
                .is_some_and(|reg| range.contains(reg.years_until(today).max(0) as u32))
        });
        model_ok && age_ok
    })?;
    let mut desc = format!("{} {}", v.vehicle.make, v.vehicle.model);
    if let Some(reg) = v.vehicle.first_registration {
        desc.push_str(&format!(
            " registered {reg} ({} years)",
            reg.years_until(today)
        ));
    }
    why.push(desc.trim().to_string());
    Some((Some(v.vehicle.vin.clone()), why.join(", ")))
}

/// Consent as the brand's rule for the channel reads it.
pub fn has_consent(r: &Recipient, c: Channel, brand: &BrandPolicy) -> bool {
    match (brand.channels.get(c).consent, r.consent(c)) {
        (_, Some(stmt)) => stmt.granted,
        (ConsentRule::OptIn, None) => false,
        (ConsentRule::OptOut, None) => true,
    }
}

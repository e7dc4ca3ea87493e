//! Occasions (M5): every reason to contact a recipient that falls into the
//! planning horizon, each with the date it happens and how that was found.

use touchpoint_common::domain::Channel;
use touchpoint_common::domain::JourneyTransition;
use touchpoint_common::outbox::Occasion;
use touchpoint_common::policy::{AnyStage, BrandPolicy, OccasionKind, Segment, Service};
use touchpoint_common::Date;

use super::journey;
use super::recipients::{Recipient, VehicleView};

/// A service-due date may lie this far in the past and still be reminded
/// (as due today): the mileage projection often says "already due".
pub const OVERDUE_GRACE_DAYS: i32 = 90;

/// A quality-check call may be this many days late (the list was not
/// worked, the daemon was down) and is still made.
pub const AFTER_VISIT_GRACE_DAYS: i32 = 14;

/// An entry into a journey stage is an occasion for this many days after
/// it was noticed (while the recipient stays in the stage); its message
/// may go out until then.
pub const JOURNEY_GRACE_DAYS: i32 = 30;

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
        // Most vehicles are not due within the horizon: their reasons are
        // put into words only once they are.
        OccasionKind::ServiceDue => {
            for v in &r.vehicles {
                if let Some(d) = ServiceDue::find(v, s, brand, w.today) {
                    if w.takes(d.due, lead) {
                        let key = d.key(id, v);
                        let reason = d.reason(v, brand);
                        out.push(occasion(key, Some(&v.vehicle.vin), d.due, reason));
                    }
                }
            }
        }
        OccasionKind::InspectionDue => {
            for v in &r.vehicles {
                if let Some(d) = InspectionDue::find(v, s, w.today) {
                    if w.takes(d.due, lead) {
                        let key = d.key(id, v);
                        out.push(occasion(key, Some(&v.vehicle.vin), d.due, d.reason()));
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
        OccasionKind::AfterVisit => {
            let Some(after) = s.after_days else { return };
            for v in &r.vehicles {
                let Some(visit) = v.vehicle.last_service_date else {
                    continue;
                };
                let due = visit.add_days(after as i32);
                // A call a few days late is still worth making; later not.
                if due < w.today.add_days(-AFTER_VISIT_GRACE_DAYS) {
                    continue;
                }
                let due = due.max(w.today);
                if w.takes(due, lead) {
                    let key = format!("{id}:{}:{visit}", v.vehicle.vin);
                    let reason = format!("{after} days after the service on {visit}");
                    out.push(occasion(key, Some(&v.vehicle.vin), due, reason));
                }
            }
        }
        OccasionKind::Journey => {
            let (Some(stage), Some(j)) = (s.stage, r.journey.as_ref()) else {
                return;
            };
            // The latest entry per subject (the customer, each vehicle)
            // counts, and only while the subject is still in that stage.
            let mut seen: Vec<Option<&str>> = Vec::new();
            for t in j.transitions.iter().rev() {
                let (subject, now_in, from) = match t {
                    JourneyTransition::Customer { from, .. } => (
                        None,
                        AnyStage::Customer(j.stage) == stage,
                        from.map(|f| f.as_str()),
                    ),
                    JourneyTransition::Vehicle { vin, from, .. } => (
                        Some(vin.as_str()),
                        j.vehicle(vin).map(AnyStage::Vehicle) == Some(stage),
                        from.map(|f| f.as_str()),
                    ),
                };
                if seen.contains(&subject) {
                    continue;
                }
                seen.push(subject);
                let day = t.day();
                if t.to() != stage || !now_in || day < w.today.add_days(-JOURNEY_GRACE_DAYS) {
                    continue;
                }
                // A stage first derived is no entry into it: the subject was
                // there before we saw it (a first run over old data, a
                // customers file imported before its visits, a vehicle that
                // came with a merge). Only a change the data showed is.
                let Some(from) = from else {
                    continue;
                };
                let due = day.max(w.today);
                if !w.takes(due, lead) {
                    continue;
                }
                let subject_key = subject.unwrap_or(&r.customer.customer_no);
                let key = format!("{id}:{subject_key}:{}:{day}", stage.as_str());
                let was = format!("was {from}");
                let whose = subject.map(|v| format!("vehicle {v} ")).unwrap_or_default();
                let reason = format!(
                    "{whose}entered journey stage {} on {day} ({was})",
                    stage.as_str()
                );
                out.push(occasion(key, subject, due, reason));
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
    ServiceDue::find(v, s, brand, today).map(|d| (d.due, d.base, d.reason(v, brand)))
}

/// A service-due date and what it was found from, before it is put into words.
struct ServiceDue {
    due: Date,
    /// The cycle anchor: the last service, or the first registration.
    base: Date,
    base_is_service: bool,
    months: u32,
    /// Set when the mileage projection came first.
    by_km: Option<ByKm>,
    overdue: bool,
}

struct ByKm {
    on: Date,
    /// The interval counted from a service without its mileage, or the
    /// mileage to reach.
    what: KmTarget,
    /// Whether the brand's default km per day was used.
    default_rate: bool,
}

enum KmTarget {
    AfterService { interval: u32, service: Date },
    Reach(u32),
}

impl ServiceDue {
    fn find(v: &VehicleView, s: &Service, brand: &BrandPolicy, today: Date) -> Option<Self> {
        let months = s.interval_months?;
        let veh = &v.vehicle;
        let (base, base_is_service) = match (veh.last_service_date, veh.first_registration) {
            (Some(d), _) => (d, true),
            (None, Some(d)) => (d, false),
            (None, None) => return None,
        };
        let by_time = base.add_months(months);
        let mut due = by_time;
        let mut by_km = None;
        if let Some(interval) = s.interval_km {
            let (kmpd, default_rate) = match &v.km_per_day {
                Some((k, _)) => (*k, false),
                None => (f64::from(brand.planning.default_km_per_day), true),
            };
            // The next service is due at the last service's mileage plus the
            // interval. A service on record without its mileage still starts a
            // new interval, counted from the service day; with no service on
            // record, the odometer counts from 0 km at first registration.
            let (target, (ref_day, ref_km), what) =
                match (veh.last_service_km, veh.last_service_date) {
                    (None, Some(d)) => (
                        interval,
                        (d, 0),
                        KmTarget::AfterService {
                            interval,
                            service: d,
                        },
                    ),
                    (km, _) => {
                        let target = km.unwrap_or(0).saturating_add(interval);
                        let from = v
                            .last_km
                            .or_else(|| veh.first_registration.map(|d| (d, 0)))
                            .unwrap_or((base, 0));
                        (target, from, KmTarget::Reach(target))
                    }
                };
            if kmpd > 0.0 {
                let days = (f64::from(target.saturating_sub(ref_km)) / kmpd).ceil() as i32;
                let on = ref_day.add_days(days);
                // A projection long past while the time limit is still ahead
                // is a stale mileage, not a lost customer: the time limit holds.
                let stale = on < today.add_days(-OVERDUE_GRACE_DAYS)
                    && by_time >= today.add_days(-OVERDUE_GRACE_DAYS);
                if on < by_time && !stale {
                    due = on;
                    by_km = Some(ByKm {
                        on,
                        what,
                        default_rate,
                    });
                }
            }
        }
        let overdue = due < today;
        if overdue {
            if due < today.add_days(-OVERDUE_GRACE_DAYS) {
                return None;
            }
            due = today;
        }
        Some(Self {
            due,
            base,
            base_is_service,
            months,
            by_km,
            overdue,
        })
    }

    /// The occasion's key: the service that starts the cycle names it.
    fn key(&self, id: &str, v: &VehicleView) -> String {
        format!("{id}:{}:{}", v.vehicle.vin, self.base)
    }

    fn reason(&self, v: &VehicleView, brand: &BrandPolicy) -> String {
        let mut reason = match &self.by_km {
            None if self.base_is_service => {
                format!("{} months after the service on {}", self.months, self.base)
            }
            None => format!(
                "{} months after first registration on {}",
                self.months, self.base
            ),
            Some(k) => {
                let what = match k.what {
                    KmTarget::AfterService { interval, service } => {
                        format!("{interval} km after the service on {service}")
                    }
                    KmTarget::Reach(target) => format!("{target} km"),
                };
                match (&v.km_per_day, k.default_rate) {
                    (Some((_, how)), false) => format!("{what} projected on {} at {how}", k.on),
                    _ => format!(
                        "{what} projected on {} at brand default of {} km/day (no mileage history)",
                        k.on, brand.planning.default_km_per_day
                    ),
                }
            }
        };
        if self.overdue {
            reason.push_str("; overdue, reminded as due today");
        }
        reason
    }
}

/// Next statutory inspection on or after today.
pub fn inspection_due(v: &VehicleView, s: &Service, today: Date) -> Option<(Date, String)> {
    InspectionDue::find(v, s, today).map(|d| (d.due, d.reason()))
}

/// An inspection date and what it was found from, before it is put into words.
struct InspectionDue {
    due: Date,
    from: InspectionFrom,
}

enum InspectionFrom {
    Recorded(Date),
    /// A recorded date just passed: overdue, reminded as due today.
    RecordedOverdue(Date),
    /// An inspection visit on record: the next is `every` months after it.
    Visited {
        done: Date,
        every: u32,
    },
    Registration {
        reg: Date,
        first: u32,
        n: u32,
        every: u32,
    },
}

impl InspectionDue {
    fn find(v: &VehicleView, s: &Service, today: Date) -> Option<Self> {
        let veh = &v.vehicle;
        // An inspection visit answers the inspection it may be (the
        // recorded one done early, or any when none is recorded): the next
        // is due a full period after it.
        if let Some(done) = v.inspected {
            let every = s.every_months.unwrap_or(24).max(1);
            let next = done.add_months(every);
            if next >= today {
                return Some(Self {
                    due: next,
                    from: InspectionFrom::Visited { done, every },
                });
            }
        }
        if let Some(d) = veh.next_inspection {
            // A recorded date just passed is an overdue inspection, reminded as
            // due today; long past, the record is stale and nothing is said.
            return if d >= today {
                Some(Self {
                    due: d,
                    from: InspectionFrom::Recorded(d),
                })
            } else if d >= today.add_days(-OVERDUE_GRACE_DAYS) {
                Some(Self {
                    due: today,
                    from: InspectionFrom::RecordedOverdue(d),
                })
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
        Some(Self {
            due,
            from: InspectionFrom::Registration {
                reg,
                first,
                n,
                every,
            },
        })
    }

    /// The day that names the occasion: the recorded date when there is
    /// one (overdue or not), else the due date.
    fn key_day(&self) -> Date {
        match self.from {
            InspectionFrom::RecordedOverdue(d) => d,
            _ => self.due,
        }
    }

    /// The occasion's key. Keyed by the recorded date: an overdue one is
    /// due "today" every day, and must stay one occasion.
    fn key(&self, id: &str, v: &VehicleView) -> String {
        format!("{id}:{}:{}", v.vehicle.vin, self.key_day())
    }

    fn reason(&self) -> String {
        match self.from {
            InspectionFrom::Recorded(d) => format!("next inspection recorded for {d}"),
            InspectionFrom::RecordedOverdue(d) => {
                format!("next inspection recorded for {d}; overdue, reminded as due today")
            }
            InspectionFrom::Visited { done, every } => {
                format!("{every} months after the inspection visit on {done}")
            }
            InspectionFrom::Registration {
                reg,
                first,
                n: 0,
                ..
            } => format!("first inspection {first} months after registration on {reg}"),
            InspectionFrom::Registration {
                reg,
                first,
                n,
                every,
            } => format!(
                "{first} + {n}×{every} months after registration on {reg} (no inspection date recorded)"
            ),
        }
    }
}

/// Why a vehicle's service or inspection occasion planned earlier is no
/// longer the one its data gives, if it is not: the vehicle was serviced
/// or inspected since (a visit, or a newer export), so the reminder would
/// ask for work already done. `None` for other kinds, for a vehicle the
/// recipient no longer has (the caller's other checks decide), and while
/// the occasion stands.
pub fn answered(
    o: &Occasion,
    r: &Recipient,
    s: &Service,
    brand: &BrandPolicy,
    today: Date,
) -> Option<String> {
    let vin = o.vin.as_deref()?;
    let v = r.vehicles.iter().find(|v| v.vehicle.vin == vin)?;
    // The key first (most occasions stand): the words only when it moved.
    let (due, now) = match o.kind {
        OccasionKind::ServiceDue => {
            let d = ServiceDue::find(v, s, brand, today)?;
            if d.key(&o.service, v) == o.key {
                return None;
            }
            (d.due, format!("{} ({})", d.due, d.reason(v, brand)))
        }
        OccasionKind::InspectionDue => {
            let d = InspectionDue::find(v, s, today)?;
            if d.key(&o.service, v) == o.key {
                return None;
            }
            (d.due, format!("{} ({})", d.due, d.reason()))
        }
        _ => return None,
    };
    // A later cycle is work done; anything else is a corrected date or a
    // changed policy, said as such (the occasion is planned again anew).
    Some(if due > o.due {
        format!(
            "{} for {vin} was done since it was planned: next due {now}",
            o.service
        )
    } else {
        format!(
            "{} for {vin} changed since it was planned (due {} then): now due {now}",
            o.service, o.due
        )
    })
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
        let stage = journey::customer_stage(r, &brand.journey, today);
        if !seg.journey_stages.contains(&stage) {
            return None;
        }
        why.push(format!("journey stage {}", stage.as_str()));
    }
    let looks_at_vehicles =
        !seg.models.is_empty() || seg.vehicle_age_years.is_some() || !seg.vehicle_stages.is_empty();
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
        let stage_ok = seg.vehicle_stages.is_empty()
            || journey::vehicle_stage(&v.vehicle, &brand.journey, today)
                .is_some_and(|st| seg.vehicle_stages.contains(&st));
        model_ok && age_ok && stage_ok
    })?;
    let mut desc = format!("{} {}", v.vehicle.make, v.vehicle.model);
    if let Some(reg) = v.vehicle.first_registration {
        desc.push_str(&format!(
            " registered {reg} ({} years)",
            reg.years_until(today)
        ));
    }
    if !seg.vehicle_stages.is_empty() {
        if let Some(st) = journey::vehicle_stage(&v.vehicle, &brand.journey, today) {
            desc.push_str(&format!(", vehicle stage {}", st.as_str()));
        }
    }
    why.push(desc.trim().to_string());
    Some((Some(v.vehicle.vin.clone()), why.join(", ")))
}

/// Consent as the brand's rule for the channel reads it.
pub fn has_consent(r: &Recipient, c: Channel, brand: &BrandPolicy) -> bool {
    let rule = brand.channels.get(c).consent;
    super::consent::verdict(rule, c, r.consent(c), &r.customer.customer_no).is_ok()
}

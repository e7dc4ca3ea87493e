//! The planner's steps with hand-computed expectations, then whole runs
//! through [`plan_tenant`] on a real tenant store.
//!
//! Unless a test says otherwise: today is Monday 2026-03-02, the horizon is
//! 14 days (up to 2026-03-16), the bundling window 30 days, at most 3
//! contacts in 90 days with 14 days between two, email costs 0.02 and post
//! 0.95. The service reminder has 21 days of lead time, so a service due on
//! 2026-03-20 could be sent from 2026-02-27: from today on.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use touchpoint_common::config::StoresConfig;
use touchpoint_common::domain::{
    Channel, Consent, Customer, ImportReport, ServiceVisit, Timestamp, Vehicle,
};
use touchpoint_common::domain::{JourneyTransition, VehicleStage};
use touchpoint_common::money::Money;
use touchpoint_common::outbox::{month_of, Dropped, MessageStatus, PlanReport, Step, Why};
use touchpoint_common::policy::{
    AnyStage, BrandPolicy, JourneyStage, OccasionKind, PolicyDate, PolicySet, Range, Segment,
    Service, TenantPolicy, TenantService, Weekday,
};
use touchpoint_common::{Date, TenantId};

use super::journey;
use super::occasions::{self, Window};
use super::recipients::{self, Recipient};
use super::steps::{self, Draft, History, Input, Outcome};
use super::{plan_tenant, Mode, PlanError};
use crate::learning::Learned;
use crate::store::{Contact, Stores, TenantStore};

// ----- policies -------------------------------------------------------------------

const BRAND: &str = r#"
[brand]
id = "nordwagen"
name = "Nordwagen"

[planning]
schedule = "0 30 5 * * Mon-Sat"
horizon_days = 14
bundling_window_days = 30
default_km_per_day = 40
min_value = 1.00

[contact]
max_contacts = 3
period_days = 90
min_gap_days = 14

[calendar]
quiet_weekdays = ["sun"]
holidays = [2026-12-25]

[channels.email]
cost = 0.02
consent = "opt_in"

[channels.post]
cost = 0.95
consent = "opt_out"

[channels.phone]
cost = 2.50
consent = "opt_in"

[services.service]
name = "Service reminder"
occasion = "service_due"
template = "service"
lead_days = 21
value = 38.00
channels = ["email", "post"]
interval_months = 12
interval_km = 30000

[services.hu]
name = "HU reminder"
occasion = "inspection_due"
template = "hu"
lead_days = 28
value = 25.00
channels = ["email", "post"]
first_after_months = 36
every_months = 24

[services.warranty]
name = "Warranty extension"
occasion = "warranty_end"
template = "warranty"
lead_days = 60
value = 60.00
channels = ["post", "email"]
mandatory_channel = "post"

[services.birthday]
name = "Birthday"
occasion = "birthday"
template = "birthday"
lead_days = 3
value = 2.00
channels = ["email"]
forbidden_channels = ["phone"]
send_window = { weekdays = ["mon", "tue", "wed", "thu", "fri", "sat"], from = "07:00", to = "10:00" }

[services.winter]
name = "Winter check"
occasion = "campaign"
template = "winter"
lead_days = 7
value = 12.00
channels = ["email", "post"]
from = 2026-11-30
to = 2027-01-31

[services.winter.segment]
"#;

const DEALER: &str = r#"
[tenant]
id = "t1"
name = "Autohaus Test"

[channels]
enabled = ["email", "post"]
daily_capacity = 500

[sender]
name = "Autohaus Test"
email = "service@autohaus-test.example"

[services.service]
monthly_budget = 1000

[services.hu]
monthly_budget = 1000

[services.warranty]
monthly_budget = 1000

[services.birthday]
monthly_budget = 1000

[services.winter]
monthly_budget = 1000
"#;

fn policy_set() -> PolicySet {
    let mut files = BTreeMap::new();
    files.insert("brand.toml".to_string(), BRAND.to_string());
    files.insert("dealers/t1.toml".to_string(), DEALER.to_string());
    for t in ["service", "hu", "warranty", "birthday", "winter"] {
        files.insert(
            format!("templates/{t}.toml"),
            "subject = ''\ntext = ''\nhtml = ''\nletter = ''\n".to_string(),
        );
    }
    match PolicySet::validate(&files, "") {
        Ok(set) => set,
        Err(e) => panic!("test policies are invalid: {e:?}"),
    }
}

fn t1() -> TenantId {
    TenantId::new("t1").expect("tenant id")
}

fn d(y: i32, m: u32, day: u32) -> Date {
    Date::from_ymd(y, m, day).expect("valid date")
}

/// Monday.
fn today() -> Date {
    d(2026, 3, 2)
}

// ----- data -----------------------------------------------------------------------

fn person(no: &str) -> Customer {
    crate::testkit::person(no).build()
}

/// A person with the email address `<no>@example.org`.
fn emailed(no: &str) -> Customer {
    crate::testkit::person(no).email().build()
}

fn company(no: &str) -> Customer {
    crate::testkit::person(no)
        .company("Spedition Nord GmbH")
        .build()
}

fn said(no: &str, channel: Channel, granted: bool, on: Date) -> Consent {
    Consent {
        customer_no: no.into(),
        channel,
        granted,
        source: "import:kunden.csv".into(),
        at: Timestamp::from_date(on),
    }
}

/// Email consent given on 2025-01-01.
fn email_yes(no: &str) -> Consent {
    said(no, Channel::Email, true, d(2025, 1, 1))
}

fn car(vin: &str, owner: &str) -> Vehicle {
    Vehicle {
        vin: vin.into(),
        customer_no: owner.into(),
        make: "Nordwagen".into(),
        model: "Fjord".into(),
        ..Default::default()
    }
}

/// Serviced on `on` (mileage unknown): the next service is due 12 months
/// later, as 40 km/day × 365 = 14600 km never reach the 30000 km interval.
fn serviced(vin: &str, owner: &str, on: Date) -> Vehicle {
    Vehicle {
        last_service_date: Some(on),
        ..car(vin, owner)
    }
}

fn recipient(c: Customer, vehicles: Vec<Vehicle>, consents: Vec<Consent>) -> Recipient {
    let mut r = Recipient::new(c);
    r.vehicles = vehicles
        .into_iter()
        .map(|v| recipients::vehicle_view(v, &[]))
        .collect();
    for c in consents {
        r.add_consent(c);
    }
    r
}

/// K<n> without email (so: by post), service due on 2026-03-20.
fn email_customer(n: usize) -> Recipient {
    let no = format!("K{n}");
    recipient(
        emailed(&no),
        vec![serviced(&format!("V{n}"), &no, d(2025, 3, 20))],
        vec![email_yes(&no)],
    )
}

fn post_customer(n: usize) -> Recipient {
    let no = format!("K{n}");
    recipient(
        person(&no),
        vec![serviced(&format!("V{n}"), &no, d(2025, 3, 20))],
        vec![],
    )
}

// ----- the steps without a store ------------------------------------------------------

/// What earlier runs left, in memory.
#[derive(Default)]
struct TestHistory {
    planned: HashSet<String>,
    contacts: HashMap<String, Vec<Contact>>,
    load: BTreeMap<Date, u32>,
    ledger: HashMap<(u32, String), i64>,
}

impl TestHistory {
    fn contact(mut self, recipient: &str, day: Date, status: MessageStatus) -> Self {
        let list = self.contacts.entry(recipient.to_string()).or_default();
        list.push(Contact {
            day,
            message: 1000 + list.len() as u64,
            status,
        });
        self
    }
}

impl History for TestHistory {
    fn planned(&self, key: &str) -> bool {
        self.planned.contains(key)
    }

    fn contacts(&self, recipient: &str) -> Vec<Contact> {
        self.contacts.get(recipient).cloned().unwrap_or_default()
    }

    fn day_load(&self) -> &BTreeMap<Date, u32> {
        &self.load
    }

    fn committed(&self, month: u32, service: &str) -> i64 {
        self.ledger
            .get(&(month, service.to_string()))
            .copied()
            .unwrap_or(0)
    }
}

/// One tenant's policies and day, changeable per test.
struct Fix {
    brand: BrandPolicy,
    policy: TenantPolicy,
    leads: Learned,
    today: Date,
    bad_addresses: std::collections::HashMap<String, String>,
}

impl Fix {
    fn new() -> Self {
        let set = policy_set();
        Self {
            policy: set.tenant(&t1()).expect("t1 policy").clone(),
            brand: set.brand,
            leads: Learned::default(),
            today: today(),
            bad_addresses: Default::default(),
        }
    }

    fn on(mut self, day: Date) -> Self {
        self.today = day;
        self
    }

    fn service(&mut self, id: &str) -> &mut Service {
        self.brand.services.get_mut(id).expect("service")
    }

    fn input(&self) -> Input<'_> {
        Input {
            tenant: "t1",
            brand: &self.brand,
            policy: &self.policy,
            today: self.today,
            learned: &self.leads,
            bad_addresses: &self.bad_addresses,
        }
    }

    fn window(&self) -> Window {
        Window {
            today: self.today,
            horizon_days: self.brand.planning.horizon_days,
        }
    }

    /// The occasions of one service for one recipient.
    fn find(&self, r: &Recipient, id: &str) -> Vec<touchpoint_common::outbox::Occasion> {
        let s = &self.brand.services[id];
        let lead = self.leads.find_lead(id, s);
        let mut out = Vec::new();
        occasions::find(r, id, s, lead, &self.brand, &self.window(), &mut out);
        out
    }

    /// Steps 1 to 4 for one recipient.
    fn shape(&self, r: &Recipient, h: &TestHistory) -> (Vec<Draft>, Outcome) {
        let mut out = outcome();
        let drafts = steps::shape(0, r, &self.input(), h, &mut out);
        (drafts, out)
    }

    /// Steps 1 to 5 for several recipients.
    fn budget(&self, rs: &[Recipient], h: &TestHistory) -> (Vec<Draft>, Outcome) {
        let input = self.input();
        let mut out = outcome();
        let mut shaped = Vec::new();
        for (i, r) in rs.iter().enumerate() {
            shaped.extend(steps::shape(i, r, &input, h, &mut out));
        }
        let mut spent = HashMap::new();
        let kept = steps::budget(shaped, rs, &input, h, &mut spent, &mut out);
        (kept, out)
    }

    /// Every step; the planned drafts are in `out.drafts` with `out.times`.
    fn plan(&self, rs: &[Recipient], h: &TestHistory) -> Outcome {
        self.plan_spent(rs, h).0
    }

    fn plan_spent(
        &self,
        rs: &[Recipient],
        h: &TestHistory,
    ) -> (Outcome, HashMap<(u32, String), i64>) {
        let input = self.input();
        let mut out = outcome();
        let mut shaped = Vec::new();
        for (i, r) in rs.iter().enumerate() {
            shaped.extend(steps::shape(i, r, &input, h, &mut out));
        }
        let mut spent = HashMap::new();
        let funded = steps::budget(shaped, rs, &input, h, &mut spent, &mut out);
        steps::schedule(funded, rs, &input, h, &mut spent, &mut out);
        (out, spent)
    }
}

fn outcome() -> Outcome {
    Outcome::default()
}

fn texts(why: &[Why], step: Step) -> Vec<&str> {
    why.iter()
        .filter(|w| w.step == step)
        .map(|w| w.text.as_str())
        .collect()
}

fn only<T: std::fmt::Debug>(v: &[T]) -> &T {
    assert_eq!(v.len(), 1, "expected exactly one: {v:#?}");
    &v[0]
}

fn reasons(dropped: &[Dropped]) -> Vec<(&str, Step, &str)> {
    dropped
        .iter()
        .map(|x| (x.recipient.as_str(), x.step, x.reason.as_str()))
        .collect()
}

// ----- occasions: service due ----------------------------------------------------------

#[test]
fn service_is_due_by_time_when_the_mileage_comes_later() {
    let fix = Fix::new();
    let v = Vehicle {
        last_service_date: Some(d(2025, 3, 20)),
        last_service_km: Some(20_000),
        ..car("V1", "K1")
    };
    // 2024-03-20 to 2025-03-20: 365 days, 3650 km: 10 km/day.
    let view = recipients::vehicle_view(v, &[(d(2024, 3, 20), Some(16_350))]);
    let (kmpd, how) = view.km_per_day.clone().expect("own km/day");
    assert_eq!(kmpd, 10.0);
    assert_eq!(
        how,
        "10 km/day from 16350 km on 2024-03-20 to 20000 km on 2025-03-20"
    );
    // By km: 30000 km / 10 = 3000 days after 2025-03-20, long after the
    // 12 months.
    let due = occasions::service_due(&view, &fix.brand.services["service"], &fix.brand, today());
    assert_eq!(
        due,
        Some((
            d(2026, 3, 20),
            d(2025, 3, 20),
            "12 months after the service on 2025-03-20".to_string()
        ))
    );
}

#[test]
fn service_is_due_by_projected_mileage_when_that_comes_first() {
    let fix = Fix::new();
    let s = &fix.brand.services["service"];
    let v = Vehicle {
        last_service_date: Some(d(2025, 3, 20)),
        last_service_km: Some(36_000),
        ..car("V1", "K1")
    };
    // 2025-01-19 to 2025-03-20: 60 days, 6000 km: 100 km/day. The next
    // service at 36000 + 30000 = 66000 km: 300 days after 2025-03-20.
    let view = recipients::vehicle_view(v.clone(), &[(d(2025, 1, 19), Some(30_000))]);
    let due = occasions::service_due(&view, s, &fix.brand, d(2025, 12, 20));
    assert_eq!(
        due,
        Some((
            d(2026, 1, 14),
            d(2025, 3, 20),
            "66000 km projected on 2026-01-14 at 100 km/day from 30000 km on 2025-01-19 to 36000 km on 2025-03-20".to_string()
        ))
    );

    // A later visit (not a service) is the newest mileage: 180 days and
    // 18000 km after the service (100 km/day), 12000 km to go: 120 days
    // after 2025-09-16, the same day.
    let view = recipients::vehicle_view(v, &[(d(2025, 9, 16), Some(54_000))]);
    assert_eq!(view.last_km, Some((d(2025, 9, 16), 54_000)));
    let (due, anchor, reason) =
        occasions::service_due(&view, s, &fix.brand, d(2025, 12, 20)).expect("due");
    assert_eq!((due, anchor), (d(2026, 1, 14), d(2025, 3, 20)));
    assert_eq!(
        reason,
        "66000 km projected on 2026-01-14 at 100 km/day from 36000 km on 2025-03-20 to 54000 km on 2025-09-16"
    );
}

#[test]
fn visits_less_than_30_days_apart_give_no_km_per_day() {
    let v = Vehicle {
        last_service_date: Some(d(2025, 3, 20)),
        last_service_km: Some(36_000),
        ..car("V1", "K1")
    };
    // 2025-03-01 to 2025-03-20: 19 days.
    let view = recipients::vehicle_view(v.clone(), &[(d(2025, 3, 1), Some(35_000))]);
    assert!(view.km_per_day.is_none());
    assert_eq!(view.last_km, Some((d(2025, 3, 20), 36_000)));
    assert_eq!(view.last_visit, Some(d(2025, 3, 20)));
    // Exactly 30 days count: 2025-02-18 to 2025-03-20, 3000 km.
    let view = recipients::vehicle_view(v, &[(d(2025, 2, 18), Some(33_000))]);
    assert_eq!(view.km_per_day.map(|(k, _)| k), Some(100.0));
}

#[test]
fn without_visits_the_mileage_is_projected_at_the_brand_default() {
    let mut fix = Fix::new();
    let v = Vehicle {
        first_registration: Some(d(2025, 6, 1)),
        ..car("V1", "K1")
    };
    let view = recipients::vehicle_view(v, &[]);
    // 40 km/day: 30000 km after 750 days, later than 12 months.
    let due = occasions::service_due(&view, &fix.brand.services["service"], &fix.brand, today());
    assert_eq!(
        due,
        Some((
            d(2026, 6, 1),
            d(2025, 6, 1),
            "12 months after first registration on 2025-06-01".to_string()
        ))
    );
    // 100 km/day: 30000 km 300 days after registration (at 0 km).
    fix.brand.planning.default_km_per_day = 100;
    let due = occasions::service_due(&view, &fix.brand.services["service"], &fix.brand, today());
    assert_eq!(
        due,
        Some((
            d(2026, 3, 28),
            d(2025, 6, 1),
            "30000 km projected on 2026-03-28 at brand default of 100 km/day (no mileage history)"
                .to_string()
        ))
    );
}

#[test]
fn a_service_without_its_mileage_still_restarts_the_interval() {
    // Registered 2023-03-25, serviced 2025-03-20 at an unknown mileage. The
    // projection counts from the service, not from 0 km at registration
    // (which would say 30000 km on 2025-04-13 and, long overdue, drop it).
    let mut fix = Fix::new();
    let v = Vehicle {
        first_registration: Some(d(2023, 3, 25)),
        last_service_date: Some(d(2025, 3, 20)),
        ..car("V1", "K1")
    };
    let view = recipients::vehicle_view(v, &[]);
    let s = fix.brand.services["service"].clone();
    assert_eq!(
        occasions::service_due(&view, &s, &fix.brand, today()),
        Some((
            d(2026, 3, 20),
            d(2025, 3, 20),
            "12 months after the service on 2025-03-20".to_string()
        ))
    );
    // At 100 km/day the 30000 km come 300 days after the service.
    fix.brand.planning.default_km_per_day = 100;
    assert_eq!(
        occasions::service_due(&view, &s, &fix.brand, d(2025, 12, 20)),
        Some((
            d(2026, 1, 14),
            d(2025, 3, 20),
            "30000 km after the service on 2025-03-20 projected on 2026-01-14 at brand default of 100 km/day (no mileage history)".to_string()
        ))
    );
}

#[test]
fn an_overdue_service_within_the_grace_is_due_today() {
    let fix = Fix::new();
    let s = &fix.brand.services["service"];
    let v = Vehicle {
        last_service_date: Some(d(2025, 3, 20)),
        last_service_km: Some(36_000),
        ..car("V1", "K1")
    };
    // Projected due 2026-01-14 (see above); 2026-01-14 + 90 days = 2026-04-14.
    let view = recipients::vehicle_view(v, &[(d(2025, 1, 19), Some(30_000))]);
    let reason = "66000 km projected on 2026-01-14 at 100 km/day from 30000 km on 2025-01-19 to 36000 km on 2025-03-20; overdue, reminded as due today";
    assert_eq!(
        occasions::service_due(&view, s, &fix.brand, today()),
        Some((today(), d(2025, 3, 20), reason.to_string()))
    );
    assert_eq!(
        occasions::service_due(&view, s, &fix.brand, d(2026, 4, 14)),
        Some((d(2026, 4, 14), d(2025, 3, 20), reason.to_string()))
    );
    // A day later the projection is stale (more than 90 days past) while the
    // 12-month limit (2026-03-20) is within the grace: the time limit holds.
    assert_eq!(
        occasions::service_due(&view, s, &fix.brand, d(2026, 4, 15)),
        Some((
            d(2026, 4, 15),
            d(2025, 3, 20),
            "12 months after the service on 2025-03-20; overdue, reminded as due today".to_string()
        ))
    );
    // Both long past: nothing (2026-03-20 + 90 days = 2026-06-18).
    assert_eq!(
        occasions::service_due(&view, s, &fix.brand, d(2026, 6, 19)),
        None
    );

    // Through find: the key is the cycle's anchor, stable while overdue.
    let mut r = recipient(person("K1"), vec![], vec![]);
    r.vehicles.push(view);
    let found = fix.find(&r, "service");
    let o = only(&found);
    assert_eq!(o.key, "service:V1:2025-03-20");
    assert_eq!(o.due, today());
    assert_eq!(o.vin.as_deref(), Some("V1"));
    assert_eq!(o.value, 3800);
}

#[test]
fn a_vehicle_without_any_date_has_no_service_occasion() {
    let fix = Fix::new();
    let view = recipients::vehicle_view(car("V1", "K1"), &[]);
    assert_eq!(
        occasions::service_due(&view, &fix.brand.services["service"], &fix.brand, today()),
        None
    );
}

// ----- occasions: inspection, warranty, birthday -----------------------------------------

fn inspection(
    reg: Option<Date>,
    stored: Option<Date>,
    s: &Service,
    on: Date,
) -> Option<(Date, String)> {
    let v = Vehicle {
        first_registration: reg,
        next_inspection: stored,
        ..car("V1", "K1")
    };
    occasions::inspection_due(&recipients::vehicle_view(v, &[]), s, on)
}

#[test]
fn inspection_uses_the_stored_date_before_the_registration() {
    let fix = Fix::new();
    let s = &fix.brand.services["hu"];
    assert_eq!(
        inspection(Some(d(2023, 1, 31)), Some(d(2026, 3, 25)), s, today()),
        Some((
            d(2026, 3, 25),
            "next inspection recorded for 2026-03-25".to_string()
        ))
    );
}

#[test]
fn an_overdue_inspection_keeps_one_key_while_it_is_reminded_as_due_today() {
    // Recorded for 2026-02-20, found on 2026-03-02 and on 2026-03-09: due
    // "today" both times, but one occasion (keyed by the recorded date), so
    // a plan a week later does not remind the customer a second time.
    let v = Vehicle {
        next_inspection: Some(d(2026, 2, 20)),
        ..car("V1", "K1")
    };
    let mut keys = Vec::new();
    for day in [today(), today().add_days(7)] {
        let fix = Fix::new().on(day);
        let r = recipient(person("K1"), vec![v.clone()], vec![]);
        let found = fix.find(&r, "hu");
        let o = only(&found);
        assert_eq!(o.due, day);
        keys.push(o.key.clone());
    }
    assert_eq!(keys, ["hu:V1:2026-02-20", "hu:V1:2026-02-20"]);
}

#[test]
fn inspection_is_derived_from_a_registration_on_the_31st() {
    let fix = Fix::new();
    let s = &fix.brand.services["hu"];
    // 2023-01-31 + 36 months = 2026-01-31.
    assert_eq!(
        inspection(Some(d(2023, 1, 31)), None, s, d(2026, 1, 10)),
        Some((
            d(2026, 1, 31),
            "first inspection 36 months after registration on 2023-01-31".to_string()
        ))
    );
    // 2021-08-31 + 36 = 2024-08-31 (past), + 24 = 2026-08-31.
    assert_eq!(
        inspection(Some(d(2021, 8, 31)), None, s, d(2026, 8, 1)),
        Some((
            d(2026, 8, 31),
            "36 + 1×24 months after registration on 2021-08-31 (no inspection date recorded)"
                .to_string()
        ))
    );
    // Due today counts as due.
    assert_eq!(
        inspection(Some(d(2021, 8, 31)), None, s, d(2026, 8, 31)).map(|x| x.0),
        Some(d(2026, 8, 31))
    );
}

#[test]
fn inspection_of_a_car_registered_on_a_leap_day_falls_on_the_28th() {
    let fix = Fix::new();
    let s = &fix.brand.services["hu"];
    // 2020-02-29 + 36 = 2023-02-28, + 24 = 2025-02-28 (both past),
    // + 48 = 2027-02-28.
    assert_eq!(
        inspection(Some(d(2020, 2, 29)), None, s, d(2026, 1, 10)),
        Some((
            d(2027, 2, 28),
            "36 + 2×24 months after registration on 2020-02-29 (no inspection date recorded)"
                .to_string()
        ))
    );
}

#[test]
fn inspection_month_clamping_never_accumulates() {
    // Monthly "inspections" from 2024-01-31: 2024-02-29 (clamped), then
    // 2024-03-31, not 2024-03-29.
    let fix = Fix::new();
    let mut s = fix.brand.services["hu"].clone();
    s.first_after_months = Some(1);
    s.every_months = Some(1);
    assert_eq!(
        inspection(Some(d(2024, 1, 31)), None, &s, d(2024, 2, 29)).map(|x| x.0),
        Some(d(2024, 2, 29))
    );
    assert_eq!(
        inspection(Some(d(2024, 1, 31)), None, &s, d(2024, 3, 1)).map(|x| x.0),
        Some(d(2024, 3, 31))
    );
}

#[test]
fn inspection_without_registration_or_date_is_not_due() {
    let fix = Fix::new();
    assert_eq!(
        inspection(None, None, &fix.brand.services["hu"], today()),
        None
    );
}

#[test]
fn warranty_end_is_taken_60_days_ahead() {
    let fix = Fix::new();
    let with_end = |end: Date| {
        let v = Vehicle {
            warranty_end: Some(end),
            ..car("V1", "K1")
        };
        recipient(person("K1"), vec![v], vec![])
    };
    let found = fix.find(&with_end(d(2026, 4, 20)), "warranty");
    let o = only(&found);
    assert_eq!(o.key, "warranty:V1:2026-04-20");
    assert_eq!(o.due, d(2026, 4, 20));
    assert_eq!(o.reason, "warranty ends on 2026-04-20");
    assert_eq!(o.value, 6000);
    // 2026-05-15 - 60 days = 2026-03-16, the horizon's last day.
    assert_eq!(fix.find(&with_end(d(2026, 5, 15)), "warranty").len(), 1);
    assert_eq!(fix.find(&with_end(d(2026, 5, 16)), "warranty").len(), 0);
    // Ended yesterday: too late.
    assert_eq!(fix.find(&with_end(d(2026, 3, 1)), "warranty").len(), 0);
}

#[test]
fn a_leap_day_birthday_is_the_28th_in_common_years() {
    let born = d(2000, 2, 29);
    assert_eq!(
        occasions::next_birthday(born, d(2027, 1, 15)),
        d(2027, 2, 28)
    );
    assert_eq!(
        occasions::next_birthday(born, d(2027, 2, 28)),
        d(2027, 2, 28)
    );
    assert_eq!(
        occasions::next_birthday(born, d(2027, 3, 1)),
        d(2028, 2, 29)
    );
    assert_eq!(
        occasions::next_birthday(born, d(2028, 1, 15)),
        d(2028, 2, 29)
    );
    assert_eq!(
        occasions::next_birthday(d(1980, 3, 10), d(2026, 3, 11)),
        d(2027, 3, 10)
    );

    let r = recipient(
        Customer {
            birth_date: Some(born),
            ..emailed("K1")
        },
        vec![],
        vec![],
    );
    let found = Fix::new().on(d(2027, 2, 20)).find(&r, "birthday");
    let o = only(&found);
    assert_eq!(o.due, d(2027, 2, 28));
    assert_eq!(o.key, "birthday:K1:2027");
    assert_eq!(
        o.reason,
        "born 2000-02-29; celebrated on 28 February in a common year"
    );
    assert_eq!(o.vin, None);

    let found = Fix::new().on(d(2028, 2, 20)).find(&r, "birthday");
    let o = only(&found);
    assert_eq!(o.due, d(2028, 2, 29));
    assert_eq!(o.key, "birthday:K1:2028");
    assert_eq!(o.reason, "born 2000-02-29");
}

#[test]
fn companies_have_no_birthday() {
    let r = recipient(
        Customer {
            birth_date: Some(d(1980, 3, 10)),
            ..company("C1")
        },
        vec![],
        vec![],
    );
    assert!(Fix::new().find(&r, "birthday").is_empty());
    let r = recipient(
        Customer {
            birth_date: Some(d(1980, 3, 10)),
            ..person("K1")
        },
        vec![],
        vec![],
    );
    assert_eq!(Fix::new().find(&r, "birthday").len(), 1);
}

// ----- occasions: campaigns ---------------------------------------------------------------

#[test]
fn a_campaign_is_taken_within_its_dates() {
    // From 2026-11-30 to 2027-01-31, 7 days lead: sent from 2026-11-23,
    // which the horizon reaches on 2026-11-09 (+ 14 days).
    let r = recipient(person("K1"), vec![], vec![]);
    let due = |on: Date| {
        Fix::new()
            .on(on)
            .find(&r, "winter")
            .first()
            .map(|o| (o.due, o.key.clone()))
    };
    assert_eq!(due(d(2026, 11, 8)), None);
    assert_eq!(
        due(d(2026, 11, 9)),
        Some((d(2026, 11, 30), "winter:K1:2026-11-30".to_string()))
    );
    // Once begun, the occasion is today; on the last day still.
    assert_eq!(due(d(2027, 1, 15)).map(|x| x.0), Some(d(2027, 1, 15)));
    assert_eq!(due(d(2027, 1, 31)).map(|x| x.0), Some(d(2027, 1, 31)));
    assert_eq!(due(d(2027, 2, 1)), None);

    let found = Fix::new().on(d(2026, 11, 10)).find(&r, "winter");
    // A segment without keys selects everyone and adds nothing to say.
    assert_eq!(only(&found).reason, "campaign 2026-11-30 to 2027-01-31");
}

fn seg(f: impl FnOnce(&mut Segment)) -> Segment {
    let mut s = Segment::default();
    f(&mut s);
    s
}

/// Segment checks run on 2026-11-10.
fn matches(r: &Recipient, s: &Segment) -> Option<(Option<String>, String)> {
    let fix = Fix::new();
    occasions::segment_match(r, s, &fix.brand, d(2026, 11, 10))
}

fn registered(vin: &str, model: &str, on: Date) -> Vehicle {
    Vehicle {
        model: model.into(),
        first_registration: Some(on),
        ..car(vin, "K1")
    }
}

#[test]
fn campaign_segment_by_model() {
    let r = recipient(
        person("K1"),
        vec![
            registered("V1", "Kanto", d(2020, 5, 1)),
            registered("V2", "Fjord", d(2020, 5, 1)),
        ],
        vec![],
    );
    assert_eq!(
        matches(&r, &seg(|s| s.models = vec!["FJORD".into()])),
        Some((
            Some("V2".to_string()),
            "Nordwagen Fjord registered 2020-05-01 (6 years)".to_string()
        ))
    );
    assert_eq!(matches(&r, &seg(|s| s.models = vec!["Delta".into()])), None);
}

#[test]
fn campaign_segment_by_vehicle_age() {
    let age = seg(|s| {
        s.vehicle_age_years = Some(Range {
            min: Some(3),
            max: Some(5),
        })
    });
    let with = |reg: Date| recipient(person("K1"), vec![registered("V1", "Fjord", reg)], vec![]);
    // Whole years on 2026-11-10.
    assert!(matches(&with(d(2023, 11, 10)), &age).is_some(), "3 years");
    assert!(matches(&with(d(2023, 11, 11)), &age).is_none(), "2 years");
    assert!(matches(&with(d(2020, 11, 11)), &age).is_some(), "5 years");
    assert!(matches(&with(d(2020, 11, 10)), &age).is_none(), "6 years");
    let unregistered = recipient(person("K1"), vec![car("V1", "K1")], vec![]);
    assert!(matches(&unregistered, &age).is_none());
}

#[test]
fn campaign_segment_by_postcode_prefix() {
    let pc = seg(|s| s.postcode_prefixes = vec!["81".into(), "80".into()]);
    let r = recipient(person("K1"), vec![], vec![]);
    assert_eq!(
        matches(&r, &pc),
        Some((None, "postcode 80807 starts with 80".to_string()))
    );
    let mut far = person("K2");
    far.address.postcode = "90402".into();
    assert_eq!(matches(&recipient(far, vec![], vec![]), &pc), None);
}

#[test]
fn campaign_segment_by_days_since_last_visit() {
    let long_ago = seg(|s| {
        s.days_since_last_visit = Some(Range {
            min: Some(365),
            max: None,
        })
    });
    let visited = |on: Date| {
        let mut r = recipient(person("K1"), vec![], vec![]);
        r.vehicles
            .push(recipients::vehicle_view(car("V1", "K1"), &[(on, None)]));
        r
    };
    // 2025-11-10 to 2026-11-10: 365 days.
    assert_eq!(
        matches(&visited(d(2025, 11, 10)), &long_ago),
        Some((None, "last visit 2025-11-10".to_string()))
    );
    assert_eq!(matches(&visited(d(2025, 11, 11)), &long_ago), None);
    // Never visited counts as very long ago.
    let never = recipient(person("K1"), vec![car("V1", "K1")], vec![]);
    assert_eq!(
        matches(&never, &long_ago),
        Some((None, "never visited".to_string()))
    );
    let recent = seg(|s| {
        s.days_since_last_visit = Some(Range {
            min: None,
            max: Some(400),
        })
    });
    assert_eq!(matches(&never, &recent), None);
}

#[test]
fn campaign_segment_by_consent() {
    let email = seg(|s| s.consent = vec![Channel::Email]);
    let post = seg(|s| s.consent = vec![Channel::Post]);
    let silent = recipient(emailed("K1"), vec![], vec![]);
    let yes = recipient(emailed("K1"), vec![], vec![email_yes("K1")]);
    let no_post = recipient(
        emailed("K1"),
        vec![],
        vec![said("K1", Channel::Post, false, d(2025, 6, 1))],
    );
    // Email is opt-in: a record is needed. Post is opt-out.
    assert_eq!(matches(&silent, &email), None);
    assert_eq!(
        matches(&yes, &email),
        Some((None, "consent to email".to_string()))
    );
    assert!(matches(&silent, &post).is_some());
    assert_eq!(matches(&no_post, &post), None);
}

#[test]
fn campaign_segment_by_journey_stage() {
    // Default journey: new below 12 months, loyal below 18 months since the
    // last visit, lapsing below 36, then lost. On 2026-11-10:
    let with = |reg: Date, visit: Option<Date>| {
        let mut r = recipient(person("K1"), vec![], vec![]);
        let visits: Vec<(Date, Option<u32>)> = visit.into_iter().map(|v| (v, None)).collect();
        r.vehicles.push(recipients::vehicle_view(
            registered("V1", "Fjord", reg),
            &visits,
        ));
        r
    };
    let j = Fix::new().brand.journey;
    let stage = |r: &Recipient| journey::customer_stage(r, &j, d(2026, 11, 10));
    assert_eq!(stage(&with(d(2026, 1, 1), None)), JourneyStage::New);
    // 10 months since the visit.
    assert_eq!(
        stage(&with(d(2018, 1, 1), Some(d(2026, 1, 10)))),
        JourneyStage::Active
    );
    // 22 months.
    assert_eq!(
        stage(&with(d(2018, 1, 1), Some(d(2025, 1, 10)))),
        JourneyStage::Lapsing
    );
    // 46 months, and never.
    assert_eq!(
        stage(&with(d(2018, 1, 1), Some(d(2023, 1, 10)))),
        JourneyStage::Lapsed
    );
    assert_eq!(stage(&with(d(2018, 1, 1), None)), JourneyStage::Lapsed);

    let active = seg(|s| s.journey_stages = vec![JourneyStage::Active, JourneyStage::Lapsing]);
    assert_eq!(
        matches(&with(d(2018, 1, 1), Some(d(2026, 1, 10))), &active),
        Some((None, "journey stage active".to_string()))
    );
    assert_eq!(matches(&with(d(2018, 1, 1), None), &active), None);
}

// ----- journey stages ----------------------------------------------------------------------

/// A vehicle's stage on a day, with the default thresholds (new 12 months,
/// warranty ending 3 months, ageing 8 years).
fn vstage(reg: Option<Date>, warranty_end: Option<Date>, on: Date) -> Option<VehicleStage> {
    let v = Vehicle {
        first_registration: reg,
        warranty_end,
        ..car("V1", "K1")
    };
    journey::vehicle_stage(&v, &Fix::new().brand.journey, on)
}

#[test]
fn vehicle_stages_change_on_their_boundary_days() {
    use VehicleStage::*;
    // New for 12 whole months: registered 2025-03-02, new until 2026-03-01.
    let reg = Some(d(2025, 3, 2));
    let end = Some(d(2028, 3, 2));
    assert_eq!(vstage(reg, end, d(2026, 3, 1)), Some(New));
    assert_eq!(vstage(reg, end, d(2026, 3, 2)), Some(InWarranty));
    // Without a warranty end, past new: no stage.
    assert_eq!(vstage(reg, None, d(2026, 3, 2)), None);
    assert_eq!(vstage(None, None, d(2026, 3, 2)), None);
    // Warranty ending on 2026-06-02: the last 3 months start 2026-03-02;
    // post-warranty from the end day itself.
    let reg = Some(d(2024, 1, 1));
    let end = Some(d(2026, 6, 2));
    assert_eq!(vstage(reg, end, d(2026, 3, 1)), Some(InWarranty));
    assert_eq!(vstage(reg, end, d(2026, 3, 2)), Some(WarrantyEnding));
    assert_eq!(vstage(reg, end, d(2026, 6, 1)), Some(WarrantyEnding));
    assert_eq!(vstage(reg, end, d(2026, 6, 2)), Some(PostWarranty));
    // A warranty ending within a young car's first months wins over new.
    assert_eq!(
        vstage(Some(d(2026, 1, 1)), Some(d(2026, 4, 1)), d(2026, 3, 2)),
        Some(WarrantyEnding)
    );
    // Ageing at 8 whole years: registered 2018-03-02.
    let reg = Some(d(2018, 3, 2));
    let end = Some(d(2021, 3, 2));
    assert_eq!(vstage(reg, end, d(2026, 3, 1)), Some(PostWarranty));
    assert_eq!(vstage(reg, end, d(2026, 3, 2)), Some(Ageing));
    assert_eq!(vstage(reg, None, d(2026, 3, 2)), Some(Ageing));
}

#[test]
fn customer_stages_change_on_their_boundary_days() {
    // Lapsing after 18 whole months without a visit, lapsed after 36.
    let with_visit = |on: Date| {
        let mut r = recipient(person("K1"), vec![], vec![]);
        r.vehicles.push(recipients::vehicle_view(
            registered("V1", "Fjord", d(2015, 1, 1)),
            &[(on, None)],
        ));
        r
    };
    let j = Fix::new().brand.journey;
    let stage = |r: &Recipient, on: Date| journey::customer_stage(r, &j, on);
    let r = with_visit(d(2024, 9, 2));
    assert_eq!(stage(&r, d(2026, 3, 1)), JourneyStage::Active);
    assert_eq!(stage(&r, d(2026, 3, 2)), JourneyStage::Lapsing);
    let r = with_visit(d(2023, 3, 2));
    assert_eq!(stage(&r, d(2026, 3, 1)), JourneyStage::Lapsing);
    assert_eq!(stage(&r, d(2026, 3, 2)), JourneyStage::Lapsed);
}

#[test]
fn the_old_stage_names_still_read() {
    let s: Segment = toml::from_str("journey_stages = [\"loyal\", \"lost\"]").expect("segment");
    assert_eq!(
        s.journey_stages,
        vec![JourneyStage::Active, JourneyStage::Lapsed]
    );
}

#[test]
fn campaign_segment_by_vehicle_stage() {
    // On 2026-11-10: V1's warranty ends 2027-01-10 (ending), V2's is over.
    let r = recipient(
        person("K1"),
        vec![
            Vehicle {
                warranty_end: Some(d(2025, 1, 10)),
                ..registered("V2", "Delta", d(2022, 1, 10))
            },
            Vehicle {
                warranty_end: Some(d(2027, 1, 10)),
                ..registered("V1", "Fjord", d(2024, 1, 10))
            },
        ],
        vec![],
    );
    let ending = seg(|s| s.vehicle_stages = vec![VehicleStage::WarrantyEnding]);
    assert_eq!(
        matches(&r, &ending),
        Some((
            Some("V1".to_string()),
            "Nordwagen Fjord registered 2024-01-10 (2 years), vehicle stage warranty_ending"
                .to_string()
        ))
    );
    let ageing = seg(|s| s.vehicle_stages = vec![VehicleStage::Ageing]);
    assert_eq!(matches(&r, &ageing), None);
}

impl World {
    /// A win-back service: a letter to customers who entered `lapsed`.
    fn with_winback(mut self) -> Self {
        let mut s = self.set.brand.services["service"].clone();
        s.name = "Win-back".into();
        s.occasion = OccasionKind::Journey;
        s.template = "winback".into();
        s.value = Money(2000);
        s.interval_months = None;
        s.interval_km = None;
        s.stage = Some(AnyStage::Customer(JourneyStage::Lapsed));
        self.set.brand.services.insert("winback".into(), s);
        self.set
            .tenants
            .get_mut(&t1())
            .expect("t1")
            .services
            .insert(
                "winback".into(),
                TenantService {
                    opt_in: true,
                    monthly_budget: Money(10_000),
                },
            );
        self.set.fingerprint ^= 2;
        self
    }

    fn visit(&self, vin: &str, on: Date) {
        self.visit_of(vin, "K1", on, "Inspektion");
    }

    fn visit_of(&self, vin: &str, customer: &str, on: Date, kind: &str) {
        let store = self.store();
        let id = store.next_import_id().expect("id");
        let mut tx = store.begin_import(id).expect("begin");
        tx.put_visit(&ServiceVisit {
            vin: vin.into(),
            customer_no: customer.into(),
            date: on,
            km: None,
            kind: kind.into(),
            value: None,
            source: "besuche.csv:2".into(),
        })
        .expect("visit");
        let report = ImportReport::new(id, t1(), "besuche.csv", format!("hash-{id}"), Timestamp(0));
        tx.commit(&report).expect("commit");
    }
}

#[test]
fn entering_a_stage_is_one_occasion_per_entry() {
    let w = World::new().with_winback();
    // Last seen 2023-01-10: lapsed (37 months) on 2026-03-02.
    w.import(
        &[person("K1")],
        &[serviced("V1", "K1", d(2023, 1, 10))],
        &[],
    );
    let keys = |r: &PlanReport| -> Vec<String> {
        r.planned
            .iter()
            .flat_map(|m| m.occasions.iter().map(|o| o.key.clone()))
            .collect()
    };
    // Lapsed when first seen: no entry (the customer was there before we
    // saw them; a first run over old data sends no win-back to everyone).
    let first = w.plan(today(), Mode::Commit);
    assert!(first.planned.is_empty(), "{:?}", keys(&first));
    // Back in the workshop, then 36 months without a visit: an entry.
    w.visit("V1", d(2026, 3, 4));
    let back = w.plan(d(2026, 3, 4), Mode::Commit);
    assert!(back.planned.is_empty());
    let again = w.plan(d(2029, 3, 5), Mode::Commit);
    assert_eq!(keys(&again), vec!["winback:K1:lapsed:2029-03-05"]);
    assert_eq!(
        texts(&again.planned[0].why, Step::Occasion),
        vec!["winback due 2029-03-05: entered journey stage lapsed on 2029-03-05 (was active)"]
    );
    // The next days: still the same entry, planned already.
    let next = w.plan(d(2029, 3, 6), Mode::Commit);
    assert!(next.planned.is_empty(), "{:?}", keys(&next));
    assert_eq!(next.already_planned, 1);
    let stored = w.store().journey("K1").expect("read").expect("journey");
    let customer: Vec<(Date, Option<JourneyStage>, JourneyStage)> = stored
        .transitions
        .iter()
        .filter_map(|t| match t {
            JourneyTransition::Customer { day, from, to } => Some((*day, *from, *to)),
            JourneyTransition::Vehicle { .. } => None,
        })
        .collect();
    assert_eq!(
        customer,
        vec![
            (d(2026, 3, 2), None, JourneyStage::Lapsed),
            (
                d(2026, 3, 4),
                Some(JourneyStage::Lapsed),
                JourneyStage::Active
            ),
            (
                d(2029, 3, 5),
                Some(JourneyStage::Active),
                JourneyStage::Lapsed
            ),
        ]
    );
    assert_eq!(stored.stage, JourneyStage::Lapsed);
}

#[test]
fn a_dry_run_derives_journeys_and_stores_none() {
    let w = World::new().with_winback();
    w.import(
        &[person("K1")],
        &[serviced("V1", "K1", d(2023, 1, 10))],
        &[],
    );
    let dry = w.plan(today(), Mode::DryRun);
    assert!(dry.planned.is_empty());
    assert_eq!(w.store().journey("K1").expect("read"), None);
    // Seen (lapsed), back (active), then lapsed again in a dry run: the
    // entry is planned and nothing of it stored.
    w.plan(today(), Mode::Commit);
    w.visit("V1", d(2026, 3, 4));
    w.plan(d(2026, 3, 4), Mode::Commit);
    let dry = w.plan(d(2029, 3, 5), Mode::DryRun);
    assert_eq!(dry.planned.len(), 1);
    let stored = w.store().journey("K1").expect("read").expect("journey");
    assert_eq!(stored.stage, JourneyStage::Active);
}

#[test]
fn campaign_segment_keys_must_all_match() {
    let both = seg(|s| {
        s.postcode_prefixes = vec!["80".into()];
        s.models = vec!["Delta".into()];
    });
    let r = recipient(
        person("K1"),
        vec![registered("V1", "Fjord", d(2020, 5, 1))],
        vec![],
    );
    assert_eq!(matches(&r, &both), None);
    let both = seg(|s| {
        s.postcode_prefixes = vec!["80".into()];
        s.models = vec!["fjord".into()];
    });
    assert_eq!(
        matches(&r, &both),
        Some((
            Some("V1".to_string()),
            "postcode 80807 starts with 80, Nordwagen Fjord registered 2020-05-01 (6 years)"
                .to_string()
        ))
    );
}

#[test]
fn a_campaign_occasion_carries_its_segment_match() {
    let mut fix = Fix::new().on(d(2026, 11, 10));
    fix.service("winter").segment = Some(seg(|s| s.models = vec!["fjord".into()]));
    let r = recipient(
        person("K1"),
        vec![registered("V1", "Fjord", d(2020, 5, 1))],
        vec![],
    );
    let found = fix.find(&r, "winter");
    let o = only(&found);
    assert_eq!(o.vin.as_deref(), Some("V1"));
    assert_eq!(
        o.reason,
        "campaign 2026-11-30 to 2027-01-31; Nordwagen Fjord registered 2020-05-01 (6 years)"
    );
    let other = recipient(
        person("K2"),
        vec![registered("V2", "Kanto", d(2020, 5, 1))],
        vec![],
    );
    assert!(fix.find(&other, "winter").is_empty());
}

#[test]
fn window_takes_from_today_to_the_horizon() {
    let w = Window {
        today: today(),
        horizon_days: 14,
    };
    // Send day = due - lead; it must be on or before 2026-03-16.
    assert!(w.takes(today(), 0));
    assert!(w.takes(today(), 21));
    assert!(!w.takes(today().add_days(-1), 0), "in the past");
    assert!(w.takes(d(2026, 4, 6), 21), "2026-04-06 - 21 = 2026-03-16");
    assert!(!w.takes(d(2026, 4, 7), 21), "2026-04-07 - 21 = 2026-03-17");
    assert!(w.takes(d(2026, 3, 16), 0));
    assert!(!w.takes(d(2026, 3, 17), 0));
}

#[test]
fn a_learning_service_finds_its_occasions_early_enough_for_every_lead_of_its_grid() {
    // Due 2026-04-10: with 21 days sent from 2026-03-20 (beyond the
    // horizon); learning, the grid reaches 42 days: from 2026-02-27.
    let mut fix = Fix::new();
    let r = recipient(
        person("K1"),
        vec![serviced("V1", "K1", d(2025, 4, 10))],
        vec![],
    );
    assert!(fix.find(&r, "service").is_empty());
    fix.service("service").learn = true;
    assert_eq!(
        fix.brand.services["service"].lead_grid(),
        [14, 21, 28, 35, 42]
    );
    assert_eq!(only(&fix.find(&r, "service")).due, d(2026, 4, 10));
}

// ----- step 1: consent and channel ----------------------------------------------------

/// K1 with a service due 2026-03-20.
fn due_customer(c: Customer, consents: Vec<Consent>) -> Recipient {
    let no = c.customer_no.clone();
    recipient(c, vec![serviced("V1", &no, d(2025, 3, 20))], consents)
}

#[test]
fn email_needs_consent_post_does_not() {
    let fix = Fix::new();
    let h = TestHistory::default();
    let (drafts, out) = fix.shape(&due_customer(emailed("K1"), vec![]), &h);
    assert!(out.dropped.is_empty());
    let dr = only(&drafts);
    assert_eq!(dr.channel, Channel::Post);
    assert_eq!(dr.channels, vec![Channel::Post]);
    assert_eq!(
        texts(&dr.why, Step::Channel),
        vec!["post (post: allowed, no objection on record; not email: no consent on record)"]
    );

    let (drafts, _) = fix.shape(&due_customer(emailed("K1"), vec![email_yes("K1")]), &h);
    let dr = only(&drafts);
    assert_eq!(dr.channel, Channel::Email);
    assert_eq!(dr.channels, vec![Channel::Email, Channel::Post]);
    assert_eq!(
        texts(&dr.why, Step::Channel),
        vec!["email (email: consent given 2025-01-01 (import:kunden.csv))"]
    );
    assert_eq!(
        dr.why[0].text,
        "service due 2026-03-20 for V1: 12 months after the service on 2025-03-20"
    );
}

#[test]
fn the_latest_consent_statement_wins() {
    let fix = Fix::new();
    let r = due_customer(
        emailed("K1"),
        vec![
            said("K1", Channel::Email, false, d(2025, 6, 1)),
            email_yes("K1"),
        ],
    );
    let (drafts, _) = fix.shape(&r, &TestHistory::default());
    assert_eq!(only(&drafts).channel, Channel::Post);
    assert_eq!(
        steps::channel_check(
            &r,
            Channel::Email,
            &fix.brand.services["service"],
            &fix.input()
        ),
        Err("email: consent withdrawn 2025-06-01 (import:kunden.csv)".to_string())
    );
}

#[test]
fn a_revoked_post_consent_drops_the_occasion_with_the_reason() {
    let fix = Fix::new();
    let r = due_customer(
        person("K1"),
        vec![said("K1", Channel::Post, false, d(2025, 6, 1))],
    );
    let (drafts, out) = fix.shape(&r, &TestHistory::default());
    assert!(drafts.is_empty());
    assert_eq!(
        reasons(&out.dropped),
        vec![(
            "K1",
            Step::Channel,
            "email: no email address; post: consent withdrawn 2025-06-01 (import:kunden.csv)"
        )]
    );
    assert_eq!(out.dropped[0].occasion.key, "service:V1:2025-03-20");
}

/// K1 whose only occasion is a warranty ending on 2026-04-10.
fn warranty_customer(c: Customer, consents: Vec<Consent>) -> Recipient {
    let no = c.customer_no.clone();
    let v = Vehicle {
        warranty_end: Some(d(2026, 4, 10)),
        ..car("V1", &no)
    };
    recipient(c, vec![v], consents)
}

#[test]
fn a_mandatory_channel_is_the_only_one() {
    let fix = Fix::new();
    let h = TestHistory::default();
    let (drafts, _) = fix.shape(&warranty_customer(emailed("K1"), vec![email_yes("K1")]), &h);
    let dr = only(&drafts);
    assert_eq!(dr.channel, Channel::Post);
    assert_eq!(dr.channels, vec![Channel::Post]);
    assert_eq!(
        texts(&dr.why, Step::Channel),
        vec!["post (post: allowed, no objection on record; mandatory for the service)"]
    );

    let no_post = warranty_customer(
        emailed("K1"),
        vec![
            email_yes("K1"),
            said("K1", Channel::Post, false, d(2025, 6, 1)),
        ],
    );
    let (drafts, out) = fix.shape(&no_post, &h);
    assert!(drafts.is_empty());
    assert_eq!(
        reasons(&out.dropped),
        vec![(
            "K1",
            Step::Channel,
            "the service must go by post: post: consent withdrawn 2025-06-01 (import:kunden.csv)"
        )]
    );
}

#[test]
fn a_forbidden_channel_is_never_used() {
    let mut fix = Fix::new();
    fix.service("birthday").channels = vec![Channel::Phone, Channel::Email];
    fix.policy.channels.enabled.push(Channel::Phone);
    let c = Customer {
        birth_date: Some(d(1980, 3, 5)),
        phone: Some("+49 89 1234".into()),
        ..emailed("K1")
    };
    let r = recipient(
        c,
        vec![],
        vec![
            email_yes("K1"),
            said("K1", Channel::Phone, true, d(2025, 1, 1)),
        ],
    );
    let (drafts, _) = fix.shape(&r, &TestHistory::default());
    let dr = only(&drafts);
    assert_eq!(dr.channel, Channel::Email);
    assert_eq!(
        texts(&dr.why, Step::Channel),
        vec!["email (email: consent given 2025-01-01 (import:kunden.csv); not phone: forbidden for this service)"]
    );
}

#[test]
fn a_channel_the_dealer_does_not_use_is_skipped() {
    let mut fix = Fix::new();
    fix.policy.channels.enabled = vec![Channel::Post];
    let (drafts, _) = fix.shape(
        &due_customer(emailed("K1"), vec![email_yes("K1")]),
        &TestHistory::default(),
    );
    let dr = only(&drafts);
    assert_eq!(dr.channel, Channel::Post);
    assert_eq!(
        texts(&dr.why, Step::Channel),
        vec!["post (post: allowed, no objection on record; not email: not used by this dealer)"]
    );
}

#[test]
fn an_address_that_hard_bounced_is_not_planned_for_email_again() {
    let mut fix = Fix::new();
    fix.bad_addresses.insert(
        "k1@example.org".into(),
        "hard bounce 5.1.1: user unknown".into(),
    );
    let (drafts, _) = fix.shape(
        &due_customer(emailed("K1"), vec![email_yes("K1")]),
        &TestHistory::default(),
    );
    let dr = only(&drafts);
    assert_eq!(dr.channel, Channel::Post);
    assert_eq!(
        texts(&dr.why, Step::Channel),
        vec!["post (post: allowed, no objection on record; not email: k1@example.org is known to be wrong (hard bounce 5.1.1: user unknown))"]
    );
}

#[test]
fn suppressed_customers_are_dropped_and_suppressed_emails_go_by_post() {
    let mut fix = Fix::new();
    fix.policy.suppress.customers = vec!["K1".into()];
    let (drafts, out) = fix.shape(
        &due_customer(emailed("K1"), vec![email_yes("K1")]),
        &TestHistory::default(),
    );
    assert!(drafts.is_empty());
    assert_eq!(
        reasons(&out.dropped),
        vec![(
            "K1",
            Step::Channel,
            "customer is on the dealer's suppression list"
        )]
    );

    // Customer numbers merged into the recipient count as well.
    let mut merged = due_customer(emailed("K9"), vec![]);
    merged.merged.push("K1".into());
    let (drafts, out) = fix.shape(&merged, &TestHistory::default());
    assert!(drafts.is_empty());
    assert_eq!(out.dropped.len(), 1);

    let mut fix = Fix::new();
    fix.policy.suppress.emails = vec!["K1@EXAMPLE.ORG".into()];
    let (drafts, out) = fix.shape(
        &due_customer(emailed("K1"), vec![email_yes("K1")]),
        &TestHistory::default(),
    );
    assert!(out.dropped.is_empty());
    let dr = only(&drafts);
    assert_eq!(dr.channel, Channel::Post);
    assert_eq!(
        texts(&dr.why, Step::Channel),
        vec!["post (post: allowed, no objection on record; not email: k1@example.org is on the dealer's suppression list)"]
    );
}

#[test]
fn without_any_address_the_occasion_is_dropped() {
    let fix = Fix::new();
    let mut c = person("K1");
    c.address.street = String::new();
    let (drafts, out) = fix.shape(&due_customer(c, vec![]), &TestHistory::default());
    assert!(drafts.is_empty());
    assert_eq!(
        reasons(&out.dropped),
        vec![(
            "K1",
            Step::Channel,
            "email: no email address; post: no complete postal address"
        )]
    );
}

// ----- steps 2 and 3: bundling and consolidation -------------------------------------------

/// K1 (email consent) with V1: service due 2026-03-20, first registered
/// 2023-03-25, so the first inspection is due 2026-03-25.
fn service_and_inspection() -> Recipient {
    let v = Vehicle {
        first_registration: Some(d(2023, 3, 25)),
        ..serviced("V1", "K1", d(2025, 3, 20))
    };
    recipient(emailed("K1"), vec![v], vec![email_yes("K1")])
}

#[test]
fn two_occasions_within_the_window_make_one_message() {
    let fix = Fix::new();
    let (drafts, out) = fix.shape(&service_and_inspection(), &TestHistory::default());
    assert_eq!(out.occasions_found, 2);
    let dr = only(&drafts);
    let keys: Vec<&str> = dr.occasions.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, vec!["service:V1:2025-03-20", "hu:V1:2026-03-25"]);
    assert_eq!(dr.channel, Channel::Email);
    // The more valuable service leads; the values add up: 38 + 25.
    assert_eq!(dr.service, "service");
    assert_eq!(dr.value, 6300);
    // Sent from today (both leads reach back before it) to the day before
    // the first due date.
    assert_eq!(
        (dr.earliest, dr.latest, dr.day),
        (today(), d(2026, 3, 19), today())
    );
    assert_eq!(
        texts(&dr.why, Step::Bundling),
        vec!["hu due 2026-03-25 joins service due 2026-03-20: due within 30 days"]
    );
    // The why names both occasions.
    assert_eq!(
        texts(&dr.why, Step::Occasion),
        vec![
            "service due 2026-03-20 for V1: 12 months after the service on 2025-03-20",
            "hu due 2026-03-25 for V1: first inspection 36 months after registration on 2023-03-25",
        ]
    );
}

#[test]
fn two_occasions_outside_the_window_make_two_messages() {
    let mut fix = Fix::new();
    fix.brand.planning.bundling_window_days = 3;
    let (drafts, _) = fix.shape(&service_and_inspection(), &TestHistory::default());
    assert_eq!(drafts.len(), 2);
    // The service (38.00) is capped first and goes today; the inspection
    // keeps the 14-day gap: 2026-03-16, before its latest day 2026-03-24.
    assert_eq!(drafts[0].service, "service");
    assert_eq!(drafts[0].day, today());
    assert_eq!(drafts[1].service, "hu");
    assert_eq!(drafts[1].day, d(2026, 3, 16));
    assert_eq!(
        texts(&drafts[1].why, Step::Capping),
        vec!["moved from 2026-03-02 to 2026-03-16: contacted on 2026-03-02, minimum gap 14 days"]
    );
    // A window of 0 never bundles.
    fix.brand.planning.bundling_window_days = 0;
    let (drafts, _) = fix.shape(&service_and_inspection(), &TestHistory::default());
    assert_eq!(drafts.len(), 2);
}

#[test]
fn a_bundle_goes_on_a_channel_every_occasion_allows() {
    // Service (email or post) due 2026-03-20 and warranty (post only)
    // ending 2026-04-10, 21 days later.
    let fix = Fix::new();
    let v = Vehicle {
        warranty_end: Some(d(2026, 4, 10)),
        ..serviced("V1", "K1", d(2025, 3, 20))
    };
    let r = recipient(emailed("K1"), vec![v], vec![email_yes("K1")]);
    let (drafts, _) = fix.shape(&r, &TestHistory::default());
    let dr = only(&drafts);
    assert_eq!(dr.occasions.len(), 2);
    assert_eq!(dr.channel, Channel::Post);
    assert_eq!(dr.channels, vec![Channel::Post]);
    assert_eq!(dr.service, "warranty", "the warranty (60.00) leads");
    assert_eq!(dr.value, 9800);
    assert_eq!(dr.latest, d(2026, 3, 19));
    assert!(
        texts(&dr.why, Step::Channel)
            .contains(&"post instead of email: the channel both occasions allow"),
        "{:#?}",
        dr.why
    );
}

#[test]
fn occasions_without_a_shared_channel_are_not_bundled() {
    // Birthday (email only) on 2026-03-10 and warranty (post only) on
    // 2026-04-05: 26 days apart but no channel in common.
    let mut fix = Fix::new();
    fix.brand.contact.min_gap_days = 0;
    let v = Vehicle {
        warranty_end: Some(d(2026, 4, 5)),
        ..car("V1", "K1")
    };
    let c = Customer {
        birth_date: Some(d(1980, 3, 10)),
        ..emailed("K1")
    };
    let r = recipient(c, vec![v], vec![email_yes("K1")]);
    let (drafts, out) = fix.shape(&r, &TestHistory::default());
    assert!(out.dropped.is_empty());
    let mut got: Vec<(&str, Vec<Channel>)> = drafts
        .iter()
        .map(|x| (x.service.as_str(), x.channels.clone()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("birthday", vec![Channel::Email]),
            ("warranty", vec![Channel::Post])
        ]
    );
}

/// C1, a company without email, holding 40 vehicles all serviced on
/// 2025-03-20: 40 service occasions due 2026-03-20.
fn fleet() -> Recipient {
    let vehicles = (0..40)
        .map(|i| serviced(&format!("WNW00000000000{i:03}"), "C1", d(2025, 3, 20)))
        .collect();
    recipient(company("C1"), vehicles, vec![])
}

#[test]
fn a_fleet_of_40_vehicles_gets_one_letter() {
    let mut fix = Fix::new();
    // No bundling: consolidation alone joins the holder's vehicles.
    fix.brand.planning.bundling_window_days = 0;
    let rs = vec![fleet()];
    let out = fix.plan(&rs, &TestHistory::default());
    assert_eq!(out.occasions_found, 40);
    assert!(out.dropped.is_empty(), "{:#?}", out.dropped);
    let m = only(&out.drafts);
    assert_eq!(m.occasions.len(), 40);
    assert_eq!(m.channel, Channel::Post);
    assert_eq!(m.value, 40 * 3800);
    assert_eq!(m.cost, 95, "one letter's postage");
    let cons = texts(&m.why, Step::Consolidation);
    assert_eq!(cons.len(), 40, "39 joins and the summary");
    assert_eq!(
        cons[0],
        "service due 2026-03-20 joins service due 2026-03-20"
    );
    let summary = cons[39];
    assert!(
        summary.starts_with(
            "one message for 40 vehicles of this holder: WNW00000000000000, WNW00000000000001, "
        ),
        "{summary}"
    );
    assert!(summary.ends_with("WNW00000000000039"), "{summary}");

    // With the brand's window the same 40 are bundled instead; the why still
    // names the 40 vehicles.
    let fix = Fix::new();
    let out = fix.plan(&rs, &TestHistory::default());
    let m = only(&out.drafts);
    assert_eq!(m.occasions.len(), 40);
    assert_eq!(texts(&m.why, Step::Bundling).len(), 39);
    assert!(texts(&m.why, Step::Consolidation)
        .iter()
        .any(|t| t.starts_with("one message for 40 vehicles of this holder")));
}

#[test]
fn a_holders_vehicles_with_different_services_stay_apart() {
    // V1 service due 2026-03-20, V2 inspection due 2026-04-10: no bundling
    // (window 0), and consolidation only joins the same service.
    let mut fix = Fix::new();
    fix.brand.planning.bundling_window_days = 0;
    let v2 = registered("V2", "Fjord", d(2023, 4, 10));
    let r = recipient(
        company("C1"),
        vec![
            serviced("V1", "C1", d(2025, 3, 20)),
            Vehicle {
                customer_no: "C1".into(),
                ..v2
            },
        ],
        vec![],
    );
    let (drafts, _) = fix.shape(&r, &TestHistory::default());
    assert_eq!(drafts.len(), 2);
}

// ----- step 4: frequency capping ---------------------------------------------------------

#[test]
fn capping_keeps_the_minimum_gap_to_earlier_contacts() {
    let fix = Fix::new();
    let h = TestHistory::default().contact("K1", d(2026, 2, 20), MessageStatus::Sent);
    let (drafts, _) = fix.shape(&post_customer(1), &h);
    // 2026-02-20 + 14 days = 2026-03-06.
    let dr = only(&drafts);
    assert_eq!(dr.day, d(2026, 3, 6));
    assert_eq!(
        texts(&dr.why, Step::Capping),
        vec!["moved from 2026-03-02 to 2026-03-06: contacted on 2026-02-20, minimum gap 14 days"]
    );
}

#[test]
fn capping_allows_at_most_n_contacts_per_rolling_period() {
    let fix = Fix::new();
    let h = TestHistory::default()
        .contact("K1", d(2025, 12, 10), MessageStatus::Sent)
        .contact("K1", d(2026, 1, 10), MessageStatus::Sent)
        .contact("K1", d(2026, 2, 10), MessageStatus::Queued);
    let (drafts, _) = fix.shape(&post_customer(1), &h);
    // Three contacts since 2025-12-10: a fourth fits once no 90-day window
    // holds all four, 90 days after 2025-12-10 (31 + 31 + 28): 2026-03-10.
    let dr = only(&drafts);
    assert_eq!(dr.day, d(2026, 3, 10));
    assert_eq!(
        texts(&dr.why, Step::Capping),
        vec!["moved from 2026-03-02 to 2026-03-10: at most 3 contacts in 90 days; contacted on 2025-12-10, 2026-01-10, 2026-02-10"]
    );
}

#[test]
fn cancelled_and_failed_messages_are_no_contacts() {
    let fix = Fix::new();
    let h = TestHistory::default()
        .contact("K1", d(2026, 2, 25), MessageStatus::Cancelled)
        .contact("K1", d(2026, 2, 26), MessageStatus::Failed)
        .contact("K2", d(2026, 2, 26), MessageStatus::Sent);
    let (drafts, _) = fix.shape(&post_customer(1), &h);
    let dr = only(&drafts);
    assert_eq!(dr.day, today());
    assert_eq!(
        texts(&dr.why, Step::Capping),
        vec!["0 other contact(s) within 90 days, at most 3 allowed"]
    );
}

#[test]
fn capping_drops_a_message_when_no_day_fits() {
    // Due 2026-03-10: useful until 2026-03-09, but 2026-02-25 + 14 days is
    // 2026-03-11.
    let fix = Fix::new();
    let h = TestHistory::default().contact("K1", d(2026, 2, 25), MessageStatus::Planned);
    let r = recipient(
        person("K1"),
        vec![serviced("V1", "K1", d(2025, 3, 10))],
        vec![],
    );
    let (drafts, out) = fix.shape(&r, &h);
    assert!(drafts.is_empty());
    assert_eq!(
        reasons(&out.dropped),
        vec![(
            "K1",
            Step::Capping,
            "no day from 2026-03-02 to 2026-03-09 within the contact rules: contacted on 2026-02-25, minimum gap 14 days"
        )]
    );
}

#[test]
fn cap_ok_checks_every_rolling_window() {
    let mut brand = Fix::new().brand;
    brand.contact.max_contacts = 2;
    brand.contact.period_days = 30;
    brand.contact.min_gap_days = 0;
    let contacts = [d(2026, 3, 1), d(2026, 3, 10)];
    // A third contact fits once no 30-day window holds all three:
    // 2026-03-01 + 30 = 2026-03-31; before, 2026-03-10 - 30 = 2026-02-08.
    assert!(!steps::cap_ok(&contacts, d(2026, 3, 30), &brand));
    assert!(steps::cap_ok(&contacts, d(2026, 3, 31), &brand));
    assert!(!steps::cap_ok(&contacts, d(2026, 2, 9), &brand));
    assert!(steps::cap_ok(&contacts, d(2026, 2, 8), &brand));
    assert!(!steps::cap_ok(&contacts, d(2026, 3, 5), &brand));
    brand.contact.max_contacts = 3;
    brand.contact.min_gap_days = 5;
    // Gap: |2026-03-05 - 2026-03-01| = 4 < 5; 2026-03-06 and -03-10: 5 and 4.
    assert!(!steps::cap_ok(&contacts, d(2026, 3, 5), &brand));
    assert!(!steps::cap_ok(&contacts, d(2026, 3, 6), &brand));
    assert!(steps::cap_ok(&contacts, d(2026, 3, 15), &brand));
}

// ----- next best offer -------------------------------------------------------------------

/// K1 by email: a birthday on 2026-03-04 (2.00, must go by then) and an
/// inspection recorded for 2026-03-10 (25.00, by 2026-03-09): 14 days
/// apart at least, only one can go. Not bundled (window 0).
fn birthday_and_inspection(fix: &mut Fix) -> Recipient {
    fix.brand.planning.bundling_window_days = 0;
    let c = Customer {
        birth_date: Some(d(1980, 3, 4)),
        ..emailed("K1")
    };
    let v = Vehicle {
        next_inspection: Some(d(2026, 3, 10)),
        ..car("V1", "K1")
    };
    recipient(c, vec![v], vec![email_yes("K1")])
}

#[test]
fn next_best_offer_keeps_the_better_offer_and_says_by_how_much() {
    let mut fix = Fix::new();
    let r = birthday_and_inspection(&mut fix);
    let (drafts, out) = fix.shape(&r, &TestHistory::default());
    // Earliest deadline first would send the birthday and lose the
    // inspection; ranked by expected return the inspection goes.
    let dr = only(&drafts);
    assert_eq!(dr.service, "hu");
    assert_eq!(
        texts(&dr.why, Step::Capping)[0],
        "next best offer: chose hu over birthday: 24.98 € vs 1.98 € expected (policy value)"
    );
    assert_eq!(
        reasons(&out.dropped),
        vec![(
            "K1",
            Step::Capping,
            "next best offer: chose hu over birthday: 24.98 € vs 1.98 € expected (policy value); \
             the contact rules allow only one: no day from 2026-03-02 to 2026-03-04 within the \
             contact rules: contacted on 2026-03-02, minimum gap 14 days"
        )]
    );
}

/// With learning, the policy's value is scaled by what was learned: a
/// birthday greeting whose learned lead answers four times as often as
/// the policy's beats the inspection it loses to on policy values.
#[test]
fn next_best_offer_weighs_an_offer_by_what_learning_found() {
    use crate::learning::{compute, Counts, DealerData};
    use touchpoint_common::learning::{Arm, LearnedState};
    let mut fix = Fix::new();
    let r = birthday_and_inspection(&mut fix);
    let b = fix.service("birthday");
    b.value = Money(1000);
    b.learn = true;
    b.explore_percent = 0;
    // Three days ahead, a lead step of one day: the grid is 1 to 6 days.
    b.lead_days_step = Some(1);
    let policy_lead = b.lead_days;
    let longer = *b
        .lead_grid()
        .iter()
        .find(|&&l| l > policy_lead)
        .expect("a longer lead on the grid");
    let mut one = DealerData::default();
    for (lead, responses) in [(policy_lead, 10), (longer, 40)] {
        one.cells.insert(
            ("birthday".into(), Channel::Email, Arm::Lead(lead)),
            Counts {
                sent: 200,
                responses,
                ..Counts::default()
            },
        );
        // A control baseline of 1 %: the increments are 4 % and 19 %.
        one.baseline.insert(
            ("birthday".into(), lead),
            Counts {
                control: 100,
                control_responses: 1,
                ..Counts::default()
            },
        );
    }
    fix.leads = Learned::new(compute(&fix.brand, &vec![one; 5], &LearnedState::default()));
    let (factor, _) = fix
        .leads
        .value_factor("birthday", Channel::Email)
        .expect("learned");
    // About 4.7 times the policy's increment: held at four.
    assert_eq!(factor, 4.0);
    let (drafts, _) = fix.shape(&r, &TestHistory::default());
    let dr = only(&drafts);
    assert_eq!(dr.service, "birthday");
    let why = &texts(&dr.why, Step::Capping)[0];
    assert!(
        why.starts_with("next best offer: chose birthday over hu: ")
            && why.contains("€ expected (birthday: learned ")
            && why.contains(&format!("at {longer} days vs ")),
        "{why}"
    );
}

#[test]
fn next_best_offer_ranks_by_value_minus_cost() {
    // The birthday worth 30.00 by email beats the inspection worth 30.50
    // by post (the customer has no email consent for it: forbidden).
    let mut fix = Fix::new();
    let r = birthday_and_inspection(&mut fix);
    fix.service("birthday").value = Money(3000);
    fix.service("hu").value = Money(3050);
    fix.service("hu").forbidden_channels = vec![Channel::Email];
    let (drafts, out) = fix.shape(&r, &TestHistory::default());
    let dr = only(&drafts);
    assert_eq!(
        (dr.service.as_str(), dr.channel),
        ("birthday", Channel::Email)
    );
    assert_eq!(
        texts(&dr.why, Step::Capping)[0],
        "next best offer: chose birthday over hu: 29.98 € vs 29.55 € expected (policy value)"
    );
    assert_eq!(out.dropped.len(), 1);
}

#[test]
fn offers_that_all_fit_are_all_kept_without_ranking() {
    let mut fix = Fix::new();
    let r = birthday_and_inspection(&mut fix);
    fix.brand.contact.min_gap_days = 0;
    let (drafts, out) = fix.shape(&r, &TestHistory::default());
    assert_eq!(drafts.len(), 2);
    assert!(out.dropped.is_empty());
    for dr in &drafts {
        assert!(texts(&dr.why, Step::Capping)
            .iter()
            .all(|t| !t.starts_with("next best offer")));
    }
}

#[test]
fn an_offer_below_the_minimum_value_takes_no_contact() {
    // The birthday (0.50) is below the brand's 1.00: it is dropped before
    // capping, so the inspection keeps its day instead of losing it to an
    // offer the budget step would drop anyway.
    let mut fix = Fix::new();
    let r = birthday_and_inspection(&mut fix);
    fix.service("birthday").value = Money(50);
    let (kept, out) = fix.budget(std::slice::from_ref(&r), &TestHistory::default());
    let dr = only(&kept);
    assert_eq!((dr.service.as_str(), dr.day), ("hu", today()));
    assert_eq!(
        reasons(&out.dropped),
        vec![(
            "K1",
            Step::Budget,
            "expected value 0.50 is below the brand's minimum of 1.00"
        )]
    );
}

// ----- step 5: budget --------------------------------------------------------------------

#[test]
fn an_exactly_exhausted_budget_plans_three_and_drops_the_fourth() {
    let mut fix = Fix::new();
    // 3 letters × 0.95.
    fix.policy
        .services
        .get_mut("service")
        .expect("service")
        .monthly_budget = Money(285);
    let rs: Vec<Recipient> = (1..=4).map(post_customer).collect();
    let (kept, out) = fix.budget(&rs, &TestHistory::default());
    let who: Vec<usize> = kept.iter().map(|x| x.recipient).collect();
    assert_eq!(who, vec![0, 1, 2]);
    assert!(kept.iter().all(|x| x.cost == 95));
    assert_eq!(
        texts(&kept[2].why, Step::Budget),
        vec!["0.95 of 2.85 service budget for 2026-03 reserved, 0.00 left (value 38.00)"]
    );
    assert_eq!(
        reasons(&out.dropped),
        vec![(
            "K4",
            Step::Budget,
            "service budget for 2026-03 has 0.00 left of 2.85, the message costs 0.95 (value 38.00)"
        )]
    );
    // All the way through: three planned.
    assert_eq!(fix.plan(&rs, &TestHistory::default()).drafts.len(), 3);
}

#[test]
fn the_budget_counts_what_earlier_runs_committed() {
    let mut fix = Fix::new();
    fix.policy
        .services
        .get_mut("service")
        .expect("service")
        .monthly_budget = Money(285);
    let mut h = TestHistory::default();
    h.ledger.insert((202603, "service".into()), 190);
    let rs: Vec<Recipient> = (1..=2).map(post_customer).collect();
    let (kept, out) = fix.budget(&rs, &h);
    assert_eq!(kept.len(), 1);
    assert_eq!(
        reasons(&out.dropped),
        vec![(
            "K2",
            Step::Budget,
            "service budget for 2026-03 has 0.00 left of 2.85, the message costs 0.95 (value 38.00)"
        )]
    );
}

#[test]
fn a_short_budget_goes_to_the_highest_value_first() {
    let mut fix = Fix::new();
    fix.policy
        .services
        .get_mut("service")
        .expect("service")
        .monthly_budget = Money(95);
    // K1: a service alone (38.00). K2: service and inspection bundled
    // (63.00), by post.
    let v2 = Vehicle {
        first_registration: Some(d(2023, 3, 25)),
        ..serviced("V2", "K2", d(2025, 3, 20))
    };
    let rs = vec![post_customer(1), recipient(person("K2"), vec![v2], vec![])];
    let (kept, out) = fix.budget(&rs, &TestHistory::default());
    let dr = only(&kept);
    assert_eq!((dr.recipient, dr.value), (1, 6300));
    assert_eq!(
        reasons(&out.dropped),
        vec![(
            "K1",
            Step::Budget,
            "service budget for 2026-03 has 0.00 left of 0.95, the message costs 0.95 (value 38.00)"
        )]
    );
}

#[test]
fn a_message_below_the_minimum_value_is_dropped() {
    let mut fix = Fix::new();
    fix.service("birthday").value = Money(50);
    let c = Customer {
        birth_date: Some(d(1980, 3, 10)),
        ..emailed("K1")
    };
    let rs = vec![recipient(c, vec![], vec![email_yes("K1")])];
    let (kept, out) = fix.budget(&rs, &TestHistory::default());
    assert!(kept.is_empty());
    assert_eq!(
        reasons(&out.dropped),
        vec![(
            "K1",
            Step::Budget,
            "expected value 0.50 is below the brand's minimum of 1.00"
        )]
    );
}

// ----- step 6: send time -------------------------------------------------------------------

fn send_whys(out: &Outcome) -> Vec<&str> {
    out.drafts
        .iter()
        .flat_map(|x| texts(&x.why, Step::SendTime))
        .collect()
}

#[test]
fn nothing_goes_out_on_a_sunday() {
    let fix = Fix::new().on(d(2026, 3, 1));
    let out = fix.plan(&[post_customer(1)], &TestHistory::default());
    assert_eq!(only(&out.drafts).day, d(2026, 3, 2));
    assert_eq!(
        send_whys(&out),
        vec!["2026-03-02 09:45 (from 2026-03-01: 2026-03-01 is a quiet day (sun)); window mon,tue,wed,thu,fri 09:00-17:00"]
    );
}

#[test]
fn nothing_goes_out_on_a_holiday() {
    let mut fix = Fix::new();
    fix.brand.calendar.holidays.push(PolicyDate(today()));
    let out = fix.plan(&[post_customer(1)], &TestHistory::default());
    assert_eq!(only(&out.drafts).day, d(2026, 3, 3));
    assert_eq!(
        send_whys(&out),
        vec!["2026-03-03 09:45 (from 2026-03-02: 2026-03-02 is a public holiday); window mon,tue,wed,thu,fri 09:00-17:00"]
    );
}

#[test]
fn the_service_window_sets_the_weekdays() {
    let mut fix = Fix::new();
    fix.service("service").send_window.weekdays = vec![Weekday::Thu];
    let out = fix.plan(&[post_customer(1)], &TestHistory::default());
    assert_eq!(only(&out.drafts).day, d(2026, 3, 5));
    assert_eq!(
        send_whys(&out),
        vec!["2026-03-05 09:45 (from 2026-03-02: 2026-03-02 is outside the send window; 2026-03-03 is outside the send window; 2026-03-04 is outside the send window); window thu 09:00-17:00"]
    );
}

#[test]
fn the_daily_capacity_spreads_messages_over_days() {
    let mut fix = Fix::new();
    fix.policy.channels.daily_capacity = 2;
    let rs: Vec<Recipient> = (1..=5).map(email_customer).collect();
    let out = fix.plan(&rs, &TestHistory::default());
    let got: Vec<(usize, Date)> = out.drafts.iter().map(|x| (x.recipient, x.day)).collect();
    // Two a day.
    assert_eq!(
        got,
        vec![
            (0, d(2026, 3, 2)),
            (1, d(2026, 3, 2)),
            (2, d(2026, 3, 3)),
            (3, d(2026, 3, 3)),
            (4, d(2026, 3, 4)),
        ]
    );
    // Each in the window (09:00 to 17:00), on a five-minute step.
    assert!(
        out.times
            .iter()
            .all(|t| (540..1020).contains(t) && t % 5 == 0),
        "{:?}",
        out.times
    );
    let at = out.times[2];
    assert_eq!(
        texts(&out.drafts[2].why, Step::SendTime),
        vec![format!(
            "2026-03-03 {:02}:{:02} (from 2026-03-02: 2026-03-02 is full (2 messages)); window mon,tue,wed,thu,fri 09:00-17:00",
            at / 60,
            at % 60
        )]
    );

    // Messages planned earlier fill the days too.
    let mut h = TestHistory::default();
    h.load.insert(today(), 2);
    let out = fix.plan(&rs[..1], &h);
    assert_eq!(only(&out.drafts).day, d(2026, 3, 3));
}

/// Where in the window a message goes is its recipient's draw: a dealer
/// with one email a day sends it anywhere in the window, not at the
/// window's start, and the same message goes at the same time whatever
/// else the day holds.
/// (A running count of the day's messages put a small dealer's emails all
/// in the window's first hour or two: the fixed policy paid for those
/// hours, and learning saw the rest of the day only in exploring emails.)
#[test]
fn send_times_are_drawn_over_the_window_per_message() {
    let fix = Fix::new();
    // 400 recipients, each the only email of its day: 09:00 to 17:00 is
    // eight hours, so 50 an hour is even. The draw is a pure function of
    // (tenant, recipient, service), so the counts are the same in every
    // run; 25..=75 is about four standard deviations of a fair draw either
    // way.
    let mut per_hour = [0u32; 8];
    for n in 1..=400 {
        let out = fix.plan(&[email_customer(n)], &TestHistory::default());
        let at = out.times[0];
        assert!((540..1020).contains(&at) && at % 5 == 0, "K{n}: {at}");
        per_hour[usize::from(at / 60 - 9)] += 1;
    }
    assert!(
        per_hour.iter().all(|c| (25..=75).contains(c)),
        "{per_hour:?}"
    );

    // The day's load moves no message: K1 alone, and after 95 others.
    let alone = fix
        .plan(&[email_customer(1)], &TestHistory::default())
        .times;
    let mut h = TestHistory::default();
    h.load.insert(today(), 95);
    let rs: Vec<Recipient> = (1..=2).map(email_customer).collect();
    let busy = fix.plan(&rs, &h).times;
    assert_eq!(busy[0], alone[0]);
    assert_eq!(
        send_whys(&fix.plan(&rs, &h))[0],
        format!(
            "2026-03-02 {:02}:{:02}; window mon,tue,wed,thu,fri 09:00-17:00",
            alone[0] / 60,
            alone[0] % 60
        )
    );

    // A letter goes with its day's batch: within the window's first hour,
    // whatever the day's load, never late in the day when the batch has
    // closed.
    let letters: Vec<u16> = (1..=40)
        .flat_map(|n| fix.plan(&[post_customer(n)], &h).times)
        .collect();
    assert_eq!(letters.len(), 40);
    assert!(
        letters.iter().all(|t| (540..600).contains(t)),
        "{letters:?}"
    );
    // ... and spread over that hour too, not all at 09:00.
    assert!(
        letters.iter().filter(|t| **t >= 570).count() >= 10,
        "{letters:?}"
    );
}

#[test]
fn without_a_usable_day_the_message_is_dropped_and_its_budget_freed() {
    // Birthday on Friday 2026-03-06, 3 days lead: 2026-03-03 to 2026-03-06,
    // but the window only has Mondays.
    let mut fix = Fix::new();
    fix.service("birthday").send_window.weekdays = vec![Weekday::Mon];
    let c = Customer {
        birth_date: Some(d(1980, 3, 6)),
        ..emailed("K1")
    };
    let rs = vec![recipient(c, vec![], vec![email_yes("K1")])];
    let (out, spent) = fix.plan_spent(&rs, &TestHistory::default());
    assert!(out.drafts.is_empty());
    assert_eq!(
        reasons(&out.dropped),
        vec![(
            "K1",
            Step::SendTime,
            "no send day from 2026-03-03 to 2026-03-06: 2026-03-03 is outside the send window; 2026-03-04 is outside the send window; 2026-03-05 is outside the send window; 2026-03-06 is outside the send window"
        )]
    );
    assert_eq!(spent.get(&(202603, "birthday".to_string())), Some(&0));
}

#[test]
fn a_message_is_dropped_when_the_gap_and_the_window_leave_no_day() {
    // Due 2026-03-09 (Monday): useful until Sunday 2026-03-08. The gap to
    // 2026-02-21 allows 2026-03-07 at the earliest, a Saturday outside the
    // window; searching back from there, every weekday breaks the gap.
    let fix = Fix::new();
    let h = TestHistory::default().contact("K1", d(2026, 2, 21), MessageStatus::Sent);
    let r = recipient(
        person("K1"),
        vec![serviced("V1", "K1", d(2025, 3, 9))],
        vec![],
    );
    let out = fix.plan(std::slice::from_ref(&r), &h);
    assert!(out.drafts.is_empty());
    assert_eq!(out.dropped.len(), 1);
    assert_eq!(out.dropped[0].step, Step::SendTime);
    assert!(
        out.dropped[0]
            .reason
            .starts_with("no send day from 2026-03-02 to 2026-03-08: 2026-03-07 is outside the send window; 2026-03-08 is a quiet day (sun); 2026-03-06 breaks the contact rules"),
        "{}",
        out.dropped[0].reason
    );
    // Without the earlier contact, it goes today.
    let out = fix.plan(&[r], &TestHistory::default());
    assert_eq!(only(&out.drafts).day, today());
}

// ----- whole runs on a tenant store ------------------------------------------------------

struct World {
    _dir: tempfile::TempDir,
    stores: Stores,
    set: PolicySet,
    leads: Learned,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let stores = Stores::open(dir.path(), &StoresConfig::default()).expect("open stores");
        stores
            .central()
            .register_tenant(&t1(), "Autohaus Test")
            .expect("register");
        Self {
            _dir: dir,
            stores,
            set: policy_set(),
            leads: Learned::default(),
        }
    }

    fn store(&self) -> Arc<TenantStore> {
        self.stores.tenant(&t1()).expect("tenant store")
    }

    fn import(&self, customers: &[Customer], vehicles: &[Vehicle], consents: &[Consent]) {
        let store = self.store();
        let id = store.next_import_id().expect("import id");
        let mut tx = store.begin_import(id).expect("begin import");
        for c in customers {
            tx.put_customer(c).expect("customer");
        }
        for v in vehicles {
            tx.put_vehicle(v).expect("vehicle");
        }
        for c in consents {
            tx.put_consent(c).expect("consent");
        }
        let report = ImportReport::new(id, t1(), "kunden.csv", format!("hash-{id}"), Timestamp(0));
        tx.commit(&report).expect("commit import");
    }

    fn plan(&self, on: Date, mode: Mode) -> PlanReport {
        plan_tenant(&self.store(), &self.set, on, mode, &self.leads).expect("plan")
    }
}

/// K1 by email (consent), K2 by post, each with a service due 2026-03-20.
fn two_customers(w: &World) {
    w.import(
        &[emailed("K1"), person("K2")],
        &[
            serviced("V1", "K1", d(2025, 3, 20)),
            serviced("V2", "K2", d(2025, 3, 20)),
        ],
        &[email_yes("K1")],
    );
}

/// The ledger's reservations equal the costs of the messages not cancelled.
fn assert_ledger_matches(store: &TenantStore) {
    let mut want: BTreeMap<(u32, String), i64> = BTreeMap::new();
    for m in store.messages() {
        let m = m.expect("message");
        if m.status != MessageStatus::Cancelled {
            *want
                .entry((month_of(m.send_on), m.service.clone()))
                .or_default() += m.cost;
        }
    }
    let got: BTreeMap<(u32, String), i64> = store
        .ledger()
        .expect("ledger")
        .into_iter()
        .filter(|(_, _, e)| e.reserved != 0 || e.booked != 0)
        .map(|(month, service, e)| ((month, service), e.reserved))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_run_plans_and_writes_the_outbox() {
    let w = World::new();
    two_customers(&w);
    let report = w.plan(today(), Mode::Commit);
    assert!(!report.unchanged && !report.dry_run);
    assert_eq!((report.recipients, report.occasions_found), (2, 2));
    let got: Vec<(u64, &str, Channel, i64, Date, u16, &str)> = report
        .planned
        .iter()
        .map(|m| {
            (
                m.id,
                m.recipient.as_str(),
                m.channel,
                m.cost,
                m.send_on,
                m.send_at,
                m.message_id.as_str(),
            )
        })
        .collect();
    // Numbered in send order: K2's letter at 09:50 (in the window's first
    // hour, its batch's), K1's email at 12:45 (each time the message's own
    // draw, `send_times_are_drawn_over_the_window_per_message`).
    assert_eq!(
        got,
        vec![
            (
                1,
                "K2",
                Channel::Post,
                95,
                today(),
                590,
                "<tp.t1.1@autohaus-test.example>"
            ),
            (
                2,
                "K1",
                Channel::Email,
                2,
                today(),
                765,
                "<tp.t1.2@autohaus-test.example>"
            ),
        ]
    );
    let m = &report.planned[1];
    assert_eq!(
        (m.template.as_str(), m.status),
        ("service", MessageStatus::Planned)
    );
    assert_eq!(m.policy, w.set.fingerprint);
    let steps: Vec<Step> = m.why.iter().map(|x| x.step).collect();
    assert_eq!(
        steps,
        vec![
            Step::Occasion,
            Step::Channel,
            Step::Capping,
            Step::Budget,
            Step::SendTime
        ]
    );
    assert_eq!(report.totals.len(), 1);
    let t = &report.totals[0];
    assert_eq!(
        (t.service.as_str(), t.messages, t.email, t.post, t.cost),
        ("service", 2, 1, 1, 97)
    );

    let store = w.store();
    assert_eq!(store.message_count(), 2);
    assert_eq!(
        store.message(2).expect("read"),
        Some(report.planned[1].clone())
    );
    assert_eq!(
        store
            .planned_occasion("service:V1:2025-03-20")
            .expect("read"),
        Some(2)
    );
    assert_eq!(
        store
            .ledger_entry(202603, "service")
            .expect("ledger")
            .reserved,
        97
    );
    assert_ledger_matches(&store);
    assert_eq!(
        store.day_load(today()).expect("load").get(&today()),
        Some(&2)
    );
}

/// The learned values are planning input like the data and the policy:
/// when they change (a freeze, a reset, a new value in force), the same
/// day's committed run plans instead of being skipped as unchanged.
#[test]
fn a_learned_change_on_the_same_day_is_planned_not_skipped() {
    let mut w = World::new();
    two_customers(&w);
    assert_eq!(w.plan(today(), Mode::Commit).planned.len(), 2);
    assert!(w.plan(today(), Mode::Commit).unchanged);

    w.leads = Learned::new(touchpoint_common::learning::LearnedState {
        version: 1,
        frozen: ["service".to_string()].into(),
        ..touchpoint_common::learning::LearnedState::default()
    });
    assert!(!w.plan(today(), Mode::Commit).unchanged);
    assert!(w.plan(today(), Mode::Commit).unchanged);
}

#[test]
fn a_second_run_plans_nothing_twice() {
    let w = World::new();
    two_customers(&w);
    let first = w.plan(today(), Mode::Commit);
    assert_eq!(first.planned.len(), 2);

    // Same data, policy and day: skipped outright.
    let again = w.plan(today(), Mode::Commit);
    assert!(again.unchanged);
    assert!(again.planned.is_empty());
    assert_eq!(w.store().message_count(), 2);

    // New data: only the new customer is planned; the two occasions planned
    // before are recognised.
    w.import(
        &[person("K3")],
        &[serviced("V3", "K3", d(2025, 3, 20))],
        &[],
    );
    let third = w.plan(today(), Mode::Commit);
    assert!(!third.unchanged);
    // On the same day as the last run, only the changed recipient is
    // planned (the incremental re-plan): K1 and K2 are not looked at.
    assert_eq!(
        (
            third.recipients,
            third.occasions_found,
            third.already_planned
        ),
        (1, 1, 0)
    );
    let got: Vec<(u64, &str)> = third
        .planned
        .iter()
        .map(|m| (m.id, m.recipient.as_str()))
        .collect();
    assert_eq!(got, vec![(3, "K3")]);
    assert_eq!(
        third.planned[0].message_id,
        "<tp.t1.3@autohaus-test.example>"
    );

    // The next day, with nothing new, nothing is planned either.
    let next_day = w.plan(d(2026, 3, 3), Mode::Commit);
    assert!(!next_day.unchanged);
    assert!(next_day.planned.is_empty());
    assert_eq!(next_day.already_planned, 3);

    let store = w.store();
    assert_eq!(store.message_count(), 3);
    assert_eq!(
        store.message(1).expect("read").map(|m| m.message_id),
        Some("<tp.t1.1@autohaus-test.example>".to_string())
    );
    assert_eq!(
        store
            .ledger_entry(202603, "service")
            .expect("ledger")
            .reserved,
        192
    );
    assert_ledger_matches(&store);
}

#[test]
fn a_dry_run_writes_nothing() {
    let w = World::new();
    two_customers(&w);
    let dry = w.plan(today(), Mode::DryRun);
    assert!(dry.dry_run);
    assert_eq!(dry.planned.len(), 2);
    let store = w.store();
    assert_eq!(store.message_count(), 0);
    assert!(store.ledger().expect("ledger").is_empty());
    assert_eq!(store.plan_stamp().expect("stamp"), None);
    assert_eq!(
        store
            .planned_occasion("service:V1:2025-03-20")
            .expect("read"),
        None
    );

    // A dry run never counts as the last run, and plans what a real one does.
    let real = w.plan(today(), Mode::Commit);
    assert!(!real.unchanged);
    let summary = |r: &PlanReport| -> Vec<(String, Channel, Date, u16, i64)> {
        r.planned
            .iter()
            .map(|m| (m.recipient.clone(), m.channel, m.send_on, m.send_at, m.cost))
            .collect()
    };
    assert_eq!(summary(&dry), summary(&real));
    assert_eq!(
        w.plan(today(), Mode::DryRun).planned.len(),
        0,
        "all planned now"
    );
}

#[test]
fn a_revoked_consent_cancels_the_email_and_replans_by_post() {
    let w = World::new();
    two_customers(&w);
    let first = w.plan(today(), Mode::Commit);
    // K1's email is the second message (numbered in send order, after
    // K2's letter in the window's first hour).
    assert_eq!(first.planned[1].channel, Channel::Email);
    assert_eq!(first.planned[1].recipient, "K1");

    // K1 says no to email, later than the yes.
    w.import(
        &[],
        &[],
        &[said("K1", Channel::Email, false, d(2026, 3, 1))],
    );
    let second = w.plan(today(), Mode::Commit);
    let cancelled = only(&second.cancelled);
    assert_eq!(cancelled.id, 2);
    assert_eq!(cancelled.status, MessageStatus::Cancelled);
    // The queue shows a cancelled message's reason as its last error.
    assert_eq!(
        cancelled.dispatch.last_error,
        "email: consent withdrawn 2026-03-01 (import:kunden.csv)"
    );
    assert_eq!(
        cancelled.why.last(),
        Some(&Why {
            step: Step::Revision,
            text:
                "cancelled on 2026-03-02: email: consent withdrawn 2026-03-01 (import:kunden.csv)"
                    .into()
        })
    );
    let replanned = only(&second.planned);
    assert_eq!(
        (
            replanned.id,
            replanned.recipient.as_str(),
            replanned.channel,
            replanned.cost
        ),
        (3, "K1", Channel::Post, 95)
    );
    assert_eq!(replanned.occasions[0].key, "service:V1:2025-03-20");
    assert_eq!(
        texts(&replanned.why, Step::Channel),
        vec!["post (post: allowed, no objection on record; not email: consent withdrawn 2026-03-01 (import:kunden.csv))"]
    );
    // The cancelled email is no contact: the letter may go today.
    assert_eq!(replanned.send_on, today());
    // Only K1, whose data changed, is planned again: K2's occasion, planned
    // before, is not looked at (the incremental re-plan).
    assert_eq!((second.recipients, second.already_planned), (1, 0));

    let store = w.store();
    assert_eq!(
        store.message(2).expect("read").map(|m| m.status),
        Some(MessageStatus::Cancelled)
    );
    // 97 - 2 (email released) + 95 (letter).
    assert_eq!(
        store
            .ledger_entry(202603, "service")
            .expect("ledger")
            .reserved,
        190
    );
    assert_ledger_matches(&store);
    let contacts = store.contacts_of("K1").expect("contacts");
    assert_eq!(
        contacts.iter().map(|c| c.message).collect::<Vec<_>>(),
        vec![3]
    );
}

/// The vehicle export still says the service was a year ago, but the
/// workshop's visits say it was done (K1) after the reminder was planned:
/// the reminder would ask for work already done, and is cancelled. A tyre
/// change (K2) answers nothing.
#[test]
fn a_reminder_for_work_done_since_it_was_planned_is_cancelled() {
    let w = World::new();
    two_customers(&w);
    let first = w.plan(today(), Mode::Commit);
    assert_eq!(first.planned.len(), 2);
    w.visit_of("V1", "K1", d(2026, 3, 1), "Inspektion mit Ölwechsel");
    w.visit_of("V2", "K2", d(2026, 3, 1), "Reifenwechsel");
    let second = w.plan(today(), Mode::Commit);
    let cancelled = only(&second.cancelled);
    assert_eq!(cancelled.recipient, "K1");
    assert_eq!(
        cancelled.dispatch.last_error,
        "service for V1 was done since it was planned: next due 2027-03-01 \
         (12 months after the service on 2026-03-01)"
    );
    // Its next service is a year away: nothing to plan for K1 now.
    assert!(second.planned.is_empty(), "{:#?}", second.planned);
    // Both visited: both planned again, K2's occasion recognised.
    assert_eq!((second.recipients, second.already_planned), (2, 1), "K2's");
    assert_ledger_matches(&w.store());
}

/// A visit dated ahead (a booked appointment, a mistyped year) has not
/// happened: the reminder stands. A corrected export date is a change, not
/// work done, and is said so.
#[test]
fn a_visit_dated_ahead_answers_nothing_and_a_correction_is_no_work_done() {
    let w = World::new();
    two_customers(&w);
    let first = w.plan(today(), Mode::Commit);
    assert_eq!(first.planned.len(), 2);
    let ahead = Date::today().add_days(30).max(today().add_days(30));
    w.visit_of("V1", "K1", ahead, "Inspektion");
    let second = w.plan(today(), Mode::Commit);
    assert!(second.cancelled.is_empty(), "{:#?}", second.cancelled);

    // K2's export now says its last service was a month earlier.
    w.import(&[], &[serviced("V2", "K2", d(2025, 2, 20))], &[]);
    let third = w.plan(today(), Mode::Commit);
    let cancelled = only(&third.cancelled);
    assert_eq!(cancelled.recipient, "K2");
    assert_eq!(
        cancelled.dispatch.last_error,
        "service for V2 changed since it was planned (due 2026-03-20 then): now due \
         2026-03-02 (12 months after the service on 2025-02-20; overdue, reminded as due today)"
    );
    // Planned again at once under its new key.
    assert_eq!(only(&third.planned).recipient, "K2");
}

/// An inspection visit answers the inspection recorded for a month later
/// (done early); the next is due two years after the visit.
#[test]
fn an_inspection_done_early_cancels_its_reminder() {
    let w = World::new();
    let v = Vehicle {
        next_inspection: Some(d(2026, 3, 25)),
        ..car("V1", "K1")
    };
    w.import(&[emailed("K1")], &[v], &[email_yes("K1")]);
    let first = w.plan(today(), Mode::Commit);
    let m = only(&first.planned);
    assert_eq!(m.service, "hu");
    // A visit a year and a day before the recorded date is the last one.
    w.visit_of("V1", "K1", d(2025, 3, 24), "HU/AU");
    assert!(w.plan(today(), Mode::Commit).cancelled.is_empty());
    w.visit_of("V1", "K1", d(2026, 3, 1), "HU/AU");
    let second = w.plan(today(), Mode::Commit);
    assert_eq!(
        only(&second.cancelled).dispatch.last_error,
        "hu for V1 was done since it was planned: next due 2028-03-01 \
         (24 months after the inspection visit on 2026-03-01)"
    );
    assert!(second.planned.is_empty(), "{:#?}", second.planned);
}

#[test]
fn a_replanned_occasion_is_not_planned_again_by_the_next_run() {
    let w = World::new();
    two_customers(&w);
    w.plan(today(), Mode::Commit);
    w.import(
        &[],
        &[],
        &[said("K1", Channel::Email, false, d(2026, 3, 1))],
    );
    let second = w.plan(today(), Mode::Commit);
    let letter = only(&second.planned);
    assert_eq!(
        w.store()
            .planned_occasion("service:V1:2025-03-20")
            .expect("read"),
        Some(letter.id),
        "the occasion belongs to the letter now"
    );

    // Another change and another run: the letter is not planned again.
    w.import(&[person("K4")], &[], &[]);
    let third = w.plan(today(), Mode::Commit);
    assert!(third.planned.is_empty(), "{:#?}", third.planned);
    assert!(third.cancelled.is_empty());
    assert_eq!(w.store().message_count(), 3);
    // The next day every recipient is planned: the letter's and K2's
    // occasions are recognised as planned.
    let next_day = w.plan(d(2026, 3, 3), Mode::Commit);
    assert!(next_day.planned.is_empty(), "{:#?}", next_day.planned);
    assert_eq!(next_day.already_planned, 2);
    assert_eq!(w.store().message_count(), 3);
    assert_ledger_matches(&w.store());
}

#[test]
fn a_revoked_consent_without_another_channel_cancels_and_drops() {
    // The birthday only goes by email.
    let w = World::new();
    let c = Customer {
        birth_date: Some(d(1980, 3, 4)),
        ..emailed("K1")
    };
    w.import(&[c], &[], &[email_yes("K1")]);
    let first = w.plan(today(), Mode::Commit);
    let m = only(&first.planned);
    assert_eq!(
        (m.service.as_str(), m.channel),
        ("birthday", Channel::Email)
    );

    w.import(
        &[],
        &[],
        &[said("K1", Channel::Email, false, d(2026, 3, 1))],
    );
    let second = w.plan(today(), Mode::Commit);
    assert_eq!(second.cancelled.len(), 1);
    assert!(second.planned.is_empty());
    assert_eq!(
        reasons(&second.dropped),
        vec![(
            "K1",
            Step::Channel,
            "email: consent withdrawn 2026-03-01 (import:kunden.csv)"
        )]
    );
    assert_ledger_matches(&w.store());
}

#[test]
fn a_whole_fleet_through_the_store_is_one_letter() {
    let w = World::new();
    let f = fleet();
    let vehicles: Vec<Vehicle> = f.vehicles.iter().map(|v| v.vehicle.clone()).collect();
    w.import(std::slice::from_ref(&f.customer), &vehicles, &[]);
    let report = w.plan(today(), Mode::Commit);
    let m = only(&report.planned);
    assert_eq!(m.occasions.len(), 40);
    assert_eq!(m.vins().len(), 40);
    assert_eq!((m.channel, m.cost), (Channel::Post, 95));
    assert!(m.why.iter().any(|x| x
        .text
        .starts_with("one message for 40 vehicles of this holder")));
    let store = w.store();
    for v in &vehicles {
        let key = format!("service:{}:2025-03-20", v.vin);
        assert_eq!(store.planned_occasion(&key).expect("read"), Some(m.id));
    }
    assert_ledger_matches(&store);
}

#[test]
fn service_visits_feed_the_mileage_projection() {
    // V1 serviced at 36000 km on 2025-03-20 after 30000 km on 2025-01-19:
    // 100 km/day, 66000 km on 2026-01-14, 47 days overdue today: due today.
    let w = World::new();
    let v = Vehicle {
        last_service_km: Some(36_000),
        ..serviced("V1", "K1", d(2025, 3, 20))
    };
    w.import(&[person("K1")], &[v], &[]);
    let store = w.store();
    {
        let id = store.next_import_id().expect("id");
        let mut tx = store.begin_import(id).expect("begin");
        tx.put_visit(&ServiceVisit {
            vin: "V1".into(),
            customer_no: "K1".into(),
            date: d(2025, 1, 19),
            km: Some(30_000),
            kind: "Inspektion".into(),
            value: None,
            source: "besuche.csv:2".into(),
        })
        .expect("visit");
        tx.commit(&ImportReport::new(
            id,
            t1(),
            "besuche.csv",
            "visits",
            Timestamp(0),
        ))
        .expect("commit");
    }
    let report = w.plan(today(), Mode::Commit);
    let m = only(&report.planned);
    assert_eq!(m.occasions[0].due, today());
    assert_eq!(
        m.occasions[0].reason,
        "66000 km projected on 2026-01-14 at 100 km/day from 30000 km on 2025-01-19 to 36000 km on 2025-03-20; overdue, reminded as due today"
    );
}

#[test]
fn a_tenant_without_policy_is_an_error() {
    let w = World::new();
    let t2 = TenantId::new("t2").expect("id");
    w.stores
        .central()
        .register_tenant(&t2, "Other")
        .expect("register");
    let store = w.stores.tenant(&t2).expect("store");
    let err = plan_tenant(&store, &w.set, today(), Mode::DryRun, &w.leads).err();
    assert!(
        matches!(err, Some(PlanError::UnknownTenant(ref t)) if t == "t2"),
        "{err:?}"
    );
}

impl World {
    /// Changes the dealer's policy as an edited file would (a new fingerprint).
    fn edit_policy(&mut self, f: impl FnOnce(&mut TenantPolicy)) {
        f(self.set.tenants.get_mut(&t1()).expect("t1"));
        self.set.fingerprint ^= 1;
    }
}

#[test]
fn a_customer_put_on_the_suppression_list_loses_their_planned_messages() {
    let mut w = World::new();
    two_customers(&w);
    w.plan(today(), Mode::Commit);
    w.edit_policy(|p| p.suppress.customers = vec!["K2".into()]);
    let second = w.plan(today(), Mode::Commit);
    let m = only(&second.cancelled);
    assert_eq!(m.recipient, "K2");
    assert_eq!(
        m.why.last().map(|x| x.text.as_str()),
        Some("cancelled on 2026-03-02: customer is on the dealer's suppression list")
    );
    // Cancelled, its occasion is free again, and dropped at once.
    assert!(second.planned.is_empty());
    assert_eq!(
        reasons(&second.dropped),
        vec![(
            "K2",
            Step::Channel,
            "customer is on the dealer's suppression list"
        )]
    );
    assert_ledger_matches(&w.store());
}

#[test]
fn a_merged_customer_put_on_the_suppression_list_loses_the_survivors_messages() {
    // K1 and K2 are one person (same name, address and email): K2 merges
    // into K1, whose message then covers both vehicles.
    let mut w = World::new();
    let k2 = Customer {
        email: Some("k1@example.org".into()),
        ..person("K2")
    };
    w.import(
        &[emailed("K1"), k2],
        &[
            serviced("V1", "K1", d(2025, 3, 20)),
            serviced("V2", "K2", d(2025, 3, 20)),
        ],
        &[],
    );
    let merges = crate::identity::find_and_merge(&w.store(), None).expect("identity pass");
    assert_eq!(merges.len(), 1);
    let first = w.plan(today(), Mode::Commit);
    let m = only(&first.planned);
    assert_eq!((m.recipient.as_str(), m.occasions.len()), ("K1", 2));

    w.edit_policy(|p| p.suppress.customers = vec!["K2".into()]);
    let second = w.plan(today(), Mode::Commit);
    let cancelled = only(&second.cancelled);
    assert_eq!(cancelled.id, m.id);
    assert_eq!(
        cancelled.why.last().map(|x| x.text.as_str()),
        Some("cancelled on 2026-03-02: customer is on the dealer's suppression list")
    );
    assert_eq!(second.dropped.len(), 2, "both vehicles' occasions");
    assert!(second.planned.is_empty());
}

/// K1 and K2 are one person; K2 merges into K1.
fn one_person_with_two_numbers(w: &World, consents: &[Consent]) {
    let k2 = Customer {
        email: Some("k1@example.org".into()),
        ..person("K2")
    };
    w.import(
        &[emailed("K1"), k2],
        &[serviced("V1", "K1", d(2025, 3, 20))],
        consents,
    );
    let merges = crate::identity::find_and_merge(&w.store(), None).expect("identity pass");
    assert_eq!(
        merges
            .iter()
            .map(|m| (m.merged.as_str(), m.survivor.as_str()))
            .collect::<Vec<_>>(),
        [("K2", "K1")]
    );
}

/// Of two statements made at the same moment under two numbers of one
/// person, the withdrawal stands: a grant never overrides a withdrawal
/// that is not older than it, whichever number either was made under.
#[test]
fn a_withdrawal_and_a_grant_at_the_same_moment_under_merged_numbers_mean_no() {
    for (no, yes) in [("K1", "K2"), ("K2", "K1")] {
        let w = World::new();
        one_person_with_two_numbers(
            &w,
            &[
                said(no, Channel::Email, false, d(2026, 2, 1)),
                said(yes, Channel::Email, true, d(2026, 2, 1)),
            ],
        );
        let report = w.plan(today(), Mode::Commit);
        let m = only(&report.planned);
        assert_eq!(
            m.channel,
            Channel::Post,
            "withdrawn under {no}: {:#?}",
            m.why
        );
        let of = if no == "K1" { "" } else { "; customer K2" };
        assert_eq!(
            texts(&m.why, Step::Channel),
            vec![format!(
                "post (post: allowed, no objection on record; not email: consent withdrawn \
                 2026-02-01 (import:kunden.csv{of}))"
            )]
        );
    }
}

/// The latest statement across the numbers of one person decides, and the
/// why says under which number it was made when not the recipient's own.
#[test]
fn a_later_grant_under_a_merged_number_outweighs_an_older_withdrawal() {
    let w = World::new();
    one_person_with_two_numbers(
        &w,
        &[
            said("K1", Channel::Email, false, d(2025, 1, 1)),
            said("K2", Channel::Email, true, d(2025, 6, 1)),
        ],
    );
    let report = w.plan(today(), Mode::Commit);
    let m = only(&report.planned);
    assert_eq!(
        texts(&m.why, Step::Channel),
        vec!["email (email: consent given 2025-06-01 (import:kunden.csv; customer K2))"]
    );
}

// ----- control groups ----------------------------------------------------------------

/// 400 recipients of a service with a 20 % control group: the number drawn
/// is binomial(400, 0.2), mean 80 and standard deviation 8, and the draw is
/// deterministic, so ±5 standard deviations (40..=120) is a bound a fair
/// draw almost never leaves, checked once and for all. Control members get
/// a record, not a message: no cost, no reservation, no contact, no send
/// queue; and a later run neither draws them again nor plans them a message.
#[test]
fn a_control_group_gets_records_not_messages_and_keeps_them_on_a_replan() {
    let mut w = World::new();
    w.set
        .brand
        .services
        .get_mut("service")
        .expect("service")
        .control_percent = 20;
    let n = 400;
    let no = |i: usize| format!("K{i:03}");
    let customers: Vec<Customer> = (0..n).map(|i| person(&no(i))).collect();
    let vehicles: Vec<Vehicle> = (0..n)
        .map(|i| serviced(&format!("V{i:03}"), &no(i), d(2025, 3, 20)))
        .collect();
    w.import(&customers, &vehicles, &[]);
    let report = w.plan(today(), Mode::Commit);
    assert_eq!(report.planned.len(), n, "one record per eligible recipient");
    let (controls, sent): (Vec<_>, Vec<_>) = report
        .planned
        .iter()
        .partition(|m| m.status == MessageStatus::Control);
    assert!(
        (40..=120).contains(&controls.len()),
        "{} of {n} drawn",
        controls.len()
    );
    let service = w.set.brand.services.get("service").expect("service");
    let store = w.store();
    for m in &controls {
        assert!(super::control::is_control(
            "t1",
            &m.recipient,
            &m.occasions[0],
            service
        ));
        assert_eq!(m.cost, 0);
        assert_eq!(
            texts(&m.why, Step::Control),
            vec!["20 % of service (season 2026), to measure what the message adds: no message is sent"]
        );
        assert_eq!(m.send_on, today(), "the day it would have gone out");
        assert!(store
            .contacts_of(&m.recipient)
            .expect("contacts")
            .is_empty());
    }
    for m in &sent {
        assert!(!super::control::is_control(
            "t1",
            &m.recipient,
            &m.occasions[0],
            service
        ));
        assert_eq!((m.status, m.cost), (MessageStatus::Planned, 95));
    }
    let t = only(&report.totals);
    assert_eq!(
        (t.messages, t.control, t.cost),
        (
            sent.len() as u64,
            controls.len() as u64,
            95 * sent.len() as i64
        )
    );
    assert_eq!(
        store
            .ledger_entry(202603, "service")
            .expect("ledger")
            .reserved,
        95 * sent.len() as i64,
        "control members reserve nothing"
    );
    assert_ledger_matches(&store);
    assert_eq!(
        store.releasable(today()).expect("releasable").len(),
        sent.len(),
        "dispatch never sees a control record"
    );

    // The next day: a new run, nothing to plan, the records as they were.
    let before: Vec<_> = store.messages().map(|m| m.expect("message")).collect();
    let again = w.plan(today().add_days(1), Mode::Commit);
    assert!(!again.unchanged);
    assert!(again.planned.is_empty(), "{:?}", again.planned.first());
    assert_eq!(again.already_planned, n as u64);
    let after: Vec<_> = store.messages().map(|m| m.expect("message")).collect();
    assert_eq!(after, before);
}

#[test]
fn a_learned_lead_and_slot_shape_the_plan_and_its_why() {
    use crate::learning::{compute, Counts, DealerData};
    use touchpoint_common::learning::{Arm, LearnedState, ANY_HOUR, ANY_WEEKDAY};
    let mut w = World::new();
    w.import(
        &[emailed("K1")],
        &[serviced("V1", "K1", d(2025, 4, 10))],
        &[email_yes("K1")],
    );
    // Due 2026-04-10 (a Friday). The policy's 21 days: not yet planned today.
    assert!(w.plan(today(), Mode::DryRun).planned.is_empty());

    let s = w.set.brand.services.get_mut("service").expect("service");
    s.learn = true;
    s.explore_percent = 0;
    // Six dealers: 28 days answered 12 %, the policy's 21 days 8 %;
    // Tuesdays and 10:00 answered best (on enough emails a slot for a
    // first slot to be learned).
    let mut one = DealerData::default();
    for (arm, sent, responses) in [
        (Arm::Lead(21), 150, 12),
        (Arm::Lead(28), 150, 18),
        (Arm::Slot(1, ANY_HOUR), 500, 100),
        (Arm::Slot(0, ANY_HOUR), 500, 25),
        (Arm::Slot(ANY_WEEKDAY, 10), 500, 100),
        (Arm::Slot(ANY_WEEKDAY, 9), 500, 25),
    ] {
        one.cells.insert(
            ("service".into(), Channel::Email, arm),
            Counts {
                sent,
                responses,
                ..Counts::default()
            },
        );
    }
    w.leads = Learned::new(compute(
        &w.set.brand,
        &vec![one.clone(); 6],
        &LearnedState::default(),
    ));
    let report = w.plan(today(), Mode::DryRun);
    let m = only(&report.planned);
    // 28 days before is Friday 2026-03-13, the earliest day of that lead:
    // the slot's Tuesday before it (03-10) would be a longer lead, the one
    // after (03-17) more than three days on. The slot's hour still holds
    // (the minute is the message's draw within it).
    assert_eq!((m.send_on, m.send_at / 60), (d(2026, 3, 13), 10));
    let why: Vec<String> = m.why.iter().map(|w| w.text.clone()).collect();
    assert!(
        why.contains(&"lead time: 28 days (learned from 6 dealers, 1,800 reminders: 12.0 % responded vs 8.0 % at the policy's 21 days)".to_string()),
        "{why:#?}"
    );
    assert!(
        why.iter().any(
            |t| t.starts_with(&format!("2026-03-13 10:{:02}; window", m.send_at % 60))
                && t.ends_with("; send time: Tue 10:00 (learned slot) (its weekday out of reach)")
        ),
        "{why:#?}"
    );

    // Monday 10:00 the best slot: Monday 2026-03-16 is three days on.
    let mut weekdays = |mon: u64, tue: u64| {
        for (wd, responses) in [(0, mon), (1, tue)] {
            one.cells.insert(
                ("service".into(), Channel::Email, Arm::Slot(wd, ANY_HOUR)),
                Counts {
                    sent: 500,
                    responses,
                    ..Counts::default()
                },
            );
        }
        one.clone()
    };
    let monday = weekdays(100, 25);
    let even = weekdays(60, 60);
    w.leads = Learned::new(compute(
        &w.set.brand,
        &vec![monday; 6],
        &LearnedState::default(),
    ));
    let report = w.plan(today(), Mode::DryRun);
    let m = only(&report.planned);
    assert_eq!((m.send_on, m.send_at / 60), (d(2026, 3, 16), 10));
    let why: Vec<String> = m.why.iter().map(|w| w.text.clone()).collect();
    assert!(
        why.iter().any(|t| t.starts_with(&format!(
            "2026-03-16 10:{:02} (from 2026-03-13: the slot's weekday); window",
            m.send_at % 60
        )) && t.ends_with("; send time: Mon 10:00 (learned slot)")),
        "{why:#?}"
    );

    // No weekday stands out, 10:00 does: an hour only, on the day found.
    w.leads = Learned::new(compute(
        &w.set.brand,
        &vec![even; 6],
        &LearnedState::default(),
    ));
    let report = w.plan(today(), Mode::DryRun);
    let m = only(&report.planned);
    assert_eq!((m.send_on, m.send_at / 60), (d(2026, 3, 13), 10));
    let why: Vec<String> = m.why.iter().map(|w| w.text.clone()).collect();
    assert!(
        why.iter().any(
            |t| t.starts_with(&format!("2026-03-13 10:{:02}; window", m.send_at % 60))
                && t.ends_with("; send time: 10:00 (learned slot)")
        ),
        "{why:#?}"
    );
}

/// A letter goes with its day's batch: what is learned for it is a weekday,
/// and the planner moves the letter to that weekday (within the slot's
/// reach) and says why.
#[test]
fn a_learned_weekday_moves_a_letter_to_that_day() {
    use crate::learning::{compute, Counts, DealerData};
    use touchpoint_common::learning::{Arm, LearnedState, ANY_HOUR};
    let mut w = World::new();
    // No email: the reminder is a letter. Due 2026-04-10 (a Friday).
    w.import(
        &[person("K1")],
        &[serviced("V1", "K1", d(2025, 4, 10))],
        &[],
    );
    let s = w.set.brand.services.get_mut("service").expect("service");
    s.learn = true;
    s.explore_percent = 0;
    let mut one = DealerData::default();
    for (arm, sent, responses) in [
        (Arm::Lead(21), 150, 12),
        (Arm::Lead(28), 150, 18),
        (Arm::Slot(0, ANY_HOUR), 500, 100),
        (Arm::Slot(4, ANY_HOUR), 500, 25),
    ] {
        one.cells.insert(
            ("service".into(), Channel::Post, arm),
            Counts {
                sent,
                responses,
                ..Counts::default()
            },
        );
    }
    w.leads = Learned::new(compute(
        &w.set.brand,
        &vec![one; 6],
        &LearnedState::default(),
    ));
    let report = w.plan(today(), Mode::DryRun);
    let m = only(&report.planned);
    assert_eq!(m.channel, Channel::Post);
    // 28 days before is Friday 2026-03-13; Monday 03-16 is three days on.
    assert_eq!(m.send_on, d(2026, 3, 16));
    let why: Vec<String> = m.why.iter().map(|w| w.text.clone()).collect();
    assert!(
        why.iter().any(|t| t
            .starts_with("2026-03-16 09:45 (from 2026-03-13: the slot's weekday); window")
            && t.ends_with("; send day: Mon (learned slot)")),
        "{why:#?}"
    );
}

/// A learning service's occasion is found by the grid's longest lead, but
/// one that neither explores nor is a control member is planned only when
/// the send day of the lead in force comes within the horizon, so it goes
/// out with the values in force then; one that explores is planned when
/// found, and a control member is drawn when found.
#[test]
fn an_occasion_that_does_not_explore_waits_for_the_lead_in_force() {
    // Due 2026-04-10: 21 days (the policy's) is 2026-03-20, beyond today's
    // horizon; the grid's 42 days reach it today.
    let r = recipient(
        person("K1"),
        vec![serviced("V1", "K1", d(2025, 4, 10))],
        vec![],
    );
    let h = TestHistory::default();
    let mut fix = Fix::new();
    fix.service("service").learn = true;
    fix.service("service").explore_percent = 0;
    fix.service("service").control_percent = 0;
    assert_eq!(only(&fix.find(&r, "service")).due, d(2026, 4, 10));
    let (drafts, out) = fix.shape(&r, &h);
    assert!(drafts.is_empty(), "waits: {drafts:?}");
    assert!(
        out.dropped.is_empty(),
        "waiting is no drop: {:?}",
        out.dropped
    );
    assert_eq!(out.occasions_found, 0, "not counted as found yet");

    // Once 2026-03-20 is within the horizon, it is planned at 21 days.
    let horizon = fix.brand.planning.horizon_days as i32;
    let fix_later = {
        let mut f = Fix::new().on(d(2026, 3, 20).add_days(-horizon));
        f.service("service").learn = true;
        f.service("service").explore_percent = 0;
        f.service("service").control_percent = 0;
        f
    };
    let (drafts, _) = fix_later.shape(&r, &h);
    assert_eq!(only(&drafts).earliest, d(2026, 3, 20));

    // Every occasion explores: planned today, at a lead of the grid.
    fix.service("service").explore_percent = 100;
    let (drafts, _) = fix.shape(&r, &h);
    let dr = only(&drafts);
    assert!(
        texts(&dr.why, Step::SendTime)
            .iter()
            .any(|t| t.contains("exploring")),
        "{:?}",
        dr.why
    );

    // A control member (every recipient one) is drawn when found.
    fix.service("service").explore_percent = 0;
    fix.service("service").control_percent = 100;
    let (drafts, out) = fix.shape(&r, &h);
    assert!(drafts.is_empty());
    assert_eq!(out.controls.len(), 1, "drawn today: {:?}", out.controls);
}

/// A draft waiting for budget in `key` (month, service).
fn waiting_draft(key: (u32, &str), value: i64, day: Date, cost: i64, short: i64) -> steps::Waiting {
    steps::Waiting {
        key: (key.0, key.1.to_string()),
        value,
        day,
        cost,
        short,
    }
}

/// Who of those waiting for budget a release may fund: per month, service
/// and cost in the budget step's order (value, day, customer number), the
/// k-th while the release covers its shortfall and k costs; the first it
/// does not cover stops the rest at its cost; other costs and months on
/// their own.
#[test]
fn a_release_plans_again_only_the_waiters_it_may_fund_in_the_budget_steps_order() {
    let w = waiting_draft;
    let k = (202_612, "service_due");
    let other = (202_701, "service_due");
    let (d1, d2) = (d(2026, 12, 7), d(2026, 12, 9));
    let mut waiting: BTreeMap<String, Vec<steps::Waiting>> = BTreeMap::new();
    // Letters (1.00), 0.50 short each; A ahead by value, then B and C by
    // day, then D by customer number; an email (0.10) 0.05 short; a letter
    // of another month.
    waiting.insert("A".into(), vec![w(k, 300, d2, 100, 50)]);
    waiting.insert("B".into(), vec![w(k, 200, d1, 100, 50)]);
    waiting.insert("D".into(), vec![w(k, 200, d2, 100, 50)]);
    waiting.insert("C".into(), vec![w(k, 200, d2, 100, 50)]);
    waiting.insert("E".into(), vec![w(k, 100, d1, 10, 5)]);
    waiting.insert("F".into(), vec![w(other, 900, d1, 100, 1)]);
    let plan = |released: i64| -> Vec<String> {
        let r = move |key: &steps::BudgetKey| if key.0 == k.0 { released } else { 0 };
        super::waiting_to_plan(&waiting, &r).into_iter().collect()
    };
    assert!(plan(0).is_empty(), "nothing released, nobody");
    assert_eq!(plan(49), vec!["E"], "not enough for a letter's shortfall");
    assert_eq!(plan(100), vec!["A", "E"], "one letter, A first by value");
    assert_eq!(
        plan(150),
        vec!["A", "B", "E"],
        "two: then B, the earlier day"
    );
    assert_eq!(
        plan(250),
        vec!["A", "B", "C", "E"],
        "three: then C before D"
    );
    assert_eq!(plan(350), vec!["A", "B", "C", "D", "E"]);
}

/// Those still waiting after a run are short by what the run funded in
/// their month and service more; planned again by the next run only when
/// a draft of theirs is no longer short or the send-time step gave budget
/// back to its month and service.
#[test]
fn a_waiter_carried_past_a_release_is_short_by_what_the_run_funded_there() {
    use std::collections::HashSet;
    let w = waiting_draft;
    let k = (202_612, "service_due");
    let other = (202_701, "service_due");
    let (d1, d2) = (d(2026, 12, 7), d(2026, 12, 9));
    // After a release of 1.00 in `k`: B and C are covered (0.50 short
    // before), but the run funded a letter (A) and an email (X) there; Y
    // was short 0.20 still; E waits in another month.
    let mut carried: BTreeMap<String, Vec<steps::Waiting>> = BTreeMap::new();
    carried.insert("B".into(), vec![w(k, 200, d1, 100, -50)]);
    carried.insert("C".into(), vec![w(k, 200, d2, 100, -50)]);
    carried.insert("Y".into(), vec![w(k, 150, d2, 100, 20)]);
    carried.insert("E".into(), vec![w(other, 900, d1, 100, 30)]);
    let key = (k.0, k.1.to_string());
    let funded: HashMap<steps::BudgetKey, i64> = [(key.clone(), 110)].into_iter().collect();
    let none = HashSet::new();
    let after = super::carry(carried.clone(), &funded, &none);
    let short = |no: &str| match &after[no] {
        super::Unsettled::Budget(ws) => Some(ws[0].short),
        super::Unsettled::Always => None,
    };
    assert_eq!(short("B"), Some(60), "the letter and the email taken there");
    assert_eq!(short("C"), Some(60));
    assert_eq!(short("Y"), Some(130));
    assert_eq!(short("E"), Some(30), "nothing funded in its month");
    // Without what was funded, B and C would be planned again.
    let alone = super::carry(carried.clone(), &HashMap::new(), &none);
    assert_eq!(alone["B"], super::Unsettled::Always);
    assert!(matches!(alone["Y"], super::Unsettled::Budget(_)));
    // Funded less than what B was covered by: planned again.
    let email_only: HashMap<steps::BudgetKey, i64> = [(key, 10)].into_iter().collect();
    let little = super::carry(carried.clone(), &email_only, &none);
    assert_eq!(little["B"], super::Unsettled::Always);
    // The send-time step gave budget of `k` back: everyone waiting there
    // is planned again, E is not.
    let late: HashSet<steps::BudgetKey> = [(k.0, k.1.to_string())].into_iter().collect();
    let after = super::carry(carried, &funded, &late);
    for no in ["B", "C", "Y"] {
        assert_eq!(after[no], super::Unsettled::Always, "{no}");
    }
    assert!(matches!(after["E"], super::Unsettled::Budget(_)));
}

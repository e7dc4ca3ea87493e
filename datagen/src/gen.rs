//! The people and vehicles behind the exports.
//!
//! Every customer record is a pure function of `(seed, index)`: record `i`
//! draws from its own random stream, so any earlier customer can be
//! regenerated in isolation. That is how a near-duplicate copies its original
//! and how the visits export sees the same vehicles as the customer export,
//! without either holding more than one customer in memory.

use chrono::{Datelike, Months, NaiveDate};
use fastrand::Rng;
use touchpoint_common::domain::Salutation;

use crate::tables::{
    Model, Region, BUSINESS_STREETS, COMPANIES, COMPANY_WORDS, FEMALE_FIRST, FREEMAIL, LAST,
    MALE_FIRST, MOBILE_PREFIXES, MODELS, PLANTS, REGIONS, STREETS, WMI_CAR, WMI_VAN,
};
use crate::vin::{model_year_code, vin_check_digit, VIN_CHARS};
use crate::{DealerSpec, ExportOptions};

/// Share of (non-duplicate) customers that are businesses.
const COMPANY_SHARE: f64 = 0.10;
/// Households are drawn at this fraction of the duplicate rate.
pub(crate) const HOUSEHOLD_FACTOR: f64 = 0.5;

const SALT_KIND: u64 = 0x6b69_6e64;
const SALT_SOURCE: u64 = 0x7372_6365;
const SALT_PERSON: u64 = 0x7065_7273;
const SALT_VARIANT: u64 = 0x7661_7269;
const SALT_VEHICLE: u64 = 0x7665_6869;
pub(crate) const SALT_BAD: u64 = 0x6261_6421;
pub(crate) const SALT_VISIT: u64 = 0x7669_7369;

/// SplitMix64 finaliser: turns nearby integers into unrelated seeds.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub(crate) fn rng(seed: u64, index: u64, salt: u64) -> Rng {
    Rng::with_seed(mix(seed ^ mix(index.wrapping_mul(0x1000_0000_01b3) ^ salt)))
}

/// The dealer's customer number for record `i`: increasing, with gaps, as DMS numbers are.
pub(crate) fn customer_no(seed: u64, i: usize) -> u64 {
    10_000 + 3 * i as u64 + mix(seed ^ i as u64) % 3
}

/// Picks from a list ordered common-first: the first quarter gets half the draws.
fn skewed<'a>(r: &mut Rng, list: &[&'a str]) -> &'a str {
    let u = r.f64();
    let i = (u * u * list.len() as f64) as usize;
    list[i.min(list.len() - 1)]
}

fn weighted<'a>(r: &mut Rng, list: &[(&'a str, u32)]) -> &'a str {
    let total: u32 = list.iter().map(|(_, w)| w).sum();
    let mut x = r.u32(0..total.max(1));
    for (s, w) in list {
        if x < *w {
            return s;
        }
        x -= w;
    }
    list[0].0
}

// ---------------------------------------------------------------- dates

pub(crate) fn ymd(days: i32) -> (i32, u32, u32) {
    let d = NaiveDate::from_num_days_from_ce_opt(days).unwrap_or(NaiveDate::MIN);
    (d.year(), d.month(), d.day())
}

pub(crate) fn days_of(y: i32, m: u32, d: u32) -> i32 {
    NaiveDate::from_ymd_opt(y, m, d).map_or(0, |d| d.num_days_from_ce())
}

/// Calendar months later, clamped to the month's last day (31 Jan + 1 month = 28/29 Feb).
pub(crate) fn add_months(days: i32, months: u32) -> i32 {
    NaiveDate::from_num_days_from_ce_opt(days)
        .and_then(|d| d.checked_add_months(Months::new(months)))
        .map_or(days, |d| d.num_days_from_ce())
}

fn months_between(from: i32, to: i32) -> i32 {
    let (y0, m0, _) = ymd(from);
    let (y1, m1, _) = ymd(to);
    (y1 - y0) * 12 + m1 as i32 - m0 as i32
}

/// Statutory inspection (HU) dates: 36 months after first registration, then every 24.
pub(crate) fn hu_date(first_registration: i32, k: u32) -> i32 {
    add_months(first_registration, 36 + 24 * k)
}

// ---------------------------------------------------------------- records

/// A consent column: granted, refused, or left empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum Tri {
    Yes,
    No,
    #[default]
    Unknown,
}

impl Tri {
    pub fn as_option(self) -> Option<bool> {
        match self {
            Tri::Yes => Some(true),
            Tri::No => Some(false),
            Tri::Unknown => None,
        }
    }
}

/// One customer record. Strings are reused between records to keep the hot loop allocation-free.
#[derive(Clone, Debug, Default)]
pub(crate) struct Person {
    pub no: u64,
    pub salutation: Salutation,
    pub first: String,
    pub last: String,
    pub company: String,
    pub is_company: bool,
    pub street: String,
    /// As written in the source system ("12a", "12 a", "12A").
    pub house_no: String,
    pub postcode: String,
    pub city: String,
    /// Area code of the place, for landline numbers.
    pub area: &'static str,
    pub email: String,
    pub phone: String,
    pub birth: Option<i32>,
    pub consent_email: Tri,
    pub consent_post: Tri,
    /// Phone calls for advertising (the call centre's quality calls):
    /// given by every fourth customer who gave a phone number and post
    /// consent; derived, so it draws nothing from the generator.
    pub consent_phone: Tri,
}

impl Person {
    fn copy_from(&mut self, o: &Person) {
        self.no = o.no;
        self.salutation = o.salutation;
        self.first.clone_from(&o.first);
        self.last.clone_from(&o.last);
        self.company.clone_from(&o.company);
        self.is_company = o.is_company;
        self.street.clone_from(&o.street);
        self.house_no.clone_from(&o.house_no);
        self.postcode.clone_from(&o.postcode);
        self.city.clone_from(&o.city);
        self.area = o.area;
        self.email.clone_from(&o.email);
        self.phone.clone_from(&o.phone);
        self.birth = o.birth;
        self.consent_email = o.consent_email;
        self.consent_post = o.consent_post;
        self.consent_phone = o.consent_phone;
    }

    fn clear(&mut self) {
        self.salutation = Salutation::Unknown;
        self.first.clear();
        self.last.clear();
        self.company.clear();
        self.is_company = false;
        self.street.clear();
        self.house_no.clear();
        self.postcode.clear();
        self.city.clear();
        self.email.clear();
        self.phone.clear();
        self.birth = None;
        self.consent_email = Tri::Unknown;
        self.consent_post = Tri::Unknown;
        self.consent_phone = Tri::Unknown;
    }

    fn same_identity_text(&self, o: &Person) -> bool {
        self.first == o.first
            && self.last == o.last
            && self.street == o.street
            && self.house_no == o.house_no
            && self.postcode == o.postcode
            && self.city == o.city
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Veh {
    pub vin: [u8; 17],
    pub model: &'static Model,
    pub first_registration: i32,
    pub last_service: Option<i32>,
    pub last_service_km: Option<u32>,
    pub next_inspection: Option<i32>,
    pub warranty_end: Option<i32>,
    pub km_per_day: f64,
    /// Running number of the vehicle within the export; seeds its visit history.
    pub ordinal: u64,
}

impl Veh {
    pub fn vin_str(&self) -> &str {
        // Built from ASCII tables only.
        std::str::from_utf8(&self.vin).unwrap_or("")
    }

    /// Odometer reading projected for a day, from the vehicle's average use.
    pub fn km_at(&self, day: i32) -> u32 {
        (self.km_per_day * f64::from((day - self.first_registration).max(0))) as u32
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Private,
    Company,
    Fleet,
    /// Near-duplicate of the record with this index.
    Duplicate(usize),
    /// Another member of the household of the record with this index.
    Household(usize),
}

/// Where customers live: the dealer's region from the tables, or one made up
/// from the spec for dealers the tables do not know.
struct Place {
    city: String,
    postcodes: (u32, u32),
    area: &'static str,
    towns: &'static [(&'static str, &'static str, &'static str)],
}

impl Place {
    fn for_spec(spec: &DealerSpec) -> Self {
        if let Some(r) = REGIONS.iter().find(|r: &&Region| r.city == spec.city) {
            return Self {
                city: r.city.to_string(),
                postcodes: r.postcodes,
                area: r.area,
                towns: r.towns,
            };
        }
        let prefix: u32 = spec.postcode_prefix.parse().unwrap_or(10).min(99);
        Self {
            city: spec.city.clone(),
            postcodes: (prefix * 1000 + 100, prefix * 1000 + 999),
            area: "0800",
            towns: &[],
        }
    }
}

/// Steps through a dealer's customers in export order.
pub(crate) struct Gen {
    seed: u64,
    /// The dealer's id, which the response model knows it by.
    dealer: String,
    customers: usize,
    opts: ExportOptions,
    place: Place,
    pub as_of: i32,
    index: usize,
    next_ordinal: u64,
    serial_offset: u64,
    pub kind: Kind,
    pub person: Person,
    scratch: Person,
    pub vehicles: Vec<Veh>,
}

impl Gen {
    pub fn new(spec: &DealerSpec, opts: &ExportOptions, as_of: i32) -> Self {
        Self {
            seed: spec.seed,
            dealer: spec.id.clone(),
            customers: spec.customers,
            opts: *opts,
            place: Place::for_spec(spec),
            as_of,
            index: 0,
            next_ordinal: 0,
            serial_offset: mix(spec.seed ^ 0x5e71a1) % 1_000_000,
            kind: Kind::Private,
            person: Person::default(),
            scratch: Person::default(),
            vehicles: Vec::with_capacity(48),
        }
    }

    /// The past quarter's reminder for one of the current record's vehicles,
    /// when the export carries a past quarter.
    pub fn past(&self, v: &Veh) -> Option<crate::history::PastSend> {
        if !self.opts.past_quarter {
            return None;
        }
        crate::history::past_send(self.seed, &self.dealer, &self.person, v, self.as_of)
    }

    /// Index of the current record (valid after `advance` returned true).
    pub fn index(&self) -> usize {
        self.index - 1
    }

    /// Moves to the next customer; false when all are done.
    pub fn advance(&mut self) -> bool {
        if self.index >= self.customers {
            return false;
        }
        let i = self.index;
        self.index += 1;
        self.kind = self.kind_of(i);
        let mut person = std::mem::take(&mut self.person);
        match self.kind {
            Kind::Duplicate(src) | Kind::Household(src) => {
                let mut scratch = std::mem::take(&mut self.scratch);
                self.fresh(src, Kind::Private, &mut scratch);
                person.copy_from(&scratch);
                person.no = customer_no(self.seed, i);
                let mut r = rng(self.seed, i as u64, SALT_VARIANT);
                if matches!(self.kind, Kind::Duplicate(_)) {
                    self.near_duplicate(&mut r, &scratch, &mut person);
                } else {
                    self.household_member(&mut r, &scratch, &mut person);
                }
                self.scratch = scratch;
            }
            kind => self.fresh(i, kind, &mut person),
        }
        self.person = person;
        self.make_vehicles(i);
        true
    }

    /// The kind drawn for a record before its source is resolved.
    fn drawn_kind(&self, i: usize) -> Kind {
        let mut r = rng(self.seed, i as u64, SALT_KIND);
        let x = r.f64();
        let dup = self.opts.duplicate_rate.clamp(0.0, 1.0);
        if x < dup {
            return Kind::Duplicate(usize::MAX);
        }
        if x < dup * (1.0 + HOUSEHOLD_FACTOR) {
            return Kind::Household(usize::MAX);
        }
        if r.f64() < COMPANY_SHARE {
            if r.f64() < self.opts.fleet_rate {
                Kind::Fleet
            } else {
                Kind::Company
            }
        } else {
            Kind::Private
        }
    }

    /// The kind of a record with the source of duplicates and households resolved
    /// to an earlier private customer. Without one, the record is a new private customer.
    fn kind_of(&self, i: usize) -> Kind {
        let kind = self.drawn_kind(i);
        if !matches!(kind, Kind::Duplicate(_) | Kind::Household(_)) {
            return kind;
        }
        if i == 0 {
            return Kind::Private;
        }
        let mut r = rng(self.seed, i as u64, SALT_SOURCE);
        for _ in 0..8 {
            let j = r.usize(0..i);
            if self.drawn_kind(j) == Kind::Private {
                return match kind {
                    Kind::Duplicate(_) => Kind::Duplicate(j),
                    _ => Kind::Household(j),
                };
            }
        }
        Kind::Private
    }

    /// A customer as first entered into the dealer's system.
    fn fresh(&self, i: usize, kind: Kind, p: &mut Person) {
        let mut r = rng(self.seed, i as u64, SALT_PERSON);
        p.clear();
        p.no = customer_no(self.seed, i);
        self.residence(&mut r, p);
        match kind {
            Kind::Company | Kind::Fleet => company(&mut r, p, kind == Kind::Fleet),
            _ => private(&mut r, p),
        }
        self.consents(&mut r, p);
    }

    fn residence(&self, r: &mut Rng, p: &mut Person) {
        if self.place.towns.is_empty() || r.u32(0..100) < 58 {
            p.city.push_str(&self.place.city);
            let (lo, hi) = self.place.postcodes;
            push_padded(&mut p.postcode, u64::from(r.u32(lo..=hi)), 5);
            p.area = self.place.area;
        } else {
            let (town, postcode, area) = self.place.towns[r.usize(0..self.place.towns.len())];
            p.city.push_str(town);
            p.postcode.push_str(postcode);
            p.area = area;
        }
    }

    fn consents(&self, r: &mut Rng, p: &mut Person) {
        let (e, post) = if r.f64() < self.opts.no_consent_rate {
            // Some systems write "nein", others leave the box empty.
            let v = if r.bool() { Tri::No } else { Tri::Unknown };
            (v, v)
        } else {
            let refused = if r.bool() { Tri::No } else { Tri::Unknown };
            match r.u32(0..100) {
                0..=54 => (Tri::Yes, Tri::Yes),
                55..=84 => (refused, Tri::Yes),
                _ => (Tri::Yes, refused),
            }
        };
        p.consent_email = if p.email.is_empty() && e == Tri::Yes {
            Tri::Unknown
        } else {
            e
        };
        p.consent_post = if p.consent_email != Tri::Yes && e == Tri::Yes {
            Tri::Yes
        } else {
            post
        };
        p.consent_phone = if !p.phone.is_empty() && p.consent_post == Tri::Yes && p.no % 4 == 0 {
            Tri::Yes
        } else {
            Tri::Unknown
        };
    }

    /// The same person entered again under a new customer number: a typo, a
    /// transliterated umlaut, another spelling of the house number, a move.
    /// Always keeps something to match on, never copies the record exactly.
    fn near_duplicate(&self, r: &mut Rng, src: &Person, p: &mut Person) {
        let has_contact = !src.email.is_empty() || !src.phone.is_empty();
        match r.u32(0..100) {
            // Name spelled differently, same address.
            0..=44 => {
                name_variant(r, p);
                if r.u32(0..100) < 30 {
                    house_no_variant(r, &mut p.house_no);
                }
                if r.u32(0..100) < 20 {
                    p.email.clear();
                }
                if r.u32(0..100) < 30 {
                    p.phone.clear();
                }
            }
            // Moved: new address, same email or phone.
            45..=69 if has_contact => {
                p.street.clear();
                p.house_no.clear();
                p.postcode.clear();
                p.city.clear();
                self.residence(r, p);
                p.street.push_str(skewed(r, STREETS));
                house_no(r, &mut p.house_no);
                if r.u32(0..100) < 30 {
                    transliterate_umlauts(&mut p.last);
                }
                if !p.email.is_empty() && !p.phone.is_empty() && r.bool() {
                    p.phone.clear();
                }
            }
            // Same name and address, written differently; contact details missing or new.
            _ => {
                if !street_variant(r, &mut p.street) && !house_no_variant(r, &mut p.house_no) {
                    name_variant(r, p);
                }
                if r.bool() {
                    p.email.clear();
                } else if r.u32(0..100) < 40 {
                    let year = p.birth.map(|b| ymd(b).0);
                    let (first, last) = (p.first.clone(), p.last.clone());
                    person_email(r, &first, &last, year, &mut p.email);
                }
                if r.bool() {
                    p.phone.clear();
                }
            }
        }
        if p.same_identity_text(src) {
            typo(r, &mut p.last);
        }
        if r.u32(0..100) < 30 {
            p.birth = None;
        }
        self.consents(r, p);
    }

    /// Spouse or grown-up child at the same address: same surname, own first name.
    fn household_member(&self, r: &mut Rng, src: &Person, p: &mut Person) {
        p.salutation = if src.salutation == Salutation::Mr {
            Salutation::Ms
        } else {
            Salutation::Mr
        };
        p.first.clear();
        while p.first.is_empty() || p.first == src.first {
            p.first.clear();
            let list = if p.salutation == Salutation::Mr {
                MALE_FIRST
            } else {
                FEMALE_FIRST
            };
            p.first.push_str(skewed(r, list));
        }
        p.birth = Some(match src.birth {
            Some(b) => (b + r.i32(-2500..=2500)).clamp(days_of(1940, 1, 1), days_of(2005, 12, 31)),
            None => birth_date(r),
        });
        p.email.clear();
        if r.u32(0..100) < 60 {
            let year = p.birth.map(|b| ymd(b).0);
            let (first, last) = (p.first.clone(), p.last.clone());
            person_email(r, &first, &last, year, &mut p.email);
        }
        let landline = !src.phone.is_empty() && !is_mobile(&src.phone);
        if !(landline && r.bool()) {
            p.phone.clear();
            if r.u32(0..100) < 60 {
                mobile(r, &mut p.phone);
            }
        }
        self.consents(r, p);
    }

    fn make_vehicles(&mut self, i: usize) {
        let mut r = rng(self.seed, i as u64, SALT_VEHICLE);
        let n = match self.kind {
            Kind::Private => match r.u32(0..100) {
                0..=5 => 0,
                6..=83 => 1,
                84..=97 => 2,
                _ => 3,
            },
            Kind::Company => usize::from(r.u32(0..100) >= 8),
            Kind::Fleet => 2 + (38.0 * r.f64().powi(3)).round() as usize,
            Kind::Duplicate(_) => usize::from(r.u32(0..100) < 70),
            Kind::Household(_) => 1,
        };
        self.vehicles.clear();
        let fleet = self.kind == Kind::Fleet;
        for _ in 0..n {
            let ordinal = self.next_ordinal;
            self.next_ordinal += 1;
            let v = self.vehicle(&mut r, fleet, ordinal);
            self.vehicles.push(v);
        }
    }

    fn vehicle(&self, r: &mut Rng, fleet: bool, ordinal: u64) -> Veh {
        let as_of = self.as_of;
        // Most serviced cars are under eight years old; the tail reaches 18 years.
        let age = if fleet || r.u32(0..100) < 60 {
            r.i32(14..=8 * 365)
        } else {
            r.i32(14..=6600)
        };
        let fr = as_of - age;
        let year = ymd(fr).0;
        let (model_index, model) = pick_model(r, year, fleet);

        let mut vin = [b'0'; 17];
        vin[..3].copy_from_slice(if model.commercial { WMI_VAN } else { WMI_CAR }.as_bytes());
        vin[3..5].copy_from_slice(model.code.as_bytes());
        vin[5] = b"ABCDHKLMS"[r.usize(0..9)];
        vin[6] = VIN_CHARS[r.usize(0..VIN_CHARS.len())];
        vin[7] = b'1' + r.u8(0..9);
        vin[9] = model_year_code(year);
        // Serial numbers are a permutation of the ordinal, so VINs never repeat
        // within an export of up to six million vehicles.
        let block = ordinal / 1_000_000;
        vin[10] = PLANTS[(block as usize + model_index) % PLANTS.len()];
        let serial = ((ordinal % 1_000_000) * 7919 + self.serial_offset) % 1_000_000;
        let mut s = serial;
        for k in (11..17).rev() {
            vin[k] = b'0' + (s % 10) as u8;
            s /= 10;
        }
        vin[8] = vin_check_digit(&vin).unwrap_or(b'0');

        let per_year = if fleet || model.commercial {
            20_000.0 + r.f64() * 20_000.0
        } else {
            match r.u32(0..100) {
                0..=14 => 4_000.0 + r.f64() * 8_000.0,
                15..=89 => 12_000.0 + r.f64() * 8_000.0,
                _ => 20_000.0 + r.f64() * 15_000.0,
            }
        };
        let km_per_day = per_year / 365.25;

        // The first service is due after a year; before that there is none.
        let earliest = (as_of - 730).max(fr + 330);
        let mut last_service = (earliest <= as_of).then(|| r.i32(earliest..=as_of));
        // Gaps in the dealer's data.
        if r.u32(0..100) < 4 {
            last_service = None;
        }
        let mut v = Veh {
            vin,
            model,
            first_registration: fr,
            last_service,
            last_service_km: None,
            next_inspection: None,
            warranty_end: None,
            km_per_day,
            ordinal,
        };
        v.last_service_km = last_service.map(|d| v.km_at(d));

        // Next HU by the rule; a few are stale (done elsewhere, never updated), some missing.
        let m = months_between(fr, as_of);
        let mut k = ((m - 36).max(0) + 23) / 24;
        if hu_date(fr, k as u32) < as_of {
            k += 1;
        }
        let stale = k > 0 && r.u32(0..100) < 5;
        let k = if stale { k - 1 } else { k };
        v.next_inspection = (r.u32(0..100) >= 10).then(|| hu_date(fr, k as u32));

        let mut warranty_years = if r.bool() { 2 } else { 3 };
        if r.u32(0..100) < 15 {
            warranty_years += r.u32(1..=3);
        }
        v.warranty_end = (r.u32(0..100) >= 3).then(|| add_months(fr, 12 * warranty_years));
        v
    }
}

fn pick_model(r: &mut Rng, year: i32, fleet: bool) -> (usize, &'static Model) {
    let available = |m: &Model| m.from <= year && m.until.is_none_or(|u| year <= u);
    let weight = |m: &Model| if fleet { m.fleet_weight } else { m.weight };
    let total: u32 = MODELS.iter().filter(|m| available(m)).map(weight).sum();
    let mut x = r.u32(0..total.max(1));
    for (i, m) in MODELS.iter().enumerate() {
        if !available(m) {
            continue;
        }
        if x < weight(m) {
            return (i, m);
        }
        x -= weight(m);
    }
    (0, &MODELS[0])
}

// ---------------------------------------------------------------- people

fn birth_date(r: &mut Rng) -> i32 {
    // Triangular between 1940 and 2005: buyers cluster around the 1970s.
    let lo = days_of(1940, 1, 1);
    let hi = days_of(2005, 12, 31);
    let u = (r.f64() + r.f64()) / 2.0;
    lo + (u * f64::from(hi - lo)) as i32
}

fn private(r: &mut Rng, p: &mut Person) {
    let g = r.u32(0..100);
    p.salutation = match g {
        0..=48 => Salutation::Mr,
        49..=97 => Salutation::Ms,
        _ => Salutation::Mx,
    };
    let male = match p.salutation {
        Salutation::Mr => true,
        Salutation::Ms => false,
        _ => r.bool(),
    };
    p.first
        .push_str(skewed(r, if male { MALE_FIRST } else { FEMALE_FIRST }));
    p.last.push_str(skewed(r, LAST));
    p.birth = (r.u32(0..100) >= 8).then(|| birth_date(r));
    p.street.push_str(skewed(r, STREETS));
    house_no(r, &mut p.house_no);
    if r.u32(0..100) < 78 {
        let year = p.birth.map(|b| ymd(b).0);
        person_email(r, &p.first, &p.last, year, &mut p.email);
    }
    match r.u32(0..100) {
        0..=44 => mobile(r, &mut p.phone),
        45..=84 => landline(r, p.area, false, &mut p.phone),
        _ => {}
    }
}

fn company(r: &mut Rng, p: &mut Person, fleet: bool) {
    p.salutation = Salutation::Company;
    p.is_company = true;
    let pattern = loop {
        let (pattern, runs_fleet) = COMPANIES[r.usize(0..COMPANIES.len())];
        // A town has one Stadtwerke: keep names built from the town rare, so
        // that two customers rarely share a company name by chance.
        if (runs_fleet || !fleet) && (!pattern.contains("{C}") || r.u32(0..4) == 0) {
            break pattern;
        }
    };
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        p.company.push_str(&rest[..open]);
        let key = rest.as_bytes().get(open + 1).copied();
        match key {
            Some(b'L') | Some(b'M') => p.company.push_str(skewed(r, LAST)),
            Some(b'C') => p.company.push_str(&p.city),
            _ => p
                .company
                .push_str(COMPANY_WORDS[r.usize(0..COMPANY_WORDS.len())]),
        }
        rest = &rest[(open + 3).min(rest.len())..];
    }
    p.company.push_str(rest);

    // Half the records name a contact person.
    let contact = r.bool();
    if contact {
        let male = r.bool();
        p.first
            .push_str(skewed(r, if male { MALE_FIRST } else { FEMALE_FIRST }));
        p.last.push_str(skewed(r, LAST));
    }
    let streets = if r.u32(0..100) < 60 {
        BUSINESS_STREETS
    } else {
        STREETS
    };
    p.street.push_str(skewed(r, streets));
    house_no(r, &mut p.house_no);

    if r.u32(0..100) < 90 {
        if r.u32(0..100) < 10 {
            // Small businesses often keep a freemail address.
            company_slug(&p.company, '.', &mut p.email);
            p.email.push('@');
            p.email.push_str(weighted(r, FREEMAIL));
        } else {
            match r.u32(0..100) {
                0..=49 => p.email.push_str("info"),
                50..=69 if fleet => p.email.push_str("fuhrpark"),
                50..=69 => p.email.push_str("buero"),
                _ if contact => {
                    push_translit(&mut p.email, &p.first);
                    p.email.push('.');
                    push_translit(&mut p.email, &p.last);
                }
                _ => p.email.push_str("kontakt"),
            }
            p.email.push('@');
            company_slug(&p.company, '-', &mut p.email);
            p.email.push_str(".de");
        }
    }
    if r.u32(0..100) < 95 {
        landline(r, p.area, true, &mut p.phone);
    }
}

/// Legal forms and filler words that do not make it into a domain name.
const NOT_IN_DOMAIN: &[&str] = &[
    "GmbH",
    "Co.",
    "KG",
    "e.K.",
    "GbR",
    "UG",
    "(haftungsbeschränkt)",
    "e.V.",
    "&",
    "und",
    "Dr.",
    "OHG",
    "am",
    "an",
    "der",
];

fn company_slug(company: &str, sep: char, out: &mut String) {
    let mut words = 0;
    for word in company.split([' ', ',', '/']) {
        if word.is_empty() || NOT_IN_DOMAIN.contains(&word) || words == 3 {
            continue;
        }
        let start = out.len();
        if words > 0 {
            out.push(sep);
        }
        let before = out.len();
        push_translit(out, word.trim_matches(|c: char| !c.is_alphanumeric()));
        if out.len() == before {
            out.truncate(start);
        } else {
            words += 1;
        }
    }
}

fn house_no(r: &mut Rng, out: &mut String) {
    let u = r.f64();
    push_u64(out, 1 + (u * u * 140.0) as u64);
    if r.u32(0..100) < 10 {
        out.push(['a', 'b', 'c'][r.usize(0..3)]);
    }
}

/// Lower-case ASCII for email addresses: ä → ae, ß → ss, é → e; spaces and
/// punctuation other than '-' dropped.
pub(crate) fn push_translit(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            'a'..='z' | '0'..='9' | '-' => out.push(c),
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            'ä' | 'Ä' => out.push_str("ae"),
            'ö' | 'Ö' => out.push_str("oe"),
            'ü' | 'Ü' => out.push_str("ue"),
            'ß' => out.push_str("ss"),
            'é' | 'è' | 'ê' | 'É' | 'ë' => out.push('e'),
            'á' | 'à' | 'â' => out.push('a'),
            'ó' | 'ò' | 'ô' => out.push('o'),
            'í' | 'ì' | 'î' => out.push('i'),
            'ú' | 'ù' | 'û' => out.push('u'),
            'ç' | 'Ç' => out.push('c'),
            'ñ' => out.push('n'),
            _ => {}
        }
    }
}

fn person_email(r: &mut Rng, first: &str, last: &str, birth_year: Option<i32>, out: &mut String) {
    out.clear();
    let yy = birth_year.map_or_else(|| r.u32(0..100), |y| y.rem_euclid(100) as u32);
    match r.u32(0..100) {
        0..=34 => {
            push_translit(out, first);
            out.push('.');
            push_translit(out, last);
        }
        35..=44 => {
            push_translit(
                out,
                &first[..first.chars().next().map_or(0, char::len_utf8)],
            );
            out.push('.');
            push_translit(out, last);
        }
        45..=54 => {
            push_translit(out, first);
            push_translit(out, last);
        }
        55..=69 => {
            push_translit(out, first);
            out.push('.');
            push_translit(out, last);
            push_padded(out, u64::from(yy), 2);
        }
        70..=74 => {
            push_translit(out, first);
            out.push('_');
            push_translit(out, last);
        }
        75..=79 => {
            push_translit(out, last);
            out.push('.');
            push_translit(out, first);
        }
        80..=89 => {
            push_translit(out, first);
            push_u64(out, u64::from(r.u32(1..1000)));
        }
        _ => {
            push_translit(out, last);
            push_u64(out, u64::from(r.u32(1..1000)));
        }
    }
    out.push('@');
    out.push_str(weighted(r, FREEMAIL));
}

fn push_digits(r: &mut Rng, out: &mut String, n: usize) {
    // Subscriber numbers do not start with 0 or 1.
    out.push(char::from(b'2' + r.u8(0..8)));
    for _ in 1..n {
        out.push(char::from(b'0' + r.u8(0..10)));
    }
}

fn landline(r: &mut Rng, area: &str, company: bool, out: &mut String) {
    let len = 11usize.saturating_sub(area.len()).clamp(5, 8);
    match r.u32(0..100) {
        0..=44 => {
            out.push_str(area);
            out.push(' ');
        }
        45..=59 => {
            out.push_str(area);
            out.push('/');
        }
        60..=69 => {
            out.push_str(area);
            out.push('-');
        }
        70..=87 => {
            out.push_str("+49 ");
            out.push_str(&area[1..]);
            out.push(' ');
        }
        _ => {
            out.push('(');
            out.push_str(area);
            out.push_str(") ");
        }
    }
    push_digits(r, out, len);
    if company && r.u32(0..100) < 40 {
        out.push_str("-0");
    }
}

fn mobile(r: &mut Rng, out: &mut String) {
    let prefix = MOBILE_PREFIXES[r.usize(0..MOBILE_PREFIXES.len())];
    let len = if prefix.starts_with("015") { 8 } else { 7 };
    match r.u32(0..100) {
        0..=49 => {
            out.push_str(prefix);
            out.push(' ');
        }
        50..=64 => {
            out.push_str(prefix);
            out.push('/');
        }
        65..=84 => {
            out.push_str("+49 ");
            out.push_str(&prefix[1..]);
            out.push(' ');
        }
        _ => out.push_str(prefix),
    }
    push_digits(r, out, len);
}

fn is_mobile(phone: &str) -> bool {
    phone.starts_with("01") || phone.starts_with("+49 1")
}

// ---------------------------------------------------------------- variants

/// ä → ae, ö → oe, ü → ue, ß → ss. True if anything changed.
fn transliterate_umlauts(s: &mut String) -> bool {
    if !s.contains(['ä', 'ö', 'ü', 'Ä', 'Ö', 'Ü', 'ß']) {
        return false;
    }
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        match c {
            'ä' => out.push_str("ae"),
            'ö' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'Ä' => out.push_str("Ae"),
            'Ö' => out.push_str("Oe"),
            'Ü' => out.push_str("Ue"),
            'ß' => out.push_str("ss"),
            c => out.push(c),
        }
    }
    *s = out;
    true
}

/// One keyboard slip in a name: swapped, dropped, doubled or wrong letter.
fn typo(r: &mut Rng, s: &mut String) {
    let mut chars: Vec<char> = s.chars().collect();
    if chars.len() < 3 {
        chars.push('e');
        *s = chars.into_iter().collect();
        return;
    }
    // Never the first letter: people rarely get that wrong.
    let i = r.usize(1..chars.len());
    match r.u32(0..4) {
        0 if chars[i - 1] != chars[i] => chars.swap(i - 1, i),
        1 if chars.len() > 4 => {
            chars.remove(i);
        }
        2 => chars.insert(i, chars[i]),
        _ => {
            let replacement = if chars[i] == 'e' { 'a' } else { 'e' };
            chars[i] = replacement;
        }
    }
    *s = chars.into_iter().collect();
}

fn name_variant(r: &mut Rng, p: &mut Person) {
    match r.u32(0..100) {
        0..=34 => {
            if !transliterate_umlauts(&mut p.last) && !transliterate_umlauts(&mut p.first) {
                typo(r, &mut p.last);
            }
        }
        35..=64 => typo(r, &mut p.last),
        65..=84 => typo(r, &mut p.first),
        85..=92 if p.first.contains('-') => p.first = p.first.replace('-', " "),
        _ => {
            // Some clerks type surnames in capitals.
            let upper = p.last.to_uppercase();
            if upper == p.last {
                typo(r, &mut p.last);
            } else {
                p.last = upper;
            }
        }
    }
}

/// "12a" → "12 a" / "12A" / "12 A". False for numbers without a letter.
fn house_no_variant(r: &mut Rng, s: &mut String) -> bool {
    let Some(letter) = s.chars().last().filter(char::is_ascii_alphabetic) else {
        return false;
    };
    let number = s[..s.len() - 1].trim_end().to_string();
    s.clear();
    s.push_str(&number);
    match r.u32(0..3) {
        0 => {
            s.push(' ');
            s.push(letter);
        }
        1 => s.push(letter.to_ascii_uppercase()),
        _ => {
            s.push(' ');
            s.push(letter.to_ascii_uppercase());
        }
    }
    true
}

/// "Hauptstraße" → "Hauptstr." / "Hauptstrasse" / "Haupt-Str.". False if the street has no "straße".
fn street_variant(r: &mut Rng, s: &mut String) -> bool {
    let Some(at) = s.rfind("straße").or_else(|| s.rfind("Straße")) else {
        return transliterate_umlauts(s);
    };
    let capital = s[at..].starts_with('S');
    let base = s[..at].to_string();
    s.clear();
    s.push_str(&base);
    match r.u32(0..3) {
        0 => s.push_str(if capital { "Str." } else { "str." }),
        1 => s.push_str(if capital { "Strasse" } else { "strasse" }),
        _ => s.push_str(if capital { "Strasse" } else { "str" }),
    }
    true
}

// ---------------------------------------------------------------- numbers

pub(crate) fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &b in &buf[i..] {
        out.push(char::from(b));
    }
}

/// Zero-padded to at least `width` digits.
pub(crate) fn push_padded(out: &mut String, n: u64, width: usize) {
    let mut digits = 1;
    let mut m = n;
    while m >= 10 {
        m /= 10;
        digits += 1;
    }
    for _ in digits..width {
        out.push('0');
    }
    push_u64(out, n);
}

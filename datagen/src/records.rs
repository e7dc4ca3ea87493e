//! The generated data as domain records: the truth an import of the exports
//! should arrive at (broken rows aside), for tests that check the importer
//! and the identity matcher against it.

use chrono::NaiveDate;
use touchpoint_common::domain::{Address, Customer, Salutation, Vehicle};
use touchpoint_common::Date;

use crate::gen::{customer_no, Gen, Kind, Person, Veh};
use crate::tables::MAKE;
use crate::{DealerSpec, Dialect, ExportOptions};

/// How a customer record came about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordKind {
    Person,
    /// A business with at most one vehicle.
    Company,
    /// A business with 2 to 40 vehicles.
    Fleet,
    /// A near-duplicate of the customer with this number (the same person).
    Duplicate {
        of: String,
    },
    /// Shares surname and address with the customer with this number (another person).
    Household {
        of: String,
    },
}

/// One customer record with its vehicles and consents, as generated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub customer: Customer,
    pub vehicles: Vec<Vehicle>,
    /// `None` where the export leaves the consent column empty.
    pub consent_email: Option<bool>,
    pub consent_post: Option<bool>,
    pub kind: RecordKind,
}

/// Iterator over the records of one dealer, in export order.
pub struct Records {
    gen: Gen,
    seed: u64,
    dialect: Dialect,
}

/// The records behind [`crate::write_customer_export_as_of`] with the same
/// arguments, as the export states them: customer numbers, salutations,
/// street and phone as the dialect writes them (phones are not normalised),
/// house numbers normalised ("12 a" → "12A") as the domain type asks.
pub fn records(spec: &DealerSpec, opts: &ExportOptions, as_of: Date) -> Records {
    Records {
        gen: Gen::new(spec, opts, as_of.days()),
        seed: spec.seed,
        dialect: opts.dialect,
    }
}

fn date(days: i32) -> Option<Date> {
    NaiveDate::from_num_days_from_ce_opt(days).map(Date::from)
}

impl Records {
    fn number(&self, no: u64) -> String {
        let mut s = String::new();
        self.dialect.push_customer_no(&mut s, no);
        s
    }

    fn customer(&self, p: &Person) -> Customer {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Customer {
            customer_no: self.number(p.no),
            // Only the English dialect has a word for "divers"; the others leave it empty.
            salutation: match (p.salutation, self.dialect) {
                (Salutation::Mx, Dialect::DmsSemicolon1252 | Dialect::DmsTab) => {
                    Salutation::Unknown
                }
                (s, _) => s,
            },
            first_name: p.first.clone(),
            last_name: p.last.clone(),
            company: if p.is_company {
                non_empty(&p.company)
            } else {
                None
            },
            is_company: p.is_company,
            address: Address {
                street: p.street.clone(),
                house_no: p
                    .house_no
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect::<String>()
                    .to_uppercase(),
                postcode: p.postcode.clone(),
                city: p.city.clone(),
                country: "DE".into(),
            },
            email: non_empty(&p.email),
            phone: non_empty(&p.phone),
            birth_date: p.birth.and_then(date),
            language: "de".into(),
        }
    }

    fn vehicle(&self, customer_no: &str, v: &Veh) -> Vehicle {
        // As the customer export: the past quarter's response is the last service.
        let (last, km) = match self.gen.past(v).and_then(|p| p.response) {
            Some(day) => (Some(day), Some(v.km_at(day))),
            None => (v.last_service, v.last_service_km),
        };
        Vehicle {
            vin: v.vin_str().to_string(),
            customer_no: customer_no.to_string(),
            make: MAKE.to_string(),
            model: v.model.name.to_string(),
            first_registration: date(v.first_registration),
            last_service_date: last.and_then(date),
            last_service_km: km,
            next_inspection: v.next_inspection.and_then(date),
            warranty_end: v.warranty_end.and_then(date),
        }
    }
}

impl Iterator for Records {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if !self.gen.advance() {
            return None;
        }
        let customer = self.customer(&self.gen.person);
        let vehicles = self
            .gen
            .vehicles
            .iter()
            .map(|v| self.vehicle(&customer.customer_no, v))
            .collect();
        let kind = match self.gen.kind {
            Kind::Private => RecordKind::Person,
            Kind::Company => RecordKind::Company,
            Kind::Fleet => RecordKind::Fleet,
            Kind::Duplicate(j) => RecordKind::Duplicate {
                of: self.number(customer_no(self.seed, j)),
            },
            Kind::Household(j) => RecordKind::Household {
                of: self.number(customer_no(self.seed, j)),
            },
        };
        Some(Record {
            customer,
            vehicles,
            consent_email: self.gen.person.consent_email.as_option(),
            consent_post: self.gen.person.consent_post.as_option(),
            kind,
        })
    }
}

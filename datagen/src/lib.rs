//! Deterministic, realistic German dealer data for the demo, the end-to-end
//! tests and the benchmarks.
//!
//! A [`DealerSpec`] names a dealer and a seed; from it the generator writes
//! the exports a dealer-management system (DMS) would produce: one combined
//! customer-and-vehicle file ([`write_customer_export`]) and one service-visit
//! file ([`write_visits_export`]), in one of three [`Dialect`]s. The same spec,
//! options and reference date always give the same bytes, and nothing is held
//! in memory beyond the current customer, so a million rows cost no more
//! memory than ten.
//!
//! The data is messy in the ways real exports are (near-duplicate customers,
//! company fleets, missing fields, umlauts in three spellings, optional broken
//! rows) and consistent where real data is consistent (postcodes of the
//! dealer's region, mileage that fits the vehicle's age, inspection dates by
//! the statutory rule, valid VINs).
//!
//! Dates are placed relative to a reference day: the plain `write_*` functions
//! use today, so the demo always has services and inspections coming up; the
//! `*_as_of` variants take the day explicitly for byte-for-byte stable output.

mod dialect;
mod export;
mod gen;
pub mod history;
pub mod outbox;
mod policy;
mod records;
mod tables;
pub mod truth;
mod vin;

use touchpoint_common::Date;

pub use dialect::Dialect;
pub use export::{
    write_customer_export, write_customer_export_as_of, write_history_export,
    write_history_export_as_of, write_visit_rows, write_visits_export, write_visits_export_as_of,
    VisitRow,
};
pub use policy::{tenant_policy_toml, tenant_policy_toml_in};
pub use records::{records, Record, RecordKind, Records};
pub use vin::{is_valid_vin, vin_check_digit};

/// The brand of the demo data.
pub const BRAND_ID: &str = "nordwagen";
/// Make written into every vehicle row.
pub const MAKE: &str = tables::MAKE;
/// Models of the demo brand, oldest line first.
pub fn models() -> impl Iterator<Item = &'static str> {
    tables::MODELS.iter().map(|m| m.name)
}

/// One dealer of the demo network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DealerSpec {
    /// Tenant id, "d001".
    pub id: String,
    /// "Autohaus Müller GmbH".
    pub name: String,
    pub city: String,
    /// First two digits of the city's postcodes, "80".
    pub postcode_prefix: String,
    /// Customer records in the export, near-duplicates and household members included.
    pub customers: usize,
    pub seed: u64,
}

impl DealerSpec {
    /// The export dialect of this dealer's DMS, from the number in its id
    /// (d001 → `;`, d002 → `,`, d003 → tab, …); ids without a number go by the seed.
    pub fn dialect(&self) -> Dialect {
        let digits: String = self.id.chars().filter(char::is_ascii_digit).collect();
        match digits.parse::<usize>() {
            Ok(n) if n > 0 => Dialect::for_index(n - 1),
            _ => Dialect::for_index((self.seed % 3) as usize),
        }
    }

    /// File name a DMS of this dealer's dialect would give the customer export.
    pub fn customer_file_name(&self) -> String {
        self.customer_file_name_in(self.dialect())
    }

    /// File name of the customer export written in `dialect`.
    pub fn customer_file_name_in(&self, dialect: Dialect) -> String {
        let stem = match dialect {
            Dialect::DmsSemicolon1252 => "kunden",
            Dialect::DmsCommaUtf8Bom => "customers",
            Dialect::DmsTab => "kdstamm",
        };
        format!("{stem}_{}.csv", self.id)
    }

    /// File name of the send history the previous system left
    /// ([`write_history_export`]).
    pub fn history_file_name(&self) -> String {
        format!("versandhistorie_{}.csv", self.id)
    }

    /// File name a DMS of this dealer's dialect would give the service-visits export.
    pub fn visits_file_name(&self) -> String {
        let stem = match self.dialect() {
            Dialect::DmsSemicolon1252 => "werkstattauftraege",
            Dialect::DmsCommaUtf8Bom => "service_visits",
            Dialect::DmsTab => "auftraege",
        };
        format!("{stem}_{}.csv", self.id)
    }
}

/// `n` distinct dealers in real German cities, with 150 to 1500 customers
/// each, ids `d001`, `d002`, …. Beyond the 30 cities in the tables, further
/// dealers are branches ("Filiale 2") in the same cities.
pub fn demo_dealers(n: usize) -> Vec<DealerSpec> {
    let regions = tables::REGIONS;
    (0..n)
        .map(|i| {
            let region = &regions[i % regions.len()];
            let branch = i / regions.len();
            let name = if branch == 0 {
                region.dealer.to_string()
            } else {
                format!("{} Filiale {}", region.dealer, branch + 1)
            };
            let mut r = fastrand::Rng::with_seed(gen::mix(0x7ec4_d001 + i as u64));
            DealerSpec {
                id: format!("d{:03}", i + 1),
                name,
                city: region.city.to_string(),
                postcode_prefix: region.prefix.to_string(),
                customers: r.usize(150..=1500),
                seed: gen::mix(0x6e6f_7264 ^ i as u64),
            }
        })
        .collect()
}

/// How messy the export is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExportOptions {
    pub dialect: Dialect,
    /// Share of customer records that are a near-duplicate of an earlier
    /// customer under another customer number: a typo in the name, "ß"↔"ss",
    /// "ä"↔"ae", "12 a" vs "12a", "Hauptstr." vs "Hauptstraße", a move with the
    /// same email or phone. Household members (same surname and address, own
    /// first name) are added at half this rate; they are not duplicates.
    pub duplicate_rate: f64,
    /// Share of company customers that run a fleet of 2 to 40 vehicles.
    /// About a tenth of the customers are companies.
    pub fleet_rate: f64,
    /// Share of customers with no consent at all ("nein" or empty for both channels).
    pub no_consent_rate: f64,
    /// Share of rows with one deliberately broken field: an email without a
    /// single '@', a VIN with an 'O' or a missing character, or 31 February as
    /// a date. 0.0 for benchmarks.
    pub bad_row_rate: f64,
    /// The exports carry a past quarter ([`history`]): reminders sent by
    /// the previous system and the visits that followed them.
    pub past_quarter: bool,
}

impl ExportOptions {
    /// What the demo shows: some duplicates, fleets, refusals and a few broken rows.
    pub fn demo(dialect: Dialect) -> Self {
        Self {
            dialect,
            duplicate_rate: 0.04,
            fleet_rate: 0.3,
            no_consent_rate: 0.12,
            bad_row_rate: 0.004,
            past_quarter: false,
        }
    }

    /// The benchmarks' population: about 1.2 vehicles per customer, a few
    /// duplicates and fleets, 15 % without consent, no broken rows.
    pub fn bench(dialect: Dialect) -> Self {
        Self {
            dialect,
            duplicate_rate: 0.02,
            fleet_rate: 0.02,
            no_consent_rate: 0.15,
            bad_row_rate: 0.0,
            past_quarter: false,
        }
    }

    /// Realistic but clean: every row imports.
    pub fn clean(dialect: Dialect) -> Self {
        Self {
            dialect,
            duplicate_rate: 0.03,
            fleet_rate: 0.3,
            no_consent_rate: 0.12,
            bad_row_rate: 0.0,
            past_quarter: false,
        }
    }
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self::demo(Dialect::DmsSemicolon1252)
    }
}

/// What an export contains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Data rows, header excluded.
    pub rows: u64,
    /// Distinct customer numbers.
    pub customers: u64,
    /// Distinct VINs.
    pub vehicles: u64,
    /// Customer records that are near-duplicates of another one.
    pub duplicates: u64,
    /// Companies with two or more vehicles.
    pub fleets: u64,
    /// Rows with a deliberately broken field.
    pub bad_rows: u64,
    /// Bytes written, BOM and header included.
    pub bytes: u64,
    /// Customer records that share surname and address with another one (not duplicates).
    pub households: u64,
}

fn today() -> Date {
    Date::today()
}

#[cfg(test)]
mod tests;

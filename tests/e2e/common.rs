//! Fixtures and small helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};

use touchpoint_tests::fixture;

/// The May export of d001's DMS: Windows-1252, `;`, CRLF, 11 records (one
/// spanning two lines), 4 of them bad. See `fixtures/import/make_fixtures.py`.
pub const MAY: &str = "kunden_2024-05.csv";
/// The June export: UTF-8 with BOM, `;`, LF. One customer moved, one vehicle
/// changed hands to a new customer, the bad rows are gone.
pub const JUNE: &str = "kunden_2024-06.csv";

pub fn import_fixture(name: &str) -> PathBuf {
    fixture(&format!("import/{name}"))
}

/// A copy of the May export in `dir`, for tests that upload something valid.
pub fn customers_csv(dir: &Path) -> PathBuf {
    let dest = dir.join(MAY);
    std::fs::copy(import_fixture(MAY), &dest).expect("copy fixture");
    dest
}

/// The uid of this test process, which is what the daemon sees as the peer.
pub fn me() -> u32 {
    nix::unistd::Uid::current().as_raw()
}

/// The user name the daemon resolves for this process's uid.
pub fn my_name() -> String {
    let uid = nix::unistd::Uid::current();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid{}", uid.as_raw()))
}

/// A generated export large enough that importing it takes a while.
pub struct LargeExport {
    pub path: PathBuf,
    pub customers: u64,
    pub vehicles: u64,
}

/// Customers in [`large_export`].
pub const LARGE_CUSTOMERS: usize = 40_000;

/// Writes a realistic export of d001 (Windows-1252, `;`, duplicates and
/// fleets, no bad rows) into `dir`.
pub fn large_export(dir: &Path) -> LargeExport {
    use touchpoint_datagen::{write_customer_export, DealerSpec, Dialect, ExportOptions};
    let spec = DealerSpec {
        id: "d001".into(),
        name: "Autohaus Müller GmbH".into(),
        city: "München".into(),
        postcode_prefix: "80".into(),
        customers: LARGE_CUSTOMERS,
        seed: 20240501,
    };
    let opts = ExportOptions {
        dialect: Dialect::DmsSemicolon1252,
        bad_row_rate: 0.0,
        ..ExportOptions::default()
    };
    let path = dir.join("kunden_gross.csv");
    let file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create export"));
    let st = write_customer_export(&spec, &opts, file).expect("generate export");
    LargeExport {
        path,
        customers: st.customers,
        vehicles: st.vehicles,
    }
}

/// The rejected rows of [`MAY`], as `file:line: field: reason`. Lines are
/// physical lines: K-10002's remark spans lines 3 and 4.
pub const MAY_ERRORS: &[&str] = &[
    "kunden_2024-05.csv:10: vin: \"WNWZZZ3CZNB00107\" is not a VIN: it has 16 characters, a VIN has 17",
    "kunden_2024-05.csv:12: customer_no: missing: every row needs a customer number or a VIN",
];

/// The warnings of [`MAY`]: bad optional values, dropped from rows that
/// were imported without them.
pub const MAY_WARNINGS: &[&str] = &[
    "kunden_2024-05.csv:8: email: \"maria@@example\" is not an address (field not imported)",
    "kunden_2024-05.csv:11: first_registration: \"31.02.2019\" does not exist: February 2019 has 28 days (field not imported)",
];

//! Attribution benchmark (release mode):
//!
//! ```sh
//! cargo bench -p touchpoint-daemon --bench attribution               # 10k, 100k, 1M customers
//! cargo bench -p touchpoint-daemon --bench attribution -- 100000     # chosen sizes
//! ```
//!
//! The customers are spread over 100 tenants (the demo's dealers `d001` …
//! `d100`, each in its own DMS dialect), generated with the demo's past
//! quarter (`touchpoint_datagen::history`) and imported through the real
//! path (`import::import_file`): the customer export, the previous system's
//! send history (one message per reminder of the last 91 days, a tenth of
//! them control records) and the workshop export (every visit of the last
//! five years, responses included). Then, timed: `attribution::attribute`
//! over every tenant, the full recomputation an import of visits runs
//! (every visit against every message sent, the credits written), once
//! from no credits and once more when nothing changes (the cost of every
//! later visit import). Each size runs in a child process; its peak RSS is
//! reset after the preparation (`/proc/self/clear_refs`), so the figure
//! printed is attribution's. Last, the brand's pooled report over the
//! quarter's last whole month (`results::report`, by service and by lead
//! time), with its time and the peak RSS after it.

mod common;

use std::collections::HashMap;
use std::io::BufWriter;
use std::time::Instant;

use common::{each_size_in_a_child, peak_rss_mb, write_policies};
use touchpoint_common::config::StoresConfig;
use touchpoint_common::policy::OccasionKind;
use touchpoint_common::report::answer::ReportQuery;
use touchpoint_common::report::stats::By;
use touchpoint_common::{Date, TenantId};
use touchpoint_datagen::{
    demo_dealers, write_customer_export_as_of, write_history_export_as_of,
    write_visits_export_as_of, DealerSpec, ExportOptions,
};
use touchpointd::attribution::{attribute, Windows};
use touchpointd::import::history::HistoryService;
use touchpointd::import::{import_file, ImportOptions};
use touchpointd::store::Stores;

const TENANTS: usize = 100;
/// The exports' day: fixed, so every run imports the same data.
const AS_OF: (i32, u32, u32) = (2026, 12, 1);

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    each_size_in_a_child(&args, |customers| run(customers as usize));
}

fn run(customers: usize) {
    let (y, m, d) = AS_OF;
    let as_of = Date::from_ymd(y, m, d).expect("day");
    let dir = tempfile::tempdir().expect("tempdir");
    let stores = Stores::open(&dir.path().join("state"), &StoresConfig::default()).expect("stores");
    let opts = ImportOptions {
        services: HashMap::from([(
            "service_due".to_string(),
            HistoryService {
                template: "service_due".into(),
                occasion: OccasionKind::ServiceDue,
            },
        )]),
        ..ImportOptions::default()
    };
    let prepared = Instant::now();
    let specs: Vec<DealerSpec> = demo_dealers(TENANTS)
        .into_iter()
        .map(|mut spec| {
            spec.customers = (customers / TENANTS).max(1);
            spec
        })
        .collect();
    write_policies(&dir.path().join("policies"), &specs);
    let policies = touchpointd::policy::load_dir(&dir.path().join("policies")).expect("policies");
    let (mut sends, mut visits) = (0u64, 0u64);
    let mut tenants = Vec::new();
    for spec in specs {
        let id = TenantId::new(spec.id.clone()).expect("tenant id");
        stores
            .central()
            .register_tenant(&id, &spec.name)
            .expect("register");
        let store = stores.tenant(&id).expect("tenant");
        // The dealer's own column mapping, as the daemon reads it from its
        // policy (the tab dialect's short headers are mapped there).
        let opts = ImportOptions {
            policy: policies.tenant(&id).expect("dealer policy").import.clone(),
            ..opts.clone()
        };
        let export = ExportOptions {
            past_quarter: true,
            bad_row_rate: 0.0,
            ..ExportOptions::demo(spec.dialect())
        };
        type Write = fn(
            &DealerSpec,
            &ExportOptions,
            Date,
            BufWriter<std::fs::File>,
        ) -> std::io::Result<touchpoint_datagen::ExportStats>;
        let files: [(String, Write); 3] = [
            (spec.customer_file_name(), write_customer_export_as_of),
            (spec.history_file_name(), write_history_export_as_of),
            (spec.visits_file_name(), write_visits_export_as_of),
        ];
        for (n, (name, write)) in files.into_iter().enumerate() {
            let path = dir.path().join(&name);
            let file = BufWriter::new(std::fs::File::create(&path).expect("create"));
            let stats = write(&spec, &export, as_of, file).expect("generate");
            let r = import_file(&store, &path, &name, &opts).expect("import");
            assert!(r.is_committed() && r.rows_rejected == 0, "{name}: {r:?}");
            if n == 2 {
                // Every generated visit row is a stored visit: none is
                // taken for something else (as the tab dialect's once were,
                // read without its mapping).
                let v = r.visits;
                assert_eq!(
                    v.inserted + v.updated + v.unchanged,
                    stats.rows,
                    "{name}: {r:?}"
                );
            }
            match n {
                1 => sends += stats.rows,
                2 => visits += stats.rows,
                _ => {}
            }
            std::fs::remove_file(&path).expect("remove export");
        }
        tenants.push(store);
    }
    let prepare_secs = prepared.elapsed().as_secs_f64();
    // The imports credited as they went: start attribution from nothing.
    reset_peak_rss();
    let windows = Windows::default();
    let mut first = (0u64, 0u64, 0u64);
    let t = Instant::now();
    for store in &tenants {
        // A pass that takes every credit back, then the one measured.
        let s = attribute(store, &HashMap::from([("service_due".into(), 0)]), &|_| {
            false
        })
        .expect("attribute");
        first.2 += s.changed;
    }
    let clear_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for store in &tenants {
        let s = attribute(store, &windows, &|_| false).expect("attribute");
        first.0 += s.responses;
        first.1 += s.credited;
    }
    let full_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut changed = 0;
    for store in &tenants {
        changed += attribute(store, &windows, &|_| false)
            .expect("attribute")
            .changed;
    }
    let again_secs = t.elapsed().as_secs_f64();
    assert_eq!(changed, 0, "a second pass changes nothing");

    // The brand's pooled report over the quarter's last whole month, by
    // service and by lead time: every tenant's rows read, pooled and
    // suppressed under the k-dealer and dominance rules.
    let last = as_of.add_days(-1);
    let month = Date::from_ymd(last.year(), last.month(), 1).expect("month");
    let pooled_rss_before = peak_rss_mb();
    let mut pooled = Vec::new();
    for by in [By::Service, By::Lead] {
        let t = Instant::now();
        let r = touchpointd::results::report(
            &stores,
            &policies,
            &[],
            ReportQuery {
                tenant: None,
                service: None,
                from: Some(month),
                to: Some(last),
                by,
                pooled: true,
            },
            as_of,
        )
        .expect("pooled report");
        let shown = r.groups.iter().filter(|g| g.suppressed.is_none()).count();
        pooled.push(format!(
            "by {}: {:.2} s, {} groups ({shown} shown), {} sent",
            by.as_str(),
            t.elapsed().as_secs_f64(),
            r.groups.len(),
            r.total.tally.as_ref().map_or(0, |t| t.sent)
        ));
    }
    println!(
        "attribution {customers} customers, {TENANTS} tenants: {sends} sends (past quarter), {visits} visits; prepared in {prepare_secs:.1} s\n  \
         credit from none: {full_secs:.2} s ({} responses, {} credited)\n  \
         recompute, nothing changes: {again_secs:.2} s\n  \
         (taking {} credits back first: {clear_secs:.2} s)\n  \
         peak RSS during attribution: {:.0} MB\n  \
         pooled report, {month} … {}: {}\n  \
         peak RSS after the pooled reports: {:.0} MB (before them: {pooled_rss_before:.0} MB)",
        first.0,
        first.1,
        first.2,
        pooled_rss_before,
        last,
        pooled.join("; "),
        peak_rss_mb()
    );
}

/// Resets this process's peak RSS (VmHWM) to its current RSS (Linux).
fn reset_peak_rss() {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        eprintln!("cannot reset the peak RSS ({e}); the figure includes the preparation");
    }
}

//! Planning benchmark (release mode):
//!
//! ```sh
//! cargo bench -p touchpoint-daemon --bench plan                  # 10k, 100k, 1M customers
//! cargo bench -p touchpoint-daemon --bench plan -- 100000        # chosen sizes
//! TP_PLAN_CACHE=/var/tmp/tp-plan cargo bench -p touchpoint-daemon --bench plan
//! ```
//!
//! The customers are spread over 100 tenants (dealers `d001` … `d100`, each
//! with its generated policy and its own DMS dialect) and go through the real
//! import path: generated exports, `import::import_file`, identity pass.
//! Preparing 1M customers takes a minute or two; with `TP_PLAN_CACHE` the
//! prepared state directories are kept there and reused by later runs (each
//! run plans on a copy).
//!
//! The plan day is fixed ([`PLAN_DAY`]) and the exports are generated as of
//! that day, so every run sees the same occasions. Each measurement runs in a
//! fresh child process, so peak RSS (VmHWM) belongs to that measurement alone:
//!
//! 1. dry run: computes everything, writes nothing (never skipped);
//! 2. plan: the real run, committed to the outboxes;
//! 3. no-change re-run: same data, policy and day (every tenant is skipped);
//! 4. a small import into every tenant (1 % of its customers, in a child of
//!    its own), then a re-plan: everything is computed again and the occasion
//!    index keeps what the first run planned from being planned twice.
//!
//! `TP_PLAN_PROFILE=1` makes the plan children print where the time goes
//! (per phase, summed over tenants) to stderr.

mod common;

use common::{dir_size, peak_rss_mb, write_policies};

use std::collections::BTreeMap;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use touchpoint_common::config::StoresConfig;
use touchpoint_common::outbox::PlanReport;
use touchpoint_common::{Date, TenantId};
use touchpoint_datagen::{demo_dealers, write_customer_export_as_of, DealerSpec, ExportOptions};
use touchpointd::import::{import_file, ImportOptions};
use touchpointd::learning::Learned;
use touchpointd::planner::{plan_tenants, Mode};
use touchpointd::store::Stores;

const TENANTS: usize = 100;
/// A Tuesday inside the brand's winter campaign (2026-11-30 to 2027-01-31).
const PLAN_DAY: (i32, u32, u32) = (2026, 12, 1);
/// Bump when the prepared data changes, so cached states are not reused.
const DATA_VERSION: u32 = 1;

fn plan_day() -> Date {
    let (y, m, d) = PLAN_DAY;
    Date::from_ymd(y, m, d).expect("plan day")
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let Some(mode) = std::env::var_os("TP_BENCH_CHILD") {
        child(&mode.to_string_lossy(), &args);
        return;
    }
    let mut sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![10_000, 100_000, 1_000_000];
    }
    let scratch = tempfile::tempdir().expect("tempdir");
    let cache = std::env::var_os("TP_PLAN_CACHE").map(PathBuf::from);
    let cache_dir = cache
        .clone()
        .unwrap_or_else(|| scratch.path().to_path_buf());
    std::fs::create_dir_all(&cache_dir).expect("cache dir");
    println!(
        "touchpoint planning benchmark — {} cores, {TENANTS} tenants, plan day {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        plan_day()
    );
    println!();
    let mut rows = Vec::new();
    let mut details = Vec::new();
    for n in sizes {
        let prepared = cache_dir.join(format!("plan-{n}-v{DATA_VERSION}"));
        if !prepared.join("ready").exists() {
            let _ = std::fs::remove_dir_all(&prepared);
            let out = run_child("prepare", &prepared, n);
            eprintln!(
                "prepared {n} customers in {:.1} s ({} rows imported)",
                get(&out, "secs"),
                get(&out, "rows")
            );
        }
        let state = scratch.path().join(format!("state-{n}"));
        let _ = std::fs::remove_dir_all(&state);
        copy_dir(&prepared, &state).expect("copy prepared state");

        let detail = run_child("detail", &state, n);
        let dry = run_child("dryrun", &state, n);
        let plan = run_child("plan", &state, n);
        let rerun = run_child("plan", &state, n);
        let touch = run_child("touch", &state, n);
        let replan = run_child("plan", &state, n);
        assert_eq!(get(&rerun, "tenants_unchanged"), TENANTS as f64, "{rerun}");
        assert_eq!(
            get(&plan, "planned"),
            get(&dry, "planned"),
            "dry run and plan agree"
        );
        assert_eq!(
            get(&plan, "planned"),
            get(&detail, "planned"),
            "dry runs agree"
        );
        rows.push(format!(
            "| {n} | {:.0} | {:.0} | {:.0} | {:.2} | {:.0} | {:.2} | {:.0} | {:.3} | {:.2} | {:.0} | {:.1} | {:.1} |",
            get(&plan, "vehicles"),
            get(&plan, "planned"),
            n as f64 / get(&plan, "plan_secs"),
            get(&plan, "plan_secs"),
            get(&plan, "rss_mb"),
            get(&dry, "plan_secs"),
            get(&dry, "rss_mb"),
            get(&rerun, "plan_secs"),
            get(&replan, "plan_secs"),
            get(&replan, "planned"),
            get(&plan, "outbox_growth_mb"),
            get(&plan, "open_secs"),
        ));
        details.push(format!(
            "{n} customers: {:.0} recipients, {:.0} occasions found, {:.0} planned in {:.0} messages, {:.0} dropped\n  \
             occasions by service (planned + dropped): {}\n  \
             messages by lead service: {}\n  \
             messages by channel: {}\n  dropped by step: {}\n  \
             small import into every tenant: {:.0} rows in {:.1} s; re-plan: {:.0} occasions found, {:.0} already planned, {:.0} new messages, {:.0} cancelled",
            get(&plan, "recipients"),
            get(&plan, "occasions_found"),
            get(&detail, "occasions_planned"),
            get(&plan, "planned"),
            get(&plan, "dropped"),
            text(&detail, "mix"),
            text(&plan, "messages_by_service"),
            text(&plan, "channels"),
            text(&detail, "dropped_by"),
            get(&touch, "rows"),
            get(&touch, "secs"),
            get(&replan, "occasions_found"),
            get(&replan, "already_planned"),
            get(&replan, "planned"),
            get(&replan, "cancelled"),
        ));
        let _ = std::fs::remove_dir_all(&state);
        if cache.is_none() {
            let _ = std::fs::remove_dir_all(&prepared);
        }
    }
    println!("| customers | vehicles | messages | plan customers/s | plan s | plan peak RSS MB | dry run s | dry run peak RSS MB | no-change re-run s | re-plan after import s | re-plan messages | outbox growth MB | tenant open s |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!("{r}");
    }
    println!();
    for d in details {
        println!("{d}");
    }
}

fn get(out: &str, key: &str) -> f64 {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

fn text(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or("")
        .to_string()
}

fn run_child(mode: &str, state: &Path, customers: usize) -> String {
    let exe = std::env::current_exe().expect("exe");
    let out = Command::new(exe)
        .env("TP_BENCH_CHILD", mode)
        .arg(state)
        .arg(customers.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("child");
    if !out.status.success() {
        panic!("benchmark child {mode} failed");
    }
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}

/// The dealers of the benchmark: the demo network's cities and seeds, with
/// the customers split evenly.
fn specs(customers: usize) -> Vec<DealerSpec> {
    let per = customers.div_ceil(TENANTS);
    demo_dealers(TENANTS)
        .into_iter()
        .map(|mut s| {
            s.customers = per;
            s
        })
        .collect()
}

/// The benchmarks' export options in the dealer's dialect.
fn export_options(spec: &DealerSpec) -> ExportOptions {
    ExportOptions::bench(spec.dialect())
}

/// Generates one export per tenant and imports it, on two threads.
/// Returns the rows imported.
fn import_all(state: &Path, specs: &[DealerSpec], tmp: &Path) -> u64 {
    let policies = touchpointd::policy::load_dir(&state.join("policies")).expect("policies");
    let stores = Stores::open(state, &StoresConfig::default()).expect("stores");
    let next = AtomicUsize::new(0);
    let rows = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while let Some(spec) = specs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    import_one(&stores, &policies.set, spec, tmp, &rows);
                }
            });
        }
    });
    stores.close_all().expect("close");
    rows.into_inner()
}

fn import_one(
    stores: &Stores,
    set: &touchpoint_common::policy::PolicySet,
    spec: &DealerSpec,
    tmp: &Path,
    rows: &std::sync::atomic::AtomicU64,
) {
    let id = TenantId::new(spec.id.clone()).expect("id");
    stores
        .central()
        .register_tenant(&id, &spec.name)
        .expect("register");
    let file = tmp.join(spec.customer_file_name());
    let f = BufWriter::with_capacity(1 << 20, std::fs::File::create(&file).expect("create"));
    write_customer_export_as_of(spec, &export_options(spec), plan_day(), f).expect("generate");
    let store = stores.tenant(&id).expect("tenant");
    let opts = ImportOptions {
        policy: set.tenant(&id).expect("policy").import.clone(),
        ..ImportOptions::default()
    };
    let report = import_file(&store, &file, &spec.customer_file_name(), &opts).expect("import");
    assert!(report.is_committed(), "{}: {:?}", spec.id, report.status);
    assert_eq!(report.rows_rejected, 0, "{}: {:?}", spec.id, report.errors);
    rows.fetch_add(report.rows_ok, Ordering::Relaxed);
    let _ = std::fs::remove_file(&file);
}

/// Sums the planner's per-tenant phase times (`TP_PLAN_PROFILE`).
mod profile {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use tracing::field::{Field, Visit};
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::Layer;

    static SUMS: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());

    struct Sum;

    impl Visit for Sum {
        fn record_u64(&mut self, field: &Field, value: u64) {
            let mut sums = SUMS.lock().unwrap_or_else(|e| e.into_inner());
            *sums.entry(field.name()).or_default() += value;
        }
        fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
    }

    struct Phases;

    impl<S: tracing::Subscriber> Layer<S> for Phases {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            if event.metadata().target() == "touchpointd::planner::phases" {
                event.record(&mut Sum);
            }
        }
    }

    pub fn install() -> bool {
        if std::env::var_os("TP_PLAN_PROFILE").is_none() {
            return false;
        }
        let subscriber = tracing_subscriber::registry().with(
            Phases.with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target("touchpointd::planner::phases", tracing::Level::DEBUG),
            ),
        );
        tracing::subscriber::set_global_default(subscriber).is_ok()
    }

    /// Phase sums in seconds (CPU time over all planning threads).
    pub fn report(mode: &str) {
        let sums = SUMS.lock().unwrap_or_else(|e| e.into_inner());
        let list: Vec<String> = sums
            .iter()
            .map(|(k, v)| format!("{} {:.2}", k.trim_end_matches("_us"), *v as f64 / 1e6))
            .collect();
        eprintln!(
            "  {mode} phases, s summed over tenants: {}",
            list.join(", ")
        );
    }
}

fn child(mode: &str, args: &[String]) {
    let profiling = profile::install();
    let state = PathBuf::from(args.first().expect("state arg"));
    let customers: usize = args
        .get(1)
        .and_then(|v| v.parse().ok())
        .expect("customers arg");
    let specs = specs(customers);
    match mode {
        "prepare" => {
            let t = Instant::now();
            std::fs::create_dir_all(&state).expect("state dir");
            write_policies(&state.join("policies"), &specs);
            let tmp = tempfile::tempdir().expect("tempdir");
            let rows = import_all(&state, &specs, tmp.path());
            std::fs::write(state.join("ready"), b"").expect("ready marker");
            println!("rows={rows}\nsecs={}", t.elapsed().as_secs_f64());
        }
        "touch" => {
            // About 1 % of each dealer's customer numbers again, from another
            // seed: changed names and consents, new vehicles.
            let small: Vec<DealerSpec> = specs
                .iter()
                .map(|s| DealerSpec {
                    customers: (s.customers / 100).max(1),
                    seed: s.seed ^ 0x5eed,
                    ..s.clone()
                })
                .collect();
            let tmp = tempfile::tempdir().expect("tempdir");
            let t = Instant::now();
            let rows = import_all(&state, &small, tmp.path());
            println!("rows={rows}\nsecs={}", t.elapsed().as_secs_f64());
        }
        "dryrun" | "plan" | "detail" => {
            let name = mode;
            // As the daily schedule runs: reports keep their counts and
            // totals, not their lists. The detail run keeps everything, to
            // count occasions by service and drops by step.
            let dumping = std::env::var_os("TP_PLAN_DUMP");
            let keep = if mode == "detail" || dumping.is_some() {
                usize::MAX
            } else {
                0
            };
            let mode = if mode == "plan" {
                Mode::Commit
            } else {
                Mode::DryRun
            };
            let policies =
                touchpointd::policy::load_dir(&state.join("policies")).expect("policies");
            let set = &policies.set;
            let disk_before = dir_size(&state.join("tenants"));
            let mut cfg = StoresConfig::default();
            // TP_CACHE=<bytes> measures the effect of the per-tenant page cache.
            if let Some(c) = std::env::var("TP_CACHE").ok().and_then(|v| v.parse().ok()) {
                cfg.cache_bytes_per_tenant = c;
            }
            let stores = Stores::open(&state, &cfg).expect("stores");
            let ids: Vec<TenantId> = specs
                .iter()
                .map(|s| TenantId::new(s.id.clone()).expect("id"))
                .collect();
            let t = Instant::now();
            let mut vehicles = 0;
            for id in &ids {
                let store = stores.tenant(id).expect("open");
                vehicles += store.stats().expect("stats").vehicles;
            }
            let open_secs = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let leads = Learned::default();
            let results = plan_tenants(&stores, set, Some(&ids), plan_day(), mode, &leads, keep);
            let plan_secs = t.elapsed().as_secs_f64();
            let rss = peak_rss_mb();
            let reports: Vec<PlanReport> = results
                .into_iter()
                .map(|(id, r)| r.unwrap_or_else(|e| panic!("{id}: {e}")))
                .collect();
            stores.close_all().expect("close");
            drop(stores);
            let disk_after = dir_size(&state.join("tenants"));
            if let Some(path) = dumping {
                dump(&reports, Path::new(&path));
            }
            summarize(&reports, vehicles, keep > 0);
            if profiling {
                profile::report(name);
            }
            println!(
                "open_secs={open_secs}\nplan_secs={plan_secs}\nrss_mb={rss:.1}\noutbox_growth_mb={:.1}",
                (disk_after as f64 - disk_before as f64) / 1e6
            );
        }
        _ => panic!("unknown mode {mode}"),
    }
}

/// Writes every report without its clock readings, to compare the output
/// of two builds (`TP_PLAN_DUMP=<file>`).
fn dump(reports: &[PlanReport], path: &Path) {
    use std::io::Write;
    use touchpoint_common::domain::Timestamp;
    let mut out = BufWriter::new(std::fs::File::create(path).expect("dump file"));
    let clean = |m: &touchpoint_common::outbox::Message| {
        let mut m = m.clone();
        m.planned_at = Timestamp(0);
        for h in &mut m.history {
            h.0 = Timestamp(0);
        }
        m
    };
    for r in reports {
        let _ = writeln!(
            out,
            "tenant {} recipients {} found {} already {} unchanged {}",
            r.tenant, r.recipients, r.occasions_found, r.already_planned, r.unchanged
        );
        for m in &r.planned {
            let _ = writeln!(out, "planned {:?}", clean(m));
        }
        for m in &r.cancelled {
            let _ = writeln!(out, "cancelled {:?}", clean(m));
        }
        for d in &r.dropped {
            let _ = writeln!(out, "dropped {d:?}");
        }
        let _ = writeln!(out, "totals {:?}", r.totals);
    }
}

fn summarize(reports: &[PlanReport], vehicles: u64, lists: bool) {
    let sum = |f: fn(&PlanReport) -> u64| reports.iter().map(f).sum::<u64>();
    let mut by_service: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let (mut email, mut post, mut phone) = (0, 0, 0);
    for t in reports.iter().flat_map(|r| &r.totals) {
        let e = by_service.entry(&t.service).or_default();
        e.0 += t.messages;
        e.1 += t.dropped;
        email += t.email;
        post += t.post;
        phone += t.phone;
    }
    let messages = by_service
        .iter()
        .map(|(s, (m, _))| format!("{s} {m}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "vehicles={vehicles}\nrecipients={}\noccasions_found={}\nalready_planned={}\nplanned={}\ndropped={}\ncancelled={}\ntenants_unchanged={}\nmessages_by_service={messages}\nchannels=email {email}, post {post}, phone {phone}",
        sum(|r| r.recipients),
        sum(|r| r.occasions_found),
        sum(|r| r.already_planned),
        sum(|r| r.planned_count),
        sum(|r| r.dropped_count),
        sum(|r| r.cancelled_count),
        reports.iter().filter(|r| r.unchanged).count(),
    );
    if !lists {
        return;
    }
    let mut mix: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut dropped_by: BTreeMap<String, u64> = BTreeMap::new();
    let mut occasions_planned = 0;
    for r in reports {
        for o in r.planned.iter().flat_map(|m| &m.occasions) {
            mix.entry(&o.service).or_default().0 += 1;
            occasions_planned += 1;
        }
        for d in &r.dropped {
            mix.entry(&d.occasion.service).or_default().1 += 1;
            *dropped_by
                .entry(format!("{:?}", d.step).to_lowercase())
                .or_default() += 1;
        }
    }
    let mix = mix
        .iter()
        .map(|(s, (p, d))| format!("{s} {p} + {d}"))
        .collect::<Vec<_>>()
        .join(", ");
    let dropped_by = dropped_by
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!("occasions_planned={occasions_planned}\nmix={mix}\ndropped_by={dropped_by}");
}

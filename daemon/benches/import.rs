//! Import benchmark (release mode):
//!
//! ```sh
//! cargo bench -p touchpoint-daemon --bench import                 # 10k, 100k, 1M rows + 1,000 tenants
//! cargo bench -p touchpoint-daemon --bench import -- 10000 100000 # chosen sizes
//! cargo bench -p touchpoint-daemon --bench import -- --gb 1       # also stream a 1 GB file
//! ```
//!
//! Each measurement runs in a fresh child process so that peak RSS (VmHWM)
//! belongs to that measurement alone.

mod common;

use common::{dir_size, peak_rss_mb, rss_mb};

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use touchpoint_common::config::StoresConfig;
use touchpoint_common::policy::TenantImport;
use touchpoint_common::TenantId;
use touchpoint_datagen::{write_customer_export, DealerSpec, Dialect, ExportOptions};
use touchpointd::import::{import_file, parse::Parser, ImportOptions};
use touchpointd::store::Stores;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let Some(mode) = std::env::var_os("TP_BENCH_CHILD") {
        let mode = mode.to_string_lossy().to_string();
        child(&mode, &args);
        return;
    }
    let gb_at = args.iter().position(|a| a == "--gb");
    let gb: Option<f64> = gb_at
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok());
    let mut sizes: Vec<usize> = args
        .iter()
        .enumerate()
        .filter(|(i, _)| gb_at.is_none_or(|g| *i != g + 1))
        .filter_map(|(_, a)| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![10_000, 100_000, 1_000_000];
    }
    let work = tempfile::tempdir().expect("tempdir");
    println!(
        "touchpoint import benchmark — {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!();
    println!("| customers | rows (incl. vehicles) | file MB | parse rows/s | import rows/s | import s | identity s | peak RSS MB | on disk MB |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut bytes = Vec::new();
    for n in sizes {
        let file = work.path().join(format!("kunden-{n}.csv"));
        let rows = generate(&file, n);
        let mb = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
        let parse = run_child("parse", &file, work.path());
        let import = run_child("import", &file, work.path());
        let get = |out: &str, key: &str| -> f64 {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(f64::NAN)
        };
        println!(
            "| {n} | {rows} | {mb:.1} | {:.0} | {:.0} | {:.2} | {:.2} | {:.0} | {:.0} |",
            rows as f64 / get(&parse, "secs"),
            rows as f64 / get(&import, "import_secs"),
            get(&import, "import_secs"),
            get(&import, "identity_secs"),
            get(&import, "rss_mb"),
            get(&import, "disk_mb"),
        );
        // Where the bytes go: the live records (keys and values) against
        // the CSV, sled's files, and a fresh copy of the same trees (what
        // a backup or a rewrite writes).
        let csv = mb;
        let live = get(&import, "live_mb");
        let trees: Vec<String> = import
            .lines()
            .filter_map(|l| l.strip_prefix("tree="))
            .take(6)
            .map(str::to_string)
            .collect();
        bytes.push(format!(
            "| {n} | {csv:.1} | {live:.1} ({:.1} ×) | {:.1} ({:.1} ×) | {:.1} ({:.1} ×) | {} |",
            live / csv,
            get(&import, "sled_mb"),
            get(&import, "sled_mb") / csv,
            get(&import, "copy_mb"),
            get(&import, "copy_mb") / csv,
            trees.join(", ")
        ));
        let _ = std::fs::remove_file(&file);
    }
    println!();
    println!("Where the bytes go, one tenant after the import and identity pass (MB; × the CSV):");
    println!();
    println!("| customers | CSV | live keys and values | sled's files | a fresh copy of the trees | largest trees (live MB) |");
    println!("|---:|---:|---:|---:|---:|---|");
    for row in &bytes {
        println!("{row}");
    }
    if let Some(gb) = gb {
        let file = work.path().join("kunden-1gb.csv");
        let target = (gb * 1e9) as u64;
        let rows = generate_bytes(&file, target);
        let mb = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
        let parse = run_child("parse", &file, work.path());
        println!();
        println!("streaming a {mb:.0} MB file ({rows} rows), parse + validate only:");
        println!("{}", parse.trim());
        let _ = std::fs::remove_file(&file);
    }
    println!();
    let tenants = run_child("tenants", Path::new("1000"), work.path());
    println!("1,000 tenants opened at once:");
    println!("{}", tenants.trim());
}

fn spec(customers: usize) -> DealerSpec {
    DealerSpec {
        id: "d001".into(),
        name: "Autohaus Bench GmbH".into(),
        city: "München".into(),
        postcode_prefix: "80".into(),
        customers,
        seed: 42,
    }
}

fn opts() -> ExportOptions {
    ExportOptions {
        dialect: Dialect::DmsSemicolon1252,
        duplicate_rate: 0.02,
        fleet_rate: 0.02,
        no_consent_rate: 0.15,
        bad_row_rate: 0.0,
        past_quarter: false,
    }
}

fn generate(path: &Path, customers: usize) -> u64 {
    let f = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("create"));
    write_customer_export(&spec(customers), &opts(), f)
        .expect("generate")
        .rows
}

/// Grows the customer count until the export reaches `target` bytes.
fn generate_bytes(path: &Path, target: u64) -> u64 {
    // About 240 bytes per row in this dialect; generate once at the estimate.
    let customers = (target / 240) as usize;
    generate(path, customers)
}

fn run_child(mode: &str, file: &Path, work: &Path) -> String {
    let exe = std::env::current_exe().expect("exe");
    let out = Command::new(exe)
        .env("TP_BENCH_CHILD", mode)
        .arg(file)
        .arg(work)
        .output()
        .expect("child");
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        panic!("benchmark child {mode} failed");
    }
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn child(mode: &str, args: &[String]) {
    let file = PathBuf::from(args.first().expect("file arg"));
    let work = PathBuf::from(args.get(1).expect("work arg"));
    match mode {
        "parse" => {
            let t = Instant::now();
            let f = std::fs::File::open(&file).expect("open");
            let parser = Parser::new(
                std::io::BufReader::with_capacity(256 * 1024, f),
                "kunden.csv",
                &TenantImport::default(),
            )
            .expect("parser");
            let (mut ok, mut bad) = (0u64, 0u64);
            for r in parser {
                match r {
                    Ok(_) => ok += 1,
                    Err(_) => bad += 1,
                }
            }
            let secs = t.elapsed().as_secs_f64();
            println!(
                "rows_ok={ok}\nrows_rejected={bad}\nsecs={secs}\nrows_per_sec={:.0}\nrss_mb={:.1}",
                (ok + bad) as f64 / secs,
                peak_rss_mb()
            );
        }
        "import" => {
            let state = work.join(format!("state-{}", std::process::id()));
            let mut cfg = StoresConfig::default();
            // TP_CACHE=<bytes> measures the effect of the per-tenant page cache.
            if let Some(c) = std::env::var("TP_CACHE").ok().and_then(|v| v.parse().ok()) {
                cfg.cache_bytes_per_tenant = c;
            }
            let stores = Stores::open(&state, &cfg).expect("stores");
            let tenant = TenantId::new("d001").expect("id");
            stores
                .central()
                .register_tenant(&tenant, "Bench")
                .expect("register");
            let store = stores.tenant(&tenant).expect("tenant");
            let t = Instant::now();
            let report = import_file(&store, &file, "kunden.csv", &ImportOptions::default())
                .expect("import");
            let import_secs = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let again = touchpointd::identity::find_and_merge(&store, None).expect("identity");
            let identity_secs = t.elapsed().as_secs_f64();
            let rss = peak_rss_mb();
            let (mut trees, sled_bytes) = store.tree_bytes().expect("tree bytes");
            drop(store);
            let copy = work.join(format!("copy-{}", std::process::id()));
            stores.snapshot_tenant(&tenant, &copy).expect("copy");
            let copy_bytes = dir_size(&copy);
            let _ = std::fs::remove_dir_all(&copy);
            stores.close_all().expect("close");
            assert!(report.is_committed(), "{:?}", report.status);
            assert!(again.is_empty(), "a second identity pass finds nothing new");
            println!(
                "rows={}\nmerges={}\nimport_secs={import_secs}\nidentity_secs={identity_secs}\nrss_mb={rss:.1}\ndisk_mb={:.1}",
                report.rows_ok,
                report.merges,
                dir_size(&state.join("tenants/d001")) as f64 / 1e6
            );
            let live: u64 = trees.iter().map(|t| t.key_bytes + t.value_bytes).sum();
            println!(
                "live_mb={:.2}\nsled_mb={:.2}\ncopy_mb={:.2}",
                live as f64 / 1e6,
                sled_bytes as f64 / 1e6,
                copy_bytes as f64 / 1e6
            );
            trees.sort_by_key(|t| std::cmp::Reverse(t.key_bytes + t.value_bytes));
            for t in &trees {
                println!(
                    "tree={} {:.2} ({} entries)",
                    t.name,
                    (t.key_bytes + t.value_bytes) as f64 / 1e6,
                    t.entries
                );
            }
            let _ = std::fs::remove_dir_all(&state);
        }
        "tenants" => {
            let n: usize = file.to_string_lossy().parse().expect("count");
            let state = work.join("tenants-state");
            let cfg = StoresConfig {
                max_open_tenants: n as u32,
                ..StoresConfig::default()
            };
            {
                let stores = Stores::open(&state, &cfg).expect("stores");
                for i in 0..n {
                    let id = TenantId::new(format!("t{i:04}")).expect("id");
                    stores
                        .central()
                        .register_tenant(&id, "T")
                        .expect("register");
                    let s = stores.tenant(&id).expect("open");
                    let mut tx = s.begin_import(1).expect("begin");
                    let c = touchpoint_common::domain::Customer {
                        customer_no: "K1".into(),
                        last_name: "Müller".into(),
                        ..Default::default()
                    };
                    tx.put_customer(&c).expect("put");
                    tx.abort().expect("abort");
                }
                stores.close_all().expect("close");
            }
            let stores = Stores::open(&state, &cfg).expect("stores");
            let before = rss_mb();
            let t = Instant::now();
            let mut handles = Vec::with_capacity(n);
            for i in 0..n {
                let id = TenantId::new(format!("t{i:04}")).expect("id");
                let s = stores.tenant(&id).expect("open");
                let _ = s.customer("K1").expect("read");
                handles.push(s);
            }
            let open_secs = t.elapsed().as_secs_f64();
            let after = rss_mb();
            let threads = std::fs::read_dir("/proc/self/task")
                .map(|d| d.count())
                .unwrap_or(0);
            println!(
                "open={}\nopen_secs={open_secs:.2}\nrss_before_mb={before:.1}\nrss_after_mb={after:.1}\nper_tenant_kb={:.0}\nthreads={threads}\ndisk_per_tenant_kb={:.0}",
                stores.open_count(),
                (after - before) * 1024.0 / n as f64,
                dir_size(&state.join("tenants")) as f64 / 1024.0 / n as f64
            );
            let _ = std::io::stdout().flush();
        }
        "gen" => {
            let n: usize = work.to_string_lossy().parse().expect("customers");
            println!("rows={}", generate(&file, n));
        }
        _ => panic!("unknown mode {mode}"),
    }
}

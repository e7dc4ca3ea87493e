//! Email dispatch throughput (release mode), normally run by
//! `bench/dispatch.sh`, which starts Postfix's `smtp-sink`, measures
//! `smtp-source` against it as the ceiling and then runs:
//!
//! ```sh
//! cargo bench -p touchpoint-daemon --bench dispatch -- --relay 127.0.0.1:25250   # 10k, 100k
//! cargo bench -p touchpoint-daemon --bench dispatch -- --relay 127.0.0.1:25250 \
//!     --connections 1,4,16 --ceiling 1=19000,4=14000,16=16000 10000
//! cargo bench -p touchpoint-daemon --bench dispatch -- 10000      # the .eml spool only
//! cargo bench -p touchpoint-daemon --bench dispatch -- --probe-size
//! cargo bench -p touchpoint-daemon --bench dispatch -- \
//!     --dkim "$PWD/tests/fixtures/dkim/test-rsa.pem" 10000  # DKIM-signed (an absolute path: cargo runs benches in daemon/)
//! ```
//!
//! One tenant (`d001`, its generated policy, the shipped brand and
//! templates) gets customers through the real import path (a generated
//! export, `import::import_file`, identity pass). Of those with email
//! consent, an address and a vehicle, N each get one planned service
//! reminder by email for yesterday, written through the store's plan API
//! as the planner writes them (the planner itself would find occasions for
//! only about a third of the customers on one day).
//!
//! Each measurement then runs in a fresh child process on a copy of that
//! state: the real `Dispatcher` (release with a render check, claim with
//! consent and budget checks, personalised rendering, MIME build, the
//! transport, the outcome) is started and the clock runs until every
//! message is `sent` and the dispatcher has stopped, i.e. the last
//! transition is flushed. Rows:
//!
//! - `relay`: SMTP to `--relay` (a sink) over 1, 4 and 16 connections
//!   (`--connections`, `dispatch.smtp.connections`);
//! - `spool`: no relay host, each email written as an `.eml` file
//!   (`--no-spool` leaves it out).
//!
//! The brand policy of the benchmark has no throttles (the per-domain
//! concurrency is raised from its default 8 to 1000) and the dealer's
//! budgets and daily capacity are far above what N messages need.
//!
//! Printed per row: total seconds and messages/s; *first send*, the time
//! until the first message was accepted (the release of all N messages:
//! render check and the planned → rendered → queued transition, in one
//! group); the rate from the first to the last accepted message; the CPU
//! time of the process; peak RSS. With `--ceiling k=rate,...` (smtp-source's
//! rate per session count) the ratio to it.
//! `--dkim FILE` signs every email with that PEM key (RSA or Ed25519, as
//! the daemon's `[[dispatch.dkim]]`) for the sender's domain.
//! `--probe-size` prints the mean size of our rendered emails
//! (`message_bytes=`), for smtp-source's `-l`.

mod common;

use common::peak_rss_mb;

use std::collections::BTreeMap;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use touchpoint_common::config::{DispatchConfig, DkimConfig, SmtpConfig, SmtpTls, StoresConfig};
use touchpoint_common::domain::{Channel, Timestamp};
use touchpoint_common::outbox::{Message, MessageStatus, Occasion, Step, Why};
use touchpoint_common::policy::{OccasionKind, PolicySet};
use touchpoint_common::{Date, TenantId};
use touchpoint_datagen::{
    demo_dealers, tenant_policy_toml, write_customer_export_as_of, DealerSpec, ExportOptions,
};
use touchpointd::config::{parse_hhmm, DispatchPaths};
use touchpointd::dispatch::Dispatcher;
use touchpointd::import::{import_file, ImportOptions};
use touchpointd::policy::PolicyHandle;
use touchpointd::store::{PlanWrite, Stores};

const TENANT: &str = "d001";
/// Customers generated per message wanted: a little over half have email
/// consent, an address and a vehicle (no customer without any consent here).
const CUSTOMERS_PER_MESSAGE: f64 = 2.2;
/// A measurement that sends nothing for this long has failed.
const STALL: Duration = Duration::from_secs(120);
/// Messages of the size probe.
const PROBE_MESSAGES: usize = 200;

struct Args {
    relay: Option<String>,
    connections: Vec<u32>,
    sizes: Vec<usize>,
    ceiling: BTreeMap<u32, f64>,
    spool: bool,
    probe: bool,
    dkim: Option<PathBuf>,
}

/// The children learn the DKIM key from the parent through this variable.
const DKIM_ENV: &str = "TP_BENCH_DKIM";

fn parse_args() -> Args {
    let mut a = Args {
        relay: None,
        connections: vec![1, 4, 16],
        sizes: Vec::new(),
        ceiling: BTreeMap::new(),
        spool: true,
        probe: false,
        dkim: None,
    };
    let mut it = std::env::args().skip(1).filter(|a| a != "--bench");
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--relay" => a.relay = Some(it.next().expect("--relay HOST:PORT")),
            "--connections" => {
                a.connections = it
                    .next()
                    .expect("--connections 1,4,16")
                    .split(',')
                    .map(|k| k.trim().parse().expect("connection count"))
                    .collect();
            }
            "--ceiling" => {
                for pair in it.next().expect("--ceiling k=rate,...").split(',') {
                    if let Some((k, rate)) = pair.split_once('=') {
                        a.ceiling.insert(
                            k.trim().parse().expect("session count"),
                            rate.trim().parse().expect("rate"),
                        );
                    }
                }
            }
            "--no-spool" => a.spool = false,
            "--probe-size" => a.probe = true,
            "--dkim" => {
                let file = PathBuf::from(it.next().expect("--dkim FILE"));
                a.dkim = Some(std::fs::canonicalize(&file).expect("--dkim: no such key file"));
            }
            n => a
                .sizes
                .push(n.parse().unwrap_or_else(|_| panic!("unknown argument {n}"))),
        }
    }
    if a.sizes.is_empty() {
        a.sizes = vec![10_000, 100_000];
    }
    a
}

fn main() {
    if let Some(mode) = std::env::var_os("TP_BENCH_CHILD") {
        let args: Vec<String> = std::env::args().skip(1).collect();
        child(&mode.to_string_lossy(), &args);
        return;
    }
    let args = parse_args();
    if let Some(key) = &args.dkim {
        // Before any thread is started; the children inherit it.
        std::env::set_var(DKIM_ENV, key);
    }
    let scratch = tempfile::tempdir().expect("tempdir");
    if args.probe {
        let prepared = scratch.path().join("probe");
        run_child("prepare", &prepared, PROBE_MESSAGES, &[]);
        let out = run_child("dispatch", &prepared, PROBE_MESSAGES, &["spool", "0"]);
        println!("message_bytes={:.0}", get(&out, "message_bytes"));
        return;
    }
    println!(
        "touchpoint email dispatch benchmark — {} cores, tenant {TENANT}, {}, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        match &args.relay {
            Some(r) => format!("relay {r}"),
            None => "no relay (spool only)".into(),
        },
        match &args.dkim {
            Some(k) => format!("DKIM-signed with {}", k.display()),
            None => "no DKIM".into(),
        }
    );
    println!();
    let mut rows = Vec::new();
    for &n in &args.sizes {
        let prepared = scratch.path().join(format!("prepared-{n}"));
        let prep = run_child("prepare", &prepared, n, &[]);
        eprintln!(
            "prepared {n} planned emails in {:.1} s ({:.0} customers imported, {:.0} eligible)",
            get(&prep, "secs"),
            get(&prep, "customers"),
            get(&prep, "eligible")
        );
        let mut runs: Vec<(&str, u32)> = Vec::new();
        if args.relay.is_some() {
            runs.extend(args.connections.iter().map(|&k| ("relay", k)));
        }
        if args.spool {
            runs.push(("spool", 0));
        }
        for (transport, k) in runs {
            let state = scratch.path().join("state");
            let _ = std::fs::remove_dir_all(&state);
            copy_dir(&prepared, &state).expect("copy prepared state");
            let relay = args.relay.clone().unwrap_or_default();
            let k_arg = k.to_string();
            let extra: Vec<&str> = if transport == "relay" {
                vec!["relay", &k_arg, &relay]
            } else {
                vec!["spool", "0"]
            };
            let out = run_child("dispatch", &state, n, &extra);
            let secs = get(&out, "secs");
            let rate = n as f64 / secs;
            let first = get(&out, "first_secs");
            let steady = (n as f64 - 1.0) / (get(&out, "last_secs") - first);
            let (ceiling, ratio) = match args.ceiling.get(&k) {
                Some(c) if transport == "relay" => (format!("{c:.0}"), format!("{:.2}", rate / c)),
                _ => ("".into(), "".into()),
            };
            eprintln!("  {transport} {k}: {rate:.0} messages/s");
            rows.push(format!(
                "| {n} | {transport} | {} | {secs:.2} | {rate:.0} | {first:.2} | {steady:.0} | {ceiling} | {ratio} | {:.1} | {:.0} | {} |",
                if transport == "relay" { k.to_string() } else { "–".into() },
                get(&out, "cpu_secs"),
                get(&out, "rss_mb"),
                bytes_cell(get(&out, "message_bytes")),
            ));
            let _ = std::fs::remove_dir_all(&state);
        }
        let _ = std::fs::remove_dir_all(&prepared);
    }
    println!("| messages | transport | connections | s | messages/s | first send after s | messages/s after first send | smtp-source messages/s | ratio | CPU s | peak RSS MB | bytes/message |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!("{r}");
    }
}

/// The mean message size is known where the messages are files (spool).
fn bytes_cell(bytes: f64) -> String {
    if bytes.is_nan() {
        "–".into()
    } else {
        format!("{bytes:.0}")
    }
}

fn get(out: &str, key: &str) -> f64 {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

fn run_child(mode: &str, state: &Path, messages: usize, extra: &[&str]) -> String {
    let exe = std::env::current_exe().expect("exe");
    let out = Command::new(exe)
        .env("TP_BENCH_CHILD", mode)
        .arg(state)
        .arg(messages.to_string())
        .args(extra)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("child");
    if !out.status.success() {
        panic!(
            "benchmark child {mode} failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
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

fn child(mode: &str, args: &[String]) {
    let state = PathBuf::from(args.first().expect("state arg"));
    let messages: usize = args
        .get(1)
        .and_then(|v| v.parse().ok())
        .expect("messages arg");
    match mode {
        "prepare" => prepare(&state, messages),
        "dispatch" => {
            let transport = args.get(2).map(String::as_str).unwrap_or("spool");
            let connections: u32 = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(0);
            let relay = args.get(4).map(String::as_str).unwrap_or("");
            dispatch(&state, messages, transport, connections, relay);
        }
        _ => panic!("unknown mode {mode}"),
    }
}

/// The dealer: the demo network's first, with as many customers as needed.
fn spec(messages: usize) -> DealerSpec {
    let mut s = demo_dealers(1).remove(0);
    s.customers = (messages as f64 * CUSTOMERS_PER_MESSAGE) as usize + 100;
    s
}

/// The shipped brand without throttles, the shipped templates, and the
/// dealer's generated policy with room for every message.
fn write_policies(dir: &Path, spec: &DealerSpec) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let files = touchpointd::policy::read_dir(&shipped, "policies").expect("shipped policies");
    for (rel, mut text) in files {
        if rel.starts_with("dealers/") {
            continue;
        }
        if rel == "brand.toml" {
            text = without_throttle(&text);
            text.push_str(
                "\n# Benchmark: no throttle (per-domain concurrency raised from 8).\n\
                 [throttle]\nglobal_per_minute = 0\ntenant_per_day = 0\n\
                 [throttle.domains]\ndefault = { concurrency = 1000, per_minute = 0 }\n",
            );
        }
        let path = dir.join(&rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("policy dir");
        std::fs::write(path, text).expect("write policy");
    }
    let dealer: String = tenant_policy_toml(spec)
        .lines()
        .map(|l| {
            if l.starts_with("monthly_budget =") {
                "monthly_budget = 1000000.00".to_string()
            } else if l.starts_with("daily_capacity =") {
                "daily_capacity = 1000000".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::create_dir_all(dir.join("dealers")).expect("dealers dir");
    std::fs::write(dir.join("dealers").join(format!("{TENANT}.toml")), dealer)
        .expect("write dealer policy");
}

/// The brand policy without its `[throttle]` tables.
fn without_throttle(brand: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in brand.lines() {
        let t = line.trim_start();
        if t.starts_with('[') {
            skipping = t.starts_with("[throttle]") || t.starts_with("[throttle.");
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Imports the dealer's customers and writes `messages` planned emails.
fn prepare(state: &Path, messages: usize) {
    let t = Instant::now();
    let spec = spec(messages);
    std::fs::create_dir_all(state).expect("state dir");
    write_policies(&state.join("policies"), &spec);
    let policies = touchpointd::policy::load_dir(&state.join("policies")).expect("policies");
    let stores = Stores::open(state, &StoresConfig::default()).expect("stores");
    let id = TenantId::new(TENANT).expect("id");
    stores
        .central()
        .register_tenant(&id, &spec.name)
        .expect("register");
    let day = Date::today().add_days(-1);
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join(spec.customer_file_name());
    let opts = ExportOptions {
        dialect: spec.dialect(),
        duplicate_rate: 0.0,
        fleet_rate: 0.02,
        no_consent_rate: 0.0,
        bad_row_rate: 0.0,
        past_quarter: false,
    };
    let f = BufWriter::with_capacity(1 << 20, std::fs::File::create(&file).expect("create"));
    write_customer_export_as_of(&spec, &opts, day, f).expect("generate");
    let store = stores.tenant(&id).expect("tenant");
    let tenant = policies.set.tenant(&id).expect("tenant policy");
    let import = ImportOptions {
        policy: tenant.import.clone(),
        ..ImportOptions::default()
    };
    let report = import_file(&store, &file, &spec.customer_file_name(), &import).expect("import");
    assert!(report.is_committed(), "{:?}", report.status);

    let domain = tenant
        .sender
        .email
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .expect("dealer sender address");
    let mut recipients = Vec::with_capacity(messages);
    let mut customers = 0usize;
    // Consent as the planner and dispatch read it: per person, across the
    // numbers merged into one (a merged number is no recipient of its own).
    let merged_into = store.merge_map().expect("merges");
    let people = touchpointd::planner::consent::People::from_merges(&merged_into);
    for c in store.customers() {
        let c = c.expect("customer");
        customers += 1;
        if recipients.len() >= messages || merged_into.contains_key(&c.customer_no) {
            continue;
        }
        if c.email.as_deref().unwrap_or("").is_empty() {
            continue;
        }
        let statements: Vec<_> = people
            .numbers_of(&c.customer_no)
            .into_iter()
            .filter_map(|no| store.consent(no, Channel::Email).expect("consent"))
            .collect();
        if !touchpoint_common::consent::standing(&statements).is_some_and(|k| k.granted) {
            continue;
        }
        let Some(v) = store
            .vehicles_of(&c.customer_no)
            .expect("vehicles")
            .into_iter()
            .next()
        else {
            continue;
        };
        recipients.push((c.customer_no, v.vin));
    }
    let eligible = recipients.len();
    assert!(
        eligible >= messages,
        "only {eligible} of {customers} customers can get an email; raise CUSTOMERS_PER_MESSAGE"
    );
    let first = store.reserve_message_ids(messages as u64).expect("ids");
    let now = Timestamp::now();
    let service = "service_due";
    let due = day.add_days(21);
    let last_service = due.add_months(0).add_days(-365);
    let batch: Vec<Message> = recipients
        .into_iter()
        .enumerate()
        .map(|(i, (recipient, vin))| {
            let id = first + i as u64;
            Message {
                id,
                message_id: format!("<tp.{TENANT}.{id}@{domain}>"),
                recipient,
                channel: Channel::Email,
                service: service.into(),
                template: service.into(),
                occasions: vec![Occasion {
                    key: format!("{service}:{vin}:{last_service}"),
                    service: service.into(),
                    kind: OccasionKind::ServiceDue,
                    vin: Some(vin),
                    due,
                    reason: format!("12 months after the service on {last_service}"),
                    value: 3800,
                }],
                send_on: day,
                send_at: 9 * 60,
                cost: 2,
                value: 3800,
                status: MessageStatus::Planned,
                why: vec![
                    Why {
                        step: Step::Channel,
                        text: "email: first of the service's channels with consent".into(),
                    },
                    Why {
                        step: Step::SendTime,
                        text: format!("{day} 09:00, 21 days before the occasion"),
                    },
                ],
                planned_at: now,
                policy: policies.set.fingerprint,
                history: vec![(now, MessageStatus::Planned, "planned".into())],
                dispatch: Default::default(),
            }
        })
        .collect();
    store
        .commit_plan(&PlanWrite {
            new: &batch,
            revised: &[],
            stamp: 0,
        })
        .expect("commit plan");
    drop(store);
    stores.close_all().expect("close");
    println!(
        "customers={customers}\neligible={eligible}\nsecs={}",
        t.elapsed().as_secs_f64()
    );
}

/// User plus system CPU time of this process, seconds.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    // Clock ticks: USER_HZ is 100 on Linux.
    f.iter().sum::<f64>() / 100.0
}

/// Runs the dispatcher until `messages` are sent and prints the figures.
/// The domain of the tenant's sender address, as dispatch chooses it
/// (the dealer's sender, else `noreply@` the brand's bounce domain).
fn sender_domain(set: &PolicySet) -> String {
    let id = TenantId::new(TENANT).expect("id");
    let tenant = set.tenant(&id).expect("tenant policy");
    let from = &tenant.sender.email;
    match from.rsplit_once('@') {
        Some((_, domain)) if !from.is_empty() => domain.to_ascii_lowercase(),
        _ => set.brand.email.bounce_domain.to_ascii_lowercase(),
    }
}

fn dispatch(state: &Path, messages: usize, transport: &str, connections: u32, relay: &str) {
    let policies = touchpointd::policy::load_dir(&state.join("policies")).expect("policies");
    let stores = Arc::new(Stores::open(state, &StoresConfig::default()).expect("stores"));
    let mut cfg = DispatchConfig::default();
    if transport == "relay" {
        let (host, port) = relay.rsplit_once(':').expect("relay HOST:PORT");
        cfg.smtp = SmtpConfig {
            host: host.into(),
            port: port.parse().expect("relay port"),
            tls: SmtpTls::None,
            connections,
            timeout_secs: 30,
            hello_name: "bench.test".into(),
            ..SmtpConfig::default()
        };
    }
    if let Some(key) = std::env::var_os(DKIM_ENV) {
        cfg.dkim = vec![DkimConfig {
            domain: sender_domain(&policies.set),
            selector: "bench".into(),
            key_file: key.to_string_lossy().into_owned(),
        }];
    }
    let paths = DispatchPaths {
        spool: state.join("mail"),
        letters: state.join("letters"),
        calls: state.join("calls"),
        secret: state.join("dispatch.key"),
        bounce_maildir: None,
        batch_at: parse_hhmm(&cfg.batch_at).expect("batch_at"),
    };
    let dispatcher = Arc::new(
        Dispatcher::new(
            stores.clone(),
            Arc::new(PolicyHandle::new(policies)),
            &cfg,
            paths,
        )
        .expect("dispatcher"),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Progress is read from the store's sent-per-day counter (written with
    // each recorded group): `Dispatcher::status` would cost more than it
    // measures (it lists every recipient domain of the last minute).
    let id = TenantId::new(TENANT).expect("id");
    let store = stores.tenant(&id).expect("tenant");
    let today = Date::today();
    let sent_so_far = || {
        let on = |d: Date| store.sent_on(d).expect("sent per day");
        (on(today.add_days(-1)) + on(today) + on(today.add_days(1))) as usize
    };
    let cpu_before = cpu_secs();
    let (secs, first, last) = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let t = Instant::now();
        let run = tokio::spawn(
            dispatcher
                .clone()
                .run(shutdown.clone(), Duration::from_secs(30)),
        );
        let mut first = None;
        let mut seen = 0;
        let mut progress = Instant::now();
        let last = loop {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let sent = sent_so_far();
            if sent > 0 && first.is_none() {
                first = Some(t.elapsed());
            }
            if sent >= messages {
                break t.elapsed();
            }
            if sent != seen {
                seen = sent;
                progress = Instant::now();
            } else if progress.elapsed() > STALL {
                let s = dispatcher.status(&touchpoint_common::protocol::Scope::All, &[]);
                panic!(
                    "stalled at {sent} of {messages} sent ({} deferred, {} failed): {}",
                    s.deferred_total, s.failed_total, s.last_error
                );
            }
        };
        // The dispatcher stops once the group in hand is recorded and flushed.
        shutdown.cancel();
        run.await.expect("dispatcher task");
        (t.elapsed(), first, last)
    });
    let cpu = cpu_secs() - cpu_before;
    let rss = peak_rss_mb();

    // Every message is sent, durably, and nothing is left in a queue.
    assert!(store.in_flight().expect("in flight").is_empty());
    assert_eq!(store.queued_count(Channel::Email), 0);
    let sent = store
        .messages()
        .filter(|m| m.as_ref().is_ok_and(|m| m.status == MessageStatus::Sent))
        .count();
    assert_eq!(sent, messages, "messages sent");
    let bytes = if transport == "spool" {
        let dir = state.join("mail").join(TENANT);
        let sizes: Vec<u64> = std::fs::read_dir(&dir)
            .expect("spool dir")
            .filter_map(|e| e.ok()?.metadata().ok().map(|m| m.len()))
            .collect();
        assert_eq!(sizes.len(), messages, "files in the spool");
        sizes.iter().sum::<u64>() as f64 / sizes.len() as f64
    } else {
        f64::NAN
    };
    drop(store);
    stores.close_all().expect("close");
    println!(
        "secs={}\nfirst_secs={}\nlast_secs={}\ncpu_secs={cpu}\nrss_mb={rss:.1}\nmessage_bytes={bytes}",
        secs.as_secs_f64(),
        first.unwrap_or_default().as_secs_f64(),
        last.as_secs_f64(),
    );
}

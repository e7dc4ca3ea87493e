//! `touchpoint simulate`: a season of the real daemon against a hidden
//! response model with a known optimum (`touchpoint_datagen::truth`).
//!
//! One run generates a network of dealers, starts `touchpointd` on a
//! simulated clock, imports the dealers' exports over the socket and then,
//! for every working day of the season: restarts the daemon with
//! `--clock-start` at that day's evening (after every send window), imports
//! the dealers' visits export of the days before, plans, lets dispatch send
//! what is due (emails to the spool, letters and call lists into their
//! batches), reads what went out from the queue and hands it to the model,
//! which decides who comes to the workshop and when. Each week it asks the
//! daemon's results report for the response rate and lift of the week's
//! messages and checks the pooled report against the k-dealer rule; the
//! model says what the messages were worth against the oracle.
//!
//! `--compare N` runs both policies over seeds 1 to N and writes the table
//! and the chart (`compare.md`, `lift.png`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use touchpoint_common::outbox::MessageStatus;
use touchpoint_common::queue::QueueFilter;
use touchpoint_common::report::answer::ReportQuery;
use touchpoint_common::report::stats::By;
use touchpoint_common::{Date, TenantId};
use touchpoint_datagen::truth::{demo_services, Truth};
use touchpoint_datagen::{
    demo_dealers, records, write_customer_export_as_of, write_visit_rows,
    write_visits_export_as_of, DealerSpec, ExportOptions, Record, VisitRow,
};

use crate::client::Client;
use crate::demo::{self, DaemonProcess};
use crate::output::emit;

mod summary;
mod world;

pub use summary::Policy;
use summary::{RunResult, Sizes};

use world::{Seen, WeekTally, World};

/// Queue pages read at once.
const PAGE: u32 = 500;
/// How long dispatch may go without sending any of the day's emails.
const DISPATCH_LIMIT: Duration = Duration::from_secs(300);
/// Share of a learning service's messages that explore (the brand's
/// default; `--explore-percent` sets another).
const EXPLORE_PERCENT: u8 = 10;
/// Weeks after which a week's messages are past their attribution window
/// (60 days).
const CLOSED_AFTER_WEEKS: usize = 9;
/// The hour of each simulated day the daemon is started at: after every
/// send window, so that the whole day is due.
const EVENING: &str = "19:00";

#[derive(Debug, Args, Clone)]
pub struct SimulateArgs {
    /// Dealers (tenants) in the network. The defaults are the sizes
    /// EVALUATION.md was run with on a shared two-core machine.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u16).range(1..=999))]
    pub dealers: u16,
    /// Customer records in all, split evenly over the dealers.
    #[arg(long, default_value_t = 3_000)]
    pub customers: u32,
    /// Weeks of the season.
    #[arg(long, default_value_t = 26, value_parser = clap::value_parser!(u16).range(1..=104))]
    pub weeks: u16,
    /// The learning services' `explore_percent` in the run's brand file:
    /// the share of their messages a Thompson draw decides (learned runs).
    #[arg(long, default_value_t = EXPLORE_PERCENT, value_parser = clap::value_parser!(u8).range(0..=50))]
    pub explore_percent: u8,
    /// The learning services' `learn_window_days` (learned runs): days
    /// after a send within which learning counts a response; by default
    /// the whole attribution window (60 days).
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u16).range(1..=60))]
    pub learn_window_days: Option<u16>,
    /// Seed of the network and of the hidden model.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// fixed: the brand's lead and send times; learned: learning on.
    #[arg(long, value_enum, default_value_t = Policy::Fixed)]
    pub policy: Policy,
    /// The season's first day (a Monday).
    #[arg(long, default_value = "2027-01-04", value_parser = crate::format::parse_day)]
    pub start: Date,
    /// Where runs keep their state and write their results; a run's
    /// directory is wiped first (only one a run made).
    #[arg(long, default_value = "sim-out", value_name = "DIR")]
    pub out: PathBuf,
    /// Run both policies over seeds 1..=N and write the comparison (table
    /// and chart) into --out.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=50))]
    pub compare: Option<u16>,
    /// With --compare: take a run whose result.json is already in --out
    /// (same dealers, customers, weeks and start) instead of running it again.
    #[arg(long, requires = "compare")]
    pub reuse: bool,
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let out = std::path::absolute(&args.out)
        .with_context(|| format!("cannot resolve {}", args.out.display()))?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    match args.compare {
        None => {
            let dir = run_dir(&out, &args, args.policy, args.seed);
            let r = run_season(&args, args.seed, args.policy, &dir).await?;
            emit(&summary::season_line(&r));
            emit(&summary::gap_line(&r));
            Ok(())
        }
        Some(n) => {
            let mut runs = Vec::new();
            for seed in 1..=u64::from(n) {
                for policy in [Policy::Fixed, Policy::Learned] {
                    let dir = run_dir(&out, &args, policy, seed);
                    let kept = if args.reuse {
                        summary::read_run(&dir, &sizes(&args), seed, policy)
                    } else {
                        None
                    };
                    let r = match kept {
                        Some(r) => r,
                        None => run_season(&args, seed, policy, &dir).await?,
                    };
                    emit(&summary::season_line(&r));
                    runs.push(r);
                }
            }
            let table = summary::table(&sizes(&args), &runs);
            demo::write_file(&out.join("compare.md"), &table)?;
            let json = serde_json::to_string_pretty(&runs).context("encoding the runs")?;
            demo::write_file(&out.join("compare.json"), &json)?;
            let chart = out.join("lift.png");
            match summary::chart(&runs, &chart) {
                Ok(()) => emit(&format!("  chart       {}\n", chart.display())),
                Err(e) => emit(&format!("  chart       not drawn: {e:#}\n")),
            }
            emit(&table);
            Ok(())
        }
    }
}

/// The sizes of a run, as its results record them.
fn sizes(args: &SimulateArgs) -> Sizes {
    Sizes {
        dealers: args.dealers,
        customers: args.customers,
        weeks: args.weeks,
        start: args.start,
        explore_percent: args.explore_percent,
        learn_window_days: args.learn_window_days,
    }
}

/// A run's directory under `--out`: `learned-s1`, or `learned-x50-w28-s1`
/// with another share of exploration than the default or a learning window.
fn run_dir(out: &Path, args: &SimulateArgs, policy: Policy, seed: u64) -> PathBuf {
    let mut tag = String::new();
    if policy == Policy::Learned {
        if args.explore_percent != EXPLORE_PERCENT {
            tag += &format!("-x{}", args.explore_percent);
        }
        if let Some(w) = args.learn_window_days {
            tag += &format!("-w{w}");
        }
    }
    out.join(format!("{}{tag}-s{seed}", policy.name()))
}

/// The brand file a run plans with: the shipped one with a control group
/// for the modelled services (lift needs one), due dates by date only (so
/// that the model and the planner agree on them), no bundling (each
/// message is one arm), the model's lead grid, and learning switched on
/// (`learned`) or off (`fixed`).
fn sim_brand(
    policy: Policy,
    explore_percent: u8,
    learn_window_days: Option<u16>,
) -> anyhow::Result<String> {
    // The shipped learning keys go; the run's own are added below.
    const OURS: [&str; 5] = [
        "learn ",
        "lead_days_min ",
        "lead_days_max ",
        "lead_days_step ",
        "explore_percent ",
    ];
    let mut text = String::new();
    let mut table = "";
    for line in demo::BRAND
        .lines()
        .filter(|l| !OURS.iter().any(|k| l.starts_with(k)))
    {
        if let Some(header) = line.trim().strip_prefix('[') {
            table = header.trim_end_matches(']').trim();
        }
        if table == "throttle" || table.starts_with("throttle.") {
            text.push_str(&unthrottled(line));
        } else {
            text.push_str(line);
        }
        text.push('\n');
    }
    let learn = policy == Policy::Learned;
    let mut edits: Vec<(String, String)> = vec![
        (
            "bundling_window_days = 30\n".into(),
            "bundling_window_days = 0\n".into(),
        ),
        ("interval_km = 30000\n".into(), String::new()),
    ];
    for spec in demo_services() {
        edits.push((
            format!("lead_days = {}\n", spec.policy_lead),
            format!(
                "lead_days = {}\ncontrol_percent = 10\nlearn = {learn}\nlead_days_min = {}\nlead_days_max = {}\nlead_days_step = {}\nexplore_percent = {explore_percent}\n{}",
                spec.policy_lead,
                spec.grid.min,
                spec.grid.max,
                spec.grid.step,
                learn_window_days
                    .map(|w| format!("learn_window_days = {w}\n"))
                    .unwrap_or_default()
            ),
        ));
    }
    for (from, to) in edits {
        if text.matches(from.as_str()).count() != 1 {
            bail!("the shipped brand.toml no longer has one {from:?}; the simulation's brand file needs updating");
        }
        text = text.replacen(from.as_str(), &to, 1);
    }
    Ok(text)
}

/// A line of the brand's `[throttle]` tables with its per-minute email
/// throttle lifted (`0`, no limit). The season's emails go into the spool
/// at 19:00, after every send window, so a throttle changes neither a send
/// day nor its slot, only how long a large network's first day (its
/// backlog) takes to go out. Connections per domain and the per-dealer day
/// cap stay as shipped.
fn unthrottled(line: &str) -> String {
    // Also `global_per_minute = `.
    const KEY: &str = "per_minute = ";
    let mut out = line.to_owned();
    let mut from = 0;
    while let Some(value) = out[from..].find(KEY).map(|i| i + from + KEY.len()) {
        let end = out[value..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(out.len(), |i| i + value);
        out.replace_range(value..end, "0");
        from = value;
    }
    out
}

/// One season: returns what it found and writes it into `dir`.
async fn run_season(
    args: &SimulateArgs,
    seed: u64,
    policy: Policy,
    dir: &Path,
) -> anyhow::Result<RunResult> {
    let started = Instant::now();
    let brand = sim_brand(policy, args.explore_percent, args.learn_window_days)?;
    demo::prepare_dir(dir, false)?;
    let socket = dir.join("touchpoint.sock");
    if socket.as_os_str().len() > demo::MAX_SOCKET_PATH {
        bail!(
            "the socket path {} is too long for a Unix socket; choose a shorter --out",
            socket.display()
        );
    }
    let dealers = network(args, seed);
    let policies = demo::generate_policies(dir, &dealers)?;
    demo::write_file(&policies.join("brand.toml"), &brand)?;
    let port = demo::ephemeral_port()?;
    let config = demo::write_config(dir, &socket, &policies, port)?;

    let start = args.start;
    let end = start.add_days(7 * i32::from(args.weeks));
    let truth = Truth::new(seed, &demo_services());
    let grid_max = truth
        .services
        .iter()
        .map(|s| s.spec.grid.max)
        .max()
        .unwrap_or(0);
    // Exports as of the day before the season, generated and kept.
    let as_of = start;
    let mut recs: Vec<Vec<Record>> = Vec::new();
    let mut files = Vec::new();
    for spec in &dealers {
        // No fleets: the planner writes one letter to a fleet's holder for
        // all its vehicles but keeps a control record per vehicle, which
        // would make messages and control records count different things.
        let opts = ExportOptions {
            fleet_rate: 0.0,
            ..ExportOptions::clean(spec.dialect())
        };
        let d = dir.join("exports").join(&spec.id);
        std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
        let customers = d.join(spec.customer_file_name());
        let visits = d.join(spec.visits_file_name());
        write_customer_export_as_of(spec, &opts, as_of, create(&customers)?)?;
        write_visits_export_as_of(spec, &opts, as_of, create(&visits)?)?;
        recs.push(records(spec, &opts, as_of).collect());
        files.push((TenantId::new(spec.id.clone())?, customers, visits));
    }
    let mut world = World::new(
        truth,
        dealers.iter().map(|d| d.id.clone()).collect(),
        &recs,
        start,
        end.add_days(i32::try_from(grid_max).unwrap_or(0) + 14),
        start.add_days(i32::try_from(grid_max).unwrap_or(0)),
    );
    drop(recs);
    emit(&format!(
        "simulate: {} policy, seed {seed}, {} dealers, {} customers, {} weeks from {start}; {} occasions modelled ({})\n",
        policy.name(),
        dealers.len(),
        args.customers,
        args.weeks,
        world.dues.len(),
        dir.display()
    ));

    let mut daemon =
        DaemonProcess::start(dir, &config, &socket, Some(&format!("{start} {EVENING}"))).await?;
    let mut client = daemon.client.take().context("daemon connection missing")?;
    for (tenant, customers, visits) in &files {
        for f in [customers, visits] {
            let r = client
                .upload(tenant, f)
                .await
                .with_context(|| format!("importing {}", f.display()))?;
            if !r.is_committed() {
                bail!("{tenant}: {} was not imported: {:?}", f.display(), r.status);
            }
        }
    }

    let min_dealers = policy_min_dealers(&brand)?;
    let mut rows = Vec::new();
    let mut week = WeekTally::default();
    let mut regret = 0.0;
    let mut restarts: Vec<Duration> = Vec::new();
    let mut k_violations = Vec::new();
    let mut day = start;
    while day < end {
        let weekday = day.naive().format("%u").to_string();
        if weekday != "6" && weekday != "7" {
            if day != start {
                drop(client);
                let status = daemon.stop()?;
                if !status.success() {
                    bail!("touchpointd exited with {status} before {day}");
                }
                let t = Instant::now();
                daemon =
                    DaemonProcess::start(dir, &config, &socket, Some(&format!("{day} {EVENING}")))
                        .await?;
                restarts.push(t.elapsed());
                client = daemon.client.take().context("daemon connection missing")?;
            }
            simulate_day(&mut client, &mut world, dir, &dealers, day, &mut week).await?;
        }
        let next = day.add_days(1);
        if (next.days() - start.days()) % 7 == 0 {
            let n = rows.len() + 1;
            let from = next.add_days(-7);
            regret += week.oracle - week.run;
            let report = week_report(&mut client, from, day).await?;
            let mut checked = k_check(&mut client, day, min_dealers).await?;
            let learned = client.learning(None).await.context("learning")?;
            let season = dealers_by_service(&mut client, start, None, ALL).await?;
            let held_back = dealers_by_service(&mut client, start, None, CONTROL).await?;
            checked.extend(summary::learned_violations(
                &learned,
                min_dealers,
                &season,
                &held_back,
            ));
            let learned = summary::learned_rows(&learned, &world.truth);
            k_violations.extend(checked.iter().map(|v| format!("week {n}: {v}")));
            let mut row = summary::WeekRow::new(n, from, day, &week, regret, report, checked);
            row.learned = learned;
            emit(&row.line());
            rows.push(row);
            // The cohort whose attribution window has just closed.
            if let Some(r) = rows
                .len()
                .checked_sub(CLOSED_AFTER_WEEKS + 1)
                .map(|i| &mut rows[i])
            {
                let report = week_report(&mut client, r.first_day(), r.last_day()).await?;
                r.set_final(report);
                emit(&r.closed_line());
            }
            week = WeekTally::default();
        }
        day = next;
    }
    // The season's cohorts once more, with every response imported so far.
    let last = end.add_days(-1);
    for r in &mut rows {
        let report = week_report(&mut client, r.first_day(), r.last_day()).await?;
        r.set_final(report);
    }
    let season = week_report(&mut client, start, last).await?;
    drop(client);
    let status = daemon.stop()?;
    if !status.success() {
        bail!("touchpointd exited with {status}");
    }
    let result = RunResult {
        seed,
        policy,
        dealers: args.dealers,
        customers: args.customers,
        weeks: args.weeks,
        start: start.to_string(),
        explore_percent: if policy == Policy::Learned {
            args.explore_percent
        } else {
            0
        },
        learn_window_days: args.learn_window_days.filter(|_| policy == Policy::Learned),
        evaluate_from: world.evaluate_from.to_string(),
        truth: summary::truth_rows(&world.truth),
        incremental_run: rows.iter().map(|r| r.incremental_run).sum(),
        incremental_oracle: rows.iter().map(|r| r.incremental_oracle).sum(),
        rows,
        response_rate: season.and_then(|f| f.response_rate),
        control_rate: season.and_then(|f| f.control_rate),
        lift: season.and_then(|f| f.lift.map(|l| l.estimate)),
        k_violations,
        restart_ms: if restarts.is_empty() {
            0
        } else {
            (restarts.iter().map(Duration::as_millis).sum::<u128>() / restarts.len() as u128) as u64
        },
        elapsed_s: started.elapsed().as_secs(),
    };
    summary::write_run(dir, &result)?;
    Ok(result)
}

/// The network of a run: the demo's dealers, the customers split evenly,
/// every dealer's data drawn from the run's seed.
fn network(args: &SimulateArgs, seed: u64) -> Vec<DealerSpec> {
    let per = (args.customers as usize / usize::from(args.dealers)).max(1);
    demo_dealers(usize::from(args.dealers))
        .into_iter()
        .map(|mut d| {
            d.customers = per;
            d.seed ^= seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            d
        })
        .collect()
}

fn create(path: &Path) -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
    let f =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(std::io::BufWriter::new(f))
}

/// `[privacy] min_dealers` of the brand file a run uses.
fn policy_min_dealers(brand: &str) -> anyhow::Result<u32> {
    let b: touchpoint_common::policy::BrandPolicy =
        touchpoint_common::toml_file::parse_toml("brand.toml", brand)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(b.privacy.min_dealers)
}

/// One working day: the visits of the days before come in, the plan runs,
/// dispatch sends what is due, and the model takes what went out.
async fn simulate_day(
    client: &mut Client,
    world: &mut World,
    dir: &Path,
    dealers: &[DealerSpec],
    day: Date,
    week: &mut WeekTally,
) -> anyhow::Result<()> {
    for (d, visits) in world.visits_before(day) {
        let spec = &dealers[d];
        let path = dir.join("dms").join(&spec.id).join(format!(
            "{}-{day}.csv",
            spec.visits_file_name().trim_end_matches(".csv")
        ));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let rows: Vec<VisitRow> = visits
            .iter()
            .map(|v| VisitRow {
                customer_no: &v.customer_no,
                vin: &v.vin,
                day: v.day,
                km: v.km,
                kind: v.kind,
            })
            .collect();
        write_visit_rows(spec.dialect(), &rows, create(&path)?)?;
        let tenant = TenantId::new(spec.id.clone())?;
        let r = client
            .upload(&tenant, &path)
            .await
            .with_context(|| format!("importing {}", path.display()))?;
        if !r.is_committed() || r.rows_rejected > 0 {
            bail!(
                "{tenant}: {} was not imported whole: {:?}, {} rows rejected: {:?}",
                path.display(),
                r.status,
                r.rows_rejected,
                r.errors.first()
            );
        }
    }
    let planned = client
        .plan(crate::client::PlanArgs {
            day: Some(day),
            ..Default::default()
        })
        .await
        .context("planning")?;
    if let Some((t, e)) = planned.failed.first() {
        bail!("planning {day} failed for {t}: {e}");
    }
    // However many there are (a first day's backlog at a large network
    // takes minutes): a failure only when dispatch stops moving.
    let (mut progress, mut left) = (Instant::now(), u64::MAX);
    loop {
        let due = demo::next_send::emails_due_by(client, day).await?;
        if due == 0 {
            break;
        }
        if due < left {
            (progress, left) = (Instant::now(), due);
        } else if progress.elapsed() > DISPATCH_LIMIT {
            bail!("dispatch sent none of {day}'s {due} emails left for {DISPATCH_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client
        .run_batches(None)
        .await
        .context("closing the day's batches")?;

    let filter = QueueFilter {
        statuses: vec![MessageStatus::Sent, MessageStatus::Control],
        from: Some(day),
        to: Some(day),
        ..QueueFilter::default()
    };
    let mut rows = Vec::new();
    loop {
        let page = client.queue(&filter, rows.len() as u64, PAGE).await?;
        if page.rows.is_empty() {
            break;
        }
        rows.extend(page.rows);
        if rows.len() as u64 >= page.total {
            break;
        }
    }
    for r in rows {
        let Some(dealer) = dealers.iter().position(|d| d.id == r.tenant.as_str()) else {
            continue;
        };
        let m = client.message(&r.tenant, r.id).await?;
        let seen = Seen {
            dealer,
            channel: m.channel,
            control: m.status == MessageStatus::Control,
            send_on: m.send_on,
            send_at: m.send_at,
            explored: m.why.iter().any(|w| w.text.contains("(exploring")),
            occasions: m
                .occasions
                .iter()
                .map(|o| (o.service.clone(), o.vin.clone(), o.due))
                .collect(),
        };
        world.take(&seen, week);
    }
    Ok(())
}

/// The daemon's figures for the messages sent from `from` to `to`.
async fn week_report(
    client: &mut Client,
    from: Date,
    to: Date,
) -> anyhow::Result<Option<touchpoint_common::report::stats::Figures>> {
    let report = client
        .report(ReportQuery {
            from: Some(from),
            to: Some(to),
            by: By::Service,
            ..ReportQuery::default()
        })
        .await
        .context("results report")?;
    // Only the modelled services: the others have no control group.
    let mut total = touchpoint_common::report::stats::Tally::default();
    let mut strata = Vec::new();
    for g in &report.groups {
        if demo_services().iter().any(|s| s.id == g.label) {
            if let Some(t) = g.tally {
                total.add(&t);
                strata.push(t);
            }
        }
    }
    Ok((total.sent + total.control > 0)
        .then(|| touchpoint_common::report::stats::stratified(&total, &strata)))
}

/// The pooled report of `day`'s month (a pooled report covers one whole
/// calendar month), per service: every cell it shows must come from at
/// least `min_dealers` dealers, counted independently from the queue (the
/// dealers with a sent message or a control record of the service sent, or
/// to be sent, that month). Returns what broke the rule.
async fn k_check(client: &mut Client, day: Date, min_dealers: u32) -> anyhow::Result<Vec<String>> {
    let month = world::month_of(day);
    let first = Date::from_ymd((month / 100) as i32, month % 100, 1).context("month")?;
    let last = first.add_months(1).add_days(-1);
    let pooled = client
        .report(ReportQuery {
            from: Some(first),
            to: Some(last),
            by: By::Service,
            pooled: true,
            ..ReportQuery::default()
        })
        .await
        .context("pooled report")?;
    let dealers = dealers_in_month(client, first, last).await?;
    Ok(k_violations(&pooled.groups, month, min_dealers, &dealers))
}

/// Per service, the dealers with a row in the pooled report of the month
/// `first..=last`, counted from the queue the way the report counts: a
/// control record by its send day, a message by the day it went out (a
/// message planned for a quiet Sunday goes out on Monday, perhaps in the
/// next month), whatever became of it since (a bounce after sending).
async fn dealers_in_month(
    client: &mut Client,
    first: Date,
    last: Date,
) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let filter = QueueFilter {
        statuses: vec![
            MessageStatus::Sent,
            MessageStatus::Control,
            MessageStatus::Failed,
            MessageStatus::Fallback,
        ],
        // A send may be deferred by days, never brought forward.
        from: Some(first.add_days(-MAX_DEFERRAL_DAYS)),
        to: Some(last),
        ..QueueFilter::default()
    };
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in queue_rows(client, &filter).await? {
        let day = match r.status {
            MessageStatus::Control => Some(r.send_on),
            // Failed or fell back without going out: no row.
            _ if r.attempts == 0 => None,
            _ => local_day(r.updated_at),
        };
        if day.is_some_and(|d| d >= first && d <= last) {
            out.entry(r.service.clone())
                .or_default()
                .insert(r.tenant.as_str().to_string());
        }
    }
    Ok(out)
}

/// Every queue row the filter matches, page by page.
async fn queue_rows(
    client: &mut Client,
    filter: &QueueFilter,
) -> anyhow::Result<Vec<touchpoint_common::protocol::QueueRow>> {
    let mut rows = Vec::new();
    loop {
        let page = client.queue(filter, rows.len() as u64, PAGE).await?;
        if page.rows.is_empty() {
            break;
        }
        rows.extend(page.rows);
        if rows.len() as u64 >= page.total {
            break;
        }
    }
    Ok(rows)
}

/// How many days a send may be deferred past its planned day (quiet days,
/// a closed window) and still be counted in [`dealers_in_month`].
const MAX_DEFERRAL_DAYS: i32 = 7;

fn local_day(t: touchpoint_common::domain::Timestamp) -> Option<Date> {
    use chrono::TimeZone as _;
    chrono::Local
        .timestamp_millis_opt(t.millis())
        .single()
        .map(|d| Date::from(d.date_naive()))
}

/// What [`dealers_by_service`] counts: a sent message or a control record.
const ALL: &[MessageStatus] = &[MessageStatus::Sent, MessageStatus::Control];
/// Control records only.
const CONTROL: &[MessageStatus] = &[MessageStatus::Control];

/// Per service, the dealers with a record of `statuses` whose send day is
/// from `from` to `to`, read from the queue.
async fn dealers_by_service(
    client: &mut Client,
    from: Date,
    to: Option<Date>,
    statuses: &[MessageStatus],
) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let filter = QueueFilter {
        statuses: statuses.to_vec(),
        from: Some(from),
        to,
        ..QueueFilter::default()
    };
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in queue_rows(client, &filter).await? {
        out.entry(r.service.clone())
            .or_default()
            .insert(r.tenant.as_str().to_string());
    }
    Ok(out)
}

/// The cells of a pooled report of `month` that are shown although fewer
/// than `min_dealers` dealers sent (or held back) anything of their service.
fn k_violations(
    groups: &[touchpoint_common::report::pool::ReportGroup],
    month: u32,
    min_dealers: u32,
    dealers: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    groups
        .iter()
        .filter(|g| g.tally.is_some())
        .filter_map(|g| {
            let n = dealers.get(&g.label).map_or(0, BTreeSet::len);
            ((n as u32) < min_dealers).then(|| {
                format!(
                    "pooled report of {month} shows {} from {n} dealers (< {min_dealers})",
                    g.label
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use touchpoint_common::report::pool::ReportGroup;
    use touchpoint_common::report::stats::Tally;

    use super::*;

    fn group(label: &str, shown: bool) -> ReportGroup {
        ReportGroup {
            order: 0,
            label: label.into(),
            tally: shown.then(Tally::default),
            figures: None,
            lift_services: Vec::new(),
            suppressed: None,
        }
    }

    #[test]
    fn a_shown_cell_from_fewer_than_k_dealers_is_a_violation() {
        let names = |n: usize| (1..=n).map(|i| format!("d{i:03}")).collect::<BTreeSet<_>>();
        let mut dealers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        dealers.insert("service_due".into(), names(5));
        dealers.insert("birthday".into(), names(4));
        let groups = [
            group("service_due", true),
            group("birthday", true),
            group("hu_reminder", false),
        ];
        let v = k_violations(&groups, 202701, 5, &dealers);
        assert_eq!(
            v,
            ["pooled report of 202701 shows birthday from 4 dealers (< 5)"]
        );
        // A cell nobody sent is a violation when shown.
        assert_eq!(
            k_violations(&[group("x", true)], 202701, 5, &dealers).len(),
            1
        );
        // Suppressed cells are never a violation.
        assert!(k_violations(&[group("x", false)], 202701, 5, &dealers).is_empty());
    }

    #[test]
    fn the_simulation_brand_has_a_control_group_no_bundling_and_the_models_grid() {
        for (policy, learn) in [(Policy::Fixed, false), (Policy::Learned, true)] {
            let text = sim_brand(policy, EXPLORE_PERCENT, None).expect("brand");
            let b: touchpoint_common::policy::BrandPolicy =
                touchpoint_common::toml_file::parse_toml("brand.toml", &text).expect("valid");
            assert_eq!(b.planning.bundling_window_days, 0);
            // The model's services are the brand's, with the brand's leads
            // and the model's grid; only they learn, and only when asked.
            for spec in demo_services() {
                let s = &b.services[&spec.id];
                assert_eq!(s.control_percent, 10, "{}", spec.id);
                assert_eq!(s.lead_days, spec.policy_lead, "{}", spec.id);
                assert_eq!(s.learn, learn, "{}", spec.id);
                assert_eq!(
                    (s.lead_days_min, s.lead_days_max, s.lead_days_step),
                    (
                        Some(spec.grid.min),
                        Some(spec.grid.max),
                        Some(spec.grid.step)
                    ),
                    "{}",
                    spec.id
                );
            }
            let learning = b.services.values().filter(|s| s.learn).count();
            assert_eq!(learning, if learn { 2 } else { 0 });
            // No per-minute throttle; connections and the day cap as shipped.
            let shipped: touchpoint_common::policy::BrandPolicy =
                touchpoint_common::toml_file::parse_toml("brand.toml", demo::BRAND)
                    .expect("shipped");
            assert!(shipped.throttle.global_per_minute > 0);
            assert_eq!(b.throttle.global_per_minute, 0);
            assert_eq!(b.throttle.tenant_per_day, shipped.throttle.tenant_per_day);
            assert_eq!(
                b.throttle.domains.keys().collect::<Vec<_>>(),
                shipped.throttle.domains.keys().collect::<Vec<_>>()
            );
            for (domain, t) in &b.throttle.domains {
                assert_eq!(t.per_minute, 0, "{domain}");
                assert_eq!(
                    t.concurrency, shipped.throttle.domains[domain].concurrency,
                    "{domain}"
                );
            }
        }
        // Another share of exploration and a learning window reach the
        // learning services, and the brand file stays valid.
        let text = sim_brand(Policy::Learned, 50, Some(28)).expect("brand");
        let b: touchpoint_common::policy::BrandPolicy =
            touchpoint_common::toml_file::parse_toml("brand.toml", &text).expect("valid");
        for spec in demo_services() {
            let s = &b.services[&spec.id];
            assert_eq!(
                (s.explore_percent, s.learn_window()),
                (50, 28),
                "{}",
                spec.id
            );
        }
    }
}

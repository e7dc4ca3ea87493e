//! `touchpoint demo`: the whole loop on generated data with one command.
//! It writes a configuration into a state dir, generates dealer exports,
//! starts `touchpointd`, imports everything over the socket (and some files a
//! second time, to show that re-imports change nothing), and then either
//! prints a summary (`--headless`) or opens the console.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use futures::StreamExt;
use touchpoint_common::domain::{ImportReport, ImportStatus};
use touchpoint_common::TenantId;
use touchpoint_datagen::{
    demo_dealers, tenant_policy_toml, write_customer_export, write_history_export,
    write_visits_export, DealerSpec, ExportOptions, ExportStats,
};

use crate::client::Client;
use crate::format;
use crate::output::emit;

pub(crate) mod next_send;
mod one_click;

/// Marks a directory as made by the demo, so that only such a directory is
/// ever wiped.
const MARKER: &str = ".touchpoint-demo";
const DAEMON_START_TIMEOUT: Duration = Duration::from_secs(20);
const DAEMON_STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Dealers imported at the same time, each over its own connection.
const PARALLEL_IMPORTS: usize = 4;
/// Customer exports imported a second time to show idempotency.
const REIMPORTS: usize = 3;
/// Unix socket paths longer than this do not fit `sockaddr_un`.
pub(crate) const MAX_SOCKET_PATH: usize = 100;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Print a summary and stop instead of opening the console.
    #[arg(long)]
    pub headless: bool,
    /// Where the demo keeps everything; wiped first unless --keep.
    #[arg(long, default_value = "demo-state", value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Number of dealers (tenants) to generate.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u16).range(1..=999))]
    pub dealers: u16,
    /// Keep an existing state dir (its stores and import history) instead of
    /// starting from scratch.
    #[arg(long)]
    pub keep: bool,
}

/// One generated export file.
struct Export {
    tenant: TenantId,
    path: PathBuf,
    stats: ExportStats,
}

struct DealerExports {
    tenant: TenantId,
    customers: Export,
    /// The previous system's send history of the past quarter.
    history: Export,
    visits: Export,
}

impl DealerExports {
    /// In the order they are imported: the customers first (the others
    /// refer to them), then the visits, then what was sent: a send of the
    /// history is keyed to the occasion as it stood on its day, which the
    /// vehicle's visits before it tell (an answered reminder's answer is
    /// already its last service); the history's import credits the
    /// visits that answered its sends.
    fn files(&self) -> [&Export; 3] {
        [&self.customers, &self.visits, &self.history]
    }
}

/// The outcome of importing one file.
struct Imported {
    tenant: TenantId,
    path: PathBuf,
    result: Result<ImportReport, String>,
}

/// `mouse`: the console at the end captures the mouse (no `--no-mouse`).
pub async fn run(args: DemoArgs, mouse: bool) -> anyhow::Result<()> {
    let dir = std::path::absolute(&args.state_dir)
        .with_context(|| format!("cannot resolve {}", args.state_dir.display()))?;
    let socket = dir.join("touchpoint.sock");
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        bail!(
            "the socket path {} is too long for a Unix socket; choose a shorter --state-dir",
            socket.display()
        );
    }
    if Client::connect(&socket).await.is_ok() {
        bail!(
            "a daemon is already running on {}; stop it (or its demo) first",
            socket.display()
        );
    }
    prepare_dir(&dir, args.keep)?;

    let dealers = demo_dealers(usize::from(args.dealers));
    let policy_dir = policy_dir(&dir, &dealers)?;
    let http_port = free_port()?;
    let config = write_config(&dir, &socket, &policy_dir, http_port)?;

    emit(&format!(
        "Touchpoint demo: {} dealers in {}\n",
        dealers.len(),
        dir.display()
    ));
    emit(&format!("  policies    {}\n", policy_dir.display()));
    let started = Instant::now();
    let exports = generate(&dir, &dealers).await?;
    let generated_rows: u64 = exports
        .iter()
        .flat_map(|e| e.files())
        .map(|f| f.stats.rows)
        .sum();
    let generated_bytes: u64 = exports
        .iter()
        .flat_map(|e| e.files())
        .map(|f| f.stats.bytes)
        .sum();
    emit(&format!(
        "  generated   {} files, {} rows, {} in {:.1} s ({})\n",
        exports.len() * 3,
        generated_rows,
        format::human_bytes(generated_bytes),
        started.elapsed().as_secs_f64(),
        dir.join("exports").display()
    ));

    let mut daemon = DaemonProcess::start(&dir, &config, &socket, None).await?;
    let paths = Paths {
        dir: &dir,
        socket: &socket,
        config: &config,
        policies: &policy_dir,
    };
    let result = drive(&args, &paths, &exports, &mut daemon, (http_port, mouse)).await;
    let stopped = daemon.stop();
    match (result, stopped) {
        (Ok(()), Ok(status)) if status.success() => {
            emit(&format!(
                "  stopped     touchpointd (state kept in {})\n",
                dir.display()
            ));
            Ok(())
        }
        (Ok(()), Ok(status)) => bail!(
            "touchpointd exited with {status}; see {}",
            dir.join("touchpointd.log").display()
        ),
        (Ok(()), Err(e)) => Err(e),
        (Err(e), _) => Err(e),
    }
}

/// Where the demo keeps what its daemon uses.
struct Paths<'a> {
    dir: &'a Path,
    socket: &'a Path,
    config: &'a Path,
    policies: &'a Path,
}

/// Everything between a running daemon and stopping it.
async fn drive(
    args: &DemoArgs,
    paths: &Paths<'_>,
    exports: &[DealerExports],
    daemon: &mut DaemonProcess,
    (http_port, mouse): (u16, bool),
) -> anyhow::Result<()> {
    let (dir, socket) = (paths.dir, paths.socket);
    let mut client = daemon.client.take().context("daemon connection missing")?;
    emit(&format!(
        "  daemon      {} on {} (pid {})\n",
        client.daemon(),
        socket.display(),
        daemon.pid()
    ));

    let started = Instant::now();
    let imported = import_all(socket, exports).await;
    let elapsed = started.elapsed();

    let mut reimported = Vec::new();
    for e in exports.iter().take(REIMPORTS) {
        let result = client
            .upload(&e.tenant, &e.customers.path)
            .await
            .map_err(|e| e.to_string());
        reimported.push(Imported {
            tenant: e.tenant.clone(),
            path: e.customers.path.clone(),
            result,
        });
    }
    let tenants = client.tenants().await.context("listing the tenants")?;

    let summary = Summary {
        imported: &imported,
        reimported: &reimported,
        elapsed,
        exports,
    };
    emit(&summary.text(dir, &tenants));
    let mut problems = summary.problems();

    // The daily plan, run now instead of waiting for the brand's schedule.
    let planned = client
        .plan(crate::client::PlanArgs {
            show: 1,
            ..Default::default()
        })
        .await
        .context("planning")?;
    emit(&plan_summary(&planned));
    if !planned.failed.is_empty() {
        let failed: Vec<String> = planned
            .failed
            .iter()
            .map(|(t, e)| format!("{t}: {e}"))
            .collect();
        problems.get_or_insert_with(String::new).push_str(&format!(
            "planning failed for {} tenants: {}",
            failed.len(),
            failed.join("; ")
        ));
    }

    // Nothing due now (a quiet day, no send window today, or none left
    // before tomorrow): the demo's daemon goes on a clock at the end of the
    // next day something is due, so that dispatch is seen whatever the
    // weekday. The policies stay as they are.
    let rehearsal = match next_send::next_send(&mut client)
        .await
        .context("reading the queue")?
    {
        Some(next) if next_is_later(&next) => {
            emit(&format!(
                "  {:<11} {}\n  {:<11} {}\n",
                "waiting",
                next.line(),
                "clock",
                why_a_clock(paths.policies, &next)
            ));
            drop(client);
            let status = daemon.stop()?;
            if !status.success() {
                bail!(
                    "touchpointd exited with {status}; see {}",
                    dir.join("touchpointd.log").display()
                );
            }
            *daemon =
                DaemonProcess::start(dir, paths.config, socket, Some(&next.argument(next.last)))
                    .await?;
            client = daemon.client.take().context("daemon connection missing")?;
            let clock = client.status().await.context("daemon status")?.clock;
            match clock {
                Some(c) => emit(&format!(
                    "  daemon      restarted (pid {}) with --clock-start {}: {}\n",
                    daemon.pid(),
                    next.argument(next.last),
                    c.describe()
                )),
                None => bail!("the restarted daemon does not report its simulated clock"),
            }
            Some(next)
        }
        _ => None,
    };

    // Dispatch: what is due now goes out (email to the spool, since the demo
    // has no relay); today's letter batches and call lists close at once.
    match dispatch_now(&mut client, dir, rehearsal.as_ref()).await {
        Ok(text) => emit(&text),
        Err(e) => {
            problems
                .get_or_insert_with(String::new)
                .push_str(&format!("dispatch: {e}"));
        }
    }

    match quarter_summary(&mut client, exports).await {
        Ok(text) => emit(&text),
        Err(e) => {
            problems
                .get_or_insert_with(String::new)
                .push_str(&format!("results of the past quarter: {e}"));
        }
    }

    // What the planner learned from the quarter: the loop closes.
    match client.learning(None).await {
        Ok(state) => emit(&learned_summary(&state)),
        Err(e) => {
            problems
                .get_or_insert_with(String::new)
                .push_str(&format!("learned values: {e}"));
        }
    }

    // RFC 8058: one email's unsubscribe link, POSTed as a mail provider would.
    let served = format!("http://127.0.0.1:{http_port}");
    match one_click::show(&mut client, &dir.join("mail"), &served).await {
        Ok(text) => emit(&text),
        Err(e) => {
            problems
                .get_or_insert_with(String::new)
                .push_str(&format!("one-click unsubscribe: {e:#}"));
        }
    }

    // Operations: a backup of every store while the daemon runs, verified.
    match backup(&mut client, dir).await {
        Ok(text) => emit(&text),
        Err(e) => {
            problems
                .get_or_insert_with(String::new)
                .push_str(&format!("backup: {e:#}"));
        }
    }

    // Retention (the demo's brand keeps messages 24 months, audit lines
    // 120): what the daily run does, run now; nothing of a quarter's past
    // is that old, so it says so.
    match client.retention_run().await {
        Ok(run) => {
            emit(&format!(
                "\nRetention (brand.toml [retention]: messages 24 months, audit lines 120)\n  {}",
                crate::format::retention(&run)
            ));
            if !run.failed.is_empty() {
                problems
                    .get_or_insert_with(String::new)
                    .push_str(&format!("retention: {}", run.failed.join("; ")));
            }
        }
        Err(e) => {
            problems
                .get_or_insert_with(String::new)
                .push_str(&format!("retention: {e:#}"));
        }
    }

    if !args.headless {
        drop(client);
        crate::tui::run(socket.to_path_buf(), false, mouse).await?;
    }
    if let Some(p) = problems {
        bail!(p);
    }
    Ok(())
}

/// A backup of the demo's stores into `<dir>/backups` (the newest three
/// kept), then verified: what `touchpoint backup` does nightly.
async fn backup(client: &mut Client, dir: &Path) -> anyhow::Result<String> {
    use touchpoint_common::protocol::Request;
    let repo = std::path::absolute(dir.join("backups"))?;
    let repo = repo.to_string_lossy().into_owned();
    let done = client
        .backup(Request::Backup {
            dir: repo.clone(),
            keep: Some(3),
        })
        .await?;
    let checked = client
        .backup(Request::VerifyBackup {
            dir: done.path.clone(),
        })
        .await?;
    Ok(format!(
        "{}  verified: {} files match their hashes, {} records counted in scratch copies\n  restore: touchpointd --state-dir NEW --restore {}\n",
        crate::format::backup(&done, false),
        checked.files,
        checked.records,
        done.path
    ))
}

/// Whether nothing of `next` is due yet by this machine's clock.
fn next_is_later(next: &next_send::NextSend) -> bool {
    let first =
        next.day
            .naive()
            .and_hms_opt(u32::from(next.first / 60), u32::from(next.first % 60), 0);
    first.is_some_and(|f| f > chrono::Local::now().naive_local())
}

/// Why the demo's daemon runs on a simulated clock, in one sentence:
/// `today is Sunday, a quiet day: …`.
fn why_a_clock(policies: &Path, next: &next_send::NextSend) -> String {
    use touchpoint_common::policy::Weekday;
    let today = touchpoint_common::Date::from(chrono::Local::now().date_naive());
    let weekday = today.naive().format("%A");
    let brand = crate::policy_check::check(policies).ok().map(|s| s.brand);
    let why = if next.day == today {
        format!(
            "today is {weekday} and nothing is due before {:02}:{:02}",
            next.first / 60,
            next.first % 60
        )
    } else if brand
        .as_ref()
        .is_some_and(|b| b.calendar.quiet_weekdays.contains(&Weekday::of(today)))
    {
        format!("today is {weekday}, a quiet day")
    } else if brand
        .as_ref()
        .is_some_and(|b| b.calendar.holidays.iter().any(|h| h.0 == today))
    {
        format!("today is {weekday}, a public holiday")
    } else {
        format!("today is {weekday} and nothing more is due today")
    };
    format!(
        "{why}: the demo's daemon runs on a clock started at {}, after the last send time of that day, so you see that day's {} messages dispatched; a real daemon sends nothing before {}",
        next.shown(next.last),
        format::thousands(next.messages()),
        next.shown(next.first)
    )
}

/// Lets the dispatcher send what is due, closes today's batches and says
/// where everything went. On a simulated clock (`rehearsal`: the day it
/// stands at the end of), waits until every email of that day went.
async fn dispatch_now(
    client: &mut crate::client::Client,
    dir: &Path,
    rehearsal: Option<&next_send::NextSend>,
) -> anyhow::Result<String> {
    let started = Instant::now();
    // Email due now goes out within a few ticks; wait until the queues hold
    // only what is due later (or 30 s; on a simulated clock until the day's
    // emails all went, or 5 minutes).
    let limit = Duration::from_secs(if rehearsal.is_some() { 300 } else { 30 });
    let mut last = u64::MAX;
    let mut status = client.dispatch_status().await?;
    while started.elapsed() < limit {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        status = client.dispatch_status().await?;
        let in_flight: u64 = status.queues.iter().map(|q| q.in_flight).sum();
        let settled = match rehearsal {
            Some(next) => next_send::emails_due_by(client, next.day).await? == 0,
            None => status.sent_total == last,
        };
        if in_flight == 0 && settled {
            break;
        }
        last = status.sent_total;
    }
    client.run_batches(None).await?;
    let costs = client.costs(None, None).await?;
    let emails = status.queues.iter().map(|q| q.sent_today).sum::<u64>();
    // The daemon closes the day's batches itself at `batch_at`: on a clock
    // past it they are closed before the request above. So the day's
    // letters and call tasks are counted from the queue, and the batches
    // from their files (`<tenant>-<day>-NN.pdf`, `calls-<tenant>-<day>-NN.csv`).
    let day = match rehearsal {
        Some(next) => next.day,
        None => touchpoint_common::Date::from(chrono::Local::now().date_naive()),
    };
    let letters = next_send::sent_on(client, day, touchpoint_common::domain::Channel::Post).await?;
    let calls = next_send::sent_on(client, day, touchpoint_common::domain::Channel::Phone).await?;
    let letter_batches = batch_files(&dir.join("letters"), day, "pdf");
    let call_lists = batch_files(&dir.join("calls"), day, "csv");
    let booked: i64 = costs.iter().map(|c| c.booked).sum();
    let brand: i64 = costs.iter().map(|c| c.brand).sum();
    let reserved: i64 = costs.iter().map(|c| c.reserved).sum();
    // Every message that goes out by itself later, not only the released
    // ones the dispatch queues hold.
    let waiting = next_send::waiting(client).await?;
    let mut out = String::new();
    out.push_str(&format!(
        "  dispatch    {emails} emails sent today to the {}, {letters} letters in {} batches, {calls} call tasks in {} lists, {:.1} s\n",
        status.transport,
        letter_batches.len(),
        call_lists.len(),
        started.elapsed().as_secs_f64()
    ));
    if let Some(pdf) = letter_batches.first() {
        out.push_str(&format!(
            "  letters     {}\n              {}\n",
            pdf.display(),
            pdf.with_extension("csv").display()
        ));
    }
    if let Some(csv) = call_lists.first() {
        out.push_str(&format!("  calls       {}\n", csv.display()));
    }
    out.push_str(&format!(
        "  costs       {} booked ({} paid by the brand), {} reserved for messages not yet sent; {waiting} messages wait for their send time\n",
        euro(booked),
        euro(brand),
        euro(reserved)
    ));
    if let Some(next) = next_send::next_send(client).await? {
        out.push_str(&format!("  waiting     {}\n", next.line()));
    }
    out.push_str(
        "  see:        touchpoint dispatch · touchpoint costs · touchpoint message --tenant T ID\n",
    );
    Ok(out)
}

/// The batch files of `day` under `root` (`root/<tenant>/…-<day>-NN.<ext>`
/// or `root/…-<day>-NN.<ext>`), sorted.
fn batch_files(root: &Path, day: touchpoint_common::Date, ext: &str) -> Vec<PathBuf> {
    let marker = format!("-{day}-");
    let mut dirs = vec![root.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(root) {
        dirs.extend(
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path()),
        );
    }
    let mut files: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|entries| entries.filter_map(Result::ok).map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == ext)
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.contains(&marker))
        })
        .collect();
    files.sort();
    files
}

/// One line per learning service and channel: the lead time and send slot
/// the planner uses now, where they come from and their evidence.
fn learned_summary(state: &touchpoint_common::learning::LearnedState) -> String {
    if state.services.is_empty() {
        return "  learned     no service learns (learn = true in the brand policy)\n".into();
    }
    let mut out = String::new();
    for (i, s) in state.services.iter().enumerate() {
        let head = if i == 0 {
            "  learned    "
        } else {
            "             "
        };
        let _ = writeln!(out, "{head} {}", crate::format::learned_line(s));
    }
    out
}

/// The past quarter's results per service: the messages the previous
/// system sent and its control-group members (imported from its send
/// history), and the workshop visits the daemon credited to them.
///
/// Counted here from the daemon's messages (the queue, then each message's
/// *why*), the requests this console has; a results report request will
/// take its place.
async fn quarter_summary(
    client: &mut crate::client::Client,
    exports: &[DealerExports],
) -> anyhow::Result<String> {
    use touchpoint_common::outbox::{MessageStatus, Step};
    use touchpoint_common::queue::QueueFilter;
    use touchpoint_common::Date;
    use touchpoint_datagen::history::QUARTER_DAYS;

    let today = Date::today();
    let (from, to) = (today.add_days(-QUARTER_DAYS), today.add_days(-1));
    // Per service: sent, their responses, control members, theirs.
    let mut by: std::collections::BTreeMap<String, [u64; 4]> = Default::default();
    let mut example: Option<(TenantId, touchpoint_common::outbox::Message)> = None;
    for e in exports {
        let filter = QueueFilter {
            tenants: vec![e.tenant.clone()],
            statuses: vec![MessageStatus::Sent, MessageStatus::Control],
            from: Some(from),
            to: Some(to),
            ..QueueFilter::default()
        };
        let mut ids = Vec::new();
        loop {
            let page = client.queue(&filter, ids.len() as u64, 500).await?;
            if page.rows.is_empty() {
                break;
            }
            ids.extend(page.rows.iter().map(|r| r.id));
            if ids.len() as u64 >= page.total {
                break;
            }
        }
        for id in ids {
            let m = client.message(&e.tenant, id).await?;
            let credited = m
                .why
                .iter()
                .rfind(|w| w.step == Step::Response)
                .is_some_and(|w| !w.text.starts_with("taken back"));
            let control = m.status == MessageStatus::Control;
            let c = by.entry(m.service.clone()).or_default();
            let at = if control { 2 } else { 0 };
            c[at] += 1;
            c[at + 1] += u64::from(credited);
            if credited && !control && example.is_none() {
                example = Some((e.tenant.clone(), m));
            }
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  quarter     {from} to {to}: sent by the previous system (its send history) and the workshop visits credited to them"
    );
    let rate = |n: u64, of: u64| {
        if of == 0 {
            0.0
        } else {
            100.0 * n as f64 / of as f64
        }
    };
    for (service, [sent, resp, control, cresp]) in &by {
        let (r, cr) = (rate(*resp, *sent), rate(*cresp, *control));
        let _ = writeln!(
            out,
            "              {service:<20} {sent:>6} sent {resp:>5} responses {r:>5.1} %   control {control:>5}, {cresp:>4} responses {cr:>5.1} %   lift {:+.1} points",
            r - cr
        );
    }
    if let Some((tenant, m)) = example {
        let _ = writeln!(
            out,
            "  for example {tenant} {} sent {} ({}), why:",
            m.recipient, m.send_on, m.service
        );
        for w in &m.why {
            let _ = writeln!(out, "                {w}");
        }
    }
    Ok(out)
}

fn euro(cents: i64) -> String {
    format!("{}.{:02} €", cents / 100, (cents % 100).abs())
}

/// The plan in a few lines: totals, per service, and one message's *why*.
fn plan_summary(p: &touchpoint_common::protocol::PlanResult) -> String {
    let mut out = String::new();
    let count = |f: fn(&touchpoint_common::outbox::PlanReport) -> u64| -> u64 {
        p.reports.iter().map(f).sum()
    };
    let millis = p.reports.iter().map(|r| r.millis).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "  planned     {} messages for {} recipients in {} tenants ({} occasions found, {} dropped by the rules), {millis} ms",
        count(|r| r.planned_count),
        count(|r| r.recipients),
        p.reports.len(),
        count(|r| r.occasions_found),
        count(|r| r.dropped_count),
    );
    let mut by: std::collections::BTreeMap<&str, (u64, u64, u64, i64)> = Default::default();
    for t in p.reports.iter().flat_map(|r| &r.totals) {
        let e = by.entry(&t.service).or_default();
        e.0 += t.email;
        e.1 += t.post;
        e.2 += t.dropped;
        e.3 += t.cost;
    }
    for (service, (email, post, dropped, cost)) in by {
        let _ = writeln!(
            out,
            "              {service:<20} {email:>6} emails {post:>6} letters {dropped:>6} dropped  {} EUR",
            touchpoint_common::money::Money(cost)
        );
    }
    if let Some((tenant, m)) = p
        .reports
        .iter()
        .find_map(|r| {
            r.planned
                .iter()
                .find(|m| m.occasions.len() > 1)
                .map(|m| (&r.tenant, m))
        })
        .or_else(|| {
            p.reports
                .iter()
                .find_map(|r| r.planned.first().map(|m| (&r.tenant, m)))
        })
    {
        let _ = writeln!(
            out,
            "  for example {tenant} {} on {}, {} ({}), why:",
            m.recipient, m.send_on, m.channel, m.service
        );
        for w in &m.why {
            let _ = writeln!(out, "                {w}");
        }
    }
    out.push_str("  see all:    touchpoint plan --dry-run --show 20\n");
    out
}

/// Creates the state dir, or wipes the previous demo's one unless `keep`.
pub(crate) fn prepare_dir(dir: &Path, keep: bool) -> anyhow::Result<()> {
    if dir.exists() && !keep {
        let is_demo = dir.join(MARKER).exists();
        let is_empty = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_none();
        if !is_demo && !is_empty {
            bail!(
                "refusing to wipe {}: it was not made by `touchpoint demo` (no {MARKER} in it); \
                 choose another --state-dir, or pass --keep",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot wipe {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "made by `touchpoint demo`; wiped by the next run\n",
    )
    .with_context(|| format!("cannot write into {}", dir.display()))?;
    Ok(())
}

/// The demo's policies, generated inside the state dir: the shipped brand
/// file (with `service_due` learning switched on, so that the demo shows
/// the loop close: its past quarter varied the lead over the grid, and the
/// plan uses what was learned from it) and templates, and a file per
/// dealer.
fn policy_dir(dir: &Path, dealers: &[DealerSpec]) -> anyhow::Result<PathBuf> {
    let generated = generate_policies(dir, dealers)?;
    write_file(&generated.join("brand.toml"), &demo_brand()?)?;
    Ok(generated)
}

/// The shipped brand file with `service_due` learning and a retention
/// (messages 24 months, audit lines 120).
fn demo_brand() -> anyhow::Result<String> {
    const OFF: &str = "learn = false\nlead_days_min = 7\n";
    if BRAND.matches(OFF).count() != 1 {
        bail!("the shipped brand.toml no longer has one {OFF:?}; the demo's brand file needs updating");
    }
    if BRAND.lines().any(|l| l.trim() == "[retention]") {
        bail!("the shipped brand.toml sets [retention]; the demo's brand file needs updating");
    }
    let mut brand = BRAND.replacen(OFF, "learn = true\nlead_days_min = 7\n", 1);
    brand.push_str("\n[retention]\nmessages_months = 24\naudit_months = 120\n");
    Ok(brand)
}

/// The repository's brand file and templates, built into the binary so that
/// an installed `touchpoint` runs the demo without the repository.
pub(crate) const BRAND: &str = include_str!("../../policies/brand.toml");
const TEMPLATES: &[(&str, &str)] = &[
    (
        "service_due",
        include_str!("../../policies/templates/service_due.toml"),
    ),
    (
        "hu_reminder",
        include_str!("../../policies/templates/hu_reminder.toml"),
    ),
    (
        "warranty_extension",
        include_str!("../../policies/templates/warranty_extension.toml"),
    ),
    (
        "birthday",
        include_str!("../../policies/templates/birthday.toml"),
    ),
    (
        "winter_check",
        include_str!("../../policies/templates/winter_check.toml"),
    ),
    (
        "quality_check",
        include_str!("../../policies/templates/quality_check.toml"),
    ),
];

/// Writes the shipped brand file and templates and a generated file per
/// dealer into `<dir>/policies`.
pub(crate) fn generate_policies(dir: &Path, dealers: &[DealerSpec]) -> anyhow::Result<PathBuf> {
    let generated = dir.join("policies");
    for sub in ["dealers", "templates"] {
        let d = generated.join(sub);
        std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    write_file(&generated.join("brand.toml"), BRAND)?;
    for (name, text) in TEMPLATES {
        write_file(
            &generated.join("templates").join(format!("{name}.toml")),
            text,
        )?;
    }
    for d in dealers {
        write_file(
            &generated.join("dealers").join(format!("{}.toml", d.id)),
            &tenant_policy_toml(d),
        )?;
    }
    Ok(generated)
}

pub(crate) fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// A TOML basic string. JSON's escapes are a subset of TOML's.
fn toml_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str()
        .with_context(|| format!("{} is not valid UTF-8", p.display()))
}

/// The demo daemon's one-click port: 8025, so that links in the emails of
/// a kept demo state stay valid from one run to the next, or any port of
/// 127.0.0.1 free a moment ago when 8025 is taken.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:8025")
        .or_else(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// A port of 127.0.0.1 the system handed out as free a moment ago (from
/// its ephemeral range, not the demo's fixed 8025): for a daemon whose
/// links need not outlive its run (a simulated season), so that runs side
/// by side do not all try 8025. Free only until someone else binds it.
pub(crate) fn ephemeral_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

pub(crate) fn write_config(
    dir: &Path,
    socket: &Path,
    policy_dir: &Path,
    http_port: u16,
) -> anyhow::Result<PathBuf> {
    let text = format!(
        "# Written by `touchpoint demo`. Schema: common::config::DaemonConfig;\n\
         # every other key keeps its default (see policies/touchpointd.toml).\n\n\
         state_dir = {}\nsocket = {}\nsocket_mode = \"0600\"\npolicy_dir = {}\n\n\
         # RFC 8058 one-click unsubscribe, on loopback only: emails link\n\
         # http://127.0.0.1:{http_port}/u/<token>.\n\
         [http]\nlisten = \"127.0.0.1:{http_port}\"\n",
        toml_string(path_str(dir)?),
        toml_string(path_str(socket)?),
        toml_string(path_str(policy_dir)?),
    );
    let path = dir.join("touchpointd.toml");
    write_file(&path, &text)?;
    Ok(path)
}

async fn generate(dir: &Path, dealers: &[DealerSpec]) -> anyhow::Result<Vec<DealerExports>> {
    let mut tasks = Vec::new();
    for spec in dealers.iter().cloned() {
        let out_dir = dir.join("exports").join(&spec.id);
        tasks.push(tokio::task::spawn_blocking(move || {
            generate_one(&spec, &out_dir)
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.context("export generation panicked")??);
    }
    Ok(out)
}

/// The dealer's two exports, in the dialect of its DMS. Dates are relative to
/// today, so the demo always has services and inspections coming up.
fn generate_one(spec: &DealerSpec, out_dir: &Path) -> anyhow::Result<DealerExports> {
    let tenant = TenantId::new(spec.id.clone())?;
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let opts = ExportOptions {
        past_quarter: true,
        duplicate_rate: 0.04,
        no_consent_rate: 0.15,
        bad_row_rate: 0.005,
        // Fleets keep datagen's demo share (of the company customers).
        ..ExportOptions::demo(spec.dialect())
    };
    let write =
        |name: &str,
         f: fn(&DealerSpec, &ExportOptions, BufWriter<File>) -> std::io::Result<ExportStats>|
         -> anyhow::Result<Export> {
            let path = out_dir.join(name);
            let file =
                File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
            let stats = f(spec, &opts, BufWriter::new(file))
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(Export {
                tenant: tenant.clone(),
                path,
                stats,
            })
        };
    let customers = write(&spec.customer_file_name(), write_customer_export)?;
    let history = write(&spec.history_file_name(), write_history_export)?;
    let visits = write(&spec.visits_file_name(), write_visits_export)?;
    Ok(DealerExports {
        tenant,
        customers,
        history,
        visits,
    })
}

/// Imports every dealer's customers, then its send history and its visits
/// (which refer to the customers), several dealers at a time.
async fn import_all(socket: &Path, exports: &[DealerExports]) -> Vec<Imported> {
    let per_dealer = futures::stream::iter(exports.iter().map(|e| async move {
        let mut done = Vec::new();
        let mut client = match Client::connect(socket).await {
            Ok(c) => c,
            Err(err) => {
                for ex in e.files() {
                    done.push(Imported {
                        tenant: ex.tenant.clone(),
                        path: ex.path.clone(),
                        result: Err(err.to_string()),
                    });
                }
                return done;
            }
        };
        for ex in e.files() {
            let result = client
                .upload(&ex.tenant, &ex.path)
                .await
                .map_err(|e| e.to_string());
            done.push(Imported {
                tenant: ex.tenant.clone(),
                path: ex.path.clone(),
                result,
            });
        }
        done
    }))
    .buffer_unordered(PARALLEL_IMPORTS)
    .collect::<Vec<_>>()
    .await;
    let mut all: Vec<Imported> = per_dealer.into_iter().flatten().collect();
    all.sort_by(|a, b| (&a.tenant, &a.path).cmp(&(&b.tenant, &b.path)));
    all
}

struct Summary<'a> {
    imported: &'a [Imported],
    reimported: &'a [Imported],
    elapsed: Duration,
    exports: &'a [DealerExports],
}

fn label(i: &Imported) -> String {
    let file = i
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{}/{file}", i.tenant)
}

impl Summary<'_> {
    fn is_history(&self, i: &Imported) -> bool {
        self.exports.iter().any(|e| e.history.path == i.path)
    }

    fn reports(&self) -> impl Iterator<Item = &ImportReport> {
        self.imported.iter().filter_map(|i| i.result.as_ref().ok())
    }

    fn text(&self, dir: &Path, tenants: &[touchpoint_common::protocol::TenantSummary]) -> String {
        let mut out = String::new();
        let committed: Vec<&ImportReport> = self.reports().filter(|r| r.is_committed()).collect();
        let rows: u64 = committed.iter().map(|r| r.rows_total).sum();
        let bytes: u64 = committed.iter().map(|r| r.bytes).sum();
        let secs = self.elapsed.as_secs_f64().max(0.001);
        let _ = writeln!(
            out,
            "  imported    {} of {} files, {rows} rows, {} in {secs:.1} s: {:.0} rows/s",
            committed.len(),
            self.imported.len(),
            format::human_bytes(bytes),
            rows as f64 / secs
        );

        for i in self.imported {
            match &i.result {
                Err(e) => {
                    let _ = writeln!(out, "  FAILED      {}: {e}", label(i));
                }
                Ok(r) => {
                    if let ImportStatus::Failed { reason } = &r.status {
                        let _ = writeln!(out, "  FAILED      {}: {reason}", label(i));
                    }
                }
            }
        }

        let rejected: u64 = self
            .imported
            .iter()
            .filter(|i| !self.is_history(i))
            .filter_map(|i| i.result.as_ref().ok())
            .map(|r| r.rows_rejected)
            .sum();
        let generated_bad: u64 = self
            .exports
            .iter()
            .map(|e| e.customers.stats.bad_rows + e.visits.stats.bad_rows)
            .sum();
        let _ = writeln!(
            out,
            "  rejected    {rejected} rows ({generated_bad} broken on purpose), each with file, line and reason, e.g.:"
        );
        for (tenant, e) in self
            .reports()
            .filter_map(|r| r.errors.first().map(|e| (&r.tenant, e)))
            .take(5)
        {
            let _ = writeln!(out, "                {tenant}: {e}");
        }
        let histories: Vec<&ImportReport> = self
            .imported
            .iter()
            .filter(|i| self.is_history(i))
            .filter_map(|i| i.result.as_ref().ok())
            .filter(|r| r.is_committed())
            .collect();
        let _ = writeln!(
            out,
            "  history     {} past sends imported from the previous system's logs ({} files), {} refused (their customer's row was broken on purpose)",
            histories.iter().map(|r| r.rows_ok).sum::<u64>(),
            histories.len(),
            histories.iter().map(|r| r.rows_rejected).sum::<u64>(),
        );

        let customers: u64 = tenants.iter().map(|t| t.stats.customers).sum();
        let recipients: u64 = tenants.iter().map(|t| t.stats.recipients).sum();
        let vehicles: u64 = tenants.iter().map(|t| t.stats.vehicles).sum();
        let merges: u64 = tenants.iter().map(|t| t.stats.merges_active).sum();
        let planted: u64 = self
            .exports
            .iter()
            .map(|e| e.customers.stats.duplicates)
            .sum();
        let _ = writeln!(
            out,
            "  duplicates  {merges} merged ({planted} planted): {customers} customer records are {recipients} recipients"
        );
        let fleets: u64 = self.exports.iter().map(|e| e.customers.stats.fleets).sum();
        let _ = writeln!(
            out,
            "  fleets      {fleets} companies with several vehicles; {vehicles} vehicles belong to {recipients} recipients"
        );
        for i in self.reimported {
            let outcome = match &i.result {
                Ok(r) => format::import_status(&r.status),
                Err(e) => format!("failed: {e}"),
            };
            let _ = writeln!(out, "  re-import   {}: {outcome}", label(i));
        }
        out.push('\n');
        // The policy dir may register more dealers than the demo generated.
        let ours: Vec<_> = tenants
            .iter()
            .filter(|t| self.exports.iter().any(|e| e.tenant == t.id))
            .cloned()
            .collect();
        out.push_str(&format::tenants_compact(&ours));
        out.push('\n');
        let _ = writeln!(
            out,
            "  daemon log  {}",
            dir.join("touchpointd.log").display()
        );
        out
    }

    /// What went wrong, for the exit code.
    fn problems(&self) -> Option<String> {
        let failed = self
            .imported
            .iter()
            .filter(
                |i| !matches!(&i.result, Ok(r) if !matches!(r.status, ImportStatus::Failed { .. })),
            )
            .count();
        let not_idempotent = self
            .reimported
            .iter()
            .filter(|i| !matches!(&i.result, Ok(r) if matches!(r.status, ImportStatus::AlreadyImported { .. })))
            .count();
        match (failed, not_idempotent) {
            (0, 0) => None,
            (f, 0) => Some(format!("{f} imports failed")),
            (0, n) => Some(format!(
                "{n} re-imports were not recognised as already imported"
            )),
            (f, n) => Some(format!(
                "{f} imports failed and {n} re-imports were not recognised as already imported"
            )),
        }
    }
}

/// The demo's `touchpointd`, stopped with SIGTERM when the demo ends.
pub(crate) struct DaemonProcess {
    child: Option<Child>,
    /// The connection that proved the daemon ready.
    pub(crate) client: Option<Client>,
}

impl DaemonProcess {
    /// Starts `touchpointd`, on a clock started at `clock_start` when given
    /// (then appending to the log the first daemon began).
    pub(crate) async fn start(
        dir: &Path,
        config: &Path,
        socket: &Path,
        clock_start: Option<&str>,
    ) -> anyhow::Result<Self> {
        let bin = daemon_binary();
        let log_path = dir.join("touchpointd.log");
        let log = File::options()
            .create(true)
            .write(true)
            .append(clock_start.is_some())
            .truncate(clock_start.is_none())
            .open(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let mut cmd = Command::new(&bin);
        cmd.arg("--config").arg(config);
        if let Some(at) = clock_start {
            cmd.arg("--clock-start").arg(at);
        }
        let child = cmd
            // A log file, not a terminal: no colour codes.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("cannot share the log file")?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} — build it with `cargo build --release --workspace`",
                    bin.display()
                )
            })?;
        let mut process = DaemonProcess {
            child: Some(child),
            client: None,
        };
        let deadline = Instant::now() + DAEMON_START_TIMEOUT;
        loop {
            if let Some(child) = process.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    process.child = None;
                    bail!(
                        "touchpointd exited at start with {status}:\n{}",
                        log_tail(&log_path, 20)
                    );
                }
            }
            match Client::connect(socket).await {
                Ok(client) => {
                    process.client = Some(client);
                    return Ok(process);
                }
                Err(e) if Instant::now() >= deadline => {
                    // Dropping `process` stops the daemon.
                    bail!(
                        "touchpointd did not answer on {} within {} s ({e}):\n{}",
                        socket.display(),
                        DAEMON_START_TIMEOUT.as_secs(),
                        log_tail(&log_path, 20)
                    );
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// SIGTERM (a graceful stop), then waits; kills only if it hangs.
    pub(crate) fn stop(&mut self) -> anyhow::Result<ExitStatus> {
        self.client = None;
        let Some(mut child) = self.child.take() else {
            bail!("touchpointd is not running");
        };
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !matches!(sent, Ok(s) if s.success()) {
            tracing::warn!("kill -TERM failed; killing touchpointd");
            let _ = child.kill();
        }
        let deadline = Instant::now() + DAEMON_STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().context("waiting for touchpointd")? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let status = child.wait().context("waiting for touchpointd")?;
                bail!(
                    "touchpointd did not stop within {} s of SIGTERM and was killed ({status})",
                    DAEMON_STOP_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        if self.child.is_some() {
            if let Err(e) = self.stop() {
                tracing::warn!(error = %e, "stopping touchpointd");
            }
        }
    }
}

/// `touchpointd` next to this executable, else from `$PATH`.
fn daemon_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("touchpointd"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("touchpointd"))
}

fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let all: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_prints_one_line_per_learning_service_or_says_none_learns() {
        assert_eq!(
            learned_summary(&touchpoint_common::learning::LearnedState::default()),
            "  learned     no service learns (learn = true in the brand policy)\n"
        );
        let s = touchpoint_common::learning::LearnedService {
            service: "service_due".into(),
            channel: touchpoint_common::domain::Channel::Post,
            policy_lead: 21,
            lead: touchpoint_common::learning::Choice {
                value: 21,
                source: touchpoint_common::learning::Source::Policy,
                arms: Vec::new(),
                version: 1,
            },
            slot: touchpoint_common::learning::Choice {
                value: None,
                source: touchpoint_common::learning::Source::Policy,
                arms: Vec::new(),
                version: 1,
            },
            dealers: 3,
            min_dealers: 5,
            sent: 0,
            explore_percent: 10,
            incremental: None,
            value_cents: 3800,
            frozen: false,
        };
        let state = touchpoint_common::learning::LearnedState {
            services: vec![s],
            ..touchpoint_common::learning::LearnedState::default()
        };
        assert_eq!(
            learned_summary(&state),
            "  learned     service_due post: lead time: 21 days (policy; learning has fewer than 5 dealers); send time: the policy's window\n"
        );
    }

    #[test]
    fn wipes_only_its_own_dirs() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let foreign = tmp.path().join("foreign");
        std::fs::create_dir_all(&foreign).expect("mkdir");
        std::fs::write(foreign.join("precious.txt"), "x").expect("write");
        let err = prepare_dir(&foreign, false).expect_err("refused");
        assert!(err.to_string().contains("refusing to wipe"), "{err}");
        assert!(foreign.join("precious.txt").exists());
        // --keep leaves the content alone and marks the dir.
        prepare_dir(&foreign, true).expect("keep");
        assert!(foreign.join("precious.txt").exists());

        let own = tmp.path().join("own");
        prepare_dir(&own, false).expect("create");
        std::fs::write(own.join("old.txt"), "x").expect("write");
        prepare_dir(&own, false).expect("wipe");
        assert!(!own.join("old.txt").exists());
        assert!(own.join(MARKER).exists());
    }

    #[test]
    fn generates_policies_exports_and_config() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("state");
        prepare_dir(&dir, false).expect("dir");
        let dealers = demo_dealers(3);
        let mut few = dealers.clone();
        few[0].customers = 40;
        few[1].customers = 40;
        few[2].customers = 40;
        let out = dir.join("exports").join("d001");
        let e = generate_one(&few[0], &out).expect("generate");
        assert!(
            e.customers.path.ends_with("exports/d001/kunden_d001.csv"),
            "{}",
            e.customers.path.display()
        );
        assert!(e.customers.stats.rows >= 40);
        assert!(std::fs::metadata(&e.visits.path).expect("visits").len() > 0);

        let policies = generate_policies(&dir, &dealers).expect("policies");
        assert_eq!(policies, dir.join("policies"));
        let set = crate::policy_check::check(&policies).unwrap_or_else(|errs| {
            let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
            panic!("{}", shown.join("\n"))
        });
        assert_eq!(set.brand.brand.id, touchpoint_datagen::BRAND_ID);
        let ids: Vec<&str> = set.tenants.keys().map(|t| t.as_str()).collect();
        assert_eq!(ids, ["d001", "d002", "d003"]);
        // Every template a service names is built in.
        for s in set.brand.services.values() {
            assert!(set.templates.contains_key(&s.template), "{}", s.template);
        }
        let _: touchpoint_common::policy::BrandPolicy =
            touchpoint_common::toml_file::parse_toml("brand.toml", BRAND).expect("brand");
        let _: touchpoint_common::policy::TenantPolicy =
            touchpoint_common::toml_file::parse_toml("d001.toml", &tenant_policy_toml(&dealers[0]))
                .expect("dealer");
        let config =
            write_config(&dir, &dir.join("touchpoint.sock"), &policies, 8025).expect("config");
        let text = std::fs::read_to_string(config).expect("read");
        let parsed: touchpoint_common::config::DaemonConfig =
            touchpoint_common::toml_file::parse_toml("touchpointd.toml", &text)
                .expect("valid config");
        assert_eq!(Path::new(&parsed.state_dir), dir);
        assert_eq!(Path::new(&parsed.socket), dir.join("touchpoint.sock"));
        assert_eq!(Path::new(&parsed.policy_dir), policies);
        assert_eq!(parsed.http.listen, "127.0.0.1:8025");
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string("/a \"b\"\\c"), "\"/a \\\"b\\\"\\\\c\"");
    }
}

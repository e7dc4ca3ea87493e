//! The scriptable subcommands. Human text by default, `--json` for scripts;
//! the exit codes are those of [`crate::output`].

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use touchpoint_common::protocol::{ErrorKind, MessageAction, ProposalDetail, QueueFilter, Request};
use touchpoint_common::queue::QueueSort;
use touchpoint_common::TenantId;

use crate::client::{read_call_outcomes, read_template, resolve_socket, Client, ClientError};
use crate::commands::{
    self, BatchOptions, CommandError, ImportOptions, ImportResult, PlanOptions, ScopeArgs,
};
use crate::format::{self, OverviewDay};
use crate::output::{emit, Output, EXIT_CODES, EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE};

#[derive(Debug, Parser)]
#[command(
    name = "touchpoint",
    version,
    about = "Operator console for touchpointd",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// Control socket of the daemon [default: $TOUCHPOINT_SOCKET, else
    /// $XDG_RUNTIME_DIR/touchpoint/touchpoint.sock if it exists, else
    /// /run/touchpoint/touchpoint.sock]
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Refuse every action that changes data.
    #[arg(long, global = true)]
    pub readonly: bool,
    /// The console leaves the mouse to the terminal (to select text); `m`
    /// turns mouse capture on and off while it runs.
    #[arg(long, global = true, env = "TOUCHPOINT_NO_MOUSE")]
    pub no_mouse: bool,
    /// Without a subcommand, the interactive console starts.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Daemon version, policy state, connections and who you are to the daemon.
    Status {
        #[command(flatten)]
        out: Output,
    },
    /// The tenants in your scope with their data-room statistics.
    Tenants {
        #[command(flatten)]
        out: Output,
    },
    /// One tenant: statistics, import history with rejected rows, merges.
    Tenant {
        id: TenantId,
        #[command(flatten)]
        out: Output,
    },
    /// Upload export files to a tenant and import them, one after the other.
    Import {
        #[command(flatten)]
        import: ImportOptions,
        #[command(flatten)]
        out: Output,
    },
    /// Duplicate merges of a tenant.
    Merges {
        #[arg(long)]
        tenant: TenantId,
        /// Include merges that were undone.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        out: Output,
    },
    /// Undo one duplicate merge: the merged customer becomes separate again.
    UndoMerge {
        #[arg(long)]
        tenant: TenantId,
        /// Merge id, as `touchpoint merges` lists it.
        id: u64,
        #[command(flatten)]
        out: Output,
    },
    /// The audit log: who did what, when, and how it ended.
    Audit {
        #[arg(long)]
        tenant: Option<TenantId>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only entries containing this text (user, action, tenant, detail, outcome).
        #[arg(long)]
        grep: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// Plan messages now (the daily plan runs on the brand's schedule):
    /// occasions, channel, bundling, consolidation, capping, budget, send time.
    Plan {
        #[command(flatten)]
        plan: PlanOptions,
        #[command(flatten)]
        out: Output,
    },
    /// What dispatch is doing: transport, pauses, queues per tenant,
    /// throttles with their saturation, totals since the daemon started,
    /// whether the relay is down and the last transport error.
    Dispatch {
        #[command(flatten)]
        out: Output,
    },
    /// Stop dispatch until `touchpoint resume`: everything, one tenant, one
    /// service, or one service of one tenant. Queued messages wait; nothing is
    /// lost. Prints the pauses in force afterwards.
    Pause {
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        out: Output,
    },
    /// Lift a pause made with `touchpoint pause` (name the same tenant and
    /// service). Prints the pauses still in force.
    Resume {
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        out: Output,
    },
    /// Close today's letter batches and call lists now instead of at the
    /// configured batch time; prints each batch with its files.
    Batches {
        #[command(flatten)]
        batches: BatchOptions,
        #[command(flatten)]
        out: Output,
    },
    /// Messages of the outbox, filtered, ordered and paged by the daemon.
    /// FILTER terms: `status:held,failed`, `channel:email`,
    /// `tenant:d001,d002`, `service:hu_reminder,birthday`,
    /// `date:2026-11-01..2026-11-30` (or one day, or open on one side),
    /// `sort:cost`, and free text (customer number, name, postcode, town,
    /// email domain, address used, template, last answer). Every key but
    /// `date` and `sort` takes a comma list; an unknown key or value is an
    /// error naming the closest one.
    Queue {
        /// Filter terms, as in the console's `/` line.
        filter: Vec<String>,
        /// The order: `time` (send time, latest first; the default),
        /// `tenant`, `status` (lifecycle order) or `cost` (dearest first);
        /// a leading `-` reverses (`-time`: earliest first).
        #[arg(long, value_parser = QueueSort::parse, allow_hyphen_values = true)]
        sort: Option<QueueSort>,
        #[arg(long, default_value_t = 0)]
        offset: u64,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        out: Output,
    },
    /// What the console's overview shows: one day's messages per tenant
    /// and the next seven days' counts, this month's budgets (reserved,
    /// booked, remaining), throughput of the last hour, throttles, policy
    /// and dispatch state, alerts.
    Overview {
        /// The day whose messages are counted: YYYY-MM-DD, or `next` (the
        /// default) for the next day anything goes out (today if anything
        /// goes out today), as the console opens.
        #[arg(long, value_name = "YYYY-MM-DD|next", value_parser = format::parse_overview_day)]
        day: Option<OverviewDay>,
        #[command(flatten)]
        out: Output,
    },
    /// The cost ledger per tenant, month and service: reserved (planned, not
    /// yet sent), booked (sent), the brand's and the dealer's share, the
    /// budget and what remains of it (budget − booked − reserved). Amounts in
    /// euro.
    Costs {
        /// One tenant; default: every tenant in your scope.
        #[arg(long)]
        tenant: Option<TenantId>,
        /// One month (YYYY-MM); default: every month in the ledger.
        #[arg(long, value_name = "YYYY-MM", value_parser = parse_month)]
        month: Option<u32>,
        #[command(flatten)]
        out: Output,
        /// Print CSV for spreadsheets: one row per tenant, month and service,
        /// amounts as decimal euro (12.50), no total rows.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
    },
    /// Results: per group, messages sent, responses and response rate,
    /// the control group and its rate, the lift (sent − control) with its
    /// 95 % interval, cost per response and per incremental response,
    /// response value, bounces and unsubscribes.
    Report {
        /// One tenant; default: every tenant in your scope.
        #[arg(long, conflicts_with = "pooled")]
        tenant: Option<TenantId>,
        /// One service (brand policy id).
        #[arg(long, value_parser = NonEmptyStringValueParser::new())]
        service: Option<String>,
        /// First day messages went out (YYYY-MM-DD); default: 90 days
        /// before --to.
        #[arg(long, value_name = "DATE", value_parser = format::parse_day)]
        from: Option<touchpoint_common::Date>,
        /// Last day (YYYY-MM-DD); default: today.
        #[arg(long, value_name = "DATE", value_parser = format::parse_day)]
        to: Option<touchpoint_common::Date>,
        /// Group by service, tenant, lead (weeks before the due date),
        /// weekday, hour, channel or month (local time of sending).
        #[arg(long, default_value = "service", value_parser = parse_by)]
        by: touchpoint_common::report::stats::By,
        /// Over every dealer, under the brand's disclosure rule (roles brand
        /// and admin): cells from too few dealers or dominated by one are
        /// suppressed.
        #[arg(long)]
        pooled: bool,
        #[command(flatten)]
        out: Output,
        /// Print CSV for spreadsheets: one row per group and the total.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
    },
    /// A tenant's responses (workshop visits, appointments, offers
    /// accepted), newest first, each with the message or control record
    /// attribution credits it to, or why it credits it to nothing.
    Responses {
        #[arg(long)]
        tenant: TenantId,
        /// Only this customer's (customer number; merged customers count
        /// as the one they were merged into).
        #[arg(long, value_parser = NonEmptyStringValueParser::new())]
        customer: Option<String>,
        /// Only the responses credited to nothing, with the reason.
        #[arg(long)]
        organic: bool,
        /// At most this many (1 to 10000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
        #[command(flatten)]
        out: Output,
        /// Print CSV for spreadsheets: one row per response.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
    },
    /// What is learned from the pooled responses of every dealer (roles
    /// admin and brand): per learning service and channel, the lead time
    /// and send slot in force, where they come from (learned, policy,
    /// frozen), the evidence and each lead's pooled figures and posterior.
    /// `learning freeze|reset SERVICE` (admin) keeps the values or goes
    /// back to the policy's.
    Learning {
        #[command(subcommand)]
        command: Option<LearningCommand>,
        /// One service (brand policy id).
        #[arg(long, value_parser = NonEmptyStringValueParser::new())]
        service: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// One stored customer: identity, merges, vehicles with their journey
    /// stage and visits, consents with their sources, responses, the
    /// journey's last transitions and the messages (long lists cut, with
    /// how many more). A number merged into another shows the survivor.
    Customer {
        #[arg(long)]
        tenant: TenantId,
        /// Customer number (the dealer's).
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        customer: String,
        #[command(flatten)]
        out: Output,
    },
    /// Erase a customer (GDPR Art. 17; administrators): the person the
    /// number stands for (with the numbers merged into them), their
    /// vehicles, consents, visits, responses and merges; their messages
    /// not yet sent are cancelled and the others keep only counts and
    /// money under a pseudonym; the store is rewritten so that nothing of
    /// them is left on disk. A later import of the same person is
    /// reported and skipped (`touchpoint reinstate` lets them back in).
    Erase {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long, value_parser = NonEmptyStringValueParser::new())]
        customer: String,
        /// Why (the request that asked for it), for the audit log.
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        out: Output,
    },
    /// Let an erased person be imported again (administrators): the dealer
    /// states a new legal basis, which the audit log keeps.
    Reinstate {
        #[arg(long)]
        tenant: TenantId,
        /// The customer number they were erased under, or the pseudonym
        /// (`erased-…`) an import finding named.
        #[arg(long, value_parser = NonEmptyStringValueParser::new())]
        customer: String,
        /// The new legal basis (a contract, a new consent), for the audit log.
        #[arg(long, value_parser = NonEmptyStringValueParser::new())]
        basis: String,
        #[command(flatten)]
        out: Output,
    },
    /// Record a customer's objection to advertising (GDPR Art. 21): nothing
    /// is planned for them any more, and their messages not yet sent are
    /// cancelled at the next plan; a re-import does not lift it. Shown by
    /// `touchpoint customer`.
    Object {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long, value_parser = NonEmptyStringValueParser::new())]
        customer: String,
        #[arg(long, default_value = "")]
        reason: String,
        /// Take the objection back instead.
        #[arg(long)]
        lift: bool,
        #[command(flatten)]
        out: Output,
    },
    /// Everything stored about a customer, as JSON (GDPR Art. 15/20): the
    /// records of every number that is this person, vehicles with their
    /// visits, consents with their sources, responses, merges, the journey,
    /// an objection, and every message with the template version it was
    /// rendered with.
    ExportCustomer {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long, value_parser = NonEmptyStringValueParser::new())]
        customer: String,
        /// Write it to this new file (0600; never over an existing file or
        /// through a link) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Erase a dealer who left (administrators): with --archive, every
    /// customer's export written to that new folder first (on the daemon's
    /// machine, as the daemon's user); then its store, inbox, email spool,
    /// letter batches and call lists are removed and it leaves the registry.
    /// Refused while a dealer policy file still registers it.
    EraseTenant {
        tenant: TenantId,
        #[arg(long)]
        archive: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// Back up every store while the daemon runs (administrators): a new
    /// full backup in a folder of the repository DIR (on the daemon's
    /// machine, written as the daemon's user; made 0700 when missing),
    /// with a manifest of every file's BLAKE3 hash. With --verify, check
    /// a backup (or DIR's newest) instead: every file against the
    /// manifest, every database opened and its records counted.
    Backup {
        /// The repository (or, with --verify, a backup in it).
        dir: PathBuf,
        /// Then keep only the newest N backups in DIR (and remove what an
        /// interrupted backup left).
        #[arg(long, value_name = "N", conflicts_with = "verify")]
        keep: Option<u32>,
        #[arg(long)]
        verify: bool,
        #[command(flatten)]
        out: Output,
    },
    /// The brand's retention (brand.toml `[retention]`): `retention run`
    /// (administrators) prunes now what the daily run would; the months and
    /// the last run are in `touchpoint status`.
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// One message whole: recipient, channel, template, status, money,
    /// attempts and fallback links, then its why and its history.
    Message {
        /// The tenant whose outbox holds the message.
        #[arg(long)]
        tenant: TenantId,
        /// Message id (per tenant).
        id: u64,
        /// Show the content as well, whole: subject and text (the email's
        /// text part, the letter, or the call script).
        #[arg(long)]
        content: bool,
        /// With --content: the email's HTML part instead of its text.
        #[arg(long, requires = "content")]
        html: bool,
        #[command(flatten)]
        out: Output,
    },
    /// Keep messages from going out until released (planned, queued or
    /// deferred ones). Exit 1 if any id could not be held.
    Hold(MessageIds),
    /// Let held messages go on where they were. Exit 1 if any id could not
    /// be released.
    Release(MessageIds),
    /// Never send these messages (planned, queued, deferred or held ones);
    /// their reservations are released and their occasions stay taken: no
    /// later plan plans them again. Exit 1 if any id could not be cancelled.
    Cancel(MessageIds),
    /// Send deferred or failed emails again now. Exit 1 if any id could not
    /// be retried.
    Retry(MessageIds),
    /// Make planned, rendered or queued messages due now instead of at
    /// their planned day and time (audited): emails go at once, letters and
    /// calls with today's batch. Dispatch still checks consent, throttles
    /// and this month's budget; the contact rules (minimum gap between
    /// contacts) are the operator's to mind. Exit 1 if any id could not be
    /// made due.
    SendNow(MessageIds),
    /// Call-centre tasks: `calls import FILE` reads back their outcomes.
    Calls {
        #[command(subcommand)]
        command: CallsCommand,
    },
    /// Propose a new version of a brand template from a file; prints the
    /// proposal and its diff against the version in force. The daemon checks
    /// the template first and refuses it with one `file:line: key: message`
    /// line per error (exit 1).
    Propose {
        /// The template file: UTF-8 text, at most 1 MiB.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Why the change; the reviewer reads it with the diff.
        #[arg(long, value_parser = NonEmptyStringValueParser::new())]
        comment: String,
        /// The template to change [default: the file's name without its
        /// extension, `winter_check.toml` → `winter_check`].
        #[arg(long, value_name = "NAME")]
        template: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// Propose going back to an earlier version of a template. It is a
    /// proposal like any other: printed with its diff, decided by a reviewer.
    Rollback {
        /// The template, as `touchpoint templates` lists it.
        template: String,
        /// The version whose text comes back.
        #[arg(long = "to", value_name = "VERSION", value_parser = clap::value_parser!(u32).range(1..))]
        to: u32,
        /// Why; the reviewer reads it with the diff.
        #[arg(long, value_parser = NonEmptyStringValueParser::new())]
        comment: String,
        #[command(flatten)]
        out: Output,
    },
    /// Proposals of brand material waiting for a reviewer: id, template,
    /// author, created, base version, status and comment.
    Approvals {
        /// Include approved and rejected proposals.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        out: Output,
    },
    /// One proposal whole: who proposed what when, its comment and its diff
    /// against the version in force (coloured on a terminal unless NO_COLOR
    /// is set).
    Approval {
        /// Proposal id, as `touchpoint approvals` lists it.
        id: u64,
        #[command(flatten)]
        out: Output,
    },
    /// A proposal rendered for a customer of a tenant: subject, the email's
    /// plain text and the letter's text. With --json the PDF is left out
    /// (`pdf_bytes` gives its size).
    Preview {
        /// Proposal id.
        id: u64,
        /// Render with this tenant's dealer slots and customers.
        #[arg(long)]
        tenant: TenantId,
        /// This customer number; default: one the daemon picks.
        #[arg(long, value_name = "NUMBER")]
        customer: Option<String>,
        /// Write the letter as the lettershop would print it (PDF) to FILE.
        #[arg(long, value_name = "FILE")]
        pdf: Option<PathBuf>,
        /// Overwrite the --pdf file if it exists.
        #[arg(long, requires = "pdf")]
        force: bool,
        #[command(flatten)]
        out: Output,
    },
    /// Approve a proposal (reviewers only, never your own): the new version
    /// is in force for every tenant at once.
    Approve {
        /// Proposal id.
        id: u64,
        /// A note for the author and the audit log.
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// Reject a proposal (reviewers only), saying why.
    Reject {
        /// Proposal id.
        id: u64,
        /// Why; the author reads it.
        #[arg(long, value_parser = NonEmptyStringValueParser::new())]
        comment: String,
        #[command(flatten)]
        out: Output,
    },
    /// Templates with the version in force (marked *) and their history:
    /// version, when, author, approved by, fingerprint, comment.
    Templates {
        /// One template; default: all.
        name: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// Start a daemon on demo data, import it and show the console.
    Demo(crate::demo::DemoArgs),
    /// Work with policy files without a daemon: `policy check DIR`.
    Policy(crate::policy_check::PolicyArgs),
    /// Run the daemon through a simulated season against a hidden response
    /// model; `--compare N` runs learned vs fixed over N seeds.
    Simulate(crate::simulate::SimulateArgs),
}

/// The messages `hold`, `release`, `cancel` and `retry` act on.
#[derive(Debug, Args, Clone)]
pub struct MessageIds {
    /// The tenant whose outbox holds the messages.
    #[arg(long)]
    pub tenant: TenantId,
    /// Message ids (per tenant), as `touchpoint message` and the console show them.
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<u64>,
    #[command(flatten)]
    pub out: Output,
}

#[derive(Debug, Subcommand)]
pub enum LearningCommand {
    /// Keep SERVICE's learned values in force and stop updating them.
    Freeze {
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        service: String,
        #[command(flatten)]
        out: Output,
    },
    /// Back to the policy's values for SERVICE; learning starts again from
    /// the messages sent from today on.
    Reset {
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        service: String,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Prune and pseudonymise now what is older than the brand keeps, in
    /// every tenant and the audit log; prints what went.
    Run {
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum CallsCommand {
    /// Upload the call centre's outcome list and apply it; prints applied,
    /// unchanged and each rejected row. Exit 1 if any row was rejected.
    Import {
        /// The list as the call centre returned it (CSV). It travels in one
        /// request: a file too large for that (16 MiB, or less when the
        /// socket's frame limit is smaller) is refused before sending.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        out: Output,
    },
}

/// `2026-12` → `202612`, the ledger's month number.
pub fn parse_month(s: &str) -> Result<u32, String> {
    let bad = || format!("{s:?} is not a month (YYYY-MM, like 2026-12)");
    let (y, m) = s.split_once('-').ok_or_else(bad)?;
    if y.len() != 4 || m.len() != 2 || !(y.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let year: u32 = y.parse().map_err(|_| bad())?;
    let month: u32 = m.parse().map_err(|_| bad())?;
    if !(1..=12).contains(&month) {
        return Err(format!("{s:?}: month {month} is not between 01 and 12"));
    }
    Ok(year * 100 + month)
}

fn parse_by(s: &str) -> Result<touchpoint_common::report::stats::By, String> {
    use touchpoint_common::report::stats::By;
    By::parse(s).ok_or_else(|| {
        let all: Vec<&str> = By::ALL.iter().map(|b| b.as_str()).collect();
        format!("{s:?} is not one of {}", all.join(", "))
    })
}

/// Table width on a terminal whose size is unknown.
const DEFAULT_TABLE_WIDTH: usize = 100;

/// The width tables are fitted to on a terminal (its own, else
/// [`DEFAULT_TABLE_WIDTH`]); `None` when stdout is a file or a pipe, where
/// nothing is cut.
fn table_width() -> Option<usize> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    match crossterm::terminal::size() {
        Ok((columns, _)) if columns > 0 => Some(usize::from(columns)),
        _ => Some(DEFAULT_TABLE_WIDTH),
    }
}

/// Whether to colour output: only on a terminal, and not when `NO_COLOR` is
/// set to anything but the empty string (<https://no-color.org>).
pub use touchpoint_common::colour::wanted as colour_wanted;

fn stdout_colour() -> bool {
    colour_wanted(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

/// The template a file proposes when `--template` is not given: the file's
/// name without its extension (`policies/templates/winter_check.toml` →
/// `winter_check`).
pub fn template_name(file: &Path) -> Result<String, Failure> {
    match file.file_stem().and_then(|s| s.to_str()) {
        Some(stem) if !stem.is_empty() && !stem.starts_with('.') => Ok(stem.to_string()),
        _ => Err(Failure {
            code: EXIT_USAGE,
            message: format!(
                "cannot tell the template's name from {}; name it with --template",
                file.display()
            ),
        }),
    }
}

/// A failure that decides the exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        let code = if e.is_connection() {
            EXIT_UNREACHABLE
        } else {
            EXIT_FAILED
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure {
        code: EXIT_FAILED,
        message: format!("cannot write JSON: {e}"),
    })?;
    emit(&format!("{text}\n"));
    Ok(())
}

/// Runs one subcommand (not the TUI, not the demo) and returns the exit code.
pub async fn run(socket: Option<PathBuf>, readonly: bool, command: Command) -> ExitCode {
    match run_inner(socket, readonly, command).await {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("touchpoint: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

async fn run_inner(
    socket: Option<PathBuf>,
    readonly: bool,
    command: Command,
) -> Result<u8, Failure> {
    if readonly && changes_data(&command) {
        return Err(Failure {
            code: EXIT_USAGE,
            message: "--readonly: this command changes data".into(),
        });
    }
    // Read the upload before connecting: a missing or oversized file needs no daemon.
    let call_file = match &command {
        Command::Calls {
            command: CallsCommand::Import { file, .. },
        } => Some(read_call_outcomes(file).await?),
        _ => None,
    };
    let template_file = match &command {
        Command::Propose { file, template, .. } => {
            let name = match template {
                Some(name) => name.clone(),
                None => template_name(file)?,
            };
            Some((name, read_template(file).await?))
        }
        _ => None,
    };
    if let Command::Preview {
        pdf: Some(path),
        force: false,
        ..
    } = &command
    {
        refuse_existing(path)?;
    }
    let socket = resolve_socket(socket.as_deref());
    let mut client = Client::connect(&socket).await?;
    match command {
        Command::Status { out } => {
            let s = client.status().await?;
            if out.json {
                print_json(&s)?;
            } else {
                emit(&format::status(&s));
            }
        }
        Command::Tenants { out } => {
            let t = client.tenants().await?;
            if out.json {
                print_json(&t)?;
            } else {
                emit(&format::tenants(&t));
            }
        }
        Command::Tenant { id, out } => {
            let d = client.tenant(&id).await?;
            if out.json {
                print_json(&d)?;
            } else {
                emit(&format::tenant(&d));
            }
        }
        Command::Import { import: i, out } => {
            return import(&mut client, &i.tenant, &i.files, out.json).await;
        }
        Command::Merges { tenant, all, out } => {
            let m = client.merges(&tenant, all).await?;
            if out.json {
                print_json(&m)?;
            } else {
                emit(&format::merges(&m));
            }
        }
        Command::UndoMerge { tenant, id, out } => {
            let m = client.undo_merge(&tenant, id).await;
            return one_action(m, Some(&tenant), id, out, format::merge_undone);
        }
        Command::Audit {
            tenant,
            limit,
            grep,
            out,
        } => {
            let a = client
                .audit(tenant.as_ref(), limit, grep.as_deref().unwrap_or(""))
                .await?;
            if out.json {
                print_json(&a)?;
            } else {
                emit(&format::audit(&a));
            }
        }
        Command::Plan { plan, out } => {
            let result = commands::plan(&mut client, &plan)
                .await
                .map_err(|e| match e {
                    CommandError::Policies(message) => Failure {
                        code: EXIT_FAILED,
                        message,
                    },
                    CommandError::Client(e) => e.into(),
                })?;
            if out.json {
                print_json(&result)?;
            } else {
                emit(&format::plan(&result, plan.policies.is_some()));
            }
            if !result.failed.is_empty() {
                return Ok(EXIT_FAILED);
            }
        }
        Command::Dispatch { out } => {
            let d = client.dispatch_status().await?;
            if out.json {
                print_json(&d)?;
            } else {
                emit(&format::dispatch(&d));
            }
        }
        Command::Pause { scope, out } => {
            let p = client.pause(scope.into()).await?;
            print_pauses(&p, out)?;
        }
        Command::Resume { scope, out } => {
            let p = client.resume(scope.into()).await?;
            print_pauses(&p, out)?;
        }
        Command::Batches { batches, out } => {
            let b = client.run_batches(batches.tenant.as_ref()).await?;
            if out.json {
                print_json(&b)?;
            } else {
                emit(&format::batches(&b));
            }
        }
        Command::Queue {
            filter,
            sort,
            offset,
            limit,
            out,
        } => {
            let mut filter = QueueFilter::parse(&filter.join(" ")).map_err(|e| Failure {
                code: EXIT_USAGE,
                message: format!("filter {e}"),
            })?;
            if let Some(sort) = sort {
                filter.sort = sort;
            }
            let page = client.queue(&filter, offset, limit).await?;
            if out.json {
                print_json(&page)?;
            } else {
                emit(&format::queue(&page));
            }
        }
        Command::Overview { day, out } => {
            let o = client.overview(day.and_then(|d| d.0)).await?;
            if out.json {
                print_json(&o)?;
            } else {
                emit(&format::overview(&o));
            }
        }
        Command::Costs {
            tenant,
            month,
            out,
            csv,
        } => {
            let rows = client.costs(tenant.as_ref(), month).await?;
            if out.json {
                print_json(&rows)?;
            } else if csv {
                let text = format::costs_csv(&rows).map_err(|e| Failure {
                    code: EXIT_FAILED,
                    message: format!("cannot write CSV: {e}"),
                })?;
                emit(&text);
            } else {
                emit(&format::costs(&rows));
            }
        }
        Command::Report {
            tenant,
            service,
            from,
            to,
            by,
            pooled,
            out,
            csv,
        } => {
            let r = client
                .report(touchpoint_common::report::answer::ReportQuery {
                    tenant,
                    service,
                    from,
                    to,
                    by,
                    pooled,
                })
                .await?;
            if out.json {
                print_json(&format::report_json(&r))?;
            } else if csv {
                let text = format::report_csv(&r).map_err(|e| Failure {
                    code: EXIT_FAILED,
                    message: format!("cannot write CSV: {e}"),
                })?;
                emit(&text);
            } else {
                emit(&format::report(&r, std::io::stdout().is_terminal()));
            }
        }
        Command::Responses {
            tenant,
            customer,
            organic,
            limit,
            out,
            csv,
        } => {
            let r = client.responses(&tenant, customer, organic, limit).await?;
            if out.json {
                print_json(&r)?;
            } else if csv {
                let text = format::responses_csv(&r).map_err(|e| Failure {
                    code: EXIT_FAILED,
                    message: format!("cannot write CSV: {e}"),
                })?;
                emit(&text);
            } else {
                emit(&format::responses(&r));
            }
        }
        Command::Learning {
            command,
            service,
            out,
        } => {
            let (state, json) = match command {
                None => (client.learning(service).await?, out.json),
                Some(LearningCommand::Freeze { service, out }) => (
                    client
                        .learning_action(
                            service,
                            touchpoint_common::learning::LearningAction::Freeze,
                        )
                        .await?,
                    out.json,
                ),
                Some(LearningCommand::Reset { service, out }) => (
                    client
                        .learning_action(
                            service,
                            touchpoint_common::learning::LearningAction::Reset,
                        )
                        .await?,
                    out.json,
                ),
            };
            if json {
                print_json(&state)?;
            } else {
                emit(&format::learning(&state));
            }
        }
        Command::Customer {
            tenant,
            customer,
            out,
        } => {
            let c = client.customer(&tenant, customer).await?;
            if out.json {
                print_json(&c)?;
            } else {
                emit(&format::customer(&c));
            }
        }
        Command::Erase {
            tenant,
            customer,
            reason,
            out,
        } => {
            let r = Request::Erase {
                tenant,
                customer,
                reason,
            };
            rights(&mut client, r, out).await?;
        }
        Command::Reinstate {
            tenant,
            customer,
            basis,
            out,
        } => {
            let r = Request::Reinstate {
                tenant,
                customer,
                basis,
            };
            rights(&mut client, r, out).await?;
        }
        Command::Object {
            tenant,
            customer,
            reason,
            lift,
            out,
        } => {
            let r = Request::Object {
                tenant,
                customer,
                reason,
                lift,
            };
            rights(&mut client, r, out).await?;
        }
        Command::EraseTenant {
            tenant,
            archive,
            out,
        } => {
            rights(&mut client, Request::EraseTenant { tenant, archive }, out).await?;
        }
        Command::Backup {
            dir,
            keep,
            verify,
            out,
        } => {
            // The daemon is on this machine: a relative path means here.
            let dir = std::path::absolute(&dir).map_err(|e| Failure {
                code: EXIT_USAGE,
                message: format!("{}: {e}", dir.display()),
            })?;
            let dir = dir.to_string_lossy().into_owned();
            let request = match verify {
                true => Request::VerifyBackup { dir },
                false => Request::Backup { dir, keep },
            };
            let done = client.backup(request).await?;
            if out.json {
                print_json(&done)?;
            } else {
                emit(&format::backup(&done, verify));
            }
        }
        Command::Retention {
            command: RetentionCommand::Run { out },
        } => {
            let run = client.retention_run().await?;
            if out.json {
                print_json(&run)?;
            } else {
                emit(&format::retention(&run));
            }
        }
        Command::ExportCustomer {
            tenant,
            customer,
            out,
        } => {
            if let Some(path) = &out {
                refuse_existing(path)?;
            }
            let x = client.export_customer(&tenant, customer).await?;
            match &out {
                None => print_json(&x)?,
                Some(path) => write_private(path, &x).await?,
            }
        }
        Command::Message {
            tenant,
            id,
            content,
            html,
            out,
        } => {
            let m = client.message(&tenant, id).await?;
            // Content that cannot be had (its customer merged away, a
            // template error) does not hide the message: it is said, exit 1.
            let (c, missing) = match content {
                false => (None, None),
                true => match client.content(&tenant, id).await {
                    Ok(c) => (Some(c), None),
                    Err(e) if e.is_connection() => return Err(e.into()),
                    Err(e) => (None, Some(e.to_string())),
                },
            };
            if out.json {
                if content {
                    print_json(&serde_json::json!({ "message": m, "content": c }))?;
                } else {
                    print_json(&m)?;
                }
            } else {
                let mut text = format::message(&m);
                if let Some(c) = &c {
                    text.push_str(&format::content(c, html));
                }
                emit(&text);
            }
            if let Some(why) = missing {
                eprintln!("touchpoint: message {id}: no content: {why}");
                return Ok(EXIT_FAILED);
            }
        }
        Command::Hold(ids) => return message_action(&mut client, ids, MessageAction::Hold).await,
        Command::Release(ids) => {
            return message_action(&mut client, ids, MessageAction::Release).await
        }
        Command::Cancel(ids) => {
            return message_action(&mut client, ids, MessageAction::Cancel).await
        }
        Command::Retry(ids) => return message_action(&mut client, ids, MessageAction::Retry).await,
        Command::SendNow(ids) => {
            return message_action(&mut client, ids, MessageAction::SendNow).await
        }
        Command::Calls {
            command: CallsCommand::Import { out, .. },
        } => {
            let Some((file_name, data)) = call_file else {
                return Err(Failure {
                    code: EXIT_FAILED,
                    message: "the call-outcomes file was not read".into(),
                });
            };
            let report = client.call_outcomes(file_name, data).await?;
            if out.json {
                print_json(&report)?;
            } else {
                emit(&format::outcomes(&report));
            }
            if !report.errors.is_empty() {
                return Ok(EXIT_FAILED);
            }
        }
        Command::Propose { comment, out, .. } => {
            let Some((name, text)) = template_file else {
                return Err(Failure {
                    code: EXIT_FAILED,
                    message: "the template file was not read".into(),
                });
            };
            let made = client
                .propose(&name, text, &comment)
                .await
                .map_err(proposal_refused)?;
            let detail = with_diff(&mut client, made).await;
            if out.json {
                print_json(&detail)?;
            } else {
                emit(&format::proposed(&detail, stdout_colour()));
            }
        }
        Command::Rollback {
            template,
            to,
            comment,
            out,
        } => {
            let made = client
                .propose_rollback(&template, to, &comment)
                .await
                .map_err(proposal_refused)?;
            let detail = with_diff(&mut client, made).await;
            if out.json {
                print_json(&detail)?;
            } else {
                emit(&format::proposed(&detail, stdout_colour()));
            }
        }
        Command::Approvals { all, out } => {
            let list = client.proposals(all).await?;
            if out.json {
                print_json(&list)?;
            } else {
                emit(&format::approvals(&list, all, table_width()));
            }
        }
        Command::Approval { id, out } => {
            let d = client.proposal(id).await?;
            if out.json {
                print_json(&d)?;
            } else {
                emit(&format::approval(&d, stdout_colour()));
            }
        }
        Command::Preview {
            id,
            tenant,
            customer,
            pdf,
            force,
            out,
        } => {
            let p = client.preview(id, &tenant, customer.as_deref()).await?;
            if let Some(path) = &pdf {
                write_pdf(path, &p.pdf, force).await?;
            }
            if out.json {
                print_json(&PreviewJson {
                    proposal: p.proposal,
                    tenant: &p.tenant,
                    customer: &p.customer,
                    subject: &p.subject,
                    text: &p.text,
                    html: &p.html,
                    letter: &p.letter,
                    pdf_bytes: p.pdf.len(),
                    pdf_file: pdf.as_ref().map(|f| f.display().to_string()),
                })?;
            } else {
                emit(&format::preview(&p));
                if let Some(path) = &pdf {
                    emit(&format!(
                        "\nletter PDF written to {} ({})\n",
                        path.display(),
                        format::human_bytes(p.pdf.len() as u64)
                    ));
                }
            }
        }
        Command::Approve { id, comment, out } => {
            let d = client
                .approve(id, comment.as_deref().unwrap_or_default())
                .await;
            return one_action(d, None, id, out, format::decision);
        }
        Command::Reject { id, comment, out } => {
            let d = client.reject(id, &comment).await;
            return one_action(d, None, id, out, format::decision);
        }
        Command::Templates { name, out } => {
            let list = client.templates(name.as_deref()).await?;
            if out.json {
                print_json(&list)?;
            } else {
                emit(&format::templates(&list, table_width()));
            }
        }
        Command::Demo(_) | Command::Policy(_) | Command::Simulate(_) => {
            return Err(Failure {
                code: EXIT_USAGE,
                message: "demo, policy and simulate are not socket commands".into(),
            })
        }
    }
    Ok(EXIT_OK)
}

/// True for the subcommands that `--readonly` refuses.
fn changes_data(command: &Command) -> bool {
    matches!(
        command,
        Command::Import { .. }
            | Command::UndoMerge { .. }
            | Command::Plan {
                plan: PlanOptions {
                    dry_run: false,
                    policies: None,
                    ..
                },
                ..
            }
            | Command::Pause { .. }
            | Command::Resume { .. }
            | Command::Batches { .. }
            | Command::Hold(_)
            | Command::Release(_)
            | Command::Cancel(_)
            | Command::Retry(_)
            | Command::Calls { .. }
            | Command::Propose { .. }
            | Command::Rollback { .. }
            | Command::Approve { .. }
            | Command::Reject { .. }
            | Command::Learning {
                command: Some(_),
                ..
            }
            | Command::Erase { .. }
            | Command::Reinstate { .. }
            | Command::Object { .. }
            | Command::EraseTenant { .. }
            | Command::Backup { verify: false, .. }
            | Command::Retention { .. }
    )
}

/// A data subject's right exercised: what was done, or with `--json` the
/// daemon's answer as is.
async fn rights(client: &mut Client, request: Request, out: Output) -> Result<(), Failure> {
    let done = client.rights(request).await?;
    if out.json {
        print_json(&done)?;
    } else {
        emit(&format::rights(&done));
    }
    Ok(())
}

/// Writes a customer's export as JSON to a new file only the user may
/// read (0600), never through a link nor over an existing file.
async fn write_private<T: Serialize>(path: &Path, value: &T) -> Result<(), Failure> {
    use std::os::unix::fs::OpenOptionsExt as _;
    use tokio::io::AsyncWriteExt as _;
    let write_err = |e: std::io::Error| Failure {
        code: EXIT_FAILED,
        message: format!("cannot write {}: {e}", path.display()),
    };
    let mut json = serde_json::to_vec_pretty(value).map_err(|e| write_err(e.into()))?;
    json.push(b'\n');
    // O_CREAT|O_EXCL: fails on anything at the name, a link (even a
    // dangling one) included, so nothing is written through one.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    let file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists(path)),
        Err(e) => return Err(write_err(e)),
    };
    let mut file = tokio::fs::File::from_std(file);
    file.write_all(&json).await.map_err(write_err)?;
    file.sync_all().await.map_err(write_err)?;
    Ok(())
}

/// A proposal the daemon found invalid: its reasons, one
/// `file:line: key: message` per line, as they came.
fn proposal_refused(e: ClientError) -> Failure {
    match e {
        ClientError::Daemon(reply) if reply.kind == ErrorKind::Invalid => Failure {
            code: EXIT_FAILED,
            message: format!("the proposal was refused:\n{}", reply.message.trim_end()),
        },
        other => other.into(),
    }
}

/// The proposal just made, fetched again for its diff. The proposal exists
/// whatever happens here, so a failed fetch only costs the fresh diff.
async fn with_diff(client: &mut Client, made: ProposalDetail) -> ProposalDetail {
    match client.proposal(made.proposal.id).await {
        Ok(detail) => detail,
        Err(e) => {
            eprintln!(
                "touchpoint: proposal {} was made; fetching it again failed: {e}",
                made.proposal.id
            );
            made
        }
    }
}

/// What every action command (hold, release, cancel, retry, approve,
/// reject, undo-merge) prints with `--json`: a list with one of these per
/// id. `tenant` is null for brand material (a proposal belongs to no
/// tenant); `reason` says why `ok` is false, and is null when it is true.
#[derive(Debug, Serialize)]
pub struct ActionOutcome<'a> {
    pub tenant: Option<&'a TenantId>,
    pub id: u64,
    pub ok: bool,
    pub reason: Option<String>,
}

/// An action on one id: its text, or with `--json` its [`ActionOutcome`]
/// (a list of one). The daemon's refusal is an outcome (`ok: false`, exit
/// 1); an unreachable daemon is a failure (exit 3), with no JSON.
fn one_action<T>(
    result: Result<T, ClientError>,
    tenant: Option<&TenantId>,
    id: u64,
    out: Output,
    text: impl FnOnce(&T) -> String,
) -> Result<u8, Failure> {
    match result {
        Ok(_) if out.json => {
            print_json(&[ActionOutcome {
                tenant,
                id,
                ok: true,
                reason: None,
            }])?;
            Ok(EXIT_OK)
        }
        Ok(done) => {
            emit(&text(&done));
            Ok(EXIT_OK)
        }
        Err(e) if out.json && !e.is_connection() => {
            print_json(&[ActionOutcome {
                tenant,
                id,
                ok: false,
                reason: Some(e.to_string()),
            }])?;
            Ok(EXIT_FAILED)
        }
        Err(e) => Err(e.into()),
    }
}

/// `--pdf FILE` without `--force`: an existing file (or a link, even a
/// dangling one) is kept.
fn refuse_existing(path: &Path) -> Result<(), Failure> {
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(exists(path));
    }
    Ok(())
}

fn exists(path: &Path) -> Failure {
    Failure {
        code: EXIT_USAGE,
        message: format!("{} exists; add --force to overwrite it", path.display()),
    }
}

/// Writes the preview's letter PDF; without `force` only to a new file, so a
/// file created since the check before connecting is kept too.
async fn write_pdf(path: &Path, pdf: &[u8], force: bool) -> Result<(), Failure> {
    use tokio::io::AsyncWriteExt as _;
    if pdf.is_empty() {
        return Err(Failure {
            code: EXIT_FAILED,
            message: "the daemon sent no letter PDF with this preview".into(),
        });
    }
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let write_err = |e: std::io::Error| Failure {
        code: EXIT_FAILED,
        message: format!("cannot write {}: {e}", path.display()),
    };
    let mut file = match options.open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists(path)),
        Err(e) => return Err(write_err(e)),
    };
    file.write_all(pdf).await.map_err(write_err)?;
    file.flush().await.map_err(write_err)?;
    Ok(())
}

/// `touchpoint preview --json`: the preview without the PDF's bytes.
#[derive(Serialize)]
struct PreviewJson<'a> {
    proposal: u64,
    tenant: &'a TenantId,
    customer: &'a str,
    subject: &'a str,
    text: &'a str,
    html: &'a str,
    letter: &'a str,
    pdf_bytes: usize,
    /// Where `--pdf` wrote the letter.
    pdf_file: Option<String>,
}

fn print_pauses(pauses: &[touchpoint_common::protocol::Pause], out: Output) -> Result<(), Failure> {
    if out.json {
        print_json(pauses)
    } else {
        emit(&format::pauses(pauses));
        Ok(())
    }
}

async fn message_action(
    client: &mut Client,
    ids: MessageIds,
    action: MessageAction,
) -> Result<u8, Failure> {
    let MessageIds { tenant, ids, out } = ids;
    let results = match client.message_action(&tenant, &ids, action).await {
        Ok(results) => results,
        // Refused as a whole (scope, role, limits): with --json, each id's
        // outcome says so.
        Err(e) if out.json && !e.is_connection() => {
            let reason = e.to_string();
            let outcomes: Vec<ActionOutcome<'_>> = ids
                .iter()
                .map(|&id| ActionOutcome {
                    tenant: Some(&tenant),
                    id,
                    ok: false,
                    reason: Some(reason.clone()),
                })
                .collect();
            print_json(&outcomes)?;
            return Ok(EXIT_FAILED);
        }
        Err(e) => return Err(e.into()),
    };
    // An id the daemon left unanswered did not get the action either.
    let missing: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| !results.iter().any(|r| r.id == *id))
        .collect();
    const UNANSWERED: &str = "the daemon did not answer for it";
    if out.json {
        let outcomes: Vec<ActionOutcome<'_>> = results
            .iter()
            .map(|r| ActionOutcome {
                tenant: Some(&tenant),
                id: r.id,
                ok: r.outcome.is_ok(),
                reason: r.outcome.as_ref().err().cloned(),
            })
            .chain(missing.iter().map(|&id| ActionOutcome {
                tenant: Some(&tenant),
                id,
                ok: false,
                reason: Some(UNANSWERED.into()),
            }))
            .collect();
        print_json(&outcomes)?;
    } else {
        emit(&format::actions(action, &results));
    }
    for id in &missing {
        eprintln!("touchpoint: message {id}: {UNANSWERED}");
    }
    if missing.is_empty() && results.iter().all(|r| r.outcome.is_ok()) {
        Ok(EXIT_OK)
    } else {
        Ok(EXIT_FAILED)
    }
}

#[derive(Serialize)]
struct FileOutcome<'a> {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<&'a touchpoint_common::domain::ImportReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn import(
    client: &mut Client,
    tenant: &TenantId,
    files: &[PathBuf],
    json: bool,
) -> Result<u8, Failure> {
    let run = commands::import(client, tenant, files, |result| {
        if !json {
            emit(&commands::import_text(result));
        }
    })
    .await;
    if json {
        print_import_json(&run.results)?;
    }
    if let Some((label, e)) = run.broken {
        return Err(Failure {
            code: EXIT_UNREACHABLE,
            message: format!("{label}: {e}"),
        });
    }
    Ok(if run.failed() { EXIT_FAILED } else { EXIT_OK })
}

fn print_import_json(results: &[ImportResult]) -> Result<(), Failure> {
    let list: Vec<FileOutcome<'_>> = results
        .iter()
        .map(|(file, r)| FileOutcome {
            file: file.clone(),
            report: r.as_ref().ok(),
            error: r.as_ref().err().cloned(),
        })
        .collect();
    print_json(&list)
}

#[cfg(test)]
mod tests;

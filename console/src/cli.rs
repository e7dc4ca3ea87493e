//! The scriptable subcommands. Human text by default, `--json` for scripts;
//! the exit codes are those of [`crate::output`].

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use touchpoint_common::protocol::{
    ErrorKind, MessageAction, PauseScope, ProposalDetail, QueueFilter,
};
use touchpoint_common::TenantId;

use crate::client::{read_call_outcomes, read_template, resolve_socket, Client, ClientError};
use crate::format;
use crate::output::{emit, Output, EXIT_FAILED, EXIT_OK, EXIT_USAGE};

#[derive(Debug, Parser)]
#[command(
    name = "touchpoint",
    version,
    about = "Operator console for touchpointd"
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
        #[arg(long)]
        tenant: TenantId,
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
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
        /// One tenant; default: every tenant in your scope.
        #[arg(long)]
        tenant: Option<TenantId>,
        /// Show what would be planned, with counts and cost per service; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Plan against the policy files in DIR instead of those in force and
        /// print the difference (implies --dry-run).
        #[arg(long, value_name = "DIR")]
        policies: Option<PathBuf>,
        /// Plan for this day instead of today (YYYY-MM-DD).
        #[arg(long, value_name = "DATE", value_parser = parse_day)]
        day: Option<touchpoint_common::Date>,
        /// List up to N planned messages (with their why) and drops per tenant.
        #[arg(long, value_name = "N", default_value_t = 0)]
        show: u32,
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
        /// One tenant; default: every tenant in your scope.
        #[arg(long)]
        tenant: Option<TenantId>,
        #[command(flatten)]
        out: Output,
    },
    /// Messages of the outbox, filtered and paged by the daemon, newest
    /// first per tenant. FILTER terms: `status:held,failed`, `channel:email`,
    /// `tenant:d001`, `service:inspection`, `date:2026-11-01..2026-11-30`
    /// (or one day, or open on one side), and free text (customer number,
    /// address, template, last answer).
    Queue {
        /// Filter terms, as in the console's `/` line.
        filter: Vec<String>,
        #[arg(long, default_value_t = 0)]
        offset: u64,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        out: Output,
    },
    /// What the console's overview shows: today's messages per tenant, cost
    /// against budget, throughput of the last hour, throttles, policy and
    /// dispatch state, alerts.
    Overview {
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
    /// One message whole: recipient, channel, template, status, money,
    /// attempts and fallback links, then its why and its history.
    Message {
        /// The tenant whose outbox holds the message.
        #[arg(long)]
        tenant: TenantId,
        /// Message id (per tenant).
        id: u64,
        #[command(flatten)]
        out: Output,
    },
    /// Keep messages from going out until released (planned, queued or
    /// deferred ones). Exit 1 if any id could not be held.
    Hold(MessageIds),
    /// Let held messages go on where they were. Exit 1 if any id could not
    /// be released.
    Release(MessageIds),
    /// Never send these messages; their occasions become free for a later
    /// plan. Exit 1 if any id could not be cancelled.
    Cancel(MessageIds),
    /// Send deferred or failed emails again now. Exit 1 if any id could not
    /// be retried.
    Retry(MessageIds),
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
}

/// What `pause` and `resume` apply to; neither flag means all dispatch.
#[derive(Debug, Args, Clone, Default)]
pub struct ScopeArgs {
    /// Only this tenant.
    #[arg(long)]
    pub tenant: Option<TenantId>,
    /// Only this service (as named in the brand policy).
    #[arg(long)]
    pub service: Option<String>,
}

impl From<ScopeArgs> for PauseScope {
    fn from(a: ScopeArgs) -> Self {
        PauseScope {
            tenant: a.tenant,
            service: a.service,
        }
    }
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

fn parse_day(s: &str) -> Result<touchpoint_common::Date, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(touchpoint_common::Date::from)
        .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)"))
}

/// Table width when stdout is not a terminal (or its size is unknown).
const DEFAULT_TABLE_WIDTH: usize = 100;

/// The width tables are fitted to: the terminal's, else [`DEFAULT_TABLE_WIDTH`].
fn table_width() -> usize {
    if std::io::stdout().is_terminal() {
        if let Ok((columns, _)) = crossterm::terminal::size() {
            if columns > 0 {
                return usize::from(columns);
            }
        }
    }
    DEFAULT_TABLE_WIDTH
}

/// Whether to colour output: only on a terminal, and not when `NO_COLOR` is
/// set to anything but the empty string (<https://no-color.org>).
pub fn colour_wanted(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

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
            EXIT_USAGE
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
        Command::Import { tenant, files, out } => {
            return import(&mut client, &tenant, &files, out.json).await;
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
            let m = client.undo_merge(&tenant, id).await?;
            if out.json {
                print_json(&m)?;
            } else {
                emit(&format::merge_undone(&m));
            }
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
        Command::Plan {
            tenant,
            dry_run,
            policies,
            day,
            show,
            out,
        } => {
            let candidate = match &policies {
                Some(dir) => Some(crate::policy_check::read_dir(dir).map_err(|errs| {
                    Failure {
                        code: EXIT_FAILED,
                        message: errs
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("\n"),
                    }
                })?),
                None => None,
            };
            let dry_run = dry_run || candidate.is_some();
            let result = client
                .plan(crate::client::PlanArgs {
                    tenant,
                    day,
                    dry_run,
                    policies: candidate,
                    show,
                })
                .await?;
            if out.json {
                print_json(&result)?;
            } else {
                emit(&format::plan(&result, policies.is_some()));
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
        Command::Batches { tenant, out } => {
            let b = client.run_batches(tenant.as_ref()).await?;
            if out.json {
                print_json(&b)?;
            } else {
                emit(&format::batches(&b));
            }
        }
        Command::Queue {
            filter,
            offset,
            limit,
            out,
        } => {
            let filter = QueueFilter::parse(&filter.join(" ")).map_err(|e| Failure {
                code: EXIT_USAGE,
                message: format!("filter {e}"),
            })?;
            let page = client.queue(&filter, offset, limit).await?;
            if out.json {
                print_json(&page)?;
            } else {
                emit(&format::queue(&page));
            }
        }
        Command::Overview { out } => {
            let o = client.overview().await?;
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
        Command::Message { tenant, id, out } => {
            let m = client.message(&tenant, id).await?;
            if out.json {
                print_json(&m)?;
            } else {
                emit(&format::message(&m));
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
                .await?;
            print_decision(&d, out)?;
        }
        Command::Reject { id, comment, out } => {
            let d = client.reject(id, &comment).await?;
            print_decision(&d, out)?;
        }
        Command::Templates { name, out } => {
            let list = client.templates(name.as_deref()).await?;
            if out.json {
                print_json(&list)?;
            } else {
                emit(&format::templates(&list, table_width()));
            }
        }
        Command::Demo(_) | Command::Policy(_) => {
            return Err(Failure {
                code: EXIT_USAGE,
                message: "demo and policy are not socket commands".into(),
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
                dry_run: false,
                policies: None,
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
    )
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

fn print_decision(d: &ProposalDetail, out: Output) -> Result<(), Failure> {
    if out.json {
        print_json(d)
    } else {
        emit(&format::decision(d));
        Ok(())
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
    let results = client.message_action(&tenant, &ids, action).await?;
    // An id the daemon left unanswered did not get the action either.
    let missing: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| !results.iter().any(|r| r.id == *id))
        .collect();
    if out.json {
        print_json(&results)?;
    } else {
        emit(&format::actions(action, &results));
    }
    for id in &missing {
        eprintln!("touchpoint: message {id}: the daemon did not answer for it");
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
    let mut code = EXIT_OK;
    let mut results = Vec::new();
    for file in files {
        let label = file.display().to_string();
        match client.upload(tenant, file).await {
            Ok(report) => {
                if matches!(
                    report.status,
                    touchpoint_common::domain::ImportStatus::Failed { .. }
                ) {
                    code = EXIT_FAILED;
                }
                if !json {
                    emit(&format::import_report(&label, &report));
                }
                results.push((label, Ok(report)));
            }
            Err(e) if e.is_connection() => {
                if json {
                    print_import_json(&results)?;
                }
                return Err(Failure {
                    code: EXIT_USAGE,
                    message: format!("{label}: {e}"),
                });
            }
            Err(e) => {
                code = EXIT_FAILED;
                if !json {
                    emit(&format!("{label}: failed: {e}\n"));
                }
                results.push((label, Err(e.to_string())));
            }
        }
    }
    if json {
        print_import_json(&results)?;
    }
    Ok(code)
}

type ImportResult = (
    String,
    Result<touchpoint_common::domain::ImportReport, String>,
);

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
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_subcommands_and_global_flags() {
        let cli = Cli::try_parse_from(["touchpoint", "--socket", "/tmp/s", "tenants", "--json"])
            .expect("parse");
        assert_eq!(cli.socket.as_deref(), Some(std::path::Path::new("/tmp/s")));
        assert!(matches!(
            cli.command,
            Some(Command::Tenants {
                out: Output { json: true }
            })
        ));

        let cli =
            Cli::try_parse_from(["touchpoint", "import", "--tenant", "d001", "a.csv", "b.csv"])
                .expect("parse");
        match cli.command {
            Some(Command::Import { tenant, files, out }) => {
                assert_eq!(tenant.as_str(), "d001");
                assert_eq!(files.len(), 2);
                assert!(!out.json);
            }
            other => panic!("{other:?}"),
        }

        let cli = Cli::try_parse_from(["touchpoint", "--readonly"]).expect("parse");
        assert!(cli.readonly && cli.command.is_none());
    }

    #[test]
    fn rejects_bad_tenant_ids_and_missing_files() {
        assert!(Cli::try_parse_from(["touchpoint", "tenant", "../etc"]).is_err());
        assert!(Cli::try_parse_from(["touchpoint", "import", "--tenant", "d001"]).is_err());
    }

    #[tokio::test]
    async fn readonly_refuses_changes_before_connecting() {
        let cmd = Command::UndoMerge {
            tenant: TenantId::new("d001").expect("id"),
            id: 3,
            out: Output { json: false },
        };
        let err = run_inner(Some("/nonexistent.sock".into()), true, cmd)
            .await
            .expect_err("refused");
        assert_eq!(err.code, EXIT_USAGE);
        assert!(err.message.contains("--readonly"));
    }

    #[tokio::test]
    async fn no_daemon_is_a_connection_error() {
        let cmd = Command::Status {
            out: Output { json: false },
        };
        let err = run_inner(Some("/nonexistent/t.sock".into()), false, cmd)
            .await
            .expect_err("no daemon");
        assert_eq!(err.code, EXIT_USAGE);
        assert!(
            err.message.contains("is touchpointd running?"),
            "{}",
            err.message
        );
    }

    fn parse(args: &[&str]) -> Command {
        let mut argv = vec!["touchpoint"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv) {
            Ok(cli) => cli.command.expect("a subcommand"),
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    #[test]
    fn parses_dispatch_pause_resume_and_batches() {
        assert!(matches!(
            parse(&["dispatch", "--json"]),
            Command::Dispatch {
                out: Output { json: true }
            }
        ));
        match parse(&["pause", "--tenant", "d001", "--service", "hu"]) {
            Command::Pause { scope, out } => {
                let scope = PauseScope::from(scope);
                assert_eq!(scope.to_string(), "service hu of tenant d001");
                assert!(!out.json);
            }
            other => panic!("{other:?}"),
        }
        match parse(&["pause"]) {
            Command::Pause { scope, .. } => {
                assert_eq!(PauseScope::from(scope), PauseScope::default());
            }
            other => panic!("{other:?}"),
        }
        match parse(&["resume", "--service", "birthday", "--json"]) {
            Command::Resume { scope, out } => {
                assert_eq!(
                    PauseScope::from(scope),
                    PauseScope {
                        tenant: None,
                        service: Some("birthday".into())
                    }
                );
                assert!(out.json);
            }
            other => panic!("{other:?}"),
        }
        match parse(&["batches", "--tenant", "d002"]) {
            Command::Batches { tenant, .. } => {
                assert_eq!(tenant.as_ref().map(TenantId::as_str), Some("d002"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["batches"]),
            Command::Batches { tenant: None, .. }
        ));
        assert!(Cli::try_parse_from(["touchpoint", "pause", "--tenant", "Bad/Id"]).is_err());
    }

    #[test]
    fn parses_costs_with_month_and_exclusive_outputs() {
        match parse(&["costs", "--tenant", "d001", "--month", "2026-12", "--csv"]) {
            Command::Costs {
                tenant,
                month,
                out,
                csv,
            } => {
                assert_eq!(tenant.as_ref().map(TenantId::as_str), Some("d001"));
                assert_eq!(month, Some(202612));
                assert!(csv && !out.json);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["costs", "--json"]),
            Command::Costs {
                tenant: None,
                month: None,
                out: Output { json: true },
                csv: false
            }
        ));
        let err =
            Cli::try_parse_from(["touchpoint", "costs", "--json", "--csv"]).expect_err("conflict");
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        let err = Cli::try_parse_from(["touchpoint", "costs", "--month", "2026-13"])
            .expect_err("bad month");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(
            err.to_string()
                .contains("month 13 is not between 01 and 12"),
            "{err}"
        );
    }

    #[test]
    fn month_parsing() {
        assert_eq!(parse_month("2026-12"), Ok(202612));
        assert_eq!(parse_month("2027-01"), Ok(202701));
        for bad in [
            "",
            "2026",
            "202612",
            "2026-1",
            "26-12",
            "2026/12",
            "2026-12-01",
            " 2026-12",
            "2026-1a",
            "+026-12",
            "2026--1",
            "２０２６-12",
        ] {
            assert_eq!(
                parse_month(bad),
                Err(format!("{bad:?} is not a month (YYYY-MM, like 2026-12)")),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_month("2026-00"),
            Err("\"2026-00\": month 0 is not between 01 and 12".into())
        );
        assert_eq!(
            parse_month("2026-13"),
            Err("\"2026-13\": month 13 is not between 01 and 12".into())
        );
    }

    #[test]
    fn parses_message_actions_and_calls() {
        match parse(&["message", "--tenant", "d001", "42", "--json"]) {
            Command::Message { tenant, id, out } => {
                assert_eq!((tenant.as_str(), id, out.json), ("d001", 42, true));
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["touchpoint", "message", "42"]).is_err());
        assert!(Cli::try_parse_from(["touchpoint", "message", "--tenant", "d001", "x"]).is_err());

        for (name, want) in [
            ("hold", MessageAction::Hold),
            ("release", MessageAction::Release),
            ("cancel", MessageAction::Cancel),
            ("retry", MessageAction::Retry),
        ] {
            let (action, ids) = match parse(&[name, "--tenant", "d003", "7", "8", "9"]) {
                Command::Hold(ids) => (MessageAction::Hold, ids),
                Command::Release(ids) => (MessageAction::Release, ids),
                Command::Cancel(ids) => (MessageAction::Cancel, ids),
                Command::Retry(ids) => (MessageAction::Retry, ids),
                other => panic!("{other:?}"),
            };
            assert_eq!(action, want);
            assert_eq!(ids.tenant.as_str(), "d003");
            assert_eq!(ids.ids, [7, 8, 9]);
            // Ids are required, and so is the tenant.
            assert!(Cli::try_parse_from(["touchpoint", name, "--tenant", "d003"]).is_err());
            assert!(Cli::try_parse_from(["touchpoint", name, "7"]).is_err());
        }

        match parse(&["calls", "import", "outcomes.csv", "--json"]) {
            Command::Calls {
                command: CallsCommand::Import { file, out },
            } => {
                assert_eq!(file, PathBuf::from("outcomes.csv"));
                assert!(out.json);
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["touchpoint", "calls", "import"]).is_err());
        assert!(Cli::try_parse_from(["touchpoint", "calls"]).is_err());
    }

    #[tokio::test]
    async fn readonly_refuses_every_new_change_before_connecting() {
        for args in [
            &["pause"][..],
            &["pause", "--tenant", "d001"],
            &["resume", "--service", "hu"],
            &["batches"],
            &["hold", "--tenant", "d001", "1"],
            &["release", "--tenant", "d001", "1"],
            &["cancel", "--tenant", "d001", "1", "2"],
            &["retry", "--tenant", "d001", "1"],
            // Refused before the file is even looked at.
            &["calls", "import", "/nonexistent/outcomes.csv"],
        ] {
            let err = run_inner(Some("/nonexistent.sock".into()), true, parse(args))
                .await
                .expect_err("refused");
            assert_eq!(err.code, EXIT_USAGE, "{args:?}");
            assert_eq!(
                err.message, "--readonly: this command changes data",
                "{args:?}"
            );
        }
    }

    #[tokio::test]
    async fn readonly_lets_reading_commands_through() {
        for args in [
            &["dispatch"][..],
            &["costs", "--month", "2026-12", "--csv"],
            &["message", "--tenant", "d001", "42"],
            &["plan", "--dry-run"],
        ] {
            let err = run_inner(Some("/nonexistent/t.sock".into()), true, parse(args))
                .await
                .expect_err("no daemon");
            assert_eq!(err.code, EXIT_USAGE, "{args:?}");
            assert!(
                err.message.contains("is touchpointd running?"),
                "{args:?}: {}",
                err.message
            );
        }
    }

    #[tokio::test]
    async fn calls_import_refuses_a_large_or_missing_file_before_connecting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = dir.path().join("outcomes.csv");
        let file = std::fs::File::create(&big).expect("create");
        file.set_len(crate::client::MAX_CALL_OUTCOMES_BYTES + 1)
            .expect("sparse file");
        let err = run_inner(
            Some("/nonexistent/t.sock".into()),
            false,
            parse(&["calls", "import", big.to_str().expect("utf-8 path")]),
        )
        .await
        .expect_err("too large");
        assert_eq!(err.code, EXIT_FAILED);
        assert!(
            err.message.starts_with(&format!(
                "{} is {} bytes, more than the ",
                big.display(),
                crate::client::MAX_CALL_OUTCOMES_BYTES + 1
            )),
            "{}",
            err.message
        );

        let err = run_inner(
            Some("/nonexistent/t.sock".into()),
            false,
            parse(&["calls", "import", "/nonexistent/outcomes.csv"]),
        )
        .await
        .expect_err("missing");
        assert_eq!(err.code, EXIT_FAILED);
        assert!(
            err.message
                .starts_with("cannot read /nonexistent/outcomes.csv: "),
            "{}",
            err.message
        );
    }

    #[test]
    fn parses_brand_material_subcommands() {
        match parse(&[
            "propose",
            "policies/templates/winter_check.toml",
            "--comment",
            "Räder",
        ]) {
            Command::Propose {
                file,
                comment,
                template,
                out,
            } => {
                assert_eq!(file, PathBuf::from("policies/templates/winter_check.toml"));
                assert_eq!(comment, "Räder");
                assert_eq!(template, None);
                assert!(!out.json);
            }
            other => panic!("{other:?}"),
        }
        match parse(&[
            "propose",
            "x.toml",
            "--comment",
            "c",
            "--template",
            "birthday",
            "--json",
        ]) {
            Command::Propose { template, out, .. } => {
                assert_eq!(template.as_deref(), Some("birthday"));
                assert!(out.json);
            }
            other => panic!("{other:?}"),
        }
        match parse(&[
            "rollback",
            "winter_check",
            "--to",
            "2",
            "--comment",
            "zurück",
        ]) {
            Command::Rollback {
                template,
                to,
                comment,
                ..
            } => assert_eq!(
                (template.as_str(), to, comment.as_str()),
                ("winter_check", 2, "zurück")
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["approvals"]),
            Command::Approvals {
                all: false,
                out: Output { json: false }
            }
        ));
        assert!(matches!(
            parse(&["approvals", "--all", "--json"]),
            Command::Approvals {
                all: true,
                out: Output { json: true }
            }
        ));
        assert!(matches!(
            parse(&["approval", "12", "--json"]),
            Command::Approval {
                id: 12,
                out: Output { json: true }
            }
        ));
        match parse(&["preview", "12", "--tenant", "d001"]) {
            Command::Preview {
                id,
                tenant,
                customer,
                pdf,
                force,
                ..
            } => {
                assert_eq!((id, tenant.as_str()), (12, "d001"));
                assert_eq!((customer, pdf, force), (None, None, false));
            }
            other => panic!("{other:?}"),
        }
        match parse(&[
            "preview",
            "12",
            "--tenant",
            "d002",
            "--customer",
            "K-1001",
            "--pdf",
            "brief.pdf",
            "--force",
        ]) {
            Command::Preview {
                customer,
                pdf,
                force,
                ..
            } => {
                assert_eq!(customer.as_deref(), Some("K-1001"));
                assert_eq!(pdf, Some(PathBuf::from("brief.pdf")));
                assert!(force);
            }
            other => panic!("{other:?}"),
        }
        match parse(&["approve", "12"]) {
            Command::Approve { id, comment, .. } => assert_eq!((id, comment), (12, None)),
            other => panic!("{other:?}"),
        }
        match parse(&["approve", "12", "--comment", "passt"]) {
            Command::Approve { comment, .. } => assert_eq!(comment.as_deref(), Some("passt")),
            other => panic!("{other:?}"),
        }
        match parse(&["reject", "13", "--comment", "Impressum fehlt"]) {
            Command::Reject { id, comment, .. } => {
                assert_eq!((id, comment.as_str()), (13, "Impressum fehlt"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["templates"]),
            Command::Templates { name: None, .. }
        ));
        match parse(&["templates", "birthday", "--json"]) {
            Command::Templates { name, out } => {
                assert_eq!(name.as_deref(), Some("birthday"));
                assert!(out.json);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn brand_material_arguments_are_checked_by_clap() {
        use clap::error::ErrorKind as K;
        let kind = |args: &[&str]| {
            let mut argv = vec!["touchpoint"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv).expect_err("refused").kind()
        };
        // A comment is what the reviewer (or the author) reads: required, not empty.
        assert_eq!(kind(&["reject", "13"]), K::MissingRequiredArgument);
        assert_eq!(kind(&["reject", "13", "--comment", ""]), K::InvalidValue);
        assert_eq!(kind(&["propose", "x.toml"]), K::MissingRequiredArgument);
        assert_eq!(
            kind(&["propose", "x.toml", "--comment", ""]),
            K::InvalidValue
        );
        assert_eq!(
            kind(&["propose", "--comment", "c"]),
            K::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["rollback", "winter_check", "--comment", "c"]),
            K::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["rollback", "winter_check", "--to", "0", "--comment", "c"]),
            K::ValueValidation
        );
        assert_eq!(
            kind(&["rollback", "winter_check", "--to", "2"]),
            K::MissingRequiredArgument
        );
        assert_eq!(kind(&["approval", "x"]), K::ValueValidation);
        assert_eq!(kind(&["approve"]), K::MissingRequiredArgument);
        assert_eq!(kind(&["preview", "12"]), K::MissingRequiredArgument);
        assert_eq!(
            kind(&["preview", "12", "--tenant", "../x"]),
            K::ValueValidation
        );
        // --force only means something for --pdf.
        assert_eq!(
            kind(&["preview", "12", "--tenant", "d001", "--force"]),
            K::MissingRequiredArgument
        );
    }

    #[test]
    fn the_template_name_defaults_to_the_file_stem() {
        for (file, name) in [
            ("winter_check.toml", "winter_check"),
            ("policies/templates/hu_reminder.toml", "hu_reminder"),
            ("/tmp/geburtstag-grüße.toml", "geburtstag-grüße"),
            ("service_due", "service_due"),
            ("quality.check.toml", "quality.check"),
        ] {
            assert_eq!(template_name(Path::new(file)).expect(file), name, "{file}");
        }
        for file in [".toml", "/", ".."] {
            let err = template_name(Path::new(file)).expect_err(file);
            assert_eq!(err.code, EXIT_USAGE, "{file}");
            assert!(err.message.ends_with("name it with --template"), "{file}");
        }
    }

    #[tokio::test]
    async fn readonly_refuses_brand_material_changes_before_connecting() {
        for args in [
            // Refused before the file is even looked at.
            &[
                "propose",
                "/nonexistent/winter_check.toml",
                "--comment",
                "c",
            ][..],
            &["rollback", "winter_check", "--to", "1", "--comment", "c"],
            &["approve", "7"],
            &["approve", "7", "--comment", "ok"],
            &["reject", "7", "--comment", "nein"],
        ] {
            let err = run_inner(Some("/nonexistent.sock".into()), true, parse(args))
                .await
                .expect_err("refused");
            assert_eq!(err.code, EXIT_USAGE, "{args:?}");
            assert_eq!(
                err.message, "--readonly: this command changes data",
                "{args:?}"
            );
        }
        for args in [
            &["approvals", "--all"][..],
            &["approval", "7"],
            &["preview", "7", "--tenant", "d001"],
            &["templates", "winter_check"],
        ] {
            let err = run_inner(Some("/nonexistent/t.sock".into()), true, parse(args))
                .await
                .expect_err("no daemon");
            assert_eq!(err.code, EXIT_USAGE, "{args:?}");
            assert!(
                err.message.contains("is touchpointd running?"),
                "{args:?}: {}",
                err.message
            );
        }
    }

    #[tokio::test]
    async fn propose_checks_the_file_before_connecting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = |args: Vec<String>| async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_inner(Some("/nonexistent/t.sock".into()), false, parse(&args)).await
        };
        let path = |name: &str| dir.path().join(name).display().to_string();

        let big = dir.path().join("winter_check.toml");
        std::fs::File::create(&big)
            .and_then(|f| f.set_len(crate::client::MAX_TEMPLATE_BYTES + 1))
            .expect("sparse file");
        let err = run(vec![
            "propose".into(),
            path("winter_check.toml"),
            "--comment".into(),
            "c".into(),
        ])
        .await
        .expect_err("too large");
        assert_eq!(err.code, EXIT_FAILED);
        assert!(
            err.message.starts_with(&format!(
                "{} is 1048577 bytes; a template may have at most",
                big.display()
            )),
            "{}",
            err.message
        );

        std::fs::write(
            dir.path().join("latin1.toml"),
            b"subject = \"Gr\xfc\xdfe\"\n",
        )
        .expect("write");
        let err = run(vec![
            "propose".into(),
            path("latin1.toml"),
            "--comment".into(),
            "c".into(),
        ])
        .await
        .expect_err("not UTF-8");
        assert_eq!(err.code, EXIT_FAILED);
        assert!(
            err.message
                .ends_with("line 1 is not UTF-8 text; save the file as UTF-8"),
            "{}",
            err.message
        );

        let err = run(vec![
            "propose".into(),
            path("missing.toml"),
            "--comment".into(),
            "c".into(),
        ])
        .await
        .expect_err("missing");
        assert_eq!(err.code, EXIT_FAILED);
        assert!(
            err.message
                .starts_with(&format!("cannot read {}: ", path("missing.toml"))),
            "{}",
            err.message
        );

        // A good file with a name that says nothing needs --template.
        std::fs::write(dir.path().join(".toml"), "x = 1\n").expect("write");
        let err = run(vec![
            "propose".into(),
            path(".toml"),
            "--comment".into(),
            "c".into(),
        ])
        .await
        .expect_err("no name");
        assert_eq!(err.code, EXIT_USAGE);
        // With a name, and a readable file, only the daemon is missing.
        let err = run(vec![
            "propose".into(),
            path(".toml"),
            "--comment".into(),
            "c".into(),
            "--template".into(),
            "birthday".into(),
        ])
        .await
        .expect_err("no daemon");
        assert!(
            err.message.contains("is touchpointd running?"),
            "{}",
            err.message
        );
    }

    #[tokio::test]
    async fn preview_keeps_an_existing_pdf_unless_forced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pdf = dir.path().join("brief.pdf");
        std::fs::write(&pdf, b"old").expect("write");
        let pdf_arg = pdf.display().to_string();
        let err = run_inner(
            Some("/nonexistent/t.sock".into()),
            false,
            parse(&["preview", "7", "--tenant", "d001", "--pdf", &pdf_arg]),
        )
        .await
        .expect_err("exists");
        assert_eq!(err.code, EXIT_USAGE);
        assert_eq!(
            err.message,
            format!("{} exists; add --force to overwrite it", pdf.display())
        );
        let err = run_inner(
            Some("/nonexistent/t.sock".into()),
            false,
            parse(&[
                "preview", "7", "--tenant", "d001", "--pdf", &pdf_arg, "--force",
            ]),
        )
        .await
        .expect_err("no daemon");
        assert!(
            err.message.contains("is touchpointd running?"),
            "{}",
            err.message
        );

        // The write itself: a new file only, unless forced.
        let err = write_pdf(&pdf, b"%PDF-1.7 neu", false)
            .await
            .expect_err("exists");
        assert_eq!(err.code, EXIT_USAGE);
        assert_eq!(std::fs::read(&pdf).expect("read"), b"old");
        write_pdf(&pdf, b"%PDF-1.7 neu", true)
            .await
            .expect("forced");
        assert_eq!(std::fs::read(&pdf).expect("read"), b"%PDF-1.7 neu");
        let fresh = dir.path().join("neu.pdf");
        write_pdf(&fresh, b"%PDF-1.7", false)
            .await
            .expect("new file");
        assert_eq!(std::fs::read(&fresh).expect("read"), b"%PDF-1.7");
        let err = write_pdf(&dir.path().join("leer.pdf"), b"", false)
            .await
            .expect_err("no pdf");
        assert_eq!(err.code, EXIT_FAILED);
        assert!(!dir.path().join("leer.pdf").exists());
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some(OsStr::new(""))));
        assert!(!colour_wanted(true, Some(OsStr::new("1"))));
        assert!(!colour_wanted(false, None));
        assert!(!colour_wanted(false, Some(OsStr::new("1"))));
    }

    #[test]
    fn invalid_proposals_show_the_daemons_lines_as_they_are() {
        use touchpoint_common::protocol::ErrorReply;
        let lines = "winter_check.toml:4: email.subject: unknown variable `kunde`\n\
                     winter_check.toml:19: letter: the imprint is missing";
        let f = proposal_refused(ClientError::Daemon(ErrorReply {
            kind: ErrorKind::Invalid,
            message: format!("{lines}\n"),
        }));
        assert_eq!(f.code, EXIT_FAILED);
        assert_eq!(f.message, format!("the proposal was refused:\n{lines}"));
        // Other refusals keep their usual text.
        let f = proposal_refused(ClientError::Daemon(ErrorReply {
            kind: ErrorKind::Forbidden,
            message: "read-only users cannot propose".into(),
        }));
        assert_eq!(f.code, EXIT_FAILED);
        assert_eq!(f.message, "forbidden: read-only users cannot propose");
        let f = proposal_refused(ClientError::Closed);
        assert_eq!(f.code, EXIT_USAGE);
    }
}

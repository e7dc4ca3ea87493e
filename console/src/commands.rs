//! The operator commands that both the scriptable subcommands ([`crate::cli`])
//! and the console's `:` line ([`crate::tui::command`]) run: pause, resume,
//! plan, batches and import. One clap definition of their arguments and
//! one way of carrying them out, so that `:import --tenant d001 a.csv` reads
//! the file and reports it exactly as `touchpoint import` does.

use std::path::PathBuf;

use clap::Args;
use touchpoint_common::domain::{ImportReport, ImportStatus};
use touchpoint_common::protocol::{PauseScope, PlanResult};
use touchpoint_common::{Date, TenantId};

use crate::client::{Client, ClientError};
use crate::format;

/// What `pause` and `resume` apply to; neither flag means all dispatch.
#[derive(Debug, Args, Clone, Default, PartialEq, Eq)]
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

/// What `plan` plans.
#[derive(Debug, Args, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// One tenant; default: every tenant in your scope.
    #[arg(long)]
    pub tenant: Option<TenantId>,
    /// Show what would be planned, with counts and cost per service; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Plan against the policy files in DIR instead of those in force and
    /// print the difference (implies --dry-run).
    #[arg(long, value_name = "DIR")]
    pub policies: Option<PathBuf>,
    /// Plan for this day instead of today (YYYY-MM-DD).
    #[arg(long, value_name = "DATE", value_parser = format::parse_day)]
    pub day: Option<Date>,
    /// List up to N planned messages (with their why) and drops per tenant.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub show: u32,
}

impl PlanOptions {
    /// Whether the plan writes messages (neither `--dry-run` nor `--policies`).
    pub fn writes(&self) -> bool {
        !self.dry_run && self.policies.is_none()
    }
}

/// Which batches `batches` closes.
#[derive(Debug, Args, Clone, Default, PartialEq, Eq)]
pub struct BatchOptions {
    /// One tenant; default: every tenant in your scope.
    #[arg(long)]
    pub tenant: Option<TenantId>,
}

/// What `import` uploads, and to whom.
#[derive(Debug, Args, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    #[arg(long)]
    pub tenant: TenantId,
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Why a command was not carried out.
#[derive(Debug)]
pub enum CommandError {
    /// The `--policies` directory could not be read or is invalid: one
    /// `file:line: key: message` per line.
    Policies(String),
    Client(ClientError),
}

impl From<ClientError> for CommandError {
    fn from(e: ClientError) -> Self {
        CommandError::Client(e)
    }
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandError::Policies(text) => f.write_str(text),
            CommandError::Client(e) => write!(f, "{e}"),
        }
    }
}

/// Plans as `touchpoint plan` does: with `--policies`, against the files
/// of that directory (read here, checked by the daemon), as a dry run.
pub async fn plan(client: &mut Client, o: &PlanOptions) -> Result<PlanResult, CommandError> {
    let candidate = match &o.policies {
        Some(dir) => Some(crate::policy_check::read_dir(dir).map_err(|errs| {
            CommandError::Policies(
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        })?),
        None => None,
    };
    let dry_run = o.dry_run || candidate.is_some();
    Ok(client
        .plan(crate::client::PlanArgs {
            tenant: o.tenant.clone(),
            day: o.day,
            dry_run,
            policies: candidate,
            show: o.show,
        })
        .await?)
}

/// A file and what its import came to: the daemon's report, or why there
/// is none (the file could not be read, the daemon refused it).
pub type ImportResult = (String, Result<ImportReport, String>);

/// The imports of one `import` command, file after file.
#[derive(Debug, Default)]
pub struct ImportRun {
    pub results: Vec<ImportResult>,
    /// The connection failed at this file: it and the files after it were
    /// not imported (whether the daemon got the one it failed at is unknown).
    pub broken: Option<(String, ClientError)>,
}

impl ImportRun {
    /// Whether any file failed, was refused, or was not sent.
    pub fn failed(&self) -> bool {
        self.broken.is_some()
            || self.results.iter().any(|(_, r)| match r {
                Ok(report) => matches!(report.status, ImportStatus::Failed { .. }),
                Err(_) => true,
            })
    }
}

/// Uploads `files` to `tenant` one after the other, as `touchpoint import`
/// does; `each` sees every file's result as it comes. A refused or
/// unreadable file does not stop the others; a broken connection does.
pub async fn import(
    client: &mut Client,
    tenant: &TenantId,
    files: &[PathBuf],
    mut each: impl FnMut(&ImportResult),
) -> ImportRun {
    let mut run = ImportRun::default();
    for file in files {
        let label = file.display().to_string();
        let result = match client.upload(tenant, file).await {
            Ok(report) => Ok(report),
            Err(e) if e.is_connection() => {
                run.broken = Some((label, e));
                return run;
            }
            Err(e) => Err(e.to_string()),
        };
        let result = (label, result);
        each(&result);
        run.results.push(result);
    }
    run
}

/// One file's result in words: its import report, or why it has none.
pub fn import_text((label, result): &ImportResult) -> String {
    match result {
        Ok(report) => format::import_report(label, report),
        Err(e) => format!("{label}: failed: {e}\n"),
    }
}

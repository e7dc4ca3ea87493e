//! The scriptable subcommands. Human text by default, `--json` for scripts.
//!
//! Exit codes: 0 success; 1 the daemon (or an import) said no; 2 usage or
//! connection errors.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use touchpoint_common::TenantId;

use crate::client::{resolve_socket, Client, ClientError};
use crate::format;

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

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

#[derive(Debug, Args, Clone, Copy)]
pub struct Output {
    /// Print JSON for scripts instead of text.
    #[arg(long)]
    pub json: bool,
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
    /// Start a daemon on demo data, import it and show the console.
    Demo(crate::demo::DemoArgs),
    /// Work with policy files without a daemon: `policy check DIR`.
    Policy(crate::policy_check::PolicyArgs),
}

fn parse_day(s: &str) -> Result<touchpoint_common::Date, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(touchpoint_common::Date::from)
        .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)"))
}

/// Writes to stdout. A reader that went away (`touchpoint tenants | head`)
/// is not an error worth a panic or a message.
pub(crate) fn emit(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
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
    if readonly {
        if let Command::Import { .. }
        | Command::UndoMerge { .. }
        | Command::Plan {
            dry_run: false,
            policies: None,
            ..
        } = command
        {
            return Err(Failure {
                code: EXIT_USAGE,
                message: "--readonly: this command changes data".into(),
            });
        }
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
        Command::Audit { tenant, limit, out } => {
            let a = client.audit(tenant.as_ref(), limit).await?;
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
        Command::Demo(_) | Command::Policy(_) => {
            return Err(Failure {
                code: EXIT_USAGE,
                message: "demo and policy are not socket commands".into(),
            })
        }
    }
    Ok(EXIT_OK)
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
}

//! `touchpoint policy check DIR`: validates a policy directory exactly as the
//! daemon does, without a daemon, so that an administrator can check an edit
//! before it goes live (and CI can check a policy repository).
//!
//! Which files count and how a read failure is reported is
//! `touchpoint_common::policy::read_files`, shared with the daemon; this
//! module only lends it the file system. (`common` does no I/O itself, and
//! the console does not link the daemon.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::Serialize;
use touchpoint_common::policy::{read_files, PolicySet, PolicySource};
use touchpoint_common::toml_file::ConfigError;

use crate::output::{emit, Output, EXIT_FAILED, EXIT_OK, EXIT_USAGE};

#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy directory (brand.toml, dealers/, templates/) as the
    /// daemon would, without a daemon. Exit 0 valid, 1 invalid, 2 no such directory.
    Check {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        #[command(flatten)]
        out: Output,
    },
}

/// The file system under a policy directory.
struct Dir<'a>(&'a Path);

impl PolicySource for Dir<'_> {
    fn files_in(&self, rel: &str) -> std::io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.0.join(rel))? {
            let entry = entry?;
            if entry.path().is_file() {
                if let Some(name) = entry.file_name().to_str() {
                    names.push(name.to_string());
                }
            }
        }
        Ok(names)
    }

    fn read(&self, rel: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.0.join(rel))
    }
}

/// Reads the policy files under `dir` as `relative path -> text`; errors
/// name files under `dir` as given.
pub fn read_dir(dir: &Path) -> Result<BTreeMap<String, String>, Vec<ConfigError>> {
    read_files(&Dir(dir), &dir.display().to_string())
}

/// Reads and validates `dir`.
pub fn check(dir: &Path) -> Result<PolicySet, Vec<ConfigError>> {
    let files = read_dir(dir)?;
    touchpoint_common::render::lint::validate(&files, &dir.display().to_string())
}

#[derive(Serialize)]
struct Report {
    dir: String,
    ok: bool,
    files: usize,
    dealers: usize,
    services: usize,
    errors: Vec<ErrorLine>,
}

#[derive(Serialize)]
struct ErrorLine {
    file: String,
    line: Option<u32>,
    key: String,
    message: String,
    /// `file:line: key: message`, as printed.
    text: String,
}

/// Runs `touchpoint policy …` and returns the exit code.
pub fn run(args: PolicyArgs) -> u8 {
    match args.command {
        PolicyCommand::Check { dir, out } => run_check(&dir, out.json),
    }
}

fn run_check(dir: &Path, json: bool) -> u8 {
    if !dir.is_dir() {
        let why = if dir.exists() {
            "not a directory"
        } else {
            "no such directory"
        };
        eprintln!("touchpoint: {}: {why}", dir.display());
        return EXIT_USAGE;
    }
    let result = check(dir);
    let report = match &result {
        Ok(set) => Report {
            dir: dir.display().to_string(),
            ok: true,
            files: set.files.len(),
            dealers: set.tenants.len(),
            services: set.brand.services.len(),
            errors: Vec::new(),
        },
        Err(errs) => Report {
            dir: dir.display().to_string(),
            ok: false,
            files: 0,
            dealers: 0,
            services: 0,
            errors: errs
                .iter()
                .map(|e| ErrorLine {
                    file: e.file.clone(),
                    line: e.line,
                    key: e.key.clone(),
                    message: e.message.clone(),
                    text: e.to_string(),
                })
                .collect(),
        },
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => emit(&format!("{text}\n")),
            Err(e) => {
                eprintln!("touchpoint: cannot write JSON: {e}");
                return EXIT_FAILED;
            }
        }
    } else if report.ok {
        emit(&format!(
            "ok: {} files, {} dealer{}, {} service{}\n",
            report.files,
            report.dealers,
            plural(report.dealers),
            report.services,
            plural(report.services)
        ));
    } else {
        let mut text = String::new();
        for e in &report.errors {
            text.push_str(&e.text);
            text.push('\n');
        }
        emit(&text);
        let n = report.errors.len();
        eprintln!(
            "touchpoint: {n} error{} in {}; a daemon would keep its previous policy",
            plural(n),
            dir.display()
        );
    }
    if report.ok {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

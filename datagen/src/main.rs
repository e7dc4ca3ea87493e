//! `touchpoint-datagen`: writes a generated dealer network to disk, for
//! benchmarks that drive the real binaries (`bench/compare-postgres.sh`).
//!
//! ```text
//! touchpoint-datagen --customers 100000 --dealers 10 --out DIR
//!     [--dialect comma|semicolon|tab|own] [--as-of YYYY-MM-DD]
//!     [--policies DIR] [--resample PERCENT]
//! ```
//!
//! The dealers are the demo network's (`demo_dealers`: cities and seeds),
//! the customers split evenly, with the plan benchmark's export options
//! (2 % near-duplicates, 2 % fleets, 15 % without consent, no broken rows).
//! One customer export per dealer is written to `--out`, named as the
//! dealer's DMS would; `--policies` also writes each dealer's policy file
//! (`<DIR>/dealers/<id>.toml`). `--resample P` writes P % of each dealer's
//! customer numbers again from another seed (changed names and consents,
//! new vehicles): the plan benchmark's small import before a re-plan.
//! Prints one `<tenant> <file> <rows>` line per export.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use touchpoint_common::Date;
use touchpoint_datagen::{
    demo_dealers, tenant_policy_toml_in, write_customer_export_as_of, DealerSpec, Dialect,
    ExportOptions,
};

/// Writes a generated dealer network's customer exports (and policy files).
#[derive(Parser, Debug)]
#[command(name = "touchpoint-datagen", version)]
struct Args {
    /// Customers in all, split evenly over the dealers.
    #[arg(long, default_value_t = 100_000)]
    customers: usize,
    /// Dealers (tenants) d001, d002, … of the demo network (d1000 on for
    /// the brand-scale run of 1,000 dealers).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=9999))]
    dealers: u16,
    /// Directory the exports are written to (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Export dialect of every file; `own`: each dealer's DMS dialect.
    #[arg(long, value_enum, default_value_t = DialectArg::Comma)]
    dialect: DialectArg,
    /// Reference day of the data (services, inspections, birthdays).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day)]
    as_of: Option<Date>,
    /// Also write each dealer's policy file to DIR/dealers/<id>.toml.
    #[arg(long, value_name = "DIR")]
    policies: Option<PathBuf>,
    /// Write PERCENT % of each dealer's customer numbers again from another
    /// seed instead of the full exports.
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=100))]
    resample: Option<u8>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DialectArg {
    /// `,`, UTF-8 with BOM, ISO dates, English headers.
    Comma,
    /// `;`, Windows-1252, German dates and headers.
    Semicolon,
    /// Tab, UTF-8, short German headers.
    Tab,
    /// Each dealer's own DMS dialect (d001 `;`, d002 `,`, d003 tab, …).
    Own,
}

fn dialect_of(arg: DialectArg, spec: &DealerSpec) -> Dialect {
    match arg {
        DialectArg::Comma => Dialect::DmsCommaUtf8Bom,
        DialectArg::Semicolon => Dialect::DmsSemicolon1252,
        DialectArg::Tab => Dialect::DmsTab,
        DialectArg::Own => spec.dialect(),
    }
}

fn parse_day(text: &str) -> Result<Date, String> {
    Date::parse_iso(text).ok_or_else(|| format!("{text:?} is not a day (YYYY-MM-DD)"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("touchpoint-datagen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let as_of = args.as_of.unwrap_or_else(Date::today);
    let specs = specs(args.customers, usize::from(args.dealers), args.resample);
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    if let Some(dir) = &args.policies {
        let dealers = dir.join("dealers");
        std::fs::create_dir_all(&dealers)
            .map_err(|e| format!("cannot create {}: {e}", dealers.display()))?;
        for s in &specs {
            let path = dealers.join(format!("{}.toml", s.id));
            std::fs::write(&path, tenant_policy_toml_in(s, dialect_of(args.dialect, s)))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
    }
    let stdout = std::io::stdout();
    let mut stdout = stdout.lock();
    for s in &specs {
        let dialect = dialect_of(args.dialect, s);
        let name = s.customer_file_name_in(dialect);
        let path = args.out.join(&name);
        // A new file: never write through a link or over an existing file.
        let file = std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let stats = write_customer_export_as_of(s, &ExportOptions::bench(dialect), as_of, &mut out)
            .and_then(|st| out.flush().map(|()| st))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        writeln!(stdout, "{} {} {}", s.id, path.display(), stats.rows)
            .map_err(|e| format!("stdout: {e}"))?;
    }
    Ok(())
}

/// The demo network's first `dealers` dealers with the customers split
/// evenly (as the plan benchmark does); resampled: `percent` % of them
/// from another seed.
fn specs(customers: usize, dealers: usize, resample: Option<u8>) -> Vec<DealerSpec> {
    let per = customers.div_ceil(dealers);
    demo_dealers(dealers)
        .into_iter()
        .map(|mut s| {
            s.customers = per;
            if let Some(p) = resample {
                s.customers = (per * usize::from(p) / 100).max(1);
                s.seed ^= 0x5eed;
            }
            s
        })
        .collect()
}

//! What a simulated season reports: a row per week, the run's files
//! (`result.json`, `weeks.csv`), the comparison table over seeds and the
//! chart of weekly lift.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use touchpoint_common::domain::Channel;
use touchpoint_common::report::stats::Figures;
use touchpoint_common::Date;
use touchpoint_datagen::truth::Truth;

use super::world::WeekTally;
use super::{Policy, RunResult, SimulateArgs};

/// The hidden truth of one service and channel, as a run reports it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TruthRow {
    pub service: String,
    pub channel: String,
    pub policy_lead: u32,
    pub grid: String,
    /// The oracle's lead and slot, and its incremental responses per
    /// message at dealer factor 1.
    pub lead: u32,
    pub slot: String,
    pub incremental: f64,
}

pub(crate) fn truth_rows(truth: &Truth) -> Vec<TruthRow> {
    let mut out = Vec::new();
    for s in &truth.services {
        for channel in [Channel::Email, Channel::Post] {
            if let Some(o) = truth.oracle(&s.spec.id, channel) {
                out.push(TruthRow {
                    service: s.spec.id.clone(),
                    channel: channel.as_str().to_string(),
                    policy_lead: s.spec.policy_lead,
                    grid: format!(
                        "{}..{} step {}",
                        s.spec.grid.min, s.spec.grid.max, s.spec.grid.step
                    ),
                    lead: o.lead,
                    slot: if channel == Channel::Email {
                        o.slot.label()
                    } else {
                        o.slot.label()[..3].to_string()
                    },
                    incremental: o.incremental,
                });
            }
        }
    }
    out
}

/// One week of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct WeekRow {
    pub week: usize,
    pub from: String,
    pub to: String,
    pub sent: u64,
    pub control: u64,
    /// The daemon's report on the week's messages (modelled services), as
    /// known at the week's end…
    pub response_rate: Option<f64>,
    pub control_rate: Option<f64>,
    pub lift: Option<f64>,
    /// …and at the season's end (the later weeks' windows still open).
    pub final_response_rate: Option<f64>,
    pub final_control_rate: Option<f64>,
    pub final_lift: Option<f64>,
    /// Messages weighed against the oracle, and what they were worth by
    /// the model (expected incremental responses), the run's and the
    /// oracle's on the same recipients.
    pub evaluated: u64,
    pub incremental_run: f64,
    pub incremental_oracle: f64,
    pub regret_cumulative: f64,
    /// The lead and slot the week's evaluated messages went out with most,
    /// per service (`service_due: 21 d, Mon 08:00 (412)`).
    pub arms: Vec<String>,
    pub unmodelled: u64,
    /// What the k-dealer check found (empty: nothing shown from fewer
    /// than min_dealers dealers).
    pub k_violations: Vec<String>,
    #[serde(skip, default = "no_days")]
    days: (Date, Date),
}

impl WeekRow {
    pub fn new(
        week: usize,
        from: Date,
        to: Date,
        t: &WeekTally,
        regret: f64,
        report: Option<Figures>,
        k_violations: Vec<String>,
    ) -> Self {
        let arms = t
            .arms
            .iter()
            .filter_map(|(s, arms)| {
                let ((lead, slot), n) = arms.iter().max_by_key(|(_, n)| **n)?;
                Some(format!("{s}: {lead} d, {} ({n})", slot.label()))
            })
            .collect();
        Self {
            week,
            from: from.to_string(),
            to: to.to_string(),
            sent: t.sent,
            control: t.control,
            response_rate: report.and_then(|f| f.response_rate),
            control_rate: report.and_then(|f| f.control_rate),
            lift: report.and_then(|f| f.lift.map(|l| l.estimate)),
            final_response_rate: None,
            final_control_rate: None,
            final_lift: None,
            evaluated: t.evaluated,
            incremental_run: t.run,
            incremental_oracle: t.oracle,
            regret_cumulative: regret,
            arms,
            unmodelled: t.unmodelled,
            k_violations,
            days: (from, to),
        }
    }

    pub fn first_day(&self) -> Date {
        self.days.0
    }

    pub fn last_day(&self) -> Date {
        self.days.1
    }

    pub fn set_final(&mut self, report: Option<Figures>) {
        self.final_response_rate = report.and_then(|f| f.response_rate);
        self.final_control_rate = report.and_then(|f| f.control_rate);
        self.final_lift = report.and_then(|f| f.lift.map(|l| l.estimate));
    }

    /// `           week  3 closed: response 38.2 %, control 31.0 %, lift +7.2 pp`
    pub fn closed_line(&self) -> String {
        format!(
            "            week {:>2} window closed: response {}, control {}, lift {}\n",
            self.week,
            percent(self.final_response_rate),
            percent(self.final_control_rate),
            points(self.final_lift)
        )
    }

    /// Expected incremental responses per evaluated message, the run's
    /// and the oracle's.
    pub fn per_message(&self) -> Option<(f64, f64)> {
        (self.evaluated > 0).then(|| {
            let n = self.evaluated as f64;
            (self.incremental_run / n, self.incremental_oracle / n)
        })
    }

    /// `week  3  2027-01-18  sent 1,204  control 131  response 31.2 %  lift +6.1 pp  model 9.8 % vs oracle 12.4 %  regret 41.3  service_due: 21 d, …  k ok`
    pub fn line(&self) -> String {
        let (run, oracle) = self.per_message().unwrap_or((0.0, 0.0));
        format!(
            "  week {:>2}  {}  sent {:>6}  control {:>5}  response {}  lift {}  model {:.1} % vs oracle {:.1} %  regret {:.1}  {}  k {}\n",
            self.week,
            self.from,
            self.sent,
            self.control,
            percent(self.response_rate),
            points(self.lift),
            100.0 * run,
            100.0 * oracle,
            self.regret_cumulative,
            self.arms.join("; "),
            if self.k_violations.is_empty() {
                "ok".to_string()
            } else {
                self.k_violations.join("; ")
            }
        )
    }
}

fn percent(x: Option<f64>) -> String {
    x.map_or("n/a".into(), |x| format!("{:.1} %", 100.0 * x))
}

fn points(x: Option<f64>) -> String {
    x.map_or("n/a".into(), |x| format!("{:+.1} pp", 100.0 * x))
}

fn no_days() -> (Date, Date) {
    (Date::from_days(0), Date::from_days(0))
}

/// A finished run's `result.json`, if it is one of these arguments.
pub(crate) fn read_run(
    dir: &Path,
    args: &SimulateArgs,
    seed: u64,
    policy: Policy,
) -> Option<RunResult> {
    let text = std::fs::read_to_string(dir.join("result.json")).ok()?;
    let r: RunResult = serde_json::from_str(&text).ok()?;
    (r.seed == seed
        && r.policy == policy
        && r.dealers == args.dealers
        && r.customers == args.customers
        && r.weeks == args.weeks
        && r.start == args.start.to_string())
    .then_some(r)
}

/// Writes `result.json` and `weeks.csv` of a run into its directory.
pub(crate) fn write_run(dir: &Path, r: &RunResult) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(r).context("encoding the result")?;
    crate::demo::write_file(&dir.join("result.json"), &json)?;
    let mut csv = String::from(
        "week,from,to,sent,control,response_rate,control_rate,lift,final_response_rate,final_lift,evaluated,incremental_run,incremental_oracle,regret_cumulative,k_violations\n",
    );
    let opt = |x: Option<f64>| x.map(|x| format!("{x:.6}")).unwrap_or_default();
    for w in &r.rows {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{},{:.6},{:.6},{:.6},{}",
            w.week,
            w.from,
            w.to,
            w.sent,
            w.control,
            opt(w.response_rate),
            opt(w.control_rate),
            opt(w.lift),
            opt(w.final_response_rate),
            opt(w.final_lift),
            w.evaluated,
            w.incremental_run,
            w.incremental_oracle,
            w.regret_cumulative,
            w.k_violations.len()
        );
    }
    crate::demo::write_file(&dir.join("weeks.csv"), &csv)
}

/// One line per finished run.
pub(crate) fn season_line(r: &RunResult) -> String {
    format!(
        "season: {} seed {}: {:.1} of the oracle's {:.1} expected incremental responses ({:.1} %), response {} vs control {}, lift {}, k-dealer violations {}, restart {} ms, {} s\n",
        r.policy.name_str(),
        r.seed,
        r.incremental_run,
        r.incremental_oracle,
        100.0 * share(r.incremental_run, r.incremental_oracle),
        percent(r.response_rate),
        percent(r.control_rate),
        points(r.lift),
        r.k_violations.len(),
        r.restart_ms,
        r.elapsed_s
    )
}

impl Policy {
    fn name_str(self) -> &'static str {
        self.name()
    }
}

fn share(x: f64, of: f64) -> f64 {
    if of > 0.0 {
        x / of
    } else {
        0.0
    }
}

/// Mean and sample standard deviation.
fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let m = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}

/// The comparison table (Markdown): per policy, mean ± sd over the seeds.
pub(crate) fn table(args: &SimulateArgs, runs: &[RunResult]) -> String {
    let mut out = String::new();
    let seeds = runs.iter().map(|r| r.seed).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "`touchpoint simulate --dealers {} --customers {} --weeks {} --start {} --compare {seeds}`\n",
        args.dealers, args.customers, args.weeks, args.start
    );
    let _ = writeln!(
        out,
        "| policy | share of the oracle's incremental responses | same, last 4 weeks | cumulative regret (responses) | response rate | lift (daemon) | k-dealer violations |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for policy in [Policy::Fixed, Policy::Learned] {
        let of: Vec<&RunResult> = runs.iter().filter(|r| r.policy == policy).collect();
        if of.is_empty() {
            continue;
        }
        let col =
            |f: &dyn Fn(&RunResult) -> f64| mean_sd(&of.iter().map(|r| f(r)).collect::<Vec<_>>());
        let fmt = |(m, s): (f64, f64), scale: f64, unit: &str| {
            format!("{:.1} ± {:.1}{unit}", m * scale, s * scale)
        };
        let last4 = |r: &RunResult| {
            let tail = &r.rows[r.rows.len().saturating_sub(4)..];
            share(
                tail.iter().map(|w| w.incremental_run).sum(),
                tail.iter().map(|w| w.incremental_oracle).sum(),
            )
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            policy.name(),
            fmt(
                col(&|r| share(r.incremental_run, r.incremental_oracle)),
                100.0,
                " %"
            ),
            fmt(col(&last4), 100.0, " %"),
            fmt(col(&|r| r.incremental_oracle - r.incremental_run), 1.0, ""),
            fmt(col(&|r| r.response_rate.unwrap_or(0.0)), 100.0, " %"),
            fmt(col(&|r| r.lift.unwrap_or(0.0)), 100.0, " pp"),
            of.iter().map(|r| r.k_violations.len()).sum::<usize>()
        );
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "Hidden optimum per seed (oracle lead and slot; policy lead in brackets):\n"
    );
    for r in runs.iter().filter(|r| r.policy == Policy::Fixed) {
        let cells: Vec<String> = r
            .truth
            .iter()
            .map(|t| {
                format!(
                    "{} {}: {} d ({}), {}",
                    t.service, t.channel, t.lead, t.policy_lead, t.slot
                )
            })
            .collect();
        let _ = writeln!(out, "- seed {}: {}", r.seed, cells.join("; "));
    }
    out
}

/// Draws the weekly lift by the model (expected incremental responses per
/// message) of each policy and of the oracle, mean over the seeds, into a
/// PNG. Needs a TrueType font (DejaVu Sans or Liberation Sans).
pub(crate) fn chart(runs: &[RunResult], path: &Path) -> anyhow::Result<()> {
    use plotters::prelude::*;
    let font = FONTS
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .context("no TrueType font found (looked for DejaVu Sans and Liberation Sans)")?;
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(font.into_boxed_slice()),
    )
    .map_err(|_| anyhow::anyhow!("the font could not be read"))?;
    let weeks = runs.iter().map(|r| r.rows.len()).max().unwrap_or(0);
    let series = |pick: &dyn Fn(&RunResult) -> bool, oracle: bool| -> Vec<(u32, f64)> {
        (0..weeks)
            .filter_map(|w| {
                let xs: Vec<f64> = runs
                    .iter()
                    .filter(|r| pick(r))
                    .filter_map(|r| r.rows.get(w)?.per_message())
                    .map(|(run, o)| if oracle { o } else { run })
                    .collect();
                (!xs.is_empty()).then(|| (w as u32 + 1, 100.0 * mean_sd(&xs).0))
            })
            .collect()
    };
    let learned = series(&|r| r.policy == Policy::Learned, false);
    let fixed = series(&|r| r.policy == Policy::Fixed, false);
    let oracle = series(&|_| true, true);
    let top = learned
        .iter()
        .chain(&fixed)
        .chain(&oracle)
        .map(|p| p.1)
        .fold(1.0f64, f64::max)
        * 1.15;
    let root = BitMapBackend::new(path, (960, 540)).into_drawing_area();
    let e = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Weekly lift by the hidden model: learned vs fixed vs oracle (mean over seeds)",
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(1u32..(weeks.max(2) as u32), 0f64..top)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("week of the season")
        .y_desc("incremental responses per message, %")
        .draw()
        .map_err(|x| e(&x))?;
    for (name, points, color) in [
        ("oracle", oracle, BLACK),
        ("learned", learned, RED),
        ("fixed (policy lead)", fixed, BLUE),
    ] {
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

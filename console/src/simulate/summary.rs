//! What a simulated season reports: a row per week, the run's files
//! (`result.json`, `weeks.csv`), the comparison table over seeds and the
//! chart of weekly lift.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use touchpoint_common::domain::Channel;
use touchpoint_common::learning::{LearnedState, Source};
use touchpoint_common::report::stats::Figures;
use touchpoint_common::Date;
use touchpoint_datagen::truth::Truth;

use super::world::WeekTally;

/// Which policy a run plans with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    Fixed,
    Learned,
}

impl Policy {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Policy::Fixed => "fixed",
            Policy::Learned => "learned",
        }
    }
}

/// What one run found, written as `result.json` (and `weeks.csv`).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub(crate) struct RunResult {
    pub seed: u64,
    pub policy: Policy,
    pub dealers: u16,
    pub customers: u32,
    pub weeks: u16,
    pub start: String,
    /// The learning services' `explore_percent` (0 in a fixed run; runs
    /// written before it was recorded had the default, 10).
    #[serde(default = "default_explore")]
    pub explore_percent: u8,
    /// The learning services' `learn_window_days`, if the run set one.
    #[serde(default)]
    pub learn_window_days: Option<u16>,
    /// Messages due before this day are not weighed against the oracle.
    pub evaluate_from: String,
    pub truth: Vec<TruthRow>,
    pub rows: Vec<WeekRow>,
    /// Season totals of the evaluated messages, expected incremental
    /// responses by the model.
    pub incremental_run: f64,
    pub incremental_oracle: f64,
    /// The daemon's report over the whole season.
    pub response_rate: Option<f64>,
    pub control_rate: Option<f64>,
    pub lift: Option<f64>,
    pub k_violations: Vec<String>,
    /// Mean wall time of a daemon restart (the per-day clock step), ms.
    pub restart_ms: u64,
    pub elapsed_s: u64,
}

fn default_explore() -> u8 {
    10
}

/// The sizes of a run, as its results record them.
pub(crate) struct Sizes {
    pub dealers: u16,
    pub customers: u32,
    pub weeks: u16,
    pub start: Date,
    pub explore_percent: u8,
    pub learn_window_days: Option<u16>,
}

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
    /// Of the evaluated, those that explored (a Thompson draw of lead or
    /// slot) and what they were worth, the run's and the oracle's.
    #[serde(default)]
    pub explored: u64,
    #[serde(default)]
    pub explored_run: f64,
    #[serde(default)]
    pub explored_oracle: f64,
    /// The lead and slot the week's evaluated messages went out with most,
    /// per service (`service_due: 21 d, Mon 08:00 (412)`).
    pub arms: Vec<String>,
    pub unmodelled: u64,
    /// What the k-dealer check found (empty: nothing shown from fewer
    /// than min_dealers dealers).
    pub k_violations: Vec<String>,
    /// What `touchpoint learning` says is in force at the week's end, per
    /// modelled service and channel, against the truth.
    #[serde(default)]
    pub learned: Vec<LearnedRow>,
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
            explored: t.explored,
            explored_run: t.explored_run,
            explored_oracle: t.explored_oracle,
            arms,
            unmodelled: t.unmodelled,
            k_violations,
            learned: Vec::new(),
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
            self.arms
                .iter()
                .cloned()
                .chain(self.learned.iter().map(LearnedRow::text))
                .collect::<Vec<_>>()
                .join("; "),
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

/// The lead and slot in force for one service and channel, from
/// `touchpoint learning`, and the truth's.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LearnedRow {
    pub service: String,
    pub channel: String,
    pub lead: u32,
    /// `policy`, `learned` or `frozen`.
    pub lead_source: String,
    pub slot: Option<String>,
    pub dealers: u32,
    pub truth_lead: u32,
    pub truth_slot: String,
    /// Grid steps between the lead in force and the truth's.
    pub steps_off: u32,
}

impl LearnedRow {
    /// `learned service_due/email: 35 d (learned; truth 35 d), Tue 16:00 (truth Tue 16:00)`.
    pub fn text(&self) -> String {
        format!(
            "in force {}/{}: {} d ({}; truth {} d), {} (truth {})",
            self.service,
            self.channel,
            self.lead,
            self.lead_source,
            self.truth_lead,
            self.slot.as_deref().unwrap_or("window"),
            self.truth_slot
        )
    }
}

/// The learned values of the modelled services against the truth.
pub(crate) fn learned_rows(state: &LearnedState, truth: &Truth) -> Vec<LearnedRow> {
    state
        .services
        .iter()
        .filter_map(|l| {
            let t = truth.service(&l.service)?;
            let o = truth.oracle(&l.service, l.channel)?;
            Some(LearnedRow {
                service: l.service.clone(),
                channel: l.channel.as_str().to_string(),
                lead: l.lead.value,
                lead_source: l.lead.source.as_str().to_string(),
                slot: l
                    .slot
                    .value
                    .map(|(wd, h)| touchpoint_common::learning::Arm::Slot(wd, h).to_string()),
                dealers: l.dealers,
                truth_lead: o.lead,
                truth_slot: o.slot.label(),
                steps_off: t.spec.grid.steps_between(l.lead.value, o.lead),
            })
        })
        .collect()
}

/// What `touchpoint learning` shows that breaks the k-dealer rule: an arm
/// whose figures are shown (or a value learned) from fewer than
/// `min_dealers` dealers, or from more dealers than have a sent message or
/// control record of the service (`seen`, from the queue; for a slot arm,
/// of any service learning on its channel, whose messages it pools); control figures
/// shown while fewer than `min_dealers` dealers hold control records of
/// the service (`held_back`, from the queue). The control figures pass the
/// rule on their own (a service's control group is pooled as a set of its
/// own), so they are checked against the dealers that hold them, not
/// against the dealers of the messages.
pub(crate) fn learned_violations(
    state: &LearnedState,
    min_dealers: u32,
    seen: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    held_back: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
) -> Vec<String> {
    let mut out = Vec::new();
    let none = std::collections::BTreeSet::new();
    for l in &state.services {
        let sent_by = seen.get(&l.service).unwrap_or(&none);
        let held_by = held_back.get(&l.service).unwrap_or(&none);
        let name = format!("{}/{}", l.service, l.channel.as_str());
        if l.lead.source == Source::Learned && l.dealers < min_dealers {
            out.push(format!("{name}: lead learned from {} dealers", l.dealers));
        }
        let controls = l
            .lead
            .arms
            .iter()
            .chain(&l.slot.arms)
            .any(|a| a.control > 0 || a.control_responses > 0);
        if controls && (held_by.len() as u32) < min_dealers {
            out.push(format!(
                "{name}: control figures shown while {} dealers hold control records",
                held_by.len()
            ));
        }
        // A slot is learned from its channel's pooled slot arms (a service
        // without passing lead arms of its own may learn one): the arms
        // that pass must each hold at least the minimum.
        let slot_dealers = l
            .slot
            .arms
            .iter()
            .filter(|a| a.passes)
            .map(|a| a.dealers)
            .min();
        if l.slot.source == Source::Learned && slot_dealers.is_none_or(|d| d < min_dealers) {
            out.push(format!(
                "{name}: slot learned from {} dealers",
                slot_dealers.unwrap_or(0)
            ));
        }
        // A slot arm pools the messages of every service learning on the
        // channel: its dealers are those that sent any of them.
        let channel_sent: std::collections::BTreeSet<&String> = state
            .services
            .iter()
            .filter(|o| o.channel == l.channel)
            .flat_map(|o| seen.get(&o.service).into_iter().flatten())
            .collect();
        let arms = l.lead.arms.iter().map(|a| (a, sent_by.len()));
        let slots = l.slot.arms.iter().map(|a| (a, channel_sent.len()));
        for (a, sent) in arms.chain(slots) {
            // Message figures shown (what the arm's `dealers` counts); an
            // arm without any (the prior) shows nothing. Its control
            // figures are the service's control group re-windowed for the
            // arm, counted over the service's dealers (checked above).
            let shown = a.sent > 0 || a.responses > 0;
            if shown && a.dealers < min_dealers {
                out.push(format!(
                    "{name} {}: figures from {} dealers",
                    a.arm, a.dealers
                ));
            }
            if shown && a.dealers as usize > sent {
                out.push(format!(
                    "{name} {}: {} dealers claimed, {sent} sent",
                    a.arm, a.dealers,
                ));
            }
        }
    }
    out
}

fn no_days() -> (Date, Date) {
    (Date::from_days(0), Date::from_days(0))
}

/// A finished run's `result.json`, if it is one of these arguments.
pub(crate) fn read_run(dir: &Path, args: &Sizes, seed: u64, policy: Policy) -> Option<RunResult> {
    let text = std::fs::read_to_string(dir.join("result.json")).ok()?;
    let r: RunResult = serde_json::from_str(&text).ok()?;
    (r.seed == seed
        && r.policy == policy
        && r.dealers == args.dealers
        && r.customers == args.customers
        && r.weeks == args.weeks
        && r.start == args.start.to_string()
        && (policy != Policy::Learned
            || (r.explore_percent == args.explore_percent
                && r.learn_window_days == args.learn_window_days)))
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
        "season: {} seed {}: {:.1} of the oracle's {:.1} expected incremental responses ({:.1} %; last 4 weeks {:.1} %), response {} vs control {}, lift {}, k-dealer violations {}, restart {} ms, {} s\n",
        r.policy.name(),
        r.seed,
        r.incremental_run,
        r.incremental_oracle,
        100.0 * share(r.incremental_run, r.incremental_oracle),
        100.0 * last_weeks_share(r, 4),
        percent(r.response_rate),
        percent(r.control_rate),
        points(r.lift),
        r.k_violations.len(),
        r.restart_ms,
        r.elapsed_s
    )
}

/// Where the oracle's expected incremental responses went that the run
/// did not get (evaluated messages), in responses:
/// - `warm_up`: messages that used the values in force while every value
///   in force was still the policy's (the weeks before the learner had
///   evidence for anything), what they fell short of the oracle;
/// - `exploration`: what explored messages fell short of the oracle
///   beyond what the week's messages on the values in force fell short
///   per message (the cost of the draws, not of the values);
/// - `values`: what messages on learned values in force fell short (wrong
///   or not yet right values), and the explored ones' share of that.
///
/// The three add up to the regret.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Gap {
    pub oracle: f64,
    pub run: f64,
    pub warm_up: f64,
    pub warm_up_weeks: usize,
    pub exploration: f64,
    pub values: f64,
}

/// The decomposition of a run's regret ([`Gap`]) from its weekly rows.
pub(crate) fn gap(r: &RunResult) -> Gap {
    let mut g = Gap::default();
    let mut learned_yet = false;
    for w in &r.rows {
        g.oracle += w.incremental_oracle;
        g.run += w.incremental_run;
        let n_f = w.evaluated.saturating_sub(w.explored);
        let loss_f =
            (w.incremental_oracle - w.explored_oracle) - (w.incremental_run - w.explored_run);
        let per = if n_f > 0 { loss_f / n_f as f64 } else { 0.0 };
        let explored_loss = w.explored_oracle - w.explored_run;
        let exploration = explored_loss - per * w.explored as f64;
        let in_force = loss_f + per * w.explored as f64;
        g.exploration += exploration;
        // A week is warm-up while everything in force at its start (the
        // week before's end) was the policy's.
        if learned_yet {
            g.values += in_force;
        } else {
            g.warm_up += in_force;
            g.warm_up_weeks += 1;
        }
        learned_yet |= w.learned.iter().any(|l| {
            let policy = r
                .truth
                .iter()
                .find(|t| t.service == l.service)
                .map(|t| t.policy_lead);
            l.slot.is_some() || (l.lead_source == "learned" && Some(l.lead) != policy)
        });
    }
    g
}

/// `gap: oracle 1,234.5, run 456.7; lost to warm-up (weeks 1–9) 123.4 (10.0 % of the oracle), to exploration …`
pub(crate) fn gap_line(r: &RunResult) -> String {
    let g = gap(r);
    let pc = |x: f64| 100.0 * share(x, g.oracle);
    format!(
        "gap: oracle {:.1}, run {:.1} ({:.1} %); lost to warm-up ({} weeks on the policy's values) {:.1} ({:.1} % of the oracle), to exploration {:.1} ({:.1} %), to the values in force after {:.1} ({:.1} %)\n",
        g.oracle,
        g.run,
        pc(g.run),
        g.warm_up_weeks,
        g.warm_up,
        pc(g.warm_up),
        g.exploration,
        pc(g.exploration),
        g.values,
        pc(g.values)
    )
}

fn share(x: f64, of: f64) -> f64 {
    if of > 0.0 {
        x / of
    } else {
        0.0
    }
}

/// The run's share of the oracle's incremental responses over its last `n`
/// weeks.
fn last_weeks_share(r: &RunResult, n: usize) -> f64 {
    let tail = &r.rows[r.rows.len().saturating_sub(n)..];
    share(
        tail.iter().map(|w| w.incremental_run).sum(),
        tail.iter().map(|w| w.incremental_oracle).sum(),
    )
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
pub(crate) fn table(args: &Sizes, runs: &[RunResult]) -> String {
    let mut out = String::new();
    let seeds = runs.iter().map(|r| r.seed).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "`touchpoint simulate --dealers {} --customers {} --weeks {} --start {} --explore-percent {}{} --compare {seeds}`\n",
        args.dealers,
        args.customers,
        args.weeks,
        args.start,
        args.explore_percent,
        args.learn_window_days
            .map(|w| format!(" --learn-window-days {w}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "| policy | share of the oracle's incremental responses | same, last 4 weeks | cumulative regret (responses) | response rate | lift (daemon) | lead in force within one grid step of the truth (week {}) | k-dealer violations |",
        args.weeks
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
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
        let last4 = |r: &RunResult| last_weeks_share(r, 4);
        let (near, of_all) = of.iter().fold((0, 0), |(n, t), r| {
            let last = r.rows.last().map_or(&[][..], |w| &w.learned[..]);
            (
                n + last.iter().filter(|l| l.steps_off <= 1).count(),
                t + last.len(),
            )
        });
        let leads = if of_all == 0 {
            "no learning".to_string()
        } else {
            format!("{near} of {of_all}")
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {leads} | {} |",
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use touchpoint_common::learning::{Arm, ArmFigures, Choice, LearnedService};

    use super::*;

    fn arm(arm: Arm, dealers: u32, passes: bool) -> ArmFigures {
        ArmFigures {
            arm,
            passes,
            dealers,
            sent: if passes { 100 } else { 0 },
            responses: if passes { 30 } else { 0 },
            control: 0,
            control_responses: 0,
            alpha: 1.0,
            beta: 1.0,
            baseline: 0.0,
            objective: 0.0,
        }
    }

    fn service(lead_source: Source, dealers: u32, arms: Vec<ArmFigures>) -> LearnedService {
        LearnedService {
            service: "service_due".into(),
            channel: Channel::Email,
            policy_lead: 21,
            lead: Choice {
                value: 28,
                source: lead_source,
                arms,
                version: 1,
            },
            slot: Choice {
                value: None,
                source: Source::Policy,
                arms: Vec::new(),
                version: 1,
            },
            dealers,
            min_dealers: 5,
            sent: 100,
            explore_percent: 10,
            incremental: None,
            value_cents: 3800,
            frozen: false,
        }
    }

    #[test]
    fn learned_values_and_shown_arms_from_too_few_dealers_are_violations() {
        let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        seen.insert(
            "service_due".into(),
            (1..=6).map(|i| format!("d{i:03}")).collect(),
        );
        let state = |s: LearnedService| LearnedState {
            services: vec![s],
            ..LearnedState::default()
        };
        // Six dealers sent; an arm from six passes, one held back shows nothing.
        let mut prior_only = arm(Arm::Lead(42), 0, true);
        prior_only.sent = 0;
        prior_only.responses = 0;
        let ok = service(
            Source::Learned,
            6,
            vec![
                arm(Arm::Lead(28), 6, true),
                arm(Arm::Lead(35), 0, false),
                prior_only,
            ],
        );
        assert!(learned_violations(&state(ok), 5, &seen, &seen).is_empty());
        // A value learned from four dealers, an arm shown from four.
        let thin = service(Source::Learned, 4, vec![arm(Arm::Lead(28), 4, true)]);
        let v = learned_violations(&state(thin), 5, &seen, &seen);
        assert_eq!(
            v,
            [
                "service_due/email: lead learned from 4 dealers",
                "service_due/email 28 days: figures from 4 dealers"
            ]
        );
        // An arm claiming more dealers than sent the service.
        let more = service(Source::Policy, 7, vec![arm(Arm::Lead(28), 7, true)]);
        let v = learned_violations(&state(more), 5, &seen, &seen);
        assert_eq!(v, ["service_due/email 28 days: 7 dealers claimed, 6 sent"]);
        // Control figures: checked against the dealers holding control
        // records, not the dealers of passing message cells (none yet).
        let mut baseline_only = arm(Arm::Lead(35), 0, false);
        baseline_only.control = 60;
        baseline_only.control_responses = 6;
        let early = service(Source::Policy, 0, vec![baseline_only]);
        assert!(learned_violations(&state(early.clone()), 5, &seen, &seen).is_empty());
        let mut four = seen.clone();
        four.insert(
            "service_due".into(),
            (1..=4).map(|i| format!("d{i:03}")).collect(),
        );
        assert_eq!(
            learned_violations(&state(early), 5, &seen, &four),
            ["service_due/email: control figures shown while 4 dealers hold control records"]
        );
    }

    /// The regret splits into warm-up (weeks on the policy's values),
    /// exploration (what explored messages lose beyond the week's rate on
    /// the values in force) and the learned values' own loss.
    #[test]
    fn the_regret_splits_into_warm_up_exploration_and_values() {
        let learned = |lead: u32| LearnedRow {
            service: "service_due".into(),
            channel: "email".into(),
            lead,
            lead_source: if lead == 21 { "policy" } else { "learned" }.into(),
            slot: None,
            dealers: 20,
            truth_lead: 28,
            truth_slot: "Tue 16:00".into(),
            steps_off: 0,
        };
        let day = |d: u32| Date::from_ymd(2027, 1, d).expect("date");
        let week = |n: usize, run: f64, explored: (u64, f64, f64), lead: u32| {
            let mut w = WeekRow::new(
                n,
                day(4),
                day(10),
                &WeekTally {
                    evaluated: 100,
                    run,
                    oracle: 10.0,
                    explored: explored.0,
                    explored_run: explored.1,
                    explored_oracle: explored.2,
                    ..WeekTally::default()
                },
                0.0,
                None,
                Vec::new(),
            );
            w.learned = vec![learned(lead)];
            w
        };
        let r = RunResult {
            seed: 1,
            policy: Policy::Learned,
            dealers: 20,
            customers: 100,
            weeks: 3,
            start: "2027-01-04".into(),
            explore_percent: 10,
            learn_window_days: None,
            evaluate_from: "2027-03-01".into(),
            truth: vec![TruthRow {
                service: "service_due".into(),
                channel: "email".into(),
                policy_lead: 21,
                grid: "7..56 step 7".into(),
                lead: 28,
                slot: "Tue 16:00".into(),
                incremental: 0.1,
            }],
            rows: vec![
                // Week 1: the policy's values in force all week; 90
                // messages on them lost 4.5 (0.05 each), 10 explored lost
                // 1.0: 0.5 of it is exploration's.
                week(1, 4.5, (10, 0.0, 1.0), 28),
                // Week 2 (the week before learned 28): 90 on the values in
                // force lost 0.9 (0.01 each), 10 explored 0.6.
                week(2, 8.5, (10, 0.4, 1.0), 28),
                // Week 3: nothing explored, 1.0 lost.
                week(3, 9.0, (0, 0.0, 0.0), 28),
            ],
            incremental_run: 22.0,
            incremental_oracle: 30.0,
            response_rate: None,
            control_rate: None,
            lift: None,
            k_violations: Vec::new(),
            restart_ms: 0,
            elapsed_s: 0,
        };
        let g = gap(&r);
        assert_eq!(g.warm_up_weeks, 1);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(g.oracle - g.run, 8.0), "{g:?}");
        assert!(close(g.warm_up, 5.0), "{g:?}");
        assert!(close(g.exploration, 0.5 + 0.5), "{g:?}");
        assert!(close(g.values, 1.0 + 1.0), "{g:?}");
        assert!(close(
            g.warm_up + g.exploration + g.values,
            g.oracle - g.run
        ));
        assert!(
            gap_line(&r).contains("warm-up (1 weeks"),
            "{}",
            gap_line(&r)
        );
    }
}

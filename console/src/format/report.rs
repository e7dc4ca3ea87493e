//! `touchpoint report`: text in 80 columns, CSV, and JSON with the
//! figures computed (the daemon sends counts; `common::report` computes
//! rates, lift and its interval the same way for the TUI).

use std::fmt::Write as _;

use serde::Serialize;
use touchpoint_common::money::Money;
use touchpoint_common::report::answer::Report;
use touchpoint_common::report::pool::ReportGroup;
use touchpoint_common::report::stats::{Figures, Tally};

fn money(cents: i64) -> String {
    Money(cents).to_string()
}

/// On a terminal, labels longer than this are cut: the tables fit 80
/// columns.
const LABEL: usize = 15;

/// The first column: as wide as [`LABEL`] and labels cut to it on a
/// terminal; as wide as the longest label, nothing cut, elsewhere.
#[derive(Clone, Copy)]
struct Labels {
    width: usize,
    cut: bool,
}

impl Labels {
    fn of(r: &Report, terminal: bool) -> Self {
        if terminal {
            return Labels {
                width: LABEL,
                cut: true,
            };
        }
        let longest = r
            .groups
            .iter()
            .chain(std::iter::once(&r.total))
            .map(|g| g.label.chars().count())
            .max()
            .unwrap_or(0);
        Labels {
            width: longest.max(LABEL),
            cut: false,
        }
    }

    fn label(self, s: &str) -> String {
        let s = if self.cut && s.chars().count() > LABEL {
            let cut: String = s.chars().take(LABEL - 1).collect();
            format!("{cut}…")
        } else {
            s.to_string()
        };
        format!("{s:<w$}", w = self.width)
    }
}

fn pct(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".into(), |r| format!("{:.1}%", r * 100.0))
}

fn euros(c: Option<f64>) -> String {
    c.map_or_else(|| "n/a".into(), |c| money(c.round() as i64))
}

fn lift(f: &Figures) -> String {
    f.lift.map_or_else(
        || "n/a".into(),
        |l| {
            format!(
                "{:+.1} [{:+.1}, {:+.1}]",
                l.estimate * 100.0,
                l.low * 100.0,
                l.high * 100.0
            )
        },
    )
}

/// Whether the report has no row at all: said in words, never a table of
/// zeros that looks like a finding.
fn is_empty(r: &Report) -> bool {
    r.groups.is_empty()
}

fn period(r: &Report) -> String {
    let mut s = format!("{} to {}", r.from, r.to);
    if let Some(t) = &r.query.service {
        let _ = write!(s, ", service {t}");
    }
    if let Some(t) = &r.query.tenant {
        let _ = write!(s, ", tenant {t}");
    }
    s
}

/// The text report: responses and lift, then money and negative outcomes.
/// `terminal`: whether it is shown on one (labels cut to fit 80 columns);
/// printed anywhere else, nothing is cut.
pub fn report(r: &Report, terminal: bool) -> String {
    let labels = Labels::of(r, terminal);
    let mut out = String::new();
    let kind = if r.query.pooled {
        "pooled results"
    } else {
        "results"
    };
    let _ = writeln!(out, "{kind} by {}, {}", r.query.by.as_str(), period(r));
    if is_empty(r) {
        let _ = writeln!(out, "no messages sent in {}", period(r));
    } else {
        let _ = writeln!(
            out,
            "{} {:>7} {:>6} {:>6} {:>6} {:>6}  {:<24}",
            labels.label(r.query.by.as_str()),
            "sent",
            "resp",
            "rate",
            "ctrl",
            "c.rate",
            "lift, pts [95% CI]"
        );
        for g in r.groups.iter().chain(std::iter::once(&r.total)) {
            let Some((t, f)) = shown(&mut out, g, labels) else {
                continue;
            };
            let _ = writeln!(
                out,
                "{} {:>7} {:>6} {:>6} {:>6} {:>6}  {:<24}",
                labels.label(&g.label),
                t.sent,
                t.responses,
                pct(f.response_rate),
                t.control,
                pct(f.control_rate),
                lift(f)
            );
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "{} {:>6} {:>6} {:>5} {:>10} {:>9} {:>9} {:>10}",
            labels.label(r.query.by.as_str()),
            "deliv",
            "bounce",
            "unsub",
            "cost",
            "€/resp",
            "€/incr",
            "value"
        );
        for g in r.groups.iter().chain(std::iter::once(&r.total)) {
            let Some((t, f)) = shown(&mut out, g, labels) else {
                continue;
            };
            let _ = writeln!(
                out,
                "{} {:>6} {:>6} {:>5} {:>10} {:>9} {:>9} {:>10}",
                labels.label(&g.label),
                t.delivered,
                t.bounces,
                t.unsubscribes,
                money(t.cost),
                euros(f.cost_per_response),
                euros(f.cost_per_incremental),
                money(t.value)
            );
        }
        // Only a brand that tracks clicks has any ([tracking] clicks).
        if r.total.tally.as_ref().is_some_and(|t| t.clicks > 0) {
            out.push('\n');
            let _ = writeln!(
                out,
                "{} {:>6} {:>7} {:>6} {:>7}",
                labels.label(r.query.by.as_str()),
                "emails",
                "clicked",
                "clicks",
                "cl.rate"
            );
            for g in r.groups.iter().chain(std::iter::once(&r.total)) {
                let Some((t, f)) = shown(&mut out, g, labels) else {
                    continue;
                };
                let _ = writeln!(
                    out,
                    "{} {:>6} {:>7} {:>6} {:>7}",
                    labels.label(&g.label),
                    t.emails_delivered,
                    t.clicked,
                    t.clicks,
                    pct(f.click_rate)
                );
            }
        }
        out.push('\n');
        out.push_str(
            "lift: response rate sent − control in percentage points, within each\n\
             service and weighted by its sent, 95% interval from each service's\n\
             Newcombe interval; n/a: no control group. €/incr: cost of the services\n\
             in the lift per response the messages added; n/a when the lift is 0 or\n\
             less. A click on a tracked link is no response; cl.rate: delivered\n\
             emails clicked.\n",
        );
        for g in r.groups.iter().chain(std::iter::once(&r.total)) {
            if let Some(note) = g.lift_note(r.query.pooled) {
                wrap(&mut out, &note);
            }
        }
    }
    if let Some(rule) = &r.rule {
        let _ = writeln!(
            out,
            "pooled over {} dealers; a cell is shown only with at least {} dealers and\nnone above {:.1}% of its rows; one more is hidden where a hidden cell could\nbe recovered from the total.",
            r.dealers,
            rule.min_dealers,
            f64::from(rule.max_dealer_permille) / 10.0
        );
    }
    if !r.shared.is_empty() {
        out.push_str("\nshared by the dealers themselves ([share] in their policy):\n");
        for s in &r.shared {
            let fields: Vec<String> = s
                .fields
                .iter()
                .map(|(f, v)| format!("{} {v}", f.as_str()))
                .collect();
            let _ = writeln!(out, "{} {}: {}", s.tenant, s.name, fields.join(", "));
        }
    }
    for (t, e) in &r.errors {
        let _ = writeln!(out, "{t}: not counted: {e}");
    }
    if r.errors.is_empty() && r.unreadable > 0 {
        let _ = writeln!(
            out,
            "{} dealers could not be read and are not counted",
            r.unreadable
        );
    }
    out.lines().map(|l| format!("{}\n", l.trim_end())).collect()
}

/// Writes `text` in lines of 80 columns at most, broken at spaces.
fn wrap(out: &mut String, text: &str) {
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > 80 {
            let _ = writeln!(out, "{line}");
            line = "  ".into();
        }
        if !line.trim().is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    let _ = writeln!(out, "{line}");
}

/// The tally and figures of a shown group; a suppressed one gets its
/// line here.
fn shown<'a>(
    out: &mut String,
    g: &'a ReportGroup,
    labels: Labels,
) -> Option<(&'a Tally, &'a Figures)> {
    match (&g.tally, &g.figures, g.suppressed) {
        (Some(t), Some(f), None) => Some((t, f)),
        (_, _, s) => {
            let why = s.map_or("not shown", |s| s.as_str());
            let _ = writeln!(out, "{} suppressed ({why})", labels.label(&g.label));
            None
        }
    }
}

/// One group as `--json` prints it: counts and the figures computed.
#[derive(Serialize)]
struct JsonGroup<'a> {
    group: &'a str,
    suppressed: Option<&'static str>,
    counts: Option<&'a Tally>,
    /// `lift_sent`: the sent the lift covers, from `lift_services`.
    figures: Option<Figures>,
    lift_services: &'a [String],
}

#[derive(Serialize)]
pub struct JsonReport<'a> {
    report: &'a Report,
    groups: Vec<JsonGroup<'a>>,
    total: JsonGroup<'a>,
}

fn json_group(g: &ReportGroup) -> JsonGroup<'_> {
    JsonGroup {
        group: &g.label,
        suppressed: g.suppressed.map(|s| s.as_str()),
        counts: g.tally.as_ref(),
        figures: g.figures,
        lift_services: &g.lift_services,
    }
}

/// `--json`: the daemon's answer as it came, and each group's figures.
pub fn report_json(r: &Report) -> JsonReport<'_> {
    JsonReport {
        report: r,
        groups: r.groups.iter().map(json_group).collect(),
        total: json_group(&r.total),
    }
}

/// `--csv`: one row per group and the total; rates as shares of 1, money
/// in euro, empty where a figure is undefined or the cell suppressed.
pub fn report_csv(r: &Report) -> Result<String, csv::Error> {
    use touchpoint_common::csv_out::{Cell, CsvOut};
    let mut w = CsvOut::new(
        &[
            "group",
            "suppressed",
            "sent",
            "delivered",
            "responses",
            "response_rate",
            "control",
            "control_responses",
            "control_rate",
            "lift",
            "lift_low",
            "lift_high",
            "incremental",
            "cost",
            "cost_per_response",
            "cost_per_incremental",
            "value",
            "bounces",
            "unsubscribes",
            "lift_sent",
            "lift_services",
            "clicked",
            "clicks",
            "click_rate",
        ],
        256 * (r.groups.len() + 2),
    )?;
    let dec = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_default();
    let eur = |v: Option<f64>| v.map(|v| money(v.round() as i64)).unwrap_or_default();
    for g in r.groups.iter().chain(std::iter::once(&r.total)) {
        let suppressed = g.suppressed.map(|s| s.as_str()).unwrap_or("");
        let cells: Vec<String> = match (&g.tally, &g.figures, g.suppressed) {
            (Some(t), Some(f), None) => {
                vec![
                    t.sent.to_string(),
                    t.delivered.to_string(),
                    t.responses.to_string(),
                    dec(f.response_rate),
                    t.control.to_string(),
                    t.control_responses.to_string(),
                    dec(f.control_rate),
                    dec(f.lift.map(|l| l.estimate)),
                    dec(f.lift.map(|l| l.low)),
                    dec(f.lift.map(|l| l.high)),
                    dec(f.incremental),
                    money(t.cost),
                    eur(f.cost_per_response),
                    eur(f.cost_per_incremental),
                    money(t.value),
                    t.bounces.to_string(),
                    t.unsubscribes.to_string(),
                    f.lift_sent.to_string(),
                    g.lift_services.join(" "),
                    t.clicked.to_string(),
                    t.clicks.to_string(),
                    dec(f.click_rate),
                ]
            }
            _ => vec![String::new(); 22],
        };
        let mut row: Vec<Cell> = vec![Cell::from(&g.label), Cell::from(suppressed)];
        row.extend(cells.iter().map(Cell::from));
        w.row(&row)?;
    }
    String::from_utf8(w.finish()?)
        .map_err(|e| csv::Error::from(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use touchpoint_common::report::stats::By;

    /// A long label is cut to the 80 columns of a terminal, and kept whole
    /// (its column as wide as it) in a file or a pipe.
    #[test]
    fn labels_are_cut_only_on_a_terminal() {
        let mut r = fixtures::report(By::Service, false);
        let long = "Persönliche Einladung zum Frühlingscheck";
        r.groups[0].label = long.into();
        let cut = report(&r, true);
        assert!(!cut.contains(long), "{cut}");
        assert!(cut.contains("Persönliche Ei… "), "{cut}");
        let whole = report(&r, false);
        assert!(!whole.contains('…'), "{whole}");
        let rows: Vec<&str> = whole.lines().filter(|l| l.starts_with(long)).collect();
        assert_eq!(rows.len(), 2, "both tables: {whole}");
        // The other rows are padded to the long label's width: the columns
        // stay aligned.
        let width = long.chars().count();
        let total = whole
            .lines()
            .find(|l| l.starts_with("total "))
            .expect("total row");
        let label_part: String = total.chars().take(width + 1).collect();
        assert_eq!(label_part.trim_end(), "total", "{whole}");
        assert_eq!(rows[0].chars().nth(width), Some(' '), "{whole}");
    }

    /// service_due: 72 of 400 against 3 of 40; birthday: 6 of 120, no
    /// control group. The total's lift is service_due's, +10.5 points, and
    /// the report says which of its messages the lift covers.
    #[test]
    fn the_total_lift_is_stratified_and_says_what_it_covers() {
        let r = fixtures::report(By::Service, false);
        let text = report(&r, true);
        let total = text
            .lines()
            .find(|l| l.starts_with("total"))
            .unwrap_or_default();
        assert!(total.contains(" 520 ") && total.contains("+10.5"), "{text}");
        assert!(
            text.contains(
                "total: lift covers 400 of 520 sent, from the services with a control group:\n  service_due\n"
            ),
            "{text}"
        );
        assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
        assert!(
            !text.contains("service_due: lift covers"),
            "one service: all covered"
        );
        assert!(!text.contains("birthday: lift"), "no lift: n/a says it");
        let csv = report_csv(&r).expect("csv");
        let lines: Vec<&str> = csv.lines().collect();
        assert!(
            lines[0].ends_with(",unsubscribes,lift_sent,lift_services,clicked,clicks,click_rate"),
            "{csv}"
        );
        assert!(lines[3].starts_with(r#""total","",520,"#), "{csv}");
        assert!(lines[3].ends_with(r#",400,"service_due",0,0,"""#), "{csv}");
        assert!(
            lines[2].ends_with(r#",0,"",0,0,"""#),
            "birthday: no lift: {csv}"
        );
        let json = serde_json::to_value(report_json(&r)).expect("json");
        assert_eq!(json["total"]["figures"]["lift_sent"], 400, "{json}");
        assert_eq!(json["total"]["lift_services"][0], "service_due", "{json}");
    }
}

//! Results (M9): per service the response rate of sent messages against
//! the control group, the lift with its 95 % interval drawn as a bar, and
//! the cost per incremental response; the response rate by lead time, by
//! weekday and by hour as bar charts. The caller's own tenants, or pooled
//! over every dealer for a role that may ask for that (`p`); the brand
//! role sees pooled results only.
//!
//! Every figure is `common::report::stats`' (`stratified`), computed by the
//! daemon from the per-service counts, as `touchpoint report` shows them; a
//! pooled cell the disclosure rule holds back is shown as suppressed.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;
use touchpoint_common::money::Money;
use touchpoint_common::protocol::{Changes, Request, Role, Topic};
use touchpoint_common::report::answer::{Report, ReportQuery};
use touchpoint_common::report::pool::{ReportGroup, Suppression};
use touchpoint_common::report::stats::{By, Figures, Lift, Tally};

use super::{move_selection, replace, Cmd, Screen};
use crate::tui::action::Action;
use crate::tui::hits::Hits;
use crate::tui::msg::Fetch;
use crate::tui::widgets::{bar, dim, header_row, page_top, pane, right, thousands, WIDE};

/// The groupings drawn as bar charts, in the order `b` cycles through them.
pub const BREAKDOWNS: [By; 3] = [By::Lead, By::Weekday, By::Hour];

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResultsView {
    /// Pooled over every dealer under the brand's disclosure rule, or the
    /// caller's own tenants.
    pub pooled: bool,
    /// The role may ask for both, so `p` switches (an admin).
    pub may_toggle: bool,
    /// The breakdown a narrow screen shows (index into [`BREAKDOWNS`]).
    pub breakdown: usize,
    /// The daemon's last answers for the mode in force: by service first,
    /// then one per [`BREAKDOWNS`].
    pub by_service: Option<Report>,
    pub by: [Option<Report>; 3],
    /// The selected service row.
    pub selected: usize,
}

impl ResultsView {
    /// Follows the caller's role: a role that may not ask for its tenants'
    /// results (the brand) sees pooled ones; one that may not pool sees
    /// its own. Answers for the other mode are forgotten.
    pub fn set_role(&mut self, role: Role) {
        let own = role.allows(&report_request(false));
        let pooled = role.allows(&report_request(true));
        self.may_toggle = own && pooled;
        let want = !own && pooled;
        if self.pooled != want {
            self.pooled = want;
            self.forget();
        }
    }

    fn forget(&mut self) {
        self.by_service = None;
        self.by = [None, None, None];
        self.selected = 0;
    }

    fn query(&self, by: By) -> ReportQuery {
        ReportQuery {
            by,
            pooled: self.pooled,
            ..ReportQuery::default()
        }
    }

    /// Asks for what is on screen: the services and the breakdowns shown
    /// (all three on a wide screen, the chosen one otherwise). Every
    /// report reads every row of its period, so nothing unseen is asked.
    pub fn fetch(&self, screen: Screen, out: &mut Vec<Cmd>) {
        out.push(Cmd::Fetch(Fetch::Report(self.query(By::Service))));
        for (i, by) in BREAKDOWNS.into_iter().enumerate() {
            if screen.width >= WIDE || i == self.breakdown {
                out.push(Cmd::Fetch(Fetch::Report(self.query(by))));
            }
        }
    }

    /// A user action while the results are on screen.
    pub fn update(&mut self, action: Action, screen: Screen, out: &mut Vec<Cmd>) {
        match action {
            a if a.is_move() => {
                let len = self.by_service.as_ref().map_or(0, |r| r.groups.len());
                move_selection(&mut self.selected, len, action, screen.page_rows);
            }
            Action::TogglePooled => {
                if !self.may_toggle {
                    out.push(Cmd::Notice {
                        text: "your role sees one kind of results only".into(),
                        error: true,
                    });
                    return;
                }
                self.pooled = !self.pooled;
                self.forget();
                self.fetch(screen, out);
            }
            Action::NextBreakdown => {
                self.breakdown = (self.breakdown + 1) % BREAKDOWNS.len();
                if self.by[self.breakdown].is_none() {
                    self.fetch(screen, out);
                }
            }
            _ => {}
        }
    }

    /// The daemon says something changed: a message sent, a response
    /// credited (both write the outbox) or a cost booked changes results.
    pub fn on_changed(&self, c: &Changes, screen: Screen, out: &mut Vec<Cmd>) {
        if [Topic::Outbox, Topic::Costs]
            .iter()
            .any(|t| c.topics.contains(t))
        {
            self.fetch(screen, out);
        }
    }

    /// The terminal crossed the width where every breakdown is shown.
    pub fn on_resize(&self, was: Screen, now: Screen, out: &mut Vec<Cmd>) {
        if was.width < WIDE && now.width >= WIDE {
            self.fetch(now, out);
        }
    }

    /// A report came; returns whether the screen must be redrawn. An
    /// answer for the other mode (asked before a toggle) is dropped.
    pub fn on_report(&mut self, r: Report) -> bool {
        if r.query.pooled != self.pooled || r.query.service.is_some() || r.query.tenant.is_some() {
            return false;
        }
        match r.query.by {
            By::Service => {
                self.selected = self.selected.min(r.groups.len().saturating_sub(1));
                replace(&mut self.by_service, Some(r))
            }
            by => match BREAKDOWNS.iter().position(|b| *b == by) {
                Some(i) => replace(&mut self.by[i], Some(r)),
                None => false,
            },
        }
    }
}

fn report_request(pooled: bool) -> Request {
    Request::Report {
        query: ReportQuery {
            pooled,
            ..ReportQuery::default()
        },
    }
}

// ---- drawing ----

fn pct(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".into(), |r| format!("{:.1}%", r * 100.0))
}

fn euros(c: Option<f64>) -> String {
    c.map_or_else(|| "n/a".into(), |c| Money(c.round() as i64).to_string())
}

fn points(l: Option<Lift>) -> String {
    l.map_or_else(|| "n/a".into(), |l| format!("{:+.1}", l.estimate * 100.0))
}

fn interval(l: Option<Lift>) -> String {
    l.map_or_else(String::new, |l| {
        format!("[{:+.1}, {:+.1}]", l.low * 100.0, l.high * 100.0)
    })
}

/// The shown tally of a group and its figures, or why it is not shown.
fn shown(g: &ReportGroup) -> Result<(&Tally, &Figures), String> {
    match (&g.tally, &g.figures, g.suppressed) {
        (Some(t), Some(f), None) => Ok((t, f)),
        (_, _, s) => Err(format!(
            "suppressed ({})",
            s.map_or("not shown", |s| s.as_str())
        )),
    }
}

/// Why a pooled row is not shown, in the width of the lift bar.
fn suppressed(g: &ReportGroup, wide: bool) -> String {
    match (g.suppressed, wide) {
        (Some(s), true) => format!("suppressed: {}", s.as_str()),
        (Some(Suppression::TooFewDealers), false) => "supp.: few dealers".into(),
        (Some(Suppression::Dominated), false) => "supp.: dominated".into(),
        (Some(Suppression::Complementary), false) => "supp.: complementary".into(),
        (None, _) => "not shown".into(),
    }
}

/// One lift interval on an axis from `lo` to `hi` (shared by every row, so
/// the rows compare): `─` the axis, `┆` zero (`┿` inside the interval),
/// `━` the 95 % interval, `●` the estimate. An interval clear of zero is a lift the data supports.
pub fn ci_bar(l: &Lift, lo: f64, hi: f64, width: usize) -> String {
    if width == 0 {
        return String::new();
    }
    let span = (hi - lo).max(f64::EPSILON);
    let last = width - 1;
    let at = |x: f64| {
        let f = ((x - lo) / span).clamp(0.0, 1.0);
        ((f * last as f64).round() as usize).min(last)
    };
    let (a, b, mid) = (at(l.low), at(l.high), at(l.estimate));
    let zero = (lo <= 0.0 && 0.0 <= hi).then(|| at(0.0));
    (0..width)
        .map(
            |i| match (i == mid, (a..=b).contains(&i), Some(i) == zero) {
                (true, _, _) => '●',
                (false, true, true) => '┿',
                (false, true, false) => '━',
                (false, false, true) => '┆',
                (false, false, false) => '─',
            },
        )
        .collect()
}

/// The axis every lift bar shares: every interval shown, and zero.
fn axis(groups: &[&ReportGroup]) -> (f64, f64) {
    groups
        .iter()
        .filter_map(|g| shown(g).ok())
        .filter_map(|(_, f)| f.lift)
        .fold((0.0, 0.0), |(lo, hi), l| (l.low.min(lo), l.high.max(hi)))
}

/// The axis with a margin, so that no interval touches its ends and one
/// that does not reach an end is seen to stop.
fn padded((lo, hi): (f64, f64)) -> (f64, f64) {
    let pad = (hi - lo) * 0.1;
    (lo - pad, hi + pad)
}

impl ResultsView {
    /// Paints the view into `area`; changes nothing; records the rows of
    /// the services' table in `hits`.
    pub fn draw(&self, frame: &mut Frame, area: Rect, hits: &mut Hits) {
        let Some(r) = &self.by_service else {
            frame.render_widget(Paragraph::new("asking the daemon…").style(dim()), area);
            return;
        };
        let notes = notes(r, area.width);
        let wide = area.width >= WIDE;
        if r.groups.is_empty() {
            let mut lines = vec![
                Line::from(title(r)).bold(),
                Line::from(format!("no messages sent in {}", period(r))),
            ];
            lines.extend(notes);
            frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
            return;
        }
        // The services' table takes what its rows need, up to half the
        // screen; the charts share the rest; the notes go last.
        let table_rows = r.groups.len() as u16 + 3;
        let inner = usize::from(area.width).max(1);
        let wrapped: usize = notes.iter().map(|l| l.width().max(1).div_ceil(inner)).sum();
        let note_rows = u16::try_from(wrapped)
            .unwrap_or(u16::MAX)
            .min(area.height / 4);
        let [head, services, charts, foot] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(table_rows.min(area.height / 2).max(4)),
            Constraint::Min(0),
            Constraint::Length(note_rows),
        ])
        .areas(area);
        frame.render_widget(Paragraph::new(Line::from(title(r)).bold()), head);
        self.draw_services(frame, services, r, wide, hits);
        if wide {
            let cols = Layout::horizontal([Constraint::Fill(1); 3]).split(charts);
            for (i, col) in cols.iter().enumerate() {
                draw_chart(frame, *col, BREAKDOWNS[i], self.by[i].as_ref(), false);
            }
        } else {
            let i = self.breakdown.min(BREAKDOWNS.len() - 1);
            draw_chart(frame, charts, BREAKDOWNS[i], self.by[i].as_ref(), true);
        }
        frame.render_widget(
            Paragraph::new(notes)
                .style(dim())
                .wrap(Wrap { trim: false }),
            foot,
        );
    }

    fn draw_services(
        &self,
        frame: &mut Frame,
        area: Rect,
        r: &Report,
        wide: bool,
        hits: &mut Hits,
    ) {
        let block = pane(" By service: response rate, sent vs control ".into(), true);
        hits.list_pane = Some(area);
        let all: Vec<&ReportGroup> = r.groups.iter().chain([&r.total]).collect();
        let (lo, hi) = padded(axis(&all));
        let bar_width: u16 = if wide { 40 } else { 22 };
        let visible = usize::from(area.height.saturating_sub(3)).max(1);
        let top = page_top(self.selected, visible);
        // The total's row under the groups is no group to select.
        let groups = r.groups.len().saturating_sub(top).min(visible);
        hits.table(area, block.inner(area), top, groups);
        let rows = r
            .groups
            .iter()
            .enumerate()
            .skip(top)
            .take(visible)
            .map(|(i, g)| (Some(i), g))
            .chain([(None, &r.total)])
            .map(|(i, g)| {
                let style = match i {
                    Some(i) if i == self.selected => Style::new().reversed(),
                    Some(_) => Style::new(),
                    None => Style::new().bold(),
                };
                let Ok((t, f)) = shown(g) else {
                    let mut cells = vec![Cell::from(g.label.clone())];
                    cells.extend((0..if wide { 7 } else { 5 }).map(|_| right("—")));
                    cells.push(Cell::from(suppressed(g, wide)).yellow());
                    return Row::new(cells).style(style);
                };
                let ci = match f.lift {
                    Some(l) => Cell::from(ci_bar(&l, lo, hi, usize::from(bar_width))).style(
                        if l.low > 0.0 {
                            Style::new().green()
                        } else {
                            Style::new()
                        },
                    ),
                    None => Cell::from(if t.control == 0 {
                        "no control group"
                    } else {
                        "nothing sent"
                    })
                    .style(dim()),
                };
                let mut cells = vec![
                    Cell::from(g.label.clone()),
                    right(thousands(t.sent)),
                    right(pct(f.response_rate)),
                    right(thousands(t.control)),
                    right(pct(f.control_rate)),
                    right(points(f.lift)),
                ];
                if wide {
                    cells.insert(2, right(thousands(t.responses)));
                    cells.push(right(interval(f.lift)));
                }
                cells.push(ci);
                cells.push(right(euros(f.cost_per_incremental)));
                if wide {
                    cells.push(right(Money(t.cost).to_string()));
                    cells.push(right(Money(t.value).to_string()));
                }
                Row::new(cells).style(style)
            });
        let mut head = vec![
            ("Service", false),
            ("Sent", true),
            ("Rate", true),
            ("Ctrl", true),
            ("C.rate", true),
            ("Lift", true),
        ];
        let mut widths = vec![
            Constraint::Fill(1),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(5),
            Constraint::Length(6),
            Constraint::Length(6),
        ];
        if wide {
            head.insert(2, ("Resp", true));
            widths.insert(2, Constraint::Length(6));
            head.push(("95% CI, pts", true));
            widths.push(Constraint::Length(15));
        }
        head.push(("Lift, 95% CI", false));
        widths.push(Constraint::Length(bar_width));
        head.push(("€/incr", true));
        widths.push(Constraint::Length(9));
        if wide {
            head.push(("Cost", true));
            widths.push(Constraint::Length(11));
            head.push(("Value", true));
            widths.push(Constraint::Length(11));
        }
        frame.render_widget(
            Table::new(rows, widths)
                .header(header_row(&head))
                .block(block)
                .column_spacing(1),
            area,
        );
    }
}

fn title(r: &Report) -> String {
    let whose = if r.query.pooled {
        format!("pooled over {} dealers", r.dealers)
    } else {
        "your tenants".to_string()
    };
    format!("Results, {whose}, {}", period(r))
}

/// `the last 90 days (2026-09-08 to 2026-12-06)`.
fn period(r: &Report) -> String {
    let days = r.to.days() - r.from.days() + 1;
    format!("the last {days} days ({} to {})", r.from, r.to)
}

/// What the figures mean, the pooled rule, and the dealers not counted.
fn notes(r: &Report, width: u16) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if !r.groups.is_empty() {
        lines.push(Line::from(if width >= WIDE {
            "Lift: response rate sent − control in percentage points; its bar is the 95 % interval (Newcombe), ┆ or ┿ marks zero, green when the interval is above it. €/incr: cost per response the messages added."
        } else {
            "Lift: sent − control rate, points; bar: its 95 % interval, ┆/┿ zero. €/incr: cost per added response."
        }));
    }
    if let Some(note) = r.total.lift_note(r.query.pooled) {
        lines.push(Line::from(note));
    }
    if let Some(rule) = &r.rule {
        lines.push(Line::from(format!(
            "A pooled cell is shown only with at least {} dealers and none above {:.1} % of its rows; one more is hidden where a hidden one could be recovered from the total.",
            rule.min_dealers,
            f64::from(rule.max_dealer_permille) / 10.0
        )));
    }
    for (t, why) in &r.errors {
        lines.push(Line::from(format!("not counted: {t}: {why}")).red());
    }
    if r.unreadable > 0 && r.errors.is_empty() {
        lines.push(Line::from(format!("not counted: {} unreadable dealers", r.unreadable)).red());
    }
    lines
}

/// One breakdown as a bar chart of the response rate of sent messages,
/// each bar scaled to the highest rate shown.
fn draw_chart(frame: &mut Frame, area: Rect, by: By, r: Option<&Report>, cycle_hint: bool) {
    let what = match by {
        By::Lead => "lead time",
        By::Weekday => "weekday sent",
        By::Hour => "hour sent",
        _ => by.as_str(),
    };
    let hint = if cycle_hint { " (b: next)" } else { "" };
    let block = pane(format!(" Response rate by {what}{hint} "), false);
    let Some(r) = r else {
        frame.render_widget(
            Paragraph::new("asking the daemon…")
                .style(dim())
                .block(block),
            area,
        );
        return;
    };
    let max = r
        .groups
        .iter()
        .filter_map(|g| shown(g).ok()?.1.response_rate)
        .fold(0.0f64, f64::max);
    let label_width = r
        .groups
        .iter()
        .map(|g| g.label.chars().count())
        .max()
        .unwrap_or(0)
        .min(14);
    let bar_width = usize::from(area.width)
        .saturating_sub(label_width + 1 + 7 + 12)
        .clamp(1, 40);
    let rows = usize::from(area.height.saturating_sub(1));
    let mut lines: Vec<Line> = Vec::new();
    for (n, g) in r.groups.iter().enumerate() {
        if lines.len() + 1 == rows && n + 1 < r.groups.len() {
            lines.push(Line::from(format!("… {} more", r.groups.len() - n)).style(dim()));
            break;
        }
        let label: String = g.label.chars().take(label_width).collect();
        let mut spans = vec![Span::from(format!("{label:<label_width$} "))];
        match shown(g) {
            Ok((t, f)) => spans.extend(rate_bar(t, f, max, bar_width)),
            Err(why) => spans.push(Span::from(why).yellow()),
        }
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(Text::from(lines)).block(block), area);
}

fn rate_bar(t: &Tally, f: &Figures, max: f64, width: usize) -> Vec<Span<'static>> {
    match f.response_rate {
        None => vec![Span::from("control group only").style(dim())],
        Some(rate) => {
            let share = if max > 0.0 { rate / max } else { 0.0 };
            vec![
                Span::from(bar((share * 100.0).round() as u64, width)).cyan(),
                Span::from(format!(" {:>6}", pct(Some(rate)))),
                Span::from(format!(" {}/{}", t.responses, t.sent)).style(dim()),
            ]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lift_bar_marks_zero_the_interval_and_the_estimate() {
        let l = Lift {
            estimate: 0.1,
            low: 0.05,
            high: 0.15,
        };
        assert_eq!(ci_bar(&l, -0.1, 0.2, 7), "──┆━●━─");
        // An interval across zero covers the zero mark.
        let l = Lift {
            estimate: 0.0,
            low: -0.1,
            high: 0.1,
        };
        assert_eq!(ci_bar(&l, -0.1, 0.1, 5), "━━●━━");
        let l = Lift {
            estimate: 0.05,
            low: -0.05,
            high: 0.15,
        };
        assert_eq!(ci_bar(&l, -0.1, 0.2, 7), "─━┿●━━─");
        assert_eq!(ci_bar(&l, -0.1, 0.1, 0), "");
        // A degenerate axis does not divide by zero.
        let z = Lift {
            estimate: 0.0,
            low: 0.0,
            high: 0.0,
        };
        assert_eq!(ci_bar(&z, 0.0, 0.0, 3), "●──");
    }

    #[test]
    fn the_brand_sees_pooled_results_and_an_admin_may_switch() {
        let mut v = ResultsView::default();
        v.set_role(Role::Brand);
        assert!(v.pooled && !v.may_toggle);
        v.set_role(Role::Admin);
        assert!(!v.pooled && v.may_toggle);
        v.set_role(Role::Operator);
        assert!(!v.pooled && !v.may_toggle);
    }
}

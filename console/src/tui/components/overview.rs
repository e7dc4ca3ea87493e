//! The overview: one day's messages per tenant (`[` / `]` step through the
//! days; by default the next day anything goes out) and the coming days'
//! counts, money against budget (reserved and booked, as
//! `touchpoint_common::budget` sums them), the last hour's throughput,
//! throttles, policy and dispatch state, alerts.
//!
//! A tenant whose store the daemon could not read is shown as such, never
//! as a row of zeros; what the daemon counts only over every tenant is
//! shown as not shown to a caller with a narrower scope, never as 0.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Cell, Paragraph, Row, Sparkline, Table};
use ratatui::Frame;
use touchpoint_common::budget::BudgetSum;
use touchpoint_common::protocol::{Changes, DayCounts, Overview, Topic};
use touchpoint_common::Date;

use super::{replace, Cmd};
use crate::format;
use crate::tui::action::Action;
use crate::tui::msg::Fetch;
use crate::tui::widgets::{
    alert_lines, bar, dim, euro, header_row, level_style, pane, right, thousands, WIDE,
};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct OverviewView {
    /// The daemon's last answer; `None` until the first.
    pub data: Option<Overview>,
    /// The day asked for; `None`: the next day anything goes out.
    pub day: Option<Date>,
}

impl OverviewView {
    /// Asks for everything the view shows.
    pub fn fetch(&self, out: &mut Vec<Cmd>) {
        out.push(Cmd::Fetch(Fetch::Overview { day: self.day }));
    }

    /// `[` / `]` step through the days from the one shown, `Esc` goes back
    /// to the next day anything goes out; nothing else is selected or
    /// acted on here.
    pub fn update(&mut self, action: Action, out: &mut Vec<Cmd>) {
        let shown = || self.data.as_ref().map_or_else(Date::today, |o| o.day);
        self.day = match action {
            Action::PrevDay => Some(shown().add_days(-1)),
            Action::NextDay => Some(shown().add_days(1)),
            Action::Back if self.day.is_some() => None,
            _ => return,
        };
        self.fetch(out);
    }

    /// The daemon says something changed: read again when it is about
    /// anything the overview sums up.
    pub fn on_changed(&self, c: &Changes, out: &mut Vec<Cmd>) {
        let has = |t: Topic| c.topics.contains(&t);
        // Tenants: an import's attribution pass recounts the month's
        // responses.
        if [
            Topic::Outbox,
            Topic::Tenants,
            Topic::Dispatch,
            Topic::Costs,
            Topic::Policy,
            Topic::Approvals,
        ]
        .into_iter()
        .any(has)
        {
            self.fetch(out);
        }
    }

    /// An overview came; returns whether the screen must be redrawn.
    pub fn on_data(&mut self, o: Overview) -> bool {
        replace(&mut self.data, Some(o))
    }
}

// ---- drawing ----

impl OverviewView {
    /// Paints the view into `area`; changes nothing.
    pub fn draw(&self, frame: &mut Frame, area: Rect) {
        let Some(o) = &self.data else {
            frame.render_widget(Paragraph::new("asking the daemon…"), area);
            return;
        };
        let alerts = o.alerts.len().min(if area.height > 30 { 8 } else { 3 });
        let alert_rows = if o.alerts.is_empty() { 1 } else { alerts + 1 };
        let [totals, alerts_area, main, status] = Layout::vertical([
            Constraint::Length(3),
            Constraint::Length(alert_rows as u16),
            Constraint::Min(0),
            Constraint::Length(2),
        ])
        .areas(area);
        draw_totals(frame, totals, o);
        draw_alerts(frame, alerts_area, o, alerts);
        let [top, bottom] = Layout::vertical([
            Constraint::Fill(1),
            Constraint::Length(if area.height > 30 { 12 } else { 5 }),
        ])
        .areas(main);
        let halves = |r: Rect| {
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .spacing(2)
                .areas::<2>(r)
        };
        let [tenants, budgets] = halves(top);
        draw_tenants(frame, tenants, o);
        draw_budgets(frame, budgets, o);
        let [chart, throttles] = halves(bottom);
        draw_throughput(frame, chart, o);
        draw_throttles(frame, throttles, o);
        draw_status(frame, status, o, area.width >= WIDE);
    }
}

fn counts_spans(c: &DayCounts) -> Vec<Span<'static>> {
    let part = |label: &str, n: u64, style: Style| {
        Span::from(format!("{label} {}", thousands(n))).style(if n == 0 { dim() } else { style })
    };
    vec![
        part("planned", c.planned, Style::new()),
        Span::from(" · "),
        part("queued", c.queued, Style::new().cyan()),
        Span::from(" · "),
        part("sent", c.sent, Style::new().green()),
        Span::from(" · "),
        part("failed", c.failed, Style::new().red().bold()),
        Span::from(" · "),
        part("held", c.held, Style::new().magenta()),
    ]
}

fn draw_totals(frame: &mut Frame, area: Rect, o: &Overview) {
    let mut spans = vec![Span::from(format!(" {} ", format::overview_day_short(o))).bold()];
    if let Some(c) = o.clock {
        // A rehearsal daemon must never pass for the real one.
        spans.push(
            Span::from(format!(
                "[simulated clock: started at {}] ",
                touchpoint_common::clock::format_local(c.at_ms)
            ))
            .black()
            .on_yellow()
            .bold(),
        );
    }
    spans.extend(counts_spans(&o.total));
    let unreadable: Vec<String> = o
        .tenants
        .iter()
        .filter(|t| t.error.is_some())
        .map(|t| t.tenant.to_string())
        .collect();
    if !unreadable.is_empty() {
        spans.push(
            Span::from(format!(" · not counted: {}", unreadable.join(", ")))
                .red()
                .bold(),
        );
    }
    let responses = Line::from(format!(" {}", crate::format::month_responses(&o.responses)));
    let responses = if o.responses.total() == 0 {
        responses.style(dim())
    } else {
        responses
    };
    frame.render_widget(
        Paragraph::new(Text::from(vec![
            Line::from(spans),
            upcoming_line(o, area.width),
            responses,
        ])),
        area,
    );
}

/// The coming days, as many as fit: what waits to go out, held and failed;
/// the day shown stands out.
fn upcoming_line(o: &Overview, width: u16) -> Line<'static> {
    let mut spans = vec![Span::from(" [ ] ").style(dim())];
    let mut used = 5;
    for u in &o.upcoming {
        let text = format::upcoming_day(u);
        let w = text.chars().count() + 3;
        if used + w > usize::from(width) {
            break;
        }
        used += w;
        let c = &u.counts;
        let style = if u.day == o.day {
            Style::new().reversed()
        } else if c.failed + c.held > 0 {
            Style::new().yellow()
        } else if c.planned + c.queued == 0 {
            dim()
        } else {
            Style::new()
        };
        spans.push(Span::from(text).style(style));
        spans.push(Span::from(" · ").style(dim()));
    }
    spans.pop();
    Line::from(spans)
}

fn draw_alerts(frame: &mut Frame, area: Rect, o: &Overview, shown: usize) {
    if o.alerts.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::from(" ✓ ").green().bold(),
                Span::from("no alerts").style(dim()),
            ])),
            area,
        );
        return;
    }
    // The title says what is cut and the key that shows it: a line's end
    // is what a narrow pane cuts.
    let more = o.alerts.len().saturating_sub(shown);
    let count = if more > 0 {
        format!(" Alerts ({}, {more} more)", o.alerts.len())
    } else {
        format!(" Alerts ({})", o.alerts.len())
    };
    let mut lines = vec![Line::from(vec![
        Span::from(count).bold(),
        Span::from("  ! lists them all").style(dim()),
    ])];
    for a in o.alerts.iter().take(shown) {
        lines.extend(alert_lines(a, None));
    }
    frame.render_widget(Paragraph::new(Text::from(lines)), area);
}

/// Title of a pane that may not show every tenant: how many it does.
fn shown_of(title: &str, shown: usize, all: usize, order: &str) -> String {
    if shown < all {
        format!(" {title} ({shown} of {all}, {order}) ")
    } else {
        format!(" {title} ")
    }
}

fn draw_tenants(frame: &mut Frame, area: Rect, o: &Overview) {
    // Trouble first (a store that cannot be read, then failed and held
    // messages), then the busiest: what a short pane must not hide.
    let mut tenants: Vec<_> = o.tenants.iter().collect();
    tenants.sort_by_key(|t| {
        let c = &t.counts;
        (
            t.error.is_none(),
            std::cmp::Reverse(c.failed + c.held),
            std::cmp::Reverse(c.planned + c.queued + c.sent),
        )
    });
    let fit = usize::from(area.height.saturating_sub(2));
    let block = pane(
        shown_of(
            &format!("{} per tenant", o.day.naive().format("%a %d")),
            fit.min(tenants.len()),
            tenants.len(),
            "trouble first",
        ),
        false,
    );
    let named = area.width >= 70;
    let mut head_cells = vec![("Tenant", false)];
    if named {
        head_cells.push(("Name", false));
    }
    head_cells.extend([
        ("Plan", true),
        ("Queue", true),
        ("Sent", true),
        ("Fail", true),
        ("Held", true),
    ]);
    let head = header_row(&head_cells);
    let n = |v: u64, style: Style| {
        right(if v == 0 { "·".into() } else { thousands(v) }).style(if v == 0 {
            dim()
        } else {
            style
        })
    };
    let rows = tenants.into_iter().take(fit).map(|t| {
        let c = &t.counts;
        if t.error.is_some() {
            let trouble = Style::new().red().bold();
            let mut cells = vec![Cell::from(t.tenant.to_string()).style(trouble)];
            if named {
                cells.push(Cell::from("store unreadable (see alerts)").style(trouble));
            }
            cells.extend((0..5).map(|_| right("—").style(trouble)));
            return Row::new(cells);
        }
        let mut cells = vec![Cell::from(t.tenant.to_string())];
        if named {
            cells.push(Cell::from(t.name.clone()));
        }
        cells.extend([
            n(c.planned, Style::new()),
            n(c.queued, Style::new().cyan()),
            n(c.sent, Style::new().green()),
            n(c.failed, Style::new().red().bold()),
            n(c.held, Style::new().magenta()),
        ]);
        Row::new(cells)
    });
    let mut widths = vec![Constraint::Length(8)];
    if named {
        widths.push(Constraint::Fill(1));
    }
    widths.extend([
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(6),
    ]);
    frame.render_widget(
        Table::new(rows, widths)
            .header(head)
            .block(block)
            .column_spacing(1),
        area,
    );
}

fn draw_budgets(frame: &mut Frame, area: Rect, o: &Overview) {
    let this_month = touchpoint_common::outbox::month_of(o.today);
    // One sum per tenant of this month's rows, as every view sums them.
    // Every tenant that could be read has a line, "no budget" without one.
    let mut budgets: Vec<(String, BudgetSum)> = o
        .tenants
        .iter()
        .filter(|t| t.error.is_none())
        .map(|t| (t.tenant.to_string(), BudgetSum::default()))
        .collect();
    for r in o.budgets.iter().filter(|r| r.month == this_month) {
        let key = r.tenant.to_string();
        match budgets.iter_mut().find(|(t, _)| *t == key) {
            Some((_, sum)) => sum.add(r),
            None => budgets.push((key, BudgetSum::of([r]))),
        }
    }
    // The fullest budgets first.
    budgets.sort_by_key(|(_, b)| std::cmp::Reverse(b.used_percent().unwrap_or(-1)));
    let fit = usize::from(area.height.saturating_sub(1));
    let block = pane(
        shown_of(
            &format!("Budget {}: reserved + booked", format::month(this_month)),
            fit.min(budgets.len()),
            budgets.len(),
            "fullest first",
        ),
        false,
    );
    let inner = area.width.saturating_sub(1);
    // tenant(6) bar percent(5) money
    let money_width: u16 = if inner >= 60 { 22 } else { 0 };
    let bar_width = usize::from(inner.saturating_sub(6 + 1 + 5 + 1 + money_width)).clamp(3, 40);
    let rows = budgets.into_iter().take(fit).map(|(tenant, b)| {
        let mut cells = vec![Cell::from(tenant)];
        match b.used_percent() {
            Some(pct) => {
                let pct = pct as u64;
                cells.push(Cell::from(bar(pct, bar_width)).style(level_style(pct)));
                cells.push(right(format!("{pct}%")).style(level_style(pct)));
            }
            None => {
                cells.push(Cell::from("no budget").style(dim()));
                cells.push(right(""));
            }
        }
        if money_width > 0 {
            cells.push(right(format!(
                "{} / {}",
                euro(b.used),
                b.budget
                    .filter(|x| *x > 0)
                    .map(euro)
                    .unwrap_or_else(|| "-".into())
            )));
        }
        Row::new(cells)
    });
    let mut widths = vec![
        Constraint::Length(6),
        Constraint::Length(bar_width as u16),
        Constraint::Length(5),
    ];
    if money_width > 0 {
        widths.push(Constraint::Fill(1));
    }
    frame.render_widget(
        Table::new(rows, widths).block(block).column_spacing(1),
        area,
    );
}

fn draw_throughput(frame: &mut Frame, area: Rect, o: &Overview) {
    if !o.daemon_wide {
        frame.render_widget(
            Paragraph::new("not shown to your scope (counted over every tenant)")
                .style(dim())
                .block(pane(" Sent per minute: — ".into(), false)),
            area,
        );
        return;
    }
    let now = o.throughput.last().copied().unwrap_or(0);
    let max = o.throughput.iter().copied().max().unwrap_or(0);
    let hour: u64 = o.throughput.iter().sum();
    let block = pane(
        format!(
            " Sent per minute: now {now}, peak {max}, hour {} ",
            thousands(hour)
        ),
        false,
    );
    // Newest on the right; a narrow pane shows the most recent minutes.
    let width = usize::from(area.width);
    let data: Vec<u64> = o
        .throughput
        .iter()
        .skip(o.throughput.len().saturating_sub(width))
        .copied()
        .collect();
    frame.render_widget(
        Sparkline::default()
            .block(block)
            .data(&data)
            .style(Style::new().green()),
        area,
    );
}

fn draw_throttles(frame: &mut Frame, area: Rect, o: &Overview) {
    let block = pane(
        if o.daemon_wide {
            " Throttles ".into()
        } else {
            " Throttles of your tenants ".into()
        },
        false,
    );
    if o.throttles.is_empty() {
        let text = if !o.dispatch_enabled {
            "dispatch is off in this daemon"
        } else if o.daemon_wide {
            "no throttles configured"
        } else {
            "none of your tenants'; global and per-domain: not shown to your scope"
        };
        frame.render_widget(Paragraph::new(text).style(dim()).block(block), area);
        return;
    }
    let inner = usize::from(area.width);
    let name_width = o
        .throttles
        .iter()
        .map(|t| t.name.chars().count())
        .max()
        .unwrap_or(8)
        .clamp(8, 28);
    let bar_width = inner.saturating_sub(name_width + 5 + 14 + 3).clamp(3, 30);
    let rows = o
        .throttles
        .iter()
        .take(usize::from(area.height.saturating_sub(1)))
        .map(|t| {
            let pct = u64::from(t.saturation);
            let limit = if t.limit == 0 {
                "no limit".to_string()
            } else {
                format!("{}/{} {}", t.used, t.limit, t.per)
            };
            Row::new(vec![
                Cell::from(t.name.clone()),
                Cell::from(bar(pct, bar_width)).style(level_style(pct)),
                right(format!("{pct}%")).style(level_style(pct)),
                Cell::from(limit).style(dim()),
            ])
        });
    let widths = [
        Constraint::Length(name_width as u16),
        Constraint::Length(bar_width as u16),
        Constraint::Length(5),
        Constraint::Fill(1),
    ];
    frame.render_widget(
        Table::new(rows, widths).block(block).column_spacing(1),
        area,
    );
}

fn draw_status(frame: &mut Frame, area: Rect, o: &Overview, wide: bool) {
    let p = &o.policy;
    let mut policy = vec![
        Span::from(" policy ").bold(),
        Span::from(format::fingerprint(p.version)),
        Span::from(format!(" loaded {}", format::time_short(p.loaded_at))).style(dim()),
    ];
    if p.errors.is_empty() {
        policy.push(Span::from(" · valid").green());
    } else {
        let when = p
            .failed_at
            .map(|t| format!(" at {}", format::time_short(t)))
            .unwrap_or_default();
        policy.push(
            Span::from(format!(
                " · last reload{when} refused: {} error(s), see 5 Policies",
                p.errors.len()
            ))
            .red()
            .bold(),
        );
    }
    let mut dispatch = vec![Span::from(" dispatch ").bold()];
    if !o.dispatch_enabled {
        dispatch.push(Span::from("off").style(dim()));
    } else {
        dispatch.push(Span::from(o.transport.clone()));
        for pause in &o.paused {
            dispatch.push(
                Span::from(format!(" · paused: {}", pause.scope))
                    .magenta()
                    .bold(),
            );
        }
        if let Some(t) = o.relay_down_until {
            dispatch.push(
                Span::from(format!(" · relay down until {}", format::time_short(t)))
                    .red()
                    .bold(),
            );
        }
        if wide && !o.dispatch_error.is_empty() {
            dispatch.push(Span::from(format!(" · {}", o.dispatch_error)).red());
        }
    }
    frame.render_widget(
        Paragraph::new(Text::from(vec![Line::from(policy), Line::from(dispatch)])),
        area,
    );
}

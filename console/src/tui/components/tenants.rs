//! Tenants: opt-ins, budgets (reserved, booked and remaining this month,
//! as `touchpoint_common::budget` sums them), record counts, imports and their
//! errors, duplicate merges. Enter shows the tenant's queue.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;
use touchpoint_common::budget::tenant_month;
use touchpoint_common::domain::ImportStatus;
use touchpoint_common::protocol::{Changes, CostRow, TenantDetail, TenantSummary, Topic};

use super::{move_selection, replace, scroll, Cmd, Screen};
use crate::format;
use crate::tui::action::Action;
use crate::tui::hits::Hits;
use crate::tui::msg::Fetch;
use crate::tui::widgets::{
    bar, dim, euro, header_row, level_style, page_top, pane, right, scrolled, thousands, WIDE,
};

#[derive(Clone, Debug, PartialEq)]
pub struct TenantsView {
    pub list: Vec<TenantSummary>,
    pub selected: usize,
    /// The daemon's month for the costs, `yyyymm`.
    pub month: u32,
    /// This month's ledger rows.
    pub costs: Vec<CostRow>,
    pub detail: Option<TenantDetail>,
    pub scroll: u16,
    /// The furthest the detail can scroll, as the last draw found it
    /// (wrapped lines less the pane's height): scrolling stops there.
    pub scroll_max: std::cell::Cell<u16>,
}

impl Default for TenantsView {
    fn default() -> Self {
        Self {
            list: Vec::new(),
            selected: 0,
            month: this_month(),
            costs: Vec::new(),
            detail: None,
            scroll: 0,
            scroll_max: std::cell::Cell::new(0),
        }
    }
}

fn this_month() -> u32 {
    touchpoint_common::outbox::month_of(touchpoint_common::Date::today())
}

impl TenantsView {
    pub fn selected_tenant(&self) -> Option<&TenantSummary> {
        self.list.get(self.selected)
    }

    pub fn current_detail(&self) -> Option<&TenantDetail> {
        let id = &self.selected_tenant()?.id;
        self.detail.as_ref().filter(|d| &d.summary.id == id)
    }

    /// Asks for everything the view shows.
    pub fn fetch(&self, out: &mut Vec<Cmd>) {
        out.push(Cmd::Fetch(Fetch::Tenants));
        let month = self.month;
        out.push(Cmd::Fetch(Fetch::Costs { month }));
        self.fetch_tenant(out);
    }

    fn fetch_tenant(&self, out: &mut Vec<Cmd>) {
        if let Some(id) = self.selected_tenant().map(|t| t.id.clone()) {
            out.push(Cmd::Fetch(Fetch::Tenant(id)));
        }
    }

    /// A user action while the tenants are on screen.
    pub fn update(&mut self, action: Action, screen: Screen, out: &mut Vec<Cmd>) {
        let page = screen.page_rows;
        match action {
            a if a.is_move() => {
                let moved = move_selection(&mut self.selected, self.list.len(), action, page);
                if moved {
                    self.scroll = 0;
                    self.fetch_tenant(out);
                }
            }
            Action::DetailDown | Action::DetailUp => {
                scroll(&mut self.scroll, action);
                self.scroll = self.scroll.min(self.scroll_max.get());
            }
            Action::Open => {
                // The queue of this tenant.
                if let Some(id) = self.selected_tenant().map(|t| t.id.clone()) {
                    out.push(Cmd::QueueOf(id));
                }
            }
            _ => {}
        }
    }

    /// The daemon says something changed: read again what is about tenants
    /// or costs.
    pub fn on_changed(&self, c: &Changes, out: &mut Vec<Cmd>) {
        let has = |t: Topic| c.topics.contains(&t);
        if has(Topic::Tenants) {
            out.push(Cmd::Fetch(Fetch::Tenants));
            self.fetch_tenant(out);
        }
        if has(Topic::Costs) {
            let month = self.month;
            out.push(Cmd::Fetch(Fetch::Costs { month }));
        }
    }

    /// The tenants came; returns whether the screen must be redrawn.
    pub fn on_list(&mut self, list: Vec<TenantSummary>, out: &mut Vec<Cmd>) -> bool {
        if self.list == list {
            return false;
        }
        let selected_id = self.selected_tenant().map(|x| x.id.clone());
        self.list = list;
        self.selected = selected_id
            .and_then(|id| self.list.iter().position(|x| x.id == id))
            .unwrap_or(self.selected)
            .min(self.list.len().saturating_sub(1));
        if self.detail.is_none() {
            self.fetch_tenant(out);
        }
        true
    }

    /// The selected tenant's detail came.
    pub fn on_detail(&mut self, detail: TenantDetail) -> bool {
        replace(&mut self.detail, Some(detail))
    }

    /// The month's costs came; returns whether the screen must be redrawn.
    pub fn on_costs(&mut self, month: u32, rows: Vec<CostRow>) -> bool {
        self.month = month;
        replace(&mut self.costs, rows)
    }
}

// ---- drawing ----

impl TenantsView {
    /// Paints the view into `area`; changes nothing; records the list's
    /// rows and the detail pane in `hits`.
    pub fn draw(&self, frame: &mut Frame, area: Rect, hits: &mut Hits) {
        let half = area.height / 2;
        let list_height = (self.list.len() as u16 + 3).clamp(half.min(4), half);
        let [list, detail] =
            Layout::vertical([Constraint::Length(list_height), Constraint::Min(0)]).areas(area);
        draw_list(frame, list, self, hits);
        draw_detail(frame, detail, self);
        hits.detail = Some(detail);
    }
}

fn draw_list(frame: &mut Frame, area: Rect, t: &TenantsView, hits: &mut Hits) {
    let block = pane(format!(" Tenants ({}) ", t.list.len()), true);
    hits.list_pane = Some(area);
    if t.list.is_empty() {
        frame.render_widget(
            Paragraph::new("No tenants in your scope.").block(block),
            area,
        );
        return;
    }
    let wide = area.width >= WIDE;
    let mut head: Vec<(&'static str, bool)> = vec![
        ("ID", false),
        ("Name", false),
        ("Recip.", true),
        ("Email", true),
        ("Phone", true),
        ("No post", true),
    ];
    let mut widths = vec![
        Constraint::Length(6),
        Constraint::Fill(1),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(7),
    ];
    if wide {
        head.extend([
            ("Customers", true),
            ("Vehicles", true),
            ("Visits", true),
            ("Merges", true),
            ("Disk", true),
        ]);
        widths.extend([
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(9),
        ]);
    }
    head.extend([("Budget used", false), ("Last import", false)]);
    let bar_width: usize = if wide { 12 } else { 5 };
    widths.extend([
        Constraint::Length(bar_width as u16 + 5),
        Constraint::Length(if wide { 28 } else { 11 }),
    ]);
    let visible = usize::from(area.height.saturating_sub(2)).max(1);
    let top = page_top(t.selected, visible);
    hits.table(
        area,
        block.inner(area),
        top,
        t.list.len().saturating_sub(top),
    );
    let rows = t
        .list
        .iter()
        .enumerate()
        .skip(top)
        .take(visible)
        .map(|(i, s)| {
            let st = &s.stats;
            let mut cells = vec![
                Cell::from(s.id.to_string()),
                Cell::from(s.name.clone()),
                right(thousands(st.recipients)),
                right(thousands(s.opt_ins.email)),
                right(thousands(s.opt_ins.phone)),
                right(thousands(s.opt_ins.post_refused)),
            ];
            if wide {
                cells.extend([
                    right(thousands(st.customers)),
                    right(thousands(st.vehicles)),
                    right(thousands(st.visits)),
                    right(st.merges_active.to_string()),
                    right(format::human_bytes(st.disk_bytes)),
                ]);
            }
            // The month's reserved and booked of its budgets, as every
            // view sums them.
            cells.push(
                match tenant_month(&t.costs, &s.id, t.month).used_percent() {
                    Some(pct) => {
                        let pct = pct as u64;
                        Cell::from(format!("{} {pct:>3}%", bar(pct, bar_width)))
                            .style(level_style(pct))
                    }
                    None => Cell::from("-").style(dim()),
                },
            );
            cells.push(match &s.last_import {
                // The listing says why; the figures are the last it had.
                _ if s.error.is_some() => Cell::from(if wide {
                    "store unreadable"
                } else {
                    "unreadable"
                })
                .style(Style::new().red().bold()),
                None => Cell::from("none").style(dim()),
                Some(i) => {
                    let text = if wide {
                        format!(
                            "{} {}",
                            format::time_short(i.finished_at),
                            format::import_status_short(&i.status)
                        )
                    } else {
                        format::import_status_short(&i.status)
                    };
                    let style = match i.status {
                        ImportStatus::Failed { .. } => Style::new().red().bold(),
                        // The listing carries counts, not the row errors.
                        _ if i.rows_rejected > 0 => Style::new().yellow(),
                        _ => Style::new(),
                    };
                    Cell::from(text).style(style)
                }
            });
            let style = if i == t.selected {
                Style::new().reversed()
            } else {
                Style::new()
            };
            Row::new(cells).style(style)
        });
    frame.render_widget(
        Table::new(rows, widths)
            .header(header_row(&head))
            .block(block)
            .column_spacing(1),
        area,
    );
}

fn detail_lines(d: &TenantDetail, costs: &[CostRow], month: u32) -> Vec<Line<'static>> {
    let st = &d.summary.stats;
    let mut lines = vec![Line::from(format!(
        "{} customers · {} recipients · {} vehicles · {} consents · {} visits · {} merges · {}",
        thousands(st.customers),
        thousands(st.recipients),
        thousands(st.vehicles),
        thousands(st.consents),
        thousands(st.visits),
        st.merges_active,
        format::human_bytes(st.disk_bytes)
    ))];
    let o = &d.summary.opt_ins;
    lines.push(Line::from(format!(
        "opt-ins: email {} · phone {} · refused post {}",
        thousands(o.email),
        thousands(o.phone),
        thousands(o.post_refused)
    )));
    let own: Vec<&CostRow> = costs
        .iter()
        .filter(|c| c.tenant == d.summary.id && c.month == month)
        .collect();
    if !own.is_empty() {
        lines.push(Line::from(""));
        lines.push(
            Line::from(format!(
                "Budget {}: reserved + booked of budget, remaining, brand share",
                format::month(month)
            ))
            .bold(),
        );
        for c in own {
            let budget = match (c.budget, c.remaining()) {
                (Some(b), Some(r)) => format!("{}, {} remaining", euro(b), euro(r)),
                _ => "no budget".into(),
            };
            lines.push(Line::from(format!(
                "  {:<14} {} + {} of {budget}, brand {}",
                c.service,
                euro(c.reserved),
                euro(c.booked),
                euro(c.brand)
            )));
        }
    }
    lines.push(Line::from(""));
    lines.push(Line::from(format!("Imports ({})", d.imports.len())).bold());
    for i in d.imports.iter().take(8) {
        let style = match i.status {
            ImportStatus::Failed { .. } => Style::new().red().bold(),
            _ => Style::new(),
        };
        lines.push(Line::from(vec![
            Span::from(format!(
                "  #{} {} ",
                i.import_id,
                format::time_short(i.finished_at)
            ))
            .style(dim()),
            Span::from(format!("{} ", i.file_name)),
            Span::from(format::import_status(&i.status)).style(style),
            Span::from(format!(
                " · {} rows, {}{} rejected, {} merges",
                i.rows_total,
                if i.rows_warned > 0 {
                    format!("{} with warnings, ", i.rows_warned)
                } else {
                    String::new()
                },
                i.rows_rejected,
                i.merges
            ))
            .style(dim()),
        ]));
        if let Some(t) = &i.credited {
            lines.push(Line::from(format!("      {}", format::credited(t))).style(dim()));
            if let Some(line) = t.unrecognised_line() {
                lines.push(Line::from(format!("      {line}")).yellow());
            }
        }
        // What a re-export removed is data gone: not dimmed.
        for line in i.corrections.describe() {
            lines.push(Line::from(format!("      re-export: {line}")).yellow());
        }
        for e in i.errors.iter().take(3) {
            lines.push(Line::from(format!("      {e}")).yellow());
        }
        let more = (i.errors.len() as u64).saturating_sub(3) + i.errors_truncated;
        if more > 0 {
            lines.push(Line::from(format!("      … {more} more rejected rows")).style(dim()));
        }
        if let Some(line) = i.stale.describe(&i.file_name) {
            lines.push(Line::from(format!("      {line}")).yellow());
        }
        for w in i.warnings.iter().take(3) {
            lines.push(Line::from(format!("      warning: {w}")).yellow());
        }
        let more = (i.warnings.len() as u64).saturating_sub(3) + i.warnings_truncated;
        if more > 0 {
            lines.push(Line::from(format!("      … {more} more warnings")).style(dim()));
        }
    }
    if d.parked > 0 {
        lines.push(Line::from(""));
        lines.push(
            Line::from(format!(
                "Parked vehicles ({}): holder not a known customer, attached when the customer is imported",
                d.parked
            ))
            .bold(),
        );
        for p in d.parked_list.iter().take(8) {
            lines.push(Line::from(format!("  {}  customer_no {}", p.vin, p.customer_no)).yellow());
        }
        let more = d.parked.saturating_sub(d.parked_list.len().min(8) as u64);
        if more > 0 {
            lines.push(Line::from(format!("  … {more} more")).style(dim()));
        }
    }
    lines.push(Line::from(""));
    lines.push(Line::from(format!("Duplicate merges ({})", d.merges.len())).bold());
    for m in d.merges.iter().take(8) {
        let undone = if m.undone_at.is_some() {
            " (undone)"
        } else {
            ""
        };
        lines.push(Line::from(format!(
            "  #{} {} ← {}: {}{undone}",
            m.merge_id,
            m.survivor,
            m.merged,
            format::merge_reasons(m)
        )));
    }
    lines
}

fn draw_detail(frame: &mut Frame, area: Rect, t: &TenantsView) {
    let Some(sel) = t.selected_tenant() else {
        return;
    };
    let block = pane(
        format!(" {} {} (Enter: its queue) ", sel.id, sel.name),
        false,
    );
    let text = match t.current_detail() {
        Some(d) => Text::from(detail_lines(d, &t.costs, t.month)),
        None => Text::from("loading…").style(dim()),
    };
    scrolled(
        frame,
        area,
        Paragraph::new(text).block(block).wrap(Wrap { trim: false }),
        t.scroll,
        &t.scroll_max,
    );
}

#[cfg(test)]
mod tests {
    use touchpoint_common::domain::{Corrected, Corrections};
    use touchpoint_common::Date;

    use super::*;

    #[test]
    fn an_import_that_removed_rows_says_so_in_the_import_history() {
        let mut d = crate::fixtures::detail();
        d.imports[0].corrections = Corrections {
            visits: Corrected {
                span: Some((
                    Date::from_ymd(2026, 10, 1).expect("date"),
                    Date::from_ymd(2026, 11, 30).expect("date"),
                )),
                removed: 2,
                kept: 0,
            },
            ..Corrections::default()
        };
        let lines: Vec<String> = detail_lines(&d, &[], 202612)
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert!(
            lines.iter().any(|l| l
                == "      re-export: removed 2 visits no longer in the export (vehicles it names, 2026-10-01…2026-11-30)"),
            "{lines:#?}"
        );
    }

    #[test]
    fn warnings_stale_records_and_parked_vehicles_are_in_the_detail() {
        use touchpoint_common::domain::{RowError, Stale};
        use touchpoint_common::protocol::ParkedVehicle;
        let mut d = crate::fixtures::detail();
        let i = &mut d.imports[0];
        i.rows_warned = 1;
        i.warnings = vec![RowError {
            file: "kunden.csv".into(),
            line: 11,
            field: "birth_date".into(),
            reason: "\"31.02.1990\" does not exist: February 1990 has 28 days (field not imported)"
                .into(),
        }];
        i.stale = Stale {
            rows: 3,
            as_of: Date::from_ymd(2026, 11, 30),
            stored: Date::from_ymd(2026, 12, 5),
        };
        d.parked = 2;
        d.parked_list = vec![ParkedVehicle {
            vin: "WVWZZZ1KZ6W000001".into(),
            customer_no: "99999".into(),
        }];
        let lines: Vec<String> = detail_lines(&d, &[], 202612)
            .iter()
            .map(|l| l.to_string())
            .collect();
        for want in [
            "      warning: kunden.csv:11: birth_date: \"31.02.1990\" does not exist: February 1990 has 28 days (field not imported)",
            "      kunden.csv: 3 rows older than the stored data (as of 2026-11-30 < 2026-12-05); not applied",
            "Parked vehicles (2): holder not a known customer, attached when the customer is imported",
            "  WVWZZZ1KZ6W000001  customer_no 99999",
            "  … 1 more",
        ] {
            assert!(lines.iter().any(|l| l == want), "{want:?} in {lines:#?}");
        }
        assert!(
            lines.iter().any(|l| l.contains(" 1 with warnings, ")),
            "{lines:#?}"
        );
    }
}

//! Rendering only: `draw` reads an [`AppState`] and paints a frame. It never
//! changes state, so tests render fabricated states into a `TestBackend`.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    Block, Borders, Cell, Clear, HighlightSpacing, Paragraph, Row, Table, TableState, Wrap,
};
use ratatui::Frame;
use touchpoint_common::domain::{ImportReport, ImportStatus};

use super::app::{AppState, ConnState, DetailPane, View};
use super::keymap::{hints, keys_label, KEYMAP};
use crate::format;

/// Terminals at least this wide get the extra columns and side-by-side panes.
const WIDE: u16 = 120;
const HIGHLIGHT: &str = "▸ ";

pub fn draw(frame: &mut Frame, state: &AppState) {
    let area = frame.area();
    if area.width == 0 || area.height == 0 {
        return;
    }
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, header, state);
    match state.view {
        View::Tenants => draw_tenants(frame, body, state),
        View::Detail => draw_detail(frame, body, state),
        View::Status => draw_status(frame, body, state),
    }
    draw_footer(frame, footer, state);
    if state.show_help {
        draw_help(frame, area);
    }
}

fn dim() -> Style {
    Style::new().add_modifier(Modifier::DIM)
}

fn right(s: impl Into<String>) -> Cell<'static> {
    Cell::from(Line::from(s.into()).alignment(Alignment::Right))
}

fn header_cells(cells: &[(&'static str, bool)]) -> Row<'static> {
    Row::new(cells.iter().map(
        |(h, is_right)| {
            if *is_right {
                right(*h)
            } else {
                Cell::from(*h)
            }
        },
    ))
    .style(Style::new().bold())
}

fn status_style(s: &ImportStatus) -> Style {
    match s {
        ImportStatus::Committed => Style::new().green(),
        ImportStatus::AlreadyImported { .. } => Style::new().cyan(),
        ImportStatus::Failed { .. } => Style::new().red().bold(),
    }
}

fn draw_header(frame: &mut Frame, area: Rect, state: &AppState) {
    let daemon = match (&state.conn, &state.status) {
        (ConnState::Connected { daemon, .. }, _) => daemon.clone(),
        (_, Some(s)) => s.daemon_version.clone(),
        _ => "touchpointd".into(),
    };
    let mut spans = vec![
        Span::from(" touchpoint ").reversed().bold(),
        Span::from(" "),
        Span::from(daemon),
    ];
    if let Some(i) = state.identity() {
        spans.push(Span::from(format!(" · {} ({})", i.user, i.role)));
    }
    spans.push(Span::from(" · "));
    spans.push(match &state.conn {
        ConnState::Connected { .. } => Span::from("connected").green(),
        ConnState::Connecting { attempt: 1 } => Span::from("connecting…").yellow(),
        ConnState::Connecting { attempt } => {
            Span::from(format!("reconnecting (attempt {attempt})…")).yellow()
        }
        ConnState::Disconnected { .. } => Span::from("disconnected — retrying").red().bold(),
    });
    if state.readonly {
        spans.push(Span::from(" · read-only").magenta());
    }
    // Visible from every view: a refused policy change (details in Status).
    if let Some(n) = state.status.as_ref().map(|s| s.policy.errors.len()) {
        if n > 0 {
            spans.push(Span::from(" · "));
            spans.push(Span::from(format!("policy errors: {n}")).red().bold());
        }
    }
    let left = Line::from(spans);
    let left_width = left.width();
    frame.render_widget(Paragraph::new(left), area);

    let mut tabs = Vec::new();
    for (n, v) in View::ALL.iter().enumerate() {
        let label = format!(" {} {} ", n + 1, v.title());
        tabs.push(if *v == state.view {
            Span::from(label).reversed()
        } else {
            Span::from(label)
        });
    }
    let tabs = Line::from(tabs);
    if usize::from(area.width) >= left_width + tabs.width() + 2 {
        frame.render_widget(Paragraph::new(tabs).alignment(Alignment::Right), area);
    }
}

fn draw_footer(frame: &mut Frame, area: Rect, state: &AppState) {
    let line = if let Some(m) = &state.message {
        Line::from(vec![
            Span::from(" ! ").red().bold(),
            Span::from(m.clone()).red(),
        ])
    } else if let (ConnState::Disconnected { error, .. }, Some(_)) = (&state.conn, &state.status) {
        // Without data the body shows the error already; with stale data only this does.
        Line::from(vec![Span::from(" ").red(), Span::from(error.clone()).red()])
    } else {
        let mut spans = Vec::new();
        for (key, label) in hints(state.view) {
            spans.push(Span::from(format!(" {key}")).bold());
            spans.push(Span::from(format!(" {label} ")).style(dim()));
        }
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn pane_block(title: String, focused: bool) -> Block<'static> {
    let title = if focused {
        Span::from(title).reversed().bold()
    } else {
        Span::from(title).bold()
    };
    Block::new().borders(Borders::TOP).title(title)
}

fn waiting(state: &AppState) -> Text<'static> {
    match &state.conn {
        ConnState::Disconnected { error, .. } => Text::from(vec![
            Line::from("no data: the daemon is not reachable"),
            Line::from(error.clone()).red(),
        ]),
        _ => Text::from(format!("waiting for the daemon at {}…", state.socket)),
    }
}

fn draw_tenants(frame: &mut Frame, area: Rect, state: &AppState) {
    let block = pane_block(format!(" Tenants ({}) ", state.tenants.len()), true);
    if state.tenants.is_empty() {
        let text = if state.status.is_some() {
            Text::from("no tenants in your scope")
        } else {
            waiting(state)
        };
        frame.render_widget(
            Paragraph::new(text).block(block).wrap(Wrap { trim: false }),
            area,
        );
        return;
    }
    let wide = area.width >= WIDE;
    let id_width = state
        .tenants
        .iter()
        .map(|t| t.id.as_str().chars().count())
        .max()
        .unwrap_or(2)
        .clamp(2, 20) as u16;
    let mut head: Vec<(&'static str, bool)> = vec![
        ("ID", false),
        ("Name", false),
        ("Customers", true),
        ("Recipients", true),
        ("Vehicles", true),
    ];
    let mut widths = vec![
        Constraint::Length(id_width),
        Constraint::Fill(1),
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Length(8),
    ];
    if wide {
        head.extend([("Consents", true), ("Visits", true)]);
        widths.extend([Constraint::Length(8), Constraint::Length(8)]);
    }
    head.push(("Merges", true));
    widths.push(Constraint::Length(6));
    if wide {
        head.extend([("Imports", true), ("Last import", false), ("File", false)]);
        widths.extend([
            Constraint::Length(7),
            Constraint::Length(16),
            Constraint::Length(16),
        ]);
    }
    // Narrow screens have no "Last import" time column, so the status is labelled that.
    head.extend([
        (if wide { "Status" } else { "Last import" }, false),
        ("Rejected", true),
    ]);
    widths.extend([
        Constraint::Length(if wide { 10 } else { 11 }),
        Constraint::Length(8),
    ]);
    if wide {
        head.push(("Disk", true));
        widths.push(Constraint::Length(9));
    }

    let rows = state.tenants.iter().map(|t| {
        let st = &t.stats;
        let mut cells = vec![
            Cell::from(t.id.to_string()),
            Cell::from(t.name.clone()),
            right(st.customers.to_string()),
            right(st.recipients.to_string()),
            right(st.vehicles.to_string()),
        ];
        if wide {
            cells.push(right(st.consents.to_string()));
            cells.push(right(st.visits.to_string()));
        }
        cells.push(right(st.merges_active.to_string()));
        let last = t.last_import.as_ref();
        if wide {
            cells.push(right(st.imports.to_string()));
            cells.push(Cell::from(
                last.map(|i| format::time_short(i.finished_at))
                    .unwrap_or_else(|| "-".into()),
            ));
            cells.push(Cell::from(
                last.map(|i| i.file_name.clone())
                    .unwrap_or_else(|| "-".into()),
            ));
        }
        cells.push(match last {
            Some(i) => {
                Cell::from(format::import_status_short(&i.status)).style(status_style(&i.status))
            }
            None => Cell::from("none").style(dim()),
        });
        cells.push(match last {
            Some(i) if i.rows_rejected > 0 => right(i.rows_rejected.to_string()).yellow(),
            Some(i) => right(i.rows_rejected.to_string()),
            None => right("-"),
        });
        if wide {
            cells.push(right(format::human_bytes(st.disk_bytes)));
        }
        Row::new(cells)
    });
    let table = Table::new(rows, widths)
        .header(header_cells(&head))
        .block(block)
        .column_spacing(1)
        .row_highlight_style(Style::new().reversed())
        .highlight_symbol(HIGHLIGHT)
        .highlight_spacing(HighlightSpacing::Always);
    let mut ts = TableState::new().with_selected(Some(state.tenant_selected));
    frame.render_stateful_widget(table, area, &mut ts);
}

fn draw_detail(frame: &mut Frame, area: Rect, state: &AppState) {
    let Some(id) = &state.detail_tenant else {
        let block = pane_block(" Tenant ".into(), true);
        let text = "no tenant selected: choose one in Tenants (1) and press Enter";
        frame.render_widget(
            Paragraph::new(text).block(block).wrap(Wrap { trim: false }),
            area,
        );
        return;
    };
    let Some(d) = state.current_detail() else {
        let block = pane_block(format!(" {id} "), true);
        let text = match &state.conn {
            ConnState::Connected { .. } => Text::from(format!("loading {id}…")),
            _ => waiting(state),
        };
        frame.render_widget(
            Paragraph::new(text).block(block).wrap(Wrap { trim: false }),
            area,
        );
        return;
    };
    let s = &d.summary;
    let st = &s.stats;
    let stats = Text::from(vec![
        Line::from(format!(
            "customers {}  recipients {}  vehicles {}  consents {}  visits {}",
            st.customers, st.recipients, st.vehicles, st.consents, st.visits
        )),
        Line::from(format!(
            "merges {}  imports {}  disk {}",
            st.merges_active,
            st.imports,
            format::human_bytes(st.disk_bytes)
        )),
    ]);
    let [stats_area, rest] =
        Layout::vertical([Constraint::Length(3), Constraint::Min(0)]).areas(area);
    let title = pane_block(format!(" {} — {} ", s.id, s.name), false);
    frame.render_widget(Paragraph::new(stats).block(title), stats_area);

    let (imports_area, errors_area, merges_area) = if area.width >= WIDE {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)])
                .spacing(1)
                .areas(rest);
        let [imports, errors] =
            Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(left);
        (imports, errors, right)
    } else {
        let [imports, errors, merges] = Layout::vertical([
            Constraint::Percentage(34),
            Constraint::Percentage(36),
            Constraint::Percentage(30),
        ])
        .areas(rest);
        (imports, errors, merges)
    };
    let imports_focused = state.detail_pane == DetailPane::Imports;
    draw_imports(
        frame,
        imports_area,
        &d.imports,
        state.import_selected,
        imports_focused,
    );
    draw_row_errors(frame, errors_area, d.imports.get(state.import_selected));
    draw_merges(frame, merges_area, state, !imports_focused);
}

fn focus_table(table: Table<'_>, focused: bool) -> Table<'_> {
    let table = table.highlight_spacing(HighlightSpacing::Always);
    if focused {
        table
            .row_highlight_style(Style::new().reversed())
            .highlight_symbol(HIGHLIGHT)
    } else {
        table
    }
}

fn draw_imports(
    frame: &mut Frame,
    area: Rect,
    imports: &[ImportReport],
    selected: usize,
    focused: bool,
) {
    let block = pane_block(format!(" Imports ({}) ", imports.len()), focused);
    if imports.is_empty() {
        frame.render_widget(Paragraph::new("no imports yet").block(block), area);
        return;
    }
    let head = [
        ("#", true),
        ("Finished", false),
        ("File", false),
        ("Status", false),
        ("Rows", true),
        ("OK", true),
        ("Rej", true),
        ("Merges", true),
    ];
    let widths = [
        Constraint::Length(4),
        Constraint::Length(16),
        Constraint::Fill(1),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Length(6),
    ];
    let rows = imports.iter().map(|i| {
        Row::new(vec![
            right(i.import_id.to_string()),
            Cell::from(format::time_short(i.finished_at)),
            Cell::from(i.file_name.clone()),
            Cell::from(format::import_status_short(&i.status)).style(status_style(&i.status)),
            right(i.rows_total.to_string()),
            right(i.rows_ok.to_string()),
            if i.rows_rejected > 0 {
                right(i.rows_rejected.to_string()).yellow()
            } else {
                right(i.rows_rejected.to_string())
            },
            right(i.merges.to_string()),
        ])
    });
    let table = Table::new(rows, widths)
        .header(header_cells(&head))
        .block(block)
        .column_spacing(1);
    let mut ts = TableState::new().with_selected(Some(selected));
    frame.render_stateful_widget(focus_table(table, focused), area, &mut ts);
}

fn draw_row_errors(frame: &mut Frame, area: Rect, import: Option<&ImportReport>) {
    let Some(i) = import else {
        frame.render_widget(
            Paragraph::new("").block(pane_block(" Rejected rows ".into(), false)),
            area,
        );
        return;
    };
    let block = pane_block(
        format!(" Rejected rows of #{} ({}) ", i.import_id, i.rows_rejected),
        false,
    );
    let mut lines = Vec::new();
    match &i.status {
        ImportStatus::Failed { reason } => {
            lines.push(Line::from(format!("failed: {reason}")).red());
        }
        ImportStatus::AlreadyImported { previous } => {
            lines.push(
                Line::from(format!("same file as import #{previous}; nothing changed")).cyan(),
            );
        }
        ImportStatus::Committed => {}
    }
    if !i.format.is_empty() {
        lines.push(Line::from(format!("format: {}", i.format)).style(dim()));
    }
    if !i.unmapped_columns.is_empty() {
        lines.push(
            Line::from(format!(
                "unmapped columns: {}",
                i.unmapped_columns.join(", ")
            ))
            .yellow(),
        );
    }
    if i.errors.is_empty() && i.is_committed() {
        lines.push(Line::from("no rejected rows"));
    }
    lines.extend(i.errors.iter().map(|e| Line::from(e.to_string())));
    if i.errors_truncated > 0 {
        lines.push(Line::from(format!("… and {} more", i.errors_truncated)).style(dim()));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_merges(frame: &mut Frame, area: Rect, state: &AppState, focused: bool) {
    let merges = state
        .current_detail()
        .map(|d| d.merges.as_slice())
        .unwrap_or(&[]);
    let block = pane_block(format!(" Merges ({}) ", merges.len()), focused);
    if merges.is_empty() {
        frame.render_widget(Paragraph::new("no merges").block(block), area);
        return;
    }
    let head = [
        ("#", true),
        ("Survivor", false),
        ("Merged", false),
        ("Why", false),
    ];
    let widths = [
        Constraint::Length(4),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Fill(1),
    ];
    let rows = merges.iter().map(|m| {
        let why = match &m.undone_by {
            Some(by) => format!("undone by {by}: {}", format::merge_reasons(m)),
            None if m.undone_at.is_some() => format!("undone: {}", format::merge_reasons(m)),
            None => format::merge_reasons(m),
        };
        let row = Row::new(vec![
            right(m.merge_id.to_string()),
            Cell::from(m.survivor.clone()),
            Cell::from(m.merged.clone()),
            Cell::from(why),
        ]);
        if m.undone_at.is_some() {
            row.style(dim())
        } else {
            row
        }
    });
    let table = Table::new(rows, widths)
        .header(header_cells(&head))
        .block(block)
        .column_spacing(1);
    let mut ts = TableState::new().with_selected(Some(state.merge_selected));
    frame.render_stateful_widget(focus_table(table, focused), area, &mut ts);
}

fn kv(key: &'static str, value: String) -> Line<'static> {
    Line::from(vec![
        Span::from(format!("{key:<14}")).bold(),
        Span::from(value),
    ])
}

fn draw_status(frame: &mut Frame, area: Rect, state: &AppState) {
    let block = pane_block(" Daemon status ".into(), true);
    let Some(s) = &state.status else {
        frame.render_widget(
            Paragraph::new(waiting(state))
                .block(block)
                .wrap(Wrap { trim: false }),
            area,
        );
        return;
    };
    let p = &s.policy;
    let mut lines = Vec::new();
    // First, so that no terminal is too small to show them.
    if !p.errors.is_empty() {
        lines.push(
            Line::from(format!(
                "Policy change refused: {} error{}. The policy loaded {} stays in force.",
                p.errors.len(),
                if p.errors.len() == 1 { "" } else { "s" },
                p.loaded_at
            ))
            .red()
            .bold(),
        );
        lines.extend(p.errors.iter().map(|e| Line::from(format!("  {e}")).red()));
        lines.push(Line::from(""));
    }
    lines.extend([
        kv(
            "daemon",
            format!("{} (protocol {})", s.daemon_version, s.protocol_version),
        ),
        kv("running since", s.started_at.to_string()),
        kv("state dir", s.state_dir.clone()),
        kv("socket", s.socket.clone()),
        kv(
            "tenants",
            format!(
                "{} in scope, {} open / {} max",
                s.tenants, s.tenants_open, s.max_open_tenants
            ),
        ),
        kv("connections", s.connections.to_string()),
        kv("you", format::identity(&s.identity)),
        Line::from(""),
        kv("policy dir", format!("{} ({} files)", p.dir, p.files.len())),
        kv("loaded", p.loaded_at.to_string()),
    ]);
    if p.errors.is_empty() {
        lines.push(kv("policy", "valid".into()).green());
    } else {
        lines.push(kv("policy", "INVALID (errors above)".into()).red().bold());
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn draw_help(frame: &mut Frame, area: Rect) {
    let key_width = KEYMAP
        .iter()
        .map(|b| keys_label(b).chars().count())
        .max()
        .unwrap_or(0);
    let lines: Vec<Line<'static>> = KEYMAP
        .iter()
        .map(|b| {
            Line::from(vec![
                Span::from(format!(" {:<key_width$}  ", keys_label(b))).bold(),
                Span::from(b.description),
            ])
        })
        .collect();
    let content_width = lines.iter().map(Line::width).max().unwrap_or(0) + 3;
    let width = (content_width as u16).min(area.width);
    let height = (lines.len() as u16).saturating_add(2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    let block = Block::bordered().title(" Keys (? or Esc closes) ".bold());
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

//! Policies and audit: the files in force with their validation state, and
//! the audit log, filtered by the daemon.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;
use touchpoint_common::protocol::{AuditOutcome, PolicyStatus};

use crate::format;
use crate::tui::app::{AppState, AUDIT_LIMIT};
use crate::tui::widgets::{dim, header_row, page_top, pane, WIDE};

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState) {
    let policy_lines = state
        .status
        .as_ref()
        .map(|s| policy_lines(&s.policy))
        .unwrap_or_else(|| vec![Line::from("loading…").style(dim())]);
    let height = (policy_lines.len() as u16 + 1).min(area.height / 2).max(3);
    let [top, bottom] =
        Layout::vertical([Constraint::Length(height), Constraint::Min(0)]).areas(area);
    frame.render_widget(
        Paragraph::new(Text::from(policy_lines))
            .block(pane(" Policies in force ".into(), false))
            .wrap(Wrap { trim: false }),
        top,
    );
    draw_audit(frame, bottom, state);
}

fn policy_lines(p: &PolicyStatus) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(vec![
        Span::from(format!("{} ", p.dir)).bold(),
        Span::from(format!("version {:016x} ", p.version)),
        Span::from(format!("loaded {}", format::time_short(p.loaded_at))).style(dim()),
    ])];
    if let Some(t) = p.failed_at {
        lines.push(
            Line::from(format!(
                "the last reload at {} was refused; the set above stays in force",
                format::time_short(t)
            ))
            .red()
            .bold(),
        );
    }
    // The set in one line by kind (a brand has dozens of files); what is
    // wrong is listed file by file below it.
    let mut groups: Vec<(String, usize, usize)> = Vec::new();
    for f in &p.files {
        let kind = match f.split_once('/') {
            Some(("dealers", _)) => "dealer files".to_string(),
            Some(("templates", _)) => "templates".to_string(),
            _ => f.clone(),
        };
        let bad = p.errors.iter().any(|e| e.starts_with(&format!("{f}:")));
        match groups.iter_mut().find(|(k, _, _)| *k == kind) {
            Some((_, n, errs)) => {
                *n += 1;
                *errs += usize::from(bad);
            }
            None => groups.push((kind, 1, usize::from(bad))),
        }
    }
    let mut row: Vec<Span> = Vec::new();
    for (kind, n, errs) in groups {
        let label = if n == 1 && !kind.ends_with('s') {
            kind
        } else {
            format!("{n} {kind}")
        };
        if errs == 0 {
            row.push(Span::from("✓ ").green());
            row.push(Span::from(format!("{label}   ")));
        } else {
            row.push(Span::from("✕ ").red().bold());
            row.push(Span::from(format!("{label} ({errs} with errors)   ")).red());
        }
    }
    lines.push(Line::from(row));
    for e in &p.errors {
        lines.push(Line::from(format!("✕ {e}")).red());
    }
    lines
}

fn draw_audit(frame: &mut Frame, area: Rect, state: &AppState) {
    let p = &state.policies;
    let filter = if p.audit_filter.is_empty() {
        String::new()
    } else {
        format!(" matching “{}”", p.audit_filter)
    };
    let title = format!(
        " Audit log{filter}: {} newest (of at most {AUDIT_LIMIT}) ",
        p.audit.len()
    );
    let block = pane(title, true);
    if p.audit.is_empty() {
        let text = if p.audit_filter.is_empty() {
            "No entries."
        } else {
            "No entry matches. / edits the filter, Esc clears it."
        };
        frame.render_widget(Paragraph::new(text).style(dim()).block(block), area);
        return;
    }
    let wide = area.width >= WIDE;
    // Narrow screens keep two lines under the table for the entry's detail.
    let [table, detail] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(if wide { 0 } else { 2 }),
    ])
    .areas(area);
    let visible = usize::from(table.height.saturating_sub(2)).max(1);
    let top = page_top(p.selected, visible);
    let rows = p
        .audit
        .iter()
        .enumerate()
        .skip(top)
        .take(visible)
        .map(|(i, a)| {
            let (outcome, style) = match &a.outcome {
                AuditOutcome::Ok => ("ok".to_string(), Style::new().green()),
                AuditOutcome::Refused(why) => (format!("refused: {why}"), Style::new().yellow()),
                AuditOutcome::Failed(why) => (format!("failed: {why}"), Style::new().red().bold()),
            };
            let mut cells = vec![
                Cell::from(format::time_short(a.at)).style(dim()),
                Cell::from(a.user.clone()),
                Cell::from(a.action.clone()).bold(),
                Cell::from(a.tenant.as_ref().map(|t| t.to_string()).unwrap_or_default()),
                Cell::from(outcome).style(style),
            ];
            if wide {
                cells.push(Cell::from(a.detail.clone()));
            }
            let style = if i == p.selected {
                Style::new().reversed()
            } else {
                Style::new()
            };
            Row::new(cells).style(style)
        });
    let mut head = vec![
        ("Time", false),
        ("User", false),
        ("Action", false),
        ("Tenant", false),
        ("Outcome", false),
    ];
    let mut widths = vec![
        Constraint::Length(16),
        Constraint::Length(10),
        Constraint::Length(14),
        Constraint::Length(6),
        Constraint::Fill(1),
    ];
    if wide {
        head.push(("Detail", false));
        widths.push(Constraint::Fill(2));
    }
    frame.render_widget(
        Table::new(rows, widths)
            .header(header_row(&head))
            .block(block)
            .column_spacing(1),
        table,
    );
    // Narrow screens show the selected entry's detail under the table.
    if let (false, Some(a)) = (wide, p.audit.get(p.selected)) {
        frame.render_widget(
            Paragraph::new(Line::from(format!("#{} {}", a.seq, a.detail)))
                .wrap(Wrap { trim: true })
                .style(dim()),
            detail,
        );
    }
}

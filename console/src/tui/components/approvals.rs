//! Approvals: proposals of brand material with their diff, or a preview
//! for a sample customer.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;
use touchpoint_common::protocol::{Preview, ProposalDetail, ProposalStatus};

use crate::format;
use crate::tui::app::AppState;
use crate::tui::widgets::{dim, header_row, page_top, pane, WIDE};

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState) {
    let a = &state.approvals;
    let list_rows = (a.list.len() as u16 + 2).clamp(3, if area.height > 30 { 12 } else { 7 });
    let (list, detail) = if area.width >= WIDE {
        let [l, d] = Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)])
            .spacing(2)
            .areas(area);
        (l, d)
    } else {
        let [l, d] =
            Layout::vertical([Constraint::Length(list_rows), Constraint::Min(0)]).areas(area);
        (l, d)
    };
    draw_list(frame, list, state);
    if a.show_preview {
        draw_preview(frame, detail, state);
    } else {
        draw_diff(frame, detail, state);
    }
}

fn status_cell(s: &ProposalStatus) -> Cell<'static> {
    match s {
        ProposalStatus::Pending => Cell::from("pending").yellow().bold(),
        ProposalStatus::Approved { version, .. } => Cell::from(format!("v{version}")).green(),
        ProposalStatus::Rejected { .. } => Cell::from("rejected").red(),
    }
}

fn draw_list(frame: &mut Frame, area: Rect, state: &AppState) {
    let a = &state.approvals;
    let which = if a.all { "all" } else { "pending" };
    let block = pane(format!(" Proposals, {which} ({}) ", a.list.len()), true);
    if a.list.is_empty() {
        let text = if a.all {
            "No proposals yet."
        } else {
            "Nothing waits for approval. A shows decided ones too."
        };
        frame.render_widget(Paragraph::new(text).block(block), area);
        return;
    }
    let visible = usize::from(area.height.saturating_sub(2)).max(1);
    let top = page_top(a.selected, visible);
    let rows = a
        .list
        .iter()
        .enumerate()
        .skip(top)
        .take(visible)
        .map(|(i, p)| {
            let style = if i == a.selected {
                Style::new().reversed()
            } else {
                Style::new()
            };
            Row::new(vec![
                Cell::from(format!("#{}", p.id)),
                Cell::from(p.template.clone()),
                Cell::from(p.author.clone()),
                Cell::from(format::time_short(p.created_at)),
                status_cell(&p.status),
                Cell::from(p.comment.clone()).style(dim()),
            ])
            .style(style)
        });
    let widths = [
        Constraint::Length(4),
        Constraint::Length(18),
        Constraint::Length(10),
        Constraint::Length(16),
        Constraint::Length(8),
        Constraint::Fill(1),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(header_row(&[
                ("#", false),
                ("Template", false),
                ("Author", false),
                ("Proposed", false),
                ("Status", false),
                ("Comment", false),
            ]))
            .block(block)
            .column_spacing(1),
        area,
    );
}

/// A unified diff line by line: additions green, removals red, hunks cyan.
pub fn diff_lines(diff: &str) -> Vec<Line<'static>> {
    diff.lines()
        .map(|l| {
            let style = if l.starts_with("+++") || l.starts_with("---") {
                Style::new().bold()
            } else if l.starts_with('+') {
                Style::new().green()
            } else if l.starts_with('-') {
                Style::new().red()
            } else if l.starts_with("@@") {
                Style::new().cyan()
            } else {
                Style::new()
            };
            Line::from(format::visible(l).into_owned()).style(style)
        })
        .collect()
}

fn detail_header(d: &ProposalDetail) -> Vec<Line<'static>> {
    let p = &d.proposal;
    let base = match (p.base_version, p.rollback_to) {
        (0, _) => "a new template".to_string(),
        (b, Some(to)) => format!("v{b}, back to the text of v{to}"),
        (b, None) => format!("v{b}"),
    };
    let mut lines = vec![Line::from(vec![
        Span::from(format!("{} ", p.template)).bold(),
        Span::from(format!("from {base}, in force now v{}", d.current_version)),
    ])];
    lines.push(Line::from(format!("by {} · {}", p.author, p.comment)).style(dim()));
    if let ProposalStatus::Approved { by, comment, .. }
    | ProposalStatus::Rejected { by, comment, .. } = &p.status
    {
        lines.push(Line::from(format!(
            "{} by {by}: {comment}",
            format::proposal_status(&p.status)
        )));
    }
    lines.push(Line::from(""));
    lines
}

fn draw_diff(frame: &mut Frame, area: Rect, state: &AppState) {
    let a = &state.approvals;
    let block = pane(" Diff (p: preview) ".into(), false);
    let Some(d) = a.current_detail() else {
        let text = if a.list.is_empty() { "" } else { "loading…" };
        frame.render_widget(Paragraph::new(text).style(dim()).block(block), area);
        return;
    };
    let mut lines = detail_header(d);
    lines.extend(diff_lines(&d.diff));
    frame.render_widget(
        Paragraph::new(Text::from(lines))
            .block(block)
            .scroll((a.scroll, 0)),
        area,
    );
}

fn preview_lines(p: &Preview) -> Vec<Line<'static>> {
    let mut lines = vec![
        Line::from(format!("for customer {} of {}", p.customer, p.tenant)).style(dim()),
        Line::from(vec![
            Span::from("Subject: ").bold(),
            Span::from(p.subject.clone()),
        ]),
        Line::from(""),
    ];
    lines.extend(p.text.lines().map(|l| Line::from(l.to_string())));
    if !p.letter.is_empty() {
        lines.push(Line::from(""));
        lines.push(Line::from("Letter").bold().underlined());
        lines.extend(p.letter.lines().map(|l| Line::from(l.to_string())));
    }
    lines
}

fn draw_preview(frame: &mut Frame, area: Rect, state: &AppState) {
    let a = &state.approvals;
    let block = pane(" Preview (p: diff) ".into(), false);
    match a.current_preview() {
        Some(p) => frame.render_widget(
            Paragraph::new(Text::from(preview_lines(p)))
                .block(block)
                .wrap(Wrap { trim: false })
                .scroll((a.scroll, 0)),
            area,
        ),
        None => frame.render_widget(Paragraph::new("rendering…").style(dim()).block(block), area),
    }
}

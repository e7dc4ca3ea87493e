//! Policies and audit: the files in force with their validation state, and
//! the audit log, filtered by the daemon.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;
use touchpoint_common::protocol::{AuditEntry, AuditOutcome, Changes, PolicyStatus, Topic};

use super::{move_selection, replace, Cmd, Screen};
use crate::format;
use crate::tui::action::Action;
use crate::tui::msg::Fetch;
use crate::tui::popup::{Input, InputPurpose, Overlay};
use crate::tui::widgets::{dim, header_row, page_top, pane, WIDE};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoliciesView {
    pub audit: Vec<AuditEntry>,
    pub audit_filter: String,
    pub selected: usize,
}

/// Audit entries the policies view asks for.
pub const AUDIT_LIMIT: u32 = 500;

impl PoliciesView {
    /// Asks for everything the view shows of its own; the policy state
    /// comes with the daemon's status, which the app asks for.
    pub fn fetch(&self, out: &mut Vec<Cmd>) {
        let text = self.audit_filter.clone();
        out.push(Cmd::Fetch(Fetch::Audit {
            text,
            limit: AUDIT_LIMIT,
        }));
    }

    /// A user action while the policies are on screen.
    pub fn update(&mut self, action: Action, screen: Screen, out: &mut Vec<Cmd>) {
        let page = screen.page_rows;
        match action {
            a if a.is_move() => {
                move_selection(&mut self.selected, self.audit.len(), action, page);
            }
            Action::Filter => {
                let text = self.audit_filter.clone();
                out.push(Cmd::Open(Overlay::Input(Input::new(
                    InputPurpose::AuditFilter,
                    text,
                ))));
            }
            Action::Back => self.set_audit_filter(String::new(), out),
            _ => {}
        }
    }

    /// Enter in the filter popup.
    pub fn submit(&mut self, input: Input, out: &mut Vec<Cmd>) {
        self.set_audit_filter(input.text.trim().to_string(), out);
    }

    fn set_audit_filter(&mut self, text: String, out: &mut Vec<Cmd>) {
        if self.audit_filter == text {
            return;
        }
        self.audit_filter = text.clone();
        self.selected = 0;
        out.push(Cmd::Fetch(Fetch::Audit {
            text,
            limit: AUDIT_LIMIT,
        }));
    }

    /// The daemon says something changed: read the audit log again when it grew.
    pub fn on_changed(&self, c: &Changes, out: &mut Vec<Cmd>) {
        if c.topics.contains(&Topic::Audit) {
            self.fetch(out);
        }
    }

    /// Audit entries came; returns whether the screen must be redrawn. An
    /// answer for another filter than the one in force is dropped.
    pub fn on_audit(&mut self, text: String, entries: Vec<AuditEntry>) -> bool {
        if text != self.audit_filter {
            return false;
        }
        self.selected = self.selected.min(entries.len().saturating_sub(1));
        replace(&mut self.audit, entries)
    }
}

// ---- drawing ----

impl PoliciesView {
    /// Paints the view into `area`: the policy state the daemon reported
    /// (`None` before its status came), then the audit log; changes nothing.
    pub fn draw(&self, frame: &mut Frame, area: Rect, policy: Option<&PolicyStatus>) {
        let policy_lines = policy
            .map(policy_lines)
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
        draw_audit(frame, bottom, self);
    }
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

fn draw_audit(frame: &mut Frame, area: Rect, p: &PoliciesView) {
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
                AuditOutcome::Partial(why) => (format!("partly: {why}"), Style::new().yellow()),
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

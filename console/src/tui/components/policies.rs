//! Policies and audit: the files in force with their validation state, the
//! learned lead times and send slots in force with their evidence (for a
//! role that may read pooled data), and the audit log, filtered by the
//! daemon.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;
use touchpoint_common::learning::LearnedState;
use touchpoint_common::protocol::{
    AuditEntry, AuditOutcome, Changes, PolicyStatus, Request, Role, Topic,
};

use super::{move_selection, replace, Cmd, Screen};
use crate::format;
use crate::tui::action::Action;
use crate::tui::hits::Hits;
use crate::tui::msg::Fetch;
use crate::tui::popup::{Input, InputPurpose, Overlay};
use crate::tui::widgets::{dim, header_row, page_top, pane, WIDE};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoliciesView {
    pub audit: Vec<AuditEntry>,
    pub audit_filter: String,
    pub selected: usize,
    /// The learned values in force; `None` before they came, or for a
    /// role that may not read them.
    pub learned: Option<LearnedState>,
    /// Whether the role may read the learned values.
    pub may_learn: bool,
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
        if self.may_learn {
            out.push(Cmd::Fetch(Fetch::Learning));
        }
    }

    /// Follows the caller's role: the learned values are pooled data.
    pub fn set_role(&mut self, role: Role) {
        self.may_learn = role.allows(&Request::Learning { service: None });
        if !self.may_learn {
            self.learned = None;
        }
    }

    /// The learned values came; returns whether to redraw.
    pub fn on_learning(&mut self, state: LearnedState) -> bool {
        replace(&mut self.learned, Some(state))
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
        // A learned value's change, a freeze and a reset are audited.
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
    /// Records the audit log's rows in `hits`.
    pub fn draw(
        &self,
        frame: &mut Frame,
        area: Rect,
        policy: Option<&PolicyStatus>,
        hits: &mut Hits,
    ) {
        let mut policy_lines = policy
            .map(policy_lines)
            .unwrap_or_else(|| vec![Line::from("loading…").style(dim())]);
        policy_lines.extend(learned_lines(self));
        let height = (policy_lines.len() as u16 + 1).min(area.height / 2).max(3);
        let [top, bottom] =
            Layout::vertical([Constraint::Length(height), Constraint::Min(0)]).areas(area);
        frame.render_widget(
            Paragraph::new(Text::from(policy_lines))
                .block(pane(" Policies in force ".into(), false))
                .wrap(Wrap { trim: false }),
            top,
        );
        draw_audit(frame, bottom, self, hits);
    }
}

fn policy_lines(p: &PolicyStatus) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(vec![
        Span::from(format!("{} ", p.dir)).bold(),
        Span::from(format!("version {} ", format::fingerprint(p.version))),
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

/// One line per learning service and channel: the lead and slot in force,
/// where they come from and the evidence (the words of the planner's why).
fn learned_lines(p: &PoliciesView) -> Vec<Line<'static>> {
    if !p.may_learn {
        return Vec::new();
    }
    let Some(state) = &p.learned else {
        return vec![Line::from("learned values: loading…").style(dim())];
    };
    if state.services.is_empty() {
        return vec![Line::from("learned values: no service learns").style(dim())];
    }
    let mut lines = vec![Line::from(format!("Learned values, version {}", state.version)).bold()];
    for s in &state.services {
        lines.push(Line::from(format::learned_line(s)));
    }
    lines
}

fn draw_audit(frame: &mut Frame, area: Rect, p: &PoliciesView, hits: &mut Hits) {
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
    hits.list_pane = Some(area);
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
    hits.table(
        table,
        block.inner(table),
        top,
        p.audit.len().saturating_sub(top),
    );
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

#[cfg(test)]
mod tests {
    use touchpoint_common::domain::Channel;
    use touchpoint_common::learning::{Choice, LearnedService, Source};

    use super::*;

    fn state() -> LearnedState {
        LearnedState {
            version: 3,
            services: vec![LearnedService {
                service: "service_due".into(),
                channel: Channel::Email,
                policy_lead: 21,
                lead: Choice {
                    value: 21,
                    source: Source::Policy,
                    arms: Vec::new(),
                    version: 1,
                },
                slot: Choice {
                    value: None,
                    source: Source::Policy,
                    arms: Vec::new(),
                    version: 1,
                },
                dealers: 2,
                min_dealers: 5,
                sent: 0,
                explore_percent: 10,
                incremental: None,
                value_cents: 3800,
                frozen: false,
            }],
            ..LearnedState::default()
        }
    }

    fn text(lines: &[Line]) -> Vec<String> {
        lines.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_learned_values_show_for_a_role_that_may_read_pooled_data_only() {
        let mut v = PoliciesView::default();
        v.set_role(Role::Admin);
        let mut out = Vec::new();
        v.fetch(&mut out);
        assert!(out.contains(&Cmd::Fetch(Fetch::Learning)), "{out:?}");
        assert!(v.on_learning(state()));
        assert_eq!(
            text(&learned_lines(&v)),
            [
                "Learned values, version 3",
                "service_due email: lead time: 21 days (policy; learning has fewer than 5 dealers); send time: the policy's window",
            ]
        );

        v.set_role(Role::Operator);
        let mut out = Vec::new();
        v.fetch(&mut out);
        assert!(!out.contains(&Cmd::Fetch(Fetch::Learning)), "{out:?}");
        assert!(learned_lines(&v).is_empty());
    }
}

//! Approvals: proposals of brand material with their diff, or a preview
//! for a sample customer; approving asks for a comment, rejecting for a
//! reason, and both for a confirmation.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;
use touchpoint_common::protocol::{
    Changes, Preview, Proposal, ProposalDetail, ProposalStatus, Topic,
};

use super::{move_selection, replace, scroll, Cmd, Screen};
use crate::format;
use crate::tui::action::Action;
use crate::tui::hits::Hits;
use crate::tui::msg::{Act, Fetch};
use crate::tui::popup::{Confirm, Input, InputPurpose, Overlay};
use crate::tui::widgets::{dim, header_row, page_top, pane, scrolled, WIDE};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApprovalsView {
    pub all: bool,
    pub list: Vec<Proposal>,
    pub selected: usize,
    pub detail: Option<ProposalDetail>,
    pub preview: Option<Preview>,
    /// Show the preview instead of the diff.
    pub show_preview: bool,
    pub scroll: u16,
    /// The furthest the detail can scroll, as the last draw found it
    /// (wrapped lines less the pane's height): scrolling stops there.
    pub scroll_max: std::cell::Cell<u16>,
}

impl ApprovalsView {
    pub fn selected_proposal(&self) -> Option<&Proposal> {
        self.list.get(self.selected)
    }

    pub fn current_detail(&self) -> Option<&ProposalDetail> {
        let id = self.selected_proposal()?.id;
        self.detail.as_ref().filter(|d| d.proposal.id == id)
    }

    pub fn current_preview(&self) -> Option<&Preview> {
        let id = self.selected_proposal()?.id;
        self.preview.as_ref().filter(|p| p.proposal == id)
    }

    /// Asks for everything the view shows.
    pub fn fetch(&self, out: &mut Vec<Cmd>) {
        let all = self.all;
        out.push(Cmd::Fetch(Fetch::Proposals { all }));
        self.fetch_proposal(out);
    }

    fn fetch_proposal(&self, out: &mut Vec<Cmd>) {
        if let Some(id) = self.selected_proposal().map(|p| p.id) {
            let preview = self.show_preview;
            out.push(Cmd::Fetch(Fetch::Proposal(id)));
            if preview {
                out.push(Cmd::Preview(id));
            }
        }
    }

    /// A user action while the approvals are on screen.
    pub fn update(&mut self, action: Action, screen: Screen, out: &mut Vec<Cmd>) {
        let page = screen.page_rows;
        match action {
            a if a.is_move() => {
                let moved = move_selection(&mut self.selected, self.list.len(), action, page);
                if moved {
                    self.scroll = 0;
                    self.fetch_proposal(out);
                }
            }
            Action::DetailDown | Action::DetailUp => {
                scroll(&mut self.scroll, action);
                self.scroll = self.scroll.min(self.scroll_max.get());
            }
            Action::Preview => {
                self.show_preview = !self.show_preview;
                self.scroll = 0;
                if self.show_preview {
                    if let Some(id) = self.selected_proposal().map(|p| p.id) {
                        out.push(Cmd::Preview(id));
                    }
                }
            }
            Action::ToggleAll => {
                self.all = !self.all;
                self.selected = 0;
                let all = self.all;
                out.push(Cmd::Fetch(Fetch::Proposals { all }));
            }
            Action::Back => self.show_preview = false,
            Action::Approve | Action::Reject => {
                let Some(p) = self.selected_proposal() else {
                    out.push(Cmd::Notice {
                        text: "no proposal selected".into(),
                        error: true,
                    });
                    return;
                };
                if !matches!(p.status, ProposalStatus::Pending) {
                    out.push(Cmd::Notice {
                        text: format!("proposal #{} is already decided", p.id),
                        error: true,
                    });
                    return;
                }
                let purpose = if action == Action::Approve {
                    InputPurpose::ApproveComment { id: p.id }
                } else {
                    InputPurpose::RejectComment { id: p.id }
                };
                out.push(Cmd::Open(Overlay::Input(Input::new(
                    purpose,
                    String::new(),
                ))));
            }
            _ => {}
        }
    }

    /// Enter in the comment popup: the decision goes to a confirmation. A
    /// rejection without a reason stays open.
    pub fn submit(&self, mut input: Input, out: &mut Vec<Cmd>) {
        match input.purpose.clone() {
            InputPurpose::ApproveComment { id } => {
                let comment = input.text.trim().to_string();
                let template = self.proposal_name(id);
                out.push(Cmd::Open(Overlay::Confirm(Confirm {
                    title: format!("Approve proposal #{id}"),
                    lines: vec![
                        format!("{template} becomes the version in force at once:"),
                        "rendered unsent messages are re-rendered with it.".into(),
                        format!(
                            "Comment: {}",
                            if comment.is_empty() {
                                "(none)"
                            } else {
                                &comment
                            }
                        ),
                    ],
                    act: Act::Approve { id, comment },
                })));
            }
            InputPurpose::RejectComment { id } => {
                let comment = input.text.trim().to_string();
                if comment.is_empty() {
                    input.error = Some("say why: the author reads it".into());
                    out.push(Cmd::Open(Overlay::Input(input)));
                    return;
                }
                let template = self.proposal_name(id);
                out.push(Cmd::Open(Overlay::Confirm(Confirm {
                    title: format!("Reject proposal #{id}"),
                    lines: vec![
                        format!("{template} stays as it is."),
                        format!("Reason: {comment}"),
                    ],
                    act: Act::Reject { id, comment },
                })));
            }
            // Not a comment: the app routes only comments here.
            InputPurpose::QueueFilter | InputPurpose::AuditFilter => {}
        }
    }

    fn proposal_name(&self, id: u64) -> String {
        self.list
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.template.clone())
            .unwrap_or_else(|| format!("proposal #{id}"))
    }

    /// The daemon says something changed: read again when it is about
    /// approvals.
    pub fn on_changed(&self, c: &Changes, out: &mut Vec<Cmd>) {
        if c.topics.contains(&Topic::Approvals) {
            self.fetch(out);
        }
    }

    /// The selected proposal's diff came.
    pub fn on_detail(&mut self, detail: ProposalDetail) -> bool {
        replace(&mut self.detail, Some(detail))
    }

    /// A preview came.
    pub fn on_preview(&mut self, preview: Preview) -> bool {
        replace(&mut self.preview, Some(preview))
    }

    /// The proposals came; returns whether the screen must be redrawn.
    pub fn on_list(&mut self, list: Vec<Proposal>, out: &mut Vec<Cmd>) -> bool {
        if self.list == list {
            return false;
        }
        let selected_id = self.selected_proposal().map(|p| p.id);
        self.list = list;
        self.selected = selected_id
            .and_then(|id| self.list.iter().position(|p| p.id == id))
            .unwrap_or(self.selected)
            .min(self.list.len().saturating_sub(1));
        if self.current_detail().is_none() {
            self.fetch_proposal(out);
        }
        true
    }
}

// ---- drawing ----

impl ApprovalsView {
    /// Paints the view into `area`; changes nothing; records the list's
    /// rows and the diff's (or preview's) pane in `hits`.
    pub fn draw(&self, frame: &mut Frame, area: Rect, hits: &mut Hits) {
        let list_rows =
            (self.list.len() as u16 + 2).clamp(3, if area.height > 30 { 12 } else { 7 });
        let (list, detail) = if area.width >= WIDE {
            let [l, d] =
                Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)])
                    .spacing(2)
                    .areas(area);
            (l, d)
        } else {
            let [l, d] =
                Layout::vertical([Constraint::Length(list_rows), Constraint::Min(0)]).areas(area);
            (l, d)
        };
        draw_list(frame, list, self, hits);
        hits.detail = Some(detail);
        if self.show_preview {
            draw_preview(frame, detail, self);
        } else {
            draw_diff(frame, detail, self);
        }
    }
}

fn status_cell(s: &ProposalStatus) -> Cell<'static> {
    match s {
        ProposalStatus::Pending => Cell::from("pending").yellow().bold(),
        ProposalStatus::Approved { version, .. } => Cell::from(format!("v{version}")).green(),
        ProposalStatus::Rejected { .. } => Cell::from("rejected").red(),
    }
}

fn draw_list(frame: &mut Frame, area: Rect, a: &ApprovalsView, hits: &mut Hits) {
    let which = if a.all { "all" } else { "pending" };
    let block = pane(format!(" Proposals, {which} ({}) ", a.list.len()), true);
    hits.list_pane = Some(area);
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
    hits.table(
        area,
        block.inner(area),
        top,
        a.list.len().saturating_sub(top),
    );
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
/// A removed line followed by its replacement (the i-th of a run of
/// removals with the i-th of the additions after it) marks the words that
/// changed in reverse video, so a one-word change in a long line is seen
/// at once, with or without colour.
pub fn diff_lines(diff: &str) -> Vec<Line<'static>> {
    let lines: Vec<&str> = diff.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    // `---`/`+++` are headers only before the first hunk: after it, a
    // removed `-- ` signature line is a removal like any other.
    let first_hunk = lines
        .iter()
        .position(|l| l.starts_with("@@"))
        .unwrap_or(lines.len());
    for l in &lines[..first_hunk] {
        out.push(plain_diff_line(l, true));
    }
    let lines = &lines[first_hunk..];
    let run =
        |from: usize, f: fn(&str) -> bool| from + lines[from..].iter().take_while(|l| f(l)).count();
    let mut i = 0;
    while i < lines.len() {
        if !removed(lines[i]) {
            out.push(plain_diff_line(lines[i], false));
            i += 1;
            continue;
        }
        let dels_end = run(i, removed);
        let adds_end = run(dels_end, added);
        let (dels, adds) = (&lines[i..dels_end], &lines[dels_end..adds_end]);
        for (k, d) in dels.iter().enumerate() {
            out.push(match adds.get(k) {
                Some(a) => changed_words(d, a, false),
                None => plain_diff_line(d, false),
            });
        }
        for (k, a) in adds.iter().enumerate() {
            out.push(match dels.get(k) {
                Some(d) => changed_words(d, a, true),
                None => plain_diff_line(a, false),
            });
        }
        i = adds_end;
    }
    out
}

fn removed(l: &str) -> bool {
    l.starts_with('-')
}

fn added(l: &str) -> bool {
    l.starts_with('+')
}

/// One line as its kind colours it; `header`: before the first hunk.
fn plain_diff_line(l: &str, header: bool) -> Line<'static> {
    let style = if header && (l.starts_with("+++") || l.starts_with("---")) {
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
}

/// One side of a changed line (`new`: the addition), its changed words
/// reversed.
fn changed_words(old: &str, new_line: &str, new: bool) -> Line<'static> {
    use similar::{ChangeTag, TextDiff};
    let (marker, style) = if new {
        ("+", Style::new().green())
    } else {
        ("-", Style::new().red())
    };
    let words = TextDiff::from_words(&old[1..], &new_line[1..]);
    let mut spans = vec![Span::from(marker)];
    for c in words.iter_all_changes() {
        let text = format::visible(c.value()).into_owned();
        match (c.tag(), new) {
            (ChangeTag::Equal, _) => spans.push(Span::from(text)),
            (ChangeTag::Insert, true) | (ChangeTag::Delete, false) => {
                spans.push(Span::from(text).reversed())
            }
            _ => {}
        }
    }
    Line::from(spans).style(style)
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
    if let ProposalStatus::Approved { comment, .. } | ProposalStatus::Rejected { comment, .. } =
        &p.status
    {
        // The status names who decided: said once.
        lines.push(Line::from(format!(
            "{}: {comment}",
            format::proposal_status(&p.status)
        )));
    }
    lines.push(Line::from(""));
    lines
}

fn draw_diff(frame: &mut Frame, area: Rect, a: &ApprovalsView) {
    let block = pane(" Diff (p: preview) ".into(), false);
    let Some(d) = a.current_detail() else {
        let text = if a.list.is_empty() { "" } else { "loading…" };
        frame.render_widget(Paragraph::new(text).style(dim()).block(block), area);
        return;
    };
    let mut lines = detail_header(d);
    lines.extend(diff_lines(&d.diff));
    // Wrapped, not cut: at 80 columns a change at the end of a long line
    // must still be seen (a wrapped line keeps its colour).
    scrolled(
        frame,
        area,
        Paragraph::new(Text::from(lines))
            .block(block)
            .wrap(Wrap { trim: false }),
        a.scroll,
        &a.scroll_max,
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

fn draw_preview(frame: &mut Frame, area: Rect, a: &ApprovalsView) {
    let block = pane(" Preview (p: diff) ".into(), false);
    match a.current_preview() {
        Some(p) => scrolled(
            frame,
            area,
            Paragraph::new(Text::from(preview_lines(p)))
                .block(block)
                .wrap(Wrap { trim: false }),
            a.scroll,
            &a.scroll_max,
        ),
        None => frame.render_widget(Paragraph::new("rendering…").style(dim()).block(block), area),
    }
}

#[cfg(test)]
mod tests {
    use ratatui::backend::TestBackend;
    use ratatui::style::Modifier;
    use ratatui::Terminal;

    use super::*;
    use crate::tui::harness::buffer_text;

    const DIFF: &str = "--- service_due v3\n+++ service_due proposed\n@@ -1,3 +1,3 @@\n \
        subject = \"Ihr Service\"\n\
        -text = \"Guten Tag {{ c.name }}, Ihr Fahrzeug hat eine Pause verdient: vereinbaren Sie einen Termin in unserer Werkstatt.\"\n\
        +text = \"Guten Tag {{ c.name }}, Ihr Fahrzeug hat eine gründliche Pflege verdient: vereinbaren Sie einen Termin in unserer Werkstatt.\"\n\
        -html = \"\"\n";

    fn reversed(l: &Line<'_>) -> Vec<String> {
        l.spans
            .iter()
            .filter(|s| s.style.add_modifier.contains(Modifier::REVERSED))
            .map(|s| s.content.to_string())
            .collect()
    }

    #[test]
    fn a_changed_line_marks_its_changed_words_on_both_sides() {
        let lines = diff_lines(DIFF);
        assert_eq!(lines.len(), 7);
        // The i-th removal against the i-th addition: only the words.
        assert_eq!(reversed(&lines[4]), ["Pause"]);
        assert_eq!(reversed(&lines[5]), ["gründliche", " ", "Pflege"]);
        assert_eq!(lines[4].style.fg, Some(ratatui::style::Color::Red));
        assert_eq!(lines[5].style.fg, Some(ratatui::style::Color::Green));
        // A removal without a partner, headers and context: whole lines.
        for i in [0, 1, 2, 3, 6] {
            assert!(reversed(&lines[i]).is_empty(), "line {i}");
        }
        let text = |l: &Line<'_>| {
            l.spans
                .iter()
                .map(|s| s.content.as_ref())
                .collect::<String>()
        };
        assert_eq!(text(&lines[5]), DIFF.lines().nth(5).expect("line"));
    }

    /// After the first hunk a removed `-- ` signature separator is a
    /// removal (red), not a header.
    #[test]
    fn a_removed_signature_separator_is_a_removal_not_a_header() {
        let lines = diff_lines("--- a v1\n+++ a proposed\n@@ -1,2 +1,1 @@\n--- \n Gruß\n");
        assert_eq!(lines[0].style.add_modifier, Modifier::BOLD);
        assert_eq!(lines[3].style.fg, Some(ratatui::style::Color::Red));
        assert!(!lines[3].style.add_modifier.contains(Modifier::BOLD));
    }

    /// A pending proposal of `DIFF`, selected with its detail.
    fn with_diff() -> ApprovalsView {
        let proposal = Proposal {
            id: 7,
            template: "service_due".into(),
            text: String::new(),
            base_version: 3,
            rollback_to: None,
            author: "Jürgen Köhler".into(),
            author_uid: 1001,
            comment: "Freundlicher".into(),
            created_at: crate::fixtures::ts(0),
            status: ProposalStatus::Pending,
        };
        ApprovalsView {
            list: vec![proposal.clone()],
            detail: Some(ProposalDetail {
                proposal,
                diff: DIFF.into(),
                current_version: 3,
            }),
            ..ApprovalsView::default()
        }
    }

    #[test]
    fn at_80_columns_the_end_of_a_long_changed_line_is_seen() {
        let view = with_diff();
        let mut t = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
        t.draw(|f| draw_diff(f, f.area(), &view)).expect("draw");
        let screen = buffer_text(t.backend().buffer());
        let joined: String = screen.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(joined.contains("in unserer Werkstatt.\""), "{screen}");
        assert_eq!(joined.matches("Werkstatt").count(), 2, "{screen}");
    }

    /// `J` stops where the diff ends: the pane never scrolls into blank.
    #[test]
    fn the_diff_scrolls_no_further_than_its_end() {
        let mut view = with_diff();
        let mut t = Terminal::new(TestBackend::new(60, 12)).expect("terminal");
        t.draw(|f| draw_diff(f, f.area(), &view)).expect("draw");
        let max = view.scroll_max.get();
        assert!(max > 0, "the diff is longer than 10 lines");
        let screen = Screen {
            width: 60,
            page_rows: 10,
        };
        for _ in 0..200 {
            view.update(Action::DetailDown, screen, &mut Vec::new());
        }
        assert_eq!(view.scroll, max);
        t.draw(|f| draw_diff(f, f.area(), &view)).expect("draw");
        let last = buffer_text(t.backend().buffer());
        let rows: Vec<&str> = last.lines().collect();
        // The last row inside the border holds text.
        assert!(
            !rows[rows.len() - 2].trim_matches(['│', ' ']).is_empty(),
            "{last}"
        );
    }
}

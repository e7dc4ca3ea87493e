//! The popups over a view: a one-line text [`Input`], a y/n [`Confirm`]ation
//! before anything is sent, a command's [`Output`] and the `?` help
//! generated from the keymap.
//! Each owns its state, its editing and its drawing; which one is open is
//! the app's [`Overlay`].

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Stylize;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table};
use ratatui::Frame;

use super::action::{Action, View};
use super::keymap::{bindings_for, keys_label, Binding};
use super::msg::Act;
use super::widgets::{alert_lines, dim, draw_popup, popup_area};
use touchpoint_common::protocol::Alert;

/// What a line of text typed into the input popup is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputPurpose {
    QueueFilter,
    AuditFilter,
    ApproveComment { id: u64 },
    RejectComment { id: u64 },
}

impl InputPurpose {
    pub fn title(&self) -> String {
        match self {
            InputPurpose::QueueFilter => "Filter the queue".into(),
            InputPurpose::AuditFilter => "Filter the audit log".into(),
            InputPurpose::ApproveComment { id } => format!("Approve proposal #{id}: comment"),
            InputPurpose::RejectComment { id } => format!("Reject proposal #{id}: reason"),
        }
    }

    pub fn help(&self) -> &'static str {
        match self {
            InputPurpose::QueueFilter => {
                "status:held,failed channel:email tenant:d001 service:x date:2026-11-01..2026-11-30 text"
            }
            InputPurpose::AuditFilter => "text in user, action, tenant, detail or outcome",
            InputPurpose::ApproveComment { .. } => "optional; Enter to go on, Esc to cancel",
            InputPurpose::RejectComment { .. } => "required; Enter to go on, Esc to cancel",
        }
    }
}

/// A one-line text input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    pub purpose: InputPurpose,
    pub text: String,
    /// Cursor position in characters.
    pub cursor: usize,
    pub error: Option<String>,
}

impl Input {
    pub fn new(purpose: InputPurpose, text: String) -> Self {
        let cursor = text.chars().count();
        Self {
            purpose,
            text,
            cursor,
            error: None,
        }
    }

    /// Edits the text; false when the key is not an editing key.
    pub fn edit(&mut self, key: &KeyEvent) -> bool {
        if !edit_line(&mut self.text, &mut self.cursor, key) {
            return false;
        }
        self.error = None;
        true
    }

    /// Draws the input; returns the area it covers.
    pub fn draw(&self, frame: &mut Frame, area: Rect) -> Rect {
        let mut prompt = vec![Span::from("› ").bold()];
        prompt.extend(with_cursor(&self.text, self.cursor));
        let mut lines = vec![
            Line::from(prompt),
            Line::from(self.purpose.help()).style(dim()),
        ];
        if let Some(e) = &self.error {
            lines.push(Line::from(e.clone()).red().bold());
        }
        lines.push(Line::from("Enter apply · Esc cancel · Ctrl-u clear").style(dim()));
        draw_popup(frame, area, &self.purpose.title(), Text::from(lines), 90)
    }
}

/// Edits a line of text at `cursor` (in characters) by a key: characters,
/// Backspace, Delete, ←/→, Home/End, Ctrl-a/e (start, end), Ctrl-u
/// (clear), Ctrl-w (the word before the cursor). False when the key is not
/// an editing key.
pub fn edit_line(text: &mut String, cursor: &mut usize, key: &KeyEvent) -> bool {
    let byte_at = |text: &str, chars: usize| {
        text.char_indices()
            .nth(chars)
            .map(|(i, _)| i)
            .unwrap_or(text.len())
    };
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let len = text.chars().count();
    match key.code {
        KeyCode::Char('u') if ctrl => {
            text.clear();
            *cursor = 0;
        }
        KeyCode::Char('a') if ctrl => *cursor = 0,
        KeyCode::Char('e') if ctrl => *cursor = len,
        KeyCode::Char('w') if ctrl => {
            let end = byte_at(text, *cursor);
            let head = text[..end].trim_end();
            let start = head.rfind(' ').map(|i| i + 1).unwrap_or(0);
            *cursor = text[..start].chars().count();
            text.replace_range(start..end, "");
        }
        KeyCode::Char(c) if !ctrl => {
            let at = byte_at(text, *cursor);
            text.insert(at, c);
            *cursor += 1;
        }
        KeyCode::Backspace if *cursor > 0 => {
            *cursor -= 1;
            let at = byte_at(text, *cursor);
            text.remove(at);
        }
        KeyCode::Delete if *cursor < len => {
            let at = byte_at(text, *cursor);
            text.remove(at);
        }
        KeyCode::Left => *cursor = cursor.saturating_sub(1),
        KeyCode::Right => *cursor = (*cursor + 1).min(len),
        KeyCode::Home => *cursor = 0,
        KeyCode::End => *cursor = len,
        KeyCode::Backspace | KeyCode::Delete => {}
        _ => return false,
    }
    true
}

/// A line being edited, the character under the cursor reversed.
pub fn with_cursor(text: &str, cursor: usize) -> Vec<Span<'static>> {
    let chars: Vec<char> = text.chars().collect();
    let before: String = chars[..cursor.min(chars.len())].iter().collect();
    let at: String = chars
        .get(cursor)
        .map(|c| c.to_string())
        .unwrap_or_else(|| " ".into());
    let after: String = chars
        .get(cursor + 1..)
        .map(|s| s.iter().collect())
        .unwrap_or_default();
    vec![
        Span::from(before),
        Span::from(at).reversed(),
        Span::from(after),
    ]
}

/// A question the user answers with y or n before anything is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirm {
    pub title: String,
    pub lines: Vec<String>,
    pub act: Act,
}

impl Confirm {
    /// Draws the question; returns the area it covers.
    pub fn draw(&self, frame: &mut Frame, area: Rect) -> Rect {
        let mut text: Vec<Line> = self.lines.iter().map(|l| Line::from(l.clone())).collect();
        text.push(Line::from(""));
        text.push(Line::from(vec![
            Span::from(" y ").reversed().bold(),
            Span::from(" confirm   "),
            Span::from(" n ").reversed(),
            Span::from(" / Esc cancel"),
        ]));
        draw_popup(frame, area, &self.title, Text::from(text), 64)
    }
}

/// Every alert of the overview, pauses first as the daemon orders them,
/// wrapped to the popup's width; `top` is the first line shown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertsList {
    pub top: usize,
}

impl AlertsList {
    /// The widest the popup gets.
    const MAX_WIDTH: u16 = 110;

    /// The popup's width on a screen `width` columns wide.
    fn width(width: u16) -> u16 {
        Self::MAX_WIDTH.min(width.saturating_sub(2)).max(10)
    }

    /// The alerts' lines inside a popup on a screen `width` columns wide.
    pub fn lines(alerts: &[Alert], width: u16) -> Vec<Line<'static>> {
        let inner = usize::from(Self::width(width).saturating_sub(2));
        let mut lines: Vec<Line<'static>> = alerts
            .iter()
            .flat_map(|a| alert_lines(a, Some(inner)))
            .collect();
        if lines.is_empty() {
            lines.push(Line::from(" no alerts").style(dim()));
        }
        lines
    }

    /// The first line shown at most: the last page is a whole one.
    pub fn last_top(alerts: &[Alert], width: u16, rows: usize) -> usize {
        Self::lines(alerts, width).len().saturating_sub(rows.max(1))
    }

    /// Moves through the list by a key's action; `rows` lines are shown.
    pub fn scroll(&mut self, action: Action, alerts: &[Alert], width: u16, rows: usize) {
        let last = Self::last_top(alerts, width, rows);
        let page = rows.max(1);
        self.top = match action {
            Action::Down => self.top.saturating_add(1),
            Action::Up => self.top.saturating_sub(1),
            Action::PageDown => self.top.saturating_add(page),
            Action::PageUp => self.top.saturating_sub(page),
            Action::Top => 0,
            Action::Bottom => last,
            _ => self.top,
        }
        .min(last);
    }

    /// Draws the list, `rows` lines at most; returns the area it covers.
    pub fn draw(&self, frame: &mut Frame, area: Rect, alerts: &[Alert], rows: usize) -> Rect {
        let lines = Self::lines(alerts, area.width);
        let rows = rows.max(1);
        let top = self.top.min(lines.len().saturating_sub(rows));
        let shown = lines.len().min(rows);
        let height = u16::try_from(shown + 2).unwrap_or(u16::MAX);
        let rect = popup_area(area, Self::width(area.width), height);
        let title = if lines.len() > rows {
            format!(
                " Alerts ({}): lines {}–{} of {} · j/k scroll · Esc closes ",
                alerts.len(),
                top + 1,
                top + shown,
                lines.len()
            )
        } else {
            format!(" Alerts ({}) · Esc closes ", alerts.len())
        };
        frame.render_widget(Clear, rect);
        frame.render_widget(
            Paragraph::new(Text::from(lines.into_iter().skip(top).collect::<Vec<_>>()))
                .block(Block::bordered().title(Span::from(title).bold())),
            rect,
        );
        rect
    }
}

/// A long answer (a plan's summary, the batches closed, an import's
/// report) in a box over the screen that scrolls both ways, so that wide
/// tables are not cut; Esc closes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub title: String,
    pub lines: Vec<String>,
    /// False when the command failed, wholly or in part.
    pub ok: bool,
    /// The first line and column shown.
    pub top: usize,
    pub left: usize,
}

impl Output {
    pub fn new(title: impl Into<String>, text: &str, ok: bool) -> Self {
        Self {
            title: title.into(),
            lines: text.lines().map(str::to_string).collect(),
            ok,
            top: 0,
            left: 0,
        }
    }

    /// The box on a screen of `area`, and the rows and columns of text it
    /// shows (a line under the text says how to scroll).
    fn layout(&self, area: Rect) -> (Rect, usize, usize) {
        let width = area.width.saturating_sub(2).min(120);
        let wanted = u16::try_from(self.lines.len() + 3).unwrap_or(u16::MAX);
        let rect = popup_area(area, width, wanted.min(area.height.saturating_sub(2)));
        let rows = usize::from(rect.height.saturating_sub(3));
        let cols = usize::from(rect.width.saturating_sub(2));
        (rect, rows, cols)
    }

    /// Scrolls by a key on a screen of `width`×`height`; false when the
    /// key closes the box (Esc, q, Enter). Other keys do nothing.
    pub fn key(&mut self, key: &KeyEvent, width: u16, height: u16) -> bool {
        let (_, rows, cols) = self.layout(Rect::new(0, 0, width, height));
        let page = rows.max(1);
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => return false,
            KeyCode::Char('d') if ctrl => self.top += page,
            KeyCode::Char('u') if ctrl => self.top = self.top.saturating_sub(page),
            KeyCode::Char('j') | KeyCode::Down => self.top += 1,
            KeyCode::Char('k') | KeyCode::Up => self.top = self.top.saturating_sub(1),
            KeyCode::PageDown | KeyCode::Char(' ') => self.top += page,
            KeyCode::PageUp => self.top = self.top.saturating_sub(page),
            KeyCode::Char('g') | KeyCode::Home => self.top = 0,
            KeyCode::Char('G') | KeyCode::End => self.top = usize::MAX,
            KeyCode::Char('l') | KeyCode::Right => self.left += 8,
            KeyCode::Char('h') | KeyCode::Left => self.left = self.left.saturating_sub(8),
            _ => {}
        }
        let longest = self.lines.iter().map(|l| l.chars().count()).max();
        self.top = self.top.min(self.lines.len().saturating_sub(rows));
        self.left = self.left.min(longest.unwrap_or(0).saturating_sub(cols));
        true
    }

    /// Draws the output; returns the area it covers.
    pub fn draw(&self, frame: &mut Frame, area: Rect) -> Rect {
        let (rect, rows, _) = self.layout(area);
        frame.render_widget(Clear, rect);
        let title = Span::from(format!(" {} ", self.title)).bold();
        let block = Block::bordered().title(if self.ok { title } else { title.red() });
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let [body, foot] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(inner);
        let text: Vec<Line> = self.lines.iter().map(|l| Line::from(l.clone())).collect();
        let scroll = (
            u16::try_from(self.top).unwrap_or(u16::MAX),
            u16::try_from(self.left).unwrap_or(u16::MAX),
        );
        frame.render_widget(Paragraph::new(text).scroll(scroll), body);
        let n = self.lines.len();
        let last = (self.top + rows).min(n);
        let place = if n > rows {
            format!("lines {}-{last} of {n} · j/k PgUp/PgDn · ", self.top + 1)
        } else {
            String::new()
        };
        frame.render_widget(
            Paragraph::new(Line::from(format!("{place}h/l ←/→ · Esc closes")).style(dim())),
            foot,
        );
        rect
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overlay {
    Help,
    Input(Input),
    Confirm(Confirm),
    Alerts(AlertsList),
    Output(Output),
}

/// The `?` popup, generated from the keymap: the bindings of `view` the
/// caller may use, the view's own first, and how to turn the mouse off.
/// Returns the area it covers.
pub fn draw_help(
    frame: &mut Frame,
    area: Rect,
    view: View,
    readonly: bool,
    allowed: impl Fn(Action) -> bool,
) -> Rect {
    let bindings = bindings_for(view, allowed);
    let (own, global): (Vec<_>, Vec<_>) = bindings.into_iter().partition(|b| !b.views.is_empty());
    let row = |b: &&Binding| {
        Row::new(vec![
            Cell::from(keys_label(b)).bold(),
            Cell::from(b.description),
        ])
    };
    let mut rows: Vec<Row> = Vec::new();
    if !own.is_empty() {
        rows.push(Row::new(vec![Cell::from(view.title()).underlined()]));
        rows.extend(own.iter().map(row));
        rows.push(Row::new(vec![Cell::from("")]));
    }
    rows.push(Row::new(vec![Cell::from("Everywhere").underlined()]));
    rows.extend(global.iter().map(row));
    rows.push(Row::new(vec![
        Cell::from("click").bold(),
        Cell::from("a tab, a row; again: Enter"),
    ]));
    rows.push(Row::new(vec![
        Cell::from("wheel").bold(),
        Cell::from("the list or the detail"),
    ]));
    if readonly {
        rows.push(Row::new(vec![Cell::from("")]));
        rows.push(Row::new(vec![
            Cell::from(""),
            Cell::from("read-only: no actions are offered").magenta(),
        ]));
    }
    // Two columns when one does not fit the height.
    let two = rows.len() + 2 > usize::from(area.height) && area.width >= 60;
    let per_column = if two {
        rows.len().div_ceil(2)
    } else {
        rows.len()
    };
    let height = u16::try_from(per_column + 2).unwrap_or(u16::MAX);
    let width = if two {
        area.width.min(120)
    } else {
        72.min(area.width)
    };
    let rect = popup_area(area, width, height);
    frame.render_widget(Clear, rect);
    let block = Block::bordered().title(Span::from(" Keys (? or Esc closes) ").bold());
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let widths = [
        Constraint::Length(if two { 11 } else { 18 }),
        Constraint::Fill(1),
    ];
    if two {
        let right_rows = rows.split_off(per_column);
        let [l, r] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(inner);
        frame.render_widget(Table::new(rows, widths), l);
        frame.render_widget(Table::new(right_rows, widths), r);
    } else {
        frame.render_widget(Table::new(rows, widths), inner);
    }
    rect
}

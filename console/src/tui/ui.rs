//! Rendering only: `draw` reads an [`AppState`] and paints a frame. It never
//! changes state, so tests render states into a `TestBackend`. The views
//! live in [`super::components`]; this module draws what frames them: the tab
//! line, the footer, help, confirmations and the input line.

use ratatui::layout::{Alignment, Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use super::app::{AppState, ConnState, Input, NoticeKind, Overlay, View};
use super::components;
use super::keymap::{bindings_for, hints, keys_label};

/// Terminals at least this wide get side-by-side panes and extra columns.
pub const WIDE: u16 = 140;

pub fn draw(frame: &mut Frame, state: &AppState) {
    let area = frame.area();
    if area.width < 4 || area.height < 3 {
        return;
    }
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, header, state);
    if state.status.is_none() && state.overview.is_none() && !state.connected() {
        frame.render_widget(
            Paragraph::new(waiting(state)).wrap(Wrap { trim: false }),
            body,
        );
    } else {
        match state.view {
            View::Overview => components::overview::draw(frame, body, state),
            View::Queue => components::queue::draw(frame, body, state),
            View::Approvals => components::approvals::draw(frame, body, state),
            View::Tenants => components::tenants::draw(frame, body, state),
            View::Policies => components::policies::draw(frame, body, state),
        }
    }
    draw_footer(frame, footer, state);
    match &state.overlay {
        None => {}
        Some(Overlay::Help) => draw_help(frame, area, state),
        Some(Overlay::Input(input)) => draw_input(frame, area, input),
        Some(Overlay::Confirm(c)) => {
            let mut text: Vec<Line> = c.lines.iter().map(|l| Line::from(l.clone())).collect();
            text.push(Line::from(""));
            text.push(Line::from(vec![
                Span::from(" y ").reversed().bold(),
                Span::from(" confirm   "),
                Span::from(" n ").reversed(),
                Span::from(" / Esc cancel"),
            ]));
            draw_popup(frame, area, &c.title, Text::from(text), 64);
        }
    }
    if state.monochrome {
        // Selection and emphasis stay readable: they are reverse and bold.
        for cell in frame.buffer_mut().content.iter_mut() {
            cell.fg = Color::Reset;
            cell.bg = Color::Reset;
        }
    }
}

/// Cents as `12.34 €`.
pub fn euro(cents: i64) -> String {
    format!("{} €", crate::format::money(cents))
}

pub fn dim() -> Style {
    Style::new().add_modifier(Modifier::DIM)
}

pub fn right(s: impl Into<String>) -> Cell<'static> {
    Cell::from(Line::from(s.into()).alignment(Alignment::Right))
}

/// A table header row; `true` right-aligns the column.
pub fn header_row(cells: &[(&'static str, bool)]) -> Row<'static> {
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

/// A pane: a title on a top rule, reversed when the pane has the focus.
pub fn pane(title: String, focused: bool) -> Block<'static> {
    let title = if focused {
        Span::from(title).reversed().bold()
    } else {
        Span::from(title).bold()
    };
    Block::new().borders(Borders::TOP).title(title)
}

/// First row to show so that `selected` is visible: whole pages, like
/// `less`, so the rows do not shift under the eye on every step.
pub fn page_top(selected: usize, visible: usize) -> usize {
    selected
        .checked_div(visible)
        .map_or(0, |page| page * visible)
}

/// A text bar of `width` cells, `percent` of it filled: `█████░░░░░`.
pub fn bar(percent: u64, width: usize) -> String {
    let filled = ((percent.min(100) as usize * width) + 50) / 100;
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

pub fn level_style(percent: u64) -> Style {
    match percent {
        0..=74 => Style::new().green(),
        75..=89 => Style::new().yellow(),
        _ => Style::new().red().bold(),
    }
}

pub fn waiting(state: &AppState) -> Text<'static> {
    match &state.conn {
        ConnState::Disconnected { error, attempt } => Text::from(vec![
            Line::from("The daemon is not reachable; the console reconnects by itself.").bold(),
            Line::from(error.clone()).red(),
            Line::from(format!("attempt {attempt} · r retries now · q quits")).style(dim()),
        ]),
        _ => Text::from(format!("waiting for the daemon at {}…", state.socket)),
    }
}

fn draw_header(frame: &mut Frame, area: Rect, state: &AppState) {
    // Narrow screens give the brand's room to the connection state.
    let mut spans = if area.width >= 100 {
        vec![
            Span::from(" touchpoint ").reversed().bold(),
            Span::from(" "),
        ]
    } else {
        Vec::new()
    };
    for (n, v) in View::ALL.iter().enumerate() {
        let mut label = format!("{} {}", n + 1, v.title());
        if *v == View::Approvals {
            if let Some(p) = state.overview.as_ref().map(|o| o.pending_approvals) {
                if p > 0 {
                    label.push_str(&format!(" ({p})"));
                }
            }
        }
        let label = format!(" {label} ");
        spans.push(if *v == state.view {
            Span::from(label).reversed().bold()
        } else {
            Span::from(label)
        });
    }
    let left = Line::from(spans);
    let left_width = left.width();
    frame.render_widget(Paragraph::new(left), area);

    let mut who = Vec::new();
    if let Some(n) = state.status.as_ref().map(|s| s.policy.errors.len()) {
        if n > 0 {
            who.push(Span::from(format!("policy errors: {n} ")).red().bold());
        }
    }
    if state.readonly {
        who.push(Span::from("read-only ").magenta().bold());
    }
    if let Some(i) = state.identity() {
        who.push(Span::from(format!("{} ({}) ", i.user, i.role)));
    }
    who.push(match &state.conn {
        ConnState::Connected { .. } => Span::from("● live ").green(),
        ConnState::Connecting { attempt: 1 } => Span::from("○ connecting ").yellow(),
        ConnState::Connecting { .. } => Span::from("○ reconnecting ").yellow(),
        ConnState::Disconnected { .. } => Span::from("✕ disconnected ").red().bold(),
    });
    // Drop parts from the left until it fits next to the tabs.
    while !who.is_empty() {
        let line = Line::from(who.clone());
        if usize::from(area.width) > left_width + line.width() {
            frame.render_widget(Paragraph::new(line).alignment(Alignment::Right), area);
            break;
        }
        who.remove(0);
    }
}

fn draw_footer(frame: &mut Frame, area: Rect, state: &AppState) {
    let line = if let Some(n) = &state.notice {
        let (mark, style) = match n.kind {
            NoticeKind::Error => (" ! ", Style::new().red()),
            NoticeKind::Done => (" ✓ ", Style::new().green()),
            NoticeKind::Pending => (" … ", Style::new().yellow()),
        };
        Line::from(vec![
            Span::from(mark).style(style).bold().reversed(),
            Span::from(format!(" {}", n.text)).style(style),
        ])
    } else if let ConnState::Disconnected { error, .. } = &state.conn {
        Line::from(vec![
            Span::from(" disconnected ").red().bold().reversed(),
            Span::from(format!(" {error}")).red(),
        ])
    } else {
        // Whole hints only, as many as fit.
        let mut spans = Vec::new();
        let mut used = 0;
        for (key, label) in hints(state.view, |a| state.allowed(a)) {
            let key = format!(" {key}");
            let label = format!(" {label} ");
            used += key.chars().count() + label.chars().count();
            if used > usize::from(area.width) {
                break;
            }
            spans.push(Span::from(key).bold());
            spans.push(Span::from(label).style(dim()));
        }
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// A centred box over the screen, at most `max_width` wide.
fn popup_area(area: Rect, width: u16, height: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [h] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(v);
    h
}

fn draw_popup(frame: &mut Frame, area: Rect, title: &str, text: Text<'static>, max_width: u16) {
    let width = max_width.min(area.width.saturating_sub(2)).max(10);
    // Wrapped height: a rough count is enough to size the box.
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let height: usize = text
        .lines
        .iter()
        .map(|l| l.width().max(1).div_ceil(inner))
        .sum::<usize>()
        + 2;
    let rect = popup_area(area, width, u16::try_from(height).unwrap_or(u16::MAX));
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(Span::from(format!(" {title} ")).bold())),
        rect,
    );
}

fn draw_input(frame: &mut Frame, area: Rect, input: &Input) {
    let chars: Vec<char> = input.text.chars().collect();
    let before: String = chars[..input.cursor.min(chars.len())].iter().collect();
    let at: String = chars
        .get(input.cursor)
        .map(|c| c.to_string())
        .unwrap_or_else(|| " ".into());
    let after: String = chars
        .get(input.cursor + 1..)
        .map(|s| s.iter().collect())
        .unwrap_or_default();
    let mut lines = vec![
        Line::from(vec![
            Span::from("› ").bold(),
            Span::from(before),
            Span::from(at).reversed(),
            Span::from(after),
        ]),
        Line::from(input.purpose.help()).style(dim()),
    ];
    if let Some(e) = &input.error {
        lines.push(Line::from(e.clone()).red().bold());
    }
    lines.push(Line::from("Enter apply · Esc cancel · Ctrl-u clear").style(dim()));
    draw_popup(frame, area, &input.purpose.title(), Text::from(lines), 90);
}

fn draw_help(frame: &mut Frame, area: Rect, state: &AppState) {
    let bindings = bindings_for(state.view, |a| state.allowed(a));
    let (own, global): (Vec<_>, Vec<_>) = bindings.into_iter().partition(|b| !b.views.is_empty());
    let row = |b: &&super::keymap::Binding| {
        Row::new(vec![
            Cell::from(keys_label(b)).bold(),
            Cell::from(b.description),
        ])
    };
    let mut rows: Vec<Row> = Vec::new();
    if !own.is_empty() {
        rows.push(Row::new(vec![Cell::from(state.view.title()).underlined()]));
        rows.extend(own.iter().map(row));
        rows.push(Row::new(vec![Cell::from("")]));
    }
    rows.push(Row::new(vec![Cell::from("Everywhere").underlined()]));
    rows.extend(global.iter().map(row));
    if state.readonly {
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
}

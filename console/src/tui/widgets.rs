//! The drawing helpers every component and popup shares: styles, table
//! headers and cells, panes, bars, paging, popups, figures. Imports nothing
//! of the TUI but what it draws with, so any component may use it.

use ratatui::layout::{Alignment, Constraint, Flex, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Wrap};
use ratatui::Frame;
use touchpoint_common::outbox::MessageStatus;
use touchpoint_common::protocol::{Alert, AlertLevel};

/// Terminals at least this wide get side-by-side panes and extra columns.
pub const WIDE: u16 = 140;
/// Columns from which the queue's detail pane can be hidden (`d`) to give
/// the list its room.
pub const ROOMY: u16 = 160;

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

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    crate::format::thousands(n)
}

/// A centred box over the screen, at most `max_width` wide.
pub fn popup_area(area: Rect, width: u16, height: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [h] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(v);
    h
}

/// Draws a popup; returns the area it covers.
pub fn draw_popup(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    text: Text<'static>,
    max_width: u16,
) -> Rect {
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
    rect
}

/// Renders `p` (its block included) scrolled down by `scroll` lines, but
/// never past its end, and records in `max` the furthest scroll that still
/// shows text (wrapped lines less the area's height), for the next key.
pub fn scrolled(
    frame: &mut Frame,
    area: Rect,
    p: Paragraph<'_>,
    scroll: u16,
    max: &std::cell::Cell<u16>,
) {
    let total = u16::try_from(p.line_count(area.width)).unwrap_or(u16::MAX);
    let furthest = total.saturating_sub(area.height);
    max.set(furthest);
    frame.render_widget(p.scroll((scroll.min(furthest), 0)), area);
}

/// An alert's mark and style: `✕` critical, `!` a warning.
pub fn alert_mark(level: AlertLevel) -> (&'static str, Style) {
    match level {
        AlertLevel::Critical => (" ✕ ", Style::new().red().bold()),
        AlertLevel::Warning => (" ! ", Style::new().yellow()),
    }
}

/// An alert as lines: its mark, the tenant it is about, its text; wrapped
/// to `width` under the text, or on one line (cut by its pane) without.
pub fn alert_lines(a: &Alert, width: Option<usize>) -> Vec<Line<'static>> {
    let (mark, style) = alert_mark(a.level);
    let tenant = a
        .tenant
        .as_ref()
        .map(|t| format!("{t}: "))
        .unwrap_or_default();
    let prefix_width = mark.chars().count() + tenant.chars().count();
    let prefix = vec![Span::from(mark).style(style), Span::from(tenant).bold()];
    match width {
        None => {
            let mut spans = prefix;
            spans.push(Span::from(a.text.clone()).style(style));
            vec![Line::from(spans)]
        }
        Some(width) => {
            let mut lines = Vec::new();
            hang(&mut lines, prefix, prefix_width, &a.text, style, width);
            lines
        }
    }
}

/// `text` after `prefix` (of `prefix_width` columns), wrapped to `width`:
/// continuation lines start under the text, not at column 0.
pub fn hang(
    lines: &mut Vec<Line<'static>>,
    prefix: Vec<Span<'static>>,
    prefix_width: usize,
    text: &str,
    style: Style,
    width: usize,
) {
    // A prefix that leaves no room stands on its own line; the text
    // follows at the full width.
    if prefix_width + 12 > width {
        if !prefix.is_empty() {
            lines.push(Line::from(prefix));
        }
        for part in wrap_words(text, width) {
            lines.push(Line::from(Span::styled(part, style)));
        }
        return;
    }
    let avail = width - prefix_width;
    let indent = prefix_width;
    for (i, part) in wrap_words(text, avail).into_iter().enumerate() {
        let mut spans = if i == 0 {
            prefix.clone()
        } else {
            vec![Span::from(" ".repeat(indent))]
        };
        spans.push(Span::styled(part, style));
        lines.push(Line::from(spans));
    }
}

/// Words of `text` on lines of at most `width` characters; a word longer
/// than that is cut. Always at least one line.
pub fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while word.len() > width {
            if used > 0 {
                out.push(std::mem::take(&mut line));
                used = 0;
            }
            out.push(word.drain(..width).collect());
        }
        let n = word.len();
        if used > 0 && used + 1 + n > width {
            out.push(std::mem::take(&mut line));
            used = 0;
        }
        if used > 0 {
            line.push(' ');
            used += 1;
        }
        line.extend(word);
        used += n;
    }
    if used > 0 || out.is_empty() {
        out.push(line);
    }
    out
}

/// How a message's status is drawn, wherever one is.
pub fn status_style(s: MessageStatus) -> Style {
    match s {
        MessageStatus::Planned | MessageStatus::Rendered => Style::new(),
        MessageStatus::Queued | MessageStatus::Sending => Style::new().cyan(),
        MessageStatus::Deferred => Style::new().yellow(),
        MessageStatus::Sent => Style::new().green(),
        MessageStatus::Held => Style::new().magenta().bold(),
        MessageStatus::Failed => Style::new().red().bold(),
        MessageStatus::Fallback => Style::new().yellow(),
        MessageStatus::Cancelled | MessageStatus::Control => dim(),
    }
}

#[cfg(test)]
mod tests {
    use super::{thousands, wrap_words};

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn words_wrap_to_the_width_and_a_long_word_is_cut() {
        assert_eq!(
            wrap_words("Guten Tag Herr Fößel, Ihr Fahrzeug", 12),
            ["Guten Tag", "Herr Fößel,", "Ihr Fahrzeug"]
        );
        assert_eq!(
            wrap_words("WVWZZZ1KZ6W000001", 8),
            ["WVWZZZ1K", "Z6W00000", "1"]
        );
        assert_eq!(wrap_words("", 8), [""]);
    }
}

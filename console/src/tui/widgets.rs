//! The drawing helpers every component and popup shares: styles, table
//! headers and cells, panes, bars, paging, popups, figures. Imports nothing
//! of the TUI but what it draws with, so any component may use it.

use ratatui::layout::{Alignment, Constraint, Flex, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Wrap};
use ratatui::Frame;

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

pub fn draw_popup(frame: &mut Frame, area: Rect, title: &str, text: Text<'static>, max_width: u16) {
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

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}

//! Where the last frame put what a mouse can point at: the tabs, the rows
//! of the list on screen, the detail pane and a popup. [`super::ui::draw`]
//! records the very `Rect`s it rendered into; the app reads them when a
//! mouse event comes, so a click hits what the user saw, never a layout
//! computed again. Imports nothing of the TUI but the views' names.

use ratatui::layout::{Position, Rect};

use super::action::View;

/// The rows of a list as drawn: `rows` is the area they fill (below the
/// table's header), `first` the index of the row on its top line, `shown`
/// how many rows were drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListHit {
    pub rows: Rect,
    pub first: usize,
    pub shown: usize,
}

/// What the mouse points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Tab(View),
    /// Row `n` of the list (an index into the whole list).
    Row(usize),
    /// The list's pane, where no row is.
    List,
    Detail,
    Popup,
}

/// The areas of the last draw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hits {
    pub tabs: Vec<(Rect, View)>,
    pub list: Option<ListHit>,
    /// The whole pane the list is in (title and header included).
    pub list_pane: Option<Rect>,
    pub detail: Option<Rect>,
    pub popup: Option<Rect>,
}

impl Hits {
    /// A table drawn in `pane` inside a block whose inner area is `inner`,
    /// with one header line, rows from index `first`, `shown` of them.
    pub fn table(&mut self, pane: Rect, inner: Rect, first: usize, shown: usize) {
        let rows = Rect {
            y: inner.y.saturating_add(1),
            height: inner.height.saturating_sub(1),
            ..inner
        };
        self.list_pane = Some(pane);
        self.list = Some(ListHit {
            rows,
            first,
            shown: shown.min(usize::from(rows.height)),
        });
    }

    /// What is under the cell at `column`, `row`; a popup covers the rest.
    pub fn at(&self, column: u16, row: u16) -> Option<Target> {
        let p = Position::new(column, row);
        if let Some(popup) = self.popup {
            return popup.contains(p).then_some(Target::Popup);
        }
        if let Some((_, v)) = self.tabs.iter().find(|(r, _)| r.contains(p)) {
            return Some(Target::Tab(*v));
        }
        if let Some(l) = self.list {
            if l.rows.contains(p) {
                let line = usize::from(row - l.rows.y);
                return Some(if line < l.shown {
                    Target::Row(l.first + line)
                } else {
                    Target::List
                });
            }
        }
        if self.list_pane.is_some_and(|r| r.contains(p)) {
            return Some(Target::List);
        }
        if self.detail.is_some_and(|r| r.contains(p)) {
            return Some(Target::Detail);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_below_the_header_map_to_their_index_and_a_popup_covers_the_rest() {
        let mut h = Hits::default();
        let pane = Rect::new(0, 2, 40, 10);
        // A block with a top rule: the inner area starts one line down.
        h.table(pane, Rect::new(0, 3, 40, 9), 16, 3);
        h.detail = Some(Rect::new(42, 2, 30, 10));
        h.tabs.push((Rect::new(1, 0, 10, 1), View::Overview));
        assert_eq!(h.at(5, 0), Some(Target::Tab(View::Overview)));
        assert_eq!(h.at(5, 3), Some(Target::List), "the header line");
        assert_eq!(h.at(5, 4), Some(Target::Row(16)));
        assert_eq!(h.at(39, 6), Some(Target::Row(18)));
        assert_eq!(h.at(5, 7), Some(Target::List), "below the last row");
        assert_eq!(h.at(50, 5), Some(Target::Detail));
        assert_eq!(h.at(79, 23), None);
        h.popup = Some(Rect::new(10, 5, 20, 5));
        assert_eq!(h.at(12, 6), Some(Target::Popup));
        assert_eq!(h.at(5, 4), None, "nothing under a popup's cover");
    }
}

//! One component per view. Each owns its state, its `update` (what an
//! [`Action`] does while the view is on screen), what it asks the daemon
//! for and how it takes the answers, and its `draw`.
//!
//! A component sees neither the app nor the other views nor the
//! connection: what it needs of them it asks for as a [`Cmd`], which the
//! app carries out in order. So nothing here imports `app`, `ui`, `net` or
//! `harness`, and no component imports another.

pub mod approvals;
pub mod customer;
pub mod overview;
pub mod policies;
pub mod queue;
pub mod results;
pub mod tenants;

use touchpoint_common::protocol::QueueFilter;
use touchpoint_common::TenantId;

use super::action::{Action, View};
use super::msg::Fetch;
use super::popup::Overlay;

/// The terminal's geometry as the views' state follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Screen {
    pub width: u16,
    /// Rows of the main list on screen; follows the terminal height.
    pub page_rows: usize,
}

/// What a component asks of the app, which owns the connection, the
/// popups, the footer and the other views.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cmd {
    Fetch(Fetch),
    /// The preview of proposal `id`, for a tenant the app picks: choosing
    /// one reads the other views.
    Preview(u64),
    /// A line in the footer until the next key.
    Notice {
        text: String,
        error: bool,
    },
    /// Opens a popup: an input or a confirmation.
    Open(Overlay),
    /// Shows the queue filtered to this tenant.
    QueueOf(TenantId),
    /// Shows a stored customer (`customer`, the dealer's number) of
    /// `tenant` in the customer view.
    Customer {
        tenant: TenantId,
        customer: String,
    },
    /// Shows this view.
    Show(View),
    /// Shows the queue under `filter` with the cursor on message `id` of
    /// `tenant` and its detail open.
    ShowMessage {
        tenant: TenantId,
        id: u64,
        filter: QueueFilter,
    },
}

/// `J`/`K`: scrolls a detail pane by five lines.
fn scroll(offset: &mut u16, action: Action) {
    match action {
        Action::DetailDown => *offset = offset.saturating_add(5),
        Action::DetailUp => *offset = offset.saturating_sub(5),
        _ => {}
    }
}

/// Moves `selected` within `len` rows; returns whether it changed.
pub fn move_selection(selected: &mut usize, len: usize, action: Action, page: usize) -> bool {
    let mut s = *selected as u64;
    let changed = move_cursor(&mut s, len as u64, action, page);
    *selected = usize::try_from(s).unwrap_or(0);
    changed
}

fn move_cursor(selected: &mut u64, len: u64, action: Action, page: usize) -> bool {
    if len == 0 {
        return false;
    }
    let last = len - 1;
    let page = page.max(1) as u64;
    let new = match action {
        Action::Up => selected.saturating_sub(1),
        Action::Down => selected.saturating_add(1).min(last),
        Action::Top => 0,
        Action::Bottom => last,
        Action::PageUp => selected.saturating_sub(page),
        Action::PageDown => selected.saturating_add(page).min(last),
        Action::Select(n) => n as u64,
        _ => *selected,
    }
    .min(last);
    let changed = new != *selected;
    *selected = new;
    changed
}

/// Stores `new`; returns whether that changed anything (and so whether the
/// screen must be redrawn).
pub fn replace<T: PartialEq>(slot: &mut T, new: T) -> bool {
    if *slot == new {
        false
    } else {
        *slot = new;
        true
    }
}

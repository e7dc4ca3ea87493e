//! What a key press means: the [`View`]s and the [`Action`]s the keymap
//! binds keys to. The vocabulary every other part of the TUI speaks, so it
//! imports none of them.

use touchpoint_common::protocol::{MessageAction, Request};
use touchpoint_common::report::answer::ReportQuery;
use touchpoint_common::TenantId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum View {
    Overview,
    Queue,
    Approvals,
    Tenants,
    Policies,
    Results,
    /// One stored customer, full height over the view it was opened from;
    /// not a tab (not in [`View::ALL`]).
    Customer,
}

impl View {
    pub const ALL: [View; 6] = [
        View::Overview,
        View::Queue,
        View::Approvals,
        View::Tenants,
        View::Policies,
        View::Results,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Queue => "Queue",
            View::Approvals => "Approvals",
            View::Tenants => "Tenants",
            View::Policies => "Policies",
            View::Results => "Results",
            View::Customer => "Customer",
        }
    }

    pub(crate) fn position(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Quit,
    ToggleHelp,
    /// Opens the `:` command line.
    CommandLine,
    Back,
    NextView,
    PrevView,
    ShowView(View),
    Up,
    Down,
    Top,
    Bottom,
    PageUp,
    PageDown,
    /// Open the selection's detail (or close it again).
    Open,
    /// Scroll the detail pane.
    DetailDown,
    DetailUp,
    Filter,
    Mark,
    MarkAll,
    ClearMarks,
    Act(MessageAction),
    Approve,
    Reject,
    Preview,
    ToggleAll,
    Refresh,
    /// Results: pooled over every dealer, or the caller's own tenants.
    TogglePooled,
    /// Results on a narrow screen: the next breakdown (lead, weekday, hour).
    NextBreakdown,
    /// The queue: the next sort key (time, tenant, status, cost).
    NextSort,
    /// The queue: the order turned round.
    ReverseSort,
    /// The queue on a screen of 160 columns or more: the detail pane
    /// hidden (the list takes its room) or shown.
    ToggleDetailPane,
    /// Overview: the day before / after the one shown.
    PrevDay,
    NextDay,
    /// The stored customer of what is under the cursor (a message's
    /// recipient), in the customer view.
    OpenCustomer,
    /// The cursor on row `n` of the list on screen (a mouse click).
    Select(usize),
    /// Every alert, in a popup that scrolls.
    ShowAlerts,
    /// Mouse capture off (the terminal selects text) or on again.
    ToggleMouse,
}

impl Action {
    /// Moves the cursor of a list.
    pub fn is_move(self) -> bool {
        matches!(
            self,
            Action::Up
                | Action::Down
                | Action::Top
                | Action::Bottom
                | Action::PageUp
                | Action::PageDown
                | Action::Select(_)
        )
    }

    /// The request this action leads to, for checking the caller's role.
    pub(crate) fn request(self) -> Option<Request> {
        let tenant = TenantId::new("x").ok()?;
        Some(match self {
            Action::Act(action) => Request::MessageAction {
                tenant,
                ids: Vec::new(),
                action,
            },
            Action::Mark | Action::MarkAll | Action::ClearMarks => Request::MessageAction {
                tenant,
                ids: Vec::new(),
                action: MessageAction::Hold,
            },
            Action::Approve => Request::Approve {
                id: 0,
                comment: String::new(),
            },
            Action::Reject => Request::Reject {
                id: 0,
                comment: String::new(),
            },
            Action::OpenCustomer => Request::Customer {
                tenant,
                customer: String::new(),
            },
            // Toggling leads to both; `AppState::allowed` asks for the other.
            Action::TogglePooled => Request::Report {
                query: ReportQuery {
                    pooled: true,
                    ..ReportQuery::default()
                },
            },
            _ => return None,
        })
    }
}

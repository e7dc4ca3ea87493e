//! The console's state and the one place that changes it. Nothing here
//! touches the terminal or the socket: keys arrive as [`Action`]s, daemon
//! answers as [`NetEvent`]s, and requests to the connection leave as
//! [`Effect`]s.

use touchpoint_common::protocol::{DaemonStatus, Identity, TenantDetail, TenantSummary};
use touchpoint_common::TenantId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Tenants,
    Detail,
    Status,
}

impl View {
    pub const ALL: [View; 3] = [View::Tenants, View::Detail, View::Status];

    pub fn title(self) -> &'static str {
        match self {
            View::Tenants => "Tenants",
            View::Detail => "Tenant",
            View::Status => "Status",
        }
    }

    fn position(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

/// Which list of the tenant detail the movement keys act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetailPane {
    Imports,
    Merges,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Quit,
    ToggleHelp,
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
    Open,
    NextPane,
    PrevPane,
    Refresh,
}

/// What the connection task reports.
#[derive(Clone, Debug, PartialEq)]
pub enum NetEvent {
    Connecting {
        attempt: u32,
    },
    Connected {
        daemon: String,
        identity: Identity,
    },
    Disconnected {
        error: String,
        attempt: u32,
    },
    Status(Box<DaemonStatus>),
    Tenants(Vec<TenantSummary>),
    Detail(Box<TenantDetail>),
    /// A request the daemon refused; the connection is fine.
    RequestFailed(String),
}

/// What the state asks of the connection task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Poll now (or reconnect now, when disconnected).
    Refresh,
    /// Also poll this tenant's detail, or stop doing so.
    Watch(Option<TenantId>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ConnState {
    Connecting { attempt: u32 },
    Connected { daemon: String, identity: Identity },
    Disconnected { error: String, attempt: u32 },
}

#[derive(Clone, Debug, PartialEq)]
pub struct AppState {
    pub socket: String,
    pub readonly: bool,
    pub view: View,
    pub show_help: bool,
    pub conn: ConnState,
    pub status: Option<DaemonStatus>,
    pub tenants: Vec<TenantSummary>,
    pub tenant_selected: usize,
    /// The tenant the detail view shows (and the connection polls).
    pub detail_tenant: Option<TenantId>,
    pub detail: Option<TenantDetail>,
    pub detail_pane: DetailPane,
    pub import_selected: usize,
    pub merge_selected: usize,
    /// The last refusal from the daemon, shown in the footer until the next key.
    pub message: Option<String>,
    /// Rows moved by PgUp/PgDn; follows the terminal height.
    pub page_rows: usize,
    pub quit: bool,
}

impl AppState {
    pub fn new(socket: impl Into<String>, readonly: bool) -> Self {
        Self {
            socket: socket.into(),
            readonly,
            view: View::Tenants,
            show_help: false,
            conn: ConnState::Connecting { attempt: 1 },
            status: None,
            tenants: Vec::new(),
            tenant_selected: 0,
            detail_tenant: None,
            detail: None,
            detail_pane: DetailPane::Imports,
            import_selected: 0,
            merge_selected: 0,
            message: None,
            page_rows: 10,
            quit: false,
        }
    }

    pub fn identity(&self) -> Option<&Identity> {
        match &self.conn {
            ConnState::Connected { identity, .. } => Some(identity),
            _ => self.status.as_ref().map(|s| &s.identity),
        }
    }

    pub fn selected_tenant(&self) -> Option<&TenantSummary> {
        self.tenants.get(self.tenant_selected)
    }

    /// The detail shown, if it belongs to the tenant the view is about.
    pub fn current_detail(&self) -> Option<&TenantDetail> {
        match (&self.detail, &self.detail_tenant) {
            (Some(d), Some(t)) if &d.summary.id == t => Some(d),
            _ => None,
        }
    }
}

/// Moves `selected` within `len` rows; returns whether it changed.
fn move_selection(selected: &mut usize, len: usize, action: Action, page: usize) -> bool {
    if len == 0 {
        return false;
    }
    let last = len - 1;
    let page = page.max(1);
    let new = match action {
        Action::Up => selected.saturating_sub(1),
        Action::Down => (*selected + 1).min(last),
        Action::Top => 0,
        Action::Bottom => last,
        Action::PageUp => selected.saturating_sub(page),
        Action::PageDown => (*selected + page).min(last),
        _ => *selected,
    }
    .min(last);
    let changed = new != *selected;
    *selected = new;
    changed
}

#[derive(Debug)]
pub struct App {
    pub state: AppState,
}

impl App {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    /// Applies a user action. Every key press redraws, so there is no
    /// "changed" flag here; the effects go to the connection task.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        let s = &mut self.state;
        s.message = None;
        if s.show_help {
            match action {
                Action::Quit => s.quit = true,
                Action::ToggleHelp | Action::Back => s.show_help = false,
                _ => {}
            }
            return Vec::new();
        }
        match action {
            Action::Quit => {
                s.quit = true;
                Vec::new()
            }
            Action::ToggleHelp => {
                s.show_help = true;
                Vec::new()
            }
            Action::Refresh => vec![Effect::Refresh],
            Action::Back => match s.view {
                View::Detail | View::Status => self.show(View::Tenants),
                View::Tenants => Vec::new(),
            },
            Action::NextView => {
                let next = View::ALL[(s.view.position() + 1) % View::ALL.len()];
                self.show(next)
            }
            Action::PrevView => {
                let n = View::ALL.len();
                let prev = View::ALL[(s.view.position() + n - 1) % n];
                self.show(prev)
            }
            Action::ShowView(v) => self.show(v),
            Action::Open => match s.view {
                View::Tenants => self.open_selected(),
                _ => Vec::new(),
            },
            Action::NextPane | Action::PrevPane => {
                if s.view == View::Detail {
                    s.detail_pane = match s.detail_pane {
                        DetailPane::Imports => DetailPane::Merges,
                        DetailPane::Merges => DetailPane::Imports,
                    };
                }
                Vec::new()
            }
            Action::Up
            | Action::Down
            | Action::Top
            | Action::Bottom
            | Action::PageUp
            | Action::PageDown => {
                let page = s.page_rows;
                match s.view {
                    View::Tenants => {
                        move_selection(&mut s.tenant_selected, s.tenants.len(), action, page);
                    }
                    View::Detail => {
                        let (imports, merges) = s
                            .current_detail()
                            .map(|d| (d.imports.len(), d.merges.len()))
                            .unwrap_or((0, 0));
                        match s.detail_pane {
                            DetailPane::Imports => {
                                move_selection(&mut s.import_selected, imports, action, page);
                            }
                            DetailPane::Merges => {
                                move_selection(&mut s.merge_selected, merges, action, page);
                            }
                        }
                    }
                    View::Status => {}
                }
                Vec::new()
            }
        }
    }

    fn open_selected(&mut self) -> Vec<Effect> {
        let Some(id) = self.state.selected_tenant().map(|t| t.id.clone()) else {
            return Vec::new();
        };
        let s = &mut self.state;
        if s.detail_tenant.as_ref() != Some(&id) {
            s.detail_tenant = Some(id.clone());
            s.import_selected = 0;
            s.merge_selected = 0;
            s.detail_pane = DetailPane::Imports;
        }
        s.view = View::Detail;
        vec![Effect::Watch(Some(id))]
    }

    fn show(&mut self, view: View) -> Vec<Effect> {
        let s = &mut self.state;
        if view == s.view {
            return Vec::new();
        }
        if view == View::Detail && s.detail_tenant.is_none() {
            return self.open_selected();
        }
        let leaving_detail = s.view == View::Detail;
        s.view = view;
        match (view, leaving_detail) {
            (View::Detail, _) => vec![Effect::Watch(s.detail_tenant.clone())],
            (_, true) => vec![Effect::Watch(None)],
            _ => Vec::new(),
        }
    }

    /// Applies a report from the connection; true when the screen must be redrawn.
    pub fn apply(&mut self, event: NetEvent) -> bool {
        let s = &mut self.state;
        match event {
            NetEvent::Connecting { attempt } => {
                let new = ConnState::Connecting { attempt };
                replace(&mut s.conn, new)
            }
            NetEvent::Connected { daemon, identity } => {
                let new = ConnState::Connected { daemon, identity };
                replace(&mut s.conn, new)
            }
            NetEvent::Disconnected { error, attempt } => {
                let new = ConnState::Disconnected { error, attempt };
                replace(&mut s.conn, new)
            }
            NetEvent::Status(status) => replace(&mut s.status, Some(*status)),
            NetEvent::Tenants(list) => {
                if s.tenants == list {
                    return false;
                }
                // Keep the cursor on the same tenant when the list changes.
                let selected_id = s.selected_tenant().map(|t| t.id.clone());
                s.tenants = list;
                s.tenant_selected = selected_id
                    .and_then(|id| s.tenants.iter().position(|t| t.id == id))
                    .unwrap_or(s.tenant_selected)
                    .min(s.tenants.len().saturating_sub(1));
                true
            }
            NetEvent::Detail(detail) => {
                if s.detail_tenant.as_ref() != Some(&detail.summary.id) {
                    return false;
                }
                s.import_selected = s
                    .import_selected
                    .min(detail.imports.len().saturating_sub(1));
                s.merge_selected = s.merge_selected.min(detail.merges.len().saturating_sub(1));
                replace(&mut s.detail, Some(*detail))
            }
            NetEvent::RequestFailed(message) => replace(&mut s.message, Some(message)),
        }
    }

    /// Follows a terminal resize.
    pub fn resize(&mut self, _width: u16, height: u16) {
        self.state.page_rows = usize::from(height.saturating_sub(8)).max(1);
    }
}

fn replace<T: PartialEq>(slot: &mut T, new: T) -> bool {
    if *slot == new {
        false
    } else {
        *slot = new;
        true
    }
}

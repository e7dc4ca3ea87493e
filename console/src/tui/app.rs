//! The console's state and the one place that changes it. Nothing here
//! touches the terminal or the socket: keys arrive as [`KeyEvent`]s and
//! become [`Action`]s, daemon answers arrive as [`NetEvent`]s, and what the
//! connection must do leaves as [`Effect`]s (taken with
//! [`App::take_effects`]).

use std::collections::BTreeSet;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use touchpoint_common::outbox::Message;
use touchpoint_common::protocol::{
    AuditEntry, Changes, CostRow, DaemonStatus, Identity, MessageAction, MessageContent, Overview,
    Preview, Proposal, ProposalDetail, QueueFilter, QueuePage, QueueRow, Request, Role,
    TenantDetail, TenantSummary, Topic,
};
use touchpoint_common::TenantId;

use super::action::{Action, View};
use super::keymap;
use super::msg::{Act, Data, Effect, Fetch, NetEvent};
use super::popup::{Confirm, Input, InputPurpose, Overlay};

#[derive(Clone, Debug, PartialEq)]
pub enum ConnState {
    Connecting { attempt: u32 },
    Connected { daemon: String, identity: Identity },
    Disconnected { error: String, attempt: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeKind {
    /// Sent, no answer yet.
    Pending,
    Done,
    Error,
}

/// A line in the footer until the next key: a refusal, what an action did,
/// or that it is on its way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub kind: NoticeKind,
}

impl Notice {
    pub fn is_error(&self) -> bool {
        self.kind == NoticeKind::Error
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueState {
    pub filter: QueueFilter,
    /// The window of rows held, with the total and counts.
    pub page: Option<QueuePage>,
    /// Absolute position of the cursor among the matches.
    pub selected: u64,
    pub marks: BTreeSet<(TenantId, u64)>,
    pub detail_open: bool,
    pub detail: Option<(TenantId, Message)>,
    pub content: Option<MessageContent>,
    pub detail_scroll: u16,
    /// The window last asked for, so that an answer for an older one is ignored.
    pub requested: Option<(QueueFilter, u64)>,
}

impl QueueState {
    pub fn total(&self) -> u64 {
        self.page.as_ref().map(|p| p.total).unwrap_or(0)
    }

    /// The row under the cursor, if it is in the window held.
    pub fn selected_row(&self) -> Option<&QueueRow> {
        let p = self.page.as_ref()?;
        let i = self.selected.checked_sub(p.offset)?;
        p.rows.get(usize::try_from(i).ok()?)
    }

    /// The detail, if it belongs to the row under the cursor.
    pub fn current_detail(&self) -> Option<&Message> {
        let row = self.selected_row()?;
        match &self.detail {
            Some((t, m)) if m.id == row.id && *t == row.tenant => Some(m),
            _ => None,
        }
    }

    pub fn current_content(&self) -> Option<&MessageContent> {
        let row = self.selected_row()?;
        self.content
            .as_ref()
            .filter(|c| c.id == row.id && c.tenant == row.tenant)
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApprovalsState {
    pub all: bool,
    pub list: Vec<Proposal>,
    pub selected: usize,
    pub detail: Option<ProposalDetail>,
    pub preview: Option<Preview>,
    /// Show the preview instead of the diff.
    pub show_preview: bool,
    pub scroll: u16,
}

impl ApprovalsState {
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
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TenantsState {
    pub list: Vec<TenantSummary>,
    pub selected: usize,
    /// This month's ledger rows.
    pub costs: Vec<CostRow>,
    pub detail: Option<TenantDetail>,
    pub scroll: u16,
}

impl TenantsState {
    pub fn selected_tenant(&self) -> Option<&TenantSummary> {
        self.list.get(self.selected)
    }

    pub fn current_detail(&self) -> Option<&TenantDetail> {
        let id = &self.selected_tenant()?.id;
        self.detail.as_ref().filter(|d| &d.summary.id == id)
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoliciesState {
    pub audit: Vec<AuditEntry>,
    pub audit_filter: String,
    pub selected: usize,
}

/// Audit entries the policies view asks for.
pub const AUDIT_LIMIT: u32 = 500;

#[derive(Clone, Debug, PartialEq)]
pub struct AppState {
    pub socket: String,
    pub readonly: bool,
    pub view: View,
    pub overlay: Option<Overlay>,
    pub conn: ConnState,
    pub status: Option<DaemonStatus>,
    pub overview: Option<Overview>,
    pub queue: QueueState,
    pub approvals: ApprovalsState,
    pub tenants: TenantsState,
    pub policies: PoliciesState,
    pub notice: Option<Notice>,
    /// Rows of the main list on screen; follows the terminal height.
    pub page_rows: usize,
    pub width: u16,
    /// The daemon's month for the tenants' costs, `yyyymm`.
    pub month: u32,
    /// No colours, only bold, reverse and dim (`NO_COLOR` is set).
    pub monochrome: bool,
    pub quit: bool,
}

impl AppState {
    pub fn new(socket: impl Into<String>, readonly: bool) -> Self {
        Self {
            socket: socket.into(),
            readonly,
            view: View::Overview,
            overlay: None,
            conn: ConnState::Connecting { attempt: 1 },
            status: None,
            overview: None,
            queue: QueueState::default(),
            approvals: ApprovalsState::default(),
            tenants: TenantsState::default(),
            policies: PoliciesState::default(),
            notice: None,
            page_rows: 10,
            width: 80,
            month: this_month(),
            monochrome: false,
            quit: false,
        }
    }

    pub fn identity(&self) -> Option<&Identity> {
        match &self.conn {
            ConnState::Connected { identity, .. } => Some(identity),
            _ => self.status.as_ref().map(|s| &s.identity),
        }
    }

    pub fn connected(&self) -> bool {
        matches!(self.conn, ConnState::Connected { .. })
    }

    /// Whether the caller may take this action: not in read-only mode, and
    /// the role allows the request it leads to. Unknown role: nothing.
    pub fn allowed(&self, action: Action) -> bool {
        match action.request() {
            None => true,
            Some(request) => {
                !self.readonly
                    && self
                        .identity()
                        .is_some_and(|i| role_allows(i.role, &request))
            }
        }
    }

    /// Queue rows the next message action applies to: the marked ones, or
    /// the one under the cursor.
    pub fn action_targets(&self) -> Vec<(TenantId, Vec<u64>)> {
        let mut out: Vec<(TenantId, Vec<u64>)> = Vec::new();
        let mut push = |t: &TenantId, id: u64| match out.iter_mut().find(|(x, _)| x == t) {
            Some((_, ids)) => ids.push(id),
            None => out.push((t.clone(), vec![id])),
        };
        if self.queue.marks.is_empty() {
            if let Some(r) = self.queue.selected_row() {
                push(&r.tenant, r.id);
            }
        } else {
            for (t, id) in &self.queue.marks {
                push(t, *id);
            }
        }
        out
    }

    /// The tenant a preview is rendered for: the one the queue is filtered
    /// to, else the tenant selected in the tenants view, else the busiest
    /// today, else the first in scope.
    pub fn preview_tenant(&self) -> Option<TenantId> {
        self.queue
            .filter
            .tenant
            .clone()
            .or_else(|| self.tenants.selected_tenant().map(|t| t.id.clone()))
            .or_else(|| {
                let o = self.overview.as_ref()?;
                // The busiest tenant today has customers to show.
                o.tenants
                    .iter()
                    .max_by_key(|t| t.today.planned + t.today.queued + t.today.sent)
                    .map(|t| t.tenant.clone())
            })
            .or_else(|| match self.identity().map(|i| &i.scope) {
                Some(touchpoint_common::protocol::Scope::Tenants(list)) => list.first().cloned(),
                _ => None,
            })
    }
}

fn role_allows(role: Role, request: &Request) -> bool {
    role.allows(request)
}

fn this_month() -> u32 {
    touchpoint_common::outbox::month_of(touchpoint_common::Date::today())
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
    effects: Vec<Effect>,
}

impl App {
    pub fn new(state: AppState) -> Self {
        Self {
            state,
            effects: Vec::new(),
        }
    }

    /// What the connection must do, in order; empties the list.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    fn fetch(&mut self, f: Fetch) {
        self.effects.push(Effect::Fetch(f));
    }

    /// A key press: edits an open input, answers a confirmation, or goes
    /// through the keymap. Returns whether the screen must be redrawn.
    pub fn key(&mut self, key: KeyEvent) -> bool {
        if key.kind == KeyEventKind::Release {
            return false;
        }
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        match self.state.overlay.take() {
            Some(Overlay::Input(mut input)) if !ctrl_c => {
                match key.code {
                    KeyCode::Esc => {}
                    KeyCode::Enter => self.submit(input),
                    _ => {
                        input.edit(&key);
                        self.state.overlay = Some(Overlay::Input(input));
                    }
                }
                return true;
            }
            Some(Overlay::Confirm(c)) if !ctrl_c => {
                match key.code {
                    KeyCode::Char('y') | KeyCode::Char('Y') => {
                        self.state.notice = Some(Notice {
                            text: format!("{}: sent, waiting for the daemon…", c.title),
                            kind: NoticeKind::Pending,
                        });
                        self.effects.push(Effect::Act(c.act));
                    }
                    KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {}
                    // Anything else leaves the question open.
                    _ => self.state.overlay = Some(Overlay::Confirm(c)),
                }
                return true;
            }
            other => self.state.overlay = other,
        }
        match keymap::action_for(&key, self.state.view) {
            Some(action) => {
                self.update(action);
                true
            }
            None => false,
        }
    }

    /// Applies a user action.
    pub fn update(&mut self, action: Action) {
        self.state.notice = None;
        if self.state.overlay == Some(Overlay::Help) {
            match action {
                Action::Quit => self.state.quit = true,
                Action::ToggleHelp | Action::Back => self.state.overlay = None,
                _ => {}
            }
            return;
        }
        if !self.state.allowed(action) {
            let who = self
                .state
                .identity()
                .map(|i| i.role.as_str())
                .unwrap_or("unknown");
            let why = if self.state.readonly {
                "the console is read-only (--readonly)".to_string()
            } else {
                format!("your role ({who}) may not do that")
            };
            self.notice(why, true);
            return;
        }
        match action {
            Action::Quit => self.state.quit = true,
            Action::ToggleHelp => self.state.overlay = Some(Overlay::Help),
            Action::Refresh => {
                if self.state.connected() {
                    self.fetch_view();
                } else {
                    self.effects.push(Effect::Reconnect);
                }
            }
            Action::NextView => {
                let n = View::ALL.len();
                self.show(View::ALL[(self.state.view.position() + 1) % n]);
            }
            Action::PrevView => {
                let n = View::ALL.len();
                self.show(View::ALL[(self.state.view.position() + n - 1) % n]);
            }
            Action::ShowView(v) => self.show(v),
            _ => match self.state.view {
                View::Overview => {}
                View::Queue => self.queue_action(action),
                View::Approvals => self.approvals_action(action),
                View::Tenants => self.tenants_action(action),
                View::Policies => self.policies_action(action),
            },
        }
    }

    fn notice(&mut self, text: impl Into<String>, error: bool) {
        self.state.notice = Some(Notice {
            text: text.into(),
            kind: if error {
                NoticeKind::Error
            } else {
                NoticeKind::Done
            },
        });
    }

    fn show(&mut self, view: View) {
        if view == self.state.view {
            return;
        }
        self.state.view = view;
        self.fetch_view();
    }

    /// Asks for everything the current view shows.
    pub fn fetch_view(&mut self) {
        self.fetch(Fetch::Status);
        match self.state.view {
            View::Overview => self.fetch(Fetch::Overview),
            View::Queue => {
                self.fetch_queue();
                self.fetch_queue_detail();
            }
            View::Approvals => {
                let all = self.state.approvals.all;
                self.fetch(Fetch::Proposals { all });
                self.fetch_proposal();
            }
            View::Tenants => {
                self.fetch(Fetch::Tenants);
                let month = self.state.month;
                self.fetch(Fetch::Costs { month });
                self.fetch_tenant();
            }
            View::Policies => {
                let text = self.state.policies.audit_filter.clone();
                self.fetch(Fetch::Audit {
                    text,
                    limit: AUDIT_LIMIT,
                });
            }
        }
    }

    // ---- queue ----

    /// Rows of the queue on screen: one page. The list is drawn in whole
    /// pages (see `ui::page_top`), and the console holds three: the one on
    /// screen and its neighbours.
    fn queue_page_rows(&self) -> u64 {
        self.state.page_rows.clamp(1, 333) as u64
    }

    /// The pages before, on and after the cursor's: `(offset, limit)`.
    fn queue_window(&self) -> (u64, u64) {
        let visible = self.queue_page_rows();
        let top = self.state.queue.selected / visible * visible;
        (top.saturating_sub(visible), 3 * visible)
    }

    /// Asks for the window around the cursor.
    fn fetch_queue(&mut self) {
        let (offset, limit) = self.queue_window();
        let filter = self.state.queue.filter.clone();
        self.state.queue.requested = Some((filter.clone(), offset));
        self.fetch(Fetch::Queue {
            filter,
            offset,
            limit: limit as u32,
        });
    }

    /// Whether the page on screen or a neighbour is not held: one request
    /// when the cursor enters another page, none while it moves within one.
    fn queue_needs_window(&self) -> bool {
        let q = &self.state.queue;
        let Some(p) = &q.page else {
            return true;
        };
        let (want_from, limit) = self.queue_window();
        let want_to = (want_from + limit).min(p.total);
        let held_to = p.offset + p.rows.len() as u64;
        !(p.offset <= want_from && held_to >= want_to)
    }

    fn fetch_queue_detail(&mut self) {
        if !self.state.queue.detail_open && self.state.width < super::widgets::WIDE {
            return;
        }
        let q = &self.state.queue;
        if let Some(r) = q.selected_row() {
            let (tenant, id) = (r.tenant.clone(), r.id);
            self.fetch(Fetch::Message {
                tenant: tenant.clone(),
                id,
            });
            self.fetch(Fetch::Content { tenant, id });
        }
    }

    fn queue_action(&mut self, action: Action) {
        let page = self.state.page_rows;
        match action {
            a if a.is_move() => {
                let total = self.state.queue.total();
                if move_cursor(&mut self.state.queue.selected, total, action, page) {
                    self.state.queue.detail_scroll = 0;
                    if self.queue_needs_window() {
                        self.fetch_queue();
                    }
                    self.fetch_queue_detail();
                }
            }
            Action::Open => {
                let q = &mut self.state.queue;
                q.detail_open = !q.detail_open;
                q.detail_scroll = 0;
                self.fetch_queue_detail();
            }
            Action::Back => {
                let q = &mut self.state.queue;
                if q.detail_open {
                    q.detail_open = false;
                } else if !q.marks.is_empty() {
                    q.marks.clear();
                } else if !q.filter.is_empty() {
                    self.set_queue_filter(QueueFilter::default());
                }
            }
            Action::DetailDown | Action::DetailUp => {
                scroll(&mut self.state.queue.detail_scroll, action);
            }
            Action::Filter => {
                let text = self.state.queue.filter.to_string();
                let text = if text.is_empty() { text } else { text + " " };
                self.state.overlay =
                    Some(Overlay::Input(Input::new(InputPurpose::QueueFilter, text)));
            }
            Action::Mark => {
                if let Some(r) = self.state.queue.selected_row() {
                    let key = (r.tenant.clone(), r.id);
                    let marks = &mut self.state.queue.marks;
                    if !marks.remove(&key) {
                        marks.insert(key);
                    }
                    let total = self.state.queue.total();
                    if move_cursor(&mut self.state.queue.selected, total, Action::Down, page)
                        && self.queue_needs_window()
                    {
                        self.fetch_queue();
                    }
                    self.fetch_queue_detail();
                }
            }
            Action::MarkAll => {
                // The rows on screen: what the user sees is what is marked.
                let visible = self.queue_page_rows();
                let q = &self.state.queue;
                if let Some(p) = &q.page {
                    let top = q.selected / visible * visible;
                    let keys: Vec<_> = p
                        .rows
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| (top..top + visible).contains(&(p.offset + *i as u64)))
                        .map(|(_, r)| (r.tenant.clone(), r.id))
                        .collect();
                    let n = keys.len();
                    self.state.queue.marks.extend(keys);
                    self.notice(format!("marked the {n} messages on screen"), false);
                }
            }
            Action::ClearMarks => self.state.queue.marks.clear(),
            Action::Act(a) => self.confirm_messages(a),
            _ => {}
        }
    }

    fn set_queue_filter(&mut self, filter: QueueFilter) {
        let q = &mut self.state.queue;
        if q.filter == filter {
            return;
        }
        q.filter = filter;
        q.selected = 0;
        q.detail_scroll = 0;
        // Rows of the old filter must not stay on screen (nor be acted on)
        // under the new one.
        q.page = None;
        self.fetch_queue();
    }

    fn confirm_messages(&mut self, action: MessageAction) {
        let targets = self.state.action_targets();
        let n: usize = targets.iter().map(|(_, ids)| ids.len()).sum();
        if n == 0 {
            self.notice("no message selected", true);
            return;
        }
        let verb = action.as_str();
        let mut lines: Vec<String> = targets
            .iter()
            .take(6)
            .map(|(t, ids)| {
                let shown: Vec<String> = ids.iter().take(8).map(|i| format!("#{i}")).collect();
                let more = if ids.len() > 8 {
                    format!(" and {} more", ids.len() - 8)
                } else {
                    String::new()
                };
                format!("{t}: {}{more}", shown.join(" "))
            })
            .collect();
        if targets.len() > 6 {
            lines.push(format!("and {} more tenants", targets.len() - 6));
        }
        lines.push(String::new());
        lines.push(match action {
            MessageAction::Hold => "They stay in the outbox until released.".into(),
            MessageAction::Release => "Held messages go on where they were.".into(),
            MessageAction::Cancel => "They will never be sent; their occasions stay taken.".into(),
            MessageAction::Retry => "Deferred or failed emails are sent again now.".into(),
        });
        let plural = if n == 1 { "" } else { "s" };
        self.state.overlay = Some(Overlay::Confirm(Confirm {
            title: format!("{} {n} message{plural}", capitalised(verb)),
            lines,
            act: Act::Messages { action, targets },
        }));
    }

    // ---- approvals ----

    fn fetch_proposal(&mut self) {
        let a = &self.state.approvals;
        if let Some(id) = a.selected_proposal().map(|p| p.id) {
            let preview = a.show_preview;
            self.fetch(Fetch::Proposal(id));
            if preview {
                self.fetch_preview(id);
            }
        }
    }

    fn fetch_preview(&mut self, id: u64) {
        match self.state.preview_tenant() {
            Some(tenant) => self.fetch(Fetch::Preview { id, tenant }),
            None => self.notice("no tenant to preview for: open one in 4 Tenants", true),
        }
    }

    fn approvals_action(&mut self, action: Action) {
        let page = self.state.page_rows;
        match action {
            a if a.is_move() => {
                let a = &mut self.state.approvals;
                if move_selection(&mut a.selected, a.list.len(), action, page) {
                    a.scroll = 0;
                    self.fetch_proposal();
                }
            }
            Action::DetailDown | Action::DetailUp => {
                scroll(&mut self.state.approvals.scroll, action);
            }
            Action::Preview => {
                let a = &mut self.state.approvals;
                a.show_preview = !a.show_preview;
                a.scroll = 0;
                if a.show_preview {
                    if let Some(id) = a.selected_proposal().map(|p| p.id) {
                        self.fetch_preview(id);
                    }
                }
            }
            Action::ToggleAll => {
                let a = &mut self.state.approvals;
                a.all = !a.all;
                a.selected = 0;
                let all = a.all;
                self.fetch(Fetch::Proposals { all });
            }
            Action::Back => self.state.approvals.show_preview = false,
            Action::Approve | Action::Reject => {
                let Some(p) = self.state.approvals.selected_proposal() else {
                    self.notice("no proposal selected", true);
                    return;
                };
                if !matches!(
                    p.status,
                    touchpoint_common::protocol::ProposalStatus::Pending
                ) {
                    self.notice(format!("proposal #{} is already decided", p.id), true);
                    return;
                }
                let purpose = if action == Action::Approve {
                    InputPurpose::ApproveComment { id: p.id }
                } else {
                    InputPurpose::RejectComment { id: p.id }
                };
                self.state.overlay = Some(Overlay::Input(Input::new(purpose, String::new())));
            }
            _ => {}
        }
    }

    // ---- tenants ----

    fn fetch_tenant(&mut self) {
        if let Some(id) = self.state.tenants.selected_tenant().map(|t| t.id.clone()) {
            self.fetch(Fetch::Tenant(id));
        }
    }

    fn tenants_action(&mut self, action: Action) {
        let page = self.state.page_rows;
        match action {
            a if a.is_move() => {
                let t = &mut self.state.tenants;
                if move_selection(&mut t.selected, t.list.len(), action, page) {
                    t.scroll = 0;
                    self.fetch_tenant();
                }
            }
            Action::DetailDown | Action::DetailUp => {
                scroll(&mut self.state.tenants.scroll, action);
            }
            Action::Open => {
                // The queue of this tenant.
                if let Some(id) = self.state.tenants.selected_tenant().map(|t| t.id.clone()) {
                    let mut f = self.state.queue.filter.clone();
                    f.tenant = Some(id);
                    self.state.view = View::Queue;
                    self.set_queue_filter(f);
                    self.fetch_view();
                }
            }
            _ => {}
        }
    }

    // ---- policies and audit ----

    fn policies_action(&mut self, action: Action) {
        let page = self.state.page_rows;
        match action {
            a if a.is_move() => {
                let p = &mut self.state.policies;
                move_selection(&mut p.selected, p.audit.len(), action, page);
            }
            Action::Filter => {
                let text = self.state.policies.audit_filter.clone();
                self.state.overlay =
                    Some(Overlay::Input(Input::new(InputPurpose::AuditFilter, text)));
            }
            Action::Back => self.set_audit_filter(String::new()),
            _ => {}
        }
    }

    fn set_audit_filter(&mut self, text: String) {
        let p = &mut self.state.policies;
        if p.audit_filter == text {
            return;
        }
        p.audit_filter = text.clone();
        p.selected = 0;
        self.fetch(Fetch::Audit {
            text,
            limit: AUDIT_LIMIT,
        });
    }

    /// Enter in the input popup.
    fn submit(&mut self, mut input: Input) {
        match input.purpose.clone() {
            InputPurpose::QueueFilter => match QueueFilter::parse(&input.text) {
                Ok(f) => self.set_queue_filter(f),
                Err(e) => {
                    input.error = Some(e.to_string());
                    self.state.overlay = Some(Overlay::Input(input));
                }
            },
            InputPurpose::AuditFilter => self.set_audit_filter(input.text.trim().to_string()),
            InputPurpose::ApproveComment { id } => {
                let comment = input.text.trim().to_string();
                let template = self.proposal_name(id);
                self.state.overlay = Some(Overlay::Confirm(Confirm {
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
                }));
            }
            InputPurpose::RejectComment { id } => {
                let comment = input.text.trim().to_string();
                if comment.is_empty() {
                    input.error = Some("say why: the author reads it".into());
                    self.state.overlay = Some(Overlay::Input(input));
                    return;
                }
                let template = self.proposal_name(id);
                self.state.overlay = Some(Overlay::Confirm(Confirm {
                    title: format!("Reject proposal #{id}"),
                    lines: vec![
                        format!("{template} stays as it is."),
                        format!("Reason: {comment}"),
                    ],
                    act: Act::Reject { id, comment },
                }));
            }
        }
    }

    fn proposal_name(&self, id: u64) -> String {
        self.state
            .approvals
            .list
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.template.clone())
            .unwrap_or_else(|| format!("proposal #{id}"))
    }

    /// Applies a report from the connection; true when the screen must be redrawn.
    pub fn apply(&mut self, event: NetEvent) -> bool {
        match event {
            NetEvent::Connecting { attempt } => {
                replace(&mut self.state.conn, ConnState::Connecting { attempt })
            }
            NetEvent::Connected { daemon, identity } => {
                self.state.conn = ConnState::Connected { daemon, identity };
                self.fetch_view();
                true
            }
            NetEvent::Disconnected { error, attempt } => replace(
                &mut self.state.conn,
                ConnState::Disconnected { error, attempt },
            ),
            NetEvent::Changed(changes) => {
                self.on_changed(&changes);
                false
            }
            NetEvent::Failed { what, error } => {
                self.notice(format!("{what}: {error}"), true);
                true
            }
            NetEvent::Acted { summary, ok } => {
                self.notice(summary, !ok);
                if ok {
                    self.state.queue.marks.clear();
                }
                // The change feed brings the new state; ask anyway, in case
                // nothing changed (every action refused).
                self.fetch_view();
                true
            }
            NetEvent::Data(d) => self.apply_data(d),
        }
    }

    /// Re-reads what the current view shows of what changed.
    fn on_changed(&mut self, c: &Changes) {
        let has = |t: Topic| c.topics.contains(&t);
        if has(Topic::Policy) {
            self.fetch(Fetch::Status);
        }
        match self.state.view {
            View::Overview => {
                if [
                    Topic::Outbox,
                    Topic::Dispatch,
                    Topic::Costs,
                    Topic::Policy,
                    Topic::Approvals,
                ]
                .into_iter()
                .any(has)
                {
                    self.fetch(Fetch::Overview);
                }
            }
            View::Queue => {
                if has(Topic::Outbox) {
                    let q = &self.state.queue;
                    let about_us = match &q.filter.tenant {
                        Some(t) => c.tenants.is_empty() || c.tenants.contains(t),
                        None => true,
                    };
                    if about_us {
                        self.fetch_queue();
                        self.fetch_queue_detail();
                    }
                }
            }
            View::Approvals => {
                if has(Topic::Approvals) {
                    let all = self.state.approvals.all;
                    self.fetch(Fetch::Proposals { all });
                    self.fetch_proposal();
                }
            }
            View::Tenants => {
                if has(Topic::Tenants) {
                    self.fetch(Fetch::Tenants);
                    self.fetch_tenant();
                }
                if has(Topic::Costs) {
                    let month = self.state.month;
                    self.fetch(Fetch::Costs { month });
                }
            }
            View::Policies => {
                if has(Topic::Audit) {
                    let text = self.state.policies.audit_filter.clone();
                    self.fetch(Fetch::Audit {
                        text,
                        limit: AUDIT_LIMIT,
                    });
                }
            }
        }
    }

    fn apply_data(&mut self, d: Data) -> bool {
        let s = &mut self.state;
        match d {
            Data::Status(st) => replace(&mut s.status, Some(*st)),
            Data::Overview(o) => replace(&mut s.overview, Some(*o)),
            Data::Queue(page) => {
                let q = &mut s.queue;
                if q.requested.as_ref() != Some(&(page.filter.clone(), page.offset)) {
                    return false;
                }
                // Stay on the same message when rows moved (newer ones
                // planned above it), else keep the position inside the
                // listing when it shrank.
                let following = q.selected_row().map(|r| (r.tenant.clone(), r.id));
                let found = following.and_then(|(t, id)| {
                    page.rows
                        .iter()
                        .position(|r| r.id == id && r.tenant == t)
                        .map(|i| page.offset + i as u64)
                });
                q.selected = found
                    .unwrap_or(q.selected)
                    .min(page.total.saturating_sub(1));
                let changed = replace(&mut q.page, Some(*page));
                if q.total() > 0 && (q.selected_row().is_none() || self.queue_needs_window()) {
                    // The cursor is not among the rows held (the listing
                    // shrank, or it moved): ask for the rows around it.
                    self.fetch_queue();
                } else if self.state.queue.current_detail().is_none() {
                    self.fetch_queue_detail();
                }
                changed
            }
            Data::Message { tenant, message } => {
                replace(&mut s.queue.detail, Some((tenant, *message)))
            }
            Data::Content(c) => replace(&mut s.queue.content, Some(*c)),
            Data::Tenants(list) => {
                let t = &mut s.tenants;
                if t.list == list {
                    return false;
                }
                let selected_id = t.selected_tenant().map(|x| x.id.clone());
                t.list = list;
                t.selected = selected_id
                    .and_then(|id| t.list.iter().position(|x| x.id == id))
                    .unwrap_or(t.selected)
                    .min(t.list.len().saturating_sub(1));
                if t.detail.is_none() {
                    self.fetch_tenant();
                }
                true
            }
            Data::Costs { month, rows } => {
                s.month = month;
                replace(&mut s.tenants.costs, rows)
            }
            Data::Tenant(d) => replace(&mut s.tenants.detail, Some(*d)),
            Data::Proposals(list) => {
                let a = &mut s.approvals;
                if a.list == list {
                    return false;
                }
                let selected_id = a.selected_proposal().map(|p| p.id);
                a.list = list;
                a.selected = selected_id
                    .and_then(|id| a.list.iter().position(|p| p.id == id))
                    .unwrap_or(a.selected)
                    .min(a.list.len().saturating_sub(1));
                if a.current_detail().is_none() {
                    self.fetch_proposal();
                }
                true
            }
            Data::Proposal(d) => replace(&mut s.approvals.detail, Some(*d)),
            Data::Preview(p) => replace(&mut s.approvals.preview, Some(*p)),
            Data::Audit { text, entries } => {
                let p = &mut s.policies;
                if text != p.audit_filter {
                    return false;
                }
                p.selected = p.selected.min(entries.len().saturating_sub(1));
                replace(&mut p.audit, entries)
            }
        }
    }

    /// Follows a terminal resize.
    pub fn resize(&mut self, width: u16, height: u16) {
        let was_wide = self.state.width >= super::widgets::WIDE;
        self.state.width = width;
        // The queue's list: all but the tab line, the filter line, the
        // pane's title, the table header and the footer.
        self.state.page_rows = usize::from(height.saturating_sub(5)).max(1);
        if self.state.view == View::Queue && self.state.connected() {
            if self.queue_needs_window() {
                self.fetch_queue();
            }
            if !was_wide
                && width >= super::widgets::WIDE
                && self.state.queue.current_detail().is_none()
            {
                self.fetch_queue_detail();
            }
        }
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
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

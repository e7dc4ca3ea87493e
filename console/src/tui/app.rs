//! The console's shared state and the one place that changes it: which
//! view is on screen, the connection, the daemon's status, the open popup,
//! the footer's notice, and the routing of keys, actions and answers to
//! the view they are for. Each view's own state, update and drawing are
//! its component's ([`super::components`]); what a component asks of the
//! rest comes back as a [`Cmd`], carried out here.
//!
//! Nothing here touches the terminal or the socket: keys arrive as
//! [`KeyEvent`]s and become [`Action`]s, daemon answers arrive as
//! [`NetEvent`]s, and what the connection must do leaves as [`Effect`]s
//! (taken with [`App::take_effects`]). State does not depend on drawing:
//! this module must not import `ui` or `widgets`, nor `net` or `harness`.

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use touchpoint_common::protocol::{
    Changes, DaemonStatus, Identity, ProposalStatus, QueueFilter, Request, Role, Topic,
};
use touchpoint_common::TenantId;

use super::action::{Action, View};
use super::command::{self, CommandLine, Parsed};
use super::components::approvals::ApprovalsView;
use super::components::customer::CustomerView;
use super::components::overview::OverviewView;
use super::components::policies::PoliciesView;
use super::components::queue::QueueView;
use super::components::results::ResultsView;
use super::components::tenants::TenantsView;
use super::components::{replace, Cmd, Screen};
use super::hits::{Hits, Target};
use super::keymap;
use super::msg::{Act, Data, Effect, Fetch, NetEvent};
use super::popup::{AlertsList, Input, InputPurpose, Output, Overlay};

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

#[derive(Clone, Debug, PartialEq)]
pub struct AppState {
    pub socket: String,
    pub readonly: bool,
    pub view: View,
    pub overlay: Option<Overlay>,
    pub conn: ConnState,
    pub status: Option<DaemonStatus>,
    pub overview: OverviewView,
    pub queue: QueueView,
    pub approvals: ApprovalsView,
    pub tenants: TenantsView,
    pub policies: PoliciesView,
    pub results: ResultsView,
    pub customer: CustomerView,
    pub notice: Option<Notice>,
    /// The `:` line and its history.
    pub command: CommandLine,
    /// Rows of the main list on screen; follows the terminal height.
    pub page_rows: usize,
    pub width: u16,
    pub height: u16,
    /// No colours, only bold, reverse and dim (`NO_COLOR` is set).
    pub monochrome: bool,
    /// Mouse capture wanted (`m` toggles it, `--no-mouse` starts without):
    /// off, the terminal selects text.
    pub mouse: bool,
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
            overview: OverviewView::default(),
            queue: QueueView::default(),
            approvals: ApprovalsView::default(),
            tenants: TenantsView::default(),
            policies: PoliciesView::default(),
            results: ResultsView::default(),
            customer: CustomerView::default(),
            notice: None,
            command: CommandLine::default(),
            page_rows: 10,
            width: 80,
            height: 24,
            monochrome: false,
            mouse: true,
            quit: false,
        }
    }

    pub fn identity(&self) -> Option<&Identity> {
        match &self.conn {
            ConnState::Connected { identity, .. } => Some(identity),
            _ => self.status.as_ref().map(|s| &s.identity),
        }
    }

    /// The geometry the views' state follows.
    pub fn screen(&self) -> Screen {
        Screen {
            width: self.width,
            page_rows: self.page_rows,
        }
    }

    /// The tab on screen: the view, or the one the customer view was
    /// opened from.
    pub fn tab(&self) -> View {
        match self.view {
            View::Customer => self.customer.back,
            v => v,
        }
    }

    /// The index of the row under the cursor in the view's list, if it
    /// has one (the customer view is a page, no list of rows).
    pub fn selected_index(&self) -> Option<usize> {
        match self.view {
            View::Overview | View::Customer => None,
            View::Queue => usize::try_from(self.queue.selected).ok(),
            View::Approvals => Some(self.approvals.selected),
            View::Tenants => Some(self.tenants.selected),
            View::Policies => Some(self.policies.selected),
            View::Results => Some(self.results.selected),
        }
    }

    pub fn connected(&self) -> bool {
        matches!(self.conn, ConnState::Connected { .. })
    }

    /// Why an action the caller may take cannot work on what it would act
    /// on now, if it cannot: the message under the cursor is not in a
    /// state the action takes (the daemon's own rule,
    /// [`MessageAction::check`]), the proposal is one's own or decided.
    /// Marked messages are the daemon's to judge, one by one.
    pub fn unavailable(&self, action: Action) -> Option<String> {
        match action {
            Action::Act(a) if self.view == View::Queue && self.queue.marks.is_empty() => {
                match self.queue.selected_row() {
                    None => Some("no message selected".into()),
                    Some(r) => a
                        .check(r.status, r.channel)
                        .err()
                        .map(|e| format!("#{}: {e}", r.id)),
                }
            }
            Action::OpenCustomer if self.view == View::Queue => self
                .queue
                .selected_row()
                .is_none()
                .then(|| "no message selected".into()),
            Action::Open if self.view == View::Customer => self
                .customer
                .message_at_cursor(self.width)
                .is_none()
                .then(|| "Enter shows a message in the queue: move the cursor onto one".into()),
            Action::Approve | Action::Reject if self.view == View::Approvals => {
                let p = self.approvals.selected_proposal()?;
                if !matches!(p.status, ProposalStatus::Pending) {
                    return Some(format!("proposal #{} is already decided", p.id));
                }
                let me = self.identity()?;
                (action == Action::Approve && (p.author_uid == me.uid || p.author == me.user)).then(
                    || {
                        format!(
                            "you proposed #{}: another reviewer approves it (four eyes)",
                            p.id
                        )
                    },
                )
            }
            _ => None,
        }
    }

    /// Whether the caller may take this action: the role allows the
    /// request it leads to, and in read-only mode only what a read-only
    /// role may ask (reading a customer). Unknown role: nothing.
    pub fn allowed(&self, action: Action) -> bool {
        if action == Action::TogglePooled {
            // Switching leads to both kinds of report.
            return self.results.may_toggle;
        }
        match action.request() {
            None => true,
            Some(request) => {
                (!self.readonly || Role::ReadOnly.allows(&request))
                    && self
                        .identity()
                        .is_some_and(|i| role_allows(i.role, &request))
            }
        }
    }

    /// The tenant a preview is rendered for: the one the queue is filtered
    /// to, else the tenant selected in the tenants view, else the busiest
    /// today, else the first in scope.
    pub fn preview_tenant(&self) -> Option<TenantId> {
        match self.queue.filter.tenants.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        }
        .or_else(|| self.tenants.selected_tenant().map(|t| t.id.clone()))
        .or_else(|| {
            let o = self.overview.data.as_ref()?;
            // The busiest tenant on the day shown has customers to show.
            o.tenants
                .iter()
                .max_by_key(|t| t.counts.planned + t.counts.queued + t.counts.sent)
                .map(|t| t.tenant.clone())
        })
        .or_else(|| match self.identity().map(|i| &i.scope) {
            Some(touchpoint_common::protocol::Scope::Tenants(list)) => list.first().cloned(),
            _ => None,
        })
    }
}

impl AppState {
    /// What the `:` line knows: who the caller is, and the tenants and
    /// services the console has read, for completion.
    pub fn command_context(&self) -> command::Context {
        let identity = self.identity();
        let mut tenants: Vec<String> = self.tenants.list.iter().map(|t| t.id.to_string()).collect();
        let mut services: Vec<String> = self
            .tenants
            .costs
            .iter()
            .map(|c| c.service.clone())
            .collect();
        if let Some(o) = &self.overview.data {
            tenants.extend(o.tenants.iter().map(|t| t.tenant.to_string()));
            services.extend(o.budgets.iter().map(|b| b.service.clone()));
        }
        if let Some(p) = &self.queue.page {
            services.extend(p.rows.iter().map(|r| r.service.clone()));
        }
        if let Some(touchpoint_common::protocol::Scope::Tenants(list)) = identity.map(|i| &i.scope)
        {
            tenants.extend(list.iter().map(ToString::to_string));
        }
        tenants.sort();
        tenants.dedup();
        services.sort();
        services.dedup();
        command::Context {
            role: identity.map(|i| i.role),
            scope: identity.map(|i| i.scope.clone()),
            readonly: self.readonly,
            tenants,
            services,
        }
    }
}

fn role_allows(role: Role, request: &Request) -> bool {
    role.allows(request)
}

#[derive(Debug)]
pub struct App {
    pub state: AppState,
    /// Where the last frame put tabs, rows and panes: what a click hits.
    pub hits: Hits,
    effects: Vec<Effect>,
}

impl App {
    pub fn new(state: AppState) -> Self {
        Self {
            state,
            hits: Hits::default(),
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

    /// Carries out what a component asked for, in order.
    fn run(&mut self, cmds: Vec<Cmd>) {
        for cmd in cmds {
            match cmd {
                Cmd::Fetch(f) => self.fetch(f),
                Cmd::Preview(id) => self.fetch_preview(id),
                Cmd::Notice { text, error } => self.notice(text, error),
                Cmd::Open(overlay) => self.state.overlay = Some(overlay),
                Cmd::QueueOf(tenant) => self.show_queue_of(tenant),
                Cmd::Customer { tenant, customer } => self.open_customer(tenant, customer),
                Cmd::Show(view) => self.show(view),
                Cmd::ShowMessage { tenant, id, filter } => {
                    self.show_queue_message(tenant, id, filter)
                }
            }
        }
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
            Some(Overlay::Output(mut out)) if !ctrl_c => {
                if out.key(&key, self.state.width, self.state.height) {
                    self.state.overlay = Some(Overlay::Output(out));
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
        if self.state.command.open && !ctrl_c {
            self.command_key(&key);
            return true;
        }
        match keymap::action_for(&key, self.state.view) {
            Some(action) => {
                self.update(action);
                true
            }
            None => false,
        }
    }

    /// A mouse event, on what the last frame drew there (`hits`): a click
    /// on a tab shows its view, on a row selects it, on the selected row
    /// does what Enter does there; the wheel moves through the list under
    /// the pointer or scrolls the detail pane (or the alerts popup). Other
    /// popups answer keys only, and so does the open `:` line. Returns
    /// whether to redraw.
    pub fn mouse(&mut self, ev: MouseEvent) -> bool {
        if self.state.command.open {
            return false;
        }
        let target = self.hits.at(ev.column, ev.row);
        let wheel = match ev.kind {
            MouseEventKind::ScrollDown => Some(true),
            MouseEventKind::ScrollUp => Some(false),
            _ => None,
        };
        let action = match (&self.state.overlay, ev.kind, target) {
            (Some(Overlay::Alerts(_)), _, Some(Target::Popup)) => {
                wheel.map(|down| if down { Action::Down } else { Action::Up })
            }
            (Some(_), _, _) => None,
            (None, MouseEventKind::Down(MouseButton::Left), Some(Target::Tab(v))) => {
                Some(Action::ShowView(v))
            }
            (None, MouseEventKind::Down(MouseButton::Left), Some(Target::Row(n))) => {
                if self.state.selected_index() == Some(n) {
                    keymap::action_for(
                        &KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE),
                        self.state.view,
                    )
                } else {
                    Some(Action::Select(n))
                }
            }
            (None, _, Some(Target::Row(_) | Target::List)) => {
                wheel.map(|down| if down { Action::Down } else { Action::Up })
            }
            (None, _, Some(Target::Detail)) => wheel.map(|down| {
                if down {
                    Action::DetailDown
                } else {
                    Action::DetailUp
                }
            }),
            _ => None,
        };
        match action {
            Some(a) => {
                self.update(a);
                true
            }
            None => false,
        }
    }

    /// A key while the `:` line is open: Esc closes it, Enter runs it, Tab
    /// completes, ↑/↓ go through the history, the rest edits.
    fn command_key(&mut self, key: &KeyEvent) {
        match key.code {
            KeyCode::Esc => self.state.command.close(),
            KeyCode::Enter => {
                let line = self.state.command.take();
                if !line.is_empty() {
                    if let Err(why) = self.run_line(&line) {
                        self.state.command.refuse(line, why);
                    }
                }
            }
            KeyCode::Tab => {
                let ctx = self.state.command_context();
                self.state.command.complete(&ctx);
            }
            KeyCode::Up => self.state.command.recall(true),
            KeyCode::Down => self.state.command.recall(false),
            _ => {
                self.state.command.edit(key);
            }
        }
    }

    /// Runs a line of the `:` prompt; `Err` says why not (the line stays).
    /// What changes data is asked about first; a dry-run plan goes at once.
    fn run_line(&mut self, line: &str) -> Result<(), String> {
        let ctx = self.state.command_context();
        match command::parse(line, &ctx)? {
            Parsed::Quit => self.state.quit = true,
            Parsed::Help => {
                let text = command::help(&ctx);
                self.state.overlay =
                    Some(Overlay::Output(Output::new("Commands (:)", &text, true)));
            }
            Parsed::View(v) => self.show(v),
            Parsed::Customer { tenant, no } => self.open_customer(tenant, no),
            Parsed::Run(run) => {
                command::check(&run, &ctx)?;
                if command::writes(&run) {
                    self.state.overlay = Some(Overlay::Confirm(command::confirm(&run)));
                } else {
                    self.state.notice = Some(Notice {
                        text: format!(":{line}: sent, waiting for the daemon…"),
                        kind: NoticeKind::Pending,
                    });
                    self.effects.push(Effect::Act(Act::Run(run)));
                }
            }
        }
        Ok(())
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
        if let Some(Overlay::Alerts(list)) = &mut self.state.overlay {
            match action {
                Action::Quit => self.state.quit = true,
                Action::ShowAlerts | Action::Back => self.state.overlay = None,
                a => {
                    let alerts = self
                        .state
                        .overview
                        .data
                        .as_ref()
                        .map(|o| o.alerts.as_slice());
                    let (width, rows) = (self.state.width, self.state.page_rows);
                    list.scroll(a, alerts.unwrap_or(&[]), width, rows);
                }
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
        if let Some(why) = self.state.unavailable(action) {
            self.notice(why, true);
            return;
        }
        match action {
            Action::Quit => self.state.quit = true,
            Action::ToggleHelp => self.state.overlay = Some(Overlay::Help),
            Action::CommandLine => self.state.command.open(),
            Action::Refresh => {
                if self.state.connected() {
                    self.fetch_view();
                } else {
                    self.effects.push(Effect::Reconnect);
                }
            }
            Action::NextView => {
                let n = View::ALL.len();
                self.show(View::ALL[(self.state.tab().position() + 1) % n]);
            }
            Action::PrevView => {
                let n = View::ALL.len();
                self.show(View::ALL[(self.state.tab().position() + n - 1) % n]);
            }
            Action::ShowView(v) => self.show(v),
            Action::ShowAlerts => {
                self.state.overlay = Some(Overlay::Alerts(AlertsList::default()));
            }
            Action::ToggleMouse => {
                self.state.mouse = !self.state.mouse;
                if self.state.mouse {
                    self.notice("mouse on: click tabs and rows, the wheel scrolls", false);
                } else {
                    self.notice("mouse off: the terminal selects text; m turns it on", false);
                }
            }
            _ => {
                let screen = self.state.screen();
                let mut out = Vec::new();
                let s = &mut self.state;
                match s.view {
                    View::Overview => s.overview.update(action, &mut out),
                    View::Queue => s.queue.update(action, screen, &mut out),
                    View::Approvals => s.approvals.update(action, screen, &mut out),
                    View::Tenants => s.tenants.update(action, screen, &mut out),
                    View::Policies => s.policies.update(action, screen, &mut out),
                    View::Results => s.results.update(action, screen, &mut out),
                    View::Customer => s.customer.update(action, screen, &mut out),
                }
                self.run(out);
            }
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
        // The brand role may not read the daemon's status (it names tenants).
        if self
            .state
            .identity()
            .is_none_or(|i| i.role.allows(&Request::Status))
        {
            self.fetch(Fetch::Status);
        }
        let screen = self.state.screen();
        let mut out = Vec::new();
        let s = &mut self.state;
        match s.view {
            View::Overview => s.overview.fetch(&mut out),
            View::Queue => s.queue.fetch(screen, &mut out),
            View::Approvals => s.approvals.fetch(&mut out),
            View::Tenants => s.tenants.fetch(&mut out),
            View::Policies => s.policies.fetch(&mut out),
            View::Results => s.results.fetch(screen, &mut out),
            View::Customer => s.customer.fetch(&mut out),
        }
        self.run(out);
    }

    fn fetch_preview(&mut self, id: u64) {
        match self.state.preview_tenant() {
            Some(tenant) => self.fetch(Fetch::Preview { id, tenant }),
            None => self.notice("no tenant to preview for: open one in 4 Tenants", true),
        }
    }

    /// Shows a stored customer of `tenant` (the dealer's customer number)
    /// in the customer view, as the daemon answers `touchpoint customer`;
    /// Esc goes back to the view on screen now. What `c` on a message
    /// does; for any other way in (a command line).
    pub fn open_customer(&mut self, tenant: TenantId, customer: String) {
        let from = self.state.view;
        self.state.customer.open(tenant, customer, from);
        self.state.view = View::Customer;
        self.fetch_view();
    }

    /// A message of the customer view in the queue: the cursor on it, its
    /// detail open; the queue's order stays.
    fn show_queue_message(&mut self, tenant: TenantId, id: u64, filter: QueueFilter) {
        let f = QueueFilter {
            sort: self.state.queue.filter.sort,
            ..filter
        };
        self.state.view = View::Queue;
        let screen = self.state.screen();
        let mut out = Vec::new();
        self.state
            .queue
            .show_message(tenant, id, f, screen, &mut out);
        self.run(out);
        self.fetch_view();
    }

    /// The queue of one tenant (Enter in the tenants view): that tenant
    /// alone, no other criterion of an earlier filter; the order stays.
    fn show_queue_of(&mut self, tenant: TenantId) {
        let f = QueueFilter {
            tenants: vec![tenant],
            sort: self.state.queue.filter.sort,
            ..QueueFilter::default()
        };
        self.state.view = View::Queue;
        let screen = self.state.screen();
        let mut out = Vec::new();
        self.state.queue.set_filter(f, screen, &mut out);
        self.run(out);
        self.fetch_view();
    }

    /// Enter in the input popup: the view the input is for takes it.
    fn submit(&mut self, input: Input) {
        let screen = self.state.screen();
        let mut out = Vec::new();
        let s = &mut self.state;
        match input.purpose {
            InputPurpose::QueueFilter => s.queue.submit(input, screen, &mut out),
            InputPurpose::AuditFilter => s.policies.submit(input, &mut out),
            InputPurpose::ApproveComment { .. } | InputPurpose::RejectComment { .. } => {
                s.approvals.submit(input, &mut out)
            }
        }
        self.run(out);
    }

    /// Applies a report from the connection; true when the screen must be redrawn.
    pub fn apply(&mut self, event: NetEvent) -> bool {
        match event {
            NetEvent::Connecting { attempt } => {
                replace(&mut self.state.conn, ConnState::Connecting { attempt })
            }
            NetEvent::Connected { daemon, identity } => {
                self.state.results.set_role(identity.role);
                self.state.policies.set_role(identity.role);
                // A role that may not see the overview (the brand) starts
                // where it may look: its results.
                if self.state.view == View::Overview
                    && !identity.role.allows(&Request::Overview { day: None })
                {
                    self.state.view = View::Results;
                }
                self.state.conn = ConnState::Connected { daemon, identity };
                // What was said of the connection that was lost (not sent,
                // maybe done, a refusal or a wait of then) is no news of
                // this one: the view is read again and shows what stands.
                if self
                    .state
                    .notice
                    .as_ref()
                    .is_some_and(|n| n.kind != NoticeKind::Done)
                {
                    self.state.notice = None;
                }
                self.fetch_view();
                // The header's pauses and the Approvals badge are the
                // overview's, which may have changed while away.
                if self.state.view != View::Overview
                    && self
                        .state
                        .identity()
                        .is_some_and(|i| i.role.allows(&Request::Overview { day: None }))
                {
                    let mut out = Vec::new();
                    self.state.overview.fetch(&mut out);
                    self.run(out);
                }
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
                // The pane shows it too: no "loading…" forever.
                match what {
                    "queue" => {
                        self.state.queue.on_failed(error.clone());
                    }
                    "customer" => {
                        self.state.customer.on_failed(error.clone());
                    }
                    _ => {}
                }
                self.notice(format!("{what}: {error}"), true);
                true
            }
            NetEvent::Acted { summary, ok } => {
                self.notice(summary, !ok);
                if ok {
                    self.state.queue.on_acted();
                }
                // The change feed brings the new state; ask anyway, in case
                // nothing changed (every action refused).
                self.fetch_view();
                true
            }
            NetEvent::Ran {
                title,
                summary,
                text,
                ok,
            } => {
                self.notice(summary, !ok);
                self.state.overlay = Some(Overlay::Output(Output::new(title, &text, ok)));
                // The change feed brings what changed; ask anyway.
                self.fetch_view();
                true
            }
            NetEvent::Data(d) => self.apply_data(d),
        }
    }

    /// Re-reads what the current view shows of what changed.
    fn on_changed(&mut self, c: &Changes) {
        if c.topics.contains(&Topic::Policy) {
            self.fetch(Fetch::Status);
        }
        let screen = self.state.screen();
        let mut out = Vec::new();
        let s = &mut self.state;
        // The Approvals tab's badge is the overview's count of pending
        // proposals, and the header's pauses are the overview's: kept
        // current whichever view is on screen.
        if s.view != View::Overview
            && (c.topics.contains(&Topic::Approvals) || c.topics.contains(&Topic::Dispatch))
            && s.identity()
                .is_some_and(|i| i.role.allows(&Request::Overview { day: None }))
        {
            s.overview.fetch(&mut out);
        }
        match s.view {
            View::Overview => s.overview.on_changed(c, &mut out),
            View::Queue => s.queue.on_changed(c, screen, &mut out),
            View::Approvals => s.approvals.on_changed(c, &mut out),
            View::Tenants => s.tenants.on_changed(c, &mut out),
            View::Policies => s.policies.on_changed(c, &mut out),
            View::Results => s.results.on_changed(c, screen, &mut out),
            View::Customer => s.customer.on_changed(c, &mut out),
        }
        self.run(out);
    }

    /// Hands an answer to the view it is for, whichever is on screen.
    fn apply_data(&mut self, d: Data) -> bool {
        let screen = self.state.screen();
        let mut out = Vec::new();
        let s = &mut self.state;
        let changed = match d {
            Data::Status(st) => replace(&mut s.status, Some(*st)),
            Data::Overview(o) => s.overview.on_data(*o),
            Data::Queue(page) => s.queue.on_page(*page, screen, &mut out),
            Data::Message { tenant, message } => s.queue.on_message(tenant, *message),
            Data::Content(c) => s.queue.on_content(*c),
            Data::Tenants(list) => s.tenants.on_list(list, &mut out),
            Data::Costs { month, rows } => s.tenants.on_costs(month, rows),
            Data::Tenant(d) => s.tenants.on_detail(*d),
            Data::Proposals(list) => s.approvals.on_list(list, &mut out),
            Data::Proposal(d) => s.approvals.on_detail(*d),
            Data::Preview(p) => s.approvals.on_preview(*p),
            Data::Audit { text, entries } => s.policies.on_audit(text, entries),
            Data::Report(r) => s.results.on_report(*r),
            Data::Learning(l) => s.policies.on_learning(*l),
            Data::Customer {
                tenant,
                customer,
                answer,
            } => s.customer.on_data(tenant, customer, answer),
        };
        self.run(out);
        changed
    }

    /// Follows a terminal resize.
    pub fn resize(&mut self, width: u16, height: u16) {
        let was = self.state.screen();
        self.state.width = width;
        self.state.height = height;
        // The queue's list: all but the tab line, the filter line, the
        // pane's title, the table header and the footer.
        self.state.page_rows = usize::from(height.saturating_sub(5)).max(1);
        if self.state.connected() {
            let now = self.state.screen();
            let mut out = Vec::new();
            match self.state.view {
                View::Queue => self.state.queue.on_resize(was, now, &mut out),
                View::Results => self.state.results.on_resize(was, now, &mut out),
                _ => {}
            }
            self.run(out);
        }
    }
}

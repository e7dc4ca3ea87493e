//! The queue: every message in scope, filtered and paged by the daemon; the
//! console holds only a window of rows around the cursor and builds only the
//! rows on screen. Marking, holding, releasing, cancelling and retrying go
//! through a confirmation. The state and its update are here, the drawing
//! in `queue/draw.rs`.

mod draw;

use std::collections::BTreeSet;

use touchpoint_common::outbox::Message;
use touchpoint_common::protocol::{
    Changes, MessageAction, MessageContent, QueueFilter, QueuePage, QueueRow, Topic,
};
use touchpoint_common::TenantId;

use super::{move_cursor, replace, scroll, Cmd, Screen};
use crate::tui::action::Action;
use crate::tui::msg::{Act, Fetch};
use crate::tui::popup::{Confirm, Input, InputPurpose, Overlay};
use crate::tui::widgets::{ROOMY, WIDE};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueView {
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
    /// How far the detail can scroll, as last drawn: scrolling stops at
    /// its end instead of into a blank pane.
    pub detail_max: std::cell::Cell<u16>,
    /// The window last asked for, so that an answer for an older one is ignored.
    pub requested: Option<(QueueFilter, u64)>,
    /// The daemon refused the last listing (a tenant it does not know, a
    /// service the brand has not): shown in the pane instead of rows.
    pub error: Option<String>,
    /// At [`ROOMY`] columns or more: the detail pane hidden, the list
    /// takes its room.
    pub detail_hidden: bool,
    /// A message to put the cursor on when the next listing comes
    /// ([`QueueView::show_message`]).
    pub follow: Option<(TenantId, u64)>,
}

impl QueueView {
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

    /// Queue rows the next message action applies to: the marked ones, or
    /// the one under the cursor.
    pub fn action_targets(&self) -> Vec<(TenantId, Vec<u64>)> {
        let mut out: Vec<(TenantId, Vec<u64>)> = Vec::new();
        let mut push = |t: &TenantId, id: u64| match out.iter_mut().find(|(x, _)| x == t) {
            Some((_, ids)) => ids.push(id),
            None => out.push((t.clone(), vec![id])),
        };
        if self.marks.is_empty() {
            if let Some(r) = self.selected_row() {
                push(&r.tenant, r.id);
            }
        } else {
            for (t, id) in &self.marks {
                push(t, *id);
            }
        }
        out
    }

    /// Asks for everything the view shows.
    pub fn fetch(&mut self, screen: Screen, out: &mut Vec<Cmd>) {
        self.fetch_rows(screen, out);
        self.fetch_detail(screen, out);
    }

    /// Rows of the queue on screen: one page. The list is drawn in whole
    /// pages (see `widgets::page_top`), and the console holds three: the one
    /// on screen and its neighbours.
    fn page_rows(screen: Screen) -> u64 {
        screen.page_rows.clamp(1, 333) as u64
    }

    /// The pages before, on and after the cursor's: `(offset, limit)`.
    fn window(&self, screen: Screen) -> (u64, u64) {
        let visible = Self::page_rows(screen);
        let top = self.selected / visible * visible;
        (top.saturating_sub(visible), 3 * visible)
    }

    /// Asks for the window around the cursor.
    fn fetch_rows(&mut self, screen: Screen, out: &mut Vec<Cmd>) {
        let (offset, limit) = self.window(screen);
        let filter = self.filter.clone();
        self.requested = Some((filter.clone(), offset));
        out.push(Cmd::Fetch(Fetch::Queue {
            filter,
            offset,
            limit: limit as u32,
        }));
    }

    /// Whether the page on screen or a neighbour is not held: one request
    /// when the cursor enters another page, none while it moves within one.
    fn needs_window(&self, screen: Screen) -> bool {
        let Some(p) = &self.page else {
            return true;
        };
        let (want_from, limit) = self.window(screen);
        let want_to = (want_from + limit).min(p.total);
        let held_to = p.offset + p.rows.len() as u64;
        !(p.offset <= want_from && held_to >= want_to)
    }

    /// Whether the detail pane is beside the list (wide, and not hidden).
    pub fn detail_beside(&self, width: u16) -> bool {
        width >= WIDE && !(self.detail_hidden && width >= ROOMY)
    }

    fn fetch_detail(&self, screen: Screen, out: &mut Vec<Cmd>) {
        if !self.detail_open && !self.detail_beside(screen.width) {
            return;
        }
        if let Some(r) = self.selected_row() {
            let (tenant, id) = (r.tenant.clone(), r.id);
            out.push(Cmd::Fetch(Fetch::Message {
                tenant: tenant.clone(),
                id,
            }));
            out.push(Cmd::Fetch(Fetch::Content { tenant, id }));
        }
    }

    /// A user action while the queue is on screen.
    pub fn update(&mut self, action: Action, screen: Screen, out: &mut Vec<Cmd>) {
        let page = screen.page_rows;
        match action {
            // With the detail open, paging scrolls the message, not the list.
            Action::PageDown | Action::PageUp if self.detail_open => {
                let step = u16::try_from(page).unwrap_or(u16::MAX).max(1);
                self.detail_scroll = if action == Action::PageDown {
                    self.detail_scroll
                        .saturating_add(step)
                        .min(self.detail_max.get())
                } else {
                    self.detail_scroll.saturating_sub(step)
                };
            }
            a if a.is_move() => {
                let total = self.total();
                if move_cursor(&mut self.selected, total, action, page) {
                    self.detail_scroll = 0;
                    if self.needs_window(screen) {
                        self.fetch_rows(screen, out);
                    }
                    self.fetch_detail(screen, out);
                }
            }
            Action::NextSort | Action::ReverseSort => {
                let mut f = self.filter.clone();
                if action == Action::NextSort {
                    f.sort.key = f.sort.key.next();
                } else {
                    f.sort.reversed = !f.sort.reversed;
                }
                self.set_filter(f, screen, out);
            }
            Action::ToggleDetailPane => {
                if screen.width < ROOMY {
                    out.push(Cmd::Notice {
                        text: format!(
                            "the detail pane can be hidden at {ROOMY} columns or more; Enter shows a message"
                        ),
                        error: false,
                    });
                } else {
                    self.detail_hidden = !self.detail_hidden;
                    self.fetch_detail(screen, out);
                }
            }
            Action::Open => {
                self.detail_open = !self.detail_open;
                self.detail_scroll = 0;
                self.fetch_detail(screen, out);
            }
            Action::Back => {
                if self.detail_open {
                    self.detail_open = false;
                } else if !self.marks.is_empty() {
                    self.marks.clear();
                } else if !self.filter.is_empty() {
                    // The criteria go; the order stays.
                    let cleared = QueueFilter {
                        sort: self.filter.sort,
                        ..QueueFilter::default()
                    };
                    self.set_filter(cleared, screen, out);
                }
            }
            Action::DetailDown | Action::DetailUp => {
                scroll(&mut self.detail_scroll, action);
                self.detail_scroll = self.detail_scroll.min(self.detail_max.get());
            }
            Action::Filter => {
                let text = self.filter.to_string();
                let text = if text.is_empty() { text } else { text + " " };
                out.push(Cmd::Open(Overlay::Input(Input::new(
                    InputPurpose::QueueFilter,
                    text,
                ))));
            }
            Action::Mark => {
                if let Some(r) = self.selected_row() {
                    let key = (r.tenant.clone(), r.id);
                    if !self.marks.remove(&key) {
                        self.marks.insert(key);
                    }
                    let total = self.total();
                    if move_cursor(&mut self.selected, total, Action::Down, page)
                        && self.needs_window(screen)
                    {
                        self.fetch_rows(screen, out);
                    }
                    self.fetch_detail(screen, out);
                }
            }
            Action::MarkAll => {
                // The rows on screen: what the user sees is what is marked.
                let visible = Self::page_rows(screen);
                if let Some(p) = &self.page {
                    let top = self.selected / visible * visible;
                    let keys: Vec<_> = p
                        .rows
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| (top..top + visible).contains(&(p.offset + *i as u64)))
                        .map(|(_, r)| (r.tenant.clone(), r.id))
                        .collect();
                    let n = keys.len();
                    self.marks.extend(keys);
                    out.push(Cmd::Notice {
                        text: format!("marked the {n} messages on screen"),
                        error: false,
                    });
                }
            }
            Action::ClearMarks => self.marks.clear(),
            Action::OpenCustomer => {
                if let Some(r) = self.selected_row() {
                    out.push(Cmd::Customer {
                        tenant: r.tenant.clone(),
                        customer: r.recipient.clone(),
                    });
                }
            }
            Action::Act(a) => self.confirm(a, out),
            _ => {}
        }
    }

    /// Enter in the filter popup: a filter that does not parse stays open
    /// with the error.
    pub fn submit(&mut self, mut input: Input, screen: Screen, out: &mut Vec<Cmd>) {
        match QueueFilter::parse(&input.text) {
            Ok(f) => self.set_filter(f, screen, out),
            Err(e) => {
                input.error = Some(e.to_string());
                out.push(Cmd::Open(Overlay::Input(input)));
            }
        }
    }

    pub fn set_filter(&mut self, filter: QueueFilter, screen: Screen, out: &mut Vec<Cmd>) {
        if self.filter == filter {
            return;
        }
        self.load(filter, screen, out);
    }

    /// The listing under `filter` with the cursor on message `id` of
    /// `tenant` once it comes, and that message's detail open.
    pub fn show_message(
        &mut self,
        tenant: TenantId,
        id: u64,
        filter: QueueFilter,
        screen: Screen,
        out: &mut Vec<Cmd>,
    ) {
        self.follow = Some((tenant, id));
        self.detail_open = true;
        self.load(filter, screen, out);
    }

    /// Asks for the first rows under `filter`, forgetting the old rows.
    fn load(&mut self, filter: QueueFilter, screen: Screen, out: &mut Vec<Cmd>) {
        self.filter = filter;
        self.selected = 0;
        self.detail_scroll = 0;
        self.error = None;
        // Rows of the old filter must not stay on screen (nor be acted on)
        // under the new one.
        self.page = None;
        self.fetch_rows(screen, out);
    }

    fn confirm(&self, action: MessageAction, out: &mut Vec<Cmd>) {
        let targets = self.action_targets();
        let n: usize = targets.iter().map(|(_, ids)| ids.len()).sum();
        if n == 0 {
            out.push(Cmd::Notice {
                text: "no message selected".into(),
                error: true,
            });
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
            MessageAction::SendNow => {
                "Emails go out now instead of at their planned time, letters and calls \
                 with today's batch; consent, throttles and this month's budget are \
                 still checked, the contact rules (minimum gap) are not."
                    .into()
            }
        });
        let plural = if n == 1 { "" } else { "s" };
        out.push(Cmd::Open(Overlay::Confirm(Confirm {
            title: format!("{} {n} message{plural}", capitalised(verb)),
            lines,
            act: Act::Messages { action, targets },
        })));
    }

    /// The daemon says something changed: read the rows again when it is
    /// about the outbox of a tenant the queue shows.
    pub fn on_changed(&mut self, c: &Changes, screen: Screen, out: &mut Vec<Cmd>) {
        if c.topics.contains(&Topic::Outbox) {
            let about_us = self.filter.tenants.is_empty()
                || c.tenants.is_empty()
                || self.filter.tenants.iter().any(|t| c.tenants.contains(t));
            if about_us {
                self.fetch_rows(screen, out);
                self.fetch_detail(screen, out);
            }
        }
    }

    /// A window of rows came; returns whether the screen must be redrawn.
    pub fn on_page(&mut self, page: QueuePage, screen: Screen, out: &mut Vec<Cmd>) -> bool {
        if self.requested.as_ref() != Some(&(page.filter.clone(), page.offset)) {
            return false;
        }
        // The message asked for (a customer's, Enter in the customer
        // view); else stay on the same message when rows moved (newer
        // ones planned above it), else keep the position inside the
        // listing when it shrank.
        let follow = self.follow.take();
        let following = follow
            .clone()
            .or_else(|| self.selected_row().map(|r| (r.tenant.clone(), r.id)));
        let found = following.and_then(|(t, id)| {
            page.rows
                .iter()
                .position(|r| r.id == id && r.tenant == t)
                .map(|i| page.offset + i as u64)
        });
        if let (Some((t, id)), None) = (&follow, found) {
            self.detail_open = false;
            out.push(Cmd::Notice {
                text: format!("message #{id} of {t} is not among the rows of this filter"),
                error: true,
            });
        }
        self.selected = found
            .unwrap_or(self.selected)
            .min(page.total.saturating_sub(1));
        self.error = None;
        let changed = replace(&mut self.page, Some(page));
        if self.total() > 0 && (self.selected_row().is_none() || self.needs_window(screen)) {
            // The cursor is not among the rows held (the listing
            // shrank, or it moved): ask for the rows around it.
            self.fetch_rows(screen, out);
        } else if self.current_detail().is_none() {
            self.fetch_detail(screen, out);
        }
        changed
    }

    /// The daemon refused the listing: the pane says why, and rows of
    /// another filter are not left on screen as if they were its answer.
    pub fn on_failed(&mut self, error: String) -> bool {
        self.page = None;
        self.requested = None;
        self.follow = None;
        replace(&mut self.error, Some(error))
    }

    /// A message's explanation and history came.
    pub fn on_message(&mut self, tenant: TenantId, message: Message) -> bool {
        replace(&mut self.detail, Some((tenant, message)))
    }

    /// A message's rendered content came.
    pub fn on_content(&mut self, content: MessageContent) -> bool {
        replace(&mut self.content, Some(content))
    }

    /// A confirmed action was carried out: the marks were for it.
    pub fn on_acted(&mut self) {
        self.marks.clear();
    }

    /// The terminal was resized while the queue is on screen.
    pub fn on_resize(&mut self, was: Screen, now: Screen, out: &mut Vec<Cmd>) {
        if self.needs_window(now) {
            self.fetch_rows(now, out);
        }
        if !self.detail_beside(was.width)
            && self.detail_beside(now.width)
            && self.current_detail().is_none()
        {
            self.fetch_detail(now, out);
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

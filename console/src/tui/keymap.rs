//! The keymap is data: every binding has a description, and the `?` help and
//! the footer hints are generated from this table. A binding belongs to
//! every view or to some; a view's own bindings are looked up first.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use touchpoint_common::protocol::MessageAction;

use super::action::{Action, View};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

const fn ch(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        mods: KeyModifiers::NONE,
    }
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        mods: KeyModifiers::CONTROL,
    }
}

const fn code(code: KeyCode) -> Key {
    Key {
        code,
        mods: KeyModifiers::NONE,
    }
}

pub struct Binding {
    pub keys: &'static [Key],
    pub action: Action,
    pub description: &'static str,
    /// Short label for the footer, if the binding is worth a hint there.
    pub hint: Option<&'static str>,
    /// The views it works in; empty for all.
    pub views: &'static [View],
}

const ALL: &[View] = &[];
const QUEUE: &[View] = &[View::Queue];
const APPROVALS: &[View] = &[View::Approvals];
const RESULTS: &[View] = &[View::Results];
const OVERVIEW: &[View] = &[View::Overview];
const DETAIL_VIEWS: &[View] = &[View::Queue, View::Approvals, View::Tenants];
const FILTER_VIEWS: &[View] = &[View::Queue, View::Policies];
const CUSTOMER: &[View] = &[View::Customer];

const fn bind(
    keys: &'static [Key],
    action: Action,
    description: &'static str,
    hint: Option<&'static str>,
    views: &'static [View],
) -> Binding {
    Binding {
        keys,
        action,
        description,
        hint,
        views,
    }
}

pub static KEYMAP: &[Binding] = &[
    bind(
        &[ch('q'), ctrl('c')],
        Action::Quit,
        "quit",
        Some("quit"),
        ALL,
    ),
    bind(
        &[ch('?')],
        Action::ToggleHelp,
        "show or hide this help",
        Some("help"),
        ALL,
    ),
    bind(
        &[ch(':')],
        Action::CommandLine,
        "command line (see :help)",
        Some("command"),
        ALL,
    ),
    bind(
        &[code(KeyCode::Esc)],
        Action::Back,
        "back; clears marks, filter",
        None,
        ALL,
    ),
    bind(
        &[code(KeyCode::Tab)],
        Action::NextView,
        "next view",
        None,
        ALL,
    ),
    bind(
        &[code(KeyCode::BackTab)],
        Action::PrevView,
        "previous view",
        None,
        ALL,
    ),
    bind(
        &[ch('1')],
        Action::ShowView(View::Overview),
        "overview",
        None,
        ALL,
    ),
    bind(
        &[ch('2')],
        Action::ShowView(View::Queue),
        "queue",
        None,
        ALL,
    ),
    bind(
        &[ch('3')],
        Action::ShowView(View::Approvals),
        "approvals",
        None,
        ALL,
    ),
    bind(
        &[ch('4')],
        Action::ShowView(View::Tenants),
        "tenants",
        None,
        ALL,
    ),
    bind(
        &[ch('5')],
        Action::ShowView(View::Policies),
        "policies and audit log",
        None,
        ALL,
    ),
    bind(
        &[ch('6')],
        Action::ShowView(View::Results),
        "results: responses, control groups, lift",
        None,
        ALL,
    ),
    bind(
        &[ch('j'), code(KeyCode::Down)],
        Action::Down,
        "move down",
        None,
        ALL,
    ),
    bind(
        &[ch('k'), code(KeyCode::Up)],
        Action::Up,
        "move up",
        None,
        ALL,
    ),
    bind(
        &[ch('g'), code(KeyCode::Home)],
        Action::Top,
        "first row",
        None,
        ALL,
    ),
    bind(
        &[ch('G'), code(KeyCode::End)],
        Action::Bottom,
        "last row",
        None,
        ALL,
    ),
    bind(
        &[code(KeyCode::PageDown), ctrl('d')],
        Action::PageDown,
        "page down",
        None,
        ALL,
    ),
    bind(
        &[code(KeyCode::PageUp), ctrl('u')],
        Action::PageUp,
        "page up",
        None,
        ALL,
    ),
    bind(
        &[ch('/')],
        Action::Filter,
        "filter",
        Some("filter"),
        FILTER_VIEWS,
    ),
    bind(
        &[code(KeyCode::Enter)],
        Action::Open,
        "message detail on / off",
        Some("detail"),
        QUEUE,
    ),
    bind(
        &[code(KeyCode::Enter)],
        Action::Open,
        "the message under the cursor in the queue",
        Some("in queue"),
        CUSTOMER,
    ),
    bind(&[ch('s')], Action::NextSort, "next sort key", None, QUEUE),
    bind(
        &[ch('S')],
        Action::ReverseSort,
        "reverse the order",
        None,
        QUEUE,
    ),
    bind(
        &[ch('d')],
        Action::ToggleDetailPane,
        "detail pane off/on (wide)",
        None,
        QUEUE,
    ),
    bind(
        &[code(KeyCode::Enter)],
        Action::Open,
        "the tenant's queue",
        Some("queue"),
        &[View::Tenants],
    ),
    bind(
        &[ch('J'), ctrl('n')],
        Action::DetailDown,
        "scroll the detail down",
        None,
        DETAIL_VIEWS,
    ),
    bind(
        &[ch('K'), ctrl('p')],
        Action::DetailUp,
        "scroll the detail up",
        None,
        DETAIL_VIEWS,
    ),
    bind(
        &[ch(' ')],
        Action::Mark,
        "mark / unmark",
        Some("mark"),
        QUEUE,
    ),
    bind(
        &[ch('*')],
        Action::MarkAll,
        "mark every loaded row",
        None,
        QUEUE,
    ),
    bind(
        &[ch('u')],
        Action::ClearMarks,
        "clear the marks",
        None,
        QUEUE,
    ),
    bind(
        &[ch('H')],
        Action::Act(MessageAction::Hold),
        "hold marked or selected",
        Some("hold"),
        QUEUE,
    ),
    bind(
        &[ch('L')],
        Action::Act(MessageAction::Release),
        "release (let go)",
        Some("release"),
        QUEUE,
    ),
    bind(
        &[ch('X')],
        Action::Act(MessageAction::Cancel),
        "cancel (never send)",
        Some("cancel"),
        QUEUE,
    ),
    bind(
        &[ch('R')],
        Action::Act(MessageAction::Retry),
        "retry deferred / failed",
        Some("retry"),
        QUEUE,
    ),
    bind(
        &[ch('N')],
        Action::Act(MessageAction::SendNow),
        "send planned now",
        Some("send now"),
        QUEUE,
    ),
    bind(
        &[ch('c')],
        Action::OpenCustomer,
        "the recipient's customer",
        Some("customer"),
        QUEUE,
    ),
    bind(
        &[ch('a')],
        Action::Approve,
        "approve (with comment)",
        Some("approve"),
        APPROVALS,
    ),
    bind(
        &[ch('x')],
        Action::Reject,
        "reject (with reason)",
        Some("reject"),
        APPROVALS,
    ),
    bind(
        &[ch('p')],
        Action::Preview,
        "preview / diff",
        Some("preview"),
        APPROVALS,
    ),
    bind(
        &[ch('A')],
        Action::ToggleAll,
        "pending only / all",
        Some("all"),
        APPROVALS,
    ),
    bind(
        &[ch('p')],
        Action::TogglePooled,
        "pooled over every dealer / my tenants",
        Some("pooled"),
        RESULTS,
    ),
    bind(
        &[ch('b')],
        Action::NextBreakdown,
        "next breakdown: lead time, weekday, hour",
        Some("breakdown"),
        RESULTS,
    ),
    bind(
        &[ch('[')],
        Action::PrevDay,
        "the day before (Esc: the next day anything goes out)",
        Some("day"),
        OVERVIEW,
    ),
    bind(&[ch(']')], Action::NextDay, "the day after", None, OVERVIEW),
    bind(
        &[ch('!')],
        Action::ShowAlerts,
        "every alert, in a list that scrolls",
        Some("alerts"),
        OVERVIEW,
    ),
    bind(
        &[ch('m')],
        Action::ToggleMouse,
        "mouse off/on: select text",
        None,
        ALL,
    ),
    bind(
        &[ch('r')],
        Action::Refresh,
        "reload / reconnect now",
        None,
        ALL,
    ),
];

fn works_in(b: &Binding, view: View) -> bool {
    b.views.is_empty() || b.views.contains(&view)
}

/// The action bound to a key press in a view, if any. Shift is ignored for
/// characters (terminals disagree on whether `G` or `?` carries it).
pub fn action_for(event: &KeyEvent, view: View) -> Option<Action> {
    if event.kind == KeyEventKind::Release {
        return None;
    }
    let mods = match event.code {
        KeyCode::Char(_) | KeyCode::BackTab => event.modifiers - KeyModifiers::SHIFT,
        _ => event.modifiers,
    };
    let hit = |b: &&Binding| {
        b.keys
            .iter()
            .any(|k| k.code == event.code && k.mods == mods)
    };
    // A view's own binding wins over a global one.
    KEYMAP
        .iter()
        .filter(|b| !b.views.is_empty() && b.views.contains(&view))
        .find(hit)
        .or_else(|| KEYMAP.iter().filter(|b| b.views.is_empty()).find(hit))
        .map(|b| b.action)
}

pub fn key_label(k: &Key) -> String {
    let base = match k.code {
        KeyCode::Char(' ') => "Space".to_string(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Up => "↑".into(),
        KeyCode::Down => "↓".into(),
        KeyCode::Left => "←".into(),
        KeyCode::Right => "→".into(),
        KeyCode::PageUp => "PgUp".into(),
        KeyCode::PageDown => "PgDn".into(),
        KeyCode::Home => "Home".into(),
        KeyCode::End => "End".into(),
        KeyCode::Enter => "Enter".into(),
        KeyCode::Esc => "Esc".into(),
        KeyCode::Tab => "Tab".into(),
        KeyCode::BackTab => "S-Tab".into(),
        other => format!("{other:?}"),
    };
    if k.mods.contains(KeyModifiers::CONTROL) {
        format!("Ctrl-{base}")
    } else {
        base
    }
}

/// `j/↓`
pub fn keys_label(b: &Binding) -> String {
    b.keys.iter().map(key_label).collect::<Vec<_>>().join("/")
}

/// Bindings that work in a view and that the caller may use, for the help.
pub fn bindings_for(view: View, allowed: impl Fn(Action) -> bool) -> Vec<&'static Binding> {
    KEYMAP
        .iter()
        .filter(|b| works_in(b, view) && allowed(b.action))
        .collect()
}

/// Footer hints for a view: `(first key, label)`.
pub fn hints(view: View, allowed: impl Fn(Action) -> bool) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = vec![("?".into(), "help"), (":".into(), "command")];
    out.extend(
        KEYMAP
            .iter()
            .filter(|b| works_in(b, view) && !b.views.is_empty() && allowed(b.action))
            .filter_map(|b| Some((b.keys.first().map(key_label)?, b.hint?))),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_is_bound_twice_in_a_view() {
        for view in View::ALL.into_iter().chain([View::Customer]) {
            let mut seen: Vec<Key> = Vec::new();
            for b in KEYMAP.iter().filter(|b| works_in(b, view)) {
                for k in b.keys {
                    assert!(
                        !seen.contains(k),
                        "{} is bound twice in {view:?}",
                        key_label(k)
                    );
                    seen.push(*k);
                }
            }
        }
    }

    #[test]
    fn shifted_characters_and_view_bindings_match() {
        let ev = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(action_for(&ev, View::Queue), Some(Action::Bottom));
        let ev = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action_for(&ev, View::Overview), Some(Action::Quit));
        let ev = KeyEvent::new(KeyCode::Char('H'), KeyModifiers::SHIFT);
        assert_eq!(
            action_for(&ev, View::Queue),
            Some(Action::Act(MessageAction::Hold))
        );
        assert_eq!(action_for(&ev, View::Overview), None);
        let ev = KeyEvent::new(KeyCode::Char('a'), KeyModifiers::NONE);
        assert_eq!(action_for(&ev, View::Approvals), Some(Action::Approve));
        assert_eq!(action_for(&ev, View::Queue), None);
        let ev = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE);
        assert_eq!(action_for(&ev, View::Queue), Some(Action::OpenCustomer));
        let ev = KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(action_for(&ev, View::Customer), Some(Action::Open));
    }
}

//! The keymap is data: every binding has a description, and the `?` help and
//! the footer hints are generated from this table.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{Action, View};

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
    /// Views whose footer shows the hint; empty for all views.
    pub hint_views: &'static [View],
}

pub static KEYMAP: &[Binding] = &[
    Binding {
        keys: &[ch('q'), ctrl('c')],
        action: Action::Quit,
        description: "quit",
        hint: Some("quit"),
        hint_views: &[],
    },
    Binding {
        keys: &[ch('?')],
        action: Action::ToggleHelp,
        description: "show or hide this help",
        hint: Some("help"),
        hint_views: &[],
    },
    Binding {
        keys: &[code(KeyCode::Esc)],
        action: Action::Back,
        description: "back / close the help",
        hint: Some("back"),
        hint_views: &[View::Detail],
    },
    Binding {
        keys: &[code(KeyCode::Tab)],
        action: Action::NextView,
        description: "next view",
        hint: Some("view"),
        hint_views: &[],
    },
    Binding {
        keys: &[code(KeyCode::BackTab)],
        action: Action::PrevView,
        description: "previous view",
        hint: None,
        hint_views: &[],
    },
    Binding {
        keys: &[ch('1')],
        action: Action::ShowView(View::Tenants),
        description: "tenants",
        hint: None,
        hint_views: &[],
    },
    Binding {
        keys: &[ch('2')],
        action: Action::ShowView(View::Detail),
        description: "tenant detail",
        hint: None,
        hint_views: &[],
    },
    Binding {
        keys: &[ch('3')],
        action: Action::ShowView(View::Status),
        description: "daemon status",
        hint: None,
        hint_views: &[],
    },
    Binding {
        keys: &[ch('j'), code(KeyCode::Down)],
        action: Action::Down,
        description: "move down",
        hint: Some("move"),
        hint_views: &[View::Tenants, View::Detail],
    },
    Binding {
        keys: &[ch('k'), code(KeyCode::Up)],
        action: Action::Up,
        description: "move up",
        hint: None,
        hint_views: &[],
    },
    Binding {
        keys: &[ch('g'), code(KeyCode::Home)],
        action: Action::Top,
        description: "first row",
        hint: None,
        hint_views: &[],
    },
    Binding {
        keys: &[ch('G'), code(KeyCode::End)],
        action: Action::Bottom,
        description: "last row",
        hint: None,
        hint_views: &[],
    },
    Binding {
        keys: &[code(KeyCode::PageDown), ctrl('d')],
        action: Action::PageDown,
        description: "page down",
        hint: None,
        hint_views: &[],
    },
    Binding {
        keys: &[code(KeyCode::PageUp), ctrl('u')],
        action: Action::PageUp,
        description: "page up",
        hint: None,
        hint_views: &[],
    },
    Binding {
        keys: &[code(KeyCode::Enter)],
        action: Action::Open,
        description: "open the selected tenant",
        hint: Some("open"),
        hint_views: &[View::Tenants],
    },
    Binding {
        keys: &[ch('l'), code(KeyCode::Right)],
        action: Action::NextPane,
        description: "next pane (imports / merges)",
        hint: Some("pane"),
        hint_views: &[View::Detail],
    },
    Binding {
        keys: &[ch('h'), code(KeyCode::Left)],
        action: Action::PrevPane,
        description: "previous pane",
        hint: None,
        hint_views: &[],
    },
    Binding {
        keys: &[ch('r')],
        action: Action::Refresh,
        description: "refresh now (or reconnect now)",
        hint: Some("refresh"),
        hint_views: &[],
    },
];

/// The action bound to a key press, if any. Shift is ignored for characters
/// (terminals disagree on whether `G` or `?` carries it).
pub fn action_for(event: &KeyEvent) -> Option<Action> {
    if event.kind == KeyEventKind::Release {
        return None;
    }
    let mods = match event.code {
        KeyCode::Char(_) => event.modifiers - KeyModifiers::SHIFT,
        KeyCode::BackTab => event.modifiers - KeyModifiers::SHIFT,
        _ => event.modifiers,
    };
    KEYMAP
        .iter()
        .find(|b| {
            b.keys
                .iter()
                .any(|k| k.code == event.code && k.mods == mods)
        })
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

/// Footer hints for a view: `(first key, label)`.
pub fn hints(view: View) -> Vec<(String, &'static str)> {
    KEYMAP
        .iter()
        .filter_map(|b| {
            let hint = b.hint?;
            if !b.hint_views.is_empty() && !b.hint_views.contains(&view) {
                return None;
            }
            let key = match b.action {
                Action::Down => "j/k".to_string(),
                _ => b.keys.first().map(key_label).unwrap_or_default(),
            };
            Some((key, hint))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_is_bound_twice() {
        let mut seen: Vec<Key> = Vec::new();
        for b in KEYMAP {
            for k in b.keys {
                assert!(!seen.contains(k), "{} is bound twice", key_label(k));
                seen.push(*k);
            }
        }
    }

    #[test]
    fn shifted_characters_match() {
        let ev = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(action_for(&ev), Some(Action::Bottom));
        let ev = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action_for(&ev), Some(Action::Quit));
        let ev = KeyEvent::new(KeyCode::Char('x'), KeyModifiers::NONE);
        assert_eq!(action_for(&ev), None);
    }
}

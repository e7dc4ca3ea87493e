//! Rendering only: `draw` reads an [`AppState`] and paints a frame. It never
//! changes state, so tests render states into a `TestBackend`. The views
//! are drawn by their [`super::components`]; this module draws what frames
//! them: the tab line and the footer, and which popup is open.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::action::View;
use super::app::{AppState, ConnState, NoticeKind};
use super::keymap::hints;
use super::popup::{draw_help, Overlay};
use super::widgets::{dim, WIDE};

pub fn draw(frame: &mut Frame, state: &AppState) {
    let area = frame.area();
    if area.width < 4 || area.height < 3 {
        return;
    }
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, header, state);
    if state.status.is_none() && state.overview.data.is_none() && !state.connected() {
        frame.render_widget(
            Paragraph::new(waiting(state)).wrap(Wrap { trim: false }),
            body,
        );
    } else {
        match state.view {
            View::Overview => state.overview.draw(frame, body),
            View::Queue => state.queue.draw(frame, body),
            View::Approvals => state.approvals.draw(frame, body),
            View::Tenants => state.tenants.draw(frame, body),
            View::Policies => {
                let policy = state.status.as_ref().map(|s| &s.policy);
                state.policies.draw(frame, body, policy)
            }
            View::Results => state.results.draw(frame, body),
        }
    }
    if state.command.open {
        // The prompt takes the footer's row; its hint, the row above.
        let hint = Rect {
            y: footer.y.saturating_sub(1),
            ..footer
        };
        state.command.draw(frame, footer, hint);
    } else {
        draw_footer(frame, footer, state);
    }
    match &state.overlay {
        None => {}
        Some(Overlay::Help) => draw_help(frame, area, state.view, state.readonly, |a| {
            state.allowed(a)
        }),
        Some(Overlay::Input(input)) => input.draw(frame, area),
        Some(Overlay::Confirm(c)) => c.draw(frame, area),
        Some(Overlay::Output(o)) => o.draw(frame, area),
    }
    if state.monochrome {
        // Selection and emphasis stay readable: they are reverse and bold.
        for cell in frame.buffer_mut().content.iter_mut() {
            cell.fg = Color::Reset;
            cell.bg = Color::Reset;
        }
    }
}

fn waiting(state: &AppState) -> Text<'static> {
    match &state.conn {
        ConnState::Disconnected { error, attempt } => Text::from(vec![
            Line::from("The daemon is not reachable; the console reconnects by itself.").bold(),
            Line::from(error.clone()).red(),
            Line::from(format!("attempt {attempt} · r retries now · q quits")).style(dim()),
        ]),
        _ => Text::from(format!("waiting for the daemon at {}…", state.socket)),
    }
}

fn draw_header(frame: &mut Frame, area: Rect, state: &AppState) {
    let mut who = Vec::new();
    if let Some(n) = state.status.as_ref().map(|s| s.policy.errors.len()) {
        if n > 0 {
            who.push(Span::from(format!("policy errors: {n} ")).red().bold());
        }
    }
    if state.readonly {
        who.push(Span::from("read-only ").magenta().bold());
    }
    let user = state
        .identity()
        .map(|i| Span::from(format!("{} ({}) ", i.user, i.role)));
    who.push(match &state.conn {
        ConnState::Connected { .. } => Span::from("● live ").green(),
        ConnState::Connecting { attempt: 1 } => Span::from("○ connecting ").yellow(),
        ConnState::Connecting { .. } => Span::from("○ reconnecting ").yellow(),
        ConnState::Disconnected { .. } => Span::from("✕ disconnected ").red().bold(),
    });
    let with_user = |mut w: Vec<Span<'static>>| {
        if let Some(u) = &user {
            w.insert(w.len() - 1, u.clone());
        }
        w
    };
    // The policy errors, read-only and the connection state matter more
    // than the tabs' titles: the user goes first, then the inactive tabs'
    // titles (the help lists the views), then parts from the left.
    let fits = |tabs: &Line, who: &[Span<'static>]| {
        usize::from(area.width) > tabs.width() + Line::from(who.to_vec()).width()
    };
    let full = tabs(state, area.width, false);
    let compact = tabs(state, area.width, true);
    let (left, mut who) = if fits(&full, &with_user(who.clone())) {
        (full, with_user(who))
    } else if fits(&full, &who) {
        (full, who)
    } else {
        (compact, who)
    };
    while !who.is_empty() && !fits(&left, &who) {
        who.remove(0);
    }
    frame.render_widget(Paragraph::new(left), area);
    if !who.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::from(who)).alignment(Alignment::Right),
            area,
        );
    }
}

/// The tab line; `compact` leaves only the view on screen its title.
fn tabs(state: &AppState, width: u16, compact: bool) -> Line<'static> {
    // Narrow screens give the brand's room to the connection state.
    let mut spans = if width >= WIDE {
        vec![
            Span::from(" touchpoint ").reversed().bold(),
            Span::from(" "),
        ]
    } else {
        Vec::new()
    };
    for (n, v) in View::ALL.iter().enumerate() {
        let active = *v == state.view;
        let mut label = if compact && !active {
            format!("{}", n + 1)
        } else {
            format!("{} {}", n + 1, v.title())
        };
        if *v == View::Approvals {
            if let Some(p) = state.overview.data.as_ref().map(|o| o.pending_approvals) {
                if p > 0 {
                    label.push_str(&format!(" ({p})"));
                }
            }
        }
        let label = format!(" {label} ");
        spans.push(if active {
            Span::from(label).reversed().bold()
        } else {
            Span::from(label)
        });
    }
    Line::from(spans)
}

fn draw_footer(frame: &mut Frame, area: Rect, state: &AppState) {
    let line = if let Some(n) = &state.notice {
        let (mark, style) = match n.kind {
            NoticeKind::Error => (" ! ", Style::new().red()),
            NoticeKind::Done => (" ✓ ", Style::new().green()),
            NoticeKind::Pending => (" … ", Style::new().yellow()),
        };
        Line::from(vec![
            Span::from(mark).style(style).bold().reversed(),
            Span::from(format!(" {}", n.text)).style(style),
        ])
    } else if let ConnState::Disconnected { error, .. } = &state.conn {
        Line::from(vec![
            Span::from(" disconnected ").red().bold().reversed(),
            Span::from(format!(" {error}")).red(),
        ])
    } else {
        // Whole hints only, as many as fit.
        let mut spans = Vec::new();
        let mut used = 0;
        // Only what can work on the row or proposal under the cursor.
        for (key, label) in hints(state.view, |a| {
            state.allowed(a) && state.unavailable(a).is_none()
        }) {
            let key = format!(" {key}");
            let label = format!(" {label} ");
            used += key.chars().count() + label.chars().count();
            if used > usize::from(area.width) {
                break;
            }
            spans.push(Span::from(key).bold());
            spans.push(Span::from(label).style(dim()));
        }
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}

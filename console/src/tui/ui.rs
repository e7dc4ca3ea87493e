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
use super::hits::Hits;
use super::keymap::hints;
use super::popup::{draw_help, Overlay};
use super::widgets::{dim, WIDE};

/// Paints the frame; returns where it put what a mouse can point at.
pub fn draw(frame: &mut Frame, state: &AppState) -> Hits {
    let mut hits = Hits::default();
    let area = frame.area();
    if area.width < 4 || area.height < 3 {
        return hits;
    }
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, header, state, &mut hits);
    if state.status.is_none() && state.overview.data.is_none() && !state.connected() {
        frame.render_widget(
            Paragraph::new(waiting(state)).wrap(Wrap { trim: false }),
            body,
        );
    } else {
        match state.view {
            View::Overview => state.overview.draw(frame, body),
            View::Queue => state.queue.draw(frame, body, &mut hits),
            View::Approvals => state.approvals.draw(frame, body, &mut hits),
            View::Tenants => state.tenants.draw(frame, body, &mut hits),
            View::Policies => {
                let policy = state.status.as_ref().map(|s| &s.policy);
                state.policies.draw(frame, body, policy, &mut hits)
            }
            View::Results => state.results.draw(frame, body, &mut hits),
            View::Customer => state.customer.draw(frame, body),
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
        Some(Overlay::Help) => {
            hits.popup = Some(draw_help(frame, area, state.view, state.readonly, |a| {
                state.allowed(a)
            }))
        }
        Some(Overlay::Input(input)) => hits.popup = Some(input.draw(frame, area)),
        Some(Overlay::Confirm(c)) => hits.popup = Some(c.draw(frame, area)),
        Some(Overlay::Alerts(list)) => {
            let alerts = state.overview.data.as_ref().map(|o| o.alerts.as_slice());
            hits.popup = Some(list.draw(frame, area, alerts.unwrap_or(&[]), state.page_rows));
        }
        Some(Overlay::Output(o)) => hits.popup = Some(o.draw(frame, area)),
    }
    if state.monochrome {
        // Selection and emphasis stay readable: they are reverse and bold.
        for cell in frame.buffer_mut().content.iter_mut() {
            cell.fg = Color::Reset;
            cell.bg = Color::Reset;
        }
    }
    hits
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

/// The user's identity as the header shows it: `user (role)`, or with the
/// user's name shortened when the line is short of room. It never goes.
fn identity_label(state: &AppState, short: bool) -> Option<String> {
    let i = state.identity()?;
    let user = crate::format::visible(&i.user);
    let user = if short {
        crate::format::shorten(&user, 8)
    } else {
        user.into_owned()
    };
    Some(format!("{user} ({}) ", i.role))
}

/// The pauses in force, as the last overview told them: always in the
/// header, whatever view is on screen, so no alert can hide them.
fn pause_label(state: &AppState) -> Option<String> {
    let paused = &state.overview.data.as_ref()?.paused;
    match paused.as_slice() {
        [] => None,
        [one] => {
            let scope = one.scope.to_string();
            Some(if scope.chars().count() <= 24 {
                format!("paused: {scope} ")
            } else {
                "paused (1) ".to_string()
            })
        }
        many => Some(format!("paused ({}) ", many.len())),
    }
}

fn draw_header(frame: &mut Frame, area: Rect, state: &AppState, hits: &mut Hits) {
    // Parts the line may lose, dropped from the left: the policy errors
    // (an alert says them too), then read-only (the help says it).
    let mut optional = Vec::new();
    if let Some(n) = state.status.as_ref().map(|s| s.policy.errors.len()) {
        if n > 0 {
            optional.push(Span::from(format!("policy errors: {n} ")).red().bold());
        }
    }
    if state.readonly {
        optional.push(Span::from("read-only ").magenta().bold());
    }
    // Parts it keeps: a pause, who is attached (maybe shortened) and the
    // connection.
    let pause = pause_label(state).map(|p| Span::from(p).magenta().bold().reversed());
    let conn = match &state.conn {
        ConnState::Connected { .. } => Span::from("● live ").green(),
        ConnState::Connecting { attempt: 1 } => Span::from("○ connecting ").yellow(),
        ConnState::Connecting { .. } => Span::from("○ reconnecting ").yellow(),
        ConnState::Disconnected { .. } => Span::from("✕ disconnected ").red().bold(),
    };
    let kept = |short: bool| -> Vec<Span<'static>> {
        let mut w: Vec<Span<'static>> = pause.iter().cloned().collect();
        w.extend(identity_label(state, short).map(Span::from));
        w.push(conn.clone());
        w
    };
    let width = |spans: &[Span<'static>]| spans.iter().map(Span::width).sum::<usize>();
    let fits = |tabs: &Tabs, who: usize| usize::from(area.width) > tabs.line.width() + who;
    let all = |short: bool| {
        let mut w = optional.clone();
        w.extend(kept(short));
        w
    };
    // The tabs' titles give way first (the help lists the views), then
    // the length of the user's name, then the optional parts.
    let full = tabs(state, area.width, false);
    let compact = tabs(state, area.width, true);
    let (left, mut who) = if fits(&full, width(&all(false))) {
        (full, all(false))
    } else if fits(&compact, width(&all(false))) {
        (compact, all(false))
    } else {
        (compact, all(true))
    };
    let keep = kept(true).len();
    while who.len() > keep && !fits(&left, width(&who)) {
        who.remove(0);
    }
    frame.render_widget(Paragraph::new(left.line), area);
    // A click on a tab hits what is visible of it.
    let who_left = area.right().saturating_sub(width(&who) as u16);
    for (x, w, view) in left.spans {
        let x = area.x.saturating_add(x);
        let w = w.min(who_left.saturating_sub(x));
        if w > 0 && x < area.right() {
            hits.tabs.push((Rect::new(x, area.y, w, 1), view));
        }
    }
    if !who.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::from(who)).alignment(Alignment::Right),
            area,
        );
    }
}

/// The tab line and where each tab is on it: `(column, width, view)`.
struct Tabs {
    line: Line<'static>,
    spans: Vec<(u16, u16, View)>,
}

/// The tab line; `compact` leaves only the view on screen its title.
fn tabs(state: &AppState, width: u16, compact: bool) -> Tabs {
    // Narrow screens give the brand's room to the connection state.
    let mut spans = if width >= WIDE {
        vec![
            Span::from(" touchpoint ").reversed().bold(),
            Span::from(" "),
        ]
    } else {
        Vec::new()
    };
    let mut at: usize = spans.iter().map(Span::width).sum();
    let mut places = Vec::new();
    for (n, v) in View::ALL.iter().enumerate() {
        let active = *v == state.tab();
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
        let span = Span::from(format!(" {label} "));
        let w = span.width();
        places.push((
            u16::try_from(at).unwrap_or(u16::MAX),
            u16::try_from(w).unwrap_or(u16::MAX),
            *v,
        ));
        at += w;
        spans.push(if active { span.reversed().bold() } else { span });
    }
    Tabs {
        line: Line::from(spans),
        spans: places,
    }
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

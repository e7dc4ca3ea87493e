//! The mouse, through the same event path as the keyboard
//! (`tui::on_terminal_event`), hit-tested against the areas of a real draw
//! on a `TestBackend`; where to click is read off the drawn screen.

use crossterm::event::{Event, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use touchpoint_common::protocol::Role;

use super::super::action::View;
use super::super::app::App;
use super::super::harness::buffer_text;
use super::super::popup::Overlay;
use super::super::{on_terminal_event, ui};
use super::{key, loaded};

/// Draws the app at 80×24 as the console does (keeping the hit areas);
/// returns the screen's text.
fn draw(app: &mut App) -> String {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
    let mut hits = Default::default();
    terminal
        .draw(|f| hits = ui::draw(f, &app.state))
        .expect("draw");
    app.hits = hits;
    buffer_text(terminal.backend().buffer())
}

fn mouse(app: &mut App, kind: MouseEventKind, column: u16, row: u16) -> bool {
    on_terminal_event(
        app,
        Event::Mouse(MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        }),
    )
}

fn click(app: &mut App, column: u16, row: u16) -> bool {
    mouse(app, MouseEventKind::Down(MouseButton::Left), column, row)
}

/// Where `needle` is on the screen: (column, row) of its first character.
fn find(screen: &str, needle: &str) -> (u16, u16) {
    for (y, line) in screen.lines().enumerate() {
        if let Some(at) = line.find(needle) {
            let x = line[..at].chars().count();
            return (x as u16, y as u16);
        }
    }
    panic!("{needle:?} is not on the screen:\n{screen}");
}

#[test]
fn a_click_on_a_tab_shows_its_view() {
    let mut app = loaded(Role::Operator, false);
    let screen = draw(&mut app);
    assert_eq!(app.state.view, View::Queue);
    // At 80 columns the inactive tabs are their numbers.
    let header = screen.lines().next().unwrap_or_default().to_string();
    let four = header.find(" 4 ").expect("tab 4") as u16 + 1;
    assert!(click(&mut app, four, 0));
    assert_eq!(app.state.view, View::Tenants);
    let screen = draw(&mut app);
    let (x, y) = find(&screen, "1 ");
    assert!(click(&mut app, x, y));
    assert_eq!(app.state.view, View::Overview);
    // Beside the tabs (the user, the connection) is no tab.
    let screen = draw(&mut app);
    let (x, y) = find(&screen, "● live");
    assert!(!click(&mut app, x, y));
    assert_eq!(app.state.view, View::Overview);
}

#[test]
fn a_click_selects_a_row_and_a_second_click_opens_it() {
    let mut app = loaded(Role::Operator, false);
    let screen = draw(&mut app);
    assert_eq!(app.state.queue.selected, 0);
    // Message #1,230 is the fifth row of the list.
    let (_, y) = find(&screen, " 1230 ");
    assert!(click(&mut app, 30, y));
    assert_eq!(app.state.queue.selected_row().map(|r| r.id), Some(1_230));
    assert!(!app.state.queue.detail_open);
    // The selected row again: Enter, the message's detail.
    draw(&mut app);
    assert!(click(&mut app, 30, y));
    assert!(app.state.queue.detail_open);
    assert_eq!(app.state.queue.selected_row().map(|r| r.id), Some(1_230));
}

#[test]
fn a_click_on_the_table_header_selects_nothing() {
    let mut app = loaded(Role::Operator, false);
    let screen = draw(&mut app);
    let (x, y) = find(&screen, "Status");
    assert!(!click(&mut app, x, y));
    assert_eq!(app.state.queue.selected, 0);
    // Tenants: three rows, then the pane's empty lines.
    app.key(key('4'));
    let screen = draw(&mut app);
    let (_, y) = find(&screen, "d003");
    assert!(click(&mut app, 2, y));
    assert_eq!(app.state.tenants.selected, 2);
    let screen = draw(&mut app);
    let (x, y) = find(&screen, "Recip.");
    assert!(!click(&mut app, x, y));
    assert_eq!(app.state.tenants.selected, 2);
}

#[test]
fn the_wheel_moves_through_the_list_or_scrolls_the_detail_under_the_pointer() {
    let mut app = loaded(Role::Operator, false);
    app.key(key('4'));
    draw(&mut app);
    let list = app.hits.list.expect("list").rows;
    let detail = app.hits.detail.expect("detail");
    assert!(mouse(
        &mut app,
        MouseEventKind::ScrollDown,
        list.x + 1,
        list.y
    ));
    assert_eq!(app.state.tenants.selected, 1);
    assert_eq!(app.state.tenants.scroll, 0);
    mouse(
        &mut app,
        MouseEventKind::ScrollDown,
        detail.x + 1,
        detail.y + 2,
    );
    assert_eq!(
        app.state.tenants.selected, 1,
        "the detail scrolls, not the list"
    );
    assert_eq!(app.state.tenants.scroll, 5);
    mouse(
        &mut app,
        MouseEventKind::ScrollUp,
        detail.x + 1,
        detail.y + 2,
    );
    assert_eq!(app.state.tenants.scroll, 0);
    mouse(&mut app, MouseEventKind::ScrollUp, list.x + 1, list.y);
    assert_eq!(app.state.tenants.selected, 0);
}

#[test]
fn popups_take_no_clicks_and_the_alerts_list_scrolls_under_the_wheel() {
    let mut app = loaded(Role::Operator, false);
    app.key(key('?'));
    let screen = draw(&mut app);
    let (x, y) = find(&screen, "Keys");
    assert!(!click(&mut app, x, y));
    assert_eq!(app.state.overlay, Some(Overlay::Help));
    app.key(key('?'));
    // Many alerts: the list is longer than the popup.
    app.key(key('1'));
    if let Some(o) = app.state.overview.data.as_mut() {
        let one = o.alerts[1].clone();
        o.alerts = vec![one; 40];
    }
    app.key(key('!'));
    let screen = draw(&mut app);
    let (x, y) = find(&screen, "d002: inspection budget");
    assert!(mouse(&mut app, MouseEventKind::ScrollDown, x, y));
    assert!(matches!(&app.state.overlay, Some(Overlay::Alerts(a)) if a.top == 1));
    // Off the popup the wheel does nothing; a click does not close it.
    assert!(!mouse(&mut app, MouseEventKind::ScrollDown, 0, 23));
    assert!(!click(&mut app, 0, 23));
    assert!(matches!(&app.state.overlay, Some(Overlay::Alerts(a)) if a.top == 1));
}

#[test]
fn m_turns_mouse_capture_off_and_on_and_says_so() {
    let mut app = loaded(Role::Operator, false);
    assert!(app.state.mouse);
    app.key(key('m'));
    assert!(!app.state.mouse);
    let screen = draw(&mut app);
    assert!(
        screen.contains("mouse off: the terminal selects text"),
        "{screen}"
    );
    app.key(key('m'));
    assert!(app.state.mouse);
}

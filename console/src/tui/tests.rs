use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;

use super::app::{Action, App, AppState, ConnState, DetailPane, Effect, NetEvent, View};
use super::keymap::action_for;
use super::ui::draw;
use crate::fixtures;

fn buffer_text(buf: &Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in area.top()..area.bottom() {
        let mut line = String::new();
        for x in area.left()..area.right() {
            if let Some(cell) = buf.cell((x, y)) {
                line.push_str(cell.symbol());
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn render(state: &AppState, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal.draw(|f| draw(f, state)).expect("draw");
    buffer_text(terminal.backend().buffer())
}

fn connected() -> AppState {
    let mut s = AppState::new("/run/touchpoint/touchpoint.sock", false);
    s.conn = ConnState::Connected {
        daemon: "touchpointd 0.1.0".into(),
        identity: fixtures::identity(),
    };
    s.status = Some(fixtures::status());
    s.tenants = fixtures::tenants();
    s
}

fn tenants_state() -> AppState {
    let mut s = connected();
    s.tenant_selected = 2;
    s
}

fn detail_state() -> AppState {
    let mut s = connected();
    let d = fixtures::detail();
    s.view = View::Detail;
    s.detail_tenant = Some(d.summary.id.clone());
    s.detail = Some(d);
    s
}

fn status_state() -> AppState {
    let mut s = connected();
    s.view = View::Status;
    s
}

fn disconnected_state() -> AppState {
    let mut s = AppState::new("/tmp/t.sock", true);
    s.conn = ConnState::Disconnected {
        error: "cannot connect to /tmp/t.sock: No such file or directory (os error 2) — is touchpointd running? (socket path from --socket or $TOUCHPOINT_SOCKET)".into(),
        attempt: 3,
    };
    s
}

#[test]
fn tenants_view_snapshots() {
    insta::assert_snapshot!("tenants_80x24", render(&tenants_state(), 80, 24));
    insta::assert_snapshot!("tenants_160x48", render(&tenants_state(), 160, 48));
}

#[test]
fn detail_view_snapshots() {
    insta::assert_snapshot!("detail_80x24", render(&detail_state(), 80, 24));
    insta::assert_snapshot!("detail_160x48", render(&detail_state(), 160, 48));
    let mut merges_focused = detail_state();
    merges_focused.detail_pane = DetailPane::Merges;
    merges_focused.merge_selected = 2;
    merges_focused.import_selected = 2;
    insta::assert_snapshot!(
        "detail_merges_focused_80x24",
        render(&merges_focused, 80, 24)
    );
}

#[test]
fn status_view_snapshots() {
    insta::assert_snapshot!("status_80x24", render(&status_state(), 80, 24));
    insta::assert_snapshot!("status_160x48", render(&status_state(), 160, 48));
}

#[test]
fn help_and_disconnected_snapshots() {
    let mut help = tenants_state();
    help.show_help = true;
    insta::assert_snapshot!("help_80x24", render(&help, 80, 24));
    insta::assert_snapshot!("disconnected_80x24", render(&disconnected_state(), 80, 24));
}

#[test]
fn never_panics_at_tiny_sizes() {
    let mut states = vec![
        tenants_state(),
        detail_state(),
        status_state(),
        disconnected_state(),
    ];
    let mut no_detail = connected();
    no_detail.view = View::Detail;
    states.push(no_detail);
    let with_help: Vec<AppState> = states
        .iter()
        .cloned()
        .map(|mut s| {
            s.show_help = true;
            s
        })
        .collect();
    states.extend(with_help);
    for state in &states {
        for (w, h) in [
            (0, 0),
            (1, 1),
            (10, 3),
            (3, 10),
            (20, 5),
            (80, 1),
            (1, 80),
            (40, 12),
        ] {
            let _ = render(state, w, h);
        }
    }
}

fn key(c: char) -> Action {
    action_for(&KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)).expect("bound key")
}

fn code(c: KeyCode) -> Action {
    action_for(&KeyEvent::new(c, KeyModifiers::NONE)).expect("bound key")
}

#[test]
fn j_and_k_move_the_selection_within_bounds() {
    let mut app = App::new(connected());
    app.update(key('j'));
    app.update(key('j'));
    assert_eq!(app.state.tenant_selected, 2);
    app.update(key('k'));
    assert_eq!(app.state.tenant_selected, 1);
    app.update(code(KeyCode::Up));
    app.update(code(KeyCode::Up));
    assert_eq!(app.state.tenant_selected, 0);
    app.update(key('G'));
    assert_eq!(app.state.tenant_selected, 29);
    app.update(code(KeyCode::Down));
    assert_eq!(app.state.tenant_selected, 29);
    app.update(key('g'));
    assert_eq!(app.state.tenant_selected, 0);
    app.state.page_rows = 10;
    app.update(code(KeyCode::PageDown));
    assert_eq!(app.state.tenant_selected, 10);
    app.update(code(KeyCode::PageUp));
    assert_eq!(app.state.tenant_selected, 0);
}

#[test]
fn enter_opens_the_detail_and_esc_returns() {
    let mut app = App::new(connected());
    app.update(key('j'));
    let effects = app.update(code(KeyCode::Enter));
    assert_eq!(app.state.view, View::Detail);
    let d002 = fixtures::tid("d002");
    assert_eq!(app.state.detail_tenant.as_ref(), Some(&d002));
    assert_eq!(effects, vec![Effect::Watch(Some(d002.clone()))]);

    // Only the detail of the watched tenant is taken.
    assert!(!app.apply(NetEvent::Detail(Box::new(fixtures::detail()))));
    let mut detail = fixtures::detail();
    detail.summary.id = d002.clone();
    assert!(app.apply(NetEvent::Detail(Box::new(detail.clone()))));
    assert!(
        !app.apply(NetEvent::Detail(Box::new(detail))),
        "same data needs no redraw"
    );
    app.update(key('j'));
    assert_eq!(app.state.import_selected, 1);
    app.update(key('l'));
    assert_eq!(app.state.detail_pane, DetailPane::Merges);
    app.update(key('G'));
    assert_eq!(app.state.merge_selected, 11);

    let effects = app.update(code(KeyCode::Esc));
    assert_eq!(app.state.view, View::Tenants);
    assert_eq!(effects, vec![Effect::Watch(None)]);
}

#[test]
fn tab_and_numbers_switch_views() {
    let mut app = App::new(connected());
    app.update(code(KeyCode::Tab));
    assert_eq!(
        app.state.view,
        View::Detail,
        "Tab into the detail opens the selected tenant"
    );
    assert_eq!(
        app.state.detail_tenant.as_ref().map(|t| t.as_str()),
        Some("d001")
    );
    app.update(code(KeyCode::Tab));
    assert_eq!(app.state.view, View::Status);
    app.update(code(KeyCode::Tab));
    assert_eq!(app.state.view, View::Tenants);
    app.update(key('3'));
    assert_eq!(app.state.view, View::Status);
    app.update(key('1'));
    assert_eq!(app.state.view, View::Tenants);
}

#[test]
fn question_mark_toggles_help_and_q_quits() {
    let mut app = App::new(connected());
    app.update(key('?'));
    assert!(app.state.show_help);
    app.update(key('j'));
    assert_eq!(
        app.state.tenant_selected, 0,
        "keys other than close do nothing under the help"
    );
    app.update(key('?'));
    assert!(!app.state.show_help);
    app.update(key('?'));
    app.update(code(KeyCode::Esc));
    assert!(!app.state.show_help);
    assert!(!app.state.quit);
    app.update(key('q'));
    assert!(app.state.quit);

    let mut app = App::new(connected());
    app.update(
        action_for(&KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)).expect("ctrl-c"),
    );
    assert!(app.state.quit);
}

#[test]
fn r_asks_for_a_refresh() {
    let mut app = App::new(connected());
    assert_eq!(app.update(key('r')), vec![Effect::Refresh]);
}

#[test]
fn a_new_tenant_list_keeps_the_cursor_on_the_same_tenant() {
    let mut app = App::new(connected());
    app.update(key('j'));
    app.update(key('j'));
    let selected = app.state.tenants[2].id.clone();
    assert!(
        !app.apply(NetEvent::Tenants(fixtures::tenants())),
        "same list needs no redraw"
    );
    let mut list = fixtures::tenants();
    list.remove(0);
    assert!(app.apply(NetEvent::Tenants(list)));
    assert_eq!(app.state.tenants[app.state.tenant_selected].id, selected);
    assert!(app.apply(NetEvent::Tenants(Vec::new())));
    assert_eq!(app.state.tenant_selected, 0);
    app.update(key('j'));
    assert!(
        app.update(code(KeyCode::Enter)).is_empty(),
        "nothing to open"
    );
}

#[test]
fn connection_changes_are_redrawn_once() {
    let mut app = App::new(AppState::new("/tmp/t.sock", false));
    let down = NetEvent::Disconnected {
        error: "gone".into(),
        attempt: 1,
    };
    assert!(app.apply(down.clone()));
    assert!(!app.apply(down));
    let text = render(&app.state, 80, 24);
    assert!(text.contains("disconnected — retrying"), "{text}");
}

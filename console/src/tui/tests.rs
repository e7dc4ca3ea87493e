//! State and rendering tests on fabricated answers. The snapshots of every
//! view with a real daemon's data, and the flows against a real daemon, are
//! in `tests/e2e/console.rs`.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use touchpoint_common::outbox::MessageStatus;
use touchpoint_common::protocol::{Identity, MessageAction, QueueFilter, Role, Topic};

use touchpoint_common::report::stats::By;

use super::action::{Action, View};
use super::app::{App, AppState, ConnState};
use super::msg::{Act, Data, Effect, Fetch, NetEvent};
use super::popup::Overlay;
use super::ui::draw;
use crate::fixtures;

mod header;
mod mouse;

fn render(state: &AppState, width: u16, height: u16) -> String {
    super::harness::render(state, width, height)
}

fn identity(role: Role) -> Identity {
    Identity {
        role,
        ..fixtures::identity()
    }
}

/// Connected as `role`, with every view's data loaded.
fn loaded(role: Role, readonly: bool) -> App {
    let mut app = App::new(AppState::new("/run/touchpoint/touchpoint.sock", readonly));
    app.resize(80, 24);
    app.apply(NetEvent::Connected {
        daemon: "touchpointd 0.1.0".into(),
        identity: identity(role),
    });
    app.take_effects();
    app.apply(NetEvent::Data(Data::Status(Box::new(fixtures::status()))));
    app.apply(NetEvent::Data(Data::Overview(Box::new(
        fixtures::overview(),
    ))));
    app.apply(NetEvent::Data(Data::Tenants(fixtures::tenants())));
    app.apply(NetEvent::Data(Data::Tenant(Box::new(fixtures::detail()))));
    app.apply(NetEvent::Data(Data::Audit {
        text: String::new(),
        entries: fixtures::audit(),
    }));
    load_results(&mut app, false);
    app.update(Action::ShowView(View::Queue));
    let limit = match app.take_effects().into_iter().find_map(|e| match e {
        Effect::Fetch(Fetch::Queue { limit, .. }) => Some(limit),
        _ => None,
    }) {
        Some(l) => l,
        None => panic!("the queue view asks for its rows"),
    };
    app.apply(NetEvent::Data(Data::Queue(Box::new(fixtures::queue_page(
        0,
        u64::from(limit),
    )))));
    app.take_effects();
    app
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

#[test]
fn never_panics_at_any_size() {
    let mut app = loaded(Role::Operator, false);
    for view in View::ALL {
        app.state.view = view;
        for overlay in [None, Some(Overlay::Help)] {
            app.state.overlay = overlay;
            for w in 0..=45u16 {
                for h in 0..=20u16 {
                    render(&app.state, w, h);
                }
            }
            render(&app.state, 300, 100);
        }
    }
    app.state.overlay = None;
    app.update(Action::ShowView(View::Queue));
    app.key(key('/'));
    for (w, h) in [(1, 1), (5, 3), (20, 5), (80, 24)] {
        render(&app.state, w, h);
    }
}

/// One of the caller's tenants' stores cannot be read: the tenant's row
/// and an alert say so (its figures are not zeros).
#[test]
fn an_unreadable_tenant_is_marked_in_the_overview() {
    let mut app = loaded(Role::Operator, false);
    app.apply(NetEvent::Data(Data::Overview(Box::new(
        fixtures::overview_scoped(),
    ))));
    app.update(Action::ShowView(View::Overview));
    for (w, h) in [(80, 24), (120, 30)] {
        let screen = render(&app.state, w, h);
        assert!(screen.contains("d002: store unreadable"), "{screen}");
        if w >= 120 {
            assert!(screen.contains("not counted: d002"), "{screen}");
        }
        let row = screen
            .lines()
            .find(|l| l.starts_with("d002 "))
            .unwrap_or_default();
        assert!(row.contains('—'), "d002's row shows no counts: {screen}");
    }
}

/// A caller scoped to some tenants: throughput and throttles over every
/// tenant say they are not shown (the snapshot also holds a tenant whose
/// store cannot be read).
#[test]
fn a_scoped_overview_shows_an_unreadable_tenant_and_what_is_not_shown() {
    let mut app = loaded(Role::Operator, false);
    app.apply(NetEvent::Data(Data::Overview(Box::new(
        fixtures::overview_scoped(),
    ))));
    app.update(Action::ShowView(View::Overview));
    for (w, h) in [(80, 24), (120, 30)] {
        let screen = render(&app.state, w, h);
        assert!(screen.contains("not shown to your scope"), "{screen}");
        assert!(screen.contains("Sent per minute: —"), "{screen}");
        assert!(screen.contains("Throttles of your tenants"), "{screen}");
    }
    insta::assert_snapshot!(
        "overview_scoped_unreadable_120x30",
        render(&app.state, 120, 30)
    );
}

#[test]
fn help_and_disconnected_snapshots() {
    let mut app = loaded(Role::Operator, false);
    app.state.overlay = Some(Overlay::Help);
    insta::assert_snapshot!("help_queue_operator_80x24", render(&app.state, 80, 24));
    let mut s = AppState::new("/tmp/t.sock", true);
    s.conn = ConnState::Disconnected {
        error: "cannot connect to /tmp/t.sock: No such file or directory (os error 2)".into(),
        attempt: 3,
    };
    insta::assert_snapshot!("disconnected_80x24", render(&s, 80, 24));
}

#[test]
fn the_filter_line_parses_and_reports_errors_in_place() {
    let mut app = loaded(Role::Operator, false);
    app.key(key('/'));
    for c in "status:lost".chars() {
        app.key(key(c));
    }
    app.key(code(KeyCode::Enter));
    match &app.state.overlay {
        Some(Overlay::Input(i)) => {
            let e = i.error.as_deref().unwrap_or("");
            assert!(e.contains("no status `lost`"), "{e}");
        }
        other => panic!("the input stays open with the error: {other:?}"),
    }
    assert!(
        app.take_effects().is_empty(),
        "nothing asked with a bad filter"
    );
    // Ctrl-u clears; a good filter asks the daemon from the first row.
    app.key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    for c in "status:held d001".chars() {
        app.key(key(c));
    }
    app.key(code(KeyCode::Enter));
    assert_eq!(app.state.overlay, None);
    let wanted = QueueFilter::parse("status:held d001").expect("filter");
    let asked = app.take_effects();
    assert!(
        asked.iter().any(|e| matches!(e,
            Effect::Fetch(Fetch::Queue { filter, offset: 0, .. }) if *filter == wanted)),
        "{asked:?}"
    );
    // Esc clears it again.
    app.key(code(KeyCode::Esc));
    assert!(app.state.queue.filter.is_empty());
}

#[test]
fn marking_and_holding_go_through_a_confirmation() {
    let mut app = loaded(Role::Operator, false);
    app.key(key(' '));
    app.key(key(' '));
    assert_eq!(app.state.queue.marks.len(), 2);
    assert_eq!(app.state.queue.selected, 2);
    app.key(KeyEvent::new(KeyCode::Char('H'), KeyModifiers::SHIFT));
    let Some(Overlay::Confirm(c)) = &app.state.overlay else {
        panic!("a confirmation first");
    };
    assert_eq!(c.title, "Hold 2 messages");
    assert!(app.take_effects().is_empty(), "nothing sent before y");
    app.key(key('y'));
    let effects = app.take_effects();
    assert_eq!(
        effects,
        vec![Effect::Act(Act::Messages {
            action: MessageAction::Hold,
            targets: vec![(fixtures::tid("d001"), vec![1_233, 1_234])],
        })]
    );
    // n or Esc cancels without sending.
    app.key(KeyEvent::new(KeyCode::Char('X'), KeyModifiers::SHIFT));
    app.key(code(KeyCode::Esc));
    assert_eq!(app.state.overlay, None);
    assert!(app.take_effects().is_empty());
}

#[test]
fn actions_the_role_may_not_take_are_neither_offered_nor_sent() {
    for (role, readonly) in [(Role::ReadOnly, false), (Role::Operator, true)] {
        let mut app = loaded(role, readonly);
        let screen = render(&app.state, 160, 48);
        assert!(
            !screen.contains("hold"),
            "{role} readonly={readonly}:\n{screen}"
        );
        app.key(KeyEvent::new(KeyCode::Char('H'), KeyModifiers::SHIFT));
        assert_eq!(app.state.overlay, None);
        assert!(app.take_effects().is_empty());
        let notice = app.state.notice.clone().map(|n| n.text).unwrap_or_default();
        assert!(
            notice.contains("read-only") || notice.contains("may not"),
            "{notice}"
        );
        app.state.overlay = Some(Overlay::Help);
        let help = render(&app.state, 80, 40);
        assert!(!help.contains("hold the marked"), "{help}");
    }
    // Only a reviewer is offered approve.
    let mut op = loaded(Role::Operator, false);
    op.update(Action::ShowView(View::Approvals));
    assert!(!op.state.allowed(Action::Approve));
    let rev = loaded(Role::Reviewer, false);
    assert!(rev.state.allowed(Action::Approve));
    assert!(!rev.state.allowed(Action::Act(MessageAction::Hold)));
}

#[test]
fn moving_past_the_window_asks_for_the_next_one_and_old_answers_are_ignored() {
    let mut app = loaded(Role::Operator, false);
    let held = app
        .state
        .queue
        .page
        .as_ref()
        .map(|p| p.rows.len())
        .unwrap_or(0);
    for _ in 0..held {
        app.key(key('j'));
    }
    let asked: Vec<(u64, u32)> = app
        .take_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Fetch(Fetch::Queue { offset, limit, .. }) => Some((offset, limit)),
            _ => None,
        })
        .collect();
    let Some(&(offset, limit)) = asked.last() else {
        panic!("scrolling on asks for more rows");
    };
    assert!(offset > 0 && offset <= app.state.queue.selected);
    // An answer for a window no longer wanted changes nothing.
    let stale = fixtures::queue_page(0, 10);
    assert!(!app.apply(NetEvent::Data(Data::Queue(Box::new(stale)))));
    let fresh = fixtures::queue_page(offset, u64::from(limit));
    assert!(app.apply(NetEvent::Data(Data::Queue(Box::new(fresh)))));
    let row = app.state.queue.selected_row().map(|r| r.id);
    assert_eq!(row, Some(1_234 - app.state.queue.selected));
    // G goes to the last of all 1,234 rows, not of the window.
    app.key(KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT));
    assert_eq!(app.state.queue.selected, 1_233);
}

#[test]
fn changes_ask_again_only_for_what_the_view_shows() {
    let mut app = loaded(Role::Operator, false);
    app.apply(NetEvent::Changed(touchpoint_common::protocol::Changes {
        topics: vec![Topic::Audit],
        tenants: Vec::new(),
    }));
    assert!(app.take_effects().is_empty(), "the queue shows no audit");
    app.apply(NetEvent::Changed(touchpoint_common::protocol::Changes {
        topics: vec![Topic::Outbox],
        tenants: vec![fixtures::tid("d002")],
    }));
    assert!(app
        .take_effects()
        .iter()
        .any(|e| matches!(e, Effect::Fetch(Fetch::Queue { .. }))));
    app.update(Action::ShowView(View::Overview));
    app.take_effects();
    app.apply(NetEvent::Changed(touchpoint_common::protocol::Changes {
        topics: vec![Topic::Costs],
        tenants: Vec::new(),
    }));
    assert_eq!(
        app.take_effects(),
        vec![Effect::Fetch(Fetch::Overview { day: None })]
    );
    // An import recounts the month's responses the overview shows.
    app.apply(NetEvent::Changed(touchpoint_common::protocol::Changes {
        topics: vec![Topic::Tenants],
        tenants: vec![fixtures::tid("d002")],
    }));
    assert_eq!(
        app.take_effects(),
        vec![Effect::Fetch(Fetch::Overview { day: None })]
    );
}

#[test]
fn views_switch_by_number_and_tab() {
    let mut app = loaded(Role::Operator, false);
    app.key(key('1'));
    assert_eq!(app.state.view, View::Overview);
    app.key(code(KeyCode::Tab));
    assert_eq!(app.state.view, View::Queue);
    app.key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT));
    assert_eq!(app.state.view, View::Overview);
    app.key(key('5'));
    assert_eq!(app.state.view, View::Policies);
    app.key(key('?'));
    assert_eq!(app.state.overlay, Some(Overlay::Help));
    app.key(code(KeyCode::Esc));
    assert_eq!(app.state.overlay, None);
    app.key(key('q'));
    assert!(app.state.quit);
    let status = app
        .state
        .queue
        .page
        .as_ref()
        .and_then(|p| p.rows.first())
        .map(|r| r.status);
    assert_eq!(status, Some(MessageStatus::Queued));
}

#[test]
fn no_color_leaves_only_bold_reverse_and_dim() {
    use ratatui::style::{Color, Modifier};
    let mut app = loaded(Role::Operator, false);
    app.update(Action::ShowView(View::Overview));
    let colours = |app: &App| {
        let mut terminal = Terminal::new(TestBackend::new(120, 30)).expect("terminal");
        terminal
            .draw(|f| {
                draw(f, &app.state);
            })
            .expect("draw");
        let buf = terminal.backend().buffer().clone();
        let coloured = buf
            .content
            .iter()
            .filter(|c| c.fg != Color::Reset || c.bg != Color::Reset)
            .count();
        let reversed = buf
            .content
            .iter()
            .filter(|c| c.modifier.contains(Modifier::REVERSED))
            .count();
        (coloured, reversed)
    };
    let (coloured, _) = colours(&app);
    assert!(coloured > 0, "the overview uses colour");
    app.state.monochrome = true;
    let (coloured, reversed) = colours(&app);
    assert_eq!(coloured, 0);
    assert!(reversed > 0, "the tab and selection stay marked");
}

fn queue_fetches(app: &mut App) -> Vec<(u64, u32)> {
    app.take_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Fetch(Fetch::Queue { offset, limit, .. }) => Some((offset, limit)),
            _ => None,
        })
        .collect()
}

#[test]
fn moving_within_the_held_pages_asks_nothing_and_the_cursor_follows_its_message() {
    let mut app = loaded(Role::Operator, false);
    for c in "jjjjjkkkkkjjj".chars() {
        app.key(key(c));
    }
    assert_eq!(queue_fetches(&mut app), Vec::new());
    let id = app.state.queue.selected_row().map(|r| r.id);
    assert_eq!(id, Some(1_231));
    // Two messages are planned on top: the same message moves two rows down.
    app.apply(NetEvent::Changed(touchpoint_common::protocol::Changes {
        topics: vec![Topic::Outbox],
        tenants: Vec::new(),
    }));
    let Some(&(offset, limit)) = queue_fetches(&mut app).last() else {
        panic!("a change in the outbox reads the queue again");
    };
    let mut page = fixtures::queue_page(offset, u64::from(limit));
    page.total += 2;
    for r in &mut page.rows {
        r.id += 2;
    }
    app.apply(NetEvent::Data(Data::Queue(Box::new(page))));
    assert_eq!(app.state.queue.selected_row().map(|r| r.id), Some(1_231));
    assert_eq!(app.state.queue.selected, 5);
}

#[test]
fn a_listing_that_shrank_under_the_cursor_is_asked_for_around_it() {
    let mut app = loaded(Role::Operator, false);
    app.key(KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT));
    let Some(&(offset, _)) = queue_fetches(&mut app).last() else {
        panic!("G leaves the rows held");
    };
    // Meanwhile most messages went out: 100 are left, none at that offset.
    let mut page = fixtures::queue_page(offset, 0);
    page.total = 100;
    app.apply(NetEvent::Data(Data::Queue(Box::new(page))));
    assert_eq!(app.state.queue.selected, 99);
    let asked = queue_fetches(&mut app);
    assert!(
        asked
            .iter()
            .any(|(o, l)| *o <= 99 && 99 < o + u64::from(*l)),
        "{asked:?}"
    );
}

#[test]
fn a_new_filter_shows_no_old_rows_and_acts_on_none() {
    let mut app = loaded(Role::Operator, false);
    app.key(key('/'));
    for c in "held".chars() {
        app.key(key(c));
    }
    app.key(code(KeyCode::Enter));
    assert_eq!(app.state.queue.page, None);
    app.key(KeyEvent::new(KeyCode::Char('H'), KeyModifiers::SHIFT));
    assert_eq!(
        app.state.overlay, None,
        "nothing to hold before the rows came"
    );
}

#[test]
fn a_tenant_whose_store_cannot_be_read_is_marked_in_the_tenants_view() {
    let mut app = loaded(Role::Operator, false);
    let mut list = fixtures::tenants();
    list[0].error = Some("IO error: No space left on device".into());
    app.apply(NetEvent::Data(Data::Tenants(list)));
    app.update(Action::ShowView(View::Tenants));
    for (width, mark) in [(80, "unreadable"), (140, "store unreadable")] {
        let screen = render(&app.state, width, 24);
        let row = screen
            .lines()
            .find(|l| l.contains(fixtures::tenants()[0].id.as_str()))
            .unwrap_or_default();
        assert!(row.contains(mark), "{width} columns:\n{screen}");
        let others = screen.lines().filter(|l| l.contains("unreadable")).count();
        assert_eq!(others, 1, "{width} columns:\n{screen}");
    }
}

/// Every report the results view shows, for `pooled` or own tenants.
fn load_results(app: &mut App, pooled: bool) {
    for by in [By::Service, By::Lead, By::Weekday, By::Hour] {
        app.apply(NetEvent::Data(Data::Report(Box::new(fixtures::report(
            by, pooled,
        )))));
    }
}

fn row_of(screen: &str, label: &str) -> String {
    screen
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_default()
        .to_string()
}

fn report_fetches(effects: &[Effect]) -> Vec<(By, bool)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Fetch(Fetch::Report(q)) => Some((q.by, q.pooled)),
            _ => None,
        })
        .collect()
}

/// The figures are the report's (`Tally::figures`), checked here by hand:
/// service_due 72 of 400 sent responded (18.0 %), 3 of 40 in the control
/// group (7.5 %): a lift of 10.5 points, 42 responses added for 380.00 €
/// booked, 9.05 € each; birthday has no control group, so no lift.
#[test]
fn results_show_the_reports_figures_and_the_lift_bar() {
    let mut app = loaded(Role::Operator, false);
    app.update(Action::ShowView(View::Results));
    assert_eq!(
        report_fetches(&app.take_effects()),
        [(By::Service, false), (By::Lead, false)],
        "a narrow screen asks for the services and the breakdown it shows"
    );
    let screen = render(&app.state, 80, 24);
    let row = screen
        .lines()
        .find(|l| l.starts_with("service_due"))
        .unwrap_or_default();
    for figure in ["400", "18.0%", "40", "7.5%", "+10.5", "9.05"] {
        assert!(row.contains(figure), "{figure} missing: {screen}");
    }
    assert!(row.contains('●') && row.contains('┿'), "{screen}");
    let birthday = screen
        .lines()
        .find(|l| l.starts_with("birthday"))
        .unwrap_or_default();
    assert!(birthday.contains("no control group"), "{screen}");
    // The total is stratified: its lift is service_due's alone, not 78 of
    // 520 (15.0 %) against 7.5 % (+7.5), which counts birthday's messages
    // without a baseline; cost per added response is service_due's 9.05 €.
    let total = row_of(&screen, "total");
    assert!(
        total.contains("520") && total.contains("+10.5") && total.contains("9.05"),
        "{screen}"
    );
    assert!(!total.contains("+7.5"), "{screen}");
    assert!(screen.contains("Response rate by lead time"), "{screen}");
    // Bars scale to the highest rate shown: third's 8 of 20 (40.0 %) is
    // full, first's 40 of 200 (20.0 %) half of it.
    let third = row_of(&screen, "third");
    assert!(
        third.contains(&"█".repeat(40)) && third.contains("40.0% 8/20"),
        "{screen}"
    );
    let first = row_of(&screen, "first");
    assert!(
        first.contains(&format!("{}{}", "█".repeat(20), "░".repeat(20)))
            && first.contains("20.0% 40/200"),
        "{screen}"
    );
    // b: the next breakdown, already loaded.
    app.key(key('b'));
    assert!(render(&app.state, 80, 24).contains("Response rate by weekday sent"));
    // Wide: the three charts side by side, the interval in numbers.
    let wide = render(&app.state, 160, 48);
    for t in [
        "by lead time",
        "by weekday sent",
        "by hour sent",
        "[-2.3, +16.9]",
        "total: lift covers 400 of 520 sent, from the services with a control group: service_due",
    ] {
        assert!(wide.contains(t), "{t}: {wide}");
    }
}

#[test]
fn results_with_nothing_sent_say_so() {
    let mut app = loaded(Role::Operator, false);
    app.update(Action::ShowView(View::Results));
    let mut empty = fixtures::report(By::Service, false);
    empty.groups.clear();
    app.apply(NetEvent::Data(Data::Report(Box::new(empty))));
    let screen = render(&app.state, 80, 24);
    assert!(
        screen.contains("no messages sent in the last 90 days (2024-12-15 to 2025-03-14)"),
        "{screen}"
    );
    assert!(!screen.contains("0.0%"), "no table of zeros: {screen}");
}

#[test]
fn results_switch_to_pooled_only_for_a_role_that_may_and_show_suppressed_cells() {
    // An operator may not pool: not offered, refused with a reason.
    let mut app = loaded(Role::Operator, false);
    app.update(Action::ShowView(View::Results));
    app.take_effects();
    app.key(key('p'));
    assert!(!app.state.results.pooled);
    assert!(app.state.notice.as_ref().is_some_and(|n| n.is_error()));
    assert!(report_fetches(&app.take_effects()).is_empty());

    // An admin switches; a late answer for the tenants is dropped.
    let mut app = loaded(Role::Admin, false);
    app.update(Action::ShowView(View::Results));
    app.take_effects();
    app.key(key('p'));
    assert!(app.state.results.pooled);
    assert_eq!(
        report_fetches(&app.take_effects()),
        [(By::Service, true), (By::Lead, true)]
    );
    assert!(render(&app.state, 80, 24).contains("asking the daemon"));
    assert!(
        !app.apply(NetEvent::Data(Data::Report(Box::new(fixtures::report(
            By::Service,
            false
        )))))
    );
    load_results(&mut app, true);
    let screen = render(&app.state, 80, 24);
    assert!(
        screen.contains("Results, pooled over 7 dealers"),
        "{screen}"
    );
    let total = screen
        .lines()
        .find(|l| l.starts_with("total"))
        .unwrap_or_default();
    assert!(total.contains("supp.: complementary"), "{screen}");
    assert!(
        row_of(&screen, "birthday").contains("supp.: few dealers"),
        "{screen}"
    );
    assert!(
        row_of(&screen, "third").contains("suppressed (too few dealers)"),
        "{screen}"
    );
    assert!(screen.contains("at least 5 dealers"), "{screen}");

    // The brand sees pooled results only, and starts there.
    let mut app = App::new(AppState::new("/run/touchpoint/touchpoint.sock", false));
    app.resize(80, 24);
    app.apply(NetEvent::Connected {
        daemon: "touchpointd 0.1.0".into(),
        identity: identity(Role::Brand),
    });
    assert_eq!(app.state.view, View::Results);
    let effects = app.take_effects();
    assert!(
        !effects.contains(&Effect::Fetch(Fetch::Status)),
        "the brand may not read the status: {effects:?}"
    );
    assert_eq!(
        report_fetches(&effects),
        [(By::Service, true), (By::Lead, true)]
    );
    app.key(key('p'));
    assert!(app.state.results.pooled);
    let help = {
        app.key(key('?'));
        render(&app.state, 80, 40)
    };
    assert!(!help.contains("pooled over every dealer"), "{help}");
}

/// Results follow the change feed: a sent message, a credited response
/// (both outbox) or a booked cost asks again; an import of customers does not.
#[test]
fn results_are_asked_again_when_messages_or_costs_change() {
    let mut app = loaded(Role::Operator, false);
    app.update(Action::ShowView(View::Results));
    app.take_effects();
    let changed = |topics| {
        NetEvent::Changed(touchpoint_common::protocol::Changes {
            topics,
            tenants: Vec::new(),
        })
    };
    app.apply(changed(vec![Topic::Tenants]));
    assert!(report_fetches(&app.take_effects()).is_empty());
    for topic in [Topic::Outbox, Topic::Costs] {
        app.apply(changed(vec![topic]));
        assert_eq!(
            report_fetches(&app.take_effects()),
            [(By::Service, false), (By::Lead, false)]
        );
    }
}

/// The footer offers only what works on the row under the cursor, and an
/// action that cannot work says why at once instead of after `y`; own
/// proposals are not offered for approval.
#[test]
fn only_actions_that_can_work_on_the_current_row_are_offered() {
    use touchpoint_common::outbox::MessageStatus;
    use touchpoint_common::protocol::{Proposal, ProposalStatus};

    let mut app = loaded(Role::Operator, false);
    let rows = app.state.queue.page.as_ref().expect("rows").rows.clone();
    let held = rows
        .iter()
        .position(|r| r.status == MessageStatus::Held)
        .expect("a held row in the fixture");
    for _ in 0..held {
        app.key(key('j'));
    }
    let id = rows[held].id;
    let footer = render(&app.state, 160, 48);
    let footer = footer.lines().last().expect("footer").to_string();
    assert!(footer.contains("L release"), "{footer}");
    assert!(!footer.contains("H hold"), "{footer}");
    app.key(KeyEvent::new(KeyCode::Char('H'), KeyModifiers::SHIFT));
    assert_eq!(
        app.state.overlay, None,
        "no confirmation for what cannot work"
    );
    assert!(app.take_effects().is_empty());
    assert_eq!(
        app.state.notice.clone().map(|n| n.text),
        Some(format!("#{id}: cannot hold a message that is held"))
    );
    // Release works: confirmed first.
    app.key(KeyEvent::new(KeyCode::Char('L'), KeyModifiers::SHIFT));
    assert!(matches!(app.state.overlay, Some(Overlay::Confirm(_))));

    // A reviewer is not offered approval of their own proposal.
    let mut rev = loaded(Role::Reviewer, false);
    rev.update(Action::ShowView(View::Approvals));
    let me = identity(Role::Reviewer);
    let own = Proposal {
        id: 5,
        template: "service_due".into(),
        text: String::new(),
        base_version: 1,
        rollback_to: None,
        author: me.user.clone(),
        author_uid: me.uid,
        comment: "mine".into(),
        created_at: fixtures::ts(0),
        status: ProposalStatus::Pending,
    };
    rev.apply(NetEvent::Data(Data::Proposals(vec![own])));
    rev.take_effects();
    let screen = render(&rev.state, 160, 48);
    let footer = screen.lines().last().expect("footer");
    assert!(!footer.contains("a approve"), "{footer}");
    assert!(footer.contains("x reject"), "{footer}");
    rev.key(key('a'));
    assert_eq!(rev.state.overlay, None);
    assert_eq!(
        rev.state.notice.clone().map(|n| n.text),
        Some("you proposed #5: another reviewer approves it (four eyes)".into())
    );
}

/// The detail shows the content whole (the pane scrolls), wraps each line
/// once with its indent kept, stops scrolling at its end, and PgDn with the
/// detail open scrolls the message instead of moving to another one.
#[test]
fn the_detail_shows_the_content_whole_and_scrolls_to_its_end_only() {
    use touchpoint_common::protocol::MessageContent;

    let mut app = loaded(Role::Operator, false);
    app.resize(80, 24);
    let row = app.state.queue.selected_row().cloned().expect("a row");
    let text: String = (1..=30)
        .map(|i| format!("Zeile {i}: kurz\n"))
        .chain(["Letzte Zeile des Briefes\n".to_string()])
        .collect();
    app.apply(NetEvent::Data(Data::Content(Box::new(MessageContent {
        tenant: row.tenant.clone(),
        id: row.id,
        template: "service_due".into(),
        version: 3,
        note: "rendered with v3".into(),
        subject: "Ihr Service".into(),
        text,
        html: String::new(),
    }))));
    let mut m = fixtures::message();
    m.id = row.id;
    m.why = vec![touchpoint_common::outbox::Why {
        step: touchpoint_common::outbox::Step::SendTime,
        text: "eine sehr lange Begründung ".repeat(8),
    }];
    app.apply(NetEvent::Data(Data::Message {
        tenant: row.tenant.clone(),
        message: Box::new(m),
    }));
    app.update(Action::Open);
    app.take_effects();
    let first = render(&app.state, 80, 24);
    assert!(!first.contains("more lines"), "{first}");
    // PgDn scrolls the message; the cursor stays on it.
    app.update(Action::PageDown);
    assert_eq!(app.state.queue.selected_row().map(|r| r.id), Some(row.id));
    assert!(app.state.queue.detail_scroll > 0);
    // Down to the end, and no further: the last line stays on screen.
    for _ in 0..40 {
        app.update(Action::DetailDown);
    }
    let end = render(&app.state, 80, 24);
    assert!(end.contains("Letzte Zeile des Briefes"), "{end}");
    assert!(end.contains("Message-ID"), "{end}");
    let at_end = app.state.queue.detail_scroll;
    app.update(Action::DetailDown);
    assert_eq!(app.state.queue.detail_scroll, at_end);
    // A why wraps under its text, not at column 0.
    let mut screen = String::new();
    for _ in 0..40 {
        app.update(Action::DetailUp);
        screen.push_str(&render(&app.state, 80, 24));
    }
    let why = screen
        .lines()
        .find(|l| l.contains("send_time") || l.contains("send time"))
        .expect("the why line");
    let next = screen
        .lines()
        .skip_while(|l| *l != why)
        .nth(1)
        .expect("its continuation");
    assert!(
        next.trim_start_matches('│').starts_with("              "),
        "{why}\n{next}"
    );
}

#[test]
fn the_queue_title_counts_with_thousands_separators_on_both_sides() {
    let mut app = loaded(Role::Operator, false);
    app.key(KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT));
    let (offset, limit) = app
        .take_effects()
        .into_iter()
        .find_map(|e| match e {
            Effect::Fetch(Fetch::Queue { offset, limit, .. }) => Some((offset, limit)),
            _ => None,
        })
        .expect("the last window is asked for");
    app.apply(NetEvent::Data(Data::Queue(Box::new(fixtures::queue_page(
        offset,
        u64::from(limit),
    )))));
    let screen = render(&app.state, 80, 24);
    assert!(screen.contains(" Messages 1,234 of 1,234 "), "{screen}");
}

#[test]
fn the_overview_steps_through_the_days_and_esc_goes_back_to_the_next_one() {
    let mut app = loaded(Role::Operator, false);
    app.update(Action::ShowView(View::Overview));
    app.take_effects();
    let shown = fixtures::overview().day;
    let asked = |app: &mut App| -> Vec<Option<touchpoint_common::Date>> {
        app.take_effects()
            .into_iter()
            .filter_map(|e| match e {
                Effect::Fetch(Fetch::Overview { day }) => Some(day),
                _ => None,
            })
            .collect()
    };
    app.key(key(']'));
    assert_eq!(asked(&mut app), vec![Some(shown.add_days(1))]);
    app.key(key('['));
    // From the day shown until the answer comes.
    assert_eq!(asked(&mut app), vec![Some(shown.add_days(-1))]);
    app.key(code(KeyCode::Esc));
    assert_eq!(asked(&mut app), vec![None]);
    app.key(code(KeyCode::Esc));
    assert!(asked(&mut app).is_empty(), "already on the default day");
    let screen = render(&app.state, 80, 24);
    assert!(
        screen.contains(" Fri 2025-03-14 (today) planned"),
        "{screen}"
    );
    assert!(screen.contains("Sun 16 5,825"), "{screen}");
}

fn type_line(app: &mut App, text: &str) {
    app.key(key(':'));
    for c in text.chars() {
        app.key(key(c));
    }
}

/// `:help` lists the commands in a box that scrolls and stops at its end;
/// a dry-run plan goes at once, closing batches asks first; Ctrl-c quits
/// from the line.
#[test]
fn the_command_line_helps_asks_first_and_scrolls_its_output() {
    let mut app = loaded(Role::Operator, false);
    app.resize(80, 10);
    type_line(&mut app, "help");
    app.key(code(KeyCode::Enter));
    let Some(Overlay::Output(out)) = &app.state.overlay else {
        panic!("the commands: {:?}", app.state.overlay);
    };
    assert_eq!(out.title, "Commands (:)");
    assert!(out
        .lines
        .iter()
        .any(|l| l.starts_with(":batches [--tenant T]")));
    let lines = out.lines.len();
    for _ in 0..100 {
        app.key(key('j'));
    }
    let Some(Overlay::Output(out)) = &app.state.overlay else {
        panic!("still open");
    };
    // 10 rows: the box is 8 high, 5 of them text.
    assert_eq!(out.top, lines - 5);
    let screen = render(&app.state, 80, 10);
    assert!(
        screen.contains(&format!("lines {}-{lines} of {lines}", lines - 4)),
        "{screen}"
    );
    app.key(code(KeyCode::Esc));
    assert_eq!(app.state.overlay, None);

    type_line(&mut app, "plan --dry-run --tenant d001");
    app.key(code(KeyCode::Enter));
    assert_eq!(app.state.overlay, None, "a dry run asks nothing");
    assert!(matches!(
        app.take_effects().as_slice(),
        [Effect::Act(Act::Run(super::msg::Run::Plan {
            dry_run: true,
            ..
        }))]
    ));
    type_line(&mut app, "batches");
    app.key(code(KeyCode::Enter));
    let Some(Overlay::Confirm(c)) = &app.state.overlay else {
        panic!("batches asks first");
    };
    assert_eq!(c.title, "Close today's batches");
    assert!(app.take_effects().is_empty());
    app.key(key('n'));
    type_line(&mut app, "pa");
    app.key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(app.state.quit);
}

//! The console's header and alerts at 80 columns against a real daemon
//! (who is attached, the pauses, every alert listed with `!`), and a real
//! reconnect: the console's own connection task (`tui::net::run`) loses
//! its daemon and gets it back, and what was said of the lost connection
//! does not stay next to `● live`.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tokio::sync::mpsc;
use touchpoint::tui::app::{App, AppState, ConnState};
use touchpoint::tui::harness::{render, Harness};
use touchpoint::tui::msg::NetEvent;
use touchpoint::tui::net;
use touchpoint::tui::popup::Overlay;
use touchpoint_common::protocol::{PauseScope, QueueFilter, Role};
use touchpoint_tests::{tid, Options, TestDaemon};

use crate::console::{rule, snapshot};
use crate::today::{brand_due_at_once, dealer_file, plan_customers};

const WAIT: Duration = Duration::from_secs(30);

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

/// Dispatch on and paused (nothing leaves), six emails planned that take
/// [`TENANT`](crate::today::TENANT)'s whole `service_due` budget (six at
/// 0.02), and three more pauses: more alerts than an 80×24 overview shows.
async fn busy_daemon() -> (TestDaemon, tempfile::TempDir) {
    let files = tempfile::tempdir().expect("tempdir");
    let dealer = dealer_file(files.path());
    let text = std::fs::read_to_string(&dealer).expect("dealer file");
    assert!(text.contains("monthly_budget = 100.00"), "{text}");
    std::fs::write(
        &dealer,
        text.replace("monthly_budget = 100.00", "monthly_budget = 0.12"),
    )
    .expect("dealer file");
    let d = TestDaemon::start_with(Options {
        access: vec![rule(Role::Operator)],
        dealer_files: vec![dealer],
        brand: Some(brand_due_at_once()),
        dispatch: Some("[dispatch]\ntick_ms = 50\nbatch_at = \"23:59\"\n".into()),
        ..Options::default()
    });
    let mut c = d.client().await;
    c.pause(PauseScope::default()).await.expect("pause");
    plan_customers(&mut c, files.path()).await;
    for t in ["d001", "d002"] {
        c.pause(PauseScope {
            tenant: Some(tid(t)),
            service: None,
        })
        .await
        .expect("pause a tenant");
    }
    c.pause(PauseScope {
        tenant: None,
        service: Some("service_due".into()),
    })
    .await
    .expect("pause a service");
    // Dispatch renders and queues them under the pause: wait for it, so
    // that every screen shows the same.
    let queued = QueueFilter::parse("status:queued").expect("filter");
    let deadline = tokio::time::Instant::now() + WAIT;
    while c.queue(&queued, 0, 1).await.expect("queue").total < 6 {
        assert!(tokio::time::Instant::now() < deadline, "never queued");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (d, files)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_80_columns_the_user_and_the_pauses_stay_and_every_alert_can_be_listed() {
    let (d, _files) = busy_daemon().await;
    let mut c = Harness::attach(&d.socket, 80, 24, false)
        .await
        .expect("attach");
    let screen = c.screen();
    let header = screen.lines().next().unwrap_or_default().to_string();
    assert!(
        header.contains("(operator)")
            && header.contains("paused (4)")
            && header.ends_with("● live"),
        "{screen}"
    );
    // The pauses come first, before the budget used up.
    let alerts: Vec<&str> = screen
        .lines()
        .skip_while(|l| !l.starts_with(" Alerts ("))
        .collect();
    assert!(alerts[0].contains("more)  ! lists them all"), "{screen}");
    assert!(alerts[1].contains("paused by"), "{screen}");
    snapshot("header_pauses_and_alerts_80x24", &screen);

    c.press(key('!')).await.expect("alerts");
    assert!(matches!(c.app.state.overlay, Some(Overlay::Alerts(_))));
    let screen = c.screen();
    for needle in [
        "All dispatch paused by",
        "Tenant d001 paused by",
        "Tenant d002 paused by",
        "Service service_due paused by",
        "service_due budget",
    ] {
        assert!(screen.contains(needle), "{needle}: {screen}");
    }
    snapshot("alerts_list_80x24", &screen);
    // The views keep the header's pauses.
    c.press(code(KeyCode::Esc)).await.expect("close");
    c.press(key('2')).await.expect("queue");
    let header = c.screen().lines().next().unwrap_or_default().to_string();
    assert!(
        header.contains("paused (4)") && header.contains("(operator)"),
        "{header}"
    );
}

fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

/// The interactive console's loop without a terminal: the connection task's
/// events applied, the app's effects handed to it, until `done` holds.
async fn run_until(
    app: &mut App,
    events: &mut mpsc::UnboundedReceiver<NetEvent>,
    effects: &mpsc::UnboundedSender<touchpoint::tui::msg::Effect>,
    done: impl Fn(&App) -> bool,
) {
    loop {
        for e in app.take_effects() {
            effects.send(e).expect("the connection task runs");
        }
        if done(app) {
            return;
        }
        let ev = tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap_or_else(|_| panic!("nothing came; the state: {:#?}", app.state.conn))
            .expect("the connection task reports");
        app.apply(ev);
    }
}

fn screen(app: &App) -> String {
    render(&app.state, 80, 24)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_reconnect_no_notice_of_the_lost_connection_stays_next_to_live() {
    let (mut d, _files) = busy_daemon().await;
    let (ev_tx, mut events) = mpsc::unbounded_channel();
    let (effects, eff_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(net::run(d.socket.clone(), ev_tx, eff_rx));
    let mut app = App::new(AppState::new(d.socket.display().to_string(), false));
    app.resize(80, 24);
    app.key(key('2'));
    run_until(&mut app, &mut events, &effects, |a| {
        a.state.connected() && a.state.queue.selected_row().is_some()
    })
    .await;

    // The daemon goes; an action taken meanwhile is not sent, and says so.
    d.stop_in_place();
    run_until(&mut app, &mut events, &effects, |a| {
        matches!(a.state.conn, ConnState::Disconnected { .. })
    })
    .await;
    app.key(KeyEvent::new(KeyCode::Char('H'), KeyModifiers::SHIFT));
    app.key(key('y'));
    run_until(&mut app, &mut events, &effects, |a| {
        a.state
            .notice
            .as_ref()
            .is_some_and(|n| n.text.contains("not sent"))
    })
    .await;
    assert!(screen(&app).contains("not sent, nothing changed"));

    // It comes back on the same state: `● live`, and the notice is gone.
    d.restart_with_access(&[rule(Role::Operator)]);
    app.key(key('r'));
    // Connected, and the overview (the header's pauses) read again.
    run_until(&mut app, &mut events, &effects, |a| {
        a.state.connected() && a.state.overview.data.is_some()
    })
    .await;
    let shown = screen(&app);
    assert!(shown.contains("● live"), "{shown}");
    assert!(!shown.contains("not sent"), "{shown}");
    assert_eq!(app.state.notice, None);
    snapshot("reconnected_80x24", &shown);
    task.abort();
}

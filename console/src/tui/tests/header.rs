//! The header at 80 columns (who is attached, pauses), the alerts list,
//! and the notices of a lost connection.

use touchpoint_common::domain::Timestamp;
use touchpoint_common::protocol::{Pause, PauseScope, Role};

use super::super::action::View;
use super::super::app::{App, NoticeKind};
use super::super::msg::{Data, NetEvent};
use super::super::popup::Overlay;
use super::{identity, key, loaded, render};
use crate::fixtures::{self, tid};

fn pause(tenant: Option<&str>) -> Pause {
    Pause {
        scope: PauseScope {
            tenant: tenant.map(tid),
            service: None,
        },
        by: "anna".into(),
        at: Timestamp(1_700_000_000_000),
    }
}

fn with_pauses(app: &mut App, pauses: Vec<Pause>) {
    let mut o = fixtures::overview();
    o.paused = pauses;
    app.apply(NetEvent::Data(Data::Overview(Box::new(o))));
}

#[test]
fn at_80_columns_the_header_keeps_who_is_attached_and_every_pause() {
    // Read-only, policy errors, a pause: the most the header holds.
    let mut app = loaded(Role::Operator, true);
    with_pauses(&mut app, vec![pause(None)]);
    for view in View::ALL {
        app.state.view = view;
        let screen = render(&app.state, 80, 24);
        let header = screen.lines().next().unwrap_or_default();
        assert!(header.contains("anna (operator)"), "{header}");
        assert!(header.contains("paused: all dispatch"), "{header}");
        assert!(header.ends_with("● live"), "{header}");
    }
    with_pauses(&mut app, vec![pause(None), pause(Some("d002"))]);
    let screen = render(&app.state, 80, 24);
    let header = screen.lines().next().unwrap_or_default();
    assert!(header.contains("paused (2)"), "{header}");
    // Narrower, a long name is shortened, never dropped.
    app.apply(NetEvent::Connected {
        daemon: "touchpointd 0.1.0".into(),
        identity: touchpoint_common::protocol::Identity {
            user: "maximiliane.hohenzollern".into(),
            ..identity(Role::Operator)
        },
    });
    let screen = render(&app.state, 60, 24);
    let header = screen.lines().next().unwrap_or_default();
    assert!(header.contains("maximil… (operator)"), "{header}");
    assert!(header.contains("paused (2)"), "{header}");
    insta::assert_snapshot!("header_shortened_60x24", header);
}

#[test]
fn the_overview_at_80_columns_shows_the_user_the_pause_and_how_to_list_every_alert() {
    let mut app = loaded(Role::Operator, false);
    let mut o = fixtures::overview();
    o.paused = vec![pause(Some("d002"))];
    // The daemon's order: the pause first, then the most severe.
    let budget = o.alerts[1].clone();
    o.alerts.insert(
        0,
        touchpoint_common::protocol::Alert {
            level: touchpoint_common::protocol::AlertLevel::Warning,
            tenant: Some(tid("d002")),
            text: "Tenant d002 paused by anna since 09:12".into(),
        },
    );
    o.alerts.extend(std::iter::repeat_n(budget, 8));
    app.apply(NetEvent::Data(Data::Overview(Box::new(o))));
    app.key(key('1'));
    let screen = render(&app.state, 80, 24);
    assert!(screen.contains("anna (operator)"), "{screen}");
    assert!(
        screen.contains("Alerts (11, 8 more)  ! lists them all"),
        "{screen}"
    );
    assert!(
        screen.contains("d002: Tenant d002 paused by anna"),
        "{screen}"
    );
    insta::assert_snapshot!("overview_pause_and_alerts_80x24", screen);

    // `!` lists them all, wrapped; j/k and the page keys scroll, and the
    // last page is a whole one.
    app.key(key('!'));
    let screen = render(&app.state, 80, 24);
    assert!(screen.contains("Alerts (11): lines 1–"), "{screen}");
    insta::assert_snapshot!("alerts_list_80x24", screen);
    app.key(key('G'));
    let Some(Overlay::Alerts(list)) = &app.state.overlay else {
        panic!("the alerts list stays open");
    };
    let top = list.top;
    assert!(top > 0);
    app.key(key('j'));
    assert!(matches!(&app.state.overlay, Some(Overlay::Alerts(a)) if a.top == top));
    let screen = render(&app.state, 80, 24);
    assert!(
        screen.contains("remaining"),
        "the last line shows: {screen}"
    );
    app.key(key('k'));
    assert!(matches!(&app.state.overlay, Some(Overlay::Alerts(a)) if a.top == top - 1));
    // `!` again (or Esc) closes it.
    app.key(key('!'));
    assert_eq!(app.state.overlay, None);
}

#[test]
fn a_reconnect_clears_what_was_said_of_the_lost_connection() {
    let mut app = loaded(Role::Operator, false);
    app.apply(NetEvent::Disconnected {
        error: "connection reset by peer".into(),
        attempt: 1,
    });
    app.apply(NetEvent::Acted {
        summary: "not sent, nothing changed: the daemon is not reachable; try again once connected"
            .into(),
        ok: false,
    });
    assert!(app.state.notice.as_ref().is_some_and(|n| n.is_error()));
    app.apply(NetEvent::Connecting { attempt: 2 });
    app.apply(NetEvent::Connected {
        daemon: "touchpointd 0.1.0".into(),
        identity: identity(Role::Operator),
    });
    assert_eq!(app.state.notice, None);
    let screen = render(&app.state, 80, 24);
    assert!(
        screen.contains("● live") && !screen.contains("not sent"),
        "{screen}"
    );
    // What was done stays true after a reconnect.
    app.apply(NetEvent::Acted {
        summary: "held 1 message".into(),
        ok: true,
    });
    app.apply(NetEvent::Connected {
        daemon: "touchpointd 0.1.0".into(),
        identity: identity(Role::Operator),
    });
    assert_eq!(
        app.state.notice.as_ref().map(|n| n.kind),
        Some(NoticeKind::Done)
    );
}

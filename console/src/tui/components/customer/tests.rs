//! The customer view on fabricated answers: what reaches the terminal of
//! a dealer's hostile text, wrapping at 80 columns, the cursor, Enter on a
//! message, and the way in and out through the app. The view against a
//! real daemon (snapshots, refusals) is in `tests/e2e/console_customer.rs`.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use touchpoint_common::protocol::CustomerDetail;

use super::*;
use crate::fixtures::{self, tid};
use crate::tui::app::{App, AppState};
use crate::tui::harness::buffer_text;
use crate::tui::msg::{Data, Effect, NetEvent};

fn render(view: &CustomerView, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal.draw(|f| view.draw(f, f.area())).expect("draw");
    buffer_text(terminal.backend().buffer())
}

fn shown(detail: CustomerDetail) -> CustomerView {
    let mut v = CustomerView::default();
    let (t, no) = (detail.tenant.clone(), detail.customer.customer_no.clone());
    v.open(t.clone(), no.clone(), View::Queue);
    assert!(v.on_data(t, no, Ok(Box::new(detail))));
    v
}

fn screen(width: u16, page_rows: usize) -> Screen {
    Screen { width, page_rows }
}

#[test]
fn a_dealers_control_and_bidi_characters_are_written_out_not_sent() {
    let mut d = fixtures::customer_detail();
    d.customer.last_name = "Köhler\u{1b}[2J".into();
    d.customer.email = Some("j\u{202e}ed.elpmaxe@relhoek".into());
    d.customer.address.street = "Haupt\u{7}straße".into();
    d.customer.company = Some("Köhler \u{2066}GmbH".into());
    d.consents[0].source = "formular\u{9b}31m".into();
    d.vehicles[0].visits[0].kind = "Inspektion\u{200f}".into();
    d.messages[0].service = "inspektion\u{1b}]0;owned\u{7}".into();
    let text = render(&shown(d), 80, 40);
    for hidden in [
        '\u{1b}', '\u{202e}', '\u{7}', '\u{2066}', '\u{9b}', '\u{200f}',
    ] {
        assert!(
            !text.contains(hidden),
            "{hidden:?} reached the terminal:\n{text}"
        );
    }
    for written in [
        "Köhler\\u{1b}[2J",
        "j\\u{202e}ed.elpmaxe@relhoek",
        "Haupt\\u{7}straße",
        "Köhler \\u{2066}GmbH",
        "formular\\u{9b}31m",
        "Inspektion\\u{200f}",
        "inspektion\\u{1b}]0;owned\\u{7}",
    ] {
        assert!(text.contains(written), "{written} not shown:\n{text}");
    }
}

#[test]
fn long_lines_wrap_at_word_boundaries_within_80_columns() {
    let mut d = fixtures::customer_detail();
    let long = "Formular Werkstatttermin online bestätigt durch den Kunden am Empfang \
                der Filiale Köln-Ehrenfeld nach Rückfrage beim Serviceberater";
    d.consents[0].source = long.into();
    d.customer.company = Some(
        "Müller-Lüdenscheidt-Wöllersdorf Fahrzeugvermietung und Flottenmanagement GmbH & Co. KG"
            .into(),
    );
    let text = render(&shown(d), 80, 60);
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "{line}");
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    for w in long
        .split_whitespace()
        .chain(["Müller-Lüdenscheidt-Wöllersdorf"])
    {
        assert!(words.contains(&w), "{w} is cut:\n{text}");
    }
    // Continuation lines stand under the text, not at column 0.
    let at = text
        .lines()
        .position(|l| l.contains("Formular Werkstatttermin"))
        .expect("the consent");
    let next = text.lines().nth(at + 1).unwrap_or_default();
    let indent = next.chars().take_while(|c| *c == ' ').count();
    assert!(indent >= 20, "{next}");
}

#[test]
fn the_cursor_pages_through_the_lines_and_enter_asks_for_its_message() {
    let mut v = shown(fixtures::customer_detail());
    // A terminal of 10 rows: the pane shows 7 lines (8 less its title).
    let s = screen(80, 5);
    let mut out = Vec::new();
    // Not on a message: nothing to show in the queue.
    assert_eq!(v.message_at_cursor(80), None);
    v.update(Action::Open, s, &mut out);
    assert!(out.is_empty(), "{out:?}");
    // A page down: the next seven lines, the cursor on the first.
    let first = render(&v, 80, 8);
    v.update(Action::PageDown, s, &mut out);
    assert_eq!(v.cursor, 7);
    let second = render(&v, 80, 8);
    assert!(first.contains("Jürgen Köhler"), "{first}");
    assert!(!second.contains("Jürgen Köhler"), "{second}");
    assert_eq!(first.lines().count(), 8, "{first}");
    assert_eq!(second.lines().nth(1), Some("Consents (1)"), "{second}");
    // The last line is the letter #42.
    v.update(Action::Bottom, s, &mut out);
    assert_eq!(v.message_at_cursor(80), Some(42));
    let page = render(&v, 80, 8);
    assert!(page.contains("#42"), "{page}");
    assert!(!page.contains("Jürgen Köhler"), "a later page:\n{page}");
    v.update(Action::Open, s, &mut out);
    let d = fixtures::customer_detail();
    assert_eq!(
        out,
        vec![Cmd::ShowMessage {
            tenant: tid("d001"),
            id: 42,
            filter: QueueFilter {
                tenants: vec![tid("d001")],
                channels: vec![d.messages[0].channel],
                from: Some(d.messages[0].send_on),
                to: Some(d.messages[0].send_on),
                text: "K-1001".into(),
                ..QueueFilter::default()
            },
        }]
    );
    v.update(Action::Top, s, &mut out);
    assert_eq!(v.cursor, 0);
    assert!(render(&v, 80, 8).contains("Jürgen Köhler"));
}

#[test]
fn an_answer_for_another_customer_is_dropped_and_a_refusal_is_shown() {
    let mut v = CustomerView::default();
    v.open(tid("d001"), "K-1".into(), View::Queue);
    assert!(render(&v, 80, 10).contains("asking the daemon for customer K-1 of d001…"));
    // An answer to an earlier question.
    assert!(!v.on_data(
        tid("d001"),
        "K-1001".into(),
        Ok(Box::new(fixtures::customer_detail()))
    ));
    assert_eq!(v.detail, None);
    assert!(v.on_data(
        tid("d001"),
        "K-1".into(),
        Err("not found: tenant d001 has no customer \"K-1\"".into())
    ));
    let text = render(&v, 80, 10);
    assert!(
        text.contains("The daemon refused: not found: tenant d001 has no customer \"K-1\""),
        "{text}"
    );
    assert!(!text.contains("asking"), "{text}");
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

/// An operator's console with the queue on screen.
fn queue_app() -> App {
    queue_app_readonly(false)
}

fn queue_app_readonly(readonly: bool) -> App {
    let mut app = App::new(AppState::new("/run/touchpoint/touchpoint.sock", readonly));
    app.resize(80, 24);
    app.apply(NetEvent::Connected {
        daemon: "touchpointd 0.1.0".into(),
        identity: fixtures::identity(),
    });
    app.update(Action::ShowView(View::Queue));
    app.take_effects();
    app.apply(NetEvent::Data(Data::Queue(Box::new(fixtures::queue_page(
        0, 57,
    )))));
    app.take_effects();
    app
}

#[test]
fn c_on_a_message_opens_its_recipient_and_esc_goes_back() {
    let mut app = queue_app();
    let row = app.state.queue.selected_row().cloned().expect("a row");
    app.key(key('c'));
    assert_eq!(app.state.view, View::Customer);
    assert_eq!(app.state.tab(), View::Queue, "the queue's tab stays lit");
    let asked = app.take_effects();
    assert!(
        asked.contains(&Effect::Fetch(Fetch::Customer {
            tenant: row.tenant.clone(),
            customer: row.recipient.clone(),
        })),
        "{asked:?}"
    );
    // The footer offers Enter only on a message line.
    let mut d = fixtures::customer_detail();
    d.customer.customer_no = row.recipient.clone();
    app.apply(NetEvent::Data(Data::Customer {
        tenant: row.tenant.clone(),
        customer: row.recipient.clone(),
        answer: Ok(Box::new(d)),
    }));
    assert!(app.state.unavailable(Action::Open).is_some());
    app.key(key('G'));
    assert_eq!(app.state.unavailable(Action::Open), None);
    // Enter: the queue, filtered to that message's day and recipient.
    app.key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert_eq!(app.state.view, View::Queue);
    assert_eq!(app.state.queue.follow, Some((row.tenant.clone(), 42)));
    assert!(app.state.queue.detail_open);
    assert_eq!(app.state.queue.filter.text, row.recipient);
    // Back in the customer and out again with Esc: the queue is read again.
    app.take_effects();
    app.open_customer(row.tenant.clone(), row.recipient.clone());
    app.take_effects();
    app.key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    assert_eq!(app.state.view, View::Queue);
    assert!(app
        .take_effects()
        .iter()
        .any(|e| matches!(e, Effect::Fetch(Fetch::Queue { .. }))));
}

#[test]
fn a_request_without_an_answer_does_not_leave_the_pane_asking() {
    let mut app = queue_app();
    app.key(key('c'));
    app.apply(NetEvent::Failed {
        what: "customer",
        error: "no answer from the daemon to customer within 30 s".into(),
    });
    assert_eq!(
        app.state.customer.error.as_deref(),
        Some("no answer from the daemon to customer within 30 s")
    );
}

#[test]
fn never_panics_at_any_size() {
    let mut v = shown(fixtures::customer_detail());
    v.cursor = 7;
    let mut refused = CustomerView::default();
    refused.open(tid("d002"), "K-1".into(), View::Queue);
    refused.on_data(
        tid("d002"),
        "K-1".into(),
        Err("forbidden: tenant d002 is outside your scope".into()),
    );
    for view in [&v, &refused, &CustomerView::default()] {
        for w in 0..=45u16 {
            for h in 0..=20u16 {
                render(view, w, h);
            }
        }
        render(view, 300, 100);
    }
}

#[test]
fn a_read_only_console_reads_customers_and_still_acts_on_nothing() {
    let mut app = queue_app_readonly(true);
    app.key(key('H'));
    assert_eq!(app.state.overlay, None);
    assert!(app.state.notice.as_ref().is_some_and(|n| n.is_error()));
    app.key(key('c'));
    assert_eq!(app.state.view, View::Customer);
    assert!(app
        .take_effects()
        .iter()
        .any(|e| matches!(e, Effect::Fetch(Fetch::Customer { .. }))));
}

//! The console's customer view against a real daemon: `c` on a message
//! in the queue opens its recipient as the daemon answers `touchpoint
//! customer` (vehicles, consents and their sources, a visit, a merge, the
//! messages), at 80×24 and 120×30, paged to its end, Enter on a message
//! back in the queue; and the daemon's refusals in the pane: an unknown
//! customer, a tenant outside the operator's scope.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use touchpoint::client::PlanArgs;
use touchpoint::tui::action::View;
use touchpoint::tui::harness::Harness;
use touchpoint_common::config::AccessRule;
use touchpoint_common::protocol::Role;
use touchpoint_common::Date;
use touchpoint_tests::{tid, Options, TestDaemon};

use crate::common::me;
use crate::console::{key, rule, snapshot};
use crate::today::{brand_due_at_once, customers_csv, dealer_file, german, TENANT};

fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

/// The six customers of `today` planned for today, K-1 with a second car
/// under a second number (K-7, merged into K-1 by the import) and a
/// workshop visit.
async fn daemon() -> (TestDaemon, tempfile::TempDir) {
    let files = tempfile::tempdir().expect("tempdir");
    let d = TestDaemon::start_with(Options {
        access: vec![rule(Role::Operator)],
        dealer_files: vec![dealer_file(files.path())],
        brand: Some(brand_due_at_once()),
        ..Options::default()
    });
    let path = customers_csv(files.path(), true);
    let mut csv = std::fs::read_to_string(&path).expect("customers");
    let registered = german(Date::today().add_days(-200));
    csv.push_str(&format!(
        "K-7;Herr;Jürgen;Weiß;;Hauptstraße 1;50671;Köln;kunde1@example.de;;;WNWZZZ3CZNB100007;Nordwagen;Skagen;{registered};;;;;ja;ja;01.03.2024\n"
    ));
    std::fs::write(&path, csv).expect("customers");
    let mut c = d.client().await;
    let r = c.upload(&tid(TENANT), &path).await.expect("upload");
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    let visited = german(Date::today().add_days(-400));
    let visits = files.path().join("werkstatt.csv");
    std::fs::write(
        &visits,
        format!(
            "FIN;Kundennummer;Auftragsdatum;Auftragsart;Rechnungsbetrag\n\
             WNWZZZ3CZNB100001;K-1;{visited};Inspektion;412,00\n"
        ),
    )
    .expect("visits");
    let r = c
        .upload(&tid(TENANT), &visits)
        .await
        .expect("upload visits");
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    let plan = c
        .plan(PlanArgs {
            tenant: Some(tid(TENANT)),
            day: None,
            dry_run: false,
            policies: None,
            show: 0,
        })
        .await
        .expect("plan");
    assert!(
        plan.reports.first().is_some_and(|r| r.planned_count > 0),
        "{plan:?}"
    );
    (d, files)
}

/// The console at `w`×`h` with K-1's message under the cursor, then `c`.
async fn customer_of_k1(d: &TestDaemon, w: u16, h: u16) -> Harness {
    let mut c = Harness::attach(&d.socket, w, h, false)
        .await
        .expect("attach");
    c.press(key('2')).await.expect("queue");
    c.press(key('/')).await.expect("filter");
    c.type_text("k-1").await.expect("type");
    c.press(code(KeyCode::Enter)).await.expect("apply");
    let row = c.app.state.queue.selected_row().cloned().expect("a row");
    assert_eq!(row.recipient, "K-1");
    c.press(key('c')).await.expect("customer");
    assert_eq!(c.app.state.view, View::Customer);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_on_a_message_shows_its_recipient_whole_and_enter_goes_back_to_a_message() {
    let (mut d, _files) = daemon().await;
    for (w, h) in [(80u16, 24u16), (120, 30)] {
        let mut c = customer_of_k1(&d, w, h).await;
        let screen = c.screen();
        for part in [
            "Customer K-1 of a001",
            "Jürgen Weiß",
            "Hauptstraße 1, 50671 Köln",
            "kunde1@example.de",
            "Consents (",
            "Vehicles (2)",
        ] {
            assert!(screen.contains(part), "{part}:\n{screen}");
        }
        assert!(!screen.contains("asking"), "{screen}");
        snapshot(&format!("customer_{w}x{h}"), &screen);
        // The last page: visits, the merge, the messages.
        c.press(key('G')).await.expect("last line");
        let screen = c.screen();
        for part in ["K-7 merged into K-1", "Messages (", "service_due"] {
            assert!(screen.contains(part), "{part}:\n{screen}");
        }
        snapshot(&format!("customer_end_{w}x{h}"), &screen);
        for line in screen.lines() {
            assert!(line.chars().count() <= usize::from(w), "{line}");
        }
    }

    // A page down and up again (at 80×24 the first page ends with the
    // visit); Enter on the message: the queue, the cursor on it.
    let mut c = customer_of_k1(&d, 80, 24).await;
    c.press(code(KeyCode::PageDown)).await.expect("page down");
    let screen = c.screen();
    assert!(screen.contains("Merges (1)"), "{screen}");
    assert!(!screen.contains("Consents"), "{screen}");
    c.press(code(KeyCode::PageUp)).await.expect("page up");
    let screen = c.screen();
    assert!(screen.contains("Consents (4)"), "{screen}");
    assert!(screen.contains("Inspektion · 412.00 €"), "{screen}");
    c.press(key('G')).await.expect("last line");
    let detail = c.app.state.customer.detail.clone().expect("the customer");
    let last = detail.messages.last().expect("a message").id;
    c.press(code(KeyCode::Enter)).await.expect("the message");
    assert_eq!(c.app.state.view, View::Queue);
    let row = c.app.state.queue.selected_row().cloned().expect("a row");
    assert_eq!((row.tenant.as_str(), row.id), (TENANT, last));
    assert!(c.app.state.queue.detail_open);
    assert!(
        c.app.state.queue.current_detail().is_some(),
        "{}",
        c.screen()
    );

    // A number the tenant does not have: the daemon's words in the pane.
    c.app.open_customer(tid(TENANT), "K-99".into());
    c.settle().await.expect("settle");
    let screen = c.screen();
    assert!(
        screen.contains("The daemon refused: not found:") && screen.contains("K-99"),
        "{screen}"
    );
    assert!(!screen.contains("asking"), "{screen}");
    snapshot("customer_unknown_80x24", &screen);
    c.press(code(KeyCode::Esc)).await.expect("back");
    assert_eq!(c.app.state.view, View::Queue);

    // The same operator scoped to another dealer: K-1 of a001 is refused
    // by the daemon's scope check, and the pane says so.
    d.restart_with_access(&[AccessRule {
        tenants: vec!["d001".into()],
        ..rule(Role::Operator)
    }]);
    let mut c = Harness::attach(&d.socket, 80, 24, false)
        .await
        .expect("attach");
    assert_eq!(c.client.identity().role, Role::Operator);
    assert_eq!(c.client.identity().uid, me());
    c.app.open_customer(tid(TENANT), "K-1".into());
    c.settle().await.expect("settle");
    let screen = c.screen();
    assert!(
        screen.contains("The daemon refused: forbidden: tenant a001 is outside your scope"),
        "{screen}"
    );
    assert!(!screen.contains("Weiß"), "{screen}");
    snapshot("customer_out_of_scope_80x24", &screen);
}

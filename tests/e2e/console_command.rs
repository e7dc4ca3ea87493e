//! The console's `:` command line against a real daemon: completion from
//! what the console read, an unknown command with its suggestion, a
//! command the role may not run refused before anything is sent, and
//! pause, resume, a dry-run plan and an import carried out after the
//! confirmation, their results shown and visible in the views. Screens at
//! 80×24 as insta snapshots (`console_command_*`).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use touchpoint::tui::action::View;
use touchpoint::tui::command::Hint;
use touchpoint::tui::harness::Harness;
use touchpoint::tui::popup::Overlay;
use touchpoint_common::protocol::{PauseScope, QueueFilter, Role};
use touchpoint_common::Date;
use touchpoint_tests::tid;

use crate::console::{code, daemon, key, rule, snapshot, snapshot_redacting, Setup};
use crate::today::{german, TENANT};

/// Opens the line and types `text` into it.
async fn type_command(c: &mut Harness, text: &str) {
    c.press(key(':')).await.expect(":");
    assert!(c.app.state.command.open, "{}", c.screen());
    c.type_text(text).await.expect("type");
}

async fn run_command(c: &mut Harness, text: &str) {
    type_command(c, text).await;
    c.press(code(KeyCode::Enter)).await.expect("enter");
}

fn hint(c: &Harness) -> Option<Hint> {
    c.app.state.command.hint.clone()
}

/// Waits until dispatch (paused) has queued the six messages, so that the
/// screens behind a popup are the same on every run.
async fn all_queued(d: &touchpoint_tests::TestDaemon) {
    let mut c = d.client().await;
    let queued = QueueFilter::parse("status:queued").expect("filter");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while c.queue(&queued, 0, 1).await.expect("queue").total < 6 {
        assert!(
            std::time::Instant::now() < deadline,
            "dispatch did not queue the six messages"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A pause's time to the second.
const SECONDS: [(&str, &str); 1] = [(r"hh:mm:\d{2}", "hh:mm:ss")];

/// The pauses in force, as the daemon says.
async fn pauses(d: &touchpoint_tests::TestDaemon) -> Vec<PauseScope> {
    let s = d.client().await.dispatch_status().await.expect("dispatch");
    s.paused.into_iter().map(|p| p.scope).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_completes_and_names_the_closest_command() {
    let (d, _files) = daemon(Role::Operator, Setup::Still).await;
    let mut c = Harness::attach(&d.socket, 80, 24, false)
        .await
        .expect("attach");
    assert!(
        c.screen()
            .lines()
            .last()
            .unwrap_or_default()
            .contains(": command"),
        "the footer offers the line:\n{}",
        c.screen()
    );
    // Several commands start with `p`: the hint under the prompt names them.
    type_command(&mut c, "p").await;
    c.press_code(KeyCode::Tab).await.expect("tab");
    assert_eq!(
        hint(&c),
        Some(Hint::Candidates(vec![
            "pause".into(),
            "plan".into(),
            "policies".into()
        ]))
    );
    snapshot("command_candidates_80x24", &c.screen());
    // One is completed; then a flag, then the tenant the console read.
    c.type_text("a").await.expect("a");
    c.press_code(KeyCode::Tab).await.expect("tab");
    assert_eq!(c.app.state.command.text, "pause ");
    c.type_text("--t").await.expect("--t");
    c.press_code(KeyCode::Tab).await.expect("tab");
    assert_eq!(c.app.state.command.text, "pause --tenant ");
    c.press_code(KeyCode::Tab).await.expect("tab");
    let Some(Hint::Candidates(tenants)) = hint(&c) else {
        panic!("the tenants read:\n{}", c.screen());
    };
    assert!(tenants.contains(&TENANT.to_string()), "{tenants:?}");
    c.type_text(&TENANT[..1]).await.expect("first letter");
    c.press_code(KeyCode::Tab).await.expect("tab");
    assert_eq!(
        c.app.state.command.text,
        format!("pause --tenant {TENANT} ")
    );
    c.type_text("--s").await.expect("--s");
    c.press_code(KeyCode::Tab).await.expect("tab");
    c.press_code(KeyCode::Tab).await.expect("tab");
    assert_eq!(
        c.app.state.command.text,
        format!("pause --tenant {TENANT} --service service_due ")
    );
    // Esc cancels: nothing asked, nothing paused.
    c.press(code(KeyCode::Esc)).await.expect("esc");
    assert!(!c.app.state.command.open && c.app.state.overlay.is_none());

    // An unknown command: the line stays, with the closest one.
    run_command(&mut c, "pase").await;
    assert!(c.app.state.command.open);
    assert_eq!(c.app.state.command.text, "pase");
    let screen = c.screen();
    assert!(
        screen.contains("no command `pase` (did you mean `pause`?)"),
        "{screen}"
    );
    snapshot("command_unknown_80x24", &screen);
    // ↑ brings back what ran before; a view's name switches to it.
    c.press(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL))
        .await
        .expect("clear");
    c.type_text("queue").await.expect("queue");
    c.press(code(KeyCode::Enter)).await.expect("enter");
    assert_eq!(c.app.state.view, View::Queue);
    assert!(!c.app.state.command.open);
    c.press(key(':')).await.expect(":");
    c.press_code(KeyCode::Up).await.expect("up");
    assert_eq!(c.app.state.command.text, "queue");
    c.press_code(KeyCode::Up).await.expect("up");
    assert_eq!(c.app.state.command.text, "pase");
    c.press(code(KeyCode::Esc)).await.expect("esc");
    assert!(!c.app.state.command.open);
}

/// A read-only user is offered neither pause nor import, is refused them
/// before anything is sent, and may still see what a plan would do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_is_refused_a_pause_and_may_dry_run_a_plan() {
    let (mut d, _files) = daemon(Role::Operator, Setup::Paused).await;
    all_queued(&d).await;
    d.restart_with_access(&[rule(Role::ReadOnly)]);
    let before = pauses(&d).await;
    let mut c = Harness::attach(&d.socket, 80, 24, false)
        .await
        .expect("attach");
    type_command(&mut c, "").await;
    c.press_code(KeyCode::Tab).await.expect("tab");
    let Some(Hint::Candidates(offered)) = hint(&c) else {
        panic!("candidates:\n{}", c.screen());
    };
    assert!(offered.contains(&"plan".to_string()), "{offered:?}");
    for refused in ["pause", "resume", "batches", "import"] {
        assert!(!offered.contains(&refused.to_string()), "{offered:?}");
    }
    c.press(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL))
        .await
        .expect("clear");
    c.type_text(&format!("pause --tenant {TENANT}"))
        .await
        .expect("type");
    c.press(code(KeyCode::Enter)).await.expect("enter");
    assert_eq!(c.app.state.overlay, None, "no confirmation");
    assert_eq!(
        hint(&c),
        Some(Hint::Error("your role (read-only) may not pause".into()))
    );
    snapshot("command_refused_read_only_80x24", &c.screen());
    assert_eq!(pauses(&d).await, before, "nothing was sent");

    // A committing plan is refused, a dry run goes without a question.
    c.press(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL))
        .await
        .expect("clear");
    c.type_text("plan").await.expect("type");
    c.press(code(KeyCode::Enter)).await.expect("enter");
    let Some(Hint::Error(e)) = hint(&c) else {
        panic!("refused:\n{}", c.screen());
    };
    assert!(e.contains("--dry-run"), "{e}");
    c.type_text(" --dry-run").await.expect("type");
    c.press(code(KeyCode::Enter)).await.expect("enter");
    let Some(Overlay::Output(out)) = &c.app.state.overlay else {
        panic!("the plan's output:\n{}", c.screen());
    };
    assert!(out.ok, "{:?}", out.lines);
    assert!(
        out.lines
            .iter()
            .any(|l| l.contains("dry run: nothing written")),
        "{:?}",
        out.lines
    );
    let notice = c.app.state.notice.clone().expect("notice");
    assert!(
        notice.text.starts_with("dry run: ") && !notice.is_error(),
        "{}",
        notice.text
    );
}

/// `:pause` asks first and says what will happen; once confirmed, the
/// pauses in force are shown, and the overview shows the new one. `:resume`
/// lifts it; `:import` reads a file as `touchpoint import` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_and_import_through_the_command_line() {
    let (d, files) = daemon(Role::Operator, Setup::Paused).await;
    all_queued(&d).await;
    let mut c = Harness::attach(&d.socket, 80, 24, false)
        .await
        .expect("attach");
    let scope = PauseScope {
        tenant: Some(tid(TENANT)),
        service: Some("service_due".into()),
    };
    run_command(
        &mut c,
        &format!("pause --tenant {TENANT} --service service_due"),
    )
    .await;
    let Some(Overlay::Confirm(confirm)) = &c.app.state.overlay else {
        panic!("a confirmation first:\n{}", c.screen());
    };
    assert_eq!(confirm.title, format!("Pause {scope}"));
    snapshot("command_pause_confirm_80x24", &c.screen());
    assert!(!pauses(&d).await.contains(&scope), "nothing before y");
    c.press(key('y')).await.expect("y");
    assert!(pauses(&d).await.contains(&scope));
    let notice = c.app.state.notice.clone().expect("notice");
    assert_eq!(
        (notice.text.as_str(), notice.is_error()),
        (format!("paused {scope}; 2 pauses in force").as_str(), false)
    );
    let Some(Overlay::Output(out)) = &c.app.state.overlay else {
        panic!("the pauses in force:\n{}", c.screen());
    };
    assert!(
        out.lines.iter().any(|l| l.contains("service_due")),
        "{:?}",
        out.lines
    );
    snapshot_redacting("command_pause_done_80x24", &c.screen(), &SECONDS);
    c.press(code(KeyCode::Esc)).await.expect("close");
    assert_eq!(c.app.state.view, View::Overview);
    let screen = c.screen();
    let alert = format!("Service service_due of tenant {TENANT} paused by");
    assert!(
        screen.contains(&alert),
        "the overview's alerts show the pause:\n{screen}"
    );

    // Resume it: asked first, then gone from the daemon and the overview.
    run_command(
        &mut c,
        &format!("resume --tenant {TENANT} --service service_due"),
    )
    .await;
    assert!(matches!(c.app.state.overlay, Some(Overlay::Confirm(_))));
    c.press(key('y')).await.expect("y");
    assert!(!pauses(&d).await.contains(&scope));
    c.press(code(KeyCode::Esc)).await.expect("close");
    assert!(!c.screen().contains(&alert), "{}", c.screen());

    // An import of a workshop export whose name has a blank, quoted.
    let day = german(Date::today());
    let path = files.path().join("werkstatt heute.csv");
    std::fs::write(
        &path,
        format!(
            "FIN;Kundennummer;Auftragsdatum;Auftragsart;Rechnungsbetrag\n\
             WNWZZZ3CZNB100001;K-1;{day};Inspektion;412,00\n"
        ),
    )
    .expect("visits");
    let line = format!("import --tenant {TENANT} '{}'", path.display());
    run_command(&mut c, &line).await;
    let Some(Overlay::Confirm(confirm)) = &c.app.state.overlay else {
        panic!("a confirmation first:\n{}", c.screen());
    };
    assert_eq!(confirm.title, format!("Import to {TENANT}"));
    assert!(
        confirm
            .lines
            .iter()
            .any(|l| l.contains("werkstatt heute.csv")),
        "{:?}",
        confirm.lines
    );
    c.press(key('y')).await.expect("y");
    let notice = c.app.state.notice.clone().expect("notice");
    assert!(
        !notice.is_error() && notice.text.contains("committed as import #"),
        "{}",
        notice.text
    );
    let imports = d
        .client()
        .await
        .imports(&tid(TENANT), 10)
        .await
        .expect("imports");
    assert!(
        imports
            .iter()
            .any(|r| r.file_name.contains("werkstatt heute.csv")),
        "{imports:#?}"
    );
    c.press(code(KeyCode::Esc)).await.expect("close");

    // A file that is not there: said, nothing else changes.
    run_command(&mut c, &format!("import --tenant {TENANT} nirgends.csv")).await;
    c.press(key('y')).await.expect("y");
    let notice = c.app.state.notice.clone().expect("notice");
    assert!(
        notice.is_error() && notice.text.contains("nirgends.csv: failed: cannot read"),
        "{}",
        notice.text
    );
}

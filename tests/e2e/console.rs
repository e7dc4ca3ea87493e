//! The operator console against a real daemon: every view at 80×24 and
//! 160×48 as insta snapshots (times, dates, the user and sizes on disk
//! redacted), and the key-driven flows (filter, mark, hold, approve)
//! asserted on the console's state and on the daemon.
//!
//! The console runs without a terminal through `touchpoint::tui::harness`:
//! the same state, keymap and requests as the interactive console, each
//! key's requests answered before the next key.
//!
//! `INSTA_UPDATE=always cargo test -p touchpoint-tests console` rewrites the
//! snapshots; review their diff like code.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use touchpoint::client::Client;
use touchpoint::tui::action::View;
use touchpoint::tui::harness::Harness;
use touchpoint::tui::popup::Overlay;
use touchpoint_common::config::AccessRule;
use touchpoint_common::outbox::MessageStatus;
use touchpoint_common::protocol::{PauseScope, ProposalStatus, QueueFilter, Role, Topic};
use touchpoint_common::Date;
use touchpoint_tests::{eventually, tid, touchpoint, Options, TestDaemon};

use crate::common::{me, my_name};
use crate::today::{brand_due_at_once, dealer_file, german, plan_customers, TENANT};

pub(crate) fn rule(role: Role) -> AccessRule {
    AccessRule {
        user: None,
        uid: Some(me()),
        group: None,
        gid: None,
        role,
        tenants: vec!["*".into()],
    }
}

/// How the test daemon runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Setup {
    /// Dispatch off: planned messages stay planned, so screens are the same
    /// on every run.
    Still,
    /// Dispatch on and paused before planning: messages are rendered and
    /// queued but none is sent, and operators may act on them.
    Paused,
}

/// A daemon where this process has `role`, with six customers of
/// [`TENANT`] planned for today (an operator's daemon; a reviewer may not
/// import) and a template change waiting for approval.
pub(crate) async fn daemon(role: Role, setup: Setup) -> (TestDaemon, tempfile::TempDir) {
    let files = tempfile::tempdir().expect("tempdir");
    let d = TestDaemon::start_with(Options {
        access: vec![rule(role)],
        dealer_files: vec![dealer_file(files.path())],
        brand: Some(brand_due_at_once()),
        dispatch: (setup == Setup::Paused)
            .then(|| "[dispatch]\ntick_ms = 50\nbatch_at = \"23:59\"\n".to_string()),
        ..Options::default()
    });
    let mut c = d.client().await;
    if setup == Setup::Paused {
        c.pause(PauseScope::default()).await.expect("pause");
    }
    if role != Role::Reviewer {
        plan_customers(&mut c, files.path()).await;
    }
    let v1 = std::fs::read_to_string(
        touchpoint_tests::repo_root().join("policies/templates/service_due.toml"),
    )
    .expect("template");
    let v2 = v1.replacen("Pause verdient", "gründliche Pflege verdient", 3);
    c.propose("service_due", v2, "Freundlicher Einstieg")
        .await
        .expect("propose");
    (d, files)
}

/// What changes from run to run, and what it is shown as.
const VOLATILE: [(&str, &str); 10] = [
    (r"\b\d{2}\.\d{2}\.\d{4}\b", "DD.MM.YYYY"),
    // The overview's days: `Sun 2026-12-06`, `Mon 07`.
    (r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun)\b( \d{2}\b)?", "Ddd"),
    (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", "YYYY-MM-DD hh:mm"),
    (r"\d{4}-\d{2}-\d{2}", "YYYY-MM-DD"),
    (r"\b\d{4}-\d{2}\b", "YYYY-MM"),
    (r"version [0-9a-f]{12}\b", "version <fingerprint>"),
    (r"policy [0-9a-f]{12}\b", "policy <fingerprint>"),
    (r"\d+(\.\d)? (B|KiB|MiB)\b", "<size>"),
    (r"/tmp/\.tmp\w+", "<tmp>"),
    (r"\b\d{1,2}:\d{2}\b", "hh:mm"),
];

/// Snapshots a screen as `console_<name>.snap`, volatile parts redacted.
pub(crate) fn snapshot(name: &str, screen: &str) {
    snapshot_redacting(name, screen, &[]);
}

/// [`snapshot`], with more redactions for one screen.
pub(crate) fn snapshot_redacting(name: &str, screen: &str, more: &[(&str, &str)]) {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    for (pattern, with) in VOLATILE.iter().chain(more) {
        settings.add_filter(pattern, *with);
    }
    let user: String = my_name()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect();
    settings.add_filter(&format!(r"\b{user}\b"), "<user>");
    settings.bind(|| insta::assert_snapshot!(format!("console_{name}"), screen));
}

pub(crate) fn key(c: char) -> KeyEvent {
    let mods = if c.is_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    KeyEvent::new(KeyCode::Char(c), mods)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_at_80x24_and_160x48() {
    let (d, _files) = daemon(Role::Operator, Setup::Still).await;
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        let mut c = Harness::attach(&d.socket, w, h, false)
            .await
            .expect("attach");
        for (n, view) in View::ALL.iter().enumerate() {
            c.press(key(char::from(b'1' + n as u8)))
                .await
                .expect("view");
            assert_eq!(c.app.state.view, *view);
            let screen = c.screen();
            snapshot(&format!("{}_{w}x{h}", view.title().to_lowercase()), &screen);
        }
        // The proposal rendered for a customer of the busiest tenant.
        c.press(key('3')).await.expect("approvals");
        c.press(key('p')).await.expect("preview");
        let screen = c.screen();
        assert!(screen.contains("gründliche Pflege"), "{screen}");
        snapshot(&format!("approvals_preview_{w}x{h}"), &screen);
        // The queue's detail of the first message, as a narrow screen opens it.
        c.press(key('2')).await.expect("queue");
        c.press(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE))
            .await
            .expect("detail");
        let screen = c.screen();
        snapshot(&format!("queue_detail_{w}x{h}"), &screen);
    }
}

/// The queue at 80, 120 and 160 columns, sorted by cost (`s` cycles: time,
/// tenant, status, cost); at 160 the detail pane hidden (`d`) gives the
/// list the time, cost and address columns. A refused filter shows in the
/// pane; `Enter` on a tenant opens its queue alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_sorts_and_widens_and_shows_a_refused_filter_in_its_pane() {
    let (d, _files) = daemon(Role::Operator, Setup::Still).await;
    for (w, h) in [(80u16, 24u16), (120, 30), (160, 48)] {
        let mut c = Harness::attach(&d.socket, w, h, false)
            .await
            .expect("attach");
        c.press(key('2')).await.expect("queue");
        for _ in 0..3 {
            c.press(key('s')).await.expect("sort");
        }
        assert_eq!(c.app.state.queue.filter.to_string(), "sort:cost");
        let screen = c.screen();
        assert!(screen.contains("by cost ↓"), "{screen}");
        snapshot(&format!("queue_by_cost_{w}x{h}"), &screen);
        if w >= 160 {
            c.press(key('d')).await.expect("detail pane off");
            let screen = c.screen();
            assert!(screen.contains("Cost") && screen.contains("At"), "{screen}");
            snapshot(&format!("queue_list_only_{w}x{h}"), &screen);
        }
    }

    let mut c = Harness::attach(&d.socket, 80, 24, false)
        .await
        .expect("attach");
    c.press(key('2')).await.expect("queue");
    c.press(key('/')).await.expect("filter");
    c.type_text("tenant:d999").await.expect("type");
    c.press(code(KeyCode::Enter)).await.expect("enter");
    let screen = c.screen();
    assert!(screen.contains("Messages (refused)"), "{screen}");
    assert!(screen.contains("no tenant `d999`"), "{screen}");
    assert!(!screen.contains("loading"), "{screen}");
    assert!(
        c.app.state.queue.page.is_none(),
        "no old rows as its answer"
    );

    // Enter on a tenant: that tenant's queue, nothing of the filter before.
    c.press(key('/')).await.expect("filter");
    c.press(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL))
        .await
        .expect("clear");
    c.type_text("status:held wolf").await.expect("type");
    c.press(code(KeyCode::Enter)).await.expect("enter");
    c.press(key('4')).await.expect("tenants");
    c.press(code(KeyCode::Enter))
        .await
        .expect("open the tenant's queue");
    assert_eq!(c.app.state.view, View::Queue);
    assert_eq!(
        c.app.state.queue.filter.to_string(),
        format!("tenant:{TENANT}")
    );
    assert!(c.app.state.queue.total() > 0);
}

pub(crate) fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

async fn status_of(c: &mut Client, id: u64) -> MessageStatus {
    c.message(&tid(TENANT), id).await.expect("message").status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_mark_and_hold_reach_the_daemon_and_changes_come_back_live() {
    let (d, _files) = daemon(Role::Operator, Setup::Paused).await;
    let mut c = Harness::attach(&d.socket, 80, 24, false)
        .await
        .expect("attach");
    c.press(key('2')).await.expect("queue");
    assert_eq!(c.app.state.queue.total(), 6);

    // A filter typed into the / line, parsed by the console, applied by the daemon.
    c.press(key('/')).await.expect("filter");
    assert!(matches!(c.app.state.overlay, Some(Overlay::Input(_))));
    c.type_text("channel:email k-3").await.expect("type");
    c.press(code(KeyCode::Enter)).await.expect("apply");
    assert_eq!(
        c.app.state.queue.filter,
        QueueFilter::parse("channel:email k-3").expect("filter")
    );
    assert_eq!(c.app.state.queue.total(), 1);
    let row = c.app.state.queue.selected_row().cloned().expect("a row");
    assert_eq!(row.recipient, "K-3");
    assert!(c.screen().contains("channel:email k-3"));
    // Esc clears it.
    c.press(code(KeyCode::Esc)).await.expect("clear");
    assert_eq!(c.app.state.queue.total(), 6);

    // Mark two, hold them through the confirmation.
    c.press(key(' ')).await.expect("mark");
    c.press(key(' ')).await.expect("mark");
    let marked: Vec<u64> = c.app.state.queue.marks.iter().map(|(_, id)| *id).collect();
    assert_eq!(marked.len(), 2);
    c.press(key('H')).await.expect("hold");
    let Some(Overlay::Confirm(confirm)) = &c.app.state.overlay else {
        panic!("hold asks first:\n{}", c.screen());
    };
    assert_eq!(confirm.title, "Hold 2 messages");
    assert!(c.screen().contains("Hold 2 messages"));
    c.press(key('y')).await.expect("confirm");
    let notice = c.app.state.notice.clone().expect("a notice");
    assert_eq!(
        (notice.text.as_str(), notice.is_error()),
        ("held 2 messages", false)
    );
    let mut client = d.client().await;
    for id in &marked {
        assert_eq!(status_of(&mut client, *id).await, MessageStatus::Held);
    }
    assert!(c.app.state.queue.marks.is_empty());
    let counts = c.app.state.queue.page.as_ref().map(|p| p.counts.clone());
    assert!(
        counts.is_some_and(|k| k.contains(&(MessageStatus::Held, 2))),
        "{}",
        c.screen()
    );

    // Another operator releases one; the change feed says so and the
    // console reads the queue again.
    let mut feed = Client::connect(&d.socket)
        .await
        .expect("connect")
        .subscribe()
        .await
        .expect("subscribe");
    client
        .message_action(
            &tid(TENANT),
            &marked[..1],
            touchpoint_common::protocol::MessageAction::Release,
        )
        .await
        .expect("release");
    let changes = tokio::time::timeout(std::time::Duration::from_secs(10), feed.next())
        .await
        .expect("a change within 10 s")
        .expect("feed");
    assert!(changes.tenants.contains(&tid(TENANT)), "{changes:?}");
    c.changed(changes).await.expect("apply the change");
    let counts = c.app.state.queue.page.as_ref().map(|p| p.counts.clone());
    assert!(
        counts.is_some_and(|k| k.contains(&(MessageStatus::Held, 1))),
        "{}",
        c.screen()
    );

    // The operator is not offered approvals.
    c.press(key('3')).await.expect("approvals");
    c.press(key('a')).await.expect("a");
    assert_eq!(c.app.state.overlay, None);
    assert!(c.screen().contains("may not"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_approves_in_the_console_and_the_daemon_refuses_their_own() {
    let (d, _files) = daemon(Role::Reviewer, Setup::Still).await;
    // A dealer's slot change is a proposal without an author: any reviewer decides.
    let dealer = d.policy_dir.join("dealers").join(format!("{TENANT}.toml"));
    let text = std::fs::read_to_string(&dealer).expect("dealer file");
    std::fs::write(
        &dealer,
        text.replacen("Ihr Serviceteam", "Ihr Werkstattteam", 1),
    )
    .expect("edit");
    let mut client = d.client().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let slots = loop {
        let list = client.proposals(false).await.expect("proposals");
        if let Some(p) = list.iter().find(|p| p.template.starts_with("slots/")) {
            break p.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no slots proposal: {list:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };

    let mut c = Harness::attach(&d.socket, 160, 48, false)
        .await
        .expect("attach");
    c.press(key('3')).await.expect("approvals");
    assert_eq!(c.app.state.approvals.list.len(), 2, "{}", c.screen());
    // Walk to the slots proposal; its diff shows the change.
    while c
        .app
        .state
        .approvals
        .selected_proposal()
        .is_some_and(|p| p.id != slots.id)
    {
        c.press(key('j')).await.expect("down");
    }
    assert!(c.screen().contains("Werkstattteam"), "{}", c.screen());
    c.press(key('a')).await.expect("approve");
    c.type_text("passt").await.expect("comment");
    c.press(code(KeyCode::Enter)).await.expect("comment done");
    assert!(matches!(c.app.state.overlay, Some(Overlay::Confirm(_))));
    c.press(key('y')).await.expect("confirm");
    let notice = c.app.state.notice.clone().expect("notice");
    assert!(!notice.is_error(), "{}", notice.text);
    let decided = client.proposal(slots.id).await.expect("proposal");
    match decided.proposal.status {
        ProposalStatus::Approved { by, comment, .. } => {
            assert_eq!((by, comment.as_str()), (my_name(), "passt"));
        }
        other => panic!("not approved: {other:?}"),
    }
    // The list now holds only the reviewer's own proposal; approving it is
    // refused by the daemon, and the console shows why.
    assert_eq!(c.app.state.approvals.list.len(), 1);
    c.press(key('a')).await.expect("approve");
    c.press(code(KeyCode::Enter)).await.expect("no comment");
    c.press(key('y')).await.expect("confirm");
    let notice = c.app.state.notice.clone().expect("notice");
    assert!(
        notice.is_error() && notice.text.contains("four eyes"),
        "{}",
        notice.text
    );
    assert!(c.screen().contains("four eyes"));
}

/// The tab line of a screen.
fn tabs(c: &mut Harness) -> String {
    c.screen().lines().next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_approvals_badge_follows_the_change_feed_after_the_last_decision() {
    let (d, _files) = daemon(Role::Reviewer, Setup::Still).await;
    // The daemon's own feed, as the interactive console subscribes to it.
    let mut feed = d.client().await.subscribe().await.expect("subscribe");
    let mut c = Harness::attach(&d.socket, 160, 48, false)
        .await
        .expect("attach");
    assert!(tabs(&mut c).contains("3 Approvals (1)"), "{}", c.screen());
    c.press(key('3')).await.expect("approvals");
    assert_eq!(c.app.state.approvals.list.len(), 1, "{}", c.screen());
    // The author withdraws their own proposal: the last pending one.
    c.press(key('x')).await.expect("reject");
    c.type_text("doch nicht").await.expect("reason");
    c.press(code(KeyCode::Enter)).await.expect("reason done");
    c.press(key('y')).await.expect("confirm");
    let notice = c.app.state.notice.clone().expect("notice");
    assert!(!notice.is_error(), "{}", notice.text);
    let changes = loop {
        let ch = tokio::time::timeout(std::time::Duration::from_secs(30), feed.next())
            .await
            .expect("the feed speaks")
            .expect("change feed");
        if ch.topics.contains(&Topic::Approvals) {
            break ch;
        }
    };
    c.changed(changes).await.expect("changed");
    assert_eq!(c.app.state.view, View::Approvals);
    let line = tabs(&mut c);
    assert!(
        line.contains("3 Approvals") && !line.contains("Approvals ("),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_starts_with_no_actions() {
    let (d, _files) = daemon(Role::Operator, Setup::Still).await;
    let mut c = Harness::attach(&d.socket, 160, 48, true)
        .await
        .expect("attach");
    c.press(key('2')).await.expect("queue");
    let screen = c.screen();
    assert!(screen.contains("read-only"), "{screen}");
    assert!(!screen.contains(" hold "), "{screen}");
    c.press(key('H')).await.expect("H");
    assert_eq!(c.app.state.overlay, None);
    let mut client = d.client().await;
    let page = client
        .queue(&QueueFilter::default(), 0, 10)
        .await
        .expect("queue");
    assert!(page.rows.iter().all(|r| r.status == MessageStatus::Planned));

    // The same through the scriptable subcommands.
    let out = touchpoint_tests::touchpoint(&d.socket, &["queue", "channel:email", "k-3"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("K-3") && text.contains("rows 1-1 of 1 matching `channel:email k-3`"),
        "{text}"
    );
    let out = touchpoint_tests::touchpoint(&d.socket, &["queue", "status:lost"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no status `lost`"), "{err}");
    let out = touchpoint_tests::touchpoint(&d.socket, &["overview"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("planned 6"), "{text}");
}

/// Results from a real daemon: the six customers' emails sent to the
/// spool, then a workshop export in which two of them come in. The view
/// shows the sent messages, then, from the change feed alone, the two
/// responses; snapshots at both sizes (the weekday and the hour the
/// messages went out are the test's, so redacted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_results_view_shows_what_was_sent_and_responses_as_they_arrive() {
    let files = tempfile::tempdir().expect("tempdir");
    let spool = files.path().join("out");
    let d = TestDaemon::start_with(Options {
        access: vec![rule(Role::Operator)],
        dealer_files: vec![dealer_file(files.path())],
        brand: Some(brand_due_at_once()),
        dispatch: Some(format!(
            "[dispatch]\ntick_ms = 50\nbatch_at = \"23:59\"\nspool_dir = {:?}\nletters_dir = {:?}\ncalls_dir = {:?}\n",
            spool.join("mail").display().to_string(),
            spool.join("letters").display().to_string(),
            spool.join("calls").display().to_string(),
        )),
        ..Options::default()
    });
    let mut c = d.client().await;
    plan_customers(&mut c, files.path()).await;
    let socket = d.socket.clone();
    let all_sent = eventually(std::time::Duration::from_secs(60), || {
        let filter = format!("tenant:{TENANT} status:sent");
        let out = touchpoint(&socket, &["queue", &filter, "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["total"].as_u64() == Some(6)
    });
    assert!(all_sent, "dispatch did not send the six emails");

    let mut h = Harness::attach(&d.socket, 80, 24, false)
        .await
        .expect("attach");
    h.press(key('6')).await.expect("results");
    let screen = h.screen();
    let row = |screen: &str, label: &str| {
        screen
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_default()
            .to_string()
    };
    let sent = row(&screen, "service_due");
    assert!(
        sent.contains(" 6 ") && sent.contains("0.0%") && sent.contains("no control group"),
        "{screen}"
    );

    // K-1 and K-2 come to the workshop five days later.
    let mut feed = d.client().await.subscribe().await.expect("subscribe");
    let day = german(Date::today().add_days(5));
    let mut visits = String::from("FIN;Kundennummer;Auftragsdatum;Auftragsart;Rechnungsbetrag\n");
    for n in 1..=2 {
        visits.push_str(&format!(
            "WNWZZZ3CZNB10000{n};K-{n};{day};Inspektion;412,00\n"
        ));
    }
    let path = files.path().join("werkstatt.csv");
    std::fs::write(&path, visits).expect("visits");
    // A new connection: the first one may have idled out while dispatch sent.
    let r = d
        .client()
        .await
        .upload(&tid(TENANT), &path)
        .await
        .expect("upload visits");
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    // What the feed says changed is all the view is told.
    let mut screen = h.screen();
    for _ in 0..20 {
        if row(&screen, "service_due").contains("33.3%") {
            break;
        }
        let changes = tokio::time::timeout(std::time::Duration::from_secs(30), feed.next())
            .await
            .expect("the feed told nothing of the credited responses")
            .expect("change feed");
        h.changed(changes).await.expect("changed");
        screen = h.screen();
    }
    assert!(row(&screen, "service_due").contains("33.3%"), "{screen}");
    // 2 of 6 sent responded; the lead-time chart says so too.
    assert!(screen.contains("2/6"), "{screen}");
    let redact = [(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun)\b", "<day>")];
    snapshot_redacting("results_sent_80x24", &screen, &redact);
    h.resize(160, 48);
    h.settle().await.expect("settle");
    let screen = h.screen();
    for chart in ["by lead time", "by weekday sent", "by hour sent"] {
        assert!(screen.contains(chart), "{chart}: {screen}");
    }
    // The sends may straddle an hour (or midnight): the charts' rows are
    // the clock's, not the product's, so the snapshot keeps their titles
    // and the charts are checked by what they must hold.
    let mut lines: Vec<String> = screen.lines().map(str::to_string).collect();
    if let Some(at) = lines.iter().position(|l| l.contains("by lead time")) {
        let rows: Vec<String> = lines
            .drain(at + 1..)
            .take_while(|l| !l.trim().is_empty())
            .collect();
        assert!(!rows.is_empty(), "{screen}");
        let rest: Vec<String> = screen
            .lines()
            .skip(at + 1 + rows.len())
            .map(str::to_string)
            .collect();
        lines.push("<the charts' rows: when the test ran>".to_string());
        lines.extend(rest);
    }
    let screen = lines.join("\n");
    snapshot_redacting("results_sent_160x48", &screen, &redact);
}

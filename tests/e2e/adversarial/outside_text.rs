//! Text from outside that the daemon keeps or repeats: a delivery report
//! any recipient of our email can send to its own return path, and a call
//! centre's file. What of it reaches a stored message, an answer or the
//! audit log is one short clean line, and no record it reaches becomes
//! unreadable: the dealer's queue, the message and the overview stay
//! readable, through the socket and the `touchpoint` binary.

use std::time::{Duration, Instant};

use touchpoint_common::outbox::{Message, MessageStatus};
use touchpoint_common::protocol::AuditOutcome;
use touchpoint_tests::{Options, TestDaemon};

use crate::dispatch::{day, dispatch_fixture, hard_bounce, mails_read, only, Rig};

/// Every text of a stored message is short and has no control character.
fn short_and_clean(m: &Message) {
    let texts = m
        .history
        .iter()
        .map(|h| h.2.as_str())
        .chain(m.why.iter().map(|w| w.text.as_str()))
        .chain([m.dispatch.last_error.as_str()]);
    for t in texts {
        assert!(t.len() <= 4_096, "{} bytes: {t:.200}", t.len());
        assert!(!t.contains(char::is_control), "{t:.200?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_cannot_make_its_dealers_outbox_unreadable_with_a_delivery_report() {
    let rig = Rig::start(&["s001"]);
    rig.import("s001", &dispatch_fixture("kunden-bounces.csv"))
        .await;
    let planned = rig.plan("s001", day(2026, 11, 2)).await;
    let got = rig.wait_sink("all four", |g| g.len() >= 4).await;
    let id = planned["K-201"].id;
    rig.wait_message("s001", id, "sent", |m| m.status == MessageStatus::Sent)
        .await;
    let max = "max.sommer@example.de";
    let to_max = only(&got, max);
    let message_id = to_max
        .parsed()
        .and_then(|p| p.message_id().map(str::to_string))
        .expect("Message-ID");
    let report = String::from_utf8(hard_bounce(&to_max.from, max, &message_id))
        .expect("text")
        .replace(
            "User unknown",
            &format!("User unknown \u{1b}[2J{}", "x".repeat(3 << 20)),
        );
    let before = mails_read(&rig.status().await);
    rig.maildir.deliver(report.as_bytes()).expect("deliver");
    let s = rig
        .wait_status("the report read", |s| mails_read(s) > before)
        .await;
    assert_eq!(s.bounces_processed, 1);

    let m = rig.message("s001", id).await;
    assert_eq!(m.status, MessageStatus::Failed, "{:.500?}", m.history);
    assert!(
        m.dispatch
            .last_error
            .starts_with("hard bounce 5.1.1: 550 5.1.1 <max.sommer@example.de>:"),
        "{:.200}",
        m.dispatch.last_error
    );
    short_and_clean(&m);
    let out = touchpoint_tests::touchpoint(&rig.d.socket, &["queue", "k-201"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.len() < 8_192, "{} bytes listed", listed.len());
    let mut c = rig.client().await;
    c.overview(None).await.expect("the overview");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_centre_file_is_quoted_short_in_the_answer_and_the_audit_log() {
    let d = TestDaemon::start_with(Options {
        dispatch: Some("[dispatch]\ntick_ms = 50\nbatch_at = \"23:59\"\n".into()),
        ..Options::default()
    });
    let mut c = d.client().await;
    // The socket answers before the dispatcher is set up.
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.dispatch_status().await.is_err() {
        assert!(Instant::now() < deadline, "dispatch did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let bogus = format!("\u{1b}[2J{}", "X".repeat(2 << 20));
    let file = format!(
        "task_id;outcome;minutes;note\n\
         d001.1;{bogus};;\n\
         d001.2;erreicht;{bogus};\n\
         {bogus};erreicht;;\n"
    );
    let report = c
        .call_outcomes("ergebnisse.csv".into(), file.into_bytes())
        .await
        .expect("an answer that fits a frame");
    assert_eq!(report.applied, 0);
    assert_eq!(report.errors.len(), 3, "{:.600?}", report.errors);
    for e in &report.errors {
        assert!(e.len() <= 4_096, "{} bytes: {e:.200}", e.len());
        assert!(!e.contains(char::is_control), "{e:.200?}");
    }
    assert!(
        report.errors[0].starts_with("ergebnisse.csv:2: outcome: \"?[2JXXX"),
        "{:.200}",
        report.errors[0]
    );
    let audit = c
        .audit(None, 10, "call-outcomes")
        .await
        .expect("the audit log");
    let line = audit
        .iter()
        .find(|e| e.action == "call-outcomes")
        .expect("the request's audit line");
    assert!(
        matches!(&line.outcome, AuditOutcome::Failed(why) if why.len() <= 4_096),
        "{:.300?}",
        line.outcome
    );
    assert!(line.detail.len() <= 4_096);
}

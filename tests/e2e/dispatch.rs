//! Dispatch end to end: the planning fixture imported into a real daemon,
//! planned for a day in the past so its messages are due, and sent through
//! a real SMTP server in this process; letters into a real PDF batch.

use std::path::PathBuf;
use std::time::Duration;

use touchpoint::client::PlanArgs;
use touchpoint_common::outbox::MessageStatus;
use touchpoint_common::protocol::{Request, Response};
use touchpoint_common::Date;
use touchpoint_tests::smtp::SmtpSink;
use touchpoint_tests::{fixture, tid, Options, TestDaemon};

fn plan_fixture(name: &str) -> PathBuf {
    fixture(&format!("plan/{name}"))
}

/// A daemon sending through `sink`, looking for work every 50 ms, with the
/// day's batches closing at midnight (so at once).
pub fn daemon_with_relay(sink: &SmtpSink) -> TestDaemon {
    TestDaemon::start_with(Options {
        dealer_files: vec![plan_fixture("p001.toml")],
        dispatch: Some(format!(
            "[dispatch]\ntick_ms = 50\nbatch_at = \"00:00\"\n\n[dispatch.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nconnections = 2\ntimeout_secs = 5\n",
            sink.addr().port()
        )),
        ..Options::default()
    })
}

async fn import_and_plan(d: &TestDaemon, day: Date) -> u64 {
    let mut c = d.client().await;
    for f in ["kunden.csv", "besuche.csv"] {
        let r = c.upload(&tid("p001"), &plan_fixture(f)).await.expect(f);
        assert!(r.errors.is_empty(), "{f}: {:#?}", r.errors);
    }
    let r = c
        .plan(PlanArgs {
            tenant: Some(tid("p001")),
            day: Some(day),
            dry_run: false,
            policies: None,
            show: 500,
        })
        .await
        .expect("plan");
    r.reports.iter().map(|r| r.planned_count).sum()
}

async fn message(d: &TestDaemon, id: u64) -> touchpoint_common::outbox::Message {
    let mut c = d.client().await;
    match c
        .request(Request::Message {
            tenant: tid("p001"),
            id,
        })
        .await
        .expect("message")
    {
        Response::Message(m) => *m,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_email_goes_to_the_relay_with_the_headers_bulk_senders_need() {
    let sink = SmtpSink::new();
    let d = daemon_with_relay(&sink);
    let planned = import_and_plan(&d, Date::from_ymd(2026, 11, 16).expect("day")).await;
    assert!(planned > 0, "the fixture plans messages");
    assert!(
        sink.wait_for(1, Duration::from_secs(20)).await,
        "no email reached the relay"
    );
    let mut c = d.client().await;
    let status = match c.request(Request::DispatchStatus).await.expect("status") {
        Response::Dispatch(s) => s,
        other => panic!("{other:?}"),
    };
    assert!(status.transport.contains("smtp relay 127.0.0.1"), "{}", status.transport);
    let got = sink.messages();
    let first = &got[0];
    let parsed = first.parsed().expect("parses");
    let mid = parsed.message_id().expect("Message-ID").to_string();
    assert!(mid.starts_with("tp.p001."), "{mid}");
    assert!(first.from.starts_with("bounce+p001."), "VERP return path: {}", first.from);
    let raw = String::from_utf8_lossy(&first.data).to_string();
    assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{raw}");
    assert!(raw.contains("List-Unsubscribe: <mailto:unsubscribe+p001."), "{raw}");
    assert!(parsed.body_html(0).is_some() && parsed.body_text(0).is_some());
    // The message records where it went and what it cost.
    let id: u64 = mid
        .trim_start_matches("tp.p001.")
        .split('@')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("id in Message-ID");
    let ok = {
        let mut sent = false;
        for _ in 0..100 {
            let m = message(&d, id).await;
            if m.status == MessageStatus::Sent {
                assert!(m.dispatch.booked > 0, "{:?}", m.dispatch);
                assert!(m.history.iter().any(|h| h.1 == MessageStatus::Sending));
                sent = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sent
    };
    assert!(ok, "message {id} never recorded as sent");
    // No email twice.
    let mut ids: Vec<String> = sink
        .messages()
        .iter()
        .filter_map(|m| m.parsed().and_then(|p| p.message_id().map(str::to_string)))
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "an email was sent twice");
}

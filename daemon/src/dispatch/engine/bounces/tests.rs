#![allow(clippy::unwrap_used)]

use touchpoint_common::domain::Channel;
use touchpoint_common::outbox::month_of;
use touchpoint_common::protocol::Scope;

use super::*;
use crate::dispatch::engine::fixture::*;
use crate::dispatch::engine::*;
use crate::dispatch::verp;

/// A DSN from the recipient's server to the message's VERP return path.
fn hard_bounce(to: &str, rcpt: &str) -> String {
    format!(
        "Return-Path: <>\r\n\
         Delivered-To: {to}\r\n\
         From: MAILER-DAEMON@mx1.example.org (Mail Delivery System)\r\n\
         To: {to}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\
         Message-Id: <dsn-1@mx1.example.org>\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n\
         Your message could not be delivered.\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; mx1.example.org\r\n\
         \r\n\
         Final-Recipient: rfc822; {rcpt}\r\n\
         Action: failed\r\n\
         Status: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: User unknown\r\n\
         \r\n\
         --b1--\r\n"
    )
}

#[test]
fn a_hard_bounce_after_sending_marks_the_address_and_sends_a_letter_once() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1"]);
    let store = fx.store("d001");
    let email = fx.queued(
        "d001",
        &draft(
            &store,
            "K1",
            Channel::Email,
            "service_due",
            Some(VIN_A),
            today(),
        ),
    );
    let jobs = fx.claim("d001", now(), 8);
    fx.d.record_and_flush(vec![outcome(
        &jobs[0],
        Delivery::Accepted {
            response: "250 ok".into(),
        },
    )]);
    let domain = fx.p().brand.email.bounce_domain.clone();
    let to = verp::bounce_address(&tid("d001"), email.id, &domain, &fx.d.secret);
    let maildir = bounce::Maildir::open(&fx.path("bounces")).unwrap();
    let raw = hard_bounce(&to, "k1@example.org");
    maildir.deliver(raw.as_bytes()).unwrap();

    fx.d.read_bounce_maildir(&fx.p()).unwrap();
    assert!(maildir.pending().unwrap().is_empty(), "moved to cur/");
    let reason = store.bad_address("k1@example.org").unwrap().unwrap();
    assert!(reason.starts_with("hard bounce 5.1.1: "), "{reason}");
    let m = fx.message("d001", email.id);
    assert_eq!(m.status, S::Fallback);
    assert_eq!(dispatch_whys(&m)[0], format!("email failed: {reason}"));
    // The email was paid for when the relay took it; that stays booked.
    assert_eq!(m.dispatch.booked, 2);
    let letter = m.dispatch.fallback_to.unwrap();
    assert_eq!(fx.message("d001", letter).status, S::Queued);
    let e = fx.ledger("d001", month_of(today()), "service_due");
    assert_eq!((e.reserved, e.booked), (95, 2));
    assert_eq!(
        fx.d.status(&Scope::All, &[tid("d001")]).bounces_processed,
        1
    );

    // The same report again changes nothing.
    let count = store.message_count();
    maildir.deliver(raw.as_bytes()).unwrap();
    fx.d.read_bounce_maildir(&fx.p()).unwrap();
    assert_eq!(store.message_count(), count);
    assert_eq!(fx.message("d001", email.id).status, S::Fallback);
    assert_eq!(fx.ledger("d001", month_of(today()), "service_due"), e);
}

#[test]
fn an_unsubscribe_mail_withdraws_email_consent_and_the_next_email_is_cancelled() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1"]);
    let store = fx.store("d001");
    let sent = fx.queued(
        "d001",
        &draft(
            &store,
            "K1",
            Channel::Email,
            "service_due",
            Some(VIN_A),
            today(),
        ),
    );
    let jobs = fx.claim("d001", now(), 8);
    fx.d.record_and_flush(vec![outcome(
        &jobs[0],
        Delivery::Accepted {
            response: "250 ok".into(),
        },
    )]);
    let next = fx.queued(
        "d001",
        &draft(
            &store,
            "K1",
            Channel::Email,
            "hu_reminder",
            Some(VIN_A),
            today(),
        ),
    );
    let domain = fx.p().brand.email.bounce_domain.clone();
    let to = verp::unsubscribe_address(&tid("d001"), sent.id, &domain, &fx.d.secret);
    let maildir = bounce::Maildir::open(&fx.path("bounces")).unwrap();
    let file = maildir
        .deliver(
            format!(
                "Delivered-To: {to}\r\nFrom: Anna Berg <k1@example.org>\r\nTo: <{to}>\r\n\
                 Subject: unsubscribe\r\nMessage-ID: <u1@example.org>\r\n\r\nBitte keine Mails mehr.\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    fx.d.read_bounce_maildir(&fx.p()).unwrap();

    let consent = store.consent("K1", Channel::Email).unwrap().unwrap();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(!consent.granted);
    assert_eq!(consent.source, format!("unsubscribe mail ({name})"));
    let m = fx.message("d001", sent.id);
    assert_eq!(
        last_history(&m),
        (S::Sent, "recipient unsubscribed from email")
    );
    assert!(fx.claim("d001", now(), 8).is_empty());
    let m = fx.message("d001", next.id);
    assert_eq!(m.status, S::Cancelled);
    assert!(
        last_history(&m).1.starts_with("email: consent withdrawn "),
        "{:?}",
        m.history
    );
}

/// Any recipient of our email knows its own return path and can send a
/// delivery report to it with a diagnostic of megabytes, control
/// characters and all. What of it is stored (the bad address's reason, the
/// message's why, history and last error) is cut short and made one clean
/// line, so the message, the queue and the tenant's outbox index stay
/// readable, also after the store is opened again.
#[test]
fn a_huge_bounce_diagnostic_is_stored_cut_short_and_the_outbox_stays_readable() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1"]);
    let store = fx.store("d001");
    let email = fx.queued(
        "d001",
        &draft(
            &store,
            "K1",
            Channel::Email,
            "service_due",
            Some(VIN_A),
            today(),
        ),
    );
    let jobs = fx.claim("d001", now(), 8);
    fx.d.record_and_flush(vec![outcome(
        &jobs[0],
        Delivery::Accepted {
            response: "250 ok".into(),
        },
    )]);
    let domain = fx.p().brand.email.bounce_domain.clone();
    let to = verp::bounce_address(&tid("d001"), email.id, &domain, &fx.d.secret);
    let maildir = bounce::Maildir::open(&fx.path("bounces")).unwrap();
    let huge = "x".repeat(3 << 20);
    let raw = hard_bounce(&to, "k1@example.org")
        .replace("User unknown", &format!("User \u{1b}[2J unknown {huge}"));
    maildir.deliver(raw.as_bytes()).unwrap();

    fx.d.read_bounce_maildir(&fx.p()).unwrap();
    let reason = store.bad_address("k1@example.org").unwrap().unwrap();
    assert!(
        reason.starts_with("hard bounce 5.1.1: 550 5.1.1 <k1@example.org>: User ?[2J unknown xxx"),
        "{:.200}",
        reason
    );
    assert!(reason.len() <= 4_096, "{} bytes", reason.len());
    let m = store
        .message(email.id)
        .expect("the message decodes")
        .unwrap();
    assert_eq!(m.status, S::Fallback);
    let texts = m
        .history
        .iter()
        .map(|h| h.2.as_str())
        .chain(m.why.iter().map(|w| w.text.as_str()))
        .chain([m.dispatch.last_error.as_str()]);
    for t in texts {
        assert!(t.len() <= 4_096, "{} bytes: {:.200}", t.len(), t);
        assert!(!t.contains('\u{1b}'), "{t:.200}");
    }
    let page = crate::queue::page(&fx.stores, &[tid("d001")], &Default::default(), 0, 50)
        .expect("the queue lists the tenant");
    assert_eq!(page.total, 2, "the email and the letter in its place");
    drop(store);
    fx.stores.close_idle(std::time::Duration::ZERO);
    assert_eq!(
        fx.store("d001").with_index(|ix| ix.len()).expect("index"),
        2
    );
}

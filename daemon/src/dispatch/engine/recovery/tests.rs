#![allow(clippy::unwrap_used)]

use touchpoint_common::domain::{Channel, Timestamp};
use touchpoint_common::outbox::month_of;
use touchpoint_common::protocol::Scope;

use super::*;
use crate::dispatch::engine::fixture::*;

/// `m` written, then moved to sending as a claim or a batch would.
fn left_sending(fx: &Fx, t: &str, m: &Message, batch: &str) -> Message {
    fx.put(t, m);
    let mut s = m.clone();
    s.dispatch.attempts = 1;
    s.dispatch.first_attempt = Some(Timestamp::now());
    s.dispatch.batch = batch.to_string();
    s.dispatch.retry_at = Some(Timestamp::now());
    s.set_status(Timestamp::now(), S::Sending, "handed over");
    fx.rewrite(t, s.clone());
    s
}

#[test]
fn recovery_requeues_email_found_sending_and_completes_letters_whose_manifest_exists() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1", "K2"]);
    let store = fx.store("d001");
    let day = today();
    let email = left_sending(
        &fx,
        "d001",
        &draft(
            &store,
            "K1",
            Channel::Email,
            "service_due",
            Some(VIN_A),
            day,
        ),
        "",
    );
    let done_batch = format!("d001-{day}-01.pdf");
    let printed = left_sending(
        &fx,
        "d001",
        &draft(&store, "K1", Channel::Post, "service_due", Some(VIN_A), day),
        &done_batch,
    );
    let lost_batch = format!("d001-{day}-02.pdf");
    let unprinted = left_sending(
        &fx,
        "d001",
        &draft(&store, "K2", Channel::Post, "service_due", Some(VIN_B), day),
        &lost_batch,
    );
    // Batch 01 was complete (its manifest, written last, is there) and says
    // 1.80 for the letter; batch 02 has only its PDF.
    let dir = fx.path("letters/d001");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(&done_batch), b"%PDF-1.7").unwrap();
    std::fs::write(
        dir.join(done_batch.replace(".pdf", ".csv")),
        format!(
            "sequence,message,recipient,name,postcode,region,pages,grams,weight_class,discount,postage_cents\n\
             1,{},K1,Anna Berg,80807,80,1,10,Großbrief,,180\n",
            printed.id
        ),
    )
    .unwrap();
    std::fs::write(dir.join(&lost_batch), b"%PDF-1.7").unwrap();
    let mut in_flight = store.in_flight().unwrap();
    in_flight.sort_unstable();
    assert_eq!(in_flight, vec![email.id, printed.id, unprinted.id]);

    let at = now();
    fx.d.requeue_interrupted(&store, &fx.p(), at).unwrap();

    let m = fx.message("d001", email.id);
    assert_eq!(m.status, S::Queued);
    assert_eq!(m.dispatch.retry_at, Some(Timestamp(at)));
    assert_eq!(
        last_history(&m),
        (
            S::Queued,
            "was being sent when the daemon stopped; sent again (the relay may have it twice)"
        )
    );
    let m = fx.message("d001", printed.id);
    assert_eq!(m.status, S::Sent);
    assert_eq!(
        last_history(&m),
        (
            S::Sent,
            format!("in letters {done_batch} (completed before the daemon stopped)").as_str()
        )
    );
    assert_eq!((m.dispatch.booked, m.dispatch.brand_share), (180, 90));
    let m = fx.message("d001", unprinted.id);
    assert_eq!(m.status, S::Queued);
    assert_eq!(m.dispatch.batch, "");
    assert_eq!(
        last_history(&m),
        (
            S::Queued,
            "letters batch was not completed when the daemon stopped; in the next batch"
        )
    );
    assert!(store.in_flight().unwrap().is_empty());
    assert_eq!(store.due(Channel::Email, at, 10).unwrap(), vec![email.id]);
    assert_eq!(
        store.due(Channel::Post, at, 10).unwrap(),
        vec![unprinted.id]
    );
    // The printed letter's 95 reserved are released and its 180 booked; the
    // other two keep their reservations. A recovered letter is no email sent.
    let e = fx.ledger("d001", month_of(day), "service_due");
    assert_eq!((e.reserved, e.booked, e.brand), (2 + 95, 180, 90));
    assert_eq!(store.sent_on(day).unwrap(), 0);
    assert_eq!(
        fx.d.status(&Scope::All, &[tid("d001")]).resent_after_crash,
        1
    );

    // Only the first look after the start recovers: a message sending now
    // is with the transport.
    let now_sending = left_sending(
        &fx,
        "d001",
        &draft(
            &store,
            "K2",
            Channel::Email,
            "hu_reminder",
            Some(VIN_B),
            day,
        ),
        "",
    );
    fx.d.requeue_interrupted(&store, &fx.p(), now()).unwrap();
    assert_eq!(fx.message("d001", now_sending.id).status, S::Sending);
    assert_eq!(
        fx.d.status(&Scope::All, &[tid("d001")]).resent_after_crash,
        1
    );
}

/// A daemon killed again while the email it resent is in flight sends it
/// once more: each crash it was in flight for may give the relay one more
/// copy. Each resend is on the message's record, saying how many copies
/// the relay may have by then.
#[test]
fn each_crash_an_email_is_in_flight_for_adds_one_resend_to_its_record() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1"]);
    let store = fx.store("d001");
    let email = left_sending(
        &fx,
        "d001",
        &draft(
            &store,
            "K1",
            Channel::Email,
            "service_due",
            Some(VIN_A),
            today(),
        ),
        "",
    );
    let resends = |m: &Message| -> Vec<String> {
        m.history
            .iter()
            .filter(|h| h.2.starts_with("was being sent when the daemon stopped"))
            .map(|h| h.2.clone())
            .collect()
    };
    // Killed three times while it is in flight: each start finds it sending.
    let mut d = None;
    for _ in 0..3 {
        let started = fx.restarted();
        started.requeue_interrupted(&store, &fx.p(), now()).unwrap();
        assert_eq!(fx.message("d001", email.id).status, S::Queued);
        let jobs = started.claim(&store, &fx.p(), LATER, 8).unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(
            started
                .status(&Scope::All, &[tid("d001")])
                .resent_after_crash,
            1
        );
        d = Some(started);
    }
    drop(d);
    let m = fx.message("d001", email.id);
    assert_eq!(m.status, S::Sending);
    assert_eq!(
        resends(&m),
        [
            "was being sent when the daemon stopped; sent again (the relay may have it twice)",
            "was being sent when the daemon stopped; sent again (resend 2: the relay may have \
             it up to 3 times)",
            "was being sent when the daemon stopped; sent again (resend 3: the relay may have \
             it up to 4 times)",
        ]
    );
}

#[test]
fn recovery_completes_a_call_list_that_was_written() {
    let fx = Fx::new();
    customers(&fx, "d003", &["K7"]);
    let store = fx.store("d003");
    let day = today();
    let list = format!("calls-d003-{day}-01.csv");
    let called = left_sending(
        &fx,
        "d003",
        &draft(
            &store,
            "K7",
            Channel::Phone,
            "quality_check",
            Some(VIN_A),
            day,
        ),
        &list,
    );
    std::fs::create_dir_all(fx.path("calls/d003")).unwrap();
    std::fs::write(fx.path("calls/d003").join(&list), b"task,customer_no\n").unwrap();
    fx.d.requeue_interrupted(&store, &fx.p(), now()).unwrap();
    let m = fx.message("d003", called.id);
    assert_eq!(m.status, S::Sent);
    assert_eq!(
        last_history(&m),
        (
            S::Sent,
            format!("in calls {list} (completed before the daemon stopped)").as_str()
        )
    );
    // No postage column: the brand's cost of a call.
    assert_eq!(m.dispatch.booked, 250);
    let e = fx.ledger("d003", month_of(day), "quality_check");
    assert_eq!((e.reserved, e.booked, e.brand), (0, 250, 0));
}

/// After a crash the tenant's letters folder is a link (a pickup account
/// swapped it): whether the batch was completed cannot be told through it,
/// so recovery neither marks the letter sent on a manifest planted there
/// nor removes a file there as an orphan; the letter waits, sending, with
/// the reason, until the folder is a folder again.
#[test]
fn recovery_reads_and_removes_nothing_through_a_tenant_folder_that_is_a_link() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1", "K2"]);
    let store = fx.store("d001");
    let day = today();
    let shown = format!("d001-{day}-01.pdf");
    let orphan = format!("d001-{day}-02.pdf");
    let claimed = left_sending(
        &fx,
        "d001",
        &draft(&store, "K1", Channel::Post, "service_due", Some(VIN_A), day),
        &shown,
    );
    let torn = left_sending(
        &fx,
        "d001",
        &draft(&store, "K2", Channel::Post, "service_due", Some(VIN_B), day),
        &orphan,
    );
    let loot = fx.path("loot");
    std::fs::create_dir_all(&loot).unwrap();
    std::fs::write(
        loot.join(shown.replace(".pdf", ".csv")),
        "sequence,message\n",
    )
    .unwrap();
    std::fs::write(loot.join(&orphan), "someone else's file").unwrap();
    std::fs::create_dir_all(fx.path("letters")).unwrap();
    std::os::unix::fs::symlink(&loot, fx.path("letters/d001")).unwrap();

    let e =
        fx.d.requeue_interrupted(&store, &fx.p(), now())
            .unwrap_err()
            .to_string();
    assert!(
        e.contains(&format!(
            "{}: not a folder",
            fx.path("letters/d001").display()
        )),
        "{e}"
    );
    assert_eq!(fx.message("d001", claimed.id), claimed);
    assert_eq!(fx.message("d001", torn.id), torn);
    assert_eq!(
        std::fs::read_to_string(loot.join(&orphan)).unwrap(),
        "someone else's file"
    );

    // A folder again (empty: neither batch was completed).
    std::fs::remove_file(fx.path("letters/d001")).unwrap();
    std::fs::create_dir(fx.path("letters/d001")).unwrap();
    fx.d.requeue_interrupted(&store, &fx.p(), now()).unwrap();
    for m in [&claimed, &torn] {
        let m = fx.message("d001", m.id);
        assert_eq!((m.status, m.dispatch.batch.as_str()), (S::Queued, ""));
    }
    assert_eq!(std::fs::read_dir(&loot).unwrap().count(), 2);
}

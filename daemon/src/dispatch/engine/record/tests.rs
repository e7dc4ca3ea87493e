#![allow(clippy::unwrap_used)]

use touchpoint_common::domain::{Channel, Consent, Timestamp};
use touchpoint_common::outbox::month_of;
use touchpoint_common::protocol::Scope;

use super::*;
use crate::dispatch::engine::fixture::*;
use crate::dispatch::engine::*;

#[test]
fn a_4xx_defers_with_doubling_waits_and_after_the_maximum_age_becomes_a_letter() {
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
    let key = email.occasions[0].key.clone();
    assert_eq!(store.planned_occasion(&key).unwrap(), Some(email.id));

    // First refusal: retry after retry_first_minutes (5).
    let jobs = fx.claim("d001", now(), 8);
    assert_eq!(jobs.len(), 1);
    let before = now();
    fx.d.record_and_flush(vec![outcome(
        &jobs[0],
        transient("4.7.1 greylisted, try later "),
    )]);
    let after = now();
    let m = fx.message("d001", email.id);
    assert_eq!(m.status, S::Deferred);
    assert_eq!(m.dispatch.attempts, 1);
    assert_eq!(m.dispatch.last_error, "451 4.7.1 greylisted, try later");
    let first_retry = m.dispatch.retry_at.unwrap().0;
    assert!(
        (before + 300_000..=after + 300_000).contains(&first_retry),
        "{first_retry} not 5 minutes after {before}..{after}"
    );
    assert_eq!(
        last_history(&m),
        (
            S::Deferred,
            format!(
                "451 4.7.1 greylisted, try later; next attempt {}",
                Timestamp(first_retry)
            )
            .as_str()
        )
    );
    // Waits in the queue until then.
    assert!(store
        .due(Channel::Email, first_retry - 1, 10)
        .unwrap()
        .is_empty());
    assert_eq!(
        store.due(Channel::Email, first_retry, 10).unwrap(),
        vec![m.id]
    );
    assert!(store.in_flight().unwrap().is_empty());
    assert!(fx.claim("d001", first_retry - 1, 8).is_empty());

    // Second refusal: twice as long.
    let jobs = fx.claim("d001", first_retry, 8);
    assert_eq!(jobs.len(), 1);
    assert_eq!(fx.message("d001", email.id).dispatch.attempts, 2);
    let before = now();
    fx.d.record_and_flush(vec![outcome(
        &jobs[0],
        transient("4.7.1 greylisted, try later"),
    )]);
    let after = now();
    let m = fx.message("d001", email.id);
    let second_retry = m.dispatch.retry_at.unwrap().0;
    assert!(
        (before + 600_000..=after + 600_000).contains(&second_retry),
        "{second_retry} not 10 minutes after {before}..{after}"
    );

    // Third attempt, first made 48 hours and a minute ago (retry_max_hours).
    let jobs = fx.claim("d001", second_retry, 8);
    assert_eq!(jobs.len(), 1);
    let mut aged = fx.message("d001", email.id);
    aged.dispatch.first_attempt = Some(Timestamp(now() - 48 * 3_600_000 - 60_000));
    fx.rewrite("d001", aged);
    fx.d.record_and_flush(vec![outcome(
        &jobs[0],
        transient("4.7.1 greylisted, try later"),
    )]);

    let m = fx.message("d001", email.id);
    let reason = "still refused after 3 attempts over 48 hours: 451 4.7.1 greylisted, try later";
    assert_eq!(m.status, S::Fallback);
    assert_eq!(m.dispatch.last_error, reason);
    assert_eq!(m.dispatch.retry_at, None);
    let letter_id = m.dispatch.fallback_to.unwrap();
    assert_ne!(letter_id, email.id);
    assert_eq!(
        dispatch_whys(&m),
        vec![
            format!("email failed: {reason}"),
            format!("replaced by letter #{letter_id}")
        ]
    );
    assert_eq!(
        last_history(&m),
        (
            S::Fallback,
            format!("replaced by letter #{letter_id}").as_str()
        )
    );

    let letter = fx.message("d001", letter_id);
    assert_eq!(
        (letter.channel, letter.status, letter.cost),
        (Channel::Post, S::Queued, 95)
    );
    assert_eq!(letter.dispatch.fallback_of, Some(email.id));
    assert_eq!(letter.send_on, today());
    assert_eq!(
        letter.message_id,
        format!("<tp.d001.{letter_id}@autohaus-mueller.example>")
    );
    assert_eq!(letter.occasions, email.occasions);
    assert_eq!(
        letter.history,
        vec![(
            letter.planned_at,
            S::Queued,
            format!("letter in place of email #{}", email.id)
        )]
    );
    assert_eq!(
        dispatch_whys(&letter),
        vec![format!(
            "fallback: email #{} failed ({reason}); sent as a letter instead: post: allowed, \
             no objection on record; to Lindenstraße 4, 80807 München",
            email.id
        )]
    );
    // The occasion now belongs to the letter; the letter is the contact.
    assert_eq!(store.planned_occasion(&key).unwrap(), Some(letter_id));
    let contacts: Vec<(u64, S)> = store
        .contacts_of("K1")
        .unwrap()
        .iter()
        .map(|c| (c.message, c.status))
        .collect();
    assert_eq!(contacts, vec![(letter_id, S::Queued)]);
    // Queued for the letter batch; the email is nowhere.
    assert_eq!(
        store.due(Channel::Post, now(), 10).unwrap(),
        vec![letter_id]
    );
    assert!(store.due(Channel::Email, LATER, 10).unwrap().is_empty());
    assert!(store.in_flight().unwrap().is_empty());
    // The email's 2 cents released, the letter's 95 reserved.
    let e = fx.ledger("d001", month_of(today()), "service_due");
    assert_eq!((e.reserved, e.booked), (95, 0));
    let st = fx.d.status(&Scope::All, &[tid("d001")]);
    assert_eq!((st.deferred_total, st.fallbacks_total), (2, 1));
    assert_eq!((st.queues[0].email, st.queues[0].post), (0, 1));

    // A planner-style cancel of the replaced email frees nothing: the
    // occasion points at the letter.
    let mut c = Change::new(m.clone(), m.clone());
    c.after.set_status(Timestamp::now(), S::Cancelled, "test");
    c.free_occasions = true;
    store.apply(&[c]).unwrap();
    assert_eq!(store.planned_occasion(&key).unwrap(), Some(letter_id));
}

#[test]
fn without_postal_consent_a_refused_email_fails_and_releases_its_reservation() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K2"]);
    let store = fx.store("d001");
    let refusal = Consent {
        at: Timestamp(now() - 1_000),
        source: "form:2026-11".into(),
        ..said("K2", Channel::Post, false)
    };
    assert!(store.record_consent(&refusal).unwrap());
    let email = fx.queued(
        "d001",
        &draft(
            &store,
            "K2",
            Channel::Email,
            "service_due",
            Some(VIN_A),
            today(),
        ),
    );
    let count = store.message_count();
    let jobs = fx.claim("d001", now(), 8);
    fx.d.record_and_flush(vec![outcome(
        &jobs[0],
        Delivery::Permanent {
            code: 554,
            message: "5.7.1 rejected as spam".into(),
        },
    )]);

    let m = fx.message("d001", email.id);
    assert_eq!(m.status, S::Failed);
    assert_eq!(
        last_history(&m),
        (S::Failed, "refused: 554 5.7.1 rejected as spam")
    );
    assert_eq!(
        dispatch_whys(&m),
        vec![
            "email failed: refused: 554 5.7.1 rejected as spam".to_string(),
            format!(
                "no letter instead: post: consent withdrawn {} (form:2026-11)",
                today_of(refusal.at)
            ),
        ]
    );
    assert_eq!(m.dispatch.fallback_to, None);
    assert_eq!(store.message_count(), count, "no letter was made");
    // 554 is no verdict on the address.
    assert_eq!(store.bad_address("k2@example.org").unwrap(), None);
    assert!(store.contacts_of("K2").unwrap().is_empty());
    assert!(store.in_flight().unwrap().is_empty());
    assert!(store.due(Channel::Email, LATER, 10).unwrap().is_empty());
    assert!(store.due(Channel::Post, LATER, 10).unwrap().is_empty());
    let e = fx.ledger("d001", month_of(today()), "service_due");
    assert_eq!((e.reserved, e.booked), (0, 0));
    let st = fx.d.status(&Scope::All, &[tid("d001")]);
    assert_eq!((st.failed_total, st.fallbacks_total), (1, 0));
}

#[test]
fn a_550_marks_the_address_bad_and_the_next_email_to_it_never_goes() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1"]);
    let store = fx.store("d001");
    let first = fx.queued(
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
    let answer = "550 5.1.1 <k1@example.org>: Recipient address rejected: User unknown";
    fx.d.record_and_flush(vec![outcome(
        &jobs[0],
        Delivery::Permanent {
            code: 550,
            message: "5.1.1 <k1@example.org>: Recipient address rejected: User unknown".into(),
        },
    )]);
    assert_eq!(
        store.bad_address(" K1@Example.ORG ").unwrap().as_deref(),
        Some(answer)
    );
    let m = fx.message("d001", first.id);
    assert_eq!(m.status, S::Fallback);
    assert_eq!(m.dispatch.last_error, format!("refused: {answer}"));
    let letter = fx.message("d001", m.dispatch.fallback_to.unwrap());
    assert_eq!((letter.channel, letter.status), (Channel::Post, S::Queued));

    // Another message to the same address fails before it is sent.
    let second = fx.queued(
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
    assert!(fx.claim("d001", now(), 8).is_empty());
    let m = fx.message("d001", second.id);
    assert_eq!(m.dispatch.attempts, 0, "never handed to the relay");
    assert_eq!(m.status, S::Fallback);
    let reason = format!("address k1@example.org is known to bounce ({answer})");
    assert_eq!(m.dispatch.last_error, reason);
    assert_eq!(dispatch_whys(&m)[0], format!("email failed: {reason}"));
    let letter2 = fx.message("d001", m.dispatch.fallback_to.unwrap());
    assert_eq!(
        (letter2.channel, letter2.service.as_str()),
        (Channel::Post, "hu_reminder")
    );
    assert!(store.in_flight().unwrap().is_empty());
    let mut letters = store.due(Channel::Post, now(), 10).unwrap();
    letters.sort_unstable();
    assert_eq!(letters, vec![letter.id, letter2.id]);
}

#[test]
fn an_unreachable_relay_requeues_without_an_attempt_and_backs_off_doubling_to_the_cap() {
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
    let mut at = now();
    let mut expected = RELAY_BACKOFF_MIN;
    for round in 0..10 {
        let jobs = fx.claim("d001", at, 8);
        assert_eq!(jobs.len(), 1, "round {round}");
        assert_eq!(fx.message("d001", email.id).dispatch.attempts, 1);
        let before = now();
        fx.d.record_and_flush(vec![outcome(
            &jobs[0],
            Delivery::Unreachable {
                error: "connect: connection refused".into(),
            },
        )]);
        let after = now();
        let m = fx.message("d001", email.id);
        assert_eq!(m.status, S::Queued);
        assert_eq!(m.dispatch.attempts, 0, "an unreached relay is no attempt");
        assert_eq!(m.dispatch.last_error, "connect: connection refused");
        assert_eq!(
            last_history(&m),
            (
                S::Queued,
                "relay not reached: connect: connection refused; waits"
            )
        );
        assert!(store.in_flight().unwrap().is_empty());
        let until = fx.d.state().relay_down_until.unwrap();
        assert!(
            (before + expected..=after + expected).contains(&until),
            "round {round}: {until} is not {expected} ms after {before}..{after}"
        );
        // Due as far as the queue goes, but nothing is claimed before `until`.
        assert_eq!(
            store.due(Channel::Email, until - 1, 10).unwrap(),
            vec![m.id]
        );
        assert!(fx.claim("d001", until - 1, 8).is_empty());
        at = until;
        expected = (expected * 2).min(RELAY_BACKOFF_MAX);
    }
    assert_eq!(fx.d.state().relay_backoff, RELAY_BACKOFF_MAX);
    let st = fx.d.status(&Scope::All, &[tid("d001")]);
    assert_eq!(st.relay_down_until, Some(Timestamp(at)));
    assert_eq!(
        st.last_error,
        "relay not reached: connect: connection refused"
    );

    // A round now (five minutes before `at`) claims nothing.
    assert!(fx.d.next_jobs(Vec::new(), 8, true).is_empty());
    assert_eq!(fx.message("d001", email.id).status, S::Queued);

    // Once it passes, the message goes; a success resets the back-off.
    let jobs = fx.claim("d001", at, 8);
    assert_eq!(jobs.len(), 1);
    fx.d.record_and_flush(vec![outcome(
        &jobs[0],
        Delivery::Accepted {
            response: "250 2.0.0 Ok: queued as 4F2A1".into(),
        },
    )]);
    let m = fx.message("d001", email.id);
    assert_eq!((m.status, m.dispatch.attempts), (S::Sent, 1));
    assert_eq!(m.dispatch.last_error, "");
    assert_eq!(fx.d.state().relay_down_until, None);
    assert_eq!(fx.d.state().relay_backoff, RELAY_BACKOFF_MIN);
}

/// An email the relay took while its tenant's store could not be written
/// to (broken by an I/O error and still held elsewhere) is recorded as
/// sent once the store is back, and is never taken for interrupted and
/// sent again meanwhile.
#[test]
fn an_outcome_that_cannot_be_written_is_kept_and_written_later_not_resent() {
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
    // Handed out as the dispatch loop does (flushed, then in flight).
    let jobs = fx.d.next_jobs(Vec::new(), 8, true);
    assert_eq!(jobs.len(), 1);
    let took = outcome(
        &jobs[0],
        Delivery::Accepted {
            response: "250 2.0.0 Ok: queued as 4F2A1".into(),
        },
    );
    // The store meets a full disk while this task still holds it: the
    // open set cannot reopen it until the holder lets go.
    store.mark_broken("IO error: No space left on device");
    fx.d.record_and_flush(vec![took]);
    assert!(fx.d.has_unrecorded(Some(&tid("d001"))));
    let status = fx.d.status(&Scope::All, &[tid("d001")]);
    assert_eq!(status.sent_total, 0, "nothing was written as sent yet");
    assert_eq!(status.resent_after_crash, 0);
    drop(store);

    // A look for interrupted sends (a control request's, or the one after
    // a failed flush) leaves the message alone: it is not interrupted.
    fx.d.state().recovered.remove(&tid("d001"));
    let store = fx.store("d001");
    assert_eq!(fx.message("d001", email.id).status, S::Sending);
    fx.d.requeue_interrupted(&store, &fx.p(), now())
        .expect("look for interrupted sends");
    assert_eq!(fx.message("d001", email.id).status, S::Sending);
    assert!(
        fx.claim("d001", now(), 8).is_empty(),
        "not handed out again"
    );

    // The next round writes it.
    fx.d.record_and_flush(Vec::new());
    let m = fx.message("d001", email.id);
    assert_eq!(m.status, S::Sent);
    assert_eq!(
        last_history(&m),
        (S::Sent, "accepted: 250 2.0.0 Ok: queued as 4F2A1")
    );
    let status = fx.d.status(&Scope::All, &[tid("d001")]);
    assert_eq!((status.sent_total, status.resent_after_crash), (1, 0));
    assert!(!fx.d.has_unrecorded(None));
    // Now the look for interrupted sends has nothing to do either.
    fx.d.requeue_interrupted(&store, &fx.p(), now())
        .expect("look for interrupted sends");
    assert_eq!(fx.message("d001", email.id).status, S::Sent);
}

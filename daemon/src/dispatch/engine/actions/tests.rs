#![allow(clippy::unwrap_used)]

use touchpoint_common::domain::{Channel, Consent, Timestamp};
use touchpoint_common::outbox::month_of;
use touchpoint_common::protocol::{MessageAction, PauseScope};

use super::*;
use crate::dispatch::engine::fixture::*;
use crate::dispatch::engine::*;

#[test]
fn hold_release_cancel_and_retry_are_allowed_by_status() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1"]);
    let store = fx.store("d001");
    let later = today().add_days(3);
    let planned = draft(
        &store,
        "K1",
        Channel::Email,
        "service_due",
        Some(VIN_A),
        later,
    );
    fx.put("d001", &planned);
    let queued = fx.queued(
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
    let (p, q) = (planned.id, queued.id);

    assert_eq!(
        fx.act("d001", &[p, q, 999], MessageAction::Hold),
        vec![Ok(S::Held), Ok(S::Held), Err("no such message".into())]
    );
    let (mp, mq) = (fx.message("d001", p), fx.message("d001", q));
    assert_eq!(
        (mp.dispatch.held_from, mq.dispatch.held_from),
        (Some(S::Planned), Some(S::Queued))
    );
    assert_eq!(last_history(&mq), (S::Held, "hold by op"));
    assert!(store.releasable(later).unwrap().is_empty());
    assert!(store.due(Channel::Email, LATER, 10).unwrap().is_empty());
    assert!(fx.claim("d001", now(), 8).is_empty());
    assert_eq!(
        fx.act("d001", &[p], MessageAction::Hold),
        vec![Err("cannot hold a message that is held".into())]
    );
    assert_eq!(
        fx.act("d001", &[q], MessageAction::Retry),
        vec![Err("cannot retry a message that is held".into())]
    );

    assert_eq!(
        fx.act("d001", &[p, q], MessageAction::Release),
        vec![Ok(S::Planned), Ok(S::Queued)]
    );
    assert_eq!(store.releasable(later).unwrap(), vec![p]);
    assert_eq!(store.due(Channel::Email, now(), 10).unwrap(), vec![q]);
    assert_eq!(
        fx.act("d001", &[q], MessageAction::Release),
        vec![Err("cannot release a message that is queued".into())]
    );
    assert_eq!(
        fx.act("d001", &[q], MessageAction::Retry),
        vec![Err("cannot retry a message that is queued".into())]
    );

    // With the transport: nothing may be done to it.
    let jobs = fx.claim("d001", now(), 8);
    assert_eq!(jobs.len(), 1);
    for (a, word) in [
        (MessageAction::Hold, "hold"),
        (MessageAction::Release, "release"),
        (MessageAction::Cancel, "cancel"),
        (MessageAction::Retry, "retry"),
    ] {
        assert_eq!(
            fx.act("d001", &[q], a),
            vec![Err(format!("cannot {word} a message that is sending"))]
        );
    }
    // Deferred: retried now, its back-off forgotten.
    fx.d.record_and_flush(vec![outcome(&jobs[0], transient("4.2.0 mailbox busy"))]);
    assert_eq!(
        fx.act("d001", &[q], MessageAction::Retry),
        vec![Ok(S::Queued)]
    );
    let m = fx.message("d001", q);
    assert_eq!(m.dispatch.first_attempt, None);
    assert_eq!(last_history(&m), (S::Queued, "retry by op"));
    assert_eq!(store.due(Channel::Email, now(), 10).unwrap(), vec![q]);

    // Cancelled by an operator: the reservation goes, the occasion stays taken.
    let key = queued.occasions[0].key.clone();
    assert_eq!(
        fx.act("d001", &[q], MessageAction::Cancel),
        vec![Ok(S::Cancelled)]
    );
    let m = fx.message("d001", q);
    assert_eq!(dispatch_whys(&m), vec!["cancelled by op"]);
    assert_eq!(last_history(&m), (S::Cancelled, "cancel by op"));
    assert_eq!(store.planned_occasion(&key).unwrap(), Some(q));
    assert!(store.due(Channel::Email, LATER, 10).unwrap().is_empty());
    let contacts: Vec<u64> = store
        .contacts_of("K1")
        .unwrap()
        .iter()
        .map(|c| c.message)
        .collect();
    assert_eq!(contacts, vec![p]);
    assert_eq!(
        fx.ledger("d001", month_of(today()), "hu_reminder").reserved,
        0
    );
    for a in [
        MessageAction::Cancel,
        MessageAction::Hold,
        MessageAction::Retry,
    ] {
        assert!(fx.act("d001", &[q], a)[0].is_err());
    }

    // A planner-style cancel frees the occasion for a later plan.
    let key = planned.occasions[0].key.clone();
    let before = fx.message("d001", p);
    let mut c = Change::new(before.clone(), before);
    c.after
        .set_status(Timestamp::now(), S::Cancelled, "consent withdrawn");
    crate::ledger::release(&mut c);
    c.free_occasions = true;
    store.apply(&[c]).unwrap();
    assert_eq!(store.planned_occasion(&key).unwrap(), None);
    assert!(store.releasable(later).unwrap().is_empty());
    assert_eq!(
        fx.ledger("d001", month_of(later), "service_due").reserved,
        0
    );
}

/// Send-now makes a planned message due today, now: it is released for
/// rendering today, its estimate moves to this month's reservations, and
/// its why says who did it and when it had been planned for.
#[test]
fn send_now_makes_a_planned_message_due_and_moves_its_reservation() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1"]);
    let store = fx.store("d001");
    // Next month at the earliest.
    let later = today().add_days(40);
    let planned = draft(
        &store,
        "K1",
        Channel::Email,
        "service_due",
        Some(VIN_A),
        later,
    );
    fx.put("d001", &planned);
    let p = planned.id;
    let this_month = fx.ledger("d001", month_of(today()), "service_due").reserved;
    let next_month = fx.ledger("d001", month_of(later), "service_due").reserved;
    assert!(store.releasable(today()).unwrap().is_empty());

    assert_eq!(
        fx.act("d001", &[p], MessageAction::SendNow),
        vec![Ok(S::Planned)]
    );
    let m = fx.message("d001", p);
    assert_eq!(m.send_on, today());
    assert!(i64::from(m.send_at) <= i64::from(minutes_local(now())));
    assert_eq!(store.releasable(today()).unwrap(), vec![p]);
    assert_eq!(
        fx.ledger("d001", month_of(today()), "service_due").reserved,
        this_month + m.cost
    );
    assert_eq!(
        fx.ledger("d001", month_of(later), "service_due").reserved,
        next_month - m.cost
    );
    assert_eq!(last_history(&m), (S::Planned, "send-now by op"));
    assert_eq!(
        dispatch_whys(&m),
        vec![format!(
            "sent now by op (planned for {later} {:02}:{:02})",
            planned.send_at / 60,
            planned.send_at % 60
        )]
    );
    // Learning counts it in no arm: its day and time were nobody's plan.
    assert!(m.sent_now() && !planned.sent_now());
    // Due already: said so, nothing changes.
    assert_eq!(
        fx.act("d001", &[p], MessageAction::SendNow),
        vec![Err(
            "it is due already: it goes out as soon as dispatch gets to it".into()
        )]
    );
    // Held: release it first.
    fx.act("d001", &[p], MessageAction::Hold);
    assert_eq!(
        fx.act("d001", &[p], MessageAction::SendNow),
        vec![Err("cannot send now a message that is held".into())]
    );
}

#[test]
fn a_failed_email_retried_by_an_operator_reserves_its_cost_again() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1"]);
    let store = fx.store("d001");
    store
        .record_consent(&Consent {
            at: Timestamp(now() - 1_000),
            ..said("K1", Channel::Post, false)
        })
        .unwrap();
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
        Delivery::Permanent {
            code: 552,
            message: "5.2.2 mailbox full".into(),
        },
    )]);
    assert_eq!(fx.message("d001", email.id).status, S::Failed);
    assert_eq!(
        fx.ledger("d001", month_of(today()), "service_due").reserved,
        0
    );
    assert_eq!(
        fx.act("d001", &[email.id], MessageAction::Retry),
        vec![Ok(S::Queued)]
    );
    assert_eq!(
        fx.ledger("d001", month_of(today()), "service_due").reserved,
        2
    );
    assert_eq!(
        store.due(Channel::Email, now(), 10).unwrap(),
        vec![email.id]
    );
    assert_eq!(fx.claim("d001", now(), 8).len(), 1);
}

#[test]
fn a_pause_keeps_messages_queued_through_rounds_until_resumed() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1"]);
    let store = fx.store("d001");
    let service = draft(
        &store,
        "K1",
        Channel::Email,
        "service_due",
        Some(VIN_A),
        today(),
    );
    let hu = draft(
        &store,
        "K1",
        Channel::Email,
        "hu_reminder",
        Some(VIN_A),
        today(),
    );
    let letter = draft(
        &store,
        "K1",
        Channel::Post,
        "hu_reminder",
        Some(VIN_A),
        today(),
    );
    for m in [&service, &hu, &letter] {
        fx.put("d001", m);
    }

    let all_of_d001 = PauseScope {
        tenant: Some(tid("d001")),
        service: None,
    };
    let paused = fx.d.pause(all_of_d001.clone(), "op").unwrap();
    assert_eq!(paused.len(), 1);
    assert_eq!(fx.stores.central().pauses().unwrap(), paused);
    // The round releases and queues them, but neither claims nor batches.
    assert!(fx.d.next_jobs(Vec::new(), 8, true).is_empty());
    for m in [&service, &hu, &letter] {
        assert_eq!(fx.message("d001", m.id).status, S::Queued);
    }
    assert_eq!(
        store.due(Channel::Post, now(), 10).unwrap(),
        vec![letter.id]
    );
    assert!(!fx.path("letters/d001").exists());

    // Only hu_reminder, everywhere, paused now.
    let hu_only = PauseScope {
        tenant: None,
        service: Some("hu_reminder".into()),
    };
    fx.d.pause(hu_only.clone(), "op").unwrap();
    let left = fx.d.resume(all_of_d001).unwrap();
    assert_eq!(
        left.iter().map(|p| p.scope.clone()).collect::<Vec<_>>(),
        vec![hu_only.clone()]
    );
    assert_eq!(fx.stores.central().pauses().unwrap(), left);
    let jobs = fx.d.next_jobs(Vec::new(), 8, true);
    assert_eq!(
        jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![service.id]
    );
    assert_eq!(fx.message("d001", hu.id).status, S::Queued);
    // The day's batch closed without the paused letter: it waits for the
    // next batch (or an operator's `touchpoint batches`).
    assert_eq!(fx.message("d001", letter.id).status, S::Queued);

    assert!(fx.d.resume(hu_only).unwrap().is_empty());
    let jobs = fx.d.next_jobs(Vec::new(), 8, true);
    assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), vec![hu.id]);
    let batches = fx.d.run_batches(&[tid("d001")]).unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(fx.message("d001", letter.id).status, S::Sent);
}

/// A message's history grows with every mail about it and every
/// operator's action; what is stored keeps the first lines and the
/// newest, and says how many it left out in between.
#[test]
fn a_message_history_that_grows_without_end_is_stored_with_its_first_and_newest_lines() {
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
    let before = fx.message("d001", email.id).history;
    for _ in 0..300 {
        assert_eq!(
            fx.act("d001", &[email.id], MessageAction::Hold),
            vec![Ok(S::Held)]
        );
        assert_eq!(
            fx.act("d001", &[email.id], MessageAction::Release),
            vec![Ok(S::Queued)]
        );
    }
    let m = fx.message("d001", email.id);
    assert!(m.history.len() <= 64, "{} lines", m.history.len());
    assert_eq!(
        m.history[..before.len()],
        before[..],
        "the first lines stay"
    );
    let gap = m
        .history
        .iter()
        .find(|h| h.2.contains("left out"))
        .expect("a line that says what was left out");
    let told: usize = gap
        .2
        .split(|c: char| !c.is_ascii_digit())
        .find(|n| !n.is_empty())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(told + m.history.len() - 1, before.len() + 600, "{:?}", gap);
    assert_eq!(m.history.last().unwrap().1, S::Queued);
}

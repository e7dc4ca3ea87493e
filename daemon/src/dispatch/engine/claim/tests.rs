#![allow(clippy::unwrap_used)]

use touchpoint_common::domain::{Channel, Consent, Timestamp};
use touchpoint_common::outbox::month_of;
use touchpoint_common::protocol::{PauseScope, Scope};

use super::*;
use crate::dispatch::engine::fixture::*;
use crate::dispatch::engine::*;
use crate::planner::{plan_tenant, Mode};
use crate::store::PlanWrite;

#[test]
fn an_email_is_held_at_dispatch_when_the_budget_is_spent() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1"]);
    let store = fx.store("d001");
    fx.spent("d001", "service_due", fx.budget("d001", "service_due"));
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
    assert!(fx.claim("d001", now(), 8).is_empty());
    let m = fx.message("d001", email.id);
    let budget = crate::ledger::money(fx.budget("d001", "service_due"));
    let reason =
        format!("budget exhausted: {budget} booked and 0.00 reserved of {budget} this month");
    let reason = reason.as_str();
    assert_eq!(m.status, S::Held);
    assert_eq!(m.dispatch.held_from, Some(S::Queued));
    assert_eq!(m.dispatch.attempts, 0);
    assert_eq!(last_history(&m), (S::Held, reason));
    assert_eq!(
        dispatch_whys(&m),
        vec![format!("held at dispatch: {reason}")]
    );
    assert!(store.due(Channel::Email, LATER, 10).unwrap().is_empty());
    assert!(store.in_flight().unwrap().is_empty());
    // Held, it keeps its reservation.
    let e = fx.ledger("d001", month_of(today()), "service_due");
    assert_eq!(
        (e.reserved, e.booked),
        (2, fx.budget("d001", "service_due"))
    );
    // Another service's budget is untouched.
    let other = fx.queued(
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
    let jobs = fx.claim("d001", now(), 8);
    assert_eq!(
        jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![other.id]
    );
}

#[test]
fn consent_withdrawn_after_planning_cancels_the_email_at_claim_and_frees_its_occasions() {
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
    let withdrawal = Consent {
        at: Timestamp(now()),
        source: "form:unsubscribe-page".into(),
        ..said("K1", Channel::Email, false)
    };
    assert!(store.record_consent(&withdrawal).unwrap());

    assert!(fx.claim("d001", now(), 8).is_empty());
    let m = fx.message("d001", email.id);
    let reason = format!(
        "email: consent withdrawn {} (form:unsubscribe-page)",
        today_of(withdrawal.at)
    );
    assert_eq!(m.status, S::Cancelled);
    assert_eq!(last_history(&m), (S::Cancelled, reason.as_str()));
    assert_eq!(
        dispatch_whys(&m),
        vec![format!("cancelled before sending: {reason}")]
    );
    assert_eq!(m.dispatch.attempts, 0);
    assert_eq!(store.planned_occasion(&key).unwrap(), None);
    assert!(store.contacts_of("K1").unwrap().is_empty());
    assert!(store.due(Channel::Email, LATER, 10).unwrap().is_empty());
    assert!(store.in_flight().unwrap().is_empty());
    assert_eq!(
        fx.ledger("d001", month_of(today()), "service_due").reserved,
        0
    );
    // Nothing went to the spool.
    assert!(!Spool::new(fx.path("mail"))
        .path_of(&tid("d001"), m.id)
        .exists());
}

/// An email checked whole and found allowed, whose domain waits, is left
/// alone while the domain still waits: nothing of it is read again (a
/// message that became unreadable meanwhile goes unnoticed), until its
/// domain has room. A change of the tenant's data (a consent withdrawn) is
/// found in the next round all the same, and a new email is checked whole
/// at once.
#[test]
fn an_email_to_a_domain_that_waits_is_left_unread_until_the_domain_or_the_data_changes() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1", "K2", "K3"]);
    let withdraw = |who: &str| {
        let withdrawal = Consent {
            at: Timestamp(now()),
            source: "form:unsubscribe-page".into(),
            ..said(who, Channel::Email, false)
        };
        assert!(fx.store("d001").record_consent(&withdrawal).unwrap());
    };
    let cannot_be_read = |id: u64| {
        fx.d.status(&Scope::All, &[tid("d001")])
            .last_error
            .contains(&format!("message #{id} cannot be read"))
    };
    let first = fx.queued_email("d001", "K1", VIN_A);
    let second = fx.queued_email("d001", "K2", VIN_B);
    // example.org's slots all taken by emails in flight.
    fx.fill_domain("d001", "example.org");
    assert!(fx.claim("d001", now(), 8).is_empty());
    assert_eq!(fx.message("d001", first.id).status, S::Queued, "waits");
    assert_eq!(fx.d.state().waiting.len(), 2);
    // Unreadable since: not read while the domain waits.
    fx.plant_raw_message("d001", second.id, b"\x01\xff\xff\xff\xff");
    assert!(fx.claim("d001", now(), 8).is_empty());
    assert!(!cannot_be_read(second.id), "left unread");
    // A withdrawal changes the data: the waiting emails are checked whole
    // again (found unreadable, and cancelled for the missing consent).
    withdraw("K1");
    assert!(fx.claim("d001", now(), 8).is_empty());
    assert_eq!(fx.message("d001", first.id).status, S::Cancelled);
    assert!(cannot_be_read(second.id));
    // A new one whose consent is gone: checked whole, cancelled at once.
    withdraw("K3");
    let third = fx.queued_email("d001", "K3", "WNW5555555555QRST");
    assert!(fx.claim("d001", now(), 8).is_empty());
    assert_eq!(fx.message("d001", third.id).status, S::Cancelled);
    assert_eq!(fx.d.state().waiting.len(), 0);
}

/// Waiting emails are read again once their domain has room, and go.
#[test]
fn a_waiting_email_goes_when_its_domain_has_room() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1"]);
    let m = fx.queued_email("d001", "K1", VIN_A);
    let taken = fx.fill_domain("d001", "example.org");
    assert!(fx.claim("d001", now(), 8).is_empty());
    assert_eq!(fx.d.state().waiting.len(), 1);
    // Answered, and a minute later: room.
    let t = tid("d001");
    for _ in 0..taken {
        fx.d.state().throttles.done(&t, "example.org", true);
    }
    let jobs = fx.claim("d001", now() + 61_000, 8);
    assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), vec![m.id]);
    assert_eq!(fx.d.state().waiting.len(), 0);
}

/// K1 and K2 are one person (same name at the same address): K2 merges into
/// K1. K1 holds a car whose service was due 18 days after `day`.
fn one_person_with_two_numbers(fx: &Fx, day: Date, consents: &[Consent]) {
    fx.import(
        "d001",
        &[person("K1"), person("K2")],
        &[car(VIN_A, "K1", Some(months_before(day.add_days(18), 12)))],
        consents,
    );
    let merges = crate::identity::find_and_merge(&fx.store("d001"), None).unwrap();
    assert_eq!(
        merges
            .iter()
            .map(|m| (m.merged.as_str(), m.survivor.as_str()))
            .collect::<Vec<_>>(),
        [("K2", "K1")]
    );
}

fn plan(fx: &Fx, day: Date) -> Message {
    let report = plan_tenant(
        &fx.store("d001"),
        &fx.p().set,
        day,
        Mode::Commit,
        &crate::learning::Learned::default(),
    )
    .unwrap();
    assert_eq!(report.planned.len(), 1, "{:?}", report.dropped);
    report.planned[0].clone()
}

/// The planner takes the latest statement across every number of the
/// person; so does dispatch: an email planned on K2's later "yes" goes,
/// though K1's own last word was an older "no".
#[test]
fn an_email_planned_on_a_merged_numbers_later_consent_is_sent() {
    let fx = Fx::new();
    let day = today().add_days(-10);
    let on = |d: Date| Timestamp::from_date(d);
    one_person_with_two_numbers(
        &fx,
        day,
        &[
            Consent {
                at: on(Date::from_ymd(2025, 1, 1).unwrap()),
                ..said("K1", Channel::Email, false)
            },
            Consent {
                at: on(Date::from_ymd(2025, 6, 1).unwrap()),
                ..said("K2", Channel::Email, true)
            },
        ],
    );
    let planned = plan(&fx, day);
    assert_eq!(
        (planned.recipient.as_str(), planned.channel),
        ("K1", Channel::Email)
    );
    assert!(
        planned.why.iter().any(|w| w.text
            == "email (email: consent given 2025-06-01 (import:kunden.csv; customer K2))"),
        "{:#?}",
        planned.why
    );

    let jobs = fx.d.next_jobs(Vec::new(), 8, true);
    let m = fx.message("d001", planned.id);
    assert_eq!(jobs.len(), 1, "{:?}", m.history);
    assert_eq!((m.status, jobs[0].id), (S::Sending, planned.id));
}

/// A withdrawal under a merged number after planning stops the email at
/// send time, and the queue shows why as the message's last error.
#[test]
fn a_withdrawal_under_a_merged_number_after_planning_cancels_the_email() {
    let fx = Fx::new();
    let day = today().add_days(-10);
    one_person_with_two_numbers(
        &fx,
        day,
        &[
            said("K1", Channel::Email, true),
            said("K2", Channel::Email, true),
        ],
    );
    let planned = plan(&fx, day);
    let store = fx.store("d001");
    let withdrawal = Consent {
        at: Timestamp(now()),
        source: "form:unsubscribe-page".into(),
        ..said("K2", Channel::Email, false)
    };
    assert!(store.record_consent(&withdrawal).unwrap());

    assert!(fx.d.next_jobs(Vec::new(), 8, true).is_empty());
    let m = fx.message("d001", planned.id);
    let reason = format!(
        "email: consent withdrawn {} (form:unsubscribe-page; customer K2)",
        today_of(withdrawal.at)
    );
    assert_eq!(m.status, S::Cancelled);
    assert_eq!(last_history(&m), (S::Cancelled, reason.as_str()));
    assert_eq!(m.dispatch.last_error, reason);
    let row = crate::queue::row(&store, m).unwrap();
    assert_eq!(row.last_error, reason);
    assert!(!Spool::new(fx.path("mail"))
        .path_of(&tid("d001"), planned.id)
        .exists());
}

/// A paused service with a full claim window of due email starves the
/// tenant's other services: `claim` looks at the first `CLAIM_BATCH` due
/// ids only and skips the paused ones without looking further.
#[test]
fn a_paused_service_does_not_starve_the_tenants_other_email() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1"]);
    let store = fx.store("d001");
    let paused: Vec<Message> = (0..CLAIM_BATCH)
        .map(|_| draft(&store, "K1", Channel::Email, "birthday", None, today()))
        .collect();
    store
        .commit_plan(&PlanWrite {
            new: &paused,
            revised: &[],
            stamp: 0,
        })
        .unwrap();
    let other = draft(
        &store,
        "K1",
        Channel::Email,
        "service_due",
        Some(VIN_A),
        today(),
    );
    fx.put("d001", &other);
    fx.release_due("d001");
    assert_eq!(store.queued_count(Channel::Email), CLAIM_BATCH + 1);
    fx.d.pause(
        PauseScope {
            tenant: Some(tid("d001")),
            service: Some("birthday".into()),
        },
        "op",
    )
    .unwrap();
    let jobs = fx.claim("d001", now(), 8);
    assert_eq!(
        jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![other.id]
    );
}

/// The budget check at dispatch takes the message's estimate out of this
/// month's reservations although it was reserved in the month of its send
/// day: a message planned for last month and sent now passes a budget it
/// overruns.
#[test]
fn a_message_from_last_month_cannot_overrun_this_months_budget() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1"]);
    let store = fx.store("d001");
    let t = today();
    let last_month = Date::from_ymd(t.year(), t.month(), 1).unwrap().add_days(-1);
    fx.spent("d001", "service_due", fx.budget("d001", "service_due") - 1);
    let email = fx.queued(
        "d001",
        &draft(
            &store,
            "K1",
            Channel::Email,
            "service_due",
            Some(VIN_A),
            last_month,
        ),
    );
    // One cent short of the budget, and this email costs two.
    let jobs = fx.claim("d001", now(), 8);
    assert!(jobs.is_empty(), "sent over budget");
    assert_eq!(fx.message("d001", email.id).status, S::Held);
}

/// A queued email whose record no longer decodes (damaged, or stored by a
/// build that wrote what it could not read back) is skipped, and said so
/// once; the tenant's other email goes out, and its queue lists the rest.
#[test]
fn an_email_that_cannot_be_read_is_skipped_and_the_others_go_out() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1", "K2"]);
    let store = fx.store("d001");
    let d = |no, vin| {
        draft(
            &store,
            no,
            Channel::Email,
            "service_due",
            Some(vin),
            today(),
        )
    };
    let bad = fx.queued("d001", &d("K1", VIN_A));
    let good = fx.queued("d001", &d("K2", VIN_B));
    drop(store);
    fx.plant_raw_message("d001", bad.id, b"\x01\xff\xff\xff\xff");

    let jobs = fx.claim("d001", LATER, 8);
    assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), vec![good.id]);
    let status = fx.d.status(&Scope::All, &[tid("d001")]);
    assert!(
        status
            .last_error
            .contains(&format!("message #{} cannot be read; skipped", bad.id)),
        "{}",
        status.last_error
    );
    assert!(fx.claim("d001", LATER, 8).is_empty());
    let page = crate::queue::page(&fx.stores, &[tid("d001")], &Default::default(), 0, 50)
        .expect("the queue lists the tenant");
    assert_eq!(
        page.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![good.id]
    );
    let ix = fx.store("d001").with_index(|ix| ix.unreadable().to_vec());
    assert_eq!(ix.unwrap(), vec![bad.id]);
}

/// With DKIM, a claimed group takes every core, one thread per message at
/// most; without it a thread takes eight or more (16 on two cores, as
/// before); never more threads than cores.
#[test]
fn signing_builds_a_small_group_on_every_core() {
    assert_eq!(build_threads(2, true, 2), 2);
    assert_eq!(build_threads(8, true, 2), 2);
    assert_eq!(build_threads(3, true, 16), 3);
    assert_eq!(build_threads(100, true, 16), 16);
    assert_eq!(build_threads(1, true, 4), 1);
    assert_eq!(build_threads(0, true, 4), 1);
    assert_eq!(build_threads(15, false, 2), 1);
    assert_eq!(build_threads(16, false, 2), 2);
    assert_eq!(build_threads(64, false, 16), 8);
    assert_eq!(build_threads(4, true, 0), 1);
}

/// The group is cut into runs of consecutive items, one per thread, and the
/// results come back in the order of the items; a helper thread that
/// panicked costs its own items only.
#[test]
fn a_group_built_on_several_threads_keeps_its_order() {
    let items: Vec<u32> = (0..10).collect();
    let out = in_order_on(
        &items,
        4,
        |i| (*i, std::thread::current().id()),
        || unreachable!(),
    );
    assert_eq!(
        out.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        items,
        "in order"
    );
    let threads: std::collections::HashSet<_> = out.iter().map(|(_, t)| *t).collect();
    assert_eq!(threads.len(), 4, "runs of 3, 3, 3 and 1 on four threads");
    assert_eq!(
        out[0].1,
        std::thread::current().id(),
        "the first run is the caller's"
    );

    let out = in_order_on(
        &items,
        2,
        |i| {
            assert!(*i < 5, "a failure in the second run");
            Ok(*i)
        },
        || Err("panicked"),
    );
    let expected: Vec<std::result::Result<u32, &str>> = (0..10)
        .map(|i| if i < 5 { Ok(i) } else { Err("panicked") })
        .collect();
    assert_eq!(out, expected);
}

/// Two DKIM-signed emails claimed together (built on two threads where
/// there are two cores) both go out signed for the sender's domain, in the
/// order they were due, both marked sending.
#[test]
fn dkim_signed_emails_claimed_together_are_signed_in_order() {
    let mut fx = Fx::new();
    customers(&fx, "d001", &["K1", "K2"]);
    let store = fx.store("d001");
    let d = |no, vin, day| draft(&store, no, Channel::Email, "service_due", Some(vin), day);
    let first = fx.queued("d001", &d("K1", VIN_A, today().add_days(-1)));
    let second = fx.queued("d001", &d("K2", VIN_B, today()));
    drop(store);
    let p = fx.p();
    let tenant = p.tenant(&tid("d001")).unwrap();
    let from = if tenant.sender.email.is_empty() {
        format!("noreply@{}", p.brand.email.bounce_domain)
    } else {
        tenant.sender.email.clone()
    };
    let domain = domain_of(&from);
    let key =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dkim/test-rsa.pem");
    let dkim = mime::Dkim::load(&touchpoint_common::config::DkimConfig {
        domain: domain.clone(),
        selector: "t".into(),
        key_file: key.to_string_lossy().into_owned(),
    })
    .unwrap();
    fx.d.dkim.insert(domain.clone(), dkim);

    let jobs = fx.claim("d001", LATER, 8);
    assert_eq!(
        jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![first.id, second.id]
    );
    for job in &jobs {
        let text = String::from_utf8_lossy(&job.outgoing.bytes);
        let signature = text
            .lines()
            .find(|l| l.starts_with("DKIM-Signature:"))
            .unwrap_or_else(|| panic!("message #{} is not signed:\n{text}", job.id));
        assert!(signature.contains(&format!("d={domain}")), "{signature}");
        assert_eq!(fx.message("d001", job.id).status, S::Sending);
    }
}

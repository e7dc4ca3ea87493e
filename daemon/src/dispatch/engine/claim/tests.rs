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

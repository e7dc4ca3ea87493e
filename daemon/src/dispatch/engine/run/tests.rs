#![allow(clippy::unwrap_used)]

use touchpoint_common::domain::Channel;
use touchpoint_common::outbox::month_of;
use touchpoint_common::protocol::Scope;

use crate::dispatch::engine::fixture::*;
use crate::dispatch::engine::*;
use crate::planner::{plan_tenant, Mode};
use crate::store::Contact;

#[test]
fn an_email_planned_by_the_planner_goes_out_and_books_cost_and_brand_share() {
    let fx = Fx::new();
    let today = today();
    // Planned ten days ago: a service due 18 days after that day is taken
    // (21 days of lead time), so its send day has passed.
    let day = today.add_days(-10);
    fx.import(
        "d001",
        &[person("K1")],
        &[car(VIN_A, "K1", Some(months_before(day.add_days(18), 12)))],
        &[said("K1", Channel::Email, true)],
    );
    let store = fx.store("d001");
    let report = plan_tenant(
        &store,
        &fx.p().set,
        day,
        Mode::Commit,
        &crate::learning::Learned::default(),
    )
    .unwrap();
    assert_eq!(report.planned.len(), 1, "{:?}", report.dropped);
    let planned = report.planned[0].clone();
    assert_eq!(
        (planned.channel, planned.status),
        (Channel::Email, S::Planned)
    );
    assert!(planned.send_on < today, "{}", planned.send_on);
    let reserve_month = month_of(planned.send_on);
    assert_eq!(fx.ledger("d001", reserve_month, "service_due").reserved, 2);
    assert_eq!(store.releasable(today).unwrap(), vec![planned.id]);

    // One round: released (rendered, queued) and claimed.
    let jobs = fx.d.next_jobs(Vec::new(), 8, true);
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!((job.id, job.domain.as_str()), (planned.id, "example.org"));
    let m = fx.message("d001", planned.id);
    assert_eq!(m.status, S::Sending);
    assert_eq!(
        statuses(&m)[statuses(&m).len() - 3..],
        [S::Rendered, S::Queued, S::Sending]
    );
    let version = fx.p().templates["service_due"].version;
    assert_eq!(m.dispatch.template_version, version);
    assert_eq!(
        m.history[m.history.len() - 3].2,
        format!(
            "rendered with template service_due version {}",
            touchpoint_common::policy::short_fingerprint(version)
        )
    );
    assert_eq!(m.history[m.history.len() - 2].2, "email queue");
    assert_eq!(
        last_history(&m),
        (S::Sending, "attempt 1 to k1@example.org")
    );
    assert_eq!(
        (m.dispatch.attempts, m.dispatch.address.as_str()),
        (1, "k1@example.org")
    );
    assert!(m.dispatch.first_attempt.is_some());
    assert_eq!(store.in_flight().unwrap(), vec![m.id]);
    assert!(store.due(Channel::Email, LATER, 10).unwrap().is_empty());
    assert!(store.releasable(today).unwrap().is_empty());

    // The spool transport writes it; the outcome is recorded.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let delivery = rt.block_on(fx.d.deliver(job));
    let spooled = Spool::new(fx.path("mail")).path_of(&tid("d001"), m.id);
    assert!(
        matches!(&delivery, Delivery::Accepted { response } if response == &format!("spooled to {}", spooled.display())),
        "{delivery:?}"
    );
    let eml = std::fs::read_to_string(&spooled).unwrap();
    assert!(
        eml.contains(&format!("Message-ID: {}", m.message_id)),
        "{eml}"
    );
    assert!(eml.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    fx.d.record_and_flush(vec![outcome(job, delivery)]);

    let m = fx.message("d001", planned.id);
    assert_eq!(m.status, S::Sent);
    assert_eq!(
        last_history(&m),
        (
            S::Sent,
            format!("accepted: spooled to {}", spooled.display()).as_str()
        )
    );
    assert_eq!((m.dispatch.booked, m.dispatch.brand_share), (2, 1));
    assert_eq!(m.dispatch.retry_at, None);
    assert!(store.in_flight().unwrap().is_empty());
    assert!(store.due(Channel::Email, LATER, 10).unwrap().is_empty());
    assert_eq!(store.sent_on(today).unwrap(), 1);
    assert_eq!(
        store.contacts_of("K1").unwrap(),
        vec![Contact {
            day: planned.send_on,
            message: m.id,
            status: S::Sent
        }]
    );
    // Reservation released in the month of the send day, cost and the
    // brand's half (1 of 2 cents) booked in the month it went out.
    assert_eq!(fx.ledger("d001", reserve_month, "service_due").reserved, 0);
    let e = fx.ledger("d001", month_of(today), "service_due");
    assert_eq!((e.booked, e.brand, e.dealer()), (2, 1, 1));
    let st = fx.d.status(&Scope::All, &[tid("d001")]);
    assert_eq!((st.sent_total, st.queues[0].sent_today), (1, 1));
    assert_eq!(st.queues[0].in_flight, 0);
    assert_eq!(st.last_error, "");
}

/// A tenant a round found with nothing to do is left alone by the next
/// rounds (its store not even opened, so it stays closed as idle) until
/// its outbox is written; a tenant with work is looked at as before.
#[test]
fn a_round_leaves_a_tenant_with_nothing_to_do_closed_until_its_outbox_is_written() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1"]);
    customers(&fx, "d003", &["K1"]);
    assert!(fx.d.next_jobs(Vec::new(), 8, true).is_empty());
    assert_eq!(fx.stores.close_idle(std::time::Duration::ZERO), 2);
    for full in [true, false, true] {
        assert!(fx.d.next_jobs(Vec::new(), 8, full).is_empty());
        assert_eq!(fx.stores.open_count(), 0, "nothing to do: left closed");
    }
    // A message of d001's K1, written as a plan writes it; then closed.
    let planned = |channel, service, day| {
        let m = draft(&fx.store("d001"), "K1", channel, service, Some(VIN_A), day);
        fx.put("d001", &m);
        assert_eq!(fx.stores.close_idle(std::time::Duration::ZERO), 1);
        m
    };
    // A letter for a later day.
    planned(Channel::Post, "service_due", today().add_days(3));
    fx.d.next_jobs(Vec::new(), 8, true);
    let is = |t: &'static str| move |id: &TenantId| id.as_str() == t;
    assert_eq!(fx.stores.open_count_of(is("d001")), 1, "written: looked at");
    assert_eq!(fx.stores.open_count_of(is("d003")), 0, "still left alone");
    // Looked at, nothing for today: left alone again.
    assert_eq!(fx.stores.close_idle(std::time::Duration::ZERO), 1);
    fx.d.next_jobs(Vec::new(), 8, true);
    assert_eq!(fx.stores.open_count(), 0);
    // An email of today, written and woken as a planning request does:
    // released and claimed in the next round.
    let now = planned(Channel::Email, "hu_reminder", today());
    // Not woken (a scheduled plan): looked at every round (released once
    // the release interval has passed since the last look), then woken.
    let mut jobs = Vec::new();
    for _ in 0..2 {
        jobs.extend(fx.d.next_jobs(Vec::new(), 8, true));
        if jobs.is_empty() {
            assert_eq!(fx.stores.open_count_of(is("d001")), 1, "looked at");
        }
        fx.stores.close_idle(std::time::Duration::ZERO);
    }
    fx.d.wake(Some(&tid("d001")));
    jobs.extend(fx.d.next_jobs(Vec::new(), 8, true));
    assert_eq!(jobs.len(), 1, "released and claimed");
    assert_eq!(jobs[0].id, now.id);
    assert_eq!(fx.stores.open_count_of(is("d003")), 0);
}

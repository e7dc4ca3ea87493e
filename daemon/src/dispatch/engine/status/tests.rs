#![allow(clippy::unwrap_used)]

use std::time::Duration;

use touchpoint_common::domain::{Channel, Timestamp};
use touchpoint_common::protocol::{PauseScope, Scope};

use crate::dispatch::engine::fixture::*;
use crate::dispatch::engine::ErrorAbout;

/// What a scoped caller reads of dispatch (the overview, the status reply)
/// is cut to its scope when the snapshot is taken: another tenant's pause,
/// daily throttle and error are not in it.
#[test]
fn a_snapshot_names_no_tenant_outside_its_scope() {
    let fx = Fx::new();
    for t in ["d001", "d003"] {
        let scope = PauseScope {
            tenant: Some(tid(t)),
            service: None,
        };
        fx.d.pause(scope, "op").unwrap();
    }
    let everyone = PauseScope {
        tenant: None,
        service: Some("birthday".into()),
    };
    fx.d.pause(everyone, "op").unwrap();
    {
        let mut limits = fx.p().brand.throttle.clone();
        limits.tenant_per_day = 100;
        let mut st = fx.d.state();
        st.throttles.set_limits(&limits);
        st.throttles.seed_tenant(&tid("d001"), 3);
        st.throttles.seed_tenant(&tid("d003"), 5);
    }
    fx.d.note_error(Some(&tid("d003")), "tenant d003: store broken".into());

    let inside = Scope::Tenants(vec![tid("d001")]);
    let s = fx.d.snapshot(&inside);
    let paused: Vec<Option<String>> = s
        .paused()
        .iter()
        .map(|p| p.scope.tenant.as_ref().map(|t| t.to_string()))
        .collect();
    assert_eq!(paused, [None, Some("d001".to_string())]);
    assert!(s.is_paused(&tid("d001"), "service_due"));
    let throttles: Vec<&str> = s.throttles().iter().map(|t| t.name.as_str()).collect();
    assert!(throttles.contains(&"tenant d001"), "{throttles:?}");
    assert_eq!(s.last_error(), "");
    let status = fx.d.status(&inside, &[tid("d001")]);
    assert!(!format!("{status:?}").contains("d003"), "{status:?}");

    let all = fx.d.snapshot(&Scope::All);
    assert_eq!(all.paused().len(), 3);
    assert!(all.throttles().iter().any(|t| t.name == "tenant d003"));
    assert_eq!(all.last_error(), "tenant d003: store broken");
}

/// What is only known over every tenant (the relay, throughput, counts
/// since the start, the global and per-domain throttles) is not in a
/// snapshot for a narrower scope, and its status says it is not shown;
/// a scope over all gets it.
#[test]
fn a_scoped_snapshot_holds_nothing_only_known_over_every_tenant() {
    let fx = Fx::new();
    {
        let mut st = fx.d.state();
        st.last_error = "relay not reached: connection refused".into();
        st.last_error_about = ErrorAbout::Everyone;
        st.relay_down_until = Some(Timestamp::now().0 + 600_000);
        let mut limits = fx.p().brand.throttle.clone();
        limits.tenant_per_day = 100;
        st.throttles.set_limits(&limits);
        st.throttles.seed_tenant(&tid("d001"), 3);
    }
    let inside = Scope::Tenants(vec![tid("d001")]);
    let s = fx.d.snapshot(&inside);
    assert!(!s.daemon_wide());
    assert_eq!(s.throughput(), None);
    assert_eq!(s.relay_down_until(), None);
    assert_eq!(s.last_error(), "");
    let names: Vec<&str> = s.throttles().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["tenant d001"]);
    let status = fx.d.status(&inside, &[tid("d001")]);
    assert!(!status.daemon_wide);
    assert_eq!(status.relay_down_until, None);

    let all = fx.d.snapshot(&Scope::All);
    assert!(all.daemon_wide());
    assert_eq!(all.throughput().map(<[u64]>::len), Some(60));
    assert!(all.relay_down_until().is_some());
    assert_eq!(all.last_error(), "relay not reached: connection refused");
    assert!(all.throttles().iter().any(|t| t.name == "global"));
    let status = fx.d.status(&Scope::All, &[tid("d001")]);
    assert!(status.daemon_wide && status.relay_down_until.is_some());
}

/// A tenant whose store cannot be had is a queue row saying why, not a
/// row left out (or one of zeros that looks like an empty queue).
#[test]
fn a_tenant_that_cannot_be_read_is_a_queue_row_with_its_error() {
    let fx = Fx::new();
    let status = fx.d.status(&Scope::All, &[tid("d001"), tid("x404")]);
    let rows: Vec<(&str, Option<&str>)> = status
        .queues
        .iter()
        .map(|q| (q.tenant.as_str(), q.error.as_deref()))
        .collect();
    assert_eq!(rows[0], ("d001", None));
    assert_eq!(rows[1].0, "x404");
    assert!(rows[1].1.is_some_and(|e| e.contains("x404")), "{rows:?}");
}

/// `dispatch status` counts a tenant's queue from its store once; while
/// its outbox is not written, it answers from that count with the store
/// left closed; after a write it counts again, from the store while it is
/// open, from what the store kept as it closed after.
#[test]
fn a_queue_is_counted_again_only_after_its_outbox_is_written() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1", "K2"]);
    let queue = |fx: &Fx| {
        let s = fx.d.status(&Scope::All, &[tid("d001"), tid("d003")]);
        s.queues
            .iter()
            .map(|q| (q.tenant.to_string(), q.email, q.error.clone()))
            .collect::<Vec<_>>()
    };
    let email = |to: &str, vin: &str| {
        draft(
            &fx.store("d001"),
            to,
            Channel::Email,
            "hu_reminder",
            Some(vin),
            today(),
        )
    };
    fx.queued("d001", &email("K1", VIN_A));
    let one = vec![("d001".to_string(), 1, None), ("d003".to_string(), 0, None)];
    assert_eq!(queue(&fx), one);
    fx.stores.close_idle(Duration::ZERO);
    assert_eq!(fx.stores.open_count(), 0);
    // Nothing written since: the same counts, no store opened.
    assert_eq!(queue(&fx), one);
    assert_eq!(fx.stores.open_count(), 0);
    // A second email queued (written while the status is not looking):
    // counted again, from the open store.
    fx.queued("d001", &email("K2", VIN_B));
    let two = vec![("d001".to_string(), 2, None), ("d003".to_string(), 0, None)];
    assert_eq!(queue(&fx), two);
    // A third, and the store closes: it kept its counts as it closed.
    fx.queued(
        "d001",
        &draft(
            &fx.store("d001"),
            "K1",
            Channel::Email,
            "birthday",
            None,
            today(),
        ),
    );
    fx.stores.close_idle(Duration::ZERO);
    let three = vec![("d001".to_string(), 3, None), ("d003".to_string(), 0, None)];
    assert_eq!(queue(&fx), three);
    assert_eq!(fx.stores.open_count(), 0);
}

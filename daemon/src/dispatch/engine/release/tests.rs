#![allow(clippy::unwrap_used)]

use touchpoint_common::domain::Channel;
use touchpoint_common::protocol::MessageAction;

use super::*;
use crate::dispatch::engine::fixture::*;

#[test]
fn a_template_that_fails_to_render_holds_the_message_when_released() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1"]);
    let store = fx.store("d001");
    let mut m = draft(
        &store,
        "K1",
        Channel::Email,
        "service_due",
        Some(VIN_A),
        today(),
    );
    m.template = "gone".into();
    fx.put("d001", &m);
    fx.release_due("d001");
    let held = fx.message("d001", m.id);
    let reason = "template gone: no template \"gone\" in the policy set";
    assert_eq!(held.status, S::Held);
    assert_eq!(held.dispatch.held_from, Some(S::Planned));
    assert_eq!(held.dispatch.last_error, reason);
    assert_eq!(last_history(&held), (S::Held, reason));
    assert!(store.releasable(today()).unwrap().is_empty());
    assert!(store.due(Channel::Email, LATER, 10).unwrap().is_empty());
    // Released by an operator, it is planned again (and held again).
    assert_eq!(
        fx.act("d001", &[m.id], MessageAction::Release),
        vec![Ok(S::Planned)]
    );
    assert_eq!(store.releasable(today()).unwrap(), vec![m.id]);
}

/// An operator's release (the day's batches closed now) queues everything
/// due, however many: a round releases [`RELEASE_BATCH`] at a time and
/// leaves the rest to the next rounds; the operator's goes on until none
/// is left.
#[test]
fn an_operators_release_takes_every_batch_not_only_the_first() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1"]);
    let store = fx.store("d001");
    let n = RELEASE_BATCH + 3;
    let many: Vec<Message> = (0..n)
        .map(|_| {
            draft(
                &store,
                "K1",
                Channel::Email,
                "service_due",
                Some(VIN_A),
                today(),
            )
        })
        .collect();
    store
        .commit_plan(&crate::store::PlanWrite {
            new: &many,
            revised: &[],
            stamp: 0,
        })
        .unwrap();
    fx.d.release_due_now(&store, &fx.p(), now()).unwrap();
    assert!(store.releasable(today()).unwrap().is_empty());
    assert_eq!(store.due(Channel::Email, LATER, n + 10).unwrap().len(), n);
}

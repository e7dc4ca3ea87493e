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

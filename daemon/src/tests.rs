//! Tests of flows that cross capabilities, kept at the crate root so that
//! no capability's own tests import another capability: here approvals'
//! material reaching dispatch through render's `MaterialSource`.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use touchpoint_common::domain::{Channel, Timestamp};
use touchpoint_common::outbox::MessageStatus as S;

use crate::dispatch::engine::fixture::*;

#[test]
fn a_dealers_slot_change_reaches_messages_only_once_approved() {
    let Fx {
        dir,
        stores,
        policies,
        d,
    } = Fx::new();
    let material = Arc::new(crate::approvals::Material::new(stores.clone()));
    let fx = Fx {
        d: d.with_material(material.clone()),
        dir,
        stores,
        policies,
    };
    assert!(fx.p().brand.review.dealer_slots);
    let files = crate::policy::read_dir(&fx.path("policies"), "").unwrap();
    material.seed(&files).unwrap();
    assert_eq!(
        material.seed_slots(&fx.p()).unwrap().added,
        [tid("d001"), tid("d003")]
    );
    customers(&fx, "d001", &["K1", "K2"]);
    let old = "Ihr Serviceteam\nDaniel Winter, Serviceleitung";
    assert_eq!(fx.p().tenant(&tid("d001")).unwrap().slots["signature"], old);

    // The dealer changes its signature in its file: a proposal, not in force.
    let file = fx.path("policies/dealers/d001.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let changed = text.replace(
        "signature = \"Ihr Serviceteam\\nDaniel Winter, Serviceleitung\"",
        "signature = \"Signatur NEU\"",
    );
    assert_ne!(changed, text);
    std::fs::write(&file, changed).unwrap();
    fx.policies
        .reload(|p| {
            let s = material.seed_slots(p).unwrap();
            assert_eq!(s.proposed, [(tid("d001"), 1)]);
            Ok(())
        })
        .unwrap();
    assert_eq!(
        fx.p().tenant(&tid("d001")).unwrap().slots["signature"],
        "Signatur NEU"
    );

    let store = fx.store("d001");
    let m1 = draft(
        &store,
        "K1",
        Channel::Email,
        "service_due",
        Some(VIN_A),
        today(),
    );
    fx.queued("d001", &m1);
    let before = fx.claim_emails("d001", now(), 8);
    assert_eq!(before.len(), 1);
    let body = &before[0].1;
    assert!(body.contains(old), "{body}");
    assert!(!body.contains("Signatur NEU"), "{body}");

    // A message rendered (checked) already, to be sent later.
    let mut m3 = draft(
        &store,
        "K2",
        Channel::Email,
        "service_due",
        Some(VIN_B),
        today().add_days(5),
    );
    fx.put("d001", &m3);
    m3.set_status(Timestamp::now(), S::Rendered, "rendered");
    fx.rewrite("d001", m3.clone());

    // Approved by a reviewer: in force at once, rendered messages again.
    material.approve(1, "bob", 1002, "ok").unwrap();
    assert_eq!(
        fx.d.rerender_tenant_slots(&tid("d001"), "proposal #1 approved by bob")
            .unwrap(),
        (1, 0)
    );
    let m3 = fx.message("d001", m3.id);
    assert_eq!(m3.status, S::Rendered);
    let (_, line) = last_history(&m3);
    assert!(
        line.starts_with(
            "re-rendered with the dealer's slots in force (template service_due version "
        ) && line.ends_with("): proposal #1 approved by bob"),
        "{line}"
    );

    let m2 = draft(
        &store,
        "K2",
        Channel::Email,
        "service_due",
        Some(VIN_B),
        today(),
    );
    fx.queued("d001", &m2);
    let after = fx.claim_emails("d001", now(), 8);
    assert_eq!(after.iter().map(|e| e.0).collect::<Vec<_>>(), [m2.id]);
    let body = &after[0].1;
    assert!(body.contains("Signatur NEU"), "{body}");
    assert!(!body.contains("Daniel Winter"), "{body}");

    // With the review off, the file's slots are used as they are.
    let brand = fx.path("policies/brand.toml");
    let b = std::fs::read_to_string(&brand).unwrap();
    std::fs::write(
        &brand,
        b.replace("dealer_slots = true", "dealer_slots = false"),
    )
    .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("Signatur NEU", "Signatur DREI")).unwrap();
    fx.policies
        .reload(|p| {
            assert_eq!(material.seed_slots(p).unwrap(), Default::default());
            Ok(())
        })
        .unwrap();
    assert!(!fx.p().brand.review.dealer_slots);
    let m4 = draft(
        &store,
        "K1",
        Channel::Email,
        "service_due",
        Some(VIN_A),
        today(),
    );
    fx.queued("d001", &m4);
    let off = fx.claim_emails("d001", now(), 8);
    assert_eq!(off.iter().map(|e| e.0).collect::<Vec<_>>(), [m4.id]);
    let body = &off[0].1;
    assert!(body.contains("Signatur DREI"), "{body}");
}

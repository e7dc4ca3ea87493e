#![allow(clippy::unwrap_used)]

use std::path::Path;

use touchpoint_common::domain::{Address, Timestamp};
use touchpoint_common::outbox::{MessageStatus, Occasion};
use touchpoint_common::policy::{OccasionKind, PolicySet};
use touchpoint_common::TenantId;

use super::*;

const VIN: &str = "WNW1234567890ABCD";

fn shipped() -> PolicySet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    crate::policy::load_dir(&dir)
        .unwrap_or_else(|e| panic!("{e:?}"))
        .set
}

fn message(channel: Channel) -> Message {
    let due = Date::from_ymd(2026, 7, 15).unwrap();
    Message {
        id: 42,
        message_id: "<tp.d001.42@autohaus-mueller.example>".into(),
        recipient: "100234".into(),
        channel,
        service: "service_due".into(),
        template: "service_due".into(),
        occasions: vec![Occasion {
            key: format!("service_due:{VIN}:x"),
            service: "service_due".into(),
            kind: OccasionKind::ServiceDue,
            vin: Some(VIN.into()),
            due,
            reason: "12 months after the service on 2025-07-15".into(),
            value: 3800,
        }],
        send_on: due.add_days(-21),
        send_at: 9 * 60,
        cost: 2,
        value: 3800,
        status: MessageStatus::Planned,
        why: Vec::new(),
        planned_at: Timestamp(0),
        policy: 0,
        history: Vec::new(),
        dispatch: Default::default(),
    }
}

/// One context renders a message for its channel: the email's parts, the
/// printed letter around its body, the call centre's script.
#[test]
fn a_context_renders_each_channel_and_checks_with_the_version_in_force() {
    let set = shipped();
    let tenant = set.tenant(&TenantId::new("d001").unwrap()).unwrap();
    let renderer = Renderer::new(&set).unwrap();
    let cx = Context {
        renderer: &renderer,
        brand: &set.brand,
        tenant,
        today: Date::from_ymd(2026, 6, 24).unwrap(),
    };
    let customer = Customer {
        customer_no: "100234".into(),
        first_name: "Anna".into(),
        last_name: "Berg".into(),
        address: Address {
            street: "Lindenstraße".into(),
            house_no: "4".into(),
            postcode: "80807".into(),
            city: "München".into(),
            country: "DE".into(),
        },
        email: Some("anna@example.org".into()),
        phone: Some("+49 89 1234567".into()),
        ..Customer::default()
    };
    let vehicles = [Vehicle {
        vin: VIN.into(),
        customer_no: "100234".into(),
        model: "Fjord".into(),
        ..Vehicle::default()
    }];
    let link = "https://service.example/abmelden?t=1";

    let email = message(Channel::Email);
    let Rendered::Email(e) = cx.render(&email, &customer, &vehicles, link).unwrap() else {
        panic!("an email message renders as an email");
    };
    assert!(e.subject.contains("Fjord"), "{}", e.subject);
    assert!(e.text.contains(link), "{}", e.text);

    let post = message(Channel::Post);
    let Rendered::Letter(l) = cx.render(&post, &customer, &vehicles, link).unwrap() else {
        panic!("a post message renders as a letter");
    };
    assert_eq!(l.message, 42);
    assert_eq!(l.date, "24.06.2026");
    assert_eq!(
        l.address,
        ["Anna Berg", "Lindenstraße 4", "80807 München"],
        "{l:?}"
    );
    assert!(l.body.contains(&format!("Fjord (FIN {VIN})")), "{}", l.body);
    assert!(!l.body.contains(link), "{}", l.body);
    assert_eq!(l, cx.letter(&email, &customer, &vehicles).unwrap());

    let call = message(Channel::Phone);
    let Rendered::Call(script) = cx.render(&call, &customer, &vehicles, link).unwrap() else {
        panic!("a phone message renders as a call script");
    };
    assert!(
        script.starts_with("Call Anna Berg (+49 89 1234567) for "),
        "{script}"
    );

    let version = renderer.version("service_due").unwrap();
    for m in [&email, &post, &call] {
        assert_eq!(cx.check(m, &customer, &vehicles).unwrap(), version);
    }
    let mut gone = message(Channel::Email);
    gone.template = "gone".into();
    assert!(matches!(
        cx.check(&gone, &customer, &vehicles),
        Err(RenderError::UnknownTemplate(t)) if t == "gone"
    ));
}

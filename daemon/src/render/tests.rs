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

fn anna() -> Customer {
    Customer {
        customer_no: "100234".into(),
        salutation: touchpoint_common::domain::Salutation::Ms,
        first_name: "Anna".into(),
        last_name: "Berg".into(),
        email: Some("anna@example.org".into()),
        ..Customer::default()
    }
}

fn fjord() -> Vehicle {
    Vehicle {
        vin: VIN.into(),
        customer_no: "100234".into(),
        model: "Fjord".into(),
        next_inspection: Some(Date::from_ymd(2026, 7, 15).unwrap()),
        ..Vehicle::default()
    }
}

fn occasion_of(kind: OccasionKind, service: &str, due: Date) -> Occasion {
    Occasion {
        key: format!("{service}:{VIN}:x"),
        service: service.into(),
        kind,
        vin: Some(VIN.into()),
        due,
        reason: "test".into(),
        value: 0,
    }
}

/// What a render context borrows: the shipped policies, their renderer
/// and dealer d001's policy (a test may change its slots).
struct Shipped {
    set: PolicySet,
    renderer: Renderer,
    tenant: TenantPolicy,
}

impl Shipped {
    fn new() -> Self {
        let set = shipped();
        let tenant = set.tenant(&TenantId::new("d001").unwrap()).unwrap().clone();
        let renderer = Renderer::new(&set).unwrap();
        Self {
            set,
            renderer,
            tenant,
        }
    }

    fn cx(&self, today: Date) -> Context<'_> {
        Context {
            renderer: &self.renderer,
            brand: &self.set.brand,
            tenant: &self.tenant,
            today,
        }
    }
}

/// Every template that can lead a bundle, with every other vehicle
/// occasion bundled in: each occasion's line carries its own kind's words
/// (a warranty letter once said "Inspektion …: endet am").
#[test]
fn each_occasion_of_a_bundle_is_worded_as_its_own_kind_in_every_template() {
    let sh = Shipped::new();
    let (set, cx) = (&sh.set, sh.cx(Date::from_ymd(2026, 6, 24).unwrap()));
    let due = Date::from_ymd(2026, 7, 15).unwrap();
    let kinds: Vec<(String, OccasionKind, String)> = set
        .brand
        .services
        .iter()
        .filter(|(_, s)| s.occasion.per_vehicle() && s.occasion != OccasionKind::AfterVisit)
        .map(|(id, s)| (id.clone(), s.occasion, s.name.clone()))
        .collect();
    assert!(kinds.len() >= 3, "{kinds:?}");
    let words = |k: OccasionKind| match k {
        OccasionKind::WarrantyEnd => "endet am 15.07.2026",
        _ => "fällig am 15.07.2026",
    };
    for (lead, lead_kind, _) in &kinds {
        for (other, other_kind, other_title) in &kinds {
            if other == lead {
                continue;
            }
            let mut m = message(Channel::Email);
            m.service = lead.clone();
            m.template = set.brand.services[lead].template.clone();
            m.occasions = vec![
                occasion_of(*lead_kind, lead, due),
                occasion_of(*other_kind, other, due),
            ];
            let Rendered::Email(e) = cx
                .render(&m, &anna(), &[fjord()], "https://u.example/x")
                .unwrap()
            else {
                panic!("an email");
            };
            let mut post = m.clone();
            post.channel = Channel::Post;
            let letter = cx.letter(&post, &anna(), &[fjord()]).unwrap().body;
            for (part, text) in [("text", &e.text), ("letter", &letter)] {
                let line = text
                    .lines()
                    .find(|l| l.trim_start().starts_with(&format!("- {other_title} ")))
                    .unwrap_or_else(|| {
                        panic!("{lead}+{other} {part}: no line for {other_title}:\n{text}")
                    });
                assert!(
                    line.contains("für Ihren Fjord") && line.contains(words(*other_kind)),
                    "{lead}+{other} {part}: {line}"
                );
            }
        }
    }
}

/// An inspection recorded for a day gone by is planned as due today; the
/// customer is told it is overdue since its real date.
#[test]
fn an_overdue_inspection_is_worded_as_overdue_since_its_recorded_date() {
    let sh = Shipped::new();
    let today = Date::from_ymd(2026, 4, 6).unwrap();
    let (set, cx) = (&sh.set, sh.cx(today));
    let hu = set
        .brand
        .services
        .iter()
        .find(|(_, s)| s.occasion == OccasionKind::InspectionDue)
        .map(|(id, _)| id.clone())
        .unwrap();
    let mut m = message(Channel::Email);
    m.service = hu.clone();
    m.template = set.brand.services[&hu].template.clone();
    m.occasions = vec![occasion_of(OccasionKind::InspectionDue, &hu, today)];
    let car = Vehicle {
        next_inspection: Some(Date::from_ymd(2026, 3, 1).unwrap()),
        ..fjord()
    };
    let Rendered::Email(e) = cx
        .render(&m, &anna(), &[car], "https://u.example/x")
        .unwrap()
    else {
        panic!("an email");
    };
    assert!(e.text.contains("überfällig seit 01.03.2026"), "{}", e.text);
    assert!(!e.text.contains("06.04.2026"), "{}", e.text);
}

/// A slot the brand declares multi-line keeps its line break: `<br>` in
/// HTML (its text still escaped), a new line in the text and the letter.
#[test]
fn a_multi_line_slot_breaks_its_lines_in_html_and_in_the_letter() {
    let mut sh = Shipped::new();
    assert!(sh.set.brand.slots["signature"].multiline);
    sh.tenant.slots.insert(
        "signature".into(),
        "Ihr Serviceteam\nTim Fößel & <Partner>".into(),
    );
    let cx = sh.cx(Date::from_ymd(2026, 6, 24).unwrap());
    let Rendered::Email(e) = cx
        .render(
            &message(Channel::Email),
            &anna(),
            &[fjord()],
            "https://u.example/x",
        )
        .unwrap()
    else {
        panic!("an email");
    };
    assert!(
        e.html
            .contains("Ihr Serviceteam<br>\nTim Fößel &amp; &lt;Partner&gt;"),
        "{}",
        e.html
    );
    assert!(
        e.text.contains("Ihr Serviceteam\nTim Fößel & <Partner>"),
        "{}",
        e.text
    );
    let letter = cx
        .letter(&message(Channel::Post), &anna(), &[fjord()])
        .unwrap();
    assert!(
        letter.body.contains("Ihr Serviceteam\nTim Fößel"),
        "{}",
        letter.body
    );
}

/// A person with a company on record is greeted as the person and gets
/// the company as a line of the address; a company is addressed by name.
#[test]
fn a_person_with_a_company_keeps_the_salutation_and_gets_an_address_line() {
    let sh = Shipped::new();
    let cx = sh.cx(Date::from_ymd(2026, 6, 24).unwrap());
    let person = Customer {
        company: Some("Berg Bau GmbH".into()),
        address: Address {
            street: "Lindenstraße".into(),
            house_no: "4".into(),
            postcode: "80807".into(),
            city: "München".into(),
            country: "DE".into(),
        },
        ..anna()
    };
    let l = cx
        .letter(&message(Channel::Post), &person, &[fjord()])
        .unwrap();
    assert_eq!(
        l.address,
        [
            "Anna Berg",
            "Berg Bau GmbH",
            "Lindenstraße 4",
            "80807 München"
        ]
    );
    assert!(l.body.contains("Sehr geehrte Frau Berg,"), "{}", l.body);
    let company = Customer {
        is_company: true,
        ..person
    };
    let l = cx
        .letter(&message(Channel::Post), &company, &[fjord()])
        .unwrap();
    assert_eq!(
        l.address,
        ["Berg Bau GmbH", "Lindenstraße 4", "80807 München"]
    );
}

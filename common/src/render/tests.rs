#![allow(clippy::unwrap_used)]

use crate::domain::{Channel, Timestamp};
use crate::outbox::MessageStatus;
use crate::policy::shipped;
use crate::template::Template;
use crate::TenantId;

use super::*;

fn d001(set: &PolicySet) -> TenantPolicy {
    set.tenant(&TenantId::new("d001").unwrap()).unwrap().clone()
}

fn date(y: i32, m: u32, d: u32) -> Date {
    Date::from_ymd(y, m, d).unwrap()
}

fn customer(salutation: Salutation, first: &str, last: &str) -> Customer {
    Customer {
        customer_no: "100234".into(),
        salutation,
        first_name: first.into(),
        last_name: last.into(),
        email: Some("j.mueller@example.org".into()),
        ..Customer::default()
    }
}

fn vehicle(vin: &str, model: &str) -> Vehicle {
    Vehicle {
        vin: vin.into(),
        customer_no: "100234".into(),
        make: "Nordwagen".into(),
        model: model.into(),
        first_registration: Some(date(2021, 3, 5)),
        ..Vehicle::default()
    }
}

fn occ(service: &str, kind: OccasionKind, vin: Option<&str>, due: Date, reason: &str) -> Occasion {
    Occasion {
        key: format!("{service}:{}:x", vin.unwrap_or("c")),
        service: service.into(),
        kind,
        vin: vin.map(str::to_string),
        due,
        reason: reason.into(),
        value: 3800,
    }
}

fn message(template: &str, occasions: Vec<Occasion>) -> Message {
    Message {
        id: 42,
        message_id: "<tp.d001.42@autohaus-mueller.example>".into(),
        recipient: "100234".into(),
        channel: Channel::Email,
        service: occasions[0].service.clone(),
        template: template.into(),
        occasions,
        send_on: date(2026, 6, 2),
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

const VIN_A: &str = "WNW1234567890ABCD";
const VIN_B: &str = "WNW9876543210WXYZ";

fn service_message() -> Message {
    message(
            "service_due",
            vec![occ(
                "service_due",
                OccasionKind::ServiceDue,
                Some(VIN_A),
                date(2026, 7, 15),
                "66000 km projected on 2026-07-15 at 100 km/day from 30000 km on 2025-01-19 to 36000 km on 2025-03-20",
            )],
        )
}

struct Fixture {
    set: PolicySet,
    tenant: TenantPolicy,
    customer: Customer,
    vehicles: Vec<Vehicle>,
    message: Message,
}

impl Fixture {
    fn new() -> Self {
        let set = shipped();
        let tenant = d001(&set);
        Fixture {
            set,
            tenant,
            customer: customer(Salutation::Ms, "Jürgen-Ülrike", "Müller-Lüdenscheidt"),
            vehicles: vec![
                vehicle(VIN_A, "Kombi Größe L"),
                vehicle(VIN_B, "Cityflitzer"),
            ],
            message: service_message(),
        }
    }

    fn input(&self) -> RenderInput<'_> {
        RenderInput {
            brand: &self.set.brand,
            tenant: &self.tenant,
            customer: &self.customer,
            vehicles: &self.vehicles,
            message: &self.message,
            today: date(2026, 6, 2),
            unsubscribe_url: Some("https://service.nordwagen.example/abmelden?t=d001.42.abc"),
        }
    }

    fn email(&self) -> RenderedEmail {
        Renderer::new(&self.set)
            .unwrap()
            .email(&self.input())
            .unwrap()
    }
}

#[test]
fn email_of_the_shipped_service_template_with_umlauts() {
    let f = Fixture::new();
    let e = f.email();
    assert_eq!(e.subject, "Ihr Kombi Größe L: Zeit für die Inspektion");
    assert!(
        e.text
            .starts_with("Sehr geehrte Frau Müller-Lüdenscheidt,\n"),
        "{}",
        e.text
    );
    assert!(
        e.text.contains(
            "  - Inspektion für Ihren Kombi Größe L: fällig am 15.07.2026 (bei etwa 66.000 km)"
        ),
        "{}",
        e.text
    );
    assert!(
        e.text.contains("telefonisch unter +49 89 637321-0"),
        "{}",
        e.text
    );
    assert!(e
        .text
        .contains("Öffnungszeiten: Mo–Fr 7:30–18:00 Uhr, Sa 9:00–13:00 Uhr"));
    assert!(e.text.contains("Ihr Serviceteam\nDaniel Winter, Serviceleitung\nAutohaus Müller GmbH\nSiemensstraße 66, 80807 München\n"), "{}", e.text);
    assert!(e
        .text
        .contains("Abmelden: https://service.nordwagen.example/abmelden?t=d001.42.abc\n"));
    assert!(
        e.html
            .contains("<p>Sehr geehrte Frau Müller-Lüdenscheidt,</p>"),
        "{}",
        e.html
    );
    assert!(
        e.html.contains("<a href=\"tel:+49 89 637321-0\">"),
        "{}",
        e.html
    );
    // An URL in an attribute is escaped as HTML requires, and still the same link.
    assert!(
        e.html.contains(
            "<a href=\"https:&#x2f;&#x2f;service.nordwagen.example&#x2f;abmelden?t=d001.42.abc\">"
        ) || e
            .html
            .contains("<a href=\"https://service.nordwagen.example/abmelden?t=d001.42.abc\">"),
        "{}",
        e.html
    );
    for part in [&e.subject, &e.text, &e.html] {
        assert!(!part.contains("{{") && !part.contains("{%"), "{part}");
    }
}

#[test]
fn a_slot_with_markup_is_escaped_in_html_and_literal_in_text() {
    let mut f = Fixture::new();
    let evil = "<script>alert(\"x\")</script> & Co";
    f.tenant.slots.insert("local_offer".into(), evil.into());
    let e = f.email();
    assert!(e.text.contains(evil), "{}", e.text);
    assert!(!e.html.contains("<script>"), "{}", e.html);
    assert!(
        e.html
            .contains("&lt;script&gt;alert(&quot;x&quot;)&lt;&#x2f;script&gt; &amp; Co"),
        "{}",
        e.html
    );
    let letter = Renderer::new(&f.set).unwrap().letter(&f.input()).unwrap();
    assert!(letter.contains(evil), "{letter}");
}

#[test]
fn empty_and_missing_slots_render_empty() {
    let mut f = Fixture::new();
    f.tenant.slots.clear();
    f.tenant.slots.insert("local_offer".into(), String::new());
    let e = f.email();
    assert!(e.text.contains("\nÖffnungszeiten: \n"), "{}", e.text);
    assert!(!e.html.contains("background: #eef3f8"), "{}", e.html);
    assert!(!e.text.contains("Ersatzwagen"), "{}", e.text);
    assert!(
        e.html.contains("<p><br>Autohaus Müller GmbH<br>"),
        "{}",
        e.html
    );
}

#[test]
fn long_names_stay_whole_and_the_subject_one_line() {
    let mut f = Fixture::new();
    let long = "Freifrau von und zu Hohenzollern-Sigmaringen-Waldburg-Zeil-Trauchburg".repeat(3);
    f.customer = customer(Salutation::Mr, "Maximilian Alexander", &long);
    f.vehicles[0].model = "Kombi\n  Langversion   mit\r\nAnhängerkupplung".into();
    let e = f.email();
    assert!(e.text.starts_with(&format!("Sehr geehrter Herr {long},\n")));
    assert_eq!(
        e.subject,
        "Ihr Kombi Langversion mit Anhängerkupplung: Zeit für die Inspektion"
    );
}

#[test]
fn a_bundled_message_names_every_occasion_in_order() {
    let mut f = Fixture::new();
    f.message.occasions.push(occ(
        "hu_reminder",
        OccasionKind::InspectionDue,
        Some(VIN_B),
        date(2026, 8, 1),
        "recorded next inspection 2026-08-01",
    ));
    let e = f.email();
    let first = e
        .text
        .find("Inspektion für Ihren Kombi Größe L: fällig am 15.07.2026")
        .unwrap();
    let second = e
        .text
        .find("Hauptuntersuchung (HU) für Ihren Cityflitzer: fällig am 01.08.2026\n")
        .unwrap();
    assert!(first < second, "{}", e.text);
    assert_eq!(e.html.matches("<li>").count(), 2, "{}", e.html);
    let letter = Renderer::new(&f.set).unwrap().letter(&f.input()).unwrap();
    assert!(
        letter.contains(&format!("Cityflitzer (FIN {VIN_B}): fällig am 01.08.2026")),
        "{letter}"
    );
}

#[test]
fn the_letter_has_date_and_no_unsubscribe_link() {
    let f = Fixture::new();
    let letter = Renderer::new(&f.set).unwrap().letter(&f.input()).unwrap();
    assert!(letter.starts_with("München, 02.06.2026\n"), "{letter}");
    assert!(letter.contains(&format!(
        "Kombi Größe L (FIN {VIN_A}): fällig am 15.07.2026"
    )));
    assert!(!letter.contains("abmelden"), "{letter}");
    assert!(letter.contains("Rufen Sie uns an unter +49 89 637321-0"));
}

#[test]
fn every_shipped_template_renders_for_a_company_without_vehicle() {
    let mut f = Fixture::new();
    f.customer = Customer {
        company: Some("Spedition Özdemir & Söhne GmbH".into()),
        is_company: true,
        salutation: Salutation::Company,
        ..customer(Salutation::Company, "", "Spedition")
    };
    let r = Renderer::new(&f.set).unwrap();
    for (name, service) in [
        ("service_due", "service_due"),
        ("hu_reminder", "hu_reminder"),
        ("warranty_extension", "warranty_extension"),
        ("birthday", "birthday"),
        ("winter_check", "winter_check"),
    ] {
        // A VIN the recipient no longer holds: the vehicle renders empty.
        f.message = message(
            name,
            vec![occ(
                service,
                OccasionKind::ServiceDue,
                Some("GONE0000000000000"),
                date(2026, 7, 15),
                "",
            )],
        );
        let e = r
            .email(&f.input())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(e.text.starts_with("Guten Tag,"), "{name}: {}", e.text);
        assert!(!e.subject.is_empty() && !e.subject.contains('\n'), "{name}");
        let letter = r.letter(&f.input()).unwrap();
        assert!(letter.contains("Guten Tag,"), "{name}");
        assert!(r.version(name).is_some());
    }
}

#[test]
fn salutations() {
    let c = |s, first: &str, last: &str| salutation_line(&customer(s, first, last));
    assert_eq!(
        c(Salutation::Ms, "Anna", "Müller"),
        "Sehr geehrte Frau Müller,"
    );
    assert_eq!(
        c(Salutation::Mr, "Jörg", " Dr. Weiß "),
        "Sehr geehrter Herr Dr. Weiß,"
    );
    assert_eq!(c(Salutation::Mx, "Kim", "Ahn"), "Guten Tag Kim Ahn,");
    assert_eq!(c(Salutation::Unknown, "Kim", "Ahn"), "Guten Tag,");
    assert_eq!(c(Salutation::Company, "", "Autohaus"), "Guten Tag,");
    assert_eq!(c(Salutation::Mr, "Jörg", ""), "Guten Tag,");
}

#[test]
fn formats() {
    assert_eq!(german_date(date(2026, 7, 5)), "05.07.2026");
    assert_eq!(km(66000), "66.000");
    assert_eq!(km(1234567), "1.234.567");
    assert_eq!(km(999), "999");
    assert_eq!(
        projected_km("30000 km projected on 2026-03-28 at brand default"),
        Some(30000)
    );
    assert_eq!(
        projected_km("12 months after the service on 2025-12-01"),
        None
    );
    assert_eq!(
        projected_km("30000 km after the service on 2025-03-20 projected on 2026-01-14"),
        None
    );
    assert_eq!(one_line("  a\n b\r\n\tc  "), "a b c");
}

#[test]
fn unknown_templates_and_render_errors_are_named() {
    let mut f = Fixture::new();
    f.message.template = "nope".into();
    let r = Renderer::new(&f.set).unwrap();
    assert!(matches!(r.email(&f.input()), Err(RenderError::UnknownTemplate(n)) if n == "nope"));
    assert!(r.version("nope").is_none());

    // Valid syntax and variables, fails only with data: a name that is no number.
    let file =
        "subject = 'x'\ntext = 'x'\nhtml = '''\n\n{{ customer.last_name|int }}'''\nletter = 'x'\n";
    let t = Template::parse("broken", "templates/broken.toml", file).unwrap();
    f.set.templates.insert("broken".into(), t);
    f.message.template = "broken".into();
    let err = Renderer::new(&f.set)
        .unwrap()
        .email(&f.input())
        .unwrap_err();
    let shown = err.to_string();
    assert_eq!(
        shown,
        "broken/html:2: invalid operation: invalid float literal"
    );
}

#[test]
fn version_is_the_templates_fingerprint() {
    let set = shipped();
    let r = Renderer::new(&set).unwrap();
    for (name, t) in &set.templates {
        assert_eq!(r.version(name), Some(t.version));
    }
}

//! Personalised brand material: a message's template rendered for its
//! recipient, as the parts of an email or the body of a letter.
//!
//! A [`Renderer`] is compiled once per policy set (templates are parsed
//! once, not per message) and renders from a context of borrowed serde
//! structs: what the template headers in `policies/templates/*.toml`
//! document, nothing more. The HTML part escapes everything it inserts, so a
//! dealer's slot or a customer's name cannot inject markup; the text parts
//! and the letter insert values as they are.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::Datelike;
use minijinja::{Environment, Value};
use serde::Serialize;
use touchpoint_common::domain::{Customer, Salutation, Vehicle};
use touchpoint_common::outbox::{Message, Occasion};
use touchpoint_common::policy::{BrandPolicy, PolicySet, TenantPolicy};
use touchpoint_common::template::{self, Part};
use touchpoint_common::Date;

/// A template that would not compile or render.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("no template {0:?} in the policy set")]
    UnknownTemplate(String),
    /// `template` is `<name>/<part>` ("service_due/html").
    #[error("{template}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Template {
        template: String,
        line: Option<usize>,
        message: String,
    },
}

impl RenderError {
    fn from_minijinja(template: &str, e: &minijinja::Error) -> Self {
        let message = match e.detail() {
            Some(d) => format!("{}: {d}", e.kind()),
            None => e.kind().to_string(),
        };
        RenderError::Template {
            template: template.to_string(),
            line: e.line(),
            message,
        }
    }
}

/// Everything one message is rendered from.
pub struct RenderInput<'a> {
    pub brand: &'a BrandPolicy,
    pub tenant: &'a TenantPolicy,
    pub customer: &'a Customer,
    /// The recipient's vehicles; occasions find theirs by VIN.
    pub vehicles: &'a [Vehicle],
    pub message: &'a Message,
    /// The day of sending, printed as `today`.
    pub today: Date,
    /// The one-click unsubscribe link; email only.
    pub unsubscribe_url: Option<&'a str>,
}

/// The three parts of an email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedEmail {
    /// One line, trimmed.
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The templates of one policy set, compiled.
#[derive(Debug)]
pub struct Renderer {
    env: Environment<'static>,
    versions: BTreeMap<String, u64>,
}

impl Renderer {
    pub fn new(set: &PolicySet) -> Result<Renderer, RenderError> {
        Self::from_templates(&set.templates)
    }

    /// A renderer of the given templates (the versions in force in the
    /// central store, which may differ from the seed files).
    pub fn from_templates(
        templates: &BTreeMap<String, touchpoint_common::template::Template>,
    ) -> Result<Renderer, RenderError> {
        let mut env = template::environment();
        let mut versions = BTreeMap::new();
        for (name, t) in templates {
            for part in Part::ALL {
                let full = format!("{name}/{part}");
                env.add_template_owned(full.clone(), t.part(part).to_string())
                    .map_err(|e| RenderError::from_minijinja(&full, &e))?;
            }
            versions.insert(name.clone(), t.version);
        }
        Ok(Renderer { env, versions })
    }

    /// The version ([`touchpoint_common::template::Template::version`]) of a
    /// template, to record which material a message went out with.
    pub fn version(&self, template: &str) -> Option<u64> {
        self.versions.get(template).copied()
    }

    /// Subject, text and HTML of the message's email.
    pub fn email(&self, input: &RenderInput) -> Result<RenderedEmail, RenderError> {
        let name = self.known(&input.message.template)?;
        let ctx = context(input, input.unsubscribe_url.unwrap_or(""));
        let subject = self.render(name, Part::Subject, &ctx)?;
        Ok(RenderedEmail {
            subject: one_line(&subject),
            text: self.render(name, Part::Text, &ctx)?,
            html: self.render(name, Part::Html, &ctx)?,
        })
    }

    /// The body of the message's letter (the lettershop adds the address
    /// window and the letterhead). There is no unsubscribe link on paper.
    pub fn letter(&self, input: &RenderInput) -> Result<String, RenderError> {
        let name = self.known(&input.message.template)?;
        self.render(name, Part::Letter, &context(input, ""))
    }

    fn known<'n>(&self, name: &'n str) -> Result<&'n str, RenderError> {
        if self.versions.contains_key(name) {
            Ok(name)
        } else {
            Err(RenderError::UnknownTemplate(name.to_string()))
        }
    }

    fn render(&self, name: &str, part: Part, ctx: &Value) -> Result<String, RenderError> {
        let full = format!("{name}/{part}");
        let t = self
            .env
            .get_template(&full)
            .map_err(|e| RenderError::from_minijinja(&full, &e))?;
        t.render(ctx)
            .map_err(|e| RenderError::from_minijinja(&full, &e))
    }
}

// ----- the context ---------------------------------------------------------------

#[derive(Serialize)]
struct Ctx<'a> {
    brand: BrandCtx<'a>,
    customer: CustomerCtx<'a>,
    occasions: Vec<OccasionCtx<'a>>,
    dealer: DealerCtx<'a>,
    slots: &'a BTreeMap<String, String>,
    unsubscribe_url: &'a str,
    today: String,
}

#[derive(Serialize)]
struct BrandCtx<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct CustomerCtx<'a> {
    salutation_line: String,
    first_name: &'a str,
    last_name: &'a str,
}

#[derive(Serialize)]
struct OccasionCtx<'a> {
    service: &'a str,
    title: &'a str,
    due_date: String,
    vehicle: VehicleCtx<'a>,
}

#[derive(Serialize)]
struct VehicleCtx<'a> {
    model: &'a str,
    vin: &'a str,
    first_registration: String,
    projected_km: String,
}

#[derive(Serialize)]
struct DealerCtx<'a> {
    name: &'a str,
    street: &'a str,
    postcode: &'a str,
    city: &'a str,
    phone: &'a str,
    email: &'a str,
}

fn context(input: &RenderInput, unsubscribe_url: &str) -> Value {
    let t = input.tenant;
    let or = |a: &'_ str, b: &'_ str| -> String {
        if a.is_empty() {
            b.to_string()
        } else {
            a.to_string()
        }
    };
    // Owned only where a fallback picks between two fields.
    let (dealer_name, dealer_city) = (
        or(&t.sender.name, &t.tenant.name),
        or(&t.sender.city, &t.tenant.city),
    );
    let ctx = Ctx {
        brand: BrandCtx {
            name: &input.brand.brand.name,
        },
        customer: CustomerCtx {
            salutation_line: salutation_line(input.customer),
            first_name: input.customer.first_name.trim(),
            last_name: input.customer.last_name.trim(),
        },
        occasions: input
            .message
            .occasions
            .iter()
            .map(|o| occasion(o, input))
            .collect(),
        dealer: DealerCtx {
            name: &dealer_name,
            street: &t.sender.street,
            postcode: &t.sender.postcode,
            city: &dealer_city,
            phone: &t.sender.phone,
            email: &t.sender.email,
        },
        slots: &t.slots,
        unsubscribe_url,
        today: german_date(input.today),
    };
    Value::from_serialize(&ctx)
}

fn occasion<'a>(o: &'a Occasion, input: &RenderInput<'a>) -> OccasionCtx<'a> {
    let vehicle = o
        .vin
        .as_deref()
        .and_then(|vin| input.vehicles.iter().find(|v| v.vin == vin));
    OccasionCtx {
        service: &o.service,
        title: input
            .brand
            .services
            .get(&o.service)
            .map(|s| s.name.as_str())
            .unwrap_or(""),
        due_date: german_date(o.due),
        vehicle: match vehicle {
            Some(v) => VehicleCtx {
                model: &v.model,
                vin: &v.vin,
                first_registration: v.first_registration.map(german_date).unwrap_or_default(),
                projected_km: projected_km(&o.reason).map(km).unwrap_or_default(),
            },
            None => VehicleCtx {
                model: "",
                vin: "",
                first_registration: String::new(),
                projected_km: String::new(),
            },
        },
    }
}

/// The opening line of a message: formal by the recorded salutation, a
/// neutral greeting for companies and where the salutation is unknown.
pub fn salutation_line(c: &Customer) -> String {
    let last = c.last_name.trim();
    let first = c.first_name.trim();
    if c.is_company || last.is_empty() {
        return "Guten Tag,".into();
    }
    match c.salutation {
        Salutation::Mr => format!("Sehr geehrter Herr {last},"),
        Salutation::Ms => format!("Sehr geehrte Frau {last},"),
        Salutation::Mx if first.is_empty() => format!("Guten Tag {last},"),
        Salutation::Mx => format!("Guten Tag {first} {last},"),
        Salutation::Unknown | Salutation::Company => "Guten Tag,".into(),
    }
}

/// `15.07.2026`.
fn german_date(d: Date) -> String {
    let n = d.naive();
    let mut s = String::with_capacity(10);
    let _ = write!(s, "{:02}.{:02}.{:04}", n.day(), n.month(), n.year());
    s
}

/// `66.000`.
fn km(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('.');
        }
        out.push(c);
    }
    out
}

/// The mileage a service-due occasion was projected to reach, as the
/// planner words it ("66000 km projected on 2026-01-14 at ..."). Only a
/// mileage target is a reading to print; other reasons have none.
fn projected_km(reason: &str) -> Option<u32> {
    let (n, rest) = reason.split_once(' ')?;
    if rest.starts_with("km projected on ") {
        n.parse().ok()
    } else {
        None
    }
}

/// A subject is one header line: whitespace runs (newlines included) become
/// one space.
fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for w in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use touchpoint_common::domain::{Channel, Timestamp};
    use touchpoint_common::outbox::MessageStatus;
    use touchpoint_common::policy::OccasionKind;
    use touchpoint_common::template::Template;
    use touchpoint_common::TenantId;

    use super::*;

    fn shipped() -> PolicySet {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
        crate::policy::load_dir(&dir)
            .unwrap_or_else(|e| panic!("{e:?}"))
            .set
    }

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

    fn occ(
        service: &str,
        kind: OccasionKind,
        vin: Option<&str>,
        due: Date,
        reason: &str,
    ) -> Occasion {
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
            e.html.contains("<a href=\"https:&#x2f;&#x2f;service.nordwagen.example&#x2f;abmelden?t=d001.42.abc\">")
                || e.html.contains("<a href=\"https://service.nordwagen.example/abmelden?t=d001.42.abc\">"),
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
        let long =
            "Freifrau von und zu Hohenzollern-Sigmaringen-Waldburg-Zeil-Trauchburg".repeat(3);
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
        let file = "subject = 'x'\ntext = 'x'\nhtml = '''\n\n{{ customer.last_name|int }}'''\nletter = 'x'\n";
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
}

//! The templates of a policy set compiled, and the context they see: a
//! message's template rendered for its recipient, as the parts of an email
//! or the body of a letter.
//!
//! A [`Renderer`] is compiled once per policy set (templates are parsed
//! once, not per message) and renders from a context of borrowed serde
//! structs: what the template headers in `policies/templates/*.toml`
//! document, nothing more. The HTML part escapes everything it inserts, so a
//! dealer's slot or a customer's name cannot inject markup; the text parts
//! and the letter insert values as they are.
//!
//! Pure: no I/O. In the daemon, `render::Context` is the one place that
//! builds a [`RenderInput`] for a message (callers hand it a message and
//! its recipient); the template check ([`lint`]) builds its own for
//! the customers careless material breaks on. Here, not in the daemon, so
//! that `touchpoint policy check` checks templates exactly as the daemon
//! does.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::domain::{Customer, Salutation, Vehicle};
use crate::outbox::{Message, Occasion};
use crate::policy::{BrandPolicy, OccasionKind, PolicySet, TenantPolicy};
use crate::template::{self, Part};
use crate::Date;

pub mod lint;
use chrono::Datelike;
use minijinja::{Environment, Value};
use serde::Serialize;

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

/// What [`Renderer::marking_empty`] prints for an empty value.
pub const EMPTY_MARK: &str = "\u{2039}empty\u{203a}";

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
        templates: &BTreeMap<String, crate::template::Template>,
    ) -> Result<Renderer, RenderError> {
        Self::compile(templates, template::environment())
    }

    /// A renderer for the template check ([`lint`]): every empty
    /// value a template prints comes out as [`EMPTY_MARK`], so that the
    /// check sees where a missing vehicle or name would leave a dangling
    /// word. `{% if %}` still sees the value as it is.
    pub fn marking_empty(
        templates: &BTreeMap<String, crate::template::Template>,
    ) -> Result<Renderer, RenderError> {
        let mut env = template::environment();
        env.set_formatter(|out, state, value| {
            // Undefined is a slot the sample dealer lacks (a brand that
            // declares no slots), not the customer's data.
            let empty = value.is_none() || value.as_str().is_some_and(|s| s.trim().is_empty());
            if empty {
                out.write_str(EMPTY_MARK)
                    .map_err(|_| minijinja::Error::from(minijinja::ErrorKind::WriteFailure))
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        Self::compile(templates, env)
    }

    fn compile(
        templates: &BTreeMap<String, crate::template::Template>,
        mut env: Environment<'static>,
    ) -> Result<Renderer, RenderError> {
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

    /// The version ([`crate::template::Template::version`]) of a
    /// template, to record which material a message went out with.
    pub fn version(&self, template: &str) -> Option<u64> {
        self.versions.get(template).copied()
    }

    /// Subject, text and HTML of the message's email.
    pub fn email(&self, input: &RenderInput) -> Result<RenderedEmail, RenderError> {
        let name = self.known(&input.message.template)?;
        let url = input.unsubscribe_url.unwrap_or("");
        let ctx = context(input, url, Slots::AsWritten);
        let subject = self.render(name, Part::Subject, &ctx)?;
        Ok(RenderedEmail {
            subject: one_line(&subject),
            text: self.render(name, Part::Text, &ctx)?,
            html: self.render(name, Part::Html, &context(input, url, Slots::Html))?,
        })
    }

    /// The body of the message's letter (the lettershop adds the address
    /// window and the letterhead). There is no unsubscribe link on paper.
    pub fn letter(&self, input: &RenderInput) -> Result<String, RenderError> {
        let name = self.known(&input.message.template)?;
        self.render(name, Part::Letter, &context(input, "", Slots::AsWritten))
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
    slots: BTreeMap<&'a str, Value>,
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
    /// The occasion's kind (`service_due`, `inspection_due`, `warranty_end`,
    /// …): a bundle mixes kinds, and each is worded as its own.
    kind: &'static str,
    title: &'a str,
    due_date: String,
    /// When, in the kind's own words: `fällig am 15.07.2026`, `überfällig
    /// seit 01.03.2026`, `endet am 30.09.2026`, `am 12.05.`; empty for a
    /// campaign (its date is the campaign's, not the customer's).
    when: String,
    /// An inspection or service whose recorded date has passed: that date.
    overdue_since: String,
    /// `für Ihren Golf`; `für Ihr Fahrzeug` when the vehicle or its model is
    /// not known; empty for an occasion of the person (birthday, campaign).
    for_vehicle: String,
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

/// How the dealer's slots are inserted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slots {
    /// As the dealer wrote them: text parts and the letter keep line breaks.
    AsWritten,
    /// For HTML: a multi-line slot's breaks become `<br>`, everything else
    /// escaped as the environment escapes any value.
    Html,
}

/// The slots as a part sees them. In HTML, a slot the brand declares
/// `multiline` is escaped here and its line breaks become `<br>` (marked
/// safe, so the environment does not escape the tags again); every other
/// slot is left to the environment's escaping.
fn slots<'a>(input: &RenderInput<'a>, how: Slots) -> BTreeMap<&'a str, Value> {
    input
        .tenant
        .slots
        .iter()
        .map(|(k, v)| {
            let multiline = input.brand.slots.get(k).is_some_and(|s| s.multiline);
            let value = if how == Slots::Html && multiline {
                // Escaped as the environment escapes any value in HTML.
                let lines: Vec<String> = v
                    .lines()
                    .map(|l| minijinja::HtmlEscape(l).to_string())
                    .collect();
                Value::from_safe_string(lines.join("<br>\n"))
            } else {
                Value::from(v.as_str())
            };
            (k.as_str(), value)
        })
        .collect()
}

fn context(input: &RenderInput, unsubscribe_url: &str, how: Slots) -> Value {
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
        slots: slots(input, how),
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
    let overdue = overdue_since(o, vehicle);
    OccasionCtx {
        service: &o.service,
        kind: o.kind.as_str(),
        when: when(o, overdue),
        overdue_since: overdue.map(german_date).unwrap_or_default(),
        for_vehicle: for_vehicle(o, vehicle),
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

/// An overdue inspection is planned as due on the day it is found (it
/// cannot be reminded for a day gone by); the vehicle's recorded date is
/// the one the customer is told.
fn overdue_since(o: &Occasion, vehicle: Option<&Vehicle>) -> Option<Date> {
    match o.kind {
        OccasionKind::InspectionDue => vehicle?.next_inspection.filter(|d| *d < o.due),
        _ => None,
    }
}

fn when(o: &Occasion, overdue: Option<Date>) -> String {
    if let Some(d) = overdue {
        return format!("überfällig seit {}", german_date(d));
    }
    let due = german_date(o.due);
    match o.kind {
        OccasionKind::ServiceDue | OccasionKind::InspectionDue => format!("fällig am {due}"),
        OccasionKind::WarrantyEnd => format!("endet am {due}"),
        OccasionKind::Birthday => format!("am {}", &due[..6]),
        // A follow-up of a visit, a campaign and a journey stage have no
        // date of the customer's.
        OccasionKind::AfterVisit | OccasionKind::Campaign | OccasionKind::Journey => String::new(),
    }
}

/// Models are masculine in German ("der Golf"); an unknown one is "Ihr
/// Fahrzeug", never a dangling "Ihren".
fn for_vehicle(o: &Occasion, vehicle: Option<&Vehicle>) -> String {
    let model = vehicle.map(|v| v.model.trim()).unwrap_or("");
    match (o.kind.per_vehicle() || o.vin.is_some(), model.is_empty()) {
        (false, _) => String::new(),
        (true, true) => "für Ihr Fahrzeug".into(),
        (true, false) => format!("für Ihren {model}"),
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
mod tests;

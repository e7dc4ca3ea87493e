//! The template check's trial renders: every template rendered for the
//! customers careless material breaks on (one without a vehicle, a
//! company, a fleet of 40 vehicles, a very long name) and for a bundle of
//! every kind of occasion. A template fails the check when a render fails
//! or when it prints an empty value: that is where a missing model or name
//! leaves a dangling word ("Hauptuntersuchung für Ihren –"). Material
//! guards such values with `{% if %}` or uses the occasion's worded fields
//! (`o.for_vehicle`, `o.when`).
//!
//! Run by [`validate`] (a policy set as the daemon loads it and as
//! `touchpoint policy check` checks it) and on every proposal.

use std::collections::BTreeMap;

use super::{RenderInput, Renderer, EMPTY_MARK};
use crate::domain::{Channel, Customer, Salutation, Timestamp, Vehicle};
use crate::outbox::{Dispatch, Message, MessageStatus, Occasion};
use crate::policy::{
    BrandPolicy, OccasionKind, PolicySet, Sender, TenantChannels, TenantInfo, TenantPolicy,
};
use crate::template::{Part, Template};
use crate::toml_file::ConfigError;
use crate::{Date, TenantId};

/// At most this many findings per template: one broken line shows in
/// every case.
const MAX_FINDINGS: usize = 6;

/// [`PolicySet::validate`] and then the trial renders of its templates:
/// how the daemon loads a policy set and `touchpoint policy check` checks
/// one. Errors name files as `validate` does (`shown` prefixes them).
pub fn validate(
    files: &BTreeMap<String, String>,
    shown: &str,
) -> Result<PolicySet, Vec<ConfigError>> {
    let set = PolicySet::validate(files, shown)?;
    let errors: Vec<ConfigError> = check(&set.templates, &set.brand)
        .into_iter()
        .map(|mut e| {
            e.line = files
                .get(&e.file)
                .and_then(|text| crate::toml_file::line_of_key(text, &e.key));
            e.file = crate::policy::shown_path(shown, &e.file);
            e
        })
        .collect();
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors)
    }
}

/// Problems of `templates` (by name) under `brand`, as policy errors of
/// `templates/<name>.toml`; empty when every trial render is clean.
pub fn check(templates: &BTreeMap<String, Template>, brand: &BrandPolicy) -> Vec<ConfigError> {
    let renderer = match Renderer::marking_empty(templates) {
        Ok(r) => r,
        // Not compiling is reported by the template's own parse.
        Err(_) => return Vec::new(),
    };
    let tenant = sample_dealer(brand);
    let today = Date::from_ymd(2026, 6, 2).unwrap_or_else(Date::today);
    let mut errors = Vec::new();
    for name in templates.keys() {
        let mut found: Vec<(Part, String)> = Vec::new();
        for case in cases(name, brand, today) {
            let input = RenderInput {
                brand,
                tenant: &tenant,
                customer: &case.customer,
                vehicles: &case.vehicles,
                message: &case.message,
                today,
                unsubscribe_url: Some("https://unsubscribe.invalid/x"),
            };
            let parts = renderer.email(&input).and_then(|e| {
                let letter = renderer.letter(&RenderInput {
                    unsubscribe_url: None,
                    ..input
                })?;
                Ok([
                    (Part::Subject, e.subject),
                    (Part::Text, e.text),
                    (Part::Html, e.html),
                    (Part::Letter, letter),
                ])
            });
            let parts = match parts {
                Ok(p) => p,
                Err(e) => {
                    found.push((Part::Text, format!("does not render for {}: {e}", case.who)));
                    continue;
                }
            };
            for (part, out) in parts {
                for line in out.lines().filter(|l| l.contains(EMPTY_MARK)) {
                    let msg = format!(
                        "prints an empty value for {}: {:?}; guard it with {{% if … %}} or use o.for_vehicle / o.when",
                        case.who,
                        shown(line)
                    );
                    if !found.iter().any(|(p, m)| *p == part && *m == msg) {
                        found.push((part, msg));
                    }
                }
            }
        }
        for (part, message) in found.into_iter().take(MAX_FINDINGS) {
            errors.push(ConfigError {
                file: format!("templates/{name}.toml"),
                line: None,
                key: part.as_str().to_string(),
                message,
            });
        }
    }
    errors
}

/// A line as the finding quotes it: trimmed, without markup, bounded.
fn shown(line: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in line.trim().chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out.replace(EMPTY_MARK, "‹empty›");
    match out.char_indices().nth(160) {
        Some((i, _)) => format!("{}…", &out[..i]),
        None => out,
    }
}

struct Case {
    who: &'static str,
    customer: Customer,
    vehicles: Vec<Vehicle>,
    message: Message,
}

fn cases(template: &str, brand: &BrandPolicy, today: Date) -> Vec<Case> {
    // The service whose material this is; a template no service uses is
    // tried as a service reminder.
    let (service, kind) = brand
        .services
        .iter()
        .find(|(_, s)| s.template == template)
        .map(|(id, s)| (id.clone(), s.occasion))
        .unwrap_or_else(|| (template.to_string(), OccasionKind::ServiceDue));
    let person = Customer {
        customer_no: "L1".into(),
        salutation: Salutation::Ms,
        first_name: "Anna".into(),
        last_name: "Berg".into(),
        email: Some("anna.berg@example.org".into()),
        ..Customer::default()
    };
    let company = Customer {
        customer_no: "L2".into(),
        salutation: Salutation::Company,
        company: Some("Berg Logistik GmbH & Co. KG".into()),
        is_company: true,
        email: Some("fuhrpark@example.org".into()),
        ..Customer::default()
    };
    let long = Customer {
        customer_no: "L3".into(),
        salutation: Salutation::Mr,
        first_name: "Maximilian-Alexander Friedrich Wilhelm".into(),
        last_name: "von Hohenberg-Schwarzenfels zu Lichtenstein-Obernkirchen".into(),
        email: Some("m.hohenberg@example.org".into()),
        ..Customer::default()
    };
    let car = |n: usize, owner: &str| Vehicle {
        vin: format!("WNWLINT{n:010}"),
        customer_no: owner.to_string(),
        make: "Nordwagen".into(),
        model: "Fjord".into(),
        first_registration: Some(today.add_days(-900)),
        ..Vehicle::default()
    };
    let due = today.add_days(21);
    let occasion = |kind: OccasionKind, service: &str, vin: Option<String>| Occasion {
        key: format!("{service}:lint"),
        service: service.to_string(),
        kind,
        vin,
        due,
        reason: "template check".into(),
        value: 0,
    };
    let message = |customer: &Customer, occasions: Vec<Occasion>| Message {
        id: 1,
        message_id: "<tp.lint.1@touchpoint.invalid>".into(),
        recipient: customer.customer_no.clone(),
        channel: Channel::Email,
        service: service.clone(),
        template: template.to_string(),
        occasions,
        send_on: today,
        send_at: 9 * 60,
        cost: 0,
        value: 0,
        status: MessageStatus::Planned,
        why: Vec::new(),
        planned_at: Timestamp(0),
        policy: 0,
        history: Vec::new(),
        dispatch: Dispatch::default(),
    };
    let mut out = Vec::new();
    // Without a vehicle: the occasion names none (a person's occasion, or
    // a vehicle gone since planning).
    out.push(Case {
        who: "a customer without a vehicle",
        message: message(&person, vec![occasion(kind, &service, None)]),
        customer: person.clone(),
        vehicles: Vec::new(),
    });
    let one = car(0, "L2");
    out.push(Case {
        who: "a company",
        message: message(
            &company,
            vec![occasion(kind, &service, Some(one.vin.clone()))],
        ),
        customer: company.clone(),
        vehicles: vec![one],
    });
    let fleet: Vec<Vehicle> = (1..=40).map(|n| car(n, "L2")).collect();
    out.push(Case {
        who: "a fleet of 40 vehicles",
        message: message(
            &company,
            fleet
                .iter()
                .map(|v| occasion(kind, &service, Some(v.vin.clone())))
                .collect(),
        ),
        customer: company,
        vehicles: fleet,
    });
    let theirs = car(41, "L3");
    out.push(Case {
        who: "a customer with a very long name",
        message: message(
            &long,
            vec![occasion(kind, &service, Some(theirs.vin.clone()))],
        ),
        customer: long,
        vehicles: vec![theirs],
    });
    // A bundle: this service's occasion first, then one of every other
    // kind for the same vehicle, each to be worded as its own.
    let v = car(42, "L1");
    let mut bundle = vec![occasion(kind, &service, Some(v.vin.clone()))];
    for (id, s) in &brand.services {
        if s.occasion != kind && s.occasion.per_vehicle() {
            bundle.push(occasion(s.occasion, id, Some(v.vin.clone())));
        }
    }
    out.push(Case {
        who: "a bundle of every kind of occasion",
        message: message(&person, bundle),
        customer: person,
        vehicles: vec![v],
    });
    out
}

/// A dealer with every field and every declared slot filled (multi-line
/// slots with two lines), so that only the customer's data can be empty.
fn sample_dealer(brand: &BrandPolicy) -> TenantPolicy {
    TenantPolicy {
        tenant: TenantInfo {
            id: TenantId::new("lint").unwrap_or_else(|e| unreachable!("{e}")),
            name: "Autohaus Beispiel".into(),
            city: "Musterstadt".into(),
        },
        channels: TenantChannels::default(),
        sender: Sender {
            name: "Autohaus Beispiel".into(),
            email: "service@autohaus-beispiel.example".into(),
            reply_to: String::new(),
            phone: "+49 30 1234567".into(),
            street: "Hauptstraße 1".into(),
            postcode: "10115".into(),
            city: "Musterstadt".into(),
        },
        services: BTreeMap::new(),
        slots: brand
            .slots
            .iter()
            .map(|(k, s)| {
                let v = if s.multiline {
                    "Ihr Serviceteam\nAnna Beispiel".to_string()
                } else {
                    "Beispiel".to_string()
                };
                (k.clone(), v)
            })
            .collect(),
        suppress: Default::default(),
        import: Default::default(),
        share: Default::default(),
    }
}

#[cfg(test)]
mod tests;

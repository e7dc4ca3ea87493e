//! `touchpoint customer`: one stored customer as text (the JSON is the
//! daemon's answer as it is). Every text that came from a dealer's export
//! or the wire goes through [`visible`].

use std::fmt::Write as _;

use touchpoint_common::domain::{JourneyTransition, VehicleStage};
use touchpoint_common::protocol::CustomerDetail;

use super::visible::visible;

fn more(out: &mut String, n: u64, what: &str) {
    if n > 0 {
        let _ = writeln!(out, "  … {n} more {what}");
    }
}

fn stage(s: Option<VehicleStage>) -> &'static str {
    s.map_or("no stage", VehicleStage::as_str)
}

fn transition(t: &JourneyTransition) -> String {
    let (day, what, from, to) = match t {
        JourneyTransition::Customer { day, from, to } => (
            *day,
            "customer".to_string(),
            from.map(|f| f.as_str()),
            to.as_str(),
        ),
        JourneyTransition::Vehicle { day, vin, from, to } => (
            *day,
            format!("vehicle {}", visible(vin)),
            from.map(|f| f.as_str()),
            to.as_str(),
        ),
    };
    match from {
        Some(f) => format!("{day}  {what}: {f} → {to}"),
        None => format!("{day}  {what}: {to} (first derived)"),
    }
}

pub fn customer(d: &CustomerDetail) -> String {
    let c = &d.customer;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "customer {} of {}: {}",
        visible(&c.customer_no),
        d.tenant,
        visible(&c.display_name())
    );
    if let Some(asked) = &d.asked_for {
        let _ = writeln!(
            out,
            "  ({} was merged into {})",
            visible(asked),
            visible(&c.customer_no)
        );
    }
    let a = &c.address;
    let _ = writeln!(
        out,
        "  address   {} {}, {} {} {}",
        visible(&a.street),
        visible(&a.house_no),
        visible(&a.postcode),
        visible(&a.city),
        visible(&a.country)
    );
    let _ = writeln!(
        out,
        "  email     {}",
        visible(c.email.as_deref().unwrap_or("–"))
    );
    let _ = writeln!(
        out,
        "  phone     {}",
        visible(c.phone.as_deref().unwrap_or("–"))
    );
    if let Some(b) = c.birth_date {
        let _ = writeln!(out, "  born      {b}");
    }
    if let Some(o) = &d.objection {
        let why = if o.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", visible(&o.reason))
        };
        let _ = writeln!(
            out,
            "  objected  to advertising (Art. 21) on {}, recorded by {}{why}; nothing is planned",
            o.at,
            visible(&o.by)
        );
    }
    match &d.journey {
        Some(j) => {
            let _ = writeln!(
                out,
                "  journey   {} (since the change of {})",
                j.stage.as_str(),
                j.changed_on
            );
        }
        None => {
            let _ = writeln!(out, "  journey   not derived yet");
        }
    }

    let _ = writeln!(
        out,
        "\nvehicles ({})",
        d.vehicles.len() as u64 + d.vehicles_more
    );
    for v in &d.vehicles {
        let x = &v.vehicle;
        let date =
            |d: Option<touchpoint_common::Date>| d.map_or("–".to_string(), |d| d.to_string());
        let _ = writeln!(
            out,
            "  {}  {} {}  {}  registered {}, warranty end {}, next HU {}",
            visible(&x.vin),
            visible(&x.make),
            visible(&x.model),
            stage(v.stage),
            date(x.first_registration),
            date(x.warranty_end),
            date(x.next_inspection)
        );
        for s in &v.visits {
            let km = s.km.map(|k| format!(", {k} km")).unwrap_or_default();
            let _ = writeln!(
                out,
                "    visit {}  {}{km}  {}",
                s.date,
                visible(&s.kind),
                visible(&s.source)
            );
        }
        if v.visits_more > 0 {
            let _ = writeln!(out, "    … {} more visits", v.visits_more);
        }
    }
    more(&mut out, d.vehicles_more, "vehicles");

    let _ = writeln!(out, "\nconsents");
    if d.consents.is_empty() {
        let _ = writeln!(out, "  none on record");
    }
    for s in &d.consents {
        let _ = writeln!(
            out,
            "  {:<6} {:<9} {}  {} ({})",
            s.channel.as_str(),
            if s.granted { "granted" } else { "withdrawn" },
            s.at,
            visible(&s.source),
            visible(&s.customer_no)
        );
    }
    more(&mut out, d.consents_more, "consents");

    if !d.merges.is_empty() {
        let _ = writeln!(out, "\nmerges");
        for m in &d.merges {
            let undone = m
                .undone_at
                .map(|t| format!(" (undone {t})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  #{} {} merged into {} at {}{undone}",
                m.merge_id,
                visible(&m.merged),
                visible(&m.survivor),
                m.at
            );
        }
        more(&mut out, d.merges_more, "merges");
    }

    if !d.responses.is_empty() {
        let _ = writeln!(out, "\nresponses");
        for r in &d.responses {
            let _ = writeln!(
                out,
                "  {}  {:<16} {}  {}",
                r.date,
                r.kind.name(),
                visible(&r.vin),
                visible(&r.source)
            );
        }
        more(&mut out, d.responses_more, "responses");
    }

    if let Some(j) = d.journey.as_ref().filter(|j| !j.transitions.is_empty()) {
        let _ = writeln!(out, "\njourney transitions (newest last)");
        for t in &j.transitions {
            let _ = writeln!(out, "  {}", transition(t));
        }
    }

    let _ = writeln!(
        out,
        "\nmessages ({})",
        d.messages.len() as u64 + d.messages_more
    );
    if d.messages.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for m in &d.messages {
        let _ = writeln!(
            out,
            "  #{:<8} {}  {:<6} {:<10} {}",
            m.id,
            m.send_on,
            m.channel.as_str(),
            m.status.as_str(),
            visible(&m.service)
        );
    }
    more(&mut out, d.messages_more, "messages");
    out
}

//! A message's content as it was (or will be) sent: its template rendered
//! for its recipient with the template version the message records, or the
//! version in force when it has not been rendered yet.
//!
//! The email's unsubscribe link carries a placeholder token (the real one is
//! signed with dispatch's secret and never shown); the dealer's slots are
//! the ones in force now.

use std::collections::BTreeMap;

use chrono::TimeZone;
use touchpoint_common::domain::{Channel, Timestamp};
use touchpoint_common::outbox::{Message, MessageStatus};
use touchpoint_common::policy::TenantPolicy;
use touchpoint_common::protocol::{MessageContent, TemplateHistory};
use touchpoint_common::template::Template;
use touchpoint_common::{Date, TenantId};

use crate::policy::Policies;
use crate::render::{RenderInput, Renderer};
use crate::store::{StoreError, Stores};

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Render(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The template a message is rendered with, its version number (0: not
/// known) and how it was chosen.
struct Chosen {
    template: Template,
    version: u32,
    note: String,
}

fn local_date(t: Timestamp) -> Option<Date> {
    chrono::Local
        .timestamp_millis_opt(t.0)
        .single()
        .map(|t| Date::from(t.date_naive()))
}

/// Renders message `id` of `tenant`.
pub fn content(
    stores: &Stores,
    p: &Policies,
    tenant: &TenantId,
    id: u64,
) -> Result<MessageContent, ContentError> {
    let tp = p
        .tenant(tenant)
        .ok_or_else(|| ContentError::NotFound(format!("no dealer policy for tenant {tenant}")))?;
    let store = stores.tenant(tenant)?;
    let m = store
        .message(id)?
        .ok_or_else(|| ContentError::NotFound(format!("tenant {tenant} has no message {id}")))?;
    let customer = store.customer(&m.recipient)?.ok_or_else(|| {
        ContentError::NotFound(format!(
            "message {id} cannot be shown: its customer {} no longer exists (merged or removed)",
            m.recipient
        ))
    })?;
    let mut vehicles = Vec::new();
    for vin in m.vins() {
        if let Some(v) = store.vehicle(vin)? {
            vehicles.push(v);
        }
    }
    let tp = with_approved_slots(stores, p, tp)?;
    let chosen = choose(stores, p, &m)?;
    let renderer =
        Renderer::from_templates(&BTreeMap::from([(m.template.clone(), chosen.template)]))
            .map_err(|e| ContentError::Render(format!("template {}: {e}", m.template)))?;
    let sent_on = m
        .history
        .iter()
        .rev()
        .find(|h| h.1 == MessageStatus::Sent)
        .and_then(|h| local_date(h.0));
    let today = sent_on.unwrap_or_else(|| m.send_on.max(Date::today()));
    let unsubscribe = format!("{}?t=…", p.brand.email.unsubscribe_url);
    let input = RenderInput {
        brand: &p.brand,
        tenant: &tp,
        customer: &customer,
        vehicles: &vehicles,
        message: &m,
        today,
        unsubscribe_url: Some(&unsubscribe),
    };
    let failed = |e: crate::render::RenderError| {
        ContentError::Render(format!("template {}: {e}", m.template))
    };
    let (subject, text, html) = match m.channel {
        Channel::Email => {
            let e = renderer.email(&input).map_err(failed)?;
            (e.subject, e.text, e.html)
        }
        Channel::Post => {
            let letter = renderer
                .letter(&RenderInput {
                    unsubscribe_url: None,
                    ..input
                })
                .map_err(failed)?;
            (String::new(), letter, String::new())
        }
        Channel::Phone => (
            String::new(),
            call_script(p, &tp, &customer, &m),
            String::new(),
        ),
    };
    Ok(MessageContent {
        tenant: tenant.clone(),
        id,
        template: m.template.clone(),
        version: chosen.version,
        note: chosen.note,
        subject,
        text,
        html,
    })
}

/// What the call centre reads: whom to call, about what, for whom.
fn call_script(
    p: &Policies,
    tp: &TenantPolicy,
    c: &touchpoint_common::domain::Customer,
    m: &Message,
) -> String {
    let service = p
        .brand
        .services
        .get(&m.service)
        .map(|s| s.name.clone())
        .unwrap_or_else(|| m.service.clone());
    let mut out = format!(
        "Call {} ({}) for {}: {}\n",
        c.display_name(),
        c.phone.as_deref().unwrap_or("no number"),
        tp.tenant.name,
        service
    );
    for o in &m.occasions {
        out.push_str(&format!("- {} (due {})\n", o.reason, o.due));
    }
    out
}

/// The dealer's policy with its approved slots when the brand reviews them.
fn with_approved_slots(
    stores: &Stores,
    p: &Policies,
    tp: &TenantPolicy,
) -> Result<TenantPolicy, ContentError> {
    let mut tp = tp.clone();
    if p.brand.review.dealer_slots {
        match crate::approvals::slots_in_store(stores, &tp.tenant.id) {
            Ok(Some(slots)) => tp.slots = slots,
            Ok(None) => {}
            Err(crate::approvals::ApprovalError::Store(e)) => return Err(e.into()),
            Err(e) => return Err(ContentError::Render(e.to_string())),
        }
    }
    Ok(tp)
}

fn parse(name: &str, version: u32, text: &str) -> Result<Template, ContentError> {
    let file = format!("templates/{name}.toml (v{version})");
    Template::parse(name, &file, text).map_err(|errs| {
        ContentError::Render(
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
}

/// The version the message records if it is known, else the one in force.
fn choose(stores: &Stores, p: &Policies, m: &Message) -> Result<Chosen, ContentError> {
    let name = m.template.as_str();
    let history: Option<TemplateHistory> = stores.central().template_history(name)?;
    let recorded = m.dispatch.template_version;
    let how = match m.status {
        MessageStatus::Sent => "the version it was sent with",
        _ => "the version it was rendered with",
    };
    if recorded != 0 {
        if let Some(v) = history
            .as_ref()
            .and_then(|h| h.versions.iter().rev().find(|v| v.fingerprint == recorded))
        {
            return Ok(Chosen {
                template: parse(name, v.version, &v.text)?,
                version: v.version,
                note: format!("rendered with v{}, {how}", v.version),
            });
        }
        // Not in the store (no material history): the policy files' may be it.
        if let Some(t) = p.templates.get(name).filter(|t| t.version == recorded) {
            return Ok(Chosen {
                template: t.clone(),
                version: 0,
                note: format!("rendered with the template file's version, {how}"),
            });
        }
    }
    let lead = if recorded != 0 {
        format!("the version it recorded ({recorded:016x}) is no longer known")
    } else {
        "not rendered yet".to_string()
    };
    if let Some(h) = &history {
        if let Some(v) = h.versions.iter().find(|v| v.version == h.in_force) {
            return Ok(Chosen {
                template: parse(name, v.version, &v.text)?,
                version: v.version,
                note: format!("{lead}: rendered with v{}, in force now", v.version),
            });
        }
    }
    match p.templates.get(name) {
        Some(t) => Ok(Chosen {
            template: t.clone(),
            version: 0,
            note: format!("{lead}: rendered with the template file in force now"),
        }),
        None => Err(ContentError::NotFound(format!(
            "message {} has template {name:?}, which is no longer in the policies",
            m.id
        ))),
    }
}

//! A message's content as it was (or will be) sent: its template rendered
//! for its recipient with the template version the message records, or the
//! version in force when it has not been rendered yet
//! ([`render::material::version_for`]).
//!
//! The email's unsubscribe link (the brand's page, or the daemon's own
//! one-click endpoint when `[http]` is on: the caller says which) carries a
//! placeholder token (the real one is signed with dispatch's secret and
//! never shown); the dealer's slots are
//! the ones in force now. A read model over the store and render: must not
//! import dispatch or approvals (the store is the material's source).

use std::collections::BTreeMap;

use chrono::TimeZone;
use touchpoint_common::domain::Timestamp;
use touchpoint_common::outbox::MessageStatus;
use touchpoint_common::protocol::MessageContent;
use touchpoint_common::{Date, TenantId};

use crate::policy::Policies;
use crate::render::{self, Context, MaterialError, Rendered, Renderer};
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

impl From<MaterialError> for ContentError {
    fn from(e: MaterialError) -> Self {
        match e {
            MaterialError::Store(e) => ContentError::Store(e),
            MaterialError::Missing(e) => ContentError::NotFound(e),
            MaterialError::Invalid(e) => ContentError::Render(e),
        }
    }
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
    one_click: Option<&str>,
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
    let vehicles = render::message_vehicles(&store, &m)?;
    let approved = render::material::tenant_in_force(stores, p, tenant)?;
    let tp = approved.as_ref().unwrap_or(tp);
    let chosen = render::material::version_for(stores, p, &m)?;
    let renderer =
        Renderer::from_templates(&BTreeMap::from([(m.template.clone(), chosen.template)]))
            .map_err(|e| ContentError::Render(format!("template {}: {e}", m.template)))?;
    let sent_on = m
        .history
        .iter()
        .rev()
        .find(|h| h.1 == MessageStatus::Sent)
        .and_then(|h| local_date(h.0));
    let cx = Context {
        renderer: &renderer,
        brand: &p.brand,
        tenant: tp,
        today: sent_on.unwrap_or_else(|| m.send_on.max(Date::today())),
    };
    // The same form of link the email carries (`[http] public_url` when set).
    let unsubscribe = match one_click {
        Some(base) => format!("{base}/u/…"),
        None => format!("{}?t=…", p.brand.email.unsubscribe_url),
    };
    let rendered = cx
        .render(&m, &customer, &vehicles, &unsubscribe)
        .map_err(|e| ContentError::Render(format!("template {}: {e}", m.template)))?;
    let (subject, text, html) = match rendered {
        Rendered::Email(e) => (e.subject, e.text, e.html),
        Rendered::Letter(l) => (String::new(), l.body, String::new()),
        Rendered::Call(script) => (String::new(), script, String::new()),
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

//! A proposal rendered for one customer of one tenant, as the reviewer
//! sees it before deciding: the email's subject and text, its HTML, the
//! letter and the letter's printed PDF page.
//!
//! The dealer's slots are the ones its messages would carry: the approved
//! values when the brand reviews dealers' slots, else its file's. A
//! proposal of a dealer's slots (`slots/<tenant-id>`) is previewed for that
//! dealer with the proposed values, in the template the caller passes.

use std::borrow::Cow;
use std::collections::BTreeMap;

use touchpoint_common::domain::{Channel, Customer, Timestamp};
use touchpoint_common::outbox::{Dispatch, Message, MessageStatus, Occasion};
use touchpoint_common::policy::TenantPolicy;
use touchpoint_common::protocol::Preview;
use touchpoint_common::template::Template;
use touchpoint_common::{Date, TenantId};

use super::slots;
use crate::policy::Policies;
use crate::render::{self, Context, MaterialError, Renderer};
use crate::store::{StoreError, Stores};

/// Customers looked at when picking a sample.
const SAMPLE_SCAN: usize = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Render(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Renders `template` (a proposal's) for `customer`, or for a customer of
/// `tenant` with an address, an email and a vehicle when none is named.
pub fn preview(
    stores: &Stores,
    p: &Policies,
    proposal: u64,
    template: &Template,
    tenant: &TenantId,
    customer: Option<&str>,
) -> Result<Preview, PreviewError> {
    let Some(tp) = p.tenant(tenant) else {
        return Err(PreviewError::NotFound(format!(
            "no dealer policy for tenant {tenant}"
        )));
    };
    let tp = with_slots(stores, p, proposal, tp)?;
    let tp = tp.as_ref();
    let store = stores.tenant(tenant)?;
    let c: Customer = match customer {
        Some(no) => store.customer(no)?.ok_or_else(|| {
            PreviewError::NotFound(format!("tenant {tenant} has no customer {no:?}"))
        })?,
        None => sample(&store)?.ok_or_else(|| {
            PreviewError::NotFound(format!("tenant {tenant} has no customers to preview with"))
        })?,
    };
    let vehicles = store.vehicles_of(&c.customer_no)?;
    let today = Date::today();
    // The service whose material this is, for the occasion's title.
    let service = p
        .brand
        .services
        .iter()
        .find(|(_, s)| s.template == template.name)
        .map(|(id, _)| id.clone())
        .unwrap_or_else(|| template.name.clone());
    let lead = p
        .brand
        .services
        .get(&service)
        .map(|s| s.lead_days)
        .unwrap_or(14);
    let due = today.add_days(lead as i32);
    let occasions: Vec<Occasion> = if vehicles.is_empty() {
        vec![Occasion {
            key: format!("{service}:preview"),
            service: service.clone(),
            kind: p
                .brand
                .services
                .get(&service)
                .map(|s| s.occasion)
                .unwrap_or(touchpoint_common::policy::OccasionKind::Campaign),
            vin: None,
            due,
            reason: "preview".into(),
            value: 0,
        }]
    } else {
        vehicles
            .iter()
            .take(2)
            .map(|v| Occasion {
                key: format!("{service}:{}:preview", v.vin),
                service: service.clone(),
                kind: p
                    .brand
                    .services
                    .get(&service)
                    .map(|s| s.occasion)
                    .unwrap_or(touchpoint_common::policy::OccasionKind::ServiceDue),
                vin: Some(v.vin.clone()),
                due,
                reason: "preview".into(),
                value: 0,
            })
            .collect()
    };
    let message = Message {
        id: 0,
        message_id: format!("<tp.{tenant}.preview@touchpoint.invalid>"),
        recipient: c.customer_no.clone(),
        channel: Channel::Email,
        service,
        template: template.name.clone(),
        occasions,
        send_on: today,
        send_at: 9 * 60,
        cost: 0,
        value: 0,
        status: MessageStatus::Planned,
        why: Vec::new(),
        planned_at: Timestamp::now(),
        policy: p.fingerprint,
        history: Vec::new(),
        dispatch: Dispatch::default(),
    };
    let renderer =
        Renderer::from_templates(&BTreeMap::from([(template.name.clone(), template.clone())]))
            .map_err(|e| PreviewError::Render(e.to_string()))?;
    let unsubscribe = format!("{}?t=preview", p.brand.email.unsubscribe_url);
    let cx = Context {
        renderer: &renderer,
        brand: &p.brand,
        tenant: tp,
        today,
    };
    let email = cx
        .email(&message, &c, &vehicles, &unsubscribe)
        .map_err(|e| PreviewError::Render(e.to_string()))?;
    let letter = cx
        .letter(&message, &c, &vehicles)
        .map_err(|e| PreviewError::Render(e.to_string()))?;
    let (pdf, _) = render::pdf::render_batch(std::slice::from_ref(&letter));
    Ok(Preview {
        proposal,
        tenant: tenant.clone(),
        customer: c.customer_no.clone(),
        subject: email.subject,
        text: email.text,
        html: email.html,
        letter: letter.body,
        pdf,
    })
}

/// The dealer's policy with the slots a preview of `proposal` shows.
fn with_slots<'a>(
    stores: &Stores,
    p: &Policies,
    proposal: u64,
    tp: &'a TenantPolicy,
) -> Result<Cow<'a, TenantPolicy>, PreviewError> {
    let tenant = &tp.tenant.id;
    let proposed = match stores.central().proposal(proposal)? {
        Some(prop) if slots::is_slots(&prop.template) => {
            if slots::tenant_of(&prop.template).as_ref() != Some(tenant) {
                return Err(PreviewError::NotFound(format!(
                    "proposal #{proposal} changes {}; preview it for that dealer, not {tenant}",
                    prop.template
                )));
            }
            let file = super::proposal_file(&prop.template);
            Some(slots::from_text(&file, &prop.text).map_err(|e| {
                PreviewError::Render(
                    e.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            })?)
        }
        _ => None,
    };
    Ok(match proposed {
        Some(v) if v != tp.slots => {
            let mut t = tp.clone();
            t.slots = v;
            Cow::Owned(t)
        }
        Some(_) => Cow::Borrowed(tp),
        None => match render::material::tenant_in_force(stores, p, tenant) {
            Ok(Some(t)) => Cow::Owned(t),
            Ok(None) => Cow::Borrowed(tp),
            Err(MaterialError::Store(e)) => return Err(PreviewError::Store(e)),
            Err(e) => return Err(PreviewError::Render(e.to_string())),
        },
    })
}

/// A customer who shows the most of a template: address, email, vehicles.
fn sample(store: &crate::store::TenantStore) -> Result<Option<Customer>, StoreError> {
    let mut fallback = None;
    for c in store.customers().take(SAMPLE_SCAN) {
        let c = c?;
        let complete = c.email.is_some() && !c.address.street.is_empty() && !c.is_company;
        if complete && !store.vehicles_of(&c.customer_no)?.is_empty() {
            return Ok(Some(c));
        }
        fallback.get_or_insert(c);
    }
    Ok(fallback)
}

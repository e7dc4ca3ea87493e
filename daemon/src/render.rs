//! Render this message: a message's template rendered for its recipient,
//! as the three parts of an email, a printed letter or a call's script.
//!
//! Owns the templates compiled and the context they see ([`templates`]),
//! what a letter says around its body and how it is laid out on paper
//! ([`letter`], [`pdf`]), and which material a message renders with: the
//! templates and dealers' slots in force, or the version a message recorded
//! ([`material`]). [`Context`] is the one way to render a message: dispatch
//! sends what it gives, approvals previews it, the console shows it.
//!
//! Reads the store (a message's vehicles, brand material through
//! [`MaterialSource`]) and the policies. Must never import `dispatch`,
//! `approvals`, `control` or `planner`: they import render.

use touchpoint_common::domain::{Channel, Customer, Vehicle};
use touchpoint_common::outbox::Message;
use touchpoint_common::policy::{BrandPolicy, TenantPolicy};
use touchpoint_common::Date;

use crate::store::{StoreError, TenantStore};

pub mod letter;
pub mod material;
pub mod pdf;

pub use material::{InForce, MaterialError, MaterialSource};
pub use pdf::Letter;
pub use touchpoint_common::render::{RenderError, RenderedEmail, Renderer};

use touchpoint_common::render::RenderInput;

/// The unsubscribe link a render check puts in an email: the real one is
/// signed per message when it is sent.
const CHECK_UNSUBSCRIBE_URL: &str = "https://unsubscribe.invalid/";

/// What one tenant's messages are rendered with on one day.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub renderer: &'a Renderer,
    pub brand: &'a BrandPolicy,
    /// The dealer's policy with its slots in force
    /// ([`material::tenant_in_force`]).
    pub tenant: &'a TenantPolicy,
    /// The day of sending, printed as `today`.
    pub today: Date,
}

/// What a message says on its channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rendered {
    Email(RenderedEmail),
    Letter(Letter),
    /// What the call centre reads.
    Call(String),
}

impl<'a> Context<'a> {
    /// The one place a message meets its recipient.
    fn input<'m>(
        &self,
        m: &'m Message,
        customer: &'m Customer,
        vehicles: &'m [Vehicle],
        unsubscribe_url: Option<&'m str>,
    ) -> RenderInput<'m>
    where
        'a: 'm,
    {
        RenderInput {
            brand: self.brand,
            tenant: self.tenant,
            customer,
            vehicles,
            message: m,
            today: self.today,
            unsubscribe_url,
        }
    }

    /// `m` rendered for `customer` on its channel; `vehicles` are the ones
    /// it is about ([`message_vehicles`]). The unsubscribe link goes into
    /// an email only.
    pub fn render(
        &self,
        m: &Message,
        customer: &Customer,
        vehicles: &[Vehicle],
        unsubscribe_url: &str,
    ) -> Result<Rendered, RenderError> {
        Ok(match m.channel {
            Channel::Email => {
                Rendered::Email(self.email(m, customer, vehicles, unsubscribe_url)?)
            }
            Channel::Post => Rendered::Letter(self.letter(m, customer, vehicles)?),
            Channel::Phone => Rendered::Call(self.call_script(m, customer)),
        })
    }

    /// `m` as an email, whatever its channel.
    pub fn email(
        &self,
        m: &Message,
        customer: &Customer,
        vehicles: &[Vehicle],
        unsubscribe_url: &str,
    ) -> Result<RenderedEmail, RenderError> {
        self.renderer
            .email(&self.input(m, customer, vehicles, Some(unsubscribe_url)))
    }

    /// `m` as a printed letter, whatever its channel.
    pub fn letter(
        &self,
        m: &Message,
        customer: &Customer,
        vehicles: &[Vehicle],
    ) -> Result<Letter, RenderError> {
        let body = self
            .renderer
            .letter(&self.input(m, customer, vehicles, None))?;
        Ok(letter::letter_for(
            self.tenant,
            customer,
            m,
            body,
            self.today,
        ))
    }

    /// Renders what `m` would send on its channel and keeps nothing, to
    /// find a template that fails before the message's time. Returns the
    /// version of its template rendered with (0: not known).
    pub fn check(
        &self,
        m: &Message,
        customer: &Customer,
        vehicles: &[Vehicle],
    ) -> Result<u64, RenderError> {
        match m.channel {
            Channel::Email => self
                .renderer
                .email(&self.input(m, customer, vehicles, Some(CHECK_UNSUBSCRIBE_URL)))
                .map(|_| ()),
            Channel::Post => self
                .renderer
                .letter(&self.input(m, customer, vehicles, None))
                .map(|_| ()),
            Channel::Phone => Ok(()),
        }?;
        Ok(self.renderer.version(&m.template).unwrap_or(0))
    }

    /// What the call centre reads: whom to call, about what, for whom.
    fn call_script(&self, m: &Message, c: &Customer) -> String {
        let service = self
            .brand
            .services
            .get(&m.service)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| m.service.clone());
        let mut out = format!(
            "Call {} ({}) for {}: {}\n",
            c.display_name(),
            c.phone.as_deref().unwrap_or("no number"),
            self.tenant.tenant.name,
            service
        );
        for o in &m.occasions {
            out.push_str(&format!("- {} (due {})\n", o.reason, o.due));
        }
        out
    }
}

/// The vehicles a message is about, as stored now, whoever holds them now:
/// what its email, its letter and its shown content all name (a fleet
/// holder has dozens; only these are read).
pub fn message_vehicles(store: &TenantStore, m: &Message) -> Result<Vec<Vehicle>, StoreError> {
    let mut vehicles = Vec::new();
    for vin in m.vins() {
        if let Some(v) = store.vehicle(vin)? {
            vehicles.push(v);
        }
    }
    Ok(vehicles)
}

#[cfg(test)]
mod tests;

//! Which brand material a message renders with: the templates and the
//! dealers' slots in force, or the template version a message recorded.
//!
//! The material itself (versions, proposals, approvals) is approvals'; it
//! reaches render only through [`MaterialSource`], so that render, and
//! dispatch above it, never import approvals. Without a source (tests,
//! benchmarks) the policy files' templates and slots are in force.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use touchpoint_common::outbox::{Message, MessageStatus};
use touchpoint_common::policy::TenantPolicy;
use touchpoint_common::protocol::TemplateHistory;
use touchpoint_common::template::Template;
use touchpoint_common::TenantId;

use super::Renderer;
use crate::policy::Policies;
use crate::store::StoreError;

/// Where the brand material in force is kept (approvals implements it, for
/// its `Material` and for the central store it keeps the material in).
pub trait MaterialSource: Send + Sync {
    /// The templates in force, by name: dealers' slots and the brand file
    /// are material too, but no templates.
    fn templates_in_force(&self) -> Result<BTreeMap<String, Template>, MaterialError>;
    /// Every version of `template`; `None` when the store has none.
    fn history(&self, template: &str) -> Result<Option<TemplateHistory>, MaterialError>;
    /// The approved slot values of `tenant`, if its slots are in the store.
    fn slots_in_force(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<BTreeMap<String, String>>, MaterialError>;
}

#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored material that no longer reads, or a template that does not
    /// parse: one error per line.
    #[error("{0}")]
    Invalid(String),
    /// A message's template is known in no version.
    #[error("{0}")]
    Missing(String),
}

/// The dealer's policy its messages are rendered with, when it is not its
/// file's: with the brand reviewing dealers' slots, its slots are the
/// approved ones until a change of its file is approved. `None`: render
/// with `p.tenant(id)`.
pub fn tenant_in_force(
    source: &dyn MaterialSource,
    p: &Policies,
    id: &TenantId,
) -> Result<Option<TenantPolicy>, MaterialError> {
    let Some(file) = p.tenant(id) else {
        return Ok(None);
    };
    if !p.brand.review.dealer_slots {
        return Ok(None);
    }
    let approved = source.slots_in_force(id)?;
    // Not seeded yet (a dealer just added): its file is what version 1 will be.
    Ok(approved.filter(|s| *s != file.slots).map(|slots| {
        let mut t = file.clone();
        t.slots = slots;
        t
    }))
}

/// The template a message is rendered with, its version number (0: not
/// known) and how it was chosen.
pub struct Chosen {
    pub template: Template,
    pub version: u32,
    pub note: String,
}

fn parse(name: &str, version: u32, text: &str) -> Result<Template, MaterialError> {
    let file = format!("templates/{name}.toml (v{version})");
    Template::parse(name, &file, text).map_err(|errs| {
        MaterialError::Invalid(
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
}

/// The version of its template message `m` records if it is known, else
/// the one in force.
pub fn version_for(
    source: &dyn MaterialSource,
    p: &Policies,
    m: &Message,
) -> Result<Chosen, MaterialError> {
    let name = m.template.as_str();
    let history = source.history(name)?;
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
        format!(
            "the version it recorded ({}) is no longer known",
            touchpoint_common::policy::short_fingerprint(recorded)
        )
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
        None => Err(MaterialError::Missing(format!(
            "message {} has template {name:?}, which is no longer in the policies",
            m.id
        ))),
    }
}

/// The material in force for rendering many messages: the templates
/// compiled and each dealer's policy with its slots in force, built once
/// per policy set and approval rather than per message.
pub struct InForce {
    source: Option<Arc<dyn MaterialSource>>,
    /// Bumped when an approval changes the material in force.
    generation: AtomicU64,
    renderer: Mutex<Option<Keyed<Arc<Renderer>>>>,
    /// Per tenant, under the renderer's key: its policy with the approved
    /// slots when they differ from its file's (None: the file's).
    tenants: Mutex<HashMap<TenantId, Keyed<Option<Arc<TenantPolicy>>>>>,
}

/// A value built under a material key ([`InForce::key`]).
type Keyed<T> = (u64, T);

impl InForce {
    /// Material from `source`; without one, the policy files' templates
    /// and slots.
    pub fn new(source: Option<Arc<dyn MaterialSource>>) -> Self {
        Self {
            source,
            generation: AtomicU64::new(0),
            renderer: Mutex::new(None),
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// The material in force changed (an approval): build again on next use.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    fn key(&self, p: &Policies) -> u64 {
        p.fingerprint
            .wrapping_mul(31)
            .wrapping_add(self.generation.load(Ordering::Relaxed))
    }

    /// The templates in force, compiled.
    pub fn renderer(&self, p: &Policies) -> Result<Arc<Renderer>, String> {
        let key = self.key(p);
        if let Some((k, r)) = &*lock(&self.renderer) {
            if *k == key {
                return Ok(r.clone());
            }
        }
        let r = match &self.source {
            Some(m) => {
                let mut templates = m.templates_in_force().map_err(|e| e.to_string())?;
                // A template only in the files (not seeded yet) still renders.
                for (name, t) in &p.templates {
                    templates.entry(name.clone()).or_insert_with(|| t.clone());
                }
                Renderer::from_templates(&templates)
            }
            None => Renderer::new(p),
        };
        let r = Arc::new(r.map_err(|e| e.to_string())?);
        *lock(&self.renderer) = Some((key, r.clone()));
        Ok(r)
    }

    /// [`tenant_in_force`], read from the source once per policy set and
    /// approval.
    pub fn tenant(
        &self,
        p: &Policies,
        id: &TenantId,
    ) -> Result<Option<Arc<TenantPolicy>>, MaterialError> {
        let Some(source) = &self.source else {
            return Ok(None);
        };
        if p.tenant(id).is_none() || !p.brand.review.dealer_slots {
            return Ok(None);
        }
        let key = self.key(p);
        if let Some((k, t)) = lock(&self.tenants).get(id) {
            if *k == key {
                return Ok(t.clone());
            }
        }
        let t = tenant_in_force(source.as_ref(), p, id)?.map(Arc::new);
        lock(&self.tenants).insert(id.clone(), (key, t.clone()));
        Ok(t)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

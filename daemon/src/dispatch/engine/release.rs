//! planned → rendered → queued. A message is rendered once when it is
//! released, to hold one whose template fails before its time, and queued
//! at its send moment. After an approval, rendered messages are rendered
//! again with the material in force.

use touchpoint_common::domain::Timestamp;
use touchpoint_common::outbox::Message;
use touchpoint_common::policy::short_fingerprint;
use touchpoint_common::policy::TenantPolicy;
use touchpoint_common::{Date, TenantId};

use super::{today_local, why, DispatchError, Dispatcher, Result, S};
use crate::policy::Policies;
use crate::render::{self, Context, Renderer};
use crate::store::{Change, TenantStore};

/// Messages released (rendered once, queued) per tenant and round: the
/// first sends need not wait for a whole day's release.
const RELEASE_BATCH: usize = 2_000;

/// Released messages are looked for at most this often per tenant.
const RELEASE_EVERY_MS: i64 = 30_000;

impl Dispatcher {
    /// A round's release: at most every [`RELEASE_EVERY_MS`] per tenant,
    /// or at once when the tenant was woken.
    pub(super) fn release_due(&self, store: &TenantStore, p: &Policies, now: i64) -> Result<()> {
        {
            let mut st = self.state();
            let woken = st.woken.remove(store.id());
            let last = st.released_at.get(store.id()).copied().unwrap_or(i64::MIN);
            if !woken && now.saturating_sub(last) < RELEASE_EVERY_MS {
                return Ok(());
            }
            st.released_at.insert(store.id().clone(), now);
        }
        self.release(store, p, now).map(|_| ())
    }

    /// An operator's release (the day's batches closed now): whatever the
    /// interval, every batch of [`RELEASE_BATCH`] until none is left, and
    /// after a release under way in a round has written what it released
    /// (the plan lock), so that everything due by `now` is queued when this
    /// returns. A wake-up alone did not promise that: a round could take
    /// the wake-up between the request setting it and looking for it, and
    /// still be rendering when the request looked for queued letters.
    pub(super) fn release_due_now(
        &self,
        store: &TenantStore,
        p: &Policies,
        now: i64,
    ) -> Result<()> {
        self.state().released_at.insert(store.id().clone(), now);
        while self.release(store, p, now)? {}
        Ok(())
    }

    /// Releases up to [`RELEASE_BATCH`] messages; `true` when more wait and
    /// this batch moved some.
    fn release(&self, store: &TenantStore, p: &Policies, now: i64) -> Result<bool> {
        let today = today_local(now);
        let _lock = store.plan_lock();
        let mut ids = store.releasable(today)?;
        if ids.is_empty() {
            return Ok(false);
        }
        let more = ids.len() > RELEASE_BATCH;
        if more {
            // The rest in the next rounds, without waiting for the interval.
            ids.truncate(RELEASE_BATCH);
            let mut st = self.state();
            st.woken.insert(store.id().clone());
        }
        let renderer = self.renderer(p).map_err(DispatchError::Setup)?;
        let approved = self.approved_tenant(p, store.id())?;
        let tenant = approved.as_deref().or_else(|| p.tenant(store.id()));
        let mut changes = Vec::new();
        for id in ids {
            let Some(m) = self.message_or_skip(store, id)? else {
                continue;
            };
            if !m.status.is_revisable() {
                continue;
            }
            let due = crate::store::send_moment(&m).0 <= now;
            let mut after = m.clone();
            if m.status == S::Planned {
                match tenant.map(|t| self.check_renders(store, p, &renderer, t, &m, today)) {
                    Some(Ok(version)) => {
                        after.dispatch.template_version = version;
                        after.set_status(
                            Timestamp(now),
                            S::Rendered,
                            format!(
                                "rendered with template {} version {}",
                                m.template,
                                short_fingerprint(version)
                            ),
                        );
                    }
                    Some(Err(reason)) => {
                        after.dispatch.held_from = Some(S::Planned);
                        after.dispatch.last_error = reason.clone();
                        why(&mut after, format!("held: {reason}"));
                        after.set_status(Timestamp(now), S::Held, reason);
                        changes.push(Change::new(m, after));
                        continue;
                    }
                    None => continue,
                }
            }
            if due {
                after.dispatch.retry_at = Some(Timestamp(now));
                after.set_status(Timestamp(now), S::Queued, format!("{} queue", m.channel));
            }
            if after.status != m.status {
                changes.push(Change::new(m, after));
            }
        }
        store.apply(&changes)?;
        // More wait, and this batch moved some: a batch that moved none
        // (every message in it skipped) would be the same batch again.
        Ok(more && !changes.is_empty())
    }

    /// Renders a message once to catch what would fail at its send time.
    fn check_renders(
        &self,
        store: &TenantStore,
        p: &Policies,
        renderer: &Renderer,
        tenant: &TenantPolicy,
        m: &Message,
        today: Date,
    ) -> std::result::Result<u64, String> {
        let customer = store
            .customer(&m.recipient)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("customer {} no longer exists", m.recipient))?;
        let vehicles = render::message_vehicles(store, m).map_err(|e| e.to_string())?;
        let cx = Context {
            renderer,
            brand: &p.brand,
            tenant,
            today,
        };
        cx.check(m, &customer, &vehicles)
            .map_err(|e| format!("template {}: {e}", m.template))
    }

    /// Re-renders every rendered, unsent message of `template` with the
    /// material in force (after an approval); queued ones are rendered when
    /// they go. Returns how many were re-rendered and how many held.
    pub fn rerender(&self, template: &str, why_line: &str) -> Result<(u64, u64)> {
        self.rerender_matching(None, Some(template), why_line)
    }

    /// Re-renders every rendered, unsent message of `tenant` with its slots
    /// in force (after an approval of `slots/<tenant>`), as [`rerender`](Self::rerender).
    pub fn rerender_tenant_slots(&self, tenant: &TenantId, why_line: &str) -> Result<(u64, u64)> {
        self.rerender_matching(Some(tenant), None, why_line)
    }

    fn rerender_matching(
        &self,
        only: Option<&TenantId>,
        template: Option<&str>,
        why_line: &str,
    ) -> Result<(u64, u64)> {
        self.material_changed();
        let p = self.policies.current();
        let renderer = self.renderer(&p).map_err(DispatchError::Setup)?;
        let now = Timestamp::now().0;
        let today = today_local(now);
        let (mut done, mut held) = (0, 0);
        for (t, tenant) in &p.tenants {
            if only.is_some_and(|o| o != t) {
                continue;
            }
            let approved = self.approved_tenant(&p, t)?;
            let tenant = approved.as_deref().unwrap_or(tenant);
            let store = self.stores.tenant(t)?;
            let _lock = store.plan_lock();
            let mut changes = Vec::new();
            for id in store.releasable(Date::from_days(i32::MAX / 2))? {
                let Some(m) = self.message_or_skip(&store, id)? else {
                    continue;
                };
                if m.status != S::Rendered || template.is_some_and(|name| m.template != name) {
                    continue;
                }
                let mut c = Change::new(m.clone(), m.clone());
                match self.check_renders(&store, &p, &renderer, tenant, &m, today) {
                    Ok(v) => {
                        c.after.dispatch.template_version = v;
                        let with = match template {
                            Some(name) => {
                                format!("template {name} version {}", short_fingerprint(v))
                            }
                            None => format!(
                                "the dealer's slots in force (template {} version {})",
                                m.template,
                                short_fingerprint(v)
                            ),
                        };
                        c.after.history.push((
                            Timestamp(now),
                            S::Rendered,
                            format!("re-rendered with {with}: {why_line}"),
                        ));
                        done += 1;
                    }
                    Err(reason) => {
                        c.after.dispatch.held_from = Some(S::Rendered);
                        why(&mut c.after, format!("held: {reason}"));
                        c.after.set_status(Timestamp(now), S::Held, reason);
                        held += 1;
                    }
                }
                changes.push(c);
            }
            store.apply(&changes)?;
        }
        Ok((done, held))
    }
}

#[cfg(test)]
mod tests;

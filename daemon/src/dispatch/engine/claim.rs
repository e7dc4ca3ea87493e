//! Email due now. Each message is checked again (pauses, the dealer's
//! service and channels, suppression lists, the consent of the person, a
//! known bad address, the budget, the throttles), rendered, built and DKIM-
//! signed on every core, and marked sending before it is handed to the
//! transport.

use touchpoint_common::domain::{Channel, Customer, Timestamp};
use touchpoint_common::outbox::{Message, TrackedLinks};
use touchpoint_common::policy::TenantPolicy;

use super::{
    domain_of, held, today_local, why, DispatchError, Dispatcher, Job, Result, Transport, S,
};
use crate::dispatch::mime::{self, MailParts, Outgoing};
use crate::dispatch::throttle::Wait;
use crate::ledger;
use crate::planner::consent::{self, People};
use crate::policy::Policies;
use crate::render::{self, Context};
use crate::store::{Change, TenantStore};

/// Unsigned emails a build thread is worth: rendering and building one
/// costs about 0.15 ms, so a group gets a second thread from 16 messages.
const BUILD_PER_THREAD: usize = 8;

/// Due ids read at a time when claiming.
const CLAIM_BATCH: usize = 512;

/// Due ids looked at per tenant and round at most (a long run of paused or
/// throttled messages costs one round this much, then the next round goes on).
const MAX_SCAN: usize = 20_000;

/// A message that may no longer go (consent, service, recipient gone):
/// cancelled, its reservation released and its occasions freed for a plan.
fn cancelled(m: Message, reason: String, now: i64) -> Change {
    let mut c = Change::new(m.clone(), m);
    why(&mut c.after, format!("cancelled before sending: {reason}"));
    c.after.dispatch.last_error = reason.clone();
    c.after.set_status(Timestamp(now), S::Cancelled, reason);
    ledger::release(&mut c);
    c.free_occasions = true;
    c
}

/// The cores of this machine, asked once.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Threads that build a claimed group of `messages` on `cores` cores. A
/// DKIM signature costs about 1.2 ms with RSA-2048 (0.05 ms with Ed25519),
/// several times the rest of a message: signed, every message may take a
/// core of its own; unsigned, a thread takes [`BUILD_PER_THREAD`] or more.
/// At most one thread per core, so at most that many signatures run at once.
fn build_threads(messages: usize, signing: bool, cores: usize) -> usize {
    let per_thread = if signing { 1 } else { BUILD_PER_THREAD };
    (messages / per_thread).clamp(1, cores.max(1))
}

/// `f` over `items` on `threads` threads (the caller's among them), each
/// taking one run of consecutive items; the results in the order of
/// `items`. The items of a helper thread that panicked get `panicked()`.
fn in_order_on<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
    panicked: impl Fn() -> R,
) -> Vec<R> {
    if threads <= 1 || items.len() <= 1 {
        return items.iter().map(&f).collect();
    }
    let f = &f;
    let mut runs = items.chunks(items.len().div_ceil(threads));
    let own = runs.next().unwrap_or_default();
    std::thread::scope(|scope| {
        let helpers: Vec<_> = runs
            .map(|run| {
                (
                    run.len(),
                    scope.spawn(move || run.iter().map(f).collect::<Vec<_>>()),
                )
            })
            .collect();
        let mut out: Vec<R> = own.iter().map(f).collect();
        for (len, helper) in helpers {
            match helper.join() {
                Ok(rest) => out.extend(rest),
                Err(_) => out.extend((0..len).map(|_| panicked())),
            }
        }
        out
    })
}

impl Dispatcher {
    /// Claims due email of one tenant, up to `free`: checks, renders, marks
    /// them sending (flushed) and returns them for the transport.
    pub(super) fn claim(
        &self,
        store: &TenantStore,
        p: &Policies,
        now: i64,
        free: usize,
    ) -> Result<Vec<Job>> {
        if free == 0 {
            return Ok(Vec::new());
        }
        if self.state().relay_down_until.is_some_and(|t| t > now) {
            return Ok(Vec::new());
        }
        if store.due(Channel::Email, now, 1)?.is_empty() {
            return Ok(Vec::new());
        }
        // The spool writes into the tenant's folder: one that is not a real
        // folder holds this tenant's email back, queued and untouched, with
        // the reason in the status, instead of failing each message (and
        // backing the transport off for every tenant).
        if let Transport::Spool(s) = &self.transport {
            s.tenant_folder(store.id())
                .map_err(|e| DispatchError::Io(format!("email not spooled: {e}")))?;
        }
        let approved = self.approved_tenant(p, store.id())?;
        let Some(tenant) = approved.as_deref().or_else(|| p.tenant(store.id())) else {
            return Ok(Vec::new());
        };
        let renderer = self.renderer(p).map_err(DispatchError::Setup)?;
        // The version before the data is read: a change while this claim
        // reads leaves the emails it finds waiting under the old version,
        // checked whole again next round.
        let version = store.data_version()?;
        let people = self.people(store)?;
        let today = today_local(now);
        {
            let sent = store.sent_on(today)?;
            let mut st = self.state();
            st.throttles.seed_tenant(store.id(), sent);
            st.waiting.data_is(store.id(), version);
        }
        let _lock = store.plan_lock();
        let mut changes = Vec::new();
        let mut jobs = Vec::new();
        // Messages that passed every check, to be built: (message, customer, domain, address).
        let mut pending: Vec<(Message, Customer, String, String)> = Vec::new();
        let mut budgets = ledger::DispatchBudgets::new(store, today);
        // Page through what is due: messages skipped (paused, a busy
        // domain) must not hide the ones behind them. Bounded per round.
        let mut cursor = None;
        let mut scanned = 0;
        let mut ids = Vec::new().into_iter();
        'claim: loop {
            let Some((due, id)) = ids.next() else {
                if scanned >= MAX_SCAN {
                    break;
                }
                let page = store.due_after(
                    Channel::Email,
                    now,
                    cursor,
                    (free * 2).clamp(16, CLAIM_BATCH),
                )?;
                if page.is_empty() {
                    break;
                }
                scanned += page.len();
                ids = page.into_iter();
                continue;
            };
            cursor = Some((due, id));
            if pending.len() >= free {
                break;
            }
            let Some((m, customer)) =
                self.claimable(store, p, tenant, &people, id, now, &mut changes)?
            else {
                continue;
            };
            let to = customer.email.clone().unwrap_or_default();
            if let Some(reason) = store.bad_address(&to)? {
                changes.extend(self.fail_email(
                    store,
                    p,
                    m,
                    format!("address {to} is known to bounce ({reason})"),
                    now,
                )?);
                continue;
            }
            // Budget, again at dispatch.
            let cost = p.brand.channels.email.cost.0;
            let budget = tenant.services.get(&m.service).map(|s| s.monthly_budget.0);
            if let Some(reason) = budgets.check(&m, budget, cost)? {
                changes.push(held(
                    m,
                    S::Queued,
                    format!("held at dispatch: {reason}"),
                    reason,
                    now,
                ));
                continue;
            }
            let domain = domain_of(&to);
            {
                let mut st = self.state();
                match st.throttles.take(store.id(), &domain, now) {
                    Ok(()) => st.waiting.forget(store.id(), m.id),
                    Err(Wait::Domain) => {
                        st.waiting.note(store.id(), version, m.id, &domain);
                        continue;
                    }
                    Err(Wait::TenantDay) | Err(Wait::Global) => break 'claim,
                }
            }
            budgets.take(&m, cost);
            pending.push((m, customer, domain, to));
        }
        // Render, build and sign the group on every core.
        let cx = Context {
            renderer: &renderer,
            brand: &p.brand,
            tenant,
            today,
        };
        let threads = build_threads(pending.len(), !self.dkim.is_empty(), cores());
        let built: Vec<std::result::Result<(Outgoing, Option<TrackedLinks>), String>> = in_order_on(
            &pending,
            threads,
            |(m, c, _, _)| self.build_email(store, p, &cx, m, c),
            || Err("building the email panicked".to_string()),
        );
        for ((m, _, domain, to), outgoing) in pending.into_iter().zip(built) {
            let (outgoing, tracked) = match outgoing {
                Ok(o) => o,
                Err(reason) => {
                    self.state().throttles.done(store.id(), &domain, false);
                    let mut c = held(m, S::Queued, format!("held: {reason}"), reason.clone(), now);
                    c.after.dispatch.last_error = reason;
                    changes.push(c);
                    continue;
                }
            };
            let mut after = m.clone();
            after.dispatch.attempts += 1;
            after.dispatch.first_attempt.get_or_insert(Timestamp(now));
            after.dispatch.address = to.clone();
            after.dispatch.template_version = renderer.version(&m.template).unwrap_or(0);
            after.set_status(
                Timestamp(now),
                S::Sending,
                format!("attempt {} to {to}", after.dispatch.attempts),
            );
            jobs.push(Job {
                tenant: store.id().clone(),
                id: m.id,
                domain,
                outgoing,
            });
            let mut c = Change::new(m, after);
            // Stored with the move to `sending`, flushed before it goes.
            c.tracking = tracked;
            changes.push(c);
        }
        // Flushed with the round's other writes before any job goes out.
        self.state().unflushed.insert(store.id().clone());
        if let Err(e) = store.apply_unflushed(&changes) {
            // Nothing was handed over: give the slots back.
            let mut st = self.state();
            for j in &jobs {
                st.throttles.done(&j.tenant, &j.domain, false);
            }
            return Err(e.into());
        }
        self.count_failed(&changes);
        Ok(jobs)
    }

    /// A queued message that may be taken now, with its recipient: not
    /// paused, and still allowed (the dealer may have left the service, the
    /// customer withdrawn consent or gone in a merge since planning; then it
    /// is cancelled into `changes`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn claimable(
        &self,
        store: &TenantStore,
        p: &Policies,
        tenant: &TenantPolicy,
        people: &People,
        id: u64,
        now: i64,
        changes: &mut Vec<Change>,
    ) -> Result<Option<(Message, Customer)>> {
        // Found allowed before, and its domain still has no room: left
        // alone, nothing of it read (`waiting.rs`).
        {
            let mut guard = self.state();
            let st = &mut *guard;
            let waits = st.waiting.domain(store.id(), id);
            if waits.is_some_and(|domain| st.throttles.domain_waits(domain, now)) {
                return Ok(None);
            }
        }
        let Some(m) = self.message_or_skip(store, id)? else {
            return Ok(None);
        };
        if !matches!(m.status, S::Queued | S::Deferred) || self.paused(store.id(), &m.service) {
            return Ok(None);
        }
        match self.still_allowed(store, p, tenant, people, &m)? {
            Ok(c) => Ok(Some((m, c))),
            Err(reason) => {
                self.state().waiting.forget(store.id(), m.id);
                changes.push(cancelled(m, reason, now));
                Ok(None)
            }
        }
    }

    /// The recipient as they are now, or why the message may no longer go.
    /// Suppression and consent are those of the person: every customer
    /// number merged with the recipient counts, as in planning.
    fn still_allowed(
        &self,
        store: &TenantStore,
        p: &Policies,
        tenant: &TenantPolicy,
        people: &People,
        m: &Message,
    ) -> Result<std::result::Result<Customer, String>> {
        let Some(svc) = tenant.services.get(&m.service) else {
            return Ok(Err(format!(
                "the dealer no longer takes part in {}",
                m.service
            )));
        };
        if !svc.opt_in {
            return Ok(Err(format!("the dealer opted out of {}", m.service)));
        }
        if !tenant.channels.enabled.contains(&m.channel) {
            return Ok(Err(format!("the dealer no longer uses {}", m.channel)));
        }
        let numbers = people.numbers_of(&m.recipient);
        if numbers
            .iter()
            .any(|n| tenant.suppress.customers.iter().any(|s| s == n))
        {
            return Ok(Err(
                "the customer is on the dealer's suppression list".into()
            ));
        }
        let Some(customer) = store.customer(&m.recipient)? else {
            return Ok(Err(format!(
                "customer {} no longer exists (merged?)",
                m.recipient
            )));
        };
        if let Err(reason) = self.consent_of(store, p, &numbers, m.channel, &m.recipient)? {
            return Ok(Err(reason));
        }
        if m.channel == Channel::Email {
            let e = customer.email.as_deref().unwrap_or("");
            if e.is_empty() {
                return Ok(Err("the customer has no email address any more".into()));
            }
            if tenant
                .suppress
                .emails
                .iter()
                .any(|s| s.eq_ignore_ascii_case(e))
            {
                return Ok(Err(format!("{e} is on the dealer's suppression list")));
            }
        }
        Ok(Ok(customer))
    }

    /// [`consent::verdict`] on the statements of all of a person's numbers.
    pub(super) fn consent_of(
        &self,
        store: &TenantStore,
        p: &Policies,
        numbers: &[&str],
        channel: Channel,
        recipient: &str,
    ) -> Result<std::result::Result<String, String>> {
        let mut statements = Vec::with_capacity(numbers.len());
        for n in numbers {
            statements.extend(store.consent(n, channel)?);
        }
        let rule = p.brand.channels.get(channel).consent;
        Ok(consent::verdict(
            rule,
            channel,
            consent::standing(&statements),
            recipient,
        ))
    }

    fn build_email(
        &self,
        store: &TenantStore,
        p: &Policies,
        cx: &Context,
        m: &Message,
        customer: &Customer,
    ) -> std::result::Result<(Outgoing, Option<TrackedLinks>), String> {
        let tenant = cx.tenant;
        let vehicles = render::message_vehicles(store, m).map_err(|e| e.to_string())?;
        // The header and the template's {{ unsubscribe_url }} are this one link.
        let unsub = match &self.one_click {
            Some(base) => mime::one_click_url(base, store.id(), m.id, &self.secret),
            None => mime::unsubscribe_url(
                &p.brand.email.unsubscribe_url,
                store.id(),
                m.id,
                &self.secret,
            ),
        };
        let mut rendered = cx
            .email(m, customer, &vehicles, &unsub)
            .map_err(|e| format!("template {}: {e}", m.template))?;
        let tracked = self.track_links(store, p, m, &mut rendered, &unsub)?;
        let from = if tenant.sender.email.is_empty() {
            format!("noreply@{}", p.brand.email.bounce_domain)
        } else {
            tenant.sender.email.clone()
        };
        let from_name = if tenant.sender.name.is_empty() {
            tenant.tenant.name.as_str()
        } else {
            tenant.sender.name.as_str()
        };
        let parts = MailParts {
            message: m,
            tenant: store.id(),
            from_name,
            from: &from,
            reply_to: (!tenant.sender.reply_to.is_empty())
                .then_some(tenant.sender.reply_to.as_str()),
            to_name: &customer.display_name(),
            to: customer.email.as_deref().unwrap_or(""),
            rendered: &rendered,
            unsubscribe_url: &unsub,
            bounce_domain: &p.brand.email.bounce_domain,
            secret: &self.secret,
            // Domain time: the moment the message goes out by the daemon's
            // clock (in a rehearsal, the simulated one, as its history
            // says). DKIM's `t=` is lettre's own wall clock, as a
            // signature's must be.
            date: touchpoint_common::clock::now_system(),
        };
        let dkim = self.dkim.get(&domain_of(&from));
        let outgoing =
            mime::build(&parts, dkim).map_err(|e| format!("cannot build the email: {e}"))?;
        Ok((outgoing, tracked))
    }
}

#[cfg(test)]
mod tests;

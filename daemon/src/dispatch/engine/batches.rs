//! Letters and call tasks. Once a day at `batch_at` (or when an operator
//! asks) a tenant's queued letters go into one print batch (PDF and
//! manifest) and its call tasks into one call list: each message checked
//! as email is at claim, marked sending before any file is written, and
//! sent once the file is complete.

use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::Ordering;

use touchpoint_common::domain::{Channel, Customer, Timestamp};
use touchpoint_common::outbox::Message;
use touchpoint_common::protocol::BatchSummary;
use touchpoint_common::{Date, TenantId};

use super::{held, today_local, why, DispatchError, Dispatcher, Result, S};
use crate::dispatch::calls;
use crate::dispatch::letters::{self, BatchRequest};
use crate::files::Dir;
use crate::ledger;
use crate::policy::Policies;
use crate::render::{self, Context};
use crate::store::{Change, TenantStore};

impl Dispatcher {
    /// Writes a letter batch and a call list of a tenant from what is queued.
    pub(super) fn close_batches(
        &self,
        store: &TenantStore,
        p: &Policies,
        now: i64,
    ) -> Result<Vec<BatchSummary>> {
        let mut out = Vec::new();
        self.close_batches_into(store, p, now, &mut out)?;
        Ok(out)
    }

    /// [`Self::close_batches`], into `out`. One that cannot be written (its
    /// folder is not a real folder, say) does not keep the other from
    /// being written; what went wrong is returned after both were tried.
    fn close_batches_into(
        &self,
        store: &TenantStore,
        p: &Policies,
        now: i64,
        out: &mut Vec<BatchSummary>,
    ) -> Result<()> {
        let before = out.len();
        let letters = self.write_letter_batch(store, p, now);
        let calls = self.write_call_list(store, p, now);
        let mut errors = Vec::new();
        for r in [letters, calls] {
            match r {
                Ok(b) => out.extend(b),
                Err(e) => errors.push(e),
            }
        }
        if out.len() > before {
            self.stores.events().publish(
                &[touchpoint_common::protocol::Topic::Dispatch],
                Some(store.id()),
            );
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(DispatchError::Io(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
        }
    }

    /// Takes the queued messages of a channel that may go now; cancels those
    /// that may not. Returns them with their customers, marked sending under
    /// `batch` (flushed before any file is written).
    fn take_batch(
        &self,
        store: &TenantStore,
        p: &Policies,
        channel: Channel,
        batch: &str,
        now: i64,
    ) -> Result<Vec<(Message, Customer)>> {
        let Some(tenant) = p.tenant(store.id()) else {
            return Ok(Vec::new());
        };
        let ids = store.due(channel, now, usize::MAX)?;
        let people = self.people(store)?;
        let mut changes = Vec::new();
        let mut out = Vec::new();
        let today = today_local(now);
        let mut budgets = ledger::DispatchBudgets::new(store, today);
        for id in ids {
            let Some((m, customer)) =
                self.claimable(store, p, tenant, &people, id, now, &mut changes)?
            else {
                continue;
            };
            let budget = tenant.services.get(&m.service).map(|s| s.monthly_budget.0);
            if channel == Channel::Phone {
                let phone = customer.phone.clone().unwrap_or_default();
                let bad = if phone.trim().is_empty() {
                    Some("the customer has no phone number".to_string())
                } else {
                    store
                        .bad_address(&phone)?
                        .map(|r| format!("{phone} is known to be wrong ({r})"))
                };
                if let Some(reason) = bad {
                    let mut c = Change::new(m.clone(), m);
                    why(&mut c.after, format!("not called: {reason}"));
                    c.after.dispatch.last_error = reason.clone();
                    c.after.set_status(Timestamp(now), S::Failed, reason);
                    ledger::release(&mut c);
                    changes.push(c);
                    continue;
                }
            }
            if m.dispatch.fallback_of.is_none() {
                if let Some(reason) = budgets.check(&m, budget, m.cost)? {
                    changes.push(held(
                        m,
                        S::Queued,
                        format!("held at dispatch: {reason}"),
                        reason,
                        now,
                    ));
                    continue;
                }
            }
            budgets.take(&m, m.cost);
            let mut after = m.clone();
            after.dispatch.batch = batch.to_string();
            after.dispatch.attempts += 1;
            after.dispatch.first_attempt.get_or_insert(Timestamp(now));
            after.set_status(Timestamp(now), S::Sending, format!("into {batch}"));
            out.push((after.clone(), customer));
            changes.push(Change::new(m, after));
        }
        store.apply(&changes)?;
        Ok(out)
    }

    /// The first batch number of the day not yet used by a name in the
    /// tenant's folder `out` (a batch left incomplete by a crash keeps its
    /// number taken only until recovery removes it; so does anything else
    /// under such a name).
    fn next_batch_seq(out: &Dir, tenant: &TenantId, prefix: &str, day: Date) -> Result<u32> {
        let stem = format!("{prefix}{tenant}-{day}-");
        let names = out
            .names()
            .map_err(|e| DispatchError::Io(format!("cannot list the batches: {e}")))?;
        let used: HashSet<u32> = names
            .iter()
            .filter_map(|name| {
                let rest = name.as_bytes().strip_prefix(stem.as_bytes())?;
                let digits = rest.split(|&b| b == b'.').next()?;
                std::str::from_utf8(digits).ok()?.parse().ok()
            })
            .collect();
        Ok((1..).find(|n| !used.contains(n)).unwrap_or(1))
    }

    fn write_letter_batch(
        &self,
        store: &TenantStore,
        p: &Policies,
        now: i64,
    ) -> Result<Option<BatchSummary>> {
        if store.due(Channel::Post, now, 1)?.is_empty() {
            return Ok(None);
        }
        let approved = self.approved_tenant(p, store.id())?;
        let Some(tenant) = approved.as_deref().or_else(|| p.tenant(store.id())) else {
            return Ok(None);
        };
        let renderer = self.renderer(p).map_err(DispatchError::Setup)?;
        let day = today_local(now);
        let _lock = store.plan_lock();
        // The folder first: one that is not a real folder fails the batch
        // before any letter is taken, so they stay queued as they are
        // (the next round tries again and would only add to their history).
        let existing =
            letters::existing_tenant_folder(&self.paths.letters, store.id()).map_err(|e| {
                DispatchError::Io(format!("letter batch of {} not written: {e}", store.id()))
            })?;
        let seq = match &existing {
            Some(out) => Self::next_batch_seq(out, store.id(), "", day)?,
            None => 1,
        };
        let batch = format!("{}-{day}-{seq:02}.pdf", store.id());
        let taken = self.take_batch(store, p, Channel::Post, &batch, now)?;
        if taken.is_empty() {
            return Ok(None);
        }
        let cx = Context {
            renderer: &renderer,
            brand: &p.brand,
            tenant,
            today: day,
        };
        let mut letters_in = Vec::new();
        let mut failed = Vec::new();
        for (m, c) in &taken {
            let vehicles = render::message_vehicles(store, m)?;
            match cx.letter(m, c, &vehicles) {
                Ok(letter) => letters_in.push(letter),
                Err(e) => failed.push((m.clone(), format!("template {}: {e}", m.template))),
            }
        }
        let report = if letters_in.is_empty() {
            None
        } else {
            let req = BatchRequest {
                tenant: store.id(),
                day,
                seq,
                letters: letters_in,
                postage: &p.brand.postage,
            };
            let written = match existing {
                Some(out) => letters::write_batch_in(&out, req),
                None => letters::write_batch(&self.paths.letters, req),
            };
            match written {
                Ok(r) => Some(r),
                Err(e) => {
                    // Nothing went out: the letters wait for the next batch,
                    // except one the postage table cannot carry, which is held.
                    let heavy = match &e {
                        letters::LetterError::TooHeavy { message, .. } => Some(*message),
                        _ => None,
                    };
                    let reason = format!("letter batch {batch} not written: {e}");
                    let changes: Vec<Change> = taken
                        .iter()
                        .map(|(m, _)| {
                            let mut c = Change::new(m.clone(), m.clone());
                            c.after.dispatch.batch.clear();
                            c.after.dispatch.last_error = reason.clone();
                            if heavy == Some(m.id) {
                                c.after.dispatch.held_from = Some(S::Queued);
                                why(&mut c.after, format!("held: {e}"));
                                c.after.set_status(Timestamp(now), S::Held, e.to_string());
                            } else {
                                c.after.dispatch.retry_at = Some(Timestamp(now));
                                c.after
                                    .set_status(Timestamp(now), S::Queued, reason.clone());
                            }
                            c
                        })
                        .collect();
                    store.apply(&changes)?;
                    return Err(DispatchError::Io(reason));
                }
            }
        };
        let mut changes = Vec::new();
        let mut cost = 0;
        let mut sent = 0;
        if let Some(r) = &report {
            let lines: HashMap<u64, _> = r.lines.iter().map(|l| (l.message, l)).collect();
            for (m, _) in &taken {
                let Some(l) = lines.get(&m.id) else { continue };
                let mut c = Change::new(m.clone(), m.clone());
                // The material it was printed with.
                c.after.dispatch.template_version = renderer.version(&m.template).unwrap_or(0);
                c.after.set_status(
                    Timestamp(now),
                    S::Sent,
                    format!(
                        "in {batch} as letter {} ({} pages, {} g, {}{})",
                        l.sequence,
                        l.pages,
                        l.grams,
                        l.weight_class,
                        l.discount
                            .as_deref()
                            .map(|d| format!(", {d}"))
                            .unwrap_or_default()
                    ),
                );
                ledger::book(&mut c, &p.brand, l.postage.0, day);
                cost += l.postage.0;
                sent += 1;
                changes.push(c);
            }
        }
        for (m, reason) in failed {
            let mut c = Change::new(m.clone(), m);
            c.after.dispatch.held_from = Some(S::Queued);
            c.after.dispatch.batch.clear();
            why(&mut c.after, format!("held: {reason}"));
            c.after.set_status(Timestamp(now), S::Held, reason);
            changes.push(c);
        }
        store.apply(&changes)?;
        self.counters.sent.fetch_add(sent, Ordering::Relaxed);
        self.throughput.record(now, sent);
        Ok(report.map(|r| BatchSummary {
            tenant: store.id().clone(),
            kind: "letters".into(),
            files: vec![
                r.pdf.display().to_string(),
                r.manifest.display().to_string(),
            ],
            messages: sent,
            cost,
        }))
    }

    pub(super) fn write_call_list(
        &self,
        store: &TenantStore,
        p: &Policies,
        now: i64,
    ) -> Result<Option<BatchSummary>> {
        if store.due(Channel::Phone, now, 1)?.is_empty() {
            return Ok(None);
        }
        let Some(tenant) = p.tenant(store.id()) else {
            return Ok(None);
        };
        let day = today_local(now);
        let _lock = store.plan_lock();
        let existing =
            calls::existing_tenant_folder(&self.paths.calls, store.id()).map_err(|e| {
                DispatchError::Io(format!("call list of {} not written: {e}", store.id()))
            })?;
        let seq = match &existing {
            Some(out) => Self::next_batch_seq(out, store.id(), "calls-", day)?,
            None => 1,
        };
        let name = calls::tasks_name(store.id(), day, seq);
        let taken = self.take_batch(store, p, Channel::Phone, &name, now)?;
        if taken.is_empty() {
            return Ok(None);
        }
        let tasks: Vec<calls::CallTask> = taken
            .iter()
            .map(|(m, c)| calls::CallTask {
                message: m.id,
                customer_no: m.recipient.clone(),
                name: c.display_name(),
                phone: c.phone.clone().unwrap_or_default(),
                service: m.service.clone(),
                service_name: p
                    .brand
                    .services
                    .get(&m.service)
                    .map(|s| s.name.clone())
                    .unwrap_or_default(),
                occasions: m
                    .occasions
                    .iter()
                    .map(|o| o.reason.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
                due: m.occasions.first().map(|o| o.due).unwrap_or(m.send_on),
                dealer: tenant.tenant.name.clone(),
            })
            .collect();
        let written = match existing {
            Some(out) => calls::write_tasks_in(&out, store.id(), day, seq, &tasks),
            None => calls::write_tasks(&self.paths.calls, store.id(), day, seq, &tasks),
        };
        let path = match written {
            Ok(p) => p,
            Err(e) => {
                let reason = format!("call list {name} not written: {e}");
                let changes: Vec<Change> = taken
                    .iter()
                    .map(|(m, _)| {
                        let mut c = Change::new(m.clone(), m.clone());
                        c.after.dispatch.batch.clear();
                        c.after.dispatch.last_error = reason.clone();
                        c.after.dispatch.retry_at = Some(Timestamp(now));
                        c.after
                            .set_status(Timestamp(now), S::Queued, reason.clone());
                        c
                    })
                    .collect();
                store.apply(&changes)?;
                return Err(DispatchError::Io(reason));
            }
        };
        let cost = p.brand.channels.phone.cost.0;
        let mut changes = Vec::new();
        for (m, _) in &taken {
            let mut c = Change::new(m.clone(), m.clone());
            c.after
                .set_status(Timestamp(now), S::Sent, format!("in call list {name}"));
            ledger::book(&mut c, &p.brand, cost, day);
            changes.push(c);
        }
        store.apply(&changes)?;
        self.throughput.record(now, taken.len() as u64);
        Ok(Some(BatchSummary {
            tenant: store.id().clone(),
            kind: "calls".into(),
            files: vec![path.display().to_string()],
            messages: taken.len() as u64,
            cost: cost * taken.len() as i64,
        }))
    }

    /// Closes the day's batches now (an operator asked). A tenant whose
    /// batch cannot be written does not keep the others from theirs: each
    /// is tried, and then the failures are the answer, naming what was
    /// closed meanwhile (its messages are sent, as the queue shows).
    pub fn run_batches(&self, tenants: &[TenantId]) -> Result<Vec<BatchSummary>> {
        let now = Timestamp::now().0;
        let p = self.policies.current();
        let mut out = Vec::new();
        let mut failed = Vec::new();
        for t in tenants {
            let r = (|| -> Result<()> {
                let store = self.stores.tenant(t)?;
                self.requeue_interrupted(&store, &p, now)?;
                self.state().woken.insert(t.clone());
                self.release_due_now(&store, &p, now)?;
                self.close_batches_into(&store, &p, now, &mut out)
            })();
            if let Err(e) = r {
                self.note_error(Some(t), format!("tenant {t}: {e}"));
                failed.push(format!("tenant {t}: {e}"));
            }
        }
        if failed.is_empty() {
            return Ok(out);
        }
        let closed: Vec<String> = out
            .iter()
            .map(|b| format!("{} {} ({} messages)", b.tenant, b.kind, b.messages))
            .collect();
        Err(DispatchError::Io(format!(
            "{}; closed meanwhile: {}",
            failed.join("; "),
            if closed.is_empty() {
                "nothing".to_string()
            } else {
                closed.join(", ")
            }
        )))
    }
}

#[cfg(test)]
mod tests;

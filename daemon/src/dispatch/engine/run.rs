//! The loop. A tick or a wake-up advances every tenant's outbox (the bounce
//! maildir, recovery, release, batches, then a claim of email up to the free
//! send slots); the claimed email goes to the transport concurrently; the
//! outcomes that come back are grouped, recorded and flushed together with
//! the next claim, so that one flush covers both and nothing goes out
//! before its transition is durable. At stop, what is in flight is waited
//! for and recorded.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use touchpoint_common::domain::{Channel, Timestamp};
use touchpoint_common::{Date, TenantId};

use super::{minutes_local, today_local, Dispatcher, Job, Outcome, Quiet, Result, Transport};
use crate::dispatch::smtp::Delivery;
use crate::store::TenantStore;

/// How long returning outcomes wait for more to share one write.
const GROUP_WAIT: Duration = Duration::from_millis(5);

impl Dispatcher {
    /// Runs until `shutdown`; then lets in-flight sends finish (up to `drain`).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken, drain: Duration) {
        if !self.enabled {
            tracing::info!("dispatch is off ([dispatch] enabled = false)");
            return;
        }
        tracing::info!(transport = %self.transport_desc, "dispatch started");
        let (tx, mut rx) = mpsc::unbounded_channel::<Outcome>();
        let mut in_flight = 0usize;
        let mut tick = tokio::time::interval(self.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // A tick or a wake-up looks at everything (bounces, release,
            // batches); returning outcomes only record and claim again.
            let mut full = false;
            let mut done = Vec::new();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => full = true,
                _ = self.wake.notified() => full = true,
                Some(first) = rx.recv() => {
                    done.push(first);
                    // Group outcomes: one write and one flush for many. Wait
                    // a moment for more while at least half are still out.
                    let until = tokio::time::Instant::now() + GROUP_WAIT;
                    loop {
                        while let Ok(o) = rx.try_recv() {
                            done.push(o);
                        }
                        if done.len() * 2 >= in_flight {
                            break;
                        }
                        match tokio::time::timeout_at(until, rx.recv()).await {
                            Ok(Some(o)) => done.push(o),
                            _ => break,
                        }
                    }
                    in_flight -= done.len();
                }
            }
            let free = self.max_in_flight.saturating_sub(in_flight);
            let me = self.clone();
            let jobs = tokio::task::spawn_blocking(move || me.next_jobs(done, free, full))
                .await
                .unwrap_or_default();
            in_flight += jobs.len();
            for job in jobs {
                let me = self.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let delivery = me.deliver(&job).await;
                    let _ = tx.send(Outcome {
                        tenant: job.tenant,
                        id: job.id,
                        domain: job.domain,
                        delivery,
                        at: Timestamp::now().0,
                        retried: false,
                    });
                });
            }
        }
        // Finish what is in flight, record it, then stop.
        let deadline = tokio::time::Instant::now() + drain;
        while in_flight > 0 {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(first)) => {
                    let mut done = vec![first];
                    while let Ok(o) = rx.try_recv() {
                        done.push(o);
                    }
                    in_flight -= done.len();
                    let me = self.clone();
                    if let Err(e) =
                        tokio::task::spawn_blocking(move || me.record_and_flush(done)).await
                    {
                        tracing::error!("recording send outcomes failed: {e}");
                    }
                }
                _ => break,
            }
        }
        if self.has_unrecorded(None) {
            // One last try; what is still not written stays `sending`, and
            // the next start sends it again (with a note saying so).
            let me = self.clone();
            let _ = tokio::task::spawn_blocking(move || me.record_and_flush(Vec::new())).await;
        }
        if let Transport::Relay(r) = &self.transport {
            r.close().await;
        }
        tracing::info!(left_in_flight = in_flight, "dispatch stopped");
    }

    async fn deliver(&self, job: &Job) -> Delivery {
        match &self.transport {
            Transport::Relay(r) => r.send(&job.outgoing.envelope, &job.outgoing.bytes).await,
            Transport::Spool(s) => {
                let (s, tenant, id) = (s.clone(), job.tenant.clone(), job.id);
                let env = job.outgoing.envelope.clone();
                let bytes = job.outgoing.bytes.clone();
                match tokio::task::spawn_blocking(move || s.write(&tenant, id, &env, &bytes)).await
                {
                    Ok(Ok(path)) => Delivery::Accepted {
                        response: format!("spooled to {}", path.display()),
                    },
                    Ok(Err(e)) => Delivery::Unreachable {
                        error: format!("spool: {e}"),
                    },
                    Err(e) => Delivery::Unreachable {
                        error: format!("spool: {e}"),
                    },
                }
            }
        }
    }

    /// One round over every tenant: bounces, recovery, release, batches,
    /// then claim email up to `free` send slots. Written, not flushed: the
    /// caller flushes before any job goes out.
    fn advance_outboxes(&self, free: usize, full: bool) -> Vec<Job> {
        let now = Timestamp::now().0;
        let policies = self.policies.current();
        {
            let mut st = self.state();
            st.throttles.set_limits(&policies.brand.throttle);
            let today = today_local(now);
            if st.today != Some(today) {
                st.today = Some(today);
                st.throttles.reset_days();
                st.waiting.clear();
            }
        }
        if full {
            if let Err(e) = self.read_bounce_maildir(&policies) {
                self.note_error(None, format!("bounces: {e}"));
            }
        }
        let mut jobs = Vec::new();
        let tenants: Vec<TenantId> = policies.tenants.keys().cloned().collect();
        let batch_time = minutes_local(now) >= self.paths.batch_at;
        let today = today_local(now);
        for t in &tenants {
            if self.stays_quiet(t, now, today, full && batch_time) {
                continue;
            }
            let r = (|| -> Result<()> {
                let store = self.stores.tenant(t)?;
                self.requeue_interrupted(&store, &policies, now)?;
                self.release_due(&store, &policies, now)?;
                // Once a day at batch_at; letters that turn up later (a
                // fallback) wait for tomorrow's batch or an operator's
                // `touchpoint batches`.
                let today = today_local(now);
                if full && batch_time && self.state().batched.get(t) != Some(&today) {
                    self.close_batches(&store, &policies, now)?;
                    self.state().batched.insert(t.clone(), today);
                }
                // While what the transport said of its emails cannot be
                // written, the tenant sends nothing more.
                if jobs.len() < free && !self.has_unrecorded(Some(t)) {
                    let more = self.claim(&store, &policies, now, free - jobs.len())?;
                    jobs.extend(more);
                }
                self.note_quiet(&store, now, today)?;
                Ok(())
            })();
            if let Err(e) = r {
                self.note_error(Some(t), format!("tenant {t}: {e}"));
            }
        }
        jobs
    }

    /// Whether the round may leave tenant `t` alone: found with nothing to
    /// do ([`Dispatcher::note_quiet`]) and nothing since that could give it
    /// something: no write of its outbox, the same day, no email come due,
    /// no wake, its interrupted sends looked at, no outcome waiting to be
    /// written, and no batch to close now (`batching`).
    fn stays_quiet(&self, t: &TenantId, now: i64, today: Date, batching: bool) -> bool {
        let writes = self.stores.outbox_writes(t);
        let st = self.state();
        let Some(q) = st.quiet.get(t) else {
            return false;
        };
        q.writes == writes
            && q.day == today
            && q.next_email.is_none_or(|due| due > now)
            && !st.woken.contains(t)
            && st.recovered.contains(t)
            && !st.unrecorded.contains_key(t)
            && !(batching && st.batched.get(t) != Some(&today))
    }

    /// At the end of a tenant's round: if nothing of `today` is left to
    /// release (everything was, or nothing is planned), notes it quiet
    /// until its next email is due; else forgets any such note. The count
    /// of its outbox's writes is read first, so a write while this looks
    /// ends the quiet it notes.
    fn note_quiet(&self, store: &TenantStore, now: i64, today: Date) -> Result<()> {
        let writes = self.stores.outbox_writes(store.id());
        let quiet = if store.releasable(today)?.is_empty() {
            Some(Quiet {
                writes,
                day: today,
                next_email: store.next_due(Channel::Email)?,
            })
        } else {
            None
        };
        let mut st = self.state();
        match quiet {
            Some(q) if q.next_email.is_none_or(|due| due > now) => {
                st.quiet.insert(store.id().clone(), q);
            }
            _ => {
                st.quiet.remove(store.id());
            }
        }
        Ok(())
    }

    /// Records outcomes, moves every outbox along and returns the email to
    /// hand to the transport; flushes every tenant written to once, before
    /// the new jobs go out: one flush covers both.
    pub(super) fn next_jobs(&self, done: Vec<Outcome>, free: usize, full: bool) -> Vec<Job> {
        if !done.is_empty() || self.has_unrecorded(None) {
            self.record_outcomes(done);
        }
        let jobs = self.advance_outboxes(free, full);
        match self.flush_written() {
            Ok(()) => {
                let mut st = self.state();
                st.in_flight
                    .extend(jobs.iter().map(|j| (j.tenant.clone(), j.id)));
                drop(st);
                jobs
            }
            Err(e) => {
                // Not durable: nothing goes out. The messages marked sending
                // are put back by recovery in the next round.
                self.note_error(None, format!("flush: {e}"));
                let mut st = self.state();
                for j in &jobs {
                    st.throttles.done(&j.tenant, &j.domain, false);
                    st.recovered.remove(&j.tenant);
                }
                Vec::new()
            }
        }
    }

    /// Flushes the tenants written to since the last flush.
    pub(super) fn flush_written(&self) -> Result<()> {
        let tenants: Vec<TenantId> = self.state().unflushed.drain().collect();
        let mut first = None;
        for t in tenants {
            if let Err(e) = self.stores.tenant(&t).and_then(|s| s.flush()) {
                self.state().unflushed.insert(t);
                first.get_or_insert(e);
            }
        }
        match first {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;

//! After a crash: messages found sending when a tenant is first looked at.
//! Email is queued again (the relay may have it already: its history counts
//! the resends); a letter batch or call list whose file is complete is sent,
//! an incomplete one is removed and its messages wait for the next.

use std::sync::atomic::Ordering;

use touchpoint_common::domain::{Channel, Timestamp};
use touchpoint_common::outbox::Message;

use super::{today_local, Dispatcher, Result, S};
use crate::ledger;
use crate::policy::Policies;
use crate::store::{Change, TenantStore};

const CRASH_RESEND: &str = "was being sent when the daemon stopped; sent again";

pub(super) const CUT_RESEND: &str =
    "the connection broke after the data went out: the relay may have it; it is sent again";

/// The history line of an email found sending after a crash. Each crash it
/// was in flight for, like each connection cut after its data, may have
/// left the relay a copy, so the line counts them.
fn crash_resend_line(m: &Message) -> String {
    let before = m
        .history
        .iter()
        .filter(|h| h.2.starts_with(CRASH_RESEND) || h.2 == CUT_RESEND)
        .count();
    match before + 1 {
        1 => format!("{CRASH_RESEND} (the relay may have it twice)"),
        n => format!(
            "{CRASH_RESEND} (resend {n}: the relay may have it up to {} times)",
            n + 1
        ),
    }
}

/// The postage a batch's manifest gives for one message, in cents.
pub(super) fn manifest_postage(manifest: &std::path::Path, message: u64) -> Option<i64> {
    let mut r = csv::Reader::from_path(manifest).ok()?;
    let headers = r.headers().ok()?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (m, p) = (col("message")?, col("postage_cents")?);
    r.records()
        .filter_map(|rec| rec.ok())
        .find(|rec| rec.get(m).and_then(|v| v.parse().ok()) == Some(message))
        .and_then(|rec| rec.get(p)?.parse().ok())
}

impl Dispatcher {
    /// Messages found sending when a tenant is first looked at: the daemon
    /// stopped while they were with a transport.
    pub(super) fn requeue_interrupted(
        &self,
        store: &TenantStore,
        p: &Policies,
        now: i64,
    ) -> Result<()> {
        if self.state().recovered.contains(store.id()) {
            return Ok(());
        }
        let _lock = store.plan_lock();
        let mut changes = Vec::new();
        for id in store.in_flight()? {
            let Some(m) = self.message_or_skip(store, id)? else {
                continue;
            };
            if m.status != S::Sending {
                continue;
            }
            let mut after = m.clone();
            match m.channel {
                Channel::Email => {
                    after.dispatch.retry_at = Some(Timestamp(now));
                    after.set_status(Timestamp(now), S::Queued, crash_resend_line(&m));
                    self.counters.resent.fetch_add(1, Ordering::Relaxed);
                    changes.push(Change::new(m, after));
                }
                Channel::Post | Channel::Phone => {
                    let batch = after.dispatch.batch.clone();
                    let kind = if m.channel == Channel::Post {
                        "letters"
                    } else {
                        "calls"
                    };
                    let dir = if m.channel == Channel::Post {
                        &self.paths.letters
                    } else {
                        &self.paths.calls
                    };
                    // A letter batch is complete once its manifest is there
                    // (written last); a call list is written whole or not at all.
                    let marker = match m.channel {
                        Channel::Post => batch.replace(".pdf", ".csv"),
                        _ => batch.clone(),
                    };
                    let complete =
                        !batch.is_empty() && dir.join(store.id().as_str()).join(&marker).exists();
                    if complete {
                        let cost =
                            manifest_postage(&dir.join(store.id().as_str()).join(&marker), m.id)
                                .unwrap_or(p.brand.channels.get(m.channel).cost.0);
                        let day = today_local(now);
                        let mut c = Change::new(m, after);
                        c.after.set_status(
                            Timestamp(now),
                            S::Sent,
                            format!("in {kind} {batch} (completed before the daemon stopped)"),
                        );
                        c.sent_on = None;
                        ledger::book(&mut c, &p.brand, cost, day);
                        changes.push(c);
                    } else {
                        // A PDF renamed before the crash, without its
                        // manifest, is not a batch: remove it so the
                        // lettershop never sees half of one.
                        if m.channel == Channel::Post && !batch.is_empty() {
                            let orphan = dir.join(store.id().as_str()).join(&batch);
                            if orphan.exists() {
                                if let Err(e) = std::fs::remove_file(&orphan) {
                                    tracing::warn!("cannot remove {}: {e}", orphan.display());
                                }
                            }
                        }
                        after.dispatch.batch.clear();
                        after.dispatch.retry_at = Some(Timestamp(now));
                        after.set_status(
                            Timestamp(now),
                            S::Queued,
                            format!("{kind} batch was not completed when the daemon stopped; in the next batch"),
                        );
                        changes.push(Change::new(m, after));
                    }
                }
            }
        }
        if !changes.is_empty() {
            tracing::info!(tenant = %store.id(), messages = changes.len(), "requeued messages interrupted by a stop");
        }
        store.apply(&changes)?;
        self.state().recovered.insert(store.id().clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests;

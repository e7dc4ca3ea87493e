//! After a crash: messages found sending when a tenant is first looked at.
//! Email is queued again (the relay may have it already: its history counts
//! the resends); a letter batch or call list whose file is complete is sent,
//! an incomplete one is removed and its messages wait for the next.

use std::sync::atomic::Ordering;

use touchpoint_common::domain::{Channel, Timestamp};
use touchpoint_common::outbox::Message;

use super::{today_local, DispatchError, Dispatcher, Result, S};
use crate::files::{Dir, Perms};
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
#[cfg(test)]
pub(super) fn manifest_postage(manifest: &std::path::Path, message: u64) -> Option<i64> {
    manifest_postage_of(std::fs::File::open(manifest).ok()?, message)
}

fn manifest_postage_of(manifest: std::fs::File, message: u64) -> Option<i64> {
    let mut r = csv::Reader::from_reader(std::io::BufReader::new(manifest));
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
        // The tenant's letters and calls folders, opened once each when a
        // message needs them: `None` inside when there is none.
        let mut folders: [Option<Option<Dir>>; 2] = [None, None];
        for id in store.in_flight()? {
            let Some(m) = self.message_or_skip(store, id)? else {
                continue;
            };
            // Handed to the transport in this run and not yet answered (or
            // its answer not yet written): not interrupted, perhaps sent.
            if m.status != S::Sending || self.is_in_flight(store.id(), m.id) {
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
                    let (kind, root, slot) = if m.channel == Channel::Post {
                        ("letters", &self.paths.letters, 0)
                    } else {
                        ("calls", &self.paths.calls, 1)
                    };
                    if folders[slot].is_none() {
                        // Whether a batch was completed cannot be told
                        // through a folder that is not a real folder: the
                        // tenant waits (nothing of it goes on until then,
                        // so running this again is safe).
                        let folder = Dir::open(root, Perms::PRIVATE)
                            .and_then(|d| d.map(|d| d.open_sub(store.id().as_str())).transpose())
                            .map(Option::flatten)
                            .map_err(|e| {
                                DispatchError::Io(format!(
                                    "cannot tell whether {kind} batch {batch} was completed before the daemon stopped: {e}"
                                ))
                            })?;
                        folders[slot] = Some(folder);
                    }
                    let folder = folders[slot].as_ref().and_then(Option::as_ref);
                    // A letter batch is complete once its manifest is there
                    // (written last); a call list is written whole or not at all.
                    let marker = match m.channel {
                        Channel::Post => batch.replace(".pdf", ".csv"),
                        _ => batch.clone(),
                    };
                    let complete = !batch.is_empty()
                        && folder.is_some_and(|f| f.is_file(&marker).unwrap_or(false));
                    if complete {
                        let cost = folder
                            .and_then(|f| f.open_read(&marker).ok())
                            .and_then(|file| manifest_postage_of(file, m.id))
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
                        if let (Channel::Post, Some(f), false) =
                            (m.channel, folder, batch.is_empty())
                        {
                            if let Err(e) = f.remove(&batch) {
                                tracing::warn!("cannot remove an incomplete batch: {e}");
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

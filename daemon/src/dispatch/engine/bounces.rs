//! The bounce maildir: delivery reports, unsubscribe mails and automatic
//! replies, each matched to its message by the signed return path. A hard
//! bounce fails the email (a letter in its place where allowed), an
//! unsubscribe withdraws email consent; the rest is counted and left.

use std::sync::atomic::Ordering;

use touchpoint_common::domain::{Channel, Timestamp};
use touchpoint_common::limits;

use super::{DispatchError, Dispatcher, Result, S};
use crate::dispatch::bounce;
use crate::policy::Policies;

/// What a mail in the bounce maildir turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MailKind {
    /// A delivery failure report (permanent or temporary) about one of our messages.
    Bounce,
    /// A request to stop, to the unsubscribe address of one of our messages.
    Unsubscribe,
    /// An out-of-office or similar reply to one of our messages.
    AutoReply,
    /// About none of our messages, not understood, or not to be trusted.
    Ignored,
}

impl Dispatcher {
    pub(super) fn read_bounce_maildir(&self, p: &Policies) -> Result<()> {
        let Some(root) = &self.paths.bounce_maildir else {
            return Ok(());
        };
        let md = bounce::Maildir::open(root)
            .map_err(|e| DispatchError::Io(format!("{}: {e}", root.display())))?;
        let pending = md.pending().map_err(|e| DispatchError::Io(e.to_string()))?;
        for path in pending {
            let kind = match md.read(&path) {
                Ok(Ok(raw)) => {
                    let c = bounce::classify(&raw, &p.brand.email.bounce_domain, &self.secret);
                    match self.handle_returned_mail(&c, p, &path) {
                        Ok(kind) => kind,
                        Err(e) => {
                            // Leave it in new/: tried again next round.
                            self.note_error(None, format!("{}: {e}", path.display()));
                            continue;
                        }
                    }
                }
                Ok(Err(why)) => {
                    tracing::warn!(file = %path.display(), why, "mail in the bounce maildir not read; ignored");
                    MailKind::Ignored
                }
                Err(e) => {
                    self.note_error(None, format!("{}: {e}", path.display()));
                    continue;
                }
            };
            let counter = match kind {
                MailKind::Bounce => &self.counters.bounces,
                MailKind::Unsubscribe => &self.counters.unsubscribes,
                MailKind::AutoReply => &self.counters.autoreplies,
                MailKind::Ignored => &self.counters.ignored,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            md.done(&path)
                .map_err(|e| DispatchError::Io(e.to_string()))?;
        }
        Ok(())
    }

    fn handle_returned_mail(
        &self,
        c: &bounce::Classified,
        p: &Policies,
        path: &std::path::Path,
    ) -> Result<MailKind> {
        // Named by the relay's delivery agent, but stored (a consent's
        // source) and logged: one clean line.
        let file = path
            .file_name()
            .map(|f| limits::outside(&f.to_string_lossy(), limits::NAME_CHARS).into_owned())
            .unwrap_or_default();
        let Some((_, tenant, id)) = &c.target else {
            tracing::info!(file, verdict = ?c.verdict, "mail in the bounce maildir matches no message; ignored");
            return Ok(MailKind::Ignored);
        };
        if p.tenant(tenant).is_none() {
            tracing::info!(file, %tenant, "bounce for a tenant without a policy; ignored");
            return Ok(MailKind::Ignored);
        }
        let store = self.stores.tenant(tenant)?;
        let now = Timestamp::now().0;
        if self.message_or_skip(&store, *id)?.is_none() {
            tracing::info!(file, %tenant, id, "bounce for an unknown or unreadable message; ignored");
            return Ok(MailKind::Ignored);
        }
        match &c.verdict {
            bounce::Verdict::HardBounce { .. }
                if c.matched_by == Some(bounce::MatchedBy::QuotedMessageId) =>
            {
                // Our Message-IDs are guessable: a report matched by nothing
                // but a quoted Message-ID could be forged, so it changes nothing.
                tracing::warn!(file, %tenant, id, "hard bounce matched only by a quoted Message-ID; not acted on");
                Ok(MailKind::Ignored)
            }
            bounce::Verdict::HardBounce {
                status, diagnostic, ..
            } => {
                let _lock = store.plan_lock();
                let Some(m) = store.message(*id)? else {
                    return Ok(MailKind::Ignored);
                };
                if m.channel != Channel::Email {
                    return Ok(MailKind::Ignored);
                }
                if !matches!(m.status, S::Sent | S::Sending | S::Queued | S::Deferred) {
                    // Already handled (a second copy of the report).
                    return Ok(MailKind::Bounce);
                }
                let addr = if m.dispatch.address.is_empty() {
                    store
                        .customer(&m.recipient)?
                        .and_then(|c| c.email)
                        .unwrap_or_default()
                } else {
                    m.dispatch.address.clone()
                };
                // `classify` made the diagnostic one short clean line.
                let reason = format!("hard bounce {status}: {diagnostic}");
                if !addr.is_empty() {
                    store.mark_bad_address(&addr, &reason)?;
                }
                let changes = self.fail_email(&store, p, m, reason, now)?;
                store.apply(&changes)?;
                self.count_failed(&changes);
                Ok(MailKind::Bounce)
            }
            bounce::Verdict::SoftBounce { status, .. } => {
                // The relay retries on its own; the next report says more.
                tracing::info!(file, %tenant, id, status, "temporary delivery failure reported; nothing done");
                Ok(MailKind::Bounce)
            }
            bounce::Verdict::Unsubscribe => {
                self.withdraw_email_consent(
                    &store,
                    *id,
                    format!("unsubscribe mail ({file})"),
                    Timestamp(now),
                )?;
                Ok(MailKind::Unsubscribe)
            }
            bounce::Verdict::AutoReply { reason } => {
                tracing::info!(file, %tenant, id, reason, "automatic reply; nothing done");
                Ok(MailKind::AutoReply)
            }
            bounce::Verdict::Unknown { reason } => {
                tracing::info!(file, %tenant, id, reason, "not understood; ignored");
                Ok(MailKind::Ignored)
            }
        }
    }
}

#[cfg(test)]
mod tests;

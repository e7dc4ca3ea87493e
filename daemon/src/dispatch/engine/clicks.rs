//! Click tracking (brand policy `[tracking] clicks`, off by default): at
//! claim, an email's http(s) links become `{public_url}/c/{token}`
//! (`dispatch::links`) and the addresses they stood for are stored with
//! the message's move to `sending`; a click on `/c/{token}` (`crate::http`)
//! comes here, is recorded on the message and answered with the address
//! that message linked. The token names tenant, message and link and is
//! signed like the unsubscribe token (`verp::click_token`); it never
//! carries an address, so `/c/` redirects nowhere a message did not link.
//! A click is no response: attribution never reads it.

use std::sync::atomic::Ordering;

use touchpoint_common::domain::Timestamp;
use touchpoint_common::outbox::{Message, TrackedLinks};
use touchpoint_common::TenantId;

use super::{Dispatcher, Result};
use crate::dispatch::{links, verp};
use crate::policy::Policies;
use crate::render::RenderedEmail;
use crate::store::{Change, TenantStore};

/// Longest address shown in a message's history line.
const SHOWN_URL_CHARS: usize = 80;

/// A click on a tracked link, as the redirect needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Click {
    pub tenant: TenantId,
    pub id: u64,
    pub link: u32,
    /// Where the message's link pointed.
    pub url: String,
    /// The first click on this link.
    pub first: bool,
}

impl Dispatcher {
    /// `/c/` links point at `{base}/c/{token}` (`[http] public_url`).
    pub fn with_click_tracking(mut self, base: String) -> Self {
        self.click_base = Some(base);
        self
    }

    /// Rewrites the links of `email` when the brand tracks clicks; the
    /// links to store with the message (any clicks it had kept), or `None`
    /// when nothing is tracked.
    pub(super) fn track_links(
        &self,
        store: &TenantStore,
        p: &Policies,
        m: &Message,
        email: &mut RenderedEmail,
        unsubscribe_url: &str,
    ) -> std::result::Result<Option<TrackedLinks>, String> {
        if !p.brand.tracking.clicks {
            return Ok(None);
        }
        let Some(base) = &self.click_base else {
            if !self.click_base_missing.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "brand.toml [tracking] clicks = true needs [http] public_url in touchpointd.toml; links are not tracked"
                );
            }
            return Ok(None);
        };
        let own = format!("{base}/");
        let r = links::rewrite(
            &email.text,
            &email.html,
            |url| url == unsubscribe_url || url.starts_with(&own),
            |n| {
                format!(
                    "{base}/c/{}",
                    verp::click_token(store.id(), m.id, n, &self.secret)
                )
            },
        );
        if r.links.is_empty() {
            return Ok(None);
        }
        // A retry renders again: the clicks so far stay.
        let mut tracked = store
            .tracking(m.id)
            .map_err(|e| format!("click tracking: {e}"))?
            .unwrap_or_default();
        tracked.links = r.links;
        email.text = r.text;
        email.html = r.html;
        Ok(Some(tracked))
    }

    /// The link a click token names, with the click recorded (durably)
    /// on its message: `None` when the token is not ours, the brand does
    /// not track clicks, or the message or link is not on record, without
    /// saying which (the caller answers 404).
    pub fn click(&self, token: &str) -> Result<Option<Click>> {
        let Some((tenant, id, link)) = verp::parse_click_token(token, &self.secret) else {
            return Ok(None);
        };
        let p = self.policies.current();
        if p.tenant(&tenant).is_none() {
            return Ok(None);
        }
        let store = self.stores.tenant(&tenant)?;
        // A link already sent keeps working when the brand stops tracking:
        // it still leads where the email said, and nothing is recorded.
        if !p.brand.tracking.clicks {
            let url = store
                .tracking(id)?
                .and_then(|t| t.links.get((link as usize).wrapping_sub(1)).cloned());
            return Ok(url.map(|url| Click {
                tenant,
                id,
                link,
                url,
                first: false,
            }));
        }
        let _lock = store.plan_lock();
        let Some(m) = self.message_or_skip(&store, id)? else {
            return Ok(None);
        };
        let Some(mut tracked) = store.tracking(id)? else {
            return Ok(None);
        };
        let Some(url) = tracked.links.get(link as usize - 1).cloned() else {
            return Ok(None);
        };
        let first = !tracked.clicked.contains(&link);
        // Repeated clicks are counted up to a bound and written without a
        // flush: a link hammered (or a scanner's) costs no unbounded
        // durable writes under the tenant's lock.
        if !first && tracked.clicks >= MAX_COUNTED_CLICKS {
            return Ok(Some(Click {
                tenant,
                id,
                link,
                url,
                first,
            }));
        }
        let now = Timestamp::now();
        tracked.first_click.get_or_insert(now);
        tracked.clicks = tracked.clicks.saturating_add(1);
        let mut after = m.clone();
        // One history line per link, at its first click: a person (or a
        // scanner) clicking again grows no history.
        if first {
            tracked.clicked.push(link);
            after.history.push((
                now,
                m.status,
                format!("clicked link {link} ({})", shown(&url)),
            ));
        }
        let mut c = Change::new(m, after);
        c.tracking = Some(tracked);
        if first {
            store.apply(&[c])?;
            store.flush()?;
        } else {
            store.apply_unflushed(&[c])?;
        }
        Ok(Some(Click {
            tenant,
            id,
            link,
            url,
            first,
        }))
    }
}

/// Clicks counted on one message; more are followed but not written.
const MAX_COUNTED_CLICKS: u32 = 100;

/// An address as a history line shows it: at most [`SHOWN_URL_CHARS`]
/// characters, without its query (which may carry personal data).
fn shown(url: &str) -> String {
    let bare = url.split(['?', '#']).next().unwrap_or(url);
    let cut: String = bare.chars().take(SHOWN_URL_CHARS).collect();
    if cut.len() < url.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn a_history_line_shows_an_address_bounded_and_without_its_query() {
        assert_eq!(shown("https://a.example/x"), "https://a.example/x");
        assert_eq!(
            shown("https://a.example/x?kunde=42&mail=a@b.de"),
            "https://a.example/x…"
        );
        let long = format!("https://a.example/{}", "y".repeat(200));
        assert_eq!(shown(&long).chars().count(), SHOWN_URL_CHARS_PLUS_ELLIPSIS);
    }

    const SHOWN_URL_CHARS_PLUS_ELLIPSIS: usize = super::SHOWN_URL_CHARS + 1;
}

//! The dispatcher: one task that moves every tenant's outbox along.
//!
//! ```text
//! planned ─release─▶ rendered ─send time─▶ queued ─claim─▶ sending ─▶ sent
//!                                            ▲   │            │
//!                                  retry_at  │   │ 4xx        ├─▶ deferred ─▶ queued…
//!                                  deferred ─┘   │            ├─▶ failed ─▶ fallback (a letter)
//!                            held ◀─ operator ───┘            └─ relay unreachable: queued again
//! ```
//!
//! Each round: release what is due (rendering it once to catch a broken
//! template before its time), claim queued email up to the free send slots
//! and the throttles, mark it sending (one flush for the group), hand it to
//! the transport concurrently, and record the outcomes as they come back
//! (one flush per group). Letters and call tasks wait for the day's batch.
//! After a crash, messages found sending are queued again: only those that
//! were in flight at the crash can reach the relay once more, at most
//! `max_in_flight` of them per crash, and a message in flight at several
//! crashes once more for each (its history has a line per resend).
//!
//! The engine is split along its seams, one file per step, each an
//! `impl Dispatcher` block over the state defined here:
//!
//! - `setup`: the transport, DKIM keys, the signing secret;
//! - `run`: the loop (rounds over every tenant, the transport, outcomes
//!   grouped and flushed with the next claim, the drain at stop);
//! - `recovery`: messages found sending after a crash;
//! - `release`: planned → rendered → queued, re-rendering after an approval;
//! - `claim`: email due now, checked again, rendered, marked sending;
//! - `record`: what the transport said, a letter in place of a failed email;
//! - `batches`: the day's letter batch and call list;
//! - `bounces`, `call_outcomes`: what comes back;
//! - `actions`: operator actions on messages, pauses;
//! - `status`: the scoped [`super::Snapshot`] read models read.
//!
//! Renders only through [`crate::render`] and reads brand material only
//! through its `MaterialSource`; must never import `approvals`, `control`,
//! `overview` or `content`, which sit above dispatch.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{Local, TimeZone, Timelike};
use tokio::sync::Notify;
use touchpoint_common::domain::Timestamp;
use touchpoint_common::outbox::{Message, MessageStatus, Step, Why};
use touchpoint_common::policy::TenantPolicy;
use touchpoint_common::protocol::Pause;
use touchpoint_common::{Date, TenantId};

use super::mime::{Dkim, Outgoing};
use super::smtp::{Delivery, Relay};
use super::spool::Spool;
use super::throttle::Throttles;
use crate::config::DispatchPaths;
use crate::planner::consent::People;
use crate::policy::{Policies, PolicyHandle};
use crate::render::{InForce, Renderer};
use crate::store::{Change, StoreError, Stores, TenantStore};

pub use clicks::Click;
pub use unsubscribe::{OneClickTarget, Unsubscribed};

use MessageStatus as S;

mod actions;
mod batches;
mod bounces;
mod call_outcomes;
mod claim;
mod clicks;
mod record;
mod recovery;
mod release;
mod run;
mod setup;
mod status;
mod unsubscribe;
mod waiting;

#[cfg(test)]
pub(crate) mod fixture;

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Io(String),
}

type Result<T> = std::result::Result<T, DispatchError>;

enum Transport {
    Relay(Arc<Relay>),
    Spool(Spool),
}

/// One email on its way to the transport.
struct Job {
    tenant: TenantId,
    id: u64,
    domain: String,
    outgoing: Outgoing,
}

/// What came back for one job.
#[derive(Clone)]
struct Outcome {
    tenant: TenantId,
    id: u64,
    domain: String,
    delivery: Delivery,
    /// When the transport answered: what the message's history, its
    /// booking and its day go by, however late it is written.
    at: i64,
    /// Kept from an earlier round (its store could not be written then):
    /// says nothing about the relay now.
    retried: bool,
}

/// Who may see an error dispatch noted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum ErrorAbout {
    /// The relay: everyone waits for it, but it is shown (like the relay's
    /// state) only to a scope over every tenant.
    #[default]
    Everyone,
    /// One tenant's messages.
    Tenant(TenantId),
    /// Stores, files and bounces of any tenant: admins over all.
    AllTenants,
}

#[derive(Default)]
struct State {
    throttles: Throttles,
    pauses: Vec<Pause>,
    /// Tenants whose interrupted sends were looked at since the start.
    recovered: HashSet<TenantId>,
    /// Messages found unreadable (damaged records), noted once each.
    unreadable: HashSet<(TenantId, u64)>,
    /// When each tenant's planned messages were last looked at.
    released_at: HashMap<TenantId, i64>,
    /// Tenants to look at in the next round regardless.
    woken: HashSet<TenantId>,
    /// Tenants with transitions written but not yet flushed.
    unflushed: HashSet<TenantId>,
    /// What the transport said about messages whose tenant store could not
    /// be written to then (closed for a backup's copy, say): tried again
    /// every round. Their messages stay `sending` meanwhile, and the
    /// tenant's interrupted sends are not looked at until these are
    /// written (an email the relay took must not be sent again).
    unrecorded: BTreeMap<TenantId, Vec<Outcome>>,
    /// Emails handed to the transport whose outcome is not yet written
    /// (out, or in `unrecorded`): still `sending`, and not interrupted, so
    /// no look for interrupted sends takes them (an email the relay may
    /// have taken must not go out twice).
    in_flight: HashSet<(TenantId, u64)>,
    /// The day each tenant's batches last closed on their own (at `batch_at`).
    batched: HashMap<TenantId, Date>,
    /// Tenants found with nothing to do at a round's end: left alone (their
    /// stores not even opened, so they close as idle) while this holds
    /// (`run.rs`, `Dispatcher::stays_quiet`).
    quiet: HashMap<TenantId, Quiet>,
    /// Emails found allowed whose domain had no room: left alone while it
    /// has none, before anything of them is read again (`waiting.rs`).
    waiting: waiting::Waiting,
    relay_down_until: Option<i64>,
    relay_backoff: i64,
    today: Option<Date>,
    last_error: String,
    /// Whose the last error is: who may see it.
    last_error_about: ErrorAbout,
}

/// What a round found of a tenant with nothing to do: no message of
/// `day` left to release, and no email due before `next_email` (none
/// queued: `None`), with its outbox at `writes` write groups
/// (`Stores::outbox_writes`). Any write of the outbox since (a plan, an
/// operator's action, an outcome recorded), a new day, or a wake ends it.
#[derive(Clone, Copy, Debug)]
struct Quiet {
    writes: u64,
    day: Date,
    next_email: Option<i64>,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    deferred: AtomicU64,
    failed: AtomicU64,
    fallbacks: AtomicU64,
    resent: AtomicU64,
    resent_cut: AtomicU64,
    /// Mails of the bounce maildir, by what they were (`bounces::MailKind`).
    bounces: AtomicU64,
    unsubscribes: AtomicU64,
    autoreplies: AtomicU64,
    ignored: AtomicU64,
}

/// Moves every tenant's outbox along (see the module docs); one per daemon.
pub struct Dispatcher {
    stores: Arc<Stores>,
    policies: Arc<PolicyHandle>,
    paths: DispatchPaths,
    enabled: bool,
    tick: Duration,
    transport: Transport,
    transport_desc: String,
    max_in_flight: usize,
    secret: [u8; 32],
    dkim: HashMap<String, Dkim>,
    state: Mutex<State>,
    counters: Counters,
    wake: Notify,
    /// The brand material in force, compiled; without a source, the
    /// policy files' templates and slots (tests, benchmarks).
    in_force: InForce,
    /// Messages handed to a transport per minute.
    throughput: super::throughput::Throughput,
    /// Per tenant, under its data version: who is one person (merges).
    people: Mutex<HashMap<TenantId, (u64, Arc<People>)>>,
    /// `[http] public_url`: unsubscribe links point at the daemon's own
    /// endpoint; `None`: at the brand's `email.unsubscribe_url`.
    one_click: Option<String>,
    /// `[http] public_url` when set: where tracked links point (`/c/`).
    click_base: Option<String>,
    /// Whether the missing `public_url` of a brand tracking clicks was logged.
    click_base_missing: AtomicBool,
}

fn today_local(now: i64) -> Date {
    let t = Local
        .timestamp_millis_opt(now)
        .single()
        .unwrap_or_else(touchpoint_common::clock::now_local);
    let d = t.date_naive();
    use chrono::Datelike;
    Date::from_ymd(d.year(), d.month(), d.day()).unwrap_or_else(Date::today)
}

fn minutes_local(now: i64) -> u16 {
    let t = Local
        .timestamp_millis_opt(now)
        .single()
        .unwrap_or_else(touchpoint_common::clock::now_local);
    (t.hour() * 60 + t.minute()) as u16
}

/// A message held for an operator, returning to `from` when released.
fn held(m: Message, from: MessageStatus, why_line: String, reason: String, now: i64) -> Change {
    let mut c = Change::new(m.clone(), m);
    c.after.dispatch.held_from = Some(from);
    why(&mut c.after, why_line);
    c.after.set_status(Timestamp(now), S::Held, reason);
    c
}

fn why(m: &mut Message, text: impl Into<String>) {
    m.why.push(Why {
        step: Step::Dispatch,
        text: text.into(),
    });
}

fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

impl Dispatcher {
    /// The material in force changed (an approval): render with it from now on.
    pub fn material_changed(&self) {
        self.in_force.changed();
    }

    /// Who is one person in a tenant, as its data is now: read again only
    /// after the data changed (a merge, an undo, an import).
    fn people(&self, store: &TenantStore) -> Result<Arc<People>> {
        // The version first: a merge recorded while the map is read leaves
        // the map filed under the old version, read again next time.
        let version = store.data_version()?;
        let mut cache = self.people.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((v, people)) = cache.get(store.id()) {
            if *v == version {
                return Ok(people.clone());
            }
        }
        let people = Arc::new(People::from_merges(&store.merge_map()?));
        cache.insert(store.id().clone(), (version, people.clone()));
        Ok(people)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Looks at a tenant in the next round (after a plan, an action...).
    pub fn wake(&self, tenant: Option<&TenantId>) {
        let mut st = self.state();
        match tenant {
            Some(t) => {
                st.woken.insert(t.clone());
                st.released_at.remove(t);
                st.quiet.remove(t);
            }
            None => {
                st.released_at.clear();
                st.quiet.clear();
            }
        }
        drop(st);
        self.wake.notify_one();
    }

    /// The dealer's policy messages are rendered with, when it is not its
    /// file's ([`crate::render::material::tenant_in_force`]); `None`: render with
    /// `p.tenant(id)`.
    fn approved_tenant(&self, p: &Policies, id: &TenantId) -> Result<Option<Arc<TenantPolicy>>> {
        self.in_force
            .tenant(p, id)
            .map_err(|e| DispatchError::Setup(format!("approved slots of {id}: {e}")))
    }

    fn renderer(&self, p: &Policies) -> std::result::Result<Arc<Renderer>, String> {
        self.in_force.renderer(p)
    }

    fn paused(&self, tenant: &TenantId, service: &str) -> bool {
        self.state()
            .pauses
            .iter()
            .any(|p| p.scope.covers(tenant, service))
    }

    /// Keeps `e` as the last error, shown to those who may see `tenant`
    /// (to admins over every tenant when it is about none in particular:
    /// such errors name files and stores).
    fn note_error(&self, tenant: Option<&TenantId>, e: String) {
        // Shown to operators, and it may quote what came from outside
        // (a file name, a relay): one short clean line.
        let e = touchpoint_common::limits::outside_owned(
            e,
            2 * touchpoint_common::limits::OUTSIDE_CHARS,
        );
        tracing::warn!("dispatch: {e}");
        let mut st = self.state();
        st.last_error = e;
        st.last_error_about = match tenant {
            Some(t) => ErrorAbout::Tenant(t.clone()),
            None => ErrorAbout::AllTenants,
        };
    }

    /// A message a step can go on without when its record cannot be read
    /// (damaged, or stored by a build that wrote what it could not read
    /// back): `None` then, noted once for its tenant, so that one record
    /// does not stop a tenant's dispatch. A store that fails is an error.
    fn message_or_skip(&self, store: &TenantStore, id: u64) -> Result<Option<Message>> {
        match store.message(id) {
            Err(e @ StoreError::Codec { .. }) => {
                let first = self.state().unreadable.insert((store.id().clone(), id));
                if first {
                    self.note_error(
                        Some(store.id()),
                        format!(
                            "tenant {}: message #{id} cannot be read; skipped: {e}",
                            store.id()
                        ),
                    );
                }
                Ok(None)
            }
            other => Ok(other?),
        }
    }

    /// Where letter batches are written (for the console's messages).
    pub fn letters_dir(&self) -> PathBuf {
        self.paths.letters.clone()
    }
}

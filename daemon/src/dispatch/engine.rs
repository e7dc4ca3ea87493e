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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use chrono::{Local, TimeZone, Timelike};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use touchpoint_common::config::{DispatchConfig, SmtpTls};
use touchpoint_common::domain::{Channel, Consent, Customer, Timestamp};
use touchpoint_common::outbox::{Message, MessageStatus, Step, Why};
use touchpoint_common::policy::TenantPolicy;
use touchpoint_common::protocol::{
    ActionResult, BatchSummary, DispatchStatus, MessageAction, Pause, PauseScope, Scope,
    TenantQueue,
};
use touchpoint_common::{Date, TenantId};

use super::letters::{self, BatchRequest};
use super::mime::{self, Dkim, MailParts, Outgoing};
use super::smtp::{Delivery, Relay};
use super::snapshot::{Snapshot, Totals};
use super::spool::Spool;
use super::throttle::{Throttles, Wait};
use super::{bounce, calls, verp};
use crate::config::DispatchPaths;
use crate::ledger;
use crate::planner::consent::{self, People};
use crate::policy::{Policies, PolicyHandle};
use crate::render::{self, Context, InForce, MaterialSource, Renderer};
use crate::store::{Change, StoreError, Stores, TenantStore};

use MessageStatus as S;

/// How long returning outcomes wait for more to share one write.
const GROUP_WAIT: Duration = Duration::from_millis(5);
/// Messages released (rendered once, queued) per tenant and round: the
/// first sends need not wait for a whole day's release.
const RELEASE_BATCH: usize = 2_000;
/// A claimed group at least this large is rendered on two threads.
const PARALLEL_BUILD: usize = 16;
/// Due ids read at a time when claiming.
const CLAIM_BATCH: usize = 512;
/// Due ids looked at per tenant and round at most (a long run of paused or
/// throttled messages costs one round this much, then the next round goes on).
const MAX_SCAN: usize = 20_000;
/// How long email waits after the relay could not be reached, doubling up to the cap.
const RELAY_BACKOFF_MIN: i64 = 2_000;
const RELAY_BACKOFF_MAX: i64 = 300_000;
/// Released messages are looked for at most this often per tenant.
const RELEASE_EVERY_MS: i64 = 30_000;

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
struct Outcome {
    tenant: TenantId,
    id: u64,
    domain: String,
    delivery: Delivery,
}

/// Who may see an error dispatch noted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum ErrorAbout {
    /// The relay: everyone waits for it.
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
    /// When each tenant's planned messages were last looked at.
    released_at: HashMap<TenantId, i64>,
    /// Tenants to look at in the next round regardless.
    woken: HashSet<TenantId>,
    /// Tenants with transitions written but not yet flushed.
    unflushed: HashSet<TenantId>,
    /// The day each tenant's batches last closed on their own (at `batch_at`).
    batched: HashMap<TenantId, Date>,
    relay_down_until: Option<i64>,
    relay_backoff: i64,
    today: Option<Date>,
    last_error: String,
    /// Whose the last error is: who may see it.
    last_error_about: ErrorAbout,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    deferred: AtomicU64,
    failed: AtomicU64,
    fallbacks: AtomicU64,
    resent: AtomicU64,
    resent_cut: AtomicU64,
    /// Mails of the bounce maildir, by what they were ([`MailKind`]).
    bounces: AtomicU64,
    unsubscribes: AtomicU64,
    autoreplies: AtomicU64,
    ignored: AtomicU64,
}

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
}

/// Local wall-clock time of a message's send moment, unix ms.
fn send_moment(m: &Message) -> i64 {
    let naive =
        m.send_on
            .naive()
            .and_hms_opt(u32::from(m.send_at / 60), u32::from(m.send_at % 60), 0);
    naive
        .and_then(|n| Local.from_local_datetime(&n).earliest())
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}

fn today_local(now: i64) -> Date {
    let t = Local
        .timestamp_millis_opt(now)
        .single()
        .unwrap_or_else(Local::now);
    let d = t.date_naive();
    use chrono::Datelike;
    Date::from_ymd(d.year(), d.month(), d.day()).unwrap_or_else(Date::today)
}

fn minutes_local(now: i64) -> u16 {
    let t = Local
        .timestamp_millis_opt(now)
        .single()
        .unwrap_or_else(Local::now);
    (t.hour() * 60 + t.minute()) as u16
}

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

const CRASH_RESEND: &str = "was being sent when the daemon stopped; sent again";
const CUT_RESEND: &str =
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

/// The postage a batch's manifest gives for one message, in cents.
fn manifest_postage(manifest: &std::path::Path, message: u64) -> Option<i64> {
    let mut r = csv::Reader::from_path(manifest).ok()?;
    let headers = r.headers().ok()?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (m, p) = (col("message")?, col("postage_cents")?);
    r.records()
        .filter_map(|rec| rec.ok())
        .find(|rec| rec.get(m).and_then(|v| v.parse().ok()) == Some(message))
        .and_then(|rec| rec.get(p)?.parse().ok())
}

/// Reads or creates the 32-byte secret that signs return paths and links.
fn load_secret(path: &std::path::Path) -> Result<[u8; 32]> {
    match std::fs::read(path) {
        Ok(b) => <[u8; 32]>::try_from(b.as_slice()).map_err(|_| {
            DispatchError::Setup(format!(
                "{}: must hold exactly 32 bytes, has {}",
                path.display(),
                b.len()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            let seed = blake3::hash(
                format!(
                    "{:?}{}{}",
                    SystemTime::now(),
                    std::process::id(),
                    path.display()
                )
                .as_bytes(),
            );
            let mut h = blake3::Hasher::new_keyed(seed.as_bytes());
            if let Ok(extra) = std::fs::read("/proc/sys/kernel/random/uuid") {
                h.update(&extra);
            }
            key.copy_from_slice(h.finalize().as_bytes());
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| DispatchError::Io(e.to_string()))?;
            }
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, key).map_err(|e| DispatchError::Io(e.to_string()))?;
            std::fs::rename(&tmp, path).map_err(|e| DispatchError::Io(e.to_string()))?;
            Ok(key)
        }
        Err(e) => Err(DispatchError::Setup(format!("{}: {e}", path.display()))),
    }
}

impl Dispatcher {
    pub fn new(
        stores: Arc<Stores>,
        policies: Arc<PolicyHandle>,
        cfg: &DispatchConfig,
        paths: DispatchPaths,
    ) -> Result<Self> {
        let secret = load_secret(&paths.secret)?;
        let (transport, desc, max_in_flight) = if cfg.smtp.host.is_empty() {
            (
                Transport::Spool(Spool::new(paths.spool.clone())),
                format!("spool {}", paths.spool.display()),
                256,
            )
        } else {
            let password = if cfg.smtp.password_file.is_empty() {
                None
            } else {
                Some(
                    std::fs::read_to_string(&cfg.smtp.password_file)
                        .map_err(|e| {
                            DispatchError::Setup(format!("{}: {e}", cfg.smtp.password_file))
                        })?
                        .trim_end()
                        .to_string(),
                )
            };
            let mut relay = Relay::new(&cfg.smtp, password)
                .map_err(|e| DispatchError::Setup(format!("smtp relay: {e}")))?;
            if !cfg.smtp.ca_file.is_empty() {
                let pem = std::fs::read(&cfg.smtp.ca_file).map_err(|e| {
                    DispatchError::Setup(format!("dispatch.smtp.ca_file {}: {e}", cfg.smtp.ca_file))
                })?;
                relay = relay.with_root_certificates(&pem).map_err(|e| {
                    DispatchError::Setup(format!("dispatch.smtp.ca_file {}: {e}", cfg.smtp.ca_file))
                })?;
            }
            let tls = match cfg.smtp.tls {
                SmtpTls::None => "plain",
                SmtpTls::Starttls => "starttls",
                SmtpTls::Tls => "tls",
            };
            (
                Transport::Relay(Arc::new(relay)),
                format!(
                    "smtp relay {}:{} ({tls}, {} connections)",
                    cfg.smtp.host, cfg.smtp.port, cfg.smtp.connections
                ),
                // Enough that the relay's connections rarely wait for the
                // loop (its pool queues the rest); what is in flight at a
                // crash may reach the relay once more, so not more.
                (cfg.smtp.connections * cfg.smtp.in_flight_per_connection) as usize,
            )
        };
        let mut dkim = HashMap::new();
        for k in &cfg.dkim {
            let key = Dkim::load(k)
                .map_err(|e| DispatchError::Setup(format!("dkim key for {}: {e}", k.domain)))?;
            dkim.insert(k.domain.to_ascii_lowercase(), key);
        }
        let pauses = stores.central().pauses()?;
        Ok(Self {
            stores,
            policies,
            paths,
            enabled: cfg.enabled,
            tick: Duration::from_millis(cfg.tick_ms),
            transport,
            transport_desc: desc,
            max_in_flight,
            secret,
            dkim,
            state: Mutex::new(State {
                pauses,
                relay_backoff: RELAY_BACKOFF_MIN,
                ..State::default()
            }),
            counters: Counters::default(),
            wake: Notify::new(),
            in_force: InForce::new(None),
            throughput: Default::default(),
            people: Mutex::new(HashMap::new()),
        })
    }

    /// Renders with the brand material in force in `source` (approvals').
    pub fn with_material(mut self, source: Arc<dyn MaterialSource>) -> Self {
        self.in_force = InForce::new(Some(source));
        self
    }

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
            }
            None => st.released_at.clear(),
        }
        drop(st);
        self.wake.notify_one();
    }

    /// The dealer's policy messages are rendered with, when it is not its
    /// file's ([`render::material::tenant_in_force`]); `None`: render with
    /// `p.tenant(id)`.
    fn approved_tenant(&self, p: &Policies, id: &TenantId) -> Result<Option<Arc<TenantPolicy>>> {
        self.in_force
            .tenant(p, id)
            .map_err(|e| DispatchError::Setup(format!("approved slots of {id}: {e}")))
    }

    fn renderer(&self, p: &Policies) -> std::result::Result<Arc<Renderer>, String> {
        self.in_force.renderer(p)
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
                let Some(m) = store.message(id)? else {
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
                            Some(name) => format!("template {name} version {v:016x}"),
                            None => format!(
                                "the dealer's slots in force (template {} version {v:016x})",
                                m.template
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

    fn paused(&self, tenant: &TenantId, service: &str) -> bool {
        self.state()
            .pauses
            .iter()
            .any(|p| p.scope.covers(tenant, service))
    }

    // ----- the loop -------------------------------------------------------------

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
        for t in &tenants {
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
                if jobs.len() < free {
                    let more = self.claim(&store, &policies, now, free - jobs.len())?;
                    jobs.extend(more);
                }
                Ok(())
            })();
            if let Err(e) = r {
                self.note_error(Some(t), format!("tenant {t}: {e}"));
            }
        }
        jobs
    }

    /// Keeps `e` as the last error, shown to those who may see `tenant`
    /// (to admins over every tenant when it is about none in particular:
    /// such errors name files and stores).
    fn note_error(&self, tenant: Option<&TenantId>, e: String) {
        tracing::warn!("dispatch: {e}");
        let mut st = self.state();
        st.last_error = e;
        st.last_error_about = match tenant {
            Some(t) => ErrorAbout::Tenant(t.clone()),
            None => ErrorAbout::AllTenants,
        };
    }

    // ----- after a crash -------------------------------------------------------

    /// Messages found sending when a tenant is first looked at: the daemon
    /// stopped while they were with a transport.
    fn requeue_interrupted(&self, store: &TenantStore, p: &Policies, now: i64) -> Result<()> {
        if self.state().recovered.contains(store.id()) {
            return Ok(());
        }
        let _lock = store.plan_lock();
        let mut changes = Vec::new();
        for id in store.in_flight()? {
            let Some(m) = store.message(id)? else {
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

    // ----- release: planned → rendered → queued ---------------------------------

    fn release_due(&self, store: &TenantStore, p: &Policies, now: i64) -> Result<()> {
        {
            let mut st = self.state();
            let woken = st.woken.remove(store.id());
            let last = st.released_at.get(store.id()).copied().unwrap_or(i64::MIN);
            if !woken && now.saturating_sub(last) < RELEASE_EVERY_MS {
                return Ok(());
            }
            st.released_at.insert(store.id().clone(), now);
        }
        let today = today_local(now);
        let _lock = store.plan_lock();
        let mut ids = store.releasable(today)?;
        if ids.is_empty() {
            return Ok(());
        }
        if ids.len() > RELEASE_BATCH {
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
            let Some(m) = store.message(id)? else {
                continue;
            };
            if !m.status.is_revisable() {
                continue;
            }
            let due = send_moment(&m) <= now;
            let mut after = m.clone();
            if m.status == S::Planned {
                match tenant.map(|t| self.check_renders(store, p, &renderer, t, &m, today)) {
                    Some(Ok(version)) => {
                        after.dispatch.template_version = version;
                        after.set_status(
                            Timestamp(now),
                            S::Rendered,
                            format!(
                                "rendered with template {} version {version:016x}",
                                m.template
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
        Ok(())
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

    // ----- email: claim ---------------------------------------------------------

    /// Claims due email of one tenant, up to `free`: checks, renders, marks
    /// them sending (flushed) and returns them for the transport.
    fn claim(&self, store: &TenantStore, p: &Policies, now: i64, free: usize) -> Result<Vec<Job>> {
        if free == 0 {
            return Ok(Vec::new());
        }
        if self.state().relay_down_until.is_some_and(|t| t > now) {
            return Ok(Vec::new());
        }
        if store.due(Channel::Email, now, 1)?.is_empty() {
            return Ok(Vec::new());
        }
        let approved = self.approved_tenant(p, store.id())?;
        let Some(tenant) = approved.as_deref().or_else(|| p.tenant(store.id())) else {
            return Ok(Vec::new());
        };
        let renderer = self.renderer(p).map_err(DispatchError::Setup)?;
        let people = self.people(store)?;
        let today = today_local(now);
        {
            let sent = store.sent_on(today)?;
            self.state().throttles.seed_tenant(store.id(), sent);
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
            match self.state().throttles.take(store.id(), &domain, now) {
                Ok(()) => {}
                Err(Wait::Domain) => continue,
                Err(Wait::TenantDay) | Err(Wait::Global) => break 'claim,
            }
            budgets.take(&m, cost);
            pending.push((m, customer, domain, to));
        }
        // Render and build the MIME of the group on both cores.
        let cx = Context {
            renderer: &renderer,
            brand: &p.brand,
            tenant,
            today,
        };
        let build = |group: &[(Message, Customer, String, String)]| {
            group
                .iter()
                .map(|(m, c, _, _)| self.build_email(store, p, &cx, m, c))
                .collect::<Vec<_>>()
        };
        let built: Vec<std::result::Result<Outgoing, String>> = if pending.len() >= PARALLEL_BUILD {
            let (a, b) = pending.split_at(pending.len() / 2);
            std::thread::scope(|scope| {
                let other = scope.spawn(|| build(b));
                let mut out = build(a);
                match other.join() {
                    Ok(rest) => out.extend(rest),
                    Err(_) => out.extend(
                        b.iter()
                            .map(|_| Err("building the email panicked".to_string())),
                    ),
                }
                out
            })
        } else {
            build(&pending)
        };
        for ((m, _, domain, to), outgoing) in pending.into_iter().zip(built) {
            let outgoing = match outgoing {
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
            changes.push(Change::new(m, after));
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
        Ok(jobs)
    }

    /// A queued message that may be taken now, with its recipient: not
    /// paused, and still allowed (the dealer may have left the service, the
    /// customer withdrawn consent or gone in a merge since planning; then it
    /// is cancelled into `changes`).
    #[allow(clippy::too_many_arguments)]
    fn claimable(
        &self,
        store: &TenantStore,
        p: &Policies,
        tenant: &TenantPolicy,
        people: &People,
        id: u64,
        now: i64,
        changes: &mut Vec<Change>,
    ) -> Result<Option<(Message, Customer)>> {
        let Some(m) = store.message(id)? else {
            return Ok(None);
        };
        if !matches!(m.status, S::Queued | S::Deferred) || self.paused(store.id(), &m.service) {
            return Ok(None);
        }
        match self.still_allowed(store, p, tenant, people, &m)? {
            Ok(c) => Ok(Some((m, c))),
            Err(reason) => {
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
    fn consent_of(
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
    ) -> std::result::Result<Outgoing, String> {
        let tenant = cx.tenant;
        let vehicles = render::message_vehicles(store, m).map_err(|e| e.to_string())?;
        let unsub = mime::unsubscribe_url(
            &p.brand.email.unsubscribe_url,
            store.id(),
            m.id,
            &self.secret,
        );
        let rendered = cx
            .email(m, customer, &vehicles, &unsub)
            .map_err(|e| format!("template {}: {e}", m.template))?;
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
            date: SystemTime::now(),
        };
        let dkim = self.dkim.get(&domain_of(&from));
        mime::build(&parts, dkim).map_err(|e| format!("cannot build the email: {e}"))
    }

    // ----- email: outcomes ------------------------------------------------------

    /// Records outcomes, moves every outbox along and returns the email to
    /// hand to the transport; flushes every tenant written to once, before
    /// the new jobs go out: one flush covers both.
    fn next_jobs(&self, done: Vec<Outcome>, free: usize, full: bool) -> Vec<Job> {
        if !done.is_empty() {
            self.record_outcomes(done);
        }
        let jobs = self.advance_outboxes(free, full);
        match self.flush_written() {
            Ok(()) => jobs,
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
    fn flush_written(&self) -> Result<()> {
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

    /// Records outcomes, durably.
    fn record_and_flush(&self, done: Vec<Outcome>) {
        self.record_outcomes(done);
        if let Err(e) = self.flush_written() {
            self.note_error(None, format!("flush: {e}"));
        }
    }

    fn record_outcomes(&self, done: Vec<Outcome>) {
        let now = Timestamp::now().0;
        let policies = self.policies.current();
        let mut by_tenant: BTreeMap<TenantId, Vec<Outcome>> = BTreeMap::new();
        for o in done {
            by_tenant.entry(o.tenant.clone()).or_default().push(o);
        }
        for (t, outcomes) in by_tenant {
            if let Err(e) = self.record_tenant_outcomes(&t, outcomes, &policies, now) {
                self.note_error(Some(&t), format!("tenant {t}: recording outcomes: {e}"));
            }
        }
    }

    fn record_tenant_outcomes(
        &self,
        t: &TenantId,
        outcomes: Vec<Outcome>,
        p: &Policies,
        now: i64,
    ) -> Result<()> {
        let store = self.stores.tenant(t)?;
        let _lock = store.plan_lock();
        let today = today_local(now);
        let retry_first = i64::from(p.brand.email.retry_first_minutes) * 60_000;
        let max_age = i64::from(p.brand.email.retry_max_hours) * 3_600_000;
        let mut changes = Vec::new();
        let mut unreachable = None;
        for o in outcomes {
            let sent = matches!(o.delivery, Delivery::Accepted { .. });
            self.state().throttles.done(t, &o.domain, sent);
            let Some(m) = store.message(o.id)? else {
                continue;
            };
            if m.status != S::Sending {
                continue;
            }
            let mut after = m.clone();
            match o.delivery {
                Delivery::Accepted { response } => {
                    after.dispatch.last_error.clear();
                    after.dispatch.retry_at = None;
                    after.set_status(
                        Timestamp(now),
                        S::Sent,
                        format!("accepted: {}", response.trim()),
                    );
                    let mut c = Change::new(m, after);
                    c.sent_on = Some(today);
                    ledger::book(&mut c, &p.brand, p.brand.channels.email.cost.0, today);
                    changes.push(c);
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                }
                Delivery::Transient { code, message } => {
                    let first = m.dispatch.first_attempt.map(|t| t.0).unwrap_or(now);
                    let answer = format!("{code} {}", message.trim());
                    if now - first >= max_age {
                        changes.extend(self.fail_email(
                            &store,
                            p,
                            m,
                            format!(
                                "still refused after {} attempts over {} hours: {answer}",
                                after.dispatch.attempts, p.brand.email.retry_max_hours
                            ),
                            now,
                        )?);
                        continue;
                    }
                    let exp = after.dispatch.attempts.saturating_sub(1).min(16);
                    let wait = retry_first.saturating_mul(1 << exp).min(max_age);
                    let at = (now + wait).min(first + max_age);
                    after.dispatch.retry_at = Some(Timestamp(at));
                    after.dispatch.last_error = answer.clone();
                    after.set_status(
                        Timestamp(now),
                        S::Deferred,
                        format!("{answer}; next attempt {}", Timestamp(at)),
                    );
                    changes.push(Change::new(m, after));
                    self.counters.deferred.fetch_add(1, Ordering::Relaxed);
                }
                Delivery::Permanent { code, message } => {
                    let answer = format!("{code} {}", message.trim());
                    if matches!(code, 550 | 551 | 553) {
                        let addr = m.dispatch.address.clone();
                        if !addr.is_empty() {
                            store.mark_bad_address(&addr, &answer)?;
                        }
                    }
                    changes.extend(self.fail_email(
                        &store,
                        p,
                        m,
                        format!("refused: {answer}"),
                        now,
                    )?);
                }
                Delivery::Unreachable { error } => {
                    if error.contains("may have taken the message") {
                        self.counters.resent_cut.fetch_add(1, Ordering::Relaxed);
                        after
                            .history
                            .push((Timestamp(now), S::Sending, CUT_RESEND.into()));
                    }
                    // Says nothing about the message: it waits for the relay.
                    after.dispatch.attempts = after.dispatch.attempts.saturating_sub(1);
                    after.dispatch.last_error = error.clone();
                    after.dispatch.retry_at = Some(Timestamp(now));
                    after.set_status(
                        Timestamp(now),
                        S::Queued,
                        format!("relay not reached: {error}; waits"),
                    );
                    changes.push(Change::new(m, after));
                    unreachable = Some(error);
                }
            }
        }
        store.apply_unflushed(&changes)?;
        let accepted = changes.iter().filter(|c| c.after.status == S::Sent).count() as u64;
        self.throughput.record(now, accepted);
        let mut st = self.state();
        st.unflushed.insert(t.clone());
        let relay_was_down = st.relay_down_until.is_some();
        match unreachable {
            Some(e) => {
                let backoff = st.relay_backoff;
                st.relay_down_until = Some(now + backoff);
                st.relay_backoff = (backoff * 2).min(RELAY_BACKOFF_MAX);
                st.last_error = format!("relay not reached: {e}");
                st.last_error_about = ErrorAbout::Everyone;
            }
            None => {
                if changes.iter().any(|c| c.after.status == S::Sent) {
                    st.relay_down_until = None;
                    st.relay_backoff = RELAY_BACKOFF_MIN;
                }
            }
        }
        let relay_down = st.relay_down_until.is_some();
        drop(st);
        if relay_was_down != relay_down {
            self.stores
                .events()
                .publish(&[touchpoint_common::protocol::Topic::Dispatch], None);
        }
        Ok(())
    }

    /// An email that cannot be delivered: a letter in its place if the
    /// customer may get one, else failed. Returns the changes to write.
    fn fail_email(
        &self,
        store: &TenantStore,
        p: &Policies,
        m: Message,
        reason: String,
        now: i64,
    ) -> Result<Vec<Change>> {
        let mut email = m.clone();
        email.dispatch.last_error = reason.clone();
        email.dispatch.retry_at = None;
        why(&mut email, format!("email failed: {reason}"));
        let letter = match self.fallback_allowed(store, p, &m)? {
            Ok(how) => Some(how),
            Err(why_not) => {
                why(&mut email, format!("no letter instead: {why_not}"));
                None
            }
        };
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        let Some(how) = letter else {
            email.set_status(Timestamp(now), S::Failed, reason);
            let mut c = Change::new(m, email);
            ledger::release(&mut c);
            return Ok(vec![c]);
        };
        let id = store.reserve_message_ids(1)?;
        let mut letter = m.clone();
        letter.id = id;
        letter.message_id = match m.message_id.rsplit_once('@') {
            Some((_, domain)) => format!("<tp.{}.{id}@{domain}", store.id()),
            None => format!("<tp.{}.{id}@touchpoint.invalid>", store.id()),
        };
        letter.channel = Channel::Post;
        letter.cost = p.brand.channels.post.cost.0;
        letter.send_on = today_local(now);
        letter.send_at = minutes_local(now);
        letter.status = S::Queued;
        letter.planned_at = Timestamp(now);
        letter.history = vec![(
            Timestamp(now),
            S::Queued,
            format!("letter in place of email #{}", m.id),
        )];
        letter.dispatch = Default::default();
        letter.dispatch.fallback_of = Some(m.id);
        letter.dispatch.retry_at = Some(Timestamp(now));
        why(
            &mut letter,
            format!(
                "fallback: email #{} failed ({reason}); sent as a letter instead: {how}",
                m.id
            ),
        );
        email.dispatch.fallback_to = Some(id);
        why(&mut email, format!("replaced by letter #{id}"));
        email.set_status(
            Timestamp(now),
            S::Fallback,
            format!("replaced by letter #{id}"),
        );
        let mut ce = Change::new(m, email);
        ledger::release(&mut ce);
        let mut cl = Change {
            before: None,
            after: letter.clone(),
            ledger: Vec::new(),
            claim_occasions: true,
            free_occasions: false,
            sent_on: None,
        };
        ledger::reserve(&mut cl, &letter);
        self.counters.fallbacks.fetch_add(1, Ordering::Relaxed);
        Ok(vec![ce, cl])
    }

    /// Whether a failed email may become a letter: postal consent, a
    /// complete address, the dealer sends letters, the service allows them.
    fn fallback_allowed(
        &self,
        store: &TenantStore,
        p: &Policies,
        m: &Message,
    ) -> Result<std::result::Result<String, String>> {
        let Some(tenant) = p.tenant(store.id()) else {
            return Ok(Err("the dealer has no policy".into()));
        };
        if !tenant.channels.enabled.contains(&Channel::Post) {
            return Ok(Err("the dealer does not send letters".into()));
        }
        if let Some(svc) = p.brand.services.get(&m.service) {
            if svc.forbidden_channels.contains(&Channel::Post)
                || svc.mandatory_channel.is_some_and(|c| c != Channel::Post)
                || !svc.channels.contains(&Channel::Post)
            {
                return Ok(Err(format!("service {} is not sent by post", m.service)));
            }
        }
        let Some(c) = store.customer(&m.recipient)? else {
            return Ok(Err(format!("customer {} no longer exists", m.recipient)));
        };
        let a = &c.address;
        if a.street.is_empty() || a.postcode.is_empty() || a.city.is_empty() {
            return Ok(Err("no complete postal address".into()));
        }
        let people = self.people(store)?;
        let numbers = people.numbers_of(&m.recipient);
        let basis = match self.consent_of(store, p, &numbers, Channel::Post, &m.recipient)? {
            Ok(basis) => basis,
            Err(why_not) => return Ok(Err(why_not)),
        };
        Ok(Ok(format!(
            "{basis}; to {} {}, {} {}",
            a.street, a.house_no, a.postcode, a.city
        )))
    }

    // ----- letters and call tasks ----------------------------------------------

    /// Writes a letter batch and a call list of a tenant from what is queued.
    fn close_batches(
        &self,
        store: &TenantStore,
        p: &Policies,
        now: i64,
    ) -> Result<Vec<BatchSummary>> {
        let mut out = Vec::new();
        if let Some(b) = self.write_letter_batch(store, p, now)? {
            out.push(b);
        }
        if let Some(b) = self.write_call_list(store, p, now)? {
            out.push(b);
        }
        if !out.is_empty() {
            self.stores.events().publish(
                &[touchpoint_common::protocol::Topic::Dispatch],
                Some(store.id()),
            );
        }
        Ok(out)
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

    /// The first batch number of the day not yet used by a file of this
    /// tenant (a batch left incomplete by a crash keeps its number taken
    /// only until recovery removes it).
    fn next_batch_seq(
        &self,
        dir: &std::path::Path,
        tenant: &TenantId,
        prefix: &str,
        day: Date,
    ) -> u32 {
        let stem = format!("{prefix}{tenant}-{day}-");
        let used: HashSet<u32> = std::fs::read_dir(dir.join(tenant.as_str()))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let rest = name.strip_prefix(&stem)?;
                        rest.split('.').next()?.parse().ok()
                    })
                    .collect()
            })
            .unwrap_or_default();
        (1..).find(|n| !used.contains(n)).unwrap_or(1)
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
        let seq = self.next_batch_seq(&self.paths.letters, store.id(), "", day);
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
            let written = letters::write_batch(
                &self.paths.letters,
                BatchRequest {
                    tenant: store.id(),
                    day,
                    seq,
                    letters: letters_in,
                    postage: &p.brand.postage,
                },
            );
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

    fn write_call_list(
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
        let seq = self.next_batch_seq(&self.paths.calls, store.id(), "calls-", day);
        let name = format!("calls-{}-{day}-{seq:02}.csv", store.id());
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
        let path = match calls::write_tasks(&self.paths.calls, store.id(), day, seq, &tasks) {
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

    /// Closes the day's batches now (an operator asked).
    pub fn run_batches(&self, tenants: &[TenantId]) -> Result<Vec<BatchSummary>> {
        let now = Timestamp::now().0;
        let p = self.policies.current();
        let mut out = Vec::new();
        for t in tenants {
            let store = self.stores.tenant(t)?;
            self.requeue_interrupted(&store, &p, now)?;
            self.state().woken.insert(t.clone());
            self.release_due(&store, &p, now)?;
            out.extend(self.close_batches(&store, &p, now)?);
        }
        Ok(out)
    }

    // ----- call outcomes --------------------------------------------------------

    /// Applies outcomes the call centre reported: history, booked minutes,
    /// a wrong number marks the number bad, a refusal withdraws phone consent.
    /// Only phone tasks that went out in a call list take an outcome; any
    /// other row is an error with its line, and the rest of the file applies.
    pub fn call_outcomes(
        &self,
        file_name: &str,
        data: &[u8],
        allowed: &dyn Fn(&TenantId) -> bool,
    ) -> Result<touchpoint_common::protocol::OutcomeReport> {
        let (rows, errors) = calls::parse_outcomes(file_name, data);
        let mut report = touchpoint_common::protocol::OutcomeReport {
            errors: errors
                .iter()
                .map(|e| format!("{file_name}:{}: {}: {}", e.line, e.field, e.message))
                .collect(),
            ..Default::default()
        };
        let p = self.policies.current();
        let now = Timestamp::now().0;
        let mut by_tenant: BTreeMap<TenantId, Vec<calls::CallOutcome>> = BTreeMap::new();
        for r in rows {
            by_tenant.entry(r.tenant.clone()).or_default().push(r);
        }
        for (t, rows) in by_tenant {
            if !allowed(&t) {
                report.errors.push(format!(
                    "{file_name}: tenant {t}: outside your scope; {} rows skipped",
                    rows.len()
                ));
                continue;
            }
            let store = match self.stores.tenant(&t) {
                Ok(s) => s,
                Err(e) => {
                    report.errors.push(format!("{file_name}: tenant {t}: {e}"));
                    continue;
                }
            };
            let _lock = store.plan_lock();
            let mut changes = Vec::new();
            for r in rows {
                let refused = |why: String| {
                    format!("{file_name}:{}: task_id: {t}.{}: {why}", r.line, r.message)
                };
                let Some(m) = store.message(r.message)? else {
                    report.errors.push(refused("no such message".into()));
                    continue;
                };
                // Only a call that was made can have an outcome: a row naming
                // a letter or an email (a typo, a mixed-up file) would
                // otherwise withdraw phone consent or mark a number wrong.
                if m.channel != Channel::Phone {
                    let what = match m.channel {
                        Channel::Post => "a letter (post)",
                        _ => "an email",
                    };
                    report.errors.push(refused(format!(
                        "{what}, not a call task; outcome not applied"
                    )));
                    continue;
                }
                if m.status != S::Sent || m.dispatch.batch.is_empty() {
                    report.errors.push(refused(format!(
                        "not in a call list yet ({}); outcome not applied",
                        m.status
                    )));
                    continue;
                }
                let line = format!(
                    "call outcome: {:?}{}{}",
                    r.outcome,
                    r.minutes.map(|m| format!(", {m} min")).unwrap_or_default(),
                    if r.note.is_empty() {
                        String::new()
                    } else {
                        format!(", {}", r.note)
                    }
                );
                if m.why.iter().any(|w| w.text == line) {
                    report.unchanged += 1;
                    continue;
                }
                let mut c = Change::new(m.clone(), m.clone());
                why(&mut c.after, line.clone());
                c.after.history.push((Timestamp(now), m.status, line));
                if let (Some(min), Some(rate)) = (r.minutes, p.brand.channels.phone.per_minute) {
                    let actual = i64::from(min) * rate.0;
                    let delta = actual - m.dispatch.booked;
                    if delta != 0 && m.status == S::Sent {
                        let day = today_local(now);
                        let share = ledger::brand_share(&p.brand, &m.service, day, actual)
                            - m.dispatch.brand_share;
                        c.after.dispatch.booked = actual;
                        c.after.dispatch.brand_share += share;
                        c.ledger.push((
                            touchpoint_common::outbox::month_of(day),
                            m.service.clone(),
                            crate::store::LedgerDelta {
                                reserved: 0,
                                booked: delta,
                                brand: share,
                            },
                        ));
                    }
                }
                match r.outcome {
                    calls::Outcome::WrongNumber => {
                        if let Some(c) = store.customer(&m.recipient)? {
                            if let Some(ph) = c.phone {
                                store.mark_bad_address(&ph, "call centre: wrong number")?;
                            }
                        }
                    }
                    calls::Outcome::Declined => {
                        store.record_consent(&Consent {
                            customer_no: m.recipient.clone(),
                            channel: Channel::Phone,
                            granted: false,
                            source: format!("call-centre:{file_name}"),
                            at: Timestamp(now),
                        })?;
                    }
                    _ => {}
                }
                changes.push(c);
                report.applied += 1;
            }
            store.apply(&changes)?;
        }
        Ok(report)
    }

    // ----- bounces and unsubscribes ---------------------------------------------

    fn read_bounce_maildir(&self, p: &Policies) -> Result<()> {
        let Some(root) = &self.paths.bounce_maildir else {
            return Ok(());
        };
        let md = bounce::Maildir::open(root)
            .map_err(|e| DispatchError::Io(format!("{}: {e}", root.display())))?;
        let pending = md.pending().map_err(|e| DispatchError::Io(e.to_string()))?;
        for path in pending {
            let raw = match std::fs::read(&path) {
                Ok(r) => r,
                Err(e) => {
                    self.note_error(None, format!("{}: {e}", path.display()));
                    continue;
                }
            };
            let c = bounce::classify(&raw, &p.brand.email.bounce_domain, &self.secret);
            let kind = match self.handle_returned_mail(&c, p, &path) {
                Ok(kind) => kind,
                Err(e) => {
                    // Leave it in new/: tried again next round.
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
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
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
        let Some(m) = store.message(*id)? else {
            tracing::info!(file, %tenant, id, "bounce for an unknown message; ignored");
            return Ok(MailKind::Ignored);
        };
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
                let reason = format!("hard bounce {status}: {}", diagnostic.trim());
                if !addr.is_empty() {
                    store.mark_bad_address(&addr, &reason)?;
                }
                let changes = self.fail_email(&store, p, m, reason, now)?;
                store.apply(&changes)?;
                Ok(MailKind::Bounce)
            }
            bounce::Verdict::SoftBounce { status, .. } => {
                // The relay retries on its own; the next report says more.
                tracing::info!(file, %tenant, id, status, "temporary delivery failure reported; nothing done");
                Ok(MailKind::Bounce)
            }
            bounce::Verdict::Unsubscribe => {
                let recorded = store.record_consent(&Consent {
                    customer_no: m.recipient.clone(),
                    channel: Channel::Email,
                    granted: false,
                    source: format!("unsubscribe mail ({file})"),
                    at: Timestamp(now),
                })?;
                if recorded {
                    let _lock = store.plan_lock();
                    if let Some(m) = store.message(*id)? {
                        let mut c = Change::new(m.clone(), m.clone());
                        c.after.history.push((
                            Timestamp(now),
                            m.status,
                            "recipient unsubscribed from email".into(),
                        ));
                        store.apply(&[c])?;
                    }
                }
                store.flush()?;
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

    // ----- operator actions -----------------------------------------------------

    pub fn apply_action(
        &self,
        tenant: &TenantId,
        ids: &[u64],
        action: MessageAction,
        by: &str,
    ) -> Result<Vec<ActionResult>> {
        let store = self.stores.tenant(tenant)?;
        let _lock = store.plan_lock();
        let now = Timestamp::now().0;
        let mut out = Vec::new();
        let mut changes = Vec::new();
        for &id in ids {
            let Some(m) = store.message(id)? else {
                out.push(ActionResult {
                    id,
                    outcome: Err("no such message".into()),
                });
                continue;
            };
            let mut c = Change::new(m.clone(), m.clone());
            let a = &mut c.after;
            let by_line = format!("{} by {by}", action.as_str());
            let r: std::result::Result<(), String> = match (action, m.status) {
                (MessageAction::Hold, S::Planned | S::Rendered | S::Queued | S::Deferred) => {
                    a.dispatch.held_from = Some(m.status);
                    a.set_status(Timestamp(now), S::Held, by_line);
                    Ok(())
                }
                (MessageAction::Release, S::Held) => {
                    let back = a.dispatch.held_from.take().unwrap_or(S::Queued);
                    let back = if back == S::Deferred { S::Queued } else { back };
                    if back == S::Queued {
                        a.dispatch.retry_at = Some(Timestamp(now));
                    }
                    a.set_status(Timestamp(now), back, by_line);
                    Ok(())
                }
                (
                    MessageAction::Cancel,
                    S::Planned | S::Rendered | S::Queued | S::Deferred | S::Held,
                ) => {
                    why(a, format!("cancelled by {by}"));
                    a.dispatch.last_error = by_line.clone();
                    a.set_status(Timestamp(now), S::Cancelled, by_line);
                    // Occasions stay taken: an operator's cancel is final for them.
                    ledger::release(&mut c);
                    Ok(())
                }
                (MessageAction::Retry, S::Deferred | S::Failed) if m.channel == Channel::Email => {
                    a.dispatch.retry_at = Some(Timestamp(now));
                    a.dispatch.first_attempt = None;
                    if m.status == S::Failed {
                        // Re-reserve what the failure released.
                        ledger::reserve(&mut c, &m);
                    }
                    c.after.set_status(Timestamp(now), S::Queued, by_line);
                    Ok(())
                }
                (_, s) => Err(format!("cannot {} a message that is {s}", action.as_str())),
            };
            match r {
                Ok(()) => {
                    out.push(ActionResult {
                        id,
                        outcome: Ok(c.after.status),
                    });
                    changes.push(c);
                }
                Err(e) => out.push(ActionResult {
                    id,
                    outcome: Err(e),
                }),
            }
        }
        store.apply(&changes)?;
        drop(_lock);
        self.wake(Some(tenant));
        Ok(out)
    }

    pub fn pause(&self, scope: PauseScope, by: &str) -> Result<Vec<Pause>> {
        let mut st = self.state();
        if !st.pauses.iter().any(|p| p.scope == scope) {
            st.pauses.push(Pause {
                scope,
                by: by.to_string(),
                at: Timestamp::now(),
            });
            st.pauses.sort_by(|a, b| a.scope.cmp(&b.scope));
        }
        self.stores.central().set_pauses(&st.pauses)?;
        Ok(st.pauses.clone())
    }

    pub fn resume(&self, scope: PauseScope) -> Result<Vec<Pause>> {
        let mut st = self.state();
        st.pauses.retain(|p| p.scope != scope);
        self.stores.central().set_pauses(&st.pauses)?;
        let out = st.pauses.clone();
        drop(st);
        self.wake.notify_one();
        Ok(out)
    }

    /// What a caller with `scope` sees of dispatch: the queues of
    /// `tenants` (theirs), and of pauses, throttles and the last error only
    /// what names no other tenant.
    pub fn status(&self, scope: &Scope, tenants: &[TenantId]) -> DispatchStatus {
        let today = today_local(Timestamp::now().0);
        let mut queues = Vec::new();
        for t in tenants {
            if let Ok(s) = self.stores.tenant(t) {
                queues.push(TenantQueue {
                    tenant: t.clone(),
                    email: s.queued_count(Channel::Email) as u64,
                    post: s.queued_count(Channel::Post) as u64,
                    phone: s.queued_count(Channel::Phone) as u64,
                    in_flight: s.in_flight().map(|v| v.len() as u64).unwrap_or(0),
                    sent_today: s.sent_on(today).unwrap_or(0),
                });
            }
        }
        self.snapshot(scope).into_status(queues)
    }

    /// Dispatch's state now, cut to what a caller with `scope` may see: of
    /// pauses, throttles and the last error only what names no other tenant.
    pub fn snapshot(&self, scope: &Scope) -> Snapshot {
        let now = Timestamp::now().0;
        let throughput = self.throughput.last_hour(now);
        let mut st = self.state();
        let c = &self.counters;
        let last_error = match (&st.last_error_about, scope) {
            (_, Scope::All) | (ErrorAbout::Everyone, _) => st.last_error.clone(),
            (ErrorAbout::Tenant(t), scope) if scope.allows(t) => st.last_error.clone(),
            _ => String::new(),
        };
        Snapshot {
            enabled: self.enabled,
            transport: self.transport_desc.clone(),
            paused: st
                .pauses
                .iter()
                .filter(|p| p.scope.tenant.as_ref().is_none_or(|t| scope.allows(t)))
                .cloned()
                .collect(),
            throttles: st
                .throttles
                .status(now)
                .into_iter()
                .filter(|th| match th.name.strip_prefix("tenant ") {
                    Some(t) => TenantId::new(t).is_ok_and(|t| scope.allows(&t)),
                    None => true,
                })
                .collect(),
            relay_down_until: st.relay_down_until.filter(|t| *t > now).map(Timestamp),
            last_error,
            sent_last_minute: st.throttles.sent_last_minute(now),
            totals: Totals {
                sent: c.sent.load(Ordering::Relaxed),
                deferred: c.deferred.load(Ordering::Relaxed),
                failed: c.failed.load(Ordering::Relaxed),
                fallbacks: c.fallbacks.load(Ordering::Relaxed),
                resent_after_crash: c.resent.load(Ordering::Relaxed),
                resent_after_cut: c.resent_cut.load(Ordering::Relaxed),
                bounces: c.bounces.load(Ordering::Relaxed),
                unsubscribes: c.unsubscribes.load(Ordering::Relaxed),
                autoreplies: c.autoreplies.load(Ordering::Relaxed),
                ignored: c.ignored.load(Ordering::Relaxed),
            },
            throughput,
        }
    }

    /// Where letter batches are written (for the console's messages).
    pub fn letters_dir(&self) -> PathBuf {
        self.paths.letters.clone()
    }

    /// The secret's unsubscribe token check, for a web endpoint's backend.
    pub fn unsubscribe_target(&self, token: &str) -> Option<(TenantId, u64)> {
        verp::parse_unsubscribe_token(token, &self.secret)
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;

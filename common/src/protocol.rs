//! The control protocol between `touchpoint` and `touchpointd`.
//!
//! Transport: a Unix stream socket carrying length-delimited frames (4-byte
//! big-endian length, at most [`MAX_FRAME_BYTES`]); each frame is one message
//! encoded by [`crate::codec::encode_frame`].
//!
//! The first frame from the client is a [`Hello`], answered by a
//! [`HelloReply`]. Those two types are frozen: they must decode the same in
//! every version, so that a client and daemon of different versions can always
//! tell each other so instead of exchanging garbage. After the hello, the
//! client sends [`RequestEnvelope`]s and the daemon answers each with a
//! [`ResponseEnvelope`] carrying the same id, in order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::codec::MAX_FRAME_BYTES;
use crate::domain::{Channel, ImportReport, MergeRecord, TenantStats, Timestamp};
use crate::outbox::{MessageStatus, PlanChange, PlanReport};
pub use crate::queue::QueueFilter;
pub use crate::report::answer::{Report, ReportQuery};
use crate::{Date, TenantId};

/// Magic bytes at the start of every hello.
pub const PROTOCOL_MAGIC: [u8; 4] = *b"TPNT";
/// Bump on any incompatible change to the messages after the hello.
pub const PROTOCOL_VERSION: u32 = 8;
/// Size of the chunks a file is uploaded in; well below the frame limit.
pub const UPLOAD_CHUNK_BYTES: usize = 1 << 20;

/// Frozen. The first frame a client sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub magic: [u8; 4],
    pub version: u32,
    /// Free text for the daemon's log ("touchpoint 0.1.0").
    pub client: String,
}

impl Hello {
    pub fn current(client: impl Into<String>) -> Self {
        Self {
            magic: PROTOCOL_MAGIC,
            version: PROTOCOL_VERSION,
            client: client.into(),
        }
    }
}

/// Frozen. The daemon's answer to a [`Hello`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    Welcome {
        version: u32,
        daemon: String,
        identity: Identity,
    },
    Rejected {
        version: u32,
        reason: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, across all tenants in scope.
    Admin,
    /// Queues, imports, merges of the tenants in scope.
    Operator,
    /// Approves brand material; reads the rest.
    Reviewer,
    /// Reads only.
    #[serde(rename = "read-only", alias = "readonly")]
    ReadOnly,
    /// The brand's central evaluation: pooled reports and brand material
    /// only, never a tenant's records, queue, messages or figures (M1).
    Brand,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Reviewer => "reviewer",
            Role::ReadOnly => "read-only",
            Role::Brand => "brand",
        }
    }

    /// Whether the role may make a request at all (tenant scope is checked
    /// separately). The daemon enforces this; the console uses it to offer
    /// only the actions that will be allowed.
    pub fn allows(self, request: &Request) -> bool {
        if self == Role::Brand {
            return brand_allows(request);
        }
        match request {
            // The pooled report is the brand's; an admin may check what it shows.
            Request::Report { query } if query.pooled => matches!(self, Role::Admin),
            // Learned values are pooled data: whoever may read the pooled
            // report; freezing and resetting them is an administrator's.
            Request::Learning { .. } | Request::LearningAction { .. } => {
                matches!(self, Role::Admin)
            }
            Request::Ping
            | Request::Status
            | Request::ListTenants
            | Request::Tenant { .. }
            | Request::Imports { .. }
            | Request::Merges { .. }
            | Request::Audit { .. }
            | Request::Plan { dry_run: true, .. }
            | Request::DispatchStatus
            | Request::Costs { .. }
            | Request::Message { .. }
            | Request::Proposals { .. }
            | Request::Proposal { .. }
            | Request::Preview { .. }
            | Request::Templates { .. }
            | Request::Queue { .. }
            | Request::Content { .. }
            | Request::Overview { .. }
            | Request::Report { .. }
            | Request::Responses { .. }
            | Request::Customer { .. }
            | Request::Subscribe => true,
            // Anyone but read-only may propose; only a reviewer decides.
            Request::Propose { .. } | Request::ProposeRollback { .. } => {
                !matches!(self, Role::ReadOnly)
            }
            Request::Approve { .. } | Request::Reject { .. } => matches!(self, Role::Reviewer),
            Request::Plan { .. }
            | Request::Pause { .. }
            | Request::Resume { .. }
            | Request::RunBatches { .. }
            | Request::MessageAction { .. }
            | Request::CallOutcomes { .. }
            | Request::UploadBegin { .. }
            | Request::UploadChunk { .. }
            | Request::UploadEnd
            | Request::UploadAbort
            | Request::UndoMerge { .. } => matches!(self, Role::Admin | Role::Operator),
            // A data subject's objection, and their data exported whole: as
            // who may act on the dealer's customers.
            Request::Object { .. } | Request::ExportCustomer { .. } => {
                matches!(self, Role::Admin | Role::Operator)
            }
            // Erasing a person or a dealer, and letting an erased person
            // back in: an administrator's.
            Request::Erase { .. } | Request::Reinstate { .. } | Request::EraseTenant { .. } => {
                matches!(self, Role::Admin)
            }
            // A copy of every dealer's data: an administrator's.
            Request::Backup { .. } | Request::VerifyBackup { .. } => matches!(self, Role::Admin),
            // Retention removes and pseudonymises data of every dealer.
            Request::RetentionRun => matches!(self, Role::Admin),
        }
    }
}

/// What the brand role may ask: the pooled report and reading brand
/// material. Its identity also has an empty tenant scope (`access`), so
/// whatever names a tenant is refused twice. No wildcard: a new request
/// must say here whether the brand may make it.
fn brand_allows(request: &Request) -> bool {
    match request {
        Request::Ping
        | Request::Proposals { .. }
        | Request::Proposal { .. }
        | Request::Templates { .. } => true,
        Request::Report { query } => query.pooled,
        Request::Learning { .. } => true,
        Request::LearningAction { .. }
        | Request::Status
        | Request::ListTenants
        | Request::Tenant { .. }
        | Request::UploadBegin { .. }
        | Request::UploadChunk { .. }
        | Request::UploadEnd
        | Request::UploadAbort
        | Request::Imports { .. }
        | Request::Merges { .. }
        | Request::UndoMerge { .. }
        | Request::Audit { .. }
        | Request::Plan { .. }
        | Request::DispatchStatus
        | Request::Pause { .. }
        | Request::Resume { .. }
        | Request::RunBatches { .. }
        | Request::Costs { .. }
        | Request::Message { .. }
        | Request::MessageAction { .. }
        | Request::CallOutcomes { .. }
        // Brand material is proposed by its authors and decided by
        // reviewers; the evaluation role only reads it.
        | Request::Propose { .. }
        | Request::ProposeRollback { .. }
        | Request::Approve { .. }
        | Request::Reject { .. }
        // A preview renders a real customer of a dealer.
        | Request::Preview { .. }
        | Request::Queue { .. }
        | Request::Content { .. }
        | Request::Overview { .. }
        // A dealer's customers' visits, one by one.
        | Request::Responses { .. }
        // A dealer's customer, whole.
        | Request::Customer { .. }
        // A data subject's rights are a dealer's customers'.
        | Request::Erase { .. }
        | Request::Reinstate { .. }
        | Request::Object { .. }
        | Request::ExportCustomer { .. }
        | Request::EraseTenant { .. }
        | Request::Backup { .. }
        | Request::VerifyBackup { .. }
        | Request::RetentionRun
        // The feed names the tenants whose data changed.
        | Request::Subscribe => false,
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which tenants a caller may see and act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    All,
    Tenants(Vec<TenantId>),
}

impl Scope {
    pub fn allows(&self, tenant: &TenantId) -> bool {
        match self {
            Scope::All => true,
            Scope::Tenants(list) => list.contains(tenant),
        }
    }
}

/// Who the daemon thinks is on the other end of a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    pub role: Role,
    pub scope: Scope,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestEnvelope {
    pub id: u64,
    pub request: Request,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Keeps a long-lived connection alive; answered with `Pong`.
    Ping,
    Status,
    ListTenants,
    Tenant {
        tenant: TenantId,
    },
    /// Starts a file upload for import. Chunks follow; `UploadEnd` imports.
    UploadBegin {
        tenant: TenantId,
        file_name: String,
        size: u64,
    },
    /// Not answered individually; an error is reported at `UploadEnd`.
    UploadChunk {
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    UploadEnd,
    UploadAbort,
    Imports {
        tenant: TenantId,
        limit: u32,
    },
    Merges {
        tenant: TenantId,
        include_undone: bool,
    },
    UndoMerge {
        tenant: TenantId,
        merge_id: u64,
    },
    /// The newest `limit` audit entries, newest first; with `text`, only
    /// entries containing it (case-insensitive) in user, action, tenant,
    /// detail or outcome.
    Audit {
        tenant: Option<TenantId>,
        limit: u32,
        text: String,
    },
    /// Plans one tenant, or every tenant in the caller's scope.
    Plan {
        tenant: Option<TenantId>,
        /// The day to plan for; the daemon's today when `None`.
        day: Option<Date>,
        /// Compute and report, write nothing.
        dry_run: bool,
        /// Plan against these policy files (`relative path -> text`) instead
        /// of the ones in force, and report the difference (dry run only).
        policies: Option<BTreeMap<String, String>>,
        /// Planned messages, drops and changes listed per tenant; the rest are counted.
        show: u32,
    },
    /// Queues, throttles, pauses and the transport.
    DispatchStatus,
    /// Stops dispatch for a scope until resumed; queued messages wait.
    Pause {
        scope: PauseScope,
    },
    Resume {
        scope: PauseScope,
    },
    /// Closes the day's letter batches and call lists now instead of at `batch_at`.
    RunBatches {
        tenant: Option<TenantId>,
    },
    /// The ledger: reserved, booked, brand and dealer shares, budgets.
    Costs {
        tenant: Option<TenantId>,
        /// `yyyymm`; every month when `None`.
        month: Option<u32>,
    },
    /// One message whole: content of its why, history and dispatch record.
    Message {
        tenant: TenantId,
        id: u64,
    },
    /// Hold, release, cancel or retry messages.
    MessageAction {
        tenant: TenantId,
        ids: Vec<u64>,
        action: MessageAction,
    },
    /// Outcomes of call-centre tasks, as the call centre returned the list.
    CallOutcomes {
        file_name: String,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// Proposes a new version of a template: the whole file's text.
    Propose {
        template: String,
        text: String,
        comment: String,
    },
    /// Proposes going back to an earlier version of a template.
    ProposeRollback {
        template: String,
        version: u32,
        comment: String,
    },
    /// Proposals, pending ones only unless `all`.
    Proposals {
        all: bool,
    },
    /// One proposal with its diff against the version in force.
    Proposal {
        id: u64,
    },
    /// A proposal rendered for a sample customer of a tenant.
    Preview {
        id: u64,
        tenant: TenantId,
        /// A customer number; the daemon picks one when `None`.
        customer: Option<String>,
    },
    Approve {
        id: u64,
        comment: String,
    },
    Reject {
        id: u64,
        comment: String,
    },
    /// Templates with their version history (one, or all).
    Templates {
        name: Option<String>,
    },
    /// One page of the outbox, filtered, counted and ordered (the filter's
    /// `sort`) in the daemon.
    Queue {
        filter: QueueFilter,
        offset: u64,
        limit: u32,
    },
    /// A message's content as it was (or will be) sent: rendered with the
    /// template version it records, or the one in force when it has none yet.
    Content {
        tenant: TenantId,
        id: u64,
    },
    /// What the console's overview shows, for the caller's scope.
    Overview {
        /// The day whose messages it counts; `None`: the next day anything
        /// goes out (today if anything goes out today, or is late).
        day: Option<Date>,
    },
    /// Turns the connection into a change feed: answered with
    /// `Subscribed`, then a `Changed` (same request id) whenever something
    /// in the caller's scope changed, at most one per
    /// [`CHANGE_COALESCE_MS`]. Only `Ping` may follow on this connection.
    Subscribe,
    /// Results: responses, control groups, lift and costs per group, for
    /// the caller's tenants, or pooled over every dealer for the brand.
    Report {
        query: ReportQuery,
    },
    /// One tenant's responses (workshop visits, appointments, offers
    /// accepted) and where attribution credits each, or why it credits
    /// it to nothing; newest first, at most `limit`.
    Responses {
        tenant: TenantId,
        /// Only this customer's (after identity merges).
        customer: Option<String>,
        /// Only those credited to nothing.
        organic_only: bool,
        limit: u32,
    },
    /// What is learned (lead times, send slots) per learning service and
    /// channel, with its evidence: brand-wide pooled data.
    Learning {
        service: Option<String>,
    },
    /// Freezes or resets a service's learned values (administrators).
    LearningAction {
        service: String,
        action: crate::learning::LearningAction,
    },
    /// One stored customer of a tenant: identity, merges, vehicles with
    /// their journey stages, consents with their sources, visits,
    /// responses, the journey with its last transitions, and the messages;
    /// long lists cut at [`CustomerDetail::MAX_ITEMS`], with how many more.
    Customer {
        tenant: TenantId,
        customer: String,
    },
    /// Erases a customer (GDPR Art. 17): the person the number stands for
    /// (with the numbers merged into them), their records, and their
    /// messages' personal fields; the store rewritten so that nothing of
    /// them is left on disk; their identifiers' keyed hashes kept so that
    /// an import does not bring them back. Administrators.
    Erase {
        tenant: TenantId,
        customer: String,
        /// Why (the request that asked for it), for the audit log.
        reason: String,
    },
    /// Takes an erased person off the suppression list: the dealer stated
    /// a new legal basis (`basis`, audited). `customer` is the number they
    /// were erased under or the pseudonym an import finding named.
    Reinstate {
        tenant: TenantId,
        customer: String,
        basis: String,
    },
    /// Records a customer's objection to advertising (Art. 21), or with
    /// `lift` takes it back: the planner plans nothing for them.
    Object {
        tenant: TenantId,
        customer: String,
        reason: String,
        lift: bool,
    },
    /// Everything stored about a customer (Art. 15/20), whole.
    ExportCustomer {
        tenant: TenantId,
        customer: String,
    },
    /// Erases a dealer who leaves: every customer's export written to
    /// `archive` (a folder the daemon creates, new) first when given, then
    /// its store, inbox, output folders and registry entry removed.
    /// Refused while a dealer policy still registers it.
    EraseTenant {
        tenant: TenantId,
        archive: Option<String>,
    },
    /// Writes a full backup of every store into a new folder of the
    /// repository `dir` (on the daemon's machine, made 0700 when missing),
    /// then keeps only the newest `keep` backups when given.
    Backup {
        dir: String,
        keep: Option<u32>,
    },
    /// Checks a backup (or a repository's newest) whole: manifest, every
    /// file's hash, every database opened and counted.
    VerifyBackup {
        dir: String,
    },
    /// Runs the brand's retention now (`[retention]`), as the daily run
    /// does, over every tenant and the audit log: answered with what it did.
    RetentionRun,
}

/// A backup written (`Request::Backup`) or verified
/// (`Request::VerifyBackup`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupDone {
    /// The backup's folder.
    pub path: String,
    pub created_at: Timestamp,
    /// Databases in it: the central one and each tenant's that stored
    /// anything.
    pub stores: u64,
    pub records: u64,
    pub files: u64,
    pub bytes: u64,
    /// Tenants gone before their store was copied.
    pub skipped: Vec<String>,
    /// Earlier backups (and leftovers of interrupted ones) removed.
    pub removed: Vec<String>,
    /// 0 for a verification.
    pub took_ms: u64,
}

/// What an erasure, an objection, a reinstatement or a dealer's erasure
/// did, in counts; a person only by pseudonym.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RightsDone {
    pub tenant: TenantId,
    /// `erased-` and a keyed hash of the customer number, when a person
    /// was erased or reinstated.
    pub pseudonym: Option<String>,
    /// What was done, each with its count, in the order it was done
    /// (`("customers erased", 1)`).
    pub done: Vec<(String, u64)>,
}

/// Changes within this many milliseconds reach a subscriber as one `Changed`.
pub const CHANGE_COALESCE_MS: u64 = 100;

/// What changed, so a subscriber re-reads only that.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// Messages: planned, released, sent, failed, acted on.
    Outbox,
    /// Customer data: imports, merges, record counts.
    Tenants,
    /// Pauses, throttles, the transport, batches.
    Dispatch,
    Costs,
    Approvals,
    Policy,
    Audit,
}

impl Topic {
    pub const ALL: [Topic; 7] = [
        Topic::Outbox,
        Topic::Tenants,
        Topic::Dispatch,
        Topic::Costs,
        Topic::Approvals,
        Topic::Policy,
        Topic::Audit,
    ];
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    pub topics: Vec<Topic>,
    /// Tenants whose data changed (for `Outbox`, `Tenants`, `Costs`); empty
    /// when the change is not about particular tenants. A subscriber that
    /// fell behind gets every topic and no tenants: re-read everything.
    pub tenants: Vec<TenantId>,
}

/// One page of the queue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuePage {
    pub filter: QueueFilter,
    pub offset: u64,
    /// Messages matching the filter.
    pub total: u64,
    /// Matches per status, ignoring the filter's status criterion, in
    /// [`crate::queue::STATUSES`] order, statuses with none left out.
    pub counts: Vec<(MessageStatus, u64)>,
    pub rows: Vec<QueueRow>,
}

/// A message as the queue lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRow {
    pub tenant: TenantId,
    pub id: u64,
    pub status: MessageStatus,
    pub channel: Channel,
    pub service: String,
    pub template: String,
    pub send_on: Date,
    /// Minutes after midnight.
    #[serde(with = "crate::date::minutes")]
    pub send_at: u16,
    /// Customer number.
    pub recipient: String,
    /// The customer's name ("" when the record is gone).
    pub name: String,
    /// The address or number used, once dispatch chose it.
    pub address: String,
    /// Cents: booked when sent, else the estimate.
    #[serde(with = "crate::money::cents")]
    pub cost: i64,
    pub attempts: u32,
    pub last_error: String,
    /// The last status change.
    pub updated_at: Timestamp,
    /// The recipient's postcode and town ("" when the record is gone).
    pub town: String,
}

/// A message's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageContent {
    pub tenant: TenantId,
    pub id: u64,
    pub template: String,
    /// The template version it was rendered with (0: not known).
    pub version: u32,
    /// How the content was obtained ("rendered with v3, the version it was
    /// sent with"), or why there is none.
    pub note: String,
    pub subject: String,
    /// Email text part, or the letter's text, or the call script.
    pub text: String,
    pub html: String,
}

/// Messages of one day by where they stand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCounts {
    /// Planned or rendered, not yet released.
    pub planned: u64,
    /// Queued, deferred or sending.
    pub queued: u64,
    pub sent: u64,
    /// Failed (a failed email replaced by a letter counts as fallback, not here).
    pub failed: u64,
    pub held: u64,
}

impl DayCounts {
    pub fn add(&mut self, o: &DayCounts) {
        self.planned += o.planned;
        self.queued += o.queued;
        self.sent += o.sent;
        self.failed += o.failed;
        self.held += o.held;
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantDay {
    pub tenant: TenantId,
    pub name: String,
    /// Messages whose send day is [`Overview::day`] (all 0 when `error`
    /// is set).
    pub counts: DayCounts,
    /// Why the tenant's store cannot be read right now (an I/O error, a
    /// full disk): its figures are then not known, not 0, and are left out
    /// of the totals and the budgets.
    pub error: Option<String>,
}

/// Messages of one day over the caller's scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpcomingDay {
    pub day: Date,
    pub counts: DayCounts,
}

/// How many days, today first, [`Overview::upcoming`] counts.
pub const UPCOMING_DAYS: usize = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertLevel {
    Warning,
    Critical,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub level: AlertLevel,
    pub tenant: Option<TenantId>,
    /// "12 emails due since 09:00 are still queued", "inspection budget
    /// 2026-12 94% used: …".
    pub text: String,
}

/// The console's overview, computed by the daemon for the caller's scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    pub today: Date,
    /// The day the message figures (`tenants`, `total`) are for: the day
    /// asked, else `next_out`, else today.
    pub day: Date,
    /// The next day anything goes out (planned, queued or deferred), today
    /// when anything is due or late; `None`: nothing waits.
    pub next_out: Option<Date>,
    /// Today and the [`UPCOMING_DAYS`] − 1 days after it, summed over the
    /// tenants that could be read.
    pub upcoming: Vec<UpcomingDay>,
    pub tenants: Vec<TenantDay>,
    pub total: DayCounts,
    /// The ledger's rows of this month (the month of `today`), per tenant
    /// and service, as `Costs` gives them (`crate::budget` sums them).
    pub budgets: Vec<CostRow>,
    /// Responses of this month (by the day of the response) in the
    /// caller's scope, by where attribution credits them.
    pub responses: crate::report::MonthResponses,
    /// Messages handed to a transport per minute over the last hour, oldest
    /// first, the current minute last (60 entries).
    pub throughput: Vec<u64>,
    pub throttles: Vec<ThrottleStatus>,
    pub dispatch_enabled: bool,
    pub transport: String,
    pub paused: Vec<Pause>,
    pub relay_down_until: Option<Timestamp>,
    pub dispatch_error: String,
    pub policy: PolicyStatus,
    /// Proposals the caller's scope may see (as `Proposals` lists them).
    pub pending_approvals: u64,
    /// The pauses in force first, then the most severe first.
    pub alerts: Vec<Alert>,
    /// Whether the caller's scope is every tenant, so that the figures only
    /// known over every tenant are in this answer: `throughput`, the
    /// throttles that name no tenant (global, per domain) and the relay
    /// (`relay_down_until`, an error about it in `dispatch_error`). When
    /// false they are left out (`throughput` empty, only the scope's
    /// tenants' throttles, no relay): not shown, which is not 0.
    pub daemon_wide: bool,
    /// Set when the daemon runs on a simulated clock (`--clock-start`).
    pub clock: Option<crate::clock::Start>,
}

/// Where a proposal stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    Pending,
    Approved {
        by: String,
        at: Timestamp,
        comment: String,
        /// The template version it became.
        version: u32,
    },
    Rejected {
        by: String,
        at: Timestamp,
        comment: String,
    },
}

/// A proposed change of brand material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub id: u64,
    pub template: String,
    /// The whole proposed file.
    pub text: String,
    /// The version in force when it was proposed (0: a new template).
    pub base_version: u32,
    /// Set for a rollback: the version whose text it restores.
    pub rollback_to: Option<u32>,
    pub author: String,
    pub author_uid: u32,
    pub comment: String,
    pub created_at: Timestamp,
    pub status: ProposalStatus,
}

/// A proposal with what it changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalDetail {
    pub proposal: Proposal,
    /// Unified diff against the version in force now (`---`/`+++` headers,
    /// `@@` hunks).
    pub diff: String,
    /// The version in force now (it may have moved since the proposal).
    pub current_version: u32,
}

/// A proposal rendered for one customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    pub proposal: u64,
    pub tenant: TenantId,
    pub customer: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub letter: String,
    /// The letter as the lettershop would print it (PDF).
    #[serde(with = "serde_bytes")]
    pub pdf: Vec<u8>,
}

/// One version of a template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateVersion {
    pub version: u32,
    /// Fingerprint of the text: what messages record as their template version.
    pub fingerprint: u64,
    pub text: String,
    /// Who proposed it ("policies/templates/x.toml" for the seed).
    pub author: String,
    pub approved_by: String,
    pub at: Timestamp,
    pub comment: String,
    pub proposal: Option<u64>,
}

/// A template's history, the version in force marked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateHistory {
    pub name: String,
    pub in_force: u32,
    pub versions: Vec<TemplateVersion>,
}

/// What a pause applies to: everything, one tenant, one service, or one
/// service of one tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PauseScope {
    pub tenant: Option<TenantId>,
    pub service: Option<String>,
}

impl PauseScope {
    pub fn covers(&self, tenant: &TenantId, service: &str) -> bool {
        self.tenant.as_ref().is_none_or(|t| t == tenant)
            && self.service.as_deref().is_none_or(|s| s == service)
    }
}

impl std::fmt::Display for PauseScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.tenant, &self.service) {
            (None, None) => f.write_str("all dispatch"),
            (Some(t), None) => write!(f, "tenant {t}"),
            (None, Some(s)) => write!(f, "service {s}"),
            (Some(t), Some(s)) => write!(f, "service {s} of tenant {t}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub scope: PauseScope,
    pub by: String,
    pub at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageAction {
    /// Keep it from going out until released.
    Hold,
    /// Let a held message go on where it was.
    Release,
    /// Never send it. Its occasions stay taken: an operator's cancel is final
    /// (a cancel by the planner or at dispatch, when consent or the
    /// service went away, frees them for a later plan).
    Cancel,
    /// Send a deferred or failed email again now.
    Retry,
    /// Make a planned, rendered or queued message due now instead of on its
    /// planned day and time (a letter or call: today's batch). Dispatch
    /// still checks consent, throttles and this month's budget, as for any
    /// message; the planner's contact rules are not applied again.
    SendNow,
}

impl MessageAction {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageAction::Hold => "hold",
            MessageAction::Release => "release",
            MessageAction::Cancel => "cancel",
            MessageAction::Retry => "retry",
            MessageAction::SendNow => "send-now",
        }
    }

    /// Whether the action can be taken on a message that is `status` on
    /// `channel`, or why not: the daemon's rule, and what the console
    /// offers for the message under the cursor.
    pub fn check(self, status: MessageStatus, channel: Channel) -> Result<(), String> {
        use MessageStatus as S;
        let ok = match self {
            MessageAction::Hold => {
                matches!(status, S::Planned | S::Rendered | S::Queued | S::Deferred)
            }
            MessageAction::Release => status == S::Held,
            MessageAction::Cancel => matches!(
                status,
                S::Planned | S::Rendered | S::Queued | S::Deferred | S::Held
            ),
            MessageAction::Retry => {
                if channel != Channel::Email && matches!(status, S::Deferred | S::Failed) {
                    return Err(format!(
                        "only emails are retried; this {channel} is {status}"
                    ));
                }
                matches!(status, S::Deferred | S::Failed)
            }
            MessageAction::SendNow => matches!(status, S::Planned | S::Rendered | S::Queued),
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "cannot {} a message that is {status}",
                self.as_str().replace('-', " ")
            ))
        }
    }
}

/// What dispatch is doing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchStatus {
    pub enabled: bool,
    /// "smtp relay mail.example:587 (starttls, 8 connections)" or "spool /var/lib/touchpoint/mail".
    pub transport: String,
    pub paused: Vec<Pause>,
    pub throttles: Vec<ThrottleStatus>,
    pub queues: Vec<TenantQueue>,
    /// Emails accepted by the transport in the last minute, all tenants.
    pub sent_last_minute: u64,
    pub sent_total: u64,
    pub deferred_total: u64,
    pub failed_total: u64,
    pub fallbacks_total: u64,
    /// Messages found in flight at the start (after a crash) and sent
    /// again: the relay may get each once more than before.
    pub resent_after_crash: u64,
    /// Emails whose connection broke after the data went out (the relay may
    /// have them) and that are sent again: possible duplicates.
    pub resent_after_cut: u64,
    /// Mails of the bounce maildir that were delivery failure reports
    /// (permanent or temporary) about one of our messages.
    pub bounces_processed: u64,
    /// The relay could not be reached; email waits until this time.
    pub relay_down_until: Option<Timestamp>,
    pub last_error: String,
    /// Mails of the bounce maildir asking to stop (to an unsubscribe address).
    pub unsubscribes_processed: u64,
    /// Out-of-office and other automatic replies to one of our messages.
    pub autoreplies_processed: u64,
    /// Mails about none of our messages, not understood, or not to be
    /// trusted (a forged return path): read and left alone.
    pub mails_ignored: u64,
    /// Whether the caller's scope is every tenant, so that the figures only
    /// known over every tenant are in this answer: `sent_last_minute`, the
    /// totals since the start (sent, deferred, failed, fallbacks, resent,
    /// bounce mail), the throttles that name no tenant (global, per
    /// domain) and the relay (`relay_down_until`, an error about it in
    /// `last_error`). When false they are left out (0, none): not shown,
    /// which is not 0; `queues` are the scope's tenants' figures.
    pub daemon_wide: bool,
}

/// One throttle: its limits and how full it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottleStatus {
    /// "global", "tenant d001", "domain gmail.com", "domain (default)".
    pub name: String,
    pub in_flight: u32,
    /// 0: no concurrency limit.
    pub concurrency: u32,
    /// Sent within the last minute (or today, for a tenant's daily limit).
    pub used: u64,
    /// 0: no limit.
    pub limit: u64,
    /// "minute" or "day".
    pub per: String,
    /// The fuller of concurrency and rate, percent.
    pub saturation: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantQueue {
    pub tenant: TenantId,
    pub email: u64,
    pub post: u64,
    pub phone: u64,
    pub in_flight: u64,
    pub sent_today: u64,
    /// Why the tenant's store cannot be read right now: the counts are
    /// then not known (all 0), not empty queues.
    pub error: Option<String>,
}

/// One row of the ledger: a tenant's service in one month. Reserved,
/// booked, budget and remaining as `crate::budget` defines them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostRow {
    pub tenant: TenantId,
    /// `yyyymm`.
    #[serde(with = "crate::date::month")]
    pub month: u32,
    pub service: String,
    #[serde(with = "crate::money::cents")]
    pub reserved: i64,
    #[serde(with = "crate::money::cents")]
    pub booked: i64,
    #[serde(with = "crate::money::cents")]
    pub brand: i64,
    #[serde(with = "crate::money::cents")]
    pub dealer: i64,
    /// The dealer's monthly budget for the service, if it takes part.
    #[serde(with = "crate::money::cents::option")]
    pub budget: Option<i64>,
}

/// A letter batch or call list written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSummary {
    pub tenant: TenantId,
    /// "letters" or "calls".
    pub kind: String,
    pub files: Vec<String>,
    pub messages: u64,
    #[serde(with = "crate::money::cents")]
    pub cost: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResult {
    pub id: u64,
    /// The status after the action, or why it was not possible.
    pub outcome: Result<crate::outbox::MessageStatus, String>,
}

/// What an import of call outcomes did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeReport {
    pub applied: u64,
    /// Already recorded earlier: nothing changed.
    pub unchanged: u64,
    /// `file:line: field: message` per rejected row.
    pub errors: Vec<String>,
}

impl Request {
    /// Checks every text and list the request carries against
    /// [`crate::limits`], before anything of it is stored or logged.
    pub fn check_limits(&self) -> Result<(), crate::limits::LimitError> {
        use crate::limits::{self as l, LimitError};
        match self {
            Request::Ping
            | Request::Status
            | Request::RetentionRun
            | Request::ListTenants
            | Request::Tenant { .. }
            | Request::UploadChunk { .. }
            | Request::UploadEnd
            | Request::UploadAbort
            | Request::Imports { .. }
            | Request::Merges { .. }
            | Request::UndoMerge { .. }
            | Request::DispatchStatus
            | Request::RunBatches { .. }
            | Request::Costs { .. }
            | Request::Message { .. }
            | Request::Proposals { .. }
            | Request::Proposal { .. }
            | Request::Content { .. }
            | Request::Overview { .. }
            | Request::Subscribe => Ok(()),
            Request::Report { query } => query
                .service
                .as_deref()
                .map_or(Ok(()), |s| l::line("service", s, l::NAME_CHARS)),
            Request::Responses { customer, .. } => customer
                .as_deref()
                .map_or(Ok(()), |c| l::line("customer", c, l::NAME_CHARS)),
            Request::Learning { service } => service
                .as_deref()
                .map_or(Ok(()), |s| l::line("service", s, l::NAME_CHARS)),
            Request::LearningAction { service, .. } => l::line("service", service, l::NAME_CHARS),
            Request::Customer { customer, .. } | Request::ExportCustomer { customer, .. } => {
                l::line("customer", customer, l::NAME_CHARS)
            }
            Request::Erase {
                customer, reason, ..
            }
            | Request::Object {
                customer, reason, ..
            } => {
                l::line("customer", customer, l::NAME_CHARS)?;
                l::line("reason", reason, l::COMMENT_CHARS)
            }
            Request::Reinstate {
                customer, basis, ..
            } => {
                l::line("customer", customer, l::NAME_CHARS)?;
                l::line("basis", basis, l::COMMENT_CHARS)
            }
            Request::EraseTenant { archive, .. } => archive
                .as_deref()
                .map_or(Ok(()), |a| l::line("archive", a, l::FILTER_CHARS)),
            Request::Backup { dir, .. } | Request::VerifyBackup { dir } => {
                l::line("dir", dir, l::FILTER_CHARS)
            }
            Request::UploadBegin { file_name, .. } | Request::CallOutcomes { file_name, .. } => {
                l::line("file name", file_name, l::NAME_CHARS)
            }
            Request::Audit { text, .. } => l::line("text", text, l::FILTER_CHARS),
            Request::Plan { policies, .. } => {
                let files = policies.as_ref().map_or(0, BTreeMap::len);
                if files > 100_000 {
                    return Err(LimitError {
                        field: "policies",
                        problem: format!("{files} files; at most 100000"),
                    });
                }
                for (name, text) in policies.iter().flatten() {
                    l::line("policy file name", name, l::NAME_CHARS)?;
                    l::document("policy file", text, l::MATERIAL_BYTES)?;
                }
                Ok(())
            }
            Request::Pause { scope } | Request::Resume { scope } => scope
                .service
                .as_deref()
                .map_or(Ok(()), |s| l::line("service", s, l::NAME_CHARS)),
            Request::MessageAction { ids, .. } => {
                if ids.len() > l::ACTION_IDS {
                    return Err(LimitError {
                        field: "ids",
                        problem: format!("{} messages; at most {}", ids.len(), l::ACTION_IDS),
                    });
                }
                Ok(())
            }
            Request::Propose {
                template,
                text,
                comment,
            } => {
                l::line("template", template, l::NAME_CHARS)?;
                l::document("text", text, l::MATERIAL_BYTES)?;
                l::line("comment", comment, l::COMMENT_CHARS)
            }
            Request::ProposeRollback {
                template, comment, ..
            } => {
                l::line("template", template, l::NAME_CHARS)?;
                l::line("comment", comment, l::COMMENT_CHARS)
            }
            Request::Preview { customer, .. } => customer
                .as_deref()
                .map_or(Ok(()), |c| l::line("customer", c, l::NAME_CHARS)),
            Request::Approve { comment, .. } | Request::Reject { comment, .. } => {
                l::line("comment", comment, l::COMMENT_CHARS)
            }
            Request::Templates { name } => name
                .as_deref()
                .map_or(Ok(()), |n| l::line("template", n, l::NAME_CHARS)),
            Request::Queue { filter, .. } => {
                l::line("filter text", &filter.text, l::FILTER_CHARS)?;
                // A filter's lists are bounded by what its text could say.
                if filter.services.len() + filter.tenants.len() > l::FILTER_CHARS / 2 {
                    return Err(l::LimitError {
                        field: "filter",
                        problem: format!("more than {} tenants and services", l::FILTER_CHARS / 2),
                    });
                }
                filter
                    .services
                    .iter()
                    .try_for_each(|s| l::line("service", s, l::NAME_CHARS))
            }
        }
    }

    /// Short name for logs and the audit trail.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Ping => "ping",
            Request::Status => "status",
            Request::ListTenants => "tenants",
            Request::Tenant { .. } => "tenant",
            Request::UploadBegin { .. } => "import",
            Request::UploadChunk { .. } => "import-chunk",
            Request::UploadEnd => "import-end",
            Request::UploadAbort => "import-abort",
            Request::Imports { .. } => "imports",
            Request::Merges { .. } => "merges",
            Request::UndoMerge { .. } => "undo-merge",
            Request::Audit { .. } => "audit",
            Request::Plan { dry_run: true, .. } => "plan-dry-run",
            Request::Plan { .. } => "plan",
            Request::DispatchStatus => "dispatch-status",
            Request::Pause { .. } => "pause",
            Request::Resume { .. } => "resume",
            Request::RunBatches { .. } => "run-batches",
            Request::Costs { .. } => "costs",
            Request::Message { .. } => "message",
            Request::MessageAction { action, .. } => match action {
                MessageAction::Hold => "hold",
                MessageAction::Release => "release",
                MessageAction::Cancel => "cancel",
                MessageAction::Retry => "retry",
                MessageAction::SendNow => "send-now",
            },
            Request::CallOutcomes { .. } => "call-outcomes",
            Request::Propose { .. } => "propose",
            Request::ProposeRollback { .. } => "propose-rollback",
            Request::Proposals { .. } => "proposals",
            Request::Proposal { .. } => "proposal",
            Request::Preview { .. } => "preview",
            Request::Approve { .. } => "approve",
            Request::Reject { .. } => "reject",
            Request::Templates { .. } => "templates",
            Request::Queue { .. } => "queue",
            Request::Report { query } if query.pooled => "pooled-report",
            Request::Report { .. } => "report",
            Request::Responses { .. } => "responses",
            Request::Learning { .. } => "learning",
            Request::LearningAction { action, .. } => match action {
                crate::learning::LearningAction::Freeze => "learning-freeze",
                crate::learning::LearningAction::Reset => "learning-reset",
            },
            Request::Customer { .. } => "customer",
            Request::Erase { .. } => "erase",
            Request::Reinstate { .. } => "reinstate",
            Request::Object { lift: false, .. } => "object",
            Request::Object { lift: true, .. } => "lift-objection",
            Request::ExportCustomer { .. } => "export-customer",
            Request::EraseTenant { .. } => "erase-tenant",
            Request::Backup { .. } => "backup",
            Request::VerifyBackup { .. } => "verify-backup",
            Request::RetentionRun => "retention-run",
            Request::Content { .. } => "content",
            Request::Overview { .. } => "overview",
            Request::Subscribe => "subscribe",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResponseEnvelope {
    pub id: u64,
    pub response: Response,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    Pong,
    Status(DaemonStatus),
    Tenants(Vec<TenantSummary>),
    Tenant(TenantDetail),
    UploadReady,
    Imported(ImportReport),
    Imports(Vec<ImportReport>),
    Merges(Vec<MergeRecord>),
    MergeUndone(MergeRecord),
    Audit(Vec<AuditEntry>),
    Error(ErrorReply),
    Planned(PlanResult),
    Dispatch(Box<DispatchStatus>),
    Paused(Vec<Pause>),
    Batches(Vec<BatchSummary>),
    Costs(Vec<CostRow>),
    Message(Box<crate::outbox::Message>),
    Actions(Vec<ActionResult>),
    Outcomes(OutcomeReport),
    Proposal(Box<ProposalDetail>),
    Proposals(Vec<Proposal>),
    Preview(Box<Preview>),
    Templates(Vec<TemplateHistory>),
    Queue(Box<QueuePage>),
    Content(Box<MessageContent>),
    Overview(Box<Overview>),
    Subscribed,
    Changed(Changes),
    Report(Box<Report>),
    Responses(Box<crate::report::ResponseList>),
    /// What is learned, cut to the service asked for.
    Learning(Box<crate::learning::LearnedState>),
    Customer(Box<CustomerDetail>),
    /// An erasure, objection, reinstatement or dealer's erasure done.
    Rights(RightsDone),
    CustomerExport(Box<CustomerExport>),
    /// A backup written or verified.
    Backup(BackupDone),
    /// What a retention run did (`Request::RetentionRun`).
    Retention(RetentionRun),
}

/// The answer to [`Request::ExportCustomer`] (GDPR Art. 15/20):
/// everything stored about one person, whole (refused when it would not
/// fit one frame, never cut). `touchpoint export-customer` writes it as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerExport {
    pub tenant: TenantId,
    pub exported_at: Timestamp,
    /// The record shown for the person (the survivor of merges).
    pub customer: crate::domain::Customer,
    /// Every number that is this person, the survivor's first.
    pub numbers: Vec<String>,
    /// Every customer record of those numbers.
    pub records: Vec<crate::domain::Customer>,
    pub vehicles: Vec<ExportVehicle>,
    /// The statement that stands per channel, with its source.
    pub consents: Vec<crate::domain::Consent>,
    pub responses: Vec<crate::report::ReportedResponse>,
    pub merges: Vec<crate::domain::MergeRecord>,
    pub journey: Option<crate::domain::JourneyRecord>,
    pub objection: Option<crate::domain::Objection>,
    /// Every message, with the template version its content was rendered
    /// with (`dispatch.template_version`) and the response credited to it.
    pub messages: Vec<ExportMessage>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportVehicle {
    pub vehicle: crate::domain::Vehicle,
    pub visits: Vec<crate::domain::ServiceVisit>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportMessage {
    pub message: crate::outbox::Message,
    pub credited: Option<crate::report::Credited>,
}

/// The answer to [`Request::Customer`]: one customer as stored. Every list
/// holds at most [`CustomerDetail::MAX_ITEMS`], newest first where it has
/// an order in time; its `_more` count says how many were left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerDetail {
    pub tenant: TenantId,
    pub customer: crate::domain::Customer,
    /// The number asked for was merged into this customer (the detail is
    /// the survivor's): the number asked for.
    pub asked_for: Option<String>,
    /// Merges this customer took part in (as survivor or as merged), undone ones too.
    pub merges: Vec<crate::domain::MergeRecord>,
    pub merges_more: u64,
    /// The customer's vehicles and those of the numbers merged into them.
    pub vehicles: Vec<CustomerVehicle>,
    pub vehicles_more: u64,
    /// The latest statement per channel of the customer and of each number
    /// merged into them, with its source.
    pub consents: Vec<crate::domain::Consent>,
    pub consents_more: u64,
    /// Responses of response files that name the customer (or a number
    /// merged into them), newest first.
    pub responses: Vec<crate::report::ReportedResponse>,
    pub responses_more: u64,
    /// The journey as last derived (after an import or a daily plan);
    /// `None` before the first.
    pub journey: Option<crate::domain::JourneyRecord>,
    pub messages: Vec<CustomerMessage>,
    pub messages_more: u64,
    /// The objection to advertising (Art. 21) standing for this person.
    pub objection: Option<crate::domain::Objection>,
}

impl CustomerDetail {
    /// The longest list an answer holds.
    pub const MAX_ITEMS: usize = 50;
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerVehicle {
    pub vehicle: crate::domain::Vehicle,
    /// Its journey stage as last derived.
    pub stage: Option<crate::domain::VehicleStage>,
    /// Its workshop visits, newest first.
    pub visits: Vec<crate::domain::ServiceVisit>,
    pub visits_more: u64,
}

/// One message of a customer, as a line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerMessage {
    pub id: u64,
    pub service: String,
    pub channel: crate::domain::Channel,
    pub status: crate::outbox::MessageStatus,
    pub send_on: Date,
}

/// The answer to [`Request::Plan`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanResult {
    pub reports: Vec<PlanReport>,
    /// Tenants that could not be planned, with the reason.
    pub failed: Vec<(String, String)>,
    /// With candidate policies: per tenant, what they would change.
    pub changes: Vec<TenantPlanChanges>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantPlanChanges {
    pub tenant: String,
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
    /// Planned cost under the current and the candidate policies, cents.
    #[serde(with = "crate::money::cents")]
    pub cost_current: i64,
    #[serde(with = "crate::money::cents")]
    pub cost_candidate: i64,
    /// The first `show` changes.
    pub changes: Vec<PlanChange>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The frame could not be decoded, or came out of order.
    Malformed,
    /// The caller's role or tenant scope does not allow this.
    Forbidden,
    NotFound,
    /// The request was understood but its content is wrong.
    Invalid,
    /// Too many connections or a conflicting operation in progress.
    Busy,
    Internal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub kind: ErrorKind,
    pub message: String,
}

impl std::fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            ErrorKind::Malformed => "malformed request",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not found",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Busy => "busy",
            ErrorKind::Internal => "internal error",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub daemon_version: String,
    pub protocol_version: u32,
    pub started_at: Timestamp,
    pub state_dir: String,
    pub socket: String,
    pub policy: PolicyStatus,
    /// Tenants in the caller's scope.
    pub tenants: u64,
    /// Tenant stores open now: of every tenant, or of the caller's tenants
    /// when `daemon_wide` is false.
    pub tenants_open: u64,
    pub max_open_tenants: u64,
    /// Connections served now: of every user, or the caller's own (its
    /// uid's) when `daemon_wide` is false.
    pub connections: u64,
    pub identity: Identity,
    /// With `daemon_wide` false, the last run's figures (planned, failed,
    /// duration: over every tenant) are left out (0).
    pub planning: PlanningStatus,
    /// Whether the caller's scope is every tenant, so that the figures of
    /// the whole daemon are in this answer; see the fields above for what
    /// a caller with a narrower scope gets instead.
    pub daemon_wide: bool,
    /// Set when the daemon runs on a simulated clock (`--clock-start`, a
    /// rehearsal): every planning and sending moment is then that clock's.
    pub clock: Option<crate::clock::Start>,
    /// The brand's retention and its last run (the run's figures, over
    /// every tenant, only when `daemon_wide`).
    pub retention: RetentionStatus,
}

/// Retention (brand `[retention]`): the months per kind (`None`: kept) and
/// the last run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionStatus {
    pub messages_months: Option<u32>,
    pub responses_months: Option<u32>,
    pub audit_months: Option<u32>,
    pub last: Option<RetentionRun>,
}

/// What one retention run did, over every tenant and the audit log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionRun {
    /// When it ended (wall time).
    pub at: Timestamp,
    /// `schedule`, or the user who ran it.
    pub by: String,
    /// Messages pseudonymised, their spooled emails removed.
    pub messages: u64,
    pub spooled: u64,
    /// Workshop visits and reported responses removed.
    pub visits: u64,
    pub responses: u64,
    /// Audit lines removed.
    pub audit_lines: u64,
    /// Files older than the shortest of the messages' and responses'
    /// months removed: letter batches, call lists, the inbox's archive.
    #[serde(default)]
    pub files: u64,
    /// Tenant stores rewritten (what went is gone from disk).
    pub rewritten: u64,
    /// `tenant: error` of each tenant the run could not finish.
    pub failed: Vec<String>,
}

impl RetentionRun {
    /// What it did, in counts, as `touchpoint status` and the audit log
    /// say it.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{} messages pseudonymised, {} spooled emails removed, {} visits and {} responses removed, {} audit lines removed, {} old files removed, {} tenant stores rewritten",
            self.messages, self.spooled, self.visits, self.responses, self.audit_lines, self.files, self.rewritten
        );
        if !self.failed.is_empty() {
            line.push_str(&format!("; failed: {}", self.failed.join("; ")));
        }
        line
    }
}

/// The daily plan: when it runs next and how the last run went.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanningStatus {
    /// The brand's cron expression.
    pub schedule: String,
    pub next_run: Option<Timestamp>,
    pub last_run: Option<Timestamp>,
    /// Messages the last scheduled run planned, tenants it could not plan, and its duration.
    pub last_planned: u64,
    pub last_failed: u64,
    pub last_millis: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyStatus {
    pub dir: String,
    pub loaded_at: Timestamp,
    pub files: Vec<String>,
    /// Errors of the last load attempt, `file:line: key: message`; empty when it was valid.
    pub errors: Vec<String>,
    /// Fingerprint of the policy set in force (what messages record as `policy`).
    pub version: u64,
    /// When the last load attempt failed (the set in force is older).
    pub failed_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSummary {
    pub id: TenantId,
    pub name: String,
    pub stats: TenantStats,
    pub opt_ins: OptIns,
    /// Boxed: a listing's rows stay small (the wire form is the same).
    pub last_import: Option<Box<ImportReport>>,
    /// Why the tenant's store cannot be read right now (an I/O error, a
    /// full disk); the figures are then those it last had.
    pub error: Option<String>,
}

/// Recipients by what they allow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptIns {
    /// Consent to email given and not withdrawn.
    pub email: u64,
    /// Consent to calls given and not withdrawn.
    pub phone: u64,
    /// Refused postal advertising (post is opt-out).
    pub post_refused: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantDetail {
    pub summary: TenantSummary,
    pub imports: Vec<ImportReport>,
    pub merges: Vec<MergeRecord>,
    /// Vehicles kept whose holder is not a known customer (yet): attached
    /// when that customer is imported.
    pub parked: u64,
    /// The first of them, by VIN (at most [`TenantDetail::MAX_PARKED`]).
    pub parked_list: Vec<ParkedVehicle>,
}

impl TenantDetail {
    /// Parked vehicles a detail lists.
    pub const MAX_PARKED: usize = 50;
}

/// A vehicle kept until its holder arrives: its VIN and the customer
/// number it names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedVehicle {
    pub vin: String,
    pub customer_no: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    Ok,
    Refused(String),
    Failed(String),
    /// Done for some of what was asked, not all: what was not, and why.
    Partial(String),
}

impl AuditOutcome {
    /// The outcome and detail of an import's audit line, whoever imported
    /// it (an operator over the socket, the drop folder).
    pub fn of_import(r: &ImportReport) -> (AuditOutcome, String) {
        let detail = format!(
            "import #{} {}: {}",
            r.import_id,
            r.file_name,
            r.outcome_summary()
        );
        let outcome = match &r.status {
            crate::domain::ImportStatus::Failed { reason } => AuditOutcome::Failed(reason.clone()),
            _ if r.rows_rejected > 0 => {
                AuditOutcome::Partial(format!("{} rows rejected", r.rows_rejected))
            }
            _ => AuditOutcome::Ok,
        };
        (outcome, detail)
    }

    /// "ok", "refused: why", "failed: why", "partly: what was not done".
    pub fn describe(&self) -> String {
        match self {
            AuditOutcome::Ok => "ok".into(),
            AuditOutcome::Refused(r) => format!("refused: {r}"),
            AuditOutcome::Failed(r) => format!("failed: {r}"),
            AuditOutcome::Partial(r) => format!("partly: {r}"),
        }
    }
}

/// The `uid` of an audit entry no Unix user caused (a one-click
/// unsubscribe over HTTP): shown by its `user` alone.
pub const NO_UID: u32 = u32::MAX;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub at: Timestamp,
    pub uid: u32,
    pub user: String,
    pub role: Option<Role>,
    pub action: String,
    pub tenant: Option<TenantId>,
    pub detail: String,
    pub outcome: AuditOutcome,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_frame, encode_frame};

    /// The hello must decode identically forever; this pins its bytes.
    #[test]
    fn hello_layout_is_frozen() {
        let bytes = encode_frame(&Hello {
            magic: PROTOCOL_MAGIC,
            version: 7,
            client: "x".into(),
        })
        .expect("encode");
        assert_eq!(bytes, vec![b'T', b'P', b'N', b'T', 7, 1, b'x']);
        let back: Hello = decode_frame(&bytes).expect("decode");
        assert_eq!(back.version, 7);
    }

    #[test]
    fn request_round_trip() {
        let r = RequestEnvelope {
            id: 3,
            request: Request::UndoMerge {
                tenant: TenantId::new("d001").expect("id"),
                merge_id: 9,
            },
        };
        let back: RequestEnvelope =
            decode_frame(&encode_frame(&r).expect("encode")).expect("decode");
        assert_eq!(back, r);
    }
}

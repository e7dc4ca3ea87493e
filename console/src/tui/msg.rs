//! The messages between the console's state and its connection: what the
//! state asks for ([`Effect`]: a [`Fetch`] or a confirmed [`Act`]) and what
//! the connection reports ([`NetEvent`], carrying [`Data`]). Imports nothing
//! else of the TUI, so the state never sees the socket and the connection
//! never sees the state.

use std::path::PathBuf;

use touchpoint_common::outbox::Message;
use touchpoint_common::protocol::{
    AuditEntry, Changes, CostRow, CustomerDetail, DaemonStatus, Identity, MessageAction,
    MessageContent, Overview, PauseScope, Preview, Proposal, ProposalDetail, QueueFilter,
    QueuePage, TenantDetail, TenantSummary,
};
use touchpoint_common::report::answer::{Report, ReportQuery};
use touchpoint_common::report::stats::By;
use touchpoint_common::{Date, TenantId};

/// What the console asks the daemon for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetch {
    Status,
    /// `day`: `None` for the next day anything goes out.
    Overview {
        day: Option<Date>,
    },
    Queue {
        filter: QueueFilter,
        offset: u64,
        limit: u32,
    },
    Message {
        tenant: TenantId,
        id: u64,
    },
    Content {
        tenant: TenantId,
        id: u64,
    },
    Tenants,
    Costs {
        month: u32,
    },
    Tenant(TenantId),
    Proposals {
        all: bool,
    },
    Proposal(u64),
    Preview {
        id: u64,
        tenant: TenantId,
    },
    Audit {
        text: String,
        limit: u32,
    },
    Report(ReportQuery),
    /// The learned lead times and send slots (pooled data).
    Learning,
    /// One stored customer whole (`touchpoint customer`).
    Customer {
        tenant: TenantId,
        customer: String,
    },
}

impl Fetch {
    /// Fetches with the same key replace each other in the connection's
    /// queue: only the newest is worth asking for.
    pub fn key(&self) -> u8 {
        match self {
            Fetch::Status => 0,
            Fetch::Overview { .. } => 1,
            Fetch::Queue { .. } => 2,
            Fetch::Message { .. } => 3,
            Fetch::Content { .. } => 4,
            Fetch::Tenants => 5,
            Fetch::Costs { .. } => 6,
            Fetch::Tenant(_) => 7,
            Fetch::Proposals { .. } => 8,
            Fetch::Proposal(_) => 9,
            Fetch::Preview { .. } => 10,
            Fetch::Audit { .. } => 11,
            // One per grouping: the results view asks for several at once.
            Fetch::Report(q) => match q.by {
                By::Service => 12,
                By::Tenant => 13,
                By::Lead => 14,
                By::Weekday => 15,
                By::Hour => 16,
                By::Channel => 17,
                By::Month => 18,
            },
            Fetch::Learning => 19,
            Fetch::Customer { .. } => 20,
        }
    }
}

/// A state-changing request, sent only after the user confirmed it, or a
/// command of the `:` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Act {
    Messages {
        action: MessageAction,
        /// Per tenant, the message ids.
        targets: Vec<(TenantId, Vec<u64>)>,
    },
    Approve {
        id: u64,
        comment: String,
    },
    Reject {
        id: u64,
        comment: String,
    },
    /// A command of the `:` line (a dry-run plan needs no confirmation).
    Run(Run),
}

/// What the `:` line asks the daemon to do, as `touchpoint pause|resume|
/// plan|batches|import` would with the same arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Run {
    Pause(PauseScope),
    Resume(PauseScope),
    Plan {
        tenant: Option<TenantId>,
        day: Option<Date>,
        dry_run: bool,
        /// Candidate policy files, read by the console.
        policies: Option<PathBuf>,
        show: u32,
    },
    Batches {
        tenant: Option<TenantId>,
    },
    /// Files read by the console and uploaded, one after the other.
    Import {
        tenant: TenantId,
        files: Vec<PathBuf>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Fetch(Fetch),
    Act(Act),
    /// Reconnect now when disconnected (fetches are re-sent on connect).
    Reconnect,
}

/// An answer the connection received.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    Status(Box<DaemonStatus>),
    Overview(Box<Overview>),
    Queue(Box<QueuePage>),
    Message {
        tenant: TenantId,
        message: Box<Message>,
    },
    Content(Box<MessageContent>),
    Tenants(Vec<TenantSummary>),
    Costs {
        month: u32,
        rows: Vec<CostRow>,
    },
    Tenant(Box<TenantDetail>),
    Proposals(Vec<Proposal>),
    Proposal(Box<ProposalDetail>),
    Preview(Box<Preview>),
    Audit {
        text: String,
        entries: Vec<AuditEntry>,
    },
    Report(Box<Report>),
    Learning(Box<touchpoint_common::learning::LearnedState>),
    /// The answer for one customer asked for, or the daemon's refusal
    /// (unknown customer, a tenant outside the scope) in its words: the
    /// view that asked shows either.
    Customer {
        tenant: TenantId,
        customer: String,
        answer: Result<Box<CustomerDetail>, String>,
    },
}

/// What the connection task reports.
#[derive(Clone, Debug, PartialEq)]
pub enum NetEvent {
    Connecting {
        attempt: u32,
    },
    Connected {
        daemon: String,
        identity: Identity,
    },
    Disconnected {
        error: String,
        attempt: u32,
    },
    Data(Data),
    /// The daemon says something changed.
    Changed(Changes),
    /// A request the daemon refused or that failed; the connection is fine.
    Failed {
        what: &'static str,
        error: String,
    },
    /// A confirmed action was carried out: what happened, in words.
    Acted {
        summary: String,
        ok: bool,
    },
    /// A command of the `:` line was carried out: a line for the footer
    /// and its whole output (pauses in force, the plan, the batches, the
    /// import reports).
    Ran {
        title: String,
        summary: String,
        text: String,
        ok: bool,
    },
}

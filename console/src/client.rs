//! The one client of `touchpointd`'s control socket. The TUI, the subcommands
//! and the demo all talk to the daemon through [`Client`].
//!
//! The daemon answers requests in order, each with the id of its request, so
//! a client is a simple request/answer loop over one connection; the only
//! pipelining is the upload, whose chunks are not answered individually.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures::{FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::UnixStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use touchpoint_common::codec::{decode_frame, encode_frame};
use touchpoint_common::domain::{ImportReport, MergeRecord};
use touchpoint_common::outbox::Message;
use touchpoint_common::protocol::{
    ActionResult, AuditEntry, BatchSummary, Changes, CostRow, DaemonStatus, DispatchStatus,
    ErrorReply, Hello, HelloReply, Identity, MessageAction, MessageContent, OutcomeReport,
    Overview, Pause, PauseScope, PlanResult, Preview, Proposal, ProposalDetail, QueueFilter,
    QueuePage, Request, RequestEnvelope, Response, ResponseEnvelope, TemplateHistory, TenantDetail,
    TenantSummary, MAX_FRAME_BYTES, PROTOCOL_VERSION, UPLOAD_CHUNK_BYTES,
};
use touchpoint_common::{Date, TenantId};

/// Largest call-outcomes file the console uploads. The file travels in one
/// request, so the frame limit may make the real bound smaller; see
/// [`call_outcomes_limit`].
pub const MAX_CALL_OUTCOMES_BYTES: u64 = 16 << 20;

/// Room in a frame for everything of a `CallOutcomes` request but the file
/// name and the data: envelope id, variant tag and two length prefixes.
const CALL_OUTCOMES_FRAME_OVERHEAD: usize = 64;

/// The largest call-outcomes file named `file_name` that one request can carry.
pub fn call_outcomes_limit(file_name: &str) -> u64 {
    let frame = MAX_FRAME_BYTES.saturating_sub(CALL_OUTCOMES_FRAME_OVERHEAD + file_name.len());
    MAX_CALL_OUTCOMES_BYTES.min(frame as u64)
}

/// Reads a call-outcomes file for [`Client::call_outcomes`]: its name and its
/// bytes. Refuses anything but a regular file and files over
/// [`call_outcomes_limit`] without reading them.
pub async fn read_call_outcomes(path: &Path) -> Result<(String, Vec<u8>), ClientError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let limit = call_outcomes_limit(&file_name);
    match read_capped(path, limit).await {
        Ok(data) => Ok((file_name, data)),
        Err(Capped::Io(source)) => Err(ClientError::File {
            path: path.to_path_buf(),
            source,
        }),
        Err(Capped::TooLarge(size)) => Err(ClientError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit,
        }),
    }
}

/// Largest template file `touchpoint propose` sends. Brand templates are a
/// few KiB; anything near this is a wrong file.
pub const MAX_TEMPLATE_BYTES: u64 = 1 << 20;

/// Reads a template file for [`Client::propose`]: UTF-8 text of at most
/// [`MAX_TEMPLATE_BYTES`], without a byte-order mark. A larger file is refused
/// without reading it; text that is not UTF-8 names its first bad line.
pub async fn read_template(path: &Path) -> Result<String, ClientError> {
    let data = match read_capped(path, MAX_TEMPLATE_BYTES).await {
        Ok(data) => data,
        Err(Capped::Io(source)) => {
            return Err(ClientError::File {
                path: path.to_path_buf(),
                source,
            })
        }
        Err(Capped::TooLarge(size)) => {
            return Err(ClientError::TemplateTooLarge {
                path: path.to_path_buf(),
                size,
                limit: MAX_TEMPLATE_BYTES,
            })
        }
    };
    let text = String::from_utf8(data).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        ClientError::File {
            path: path.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::InvalidData,
                format!("line {line} is not UTF-8 text; save the file as UTF-8"),
            ),
        }
    })?;
    // Some editors start UTF-8 files with a byte-order mark; it is not part of the template.
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// Why [`read_capped`] returned no data.
enum Capped {
    Io(io::Error),
    /// The file's size, or at least how much of it was read.
    TooLarge(u64),
}

/// Reads a regular file whole, refusing it without reading when it is larger
/// than `limit`.
async fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, Capped> {
    let handle = tokio::fs::File::open(path).await.map_err(Capped::Io)?;
    let meta = handle.metadata().await.map_err(Capped::Io)?;
    if !meta.is_file() {
        return Err(Capped::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    if meta.len() > limit {
        return Err(Capped::TooLarge(meta.len()));
    }
    // The file may grow after the check; read one byte past the limit to notice.
    let mut data = Vec::with_capacity(meta.len() as usize);
    handle
        .take(limit + 1)
        .read_to_end(&mut data)
        .await
        .map_err(Capped::Io)?;
    if data.len() as u64 > limit {
        return Err(Capped::TooLarge(data.len() as u64));
    }
    Ok(data)
}

/// What `touchpoint plan` asks for; see [`Request::Plan`].
#[derive(Clone, Debug, Default)]
pub struct PlanArgs {
    pub tenant: Option<TenantId>,
    pub day: Option<Date>,
    pub dry_run: bool,
    pub policies: Option<std::collections::BTreeMap<String, String>>,
    pub show: u32,
}

/// Environment variable naming the control socket.
pub const SOCKET_ENV: &str = "TOUCHPOINT_SOCKET";
/// Socket of a system-wide daemon.
pub const SYSTEM_SOCKET: &str = "/run/touchpoint/touchpoint.sock";

/// How long an ordinary request may wait for its answer.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the import of an uploaded file may take. Large exports take
/// minutes; this only guards against a daemon that hangs for good.
pub const DEFAULT_IMPORT_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);
/// Connecting plus the hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot connect to {}: {source} — is touchpointd running? \
         (socket path from --socket or ${SOCKET_ENV})",
        path.display()
    )]
    Connect { path: PathBuf, source: io::Error },
    #[error("the daemon refused the connection: {0}")]
    Rejected(String),
    /// The daemon understood the request and said no; the text is its reason.
    #[error("{0}")]
    Daemon(ErrorReply),
    #[error("connection to the daemon failed: {0}")]
    Io(#[from] io::Error),
    #[error("the daemon closed the connection")]
    Closed,
    #[error("no answer from the daemon to {request} within {} s", timeout.as_secs())]
    Timeout {
        request: &'static str,
        timeout: Duration,
    },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("the daemon answered {request} with {got}")]
    Unexpected {
        request: &'static str,
        got: &'static str,
    },
    #[error("cannot read {}: {source}", path.display())]
    File { path: PathBuf, source: io::Error },
    #[error(
        "{} is {size} bytes, more than the {limit} bytes ({}) one upload may carry; split it",
        path.display(),
        crate::format::human_bytes(*limit)
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error(
        "{} is {size} bytes; a template may have at most {limit} bytes ({}) — is it the right file?",
        path.display(),
        crate::format::human_bytes(*limit)
    )]
    TemplateTooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
}

impl ClientError {
    /// True when the connection is gone or unusable (reconnect; the
    /// subcommands exit 3, `output::EXIT_UNREACHABLE`),
    /// false when the daemon or the file said no to this one request.
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::Rejected(_)
                | ClientError::Io(_)
                | ClientError::Closed
                | ClientError::Timeout { .. }
                | ClientError::Protocol(_)
        )
    }
}

/// Where the console looks for the daemon: the `--socket` flag, else
/// `$TOUCHPOINT_SOCKET`, else `$XDG_RUNTIME_DIR/touchpoint/touchpoint.sock`
/// when it exists, else [`SYSTEM_SOCKET`].
pub fn resolve_socket(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    resolve_socket_from(
        std::env::var_os(SOCKET_ENV).map(PathBuf::from),
        std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
    )
}

fn resolve_socket_from(env_socket: Option<PathBuf>, runtime_dir: Option<PathBuf>) -> PathBuf {
    if let Some(p) = env_socket.filter(|p| !p.as_os_str().is_empty()) {
        return p;
    }
    if let Some(dir) = runtime_dir.filter(|p| !p.as_os_str().is_empty()) {
        let user_socket = dir.join("touchpoint").join("touchpoint.sock");
        if user_socket.exists() {
            return user_socket;
        }
    }
    PathBuf::from(SYSTEM_SOCKET)
}

fn frame_codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .big_endian()
        .max_frame_length(MAX_FRAME_BYTES)
        .new_codec()
}

fn response_name(r: &Response) -> &'static str {
    match r {
        Response::Pong => "Pong",
        Response::Status(_) => "Status",
        Response::Tenants(_) => "Tenants",
        Response::Tenant(_) => "Tenant",
        Response::UploadReady => "UploadReady",
        Response::Imported(_) => "Imported",
        Response::Imports(_) => "Imports",
        Response::Merges(_) => "Merges",
        Response::Responses(_) => "Responses",
        Response::Customer(_) => "Customer",
        Response::Rights(_) => "Rights",
        Response::CustomerExport(_) => "CustomerExport",
        Response::Backup(_) => "Backup",
        Response::Retention(_) => "Retention",
        Response::MergeUndone(_) => "MergeUndone",
        Response::Audit(_) => "Audit",
        Response::Error(_) => "Error",
        Response::Planned(_) => "Planned",
        Response::Dispatch(_) => "Dispatch",
        Response::Paused(_) => "Paused",
        Response::Batches(_) => "Batches",
        Response::Costs(_) => "Costs",
        Response::Message(_) => "Message",
        Response::Actions(_) => "Actions",
        Response::Outcomes(_) => "Outcomes",
        Response::Proposal(_) => "Proposal",
        Response::Proposals(_) => "Proposals",
        Response::Preview(_) => "Preview",
        Response::Templates(_) => "Templates",
        Response::Queue(_) => "Queue",
        Response::Content(_) => "Content",
        Response::Overview(_) => "Overview",
        Response::Subscribed => "Subscribed",
        Response::Changed(_) => "Changed",
        Response::Report(_) => "Report",
        Response::Learning(_) => "Learning",
    }
}

/// One authenticated connection to `touchpointd`.
pub struct Client {
    framed: Framed<UnixStream, LengthDelimitedCodec>,
    socket: PathBuf,
    daemon: String,
    identity: Identity,
    next_id: u64,
    /// Set once a send or receive was cut off half-way: the stream may be out
    /// of step with the daemon, so nothing more is sent on it.
    broken: bool,
    request_timeout: Duration,
    import_timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("socket", &self.socket)
            .field("daemon", &self.daemon)
            .field("identity", &self.identity)
            .field("next_id", &self.next_id)
            .field("broken", &self.broken)
            .finish()
    }
}

impl Client {
    /// Connects and completes the hello.
    pub async fn connect(path: &Path) -> Result<Client, ClientError> {
        let connect_err = |source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        };
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, UnixStream::connect(path))
            .await
            .map_err(|_| connect_err(io::Error::new(io::ErrorKind::TimedOut, "timed out")))?
            .map_err(connect_err)?;
        let mut framed = Framed::new(stream, frame_codec());
        let client_name = format!("touchpoint {}", env!("CARGO_PKG_VERSION"));
        let hello = encode_frame(&Hello::current(client_name))
            .map_err(|e| ClientError::Protocol(format!("cannot encode hello: {e}")))?;
        let reply = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
            // A daemon that refuses us may answer and close before our hello
            // is written: read its answer even when the write failed.
            let sent = framed.send(Bytes::from(hello)).await;
            match framed.next().await {
                Some(Ok(frame)) => Ok(frame),
                Some(Err(e)) => Err(sent.err().unwrap_or(e).into()),
                None => Err(sent.err().map_or(ClientError::Closed, Into::into)),
            }
        })
        .await
        .map_err(|_| ClientError::Timeout {
            request: "hello",
            timeout: HANDSHAKE_TIMEOUT,
        })??;
        let reply: HelloReply = decode_frame(&reply).map_err(|e| {
            ClientError::Protocol(format!(
                "{} did not answer like touchpointd ({e})",
                path.display()
            ))
        })?;
        match reply {
            HelloReply::Welcome {
                version,
                daemon,
                identity,
            } => {
                if version != PROTOCOL_VERSION {
                    return Err(ClientError::Rejected(format!(
                        "{daemon} speaks protocol version {version}, this console speaks {PROTOCOL_VERSION}"
                    )));
                }
                tracing::info!(socket = %path.display(), %daemon, user = %identity.user, role = %identity.role, "connected");
                Ok(Client {
                    framed,
                    socket: path.to_path_buf(),
                    daemon,
                    identity,
                    next_id: 1,
                    broken: false,
                    request_timeout: DEFAULT_REQUEST_TIMEOUT,
                    import_timeout: DEFAULT_IMPORT_TIMEOUT,
                })
            }
            HelloReply::Rejected { reason, .. } => Err(ClientError::Rejected(reason)),
        }
    }

    /// Who the daemon thinks we are.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The daemon's self-description from the hello ("touchpointd 0.1.0").
    pub fn daemon(&self) -> &str {
        &self.daemon
    }

    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    pub fn set_request_timeout(&mut self, timeout: Duration) {
        self.request_timeout = timeout;
    }

    pub fn set_import_timeout(&mut self, timeout: Duration) {
        self.import_timeout = timeout;
    }

    /// Sends one request and waits for its answer. An `Error` answer becomes
    /// [`ClientError::Daemon`].
    pub async fn request(&mut self, request: Request) -> Result<Response, ClientError> {
        let name = request.name();
        let timeout = match request {
            // Long-running work: imports, plans, writing the day's letter
            // PDFs, applying a call centre's list.
            Request::UploadEnd
            | Request::Plan { .. }
            | Request::RunBatches { .. }
            | Request::Backup { .. }
            | Request::VerifyBackup { .. }
            | Request::CallOutcomes { .. } => self.import_timeout,
            _ => self.request_timeout,
        };
        let id = self.send(request, timeout).await?;
        match self.receive(id, name, timeout).await? {
            Response::Error(e) => Err(ClientError::Daemon(e)),
            other => Ok(other),
        }
    }

    pub async fn ping(&mut self) -> Result<(), ClientError> {
        match self.request(Request::Ping).await? {
            Response::Pong => Ok(()),
            other => Err(unexpected("ping", &other)),
        }
    }

    pub async fn status(&mut self) -> Result<DaemonStatus, ClientError> {
        match self.request(Request::Status).await? {
            Response::Status(s) => Ok(s),
            other => Err(unexpected("status", &other)),
        }
    }

    pub async fn tenants(&mut self) -> Result<Vec<TenantSummary>, ClientError> {
        match self.request(Request::ListTenants).await? {
            Response::Tenants(t) => Ok(t),
            other => Err(unexpected("tenants", &other)),
        }
    }

    pub async fn tenant(&mut self, tenant: &TenantId) -> Result<TenantDetail, ClientError> {
        match self
            .request(Request::Tenant {
                tenant: tenant.clone(),
            })
            .await?
        {
            Response::Tenant(t) => Ok(t),
            other => Err(unexpected("tenant", &other)),
        }
    }

    pub async fn imports(
        &mut self,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<ImportReport>, ClientError> {
        match self
            .request(Request::Imports {
                tenant: tenant.clone(),
                limit,
            })
            .await?
        {
            Response::Imports(i) => Ok(i),
            other => Err(unexpected("imports", &other)),
        }
    }

    pub async fn merges(
        &mut self,
        tenant: &TenantId,
        include_undone: bool,
    ) -> Result<Vec<MergeRecord>, ClientError> {
        match self
            .request(Request::Merges {
                tenant: tenant.clone(),
                include_undone,
            })
            .await?
        {
            Response::Merges(m) => Ok(m),
            other => Err(unexpected("merges", &other)),
        }
    }

    pub async fn undo_merge(
        &mut self,
        tenant: &TenantId,
        merge_id: u64,
    ) -> Result<MergeRecord, ClientError> {
        match self
            .request(Request::UndoMerge {
                tenant: tenant.clone(),
                merge_id,
            })
            .await?
        {
            Response::MergeUndone(m) => Ok(m),
            other => Err(unexpected("undo-merge", &other)),
        }
    }

    /// A data subject's right exercised (`Erase`, `Reinstate`, `Object`,
    /// `EraseTenant`): what was done, in counts.
    pub async fn rights(
        &mut self,
        request: Request,
    ) -> Result<touchpoint_common::protocol::RightsDone, ClientError> {
        let name = request.name();
        match self.request(request).await? {
            Response::Rights(r) => Ok(r),
            other => Err(unexpected(name, &other)),
        }
    }

    /// A backup written or verified (`Backup`, `VerifyBackup`).
    pub async fn backup(
        &mut self,
        request: Request,
    ) -> Result<touchpoint_common::protocol::BackupDone, ClientError> {
        let name = request.name();
        match self.request(request).await? {
            Response::Backup(b) => Ok(b),
            other => Err(unexpected(name, &other)),
        }
    }

    /// Runs the brand's retention now (administrators).
    pub async fn retention_run(
        &mut self,
    ) -> Result<touchpoint_common::protocol::RetentionRun, ClientError> {
        match self.request(Request::RetentionRun).await? {
            Response::Retention(r) => Ok(r),
            other => Err(unexpected("retention-run", &other)),
        }
    }

    /// Everything stored about one customer (Art. 15/20).
    pub async fn export_customer(
        &mut self,
        tenant: &TenantId,
        customer: String,
    ) -> Result<touchpoint_common::protocol::CustomerExport, ClientError> {
        match self
            .request(Request::ExportCustomer {
                tenant: tenant.clone(),
                customer,
            })
            .await?
        {
            Response::CustomerExport(x) => Ok(*x),
            other => Err(unexpected("export-customer", &other)),
        }
    }

    /// The newest `limit` audit entries; with `text`, only those containing it.
    pub async fn audit(
        &mut self,
        tenant: Option<&TenantId>,
        limit: u32,
        text: &str,
    ) -> Result<Vec<AuditEntry>, ClientError> {
        match self
            .request(Request::Audit {
                tenant: tenant.cloned(),
                limit,
                text: text.to_string(),
            })
            .await?
        {
            Response::Audit(a) => Ok(a),
            other => Err(unexpected("audit", &other)),
        }
    }

    /// One page of the outbox, filtered in the daemon.
    pub async fn queue(
        &mut self,
        filter: &QueueFilter,
        offset: u64,
        limit: u32,
    ) -> Result<QueuePage, ClientError> {
        match self
            .request(Request::Queue {
                filter: filter.clone(),
                offset,
                limit,
            })
            .await?
        {
            Response::Queue(p) => Ok(*p),
            other => Err(unexpected("queue", &other)),
        }
    }

    /// A message's content as sent (or as it will be sent).
    pub async fn content(
        &mut self,
        tenant: &TenantId,
        id: u64,
    ) -> Result<MessageContent, ClientError> {
        match self
            .request(Request::Content {
                tenant: tenant.clone(),
                id,
            })
            .await?
        {
            Response::Content(c) => Ok(*c),
            other => Err(unexpected("content", &other)),
        }
    }

    /// The overview of `day`'s messages; `None`: of the next day anything
    /// goes out.
    pub async fn overview(&mut self, day: Option<Date>) -> Result<Overview, ClientError> {
        match self.request(Request::Overview { day }).await? {
            Response::Overview(o) => Ok(*o),
            other => Err(unexpected("overview", &other)),
        }
    }

    /// Turns this connection into the daemon's change feed.
    pub async fn subscribe(mut self) -> Result<Subscription, ClientError> {
        let timeout = self.request_timeout;
        let id = self.send(Request::Subscribe, timeout).await?;
        match self.receive(id, "subscribe", timeout).await? {
            Response::Subscribed => Ok(Subscription { client: self, id }),
            Response::Error(e) => Err(ClientError::Daemon(e)),
            other => Err(unexpected("subscribe", &other)),
        }
    }

    /// Plans (or with `dry_run` only computes) one tenant or all in scope.
    pub async fn plan(&mut self, request: PlanArgs) -> Result<PlanResult, ClientError> {
        let PlanArgs {
            tenant,
            day,
            dry_run,
            policies,
            show,
        } = request;
        match self
            .request(Request::Plan {
                tenant,
                day,
                dry_run,
                policies,
                show,
            })
            .await?
        {
            Response::Planned(p) => Ok(p),
            other => Err(unexpected("plan", &other)),
        }
    }

    /// Queues, throttles, pauses and the transport.
    pub async fn dispatch_status(&mut self) -> Result<DispatchStatus, ClientError> {
        match self.request(Request::DispatchStatus).await? {
            Response::Dispatch(d) => Ok(*d),
            other => Err(unexpected("dispatch-status", &other)),
        }
    }

    /// Pauses dispatch for `scope`; returns every pause in force afterwards.
    pub async fn pause(&mut self, scope: PauseScope) -> Result<Vec<Pause>, ClientError> {
        match self.request(Request::Pause { scope }).await? {
            Response::Paused(p) => Ok(p),
            other => Err(unexpected("pause", &other)),
        }
    }

    /// Lifts the pause of `scope`; returns the pauses still in force.
    pub async fn resume(&mut self, scope: PauseScope) -> Result<Vec<Pause>, ClientError> {
        match self.request(Request::Resume { scope }).await? {
            Response::Paused(p) => Ok(p),
            other => Err(unexpected("resume", &other)),
        }
    }

    /// Closes today's letter batches and call lists of one tenant or all in
    /// scope now.
    pub async fn run_batches(
        &mut self,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<BatchSummary>, ClientError> {
        match self
            .request(Request::RunBatches {
                tenant: tenant.cloned(),
            })
            .await?
        {
            Response::Batches(b) => Ok(b),
            other => Err(unexpected("run-batches", &other)),
        }
    }

    /// The ledger of one tenant or all in scope, for one month (`yyyymm`) or all.
    pub async fn costs(
        &mut self,
        tenant: Option<&TenantId>,
        month: Option<u32>,
    ) -> Result<Vec<CostRow>, ClientError> {
        match self
            .request(Request::Costs {
                tenant: tenant.cloned(),
                month,
            })
            .await?
        {
            Response::Costs(c) => Ok(c),
            other => Err(unexpected("costs", &other)),
        }
    }

    /// The results report for a query.
    pub async fn report(
        &mut self,
        query: touchpoint_common::report::answer::ReportQuery,
    ) -> Result<touchpoint_common::report::answer::Report, ClientError> {
        match self.request(Request::Report { query }).await? {
            Response::Report(r) => Ok(*r),
            other => Err(unexpected("report", &other)),
        }
    }

    /// What is learned (lead times, send slots), for one service or all.
    pub async fn learning(
        &mut self,
        service: Option<String>,
    ) -> Result<touchpoint_common::learning::LearnedState, ClientError> {
        match self.request(Request::Learning { service }).await? {
            Response::Learning(s) => Ok(*s),
            other => Err(unexpected("learning", &other)),
        }
    }

    /// Freezes or resets a service's learned values (administrators).
    pub async fn learning_action(
        &mut self,
        service: String,
        action: touchpoint_common::learning::LearningAction,
    ) -> Result<touchpoint_common::learning::LearnedState, ClientError> {
        match self
            .request(Request::LearningAction { service, action })
            .await?
        {
            Response::Learning(s) => Ok(*s),
            other => Err(unexpected("learning", &other)),
        }
    }

    /// A tenant's responses and their verdicts, newest first.
    pub async fn responses(
        &mut self,
        tenant: &TenantId,
        customer: Option<String>,
        organic_only: bool,
        limit: u32,
    ) -> Result<touchpoint_common::report::ResponseList, ClientError> {
        match self
            .request(Request::Responses {
                tenant: tenant.clone(),
                customer,
                organic_only,
                limit,
            })
            .await?
        {
            Response::Responses(r) => Ok(*r),
            other => Err(unexpected("responses", &other)),
        }
    }

    /// One stored customer whole (`touchpoint customer`).
    pub async fn customer(
        &mut self,
        tenant: &TenantId,
        customer: String,
    ) -> Result<touchpoint_common::protocol::CustomerDetail, ClientError> {
        match self
            .request(Request::Customer {
                tenant: tenant.clone(),
                customer,
            })
            .await?
        {
            Response::Customer(c) => Ok(*c),
            other => Err(unexpected("customer", &other)),
        }
    }

    /// One message with its why, history and dispatch record.
    pub async fn message(&mut self, tenant: &TenantId, id: u64) -> Result<Message, ClientError> {
        match self
            .request(Request::Message {
                tenant: tenant.clone(),
                id,
            })
            .await?
        {
            Response::Message(m) => Ok(*m),
            other => Err(unexpected("message", &other)),
        }
    }

    /// Holds, releases, cancels or retries messages; one result per id.
    pub async fn message_action(
        &mut self,
        tenant: &TenantId,
        ids: &[u64],
        action: MessageAction,
    ) -> Result<Vec<ActionResult>, ClientError> {
        match self
            .request(Request::MessageAction {
                tenant: tenant.clone(),
                ids: ids.to_vec(),
                action,
            })
            .await?
        {
            Response::Actions(a) => Ok(a),
            other => Err(unexpected(action.as_str(), &other)),
        }
    }

    /// Uploads a call centre's outcome list, as [`read_call_outcomes`] reads
    /// it. Refuses data over [`call_outcomes_limit`] without sending.
    pub async fn call_outcomes(
        &mut self,
        file_name: String,
        data: Vec<u8>,
    ) -> Result<OutcomeReport, ClientError> {
        let limit = call_outcomes_limit(&file_name);
        if data.len() as u64 > limit {
            return Err(ClientError::TooLarge {
                path: PathBuf::from(file_name),
                size: data.len() as u64,
                limit,
            });
        }
        match self
            .request(Request::CallOutcomes { file_name, data })
            .await?
        {
            Response::Outcomes(r) => Ok(r),
            other => Err(unexpected("call-outcomes", &other)),
        }
    }

    /// Proposes `text` as the next version of `template`. The daemon answers
    /// with the new proposal, or refuses an invalid template with one
    /// `file:line: key: message` line per error ([`ClientError::Daemon`]).
    pub async fn propose(
        &mut self,
        template: &str,
        text: String,
        comment: &str,
    ) -> Result<ProposalDetail, ClientError> {
        match self
            .request(Request::Propose {
                template: template.to_string(),
                text,
                comment: comment.to_string(),
            })
            .await?
        {
            Response::Proposal(p) => Ok(*p),
            other => Err(unexpected("propose", &other)),
        }
    }

    /// Proposes going back to `version` of `template`.
    pub async fn propose_rollback(
        &mut self,
        template: &str,
        version: u32,
        comment: &str,
    ) -> Result<ProposalDetail, ClientError> {
        match self
            .request(Request::ProposeRollback {
                template: template.to_string(),
                version,
                comment: comment.to_string(),
            })
            .await?
        {
            Response::Proposal(p) => Ok(*p),
            other => Err(unexpected("propose-rollback", &other)),
        }
    }

    /// Pending proposals, or with `all` the decided ones too.
    pub async fn proposals(&mut self, all: bool) -> Result<Vec<Proposal>, ClientError> {
        match self.request(Request::Proposals { all }).await? {
            Response::Proposals(p) => Ok(p),
            other => Err(unexpected("proposals", &other)),
        }
    }

    /// One proposal with its diff against the version in force.
    pub async fn proposal(&mut self, id: u64) -> Result<ProposalDetail, ClientError> {
        match self.request(Request::Proposal { id }).await? {
            Response::Proposal(p) => Ok(*p),
            other => Err(unexpected("proposal", &other)),
        }
    }

    /// Proposal `id` rendered for a customer of `tenant` (one the daemon
    /// picks when `customer` is `None`).
    pub async fn preview(
        &mut self,
        id: u64,
        tenant: &TenantId,
        customer: Option<&str>,
    ) -> Result<Preview, ClientError> {
        match self
            .request(Request::Preview {
                id,
                tenant: tenant.clone(),
                customer: customer.map(str::to_string),
            })
            .await?
        {
            Response::Preview(p) => Ok(*p),
            other => Err(unexpected("preview", &other)),
        }
    }

    /// Approves proposal `id`; the answer carries the version it became.
    pub async fn approve(&mut self, id: u64, comment: &str) -> Result<ProposalDetail, ClientError> {
        match self
            .request(Request::Approve {
                id,
                comment: comment.to_string(),
            })
            .await?
        {
            Response::Proposal(p) => Ok(*p),
            other => Err(unexpected("approve", &other)),
        }
    }

    /// Rejects proposal `id`.
    pub async fn reject(&mut self, id: u64, comment: &str) -> Result<ProposalDetail, ClientError> {
        match self
            .request(Request::Reject {
                id,
                comment: comment.to_string(),
            })
            .await?
        {
            Response::Proposal(p) => Ok(*p),
            other => Err(unexpected("reject", &other)),
        }
    }

    /// Every template's version history, or one template's.
    pub async fn templates(
        &mut self,
        name: Option<&str>,
    ) -> Result<Vec<TemplateHistory>, ClientError> {
        match self
            .request(Request::Templates {
                name: name.map(str::to_string),
            })
            .await?
        {
            Response::Templates(t) => Ok(t),
            other => Err(unexpected("templates", &other)),
        }
    }

    /// Uploads a file for import into `tenant` and returns the daemon's
    /// report. The file is streamed, never read whole.
    pub async fn upload(
        &mut self,
        tenant: &TenantId,
        file: impl AsRef<Path>,
    ) -> Result<ImportReport, ClientError> {
        let path = file.as_ref();
        let file_err = |source| ClientError::File {
            path: path.to_path_buf(),
            source,
        };
        let handle = tokio::fs::File::open(path).await.map_err(file_err)?;
        let meta = handle.metadata().await.map_err(file_err)?;
        if !meta.is_file() {
            return Err(file_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        self.upload_reader(tenant, &file_name, meta.len(), handle)
            .await
            .map_err(|e| match e {
                UploadError::Client(e) => e,
                UploadError::Read(source) => file_err(source),
            })
    }

    /// Uploads `size` bytes from `reader` as a file named `file_name`.
    pub async fn upload_reader<R: AsyncRead + Unpin>(
        &mut self,
        tenant: &TenantId,
        file_name: &str,
        size: u64,
        reader: R,
    ) -> Result<ImportReport, UploadError> {
        let begin = Request::UploadBegin {
            tenant: tenant.clone(),
            file_name: file_name.to_string(),
            size,
        };
        match self.request(begin).await? {
            Response::UploadReady => {}
            other => return Err(unexpected("import", &other).into()),
        }

        // Read at most the announced size, so a file that grows meanwhile
        // cannot send more than the daemon expects.
        let mut reader = reader.take(size);
        let mut sent: u64 = 0;
        loop {
            let chunk = match read_chunk(&mut reader).await {
                Ok(c) => c,
                Err(e) => {
                    self.abort_upload().await;
                    return Err(UploadError::Read(e));
                }
            };
            if chunk.is_empty() {
                break;
            }
            sent += chunk.len() as u64;
            self.send(Request::UploadChunk { data: chunk }, self.request_timeout)
                .await?;
            // Chunks are not answered; anything that did arrive is the daemon
            // giving up early, so stop streaming instead of sending the rest.
            if let Some(early) = self.poll_early_answer()? {
                if let Response::Error(e) = early.response {
                    self.abort_upload().await;
                    return Err(ClientError::Daemon(e).into());
                }
                tracing::warn!(id = early.id, "unexpected answer to an upload chunk");
            }
        }
        if sent != size {
            self.abort_upload().await;
            return Err(UploadError::Read(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("file shrank while uploading: {sent} of {size} bytes"),
            )));
        }
        match self.request(Request::UploadEnd).await? {
            Response::Imported(report) => Ok(report),
            other => Err(unexpected("import-end", &other).into()),
        }
    }

    /// Tells the daemon to drop a half-sent upload. Best effort: the error
    /// that caused it is what the caller reports.
    async fn abort_upload(&mut self) {
        if let Err(e) = self.request(Request::UploadAbort).await {
            tracing::warn!(error = %e, "aborting the upload failed");
        }
    }

    async fn send(&mut self, request: Request, timeout: Duration) -> Result<u64, ClientError> {
        if self.broken {
            return Err(ClientError::Closed);
        }
        let id = self.next_id;
        self.next_id += 1;
        let name = request.name();
        let bytes = encode_frame(&RequestEnvelope { id, request })
            .map_err(|e| ClientError::Protocol(format!("cannot encode {name}: {e}")))?;
        if bytes.len() > MAX_FRAME_BYTES {
            return Err(ClientError::Protocol(format!(
                "{name} is {} bytes, more than a frame may carry",
                bytes.len()
            )));
        }
        match tokio::time::timeout(timeout, self.framed.send(Bytes::from(bytes))).await {
            Ok(Ok(())) => Ok(id),
            Ok(Err(e)) => {
                self.broken = true;
                Err(ClientError::Io(e))
            }
            Err(_) => {
                self.broken = true;
                Err(ClientError::Timeout {
                    request: name,
                    timeout,
                })
            }
        }
    }

    /// Waits for the answer to request `id`, passing over answers to earlier
    /// requests (one that timed out, or an upload chunk).
    async fn receive(
        &mut self,
        id: u64,
        name: &'static str,
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        let result = tokio::time::timeout(timeout, async {
            loop {
                let envelope = self.read_envelope().await?;
                if envelope.id == id {
                    return Ok(envelope.response);
                }
                if envelope.id > id {
                    return Err(ClientError::Protocol(format!(
                        "answer to request {} arrived while waiting for {id}",
                        envelope.id
                    )));
                }
                tracing::debug!(
                    stale = envelope.id,
                    waiting = id,
                    "skipping an earlier answer"
                );
            }
        })
        .await;
        match result {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.broken = true;
                Err(e)
            }
            // The answer may still come; `receive` skips it by its id.
            Err(_) => Err(ClientError::Timeout {
                request: name,
                timeout,
            }),
        }
    }

    pub(crate) async fn read_envelope(&mut self) -> Result<ResponseEnvelope, ClientError> {
        match self.framed.next().await {
            Some(frame) => decode_envelope(&frame?),
            None => Err(ClientError::Closed),
        }
    }

    /// An answer that is already waiting in the socket, without blocking.
    fn poll_early_answer(&mut self) -> Result<Option<ResponseEnvelope>, ClientError> {
        match self.framed.next().now_or_never() {
            None => Ok(None),
            Some(None) => {
                self.broken = true;
                Err(ClientError::Closed)
            }
            Some(Some(Err(e))) => {
                self.broken = true;
                Err(ClientError::Io(e))
            }
            Some(Some(Ok(frame))) => decode_envelope(&frame).map(Some),
        }
    }
}

fn decode_envelope(frame: &[u8]) -> Result<ResponseEnvelope, ClientError> {
    decode_frame(frame).map_err(|e| ClientError::Protocol(format!("cannot decode an answer: {e}")))
}

fn unexpected(request: &'static str, got: &Response) -> ClientError {
    match got {
        Response::Error(e) => ClientError::Daemon(e.clone()),
        other => ClientError::Unexpected {
            request,
            got: response_name(other),
        },
    }
}

/// Fills a buffer of [`UPLOAD_CHUNK_BYTES`] unless the input ends first; empty at the end.
async fn read_chunk<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; UPLOAD_CHUNK_BYTES];
    let mut filled = 0;
    while filled < buf.len() {
        let n = reader.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Failure of [`Client::upload_reader`]: the connection/daemon, or the input.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("cannot read the upload: {0}")]
    Read(io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use touchpoint_common::domain::{ImportStatus, Timestamp};
    use touchpoint_common::protocol::{ErrorKind, Role, Scope};

    fn identity() -> Identity {
        Identity {
            uid: 1000,
            gid: 1000,
            user: "anna".into(),
            role: Role::Operator,
            scope: Scope::All,
        }
    }

    type ServerConn = Framed<UnixStream, LengthDelimitedCodec>;

    async fn read_request(conn: &mut ServerConn) -> Option<RequestEnvelope> {
        let frame = conn.next().await?.ok()?;
        decode_frame(&frame).ok()
    }

    async fn answer(conn: &mut ServerConn, id: u64, response: Response) {
        let bytes = encode_frame(&ResponseEnvelope { id, response }).expect("encode");
        conn.send(Bytes::from(bytes)).await.expect("send");
    }

    /// A stand-in daemon: welcomes one connection, then runs `serve` on it.
    async fn fake_daemon<F, Fut>(
        serve: F,
    ) -> (tempfile::TempDir, PathBuf, tokio::task::JoinHandle<()>)
    where
        F: FnOnce(ServerConn) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.sock");
        let listener = tokio::net::UnixListener::bind(&path).expect("bind");
        let task = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            let mut conn = Framed::new(stream, frame_codec());
            let frame = conn.next().await.expect("hello").expect("hello frame");
            let hello: Hello = decode_frame(&frame).expect("decode hello");
            assert_eq!(hello.magic, touchpoint_common::protocol::PROTOCOL_MAGIC);
            assert!(hello.client.starts_with("touchpoint "));
            let reply = HelloReply::Welcome {
                version: PROTOCOL_VERSION,
                daemon: "touchpointd test".into(),
                identity: identity(),
            };
            conn.send(Bytes::from(encode_frame(&reply).expect("encode")))
                .await
                .expect("send");
            serve(conn).await;
        });
        (dir, path, task)
    }

    fn report(tenant: &TenantId, bytes: u64) -> ImportReport {
        ImportReport {
            import_id: 7,
            tenant: tenant.clone(),
            file_name: "kunden.csv".into(),
            content_hash: "00".into(),
            bytes,
            started_at: Timestamp(0),
            finished_at: Timestamp(0),
            status: ImportStatus::Committed,
            format: "utf-8, ';', 3 columns".into(),
            rows_total: 0,
            rows_ok: 0,
            rows_rejected: 0,
            customers: Default::default(),
            vehicles: Default::default(),
            consents: Default::default(),
            visits: Default::default(),
            unmapped_columns: vec![],
            errors: vec![],
            errors_truncated: 0,
            merges: 0,
            responses: Default::default(),
            credited: None,
            corrections: Default::default(),
            rows_warned: 0,
            warnings: vec![],
            warnings_truncated: 0,
            parked: 0,
            stale: Default::default(),
            previous_at: None,
        }
    }

    #[tokio::test]
    async fn connect_error_names_the_socket_and_the_remedy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing.sock");
        let err = Client::connect(&path).await.expect_err("no daemon");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("cannot connect to {}: ", path.display())),
            "{msg}"
        );
        assert!(msg.contains("is touchpointd running?"), "{msg}");
        assert!(msg.contains("$TOUCHPOINT_SOCKET"), "{msg}");
        assert!(err.is_connection());
    }

    #[tokio::test]
    async fn rejected_hello_carries_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.sock");
        let listener = tokio::net::UnixListener::bind(&path).expect("bind");
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            let mut conn = Framed::new(stream, frame_codec());
            let _ = conn.next().await;
            let reply = HelloReply::Rejected {
                version: 9,
                reason: "protocol 9 only".into(),
            };
            conn.send(Bytes::from(encode_frame(&reply).expect("encode")))
                .await
                .expect("send");
        });
        match Client::connect(&path).await {
            Err(ClientError::Rejected(r)) => assert_eq!(r, "protocol 9 only"),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn requests_get_increasing_ids_and_errors_become_daemon_errors() {
        let (_dir, path, server) = fake_daemon(|mut conn| async move {
            let r = read_request(&mut conn).await.expect("first");
            assert_eq!(r.id, 1);
            assert_eq!(r.request, Request::Ping);
            answer(&mut conn, 1, Response::Pong).await;
            let r = read_request(&mut conn).await.expect("second");
            assert_eq!(r.id, 2);
            answer(
                &mut conn,
                2,
                Response::Error(ErrorReply {
                    kind: ErrorKind::Forbidden,
                    message: "not yours".into(),
                }),
            )
            .await;
            let r = read_request(&mut conn).await.expect("third");
            assert_eq!(r.id, 3);
            answer(&mut conn, 3, Response::Tenants(vec![])).await;
        })
        .await;
        let mut client = Client::connect(&path).await.expect("connect");
        assert_eq!(client.identity().user, "anna");
        assert_eq!(client.daemon(), "touchpointd test");
        client.ping().await.expect("pong");
        let tenant = TenantId::new("d001").expect("id");
        match client.tenant(&tenant).await {
            Err(ClientError::Daemon(e)) => {
                assert_eq!(e.to_string(), "forbidden: not yours");
            }
            other => panic!("expected a daemon error, got {other:?}"),
        }
        assert!(client.tenants().await.expect("tenants").is_empty());
        server.await.expect("server");
    }

    #[tokio::test]
    async fn upload_streams_chunks_without_waiting_and_returns_the_report() {
        let size = UPLOAD_CHUNK_BYTES as u64 * 2 + 123;
        let (_dir, path, server) = fake_daemon(move |mut conn| async move {
            let begin = read_request(&mut conn).await.expect("begin");
            let tenant = match begin.request {
                Request::UploadBegin {
                    tenant,
                    file_name,
                    size: announced,
                } => {
                    assert_eq!(file_name, "kunden.csv");
                    assert_eq!(announced, size);
                    tenant
                }
                other => panic!("expected UploadBegin, got {other:?}"),
            };
            answer(&mut conn, begin.id, Response::UploadReady).await;
            let mut received = Vec::new();
            loop {
                let r = read_request(&mut conn).await.expect("chunk or end");
                match r.request {
                    Request::UploadChunk { data } => {
                        assert!(data.len() <= UPLOAD_CHUNK_BYTES);
                        received.extend_from_slice(&data);
                    }
                    Request::UploadEnd => {
                        let expected: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
                        assert!(received == expected, "upload content differs");
                        answer(&mut conn, r.id, Response::Imported(report(&tenant, size))).await;
                        break;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        })
        .await;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("kunden.csv");
        let content: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        std::fs::write(&file, &content).expect("write");
        let mut client = Client::connect(&path).await.expect("connect");
        let tenant = TenantId::new("d001").expect("id");
        let report = client.upload(&tenant, &file).await.expect("upload");
        assert_eq!(report.bytes, size);
        assert_eq!(report.import_id, 7);
        server.await.expect("server");
    }

    #[tokio::test]
    async fn upload_refused_at_begin_sends_no_chunks() {
        let (_dir, path, server) = fake_daemon(|mut conn| async move {
            let begin = read_request(&mut conn).await.expect("begin");
            answer(
                &mut conn,
                begin.id,
                Response::Error(ErrorReply {
                    kind: ErrorKind::Invalid,
                    message: "too big".into(),
                }),
            )
            .await;
            let next = read_request(&mut conn).await.expect("ping");
            assert_eq!(next.request, Request::Ping);
            answer(&mut conn, next.id, Response::Pong).await;
        })
        .await;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("x.csv");
        std::fs::write(&file, b"a;b\n1;2\n").expect("write");
        let mut client = Client::connect(&path).await.expect("connect");
        let tenant = TenantId::new("d001").expect("id");
        match client.upload(&tenant, &file).await {
            Err(ClientError::Daemon(e)) => assert_eq!(e.message, "too big"),
            other => panic!("expected a daemon error, got {other:?}"),
        }
        client.ping().await.expect("connection still usable");
        server.await.expect("server");
    }

    #[tokio::test]
    async fn missing_upload_file_is_a_file_error() {
        let (_dir, path, _server) = fake_daemon(|_conn| async move {}).await;
        let mut client = Client::connect(&path).await.expect("connect");
        let tenant = TenantId::new("d001").expect("id");
        let err = client
            .upload(&tenant, "/nonexistent/kunden.csv")
            .await
            .expect_err("missing");
        assert!(matches!(err, ClientError::File { .. }), "{err:?}");
        assert!(!err.is_connection());
        assert!(
            err.to_string()
                .starts_with("cannot read /nonexistent/kunden.csv: "),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_unanswered_request_times_out_and_a_late_answer_is_skipped() {
        let (_dir, path, server) = fake_daemon(|mut conn| async move {
            let first = read_request(&mut conn).await.expect("first");
            let second = read_request(&mut conn).await.expect("second");
            answer(&mut conn, first.id, Response::Pong).await;
            answer(&mut conn, second.id, Response::Tenants(vec![])).await;
        })
        .await;
        let mut client = Client::connect(&path).await.expect("connect");
        client.set_request_timeout(Duration::from_millis(100));
        let err = client.ping().await.expect_err("timeout");
        assert!(
            matches!(
                err,
                ClientError::Timeout {
                    request: "ping",
                    ..
                }
            ),
            "{err:?}"
        );
        client.set_request_timeout(Duration::from_secs(5));
        assert!(client.tenants().await.expect("tenants").is_empty());
        server.await.expect("server");
    }

    #[test]
    fn a_call_outcomes_file_at_the_limit_fits_one_frame() {
        let file_name = "x".repeat(255);
        let limit = call_outcomes_limit(&file_name);
        assert!(limit <= MAX_CALL_OUTCOMES_BYTES);
        let envelope = |len: u64| RequestEnvelope {
            id: u64::MAX,
            request: Request::CallOutcomes {
                file_name: file_name.clone(),
                data: vec![0xff; len as usize],
            },
        };
        let bytes = encode_frame(&envelope(limit)).expect("the limit fits");
        assert!(bytes.len() <= MAX_FRAME_BYTES, "{}", bytes.len());
        // The limit is the frame's, not an arbitrary smaller number.
        assert!(MAX_FRAME_BYTES - bytes.len() < 64, "{}", bytes.len());
    }

    #[tokio::test]
    async fn reading_call_outcomes_checks_size_and_kind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("anrufe-märz.csv");
        std::fs::write(&file, "task;outcome\n1;reached\n").expect("write");
        let (name, data) = read_call_outcomes(&file).await.expect("read");
        assert_eq!(name, "anrufe-märz.csv");
        assert_eq!(data, b"task;outcome\n1;reached\n");

        let limit = call_outcomes_limit("anrufe-märz.csv");
        std::fs::File::create(&file)
            .and_then(|f| f.set_len(limit + 1))
            .expect("sparse file");
        match read_call_outcomes(&file).await {
            Err(ClientError::TooLarge { size, limit: l, .. }) => {
                assert_eq!((size, l), (limit + 1, limit))
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        std::fs::File::create(&file)
            .and_then(|f| f.set_len(limit))
            .expect("sparse file");
        let (_, data) = read_call_outcomes(&file).await.expect("at the limit");
        assert_eq!(data.len() as u64, limit);

        let err = read_call_outcomes(dir.path())
            .await
            .expect_err("a directory");
        assert!(err.to_string().ends_with("not a regular file"), "{err}");
        assert!(!err.is_connection());
    }

    #[tokio::test]
    async fn dispatch_requests_round_trip() {
        use touchpoint_common::outbox::MessageStatus;
        use touchpoint_common::protocol::{ActionResult, MessageAction, OutcomeReport};
        let (_dir, path, server) = fake_daemon(|mut conn| async move {
            let r = read_request(&mut conn).await.expect("action");
            assert_eq!(
                r.request,
                Request::MessageAction {
                    tenant: TenantId::new("d001").expect("id"),
                    ids: vec![4, 5],
                    action: MessageAction::Cancel,
                }
            );
            let results = vec![
                ActionResult {
                    id: 4,
                    outcome: Ok(MessageStatus::Cancelled),
                },
                ActionResult {
                    id: 5,
                    outcome: Err("already sent".into()),
                },
            ];
            answer(&mut conn, r.id, Response::Actions(results)).await;
            let r = read_request(&mut conn).await.expect("outcomes");
            match r.request {
                Request::CallOutcomes { file_name, data } => {
                    assert_eq!(file_name, "calls.csv");
                    assert_eq!(data, b"1;reached\n");
                }
                other => panic!("expected CallOutcomes, got {other:?}"),
            }
            let report = OutcomeReport {
                applied: 1,
                ..Default::default()
            };
            answer(&mut conn, r.id, Response::Outcomes(report)).await;
            let r = read_request(&mut conn).await.expect("costs");
            assert_eq!(
                r.request,
                Request::Costs {
                    tenant: None,
                    month: Some(202612)
                }
            );
            // The wrong answer kind must not pass as costs.
            answer(&mut conn, r.id, Response::Paused(vec![])).await;
        })
        .await;
        let mut client = Client::connect(&path).await.expect("connect");
        let tenant = TenantId::new("d001").expect("id");
        let results = client
            .message_action(&tenant, &[4, 5], MessageAction::Cancel)
            .await
            .expect("actions");
        assert_eq!(results.len(), 2);
        assert_eq!(results[1].outcome, Err("already sent".into()));
        let report = client
            .call_outcomes("calls.csv".into(), b"1;reached\n".to_vec())
            .await
            .expect("outcomes");
        assert_eq!(report.applied, 1);
        let err = client
            .costs(None, Some(202612))
            .await
            .expect_err("mismatch");
        assert_eq!(err.to_string(), "the daemon answered costs with Paused");
        // Oversized data is refused without a request: the daemon sees none.
        let too_big = vec![0; call_outcomes_limit("calls.csv") as usize + 1];
        let err = client
            .call_outcomes("calls.csv".into(), too_big)
            .await
            .expect_err("too large");
        assert!(matches!(err, ClientError::TooLarge { .. }), "{err:?}");
        server.await.expect("server");
    }

    fn detail(id: u64, status: touchpoint_common::protocol::ProposalStatus) -> ProposalDetail {
        ProposalDetail {
            proposal: Proposal {
                id,
                template: "winter_check".into(),
                text: "[email]\n".into(),
                base_version: 3,
                rollback_to: None,
                author: "anna".into(),
                author_uid: 1000,
                comment: "Räderwechsel".into(),
                created_at: Timestamp(0),
                status,
            },
            diff: String::new(),
            current_version: 3,
        }
    }

    #[tokio::test]
    async fn brand_material_requests_round_trip() {
        use touchpoint_common::protocol::ProposalStatus;
        let (_dir, path, server) = fake_daemon(|mut conn| async move {
            let r = read_request(&mut conn).await.expect("propose");
            assert_eq!(
                r.request,
                Request::Propose {
                    template: "winter_check".into(),
                    text: "[email]\nsubject = \"Grüße\"\n".into(),
                    comment: "neu".into(),
                }
            );
            let answer_detail = Response::Proposal(Box::new(detail(7, ProposalStatus::Pending)));
            answer(&mut conn, r.id, answer_detail).await;
            let r = read_request(&mut conn).await.expect("rollback");
            assert_eq!(
                r.request,
                Request::ProposeRollback {
                    template: "winter_check".into(),
                    version: 2,
                    comment: "zurück".into(),
                }
            );
            answer(
                &mut conn,
                r.id,
                Response::Error(ErrorReply {
                    kind: ErrorKind::NotFound,
                    message: "winter_check has no version 2".into(),
                }),
            )
            .await;
            let r = read_request(&mut conn).await.expect("proposals");
            assert_eq!(r.request, Request::Proposals { all: true });
            answer(&mut conn, r.id, Response::Proposals(vec![])).await;
            let r = read_request(&mut conn).await.expect("preview");
            assert_eq!(
                r.request,
                Request::Preview {
                    id: 7,
                    tenant: TenantId::new("d001").expect("id"),
                    customer: Some("K-1".into()),
                }
            );
            // A preview must not pass for anything else.
            answer(&mut conn, r.id, Response::Templates(vec![])).await;
            let r = read_request(&mut conn).await.expect("approve");
            assert_eq!(
                r.request,
                Request::Approve {
                    id: 7,
                    comment: String::new()
                }
            );
            let approved = ProposalStatus::Approved {
                by: "bernd".into(),
                at: Timestamp(0),
                comment: String::new(),
                version: 4,
            };
            answer(
                &mut conn,
                r.id,
                Response::Proposal(Box::new(detail(7, approved))),
            )
            .await;
            let r = read_request(&mut conn).await.expect("reject");
            assert_eq!(
                r.request,
                Request::Reject {
                    id: 8,
                    comment: "nein".into()
                }
            );
            answer(
                &mut conn,
                r.id,
                Response::Error(ErrorReply {
                    kind: ErrorKind::Forbidden,
                    message: "only a reviewer decides".into(),
                }),
            )
            .await;
            let r = read_request(&mut conn).await.expect("templates");
            assert_eq!(
                r.request,
                Request::Templates {
                    name: Some("birthday".into())
                }
            );
            answer(&mut conn, r.id, Response::Templates(vec![])).await;
        })
        .await;
        let mut client = Client::connect(&path).await.expect("connect");
        let d = client
            .propose(
                "winter_check",
                "[email]\nsubject = \"Grüße\"\n".into(),
                "neu",
            )
            .await
            .expect("proposed");
        assert_eq!(d.proposal.id, 7);
        let err = client
            .propose_rollback("winter_check", 2, "zurück")
            .await
            .expect_err("no such version");
        assert_eq!(err.to_string(), "not found: winter_check has no version 2");
        assert!(!err.is_connection());
        assert!(client.proposals(true).await.expect("proposals").is_empty());
        let tenant = TenantId::new("d001").expect("id");
        let err = client
            .preview(7, &tenant, Some("K-1"))
            .await
            .expect_err("mismatch");
        assert_eq!(
            err.to_string(),
            "the daemon answered preview with Templates"
        );
        let d = client.approve(7, "").await.expect("approved");
        assert!(matches!(
            d.proposal.status,
            ProposalStatus::Approved { version: 4, .. }
        ));
        let err = client.reject(8, "nein").await.expect_err("forbidden");
        assert_eq!(err.to_string(), "forbidden: only a reviewer decides");
        assert!(client
            .templates(Some("birthday"))
            .await
            .expect("templates")
            .is_empty());
        server.await.expect("server");
    }

    #[tokio::test]
    async fn reading_a_template_checks_size_and_encoding() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("winter_check.toml");
        std::fs::write(&file, "\u{feff}subject = \"Grüße aus München\"\n").expect("write");
        assert_eq!(
            read_template(&file).await.expect("read"),
            "subject = \"Grüße aus München\"\n"
        );

        std::fs::write(&file, b"a = 1\nb = \"Gr\xfc\xdfe\"\n").expect("write latin-1");
        let err = read_template(&file).await.expect_err("latin-1");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot read {}: line 2 is not UTF-8 text; save the file as UTF-8",
                file.display()
            )
        );
        assert!(!err.is_connection());

        std::fs::File::create(&file)
            .and_then(|f| f.set_len(MAX_TEMPLATE_BYTES + 1))
            .expect("sparse file");
        let err = read_template(&file).await.expect_err("too large");
        assert!(
            matches!(err, ClientError::TemplateTooLarge { .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "{} is 1048577 bytes; a template may have at most 1048576 bytes (1.0 MiB) — is it the right file?",
                file.display()
            )
        );
        std::fs::File::create(&file)
            .and_then(|f| f.set_len(MAX_TEMPLATE_BYTES))
            .expect("sparse file");
        assert_eq!(
            read_template(&file).await.expect("at the limit").len() as u64,
            MAX_TEMPLATE_BYTES
        );

        let err = read_template(dir.path()).await.expect_err("a directory");
        assert!(err.to_string().ends_with("not a regular file"), "{err}");
    }

    #[test]
    fn socket_resolution_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            resolve_socket_from(Some("/x/env.sock".into()), Some(dir.path().into())),
            PathBuf::from("/x/env.sock")
        );
        assert_eq!(
            resolve_socket_from(Some("".into()), None),
            PathBuf::from(SYSTEM_SOCKET)
        );
        // The runtime dir counts only when the daemon's socket is there.
        assert_eq!(
            resolve_socket_from(None, Some(dir.path().into())),
            PathBuf::from(SYSTEM_SOCKET)
        );
        let user_socket = dir.path().join("touchpoint").join("touchpoint.sock");
        std::fs::create_dir_all(user_socket.parent().expect("parent")).expect("mkdir");
        std::fs::write(&user_socket, b"").expect("touch");
        assert_eq!(
            resolve_socket_from(None, Some(dir.path().into())),
            user_socket
        );
        assert_eq!(
            resolve_socket(Some(Path::new("/flag.sock"))),
            PathBuf::from("/flag.sock")
        );
    }
}

/// A connection that only receives the daemon's change notifications.
#[derive(Debug)]
pub struct Subscription {
    client: Client,
    id: u64,
}

impl Subscription {
    /// Waits for the next change; an error means the connection is gone.
    pub async fn next(&mut self) -> Result<Changes, ClientError> {
        loop {
            let envelope = self.client.read_envelope().await?;
            match envelope.response {
                Response::Changed(c) if envelope.id == self.id => return Ok(c),
                Response::Pong => {}
                Response::Error(e) => return Err(ClientError::Daemon(e)),
                other => return Err(unexpected("subscribe", &other)),
            }
        }
    }

    /// Asks for a `Pong`, which [`Subscription::next`] passes over: a
    /// heartbeat that finds a daemon gone silent.
    pub async fn ping(&mut self) -> Result<(), ClientError> {
        let timeout = self.client.request_timeout;
        self.client.send(Request::Ping, timeout).await.map(|_| ())
    }
}

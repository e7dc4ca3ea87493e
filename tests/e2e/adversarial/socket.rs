//! The control socket against peers without access and clients that send
//! more than they should (M11).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use touchpoint::client::{Client, ClientError};
use touchpoint_common::config::AccessRule;
use touchpoint_common::protocol::{AuditEntry, AuditOutcome, ErrorKind, Request, Response, Role};
use touchpoint_tests::{output_within, tid, Options, TestDaemon};

use crate::common::me;

/// A uid no access rule matches.
const STRANGER: u32 = 4242;

fn admin_only() -> Vec<AccessRule> {
    vec![AccessRule {
        user: None,
        uid: Some(me()),
        group: None,
        gid: None,
        role: Role::Admin,
        tenants: vec!["*".into()],
    }]
}

fn peer(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tp-peer"));
    cmd.args(args).uid(STRANGER).gid(STRANGER);
    cmd
}

fn audit_on_disk(d: &mut TestDaemon) -> Vec<AuditEntry> {
    d.stop_in_place();
    let stores = touchpointd::store::Stores::open(&d.state_dir, &Default::default())
        .expect("open the stores");
    stores
        .central()
        .audit_log(None, 100_000)
        .expect("audit log")
}

#[tokio::test]
async fn a_user_without_access_cannot_take_the_connection_slots() {
    let d = TestDaemon::start_with(Options {
        access: admin_only(),
        max_connections: 4,
        // Silent connections that held a slot would hold it for the test.
        handshake_timeout_ms: 120_000,
        ..Options::default()
    });
    d.open_to_user(STRANGER);
    let socket = d.socket.display().to_string();
    let mut holder = peer(&["hold", &socket, "12"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tp-peer");
    let mut lines = BufReader::new(holder.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("read");
    assert_eq!(first, "connected 12");

    // Twelve silent connections of a stranger later, an admin still gets in.
    let mut c = Client::connect(&d.socket)
        .await
        .expect("the admin connects while a stranger holds 12 connections");
    c.status().await.expect("status");

    // And every one of the stranger's connections was turned away at once
    // (told why, or closed when too many were being refused at a time),
    // none left waiting for a hello.
    let answers: Vec<String> = lines.map_while(Result::ok).collect();
    let _ = holder.wait();
    assert_eq!(
        answers.last().map(String::as_str),
        Some("done"),
        "{answers:?}"
    );
    let per_connection = &answers[..answers.len() - 1];
    assert_eq!(per_connection.len(), 12, "{answers:?}");
    assert!(
        per_connection
            .iter()
            .all(|a| a == "rejected" || a == "closed"),
        "{answers:?}"
    );
    assert!(
        per_connection.iter().any(|a| a == "rejected"),
        "{answers:?}"
    );
}

#[tokio::test]
async fn refused_connections_are_audited_as_one_counted_line_per_user() {
    let mut d = TestDaemon::start_with(Options {
        access: admin_only(),
        ..Options::default()
    });
    d.open_to_user(STRANGER);
    let socket = d.socket.display().to_string();
    // 300 hellos, each with a 100 KB client name.
    let out = output_within(
        &mut peer(&["flood", &socket, "300", "100000"]),
        std::time::Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    let rejected: u64 = said
        .trim()
        .strip_prefix("rejected ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert!(rejected > 0, "{said}");

    let log = audit_on_disk(&mut d);
    let refusals: Vec<&AuditEntry> = log
        .iter()
        .filter(|e| e.uid == STRANGER && e.action == "connect")
        .collect();
    // One line per minute of refusals: the flood takes seconds, but a
    // loaded machine may let it cross into a second window.
    assert!(
        (1..=2).contains(&refusals.len()),
        "{} audit lines for one user's refused connections",
        refusals.len()
    );
    let counted: u64 = refusals
        .iter()
        .map(|e| {
            e.detail
                .split(' ')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no count in {:?}", e.detail))
        })
        .sum();
    assert_eq!(counted, 300, "{refusals:?}");
    for e in &refusals {
        assert!(matches!(e.outcome, AuditOutcome::Refused(_)), "{e:?}");
        assert!(!e.detail.contains("xxxx"), "the client's name was stored");
        assert!(e.detail.len() < 200, "{:?}", e.detail);
    }
}

/// The error a request with an oversized or hostile text gets.
async fn invalid(c: &mut Client, r: Request) -> String {
    match c.request(r).await {
        Err(ClientError::Daemon(e)) | Ok(Response::Error(e)) => {
            assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
            e.message
        }
        other => panic!("accepted: {:.300}", format!("{other:?}")),
    }
}

#[tokio::test]
async fn texts_from_the_wire_are_bounded_and_free_of_control_characters() {
    let mut d = TestDaemon::start();
    let mut c = d.client().await;
    let huge = "x".repeat(1_000_000);
    let m = invalid(
        &mut c,
        Request::ProposeRollback {
            template: "service_due".into(),
            version: 1,
            comment: huge.clone(),
        },
    )
    .await;
    assert_eq!(m, "comment: 1000000 characters; at most 2000");
    let m = invalid(
        &mut c,
        Request::Propose {
            template: "service_due".into(),
            text: "[x]\n".into(),
            comment: "harmless\u{1b}]0;owned\u{7}".into(),
        },
    )
    .await;
    assert_eq!(
        m,
        "comment: contains a control character (U+001B) at character 9"
    );
    let m = invalid(
        &mut c,
        Request::UploadBegin {
            tenant: tid("d001"),
            file_name: "kunden.csv\nimport #99 committed".into(),
            size: 1,
        },
    )
    .await;
    assert!(
        m.starts_with("file name: contains a control character"),
        "{m}"
    );
    let m = invalid(
        &mut c,
        Request::Audit {
            tenant: None,
            limit: 10,
            text: huge,
        },
    )
    .await;
    assert!(m.starts_with("text: 1000000 characters"), "{m}");
    let m = invalid(
        &mut c,
        Request::MessageAction {
            tenant: tid("d001"),
            ids: (0..20_000).collect(),
            action: touchpoint_common::protocol::MessageAction::Cancel,
        },
    )
    .await;
    assert_eq!(m, "ids: 20000 messages; at most 10000");
    // The connection is still good, and nothing of it reached the audit log.
    c.ping().await.expect("ping");
    drop(c);
    let log = audit_on_disk(&mut d);
    let text = format!("{log:?}");
    assert!(
        !text.contains("xxxxxxxx") && !text.contains("owned"),
        "{text}"
    );
}

#[tokio::test]
async fn a_user_with_access_cannot_take_every_slot_either() {
    let mut rules = admin_only();
    rules.push(AccessRule {
        user: None,
        uid: Some(STRANGER),
        group: None,
        gid: None,
        role: Role::ReadOnly,
        tenants: vec!["d001".into()],
    });
    let d = TestDaemon::start_with(Options {
        access: rules,
        max_connections: 4,
        handshake_timeout_ms: 120_000,
        ..Options::default()
    });
    d.open_to_user(STRANGER);
    let socket = d.socket.display().to_string();
    let mut holder = peer(&["hold", &socket, "6"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tp-peer");
    let mut lines = BufReader::new(holder.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next().expect("a line").expect("read"), "connected 6");
    // The read-only user holds what is not kept for admins; the admin gets in.
    let mut c = Client::connect(&d.socket)
        .await
        .expect("the admin connects while a read-only user holds what it can");
    c.status().await.expect("status");
    let answers: Vec<String> = lines.map_while(Result::ok).collect();
    let _ = holder.wait();
    let refused = answers.iter().filter(|a| *a == "rejected").count();
    assert!(refused >= 5, "{answers:?}");
}

#[tokio::test]
async fn refused_requests_of_a_user_with_access_are_audited_as_counted_lines() {
    let mut d = TestDaemon::start_with(Options {
        access: vec![AccessRule {
            user: None,
            uid: Some(me()),
            group: None,
            gid: None,
            role: Role::ReadOnly,
            tenants: vec!["d001".into()],
        }],
        ..Options::default()
    });
    let mut c = d.client().await;
    for _ in 0..2_000 {
        let r = c
            .request(Request::Tenant {
                tenant: tid("d002"),
            })
            .await;
        assert!(
            matches!(r, Err(ClientError::Daemon(ref e)) if e.kind == ErrorKind::Forbidden),
            "{r:?}"
        );
    }
    drop(c);
    let log = audit_on_disk(&mut d);
    let lines: Vec<&AuditEntry> = log.iter().filter(|e| e.action == "tenant").collect();
    assert!(
        (2..=4).contains(&lines.len()),
        "{} lines: {lines:#?}",
        lines.len()
    );
    // The first at once, with no count; then the rest of its minute, counted.
    let counted: u64 = lines
        .iter()
        .map(|e| {
            if e.detail.is_empty() {
                1
            } else {
                e.detail
                    .split(' ')
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or_else(|| panic!("no count in {:?}", e.detail))
            }
        })
        .sum();
    assert_eq!(counted, 2_000, "{lines:#?}");
    for e in lines {
        assert_eq!(e.tenant.as_ref(), Some(&tid("d002")));
        assert!(matches!(e.outcome, AuditOutcome::Refused(_)), "{e:?}");
    }
}

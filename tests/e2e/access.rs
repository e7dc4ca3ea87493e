//! Access control (M11): the peer's Unix identity, mapped by the `[[access]]`
//! rules, decides the role and the tenant scope; every refusal is audited.

use touchpoint::client::{Client, ClientError};
use touchpoint_common::config::AccessRule;
use touchpoint_common::protocol::{AuditEntry, AuditOutcome, ErrorKind, Role, Scope};
use touchpoint_tests::{tid, Options, TestDaemon};

use crate::common::{customers_csv, me, my_name};

fn rule(uid: Option<u32>, role: Role, tenants: &[&str]) -> AccessRule {
    AccessRule {
        user: None,
        uid,
        group: None,
        gid: None,
        role,
        tenants: tenants.iter().map(|t| t.to_string()).collect(),
    }
}

fn daemon_with(rules: Vec<AccessRule>) -> TestDaemon {
    TestDaemon::start_with(Options {
        access: rules,
        ..Options::default()
    })
}

/// The error a refused request gets.
fn forbidden<T: std::fmt::Debug>(r: Result<T, ClientError>) -> String {
    match r {
        Err(ClientError::Daemon(e)) => {
            assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
            e.message
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
}

/// The audit log as it is on disk, read after the daemon stopped.
fn audit_on_disk(d: &mut TestDaemon) -> Vec<AuditEntry> {
    d.stop_in_place();
    let stores = touchpointd::store::Stores::open(&d.state_dir, &Default::default())
        .expect("open the stores");
    stores.central().audit_log(None, 1000).expect("audit log")
}

fn refusals<'a>(log: &'a [AuditEntry], action: &str) -> Vec<&'a AuditEntry> {
    log.iter()
        .filter(|e| e.action == action && matches!(e.outcome, AuditOutcome::Refused(_)))
        .collect()
}

#[tokio::test]
async fn an_operator_scoped_to_one_tenant_sees_and_touches_only_that_tenant() {
    let mut d = daemon_with(vec![rule(Some(me()), Role::Operator, &["d001"])]);
    let file = customers_csv(d.dir.path());
    let (d001, d002) = (tid("d001"), tid("d002"));
    let mut c = d.client().await;
    assert_eq!(c.identity().role, Role::Operator);
    assert_eq!(c.identity().scope, Scope::Tenants(vec![d001.clone()]));
    assert_eq!(c.identity().user, my_name());

    let ids: Vec<String> = c
        .tenants()
        .await
        .expect("tenants")
        .iter()
        .map(|t| t.id.to_string())
        .collect();
    assert_eq!(ids, ["d001"]);
    assert_eq!(c.status().await.expect("status").tenants, 1);

    let outside = "tenant d002 is outside your scope";
    assert_eq!(forbidden(c.tenant(&d002).await), outside);
    assert_eq!(forbidden(c.imports(&d002, 10).await), outside);
    assert_eq!(forbidden(c.merges(&d002, true).await), outside);
    assert_eq!(forbidden(c.undo_merge(&d002, 1).await), outside);
    assert_eq!(forbidden(c.audit(Some(&d002), 10, "").await), outside);
    assert_eq!(forbidden(c.upload(&d002, &file).await), outside);

    // In scope, the same operator may import.
    let report = c.upload(&d001, &file).await.expect("upload to d001");
    assert!(report.is_committed(), "{:?}", report.status);
    assert!(c.tenant(&d001).await.expect("d001").summary.stats.customers > 0);

    // The operator's own view of the audit log shows nothing about d002.
    let visible = c.audit(None, 1000, "").await.expect("audit");
    assert!(!visible.is_empty());
    for e in &visible {
        assert!(
            e.tenant.is_none() || e.tenant.as_ref() == Some(&d001),
            "{e:?}"
        );
    }
    drop(c);

    // The admin's view (on disk) has every refusal, with who and what.
    let log = audit_on_disk(&mut d);
    for action in [
        "tenant",
        "imports",
        "merges",
        "undo-merge",
        "audit",
        "import",
    ] {
        let refused = refusals(&log, action);
        assert_eq!(refused.len(), 1, "one refused {action}: {log:#?}");
        let e = refused[0];
        assert_eq!(e.uid, me());
        assert_eq!(e.user, my_name());
        assert_eq!(e.role, Some(Role::Operator));
        assert_eq!(e.tenant.as_ref(), Some(&d002));
        assert_eq!(e.outcome, AuditOutcome::Refused(outside.into()));
    }
    // The import of d001 kept its good rows and rejected two: done in part.
    let imports: Vec<&AuditEntry> = log
        .iter()
        .filter(|e| e.action == "import" && !matches!(e.outcome, AuditOutcome::Refused(_)))
        .collect();
    assert_eq!(imports.len(), 1, "{log:#?}");
    assert_eq!(imports[0].tenant.as_ref(), Some(&d001));
    assert_eq!(
        imports[0].outcome,
        AuditOutcome::Partial("2 rows rejected".into())
    );
}

#[tokio::test]
async fn a_read_only_user_may_look_but_not_import_or_undo() {
    let mut d = daemon_with(vec![rule(Some(me()), Role::ReadOnly, &["*"])]);
    let file = customers_csv(d.dir.path());
    let d001 = tid("d001");
    let mut c = d.client().await;
    assert_eq!(
        (c.identity().role, &c.identity().scope),
        (Role::ReadOnly, &Scope::All)
    );
    assert_eq!(c.tenants().await.expect("tenants").len(), 3);
    c.tenant(&d001).await.expect("reading is allowed");

    assert_eq!(
        forbidden(c.upload(&d001, &file).await),
        "role read-only may not import"
    );
    assert_eq!(
        forbidden(c.undo_merge(&d001, 1).await),
        "role read-only may not undo-merge"
    );
    let detail = c.tenant(&d001).await.expect("tenant");
    assert_eq!(detail.summary.stats.customers, 0);
    assert!(detail.imports.is_empty());
    c.ping()
        .await
        .expect("the connection stays usable after refusals");
    drop(c);

    let log = audit_on_disk(&mut d);
    let import = refusals(&log, "import");
    assert_eq!(import.len(), 1, "{log:#?}");
    assert_eq!(
        import[0].outcome,
        AuditOutcome::Refused("role read-only may not import".into())
    );
    assert_eq!(
        (import[0].uid, import[0].role),
        (me(), Some(Role::ReadOnly))
    );
    assert_eq!(import[0].tenant.as_ref(), Some(&d001));
    let undo = refusals(&log, "undo-merge");
    assert_eq!(undo.len(), 1, "{log:#?}");
    assert_eq!(
        undo[0].outcome,
        AuditOutcome::Refused("role read-only may not undo-merge".into())
    );
}

#[tokio::test]
async fn rules_that_match_nobody_reject_at_hello_naming_the_uid() {
    let uid = me();
    let mut d = daemon_with(vec![rule(
        Some(uid.wrapping_add(4242)),
        Role::Admin,
        &["*"],
    )]);
    let reason = match Client::connect(&d.socket).await {
        Err(ClientError::Rejected(r)) => r,
        other => panic!("expected a rejection, got {other:?}"),
    };
    assert_eq!(
        reason,
        format!(
            "{} (uid {uid}) has no access: no [[access]] rule of the daemon configuration matches",
            my_name()
        )
    );
    let log = audit_on_disk(&mut d);
    // The first refusal at once, the rest of the minute counted on one
    // line. The harness's readiness probe and this client are two; a
    // loaded machine may make the probe try again, and a connection
    // admitted after the accept loop stopped opens a window of its own:
    // every refused connection is counted, however the lines fall.
    let connect = refusals(&log, "connect");
    let counted: u64 = connect
        .iter()
        .map(|e| {
            if e.detail.starts_with("1 connection refused at ") {
                1
            } else {
                e.detail
                    .split_once(" more connections refused from ")
                    .and_then(|(n, _)| n.parse().ok())
                    .unwrap_or_else(|| panic!("a refusal line: {e:#?}"))
            }
        })
        .sum();
    assert!(counted >= 2, "{log:#?}");
    assert!(
        connect[connect.len() - 1]
            .detail
            .starts_with("1 connection refused at "),
        "the oldest line is the first refusal, written at once: {log:#?}"
    );
    for e in connect {
        assert_eq!(e.uid, uid);
        assert_eq!(e.role, None);
        assert_eq!(e.outcome, AuditOutcome::Refused(reason.clone()));
    }
}

#[tokio::test]
async fn the_first_matching_rule_wins_by_user_name_or_group() {
    let gid = nix::unistd::Gid::current().as_raw();
    let by_name = AccessRule {
        user: Some(my_name()),
        ..rule(None, Role::Operator, &["d002", "d003"])
    };
    let by_group = AccessRule {
        gid: Some(gid),
        ..rule(None, Role::Admin, &["*"])
    };
    let d = daemon_with(vec![
        rule(Some(me().wrapping_add(1)), Role::Admin, &["*"]),
        by_name,
        by_group,
    ]);
    let mut c = d.client().await;
    assert_eq!(c.identity().role, Role::Operator);
    assert_eq!(
        c.identity().scope,
        Scope::Tenants(vec![tid("d002"), tid("d003")])
    );
    let ids: Vec<String> = c
        .tenants()
        .await
        .expect("tenants")
        .iter()
        .map(|t| t.id.to_string())
        .collect();
    assert_eq!(ids, ["d002", "d003"]);
    drop(c);
    drop(d);

    let d = daemon_with(vec![AccessRule {
        gid: Some(gid),
        ..rule(None, Role::Reviewer, &["d001"])
    }]);
    let mut c = d.client().await;
    assert_eq!(c.identity().role, Role::Reviewer);
    let file = customers_csv(d.dir.path());
    assert_eq!(
        forbidden(c.upload(&tid("d001"), &file).await),
        "role reviewer may not import"
    );
}

#[tokio::test]
async fn planning_writes_need_an_operator_a_dry_run_does_not_and_scope_bounds_both() {
    use touchpoint::client::PlanArgs;
    let mut d = daemon_with(vec![rule(Some(me()), Role::ReadOnly, &["d001"])]);
    let mut c = d.client().await;
    let args = |tenant: Option<&str>, dry_run: bool| PlanArgs {
        tenant: tenant.map(tid),
        dry_run,
        ..PlanArgs::default()
    };
    assert_eq!(
        forbidden(c.plan(args(Some("d001"), false)).await),
        "role read-only may not plan"
    );
    assert_eq!(
        forbidden(c.plan(args(Some("d002"), true)).await),
        "tenant d002 is outside your scope"
    );
    let dry = c.plan(args(Some("d001"), true)).await.expect("dry run");
    assert_eq!(dry.reports.len(), 1);
    // Without a tenant: every tenant in scope, and only those.
    let all = c.plan(args(None, true)).await.expect("dry run");
    let tenants: Vec<&str> = all.reports.iter().map(|r| r.tenant.as_str()).collect();
    assert_eq!(tenants, ["d001"]);
    drop(c);
    let log = audit_on_disk(&mut d);
    assert_eq!(refusals(&log, "plan").len(), 1);
    assert_eq!(refusals(&log, "plan-dry-run").len(), 1);
}

/// What the audit log says of the last `action`.
async fn last_audited(c: &mut Client, action: &str) -> AuditEntry {
    c.audit(None, 100, "")
        .await
        .expect("audit")
        .into_iter()
        .find(|e| e.action == action)
        .unwrap_or_else(|| panic!("no {action} in the audit log"))
}

#[tokio::test]
async fn an_action_done_only_in_part_or_not_at_all_is_audited_as_such() {
    let files = tempfile::tempdir().expect("tempdir");
    let d = TestDaemon::start_with(Options {
        dealers: Vec::new(),
        dealer_files: vec![crate::today::dealer_file(files.path())],
        brand: Some(crate::today::brand_due_at_once()),
        dispatch: Some(format!(
            "[dispatch]\ntick_ms = 50\nbatch_at = \"23:59\"\nspool_dir = {:?}\nletters_dir = {:?}\ncalls_dir = {:?}\n",
            files.path().join("mail").display().to_string(),
            files.path().join("letters").display().to_string(),
            files.path().join("calls").display().to_string(),
        )),
        ..Options::default()
    });
    let mut c = d.client().await;
    let t = tid(crate::today::TENANT);
    // Paused, so that what is planned stays to be held.
    loop {
        let scope = touchpoint_common::protocol::PauseScope {
            tenant: Some(t.clone()),
            service: None,
        };
        match c.pause(scope).await {
            Ok(_) => break,
            Err(ClientError::Daemon(e)) if e.kind == ErrorKind::Busy => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            Err(e) => panic!("pause: {e}"),
        }
    }
    crate::today::plan_customers(&mut c, files.path()).await;
    let hold = touchpoint_common::protocol::MessageAction::Hold;

    let r = c.message_action(&t, &[1, 999], hold).await.expect("hold");
    assert_eq!(r.iter().filter(|r| r.outcome.is_ok()).count(), 1, "{r:?}");
    let e = last_audited(&mut c, "hold").await;
    assert!(
        matches!(&e.outcome, AuditOutcome::Partial(why) if why.contains("#999")),
        "{e:?}"
    );
    assert!(e.detail.starts_with("1 of 2 messages: 1"), "{e:?}");
    assert_eq!(e.tenant.as_ref(), Some(&t));

    let r = c.message_action(&t, &[998], hold).await.expect("hold");
    assert!(r[0].outcome.is_err(), "{r:?}");
    let e = last_audited(&mut c, "hold").await;
    assert!(
        matches!(&e.outcome, AuditOutcome::Failed(why) if why.contains("#998")),
        "{e:?}"
    );

    let r = c.message_action(&t, &[2], hold).await.expect("hold");
    assert!(r[0].outcome.is_ok(), "{r:?}");
    let e = last_audited(&mut c, "hold").await;
    assert_eq!(e.outcome, AuditOutcome::Ok, "{e:?}");
}

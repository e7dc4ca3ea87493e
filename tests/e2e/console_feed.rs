//! What the console reads from the daemon: queue pages filtered and counted
//! in the daemon, a message's content, the overview, and the change feed a
//! subscribed connection gets, for an admin and for an operator scoped to
//! one tenant.

use std::time::Duration;

use touchpoint::client::{ClientError, PlanArgs, Subscription};
use touchpoint_common::config::AccessRule;
use touchpoint_common::outbox::MessageStatus;
use touchpoint_common::protocol::{Changes, ErrorKind, MessageAction, PauseScope, Role, Topic};
use touchpoint_common::queue::QueueFilter;
use touchpoint_common::Date;
use touchpoint_tests::{eventually, fixture, tid, touchpoint, touchpoint_as, Options, TestDaemon};

use crate::common::{customers_csv, me};

const REVIEWER_UID: u32 = 4242;

fn rule(uid: u32, role: Role) -> AccessRule {
    AccessRule {
        user: None,
        uid: Some(uid),
        group: None,
        gid: None,
        role,
        tenants: vec!["*".into()],
    }
}

fn plan_fixture(name: &str) -> std::path::PathBuf {
    fixture(&format!("plan/{name}"))
}

fn f(text: &str) -> QueueFilter {
    QueueFilter::parse(text).expect("filter")
}

async fn import_and_plan(d: &TestDaemon, day: Date) -> u64 {
    let mut c = d.client().await;
    for file in ["kunden.csv", "besuche.csv"] {
        let r = c
            .upload(&tid("p001"), &plan_fixture(file))
            .await
            .expect(file);
        assert!(r.errors.is_empty(), "{file}: {:#?}", r.errors);
    }
    let r = c
        .plan(PlanArgs {
            tenant: Some(tid("p001")),
            day: Some(day),
            dry_run: false,
            policies: None,
            show: 0,
        })
        .await
        .expect("plan");
    r.reports.iter().map(|r| r.planned_count).sum()
}

/// The next `Changed` that satisfies `want`; every one before it is passed
/// to `seen` too. Fails after a minute (the daemon never said so).
async fn changes_until(
    sub: &mut Subscription,
    mut seen: impl FnMut(&Changes),
    want: impl Fn(&Changes) -> bool,
) -> Changes {
    let wait = async {
        loop {
            let c = sub.next().await.expect("change feed");
            seen(&c);
            if want(&c) {
                return c;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("the change never came")
}

fn about(c: &Changes, topic: Topic, tenant: &str) -> bool {
    c.topics.contains(&topic) && c.tenants.iter().any(|t| t.as_str() == tenant)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_pages_and_filters_agree_with_content_and_overview() {
    let d = TestDaemon::start_with(Options {
        dealer_files: vec![plan_fixture("p001.toml")],
        ..Options::default()
    });
    let today = Date::today();
    // The fixture's day, as the dispatch tests plan it: many messages.
    let planned = import_and_plan(&d, Date::from_ymd(2026, 11, 16).expect("day")).await;
    assert!(planned >= 5, "the fixture plans messages: {planned}");
    let mut c = d.client().await;

    let all = c.queue(&f(""), 0, 3).await.expect("queue");
    assert_eq!(all.total, planned);
    assert_eq!(all.counts, vec![(MessageStatus::Planned, planned)]);
    assert_eq!(all.rows.len(), 3);
    let ids: Vec<u64> = all.rows.iter().map(|r| r.id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert!(all.rows.iter().all(|r| r.tenant.as_str() == "p001"));
    assert!(
        all.rows.iter().any(|r| !r.name.is_empty()),
        "names from the customer records"
    );
    let next = c.queue(&f(""), 3, 3).await.expect("page 2");
    assert!(
        next.rows[0].id < ids[2],
        "the next page goes on where the first ended"
    );
    let last = c.queue(&f(""), planned - 2, 10).await.expect("last page");
    assert_eq!(last.rows.len(), 2);

    // Channels partition the queue; a channel's rows are all of it.
    let mut by_channel = 0;
    for ch in ["email", "post", "phone"] {
        let p = c
            .queue(&f(&format!("channel:{ch}")), 0, 1000)
            .await
            .expect(ch);
        assert_eq!(p.rows.len() as u64, p.total);
        assert!(p.rows.iter().all(|r| r.channel.as_str() == ch));
        by_channel += p.total;
    }
    assert_eq!(by_channel, planned);

    // Free text: a customer number finds that customer's messages only.
    let who = all.rows[0].recipient.clone();
    let p = c
        .queue(&f(&who.to_lowercase()), 0, 1000)
        .await
        .expect("text");
    assert!(p.total >= 1);
    assert!(
        p.rows.iter().all(|r| r.recipient.contains(&who)),
        "{:?}",
        p.rows
    );
    assert!(p.rows.iter().any(|r| r.id == all.rows[0].id));
    let none = c.queue(&f("status:held"), 0, 10).await.expect("held");
    assert_eq!((none.total, none.counts.clone()), (0, all.counts.clone()));

    // The overview counts today's messages as the queue does.
    let o = c.overview(Some(today)).await.expect("overview");
    assert_eq!(o.today, today);
    let p001 = o
        .tenants
        .iter()
        .find(|t| t.tenant.as_str() == "p001")
        .expect("p001 in the overview");
    let q = c
        .queue(&f(&format!("tenant:p001 date:{today}")), 0, 1)
        .await
        .expect("today");
    assert_eq!(p001.counts.planned, q.total);
    assert_eq!(
        o.total.planned, q.total,
        "the other tenants have no messages"
    );
    assert!(!o.dispatch_enabled && o.transport.is_empty());
    assert_eq!(o.throughput, vec![0; 60]);
    assert_ne!(o.policy.version, 0);
    assert_eq!(o.policy.failed_at, None);
    // The overview's money is the ledger's rows as `costs` gives them.
    let month = touchpoint_common::outbox::month_of(o.today);
    let costs = c
        .costs(Some(&tid("p001")), Some(month))
        .await
        .expect("costs");
    assert_eq!(o.budgets, costs);
    let sum = touchpoint_common::budget::tenant_month(&costs, &tid("p001"), month);
    assert!(sum.budget.is_some_and(|b| b > 0), "{sum:?}");
    assert!(sum.reserved > 0, "{sum:?}");

    // A message's content, rendered with the version in force.
    let email = c.queue(&f("channel:email"), 0, 1).await.expect("email");
    let m = &email.rows[0];
    let content = c.content(&tid("p001"), m.id).await.expect("content");
    assert_eq!(content.template, m.template);
    assert!(!content.subject.is_empty() && !content.text.is_empty());
    assert!(content.html.contains('<'), "{}", content.html);
    assert_eq!(content.version, 1);
    assert_eq!(
        content.note,
        "not rendered yet: rendered with v1, in force now"
    );
    if let Some(post) = c
        .queue(&f("channel:post"), 0, 1)
        .await
        .expect("post")
        .rows
        .first()
    {
        let letter = c.content(&tid("p001"), post.id).await.expect("letter");
        assert!(letter.subject.is_empty() && !letter.text.is_empty());
    }
    match c.content(&tid("p001"), 999_999).await {
        Err(ClientError::Daemon(e)) => assert_eq!(e.kind, ErrorKind::NotFound, "{e}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_hears_of_imports_holds_and_approvals() {
    // Dispatch on, spooling; everything of p001 paused so that nothing
    // moves but what the test does. A reviewer of their own (uid 4242)
    // where the tests run as root.
    let root = nix::unistd::Uid::effective().is_root();
    let mut access = vec![rule(me(), Role::Admin)];
    if root {
        access.push(rule(REVIEWER_UID, Role::Reviewer));
    }
    let d = TestDaemon::start_with(Options {
        dealer_files: vec![plan_fixture("p001.toml")],
        dispatch: Some("[dispatch]\ntick_ms = 50\nbatch_at = \"23:59\"\n".into()),
        access,
        // `c` waits while the reviewer's command runs as a process (and,
        // the first time, while the harness builds the binaries).
        idle_timeout_secs: 600,
        ..Options::default()
    });
    let mut c = d.client().await;
    c.pause(PauseScope {
        tenant: Some(tid("p001")),
        service: None,
    })
    .await
    .expect("pause");
    let mut sub = d.client().await.subscribe().await.expect("subscribe");
    sub.ping().await.expect("ping on the feed");

    let r = c
        .upload(&tid("p001"), &plan_fixture("kunden.csv"))
        .await
        .expect("import");
    assert!(r.errors.is_empty());
    changes_until(&mut sub, |_| {}, |c| about(c, Topic::Tenants, "p001")).await;

    import_and_plan(&d, Date::today()).await;
    changes_until(&mut sub, |_| {}, |c| about(c, Topic::Outbox, "p001")).await;
    let row = c.queue(&f(""), 0, 1).await.expect("queue").rows[0].clone();
    let held = c
        .message_action(&tid("p001"), &[row.id], MessageAction::Hold)
        .await
        .expect("hold");
    assert_eq!(held[0].outcome, Ok(MessageStatus::Held));
    let change = changes_until(&mut sub, |_| {}, |c| about(c, Topic::Outbox, "p001")).await;
    assert!(change.topics.contains(&Topic::Costs), "{change:?}");
    let q = c.queue(&f("status:held"), 0, 5).await.expect("held");
    assert_eq!(
        q.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![row.id]
    );

    // A proposal and its decision (the author may withdraw their own).
    let template = std::fs::read_to_string(d.policy_dir.join("templates/service_due.toml"))
        .expect("template file");
    let prop = c
        .propose(
            "service_due",
            format!("{template}\n# reworded\n"),
            "feed test",
        )
        .await
        .expect("propose");
    changes_until(&mut sub, |_| {}, |c| c.topics.contains(&Topic::Approvals)).await;
    assert_eq!(
        c.overview(None).await.expect("overview").pending_approvals,
        1
    );
    if root {
        let home = d.open_to_user(REVIEWER_UID);
        let id = prop.proposal.id.to_string();
        let out = touchpoint_as(
            REVIEWER_UID,
            &d.socket,
            &home,
            &["approve", &id, "--comment", "ok"],
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        changes_until(&mut sub, |_| {}, |c| c.topics.contains(&Topic::Approvals)).await;
        assert_eq!(
            c.overview(None).await.expect("overview").pending_approvals,
            0
        );
    } else {
        eprintln!("approval skipped: four eyes needs a second Unix identity (run as root)");
    }

    // The overview of a paused tenant says so, and dispatch runs.
    let o = c.overview(None).await.expect("overview");
    assert!(
        o.dispatch_enabled && o.transport.starts_with("spool"),
        "{o:?}"
    );
    assert!(
        o.alerts
            .iter()
            .any(|a| a.text.contains("Tenant p001 paused by")),
        "{:?}",
        o.alerts
    );
    assert_eq!(o.throughput.len(), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_scoped_to_one_tenant_sees_nothing_of_the_others() {
    let d = TestDaemon::start_with(Options {
        dealer_files: vec![plan_fixture("p001.toml")],
        access: vec![AccessRule {
            user: None,
            uid: Some(me()),
            group: None,
            gid: None,
            role: Role::Operator,
            tenants: vec!["p001".into()],
        }],
        ..Options::default()
    });
    let mut sub = d.client().await.subscribe().await.expect("subscribe");
    import_and_plan(&d, Date::today()).await;
    let mut c = d.client().await;

    // Another tenant changes behind the operator's back: a file dropped
    // into d001's inbox is imported by the daemon.
    let file = customers_csv(d.dir.path());
    let dropped = d.inbox("d001").join("kunden.csv");
    std::fs::copy(&file, &dropped).expect("drop into the inbox");
    assert!(
        eventually(Duration::from_secs(60), || !dropped.exists()),
        "the inbox file was never taken"
    );
    // Then something of its own; every change up to it is in scope.
    let row = c.queue(&f(""), 0, 1).await.expect("queue").rows[0].clone();
    match c
        .message_action(&tid("p001"), &[row.id], MessageAction::Hold)
        .await
    {
        // Dispatch is off: the action is refused, but an audit entry about
        // p001 is written, which is the change to wait for.
        Err(ClientError::Daemon(e)) => assert_eq!(e.kind, ErrorKind::Busy, "{e}"),
        other => panic!("{other:?}"),
    }
    let mut all = Vec::new();
    changes_until(
        &mut sub,
        |c| all.push(c.clone()),
        |c| about(c, Topic::Audit, "p001"),
    )
    .await;
    for c in &all {
        assert!(
            c.tenants.iter().all(|t| t.as_str() == "p001"),
            "a change of another tenant reached the operator: {c:?}"
        );
    }

    let page = c.queue(&f(""), 0, 1000).await.expect("queue");
    assert!(page.total > 0);
    assert!(page.rows.iter().all(|r| r.tenant.as_str() == "p001"));
    match c.queue(&f("tenant:d001"), 0, 10).await {
        Err(ClientError::Daemon(e)) => {
            assert_eq!(e.kind, ErrorKind::Forbidden);
            assert_eq!(e.message, "tenant d001 is outside your scope");
        }
        other => panic!("{other:?}"),
    }
    match c.content(&tid("d001"), 1).await {
        Err(ClientError::Daemon(e)) => assert_eq!(e.kind, ErrorKind::Forbidden, "{e}"),
        other => panic!("{other:?}"),
    }
    let o = c.overview(None).await.expect("overview");
    let tenants: Vec<&str> = o.tenants.iter().map(|t| t.tenant.as_str()).collect();
    assert_eq!(tenants, ["p001"]);
    assert!(o.budgets.iter().all(|b| b.tenant.as_str() == "p001"));
    assert!(o
        .alerts
        .iter()
        .all(|a| a.tenant.as_ref().is_none_or(|t| t.as_str() == "p001")));
    let listed = c.tenants().await.expect("tenants");
    assert_eq!(listed.len(), 1);
    assert!(listed[0].opt_ins.email > 0, "{:?}", listed[0].opt_ins);
}

/// The feed subscribes before it says it has: a change made the moment a
/// client hears `Subscribed` reaches it, round after round.
#[tokio::test]
async fn a_change_made_right_after_subscribing_is_heard() {
    let d = TestDaemon::start();
    let mut c = d.client().await;
    for round in 0..20u64 {
        let mut sub = d.client().await.subscribe().await.expect("subscribe");
        // A refused undo is audited: the audit log changes.
        let _ = c.undo_merge(&tid("d001"), 9_000 + round).await;
        let changed = tokio::time::timeout(Duration::from_secs(30), sub.next())
            .await
            .unwrap_or_else(|_| panic!("round {round}: the change was not heard"))
            .expect("feed");
        assert!(changed.topics.contains(&Topic::Audit), "{changed:?}");
    }
}

/// `touchpoint queue` through the real binaries: free text finds a
/// customer's name (umlauts folded) and email domain; a mistyped key, an
/// unknown service or tenant is an error naming the closest; `--sort cost`
/// puts the dearest first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_queue_finds_names_and_domains_and_names_the_closest_key() {
    let d = TestDaemon::start_with(Options {
        dealer_files: vec![plan_fixture("p001.toml")],
        ..Options::default()
    });
    let planned = import_and_plan(&d, Date::from_ymd(2026, 11, 16).expect("day")).await;
    assert!(planned > 0);
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let page = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["queue", "--json", "--limit", "1000"];
        all.extend_from_slice(args);
        let out = touchpoint(&d.socket, &all);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    let rows = |v: &serde_json::Value| -> Vec<(String, String)> {
        v["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| {
                (
                    r["recipient"].as_str().unwrap_or("").to_string(),
                    r["name"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let everything = rows(&page(&[]));
    assert_eq!(everything.len() as u64, planned);
    let of = |no: &str| everything.iter().filter(|(r, _)| r == no).count();
    // K-1 Jürgen Weiß (example.de), K-3 Bäckerei Günther GmbH
    // (baeckerei-guenther.de), both with messages on the fixture's day.
    assert!(of("K-1") > 0 && of("K-3") > 0, "{everything:?}");
    for needle in ["Weiß", "weiss", "JÜRGEN"] {
        let found = rows(&page(&[needle]));
        assert_eq!(found.len(), of("K-1"), "{needle}: {found:?}");
        assert!(found.iter().all(|(r, _)| r == "K-1"), "{needle}: {found:?}");
    }
    let found = rows(&page(&["baeckerei-guenther.de"]));
    assert_eq!(found.len(), of("K-3"), "{found:?}");

    let costs: Vec<i64> = page(&["--sort", "cost"])["rows"]
        .as_array()
        .expect("rows")
        .iter()
        // Money in JSON is a decimal string with its currency (docs/json.md).
        .map(|r| {
            let amount = r["cost"]["amount"].as_str().expect("cost");
            (amount.parse::<f64>().expect("decimal") * 100.0).round() as i64
        })
        .collect();
    assert!(costs.windows(2).all(|w| w[0] >= w[1]), "{costs:?}");
    assert!(
        costs.first() > costs.last(),
        "letters and emails: {costs:?}"
    );

    let out = touchpoint(&d.socket, &["queue", "stauts:held"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("`stauts:held`: no filter key `stauts` (did you mean `status`?)"),
        "{}",
        text(&out)
    );
    let out = touchpoint(&d.socket, &["queue", "service:inspection"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("`service:inspection`: no service `inspection` (one of "),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("hu_reminder"), "{}", text(&out));
    let out = touchpoint(&d.socket, &["queue", "tenant:p01"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no tenant `p01` (did you mean `p001`?)"),
        "{}",
        text(&out)
    );
}

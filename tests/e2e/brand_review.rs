//! The brand file under review (`brand.toml [review] brand`): with the
//! review on, an edit of `brand.toml` on disk changes nothing in force; it
//! becomes one pending proposal (author `brand.toml`), and a reviewer other
//! than this process (uid 4242, the real `touchpoint` binary, when the
//! tests run as root) approving it puts it in force.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use touchpoint::client::Client;
use touchpoint_common::config::AccessRule;
use touchpoint_common::protocol::{Proposal, ProposalStatus, Role, TemplateHistory};
use touchpoint_tests::{touchpoint, Options, TestDaemon};

/// The reviewer who approves.
const REVIEWER_UID: u32 = 4242;
/// How long any one thing may take before the test gives up on it.
const WAIT: Duration = Duration::from_secs(15);
/// The brand's planning schedule (shown by `status`) and the campaign's
/// last day, before and after the change.
const SCHEDULE: &str = "0 30 5 * * Mon-Sat";
const NEW_SCHEDULE: &str = "0 45 5 * * Mon-Sat";
const TO: &str = "to = 2027-01-31";
const NEW_TO: &str = "to = 2027-02-28";

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

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(out: Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The `touchpoint` binary run as uid/gid 4242, its console log in `home`.
fn as_reviewer(socket: &Path, home: &Path, args: &[&str]) -> Output {
    touchpoint_tests::touchpoint_as(REVIEWER_UID, socket, home, args)
}

fn brand_history(socket: &Path) -> TemplateHistory {
    let out = ok(touchpoint(socket, &["templates", "brand", "--json"]));
    let mut list: Vec<TemplateHistory> =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"));
    assert_eq!(list.len(), 1, "{list:#?}");
    list.remove(0)
}

async fn schedule(c: &mut Client) -> String {
    c.status().await.expect("status").planning.schedule
}

async fn pending(c: &mut Client) -> Vec<Proposal> {
    c.proposals(false).await.expect("proposals")
}

/// Polls `cond` until it holds.
async fn until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !cond().await {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_brand_file_is_a_proposal_in_force_once_another_reviewer_approves_it() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!(
            "skipped: four eyes needs a second Unix identity (uid {REVIEWER_UID}); the tests run as uid {}, not root",
            nix::unistd::Uid::current()
        );
        return;
    }
    let me = nix::unistd::Uid::current().as_raw();
    let d = TestDaemon::start_with(Options {
        access: vec![rule(me, Role::Operator), rule(REVIEWER_UID, Role::Reviewer)],
        // `c` waits while the reviewer's commands run as separate processes.
        idle_timeout_secs: 600,
        ..Options::default()
    });
    let home = d.open_to_user(REVIEWER_UID);
    let mut c = d.client().await;
    let path = d.policy_dir.join("brand.toml");

    // The test's brand.toml (review off) is version 1; turning the review
    // on in the file is in force as read, as version 2.
    let v1 = std::fs::read_to_string(&path).expect("brand.toml");
    assert_eq!(brand_history(&d.socket).in_force, 1);
    assert!(v1.contains("\nbrand = false\n") && v1.contains(TO) && v1.contains(SCHEDULE));
    let on = v1.replacen("\nbrand = false\n", "\nbrand = true\n", 1);
    std::fs::write(&path, &on).expect("write brand.toml");
    until("review on recorded as v2", || async {
        brand_history(&d.socket).in_force == 2
    })
    .await;
    assert_eq!(schedule(&mut c).await, SCHEDULE);

    // An edit of the file: proposed, not in force.
    let edited = on
        .replacen(TO, NEW_TO, 1)
        .replacen(SCHEDULE, NEW_SCHEDULE, 1);
    std::fs::write(&path, &edited).expect("write brand.toml");
    until("the edit proposed", || async {
        !pending(&mut d.client().await).await.is_empty()
    })
    .await;
    let list = pending(&mut c).await;
    assert_eq!(list.len(), 1, "{list:#?}");
    let p = &list[0];
    assert_eq!(p.template, "brand");
    assert_eq!(p.author, "brand.toml");
    assert_eq!(p.base_version, 2);
    assert_eq!(p.status, ProposalStatus::Pending);
    assert_eq!(schedule(&mut c).await, SCHEDULE, "the edit is in force");
    assert_eq!(brand_history(&d.socket).in_force, 2);
    let diff = ok(touchpoint(&d.socket, &["approval", &p.id.to_string()]));
    assert!(diff.contains(&format!("+{NEW_TO}")), "{diff}");

    // Another reviewer approves it: in force.
    ok(as_reviewer(
        &d.socket,
        &home,
        &[
            "approve",
            &p.id.to_string(),
            "--comment",
            "Kampagne verlängert",
        ],
    ));
    until("the approved brand in force", || async {
        schedule(&mut d.client().await).await == NEW_SCHEDULE
    })
    .await;
    let h = brand_history(&d.socket);
    assert_eq!(h.in_force, 3, "{h:#?}");
    assert!(pending(&mut c).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_brand_file_under_review_is_a_policy_error_with_its_line() {
    let d = TestDaemon::start();
    let mut c = d.client().await;
    let path = d.policy_dir.join("brand.toml");
    let v1 = std::fs::read_to_string(&path).expect("brand.toml");
    let before = c.status().await.expect("status").policy.version;
    let on = v1.replacen("\nbrand = false\n", "\nbrand = true\n", 1);
    std::fs::write(&path, &on).expect("write brand.toml");
    // The brand's history records v2 before the reload swaps the policy
    // in force: wait for both, or the version read below may be v1's.
    until("review on recorded as v2 and in force", || async {
        brand_history(&d.socket).in_force == 2
            && d.client()
                .await
                .status()
                .await
                .expect("status")
                .policy
                .version
                != before
    })
    .await;
    let version = c.status().await.expect("status").policy.version;

    // An edit that is no TOML: the approved brand stays in force, and the
    // file's error is shown where every policy error is.
    let line = on
        .lines()
        .position(|l| l.starts_with("[planning]"))
        .expect("[planning]")
        + 1;
    let broken = on.replacen("[planning]", "[planning", 1);
    std::fs::write(&path, &broken).expect("write brand.toml");
    until("the broken file reported", || async {
        !d.client()
            .await
            .status()
            .await
            .expect("status")
            .policy
            .errors
            .is_empty()
    })
    .await;
    let st = c.status().await.expect("status");
    assert_eq!(st.policy.version, version, "the policy in force changed");
    assert!(st.policy.failed_at.is_some());
    let want = format!("{}:{line}", path.display());
    assert!(
        st.policy.errors.iter().any(|e| e.starts_with(&want)),
        "no error at {want}: {:?}",
        st.policy.errors
    );
    let alerts = c.overview(None).await.expect("overview").alerts;
    assert!(
        alerts
            .iter()
            .any(|a| a.text.contains("policy files invalid") && a.text.contains(&want)),
        "{alerts:?}"
    );
    // `touchpointd --check-config` says the same.
    let out = std::process::Command::new(touchpoint_tests::bin("touchpointd"))
        .arg("--config")
        .arg(&d.config_file)
        .arg("--check-config")
        .output()
        .expect("touchpointd --check-config");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(&want), "{}", text(&out.stderr));

    // Put right, the error is gone.
    std::fs::write(&path, &on).expect("write brand.toml");
    until("the error cleared", || async {
        d.client()
            .await
            .status()
            .await
            .expect("status")
            .policy
            .errors
            .is_empty()
    })
    .await;
}

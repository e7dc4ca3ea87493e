//! Retention (brand `[retention]`) end to end: `touchpoint retention run`
//! is an administrator's, audited with what it did, and `touchpoint
//! status` shows the months per kind and the last run. What a run prunes
//! is tested in the daemon (`daemon/src/tests.rs`, `retention`), with the
//! store's files scanned.

use touchpoint_common::config::AccessRule;
use touchpoint_common::protocol::Role;
use touchpoint_tests::{repo_root, touchpoint, touchpoint_ok, Options, TestDaemon};

use crate::common::me;

fn brand_with_retention() -> String {
    let brand = std::fs::read_to_string(repo_root().join("policies/brand.toml")).expect("brand");
    format!("{brand}\n[retention]\nmessages_months = 24\nresponses_months = 36\n")
}

#[test]
fn retention_run_is_an_administrators_audited_and_shown_in_status() {
    let mut d = TestDaemon::start_with(Options {
        brand: Some(brand_with_retention()),
        ..Options::default()
    });
    let status = touchpoint_ok(&d.socket, &["status"]);
    assert!(
        status.contains("retention    messages 24 months, responses 36 months, audit kept"),
        "{status}"
    );
    assert!(status.contains("last prune   never"), "{status}");

    let out = touchpoint_ok(&d.socket, &["retention", "run"]);
    assert!(
        out.contains("0 messages pseudonymised") && out.contains("0 tenant stores rewritten"),
        "{out}"
    );
    let status = touchpoint_ok(&d.socket, &["status"]);
    let user = touchpoint_ok(&d.socket, &["status", "--json"]);
    let user: serde_json::Value = serde_json::from_str(&user).expect("status json");
    let by = user["identity"]["user"].as_str().expect("user").to_string();
    assert_eq!(user["retention"]["last"]["by"], by.as_str());
    assert!(
        status.contains(&format!("by {by}: 0 messages pseudonymised")),
        "{status}"
    );
    let audit = touchpoint_ok(&d.socket, &["audit", "--grep", "retention-run"]);
    assert!(audit.contains("0 audit lines removed"), "{audit}");

    // An operator may not; neither may an administrator of some tenants
    // only (a run reaches every tenant).
    let rule = |role, tenants: &[&str]| AccessRule {
        user: None,
        uid: Some(me()),
        group: None,
        gid: None,
        role,
        tenants: tenants.iter().map(|t| t.to_string()).collect(),
    };
    d.restart_with_access(&[rule(Role::Operator, &["*"])]);
    let out = touchpoint(&d.socket, &["retention", "run"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("may not"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.restart_with_access(&[rule(Role::Admin, &["d001"])]);
    let out = touchpoint(&d.socket, &["retention", "run"]);
    assert_ne!(out.status.code(), Some(0));
}

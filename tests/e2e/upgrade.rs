//! Upgrades: a state directory written by schema version 1
//! (`fixtures/state-v1`: a dealer's customers, vehicles, visits, a
//! revocation, a committed plan and the brand's material and audit) is
//! opened by this build, and every record read back is what was written
//! (`fixtures/state-v1.json`); then the real daemon serves it.
//!
//! A change of a stored record's shape makes this fail until it comes with
//! its migration (`daemon/src/store/schema.rs`) and a bumped
//! `RECORD_SCHEMA_VERSION`. The fixture stays as it is (it is what the
//! installations out there hold); what the migration is to make of it goes
//! into the JSON, reviewed like code.
//!
//! `TP_WRITE_STATE_FIXTURE=1 cargo test -p touchpoint-tests --test e2e
//! upgrade::write -- --ignored` writes both anew: only for a new schema
//! version's fixture, beside the old ones.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use touchpoint::client::PlanArgs;
use touchpoint_common::config::StoresConfig;
use touchpoint_common::queue::QueueFilter;
use touchpoint_common::Date;
use touchpoint_tests::{
    copy_tree, dump_central, dump_tenant, fixture, tid, touchpoint_ok, Options, TestDaemon,
};
use touchpointd::store::Stores;

const TENANT: &str = "p001";

fn state_fixture() -> PathBuf {
    fixture("state-v1")
}

fn expected_file() -> PathBuf {
    fixture("state-v1.json")
}

fn options(state_dir: &Path) -> Options {
    Options {
        dealer_files: vec![fixture("plan/p001.toml")],
        state_dir: Some(state_dir.to_path_buf()),
        ..Options::default()
    }
}

/// Every record of the fixture's kinds, as this build reads them.
fn dump(state_dir: &Path) -> Value {
    let stores = Stores::open(state_dir, &StoresConfig::default()).expect("the stores open");
    let t = stores
        .tenant(&tid(TENANT))
        .expect("the tenant's store opens");
    let out = json!({
        "central": dump_central(stores.central()),
        "tenant": dump_tenant(&t),
    });
    drop(t);
    stores.close_all().expect("close");
    out
}

fn count(v: &Value, part: &str, kind: &str) -> usize {
    v[part][kind].as_array().map_or(0, Vec::len)
}

#[test]
fn a_state_written_by_schema_version_1_reads_back_whole_and_is_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    copy_tree(&state_fixture(), &state);
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(expected_file()).expect("the fixture's JSON"),
    )
    .expect("JSON");
    for (part, kind) in [
        ("tenant", "customers"),
        ("tenant", "vehicles"),
        ("tenant", "visits"),
        ("tenant", "messages"),
        ("central", "audit"),
        ("central", "templates"),
    ] {
        assert!(count(&expected, part, kind) > 0, "the fixture holds {kind}");
    }

    let got = dump(&state);
    for part in ["central", "tenant"] {
        let (Some(g), Some(e)) = (got[part].as_object(), expected[part].as_object()) else {
            panic!("no {part} in the dump");
        };
        for (kind, want) in e {
            assert_eq!(
                g.get(kind),
                Some(want),
                "{part} {kind} differ from what schema version 1 wrote"
            );
        }
        assert_eq!(g.len(), e.len(), "{part}: kinds dumped and expected");
    }

    // The real daemon starts on it and serves what it holds.
    let d = TestDaemon::start_with(options(&state));
    let customer = expected["tenant"]["customers"][0]["customer_no"]
        .as_str()
        .expect("a customer number")
        .to_string();
    let stdout = touchpoint_ok(&d.socket, &["customer", "--tenant", TENANT, &customer]);
    assert!(
        stdout.starts_with(&format!("customer {customer} of {TENANT}")),
        "{stdout}"
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let page = rt
        .block_on(async { d.client().await.queue(&QueueFilter::default(), 0, 1).await })
        .expect("queue");
    assert_eq!(page.total, count(&expected, "tenant", "messages") as u64);
    d.stop();
}

#[test]
fn a_state_of_a_newer_schema_stops_the_daemon_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = touchpoint_tests::daemon_files(dir.path(), &[(TENANT, "Plan GmbH")]);
    let state = &files.state_dir;
    copy_tree(&state_fixture(), state);
    {
        let db = sled::open(state.join("central")).expect("central database");
        db.insert(b"touchpoint.schema_version", &[200u8])
            .expect("stamp");
        db.flush().expect("flush");
    }
    let out = touchpoint_tests::output_within(
        std::process::Command::new(touchpoint_tests::bin("touchpointd"))
            .arg("--config")
            .arg(&files.config_file),
        std::time::Duration::from_secs(60),
    );
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(
            "written by a newer touchpointd (stored schema version 200; this build reads up to 1)"
        ),
        "{text}"
    );
}

/// Writes `fixtures/state-v1` and its JSON from the plan fixture (see the
/// module's text).
#[test]
#[ignore = "writes the state fixture; only for a new schema version"]
fn write_the_state_fixture() {
    if std::env::var_os("TP_WRITE_STATE_FIXTURE").is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let d = TestDaemon::start_with(options(&state));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut c = d.client().await;
        for f in ["kunden.csv", "besuche.csv", "widerruf.csv"] {
            let r = c
                .upload(&tid(TENANT), &fixture(&format!("plan/{f}")))
                .await
                .expect("import");
            assert!(r.errors.is_empty(), "{f}: {:?}", r.errors);
        }
        let r = c
            .plan(PlanArgs {
                tenant: Some(tid(TENANT)),
                day: Some(Date::from_ymd(2026, 12, 1).expect("date")),
                dry_run: false,
                policies: None,
                show: 0,
            })
            .await
            .expect("plan");
        assert!(r.failed.is_empty(), "{:?}", r.failed);
    });
    d.stop();
    let target = state_fixture();
    let _ = std::fs::remove_dir_all(&target);
    for part in ["central", "tenants"] {
        copy_tree(&state.join(part), &target.join(part));
    }
    // Read from a copy: opening the stores writes to them.
    let copy = dir.path().join("copy");
    copy_tree(&target, &copy);
    let json = dump(&copy);
    std::fs::write(
        expected_file(),
        serde_json::to_string_pretty(&json).expect("json") + "\n",
    )
    .expect("write the JSON");
}

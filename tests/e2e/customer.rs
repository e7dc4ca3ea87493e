//! `touchpoint customer`: one stored customer whole, as the real binary
//! prints it and as `--json` gives it to scripts, with the journey stages
//! the import derived; and the request's tenant scope.

use touchpoint::client::ClientError;
use touchpoint_common::config::AccessRule;
use touchpoint_common::domain::{JourneyStage, Vehicle};
use touchpoint_common::policy::Journey;
use touchpoint_common::protocol::{ErrorKind, Role};
use touchpoint_common::Date;
use touchpoint_tests::{tid, touchpoint, Options, TestDaemon};

use crate::common::{import_fixture, me, MAY};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The vehicle stage the shipped thresholds give today (the boundaries
/// themselves are the planner's unit tests; this checks what is stored and
/// shown is that stage).
fn stage_today(reg: (i32, u32, u32), warranty_end: (i32, u32, u32)) -> &'static str {
    let d = |(y, m, day): (i32, u32, u32)| Date::from_ymd(y, m, day).expect("date");
    let v = Vehicle {
        first_registration: Some(d(reg)),
        warranty_end: Some(d(warranty_end)),
        ..Vehicle::default()
    };
    touchpointd::planner::journey::vehicle_stage(&v, &Journey::default(), Date::today())
        .map_or("no stage", |s| s.as_str())
}

#[test]
fn customer_shows_the_stored_customer_with_merges_vehicles_consents_and_journey() {
    let d = TestDaemon::start();
    let may = import_fixture(MAY).display().to_string();
    let out = touchpoint(&d.socket, &["import", "--tenant", "d001", &may]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // K-10006 (a second car) was merged into K-10001: asking for either
    // shows the survivor with both vehicles.
    let out = touchpoint(&d.socket, &["customer", "--tenant", "d001", "K-10006"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0], "customer K-10001 of d001: Jürgen Weiß",
        "{stdout}"
    );
    assert_eq!(lines[1], "  (K-10006 was merged into K-10001)", "{stdout}");
    let first = format!(
        "  WNWZZZ3CZNB000101  Nordwagen Fjord  {}  registered 2019-03-15, warranty end 2024-03-14, next HU 2026-03-15",
        stage_today((2019, 3, 15), (2024, 3, 14))
    );
    let second = format!(
        "  WNWZZZ3CZNB000106  Nordwagen Skagen  {}  registered 2023-02-01, warranty end 2028-01-31, next HU 2026-02-01",
        stage_today((2023, 2, 1), (2028, 1, 31))
    );
    assert!(lines.contains(&first.as_str()), "{stdout}");
    assert!(lines.contains(&second.as_str()), "{stdout}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("  #") && l.contains("K-10006 merged into K-10001")),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("  email  granted") && l.contains("(K-10001)")),
        "{stdout}"
    );
    assert!(lines.contains(&"messages (0)"), "{stdout}");

    // The journey the import stored, in the JSON as the daemon answers.
    let out = touchpoint(
        &d.socket,
        &["customer", "--tenant", "d001", "K-10001", "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["asked_for"], serde_json::Value::Null);
    assert_eq!(json["vehicles"].as_array().map(Vec::len), Some(2));
    let stage: JourneyStage =
        serde_json::from_value(json["journey"]["stage"].clone()).expect("a journey stage");
    // Last serviced 2024-05-02, vehicles older than a year.
    let months = Date::from_ymd(2024, 5, 2)
        .expect("date")
        .months_until(Date::today());
    let want = match months {
        m if m < 18 => JourneyStage::Active,
        m if m < 36 => JourneyStage::Lapsing,
        _ => JourneyStage::Lapsed,
    };
    assert_eq!(stage, want);
    assert!(
        json["journey"]["transitions"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{json}"
    );

    // An unknown number: the daemon says so, exit 1, the number quoted.
    let out = touchpoint(&d.socket, &["customer", "--tenant", "d001", "K-99999"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("has no customer \"K-99999\""), "{stderr}");
    // A control character never reaches the store (nor a terminal).
    let out = touchpoint(&d.socket, &["customer", "--tenant", "d001", "K-9\u{1b}[2J"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("invalid: customer: contains a control character (U+001B)"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}

#[tokio::test]
async fn customer_of_another_tenant_is_refused() {
    let d = TestDaemon::start_with(Options {
        access: vec![AccessRule {
            user: None,
            uid: Some(me()),
            group: None,
            gid: None,
            role: Role::Operator,
            tenants: vec!["d001".into()],
        }],
        ..Options::default()
    });
    let mut c = d.client().await;
    match c.customer(&tid("d002"), "K-10001".into()).await {
        Err(ClientError::Daemon(e)) => {
            assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
            assert_eq!(e.message, "tenant d002 is outside your scope");
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    // In scope, the same request reaches the store.
    match c.customer(&tid("d001"), "K-10001".into()).await {
        Err(ClientError::Daemon(e)) => assert_eq!(e.kind, ErrorKind::NotFound, "{e}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

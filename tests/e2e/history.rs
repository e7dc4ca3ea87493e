//! The demo's past quarter end to end: a dealer generated with a past
//! quarter (its customers, the send history the previous system left, and
//! its workshop visits, some of them drawn as responses to the quarter's
//! reminders) imported into a real daemon in the demo's order, then: the
//! history's sends are messages `sent` and `control` in the past, the
//! planner does not remind anyone of an occasion the history covered, and
//! the rows results are computed from hold credited responses on both sides
//! of the control group.

use std::collections::BTreeSet;
use std::io::BufWriter;

use touchpoint::client::PlanArgs;
use touchpoint_common::config::StoresConfig;
use touchpoint_common::domain::ImportStatus;
use touchpoint_common::outbox::MessageStatus;
use touchpoint_common::Date;
use touchpoint_datagen::history::QUARTER_DAYS;
use touchpoint_datagen::{
    demo_dealers, tenant_policy_toml, write_customer_export, write_history_export,
    write_visits_export, ExportOptions, ExportStats,
};
use touchpoint_tests::{tid, Options, TestDaemon};

#[tokio::test(flavor = "multi_thread")]
async fn a_generated_past_quarter_is_imported_not_planned_again_and_credited() {
    let files = tempfile::tempdir().expect("tempdir");
    let mut spec = demo_dealers(1).remove(0);
    assert_eq!(spec.id, "d001");
    // Large enough that the control group (a tenth) has responders on any day.
    spec.customers = 6_000;
    let opts = ExportOptions {
        past_quarter: true,
        bad_row_rate: 0.0,
        ..ExportOptions::demo(spec.dialect())
    };
    type Writer = fn(
        &touchpoint_datagen::DealerSpec,
        &ExportOptions,
        BufWriter<std::fs::File>,
    ) -> std::io::Result<ExportStats>;
    let write = |name: String, f: Writer| {
        let path = files.path().join(name);
        let file = BufWriter::new(std::fs::File::create(&path).expect("create"));
        let stats = f(&spec, &opts, file).expect("generate");
        (path, stats)
    };
    let (customers, _) = write(spec.customer_file_name(), write_customer_export);
    let (history, sends) = write(spec.history_file_name(), write_history_export);
    let (visits, _) = write(spec.visits_file_name(), write_visits_export);
    let text = std::fs::read(&history).expect("history");
    let text = String::from_utf8_lossy(&text);
    let controls = text
        .lines()
        .filter(|l| l.contains("Kontrollgruppe"))
        .count() as u64;
    let vins: BTreeSet<String> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split([';', ',', '\t']).nth(1).map(str::to_string))
        .collect();
    assert!(
        sends.rows > 10 && controls > 0,
        "{sends:?}, {controls} control"
    );

    // The demo's dealer file: it takes part in `service_due`.
    let dealer = files.path().join("d001.toml");
    std::fs::write(&dealer, tenant_policy_toml(&spec)).expect("dealer file");
    let d = TestDaemon::start_with(Options {
        dealers: Vec::new(),
        dealer_files: vec![dealer],
        ..Options::default()
    });
    let mut c = d.client().await;
    let t = tid("d001");
    for path in [&customers, &history, &visits] {
        let r = c.upload(&t, path).await.expect("upload");
        assert!(r.is_committed(), "{}: {:?}", path.display(), r.status);
        assert!(r.errors.is_empty(), "{:#?}", r.errors);
    }
    let again = c.upload(&t, &history).await.expect("upload again");
    assert!(matches!(again.status, ImportStatus::AlreadyImported { .. }));

    // Nobody is reminded of an occasion the history covered: the reminded
    // who came are due in a year, the others were reminded already. A
    // committed plan, read back whole from the store below: a dry run
    // lists at most 500 of what it would plan, and on some days more are
    // due.
    let plan = c
        .plan(PlanArgs {
            tenant: Some(t.clone()),
            day: None,
            dry_run: false,
            policies: None,
            show: 0,
        })
        .await
        .expect("plan");
    let report = &plan.reports[0];
    assert!(report.planned_count > 0, "{report:?}");
    assert!(report.already_planned >= 1, "{}", report.already_planned);
    drop(c);

    let mut d = d;
    d.stop_in_place();
    let stores =
        touchpointd::store::Stores::open(&d.state_dir, &StoresConfig::default()).expect("stores");
    let store = stores.tenant(&t).expect("tenant");
    let today = Date::today();
    // What this plan wrote: the history's sends are all before today.
    let planned: Vec<_> = store
        .messages()
        .map(|m| m.expect("message"))
        .filter(|m| m.send_on >= today && m.status != MessageStatus::Control)
        .collect();
    assert!(!planned.is_empty());
    let again: Vec<&str> = planned
        .iter()
        .flat_map(|m| &m.occasions)
        .filter(|o| o.service == "service_due")
        .filter_map(|o| o.vin.as_deref())
        .filter(|v| vins.contains(*v))
        .collect();
    assert!(again.is_empty(), "planned again: {again:?}");
    let rows = store
        .result_rows(today.add_days(-QUARTER_DAYS), today.add_days(-1))
        .expect("rows");
    let control: Vec<_> = rows.iter().filter(|r| r.is_control()).collect();
    let sent: Vec<_> = rows.iter().filter(|r| !r.is_control()).collect();
    assert_eq!(
        (sent.len() as u64, control.len() as u64),
        (sends.rows - controls, controls)
    );
    assert!(sent
        .iter()
        .all(|r| r.service == "service_due" && r.delivered));
    // What the old system paid is on its sends; a control member cost nothing.
    assert!(sent
        .iter()
        .all(|r| r.cost.cents() == 5 || r.cost.cents() == 85));
    let answered = |rs: &[&touchpoint_common::report::ResultRow]| {
        rs.iter().filter(|r| r.response.is_some()).count()
    };
    assert!(
        answered(&sent) > 0 && answered(&control) > 0,
        "sent {}/{}, control {}/{}",
        answered(&sent),
        sent.len(),
        answered(&control),
        control.len()
    );
}

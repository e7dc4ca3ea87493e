//! The overview's day and its money against a real daemon: by default it
//! counts the next day anything goes out (not an empty today), any day may
//! be asked for, and the overview, `costs` and the Tenants view show one
//! set of budget figures (`touchpoint_common::budget`).

use touchpoint::client::{Client, PlanArgs};
use touchpoint::tui::harness::Harness;
use touchpoint_common::budget::tenant_month;
use touchpoint_common::outbox::month_of;
use touchpoint_common::protocol::{DayCounts, PauseScope, QueueFilter, Role};
use touchpoint_common::Date;
use touchpoint_tests::{tid, touchpoint, Options, TestDaemon};

use crate::console::rule;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
use crate::today::{brand_due_at_once, customers_csv, dealer_file, TENANT};

/// A daemon (dispatch off) whose dealer [`TENANT`] takes part in
/// `service_due` (0.20 a month) and in `hu_reminder` (0.10, nothing
/// planned for it),
/// with six customers planned on `day` (today when `None`). With
/// `dispatch`, dispatch runs but is paused before planning: messages are
/// rendered and queued, none is sent, and operators may act on them.
pub(crate) async fn planned(
    day: Option<Date>,
    dispatch: bool,
) -> (TestDaemon, tempfile::TempDir, Client) {
    let files = tempfile::tempdir().expect("tempdir");
    let dealer = dealer_file(files.path());
    // Budgets small enough for six emails to show as a share.
    let mut text = std::fs::read_to_string(&dealer)
        .expect("dealer file")
        .replacen("monthly_budget = 100.00", "monthly_budget = 0.20", 1);
    text.push_str("\n[services.hu_reminder]\nmonthly_budget = 0.10\n");
    std::fs::write(&dealer, text).expect("dealer file");
    let d = TestDaemon::start_with(Options {
        access: vec![rule(Role::Operator)],
        dealer_files: vec![dealer],
        brand: Some(brand_due_at_once()),
        dispatch: dispatch.then(|| "[dispatch]\ntick_ms = 50\nbatch_at = \"23:59\"\n".to_string()),
        ..Options::default()
    });
    let mut c = d.client().await;
    if dispatch {
        c.pause(PauseScope::default()).await.expect("pause");
    }
    let r = c
        .upload(&tid(TENANT), &customers_csv(files.path(), true))
        .await
        .expect("upload");
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    let plan = c
        .plan(PlanArgs {
            tenant: Some(tid(TENANT)),
            day,
            dry_run: false,
            policies: None,
            show: 0,
        })
        .await
        .expect("plan");
    assert_eq!(plan.reports.first().map(|r| r.planned_count), Some(6));
    (d, files, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shows_the_next_day_anything_goes_out_and_any_day_asked() {
    let today = Date::today();
    let (d, _files, mut c) = planned(Some(today.add_days(3)), false).await;

    // Nothing goes out today: the overview opens on the day something does.
    let o = c.overview(None).await.expect("overview");
    assert_eq!(o.today, today);
    let next = o.next_out.expect("something waits");
    assert!(next > today, "{next}");
    assert_eq!(o.day, next);
    let on_next = c
        .queue(
            &QueueFilter::parse(&format!("tenant:{TENANT} date:{next}")).expect("filter"),
            0,
            1,
        )
        .await
        .expect("queue");
    assert!(on_next.total > 0);
    assert_eq!(o.total.planned, on_next.total, "{o:?}");
    let row = o
        .tenants
        .iter()
        .find(|t| t.tenant.as_str() == TENANT)
        .expect("row");
    assert_eq!(row.counts, o.total);
    // The coming days: today first, the day shown among them with its counts.
    assert_eq!(o.upcoming.len(), 7);
    assert_eq!(
        (o.upcoming[0].day, o.upcoming[0].counts),
        (today, DayCounts::default())
    );
    let shown = o
        .upcoming
        .iter()
        .find(|u| u.day == next)
        .expect("next within a week");
    assert_eq!(shown.counts, o.total);

    // Today asked for: nothing, and the next day still named.
    let t = c.overview(Some(today)).await.expect("overview of today");
    assert_eq!(
        (t.day, t.total, t.next_out),
        (today, DayCounts::default(), Some(next))
    );

    // The CLI says the same, by default and for a day asked.
    let out = touchpoint(&d.socket, &["overview"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first = text(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let weekday = next.naive().format("%a").to_string();
    assert!(
        first.starts_with(&format!("{weekday} {next} ("))
            && first.contains("the next day anything goes out"),
        "{first}"
    );
    let out = touchpoint(&d.socket, &["overview", "--day", &today.to_string()]);
    let first = text(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        first.contains(&format!("{today} (today)")) && first.contains("planned 0,"),
        "{first}"
    );
    let out = touchpoint(&d.socket, &["overview", "--day", "monday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("neither a date (YYYY-MM-DD) nor `next`"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_costs_and_tenants_view_show_one_set_of_budget_figures() {
    let (d, _files, mut c) = planned(None, false).await;
    let o = c.overview(None).await.expect("overview");
    let month = month_of(o.today);
    let costs = c.costs(None, Some(month)).await.expect("costs");
    assert_eq!(
        o.budgets, costs,
        "the overview's money is the ledger's rows"
    );
    // The service without messages this month is there with its whole budget.
    let hu = costs
        .iter()
        .find(|r| r.tenant.as_str() == TENANT && r.service == "hu_reminder")
        .expect("hu_reminder row");
    assert_eq!((hu.reserved, hu.booked, hu.remaining()), (0, 0, Some(10)));
    let sum = tenant_month(&costs, &tid(TENANT), month);
    assert_eq!(sum.budget, Some(30));
    assert!(sum.reserved > 0, "{sum:?}");
    let pct = sum.used_percent().expect("a budget");
    assert!(pct > 0, "{sum:?}");

    // The console's overview and Tenants view show that share.
    let mut h = Harness::attach(&d.socket, 160, 48, false)
        .await
        .expect("attach");
    let screen = h.screen();
    let line = |screen: &str, pattern: &str| {
        screen
            .lines()
            .filter(|l| l.contains(TENANT) && l.contains(pattern))
            .count()
    };
    assert_eq!(line(&screen, &format!(" {pct}%")), 1, "{screen}");
    h.press(crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('4'),
    ))
    .await
    .expect("tenants");
    let screen = h.screen();
    assert_eq!(line(&screen, &format!("{pct:>3}%")), 1, "{screen}");

    // `touchpoint overview` and `touchpoint costs` print the same remaining.
    let remaining = sum.remaining().expect("remaining");
    let remaining = format!("{}.{:02}", remaining / 100, remaining % 100);
    let out = touchpoint(&d.socket, &["overview"]);
    let overview = text(&out.stdout);
    assert!(
        overview.lines().any(|l| l.starts_with(TENANT)
            && l.contains(&remaining)
            && l.contains(&format!("{pct}%"))),
        "{overview}"
    );
    let month_text = format!("{}-{:02}", month / 100, month % 100);
    let out = touchpoint(
        &d.socket,
        &["costs", "--tenant", TENANT, "--month", &month_text],
    );
    let costs_text = text(&out.stdout);
    let total = costs_text
        .lines()
        .find(|l| l.starts_with("total"))
        .unwrap_or_else(|| panic!("{costs_text}"));
    assert!(
        total.contains(&month_text) && total.trim_end().ends_with(&remaining),
        "{costs_text}"
    );
}

//! Closing the loop end to end: a dealer's export imported, a plan with a
//! control group, the messages dispatched to the email spool, a workshop
//! export with visits imported over the socket, and then the credits: on
//! the messages and control records as the console reads them, and in the
//! rows results are computed from (read from the stopped daemon's store).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use touchpoint::client::{Client, PlanArgs};
use touchpoint_common::config::StoresConfig;
use touchpoint_common::domain::ResponseTally;
use touchpoint_common::money::Money;
use touchpoint_common::outbox::{month_of, Message, MessageStatus, Step};
use touchpoint_common::queue::QueueFilter;
use touchpoint_common::report::{MonthResponses, ResponseKind};
use touchpoint_common::Date;
use touchpoint_tests::{tid, Options, TestDaemon};

use crate::today::{brand_due_at_once, dealer_file, german, TENANT};

const CUSTOMERS: usize = 16;

/// The brand of `today.rs` (every day usable) with half of `service_due`'s
/// recipients in the control group.
fn brand() -> String {
    let s = brand_due_at_once();
    let section = "[services.service_due]\n";
    assert!(s.contains(section), "brand.toml: no {section}");
    s.replacen(section, &format!("{section}control_percent = 50\n"), 1)
}

/// Sixteen customers with email consent, serviced a year ago less ten
/// days: each one's service reminder goes out today.
fn customers(dir: &std::path::Path) -> std::path::PathBuf {
    let t = Date::today().add_days(10);
    let serviced = Date::from_ymd(t.year() - 1, t.month(), t.day().min(28)).expect("date");
    let mut csv = String::from(
        "Kundennummer;Vorname;Nachname;Straße;PLZ;Ort;E-Mail;FIN;Marke;Modell;Erstzulassung;Letzter Service;km-Stand;Einwilligung E-Mail;Einwilligungsdatum\n",
    );
    for n in 1..=CUSTOMERS {
        csv.push_str(&format!(
            "K-{n};Kim;Kunde{n};Hauptstraße {n};50667;Köln;kunde{n}@example.de;{};Nordwagen;Fjord;15.03.2021;{};12.000;ja;01.02.2024\n",
            vin(n),
            german(serviced)
        ));
    }
    let path = dir.join("kunden.csv");
    std::fs::write(&path, csv).expect("customers");
    path
}

fn vin(n: usize) -> String {
    format!("WNWZZZ3CZNB{n:06}")
}

fn no(m: &Message) -> usize {
    m.recipient
        .strip_prefix("K-")
        .and_then(|n| n.parse().ok())
        .expect("customer number K-n")
}

async fn wait_sent(c: &mut Client, id: u64) -> Message {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = c.message(&tid(TENANT), id).await.expect("message");
        if m.status == MessageStatus::Sent {
            return m;
        }
        assert!(Instant::now() < deadline, "message {id} not sent: {m:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn response_lines(m: &Message) -> Vec<String> {
    m.why
        .iter()
        .filter(|w| w.step == Step::Response)
        .map(|w| w.text.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn visits_after_a_plan_with_a_control_group_are_credited_to_messages_and_control_records() {
    let files = tempfile::tempdir().expect("tempdir");
    let d = TestDaemon::start_with(Options {
        dealers: Vec::new(),
        dealer_files: vec![dealer_file(files.path())],
        brand: Some(brand()),
        dispatch: Some(format!(
            "[dispatch]\ntick_ms = 50\nbatch_at = \"23:59\"\nspool_dir = {:?}\nletters_dir = {:?}\ncalls_dir = {:?}\n",
            files.path().join("mail").display().to_string(),
            files.path().join("letters").display().to_string(),
            files.path().join("calls").display().to_string(),
        )),
        ..Options::default()
    });
    let mut c = d.client().await;
    let t = tid(TENANT);
    let r = c
        .upload(&t, &customers(files.path()))
        .await
        .expect("upload");
    assert!(r.errors.is_empty(), "{:#?}", r.errors);

    let plan = c
        .plan(PlanArgs {
            tenant: Some(t.clone()),
            day: None,
            dry_run: false,
            policies: None,
            show: 500,
        })
        .await
        .expect("plan");
    assert!(plan.failed.is_empty(), "{:?}", plan.failed);
    let planned: Vec<Message> = plan.reports.into_iter().flat_map(|r| r.planned).collect();
    assert_eq!(planned.len(), CUSTOMERS, "one record per customer");
    let (controls, messages): (Vec<Message>, Vec<Message>) = planned
        .into_iter()
        .partition(|m| m.status == MessageStatus::Control);
    // binomial(16, 0.5): a group empty on either side is a 1 in 32768 draw.
    assert!(!controls.is_empty() && !messages.is_empty());
    for m in &controls {
        assert_eq!(m.cost, 0);
        assert!(
            m.why.iter().any(|w| w.to_string()
                == "control group: 50 % of service_due (season ".to_string()
                    + &m.occasions[0].due.year().to_string()
                    + "), to measure what the message adds: no message is sent"),
            "{:#?}",
            m.why
        );
    }

    // Every message goes to the spool; the control records stay as they are.
    let today = Date::today();
    let mut sent = BTreeMap::new();
    for m in &messages {
        sent.insert(no(m), wait_sent(&mut c, m.id).await);
    }
    let page = c
        .queue(
            &QueueFilter::parse(&format!("tenant:{TENANT} status:control")).expect("filter"),
            0,
            100,
        )
        .await
        .expect("queue");
    assert_eq!(page.total, controls.len() as u64);
    for m in &controls {
        assert_eq!(
            c.message(&t, m.id).await.expect("control").status,
            MessageStatus::Control
        );
    }
    let mut spooled: Vec<String> = std::fs::read_dir(files.path().join("mail").join(TENANT))
        .expect("spool")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    spooled.sort();
    let mut expected: Vec<String> = messages
        .iter()
        .map(|m| format!("{:010}.eml", m.id))
        .collect();
    expected.sort();
    assert_eq!(
        spooled, expected,
        "one email per message, none per control record"
    );

    // The workshop export: the first sent customer 19 days later, the first
    // control member 5 days later, the second sent customer after the
    // window (organic), and a customer nothing was planned for (organic).
    let s1 = *sent.keys().next().expect("a sent customer");
    let s2 = sent.keys().nth(1).copied();
    let c1 = no(&controls[0]);
    let mut visits = String::from("FIN;Kundennummer;Auftragsdatum;Auftragsart;Rechnungsbetrag\n");
    visits.push_str(&format!(
        "{};K-{s1};{};Inspektion;412,00\n",
        vin(s1),
        german(today.add_days(19))
    ));
    visits.push_str(&format!(
        "{};K-{c1};{};Inspektion;1.234,56 €\n",
        vin(c1),
        german(today.add_days(5))
    ));
    if let Some(s2) = s2 {
        visits.push_str(&format!(
            "{};K-{s2};{};Inspektion;80,00\n",
            vin(s2),
            german(today.add_days(61))
        ));
    }
    let path = files.path().join("werkstatt.csv");
    std::fs::write(&path, &visits).expect("visits");
    let r = c.upload(&t, &path).await.expect("upload visits");
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    assert_eq!(
        r.credited,
        Some(ResponseTally {
            to_messages: 1,
            to_control: 1,
            organic: u64::from(s2.is_some()),
            ..ResponseTally::default()
        }),
        "the report says how the visits were credited"
    );

    // The overview counts this month's responses where they went.
    let this_month = |d: Date| u64::from(month_of(d) == month_of(today));
    let o = c.overview(None).await.expect("overview");
    assert_eq!(
        o.responses,
        MonthResponses {
            to_messages: this_month(today.add_days(19)),
            to_control: this_month(today.add_days(5)),
            organic: if s2.is_some() {
                this_month(today.add_days(61))
            } else {
                0
            },
        }
    );

    let m1 = c.message(&t, sent[&s1].id).await.expect("s1");
    assert_eq!(
        response_lines(&m1),
        vec![format!(
            "service visit {} (werkstatt.csv:2), 19 days after sending, value 412.00 €",
            today.add_days(19)
        )]
    );
    assert_eq!(m1.status, MessageStatus::Sent);
    let cr = c.message(&t, controls[0].id).await.expect("c1");
    assert_eq!(
        response_lines(&cr),
        vec![format!(
            "service visit {} (werkstatt.csv:3), 5 days after the message would have gone out (control group), value 1234.56 €",
            today.add_days(5)
        )]
    );
    if let Some(s2) = s2 {
        let m2 = c.message(&t, sent[&s2].id).await.expect("s2");
        assert!(response_lines(&m2).is_empty(), "{:#?}", m2.why);
    }

    // The same export again: nothing changes.
    let r = c.upload(&t, &path).await.expect("upload visits again");
    assert!(r.errors.is_empty());
    assert_eq!(c.message(&t, sent[&s1].id).await.expect("s1"), m1);

    // The dealer's response file, through `touchpoint import`: the second
    // sent customer booked an appointment 20 days after the reminder (their
    // visit after the window left the message free), the first accepted an
    // offer no service reminder asked for (organic), and a customer number
    // this dealer does not have is rejected with its line.
    if let Some(s2) = s2 {
        let responses = format!(
            "Kundennummer;Datum;Reaktion;Bemerkung\n\
             K-{s2};{};Termin;Inspektion gebucht\n\
             K-999;{};Termin;\n\
             K-{s1};{};Angebot angenommen;\n",
            german(today.add_days(20)),
            german(today.add_days(20)),
            german(today.add_days(21)),
        );
        let path = files.path().join("antworten.csv");
        std::fs::write(&path, &responses).expect("responses");
        let label = path.display().to_string();
        let socket = d.socket.clone();
        // The console's own connection, not one held idle meanwhile.
        drop(c);
        let out = tokio::task::spawn_blocking(move || {
            touchpoint_tests::touchpoint(&socket, &["import", "--tenant", TENANT, &label])
        })
        .await
        .expect("touchpoint import");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        c = d.client().await;
        let lines: Vec<&str> = stdout.lines().collect();
        assert!(
            lines.contains(&"  rows       3 total, 2 ok, 1 rejected"),
            "{stdout}"
        );
        assert!(
            lines.contains(&"  responses  2 inserted, 0 updated, 0 unchanged"),
            "{stdout}"
        );
        assert!(
            lines.contains(&"  credited   2 responses: 1 credited to messages, 0 to control records, 1 organic"),
            "{stdout}"
        );
        assert!(
            lines.contains(&"antworten.csv:3: customer_no: \"K-999\" is not a customer of this dealer (import the customer first)"),
            "{stdout}"
        );
        let m2 = c.message(&t, sent[&s2].id).await.expect("s2");
        assert_eq!(
            response_lines(&m2),
            vec![format!(
                "appointment {} (antworten.csv:2), 20 days after sending: \"Inspektion gebucht\"",
                today.add_days(20)
            )]
        );
        assert_eq!(
            c.message(&t, sent[&s1].id).await.expect("s1"),
            m1,
            "an accepted offer answers no service reminder"
        );
        // The import history shows the same.
        let history = c.imports(&t, 1).await.expect("imports");
        assert_eq!(
            history[0].credited,
            Some(ResponseTally {
                to_messages: 1,
                to_control: 0,
                organic: 1,
                ..ResponseTally::default()
            })
        );
    }
    // `touchpoint responses`: each of a customer's responses with the
    // message it is credited to, or why it is credited to nothing.
    drop(c);
    let socket = d.socket.clone();
    let customer = format!("K-{s1}");
    let out = tokio::task::spawn_blocking(move || {
        let args = ["responses", "--tenant", TENANT, "--customer", &customer];
        let json = touchpoint_tests::touchpoint(&socket, &[&args[..], &["--json"]].concat());
        (json, touchpoint_tests::touchpoint(&socket, &args))
    })
    .await
    .expect("touchpoint responses");
    let (json, text) = out;
    assert_eq!(json.status.code(), Some(0), "{json:?}");
    let list: touchpoint_common::report::ResponseList =
        serde_json::from_slice(&json.stdout).expect("responses JSON");
    let verdicts: Vec<(String, touchpoint_common::report::ResponseVerdict)> = list
        .lines
        .iter()
        .map(|l| (l.source.clone(), l.verdict.clone()))
        .collect();
    let mut expected = Vec::new();
    if s2.is_some() {
        expected.push((
            "antworten.csv:4".to_string(),
            touchpoint_common::report::ResponseVerdict::Organic {
                why: format!(
                    "offer accepted {}: no message to K-{s1} is for an occasion it answers",
                    today.add_days(21)
                ),
            },
        ));
    }
    expected.push((
        "werkstatt.csv:2".to_string(),
        touchpoint_common::report::ResponseVerdict::Message {
            id: sent[&s1].id,
            sent: today,
        },
    ));
    assert_eq!(verdicts, expected);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains(&format!(
            "            → message #{}, sent {today}\n",
            sent[&s1].id
        )),
        "{text}"
    );

    // The rows results are computed from, from the daemon's own store.
    // Stopped in place: its temporary directory (the state) stays.
    let mut d = d;
    d.stop_in_place();
    let stores =
        touchpointd::store::Stores::open(&d.state_dir, &StoresConfig::default()).expect("stores");
    let store = stores.tenant(&t).expect("tenant");
    let rows = store
        .result_rows(today.add_days(-1), today.add_days(1))
        .expect("rows");
    assert_eq!(rows.len(), CUSTOMERS);
    assert_eq!(
        rows.iter().filter(|r| r.is_control()).count(),
        controls.len()
    );
    let credited: Vec<(bool, ResponseKind, Option<Money>)> = rows
        .iter()
        .filter_map(|r| {
            r.response
                .as_ref()
                .map(|c| (r.is_control(), c.kind, c.value))
        })
        .collect();
    assert_eq!(
        credited.len(),
        2 + usize::from(s2.is_some()),
        "{credited:?}"
    );
    assert!(credited.contains(&(false, ResponseKind::ServiceVisit, Some(Money(41_200)))));
    if s2.is_some() {
        assert!(credited.contains(&(false, ResponseKind::Appointment, None)));
    }
    assert!(credited.contains(&(true, ResponseKind::ServiceVisit, Some(Money(123_456)))));
    for r in rows.iter().filter(|r| !r.is_control()) {
        assert!(r.delivered && !r.bounced && !r.unsubscribed, "{r:?}");
        assert_eq!(r.service, "service_due");
        assert!(r.cost.cents() > 0, "an email's booked cost: {r:?}");
        assert_eq!(r.lead_days, r.due.days() - today.days());
    }
    for r in rows.iter().filter(|r| r.is_control()) {
        assert_eq!(r.cost, Money(0));
        assert!(!r.delivered);
        assert_eq!(r.lead_days, r.due.days() - today.days());
    }
    assert!(store
        .result_rows(today.add_days(1), today.add_days(2))
        .expect("rows")
        .is_empty());
}

//! Learning end to end: dealers' past reminders (a send history) and the
//! workshop visits that answered them, imported through the normal path
//! into a real daemon. With four dealers nothing is learned (the brand's
//! `min_dealers` is five): `touchpoint learning --json` says "policy" and a
//! planned reminder's why says so; with the fifth, the lead time that
//! answered better is learned, shown with its evidence, and the same
//! reminder is planned with it.

use std::path::{Path, PathBuf};

use touchpoint::client::{Client, PlanArgs};
use touchpoint_common::outbox::Message;
use touchpoint_common::Date;
use touchpoint_tests::{tid, touchpoint, Options, TestDaemon};

use crate::today::{brand_with_window, german};

const DEALERS: usize = 5;
const CUSTOMERS: usize = 40;

fn dealer_file(dir: &Path, id: &str) -> PathBuf {
    let path = dir.join(format!("{id}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"[tenant]
id = "{id}"
name = "Autohaus {id}"

[channels]
enabled = ["email", "post"]
daily_capacity = 500

[sender]
name = "Autohaus {id}"
email = "service@{id}.example"
phone = "0221 123456"
street = "Bonner Straße 12"
postcode = "50677"
city = "Köln"

[services.service_due]
monthly_budget = 500.00
"#
        ),
    )
    .expect("dealer file");
    path
}

/// Customer `n`'s vehicle, serviced so that its service was due 150 days
/// ago (spread over ten days); customer 99 is due in 25 days.
fn serviced(n: usize) -> Date {
    let today = Date::today();
    let due = if n == 99 {
        today.add_days(25)
    } else {
        today.add_days(-150 + (n % 10) as i32)
    };
    Date::from_ymd(due.year() - 1, due.month(), due.day().min(28)).expect("date")
}

fn due(n: usize) -> Date {
    serviced(n).add_months(12)
}

/// Even customers were reminded 28 days ahead, odd ones 21 (the policy's).
fn sent(n: usize) -> Date {
    due(n).add_days(if n % 2 == 0 { -28 } else { -21 })
}

/// Three in four of the 28 days' reminders were answered, one in four of
/// the 21 days'.
fn answered(n: usize) -> bool {
    matches!(n % 8, 0 | 2 | 4 | 1)
}

fn vin(d: usize, n: usize) -> String {
    format!("WNWZZZ3CZN{d}{n:06}")
}

/// A dealer's customers, send history and visits; `fresh` adds customer
/// K-99, whose service is due in 25 days.
fn files(dir: &Path, d: usize, fresh: bool) -> [PathBuf; 3] {
    let mut customers = String::from(
        "Kundennummer;Vorname;Nachname;Straße;PLZ;Ort;E-Mail;FIN;Marke;Modell;Erstzulassung;Letzter Service;km-Stand;Einwilligung E-Mail;Einwilligungsdatum\n",
    );
    let mut history = String::from("Kundennr;FIN;Dienst;Kanal;Versanddatum;Kosten\n");
    let mut visits = String::from("FIN;Kundennummer;Auftragsdatum;Auftragsart;Rechnungsbetrag\n");
    let numbers: Vec<usize> = (1..=CUSTOMERS).chain(fresh.then_some(99)).collect();
    for n in numbers {
        customers.push_str(&format!(
            "K-{n};Kim;Kunde{n};Hauptstraße {n};50667;Köln;kunde{n}@example.de;{};Nordwagen;Fjord;15.03.2021;{};12.000;ja;01.02.2024\n",
            vin(d, n),
            german(serviced(n))
        ));
        if n == 99 {
            continue;
        }
        history.push_str(&format!(
            "K-{n};{};service_due;email;{};0,05\n",
            vin(d, n),
            german(sent(n))
        ));
        if answered(n) {
            visits.push_str(&format!(
                "{};K-{n};{};Inspektion;250,00\n",
                vin(d, n),
                german(sent(n).add_days(10))
            ));
        }
    }
    let sub = dir.join(format!("l00{d}"));
    std::fs::create_dir_all(&sub).expect("mkdir");
    let write = |name: &str, text: &str| {
        let p = sub.join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    [
        write("kunden.csv", &customers),
        write("versand.csv", &history),
        write("werkstatt.csv", &visits),
    ]
}

async fn import(c: &mut Client, dir: &Path, d: usize) {
    let t = tid(&format!("l00{d}"));
    for path in files(dir, d, d == 1) {
        let r = c.upload(&t, &path).await.expect("upload");
        assert!(r.is_committed(), "{}: {:?}", path.display(), r.status);
        assert!(r.errors.is_empty(), "{}: {:#?}", path.display(), r.errors);
    }
}

/// K-99's reminder in a dry run of l001's plan.
async fn fresh_reminder(c: &mut Client) -> Message {
    let plan = c
        .plan(PlanArgs {
            tenant: Some(tid("l001")),
            day: None,
            dry_run: true,
            policies: None,
            show: 500,
        })
        .await
        .expect("plan");
    assert!(plan.failed.is_empty(), "{:?}", plan.failed);
    plan.reports
        .into_iter()
        .flat_map(|r| r.planned)
        .find(|m| m.recipient == "K-99")
        .expect("K-99's reminder")
}

/// A plan that commits today's messages (of l002, which has nothing due):
/// the one request that computes learning again.
async fn commit_plan(c: &mut Client) {
    let plan = c
        .plan(PlanArgs {
            tenant: Some(tid("l002")),
            day: None,
            dry_run: false,
            policies: None,
            show: 0,
        })
        .await
        .expect("plan");
    assert!(plan.failed.is_empty(), "{:?}", plan.failed);
}

fn learning_json(socket: &Path) -> serde_json::Value {
    let out = touchpoint(socket, &["learning", "--service", "service_due", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn lead_why(m: &Message) -> String {
    m.why
        .iter()
        .map(|w| w.text.clone())
        .find(|t| t.starts_with("lead time: "))
        .unwrap_or_else(|| panic!("no lead time in {:#?}", m.why))
}

#[tokio::test(flavor = "multi_thread")]
async fn five_dealers_responses_teach_the_lead_time_and_the_plan_uses_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Every day usable; learning on, without exploration, so the why is
    // the value in force.
    let brand = brand_with_window(8 * 60, 23 * 60 + 59).replacen(
        "learn = false\n",
        "learn = true\nexplore_percent = 0\n",
        1,
    );
    assert!(brand.contains("learn = true\nexplore_percent = 0\n"));
    let d = TestDaemon::start_with(Options {
        dealers: Vec::new(),
        dealer_files: (1..=DEALERS)
            .map(|i| dealer_file(dir.path(), &format!("l00{i}")))
            .collect(),
        brand: Some(brand),
        ..Options::default()
    });
    let mut c = d.client().await;
    for i in 1..DEALERS {
        import(&mut c, dir.path(), i).await;
    }

    // Four dealers: below the brand's five, nothing is learned.
    commit_plan(&mut c).await;
    let before = fresh_reminder(&mut c).await;
    assert_eq!(
        lead_why(&before),
        "lead time: 21 days (policy; learning has fewer than 5 dealers)"
    );
    assert_eq!(before.send_on, due(99).add_days(-21));
    let json = learning_json(&d.socket);
    let s = &json["services"][0];
    assert_eq!(s["service"], "service_due", "{json:#}");
    assert_eq!(s["channel"], "email", "{json:#}");
    assert_eq!(s["lead"]["source"], "policy", "{json:#}");
    assert_eq!(s["lead"]["value"], 21, "{json:#}");
    // No cell passes: no count of fewer than five dealers is shown.
    for arm in s["lead"]["arms"].as_array().expect("arms") {
        assert_eq!(arm["passes"], false, "{arm:#}");
        assert_eq!(arm["sent"], 0, "{arm:#}");
    }
    let version = json["version"].as_u64().expect("version");

    // The fifth dealer: 100 reminders at 28 days (75 answered) and 100 at
    // 21 days (25 answered) from five dealers.
    import(&mut c, dir.path(), DEALERS).await;
    // A dry run computes nothing: what is in force stays, no version, no
    // audit line.
    let learned_lines = |audit: &[touchpoint_common::protocol::AuditEntry]| {
        audit.iter().filter(|e| e.action == "learned").count()
    };
    let lines = learned_lines(&c.audit(None, 200, "").await.expect("audit"));
    let dry = fresh_reminder(&mut c).await;
    assert_eq!(lead_why(&dry), lead_why(&before));
    assert_eq!(learning_json(&d.socket)["version"].as_u64(), Some(version));
    assert_eq!(
        learned_lines(&c.audit(None, 200, "").await.expect("audit")),
        lines
    );
    commit_plan(&mut c).await;
    let after = fresh_reminder(&mut c).await;
    assert_eq!(
        lead_why(&after),
        "lead time: 28 days (learned from 5 dealers, 200 reminders: 75.0 % responded vs 25.0 % at the policy's 21 days)"
    );
    // 28 days ahead is past: today, or the next day the calendar allows.
    // No hour is learned: a send history gives the day, not the hour (a
    // weekday may be, whichever the history's days favour).
    let earliest = due(99).add_days(-28).max(Date::today());
    assert!(
        after.send_on >= earliest && after.send_on <= earliest.add_days(3),
        "{:#?}",
        after.why
    );
    assert!(
        !after
            .why
            .iter()
            .any(|w| w.text.contains("send time:") && w.text.contains("learned slot")),
        "{:#?}",
        after.why
    );
    let json = learning_json(&d.socket);
    let s = &json["services"][0];
    assert_eq!(s["lead"]["source"], "learned", "{json:#}");
    assert_eq!(s["lead"]["value"], 28, "{json:#}");
    assert_eq!(s["dealers"], 5, "{json:#}");
    assert!(json["version"].as_u64().expect("version") > version);
    let at28 = s["lead"]["arms"]
        .as_array()
        .expect("arms")
        .iter()
        .find(|a| a["arm"]["lead"] == 28)
        .expect("28 days");
    assert_eq!(
        (&at28["sent"], &at28["responses"]),
        (&100.into(), &75.into())
    );

    // Frozen, then reset: back to the policy's 21 days.
    let out = touchpoint(&d.socket, &["learning", "freeze", "service_due"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("lead time: 28 days (frozen at version"),
        "{text}"
    );
    let out = touchpoint(&d.socket, &["learning", "reset", "service_due"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reset = fresh_reminder(&mut c).await;
    assert_eq!(
        lead_why(&reset),
        "lead time: 21 days (policy; learning has fewer than 5 dealers)"
    );
    let audit = c.audit(None, 50, "").await.expect("audit");
    // Reading what is learned (pooled figures) is audited like the
    // pooled report.
    for action in ["learning", "learning-freeze", "learning-reset", "learned"] {
        assert!(
            audit.iter().any(|e| e.action == action),
            "{action}: {audit:#?}"
        );
    }
}

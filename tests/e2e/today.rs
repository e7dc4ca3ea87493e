//! A tenant whose messages fall on today, whatever day the tests run: a
//! dealer file, customers serviced a year ago less ten days, and the shipped
//! brand with every day usable. Shared by the approvals and console tests.

use std::path::{Path, PathBuf};

use touchpoint::client::{Client, PlanArgs};
use touchpoint_common::Date;
use touchpoint_tests::repo_root;
use touchpoint_tests::tid;

/// The tenant of these tests (`a001.toml`, written by [`dealer_file`]).
pub const TENANT: &str = "a001";

/// The customer with the long name (and the preview's customer).
pub const LONG_NO: &str = "K-6";
pub const LONG_LAST: &str = "Müller-Lüdenscheidt-Wöllersdorf von Hohenzollern-Sigmaringen";
pub const LONG_FIRST: &str = "Maximiliane Friederike Ernestine";

/// `DD.MM.YYYY`, as the dealer's export writes dates.
pub fn german(d: Date) -> String {
    format!("{:02}.{:02}.{:04}", d.day(), d.month(), d.year())
}

/// A dealer that takes part in `service_due` only, with two of its slots
/// filled (umlauts, an en dash) and `local_offer` left empty, and an `&` in
/// its name that the HTML email must escape.
pub fn dealer_file(dir: &Path) -> PathBuf {
    let path = dir.join(format!("{TENANT}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"[tenant]
id = "{TENANT}"
name = "Autohaus Grün & Söhne GmbH"
city = "Köln"

[channels]
enabled = ["email", "post"]
daily_capacity = 50

[sender]
name = "Autohaus Grün & Söhne GmbH"
email = "service@autohaus-gruen.example"
phone = "0221 123456"
street = "Bonner Straße 12"
postcode = "50677"
city = "Köln"

[slots]
signature = "Ihr Serviceteam – Jörg Weißmüller"
opening_hours = "Mo–Fr 7:30–18:00, Sa 9:00–13:00"

[services.service_due]
monthly_budget = 100.00
"#
        ),
    )
    .expect("dealer file");
    path
}

/// Six customers with one vehicle each, serviced a year ago less ten days:
/// the next service is due in about ten days, so the message goes out today
/// (lead time 21 days); by email with `email`, else (no consent to email)
/// by post. K-6 has a long name.
pub fn customers_csv(dir: &Path, email: bool) -> PathBuf {
    let t = Date::today().add_days(10);
    let serviced = Date::from_ymd(t.year() - 1, t.month(), t.day().min(28)).expect("date");
    let mut csv = String::from(
        "Kundennummer;Anrede;Vorname;Nachname;Firma;Straße;PLZ;Ort;E-Mail;Telefon;Geburtsdatum;FIN;Marke;Modell;Erstzulassung;Letzter Service;km-Stand;Nächste HU;Garantieende;Einwilligung E-Mail;Einwilligung Post;Einwilligungsdatum\n",
    );
    let people = [
        ("Herr", "Jürgen", "Weiß"),
        ("Frau", "Anna", "Schröder"),
        ("Herr", "Klaus", "Bäcker"),
        ("Frau", "Maria", "Keller"),
        ("Herr", "Thomas", "Berg"),
        ("Frau", LONG_FIRST, LONG_LAST),
    ];
    for (i, (salutation, first, last)) in people.iter().enumerate() {
        let n = i + 1;
        csv.push_str(&format!(
            "K-{n};{salutation};{first};{last};;Hauptstraße {n};5067{n};Köln;kunde{n}@example.de;;;WNWZZZ3CZNB10000{n};Nordwagen;Fjord;15.03.2021;{};12.000;;;{};ja;01.02.2024\n",
            german(serviced),
            if email { "ja" } else { "nein" }
        ));
    }
    let path = dir.join("kunden.csv");
    std::fs::write(&path, csv).expect("customers");
    path
}

/// The shipped brand policy with every day usable (no quiet days, no
/// holidays) and every message of the day due at once, whenever the test
/// runs: `service_due`'s window is 00:00 to 00:05, whose one five-minute
/// step is 00:00 (the planner draws a message's time within its window).
pub fn brand_due_at_once() -> String {
    brand_with_window(0, 5)
}

/// The shipped brand policy with every day usable (no quiet days, no
/// holidays) and `service_due` sent every day from `from` to `to`
/// (minutes of the day).
pub fn brand_with_window(from: u16, to: u16) -> String {
    let mut s = std::fs::read_to_string(repo_root().join("policies/brand.toml")).expect("brand");
    let quiet = "quiet_weekdays = [\"sun\"]";
    assert!(s.contains(quiet), "brand.toml: {quiet} not found");
    s = s.replacen(quiet, "quiet_weekdays = []", 1);
    let at = s.find("holidays = [").expect("brand.toml: holidays");
    let end = at + s[at..].find(']').expect("holidays end") + 1;
    s.replace_range(at..end, "holidays = []");
    let section = s
        .find("[services.service_due]")
        .expect("brand.toml: [services.service_due]");
    let next = section
        + 1
        + s[section + 1..]
            .find("\n[")
            .unwrap_or(s.len() - section - 1);
    let w = section
        + s[section..next]
            .find("send_window = ")
            .expect("send_window");
    let w_end = w + s[w..].find('\n').expect("line end");
    s.replace_range(
        w..w_end,
        &format!(
            "send_window = {{ weekdays = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"], from = \"{:02}:{:02}\", to = \"{:02}:{:02}\" }}",
            from / 60,
            from % 60,
            to / 60,
            to % 60
        ),
    );
    s
}

/// Imports the six customers (consent to email) and plans today.
pub async fn plan_customers(c: &mut Client, dir: &std::path::Path) {
    let r = c
        .upload(&tid(TENANT), &customers_csv(dir, true))
        .await
        .expect("upload");
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    let plan = c
        .plan(PlanArgs {
            tenant: Some(tid(TENANT)),
            day: None,
            dry_run: false,
            policies: None,
            show: 0,
        })
        .await
        .expect("plan");
    assert_eq!(plan.reports.first().map(|r| r.planned_count), Some(6));
}

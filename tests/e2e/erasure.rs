//! Data subjects' rights end to end (GDPR Art. 15, 17, 20, 21): `touchpoint
//! erase` leaves no byte of the person on disk (the real daemon binary, its
//! state directory and its log scanned), an erased person is not imported
//! again until an administrator states a new legal basis, an objection
//! stops planning and survives a re-import, `touchpoint export-customer`
//! gives everything stored, `touchpoint erase-tenant` removes a dealer who
//! left; and who may do which.

use std::path::{Path, PathBuf};

use touchpoint_common::config::AccessRule;
use touchpoint_common::protocol::Role;
use touchpoint_common::Date;
use touchpoint_tests::{
    daemon_files_with, eventually, touchpoint, touchpoint_ok, DaemonProcess, Options, TestDaemon,
};

use crate::common::me;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const HEADER: &str = "Kundennummer;Anrede;Vorname;Nachname;Firma;Straße;PLZ;Ort;E-Mail;Telefon;Geburtsdatum;FIN;Marke;Modell;Erstzulassung;Letzter Service;km-Stand;Nächste HU;Garantieende;Einwilligung E-Mail;Einwilligung Post;Bemerkung";

/// What of the person to be erased must not be found anywhere afterwards.
const NAME: &str = "Quellenbrünnerich";
const EMAIL: &str = "zacharias.quellen@erasure-test.example";
const PHONE: &str = "0151 98765432";
const PHONE_DIGITS: &str = "98765432";
const STREET: &str = "Zypressenweg";
const VIN: &str = "WNWZZZ3CZNB077001";

/// A day `days` from today, as a German export writes it.
fn german(days: i32) -> String {
    let d = Date::today().add_days(days);
    let iso = d.to_string();
    let (y, rest) = iso.split_once('-').expect("iso day");
    let (m, day) = rest.split_once('-').expect("iso day");
    format!("{day}.{m}.{y}")
}

/// The person to be erased (K-77001, inspection due in six weeks, email
/// and post consent) and one who stays (K-77002).
fn rows() -> Vec<String> {
    vec![
        format!(
            "K-77001;Herr;Zacharias;{NAME};;{STREET} 9;80331;München;{EMAIL};{PHONE};17.04.1965;{VIN};Nordwagen;Fjord;15.03.2019;{};45.300;{};14.03.2024;ja;ja;Stammkunde",
            german(-300),
            german(35)
        ),
        format!(
            "K-77002;Frau;Berta;Bleibtreu;;Lindenallee 5;80331;München;berta.bleibtreu@example.de;089 1112223;03.11.1978;WNWZZZ3CZNB077002;Nordwagen;Skagen;01.07.2021;{};22.150;{};30.06.2026;ja;ja;",
            german(-200),
            german(36)
        ),
    ]
}

/// A dealer file taking part in the inspection reminder (the shipped test
/// dealers take part in nothing).
fn dealer_file(dir: &Path, id: &str, name: &str) -> PathBuf {
    let path = dir.join(format!("{id}.toml"));
    std::fs::write(
        &path,
        format!("[tenant]\nid = \"{id}\"\nname = \"{name}\"\n\n[services.hu_reminder]\nopt_in = true\nmonthly_budget = 500.00\n"),
    )
    .expect("dealer file");
    path
}

/// A daemon with d001 (in the reminder), d002 and d003.
fn daemon(dir: &Path) -> TestDaemon {
    TestDaemon::start_with(Options {
        dealers: vec![
            ("d002".into(), "Autohaus Weiß KG".into()),
            ("d003".into(), "Schröder Automobile".into()),
        ],
        dealer_files: vec![dealer_file(dir, "d001", "Autohaus Müller GmbH")],
        ..Options::default()
    })
}

fn write_csv(dir: &Path, name: &str, rows: &[String]) -> PathBuf {
    let path = dir.join(name);
    let mut body = format!("{HEADER}\n");
    for r in rows {
        body.push_str(r);
        body.push('\n');
    }
    std::fs::write(&path, body).expect("write export");
    path
}

/// Every file under `dir` (no link followed) holding one of `needles`, with
/// the needle.
fn files_holding(dir: &Path, needles: &[&str]) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = p.symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                let bytes = std::fs::read(&p).unwrap_or_default();
                for n in needles {
                    if contains(&bytes, n.as_bytes()) {
                        found.push((p.clone(), n.to_string()));
                    }
                }
            }
        }
    }
    found
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Writes `rows` as the export `name` and imports it into `tenant`.
fn import_rows(d: &TestDaemon, dir: &Path, name: &str, tenant: &str, rows: &[String]) {
    let file = write_csv(dir, name, rows);
    touchpoint_ok(
        &d.socket,
        &["import", "--tenant", tenant, &file.display().to_string()],
    );
}

#[test]
fn erase_leaves_no_byte_of_the_customer_in_the_state_directory_or_the_log() {
    let root = tempfile::tempdir().expect("tempdir");
    let files = daemon_files_with(
        root.path(),
        &[("d001", "Autohaus Müller GmbH")],
        "[dispatch]\nenabled = false\n",
    );
    std::fs::copy(
        dealer_file(root.path(), "d001", "Autohaus Müller GmbH"),
        files.policy_dir.join("dealers").join("d001.toml"),
    )
    .expect("dealer file");
    let mut daemon = DaemonProcess::spawn(&files.config_file, &files.socket, &files.log);
    let export = write_csv(root.path(), "kunden_erasure.csv", &rows());
    let socket = files.socket.as_path();
    touchpoint_ok(
        socket,
        &["import", "--tenant", "d001", &export.display().to_string()],
    );
    let planned = touchpoint_ok(socket, &["plan", "--tenant", "d001"]);
    let needles = [NAME, EMAIL, PHONE, PHONE_DIGITS, STREET, VIN, "K-77001"];
    // The scan sees the person before (it is no test otherwise): sled
    // holds them in its files.
    let before = files_holding(&files.state_dir, &needles);
    assert!(
        before.iter().any(|(_, n)| n == NAME) && before.iter().any(|(_, n)| n == EMAIL),
        "the person is not on disk before the erasure: {before:?}"
    );
    let queue = touchpoint_ok(socket, &["queue", "--json"]);
    assert!(
        queue.contains("K-77001"),
        "no message was planned for K-77001:\n{planned}\n{queue}"
    );
    // Their email as the local spool keeps it once sent (written here, as
    // dispatch names it: `<spool>/<tenant>/<id>.eml`; the other customer's
    // stays).
    let queue: serde_json::Value = serde_json::from_str(&queue).expect("queue json");
    let id_of = |no: &str| {
        queue["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["recipient"] == no)
            .and_then(|r| r["id"].as_u64())
            .expect("message id")
    };
    let spool = files.state_dir.join("mail").join("d001");
    std::fs::create_dir_all(&spool).expect("spool");
    let theirs = spool.join(touchpointd::dispatch::spool::file_name(id_of("K-77001")));
    std::fs::write(
        &theirs,
        format!("To: Zacharias {NAME} <{EMAIL}>\r\n\r\nHallo"),
    )
    .expect("eml");
    let other = spool.join(touchpointd::dispatch::spool::file_name(id_of("K-77002")));
    std::fs::write(
        &other,
        "To: Berta Bleibtreu <berta.bleibtreu@example.de>\r\n\r\nHallo",
    )
    .expect("eml");

    // The inbox's archive: an export of both as it came (the drop folder
    // moves what it imported into done/), and one of someone else.
    let done = files.state_dir.join("inbox/d001/done");
    std::fs::create_dir_all(&done).expect("done/");
    let archived = done.join("kunden-2026-11-30.csv");
    std::fs::write(
        &archived,
        format!(
            "Kundennr;Name;Email\nK-77001;Zacharias {NAME};{EMAIL}\nK-77002;Berta Bleibtreu;\n"
        ),
    )
    .expect("archived export");
    std::fs::write(done.join("kunden-2026-11-30.csv.report.txt"), "2 rows\n").expect("report");
    let unrelated = done.join("kunden-2026-11-29.csv");
    std::fs::write(&unrelated, "Kundennr;Name\nK-77002;Berta Bleibtreu\n").expect("export");

    // A letter batch and a call list dispatch wrote before, each with both
    // customers (written here as dispatch writes them).
    let d001 = touchpoint_common::TenantId::new("d001").expect("tenant");
    let letter = |no: &str, name: &str, street: &str| touchpointd::render::pdf::Letter {
        message: 1,
        recipient: no.into(),
        address: vec![name.into(), street.into(), "80331 München".into()],
        postcode: "80331".into(),
        sender_line: "Autohaus Müller GmbH".into(),
        info: vec!["Autohaus Müller GmbH".into()],
        logo: None,
        date: "01.12.2026".into(),
        body: format!("Guten Tag {name},\n\nIhr Fjord ist fällig."),
    };
    let postage = touchpoint_common::postage::Postage::default();
    let batch = touchpointd::dispatch::letters::write_batch(
        &files.state_dir.join("letters"),
        touchpointd::dispatch::letters::BatchRequest {
            tenant: &d001,
            day: Date::today(),
            seq: 1,
            letters: vec![
                letter(
                    "K-77001",
                    &format!("Zacharias {NAME}"),
                    &format!("{STREET} 9"),
                ),
                letter("K-77002", "Berta Bleibtreu", "Lindenallee 5"),
            ],
            postage: &postage,
        },
    )
    .expect("letter batch");
    let task =
        |no: &str, name: &str, phone: &str, vin: &str| touchpointd::dispatch::calls::CallTask {
            message: 1,
            customer_no: no.into(),
            name: name.into(),
            phone: phone.into(),
            service: "hu_reminder".into(),
            service_name: "HU".into(),
            occasions: format!("HU {vin}"),
            due: Date::today(),
            dealer: "Autohaus Müller GmbH".into(),
        };
    let calls = touchpointd::dispatch::calls::write_tasks(
        &files.state_dir.join("calls"),
        &d001,
        Date::today(),
        1,
        &[
            task("K-77001", NAME, PHONE, VIN),
            task(
                "K-77002",
                "Berta Bleibtreu",
                "089 1112223",
                "WNWZZZ3CZNB077002",
            ),
        ],
    )
    .expect("call list");
    let winansi = touchpointd::render::pdf::encode_winansi(NAME);
    assert!(contains(&std::fs::read(&batch.pdf).expect("pdf"), &winansi));

    let out = touchpoint_ok(
        socket,
        &[
            "erase",
            "--tenant",
            "d001",
            "--customer",
            "K-77001",
            "--reason",
            "request by letter of 2026-12-01",
        ],
    );
    assert!(out.contains("letter and call files rewritten: 3"), "{out}");
    assert!(
        out.contains("imported files in the inbox's archive removed: 2"),
        "{out}"
    );
    assert!(!archived.exists() && unrelated.exists());
    let pdf = std::fs::read(&batch.pdf).expect("pdf");
    assert!(
        !contains(&pdf, &winansi),
        "their letter is still in the batch"
    );
    assert!(contains(
        &pdf,
        &touchpointd::render::pdf::encode_winansi("Berta Bleibtreu")
    ));
    let list = std::fs::read_to_string(&calls).expect("call list");
    assert!(
        list.contains("K-77002") && !list.contains("K-77001"),
        "{list}"
    );
    assert!(out.contains("customer numbers erased: 1"), "{out}");
    assert!(out.contains("spooled emails removed: 1"), "{out}");
    assert!(!theirs.exists() && other.exists());
    assert!(out.contains("store rewritten: 1"), "{out}");

    let mut left = files_holding(&files.state_dir, &needles);
    left.extend(
        files_holding(root.path(), &needles)
            .into_iter()
            .filter(|(p, _)| {
                // The test's own export is not the daemon's.
                p != &export
            }),
    );
    assert!(left.is_empty(), "erased bytes still on disk: {left:?}");

    // The rest of the dealer's data is there, through the rewritten store.
    let other = touchpoint_ok(socket, &["customer", "--tenant", "d001", "K-77002"]);
    assert!(other.contains("Bleibtreu"), "{other}");
    let gone = touchpoint(socket, &["customer", "--tenant", "d001", "K-77001"]);
    assert_ne!(gone.status.code(), Some(0), "{}", text(&gone.stdout));
    // The message stays for the ledger, under the pseudonym, cancelled.
    let queue = touchpoint_ok(socket, &["queue", "--json"]);
    assert!(!queue.contains("K-77001"), "{queue}");
    assert!(queue.contains("erased-"), "{queue}");
    // Audited with who and why, the person only by pseudonym.
    let audit = touchpoint_ok(socket, &["audit", "--grep", "erase"]);
    assert!(audit.contains("request by letter of 2026-12-01"), "{audit}");
    assert!(audit.contains("erased-"), "{audit}");
    assert!(!audit.contains("K-77001"), "{audit}");

    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(daemon
        .wait_exit(std::time::Duration::from_secs(30))
        .is_some());
    // Stopped cleanly, nothing of the person came back into any file.
    let left = files_holding(&files.state_dir, &needles);
    assert!(
        left.is_empty(),
        "erased bytes on disk after the stop: {left:?}"
    );
}

#[test]
fn an_erased_customer_is_skipped_by_the_next_import_until_a_new_legal_basis_is_stated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = daemon(dir.path());
    import_rows(&d, dir.path(), "kunden_1.csv", "d001", &rows());
    touchpoint_ok(
        &d.socket,
        &["erase", "--tenant", "d001", "--customer", "K-77001"],
    );

    // Next night's export: the same person, and the same person again
    // under a new number (same email, phone, name and postcode).
    let mut next = rows();
    next.push(
        next[0]
            .replace("K-77001", "K-88001")
            .replace(VIN, "WNWZZZ3CZNB088001"),
    );
    let second = write_csv(dir.path(), "kunden_2.csv", &next);
    let out = touchpoint(
        &d.socket,
        &[
            "import",
            "--tenant",
            "d001",
            "--json",
            &second.display().to_string(),
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    let report = if report.is_array() {
        report[0]["report"].clone()
    } else {
        report["report"].clone()
    };
    assert_eq!(report["rows_rejected"], 2, "{report:#}");
    assert_eq!(report["rows_ok"], 1, "{report:#}");
    let errors: Vec<String> = report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            format!(
                "{}:{}: {}",
                e["file"].as_str().unwrap_or(""),
                e["line"],
                e["reason"].as_str().unwrap_or("")
            )
        })
        .collect();
    let today = Date::today();
    assert_eq!(
        errors[0],
        format!("kunden_2.csv:2: customer K-77001 was erased on {today}; row skipped"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with(&format!(
            "kunden_2.csv:4: customer K-88001 was erased on {today} (same "
        )) && errors[1].ends_with("; row skipped"),
        "{errors:?}"
    );
    for no in ["K-77001", "K-88001"] {
        let c = touchpoint(&d.socket, &["customer", "--tenant", "d001", no]);
        assert_ne!(
            c.status.code(),
            Some(0),
            "{no} came back: {}",
            text(&c.stdout)
        );
    }

    // A new legal basis, stated by an administrator: the next import takes them.
    let out = touchpoint_ok(
        &d.socket,
        &[
            "reinstate",
            "--tenant",
            "d001",
            "--customer",
            "K-77001",
            "--basis",
            "new service contract of 2026-12-05",
        ],
    );
    assert!(out.contains("suppression entries lifted"), "{out}");
    let audit = touchpoint_ok(&d.socket, &["audit", "--grep", "reinstate"]);
    assert!(
        audit.contains("new service contract of 2026-12-05"),
        "{audit}"
    );
    // (Other bytes than the second file's: the same bytes are "already imported".)
    next[0] = next[0].replace("Stammkunde", "Stammkunde, neuer Vertrag");
    import_rows(&d, dir.path(), "kunden_3.csv", "d001", &next);
    let back = touchpoint_ok(&d.socket, &["customer", "--tenant", "d001", "K-77001"]);
    assert!(back.contains(NAME), "{back}");
}

#[test]
fn the_same_file_uploaded_again_after_an_erasure_names_the_erased_person() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = daemon(dir.path());
    let file = write_csv(dir.path(), "kunden_1.csv", &rows());
    let path = file.display().to_string();
    touchpoint_ok(&d.socket, &["import", "--tenant", "d001", &path]);
    // Before any erasure, the same bytes are a plain duplicate.
    let again = touchpoint_ok(&d.socket, &["import", "--tenant", "d001", &path]);
    assert!(
        again.contains("same file as #1") && !again.contains("erased"),
        "{again}"
    );
    touchpoint_ok(
        &d.socket,
        &["erase", "--tenant", "d001", "--customer", "K-77001"],
    );

    let out = touchpoint_ok(&d.socket, &["import", "--tenant", "d001", &path]);
    let today = Date::today();
    assert!(out.contains("same file as #1"), "{out}");
    assert!(
        out.contains("nothing applied; 1 row is of a person erased since (listed)"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "kunden_1.csv:2: customer_no: customer K-77001 was erased on {today}; row skipped"
        )),
        "{out}"
    );
    // Nothing applied: the person is not back, the other customer is there.
    let gone = touchpoint(&d.socket, &["customer", "--tenant", "d001", "K-77001"]);
    assert_ne!(gone.status.code(), Some(0), "{}", text(&gone.stdout));
    touchpoint_ok(&d.socket, &["customer", "--tenant", "d001", "K-77002"]);
}

#[test]
fn audit_lines_name_an_erased_customer_only_by_pseudonym_before_and_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = daemon(dir.path());
    import_rows(&d, dir.path(), "kunden_1.csv", "d001", &rows());
    import_rows(&d, dir.path(), "kunden_1.csv", "d002", &rows());
    // Earlier lines that name the number: an export, an objection that
    // failed on a typo'd number, an erasure asked for a number not there.
    touchpoint_ok(
        &d.socket,
        &[
            "export-customer",
            "--tenant",
            "d001",
            "--customer",
            "K-77001",
        ],
    );
    touchpoint_ok(
        &d.socket,
        &[
            "export-customer",
            "--tenant",
            "d002",
            "--customer",
            "K-77001",
        ],
    );
    let all = |d: &TestDaemon| touchpoint_ok(&d.socket, &["audit", "--limit", "500"]);
    assert!(all(&d).contains("customer K-77001"), "{}", all(&d));
    let missing = touchpoint(
        &d.socket,
        &[
            "erase",
            "--tenant",
            "d001",
            "--customer",
            "K-99999",
            "--reason",
            "Brief zu K-99999",
        ],
    );
    assert_ne!(missing.status.code(), Some(0));

    touchpoint_ok(
        &d.socket,
        &[
            "erase",
            "--tenant",
            "d001",
            "--customer",
            "K-77001",
            "--reason",
            "Brief von K-77001 vom 1.12.",
        ],
    );

    let d001 = touchpoint_ok(&d.socket, &["audit", "--tenant", "d001", "--limit", "500"]);
    assert!(!d001.contains("K-77001"), "{d001}");
    assert!(!d001.contains("K-99999"), "{d001}");
    assert!(d001.contains("Brief von erased-"), "{d001}");
    assert!(d001.contains("customer erased-"), "{d001}");
    // Another dealer's line about its own customer of that number stays.
    let d002 = touchpoint_ok(&d.socket, &["audit", "--tenant", "d002", "--limit", "500"]);
    assert!(d002.contains("customer K-77001"), "{d002}");
}

#[test]
fn an_objection_stops_planning_survives_a_reimport_and_is_shown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = daemon(dir.path());
    import_rows(&d, dir.path(), "kunden_1.csv", "d001", &rows());
    touchpoint_ok(&d.socket, &["plan", "--tenant", "d001"]);
    assert_eq!(
        pending(&d.socket, "K-77001"),
        1,
        "nothing planned to object to"
    );
    touchpoint_ok(
        &d.socket,
        &[
            "object",
            "--tenant",
            "d001",
            "--customer",
            "K-77001",
            "--reason",
            "phoned the dealer",
        ],
    );
    let shown = touchpoint_ok(&d.socket, &["customer", "--tenant", "d001", "K-77001"]);
    assert!(
        shown.contains("objected  to advertising (Art. 21)") && shown.contains("phoned the dealer"),
        "{shown}"
    );
    // A re-export of the customer does not lift it; the next plan cancels
    // what was planned and plans nothing new for them.
    let mut again = rows();
    again[0] = again[0].replace("Stammkunde", "Stammkunde seit 1990");
    import_rows(&d, dir.path(), "kunden_2.csv", "d001", &again);
    touchpoint_ok(&d.socket, &["plan", "--tenant", "d001"]);
    assert_eq!(
        pending(&d.socket, "K-77001"),
        0,
        "planned despite the objection"
    );
    assert_eq!(
        pending(&d.socket, "K-77002"),
        1,
        "the other customer lost theirs"
    );
    let shown = touchpoint_ok(&d.socket, &["customer", "--tenant", "d001", "K-77001"]);
    assert!(shown.contains("objected"), "{shown}");

    // Lifted, the customer is planned again.
    touchpoint_ok(
        &d.socket,
        &[
            "object",
            "--tenant",
            "d001",
            "--customer",
            "K-77001",
            "--lift",
        ],
    );
    touchpoint_ok(&d.socket, &["plan", "--tenant", "d001"]);
    assert_eq!(pending(&d.socket, "K-77001"), 1);
}

/// A customer's messages in the queue not yet sent (planned, rendered,
/// queued).
fn pending(socket: &Path, customer: &str) -> usize {
    let queue: serde_json::Value =
        serde_json::from_str(&touchpoint_ok(socket, &["queue", "--json"])).expect("queue json");
    queue["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["recipient"] == customer)
        .filter(|r| {
            matches!(
                r["status"].as_str(),
                Some("planned" | "rendered" | "queued")
            )
        })
        .count()
}

#[test]
fn export_customer_gives_everything_stored_as_json_to_a_new_private_file() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = daemon(dir.path());
    import_rows(&d, dir.path(), "kunden_1.csv", "d001", &rows());
    touchpoint_ok(&d.socket, &["plan", "--tenant", "d001"]);
    let out = dir.path().join("K-77001.json");
    let path = out.display().to_string();
    touchpoint_ok(
        &d.socket,
        &[
            "export-customer",
            "--tenant",
            "d001",
            "--customer",
            "K-77001",
            "--out",
            &path,
        ],
    );
    let mode = std::fs::metadata(&out)
        .expect("export")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let x: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("read")).expect("json");
    assert_eq!(x["customer"]["email"], EMAIL, "{x:#}");
    assert_eq!(x["vehicles"][0]["vehicle"]["vin"], VIN, "{x:#}");
    let sources: Vec<&str> = x["consents"]
        .as_array()
        .expect("consents")
        .iter()
        .filter_map(|c| c["source"].as_str())
        .collect();
    assert!(
        sources.iter().any(|s| s.contains("kunden_1.csv")),
        "{sources:?}"
    );
    let messages = x["messages"].as_array().expect("messages");
    assert!(!messages.is_empty(), "{x:#}");
    assert!(
        messages[0]["message"]["dispatch"]
            .get("template_version")
            .is_some(),
        "{x:#}"
    );
    // Never over a file, never through a link.
    let again = touchpoint(
        &d.socket,
        &[
            "export-customer",
            "--tenant",
            "d001",
            "--customer",
            "K-77001",
            "--out",
            &path,
        ],
    );
    assert_ne!(again.status.code(), Some(0));
    let target = dir.path().join("elsewhere.json");
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let through = touchpoint(
        &d.socket,
        &[
            "export-customer",
            "--tenant",
            "d001",
            "--customer",
            "K-77001",
            "--out",
            &link.display().to_string(),
        ],
    );
    assert_ne!(through.status.code(), Some(0));
    assert!(!target.exists(), "written through a link");
    // To standard output without --out.
    let stdout = touchpoint_ok(
        &d.socket,
        &[
            "export-customer",
            "--tenant",
            "d001",
            "--customer",
            "K-77002",
        ],
    );
    let y: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(y["customer"]["customer_no"], "K-77002");
}

#[test]
fn only_an_administrator_in_scope_may_erase_and_an_operator_in_scope_may_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = daemon(dir.path());
    import_rows(&d, dir.path(), "kunden_1.csv", "d001", &rows());
    import_rows(&d, dir.path(), "kunden_1.csv", "d002", &rows());
    let rule = |role, tenants: &[&str]| AccessRule {
        user: None,
        uid: Some(me()),
        group: None,
        gid: None,
        role,
        tenants: tenants.iter().map(|t| t.to_string()).collect(),
    };
    d.restart_with_access(&[rule(Role::Operator, &["d001"])]);
    for args in [
        vec!["erase", "--tenant", "d001", "--customer", "K-77001"],
        vec![
            "reinstate",
            "--tenant",
            "d001",
            "--customer",
            "K-77001",
            "--basis",
            "x",
        ],
        vec!["erase-tenant", "d001"],
    ] {
        let out = touchpoint(&d.socket, &args);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(
            text(&out.stderr).contains("may not"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    touchpoint_ok(
        &d.socket,
        &["object", "--tenant", "d001", "--customer", "K-77001"],
    );
    let out = touchpoint(
        &d.socket,
        &["object", "--tenant", "d002", "--customer", "K-77001"],
    );
    assert_ne!(out.status.code(), Some(0));

    d.restart_with_access(&[rule(Role::Admin, &["d001"])]);
    let out = touchpoint(
        &d.socket,
        &["erase", "--tenant", "d002", "--customer", "K-77001"],
    );
    assert_ne!(out.status.code(), Some(0), "erased out of scope");
    let out = touchpoint(
        &d.socket,
        &[
            "export-customer",
            "--tenant",
            "d002",
            "--customer",
            "K-77001",
        ],
    );
    assert_ne!(out.status.code(), Some(0), "exported out of scope");
    assert!(!text(&out.stdout).contains(EMAIL));
    touchpoint_ok(
        &d.socket,
        &["erase", "--tenant", "d001", "--customer", "K-77001"],
    );

    // d002's copy of the person is untouched: another dealer's room.
    d.restart_with_access(&[rule(Role::Admin, &["*"])]);
    let kept = touchpoint_ok(&d.socket, &["customer", "--tenant", "d002", "K-77001"]);
    assert!(kept.contains(NAME), "{kept}");
}

#[test]
fn erase_tenant_archives_then_removes_a_dealer_who_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = daemon(dir.path());
    import_rows(&d, dir.path(), "kunden_1.csv", "d003", &rows());
    // Still registered by its dealer file: refused, nothing removed.
    let out = touchpoint(&d.socket, &["erase-tenant", "d003"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("policies/dealers"),
        "{}",
        text(&out.stderr)
    );
    let store = d.state_dir.join("tenants").join("d003");
    assert!(store.exists());

    let dealer = std::fs::read_dir(d.policy_dir.join("dealers"))
        .expect("dealers")
        .flatten()
        .map(|e| e.path())
        .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("\"d003\"")))
        .expect("d003's dealer file");
    std::fs::remove_file(&dealer).expect("remove dealer file");
    assert!(
        eventually(std::time::Duration::from_secs(30), || {
            let out = touchpoint(
                &d.socket,
                &[
                    "erase-tenant",
                    "d003",
                    "--archive",
                    &dir.path().join("probe").display().to_string(),
                ],
            );
            !text(&out.stderr).contains("policies/dealers")
        }),
        "the dealer file's removal was not picked up"
    );
    // The probe above did the erasure, with its archive: look at it.
    let archive = dir.path().join("probe");
    let archived: Vec<PathBuf> = std::fs::read_dir(&archive)
        .expect("archive")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(archived.len(), 2, "{archived:?}");
    let one = std::fs::read_to_string(&archived[0]).expect("archived export");
    assert!(one.contains("\"customer_no\""), "{one}");
    assert!(!store.exists(), "the store is still there");
    assert!(!d.state_dir.join("inbox").join("d003").exists());
    let tenants = touchpoint_ok(&d.socket, &["tenants"]);
    assert!(!tenants.contains("d003"), "{tenants}");
    assert!(tenants.contains("d001"), "{tenants}");
}

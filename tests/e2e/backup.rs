//! Backup and restore with the real binaries: `touchpoint backup` while
//! imports and dispatch run, `touchpointd --restore` into an empty state
//! directory, every record compared; a SIGKILL during a backup leaves the
//! earlier backup whole.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use touchpoint::client::{Client, PlanArgs};
use touchpoint_common::config::StoresConfig;
use touchpoint_common::protocol::{BackupDone, Request};
use touchpoint_common::Date;
use touchpoint_tests::smtp::SmtpSink;
use touchpoint_tests::{
    bin, daemon_files_with, dump_central, dump_tenant, fixture, output_within, tid, touchpoint,
    touchpoint_ok, DaemonFiles, DaemonProcess,
};
use touchpointd::store::Stores;

const TENANT: &str = "s001";
const WAIT: Duration = Duration::from_secs(120);
/// Emails planned in the test under load.
const EMAILS: usize = 1_000;
const HEADER: &str = "Kundennummer;Anrede;Vorname;Nachname;Firma;Straße;PLZ;Ort;E-Mail;Telefon;Geburtsdatum;FIN;Marke;Modell;Erstzulassung;Letzter Service;km-Stand;Nächste HU;Garantieende;Einwilligung E-Mail;Einwilligung Post;Einwilligungsdatum\r\n";

/// A dealer export of `n` customers numbered from `first`, each with an
/// email address, email consent and a vehicle whose HU is due on
/// 2026-12-10.
fn export(path: &Path, first: usize, n: usize) {
    let mut csv = String::from(HEADER);
    for i in first..first + n {
        csv.push_str(&format!(
            "K-{i};Herr;Karl;Kunde{i:06};;Teststraße {house};{plz};München;kunde.{i}@example.de;;;WNWZZZ3CZNB{i:06};Nordwagen;Fjord;15.03.2022;20.01.2026;12.000;10.12.2026;;ja;ja;01.02.2024\r\n",
            house = i % 200 + 1,
            plz = 80331 + i % 500,
        ));
    }
    std::fs::write(path, csv).expect("write export");
}

fn files(root: &Path, sink: Option<&SmtpSink>) -> DaemonFiles {
    let dispatch = match sink {
        Some(s) => format!(
            "[dispatch]\ntick_ms = 20\n\n[dispatch.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nconnections = 2\ntimeout_secs = 60\n",
            s.addr().port()
        ),
        None => "[dispatch]\nenabled = false\n".into(),
    };
    let files = daemon_files_with(root, &[], &dispatch);
    std::fs::copy(
        fixture("dispatch/s001.toml"),
        files.policy_dir.join("dealers/s001.toml"),
    )
    .expect("dealer policy");
    files
}

async fn client(files: &DaemonFiles) -> Client {
    Client::connect(&files.socket).await.expect("connect")
}

async fn backup(files: &DaemonFiles, repo: &Path, keep: Option<u32>) -> BackupDone {
    client(files)
        .await
        .backup(Request::Backup {
            dir: repo.display().to_string(),
            keep,
        })
        .await
        .expect("backup")
}

/// `touchpointd --restore FROM` into `state`, with the daemon's
/// configuration otherwise.
fn restore(files: &DaemonFiles, from: &Path, state: &Path) -> String {
    let out = output_within(
        std::process::Command::new(bin("touchpointd"))
            .arg("--config")
            .arg(&files.config_file)
            .arg("--state-dir")
            .arg(state)
            .arg("--restore")
            .arg(from),
        WAIT,
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "restore failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Every record of the state directory (no daemon on it).
fn dump(state: &Path) -> Value {
    let stores = Stores::open(state, &StoresConfig::default()).expect("the stores open");
    let t = stores.tenant(&tid(TENANT)).expect("the tenant's store");
    let out = serde_json::json!({
        "central": dump_central(stores.central()),
        "tenant": dump_tenant(&t),
    });
    drop(t);
    stores.close_all().expect("close");
    out
}

fn stop(mut d: DaemonProcess) {
    d.signal(Signal::SIGTERM);
    d.wait_exit(WAIT).expect("the daemon stops");
}

async fn start(files: &DaemonFiles, log: &str) -> DaemonProcess {
    let d = DaemonProcess::spawn(
        &files.config_file,
        &files.socket,
        &files.log.with_file_name(log),
    );
    d.wait_for_signal_handlers();
    d
}

/// Equal, or a failure naming the first record that differs.
fn same(got: &Value, want: &Value, what: &str) {
    if got == want {
        return;
    }
    let (g, w) = (got.as_array(), want.as_array());
    if let (Some(g), Some(w)) = (g, w) {
        let at = g.iter().zip(w).position(|(a, b)| a != b);
        match at {
            Some(i) => panic!(
                "{what}: record {i} differs:\nrestored: {}\nlive:     {}",
                g[i], w[i]
            ),
            None => panic!("{what}: {} restored, {} live", g.len(), w.len()),
        }
    }
    panic!("{what}: restored {got}, live {want}");
}

fn customer_numbers(v: &Value) -> BTreeSet<String> {
    v["tenant"]["customers"]
        .as_array()
        .expect("customers")
        .iter()
        .map(|c| c["customer_no"].as_str().expect("number").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_imports_and_dispatch_run_restores_every_record() {
    let sink = SmtpSink::new();
    let root = tempfile::tempdir().expect("tempdir");
    let files = files(root.path(), Some(&sink));
    let repo = root.path().join("backups");
    let d = start(&files, "first.log").await;
    let mut c = client(&files).await;

    // Emails enough that dispatch is still sending when the backup ends
    // (checked below); dispatch starts once they are planned.
    c.pause(Default::default()).await.expect("pause");
    let kunden = root.path().join("kunden.csv");
    export(&kunden, 100_000, EMAILS);
    let r = c.upload(&tid(TENANT), &kunden).await.expect("import");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let r = c
        .plan(PlanArgs {
            tenant: Some(tid(TENANT)),
            day: Some(Date::from_ymd(2026, 11, 16).expect("day")),
            dry_run: false,
            policies: None,
            show: 0,
        })
        .await
        .expect("plan");
    assert_eq!(
        r.reports.iter().map(|r| r.planned_count).sum::<u64>(),
        EMAILS as u64
    );
    c.resume(Default::default()).await.expect("resume");
    let deadline = Instant::now() + WAIT;
    while sink.count() < 20 {
        assert!(Instant::now() < deadline, "dispatch did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Imports of 40 new customers each, one after the other, meanwhile.
    let stop_imports = Arc::new(AtomicBool::new(false));
    let importer = {
        let (stop_imports, socket, dir) = (
            stop_imports.clone(),
            files.socket.clone(),
            root.path().to_path_buf(),
        );
        tokio::spawn(async move {
            let mut batches: Vec<BTreeSet<String>> = Vec::new();
            let mut c = Client::connect(&socket).await.expect("connect");
            while !stop_imports.load(Ordering::Acquire) || batches.len() < 2 {
                let first = 200_000 + batches.len() * 40;
                let path = dir.join(format!("batch-{}.csv", batches.len()));
                export(&path, first, 40);
                let r = c.upload(&tid(TENANT), &path).await.expect("import");
                assert!(r.errors.is_empty(), "{:?}", r.errors);
                batches.push((first..first + 40).map(|i| format!("K-{i}")).collect());
            }
            batches
        })
    };
    let under_load = backup(&files, &repo, None).await;
    let sent_at_backup = sink.count();
    eprintln!("{sent_at_backup} of {EMAILS} emails at the relay when the backup ended");
    stop_imports.store(true, Ordering::Release);
    let batches = importer.await.expect("imports");
    assert!(
        sent_at_backup < EMAILS,
        "dispatch had finished before the backup did: the test proves nothing under load"
    );

    // Quiet: nothing imported, every email sent and recorded (a pause
    // stops new claims, but one under way when it came still goes out).
    c = client(&files).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let s = c.dispatch_status().await.expect("status");
        if s.sent_total >= EMAILS as u64
            && s.queues.iter().all(|q| q.email == 0 && q.in_flight == 0)
        {
            break;
        }
        assert!(Instant::now() < deadline, "emails still to send: {s:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let quiet = backup(&files, &repo, None).await;
    let verified = touchpoint_ok(&files.socket, &["backup", "--verify", &under_load.path]);
    assert!(verified.contains("verifies"), "{verified}");
    stop(d);
    let live = dump(&files.state_dir);

    // The quiet backup restores every record as it stood.
    let restored = root.path().join("restored");
    let said = restore(&files, Path::new(&quiet.path), &restored);
    assert!(said.contains("verified, counted and opened"), "{said}");
    let back = dump(&restored);
    for (kind, want) in live["tenant"].as_object().expect("tenant") {
        same(&back["tenant"][kind], want, kind);
    }
    for kind in ["tenants", "pauses", "learned", "templates", "proposals"] {
        assert_eq!(
            back["central"][kind], live["central"][kind],
            "central {kind}"
        );
    }
    // The audit as it stood at the backup: the lines written after it
    // (the backup's own, the stop) are not in it.
    let live_audit: Vec<&Value> = live["central"]["audit"]
        .as_array()
        .expect("as written above")
        .iter()
        .collect();
    for line in back["central"]["audit"]
        .as_array()
        .expect("as written above")
    {
        assert!(
            live_audit.contains(&line),
            "restored audit line not in the live log: {line}"
        );
    }
    assert!(std::fs::read(restored.join("erasure.key")).is_ok());

    // The backup under load is one moment of the tenant: every import
    // whole or absent, every message one the live store has.
    let loaded = root.path().join("loaded");
    restore(&files, Path::new(&under_load.path), &loaded);
    let then = dump(&loaded);
    let numbers = customer_numbers(&then);
    let mut whole = 0;
    for (i, b) in batches.iter().enumerate() {
        let held = b.intersection(&numbers).count();
        assert!(
            held == 0 || held == b.len(),
            "import {i} is in the backup in part: {held} of {} customers",
            b.len()
        );
        whole += usize::from(held == b.len());
    }
    let imports = then["tenant"]["imports"]
        .as_array()
        .expect("as written above")
        .len();
    assert_eq!(
        imports,
        1 + whole,
        "an import report for every import whole"
    );
    let live_messages: BTreeMap<u64, &Value> = live["tenant"]["messages"]
        .as_array()
        .expect("as written above")
        .iter()
        .map(|m| (m["id"].as_u64().expect("as written above"), m))
        .collect();
    let backed: Vec<&Value> = then["tenant"]["messages"]
        .as_array()
        .expect("as written above")
        .iter()
        .collect();
    assert_eq!(backed.len(), EMAILS, "every planned message");
    for m in backed {
        let l = live_messages[&m["id"].as_u64().expect("as written above")];
        for field in [
            "recipient",
            "message_id",
            "occasions",
            "send_on",
            "planned_at",
        ] {
            assert_eq!(m[field], l[field], "message {}: {field}", m["id"]);
        }
    }

    // And a daemon serves the restored state.
    let state_arg = loaded.display().to_string();
    let d = DaemonProcess::spawn_with(
        &files.config_file,
        &files.socket,
        &files.log.with_file_name("restored.log"),
        &["--state-dir", &state_arg],
    );
    let listed = touchpoint_ok(&files.socket, &["tenants"]);
    assert!(listed.contains(TENANT), "{listed}");
    // A line audited now comes after the restored ones (the restored
    // database's id generator starts anew): newest first, not in the past
    // or in a restored line's place.
    let again = root.path().join("after-restore");
    touchpoint_ok(&files.socket, &["backup", &again.display().to_string()]);
    let audit: serde_json::Value =
        serde_json::from_str(&touchpoint_ok(&files.socket, &["audit", "--json"]))
            .expect("audit json");
    let lines = audit.as_array().expect("audit lines");
    assert_eq!(lines[0]["action"], "backup", "{}", lines[0]);
    assert!(
        lines[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("after-restore")),
        "{}",
        lines[0]
    );
    let newest = lines[0]["seq"].as_u64().expect("seq");
    assert!(
        lines[1..].iter().all(|l| l["seq"].as_u64() < Some(newest)),
        "{audit}"
    );
    stop(d);
}

fn names(repo: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(repo)
        .expect("repo")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".lock")
        .collect();
    n.sort();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_a_backup_leaves_the_earlier_backup_whole() {
    let root = tempfile::tempdir().expect("tempdir");
    let files = files(root.path(), None);
    let repo = root.path().join("backups");
    let d = start(&files, "first.log").await;
    let kunden = root.path().join("kunden.csv");
    export(&kunden, 100_000, 3_000);
    let r = client(&files)
        .await
        .upload(&tid(TENANT), &kunden)
        .await
        .expect("import");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let first = backup(&files, &repo, None).await;

    // The second one, killed as soon as it is being written.
    let socket = files.socket.clone();
    let repo_arg = repo.display().to_string();
    let second = std::thread::spawn(move || touchpoint(&socket, &["backup", &repo_arg]));
    let deadline = Instant::now() + WAIT;
    let mut seen = false;
    while Instant::now() < deadline && !seen {
        seen = names(&repo).iter().any(|n| n.starts_with(".incomplete-"));
        if !seen {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert!(seen, "the second backup never started: {:?}", names(&repo));
    let mut d = d;
    d.signal(Signal::SIGKILL);
    d.wait_exit(WAIT).expect("killed");
    let out = second.join().expect("the client");
    let left: Vec<String> = names(&repo);
    let interrupted = left.iter().any(|n| n.starts_with(".incomplete-"));
    if interrupted {
        assert!(
            !out.status.success(),
            "a backup killed half way said it was written"
        );
    }

    // The daemon starts again; the first backup is whole, and so is every
    // backup the repository holds.
    let d = start(&files, "second.log").await;
    let first_name = Path::new(&first.path)
        .file_name()
        .expect("as written above")
        .to_string_lossy()
        .into_owned();
    assert!(left.contains(&first_name), "{left:?}");
    for n in left.iter().filter(|n| !n.starts_with('.')) {
        let b: PathBuf = repo.join(n);
        let v = touchpoint_ok(
            &files.socket,
            &["backup", "--verify", &b.display().to_string()],
        );
        assert!(v.contains("verifies"), "{n}: {v}");
    }
    // The next backup with --keep clears what the kill left.
    let third = touchpoint_ok(
        &files.socket,
        &["backup", &repo.display().to_string(), "--keep", "2"],
    );
    let after = names(&repo);
    assert!(
        after.iter().all(|n| !n.starts_with(".incomplete-")),
        "{after:?} after {third}"
    );
    if interrupted {
        assert!(third.contains("removed .incomplete-"), "{third}");
    }
    stop(d);

    // Restoring the repository takes its newest backup.
    let restored = root.path().join("restored");
    let said = restore(&files, &repo, &restored);
    let newest = after
        .iter()
        .rfind(|n| !n.starts_with('.'))
        .expect("as written above");
    assert!(said.contains(newest.as_str()), "{said}");
    assert_eq!(customer_numbers(&dump(&restored)).len(), 3_000);
}

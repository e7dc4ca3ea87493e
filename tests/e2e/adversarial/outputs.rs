//! The folders the daemon writes for others as a trust boundary: whoever
//! may write `letters/<tenant>/`, `mail/<tenant>/` (a lettershop's pickup
//! job) or reach the upload spool must not make the daemon (root) write,
//! truncate or delete anything outside them. A tenant folder that is a
//! link fails that tenant's batch with a clear error; other tenants go on;
//! the messages wait, and go once when the folder is a folder again.

use std::collections::BTreeMap;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use touchpoint::client::PlanArgs;
use touchpoint_common::domain::ImportStatus;
use touchpoint_common::outbox::{Message, MessageStatus};
use touchpoint_common::Date;
use touchpoint_tests::{fixture, tid, Options, TestDaemon};

use crate::common::{import_fixture, MAY};

const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);
const PRECIOUS: &str = "PRECIOUS DATA";

/// A daemon of the dispatch fixtures' dealers s001 and s002, without a
/// relay (email goes to `<state>/mail/`), batches closed on request only
/// (but for a test run in the day's last minute).
async fn dispatching() -> TestDaemon {
    let d = TestDaemon::start_with(Options {
        dealers: Vec::new(),
        dealer_files: ["s001.toml", "s002.toml"]
            .iter()
            .map(|f| fixture(&format!("dispatch/{f}")))
            .collect(),
        dispatch: Some("[dispatch]\ntick_ms = 50\nbatch_at = \"23:59\"\n".into()),
        ..Options::default()
    });
    // Dispatch requests are refused until the dispatcher is set up.
    let deadline = Instant::now() + WAIT;
    while d.client().await.dispatch_status().await.is_err() {
        assert!(Instant::now() < deadline, "dispatch did not start");
        tokio::time::sleep(POLL).await;
    }
    d
}

/// An export of customers `K-<first>`…, one per address, each with an HU
/// due on 2026-12-10: letters only, or email only where `email` is set.
fn export(dir: &Path, name: &str, first: usize, count: usize, email: bool) -> std::path::PathBuf {
    let mut csv = String::from(
        "Kundennummer;Anrede;Vorname;Nachname;Firma;Straße;PLZ;Ort;E-Mail;Telefon;Geburtsdatum;FIN;Marke;Modell;Erstzulassung;Letzter Service;km-Stand;Nächste HU;Garantieende;Einwilligung E-Mail;Einwilligung Post;Einwilligungsdatum\r\n",
    );
    for i in 0..count {
        let no = first + i;
        let (mail, email_ok, post_ok) = if email {
            (format!("kundin{no}@example.de"), "ja", "nein")
        } else {
            (String::new(), "nein", "ja")
        };
        csv.push_str(&format!(
            "K-{no};Frau;Brigitte;Kundin{no};;Postweg {house};{plz};München;{mail};;;WNWZZZ3CZNB{no:06};Nordwagen;Fjord;15.03.2022;20.01.2026;12.000;10.12.2026;;{email_ok};{post_ok};01.02.2024\r\n",
            house = i + 1,
            plz = 80331 + i,
        ));
    }
    let path = dir.join(name);
    std::fs::write(&path, csv).expect("write export");
    path
}

/// Imports `file` into `tenant` and plans it for a day in the past: what is
/// planned is due at once. Returns the planned messages.
async fn import_and_plan(d: &TestDaemon, tenant: &str, file: &Path) -> Vec<Message> {
    let mut c = d.client().await;
    let r = c.upload(&tid(tenant), file).await.expect("import");
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    let r = c
        .plan(PlanArgs {
            tenant: Some(tid(tenant)),
            day: Some(Date::from_ymd(2026, 11, 16).expect("day")),
            dry_run: false,
            policies: None,
            show: 500,
        })
        .await
        .expect("plan");
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    let planned: Vec<Message> = r.reports.into_iter().flat_map(|r| r.planned).collect();
    assert!(!planned.is_empty());
    planned
}

async fn message(d: &TestDaemon, tenant: &str, id: u64) -> Message {
    d.client()
        .await
        .message(&tid(tenant), id)
        .await
        .unwrap_or_else(|e| panic!("message {tenant}.{id}: {e}"))
}

/// Waits until every message of `ids` has `status`.
async fn wait_all(d: &TestDaemon, tenant: &str, ids: &[u64], status: MessageStatus) {
    let deadline = Instant::now() + WAIT;
    for &id in ids {
        loop {
            let m = message(d, tenant, id).await;
            if m.status == status {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{tenant}.{id} not {status:?}: {m:#?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

fn ls(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).expect("stat").mode() & 0o777
}

/// How often each message is listed in the manifests of `dir` (the
/// names here hold no separator, so a line splits at every comma).
fn in_manifests(dir: &Path) -> BTreeMap<u64, usize> {
    let mut out = BTreeMap::new();
    for name in ls(dir).iter().filter(|n| n.ends_with(".csv")) {
        let text = std::fs::read_to_string(dir.join(name)).expect("manifest");
        let mut lines = text.lines();
        let col = lines
            .next()
            .expect("header")
            .split(',')
            .position(|h| h == "message")
            .expect("message column");
        for line in lines {
            let id: u64 = line.split(',').nth(col).expect("cell").parse().expect("id");
            *out.entry(id).or_default() += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_letters_folder_that_is_a_link_fails_that_batch_only_and_loses_no_letter() {
    let d = dispatching().await;
    std::fs::set_permissions(&d.state_dir, std::fs::Permissions::from_mode(0o750))
        .expect("chmod state");
    let first = export(d.dir.path(), "s001-a.csv", 3000, 2, false);
    import_and_plan(&d, "s001", &first).await;
    let done = d
        .client()
        .await
        .run_batches(Some(&tid("s001")))
        .await
        .expect("first batch");
    assert_eq!(done.len(), 1, "{done:#?}");
    // Made by the daemon with the state directory's permissions, not the umask's.
    let letters = d.state_dir.join("letters");
    for p in [letters.clone(), letters.join("s001")] {
        assert_eq!(mode(&p), 0o750, "{}", p.display());
    }
    for f in &done[0].files {
        assert_eq!(mode(Path::new(f)), 0o640, "{f}");
    }

    // The pickup account swaps s002's folder for a link to one it reads.
    let loot = d.dir.path().join("loot");
    std::fs::create_dir(&loot).expect("loot");
    symlink(&loot, letters.join("s002")).expect("symlink");
    let more = export(d.dir.path(), "s001-b.csv", 3100, 2, false);
    let s001 = import_and_plan(&d, "s001", &more).await;
    let theirs = export(d.dir.path(), "s002.csv", 4000, 3, false);
    let s002 = import_and_plan(&d, "s002", &theirs).await;

    let r = d.client().await.run_batches(None).await;
    let e = r.expect_err("a batch through a link").to_string();
    let folder = letters.join("s002").display().to_string();
    assert!(
        e.contains("s002") && e.contains(&folder) && e.contains("not a folder"),
        "{e}"
    );
    assert!(
        ls(&loot).is_empty(),
        "letters behind the link: {:?}",
        ls(&loot)
    );
    // s001's batch went on.
    let in_s001 = in_manifests(&letters.join("s001"));
    for m in &s001 {
        assert_eq!(in_s001.get(&m.id), Some(&1), "{} in {in_s001:?}", m.id);
    }
    // s002's letters wait, untouched, and the status says why.
    for m in &s002 {
        let now = message(&d, "s002", m.id).await;
        assert_eq!(now.status, MessageStatus::Queued, "{now:#?}");
        assert_eq!(now.dispatch.batch, "", "{now:#?}");
    }
    let status = d.client().await.dispatch_status().await.expect("status");
    assert!(
        status.last_error.contains(&folder) && status.last_error.contains("not a folder"),
        "{status:#?}"
    );

    // A folder again: the letters go, each in one batch, once.
    std::fs::remove_file(letters.join("s002")).expect("unlink");
    let done = d
        .client()
        .await
        .run_batches(Some(&tid("s002")))
        .await
        .expect("s002's batch");
    assert_eq!(done.len(), 1, "{done:#?}");
    assert_eq!(done[0].messages, s002.len() as u64);
    let ids: Vec<u64> = s002.iter().map(|m| m.id).collect();
    wait_all(&d, "s002", &ids, MessageStatus::Sent).await;
    let in_s002 = in_manifests(&letters.join("s002"));
    assert_eq!(in_s002.len(), s002.len(), "{in_s002:?}");
    assert!(in_s002.values().all(|&n| n == 1), "{in_s002:?}");
    assert!(ls(&loot).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_mail_folder_that_is_a_link_holds_its_email_and_not_the_others() {
    let d = dispatching().await;
    let mail = d.state_dir.join("mail");
    let loot = d.dir.path().join("loot");
    std::fs::create_dir(&loot).expect("loot");
    std::fs::create_dir_all(&mail).expect("mail");
    symlink(&loot, mail.join("s001")).expect("symlink");

    let s001 = import_and_plan(&d, "s001", &export(d.dir.path(), "a.csv", 5000, 2, true)).await;
    let s002 = import_and_plan(&d, "s002", &export(d.dir.path(), "b.csv", 6000, 2, true)).await;
    // The other tenant's email goes.
    let ids2: Vec<u64> = s002.iter().map(|m| m.id).collect();
    wait_all(&d, "s002", &ids2, MessageStatus::Sent).await;
    assert_eq!(ls(&mail.join("s002")).len(), s002.len());
    // s001's waits, with the reason in the status.
    let folder = mail.join("s001").display().to_string();
    let deadline = Instant::now() + WAIT;
    loop {
        let s = d.client().await.dispatch_status().await.expect("status");
        if s.last_error.contains(&folder) && s.last_error.contains("not a folder") {
            break;
        }
        assert!(Instant::now() < deadline, "no error about {folder}: {s:#?}");
        tokio::time::sleep(POLL).await;
    }
    for m in &s001 {
        let now = message(&d, "s001", m.id).await;
        assert_eq!(now.status, MessageStatus::Queued, "{now:#?}");
    }
    assert!(
        ls(&loot).is_empty(),
        "email behind the link: {:?}",
        ls(&loot)
    );

    // A folder again: each email is spooled, once.
    std::fs::remove_file(mail.join("s001")).expect("unlink");
    let ids1: Vec<u64> = s001.iter().map(|m| m.id).collect();
    wait_all(&d, "s001", &ids1, MessageStatus::Sent).await;
    let expected: Vec<String> = {
        let mut v: Vec<String> = ids1.iter().map(|id| format!("{id:010}.eml")).collect();
        v.sort();
        v
    };
    assert_eq!(ls(&mail.join("s001")), expected);
    assert!(ls(&loot).is_empty());
}

/// The upload spool's names were predictable (`upload-<pid>-<n>`): links
/// planted there must not be written through.
#[tokio::test]
async fn links_at_upload_spool_names_are_not_written_through() {
    let d = TestDaemon::start();
    let spool = d.state_dir.join("spool");
    std::fs::create_dir_all(&spool).expect("spool");
    let victim = d.dir.path().join("victim");
    std::fs::write(&victim, PRECIOUS).expect("victim");
    for n in 0..4 {
        let name = format!("upload-{}-{n}", std::process::id());
        symlink(&victim, spool.join(name)).expect("symlink");
    }
    let r = d
        .client()
        .await
        .upload(&tid("d001"), &import_fixture(MAY))
        .await;
    assert_eq!(
        std::fs::read(&victim).expect("victim"),
        PRECIOUS.as_bytes(),
        "written through a link"
    );
    let r = r.expect("upload");
    assert_eq!(r.status, ImportStatus::Committed, "{r:#?}");
}

/// An upload spool that is a link: nothing is written behind it, and the
/// clean-up at start deletes nothing there.
#[tokio::test]
async fn an_upload_spool_that_is_a_link_is_neither_written_nor_cleared() {
    let root = tempfile::tempdir().expect("tempdir");
    let state = root.path().join("state");
    let loot = root.path().join("loot");
    std::fs::create_dir_all(&state).expect("state");
    std::fs::create_dir_all(&loot).expect("loot");
    std::fs::write(loot.join("keep.txt"), PRECIOUS).expect("keep");
    symlink(&loot, state.join("spool")).expect("symlink");

    let d = TestDaemon::start_with(Options {
        state_dir: Some(state.clone()),
        ..Options::default()
    });
    let r = d
        .client()
        .await
        .upload(&tid("d001"), &import_fixture(MAY))
        .await;
    assert_eq!(ls(&loot), ["keep.txt"]);
    assert_eq!(
        std::fs::read_to_string(loot.join("keep.txt")).expect("keep"),
        PRECIOUS
    );
    let e = r.expect_err("an upload through a link").to_string();
    assert!(
        e.contains(&state.join("spool").display().to_string()) && e.contains("not a folder"),
        "{e}"
    );
}

/// The folders the daemon makes for others to write into or collect from
/// (the inbox and its tenant folders, the upload spool) get the state
/// directory's permissions, not the umask's: a state directory closed to
/// others stays closed below.
#[tokio::test]
async fn folders_made_below_the_state_directory_get_its_permissions() {
    let root = tempfile::tempdir().expect("tempdir");
    let state = root.path().join("state");
    std::fs::create_dir(&state).expect("state");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let d = TestDaemon::start_with(Options {
        state_dir: Some(state.clone()),
        ..Options::default()
    });
    let r = d
        .client()
        .await
        .upload(&tid("d001"), &import_fixture(MAY))
        .await
        .expect("upload");
    assert_eq!(r.status, ImportStatus::Committed);
    for p in [
        state.join("inbox"),
        state.join("inbox/d001"),
        state.join("inbox/d003"),
        state.join("spool"),
    ] {
        assert_eq!(mode(&p), 0o700, "{}", p.display());
    }
}

//! The folders the daemon writes for others to collect (the email spool
//! `mail/`, letter batches `letters/`, call lists `calls/`) are a trust
//! boundary: whoever may write there (the lettershop's pickup job, say)
//! must not make the daemon (root) write anywhere else. A link planted at a
//! name the daemon writes, a tenant folder or output folder that is a
//! link: nothing is written through it, nothing outside changes, and the
//! write fails with an error that says what is wrong.

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use touchpoint_common::postage::Postage;
use touchpoint_common::{Date, TenantId};
use touchpointd::dispatch::calls::{self, CallTask};
use touchpointd::dispatch::letters::{self, BatchRequest};
use touchpointd::dispatch::spool::Spool;
use touchpointd::render::pdf::Letter;

const PRECIOUS: &str = "PRECIOUS DATA";

fn tid(s: &str) -> TenantId {
    TenantId::new(s).expect("tenant id")
}

fn day() -> Date {
    Date::from_ymd(2026, 11, 23).expect("date")
}

/// A file the daemon may write (another tenant's store, its key) that a
/// link points at.
fn victim(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, PRECIOUS).expect("victim");
    p
}

fn intact(p: &Path) {
    assert_eq!(
        std::fs::read_to_string(p).expect("victim still there"),
        PRECIOUS,
        "{} was written through a link",
        p.display()
    );
}

fn ls(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).expect("stat").mode() & 0o7777
}

fn envelope() -> lettre::address::Envelope {
    lettre::address::Envelope::new(
        Some("a@b.example".parse().expect("from")),
        vec!["c@d.example".parse().expect("to")],
    )
    .expect("envelope")
}

fn task(message: u64) -> CallTask {
    CallTask {
        message,
        customer_no: "K1".into(),
        name: "Kundin".into(),
        phone: "089 1".into(),
        service: "quality_check".into(),
        service_name: "Zufriedenheitsanruf".into(),
        occasions: "Werkstattbesuch".into(),
        due: day(),
        dealer: "Autohaus".into(),
    }
}

fn letter(message: u64) -> Letter {
    Letter {
        message,
        recipient: format!("K{message}"),
        address: vec![
            "Brigitte Kundin".into(),
            "Postweg 1".into(),
            "80331 München".into(),
        ],
        postcode: "80331".into(),
        sender_line: "Autohaus · Werkstraße 1 · 80339 München".into(),
        info: vec!["Autohaus".into()],
        logo: None,
        date: "23.11.2026".into(),
        body: "Hallo".into(),
    }
}

fn write_letters(root: &Path, tenant: &TenantId) -> Result<letters::BatchReport, String> {
    letters::write_batch(
        root,
        BatchRequest {
            tenant,
            day: day(),
            seq: 1,
            letters: vec![letter(1)],
            postage: &Postage::default(),
        },
    )
    .map_err(|e| e.to_string())
}

fn write_calls(root: &Path, tenant: &TenantId) -> Result<PathBuf, String> {
    calls::write_tasks(root, tenant, day(), 1, &[task(1)]).map_err(|e| e.to_string())
}

fn spool(root: &Path, tenant: &TenantId) -> Result<PathBuf, String> {
    Spool::new(root.to_path_buf())
        .write(tenant, 1, &envelope(), b"Subject: hi\r\n\r\nbody\r\n")
        .map_err(|e| e.to_string())
}

/// The review's demonstration: links planted at the hidden names the
/// daemon used for its temporary files.
#[test]
fn links_planted_at_temporary_names_are_not_written_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = tid("d001");
    let victim_mail = victim(dir.path(), "victim-mail");
    let victim_calls = victim(dir.path(), "victim-calls");
    let victim_pdf = victim(dir.path(), "victim-pdf");
    let victim_csv = victim(dir.path(), "victim-csv");
    for (sub, name, target) in [
        ("mail/d001", ".0000000001.eml.tmp", &victim_mail),
        (
            "calls/d001",
            ".calls-d001-2026-11-23-01.csv.tmp",
            &victim_calls,
        ),
        ("letters/d001", ".d001-2026-11-23-01.pdf.tmp", &victim_pdf),
        ("letters/d001", ".d001-2026-11-23-01.csv.tmp", &victim_csv),
    ] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        symlink(target, dir.path().join(sub).join(name)).expect("symlink");
    }

    let eml = spool(&dir.path().join("mail"), &t).expect("spooled");
    let list = write_calls(&dir.path().join("calls"), &t).expect("call list");
    let batch = write_letters(&dir.path().join("letters"), &t).expect("letter batch");

    for v in [&victim_mail, &victim_calls, &victim_pdf, &victim_csv] {
        intact(v);
    }
    // What was written stands under its own name, as a file of its own.
    let eml_text = std::fs::read_to_string(&eml).expect("eml");
    assert!(
        eml_text.starts_with("Return-Path: <a@b.example>"),
        "{eml_text}"
    );
    assert!(std::fs::read_to_string(&list)
        .expect("list")
        .starts_with("task_id,"));
    assert!(std::fs::read(&batch.pdf)
        .expect("pdf")
        .starts_with(b"%PDF-"));
    for p in [&eml, &list, &batch.pdf, &batch.manifest] {
        let m = std::fs::symlink_metadata(p).expect("stat");
        assert!(m.file_type().is_file() && m.nlink() == 1, "{}", p.display());
    }
}

/// A tenant folder replaced by a link to a folder the attacker can read:
/// another dealer's mail, letters and calls must not land there.
#[test]
fn a_tenant_folder_that_is_a_link_is_refused_and_nothing_lands_behind_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = tid("d002");
    let loot = dir.path().join("loot");
    std::fs::create_dir(&loot).expect("loot");
    for kind in ["mail", "calls", "letters"] {
        std::fs::create_dir(dir.path().join(kind)).expect("mkdir");
        symlink(&loot, dir.path().join(kind).join("d002")).expect("symlink");
    }

    let errors = [
        spool(&dir.path().join("mail"), &t).expect_err("spool through a link"),
        write_calls(&dir.path().join("calls"), &t).expect_err("call list through a link"),
        write_letters(&dir.path().join("letters"), &t).expect_err("letters through a link"),
    ];
    for (kind, e) in ["mail", "calls", "letters"].iter().zip(&errors) {
        let folder = dir.path().join(kind).join("d002");
        assert!(
            e.contains(&folder.display().to_string()) && e.contains("not a folder"),
            "{kind}: {e}"
        );
    }
    assert!(
        ls(&loot).is_empty(),
        "written behind the link: {:?}",
        ls(&loot)
    );
    // The link is left as it is: the daemon neither follows nor removes it.
    for kind in ["mail", "calls", "letters"] {
        let p = dir.path().join(kind).join("d002");
        assert!(std::fs::symlink_metadata(&p)
            .expect("still there")
            .file_type()
            .is_symlink());
    }
}

/// A tenant "folder" that is a file, and an output folder that is a link:
/// refused alike.
#[test]
fn an_output_folder_that_is_a_link_or_a_tenant_folder_that_is_a_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loot = dir.path().join("loot");
    std::fs::create_dir(&loot).expect("loot");
    for kind in ["mail", "calls", "letters"] {
        symlink(&loot, dir.path().join(kind)).expect("symlink");
    }
    let t = tid("d001");
    assert!(spool(&dir.path().join("mail"), &t)
        .expect_err("spool")
        .contains("not a folder"));
    assert!(write_calls(&dir.path().join("calls"), &t)
        .expect_err("calls")
        .contains("not a folder"));
    assert!(write_letters(&dir.path().join("letters"), &t)
        .expect_err("letters")
        .contains("not a folder"));
    assert!(
        ls(&loot).is_empty(),
        "written behind the link: {:?}",
        ls(&loot)
    );

    let real = dir.path().join("real");
    std::fs::create_dir(&real).expect("real");
    std::fs::write(real.join("d001"), "a file").expect("file");
    let e = spool(&real, &t).expect_err("a file as tenant folder");
    assert!(e.contains("not a folder"), "{e}");
    assert_eq!(
        std::fs::read_to_string(real.join("d001")).expect("file"),
        "a file"
    );
}

/// Files and tenant folders get the permissions the output folder
/// implies, not the umask's: here only the daemon's user may read them.
#[test]
fn written_files_get_the_output_folders_permissions_not_the_umasks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = tid("d001");
    for kind in ["mail", "calls", "letters"] {
        let p = dir.path().join(kind);
        std::fs::create_dir(&p).expect("mkdir");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    }
    let eml = spool(&dir.path().join("mail"), &t).expect("spooled");
    let list = write_calls(&dir.path().join("calls"), &t).expect("call list");
    let batch = write_letters(&dir.path().join("letters"), &t).expect("letters");
    for kind in ["mail", "calls", "letters"] {
        let folder = dir.path().join(kind).join("d001");
        assert_eq!(mode(&folder), 0o700, "{}", folder.display());
    }
    for p in [&eml, &list, &batch.pdf, &batch.manifest] {
        assert_eq!(mode(p), 0o600, "{}", p.display());
    }

    // A folder the pickup group may read: so may it the files, no more.
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o770)).expect("chmod");
    let list = write_calls(&shared, &t).expect("call list");
    assert_eq!(mode(&shared.join("d001")), 0o770);
    assert_eq!(mode(&list), 0o640);
}

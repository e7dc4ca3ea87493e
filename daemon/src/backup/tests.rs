use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use touchpoint_common::domain::ImportReport;

use super::*;
use crate::testkit::{one_tenant, person};

/// Stores in `dir/state` with d001 holding customers `nos` (the last one
/// removed again when `remove_last`), a secret beside them, and their
/// backups writer.
fn setup(dir: &Path, nos: &[&str]) -> (Arc<Stores>, Backups) {
    let state = dir.join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    let (stores, store) = one_tenant(&state);
    let id = store.next_import_id().expect("id");
    let mut tx = store.begin_import(id).expect("begin");
    for no in nos {
        tx.put_customer(&person(no).email().build()).expect("put");
    }
    tx.commit(&ImportReport::new(
        id,
        store.id().clone(),
        "kunden.csv",
        "h1",
        Timestamp(0),
    ))
    .expect("commit");
    drop(store);
    std::fs::write(state.join("erasure.key"), [7u8; 32]).expect("key");
    let stores = Arc::new(stores);
    let backups = Backups::new(
        stores.clone(),
        vec![
            ("erasure.key".into(), state.join("erasure.key")),
            (DISPATCH_KEY.into(), state.join("no-such.key")),
        ],
    );
    (stores, backups)
}

fn files_holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    walk(dir)
        .expect("walk")
        .into_iter()
        .filter(|(p, t)| {
            t.is_file()
                && std::fs::read(p)
                    .expect("read")
                    .windows(needle.len())
                    .any(|w| w == needle)
        })
        .map(|(p, _)| p)
        .collect()
}

fn invalid(r: Result<Verified>) -> Vec<String> {
    match r {
        Err(BackupError::Invalid(f)) => f,
        Err(e) => panic!("not a finding: {e}"),
        Ok(_) => panic!("verified"),
    }
}

#[test]
fn a_backup_verifies_restores_whole_and_holds_the_records_and_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stores, backups) = setup(dir.path(), &["K1", "K2"]);
    let repo = dir.path().join("backups");

    let done = backups.run(&repo, None).expect("backup");

    assert!(is_backup_name(
        done.path
            .file_name()
            .expect("as set up")
            .to_str()
            .expect("as set up")
    ));
    let m = &done.manifest;
    assert_eq!(m.stores.len(), 2, "central and d001");
    let tenant = m.stores.iter().find(|s| s.tenant.is_some()).expect("d001");
    assert_eq!(tenant.records.get("customers"), Some(&2));
    assert_eq!(
        m.secrets,
        vec!["erasure.key".to_string()],
        "a missing secret is left out"
    );
    assert_eq!(
        std::fs::metadata(&repo)
            .expect("as set up")
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    // The repository's own name, or a backup's: both verify.
    assert_eq!(verify(&repo).expect("verifies").path, done.path);
    verify(&done.path).expect("verifies");

    let restored = dir.path().join("restored");
    restore(&repo, &restored).expect("restore");
    assert!(!restored.join(RESTORE_MARKER).exists());
    assert_eq!(
        std::fs::read(restored.join("erasure.key")).expect("as set up"),
        vec![7u8; 32]
    );
    let again = Stores::open(&restored, &Default::default()).expect("opens");
    let t = again
        .tenant(&TenantId::new("d001").expect("as set up"))
        .expect("tenant");
    assert!(t.customer("K1").expect("as set up").is_some());
    assert!(t.customer("K2").expect("as set up").is_some());
    drop(t);
    again.close_all().expect("close");
    // The live stores still serve after their copy.
    let t = stores
        .tenant(&TenantId::new("d001").expect("as set up"))
        .expect("open");
    assert!(t.customer("K1").expect("as set up").is_some());
}

#[test]
fn what_was_removed_from_a_store_is_not_in_its_backup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stores, backups) = setup(dir.path(), &["K1"]);
    let t = stores
        .tenant(&TenantId::new("d001").expect("as set up"))
        .expect("open");
    let id = t.next_import_id().expect("id");
    let mut tx = t.begin_import(id).expect("begin");
    tx.put_customer(&person("K9").email().build()).expect("put");
    tx.commit(&ImportReport::new(
        id,
        t.id().clone(),
        "k.csv",
        "h2",
        Timestamp(0),
    ))
    .expect("commit");
    let k9 = t.customer("K9").expect("as set up").expect("K9");
    t.erase_people(&["K9".to_string()].into(), &[k9], &[])
        .expect("erase");
    t.flush().expect("flush");
    drop(t);
    // sled still holds it in its log: the reason a backup copies records.
    assert!(!files_holding(&dir.path().join("state"), b"k9@example.org").is_empty());

    let done = backups.run(&dir.path().join("b"), None).expect("backup");

    assert_eq!(
        files_holding(&done.path, b"k9@example.org"),
        Vec::<PathBuf>::new()
    );
    assert!(!files_holding(&done.path, b"k1@example.org").is_empty());
}

#[test]
fn verify_names_every_damaged_missing_extra_or_linked_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_stores, backups) = setup(dir.path(), &["K1"]);
    let done = backups.run(&dir.path().join("b"), None).expect("backup");
    let b = &done.path;
    let largest = done
        .manifest
        .files
        .iter()
        .filter(|f| f.path.starts_with("tenants/"))
        .max_by_key(|f| f.bytes)
        .expect("a tenant file")
        .path
        .clone();

    // One byte flipped.
    let mut bytes = std::fs::read(b.join(&largest)).expect("as set up");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(b.join(&largest), &bytes).expect("as set up");
    let f = invalid(verify(b));
    assert_eq!(
        f,
        vec![format!("{largest}: its content does not match its hash")]
    );
    bytes[mid] ^= 0x55;
    std::fs::write(b.join(&largest), &bytes).expect("as set up");
    verify(b).expect("whole again");

    // Missing, extra, a link.
    std::fs::rename(b.join("secrets/erasure.key"), dir.path().join("k")).expect("as set up");
    std::fs::write(b.join("tenants/stray"), b"x").expect("as set up");
    std::os::unix::fs::symlink("/etc/passwd", b.join("central/link")).expect("as set up");
    let mut f = invalid(verify(b));
    f.sort();
    assert_eq!(
        f,
        vec![
            "central/link: not a regular file (a link?)".to_string(),
            "secrets/erasure.key: missing".to_string(),
            "tenants/stray: not in the manifest".to_string(),
        ]
    );
}

#[test]
fn a_changed_manifest_or_one_leading_out_of_the_backup_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_stores, backups) = setup(dir.path(), &["K1"]);
    let done = backups.run(&dir.path().join("b"), None).expect("backup");
    let b = &done.path;
    let text = std::fs::read_to_string(b.join(MANIFEST)).expect("as set up");

    std::fs::write(
        b.join(MANIFEST),
        text.replacen("\"customers\": 1", "\"customers\": 2", 1),
    )
    .expect("as set up");
    assert!(invalid(verify(b))[0].contains("does not match manifest.blake3"));

    // Consistent with its hash, but a path out of the backup.
    let evil = text.replacen(
        "\"path\": \"secrets/erasure.key\"",
        "\"path\": \"../../x\"",
        1,
    );
    assert_ne!(evil, text);
    std::fs::write(b.join(MANIFEST), &evil).expect("as set up");
    std::fs::write(
        b.join(MANIFEST_HASH),
        format!("{}\n", blake3::hash(evil.as_bytes()).to_hex()),
    )
    .expect("as set up");
    assert!(invalid(verify(b))[0].contains("leaves the backup"));

    // Consistent, but a count that is not what the store holds.
    let miscounted = text.replacen("\"customers\": 1", "\"customers\": 2", 1);
    std::fs::write(b.join(MANIFEST), &miscounted).expect("as set up");
    std::fs::write(
        b.join(MANIFEST_HASH),
        format!("{}\n", blake3::hash(miscounted.as_bytes()).to_hex()),
    )
    .expect("as set up");
    let f = invalid(verify(b));
    assert_eq!(
        f,
        vec!["tenants/d001/store: tree customers: 1 records, the manifest says 2".to_string()],
        "counted from a scratch copy"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("b"))
        .expect("as set up")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(VERIFYING))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn keep_removes_the_oldest_backups_and_what_an_interrupted_one_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_stores, backups) = setup(dir.path(), &["K1"]);
    let repo = dir.path().join("b");
    let first = backups.run(&repo, None).expect("first");
    let second = backups.run(&repo, None).expect("second");
    std::fs::create_dir(repo.join(".incomplete-20991231T000000Z")).expect("as set up");
    assert!(matches!(
        backups.run(&repo, Some(0)),
        Err(BackupError::Refused(_))
    ));

    let third = backups.run(&repo, Some(2)).expect("third");

    assert_eq!(
        third.removed,
        vec![
            first
                .path
                .file_name()
                .expect("as set up")
                .to_string_lossy()
                .into_owned(),
            ".incomplete-20991231T000000Z".to_string()
        ]
    );
    assert!(!first.path.exists());
    assert!(second.path.exists() && third.path.exists());
    assert_eq!(finished(&repo).expect("as set up").len(), 2);
    // Two in one second get their own names, in order.
    assert!(backup_order("20261207T021500Z-10") > backup_order("20261207T021500Z-2"));
    assert!(backup_order("20261207T021500Z-2") > backup_order("20261207T021500Z"));
    assert!(!is_backup_name("20261207T021500Z-"));
    assert!(!is_backup_name("../20261207T0215"));
}

#[test]
fn a_repository_that_is_a_link_relative_or_busy_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_stores, backups) = setup(dir.path(), &["K1"]);
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("as set up");
    std::os::unix::fs::symlink(&elsewhere, dir.path().join("link")).expect("as set up");

    let e = backups
        .run(&dir.path().join("link"), None)
        .expect_err("refused");
    assert!(e.to_string().contains("a symbolic link"), "{e}");
    let e = backups
        .run(Path::new("relative/b"), None)
        .expect_err("refused");
    assert!(e.to_string().contains("absolute"), "{e}");

    let repo = dir.path().join("b");
    std::fs::create_dir(&repo).expect("as set up");
    let held = lock(&repo).expect("lock");
    let e = backups.run(&repo, None).expect_err("refused");
    assert!(e.to_string().contains("another backup"), "{e}");
    drop(held);
    backups.run(&repo, None).expect("free again");
    assert_eq!(std::fs::read_dir(&elsewhere).expect("as set up").count(), 0);
}

#[test]
fn a_restore_wants_an_empty_folder_and_an_unfinished_one_stops_the_stores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_stores, backups) = setup(dir.path(), &["K1"]);
    let repo = dir.path().join("b");
    backups.run(&repo, None).expect("backup");

    let full = dir.path().join("full");
    std::fs::create_dir(&full).expect("as set up");
    std::fs::write(full.join("something"), b"x").expect("as set up");
    let e = restore(&repo, &full).expect_err("refused");
    assert!(e.to_string().contains("not empty"), "{e}");

    // A restore killed half way: the marker stays, and no daemon starts
    // on half a state directory.
    let half = dir.path().join("half");
    std::fs::create_dir(&half).expect("as set up");
    std::fs::write(half.join(RESTORE_MARKER), b"restoring\n").expect("as set up");
    let e = Stores::open(&half, &Default::default())
        .err()
        .expect("refused");
    assert!(e.to_string().contains("did not finish"), "{e}");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("as set up");
    restore(&repo, &empty).expect("into an empty folder");
}

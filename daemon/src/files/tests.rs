#![allow(clippy::unwrap_used)]

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

use super::*;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn ls(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

#[test]
fn perms_follow_the_folder_without_write_for_others_or_execute() {
    assert_eq!(
        Perms::of_mode(0o750),
        Perms {
            dir: 0o750,
            file: 0o640
        }
    );
    assert_eq!(
        Perms::of_mode(0o700),
        Perms {
            dir: 0o700,
            file: 0o600
        }
    );
    assert_eq!(
        Perms::of_mode(0o777),
        Perms {
            dir: 0o777,
            file: 0o644
        }
    );
    assert_eq!(
        Perms::of_mode(0o42770),
        Perms {
            dir: 0o2770,
            file: 0o640
        },
        "set-group-id kept for folders, the file type and sticky bits dropped"
    );
}

#[test]
fn temporary_names_are_random_hidden_and_recognised() {
    let a = temp_name();
    let b = temp_name();
    assert_ne!(a, b);
    for n in [&a, &b] {
        assert!(is_temp_name(n.as_bytes()), "{n}");
        assert!(n.starts_with(".tp-") && n.ends_with(".tmp"), "{n}");
    }
    for other in [
        ".d001-2026-11-23-01.pdf.tmp",
        ".tp-.tmp",
        ".tp-0123456789abcdeg.tmp",
        "tp-0123456789abcdef.tmp",
        "d001-2026-11-23-01.pdf",
    ] {
        assert!(!is_temp_name(other.as_bytes()), "{other}");
    }
}

#[test]
fn an_output_folder_is_made_with_its_parents_permissions_and_passes_its_own_on() {
    let t = tempfile::tempdir().unwrap();
    chmod(t.path(), 0o750);
    let root = Dir::output(&t.path().join("out")).unwrap();
    assert_eq!(mode(&t.path().join("out")), 0o750);
    assert_eq!(root.perms(), Perms::of_mode(0o750));
    let sub = root.sub("d001").unwrap();
    assert_eq!(mode(&t.path().join("out/d001")), 0o750);
    let p = sub.write("x.csv", &[b"a,", b"b\n"], Replace::No).unwrap();
    assert_eq!(p, t.path().join("out/d001/x.csv"));
    assert_eq!(std::fs::read(&p).unwrap(), b"a,b\n");
    assert_eq!(mode(&p), 0o640);

    // An existing folder's own permissions count.
    chmod(&t.path().join("out"), 0o700);
    let root = Dir::output(&t.path().join("out")).unwrap();
    let p = root.write("y", &[b"y"], Replace::No).unwrap();
    assert_eq!(mode(&p), 0o600);
    // Missing parents of a root are made (the administrator's path).
    Dir::output(&t.path().join("a/b/c")).unwrap();
    assert!(t.path().join("a/b/c").is_dir());
}

#[test]
fn folders_that_are_links_or_files_are_refused_not_followed() {
    let t = tempfile::tempdir().unwrap();
    let elsewhere = t.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    symlink(&elsewhere, t.path().join("root-link")).unwrap();
    assert!(matches!(
        Dir::output(&t.path().join("root-link")),
        Err(FilesError::NotAFolder { .. })
    ));
    assert!(matches!(
        Dir::open(&t.path().join("root-link"), Perms::PRIVATE),
        Err(FilesError::NotAFolder { .. })
    ));
    assert!(Dir::open(&t.path().join("missing"), Perms::PRIVATE)
        .unwrap()
        .is_none());

    let root = Dir::output(&t.path().join("root")).unwrap();
    symlink(&elsewhere, t.path().join("root/d002")).unwrap();
    std::fs::write(t.path().join("root/d003"), "file").unwrap();
    symlink(t.path().join("nowhere"), t.path().join("root/d004")).unwrap();
    for name in ["d002", "d003", "d004"] {
        let e = root.sub(name).unwrap_err();
        assert!(matches!(e, FilesError::NotAFolder { .. }), "{name}: {e}");
        assert!(
            e.to_string().starts_with(&format!(
                "{}: not a folder",
                t.path().join("root").join(name).display()
            )),
            "{e}"
        );
        assert!(matches!(
            root.open_sub(name),
            Err(FilesError::NotAFolder { .. })
        ));
    }
    assert!(root.open_sub("d005").unwrap().is_none());
    for bad in ["", ".", "..", "a/b"] {
        assert!(
            matches!(root.sub(bad), Err(FilesError::BadName { .. })),
            "{bad:?}"
        );
    }
    assert!(ls(&elsewhere).is_empty());
    assert!(
        !t.path().join("nowhere").exists(),
        "a dangling link was followed"
    );
}

#[test]
fn a_link_at_the_final_name_is_replaced_itself_or_refused_never_written_through() {
    let t = tempfile::tempdir().unwrap();
    let victim = t.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let root = Dir::output(&t.path().join("out")).unwrap();
    symlink(&victim, t.path().join("out/a.eml")).unwrap();
    symlink(&victim, t.path().join("out/b.csv")).unwrap();

    root.write("a.eml", &[b"mail"], Replace::Yes).unwrap();
    assert_eq!(
        std::fs::read_to_string(t.path().join("out/a.eml")).unwrap(),
        "mail"
    );
    assert!(std::fs::symlink_metadata(t.path().join("out/a.eml"))
        .unwrap()
        .is_file());
    let e = root.write("b.csv", &[b"list"], Replace::No).unwrap_err();
    assert!(matches!(e, FilesError::Exists { .. }), "{e}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    // The refused write left no temporary file.
    assert_eq!(ls(&t.path().join("out")), ["a.eml", "b.csv"]);
}

#[test]
fn reading_and_removing_never_follow_a_link() {
    let t = tempfile::tempdir().unwrap();
    let victim = t.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let root = Dir::output(&t.path().join("out")).unwrap();
    symlink(&victim, t.path().join("out/link")).unwrap();
    assert!(root.open_read("link").is_err());
    assert!(!root.is_file("link").unwrap());
    assert_eq!(root.kind("link").unwrap(), Some(SFlag::S_IFLNK));
    root.remove("link").unwrap();
    root.remove("link").unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(ls(&t.path().join("out")).is_empty());
}

#[test]
fn leftover_temporary_files_are_removed_and_nothing_else() {
    let t = tempfile::tempdir().unwrap();
    let victim = t.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let root = Dir::output(&t.path().join("out")).unwrap();
    let (_, kept) = root.temp().unwrap().keep().unwrap();
    let linked = temp_name();
    symlink(&victim, t.path().join("out").join(&linked)).unwrap();
    let folder = temp_name();
    std::fs::create_dir(t.path().join("out").join(&folder)).unwrap();
    std::fs::write(t.path().join("out/.d001-x.pdf.tmp"), "older").unwrap();
    std::fs::write(t.path().join("out/d001.pdf"), "batch").unwrap();

    assert_eq!(root.remove_temps().unwrap(), 2);
    let mut left = vec![folder, ".d001-x.pdf.tmp".into(), "d001.pdf".into()];
    left.sort();
    assert_eq!(ls(&t.path().join("out")), left);
    assert!(!t.path().join("out").join(kept).exists());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

#[test]
fn a_temporary_file_is_gone_when_dropped_and_renamed_across_folders_without_replacing() {
    let t = tempfile::tempdir().unwrap();
    let root = Dir::output(&t.path().join("out")).unwrap();
    {
        let mut tmp = root.temp().unwrap();
        tmp.write_all(b"half").unwrap();
        assert_eq!(ls(&t.path().join("out")), [tmp.name().to_string()]);
    }
    assert!(ls(&t.path().join("out")).is_empty());

    let done = root.sub("done").unwrap();
    root.write("f", &[b"1"], Replace::No).unwrap();
    done.write("f", &[b"2"], Replace::No).unwrap();
    let e = rename_at(&root, OsStr::new("f"), &done, OsStr::new("f"), Replace::No).unwrap_err();
    assert!(matches!(e, FilesError::Exists { .. }), "{e}");
    rename_at(&root, OsStr::new("f"), &done, OsStr::new("g"), Replace::No).unwrap();
    assert_eq!(ls(&t.path().join("out/done")), ["f", "g"]);
    assert_eq!(std::fs::read(t.path().join("out/done/g")).unwrap(), b"1");
    let mut names = root.names().unwrap();
    names.sort();
    assert_eq!(names, [OsString::from("done")]);
}

#![allow(clippy::unwrap_used)]

use touchpoint_common::config::DispatchConfig;

use super::*;
use crate::dispatch::engine::fixture::*;
use crate::dispatch::engine::*;

#[test]
fn a_relay_ca_file_that_cannot_be_read_stops_the_start_with_its_name() {
    let fx = Fx::new();
    let mut cfg = DispatchConfig::default();
    cfg.smtp.host = "127.0.0.1".into();
    cfg.smtp.ca_file = fx.dir.path().join("no-such-ca.pem").display().to_string();
    let paths = DispatchPaths {
        spool: fx.dir.path().join("mail2"),
        letters: fx.dir.path().join("letters2"),
        calls: fx.dir.path().join("calls2"),
        secret: fx.dir.path().join("dispatch2.key"),
        bounce_maildir: None,
        batch_at: 0,
    };
    let err = match Dispatcher::new(fx.stores.clone(), fx.policies.clone(), &cfg, paths.clone()) {
        Ok(_) => panic!("a missing CA file must stop the start"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("dispatch.smtp.ca_file") && err.contains("no-such-ca.pem"),
        "{err}"
    );
    // A file that holds no certificate is refused as well.
    std::fs::write(fx.dir.path().join("no-such-ca.pem"), "not a certificate").unwrap();
    assert!(Dispatcher::new(fx.stores.clone(), fx.policies.clone(), &cfg, paths).is_err());
}

/// The signing key is the daemon's alone and is written as a new file: a
/// link planted where its temporary file used to go (`dispatch.tmp`) is not
/// written through, and a dangling link at its name is an error, not
/// followed.
#[test]
fn the_key_is_written_for_the_daemon_only_and_through_no_link() {
    use std::os::unix::fs::{symlink, MetadataExt};
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    symlink(&victim, dir.path().join("dispatch.tmp")).unwrap();
    let key = dir.path().join("dispatch.key");
    let first = load_secret(&key).unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let meta = std::fs::symlink_metadata(&key).unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(load_secret(&key).unwrap(), first, "read back, not replaced");

    let dangling = dir.path().join("other.key");
    symlink(dir.path().join("nowhere"), &dangling).unwrap();
    let e = load_secret(&dangling).unwrap_err().to_string();
    assert!(e.contains("dangling symbolic link"), "{e}");
    assert!(!dir.path().join("nowhere").exists());
}

/// Temporary files a crash left in tenants' output folders go at start;
/// batches, other hidden files and whatever a linked tenant folder points
/// to stay.
#[test]
fn temporary_files_left_by_a_crash_are_removed_at_start_and_nothing_else() {
    let fx = Fx::new();
    let loot = fx.path("loot");
    std::fs::create_dir_all(&loot).unwrap();
    let leftover = ".tp-0123456789abcdef.tmp";
    std::fs::write(loot.join(leftover), "not the daemon's").unwrap();
    for kind in ["letters", "calls", "mail"] {
        let t = fx.path(kind).join("d001");
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(t.join(leftover), "torn").unwrap();
        std::fs::write(t.join("kept.csv"), "whole").unwrap();
        std::fs::write(t.join(".hidden"), "someone's").unwrap();
        std::os::unix::fs::symlink(&loot, fx.path(kind).join("d003")).unwrap();
    }
    drop(fx.restarted());
    for kind in ["letters", "calls", "mail"] {
        let mut names: Vec<String> = std::fs::read_dir(fx.path(kind).join("d001"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".hidden", "kept.csv"], "{kind}");
    }
    assert!(loot.join(leftover).exists());
}

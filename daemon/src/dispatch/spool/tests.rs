#![allow(clippy::unwrap_used)]

use std::fs;

use super::*;

const MESSAGE: &[u8] = "From: Autohaus Müller <service@autohaus.test>\r\n\
To: kunde@example.test\r\n\
Subject: Ihr Termin\r\n\
\r\n\
Grüß Gott,\r\n\
.bis bald\r\n"
    .as_bytes();

fn tid(s: &str) -> TenantId {
    TenantId::new(s).unwrap()
}

fn envelope(from: Option<&str>, to: &[&str]) -> Envelope {
    Envelope::new(
        from.map(|f| f.parse().unwrap()),
        to.iter().map(|t| t.parse().unwrap()).collect(),
    )
    .unwrap()
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_message_is_the_envelope_lines_then_its_exact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::new(dir.path().join("spool"));
    let env = envelope(
        Some("bounce+d001.42@autohaus.test"),
        &["kunde@example.test", "zweite@example.test"],
    );
    let path = spool.write(&tid("d001"), 42, &env, MESSAGE).unwrap();
    assert_eq!(path, dir.path().join("spool/d001/0000000042.eml"));
    let written = fs::read(&path).unwrap();
    let head = b"Return-Path: <bounce+d001.42@autohaus.test>\r\n\
X-Original-To: kunde@example.test\r\n\
X-Original-To: zweite@example.test\r\n";
    assert_eq!(&written[..head.len()], head);
    assert_eq!(&written[head.len()..], MESSAGE);

    let parsed = mail_parser::MessageParser::default()
        .parse(&written)
        .unwrap();
    assert_eq!(
        parsed.return_address(),
        Some("bounce+d001.42@autohaus.test")
    );
    assert_eq!(parsed.subject(), Some("Ihr Termin"));
    assert_eq!(
        parsed.body_text(0).as_deref(),
        Some("Grüß Gott,\r\n.bis bald\r\n")
    );
}

#[test]
fn a_retry_replaces_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::new(dir.path().to_path_buf());
    let env = envelope(Some("a@autohaus.test"), &["kunde@example.test"]);
    spool
        .write(&tid("d001"), 7, &env, b"Subject: one\r\n\r\nx\r\n")
        .unwrap();
    let path = spool
        .write(&tid("d001"), 7, &env, b"Subject: two\r\n\r\nx\r\n")
        .unwrap();
    assert_eq!(files(&dir.path().join("d001")), vec!["0000000007.eml"]);
    let written = String::from_utf8(fs::read(path).unwrap()).unwrap();
    assert!(written.ends_with("Subject: two\r\n\r\nx\r\n"), "{written}");
    // Another tenant, another directory.
    spool.write(&tid("d002"), 7, &env, MESSAGE).unwrap();
    assert_eq!(files(dir.path()), vec!["d001", "d002"]);
}

#[test]
fn null_sender_and_bare_lf_messages() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::new(dir.path().to_path_buf());
    let env = envelope(None, &["kunde@example.test"]);
    let path = spool
        .write(&tid("d001"), 1, &env, b"Subject: lf\n\nbody\n")
        .unwrap();
    assert_eq!(
        fs::read(path).unwrap(),
        b"Return-Path: <>\nX-Original-To: kunde@example.test\nSubject: lf\n\nbody\n"
    );
}

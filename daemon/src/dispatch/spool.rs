//! The local spool: with no relay configured, email is written to a
//! directory as `.eml` files, so a demo needs no mail server.
//!
//! A message goes to `<dir>/<tenant>/<message:010>.eml`: the bytes that
//! would have gone to the relay, after the header lines a final delivery
//! agent adds for the envelope (RFC 5321 4.4, Postfix's `local`):
//!
//! ```text
//! Return-Path: <bounce+…@brand.example>      (`<>` for a null sender)
//! X-Original-To: kunde@example.org            (one per envelope recipient)
//! ```
//!
//! Everything after those lines is the message, byte for byte. The added
//! lines end like the message's first line (CRLF, or LF for a message in
//! bare LF), so mail readers see one consistent file.
//!
//! A file is written to a hidden temp file beside it, fsynced, renamed
//! over its final name, and the directory is fsynced. The name depends on
//! tenant and message id only, so a retry after a crash replaces the file
//! instead of adding a second one; a crash in the middle leaves at most a
//! `.<message:010>.eml.tmp`, which the retry overwrites.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use lettre::address::Envelope;
use touchpoint_common::TenantId;

/// The spool directory. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// A spool under `dir` (created on the first write).
    pub fn new(dir: PathBuf) -> Spool {
        Spool { dir }
    }

    /// The directory this spool writes to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `write` puts a message.
    pub fn path_of(&self, tenant: &TenantId, message: u64) -> PathBuf {
        self.dir
            .join(tenant.as_str())
            .join(format!("{message:010}.eml"))
    }

    /// Writes one message durably and returns its path. Writing the same
    /// tenant and message again replaces the file.
    pub fn write(
        &self,
        tenant: &TenantId,
        message: u64,
        envelope: &Envelope,
        bytes: &[u8],
    ) -> io::Result<PathBuf> {
        let path = self.path_of(tenant, message);
        let dir = path
            .parent()
            .ok_or_else(|| io::Error::other("spool path without a directory"))?;
        fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{message:010}.eml.tmp"));
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&envelope_lines(envelope, bytes))?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        File::open(dir)?.sync_all()?;
        Ok(path)
    }
}

/// `Return-Path:` and `X-Original-To:` lines, ended like the message's
/// first line.
fn envelope_lines(envelope: &Envelope, bytes: &[u8]) -> Vec<u8> {
    let eol: &str = match bytes.iter().position(|&b| b == b'\n') {
        Some(i) if i == 0 || bytes[i - 1] != b'\r' => "\n",
        _ => "\r\n",
    };
    let mut s = String::new();
    let from = envelope.from().map(|a| a.as_ref()).unwrap_or("");
    s.push_str(&format!("Return-Path: <{from}>{eol}"));
    for to in envelope.to() {
        s.push_str(&format!("X-Original-To: {}{eol}", to.as_ref() as &str));
    }
    s.into_bytes()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
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
}

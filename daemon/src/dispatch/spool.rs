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
//! A file is written as a new file under a random hidden name in the
//! tenant's folder, fsynced, renamed over its final name, and the folder is
//! fsynced; the folders are reached without following links and one that
//! is not a real folder is an error (see [`crate::files`]: a mail pickup
//! may write there). The name depends on tenant and message id only, so a
//! retry after a crash replaces the file instead of adding a second one; a
//! crash in the middle leaves at most a temporary file, removed at the next
//! start.

use std::io;
use std::path::{Path, PathBuf};

use lettre::address::Envelope;
use touchpoint_common::TenantId;

use crate::files::{Dir, FilesError, Replace};

/// The spool directory. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Spool {
    dir: PathBuf,
}

/// The name of a message's file in its tenant's folder of the spool.
pub fn file_name(message: u64) -> String {
    format!("{message:010}.eml")
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
        self.dir.join(tenant.as_str()).join(file_name(message))
    }

    /// The tenant's folder, made if missing; an error if it (or the spool)
    /// is not a real folder.
    pub fn tenant_folder(&self, tenant: &TenantId) -> Result<Dir, FilesError> {
        Dir::output(&self.dir)?.sub(tenant.as_str())
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
        let out = self.tenant_folder(tenant)?;
        let head = envelope_lines(envelope, bytes);
        Ok(out.write(file_name(message), &[&head, bytes], Replace::Yes)?)
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
mod tests;

//! The MIME message of one email, as a bulk sender must write it.
//!
//! - `Message-ID` fixed at planning, so a retry is recognisably the same
//!   message and replies and bounces name it.
//! - The envelope sender (MAIL FROM) is the message's own VERP address, so a
//!   bounce names the message it is about ([`super::verp`]).
//! - `List-Unsubscribe` with a `mailto:` and an `https:` link and
//!   `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058), which
//!   large mailbox providers require of bulk senders.
//! - `multipart/alternative` with a text and an HTML part, UTF-8, with the
//!   transfer encoding lettre picks per part; non-ASCII header text is
//!   RFC 2047-encoded by lettre.
//! - Optionally DKIM-signed (RSA or Ed25519), covering the headers above:
//!   RFC 8058 wants the unsubscribe headers under the signature.

use std::error::Error as StdError;
use std::time::SystemTime;

use lettre::address::{Address, Envelope};
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig as SigningConfig,
    DkimSigningAlgorithm, DkimSigningKey,
};
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use touchpoint_common::config::DkimConfig;
use touchpoint_common::outbox::Message;
use touchpoint_common::TenantId;

use super::verp;
use crate::render::RenderedEmail;

/// Everything one email is built from.
pub struct MailParts<'a> {
    /// The outbox message: `id` for the VERP addresses, `message_id` for the header.
    pub message: &'a Message,
    pub tenant: &'a TenantId,
    /// The dealer as sender: display name and address.
    pub from_name: &'a str,
    pub from: &'a str,
    /// Where replies go, if not to `from` (an empty string counts as none).
    pub reply_to: Option<&'a str>,
    pub to_name: &'a str,
    pub to: &'a str,
    pub rendered: &'a RenderedEmail,
    /// The one-click unsubscribe link ([`unsubscribe_url`]), the same the
    /// body links to.
    pub unsubscribe_url: &'a str,
    /// The brand's `email.bounce_domain`: VERP return path and unsubscribe mailbox.
    pub bounce_domain: &'a str,
    /// The daemon's secret that signs the VERP addresses and the token.
    pub secret: &'a [u8; 32],
    pub date: SystemTime,
}

/// A message ready for the transport.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// MAIL FROM (the VERP address) and RCPT TO.
    pub envelope: Envelope,
    /// The message as sent, CRLF line ends.
    pub bytes: Vec<u8>,
    /// The recipient's domain, lower case: what throttles are keyed by.
    pub domain: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MimeError {
    #[error("{what} {value:?} is not an email address: {reason}")]
    Address {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("unsubscribe link {0:?} cannot stand in a List-Unsubscribe header")]
    UnsubscribeUrl(String),
    #[error("building the message: {0}")]
    Build(String),
    #[error("DKIM key {file}: {reason}")]
    Key { file: String, reason: String },
}

/// The brand's one-click unsubscribe page with the message's token:
/// `{base}?t={token}` (`&t=` when `base` has a query already).
pub fn unsubscribe_url(base: &str, tenant: &TenantId, id: u64, secret: &[u8; 32]) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!(
        "{base}{sep}t={}",
        verp::unsubscribe_token(tenant, id, secret)
    )
}

/// The daemon's own one-click endpoint for the message: `{base}/u/{token}`
/// (`base` is `[http] public_url`, without a trailing `/`).
pub fn one_click_url(base: &str, tenant: &TenantId, id: u64, secret: &[u8; 32]) -> String {
    format!("{base}/u/{}", verp::unsubscribe_token(tenant, id, secret))
}

/// Builds (and, given a key, signs) the message.
pub fn build(parts: &MailParts, dkim: Option<&Dkim>) -> Result<Outgoing, MimeError> {
    let to = address("To", parts.to)?;
    let from = address("From", parts.from)?;
    let id = parts.message.id;
    let bounce = address(
        "return path",
        &verp::bounce_address(parts.tenant, id, parts.bounce_domain, parts.secret),
    )?;
    let mailto = verp::unsubscribe_address(parts.tenant, id, parts.bounce_domain, parts.secret);
    let url = parts.unsubscribe_url;
    if url.is_empty() || url.contains(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | ',')) {
        return Err(MimeError::UnsubscribeUrl(url.to_string()));
    }
    let envelope = Envelope::new(Some(bounce), vec![to.clone()])
        .map_err(|e| MimeError::Build(e.to_string()))?;
    let domain = to.domain().to_ascii_lowercase();

    let mut builder = lettre::Message::builder()
        .message_id(Some(parts.message.message_id.clone()))
        .date(parts.date)
        .from(Mailbox::new(display_name(parts.from_name), from))
        .to(Mailbox::new(display_name(parts.to_name), to))
        .subject(parts.rendered.subject.clone())
        .header(ListUnsubscribe {
            mailto,
            url: url.to_string(),
        })
        .header(ListUnsubscribePost)
        .envelope(envelope.clone());
    if let Some(reply_to) = parts.reply_to.filter(|r| !r.trim().is_empty()) {
        builder = builder.reply_to(Mailbox::new(
            display_name(parts.from_name),
            address("Reply-To", reply_to)?,
        ));
    }
    let mut message = builder
        .multipart(MultiPart::alternative_plain_html(
            parts.rendered.text.clone(),
            parts.rendered.html.clone(),
        ))
        .map_err(|e| MimeError::Build(e.to_string()))?;
    if let Some(dkim) = dkim {
        message.sign(&dkim.config);
    }
    Ok(Outgoing {
        envelope,
        bytes: message.formatted(),
        domain,
    })
}

fn address(what: &'static str, value: &str) -> Result<Address, MimeError> {
    value
        .trim()
        .parse()
        .map_err(|e: lettre::address::AddressError| MimeError::Address {
            what,
            value: value.to_string(),
            reason: e.to_string(),
        })
}

fn display_name(name: &str) -> Option<String> {
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

// ----- headers lettre does not know -------------------------------------------

type BoxError = Box<dyn StdError + Send + Sync>;

/// `List-Unsubscribe: <mailto:…>, <https://…>` (RFC 2369, RFC 8058).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListUnsubscribe {
    /// The address without `mailto:`.
    pub mailto: String,
    pub url: String,
}

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, BoxError> {
        let mut mailto = None;
        let mut url = None;
        for item in s.split(',') {
            let item = item.trim();
            let inner = item
                .strip_prefix('<')
                .and_then(|i| i.strip_suffix('>'))
                .ok_or_else(|| format!("{item:?} is not in angle brackets"))?;
            match inner.strip_prefix("mailto:") {
                Some(m) => mailto = Some(m.to_string()),
                None => url = Some(inner.to_string()),
            }
        }
        match (mailto, url) {
            (Some(mailto), Some(url)) => Ok(Self { mailto, url }),
            _ => Err("expected a mailto: and a web link".into()),
        }
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(
            Self::name(),
            format!("<mailto:{}>, <{}>", self.mailto, self.url),
        )
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058): the web
/// link unsubscribes on a POST, without a page to click through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListUnsubscribePost;

const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(s: &str) -> Result<Self, BoxError> {
        if s.trim() == ONE_CLICK {
            Ok(Self)
        } else {
            Err(format!("expected {ONE_CLICK}, got {s:?}").into())
        }
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), ONE_CLICK.to_string())
    }
}

// ----- DKIM -----------------------------------------------------------------------

/// Headers under the signature. One that a message lacks (Reply-To) is
/// signed as absent, so it cannot be added in transit. Not `Content-Type`:
/// lettre signs the message's own headers before it adds the multipart's
/// `Content-Type`, so a signature listing it would never verify.
const SIGNED: [&str; 9] = [
    "From",
    "Reply-To",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
];

/// A DKIM signing key for one sender domain, loaded once.
pub struct Dkim {
    config: SigningConfig,
    domain: String,
    selector: String,
}

impl std::fmt::Debug for Dkim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Dkim")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .finish_non_exhaustive()
    }
}

impl Dkim {
    /// Reads the PEM key file: RSA (PKCS#1 `RSA PRIVATE KEY` or PKCS#8
    /// `PRIVATE KEY`) or Ed25519 (PKCS#8).
    pub fn load(cfg: &DkimConfig) -> Result<Dkim, MimeError> {
        let err = |reason: String| MimeError::Key {
            file: cfg.key_file.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&cfg.key_file).map_err(|e| err(e.to_string()))?;
        let key = signing_key(&text).map_err(err)?;
        Ok(Self::new(&cfg.domain, &cfg.selector, key))
    }

    fn new(domain: &str, selector: &str, key: DkimSigningKey) -> Dkim {
        let headers = SIGNED
            .iter()
            .map(|h| HeaderName::new_from_ascii_str(h))
            .collect();
        let config = SigningConfig::new(
            selector.to_string(),
            domain.to_string(),
            key,
            headers,
            // Relaxed both ways: survives relays that refold headers or
            // trim trailing spaces.
            DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            },
        );
        Dkim {
            config,
            domain: domain.to_string(),
            selector: selector.to_string(),
        }
    }

    /// The signing domain (`d=`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn selector(&self) -> &str {
        &self.selector
    }
}

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// lettre takes RSA keys as PKCS#1 PEM and Ed25519 keys as the base64 of
/// the 32-byte seed; OpenSSL writes both as PKCS#8 by default.
fn signing_key(pem_text: &str) -> Result<DkimSigningKey, String> {
    let (label, der) = pem(pem_text)?;
    let (algorithm, lettre_form) = match label.as_str() {
        "RSA PRIVATE KEY" => (DkimSigningAlgorithm::Rsa, pkcs1_pem(&der)),
        "PRIVATE KEY" => {
            let (oid, key) = pkcs8(&der).ok_or("not a PKCS#8 private key")?;
            if oid == OID_RSA {
                (DkimSigningAlgorithm::Rsa, pkcs1_pem(key))
            } else if oid == OID_ED25519 {
                // The key is itself an OCTET STRING holding the seed.
                let (tag, seed, _) = der_item(key).ok_or("malformed Ed25519 key")?;
                if tag != 0x04 || seed.len() != 32 {
                    return Err("malformed Ed25519 key".into());
                }
                (DkimSigningAlgorithm::Ed25519, base64_encode(seed))
            } else {
                return Err("neither an RSA nor an Ed25519 key".into());
            }
        }
        "ENCRYPTED PRIVATE KEY" => {
            return Err("the key is encrypted; DKIM keys are read without a passphrase".into())
        }
        other => return Err(format!("a PEM {other:?}, expected a private key")),
    };
    DkimSigningKey::new(&lettre_form, algorithm).map_err(|e| e.to_string())
}

/// The label and bytes of the first PEM block.
fn pem(text: &str) -> Result<(String, Vec<u8>), String> {
    let mut lines = text.lines().map(str::trim);
    let label = lines
        .by_ref()
        .find_map(|l| l.strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .ok_or("not a PEM file (no -----BEGIN line)")?
        .to_string();
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    for line in lines.by_ref() {
        if line == end {
            let der = base64_decode(&body).ok_or("the PEM body is not base64")?;
            return Ok((label, der));
        }
        if line.contains(':') {
            return Err("the key is encrypted; DKIM keys are read without a passphrase".into());
        }
        body.push_str(line);
    }
    Err(format!("no {end} line"))
}

fn pkcs1_pem(der: &[u8]) -> String {
    let b64 = base64_encode(der);
    let mut out = String::from("-----BEGIN RSA PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END RSA PRIVATE KEY-----\n");
    out
}

/// `PrivateKeyInfo ::= SEQUENCE { version, SEQUENCE { OID, params }, OCTET STRING key, .. }`
/// → (OID, key).
fn pkcs8(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (tag, info, _) = der_item(der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, _version, rest) = der_item(info)?;
    if tag != 0x02 {
        return None;
    }
    let (tag, alg, rest) = der_item(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, oid, _) = der_item(alg)?;
    if tag != 0x06 {
        return None;
    }
    let (tag, key, _) = der_item(rest)?;
    (tag == 0x04).then_some((oid, key))
}

/// One DER item: (tag, contents, what follows).
fn der_item(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        if c == b'=' {
            break;
        }
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;

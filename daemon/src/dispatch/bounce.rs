//! Mail that comes back: delivery reports, non-standard bounces,
//! auto-replies and unsubscribe requests, read from a maildir the relay
//! delivers our bounce domain into.
//!
//! [`classify`] answers two questions about one raw mail: which message is
//! it about (its [`Classified::target`]), and what does it say (its
//! [`Verdict`]).
//!
//! The target comes first from the recipient headers the relay adds
//! (`Delivered-To`, `X-Original-To`, `Envelope-To`, then `To` and
//! `Return-Path`), which carry one of our VERP addresses ([`super::verp`]).
//! When a relay rewrote the envelope, a delivery report still quotes the
//! original message: its `List-Unsubscribe` or `Return-Path` may hold a
//! VERP address or token, and failing that its `Message-ID` names the
//! message, though without a tag to prove we made it ([`MatchedBy`]). A
//! VERP-shaped address with a wrong tag is a forgery or damage: such a mail
//! gets no target at all, so it cannot mark an address dead.
//!
//! The verdict, in order of trust:
//! 1. A delivery status report (RFC 3464 `multipart/report`): its
//!    per-recipient `Action` and `Status` decide, whatever else the mail
//!    says (Gmail and Exim mark their reports `Auto-Submitted` too).
//! 2. An auto-reply named as such (`X-Autoreply`, `X-Autorespond`,
//!    `Precedence: auto_reply`, an out-of-office or challenge subject). An
//!    absence notice says the address works: it is never a bounce.
//! 3. A bounce in prose (Exim, qmail, old Postfix, provider notices) sent to
//!    a bounce address: the status comes from the SMTP reply quoted in the
//!    text. One from a mailer daemon is read before step 2, so that a
//!    returned subject like "Please confirm your appointment" cannot make a
//!    bounce look like a challenge.
//! 4. Softer auto-reply marks (`Auto-Submitted` other than `no`,
//!    `Precedence: bulk|junk|list`, `X-Auto-Response-Suppress`).
//! 5. Anything else sent to an unsubscribe address is an unsubscribe. There
//!    only step 2 and `Auto-Submitted: auto-replied` make an auto-reply;
//!    the softer marks of step 4 do not, since a provider acting on the
//!    recipient's unsubscribe click may set them.
//!
//! [`Maildir`] gives the caller the mails to read, oldest name first, and
//! files each one under `cur/` when it has been acted on, so a mail is
//! processed once; a crash between acting and [`Maildir::done`] only means
//! it is read again, which the caller's idempotent actions absorb.

use std::borrow::Cow;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use mail_parser::{HeaderForm, HeaderValue, Message, MessageParser, MimeHeaders, PartType};
use touchpoint_common::{limits, TenantId};

use super::verp::{self, VerpKind};

/// What a returned mail says about the message it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Permanent failure (status class 5): the address is dead.
    HardBounce {
        /// Enhanced status code (RFC 3463), e.g. `5.1.1`.
        status: String,
        /// The remote server's reply or the report's diagnostic, as given.
        diagnostic: String,
        /// The address that failed, when the report names it.
        recipient: Option<String>,
    },
    /// Temporary failure or delay (status class 4): try again later.
    SoftBounce { status: String, diagnostic: String },
    /// The recipient asked to stop.
    Unsubscribe,
    /// An out-of-office, vacation or challenge-response mail: the address
    /// works, nothing to do.
    AutoReply { reason: String },
    /// Not understood, or not to be trusted (e.g. a forged VERP tag).
    Unknown { reason: String },
}

impl Verdict {
    /// A short stable name for logs and counters: `hard`, `soft`,
    /// `unsubscribe`, `autoreply` or `unknown`.
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::HardBounce { .. } => "hard",
            Verdict::SoftBounce { .. } => "soft",
            Verdict::Unsubscribe => "unsubscribe",
            Verdict::AutoReply { .. } => "autoreply",
            Verdict::Unknown { .. } => "unknown",
        }
    }
}

/// How the target was found, i.e. how far it can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchedBy {
    /// A VERP address with a valid tag in the recipient headers.
    Recipient,
    /// A VERP address or unsubscribe token with a valid tag in the quoted
    /// original message.
    QuotedVerp,
    /// Only our `Message-ID` in the quoted original. It carries no tag:
    /// anyone who knows the format can write one.
    QuotedMessageId,
}

/// One classified mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classified {
    /// The message it is about: for a match in the recipient headers the
    /// kind of address it came to; for a match in a quoted original always
    /// [`VerpKind::Bounce`].
    pub target: Option<(VerpKind, TenantId, u64)>,
    pub verdict: Verdict,
    /// The decoded subject, empty if there is none.
    pub subject: String,
    /// How `target` was found; `None` exactly when `target` is.
    pub matched_by: Option<MatchedBy>,
}

/// Headers the relay (or the sender) puts our address in, most reliable
/// first.
const RECIPIENT_HEADERS: [&str; 5] = [
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "To",
    "Return-Path",
];

/// Classifies one raw mail addressed to our bounce domain `domain`, whose
/// VERP tags are made with `secret`.
///
/// Anyone who gets one of our emails can send a mail here, so every text
/// the answer carries (a diagnostic, a reason quoting a header, an address,
/// the subject) is made one short clean line ([`limits::outside`]) before
/// anything stores, logs or shows it.
pub fn classify(raw: &[u8], domain: &str, secret: &[u8; 32]) -> Classified {
    let mut c = classify_unbounded(raw, domain, secret);
    c.verdict.bound();
    bound(&mut c.subject, limits::OUTSIDE_CHARS);
    c
}

fn bound(text: &mut String, max: usize) {
    *text = limits::outside_owned(std::mem::take(text), max);
}

impl Verdict {
    fn bound(&mut self) {
        match self {
            Verdict::HardBounce {
                status,
                diagnostic,
                recipient,
            } => {
                bound(status, limits::ECHO_CHARS);
                bound(diagnostic, limits::OUTSIDE_CHARS);
                if let Some(r) = recipient {
                    bound(r, limits::NAME_CHARS);
                }
            }
            Verdict::SoftBounce { status, diagnostic } => {
                bound(status, limits::ECHO_CHARS);
                bound(diagnostic, limits::OUTSIDE_CHARS);
            }
            Verdict::Unsubscribe => {}
            Verdict::AutoReply { reason } | Verdict::Unknown { reason } => {
                bound(reason, limits::OUTSIDE_CHARS)
            }
        }
    }
}

fn classify_unbounded(raw: &[u8], domain: &str, secret: &[u8; 32]) -> Classified {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return Classified {
            target: None,
            verdict: Verdict::Unknown {
                reason: "not a mail message (no headers)".into(),
            },
            subject: String::new(),
            matched_by: None,
        };
    };
    let subject = msg.subject().unwrap_or_default().trim().to_string();

    let recipient = recipient_target(&msg, domain, secret);
    let (target, matched_by) = match recipient {
        RecipientMatch::Valid(t) => (Some(t), Some(MatchedBy::Recipient)),
        RecipientMatch::Forged(addr) => {
            return Classified {
                target: None,
                verdict: Verdict::Unknown {
                    reason: format!("forged or damaged VERP address {addr}"),
                },
                subject,
                matched_by: None,
            };
        }
        RecipientMatch::None => match quoted_target(&msg, domain, secret) {
            Some((t, by)) => (Some(t), Some(by)),
            None => (None, None),
        },
    };

    let verdict = verdict(&msg, &subject, target.as_ref().map(|t| t.0));
    Classified {
        target,
        verdict,
        subject,
        matched_by,
    }
}

fn verdict(msg: &Message<'_>, subject: &str, kind: Option<VerpKind>) -> Verdict {
    let report = delivery_report(msg);
    if kind == Some(VerpKind::Unsubscribe) {
        if report.is_some() {
            return Verdict::Unknown {
                reason: "delivery report sent to an unsubscribe address".into(),
            };
        }
        // Mistaking a request to stop for an auto-reply keeps mailing someone
        // who objected; the other mistake only pauses a vacationer. So only
        // a mail that calls itself a reply is not an unsubscribe: a mail
        // client or provider acting on the recipient's click may well mark
        // its request `Auto-Submitted: auto-generated`.
        if let Some(reason) = named_autoreply(msg, subject).or_else(|| auto_replied(msg)) {
            return Verdict::AutoReply { reason };
        }
        return Verdict::Unsubscribe;
    }

    if let Some(report) = report {
        return report_verdict(&report);
    }
    let to_bounce = kind == Some(VerpKind::Bounce);
    let prose = prose_bounce(msg, subject);
    if let Some(v) = &prose {
        if to_bounce && from_mailer_daemon(msg) {
            return v.clone();
        }
    }
    if let Some(reason) = named_autoreply(msg, subject) {
        return Verdict::AutoReply { reason };
    }
    if let Some(v) = prose {
        return if to_bounce {
            v
        } else {
            Verdict::Unknown {
                reason: "bounce text not addressed to a bounce address".into(),
            }
        };
    }
    if let Some(reason) = marked_autoreply(msg) {
        return Verdict::AutoReply { reason };
    }
    Verdict::Unknown {
        reason: "neither a delivery report, a bounce nor an auto-reply".into(),
    }
}

// ---------------------------------------------------------------------------
// Target

enum RecipientMatch {
    Valid((VerpKind, TenantId, u64)),
    Forged(String),
    None,
}

/// Every address in the values of header `name`: parsed as an address list,
/// plus the raw value itself (for values the address parser does not take).
fn header_addresses(msg: &Message<'_>, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for value in msg.header_as(name, HeaderForm::Addresses) {
        if let HeaderValue::Address(a) = value {
            out.extend(
                a.iter()
                    .filter_map(|a| a.address.as_deref().map(str::to_string)),
            );
        }
    }
    for value in msg.header_as(name, HeaderForm::Raw) {
        if let HeaderValue::Text(t) = value {
            out.push(t.into_owned());
        }
    }
    out
}

fn recipient_target(msg: &Message<'_>, domain: &str, secret: &[u8; 32]) -> RecipientMatch {
    let mut forged = None;
    for name in RECIPIENT_HEADERS {
        for addr in header_addresses(msg, name) {
            if let Some(t) = verp::parse(&addr, domain, secret) {
                return RecipientMatch::Valid(t);
            }
            if forged.is_none() && verp::looks_like_verp(&addr, domain) {
                forged = Some(addr);
            }
        }
    }
    forged.map_or(RecipientMatch::None, RecipientMatch::Forged)
}

/// The original message a report quotes: its headers, from a
/// `message/rfc822` part, a `text/rfc822-headers` part, or the copy a
/// prose bounce appends below its text.
fn quoted_originals<'a>(msg: &'a Message<'a>) -> Vec<Message<'a>> {
    let parser = MessageParser::default();
    let mut out = Vec::new();
    for part in &msg.parts {
        if let PartType::Message(inner) = &part.body {
            if let Some(m) = parser.parse_headers(inner.raw_message()) {
                out.push(m);
            }
            continue;
        }
        let Some(ct) = part.content_type() else {
            continue;
        };
        let sub = ct.subtype().unwrap_or_default();
        if sub.eq_ignore_ascii_case("rfc822-headers") || sub.eq_ignore_ascii_case("global-headers")
        {
            if let Some(m) = parser.parse_headers(part.contents()) {
                out.push(m);
            }
        }
    }
    if out.is_empty() {
        for text in text_bodies(msg) {
            if let Some(start) = copy_start(&text) {
                let copy = text[start..].as_bytes().to_vec();
                if let Some(m) = MessageParser::default().parse_headers(&copy) {
                    out.push(m.into_owned());
                }
            }
        }
    }
    out
}

fn quoted_target(
    msg: &Message<'_>,
    domain: &str,
    secret: &[u8; 32],
) -> Option<((VerpKind, TenantId, u64), MatchedBy)> {
    let originals = quoted_originals(msg);
    for orig in &originals {
        for (name, raw) in orig.headers_raw() {
            let verp_header = name.eq_ignore_ascii_case("List-Unsubscribe")
                || name.eq_ignore_ascii_case("Return-Path")
                || name.eq_ignore_ascii_case("Sender");
            if !verp_header {
                continue;
            }
            for item in raw.split(',') {
                let item = item.trim().trim_start_matches('<').trim_end_matches('>');
                if let Some((_, tenant, id)) = verp::parse(item, domain, secret) {
                    return Some(((VerpKind::Bounce, tenant, id), MatchedBy::QuotedVerp));
                }
                if let Some(token) = url_token(item) {
                    if let Some((tenant, id)) = verp::parse_unsubscribe_token(token, secret) {
                        return Some(((VerpKind::Bounce, tenant, id), MatchedBy::QuotedVerp));
                    }
                }
            }
        }
    }
    originals.iter().find_map(|orig| {
        let (tenant, id) = verp::message_id_target(orig.message_id()?)?;
        Some(((VerpKind::Bounce, tenant, id), MatchedBy::QuotedMessageId))
    })
}

/// The token of an unsubscribe URL: the brand page's `t=` query
/// parameter, or the last segment of the daemon's own `…/u/{token}`.
fn url_token(url: &str) -> Option<&str> {
    let url = url.split('#').next().unwrap_or(url);
    if let Some((path, query)) = url.split_once('?') {
        if let Some(t) = query.split('&').find_map(|kv| kv.strip_prefix("t=")) {
            return Some(t);
        }
        return path_token(path);
    }
    path_token(url)
}

fn path_token(path: &str) -> Option<&str> {
    let (_, token) = path.rsplit_once("/u/")?;
    (!token.is_empty() && !token.contains('/')).then_some(token)
}

// ---------------------------------------------------------------------------
// Delivery status reports (RFC 3464)

/// The per-recipient fields of a delivery status report that matter here.
#[derive(Debug, Default)]
struct RecipientReport {
    action: String,
    status: String,
    diagnostic: String,
    recipient: Option<String>,
}

/// The recipients of the report's `message/delivery-status` part(s), if the
/// mail has one with at least one recipient that has an action or status.
fn delivery_report(msg: &Message<'_>) -> Option<Vec<RecipientReport>> {
    let mut recipients = Vec::new();
    for part in &msg.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let sub = ct.subtype().unwrap_or_default();
        if ct.ctype().eq_ignore_ascii_case("message")
            && (sub.eq_ignore_ascii_case("delivery-status")
                || sub.eq_ignore_ascii_case("global-delivery-status"))
        {
            let text = String::from_utf8_lossy(part.contents());
            recipients.extend(parse_delivery_status(&text));
        }
    }
    (!recipients.is_empty()).then_some(recipients)
}

/// Parses the field groups of a delivery-status body: groups are separated
/// by blank lines, fields may be folded. The first group is about the
/// message, the others about one recipient each.
fn parse_delivery_status(text: &str) -> Vec<RecipientReport> {
    let mut groups: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if groups.last().is_some_and(|g| !g.is_empty()) {
                groups.push(Vec::new());
            }
            continue;
        }
        let Some(group) = groups.last_mut() else {
            continue;
        };
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = group.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            group.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }

    let mut out = Vec::new();
    for group in groups {
        let field = |name: &str| {
            group
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let action = field("action").map(|a| first_word(a).to_ascii_lowercase());
        let status = field("status").map(|s| first_word(s).to_string());
        if action.is_none() && status.is_none() {
            continue;
        }
        let recipient = field("final-recipient")
            .or_else(|| field("original-recipient"))
            .map(strip_type)
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        out.push(RecipientReport {
            action: action.unwrap_or_default(),
            status: status.unwrap_or_default(),
            diagnostic: field("diagnostic-code")
                .map(|d| strip_type(d).to_string())
                .unwrap_or_default(),
            recipient,
        });
    }
    out
}

fn first_word(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or_default()
}

/// `rfc822; a@b` → `a@b`, `smtp; 550 …` → `550 …`.
fn strip_type(v: &str) -> &str {
    v.split_once(';').map_or(v, |(_, rest)| rest).trim()
}

/// The status class digit of an enhanced status code like `5.1.1`.
fn status_class(status: &str) -> Option<u8> {
    let mut parts = status.split('.');
    let class = parts.next()?;
    let (subject, detail) = (parts.next()?, parts.next()?);
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    if parts.next().is_some() || !digits(subject, 3) || !digits(detail, 3) {
        return None;
    }
    match class {
        "2" => Some(2),
        "4" => Some(4),
        "5" => Some(5),
        _ => None,
    }
}

fn report_verdict(recipients: &[RecipientReport]) -> Verdict {
    // We send one recipient per message; should a report list several, the
    // worst outcome is the one to act on.
    let pick = recipients
        .iter()
        .find(|r| r.action == "failed")
        .or_else(|| recipients.iter().find(|r| r.action == "delayed"))
        .or_else(|| recipients.first());
    let Some(r) = pick else {
        return Verdict::Unknown {
            reason: "delivery report without recipients".into(),
        };
    };
    // Status is required by RFC 3464, but some reporters leave it out and
    // only quote the server's reply.
    let status = if status_class(&r.status).is_some() {
        r.status.clone()
    } else {
        smtp_status(&r.diagnostic)
            .map(|(s, _)| s)
            .unwrap_or_default()
    };
    let class = status_class(&status);
    match (r.action.as_str(), class) {
        ("failed" | "", Some(5)) => Verdict::HardBounce {
            status,
            diagnostic: r.diagnostic.clone(),
            recipient: r.recipient.clone(),
        },
        ("failed" | "delayed" | "", Some(4)) => Verdict::SoftBounce {
            status,
            diagnostic: r.diagnostic.clone(),
        },
        ("delayed", _) => Verdict::SoftBounce {
            status: if status.is_empty() {
                "4.0.0".into()
            } else {
                status
            },
            diagnostic: r.diagnostic.clone(),
        },
        (action, _) => Verdict::Unknown {
            reason: format!(
                "delivery report with action {:?} and status {:?}",
                action, r.status
            ),
        },
    }
}

// ---------------------------------------------------------------------------
// Bounces in prose

/// Subjects of bounces that are not RFC 3464 reports (lower case).
const BOUNCE_SUBJECTS: &[&str] = &[
    "mail delivery failed",
    "undelivered mail returned to sender",
    "failure notice",
    "delivery status notification (failure)",
    "delivery status notification (delay)",
    "delivery failure",
    "delivery has failed",
    "undeliverable",
    "unzustellbar",
    "nicht zustellbar",
    "returned mail",
    "delayed mail",
    "mail delivery delayed",
    "zustellung fehlgeschlagen",
    "fehler bei der zustellung",
];

/// Sentences mail delivery software writes (lower case).
const BOUNCE_PHRASES: &[&str] = &[
    "this message was created automatically by mail delivery software",
    "i'm afraid i wasn't able to deliver",
    "i'm sorry to have to inform you that your message could not",
    "your message could not be delivered",
    "could not be delivered to one or more",
    "has not yet been delivered to one or more",
    "delivery to the following recipient",
    "delivery has failed to these recipients",
    "the following address(es) failed",
    "konnte nicht zugestellt werden",
    "konnte nicht ausgeliefert werden",
    "nachricht nicht zustellen",
    "unable to deliver your message",
];

/// Lines after which a prose bounce appends the returned message
/// (lower case, matched within the line).
const COPY_MARKERS: &[&str] = &[
    "this is a copy of the message",
    "below this line is a copy of the message",
    "original message follows",
    "header of the original message",
    "original message headers",
    "kopie der nachricht",
    "ursprüngliche nachricht",
    "ursprünglichen nachricht",
    "--- the original message ---",
];

/// Byte offset where the returned copy starts (the line after its marker).
fn copy_start(text: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        offset += line.len();
        let lower = line.to_lowercase();
        if COPY_MARKERS.iter().any(|m| lower.contains(m)) {
            return Some(offset);
        }
    }
    None
}

/// The root's plain-text bodies, in order.
fn text_bodies<'a>(msg: &'a Message<'a>) -> Vec<Cow<'a, str>> {
    msg.text_body
        .iter()
        .filter_map(|&id| msg.parts.get(id as usize))
        .filter_map(|part| match &part.body {
            PartType::Text(t) => Some(Cow::Borrowed(t.as_ref())),
            _ => None,
        })
        .collect()
}

fn from_mailer_daemon(msg: &Message<'_>) -> bool {
    msg.from().is_some_and(|from| {
        from.iter().any(|a| {
            let local = a
                .address
                .as_deref()
                .and_then(|a| a.split('@').next())
                .unwrap_or_default()
                .to_ascii_lowercase();
            let name = a.name.as_deref().unwrap_or_default().to_lowercase();
            matches!(
                local.as_str(),
                "mailer-daemon" | "mailerdaemon" | "mail-daemon" | "postmaster"
            ) || name.contains("mail delivery")
                || name.contains("mailer-daemon")
        })
    })
}

/// A bounce in prose: its shape (subject or typical sentence) and the
/// status quoted in the report text above the returned copy.
fn prose_bounce(msg: &Message<'_>, subject: &str) -> Option<Verdict> {
    let subject = subject.to_lowercase();
    let bodies = text_bodies(msg);
    let report: String = bodies
        .iter()
        .map(|b| &b[..copy_start(b).unwrap_or(b.len())])
        .collect::<Vec<_>>()
        .join("\n");
    let lower = report.to_lowercase();
    let shaped = BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s))
        || BOUNCE_PHRASES.iter().any(|p| lower.contains(p));
    if !shaped {
        return None;
    }

    let (status, diagnostic) = if let Some(found) = smtp_status(&report) {
        found
    } else if let Some(line) = line_with(&report, &["retry timeout exceeded"]) {
        ("4.4.7".into(), line)
    } else if let Some(line) = line_with(
        &report,
        &[
            "permanent error",
            "permanenter fehler",
            "dauerhafter fehler",
            "does not exist",
            "existiert nicht",
            "user unknown",
        ],
    ) {
        ("5.0.0".into(), line)
    } else if let Some(line) = line_with(
        &report,
        &[
            "has not yet been delivered",
            "still being retried",
            "will continue",
            "temporär",
            "vorübergehend",
            "delayed",
        ],
    ) {
        ("4.0.0".into(), line)
    } else {
        return Some(Verdict::Unknown {
            reason: "bounce text without a status".into(),
        });
    };

    Some(match status_class(&status) {
        Some(5) => Verdict::HardBounce {
            status,
            diagnostic,
            recipient: failed_recipient(msg, &report),
        },
        Some(4) => Verdict::SoftBounce { status, diagnostic },
        _ => Verdict::Unknown {
            reason: format!("bounce text with status {status}"),
        },
    })
}

/// The first trimmed line containing one of `needles` (lower case).
fn line_with(text: &str, needles: &[&str]) -> Option<String> {
    text.lines()
        .find(|l| {
            let l = l.to_lowercase();
            needles.iter().any(|n| l.contains(n))
        })
        .map(|l| l.trim().to_string())
}

/// The first failing SMTP reply in `text`: its enhanced status code (or one
/// made from a bare `4xx`/`5xx` reply code) and the reply from its code on,
/// with the continuation lines MTAs wrap it into (indented deeper).
fn smtp_status(text: &str) -> Option<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut basic = None;
    for (i, line) in lines.iter().enumerate() {
        let reply = reply_code(line);
        if let Some((at, code)) = enhanced_code(line) {
            // "550 5.1.1 …" reads from the reply code, "#5.1.1 …" from the
            // status code.
            let from = reply.filter(|(r, _)| *r < at).map_or(at, |(r, _)| r);
            return Some((code.to_string(), reply_text(&lines, i, from)));
        }
        if basic.is_none() {
            if let Some((at, class)) = reply {
                basic = Some((format!("{}.0.0", class as char), reply_text(&lines, i, at)));
            }
        }
    }
    basic
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// `lines[i]` from byte `from`, joined with the following lines that are
/// indented deeper than it.
fn reply_text(lines: &[&str], i: usize, from: usize) -> String {
    let mut out = lines[i].get(from..).unwrap_or(lines[i]).trim().to_string();
    let base = indent(lines[i]);
    for next in &lines[i + 1..] {
        if next.trim().is_empty() || indent(next) <= base {
            break;
        }
        out.push(' ');
        out.push_str(next.trim());
    }
    out
}

fn is_boundary(b: Option<u8>) -> bool {
    b.is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'.'))
}

/// An enhanced status code of class 4 or 5 standing alone in `line`
/// (`5.1.1`, not the tail of an IP address like `10.5.1.1`): its byte
/// offset and text.
fn enhanced_code(line: &str) -> Option<(usize, &str)> {
    let b = line.as_bytes();
    (0..b.len()).find_map(|i| {
        if !matches!(b[i], b'4' | b'5') || !is_boundary(i.checked_sub(1).map(|j| b[j])) {
            return None;
        }
        let mut j = i + 1;
        for _ in 0..2 {
            if b.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
            let start = j;
            while j < b.len() && b[j].is_ascii_digit() && j - start < 3 {
                j += 1;
            }
            if j == start {
                return None;
            }
        }
        // All bytes in i..j are ASCII, so these are char boundaries.
        is_boundary(b.get(j).copied()).then(|| (i, &line[i..j]))
    })
}

/// A bare SMTP reply code of class 4 or 5 (`550 `, `452-`) in `line`: its
/// byte offset and class digit.
fn reply_code(line: &str) -> Option<(usize, u8)> {
    let b = line.as_bytes();
    (0..b.len().saturating_sub(2)).find_map(|i| {
        let code = &b[i..i + 3];
        let before_ok = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.');
        let after_ok = matches!(b.get(i + 3), None | Some(b' ' | b'-' | b'\r'));
        (matches!(code[0], b'4' | b'5')
            && code[1].is_ascii_digit()
            && code[2].is_ascii_digit()
            && before_ok
            && after_ok)
            .then_some((i, code[0]))
    })
}

/// The failed address of a prose bounce: Exim's `X-Failed-Recipients`
/// header, else the first address in the report text that is not a mailer
/// daemon's.
fn failed_recipient(msg: &Message<'_>, report: &str) -> Option<String> {
    if let Some(HeaderValue::Text(t)) = msg
        .header_as("X-Failed-Recipients", HeaderForm::Raw)
        .first()
    {
        if let Some(first) = t.split(',').map(str::trim).find(|a| a.contains('@')) {
            return Some(first.to_string());
        }
    }
    report
        .split(|c: char| c.is_whitespace() || "<>()[]:;,\"'".contains(c))
        .map(|w| w.trim_end_matches('.'))
        .find(|w| {
            let Some((local, dom)) = w.split_once('@') else {
                return false;
            };
            let local = local.to_ascii_lowercase();
            !local.is_empty()
                && dom.contains('.')
                && !matches!(local.as_str(), "mailer-daemon" | "postmaster")
        })
        .map(str::to_string)
}

// ---------------------------------------------------------------------------
// Auto-replies

/// Subjects of absence notices and challenge-response mails (lower case).
const AUTOREPLY_SUBJECTS: &[&str] = &[
    "abwesenheitsnotiz",
    "automatische antwort",
    "automatische rückantwort",
    "abwesenheit",
    "nicht im büro",
    "out of office",
    "out-of-office",
    "autoreply",
    "auto-reply",
    "auto reply",
    "automatic reply",
    "autoresponse",
    "auto response",
    "vacation reply",
    "on vacation",
    "im urlaub",
    "réponse automatique",
    "risposta automatica",
    "respuesta automática",
    "automatisch antwoord",
];

const CHALLENGE_SUBJECTS: &[&str] = &[
    "please confirm",
    "verify you are human",
    "verify that you are human",
    "are you human",
    "sender verification",
    "verification required",
    "confirm your message",
    "confirm your e-mail",
    "confirm your email",
    "bestätigung erforderlich",
    "bitte bestätigen",
    "absenderbestätigung",
    "absender-bestätigung",
    "absenderverifizierung",
    "spam-schutz",
    "spamschutz",
];

fn header_text(msg: &Message<'_>, name: &str) -> Option<String> {
    msg.header_as(name, HeaderForm::Raw)
        .into_iter()
        .find_map(|v| match v {
            HeaderValue::Text(t) => Some(t.trim().to_string()),
            _ => None,
        })
}

/// An auto-reply that says so: a header meant for it or its subject.
fn named_autoreply(msg: &Message<'_>, subject: &str) -> Option<String> {
    for name in ["X-Autoreply", "X-Autorespond"] {
        if let Some(v) = header_text(msg, name) {
            if !v.eq_ignore_ascii_case("no") {
                return Some(format!("{name}: {v}"));
            }
        }
    }
    if let Some(v) = header_text(msg, "Precedence") {
        if v.eq_ignore_ascii_case("auto_reply") {
            return Some(format!("Precedence: {v}"));
        }
    }
    let lower = subject.to_lowercase();
    if let Some(s) = AUTOREPLY_SUBJECTS.iter().find(|s| lower.contains(*s)) {
        return Some(format!("out-of-office subject ({s})"));
    }
    if let Some(s) = CHALLENGE_SUBJECTS.iter().find(|s| lower.contains(*s)) {
        return Some(format!("challenge-response subject ({s})"));
    }
    None
}

/// The keyword of `Auto-Submitted` (`no`, `auto-replied`, `auto-generated`
/// …), without parameters or comments, and the whole value.
fn auto_submitted(msg: &Message<'_>) -> Option<(String, String)> {
    let v = header_text(msg, "Auto-Submitted")?;
    let keyword = v
        .split([';', ' ', '('])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    Some((keyword, v))
}

/// `Auto-Submitted: auto-replied` (RFC 3834): a reply by a machine.
fn auto_replied(msg: &Message<'_>) -> Option<String> {
    auto_submitted(msg)
        .filter(|(keyword, _)| keyword == "auto-replied")
        .map(|(_, v)| format!("Auto-Submitted: {v}"))
}

/// A mail marked as machine-sent, without saying what kind.
fn marked_autoreply(msg: &Message<'_>) -> Option<String> {
    if let Some((keyword, v)) = auto_submitted(msg) {
        if keyword != "no" {
            return Some(format!("Auto-Submitted: {v}"));
        }
    }
    if let Some(v) = header_text(msg, "Precedence") {
        if ["bulk", "junk", "list"]
            .iter()
            .any(|p| v.eq_ignore_ascii_case(p))
        {
            return Some(format!("Precedence: {v}"));
        }
    }
    header_text(msg, "X-Auto-Response-Suppress").map(|v| format!("X-Auto-Response-Suppress: {v}"))
}

// ---------------------------------------------------------------------------
// Maildir

/// A maildir (`new/`, `cur/`, `tmp/`) the relay delivers returned mail into.
#[derive(Clone, Debug)]
pub struct Maildir {
    root: PathBuf,
}

/// Distinguishes files delivered by this process within one microsecond.
static DELIVERIES: AtomicU64 = AtomicU64::new(0);

/// Mails larger than this are not read: a delivery report, a bounce or an
/// unsubscribe request is a few kilobytes with the returned message, and
/// relays refuse mail far smaller.
pub const MAX_MAIL_BYTES: u64 = 16 << 20;

impl Maildir {
    /// Opens the maildir at `root`, creating it and its three folders if
    /// missing.
    pub fn open(root: &Path) -> io::Result<Maildir> {
        for sub in ["new", "cur", "tmp"] {
            fs::create_dir_all(root.join(sub))?;
        }
        Ok(Maildir {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The mails waiting in `new/`, sorted by file name (maildir names start
    /// with the delivery time, so this is roughly arrival order). Dot files
    /// and anything that is not a file are skipped.
    pub fn pending(&self) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.root.join("new"))? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if entry.file_type()?.is_file() {
                out.push(entry.path());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Reads a mail from [`pending`](Self::pending): `Err` with why for one
    /// not to be read, a symlink (never followed), anything but a regular
    /// file, or one over [`MAX_MAIL_BYTES`]; the caller files it away.
    pub fn read(&self, path: &Path) -> io::Result<Result<Vec<u8>, String>> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let flags = nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK;
        let file = match fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags.bits())
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) => {
                return Ok(Err("a symbolic link, not a mail".into()));
            }
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Ok(Err("not a regular file".into()));
        }
        if meta.len() > MAX_MAIL_BYTES {
            return Ok(Err(format!(
                "{} bytes; mails over {MAX_MAIL_BYTES} bytes are not read",
                meta.len()
            )));
        }
        let mut raw = Vec::with_capacity(meta.len() as usize);
        // Bounded again: it may still be growing.
        file.take(MAX_MAIL_BYTES + 1).read_to_end(&mut raw)?;
        if raw.len() as u64 > MAX_MAIL_BYTES {
            return Ok(Err(format!(
                "mails over {MAX_MAIL_BYTES} bytes are not read"
            )));
        }
        Ok(Ok(raw))
    }

    /// Marks a mail from [`pending`](Self::pending) as processed: moves it to
    /// `cur/` with the info suffix `:2,S` (seen). Calling it again for a
    /// mail already moved succeeds, so a retried step cannot fail on it.
    pub fn done(&self, path: &Path) -> io::Result<()> {
        let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "not a maildir file name")
        })?;
        let new_dir = self.root.join("new");
        if path.parent() != Some(new_dir.as_path()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not in {}", path.display(), new_dir.display()),
            ));
        }
        let unique = name.split(':').next().unwrap_or(name);
        let target = self.root.join("cur").join(format!("{unique}:2,S"));
        match fs::rename(path, &target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && target.exists() => Ok(()),
            other => other,
        }
    }

    /// Delivers `raw` the maildir way (written to `tmp/`, synced, then
    /// renamed into `new/`), for a local receiver and for tests.
    pub fn deliver(&self, raw: &[u8]) -> io::Result<PathBuf> {
        // Wall time: a maildir name says when the file really arrived.
        let now = touchpoint_common::clock::wall_millis().max(0);
        let name = format!(
            "{}.M{}P{}Q{}.touchpointd",
            now / 1000,
            (now % 1000) * 1000,
            std::process::id(),
            DELIVERIES.fetch_add(1, Ordering::Relaxed),
        );
        let tmp = self.root.join("tmp").join(&name);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(raw)?;
        file.sync_all()?;
        let new = self.root.join("new").join(&name);
        fs::rename(&tmp, &new)?;
        Ok(new)
    }
}

#[cfg(test)]
mod tests;

//! The queue filter: which outbox messages a listing shows.
//!
//! The console's `/` line and `touchpoint queue --filter` share one small
//! language, parsed here so that both ends agree on it:
//!
//! ```text
//! status:held,failed channel:email tenant:d001 service:inspection
//! date:2026-11-23  date:2026-11-01..2026-11-30  date:..2026-11-30  müller
//! ```
//!
//! Terms are separated by blanks; a term without a known `key:` is free text
//! (all free words together, case-insensitive, as one substring). Keys may be
//! abbreviated to a unique prefix (`st:`, `ch:`, `t:`, `svc:` too). Values of
//! `status` and `channel` may be lists (`status:held,failed`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::Channel;
use crate::outbox::MessageStatus;
use crate::{Date, TenantId};

/// Every status, in lifecycle order (the order of the console's counts).
pub const STATUSES: [MessageStatus; 11] = [
    MessageStatus::Planned,
    MessageStatus::Rendered,
    MessageStatus::Queued,
    MessageStatus::Sending,
    MessageStatus::Deferred,
    MessageStatus::Sent,
    MessageStatus::Held,
    MessageStatus::Failed,
    MessageStatus::Fallback,
    MessageStatus::Cancelled,
    MessageStatus::Control,
];

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueFilter {
    /// One tenant, or every tenant in the caller's scope.
    pub tenant: Option<TenantId>,
    /// Any of these; every status when empty.
    pub statuses: Vec<MessageStatus>,
    /// Any of these; every channel when empty.
    pub channels: Vec<Channel>,
    pub service: Option<String>,
    /// Send day from (inclusive).
    pub from: Option<Date>,
    /// Send day to (inclusive).
    pub to: Option<Date>,
    /// Case-insensitive substring of the customer number, the address used,
    /// the template, the service or the last transport answer; empty: any.
    pub text: String,
}

/// What is wrong with a filter, and which term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    pub term: String,
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.term, self.message)
    }
}

impl std::error::Error for FilterError {}

const KEYS: [&str; 5] = ["status", "channel", "tenant", "service", "date"];

fn key_for(word: &str) -> Option<&'static str> {
    match word {
        "st" => return Some("status"),
        "ch" => return Some("channel"),
        "t" => return Some("tenant"),
        "svc" => return Some("service"),
        _ => {}
    }
    let mut found = KEYS.iter().filter(|k| k.starts_with(word));
    match (found.next(), found.next()) {
        (Some(k), None) if !word.is_empty() => Some(k),
        _ => None,
    }
}

fn status_named(s: &str) -> Option<MessageStatus> {
    STATUSES.into_iter().find(|st| st.as_str() == s)
}

fn channel_named(s: &str) -> Option<Channel> {
    match s {
        "letter" | "letters" => Some(Channel::Post),
        "call" | "calls" => Some(Channel::Phone),
        "mail" => Some(Channel::Email),
        _ => Channel::ALL.into_iter().find(|c| c.as_str() == s),
    }
}

fn date_named(term: &str, s: &str) -> Result<Date, FilterError> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(Date::from)
        .map_err(|_| FilterError {
            term: term.to_string(),
            message: format!("`{s}` is not a date (YYYY-MM-DD)"),
        })
}

impl QueueFilter {
    /// Parses the filter language (see the module documentation).
    pub fn parse(input: &str) -> Result<Self, FilterError> {
        let mut f = QueueFilter::default();
        let mut words = Vec::new();
        for term in input.split_whitespace() {
            let Some((k, v)) = term.split_once(':') else {
                words.push(term);
                continue;
            };
            let Some(key) = key_for(&k.to_lowercase()) else {
                // "10:30" or "Re:" is text, not a key.
                words.push(term);
                continue;
            };
            let bad = |message: String| FilterError {
                term: term.to_string(),
                message,
            };
            let v = v.to_lowercase();
            if v.is_empty() {
                return Err(bad(format!("{key}: needs a value")));
            }
            match key {
                "status" => {
                    for s in v.split(',').filter(|s| !s.is_empty()) {
                        let st = status_named(s).ok_or_else(|| {
                            bad(format!(
                                "no status `{s}` (one of {})",
                                STATUSES.map(|s| s.as_str()).join(", ")
                            ))
                        })?;
                        if !f.statuses.contains(&st) {
                            f.statuses.push(st);
                        }
                    }
                }
                "channel" => {
                    for s in v.split(',').filter(|s| !s.is_empty()) {
                        let ch = channel_named(s).ok_or_else(|| {
                            bad(format!("no channel `{s}` (email, post or phone)"))
                        })?;
                        if !f.channels.contains(&ch) {
                            f.channels.push(ch);
                        }
                    }
                }
                "tenant" => {
                    let t = TenantId::new(v.as_str()).map_err(|e| bad(e.to_string()))?;
                    f.tenant = Some(t);
                }
                "service" => f.service = Some(v),
                "date" => match v.split_once("..") {
                    Some((a, b)) => {
                        f.from = (!a.is_empty()).then(|| date_named(term, a)).transpose()?;
                        f.to = (!b.is_empty()).then(|| date_named(term, b)).transpose()?;
                        if let (Some(a), Some(b)) = (f.from, f.to) {
                            if a > b {
                                return Err(bad(format!("{a} is after {b}")));
                            }
                        }
                    }
                    None => {
                        let d = date_named(term, &v)?;
                        f.from = Some(d);
                        f.to = Some(d);
                    }
                },
                _ => words.push(term),
            }
        }
        f.text = words.join(" ");
        Ok(f)
    }

    pub fn is_empty(&self) -> bool {
        *self == QueueFilter::default()
    }

    /// Whether a message with these fields passes every criterion but the text.
    pub fn matches_fields(
        &self,
        status: MessageStatus,
        channel: Channel,
        service: &str,
        send_on: Date,
    ) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&status))
            && (self.channels.is_empty() || self.channels.contains(&channel))
            && self.service.as_deref().is_none_or(|s| s == service)
            && self.from.is_none_or(|d| send_on >= d)
            && self.to.is_none_or(|d| send_on <= d)
    }
}

/// The canonical text of a filter; [`QueueFilter::parse`] reads it back.
impl fmt::Display for QueueFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut terms: Vec<String> = Vec::new();
        if let Some(t) = &self.tenant {
            terms.push(format!("tenant:{t}"));
        }
        if !self.statuses.is_empty() {
            let list: Vec<&str> = self.statuses.iter().map(|s| s.as_str()).collect();
            terms.push(format!("status:{}", list.join(",")));
        }
        if !self.channels.is_empty() {
            let list: Vec<&str> = self.channels.iter().map(|c| c.as_str()).collect();
            terms.push(format!("channel:{}", list.join(",")));
        }
        if let Some(s) = &self.service {
            terms.push(format!("service:{s}"));
        }
        match (self.from, self.to) {
            (Some(a), Some(b)) if a == b => terms.push(format!("date:{a}")),
            (None, None) => {}
            (a, b) => terms.push(format!(
                "date:{}..{}",
                a.map(|d| d.to_string()).unwrap_or_default(),
                b.map(|d| d.to_string()).unwrap_or_default()
            )),
        }
        if !self.text.is_empty() {
            terms.push(self.text.clone());
        }
        f.write_str(&terms.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_key_and_free_text() {
        let f = QueueFilter::parse(
            "st:held,failed ch:email t:d001 service:Inspection date:2026-11-01..2026-11-30 Müller gmbh",
        )
        .expect("parse");
        assert_eq!(f.statuses, vec![MessageStatus::Held, MessageStatus::Failed]);
        assert_eq!(f.channels, vec![Channel::Email]);
        assert_eq!(f.tenant.as_ref().map(|t| t.as_str()), Some("d001"));
        assert_eq!(f.service.as_deref(), Some("inspection"));
        assert_eq!(f.from.map(|d| d.to_string()).as_deref(), Some("2026-11-01"));
        assert_eq!(f.to.map(|d| d.to_string()).as_deref(), Some("2026-11-30"));
        assert_eq!(f.text, "Müller gmbh");
        assert_eq!(QueueFilter::parse(&f.to_string()).expect("again"), f);
    }

    #[test]
    fn a_single_day_and_open_ranges() {
        let f = QueueFilter::parse("date:2026-11-23").expect("parse");
        assert_eq!(f.from, f.to);
        assert_eq!(f.to_string(), "date:2026-11-23");
        let f = QueueFilter::parse("date:..2026-11-23").expect("parse");
        assert_eq!((f.from, f.to.is_some()), (None, true));
        assert_eq!(QueueFilter::parse(&f.to_string()).expect("again"), f);
    }

    #[test]
    fn errors_name_the_term() {
        let e = QueueFilter::parse("status:lost").expect_err("bad status");
        assert_eq!(e.term, "status:lost");
        assert!(e.message.contains("no status `lost`"), "{e}");
        let e = QueueFilter::parse("date:2026-13-01").expect_err("bad date");
        assert!(e.to_string().contains("not a date"), "{e}");
        let e = QueueFilter::parse("date:2026-11-30..2026-11-01").expect_err("reversed");
        assert!(e.message.contains("after"), "{e}");
        let e = QueueFilter::parse("channel:fax").expect_err("bad channel");
        assert!(e.message.contains("email, post or phone"), "{e}");
        assert!(QueueFilter::parse("status:").is_err());
    }

    #[test]
    fn unknown_keys_and_times_are_text() {
        let f = QueueFilter::parse("Re: 10:30").expect("parse");
        assert_eq!(f.text, "Re: 10:30");
        assert!(f.statuses.is_empty());
        assert!(QueueFilter::parse("").expect("empty").is_empty());
    }

    #[test]
    fn fields_match() {
        let f = QueueFilter::parse("status:queued channel:post date:2026-11-01..").expect("parse");
        let day = Date::from_ymd(2026, 11, 23).expect("day");
        assert!(f.matches_fields(MessageStatus::Queued, Channel::Post, "x", day));
        assert!(!f.matches_fields(MessageStatus::Sent, Channel::Post, "x", day));
        assert!(!f.matches_fields(MessageStatus::Queued, Channel::Email, "x", day));
        let early = Date::from_ymd(2026, 10, 31).expect("day");
        assert!(!f.matches_fields(MessageStatus::Queued, Channel::Post, "x", early));
    }
}

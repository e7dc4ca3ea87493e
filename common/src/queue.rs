//! The queue filter: which outbox messages a listing shows, and in which
//! order.
//!
//! The console's `/` line and `touchpoint queue --filter` share one small
//! language, parsed here so that both ends agree on it:
//!
//! ```text
//! status:held,failed channel:email tenant:d001,d002 service:hu_reminder
//! date:2026-11-23  date:2026-11-01..2026-11-30  date:..2026-11-30  sort:cost  müller
//! ```
//!
//! Terms are separated by blanks; a term without `key:` is free text (all
//! free words together, case-insensitive, as one substring of the customer
//! number, name, postcode, city and email domain, the address used, the
//! template, the service or the last transport answer). Keys may be
//! abbreviated to a unique prefix (`st:`, `ch:`, `t:`, `svc:` too); a word
//! before a colon that is no key is an error naming the closest key
//! (`stauts:held`: did you mean `status`?), while `10:30` (no letters
//! before the colon) stays text. Every key but `date` and `sort` takes a
//! comma list (`service:a,b`). Status and channel values are checked here;
//! service and tenant values by the daemon, which knows the brand's
//! services and the tenants ([`unknown_value`] words its error). `sort:`
//! orders the listing: `time` (the send time, latest first; the default),
//! `tenant`, `status` (lifecycle order), `cost` (dearest first), each then
//! by send time; `sort:-cost` reverses.

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

/// What a listing is ordered by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// Send day and time, latest first.
    #[default]
    Time,
    /// Tenant id, then send time.
    Tenant,
    /// Lifecycle order ([`STATUSES`]), then send time.
    Status,
    /// The message's cost (booked, or the estimate), dearest first, then send time.
    Cost,
}

impl SortKey {
    pub const ALL: [SortKey; 4] = [
        SortKey::Time,
        SortKey::Tenant,
        SortKey::Status,
        SortKey::Cost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Time => "time",
            SortKey::Tenant => "tenant",
            SortKey::Status => "status",
            SortKey::Cost => "cost",
        }
    }

    /// The next key in [`SortKey::ALL`] (the console's sort key cycles).
    pub fn next(self) -> SortKey {
        let i = SortKey::ALL.iter().position(|k| *k == self).unwrap_or(0);
        SortKey::ALL[(i + 1) % SortKey::ALL.len()]
    }
}

/// A sort key and its direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QueueSort {
    pub key: SortKey,
    /// The whole order turned round (`sort:-cost`: cheapest first).
    pub reversed: bool,
}

impl QueueSort {
    /// `time`, `-cost`, … (what `sort:` and `touchpoint queue --sort` take).
    pub fn parse(s: &str) -> Result<QueueSort, String> {
        let lower = s.to_lowercase();
        let (reversed, name) = match lower.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        let names = SortKey::ALL.map(|k| k.as_str());
        match SortKey::ALL.into_iter().find(|k| k.as_str() == name) {
            Some(key) => Ok(QueueSort { key, reversed }),
            None => Err(unknown_value("sort key", name, names)),
        }
    }
}

impl fmt::Display for QueueSort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reversed {
            f.write_str("-")?;
        }
        f.write_str(self.key.as_str())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueFilter {
    /// Any of these tenants; every tenant in the caller's scope when empty.
    pub tenants: Vec<TenantId>,
    /// Any of these; every status when empty.
    pub statuses: Vec<MessageStatus>,
    /// Any of these; every channel when empty.
    pub channels: Vec<Channel>,
    /// Any of these service ids (lower case); every service when empty.
    pub services: Vec<String>,
    /// Send day from (inclusive).
    pub from: Option<Date>,
    /// Send day to (inclusive).
    pub to: Option<Date>,
    /// Case-insensitive substring of the customer number, name, postcode,
    /// city or email domain, the address used, the template, the service
    /// or the last transport answer; empty: any.
    pub text: String,
    /// The order of the listing (not a criterion: [`QueueFilter::is_empty`]
    /// ignores it).
    pub sort: QueueSort,
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

/// The filter's keys, in the order the help names them.
pub const KEYS: [&str; 6] = ["status", "channel", "tenant", "service", "date", "sort"];

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

/// The candidate closest to `word`: one that contains it, else the nearest
/// by edit distance (Damerau–Levenshtein) if it is near enough to be a typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    if word.chars().count() >= 2 {
        if let Some(c) = candidates.iter().find(|c| c.contains(word)) {
            return Some(c);
        }
    }
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// "no service `inspection` (did you mean `hu_reminder`?)", or with every
/// valid value when none is close. `what` names the kind of value.
pub fn unknown_value<'a>(
    what: &str,
    value: &str,
    valid: impl IntoIterator<Item = &'a str>,
) -> String {
    let valid: Vec<&str> = valid.into_iter().collect();
    match closest(value, valid.iter().copied()) {
        Some(c) => format!("no {what} `{value}` (did you mean `{c}`?)"),
        None if valid.is_empty() => format!("no {what} `{value}`"),
        None => format!("no {what} `{value}` (one of {})", valid.join(", ")),
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

/// Whether the word before a colon is meant as a key: letters only (and
/// `_`), so that `10:30` stays text.
fn looks_like_key(word: &str) -> bool {
    !word.is_empty() && word.chars().all(|c| c.is_alphabetic() || c == '_')
}

fn push_new<T: PartialEq>(list: &mut Vec<T>, v: T) {
    if !list.contains(&v) {
        list.push(v);
    }
}

impl QueueFilter {
    /// Parses the filter language (see the module documentation).
    pub fn parse(input: &str) -> Result<Self, FilterError> {
        let mut f = QueueFilter::default();
        let mut words = Vec::new();
        for term in input.split_whitespace() {
            let bad = |message: String| FilterError {
                term: term.to_string(),
                message,
            };
            let Some((k, v)) = term.split_once(':') else {
                words.push(term);
                continue;
            };
            let k = k.to_lowercase();
            let Some(key) = key_for(&k) else {
                if looks_like_key(&k) && !v.is_empty() {
                    let known = match closest(&k, KEYS) {
                        Some(c) => format!("did you mean `{c}`?"),
                        None => format!("keys: {}", KEYS.join(", ")),
                    };
                    return Err(bad(format!("no filter key `{k}` ({known})")));
                }
                // "10:30" or "Re:" is text, not a key.
                words.push(term);
                continue;
            };
            let v = v.to_lowercase();
            if v.is_empty() {
                return Err(bad(format!("{key}: needs a value")));
            }
            let list = || v.split(',').filter(|s| !s.is_empty());
            match key {
                "status" => {
                    for s in list() {
                        let st = status_named(s).ok_or_else(|| {
                            bad(unknown_value("status", s, STATUSES.map(|s| s.as_str())))
                        })?;
                        push_new(&mut f.statuses, st);
                    }
                }
                "channel" => {
                    for s in list() {
                        let ch = channel_named(s).ok_or_else(|| {
                            bad(unknown_value(
                                "channel",
                                s,
                                Channel::ALL.map(|c| c.as_str()),
                            ))
                        })?;
                        push_new(&mut f.channels, ch);
                    }
                }
                "tenant" => {
                    for s in list() {
                        let t = TenantId::new(s).map_err(|e| bad(e.to_string()))?;
                        push_new(&mut f.tenants, t);
                    }
                }
                "service" => {
                    for s in list() {
                        push_new(&mut f.services, s.to_string());
                    }
                }
                "sort" => f.sort = QueueSort::parse(&v).map_err(bad)?,
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

    /// No criterion (whatever the order).
    pub fn is_empty(&self) -> bool {
        *self
            == QueueFilter {
                sort: self.sort,
                ..QueueFilter::default()
            }
    }

    /// Whether a message with these fields passes every criterion but the
    /// tenant and the text.
    pub fn matches_fields(
        &self,
        status: MessageStatus,
        channel: Channel,
        service: &str,
        send_on: Date,
    ) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&status))
            && (self.channels.is_empty() || self.channels.contains(&channel))
            && (self.services.is_empty() || self.services.iter().any(|s| s == service))
            && self.from.is_none_or(|d| send_on >= d)
            && self.to.is_none_or(|d| send_on <= d)
    }
}

/// The canonical text of a filter; [`QueueFilter::parse`] reads it back.
impl fmt::Display for QueueFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut terms: Vec<String> = Vec::new();
        if !self.tenants.is_empty() {
            let list: Vec<&str> = self.tenants.iter().map(|t| t.as_str()).collect();
            terms.push(format!("tenant:{}", list.join(",")));
        }
        if !self.statuses.is_empty() {
            let list: Vec<&str> = self.statuses.iter().map(|s| s.as_str()).collect();
            terms.push(format!("status:{}", list.join(",")));
        }
        if !self.channels.is_empty() {
            let list: Vec<&str> = self.channels.iter().map(|c| c.as_str()).collect();
            terms.push(format!("channel:{}", list.join(",")));
        }
        if !self.services.is_empty() {
            terms.push(format!("service:{}", self.services.join(",")));
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
        if self.sort != QueueSort::default() {
            terms.push(format!("sort:{}", self.sort));
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
        assert_eq!(f.tenants, vec![TenantId::new("d001").expect("id")]);
        assert_eq!(f.services, vec!["inspection".to_string()]);
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
        assert!(e.message.contains("one of planned, rendered"), "{e}");
        let e = QueueFilter::parse("status:held,hled").expect_err("typo");
        assert_eq!(e.message, "no status `hled` (did you mean `held`?)");
        let e = QueueFilter::parse("date:2026-13-01").expect_err("bad date");
        assert!(e.to_string().contains("not a date"), "{e}");
        let e = QueueFilter::parse("date:2026-11-30..2026-11-01").expect_err("reversed");
        assert!(e.message.contains("after"), "{e}");
        let e = QueueFilter::parse("channel:fax").expect_err("bad channel");
        assert!(e.message.contains("one of email, post, phone"), "{e}");
        assert!(QueueFilter::parse("status:").is_err());
    }

    #[test]
    fn times_are_text_and_unknown_keys_are_errors_with_the_closest_key() {
        let f = QueueFilter::parse("Re: 10:30").expect("parse");
        assert_eq!(f.text, "Re: 10:30");
        assert!(f.statuses.is_empty());
        assert!(QueueFilter::parse("").expect("empty").is_empty());
        let e = QueueFilter::parse("Wolf stauts:held").expect_err("typo");
        assert_eq!(e.term, "stauts:held");
        assert_eq!(e.message, "no filter key `stauts` (did you mean `status`?)");
        let e = QueueFilter::parse("foo:bar").expect_err("no key");
        assert_eq!(
            e.message,
            "no filter key `foo` (keys: status, channel, tenant, service, date, sort)"
        );
        let e = QueueFilter::parse("servcie:birthday").expect_err("typo");
        assert!(e.message.contains("did you mean `service`?"), "{e}");
    }

    #[test]
    fn spaces_around_terms_change_nothing() {
        // The console's filter line starts with the filter and a space.
        let plain = QueueFilter::parse("tenant:a001").expect("parses");
        for text in ["tenant:a001 ", " tenant:a001", "  tenant:a001\t"] {
            assert_eq!(QueueFilter::parse(text).expect("parses"), plain, "{text:?}");
        }
        assert_eq!(plain.text, "");
    }

    #[test]
    fn every_key_takes_a_comma_list() {
        let f = QueueFilter::parse("tenant:d001,d002,d001 service:birthday,hu_reminder")
            .expect("parse");
        assert_eq!(
            f.tenants,
            vec![
                TenantId::new("d001").expect("id"),
                TenantId::new("d002").expect("id")
            ]
        );
        assert_eq!(f.services, vec!["birthday", "hu_reminder"]);
        assert_eq!(
            f.to_string(),
            "tenant:d001,d002 service:birthday,hu_reminder"
        );
        assert_eq!(QueueFilter::parse(&f.to_string()).expect("again"), f);
        let day = Date::from_ymd(2026, 11, 23).expect("day");
        assert!(f.matches_fields(MessageStatus::Queued, Channel::Post, "hu_reminder", day));
        assert!(!f.matches_fields(MessageStatus::Queued, Channel::Post, "winter_check", day));
        let e = QueueFilter::parse("tenant:d001,../x").expect_err("bad id");
        assert!(e.term.starts_with("tenant:"), "{e}");
    }

    #[test]
    fn sort_is_a_key_kept_out_of_the_criteria() {
        let f = QueueFilter::parse("sort:-cost").expect("parse");
        assert_eq!(
            f.sort,
            QueueSort {
                key: SortKey::Cost,
                reversed: true
            }
        );
        assert!(f.is_empty(), "an order is no criterion");
        assert_eq!(f.to_string(), "sort:-cost");
        assert_eq!(QueueFilter::parse("sort:time").expect("t").to_string(), "");
        let e = QueueFilter::parse("sort:price").expect_err("no such key");
        assert!(e.message.contains("no sort key `price`"), "{e}");
        assert!(e.message.contains("time, tenant, status, cost"), "{e}");
        assert_eq!(SortKey::Cost.next(), SortKey::Time);
    }

    #[test]
    fn closest_prefers_a_containing_name_then_a_near_one() {
        let services = [
            "service_due",
            "hu_reminder",
            "warranty_extension",
            "birthday",
            "winter_check",
            "quality_check",
        ];
        assert_eq!(closest("winter", services), Some("winter_check"));
        assert_eq!(closest("birthdy", services), Some("birthday"));
        assert_eq!(closest("inspection", services), None);
        assert_eq!(
            unknown_value("service", "inspection", services),
            "no service `inspection` (one of service_due, hu_reminder, warranty_extension, \
             birthday, winter_check, quality_check)"
        );
        assert_eq!(
            unknown_value("tenant", "d0011", ["d001", "d002"]),
            "no tenant `d0011` (did you mean `d001`?)"
        );
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

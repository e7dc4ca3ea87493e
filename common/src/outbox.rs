//! Planned messages and their explanations: what the planner writes into a
//! tenant's outbox and what dispatch and the console read from it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::{Channel, Timestamp};
use crate::policy::OccasionKind;
use crate::Date;

/// One reason to contact a customer, found by the planner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occasion {
    /// Stable identity of the occasion: planning it twice is impossible.
    /// `service:vin-or-customer:anchor`, where the anchor is what starts the
    /// cycle (the last service date, the inspection date, the year...).
    pub key: String,
    pub service: String,
    pub kind: OccasionKind,
    /// The vehicle it concerns; `None` for occasions of the person.
    pub vin: Option<String>,
    /// The day the occasion happens (service due, birthday, campaign start).
    pub due: Date,
    /// How `due` was found, in words ("12 months after the service on 2025-12-01").
    pub reason: String,
    /// Expected value in cents.
    #[serde(with = "crate::money::cents")]
    pub value: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Planned,
    Rendered,
    Queued,
    Sending,
    Sent,
    Deferred,
    Failed,
    Held,
    Cancelled,
    Fallback,
    /// A control-group member's record: the occasion was eligible, and
    /// no message was sent on purpose, so that the recipient's responses
    /// measure what the message adds. Terminal; never dispatched, reserves
    /// nothing, is no contact.
    Control,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Planned => "planned",
            MessageStatus::Rendered => "rendered",
            MessageStatus::Queued => "queued",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Deferred => "deferred",
            MessageStatus::Failed => "failed",
            MessageStatus::Held => "held",
            MessageStatus::Cancelled => "cancelled",
            MessageStatus::Fallback => "fallback",
            MessageStatus::Control => "control",
        }
    }

    /// Counts as a contact for frequency capping: planned, on its way or sent.
    pub fn is_contact(self) -> bool {
        !matches!(
            self,
            MessageStatus::Failed
                | MessageStatus::Cancelled
                | MessageStatus::Fallback
                | MessageStatus::Control
        )
    }

    /// Not yet handed to a transport: the planner may still revise it.
    pub fn is_revisable(self) -> bool {
        matches!(self, MessageStatus::Planned | MessageStatus::Rendered)
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The planning step an explanation belongs to, in the planner's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Occasion,
    Channel,
    Bundling,
    Consolidation,
    Capping,
    Budget,
    SendTime,
    /// Later changes: a rerun that cancelled or revised the message.
    Revision,
    /// What happened on the way out: failures, bounces, fallback to a letter.
    Dispatch,
    /// Drawn into the service's control group at planning (after consent
    /// and channel, before bundling).
    Control,
    /// A response credited to the message (or control record), or taken
    /// back when its source row was corrected away.
    Response,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Occasion => "occasion",
            Step::Channel => "channel",
            Step::Bundling => "bundling",
            Step::Consolidation => "consolidation",
            Step::Capping => "capping",
            Step::Budget => "budget",
            Step::SendTime => "send time",
            Step::Revision => "revision",
            Step::Dispatch => "dispatch",
            Step::Control => "control group",
            Step::Response => "response",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of a message's *why*.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Why {
    pub step: Step,
    pub text: String,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.step, self.text)
    }
}

/// A message in a tenant's outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Per tenant, increasing.
    pub id: u64,
    /// `Message-ID` header, fixed at planning: `<tp.{tenant}.{id}@{sender domain}>`
    /// (`{brand}.touchpoint.invalid` when the dealer has no sender address).
    pub message_id: String,
    /// Customer number of the recipient (after identity merges).
    pub recipient: String,
    pub channel: Channel,
    /// The service that pays for the message and whose template leads it.
    pub service: String,
    pub template: String,
    pub occasions: Vec<Occasion>,
    pub send_on: Date,
    /// Minutes after midnight, local time.
    #[serde(with = "crate::date::minutes")]
    pub send_at: u16,
    /// Estimated cost in cents, reserved against the budget.
    #[serde(with = "crate::money::cents")]
    pub cost: i64,
    /// Expected value in cents.
    #[serde(with = "crate::money::cents")]
    pub value: i64,
    pub status: MessageStatus,
    pub why: Vec<Why>,
    pub planned_at: Timestamp,
    /// Fingerprint of the policy set it was planned under.
    pub policy: u64,
    /// Every status change: when, to what, why.
    pub history: Vec<(Timestamp, MessageStatus, String)>,
    /// What dispatch did with it: attempts, links, money, where it went.
    pub dispatch: Dispatch,
}

/// How the *why* line (step send time) that gives the lead time chosen
/// for a message of a learning service starts: `lead time: 28 days (…)`.
pub const LEAD_WHY: &str = "lead time: ";

/// The lead time a message's *why* says the planner chose (a message of
/// a learning service; `None` for any other).
pub fn planned_lead(why: &[Why]) -> Option<u32> {
    why.iter()
        .filter(|w| w.step == Step::SendTime)
        .find_map(|w| {
            w.text
                .strip_prefix(LEAD_WHY)?
                .split_once(" days")?
                .0
                .parse()
                .ok()
        })
}

impl Message {
    /// The lead time the planner chose for it ([`planned_lead`]).
    pub fn planned_lead(&self) -> Option<u32> {
        planned_lead(&self.why)
    }
}

/// Click tracking of one email (brand policy `[tracking] clicks`): the
/// addresses its links stood for when it was rendered, in the order of
/// their tokens (link `n` is `links[n - 1]`), and the clicks on them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedLinks {
    pub links: Vec<String>,
    pub first_click: Option<Timestamp>,
    /// Clicks on any of its links, saturating.
    pub clicks: u32,
    /// The links clicked at least once, each once.
    pub clicked: Vec<u32>,
}

/// A message's way out, filled in by dispatch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatch {
    /// Version (fingerprint) of the template it was rendered with; 0 before.
    pub template_version: u64,
    /// Delivery attempts so far (email).
    pub attempts: u32,
    pub first_attempt: Option<Timestamp>,
    /// Deferred: when the next attempt is due.
    pub retry_at: Option<Timestamp>,
    /// The last answer or error from the transport.
    pub last_error: String,
    /// The status a held message returns to when released.
    pub held_from: Option<MessageStatus>,
    /// This letter replaces the failed email with this id.
    pub fallback_of: Option<u64>,
    /// This failed email was replaced by the letter with this id.
    pub fallback_to: Option<u64>,
    /// The letter batch or call list it went out in (file name).
    pub batch: String,
    /// Cost booked when it went out, cents, and the brand's share of it.
    #[serde(with = "crate::money::cents")]
    pub booked: i64,
    #[serde(with = "crate::money::cents")]
    pub brand_share: i64,
    /// The address or number it went to.
    pub address: String,
}

/// The domain of the `Message-ID` of a message imported from a previous
/// system's send history: it was never sent by us, and its time of day is
/// not known (the history gives the day only).
pub const HISTORY_MESSAGE_DOMAIN: &str = "history.touchpoint.invalid";

/// How the explanation of an operator's `send-now` starts: "sent now by
/// NAME (planned for …)".
pub const SENT_NOW_BY: &str = "sent now by ";

impl Message {
    /// A message imported from a send history, not planned and sent here:
    /// its day is the history's, its time of day made up.
    pub fn from_send_history(&self) -> bool {
        self.message_id
            .strip_suffix('>')
            .and_then(|id| id.rsplit_once('@'))
            .is_some_and(|(_, domain)| domain == HISTORY_MESSAGE_DOMAIN)
    }

    /// Made due at once by an operator (`send-now`): its send day and time
    /// are nobody's plan, so no lead or slot may be learned from it. Told
    /// by the dispatch explanation the action writes ([`SENT_NOW_BY`]).
    pub fn sent_now(&self) -> bool {
        self.why
            .iter()
            .any(|w| w.step == Step::Dispatch && w.text.starts_with(SENT_NOW_BY))
    }

    /// The cost a listing shows, in cents: what was booked once sent (or
    /// booked at all), else the estimate.
    pub fn listed_cost(&self) -> i64 {
        if self.status == MessageStatus::Sent || self.dispatch.booked != 0 {
            self.dispatch.booked
        } else {
            self.cost
        }
    }

    /// Records a status change with its reason.
    pub fn set_status(&mut self, at: Timestamp, status: MessageStatus, why: impl Into<String>) {
        self.status = status;
        self.history.push((at, status, why.into()));
    }
}

/// Lines of a message's history a store keeps: the first
/// [`HISTORY_FIRST`], one that says how many were left out after them, and
/// the newest. A history grows with every attempt, action and mail about
/// the message, and a record has a size limit.
pub const HISTORY_LINES: usize = 64;
pub const HISTORY_FIRST: usize = 8;
/// Lines of a message's *why* a store keeps, the same way: the planner's
/// come first and are kept.
pub const WHY_LINES: usize = 96;
pub const WHY_FIRST: usize = 48;
/// Bytes of one history or *why* line, and of the last error, a store
/// keeps (texts from outside are cut far shorter where they enter).
pub const LINE_BYTES: usize = 8 * 1024;

impl Message {
    /// Whether the message is as a store keeps it: [`Message::bound`] would
    /// change nothing.
    pub fn is_bounded(&self) -> bool {
        self.history.len() <= HISTORY_LINES
            && self.why.len() <= WHY_LINES
            && self.dispatch.last_error.len() <= LINE_BYTES
            && self.history.iter().all(|h| h.2.len() <= LINE_BYTES)
            && self.why.iter().all(|w| w.text.len() <= LINE_BYTES)
    }

    /// Cuts the message to what a store keeps of it: its history and *why*
    /// to their first and newest lines (see [`HISTORY_LINES`], [`WHY_LINES`]),
    /// with a line that says how many were left out between them, and each
    /// line to [`LINE_BYTES`].
    pub fn bound(&mut self) {
        cut_middle(
            &mut self.history,
            HISTORY_LINES,
            HISTORY_FIRST,
            |h| &h.2,
            |h, n| (h.0, h.1, left_out_line(n)),
        );
        cut_middle(
            &mut self.why,
            WHY_LINES,
            WHY_FIRST,
            |w| &w.text,
            |w, n| Why {
                step: w.step,
                text: left_out_line(n),
            },
        );
        for h in &mut self.history {
            cut_line(&mut h.2);
        }
        for w in &mut self.why {
            cut_line(&mut w.text);
        }
        cut_line(&mut self.dispatch.last_error);
    }
}

fn left_out_line(n: usize) -> String {
    format!("… {n} lines left out …")
}

/// How many lines a line made by [`left_out_line`] stands for.
fn left_out(line: &str) -> Option<usize> {
    line.strip_prefix("… ")?
        .strip_suffix(" lines left out …")?
        .parse()
        .ok()
}

/// Keeps the first `first` and the newest of `lines`, `max` in all, one of
/// them in place of those left out (counting those an earlier cut left out).
fn cut_middle<T>(
    lines: &mut Vec<T>,
    max: usize,
    first: usize,
    text: impl Fn(&T) -> &str,
    gap: impl Fn(&T, usize) -> T,
) {
    if lines.len() <= max {
        return;
    }
    let newest = max - first - 1;
    let gone = first..lines.len() - newest;
    // An earlier cut's line sits at `first`: it is left out too, and what
    // it stood for is counted on.
    let before = left_out(text(&lines[first]));
    let n = gone.len() - usize::from(before.is_some()) + before.unwrap_or(0);
    let line = gap(&lines[first], n);
    lines.splice(gone, [line]);
}

/// Cuts `s` to [`LINE_BYTES`], at a character boundary, ending in `…`.
fn cut_line(s: &mut String) {
    if s.len() <= LINE_BYTES {
        return;
    }
    let mut at = LINE_BYTES - '…'.len_utf8();
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    s.truncate(at);
    s.push('…');
}

impl Message {
    /// The vehicles the message concerns, in occasion order, without repeats.
    pub fn vins(&self) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        for o in &self.occasions {
            if let Some(vin) = o.vin.as_deref() {
                if !v.contains(&vin) {
                    v.push(vin);
                }
            }
        }
        v
    }
}

/// An occasion the planner found but did not plan, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    pub recipient: String,
    pub occasion: Occasion,
    pub step: Step,
    pub reason: String,
}

/// Count and cost of planned messages of one service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTotals {
    pub service: String,
    pub messages: u64,
    pub email: u64,
    pub post: u64,
    pub phone: u64,
    #[serde(with = "crate::money::cents")]
    pub cost: i64,
    pub dropped: u64,
    /// Control records: drawn into the service's control group, not sent.
    pub control: u64,
}

/// The outcome of planning one tenant for one day.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanReport {
    pub tenant: String,
    pub day: Option<Date>,
    pub dry_run: bool,
    /// Nothing changed since the last run for this day: data, policy, day.
    pub unchanged: bool,
    pub recipients: u64,
    pub occasions_found: u64,
    /// Occasions skipped because an earlier run planned them.
    pub already_planned: u64,
    /// Counts of the lists below, which the socket may shorten.
    pub planned_count: u64,
    pub dropped_count: u64,
    pub cancelled_count: u64,
    pub planned: Vec<Message>,
    pub dropped: Vec<Dropped>,
    /// Earlier planned messages cancelled by this run (consent withdrawn...).
    pub cancelled: Vec<Message>,
    pub totals: Vec<ServiceTotals>,
    pub millis: u64,
}

/// How a planned message differs between the current policy and a candidate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanChange {
    /// Planned only under the candidate policy.
    Added(Box<Message>),
    /// Planned only under the current policy.
    Removed(Box<Message>),
    /// Planned under both, differently (channel, day, service, cost).
    Changed {
        current: Box<Message>,
        candidate: Box<Message>,
    },
}

/// Money of one tenant, service and month, in cents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Estimated cost of messages planned and not yet sent.
    #[serde(with = "crate::money::cents")]
    pub reserved: i64,
    /// Cost of messages sent.
    #[serde(with = "crate::money::cents")]
    pub booked: i64,
    /// The brand's share of `booked` (subsidies); the dealer pays the rest.
    #[serde(with = "crate::money::cents")]
    pub brand: i64,
}

impl LedgerEntry {
    pub fn committed(&self) -> i64 {
        self.reserved + self.booked
    }

    /// The dealer's share of `booked`.
    pub fn dealer(&self) -> i64 {
        self.booked - self.brand
    }
}

/// A calendar month, `yyyymm` as a number (202612).
pub fn month_of(d: Date) -> u32 {
    use chrono::Datelike;
    let n = d.naive();
    n.year() as u32 * 100 + n.month()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Channel;

    fn message(history: usize, why: usize) -> Message {
        Message {
            id: 1,
            message_id: "<1@test>".into(),
            recipient: "K1".into(),
            channel: Channel::Email,
            service: "s".into(),
            template: "s".into(),
            occasions: Vec::new(),
            send_on: Date::from_ymd(2026, 1, 1).expect("day"),
            send_at: 0,
            cost: 0,
            value: 0,
            status: MessageStatus::Queued,
            why: (0..why)
                .map(|i| Why {
                    step: if i < 3 {
                        Step::Occasion
                    } else {
                        Step::Dispatch
                    },
                    text: format!("why {i}"),
                })
                .collect(),
            planned_at: Timestamp(0),
            policy: 0,
            history: (0..history)
                .map(|i| {
                    (
                        Timestamp(i as i64),
                        MessageStatus::Queued,
                        format!("line {i}"),
                    )
                })
                .collect(),
            dispatch: Dispatch::default(),
        }
    }

    #[test]
    fn a_bounded_message_is_left_as_it_is() {
        let mut m = message(HISTORY_LINES, WHY_LINES);
        assert!(m.is_bounded());
        let before = m.clone();
        m.bound();
        assert_eq!(m, before);
    }

    #[test]
    fn history_and_why_keep_their_first_and_newest_lines_and_count_the_rest() {
        let mut m = message(100, 200);
        assert!(!m.is_bounded());
        m.bound();
        assert!(m.is_bounded());
        assert_eq!(m.history.len(), HISTORY_LINES);
        assert_eq!(m.history[7].2, "line 7");
        assert_eq!(
            m.history[8],
            (
                Timestamp(8),
                MessageStatus::Queued,
                "… 37 lines left out …".into()
            )
        );
        assert_eq!(m.history[9].2, "line 45");
        assert_eq!(m.history[63].2, "line 99");
        assert_eq!(m.why.len(), WHY_LINES);
        assert_eq!(m.why[48].text, "… 105 lines left out …");
        assert_eq!(m.why[48].step, Step::Dispatch);
        assert_eq!(m.why[95].text, "why 199");
        // Ten more lines, cut again: the count goes on.
        for i in 100..110 {
            m.set_status(Timestamp(i), MessageStatus::Queued, format!("line {i}"));
        }
        m.bound();
        assert_eq!(m.history.len(), HISTORY_LINES);
        assert_eq!(m.history[8].2, "… 47 lines left out …");
        assert_eq!(m.history[8].0, Timestamp(8));
        assert_eq!(m.history[9].2, "line 55");
    }

    #[test]
    fn a_long_line_is_cut_at_a_character_boundary() {
        let mut m = message(1, 1);
        m.history[0].2 = "ä".repeat(LINE_BYTES);
        m.dispatch.last_error = "x".repeat(LINE_BYTES + 1);
        m.bound();
        assert!(m.history[0].2.len() <= LINE_BYTES);
        assert!(m.history[0].2.ends_with("ä…"));
        assert_eq!(m.dispatch.last_error.len(), LINE_BYTES);
        assert!(m.is_bounded());
    }
}

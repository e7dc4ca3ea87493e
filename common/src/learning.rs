//! What the daemon learned from the pooled response data (M5, M9): per
//! learning service and channel, the lead time and send slot in force, where
//! they come from and the evidence. Stored in the central store (versioned)
//! and sent to the console as is. Plain data, no I/O; the learning itself is
//! `daemon/src/learning.rs`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::domain::{Channel, Timestamp};
use crate::Date;

/// One arm: a lead time, or a send slot (weekday × hour).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    /// Days before the occasion's due date.
    Lead(u32),
    /// Weekday (0 = Monday) and hour of the day. Learning's arms are a
    /// weekday with the hour [`ANY_HOUR`] (every message of that weekday)
    /// or an hour with the weekday [`ANY_WEEKDAY`] (every email of that
    /// hour): the best of each makes the slot in force, which may also be
    /// a weekday only (a letter or a call, whose hour nobody picks: it goes
    /// with its day's batch or call list) or an hour only.
    Slot(u8, u8),
}

/// The hour of a slot that is a weekday only (see [`Arm::Slot`]).
pub const ANY_HOUR: u8 = 24;
/// The weekday of a slot that is an hour only (see [`Arm::Slot`]).
pub const ANY_WEEKDAY: u8 = 7;

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

impl std::fmt::Display for Arm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lead(d) => write!(f, "{d} days"),
            Self::Slot(wd, h) if *wd >= ANY_WEEKDAY && *h >= ANY_HOUR => f.write_str("any time"),
            Self::Slot(wd, h) if *h >= ANY_HOUR => write!(f, "{}", DAYS[usize::from(*wd).min(6)]),
            Self::Slot(wd, h) if *wd >= ANY_WEEKDAY => write!(f, "{h:02}:00"),
            Self::Slot(wd, h) => write!(f, "{} {h:02}:00", DAYS[usize::from(*wd).min(6)]),
        }
    }
}

/// Where the value in force comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The brand policy's value: learning is off, or its data is thin.
    Policy,
    /// Learned from the pooled data.
    Learned,
    /// Frozen by an administrator: the value in force when frozen.
    Frozen,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Policy => "policy",
            Self::Learned => "learned",
            Self::Frozen => "frozen",
        }
    }
}

/// One arm's pooled figures and posterior. Only cells that pass the
/// brand's `[privacy]` rule carry figures; a cell that fails shows no
/// count at all (`passes` false, zeros), so nothing of fewer than
/// `min_dealers` dealers is shown or used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArmFigures {
    pub arm: Arm,
    pub passes: bool,
    pub dealers: u32,
    pub sent: u64,
    pub responses: u64,
    pub control: u64,
    pub control_responses: u64,
    /// The Beta posterior of the arm's response rate.
    pub alpha: f64,
    pub beta: f64,
    /// The control baseline for this arm's window (responses per member).
    pub baseline: f64,
    /// Incremental response per cost: (posterior mean − baseline) × value
    /// − cost, cents per message.
    pub objective: f64,
}

impl ArmFigures {
    pub fn mean(&self) -> f64 {
        self.alpha / (self.alpha + self.beta)
    }

    /// Whether the arm's control baseline passed the rule and is in use
    /// (control members are shown only then). While any lead of a service
    /// has one, a lead without is left out of the choice.
    pub fn has_baseline(&self) -> bool {
        self.control > 0
    }

    /// The observed response rate over the arm's control baseline, in
    /// points of 1; `None` without data or without a baseline.
    pub fn lift(&self) -> Option<f64> {
        self.rate()
            .filter(|_| self.has_baseline())
            .map(|r| r - self.baseline)
    }

    /// The observed response rate, `None` without data.
    pub fn rate(&self) -> Option<f64> {
        (self.passes && self.sent > 0).then(|| self.responses as f64 / self.sent as f64)
    }
}

/// One kind of choice (the lead, or the slot) for a service and channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice<T> {
    /// The value in force.
    pub value: T,
    pub source: Source,
    /// Each arm of the grid, in order.
    pub arms: Vec<ArmFigures>,
    /// The version at which the value in force last changed.
    pub version: u64,
}

/// What is learned for one service on one channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LearnedService {
    pub service: String,
    pub channel: Channel,
    /// The policy's lead time (the prior and the fallback).
    pub policy_lead: u32,
    pub lead: Choice<u32>,
    /// Weekday (0 = Monday) and hour ([`ANY_HOUR`]: the weekday only);
    /// `None`: the policy's window as is.
    pub slot: Choice<Option<(u8, u8)>>,
    /// Dealers whose data passed the rule in some lead arm (while none
    /// does: the dealers with data, or 0 when fewer than the minimum),
    /// and the rule's minimum.
    pub dealers: u32,
    pub min_dealers: u32,
    /// Messages (reminders) in the cells used.
    pub sent: u64,
    pub explore_percent: u32,
    /// Incremental responses per message at the lead in force, and the
    /// value of one response (cents) it is weighed with; `None` while thin.
    pub incremental: Option<f64>,
    #[serde(with = "crate::money::cents", rename = "value")]
    pub value_cents: i64,
    pub frozen: bool,
}

impl LearnedService {
    /// `lead time: 28 days (learned from 31 dealers, 18,400 reminders: 11.2 %
    /// responded vs 8.9 % at the policy's 42 days)`.
    pub fn lead_text(&self) -> String {
        let s = self;
        let at = |l: u32| s.lead.arms.iter().find(|a| a.arm == Arm::Lead(l));
        match s.lead.source {
            // Never a count below the minimum: it would tell a lone dealer
            // that the data is its own.
            Source::Policy if s.dealers < s.min_dealers => format!(
                "lead time: {} days (policy; learning has fewer than {} dealers)",
                s.lead.value, s.min_dealers
            ),
            Source::Policy => format!(
                "lead time: {} days (policy; no lead time with its control baseline passes the privacy rule yet)",
                s.lead.value
            ),
            Source::Frozen => format!(
                "lead time: {} days (frozen at version {})",
                s.lead.value, s.lead.version
            ),
            Source::Learned => {
                let mine = at(s.lead.value).and_then(|a| a.rate());
                let theirs = at(s.policy_lead).and_then(|a| a.rate());
                let head = format!(
                    "lead time: {} days (learned from {} dealers, {} reminders",
                    s.lead.value,
                    s.dealers,
                    count(s.sent)
                );
                match (mine, theirs) {
                    _ if s.lead.value == s.policy_lead => format!(
                        "{head}: {} responded; the policy's value is the best)",
                        mine.map(percent).unwrap_or_else(|| "n/a".into())
                    ),
                    // With a control group, what was chosen on: the lift
                    // over each lead's own baseline (a long lead's window
                    // holds fewer organic visits).
                    (Some(m), Some(t)) => match (
                        at(s.lead.value).and_then(ArmFigures::lift),
                        at(s.policy_lead).and_then(ArmFigures::lift),
                    ) {
                        (Some(lm), Some(lt)) => format!(
                            "{head}: {} responded, {:+.1} points over the control group, vs {}, {:+.1} points, at the policy's {} days)",
                            percent(m),
                            lm * 100.0,
                            percent(t),
                            lt * 100.0,
                            s.policy_lead
                        ),
                        _ => format!(
                            "{head}: {} responded vs {} at the policy's {} days)",
                            percent(m),
                            percent(t),
                            s.policy_lead
                        ),
                    },
                    (Some(m), None) => format!(
                        "{head}: {} responded; too little data at the policy's {} days)",
                        percent(m),
                        s.policy_lead
                    ),
                    _ => format!("{head})"),
                }
            }
        }
    }

    /// `send time: Tue 09:00 (learned slot; exploring 10 %)`.
    pub fn slot_text(&self) -> String {
        let s = self;
        match s.slot.value {
            None => "send time: the policy's window".into(),
            Some((wd, h)) => format!(
                "{}: {} ({} slot{})",
                if h >= ANY_HOUR {
                    "send day"
                } else {
                    "send time"
                },
                Arm::Slot(wd, h),
                s.slot.source.as_str(),
                if s.frozen || s.explore_percent == 0 {
                    String::new()
                } else {
                    format!("; exploring {} %", s.explore_percent)
                }
            ),
        }
    }
}

/// The learned state in the central store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LearnedState {
    /// Raised whenever a value in force changes (and on freeze and reset).
    pub version: u64,
    pub services: Vec<LearnedService>,
    /// Frozen services: their values stay as they are.
    pub frozen: BTreeSet<String>,
    /// Per service reset, the day from which data counts again.
    pub reset_on: BTreeMap<String, Date>,
    /// What the last computation read (tenants' data versions, day,
    /// policy): equal means nothing changed.
    pub signature: u64,
    pub computed_at: Option<Timestamp>,
}

impl LearnedState {
    pub fn get(&self, service: &str, channel: Channel) -> Option<&LearnedService> {
        self.services
            .iter()
            .find(|s| s.service == service && s.channel == channel)
    }
}

/// What an administrator does to a service's learned values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LearningAction {
    /// Keep the values in force; stop updating them.
    Freeze,
    /// Back to the policy's values; learn again from data sent from now on.
    Reset,
}

impl LearningAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Freeze => "freeze",
            Self::Reset => "reset",
        }
    }
}

/// Percent with one decimal and a decimal point: `11.2 %`.
pub fn percent(rate: f64) -> String {
    format!("{:.1} %", rate * 100.0)
}

/// A count with thousands separators: `18,400`.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arms_and_counts_read_as_people_write_them() {
        assert_eq!(Arm::Lead(28).to_string(), "28 days");
        assert_eq!(Arm::Slot(1, 9).to_string(), "Tue 09:00");
        assert_eq!(Arm::Slot(3, ANY_HOUR).to_string(), "Thu");
        assert_eq!(Arm::Slot(ANY_WEEKDAY, 16).to_string(), "16:00");
        assert_eq!(count(18_400), "18,400");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000_000), "1,000,000");
        assert_eq!(percent(0.112), "11.2 %");
    }
}

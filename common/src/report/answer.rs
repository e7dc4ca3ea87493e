//! The answer to a report request, and the report fields a dealer may
//! grant the brand.

use serde::{Deserialize, Serialize};

use super::pool::{PoolRule, ReportGroup};
use super::stats::{By, Figures, Tally};
use crate::money::Money;
use crate::Date;

/// What `touchpoint report` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportQuery {
    pub tenant: Option<crate::TenantId>,
    pub service: Option<String>,
    /// First and last day (inclusive) a message went out; the daemon's
    /// defaults are the last 90 days up to today.
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub by: By,
    /// Across dealers, under the brand's disclosure rule.
    pub pooled: bool,
}

/// The answer to a report request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub query: ReportQuery,
    /// The period actually reported (the query's, or the defaults).
    pub from: Date,
    pub to: Date,
    pub groups: Vec<ReportGroup>,
    pub total: ReportGroup,
    /// Dealers whose rows were counted.
    pub dealers: u32,
    /// The rule a pooled report was cut by.
    pub rule: Option<PoolRule>,
    /// Pooled only: the figures dealers granted the brand by name
    /// (`[share] fields` in their file); nothing else of one dealer.
    pub shared: Vec<SharedFigures>,
    /// Dealers whose store could not be read (id, reason): their figures
    /// are not known and not in the report. Empty in a pooled report, which
    /// names no dealer; `unreadable` counts them there.
    pub errors: Vec<(String, String)>,
    pub unreadable: u32,
}

/// One dealer's own figures the dealer granted the brand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedFigures {
    pub tenant: crate::TenantId,
    pub name: String,
    /// Granted field -> its value as text ([`ShareField::show`]), only
    /// the granted ones: the figures the others are computed from stay home.
    pub fields: Vec<(ShareField, String)>,
}

/// A report field a dealer may grant the brand (`[share] fields`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareField {
    Sent,
    Delivered,
    Responses,
    ResponseRate,
    Control,
    ControlRate,
    Lift,
    Cost,
    CostPerResponse,
    CostPerIncremental,
    Value,
    Bounces,
    Unsubscribes,
}

impl ShareField {
    pub const ALL: [ShareField; 13] = [
        Self::Sent,
        Self::Delivered,
        Self::Responses,
        Self::ResponseRate,
        Self::Control,
        Self::ControlRate,
        Self::Lift,
        Self::Cost,
        Self::CostPerResponse,
        Self::CostPerIncremental,
        Self::Value,
        Self::Bounces,
        Self::Unsubscribes,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Responses => "responses",
            Self::ResponseRate => "response_rate",
            Self::Control => "control",
            Self::ControlRate => "control_rate",
            Self::Lift => "lift",
            Self::Cost => "cost",
            Self::CostPerResponse => "cost_per_response",
            Self::CostPerIncremental => "cost_per_incremental",
            Self::Value => "value",
            Self::Bounces => "bounces",
            Self::Unsubscribes => "unsubscribes",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// This field of a tally as text: counts as numbers, money in euros
    /// (`12.50`), rates and the lift in percent with one decimal (the lift
    /// with its 95 % interval), `n/a` where it is undefined. `f`: the
    /// tally's figures, the lift stratified by service.
    pub fn show(self, t: &Tally, f: &Figures) -> String {
        let euros = |c: f64| Money(c.round() as i64).to_string();
        let pct = |r: f64| format!("{:.1} %", r * 100.0);
        let na = || "n/a".to_string();
        match self {
            Self::Sent => t.sent.to_string(),
            Self::Delivered => t.delivered.to_string(),
            Self::Responses => t.responses.to_string(),
            Self::ResponseRate => f.response_rate.map_or_else(na, pct),
            Self::Control => t.control.to_string(),
            Self::ControlRate => f.control_rate.map_or_else(na, pct),
            Self::Lift => f.lift.map_or_else(na, |l| {
                format!(
                    "{:+.1} pts [{:+.1}, {:+.1}]",
                    l.estimate * 100.0,
                    l.low * 100.0,
                    l.high * 100.0
                )
            }),
            Self::Cost => Money(t.cost).to_string(),
            Self::CostPerResponse => f.cost_per_response.map_or_else(na, euros),
            Self::CostPerIncremental => f.cost_per_incremental.map_or_else(na, euros),
            Self::Value => Money(t.value).to_string(),
            Self::Bounces => t.bounces.to_string(),
            Self::Unsubscribes => t.unsubscribes.to_string(),
        }
    }
}

//! The arithmetic of a results report: counts per group ([`Tally`]), the
//! rates and the lift with its confidence interval ([`Figures`]), and the
//! groups a row falls into ([`By`]). Pure: the console computes the same
//! figures from the same tallies.

use chrono::{Datelike, NaiveDateTime, Timelike};
use serde::{Deserialize, Serialize};

use super::ResultRow;

/// The 97.5 % quantile of the standard normal: a two-sided 95 % interval.
const Z95: f64 = 1.959_963_984_540_054;

/// Counts of one group; everything a report shows is computed from these.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Messages that went out (handed to a transport).
    pub sent: u64,
    pub delivered: u64,
    /// Sent messages with a response credited.
    pub responses: u64,
    /// Control-group members.
    pub control: u64,
    pub control_responses: u64,
    /// Booked cost, cents.
    #[serde(with = "crate::money::cents")]
    pub cost: i64,
    /// Value of the responses to sent messages, cents.
    #[serde(with = "crate::money::cents")]
    pub value: i64,
    pub bounces: u64,
    pub unsubscribes: u64,
    /// Sent messages with at least one click on a tracked link (brand
    /// `[tracking] clicks`), and all their clicks. A click is no response.
    pub clicked: u64,
    pub clicks: u64,
    /// Emails delivered: what the click rate is counted over (a letter or
    /// a call has no link to click).
    pub emails_delivered: u64,
}

impl Tally {
    pub fn add_row(&mut self, r: &ResultRow) {
        if r.is_control() {
            self.control += 1;
            self.control_responses += u64::from(r.response.is_some());
            return;
        }
        self.sent += 1;
        self.delivered += u64::from(r.delivered);
        self.bounces += u64::from(r.bounced);
        self.unsubscribes += u64::from(r.unsubscribed);
        self.clicked += u64::from(r.clicks > 0 && r.delivered);
        self.emails_delivered +=
            u64::from(r.delivered && r.channel == Some(crate::domain::Channel::Email));
        self.clicks += u64::from(r.clicks);
        self.cost = self.cost.saturating_add(r.cost.cents());
        if let Some(c) = &r.response {
            self.responses += 1;
            let v = c.value.map(|v| v.cents()).unwrap_or(0);
            self.value = self.value.saturating_add(v);
        }
    }

    pub fn add(&mut self, o: &Tally) {
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.responses += o.responses;
        self.control += o.control;
        self.control_responses += o.control_responses;
        self.cost = self.cost.saturating_add(o.cost);
        self.value = self.value.saturating_add(o.value);
        self.bounces += o.bounces;
        self.unsubscribes += o.unsubscribes;
        self.clicked += o.clicked;
        self.clicks += o.clicks;
        self.emails_delivered += o.emails_delivered;
    }

    /// Rows counted: sent messages and control members. What a dealer
    /// "contributes" to a pooled cell is measured in these.
    pub fn exposures(&self) -> u64 {
        self.sent + self.control
    }

    /// The figures of rows of one service (one stratum): the lift is
    /// Newcombe's interval of this tally. A group that mixes services is
    /// [`stratified`].
    pub fn figures(&self) -> Figures {
        stratified(self, std::slice::from_ref(self))
    }
}

/// The figures of a group whose rows may come from several services:
/// counts, rates and cost per response from the group's `total`; the lift,
/// the incremental responses and the cost per incremental response
/// stratified by service over `strata` (one tally per service in the
/// group; those without both sent messages and control members are left
/// out of the lift: a service without a control group has no baseline).
///
/// Pooling sent and control counts across services with different control
/// shares and base rates compares different mixes of services (Simpson's
/// paradox), so the lift is taken within each service and then weighted by
/// its messages: lift_s = rate_sent_s − rate_control_s, incremental =
/// Σ lift_s × sent_s, lift = incremental / Σ sent_s over the services in
/// the lift. Its 95 % interval is the MOVER construction for a linear
/// combination of independent estimates (Zou & Donner 2008, "Construction
/// of confidence limits about effect measures: a general approach",
/// Statistics in Medicine 27:1693–1702, eq. 6): with weights w_s =
/// sent_s / Σ sent and each stratum's Newcombe limits (l_s, u_s),
/// low = lift − √Σ w_s² (lift_s − l_s)², high = lift + √Σ w_s² (u_s − lift_s)²,
/// i.e. Σ w_s² var_s with the variances recovered from each side of the
/// stratum's interval. Newcombe's interval is itself this construction on
/// two Wilson intervals, so one stratum gives exactly its Newcombe
/// interval.
pub fn stratified(total: &Tally, strata: &[Tally]) -> Figures {
    let response_rate = rate(total.responses, total.sent);
    let control_rate = rate(total.control_responses, total.control);
    let cost_per_response =
        (total.responses > 0).then(|| total.cost as f64 / total.responses as f64);
    let lifted: Vec<(&Tally, Lift)> = strata
        .iter()
        .filter_map(|s| {
            newcombe(s.responses, s.sent, s.control_responses, s.control).map(|l| (s, l))
        })
        .collect();
    let lift_sent: u64 = lifted.iter().map(|(s, _)| s.sent).sum();
    let lift_cost: i64 = lifted
        .iter()
        .fold(0i64, |c, (s, _)| c.saturating_add(s.cost));
    let lift = match lifted.as_slice() {
        [] => None,
        [(_, l)] => Some(*l),
        _ => {
            let n = lift_sent as f64;
            let (mut estimate, mut below, mut above) = (0.0, 0.0, 0.0);
            for (s, l) in &lifted {
                let w = s.sent as f64 / n;
                estimate += w * l.estimate;
                below += (w * (l.estimate - l.low)).powi(2);
                above += (w * (l.high - l.estimate)).powi(2);
            }
            Some(Lift {
                estimate,
                low: (estimate - below.sqrt()).max(-1.0),
                high: (estimate + above.sqrt()).min(1.0),
            })
        }
    };
    let incremental = lift.map(|l| l.estimate * lift_sent as f64);
    Figures {
        click_rate: rate(total.clicked, total.emails_delivered),
        response_rate,
        control_rate,
        lift,
        incremental,
        cost_per_response,
        // Undefined unless the messages added something: with a lift of
        // zero or less there is no incremental response to pay for. Only
        // the services in the lift pay for its increment.
        cost_per_incremental: incremental
            .filter(|i| *i > 0.0)
            .map(|i| lift_cost as f64 / i),
        lift_sent,
    }
}

/// What a report shows for one group, computed from its [`Tally`]. `None`
/// wherever the figure is undefined (no messages, no control group):
/// never a division by zero, never an infinity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Responses per sent message.
    pub response_rate: Option<f64>,
    /// Responses per control member.
    pub control_rate: Option<f64>,
    /// Response rate (sent) − response rate (control), with its 95 %
    /// interval, stratified by service ([`stratified`]).
    pub lift: Option<Lift>,
    /// Responses the messages added: Σ lift_s × sent_s over the services
    /// with a control group.
    pub incremental: Option<f64>,
    /// Cents.
    #[serde(with = "crate::money::computed")]
    pub cost_per_response: Option<f64>,
    /// Cents; `None` when the lift is zero or less.
    #[serde(with = "crate::money::computed")]
    pub cost_per_incremental: Option<f64>,
    /// Messages sent by the services the lift is computed from (those with
    /// a control group): the lift covers this many of the group's sent.
    pub lift_sent: u64,
    /// Delivered messages clicked at least once, per delivered message.
    pub click_rate: Option<f64>,
}

/// A difference of two proportions with its 95 % confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lift {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

fn rate(x: u64, n: u64) -> Option<f64> {
    (n > 0).then(|| x as f64 / n as f64)
}

/// Wilson's score interval for x successes in n trials (Wilson 1927), 95 %.
pub fn wilson(x: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 || x > n {
        return None;
    }
    let (x, n) = (x as f64, n as f64);
    let z2 = Z95 * Z95;
    let centre = (x + z2 / 2.0) / (n + z2);
    let half = Z95 / (n + z2) * (x * (n - x) / n + z2 / 4.0).sqrt();
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// The difference p1 − p2 of two independent proportions with Newcombe's
/// hybrid score interval (Newcombe 1998, "Interval estimation for the
/// difference between independent proportions", Statistics in Medicine
/// 17:873–890, method 10): it combines the two Wilson intervals, keeps its
/// coverage near 95 % at the small counts a dealer's control group has,
/// and never leaves [−1, 1], where the Wald interval fails on both counts.
pub fn newcombe(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<Lift> {
    let (l1, u1) = wilson(x1, n1)?;
    let (l2, u2) = wilson(x2, n2)?;
    let p1 = x1 as f64 / n1 as f64;
    let p2 = x2 as f64 / n2 as f64;
    let d = p1 - p2;
    Some(Lift {
        estimate: d,
        low: d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt(),
        high: d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt(),
    })
}

/// How `touchpoint report --by` groups rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum By {
    #[default]
    Service,
    Tenant,
    /// Lead time (days from sending to the due date) in weeks.
    Lead,
    /// Local weekday the message went out.
    Weekday,
    /// Local hour the message went out.
    Hour,
    /// Control members form their own group, `control`.
    Channel,
    /// Local month the message went out.
    Month,
}

/// Lead times at or beyond this many weeks share one bucket, and so do
/// messages sent on or after the due date: both are rare and would
/// otherwise make long tails of one-row groups.
const LEAD_WEEKS: i32 = 12;

impl By {
    pub const ALL: [By; 7] = [
        By::Service,
        By::Tenant,
        By::Lead,
        By::Weekday,
        By::Hour,
        By::Channel,
        By::Month,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            By::Service => "service",
            By::Tenant => "tenant",
            By::Lead => "lead",
            By::Weekday => "weekday",
            By::Hour => "hour",
            By::Channel => "channel",
            By::Month => "month",
        }
    }

    pub fn parse(s: &str) -> Option<By> {
        By::ALL.into_iter().find(|b| b.as_str() == s)
    }

    /// The group of a row: its sort order and label. `tenant` labels the
    /// tenant grouping; `local` is when the row was sent, in local time.
    pub fn group(self, tenant: &str, row: &ResultRow, local: NaiveDateTime) -> (i64, String) {
        match self {
            By::Service => (0, row.service.clone()),
            By::Tenant => (0, tenant.to_string()),
            By::Lead => {
                if row.lead_days <= 0 {
                    return (-1, "on/after due".into());
                }
                let week = (row.lead_days / 7).min(LEAD_WEEKS);
                if week == LEAD_WEEKS {
                    (i64::from(week), format!("{}+ days", week * 7))
                } else {
                    (
                        i64::from(week),
                        format!("{}-{} days", (week * 7).max(1), week * 7 + 6),
                    )
                }
            }
            By::Weekday => {
                let d = local.weekday();
                (i64::from(d.num_days_from_monday()), d.to_string())
            }
            By::Hour => {
                let h = local.hour();
                (i64::from(h), format!("{h:02}:00"))
            }
            By::Channel => match row.channel {
                Some(c) => (c as i64, c.as_str().to_string()),
                None => (99, "control".into()),
            },
            By::Month => (
                i64::from(local.year()) * 100 + i64::from(local.month()),
                format!("{}-{:02}", local.year(), local.month()),
            ),
        }
    }
}

#[cfg(test)]
mod tests;
